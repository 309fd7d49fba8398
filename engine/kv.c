/*
 * kv.c — small named tables for the layers above the engine (ferry_kv_*):
 * the trust list, peers, connection status. Stored in DB_KV as
 * table \0 key -> value; every change bumps META_KV_GENERATION in the same
 * transaction, so other processes notice with one cheap read.
 * Generations are per table ("kv_gen:" table in meta), so a process that
 * writes connection statuses often does not wake the trust-list watchers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"
#include "node.h"

#define KV_MAX_TABLE_BYTES 64
#define KV_MAX_KEY_BYTES 256
#define KV_KEY_MAX (KV_MAX_TABLE_BYTES + 1 + KV_MAX_KEY_BYTES)

static ferry_err kv_key(ferry_node *node, char *out, size_t *len,
			const char *table, const char *key)
{
	ferry_err err = node_check_name(node, "kv table", table,
					KV_MAX_TABLE_BYTES, "64 bytes");
	size_t t;
	if (!err && key)
		err = node_check_name(node, "kv key", key, KV_MAX_KEY_BYTES,
				      "256 bytes");
	if (err)
		return err;
	t = strlen(table);
	memcpy(out, table, t + 1);
	*len = t + 1;
	if (key) {
		memcpy(out + t + 1, key, strlen(key));
		*len += strlen(key);
	}
	return FERRY_OK;
}

ferry_err kv_check(ferry_node *node, const char *table, const char *key,
		   size_t len)
{
	char k[KV_KEY_MAX];
	size_t klen;
	ferry_err err = kv_key(node, k, &klen, table, key);
	if (!err && len > FERRY_MAX_VALUE_BYTES)
		err = node_fail(node, FERRY_E_LIMIT,
				"kv value of %zu bytes; the limit "
				"FERRY_MAX_VALUE_BYTES is %d",
				len, FERRY_MAX_VALUE_BYTES);
	return err;
}

ferry_err kv_write(store_txn *txn, const char *table, const char *key,
		   const void *value, size_t len)
{
	char k[KV_KEY_MAX];
	char gen_key[sizeof(META_KV_GENERATION) + KV_MAX_TABLE_BYTES];
	size_t t = strlen(table), klen = t + 1 + strlen(key);
	uint64_t gen = 0;
	ferry_err err;

	memcpy(k, table, t + 1);
	memcpy(k + t + 1, key, klen - t - 1);
	if (value)
		err = store_put(txn, DB_KV, STORE_VAL(k, klen),
				STORE_VAL(value, len));
	else
		err = store_del(txn, DB_KV, STORE_VAL(k, klen));
	snprintf(gen_key, sizeof(gen_key), "%s%s", META_KV_GENERATION, table);
	if (!err)
		err = meta_get_u64(txn, gen_key, &gen);
	if (!err)
		err = meta_put_u64(txn, gen_key, gen + 1);
	return err;
}

/* One write transaction: put (value != NULL) or delete. */
static ferry_err kv_change(ferry_node *node, const char *table, const char *key,
			   const void *value, size_t len)
{
	store_txn *txn;
	ferry_err err;

	if (!node)
		return FERRY_E_INVALID;
	node_clear_error(node);
	err = kv_check(node, table, key, value ? len : 0);
	if (err)
		return err;
	err = store_begin(&txn, node->store, 1);
	if (err)
		return node_store_fail(node, err, "changing a kv table");
	err = kv_write(txn, table, key, value, len);
	if (err) {
		store_abort(txn);
		if (err == FERRY_E_NOT_FOUND)
			return node_fail(node, err, "%s has no entry %s", table,
					 key);
		return node_store_fail(node, err, "changing a kv table");
	}
	err = store_commit(txn);
	return err ? node_store_fail(node, err, "changing a kv table") : err;
}

