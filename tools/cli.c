/*
 * cli.c — the parts of the `ferry` command every subcommand uses: option
 * parsing, opening the node, reporting errors and spelling ids and stamps.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "cli.h"
#include "ferry_json.h"

void cli_print_usage(const struct cli *cli, FILE *out)
{
	fprintf(out, "usage: ferry [--dir DIR] [--json] %s%s%s\n",
		cli->command->name, *cli->command->args ? " " : "",
		cli->command->args);
}

int cli_usage(struct cli *cli, const char *what, ...)
{
	va_list ap;
	fprintf(stderr, "ferry %s: ", cli->command->name);
	va_start(ap, what);
	vfprintf(stderr, what, ap);
	va_end(ap);
	fputc('\n', stderr);
	cli_print_usage(cli, stderr);
	fprintf(stderr, "see `ferry %s --help` or docs/cli.md\n",
		cli->command->name);
	return CLI_EXIT_USAGE;
}

int cli_next_option(struct cli *cli, int argc, char **argv,
		    const char *shortopts, const struct option *longopts)
{
	for (;;) {
		/* Silence getopt's own message: cli_usage() says it. */
		opterr = 0;
		int c = getopt_long(argc, argv, shortopts, longopts, NULL);
		switch (c) {
		case 'J':
			cli->json = 1;
			break;
		case 'D':
			cli->dir = optarg;
			break;
		case 'h':
			cli_print_usage(cli, stdout);
			printf("%s\n", cli->command->summary);
			exit(CLI_EXIT_OK);
		case '?':
		case ':':
			if (optopt)
				exit(cli_usage(cli,
					       "bad or incomplete option "
					       "-%c",
					       optopt));
			exit(cli_usage(cli, "bad or incomplete option %s",
				       argv[optind - 1]));
		default:
			return c;
		}
	}
}

int cli_operands(struct cli *cli, int argc, char **argv)
{
	static const struct option options[] = {CLI_COMMON_OPTIONS};
	while (cli_next_option(cli, argc, argv, "", options) != -1)
		;
	return optind;
}

int cli_open(struct cli *cli, int create)
{
	if (!cli->dir)
		return cli_fail_msg("pass --dir DIR or set FERRY_DIR",
				    "no data directory: HOME is not set");
	if (!create) {
		char pub[4096];
		snprintf(pub, sizeof(pub), "%s/node.pub", cli->dir);
		if (access(pub, F_OK) != 0)
			return cli_fail_msg("run `ferry init` to create a node "
					    "there, or pass --dir / set "
					    "FERRY_DIR",
					    "no node in %s", cli->dir);
	}
	ferry_err err =
		ferry_node_open(&cli->node, cli->dir, NULL, &cli->open_detail);
	if (err)
		return cli_fail(cli, err, NULL, "cannot open the node in %s",
				cli->dir);
	return CLI_EXIT_OK;
}

void cli_close(struct cli *cli)
{
	ferry_node_close(cli->node);
	cli->node = NULL;
	free(cli->open_detail);
	cli->open_detail = NULL;
}

/* What to do about `err` when the caller has nothing more specific. */
static const char *default_hint(ferry_err err)
{
	switch (err) {
	case FERRY_E_INVALID:
		return "check the names and values given (see docs/cli.md)";
	case FERRY_E_LIMIT:
		return "the value or name is over one of the limits in "
		       "docs/cli.md";
	case FERRY_E_IO:
		return "check that the data directory exists and is writable";
	case FERRY_E_KEY_FILE:
		return "node.key must be readable by its owner only (chmod "
		       "600) "
		       "and match node.pub";
	case FERRY_E_MAP_FULL:
		return "the store reached its maximum size; free disk space or "
		       "raise the map size";
	case FERRY_E_BUSY:
		return "another process is using the store; try again";
	case FERRY_E_MALFORMED:
	case FERRY_E_VERSION:
		return "the input is damaged or from an incompatible ferry; "
		       "produce it again";
	case FERRY_E_GAP:
	case FERRY_E_BAD_LINK:
		return "this bundle does not follow what this node holds: "
		       "export "
		       "again from this node's current `ferry vector`, or "
		       "without --since";
	case FERRY_E_FORK:
		return "an origin has two different histories: find out which "
		       "node's store was restored or copied";
	case FERRY_E_BAD_SIGNATURE:
		return "the data was altered on the way or at rest; get it "
		       "again "
		       "from its origin";
	case FERRY_E_CLOCK_DRIFT:
		return "a clock is far ahead: check the date and time on both "
		       "machines";
	case FERRY_E_CORRUPT:
		return "run `ferry verify`; restore this node from a peer or "
		       "backup";
	default:
		return "see docs/cli.md";
	}
}

