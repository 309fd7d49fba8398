/*
 * store_lmdb.c — the one file that talks to LMDB (store.h).
 */
#include "store.h"

#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define STORE_DEFAULT_MAP_SIZE (UINT64_C(32) << 30)

static const char *const db_names[DB_COUNT_] = {
	[DB_META] = "meta",
	[DB_RECORDS] = "records",
	[DB_COUNTS] = "counts",
	[DB_CHAINS] = "chains",
	[DB_CHAIN_IDS] = "chain_ids",
	[DB_LOG] = "log",
	[DB_SIGS] = "sigs",
	[DB_ARRIVAL] = "arrival",
	[DB_CONFLICTS] = "conflicts",
	[DB_ORIGINS] = "origins",
	[DB_KV] = "kv",
};

struct store {
	MDB_env *env;
	MDB_dbi dbi[DB_COUNT_];
	char path[4096];
	char detail[256];
};

struct store_txn {
	store *st;
	MDB_txn *txn;
};

struct store_cursor {
	store *st;
	MDB_cursor *cur;
};

static ferry_err translate(store *st, int rc, const char *what)
{
	switch (rc) {
	case MDB_SUCCESS:
		return FERRY_OK;
	case MDB_NOTFOUND:
		return FERRY_E_NOT_FOUND;
	case MDB_MAP_FULL:
		snprintf(st->detail, sizeof(st->detail),
			 "%s: LMDB map is full (%s); reopen with a larger "
			 "map_size",
			 what, mdb_strerror(rc));
		return FERRY_E_MAP_FULL;
	case ENOMEM:
		return FERRY_E_NOMEM;
	default:
		snprintf(st->detail, sizeof(st->detail), "%s: %s", what,
			 mdb_strerror(rc));
		return rc > 0 ? FERRY_E_IO : FERRY_E_STORE;
	}
}

const char *store_detail(const store *st)
{
	return st->detail;
}

ferry_err store_open(store **out, const char *dir, uint64_t map_size,
		     int no_sync, char *detail, size_t detail_len)
{
	store *st = calloc(1, sizeof(*st));
	MDB_txn *txn = NULL;
	unsigned int flags = MDB_NOTLS | (no_sync ? MDB_NOSYNC : 0);
	int rc, dead = 0;
	ferry_err err;

	*out = NULL;
	if (!st)
		return FERRY_E_NOMEM;
	snprintf(st->path, sizeof(st->path), "%s/data.mdb", dir);
	rc = mdb_env_create(&st->env);
	if (!rc)
		rc = mdb_env_set_maxdbs(st->env, DB_COUNT_);
	if (!rc)
		rc = mdb_env_set_mapsize(
			st->env, map_size ? map_size : STORE_DEFAULT_MAP_SIZE);
	if (!rc)
		rc = mdb_env_open(st->env, dir, flags, 0600);
	/* A process killed inside a read transaction leaves its reader slot
	 * taken, which would stop page reuse for good: clear such slots. */
	if (!rc)
		rc = mdb_reader_check(st->env, &dead);
	if (!rc)
		rc = mdb_txn_begin(st->env, NULL, 0, &txn);
	for (int i = 0; i < DB_COUNT_ && !rc; i++)
		rc = mdb_dbi_open(txn, db_names[i], MDB_CREATE, &st->dbi[i]);
	if (!rc) {
		rc = mdb_txn_commit(txn);
		txn = NULL;
	}
	if (rc) {
		err = translate(st, rc, "opening the store");
		snprintf(detail, detail_len, "%s: %s", dir, st->detail);
		if (txn)
			mdb_txn_abort(txn);
		mdb_env_close(st->env);
		free(st);
		return err;
	}
	*out = st;
	return FERRY_OK;
}

void store_close(store *st)
{
	if (!st)
		return;
	mdb_env_close(st->env);
	free(st);
}

ferry_err store_begin(store_txn **out, store *st, int write)
{
	store_txn *t = malloc(sizeof(*t));
	int rc;
	*out = NULL;
	if (!t)
		return FERRY_E_NOMEM;
	t->st = st;
	rc = mdb_txn_begin(st->env, NULL, write ? 0 : MDB_RDONLY, &t->txn);
	if (rc) {
		free(t);
		return translate(st, rc, "beginning a transaction");
	}
	*out = t;
	return FERRY_OK;
}

