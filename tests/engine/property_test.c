/*
 * property_test.c — convergence under any delivery order.
 *
 * Four nodes in one process write conflicting changes (a handful of fields
 * over a few scopes, collections and keys, so collisions are the rule) and
 * sync pairwise in random order, with batches sometimes delivered twice,
 * shuffled (a batch that does not link yet fails with FERRY_E_GAP and is
 * retried), or dropped and resent later. After a full mesh sync every node
 * must hold the same digest, every change exactly once, and records equal to
 * a reference merge computed here, independently of the engine, from the
 * (hlc, origin) each change got on its origin node (read back through
 * ferry_changes after each commit).
 *
 * Several seeds per run: the first is test_seed(), the next ones follow it,
 * each printed; `--seed S` repeats a run starting at S, `--seeds N` changes
 * how many seeds run.
 */
#include <stdbool.h>
#include <string.h>

#include <msgpack.h>

#include "testing.h"

#define NNODES 4
#define NSCOPES 3
#define NCOLLS 3
#define NKEYS 20
#define NFIELDS 5
#define ROUNDS 100
#define MAX_WRITES_PER_TXN 25
#define DEFAULT_SEEDS 4
#define MAX_SEEDS 32

static const char *const scope_names[NSCOPES] = {"clinic-1", "clinic-2",
						 "shared"};
static const char *const coll_names[NCOLLS] = {"clients", "patients",
					       "invoices"};
static const char *const field_names[NFIELDS] = {"age", "name", "notes", "tags",
						 "vet"};

typedef struct mval {
	uint8_t *buf;
	size_t len;
} mval;

/* One change as the model remembers it, indexed by its chain position. */
typedef struct mchange {
	ferry_hlc hlc;
	int coll, key;
	ferry_op op;
	unsigned mask; /* fields set, bit i = field_names[i] */
	mval val[NFIELDS];
} mchange;

typedef struct chain {
	mchange *v;
	size_t n, cap;
} chain;

typedef struct mfield {
	bool has;
	ferry_hlc hlc;
	int origin;
	mval val;
} mfield;

/* The reference merge of one record: the newest tombstone and, per field,
 * the newest write; a field is live only if newer than the tombstone. */
typedef struct mrecord {
	bool has_tomb;
	ferry_hlc tomb_hlc;
	int tomb_origin;
	mfield f[NFIELDS];
} mrecord;

/* A write the test asked for, to compare with what the log recorded. */
typedef struct intent {
	int scope, coll, key;
	ferry_op op;
	unsigned mask;
	mval val[NFIELDS];
} intent;

typedef struct blob {
	void *buf;
	size_t len;
	uint64_t nchanges;
} blob;

typedef struct queue {
	blob *v;
	size_t n, cap;
} queue;

typedef struct world {
	char doing[128]; /* what the test is doing, for failure messages */
	ferry_node *node[NNODES];
	uint8_t id[NNODES][FERRY_PUBLIC_KEY_BYTES];
	uint64_t cursor[NNODES];   /* last cursor observed per node */
	ferry_hlc max_hlc[NNODES]; /* newest stamp each node holds */
	chain chains[NNODES][NSCOPES];
	mrecord rec[NSCOPES][NCOLLS][NKEYS];
	queue late[NNODES]; /* dropped batches, resent later */
	uint64_t total;	    /* changes written by all nodes */
	uint64_t gaps;	    /* FERRY_E_GAP refusals seen (expected) */
	uint64_t dup_applies;
} world;

static world w;

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	CHECK(p != NULL);
	return p;
}

static mval mval_dup(const void *buf, size_t len)
{
	mval v = {xmalloc(len), len};
	memcpy(v.buf, buf, len);
	return v;
}

static void mval_free(mval *v)
{
	free(v->buf);
	v->buf = NULL;
	v->len = 0;
}

static void queue_push(queue *q, blob b)
{
	if (q->n == q->cap) {
		q->cap = q->cap ? 2 * q->cap : 16;
		q->v = realloc(q->v, q->cap * sizeof(*q->v));
		CHECK(q->v != NULL);
	}
	q->v[q->n++] = b;
}

/* Order of two writes: by HLC, then by origin id bytes. */
static int stamp_cmp(ferry_hlc ha, int oa, ferry_hlc hb, int ob)
{
	if (ha != hb)
		return ha < hb ? -1 : 1;
	return memcmp(w.id[oa], w.id[ob], FERRY_PUBLIC_KEY_BYTES);
}

static int origin_index(const uint8_t *id)
{
	for (int i = 0; i < NNODES; i++)
		if (!memcmp(w.id[i], id, FERRY_PUBLIC_KEY_BYTES))
			return i;
	return -1;
}

static int name_index(const char *const *names, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(names[i], name))
			return i;
	return -1;
}

static int key_index(const char *key)
{
	char *end = NULL;
	if (key[0] != 'k')
		return -1;
	long k = strtol(key + 1, &end, 10);
	if (*end || k < 0 || k >= NKEYS)
		return -1;
	return (int)k;
}

