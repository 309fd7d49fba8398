/*
 * scenario_adapter.c — `ferry-bench adapter`: an adapter's push (net/
 * adapter.c, net/adapter_push.c; docs/adapters.md) against a fast local
 * HTTP sink.
 *
 *   throughput: Debian's nginx answering 200 {"id":1} to everything with
 *               keep-alive (tests/adapters/nginx-sink.conf). A hub
 *               directory holds N records of three fields in the watched
 *               collection; the adapters' runtime is started in this
 *               process (adapters_start, as `ferry serve --adapters` does)
 *               and the clock runs until its stored cursor passes the last
 *               of them. Every change is a create (POST, 3-field body,
 *               id_from "/id", store_id on), so the adapter also commits
 *               the external id into each record (durable, batched every
 *               20 ms). Concurrency 1 and 8, each on a fresh directory.
 *               Set against a plain libcurl multi client POSTing the same
 *               bodies with the same headers to the same nginx, 1 and 8 in
 *               flight, in the same run: ferry's push as a share of what
 *               libcurl alone does on this machine now.
 *   lag:        a real hub (`ferry serve --adapters`) and a branch (`ferry
 *               serve` dialing it over ferry.v1). This process commits on
 *               the branch, one record per transaction at R writes/s for S
 *               seconds; each record carries its write time t (CLOCK_
 *               MONOTONIC µs, taken just before the branch's transaction),
 *               which the adapter (concurrency 1) sends in the body, and a
 *               small HTTP server thread here takes lag = receive time of
 *               the request - t. The branch's commits are not flushed (as
 *               fan-in's: on one shared disk they would compete with the
 *               hub's); the hub's are durable.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "../net/adapter.h"
#include "bench.h"

enum {
	AD_RAW1,
	AD_PUSH1,
	AD_RAW8,
	AD_PUSH8,
	AD_WRITES,
	AD_RATE,
	AD_P50,
	AD_P95,
	AD_P99,
	AD_MAX,
	AD_RATIO1,
	AD_RATIO8,
	AD_N
};

static const bench_metric metrics[AD_N] = {
	[AD_RAW1] = {"raw_curl_c1_per_s", "raw libcurl POST, 1 in flight",
		     "requests/s", BENCH_VALUE, 1},
	[AD_PUSH1] = {"push_c1_per_s", "push, concurrency 1", "requests/s",
		      BENCH_VALUE, 1},
	[AD_RAW8] = {"raw_curl_c8_per_s", "raw libcurl POST, 8 in flight",
		     "requests/s", BENCH_VALUE, 1},
	[AD_PUSH8] = {"push_c8_per_s", "push, concurrency 8", "requests/s",
		      BENCH_VALUE, 1},
	[AD_WRITES] = {"lag_writes", "writes on the branch", "writes",
		       BENCH_VALUE, 0},
	[AD_RATE] = {"lag_writes_per_s", "write rate achieved", "writes/s",
		     BENCH_VALUE, 0},
	[AD_P50] = {"lag_p50_ms", "branch write -> request p50", "ms",
		    BENCH_VALUE, 0},
	[AD_P95] = {"lag_p95_ms", "branch write -> request p95", "ms",
		    BENCH_VALUE, 0},
	[AD_P99] = {"lag_p99_ms", "branch write -> request p99", "ms",
		    BENCH_VALUE, 0},
	[AD_MAX] = {"lag_max_ms", "branch write -> request max", "ms",
		    BENCH_VALUE, 0},
	[AD_RATIO1] = {"push_c1_vs_raw_c1", "push c1 / raw libcurl c1", "x",
		       BENCH_RATIO, 0},
	[AD_RATIO8] = {"push_c8_vs_raw_c8", "push c8 / raw libcurl c8", "x",
		       BENCH_RATIO, 0},
};

#define ADAPTER "push"
#define SCOPE "bench"
#define COLLECTION "clients"
#define STORE_ID "ext_id"
#define SINK_CONNS 64

/* ------------------------------------------------------------------------ */
/* Records                                                                  */
/* ------------------------------------------------------------------------ */