static void vreport(const char *what, va_list ap)
{
	fputs("ferry: ", stderr);
	vfprintf(stderr, what, ap);
}

int cli_fail(struct cli *cli, ferry_err err, const char *hint, const char *what,
	     ...)
{
	va_list ap;
	va_start(ap, what);
	vreport(what, ap);
	va_end(ap);
	const char *detail =
		cli->node ? ferry_node_errmsg(cli->node) : cli->open_detail;
	fprintf(stderr, ": %s", ferry_strerror(err));
	if (detail && *detail)
		fprintf(stderr, " (%s)", detail);
	fprintf(stderr, "\nhint: %s\n", hint ? hint : default_hint(err));
	return CLI_EXIT_FAILED;
}

int cli_fail_msg(const char *hint, const char *what, ...)
{
	va_list ap;
	va_start(ap, what);
	vreport(what, ap);
	va_end(ap);
	fprintf(stderr, "\nhint: %s\n", hint);
	return CLI_EXIT_FAILED;
}

static int print_json(json_t *doc, size_t flags)
{
	if (!doc)
		return cli_fail_msg("free some memory and try again",
				    "out of memory building the output");
	int rc = json_dumpf(doc, stdout, flags);
	json_decref(doc);
	if (rc || fputc('\n', stdout) == EOF)
		return cli_fail_msg("check where stdout goes",
				    "cannot write to stdout: %s",
				    strerror(errno));
	return CLI_EXIT_OK;
}

int cli_print_json(json_t *doc)
{
	return print_json(doc, JSON_INDENT(2));
}

int cli_print_json_line(json_t *doc)
{
	return print_json(doc, JSON_COMPACT);
}

int cli_print_json_lines(json_t *docs)
{
	size_t i;
	json_t *item;
	int rc = CLI_EXIT_OK;
	json_array_foreach(docs, i, item)
	{
		rc = cli_print_json_line(json_incref(item));
		if (rc)
			break;
	}
	json_decref(docs);
	return rc;
}

int cli_parse_u64(struct cli *cli, const char *name, const char *text,
		  uint64_t *out)
{
	char *end;
	errno = 0;
	uintmax_t v = strtoumax(text, &end, 10);
	if (errno || end == text || *end || *text == '-')
		return cli_usage(cli,
				 "%s wants a non-negative number, not '%s'",
				 name, text);
	*out = v;
	return CLI_EXIT_OK;
}

void cli_hex(char *out, const uint8_t *bytes, size_t len)
{
	sodium_bin2hex(out, 2 * len + 1, bytes, len);
}

void cli_short_id(char out[CLI_SHORT_ID_BYTES], const uint8_t *id)
{
	cli_hex(out, id, (CLI_SHORT_ID_BYTES - 1) / 2);
}

void cli_stamp(char out[CLI_STAMP_BYTES], ferry_hlc hlc)
{
	char when[FERRY_JSON_TIME_BYTES];
	ferry_json_time(when, FERRY_HLC_MS(hlc));
	snprintf(out, CLI_STAMP_BYTES, "%s/%u", when,
		 (unsigned int)FERRY_HLC_COUNTER(hlc));
}

FILE *cli_open_output(const char *path, const char *what)
{
	if (!path) {
		if (isatty(STDOUT_FILENO)) {
			cli_fail_msg("redirect it to a file (ferry ... > FILE) "
				     "or pass -o FILE",
				     "not writing the binary %s to a terminal",
				     what);
			return NULL;
		}
		return stdout;
	}
	FILE *out = fopen(path, "wb");
	if (!out)
		cli_fail_msg("check the path and that its directory is "
			     "writable",
			     "cannot create %s: %s", path, strerror(errno));
	return out;
}

