/*
 * crash_test.c — SIGKILL at random moments loses no acknowledged write.
 *
 * Part 1: a child process opens a durable node and commits in a loop; after
 * each ferry_txn_commit() returns OK it writes "N\n" to its stdout (a pipe
 * to the parent). The parent kills it with SIGKILL at a random moment and
 * reopens the store: every reported commit must be there, nothing partial
 * (the store equals exactly the state after commit M, with M the last
 * reported commit or the one after it, acknowledged by the store but not
 * yet reported), the log and the version vector agree, ferry_verify passes,
 * and a new commit works. Rounds continue on the same directory, so later
 * rounds recover stores that were themselves recovered. One round writes
 * 5,000 puts per commit so that kills land inside a commit.
 *
 * Part 2: a child applies exported batches from a source node into a
 * durable target, reporting each applied batch; it is killed; the target
 * must reopen consistent, hold a prefix of every chain including all that
 * was reported, and a completing sync must make the digests equal.
 *
 * Commit contents are a pure function of the commit number, so the parent
 * can recompute the expected state of the store without sharing memory.
 */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <msgpack.h>

#include "testing.h"

#define SCOPE "crash"
#define COLL "records"
#define BIG_COLL "big"
#define META_COLL "meta"
#define SMALL_MARKER "small"
#define BIG_MARKER "big"
#define NKEYS 50
#define BIG_PUTS 5000
#define COMMIT_ROUNDS 10
/* Rounds 3 and 7 write 5,000 puts per commit. */
#define IS_BIG_ROUND(r) ((r) % 4 == 3)
#define APPLY_ROUNDS 4

/* ------------------------------------------------------------------------ */
/* Deterministic commit contents                                            */
/* ------------------------------------------------------------------------ */

/* Small commit n: puts keys (7n + j) % NKEYS for j < 1 + n % 8 (distinct),
 * then, every third commit, deletes key 11n % NKEYS (which may be one just
 * put: the delete is later, so it wins), then sets the marker. */
static size_t small_puts(uint64_t n)
{
	return 1 + n % 8;
}

static int small_put_key(uint64_t n, size_t j)
{
	return (int)((7 * n + j) % NKEYS);
}

static int small_delete_key(uint64_t n)
{
	return n % 3 == 0 ? (int)((11 * n) % NKEYS) : -1;
}

static uint64_t small_writes(uint64_t n)
{
	return small_puts(n) + (small_delete_key(n) >= 0) + 1;
}

static void pad_text(char *out, size_t cap, uint64_t n, size_t j)
{
	size_t len = (size_t)snprintf(out, cap, "commit %llu put %zu ",
				      (unsigned long long)n, j);
	size_t want = len + (n * 31 + j * 17) % 160;
	for (; len < want && len + 1 < cap; len++)
		out[len] = (char)('a' + (n + len) % 26);
	out[len] = 0;
}

typedef struct packed {
	msgpack_sbuffer sb;
	msgpack_packer pk;
} packed;

static void packed_init(packed *p)
{
	msgpack_sbuffer_init(&p->sb);
	msgpack_packer_init(&p->pk, &p->sb, msgpack_sbuffer_write);
}

static ferry_err put_marker(ferry_txn *txn, const char *which, uint64_t n)
{
	packed p;
	packed_init(&p);
	msgpack_pack_uint64(&p.pk, n);
	ferry_field f = {"n", p.sb.data, p.sb.size};
	ferry_err err = ferry_txn_put(txn, SCOPE, META_COLL, which, &f, 1);
	msgpack_sbuffer_destroy(&p.sb);
	return err;
}

/* Returns the commit's result; on a failed put the transaction is
 * aborted. */