static size_t pack_u64(uint8_t *out, uint64_t v)
{
	out[0] = 0xcf;
	for (int b = 0; b < 8; b++)
		out[1 + b] = (uint8_t)(v >> (56 - 8 * b));
	return 9;
}

/* Client i of the throughput set: its key (from the seed) and the three
 * fields the body template sends. */
typedef struct client {
	char key[BENCH_KEY_HEX + 1];
	char name[32], phone[32], email[64];
	uint8_t buf[160];
	ferry_field f[3];
} client;

static void client_at(client *c, uint64_t seed, uint64_t i)
{
	size_t at = 0, start[4];
	bench_record(seed, i, c->key, NULL, 0);
	snprintf(c->name, sizeof(c->name), "Client %" PRIu64, i);
	snprintf(c->phone, sizeof(c->phone), "+7 900 %07" PRIu64, i % 10000000);
	snprintf(c->email, sizeof(c->email),
		 "client%" PRIu64 "@example.invalid", i);
	start[0] = at;
	at += bench_pack_str(c->buf + at, c->name);
	start[1] = at;
	at += bench_pack_str(c->buf + at, c->phone);
	start[2] = at;
	at += bench_pack_str(c->buf + at, c->email);
	start[3] = at;
	static const char *const names[3] = {"name", "phone", "email"};
	for (int k = 0; k < 3; k++)
		c->f[k] = (ferry_field){names[k], c->buf + start[k],
					start[k + 1] - start[k]};
}

/* The body the adapter renders for client i, as compact JSON. */
static int client_body(char *out, size_t len, const client *c)
{
	return snprintf(out, len,
			"{\"name\":\"%s\",\"phone\":\"%s\",\"email\":\"%s\"}",
			c->name, c->phone, c->email);
}

static void fill_hub(const bench_opts *o, const char *dir, uint64_t *last)
{
	ferry_node *node = bench_open(dir);
	client c;
	for (uint64_t i = 0; i < o->n;) {
		ferry_txn *txn = NULL;
		if (ferry_txn_begin(&txn, node))
			bench_die("begin: %s", ferry_node_errmsg(node));
		for (uint64_t j = 0; j < o->txn && i < o->n; j++, i++) {
			client_at(&c, o->seed, i);
			if (ferry_txn_put(txn, SCOPE, COLLECTION, c.key, c.f,
					  3))
				bench_die("put: %s", ferry_node_errmsg(node));
		}
		if (ferry_txn_commit(txn))
			bench_die("commit: %s", ferry_node_errmsg(node));
	}
	*last = bench_last_cursor(node);
	ferry_node_close(node);
}

/* ------------------------------------------------------------------------ */
/* Configuration files                                                      */
/* ------------------------------------------------------------------------ */

static void write_config(const char *path, const char *base_url,
			 unsigned concurrency, const char *scope,
			 const char *collection, json_t *body)
{
	json_t *doc = json_pack(
		"{s:[{s:s, s:s, s:i, s:{s:[s], s:{s:{s:s, s:{s:s, s:s, s:o, "
		"s:s}}}}}]}",
		"adapters", "name", ADAPTER, "base_url", base_url,
		"concurrency", (int)concurrency, "push", "scopes", scope,
		"collections", collection, "store_id", STORE_ID, "create",
		"method", "POST", "url", "/records", "body", body, "id_from",
		"/id");
	if (!doc || json_dump_file(doc, path, JSON_INDENT(2)))
		bench_die("cannot write %s", path);
	json_decref(doc);
}

/* ------------------------------------------------------------------------ */
/* Ports and the nginx sink                                                 */
/* ------------------------------------------------------------------------ */

/* A listening socket on 127.0.0.1 (port 0: any); its port in *port. */
static int listen_on(int port_in, int *port)
{
	struct sockaddr_in sa = {0};
	socklen_t len = sizeof(sa);
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)port_in);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 128) ||
	    getsockname(fd, (struct sockaddr *)&sa, &len))
		bench_die("listen on 127.0.0.1: %s", strerror(errno));
	*port = ntohs(sa.sin_port);
	return fd;
}

