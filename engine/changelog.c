/*
 * changelog.c — log entries, hash chain, signed heads, batches
 * (changelog.h). Pure encoding: no storage, no I/O.
 */
#include "changelog.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

void changelog_entry_init(changelog_entry *e)
{
	memset(e, 0, sizeof(*e));
	msgpack_sbuffer_init(&e->values);
}

void changelog_entry_clear(changelog_entry *e)
{
	free(e->fields);
	free(e->names);
	msgpack_sbuffer_destroy(&e->values);
	changelog_entry_init(e);
}

ferry_err changelog_entry_encode(msgpack_sbuffer *out, uint64_t seq,
				 const uint8_t prev[FERRY_HASH_BYTES],
				 ferry_hlc hlc, const char *collection,
				 const char *key, ferry_op op,
				 const ferry_field *fields, size_t nfields)
{
	msgpack_packer pk;
	int rc = 0;
	msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
	rc |= msgpack_pack_array(&pk, 7);
	rc |= msgpack_pack_uint64(&pk, seq);
	rc |= msgpack_pack_bin_with_body(&pk, prev, FERRY_HASH_BYTES);
	rc |= msgpack_pack_uint64(&pk, hlc);
	rc |= msgpack_pack_str_with_body(&pk, collection, strlen(collection));
	rc |= msgpack_pack_str_with_body(&pk, key, strlen(key));
	rc |= msgpack_pack_uint8(&pk, (uint8_t)op);
	if (op == FERRY_OP_PUT) {
		rc |= msgpack_pack_map(&pk, nfields);
		for (size_t i = 0; i < nfields; i++) {
			rc |= msgpack_pack_str_with_body(
				&pk, fields[i].name, strlen(fields[i].name));
			rc |= codec_pack_raw(&pk, fields[i].value,
					     fields[i].value_len);
		}
	} else {
		rc |= msgpack_pack_nil(&pk);
	}
	return rc ? FERRY_E_NOMEM : FERRY_OK;
}

/* Field names and values of a put: names strictly ascending, values
 * re-encoded canonically so every node stores the same bytes. */
static ferry_err decode_fields(changelog_entry *e, const msgpack_object *o)
{
	const msgpack_object_map *m;
	size_t name_bytes = 0, *offsets, pos = 0;
	ferry_err err = FERRY_OK;

	if (o->type != MSGPACK_OBJECT_MAP || o->via.map.size == 0)
		return FERRY_E_MALFORMED;
	m = &o->via.map;
	if (m->size > FERRY_MAX_FIELDS_PER_WRITE)
		return FERRY_E_LIMIT;
	for (uint32_t i = 0; i < m->size; i++) {
		const msgpack_object *k = &m->ptr[i].key;
		if (k->type != MSGPACK_OBJECT_STR || k->via.str.size == 0 ||
		    k->via.str.size > FERRY_MAX_FIELD_NAME_BYTES ||
		    memchr(k->via.str.ptr, 0, k->via.str.size) ||
		    !ferry_utf8_valid(k->via.str.ptr, k->via.str.size))
			return FERRY_E_MALFORMED;
		name_bytes += k->via.str.size + 1;
	}
	e->fields = calloc(m->size, sizeof(*e->fields));
	e->names = malloc(name_bytes);
	offsets = calloc(m->size, sizeof(*offsets));
	if (!e->fields || !e->names || !offsets) {
		free(offsets);
		return FERRY_E_NOMEM;
	}
	msgpack_packer pk;
	msgpack_packer_init(&pk, &e->values, msgpack_sbuffer_write);
	for (uint32_t i = 0; i < m->size && !err; i++) {
		const msgpack_object *k = &m->ptr[i].key;
		char *name = e->names + pos;
		memcpy(name, k->via.str.ptr, k->via.str.size);
		name[k->via.str.size] = '\0';
		pos += k->via.str.size + 1;
		if (i > 0 && strcmp(e->fields[i - 1].name, name) >= 0) {
			err = FERRY_E_MALFORMED;
			break;
		}
		e->fields[i].name = name;
		offsets[i] = e->values.size;
		size_t used;
		if (msgpack_pack_object(&pk, m->ptr[i].val))
			err = FERRY_E_NOMEM;
		else if (e->values.size - offsets[i] > FERRY_MAX_VALUE_BYTES ||
			 codec_check_depth(e->values.data + offsets[i],
					   e->values.size - offsets[i], &used,
					   FERRY_MAX_VALUE_DEPTH))
			err = FERRY_E_LIMIT;
	}
	/* The value buffer may move while growing: point into it at the end. */
	for (uint32_t i = 0; i < m->size && !err; i++) {
		size_t end = i + 1 < m->size ? offsets[i + 1] : e->values.size;
		e->fields[i].value = e->values.data + offsets[i];
		e->fields[i].value_len = end - offsets[i];
	}
	free(offsets);
	e->nfields = m->size;
	return err;
}

