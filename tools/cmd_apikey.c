/*
 * cmd_apikey.c — `apikey`: the API keys that clients of the hub's HTTP
 * side present (net/apikey.h). `create` makes one and shows its token,
 * the only time anyone sees it; `ls` lists keys without tokens (the node
 * does not have them); `revoke` deletes one, refused from the next
 * request on, in every process using the directory.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "apikey.h"
#include "cli.h"

/* {"id", "name", "read", "write", "created_ms"}: never the token. */
static json_t *key_json(const apikey_info *k)
{
	return json_pack("{s:s, s:s, s:o, s:o, s:I}", "id", k->id, "name",
			 k->name, "read", grant_to_json(&k->read), "write",
			 grant_to_json(&k->write), "created_ms",
			 (json_int_t)k->created_ms);
}

/* A grant as people write it, or "-" for nothing (malloc'd; NULL when
 * out of memory). */
static char *grant_text(const grant *g)
{
	return g->n ? grant_format(g) : strdup("-");
}

/* A Unix time in ms as "2026-11-21T11:46:23Z", or "-" when unknown. */
static void time_text(char *out, size_t len, uint64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	if (ms == 0 || !gmtime_r(&t, &tm) ||
	    strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, len, "-");
}

/* apikey_list() callback: append each key's JSON to the array `payload`
 * (a NULL element marks "out of memory"). */
static int collect_key(const apikey_info *k, void *payload)
{
	json_t *item = key_json(k);
	if (!item) {
		json_array_append_new(payload, json_null());
		return 1;
	}
	return json_array_append_new(payload, item) != 0;
}

/* kv scan callback: the ids of records that do not decode, for the hint
 * of a failed listing (`ls` cannot show them, `revoke ID` can remove
 * them). */
static int collect_damaged(const char *key, const void *value, size_t len,
			   void *payload)
{
	(void)value;
	(void)len;
	char *ids = payload;
	size_t at = strlen(ids);
	if (at + 20 < 256)
		snprintf(ids + at, 256 - at, "%s%.16s", at ? ", " : "", key);
	return 0;
}

/* Every key as a JSON array, or NULL. Failures are reported unless
 * `quiet`. */
static json_t *key_entries(struct cli *cli, int quiet)
{
	json_t *list = json_array();
	if (!list) {
		if (!quiet)
			cli_print_json(NULL);
		return NULL;
	}
	ferry_err err = apikey_list(cli->node, collect_key, list);
	if (err) {
		json_decref(list);
		if (quiet)
			return NULL;
		if (err != FERRY_E_CORRUPT) {
			cli_fail(cli, err, NULL, "cannot read the API keys");
			return NULL;
		}
		/* A damaged record: say which ids hold records at all, so
		 * the operator can revoke the bad one. */
		char ids[256] = "", hint[512];
		ferry_kv_scan(cli->node, "apikeys", collect_damaged, ids);
		snprintf(hint, sizeof(hint),
			 "a key's record is damaged; the stored ids are %s: "
			 "revoke the damaged one with `ferry apikey revoke ID` "
			 "and create it again",
			 ids);
		cli_fail(cli, err, hint, "cannot read the API keys");
		return NULL;
	}
	size_t i;
	json_t *item;
	json_array_foreach(list, i, item)
	{
		if (json_is_null(item)) {
			json_decref(list);
			if (!quiet)
				cli_print_json(NULL);
			return NULL;
		}
	}
	return list;
}

static int check_grant(struct cli *cli, const char *option, const char *csv)
{
	char err[256];
	grant g;
	ferry_err rc = grant_parse(&g, csv, err, sizeof(err));
	grant_clear(&g);
	if (rc)
		return cli_usage(cli, "%s: %s", option, err);
	return CLI_EXIT_OK;
}

static int apikey_new(struct cli *cli, int nargs, const char *name,
		      const char *read, const char *write)
{
	if (nargs != 0)
		return cli_usage(cli, "create takes no arguments (the name "
				      "goes in --name)");
	if (!name)
		return cli_usage(cli, "--name NAME is required");
	int rc = cli_check_name(cli, name, APIKEY_MAX_NAME_BYTES);
	if (!rc)
		rc = check_grant(cli, "--read", read);
	if (!rc)
		rc = check_grant(cli, "--write", write);
	if (!rc)
		rc = cli_open(cli, 0);
	if (rc)
		return rc;

	char token[APIKEY_TOKEN_BYTES], why[256];
	apikey_info k;
	ferry_err err = apikey_create(cli->node, name, read, write, token, &k,
				      why, sizeof(why));
	if (err == FERRY_E_INVALID && strcmp(why, "name taken") == 0) {
		char hint[128 + APIKEY_MAX_NAME_BYTES];
		snprintf(hint, sizeof(hint),
			 "choose another --name, or revoke the other key "
			 "first (`ferry apikey revoke %s`)",
			 name);
		return cli_fail_msg(hint, "an API key named %s already exists",
				    name);
	}
	if (err)
		return cli_fail(cli, err, *why ? why : NULL,
				"cannot create the API key");

	int empty = k.read.n == 0 && k.write.n == 0;
	if (cli->json) {
		json_t *doc = json_pack("{s:s, s:s, s:s, s:o, s:o}", "id", k.id,
					"name", k.name, "token", token, "read",
					grant_to_json(&k.read), "write",
					grant_to_json(&k.write));
		rc = cli_print_json(doc);
	} else {
		char *r = grant_text(&k.read), *w = grant_text(&k.write);
		printf("created API key %s (%s): read %s  write %s\n%s\n",
		       k.name, k.id, r ? r : "?", w ? w : "?", token);
		free(r);
		free(w);
		fflush(stdout);
	}
	/* Our copy is not needed any more. */
	sodium_memzero(token, sizeof(token));
	if (rc == CLI_EXIT_OK)
		fprintf(stderr,
			"warning: this is the only time the token is shown: "
			"the node keeps only its hash and cannot show it "
			"again\n"
			"hint: store it now; if it is lost, revoke the key "
			"(`ferry apikey revoke %s`) and create another\n",
			k.id);
	if (rc == CLI_EXIT_OK && empty)
		fprintf(stderr,
			"warning: %s can neither read nor write any scope, so "
			"requests with it are refused everywhere but on "
			"public routes\n"
			"hint: pass --read and/or --write, e.g. --read "
			"'shop,shop/*' --write shop\n",
			k.name);
	apikey_info_clear(&k);
	return rc;
}

