/*
 * tamper_test.c — a batch from a stranger: every tampered, forged,
 * replayed, gapped, forked or badly clocked batch must be refused with a
 * specific error and change nothing on the receiver (digest and change
 * cursor before == after). Batches are taken apart and rebuilt with the
 * engine's own changelog codec, and re-signed with the origin's real secret
 * key where a test needs a validly signed alternative history.
 */
#include <sodium.h>

#include "changelog.h"
#include "engine_helpers.h"
#include "hlc.h"

#define MAX_SEGS 8
#define MAX_ENTRIES 32

/* A segment taken out of a batch, with its own copies of the entries. */
typedef struct seg {
	uint8_t origin[FERRY_PUBLIC_KEY_BYTES];
	char scope[FERRY_MAX_SCOPE_BYTES + 1];
	uint8_t sig[FERRY_SIGNATURE_BYTES];
	size_t n;
	uint8_t *entries[MAX_ENTRIES];
	size_t lens[MAX_ENTRIES];
} seg;

typedef struct segs {
	size_t n;
	seg s[MAX_SEGS];
} segs;

static void segs_load(segs *out, const void *batch, size_t len)
{
	changelog_batch b;
	CHECK_OK(changelog_batch_decode(&b, batch, len));
	CHECK(b.nsegments <= MAX_SEGS);
	memset(out, 0, sizeof(*out));
	out->n = b.nsegments;
	for (size_t i = 0; i < b.nsegments; i++) {
		const changelog_segment *cs = &b.segments[i];
		seg *s = &out->s[i];
		memcpy(s->origin, cs->origin, sizeof(s->origin));
		snprintf(s->scope, sizeof(s->scope), "%s", cs->scope);
		memcpy(s->sig, cs->sig, sizeof(s->sig));
		CHECK(cs->nentries <= MAX_ENTRIES);
		s->n = cs->nentries;
		for (size_t j = 0; j < s->n; j++) {
			s->entries[j] = malloc(cs->entry_lens[j]);
			CHECK(s->entries[j]);
			memcpy(s->entries[j], cs->entries[j],
			       cs->entry_lens[j]);
			s->lens[j] = cs->entry_lens[j];
		}
	}
	changelog_batch_clear(&b);
}

static void seg_free(seg *s)
{
	for (size_t j = 0; j < s->n; j++)
		free(s->entries[j]);
	s->n = 0;
}

static void segs_free(segs *ss)
{
	for (size_t i = 0; i < ss->n; i++)
		seg_free(&ss->s[i]);
	ss->n = 0;
}

static void seg_copy(seg *dst, const seg *src)
{
	*dst = *src;
	for (size_t j = 0; j < src->n; j++) {
		dst->entries[j] = malloc(src->lens[j]);
		CHECK(dst->entries[j]);
		memcpy(dst->entries[j], src->entries[j], src->lens[j]);
	}
}

/* Keep entries [from, to) of the segment. */
static void seg_slice(seg *s, size_t from, size_t to)
{
	CHECK(from < to && to <= s->n);
	for (size_t j = 0; j < s->n; j++)
		if (j < from || j >= to)
			free(s->entries[j]);
	memmove(s->entries, s->entries + from,
		(to - from) * sizeof(s->entries[0]));
	memmove(s->lens, s->lens + from, (to - from) * sizeof(s->lens[0]));
	s->n = to - from;
}

/* A batch of the given segments (pointers, so tests can mix sources). */
static void *build(const seg *const *list, size_t n, size_t *len)
{
	changelog_batch_writer w;
	void *out = NULL;
	changelog_writer_init(&w);
	for (size_t i = 0; i < n; i++) {
		const seg *s = list[i];
		CHECK_OK(changelog_writer_add(&w, s->origin, s->scope,
					      (const void *const *)s->entries,
					      s->lens, s->n, s->sig));
	}
	CHECK_OK(changelog_writer_finish(&w, &out, len));
	changelog_writer_clear(&w);
	return out;
}

