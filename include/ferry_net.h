/*
 * ferry_net.h — running a node on the network: the ferry.v1 peer protocol
 * over WebSockets (docs/protocol.md), in the command (`ferry serve`,
 * `ferry sync`) or inside an application's own process.
 *
 * A ferry_net listens for peers, dials the peers configured in the node
 * (ferry peer add), keeps them connected with exponential backoff, syncs
 * both ways under the trust list (ferry trust add), pushes new commits —
 * including commits other processes make on the same directory — within
 * milliseconds, and writes each connection's status into the node, where
 * `ferry status` and ferry_net_peers() read it.
 *
 * Threading: ferry_net_run() runs the event loop on the calling thread and
 * uses the node from it; the application may keep using the same node from
 * other threads. ferry_net_stop() may be called from any thread or from a
 * signal handler.
 */
#ifndef FERRY_NET_H
#define FERRY_NET_H

#include "ferry.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ferry_net ferry_net;

typedef enum ferry_origin_policy {
	/* Accept changes of an origin not in the trust list when the peer
	 * delivering them may write that scope (its signature must verify). */
	FERRY_ORIGINS_VOUCHED = 0,
	/* Accept only origins listed in the trust list. */
	FERRY_ORIGINS_LISTED = 1,
} ferry_origin_policy;

/* Log levels passed to ferry_net_options.log. */
enum { FERRY_LOG_ERROR = 0, FERRY_LOG_WARN = 1, FERRY_LOG_INFO = 2 };

#define FERRY_NET_OPTIONS_VERSION 1

typedef struct ferry_net_options {
	unsigned int version; /* FERRY_NET_OPTIONS_VERSION */
	/* "ADDR:PORT" to listen on (port 0 picks a free one); NULL or ""
	 * = do not listen. */
	const char *listen;
	/* Non-zero: do not dial the node's configured peers. */
	int no_dial;
	uint32_t heartbeat_ms;	  /* 0 = 5000 */
	size_t max_frame_bytes;	  /* 0 = 1 MiB + 64 KiB */
	uint32_t backoff_base_ms; /* 0 = 500 */
	uint32_t backoff_cap_ms;  /* 0 = 30000 */
	/* How often to look for commits by other processes; 0 = 2 ms. */
	uint32_t watch_ms;
	ferry_origin_policy origin_policy;
	/* Log lines (one event each, no newline); NULL = stderr. */
	void (*log)(int level, const char *line, void *payload);
	void *log_payload;
	/* The hub's HTTP side (docs/rest-api.md): "ADDR:PORT" to serve the
	 * JSON endpoints, the status page and metrics on; NULL = off. */
	const char *http_listen;
	size_t http_max_body;	 /* bytes; 0 = 16 MiB */
	size_t http_max_actions; /* per batch or upload; 0 = 10000 */
	/* Profile 1's nomenclature scope; NULL = "pricelist". */
	const char *pricelist_scope;
	/* Adapters' configuration file (docs/adapters.md); NULL = none.
	 * Pushes and pulls run on a thread of their own; webhooks need the
	 * HTTP side. */
	const char *adapters_path;
} ferry_net_options;

#define FERRY_NET_OPTIONS_INIT                                                 \
	{                                                                      \
		FERRY_NET_OPTIONS_VERSION, NULL, 0, 0, 0, 0, 0, 0,             \
			FERRY_ORIGINS_VOUCHED, NULL, NULL, NULL, 0, 0, NULL,   \
			NULL                                                   \
	}

/* Set up networking for `node` (which must outlive the ferry_net): bind
 * the listening socket if asked. Nothing runs until ferry_net_run().
 * out: free with ferry_net_free().
 * Errors: FERRY_E_INVALID (bad listen address), FERRY_E_NETWORK (cannot
 *         bind; the detail is in *errdetail, malloc'd, when not NULL),
 *         FERRY_E_VERSION, FERRY_E_NOMEM; with adapters_path, the errors
 *         of loading that file (FERRY_E_INVALID, FERRY_E_IO, FERRY_E_LIMIT)
 *         with a detail that starts "adapters: " and names the file and
 *         the line or member. */
