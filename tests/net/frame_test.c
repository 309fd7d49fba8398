/*
 * frame_test.c — ferry.v1 frame encoding and strict decoding (net/frame.c).
 *
 * Every frame type round-trips; everything that is almost a frame (cut
 * short, one byte too long, a field of the wrong type or size, a count
 * that lies, a string over its bound or not UTF-8, another protocol, an
 * unknown type) is refused with the documented error; random damage never
 * crashes. Run under ASan/UBSan to make "never crashes" mean something.
 *
 * With FERRY_FRAME_CORPUS=DIR set, the valid frames are also written to DIR
 * as fuzz seeds (tests/fuzz/corpus/frame was made that way).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "frame.h"
#include "testing.h"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

/* One encoded frame, in a heap block of exactly its size so ASan sees any
 * read past the end. */
typedef struct sample {
	const char *name;
	uint8_t *buf;
	size_t len;
} sample;

#define MAX_SAMPLES 32
static sample samples[MAX_SAMPLES];
static size_t nsamples;

static uint8_t identity[32], kx[32], nonce[32], sig[64], origin[32];

static uint8_t *dup_exact(const void *buf, size_t len)
{
	uint8_t *p = malloc(len ? len : 1);
	CHECK(p != NULL);
	memcpy(p, buf, len);
	return p;
}

static void add_sample(const char *name, msgpack_sbuffer *sb)
{
	CHECK(nsamples < MAX_SAMPLES);
	samples[nsamples].name = name;
	samples[nsamples].buf = dup_exact(sb->data, sb->size);
	samples[nsamples].len = sb->size;
	nsamples++;
	msgpack_sbuffer_clear(sb);
}

/* Decode `len` bytes copied to an exact-size block. */
static ferry_err decode_exact(frame *f, const void *buf, size_t len)
{
	uint8_t *copy = dup_exact(buf, len);
	ferry_err err = frame_decode(f, copy, len);
	/* Byte pointers point into the buffer: keep it only while needed. */
	frame_clear(f);
	free(copy);
	return err;
}

static ferry_err decode_sb(msgpack_sbuffer *sb)
{
	frame f;
	return decode_exact(&f, sb->data, sb->size);
}

static void fill(uint8_t *p, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed + 7 * i);
}

/* A real batch and vector from a node, so the seeds are realistic. */
static void *real_batch, *real_vector;
static size_t real_batch_len, real_vector_len;

static void make_real_payloads(void)
{
	ferry_node *node = test_node("frame-node", 0);
	ferry_export *exp = NULL;
	ferry_vector *v = NULL;

	test_put_str(node, "clinic-7", "patients", "p1", "dose", "10 mg");
	test_put_str(node, "shared", "pricelist", "vaccine", "eur", "30");
	CHECK_NODE_OK(node, ferry_export_begin(&exp, node, NULL, NULL));
	CHECK_NODE_OK(node, ferry_export_next(exp, &real_batch, &real_batch_len,
					      NULL));
	ferry_export_free(exp);
	CHECK_NODE_OK(node, ferry_vector_get(&v, node));
	CHECK_OK(ferry_vector_encode(&real_vector, &real_vector_len, v));
	ferry_vector_free(v);
	ferry_node_close(node);
}

static const frame_refusal refusals[] = {
	{origin, "pricelist", "peer 3fa2… may not write scope pricelist"},
	{origin, "clinic-7/ward ü", ""},
};

static void make_samples(void)
{
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);

	CHECK_OK(frame_encode_hello(&sb, identity, kx, nonce, 1048576 + 65536));
	add_sample("hello", &sb);
	CHECK_OK(frame_encode_auth(&sb, sig));
	add_sample("auth", &sb);
	CHECK_OK(frame_encode_vector(&sb, real_vector, real_vector_len));
	add_sample("vector", &sb);
	CHECK_OK(frame_encode_vector(&sb, NULL, 0));
	add_sample("vector-empty-bin", &sb);
	CHECK_OK(frame_encode_batch(&sb, 1, real_batch, real_batch_len));
	add_sample("batch", &sb);
	CHECK_OK(frame_encode_ack(&sb, 1, FRAME_ACK_APPLIED, 5, 2, NULL, 0));
	add_sample("ack", &sb);
	CHECK_OK(frame_encode_ack(&sb, 300, FRAME_ACK_APPLIED, 1, 0, refusals,
				  2));
	add_sample("ack-refused", &sb);
	CHECK_OK(frame_encode_ack(&sb, 7, FRAME_ACK_RESYNC, 0, 0, NULL, 0));
	add_sample("ack-resync", &sb);
	CHECK_OK(frame_encode_pending(&sb, 123456789));
	add_sample("pending", &sb);
	CHECK_OK(frame_encode_ping(&sb, FRAME_PING, UINT64_C(1700000000000)));
	add_sample("ping", &sb);
	CHECK_OK(frame_encode_ping(&sb, FRAME_PONG, UINT64_MAX));
	add_sample("pong", &sb);
	CHECK_OK(frame_encode_close(&sb, 4001,
				    "untrusted key 3fa2…; on this node run: "
				    "ferry trust add 3fa2… …"));
	add_sample("close", &sb);
	CHECK_OK(frame_encode_close(&sb, 1000, NULL));
	add_sample("close-empty", &sb);
	msgpack_sbuffer_destroy(&sb);
}