static void *build1(const seg *s, size_t *len)
{
	const seg *list[1] = {s};
	return build(list, 1, len);
}

/* The seq and hash of the segment's last entry: what its signature
 * covers. */
static uint64_t seg_head(const seg *s, uint8_t head[FERRY_HASH_BYTES])
{
	changelog_entry e;
	changelog_entry_init(&e);
	CHECK_OK(changelog_entry_decode(&e, s->entries[s->n - 1],
					s->lens[s->n - 1]));
	uint64_t seq = e.seq;
	changelog_entry_clear(&e);
	changelog_hash(head, s->entries[s->n - 1], s->lens[s->n - 1]);
	return seq;
}

static void seg_sign(seg *s, const uint8_t *sk)
{
	uint8_t head[FERRY_HASH_BYTES];
	uint64_t seq = seg_head(s, head);
	changelog_head_sign(s->sig, sk, s->origin, s->scope, seq, head);
}

/* Re-encode entry j with `edit` applied (NULL = unchanged) and prev set to
 * `prev` (NULL = keep). */
typedef void (*entry_edit)(changelog_entry *e, eh_value *scratch,
			   ferry_field *fields);

static void seg_reencode(seg *s, size_t j, const uint8_t *prev, entry_edit edit)
{
	changelog_entry e;
	eh_value scratch;
	ferry_field fields[16];
	msgpack_sbuffer sb;
	changelog_entry_init(&e);
	CHECK_OK(changelog_entry_decode(&e, s->entries[j], s->lens[j]));
	CHECK(e.nfields <= 16);
	for (size_t i = 0; i < e.nfields; i++)
		fields[i] = e.fields[i];
	if (edit)
		edit(&e, &scratch, fields);
	msgpack_sbuffer_init(&sb);
	CHECK_OK(changelog_entry_encode(&sb, e.seq, prev ? prev : e.prev, e.hlc,
					e.collection, e.key, e.op, fields,
					e.nfields));
	free(s->entries[j]);
	s->entries[j] = (uint8_t *)sb.data;
	s->lens[j] = sb.size;
	changelog_entry_clear(&e);
}

/* After entry j changed: relink entries j+1.. to it. */
static void seg_relink_from(seg *s, size_t j)
{
	for (size_t k = j + 1; k < s->n; k++) {
		uint8_t prev[FERRY_HASH_BYTES];
		changelog_hash(prev, s->entries[k - 1], s->lens[k - 1]);
		seg_reencode(s, k, prev, NULL);
	}
}

static void edit_value(changelog_entry *e, eh_value *scratch,
		       ferry_field *fields)
{
	CHECK(e->op == FERRY_OP_PUT && e->nfields >= 1);
	*scratch = eh_int(-999);
	fields[0].value = scratch->buf;
	fields[0].value_len = scratch->len;
}

static void edit_hlc(changelog_entry *e, eh_value *scratch, ferry_field *fields)
{
	(void)scratch;
	(void)fields;
	e->hlc++;
}

static void edit_bad_utf8_name(changelog_entry *e, eh_value *scratch,
			       ferry_field *fields)
{
	(void)scratch;
	CHECK(e->op == FERRY_OP_PUT && e->nfields >= 1);
	/* Sorts after any ASCII name, so the entry stays well-ordered. */
	fields[e->nfields - 1].name = "z\xff";
}

/* ---- receivers ---- */

typedef struct snapshot {
	uint8_t digest[FERRY_HASH_BYTES];
	uint64_t last;
	size_t vector_count;
} snapshot;

static snapshot snap(ferry_node *node)
{
	snapshot s;
	ferry_vector *v = NULL;
	eh_digest(s.digest, node);
	s.last = eh_last(node);
	CHECK_NODE_OK(node, ferry_vector_get(&v, node));
	s.vector_count = ferry_vector_count(v);
	ferry_vector_free(v);
	return s;
}

#define ANY_ERROR 1

