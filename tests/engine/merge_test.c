/*
 * merge_test.c — per-field last-writer-wins (engine/merge.h): the ordering
 * rules, tombstones, idempotence, order independence over many random
 * orders, loss reports, and the canonical encoding.
 */
#include "engine_helpers.h"
#include "merge.h"

static merge_stamp stamp(ferry_hlc hlc, uint8_t origin_byte)
{
	merge_stamp s;
	s.hlc = hlc;
	memset(s.origin, origin_byte, sizeof(s.origin));
	return s;
}

/* The live value of `name`, or NULL. */
static const merge_field *find(const merge_state *st, const char *name)
{
	for (size_t i = 0; i < st->nfields; i++)
		if (!strcmp(st->fields[i].name, name))
			return &st->fields[i];
	return NULL;
}

static int field_is(const merge_state *st, const char *name, const eh_value *v)
{
	const merge_field *f = find(st, name);
	return f && f->value_len == v->len &&
	       memcmp(f->value, v->buf, v->len) == 0;
}

static void put1(merge_state *st, merge_stamp s, const char *name,
		 const eh_value *v, int *changed)
{
	ferry_field f = eh_field(name, v);
	CHECK_OK(merge_put(st, &s, &f, 1, changed, NULL, NULL));
}

static void del(merge_state *st, merge_stamp s, int *changed)
{
	CHECK_OK(merge_delete(st, &s, changed, NULL, NULL));
}

static void test_stamp_cmp(void)
{
	merge_stamp a = stamp(10, 1), b = stamp(11, 0), c = stamp(10, 2);
	CHECK(merge_stamp_cmp(&a, &b) < 0);
	CHECK(merge_stamp_cmp(&b, &a) > 0);
	CHECK(merge_stamp_cmp(&a, &c) < 0);
	CHECK(merge_stamp_cmp(&c, &a) > 0);
	CHECK(merge_stamp_cmp(&a, &a) == 0);
	/* Origin compared bytewise: the last byte decides. */
	merge_stamp d = stamp(10, 1);
	d.origin[31] = 2;
	CHECK(merge_stamp_cmp(&a, &d) < 0);
}

static void test_later_wins(void)
{
	merge_state st;
	eh_value v1 = eh_int(1), v2 = eh_int(2);
	int changed = 0;
	merge_state_init(&st);
	put1(&st, stamp(10, 1), "f", &v1, &changed);
	CHECK(changed);
	put1(&st, stamp(20, 1), "f", &v2, &changed);
	CHECK(changed);
	CHECK(field_is(&st, "f", &v2));
	/* An older write arriving later loses. */
	put1(&st, stamp(15, 9), "f", &v1, &changed);
	CHECK(!changed);
	CHECK(field_is(&st, "f", &v2));
	CHECK_EQ_U64(find(&st, "f")->stamp.hlc, 20);
	merge_state_clear(&st);
}

static void test_tie_origin(void)
{
	eh_value va = eh_str("from-a"), vb = eh_str("from-b");
	for (int order = 0; order < 2; order++) {
		merge_state st;
		int changed;
		merge_state_init(&st);
		if (order == 0) {
			put1(&st, stamp(50, 0xa0), "f", &va, &changed);
			put1(&st, stamp(50, 0xb0), "f", &vb, &changed);
		} else {
			put1(&st, stamp(50, 0xb0), "f", &vb, &changed);
			put1(&st, stamp(50, 0xa0), "f", &va, &changed);
		}
		/* Same HLC: the bytewise greater origin wins either way. */
		CHECK(field_is(&st, "f", &vb));
		merge_state_clear(&st);
	}
}

static void test_idempotent(void)
{
	merge_state st;
	eh_value v = eh_int(7);
	int changed = -1;
	merge_state_init(&st);
	put1(&st, stamp(10, 1), "f", &v, &changed);
	CHECK(changed);
	put1(&st, stamp(10, 1), "f", &v, &changed);
	CHECK(changed == 0);
	del(&st, stamp(5, 1), &changed);
	CHECK(changed == 0 || changed == 1); /* an older tombstone is noted */
	msgpack_sbuffer a, b;
	msgpack_sbuffer_init(&a);
	msgpack_sbuffer_init(&b);
	CHECK_OK(merge_state_encode(&a, &st));
	del(&st, stamp(5, 1), &changed);
	CHECK(changed == 0);
	del(&st, stamp(4, 1), &changed);
	CHECK(changed == 0);
	CHECK_OK(merge_state_encode(&b, &st));
	CHECK(a.size == b.size && memcmp(a.data, b.data, a.size) == 0);
	msgpack_sbuffer_destroy(&a);
	msgpack_sbuffer_destroy(&b);
	merge_state_clear(&st);
}