static void write_corpus(void)
{
	const char *dir = getenv("FERRY_FRAME_CORPUS");
	if (!dir || !*dir)
		return;
	for (size_t i = 0; i < nsamples; i++) {
		char path[4096];
		FILE *fp;
		snprintf(path, sizeof(path), "%s/%s.bin", dir, samples[i].name);
		fp = fopen(path, "wb");
		CHECK(fp != NULL);
		CHECK(fwrite(samples[i].buf, 1, samples[i].len, fp) ==
		      samples[i].len);
		CHECK(fclose(fp) == 0);
	}
	printf("wrote %zu seeds to %s\n", nsamples, dir);
}

/* ------------------------------------------------------------------------ */
/* Round trips                                                              */
/* ------------------------------------------------------------------------ */

static const uint8_t *sample_buf(const char *name, size_t *len)
{
	for (size_t i = 0; i < nsamples; i++) {
		if (!strcmp(samples[i].name, name)) {
			*len = samples[i].len;
			return samples[i].buf;
		}
	}
	test_fail(__FILE__, __LINE__, "no sample %s", name);
}

static int points_into(const void *p, const uint8_t *buf, size_t len)
{
	const uint8_t *q = p;
	return q >= buf && q < buf + len;
}

static void test_round_trips(void)
{
	frame f;
	size_t len;
	const uint8_t *buf;

	buf = sample_buf("hello", &len);
	CHECK_OK(frame_decode(&f, buf, len));
	CHECK(f.type == FRAME_HELLO);
	CHECK_EQ_U64(f.u.hello.version, FRAME_VERSION);
	CHECK(!memcmp(f.u.hello.identity, identity, 32));
	CHECK(!memcmp(f.u.hello.kx, kx, 32));
	CHECK(!memcmp(f.u.hello.nonce, nonce, 32));
	CHECK(points_into(f.u.hello.identity, buf, len));
	CHECK_EQ_U64(f.u.hello.max_frame, 1048576 + 65536);
	frame_clear(&f);
	frame_clear(&f); /* a cleared frame clears again */

	buf = sample_buf("auth", &len);
	CHECK_OK(frame_decode(&f, buf, len));
	CHECK(f.type == FRAME_AUTH);
	CHECK(!memcmp(f.u.auth.sig, sig, 64));
	frame_clear(&f);

	buf = sample_buf("vector", &len);
	CHECK_OK(frame_decode(&f, buf, len));
	CHECK(f.type == FRAME_VECTOR);
	CHECK_EQ_U64(f.u.vector.len, real_vector_len);
	CHECK(!memcmp(f.u.vector.data, real_vector, real_vector_len));
	{
		ferry_vector *v = NULL;
		CHECK_OK(ferry_vector_decode(&v, f.u.vector.data,
					     f.u.vector.len));
		CHECK_EQ_U64(ferry_vector_count(v), 2);
		ferry_vector_free(v);
	}
	frame_clear(&f);

	buf = sample_buf("vector-empty-bin", &len);
	CHECK_OK(frame_decode(&f, buf, len));
	CHECK(f.type == FRAME_VECTOR);
	CHECK_EQ_U64(f.u.vector.len, 0);
	frame_clear(&f);

	buf = sample_buf("batch", &len);
	CHECK_OK(frame_decode(&f, buf, len));
	CHECK(f.type == FRAME_BATCH);
	CHECK_EQ_U64(f.u.batch.batch_no, 1);
	CHECK_EQ_U64(f.u.batch.len, real_batch_len);
	CHECK(!memcmp(f.u.batch.data, real_batch, real_batch_len));
	frame_clear(&f);

	buf = sample_buf("ack", &len);
	CHECK_OK(frame_decode(&f, buf, len));
	CHECK(f.type == FRAME_ACK);
	CHECK_EQ_U64(f.u.ack.batch_no, 1);
	CHECK_EQ_U64(f.u.ack.status, FRAME_ACK_APPLIED);
	CHECK_EQ_U64(f.u.ack.applied, 5);
	CHECK_EQ_U64(f.u.ack.duplicate, 2);
	CHECK_EQ_U64(f.u.ack.nrefused, 0);
	frame_clear(&f);

	buf = sample_buf("ack-refused", &len);
	CHECK_OK(frame_decode(&f, buf, len));
	CHECK(f.type == FRAME_ACK);
	CHECK_EQ_U64(f.u.ack.batch_no, 300);
	CHECK_EQ_U64(f.u.ack.nrefused, 2);
	for (size_t i = 0; i < 2; i++) {
		CHECK(!memcmp(f.u.ack.refused[i].origin, origin, 32));
		CHECK(!strcmp(f.u.ack.refused[i].scope, refusals[i].scope));
		CHECK(!strcmp(f.u.ack.refused[i].reason, refusals[i].reason));
		/* Owned copies, not pointers into the buffer. */
		CHECK(!points_into(f.u.ack.refused[i].scope, buf, len));
	}
	frame_clear(&f);

	buf = sample_buf("ack-resync", &len);
	CHECK_OK(frame_decode(&f, buf, len));
	CHECK_EQ_U64(f.u.ack.status, FRAME_ACK_RESYNC);
	CHECK_EQ_U64(f.u.ack.batch_no, 7);
	frame_clear(&f);

	buf = sample_buf("pending", &len);
	CHECK_OK(frame_decode(&f, buf, len));
	CHECK(f.type == FRAME_PENDING);
	CHECK_EQ_U64(f.u.pending.changes, 123456789);
	frame_clear(&f);

	buf = sample_buf("ping", &len);
	CHECK_OK(frame_decode(&f, buf, len));
	CHECK(f.type == FRAME_PING);
	CHECK_EQ_U64(f.u.ping.time_ms, UINT64_C(1700000000000));
	frame_clear(&f);

	buf = sample_buf("pong", &len);
	CHECK_OK(frame_decode(&f, buf, len));
	CHECK(f.type == FRAME_PONG);
	CHECK_EQ_U64(f.u.ping.time_ms, UINT64_MAX);
	frame_clear(&f);

	buf = sample_buf("close", &len);
	CHECK_OK(frame_decode(&f, buf, len));
	CHECK(f.type == FRAME_CLOSE);
	CHECK_EQ_U64(f.u.close.code, 4001);
	CHECK(!strncmp(f.u.close.reason, "untrusted key 3fa2…", 20));
	CHECK(!points_into(f.u.close.reason, buf, len));
	frame_clear(&f);

	/* Empty strings and bins at the very end of the buffer, which
	 * msgpack-c hands over with NULL pointers (found by frame_fuzz). */
	{
		static const uint8_t close0[] = {0x93, 0x09, 0x30, 0xa0};
		static const uint8_t vector0[] = {0x92, 0x03, 0xc4, 0x00};
		CHECK_OK(frame_decode(&f, close0, sizeof(close0)));
		CHECK_EQ_U64(f.u.close.code, 0x30);
		CHECK(!strcmp(f.u.close.reason, ""));
		frame_clear(&f);
		CHECK_OK(frame_decode(&f, vector0, sizeof(vector0)));
		CHECK(f.u.vector.data != NULL);
		CHECK_EQ_U64(f.u.vector.len, 0);
		frame_clear(&f);
	}

	buf = sample_buf("close-empty", &len);
	CHECK_OK(frame_decode(&f, buf, len));
	CHECK_EQ_U64(f.u.close.code, 1000);
	CHECK(!strcmp(f.u.close.reason, ""));
	frame_clear(&f);
}

