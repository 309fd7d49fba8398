/*
 * cmd_adapter.c — `adapter`: what the adapters of a serving process are
 * doing (docs/adapters.md, "Status and dead letters") and the operator's
 * levers on them. `status` and `dlq ls` read what `ferry serve` writes
 * into the node's kv tables (net/adapter_state.h); `dlq retry`, `dlq
 * drop` and `reload` write there what it picks up within a second; `check`
 * validates a configuration file and that the secrets it names are
 * stored, without starting anything.
 *
 * Nothing here talks to the serving process directly: the kv tables are
 * the interface, so these commands work from any process using the data
 * directory, and say so when nobody answers.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "adapter_config.h"
#include "adapter_state.h"
#include "cli.h"
#include "kvjson.h"
#include "secret.h"

/* The serving process rewrites each status every quarter second; one
 * this much older was left by a process that stopped. */
#define STALE_MS 5000
/* How long `reload` waits for the serving process's answer, and how often
 * it looks. */
#define RELOAD_WAIT_MS 5000
#define RELOAD_POLL_MS 50
/* The width `dlq ls` fits its table into. */
#define TABLE_COLUMNS 100

/* ------------------------------------------------------------------------ */
/* Reading what the serving process wrote                                   */
/* ------------------------------------------------------------------------ */

static uint64_t member_u64(const json_t *obj, const char *name)
{
	json_int_t v = json_integer_value(json_object_get(obj, name));
	return v > 0 ? (uint64_t)v : 0;
}

static const char *member_str(const json_t *obj, const char *name)
{
	const char *s = json_string_value(json_object_get(obj, name));
	return s ? s : "";
}

/* A time member, spelt NAME or NAME_ms; 0 when absent. */
static uint64_t member_ms(const json_t *obj, const char *name)
{
	char alt[64];
	uint64_t v = member_u64(obj, name);
	snprintf(alt, sizeof(alt), "%s_ms", name);
	return v ? v : member_u64(obj, alt);
}

/* Adapter names as the configuration allows them (1..32 of a-z 0-9 _ -):
 * anything else cannot have tables, and would not fit a table name. */
static int check_adapter_name(struct cli *cli, const char *name)
{
	size_t len = strlen(name);
	int ok = len >= 1 && len <= ADAPTER_NAME_MAX;
	for (const char *p = name; ok && *p; p++)
		ok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		     *p == '_' || *p == '-';
	if (!ok)
		return cli_usage(cli,
				 "'%s' is not an adapter name (1 to %d "
				 "characters a-z 0-9 _ -)",
				 name, ADAPTER_NAME_MAX);
	return CLI_EXIT_OK;
}

/* What a table scan gathers: each entry's object, with `key_member` set
 * to its kv key when the object lacks it (a status's adapter name). */
struct table_view {
	json_t *items;
	const char *table;
	const char *key_member;
	int nomem;
};

static int collect_entry(const char *key, const void *value, size_t len,
			 void *payload)
{
	struct table_view *v = payload;
	json_t *doc;
	if (kvjson_parse(&doc, value, len) != FERRY_OK) {
		/* One damaged entry must not hide the others. */
		fprintf(stderr,
			"warning: entry %s of kv table %s is damaged; "
			"skipped\n",
			key, v->table);
		return 0;
	}
	if (v->key_member && !json_object_get(doc, v->key_member) &&
	    json_object_set_new(doc, v->key_member, json_string(key))) {
		json_decref(doc);
		v->nomem = 1;
		return 1;
	}
	if (json_array_append_new(v->items, doc)) {
		v->nomem = 1;
		return 1;
	}
	return 0;
}

/* Every entry of `table` as a JSON array in key order, or NULL after
 * reporting. */
static json_t *read_table(struct cli *cli, const char *table,
			  const char *key_member)
{
	struct table_view v = {json_array(), table, key_member, 0};
	if (!v.items) {
		cli_print_json(NULL);
		return NULL;
	}
	ferry_err err = ferry_kv_scan(cli->node, table, collect_entry, &v);
	if (v.nomem) {
		json_decref(v.items);
		cli_print_json(NULL);
		return NULL;
	}
	if (err) {
		json_decref(v.items);
		cli_fail(cli, err, NULL, "cannot read kv table %s", table);
		return NULL;
	}
	return v.items;
}

/* The control table's `key` entry, NULL in *out when there is none.
 * Returns CLI_EXIT_OK or, after reporting, CLI_EXIT_FAILED. A damaged
 * entry counts as none (the serving process rewrites it). */
static int control_get(struct cli *cli, const char *key, json_t **out)
{
	*out = NULL;
	ferry_err err = kvjson_get(out, cli->node, ADAPTER_CONTROL_TABLE, key);
	if (err == FERRY_E_NOT_FOUND || err == FERRY_E_CORRUPT) {
		*out = NULL;
		return CLI_EXIT_OK;
	}
	if (err)
		return cli_fail(cli, err, NULL, "cannot read kv table %s",
				ADAPTER_CONTROL_TABLE);
	return CLI_EXIT_OK;
}

/* ------------------------------------------------------------------------ */
/* status                                                                   */
/* ------------------------------------------------------------------------ */

static void print_running(const json_t *running, uint64_t now)
{
	char age[32];
	if (!running)
		return;
	cli_age_text(age, sizeof(age), member_ms(running, "loaded"), now);
	printf("configuration  %s (loaded %s)\n",
	       *member_str(running, "path") ? member_str(running, "path")
					    : "(unknown file)",
	       age);
	if (*member_str(running, "error")) {
		uint64_t when = member_ms(running, "error_time");
		printf("reload error   %s", member_str(running, "error"));
		if (when) {
			cli_age_text(age, sizeof(age), when, now);
			printf(" (%s)", age);
		}
		printf("\n               the configuration loaded before "
		       "runs on; fix the file (`ferry adapter check`), then "
		       "`ferry adapter reload`\n");
	}
}

