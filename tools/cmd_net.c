/*
 * cmd_net.c — the node's peer settings and what it knows of its peers:
 * `trust` (which peers may connect, and what each may read and write),
 * `peer` (the URLs this node dials) and the peers part of `status`.
 *
 * These commands only edit the node's kv tables (net/trust.h). A running
 * node on the same directory notices the change through the kv generation,
 * so nothing needs restarting.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "ferry_net.h"
#include "trust.h"

/* A status record this much older than now, still saying "online", was
 * left by a process that died: a running node refreshes it far more
 * often. */

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* {"id", "name", "read": [...], "write": [...], "added_ms"}. */
static json_t *entry_json(const trust_entry *e)
{
	char id[FERRY_ID_HEX_BYTES];
	ferry_id_to_hex(id, e->id);
	return json_pack("{s:s, s:s, s:o, s:o, s:I}", "id", id, "name", e->name,
			 "read", grant_to_json(&e->read), "write",
			 grant_to_json(&e->write), "added_ms",
			 (json_int_t)e->added_ms);
}

/* ------------------------------------------------------------------------ */
/* trust                                                                    */
/* ------------------------------------------------------------------------ */

/* trust_list() callback: append each entry's JSON to the array `payload`
 * (a NULL element marks "out of memory"). */
static int collect_entry(const trust_entry *e, void *payload)
{
	json_t *item = entry_json(e);
	if (!item) {
		json_array_append_new(payload, json_null());
		return 1;
	}
	return json_array_append_new(payload, item) != 0;
}

/* The whole trust list as a JSON array (reported on failure: NULL). */
static json_t *trust_entries(struct cli *cli)
{
	json_t *list = json_array();
	if (!list) {
		cli_print_json(NULL);
		return NULL;
	}
	ferry_err err = trust_list(cli->node, collect_entry, list);
	if (err) {
		json_decref(list);
		cli_fail(cli, err,
			 err == FERRY_E_CORRUPT
				 ? "a trust entry is damaged; fix or remove it "
				   "with `ferry trust rm PUBKEY`"
				 : NULL,
			 "cannot read the trust list");
		return NULL;
	}
	size_t i;
	json_t *item;
	json_array_foreach(list, i, item)
	{
		if (json_is_null(item)) {
			json_decref(list);
			cli_print_json(NULL);
			return NULL;
		}
	}
	return list;
}

/* A peer name: what `status` and `trust ls` show and `trust rm` accepts. */
static int check_name(struct cli *cli, const char *name)
{
	int rc = cli_check_name(cli, name, TRUST_MAX_NAME_BYTES);
	if (rc)
		return rc;
	uint8_t id[FERRY_PUBLIC_KEY_BYTES];
	if (ferry_id_from_hex(id, name) == FERRY_OK)
		return cli_usage(cli, "--name must not look like a public key "
				      "(`trust rm` takes either)");
	return CLI_EXIT_OK;
}

static int parse_grant(struct cli *cli, const char *option, const char *csv,
		       grant *out)
{
	char err[256];
	ferry_err rc = grant_parse(out, csv, err, sizeof(err));
	if (rc)
		return cli_usage(cli, "%s: %s", option, err);
	return CLI_EXIT_OK;
}

static void print_entry_line(const char *verb, const json_t *entry)
{
	char *read = cli_patterns_text(json_object_get(entry, "read"));
	char *write = cli_patterns_text(json_object_get(entry, "write"));
	printf("%s %s (%.8s): read %s  write %s\n", verb,
	       json_string_value(json_object_get(entry, "name")),
	       json_string_value(json_object_get(entry, "id")),
	       read ? read : "?", write ? write : "?");
	free(read);
	free(write);
}

