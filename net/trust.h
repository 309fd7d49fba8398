/*
 * trust.h — the trust list, the peers to dial, and per-peer connection
 * status, kept in the node's kv tables (ferry_kv_*) so every process using
 * the directory sees the same ones. Values are JSON objects (jansson), so
 * an operator can read them with any tool.
 *
 * Tables: "trust" (key: peer id hex), "peers" (key: URL), "peer_status"
 * (key: peer id hex, or "url:" URL for a dialed peer not reached yet).
 */
#ifndef FERRY_TRUST_H
#define FERRY_TRUST_H

#include "ferry.h"
#include "grant.h"

#define TRUST_MAX_NAME_BYTES 64
#define TRUST_MAX_URL_BYTES 200

typedef struct trust_entry {
	uint8_t id[FERRY_PUBLIC_KEY_BYTES];
	char name[TRUST_MAX_NAME_BYTES + 1];
	grant read;  /* scopes this peer may receive from us */
	grant write; /* scopes we accept from this peer */
	uint64_t added_ms;
} trust_entry;

void trust_entry_clear(trust_entry *e);

/* Add or replace. Errors: FERRY_E_INVALID (name), store errors. */
ferry_err trust_put(ferry_node *node, const trust_entry *e);
/* Errors: FERRY_E_NOT_FOUND. `out` must be cleared by the caller. */
ferry_err trust_get(ferry_node *node, const uint8_t *id, trust_entry *out);
ferry_err trust_delete(ferry_node *node, const uint8_t *id);
/* Entries in id order; the entry is borrowed during the call. */
typedef int (*trust_cb)(const trust_entry *e, void *payload);
ferry_err trust_list(ferry_node *node, trust_cb cb, void *payload);

/* Peers this node dials. */
ferry_err peers_add(ferry_node *node, const char *url);
ferry_err peers_remove(ferry_node *node, const char *url);
typedef int (*peers_cb)(const char *url, void *payload);
ferry_err peers_list(ferry_node *node, peers_cb cb, void *payload);

/* What a running node last knew about one connection. */
typedef struct peer_status {
	char key[TRUST_MAX_URL_BYTES + 8]; /* table key (id hex or url:URL) */
	int has_id;
	uint8_t id[FERRY_PUBLIC_KEY_BYTES];
	char name[TRUST_MAX_NAME_BYTES + 1];
	char url[TRUST_MAX_URL_BYTES + 1]; /* "" for inbound */
	int online;
	uint64_t updated_ms;	 /* when this record was written */
	uint64_t connected_ms;	 /* last handshake */
	uint64_t last_sync_ms;	 /* last time both directions caught up */
	uint64_t pending_send;	 /* changes we have queued for the peer */
	uint64_t pending_recv;	 /* changes the peer has queued for us */
	uint64_t sent, received; /* changes, this process's lifetime */
	uint64_t refused_in;	 /* segments we refused from the peer */
	uint64_t refused_out;	 /* segments the peer refused from us */
	char last_refusal[256];
	char last_error[256];
	uint64_t last_error_ms;
} peer_status;

ferry_err peer_status_put(ferry_node *node, const peer_status *st);
/* Errors: FERRY_E_NOT_FOUND. */
ferry_err peer_status_get(ferry_node *node, const char *key, peer_status *out);
typedef int (*peer_status_cb)(const peer_status *st, void *payload);
ferry_err peer_status_list(ferry_node *node, peer_status_cb cb, void *payload);

/* The table key for a peer id ("<hex>") or an unreached URL ("url:<URL>"). */
void peer_status_key_id(char *out, size_t len, const uint8_t *id);
void peer_status_key_url(char *out, size_t len, const char *url);

#endif