/* "token valid for 3540 s", "refresh failed: ..." and the like. */
static void print_auth(const json_t *auth, uint64_t now)
{
	char age[32];
	const char *type = member_str(auth, "type");
	if (!json_is_object(auth) || !*type || strcmp(type, "none") == 0)
		return;
	printf("  auth          %s", type);
	uint64_t expires = member_ms(auth, "token_expires");
	if (strcmp(type, "oauth2") == 0) {
		if (json_is_true(json_object_get(auth, "token_refused")))
			printf(": token refused by the system (401), asking "
			       "for a new one");
		else if (expires > now)
			printf(": token valid for %" PRIu64 " s",
			       (expires - now) / 1000);
		else if (expires)
			printf(": token expired");
		else if (!*member_str(auth, "error"))
			printf(": no token expiry known");
	}
	if (*member_str(auth, "error")) {
		uint64_t when = member_ms(auth, "error_time");
		printf("; refresh error: %s", member_str(auth, "error"));
		if (when) {
			cli_age_text(age, sizeof(age), when, now);
			printf(" (%s)", age);
		}
	}
	printf("\n");
}

static void print_pull(const json_t *pull, uint64_t now)
{
	char age[32];
	cli_age_text(age, sizeof(age), member_ms(pull, "last_run"), now);
	printf("  pull %-8s last run %s: %" PRIu64 " items, %" PRIu64
	       " written, %" PRIu64 " deleted",
	       member_str(pull, "name"), age, member_u64(pull, "items"),
	       member_u64(pull, "written"), member_u64(pull, "deleted"));
	if (*member_str(pull, "error"))
		printf("; error: %s", member_str(pull, "error"));
	printf("\n");
}

static void print_status(const json_t *st, uint64_t now)
{
	char age[32];
	const char *name = member_str(st, "name");
	const char *state = member_str(st, "state");
	if (json_is_true(json_object_get(st, "stale"))) {
		cli_age_text(age, sizeof(age), member_ms(st, "updated"), now);
		printf("%s  stale: last update %s (the serving process "
		       "stopped?)\n",
		       name, age);
	} else {
		printf("%s  %s\n", name, *state ? state : "running");
	}
	if (*member_str(st, "error") && !*member_str(st, "last_error"))
		printf("  error         %s\n", member_str(st, "error"));
	printf("  cursor        %" PRIu64 "\n", member_u64(st, "cursor"));
	printf("  lag           %" PRIu64 " changes, %.1f s\n",
	       member_u64(st, "lag_changes"),
	       json_number_value(json_object_get(st, "lag_seconds")));
	printf("  delivered     %" PRIu64, member_u64(st, "delivered"));
	if (member_u64(st, "skipped"))
		printf(" (%" PRIu64 " changes skipped: not watched, or echoes)",
		       member_u64(st, "skipped"));
	printf("\n");
	printf("  retries       %" PRIu64 "\n", member_u64(st, "retries"));
	uint64_t dead = member_u64(st, "dead_letters");
	printf("  dead letters  %" PRIu64, dead);
	if (dead)
		printf(" (ferry adapter dlq ls %s)", name);
	printf("\n");
	printf("  in flight     %" PRIu64 "\n", member_u64(st, "in_flight"));
	const json_t *last = json_object_get(st, "last_error");
	const char *text = json_is_object(last) ? member_str(last, "text")
						: member_str(st, "last_error");
	if (*text) {
		uint64_t when = json_is_object(last)
					? member_ms(last, "time")
					: member_ms(st, "last_error_time");
		cli_age_text(age, sizeof(age), when, now);
		printf("  last error    %s (%s)\n", text, age);
	}
	print_auth(json_object_get(st, "auth"), now);
	size_t i;
	const json_t *pull;
	json_array_foreach(json_object_get(st, "pulls"), i, pull)
	{
		print_pull(pull, now);
	}
}

/* The names in the listing `items` (objects with "name"), for hints. */
static void names_text(char *out, size_t len, const json_t *items)
{
	size_t i, at = 0;
	const json_t *item;
	*out = '\0';
	json_array_foreach(items, i, item)
	{
		if (at + 1 >= len)
			break;
		int n = snprintf(out + at, len - at, "%s%s", i ? ", " : "",
				 member_str(item, "name"));
		if (n < 0)
			break;
		at += (size_t)n;
	}
	ferry_utf8_trim(out);
}