/* Integers in any width or signedness decode, as §0 promises. */
static void test_int_widths(void)
{
	static const uint8_t ping_u64[] = {0x92, 0x07, 0xcf, 0, 0, 0,
					   0,	 0,    0,    0, 5};
	static const uint8_t ping_i8[] = {0x92, 0xd0, 0x07, 0xd0, 0x05};
	static const uint8_t ping_i64[] = {0x92, 0x07, 0xd3, 0, 0, 0,
					   0,	 0,    0,    0, 5};
	static const uint8_t ping_neg[] = {0x92, 0x07, 0xff};
	static const uint8_t ping_float[] = {0x92, 0x07, 0xca, 0x40,
					     0xa0, 0,	 0};
	frame f;

	CHECK_OK(frame_decode(&f, ping_u64, sizeof(ping_u64)));
	CHECK_EQ_U64(f.u.ping.time_ms, 5);
	frame_clear(&f);
	CHECK_OK(frame_decode(&f, ping_i8, sizeof(ping_i8)));
	CHECK(f.type == FRAME_PING);
	CHECK_EQ_U64(f.u.ping.time_ms, 5);
	frame_clear(&f);
	CHECK_OK(frame_decode(&f, ping_i64, sizeof(ping_i64)));
	CHECK_EQ_U64(f.u.ping.time_ms, 5);
	frame_clear(&f);
	CHECK_ERR(frame_decode(&f, ping_neg, sizeof(ping_neg)),
		  FERRY_E_PROTOCOL);
	CHECK_ERR(frame_decode(&f, ping_float, sizeof(ping_float)),
		  FERRY_E_PROTOCOL);
}

/* ------------------------------------------------------------------------ */
/* Truncation, trailing bytes                                               */
/* ------------------------------------------------------------------------ */

static void test_truncation_and_trailing(void)
{
	for (size_t i = 0; i < nsamples; i++) {
		const sample *s = &samples[i];
		uint8_t *longer;
		frame f;

		for (size_t n = 0; n < s->len; n++) {
			ferry_err err = decode_exact(&f, s->buf, n);
			if (err != FERRY_E_PROTOCOL)
				test_fail(__FILE__, __LINE__,
					  "%s cut to %zu of %zu bytes: %s",
					  s->name, n, s->len,
					  ferry_err_name(err));
		}
		longer = malloc(s->len + 1);
		CHECK(longer != NULL);
		memcpy(longer, s->buf, s->len);
		longer[s->len] = 0x00; /* a valid msgpack object on its own */
		CHECK_ERR(frame_decode(&f, longer, s->len + 1),
			  FERRY_E_PROTOCOL);
		free(longer);
	}
}

/* ------------------------------------------------------------------------ */
/* Wrong types, one field at a time                                         */
/* ------------------------------------------------------------------------ */

typedef enum kind {
	K_UINT,	  /* uint */
	K_BIN32,  /* bin(32) */
	K_BIN64,  /* bin(64) */
	K_BIN,	  /* bin of any size */
	K_PROTO,  /* "ferry.v1" */
	K_TEXT,	  /* str (a reason) */
	K_REFUSE, /* the ACK's refusal list */
} kind;

/* The shape of each frame after its type. Field values that a valid frame
 * needs (max_frame >= 65536, status 0 or 1) are packed by pack_good(). */
typedef struct shape {
	uint64_t type;
	size_t nfields;
	kind fields[7];
} shape;

static const shape shapes[] = {
	{FRAME_HELLO, 6, {K_PROTO, K_UINT, K_BIN32, K_BIN32, K_BIN32, K_UINT}},
	{FRAME_AUTH, 1, {K_BIN64}},
	{FRAME_VECTOR, 1, {K_BIN}},
	{FRAME_BATCH, 2, {K_UINT, K_BIN}},
	{FRAME_ACK, 5, {K_UINT, K_UINT, K_UINT, K_UINT, K_REFUSE}},
	{FRAME_PENDING, 1, {K_UINT}},
	{FRAME_PING, 1, {K_UINT}},
	{FRAME_PONG, 1, {K_UINT}},
	{FRAME_CLOSE, 2, {K_UINT, K_TEXT}},
};

