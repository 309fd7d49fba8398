/*
 * frame.c — ferry.v1 plaintext frames (frame.h, docs/protocol.md §2–3).
 *
 * Decoding runs in three steps, so a hostile peer cannot make us allocate
 * for a lie or accept a frame that is almost right:
 *  1. ferry_msgpack_check() walks the raw bytes: every msgpack count is bounded
 * by the bytes left, nesting by FRAME_MAX_DEPTH, and exactly one object fills
 * the buffer. Only then does msgpack_unpack_next() see it (it trusts counts and
 * allocates for them).
 *  2. The tree is checked field by field against the frame's shape: exact
 *     field counts, exact types, exact binary sizes, string limits.
 *  3. Strings the caller keeps (refusal scopes and reasons, the CLOSE
 *     reason) are copied, NUL-terminated, into one block, f->strings.
 * Binary fields are not copied: msgpack-c's unpacker points them into the
 * caller's buffer.
 */
#include "frame.h"

#include <stdlib.h>
#include <string.h>

/* msgpack-c nests at most 32 deep; the protocol's frames need 3. */
#define FRAME_MAX_DEPTH 32

#define HELLO_FIELDS 7
#define AUTH_FIELDS 2
#define VECTOR_FIELDS 2
#define BATCH_FIELDS 3
#define ACK_FIELDS 6
#define REFUSAL_FIELDS 3
#define UINT_FIELDS 2 /* PENDING, PING, PONG */
#define CLOSE_FIELDS 3

/* ------------------------------------------------------------------------ */
/* Step 2: field checks                                                     */
/* ------------------------------------------------------------------------ */

/* A string field's bytes checked against [min, max] bytes. NUL is refused
 * although UTF-8 allows it: the decoded copy is NUL-terminated, so a NUL
 * inside would silently cut the text short. Over `max` is FERRY_E_LIMIT,
 * anything else wrong FERRY_E_PROTOCOL. */
static ferry_err check_text(const char *s, size_t len, size_t min, size_t max)
{
	if (len > max)
		return FERRY_E_LIMIT;
	if (len < min)
		return FERRY_E_PROTOCOL;
	/* msgpack-c may hand an empty string over with a NULL pointer. */
	if (len && (memchr(s, 0, len) || !ferry_utf8_valid(s, len)))
		return FERRY_E_PROTOCOL;
	return FERRY_OK;
}

static ferry_err get_uint(const msgpack_object *o, uint64_t *out)
{
	/* msgpack-c reports any non-negative integer, whatever width or
	 * signedness it was packed with, as POSITIVE_INTEGER. */
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return FERRY_E_PROTOCOL;
	*out = o->via.u64;
	return FERRY_OK;
}

static ferry_err get_bin(const msgpack_object *o, const uint8_t **data,
			 size_t *len)
{
	static const uint8_t empty[1];
	if (o->type != MSGPACK_OBJECT_BIN)
		return FERRY_E_PROTOCOL;
	/* msgpack-c may give an empty bin a NULL pointer; callers get a real
	 * one, so memcpy(dst, data, 0) and friends stay defined. */
	*data = o->via.bin.size ? (const uint8_t *)o->via.bin.ptr : empty;
	*len = o->via.bin.size;
	return FERRY_OK;
}

static ferry_err get_bin_fixed(const msgpack_object *o, size_t want,
			       const uint8_t **data)
{
	size_t len;
	if (get_bin(o, data, &len) || len != want)
		return FERRY_E_PROTOCOL;
	return FERRY_OK;
}

static ferry_err get_text(const msgpack_object *o, size_t min, size_t max)
{
	if (o->type != MSGPACK_OBJECT_STR)
		return FERRY_E_PROTOCOL;
	return check_text(o->via.str.ptr, o->via.str.size, min, max);
}

/* Copy a checked string field to *dst, NUL-terminated, and advance *dst. */
static char *copy_text(char **dst, const msgpack_object *o)
{
	char *s = *dst;
	if (o->via.str.size)
		memcpy(s, o->via.str.ptr, o->via.str.size);
	s[o->via.str.size] = '\0';
	*dst = s + o->via.str.size + 1;
	return s;
}

