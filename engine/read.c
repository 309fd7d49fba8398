/*
 * read.c — reading records, the change feed, the conflict log, digests
 * and status. Every call uses one short read transaction.
 */
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "codec.h"

struct ferry_record {
	char scope[FERRY_MAX_SCOPE_BYTES + 1];
	char collection[FERRY_MAX_COLLECTION_BYTES + 1];
	char key[FERRY_MAX_KEY_BYTES + 1];
	merge_state state;
	ferry_field_info *fields;
	uint64_t created_cursor, changed_cursor;
};

static ferry_err check_names(ferry_node *node, const char *scope,
			     const char *collection, const char *key)
{
	ferry_err err =
		node_check_name(node, "scope", scope, FERRY_MAX_SCOPE_BYTES,
				"FERRY_MAX_SCOPE_BYTES");
	if (!err)
		err = node_check_name(node, "collection", collection,
				      FERRY_MAX_COLLECTION_BYTES,
				      "FERRY_MAX_COLLECTION_BYTES");
	if (!err && key)
		err = node_check_name(node, "record key", key,
				      FERRY_MAX_KEY_BYTES,
				      "FERRY_MAX_KEY_BYTES");
	return err;
}

static ferry_err begin_read(ferry_node *node, store_txn **txn)
{
	ferry_err err = store_begin(txn, node->store, 0);
	return err ? node_store_fail(node, err, "starting a read") : err;
}

/* Build a record from stored state; NOT_FOUND if nothing is live. */
static ferry_err record_from_state(ferry_record *rec, const char *scope,
				   const char *collection, const char *key,
				   size_t key_len, store_val v)
{
	apply_record_value rv;
	ferry_err err;
	memset(rec, 0, sizeof(*rec));
	err = apply_record_split(&rv, v.data, v.len);
	if (!err)
		err = merge_state_decode(&rec->state, rv.state, rv.state_len);
	if (err)
		return err;
	rec->created_cursor = rv.created_cursor;
	rec->changed_cursor = rv.changed_cursor;
	if (!merge_state_live(&rec->state))
		return FERRY_E_NOT_FOUND;
	snprintf(rec->scope, sizeof(rec->scope), "%s", scope);
	snprintf(rec->collection, sizeof(rec->collection), "%s", collection);
	if (key_len > FERRY_MAX_KEY_BYTES)
		return FERRY_E_CORRUPT;
	memcpy(rec->key, key, key_len);
	rec->key[key_len] = '\0';
	rec->fields = calloc(rec->state.nfields, sizeof(*rec->fields));
	if (!rec->fields)
		return FERRY_E_NOMEM;
	for (size_t i = 0; i < rec->state.nfields; i++) {
		const merge_field *f = &rec->state.fields[i];
		rec->fields[i].name = f->name;
		rec->fields[i].value = f->value;
		rec->fields[i].value_len = f->value_len;
		rec->fields[i].hlc = f->stamp.hlc;
		rec->fields[i].origin = f->stamp.origin;
	}
	return FERRY_OK;
}

static void record_clear(ferry_record *rec)
{
	merge_state_clear(&rec->state);
	free(rec->fields);
	rec->fields = NULL;
}

ferry_err ferry_get(ferry_record **out, ferry_node *node, const char *scope,
		    const char *collection, const char *key)
{
	char k[APPLY_RECORD_KEY_MAX];
	ferry_record *rec;
	store_txn *txn;
	store_val v;
	ferry_err err;

	*out = NULL;
	if (!node)
		return FERRY_E_INVALID;
	node_clear_error(node);
	err = check_names(node, scope, collection, key);
	if (err)
		return err;
	rec = calloc(1, sizeof(*rec));
	if (!rec)
		return FERRY_E_NOMEM;
	err = begin_read(node, &txn);
	if (err) {
		free(rec);
		return err;
	}
	size_t klen = apply_record_key(k, scope, collection, key);
	err = store_get(txn, DB_RECORDS, STORE_VAL(k, klen), &v);
	if (!err)
		err = record_from_state(rec, scope, collection, key,
					strlen(key), v);
	store_abort(txn);
	if (err) {
		record_clear(rec);
		free(rec);
		if (err == FERRY_E_NOT_FOUND)
			return node_fail(node, err, "%s/%s/%s does not exist",
					 scope, collection, key);
		return node_fail(node, err, "reading %s/%s/%s: %s", scope,
				 collection, key, ferry_strerror(err));
	}
	*out = rec;
	return FERRY_OK;
}