ferry_err changelog_entry_decode(changelog_entry *e, const void *buf,
				 size_t len)
{
	msgpack_unpacked u;
	const msgpack_object *a;
	const uint8_t *prev;
	uint64_t op;
	size_t off = 0;
	ferry_err err = FERRY_E_MALFORMED;

	changelog_entry_clear(e);
	if (len > CHANGELOG_MAX_ENTRY_BYTES)
		return FERRY_E_LIMIT;
	if (codec_check_exact(buf, len))
		return FERRY_E_MALFORMED;
	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, buf, len, &off) != MSGPACK_UNPACK_SUCCESS)
		goto out;
	a = &u.data;
	if (a->type != MSGPACK_OBJECT_ARRAY || a->via.array.size != 7)
		goto out;
	const msgpack_object *f = a->via.array.ptr;
	if (codec_get_uint(&f[0], &e->seq) || e->seq == 0 ||
	    codec_get_bin_fixed(&f[1], FERRY_HASH_BYTES, &prev) ||
	    codec_get_uint(&f[2], &e->hlc) ||
	    codec_get_name(&f[3], FERRY_MAX_COLLECTION_BYTES, e->collection) ||
	    codec_get_name(&f[4], FERRY_MAX_KEY_BYTES, e->key) ||
	    codec_get_uint(&f[5], &op))
		goto out;
	memcpy(e->prev, prev, FERRY_HASH_BYTES);
	if (op == FERRY_OP_PUT) {
		e->op = FERRY_OP_PUT;
		err = decode_fields(e, &f[6]);
	} else if (op == FERRY_OP_DELETE && f[6].type == MSGPACK_OBJECT_NIL) {
		e->op = FERRY_OP_DELETE;
		err = FERRY_OK;
	}
out:
	msgpack_unpacked_destroy(&u);
	if (err)
		changelog_entry_clear(e);
	return err;
}

void changelog_hash(uint8_t out[FERRY_HASH_BYTES], const void *entry,
		    size_t len)
{
	crypto_generichash(out, FERRY_HASH_BYTES, entry, len, NULL, 0);
}

/* The signed message binds the head to its origin, scope and position. */
static size_t head_message(uint8_t *msg,
			   const uint8_t origin[FERRY_PUBLIC_KEY_BYTES],
			   const char *scope, uint64_t seq,
			   const uint8_t head[FERRY_HASH_BYTES])
{
	size_t n = 0, scope_len = strlen(scope);
	memcpy(msg, CHANGELOG_HEAD_CONTEXT, sizeof(CHANGELOG_HEAD_CONTEXT) - 1);
	n += sizeof(CHANGELOG_HEAD_CONTEXT) - 1;
	memcpy(msg + n, origin, FERRY_PUBLIC_KEY_BYTES);
	n += FERRY_PUBLIC_KEY_BYTES;
	msg[n++] = (uint8_t)scope_len;
	memcpy(msg + n, scope, scope_len);
	n += scope_len;
	codec_put_be64(msg + n, seq);
	n += 8;
	memcpy(msg + n, head, FERRY_HASH_BYTES);
	return n + FERRY_HASH_BYTES;
}

#define HEAD_MESSAGE_MAX                                                       \
	(sizeof(CHANGELOG_HEAD_CONTEXT) + FERRY_PUBLIC_KEY_BYTES + 1 +         \
	 FERRY_MAX_SCOPE_BYTES + 8 + FERRY_HASH_BYTES)