/* Values to put where they may not belong. */
typedef enum wrong {
	W_NIL,
	W_TRUE,
	W_NEG,
	W_FLOAT,
	W_UINT,
	W_STR,
	W_STR32,
	W_BIN31,
	W_BIN32,
	W_BIN33,
	W_BIN64,
	W_ARRAY,
	W_MAP,
	W_EXT,
	W_COUNT
} wrong;

static void pack_wrong(msgpack_packer *pk, wrong w)
{
	static const uint8_t zeros[64];
	switch (w) {
	case W_NIL:
		msgpack_pack_nil(pk);
		break;
	case W_TRUE:
		msgpack_pack_true(pk);
		break;
	case W_NEG:
		msgpack_pack_int64(pk, -1);
		break;
	case W_FLOAT:
		msgpack_pack_double(pk, 65536.0);
		break;
	case W_UINT:
		msgpack_pack_uint64(pk, 70000);
		break;
	case W_STR:
		msgpack_pack_str_with_body(pk, "ferry.v2", 8);
		break;
	case W_STR32:
		msgpack_pack_str_with_body(
			pk, "0123456789abcdef0123456789abcdef", 32);
		break;
	case W_BIN31:
		msgpack_pack_bin_with_body(pk, zeros, 31);
		break;
	case W_BIN32:
		msgpack_pack_bin_with_body(pk, zeros, 32);
		break;
	case W_BIN33:
		msgpack_pack_bin_with_body(pk, zeros, 33);
		break;
	case W_BIN64:
		msgpack_pack_bin_with_body(pk, zeros, 64);
		break;
	case W_ARRAY:
		msgpack_pack_array(pk, 0);
		break;
	case W_MAP:
		msgpack_pack_map(pk, 0);
		break;
	case W_EXT:
		msgpack_pack_ext_with_body(pk, zeros, 4, 1);
		break;
	default:
		break;
	}
}

/* Could `w` stand in a field of kind `k` in a valid frame? */
static int fits(kind k, wrong w)
{
	switch (k) {
	case K_UINT:
		return w == W_UINT;
	case K_BIN32:
		return w == W_BIN32;
	case K_BIN64:
		return w == W_BIN64;
	case K_BIN:
		return w >= W_BIN31 && w <= W_BIN64;
	case K_TEXT:
		return w == W_STR || w == W_STR32;
	case K_REFUSE:
		return w == W_ARRAY;
	case K_PROTO:
		return 0;
	}
	return 0;
}

static void pack_good(msgpack_packer *pk, const shape *s, size_t i)
{
	switch (s->fields[i]) {
	case K_UINT:
		/* HELLO's max_frame must be at least the minimum; ACK's
		 * status 0 or 1; every other uint may be anything. */
		msgpack_pack_uint64(pk, s->type == FRAME_HELLO && i == 5
						? FRAME_MIN_MAX_FRAME
						: 1);
		break;
	case K_BIN32:
		msgpack_pack_bin_with_body(pk, identity, 32);
		break;
	case K_BIN64:
		msgpack_pack_bin_with_body(pk, sig, 64);
		break;
	case K_BIN:
		msgpack_pack_bin_with_body(pk, "xyz", 3);
		break;
	case K_PROTO:
		msgpack_pack_str_with_body(pk, FRAME_PROTOCOL,
					   strlen(FRAME_PROTOCOL));
		break;
	case K_TEXT:
		msgpack_pack_str_with_body(pk, "bye", 3);
		break;
	case K_REFUSE:
		msgpack_pack_array(pk, 1);
		msgpack_pack_array(pk, 3);
		msgpack_pack_bin_with_body(pk, origin, 32);
		msgpack_pack_str_with_body(pk, "s", 1);
		msgpack_pack_str_with_body(pk, "r", 1);
		break;
	}
}

/* Pack shape `s` with `nfields` fields (its own count unless testing the
 * count), field `bad` (1-based; 0 = none, SIZE_MAX = the type itself)
 * replaced by `w`. */
static void pack_shape(msgpack_sbuffer *sb, const shape *s, size_t nfields,
		       size_t bad, wrong w)
{
	msgpack_packer pk;
	msgpack_sbuffer_clear(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, nfields + 1);
	if (bad == SIZE_MAX)
		pack_wrong(&pk, w);
	else
		msgpack_pack_uint64(&pk, s->type);
	for (size_t i = 0; i < nfields; i++) {
		if (bad == i + 1)
			pack_wrong(&pk, w);
		else if (i < s->nfields)
			pack_good(&pk, s, i);
		else
			msgpack_pack_nil(&pk);
	}
}

static void test_wrong_fields(void)
{
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);

	for (size_t si = 0; si < sizeof(shapes) / sizeof(shapes[0]); si++) {
		const shape *s = &shapes[si];

		/* The shape itself is valid. */
		pack_shape(&sb, s, s->nfields, 0, W_NIL);
		CHECK_OK(decode_sb(&sb));

		/* One field too few or too many. */
		pack_shape(&sb, s, s->nfields - 1, 0, W_NIL);
		CHECK_ERR(decode_sb(&sb), FERRY_E_PROTOCOL);
		pack_shape(&sb, s, s->nfields + 1, 0, W_NIL);
		CHECK_ERR(decode_sb(&sb), FERRY_E_PROTOCOL);

		for (int w = 0; w < W_COUNT; w++) {
			/* The type itself of the wrong type. */
			if (w != W_UINT) {
				pack_shape(&sb, s, s->nfields, SIZE_MAX, w);
				CHECK_ERR(decode_sb(&sb), FERRY_E_PROTOCOL);
			}
			for (size_t i = 0; i < s->nfields; i++) {
				ferry_err want = FERRY_E_PROTOCOL, got;
				if (fits(s->fields[i], (wrong)w))
					continue;
				if (s->fields[i] == K_PROTO &&
				    (w == W_STR || w == W_STR32))
					want = FERRY_E_VERSION;
				pack_shape(&sb, s, s->nfields, i + 1, w);
				got = decode_sb(&sb);
				if (got != want)
					test_fail(__FILE__, __LINE__,
						  "type %llu field %zu wrong "
						  "%d: %s, want %s",
						  (unsigned long long)s->type,
						  i + 1, w, ferry_err_name(got),
						  ferry_err_name(want));
			}
		}
	}
	msgpack_sbuffer_destroy(&sb);
}

