/*
 * scenario_local.c — `ferry-bench local`: how close one node's storage path
 * comes to raw LMDB on the same machine and disk.
 *
 * One run writes the same N records three ways, durable, T per transaction:
 *   (a) raw LMDB puts into one unnamed database (the limit);
 *   (b) ferry local commits: each record one field "v" (a msgpack bin);
 *   (c) ferry segment apply: everything (b) holds, exported into memory
 *       first (not timed), then applied batch by batch into a fresh node.
 * (c) must end with (b)'s digest: that is the run's convergence.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

enum { RAW, COMMIT, APPLY, COMMIT_RATIO, APPLY_RATIO, NMETRICS };

static const bench_metric metrics[NMETRICS] = {
	[RAW] = {"raw_lmdb_per_s", "raw LMDB puts", "records/s", BENCH_VALUE,
		 1},
	[COMMIT] = {"commit_per_s", "ferry local commits", "records/s",
		    BENCH_VALUE, 1},
	[APPLY] = {"apply_per_s", "ferry segment apply", "changes/s",
		   BENCH_VALUE, 1},
	[COMMIT_RATIO] = {"commit_vs_raw_lmdb", "commits / raw LMDB", "x",
			  BENCH_RATIO, 0},
	[APPLY_RATIO] = {"apply_vs_raw_lmdb", "apply / raw LMDB", "x",
			 BENCH_RATIO, 0},
};

typedef struct batch {
	void *buf;
	size_t len;
} batch;

/* (c): export src whole (untimed), apply into a fresh node in dir (timed).
 * Returns seconds; *same: the target's digest equals the source's. */
static double apply_all(const bench_opts *o, ferry_node *src, const char *dir,
			int *same)
{
	ferry_export *exp = NULL;
	batch *b = NULL;
	size_t nb = 0, cap = 0;
	uint64_t changes = 0, count = 0;
	int err = ferry_export_begin(&exp, src, NULL, NULL);
	if (err)
		bench_die("export: %s", ferry_strerror(err));
	for (;;) {
		uint64_t nc = 0;
		if (nb == cap) {
			cap = cap ? 2 * cap : 256;
			b = realloc(b, cap * sizeof(*b));
			if (!b)
				bench_die("out of memory");
		}
		err = ferry_export_next(exp, &b[nb].buf, &b[nb].len, &nc);
		if (err == FERRY_E_DONE)
			break;
		if (err)
			bench_die("export: %s", ferry_strerror(err));
		changes += nc;
		nb++;
	}
	ferry_export_free(exp);

	ferry_node *dst = bench_open(dir);
	double t0 = bench_now();
	for (size_t i = 0; i < nb; i++) {
		err = ferry_sync_apply(dst, b[i].buf, b[i].len, NULL);
		if (err)
			bench_die("apply: %s: %s", ferry_strerror(err),
				  ferry_node_errmsg(dst));
	}
	double seconds = bench_now() - t0;
	for (size_t i = 0; i < nb; i++)
		free(b[i].buf);
	free(b);
	*same = changes == o->n &&
		ferry_count(&count, dst, "bench", "records") == FERRY_OK &&
		count == o->n && bench_same_digest(src, dst, NULL);
	ferry_node_close(dst);
	return seconds;
}

static void run(const bench_opts *o, unsigned r, const char *dir,
		bench_run *out)
{
	char d_raw[BENCH_PATH], d_com[BENCH_PATH], d_app[BENCH_PATH];
	bench_record_gen gen = {o->seed, o->value_bytes, 0, "",
				malloc(o->value_bytes)};
	(void)r;
	if (!gen.value)
		bench_die("out of memory");
	bench_path(d_raw, "%s/raw", dir);
	bench_path(d_com, "%s/commit", dir);
	bench_path(d_app, "%s/apply", dir);

	bench_note("raw LMDB: %llu puts", (unsigned long long)o->n);
	double raw_s = bench_raw_lmdb(d_raw, o->n, o->txn, bench_record_gen_fn,
				      &gen, NULL);
	free(gen.value);

	bench_note("ferry local commits");
	ferry_node *src = bench_open(d_com);
	double t0 = bench_now();
	bench_fill(src, "bench", o->seed, 0, o->n, o->txn, o->value_bytes);
	double commit_s = bench_now() - t0;

	bench_note("ferry segment apply");
	double apply_s = apply_all(o, src, d_app, &out->converged);
	ferry_node_close(src);

	double n = (double)o->n;
	out->v[RAW] = n / raw_s;
	out->v[COMMIT] = n / commit_s;
	out->v[APPLY] = n / apply_s;
	out->v[COMMIT_RATIO] = raw_s / commit_s;
	out->v[APPLY_RATIO] = raw_s / apply_s;
}

const bench_scenario bench_scenario_local = {
	"local",
	"commit throughput in one node vs raw LMDB puts of the same records",
	BENCH_OPT_N | BENCH_OPT_TXN | BENCH_OPT_VALUE,
	metrics,
	NMETRICS,
	0,
	NULL,
	run,
	NULL,
};
