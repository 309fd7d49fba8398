/*
 * adapter_state.c — what adapters remember in the kv tables (formats in
 * adapter_state.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "adapter_state.h"
#include "kvjson.h"

void adapter_table(char out[ADAPTER_TABLE_BYTES], const char *adapter,
		   const char *suffix)
{
	snprintf(out, ADAPTER_TABLE_BYTES, "adapter.%s%s", adapter, suffix);
}

void adapter_dlq_key(char out[ADAPTER_DLQ_KEY_BYTES], uint64_t cursor)
{
	snprintf(out, ADAPTER_DLQ_KEY_BYTES, "%020" PRIu64, cursor);
}

/* Names joined with NUL bytes, hashed: kv keys stay short and fixed
 * whatever the names' lengths. */
static void hashed_key(char out[ADAPTER_STATE_KEY_BYTES], char tag,
		       const char *const *parts, size_t nparts)
{
	crypto_generichash_state st;
	uint8_t digest[16];
	crypto_generichash_init(&st, NULL, 0, sizeof(digest));
	for (size_t i = 0; i < nparts; i++)
		crypto_generichash_update(&st, (const uint8_t *)parts[i],
					  strlen(parts[i]) + 1);
	crypto_generichash_final(&st, digest, sizeof(digest));
	out[0] = tag;
	out[1] = '.';
	sodium_bin2hex(out + 2, 33, digest, sizeof(digest));
}

void adapter_value_hash(char out[ADAPTER_HASH_BYTES], const json_t *value)
{
	/* Sorted keys: the same value hashes the same however its object
	 * members were ordered on the way in. */
	char *text = json_dumps(value, JSON_COMPACT | JSON_SORT_KEYS |
					       JSON_ENCODE_ANY);
	uint8_t digest[8];
	crypto_generichash(digest, sizeof(digest), (const uint8_t *)text,
			   text ? strlen(text) : 0, NULL, 0);
	free(text);
	sodium_bin2hex(out, ADAPTER_HASH_BYTES, digest, sizeof(digest));
}

