/*
 * scenario_sync.c — two real `ferry serve` processes on 127.0.0.1: node A
 * listens, node B dials it.
 *
 * `full-sync`: A holds N records (written through libferry, not timed), B
 * is empty; the clock runs from B's start until B holds every change and
 * its digest equals A's. Set against raw LMDB puts of the same records
 * (changes/s) and raw WebSocket over loopback moving the same payload
 * bytes (MB/s), both in the same run.
 *
 * `live`: with A and B connected, this process commits into A's directory
 * one record per transaction at R writes/s for S seconds (the serving
 * process notices another process's commits) and watches B's change feed
 * (bench_drive_run). Set against raw LMDB's durable one-put commit latency
 * for the same records: a change cannot be visible on B sooner than one
 * such commit there.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

typedef struct pair {
	char a[BENCH_PATH], b[BENCH_PATH];
	pid_t pa, pb;
} pair;

/* Node directories exist (created through libferry) before this; A starts
 * listening, the two trust each other, B dials A. */
static void pair_start_a(const bench_opts *o, pair *p)
{
	char listen[256];
	p->pa = bench_serve(o, p->a, listen, sizeof(listen), NULL, 0, "serve",
			    "--listen", "127.0.0.1:0", "--no-dial", NULL);
	bench_pair(o, p->b, p->a, listen, "*");
}

static void pair_start_b(const bench_opts *o, pair *p)
{
	p->pb = bench_serve(o, p->b, NULL, 0, NULL, 0, "serve", "--no-listen",
			    NULL);
}

static void pair_stop(pair *p)
{
	bench_stop(p->pb);
	bench_stop(p->pa);
}

static void pair_dirs(pair *p, const char *dir)
{
	bench_path(p->a, "%s/a", dir);
	bench_path(p->b, "%s/b", dir);
	ferry_node_close(bench_open(p->a));
	ferry_node_close(bench_open(p->b));
}

/* ------------------------------------------------------------------------ */
/* full-sync                                                                */
/* ------------------------------------------------------------------------ */

enum {
	FS_RAW,
	FS_WS,
	FS_RATE,
	FS_MB,
	FS_SECONDS,
	FS_RATIO_LMDB,
	FS_RATIO_WS,
	FS_N
};

static const bench_metric fs_metrics[FS_N] = {
	[FS_RAW] = {"raw_lmdb_per_s", "raw LMDB puts", "records/s", BENCH_VALUE,
		    1},
	[FS_WS] = {"raw_ws_mb_per_s", "raw WebSocket loopback", "MB/s",
		   BENCH_VALUE, 0},
	[FS_RATE] = {"sync_changes_per_s", "full sync A -> B", "changes/s",
		     BENCH_VALUE, 1},
	[FS_MB] = {"sync_mb_per_s", "full sync payload", "MB/s", BENCH_VALUE,
		   0},
	[FS_SECONDS] = {"sync_seconds", "full sync time", "s", BENCH_VALUE, 0},
	[FS_RATIO_LMDB] = {"sync_vs_raw_lmdb", "sync / raw LMDB (changes/s)",
			   "x", BENCH_RATIO, 0},
	[FS_RATIO_WS] = {"sync_vs_raw_ws", "sync / raw WebSocket (MB/s)", "x",
			 BENCH_RATIO, 0},
};

static void full_sync(const bench_opts *o, unsigned r, const char *dir,
		      bench_run *out)
{
	char d_raw[BENCH_PATH];
	pair p;
	bench_record_gen gen = {o->seed, o->value_bytes, 0, "",
				malloc(o->value_bytes)};
	double payload_mb =
		(double)o->n * (BENCH_KEY_HEX + o->value_bytes) / 1e6;
	(void)r;
	if (!gen.value)
		bench_die("out of memory");

	bench_path(d_raw, "%s/raw", dir);
	bench_note("raw LMDB: %llu puts", (unsigned long long)o->n);
	double raw_s = bench_raw_lmdb(d_raw, o->n, o->txn, bench_record_gen_fn,
				      &gen, NULL);
	free(gen.value);
	bench_note("raw WebSocket: %.1f MB", payload_mb);
	double ws_s = bench_ws_raw((uint64_t)(payload_mb * 1e6));

	bench_note("filling A with %llu records", (unsigned long long)o->n);
	pair_dirs(&p, dir);
	ferry_node *a = bench_open(p.a);
	bench_fill(a, "bench", o->seed, 0, o->n, o->txn, o->value_bytes);
	pair_start_a(o, &p);

	bench_note("full sync A -> B");
	ferry_node *b = bench_open(p.b);
	double limit = 120 + (double)o->n / 1000, sync_s = NAN;
	double t0 = bench_now();
	pair_start_b(o, &p);
	while (bench_now() - t0 < limit) {
		if (bench_last_cursor(b) >= o->n &&
		    bench_same_digest(a, b, NULL)) {
			sync_s = bench_now() - t0;
			break;
		}
		bench_sleep(0.002);
	}
	out->converged = !isnan(sync_s);
	if (!out->converged)
		bench_note("B did not converge in %.0f s (see %s.log)", limit,
			   p.b);
	ferry_node_close(b);
	ferry_node_close(a);
	pair_stop(&p);

	out->v[FS_RAW] = (double)o->n / raw_s;
	out->v[FS_WS] = payload_mb / ws_s;
	out->v[FS_RATE] = (double)o->n / sync_s;
	out->v[FS_MB] = payload_mb / sync_s;
	out->v[FS_SECONDS] = sync_s;
	out->v[FS_RATIO_LMDB] = raw_s / sync_s;
	out->v[FS_RATIO_WS] = ws_s / sync_s;
}