static int adapter_status(struct cli *cli, char **args, int nargs)
{
	if (nargs > 1)
		return cli_usage(cli, "status takes at most one NAME");
	int rc = nargs ? check_adapter_name(cli, args[0]) : CLI_EXIT_OK;
	if (!rc)
		rc = cli_open(cli, 0);
	if (rc)
		return rc;
	json_t *running;
	rc = control_get(cli, "running", &running);
	if (rc)
		return rc;
	json_t *all = read_table(cli, ADAPTER_STATUS_TABLE, "name");
	if (!all) {
		json_decref(running);
		return CLI_EXIT_FAILED;
	}
	uint64_t now = ferry_node_now_ms(cli->node);
	json_t *shown = json_array();
	size_t i;
	json_t *st;
	json_array_foreach(all, i, st)
	{
		uint64_t updated = member_ms(st, "updated");
		int stale = now > updated && now - updated > STALE_MS;
		int wanted =
			!nargs || strcmp(member_str(st, "name"), args[0]) == 0;
		if (json_object_set_new(st, "stale", json_boolean(stale)) ||
		    (wanted && shown && json_array_append(shown, st))) {
			json_decref(shown);
			shown = NULL;
		}
	}
	if (!shown) {
		rc = cli_print_json(NULL);
		goto out;
	}
	if (nargs && json_array_size(shown) == 0) {
		char names[512], hint[640];
		names_text(names, sizeof(names), all);
		if (*names)
			snprintf(hint, sizeof(hint),
				 "the adapters with a status are %s", names);
		else
			snprintf(hint, sizeof(hint),
				 "no adapter has a status: start them with "
				 "`ferry serve --adapters FILE`");
		rc = cli_fail_msg(hint, "no adapter named %s has a status",
				  args[0]);
		goto out;
	}
	if (cli->json) {
		rc = cli_print_json(json_incref(shown));
		goto out;
	}
	print_running(running, now);
	if (json_array_size(shown) == 0)
		printf("no adapters are running (start them with `ferry serve "
		       "--adapters FILE`, or put adapters.json in the data "
		       "directory; `ferry adapter check FILE` validates it "
		       "first)\n");
	json_array_foreach(shown, i, st)
	{
		if (i > 0 || running)
			printf("\n");
		print_status(st, now);
	}
out:
	json_decref(shown);
	json_decref(all);
	json_decref(running);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* dlq                                                                      */
/* ------------------------------------------------------------------------ */

/* A sorted set of adapter names. */
struct names {
	char **v;
	size_t n;
};

static int names_add(struct names *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i], name) == 0)
			return 0;
	char **grown = realloc(s->v, (s->n + 1) * sizeof(*grown));
	if (!grown)
		return -1;
	s->v = grown;
	if (!(s->v[s->n] = strdup(name)))
		return -1;
	s->n++;
	return 0;
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void names_free(struct names *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
}

/* Every adapter that may have dead letters: those with a status, and those
 * in the file the serving process last loaded (an adapter that never ran
 * since has none). */
static int adapter_names(struct cli *cli, struct names *out)
{
	json_t *statuses = read_table(cli, ADAPTER_STATUS_TABLE, "name");
	if (!statuses)
		return CLI_EXIT_FAILED;
	json_t *running;
	int rc = control_get(cli, "running", &running);
	size_t i;
	const json_t *st;
	json_array_foreach(statuses, i, st)
	{
		if (!rc && names_add(out, member_str(st, "name")))
			rc = cli_print_json(NULL);
	}
	const char *path = member_str(running, "path");
	adapter_config *cfg = NULL;
	char why[512];
	if (!rc && *path &&
	    adapter_config_load(&cfg, path, why, sizeof(why)) == FERRY_OK) {
		for (i = 0; !rc && i < cfg->n; i++)
			if (names_add(out, cfg->adapters[i].name))
				rc = cli_print_json(NULL);
	}
	adapter_config_free(cfg);
	json_decref(running);
	json_decref(statuses);
	if (out->n)
		qsort(out->v, out->n, sizeof(*out->v), compare_names);
	return rc;
}

/* The dead letters of adapter `name`, each with "adapter" added; appended
 * to `into`. */
static int read_dlq(struct cli *cli, const char *name, json_t *into)
{
	char table[ADAPTER_TABLE_BYTES];
	adapter_table(table, name, ".dlq");
	json_t *items = read_table(cli, table, NULL);
	if (!items)
		return CLI_EXIT_FAILED;
	size_t i;
	json_t *item;
	int rc = CLI_EXIT_OK;
	json_array_foreach(items, i, item)
	{
		if (json_object_set_new(item, "adapter", json_string(name)) ||
		    json_array_append(into, item)) {
			rc = cli_print_json(NULL);
			break;
		}
	}
	json_decref(items);
	return rc;
}

/* "scope/collection/key" of a dead letter (malloc'd; NULL when out of
 * memory). */
static char *record_text(const json_t *e)
{
	const char *s = member_str(e, "scope"),
		   *c = member_str(e, "collection"), *k = member_str(e, "key");
	size_t len = strlen(s) + strlen(c) + strlen(k) + 3;
	char *out = malloc(len);
	if (out)
		snprintf(out, len, "%s/%s/%s", s, c, k);
	return out;
}

/* `text` cut to at most `width` bytes, ending in "..." when cut, into
 * `out` (width + 1 bytes). */
static void fit(char *out, const char *text, int width)
{
	size_t w = width > 3 ? (size_t)width : 3;
	if (strlen(text) <= w) {
		strcpy(out, text);
		return;
	}
	memcpy(out, text, w - 3);
	out[w - 3] = '\0';
	ferry_utf8_trim(out);
	strcat(out, "...");
}

/* One line of an error: the first line only, so the table stays a
 * table. */
static void first_line(char *out, size_t len, const char *text)
{
	snprintf(out, len, "%.*s", (int)strcspn(text, "\r\n"), text);
	ferry_utf8_trim(out);
}

static int wider(int width, size_t len)
{
	return (int)len > width ? (int)len : width;
}