char *adapter_id_text(const json_t *id)
{
	char buf[32];
	if (json_is_string(id))
		return strdup(json_string_value(id));
	if (json_is_integer(id)) {
		snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT,
			 json_integer_value(id));
		return strdup(buf);
	}
	return json_dumps(id, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

void adapter_record_key(char out[ADAPTER_STATE_KEY_BYTES], const char *scope,
			const char *collection, const char *key)
{
	const char *parts[] = {scope, collection, key};
	hashed_key(out, 'r', parts, 3);
}

ferry_err adapter_state_get(json_t **out, ferry_node *node, const char *adapter,
			    const char *scope, const char *collection,
			    const char *key)
{
	char table[ADAPTER_TABLE_BYTES], k[ADAPTER_STATE_KEY_BYTES];
	adapter_table(table, adapter, "");
	adapter_record_key(k, scope, collection, key);
	ferry_err err = kvjson_get(out, node, table, k);
	if (err == FERRY_E_NOT_FOUND ||
	    (!err && !json_is_object(json_object_get(*out, "h")))) {
		json_decref(*out);
		*out = json_pack("{s:s, s:s, s:s, s:{}}", "s", scope, "c",
				 collection, "k", key, "h");
		return *out ? FERRY_OK : FERRY_E_NOMEM;
	}
	return err;
}

static ferry_err state_key_of(char out[ADAPTER_STATE_KEY_BYTES],
			      const json_t *state)
{
	const char *s = json_string_value(json_object_get(state, "s"));
	const char *c = json_string_value(json_object_get(state, "c"));
	const char *k = json_string_value(json_object_get(state, "k"));
	if (!s || !c || !k)
		return FERRY_E_INVALID;
	adapter_record_key(out, s, c, k);
	return FERRY_OK;
}

ferry_err adapter_state_txn_put(ferry_txn *txn, const char *adapter,
				const json_t *state)
{
	char table[ADAPTER_TABLE_BYTES], k[ADAPTER_STATE_KEY_BYTES];
	ferry_err err = state_key_of(k, state);
	if (err)
		return err;
	adapter_table(table, adapter, "");
	return kvjson_txn_put(txn, table, k, state);
}

const json_t *adapter_state_id(const json_t *state)
{
	const json_t *id = json_object_get(state, "id");
	return json_is_null(id) ? NULL : id;
}

int adapter_state_synced(const json_t *state, const char *field,
			 const json_t *value)
{
	char hash[ADAPTER_HASH_BYTES];
	const char *held = json_string_value(
		json_object_get(json_object_get(state, "h"), field));
	if (!held || !value)
		return 0;
	adapter_value_hash(hash, value);
	return !strcmp(hash, held);
}

void adapter_state_set_hash(json_t *state, const char *field,
			    const json_t *value)
{
	char hash[ADAPTER_HASH_BYTES];
	json_t *hashes = json_object_get(state, "h");
	if (!hashes)
		return;
	if (!value) {
		json_object_del(hashes, field);
		return;
	}
	adapter_value_hash(hash, value);
	json_object_set_new(hashes, field, json_string(hash));
}

void adapter_state_set_id(json_t *state, const json_t *id)
{
	if (id) {
		json_object_set_new(state, "id", json_deep_copy(id));
		return;
	}
	json_object_del(state, "id");
	json_object_set_new(state, "h", json_object());
}

static ferry_err link_key(char out[ADAPTER_STATE_KEY_BYTES],
			  const char *collection, const json_t *id)
{
	char *text = adapter_id_text(id);
	if (!text)
		return FERRY_E_NOMEM;
	const char *parts[] = {collection, text};
	hashed_key(out, 'x', parts, 2);
	free(text);
	return FERRY_OK;
}

ferry_err adapter_link_get(json_t **out, ferry_node *node, const char *adapter,
			   const char *collection, const json_t *id)
{
	char table[ADAPTER_TABLE_BYTES], k[ADAPTER_STATE_KEY_BYTES];
	*out = NULL;
	ferry_err err = link_key(k, collection, id);
	if (err)
		return err;
	adapter_table(table, adapter, "");
	err = kvjson_get(out, node, table, k);
	if (!err && !json_is_string(json_object_get(*out, "k"))) {
		/* An unlinked entry: the record was deleted. */
		json_decref(*out);
		*out = NULL;
		return FERRY_E_NOT_FOUND;
	}
	return err;
}

ferry_err adapter_link_txn_put(ferry_txn *txn, const char *adapter,
			       const char *scope, const char *collection,
			       const char *key, const json_t *id)
{
	char table[ADAPTER_TABLE_BYTES], k[ADAPTER_STATE_KEY_BYTES];
	ferry_err err = link_key(k, collection, id);
	if (err)
		return err;
	adapter_table(table, adapter, "");
	json_t *link = key ? json_pack("{s:s, s:s, s:s, s:O}", "s", scope, "c",
				       collection, "k", key, "id", id)
			   : json_object();
	err = kvjson_txn_put(txn, table, k, link);
	json_decref(link);
	return err;
}

ferry_err adapter_note_inbound(ferry_txn *txn, ferry_node *node,
			       const char *adapter, const char *scope,
			       const char *collection, const char *key,
			       const json_t *id, const json_t *fields)
{
	json_t *state;
	const char *name;
	json_t *value;
	ferry_err err = adapter_state_get(&state, node, adapter, scope,
					  collection, key);
	if (err)
		return err;
	json_object_foreach((json_t *)fields, name, value)
		adapter_state_set_hash(state, name, value);
	if (id)
		adapter_state_set_id(state, id);
	err = adapter_state_txn_put(txn, adapter, state);
	if (!err && id)
		err = adapter_link_txn_put(txn, adapter, scope, collection, key,
					   id);
	json_decref(state);
	return err;
}
