/*
 * cmd_node.c — the node as a whole: `init`, `id`, `status`, `digest` and
 * `verify`.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "ferry_json.h"

/* Create the directories above `dir` (ferry_node_open() creates only the
 * last one, so that it alone gets mode 0700). */
static int make_parents(const char *dir)
{
	char *path = strdup(dir);
	if (!path)
		return -1;
	int rc = 0;
	for (char *p = path + 1; *p && rc == 0; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) != 0 && errno != EEXIST)
			rc = -1;
		*p = '/';
	}
	free(path);
	return rc;
}

int cmd_init(struct cli *cli, int argc, char **argv)
{
	int first = cli_operands(cli, argc, argv);
	if (first != argc)
		return cli_usage(cli, "takes no arguments");
	if (cli->dir && make_parents(cli->dir) != 0)
		return cli_fail_msg("create it yourself, or pass another --dir",
				    "cannot create the parents of %s: %s",
				    cli->dir, strerror(errno));
	char pub[4096];
	snprintf(pub, sizeof(pub), "%s/node.pub", cli->dir ? cli->dir : "");
	int existed = access(pub, F_OK) == 0;
	int rc = cli_open(cli, 1);
	if (rc)
		return rc;
	char id[FERRY_ID_HEX_BYTES];
	ferry_id_to_hex(id, ferry_node_id(cli->node));
	if (cli->json)
		return cli_print_json(json_pack("{s:s, s:s, s:b}", "dir",
						ferry_node_dir(cli->node), "id",
						id, "created", !existed));
	printf("%s node in %s\nid %s\n", existed ? "existing" : "created",
	       ferry_node_dir(cli->node), id);
	return CLI_EXIT_OK;
}

int cmd_id(struct cli *cli, int argc, char **argv)
{
	int first = cli_operands(cli, argc, argv);
	if (first != argc)
		return cli_usage(cli, "takes no arguments");
	int rc = cli_open(cli, 0);
	if (rc)
		return rc;
	char id[FERRY_ID_HEX_BYTES];
	ferry_id_to_hex(id, ferry_node_id(cli->node));
	if (cli->json)
		return cli_print_json(json_pack("{s:s}", "id", id));
	printf("%s\n", id);
	return CLI_EXIT_OK;
}

/* ferry_collections() callback: append to the JSON array `payload`. */
static int add_collection(const char *scope, const char *collection,
			  uint64_t live_records, void *payload)
{
	return json_array_append_new(
		payload,
		json_pack("{s:s, s:s, s:I}", "scope", scope, "collection",
			  collection, "records", (json_int_t)live_records));
}

/* The node's version vector as a JSON array, or NULL (reported). */
static json_t *vector_json(struct cli *cli)
{
	ferry_vector *vec;
	ferry_err err = ferry_vector_get(&vec, cli->node);
	if (err) {
		cli_fail(cli, err, NULL, "cannot read the version vector");
		return NULL;
	}
	json_t *list = cli_vector_json(vec);
	ferry_vector_free(vec);
	if (!list)
		cli_print_json(NULL);
	return list;
}

/* Everything `status` shows, as the document --json prints. */
static int status_json(struct cli *cli, json_t **out)
{
	ferry_status st;
	ferry_err err = ferry_status_get(&st, cli->node);
	if (err)
		return cli_fail(cli, err, NULL, "cannot read the status");
	json_t *collections = json_array();
	if (collections) {
		err = ferry_collections(cli->node, add_collection, collections);
		if (err) {
			json_decref(collections);
			return cli_fail(cli, err, NULL,
					"cannot list the collections");
		}
	}
	json_t *vector = vector_json(cli);
	if (!vector) {
		json_decref(collections);
		return CLI_EXIT_FAILED;
	}
	char id[FERRY_ID_HEX_BYTES];
	ferry_id_to_hex(id, ferry_node_id(cli->node));
	*out = json_pack(
		"{s:s, s:s, s:I, s:I, s:I, s:I, s:o, s:o, s:o}", "id", id,
		"dir", ferry_node_dir(cli->node), "store_bytes",
		(json_int_t)st.store_bytes, "changes", (json_int_t)st.changes,
		"last_cursor", (json_int_t)st.last_cursor, "conflicts",
		(json_int_t)st.conflicts, "clock", ferry_json_hlc(st.clock),
		"collections", collections, "vector", vector);
	if (!*out)
		return cli_print_json(NULL);
	int rc = cli_net_status_json(cli, *out);
	if (rc) {
		json_decref(*out);
		*out = NULL;
	}
	return rc;
}

static json_int_t member_int(const json_t *obj, const char *name)
{
	return json_integer_value(json_object_get(obj, name));
}