static void key_name(char out[16], int k)
{
	snprintf(out, 16, "k%02d", k);
}

static bool msgpack_same(const void *a, size_t alen, const void *b, size_t blen)
{
	msgpack_unpacked ua, ub;
	size_t oa = 0, ob = 0;
	bool same = false;
	msgpack_unpacked_init(&ua);
	msgpack_unpacked_init(&ub);
	if (msgpack_unpack_next(&ua, a, alen, &oa) == MSGPACK_UNPACK_SUCCESS &&
	    msgpack_unpack_next(&ub, b, blen, &ob) == MSGPACK_UNPACK_SUCCESS &&
	    oa == alen && ob == blen)
		same = msgpack_object_equal(ua.data, ub.data);
	msgpack_unpacked_destroy(&ua);
	msgpack_unpacked_destroy(&ub);
	return same;
}

/* A random value: ints of every width and sign, strings (some past the
 * fixstr size), nil, booleans and nested arrays. */
static void gen_value(msgpack_packer *pk, int depth)
{
	static const char alphabet[] =
		"abcdefghijklmnopqrstuvwxyz ._-0123456789";
	char s[64];
	size_t len;

	switch (test_rand_below(depth < 2 ? 7 : 6)) {
	case 0:
		msgpack_pack_nil(pk);
		break;
	case 1:
		msgpack_pack_uint64(pk, test_rand() >> test_rand_below(64));
		break;
	case 2:
		msgpack_pack_int64(pk, -(int64_t)(test_rand() >>
						  (1 + test_rand_below(63))));
		break;
	case 3:
	case 4:
		len = test_rand_below(4) ? test_rand_below(12)
					 : 20 + test_rand_below(40);
		for (size_t i = 0; i < len; i++)
			s[i] = alphabet[test_rand_below(sizeof(alphabet) - 1)];
		msgpack_pack_str_with_body(pk, s, len);
		break;
	case 5:
		if (test_rand_below(2))
			msgpack_pack_true(pk);
		else
			msgpack_pack_false(pk);
		break;
	default: {
		size_t n = test_rand_below(5);
		msgpack_pack_array(pk, n);
		for (size_t i = 0; i < n; i++)
			gen_value(pk, depth + 1);
		break;
	}
	}
}

/* ------------------------------------------------------------------------ */
/* The reference merge                                                      */
/* ------------------------------------------------------------------------ */

static void model_apply(int origin, int scope, const mchange *c)
{
	mrecord *r = &w.rec[scope][c->coll][c->key];
	if (c->op == FERRY_OP_DELETE) {
		if (!r->has_tomb || stamp_cmp(c->hlc, origin, r->tomb_hlc,
					      r->tomb_origin) > 0) {
			r->has_tomb = true;
			r->tomb_hlc = c->hlc;
			r->tomb_origin = origin;
		}
		return;
	}
	for (int f = 0; f < NFIELDS; f++) {
		mfield *mf = &r->f[f];
		if (!(c->mask & (1u << f)))
			continue;
		if (mf->has &&
		    stamp_cmp(c->hlc, origin, mf->hlc, mf->origin) <= 0)
			continue;
		mval_free(&mf->val);
		mf->has = true;
		mf->hlc = c->hlc;
		mf->origin = origin;
		mf->val = mval_dup(c->val[f].buf, c->val[f].len);
	}
}

static bool model_field_live(const mrecord *r, int f)
{
	const mfield *mf = &r->f[f];
	return mf->has &&
	       (!r->has_tomb || stamp_cmp(mf->hlc, mf->origin, r->tomb_hlc,
					  r->tomb_origin) > 0);
}

static int model_live_fields(const mrecord *r)
{
	int n = 0;
	for (int f = 0; f < NFIELDS; f++)
		n += model_field_live(r, f);
	return n;
}

/* ------------------------------------------------------------------------ */
/* Reading logs back                                                        */
/* ------------------------------------------------------------------------ */

enum observe_mode {
	OBS_COMMIT, /* new changes are the committing node's own writes */
	OBS_SYNC,   /* new changes must all be known already */
	OBS_FINAL   /* the whole log: every change exactly once */
};

typedef struct observe_ctx {
	int node;
	enum observe_mode mode;
	const intent *intents;
	size_t nintents;
	size_t next[NSCOPES]; /* next intent to match, per scope */
	size_t matched;
	ferry_hlc floor; /* own new stamps must exceed this */
	uint64_t last_cursor;
	uint64_t seen;
	uint8_t *held[NNODES][NSCOPES]; /* OBS_FINAL: seqs seen */
} observe_ctx;