static ferry_err decode_hello(frame *f, const msgpack_object_array *a)
{
	const msgpack_object *o = a->ptr;
	/* The protocol name comes before the field count: a HELLO from
	 * another protocol may have another shape, and its sender should hear
	 * "version", not "malformed". */
	if (a->size < 2 || o[1].type != MSGPACK_OBJECT_STR)
		return FERRY_E_PROTOCOL;
	if (o[1].via.str.size != strlen(FRAME_PROTOCOL) ||
	    memcmp(o[1].via.str.ptr, FRAME_PROTOCOL, o[1].via.str.size) != 0)
		return FERRY_E_VERSION;
	if (a->size != HELLO_FIELDS || get_uint(&o[2], &f->u.hello.version) ||
	    get_bin_fixed(&o[3], FERRY_PUBLIC_KEY_BYTES,
			  &f->u.hello.identity) ||
	    get_bin_fixed(&o[4], FRAME_KX_BYTES, &f->u.hello.kx) ||
	    get_bin_fixed(&o[5], FRAME_NONCE_BYTES, &f->u.hello.nonce) ||
	    get_uint(&o[6], &f->u.hello.max_frame))
		return FERRY_E_PROTOCOL;
	/* §1: every node accepts at least this much; a peer announcing less
	 * could not be sent a full batch envelope. */
	if (f->u.hello.max_frame < FRAME_MIN_MAX_FRAME)
		return FERRY_E_PROTOCOL;
	return FERRY_OK;
}

static ferry_err decode_ack(frame *f, const msgpack_object_array *a)
{
	const msgpack_object *o = a->ptr;
	const msgpack_object_array *list;
	size_t total = 0;
	char *dst;
	ferry_err err;

	if (a->size != ACK_FIELDS || get_uint(&o[1], &f->u.ack.batch_no) ||
	    get_uint(&o[2], &f->u.ack.status) ||
	    get_uint(&o[3], &f->u.ack.applied) ||
	    get_uint(&o[4], &f->u.ack.duplicate) ||
	    o[5].type != MSGPACK_OBJECT_ARRAY)
		return FERRY_E_PROTOCOL;
	if (f->u.ack.status != FRAME_ACK_APPLIED &&
	    f->u.ack.status != FRAME_ACK_RESYNC)
		return FERRY_E_PROTOCOL;
	list = &o[5].via.array;
	if (list->size > FRAME_MAX_REFUSALS)
		return FERRY_E_LIMIT;

	/* Check everything and size the string block before allocating. */
	for (uint32_t i = 0; i < list->size; i++) {
		const msgpack_object *r = &list->ptr[i];
		const uint8_t *origin;
		if (r->type != MSGPACK_OBJECT_ARRAY ||
		    r->via.array.size != REFUSAL_FIELDS ||
		    get_bin_fixed(&r->via.array.ptr[0], FERRY_PUBLIC_KEY_BYTES,
				  &origin))
			return FERRY_E_PROTOCOL;
		if ((err = get_text(&r->via.array.ptr[1], 1,
				    FERRY_MAX_SCOPE_BYTES)) ||
		    (err = get_text(&r->via.array.ptr[2], 0,
				    FRAME_MAX_REASON_BYTES)))
			return err;
		total += r->via.array.ptr[1].via.str.size + 1 +
			 r->via.array.ptr[2].via.str.size + 1;
	}
	if (list->size == 0)
		return FERRY_OK;

	f->u.ack.refused = calloc(list->size, sizeof(*f->u.ack.refused));
	f->strings = malloc(total);
	if (!f->u.ack.refused || !f->strings)
		return FERRY_E_NOMEM; /* the caller frees both */
	dst = f->strings;
	for (uint32_t i = 0; i < list->size; i++) {
		const msgpack_object *r = list->ptr[i].via.array.ptr;
		frame_refusal *out = &f->u.ack.refused[i];
		out->origin = (const uint8_t *)r[0].via.bin.ptr;
		out->scope = copy_text(&dst, &r[1]);
		out->reason = copy_text(&dst, &r[2]);
	}
	f->u.ack.nrefused = list->size;
	return FERRY_OK;
}