static int can_connect(int port)
{
	struct sockaddr_in sa = {0};
	int fd = socket(AF_INET, SOCK_STREAM, 0), ok;
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)port);
	ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	long len;
	if (!f || fseek(f, 0, SEEK_END) || (len = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) || !(buf = malloc((size_t)len + 1)) ||
	    fread(buf, 1, (size_t)len, f) != (size_t)len)
		bench_die("cannot read %s", path);
	buf[len] = 0;
	fclose(f);
	return buf;
}

/* tests/adapters/nginx-sink.conf with @DIR@ and @PORT@ filled in: the
 * integration tests' sink, byte for byte. */
static void write_nginx_conf(const char *out_path, const char *dir, int port)
{
	char tmpl_path[BENCH_PATH], port_s[16];
	bench_path(tmpl_path, "%s/../../tests/adapters/nginx-sink.conf",
		   FERRY_PEERS_DIR);
	char *text = read_text(tmpl_path);
	FILE *f = fopen(out_path, "w");
	if (!f)
		bench_die("cannot write %s", out_path);
	snprintf(port_s, sizeof(port_s), "%d", port);
	for (const char *p = text; *p;) {
		if (!strncmp(p, "@DIR@", 5)) {
			fputs(dir, f);
			p += 5;
		} else if (!strncmp(p, "@PORT@", 6)) {
			fputs(port_s, f);
			p += 6;
		} else {
			fputc(*p++, f);
		}
	}
	if (fclose(f))
		bench_die("cannot write %s", out_path);
	free(text);
}

static pid_t nginx_start(const char *dir, int *port)
{
	char conf[BENCH_PATH], err_log[BENCH_PATH], out[BENCH_PATH],
		prefix[BENCH_PATH];
	const char *nginx = getenv("NGINX");
	nginx = nginx && *nginx ? nginx : "/usr/sbin/nginx";
	/* A port nobody holds now; nginx binds it a moment later. */
	close(listen_on(0, port));
	bench_path(prefix, "%s/", dir);
	bench_path(conf, "%s/nginx.conf", dir);
	bench_path(err_log, "%s/error.log", dir);
	bench_path(out, "%s/nginx.out", dir);
	write_nginx_conf(conf, dir, *port);
	const char *argv[] = {nginx, "-p", prefix,  "-c",
			      conf,  "-e", err_log, NULL};
	pid_t pid = bench_spawn(argv, out, NULL);
	for (double t0 = bench_now(); bench_now() - t0 < 10;
	     bench_sleep(0.02)) {
		if (can_connect(*port))
			return pid;
		if (waitpid(pid, NULL, WNOHANG) == pid)
			break;
	}
	bench_die("nginx did not answer on 127.0.0.1:%d (see %s, %s)", *port,
		  out, err_log);
}

/* ------------------------------------------------------------------------ */
/* The raw libcurl baseline                                                 */
/* ------------------------------------------------------------------------ */

static size_t discard(char *data, size_t size, size_t n, void *arg)
{
	(void)data;
	(void)arg;
	return size * n;
}

typedef struct raw_slot {
	CURL *easy;
	struct curl_slist *headers;
	char body[192];
} raw_slot;

/* Set slot up for client i: the adapter's headers (Content-Type, an
 * Idempotency-Key of 32 hex digits, no Expect) and its body. */
static void raw_prepare(raw_slot *s, const char *url, uint64_t seed, uint64_t i)
{
	client c;
	char idem[64];
	client_at(&c, seed, i);
	client_body(s->body, sizeof(s->body), &c);
	snprintf(idem, sizeof(idem), "Idempotency-Key: %s", c.key);
	curl_slist_free_all(s->headers);
	s->headers = curl_slist_append(NULL, "Expect:");
	s->headers =
		curl_slist_append(s->headers, "Content-Type: application/json");
	s->headers = curl_slist_append(s->headers, idem);
	if (!s->headers)
		bench_die("out of memory");
	curl_easy_setopt(s->easy, CURLOPT_URL, url);
	curl_easy_setopt(s->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->headers);
	curl_easy_setopt(s->easy, CURLOPT_USERAGENT, "ferry-bench");
	curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, s->body);
	curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(s->body));
	curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s);
}