static void check_same_change(const observe_ctx *ctx, const ferry_change *c,
			      const mchange *m, int coll, int key,
			      unsigned mask, const mval *vals)
{
	if (m->hlc != c->hlc || m->coll != coll || m->key != key ||
	    m->op != c->op || m->mask != mask)
		test_fail(__FILE__, __LINE__,
			  "node %d: change %s/%s seq %llu differs from its "
			  "origin's (hlc %llx vs %llx, op %d vs %d)",
			  ctx->node, c->scope, c->key,
			  (unsigned long long)c->seq,
			  (unsigned long long)c->hlc,
			  (unsigned long long)m->hlc, c->op, m->op);
	for (int f = 0; f < NFIELDS; f++)
		if ((mask & (1u << f)) &&
		    (vals[f].len != m->val[f].len ||
		     memcmp(vals[f].buf, m->val[f].buf, vals[f].len)))
			test_fail(__FILE__, __LINE__,
				  "node %d: change %s/%s seq %llu field %s: "
				  "value differs from the origin's",
				  ctx->node, c->scope, c->key,
				  (unsigned long long)c->seq, field_names[f]);
}

static void match_intent(observe_ctx *ctx, const ferry_change *c, int scope,
			 int coll, int key, unsigned mask, const mval *vals)
{
	size_t i = ctx->next[scope];
	while (i < ctx->nintents && ctx->intents[i].scope != scope)
		i++;
	if (i == ctx->nintents)
		test_fail(__FILE__, __LINE__,
			  "node %d: log has more writes in %s than committed",
			  ctx->node, c->scope);
	const intent *in = &ctx->intents[i];
	ctx->next[scope] = i + 1;
	ctx->matched++;
	if (in->coll != coll || in->key != key || in->op != c->op ||
	    in->mask != mask)
		test_fail(__FILE__, __LINE__,
			  "node %d: write %zu logged as %s/%s/%s op %d mask %x,"
			  " committed as %s/%s/k%02d op %d mask %x",
			  ctx->node, i, c->scope, c->collection, c->key, c->op,
			  mask, scope_names[in->scope], coll_names[in->coll],
			  in->key, in->op, in->mask);
	for (int f = 0; f < NFIELDS; f++)
		if ((mask & (1u << f)) &&
		    !msgpack_same(vals[f].buf, vals[f].len, in->val[f].buf,
				  in->val[f].len))
			test_fail(__FILE__, __LINE__,
				  "node %d: write %zu field %s: logged value "
				  "is not the committed one",
				  ctx->node, i, field_names[f]);
}

static int observe_cb(const ferry_change *c, void *payload)
{
	observe_ctx *ctx = payload;
	mval vals[NFIELDS] = {{0}};
	unsigned mask = 0;

	if (c->cursor <= ctx->last_cursor)
		test_fail(__FILE__, __LINE__, "node %d: cursor %llu after %llu",
			  ctx->node, (unsigned long long)c->cursor,
			  (unsigned long long)ctx->last_cursor);
	ctx->last_cursor = c->cursor;
	ctx->seen++;

	int o = origin_index(c->origin);
	int s = name_index(scope_names, NSCOPES, c->scope);
	int coll = name_index(coll_names, NCOLLS, c->collection);
	int key = key_index(c->key);
	if (o < 0 || s < 0 || coll < 0 || key < 0 || c->seq == 0)
		test_fail(__FILE__, __LINE__,
			  "node %d: change from an unknown place: %s/%s/%s "
			  "seq %llu",
			  ctx->node, c->scope, c->collection, c->key,
			  (unsigned long long)c->seq);
	if (c->op == FERRY_OP_PUT) {
		CHECK(c->nfields > 0);
		for (size_t i = 0; i < c->nfields; i++) {
			int f = name_index(field_names, NFIELDS,
					   c->fields[i].name);
			CHECK(f >= 0);
			CHECK(!(mask & (1u << f)));
			mask |= 1u << f;
			vals[f].buf = (uint8_t *)c->fields[i].value;
			vals[f].len = c->fields[i].value_len;
		}
	} else {
		CHECK(c->op == FERRY_OP_DELETE);
		CHECK(c->nfields == 0);
	}

	chain *ch = &w.chains[o][s];
	if (c->seq <= ch->n) {
		check_same_change(ctx, c, &ch->v[c->seq - 1], coll, key, mask,
				  vals);
		if (ctx->mode == OBS_FINAL) {
			uint8_t *held = ctx->held[o][s];
			if (held[c->seq - 1])
				test_fail(__FILE__, __LINE__,
					  "node %d holds %s seq %llu of origin "
					  "%d twice",
					  ctx->node, c->scope,
					  (unsigned long long)c->seq, o);
			held[c->seq - 1] = 1;
		}
	} else if (ctx->mode == OBS_COMMIT && o == ctx->node &&
		   c->seq == ch->n + 1) {
		match_intent(ctx, c, s, coll, key, mask, vals);
		/* HLC: a local write is newer than everything the node has
		 * issued or received, so it wins over what it overwrites. */
		if (c->hlc <= ctx->floor)
			test_fail(__FILE__, __LINE__,
				  "node %d: new stamp %llx not above %llx",
				  ctx->node, (unsigned long long)c->hlc,
				  (unsigned long long)ctx->floor);
		if (ch->n > 0 && c->hlc <= ch->v[ch->n - 1].hlc)
			test_fail(__FILE__, __LINE__,
				  "node %d: chain %s stamps not increasing",
				  ctx->node, c->scope);
		if (ch->n == ch->cap) {
			ch->cap = ch->cap ? 2 * ch->cap : 64;
			ch->v = realloc(ch->v, ch->cap * sizeof(*ch->v));
			CHECK(ch->v != NULL);
		}
		mchange *m = &ch->v[ch->n++];
		memset(m, 0, sizeof(*m));
		m->hlc = c->hlc;
		m->coll = coll;
		m->key = key;
		m->op = c->op;
		m->mask = mask;
		for (int f = 0; f < NFIELDS; f++)
			if (mask & (1u << f))
				m->val[f] = mval_dup(vals[f].buf, vals[f].len);
		model_apply(o, s, m);
		w.total++;
	} else {
		test_fail(__FILE__, __LINE__,
			  "node %d: unexpected change origin %d %s seq %llu "
			  "(origin has %zu)",
			  ctx->node, o, c->scope, (unsigned long long)c->seq,
			  ch->n);
	}
	if (c->hlc > w.max_hlc[ctx->node])
		w.max_hlc[ctx->node] = c->hlc;
	return 0;
}

