/*
 * transport.h — WebSocket connections for ferry.v1, behind a small
 * contract so the rest of net/ never sees libwebsockets (transport_ws.c is
 * the one file that includes it).
 *
 * One transport is one event loop: a listening socket (optional), dialed
 * connections, and a periodic timer. Every callback runs on the thread
 * that calls transport_service(). Messages are whole: the transport
 * reassembles fragments and refuses any message over `max_message` (close
 * 4006) or sent as text (close 4002).
 */
#ifndef FERRY_TRANSPORT_H
#define FERRY_TRANSPORT_H

#include "ferry.h"

typedef struct transport transport;
typedef struct transport_conn transport_conn;

typedef struct transport_handler {
	/* A connection is open: inbound (dial_ctx NULL) or a dial of ours
	 * that connected. Return the owner's context for it; NULL refuses
	 * (the connection is closed). */
	void *(*opened)(transport_conn *c, void *dial_ctx, void *payload);
	/* One whole binary message arrived. */
	void (*message)(transport_conn *c, void *ctx, const uint8_t *msg,
			size_t len);
	/* The socket can take a message: set *msg and *len and return 1, or
	 * return 0 for nothing. The bytes must stay valid until the next
	 * callback on this connection. */
	int (*writable)(transport_conn *c, void *ctx, const uint8_t **msg,
			size_t *len);
	/* The connection is gone (ctx is the one opened returned). */
	void (*closed)(transport_conn *c, void *ctx, unsigned code,
		       const char *reason);
	/* A dial failed before a WebSocket was established. */
	void (*dial_failed)(void *dial_ctx, const char *why, void *payload);
	/* Called every tick_ms. */
	void (*tick)(void *payload);
	void *payload;
} transport_handler;

/* Create the loop; listen on "ADDR:PORT" if `listen` is non-empty.
 * Errors: FERRY_E_INVALID (address), FERRY_E_NETWORK (bind), with a
 * reason in `detail`. */
ferry_err transport_new(transport **out, const char *listen, size_t max_message,
			uint32_t tick_ms, const transport_handler *h,
			char *detail, size_t detail_len);

/* "ADDR:PORT" actually listened on, or "". */
const char *transport_address(const transport *t);

/* Dial ws://HOST:PORT[/PATH] (or wss://). The outcome arrives as opened
 * or dial_failed. Errors: FERRY_E_INVALID (URL), FERRY_E_NETWORK. */
ferry_err transport_dial(transport *t, const char *url, void *dial_ctx,
			 char *detail, size_t detail_len);

/* Ask for a writable callback on the connection. */
void transport_want_write(transport_conn *c);

/* Close once pending writes are out, with a WebSocket close code and
 * reason. The closed callback follows. */
void transport_close(transport_conn *c, unsigned code, const char *reason);

/* "ADDR:PORT" of the remote end. */
const char *transport_peer_address(const transport_conn *c);

/* Run the loop for one round of events. */
void transport_service(transport *t);

/* Wake transport_service() from another thread. */
void transport_wake(transport *t);

void transport_free(transport *t);

#endif