/* n POSTs of the throughput set's bodies, `conc` in flight, each slot
 * keeping its easy handle (and so its keep-alive connection); seconds. */
static double raw_curl(const char *url, uint64_t seed, uint64_t n,
		       unsigned conc)
{
	CURLM *multi = curl_multi_init();
	raw_slot *slots = calloc(conc, sizeof(*slots));
	uint64_t started = 0, done = 0;
	if (!multi || !slots)
		bench_die("out of memory");
	double t0 = bench_now();
	for (unsigned k = 0; k < conc && started < n; k++) {
		if (!(slots[k].easy = curl_easy_init()))
			bench_die("out of memory");
		raw_prepare(&slots[k], url, seed, started++);
		curl_multi_add_handle(multi, slots[k].easy);
	}
	while (done < n) {
		int running, left;
		CURLMsg *msg;
		if (curl_multi_perform(multi, &running) != CURLM_OK)
			bench_die("curl_multi_perform failed");
		while ((msg = curl_multi_info_read(multi, &left))) {
			raw_slot *s = NULL;
			long status = 0;
			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
					  (char **)&s);
			curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE,
					  &status);
			if (msg->data.result != CURLE_OK || status != 200)
				bench_die("raw POST %s: %s, HTTP %ld", url,
					  curl_easy_strerror(msg->data.result),
					  status);
			done++;
			curl_multi_remove_handle(multi, s->easy);
			if (started < n) {
				raw_prepare(s, url, seed, started++);
				curl_multi_add_handle(multi, s->easy);
			}
		}
		if (done < n)
			curl_multi_poll(multi, NULL, 0, 1000, NULL);
	}
	double seconds = bench_now() - t0;
	for (unsigned k = 0; k < conc; k++) {
		if (slots[k].easy)
			curl_easy_cleanup(slots[k].easy);
		curl_slist_free_all(slots[k].headers);
	}
	free(slots);
	curl_multi_cleanup(multi);
	return seconds;
}

/* ------------------------------------------------------------------------ */
/* The push, in this process                                                */
/* ------------------------------------------------------------------------ */

static void log_line(int level, const char *line, void *payload)
{
	static const char *const names[] = {"error", "warn", "info"};
	fprintf(payload, "%s: %s\n", names[level < 0 || level > 2 ? 0 : level],
		line);
	fflush(payload);
}

/* An integer member of the JSON object at (table, key); -1 if absent. */
static int64_t kv_int(ferry_node *node, const char *table, const char *key,
		      const char *member)
{
	void *v = NULL;
	size_t len = 0;
	int64_t out = -1;
	if (ferry_kv_get(&v, &len, node, table, key))
		return -1;
	json_t *doc = json_loadb(v, len, 0, NULL);
	json_t *m = json_object_get(doc, member);
	if (json_is_integer(m))
		out = json_integer_value(m);
	json_decref(doc);
	free(v);
	return out;
}

/* Every record of the set holds its written-back external id. */
static int all_written_back(ferry_node *node, const bench_opts *o)
{
	client c;
	for (uint64_t i = 0; i < o->n; i++) {
		ferry_record *rec = NULL;
		client_at(&c, o->seed, i);
		if (ferry_get(&rec, node, SCOPE, COLLECTION, c.key))
			return 0;
		int has = ferry_record_find(rec, STORE_ID) != NULL;
		ferry_record_free(rec);
		if (!has)
			return 0;
	}
	return 1;
}

/* Fill a hub directory, push it all at `conc`; requests/s, NAN (and
 * *ok = 0) if not everything was delivered. */
