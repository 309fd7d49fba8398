/*
 * bench_util.c — the machinery ferry-bench's scenarios share (bench.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <lmdb.h>

#include "bench.h"

#define MAX_PROCS 1024
#define MAX_ARGS 32

static pid_t procs[MAX_PROCS];
static size_t nprocs;
static char root_dir[BENCH_PATH];
static int keep_root, quiet, dying;

/* ------------------------------------------------------------------------ */
/* Failure and cleanup                                                      */
/* ------------------------------------------------------------------------ */

void bench_set_quiet(int q)
{
	quiet = q;
}

void bench_set_root(const char *root, int keep)
{
	snprintf(root_dir, sizeof(root_dir), "%s", root);
	keep_root = keep;
}

static void forget(pid_t pid)
{
	for (size_t i = 0; i < nprocs; i++)
		if (procs[i] == pid) {
			procs[i] = procs[--nprocs];
			return;
		}
}

/* Processes are stopped newest first: dialers before the hub they dial,
 * so nobody spends the shutdown reconnecting. */
void bench_cleanup(void)
{
	while (nprocs)
		bench_stop(procs[nprocs - 1]);
	if (!*root_dir)
		return;
	if (keep_root)
		fprintf(stderr, "ferry-bench: kept %s\n", root_dir);
	else
		bench_remove_tree(root_dir);
	*root_dir = 0;
}

void bench_die(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "ferry-bench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	/* A failure during cleanup must not loop back into it. */
	if (!dying) {
		dying = 1;
		keep_root = 1; /* the logs say why */
		bench_cleanup();
	}
	exit(1);
}

void bench_note(const char *fmt, ...)
{
	va_list ap;
	if (quiet)
		return;
	fprintf(stderr, "ferry-bench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void bench_remove_tree(const char *path)
{
	DIR *d = opendir(path);
	if (d) {
		struct dirent *ent;
		while ((ent = readdir(d)) != NULL) {
			char child[BENCH_PATH + 256];
			struct stat st;
			if (!strcmp(ent->d_name, ".") ||
			    !strcmp(ent->d_name, ".."))
				continue;
			snprintf(child, sizeof(child), "%s/%s", path,
				 ent->d_name);
			if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode))
				bench_remove_tree(child);
			else
				unlink(child);
		}
		closedir(d);
	}
	rmdir(path);
}

void bench_path(char out[BENCH_PATH], const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int len = vsnprintf(out, BENCH_PATH, fmt, ap);
	va_end(ap);
	if (len < 0 || len >= BENCH_PATH)
		bench_die("path too long: %s", out);
}

/* ------------------------------------------------------------------------ */
/* Time, records, statistics                                                */
/* ------------------------------------------------------------------------ */

double bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void bench_sleep(double seconds)
{
	struct timespec ts = {
		(time_t)seconds,
		(long)((seconds - (double)(time_t)seconds) * 1e9)};
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* splitmix64: the data set is a pure function of the seed. */
static uint64_t mix(uint64_t *state)
{
	uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

void bench_record(uint64_t seed, uint64_t i, char key[BENCH_KEY_HEX + 1],
		  uint8_t *value, size_t value_bytes)
{
	static const char hex[] = "0123456789abcdef";
	uint64_t st = seed ^ (i * UINT64_C(0xd1b54a32d192ed03));
	uint8_t raw[16];
	for (int h = 0; h < 2; h++) {
		uint64_t r = mix(&st);
		memcpy(raw + 8 * h, &r, 8);
	}
	for (int b = 0; b < 16; b++) {
		key[2 * b] = hex[raw[b] >> 4];
		key[2 * b + 1] = hex[raw[b] & 15];
	}
	key[BENCH_KEY_HEX] = 0;
	for (size_t v = 0; v < value_bytes; v += 8) {
		uint64_t r = mix(&st);
		memcpy(value + v, &r,
		       value_bytes - v < 8 ? value_bytes - v : 8);
	}
}

size_t bench_bin_header(uint8_t hdr[5], size_t len)
{
	if (len <= 0xff) {
		hdr[0] = 0xc4;
		hdr[1] = (uint8_t)len;
		return 2;
	}
	if (len <= 0xffff) {
		hdr[0] = 0xc5;
		hdr[1] = (uint8_t)(len >> 8);
		hdr[2] = (uint8_t)len;
		return 3;
	}
	hdr[0] = 0xc6;
	for (int b = 0; b < 4; b++)
		hdr[1 + b] = (uint8_t)(len >> (24 - 8 * b));
	return 5;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

void bench_sort(double *v, size_t n)
{
	if (n)
		qsort(v, n, sizeof(*v), cmp_double);
}

double bench_pct(const double *sorted, size_t n, double p)
{
	size_t i = (size_t)ceil(p / 100.0 * (double)n);
	return n ? sorted[i ? i - 1 : 0] : NAN;
}

void bench_series_add(bench_series *s, double at_s, double lag_ms)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 1024;
		s->at_s = realloc(s->at_s, s->cap * sizeof(double));
		s->lag_ms = realloc(s->lag_ms, s->cap * sizeof(double));
		if (!s->at_s || !s->lag_ms)
			bench_die("out of memory");
	}
	s->at_s[s->n] = at_s;
	s->lag_ms[s->n++] = lag_ms;
}

void bench_series_free(bench_series *s)
{
	free(s->at_s);
	free(s->lag_ms);
	memset(s, 0, sizeof(*s));
}

/* ------------------------------------------------------------------------ */
/* libferry in this process                                                 */
/* ------------------------------------------------------------------------ */

ferry_node *bench_open(const char *dir)
{
	ferry_node *node = NULL;
	char *detail = NULL;
	int err = ferry_node_open(&node, dir, NULL, &detail);
	if (err)
		bench_die("open %s: %s: %s", dir, ferry_strerror(err),
			  detail ? detail : "");
	return node;
}

ferry_node *bench_open_unsynced(const char *dir)
{
	ferry_node_options opts = FERRY_NODE_OPTIONS_INIT;
	ferry_node *node = NULL;
	char *detail = NULL;
	int err;
	opts.no_sync = 1;
	err = ferry_node_open(&node, dir, &opts, &detail);
	if (err)
		bench_die("open %s: %s: %s", dir, ferry_strerror(err),
			  detail ? detail : "");
	return node;
}

void bench_node_id(char out[FERRY_ID_HEX_BYTES], const char *dir)
{
	ferry_node *node = bench_open(dir);
	ferry_id_to_hex(out, ferry_node_id(node));
	ferry_node_close(node);
}

#define FERRY_CHECK(node, expr)                                                \
	do {                                                                   \
		int ferry_rc_ = (expr);                                        \
		if (ferry_rc_)                                                 \
			bench_die("%s: %s: %s", #expr,                         \
				  ferry_strerror(ferry_rc_),                   \
				  ferry_node_errmsg(node));                    \
	} while (0)

void bench_fill(ferry_node *node, const char *scope, uint64_t seed,
		uint64_t first, uint64_t n, uint64_t per_txn,
		size_t value_bytes)
{
	char key[BENCH_KEY_HEX + 1];
	uint8_t *value = malloc(value_bytes + 5);
	if (!value)
		bench_die("out of memory");
	size_t hdr = bench_bin_header(value, value_bytes);
	ferry_field f = {"v", value, hdr + value_bytes};
	for (uint64_t i = first; i < first + n;) {
		ferry_txn *txn = NULL;
		FERRY_CHECK(node, ferry_txn_begin(&txn, node));
		for (uint64_t j = 0; j < per_txn && i < first + n; j++, i++) {
			bench_record(seed, i, key, value + hdr, value_bytes);
			FERRY_CHECK(node, ferry_txn_put(txn, scope, "records",
							key, &f, 1));
		}
		FERRY_CHECK(node, ferry_txn_commit(txn));
	}
	free(value);
}

int bench_same_digest(ferry_node *a, ferry_node *b, const char *scope)
{
	uint8_t da[FERRY_HASH_BYTES], db[FERRY_HASH_BYTES];
	FERRY_CHECK(a, ferry_digest(da, a, scope));
	FERRY_CHECK(b, ferry_digest(db, b, scope));
	return !memcmp(da, db, sizeof(da));
}

uint64_t bench_last_cursor(ferry_node *node)
{
	uint64_t c = 0;
	FERRY_CHECK(node, ferry_changes_last(&c, node));
	return c;
}

/* ------------------------------------------------------------------------ */
/* Raw LMDB                                                                 */
/* ------------------------------------------------------------------------ */

#define MDB_CHECK(expr)                                                        \
	do {                                                                   \
		int mdb_rc_ = (expr);                                          \
		if (mdb_rc_)                                                   \
			bench_die("%s: %s", #expr, mdb_strerror(mdb_rc_));     \
	} while (0)

double bench_raw_lmdb(const char *dir, uint64_t n, uint64_t per_txn,
		      bench_gen_fn gen, void *payload, double *commit_ms)
{
	MDB_env *env = NULL;
	MDB_dbi dbi;
	MDB_txn *txn = NULL;
	MDB_stat ms;

	if (mkdir(dir, 0700) != 0)
		bench_die("mkdir %s: %s", dir, strerror(errno));
	MDB_CHECK(mdb_env_create(&env));
	/* Address space only; random keys need several times the data. */
	MDB_CHECK(mdb_env_set_mapsize(env, (size_t)32 << 30));
	MDB_CHECK(mdb_env_open(env, dir, 0, 0600));
	MDB_CHECK(mdb_txn_begin(env, NULL, 0, &txn));
	MDB_CHECK(mdb_dbi_open(txn, NULL, 0, &dbi));
	MDB_CHECK(mdb_txn_commit(txn));

	double t0 = bench_now();
	for (uint64_t i = 0, c = 0; i < n; c++) {
		double tc = bench_now();
		MDB_CHECK(mdb_txn_begin(env, NULL, 0, &txn));
		for (uint64_t j = 0; j < per_txn && i < n; j++, i++) {
			MDB_val k, v;
			gen(payload, i, (const void **)&k.mv_data, &k.mv_size,
			    (const void **)&v.mv_data, &v.mv_size);
			MDB_CHECK(mdb_put(txn, dbi, &k, &v, 0));
		}
		MDB_CHECK(mdb_txn_commit(txn));
		if (commit_ms)
			commit_ms[c] = (bench_now() - tc) * 1000.0;
	}
	double seconds = bench_now() - t0;

	MDB_CHECK(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
	MDB_CHECK(mdb_stat(txn, dbi, &ms));
	mdb_txn_abort(txn);
	mdb_env_close(env);
	if (ms.ms_entries != n)
		bench_die("raw LMDB holds %zu records, expected %" PRIu64,
			  ms.ms_entries, n);
	return seconds;
}

void bench_record_gen_fn(void *payload, uint64_t i, const void **key,
			 size_t *klen, const void **val, size_t *vlen)
{
	bench_record_gen *g = payload;
	bench_record(g->seed, i, g->key, g->value, g->value_bytes);
	*key = g->key;
	*klen = BENCH_KEY_HEX;
	*val = g->value;
	*vlen = g->value_bytes;
}

/* ------------------------------------------------------------------------ */
/* `ferry` processes                                                        */
/* ------------------------------------------------------------------------ */

static size_t build_argv(const char *argv[MAX_ARGS], const bench_opts *o,
			 const char *dir, const char *first, va_list ap)
{
	size_t n = 0;
	argv[n++] = o->ferry;
	argv[n++] = "--dir";
	argv[n++] = dir;
	for (const char *a = first; a; a = va_arg(ap, const char *)) {
		if (n + 1 >= MAX_ARGS)
			bench_die("too many arguments for ferry");
		argv[n++] = a;
	}
	argv[n] = NULL;
	return n;
}

static pid_t spawn(const char *const argv[], int out_fd, int err_fd)
{
	pid_t pid = fork();
	if (pid < 0)
		bench_die("fork: %s", strerror(errno));
	if (pid == 0) {
		dup2(out_fd, 1);
		dup2(err_fd, 2);
		/* Its own process group: a ^C to ferry-bench is ours to
		 * forward, so every process is stopped in order. */
		setpgid(0, 0);
		execvp(argv[0], (char *const *)argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	if (nprocs == MAX_PROCS)
		bench_die("more than %d processes", MAX_PROCS);
	procs[nprocs++] = pid;
	return pid;
}

char *bench_ferry(const bench_opts *o, const char *dir, ...)
{
	const char *argv[MAX_ARGS];
	va_list ap;
	int out[2], status;
	FILE *err = tmpfile();
	char *buf = NULL;
	size_t len = 0, cap = 0;

	va_start(ap, dir);
	build_argv(argv, o, dir, va_arg(ap, const char *), ap);
	va_end(ap);
	if (!err || pipe(out))
		bench_die("pipe: %s", strerror(errno));
	pid_t pid = spawn(argv, out[1], fileno(err));
	close(out[1]);
	for (;;) {
		if (len + 4096 + 1 > cap) {
			cap = cap ? 2 * cap : 8192;
			buf = realloc(buf, cap);
			if (!buf)
				bench_die("out of memory");
		}
		ssize_t got = read(out[0], buf + len, cap - len - 1);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		len += (size_t)got;
	}
	buf[len] = 0;
	close(out[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	forget(pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		char msg[2048] = "";
		rewind(err);
		size_t m = fread(msg, 1, sizeof(msg) - 1, err);
		msg[m] = 0;
		bench_die("ferry --dir %s %s %s failed:\n%s", dir, argv[3],
			  argv[4] ? argv[4] : "", msg);
	}
	fclose(err);
	return buf;
}

pid_t bench_spawn(const char *const argv[], const char *out_path,
		  const char *err_path)
{
	int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	int err = err_path ? open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600)
			   : out;
	if (out < 0 || err < 0)
		bench_die("open %s: %s", err < 0 ? err_path : out_path,
			  strerror(errno));
	pid_t pid = spawn(argv, out, err);
	close(out);
	if (err != out)
		close(err);
	return pid;
}

int bench_exec(const char *const argv[], const char *out_path,
	       const char *err_path)
{
	int status;
	pid_t pid = bench_spawn(argv, out_path, err_path);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	forget(pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void copy_addr(json_t *doc, const char *name, char *out, size_t len)
{
	const char *s = json_string_value(json_object_get(doc, name));
	if (out)
		snprintf(out, len, "%s", s ? s : "");
}

pid_t bench_serve(const bench_opts *o, const char *dir, char *listen,
		  size_t listen_len, char *http, size_t http_len, ...)
{
	const char *argv[MAX_ARGS];
	char out_path[BENCH_PATH], log_path[BENCH_PATH];
	va_list ap;

	bench_path(out_path, "%s.out", dir);
	bench_path(log_path, "%s.log", dir);
	va_start(ap, http_len);
	build_argv(argv, o, dir, "--json", ap);
	va_end(ap);
	/* build_argv took "--json" as the first argument; "serve" follows. */
	int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	int log = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (out < 0 || log < 0)
		bench_die("open %s: %s", out_path, strerror(errno));
	pid_t pid = spawn(argv, out, log);
	close(out);
	close(log);

	/* Its first line says where it listens: it is up once that is out. */
	double t0 = bench_now();
	for (;;) {
		char line[4096];
		FILE *f = fopen(out_path, "r");
		int got =
			f && fgets(line, sizeof(line), f) && strchr(line, '\n');
		if (f)
			fclose(f);
		if (got) {
			json_t *doc = json_loads(line, 0, NULL);
			if (!doc)
				bench_die("%s: not JSON: %s", out_path, line);
			copy_addr(doc, "listen", listen, listen_len);
			copy_addr(doc, "http", http, http_len);
			json_decref(doc);
			return pid;
		}
		if (waitpid(pid, NULL, WNOHANG) == pid) {
			forget(pid);
			bench_die("ferry serve in %s exited at start (see %s)",
				  dir, log_path);
		}
		if (bench_now() - t0 > 60)
			bench_die("ferry serve in %s did not start in 60 s "
				  "(see %s)",
				  dir, log_path);
		bench_sleep(0.01);
	}
}

void bench_stop(pid_t pid)
{
	int status;
	forget(pid);
	kill(pid, SIGTERM);
	for (double t0 = bench_now(); bench_now() - t0 < 10;) {
		pid_t got = waitpid(pid, &status, WNOHANG);
		if (got == pid || (got < 0 && errno != EINTR))
			return;
		bench_sleep(0.005);
	}
	fprintf(stderr, "ferry-bench: process %d ignored SIGTERM; killed\n",
		(int)pid);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
}

/* The name a node is trusted under: its directory's last component. */
static const char *base_name(const char *dir)
{
	const char *slash = strrchr(dir, '/');
	return slash ? slash + 1 : dir;
}

void bench_pair(const bench_opts *o, const char *dialer, const char *listener,
		const char *listen_addr, const char *dialer_reads)
{
	char id_d[FERRY_ID_HEX_BYTES], id_l[FERRY_ID_HEX_BYTES], url[300];
	bench_node_id(id_d, dialer);
	bench_node_id(id_l, listener);
	snprintf(url, sizeof(url), "ws://%s", listen_addr);
	free(bench_ferry(o, listener, "trust", "add", id_d, "--name",
			 base_name(dialer), "--read", dialer_reads, "--write",
			 "*", NULL));
	free(bench_ferry(o, dialer, "trust", "add", id_l, "--name",
			 base_name(listener), "--read", "*", "--write", "*",
			 NULL));
	free(bench_ferry(o, dialer, "peer", "add", url, NULL));
}

/* ------------------------------------------------------------------------ */
/* /proc                                                                    */
/* ------------------------------------------------------------------------ */

int bench_proc_read(pid_t pid, bench_proc *out)
{
	char path[64], line[512];
	unsigned long long ut = 0, st = 0;
	FILE *f;

	memset(out, 0, sizeof(*out));
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (!(f = fopen(path, "r")))
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long kb;
		if (sscanf(line, "VmRSS: %llu", &kb) == 1)
			out->rss_kb = kb;
		else if (sscanf(line, "VmHWM: %llu", &kb) == 1)
			out->hwm_kb = kb;
	}
	fclose(f);
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (!(f = fopen(path, "r")))
		return -1;
	/* The command name may hold spaces: fields count from its ')'. */
	char *close_paren =
		fgets(line, sizeof(line), f) ? strrchr(line, ')') : NULL;
	fclose(f);
	if (!close_paren ||
	    sscanf(close_paren + 2,
		   "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
		   &st) != 2)
		return -1;
	out->cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* The lag driver                                                           */
/* ------------------------------------------------------------------------ */

typedef struct drive_state {
	unsigned k;
	size_t cap;	   /* writes per writer we have room for */
	double *committed; /* [j * cap + i]: when write i of writer j
			      returned from commit; 0 = not yet */
	double start;
	uint64_t cursor;
	bench_series *series;
	double *lags;
	size_t nlags;
	double last_arrival;
} drive_state;

/* The receiver's feed: match each arrival with its commit. */
static int on_change(const ferry_change *c, void *payload)
{
	drive_state *st = payload;
	unsigned j;
	uint64_t i;
	char tail;
	double now = bench_now();
	st->cursor = c->cursor;
	if (sscanf(c->scope, "lag-%u%c", &j, &tail) != 1 || j >= st->k ||
	    sscanf(c->key, "%" SCNu64 "%c", &i, &tail) != 1 || i >= st->cap ||
	    st->committed[(size_t)j * st->cap + i] == 0)
		return 0;
	double lag = (now - st->committed[(size_t)j * st->cap + i]) * 1000.0;
	/* Seen once: a change visible twice (it cannot be) is not a sample. */
	st->committed[(size_t)j * st->cap + i] = 0;
	st->lags[st->nlags++] = lag;
	st->last_arrival = now;
	if (st->series)
		bench_series_add(st->series, now - st->start, lag);
	return 0;
}

static void drive_write(ferry_node *w, unsigned j, uint64_t i,
			const bench_opts *o, uint8_t *value, size_t hdr)
{
	char scope[32], key[32], rkey[BENCH_KEY_HEX + 1];
	ferry_txn *txn = NULL;
	ferry_field f = {"v", value, hdr + o->value_bytes};
	snprintf(scope, sizeof(scope), "lag-%u", j);
	snprintf(key, sizeof(key), "%" PRIu64, i);
	bench_record(o->seed, ((uint64_t)j << 32) | i, rkey, value + hdr,
		     o->value_bytes);
	FERRY_CHECK(w, ferry_txn_begin(&txn, w));
	FERRY_CHECK(w, ferry_txn_put(txn, scope, "records", key, &f, 1));
	FERRY_CHECK(w, ferry_txn_commit(txn));
}

void bench_drive_run(ferry_node **writers, unsigned k, ferry_node *receiver,
		     const bench_opts *o, double drain,
		     void (*tick)(void *payload), void *payload,
		     bench_series *series, bench_drive *out)
{
	drive_state st = {0};
	uint64_t *count = calloc(k, sizeof(uint64_t));
	double *next = calloc(k, sizeof(double));
	uint8_t *value = malloc(o->value_bytes + 5);
	size_t hdr = value ? bench_bin_header(value, o->value_bytes) : 0;

	st.k = k;
	st.cap = (size_t)(o->rate * o->seconds) + 16;
	st.committed = calloc((size_t)k * st.cap, sizeof(double));
	st.lags = calloc((size_t)k * st.cap, sizeof(double));
	st.series = series;
	if (!count || !next || !value || !st.committed || !st.lags)
		bench_die("out of memory");
	st.cursor = bench_last_cursor(receiver);
	memset(out, 0, sizeof(*out));

	/* Writers start staggered across one interval so K writers at R
	 * make a steady K * R, not K-write bursts. */
	st.start = bench_now();
	for (unsigned j = 0; j < k; j++)
		next[j] = st.start + (double)j / ((double)k * o->rate);
	double last_tick = st.start;
	for (;;) {
		double now = bench_now();
		int writing = now - st.start < o->seconds, wrote = 0;
		if (!writing && st.nlags >= out->written)
			break;
		if (!writing && now - st.start > o->seconds + drain)
			break;
		/* At most one write per writer per pass: a writer that fell
		 * behind catches up without starving the feed poll. */
		for (unsigned j = 0; writing && j < k; j++) {
			if (now < next[j] || count[j] + 1 >= st.cap)
				continue;
			drive_write(writers[j], j, count[j], o, value, hdr);
			st.committed[(size_t)j * st.cap + count[j]] =
				bench_now();
			count[j]++;
			out->written++;
			next[j] += 1.0 / o->rate;
			wrote = 1;
		}
		FERRY_CHECK(receiver, ferry_changes(receiver, st.cursor, 0,
						    on_change, &st));
		if (tick && now - last_tick >= 0.1) {
			tick(payload);
			last_tick = now;
		}
		if (!wrote)
			bench_sleep(0.0001);
	}
	out->seen = st.nlags;
	out->seconds = st.last_arrival - st.start;
	bench_sort(st.lags, st.nlags);
	out->lag_ms = st.lags;
	out->converged = st.nlags == out->written;
	for (unsigned j = 0; out->converged && j < k; j++) {
		char scope[32];
		snprintf(scope, sizeof(scope), "lag-%u", j);
		out->converged = bench_same_digest(writers[j], receiver, scope);
	}
	free(st.committed);
	free(count);
	free(next);
	free(value);
}

void bench_drive_gen_fn(void *payload, uint64_t i, const void **key,
			size_t *klen, const void **val, size_t *vlen)
{
	bench_record_gen *g = payload;
	char rkey[BENCH_KEY_HEX + 1];
	uint64_t j = i % g->writers, w = i / g->writers;
	bench_record(g->seed, (j << 32) | w, rkey, g->value, g->value_bytes);
	*klen = (size_t)snprintf(g->key, sizeof(g->key),
				 "lag-%" PRIu64 "/%" PRIu64, j, w);
	*key = g->key;
	*val = g->value;
	*vlen = g->value_bytes;
}

size_t bench_pack_str(uint8_t *out, const char *s)
{
	size_t len = strlen(s), hdr = len < 32 ? 1 : 2;
	if (len < 32) {
		out[0] = (uint8_t)(0xa0 | len);
	} else {
		out[0] = 0xd9;
		out[1] = (uint8_t)len;
	}
	memcpy(out + hdr, s, len);
	return hdr + len;
}