/* HELLO-specific values: max_frame below the minimum, any version (the
 * session judges it), and another protocol regardless of shape. */
static void test_hello_values(void)
{
	msgpack_sbuffer sb;
	frame f;

	msgpack_sbuffer_init(&sb);
	CHECK_OK(frame_encode_hello(&sb, identity, kx, nonce,
				    FRAME_MIN_MAX_FRAME - 1));
	CHECK_ERR(decode_sb(&sb), FERRY_E_PROTOCOL);
	msgpack_sbuffer_clear(&sb);
	CHECK_OK(frame_encode_hello(&sb, identity, kx, nonce,
				    FRAME_MIN_MAX_FRAME));
	CHECK_OK(decode_sb(&sb));

	/* A version this side does not speak still decodes. */
	{
		msgpack_packer pk;
		msgpack_sbuffer_clear(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		msgpack_pack_array(&pk, 7);
		msgpack_pack_uint64(&pk, FRAME_HELLO);
		msgpack_pack_str_with_body(&pk, "ferry.v1", 8);
		msgpack_pack_uint64(&pk, 99);
		msgpack_pack_bin_with_body(&pk, identity, 32);
		msgpack_pack_bin_with_body(&pk, kx, 32);
		msgpack_pack_bin_with_body(&pk, nonce, 32);
		msgpack_pack_uint64(&pk, 1 << 20);
		CHECK_OK(frame_decode(&f, sb.data, sb.size));
		CHECK_EQ_U64(f.u.hello.version, 99);
		frame_clear(&f);
	}

	/* Another protocol: VERSION whatever follows, even nothing. */
	{
		static const char *names[] = {"ferry.v2", "ferry.v",
					      "ferry.v10", "", "FERRY.V1"};
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			msgpack_packer pk;
			msgpack_sbuffer_clear(&sb);
			msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
			msgpack_pack_array(&pk, 2);
			msgpack_pack_uint64(&pk, FRAME_HELLO);
			msgpack_pack_str_with_body(&pk, names[i],
						   strlen(names[i]));
			CHECK_ERR(decode_sb(&sb), FERRY_E_VERSION);
		}
		/* "ferry.v1\0": the same prefix is not the same name. */
		msgpack_packer pk;
		msgpack_sbuffer_clear(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		msgpack_pack_array(&pk, 2);
		msgpack_pack_uint64(&pk, FRAME_HELLO);
		msgpack_pack_str_with_body(&pk, "ferry.v1", 9);
		CHECK_ERR(decode_sb(&sb), FERRY_E_VERSION);
	}
	msgpack_sbuffer_destroy(&sb);
}

/* ------------------------------------------------------------------------ */
/* Unknown types and non-frames                                             */
/* ------------------------------------------------------------------------ */

static void test_unknown_types(void)
{
	static const uint8_t t0[] = {0x92, 0x00, 0x01};
	static const uint8_t t10[] = {0x92, 0x0a, 0x01};
	static const uint8_t t255[] = {0x92, 0xcc, 0xff, 0x01};
	static const uint8_t tmax[] = {0x92, 0xcf, 0xff, 0xff, 0xff, 0xff,
				       0xff, 0xff, 0xff, 0xff, 0x01};
	static const uint8_t tneg[] = {0x92, 0xff, 0x01};
	static const uint8_t tstr[] = {0x92, 0xa1, '7', 0x01};
	static const uint8_t empty_array[] = {0x90};
	static const uint8_t scalar[] = {0x07};
	static const uint8_t map[] = {0x81, 0x01, 0x07};
	static const uint8_t never[] = {0xc1};
	static const struct {
		const uint8_t *p;
		size_t n;
	} cases[] = {
		{t0, sizeof(t0)},
		{t10, sizeof(t10)},
		{t255, sizeof(t255)},
		{tmax, sizeof(tmax)},
		{tneg, sizeof(tneg)},
		{tstr, sizeof(tstr)},
		{empty_array, sizeof(empty_array)},
		{scalar, sizeof(scalar)},
		{map, sizeof(map)},
		{never, sizeof(never)},
	};
	frame f;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CHECK_ERR(decode_exact(&f, cases[i].p, cases[i].n),
			  FERRY_E_PROTOCOL);
	CHECK_ERR(frame_decode(&f, NULL, 0), FERRY_E_PROTOCOL);
}

/* ------------------------------------------------------------------------ */
/* Counts that lie, nesting                                                 */
/* ------------------------------------------------------------------------ */

static void test_huge_counts(void)
{
	/* Each claims far more than it holds; none may be allocated for. */
	static const uint8_t array32[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x01};
	static const uint8_t array16[] = {0xdc, 0xff, 0xff, 0x07, 0x01};
	static const uint8_t map32[] = {0xdf, 0xff, 0xff, 0xff, 0xff, 0x01};
	static const uint8_t ack_refused[] = {0x96, 0x05, 0x01, 0x00,
					      0x00, 0x00, 0xdd, 0x7f,
					      0xff, 0xff, 0xff, 0x93};
	static const uint8_t bin32[] = {0x92, 0x03, 0xc6, 0xff,
					0xff, 0xff, 0xff, 0x00};
	static const uint8_t str32[] = {0x93, 0x09, 0x01, 0xdb,
					0xff, 0xff, 0xff, 0xff};
	static const uint8_t ext32[] = {0x92, 0x03, 0xc9, 0xff, 0xff,
					0xff, 0xff, 0x01, 0x00};
	/* A fixarray of 15 in a 2-byte buffer. */
	static const uint8_t fixarray[] = {0x9f, 0x01};
	static const struct {
		const uint8_t *p;
		size_t n;
	} cases[] = {
		{array32, sizeof(array32)}, {array16, sizeof(array16)},
		{map32, sizeof(map32)},	    {ack_refused, sizeof(ack_refused)},
		{bin32, sizeof(bin32)},	    {str32, sizeof(str32)},
		{ext32, sizeof(ext32)},	    {fixarray, sizeof(fixarray)},
	};
	frame f;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CHECK_ERR(decode_exact(&f, cases[i].p, cases[i].n),
			  FERRY_E_PROTOCOL);
}

static void test_nesting(void)
{
	uint8_t buf[64];
	frame f;
	/* 40 nested one-element arrays around a 1. */
	memset(buf, 0x91, 40);
	buf[40] = 0x01;
	CHECK_ERR(decode_exact(&f, buf, 41), FERRY_E_PROTOCOL);
	/* A PING whose time is an array nested deep: past the walk's depth
	 * bound, and wrong anyway. */
	buf[0] = 0x92;
	buf[1] = 0x07;
	memset(buf + 2, 0x91, 35);
	buf[37] = 0x01;
	CHECK_ERR(decode_exact(&f, buf, 38), FERRY_E_PROTOCOL);
}

/* ------------------------------------------------------------------------ */
/* String and count limits, UTF-8                                           */
/* ------------------------------------------------------------------------ */

static void pack_ack_with(msgpack_sbuffer *sb, size_t n, const char *scope,
			  size_t scope_len, const char *reason,
			  size_t reason_len)
{
	msgpack_packer pk;
	msgpack_sbuffer_clear(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 6);
	msgpack_pack_uint64(&pk, FRAME_ACK);
	msgpack_pack_uint64(&pk, 1);
	msgpack_pack_uint64(&pk, 0);
	msgpack_pack_uint64(&pk, 0);
	msgpack_pack_uint64(&pk, 0);
	msgpack_pack_array(&pk, n);
	for (size_t i = 0; i < n; i++) {
		msgpack_pack_array(&pk, 3);
		msgpack_pack_bin_with_body(&pk, origin, 32);
		msgpack_pack_str_with_body(&pk, scope, scope_len);
		msgpack_pack_str_with_body(&pk, reason, reason_len);
	}
}

static void pack_close_with(msgpack_sbuffer *sb, const char *reason, size_t len)
{
	msgpack_packer pk;
	msgpack_sbuffer_clear(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 3);
	msgpack_pack_uint64(&pk, FRAME_CLOSE);
	msgpack_pack_uint64(&pk, 4002);
	msgpack_pack_str_with_body(&pk, reason, len);
}

static const struct {
	const char *s;
	size_t n;
} bad_utf8[] = {
	{"\xff", 1},		 /* never valid */
	{"ab\x80", 3},		 /* lone continuation */
	{"\xc0\x80", 2},	 /* overlong NUL */
	{"\xe0\x80\xaf", 3},	 /* overlong '/' */
	{"\xed\xa0\x80", 3},	 /* surrogate */
	{"\xf4\x90\x80\x80", 4}, /* above U+10FFFF */
	{"\xe2\x82", 2},	 /* cut short */
	{"a\0b", 3},		 /* NUL: would cut the decoded copy */
};

static void test_limits(void)
{
	msgpack_sbuffer sb;
	char big[FRAME_MAX_REASON_BYTES + 2];
	frame f;

	msgpack_sbuffer_init(&sb);
	memset(big, 'r', sizeof(big));

	/* Reasons: up to 1 KiB. */
	pack_close_with(&sb, big, FRAME_MAX_REASON_BYTES);
	CHECK_OK(frame_decode(&f, sb.data, sb.size));
	CHECK_EQ_U64(strlen(f.u.close.reason), FRAME_MAX_REASON_BYTES);
	frame_clear(&f);
	pack_close_with(&sb, big, FRAME_MAX_REASON_BYTES + 1);
	CHECK_ERR(decode_sb(&sb), FERRY_E_LIMIT);
	pack_ack_with(&sb, 1, "s", 1, big, FRAME_MAX_REASON_BYTES);
	CHECK_OK(decode_sb(&sb));
	pack_ack_with(&sb, 1, "s", 1, big, FRAME_MAX_REASON_BYTES + 1);
	CHECK_ERR(decode_sb(&sb), FERRY_E_LIMIT);

	/* Scopes: 1..64 bytes. */
	pack_ack_with(&sb, 1, big, FERRY_MAX_SCOPE_BYTES, "", 0);
	CHECK_OK(decode_sb(&sb));
	pack_ack_with(&sb, 1, big, FERRY_MAX_SCOPE_BYTES + 1, "", 0);
	CHECK_ERR(decode_sb(&sb), FERRY_E_LIMIT);
	pack_ack_with(&sb, 1, "", 0, "", 0);
	CHECK_ERR(decode_sb(&sb), FERRY_E_PROTOCOL);

	/* Not UTF-8, in each string. */
	for (size_t i = 0; i < sizeof(bad_utf8) / sizeof(bad_utf8[0]); i++) {
		pack_close_with(&sb, bad_utf8[i].s, bad_utf8[i].n);
		CHECK_ERR(decode_sb(&sb), FERRY_E_PROTOCOL);
		pack_ack_with(&sb, 1, bad_utf8[i].s, bad_utf8[i].n, "", 0);
		CHECK_ERR(decode_sb(&sb), FERRY_E_PROTOCOL);
		pack_ack_with(&sb, 1, "s", 1, bad_utf8[i].s, bad_utf8[i].n);
		CHECK_ERR(decode_sb(&sb), FERRY_E_PROTOCOL);
	}
	/* Valid multi-byte text passes. */
	pack_close_with(&sb, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\xa2", 14);
	CHECK_OK(decode_sb(&sb));

	/* Refusals: up to 65,536. */
	pack_ack_with(&sb, FRAME_MAX_REFUSALS, "s", 1, "", 0);
	CHECK_OK(frame_decode(&f, sb.data, sb.size));
	CHECK_EQ_U64(f.u.ack.nrefused, FRAME_MAX_REFUSALS);
	CHECK(!strcmp(f.u.ack.refused[FRAME_MAX_REFUSALS - 1].scope, "s"));
	frame_clear(&f);
	pack_ack_with(&sb, FRAME_MAX_REFUSALS + 1, "s", 1, "", 0);
	CHECK_ERR(decode_sb(&sb), FERRY_E_LIMIT);

	/* ACK status: only applied or resync. */
	{
		msgpack_sbuffer_clear(&sb);
		CHECK_OK(frame_encode_ack(&sb, 1, 2, 0, 0, NULL, 0));
		CHECK_ERR(decode_sb(&sb), FERRY_E_PROTOCOL);
	}

	/* The refusal entries themselves: wrong counts and types. */
	{
		static const uint8_t two[] = {0x96, 0x05, 0x01, 0x00, 0x00,
					      0x00, 0x91, 0x92, 0xc0, 0xc0};
		static const uint8_t not_array[] = {0x96, 0x05, 0x01, 0x00,
						    0x00, 0x00, 0x91, 0xc0};
		CHECK_ERR(decode_exact(&f, two, sizeof(two)), FERRY_E_PROTOCOL);
		CHECK_ERR(decode_exact(&f, not_array, sizeof(not_array)),
			  FERRY_E_PROTOCOL);
		msgpack_packer pk;
		for (int variant = 0; variant < 4; variant++) {
			msgpack_sbuffer_clear(&sb);
			msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
			msgpack_pack_array(&pk, 6);
			msgpack_pack_uint64(&pk, FRAME_ACK);
			for (int j = 0; j < 4; j++)
				msgpack_pack_uint64(&pk, 0);
			msgpack_pack_array(&pk, 1);
			msgpack_pack_array(&pk, variant == 3 ? 4 : 3);
			if (variant == 0)
				msgpack_pack_bin_with_body(&pk, origin, 31);
			else
				msgpack_pack_bin_with_body(&pk, origin, 32);
			if (variant == 1)
				msgpack_pack_bin_with_body(&pk, "s", 1);
			else
				msgpack_pack_str_with_body(&pk, "s", 1);
			if (variant == 2)
				msgpack_pack_uint64(&pk, 1);
			else
				msgpack_pack_str_with_body(&pk, "r", 1);
			if (variant == 3)
				msgpack_pack_nil(&pk);
			CHECK_ERR(decode_sb(&sb), FERRY_E_PROTOCOL);
		}
	}
	msgpack_sbuffer_destroy(&sb);
}

static void test_batch_limit(void)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	uint8_t *data = calloc(1, FERRY_MAX_BATCH_BYTES + 1);
	frame f;

	CHECK(data != NULL);
	msgpack_sbuffer_init(&sb);
	CHECK_OK(frame_encode_batch(&sb, 9, data, FERRY_MAX_BATCH_BYTES));
	CHECK_OK(frame_decode(&f, sb.data, sb.size));
	CHECK_EQ_U64(f.u.batch.len, FERRY_MAX_BATCH_BYTES);
	frame_clear(&f);
	/* The encoder refuses what the receiver would; pack it by hand. */
	msgpack_sbuffer_clear(&sb);
	CHECK_ERR(frame_encode_batch(&sb, 9, data, FERRY_MAX_BATCH_BYTES + 1),
		  FERRY_E_INVALID);
	CHECK_EQ_U64(sb.size, 0);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 3);
	msgpack_pack_uint64(&pk, FRAME_BATCH);
	msgpack_pack_uint64(&pk, 9);
	msgpack_pack_bin_with_body(&pk, data, FERRY_MAX_BATCH_BYTES + 1);
	CHECK_ERR(frame_decode(&f, sb.data, sb.size), FERRY_E_LIMIT);
	msgpack_sbuffer_destroy(&sb);
	free(data);
}