static ferry_err decode_close(frame *f, const msgpack_object_array *a)
{
	const msgpack_object *o = a->ptr;
	char *dst;
	ferry_err err;

	if (a->size != CLOSE_FIELDS || get_uint(&o[1], &f->u.close.code))
		return FERRY_E_PROTOCOL;
	if ((err = get_text(&o[2], 0, FRAME_MAX_REASON_BYTES)))
		return err;
	f->strings = malloc(o[2].via.str.size + 1);
	if (!f->strings)
		return FERRY_E_NOMEM;
	dst = f->strings;
	f->u.close.reason = copy_text(&dst, &o[2]);
	return FERRY_OK;
}

/* Step 2 for a tree that is an array: dispatch on the type in slot 0. */
static ferry_err decode_fields(frame *f, const msgpack_object_array *a)
{
	const msgpack_object *o = a->ptr;
	uint64_t type;
	size_t len;

	if (a->size < 1 || get_uint(&o[0], &type))
		return FERRY_E_PROTOCOL;
	switch (type) {
	case FRAME_HELLO:
		f->type = FRAME_HELLO;
		return decode_hello(f, a);
	case FRAME_AUTH:
		f->type = FRAME_AUTH;
		if (a->size != AUTH_FIELDS ||
		    get_bin_fixed(&o[1], FERRY_SIGNATURE_BYTES, &f->u.auth.sig))
			return FERRY_E_PROTOCOL;
		return FERRY_OK;
	case FRAME_VECTOR:
		/* The vector's own limits (entries, order) are
		 * ferry_vector_decode()'s; the frame bounds its size. */
		f->type = FRAME_VECTOR;
		if (a->size != VECTOR_FIELDS ||
		    get_bin(&o[1], &f->u.vector.data, &f->u.vector.len))
			return FERRY_E_PROTOCOL;
		return FERRY_OK;
	case FRAME_BATCH:
		f->type = FRAME_BATCH;
		if (a->size != BATCH_FIELDS ||
		    get_uint(&o[1], &f->u.batch.batch_no) ||
		    get_bin(&o[2], &f->u.batch.data, &len))
			return FERRY_E_PROTOCOL;
		if (len > FERRY_MAX_BATCH_BYTES)
			return FERRY_E_LIMIT;
		f->u.batch.len = len;
		return FERRY_OK;
	case FRAME_ACK:
		f->type = FRAME_ACK;
		return decode_ack(f, a);
	case FRAME_PENDING:
		f->type = FRAME_PENDING;
		if (a->size != UINT_FIELDS ||
		    get_uint(&o[1], &f->u.pending.changes))
			return FERRY_E_PROTOCOL;
		return FERRY_OK;
	case FRAME_PING:
	case FRAME_PONG:
		f->type = (frame_type)type;
		if (a->size != UINT_FIELDS ||
		    get_uint(&o[1], &f->u.ping.time_ms))
			return FERRY_E_PROTOCOL;
		return FERRY_OK;
	case FRAME_CLOSE:
		f->type = FRAME_CLOSE;
		return decode_close(f, a);
	default:
		return FERRY_E_PROTOCOL;
	}
}