static void test_tombstones(void)
{
	merge_state st;
	eh_value v1 = eh_int(1), v2 = eh_int(2);
	int changed;

	/* delete, then a later write: live again. */
	merge_state_init(&st);
	put1(&st, stamp(10, 1), "a", &v1, &changed);
	del(&st, stamp(20, 1), &changed);
	CHECK(changed);
	CHECK(!merge_state_live(&st));
	CHECK(find(&st, "a") == NULL);
	put1(&st, stamp(30, 1), "b", &v2, &changed);
	CHECK(changed);
	CHECK(merge_state_live(&st));
	CHECK(field_is(&st, "b", &v2));
	CHECK(find(&st, "a") == NULL);
	merge_state_clear(&st);

	/* write, then a later delete: gone. */
	merge_state_init(&st);
	put1(&st, stamp(10, 1), "a", &v1, &changed);
	CHECK(merge_state_live(&st));
	del(&st, stamp(11, 1), &changed);
	CHECK(!merge_state_live(&st));
	CHECK(st.has_tombstone);
	CHECK_EQ_U64(st.tombstone.hlc, 11);
	merge_state_clear(&st);

	/* A delete older than a field keeps that field, drops older ones. */
	merge_state_init(&st);
	put1(&st, stamp(10, 1), "old", &v1, &changed);
	put1(&st, stamp(30, 1), "new", &v2, &changed);
	del(&st, stamp(20, 2), &changed);
	CHECK(changed);
	CHECK(find(&st, "old") == NULL);
	CHECK(field_is(&st, "new", &v2));
	/* A field write older than the tombstone is ignored. */
	put1(&st, stamp(15, 3), "old", &v2, &changed);
	CHECK(!changed);
	CHECK(find(&st, "old") == NULL);
	/* Equal HLC, lower origin than the tombstone: still older. */
	put1(&st, stamp(20, 1), "old", &v2, &changed);
	CHECK(!changed);
	CHECK(find(&st, "old") == NULL);
	/* Equal HLC, higher origin: newer than the tombstone. */
	put1(&st, stamp(20, 3), "old", &v2, &changed);
	CHECK(changed);
	CHECK(field_is(&st, "old", &v2));
	/* An older delete after a newer one changes nothing. */
	del(&st, stamp(12, 9), &changed);
	CHECK(!changed);
	CHECK_EQ_U64(st.tombstone.hlc, 20);
	merge_state_clear(&st);
}

/* A random operation on one record. */
typedef struct op {
	int is_delete;
	merge_stamp stamp;
	size_t nfields;
	const char *names[4];
	eh_value values[4];
} op;

static const char *const field_names[] = {"a", "b", "c", "dose"};

static void random_ops(op *ops, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		op *o = &ops[i];
		int unique;
		memset(o, 0, sizeof(*o));
		/* Small HLC and origin ranges make ties likely; a stamp
		 * names one write, so stamps are kept unique. */
		do {
			o->stamp = stamp(1 + test_rand_below(4),
					 (uint8_t)test_rand_below(3));
			unique = 1;
			for (size_t j = 0; j < i; j++)
				if (merge_stamp_cmp(&ops[j].stamp, &o->stamp) ==
				    0)
					unique = 0;
		} while (!unique);
		o->is_delete = test_rand_below(4) == 0;
		if (o->is_delete)
			continue;
		for (size_t f = 0; f < 4; f++) {
			if (test_rand_below(2) == 0)
				continue;
			o->names[o->nfields] = field_names[f];
			if (test_rand_below(2))
				o->values[o->nfields] = eh_int(
					(int64_t)test_rand_below(1000) - 500);
			else
				o->values[o->nfields] =
					eh_str(test_rand_below(2) ? "x" : "yy");
			o->nfields++;
		}
		if (!o->nfields) {
			o->names[0] = "a";
			o->values[0] = eh_int(0);
			o->nfields = 1;
		}
	}
}

