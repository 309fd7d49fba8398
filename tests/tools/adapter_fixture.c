/*
 * adapter_fixture.c — stands in for the serving process in
 * cli_adapter_test.sh: writes the kv entries `ferry serve --adapters`
 * would (net/adapter_state.h) into a data directory, reads entries back,
 * and answers one reload request, so `ferry adapter` is tested on its own.
 *
 * usage: adapter_fixture DIR status NAME [JSON]
 *        adapter_fixture DIR dlq NAME ID [JSON]
 *        adapter_fixture DIR running PATH [JSON]
 *        adapter_fixture DIR get TABLE KEY
 *        adapter_fixture DIR answer-reload SINCE_MS [ERROR]
 *        adapter_fixture DIR damage-state ADAPTER SCOPE COLLECTION KEY
 *
 * status, dlq and running write a typical entry with the members of the
 * JSON object (if given) laid over it; its "age_ms" member, if any, dates
 * the entry that many ms back ("updated", "time" or "loaded"). get prints
 * an entry as JSON (exit 3 if there is none). answer-reload waits up to
 * 10 s for a reload request made at SINCE_MS or later, then writes the
 * "running" entry as loaded now, or with ERROR. damage-state overwrites an
 * adapter's stored state of one record with bytes that are not JSON (for
 * the adapter fault tests, with the hub stopped).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adapter_state.h"
#include "ferry.h"
#include "kvjson.h"

static ferry_node *node;

static void die(const char *what, ferry_err err)
{
	fprintf(stderr, "adapter_fixture: %s: %s (%s)\n", what,
		ferry_strerror(err), node ? ferry_node_errmsg(node) : "");
	exit(2);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: adapter_fixture DIR status NAME [JSON] | dlq "
		"NAME ID [JSON] | running PATH [JSON] | get TABLE KEY "
		"| answer-reload SINCE_MS [ERROR] | damage-state ADAPTER "
		"SCOPE COLLECTION KEY\n");
	exit(1);
}

/* `base` with the members of the JSON text `over` (may be NULL) laid over
 * it; its "age_ms" dates member `time_member` that many ms back. */
static json_t *overlay(json_t *base, const char *over, const char *time_member)
{
	if (!base)
		die("building the entry", FERRY_E_NOMEM);
	if (over) {
		json_error_t jerr;
		json_t *o = json_loads(over, 0, &jerr);
		if (!json_is_object(o)) {
			fprintf(stderr, "adapter_fixture: bad JSON: %s\n",
				jerr.text);
			exit(1);
		}
		/* Dated back only when asked: the typical entries carry
		 * their own times. */
		json_t *age = json_object_get(o, "age_ms");
		if (age)
			json_object_set_new(
				base, time_member,
				json_integer(
					(json_int_t)ferry_node_now_ms(node) -
					json_integer_value(age)));
		json_object_del(o, "age_ms");
		json_object_update(base, o);
		json_decref(o);
	}
	return base;
}