static double push_run(const bench_opts *o, const char *dir, int nginx_port,
		       unsigned conc, int *ok)
{
	char hub[BENCH_PATH], cfg[BENCH_PATH], log[BENCH_PATH], url[64],
		why[1024], table[64];
	uint64_t last;
	adapters *a = NULL;
	bench_path(hub, "%s/hub-c%u", dir, conc);
	bench_path(cfg, "%s/adapters-c%u.json", dir, conc);
	bench_path(log, "%s/hub-c%u.adapter.log", dir, conc);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", nginx_port);
	snprintf(table, sizeof(table), "adapter.%s", ADAPTER);
	write_config(cfg, url, conc, SCOPE, COLLECTION,
		     json_pack("{s:s, s:s, s:s}", "name", "{name}", "phone",
			       "{phone}", "email", "{email}"));
	bench_note("push: filling a hub with %" PRIu64 " records", o->n);
	fill_hub(o, hub, &last);

	FILE *lf = fopen(log, "w");
	if (!lf)
		bench_die("cannot write %s", log);
	ferry_node *node = bench_open(hub);
	bench_note("push: %" PRIu64 " creates to nginx, concurrency %u", o->n,
		   conc);
	double t0 = bench_now(), seconds = NAN;
	ferry_err err =
		adapters_start(&a, node, cfg, log_line, lf, why, sizeof(why));
	if (err)
		bench_die("adapters_start: %s: %s", ferry_strerror(err), why);
	/* The cursor is stored with each batch (every 20 ms) and passes a
	 * change only once it is delivered. */
	double limit = 60 + (double)o->n / 200;
	while (bench_now() - t0 < limit) {
		int64_t cursor = kv_int(node, table, "cursor", "cursor");
		if (cursor >= 0 && (uint64_t)cursor >= last) {
			seconds = bench_now() - t0;
			break;
		}
		bench_sleep(0.001);
	}
	adapters_stop(a);
	fclose(lf);
	int64_t delivered =
		kv_int(node, "adapter.status", ADAPTER, "delivered");
	int64_t dead = kv_int(node, "adapter.status", ADAPTER, "dead_letters");
	int written_back = all_written_back(node, o);
	ferry_node_close(node);
	*ok = !isnan(seconds) && delivered == (int64_t)o->n && dead == 0 &&
	      written_back;
	if (!*ok) {
		bench_note("push c%u: %s; delivered %" PRId64 " of %" PRIu64
			   ", %" PRId64 " dead letters, ids %swritten back "
			   "(see %s)",
			   conc, isnan(seconds) ? "timed out" : "incomplete",
			   delivered, o->n, dead, written_back ? "" : "not ",
			   log);
		return NAN;
	}
	return (double)o->n / seconds;
}

/* ------------------------------------------------------------------------ */
/* The lag sink: a small HTTP/1.1 server thread                             */
/* ------------------------------------------------------------------------ */

typedef struct sink_conn {
	int fd;
	char *buf;
	size_t len, cap;
} sink_conn;

typedef struct lag_sink {
	int lfd, port;
	pthread_t thread;
	atomic_int stop;
	pthread_mutex_t lock; /* guards what follows */
	size_t cap;	      /* write indexes 0..cap-1; 0 is the warm-up */
	double *sent_s, *arrived_s; /* per index; arrived 0 = not yet */
	uint64_t seen, dup, bad;
} lag_sink;

static const char sink_reply[] = "HTTP/1.1 200 OK\r\n"
				 "Content-Type: application/json\r\n"
				 "Content-Length: 8\r\n"
				 "\r\n"
				 "{\"id\":1}";

static void sink_record(lag_sink *s, const char *body, size_t len,
			double arrived)
{
	json_t *doc = json_loadb(body, len, 0, NULL);
	json_t *i = json_object_get(doc, "i"), *t = json_object_get(doc, "t");
	pthread_mutex_lock(&s->lock);
	if (!json_is_integer(i) || !json_is_integer(t) ||
	    json_integer_value(i) < 0 ||
	    (size_t)json_integer_value(i) >= s->cap) {
		s->bad++;
	} else {
		size_t k = (size_t)json_integer_value(i);
		if (s->arrived_s[k] != 0) {
			s->dup++;
		} else {
			s->arrived_s[k] = arrived;
			s->sent_s[k] = (double)json_integer_value(t) / 1e6;
			s->seen++;
		}
	}
	pthread_mutex_unlock(&s->lock);
	json_decref(doc);
}

