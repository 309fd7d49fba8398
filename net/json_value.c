/*
 * json_value.c — field values between JSON and msgpack, and JSON views of
 * records, changes and conflicts (see ferry_json.h for the mapping).
 *
 * msgpack-c trusts the counts it reads and allocates for them, so untrusted
 * bytes are first walked by ferry_msgpack_check(), which bounds every count
 * by the bytes left and nesting by FERRY_JSON_MAX_DEPTH; only then does
 * msgpack_unpack_next() see them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "ferry_json.h"

#define TAG_BIN "$bin"
#define TAG_MSGPACK "$msgpack"
#define B64_VARIANT sodium_base64_VARIANT_ORIGINAL

/* buf[0..len) must be exactly one object, nested at most FERRY_JSON_MAX_DEPTH
 * deep counting the `depth` levels already around it. */
static ferry_err check_exact(const void *buf, size_t len, unsigned int depth)
{
	if (depth >= FERRY_JSON_MAX_DEPTH)
		return FERRY_E_LIMIT;
	return ferry_msgpack_check(buf, len, FERRY_JSON_MAX_DEPTH - depth);
}

/* ------------------------------------------------------------------------ */
/* JSON -> msgpack                                                          */
/* ------------------------------------------------------------------------ */

static ferry_err packed(int rc)
{
	return rc ? FERRY_E_NOMEM : FERRY_OK;
}

/* If `obj` is a tagged object ({"$bin": s} or {"$msgpack": s}), the tag;
 * else NULL. */
static const char *tag_of(const json_t *obj)
{
	if (json_object_size(obj) != 1)
		return NULL;
	if (json_object_get(obj, TAG_BIN))
		return TAG_BIN;
	if (json_object_get(obj, TAG_MSGPACK))
		return TAG_MSGPACK;
	return NULL;
}

/* Decode the base64 string value of a tagged object into a malloc'd
 * buffer. */
static ferry_err tag_bytes(const json_t *obj, const char *tag, uint8_t **out,
			   size_t *out_len)
{
	const json_t *text = json_object_get(obj, tag);
	if (!json_is_string(text))
		return FERRY_E_INVALID;
	const char *b64 = json_string_value(text);
	size_t b64_len = json_string_length(text);
	uint8_t *bin = malloc(b64_len / 4 * 3 + 3);
	if (!bin)
		return FERRY_E_NOMEM;
	const char *end;
	if (sodium_base642bin(bin, b64_len / 4 * 3 + 3, b64, b64_len, NULL,
			      out_len, &end, B64_VARIANT) ||
	    end != b64 + b64_len) {
		free(bin);
		return FERRY_E_INVALID;
	}
	*out = bin;
	return FERRY_OK;
}

static ferry_err pack_tagged(msgpack_packer *pk, const json_t *obj,
			     const char *tag, unsigned int depth)
{
	uint8_t *bytes;
	size_t len;
	ferry_err err = tag_bytes(obj, tag, &bytes, &len);
	if (err)
		return err;
	if (strcmp(tag, TAG_BIN) == 0) {
		err = packed(msgpack_pack_bin(pk, len) ||
			     msgpack_pack_bin_body(pk, bytes, len));
	} else {
		err = check_exact(bytes, len, depth);
		if (err == FERRY_E_MALFORMED)
			err = FERRY_E_INVALID;
		if (!err)
			err = packed(msgpack_sbuffer_write(
				pk->data, (const char *)bytes, len));
	}
	free(bytes);
	return err;
}

