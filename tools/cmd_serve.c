/*
 * cmd_serve.c — `ferry serve` (run the node on the network) and
 * `ferry sync URL` (one-shot sync with a peer), on ferry_net.h.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "ferry_net.h"

#define DEFAULT_LISTEN "0.0.0.0:7400"

static ferry_net *running;

static void on_signal(int sig)
{
	if (!running)
		return;
	if (sig == SIGHUP)
		ferry_net_reload_adapters(running);
	else
		ferry_net_stop(running);
}

/* --adapters, else adapters.json in the data directory if it exists. */
static char *adapters_file(struct cli *cli, const char *given)
{
	size_t len = strlen(cli->dir) + sizeof("/adapters.json");
	char *path;
	if (given)
		return strdup(given);
	if (!(path = malloc(len)))
		return NULL;
	snprintf(path, len, "%s/adapters.json", cli->dir);
	if (access(path, F_OK) == 0)
		return path;
	free(path);
	return NULL;
}

static void log_line(int level, const char *line, void *payload)
{
	static const char *const names[] = {"error", "warn", "info"};
	char when[32];
	time_t now = time(NULL);
	struct tm tm;
	(void)payload;
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(stderr, "%s %s: %s\n", when, names[level], line);
}

static int parse_policy(struct cli *cli, const char *text,
			ferry_origin_policy *out)
{
	if (!strcmp(text, "vouched"))
		*out = FERRY_ORIGINS_VOUCHED;
	else if (!strcmp(text, "listed"))
		*out = FERRY_ORIGINS_LISTED;
	else
		return cli_usage(
			cli, "--origins takes vouched or listed, not %s", text);
	return CLI_EXIT_OK;
}

static void print_welcome(struct cli *cli, ferry_net *net)
{
	char id[FERRY_ID_HEX_BYTES];
	const char *addr = ferry_net_address(net);
	const char *port = strrchr(addr, ':');
	ferry_id_to_hex(id, ferry_node_id(cli->node));
	if (cli->json) {
		json_t *doc = json_pack("{s:s, s:s, s:s, s:s}", "id", id, "dir",
					cli->dir, "listen", addr, "http",
					ferry_net_http_address(net));
		cli_print_json_line(doc);
		fflush(stdout);
		return;
	}
	printf("ferry node %s\n", id);
	printf("data      %s\n", cli->dir);
	if (*addr)
		printf("listening ws://%s (subprotocol ferry.v1)\n", addr);
	else
		printf("not listening (dialing configured peers only)\n");
	if (*ferry_net_http_address(net))
		printf("http      http://%s/ (status page: append "
		       "#key=YOUR-API-KEY; JSON API: docs/rest-api.md)\n",
		       ferry_net_http_address(net));
	printf("\nto connect a second node:\n"
	       "  there:  ferry trust add %s --name THIS-NODE --read '*' "
	       "--write '*'\n"
	       "          ferry peer add ws://THIS-HOST%s\n"
	       "  here:   ferry trust add THAT-NODE-ID --name THAT-NODE "
	       "--read '*' --write '*'\n"
	       "  (narrow --read/--write to scopes, e.g. "
	       "--read 'clinic-7,pricelist' --write clinic-7)\n\n",
	       id, port ? port : ":7400");
	fflush(stdout);
}

int cmd_serve(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
		{"listen", required_argument, NULL, 'l'},
		{"no-listen", no_argument, NULL, 'L'},
		{"no-dial", no_argument, NULL, 'N'},
		{"origins", required_argument, NULL, 'o'},
		{"heartbeat-ms", required_argument, NULL, 'H'},
		{"http", required_argument, NULL, 'T'},
		{"pricelist", required_argument, NULL, 'P'},
		{"max-body", required_argument, NULL, 'B'},
		{"adapters", required_argument, NULL, 'A'},
		CLI_COMMON_OPTIONS,
	};
	ferry_net_options opts = FERRY_NET_OPTIONS_INIT;
	const char *listen = DEFAULT_LISTEN, *adapters = NULL;
	char *adapters_path;
	uint64_t max_body = 0;
	struct sigaction sa;
	char *detail = NULL;
	uint64_t heartbeat = 0;
	ferry_net *net;
	ferry_err err;
	int opt, rc;

	while ((opt = cli_next_option(cli, argc, argv, "", longopts)) != -1) {
		switch (opt) {
		case 'l':
			listen = optarg;
			break;
		case 'L':
			listen = NULL;
			break;
		case 'N':
			opts.no_dial = 1;
			break;
		case 'o':
			rc = parse_policy(cli, optarg, &opts.origin_policy);
			if (rc)
				return rc;
			break;
		case 'H':
			rc = cli_parse_u64(cli, "--heartbeat-ms", optarg,
					   &heartbeat);
			if (rc)
				return rc;
			if (heartbeat < 100 || heartbeat > 600000)
				return cli_usage(cli, "--heartbeat-ms must be "
						      "100..600000");
			opts.heartbeat_ms = (uint32_t)heartbeat;
			break;
		case 'T':
			opts.http_listen = optarg;
			break;
		case 'P':
			opts.pricelist_scope = optarg;
			break;
		case 'B':
			rc = cli_parse_u64(cli, "--max-body", optarg,
					   &max_body);
			if (rc)
				return rc;
			if (max_body < 1024 || max_body > (UINT64_C(1) << 30))
				return cli_usage(cli, "--max-body must be "
						      "1024..1073741824");
			opts.http_max_body = (size_t)max_body;
			break;
		case 'A':
			adapters = optarg;
			break;
		}
	}
	if (optind != argc)
		return cli_usage(cli, "unexpected argument %s", argv[optind]);
	rc = cli_open(cli, 1);
	if (rc)
		return rc;
	opts.listen = listen;
	opts.log = log_line;
	adapters_path = adapters_file(cli, adapters);
	opts.adapters_path = adapters_path;
	err = ferry_net_start(&net, cli->node, &opts, &detail);
	free(adapters_path);
	if (err && detail && !strncmp(detail, "adapters: ", 10)) {
		rc = cli_fail_msg("fix the file (ferry adapter check FILE "
				  "tells the same), then start again",
				  "%s", detail);
		free(detail);
		return rc;
	}
	if (err) {
		rc = cli_fail_msg("pick another address with --listen "
				  "ADDR:PORT, or stop the process using it",
				  "cannot start the node on the network: %s",
				  detail ? detail : ferry_strerror(err));
		free(detail);
		return rc;
	}
	print_welcome(cli, net);
	running = net;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	err = ferry_net_run(net);
	running = NULL;
	ferry_net_free(net);
	log_line(FERRY_LOG_INFO, "stopped", NULL);
	return err ? cli_fail(cli, err, NULL, "serving") : CLI_EXIT_OK;
}