static ferry_err commit_small(ferry_node *node, uint64_t n)
{
	ferry_txn *txn = NULL;
	ferry_err err = ferry_txn_begin(&txn, node);
	char key[32], pad[256];
	if (err)
		return err;
	for (size_t j = 0; j < small_puts(n) && !err; j++) {
		packed pn, pj, pp;
		packed_init(&pn);
		packed_init(&pj);
		packed_init(&pp);
		msgpack_pack_uint64(&pn.pk, n);
		msgpack_pack_uint64(&pj.pk, j);
		pad_text(pad, sizeof(pad), n, j);
		msgpack_pack_str_with_body(&pp.pk, pad, strlen(pad));
		ferry_field f[3] = {{"j", pj.sb.data, pj.sb.size},
				    {"n", pn.sb.data, pn.sb.size},
				    {"pad", pp.sb.data, pp.sb.size}};
		snprintf(key, sizeof(key), "k%02d", small_put_key(n, j));
		err = ferry_txn_put(txn, SCOPE, COLL, key, f, 3);
		msgpack_sbuffer_destroy(&pn.sb);
		msgpack_sbuffer_destroy(&pj.sb);
		msgpack_sbuffer_destroy(&pp.sb);
	}
	if (!err && small_delete_key(n) >= 0) {
		snprintf(key, sizeof(key), "k%02d", small_delete_key(n));
		err = ferry_txn_delete(txn, SCOPE, COLL, key);
	}
	if (!err)
		err = put_marker(txn, SMALL_MARKER, n);
	if (err) {
		ferry_txn_abort(txn);
		return err;
	}
	return ferry_txn_commit(txn);
}

/* Big commit n: every one of BIG_PUTS records gets n, then the marker. */
static ferry_err commit_big(ferry_node *node, uint64_t n)
{
	ferry_txn *txn = NULL;
	ferry_err err = ferry_txn_begin(&txn, node);
	char key[32];
	packed pn;
	if (err)
		return err;
	packed_init(&pn);
	msgpack_pack_uint64(&pn.pk, n);
	ferry_field f = {"n", pn.sb.data, pn.sb.size};
	for (int i = 0; i < BIG_PUTS && !err; i++) {
		snprintf(key, sizeof(key), "b%05d", i);
		err = ferry_txn_put(txn, SCOPE, BIG_COLL, key, &f, 1);
	}
	msgpack_sbuffer_destroy(&pn.sb);
	if (!err)
		err = put_marker(txn, BIG_MARKER, n);
	if (err) {
		ferry_txn_abort(txn);
		return err;
	}
	return ferry_txn_commit(txn);
}

/* ------------------------------------------------------------------------ */
/* Reading values back                                                      */
/* ------------------------------------------------------------------------ */

static int value_uint(const ferry_field_info *fi, uint64_t *out)
{
	msgpack_unpacked u;
	size_t off = 0;
	int ok = 0;
	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, fi->value, fi->value_len, &off) ==
		    MSGPACK_UNPACK_SUCCESS &&
	    u.data.type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		*out = u.data.via.u64;
		ok = 1;
	}
	msgpack_unpacked_destroy(&u);
	return ok;
}

static int value_is_str(const ferry_field_info *fi, const char *s)
{
	msgpack_unpacked u;
	size_t off = 0;
	int ok = 0;
	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, fi->value, fi->value_len, &off) ==
		    MSGPACK_UNPACK_SUCCESS &&
	    u.data.type == MSGPACK_OBJECT_STR &&
	    u.data.via.str.size == strlen(s) &&
	    !memcmp(u.data.via.str.ptr, s, strlen(s)))
		ok = 1;
	msgpack_unpacked_destroy(&u);
	return ok;
}

static uint64_t get_uint_field(ferry_node *node, const char *coll,
			       const char *key, const char *field)
{
	ferry_record *rec = NULL;
	uint64_t v = 0;
	int err = ferry_get(&rec, node, SCOPE, coll, key);
	if (err == FERRY_E_NOT_FOUND)
		return 0;
	CHECK_NODE_OK(node, err);
	const ferry_field_info *fi = ferry_record_find(rec, field);
	CHECK(fi != NULL);
	CHECK(value_uint(fi, &v));
	ferry_record_free(rec);
	return v;
}

/* ------------------------------------------------------------------------ */
/* Child processes and the pipe                                             */
/* ------------------------------------------------------------------------ */

