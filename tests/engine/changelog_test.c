/*
 * changelog_test.c — entry encoding and hashing, signed heads, and the
 * batch wire format (engine/changelog.h), including what the decoders must
 * refuse: the batch decoder sees bytes from strangers.
 */
#include <sodium.h>

#include "changelog.h"
#include "engine_helpers.h"

static const uint8_t zero_hash[FERRY_HASH_BYTES];

#define HLC_TEST_STAMP ((UINT64_C(1700000000000) << 16) | 3)

/* ---- helpers for hand-made msgpack ---- */

typedef struct mp {
	msgpack_sbuffer sb;
	msgpack_packer pk;
} mp;

static void mp_init(mp *m)
{
	msgpack_sbuffer_init(&m->sb);
	msgpack_packer_init(&m->pk, &m->sb, msgpack_sbuffer_write);
}

static void mp_str(mp *m, const char *s)
{
	msgpack_pack_str_with_body(&m->pk, s, strlen(s));
}

static void mp_bin_fill(mp *m, size_t len, uint8_t byte)
{
	uint8_t buf[128];
	CHECK(len <= sizeof(buf));
	memset(buf, byte, len);
	msgpack_pack_bin_with_body(&m->pk, buf, len);
}

static void mp_raw(mp *m, const void *buf, size_t len)
{
	msgpack_sbuffer_write(&m->sb, buf, len);
}

static ferry_err entry_decode_bytes(const void *buf, size_t len)
{
	changelog_entry e;
	changelog_entry_init(&e);
	ferry_err err = changelog_entry_decode(&e, buf, len);
	changelog_entry_clear(&e);
	return err;
}

/* An entry whose header is valid; the fields map is written by the caller
 * after this returns (op PUT), or nil for DELETE. */
static void mp_entry_head(mp *m, uint64_t seq, const char *collection,
			  const char *key, uint64_t op)
{
	msgpack_pack_array(&m->pk, 7);
	msgpack_pack_uint64(&m->pk, seq);
	mp_bin_fill(m, FERRY_HASH_BYTES, 0);
	msgpack_pack_uint64(&m->pk, HLC_TEST_STAMP);
	mp_str(m, collection);
	mp_str(m, key);
	msgpack_pack_uint64(&m->pk, op);
}

/* ---- entries ---- */

static void test_entry_round_trip(void)
{
	eh_value va = eh_str("Rex"), vb = eh_int(42), vc = eh_int(-7);
	ferry_field fields[3] = {eh_field("age", &vb), eh_field("name", &va),
				 eh_field("z", &vc)};
	uint8_t prev[FERRY_HASH_BYTES];
	msgpack_sbuffer out;
	changelog_entry e;

	for (size_t i = 0; i < sizeof(prev); i++)
		prev[i] = (uint8_t)(i * 7 + 1);
	msgpack_sbuffer_init(&out);
	CHECK_OK(changelog_entry_encode(&out, 5, prev, HLC_TEST_STAMP,
					"patients", "p-1", FERRY_OP_PUT, fields,
					3));
	changelog_entry_init(&e);
	CHECK_OK(changelog_entry_decode(&e, out.data, out.size));
	CHECK_EQ_U64(e.seq, 5);
	CHECK(!memcmp(e.prev, prev, sizeof(prev)));
	CHECK_EQ_U64(e.hlc, HLC_TEST_STAMP);
	CHECK(!strcmp(e.collection, "patients"));
	CHECK(!strcmp(e.key, "p-1"));
	CHECK(e.op == FERRY_OP_PUT);
	CHECK_EQ_U64(e.nfields, 3);
	for (size_t i = 0; i < 3; i++) {
		CHECK(!strcmp(e.fields[i].name, fields[i].name));
		CHECK(e.fields[i].value_len == fields[i].value_len);
		CHECK(!memcmp(e.fields[i].value, fields[i].value,
			      fields[i].value_len));
	}
	/* Decoding again into the same entry clears the old contents. */
	CHECK_OK(changelog_entry_decode(&e, out.data, out.size));
	CHECK_EQ_U64(e.nfields, 3);

	/* Re-encoding the decoded entry gives the same bytes (and hash). */
	msgpack_sbuffer again;
	msgpack_sbuffer_init(&again);
	CHECK_OK(changelog_entry_encode(&again, e.seq, e.prev, e.hlc,
					e.collection, e.key, e.op, e.fields,
					e.nfields));
	CHECK(again.size == out.size &&
	      !memcmp(again.data, out.data, out.size));
	msgpack_sbuffer_destroy(&again);
	changelog_entry_clear(&e);

	/* A delete. */
	msgpack_sbuffer del;
	msgpack_sbuffer_init(&del);
	CHECK_OK(changelog_entry_encode(&del, 1, zero_hash, 9, "c", "k",
					FERRY_OP_DELETE, NULL, 0));
	changelog_entry_init(&e);
	CHECK_OK(changelog_entry_decode(&e, del.data, del.size));
	CHECK(e.op == FERRY_OP_DELETE);
	CHECK_EQ_U64(e.nfields, 0);
	CHECK_EQ_U64(e.seq, 1);
	changelog_entry_clear(&e);
	msgpack_sbuffer_destroy(&del);

	/* Hash: deterministic, and changes when any single byte does. */
	uint8_t h0[FERRY_HASH_BYTES], h1[FERRY_HASH_BYTES];
	changelog_hash(h0, out.data, out.size);
	changelog_hash(h1, out.data, out.size);
	CHECK(!memcmp(h0, h1, sizeof(h0)));
	for (size_t i = 0; i < out.size; i++) {
		for (int bit = 0; bit < 8; bit += 3) {
			out.data[i] ^= (char)(1 << bit);
			changelog_hash(h1, out.data, out.size);
			CHECK(memcmp(h0, h1, sizeof(h0)) != 0);
			out.data[i] ^= (char)(1 << bit);
		}
	}
	changelog_hash(h1, out.data, out.size - 1);
	CHECK(memcmp(h0, h1, sizeof(h0)) != 0);

	/* Every strict prefix and a trailing byte are refused. */
	for (size_t len = 0; len < out.size; len++)
		CHECK(entry_decode_bytes(out.data, len) != FERRY_OK);
	msgpack_sbuffer_write(&out, "", 1);
	CHECK(entry_decode_bytes(out.data, out.size) != FERRY_OK);
	msgpack_sbuffer_destroy(&out);
}