static int trust_add(struct cli *cli, char **args, int nargs, const char *name,
		     const char *read, const char *write)
{
	if (nargs != 1)
		return cli_usage(cli, "add takes one PUBKEY");
	trust_entry e = {0};
	if (ferry_id_from_hex(e.id, args[0]) != FERRY_OK)
		return cli_usage(cli,
				 "PUBKEY must be the peer's id, 64 hex digits "
				 "(run `ferry id` on the peer), not '%s'",
				 args[0]);
	if (!name)
		return cli_usage(cli, "--name NAME is required");
	int rc = check_name(cli, name);
	if (rc)
		return rc;
	snprintf(e.name, sizeof(e.name), "%s", name);
	rc = parse_grant(cli, "--read", read, &e.read);
	if (!rc)
		rc = parse_grant(cli, "--write", write, &e.write);
	if (!rc)
		rc = cli_open(cli, 0);
	if (rc) {
		trust_entry_clear(&e);
		return rc;
	}
	char hex[FERRY_ID_HEX_BYTES];
	ferry_id_to_hex(hex, e.id);
	if (memcmp(e.id, ferry_node_id(cli->node), sizeof(e.id)) == 0) {
		trust_entry_clear(&e);
		return cli_fail_msg("run `ferry id` on the peer and trust that "
				    "key",
				    "%.8s is this node's own id", hex);
	}

	/* Names pick peers out in `status` and `trust rm`: keep them
	 * unique. */
	json_t *entries = trust_entries(cli);
	if (!entries) {
		trust_entry_clear(&e);
		return CLI_EXIT_FAILED;
	}
	size_t i;
	const json_t *item;
	int updated = 0;
	json_array_foreach(entries, i, item)
	{
		const char *id = json_string_value(json_object_get(item, "id"));
		const char *other =
			json_string_value(json_object_get(item, "name"));
		if (strcmp(id, hex) == 0) {
			updated = 1;
			/* Keep when the peer was first trusted. */
			e.added_ms = (uint64_t)json_integer_value(
				json_object_get(item, "added_ms"));
		} else if (strcmp(other, name) == 0) {
			char hint[128 + TRUST_MAX_NAME_BYTES];
			snprintf(hint, sizeof(hint),
				 "choose another --name, or remove the other "
				 "peer first (`ferry trust rm %s`)",
				 name);
			rc = cli_fail_msg(hint,
					  "the name %s is already used by peer "
					  "%.8s",
					  name, id);
			break;
		}
	}
	json_decref(entries);
	if (rc) {
		trust_entry_clear(&e);
		return rc;
	}

	ferry_err err = trust_put(cli->node, &e);
	json_t *doc = err ? NULL : entry_json(&e);
	int empty = e.read.n == 0 && e.write.n == 0;
	trust_entry_clear(&e);
	if (err)
		return cli_fail(cli, err, NULL, "cannot save the trust entry");
	if (empty)
		fprintf(stderr,
			"warning: %s can neither read nor write any scope, so "
			"a connection with it carries nothing\n"
			"hint: pass --read and/or --write, e.g. --read "
			"'clinic-7,clinic-7/*' --write clinic-7\n",
			name);
	if (!doc)
		return cli_print_json(NULL);
	if (cli->json) {
		json_object_set_new(doc, "updated", json_boolean(updated));
		return cli_print_json(doc);
	}
	print_entry_line(updated ? "updated" : "added", doc);
	json_decref(doc);
	return CLI_EXIT_OK;
}

static int trust_ls(struct cli *cli, int nargs)
{
	if (nargs != 0)
		return cli_usage(cli, "ls takes no arguments");
	int rc = cli_open(cli, 0);
	if (rc)
		return rc;
	json_t *entries = trust_entries(cli);
	if (!entries)
		return CLI_EXIT_FAILED;
	size_t i, n = json_array_size(entries);
	json_t *item;
	if (cli->json)
		return cli_print_json_lines(entries);
	if (n == 0) {
		printf("no trusted peers (add one with `ferry trust add "
		       "PUBKEY --name NAME --read SCOPES --write SCOPES`)\n");
		json_decref(entries);
		return CLI_EXIT_OK;
	}
	struct cli_grant_table t;
	if (cli_grant_table_build(&t, entries) == 0) {
		printf("%-*s  %-8s  %-*s  %s\n", t.name_w, "NAME", "ID",
		       t.read_w, "READ", "WRITE");
		json_array_foreach(entries, i, item)
		{
			printf("%-*s  %.8s  %-*s  %s\n", t.name_w,
			       json_string_value(json_object_get(item, "name")),
			       json_string_value(json_object_get(item, "id")),
			       t.read_w, t.reads[i], t.writes[i]);
		}
	} else {
		rc = cli_print_json(NULL);
	}
	cli_grant_table_free(&t);
	json_decref(entries);
	return rc;
}

