/*
 * main.c — the `ferry` command: global options, finding the data directory
 * and handing over to a subcommand (cli.h lists them; docs/cli.md is the
 * user's reference).
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#ifndef FERRY_VERSION
#define FERRY_VERSION "unknown"
#endif

static const struct cli_command commands[] = {
	{"init", cmd_init, "", "Create the node (if needed) and print its id."},
	{"id", cmd_id, "", "Print the node's public key in hex."},
	{"put", cmd_put, "SCOPE COLLECTION KEY (JSON_OBJECT | NAME=VALUE...)",
	 "Set fields of a record in one transaction.\n"
	 "VALUE is JSON if it parses as JSON, else a plain string."},
	{"get", cmd_get, "SCOPE COLLECTION KEY",
	 "Print the live fields of a record (--json adds their stamps)."},
	{"del", cmd_del, "SCOPE COLLECTION KEY", "Delete a record."},
	{"ls", cmd_ls,
	 "[SCOPE [COLLECTION [--prefix P] [--after KEY] [--limit N]]]",
	 "List a collection's keys, or the collections.\n"
	 "Without COLLECTION: each collection (of SCOPE) with its live\n"
	 "record count."},
	{"log", cmd_log, "[-n N] [--since CURSOR]",
	 "Show the newest N changes (default 20), or those after CURSOR."},
	{"status", cmd_status, "",
	 "Show identity, store, clock, collections, version vector and "
	 "peers."},
	{"digest", cmd_digest, "[--scope SCOPE]",
	 "Print the hash of the merged state (equal on converged nodes)."},
	{"vector", cmd_vector, "[-o FILE]",
	 "Write this node's version vector, for `export --since` elsewhere."},
	{"export", cmd_export,
	 "[--since VECTOR_FILE] [--scope SCOPE]... [-o FILE]",
	 "Write a bundle of the changes the vector lacks (all without it)."},
	{"import", cmd_import, "BUNDLE|-",
	 "Verify and apply a bundle, one atomic batch at a time."},
	{"verify", cmd_verify, "",
	 "Re-check every chain, signature and merged record."},
	{"conflicts", cmd_conflicts, "[SCOPE [COLLECTION [KEY]]]",
	 "List values that lost a merge, with both stamps and origins."},
	{"trust", cmd_trust,
	 "add PUBKEY --name NAME [--read SCOPES] [--write SCOPES]\n"
	 "       ferry trust ls\n"
	 "       ferry trust rm PUBKEY|NAME",
	 "Manage which peers may connect and what each may read and write.\n"
	 "SCOPES is a comma-separated list of patterns: '*' (every scope),\n"
	 "'P/*' (every scope below P/) or an exact scope name. Both default\n"
	 "to nothing."},
	{"peer", cmd_peer, "add URL | ls | rm URL",
	 "Manage the peers this node dials (ws://HOST:PORT or wss://...)."},
	{"apikey", cmd_apikey,
	 "create --name NAME [--read SCOPES] [--write SCOPES]\n"
	 "       ferry apikey ls\n"
	 "       ferry apikey revoke NAME|ID",
	 "Manage the API keys clients of the hub's HTTP side present.\n"
	 "create prints the key's token once: the node keeps only its hash.\n"
	 "SCOPES are patterns as for `trust`; both default to nothing.\n"
	 "ID is the 16-digit id `ls` shows, or a unique prefix of 8 or more."},
	{"adapter", cmd_adapter,
	 "status [NAME]\n"
	 "       ferry adapter dlq ls [NAME]\n"
	 "       ferry adapter dlq retry [NAME] ID\n"
	 "       ferry adapter dlq drop [NAME] ID\n"
	 "       ferry adapter reload [--wait-ms MS]\n"
	 "       ferry adapter check [FILE]",
	 "Show and steer the adapters of `ferry serve --adapters FILE`.\n"
	 "status: state, cursor, lag, errors and pulls per adapter.\n"
	 "dlq: list dead letters; retry one (its blocked successors follow)\n"
	 "or drop it. ID is the number `dlq ls` shows.\n"
	 "reload: have the serving process re-read its file; waits up to\n"
	 "--wait-ms (default 5000) for its answer.\n"
	 "check: validate FILE (default: the running one, else adapters.json\n"
	 "in the data directory) and that every secret it names is stored."},
	{"secret", cmd_secret,
	 "set NAME   (the value is read from stdin)\n"
	 "       ferry secret ls\n"
	 "       ferry secret rm NAME",
	 "Manage the credentials adapters use, encrypted with secret.key.\n"
	 "set reads the value from stdin (prompting without echo at a\n"
	 "terminal): 1 to 8192 bytes, one trailing newline dropped. ls shows\n"
	 "names and when each was set. No command ever prints a value.\n"
	 "NAME is 1 to 64 of A-Z a-z 0-9 _ . -"},
	{"serve", cmd_serve,
	 "[--listen ADDR:PORT | --no-listen] [--no-dial] "
	 "[--origins vouched|listed]\n"
	 "       [--http ADDR:PORT [--pricelist SCOPE] [--max-body BYTES]]\n"
	 "       [--adapters FILE]",
	 "Run the node: accept peers, keep configured peers connected,\n"
	 "sync continuously. Default listen address 0.0.0.0:7400.\n"
	 "--adapters FILE (default: adapters.json in the data directory\n"
	 "if present) mirrors scopes to HTTP APIs (docs/adapters.md).\n"
	 "SIGINT or SIGTERM stops it cleanly; SIGHUP reloads adapters."},
	{"sync", cmd_sync, "URL [--timeout SECONDS] [--origins vouched|listed]",
	 "Sync once with the node at URL (both ways) and exit."},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void print_help(FILE *out)
{
	fprintf(out,
		"usage: ferry [--dir DIR] [--json] COMMAND [ARGS]\n"
		"       ferry --help | --version\n\n"
		"ferry is a replicated embedded database; this command works "
		"on one node.\n\ncommands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++) {
		const char *nl = strchr(commands[i].summary, '\n');
		int len = nl ? (int)(nl - commands[i].summary)
			     : (int)strlen(commands[i].summary);
		fprintf(out, "  %-10s %.*s\n", commands[i].name, len,
			commands[i].summary);
	}
	fprintf(out,
		"\noptions (before or after the command):\n"
		"  --dir DIR   data directory (default: $FERRY_DIR, else "
		"$XDG_DATA_HOME/ferry,\n"
		"              else $HOME/.local/share/ferry)\n"
		"  --json      machine-readable output on stdout\n"
		"  --help      this text, or a command's usage after it\n"
		"  --version   print the version\n\n"
		"exit status: 0 ok, 1 usage error, 2 failure, 3 not found\n"
		"reference: docs/cli.md\n");
}

/* $FERRY_DIR, else $XDG_DATA_HOME/ferry, else $HOME/.local/share/ferry.
 * Returns a malloc'd path, or NULL if none of them is set. */