void changelog_head_sign(uint8_t sig[FERRY_SIGNATURE_BYTES],
			 const uint8_t *secret_key,
			 const uint8_t origin[FERRY_PUBLIC_KEY_BYTES],
			 const char *scope, uint64_t seq,
			 const uint8_t head[FERRY_HASH_BYTES])
{
	uint8_t msg[HEAD_MESSAGE_MAX];
	size_t n = head_message(msg, origin, scope, seq, head);
	crypto_sign_detached(sig, NULL, msg, n, secret_key);
}

int changelog_head_verify(const uint8_t sig[FERRY_SIGNATURE_BYTES],
			  const uint8_t origin[FERRY_PUBLIC_KEY_BYTES],
			  const char *scope, uint64_t seq,
			  const uint8_t head[FERRY_HASH_BYTES])
{
	uint8_t msg[HEAD_MESSAGE_MAX];
	size_t n = head_message(msg, origin, scope, seq, head);
	return crypto_sign_verify_detached(sig, msg, n, origin) == 0;
}

static ferry_err decode_segment(changelog_segment *s, const msgpack_object *o)
{
	const msgpack_object *f, *entries;
	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 4)
		return FERRY_E_MALFORMED;
	f = o->via.array.ptr;
	if (codec_get_bin_fixed(&f[0], FERRY_PUBLIC_KEY_BYTES, &s->origin) ||
	    codec_get_name(&f[1], FERRY_MAX_SCOPE_BYTES, s->scope) ||
	    f[2].type != MSGPACK_OBJECT_ARRAY ||
	    codec_get_bin_fixed(&f[3], FERRY_SIGNATURE_BYTES, &s->sig))
		return FERRY_E_MALFORMED;
	entries = &f[2];
	if (entries->via.array.size == 0)
		return FERRY_E_MALFORMED;
	if (entries->via.array.size > CHANGELOG_MAX_ENTRIES_PER_SEGMENT)
		return FERRY_E_LIMIT;
	s->nentries = entries->via.array.size;
	s->entries = calloc(s->nentries, sizeof(*s->entries));
	s->entry_lens = calloc(s->nentries, sizeof(*s->entry_lens));
	if (!s->entries || !s->entry_lens)
		return FERRY_E_NOMEM;
	for (size_t i = 0; i < s->nentries; i++) {
		const msgpack_object *e = &entries->via.array.ptr[i];
		if (e->type != MSGPACK_OBJECT_BIN || e->via.bin.size == 0)
			return FERRY_E_MALFORMED;
		if (e->via.bin.size > CHANGELOG_MAX_ENTRY_BYTES)
			return FERRY_E_LIMIT;
		s->entries[i] = (const uint8_t *)e->via.bin.ptr;
		s->entry_lens[i] = e->via.bin.size;
	}
	return FERRY_OK;
}

ferry_err changelog_batch_decode(changelog_batch *b, const void *buf,
				 size_t len)
{
	const msgpack_object *a, *segs;
	uint64_t version;
	size_t off = 0;
	ferry_err err = FERRY_E_MALFORMED;

	memset(b, 0, sizeof(*b));
	msgpack_unpacked_init(&b->unpacked);
	if (len > FERRY_MAX_BATCH_BYTES) {
		err = FERRY_E_LIMIT;
		goto fail;
	}
	if (codec_check_exact(buf, len) ||
	    msgpack_unpack_next(&b->unpacked, buf, len, &off) !=
		    MSGPACK_UNPACK_SUCCESS)
		goto fail;
	a = &b->unpacked.data;
	if (a->type != MSGPACK_OBJECT_ARRAY || a->via.array.size != 3)
		goto fail;
	if (a->via.array.ptr[0].type != MSGPACK_OBJECT_STR ||
	    a->via.array.ptr[0].via.str.size !=
		    sizeof(CHANGELOG_BATCH_TAG) - 1 ||
	    memcmp(a->via.array.ptr[0].via.str.ptr, CHANGELOG_BATCH_TAG,
		   sizeof(CHANGELOG_BATCH_TAG) - 1) ||
	    codec_get_uint(&a->via.array.ptr[1], &version))
		goto fail;
	if (version != CHANGELOG_BATCH_VERSION) {
		err = FERRY_E_VERSION;
		goto fail;
	}
	segs = &a->via.array.ptr[2];
	if (segs->type != MSGPACK_OBJECT_ARRAY)
		goto fail;
	if (segs->via.array.size > CHANGELOG_MAX_SEGMENTS_PER_BATCH) {
		err = FERRY_E_LIMIT;
		goto fail;
	}
	b->nsegments = segs->via.array.size;
	b->segments =
		calloc(b->nsegments ? b->nsegments : 1, sizeof(*b->segments));
	if (!b->segments) {
		err = FERRY_E_NOMEM;
		goto fail;
	}
	for (size_t i = 0; i < b->nsegments; i++) {
		err = decode_segment(&b->segments[i], &segs->via.array.ptr[i]);
		if (err)
			goto fail;
	}
	return FERRY_OK;
fail:
	changelog_batch_clear(b);
	return err;
}