/* Apply `batch`, which must fail with `want` (ANY_ERROR: any error), and
 * leave the node exactly as it was. */
static void expect_reject_at(ferry_node *node, const void *batch, size_t len,
			     int want, const char *what, int line)
{
	snapshot before = snap(node);
	ferry_apply_stats st;
	int err = ferry_sync_apply(node, batch, len, &st);
	if (err == FERRY_OK || (want != ANY_ERROR && err != want))
		test_fail(__FILE__, line, "%s: expected %s, got %s (%s)", what,
			  want == ANY_ERROR ? "an error" : ferry_err_name(want),
			  ferry_err_name(err), ferry_node_errmsg(node));
	if (!*ferry_node_errmsg(node))
		test_fail(__FILE__, line, "%s: %s without detail text", what,
			  ferry_err_name(err));
	snapshot after = snap(node);
	if (memcmp(before.digest, after.digest, FERRY_HASH_BYTES) ||
	    before.last != after.last ||
	    before.vector_count != after.vector_count)
		test_fail(__FILE__, line,
			  "%s: refused with %s but the node changed", what,
			  ferry_err_name(err));
}

#define EXPECT_REJECT(node, batch, len, want, what)                            \
	expect_reject_at(node, batch, len, want, what, __LINE__)

static ferry_apply_stats apply_ok(ferry_node *node, const void *batch,
				  size_t len)
{
	ferry_apply_stats st;
	memset(&st, 0, sizeof(st));
	CHECK_NODE_OK(node, ferry_sync_apply(node, batch, len, &st));
	return st;
}

/* ---- the origin ---- */

typedef struct origin {
	ferry_node *node;
	uint8_t sk[crypto_sign_SECRETKEYBYTES];
	void *batch;
	size_t len;
	segs ss;
	int s1, s2; /* indexes of the two scopes' segments in ss */
} origin;

static void origin_make(origin *o)
{
	char path[4300];
	const char *dir = eh_node_dir("tamper-a");
	o->node = eh_open(dir, NULL);
	/* Two scopes, several commits, a multi-write commit and a delete. */
	for (int i = 0; i < 5; i++) {
		char key[16];
		snprintf(key, sizeof(key), "p%d", i);
		eh_put_int(o->node, "clinic-1", "patients", key, "age", i);
	}
	eh_put_int(o->node, "clinic-1", "patients", "p1", "age", 11);
	eh_delete(o->node, "clinic-1", "patients", "p2");
	eh_value v1 = eh_str("Rex"), v2 = eh_int(3);
	ferry_field two[2] = {eh_field("name", &v1), eh_field("n", &v2)};
	ferry_txn *txn = NULL;
	CHECK_NODE_OK(o->node, ferry_txn_begin(&txn, o->node));
	CHECK_NODE_OK(o->node,
		      ferry_txn_put(txn, "shared", "prices", "x", two, 2));
	CHECK_NODE_OK(o->node,
		      ferry_txn_put(txn, "shared", "prices", "y", two + 1, 1));
	CHECK_NODE_OK(o->node, ferry_txn_commit(txn));
	eh_put_int(o->node, "shared", "prices", "z", "n", 4);

	o->batch = eh_export_one(o->node, NULL, &o->len);
	segs_load(&o->ss, o->batch, o->len);
	CHECK_EQ_U64(o->ss.n, 2);
	o->s1 = strcmp(o->ss.s[0].scope, "clinic-1") == 0 ? 0 : 1;
	o->s2 = 1 - o->s1;
	CHECK(!strcmp(o->ss.s[o->s1].scope, "clinic-1"));
	CHECK(!strcmp(o->ss.s[o->s2].scope, "shared"));
	CHECK_EQ_U64(o->ss.s[o->s1].n, 7);
	CHECK_EQ_U64(o->ss.s[o->s2].n, 3);

	/* The secret key: 64 bytes of libsodium Ed25519 secret key. */
	snprintf(path, sizeof(path), "%s/node.key", dir);
	CHECK_EQ_U64(eh_read_file(path, o->sk, sizeof(o->sk)), sizeof(o->sk));
	uint8_t pk[crypto_sign_PUBLICKEYBYTES];
	crypto_sign_ed25519_sk_to_pk(pk, o->sk);
	CHECK(!memcmp(pk, ferry_node_id(o->node), sizeof(pk)));

	/* Sanity: the rebuild machinery reproduces the batch exactly, and
	 * re-signing with the real key reproduces the signature. */
	size_t len = 0;
	const seg *list[2] = {&o->ss.s[0], &o->ss.s[1]};
	void *again = build(list, 2, &len);
	CHECK(len == o->len && !memcmp(again, o->batch, len));
	free(again);
	seg copy;
	seg_copy(&copy, &o->ss.s[0]);
	seg_sign(&copy, o->sk);
	CHECK(!memcmp(copy.sig, o->ss.s[0].sig, FERRY_SIGNATURE_BYTES));
	seg_free(&copy);
}