/* Encoders refuse what no receiver would take, and leave `out` as it
 * was. */
static void test_encoder_errors(void)
{
	msgpack_sbuffer sb;
	char big[FRAME_MAX_REASON_BYTES + 2];
	frame_refusal r[1];

	memset(big, 'x', sizeof(big));
	big[FRAME_MAX_REASON_BYTES + 1] = '\0';
	msgpack_sbuffer_init(&sb);
	CHECK_OK(frame_encode_pending(&sb, 1)); /* something already there */
	size_t before = sb.size;

	CHECK_ERR(frame_encode_close(&sb, 4002, big), FERRY_E_INVALID);
	CHECK_ERR(frame_encode_close(&sb, 4002, "\xff"), FERRY_E_INVALID);
	CHECK_ERR(frame_encode_ping(&sb, FRAME_HELLO, 1), FERRY_E_INVALID);
	r[0] = (frame_refusal){origin, "s", big};
	CHECK_ERR(frame_encode_ack(&sb, 1, 0, 0, 0, r, 1), FERRY_E_INVALID);
	r[0] = (frame_refusal){origin, "", "why"};
	CHECK_ERR(frame_encode_ack(&sb, 1, 0, 0, 0, r, 1), FERRY_E_INVALID);
	big[FERRY_MAX_SCOPE_BYTES + 1] = '\0';
	r[0] = (frame_refusal){origin, big, "why"};
	CHECK_ERR(frame_encode_ack(&sb, 1, 0, 0, 0, r, 1), FERRY_E_INVALID);
	r[0] = (frame_refusal){origin, "\xc0\x80", "why"};
	CHECK_ERR(frame_encode_ack(&sb, 1, 0, 0, 0, r, 1), FERRY_E_INVALID);
	r[0] = (frame_refusal){NULL, "s", "why"};
	CHECK_ERR(frame_encode_ack(&sb, 1, 0, 0, 0, r, 1), FERRY_E_INVALID);
	r[0] = (frame_refusal){origin, "s", NULL};
	CHECK_ERR(frame_encode_ack(&sb, 1, 0, 0, 0, r, 1), FERRY_E_INVALID);
	r[0] = (frame_refusal){origin, "s", "why"};
	CHECK_ERR(frame_encode_ack(&sb, 1, 0, 0, 0, r, FRAME_MAX_REFUSALS + 1),
		  FERRY_E_INVALID);
	CHECK_EQ_U64(sb.size, before);

	/* Appending: two frames in one buffer decode one by one. */
	CHECK_OK(frame_encode_ack(&sb, 1, 0, 0, 0, r, 1));
	{
		frame f;
		CHECK_OK(frame_decode(&f, sb.data, before));
		CHECK(f.type == FRAME_PENDING);
		frame_clear(&f);
		CHECK_OK(frame_decode(&f, sb.data + before, sb.size - before));
		CHECK(f.type == FRAME_ACK);
		CHECK(!strcmp(f.u.ack.refused[0].reason, "why"));
		frame_clear(&f);
	}
	msgpack_sbuffer_destroy(&sb);
}

