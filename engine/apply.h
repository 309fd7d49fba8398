/*
 * apply.h — one write transaction that appends log entries and merges them
 * into the records. Local commits (txn.c) and received segments
 * (ferry_sync_apply) both go through here, so a change is stored the same
 * way whichever node wrote it.
 *
 * Per entry, in one LMDB transaction:
 *   1. DB_LOG      (chain id, seq) -> entry bytes
 *   2. DB_ARRIVAL  next cursor     -> (chain id, seq)
 *   3. DB_RECORDS  merged state of the record (merge.h)
 *   4. DB_COUNTS   live-record count of the collection, if liveness changed
 *   5. DB_CONFLICTS values that lost against another origin (remote only)
 * and at commit the touched chain heads, their signatures and the meta
 * counters (HLC, arrival cursor, next chain id, conflict id).
 */
#ifndef FERRY_APPLY_H
#define FERRY_APPLY_H

#include <msgpack.h>

#include "changelog.h"
#include "hlc.h"
#include "merge.h"
#include "node.h"

/* A chain as held: (origin, scope) with its local id and head. */
typedef struct apply_chain {
	uint64_t id;
	uint8_t origin[FERRY_PUBLIC_KEY_BYTES];
	char scope[FERRY_MAX_SCOPE_BYTES + 1];
	uint64_t seq; /* last held sequence, 0 if none */
	uint8_t head[FERRY_HASH_BYTES];
	uint64_t signed_seq;   /* last sequence with a stored signature */
	size_t unsigned_bytes; /* entry bytes appended since signed_seq */
	int is_new;
	int dirty;
} apply_chain;

typedef struct apply_count {
	char key[FERRY_MAX_SCOPE_BYTES + FERRY_MAX_COLLECTION_BYTES + 2];
	size_t key_len;
	int64_t delta;
} apply_count;

typedef struct apply_ctx {
	ferry_node *node;
	store_txn *txn;
	hlc_clock clock;
	uint64_t wall_ms;
	uint64_t arrival;
	uint64_t next_chain;
	uint64_t conflict_seq;
	uint64_t conflicts_added;
	apply_chain *chains;
	size_t nchains, chains_cap;
	apply_count *counts;
	size_t ncounts, counts_cap;
	msgpack_sbuffer scratch;
	/* The log's last key: an entry past it is appended, which fills
	 * pages instead of splitting them in half (most writes extend the
	 * newest chain, so this is the common case). */
	uint8_t log_tail[16];
	/* The entry being merged, for conflict records. */
	const char *cur_scope;
	const changelog_entry *cur_entry;
	ferry_err loss_err;
} apply_ctx;

/* Open the write transaction and load the counters. */
ferry_err apply_begin(apply_ctx *ctx, ferry_node *node);

/* The chain (origin, scope), loaded or (if `create`) started empty.
 * Errors: FERRY_E_NOT_FOUND when absent and !create. The pointer is valid
 * until the next apply_chain_get(). */
ferry_err apply_chain_get(apply_ctx *ctx, const uint8_t *origin,
			  const char *scope, int create, apply_chain **out);

/* Append entry `e` (bytes `raw`, hash `hash`) as chain->seq + 1 and merge
 * it. Local writes (`local`) must keep the record within
 * FERRY_MAX_RECORD_BYTES and record no conflicts; received ones always
 * merge (refusing would break convergence). */
ferry_err apply_entry(apply_ctx *ctx, apply_chain *chain,
		      const changelog_entry *e, const void *raw, size_t len,
		      const uint8_t hash[FERRY_HASH_BYTES], int local);

/* Store `sig` as the signature of the chain's current head. */
ferry_err apply_sign(apply_ctx *ctx, apply_chain *chain,
		     const uint8_t sig[FERRY_SIGNATURE_BYTES]);

/* Write heads, counts and counters, and commit. Frees the context. */
ferry_err apply_commit(apply_ctx *ctx);

/* Abandon everything. Frees the context. */
void apply_abort(apply_ctx *ctx);

/* Merge one entry into DB_RECORDS of `txn` (also used by ferry_verify on a
 * scratch store), as the change with arrival `cursor`. `live_delta` gets
 * -1, 0 or +1. */
ferry_err apply_merge_record(store_txn *txn, const char *scope,
			     const changelog_entry *e,
			     const uint8_t origin[FERRY_PUBLIC_KEY_BYTES],
			     uint64_t cursor, msgpack_sbuffer *scratch,
			     size_t max_record, int *live_delta,
			     merge_loss_fn on_loss, void *payload);

/* A DB_RECORDS value is the canonical merged state (merge.h) followed by a
 * node-local trailer: be64 cursor at which the record last became live,
 * be64 cursor of the last change to it. The trailer is not part of the
 * merged state: digests and verify look at the state only. */
#define APPLY_RECORD_TRAILER_BYTES 16

typedef struct apply_record_value {
	const void *state;
	size_t state_len;
	uint64_t created_cursor, changed_cursor;
} apply_record_value;

/* Split a stored value. Errors: FERRY_E_CORRUPT. */
ferry_err apply_record_split(apply_record_value *out, const void *buf,
			     size_t len);

/* Record key: scope \0 collection \0 key. Returns its length. */
size_t apply_record_key(char *out, const char *scope, const char *collection,
			const char *key);

/* Chain key for DB_CHAINS: origin(32) scope. Returns its length. */
size_t apply_chain_key(uint8_t *out, const uint8_t *origin, const char *scope);

/* Log/signature key: be64 chain id, be64 seq. */
void apply_log_key(uint8_t out[16], uint64_t chain_id, uint64_t seq);

#define APPLY_RECORD_KEY_MAX                                                   \
	(FERRY_MAX_SCOPE_BYTES + FERRY_MAX_COLLECTION_BYTES +                  \
	 FERRY_MAX_KEY_BYTES + 2)
#define APPLY_CHAIN_KEY_MAX (FERRY_PUBLIC_KEY_BYTES + FERRY_MAX_SCOPE_BYTES)
#define APPLY_CHAIN_VALUE_BYTES (8 + 8 + FERRY_HASH_BYTES)

#endif