static void origin_free(origin *o)
{
	segs_free(&o->ss);
	free(o->batch);
	sodium_memzero(o->sk, sizeof(o->sk));
	ferry_node_close(o->node);
}

/* ---- the cases ---- */

static void test_byte_flips(origin *o, ferry_node *b)
{
	uint8_t *mut = malloc(o->len);
	CHECK(mut);
	size_t positions = o->len < 4096 ? o->len : 2000;
	printf("tamper_test: flipping %zu positions of a %zu-byte batch\n",
	       positions, o->len);
	for (size_t k = 0; k < positions; k++) {
		size_t pos = o->len < 4096 ? k : test_rand_below(o->len);
		/* A whole-byte flip and a single-bit flip at each place. */
		const uint8_t masks[2] = {0xff, (uint8_t)(1u << (pos % 8))};
		for (int m = 0; m < 2; m++) {
			char what[64];
			memcpy(mut, o->batch, o->len);
			mut[pos] ^= masks[m];
			snprintf(what, sizeof(what), "flip 0x%02x at %zu",
				 masks[m], pos);
			EXPECT_REJECT(b, mut, o->len, ANY_ERROR, what);
		}
	}
	/* Truncations and an appended byte. */
	for (size_t cut = 0; cut < o->len; cut += 1 + o->len / 97) {
		char what[64];
		snprintf(what, sizeof(what), "truncated to %zu", cut);
		EXPECT_REJECT(b, o->batch, cut, ANY_ERROR, what);
	}
	uint8_t *longer = malloc(o->len + 1);
	CHECK(longer);
	memcpy(longer, o->batch, o->len);
	longer[o->len] = 0xc0;
	EXPECT_REJECT(b, longer, o->len + 1, FERRY_E_MALFORMED, "trailing");
	free(longer);
	free(mut);
}

