/*
 * merge.h — a record's merged state and the per-field last-writer-wins rule.
 *
 * State: a tombstone stamp (or none) and, per field, the winning write:
 * (stamp, origin, value). Writes are ordered by (HLC, origin id); a field
 * is kept only while its write is newer than the tombstone, so the state is
 * a function of the set of writes seen, whatever their order or repetition:
 *   tombstone = max(delete stamps)
 *   field f   = max(writes of f), kept if > tombstone
 * The encoding (merge_state_encode) is canonical: fields sorted bytewise by
 * name, values in canonical msgpack, so equal states are equal bytes.
 */
#ifndef FERRY_MERGE_H
#define FERRY_MERGE_H

#include <msgpack.h>

#include "ferry.h"

/* A write's position in the total order. */
typedef struct merge_stamp {
	ferry_hlc hlc;
	uint8_t origin[FERRY_PUBLIC_KEY_BYTES];
} merge_stamp;

/* <0, 0, >0 as a is older than, the same write as, newer than b. */
int merge_stamp_cmp(const merge_stamp *a, const merge_stamp *b);

typedef struct merge_field {
	char *name;	/* owned */
	uint8_t *value; /* owned, canonical msgpack */
	size_t value_len;
	merge_stamp stamp;
} merge_field;

typedef struct merge_state {
	int has_tombstone;
	merge_stamp tombstone;
	merge_field *fields; /* sorted by name, bytewise */
	size_t nfields;
	size_t cap;
} merge_state;

/* A value that lost: called by the merge functions for the conflict log.
 * `loser_value` is NULL when the loser is a tombstone. */
typedef struct merge_loss {
	const char *field;
	const merge_stamp *loser;
	const void *loser_value;
	size_t loser_value_len;
	const merge_stamp *winner;
	int winner_is_delete;
} merge_loss;

typedef void (*merge_loss_fn)(const merge_loss *loss, void *payload);

void merge_state_init(merge_state *st);
void merge_state_clear(merge_state *st);

/* Decode a stored state (bounded; never trusts counts).
 * Errors: FERRY_E_CORRUPT, FERRY_E_NOMEM. */
ferry_err merge_state_decode(merge_state *st, const void *buf, size_t len);

/* Canonical encoding into `out` (appended). */
ferry_err merge_state_encode(msgpack_sbuffer *out, const merge_state *st);

/* True if the record has at least one live field. */
int merge_state_live(const merge_state *st);

/* Merge a write of fields (names and canonical values, any order, no
 * duplicates) stamped `stamp`. `changed` (may be NULL) is set non-zero if
 * the state changed. Values that lose to a write from another origin are
 * reported to `on_loss` (may be NULL).
 * Errors: FERRY_E_NOMEM (state unchanged in part: discard it). */
ferry_err merge_put(merge_state *st, const merge_stamp *stamp,
		    const ferry_field *fields, size_t nfields, int *changed,
		    merge_loss_fn on_loss, void *payload);

/* Merge a delete stamped `stamp`. */
ferry_err merge_delete(merge_state *st, const merge_stamp *stamp, int *changed,
		       merge_loss_fn on_loss, void *payload);

#endif
