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

void transport_free(transport *t);

/* ------------------------------------------------------------------------ */
/* HTTP server (the hub's REST side), on its own port in the same loop     */
/* ------------------------------------------------------------------------ */

typedef struct http_exchange http_exchange;

/* One request, whole (body read). Valid until http_respond(), or until
 * the exchange is aborted. */
typedef struct http_request {
	const char *method; /* "GET", "POST", "PUT", "PATCH", "DELETE", ... */
	const char *path;   /* percent-decoded by libwebsockets, no query */
	/* Query arguments, each "name=value" (or "name"), percent-decoded;
	 * libwebsockets splits them at '&' before decoding. */
	const char *const *args;
	size_t nargs;
	const uint8_t *body;
	size_t body_len;
	const char *peer; /* remote address */
} http_request;

/* Copy the value of request header `name` (case-insensitive, without the
 * colon) into out; returns its length, or -1 if absent or longer than
 * out_len - 1. */
int http_header(http_exchange *x, const char *name, char *out, size_t out_len);

/* A request arrived. The handler must call http_respond() exactly once,
 * now or later (long polling), unless the exchange is aborted first. */
typedef void (*http_handler)(http_exchange *x, const http_request *req,
			     void *payload);

/* Called if the client goes away before a deferred response. */
void http_on_abort(http_exchange *x, void (*fn)(void *ctx), void *ctx);

/* Send the response (the body is copied). `headers` are extra header
 * lines, each ending in "\r\n" (NULL for none). Keep-alive is kept. */
void http_respond(http_exchange *x, int status, const char *content_type,
		  const void *body, size_t len, const char *headers);

/* Serve HTTP on "ADDR:PORT" (port 0 picks one). Bodies over `max_body`
 * are refused with 413 before they are read; malformed requests get 400
 * from the transport itself.
 * Errors: FERRY_E_INVALID, FERRY_E_NETWORK (with `detail`). */
ferry_err transport_http_listen(transport *t, const char *listen,
				size_t max_body, http_handler handler,
				void *payload, char *detail, size_t detail_len);

/* "ADDR:PORT" the HTTP server listens on, or "". */
const char *transport_http_address(const transport *t);

#endif