/* ------------------------------------------------------------------------ */
/* Random damage                                                            */
/* ------------------------------------------------------------------------ */

/* Read every field a decoded frame exposes, so ASan checks the pointers. */
static uint64_t touch(const frame *f)
{
	uint64_t sum = 0;
	switch (f->type) {
	case FRAME_HELLO:
		for (size_t i = 0; i < 32; i++)
			sum += f->u.hello.identity[i] + f->u.hello.kx[i] +
			       f->u.hello.nonce[i];
		break;
	case FRAME_AUTH:
		for (size_t i = 0; i < 64; i++)
			sum += f->u.auth.sig[i];
		break;
	case FRAME_VECTOR:
		for (size_t i = 0; i < f->u.vector.len; i++)
			sum += f->u.vector.data[i];
		break;
	case FRAME_BATCH:
		for (size_t i = 0; i < f->u.batch.len; i++)
			sum += f->u.batch.data[i];
		break;
	case FRAME_ACK:
		for (size_t i = 0; i < f->u.ack.nrefused; i++)
			sum += f->u.ack.refused[i].origin[31] +
			       strlen(f->u.ack.refused[i].scope) +
			       strlen(f->u.ack.refused[i].reason);
		break;
	case FRAME_CLOSE:
		sum += strlen(f->u.close.reason);
		break;
	default:
		break;
	}
	return sum;
}