static ferry_err pack_json(msgpack_packer *pk, const json_t *v,
			   unsigned int depth)
{
	switch (json_typeof(v)) {
	case JSON_NULL:
		return packed(msgpack_pack_nil(pk));
	case JSON_TRUE:
		return packed(msgpack_pack_true(pk));
	case JSON_FALSE:
		return packed(msgpack_pack_false(pk));
	case JSON_INTEGER:
		return packed(msgpack_pack_int64(pk, json_integer_value(v)));
	case JSON_REAL:
		return packed(msgpack_pack_double(pk, json_real_value(v)));
	case JSON_STRING: {
		size_t n = json_string_length(v);
		return packed(
			msgpack_pack_str(pk, n) ||
			msgpack_pack_str_body(pk, json_string_value(v), n));
	}
	case JSON_ARRAY: {
		if (depth >= FERRY_JSON_MAX_DEPTH)
			return FERRY_E_LIMIT;
		size_t n = json_array_size(v);
		if (msgpack_pack_array(pk, n))
			return FERRY_E_NOMEM;
		for (size_t i = 0; i < n; i++) {
			ferry_err err =
				pack_json(pk, json_array_get(v, i), depth + 1);
			if (err)
				return err;
		}
		return FERRY_OK;
	}
	case JSON_OBJECT: {
		const char *tag = tag_of(v);
		if (tag)
			return pack_tagged(pk, v, tag, depth);
		if (depth >= FERRY_JSON_MAX_DEPTH)
			return FERRY_E_LIMIT;
		if (msgpack_pack_map(pk, json_object_size(v)))
			return FERRY_E_NOMEM;
		/* jansson's iterators take a non-const object; only read. */
		for (void *it = json_object_iter((json_t *)v); it;
		     it = json_object_iter_next((json_t *)v, it)) {
			size_t klen = json_object_iter_key_len(it);
			if (msgpack_pack_str(pk, klen) ||
			    msgpack_pack_str_body(pk, json_object_iter_key(it),
						  klen))
				return FERRY_E_NOMEM;
			ferry_err err = pack_json(
				pk, json_object_iter_value(it), depth + 1);
			if (err)
				return err;
		}
		return FERRY_OK;
	}
	}
	return FERRY_E_INVALID;
}

ferry_err ferry_json_to_msgpack(msgpack_sbuffer *out, const json_t *value)
{
	if (!out || !value)
		return FERRY_E_INVALID;
	msgpack_packer pk;
	msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
	return pack_json(&pk, value, 0);
}

/* ------------------------------------------------------------------------ */
/* msgpack -> JSON                                                          */
/* ------------------------------------------------------------------------ */

/* {tag: base64(bytes)}. */
static ferry_err tagged_json(json_t **out, const char *tag, const void *bytes,
			     size_t len)
{
	size_t b64_size = sodium_base64_ENCODED_LEN(len, B64_VARIANT);
	char *b64 = malloc(b64_size);
	if (!b64)
		return FERRY_E_NOMEM;
	sodium_bin2base64(b64, b64_size, bytes, len, B64_VARIANT);
	*out = json_pack("{ss}", tag, b64);
	free(b64);
	return *out ? FERRY_OK : FERRY_E_NOMEM;
}

/* The object JSON cannot spell, as {"$msgpack": base64}. */
static ferry_err opaque_json(json_t **out, const msgpack_object *o)
{
	msgpack_sbuffer sbuf;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sbuf);
	msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
	ferry_err err = packed(msgpack_pack_object(&pk, *o));
	if (!err)
		err = tagged_json(out, TAG_MSGPACK, sbuf.data, sbuf.size);
	msgpack_sbuffer_destroy(&sbuf);
	return err;
}

static ferry_err object_to_json(json_t **out, const msgpack_object *o);

/* msgpack-c leaves the pointer of an empty str NULL; jansson wants text. */
static const char *str_ptr(const msgpack_object_str *s)
{
	return s->size ? s->ptr : "";
}

static ferry_err array_to_json(json_t **out, const msgpack_object_array *a)
{
	json_t *arr = json_array();
	if (!arr)
		return FERRY_E_NOMEM;
	for (uint32_t i = 0; i < a->size; i++) {
		json_t *item;
		ferry_err err = object_to_json(&item, &a->ptr[i]);
		if (!err && json_array_append_new(arr, item))
			err = FERRY_E_NOMEM;
		if (err) {
			json_decref(arr);
			return err;
		}
	}
	*out = arr;
	return FERRY_OK;
}

