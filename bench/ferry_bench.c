/*
 * ferry_bench.c — `ferry-bench SCENARIO [options]`: starts real `ferry`
 * processes on 127.0.0.1 in a temporary directory, drives them, cleans up,
 * and prints a table for people or one JSON document for scripts.
 *
 * Every scenario measures, in the same run and on the same data, the limit
 * it should be compared with (raw LMDB puts; raw WebSocket on loopback for
 * the wire) and reports ferry's figure as a ratio of it. Runs repeat
 * (--runs, default 3) and report median and min..max. The seed is fixed
 * and printed. Correctness is asserted (exit 1 if any run did not
 * converge); speed never is.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <jansson.h>

#include "bench.h"

#define TMPFS_MAGIC_ 0x01021994
#define DEFAULT_SEED UINT64_C(0x5eedfe77)

static const bench_scenario *const scenarios[] = {
	&bench_scenario_local, &bench_scenario_full_sync,
	&bench_scenario_live,  &bench_scenario_fanin,
	&bench_scenario_rest,  &bench_scenario_adapter,
};
#define NSCENARIOS (sizeof(scenarios) / sizeof(scenarios[0]))

static void usage(FILE *f)
{
	fprintf(f, "usage: ferry-bench SCENARIO [options]\n"
		   "scenarios:\n");
	for (size_t i = 0; i < NSCENARIOS; i++)
		fprintf(f, "  %-10s %s\n", scenarios[i]->name,
			scenarios[i]->summary);
	fprintf(f,
		"options:\n"
		"  -n, --n N           records (local, full-sync: 1000000; "
		"rest: 100000;\n"
		"                      adapter: 20000)\n"
		"  -t, --txn T         records per transaction (1000)\n"
		"  --value-bytes B     value size (100)\n"
		"  --rate R            writes/s per writer (live: 1000; "
		"fan-in: "
		"10;\n"
		"                      adapter: 500)\n"
		"  --seconds S         write time; rest: wrk time (10)\n"
		"  -k, --branches K    fan-in branches (50)\n"
		"  --actions A         rest: actions per upload (1000)\n"
		"  --runs R            repeats; median and min..max (3)\n"
		"  --seed S            data seed (0x5eedfe77)\n"
		"  --ferry PATH        the ferry binary (%s)\n"
		"  --dir D             temporary root's parent ($TMPDIR, else "
		"/var/tmp)\n"
		"  --keep              keep the data and logs\n"
		"  --json              one JSON document on stdout\n"
		"  --plot FILE.svg     draw lag over time and throughput per "
		"run (gnuplot)\n"
		"  --with-pouchdb      full-sync, live: also run PouchDB "
		"(bench/peers/)\n",
		FERRY_CLI);
}

static void bad_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "ferry-bench: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n(ferry-bench --help lists the options)\n");
	exit(2);
}

static uint64_t parse_u64(const char *opt, const char *s)
{
	char *end = NULL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || !*s || *end || *s == '-')
		bad_usage("%s takes a non-negative integer", opt);
	return v;
}

static double parse_pos(const char *opt, const char *s)
{
	char *end = NULL;
	double v = strtod(s, &end);
	if (!*s || *end || !(v > 0) || !isfinite(v))
		bad_usage("%s takes a positive number", opt);
	return v;
}

static const bench_scenario *parse(int argc, char **argv, bench_opts *o)
{
	enum {
		O_VALUE = 256,
		O_RATE,
		O_SECONDS,
		O_ACTIONS,
		O_RUNS,
		O_SEED,
		O_FERRY,
		O_DIR,
		O_KEEP,
		O_JSON,
		O_PLOT,
		O_POUCH
	};
	static const struct option longs[] = {
		{"n", required_argument, NULL, 'n'},
		{"txn", required_argument, NULL, 't'},
		{"branches", required_argument, NULL, 'k'},
		{"value-bytes", required_argument, NULL, O_VALUE},
		{"rate", required_argument, NULL, O_RATE},
		{"seconds", required_argument, NULL, O_SECONDS},
		{"actions", required_argument, NULL, O_ACTIONS},
		{"runs", required_argument, NULL, O_RUNS},
		{"seed", required_argument, NULL, O_SEED},
		{"ferry", required_argument, NULL, O_FERRY},
		{"dir", required_argument, NULL, O_DIR},
		{"keep", no_argument, NULL, O_KEEP},
		{"json", no_argument, NULL, O_JSON},
		{"plot", required_argument, NULL, O_PLOT},
		{"with-pouchdb", no_argument, NULL, O_POUCH},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;
	const bench_scenario *sc = NULL;

	o->txn = 1000;
	o->value_bytes = 100;
	o->branches = 50;
	o->actions = 1000;
	o->runs = 3;
	o->seed = DEFAULT_SEED;
	o->ferry = FERRY_CLI;
	while ((c = getopt_long(argc, argv, "n:t:k:h", longs, NULL)) != -1) {
		const char *name = optind > 1 ? argv[optind - 1] : "";
		switch (c) {
		case 'n':
			o->n = parse_u64("--n", optarg);
			break;
		case 't':
			o->txn = parse_u64("--txn", optarg);
			break;
		case 'k':
			o->branches = (unsigned)parse_u64("--branches", optarg);
			break;
		case O_VALUE:
			o->value_bytes = parse_u64("--value-bytes", optarg);
			break;
		case O_RATE:
			o->rate = parse_pos("--rate", optarg);
			break;
		case O_SECONDS:
			o->seconds = parse_pos("--seconds", optarg);
			break;
		case O_ACTIONS:
			o->actions = (unsigned)parse_u64("--actions", optarg);
			break;
		case O_RUNS:
			o->runs = (unsigned)parse_u64("--runs", optarg);
			break;
		case O_SEED:
			o->seed = parse_u64("--seed", optarg);
			break;
		case O_FERRY:
			o->ferry = optarg;
			break;
		case O_DIR:
			o->base = optarg;
			break;
		case O_KEEP:
			o->keep = 1;
			break;
		case O_JSON:
			o->json = 1;
			break;
		case O_PLOT:
			o->plot = optarg;
			break;
		case O_POUCH:
			o->with_pouchdb = 1;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			bad_usage("bad option %s", name);
		}
	}
	if (optind != argc - 1)
		bad_usage("%s", optind < argc ? "give exactly one scenario"
					      : "which scenario?");
	for (size_t i = 0; i < NSCENARIOS; i++)
		if (!strcmp(argv[optind], scenarios[i]->name))
			sc = scenarios[i];
	if (!sc)
		bad_usage("unknown scenario %s (local, full-sync, live, "
			  "fan-in, rest, adapter)",
			  argv[optind]);
	o->scenario = sc->name;

	/* Defaults that depend on the scenario. */
	if (!o->n)
		o->n = sc == &bench_scenario_rest      ? 100000
		       : sc == &bench_scenario_adapter ? 20000
						       : 1000000;
	if (o->rate == 0)
		o->rate = sc == &bench_scenario_fanin	  ? 10
			  : sc == &bench_scenario_adapter ? 500
							  : 1000;
	if (o->seconds == 0)
		o->seconds = 10;
	if (!o->txn || o->txn > FERRY_MAX_WRITES_PER_TXN)
		bad_usage("%s", "--txn must be 1..100000");
	if (!o->value_bytes || o->value_bytes > 60000)
		bad_usage("%s", "--value-bytes must be 1..60000");
	if (!o->branches || o->branches > 500)
		bad_usage("%s", "--branches must be 1..500");
	if (!o->actions || o->actions > 100000)
		bad_usage("%s", "--actions must be 1..100000");
	if (!o->runs || o->runs > 100)
		bad_usage("%s", "--runs must be 1..100");
	if (o->with_pouchdb && !sc->pouch_metric)
		bad_usage(
			"--with-pouchdb applies to full-sync and live, not %s",
			sc->name);
	if (!o->base)
		o->base = getenv("TMPDIR");
	if (!o->base || !*o->base)
		o->base = "/var/tmp";
	return sc;
}

