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

static int split_address(const char *s, char *addr, size_t addr_len, int *port);

/* One HTTP request/response on a (possibly kept-alive) connection. */
struct http_exchange {
	transport *t;
	struct lws *wsi;
	char method[8];
	char *path;
	char **args;
	size_t nargs;
	uint8_t *body;
	size_t body_len, body_cap, body_expected;
	int handed; /* the handler has it */
	/* What the handler sees: it may keep the pointer until it responds
	 * (a long poll), so it lives here, not on the stack. */
	http_request req;
	char peer[96];
	int aborted;
	void (*on_abort)(void *ctx);
	void *abort_ctx;
	/* The response, once http_respond() ran. */
	int responded;
	int status;
	char content_type[64];
	char *headers;
	uint8_t *out; /* LWS_PRE + body */
	size_t out_len, out_sent;
	int header_sent;
};

struct transport {
	struct lws_context *ctx;
	transport_handler h;
	struct lws_vhost *http_vhost;
	http_handler http;
	void *http_payload;
	size_t max_body;
	char http_address[96];
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

/* ------------------------------------------------------------------------ */
/* HTTP                                                                     */
/* ------------------------------------------------------------------------ */

/* Response bodies go out in pieces of this size, one per WRITEABLE. */
#define HTTP_CHUNK_BYTES 65536

static void exchange_free(http_exchange *x)
{
	if (!x)
		return;
	if (x->wsi)
		lws_set_opaque_user_data(x->wsi, NULL);
	for (size_t i = 0; i < x->nargs; i++)
		free(x->args[i]);
	free(x->args);
	free(x->path);
	free(x->body);
	free(x->headers);
	free(x->out);
	free(x);
}

static const struct {
	enum lws_token_indexes token;
	const char *name;
} http_methods[] = {
	{WSI_TOKEN_GET_URI, "GET"},	    {WSI_TOKEN_POST_URI, "POST"},
	{WSI_TOKEN_PUT_URI, "PUT"},	    {WSI_TOKEN_PATCH_URI, "PATCH"},
	{WSI_TOKEN_DELETE_URI, "DELETE"},   {WSI_TOKEN_HEAD_URI, "HEAD"},
	{WSI_TOKEN_OPTIONS_URI, "OPTIONS"},
};

static int read_args(http_exchange *x)
{
	char frag[2048];
	int n;
	for (int i = 0;
	     lws_hdr_fragment_length(x->wsi, WSI_TOKEN_HTTP_URI_ARGS, i) > 0;
	     i++) {
		char **grown;
		/* Too many or too long: refused, never silently dropped. */
		if (i >= 64 ||
		    (n = lws_hdr_copy_fragment(x->wsi, frag, sizeof(frag),
					       WSI_TOKEN_HTTP_URI_ARGS, i)) < 0)
			return -1;
		grown = realloc(x->args, (x->nargs + 1) * sizeof(*grown));
		if (!grown)
			return -1;
		x->args = grown;
		x->args[x->nargs] = strdup(frag);
		if (!x->args[x->nargs])
			return -1;
		x->nargs++;
	}
	return 0;
}

/* A response the transport itself gives (bad request, too large). */
static void respond_plain(http_exchange *x, int status, const char *code,
			  const char *message)
{
	char body[300];
	int n = snprintf(body, sizeof(body),
			 "{\"error\": {\"code\": \"%s\", \"message\": \"%s\"}}",
			 code, message);
	http_respond(x, status, "application/json", body, (size_t)n, NULL);
}

static void hand_over(http_exchange *x)
{
	lws_get_peer_simple(x->wsi, x->peer, sizeof(x->peer));
	x->req.method = x->method;
	x->req.path = x->path;
	x->req.args = (const char *const *)x->args;
	x->req.nargs = x->nargs;
	x->req.body = x->body;
	x->req.body_len = x->body_len;
	x->req.peer = x->peer;
	x->handed = 1;
	x->t->http(x, &x->req, x->t->http_payload);
}

static int http_begin(transport *t, struct lws *wsi, const char *uri)
{
	http_exchange *x = calloc(1, sizeof(*x));
	char len_text[32];
	int has_length, chunked;
	if (!x)
		return -1;
	x->t = t;
	x->wsi = wsi;
	lws_set_opaque_user_data(wsi, x);
	x->path = strdup(uri ? uri : "/");
	snprintf(x->method, sizeof(x->method), "?");
	for (size_t i = 0; i < sizeof(http_methods) / sizeof(http_methods[0]);
	     i++)
		if (lws_hdr_total_length(wsi, http_methods[i].token)) {
			snprintf(x->method, sizeof(x->method), "%s",
				 http_methods[i].name);
			break;
		}
	if (!x->path || read_args(x)) {
		respond_plain(x, 400, "bad_request",
			      "too many or too long query arguments");
		return 0;
	}
	has_length = lws_hdr_copy(wsi, len_text, sizeof(len_text),
				  WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0;
	if (has_length)
		x->body_expected = strtoull(len_text, NULL, 10);
	chunked =
		lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0;
	/* lws 4.1 does not decode chunked request bodies: say so rather than
	 * wait for a body that never completes. */
	if (chunked) {
		respond_plain(x, 411, "length_required",
			      "send the body with a Content-Length header; "
			      "chunked request bodies are not supported");
		return 0;
	}
	if (x->body_expected > t->max_body) {
		char msg[120];
		snprintf(msg, sizeof(msg),
			 "request body of %zu bytes exceeds the limit of %zu",
			 x->body_expected, t->max_body);
		respond_plain(x, 413, "too_large", msg);
		return 0;
	}
	/* Without a body (no length, or length 0, and not chunked) the
	 * request is whole now; lws delivers any body through HTTP_BODY and
	 * HTTP_BODY_COMPLETION, and sends no completion for an empty one. */
	if (!x->body_expected && !chunked)
		hand_over(x);
	return 0;
}

static int http_body(http_exchange *x, const void *in, size_t len)
{
	if (x->responded)
		return 0; /* already refused: drain */
	if (!len)
		return 0;
	if (len > x->t->max_body - x->body_len) {
		respond_plain(x, 413, "too_large",
			      "request body exceeds the configured limit");
		return 0;
	}
	if (x->body_len + len > x->body_cap) {
		size_t cap = x->body_cap ? x->body_cap : 4096;
		while (cap < x->body_len + len)
			cap *= 2;
		uint8_t *grown = realloc(x->body, cap);
		if (!grown)
			return -1;
		x->body = grown;
		x->body_cap = cap;
	}
	memcpy(x->body + x->body_len, in, len);
	x->body_len += len;
	return 0;
}

static int http_write(http_exchange *x)
{
	struct lws *wsi = x->wsi;
	if (!x->responded)
		return 0;
	if (!x->header_sent) {
		uint8_t buf[LWS_PRE + 2048], *start = buf + LWS_PRE, *p = start,
					     *end = buf + sizeof(buf) - 1;
		if (lws_add_http_common_headers(wsi, (unsigned int)x->status,
						x->content_type, x->out_len, &p,
						end))
			return -1;
		if (x->headers) {
			size_t n = strlen(x->headers);
			if ((size_t)(end - p) < n)
				return -1;
			memcpy(p, x->headers, n);
			p += n;
		}
		if (lws_finalize_write_http_header(wsi, start, &p, end))
			return -1;
		x->header_sent = 1;
		if (x->out_len) {
			lws_callback_on_writable(wsi);
			return 0;
		}
	} else {
		size_t n = x->out_len - x->out_sent;
		int final = n <= HTTP_CHUNK_BYTES;
		if (!final)
			n = HTTP_CHUNK_BYTES;
		/* lws needs LWS_PRE bytes before each piece it writes. */
		if (lws_write(wsi, x->out + LWS_PRE + x->out_sent, n,
			      final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) <
		    (int)n)
			return -1;
		if (!final) {
			/* The next piece's LWS_PRE headroom is body already
			 * sent, which lws may now scribble on. */
			x->out_sent += n;
			lws_callback_on_writable(wsi);
			return 0;
		}
	}
	exchange_free(x);
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int http_callback(struct lws *wsi, enum lws_callback_reasons reason,
			 void *user, void *in, size_t len)
{
	transport *t = lws_context_user(lws_get_context(wsi));
	http_exchange *x = lws_get_opaque_user_data(wsi);
	(void)user;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		exchange_free(x);
		return http_begin(t, wsi, in);
	case LWS_CALLBACK_HTTP_BODY:
		return x ? http_body(x, in, len) : -1;
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		if (x && !x->responded && !x->handed)
			hand_over(x);
		return 0;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		return x ? http_write(x) : 0;
	case LWS_CALLBACK_CLOSED_HTTP:
		if (x) {
			if (x->handed && !x->responded && x->on_abort)
				x->on_abort(x->abort_ctx);
			exchange_free(x);
		}
		return 0;
	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

static const struct lws_protocols http_protocols[] = {
	{"http", http_callback, 0, 0, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};

int http_header(http_exchange *x, const char *name, char *out, size_t out_len)
{
	char key[80];
	int n;
	/* lws keeps custom headers lower-cased with their colon. */
	if (strlen(name) + 2 > sizeof(key))
		return -1;
	size_t i = 0;
	for (; name[i]; i++)
		key[i] =
			(char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] + 32
								  : name[i]);
	key[i++] = ':';
	key[i] = '\0';
	if (!strcmp(key, "authorization:"))
		n = lws_hdr_copy(x->wsi, out, (int)out_len,
				 WSI_TOKEN_HTTP_AUTHORIZATION);
	else if (!strcmp(key, "content-type:"))
		n = lws_hdr_copy(x->wsi, out, (int)out_len,
				 WSI_TOKEN_HTTP_CONTENT_TYPE);
	else
		n = lws_hdr_custom_copy(x->wsi, out, (int)out_len, key, (int)i);
	return n < 0 ? -1 : n;
}

void http_on_abort(http_exchange *x, void (*fn)(void *ctx), void *ctx)
{
	x->on_abort = fn;
	x->abort_ctx = ctx;
}

void http_respond(http_exchange *x, int status, const char *content_type,
		  const void *body, size_t len, const char *headers)
{
	if (x->responded)
		return;
	x->responded = 1;
	x->status = status;
	snprintf(x->content_type, sizeof(x->content_type), "%s",
		 content_type ? content_type : "application/json");
	x->headers = headers ? strdup(headers) : NULL;
	x->out = malloc(LWS_PRE + len + 1);
	if (x->out) {
		if (len)
			memcpy(x->out + LWS_PRE, body, len);
		x->out_len = len;
	}
	lws_callback_on_writable(x->wsi);
}

ferry_err transport_http_listen(transport *t, const char *listen,
				size_t max_body, http_handler handler,
				void *payload, char *detail, size_t detail_len)
{
	struct lws_context_creation_info info;
	char addr[64];
	int port;
	if (!listen || split_address(listen, addr, sizeof(addr), &port)) {
		snprintf(detail, detail_len, "HTTP address %s is not ADDR:PORT",
			 listen ? listen : "(none)");
		return FERRY_E_INVALID;
	}
	t->http = handler;
	t->http_payload = payload;
	t->max_body = max_body;
	memset(&info, 0, sizeof(info));
	info.port = port;
	info.iface = addr;
	info.protocols = http_protocols;
	info.vhost_name = "http";
	t->http_vhost = lws_create_vhost(t->ctx, &info);
	if (!t->http_vhost) {
		snprintf(detail, detail_len,
			 "cannot serve HTTP on %s (address in use, or not "
			 "an address of this machine)",
			 listen);
		return FERRY_E_NETWORK;
	}
	snprintf(t->http_address, sizeof(t->http_address), "%s:%d", addr,
		 lws_get_vhost_listen_port(t->http_vhost));
	return FERRY_OK;
}

const char *transport_http_address(const transport *t)
{
	return t->http_address;
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