static int trust_rm(struct cli *cli, char **args, int nargs)
{
	if (nargs != 1)
		return cli_usage(cli, "rm takes one PUBKEY or NAME");
	int rc = cli_open(cli, 0);
	if (rc)
		return rc;
	json_t *entries = trust_entries(cli);
	if (!entries)
		return CLI_EXIT_FAILED;
	/* A 64-hex-digit argument is a key (names may not look like one);
	 * anything else is a name. */
	uint8_t want[FERRY_PUBLIC_KEY_BYTES];
	char want_hex[FERRY_ID_HEX_BYTES] = "";
	if (ferry_id_from_hex(want, args[0]) == FERRY_OK)
		ferry_id_to_hex(want_hex, want);
	size_t i, matches = 0;
	const json_t *item, *found = NULL;
	json_array_foreach(entries, i, item)
	{
		const char *id = json_string_value(json_object_get(item, "id"));
		const char *name =
			json_string_value(json_object_get(item, "name"));
		if (*want_hex ? strcmp(id, want_hex) == 0
			      : strcmp(name, args[0]) == 0) {
			found = item;
			matches++;
		}
	}
	if (matches != 1) {
		rc = cli_fail_msg(matches ? "remove it by PUBKEY (see `ferry "
					    "trust ls --json`)"
					  : "see `ferry trust ls`",
				  matches ? "more than one trusted peer is "
					    "named %s"
					  : "no trusted peer %s",
				  args[0]);
		json_decref(entries);
		return rc;
	}
	uint8_t id[FERRY_PUBLIC_KEY_BYTES];
	ferry_id_from_hex(id, json_string_value(json_object_get(found, "id")));
	ferry_err err = trust_delete(cli->node, id);
	if (err) {
		json_decref(entries);
		return cli_fail(cli, err, NULL, "cannot remove %s", args[0]);
	}
	if (cli->json)
		rc = cli_print_json(json_pack(
			"{s:O, s:O, s:b}", "id", json_object_get(found, "id"),
			"name", json_object_get(found, "name"), "removed", 1));
	else
		printf("removed %s (%.8s) from the trust list\n",
		       json_string_value(json_object_get(found, "name")),
		       json_string_value(json_object_get(found, "id")));
	json_decref(entries);
	return rc;
}

int cmd_trust(struct cli *cli, int argc, char **argv)
{
	const char *name = NULL, *read = NULL, *write = NULL;
	cli_grant_options(cli, argc, argv, &name, &read, &write);
	if (optind >= argc)
		return cli_usage(cli, "needs a subcommand: add, ls or rm");
	const char *sub = argv[optind];
	char **args = argv + optind + 1;
	int nargs = argc - optind - 1;
	if (strcmp(sub, "add") == 0)
		return trust_add(cli, args, nargs, name, read, write);
	if (name || read || write)
		return cli_usage(cli, "--name, --read and --write belong to "
				      "`trust add`");
	if (strcmp(sub, "ls") == 0)
		return trust_ls(cli, nargs);
	if (strcmp(sub, "rm") == 0)
		return trust_rm(cli, args, nargs);
	return cli_usage(cli, "unknown subcommand '%s' (add, ls or rm)", sub);
}

/* ------------------------------------------------------------------------ */
/* peer                                                                     */
/* ------------------------------------------------------------------------ */

/* peers_list() callback: append the URL to the JSON array `payload`. */
static int collect_url(const char *url, void *payload)
{
	return json_array_append_new(payload, json_string(url)) != 0;
}

