/*
 * http_fuzz.c — libFuzzer target for the hub's HTTP side: routing, API key
 * lookup, query parsing and every JSON ingest path of the endpoint modules
 * (net/hub.c, net/rest_generic.c, rest_desktop.c, rest_watermelon.c,
 * rest_status.c, rest_hooks.c with the adapters' payload mapping,
 * apikey.c, json_value.c), driven in-process through hub_handle().
 *
 * The transport is a fake: this file implements the three functions the hub
 * calls on an exchange (http_header, http_respond, http_on_abort), so
 * net/transport_ws.c and libwebsockets are not linked. net.c is not linked
 * either: the one symbol of it the endpoints use, ferry_net_peers() (peer
 * statuses for /api/sync/status and /metrics), is a fake here reporting no
 * peers. The hub's sources are compiled into this target (fuzz.cmake), so
 * they get coverage feedback; libferry is instrumented by fuzz.cmake too.
 *
 * One node is opened once, in a fresh directory under /dev/shm (or $TMPDIR),
 * with a few records and API keys; inputs may write to it, so its state
 * drifts during a run, which is fine: every request must still be answered.
 *
 * Input (text, so seeds are readable and mutations stay meaningful):
 *
 *   line 1   METHOD KEY     METHOD: any word (cut to 7 bytes, like the
 *                           transport's); KEY: none | admin | branch | two |
 *                           reader | bearer (admin's token in
 *                           "Authorization: Bearer") | raw:TOKEN (sent as
 *                           X-API-Key as is) | anything else (no key)
 *   line 2   the path       as the transport hands it (already decoded)
 *   line 3   the query      split at '&' into the request's arguments
 *   rest     the body       (may be empty; NUL bytes and all)
 *
 * A METHOD starting with '!' means: the client goes away if the request is
 * parked (a long poll), instead of waiting for the timeout.
 *
 * Invariants checked (abort() otherwise, so libFuzzer reports a crash):
 *   - every request gets exactly one response, now or, for a parked long
 *     poll, when hub_tick() runs after the node's clock jumps past every
 *     deadline; an aborted park
 *     gets none and is freed;
 *   - statuses are 200..599; an application/json body parses as JSON, and
 *     an error status carries {"error": {"code", "message"}};
 *   - no leak (LeakSanitizer), no memory error (ASan), no UB (UBSan).
 *
 * FERRY_HTTP_FUZZ_VERBOSE=1 prints each request and its status (to check
 * what the seeds reach: http_fuzz -runs=0 tests/fuzz/corpus/http).
 *
 * Build and run (see tests/fuzz/fuzz.cmake):
 *   CC=clang cmake -S . -B build-fuzz -DFERRY_BUILD_FUZZERS=ON \
 *         -DFERRY_SANITIZE=address,undefined -DFERRY_BUILD_BENCH=OFF
 *   cmake --build build-fuzz --target http_fuzz
 *   cp -r tests/fuzz/corpus/http /tmp/http-corpus
 *   build-fuzz/tests/http_fuzz -max_total_time=60 /tmp/http-corpus
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>

#include "adapter.h"
#include "apikey.h"
#include "ferry.h"
#include "ferry_json.h"
#include "ferry_net.h"
#include "hub.h"
#include "secret.h"
#include "transport.h"

#define MAX_ARGS 70 /* a few more than the transport's 64 */

static void check(int cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "http_fuzz: invariant broken: %s\n", what);
		abort();
	}
}

/* ------------------------------------------------------------------------ */
/* The fake transport                                                       */
/* ------------------------------------------------------------------------ */

struct http_exchange {
	const char *api_key; /* X-API-Key, or NULL */
	const char *bearer;  /* Authorization value, or NULL */
	int responses;
	int status;
	void (*on_abort)(void *ctx);
	void *abort_ctx;
};

static int copy_header(const char *value, char *out, size_t out_len)
{
	size_t n = strlen(value);
	if (n + 1 > out_len)
		return -1;
	memcpy(out, value, n + 1);
	return (int)n;
}