ferry_err ferry_net_start(ferry_net **out, ferry_node *node,
			  const ferry_net_options *opts, char **errdetail);

/* The address actually listened on ("127.0.0.1:7400"), or "" if none.
 * Valid while the ferry_net lives. */
const char *ferry_net_address(const ferry_net *net);

/* The address the HTTP side listens on, or "" if it is off. */
const char *ferry_net_http_address(const ferry_net *net);

/* Run the event loop until ferry_net_stop(). On stop, every connection is
 * closed cleanly (a batch being applied is finished first: batches are
 * atomic) and statuses are written as offline. */
ferry_err ferry_net_run(ferry_net *net);

/* Ask ferry_net_run() to return. Async-signal-safe. */
void ferry_net_stop(ferry_net *net);

/* Re-read the adapters' configuration file (no-op without adapters). The
 * running configuration stays if the file does not validate; the error is
 * logged and shown by `ferry adapter status`. Async-signal-safe. */
void ferry_net_reload_adapters(ferry_net *net);

void ferry_net_free(ferry_net *net);

/* One connection's status as the serving process last wrote it (a
 * quarter second at most before `updated_ms`). This is what a green/yellow
 * indicator and an "N records waiting" counter show. Strings are borrowed:
 * valid during the callback. */
typedef struct ferry_peer_info {
	int has_id;
	const uint8_t *id; /* FERRY_PUBLIC_KEY_BYTES, when has_id */
	const char *name;  /* from the trust list, "" if unknown */
	const char *url;   /* dialed URL, "" for inbound connections */
	int online;	   /* connected and authenticated */
	int stale;	   /* marked online, but not updated for 15 s: the
			      serving process is gone */
	uint64_t updated_ms;
	uint64_t connected_ms;	 /* last handshake */
	uint64_t last_sync_ms;	 /* last time both directions caught up */
	uint64_t pending_send;	 /* changes queued for the peer */
	uint64_t pending_recv;	 /* changes the peer has queued for us */
	uint64_t sent, received; /* changes, serving process's lifetime */
	uint64_t refused_in;	 /* segments we refused from the peer */
	uint64_t refused_out;	 /* segments the peer refused from us */
	const char *last_refusal;
	const char *last_error;
	uint64_t last_error_ms;
} ferry_peer_info;

typedef int (*ferry_peer_cb)(const ferry_peer_info *peer, void *payload);

/* A serving process rewrites statuses several times a second; one not
 * updated for this long is stale. */
#define FERRY_NET_STALE_MS 15000

/* Visit every known connection's status (written by whichever process
 * runs ferry_net on this node's directory). Return non-zero to stop.
 * Errors: store errors, FERRY_E_CORRUPT for a damaged status record. */
ferry_err ferry_net_peers(ferry_node *node, ferry_peer_cb cb, void *payload);

/* Progress of a one-shot sync, for progress bars. */
typedef struct ferry_sync_progress {
	uint64_t sent, received;	     /* changes so far */
	uint64_t pending_send, pending_recv; /* changes still to go */
	double seconds;
} ferry_sync_progress;

typedef void (*ferry_sync_progress_cb)(const ferry_sync_progress *p,
				       void *payload);

/* Connect to `url` (ws://HOST:PORT), sync both ways until both sides are
 * caught up, and disconnect. `progress` (may be NULL) is called a few
 * times a second and at the end. `report` receives the final figures.
 * Errors: FERRY_E_NETWORK (cannot connect), FERRY_E_UNTRUSTED (either side
 *         refused the other), FERRY_E_AUTH, FERRY_E_PROTOCOL,
 *         FERRY_E_TIMEOUT (no progress for `timeout_ms`; 0 = 30 s), and
 *         data errors from applying; the detail is in *errdetail. */
ferry_err ferry_net_sync_once(ferry_sync_progress *report, ferry_node *node,
			      const char *url, const ferry_net_options *opts,
			      uint32_t timeout_ms,
			      ferry_sync_progress_cb progress, void *payload,
			      char **errdetail);

#ifdef __cplusplus
}
#endif
#endif /* FERRY_NET_H */