static void put(const char *table, const char *key, json_t *doc)
{
	ferry_err err = kvjson_put(node, table, key, doc);
	json_decref(doc);
	if (err)
		die("writing the entry", err);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int main(int argc, char **argv)
{
	if (argc < 4)
		usage();
	const char *cmd = argv[2];
	char *detail = NULL;
	ferry_err err = ferry_node_open(&node, argv[1], NULL, &detail);
	if (err) {
		fprintf(stderr, "adapter_fixture: cannot open %s: %s (%s)\n",
			argv[1], ferry_strerror(err), detail ? detail : "");
		free(detail);
		return 2;
	}
	json_int_t now = (json_int_t)ferry_node_now_ms(node);
	int rc = 0;

	if (strcmp(cmd, "status") == 0 && argc <= 5) {
		json_t *st = json_pack(
			"{s:s, s:s, s:I, s:I, s:I, s:f, s:I, s:I, s:I, s:I, "
			"s:s, s:I, s:{s:s, s:I}, s:[{s:s, s:I, s:I, s:I, "
			"s:I}]}",
			"name", argv[3], "state", "running", "updated", now,
			"cursor", (json_int_t)1234, "lag_changes",
			(json_int_t)3, "lag_seconds", 1.5, "delivered",
			(json_int_t)1200, "retries", (json_int_t)4,
			"dead_letters", (json_int_t)2, "in_flight",
			(json_int_t)1, "last_error",
			"POST /owners: HTTP 500 Internal Server Error",
			"last_error_time", now - 12000, "auth", "type",
			"oauth2", "token_expires", now + 3600 * 1000, "pulls",
			"name", "doctors", "last_run", now - 60000, "items",
			(json_int_t)120, "written", (json_int_t)3, "deleted",
			(json_int_t)0);
		put(ADAPTER_STATUS_TABLE, argv[3],
		    overlay(st, argc == 5 ? argv[4] : NULL, "updated"));
	} else if (strcmp(cmd, "dlq") == 0 && (argc == 5 || argc == 6)) {
		char table[ADAPTER_TABLE_BYTES], key[ADAPTER_DLQ_KEY_BYTES];
		uint64_t id = strtoull(argv[4], NULL, 10);
		adapter_table(table, argv[3], ".dlq");
		adapter_dlq_key(key, id);
		json_t *e = json_pack(
			"{s:I, s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:[s], "
			"s:s, s:I, s:s, s:I, s:{s:s, s:s, s:s}, s:{s:i, "
			"s:s}}",
			"id", (json_int_t)id, "origin",
			"00112233445566778899aabbccddeeff00112233445566778899"
			"aabbccddeeff",
			"scope", "clinic-7", "seq", (json_int_t)id, "hlc",
			(json_int_t)0, "collection", "owners", "key", "o-1",
			"op", "put", "fields", "phone", "state", "failed",
			"attempts", (json_int_t)1, "error",
			"HTTP 422: phone is not a phone number", "time",
			now - 30000, "request", "method", "POST", "url",
			"http://pms.example.org/api/owners", "body",
			"{\"phone\":\"x\"}", "response", "status", 422, "body",
			"{\"error\":\"phone\"}");
		put(table, key, overlay(e, argc == 6 ? argv[5] : NULL, "time"));
	} else if (strcmp(cmd, "running") == 0 && argc <= 5) {
		json_t *r =
			json_pack("{s:s, s:I}", "path", argv[3], "loaded", now);
		put(ADAPTER_CONTROL_TABLE, "running",
		    overlay(r, argc == 5 ? argv[4] : NULL, "loaded"));
	} else if (strcmp(cmd, "get") == 0 && argc == 5) {
		json_t *doc;
		err = kvjson_get(&doc, node, argv[3], argv[4]);
		if (err == FERRY_E_NOT_FOUND) {
			rc = 3;
		} else if (err) {
			die("reading the entry", err);
		} else {
			json_dumpf(doc, stdout, JSON_COMPACT | JSON_SORT_KEYS);
			putchar('\n');
			json_decref(doc);
		}
	} else if (strcmp(cmd, "damage-state") == 0 && argc == 7) {
		char table[ADAPTER_TABLE_BYTES], key[ADAPTER_STATE_KEY_BYTES];
		adapter_table(table, argv[3], "");
		adapter_record_key(key, argv[4], argv[5], argv[6]);
		err = ferry_kv_put(node, table, key, "{\"s\":", 5);
		if (err)
			die("damaging the state", err);
	} else if (strcmp(cmd, "answer-reload") == 0 && argc <= 5) {
		json_int_t since = strtoll(argv[3], NULL, 10);
		rc = 4;
		for (int i = 0; i < 1000 && rc; i++) {
			json_t *req;
			if (kvjson_get(&req, node, ADAPTER_CONTROL_TABLE,
				       "reload") == FERRY_OK) {
				if (json_integer_value(json_object_get(
					    req, "requested")) >= since)
					rc = 0;
				json_decref(req);
			}
			if (rc)
				sleep_ms(10);
		}
		if (rc == 0) {
			/* A refused reload keeps the old "loaded". */
			json_t *r = json_pack(
				"{s:s, s:I, s:s?}", "path",
				"/etc/adapters.json", "loaded",
				argc == 5 ? now - 60000
					  : (json_int_t)ferry_node_now_ms(node),
				"error", argc == 5 ? argv[4] : NULL);
			put(ADAPTER_CONTROL_TABLE, "running", r);
		}
	} else {
		usage();
	}
	ferry_node_close(node);
	free(detail);
	return rc;
}