static ferry_node *open_durable(const char *dir)
{
	ferry_node_options opts = test_node_options(1);
	ferry_node *node = NULL;
	char *detail = NULL;
	int err = ferry_node_open(&node, dir, &opts, &detail);
	if (err)
		test_fail(__FILE__, __LINE__, "ferry_node_open(%s): %s: %s",
			  dir, ferry_err_name(err), detail ? detail : "");
	return node;
}

/* Report `n` to the parent with one write(2): nothing buffered in the
 * child can be lost by the kill after the report is out. */
static void report(uint64_t n)
{
	char line[32];
	int len = snprintf(line, sizeof(line), "%llu\n", (unsigned long long)n);
	if (write(STDOUT_FILENO, line, (size_t)len) != len)
		_exit(3);
}

typedef struct commit_child {
	const char *dir;
	int big;
} commit_child;

static int commit_child_main(void *arg)
{
	const commit_child *cc = arg;
	ferry_node *node = open_durable(cc->dir);
	uint64_t n = get_uint_field(node, META_COLL,
				    cc->big ? BIG_MARKER : SMALL_MARKER, "n");
	for (;;) {
		n++;
		ferry_err err =
			cc->big ? commit_big(node, n) : commit_small(node, n);
		if (err) {
			fprintf(stderr, "child: commit %llu: %s: %s\n",
				(unsigned long long)n, ferry_err_name(err),
				ferry_node_errmsg(node));
			return 2;
		}
		report(n);
	}
}

typedef struct reader {
	int fd;
	char buf[64];
	size_t len;
	uint64_t reports;
	uint64_t last;
	int eof;
} reader;

/* Read one report; 0 at end of file. */
static int read_report(reader *r)
{
	for (;;) {
		char *nl = memchr(r->buf, '\n', r->len);
		if (nl) {
			*nl = 0;
			r->last = strtoull(r->buf, NULL, 10);
			r->reports++;
			size_t used = (size_t)(nl - r->buf) + 1;
			memmove(r->buf, r->buf + used, r->len - used);
			r->len -= used;
			return 1;
		}
		if (r->eof)
			return 0;
		CHECK(r->len < sizeof(r->buf));
		ssize_t got =
			read(r->fd, r->buf + r->len, sizeof(r->buf) - r->len);
		if (got < 0 && errno == EINTR)
			continue;
		CHECK(got >= 0);
		if (got == 0)
			r->eof = 1;
		r->len += (size_t)got;
	}
}

/* Let the child run until it has made `reports` reports, wait `delay_us`,
 * SIGKILL it, and collect what it reported before dying. Returns 1 if the
 * child was killed, 0 if it ended by itself with status 0 first (which
 * only a child with a finite job may do). */