/* A map whose keys are distinct UTF-8 strings becomes an object; one that
 * would read back as a tagged object, or has other keys, is opaque. */
static ferry_err map_to_json(json_t **out, const msgpack_object *o)
{
	const msgpack_object_map *m = &o->via.map;
	json_t *obj = json_object();
	if (!obj)
		return FERRY_E_NOMEM;
	for (uint32_t i = 0; i < m->size; i++) {
		const msgpack_object *key = &m->ptr[i].key;
		if (key->type != MSGPACK_OBJECT_STR ||
		    json_object_getn(obj, str_ptr(&key->via.str),
				     key->via.str.size)) {
			json_decref(obj);
			return opaque_json(out, o);
		}
		json_t *val;
		ferry_err err = object_to_json(&val, &m->ptr[i].val);
		if (err) {
			json_decref(obj);
			return err;
		}
		/* Fails for a key that is not UTF-8 (or out of memory). */
		if (json_object_setn_new(obj, str_ptr(&key->via.str),
					 key->via.str.size, val)) {
			json_decref(obj);
			return opaque_json(out, o);
		}
	}
	if (tag_of(obj)) {
		json_decref(obj);
		return opaque_json(out, o);
	}
	*out = obj;
	return FERRY_OK;
}

static ferry_err object_to_json(json_t **out, const msgpack_object *o)
{
	json_t *v = NULL;
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		v = json_null();
		break;
	case MSGPACK_OBJECT_BOOLEAN:
		v = json_boolean(o->via.boolean);
		break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		if (o->via.u64 > INT64_MAX)
			return opaque_json(out, o);
		v = json_integer((json_int_t)o->via.u64);
		break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		v = json_integer(o->via.i64);
		break;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		/* jansson refuses NaN and infinities. */
		v = json_real(o->via.f64);
		if (!v)
			return opaque_json(out, o);
		break;
	case MSGPACK_OBJECT_STR:
		/* NULL for a string that is not UTF-8. */
		v = json_stringn(str_ptr(&o->via.str), o->via.str.size);
		if (!v)
			return opaque_json(out, o);
		break;
	case MSGPACK_OBJECT_BIN:
		return tagged_json(out, TAG_BIN, o->via.bin.ptr,
				   o->via.bin.size);
	case MSGPACK_OBJECT_ARRAY:
		return array_to_json(out, &o->via.array);
	case MSGPACK_OBJECT_MAP:
		return map_to_json(out, o);
	default: /* ext */
		return opaque_json(out, o);
	}
	if (!v)
		return FERRY_E_NOMEM;
	*out = v;
	return FERRY_OK;
}

ferry_err ferry_json_from_msgpack(json_t **out, const void *buf, size_t len)
{
	if (!out)
		return FERRY_E_INVALID;
	*out = NULL;
	if (!buf)
		return FERRY_E_INVALID;
	ferry_err err = check_exact(buf, len, 0);
	if (err)
		return err;
	msgpack_unpacked unpacked;
	msgpack_unpacked_init(&unpacked);
	size_t off = 0;
	if (msgpack_unpack_next(&unpacked, buf, len, &off) !=
		    MSGPACK_UNPACK_SUCCESS ||
	    off != len)
		err = FERRY_E_MALFORMED;
	else
		err = object_to_json(out, &unpacked.data);
	msgpack_unpacked_destroy(&unpacked);
	return err;
}

/* ------------------------------------------------------------------------ */
/* Writes from JSON                                                         */
/* ------------------------------------------------------------------------ */