ferry_err ferry_record_state(int *live, uint64_t *created, uint64_t *changed,
			     ferry_node *node, const char *scope,
			     const char *collection, const char *key)
{
	char k[APPLY_RECORD_KEY_MAX];
	apply_record_value rv;
	merge_state st;
	store_txn *txn;
	store_val v;
	ferry_err err;

	if (!node)
		return FERRY_E_INVALID;
	node_clear_error(node);
	err = check_names(node, scope, collection, key);
	if (err)
		return err;
	err = begin_read(node, &txn);
	if (err)
		return err;
	size_t klen = apply_record_key(k, scope, collection, key);
	err = store_get(txn, DB_RECORDS, STORE_VAL(k, klen), &v);
	if (!err)
		err = apply_record_split(&rv, v.data, v.len);
	if (!err)
		err = merge_state_decode(&st, rv.state, rv.state_len);
	if (!err) {
		if (live)
			*live = merge_state_live(&st);
		if (created)
			*created = rv.created_cursor;
		if (changed)
			*changed = rv.changed_cursor;
		merge_state_clear(&st);
	}
	store_abort(txn);
	if (err == FERRY_E_NOT_FOUND)
		return node_fail(node, err, "%s/%s/%s was never held", scope,
				 collection, key);
	return err ? node_fail(node, err, "reading %s/%s/%s: %s", scope,
			       collection, key, ferry_strerror(err))
		   : FERRY_OK;
}

const char *ferry_record_key(const ferry_record *rec)
{
	return rec->key;
}

const char *ferry_record_collection(const ferry_record *rec)
{
	return rec->collection;
}

const char *ferry_record_scope(const ferry_record *rec)
{
	return rec->scope;
}

void ferry_record_cursors(const ferry_record *rec, uint64_t *created,
			  uint64_t *changed)
{
	if (created)
		*created = rec->created_cursor;
	if (changed)
		*changed = rec->changed_cursor;
}

size_t ferry_record_field_count(const ferry_record *rec)
{
	return rec->state.nfields;
}

void ferry_record_field(const ferry_record *rec, size_t i,
			ferry_field_info *out)
{
	*out = rec->fields[i];
}