/* Content-Length of the header block head[0..len), or 0. */
static size_t content_length(const char *head, size_t len)
{
	for (size_t at = 0; at < len;) {
		const char *eol = memchr(head + at, '\n', len - at);
		size_t line = (eol ? (size_t)(eol - head) : len) - at;
		if (line > 15 && !strncasecmp(head + at, "Content-Length:", 15))
			return strtoul(head + at + 15, NULL, 10);
		at += line + 1;
	}
	return 0;
}

/* Read what is there and answer every complete request; -1: closed. */
static int sink_read(lag_sink *s, sink_conn *c)
{
	if (c->cap - c->len < 4096) {
		c->cap = c->cap ? 2 * c->cap : 16384;
		if (!(c->buf = realloc(c->buf, c->cap)))
			bench_die("out of memory");
	}
	ssize_t got = read(c->fd, c->buf + c->len, c->cap - c->len);
	if (got <= 0)
		return got < 0 && errno == EINTR ? 0 : -1;
	c->len += (size_t)got;
	for (;;) {
		size_t head = 0;
		for (size_t i = 3; i < c->len && !head; i++)
			if (!memcmp(c->buf + i - 3, "\r\n\r\n", 4))
				head = i + 1;
		if (!head)
			return 0;
		size_t body = content_length(c->buf, head);
		if (c->len < head + body)
			return 0;
		sink_record(s, c->buf + head, body, bench_now());
		for (size_t off = 0; off < sizeof(sink_reply) - 1;) {
			ssize_t w = write(c->fd, sink_reply + off,
					  sizeof(sink_reply) - 1 - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				return -1;
			off += (size_t)w;
		}
		memmove(c->buf, c->buf + head + body, c->len - head - body);
		c->len -= head + body;
	}
}

static void *sink_main(void *arg)
{
	lag_sink *s = arg;
	sink_conn conns[SINK_CONNS];
	struct pollfd pf[SINK_CONNS + 1];
	size_t n = 0;
	while (!atomic_load(&s->stop)) {
		pf[0] = (struct pollfd){s->lfd, POLLIN, 0};
		for (size_t k = 0; k < n; k++)
			pf[k + 1] = (struct pollfd){conns[k].fd, POLLIN, 0};
		if (poll(pf, n + 1, 50) <= 0)
			continue;
		for (size_t k = n; k-- > 0;) {
			if (!pf[k + 1].revents || sink_read(s, &conns[k]) == 0)
				continue;
			close(conns[k].fd);
			free(conns[k].buf);
			conns[k] = conns[--n];
		}
		if (pf[0].revents & POLLIN) {
			int one = 1, fd = accept(s->lfd, NULL, NULL);
			if (fd >= 0 && n == SINK_CONNS) {
				close(fd);
			} else if (fd >= 0) {
				setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
					   sizeof(one));
				conns[n++] = (sink_conn){fd, NULL, 0, 0};
			}
		}
	}
	for (size_t k = 0; k < n; k++) {
		close(conns[k].fd);
		free(conns[k].buf);
	}
	return NULL;
}

static void sink_start(lag_sink *s, size_t cap)
{
	memset(s, 0, sizeof(*s));
	s->cap = cap;
	s->sent_s = calloc(cap, sizeof(double));
	s->arrived_s = calloc(cap, sizeof(double));
	if (!s->sent_s || !s->arrived_s)
		bench_die("out of memory");
	s->lfd = listen_on(0, &s->port);
	pthread_mutex_init(&s->lock, NULL);
	atomic_init(&s->stop, 0);
	if (pthread_create(&s->thread, NULL, sink_main, s))
		bench_die("cannot start the sink thread");
}

