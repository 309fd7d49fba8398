/*
 * sync_bench.c — ferry-bench-sync: two real `ferry serve` processes on
 * 127.0.0.1, measured side by side with raw LMDB in the same run.
 *
 *   (a) raw LMDB: the N records put into a plain LMDB database, durable,
 *       T per transaction — the limit a sync is compared with;
 *   (b) full sync: node A holds the N records (written through libferry,
 *       not timed); node B is empty; B starts `ferry serve` dialing A and
 *       the clock runs until B has applied all N changes; the digests must
 *       then be equal;
 *   (c) live lag: with A and B connected, this program commits one record
 *       at a time into A at R writes/s for S seconds (as another process
 *       writing A's directory, which the serving node must notice) and
 *       watches B's change feed; lag = when the change is readable on B
 *       minus when A's durable commit returned. Reported as
 *       p50/p95/p99/max.
 *
 * Usage: ferry-bench-sync [-n N] [-t T] [--rate R] [--seconds S]
 *                         [--seed SEED] [--ferry PATH] [--dir D] [--keep]
 *                         [--json]
 * Correctness is asserted (exit 1 if B does not converge); speed never is.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lmdb.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ferry.h"

#define KEY_HEX 32
#define VALUE_BYTES 100
#define SCOPE "bench"
#define COLL "records"

typedef struct config {
	uint64_t n, txn, seed;
	double rate, seconds;
	const char *ferry, *base;
	int keep, json;
} config;

static void die(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2)));

static void die(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "ferry-bench-sync: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng_state;

static uint64_t rng(void)
{
	uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* Record i of the data set: the same keys and values for every phase. */
static void record(uint64_t seed, uint64_t i, char key[KEY_HEX + 1],
		   uint8_t value[VALUE_BYTES])
{
	rng_state = seed ^ (i * UINT64_C(0x100000001b3));
	for (int k = 0; k < KEY_HEX; k += 16)
		snprintf(key + k, 17, "%016" PRIx64, rng());
	for (int k = 0; k < VALUE_BYTES; k += 8) {
		uint64_t r = rng();
		memcpy(value + k, &r,
		       VALUE_BYTES - k < 8 ? VALUE_BYTES - k : 8);
	}
}

static void run(const char *const argv[])
{
	pid_t pid = fork();
	int status;
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);
		dup2(devnull, 1);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status))
		die("%s %s failed", argv[0], argv[3]);
}

static pid_t spawn(const char *const argv[], const char *log)
{
	pid_t pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		FILE *f = fopen(log, "w");
		if (f) {
			dup2(fileno(f), 1);
			dup2(fileno(f), 2);
		}
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static int free_port(void)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockname(fd, (struct sockaddr *)&a, &len))
		die("cannot find a free port");
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static ferry_node *open_node(const char *dir)
{
	ferry_node *node;
	char *detail = NULL;
	int err = ferry_node_open(&node, dir, NULL, &detail);
	if (err)
		die("open %s: %s: %s", dir, ferry_strerror(err),
		    detail ? detail : "");
	return node;
}

/* (a) */
static double raw_lmdb(const config *cfg, const char *dir)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	char key[KEY_HEX + 1];
	uint8_t value[VALUE_BYTES];
	double t0;
	mkdir(dir, 0700);
	if (mdb_env_create(&env) ||
	    mdb_env_set_mapsize(env, (size_t)32 << 30) ||
	    mdb_env_open(env, dir, 0, 0600))
		die("cannot open raw LMDB in %s", dir);
	t0 = now_s();
	for (uint64_t i = 0; i < cfg->n;) {
		if (mdb_txn_begin(env, NULL, 0, &txn) ||
		    mdb_dbi_open(txn, NULL, 0, &dbi))
			die("raw LMDB transaction failed");
		for (uint64_t j = 0; j < cfg->txn && i < cfg->n; j++, i++) {
			record(cfg->seed, i, key, value);
			MDB_val k = {KEY_HEX, key}, v = {VALUE_BYTES, value};
			if (mdb_put(txn, dbi, &k, &v, 0))
				die("raw LMDB put failed");
		}
		if (mdb_txn_commit(txn))
			die("raw LMDB commit failed");
	}
	t0 = now_s() - t0;
	mdb_env_close(env);
	return t0;
}

static void fill(const config *cfg, ferry_node *node)
{
	char key[KEY_HEX + 1];
	uint8_t value[2 + VALUE_BYTES] = {0xc4, VALUE_BYTES};
	for (uint64_t i = 0; i < cfg->n;) {
		ferry_txn *txn;
		if (ferry_txn_begin(&txn, node))
			die("begin failed");
		for (uint64_t j = 0; j < cfg->txn && i < cfg->n; j++, i++) {
			record(cfg->seed, i, key, value + 2);
			ferry_field f = {"v", value, sizeof(value)};
			if (ferry_txn_put(txn, SCOPE, COLL, key, &f, 1))
				die("put failed: %s", ferry_node_errmsg(node));
		}
		if (ferry_txn_commit(txn))
			die("commit failed: %s", ferry_node_errmsg(node));
	}
}