/* The configured peer URLs as a JSON array (reported on failure: NULL). */
static json_t *peer_urls(struct cli *cli)
{
	json_t *urls = json_array();
	if (!urls) {
		cli_print_json(NULL);
		return NULL;
	}
	ferry_err err = peers_list(cli->node, collect_url, urls);
	if (err) {
		json_decref(urls);
		cli_fail(cli, err, NULL, "cannot read the peer list");
		return NULL;
	}
	return urls;
}

static int has_url(const json_t *urls, const char *url)
{
	size_t i;
	const json_t *item;
	json_array_foreach(urls, i, item)
	{
		if (strcmp(json_string_value(item), url) == 0)
			return 1;
	}
	return 0;
}

static int peer_add(struct cli *cli, char **args, int nargs)
{
	if (nargs != 1)
		return cli_usage(cli, "add takes one URL");
	const char *url = args[0];
	int rc = cli_open(cli, 0);
	if (rc)
		return rc;
	json_t *urls = peer_urls(cli);
	if (!urls)
		return CLI_EXIT_FAILED;
	int existed = has_url(urls, url);
	json_decref(urls);
	ferry_err err = peers_add(cli->node, url);
	if (err == FERRY_E_INVALID)
		return cli_usage(cli,
				 "'%s' is not a peer URL: it must start with "
				 "ws:// or wss://, name a host, contain no "
				 "spaces and be at most %d bytes",
				 url, TRUST_MAX_URL_BYTES);
	if (err)
		return cli_fail(cli, err, NULL, "cannot add peer %s", url);
	if (cli->json)
		return cli_print_json(
			json_pack("{s:s, s:b}", "url", url, "added", !existed));
	if (existed)
		printf("peer %s is already in the list\n", url);
	else
		printf("added peer %s\n", url);
	return CLI_EXIT_OK;
}

static int peer_ls(struct cli *cli, int nargs)
{
	if (nargs != 0)
		return cli_usage(cli, "ls takes no arguments");
	int rc = cli_open(cli, 0);
	if (rc)
		return rc;
	json_t *urls = peer_urls(cli);
	if (!urls)
		return CLI_EXIT_FAILED;
	size_t i;
	json_t *item;
	json_array_foreach(urls, i, item)
	{
		if (cli->json)
			rc = cli_print_json_line(
				json_pack("{s:O}", "url", item));
		else
			printf("%s\n", json_string_value(item));
		if (rc)
			break;
	}
	json_decref(urls);
	return rc;
}

static int peer_rm(struct cli *cli, char **args, int nargs)
{
	if (nargs != 1)
		return cli_usage(cli, "rm takes one URL");
	const char *url = args[0];
	int rc = cli_open(cli, 0);
	if (rc)
		return rc;
	ferry_err err = peers_remove(cli->node, url);
	if (err == FERRY_E_NOT_FOUND || err == FERRY_E_INVALID)
		return cli_fail_msg("see `ferry peer ls`; the URL must match "
				    "exactly",
				    "%s is not in the peer list", url);
	if (err)
		return cli_fail(cli, err, NULL, "cannot remove peer %s", url);
	if (cli->json)
		return cli_print_json(
			json_pack("{s:s, s:b}", "url", url, "removed", 1));
	printf("removed peer %s\n", url);
	return CLI_EXIT_OK;
}

int cmd_peer(struct cli *cli, int argc, char **argv)
{
	int first = cli_operands(cli, argc, argv);
	if (first >= argc)
		return cli_usage(cli, "needs a subcommand: add, ls or rm");
	const char *sub = argv[first];
	char **args = argv + first + 1;
	int nargs = argc - first - 1;
	if (strcmp(sub, "add") == 0)
		return peer_add(cli, args, nargs);
	if (strcmp(sub, "ls") == 0)
		return peer_ls(cli, nargs);
	if (strcmp(sub, "rm") == 0)
		return peer_rm(cli, args, nargs);
	return cli_usage(cli, "unknown subcommand '%s' (add, ls or rm)", sub);
}