static void print_dlq_table(const json_t *entries, uint64_t now)
{
	int id_w = 2, name_w = 7, rec_w = 6;
	size_t i;
	const json_t *e;
	char buf[64];
	json_array_foreach(entries, i, e)
	{
		snprintf(buf, sizeof(buf), "%" PRIu64, member_u64(e, "id"));
		id_w = wider(id_w, strlen(buf));
		name_w = wider(name_w, strlen(member_str(e, "adapter")));
		rec_w = wider(rec_w,
			      strlen(member_str(e, "scope")) +
				      strlen(member_str(e, "collection")) +
				      strlen(member_str(e, "key")) + 2);
	}
	if (rec_w > 40)
		rec_w = 40;
	/* ID ADAPTER RECORD OP STATE ATTEMPTS HTTP AGE, two spaces apart;
	 * the error gets what is left of the line. */
	int used = id_w + name_w + rec_w + 6 + 7 + 8 + 4 + 7 + 2 * 8;
	int err_w = TABLE_COLUMNS - used > 30 ? TABLE_COLUMNS - used : 30;
	printf("%-*s  %-*s  %-*s  %-6s  %-7s  %-8s  %-4s  %-7s  %s\n", id_w,
	       "ID", name_w, "ADAPTER", rec_w, "RECORD", "OP", "STATE",
	       "ATTEMPTS", "HTTP", "AGE", "ERROR");
	json_array_foreach(entries, i, e)
	{
		char *rec = record_text(e);
		char rec_cell[41], err[512], err_cell[512], http[16], age[32];
		fit(rec_cell, rec ? rec : "?", rec_w);
		free(rec);
		const json_t *status = json_object_get(
			json_object_get(e, "response"), "status");
		if (json_is_integer(status))
			snprintf(http, sizeof(http), "%" JSON_INTEGER_FORMAT,
				 json_integer_value(status));
		else
			snprintf(http, sizeof(http), "-");
		cli_age_text(age, sizeof(age), member_ms(e, "time"), now);
		first_line(err, sizeof(err), member_str(e, "error"));
		if (!*err && strcmp(member_str(e, "state"), "blocked") == 0)
			snprintf(err, sizeof(err), "waits behind %" PRIu64,
				 member_u64(e, "blocked_by"));
		fit(err_cell, *err ? err : "-",
		    err_w < (int)sizeof(err_cell) - 1
			    ? err_w
			    : (int)sizeof(err_cell) - 1);
		printf("%-*" PRIu64 "  %-*s  %-*s  %-6s  %-7s  %-8" PRIu64
		       "  %-4s  %-7s  %s%s\n",
		       id_w, member_u64(e, "id"), name_w,
		       member_str(e, "adapter"), rec_w, rec_cell,
		       member_str(e, "op"), member_str(e, "state"),
		       member_u64(e, "attempts"), http, age, err_cell,
		       json_is_true(json_object_get(e, "retry"))
			       ? " (retry requested)"
			       : "");
	}
}

static int dlq_ls(struct cli *cli, char **args, int nargs)
{
	if (nargs > 1)
		return cli_usage(cli, "dlq ls takes at most one NAME");
	int rc = nargs ? check_adapter_name(cli, args[0]) : CLI_EXIT_OK;
	if (!rc)
		rc = cli_open(cli, 0);
	if (rc)
		return rc;
	struct names names = {0};
	json_t *entries = json_array();
	if (!entries)
		rc = cli_print_json(NULL);
	else if (nargs)
		rc = names_add(&names, args[0]) ? cli_print_json(NULL) : 0;
	else
		rc = adapter_names(cli, &names);
	for (size_t i = 0; !rc && i < names.n; i++)
		rc = read_dlq(cli, names.v[i], entries);
	if (rc)
		goto out;
	if (cli->json) {
		rc = cli_print_json_lines(entries);
		entries = NULL;
	} else if (json_array_size(entries) == 0) {
		if (nargs)
			printf("no dead letters for adapter %s\n", args[0]);
		else
			printf("no dead letters\n");
	} else {
		print_dlq_table(entries, ferry_node_now_ms(cli->node));
	}
out:
	json_decref(entries);
	names_free(&names);
	return rc;
}

/* The dead letter `id` of adapter `name` into *out. Returns CLI_EXIT_OK,
 * or CLI_EXIT_FAILED after reporting (a missing one by name, with where
 * to look). */
static int dlq_get(struct cli *cli, const char *name, uint64_t id, json_t **out)
{
	char table[ADAPTER_TABLE_BYTES], key[ADAPTER_DLQ_KEY_BYTES];
	adapter_table(table, name, ".dlq");
	adapter_dlq_key(key, id);
	ferry_err err = kvjson_get(out, cli->node, table, key);
	if (err == FERRY_E_NOT_FOUND) {
		char hint[128];
		snprintf(hint, sizeof(hint),
			 "see `ferry adapter dlq ls %s` for its dead letters",
			 name);
		return cli_fail_msg(hint,
				    "adapter %s has no dead letter %" PRIu64,
				    name, id);
	}
	if (err)
		return cli_fail(cli, err, NULL,
				"cannot read dead letter %" PRIu64 " of %s", id,
				name);
	return CLI_EXIT_OK;
}

/* Do two dead letters concern the same record? */
static int same_record(const json_t *a, const json_t *b)
{
	return strcmp(member_str(a, "scope"), member_str(b, "scope")) == 0 &&
	       strcmp(member_str(a, "collection"),
		      member_str(b, "collection")) == 0 &&
	       strcmp(member_str(a, "key"), member_str(b, "key")) == 0;
}

/* How many dead letters of the same record as `e` wait behind it, and
 * (in *first_failed, 0 if none) the earliest failed one of that record:
 * the one that holds the others up. -1 after reporting a failure. */