static void test_signatures(origin *o, ferry_node *b)
{
	uint8_t pk2[crypto_sign_PUBLICKEYBYTES],
		sk2[crypto_sign_SECRETKEYBYTES];
	size_t len = 0;
	void *batch;
	seg s;

	CHECK(crypto_sign_keypair(pk2, sk2) == 0);
	/* A valid signature by another key over the same head. */
	seg_copy(&s, &o->ss.s[o->s1]);
	seg_sign(&s, sk2);
	batch = build1(&s, &len);
	EXPECT_REJECT(b, batch, len, FERRY_E_BAD_SIGNATURE, "forged signature");
	free(batch);
	/* Zeroed. */
	memset(s.sig, 0, sizeof(s.sig));
	batch = build1(&s, &len);
	EXPECT_REJECT(b, batch, len, FERRY_E_BAD_SIGNATURE, "zero signature");
	free(batch);
	/* Claiming to be the other key's chain: its signature verifies for
	 * that origin only over that origin's head message, not this one's
	 * entries... unless it signs them, which is then a legitimate chain
	 * of a different origin. Signed by A, labelled as the other: bad. */
	seg_free(&s);
	seg_copy(&s, &o->ss.s[o->s1]);
	memcpy(s.origin, pk2, sizeof(pk2));
	batch = build1(&s, &len);
	EXPECT_REJECT(b, batch, len, FERRY_E_BAD_SIGNATURE, "other origin");
	free(batch);
	/* Another scope label with the original signature. */
	seg_free(&s);
	seg_copy(&s, &o->ss.s[o->s1]);
	snprintf(s.scope, sizeof(s.scope), "clinic-2");
	batch = build1(&s, &len);
	EXPECT_REJECT(b, batch, len, FERRY_E_BAD_SIGNATURE, "other scope");
	free(batch);
	/* The signature of a shorter chain (head at entry 3) on the full
	 * chain. */
	seg_free(&s);
	seg_copy(&s, &o->ss.s[o->s1]);
	seg short_seg;
	seg_copy(&short_seg, &s);
	seg_slice(&short_seg, 0, 3);
	seg_sign(&short_seg, o->sk);
	memcpy(s.sig, short_seg.sig, sizeof(s.sig));
	batch = build1(&s, &len);
	EXPECT_REJECT(b, batch, len, FERRY_E_BAD_SIGNATURE, "older head sig");
	free(batch);
	/* ...while the short chain with its own signature is fine (on a
	 * scratch node: b must stay empty for the later cases). */
	ferry_node *scratch = test_node("tamper-scratch", 0);
	batch = build1(&short_seg, &len);
	ferry_apply_stats st = apply_ok(scratch, batch, len);
	CHECK_EQ_U64(st.changes_applied, 3);
	free(batch);
	ferry_node_close(scratch);
	seg_free(&short_seg);
	seg_free(&s);
	sodium_memzero(sk2, sizeof(sk2));
}

static void test_gap(origin *o, ferry_node *b)
{
	size_t len = 0;
	void *batch;
	seg s;

	/* Entries 3.. with the original (valid) head signature, on an empty
	 * node. */
	seg_copy(&s, &o->ss.s[o->s1]);
	seg_slice(&s, 2, s.n);
	batch = build1(&s, &len);
	EXPECT_REJECT(b, batch, len, FERRY_E_GAP, "gap on empty node");
	free(batch);
	seg_free(&s);

	/* A node holding 1..2 (signed with A's key at head 2) then 4.. */
	ferry_node *c = test_node("tamper-gap", 0);
	seg_copy(&s, &o->ss.s[o->s1]);
	seg_slice(&s, 0, 2);
	seg_sign(&s, o->sk);
	batch = build1(&s, &len);
	CHECK_EQ_U64(apply_ok(c, batch, len).changes_applied, 2);
	free(batch);
	seg_free(&s);
	seg_copy(&s, &o->ss.s[o->s1]);
	seg_slice(&s, 3, s.n);
	batch = build1(&s, &len);
	EXPECT_REJECT(c, batch, len, FERRY_E_GAP, "gap after seq 2");
	free(batch);
	seg_free(&s);
	/* 2.. overlaps what is held: the held entry is a duplicate, the
	 * rest applies. */
	seg_copy(&s, &o->ss.s[o->s1]);
	seg_slice(&s, 1, s.n);
	batch = build1(&s, &len);
	ferry_apply_stats st = apply_ok(c, batch, len);
	CHECK_EQ_U64(st.changes_duplicate, 1);
	CHECK_EQ_U64(st.changes_applied, s.n - 1);
	free(batch);
	seg_free(&s);
	ferry_node_close(c);
}

