/*
 * cmd_secret.c — `secret`: the credentials adapters use (net/secret.h),
 * encrypted at rest under the data directory's secret.key. `set` reads a
 * value from stdin (without echo at a terminal), `ls` shows names and
 * when each was set, `rm` deletes one. Nothing here ever prints a value:
 * there is deliberately no `get`.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "cli.h"
#include "ferry_json.h"
#include "secret.h"

#define NAME_RULE                                                              \
	"NAME must be 1 to 64 bytes of letters, digits, '_', '.' and '-'"

/* Room for the largest value, a "\r\n" to drop, and one byte more to
 * notice input that is too long without reading all of it. */
#define INPUT_BYTES (SECRET_VALUE_MAX + 3)

/* ------------------------------------------------------------------------ */
/* Reading the value                                                        */
/* ------------------------------------------------------------------------ */

/* The terminal's settings while echo is off, for the signal handler to
 * put back: a Ctrl-C at the prompt must not leave the shell blind. */
static struct termios saved_tty;
static const int restore_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
#define NSIGNALS (sizeof(restore_signals) / sizeof(restore_signals[0]))

static void restore_tty_and_die(int sig)
{
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Read up to `cap` bytes from stdin into `buf`, stopping at end of input
 * or, when `line`, after the first newline. Returns the length, or -1 on
 * a read error (errno set). read(2) rather than stdio, so no copy of the
 * value is left in a stdio buffer we cannot wipe. */
static ssize_t read_input(unsigned char *buf, size_t cap, int line)
{
	size_t len = 0;
	while (len < cap) {
		ssize_t n = read(STDIN_FILENO, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		len += (size_t)n;
		if (line && memchr(buf + len - n, '\n', (size_t)n))
			break;
	}
	return (ssize_t)len;
}

/* At a terminal: prompt on stderr and read one line with echo off. */
static ssize_t read_hidden(unsigned char *buf, size_t cap, const char *name)
{
	if (tcgetattr(STDIN_FILENO, &saved_tty) != 0)
		return read_input(buf, cap, 1);
	struct sigaction act = {0}, old[NSIGNALS];
	act.sa_handler = restore_tty_and_die;
	sigemptyset(&act.sa_mask);
	for (size_t i = 0; i < NSIGNALS; i++)
		sigaction(restore_signals[i], &act, &old[i]);
	struct termios quiet = saved_tty;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
	fprintf(stderr,
		"value for secret %s (input hidden, Enter ends it): ", name);
	fflush(stderr);
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	ssize_t len = read_input(buf, cap, 1);
	int saved = errno;
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
	for (size_t i = 0; i < NSIGNALS; i++)
		sigaction(restore_signals[i], &old[i], NULL);
	/* The Enter the user typed was not echoed. */
	fputc('\n', stderr);
	errno = saved;
	return len;
}

/* The value for `name` from stdin into `buf` (INPUT_BYTES), its length
 * in *len with one trailing newline dropped. Returns CLI_EXIT_OK or,
 * after reporting, CLI_EXIT_FAILED. */
static int read_value(unsigned char *buf, size_t *len, const char *name)
{
	int tty = isatty(STDIN_FILENO);
	ssize_t n = tty ? read_hidden(buf, INPUT_BYTES, name)
			: read_input(buf, INPUT_BYTES, 0);
	if (n < 0)
		return cli_fail_msg("pipe or redirect the value into `ferry "
				    "secret set NAME`",
				    "cannot read the value for secret %s from "
				    "stdin: %s",
				    name, strerror(errno));
	*len = secret_value_trim(buf, (size_t)n);
	if ((size_t)n == INPUT_BYTES || *len > SECRET_VALUE_MAX)
		return cli_fail_msg("a secret holds at most 8192 bytes (one "
				    "trailing newline is not counted); nothing "
				    "was stored",
				    "the value for secret %s is too long",
				    name);
	if (*len == 0)
		return cli_fail_msg(tty ? "type the value at the prompt"
					: "pipe or redirect the value into "
					  "`ferry secret set NAME`, e.g. "
					  "< token.txt",
				    "the value for secret %s is empty; nothing "
				    "was stored",
				    name);
	return CLI_EXIT_OK;
}

/* ------------------------------------------------------------------------ */
/* secret.key problems                                                      */
/* ------------------------------------------------------------------------ */

/* secret_set() says only FERRY_E_KEY_FILE; look at the file to say what
 * is wrong with it and what to do. */
static int key_file_fail(struct cli *cli, const char *name)
{
	char path[4200], hint[4400];
	snprintf(path, sizeof(path), "%s/secret.key",
		 ferry_node_dir(cli->node));
	struct stat st;
	if (lstat(path, &st) != 0) {
		snprintf(hint, sizeof(hint),
			 "check the permissions of %s and the data directory",
			 path);
		return cli_fail_msg(hint,
				    "cannot store secret %s: cannot read %s: "
				    "%s",
				    name, path, strerror(errno));
	}
	if (!S_ISREG(st.st_mode))
		return cli_fail_msg(
			"secret.key must be a plain file (not a link), 32 "
			"bytes, readable by its owner only; put the original "
			"back",
			"cannot store secret %s: %s is not a regular file",
			name, path);
	if (st.st_mode & 077) {
		snprintf(hint, sizeof(hint),
			 "chmod 600 %s (the key decrypts every secret: only "
			 "its owner may read it)",
			 path);
		return cli_fail_msg(hint,
				    "cannot store secret %s: %s is readable by "
				    "group or others (mode %03o)",
				    name, path, (unsigned)(st.st_mode & 0777));
	}
	if (st.st_size != 32)
		return cli_fail_msg(
			"restore secret.key from its backup; without it the "
			"stored secrets cannot be opened (if you have no "
			"backup, remove it and set every secret again)",
			"cannot store secret %s: %s is %lld bytes, not the "
			"32 of a key",
			name, path, (long long)st.st_size);
	snprintf(hint, sizeof(hint),
		 "%s must be readable by the user running ferry", path);
	return cli_fail_msg(hint, "cannot store secret %s: cannot read %s",
			    name, path);
}

/* ------------------------------------------------------------------------ */
/* Subcommands                                                              */
/* ------------------------------------------------------------------------ */

static int check_name(struct cli *cli, const char *name)
{
	if (!secret_name_valid(name))
		return cli_usage(cli, NAME_RULE);
	return CLI_EXIT_OK;
}

/* secret_list() callback finding one name's set time. */
struct find_time {
	const char *name;
	uint64_t set_ms;
};

static int find_time_cb(const char *name, uint64_t set_ms, void *arg)
{
	struct find_time *f = arg;
	if (strcmp(name, f->name) != 0)
		return 0;
	f->set_ms = set_ms;
	return 1;
}

/* "set": an ISO time, or null when the record does not say. */
static json_t *time_json(uint64_t ms)
{
	char when[FERRY_JSON_TIME_BYTES];
	if (ms == 0)
		return json_null();
	ferry_json_time(when, ms);
	return json_string(when);
}

static int secret_store(struct cli *cli, char **args, int nargs)
{
	if (nargs != 1)
		return cli_usage(cli, "set takes one NAME (the value is read "
				      "from stdin)");
	const char *name = args[0];
	int rc = check_name(cli, name);
	if (!rc)
		rc = cli_open(cli, 0);
	if (rc)
		return rc;
	if (sodium_init() < 0)
		return cli_fail(cli, FERRY_E_NOMEM, NULL,
				"cannot start libsodium");

	unsigned char value[INPUT_BYTES];
	size_t len = 0;
	rc = read_value(value, &len, name);
	ferry_err err = rc ? FERRY_OK : secret_set(cli->node, name, value, len);
	sodium_memzero(value, sizeof(value));
	if (rc)
		return rc;
	if (err == FERRY_E_KEY_FILE)
		return key_file_fail(cli, name);
	if (err == FERRY_E_IO)
		return cli_fail_msg("check that the data directory is "
				    "writable and has free space",
				    "cannot store secret %s: cannot create "
				    "%s/secret.key",
				    name, ferry_node_dir(cli->node));
	if (err)
		return cli_fail(cli, err, NULL, "cannot store secret %s", name);

	struct find_time f = {.name = name};
	secret_list(cli->node, find_time_cb, &f);
	if (cli->json)
		return cli_print_json(json_pack("{s:s, s:o}", "name", name,
						"set", time_json(f.set_ms)));
	printf("stored secret %s (encrypted with %s/secret.key)\n", name,
	       ferry_node_dir(cli->node));
	return CLI_EXIT_OK;
}

/* secret_list() callback: append {"name", "set"} to the array `arg` (a
 * JSON null element marks "out of memory"). */
static int collect(const char *name, uint64_t set_ms, void *arg)
{
	json_t *item =
		json_pack("{s:s, s:o}", "name", name, "set", time_json(set_ms));
	if (!item) {
		json_array_append_new(arg, json_null());
		return 1;
	}
	return json_array_append_new(arg, item) != 0;
}

static int secret_ls(struct cli *cli, int nargs)
{
	if (nargs != 0)
		return cli_usage(cli, "ls takes no arguments");
	int rc = cli_open(cli, 0);
	if (rc)
		return rc;
	json_t *list = json_array();
	if (!list)
		return cli_print_json(NULL);
	ferry_err err = secret_list(cli->node, collect, list);
	if (err) {
		json_decref(list);
		return cli_fail(cli, err, NULL, "cannot list the secrets");
	}
	size_t i, n = json_array_size(list);
	json_t *item;
	int width = 4; /* NAME */
	json_array_foreach(list, i, item)
	{
		if (json_is_null(item)) {
			json_decref(list);
			return cli_print_json(NULL);
		}
		int len =
			(int)json_string_length(json_object_get(item, "name"));
		if (len > width)
			width = len;
	}
	if (cli->json)
		return cli_print_json(list);
	if (n == 0) {
		printf("no secrets (store one with `ferry secret set NAME`, "
		       "the value on stdin)\n");
		json_decref(list);
		return CLI_EXIT_OK;
	}
	printf("%-*s  %s\n", width, "NAME", "SET");
	json_array_foreach(list, i, item)
	{
		const char *set =
			json_string_value(json_object_get(item, "set"));
		printf("%-*s  %s\n", width,
		       json_string_value(json_object_get(item, "name")),
		       set ? set : "- (record damaged: set it again)");
	}
	json_decref(list);
	return CLI_EXIT_OK;
}

static int secret_rm(struct cli *cli, char **args, int nargs)
{
	if (nargs != 1)
		return cli_usage(cli, "rm takes one NAME");
	const char *name = args[0];
	int rc = check_name(cli, name);
	if (!rc)
		rc = cli_open(cli, 0);
	if (rc)
		return rc;
	ferry_err err = secret_delete(cli->node, name);
	if (err == FERRY_E_NOT_FOUND)
		return cli_fail_msg("see `ferry secret ls` for the stored "
				    "names",
				    "no secret named %s", name);
	if (err)
		return cli_fail(cli, err, NULL, "cannot remove secret %s",
				name);
	if (cli->json)
		return cli_print_json(
			json_pack("{s:s, s:b}", "name", name, "removed", 1));
	printf("removed secret %s\n", name);
	return CLI_EXIT_OK;
}

int cmd_secret(struct cli *cli, int argc, char **argv)
{
	int first = cli_operands(cli, argc, argv);
	if (first >= argc)
		return cli_usage(cli, "needs a subcommand: set, ls or rm");
	const char *sub = argv[first];
	char **args = argv + first + 1;
	int nargs = argc - first - 1;
	if (strcmp(sub, "set") == 0)
		return secret_store(cli, args, nargs);
	if (strcmp(sub, "ls") == 0)
		return secret_ls(cli, nargs);
	if (strcmp(sub, "rm") == 0)
		return secret_rm(cli, args, nargs);
	return cli_usage(cli, "unknown subcommand '%s' (set, ls or rm)", sub);
}
