/*
 * session.h — one ferry.v1 connection's protocol state machine, without
 * I/O (docs/protocol.md). The transport feeds it whole received messages
 * and asks it for the next message to send whenever the socket is
 * writable; the session runs the handshake, encrypts, plans exports from
 * the peer's vector, applies received batches under the trust rules, and
 * keeps the connection's status. Tests drive two sessions back to back in
 * memory.
 *
 * Threading: a session belongs to the thread running its transport.
 */
#ifndef FERRY_SESSION_H
#define FERRY_SESSION_H

#include "ferry.h"
#include "trust.h"

typedef struct session session;

typedef enum session_origin_policy {
	/* Accept an unlisted origin if the delivering peer may write the
	 * scope (the peer vouches; the origin's signature must verify). */
	SESSION_ORIGINS_VOUCHED = 0,
	/* Accept only origins in the trust list. */
	SESSION_ORIGINS_LISTED = 1,
} session_origin_policy;

typedef struct session_config {
	int is_client;
	uint32_t heartbeat_ms; /* 0 = 5000 */
	uint32_t handshake_ms; /* 0 = 10000 */
	size_t max_frame;      /* largest message we accept; 0 = default */
	unsigned window;       /* unacknowledged batches; 0 = 4 */
	session_origin_policy origin_policy;
	const char *url; /* dialed URL, NULL for inbound */
} session_config;

#define SESSION_DEFAULT_MAX_FRAME (FERRY_DEFAULT_BATCH_BYTES + 65536)

/* Close codes (docs/protocol.md §7). */
enum {
	SESSION_CLOSE_NORMAL = 1000,
	SESSION_CLOSE_UNTRUSTED = 4001,
	SESSION_CLOSE_PROTOCOL = 4002,
	SESSION_CLOSE_AUTH = 4003,
	SESSION_CLOSE_DECRYPT = 4004,
	SESSION_CLOSE_BAD_DATA = 4005,
	SESSION_CLOSE_TOO_LARGE = 4006,
	SESSION_CLOSE_VERSION = 4007,
	SESSION_CLOSE_HEARTBEAT = 4008,
	SESSION_CLOSE_SHUTDOWN = 4009,
};

/* Create a session on an open node. The node must outlive it. */
ferry_err session_new(session **out, ferry_node *node,
		      const session_config *cfg, uint64_t now_ms);
void session_free(session *s);

/* Feed one complete received message. On a protocol, crypto or data error
 * the session starts closing (see session_closing) and returns the error.
 * Applying a batch happens here, synchronously, in one transaction. */
ferry_err session_receive(session *s, const uint8_t *msg, size_t len,
			  uint64_t now_ms);

/* The next message to send. *msg points into the session and stays valid
 * until the next call on it. Errors: FERRY_E_DONE when there is nothing to
 * send now. */
ferry_err session_next(session *s, const uint8_t **msg, size_t *len,
		       uint64_t now_ms);

/* True if session_next() would return a message now. */
int session_wants_write(const session *s);

/* Heartbeats and timeouts; call every few hundred ms. */
void session_tick(session *s, uint64_t now_ms);

/* The node's store changed (a local commit, another process's write, a
 * batch applied by another session): plan again from the peer's vector. */
void session_store_changed(session *s);

/* The trust list changed: reload it; a peer no longer trusted is closed. */
void session_trust_changed(session *s);

/* Begin closing with `code` and a reason for the peer (sent in an
 * encrypted CLOSE once the handshake is done). */
void session_close(session *s, unsigned code, const char *reason);

/* True once the session is closing and has nothing more to send: the
 * transport should close the connection with *code and *reason. */
int session_finished(const session *s, unsigned *code, const char **reason);

/* The peer closed the connection, or the transport lost it. */
void session_lost(session *s, unsigned code, const char *reason,
		  uint64_t now_ms);

/* True after both AUTHs verified and the peer is trusted. */
int session_established(const session *s);

/* True when both directions are caught up (nothing queued either way,
 * every batch acknowledged). */
int session_caught_up(const session *s);

/* The connection's status (peer id, pending counts, refusals, errors).
 * Valid while the session lives. */
const peer_status *session_status(const session *s);

/* Non-zero once per change of the status since the last call (so the
 * owner persists it only when needed). */
int session_status_dirty(session *s);

/* Changes this session applied from the peer since the last call: the
 * owner tells the other sessions (relay). */
uint64_t session_take_applied(session *s);

#endif