ferry_err ferry_json_put(ferry_txn *txn, const char *scope,
			 const char *collection, const char *key,
			 const json_t *fields)
{
	size_t n = json_object_size(fields);
	if (!json_is_object(fields) || n == 0)
		return FERRY_E_INVALID;
	if (n > FERRY_MAX_FIELDS_PER_WRITE)
		return FERRY_E_LIMIT;
	ferry_field *out = calloc(n, sizeof(*out));
	size_t *ends = calloc(n, sizeof(*ends));
	msgpack_sbuffer values;
	msgpack_sbuffer_init(&values);
	ferry_err err = out && ends ? FERRY_OK : FERRY_E_NOMEM;

	/* Values are packed back to back into one buffer, which may move as
	 * it grows: point the fields into it only once it is complete. */
	size_t i = 0;
	for (void *it = json_object_iter((json_t *)fields); it && !err;
	     it = json_object_iter_next((json_t *)fields, it), i++) {
		out[i].name = json_object_iter_key(it);
		if (strlen(out[i].name) != json_object_iter_key_len(it))
			err = FERRY_E_INVALID; /* a field name with a NUL */
		else
			err = ferry_json_to_msgpack(&values,
						    json_object_iter_value(it));
		ends[i] = values.size;
	}
	for (i = 0; i < n && !err; i++) {
		size_t start = i ? ends[i - 1] : 0;
		out[i].value = values.data + start;
		out[i].value_len = ends[i] - start;
	}
	if (!err)
		err = ferry_txn_put(txn, scope, collection, key, out, n);
	msgpack_sbuffer_destroy(&values);
	free(ends);
	free(out);
	return err;
}

/* ------------------------------------------------------------------------ */
/* JSON views                                                               */
/* ------------------------------------------------------------------------ */

void ferry_json_time(char out[FERRY_JSON_TIME_BYTES], uint64_t unix_ms)
{
	time_t secs = (time_t)(unix_ms / 1000);
	struct tm tm;
	char date[FERRY_JSON_TIME_BYTES - sizeof(".000Z") + 1];
	if (!gmtime_r(&secs, &tm) ||
	    !strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm))
		strcpy(date, "?");
	snprintf(out, FERRY_JSON_TIME_BYTES, "%s.%03uZ", date,
		 (unsigned int)(unix_ms % 1000));
}

/* Add hlc, time and counter members for `hlc` to `obj`. */
static int set_stamp(json_t *obj, ferry_hlc hlc)
{
	char when[FERRY_JSON_TIME_BYTES];
	ferry_json_time(when, FERRY_HLC_MS(hlc));
	return json_object_set_new(obj, "hlc", json_integer((json_int_t)hlc)) ||
	       json_object_set_new(obj, "time", json_string(when)) ||
	       json_object_set_new(obj, "counter",
				   json_integer(FERRY_HLC_COUNTER(hlc)));
}

json_t *ferry_json_hlc(ferry_hlc hlc)
{
	json_t *obj = json_object();
	if (obj && set_stamp(obj, hlc)) {
		json_decref(obj);
		return NULL;
	}
	return obj;
}

/* Add {name: value} to `obj`, the value decoded from msgpack. */
static ferry_err set_value(json_t *obj, const char *name, const void *value,
			   size_t value_len)
{
	json_t *v;
	ferry_err err = ferry_json_from_msgpack(&v, value, value_len);
	if (err)
		return err;
	return json_object_set_new(obj, name, v) ? FERRY_E_NOMEM : FERRY_OK;
}

static int set_origin(json_t *obj, const uint8_t *origin)
{
	char hex[FERRY_ID_HEX_BYTES];
	ferry_id_to_hex(hex, origin);
	return json_object_set_new(obj, "origin", json_string(hex));
}

static json_t *stamp_json(ferry_hlc hlc, const uint8_t *origin)
{
	json_t *obj = ferry_json_hlc(hlc);
	if (obj && set_origin(obj, origin)) {
		json_decref(obj);
		return NULL;
	}
	return obj;
}