static int apikey_ls(struct cli *cli, int nargs)
{
	if (nargs != 0)
		return cli_usage(cli, "ls takes no arguments");
	int rc = cli_open(cli, 0);
	if (rc)
		return rc;
	json_t *keys = key_entries(cli, 0);
	if (!keys)
		return CLI_EXIT_FAILED;
	size_t i, n = json_array_size(keys);
	json_t *item;
	if (cli->json)
		return cli_print_json_lines(keys);
	if (n == 0) {
		printf("no API keys (create one with `ferry apikey create "
		       "--name NAME --read SCOPES --write SCOPES`)\n");
		json_decref(keys);
		return CLI_EXIT_OK;
	}
	struct cli_grant_table t;
	if (cli_grant_table_build(&t, keys) == 0) {
		printf("%-16s  %-*s  %-*s  %-*s  %s\n", "ID", t.name_w, "NAME",
		       t.read_w, "READ", t.write_w, "WRITE", "CREATED");
		json_array_foreach(keys, i, item)
		{
			char created[32];
			time_text(created, sizeof(created),
				  (uint64_t)json_integer_value(
					  json_object_get(item, "created_ms")));
			printf("%-16s  %-*s  %-*s  %-*s  %s\n",
			       json_string_value(json_object_get(item, "id")),
			       t.name_w,
			       json_string_value(json_object_get(item, "name")),
			       t.read_w, t.reads[i], t.write_w, t.writes[i],
			       created);
		}
	} else {
		rc = cli_print_json(NULL);
	}
	cli_grant_table_free(&t);
	json_decref(keys);
	return rc;
}

/* Was `id` in the listing `keys`? */
static int has_id(const json_t *keys, const char *id)
{
	size_t i;
	const json_t *item;
	json_array_foreach(keys, i, item)
	{
		if (strcmp(json_string_value(json_object_get(item, "id")),
			   id) == 0)
			return 1;
	}
	return 0;
}

static int apikey_rm(struct cli *cli, char **args, int nargs)
{
	if (nargs != 1)
		return cli_usage(cli, "revoke takes one NAME or ID");
	int rc = cli_open(cli, 0);
	if (rc)
		return rc;
	/* The library decides what the argument names; the listings before
	 * and after say which key that was, for the message. A damaged
	 * record makes them fail: the revoke itself still works (by id). */
	json_t *before = key_entries(cli, 1);
	ferry_err err = apikey_revoke(cli->node, args[0]);
	if (err == FERRY_E_NOT_FOUND) {
		json_decref(before);
		return cli_fail_msg("see `ferry apikey ls`; an id needs at "
				    "least 8 of its hex digits",
				    "no API key is named %s or has an id "
				    "starting with it",
				    args[0]);
	}
	if (err == FERRY_E_INVALID) {
		json_decref(before);
		return cli_fail_msg("give the key's full 16-digit id (see "
				    "`ferry apikey ls`)",
				    "%s names more than one API key", args[0]);
	}
	if (err) {
		json_decref(before);
		return cli_fail(cli, err, NULL, "cannot revoke %s", args[0]);
	}
	json_t *after = key_entries(cli, 1);
	const json_t *gone = NULL;
	size_t i;
	const json_t *item;
	json_array_foreach(before, i, item)
	{
		if (!gone && after &&
		    !has_id(after,
			    json_string_value(json_object_get(item, "id"))))
			gone = item;
	}
	const char *id =
		gone ? json_string_value(json_object_get(gone, "id")) : NULL;
	const char *name =
		gone ? json_string_value(json_object_get(gone, "name")) : NULL;
	if (cli->json) {
		rc = cli_print_json(json_pack("{s:s?, s:s?, s:b}", "id", id,
					      "name", name, "revoked", 1));
	} else if (gone) {
		printf("revoked API key %s (%s): its token is refused from "
		       "now on\n",
		       name, id);
	} else {
		printf("revoked API key %s: its token is refused from now "
		       "on\n",
		       args[0]);
	}
	json_decref(before);
	json_decref(after);
	return rc;
}

int cmd_apikey(struct cli *cli, int argc, char **argv)
{
	const char *name = NULL, *read = NULL, *write = NULL;
	cli_grant_options(cli, argc, argv, &name, &read, &write);
	if (optind >= argc)
		return cli_usage(cli,
				 "needs a subcommand: create, ls or revoke");
	const char *sub = argv[optind];
	char **args = argv + optind + 1;
	int nargs = argc - optind - 1;
	if (strcmp(sub, "create") == 0)
		return apikey_new(cli, nargs, name, read, write);
	if (name || read || write)
		return cli_usage(cli, "--name, --read and --write belong to "
				      "`apikey create`");
	if (strcmp(sub, "ls") == 0)
		return apikey_ls(cli, nargs);
	if (strcmp(sub, "revoke") == 0)
		return apikey_rm(cli, args, nargs);
	return cli_usage(cli, "unknown subcommand '%s' (create, ls or revoke)",
			 sub);
}
