/*
 * scenario_rest.c — `ferry-bench rest`: the hub's HTTP side (`ferry serve
 * --http`) under wrk on 127.0.0.1.
 *
 *   initial-data: branch scope 1/1 holds N client records; wrk GETs
 *                 /api/sync/initial-data for S seconds; records/s =
 *                 requests/s x N.
 *   upload:       wrk POSTs /api/sync/upload-changes with A create_client
 *                 actions per request, every queue_id unique; actions/s =
 *                 requests/s x A. Afterwards the hub must hold N + (requests
 *                 x A) clients, nothing lost or doubled: the run's
 *                 convergence.
 * Both are set against raw LMDB puts of the same N records (the clients'
 * keys and their encoded fields), durable, T per transaction.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bench.h"

enum {
	RS_RAW,
	RS_DOWN,
	RS_DOWN_REQ,
	RS_UP,
	RS_UP_REQ,
	RS_DOWN_RATIO,
	RS_UP_RATIO,
	RS_N
};

static const bench_metric metrics[RS_N] = {
	[RS_RAW] = {"raw_lmdb_per_s", "raw LMDB puts", "records/s", BENCH_VALUE,
		    1},
	[RS_DOWN] = {"initial_data_records_per_s", "initial-data download",
		     "records/s", BENCH_VALUE, 1},
	[RS_DOWN_REQ] = {"initial_data_requests_per_s", "initial-data requests",
			 "requests/s", BENCH_VALUE, 0},
	[RS_UP] = {"upload_actions_per_s", "upload-changes", "actions/s",
		   BENCH_VALUE, 1},
	[RS_UP_REQ] = {"upload_requests_per_s", "upload-changes requests",
		       "requests/s", BENCH_VALUE, 0},
	[RS_DOWN_RATIO] = {"initial_data_vs_raw_lmdb",
			   "initial-data / raw LMDB", "x", BENCH_RATIO, 0},
	[RS_UP_RATIO] = {"upload_vs_raw_lmdb", "upload / raw LMDB", "x",
			 BENCH_RATIO, 0},
};

#define WRK_CONNECTIONS 2

/* Client i: key "c-I" and fields email, name, phone, visits (msgpack),
 * packed back to back in `buf`; the fields point into it. */
typedef struct client {
	char key[32];
	uint8_t buf[256];
	size_t len;
	ferry_field f[4];
} client;

static void client_at(client *c, uint64_t i)
{
	char s[64];
	size_t at = 0, start[4];
	static const char *const names[4] = {"email", "name", "phone",
					     "visits"};
	snprintf(c->key, sizeof(c->key), "c-%" PRIu64, i);
	snprintf(s, sizeof(s), "client%" PRIu64 "@example.invalid", i);
	start[0] = at;
	at += bench_pack_str(c->buf + at, s);
	snprintf(s, sizeof(s), "Client %" PRIu64, i);
	start[1] = at;
	at += bench_pack_str(c->buf + at, s);
	snprintf(s, sizeof(s), "+7 900 %07" PRIu64, i % 10000000);
	start[2] = at;
	at += bench_pack_str(c->buf + at, s);
	start[3] = at;
	c->buf[at++] = (uint8_t)(i % 97); /* positive fixint */
	c->len = at;
	for (int k = 0; k < 4; k++)
		c->f[k] = (ferry_field){names[k], c->buf + start[k],
					(k < 3 ? start[k + 1] : at) - start[k]};
}

static void client_gen(void *payload, uint64_t i, const void **key,
		       size_t *klen, const void **val, size_t *vlen)
{
	client *c = payload;
	client_at(c, i);
	*key = c->key;
	*klen = strlen(c->key);
	*val = c->buf;
	*vlen = c->len;
}