/* Stop the thread; what it recorded stays readable until sink_free(). */
static void sink_stop(lag_sink *s)
{
	atomic_store(&s->stop, 1);
	pthread_join(s->thread, NULL);
	close(s->lfd);
	pthread_mutex_destroy(&s->lock);
}

static void sink_free(lag_sink *s)
{
	free(s->sent_s);
	free(s->arrived_s);
}

static uint64_t sink_seen(lag_sink *s, size_t from)
{
	uint64_t seen = 0;
	pthread_mutex_lock(&s->lock);
	for (size_t k = from; k < s->cap; k++)
		seen += s->arrived_s[k] != 0;
	pthread_mutex_unlock(&s->lock);
	return seen;
}

/* ------------------------------------------------------------------------ */
/* Lag: branch -> hub (ferry.v1) -> adapter -> sink                         */
/* ------------------------------------------------------------------------ */

static void lag_write(ferry_node *w, uint64_t i)
{
	char key[32];
	uint8_t buf[64];
	size_t at = 0, start[4];
	ferry_field f[3];
	ferry_txn *txn = NULL;
	uint64_t t_us = (uint64_t)(bench_now() * 1e6);
	snprintf(key, sizeof(key), "w-%08" PRIu64, i);
	start[0] = at;
	at += pack_u64(buf + at, i);
	start[1] = at;
	at += pack_u64(buf + at, t_us);
	start[2] = at;
	at += bench_pack_str(buf + at, key);
	start[3] = at;
	static const char *const names[3] = {"i", "t", "name"};
	for (int k = 0; k < 3; k++)
		f[k] = (ferry_field){names[k], buf + start[k],
				     start[k + 1] - start[k]};
	if (ferry_txn_begin(&txn, w) ||
	    ferry_txn_put(txn, "lag", "records", key, f, 3) ||
	    ferry_txn_commit(txn))
		bench_die("write on the branch: %s", ferry_node_errmsg(w));
}

static void lag_run(const bench_opts *o, const char *dir, bench_run *out)
{
	char hub[BENCH_PATH], branch[BENCH_PATH], cfg[BENCH_PATH], listen[256],
		url[64];
	size_t cap = (size_t)(o->rate * o->seconds) + 16;
	lag_sink s;
	sink_start(&s, cap);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", s.port);

	bench_path(hub, "%s/hub", dir);
	bench_path(branch, "%s/branch", dir);
	bench_path(cfg, "%s/adapters-lag.json", dir);
	write_config(cfg, url, 1, "lag", "records",
		     json_pack("{s:s, s:s, s:s}", "i", "{i}", "t", "{t}",
			       "name", "{name}"));
	ferry_node_close(bench_open(hub));
	ferry_node_close(bench_open(branch));
	pid_t hub_pid = bench_serve(o, hub, listen, sizeof(listen), NULL, 0,
				    "serve", "--listen", "127.0.0.1:0",
				    "--no-dial", "--adapters", cfg, NULL);
	bench_pair(o, branch, hub, listen, "*");
	pid_t branch_pid = bench_serve(o, branch, NULL, 0, NULL, 0, "serve",
				       "--no-listen", NULL);
	ferry_node *w = bench_open_unsynced(branch);

	/* Write 0 warms the path up (the branch connected, the adapter's
	 * connection open): lag measures steady state, not dialing. */
	lag_write(w, 0);
	double t0 = bench_now();
	while (sink_seen(&s, 0) == 0) {
		if (bench_now() - t0 > 60)
			bench_die("no request reached the sink in 60 s (see "
				  "%s.log, %s.log)",
				  hub, branch);
		bench_sleep(0.01);
	}

	bench_note("lag: %.0f writes/s for %.0f s on the branch", o->rate,
		   o->seconds);
	uint64_t written = 0;
	double start = bench_now(), next = start;
	for (;;) {
		double now = bench_now();
		if (now - start >= o->seconds || written + 2 >= cap)
			break;
		if (now < next) {
			bench_sleep(next - now < 0.0005 ? next - now : 0.0005);
			continue;
		}
		lag_write(w, ++written);
		next += 1.0 / o->rate;
	}
	double wrote_s = bench_now() - start;
	for (double t1 = bench_now(); bench_now() - t1 < 30; bench_sleep(0.005))
		if (sink_seen(&s, 1) >= written)
			break;
	ferry_node_close(w);
	bench_stop(branch_pid);
	bench_stop(hub_pid);
	sink_stop(&s);

	double *lags = malloc((written + 1) * sizeof(double));
	size_t nl = 0;
	if (!lags)
		bench_die("out of memory");
	for (size_t k = 1; k <= written; k++) {
		if (s.arrived_s[k] == 0)
			continue;
		double lag = (s.arrived_s[k] - s.sent_s[k]) * 1000.0;
		lags[nl++] = lag;
		bench_series_add(&out->lag, s.arrived_s[k] - start, lag);
	}
	if (nl < written || s.dup || s.bad)
		bench_note("lag: %zu of %" PRIu64 " writes reached the sink, "
			   "%" PRIu64 " twice, %" PRIu64 " unreadable",
			   nl, written, s.dup, s.bad);
	out->converged &= nl == written && s.bad == 0;
	bench_sort(lags, nl);
	out->v[AD_WRITES] = (double)written;
	out->v[AD_RATE] = (double)written / wrote_s;
	out->v[AD_P50] = bench_pct(lags, nl, 50);
	out->v[AD_P95] = bench_pct(lags, nl, 95);
	out->v[AD_P99] = bench_pct(lags, nl, 99);
	out->v[AD_MAX] = bench_pct(lags, nl, 100);
	free(lags);
	sink_free(&s);
}

