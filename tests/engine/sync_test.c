/*
 * sync_test.c — the transport-free sync core (engine/sync.c, apply.c):
 * vectors, export plans, batch application, convergence, incremental and
 * scoped export, batch sizing, the conflict log, verification.
 */
#include "engine_helpers.h"

#define T0 UINT64_C(1700000000000)

static ferry_node *clocked_node(const char *name, uint64_t *now)
{
	ferry_node_options opts = test_node_options(0);
	opts.clock = eh_clock_fn;
	opts.clock_payload = now;
	return eh_open(eh_node_dir(name), &opts);
}

static void check_verify(ferry_node *node)
{
	ferry_verify_report rep;
	memset(&rep, 0, sizeof(rep));
	CHECK_NODE_OK(node, ferry_verify(node, &rep));
	CHECK(rep.chains > 0);
	CHECK(rep.changes > 0);
	CHECK(rep.signatures > 0);
}

/* Both nodes hold the same live records in (scope, collection). */
typedef struct rec_list {
	size_t n;
	char key[64][32];
	uint64_t fields[64];
} rec_list;

static int list_cb(const ferry_record *rec, void *payload)
{
	rec_list *l = payload;
	CHECK(l->n < 64);
	snprintf(l->key[l->n], sizeof(l->key[0]), "%s", ferry_record_key(rec));
	l->fields[l->n] = ferry_record_field_count(rec);
	l->n++;
	return 0;
}

static void check_same_records(ferry_node *a, ferry_node *b, const char *scope,
			       const char *coll)
{
	rec_list la, lb;
	memset(&la, 0, sizeof(la));
	memset(&lb, 0, sizeof(lb));
	CHECK_NODE_OK(a, ferry_scan(a, scope, coll, NULL, list_cb, &la));
	CHECK_NODE_OK(b, ferry_scan(b, scope, coll, NULL, list_cb, &lb));
	CHECK_EQ_U64(la.n, lb.n);
	for (size_t i = 0; i < la.n; i++) {
		CHECK(!strcmp(la.key[i], lb.key[i]));
		CHECK_EQ_U64(la.fields[i], lb.fields[i]);
		ferry_record *ra = NULL, *rb = NULL;
		CHECK_NODE_OK(a, ferry_get(&ra, a, scope, coll, la.key[i]));
		CHECK_NODE_OK(b, ferry_get(&rb, b, scope, coll, la.key[i]));
		for (size_t f = 0; f < la.fields[i]; f++) {
			ferry_field_info fa, fb;
			ferry_record_field(ra, f, &fa);
			ferry_record_field(rb, f, &fb);
			CHECK(!strcmp(fa.name, fb.name));
			CHECK(fa.value_len == fb.value_len &&
			      !memcmp(fa.value, fb.value, fa.value_len));
			CHECK_EQ_U64(fa.hlc, fb.hlc);
			CHECK(!memcmp(fa.origin, fb.origin,
				      FERRY_PUBLIC_KEY_BYTES));
		}
		ferry_record_free(ra);
		ferry_record_free(rb);
	}
}