/* ------------------------------------------------------------------------ */
/* Statistics over runs                                                     */
/* ------------------------------------------------------------------------ */

typedef struct stat3 {
	double median, min, max;
} stat3;

/* NaN runs (not measured: a run that did not converge) are left out. */
static stat3 over_runs(const bench_run *runs, unsigned n, size_t m)
{
	double v[100];
	size_t k = 0;
	for (unsigned r = 0; r < n; r++)
		if (!isnan(runs[r].v[m]))
			v[k++] = runs[r].v[m];
	bench_sort(v, k);
	if (!k)
		return (stat3){NAN, NAN, NAN};
	return (stat3){k % 2 ? v[k / 2] : (v[k / 2 - 1] + v[k / 2]) / 2, v[0],
		       v[k - 1]};
}

/* ------------------------------------------------------------------------ */
/* PouchDB (bench/peers/pouchdb_bench.sh)                                   */
/* ------------------------------------------------------------------------ */

typedef struct pouch {
	json_t *doc;   /* its JSON line, or {"skipped"|"failed": why} */
	double figure; /* docs/s or lag p50 ms; NAN if none */
	double ratio;  /* ferry's median figure / PouchDB's */
	int failed;
} pouch;

static void last_line(const char *path, char *out, size_t len)
{
	FILE *f = fopen(path, "r");
	char line[1024];
	*out = 0;
	while (f && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		if (*line)
			snprintf(out, len, "%s", line);
	}
	if (f)
		fclose(f);
}