const ferry_field_info *ferry_record_find(const ferry_record *rec,
					  const char *name)
{
	size_t lo = 0, hi = rec->state.nfields;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(rec->fields[mid].name, name);
		if (c == 0)
			return &rec->fields[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

void ferry_record_free(ferry_record *rec)
{
	if (!rec)
		return;
	record_clear(rec);
	free(rec);
}

ferry_err ferry_scan(ferry_node *node, const char *scope,
		     const char *collection, const ferry_scan_options *opts,
		     ferry_scan_cb cb, void *payload)
{
	char start[APPLY_RECORD_KEY_MAX], prefix[APPLY_RECORD_KEY_MAX];
	const char *key_prefix = opts && opts->prefix ? opts->prefix : "";
	const char *after = opts && opts->after ? opts->after : NULL;
	uint64_t limit = opts ? opts->limit : 0, seen = 0;
	store_cursor *cur = NULL;
	store_txn *txn;
	store_val k, v;
	ferry_err err;

	if (!node || !cb)
		return FERRY_E_INVALID;
	node_clear_error(node);
	err = check_names(node, scope, collection, NULL);
	if (!err && strlen(key_prefix) > FERRY_MAX_KEY_BYTES)
		err = node_fail(node, FERRY_E_LIMIT,
				"prefix exceeds FERRY_MAX_KEY_BYTES");
	if (!err && after && strlen(after) > FERRY_MAX_KEY_BYTES)
		err = node_fail(node, FERRY_E_LIMIT,
				"after exceeds FERRY_MAX_KEY_BYTES");
	if (err)
		return err;
	size_t plen = apply_record_key(prefix, scope, collection, key_prefix);
	size_t base = plen - strlen(key_prefix);
	size_t slen = plen;
	memcpy(start, prefix, plen);
	if (after && strcmp(after, key_prefix) > 0)
		slen = apply_record_key(start, scope, collection, after);
	err = begin_read(node, &txn);
	if (err)
		return err;
	err = store_cursor_open(&cur, txn, DB_RECORDS);
	k = STORE_VAL(start, slen);
	if (!err)
		err = store_cursor_get(cur, STORE_AT_OR_AFTER, &k, &v);
	while (!err) {
		ferry_record rec;
		if (k.len < plen || memcmp(k.data, prefix, plen))
			break;
		const char *key = (const char *)k.data + base;
		size_t key_len = k.len - base;
		int skip =
			after && k.len == slen && !memcmp(k.data, start, slen);
		if (!skip) {
			int stop = 0;
			err = record_from_state(&rec, scope, collection, key,
						key_len, v);
			if (!err)
				stop = cb(&rec, payload) ||
				       (limit && ++seen >= limit);
			else if (err == FERRY_E_NOT_FOUND)
				err = FERRY_OK; /* deleted record */
			record_clear(&rec);
			if (err || stop)
				break;
		}
		err = store_cursor_get(cur, STORE_NEXT, &k, &v);
	}
	store_cursor_close(cur);
	store_abort(txn);
	if (err == FERRY_E_NOT_FOUND)
		err = FERRY_OK;
	if (err)
		return node_fail(node, err, "scanning %s/%s: %s", scope,
				 collection, ferry_strerror(err));
	return FERRY_OK;
}

ferry_err ferry_count(uint64_t *out, ferry_node *node, const char *scope,
		      const char *collection)
{
	char key[APPLY_RECORD_KEY_MAX];
	store_txn *txn;
	store_val v;
	ferry_err err;

	*out = 0;
	if (!node)
		return FERRY_E_INVALID;
	node_clear_error(node);
	err = check_names(node, scope, collection, NULL);
	if (err)
		return err;
	/* scope \0 collection: the record key without its last part. */
	size_t len = apply_record_key(key, scope, collection, "") - 1;
	err = begin_read(node, &txn);
	if (err)
		return err;
	err = store_get(txn, DB_COUNTS, STORE_VAL(key, len), &v);
	if (!err && v.len == 8)
		*out = codec_get_be64(v.data);
	store_abort(txn);
	if (err == FERRY_E_NOT_FOUND)
		return FERRY_OK;
	return err ? node_store_fail(node, err, "counting") : FERRY_OK;
}

ferry_err ferry_collections(ferry_node *node, ferry_collection_cb cb,
			    void *payload)
{
	store_cursor *cur = NULL;
	store_txn *txn;
	store_val k, v;
	ferry_err err;

	if (!node || !cb)
		return FERRY_E_INVALID;
	node_clear_error(node);
	err = begin_read(node, &txn);
	if (err)
		return err;
	err = store_cursor_open(&cur, txn, DB_COUNTS);
	if (!err)
		err = store_cursor_get(cur, STORE_FIRST, &k, &v);
	while (!err) {
		char scope[FERRY_MAX_SCOPE_BYTES + 1];
		char coll[FERRY_MAX_COLLECTION_BYTES + 1];
		const char *sep = memchr(k.data, 0, k.len);
		size_t slen, clen;
		if (!sep || v.len != 8) {
			err = FERRY_E_CORRUPT;
			break;
		}
		slen = (size_t)(sep - (const char *)k.data);
		clen = k.len - slen - 1;
		if (slen > FERRY_MAX_SCOPE_BYTES ||
		    clen > FERRY_MAX_COLLECTION_BYTES) {
			err = FERRY_E_CORRUPT;
			break;
		}
		memcpy(scope, k.data, slen);
		scope[slen] = '\0';
		memcpy(coll, sep + 1, clen);
		coll[clen] = '\0';
		if (cb(scope, coll, codec_get_be64(v.data), payload))
			break;
		err = store_cursor_get(cur, STORE_NEXT, &k, &v);
	}
	store_cursor_close(cur);
	store_abort(txn);
	if (err == FERRY_E_NOT_FOUND)
		err = FERRY_OK;
	return err ? node_fail(node, err, "listing collections: %s",
			       ferry_strerror(err))
		   : FERRY_OK;
}

/* The (origin, scope) of a chain id. */
static ferry_err chain_by_id(store_txn *txn, uint64_t id, uint8_t *origin,
			     char *scope)
{
	uint8_t key[8];
	store_val v;
	ferry_err err;
	codec_put_be64(key, id);
	err = store_get(txn, DB_CHAIN_IDS, STORE_VAL(key, 8), &v);
	if (err)
		return err == FERRY_E_NOT_FOUND ? FERRY_E_CORRUPT : err;
	if (v.len <= FERRY_PUBLIC_KEY_BYTES || v.len > APPLY_CHAIN_KEY_MAX)
		return FERRY_E_CORRUPT;
	memcpy(origin, v.data, FERRY_PUBLIC_KEY_BYTES);
	memcpy(scope, (const uint8_t *)v.data + FERRY_PUBLIC_KEY_BYTES,
	       v.len - FERRY_PUBLIC_KEY_BYTES);
	scope[v.len - FERRY_PUBLIC_KEY_BYTES] = '\0';
	return FERRY_OK;
}

ferry_err ferry_changes(ferry_node *node, uint64_t since, uint64_t limit,
			ferry_change_cb cb, void *payload)
{
	uint8_t start[8], origin[FERRY_PUBLIC_KEY_BYTES];
	char scope[FERRY_MAX_SCOPE_BYTES + 1];
	uint64_t cached_chain = 0, seen = 0;
	store_cursor *cur = NULL;
	changelog_entry e;
	store_txn *txn;
	store_val k, v;
	ferry_err err;

	if (!node || !cb)
		return FERRY_E_INVALID;
	node_clear_error(node);
	if (since == UINT64_MAX)
		return FERRY_OK;
	err = begin_read(node, &txn);
	if (err)
		return err;
	changelog_entry_init(&e);
	codec_put_be64(start, since + 1);
	k = STORE_VAL(start, 8);
	err = store_cursor_open(&cur, txn, DB_ARRIVAL);
	if (!err)
		err = store_cursor_get(cur, STORE_AT_OR_AFTER, &k, &v);
	while (!err && (!limit || seen < limit)) {
		ferry_change ch;
		store_val raw;
		if (k.len != 8 || v.len != 16) {
			err = FERRY_E_CORRUPT;
			break;
		}
		uint64_t chain = codec_get_be64(v.data);
		if (chain != cached_chain) {
			err = chain_by_id(txn, chain, origin, scope);
			if (err)
				break;
			cached_chain = chain;
		}
		err = store_get(txn, DB_LOG, v, &raw);
		if (!err)
			err = changelog_entry_decode(&e, raw.data, raw.len);
		if (err) {
			err = FERRY_E_CORRUPT;
			break;
		}
		ch.cursor = codec_get_be64(k.data);
		ch.origin = origin;
		ch.scope = scope;
		ch.seq = e.seq;
		ch.hlc = e.hlc;
		ch.collection = e.collection;
		ch.key = e.key;
		ch.op = e.op;
		ch.fields = e.fields;
		ch.nfields = e.nfields;
		seen++;
		if (cb(&ch, payload))
			break;
		err = store_cursor_get(cur, STORE_NEXT, &k, &v);
	}
	changelog_entry_clear(&e);
	store_cursor_close(cur);
	store_abort(txn);
	if (err == FERRY_E_NOT_FOUND)
		err = FERRY_OK;
	return err ? node_fail(node, err,
			       "reading changes: %s; run ferry verify",
			       ferry_strerror(err))
		   : FERRY_OK;
}

ferry_err ferry_changes_last(uint64_t *out, ferry_node *node)
{
	store_txn *txn;
	ferry_err err;
	*out = 0;
	if (!node)
		return FERRY_E_INVALID;
	node_clear_error(node);
	err = begin_read(node, &txn);
	if (err)
		return err;
	err = meta_get_u64(txn, META_ARRIVAL, out);
	store_abort(txn);
	return err ? node_store_fail(node, err, "reading the cursor") : err;
}

/* Conflict record layout: see record_loss() in apply.c. */
static ferry_err decode_conflict(ferry_conflict *c, uint64_t id, store_val v,
				 msgpack_unpacked *u,
				 char names[4][FERRY_MAX_KEY_BYTES + 1])
{
	const msgpack_object *f;
	size_t off = 0;
	if (codec_check_exact(v.data, v.len) ||
	    msgpack_unpack_next(u, v.data, v.len, &off) !=
		    MSGPACK_UNPACK_SUCCESS ||
	    u->data.type != MSGPACK_OBJECT_ARRAY ||
	    u->data.via.array.size != 11)
		return FERRY_E_CORRUPT;
	f = u->data.via.array.ptr;
	memset(c, 0, sizeof(*c));
	c->id = id;
	if (codec_get_uint(&f[0], &c->recorded_ms) ||
	    codec_get_name(&f[1], FERRY_MAX_SCOPE_BYTES, names[0]) ||
	    codec_get_name(&f[2], FERRY_MAX_COLLECTION_BYTES, names[1]) ||
	    codec_get_name(&f[3], FERRY_MAX_KEY_BYTES, names[2]) ||
	    codec_get_name(&f[4], FERRY_MAX_FIELD_NAME_BYTES, names[3]) ||
	    codec_get_uint(&f[5], &c->loser_hlc) ||
	    codec_get_bin_fixed(&f[6], FERRY_PUBLIC_KEY_BYTES,
				&c->loser_origin) ||
	    codec_get_uint(&f[8], &c->winner_hlc) ||
	    codec_get_bin_fixed(&f[9], FERRY_PUBLIC_KEY_BYTES,
				&c->winner_origin) ||
	    f[10].type != MSGPACK_OBJECT_BOOLEAN)
		return FERRY_E_CORRUPT;
	c->scope = names[0];
	c->collection = names[1];
	c->key = names[2];
	c->field = names[3];
	c->winner_is_delete = f[10].via.boolean;
	return FERRY_OK;
}

ferry_err ferry_conflicts(ferry_node *node, const char *scope,
			  const char *collection, const char *key,
			  ferry_conflict_cb cb, void *payload)
{
	char names[4][FERRY_MAX_KEY_BYTES + 1];
	msgpack_sbuffer value;
	store_cursor *cur = NULL;
	msgpack_unpacked u;
	store_txn *txn;
	store_val k, v;
	ferry_err err;

	if (!node || !cb)
		return FERRY_E_INVALID;
	node_clear_error(node);
	err = begin_read(node, &txn);
	if (err)
		return err;
	msgpack_unpacked_init(&u);
	msgpack_sbuffer_init(&value);
	err = store_cursor_open(&cur, txn, DB_CONFLICTS);
	if (!err)
		err = store_cursor_get(cur, STORE_FIRST, &k, &v);
	while (!err) {
		ferry_conflict c;
		if (k.len != 8) {
			err = FERRY_E_CORRUPT;
			break;
		}
		err = decode_conflict(&c, codec_get_be64(k.data), v, &u, names);
		if (err)
			break;
		if ((!scope || !strcmp(scope, c.scope)) &&
		    (!collection || !strcmp(collection, c.collection)) &&
		    (!key || !strcmp(key, c.key))) {
			const msgpack_object *lv = &u.data.via.array.ptr[7];
			msgpack_packer pk;
			value.size = 0;
			if (lv->type != MSGPACK_OBJECT_NIL) {
				msgpack_packer_init(&pk, &value,
						    msgpack_sbuffer_write);
				if (msgpack_pack_object(&pk, *lv)) {
					err = FERRY_E_NOMEM;
					break;
				}
				c.loser_value = value.data;
				c.loser_value_len = value.size;
			}
			if (cb(&c, payload))
				break;
		}
		err = store_cursor_get(cur, STORE_NEXT, &k, &v);
	}
	msgpack_sbuffer_destroy(&value);
	msgpack_unpacked_destroy(&u);
	store_cursor_close(cur);
	store_abort(txn);
	if (err == FERRY_E_NOT_FOUND)
		err = FERRY_OK;
	return err ? node_fail(node, err, "reading conflicts: %s",
			       ferry_strerror(err))
		   : FERRY_OK;
}

/* Length-prefixed, so no two different sequences of records hash alike. */
static void digest_part(crypto_generichash_state *h, const void *p, size_t len)
{
	uint8_t n[8];
	codec_put_be64(n, len);
	crypto_generichash_update(h, n, 8);
	crypto_generichash_update(h, p, len);
}

ferry_err ferry_digest(uint8_t out[FERRY_HASH_BYTES], ferry_node *node,
		       const char *scope)
{
	crypto_generichash_state h;
	store_cursor *cur = NULL;
	char prefix[FERRY_MAX_SCOPE_BYTES + 1];
	size_t plen = 0;
	store_txn *txn;
	store_val k, v;
	ferry_err err;

	if (!node)
		return FERRY_E_INVALID;
	node_clear_error(node);
	if (scope) {
		err = node_check_name(node, "scope", scope,
				      FERRY_MAX_SCOPE_BYTES,
				      "FERRY_MAX_SCOPE_BYTES");
		if (err)
			return err;
		plen = strlen(scope) + 1; /* with its \0 separator */
		memcpy(prefix, scope, plen);
	}
	err = begin_read(node, &txn);
	if (err)
		return err;
	crypto_generichash_init(&h, NULL, 0, FERRY_HASH_BYTES);
	err = store_cursor_open(&cur, txn, DB_RECORDS);
	k = STORE_VAL(prefix, plen);
	if (!err)
		err = store_cursor_get(
			cur, plen ? STORE_AT_OR_AFTER : STORE_FIRST, &k, &v);
	while (!err) {
		if (plen && (k.len < plen || memcmp(k.data, prefix, plen)))
			break;
		apply_record_value rv;
		if (apply_record_split(&rv, v.data, v.len)) {
			err = FERRY_E_CORRUPT;
			break;
		}
		digest_part(&h, k.data, k.len);
		digest_part(&h, rv.state, rv.state_len);
		err = store_cursor_get(cur, STORE_NEXT, &k, &v);
	}
	store_cursor_close(cur);
	store_abort(txn);
	crypto_generichash_final(&h, out, FERRY_HASH_BYTES);
	if (err == FERRY_E_NOT_FOUND)
		err = FERRY_OK;
	return err ? node_store_fail(node, err, "computing the digest") : err;
}

ferry_err ferry_status_get(ferry_status *out, ferry_node *node)
{
	store_txn *txn;
	ferry_err err;
	memset(out, 0, sizeof(*out));
	if (!node)
		return FERRY_E_INVALID;
	node_clear_error(node);
	err = begin_read(node, &txn);
	if (err)
		return err;
	err = store_entries(txn, DB_LOG, &out->changes);
	if (!err)
		err = store_entries(txn, DB_CONFLICTS, &out->conflicts);
	if (!err)
		err = meta_get_u64(txn, META_ARRIVAL, &out->last_cursor);
	if (!err)
		err = meta_get_u64(txn, META_HLC, &out->clock);
	store_abort(txn);
	if (!err)
		err = store_file_size(node->store, &out->store_bytes);
	return err ? node_store_fail(node, err, "reading status") : err;
}
