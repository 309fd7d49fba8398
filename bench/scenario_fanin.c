/*
 * scenario_fanin.c — `ferry-bench fan-in`: one hub and K branches, each a
 * real `ferry serve` on 127.0.0.1; every branch dials the hub.
 *
 * This process opens each branch's directory and commits into it, one
 * record per transaction, at R writes/s per branch for S seconds
 * (bench_drive_run), and watches the hub's change feed: lag is first
 * visibility on the hub minus the branch's commit return. The hub sends a
 * branch only that branch's scope back, as a real hub would, so the load
 * is the fan-in itself. Meanwhile the hub's RSS and CPU come from /proc.
 * The branch writers do not flush their commits (see below); the hub's
 * applies are durable. Set against raw LMDB puts of the same records, one
 * per durable commit.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

enum {
	FI_WRITES,
	FI_OFFERED,
	FI_APPLY,
	FI_P50,
	FI_P95,
	FI_P99,
	FI_MAX,
	FI_RSS,
	FI_HWM,
	FI_CPU,
	FI_RAW,
	FI_RATIO,
	FI_N
};

static const bench_metric metrics[FI_N] = {
	[FI_WRITES] = {"writes", "writes on all branches", "writes",
		       BENCH_VALUE, 0},
	[FI_OFFERED] = {"offered_per_s", "write rate achieved", "writes/s",
			BENCH_VALUE, 1},
	[FI_APPLY] = {"hub_apply_per_s", "hub apply rate", "changes/s",
		      BENCH_VALUE, 1},
	[FI_P50] = {"lag_p50_ms", "lag p50", "ms", BENCH_VALUE, 0},
	[FI_P95] = {"lag_p95_ms", "lag p95", "ms", BENCH_VALUE, 0},
	[FI_P99] = {"lag_p99_ms", "lag p99", "ms", BENCH_VALUE, 0},
	[FI_MAX] = {"lag_max_ms", "lag max", "ms", BENCH_VALUE, 0},
	[FI_RSS] = {"hub_rss_mb", "hub RSS (max VmRSS)", "MB", BENCH_VALUE, 0},
	[FI_HWM] = {"hub_hwm_mb", "hub peak RSS (VmHWM)", "MB", BENCH_VALUE, 0},
	[FI_CPU] = {"hub_cpu_pct", "hub CPU", "% of a core", BENCH_VALUE, 0},
	[FI_RAW] = {"raw_lmdb_per_s", "raw LMDB 1-put commits", "records/s",
		    BENCH_VALUE, 1},
	[FI_RATIO] = {"apply_vs_raw_lmdb", "hub apply / raw LMDB", "x",
		      BENCH_RATIO, 0},
};

typedef struct hub_watch {
	pid_t pid;
	uint64_t max_rss_kb;
} hub_watch;

static void sample_hub(void *payload)
{
	hub_watch *w = payload;
	bench_proc p;
	if (bench_proc_read(w->pid, &p) == 0 && p.rss_kb > w->max_rss_kb)
		w->max_rss_kb = p.rss_kb;
}

/* Each branch writes one record into scope "hello"; once the hub holds
 * all K, every branch is connected and lag measures replication only. */
static void wait_connected(ferry_node **branches, unsigned k, ferry_node *hub,
			   const char *hub_dir)
{
	uint8_t v[1] = {0xc0};
	ferry_field f = {"v", v, 1};
	for (unsigned j = 0; j < k; j++) {
		char key[32];
		ferry_txn *txn = NULL;
		snprintf(key, sizeof(key), "branch-%u", j);
		if (ferry_txn_begin(&txn, branches[j]) ||
		    ferry_txn_put(txn, "hello", "records", key, &f, 1) ||
		    ferry_txn_commit(txn))
			bench_die("write on branch %u: %s", j,
				  ferry_node_errmsg(branches[j]));
	}
	double limit = 60 + k;
	for (double t0 = bench_now(); bench_now() - t0 < limit;
	     bench_sleep(0.02)) {
		uint64_t count = 0;
		if (ferry_count(&count, hub, "hello", "records") == FERRY_OK &&
		    count == k)
			return;
	}
	bench_die("not every branch reached the hub in %.0f s (see %s.log "
		  "and the branches' logs)",
		  limit, hub_dir);
}

