/*
 * bench.h — what ferry-bench's scenarios share: options, per-run results,
 * temporary directories, `ferry` processes, seeded records, the raw LMDB
 * and raw WebSocket baselines, the lag driver and small statistics.
 *
 * A scenario runs once per `--runs` repeat in a fresh directory and fills
 * one bench_run: a value per metric (see bench_scenario.metrics) and, for
 * lag scenarios, the lag of every write over time (for --plot). Failures of
 * the machinery (a process that will not start, a full disk) end the tool
 * through bench_die(); a replica that does not converge is a result
 * (bench_run.converged = 0), reported and turned into exit status 1.
 */
#ifndef FERRY_BENCH_H
#define FERRY_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ferry.h"

/* Record keys are 16 random bytes as 32 hex characters, as UUIDs would be. */
#define BENCH_KEY_HEX 32
#define BENCH_MAX_METRICS 16
#define BENCH_PATH 4096

typedef struct bench_opts {
	const char *scenario;
	uint64_t n;	    /* records (local, full-sync, rest) */
	uint64_t txn;	    /* records per transaction */
	size_t value_bytes; /* record value size */
	double rate;	    /* writes/s per writer (live, fan-in) */
	double seconds;	    /* write time (live, fan-in); wrk time (rest) */
	unsigned branches;  /* fan-in: K */
	unsigned actions;   /* rest: actions per upload request */
	unsigned runs;
	uint64_t seed;
	const char *ferry; /* the `ferry` binary */
	const char *base;  /* where the temporary root goes */
	const char *plot;  /* SVG path or NULL */
	int keep, json, with_pouchdb;
} bench_opts;

/* One point of a lag-over-time series: when the write became visible
 * (seconds since writing started) and its lag in ms. */
typedef struct bench_series {
	double *at_s, *lag_ms;
	size_t n, cap;
} bench_series;

typedef struct bench_run {
	double v[BENCH_MAX_METRICS]; /* NAN = not measured */
	int converged;
	bench_series lag;
} bench_run;

typedef enum bench_kind {
	BENCH_VALUE, /* a measurement */
	BENCH_RATIO, /* ferry's figure over its baseline's, same run */
} bench_kind;

typedef struct bench_metric {
	const char *key;   /* JSON name */
	const char *label; /* table text */
	const char *unit;
	bench_kind kind;
	int plot; /* drawn as a bar per run by --plot */
} bench_metric;

/* Which options a scenario uses (shown with its results). */
enum {
	BENCH_OPT_N = 1 << 0,
	BENCH_OPT_TXN = 1 << 1,
	BENCH_OPT_VALUE = 1 << 2,
	BENCH_OPT_RATE = 1 << 3,
	BENCH_OPT_SECONDS = 1 << 4,
	BENCH_OPT_BRANCHES = 1 << 5,
	BENCH_OPT_ACTIONS = 1 << 6,
};

typedef struct bench_scenario {
	const char *name;
	const char *summary;
	unsigned opts; /* BENCH_OPT_* */
	const bench_metric *metrics;
	size_t nmetrics;
	int has_lag;
	/* --with-pouchdb: the mode passed to bench/peers/pouchdb_bench.sh and
	 * the ferry metric its figure is set against (NULL: not offered). */
	const char *pouch_metric;
	void (*run)(const bench_opts *o, unsigned run, const char *dir,
		    bench_run *out);
	/* What the figures include that a reader would not assume (printed
	 * with the results), or NULL. */
	const char *notes;
} bench_scenario;

extern const bench_scenario bench_scenario_local, bench_scenario_full_sync,
	bench_scenario_live, bench_scenario_fanin, bench_scenario_rest,
	bench_scenario_adapter;

/* ---- failure and cleanup ------------------------------------------------ */

/* Print "ferry-bench: ..." to stderr, stop every spawned process, remove
 * the temporary root (unless --keep) and exit 1. */