/* Read node `n`'s log from its last observed cursor. */
static void observe(int n, observe_ctx *ctx)
{
	ctx->node = n;
	ctx->last_cursor = w.cursor[n];
	CHECK_NODE_OK(w.node[n], ferry_changes(w.node[n], w.cursor[n], 0,
					       observe_cb, ctx));
	w.cursor[n] = ctx->last_cursor;
}

/* ------------------------------------------------------------------------ */
/* Writes                                                                   */
/* ------------------------------------------------------------------------ */

static void random_commit(int n)
{
	intent in[MAX_WRITES_PER_TXN];
	size_t nw = 1 + test_rand_below(MAX_WRITES_PER_TXN);
	ferry_txn *txn = NULL;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	char key[16];

	CHECK_NODE_OK(w.node[n], ferry_txn_begin(&txn, w.node[n]));
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	for (size_t i = 0; i < nw; i++) {
		intent *it = &in[i];
		memset(it, 0, sizeof(*it));
		it->scope = (int)test_rand_below(NSCOPES);
		it->coll = (int)test_rand_below(NCOLLS);
		it->key = (int)test_rand_below(NKEYS);
		key_name(key, it->key);
		if (test_rand_below(100) < 15) {
			it->op = FERRY_OP_DELETE;
			CHECK_NODE_OK(
				w.node[n],
				ferry_txn_delete(txn, scope_names[it->scope],
						 coll_names[it->coll], key));
			continue;
		}
		it->op = FERRY_OP_PUT;
		/* Mostly one or two fields, so fields of one record are
		 * often written by different nodes. */
		do
			it->mask = (unsigned)test_rand_below(1u << NFIELDS) &
				   (unsigned)test_rand_below(1u << NFIELDS);
		while (!it->mask);
		ferry_field fields[NFIELDS];
		size_t nf = 0;
		for (int f = 0; f < NFIELDS; f++) {
			if (!(it->mask & (1u << f)))
				continue;
			msgpack_sbuffer_clear(&sb);
			gen_value(&pk, 0);
			it->val[f] = mval_dup(sb.data, sb.size);
			fields[nf].name = field_names[f];
			fields[nf].value = it->val[f].buf;
			fields[nf].value_len = it->val[f].len;
			nf++;
		}
		CHECK_NODE_OK(w.node[n],
			      ferry_txn_put(txn, scope_names[it->scope],
					    coll_names[it->coll], key, fields,
					    nf));
	}
	msgpack_sbuffer_destroy(&sb);
	CHECK_NODE_OK(w.node[n], ferry_txn_commit(txn));

	observe_ctx ctx;
	memset(&ctx, 0, sizeof(ctx));
	ctx.mode = OBS_COMMIT;
	ctx.intents = in;
	ctx.nintents = nw;
	ctx.floor = w.max_hlc[n];
	observe(n, &ctx);
	if (ctx.matched != nw || ctx.seen != nw)
		test_fail(__FILE__, __LINE__,
			  "node %d: committed %zu writes, log shows %zu new "
			  "(%llu entries)",
			  n, nw, ctx.matched, (unsigned long long)ctx.seen);
	for (size_t i = 0; i < nw; i++)
		for (int f = 0; f < NFIELDS; f++)
			mval_free(&in[i].val[f]);
}

/* ------------------------------------------------------------------------ */
/* Sync with unreliable delivery                                            */
/* ------------------------------------------------------------------------ */

enum delivery {
	DELIVER_IN_ORDER,
	DELIVER_DUPLICATED,
	DELIVER_SHUFFLED,
	DELIVER_DROPPED,
	DELIVERY_MODES
};