int cli_close_output(FILE *out, const char *path)
{
	int failed = fflush(out) != 0;
	/* A file is often headed for a USB stick: make it durable before
	 * saying it is written. */
	if (path && !failed)
		failed = fsync(fileno(out)) != 0;
	int saved = errno;
	if (out != stdout && fclose(out) != 0 && !failed) {
		failed = 1;
		saved = errno;
	}
	if (failed)
		return cli_fail_msg("check the free space on the target",
				    "cannot write %s: %s",
				    path ? path : "stdout", strerror(saved));
	return CLI_EXIT_OK;
}

void cli_grant_options(struct cli *cli, int argc, char **argv,
		       const char **name, const char **read, const char **write)
{
	static const struct option options[] = {
		{"name", required_argument, NULL, 'n'},
		{"read", required_argument, NULL, 'r'},
		{"write", required_argument, NULL, 'w'},
		CLI_COMMON_OPTIONS,
	};
	int c;
	while ((c = cli_next_option(cli, argc, argv, "", options)) != -1) {
		if (c == 'n')
			*name = optarg;
		else if (c == 'r')
			*read = optarg;
		else
			*write = optarg;
	}
}

char *cli_patterns_text(const json_t *arr)
{
	size_t len = 2, i;
	const json_t *item;
	json_array_foreach(arr, i, item)
	{
		len += json_string_length(item) + 1;
	}
	char *out = malloc(len);
	if (!out)
		return NULL;
	strcpy(out, json_array_size(arr) ? "" : "-");
	json_array_foreach(arr, i, item)
	{
		if (i > 0)
			strcat(out, ",");
		strcat(out, json_string_value(item));
	}
	return out;
}

static int wider(int width, size_t len)
{
	return (int)len > width ? (int)len : width;
}

int cli_grant_table_build(struct cli_grant_table *t, const json_t *items)
{
	size_t i;
	const json_t *item;
	memset(t, 0, sizeof(*t));
	t->n = json_array_size(items);
	t->name_w = 4;	/* NAME */
	t->read_w = 4;	/* READ */
	t->write_w = 5; /* WRITE */
	t->reads = calloc(t->n ? t->n : 1, sizeof(*t->reads));
	t->writes = calloc(t->n ? t->n : 1, sizeof(*t->writes));
	if (!t->reads || !t->writes)
		return -1;
	json_array_foreach(items, i, item)
	{
		t->reads[i] = cli_patterns_text(json_object_get(item, "read"));
		t->writes[i] =
			cli_patterns_text(json_object_get(item, "write"));
		if (!t->reads[i] || !t->writes[i])
			return -1;
		t->name_w = wider(t->name_w, json_string_length(json_object_get(
						     item, "name")));
		t->read_w = wider(t->read_w, strlen(t->reads[i]));
		t->write_w = wider(t->write_w, strlen(t->writes[i]));
	}
	return 0;
}

void cli_grant_table_free(struct cli_grant_table *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->reads ? t->reads[i] : NULL);
		free(t->writes ? t->writes[i] : NULL);
	}
	free(t->reads);
	free(t->writes);
	memset(t, 0, sizeof(*t));
}

int cli_check_name(struct cli *cli, const char *name, size_t max_bytes)
{
	size_t len = strlen(name);
	if (len == 0 || len > max_bytes)
		return cli_usage(cli, "--name must be 1 to %zu bytes",
				 max_bytes);
	for (const char *p = name; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return cli_usage(cli, "--name must not contain "
					      "control characters");
	if (!ferry_utf8_valid(name, len))
		return cli_usage(cli, "--name must be valid UTF-8");
	return CLI_EXIT_OK;
}

void cli_age_text(char *out, size_t len, uint64_t then, uint64_t now)
{
	if (then == 0) {
		snprintf(out, len, "never");
		return;
	}
	uint64_t s = now > then ? (now - then) / 1000 : 0;
	if (s < 60)
		snprintf(out, len, "%" PRIu64 "s ago", s);
	else if (s < 3600)
		snprintf(out, len, "%" PRIu64 "m ago", s / 60);
	else if (s < 86400)
		snprintf(out, len, "%" PRIu64 "h ago", s / 3600);
	else
		snprintf(out, len, "%" PRIu64 "d ago", s / 86400);
}