void bench_die(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2)));
/* Progress line on stderr (silent with --json, which scripts read). */
void bench_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void bench_set_quiet(int quiet);
/* The temporary root bench_die() and bench_cleanup() remove. */
void bench_set_root(const char *root, int keep);
void bench_cleanup(void);
void bench_remove_tree(const char *path);
/* snprintf into a BENCH_PATH buffer, dying on truncation. */
void bench_path(char out[BENCH_PATH], const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ---- time, records, statistics ------------------------------------------ */

double bench_now(void); /* CLOCK_MONOTONIC seconds */
void bench_sleep(double seconds);
/* Record i of the seeded data set: key (BENCH_KEY_HEX chars + NUL) and
 * value_bytes random bytes. A pure function of (seed, i). */
void bench_record(uint64_t seed, uint64_t i, char key[BENCH_KEY_HEX + 1],
		  uint8_t *value, size_t value_bytes);
/* A msgpack bin header for len bytes into hdr (5 bytes room); its size. */
size_t bench_bin_header(uint8_t hdr[5], size_t len);
/* p-th percentile (nearest rank) of sorted[0..n); NAN if n == 0. */
double bench_pct(const double *sorted, size_t n, double p);
void bench_sort(double *v, size_t n);
void bench_series_add(bench_series *s, double at_s, double lag_ms);
void bench_series_free(bench_series *s);

/* ---- libferry in this process -------------------------------------------- */

ferry_node *bench_open(const char *dir);

/* Open `dir` for writing without flushing commits to disk. For writers
 * that stand in for other machines: on one shared disk their fsyncs would
 * compete with the node being measured, which has a disk of its own in a
 * real deployment. */
ferry_node *bench_open_unsynced(const char *dir);
void bench_node_id(char out[FERRY_ID_HEX_BYTES], const char *dir);
/* Commit records [first, first + n) of the data set into (scope, "records"),
 * field "v" a msgpack bin, per_txn writes per transaction. */
void bench_fill(ferry_node *node, const char *scope, uint64_t seed,
		uint64_t first, uint64_t n, uint64_t per_txn,
		size_t value_bytes);
/* Non-zero if both nodes' digests of scope are equal. */
int bench_same_digest(ferry_node *a, ferry_node *b, const char *scope);
uint64_t bench_last_cursor(ferry_node *node);

/* ---- the raw LMDB baseline ------------------------------------------------
 */

/* Writes record i of a data set: key and value (pointers valid until the
 * next call). */
typedef void (*bench_gen_fn)(void *payload, uint64_t i, const void **key,
			     size_t *klen, const void **val, size_t *vlen);
/* Put n generated records into a fresh LMDB environment in dir, durable,
 * per_txn puts per transaction; return seconds. commit_ms (optional, n /
 * per_txn rounded up entries) receives each commit's latency. */
double bench_raw_lmdb(const char *dir, uint64_t n, uint64_t per_txn,
		      bench_gen_fn gen, void *payload, double *commit_ms);
/* bench_gen_fn over bench_record; payload is a bench_record_gen. */
typedef struct bench_record_gen {
	uint64_t seed;
	size_t value_bytes;
	unsigned writers; /* bench_drive_gen_fn: how many writers wrote */
	char key[BENCH_KEY_HEX + 16];
	uint8_t *value;
} bench_record_gen;
void bench_record_gen_fn(void *payload, uint64_t i, const void **key,
			 size_t *klen, const void **val, size_t *vlen);

/* ---- the raw WebSocket baseline (ws_raw.c) ------------------------------- */

/* Move `bytes` bytes server -> client over loopback WebSocket in ~1 MiB
 * binary messages; return seconds from the connection's establishment to
 * the last byte's arrival. */
double bench_ws_raw(uint64_t bytes);

/* ---- `ferry` processes ----------------------------------------------------
 */

/* Run `ferry --dir DIR ARGS...` to completion; die if it fails. The
 * argument list ends with NULL. Returns its stdout (malloc'd, free()). */
char *bench_ferry(const bench_opts *o, const char *dir, ...)
	__attribute__((sentinel));
/* Start `ferry --dir DIR --json serve ARGS...` (NULL-terminated) with
 * stdout and stderr in DIR.out and DIR.log, wait for its first JSON line
 * and copy its "listen" and "http" addresses (either may be NULL). */
pid_t bench_serve(const bench_opts *o, const char *dir, char *listen,
		  size_t listen_len, char *http, size_t http_len, ...)
	__attribute__((sentinel));
/* Run argv (argv[0] found on PATH) to completion with stdout in out_path
 * and stderr in err_path (NULL: out_path too); its exit status, or -1 if
 * it did not exit normally. */
int bench_exec(const char *const argv[], const char *out_path,
	       const char *err_path);
/* Start argv (argv[0] found on PATH) in the background with stdout in
 * out_path and stderr in err_path (NULL: out_path too); stopped by
 * bench_stop() or at cleanup. */
pid_t bench_spawn(const char *const argv[], const char *out_path,
		  const char *err_path);

/* A msgpack str (fixstr or str8; s at most 255 bytes) into out; returns
 * the bytes written. For building field values without a packer. */
size_t bench_pack_str(uint8_t *out, const char *s);
/* SIGTERM, wait (SIGKILL after 10 s). */
void bench_stop(pid_t pid);
/* Trust each other both ways; `dialer` keeps `listener`'s URL connected.
 * Both may write everything; `listener` may read everything from `dialer`,
 * `dialer` reads the scopes `dialer_reads` from `listener` (a hub sends a
 * branch its own scope only). */
void bench_pair(const bench_opts *o, const char *dialer, const char *listener,
		const char *listen_addr, const char *dialer_reads);

/* ---- /proc ------------------------------------------------------------------
 */

typedef struct bench_proc {
	uint64_t rss_kb, hwm_kb; /* VmRSS, VmHWM */
	double cpu_s;		 /* utime + stime */
} bench_proc;
int bench_proc_read(pid_t pid, bench_proc *out);

/* ---- the lag driver (live, fan-in) ----------------------------------------
 */

/* Writers[j] commits one record per transaction into scope "lag-J" at
 * `rate` writes/s for `seconds`; this process polls receiver's change feed
 * and takes lag = first visibility there minus the writer's commit return.
 * tick (optional) runs about every 100 ms. Waits up to `drain` seconds for
 * the receiver to see every write. */
typedef struct bench_drive {
	uint64_t written, seen;
	double seconds; /* first commit to last arrival */
	double *lag_ms; /* sorted, `seen` entries */
	int converged;	/* all seen and every scope's digest equal */
} bench_drive;
void bench_drive_run(ferry_node **writers, unsigned k, ferry_node *receiver,
		     const bench_opts *o, double drain,
		     void (*tick)(void *payload), void *payload,
		     bench_series *series, bench_drive *out);
/* The lag driver's records for the raw baseline (payload: a
 * bench_record_gen with `writers` set): record i is writer i % writers's
 * write i / writers. */
void bench_drive_gen_fn(void *payload, uint64_t i, const void **key,
			size_t *klen, const void **val, size_t *vlen);

#endif