static int run_and_kill(int (*fn)(void *), void *arg, uint64_t reports,
			uint64_t delay_us, reader *r)
{
	memset(r, 0, sizeof(*r));
	pid_t pid = test_spawn(fn, arg, &r->fd);
	while (r->reports < reports && read_report(r))
		;
	if (r->reports < reports) {
		int status = test_wait(pid);
		close(r->fd);
		if (status != 0)
			test_fail(__FILE__, __LINE__,
				  "child ended with status %d after %llu "
				  "reports",
				  status, (unsigned long long)r->reports);
		return 0;
	}
	struct timespec ts = {(time_t)(delay_us / 1000000),
			      (long)(delay_us % 1000000) * 1000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
	test_kill(pid);
	while (read_report(r))
		;
	close(r->fd);
	return 1;
}

/* ------------------------------------------------------------------------ */
/* Checks after reopening                                                   */
/* ------------------------------------------------------------------------ */

/* The log holds exactly the writes of commits 1..small and 1..big, as one
 * consecutive chain of this node, and the vector and status agree. */
typedef struct log_ctx {
	const uint8_t *self;
	uint64_t count;
	uint64_t own;
	uint64_t last_cursor;
	uint64_t bad;
} log_ctx;

static int log_cb(const ferry_change *c, void *payload)
{
	log_ctx *lc = payload;
	if (c->cursor <= lc->last_cursor)
		lc->bad++;
	lc->last_cursor = c->cursor;
	lc->count++;
	if (!memcmp(c->origin, lc->self, FERRY_PUBLIC_KEY_BYTES) &&
	    !strcmp(c->scope, SCOPE)) {
		lc->own++;
		if (c->seq != lc->own)
			lc->bad++;
	}
	return 0;
}

static void check_log(ferry_node *node, uint64_t small, uint64_t big)
{
	uint64_t expect = big * (BIG_PUTS + 1);
	for (uint64_t n = 1; n <= small; n++)
		expect += small_writes(n);

	log_ctx lc = {ferry_node_id(node), 0, 0, 0, 0};
	CHECK_NODE_OK(node, ferry_changes(node, 0, 0, log_cb, &lc));
	CHECK_EQ_U64(lc.bad, 0);
	CHECK_EQ_U64(lc.count, expect);
	CHECK_EQ_U64(lc.own, expect);

	uint64_t last = 0;
	CHECK_NODE_OK(node, ferry_changes_last(&last, node));
	CHECK_EQ_U64(last, lc.last_cursor);
	ferry_status st;
	CHECK_NODE_OK(node, ferry_status_get(&st, node));
	CHECK_EQ_U64(st.changes, expect);
	CHECK_EQ_U64(st.last_cursor, lc.last_cursor);

	ferry_vector *vec = NULL;
	CHECK_NODE_OK(node, ferry_vector_get(&vec, node));
	CHECK_EQ_U64(ferry_vector_count(vec), expect ? 1 : 0);
	if (expect) {
		ferry_vector_entry e;
		ferry_vector_at(vec, 0, &e);
		CHECK(!memcmp(e.origin, ferry_node_id(node),
			      FERRY_PUBLIC_KEY_BYTES));
		CHECK(!strcmp(e.scope, SCOPE));
		CHECK_EQ_U64(e.seq, lc.own);
	}
	ferry_vector_free(vec);
}

/* The records equal exactly the state after small commits 1..m. */
static void check_small_state(ferry_node *node, uint64_t m)
{
	uint64_t last_n[NKEYS] = {0};
	size_t last_j[NKEYS] = {0};
	char key[32], pad[256];
	for (uint64_t n = 1; n <= m; n++) {
		for (size_t j = 0; j < small_puts(n); j++) {
			last_n[small_put_key(n, j)] = n;
			last_j[small_put_key(n, j)] = j;
		}
		if (small_delete_key(n) >= 0)
			last_n[small_delete_key(n)] = 0;
	}
	uint64_t live = 0, count = 0;
	for (int k = 0; k < NKEYS; k++) {
		ferry_record *rec = NULL;
		snprintf(key, sizeof(key), "k%02d", k);
		int err = ferry_get(&rec, node, SCOPE, COLL, key);
		if (!last_n[k]) {
			if (err != FERRY_E_NOT_FOUND)
				test_fail(__FILE__, __LINE__,
					  "after commit %llu, %s should be "
					  "absent: %s",
					  (unsigned long long)m, key,
					  ferry_err_name(err));
			continue;
		}
		live++;
		CHECK_NODE_OK(node, err);
		uint64_t n = 0, j = 0;
		const ferry_field_info *fn = ferry_record_find(rec, "n");
		const ferry_field_info *fj = ferry_record_find(rec, "j");
		const ferry_field_info *fp = ferry_record_find(rec, "pad");
		CHECK(fn && fj && fp);
		CHECK(value_uint(fn, &n) && value_uint(fj, &j));
		if (n != last_n[k] || j != last_j[k])
			test_fail(__FILE__, __LINE__,
				  "after commit %llu, %s holds commit %llu put "
				  "%llu, expected commit %llu put %zu",
				  (unsigned long long)m, key,
				  (unsigned long long)n, (unsigned long long)j,
				  (unsigned long long)last_n[k], last_j[k]);
		pad_text(pad, sizeof(pad), n, (size_t)j);
		CHECK(value_is_str(fp, pad));
		CHECK_EQ_U64(ferry_record_field_count(rec), 3);
		ferry_record_free(rec);
	}
	CHECK_NODE_OK(node, ferry_count(&count, node, SCOPE, COLL));
	CHECK_EQ_U64(count, live);
}

typedef struct big_ctx {
	uint64_t expect;
	uint64_t count;
	uint64_t wrong;
	uint64_t wrong_value;
} big_ctx;

static int big_cb(const ferry_record *rec, void *payload)
{
	big_ctx *bc = payload;
	const ferry_field_info *fi = ferry_record_find(rec, "n");
	uint64_t n = 0;
	bc->count++;
	if (!fi || !value_uint(fi, &n) || n != bc->expect) {
		bc->wrong++;
		bc->wrong_value = n;
	}
	return 0;
}

/* Every big record holds the last big commit: a commit is all or nothing. */
static void check_big_state(ferry_node *node, uint64_t b)
{
	big_ctx bc = {b, 0, 0, 0};
	CHECK_NODE_OK(node,
		      ferry_scan(node, SCOPE, BIG_COLL, NULL, big_cb, &bc));
	CHECK_EQ_U64(bc.count, b ? BIG_PUTS : 0);
	if (bc.wrong)
		test_fail(__FILE__, __LINE__,
			  "big commit %llu is partial: %llu records hold "
			  "another commit (e.g. %llu)",
			  (unsigned long long)b, (unsigned long long)bc.wrong,
			  (unsigned long long)bc.wrong_value);
}

static void check_store(ferry_node *node, uint64_t small, uint64_t big)
{
	ferry_verify_report rep;
	CHECK_NODE_OK(node, ferry_verify(node, &rep));
	check_small_state(node, small);
	check_big_state(node, big);
	check_log(node, small, big);
}

/* ------------------------------------------------------------------------ */
/* Part 1: kill during local commits                                        */
/* ------------------------------------------------------------------------ */

static void test_commit_kills(void)
{
	char dir[4200];
	uint64_t small = 0, big = 0;
	snprintf(dir, sizeof(dir), "%s/node", test_tmpdir("crash-commit"));

	/* Create the node here so every kill hits an existing store. */
	ferry_node *node = open_durable(dir);
	check_store(node, 0, 0);
	ferry_node_close(node);

	for (int round = 0; round < COMMIT_ROUNDS; round++) {
		commit_child cc = {dir, IS_BIG_ROUND(round)};
		uint64_t before = cc.big ? big : small;
		/* Sometimes no report at all: the kill may land while the
		 * child opens (and perhaps recovers) the store. */
		uint64_t reports, delay_us;
		if (cc.big) {
			reports = test_rand_below(3);
			delay_us = test_rand_below(400000);
		} else {
			reports = test_rand_below(8) ? 1 + test_rand_below(40)
						     : 0;
			delay_us = test_rand_below(20000);
		}
		reader r;
		CHECK(run_and_kill(commit_child_main, &cc, reports, delay_us,
				   &r));
		uint64_t reported = r.reports ? r.last : before;
		CHECK_EQ_U64(reported, before + r.reports);

		node = open_durable(dir);
		uint64_t m =
			get_uint_field(node, META_COLL,
				       cc.big ? BIG_MARKER : SMALL_MARKER, "n");
		printf("crash_test: round %d (%s): %llu reports after %llu, "
		       "killed after %llu us; store holds commit %llu\n",
		       round, cc.big ? "5,000 puts per commit" : "small",
		       (unsigned long long)r.reports,
		       (unsigned long long)before, (unsigned long long)delay_us,
		       (unsigned long long)m);
		/* Every acknowledged commit survived; at most one more (done
		 * but not yet reported) did too. */
		if (m < reported || m > reported + 1)
			test_fail(__FILE__, __LINE__,
				  "round %d: reported commit %llu, store holds "
				  "%llu",
				  round, (unsigned long long)reported,
				  (unsigned long long)m);
		if (cc.big)
			big = m;
		else
			small = m;
		check_store(node, small, big);

		/* The recovered store takes new commits. */
		if (cc.big) {
			CHECK_NODE_OK(node, commit_big(node, ++big));
		} else {
			CHECK_NODE_OK(node, commit_small(node, ++small));
		}
		check_store(node, small, big);
		ferry_node_close(node);
	}
}

/* ------------------------------------------------------------------------ */
/* Part 2: kill during sync apply                                           */
/* ------------------------------------------------------------------------ */

typedef struct batch {
	void *buf;
	size_t len;
	uint64_t nchanges;
} batch;

typedef struct apply_child {
	const char *dir;
	batch *batches;
	size_t nbatches;
} apply_child;

static int apply_child_main(void *arg)
{
	const apply_child *ac = arg;
	ferry_node *node = open_durable(ac->dir);
	for (size_t i = 0; i < ac->nbatches; i++) {
		ferry_err err = ferry_sync_apply(node, ac->batches[i].buf,
						 ac->batches[i].len, NULL);
		if (err) {
			fprintf(stderr, "child: apply batch %zu: %s: %s\n", i,
				ferry_err_name(err), ferry_node_errmsg(node));
			return 2;
		}
		report(i + 1);
	}
	ferry_node_close(node);
	return 0;
}

static void random_writes(ferry_node *node, const char *const *scopes,
			  size_t nscopes, size_t commits, size_t writes)
{
	char key[32], text[64];
	for (size_t c = 0; c < commits; c++) {
		ferry_txn *txn = NULL;
		CHECK_NODE_OK(node, ferry_txn_begin(&txn, node));
		for (size_t i = 0; i < writes; i++) {
			const char *scope = scopes[test_rand_below(nscopes)];
			snprintf(key, sizeof(key), "r%04llu",
				 (unsigned long long)test_rand_below(3000));
			if (test_rand_below(10) == 0) {
				CHECK_NODE_OK(node,
					      ferry_txn_delete(txn, scope,
							       "items", key));
				continue;
			}
			packed p;
			packed_init(&p);
			snprintf(text, sizeof(text), "value %llu of %zu/%zu",
				 (unsigned long long)test_rand(), c, i);
			msgpack_pack_str_with_body(&p.pk, text, strlen(text));
			ferry_field f = {test_rand_below(2) ? "a" : "b",
					 p.sb.data, p.sb.size};
			CHECK_NODE_OK(node, ferry_txn_put(txn, scope, "items",
							  key, &f, 1));
			msgpack_sbuffer_destroy(&p.sb);
		}
		CHECK_NODE_OK(node, ferry_txn_commit(txn));
	}
}

/* The source's log, to check that the target holds a prefix of each
 * chain: per change (origin, scope, seq) its stamp and key. */
typedef struct src_change {
	uint8_t origin[FERRY_PUBLIC_KEY_BYTES];
	char scope[FERRY_MAX_SCOPE_BYTES + 1];
	uint64_t seq;
	ferry_hlc hlc;
	char key[16];
} src_change;

typedef struct src_log {
	src_change *v;
	size_t n, cap;
} src_log;

static int src_cb(const ferry_change *c, void *payload)
{
	src_log *sl = payload;
	if (sl->n == sl->cap) {
		sl->cap = sl->cap ? 2 * sl->cap : 1024;
		sl->v = realloc(sl->v, sl->cap * sizeof(*sl->v));
		CHECK(sl->v != NULL);
	}
	src_change *s = &sl->v[sl->n++];
	memcpy(s->origin, c->origin, FERRY_PUBLIC_KEY_BYTES);
	snprintf(s->scope, sizeof(s->scope), "%s", c->scope);
	s->seq = c->seq;
	s->hlc = c->hlc;
	snprintf(s->key, sizeof(s->key), "%s", c->key);
	return 0;
}

static int src_cmp(const void *a, const void *b)
{
	const src_change *x = a, *y = b;
	int c = memcmp(x->origin, y->origin, FERRY_PUBLIC_KEY_BYTES);
	if (!c)
		c = strcmp(x->scope, y->scope);
	if (!c)
		c = x->seq < y->seq ? -1 : x->seq > y->seq;
	return c;
}

/* The source's change at the same chain position (src sorted). */
static const src_change *src_find(const src_log *sl, const ferry_change *c)
{
	src_change key;
	memcpy(key.origin, c->origin, FERRY_PUBLIC_KEY_BYTES);
	snprintf(key.scope, sizeof(key.scope), "%s", c->scope);
	key.seq = c->seq;
	return bsearch(&key, sl->v, sl->n, sizeof(*sl->v), src_cmp);
}

#define MAX_CHAINS 16

typedef struct prefix_ctx {
	const src_log *src;
	uint8_t origin[MAX_CHAINS][FERRY_PUBLIC_KEY_BYTES];
	char scope[MAX_CHAINS][FERRY_MAX_SCOPE_BYTES + 1];
	uint64_t seq[MAX_CHAINS];
	size_t nchains;
	uint64_t count;
} prefix_ctx;

static int prefix_cb(const ferry_change *c, void *payload)
{
	prefix_ctx *pc = payload;
	size_t i;
	pc->count++;
	for (i = 0; i < pc->nchains; i++)
		if (!strcmp(pc->scope[i], c->scope) &&
		    !memcmp(pc->origin[i], c->origin, FERRY_PUBLIC_KEY_BYTES))
			break;
	if (i == pc->nchains) {
		CHECK(i < MAX_CHAINS);
		memcpy(pc->origin[i], c->origin, FERRY_PUBLIC_KEY_BYTES);
		snprintf(pc->scope[i], sizeof(pc->scope[i]), "%s", c->scope);
		pc->nchains++;
	}
	if (c->seq != pc->seq[i] + 1)
		test_fail(__FILE__, __LINE__,
			  "target chain %s: seq %llu after %llu", c->scope,
			  (unsigned long long)c->seq,
			  (unsigned long long)pc->seq[i]);
	pc->seq[i] = c->seq;
	const src_change *s = src_find(pc->src, c);
	if (!s || s->hlc != c->hlc || strcmp(s->key, c->key))
		test_fail(__FILE__, __LINE__,
			  "target change %s seq %llu is not the source's",
			  c->scope, (unsigned long long)c->seq);
	return 0;
}

/* Check the reopened target: it verifies, every chain is a prefix of the
 * source's, the vector says so, and it holds at least `at_least` changes
 * and at most `at_most`. Returns the number of changes held. */
static uint64_t check_target(ferry_node *t, const src_log *src,
			     uint64_t at_least, uint64_t at_most)
{
	ferry_verify_report rep;
	CHECK_NODE_OK(t, ferry_verify(t, &rep));
	prefix_ctx pc;
	memset(&pc, 0, sizeof(pc));
	pc.src = src;
	CHECK_NODE_OK(t, ferry_changes(t, 0, 0, prefix_cb, &pc));
	if (pc.count < at_least || pc.count > at_most)
		test_fail(__FILE__, __LINE__,
			  "target holds %llu changes, expected %llu..%llu",
			  (unsigned long long)pc.count,
			  (unsigned long long)at_least,
			  (unsigned long long)at_most);
	CHECK_EQ_U64(rep.changes, pc.count);

	ferry_vector *vec = NULL;
	CHECK_NODE_OK(t, ferry_vector_get(&vec, t));
	CHECK_EQ_U64(ferry_vector_count(vec), pc.nchains);
	for (size_t i = 0; i < ferry_vector_count(vec); i++) {
		ferry_vector_entry e;
		size_t j;
		ferry_vector_at(vec, i, &e);
		for (j = 0; j < pc.nchains; j++)
			if (!strcmp(pc.scope[j], e.scope) &&
			    !memcmp(pc.origin[j], e.origin,
				    FERRY_PUBLIC_KEY_BYTES))
				break;
		CHECK(j < pc.nchains);
		CHECK_EQ_U64(e.seq, pc.seq[j]);
	}
	ferry_vector_free(vec);
	return pc.count;
}

static void test_apply_kills(void)
{
	static const char *const src_scopes[] = {"north", "south", "shared"};
	static const char *const other_scopes[] = {"east", "shared"};
	/* Small batches first (many reports, kills between and inside
	 * them), then large ones (each apply is long: kills land inside). */
	static const size_t batch_sizes[APPLY_ROUNDS] = {4096, 64 * 1024, 0, 0};
	char tdir[4200];
	ferry_node *src = test_node("crash-apply-src", 0);
	ferry_node *other = test_node("crash-apply-other", 0);
	snprintf(tdir, sizeof(tdir), "%s/node", test_tmpdir("crash-apply-dst"));

	/* The source holds its own chains and relayed ones. */
	random_writes(other, other_scopes, 2, 40, 50);
	test_sync_oneway(other, src);
	random_writes(src, src_scopes, 3, 300, 150);
	ferry_node_close(other);

	src_log sl = {NULL, 0, 0};
	CHECK_NODE_OK(src, ferry_changes(src, 0, 0, src_cb, &sl));
	qsort(sl.v, sl.n, sizeof(*sl.v), src_cmp);
	ferry_node *t = open_durable(tdir);
	uint64_t held = check_target(t, &sl, 0, 0);

	for (size_t round = 0; round < APPLY_ROUNDS; round++) {
		ferry_export_options eo = FERRY_EXPORT_OPTIONS_INIT;
		ferry_vector *vec = NULL;
		ferry_export *exp = NULL;
		batch *b = NULL;
		size_t nb = 0, cap = 0;

		/* Plan from what the target holds, then let it go: the child
		 * opens the target itself. */
		eo.batch_bytes = batch_sizes[round];
		CHECK_NODE_OK(t, ferry_vector_get(&vec, t));
		ferry_node_close(t);
		CHECK_NODE_OK(src, ferry_export_begin(&exp, src, vec, &eo));
		for (;;) {
			if (nb == cap) {
				cap = cap ? 2 * cap : 64;
				b = realloc(b, cap * sizeof(*b));
				CHECK(b != NULL);
			}
			int err = ferry_export_next(exp, &b[nb].buf, &b[nb].len,
						    &b[nb].nchanges);
			if (err == FERRY_E_DONE)
				break;
			CHECK_NODE_OK(src, err);
			nb++;
		}
		ferry_export_free(exp);
		ferry_vector_free(vec);
		if (nb == 0) {
			/* An earlier child finished the whole plan. */
			CHECK_EQ_U64(held, sl.n);
			free(b);
			t = open_durable(tdir);
			continue;
		}

		/* Leave work for the later rounds and for the kill: a few
		 * reports, then a short delay (an apply of a 4 KiB batch
		 * takes a few ms, one of 1 MiB about a hundred). */
		apply_child ac = {tdir, b, nb};
		uint64_t reports = test_rand_below(nb / 4 + 1);
		uint64_t delay_us =
			test_rand_below(eo.batch_bytes ? 3000 : 300000);
		reader r;
		int killed = run_and_kill(apply_child_main, &ac, reports,
					  delay_us, &r);
		uint64_t acked = 0;
		for (uint64_t i = 0; i < r.reports; i++)
			acked += b[i].nchanges;
		uint64_t maybe = r.reports < nb ? b[r.reports].nchanges : 0;
		t = open_durable(tdir);
		uint64_t now = check_target(t, &sl, held + acked,
					    held + acked + maybe);
		printf("crash_test: apply round %zu: %zu batches of %zu bytes,"
		       " %llu applied%s, target holds %llu of %zu changes\n",
		       round, nb,
		       eo.batch_bytes ? eo.batch_bytes
				      : FERRY_DEFAULT_BATCH_BYTES,
		       (unsigned long long)r.reports,
		       killed ? " before the kill" : " (child finished)",
		       (unsigned long long)now, sl.n);
		held = now;
		for (size_t i = 0; i < nb; i++)
			free(b[i].buf);
		free(b);
	}

	/* A completing sync brings the target level with the source. */
	test_sync_oneway(src, t);
	check_target(t, &sl, sl.n, sl.n);
	CHECK(test_same_digest(src, t));
	ferry_node_close(t);
	ferry_node_close(src);
	free(sl.v);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	printf("crash_test: seed %llu\n", (unsigned long long)test_seed());
	test_commit_kills();
	test_apply_kills();
	printf("crash_test: passed\n");
	return 0;
}
