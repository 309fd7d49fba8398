/*
 * adapter_state.h — what adapters remember, in the node's kv tables
 * (docs/adapters.md, "Storage"), shared by the push engine, pulls,
 * webhooks and the CLI, which may run in different processes.
 *
 * Tables (NAME is the adapter's name):
 *   adapter.NAME         "cursor" -> {"cursor": N}
 *                        "r.<32 hex>" -> record state (below)
 *                        "x.<32 hex>" -> link: external id -> record,
 *                                        {"s": scope, "c": collection,
 *                                         "k": key, "id": external id}
 *   adapter.NAME.dlq     "<20-digit cursor>" -> dead letter (below)
 *   adapter.NAME.events  event id (or "h.<32 hex>" when longer than 200
 *                        bytes) -> {"result": <the webhook's answer>}
 *   adapter.status       NAME -> status (docs/adapters.md, "Status")
 *   adapter.control      "reload" -> {"requested": ms} (bumped by the
 *                        CLI; the serving process reloads on any change)
 *                        "running" -> {"path", "loaded": ms, "error"?}
 *
 * A record state is {"s", "c", "k", "id"?: external id, "h": {field:
 * hash}}: the external id the system gave the record, and a hash of each
 * field value last exchanged with the system (sent in a 2xx, or received
 * by a pull or webhook) — what keeps an adapter from echoing a value back
 * to where it came from. A state without "id" and with an empty "h" means
 * the adapter knows nothing of the record.
 *
 * A dead letter is {"id": cursor, "origin": hex, "scope", "seq", "hlc",
 * "collection", "key", "op": "put"|"delete", "fields": [names],
 * "state": "failed"|"blocked", "blocked_by"?: id, "retry"?: true,
 * "attempts", "generation" (4xx refusals so far), "error", "time": ms,
 * "request"?: {"method", "url", "body"}, "response"?: {"status", "body"}} —
 * "blocked" entries wait behind an earlier dead letter of the same record.
 */
#ifndef FERRY_ADAPTER_STATE_H
#define FERRY_ADAPTER_STATE_H

#include <stddef.h>

#include <jansson.h>

#include "ferry.h"

#define ADAPTER_STATUS_TABLE "adapter.status"
#define ADAPTER_CONTROL_TABLE "adapter.control"
/* "adapter." + name (<= 32) + ".events" + NUL */
#define ADAPTER_TABLE_BYTES 64
/* "r." or "x." + 32 hex + NUL */
#define ADAPTER_STATE_KEY_BYTES 35
/* 16 hex + NUL */
#define ADAPTER_HASH_BYTES 17
/* 20 digits + NUL */
#define ADAPTER_DLQ_KEY_BYTES 21

/* "adapter.NAME" + suffix ("", ".dlq" or ".events"). */
void adapter_table(char out[ADAPTER_TABLE_BYTES], const char *adapter,
		   const char *suffix);

/* The dead-letter key of change `cursor`. */
void adapter_dlq_key(char out[ADAPTER_DLQ_KEY_BYTES], uint64_t cursor);

/* The kv key of the state of record (scope, collection, key): "r." and
 * 32 hex digits — also a fixed-size handle for the record itself. */
void adapter_record_key(char out[ADAPTER_STATE_KEY_BYTES], const char *scope,
			const char *collection, const char *key);

/* The hash of a field value as stored in record states. */
void adapter_value_hash(char out[ADAPTER_HASH_BYTES], const json_t *value);

/* An external id as text: strings as they are, integers in decimal,
 * anything else as compact JSON. malloc'd; NULL when out of memory. */
char *adapter_id_text(const json_t *id);

/* The state of record (scope, collection, key) for `adapter`: a new
 * object, an empty one ({"s","c","k","h":{}}) if the adapter has none.
 * Errors: kv read errors; FERRY_E_CORRUPT for a damaged entry. */
ferry_err adapter_state_get(json_t **out, ferry_node *node, const char *adapter,
			    const char *scope, const char *collection,
			    const char *key);

/* Store `state` (borrowed) with `txn`'s commit. */
ferry_err adapter_state_txn_put(ferry_txn *txn, const char *adapter,
				const json_t *state);

/* The external id in `state` (borrowed), or NULL. */
const json_t *adapter_state_id(const json_t *state);

/* 1 if `value` is what `field` last held in an exchange with the system. */
int adapter_state_synced(const json_t *state, const char *field,
			 const json_t *value);

/* Remember `value` as exchanged for `field` (NULL: forget the field). */
void adapter_state_set_hash(json_t *state, const char *field,
			    const json_t *value);

/* Set the external id (a copy) or, with NULL, forget id and hashes. */
void adapter_state_set_id(json_t *state, const json_t *id);

/* The record linked to external id `id` in `collection`: *out is a new
 * {"s","c","k","id"} object. Errors: FERRY_E_NOT_FOUND, kv errors. */
ferry_err adapter_link_get(json_t **out, ferry_node *node, const char *adapter,
			   const char *collection, const json_t *id);

/* Link `id` in `collection` to (scope, collection, key) with `txn`. */
ferry_err adapter_link_txn_put(ferry_txn *txn, const char *adapter,
			       const char *scope, const char *collection,
			       const char *key, const json_t *id);

/* Record, with `txn`, that the adapter received `fields` (an object; the
 * values as now written to the record) for the record, with external id
 * `id` (may be NULL): the state's hashes and id, and the link. What
 * pulls and webhooks call so the values are not pushed back. */
ferry_err adapter_note_inbound(ferry_txn *txn, ferry_node *node,
			       const char *adapter, const char *scope,
			       const char *collection, const char *key,
			       const json_t *id, const json_t *fields);

#endif