ferry_err frame_decode(frame *f, const void *buf, size_t len)
{
	size_t off = 0;
	ferry_err err;

	memset(f, 0, sizeof(*f));
	msgpack_unpacked_init(&f->unpacked);
	if (len == 0 || ferry_msgpack_check(buf, len, FRAME_MAX_DEPTH - 1))
		return FERRY_E_PROTOCOL;
	switch (msgpack_unpack_next(&f->unpacked, buf, len, &off)) {
	case MSGPACK_UNPACK_SUCCESS:
		break;
	case MSGPACK_UNPACK_NOMEM_ERROR:
		err = FERRY_E_NOMEM;
		goto fail;
	default:
		err = FERRY_E_PROTOCOL;
		goto fail;
	}
	/* ferry_msgpack_check() proved one object fills the buffer. */
	if (off != len || f->unpacked.data.type != MSGPACK_OBJECT_ARRAY) {
		err = FERRY_E_PROTOCOL;
		goto fail;
	}
	if ((err = decode_fields(f, &f->unpacked.data.via.array)))
		goto fail;
	return FERRY_OK;
fail:
	frame_clear(f);
	return err;
}

void frame_clear(frame *f)
{
	if (!f)
		return;
	if (f->type == FRAME_ACK)
		free(f->u.ack.refused);
	free(f->strings);
	msgpack_unpacked_destroy(&f->unpacked);
	memset(f, 0, sizeof(*f));
}

/* ------------------------------------------------------------------------ */
/* Encoders                                                                 */
/* ------------------------------------------------------------------------ */

/* Every encoder validates first, then packs; if packing fails (the buffer
 * could not grow) the partial frame is cut off again, so `out` is left as
 * it was on any error. */
static ferry_err packed(msgpack_sbuffer *out, size_t start, int rc)
{
	if (rc == 0)
		return FERRY_OK;
	out->size = start;
	return FERRY_E_NOMEM;
}

static int pack_bin(msgpack_packer *pk, const void *data, size_t len)
{
	/* An empty body may come with a NULL pointer; memcpy must not see
	 * it. */
	if (len == 0)
		return msgpack_pack_bin(pk, 0);
	return msgpack_pack_bin_with_body(pk, data, len);
}

static int pack_str(msgpack_packer *pk, const char *s)
{
	return msgpack_pack_str_with_body(pk, s, strlen(s));
}

/* A string we are about to send must pass the receiver's check_text(). */
static int text_ok(const char *s, size_t min, size_t max)
{
	return s && check_text(s, strlen(s), min, max) == FERRY_OK;
}

ferry_err frame_encode_hello(msgpack_sbuffer *out, const uint8_t *identity,
			     const uint8_t *kx, const uint8_t *nonce,
			     uint64_t max_frame)
{
	msgpack_packer pk;
	size_t start = out->size;
	if (!identity || !kx || !nonce)
		return FERRY_E_INVALID;
	msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
	return packed(out, start,
		      msgpack_pack_array(&pk, HELLO_FIELDS) ||
			      msgpack_pack_uint64(&pk, FRAME_HELLO) ||
			      pack_str(&pk, FRAME_PROTOCOL) ||
			      msgpack_pack_uint64(&pk, FRAME_VERSION) ||
			      pack_bin(&pk, identity, FERRY_PUBLIC_KEY_BYTES) ||
			      pack_bin(&pk, kx, FRAME_KX_BYTES) ||
			      pack_bin(&pk, nonce, FRAME_NONCE_BYTES) ||
			      msgpack_pack_uint64(&pk, max_frame));
}

ferry_err frame_encode_auth(msgpack_sbuffer *out, const uint8_t *sig)
{
	msgpack_packer pk;
	size_t start = out->size;
	if (!sig)
		return FERRY_E_INVALID;
	msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
	return packed(out, start,
		      msgpack_pack_array(&pk, AUTH_FIELDS) ||
			      msgpack_pack_uint64(&pk, FRAME_AUTH) ||
			      pack_bin(&pk, sig, FERRY_SIGNATURE_BYTES));
}

ferry_err frame_encode_vector(msgpack_sbuffer *out, const void *vector,
			      size_t len)
{
	msgpack_packer pk;
	size_t start = out->size;
	if ((!vector && len) || len > UINT32_MAX)
		return FERRY_E_INVALID;
	msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
	return packed(out, start,
		      msgpack_pack_array(&pk, VECTOR_FIELDS) ||
			      msgpack_pack_uint64(&pk, FRAME_VECTOR) ||
			      pack_bin(&pk, vector, len));
}

