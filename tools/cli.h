/*
 * cli.h — what the `ferry` command's subcommands share: the invocation
 * (data directory, output mode, open node), option parsing, error reporting
 * and the text spelling of ids and stamps. See docs/cli.md for the user's
 * view.
 */
#ifndef FERRY_CLI_H
#define FERRY_CLI_H

#include <getopt.h>
#include <stdio.h>

#include <jansson.h>

#include "ferry.h"

/* Exit codes (docs/cli.md). */
enum cli_exit {
	CLI_EXIT_OK = 0,
	CLI_EXIT_USAGE = 1,	/* bad command line */
	CLI_EXIT_FAILED = 2,	/* the operation failed */
	CLI_EXIT_NOT_FOUND = 3, /* `get` of a record that is not there */
};

struct cli;

typedef int (*cli_command_fn)(struct cli *cli, int argc, char **argv);

struct cli_command {
	const char *name;
	cli_command_fn run;
	const char *args;    /* synopsis after the name */
	const char *summary; /* one line for --help */
};

/* One invocation of the command. */
struct cli {
	const char *dir; /* data directory */
	int json;	 /* --json: machine-readable stdout */
	const struct cli_command *command;
	ferry_node *node; /* once cli_open() succeeded */
	/* ferry_node_open()'s detail when there is no node to hold it. */
	char *open_detail;
};

/* The options every command accepts, to end its getopt_long() table with. */
// clang-format off
#define CLI_COMMON_OPTIONS                                                     \
	{"json", no_argument, NULL, 'J'},                                      \
	{"dir", required_argument, NULL, 'D'},                                 \
	{"help", no_argument, NULL, 'h'},                                      \
	{NULL, 0, NULL, 0}
// clang-format on

/* The next option of the command line that is the command's own (the
 * command's name is argv[0]); --json, --dir and --help are handled here:
 * --help prints the command's usage and exits 0, an unknown option prints
 * usage and exits CLI_EXIT_USAGE. Returns -1 after the last option, leaving
 * `optind` at the first operand. `shortopts` should not start with '+' so
 * options may follow operands. */
int cli_next_option(struct cli *cli, int argc, char **argv,
		    const char *shortopts, const struct option *longopts);

/* Parse a command line that has no options of its own; returns the index
 * of the first operand. */
int cli_operands(struct cli *cli, int argc, char **argv);

/* Print "ferry CMD: <what>" and the command's usage to stderr; returns
 * CLI_EXIT_USAGE. */
int cli_usage(struct cli *cli, const char *what, ...)
	__attribute__((format(printf, 2, 3)));

/* Print the command's usage line to `out`. */
void cli_print_usage(const struct cli *cli, FILE *out);

/* Open the node in cli->dir. Unless `create`, a directory without a node
 * is an error (so a mistyped --dir does not silently make a new node).
 * Returns CLI_EXIT_OK or, after reporting, CLI_EXIT_FAILED. */
int cli_open(struct cli *cli, int create);

/* Close the node (if open) and free what `cli` holds. */
void cli_close(struct cli *cli);

/* Report a failure on stderr as
 *   ferry: <what>: <ferry_strerror(err)> (<node detail>)
 *   hint: <hint, or a default for err>
 * and return CLI_EXIT_FAILED. */
int cli_fail(struct cli *cli, ferry_err err, const char *hint, const char *what,
	     ...) __attribute__((format(printf, 4, 5)));

/* Report a failure that is not a ferry_err (I/O of the tool itself, bad
 * input) the same way, without the error text. */
int cli_fail_msg(const char *hint, const char *what, ...)
	__attribute__((format(printf, 2, 3)));

/* Print `doc` (stolen) to stdout: indented as one document, or on one line
 * for streams of JSON lines. Returns CLI_EXIT_OK, or CLI_EXIT_FAILED (after
 * reporting) if `doc` is NULL (out of memory) or stdout fails. */
int cli_print_json(json_t *doc);
int cli_print_json_line(json_t *doc);

/* Each element of the array `docs` (stolen) as one JSON line. */
int cli_print_json_lines(json_t *docs);

/* The options of commands that grant scopes (`trust`, `apikey`):
 * --name NAME, --read SCOPES, --write SCOPES (each left NULL if absent),
 * plus the common ones. Leaves `optind` at the first operand. */
void cli_grant_options(struct cli *cli, int argc, char **argv,
		       const char **name, const char **read,
		       const char **write);