static uint64_t cursor_of(ferry_node *node)
{
	uint64_t c = 0;
	ferry_changes_last(&c, node);
	return c;
}

typedef struct lag_state {
	double *committed; /* when write i's commit returned on A */
	double *lags;	   /* ms, in order of arrival on B */
	size_t n, cap;
	uint64_t cursor;
} lag_state;

/* Live writes are keys "live-I": match each arrival with its commit. */
static int on_change(const ferry_change *c, void *payload)
{
	lag_state *st = payload;
	double now = now_s();
	uint64_t i;
	st->cursor = c->cursor;
	if (strcmp(c->scope, "live") ||
	    sscanf(c->key, "live-%" SCNu64, &i) != 1 || i >= st->cap ||
	    st->committed[i] == 0)
		return 0;
	st->lags[st->n++] = (now - st->committed[i]) * 1000.0;
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(const double *v, size_t n, double p)
{
	size_t i = (size_t)ceil(p / 100.0 * (double)n);
	return n ? v[i ? i - 1 : 0] : NAN;
}

/* (c): commits into A at cfg->rate for cfg->seconds; watches B. */
static void live(const config *cfg, const char *dir_a, const char *dir_b,
		 lag_state *st)
{
	ferry_node *a = open_node(dir_a), *b = open_node(dir_b);
	double start = now_s(), next = start;
	uint64_t i = 0, written = 0;
	st->cap = (size_t)(cfg->rate * cfg->seconds) + 16;
	st->committed = calloc(st->cap, sizeof(double));
	st->lags = calloc(st->cap, sizeof(double));
	if (!st->committed || !st->lags)
		die("out of memory");
	st->cursor = cursor_of(b);
	while (now_s() - start < cfg->seconds || st->n < written) {
		double now = now_s();
		if (now - start > cfg->seconds + 10)
			die("B saw %zu of %" PRIu64 " live writes", st->n,
			    written);
		if (now >= next && now - start < cfg->seconds &&
		    i + 1 < st->cap) {
			uint8_t value[2 + VALUE_BYTES] = {0xc4, VALUE_BYTES};
			char key[32];
			ferry_txn *txn;
			snprintf(key, sizeof(key), "live-%" PRIu64, i);
			ferry_field f = {"v", value, sizeof(value)};
			if (ferry_txn_begin(&txn, a) ||
			    ferry_txn_put(txn, "live", COLL, key, &f, 1) ||
			    ferry_txn_commit(txn))
				die("live write failed: %s",
				    ferry_node_errmsg(a));
			st->committed[i++] = now_s();
			written++;
			next += 1.0 / cfg->rate;
		}
		ferry_changes(b, st->cursor, 0, on_change, st);
		struct timespec pause = {0, 100000};
		nanosleep(&pause, NULL);
	}
	ferry_node_close(a);
	ferry_node_close(b);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: ferry-bench-sync [-n N] [-t T] [--rate R] [--seconds "
		"S] "
		"[--seed SEED] [--ferry PATH] [--dir D] [--keep] [--json]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	config cfg = {1000000,	 1000, 0x5eedfe77, 1000, 10,
		      FERRY_CLI, NULL, 0,	   0};
	char base[4096], dir_raw[4200], dir_a[4200], dir_b[4200], log_a[4300],
		log_b[4300], url[64], listen[64], id_a[FERRY_ID_HEX_BYTES],
		id_b[FERRY_ID_HEX_BYTES];
	uint8_t dg_a[FERRY_HASH_BYTES], dg_b[FERRY_HASH_BYTES];
	lag_state lag = {0};

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--keep"))
			cfg.keep = 1;
		else if (!strcmp(a, "--json"))
			cfg.json = 1;
		else if (!v)
			usage();
		else if (!strcmp(a, "-n"))
			cfg.n = strtoull(v, NULL, 10), i++;
		else if (!strcmp(a, "-t"))
			cfg.txn = strtoull(v, NULL, 10), i++;
		else if (!strcmp(a, "--rate"))
			cfg.rate = atof(v), i++;
		else if (!strcmp(a, "--seconds"))
			cfg.seconds = atof(v), i++;
		else if (!strcmp(a, "--seed"))
			cfg.seed = strtoull(v, NULL, 0), i++;
		else if (!strcmp(a, "--ferry"))
			cfg.ferry = v, i++;
		else if (!strcmp(a, "--dir"))
			cfg.base = v, i++;
		else
			usage();
	}
	if (!cfg.n || !cfg.txn || cfg.rate <= 0 || cfg.seconds <= 0)
		usage();
	if (!cfg.base)
		cfg.base = getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
	snprintf(base, sizeof(base), "%s/ferry-bench-sync-XXXXXX", cfg.base);
	if (!mkdtemp(base))
		die("mkdtemp %s: %s", base, strerror(errno));
	snprintf(dir_raw, sizeof(dir_raw), "%s/raw", base);
	snprintf(dir_a, sizeof(dir_a), "%s/a", base);
	snprintf(dir_b, sizeof(dir_b), "%s/b", base);
	snprintf(log_a, sizeof(log_a), "%s/a.log", base);
	snprintf(log_b, sizeof(log_b), "%s/b.log", base);
	fprintf(stderr,
		"ferry-bench-sync: %" PRIu64 " records, seed %" PRIu64
		", in %s\n",
		cfg.n, cfg.seed, base);

	double raw_s = raw_lmdb(&cfg, dir_raw);
	ferry_node *a = open_node(dir_a), *b = open_node(dir_b);
	fill(&cfg, a);
	ferry_id_to_hex(id_a, ferry_node_id(a));
	ferry_id_to_hex(id_b, ferry_node_id(b));
	ferry_node_close(a);
	ferry_node_close(b);

	int port = free_port();
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	snprintf(url, sizeof(url), "ws://127.0.0.1:%d", port);
	run((const char *const[]){cfg.ferry, "--dir", dir_a, "trust", "add",
				  id_b, "--name", "b", "--read", "*", "--write",
				  "*", NULL});
	run((const char *const[]){cfg.ferry, "--dir", dir_b, "trust", "add",
				  id_a, "--name", "a", "--read", "*", "--write",
				  "*", NULL});
	run((const char *const[]){cfg.ferry, "--dir", dir_b, "peer", "add", url,
				  NULL});
	pid_t pa = spawn((const char *const[]){cfg.ferry, "--dir", dir_a,
					       "serve", "--listen", listen,
					       "--no-dial", NULL},
			 log_a);
	usleep(300000);

	/* (b) full sync: from B's start until B holds every change. */
	b = open_node(dir_b);
	double t0 = now_s();
	pid_t pb = spawn((const char *const[]){cfg.ferry, "--dir", dir_b,
					       "serve", "--no-listen", NULL},
			 log_b);
	while (cursor_of(b) < cfg.n) {
		if (now_s() - t0 > 600)
			die("full sync did not finish in 600 s (see %s)",
			    log_b);
		usleep(2000);
	}
	double sync_s = now_s() - t0;
	a = open_node(dir_a);
	ferry_digest(dg_a, a, SCOPE);
	ferry_digest(dg_b, b, SCOPE);
	ferry_node_close(a);
	ferry_node_close(b);
	if (memcmp(dg_a, dg_b, sizeof(dg_a)))
		die("B's digest differs from A's after the full sync");

	/* (c) live lag. */
	live(&cfg, dir_a, dir_b, &lag);
	kill(pa, SIGTERM);
	kill(pb, SIGTERM);
	waitpid(pa, NULL, 0);
	waitpid(pb, NULL, 0);
	qsort(lag.lags, lag.n, sizeof(double), cmp_double);

	double raw_rate = (double)cfg.n / raw_s,
	       sync_rate = (double)cfg.n / sync_s;
	double mb = (double)cfg.n * (KEY_HEX + VALUE_BYTES) / 1e6;
	if (cfg.json) {
		printf("{\"records\": %" PRIu64 ", \"seed\": %" PRIu64
		       ", \"raw_lmdb_per_s\": %.0f, \"full_sync_per_s\": %.0f, "
		       "\"full_sync_mb_per_s\": %.2f, \"ratio\": %.3f, "
		       "\"live_rate\": %.0f, \"live_writes\": %zu, "
		       "\"lag_ms\": {\"p50\": %.2f, \"p95\": %.2f, \"p99\": "
		       "%.2f, "
		       "\"max\": %.2f}}\n",
		       cfg.n, cfg.seed, raw_rate, sync_rate, mb / sync_s,
		       sync_rate / raw_rate, cfg.rate, lag.n,
		       pct(lag.lags, lag.n, 50), pct(lag.lags, lag.n, 95),
		       pct(lag.lags, lag.n, 99),
		       lag.n ? lag.lags[lag.n - 1] : NAN);
	} else {
		printf("ferry-bench-sync: %" PRIu64 " records (32-char keys, "
		       "100-byte values), seed %" PRIu64 "\n",
		       cfg.n, cfg.seed);
		printf("raw LMDB inserts      %10.0f records/s  %7.2f MB/s  "
		       "%7.2f s\n",
		       raw_rate, mb / raw_s, raw_s);
		printf("full sync A -> B      %10.0f changes/s  %7.2f MB/s  "
		       "%7.2f s  ratio %.2f\n",
		       sync_rate, mb / sync_s, sync_s, sync_rate / raw_rate);
		printf("live lag at %.0f writes/s for %.0f s (%zu writes): "
		       "p50 %.2f ms  p95 %.2f ms  p99 %.2f ms  max %.2f ms\n",
		       cfg.rate, cfg.seconds, lag.n, pct(lag.lags, lag.n, 50),
		       pct(lag.lags, lag.n, 95), pct(lag.lags, lag.n, 99),
		       lag.n ? lag.lags[lag.n - 1] : NAN);
	}
	free(lag.lags);
	free(lag.committed);
	if (!cfg.keep) {
		char cmd[4400];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", base);
	}
	return 0;
}