ferry_err frame_encode_batch(msgpack_sbuffer *out, uint64_t batch_no,
			     const void *batch, size_t len)
{
	msgpack_packer pk;
	size_t start = out->size;
	/* The receiver refuses bigger batches (frame_decode: FERRY_E_LIMIT). */
	if ((!batch && len) || len > FERRY_MAX_BATCH_BYTES)
		return FERRY_E_INVALID;
	msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
	return packed(out, start,
		      msgpack_pack_array(&pk, BATCH_FIELDS) ||
			      msgpack_pack_uint64(&pk, FRAME_BATCH) ||
			      msgpack_pack_uint64(&pk, batch_no) ||
			      pack_bin(&pk, batch, len));
}

ferry_err frame_encode_ack(msgpack_sbuffer *out, uint64_t batch_no,
			   uint64_t status, uint64_t applied,
			   uint64_t duplicate, const frame_refusal *refused,
			   size_t nrefused)
{
	msgpack_packer pk;
	size_t start = out->size;
	int rc;

	if (nrefused > FRAME_MAX_REFUSALS || (!refused && nrefused))
		return FERRY_E_INVALID;
	for (size_t i = 0; i < nrefused; i++) {
		if (!refused[i].origin ||
		    !text_ok(refused[i].scope, 1, FERRY_MAX_SCOPE_BYTES) ||
		    !text_ok(refused[i].reason, 0, FRAME_MAX_REASON_BYTES))
			return FERRY_E_INVALID;
	}
	msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
	rc = msgpack_pack_array(&pk, ACK_FIELDS) ||
	     msgpack_pack_uint64(&pk, FRAME_ACK) ||
	     msgpack_pack_uint64(&pk, batch_no) ||
	     msgpack_pack_uint64(&pk, status) ||
	     msgpack_pack_uint64(&pk, applied) ||
	     msgpack_pack_uint64(&pk, duplicate) ||
	     msgpack_pack_array(&pk, nrefused);
	for (size_t i = 0; i < nrefused && rc == 0; i++) {
		rc = msgpack_pack_array(&pk, REFUSAL_FIELDS) ||
		     pack_bin(&pk, refused[i].origin, FERRY_PUBLIC_KEY_BYTES) ||
		     pack_str(&pk, refused[i].scope) ||
		     pack_str(&pk, refused[i].reason);
	}
	return packed(out, start, rc);
}

ferry_err frame_encode_pending(msgpack_sbuffer *out, uint64_t changes)
{
	msgpack_packer pk;
	size_t start = out->size;
	msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
	return packed(out, start,
		      msgpack_pack_array(&pk, UINT_FIELDS) ||
			      msgpack_pack_uint64(&pk, FRAME_PENDING) ||
			      msgpack_pack_uint64(&pk, changes));
}

ferry_err frame_encode_ping(msgpack_sbuffer *out, frame_type type,
			    uint64_t time_ms)
{
	msgpack_packer pk;
	size_t start = out->size;
	if (type != FRAME_PING && type != FRAME_PONG)
		return FERRY_E_INVALID;
	msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
	return packed(out, start,
		      msgpack_pack_array(&pk, UINT_FIELDS) ||
			      msgpack_pack_uint64(&pk, type) ||
			      msgpack_pack_uint64(&pk, time_ms));
}

ferry_err frame_encode_close(msgpack_sbuffer *out, uint64_t code,
			     const char *reason)
{
	msgpack_packer pk;
	size_t start = out->size;
	/* NULL is an empty reason: a normal close needs no words. */
	if (!reason)
		reason = "";
	if (!text_ok(reason, 0, FRAME_MAX_REASON_BYTES))
		return FERRY_E_INVALID;
	msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
	return packed(out, start,
		      msgpack_pack_array(&pk, CLOSE_FIELDS) ||
			      msgpack_pack_uint64(&pk, FRAME_CLOSE) ||
			      msgpack_pack_uint64(&pk, code) ||
			      pack_str(&pk, reason));
}