static void apply_op(merge_state *st, const op *o)
{
	if (o->is_delete) {
		CHECK_OK(merge_delete(st, &o->stamp, NULL, NULL, NULL));
		return;
	}
	ferry_field f[4];
	for (size_t i = 0; i < o->nfields; i++)
		f[i] = eh_field(o->names[i], &o->values[i]);
	CHECK_OK(merge_put(st, &o->stamp, f, o->nfields, NULL, NULL, NULL));
}

static void encode_order(msgpack_sbuffer *out, const op *ops,
			 const size_t *order, size_t n)
{
	merge_state st;
	merge_state_init(&st);
	for (size_t i = 0; i < n; i++)
		apply_op(&st, &ops[order[i]]);
	CHECK_OK(merge_state_encode(out, &st));
	merge_state_clear(&st);
}

static int next_permutation(size_t *a, size_t n)
{
	size_t i = n - 1;
	while (i > 0 && a[i - 1] >= a[i])
		i--;
	if (i == 0)
		return 0;
	size_t j = n - 1;
	while (a[j] <= a[i - 1])
		j--;
	size_t t = a[i - 1];
	a[i - 1] = a[j];
	a[j] = t;
	for (size_t l = i, r = n - 1; l < r; l++, r--) {
		t = a[l];
		a[l] = a[r];
		a[r] = t;
	}
	return 1;
}

static void check_same(const msgpack_sbuffer *ref, const msgpack_sbuffer *got,
		       uint64_t round)
{
	if (ref->size != got->size ||
	    memcmp(ref->data, got->data, ref->size) != 0)
		test_fail(__FILE__, __LINE__,
			  "order changed merged state in round %llu",
			  (unsigned long long)round);
}

static void test_order_independence(void)
{
	const uint64_t base = test_seed();
	for (uint64_t round = 0; round < 40; round++) {
		op ops[12];
		size_t order[24];
		msgpack_sbuffer ref, got;
		test_reseed(base + round);
		/* Exhaustive permutations for 6 operations, random orders
		 * with repetitions for 12. */
		size_t n = round % 2 ? 6 : 12;
		random_ops(ops, n);
		for (size_t i = 0; i < n; i++)
			order[i] = i;
		msgpack_sbuffer_init(&ref);
		encode_order(&ref, ops, order, n);
		if (n == 6) {
			while (next_permutation(order, n)) {
				msgpack_sbuffer_init(&got);
				encode_order(&got, ops, order, n);
				check_same(&ref, &got, round);
				msgpack_sbuffer_destroy(&got);
			}
		} else {
			for (int trial = 0; trial < 300; trial++) {
				/* Every op at least once, some twice. */
				size_t m = n + test_rand_below(n + 1);
				for (size_t i = 0; i < m; i++)
					order[i] =
						i < n ? i : test_rand_below(n);
				for (size_t i = m - 1; i > 0; i--) {
					size_t j = test_rand_below(i + 1);
					size_t t = order[i];
					order[i] = order[j];
					order[j] = t;
				}
				msgpack_sbuffer_init(&got);
				encode_order(&got, ops, order, m);
				check_same(&ref, &got, round);
				msgpack_sbuffer_destroy(&got);
			}
		}
		/* The encoding round-trips to the same bytes. */
		merge_state st;
		merge_state_init(&st);
		CHECK_OK(merge_state_decode(&st, ref.data, ref.size));
		msgpack_sbuffer_init(&got);
		CHECK_OK(merge_state_encode(&got, &st));
		check_same(&ref, &got, round);
		msgpack_sbuffer_destroy(&got);
		merge_state_clear(&st);
		msgpack_sbuffer_destroy(&ref);
	}
	test_reseed(base);
}

/* Loss reports, copied out of the callback. */
typedef struct loss_log {
	size_t n;
	char field[8][16];
	merge_stamp loser[8];
	merge_stamp winner[8];
	int had_value[8];
	eh_value value[8];
	int winner_is_delete[8];
} loss_log;

static void on_loss(const merge_loss *l, void *payload)
{
	loss_log *log = payload;
	CHECK(log->n < 8);
	size_t i = log->n++;
	snprintf(log->field[i], sizeof(log->field[i]), "%s",
		 l->field ? l->field : "");
	log->loser[i] = *l->loser;
	log->winner[i] = *l->winner;
	log->had_value[i] = l->loser_value != NULL;
	if (l->loser_value) {
		CHECK(l->loser_value_len <= sizeof(log->value[i].buf));
		memcpy(log->value[i].buf, l->loser_value, l->loser_value_len);
		log->value[i].len = l->loser_value_len;
	}
	log->winner_is_delete[i] = l->winner_is_delete;
}