ferry_err ferry_json_from_record(json_t **out, const ferry_record *rec,
				 unsigned int flags)
{
	*out = NULL;
	int with_stamps = flags & FERRY_JSON_RECORD_STAMPS;
	json_t *fields = json_object();
	json_t *stamps = with_stamps ? json_object() : NULL;
	ferry_err err =
		fields && (stamps || !with_stamps) ? FERRY_OK : FERRY_E_NOMEM;
	size_t n = ferry_record_field_count(rec);
	for (size_t i = 0; i < n && !err; i++) {
		ferry_field_info f;
		ferry_record_field(rec, i, &f);
		err = set_value(fields, f.name, f.value, f.value_len);
		if (!err && stamps &&
		    json_object_set_new(stamps, f.name,
					stamp_json(f.hlc, f.origin)))
			err = FERRY_E_NOMEM;
	}
	if (err) {
		json_decref(fields);
		json_decref(stamps);
		return err;
	}
	if (!with_stamps && !(flags & FERRY_JSON_RECORD_NAMES)) {
		*out = fields;
		return FERRY_OK;
	}
	/* "o" steals both references, even when json_pack fails; "o*" leaves
	 * out "stamps" when it is NULL. */
	*out = json_pack(
		"{s:s, s:s, s:s, s:o, s:o*}", "scope", ferry_record_scope(rec),
		"collection", ferry_record_collection(rec), "key",
		ferry_record_key(rec), "fields", fields, "stamps", stamps);
	return *out ? FERRY_OK : FERRY_E_NOMEM;
}

ferry_err ferry_json_from_change(json_t **out, const ferry_change *change)
{
	*out = NULL;
	json_t *doc =
		json_pack("{s:I, s:s, s:I, s:s, s:s, s:s}", "cursor",
			  (json_int_t)change->cursor, "scope", change->scope,
			  "seq", (json_int_t)change->seq, "collection",
			  change->collection, "key", change->key, "op",
			  change->op == FERRY_OP_DELETE ? "delete" : "put");
	if (!doc || set_origin(doc, change->origin) ||
	    set_stamp(doc, change->hlc)) {
		json_decref(doc);
		return FERRY_E_NOMEM;
	}
	if (change->op == FERRY_OP_DELETE) {
		*out = doc;
		return FERRY_OK;
	}
	json_t *fields = json_object();
	ferry_err err = FERRY_OK;
	if (!fields || json_object_set_new(doc, "fields", fields))
		err = FERRY_E_NOMEM;
	for (size_t i = 0; i < change->nfields && !err; i++) {
		const ferry_field *f = &change->fields[i];
		err = set_value(fields, f->name, f->value, f->value_len);
	}
	if (err) {
		json_decref(doc);
		return err;
	}
	*out = doc;
	return FERRY_OK;
}

ferry_err ferry_json_from_conflict(json_t **out, const ferry_conflict *c)
{
	char recorded[FERRY_JSON_TIME_BYTES];
	ferry_json_time(recorded, c->recorded_ms);
	*out = NULL;
	json_t *loser = stamp_json(c->loser_hlc, c->loser_origin);
	json_t *winner = stamp_json(c->winner_hlc, c->winner_origin);
	ferry_err err = loser && winner ? FERRY_OK : FERRY_E_NOMEM;
	if (!err)
		err = set_value(loser, "value", c->loser_value,
				c->loser_value_len);
	if (!err && json_object_set_new(winner, "deleted",
					json_boolean(c->winner_is_delete)))
		err = FERRY_E_NOMEM;
	if (err) {
		json_decref(loser);
		json_decref(winner);
		return err;
	}
	/* "o" steals both references, even when json_pack fails. */
	*out = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:o, s:o}", "id",
			 (json_int_t)c->id, "recorded", recorded, "scope",
			 c->scope, "collection", c->collection, "key", c->key,
			 "field", c->field, "loser", loser, "winner", winner);
	return *out ? FERRY_OK : FERRY_E_NOMEM;
}