int http_header(http_exchange *x, const char *name, char *out, size_t out_len)
{
	if (!strcasecmp(name, "X-API-Key") && x->api_key)
		return copy_header(x->api_key, out, out_len);
	if (!strcasecmp(name, "Authorization") && x->bearer)
		return copy_header(x->bearer, out, out_len);
	return -1;
}

void http_on_abort(http_exchange *x, void (*fn)(void *ctx), void *ctx)
{
	x->on_abort = fn;
	x->abort_ctx = ctx;
}

void http_respond(http_exchange *x, int status, const char *content_type,
		  const void *body, size_t len, const char *headers)
{
	(void)headers;
	x->responses++;
	x->status = status;
	check(x->responses == 1, "a second response to one request");
	check(status >= 200 && status <= 599, "status out of range");
	check(len == 0 || body != NULL, "a body length without a body");
	if (content_type && !strncmp(content_type, "application/json", 16)) {
		json_error_t error;
		json_t *doc = json_loadb(body, len, 0, &error);
		check(doc != NULL, "an application/json body that is not JSON");
		if (status >= 400 && status != 503) {
			json_t *e = json_object_get(doc, "error");
			check(json_is_string(json_object_get(e, "code")) &&
				      json_is_string(
					      json_object_get(e, "message")),
			      "an error without {\"error\": {code, message}}");
		}
		json_decref(doc);
	}
}

/* net.c's peer table, which /api/sync/status and /metrics read (net.c
 * would bring the transport and sessions with it): two fixed peers, one
 * online and one never reached, so the rendering of both is exercised.
 *
 * With no peers at all, rest_status.c's load_peers() calls qsort(NULL, 0,
 * ...), which UBSan reports (null argument declared nonnull); that is
 * reported to the lead, and kept out of the way here so the run goes on. */
ferry_err ferry_net_peers(ferry_node *node, ferry_peer_cb cb, void *payload)
{
	static const uint8_t id[FERRY_PUBLIC_KEY_BYTES] = {0x3f, 0xa2, 0xc0};
	ferry_peer_info p;
	(void)node;
	memset(&p, 0, sizeof(p));
	p.has_id = 1;
	p.id = id;
	p.name = "branch \"7\"\n";
	p.url = "";
	p.online = 1;
	p.updated_ms = p.connected_ms = p.last_sync_ms = 1795262600000u;
	p.pending_send = 42;
	p.sent = 120;
	p.last_refusal = "peer 3fa2c0de may not write scope pricelist";
	p.last_error = "";
	if (cb(&p, payload))
		return FERRY_OK;
	memset(&p, 0, sizeof(p));
	p.name = "";
	p.url = "ws://10.0.0.9:7400/";
	p.last_refusal = "";
	p.last_error = "connection refused";
	p.last_error_ms = 1795262500000u;
	cb(&p, payload);
	return FERRY_OK;
}

/* ------------------------------------------------------------------------ */
/* The node and the hub, once                                               */
/* ------------------------------------------------------------------------ */

static ferry_node *node;
static hub *the_hub;
static adapters *the_adapters;
static char node_dir[256]; /* the mkdtemp directory, removed at exit */
static char token_admin[APIKEY_TOKEN_BYTES], token_branch[APIKEY_TOKEN_BYTES],
	token_two[APIKEY_TOKEN_BYTES], token_reader[APIKEY_TOKEN_BYTES],
	bearer_admin[APIKEY_TOKEN_BYTES + 8];

static void make_key(const char *name, const char *read, const char *write,
		     char token[APIKEY_TOKEN_BYTES])
{
	apikey_info info;
	char err[256];
	check(apikey_create(node, name, read, write, token, &info, err,
			    sizeof(err)) == FERRY_OK,
	      "creating an API key");
	apikey_info_clear(&info);
}

static void put(ferry_txn *txn, const char *scope, const char *collection,
		const char *key, const char *json)
{
	json_t *fields = json_loads(json, 0, NULL);
	check(fields && ferry_json_put(txn, scope, collection, key, fields) ==
				FERRY_OK,
	      "seeding a record");
	json_decref(fields);
}

static int remove_one(const char *path, const struct stat *st, int type,
		      struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	remove(path);
	return 0;
}

/* libFuzzer exits through exit() when a run ends (not on a crash, which
 * leaves the node for inspection). */