static char *default_dir(void)
{
	const char *env = getenv("FERRY_DIR");
	if (env && *env)
		return strdup(env);
	const char *base = getenv("XDG_DATA_HOME");
	const char *suffix = "/ferry";
	if (!base || !*base) {
		base = getenv("HOME");
		suffix = "/.local/share/ferry";
	}
	if (!base || !*base)
		return NULL;
	size_t len = strlen(base) + strlen(suffix) + 1;
	char *dir = malloc(len);
	if (dir)
		snprintf(dir, len, "%s%s", base, suffix);
	return dir;
}

static const struct cli_command *find_command(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{"json", no_argument, NULL, 'J'},
		{"dir", required_argument, NULL, 'D'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	struct cli cli = {0};
	int c;
	opterr = 0;
	/* '+': stop at the command name; the command parses the rest. */
	while ((c = getopt_long(argc, argv, "+h", options, NULL)) != -1) {
		switch (c) {
		case 'J':
			cli.json = 1;
			break;
		case 'D':
			cli.dir = optarg;
			break;
		case 'h':
			print_help(stdout);
			return CLI_EXIT_OK;
		case 'V':
			printf("ferry %s\n", FERRY_VERSION);
			return CLI_EXIT_OK;
		default:
			fprintf(stderr, "ferry: bad or incomplete option %s\n",
				argv[optind - 1]);
			print_help(stderr);
			return CLI_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "ferry: no command given\n");
		print_help(stderr);
		return CLI_EXIT_USAGE;
	}
	cli.command = find_command(argv[optind]);
	if (!cli.command) {
		fprintf(stderr, "ferry: unknown command '%s'\n", argv[optind]);
		print_help(stderr);
		return CLI_EXIT_USAGE;
	}

	int cmd_argc = argc - optind;
	char **cmd_argv = argv + optind;
	/* A new argument vector, and GNU option permutation for it, needs
	 * optind = 0 rather than 1 (getopt(3), NOTES). */
	optind = 0;
	char *env_dir = NULL;
	if (!cli.dir) {
		env_dir = default_dir();
		cli.dir = env_dir;
	}
	int rc = cli.command->run(&cli, cmd_argc, cmd_argv);
	cli_close(&cli);
	free(env_dir);
	return rc;
}