/* ------------------------------------------------------------------------ */
/* status: the peers                                                        */
/* ------------------------------------------------------------------------ */

/* What `status` gathers before it builds the peers array. The tables are
 * read one after another, never from inside another table's scan. */
struct peers_view {
	json_t *names; /* id hex -> trusted name */
	json_t *urls;  /* configured URLs */
	json_t *peers; /* the "peers" array being built */
	uint64_t now;
	int nomem;
};

static int collect_name(const trust_entry *e, void *payload)
{
	char id[FERRY_ID_HEX_BYTES];
	ferry_id_to_hex(id, e->id);
	return json_object_set_new(payload, id, json_string(e->name)) != 0;
}

static const char *status_state(const peer_status *st, uint64_t now)
{
	if (!st->online)
		return "offline";
	if (now > st->updated_ms && now - st->updated_ms > FERRY_NET_STALE_MS)
		return "stale";
	return "online";
}

static int collect_status(const peer_status *st, void *payload)
{
	struct peers_view *v = payload;
	/* A "url:" record stands for a dialed peer not reached yet; once the
	 * URL is no longer dialed it means nothing. */
	if (!st->has_id && strncmp(st->key, "url:", 4) == 0 &&
	    !has_url(v->urls, st->key + 4))
		return 0;
	char id[FERRY_ID_HEX_BYTES] = "";
	if (st->has_id)
		ferry_id_to_hex(id, st->id);
	const json_t *trusted =
		st->has_id ? json_object_get(v->names, id) : NULL;
	const char *name = st->name[0] ? st->name
			   : trusted   ? json_string_value(trusted)
				       : "";
	json_t *item = json_pack(
		"{s:s, s:s?, s:s, s:s?, s:b, s:b, s:s, s:I, s:I, s:I, s:I, "
		"s:I, s:I, s:I, s:I, s:I, s:s, s:s, s:I}",
		"key", st->key, "id", st->has_id ? id : NULL, "name", name,
		"url", st->url[0] ? st->url : NULL, "trusted", trusted != NULL,
		"online", st->online, "state", status_state(st, v->now),
		"updated_ms", (json_int_t)st->updated_ms, "connected_ms",
		(json_int_t)st->connected_ms, "last_sync_ms",
		(json_int_t)st->last_sync_ms, "pending_send",
		(json_int_t)st->pending_send, "pending_recv",
		(json_int_t)st->pending_recv, "sent", (json_int_t)st->sent,
		"received", (json_int_t)st->received, "refused_in",
		(json_int_t)st->refused_in, "refused_out",
		(json_int_t)st->refused_out, "last_refusal", st->last_refusal,
		"last_error", st->last_error, "last_error_ms",
		(json_int_t)st->last_error_ms);
	if (!item || json_array_append_new(v->peers, item)) {
		v->nomem = 1;
		return 1;
	}
	return 0;
}

/* Is URL accounted for by some status record already? */
static int url_has_status(const json_t *peers, const char *url)
{
	size_t i;
	const json_t *item;
	json_array_foreach(peers, i, item)
	{
		const char *u = json_string_value(json_object_get(item, "url"));
		const char *key =
			json_string_value(json_object_get(item, "key"));
		if ((u && strcmp(u, url) == 0) ||
		    (strncmp(key, "url:", 4) == 0 && strcmp(key + 4, url) == 0))
			return 1;
	}
	return 0;
}