static pouch run_pouchdb(const bench_opts *o, const char *root)
{
	char script[BENCH_PATH], out[BENCH_PATH], err[BENCH_PATH], n[32],
		vb[32], rate[32], secs[32], seed[32], msg[BENCH_PATH + 64];
	pouch p = {NULL, NAN, NAN, 0};
	bench_path(script, "%s/pouchdb_bench.sh", FERRY_PEERS_DIR);
	bench_path(out, "%s/pouchdb.out", root);
	bench_path(err, "%s/pouchdb.log", root);
	if (access(script, X_OK)) {
		snprintf(msg, sizeof(msg), "%s is missing", script);
		p.doc = json_pack("{s:s}", "skipped", msg);
		return p;
	}
	snprintf(n, sizeof(n), "%" PRIu64, o->n);
	snprintf(vb, sizeof(vb), "%zu", o->value_bytes);
	snprintf(rate, sizeof(rate), "%g", o->rate);
	snprintf(secs, sizeof(secs), "%g", o->seconds);
	snprintf(seed, sizeof(seed), "%" PRIu64, o->seed);
	const char *argv[] = {
		script,	  o->scenario, "--n", n,	   "--value-bytes",
		vb,	  "--rate",    rate,  "--seconds", secs,
		"--seed", seed,	       NULL};
	bench_note("PouchDB %s (bench/peers/pouchdb_bench.sh)", o->scenario);
	int status = bench_exec(argv, out, err);
	last_line(err, msg, sizeof(msg));
	if (status == 3) {
		p.doc = json_pack("{s:s}", "skipped",
				  *msg ? msg : "npm or node is unavailable");
		return p;
	}
	char line[4096] = "";
	last_line(out, line, sizeof(line));
	json_t *doc = status == 0 ? json_loads(line, 0, NULL) : NULL;
	json_t *fig = NULL;
	if (doc && !strcmp(o->scenario, "full-sync"))
		fig = json_object_get(doc, "docs_per_s");
	else if (doc)
		fig = json_object_get(json_object_get(doc, "lag_ms"), "p50");
	if (!json_is_number(fig)) {
		char why[sizeof(msg) + 64];
		snprintf(why, sizeof(why), "exit %d: %s", status,
			 *msg ? msg : line);
		json_decref(doc);
		p.doc = json_pack("{s:s}", "failed", why);
		p.failed = 1;
		return p;
	}
	p.doc = doc;
	p.figure = json_number_value(fig);
	return p;
}

/* ------------------------------------------------------------------------ */
/* Output                                                                   */
/* ------------------------------------------------------------------------ */