static void run(const bench_opts *o, unsigned r, const char *dir,
		bench_run *out)
{
	unsigned k = o->branches;
	char hub_dir[BENCH_PATH], d_raw[BENCH_PATH], listen[256];
	char(*b_dir)[BENCH_PATH] = calloc(k, BENCH_PATH);
	pid_t *b_pid = calloc(k, sizeof(pid_t));
	ferry_node **branches = calloc(k, sizeof(ferry_node *));
	bench_drive d;
	bench_proc p0, p1;
	(void)r;
	if (!b_dir || !b_pid || !branches)
		bench_die("out of memory");

	bench_path(hub_dir, "%s/hub", dir);
	ferry_node_close(bench_open(hub_dir));
	hub_watch watch = {bench_serve(o, hub_dir, listen, sizeof(listen), NULL,
				       0, "serve", "--listen", "127.0.0.1:0",
				       "--no-dial", NULL),
			   0};
	bench_note("starting %u branches", k);
	for (unsigned j = 0; j < k; j++) {
		char reads[32];
		bench_path(b_dir[j], "%s/branch-%u", dir, j);
		snprintf(reads, sizeof(reads), "lag-%u", j);
		ferry_node_close(bench_open(b_dir[j]));
		bench_pair(o, b_dir[j], hub_dir, listen, reads);
		b_pid[j] = bench_serve(o, b_dir[j], NULL, 0, NULL, 0, "serve",
				       "--no-listen", NULL);
	}
	ferry_node *hub = bench_open(hub_dir);
	/* K branches are K machines with K disks; here they share one with
	 * the hub. Their commits are not flushed, so the hub's durable
	 * applies — what is measured — do not queue behind K writers'
	 * fsyncs. The hub's and the branch processes' own writes stay
	 * durable. */
	for (unsigned j = 0; j < k; j++)
		branches[j] = bench_open_unsynced(b_dir[j]);
	wait_connected(branches, k, hub, hub_dir);

	bench_note("fan-in: %u branches x %.0f writes/s for %.0f s", k, o->rate,
		   o->seconds);
	double t0 = bench_now();
	if (bench_proc_read(watch.pid, &p0))
		bench_die("cannot read /proc/%d", (int)watch.pid);
	bench_drive_run(branches, k, hub, o, 60, sample_hub, &watch, &out->lag,
			&d);
	sample_hub(&watch);
	if (bench_proc_read(watch.pid, &p1))
		bench_die("cannot read /proc/%d", (int)watch.pid);
	double wall = bench_now() - t0;
	out->converged = d.converged;

	for (unsigned j = 0; j < k; j++)
		ferry_node_close(branches[j]);
	ferry_node_close(hub);
	for (unsigned j = k; j-- > 0;)
		bench_stop(b_pid[j]);
	bench_stop(watch.pid);

	bench_record_gen gen = {o->seed, o->value_bytes, k, "",
				malloc(o->value_bytes)};
	if (!gen.value)
		bench_die("out of memory");
	bench_path(d_raw, "%s/raw", dir);
	double raw_s = bench_raw_lmdb(d_raw, d.written, 1, bench_drive_gen_fn,
				      &gen, NULL);
	free(gen.value);

	out->v[FI_WRITES] = (double)d.written;
	out->v[FI_OFFERED] = (double)d.written / o->seconds;
	out->v[FI_APPLY] = (double)d.seen / d.seconds;
	out->v[FI_P50] = bench_pct(d.lag_ms, d.seen, 50);
	out->v[FI_P95] = bench_pct(d.lag_ms, d.seen, 95);
	out->v[FI_P99] = bench_pct(d.lag_ms, d.seen, 99);
	out->v[FI_MAX] = bench_pct(d.lag_ms, d.seen, 100);
	out->v[FI_RSS] = (double)watch.max_rss_kb / 1024.0;
	out->v[FI_HWM] = (double)p1.hwm_kb / 1024.0;
	out->v[FI_CPU] = 100.0 * (p1.cpu_s - p0.cpu_s) / wall;
	out->v[FI_RAW] = (double)d.written / raw_s;
	out->v[FI_RATIO] = out->v[FI_APPLY] / out->v[FI_RAW];
	free(d.lag_ms);
	free(branches);
	free(b_pid);
	free(b_dir);
}

const bench_scenario bench_scenario_fanin = {
	"fan-in",
	"one hub, K branches writing at rate R: hub apply rate, lag, RSS, CPU",
	BENCH_OPT_BRANCHES | BENCH_OPT_RATE | BENCH_OPT_SECONDS |
		BENCH_OPT_VALUE,
	metrics,
	FI_N,
	1,
	NULL,
	run,
	NULL,
};