/* ------------------------------------------------------------------------ */
/* The scenario                                                             */
/* ------------------------------------------------------------------------ */

static void run(const bench_opts *o, unsigned r, const char *dir,
		bench_run *out)
{
	char ngx[BENCH_PATH], url[80];
	int port, ok1, ok8;
	(void)r;
	out->converged = 1;

	bench_path(ngx, "%s/nginx", dir);
	if (mkdir(ngx, 0700))
		bench_die("mkdir %s: %s", ngx, strerror(errno));
	pid_t nginx = nginx_start(ngx, &port);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/records", port);

	/* Side by side, baseline first each time. */
	bench_note("raw libcurl: %" PRIu64 " POSTs, 1 in flight", o->n);
	double raw1 = raw_curl(url, o->seed, o->n, 1);
	double push1 = push_run(o, dir, port, 1, &ok1);
	bench_note("raw libcurl: %" PRIu64 " POSTs, 8 in flight", o->n);
	double raw8 = raw_curl(url, o->seed, o->n, 8);
	double push8 = push_run(o, dir, port, 8, &ok8);
	bench_stop(nginx);
	out->converged = ok1 && ok8;

	out->v[AD_RAW1] = (double)o->n / raw1;
	out->v[AD_PUSH1] = push1;
	out->v[AD_RAW8] = (double)o->n / raw8;
	out->v[AD_PUSH8] = push8;
	out->v[AD_RATIO1] = push1 / out->v[AD_RAW1];
	out->v[AD_RATIO8] = push8 / out->v[AD_RAW8];

	lag_run(o, dir, out);
}

const bench_scenario bench_scenario_adapter = {
	"adapter",
	"an adapter's push to a local HTTP sink: requests/s and lag",
	BENCH_OPT_N | BENCH_OPT_RATE | BENCH_OPT_SECONDS,
	metrics,
	AD_N,
	1,
	NULL,
	run,
	"throughput: N creates (POST, 3-field body) to Debian nginx "
	"answering 200 with keep-alive, the adapters' runtime in this "
	"process; each create also commits the external id into its record "
	"(store_id: one durable LMDB commit per 20 ms batch). Raw libcurl: "
	"the same POSTs, no store. Lag: this process writes on a branch "
	"(`ferry serve`, commits not flushed) that syncs to a hub (`ferry "
	"serve --adapters`, concurrency 1) over ferry.v1; lag = the sink "
	"thread's receive time - the write time carried in the body.",
};