static long record_queue(struct cli *cli, const char *name, const json_t *e,
			 uint64_t *first_failed)
{
	json_t *all = json_array();
	if (!all) {
		cli_print_json(NULL);
		return -1;
	}
	if (read_dlq(cli, name, all)) {
		json_decref(all);
		return -1;
	}
	long behind = 0;
	uint64_t id = member_u64(e, "id");
	size_t i;
	const json_t *other;
	*first_failed = 0;
	json_array_foreach(all, i, other)
	{
		if (!same_record(e, other))
			continue;
		uint64_t oid = member_u64(other, "id");
		if (oid > id &&
		    strcmp(member_str(other, "state"), "blocked") == 0)
			behind++;
		if (!*first_failed &&
		    strcmp(member_str(other, "state"), "failed") == 0)
			*first_failed = oid;
	}
	json_decref(all);
	return behind;
}

/* The one adapter whose dead letters include `id`, for `dlq retry ID`
 * without a NAME. */
static int dlq_owner(struct cli *cli, const char *what, uint64_t id,
		     char name[ADAPTER_NAME_MAX + 1])
{
	struct names all = {0};
	char table[ADAPTER_TABLE_BYTES], key[ADAPTER_DLQ_KEY_BYTES], hint[200];
	size_t found = 0;
	int rc = adapter_names(cli, &all);
	adapter_dlq_key(key, id);
	for (size_t i = 0; !rc && i < all.n; i++) {
		void *v;
		size_t len;
		adapter_table(table, all.v[i], ".dlq");
		if (ferry_kv_get(&v, &len, cli->node, table, key))
			continue;
		free(v);
		if (found++ == 0)
			snprintf(name, ADAPTER_NAME_MAX + 1, "%s", all.v[i]);
	}
	if (!rc && found != 1) {
		snprintf(hint, sizeof(hint),
			 found ? "name the adapter: ferry adapter dlq %s NAME "
				 "%" PRIu64
			       : "see `ferry adapter dlq ls`",
			 what, id);
		rc = cli_fail_msg(
			hint,
			found ? "dead letter %" PRIu64
				" is in %zu adapters' lists"
			      : "no adapter has a dead letter %" PRIu64,
			id, found);
	}
	names_free(&all);
	return rc;
}

/* [NAME] ID of `dlq retry` and `dlq drop`; without NAME, the one adapter
 * that has dead letter ID. */
static int dlq_target(struct cli *cli, const char *what, char **args, int nargs,
		      char name[ADAPTER_NAME_MAX + 1], uint64_t *id)
{
	if (nargs != 1 && nargs != 2)
		return cli_usage(cli,
				 "dlq %s takes [NAME] ID (see `ferry "
				 "adapter dlq ls`)",
				 what);
	int rc = nargs == 2 ? check_adapter_name(cli, args[0]) : 0;
	if (!rc)
		rc = cli_parse_u64(cli, "ID", args[nargs - 1], id);
	if (!rc)
		rc = cli_open(cli, 0);
	if (!rc && nargs == 2)
		snprintf(name, ADAPTER_NAME_MAX + 1, "%s", args[0]);
	else if (!rc)
		rc = dlq_owner(cli, what, *id, name);
	return rc;
}

/* The dead letter `dlq retry|drop [NAME] ID` names (*e, the caller's),
 * with how many of its record wait behind it and the earliest failed one
 * of its record (record_queue). */
static int dlq_entry_for(struct cli *cli, const char *what, char **args,
			 int nargs, char name[ADAPTER_NAME_MAX + 1],
			 uint64_t *id, json_t **e, long *behind,
			 uint64_t *blocker)
{
	int rc = dlq_target(cli, what, args, nargs, name, id);
	if (rc || (rc = dlq_get(cli, name, *id, e)))
		return rc;
	*blocker = 0;
	*behind = record_queue(cli, name, *e, blocker);
	if (*behind < 0) {
		json_decref(*e);
		return CLI_EXIT_FAILED;
	}
	return CLI_EXIT_OK;
}

static int dlq_retry(struct cli *cli, char **args, int nargs)
{
	uint64_t id, blocker;
	char name[ADAPTER_NAME_MAX + 1];
	json_t *e;
	long behind;
	int rc = dlq_entry_for(cli, "retry", args, nargs, name, &id, &e,
			       &behind, &blocker);
	if (rc)
		return rc;
	if (strcmp(member_str(e, "state"), "blocked") == 0) {
		/* Order per record: a later change must not overtake the
		 * failed one it waits behind. */
		uint64_t by = member_u64(e, "blocked_by");
		if (!by)
			by = blocker;
		char hint[256];
		snprintf(hint, sizeof(hint),
			 "retry that one (`ferry adapter dlq retry %s "
			 "%" PRIu64 "`): the entries behind it follow in "
			 "order",
			 name, by);
		json_decref(e);
		return cli_fail_msg(hint,
				    "dead letter %" PRIu64 " of %s is blocked: "
				    "it waits behind dead letter %" PRIu64
				    " (of the same record, or of a record it "
				    "refers to)",
				    id, name, by);
	}
	char table[ADAPTER_TABLE_BYTES], key[ADAPTER_DLQ_KEY_BYTES];
	adapter_table(table, name, ".dlq");
	adapter_dlq_key(key, id);
	ferry_err err = json_object_set_new(e, "retry", json_true())
				? FERRY_E_NOMEM
				: kvjson_put(cli->node, table, key, e);
	char *rec = record_text(e);
	if (err) {
		rc = cli_fail(cli, err, NULL,
			      "cannot mark dead letter %" PRIu64 " of %s for "
			      "retry",
			      id, name);
	} else if (cli->json) {
		rc = cli_print_json(json_pack("{s:s, s:I, s:b, s:I}", "adapter",
					      name, "id", (json_int_t)id,
					      "retry", 1, "waiting",
					      (json_int_t)behind));
	} else {
		printf("dead letter %" PRIu64 " of %s (%s %s) marked for "
		       "retry: the serving process will send it again within "
		       "a second",
		       id, name, member_str(e, "op"), rec ? rec : "?");
		if (behind)
			printf(", then the %ld waiting behind it, in order",
			       behind);
		printf("; `ferry adapter status %s` shows the result\n", name);
	}
	free(rec);
	json_decref(e);
	return rc;
}