static void test_two_way(void)
{
	ferry_node *a = test_node("sync-a", 0);
	ferry_node *b = test_node("sync-b", 0);
	char key[16];

	for (int i = 0; i < 10; i++) {
		snprintf(key, sizeof(key), "a%d", i);
		eh_put_int(a, "clinic-1", "patients", key, "n", i);
		snprintf(key, sizeof(key), "b%d", i);
		eh_put_int(b, "clinic-1", "patients", key, "n", i);
	}
	eh_put_int(a, "shared", "prices", "p1", "eur", 10);
	eh_delete(a, "clinic-1", "patients", "a3");
	eh_put_int(b, "clinic-2", "patients", "x", "n", 1);
	CHECK(!test_same_digest(a, b));

	CHECK_EQ_U64(test_sync_oneway(a, b), 12);
	CHECK_EQ_U64(test_sync_oneway(b, a), 11);
	CHECK(test_same_digest(a, b));
	check_same_records(a, b, "clinic-1", "patients");
	check_same_records(a, b, "clinic-2", "patients");
	check_same_records(a, b, "shared", "prices");
	uint64_t n = 0;
	CHECK_NODE_OK(a, ferry_count(&n, a, "clinic-1", "patients"));
	CHECK_EQ_U64(n, 19);
	/* Per-scope digests agree too. */
	uint8_t da[FERRY_HASH_BYTES], db[FERRY_HASH_BYTES];
	CHECK_NODE_OK(a, ferry_digest(da, a, "clinic-2"));
	CHECK_NODE_OK(b, ferry_digest(db, b, "clinic-2"));
	CHECK(!memcmp(da, db, sizeof(da)));

	/* Nothing new: a second sync applies nothing, and the export plan
	 * is empty. */
	CHECK_EQ_U64(test_sync_oneway(a, b), 0);
	CHECK_EQ_U64(test_sync_oneway(b, a), 0);
	ferry_vector *vb = NULL;
	ferry_export *exp = NULL;
	void *batch = NULL;
	size_t len = 0;
	CHECK_NODE_OK(b, ferry_vector_get(&vb, b));
	CHECK_NODE_OK(a, ferry_export_begin(&exp, a, vb, NULL));
	CHECK_EQ_U64(ferry_export_remaining(exp), 0);
	CHECK_ERR(ferry_export_next(exp, &batch, &len, NULL), FERRY_E_DONE);
	CHECK(batch == NULL);
	ferry_export_free(exp);
	ferry_vector_free(vb);

	/* Incremental: only the new changes travel. */
	uint64_t last_b = eh_last(b);
	eh_put_int(a, "clinic-1", "patients", "a0", "n", 100);
	eh_put_int(a, "clinic-1", "patients", "new", "n", 1);
	eh_put_int(a, "clinic-3", "patients", "y", "n", 1);
	CHECK_EQ_U64(test_sync_oneway(a, b), 3);
	CHECK_EQ_U64(eh_last(b), last_b + 3);
	CHECK_EQ_U64(test_sync_oneway(b, a), 0);
	CHECK(test_same_digest(a, b));

	/* A relays: C gets B's changes from A, still verifiable. */
	ferry_node *c = test_node("sync-c", 0);
	CHECK_EQ_U64(test_sync_oneway(a, c), eh_last(a));
	CHECK(test_same_digest(a, c));
	CHECK_EQ_U64(test_sync_oneway(b, c), 0);
	check_verify(a);
	check_verify(b);
	check_verify(c);

	/* Vectors agree entry by entry. */
	ferry_vector *va = NULL, *vc = NULL;
	CHECK_NODE_OK(a, ferry_vector_get(&va, a));
	CHECK_NODE_OK(c, ferry_vector_get(&vc, c));
	CHECK_EQ_U64(ferry_vector_count(va), ferry_vector_count(vc));
	/* a: clinic-1, shared, clinic-3; b: clinic-1, clinic-2. */
	CHECK_EQ_U64(ferry_vector_count(va), 5);
	for (size_t i = 0; i < ferry_vector_count(va); i++) {
		ferry_vector_entry x, y;
		ferry_vector_at(va, i, &x);
		ferry_vector_at(vc, i, &y);
		CHECK(!memcmp(x.origin, y.origin, FERRY_PUBLIC_KEY_BYTES));
		CHECK(!strcmp(x.scope, y.scope));
		CHECK_EQ_U64(x.seq, y.seq);
		CHECK(!memcmp(x.head, y.head, FERRY_HASH_BYTES));
	}
	ferry_vector_free(va);
	ferry_vector_free(vc);
	ferry_node_close(a);
	ferry_node_close(b);
	ferry_node_close(c);
}