static void test_random_flips(void)
{
	size_t ok = 0;
	uint64_t sink = 0;
	for (int iter = 0; iter < 10000; iter++) {
		const sample *s = &samples[test_rand_below(nsamples)];
		uint8_t *buf = dup_exact(s->buf, s->len);
		int nflips = 1 + (int)test_rand_below(4);
		frame f;

		for (int k = 0; k < nflips; k++) {
			size_t at = test_rand_below(s->len);
			if (test_rand_below(2))
				buf[at] ^= (uint8_t)(1u << test_rand_below(8));
			else
				buf[at] = (uint8_t)test_rand();
		}
		if (frame_decode(&f, buf, s->len) == FERRY_OK) {
			sink += touch(&f);
			frame_clear(&f);
			ok++;
		}
		free(buf);
	}
	printf("random flips: %zu of 10000 still decode (sink %llu)\n", ok,
	       (unsigned long long)(sink & 1));
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	fill(identity, sizeof(identity), 1);
	fill(kx, sizeof(kx), 2);
	fill(nonce, sizeof(nonce), 3);
	fill(sig, sizeof(sig), 4);
	fill(origin, sizeof(origin), 5);
	make_real_payloads();
	make_samples();
	write_corpus();

	test_round_trips();
	test_int_widths();
	test_truncation_and_trailing();
	test_wrong_fields();
	test_hello_values();
	test_unknown_types();
	test_huge_counts();
	test_nesting();
	test_limits();
	test_batch_limit();
	test_encoder_errors();
	test_random_flips();

	for (size_t i = 0; i < nsamples; i++)
		free(samples[i].buf);
	free(real_batch);
	free(real_vector);
	printf("frame_test: ok\n");
	return 0;
}