static int dlq_drop(struct cli *cli, char **args, int nargs)
{
	uint64_t id, blocker;
	char name[ADAPTER_NAME_MAX + 1];
	json_t *e;
	long behind;
	int rc = dlq_entry_for(cli, "drop", args, nargs, name, &id, &e, &behind,
			       &blocker);
	if (rc)
		return rc;
	int blocked = strcmp(member_str(e, "state"), "blocked") == 0;
	char table[ADAPTER_TABLE_BYTES], key[ADAPTER_DLQ_KEY_BYTES];
	adapter_table(table, name, ".dlq");
	adapter_dlq_key(key, id);
	ferry_err err = ferry_kv_delete(cli->node, table, key);
	char *rec = record_text(e);
	if (err == FERRY_E_NOT_FOUND) {
		/* Retried and delivered meanwhile. */
		rc = cli_fail_msg("see `ferry adapter status`: the serving "
				  "process may have delivered it just now",
				  "dead letter %" PRIu64 " of %s went away "
				  "before it could be dropped",
				  id, name);
	} else if (err) {
		rc = cli_fail(cli, err, NULL,
			      "cannot drop dead letter %" PRIu64 " of %s", id,
			      name);
	} else if (cli->json) {
		rc = cli_print_json(
			json_pack("{s:s, s:I, s:b, s:I}", "adapter", name, "id",
				  (json_int_t)id, "dropped", 1, "released",
				  (json_int_t)(blocked ? 0 : behind)));
	} else {
		printf("dropped dead letter %" PRIu64 " of %s (%s %s): that "
		       "change will not be sent",
		       id, name, member_str(e, "op"), rec ? rec : "?");
		if (!blocked && behind)
			printf("; the %ld later change%s of the same record "
			       "waiting behind it now go%s ahead",
			       behind, behind == 1 ? "" : "s",
			       behind == 1 ? "es" : "");
		else if (!blocked)
			printf("; later changes of the same record now go "
			       "ahead");
		printf("\n");
	}
	free(rec);
	json_decref(e);
	return rc;
}

static int adapter_dlq(struct cli *cli, char **args, int nargs)
{
	if (nargs < 1)
		return cli_usage(cli, "dlq needs ls, retry or drop");
	if (strcmp(args[0], "ls") == 0)
		return dlq_ls(cli, args + 1, nargs - 1);
	if (strcmp(args[0], "retry") == 0)
		return dlq_retry(cli, args + 1, nargs - 1);
	if (strcmp(args[0], "drop") == 0)
		return dlq_drop(cli, args + 1, nargs - 1);
	return cli_usage(cli, "unknown dlq subcommand '%s' (ls, retry or drop)",
			 args[0]);
}

/* ------------------------------------------------------------------------ */
/* reload                                                                   */
/* ------------------------------------------------------------------------ */

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Has the serving process answered a reload requested at `requested`,
 * given the "running" entry before the request and now? It loads the file
 * (a newer "loaded") or records why it could not: a changed entry, or any
 * time in it from after the request (the same error again). */
static int reload_answered(const json_t *before, const json_t *now,
			   uint64_t requested)
{
	if (!now)
		return 0;
	if (!before || !json_equal((json_t *)before, (json_t *)now))
		return 1;
	const char *member;
	const json_t *value;
	json_object_foreach((json_t *)now, member, value)
	{
		if (json_is_integer(value) &&
		    (uint64_t)json_integer_value(value) >= requested)
			return 1;
	}
	return 0;
}