static void fill_hub(const bench_opts *o, const char *dir)
{
	ferry_node *node = bench_open(dir);
	client c;
	uint8_t price[3] = {0xcd, 0x04, 0xb0}; /* uint16 1200 */
	ferry_field pf = {"price", price, sizeof(price)};
	ferry_txn *txn = NULL;
	for (uint64_t i = 0; i < o->n;) {
		if (ferry_txn_begin(&txn, node))
			bench_die("begin: %s", ferry_node_errmsg(node));
		for (uint64_t j = 0; j < o->txn && i < o->n; j++, i++) {
			client_at(&c, i);
			if (ferry_txn_put(txn, "1/1", "clients", c.key, c.f, 4))
				bench_die("put: %s", ferry_node_errmsg(node));
		}
		if (ferry_txn_commit(txn))
			bench_die("commit: %s", ferry_node_errmsg(node));
	}
	/* The download also carries the price list: one item. */
	if (ferry_txn_begin(&txn, node) ||
	    ferry_txn_put(txn, "pricelist", "nomenclature", "vaccine", &pf,
			  1) ||
	    ferry_txn_commit(txn))
		bench_die("pricelist: %s", ferry_node_errmsg(node));
	ferry_node_close(node);
}

/* Run wrk with `extra` arguments (NULL-terminated, at most 8); its
 * requests/s and total requests. */
static void wrk(const bench_opts *o, const char *log, const char *url,
		unsigned conns, const char *const *extra, double *rps,
		uint64_t *requests)
{
	char t[16], c[16], d[32], line[512];
	const char *argv[24] = {"wrk", t, c, d, "--timeout", "30s"};
	size_t n = 6;
	snprintf(t, sizeof(t), "-t%u", conns);
	snprintf(c, sizeof(c), "-c%u", conns);
	snprintf(d, sizeof(d), "-d%.0fs", ceil(o->seconds));
	for (; *extra; extra++)
		argv[n++] = *extra;
	argv[n++] = url;
	argv[n] = NULL;
	if (bench_exec(argv, log, NULL))
		bench_die("wrk failed (see %s)", log);
	FILE *f = fopen(log, "r");
	*rps = NAN;
	*requests = 0;
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long long req;
		double v;
		if (sscanf(line, "Requests/sec: %lf", &v) == 1)
			*rps = v;
		else if (sscanf(line, " %llu requests in", &req) == 1)
			*requests = req;
	}
	if (f)
		fclose(f);
	if (isnan(*rps) || !*requests)
		bench_die("wrk made no requests (see %s)", log);
}

static void write_upload_script(const char *path, const char *key,
				unsigned actions)
{
	FILE *f = fopen(path, "w");
	if (!f)
		bench_die("cannot write %s", path);
	/* Each wrk thread numbers its actions from its own billion, so
	 * every queue_id is unique and every create is a new client. */
	fprintf(f,
		"local key, per_request = \"%s\", %u\n"
		"local next_thread = 0\n"
		"function setup(thread)\n"
		"\tthread:set(\"first\", next_thread * 1000000000)\n"
		"\tnext_thread = next_thread + 1\n"
		"end\n"
		"function init(args)\n"
		"\tcounter = first\n"
		"end\n"
		"function request()\n"
		"\tlocal parts = {}\n"
		"\tfor i = 1, per_request do\n"
		"\t\tcounter = counter + 1\n"
		"\t\tparts[i] = string.format(\n"
		"\t\t\t'{\"queue_id\":%%d,\"action_type\":\"create_client\","
		"\"payload\":'\n"
		"\t\t\t.. '{\"name\":\"Client %%d\",\"phone\":\"+7 901 "
		"%%07d\"}}',\n"
		"\t\t\tcounter, counter, counter %% 10000000)\n"
		"\tend\n"
		"\tlocal body = '{\"tenantId\":\"1\",\"branchId\":\"1\","
		"\"actions\":['\n"
		"\t\t.. table.concat(parts, \",\") .. ']}'\n"
		"\treturn wrk.format(\"POST\", \"/api/sync/upload-changes\",\n"
		"\t\t{[\"X-API-Key\"] = key, [\"Content-Type\"] = "
		"\"application/json\"}, body)\n"
		"end\n",
		key, actions);
	fclose(f);
}

/* One download must hold every client before its rate means anything. */
static void check_download(const char *dir, const char *url, const char *header,
			   uint64_t n)
{
	char body[BENCH_PATH], log[BENCH_PATH];
	bench_path(body, "%s/initial-data.json", dir);
	bench_path(log, "%s/curl.log", dir);
	const char *argv[] = {"curl", "-sf", "-H", header,
			      "-o",   body,  url,  NULL};
	if (bench_exec(argv, log, NULL))
		bench_die("GET %s failed (see %s)", url, log);
	json_t *doc = json_load_file(body, 0, NULL);
	size_t got = json_array_size(json_object_get(doc, "clients"));
	json_decref(doc);
	if (got != n)
		bench_die("initial-data returned %zu of %" PRIu64 " clients",
			  got, n);
}