ferry_err store_commit(store_txn *txn)
{
	int rc = mdb_txn_commit(txn->txn);
	ferry_err err = translate(txn->st, rc, "committing");
	free(txn);
	return err;
}

void store_abort(store_txn *txn)
{
	if (!txn)
		return;
	mdb_txn_abort(txn->txn);
	free(txn);
}

ferry_err store_get(store_txn *txn, store_db db, store_val key, store_val *val)
{
	MDB_val k = {key.len, (void *)key.data}, v;
	int rc = mdb_get(txn->txn, txn->st->dbi[db], &k, &v);
	if (rc)
		return translate(txn->st, rc, db_names[db]);
	val->data = v.mv_data;
	val->len = v.mv_size;
	return FERRY_OK;
}

static ferry_err put(store_txn *txn, store_db db, store_val key, store_val val,
		     unsigned int flags)
{
	MDB_val k = {key.len, (void *)key.data};
	MDB_val v = {val.len, (void *)val.data};
	int rc = mdb_put(txn->txn, txn->st->dbi[db], &k, &v, flags);
	return translate(txn->st, rc, db_names[db]);
}

ferry_err store_put(store_txn *txn, store_db db, store_val key, store_val val)
{
	return put(txn, db, key, val, 0);
}

ferry_err store_append(store_txn *txn, store_db db, store_val key,
		       store_val val)
{
	return put(txn, db, key, val, MDB_APPEND);
}

ferry_err store_del(store_txn *txn, store_db db, store_val key)
{
	MDB_val k = {key.len, (void *)key.data};
	int rc = mdb_del(txn->txn, txn->st->dbi[db], &k, NULL);
	return translate(txn->st, rc, db_names[db]);
}

ferry_err store_entries(store_txn *txn, store_db db, uint64_t *out)
{
	MDB_stat stat;
	int rc = mdb_stat(txn->txn, txn->st->dbi[db], &stat);
	if (rc)
		return translate(txn->st, rc, db_names[db]);
	*out = stat.ms_entries;
	return FERRY_OK;
}

ferry_err store_cursor_open(store_cursor **out, store_txn *txn, store_db db)
{
	store_cursor *c = malloc(sizeof(*c));
	int rc;
	*out = NULL;
	if (!c)
		return FERRY_E_NOMEM;
	c->st = txn->st;
	rc = mdb_cursor_open(txn->txn, txn->st->dbi[db], &c->cur);
	if (rc) {
		free(c);
		return translate(txn->st, rc, db_names[db]);
	}
	*out = c;
	return FERRY_OK;
}

void store_cursor_close(store_cursor *c)
{
	if (!c)
		return;
	mdb_cursor_close(c->cur);
	free(c);
}

ferry_err store_cursor_get(store_cursor *c, store_seek how, store_val *key,
			   store_val *val)
{
	static const MDB_cursor_op ops[] = {
		[STORE_FIRST] = MDB_FIRST,
		[STORE_LAST] = MDB_LAST,
		[STORE_NEXT] = MDB_NEXT,
		[STORE_PREV] = MDB_PREV,
		[STORE_AT_OR_AFTER] = MDB_SET_RANGE,
	};
	MDB_val k = {0, NULL}, v = {0, NULL};
	int rc;
	if (how == STORE_AT_OR_AFTER) {
		k.mv_size = key->len;
		k.mv_data = (void *)key->data;
	}
	rc = mdb_cursor_get(c->cur, &k, &v, ops[how]);
	if (rc)
		return translate(c->st, rc, "cursor");
	key->data = k.mv_data;
	key->len = k.mv_size;
	if (val) {
		val->data = v.mv_data;
		val->len = v.mv_size;
	}
	return FERRY_OK;
}

ferry_err store_cursor_del(store_cursor *c)
{
	return translate(c->st, mdb_cursor_del(c->cur, 0), "cursor delete");
}

ferry_err store_file_size(store *st, uint64_t *out)
{
	struct stat sb;
	if (stat(st->path, &sb) != 0) {
		snprintf(st->detail, sizeof(st->detail), "%.200s: %s", st->path,
			 strerror(errno));
		return FERRY_E_IO;
	}
	*out = (uint64_t)sb.st_size;
	return FERRY_OK;
}