const bench_scenario bench_scenario_full_sync = {
	"full-sync",
	"N changes on A, empty B: time until B's digest equals A's",
	BENCH_OPT_N | BENCH_OPT_TXN | BENCH_OPT_VALUE,
	fs_metrics,
	FS_N,
	0,
	"sync_changes_per_s",
	full_sync,
	NULL,
};

/* ------------------------------------------------------------------------ */
/* live                                                                     */
/* ------------------------------------------------------------------------ */

enum {
	LV_WRITES,
	LV_RATE,
	LV_P50,
	LV_P95,
	LV_P99,
	LV_MAX,
	LV_RAW_P50,
	LV_RATIO,
	LV_N
};

static const bench_metric lv_metrics[LV_N] = {
	[LV_WRITES] = {"writes", "writes on A", "writes", BENCH_VALUE, 0},
	[LV_RATE] = {"writes_per_s", "write rate achieved", "writes/s",
		     BENCH_VALUE, 1},
	[LV_P50] = {"lag_p50_ms", "lag p50", "ms", BENCH_VALUE, 0},
	[LV_P95] = {"lag_p95_ms", "lag p95", "ms", BENCH_VALUE, 0},
	[LV_P99] = {"lag_p99_ms", "lag p99", "ms", BENCH_VALUE, 0},
	[LV_MAX] = {"lag_max_ms", "lag max", "ms", BENCH_VALUE, 0},
	[LV_RAW_P50] = {"raw_commit_p50_ms", "raw LMDB 1-put commit p50", "ms",
			BENCH_VALUE, 0},
	[LV_RATIO] = {"lag_p50_vs_raw_commit", "lag p50 / raw commit p50", "x",
		      BENCH_RATIO, 0},
};

/* Wait until a record written on A is visible on B: the pair is
 * connected and caught up, so lag measures replication, not dialing. */
static void wait_connected(ferry_node *a, ferry_node *b, const pair *p)
{
	uint8_t v[1] = {0xc0};
	ferry_field f = {"v", v, 1};
	ferry_txn *txn = NULL;
	ferry_record *rec = NULL;
	if (ferry_txn_begin(&txn, a) ||
	    ferry_txn_put(txn, "hello", "records", "hello", &f, 1) ||
	    ferry_txn_commit(txn))
		bench_die("write on A: %s", ferry_node_errmsg(a));
	for (double t0 = bench_now(); bench_now() - t0 < 60;
	     bench_sleep(0.01)) {
		if (ferry_get(&rec, b, "hello", "records", "hello") ==
		    FERRY_OK) {
			ferry_record_free(rec);
			return;
		}
	}
	bench_die("B did not connect to A in 60 s (see %s.log)", p->b);
}

static void live(const bench_opts *o, unsigned r, const char *dir,
		 bench_run *out)
{
	char d_raw[BENCH_PATH];
	pair p;
	bench_drive d;
	(void)r;

	pair_dirs(&p, dir);
	pair_start_a(o, &p);
	pair_start_b(o, &p);
	ferry_node *a = bench_open(p.a), *b = bench_open(p.b);
	wait_connected(a, b, &p);
	bench_note("live: %.0f writes/s for %.0f s", o->rate, o->seconds);
	bench_drive_run(&a, 1, b, o, 30, NULL, NULL, &out->lag, &d);
	ferry_node_close(a);
	ferry_node_close(b);
	pair_stop(&p);
	out->converged = d.converged;

	/* The same records, one durable put per commit, after the nodes
	 * stopped so they do not share the disk with it. */
	bench_record_gen gen = {o->seed, o->value_bytes, 1, "",
				malloc(o->value_bytes)};
	double *commit_ms = malloc((d.written + 1) * sizeof(double));
	if (!gen.value || !commit_ms)
		bench_die("out of memory");
	bench_path(d_raw, "%s/raw", dir);
	bench_raw_lmdb(d_raw, d.written, 1, bench_drive_gen_fn, &gen,
		       commit_ms);
	bench_sort(commit_ms, d.written);
	double raw_p50 = bench_pct(commit_ms, d.written, 50);

	out->v[LV_WRITES] = (double)d.written;
	out->v[LV_RATE] = (double)d.written / o->seconds;
	out->v[LV_P50] = bench_pct(d.lag_ms, d.seen, 50);
	out->v[LV_P95] = bench_pct(d.lag_ms, d.seen, 95);
	out->v[LV_P99] = bench_pct(d.lag_ms, d.seen, 99);
	out->v[LV_MAX] = bench_pct(d.lag_ms, d.seen, 100);
	out->v[LV_RAW_P50] = raw_p50;
	out->v[LV_RATIO] = out->v[LV_P50] / raw_p50;
	free(d.lag_ms);
	free(commit_ms);
	free(gen.value);
}

const bench_scenario bench_scenario_live = {
	"live",
	"A writes at a steady rate while B is connected: replication lag",
	BENCH_OPT_RATE | BENCH_OPT_SECONDS | BENCH_OPT_VALUE,
	lv_metrics,
	LV_N,
	1,
	"lag_p50_ms",
	live,
	NULL,
};
