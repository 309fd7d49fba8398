/*
 * vector.c — version vectors: what a node holds, per (origin, scope).
 *
 * Encoding: ["ferry.vector", 1, [[origin bin32, scope str, seq uint,
 * head bin32], ...]], items sorted by (origin, scope).
 */
#include "vector.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "codec.h"

static int item_cmp(const uint8_t *origin, const char *scope,
		    const vector_item *it)
{
	int c = memcmp(origin, it->origin, FERRY_PUBLIC_KEY_BYTES);
	return c ? c : strcmp(scope, it->scope);
}

uint64_t vector_seq(const ferry_vector *vec, const uint8_t *origin,
		    const char *scope)
{
	size_t lo = 0, hi = vec ? vec->n : 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = item_cmp(origin, scope, &vec->items[mid]);
		if (c == 0)
			return vec->items[mid].seq;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return 0;
}

/* Append an item (callers append in sorted order). */
static ferry_err vector_push(ferry_vector *vec, const uint8_t *origin,
			     const char *scope, uint64_t seq,
			     const uint8_t *head)
{
	vector_item *it;
	if (vec->n == vec->cap) {
		size_t cap = vec->cap ? 2 * vec->cap : 16;
		vector_item *grown = realloc(vec->items, cap * sizeof(*grown));
		if (!grown)
			return FERRY_E_NOMEM;
		vec->items = grown;
		vec->cap = cap;
	}
	it = &vec->items[vec->n++];
	memcpy(it->origin, origin, FERRY_PUBLIC_KEY_BYTES);
	snprintf(it->scope, sizeof(it->scope), "%s", scope);
	it->seq = seq;
	memcpy(it->head, head, FERRY_HASH_BYTES);
	return FERRY_OK;
}

ferry_err ferry_vector_new(ferry_vector **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? FERRY_OK : FERRY_E_NOMEM;
}

void ferry_vector_free(ferry_vector *vec)
{
	if (!vec)
		return;
	free(vec->items);
	free(vec);
}

size_t ferry_vector_count(const ferry_vector *vec)
{
	return vec->n;
}

void ferry_vector_at(const ferry_vector *vec, size_t i, ferry_vector_entry *out)
{
	const vector_item *it = &vec->items[i];
	out->origin = it->origin;
	out->scope = it->scope;
	out->seq = it->seq;
	out->head = it->head;
}

ferry_err ferry_vector_get(ferry_vector **out, ferry_node *node)
{
	store_cursor *cur = NULL;
	ferry_vector *vec;
	store_txn *txn;
	store_val k, v;
	ferry_err err;

	*out = NULL;
	if (!node)
		return FERRY_E_INVALID;
	node_clear_error(node);
	err = ferry_vector_new(&vec);
	if (err)
		return err;
	err = store_begin(&txn, node->store, 0);
	if (err) {
		ferry_vector_free(vec);
		return node_store_fail(node, err, "reading the vector");
	}
	err = store_cursor_open(&cur, txn, DB_CHAINS);
	if (!err)
		err = store_cursor_get(cur, STORE_FIRST, &k, &v);
	/* DB_CHAINS is keyed origin || scope, the vector's own order. */
	while (!err) {
		char scope[FERRY_MAX_SCOPE_BYTES + 1];
		size_t slen = k.len - FERRY_PUBLIC_KEY_BYTES;
		if (k.len <= FERRY_PUBLIC_KEY_BYTES ||
		    slen > FERRY_MAX_SCOPE_BYTES ||
		    v.len != APPLY_CHAIN_VALUE_BYTES) {
			err = FERRY_E_CORRUPT;
			break;
		}
		memcpy(scope, (const uint8_t *)k.data + FERRY_PUBLIC_KEY_BYTES,
		       slen);
		scope[slen] = '\0';
		err = vector_push(vec, k.data, scope,
				  codec_get_be64((const uint8_t *)v.data + 8),
				  (const uint8_t *)v.data + 16);
		if (!err)
			err = store_cursor_get(cur, STORE_NEXT, &k, &v);
	}
	store_cursor_close(cur);
	store_abort(txn);
	if (err == FERRY_E_NOT_FOUND)
		err = FERRY_OK;
	if (err) {
		ferry_vector_free(vec);
		return node_fail(node, err, "reading the vector: %s",
				 ferry_strerror(err));
	}
	*out = vec;
	return FERRY_OK;
}

ferry_err ferry_vector_encode(void **out, size_t *out_len,
			      const ferry_vector *vec)
{
	msgpack_sbuffer buf;
	msgpack_packer pk;
	int rc = 0;

	*out = NULL;
	*out_len = 0;
	msgpack_sbuffer_init(&buf);
	msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
	rc |= msgpack_pack_array(&pk, 3);
	rc |= msgpack_pack_str_with_body(&pk, VECTOR_TAG,
					 sizeof(VECTOR_TAG) - 1);
	rc |= msgpack_pack_uint8(&pk, VECTOR_VERSION);
	rc |= msgpack_pack_array(&pk, vec->n);
	for (size_t i = 0; i < vec->n; i++) {
		const vector_item *it = &vec->items[i];
		rc |= msgpack_pack_array(&pk, 4);
		rc |= msgpack_pack_bin_with_body(&pk, it->origin,
						 FERRY_PUBLIC_KEY_BYTES);
		rc |= msgpack_pack_str_with_body(&pk, it->scope,
						 strlen(it->scope));
		rc |= msgpack_pack_uint64(&pk, it->seq);
		rc |= msgpack_pack_bin_with_body(&pk, it->head,
						 FERRY_HASH_BYTES);
	}
	if (rc) {
		msgpack_sbuffer_destroy(&buf);
		return FERRY_E_NOMEM;
	}
	*out_len = buf.size;
	*out = msgpack_sbuffer_release(&buf);
	return FERRY_OK;
}