static json_t *num(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

static void print_json(const bench_scenario *sc, const bench_opts *o,
		       const bench_run *runs, int tmpfs, int converged,
		       const pouch *p)
{
	json_t *doc = json_object(), *opts = json_object(), *jr = json_array(),
	       *med = json_object(), *mn = json_object(), *mx = json_object(),
	       *ratios = json_object(), *units = json_object();
	json_object_set_new(doc, "scenario", json_string(sc->name));
	if (sc->opts & BENCH_OPT_N)
		json_object_set_new(opts, "n", json_integer((json_int_t)o->n));
	if (sc->opts & BENCH_OPT_TXN)
		json_object_set_new(opts, "txn",
				    json_integer((json_int_t)o->txn));
	if (sc->opts & BENCH_OPT_VALUE)
		json_object_set_new(opts, "value_bytes",
				    json_integer((json_int_t)o->value_bytes));
	if (sc->opts & BENCH_OPT_RATE)
		json_object_set_new(opts, "rate", json_real(o->rate));
	if (sc->opts & BENCH_OPT_SECONDS)
		json_object_set_new(opts, "seconds", json_real(o->seconds));
	if (sc->opts & BENCH_OPT_BRANCHES)
		json_object_set_new(opts, "branches",
				    json_integer(o->branches));
	if (sc->opts & BENCH_OPT_ACTIONS)
		json_object_set_new(opts, "actions", json_integer(o->actions));
	json_object_set_new(opts, "runs", json_integer(o->runs));
	json_object_set_new(opts, "dir", json_string(o->base));
	json_object_set_new(opts, "tmpfs", json_boolean(tmpfs));
	json_object_set_new(doc, "options", opts);
	json_object_set_new(doc, "seed", json_integer((json_int_t)o->seed));
	if (sc->notes)
		json_object_set_new(doc, "notes", json_string(sc->notes));
	for (unsigned r = 0; r < o->runs; r++) {
		json_t *run = json_object();
		json_object_set_new(run, "converged",
				    json_boolean(runs[r].converged));
		for (size_t m = 0; m < sc->nmetrics; m++)
			json_object_set_new(run, sc->metrics[m].key,
					    num(runs[r].v[m]));
		json_array_append_new(jr, run);
	}
	json_object_set_new(doc, "runs", jr);
	for (size_t m = 0; m < sc->nmetrics; m++) {
		const bench_metric *bm = &sc->metrics[m];
		stat3 s = over_runs(runs, o->runs, m);
		if (bm->kind == BENCH_RATIO) {
			json_object_set_new(ratios, bm->key,
					    json_pack("{s:o, s:o, s:o}",
						      "median", num(s.median),
						      "min", num(s.min), "max",
						      num(s.max)));
			continue;
		}
		json_object_set_new(med, bm->key, num(s.median));
		json_object_set_new(mn, bm->key, num(s.min));
		json_object_set_new(mx, bm->key, num(s.max));
		json_object_set_new(units, bm->key, json_string(bm->unit));
	}
	json_object_set_new(doc, "units", units);
	json_object_set_new(doc, "median", med);
	json_object_set_new(doc, "min", mn);
	json_object_set_new(doc, "max", mx);
	json_object_set_new(doc, "ratios", ratios);
	json_object_set_new(doc, "converged", json_boolean(converged));
	if (p->doc) {
		json_t *pd = json_deep_copy(p->doc);
		if (!isnan(p->figure))
			json_object_set_new(
				pd, "ratio",
				json_pack("{s:s, s:o}", "ferry_metric",
					  sc->pouch_metric,
					  "ferry_over_pouchdb", num(p->ratio)));
		json_object_set_new(doc, "pouchdb", pd);
	}
	json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
	fputc('\n', stdout);
	json_decref(doc);
}

static void print_table(const bench_scenario *sc, const bench_opts *o,
			const bench_run *runs, int tmpfs, int converged,
			const pouch *p)
{
	printf("ferry-bench %s: %s\n", sc->name, sc->summary);
	printf("options:");
	if (sc->opts & BENCH_OPT_N)
		printf(" %" PRIu64 " records,", o->n);
	if (sc->opts & BENCH_OPT_TXN)
		printf(" %" PRIu64 " per txn,", o->txn);
	if (sc->opts & BENCH_OPT_BRANCHES)
		printf(" %u branches,", o->branches);
	if (sc->opts & BENCH_OPT_RATE)
		printf(" %g writes/s%s for", o->rate,
		       sc->opts & BENCH_OPT_BRANCHES ? " each" : "");
	else if (sc->opts & BENCH_OPT_SECONDS)
		printf(" wrk for");
	if (sc->opts & BENCH_OPT_SECONDS)
		printf(" %g s,", o->seconds);
	if (sc->opts & BENCH_OPT_VALUE)
		printf(" 32-char hex keys, %zu-byte values,", o->value_bytes);
	if (sc->opts & BENCH_OPT_ACTIONS)
		printf(" %u actions per upload,", o->actions);
	printf(" durable; seed %" PRIu64 " (0x%" PRIx64 ")\n", o->seed,
	       o->seed);
	printf("runs: %u (median, min..max); dir %s%s\n", o->runs, o->base,
	       tmpfs ? " (tmpfs: durable figures flatter both sides)" : "");
	if (sc->notes)
		printf("notes: %s\n", sc->notes);
	putchar('\n');
	printf("%-32s %14s %27s  %s\n", "metric", "median", "min..max", "unit");
	for (size_t m = 0; m < sc->nmetrics; m++) {
		const bench_metric *bm = &sc->metrics[m];
		stat3 s = over_runs(runs, o->runs, m);
		/* Counts and large rates read best whole. */
		const char *fmt =
			bm->kind == BENCH_RATIO ? "%.3f"
			: s.median >= 100 || s.median == floor(s.median)
				? "%.0f"
				: "%.2f";
		char med[32], range[80], lo[32], hi[32];
		snprintf(med, sizeof(med), fmt, s.median);
		snprintf(lo, sizeof(lo), fmt, s.min);
		snprintf(hi, sizeof(hi), fmt, s.max);
		snprintf(range, sizeof(range), "%s..%s", lo, hi);
		printf("%-32s %14s %27s  %s\n", bm->label, med, range,
		       bm->unit);
	}
	if (p->doc) {
		int live = sc == &bench_scenario_live;
		json_t *why = json_object_get(p->doc, "skipped");
		if (!why)
			why = json_object_get(p->doc, "failed");
		if (why)
			printf("%-32s %s: %s\n", "PouchDB",
			       p->failed ? "failed" : "skipped",
			       json_string_value(why));
		else
			printf("%-32s %14.*f %27s  %s (ferry / PouchDB: "
			       "%.3f)\n",
			       live ? "PouchDB lag p50" : "PouchDB full pull",
			       live ? 2 : 0, p->figure, "1 run",
			       live ? "ms" : "docs/s", p->ratio);
	}
	printf("\nconverged: %s\n",
	       converged ? "yes, every run" : "NO (see the runs' logs)");
}

/* ------------------------------------------------------------------------ */
/* --plot                                                                   */
/* ------------------------------------------------------------------------ */

/* FILE.svg -> FILE-suffix (the data files go next to the picture). */
static void plot_path(char out[BENCH_PATH], const char *svg, const char *suffix)
{
	size_t len = strlen(svg);
	if (len > 4 && !strcmp(svg + len - 4, ".svg"))
		len -= 4;
	bench_path(out, "%.*s-%s", (int)len, svg, suffix);
}

static void plot(const bench_scenario *sc, const bench_opts *o,
		 const bench_run *runs)
{
	char runs_dat[BENCH_PATH], lag_dat[BENCH_PATH], gp[BENCH_PATH],
		log[BENCH_PATH];
	int nbars = 0;
	double top = 1, bottom = INFINITY;
	plot_path(runs_dat, o->plot, "runs.dat");
	plot_path(lag_dat, o->plot, "lag.dat");
	plot_path(gp, o->plot, "plot.gp");
	plot_path(log, o->plot, "gnuplot.log");

	FILE *f = fopen(runs_dat, "w");
	if (!f)
		bench_die("cannot write %s: %s", runs_dat, strerror(errno));
	fprintf(f, "run");
	for (size_t m = 0; m < sc->nmetrics; m++)
		if (sc->metrics[m].plot)
			fprintf(f, "\t\"%s (%s)\"", sc->metrics[m].label,
				sc->metrics[m].unit);
	fputc('\n', f);
	for (unsigned r = 0; r < o->runs; r++) {
		fprintf(f, "%u", r + 1);
		for (size_t m = 0; m < sc->nmetrics; m++)
			if (sc->metrics[m].plot) {
				fprintf(f, "\t%.6g", runs[r].v[m]);
				if (runs[r].v[m] > top)
					top = runs[r].v[m];
				if (runs[r].v[m] > 0 && runs[r].v[m] < bottom)
					bottom = runs[r].v[m];
			}
		fputc('\n', f);
	}
	fclose(f);
	for (size_t m = 0; m < sc->nmetrics; m++)
		nbars += sc->metrics[m].plot;

	if (sc->has_lag) {
		if (!(f = fopen(lag_dat, "w")))
			bench_die("cannot write %s: %s", lag_dat,
				  strerror(errno));
		/* One block per run: gnuplot's `index`. */
		for (unsigned r = 0; r < o->runs; r++) {
			fprintf(f, "# run %u: seconds since start, lag ms\n",
				r + 1);
			for (size_t i = 0; i < runs[r].lag.n; i++)
				fprintf(f, "%.4f\t%.3f\n", runs[r].lag.at_s[i],
					runs[r].lag.lag_ms[i]);
			fprintf(f, "\n\n");
		}
		fclose(f);
	}

	if (!(f = fopen(gp, "w")))
		bench_die("cannot write %s: %s", gp, strerror(errno));
	fprintf(f,
		"set terminal svg size 900,%d dynamic enhanced font "
		"'sans,11' background '#ffffff'\n"
		"set output '%s'\n"
		"set grid ytics lc rgb '#dddddd'\n"
		"set key outside right top\n",
		sc->has_lag ? 900 : 450, o->plot);
	if (sc->has_lag) {
		fprintf(f,
			"set multiplot layout 2,1 title 'ferry-bench %s, "
			"seed %" PRIu64 "'\n"
			"set title 'replication lag over time'\n"
			"set xlabel 'seconds since writing started'\n"
			"set ylabel 'lag (ms)'\n"
			"set logscale y\n"
			"plot for [r=0:%u] '%s' index r using 1:2 with points "
			"pt 7 ps 0.3 title sprintf('run %%d', r+1)\n"
			"unset logscale y\n",
			sc->name, o->seed, o->runs - 1, lag_dat);
	}
	/* Baselines run orders of magnitude faster than a rate-limited
	 * writer: a log axis keeps every bar readable. */
	if (sc->has_lag)
		fprintf(f, "set title 'throughput per run'\n");
	else
		fprintf(f,
			"set title 'ferry-bench %s, seed %" PRIu64
			": throughput per run'\n",
			sc->name, o->seed);
	fprintf(f,
		"set xlabel 'run'\n"
		"set ylabel 'per second'\n"
		"set logscale y\n"
		"set yrange [%g:%g]\n"
		"set style data histograms\n"
		"set style histogram clustered gap 1\n"
		"set style fill solid 0.8 border -1\n"
		"set boxwidth 0.9\n"
		"plot for [c=2:%d] '%s' using c:xtic(1) title "
		"columnheader(c)\n",
		isfinite(bottom) ? pow(10, floor(log10(bottom / 2))) : 1,
		top * 4, nbars + 1, runs_dat);
	if (sc->has_lag)
		fprintf(f, "unset multiplot\n");
	fclose(f);

	const char *argv[] = {"gnuplot", gp, NULL};
	if (bench_exec(argv, log, NULL))
		bench_die("gnuplot failed (see %s)", log);
	bench_note("plot: %s (data and script next to it)", o->plot);
}

/* ------------------------------------------------------------------------ */
/* Main                                                                     */
/* ------------------------------------------------------------------------ */

static void on_signal(int sig)
{
	bench_die("interrupted by signal %d", sig);
}

int main(int argc, char **argv)
{
	bench_opts o = {0};
	const bench_scenario *sc = parse(argc, argv, &o);
	char root[BENCH_PATH];
	struct statfs sf;
	pouch p = {NULL, NAN, NAN, 0};

	bench_set_quiet(o.json);
	if (access(o.ferry, X_OK))
		bench_die("no ferry binary at %s (give --ferry PATH)", o.ferry);
	if (o.plot) {
		const char *argv_v[] = {"gnuplot", "--version", NULL};
		if (bench_exec(argv_v, "/dev/null", NULL))
			bench_die("--plot needs gnuplot (Debian: apt-get "
				  "install gnuplot-nox)");
	}
	if (sc == &bench_scenario_rest) {
		const char *argv_w[] = {"wrk", "--version", NULL};
		/* wrk --version exits 1 after printing; 127 = not found. */
		if (bench_exec(argv_w, "/dev/null", NULL) == 127)
			bench_die("rest needs wrk: run scripts/bootstrap.sh");
	}
	if (sc == &bench_scenario_adapter) {
		const char *nginx = getenv("NGINX");
		nginx = nginx && *nginx ? nginx : "/usr/sbin/nginx";
		/* Exit 3 = skipped, as tests/adapters/install.sh does. */
		if (access(nginx, X_OK)) {
			fprintf(stderr,
				"ferry-bench: adapter skipped: %s is missing "
				"(scripts/bootstrap.sh installs nginx)\n",
				nginx);
			return 3;
		}
	}
	int tmpfs = statfs(o.base, &sf) == 0 &&
		    (unsigned long)sf.f_type == TMPFS_MAGIC_;
	bench_path(root, "%s/ferry-bench-XXXXXX", o.base);
	if (!mkdtemp(root))
		bench_die("mkdtemp %s: %s", root, strerror(errno));
	bench_set_root(root, o.keep);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	bench_note("%s, seed %" PRIu64 ", in %s", sc->name, o.seed, root);

	bench_run *runs = calloc(o.runs, sizeof(*runs));
	if (!runs)
		bench_die("out of memory");
	int converged = 1;
	for (unsigned r = 0; r < o.runs; r++) {
		char dir[BENCH_PATH];
		bench_path(dir, "%s/run%u", root, r + 1);
		if (mkdir(dir, 0700))
			bench_die("mkdir %s: %s", dir, strerror(errno));
		for (size_t m = 0; m < BENCH_MAX_METRICS; m++)
			runs[r].v[m] = NAN;
		bench_note("run %u/%u", r + 1, o.runs);
		sc->run(&o, r, dir, &runs[r]);
		converged &= runs[r].converged;
		/* Runs are independent: free the disk before the next. */
		if (!o.keep && runs[r].converged)
			bench_remove_tree(dir);
	}
	if (o.with_pouchdb) {
		p = run_pouchdb(&o, root);
		if (!isnan(p.figure)) {
			size_t m = 0;
			while (strcmp(sc->metrics[m].key, sc->pouch_metric))
				m++;
			p.ratio = over_runs(runs, o.runs, m).median / p.figure;
		}
	}
	if (o.plot)
		plot(sc, &o, runs);
	if (o.json)
		print_json(sc, &o, runs, tmpfs, converged, &p);
	else
		print_table(sc, &o, runs, tmpfs, converged, &p);
	fflush(stdout);

	/* Keep what explains a failure. */
	bench_set_root(root, o.keep || !converged);
	bench_cleanup();
	for (unsigned r = 0; r < o.runs; r++)
		bench_series_free(&runs[r].lag);
	free(runs);
	json_decref(p.doc);
	if (!converged)
		fprintf(stderr, "ferry-bench: %s did not converge\n", sc->name);
	return !converged || p.failed;
}