static int adapter_reload(struct cli *cli, int nargs, uint64_t wait_ms)
{
	if (nargs != 0)
		return cli_usage(cli, "reload takes no arguments");
	int rc = cli_open(cli, 0);
	if (rc)
		return rc;
	json_t *before, *after = NULL;
	if ((rc = control_get(cli, "running", &before)))
		return rc;
	uint64_t requested = ferry_node_now_ms(cli->node);
	json_t *req = json_pack("{s:I}", "requested", (json_int_t)requested);
	ferry_err err =
		kvjson_put(cli->node, ADAPTER_CONTROL_TABLE, "reload", req);
	json_decref(req);
	if (err) {
		json_decref(before);
		return cli_fail(cli, err, NULL, "cannot request a reload");
	}
	/* The serving process notices the control table's generation
	 * change within a poll of its own; give it `wait_ms`. */
	for (uint64_t waited = 0;; waited += RELOAD_POLL_MS) {
		if ((rc = control_get(cli, "running", &after)))
			goto out;
		if (reload_answered(before, after, requested) ||
		    waited >= wait_ms)
			break;
		json_decref(after);
		after = NULL;
		sleep_ms(RELOAD_POLL_MS);
	}
	const char *path = member_str(after, "path");
	const char *error = member_str(after, "error");
	if (!reload_answered(before, after, requested) && *error) {
		/* The running entry says when the file was last loaded, not
		 * when a reload last failed: the same failure again leaves
		 * it as it was. */
		rc = cli_fail_msg("fix the file (`ferry adapter check` says "
				  "what is wrong), then reload again; if "
				  "`ferry serve` is not running, start it with "
				  "`ferry serve --adapters FILE`",
				  "no answer within %.1f s; the last reload "
				  "failed with: %s",
				  (double)wait_ms / 1000, error);
	} else if (!reload_answered(before, after, requested)) {
		rc = cli_fail_msg("`ferry serve` may not be running with "
				  "adapters on this data directory: start it "
				  "with `ferry serve --adapters FILE` (it "
				  "reads the file when it starts)",
				  "no serving process answered the reload "
				  "request within %.1f s",
				  (double)wait_ms / 1000);
	} else if (*error) {
		char hint[1024];
		snprintf(hint, sizeof(hint),
			 "fix the file (`ferry adapter check%s%s` says the "
			 "same), then reload again; the configuration loaded "
			 "before stays in force",
			 *path ? " " : "", path);
		if (cli->json)
			cli_print_json(json_pack("{s:b, s:s, s:s}", "reloaded",
						 0, "path", path, "error",
						 error));
		rc = cli_fail_msg(
			hint, "the serving process did not reload: %s", error);
	} else if (cli->json) {
		rc = cli_print_json(json_pack(
			"{s:b, s:s, s:I}", "reloaded", 1, "path", path,
			"loaded", (json_int_t)member_ms(after, "loaded")));
	} else {
		printf("reloaded %s: the serving process runs the new "
		       "configuration (`ferry adapter status` shows it)\n",
		       *path ? path : "the adapters' configuration");
	}
out:
	json_decref(before);
	json_decref(after);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* check                                                                    */
/* ------------------------------------------------------------------------ */

/* adapter_config_each_secret() callback: {"secret", "path"} appended to
 * the array `arg`; a NULL element marks "out of memory". */
static void collect_secret(const char *secret, const char *path, void *arg)
{
	json_t *item = json_pack("{s:s, s:s}", "secret", secret, "path", path);
	if (!item || json_array_append_new(arg, item))
		json_array_append_new(arg, json_null());
}

/* Is secret.key in the data directory? Without it no secret was ever
 * stored, so secret_get's FERRY_E_KEY_FILE means "not stored". */
static int has_secret_key(struct cli *cli)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/secret.key",
		 ferry_node_dir(cli->node));
	return access(path, F_OK) == 0;
}

/* Look up every secret in `secrets` (named in `file`), setting "stored"
 * on each; report the missing and unreadable ones, by the member that
 * names them. Returns the number of problems. */
static int check_secrets(struct cli *cli, const char *file, json_t *secrets)
{
	int problems = 0, have_key = has_secret_key(cli);
	size_t i;
	json_t *item;
	json_array_foreach(secrets, i, item)
	{
		const char *name = member_str(item, "secret");
		const char *path = member_str(item, "path");
		char *value = NULL;
		size_t len = 0;
		ferry_err err = secret_get(&value, &len, cli->node, name);
		secret_free(value, len);
		int missing = err == FERRY_E_NOT_FOUND ||
			      (err == FERRY_E_KEY_FILE && !have_key);
		json_object_set_new(item, "stored", json_boolean(!err));
		if (!err)
			continue;
		problems++;
		char hint[256];
		if (missing) {
			snprintf(hint, sizeof(hint),
				 "store it with `ferry secret set %s` (the "
				 "value is read from stdin)",
				 name);
			cli_fail_msg(hint, "%s: %s: secret %s is not stored",
				     file, path, name);
		} else if (err == FERRY_E_KEY_FILE) {
			cli_fail(cli, err,
				 "secret.key in the data directory must be a "
				 "32-byte file readable by its owner only "
				 "(chmod 600)",
				 "%s: %s: cannot read secret %s", file, path,
				 name);
		} else {
			snprintf(hint, sizeof(hint),
				 "store it again with `ferry secret set %s`",
				 name);
			cli_fail(cli, err, hint,
				 "%s: %s: cannot read secret %s", file, path,
				 name);
		}
	}
	return problems;
}

/* What the configuration does, per adapter. */
static json_t *config_json(const adapter_config *cfg)
{
	json_t *list = json_array();
	for (size_t i = 0; list && i < cfg->n; i++) {
		const adapter_def *d = &cfg->adapters[i];
		json_t *push = json_null(), *pulls = json_array();
		if (d->push) {
			json_t *cols = json_array();
			for (size_t j = 0; cols && j < d->push->ncollections;
			     j++)
				if (json_array_append_new(
					    cols,
					    json_string(d->push->collections[j]
								.name))) {
					json_decref(cols);
					cols = NULL;
				}
			push = json_pack("{s:o, s:o}", "scopes",
					 grant_to_json(&d->push->scopes),
					 "collections", cols);
		}
		for (size_t j = 0; pulls && j < d->npulls; j++)
			if (json_array_append_new(
				    pulls,
				    json_pack(
					    "{s:s, s:I}", "name",
					    d->pulls[j].name, "every_s",
					    (json_int_t)d->pulls[j].every_s))) {
				json_decref(pulls);
				pulls = NULL;
			}
		const char *hook = !d->webhook		 ? NULL
				   : d->webhook->api_key ? "api_key"
							 : "hmac";
		json_t *item = json_pack("{s:s, s:o, s:o, s:s?}", "name",
					 d->name, "push", push, "pulls", pulls,
					 "webhook", hook);
		if (!item || json_array_append_new(list, item)) {
			json_decref(list);
			list = NULL;
		}
	}
	return list;
}

