/*
 * cmd_history.c — what happened: `log` (the change log) and `conflicts`
 * (values that lost a merge).
 */
#include <inttypes.h>

#include "cli.h"
#include "ferry_json.h"

struct history_state {
	struct cli *cli;
	uint64_t shown;
	int rc;	       /* CLI_EXIT_FAILED once output failed (reported) */
	ferry_err err; /* an entry could not be shown */
};

/* Print one JSON value compactly on the current line. */
static void print_inline(const json_t *value)
{
	json_dumpf(value, stdout, JSON_COMPACT | JSON_ENCODE_ANY);
}

static int print_change(const ferry_change *change, void *payload)
{
	struct history_state *st = payload;
	json_t *doc;
	st->err = ferry_json_from_change(&doc, change);
	if (st->err)
		return 1;
	st->shown++;
	if (st->cli->json) {
		st->rc = cli_print_json_line(doc);
		return st->rc;
	}
	char stamp[CLI_STAMP_BYTES];
	char origin[CLI_SHORT_ID_BYTES];
	cli_stamp(stamp, change->hlc);
	cli_short_id(origin, change->origin);
	printf("%-6" PRIu64 " %s  %s  %s/%s/%s  %s", change->cursor, stamp,
	       origin, change->scope, change->collection, change->key,
	       change->op == FERRY_OP_DELETE ? "delete" : "put");
	const json_t *fields = json_object_get(doc, "fields");
	if (fields) {
		putchar(' ');
		print_inline(fields);
	}
	putchar('\n');
	json_decref(doc);
	return 0;
}

int cmd_log(struct cli *cli, int argc, char **argv)
{
	static const struct option options[] = {
		{"since", required_argument, NULL, 's'},
		CLI_COMMON_OPTIONS,
	};
	uint64_t count = 20;
	uint64_t since = 0;
	int have_count = 0, have_since = 0;
	int c;
	while ((c = cli_next_option(cli, argc, argv, "n:", options)) != -1) {
		if (c == 'n') {
			have_count = 1;
			if (cli_parse_u64(cli, "-n", optarg, &count))
				return CLI_EXIT_USAGE;
		} else {
			have_since = 1;
			if (cli_parse_u64(cli, "--since", optarg, &since))
				return CLI_EXIT_USAGE;
		}
	}
	if (optind != argc)
		return cli_usage(cli, "takes no arguments");
	int rc = cli_open(cli, 0);
	if (rc)
		return rc;
	ferry_err err = FERRY_OK;
	if (!have_since) {
		/* The newest `count` changes. */
		uint64_t last;
		err = ferry_changes_last(&last, cli->node);
		since = last > count ? last - count : 0;
	} else if (!have_count) {
		count = 0; /* everything after the cursor */
	}
	struct history_state st = {cli, 0, CLI_EXIT_OK, FERRY_OK};
	if (!err)
		err = ferry_changes(cli->node, since, count, print_change, &st);
	if (st.rc)
		return st.rc;
	if (!err)
		err = st.err;
	if (err)
		return cli_fail(cli, err, NULL, "cannot read the change log");
	return CLI_EXIT_OK;
}

static void print_side(const char *label, const json_t *side)
{
	printf("  %-6s %s/%" JSON_INTEGER_FORMAT "  by %.8s", label,
	       json_string_value(json_object_get(side, "time")),
	       json_integer_value(json_object_get(side, "counter")),
	       json_string_value(json_object_get(side, "origin")));
}

static int print_conflict(const ferry_conflict *conflict, void *payload)
{
	struct history_state *st = payload;
	json_t *doc;
	st->err = ferry_json_from_conflict(&doc, conflict);
	if (st->err)
		return 1;
	st->shown++;
	if (st->cli->json) {
		st->rc = cli_print_json_line(doc);
		return st->rc;
	}
	const json_t *loser = json_object_get(doc, "loser");
	const json_t *winner = json_object_get(doc, "winner");
	printf("%s  %s/%s/%s  field %s\n",
	       json_string_value(json_object_get(doc, "recorded")),
	       conflict->scope, conflict->collection, conflict->key,
	       conflict->field);
	print_side("lost", loser);
	fputs("  value ", stdout);
	print_inline(json_object_get(loser, "value"));
	putchar('\n');
	print_side(conflict->winner_is_delete ? "delete" : "kept", winner);
	putchar('\n');
	json_decref(doc);
	return 0;
}

int cmd_conflicts(struct cli *cli, int argc, char **argv)
{
	int first = cli_operands(cli, argc, argv);
	int nargs = argc - first;
	if (nargs > 3)
		return cli_usage(cli, "wants at most SCOPE COLLECTION KEY");
	const char *filter[3] = {NULL, NULL, NULL};
	for (int i = 0; i < nargs; i++)
		filter[i] = argv[first + i];
	int rc = cli_open(cli, 0);
	if (rc)
		return rc;
	struct history_state st = {cli, 0, CLI_EXIT_OK, FERRY_OK};
	ferry_err err = ferry_conflicts(cli->node, filter[0], filter[1],
					filter[2], print_conflict, &st);
	if (st.rc)
		return st.rc;
	if (!err)
		err = st.err;
	if (err)
		return cli_fail(cli, err, NULL, "cannot read the conflict log");
	if (!cli->json)
		printf("%" PRIu64 " conflict%s\n", st.shown,
		       st.shown == 1 ? "" : "s");
	return CLI_EXIT_OK;
}