/* A JSON array of grant patterns as people write them, comma-separated,
 * or "-" for nothing. Returns a malloc'd string, or NULL when out of
 * memory. */
char *cli_patterns_text(const json_t *arr);

/* The READ and WRITE cells of a listing of grant holders (trust entries,
 * API keys: objects with "name", "read" and "write" arrays), patterns
 * comma-separated or "-" for none, and the NAME/READ/WRITE column widths
 * (at least the header's). */
struct cli_grant_table {
	char **reads, **writes;
	size_t n;
	int name_w, read_w, write_w;
};

/* 0, or -1 when out of memory; free with cli_grant_table_free() either
 * way. */
int cli_grant_table_build(struct cli_grant_table *t, const json_t *items);
void cli_grant_table_free(struct cli_grant_table *t);

/* A --name for the libraries' name rules (1..max_bytes of UTF-8 without
 * control characters), checked here so a bad one is a usage error (exit
 * 1) rather than a failure. */
int cli_check_name(struct cli *cli, const char *name, size_t max_bytes);

/* Parse a non-negative decimal count for option `name`. */
int cli_parse_u64(struct cli *cli, const char *name, const char *text,
		  uint64_t *out);

/* A public key as its first 8 hex digits, for humans. */
#define CLI_SHORT_ID_BYTES 9
void cli_short_id(char out[CLI_SHORT_ID_BYTES], const uint8_t *id);

/* A stamp as "2024-05-01T12:00:00.123Z/3" (UTC time / logical counter). */
#define CLI_STAMP_BYTES 48
void cli_stamp(char out[CLI_STAMP_BYTES], ferry_hlc hlc);

/* Hex text of `len` bytes into `out` (2 * len + 1 bytes). */
void cli_hex(char *out, const uint8_t *bytes, size_t len);

/* Where binary output goes: a new file at `path`, or stdout when `path` is
 * NULL, refusing a terminal. Reports and returns NULL on failure. */
FILE *cli_open_output(const char *path, const char *what);

/* Flush, sync (for a file) and close what cli_open_output() returned.
 * Returns CLI_EXIT_OK or, after reporting, CLI_EXIT_FAILED. */
int cli_close_output(FILE *out, const char *path);

/* A version vector as a JSON array of {origin, scope, seq, head}, all hex
 * but seq; NULL when out of memory. */
json_t *cli_vector_json(const ferry_vector *vec);

/* "12s ago", "5m ago", "3h ago", "2d ago" from Unix ms `then` to `now`;
 * "never" for 0. */
void cli_age_text(char *out, size_t len, uint64_t then, uint64_t now);

/* Subcommands, one concept per file. */
int cmd_init(struct cli *cli, int argc, char **argv);
int cmd_id(struct cli *cli, int argc, char **argv);
int cmd_status(struct cli *cli, int argc, char **argv);
int cmd_digest(struct cli *cli, int argc, char **argv);
int cmd_verify(struct cli *cli, int argc, char **argv);
int cmd_put(struct cli *cli, int argc, char **argv);
int cmd_get(struct cli *cli, int argc, char **argv);
int cmd_del(struct cli *cli, int argc, char **argv);
int cmd_ls(struct cli *cli, int argc, char **argv);
int cmd_log(struct cli *cli, int argc, char **argv);
int cmd_conflicts(struct cli *cli, int argc, char **argv);
int cmd_vector(struct cli *cli, int argc, char **argv);
int cmd_export(struct cli *cli, int argc, char **argv);
int cmd_import(struct cli *cli, int argc, char **argv);
int cmd_trust(struct cli *cli, int argc, char **argv);
int cmd_peer(struct cli *cli, int argc, char **argv);
int cmd_apikey(struct cli *cli, int argc, char **argv);
int cmd_adapter(struct cli *cli, int argc, char **argv);
int cmd_secret(struct cli *cli, int argc, char **argv);
int cmd_serve(struct cli *cli, int argc, char **argv);
int cmd_sync(struct cli *cli, int argc, char **argv);

/* The peers part of `status` (cmd_net.c): add the "peers" array to the
 * status document `doc` (returns CLI_EXIT_OK, or CLI_EXIT_FAILED after
 * reporting), and print it as text. */
int cli_net_status_json(struct cli *cli, json_t *doc);
void cli_net_print_status(const json_t *doc);

#endif