static void teardown(void)
{
	hub_free(the_hub);
	adapters_stop(the_adapters);
	ferry_node_close(node);
	nftw(node_dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* The node's clock: the real one, pushed far ahead to expire every parked
 * long poll at the end of an input. */
static uint64_t clock_jump;

static uint64_t fuzz_clock(void *payload)
{
	struct timespec ts;
	(void)payload;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u +
	       clock_jump;
}

static void setup(void)
{
	ferry_node_options opts = FERRY_NODE_OPTIONS_INIT;
	opts.clock = fuzz_clock;
	hub_config config = {"pricelist", 65536, 64, 2, NULL};
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : NULL;
	char dir[300];
	ferry_txn *txn;

	if (!base)
		base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(node_dir, sizeof(node_dir), "%s/ferry-http-fuzz.XXXXXX", base);
	check(mkdtemp(node_dir) != NULL, "mkdtemp");
	snprintf(dir, sizeof(dir), "%s/node", node_dir);
	opts.no_sync = 1;
	check(ferry_node_open(&node, dir, &opts, NULL) == FERRY_OK,
	      "opening the node");

	check(ferry_txn_begin(&txn, node) == FERRY_OK, "txn");
	put(txn, "1/1", "clients", "c1", "{\"name\": \"Anna\", \"phone\": 1}");
	put(txn, "1/1", "clients", "7", "{\"name\": \"Boris\"}");
	put(txn, "1/1", "patients", "p1", "{\"name\": \"Rex\", \"client\": 7}");
	put(txn, "1/2", "clients", "c1", "{\"name\": \"Other branch\"}");
	put(txn, "pricelist", "nomenclature", "n1",
	    "{\"name\": \"Checkup\", \"price\": 800}");
	put(txn, "shop", "tasks", "t1",
	    "{\"title\": \"Feed\", \"tags\": [1, 2.5, null, {\"$bin\": "
	    "\"AAE=\"}]}");
	check(ferry_txn_commit(txn) == FERRY_OK, "commit");

	make_key("admin", "*", "*", token_admin);
	make_key("branch", "1/1,pricelist", "1/1", token_branch);
	make_key("two", "1/1,1/2", "1/1,1/2", token_two);
	make_key("reader", "1/1,pricelist,shop", "", token_reader);
	snprintf(bearer_admin, sizeof(bearer_admin), "Bearer %s", token_admin);

	/* Webhooks (POST /hooks/acc with an API key, /hooks/sig with an HMAC
	 * nobody can forge here, so its checks are what gets fuzzed) through
	 * a running adapters runtime with nothing to push or pull. */
	char cfg_path[320], why[512];
	snprintf(cfg_path, sizeof(cfg_path), "%s/adapters.json", node_dir);
	FILE *cfg = fopen(cfg_path, "w");
	check(cfg != NULL, "writing adapters.json");
	fputs("{\"adapters\": [{\"name\": \"acc\", \"webhook\": {"
	      "\"auth\": {\"api_key\": true}, \"event_id\": \"/id\", "
	      "\"writes\": [{\"scope\": \"{/branch}\", \"collection\": "
	      "\"loyalty\", \"key\": \"visit-{/visit}\", \"id\": \"{/visit}\", "
	      "\"fields\": {\"client\": \"{/client}\", \"points\": {\"from\": "
	      "\"/amount\", \"multiply\": 0.05, \"round\": \"floor\"}, "
	      "\"note\": \"{/note}\"}}]}}, "
	      "{\"name\": \"sig\", \"webhook\": {\"auth\": {\"hmac\": "
	      "{\"secret\": \"sig_hook\", \"prefix\": \"sha256=\"}}, "
	      "\"event_id\": \"/id\", \"writes\": [{\"scope\": \"1/1\", "
	      "\"collection\": \"events\", \"key\": \"{/id}\", \"fields\": "
	      "{\"v\": \"{/v}\"}}]}}]}",
	      cfg);
	check(fclose(cfg) == 0, "writing adapters.json");
	check(secret_set(node, "sig_hook", "fuzz", 4) == FERRY_OK,
	      "storing the webhook secret");
	check(adapters_start(&the_adapters, node, cfg_path, NULL, NULL, why,
			     sizeof(why)) == FERRY_OK,
	      "starting the adapters");
	config.adapters = the_adapters;

	check(hub_new(&the_hub, node, &config) == FERRY_OK, "hub_new");
	atexit(teardown);
}

/* ------------------------------------------------------------------------ */
/* One input, one request                                                   */
/* ------------------------------------------------------------------------ */

/* The next line of data[*pos..len) as a new string (NUL bytes end it
 * early, as they would in a C string from the transport). */
static char *next_line(const uint8_t *data, size_t len, size_t *pos)
{
	size_t start = *pos, end = start;
	char *s;
	while (end < len && data[end] != '\n')
		end++;
	*pos = end < len ? end + 1 : end;
	s = malloc(end - start + 1);
	check(s != NULL, "malloc");
	memcpy(s, data + start, end - start);
	s[end - start] = '\0';
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static int ready, verbose;
	http_exchange *x = calloc(1, sizeof(*x));
	http_request req = {0};
	char method[8], *args[MAX_ARGS];
	size_t nargs = 0, pos = 0;
	char *head, *path, *query, *key, *save = NULL;
	uint8_t *body;
	int leave = 0, aborted = 0;
	uint64_t cursor = 0;

	check(x != NULL, "calloc");
	if (!ready) {
		setup();
		verbose = getenv("FERRY_HTTP_FUZZ_VERBOSE") != NULL;
		ready = 1;
	}

	head = next_line(data, len, &pos);
	path = next_line(data, len, &pos);
	query = next_line(data, len, &pos);
	/* An exact-size copy, so reading past the body is caught. */
	body = malloc(len - pos + 1);
	check(body != NULL, "malloc");
	memcpy(body, data + pos, len - pos);

	key = strchr(head, ' ');
	if (key)
		*key++ = '\0';
	else
		key = "";
	if (head[0] == '!') {
		leave = 1;
		memmove(head, head + 1, strlen(head));
	}
	snprintf(method, sizeof(method), "%s", head);
	if (!strcmp(key, "admin"))
		x->api_key = token_admin;
	else if (!strcmp(key, "branch"))
		x->api_key = token_branch;
	else if (!strcmp(key, "two"))
		x->api_key = token_two;
	else if (!strcmp(key, "reader"))
		x->api_key = token_reader;
	else if (!strcmp(key, "bearer"))
		x->bearer = bearer_admin;
	else if (!strncmp(key, "raw:", 4))
		x->api_key = key + 4;

	/* The transport splits the query at '&' and decodes each argument;
	 * here they arrive as the input spells them. */
	for (char *a = strtok_r(query, "&", &save); a && nargs < MAX_ARGS;
	     a = strtok_r(NULL, "&", &save))
		args[nargs++] = a;

	req.method = method;
	req.path = path[0] ? path : "/";
	req.args = (const char *const *)args;
	req.nargs = nargs;
	req.body = body;
	req.body_len = len - pos;
	req.peer = "127.0.0.1:1";

	hub_handle(x, &req, the_hub);
	if (!x->responses) {
		/* Parked: a long poll. The client leaves (the transport calls
		 * the abort callback and forgets the exchange), or stays. */
		check(x->on_abort != NULL, "no response and not parked");
		if (leave) {
			aborted = 1;
			x->on_abort(x->abort_ctx);
		}
	}
	/* Every deadline passes: whatever is still parked answers now, and
	 * an aborted request must not be among it. The exchange is heap
	 * memory freed below, so a request that outlives it is caught. */
	check(ferry_changes_last(&cursor, node) == FERRY_OK,
	      "ferry_changes_last");
	clock_jump = UINT64_C(1) << 40; /* ~35 years on */
	hub_tick(the_hub, cursor);
	clock_jump = 0;
	check(x->responses == (aborted ? 0 : 1),
	      aborted ? "a response to a request whose client left"
		      : "a request without exactly one response");
	if (verbose)
		fprintf(stderr,
			"%s %s (%zu args, %zu body bytes, key %s): %d\n",
			method, req.path, nargs, req.body_len, *key ? key : "-",
			aborted ? 0 : x->status);
	free(x);

	free(head);
	free(path);
	free(query);
	free(body);
	return 0;
}