static const char *const delivery_names[] = {"in-order", "duplicated",
					     "shuffled", "dropped"};

/* Apply one batch to node `to`. With `allow_gap`, FERRY_E_GAP is returned
 * (a batch that does not link yet); every other failure ends the test. */
static int apply_blob(int to, const blob *b, int allow_gap,
		      ferry_apply_stats *stats_out)
{
	ferry_apply_stats st;
	memset(&st, 0, sizeof(st));
	int err = ferry_sync_apply(w.node[to], b->buf, b->len, &st);
	if (err == FERRY_E_GAP && allow_gap) {
		w.gaps++;
		return err;
	}
	if (err)
		test_fail(__FILE__, __LINE__,
			  "%s: ferry_sync_apply on node %d (%zu bytes, %llu "
			  "changes): %s: %s",
			  w.doing, to, b->len, (unsigned long long)b->nchanges,
			  ferry_err_name(err), ferry_node_errmsg(w.node[to]));
	if (st.changes_applied + st.changes_duplicate != b->nchanges)
		test_fail(__FILE__, __LINE__,
			  "%s: node %d: batch of %llu changes: %llu applied + "
			  "%llu duplicate",
			  w.doing, to, (unsigned long long)b->nchanges,
			  (unsigned long long)st.changes_applied,
			  (unsigned long long)st.changes_duplicate);
	if (stats_out)
		*stats_out = st;
	return 0;
}

static void export_batches(int from, int to, queue *out)
{
	ferry_export_options eo = FERRY_EXPORT_OPTIONS_INIT;
	ferry_vector *vec = NULL;
	ferry_export *exp = NULL;

	if (test_rand_below(2))
		eo.batch_bytes = 2048 + test_rand_below(6 * 1024);
	/* Now and then the sender does not know what the receiver holds and
	 * resends everything: all of it is duplicate but for what is new. */
	if (test_rand_below(10))
		CHECK_NODE_OK(w.node[to], ferry_vector_get(&vec, w.node[to]));
	CHECK_NODE_OK(w.node[from],
		      ferry_export_begin(&exp, w.node[from], vec, &eo));
	for (;;) {
		blob b = {NULL, 0, 0};
		int err = ferry_export_next(exp, &b.buf, &b.len, &b.nchanges);
		if (err == FERRY_E_DONE)
			break;
		CHECK_NODE_OK(w.node[from], err);
		CHECK(b.buf != NULL && b.len > 0 && b.nchanges > 0);
		queue_push(out, b);
	}
	CHECK_EQ_U64(ferry_export_remaining(exp), 0);
	ferry_export_free(exp);
	ferry_vector_free(vec);
}

/* Apply every batch in `q` in its order, retrying those refused with
 * FERRY_E_GAP until all are in. Each pass must make progress: the batch
 * that links next always applies. */
static void apply_until_done(int to, queue *q)
{
	size_t left = q->n;
	bool *done = calloc(q->n ? q->n : 1, sizeof(bool));
	CHECK(done != NULL);
	while (left) {
		size_t progress = 0;
		for (size_t i = 0; i < q->n; i++) {
			if (done[i] || apply_blob(to, &q->v[i], 1, NULL))
				continue;
			done[i] = true;
			left--;
			progress++;
		}
		if (!progress)
			test_fail(__FILE__, __LINE__,
				  "node %d: %zu batches never link", to, left);
	}
	free(done);
}

static void sync_pair(int from, int to)
{
	queue q = {NULL, 0, 0};
	enum delivery mode = (enum delivery)test_rand_below(DELIVERY_MODES);
	ferry_apply_stats st;

	export_batches(from, to, &q);
	snprintf(w.doing, sizeof(w.doing), "sync %d->%d, %zu batches %s", from,
		 to, q.n, delivery_names[mode]);
	switch (mode) {
	case DELIVER_IN_ORDER:
		for (size_t i = 0; i < q.n; i++)
			apply_blob(to, &q.v[i], 0, NULL);
		break;
	case DELIVER_DUPLICATED:
		for (size_t i = 0; i < q.n; i++) {
			apply_blob(to, &q.v[i], 0, NULL);
			/* Again, now or after a later batch: nothing new. */
			size_t j = i - test_rand_below(i + 1);
			if (test_rand_below(2)) {
				apply_blob(to, &q.v[j], 0, &st);
				CHECK_EQ_U64(st.changes_applied, 0);
				w.dup_applies++;
			}
		}
		break;
	case DELIVER_SHUFFLED:
		for (size_t i = q.n; i > 1; i--) {
			size_t j = test_rand_below(i);
			blob t = q.v[i - 1];
			q.v[i - 1] = q.v[j];
			q.v[j] = t;
		}
		apply_until_done(to, &q);
		break;
	case DELIVER_DROPPED:
		/* A dropped batch makes the ones after it refuse with a gap
		 * (or not, if they carry other chains); both wait in the late
		 * queue, resent at a later round. */
		for (size_t i = 0; i < q.n; i++) {
			if (test_rand_below(4) == 0 ||
			    apply_blob(to, &q.v[i], 1, NULL)) {
				queue_push(&w.late[to], q.v[i]);
				q.v[i].buf = NULL;
			}
		}
		break;
	default:
		CHECK(0);
	}
	for (size_t i = 0; i < q.n; i++)
		free(q.v[i].buf);
	free(q.v);

	observe_ctx ctx;
	memset(&ctx, 0, sizeof(ctx));
	ctx.mode = OBS_SYNC;
	observe(to, &ctx);
}