static const char *member_str(const json_t *obj, const char *name)
{
	return json_string_value(json_object_get(obj, name));
}

static void print_status(const json_t *doc)
{
	const json_t *clock = json_object_get(doc, "clock");
	printf("id          %s\n", member_str(doc, "id"));
	printf("dir         %s\n", member_str(doc, "dir"));
	printf("store       %" JSON_INTEGER_FORMAT " bytes\n",
	       member_int(doc, "store_bytes"));
	printf("changes     %" JSON_INTEGER_FORMAT
	       " (last cursor %" JSON_INTEGER_FORMAT ")\n",
	       member_int(doc, "changes"), member_int(doc, "last_cursor"));
	printf("clock       %s/%" JSON_INTEGER_FORMAT "\n",
	       member_str(clock, "time"), member_int(clock, "counter"));
	printf("conflicts   %" JSON_INTEGER_FORMAT "\n",
	       member_int(doc, "conflicts"));

	size_t i;
	const json_t *item;
	const json_t *collections = json_object_get(doc, "collections");
	printf("collections %zu\n", json_array_size(collections));
	json_array_foreach(collections, i, item)
	{
		printf("  %s/%s  %" JSON_INTEGER_FORMAT " records\n",
		       member_str(item, "scope"),
		       member_str(item, "collection"),
		       member_int(item, "records"));
	}
	const json_t *vector = json_object_get(doc, "vector");
	printf("vector      %zu chains (origin scope seq head)\n",
	       json_array_size(vector));
	json_array_foreach(vector, i, item)
	{
		printf("  %.8s  %s  %" JSON_INTEGER_FORMAT "  %.16s\n",
		       member_str(item, "origin"), member_str(item, "scope"),
		       member_int(item, "seq"), member_str(item, "head"));
	}
	cli_net_print_status(doc);
}

int cmd_status(struct cli *cli, int argc, char **argv)
{
	int first = cli_operands(cli, argc, argv);
	if (first != argc)
		return cli_usage(cli, "takes no arguments");
	int rc = cli_open(cli, 0);
	json_t *doc = NULL;
	if (!rc)
		rc = status_json(cli, &doc);
	if (rc)
		return rc;
	if (cli->json)
		return cli_print_json(doc);
	print_status(doc);
	json_decref(doc);
	return CLI_EXIT_OK;
}

int cmd_digest(struct cli *cli, int argc, char **argv)
{
	static const struct option options[] = {
		{"scope", required_argument, NULL, 's'},
		CLI_COMMON_OPTIONS,
	};
	const char *scope = NULL;
	int c;
	while ((c = cli_next_option(cli, argc, argv, "s:", options)) != -1)
		scope = optarg; /* 's', the only option of its own */
	if (optind != argc)
		return cli_usage(cli, "takes no arguments");
	int rc = cli_open(cli, 0);
	if (rc)
		return rc;
	uint8_t digest[FERRY_HASH_BYTES];
	ferry_err err = ferry_digest(digest, cli->node, scope);
	if (err)
		return cli_fail(cli, err, NULL, "cannot compute the digest");
	char hex[2 * FERRY_HASH_BYTES + 1];
	cli_hex(hex, digest, sizeof(digest));
	if (cli->json)
		return cli_print_json(json_pack("{s:s?, s:s}", "scope", scope,
						"digest", hex));
	printf("%s\n", hex);
	return CLI_EXIT_OK;
}

int cmd_verify(struct cli *cli, int argc, char **argv)
{
	int first = cli_operands(cli, argc, argv);
	if (first != argc)
		return cli_usage(cli, "takes no arguments");
	int rc = cli_open(cli, 0);
	if (rc)
		return rc;
	ferry_verify_report report = {0};
	ferry_err err = ferry_verify(cli->node, &report);
	if (cli->json) {
		rc = cli_print_json(json_pack(
			"{s:b, s:s?, s:s?, s:I, s:I, s:I, s:I}", "ok", !err,
			"error", err ? ferry_err_name(err) : NULL, "detail",
			err ? ferry_node_errmsg(cli->node) : NULL, "chains",
			(json_int_t)report.chains, "changes",
			(json_int_t)report.changes, "signatures",
			(json_int_t)report.signatures, "records",
			(json_int_t)report.records));
		if (rc)
			return rc;
	}
	if (err)
		return cli_fail(cli, err, NULL, "verify found a problem");
	if (!cli->json)
		printf("ok: %" PRIu64 " chains, %" PRIu64 " changes, %" PRIu64
		       " signatures, %" PRIu64 " records checked\n",
		       report.chains, report.changes, report.signatures,
		       report.records);
	return CLI_EXIT_OK;
}
