/*
 * store.h — ferry's view of LMDB: one environment per node, a fixed set of
 * named databases, transactions, cursors. Only store_lmdb.c includes
 * lmdb.h; LMDB errors are translated here and their text kept in the
 * store's detail buffer.
 *
 * Databases (keys and values are documented in docs/architecture.md):
 */
#ifndef FERRY_STORE_H
#define FERRY_STORE_H

#include "ferry.h"

typedef enum store_db {
	DB_META,      /* name -> value (format, hlc, counters) */
	DB_RECORDS,   /* scope \0 collection \0 key -> merged state */
	DB_COUNTS,    /* scope \0 collection -> be64 live records */
	DB_CHAINS,    /* origin(32) scope -> be64 id, be64 seq, head(32) */
	DB_CHAIN_IDS, /* be64 id -> origin(32) scope */
	DB_LOG,	      /* be64 chain id, be64 seq -> entry bytes */
	DB_SIGS,      /* be64 chain id, be64 seq -> head signature(64) */
	DB_ARRIVAL,   /* be64 cursor -> be64 chain id, be64 seq */
	DB_CONFLICTS, /* be64 id -> conflict record (msgpack) */
	DB_ORIGINS,   /* origin(32) -> name */
	DB_KV,	      /* table \0 key -> value (ferry_kv_*) */
	DB_COUNT_
} store_db;

typedef struct store store;
typedef struct store_txn store_txn;
typedef struct store_cursor store_cursor;

/* A borrowed byte range. Values read from the store point into the map and
 * are valid until the transaction ends. */
typedef struct store_val {
	const void *data;
	size_t len;
} store_val;

#define STORE_VAL(p, n) ((store_val){(p), (n)})

/* Open the environment in `dir` (creating the databases). `map_size` 0 =
 * default. Errors: FERRY_E_STORE, FERRY_E_IO (detail via store_detail on
 * failure: written into `detail`). */
ferry_err store_open(store **out, const char *dir, uint64_t map_size,
		     int no_sync, char *detail, size_t detail_len);
void store_close(store *st);

/* Text of the last LMDB failure on this store. */
const char *store_detail(const store *st);

ferry_err store_begin(store_txn **out, store *st, int write);
/* Commit; the handle is freed whatever the result. */
ferry_err store_commit(store_txn *txn);
/* Abort; accepts NULL. */
void store_abort(store_txn *txn);

/* FERRY_E_NOT_FOUND if absent. */
ferry_err store_get(store_txn *txn, store_db db, store_val key, store_val *val);
ferry_err store_put(store_txn *txn, store_db db, store_val key, store_val val);
/* Put a key known to sort after every key in `db` (faster). */
ferry_err store_append(store_txn *txn, store_db db, store_val key,
		       store_val val);
/* FERRY_E_NOT_FOUND if absent. */
ferry_err store_del(store_txn *txn, store_db db, store_val key);
ferry_err store_entries(store_txn *txn, store_db db, uint64_t *out);

ferry_err store_cursor_open(store_cursor **out, store_txn *txn, store_db db);
void store_cursor_close(store_cursor *c);

typedef enum store_seek {
	STORE_FIRST,
	STORE_LAST,
	STORE_NEXT,
	STORE_PREV,
	STORE_AT_OR_AFTER, /* first key >= the given key */
} store_seek;

/* Move the cursor and read where it lands. `key` is the input of
 * STORE_AT_OR_AFTER and the output of every move.
 * Errors: FERRY_E_NOT_FOUND past either end. */
ferry_err store_cursor_get(store_cursor *c, store_seek how, store_val *key,
			   store_val *val);
/* Delete the entry under the cursor. */
ferry_err store_cursor_del(store_cursor *c);

/* Size of the data file in bytes. */
ferry_err store_file_size(store *st, uint64_t *out);

#endif