static void test_scoped_export(void)
{
	ferry_node *a = test_node("sync-scope-a", 0);
	ferry_node *b = test_node("sync-scope-b", 0);
	eh_put_int(a, "clinic-1", "c", "k", "f", 1);
	eh_put_int(a, "clinic-1", "c", "k2", "f", 2);
	eh_put_int(a, "clinic-2", "c", "k", "f", 3);
	eh_put_int(a, "shared", "c", "k", "f", 4);

	const char *const scopes[] = {"clinic-1", "shared"};
	ferry_export_options eo = FERRY_EXPORT_OPTIONS_INIT;
	eo.scopes = scopes;
	eo.nscopes = 2;
	ferry_export *exp = NULL;
	CHECK_NODE_OK(a, ferry_export_begin(&exp, a, NULL, &eo));
	CHECK_EQ_U64(ferry_export_remaining(exp), 3);
	uint64_t applied = 0;
	for (;;) {
		void *batch = NULL;
		size_t len = 0;
		uint64_t nchanges = 0;
		int err = ferry_export_next(exp, &batch, &len, &nchanges);
		if (err == FERRY_E_DONE)
			break;
		CHECK_NODE_OK(a, err);
		ferry_apply_stats st;
		CHECK_NODE_OK(b, ferry_sync_apply(b, batch, len, &st));
		CHECK_EQ_U64(st.changes_applied, nchanges);
		applied += st.changes_applied;
		free(batch);
	}
	ferry_export_free(exp);
	CHECK_EQ_U64(applied, 3);

	ferry_vector *vb = NULL;
	CHECK_NODE_OK(b, ferry_vector_get(&vb, b));
	CHECK_EQ_U64(ferry_vector_count(vb), 2);
	for (size_t i = 0; i < 2; i++) {
		ferry_vector_entry e;
		ferry_vector_at(vb, i, &e);
		CHECK(strcmp(e.scope, "clinic-2") != 0);
	}
	ferry_vector_free(vb);
	ferry_record *rec = NULL;
	CHECK_ERR(ferry_get(&rec, b, "clinic-2", "c", "k"), FERRY_E_NOT_FOUND);
	CHECK_NODE_OK(b, ferry_get(&rec, b, "shared", "c", "k"));
	ferry_record_free(rec);
	uint8_t da[FERRY_HASH_BYTES], db[FERRY_HASH_BYTES];
	CHECK_NODE_OK(a, ferry_digest(da, a, "clinic-1"));
	CHECK_NODE_OK(b, ferry_digest(db, b, "clinic-1"));
	CHECK(!memcmp(da, db, sizeof(da)));
	CHECK(!test_same_digest(a, b));

	/* A scope with nothing in it exports nothing. */
	const char *const none[] = {"nobody"};
	eo.scopes = none;
	eo.nscopes = 1;
	CHECK_NODE_OK(a, ferry_export_begin(&exp, a, NULL, &eo));
	CHECK_EQ_U64(ferry_export_remaining(exp), 0);
	ferry_export_free(exp);

	/* The rest follows with a full sync. */
	CHECK_EQ_U64(test_sync_oneway(a, b), 1);
	CHECK(test_same_digest(a, b));
	ferry_node_close(a);
	ferry_node_close(b);
}

static void test_small_batches(void)
{
	ferry_node *a = test_node("sync-small-a", 0);
	ferry_node *b = test_node("sync-small-b", 0);
	/* Each commit signs its head, so every commit boundary is a place a
	 * batch may end. */
	for (int i = 0; i < 40; i++) {
		char key[16];
		snprintf(key, sizeof(key), "k%02d", i);
		eh_put_int(a, i % 3 ? "s1" : "s2", "c", key, "f", i);
	}
	ferry_export_options eo = FERRY_EXPORT_OPTIONS_INIT;
	eo.batch_bytes = 300;
	ferry_export *exp = NULL;
	CHECK_NODE_OK(a, ferry_export_begin(&exp, a, NULL, &eo));
	CHECK_EQ_U64(ferry_export_remaining(exp), 40);
	uint64_t batches = 0, applied = 0, segments = 0;
	for (;;) {
		void *batch = NULL;
		size_t len = 0;
		uint64_t nchanges = 0;
		uint64_t before = ferry_export_remaining(exp);
		int err = ferry_export_next(exp, &batch, &len, &nchanges);
		if (err == FERRY_E_DONE)
			break;
		CHECK_NODE_OK(a, err);
		CHECK(nchanges > 0);
		CHECK_EQ_U64(ferry_export_remaining(exp), before - nchanges);
		ferry_apply_stats st;
		CHECK_NODE_OK(b, ferry_sync_apply(b, batch, len, &st));
		CHECK_EQ_U64(st.changes_applied, nchanges);
		CHECK_EQ_U64(st.changes_duplicate, 0);
		CHECK(st.segments >= 1);
		segments += st.segments;
		applied += st.changes_applied;
		batches++;
		free(batch);
		/* Every batch ends at a signed head, so the receiver is
		 * consistent after each one. */
		CHECK_EQ_U64(eh_last(b), applied);
	}
	ferry_export_free(exp);
	CHECK_EQ_U64(applied, 40);
	CHECK(batches >= 10);
	CHECK(segments >= batches);
	CHECK(test_same_digest(a, b));
	check_verify(b);
	ferry_node_close(a);
	ferry_node_close(b);
}