static void test_entry_canonical_values(void)
{
	/* 5 as a uint32 (0xce) is valid msgpack but not the shortest form:
	 * the decoder re-encodes it so every node stores the same bytes. */
	static const uint8_t wide_five[] = {0xce, 0, 0, 0, 5};
	mp m;
	mp_init(&m);
	mp_entry_head(&m, 1, "c", "k", FERRY_OP_PUT);
	msgpack_pack_map(&m.pk, 1);
	mp_str(&m, "f");
	mp_raw(&m, wide_five, sizeof(wide_five));
	changelog_entry e;
	changelog_entry_init(&e);
	CHECK_OK(changelog_entry_decode(&e, m.sb.data, m.sb.size));
	CHECK_EQ_U64(e.nfields, 1);
	CHECK_EQ_U64(e.fields[0].value_len, 1);
	CHECK_EQ_U64(((const uint8_t *)e.fields[0].value)[0], 5);
	changelog_entry_clear(&e);
	msgpack_sbuffer_destroy(&m.sb);
}

/* A put entry with the given field map written by `fill`. */
typedef void (*fill_fn)(mp *m);

static ferry_err decode_put_with(fill_fn fill)
{
	mp m;
	mp_init(&m);
	mp_entry_head(&m, 1, "c", "k", FERRY_OP_PUT);
	fill(&m);
	ferry_err err = entry_decode_bytes(m.sb.data, m.sb.size);
	msgpack_sbuffer_destroy(&m.sb);
	return err;
}

static void fill_duplicate(mp *m)
{
	msgpack_pack_map(&m->pk, 2);
	mp_str(m, "f");
	msgpack_pack_int(&m->pk, 1);
	mp_str(m, "f");
	msgpack_pack_int(&m->pk, 2);
}

static void fill_unsorted(mp *m)
{
	msgpack_pack_map(&m->pk, 2);
	mp_str(m, "b");
	msgpack_pack_int(&m->pk, 1);
	mp_str(m, "a");
	msgpack_pack_int(&m->pk, 2);
}

static void fill_long_name(mp *m)
{
	char name[FERRY_MAX_FIELD_NAME_BYTES + 2];
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	msgpack_pack_map(&m->pk, 1);
	mp_str(m, name);
	msgpack_pack_int(&m->pk, 1);
}

static void fill_max_name(mp *m)
{
	char name[FERRY_MAX_FIELD_NAME_BYTES + 1];
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	msgpack_pack_map(&m->pk, 1);
	mp_str(m, name);
	msgpack_pack_int(&m->pk, 1);
}

static void fill_int_name(mp *m)
{
	msgpack_pack_map(&m->pk, 1);
	msgpack_pack_int(&m->pk, 7);
	msgpack_pack_int(&m->pk, 1);
}

static void fill_bin_name(mp *m)
{
	msgpack_pack_map(&m->pk, 1);
	msgpack_pack_bin_with_body(&m->pk, "f", 1);
	msgpack_pack_int(&m->pk, 1);
}

static void fill_empty_name(mp *m)
{
	msgpack_pack_map(&m->pk, 1);
	mp_str(m, "");
	msgpack_pack_int(&m->pk, 1);
}

