/*
 * node.h — the node handle's insides, shared by the engine's modules.
 */
#ifndef FERRY_NODE_H
#define FERRY_NODE_H

#include <sodium.h>

#include "ferry.h"
#include "store.h"

/* On-disk format of the store; bumped on incompatible layout changes. */
#define NODE_FORMAT_VERSION 1

/* Meta keys (DB_META). Values are be64 unless noted. */
#define META_FORMAT "format"
#define META_HLC "hlc"
#define META_ARRIVAL "arrival"		 /* newest arrival cursor */
#define META_NEXT_CHAIN "next_chain"	 /* next chain id to assign */
#define META_CONFLICT_SEQ "conflict_seq" /* newest conflict id */
#define META_KV_GENERATION "kv_gen:"	 /* + table: bumped by its changes */

#define DEFAULT_MAX_CLOCK_DRIFT_MS UINT64_C(300000)
#define DEFAULT_CONFLICT_RETENTION UINT64_C(10000)

struct ferry_node {
	store *store;
	char *dir;
	ferry_node_options opts;
	uint8_t public_key[FERRY_PUBLIC_KEY_BYTES];
	uint8_t secret_key[crypto_sign_SECRETKEYBYTES];
};

/* Record `err` with a detail message for this thread's calls on the node;
 * returns `err`. */
ferry_err node_fail(ferry_node *node, ferry_err err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Record a store failure (detail from the store); returns `err`. */
ferry_err node_store_fail(ferry_node *node, ferry_err err, const char *what);

/* Clear the detail at the start of a public call. */
void node_clear_error(ferry_node *node);

/* True if this thread's current call on `node` has recorded a detail. */
int node_has_error(const ferry_node *node);

uint64_t node_wall_ms(const ferry_node *node);

/* Validate a name (scope, collection, key, field): non-empty, no NUL,
 * at most `max` bytes. `what` names it in the detail. */
ferry_err node_check_name(ferry_node *node, const char *what, const char *name,
			  size_t max, const char *limit);

/* Read/write a be64 meta value (absent reads as 0). */
ferry_err meta_get_u64(store_txn *txn, const char *name, uint64_t *out);
ferry_err meta_put_u64(store_txn *txn, const char *name, uint64_t value);

/* Short hex of an origin for messages ("3fa2c1d0"). */
void node_short_id(char out[9], const uint8_t *origin);

#endif