typedef struct conflict_log {
	size_t n;
	ferry_hlc loser_hlc[8], winner_hlc[8];
	uint8_t loser_origin[8][FERRY_PUBLIC_KEY_BYTES];
	uint8_t winner_origin[8][FERRY_PUBLIC_KEY_BYTES];
	eh_value loser_value[8];
	int winner_is_delete[8];
	char where[8][96];
} conflict_log;

static int conflict_cb(const ferry_conflict *c, void *payload)
{
	conflict_log *l = payload;
	CHECK(l->n < 8);
	size_t i = l->n++;
	l->loser_hlc[i] = c->loser_hlc;
	l->winner_hlc[i] = c->winner_hlc;
	memcpy(l->loser_origin[i], c->loser_origin, FERRY_PUBLIC_KEY_BYTES);
	memcpy(l->winner_origin[i], c->winner_origin, FERRY_PUBLIC_KEY_BYTES);
	CHECK(c->loser_value_len <= sizeof(l->loser_value[i].buf));
	memcpy(l->loser_value[i].buf, c->loser_value, c->loser_value_len);
	l->loser_value[i].len = c->loser_value_len;
	l->winner_is_delete[i] = c->winner_is_delete;
	snprintf(l->where[i], sizeof(l->where[i]), "%s/%s/%s/%s", c->scope,
		 c->collection, c->key, c->field);
	CHECK(c->id > 0);
	return 0;
}

static conflict_log conflicts(ferry_node *node, const char *scope,
			      const char *coll, const char *key)
{
	conflict_log l;
	memset(&l, 0, sizeof(l));
	CHECK_NODE_OK(node,
		      ferry_conflicts(node, scope, coll, key, conflict_cb, &l));
	return l;
}

static void test_conflicts(void)
{
	uint64_t now_a = T0 + 1000, now_b = T0;
	ferry_node *a = clocked_node("sync-conf-a", &now_a);
	ferry_node *b = clocked_node("sync-conf-b", &now_b);
	eh_value va = eh_str("20mg"), vb = eh_str("10mg");
	ferry_field fa = eh_field("dose", &va), fb = eh_field("dose", &vb);
	ferry_txn *txn = NULL;

	/* Both write the same field; A's stamp is later. */
	CHECK_NODE_OK(b, ferry_txn_begin(&txn, b));
	CHECK_NODE_OK(b, ferry_txn_put(txn, "vet", "rx", "r1", &fb, 1));
	CHECK_NODE_OK(b, ferry_txn_commit(txn));
	CHECK_NODE_OK(a, ferry_txn_begin(&txn, a));
	CHECK_NODE_OK(a, ferry_txn_put(txn, "vet", "rx", "r1", &fa, 1));
	CHECK_NODE_OK(a, ferry_txn_commit(txn));
	/* An unrelated record that does not conflict. */
	eh_put_int(b, "vet", "rx", "r2", "dose", 5);

	CHECK_EQ_U64(test_sync_oneway(a, b), 1);
	CHECK_EQ_U64(test_sync_oneway(b, a), 2);
	CHECK(test_same_digest(a, b));

	/* B's value lost on both nodes; each logs it with both stamps. */
	ferry_node *nodes[2] = {a, b};
	for (int i = 0; i < 2; i++) {
		ferry_node *n = nodes[i];
		conflict_log l = conflicts(n, NULL, NULL, NULL);
		CHECK_EQ_U64(l.n, 1);
		CHECK(!strcmp(l.where[0], "vet/rx/r1/dose"));
		CHECK_EQ_U64(FERRY_HLC_MS(l.loser_hlc[0]), T0);
		CHECK_EQ_U64(FERRY_HLC_MS(l.winner_hlc[0]), T0 + 1000);
		CHECK(!memcmp(l.loser_origin[0], ferry_node_id(b),
			      FERRY_PUBLIC_KEY_BYTES));
		CHECK(!memcmp(l.winner_origin[0], ferry_node_id(a),
			      FERRY_PUBLIC_KEY_BYTES));
		CHECK(l.loser_value[0].len == vb.len &&
		      !memcmp(l.loser_value[0].buf, vb.buf, vb.len));
		CHECK(!l.winner_is_delete[0]);
		/* Filters. */
		CHECK_EQ_U64(conflicts(n, "vet", NULL, NULL).n, 1);
		CHECK_EQ_U64(conflicts(n, "vet", "rx", NULL).n, 1);
		CHECK_EQ_U64(conflicts(n, "vet", "rx", "r1").n, 1);
		CHECK_EQ_U64(conflicts(n, "vet", "rx", "r2").n, 0);
		CHECK_EQ_U64(conflicts(n, "vet", "other", NULL).n, 0);
		CHECK_EQ_U64(conflicts(n, "other", NULL, NULL).n, 0);
		CHECK_EQ_U64(conflicts(n, NULL, NULL, "r1").n, 1);
		ferry_record *rec = NULL;
		CHECK_NODE_OK(n, ferry_get(&rec, n, "vet", "rx", "r1"));
		const ferry_field_info *fi = ferry_record_find(rec, "dose");
		CHECK(fi && fi->value_len == va.len &&
		      !memcmp(fi->value, va.buf, va.len));
		ferry_record_free(rec);
		ferry_status st;
		CHECK_NODE_OK(n, ferry_status_get(&st, n));
		CHECK_EQ_U64(st.conflicts, 1);
	}

	/* A delete from A wins over B's later-arriving but older write. */
	now_a += 1000;
	eh_delete(a, "vet", "rx", "r2");
	CHECK_EQ_U64(test_sync_oneway(a, b), 1);
	conflict_log l = conflicts(b, "vet", "rx", "r2");
	CHECK_EQ_U64(l.n, 1);
	CHECK(l.winner_is_delete[0]);
	CHECK(!memcmp(l.loser_origin[0], ferry_node_id(b),
		      FERRY_PUBLIC_KEY_BYTES));
	CHECK(test_same_digest(a, b));

	/* Re-applying the same batch adds no conflicts. */
	CHECK_EQ_U64(test_sync_oneway(a, b), 0);
	CHECK_EQ_U64(conflicts(b, NULL, NULL, NULL).n, 2);
	check_verify(a);
	check_verify(b);
	ferry_node_close(a);
	ferry_node_close(b);
}

