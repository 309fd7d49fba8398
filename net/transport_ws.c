/*
 * transport_ws.c — transport.h over libwebsockets; the only file in ferry
 * that includes libwebsockets.h.
 *
 * lws rules this file keeps (see DEPENDENCY-NOTES.md): write only from the
 * WRITEABLE callback, one lws_write per callback, LWS_PRE bytes of headroom
 * before the payload, and never reuse a buffer after a client-role write
 * (it is masked in place) — each write copies the message into the
 * connection's own buffer first.
 */
#include "transport.h"

#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUBPROTOCOL "ferry.v1"
/* lws delivers large messages in pieces of this size; 64 KiB measured
 * best for 1 MiB messages (DEPENDENCY-NOTES.md). */
#define RX_BUFFER_BYTES 65536

struct transport_conn {
	transport *t;
	struct lws *wsi;
	void *ctx;	/* the owner's, from opened() */
	void *dial_ctx; /* ours until opened */
	int opened;
	int in_connect;	 /* inside lws_client_connect_via_info() */
	int dial_failed; /* dial_failed() already reported */
	uint8_t *rx;
	size_t rx_len, rx_cap;
	uint8_t *tx;
	size_t tx_cap;
	int closing;
	unsigned close_code;
	char close_reason[124];
	char peer[96];
	char url[256]; /* lws_parse_uri cuts it up: keep it alive */
	transport_conn *next;
};

struct transport {
	struct lws_context *ctx;
	transport_handler h;
	size_t max_message;
	uint32_t tick_ms;
	lws_sorted_usec_list_t sul_tick;
	char address[96];
	transport_conn *conns;
};

static transport_conn *conn_new(transport *t)
{
	transport_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->t = t;
	c->next = t->conns;
	t->conns = c;
	return c;
}

static void conn_free(transport_conn *c)
{
	transport_conn **p = &c->t->conns;
	while (*p && *p != c)
		p = &(*p)->next;
	if (*p)
		*p = c->next;
	if (c->wsi)
		lws_set_opaque_user_data(c->wsi, NULL);
	free(c->rx);
	free(c->tx);
	free(c);
}

static void fail_dial(transport_conn *c, const char *why)
{
	transport *t = c->t;
	if (c->dial_failed)
		return;
	c->dial_failed = 1;
	t->h.dial_failed(c->dial_ctx, why, t->h.payload);
}

/* Append a fragment; deliver the message when it is whole. */
static int receive(transport_conn *c, struct lws *wsi, const void *in,
		   size_t len)
{
	transport *t = c->t;
	if (c->closing)
		return 0;
	if (c->rx_len == 0 && !lws_frame_is_binary(wsi)) {
		transport_close(c, 4002, "ferry.v1 frames are binary messages");
		return 0;
	}
	if (len > t->max_message - c->rx_len) {
		transport_close(c, 4006, "message exceeds max_frame");
		return 0;
	}
	if (c->rx_len + len > c->rx_cap) {
		size_t cap = c->rx_cap ? c->rx_cap : 4096;
		while (cap < c->rx_len + len)
			cap *= 2;
		if (cap > t->max_message)
			cap = t->max_message;
		uint8_t *grown = realloc(c->rx, cap);
		if (!grown)
			return -1;
		c->rx = grown;
		c->rx_cap = cap;
	}
	memcpy(c->rx + c->rx_len, in, len);
	c->rx_len += len;
	if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
		size_t n = c->rx_len;
		c->rx_len = 0;
		t->h.message(c, c->ctx, c->rx, n);
	}
	return 0;
}

static int writeable(transport_conn *c, struct lws *wsi)
{
	transport *t = c->t;
	const uint8_t *msg;
	size_t len;
	if (t->h.writable(c, c->ctx, &msg, &len)) {
		if (LWS_PRE + len > c->tx_cap) {
			uint8_t *grown = realloc(c->tx, LWS_PRE + len);
			if (!grown)
				return -1;
			c->tx = grown;
			c->tx_cap = LWS_PRE + len;
		}
		memcpy(c->tx + LWS_PRE, msg, len);
		if (lws_write(wsi, c->tx + LWS_PRE, len, LWS_WRITE_BINARY) <
		    (int)len)
			return -1;
		lws_callback_on_writable(wsi);
		return 0;
	}
	if (c->closing) {
		lws_close_reason(wsi, (enum lws_close_status)c->close_code,
				 (unsigned char *)c->close_reason,
				 strlen(c->close_reason));
		return -1;
	}
	return 0;
}