/* Resend dropped batches. Unless `final`, those that still do not link
 * stay queued; at the end (after a full sync) each must apply and bring
 * nothing new. */
static void deliver_late(int final)
{
	for (int n = 0; n < NNODES; n++) {
		queue *q = &w.late[n];
		size_t keep = 0;
		for (size_t i = 0; i < q->n; i++) {
			ferry_apply_stats st;
			if (apply_blob(n, &q->v[i], !final, &st)) {
				q->v[keep++] = q->v[i];
				continue;
			}
			if (final)
				CHECK_EQ_U64(st.changes_applied, 0);
			free(q->v[i].buf);
		}
		q->n = keep;
		observe_ctx ctx;
		memset(&ctx, 0, sizeof(ctx));
		ctx.mode = OBS_SYNC;
		observe(n, &ctx);
	}
}

/* ------------------------------------------------------------------------ */
/* Final checks                                                             */
/* ------------------------------------------------------------------------ */

static void check_field(int n, const char *where, const ferry_field_info *fi,
			const mrecord *r, int f)
{
	const mfield *mf = &r->f[f];
	if (fi->hlc != mf->hlc ||
	    memcmp(fi->origin, w.id[mf->origin], FERRY_PUBLIC_KEY_BYTES) ||
	    fi->value_len != mf->val.len ||
	    memcmp(fi->value, mf->val.buf, mf->val.len))
		test_fail(__FILE__, __LINE__,
			  "node %d: %s field %s: hlc %llx origin %d, reference "
			  "merge has hlc %llx origin %d (values %s)",
			  n, where, field_names[f], (unsigned long long)fi->hlc,
			  origin_index(fi->origin), (unsigned long long)mf->hlc,
			  mf->origin,
			  fi->value_len == mf->val.len &&
					  !memcmp(fi->value, mf->val.buf,
						  mf->val.len)
				  ? "equal"
				  : "differ");
}

static void check_record(int n, const ferry_record *rec, int s, int c, int k)
{
	const mrecord *r = &w.rec[s][c][k];
	char where[256];
	snprintf(where, sizeof(where), "%s/%s/k%02d", scope_names[s],
		 coll_names[c], k);
	size_t nf = ferry_record_field_count(rec);
	if (nf != (size_t)model_live_fields(r))
		test_fail(__FILE__, __LINE__,
			  "node %d: %s has %zu live fields, reference merge "
			  "%d",
			  n, where, nf, model_live_fields(r));
	const char *prev = NULL;
	for (size_t i = 0; i < nf; i++) {
		ferry_field_info fi;
		ferry_record_field(rec, i, &fi);
		int f = name_index(field_names, NFIELDS, fi.name);
		if (f < 0 || !model_field_live(r, f))
			test_fail(__FILE__, __LINE__,
				  "node %d: %s: field %s should not be live", n,
				  where, fi.name);
		if (prev && strcmp(prev, fi.name) >= 0)
			test_fail(__FILE__, __LINE__,
				  "node %d: %s: fields not sorted", n, where);
		prev = fi.name;
		check_field(n, where, &fi, r, f);
		const ferry_field_info *found = ferry_record_find(rec, fi.name);
		CHECK(found != NULL && found->hlc == fi.hlc);
	}
}

typedef struct scan_ctx {
	int node, scope, coll;
	int last_key;
	uint64_t count;
} scan_ctx;

static int scan_cb(const ferry_record *rec, void *payload)
{
	scan_ctx *sc = payload;
	int k = key_index(ferry_record_key(rec));
	CHECK(k >= 0);
	CHECK(!strcmp(ferry_record_scope(rec), scope_names[sc->scope]));
	CHECK(!strcmp(ferry_record_collection(rec), coll_names[sc->coll]));
	if (k <= sc->last_key)
		test_fail(__FILE__, __LINE__,
			  "node %d: scan out of key order (k%02d after k%02d)",
			  sc->node, k, sc->last_key);
	sc->last_key = k;
	sc->count++;
	if (!model_live_fields(&w.rec[sc->scope][sc->coll][k]))
		test_fail(__FILE__, __LINE__,
			  "node %d: scan shows %s/%s/k%02d, reference merge "
			  "has no live field",
			  sc->node, scope_names[sc->scope],
			  coll_names[sc->coll], k);
	check_record(sc->node, rec, sc->scope, sc->coll, k);
	return 0;
}