static void test_bad_link(origin *o, ferry_node *b)
{
	size_t len = 0;
	void *batch;
	seg s;
	uint8_t bogus[FERRY_HASH_BYTES];

	/* Entry 4's prev altered, the rest relinked to it, head re-signed
	 * by the real key: only the link 3 -> 4 is wrong. */
	memset(bogus, 0x42, sizeof(bogus));
	seg_copy(&s, &o->ss.s[o->s1]);
	seg_reencode(&s, 3, bogus, NULL);
	seg_relink_from(&s, 3);
	seg_sign(&s, o->sk);
	batch = build1(&s, &len);
	EXPECT_REJECT(b, batch, len, FERRY_E_BAD_LINK, "altered prev");
	free(batch);
	seg_free(&s);

	/* Entry 4's prev altered, nothing else: link and head both wrong;
	 * the head is re-signed so the link is what fails. */
	seg_copy(&s, &o->ss.s[o->s1]);
	seg_reencode(&s, 3, bogus, NULL);
	seg_sign(&s, o->sk);
	batch = build1(&s, &len);
	EXPECT_REJECT(b, batch, len, FERRY_E_BAD_LINK, "altered prev only");
	free(batch);
	seg_free(&s);

	/* The first entry of a chain must have a zero prev. */
	seg_copy(&s, &o->ss.s[o->s1]);
	seg_reencode(&s, 0, bogus, NULL);
	seg_relink_from(&s, 0);
	seg_sign(&s, o->sk);
	batch = build1(&s, &len);
	EXPECT_REJECT(b, batch, len, FERRY_E_BAD_LINK, "non-zero first prev");
	free(batch);
	seg_free(&s);

	/* An entry edited without relinking, head re-signed: the next
	 * entry's prev no longer matches. */
	seg_copy(&s, &o->ss.s[o->s1]);
	seg_reencode(&s, 2, NULL, edit_value);
	seg_sign(&s, o->sk);
	batch = build1(&s, &len);
	EXPECT_REJECT(b, batch, len, FERRY_E_BAD_LINK, "edited entry");
	free(batch);
	seg_free(&s);

	/* An edited entry, relinked and re-signed, is a valid chain: it
	 * applies on a fresh node (the fork test below relies on this). */
	ferry_node *c = test_node("tamper-valid-alt", 0);
	seg_copy(&s, &o->ss.s[o->s1]);
	seg_reencode(&s, 2, NULL, edit_value);
	seg_relink_from(&s, 2);
	seg_sign(&s, o->sk);
	batch = build1(&s, &len);
	CHECK_EQ_U64(apply_ok(c, batch, len).changes_applied, s.n);
	free(batch);
	seg_free(&s);
	ferry_node_close(c);
}

static void test_mixed(origin *o, ferry_node *b)
{
	size_t len = 0;
	void *batch;
	seg bad;
	const seg *list[2];

	/* A good first segment and a bad second one: nothing applies. */
	seg_copy(&bad, &o->ss.s[o->s2]);
	memset(bad.sig, 0, sizeof(bad.sig));
	list[0] = &o->ss.s[o->s1];
	list[1] = &bad;
	batch = build(list, 2, &len);
	EXPECT_REJECT(b, batch, len, FERRY_E_BAD_SIGNATURE, "good + bad sig");
	free(batch);
	/* Bad first, good second. */
	list[0] = &bad;
	list[1] = &o->ss.s[o->s1];
	batch = build(list, 2, &len);
	EXPECT_REJECT(b, batch, len, FERRY_E_BAD_SIGNATURE, "bad sig + good");
	free(batch);
	seg_free(&bad);
	/* Good segment, then a gapped one. */
	seg_copy(&bad, &o->ss.s[o->s2]);
	seg_slice(&bad, 1, bad.n);
	list[0] = &o->ss.s[o->s1];
	list[1] = &bad;
	batch = build(list, 2, &len);
	EXPECT_REJECT(b, batch, len, FERRY_E_GAP, "good + gap");
	free(batch);
	seg_free(&bad);
	/* The same good segment twice in one batch is harmless. */
	ferry_node *c = test_node("tamper-twice", 0);
	list[0] = &o->ss.s[o->s1];
	list[1] = &o->ss.s[o->s1];
	batch = build(list, 2, &len);
	ferry_apply_stats st = apply_ok(c, batch, len);
	CHECK_EQ_U64(st.changes_applied, o->ss.s[o->s1].n);
	CHECK_EQ_U64(st.changes_duplicate, o->ss.s[o->s1].n);
	free(batch);
	ferry_node_close(c);
}