void changelog_batch_clear(changelog_batch *b)
{
	for (size_t i = 0; i < b->nsegments && b->segments; i++) {
		free(b->segments[i].entries);
		free(b->segments[i].entry_lens);
	}
	free(b->segments);
	msgpack_unpacked_destroy(&b->unpacked);
	memset(b, 0, sizeof(*b));
	msgpack_unpacked_init(&b->unpacked);
}

void changelog_writer_init(changelog_batch_writer *w)
{
	msgpack_sbuffer_init(&w->header);
	msgpack_sbuffer_init(&w->body);
	w->nsegments = 0;
}

void changelog_writer_clear(changelog_batch_writer *w)
{
	msgpack_sbuffer_destroy(&w->header);
	msgpack_sbuffer_destroy(&w->body);
	w->nsegments = 0;
}

ferry_err changelog_writer_add(changelog_batch_writer *w,
			       const uint8_t origin[FERRY_PUBLIC_KEY_BYTES],
			       const char *scope, const void *const *entries,
			       const size_t *entry_lens, size_t nentries,
			       const uint8_t sig[FERRY_SIGNATURE_BYTES])
{
	msgpack_packer pk;
	int rc = 0;
	msgpack_packer_init(&pk, &w->body, msgpack_sbuffer_write);
	rc |= msgpack_pack_array(&pk, 4);
	rc |= msgpack_pack_bin_with_body(&pk, origin, FERRY_PUBLIC_KEY_BYTES);
	rc |= msgpack_pack_str_with_body(&pk, scope, strlen(scope));
	rc |= msgpack_pack_array(&pk, nentries);
	for (size_t i = 0; i < nentries; i++)
		rc |= msgpack_pack_bin_with_body(&pk, entries[i],
						 entry_lens[i]);
	rc |= msgpack_pack_bin_with_body(&pk, sig, FERRY_SIGNATURE_BYTES);
	if (rc)
		return FERRY_E_NOMEM;
	w->nsegments++;
	return FERRY_OK;
}

size_t changelog_writer_size(const changelog_batch_writer *w)
{
	/* array(3) + tag + version + array header: at most 20 bytes. */
	return w->body.size + 20;
}

ferry_err changelog_writer_finish(changelog_batch_writer *w, void **out,
				  size_t *out_len)
{
	msgpack_packer pk;
	uint8_t *buf;
	int rc = 0;
	w->header.size = 0;
	msgpack_packer_init(&pk, &w->header, msgpack_sbuffer_write);
	rc |= msgpack_pack_array(&pk, 3);
	rc |= msgpack_pack_str_with_body(&pk, CHANGELOG_BATCH_TAG,
					 sizeof(CHANGELOG_BATCH_TAG) - 1);
	rc |= msgpack_pack_uint8(&pk, CHANGELOG_BATCH_VERSION);
	rc |= msgpack_pack_array(&pk, w->nsegments);
	if (rc)
		return FERRY_E_NOMEM;
	buf = malloc(w->header.size + w->body.size);
	if (!buf)
		return FERRY_E_NOMEM;
	memcpy(buf, w->header.data, w->header.size);
	if (w->body.size)
		memcpy(buf + w->header.size, w->body.data, w->body.size);
	*out = buf;
	*out_len = w->header.size + w->body.size;
	return FERRY_OK;
}