static void check_node_records(int n)
{
	ferry_node *node = w.node[n];
	char key[16];
	for (int s = 0; s < NSCOPES; s++) {
		for (int c = 0; c < NCOLLS; c++) {
			uint64_t live = 0, count = 0;
			for (int k = 0; k < NKEYS; k++) {
				const mrecord *r = &w.rec[s][c][k];
				ferry_record *rec = NULL;
				key_name(key, k);
				int err = ferry_get(&rec, node, scope_names[s],
						    coll_names[c], key);
				if (!model_live_fields(r)) {
					if (err != FERRY_E_NOT_FOUND)
						test_fail(
							__FILE__, __LINE__,
							"node %d: get %s/%s/%s"
							": %s, reference merge"
							" has no live field",
							n, scope_names[s],
							coll_names[c], key,
							ferry_err_name(err));
					CHECK(rec == NULL);
					continue;
				}
				live++;
				CHECK_NODE_OK(node, err);
				check_record(n, rec, s, c, k);
				ferry_record_free(rec);
			}
			scan_ctx sc = {n, s, c, -1, 0};
			CHECK_NODE_OK(node, ferry_scan(node, scope_names[s],
						       coll_names[c], NULL,
						       scan_cb, &sc));
			CHECK_EQ_U64(sc.count, live);
			CHECK_NODE_OK(node,
				      ferry_count(&count, node, scope_names[s],
						  coll_names[c]));
			CHECK_EQ_U64(count, live);
		}
	}
}

static void check_node_log(int n)
{
	observe_ctx ctx;
	memset(&ctx, 0, sizeof(ctx));
	ctx.mode = OBS_FINAL;
	for (int o = 0; o < NNODES; o++)
		for (int s = 0; s < NSCOPES; s++)
			ctx.held[o][s] = calloc(w.chains[o][s].n + 1, 1);
	w.cursor[n] = 0;
	observe(n, &ctx);
	CHECK_EQ_U64(ctx.seen, w.total);
	for (int o = 0; o < NNODES; o++)
		for (int s = 0; s < NSCOPES; s++) {
			for (size_t i = 0; i < w.chains[o][s].n; i++)
				if (!ctx.held[o][s][i])
					test_fail(__FILE__, __LINE__,
						  "node %d lacks origin %d %s "
						  "seq %zu",
						  n, o, scope_names[s], i + 1);
			free(ctx.held[o][s]);
		}

	ferry_status st;
	CHECK_NODE_OK(w.node[n], ferry_status_get(&st, w.node[n]));
	CHECK_EQ_U64(st.changes, w.total);

	/* The vector names every chain at its full length. */
	ferry_vector *vec = NULL;
	size_t nchains = 0;
	CHECK_NODE_OK(w.node[n], ferry_vector_get(&vec, w.node[n]));
	for (size_t i = 0; i < ferry_vector_count(vec); i++) {
		ferry_vector_entry e;
		ferry_vector_at(vec, i, &e);
		int o = origin_index(e.origin);
		int s = name_index(scope_names, NSCOPES, e.scope);
		CHECK(o >= 0 && s >= 0);
		CHECK_EQ_U64(e.seq, w.chains[o][s].n);
		nchains++;
	}
	for (int o = 0; o < NNODES; o++)
		for (int s = 0; s < NSCOPES; s++)
			if (w.chains[o][s].n)
				nchains--;
	CHECK_EQ_U64(nchains, 0);
	ferry_vector_free(vec);

	ferry_verify_report rep;
	CHECK_NODE_OK(w.node[n], ferry_verify(w.node[n], &rep));
	CHECK_EQ_U64(rep.changes, w.total);
}

/* Pairwise syncs over all ordered pairs until a whole pass brings nothing
 * new. Everything has spread after two passes; allow a few more. */
static void mesh_sync(void)
{
	for (int pass = 0;; pass++) {
		uint64_t applied = 0;
		if (pass == 6)
			test_fail(__FILE__, __LINE__,
				  "mesh sync not quiescent");
		for (int i = 0; i < NNODES; i++)
			for (int j = 0; j < NNODES; j++)
				if (i != j)
					applied += test_sync_oneway(w.node[i],
								    w.node[j]);
		if (!applied)
			break;
	}
	for (int n = 0; n < NNODES; n++) {
		observe_ctx ctx;
		memset(&ctx, 0, sizeof(ctx));
		ctx.mode = OBS_SYNC;
		observe(n, &ctx);
	}
}

/* ------------------------------------------------------------------------ */
/* One seed                                                                 */
/* ------------------------------------------------------------------------ */

