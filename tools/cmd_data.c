/*
 * cmd_data.c — records: `put`, `get`, `del` and `ls`.
 */
#include <inttypes.h>
#include <string.h>

#include "cli.h"
#include "ferry_json.h"

/* The fields of `put` as one JSON object: either a single JSON object
 * argument, or NAME=VALUE arguments where VALUE is taken as JSON when it
 * parses as JSON and as a plain string otherwise. Returns CLI_EXIT_OK or a
 * usage error (reported). */
static int fields_from_args(struct cli *cli, int argc, char **argv,
			    json_t **out)
{
	json_error_t error;
	if (argc == 1 && argv[0][0] == '{') {
		*out = json_loads(argv[0], 0, &error);
		if (!*out)
			return cli_usage(cli,
					 "the fields are not valid JSON: %s "
					 "(column %d)",
					 error.text, error.column);
		return CLI_EXIT_OK;
	}
	json_t *fields = json_object();
	for (int i = 0; fields && i < argc; i++) {
		const char *eq = strchr(argv[i], '=');
		if (!eq || eq == argv[i]) {
			json_decref(fields);
			return cli_usage(cli,
					 "'%s' is not NAME=VALUE or a JSON "
					 "object",
					 argv[i]);
		}
		json_t *value = json_loads(eq + 1, JSON_DECODE_ANY, &error);
		if (!value)
			value = json_string(eq + 1);
		if (json_object_setn_new(fields, argv[i],
					 (size_t)(eq - argv[i]), value)) {
			json_decref(fields);
			return cli_usage(cli,
					 "field name or value in '%s' is not "
					 "UTF-8",
					 argv[i]);
		}
	}
	*out = fields;
	return fields ? CLI_EXIT_OK
		      : cli_fail_msg("free some memory", "out of memory");
}

/* Report a write: nothing in text mode, the record's address in JSON. */
static int print_written(struct cli *cli, char **names, const char *op)
{
	if (!cli->json)
		return CLI_EXIT_OK;
	uint64_t cursor = 0;
	ferry_changes_last(&cursor, cli->node);
	return cli_print_json(json_pack("{s:s, s:s, s:s, s:s, s:I}", "scope",
					names[0], "collection", names[1], "key",
					names[2], "op", op, "cursor",
					(json_int_t)cursor));
}

int cmd_put(struct cli *cli, int argc, char **argv)
{
	int first = cli_operands(cli, argc, argv);
	if (argc - first < 4)
		return cli_usage(cli, "wants SCOPE COLLECTION KEY and fields");
	char **names = argv + first;
	json_t *fields;
	int rc = fields_from_args(cli, argc - first - 3, names + 3, &fields);
	if (rc)
		return rc;
	if (!json_is_object(fields) || json_object_size(fields) == 0) {
		json_decref(fields);
		return cli_usage(cli, "the fields must be a non-empty object");
	}
	rc = cli_open(cli, 0);
	ferry_txn *txn = NULL;
	ferry_err err = FERRY_OK;
	if (!rc)
		err = ferry_txn_begin(&txn, cli->node);
	if (!rc && !err)
		err = ferry_json_put(txn, names[0], names[1], names[2], fields);
	if (!rc && !err) {
		err = ferry_txn_commit(txn);
		txn = NULL;
	}
	ferry_txn_abort(txn);
	json_decref(fields);
	if (!rc && err)
		rc = cli_fail(cli, err, NULL, "put %s/%s/%s", names[0],
			      names[1], names[2]);
	return rc ? rc : print_written(cli, names, "put");
}

int cmd_del(struct cli *cli, int argc, char **argv)
{
	int first = cli_operands(cli, argc, argv);
	if (argc - first != 3)
		return cli_usage(cli, "wants SCOPE COLLECTION KEY");
	char **names = argv + first;
	int rc = cli_open(cli, 0);
	if (rc)
		return rc;
	ferry_txn *txn;
	ferry_err err = ferry_txn_begin(&txn, cli->node);
	if (!err) {
		err = ferry_txn_delete(txn, names[0], names[1], names[2]);
		if (err)
			ferry_txn_abort(txn);
		else
			err = ferry_txn_commit(txn);
	}
	if (err)
		return cli_fail(cli, err, NULL, "del %s/%s/%s", names[0],
				names[1], names[2]);
	return print_written(cli, names, "delete");
}

