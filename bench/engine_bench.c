/*
 * engine_bench.c — ferry-bench-engine: how close ferry's storage path comes
 * to raw LMDB on the same machine and disk.
 *
 * One invocation runs three phases over the same N records (random 16-byte
 * keys formatted as 32 hex characters, as UUIDs would be, and 100-byte
 * values, all drawn from a fixed, printed seed), each durable:
 *   (a) raw LMDB: put key -> value into one unnamed database, T puts per
 *       transaction;
 *   (b) ferry local commits: a fresh node, each record one field "v" (a
 *       100-byte msgpack bin), T writes per ferry transaction;
 *   (c) ferry segment apply: everything node (b) holds is exported into
 *       memory first (not timed), then applied batch by batch into a fresh
 *       node (timed).
 * The target is (b) and (c) at >= 0.5 of (a). The run fails (exit 1) if
 * the apply target's digest differs from the source's or a store lacks
 * records: correctness is asserted, speed never is.
 *
 * Usage: ferry-bench-engine [-n N] [-t T] [--runs R] [--seed S]
 *                           [--dir D] [--keep] [--json]
 * Stores go under D, else $TMPDIR, else /var/tmp (on the same disk as the
 * data, unlike a tmpfs /tmp, so durability costs what it costs in use).
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "ferry.h"

#define KEY_HEX 32
#define VALUE_BYTES 100
#define DEFAULT_N 1000000
#define DEFAULT_TXN 1000
#define DEFAULT_SEED UINT64_C(0x5eedfe77)
#define TMPFS_MAGIC_ 0x01021994
#define BENCH_SCOPE "bench"
#define BENCH_COLL "records"

typedef struct config {
	uint64_t n;
	uint64_t txn;
	unsigned runs;
	uint64_t seed;
	const char *base;
	int keep;
	int json;
} config;

typedef struct phase_result {
	double seconds;
	uint64_t store_bytes;
	uint64_t batches;
} phase_result;

static void die(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2)));

static void die(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "ferry-bench-engine: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* splitmix64: the key and value stream is a pure function of the seed. */
static uint64_t mix(uint64_t *state)
{
	uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* Record i's key (32 hex chars + NUL) and 100-byte value. Derived from
 * (seed, i) alone so every phase writes the same records without holding
 * them all in memory. */
static void record_at(const config *cfg, uint64_t i, char key[KEY_HEX + 1],
		      uint8_t value[VALUE_BYTES])
{
	static const char hex[] = "0123456789abcdef";
	uint64_t st = cfg->seed ^ (i * UINT64_C(0xd1b54a32d192ed03));
	uint8_t raw[16];
	for (int h = 0; h < 2; h++) {
		uint64_t r = mix(&st);
		memcpy(raw + 8 * h, &r, 8);
	}
	for (int b = 0; b < 16; b++) {
		key[2 * b] = hex[raw[b] >> 4];
		key[2 * b + 1] = hex[raw[b] & 15];
	}
	key[KEY_HEX] = 0;
	for (int v = 0; v < VALUE_BYTES; v += 8) {
		uint64_t r = mix(&st);
		memcpy(value + v, &r,
		       VALUE_BYTES - v < 8 ? VALUE_BYTES - v : 8);
	}
}

static void remove_tree(const char *path)
{
	DIR *d = opendir(path);
	if (d) {
		struct dirent *ent;
		while ((ent = readdir(d)) != NULL) {
			char child[4352];
			struct stat st;
			if (!strcmp(ent->d_name, ".") ||
			    !strcmp(ent->d_name, ".."))
				continue;
			snprintf(child, sizeof(child), "%s/%s", path,
				 ent->d_name);
			if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode))
				remove_tree(child);
			else
				unlink(child);
		}
		closedir(d);
	}
	rmdir(path);
}

static uint64_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* ------------------------------------------------------------------------ */
/* (a) raw LMDB                                                             */
/* ------------------------------------------------------------------------ */