static int subprotocol_ok(struct lws *wsi)
{
	char proto[128];
	int n = lws_hdr_copy(wsi, proto, sizeof(proto), WSI_TOKEN_PROTOCOL);
	if (n <= 0)
		return 0;
	/* The header may list several: "ferry.v1, other". */
	for (char *tok = strtok(proto, ", "); tok; tok = strtok(NULL, ", "))
		if (!strcmp(tok, SUBPROTOCOL))
			return 1;
	return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason,
		    void *user, void *in, size_t len)
{
	transport *t = lws_context_user(lws_get_context(wsi));
	transport_conn *c = lws_get_opaque_user_data(wsi);
	(void)user;

	switch (reason) {
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		return subprotocol_ok(wsi) ? 0 : 1;
	case LWS_CALLBACK_ESTABLISHED:
		c = conn_new(t);
		if (!c)
			return -1;
		c->wsi = wsi;
		lws_set_opaque_user_data(wsi, c);
		lws_get_peer_simple(wsi, c->peer, sizeof(c->peer));
		c->ctx = t->h.opened(c, NULL, t->h.payload);
		if (!c->ctx) {
			conn_free(c);
			return -1;
		}
		c->opened = 1;
		lws_callback_on_writable(wsi);
		return 0;
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		if (!c)
			return -1;
		c->wsi = wsi;
		c->ctx = t->h.opened(c, c->dial_ctx, t->h.payload);
		if (!c->ctx) {
			conn_free(c);
			return -1;
		}
		c->opened = 1;
		lws_callback_on_writable(wsi);
		return 0;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		if (c) {
			fail_dial(c, in && len ? (const char *)in
					       : "connection failed");
			if (!c->in_connect)
				conn_free(c);
		}
		return 0;
	case LWS_CALLBACK_RECEIVE:
	case LWS_CALLBACK_CLIENT_RECEIVE:
		return c ? receive(c, wsi, in, len) : 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		return c ? writeable(c, wsi) : 0;
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		if (c && len >= 2) {
			const uint8_t *p = in;
			size_t n = len - 2 < sizeof(c->close_reason) - 1
					   ? len - 2
					   : sizeof(c->close_reason) - 1;
			c->close_code = (unsigned)(p[0] << 8 | p[1]);
			memcpy(c->close_reason, p + 2, n);
			c->close_reason[n] = '\0';
		}
		return 0;
	case LWS_CALLBACK_CLOSED:
	case LWS_CALLBACK_CLIENT_CLOSED:
		if (c) {
			if (c->opened)
				t->h.closed(c, c->ctx,
					    c->close_code ? c->close_code
							  : 1006,
					    c->close_reason);
			else
				fail_dial(c, "connection closed during the "
					     "WebSocket handshake");
			conn_free(c);
		}
		return 0;
	default:
		return 0;
	}
}