int cmd_get(struct cli *cli, int argc, char **argv)
{
	int first = cli_operands(cli, argc, argv);
	if (argc - first != 3)
		return cli_usage(cli, "wants SCOPE COLLECTION KEY");
	char **names = argv + first;
	int rc = cli_open(cli, 0);
	if (rc)
		return rc;
	ferry_record *rec;
	ferry_err err =
		ferry_get(&rec, cli->node, names[0], names[1], names[2]);
	if (err == FERRY_E_NOT_FOUND) {
		fprintf(stderr,
			"ferry: get %s/%s/%s: no such record (never written, "
			"or deleted)\nhint: list the keys with `ferry ls %s "
			"%s`\n",
			names[0], names[1], names[2], names[0], names[1]);
		return CLI_EXIT_NOT_FOUND;
	}
	if (err)
		return cli_fail(cli, err, NULL, "get %s/%s/%s", names[0],
				names[1], names[2]);
	json_t *doc;
	err = ferry_json_from_record(&doc, rec,
				     cli->json ? FERRY_JSON_RECORD_STAMPS : 0);
	ferry_record_free(rec);
	if (err)
		return cli_fail(cli, err, NULL, "get %s/%s/%s", names[0],
				names[1], names[2]);
	return cli_print_json(doc);
}

struct ls_state {
	struct cli *cli;
	const char *scope; /* listing collections: only this scope, or all */
	int rc;		   /* CLI_EXIT_FAILED once output failed (reported) */
	ferry_err err;	   /* a record could not be shown */
};

static int print_record(const ferry_record *rec, void *payload)
{
	struct ls_state *st = payload;
	if (!st->cli->json) {
		printf("%s\n", ferry_record_key(rec));
		return 0;
	}
	json_t *doc;
	st->err = ferry_json_from_record(&doc, rec, FERRY_JSON_RECORD_NAMES);
	if (!st->err)
		st->rc = cli_print_json_line(doc);
	return st->err || st->rc;
}

static int print_collection(const char *scope, const char *collection,
			    uint64_t live_records, void *payload)
{
	struct ls_state *st = payload;
	if (st->scope && strcmp(st->scope, scope) != 0)
		return 0;
	if (st->cli->json) {
		st->rc = cli_print_json_line(json_pack(
			"{s:s, s:s, s:I}", "scope", scope, "collection",
			collection, "records", (json_int_t)live_records));
		return st->rc;
	}
	printf("%s/%s\t%" PRIu64 "\n", scope, collection, live_records);
	return 0;
}

int cmd_ls(struct cli *cli, int argc, char **argv)
{
	static const struct option options[] = {
		{"prefix", required_argument, NULL, 'p'},
		{"after", required_argument, NULL, 'a'},
		{"limit", required_argument, NULL, 'l'},
		CLI_COMMON_OPTIONS,
	};
	ferry_scan_options scan = {0};
	int scan_option = 0;
	int c;
	while ((c = cli_next_option(cli, argc, argv, "", options)) != -1) {
		scan_option = 1;
		if (c == 'p')
			scan.prefix = optarg;
		else if (c == 'a')
			scan.after = optarg;
		else if (cli_parse_u64(cli, "--limit", optarg, &scan.limit))
			return CLI_EXIT_USAGE;
	}
	int nargs = argc - optind;
	char **names = argv + optind;
	if (nargs > 2 || (nargs < 2 && scan_option))
		return cli_usage(cli, "wants SCOPE COLLECTION with --prefix, "
				      "--after or --limit, else at most SCOPE");
	int rc = cli_open(cli, 0);
	if (rc)
		return rc;
	struct ls_state st = {cli, nargs ? names[0] : NULL, CLI_EXIT_OK,
			      FERRY_OK};
	ferry_err err;
	if (nargs == 2)
		err = ferry_scan(cli->node, names[0], names[1], &scan,
				 print_record, &st);
	else
		err = ferry_collections(cli->node, print_collection, &st);
	if (st.rc)
		return st.rc;
	if (!err)
		err = st.err;
	if (err && nargs == 2)
		return cli_fail(cli, err, NULL, "ls %s/%s", names[0], names[1]);
	if (err)
		return cli_fail(cli, err, NULL, "cannot list the collections");
	return CLI_EXIT_OK;
}