static void test_replay_and_fork(origin *o, ferry_node *b)
{
	size_t len = 0;
	void *batch;
	seg s;

	ferry_apply_stats st = apply_ok(b, o->batch, o->len);
	CHECK_EQ_U64(st.changes_applied, 10);
	CHECK_EQ_U64(st.segments, 2);
	CHECK(test_same_digest(o->node, b));

	/* Replay: accepted, nothing new. */
	snapshot before = snap(b);
	st = apply_ok(b, o->batch, o->len);
	CHECK_EQ_U64(st.changes_applied, 0);
	CHECK_EQ_U64(st.changes_duplicate, 10);
	snapshot after = snap(b);
	CHECK(!memcmp(before.digest, after.digest, FERRY_HASH_BYTES));
	CHECK_EQ_U64(before.last, after.last);

	/* A validly signed alternative history at held sequences. */
	seg_copy(&s, &o->ss.s[o->s1]);
	seg_reencode(&s, 2, NULL, edit_value);
	seg_relink_from(&s, 2);
	seg_sign(&s, o->sk);
	batch = build1(&s, &len);
	EXPECT_REJECT(b, batch, len, FERRY_E_FORK, "fork at seq 3");
	free(batch);
	/* The same alternative, only the part past the fork point... still
	 * conflicts with what is held (seq 4.. are held too). */
	seg_slice(&s, 3, s.n);
	batch = build1(&s, &len);
	EXPECT_REJECT(b, batch, len, ANY_ERROR, "fork tail");
	free(batch);
	seg_free(&s);
	/* A fork at the last held entry. */
	seg_copy(&s, &o->ss.s[o->s1]);
	seg_reencode(&s, s.n - 1, NULL, edit_hlc);
	seg_sign(&s, o->sk);
	batch = build1(&s, &len);
	EXPECT_REJECT(b, batch, len, FERRY_E_FORK, "fork at head");
	free(batch);
	seg_free(&s);

	/* A forked history that extends beyond what is held, diverging at a
	 * held seq: still a fork, and the extension is not applied. */
	seg_copy(&s, &o->ss.s[o->s2]);
	seg_reencode(&s, 0, NULL, edit_value);
	seg_relink_from(&s, 0);
	seg_sign(&s, o->sk);
	batch = build1(&s, &len);
	EXPECT_REJECT(b, batch, len, FERRY_E_FORK, "fork at seq 1");
	free(batch);
	seg_free(&s);

	/* After all that, the honest continuation still applies. */
	eh_put_int(o->node, "clinic-1", "patients", "late", "age", 1);
	CHECK_EQ_U64(test_sync_oneway(o->node, b), 1);
	CHECK(test_same_digest(o->node, b));
	ferry_verify_report rep;
	CHECK_NODE_OK(b, ferry_verify(b, &rep));
}

static void test_unknown_origin(origin *o)
{
	ferry_node_options opts = test_node_options(0);
	opts.require_known_origins = 1;
	ferry_node *c = eh_open(eh_node_dir("tamper-known"), &opts);
	EXPECT_REJECT(c, o->batch, o->len, FERRY_E_UNKNOWN_ORIGIN,
		      "unknown origin");
	/* Trusting some other origin does not help. */
	uint8_t other[FERRY_PUBLIC_KEY_BYTES];
	memset(other, 7, sizeof(other));
	CHECK_NODE_OK(c, ferry_origin_trust(c, other, "someone"));
	EXPECT_REJECT(c, o->batch, o->len, FERRY_E_UNKNOWN_ORIGIN,
		      "other origin trusted");
	CHECK_NODE_OK(c, ferry_origin_trust(c, ferry_node_id(o->node), "A"));
	CHECK_EQ_U64(apply_ok(c, o->batch, o->len).changes_applied, 10);
	/* Trust survives a reopen. */
	char dir[4300];
	snprintf(dir, sizeof(dir), "%s", ferry_node_dir(c));
	ferry_node_close(c);
	c = eh_open(dir, &opts);
	CHECK_EQ_U64(apply_ok(c, o->batch, o->len).changes_duplicate, 10);
	ferry_node_close(c);
}