#define MDB_CHECK(expr)                                                        \
	do {                                                                   \
		int mdb_rc_ = (expr);                                          \
		if (mdb_rc_)                                                   \
			die("%s: %s", #expr, mdb_strerror(mdb_rc_));           \
	} while (0)

static phase_result run_raw(const config *cfg, const char *dir)
{
	MDB_env *env = NULL;
	MDB_dbi dbi;
	MDB_txn *txn = NULL;
	char key[KEY_HEX + 1];
	uint8_t value[VALUE_BYTES];
	phase_result res = {0, 0, 0};

	if (mkdir(dir, 0700) != 0)
		die("mkdir %s: %s", dir, strerror(errno));
	MDB_CHECK(mdb_env_create(&env));
	/* Address space only; random keys need several times the data. */
	MDB_CHECK(mdb_env_set_mapsize(env, (size_t)32 << 30));
	MDB_CHECK(mdb_env_open(env, dir, 0, 0600));
	MDB_CHECK(mdb_txn_begin(env, NULL, 0, &txn));
	MDB_CHECK(mdb_dbi_open(txn, NULL, 0, &dbi));
	MDB_CHECK(mdb_txn_commit(txn));

	double t0 = now_s();
	for (uint64_t i = 0; i < cfg->n;) {
		MDB_CHECK(mdb_txn_begin(env, NULL, 0, &txn));
		for (uint64_t j = 0; j < cfg->txn && i < cfg->n; j++, i++) {
			record_at(cfg, i, key, value);
			MDB_val k = {KEY_HEX, key}, v = {VALUE_BYTES, value};
			MDB_CHECK(mdb_put(txn, dbi, &k, &v, 0));
		}
		MDB_CHECK(mdb_txn_commit(txn));
	}
	res.seconds = now_s() - t0;

	MDB_stat ms;
	MDB_CHECK(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
	MDB_CHECK(mdb_stat(txn, dbi, &ms));
	mdb_txn_abort(txn);
	if (ms.ms_entries != cfg->n)
		die("raw LMDB holds %zu records, expected %" PRIu64,
		    ms.ms_entries, cfg->n);
	mdb_env_close(env);
	char path[4352];
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	res.store_bytes = file_size(path);
	return res;
}

/* ------------------------------------------------------------------------ */
/* (b) ferry local commits, (c) ferry segment apply                         */
/* ------------------------------------------------------------------------ */

static ferry_node *open_node(const char *dir)
{
	ferry_node_options opts = FERRY_NODE_OPTIONS_INIT;
	ferry_node *node = NULL;
	char *detail = NULL;
	int err = ferry_node_open(&node, dir, &opts, &detail);
	if (err)
		die("ferry_node_open(%s): %s: %s", dir, ferry_err_name(err),
		    detail ? detail : "");
	return node;
}

#define FERRY_CHECK(node, expr)                                                \
	do {                                                                   \
		int ferry_rc_ = (expr);                                        \
		if (ferry_rc_)                                                 \
			die("%s: %s: %s", #expr, ferry_err_name(ferry_rc_),    \
			    ferry_node_errmsg(node));                          \
	} while (0)

static void check_count(ferry_node *node, const config *cfg, const char *what)
{
	uint64_t count = 0;
	FERRY_CHECK(node, ferry_count(&count, node, BENCH_SCOPE, BENCH_COLL));
	if (count != cfg->n)
		die("%s holds %" PRIu64 " records, expected %" PRIu64, what,
		    count, cfg->n);
}

static uint64_t store_bytes(ferry_node *node)
{
	ferry_status st;
	FERRY_CHECK(node, ferry_status_get(&st, node));
	return st.store_bytes;
}

/* Returns the open node: phase (c) exports from it. */
static phase_result run_commit(const config *cfg, const char *dir,
			       ferry_node **out)
{
	char key[KEY_HEX + 1];
	/* msgpack bin 8: 0xc4, length, then the bytes. */
	uint8_t value[2 + VALUE_BYTES] = {0xc4, VALUE_BYTES};
	phase_result res = {0, 0, 0};
	ferry_node *node = open_node(dir);

	double t0 = now_s();
	for (uint64_t i = 0; i < cfg->n;) {
		ferry_txn *txn = NULL;
		FERRY_CHECK(node, ferry_txn_begin(&txn, node));
		for (uint64_t j = 0; j < cfg->txn && i < cfg->n; j++, i++) {
			record_at(cfg, i, key, value + 2);
			ferry_field f = {"v", value, sizeof(value)};
			FERRY_CHECK(node,
				    ferry_txn_put(txn, BENCH_SCOPE, BENCH_COLL,
						  key, &f, 1));
		}
		FERRY_CHECK(node, ferry_txn_commit(txn));
	}
	res.seconds = now_s() - t0;
	check_count(node, cfg, "committing node");
	res.store_bytes = store_bytes(node);
	*out = node;
	return res;
}

typedef struct batch {
	void *buf;
	size_t len;
} batch;

static phase_result run_apply(const config *cfg, ferry_node *src,
			      const char *dir)
{
	ferry_export *exp = NULL;
	batch *b = NULL;
	size_t nb = 0, cap = 0;
	uint64_t changes = 0;
	phase_result res = {0, 0, 0};

	FERRY_CHECK(src, ferry_export_begin(&exp, src, NULL, NULL));
	for (;;) {
		uint64_t nc = 0;
		if (nb == cap) {
			cap = cap ? 2 * cap : 256;
			b = realloc(b, cap * sizeof(*b));
			if (!b)
				die("out of memory");
		}
		int err = ferry_export_next(exp, &b[nb].buf, &b[nb].len, &nc);
		if (err == FERRY_E_DONE)
			break;
		FERRY_CHECK(src, err);
		changes += nc;
		nb++;
	}
	ferry_export_free(exp);
	if (changes != cfg->n)
		die("export holds %" PRIu64 " changes, expected %" PRIu64,
		    changes, cfg->n);

	ferry_node *dst = open_node(dir);
	double t0 = now_s();
	for (size_t i = 0; i < nb; i++)
		FERRY_CHECK(dst,
			    ferry_sync_apply(dst, b[i].buf, b[i].len, NULL));
	res.seconds = now_s() - t0;
	res.batches = nb;
	for (size_t i = 0; i < nb; i++)
		free(b[i].buf);
	free(b);

	check_count(dst, cfg, "apply target");
	uint8_t ds[FERRY_HASH_BYTES], dd[FERRY_HASH_BYTES];
	FERRY_CHECK(src, ferry_digest(ds, src, NULL));
	FERRY_CHECK(dst, ferry_digest(dd, dst, NULL));
	if (memcmp(ds, dd, sizeof(ds)))
		die("apply target's digest differs from the source's");
	res.store_bytes = store_bytes(dst);
	ferry_node_close(dst);
	return res;
}

/* ------------------------------------------------------------------------ */
/* Driver                                                                   */
/* ------------------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The median run by time, with its other figures. */
static phase_result median(phase_result *r, unsigned runs)
{
	double *t = malloc(runs * sizeof(*t));
	if (!t)
		die("out of memory");
	for (unsigned i = 0; i < runs; i++)
		t[i] = r[i].seconds;
	qsort(t, runs, sizeof(*t), cmp_double);
	phase_result m = r[0];
	for (unsigned i = 0; i < runs; i++)
		if (r[i].seconds == t[runs / 2])
			m = r[i];
	if (runs % 2 == 0)
		m.seconds = (t[runs / 2 - 1] + t[runs / 2]) / 2;
	free(t);
	return m;
}

static void usage(void)
{
	fprintf(stderr, "usage: ferry-bench-engine [-n records] [-t per_txn] "
			"[--runs R] [--seed S] [--dir D] [--keep] [--json]\n");
	exit(2);
}

static uint64_t parse_u64(const char *s)
{
	char *end = NULL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || !*s || *end)
		usage();
	return v;
}

int main(int argc, char **argv)
{
	config cfg = {DEFAULT_N, DEFAULT_TXN, 1, DEFAULT_SEED, NULL, 0, 0};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--keep"))
			cfg.keep = 1;
		else if (!strcmp(a, "--json"))
			cfg.json = 1;
		else if (!v)
			usage();
		else if (!strcmp(a, "-n"))
			cfg.n = parse_u64(v), i++;
		else if (!strcmp(a, "-t"))
			cfg.txn = parse_u64(v), i++;
		else if (!strcmp(a, "--runs"))
			cfg.runs = (unsigned)parse_u64(v), i++;
		else if (!strcmp(a, "--seed"))
			cfg.seed = parse_u64(v), i++;
		else if (!strcmp(a, "--dir"))
			cfg.base = v, i++;
		else
			usage();
	}
	if (!cfg.n || !cfg.txn || !cfg.runs || cfg.runs > 100 ||
	    cfg.txn > FERRY_MAX_WRITES_PER_TXN)
		usage();
	if (!cfg.base)
		cfg.base = getenv("TMPDIR");
	if (!cfg.base || !*cfg.base)
		cfg.base = "/var/tmp";

	struct statfs sf;
	int on_tmpfs = statfs(cfg.base, &sf) == 0 &&
		       (unsigned long)sf.f_type == TMPFS_MAGIC_;
	if (on_tmpfs)
		fprintf(stderr,
			"ferry-bench-engine: warning: %s is a tmpfs; durable "
			"figures will flatter both sides\n",
			cfg.base);

	char root[4096];
	snprintf(root, sizeof(root), "%s/ferry-bench-engine-XXXXXX", cfg.base);
	if (!mkdtemp(root))
		die("mkdtemp %s: %s", root, strerror(errno));

	phase_result *raw = calloc(cfg.runs, sizeof(*raw));
	phase_result *com = calloc(cfg.runs, sizeof(*com));
	phase_result *app = calloc(cfg.runs, sizeof(*app));
	if (!raw || !com || !app)
		die("out of memory");
	for (unsigned r = 0; r < cfg.runs; r++) {
		char d_raw[4200], d_com[4200], d_app[4200];
		ferry_node *src = NULL;
		snprintf(d_raw, sizeof(d_raw), "%s/run%u-raw", root, r);
		snprintf(d_com, sizeof(d_com), "%s/run%u-commit", root, r);
		snprintf(d_app, sizeof(d_app), "%s/run%u-apply", root, r);
		if (!cfg.json)
			fprintf(stderr, "run %u/%u: raw LMDB...\n", r + 1,
				cfg.runs);
		raw[r] = run_raw(&cfg, d_raw);
		if (!cfg.json)
			fprintf(stderr, "run %u/%u: ferry commits...\n", r + 1,
				cfg.runs);
		com[r] = run_commit(&cfg, d_com, &src);
		if (!cfg.json)
			fprintf(stderr, "run %u/%u: ferry apply...\n", r + 1,
				cfg.runs);
		app[r] = run_apply(&cfg, src, d_app);
		ferry_node_close(src);
		/* Runs are independent: free the disk before the next. */
		if (!cfg.keep) {
			remove_tree(d_raw);
			remove_tree(d_com);
			remove_tree(d_app);
		}
	}
	phase_result m[3] = {median(raw, cfg.runs), median(com, cfg.runs),
			     median(app, cfg.runs)};
	static const char *const names[3] = {
		"raw LMDB puts", "ferry local commits", "ferry segment apply"};
	static const char *const keys[3] = {"raw_lmdb", "ferry_commit",
					    "ferry_apply"};
	/* Payload: key and value bytes, the same for every phase. */
	double mb = (double)cfg.n * (KEY_HEX + VALUE_BYTES) / 1e6;

	if (cfg.json) {
		printf("{\"records\": %" PRIu64 ", \"per_txn\": %" PRIu64
		       ", \"runs\": %u, \"seed\": %" PRIu64
		       ", \"dir\": \"%s\", \"tmpfs\": %s, \"digest_equal\": "
		       "true",
		       cfg.n, cfg.txn, cfg.runs, cfg.seed, cfg.base,
		       on_tmpfs ? "true" : "false");
		for (int p = 0; p < 3; p++) {
			printf(", \"%s\": {\"seconds\": %.3f, "
			       "\"records_per_s\": %.0f, \"mb_per_s\": %.2f, "
			       "\"store_bytes\": %" PRIu64,
			       keys[p], m[p].seconds,
			       (double)cfg.n / m[p].seconds, mb / m[p].seconds,
			       m[p].store_bytes);
			if (p > 0)
				printf(", \"ratio_to_raw\": %.3f",
				       m[0].seconds / m[p].seconds);
			if (p == 2)
				printf(", \"batches\": %" PRIu64, m[p].batches);
			printf("}");
		}
		printf("}\n");
	} else {
		printf("ferry-bench-engine: %" PRIu64 " records (32-char hex "
		       "keys, %d-byte values), %" PRIu64
		       " per txn, durable, seed %" PRIu64 ", %u run(s), "
		       "median; dir %s\n",
		       cfg.n, VALUE_BYTES, cfg.txn, cfg.seed, cfg.runs,
		       cfg.base);
		printf("%-22s %12s %9s %9s %10s %8s\n", "phase", "records/s",
		       "MB/s", "seconds", "store MB", "vs raw");
		for (int p = 0; p < 3; p++)
			printf("%-22s %12.0f %9.2f %9.3f %10.1f %8.2f\n",
			       names[p], (double)cfg.n / m[p].seconds,
			       mb / m[p].seconds, m[p].seconds,
			       (double)m[p].store_bytes / 1e6,
			       m[0].seconds / m[p].seconds);
		printf("apply: %" PRIu64 " batches; digests equal\n",
		       m[2].batches);
	}
	if (cfg.keep)
		fprintf(stderr, "ferry-bench-engine: kept %s\n", root);
	else
		remove_tree(root);
	free(raw);
	free(com);
	free(app);
	return 0;
}