static void test_apply_stats_duplicates(void)
{
	ferry_node *a = test_node("sync-dup-a", 0);
	ferry_node *b = test_node("sync-dup-b", 0);
	eh_put_int(a, "s", "c", "k1", "f", 1);
	eh_put_int(a, "s", "c", "k2", "f", 2);
	size_t len = 0;
	void *batch = eh_export_one(a, NULL, &len);
	ferry_apply_stats st;
	CHECK_NODE_OK(b, ferry_sync_apply(b, batch, len, &st));
	CHECK_EQ_U64(st.changes_applied, 2);
	CHECK_EQ_U64(st.changes_duplicate, 0);
	CHECK_EQ_U64(st.segments, 1);
	CHECK_NODE_OK(b, ferry_sync_apply(b, batch, len, &st));
	CHECK_EQ_U64(st.changes_applied, 0);
	CHECK_EQ_U64(st.changes_duplicate, 2);
	/* The origin's own changes coming back are duplicates. */
	CHECK_NODE_OK(a, ferry_sync_apply(a, batch, len, NULL));
	CHECK_EQ_U64(eh_last(a), 2);
	free(batch);
	ferry_node_close(a);
	ferry_node_close(b);
}

static void test_vector_codec(void)
{
	ferry_node *a = test_node("sync-vec-a", 0);
	ferry_node *b = test_node("sync-vec-b", 0);
	eh_put_int(a, "s1", "c", "k", "f", 1);
	eh_put_int(a, "s2", "c", "k", "f", 1);
	eh_put_int(a, "s2", "c", "k", "f", 2);
	eh_put_int(b, "s1", "c", "k", "f", 3);
	test_sync_oneway(b, a);

	ferry_vector *v = NULL, *back = NULL, *empty = NULL;
	void *enc = NULL;
	size_t len = 0;
	CHECK_NODE_OK(a, ferry_vector_get(&v, a));
	CHECK_EQ_U64(ferry_vector_count(v), 3);
	/* Sorted by (origin, scope). */
	for (size_t i = 1; i < 3; i++) {
		ferry_vector_entry x, y;
		ferry_vector_at(v, i - 1, &x);
		ferry_vector_at(v, i, &y);
		int c = memcmp(x.origin, y.origin, FERRY_PUBLIC_KEY_BYTES);
		CHECK(c < 0 || (c == 0 && strcmp(x.scope, y.scope) < 0));
	}
	CHECK_OK(ferry_vector_encode(&enc, &len, v));
	CHECK_OK(ferry_vector_decode(&back, enc, len));
	CHECK_EQ_U64(ferry_vector_count(back), 3);
	for (size_t i = 0; i < 3; i++) {
		ferry_vector_entry x, y;
		ferry_vector_at(v, i, &x);
		ferry_vector_at(back, i, &y);
		CHECK(!memcmp(x.origin, y.origin, FERRY_PUBLIC_KEY_BYTES));
		CHECK(!strcmp(x.scope, y.scope));
		CHECK_EQ_U64(x.seq, y.seq);
		CHECK(!memcmp(x.head, y.head, FERRY_HASH_BYTES));
	}
	/* A decoded vector drives an export like the original. */
	ferry_export *exp = NULL;
	CHECK_NODE_OK(a, ferry_export_begin(&exp, a, back, NULL));
	CHECK_EQ_U64(ferry_export_remaining(exp), 0);
	ferry_export_free(exp);

	/* Empty vector. */
	void *enc0 = NULL;
	size_t len0 = 0;
	CHECK_OK(ferry_vector_new(&empty));
	CHECK_EQ_U64(ferry_vector_count(empty), 0);
	CHECK_OK(ferry_vector_encode(&enc0, &len0, empty));
	ferry_vector_free(empty);
	empty = NULL;
	CHECK_OK(ferry_vector_decode(&empty, enc0, len0));
	CHECK_EQ_U64(ferry_vector_count(empty), 0);
	ferry_vector_free(empty);
	free(enc0);

	/* Garbage: every strict prefix, a trailing byte, huge counts,
	 * random bytes and flipped bytes. */
	ferry_vector *g = NULL;
	for (size_t n = 0; n < len; n++) {
		g = (ferry_vector *)1;
		CHECK(ferry_vector_decode(&g, enc, n) != FERRY_OK);
		CHECK(g == NULL);
	}
	uint8_t *longer = malloc(len + 1);
	CHECK(longer);
	memcpy(longer, enc, len);
	longer[len] = 0;
	CHECK(ferry_vector_decode(&g, longer, len + 1) != FERRY_OK);
	free(longer);
	static const uint8_t huge_array[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
	static const uint8_t huge_map[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
	static const uint8_t nil[] = {0xc0};
	int err = ferry_vector_decode(&g, huge_array, sizeof(huge_array));
	CHECK(err == FERRY_E_MALFORMED || err == FERRY_E_LIMIT);
	err = ferry_vector_decode(&g, huge_map, sizeof(huge_map));
	CHECK(err == FERRY_E_MALFORMED || err == FERRY_E_LIMIT);
	CHECK_ERR(ferry_vector_decode(&g, nil, sizeof(nil)), FERRY_E_MALFORMED);
	CHECK(ferry_vector_decode(&g, NULL, 0) != FERRY_OK);
	for (int i = 0; i < 2000; i++) {
		uint8_t rnd[96];
		size_t n = 1 + test_rand_below(sizeof(rnd));
		for (size_t j = 0; j < n; j++)
			rnd[j] = (uint8_t)test_rand();
		g = NULL;
		if (ferry_vector_decode(&g, rnd, n) == FERRY_OK)
			ferry_vector_free(g);
	}
	for (size_t i = 0; i < len; i++) {
		((uint8_t *)enc)[i] ^= 0xff;
		g = NULL;
		if (ferry_vector_decode(&g, enc, len) == FERRY_OK)
			ferry_vector_free(g);
		((uint8_t *)enc)[i] ^= 0xff;
	}
	ferry_vector_free(NULL);
	free(enc);
	ferry_vector_free(v);
	ferry_vector_free(back);
	ferry_node_close(a);
	ferry_node_close(b);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	test_two_way();
	test_scoped_export();
	test_small_batches();
	test_conflicts();
	test_apply_stats_duplicates();
	test_vector_codec();
	printf("sync_test: ok\n");
	return 0;
}