static ferry_err decode_items(ferry_vector *vec, const msgpack_object *arr)
{
	if (arr->type != MSGPACK_OBJECT_ARRAY)
		return FERRY_E_MALFORMED;
	if (arr->via.array.size > VECTOR_MAX_ITEMS)
		return FERRY_E_LIMIT;
	for (uint32_t i = 0; i < arr->via.array.size; i++) {
		const msgpack_object *o = &arr->via.array.ptr[i], *f;
		char scope[FERRY_MAX_SCOPE_BYTES + 1];
		const uint8_t *origin, *head;
		uint64_t seq;
		ferry_err err;
		if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 4)
			return FERRY_E_MALFORMED;
		f = o->via.array.ptr;
		if (codec_get_bin_fixed(&f[0], FERRY_PUBLIC_KEY_BYTES,
					&origin) ||
		    codec_get_name(&f[1], FERRY_MAX_SCOPE_BYTES, scope) ||
		    codec_get_uint(&f[2], &seq) ||
		    codec_get_bin_fixed(&f[3], FERRY_HASH_BYTES, &head))
			return FERRY_E_MALFORMED;
		/* Sorted and unique, so lookups can binary-search. */
		if (vec->n &&
		    item_cmp(origin, scope, &vec->items[vec->n - 1]) <= 0)
			return FERRY_E_MALFORMED;
		err = vector_push(vec, origin, scope, seq, head);
		if (err)
			return err;
	}
	return FERRY_OK;
}

ferry_err ferry_vector_decode(ferry_vector **out, const void *buf, size_t len)
{
	msgpack_unpacked u;
	const msgpack_object *a;
	ferry_vector *vec = NULL;
	uint64_t version;
	size_t off = 0;
	ferry_err err = FERRY_E_MALFORMED;

	*out = NULL;
	if (!buf || codec_check_exact(buf, len))
		return FERRY_E_MALFORMED;
	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, buf, len, &off) != MSGPACK_UNPACK_SUCCESS)
		goto out;
	a = &u.data;
	if (a->type != MSGPACK_OBJECT_ARRAY || a->via.array.size != 3 ||
	    a->via.array.ptr[0].type != MSGPACK_OBJECT_STR ||
	    a->via.array.ptr[0].via.str.size != sizeof(VECTOR_TAG) - 1 ||
	    memcmp(a->via.array.ptr[0].via.str.ptr, VECTOR_TAG,
		   sizeof(VECTOR_TAG) - 1) ||
	    codec_get_uint(&a->via.array.ptr[1], &version))
		goto out;
	if (version != VECTOR_VERSION) {
		err = FERRY_E_VERSION;
		goto out;
	}
	err = ferry_vector_new(&vec);
	if (!err)
		err = decode_items(vec, &a->via.array.ptr[2]);
out:
	msgpack_unpacked_destroy(&u);
	if (err) {
		ferry_vector_free(vec);
		return err;
	}
	*out = vec;
	return FERRY_OK;
}

uint64_t ferry_vector_seq(const ferry_vector *vec,
			  const uint8_t origin[FERRY_PUBLIC_KEY_BYTES],
			  const char *scope)
{
	return vector_seq(vec, origin, scope);
}

ferry_err ferry_vector_set(ferry_vector *vec,
			   const uint8_t origin[FERRY_PUBLIC_KEY_BYTES],
			   const char *scope, uint64_t seq,
			   const uint8_t head[FERRY_HASH_BYTES])
{
	size_t lo = 0, hi, len;
	ferry_err err;

	if (!vec || !origin || !scope || !head)
		return FERRY_E_INVALID;
	len = strlen(scope);
	if (len == 0 || len > FERRY_MAX_SCOPE_BYTES ||
	    !ferry_utf8_valid(scope, len))
		return FERRY_E_INVALID;
	hi = vec->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = item_cmp(origin, scope, &vec->items[mid]);
		if (c == 0) {
			vec->items[mid].seq = seq;
			memcpy(vec->items[mid].head, head, FERRY_HASH_BYTES);
			return FERRY_OK;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	/* Append, then rotate the new item into place. */
	err = vector_push(vec, origin, scope, seq, head);
	if (err)
		return err;
	vector_item item = vec->items[vec->n - 1];
	memmove(&vec->items[lo + 1], &vec->items[lo],
		(vec->n - 1 - lo) * sizeof(*vec->items));
	vec->items[lo] = item;
	return FERRY_OK;
}