static void fill_nul_name(mp *m)
{
	msgpack_pack_map(&m->pk, 1);
	msgpack_pack_str_with_body(&m->pk, "a\0b", 3);
	msgpack_pack_int(&m->pk, 1);
}

static void fill_utf8_name(mp *m)
{
	msgpack_pack_map(&m->pk, 1);
	msgpack_pack_str_with_body(&m->pk, "a\xff", 2);
	msgpack_pack_int(&m->pk, 1);
}

static void fill_empty_map(mp *m)
{
	msgpack_pack_map(&m->pk, 0);
}

static void fill_nil(mp *m)
{
	msgpack_pack_nil(&m->pk);
}

static void fill_array(mp *m)
{
	msgpack_pack_array(&m->pk, 1);
	msgpack_pack_int(&m->pk, 1);
}

static void fill_big_value(mp *m)
{
	size_t n = FERRY_MAX_VALUE_BYTES + 1;
	char *v = calloc(1, n);
	CHECK(v);
	msgpack_pack_map(&m->pk, 1);
	mp_str(m, "f");
	msgpack_pack_bin_with_body(&m->pk, v, n);
	free(v);
}

static void fill_too_many_fields(mp *m)
{
	msgpack_pack_map(&m->pk, FERRY_MAX_FIELDS_PER_WRITE + 1);
	for (unsigned i = 0; i < FERRY_MAX_FIELDS_PER_WRITE + 1; i++) {
		char name[16];
		snprintf(name, sizeof(name), "f%05u", i);
		mp_str(m, name);
		msgpack_pack_int(&m->pk, 1);
	}
}

static void fill_max_fields(mp *m)
{
	msgpack_pack_map(&m->pk, FERRY_MAX_FIELDS_PER_WRITE);
	for (unsigned i = 0; i < FERRY_MAX_FIELDS_PER_WRITE; i++) {
		char name[16];
		snprintf(name, sizeof(name), "f%05u", i);
		mp_str(m, name);
		msgpack_pack_int(&m->pk, 1);
	}
}

static int is_malformed_or_limit(ferry_err err)
{
	return err == FERRY_E_MALFORMED || err == FERRY_E_LIMIT;
}