static void test_clock(void)
{
	/* An origin whose clock runs 10 minutes fast. */
	uint64_t future = hlc_wall_ms() + 10 * 60 * 1000;
	ferry_node_options opts = test_node_options(0);
	opts.clock = eh_clock_fn;
	opts.clock_payload = &future;
	ferry_node *f = eh_open(eh_node_dir("tamper-fast"), &opts);
	eh_put_int(f, "s", "c", "k", "f", 1);
	size_t len = 0;
	void *batch = eh_export_one(f, NULL, &len);
	ferry_node *c = test_node("tamper-clock", 0);
	EXPECT_REJECT(c, batch, len, FERRY_E_CLOCK_DRIFT, "10 min ahead");

	/* With a larger tolerance the same batch is accepted. */
	ferry_node_options wide = test_node_options(0);
	wide.max_clock_drift_ms = 20 * 60 * 1000;
	ferry_node *d = eh_open(eh_node_dir("tamper-wide"), &wide);
	CHECK_EQ_U64(apply_ok(d, batch, len).changes_applied, 1);
	/* ...and a node that held it stamps its own writes after it. */
	eh_put_int(d, "s", "c", "k", "f", 2);
	ferry_record *rec = NULL;
	CHECK_NODE_OK(d, ferry_get(&rec, d, "s", "c", "k"));
	const ferry_field_info *fi = ferry_record_find(rec, "f");
	CHECK(fi && FERRY_HLC_MS(fi->hlc) >= future);
	CHECK(!memcmp(fi->origin, ferry_node_id(d), FERRY_PUBLIC_KEY_BYTES));
	ferry_record_free(rec);
	free(batch);
	ferry_node_close(c);
	ferry_node_close(d);
	ferry_node_close(f);
}

/* A validly signed chain whose entry carries a field name that is not
 * UTF-8: the local API refuses such names, so a peer must not be able to
 * plant one either. Runs last: a failure here hides no other case. */
static void test_bad_name_signed(origin *o)
{
	size_t len = 0;
	void *batch;
	seg s;
	ferry_node *c = test_node("tamper-utf8", 0);
	seg_copy(&s, &o->ss.s[o->s2]);
	seg_reencode(&s, 0, NULL, edit_bad_utf8_name);
	seg_relink_from(&s, 0);
	seg_sign(&s, o->sk);
	batch = build1(&s, &len);
	EXPECT_REJECT(c, batch, len, FERRY_E_MALFORMED,
		      "signed non-UTF-8 field name");
	free(batch);
	seg_free(&s);
	ferry_node_close(c);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	CHECK(sodium_init() >= 0);
	origin o;
	origin_make(&o);
	ferry_node *b = test_node("tamper-b", 0);
	snapshot empty = snap(b);
	CHECK_EQ_U64(empty.last, 0);

	test_byte_flips(&o, b);
	test_signatures(&o, b);
	test_gap(&o, b);
	test_bad_link(&o, b);
	test_mixed(&o, b);
	/* b is still empty after every refusal above. */
	snapshot now = snap(b);
	CHECK(!memcmp(empty.digest, now.digest, FERRY_HASH_BYTES));
	CHECK_EQ_U64(now.last, 0);
	CHECK_EQ_U64(now.vector_count, 0);
	test_replay_and_fork(&o, b);
	test_unknown_origin(&o);
	test_clock();

	test_bad_name_signed(&o);

	ferry_node_close(b);
	origin_free(&o);
	printf("tamper_test: ok\n");
	return 0;
}