static const struct lws_protocols protocols[] = {
	{SUBPROTOCOL, callback, 0, RX_BUFFER_BYTES, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};

static void on_tick(lws_sorted_usec_list_t *sul)
{
	transport *t = lws_container_of(sul, transport, sul_tick);
	t->h.tick(t->h.payload);
	lws_sul_schedule(t->ctx, 0, &t->sul_tick, on_tick,
			 (lws_usec_t)t->tick_ms * LWS_US_PER_MS);
}

/* "ADDR:PORT" -> address and port. */
static int split_address(const char *s, char *addr, size_t addr_len, int *port)
{
	const char *colon = strrchr(s, ':');
	char *end;
	long p;
	if (!colon || (size_t)(colon - s) >= addr_len || colon == s)
		return -1;
	p = strtol(colon + 1, &end, 10);
	if (*end || end == colon + 1 || p < 0 || p > 65535)
		return -1;
	memcpy(addr, s, (size_t)(colon - s));
	addr[colon - s] = '\0';
	*port = (int)p;
	return 0;
}

ferry_err transport_new(transport **out, const char *listen, size_t max_message,
			uint32_t tick_ms, const transport_handler *h,
			char *detail, size_t detail_len)
{
	struct lws_context_creation_info info;
	char addr[64] = "";
	int port = CONTEXT_PORT_NO_LISTEN;
	transport *t;

	*out = NULL;
	if (listen && *listen &&
	    split_address(listen, addr, sizeof(addr), &port)) {
		snprintf(detail, detail_len,
			 "listen address %s is not ADDR:PORT", listen);
		return FERRY_E_INVALID;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return FERRY_E_NOMEM;
	t->h = *h;
	t->max_message = max_message;
	t->tick_ms = tick_ms ? tick_ms : 5;
	lws_set_log_level(LLL_ERR, NULL);
	memset(&info, 0, sizeof(info));
	info.port = port;
	info.iface = addr[0] ? addr : NULL;
	info.protocols = protocols;
	info.user = t;
	info.gid = -1;
	info.uid = -1;
	info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	t->ctx = lws_create_context(&info);
	if (!t->ctx) {
		snprintf(detail, detail_len,
			 "cannot listen on %s (address in use, or not an "
			 "address of this machine)",
			 listen && *listen ? listen : "(none)");
		free(t);
		return FERRY_E_NETWORK;
	}
	if (port != CONTEXT_PORT_NO_LISTEN) {
		struct lws_vhost *vh = lws_get_vhost_by_name(t->ctx, "default");
		int bound = vh ? lws_get_vhost_listen_port(vh) : port;
		snprintf(t->address, sizeof(t->address), "%s:%d",
			 addr[0] ? addr : "0.0.0.0", bound);
	}
	lws_sul_schedule(t->ctx, 0, &t->sul_tick, on_tick,
			 (lws_usec_t)t->tick_ms * LWS_US_PER_MS);
	*out = t;
	return FERRY_OK;
}

const char *transport_address(const transport *t)
{
	return t->address;
}

ferry_err transport_dial(transport *t, const char *url, void *dial_ctx,
			 char *detail, size_t detail_len)
{
	struct lws_client_connect_info i;
	const char *scheme, *host, *path;
	char fullpath[200];
	int port = 0;
	transport_conn *c;
	struct lws *wsi;

	c = conn_new(t);
	if (!c)
		return FERRY_E_NOMEM;
	c->dial_ctx = dial_ctx;
	snprintf(c->url, sizeof(c->url), "%s", url);
	if (strlen(url) >= sizeof(c->url) ||
	    lws_parse_uri(c->url, &scheme, &host, &port, &path) ||
	    (strcmp(scheme, "ws") && strcmp(scheme, "wss")) || !*host) {
		conn_free(c);
		snprintf(detail, detail_len,
			 "%s is not a ws://HOST:PORT or wss://HOST:PORT URL",
			 url);
		return FERRY_E_INVALID;
	}
	snprintf(fullpath, sizeof(fullpath), "/%s", path);
	snprintf(c->peer, sizeof(c->peer), "%s:%d", host, port);
	memset(&i, 0, sizeof(i));
	i.context = t->ctx;
	i.address = host;
	i.port = port;
	i.path = fullpath;
	i.host = host;
	i.origin = host;
	i.protocol = SUBPROTOCOL;
	i.local_protocol_name = SUBPROTOCOL;
	i.ssl_connection = strcmp(scheme, "wss") ? 0 : LCCSCF_USE_SSL;
	i.opaque_user_data = c;
	c->in_connect = 1;
	wsi = lws_client_connect_via_info(&i);
	c->in_connect = 0;
	if (!wsi) {
		/* lws may or may not have reported the error already. */
		fail_dial(c, "connection failed");
		conn_free(c);
	}
	return FERRY_OK;
}

void transport_want_write(transport_conn *c)
{
	if (c->wsi)
		lws_callback_on_writable(c->wsi);
}

void transport_close(transport_conn *c, unsigned code, const char *reason)
{
	if (c->closing)
		return;
	c->closing = 1;
	c->close_code = code;
	snprintf(c->close_reason, sizeof(c->close_reason), "%s",
		 reason ? reason : "");
	transport_want_write(c);
}

const char *transport_peer_address(const transport_conn *c)
{
	return c->peer;
}

void transport_service(transport *t)
{
	lws_service(t->ctx, 0);
}

void transport_wake(transport *t)
{
	lws_cancel_service(t->ctx);
}

void transport_free(transport *t)
{
	if (!t)
		return;
	lws_sul_cancel(&t->sul_tick);
	/* Destroying the context closes every connection; the owner hears
	 * about each through closed(). */
	lws_context_destroy(t->ctx);
	while (t->conns)
		conn_free(t->conns);
	free(t);
}