static void world_free(void)
{
	for (int n = 0; n < NNODES; n++) {
		for (size_t i = 0; i < w.late[n].n; i++)
			free(w.late[n].v[i].buf);
		free(w.late[n].v);
		for (int s = 0; s < NSCOPES; s++) {
			chain *ch = &w.chains[n][s];
			for (size_t i = 0; i < ch->n; i++)
				for (int f = 0; f < NFIELDS; f++)
					mval_free(&ch->v[i].val[f]);
			free(ch->v);
		}
		if (w.node[n])
			ferry_node_close(w.node[n]);
	}
	for (int s = 0; s < NSCOPES; s++)
		for (int c = 0; c < NCOLLS; c++)
			for (int k = 0; k < NKEYS; k++)
				for (int f = 0; f < NFIELDS; f++)
					mval_free(&w.rec[s][c][k].f[f].val);
	memset(&w, 0, sizeof(w));
}

static void run_seed(uint64_t seed)
{
	char name[64], dir[4200];
	ferry_node_options opts = test_node_options(0);

	printf("property_test: seed %llu\n", (unsigned long long)seed);
	test_reseed(seed);
	memset(&w, 0, sizeof(w));
	snprintf(name, sizeof(name), "property-%llu", (unsigned long long)seed);
	const char *base = test_tmpdir(name);
	for (int n = 0; n < NNODES; n++) {
		char *detail = NULL;
		snprintf(dir, sizeof(dir), "%s/node%d", base, n);
		int err = ferry_node_open(&w.node[n], dir, &opts, &detail);
		if (err)
			test_fail(__FILE__, __LINE__, "open %s: %s: %s", dir,
				  ferry_err_name(err), detail ? detail : "");
		memcpy(w.id[n], ferry_node_id(w.node[n]),
		       FERRY_PUBLIC_KEY_BYTES);
	}

	for (int round = 0; round < ROUNDS; round++) {
		/* Writes: a few nodes, each in a few commits of its own. */
		size_t writers = 1 + test_rand_below(NNODES);
		for (size_t i = 0; i < writers; i++) {
			int n = (int)test_rand_below(NNODES);
			size_t commits = 1 + test_rand_below(4);
			for (size_t c = 0; c < commits; c++)
				random_commit(n);
		}
		snprintf(w.doing, sizeof(w.doing), "round %d: resend dropped",
			 round);
		if (test_rand_below(3) == 0)
			deliver_late(0);
		/* Pairwise syncs in random order and direction. */
		size_t syncs = test_rand_below(5);
		for (size_t i = 0; i < syncs; i++) {
			int from = (int)test_rand_below(NNODES);
			int to = (int)test_rand_below(NNODES - 1);
			if (to >= from)
				to++;
			sync_pair(from, to);
		}
	}

	snprintf(w.doing, sizeof(w.doing), "final resend of dropped batches");
	mesh_sync();
	deliver_late(1);

	uint8_t d0[FERRY_HASH_BYTES], d[FERRY_HASH_BYTES];
	uint64_t conflicts = 0;
	for (int n = 0; n < NNODES; n++) {
		CHECK_NODE_OK(w.node[n], ferry_digest(d, w.node[n], NULL));
		if (n == 0)
			memcpy(d0, d, sizeof(d));
		else if (memcmp(d0, d, sizeof(d)))
			test_fail(__FILE__, __LINE__,
				  "node %d digest differs from node 0", n);
		for (int s = 0; s < NSCOPES; s++) {
			uint8_t a[FERRY_HASH_BYTES], b[FERRY_HASH_BYTES];
			CHECK_NODE_OK(w.node[0], ferry_digest(a, w.node[0],
							      scope_names[s]));
			CHECK_NODE_OK(w.node[n], ferry_digest(b, w.node[n],
							      scope_names[s]));
			if (memcmp(a, b, sizeof(a)))
				test_fail(__FILE__, __LINE__,
					  "node %d digest of %s differs", n,
					  scope_names[s]);
		}
		check_node_records(n);
		check_node_log(n);
		ferry_status st;
		CHECK_NODE_OK(w.node[n], ferry_status_get(&st, w.node[n]));
		conflicts += st.conflicts;
	}
	/* With twenty keys per collection, writers collide all the time:
	 * some merge must have recorded a losing value. */
	CHECK(conflicts > 0);
	printf("property_test: seed %llu: %llu changes, %llu gap refusals, "
	       "%llu duplicate deliveries, %llu conflicts logged\n",
	       (unsigned long long)seed, (unsigned long long)w.total,
	       (unsigned long long)w.gaps, (unsigned long long)w.dup_applies,
	       (unsigned long long)conflicts);
	world_free();
}

int main(int argc, char **argv)
{
	unsigned long nseeds = DEFAULT_SEEDS;
	test_init(argc, argv);
	for (int i = 1; i + 1 < argc; i++)
		if (!strcmp(argv[i], "--seeds"))
			nseeds = strtoul(argv[i + 1], NULL, 0);
	if (nseeds < 1 || nseeds > MAX_SEEDS)
		nseeds = DEFAULT_SEEDS;
	uint64_t base = test_seed();
	for (unsigned long i = 0; i < nseeds; i++)
		run_seed(base + i);
	printf("property_test: %lu seeds passed\n", nseeds);
	return 0;
}