static void run(const bench_opts *o, unsigned r, const char *dir,
		bench_run *out)
{
	char hub[BENCH_PATH], d_raw[BENCH_PATH], lua[BENCH_PATH],
		log[BENCH_PATH], http[256], url[512], header[128];
	client gen;
	double down_rps, up_rps;
	uint64_t down_req, up_req, held = 0;
	(void)r;

	bench_path(d_raw, "%s/raw", dir);
	bench_note("raw LMDB: %llu puts", (unsigned long long)o->n);
	double raw_s =
		bench_raw_lmdb(d_raw, o->n, o->txn, client_gen, &gen, NULL);

	bench_path(hub, "%s/hub", dir);
	bench_note("filling the hub with %llu clients",
		   (unsigned long long)o->n);
	fill_hub(o, hub);
	char *created = bench_ferry(o, hub, "--json", "apikey", "create",
				    "--name", "bench", "--read",
				    "1/1,pricelist", "--write", "1/1", NULL);
	json_t *doc = json_loads(created, 0, NULL);
	const char *token = json_string_value(json_object_get(doc, "token"));
	if (!token)
		bench_die("apikey create printed no token: %s", created);
	snprintf(header, sizeof(header), "X-API-Key: %s", token);
	bench_path(lua, "%s/upload.lua", dir);
	write_upload_script(lua, token, o->actions);
	json_decref(doc);
	free(created);

	pid_t pid = bench_serve(o, hub, NULL, 0, http, sizeof(http), "serve",
				"--no-listen", "--no-dial", "--http",
				"127.0.0.1:0", NULL);
	snprintf(url, sizeof(url), "http://%s/api/sync/initial-data", http);
	check_download(dir, url, header, o->n);

	bench_note("initial-data under wrk, %.0f s", ceil(o->seconds));
	bench_path(log, "%s/wrk-initial-data.log", dir);
	wrk(o, log, url, 1, (const char *const[]){"-H", header, NULL},
	    &down_rps, &down_req);

	bench_note("upload-changes under wrk, %u actions per request, %.0f s",
		   o->actions, ceil(o->seconds));
	snprintf(url, sizeof(url), "http://%s/api/sync/upload-changes", http);
	bench_path(log, "%s/wrk-upload.log", dir);
	wrk(o, log, url, WRK_CONNECTIONS,
	    (const char *const[]){"-s", lua, NULL}, &up_rps, &up_req);
	bench_stop(pid);

	ferry_node *node = bench_open(hub);
	if (ferry_count(&held, node, "1/1", "clients"))
		bench_die("count: %s", ferry_node_errmsg(node));
	ferry_node_close(node);
	/* wrk stops counting at its deadline: up to one request per
	 * connection may have completed on the hub after that. A lost or
	 * doubled action shows as a count outside this window or not a
	 * whole number of requests. */
	uint64_t made = held - o->n;
	out->converged = held >= o->n && made % o->actions == 0 &&
			 made >= up_req * o->actions &&
			 made <= (up_req + WRK_CONNECTIONS) * o->actions;
	if (!out->converged)
		bench_note("hub holds %" PRIu64 " clients after %" PRIu64
			   " uploads of %u",
			   held, up_req, o->actions);

	double raw_rate = (double)o->n / raw_s;
	out->v[RS_RAW] = raw_rate;
	out->v[RS_DOWN] = down_rps * (double)o->n;
	out->v[RS_DOWN_REQ] = down_rps;
	out->v[RS_UP] = up_rps * o->actions;
	out->v[RS_UP_REQ] = up_rps;
	out->v[RS_DOWN_RATIO] = out->v[RS_DOWN] / raw_rate;
	out->v[RS_UP_RATIO] = out->v[RS_UP] / raw_rate;
}

const bench_scenario bench_scenario_rest = {
	"rest",
	"the hub's initial-data download and upload-changes under wrk",
	BENCH_OPT_N | BENCH_OPT_TXN | BENCH_OPT_SECONDS | BENCH_OPT_ACTIONS,
	metrics,
	RS_N,
	0,
	NULL,
	run,
	NULL,
};