int cli_net_status_json(struct cli *cli, json_t *doc)
{
	struct peers_view v = {
		.names = json_object(),
		.peers = json_array(),
		.now = now_ms(),
	};
	int rc = CLI_EXIT_OK;
	ferry_err err = FERRY_OK;
	if (!v.names || !v.peers) {
		rc = cli_print_json(NULL);
		goto out;
	}
	err = trust_list(cli->node, collect_name, v.names);
	if (err) {
		rc = cli_fail(cli, err, NULL, "cannot read the trust list");
		goto out;
	}
	v.urls = peer_urls(cli);
	if (!v.urls) {
		rc = CLI_EXIT_FAILED;
		goto out;
	}
	err = peer_status_list(cli->node, collect_status, &v);
	if (err) {
		rc = cli_fail(cli, err, NULL, "cannot read the peer status");
		goto out;
	}
	/* Peers to dial that no running node has written anything about
	 * yet (none is running, or it just started). */
	size_t i;
	const json_t *url;
	json_array_foreach(v.urls, i, url)
	{
		if (v.nomem || url_has_status(v.peers, json_string_value(url)))
			continue;
		char key[TRUST_MAX_URL_BYTES + 8];
		peer_status_key_url(key, sizeof(key), json_string_value(url));
		json_t *item =
			json_pack("{s:s, s:n, s:s, s:O, s:b, s:b, s:s}", "key",
				  key, "id", "name", "", "url", url, "trusted",
				  0, "online", 0, "state", "unknown");
		if (!item || json_array_append_new(v.peers, item))
			v.nomem = 1;
	}
	if (v.nomem) {
		rc = cli_print_json(NULL);
		goto out;
	}
	if (json_object_set(doc, "peers", v.peers))
		rc = cli_print_json(NULL);
out:
	json_decref(v.names);
	json_decref(v.urls);
	json_decref(v.peers);
	return rc;
}

static uint64_t member_u64(const json_t *obj, const char *name)
{
	return (uint64_t)json_integer_value(json_object_get(obj, name));
}

static const char *member_str(const json_t *obj, const char *name)
{
	const char *s = json_string_value(json_object_get(obj, name));
	return s ? s : "";
}

static void print_peer(const json_t *p, uint64_t now)
{
	const char *id = member_str(p, "id");
	const char *name = member_str(p, "name");
	const char *url = member_str(p, "url");
	const char *state = member_str(p, "state");
	char who[TRUST_MAX_NAME_BYTES + 32];
	if (*id && *name)
		snprintf(who, sizeof(who), "%s (%.8s)", name, id);
	else if (*id)
		snprintf(who, sizeof(who), "%.8s", id);
	else
		snprintf(who, sizeof(who), "(id not known yet)");
	const char *shown = strcmp(state, "stale") == 0 ? "offline (stale)"
			    : strcmp(state, "unknown") == 0
				    ? "no status yet (is the node running?)"
				    : state;
	char since[48] = "";
	if (strcmp(state, "online") == 0 && member_u64(p, "connected_ms")) {
		char age[32];
		cli_age_text(age, sizeof(age), member_u64(p, "connected_ms"),
			     now);
		snprintf(since, sizeof(since), " (connected %s)", age);
	}
	printf("  %s  %s  %s%s%s\n", who, *url ? url : "inbound", shown, since,
	       *id && !json_is_true(json_object_get(p, "trusted"))
		       ? "  (not in the trust list)"
		       : "");
	if (strcmp(state, "unknown") == 0)
		return;
	char age[32];
	cli_age_text(age, sizeof(age), member_u64(p, "last_sync_ms"), now);
	printf("    last sync   %s\n", age);
	printf("    pending     %" PRIu64 " to send, %" PRIu64 " to receive\n",
	       member_u64(p, "pending_send"), member_u64(p, "pending_recv"));
	printf("    refused     %" PRIu64 " in, %" PRIu64 " out",
	       member_u64(p, "refused_in"), member_u64(p, "refused_out"));
	if (*member_str(p, "last_refusal"))
		printf("; last: %s", member_str(p, "last_refusal"));
	printf("\n");
	if (*member_str(p, "last_error")) {
		cli_age_text(age, sizeof(age), member_u64(p, "last_error_ms"),
			     now);
		printf("    last error  %s (%s)\n", member_str(p, "last_error"),
		       age);
	}
}

void cli_net_print_status(const json_t *doc)
{
	const json_t *peers = json_object_get(doc, "peers");
	uint64_t now = now_ms();
	printf("peers       %zu\n", json_array_size(peers));
	size_t i;
	const json_t *p;
	json_array_foreach(peers, i, p)
	{
		print_peer(p, now);
	}
}