static void print_config(const char *path, const json_t *adapters)
{
	size_t i, n = json_array_size(adapters);
	const json_t *a;
	printf("%s: %zu adapter%s, every secret it names is stored\n", path, n,
	       n == 1 ? "" : "s");
	json_array_foreach(adapters, i, a)
	{
		const json_t *push = json_object_get(a, "push");
		const json_t *pulls = json_object_get(a, "pulls");
		size_t j;
		const json_t *x;
		printf("  %s\n", member_str(a, "name"));
		if (json_is_object(push)) {
			char *scopes = cli_patterns_text(
				json_object_get(push, "scopes"));
			printf("    push     ");
			json_array_foreach(json_object_get(push, "collections"),
					   j, x)
			{
				printf("%s%s", j ? ", " : "",
				       json_string_value(x));
			}
			printf(" (scopes %s)\n", scopes ? scopes : "?");
			free(scopes);
		}
		json_array_foreach(pulls, j, x)
		{
			printf("    pull     %s every %" PRIu64 " s\n",
			       member_str(x, "name"), member_u64(x, "every_s"));
		}
		if (*member_str(a, "webhook"))
			printf("    webhook  POST /hooks/%s (%s)\n",
			       member_str(a, "name"),
			       strcmp(member_str(a, "webhook"), "hmac") == 0
				       ? "HMAC signature"
				       : "API key");
	}
}

static int adapter_check(struct cli *cli, char **args, int nargs)
{
	if (nargs > 1)
		return cli_usage(cli, "check takes at most one FILE");
	int rc = CLI_EXIT_OK;
	char *path = NULL;
	const char *hint = "fix the file and run `ferry adapter check FILE` "
			   "again (docs/adapters.md describes it)";
	if (nargs) {
		path = strdup(args[0]);
	} else {
		/* What the serving process runs, else what it would start
		 * with. */
		json_t *running;
		if ((rc = cli_open(cli, 0)) ||
		    (rc = control_get(cli, "running", &running)))
			return rc;
		const char *p = member_str(running, "path");
		size_t len = *p ? strlen(p) + 1
				: strlen(cli->dir) + sizeof("/adapters.json");
		if ((path = malloc(len))) {
			if (*p)
				snprintf(path, len, "%s", p);
			else
				snprintf(path, len, "%s/adapters.json",
					 cli->dir);
		}
		json_decref(running);
	}
	if (!path)
		return cli_print_json(NULL);

	/* 1. The file itself: no node needed. */
	adapter_config *cfg = NULL;
	json_t *secrets = NULL;
	char why[1024] = "";
	ferry_err err = adapter_config_load(&cfg, path, why, sizeof(why));
	if (err) {
		if (access(path, F_OK) != 0)
			hint = "check the path; pass FILE, or put "
			       "adapters.json in the data directory";
		rc = *why ? cli_fail_msg(hint, "%s", why)
			  : cli_fail_msg(hint, "%s: %s", path,
					 ferry_strerror(err));
		goto out;
	}
	/* 2. The secrets it names, in this node's store. */
	if (!cli->node && (rc = cli_open(cli, 0)))
		goto out;
	if (!(secrets = json_array())) {
		rc = cli_print_json(NULL);
		goto out;
	}
	adapter_config_each_secret(cfg, collect_secret, secrets);
	size_t i;
	const json_t *item;
	json_array_foreach(secrets, i, item)
	{
		if (json_is_null(item)) {
			rc = cli_print_json(NULL);
			goto out;
		}
	}
	int problems = check_secrets(cli, path, secrets);
	/* 3. What it would do. */
	json_t *adapters = config_json(cfg);
	if (cli->json) {
		rc = cli_print_json(json_pack("{s:s, s:b, s:o, s:O}", "file",
					      path, "ok", problems == 0,
					      "adapters", adapters, "secrets",
					      secrets));
	} else if (!adapters) {
		rc = cli_print_json(NULL);
	} else if (problems == 0) {
		print_config(path, adapters);
	}
	if (!cli->json)
		json_decref(adapters);
	if (!rc && problems)
		rc = CLI_EXIT_FAILED;
out:
	json_decref(secrets);
	adapter_config_free(cfg);
	free(path);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* the command                                                              */
/* ------------------------------------------------------------------------ */

int cmd_adapter(struct cli *cli, int argc, char **argv)
{
	static const struct option options[] = {
		{"wait-ms", required_argument, NULL, 'w'},
		CLI_COMMON_OPTIONS,
	};
	uint64_t wait_ms = RELOAD_WAIT_MS;
	int wait_given = 0;
	/* --wait-ms is the only option of our own. */
	while (cli_next_option(cli, argc, argv, "", options) != -1) {
		int rc = cli_parse_u64(cli, "--wait-ms", optarg, &wait_ms);
		if (rc)
			return rc;
		wait_given = 1;
	}
	if (optind >= argc)
		return cli_usage(cli, "needs a subcommand: status, dlq, reload "
				      "or check");
	const char *sub = argv[optind];
	char **args = argv + optind + 1;
	int nargs = argc - optind - 1;
	if (strcmp(sub, "reload") == 0)
		return adapter_reload(cli, nargs, wait_ms);
	if (wait_given)
		return cli_usage(cli, "--wait-ms belongs to `adapter reload`");
	if (strcmp(sub, "status") == 0)
		return adapter_status(cli, args, nargs);
	if (strcmp(sub, "dlq") == 0)
		return adapter_dlq(cli, args, nargs);
	if (strcmp(sub, "check") == 0)
		return adapter_check(cli, args, nargs);
	return cli_usage(cli,
			 "unknown subcommand '%s' (status, dlq, reload or "
			 "check)",
			 sub);
}