ferry_err ferry_kv_put(ferry_node *node, const char *table, const char *key,
		       const void *value, size_t len)
{
	if (!value && len)
		return FERRY_E_INVALID;
	return kv_change(node, table, key, value ? value : "", len);
}

ferry_err ferry_kv_delete(ferry_node *node, const char *table, const char *key)
{
	return kv_change(node, table, key, NULL, 0);
}

ferry_err ferry_kv_get(void **out, size_t *out_len, ferry_node *node,
		       const char *table, const char *key)
{
	char k[KV_KEY_MAX];
	size_t klen;
	store_txn *txn;
	store_val v;
	ferry_err err;

	*out = NULL;
	*out_len = 0;
	if (!node)
		return FERRY_E_INVALID;
	node_clear_error(node);
	err = kv_key(node, k, &klen, table, key);
	if (err)
		return err;
	err = store_begin(&txn, node->store, 0);
	if (err)
		return node_store_fail(node, err, "reading a kv table");
	err = store_get(txn, DB_KV, STORE_VAL(k, klen), &v);
	if (!err) {
		*out = malloc(v.len ? v.len : 1);
		if (*out) {
			memcpy(*out, v.data, v.len);
			*out_len = v.len;
		} else {
			err = FERRY_E_NOMEM;
		}
	}
	store_abort(txn);
	if (err == FERRY_E_NOT_FOUND)
		return node_fail(node, err, "%s has no entry %s", table, key);
	return err ? node_store_fail(node, err, "reading a kv table") : err;
}

ferry_err ferry_kv_scan(ferry_node *node, const char *table, ferry_kv_cb cb,
			void *payload)
{
	char prefix[KV_KEY_MAX], key[KV_MAX_KEY_BYTES + 1];
	size_t plen;
	store_cursor *cur = NULL;
	store_txn *txn;
	store_val k, v;
	ferry_err err;

	if (!node || !cb)
		return FERRY_E_INVALID;
	node_clear_error(node);
	err = kv_key(node, prefix, &plen, table, NULL);
	if (err)
		return err;
	err = store_begin(&txn, node->store, 0);
	if (err)
		return node_store_fail(node, err, "reading a kv table");
	err = store_cursor_open(&cur, txn, DB_KV);
	k = STORE_VAL(prefix, plen);
	if (!err)
		err = store_cursor_get(cur, STORE_AT_OR_AFTER, &k, &v);
	while (!err) {
		size_t klen = k.len - plen;
		if (k.len < plen || memcmp(k.data, prefix, plen))
			break;
		if (klen > KV_MAX_KEY_BYTES) {
			err = FERRY_E_CORRUPT;
			break;
		}
		memcpy(key, (const char *)k.data + plen, klen);
		key[klen] = '\0';
		if (cb(key, v.data, v.len, payload))
			break;
		err = store_cursor_get(cur, STORE_NEXT, &k, &v);
	}
	store_cursor_close(cur);
	store_abort(txn);
	if (err == FERRY_E_NOT_FOUND)
		err = FERRY_OK;
	return err ? node_store_fail(node, err, "reading a kv table") : err;
}

ferry_err ferry_kv_generation(uint64_t *out, ferry_node *node,
			      const char *table)
{
	char gen_key[sizeof(META_KV_GENERATION) + KV_MAX_TABLE_BYTES];
	store_txn *txn;
	ferry_err err;
	*out = 0;
	if (!node)
		return FERRY_E_INVALID;
	node_clear_error(node);
	err = node_check_name(node, "kv table", table, KV_MAX_TABLE_BYTES,
			      "64 bytes");
	if (err)
		return err;
	snprintf(gen_key, sizeof(gen_key), "%s%s", META_KV_GENERATION, table);
	err = store_begin(&txn, node->store, 0);
	if (!err) {
		err = meta_get_u64(txn, gen_key, out);
		store_abort(txn);
	}
	return err ? node_store_fail(node, err, "reading the kv generation")
		   : err;
}