static void test_on_loss(void)
{
	merge_state st;
	loss_log log;
	eh_value v1 = eh_str("10mg"), v2 = eh_str("20mg"), v3 = eh_str("5mg");
	ferry_field f;
	merge_stamp s;
	memset(&log, 0, sizeof(log));
	merge_state_init(&st);

	s = stamp(10, 1);
	f = eh_field("dose", &v1);
	CHECK_OK(merge_put(&st, &s, &f, 1, NULL, on_loss, &log));
	CHECK_EQ_U64(log.n, 0);

	/* A newer write from another origin: the old value is the loser. */
	s = stamp(20, 2);
	f = eh_field("dose", &v2);
	CHECK_OK(merge_put(&st, &s, &f, 1, NULL, on_loss, &log));
	CHECK_EQ_U64(log.n, 1);
	CHECK(!strcmp(log.field[0], "dose"));
	CHECK_EQ_U64(log.loser[0].hlc, 10);
	CHECK_EQ_U64(log.loser[0].origin[0], 1);
	CHECK_EQ_U64(log.winner[0].hlc, 20);
	CHECK_EQ_U64(log.winner[0].origin[0], 2);
	CHECK(log.had_value[0] && log.value[0].len == v1.len &&
	      !memcmp(log.value[0].buf, v1.buf, v1.len));
	CHECK(!log.winner_is_delete[0]);

	/* An older write from another origin arriving late: it is the
	 * loser. */
	s = stamp(15, 3);
	f = eh_field("dose", &v3);
	CHECK_OK(merge_put(&st, &s, &f, 1, NULL, on_loss, &log));
	CHECK_EQ_U64(log.n, 2);
	CHECK_EQ_U64(log.loser[1].hlc, 15);
	CHECK_EQ_U64(log.loser[1].origin[0], 3);
	CHECK_EQ_U64(log.winner[1].hlc, 20);
	CHECK(log.had_value[1] && log.value[1].len == v3.len &&
	      !memcmp(log.value[1].buf, v3.buf, v3.len));

	/* Same origin overwriting itself is an edit, not a conflict. */
	s = stamp(30, 2);
	f = eh_field("dose", &v1);
	CHECK_OK(merge_put(&st, &s, &f, 1, NULL, on_loss, &log));
	CHECK_EQ_U64(log.n, 2);

	/* Re-applying a held write reports nothing. */
	CHECK_OK(merge_put(&st, &s, &f, 1, NULL, on_loss, &log));
	CHECK_EQ_U64(log.n, 2);

	/* A delete from another origin wins over the live value. */
	s = stamp(40, 4);
	CHECK_OK(merge_delete(&st, &s, NULL, on_loss, &log));
	CHECK_EQ_U64(log.n, 3);
	CHECK(!strcmp(log.field[2], "dose"));
	CHECK_EQ_U64(log.loser[2].hlc, 30);
	CHECK_EQ_U64(log.winner[2].hlc, 40);
	CHECK(log.winner_is_delete[2]);
	CHECK(log.had_value[2] && log.value[2].len == v1.len &&
	      !memcmp(log.value[2].buf, v1.buf, v1.len));
	merge_state_clear(&st);
}