static void test_entry_rejects(void)
{
	CHECK_ERR(decode_put_with(fill_duplicate), FERRY_E_MALFORMED);
	CHECK_ERR(decode_put_with(fill_unsorted), FERRY_E_MALFORMED);
	CHECK(is_malformed_or_limit(decode_put_with(fill_long_name)));
	CHECK_OK(decode_put_with(fill_max_name));
	CHECK_ERR(decode_put_with(fill_int_name), FERRY_E_MALFORMED);
	CHECK_ERR(decode_put_with(fill_bin_name), FERRY_E_MALFORMED);
	CHECK_ERR(decode_put_with(fill_empty_name), FERRY_E_MALFORMED);
	CHECK_ERR(decode_put_with(fill_nul_name), FERRY_E_MALFORMED);
	CHECK_ERR(decode_put_with(fill_empty_map), FERRY_E_MALFORMED);
	CHECK_ERR(decode_put_with(fill_nil), FERRY_E_MALFORMED);
	CHECK_ERR(decode_put_with(fill_array), FERRY_E_MALFORMED);
	CHECK(is_malformed_or_limit(decode_put_with(fill_big_value)));
	CHECK(is_malformed_or_limit(decode_put_with(fill_too_many_fields)));
	CHECK_OK(decode_put_with(fill_max_fields));

	mp m;
	/* seq 0 does not exist: chains start at 1. */
	mp_init(&m);
	mp_entry_head(&m, 0, "c", "k", FERRY_OP_DELETE);
	msgpack_pack_nil(&m.pk);
	CHECK_ERR(entry_decode_bytes(m.sb.data, m.sb.size), FERRY_E_MALFORMED);
	msgpack_sbuffer_destroy(&m.sb);
	/* Unknown op. */
	mp_init(&m);
	mp_entry_head(&m, 1, "c", "k", 3);
	msgpack_pack_nil(&m.pk);
	CHECK_ERR(entry_decode_bytes(m.sb.data, m.sb.size), FERRY_E_MALFORMED);
	msgpack_sbuffer_destroy(&m.sb);
	/* A delete carrying fields. */
	mp_init(&m);
	mp_entry_head(&m, 1, "c", "k", FERRY_OP_DELETE);
	fill_duplicate(&m);
	CHECK_ERR(entry_decode_bytes(m.sb.data, m.sb.size), FERRY_E_MALFORMED);
	msgpack_sbuffer_destroy(&m.sb);
	/* Collection and key over their limits; empty key. */
	char longname[FERRY_MAX_KEY_BYTES + 2];
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	mp_init(&m);
	mp_entry_head(&m, 1, "c", longname, FERRY_OP_DELETE);
	msgpack_pack_nil(&m.pk);
	CHECK(is_malformed_or_limit(entry_decode_bytes(m.sb.data, m.sb.size)));
	msgpack_sbuffer_destroy(&m.sb);
	longname[FERRY_MAX_COLLECTION_BYTES + 1] = '\0';
	mp_init(&m);
	mp_entry_head(&m, 1, longname, "k", FERRY_OP_DELETE);
	msgpack_pack_nil(&m.pk);
	CHECK(is_malformed_or_limit(entry_decode_bytes(m.sb.data, m.sb.size)));
	msgpack_sbuffer_destroy(&m.sb);
	/* Names that are not UTF-8 (they end up in JSON at the edge). */
	mp_init(&m);
	mp_entry_head(&m, 1, "c\xc3", "k", FERRY_OP_DELETE);
	msgpack_pack_nil(&m.pk);
	CHECK_ERR(entry_decode_bytes(m.sb.data, m.sb.size), FERRY_E_MALFORMED);
	msgpack_sbuffer_destroy(&m.sb);
	mp_init(&m);
	mp_entry_head(&m, 1, "c", "k\xed\xa0\x80", FERRY_OP_DELETE);
	msgpack_pack_nil(&m.pk);
	CHECK_ERR(entry_decode_bytes(m.sb.data, m.sb.size), FERRY_E_MALFORMED);
	msgpack_sbuffer_destroy(&m.sb);
	mp_init(&m);
	mp_entry_head(&m, 1, "c", "", FERRY_OP_DELETE);
	msgpack_pack_nil(&m.pk);
	CHECK_ERR(entry_decode_bytes(m.sb.data, m.sb.size), FERRY_E_MALFORMED);
	msgpack_sbuffer_destroy(&m.sb);
	/* prev of the wrong length, negative seq, wrong arity. */
	mp_init(&m);
	msgpack_pack_array(&m.pk, 7);
	msgpack_pack_uint64(&m.pk, 1);
	mp_bin_fill(&m, FERRY_HASH_BYTES - 1, 0);
	msgpack_pack_uint64(&m.pk, 1);
	mp_str(&m, "c");
	mp_str(&m, "k");
	msgpack_pack_uint64(&m.pk, FERRY_OP_DELETE);
	msgpack_pack_nil(&m.pk);
	CHECK_ERR(entry_decode_bytes(m.sb.data, m.sb.size), FERRY_E_MALFORMED);
	msgpack_sbuffer_destroy(&m.sb);
	mp_init(&m);
	msgpack_pack_array(&m.pk, 7);
	msgpack_pack_int64(&m.pk, -1);
	mp_bin_fill(&m, FERRY_HASH_BYTES, 0);
	msgpack_pack_uint64(&m.pk, 1);
	mp_str(&m, "c");
	mp_str(&m, "k");
	msgpack_pack_uint64(&m.pk, FERRY_OP_DELETE);
	msgpack_pack_nil(&m.pk);
	CHECK_ERR(entry_decode_bytes(m.sb.data, m.sb.size), FERRY_E_MALFORMED);
	msgpack_sbuffer_destroy(&m.sb);
	mp_init(&m);
	msgpack_pack_array(&m.pk, 6);
	msgpack_pack_uint64(&m.pk, 1);
	mp_bin_fill(&m, FERRY_HASH_BYTES, 0);
	msgpack_pack_uint64(&m.pk, 1);
	mp_str(&m, "c");
	mp_str(&m, "k");
	msgpack_pack_uint64(&m.pk, FERRY_OP_DELETE);
	CHECK_ERR(entry_decode_bytes(m.sb.data, m.sb.size), FERRY_E_MALFORMED);
	msgpack_sbuffer_destroy(&m.sb);

	/* Claimed counts far beyond the bytes present. */
	static const uint8_t huge_array[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
	CHECK_ERR(entry_decode_bytes(huge_array, sizeof(huge_array)),
		  FERRY_E_MALFORMED);
	mp_init(&m);
	mp_entry_head(&m, 1, "c", "k", FERRY_OP_PUT);
	static const uint8_t huge_map[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
	mp_raw(&m, huge_map, sizeof(huge_map));
	CHECK_ERR(entry_decode_bytes(m.sb.data, m.sb.size), FERRY_E_MALFORMED);
	msgpack_sbuffer_destroy(&m.sb);
	/* Over the entry size bound: refused before parsing. */
	size_t big = CHANGELOG_MAX_ENTRY_BYTES + 1;
	uint8_t *buf = calloc(1, big);
	CHECK(buf);
	CHECK(is_malformed_or_limit(entry_decode_bytes(buf, big)));
	free(buf);

	/* Random bytes never crash. */
	for (int i = 0; i < 3000; i++) {
		uint8_t rnd[48];
		size_t len = test_rand_below(sizeof(rnd) + 1);
		for (size_t j = 0; j < len; j++)
			rnd[j] = (uint8_t)test_rand();
		if (len)
			rnd[0] = 0x97; /* mostly an array of 7 */
		(void)entry_decode_bytes(rnd, len);
	}
}

/* ---- signed heads ---- */

static void test_head_sign(void)
{
	uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
	uint8_t pk2[crypto_sign_PUBLICKEYBYTES],
		sk2[crypto_sign_SECRETKEYBYTES];
	uint8_t head[FERRY_HASH_BYTES], head2[FERRY_HASH_BYTES];
	uint8_t sig[FERRY_SIGNATURE_BYTES], sig2[FERRY_SIGNATURE_BYTES];

	CHECK(crypto_sign_keypair(pk, sk) == 0);
	CHECK(crypto_sign_keypair(pk2, sk2) == 0);
	changelog_hash(head, "entry", 5);
	memcpy(head2, head, sizeof(head));
	head2[31] ^= 1;

	changelog_head_sign(sig, sk, pk, "clinic-7", 12, head);
	CHECK(changelog_head_verify(sig, pk, "clinic-7", 12, head));
	/* Ed25519 is deterministic. */
	changelog_head_sign(sig2, sk, pk, "clinic-7", 12, head);
	CHECK(!memcmp(sig, sig2, sizeof(sig)));

	CHECK(!changelog_head_verify(sig, pk2, "clinic-7", 12, head));
	CHECK(!changelog_head_verify(sig, pk, "clinic-8", 12, head));
	CHECK(!changelog_head_verify(sig, pk, "clinic-7/x", 12, head));
	CHECK(!changelog_head_verify(sig, pk, "clinic-", 12, head));
	CHECK(!changelog_head_verify(sig, pk, "clinic-7", 13, head));
	CHECK(!changelog_head_verify(sig, pk, "clinic-7", 11, head));
	CHECK(!changelog_head_verify(sig, pk, "clinic-7",
				     12 + (UINT64_C(1) << 32), head));
	CHECK(!changelog_head_verify(sig, pk, "clinic-7", 12, head2));
	/* Another key signing the same head: valid for that key only. */
	changelog_head_sign(sig2, sk2, pk2, "clinic-7", 12, head);
	CHECK(changelog_head_verify(sig2, pk2, "clinic-7", 12, head));
	CHECK(!changelog_head_verify(sig2, pk, "clinic-7", 12, head));
	/* Any flipped signature bit fails. */
	for (size_t i = 0; i < sizeof(sig); i++) {
		sig[i] ^= 0x10;
		CHECK(!changelog_head_verify(sig, pk, "clinic-7", 12, head));
		sig[i] ^= 0x10;
	}
	memset(sig2, 0, sizeof(sig2));
	CHECK(!changelog_head_verify(sig2, pk, "clinic-7", 12, head));
}

/* ---- batches ---- */

typedef struct chain {
	uint8_t pk[crypto_sign_PUBLICKEYBYTES];
	uint8_t sk[crypto_sign_SECRETKEYBYTES];
	msgpack_sbuffer entries[4];
	const void *ptrs[4];
	size_t lens[4];
	size_t n;
	uint8_t sig[FERRY_SIGNATURE_BYTES];
} chain;

/* A valid chain of `n` entries in `scope`, signed at its head. */
static void chain_make(chain *c, const char *scope, size_t n)
{
	uint8_t prev[FERRY_HASH_BYTES];
	memset(prev, 0, sizeof(prev));
	CHECK(crypto_sign_keypair(c->pk, c->sk) == 0);
	c->n = n;
	for (size_t i = 0; i < n; i++) {
		char key[16];
		eh_value v = eh_int((int64_t)i);
		ferry_field f = eh_field("f", &v);
		snprintf(key, sizeof(key), "k%zu", i);
		msgpack_sbuffer_init(&c->entries[i]);
		CHECK_OK(changelog_entry_encode(&c->entries[i], i + 1, prev,
						HLC_TEST_STAMP + i, "c", key,
						FERRY_OP_PUT, &f, 1));
		changelog_hash(prev, c->entries[i].data, c->entries[i].size);
		c->ptrs[i] = c->entries[i].data;
		c->lens[i] = c->entries[i].size;
	}
	changelog_head_sign(c->sig, c->sk, c->pk, scope, n, prev);
}

static void chain_free(chain *c)
{
	for (size_t i = 0; i < c->n; i++)
		msgpack_sbuffer_destroy(&c->entries[i]);
}

static ferry_err batch_decode_bytes(const void *buf, size_t len)
{
	changelog_batch b;
	ferry_err err = changelog_batch_decode(&b, buf, len);
	if (err == FERRY_OK)
		changelog_batch_clear(&b);
	return err;
}

static void test_batch_round_trip(void)
{
	chain c1, c2;
	changelog_batch_writer w;
	void *out = NULL;
	size_t out_len = 0;
	changelog_batch b;

	chain_make(&c1, "clinic-1", 3);
	chain_make(&c2, "shared", 1);
	changelog_writer_init(&w);
	size_t empty_size = changelog_writer_size(&w);
	CHECK_OK(changelog_writer_add(&w, c1.pk, "clinic-1", c1.ptrs, c1.lens,
				      c1.n, c1.sig));
	size_t one_size = changelog_writer_size(&w);
	CHECK(one_size > empty_size);
	CHECK_OK(changelog_writer_add(&w, c2.pk, "shared", c2.ptrs, c2.lens,
				      c2.n, c2.sig));
	size_t predicted = changelog_writer_size(&w);
	CHECK(predicted > one_size);
	CHECK_OK(changelog_writer_finish(&w, &out, &out_len));
	CHECK(out != NULL);
	/* The size estimate is what batching decisions rely on. */
	CHECK(out_len <= predicted + 8 && out_len + 8 >= predicted);
	changelog_writer_clear(&w);

	CHECK_OK(changelog_batch_decode(&b, out, out_len));
	CHECK_EQ_U64(b.nsegments, 2);
	const changelog_segment *s = &b.segments[0];
	CHECK(!memcmp(s->origin, c1.pk, FERRY_PUBLIC_KEY_BYTES));
	CHECK(!strcmp(s->scope, "clinic-1"));
	CHECK(!memcmp(s->sig, c1.sig, FERRY_SIGNATURE_BYTES));
	CHECK_EQ_U64(s->nentries, 3);
	for (size_t i = 0; i < 3; i++) {
		CHECK_EQ_U64(s->entry_lens[i], c1.lens[i]);
		CHECK(!memcmp(s->entries[i], c1.ptrs[i], c1.lens[i]));
		/* Entries point into the batch buffer. */
		CHECK(s->entries[i] >= (const uint8_t *)out &&
		      s->entries[i] + s->entry_lens[i] <=
			      (const uint8_t *)out + out_len);
	}
	s = &b.segments[1];
	CHECK(!memcmp(s->origin, c2.pk, FERRY_PUBLIC_KEY_BYTES));
	CHECK(!strcmp(s->scope, "shared"));
	CHECK_EQ_U64(s->nentries, 1);
	changelog_batch_clear(&b);

	/* Every strict prefix and any trailing byte are refused. */
	for (size_t len = 0; len < out_len; len++)
		CHECK_ERR(batch_decode_bytes(out, len), FERRY_E_MALFORMED);
	uint8_t *longer = malloc(out_len + 1);
	CHECK(longer);
	memcpy(longer, out, out_len);
	longer[out_len] = 0xc0;
	CHECK_ERR(batch_decode_bytes(longer, out_len + 1), FERRY_E_MALFORMED);
	free(longer);
	/* Flipped bytes: decoded or refused, never a crash. */
	for (size_t i = 0; i < out_len; i++) {
		((uint8_t *)out)[i] ^= 0xff;
		(void)batch_decode_bytes(out, out_len);
		((uint8_t *)out)[i] ^= 0xff;
	}
	free(out);

	/* An empty batch is well-formed. */
	changelog_writer_init(&w);
	CHECK_OK(changelog_writer_finish(&w, &out, &out_len));
	changelog_writer_clear(&w);
	CHECK_OK(changelog_batch_decode(&b, out, out_len));
	CHECK_EQ_U64(b.nsegments, 0);
	changelog_batch_clear(&b);
	free(out);
	chain_free(&c1);
	chain_free(&c2);
}

/* A batch header with the given tag and version, then `nseg` segments
 * written by the caller. */
static void mp_batch_head(mp *m, const char *tag, int64_t version,
			  uint32_t nseg)
{
	msgpack_pack_array(&m->pk, 3);
	mp_str(m, tag);
	msgpack_pack_int64(&m->pk, version);
	msgpack_pack_array(&m->pk, nseg);
}

/* A well-formed segment (its signature need not verify: the batch decoder
 * checks structure only). */
static void mp_segment(mp *m, size_t origin_len, const char *scope,
		       size_t sig_len, int entries)
{
	msgpack_pack_array(&m->pk, 4);
	mp_bin_fill(m, origin_len, 0xab);
	mp_str(m, scope);
	msgpack_pack_array(&m->pk, (uint32_t)entries);
	for (int i = 0; i < entries; i++)
		msgpack_pack_bin_with_body(&m->pk, "\x90", 1);
	mp_bin_fill(m, sig_len, 0xcd);
}

static ferry_err batch_decode_mp(mp *m)
{
	ferry_err err = batch_decode_bytes(m->sb.data, m->sb.size);
	msgpack_sbuffer_destroy(&m->sb);
	return err;
}

static void test_batch_rejects(void)
{
	mp m;

	mp_init(&m);
	mp_batch_head(&m, CHANGELOG_BATCH_TAG, 1, 1);
	mp_segment(&m, 32, "s", 64, 1);
	CHECK_OK(batch_decode_mp(&m));

	mp_init(&m);
	mp_batch_head(&m, "ferry.batcH", 1, 1);
	mp_segment(&m, 32, "s", 64, 1);
	CHECK_ERR(batch_decode_mp(&m), FERRY_E_MALFORMED);
	mp_init(&m);
	mp_batch_head(&m, "ferry.batch2", 1, 0);
	CHECK_ERR(batch_decode_mp(&m), FERRY_E_MALFORMED);
	mp_init(&m);
	mp_batch_head(&m, CHANGELOG_BATCH_TAG, 2, 1);
	mp_segment(&m, 32, "s", 64, 1);
	CHECK_ERR(batch_decode_mp(&m), FERRY_E_VERSION);
	mp_init(&m);
	mp_batch_head(&m, CHANGELOG_BATCH_TAG, 0, 0);
	CHECK_ERR(batch_decode_mp(&m), FERRY_E_VERSION);
	mp_init(&m);
	mp_batch_head(&m, CHANGELOG_BATCH_TAG, -1, 0);
	CHECK(batch_decode_mp(&m) != FERRY_OK);

	/* Wrong shapes. */
	mp_init(&m);
	msgpack_pack_array(&m.pk, 2);
	mp_str(&m, CHANGELOG_BATCH_TAG);
	msgpack_pack_int(&m.pk, 1);
	CHECK_ERR(batch_decode_mp(&m), FERRY_E_MALFORMED);
	mp_init(&m);
	msgpack_pack_map(&m.pk, 0);
	CHECK_ERR(batch_decode_mp(&m), FERRY_E_MALFORMED);
	mp_init(&m);
	msgpack_pack_array(&m.pk, 3);
	mp_str(&m, CHANGELOG_BATCH_TAG);
	msgpack_pack_int(&m.pk, 1);
	msgpack_pack_nil(&m.pk);
	CHECK_ERR(batch_decode_mp(&m), FERRY_E_MALFORMED);
	mp_init(&m);
	mp_batch_head(&m, CHANGELOG_BATCH_TAG, 1, 1);
	msgpack_pack_nil(&m.pk);
	CHECK_ERR(batch_decode_mp(&m), FERRY_E_MALFORMED);

	/* Segment fields of the wrong size or type. */
	mp_init(&m);
	mp_batch_head(&m, CHANGELOG_BATCH_TAG, 1, 1);
	mp_segment(&m, 31, "s", 64, 1);
	CHECK_ERR(batch_decode_mp(&m), FERRY_E_MALFORMED);
	mp_init(&m);
	mp_batch_head(&m, CHANGELOG_BATCH_TAG, 1, 1);
	mp_segment(&m, 33, "s", 64, 1);
	CHECK_ERR(batch_decode_mp(&m), FERRY_E_MALFORMED);
	mp_init(&m);
	mp_batch_head(&m, CHANGELOG_BATCH_TAG, 1, 1);
	mp_segment(&m, 32, "s", 63, 1);
	CHECK_ERR(batch_decode_mp(&m), FERRY_E_MALFORMED);
	mp_init(&m);
	mp_batch_head(&m, CHANGELOG_BATCH_TAG, 1, 1);
	mp_segment(&m, 32, "s\xff", 64, 1);
	CHECK_ERR(batch_decode_mp(&m), FERRY_E_MALFORMED);
	mp_init(&m);
	mp_batch_head(&m, CHANGELOG_BATCH_TAG, 1, 1);
	mp_segment(&m, 32, "", 64, 1);
	CHECK_ERR(batch_decode_mp(&m), FERRY_E_MALFORMED);
	mp_init(&m);
	mp_batch_head(&m, CHANGELOG_BATCH_TAG, 1, 1);
	mp_segment(&m, 32, "s", 64, 0);
	CHECK_ERR(batch_decode_mp(&m), FERRY_E_MALFORMED);
	char scope[FERRY_MAX_SCOPE_BYTES + 2];
	memset(scope, 's', sizeof(scope) - 1);
	scope[sizeof(scope) - 1] = '\0';
	mp_init(&m);
	mp_batch_head(&m, CHANGELOG_BATCH_TAG, 1, 1);
	mp_segment(&m, 32, scope, 64, 1);
	CHECK(is_malformed_or_limit(batch_decode_mp(&m)));
	scope[FERRY_MAX_SCOPE_BYTES] = '\0';
	mp_init(&m);
	mp_batch_head(&m, CHANGELOG_BATCH_TAG, 1, 1);
	mp_segment(&m, 32, scope, 64, 1);
	CHECK_OK(batch_decode_mp(&m));
	/* An entry that is not bin. */
	mp_init(&m);
	mp_batch_head(&m, CHANGELOG_BATCH_TAG, 1, 1);
	msgpack_pack_array(&m.pk, 4);
	mp_bin_fill(&m, 32, 1);
	mp_str(&m, "s");
	msgpack_pack_array(&m.pk, 1);
	mp_str(&m, "entry");
	mp_bin_fill(&m, 64, 2);
	CHECK_ERR(batch_decode_mp(&m), FERRY_E_MALFORMED);

	/* Claimed counts far beyond the bytes present. */
	mp_init(&m);
	msgpack_pack_array(&m.pk, 3);
	mp_str(&m, CHANGELOG_BATCH_TAG);
	msgpack_pack_int(&m.pk, 1);
	static const uint8_t huge[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
	mp_raw(&m, huge, sizeof(huge));
	CHECK(is_malformed_or_limit(batch_decode_mp(&m)));
	mp_init(&m);
	mp_batch_head(&m, CHANGELOG_BATCH_TAG, 1, 1);
	msgpack_pack_array(&m.pk, 4);
	mp_bin_fill(&m, 32, 1);
	mp_str(&m, "s");
	mp_raw(&m, huge, sizeof(huge));
	CHECK(is_malformed_or_limit(batch_decode_mp(&m)));
	static const uint8_t huge_bin[] = {0xc6, 0xff, 0xff, 0xff, 0xf0, 0};
	mp_init(&m);
	mp_batch_head(&m, CHANGELOG_BATCH_TAG, 1, 1);
	msgpack_pack_array(&m.pk, 4);
	mp_raw(&m, huge_bin, sizeof(huge_bin));
	CHECK(is_malformed_or_limit(batch_decode_mp(&m)));

	/* More segments than allowed, each really present (1 byte each). */
	mp_init(&m);
	mp_batch_head(&m, CHANGELOG_BATCH_TAG, 1,
		      CHANGELOG_MAX_SEGMENTS_PER_BATCH + 1);
	for (uint32_t i = 0; i < CHANGELOG_MAX_SEGMENTS_PER_BATCH + 1; i++)
		msgpack_pack_nil(&m.pk);
	CHECK(is_malformed_or_limit(batch_decode_mp(&m)));
	/* More entries in one segment than allowed. */
	mp_init(&m);
	mp_batch_head(&m, CHANGELOG_BATCH_TAG, 1, 1);
	msgpack_pack_array(&m.pk, 4);
	mp_bin_fill(&m, 32, 1);
	mp_str(&m, "s");
	msgpack_pack_array(&m.pk, CHANGELOG_MAX_ENTRIES_PER_SEGMENT + 1);
	for (uint32_t i = 0; i < CHANGELOG_MAX_ENTRIES_PER_SEGMENT + 1; i++)
		msgpack_pack_nil(&m.pk);
	mp_bin_fill(&m, 64, 2);
	CHECK(is_malformed_or_limit(batch_decode_mp(&m)));

	/* Over the batch size bound: refused before parsing. */
	size_t big = (size_t)FERRY_MAX_BATCH_BYTES + 1;
	uint8_t *buf = calloc(1, big);
	CHECK(buf);
	CHECK_ERR(batch_decode_bytes(buf, big), FERRY_E_LIMIT);
	free(buf);

	/* Deep nesting must not recurse without bound. */
	mp_init(&m);
	for (int i = 0; i < 100000; i++)
		msgpack_pack_array(&m.pk, 1);
	msgpack_pack_nil(&m.pk);
	CHECK(is_malformed_or_limit(batch_decode_mp(&m)));

	for (int i = 0; i < 3000; i++) {
		uint8_t rnd[64];
		size_t len = test_rand_below(sizeof(rnd) + 1);
		for (size_t j = 0; j < len; j++)
			rnd[j] = (uint8_t)test_rand();
		if (len)
			rnd[0] = 0x93;
		(void)batch_decode_bytes(rnd, len);
	}
}

/* Field names must be UTF-8 like every other name: a peer must not be able
 * to store a name that the local API would refuse. Runs last so a failure
 * here does not hide the other cases. */
static void test_entry_field_name_utf8(void)
{
	CHECK_ERR(decode_put_with(fill_utf8_name), FERRY_E_MALFORMED);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	CHECK(sodium_init() >= 0);
	test_entry_round_trip();
	test_entry_canonical_values();
	test_entry_rejects();
	test_head_sign();
	test_batch_round_trip();
	test_batch_rejects();
	test_entry_field_name_utf8();
	printf("changelog_test: ok\n");
	return 0;
}
