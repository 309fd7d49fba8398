/*
 * ws_raw.c — the wire's limit for ferry-bench: libwebsockets alone moving
 * bytes over loopback, server to client (as a full sync moves data from
 * the listening node to the dialing one), in ~1 MiB binary messages.
 *
 * Two lws contexts, each serviced by its own thread (the lws loop is
 * single-threaded; ferry's two nodes are two processes), so sender and
 * receiver each get a core as the nodes do. The sending protocol's
 * rx_buffer_size is 64 KiB: lws's default cuts sends into ~4 KiB pieces
 * (DEPENDENCY-NOTES.md).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "bench.h"

#define MSG_BYTES (1024 * 1024)

typedef struct ws_state {
	uint64_t total, sent, received;
	double start, end;
	atomic_int server_done, client_done, failed;
	unsigned char *buf; /* LWS_PRE + MSG_BYTES */
} ws_state;

static int server_cb(struct lws *wsi, enum lws_callback_reasons reason,
		     void *user, void *in, size_t len)
{
	ws_state *st = lws_context_user(lws_get_context(wsi));
	(void)user;
	(void)in;
	(void)len;
	switch (reason) {
	case LWS_CALLBACK_ESTABLISHED:
		lws_callback_on_writable(wsi);
		break;
	case LWS_CALLBACK_SERVER_WRITEABLE: {
		uint64_t left = st->total - st->sent;
		size_t n = left < MSG_BYTES ? (size_t)left : MSG_BYTES;
		if (!n)
			break;
		if (lws_write(wsi, st->buf + LWS_PRE, n, LWS_WRITE_BINARY) <
		    (int)n) {
			atomic_store(&st->failed, 1);
			return -1;
		}
		st->sent += n;
		if (st->sent < st->total)
			lws_callback_on_writable(wsi);
		break;
	}
	default:
		break;
	}
	return 0;
}

static int client_cb(struct lws *wsi, enum lws_callback_reasons reason,
		     void *user, void *in, size_t len)
{
	ws_state *st = lws_context_user(lws_get_context(wsi));
	(void)user;
	(void)in;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		st->start = bench_now();
		break;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		st->received += len;
		if (st->received >= st->total) {
			st->end = bench_now();
			atomic_store(&st->client_done, 1);
			return -1; /* close: we have it all */
		}
		break;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
	case LWS_CALLBACK_CLIENT_CLOSED:
		if (!atomic_load(&st->client_done))
			atomic_store(&st->failed, 1);
		break;
	default:
		break;
	}
	return 0;
}

static const struct lws_protocols server_protocols[] = {
	{"bench-raw", server_cb, 0, 65536, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0}, /* terminator */
};

static const struct lws_protocols client_protocols[] = {
	{"bench-raw", client_cb, 0, 65536, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0}, /* terminator */
};

static void *serve_thread(void *arg)
{
	struct lws_context *ctx = arg;
	ws_state *st = lws_context_user(ctx);
	while (!atomic_load(&st->server_done))
		lws_service(ctx, 0);
	return NULL;
}

double bench_ws_raw(uint64_t bytes)
{
	struct lws_context_creation_info info;
	struct lws_client_connect_info cc;
	ws_state st = {0};
	pthread_t th;
	char origin[64];

	st.total = bytes ? bytes : 1;
	st.buf = calloc(1, LWS_PRE + MSG_BYTES);
	if (!st.buf)
		bench_die("out of memory");
	memset(st.buf + LWS_PRE, 0x5a, MSG_BYTES);
	lws_set_log_level(LLL_ERR, NULL);

	memset(&info, 0, sizeof(info));
	info.port = 0; /* any free port; read back below */
	info.iface = "127.0.0.1";
	info.protocols = server_protocols;
	info.user = &st;
	info.gid = -1;
	info.uid = -1;
	struct lws_context *server = lws_create_context(&info);
	if (!server)
		bench_die("raw WebSocket: cannot create the server");
	int port = lws_get_vhost_listen_port(
		lws_get_vhost_by_name(server, "default"));

	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = client_protocols;
	info.user = &st;
	info.gid = -1;
	info.uid = -1;
	struct lws_context *client = lws_create_context(&info);
	if (!client)
		bench_die("raw WebSocket: cannot create the client");

	if (pthread_create(&th, NULL, serve_thread, server))
		bench_die("raw WebSocket: cannot start a thread");
	snprintf(origin, sizeof(origin), "127.0.0.1:%d", port);
	memset(&cc, 0, sizeof(cc));
	cc.context = client;
	cc.address = "127.0.0.1";
	cc.port = port;
	cc.path = "/";
	cc.host = origin;
	cc.origin = origin;
	cc.protocol = "bench-raw";
	if (!lws_client_connect_via_info(&cc))
		bench_die("raw WebSocket: cannot connect to 127.0.0.1:%d",
			  port);
	double t0 = bench_now();
	while (!atomic_load(&st.client_done) && !atomic_load(&st.failed) &&
	       bench_now() - t0 < 600)
		lws_service(client, 0);

	atomic_store(&st.server_done, 1);
	lws_cancel_service(server);
	pthread_join(th, NULL);
	lws_context_destroy(client);
	lws_context_destroy(server);
	free(st.buf);
	if (!atomic_load(&st.client_done))
		bench_die("raw WebSocket: received %llu of %llu bytes",
			  (unsigned long long)st.received,
			  (unsigned long long)st.total);
	return st.end - st.start;
}
