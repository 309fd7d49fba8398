/*
 * adapter_map.h — one JSON document (a webhook payload, or one item of a
 * pulled list) mapped into one record write (docs/adapters.md, "Webhooks"
 * and "Pulls"), shared by rest_hooks.c and the pull engine.
 *
 * Two steps, so a caller can refuse a whole payload before it writes
 * anything: adapter_map_render() evaluates a mapping's templates against
 * the document (pure: no store), then adapter_map_apply() adds the write to
 * a transaction — following the adapter's link from the external id to the
 * record it already mirrors, writing only the fields whose value changed,
 * and remembering what was received so it is never pushed back (no echo).
 */
#ifndef FERRY_ADAPTER_MAP_H
#define FERRY_ADAPTER_MAP_H

#include <stddef.h>

#include <jansson.h>

#include "adapter_config.h"
#include "ferry.h"

/* A rendered mapping: the record to write and its fields. All members are
 * owned (adapter_mapped_clear frees them). */
typedef struct adapter_mapped {
	char *scope, *collection, *key;
	json_t *id;	/* external id (a string or an integer), or NULL */
	json_t *fields; /* object of field -> JSON value */
} adapter_mapped;

/* Render mapping `m` against `doc` (both borrowed).
 *
 * scope, collection and key must render to non-empty UTF-8 strings without
 * NUL within FERRY_MAX_SCOPE_BYTES / _COLLECTION_BYTES / _KEY_BYTES; a key
 * (or id) that renders to an integer (a template that is one placeholder
 * whose value is a number like 991) becomes its decimal text for the key
 * and stays an integer as the id. `fields` drops members whose lone
 * pointer is absent and must leave at least one.
 *
 * out:    filled on success; cleared (all NULL) on failure.
 * Errors: FERRY_E_INVALID with `why` naming the member and the pointer
 *         that is absent or the value that is wrong ("key: pointer
 *         /visit_id is absent"), FERRY_E_NOMEM. */
ferry_err adapter_map_render(adapter_mapped *out, const adapter_mapping *m,
			     const json_t *doc, char *why, size_t why_len);

/* Free the members of `m` and set them to NULL. Accepts NULL. */
void adapter_mapped_clear(adapter_mapped *m);

/* Add the write of `m` to `txn` for adapter `adapter`.
 *
 * 1. If m->id is linked (adapter_link_get in m->collection) to a record,
 *    that record's scope and key replace m's: the linked record is
 *    updated, whatever key the mapping would give a new one.
 * 2. The mapped fields are checked with hub_check_fields() (all of them,
 *    so whether a payload is accepted never depends on what is stored).
 * 3. The fields whose value differs from the record's current one (read
 *    with ferry_get; an absent field or record differs) are written with
 *    ferry_json_put() — except a field whose incoming value is the one
 *    last exchanged with the system (adapter_state_synced): the system
 *    has not changed it, so the record's different value is an edit made
 *    here, waiting to be pushed, and stays.
 * 4. adapter_note_inbound() records every mapped field (written or equal)
 *    and the id, so none of them is pushed back.
 *
 * Reads see the store as committed, not `txn`'s earlier writes: two
 * mappings of one transaction that hit the same record each compare with
 * the committed record.
 *
 * written: number of fields written (0: the record already held them).
 * Errors: FERRY_E_INVALID (a field check, or a name the engine refuses)
 *         with `why` naming the field or the name; read and kv errors of
 *         the store with the node's detail in `why`. On error `txn` may
 *         hold part of the write: abort it. */
ferry_err adapter_map_apply(ferry_txn *txn, ferry_node *node,
			    const char *adapter, adapter_mapped *m,
			    size_t *written, char *why, size_t why_len);

#endif