/* A progress bar on a terminal, a line a second otherwise. */
static void show_progress(const ferry_sync_progress *p, void *payload)
{
	static double last_line = -1;
	int tty = *(const int *)payload;
	uint64_t total =
		p->sent + p->received + p->pending_send + p->pending_recv;
	uint64_t done = p->sent + p->received;
	if (tty) {
		int width = 30, fill = total ? (int)(width * done / total) : 0;
		char bar[31];
		memset(bar, '=', (size_t)fill);
		memset(bar + fill, ' ', (size_t)(width - fill));
		bar[width] = '\0';
		fprintf(stderr,
			"\r[%s] sent %llu, received %llu, waiting %llu/%llu  ",
			bar, (unsigned long long)p->sent,
			(unsigned long long)p->received,
			(unsigned long long)p->pending_send,
			(unsigned long long)p->pending_recv);
	} else if (p->seconds - last_line >= 1.0) {
		last_line = p->seconds;
		fprintf(stderr,
			"sync: %.1f s: sent %llu, received %llu, waiting "
			"%llu to send, %llu to receive\n",
			p->seconds, (unsigned long long)p->sent,
			(unsigned long long)p->received,
			(unsigned long long)p->pending_send,
			(unsigned long long)p->pending_recv);
	}
}

int cmd_sync(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
		{"timeout", required_argument, NULL, 't'},
		{"origins", required_argument, NULL, 'o'},
		CLI_COMMON_OPTIONS,
	};
	ferry_net_options opts = FERRY_NET_OPTIONS_INIT;
	ferry_sync_progress report;
	uint64_t timeout_s = 30;
	char *detail = NULL;
	int opt, rc, tty = isatty(STDERR_FILENO);
	ferry_err err;

	while ((opt = cli_next_option(cli, argc, argv, "", longopts)) != -1) {
		if (opt == 't') {
			rc = cli_parse_u64(cli, "--timeout", optarg,
					   &timeout_s);
			if (rc)
				return rc;
			if (!timeout_s || timeout_s > 86400)
				return cli_usage(cli,
						 "--timeout must be 1..86400");
		} else if (opt == 'o') {
			rc = parse_policy(cli, optarg, &opts.origin_policy);
			if (rc)
				return rc;
		}
	}
	if (argc - optind != 1)
		return cli_usage(cli, "expected one URL");
	rc = cli_open(cli, 0);
	if (rc)
		return rc;
	opts.log = log_line;
	signal(SIGPIPE, SIG_IGN);
	err = ferry_net_sync_once(&report, cli->node, argv[optind], &opts,
				  (uint32_t)(timeout_s * 1000), show_progress,
				  &tty, &detail);
	if (tty)
		fputc('\n', stderr);
	if (err) {
		const char *hint =
			err == FERRY_E_UNTRUSTED
				? "each node must list the other: ferry trust "
				  "add ID --name NAME --read SCOPES --write "
				  "SCOPES (ferry id prints a node's id)"
			: err == FERRY_E_NETWORK
				? "is the other node running `ferry serve`, "
				  "and "
				  "is the URL right (ws://HOST:PORT)?"
				: NULL;
		rc = cli_fail_msg(hint, "sync with %s failed: %s: %s",
				  argv[optind], ferry_strerror(err),
				  detail ? detail : "");
		free(detail);
		return rc;
	}
	free(detail);
	if (cli->json)
		return cli_print_json(
			json_pack("{s:s, s:I, s:I, s:f}", "url", argv[optind],
				  "sent", (json_int_t)report.sent, "received",
				  (json_int_t)report.received, "seconds",
				  report.seconds));
	printf("synced with %s: sent %llu, received %llu changes in %.2f s\n",
	       argv[optind], (unsigned long long)report.sent,
	       (unsigned long long)report.received, report.seconds);
	return CLI_EXIT_OK;
}