static void test_encode_decode(void)
{
	merge_state st, st2;
	eh_value v1 = eh_int(-3), v2 = eh_str("hello"), v3 = eh_int(100000);
	msgpack_sbuffer a, b;
	merge_state_init(&st);
	put1(&st, stamp(10, 1), "zeta", &v1, NULL);
	put1(&st, stamp(11, 2), "alpha", &v2, NULL);
	del(&st, stamp(5, 3), NULL);
	put1(&st, stamp(12, 3), "mid", &v3, NULL);
	CHECK_EQ_U64(st.nfields, 3);
	/* Sorted bytewise by name. */
	CHECK(!strcmp(st.fields[0].name, "alpha"));
	CHECK(!strcmp(st.fields[1].name, "mid"));
	CHECK(!strcmp(st.fields[2].name, "zeta"));

	msgpack_sbuffer_init(&a);
	msgpack_sbuffer_init(&b);
	CHECK_OK(merge_state_encode(&a, &st));
	merge_state_init(&st2);
	CHECK_OK(merge_state_decode(&st2, a.data, a.size));
	CHECK_EQ_U64(st2.nfields, 3);
	CHECK(st2.has_tombstone);
	CHECK_EQ_U64(st2.tombstone.hlc, 5);
	CHECK(field_is(&st2, "alpha", &v2));
	CHECK_EQ_U64(find(&st2, "alpha")->stamp.hlc, 11);
	CHECK(!memcmp(find(&st2, "mid")->stamp.origin,
		      st.fields[1].stamp.origin, FERRY_PUBLIC_KEY_BYTES));
	CHECK_OK(merge_state_encode(&b, &st2));
	CHECK(a.size == b.size && !memcmp(a.data, b.data, a.size));

	/* An empty state round-trips too. */
	merge_state empty;
	msgpack_sbuffer e;
	merge_state_init(&empty);
	msgpack_sbuffer_init(&e);
	CHECK_OK(merge_state_encode(&e, &empty));
	merge_state_clear(&empty);
	merge_state_init(&empty);
	CHECK_OK(merge_state_decode(&empty, e.data, e.size));
	CHECK(!merge_state_live(&empty));
	CHECK(!empty.has_tombstone);
	merge_state_clear(&empty);
	msgpack_sbuffer_destroy(&e);

	/* Garbage: every strict prefix, every trailing extension, flipped
	 * type bytes and random buffers are refused, never crash. */
	for (size_t len = 0; len < a.size; len++) {
		merge_state g;
		merge_state_init(&g);
		CHECK_ERR(merge_state_decode(&g, a.data, len), FERRY_E_CORRUPT);
		merge_state_clear(&g);
	}
	{
		char *longer = malloc(a.size + 1);
		CHECK(longer);
		memcpy(longer, a.data, a.size);
		longer[a.size] = 0;
		merge_state g;
		merge_state_init(&g);
		CHECK_ERR(merge_state_decode(&g, longer, a.size + 1),
			  FERRY_E_CORRUPT);
		merge_state_clear(&g);
		free(longer);
	}
	static const uint8_t fixed[][8] = {
		{0xc0},				/* nil */
		{0x01},				/* an integer */
		{0xdd, 0xff, 0xff, 0xff, 0xff}, /* array claiming 4G items */
		{0xdf, 0xff, 0xff, 0xff, 0xff}, /* map claiming 4G pairs */
		{0x93, 0xc0, 0xc0, 0xc0},	/* array of nils */
		{0xc1},				/* reserved byte */
	};
	static const size_t fixed_len[] = {1, 1, 5, 5, 4, 1};
	for (size_t i = 0; i < sizeof(fixed_len) / sizeof(fixed_len[0]); i++) {
		merge_state g;
		merge_state_init(&g);
		CHECK_ERR(merge_state_decode(&g, fixed[i], fixed_len[i]),
			  FERRY_E_CORRUPT);
		merge_state_clear(&g);
	}
	for (int trial = 0; trial < 2000; trial++) {
		uint8_t buf[64];
		size_t len = 1 + test_rand_below(sizeof(buf));
		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)test_rand();
		merge_state g;
		merge_state_init(&g);
		int err = merge_state_decode(&g, buf, len);
		CHECK(err == FERRY_E_CORRUPT || err == FERRY_OK);
		merge_state_clear(&g);
	}
	/* Flip each byte of a real encoding: must decode or be refused. */
	for (size_t i = 0; i < a.size; i++) {
		char *mut = malloc(a.size);
		CHECK(mut);
		memcpy(mut, a.data, a.size);
		mut[i] ^= 0x5a;
		merge_state g;
		merge_state_init(&g);
		int err = merge_state_decode(&g, mut, a.size);
		CHECK(err == FERRY_E_CORRUPT || err == FERRY_OK);
		merge_state_clear(&g);
		free(mut);
	}

	msgpack_sbuffer_destroy(&a);
	msgpack_sbuffer_destroy(&b);
	merge_state_clear(&st);
	merge_state_clear(&st2);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	test_stamp_cmp();
	test_later_wins();
	test_tie_origin();
	test_idempotent();
	test_tombstones();
	test_order_independence();
	test_on_loss();
	test_encode_decode();
	printf("merge_test: ok\n");
	return 0;
}
