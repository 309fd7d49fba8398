/*
 * net.c — a node on the network (ferry_net.h): one transport event loop,
 * a session per connection, the configured peers dialed with backoff, a
 * watcher that notices commits from any process, and connection statuses
 * written into the node for `ferry status`.
 *
 * Everything here runs on the thread inside ferry_net_run(); the only
 * cross-thread (and signal-handler) entry is ferry_net_stop(), a flag the
 * periodic tick reads.
 */
#include "ferry_net.h"

#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adapter.h"
#include "hub.h"
#include "session.h"
#include "transport.h"
#include "trust.h"

#define DEFAULT_BACKOFF_BASE_MS 500
#define DEFAULT_BACKOFF_CAP_MS 30000
/* Commits by other processes are seen by polling the arrival cursor (one
 * read transaction, about a microsecond); 2 ms keeps live lag low. */
#define DEFAULT_WATCH_MS 2
#define SESSION_TICK_MS 100
#define STATUS_WRITE_MS 250
#define SHUTDOWN_GRACE_MS 2000
#define DEFAULT_HTTP_MAX_BODY (16u << 20)
#define DEFAULT_HTTP_MAX_ACTIONS 10000
#define DEFAULT_MAX_WAIT_S 60

/* A peer URL we keep connected. */
typedef struct dial {
	char url[TRUST_MAX_URL_BYTES + 1];
	struct conn *conn; /* while connected */
	int connecting;
	int keep;	   /* still configured (reload marks) */
	uint32_t attempts; /* failures since the last handshake */
	uint64_t next_try_ms;
	peer_status status; /* while not connected */
	int status_dirty;
	struct dial *next;
} dial;

/* One live connection. */
typedef struct conn {
	ferry_net *net;
	transport_conn *tc;
	session *s;
	dial *d; /* NULL for inbound */
	int was_established;
	int completed; /* a one-shot sync closed it, caught up */
	uint64_t status_written_ms;
	struct conn *next;
} conn;

struct ferry_net {
	ferry_node *node;
	ferry_net_options opts;
	transport *t;
	volatile sig_atomic_t stop;
	uint64_t cursor, trust_gen, peers_gen;
	uint64_t last_session_tick_ms, last_status_ms;
	dial *dials;
	conn *conns;
	hub *hub;	    /* the HTTP side, when on */
	adapters *adapters; /* pushes, pulls; webhooks via the hub */
	/* Totals of closed connections, for the hub's counters. */
	uint64_t closed_sent, closed_received;
	/* One-shot sync (ferry_net_sync_once). */
	int once;
	dial *once_dial;
	int once_done;
	ferry_err once_err;
	char once_detail[512];
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void net_log(ferry_net *net, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void net_log(ferry_net *net, int level, const char *fmt, ...)
{
	char line[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (net->opts.log) {
		net->opts.log(level, line, net->opts.log_payload);
		return;
	}
	static const char *const names[] = {"error", "warn", "info"};
	fprintf(stderr, "ferry: %s: %s\n", names[level], line);
}

static void peer_label(char *out, size_t len, const peer_status *st)
{
	char id[FERRY_ID_HEX_BYTES] = "";
	if (st->has_id)
		ferry_id_to_hex(id, st->id);
	snprintf(out, len, "%s%s%.8s%s%.200s", st->name[0] ? st->name : "",
		 st->name[0] ? " " : "", id[0] ? id : "?",
		 st->url[0] ? " at " : "", st->url);
}

/* ------------------------------------------------------------------------ */
/* Status                                                                   */
/* ------------------------------------------------------------------------ */

static void write_status(ferry_net *net, const peer_status *st)
{
	peer_status copy = *st;
	if (!copy.key[0]) {
		if (!copy.has_id)
			return;
		peer_status_key_id(copy.key, sizeof(copy.key), copy.id);
	}
	copy.updated_ms = now_ms();
	if (peer_status_put(net->node, &copy) != FERRY_OK)
		net_log(net, FERRY_LOG_WARN, "cannot record peer status: %s",
			ferry_node_errmsg(net->node));
}

static void write_statuses(ferry_net *net, int all)
{
	for (conn *c = net->conns; c; c = c->next)
		if (session_status_dirty(c->s) || all)
			write_status(net, session_status(c->s));
	for (dial *d = net->dials; d; d = d->next)
		if (!d->conn && (d->status_dirty || all)) {
			d->status_dirty = 0;
			write_status(net, &d->status);
		}
}

/* ------------------------------------------------------------------------ */
/* Dials                                                                    */
/* ------------------------------------------------------------------------ */

/* Full jitter: a random delay up to min(cap, base * 2^attempts), never
 * below base, so a crowd of branches does not reconnect in step. */
static uint64_t backoff_ms(const ferry_net *net, uint32_t attempts)
{
	uint64_t base = net->opts.backoff_base_ms;
	uint64_t cap = net->opts.backoff_cap_ms;
	uint64_t ceiling = base << (attempts < 16 ? attempts : 16);
	if (ceiling > cap)
		ceiling = cap;
	if (ceiling <= base)
		return base;
	return base + randombytes_uniform((uint32_t)(ceiling - base));
}

static dial *find_dial(ferry_net *net, const char *url)
{
	for (dial *d = net->dials; d; d = d->next)
		if (!strcmp(d->url, url))
			return d;
	return NULL;
}

static dial *add_dial(ferry_net *net, const char *url)
{
	dial *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	snprintf(d->url, sizeof(d->url), "%s", url);
	snprintf(d->status.url, sizeof(d->status.url), "%s", url);
	peer_status_key_url(d->status.key, sizeof(d->status.key), url);
	d->keep = 1;
	d->next = net->dials;
	net->dials = d;
	return d;
}

static int mark_peer(const char *url, void *payload)
{
	ferry_net *net = payload;
	dial *d = find_dial(net, url);
	if (d)
		d->keep = 1;
	else if (add_dial(net, url))
		net_log(net, FERRY_LOG_INFO, "will keep %s connected", url);
	return 0;
}

/* Bring the dial list in line with the node's peer table. */
static void reload_peers(ferry_net *net)
{
	dial **p = &net->dials;
	if (net->opts.no_dial)
		return;
	for (dial *d = net->dials; d; d = d->next)
		d->keep = 0;
	if (peers_list(net->node, mark_peer, net) != FERRY_OK) {
		net_log(net, FERRY_LOG_WARN, "cannot read the peer list: %s",
			ferry_node_errmsg(net->node));
		return;
	}
	while (*p) {
		dial *d = *p;
		if (d->keep || d->connecting) {
			p = &d->next;
			continue;
		}
		if (d->conn) {
			/* Closed below; the conn forgets its dial. */
			session_close(d->conn->s, SESSION_CLOSE_NORMAL,
				      "peer removed from the peer list");
			transport_want_write(d->conn->tc);
			d->conn->d = NULL;
		}
		net_log(net, FERRY_LOG_INFO, "no longer dialing %s", d->url);
		*p = d->next;
		free(d);
	}
}

static void dial_failed(void *dial_ctx, const char *why, void *payload)
{
	ferry_net *net = payload;
	dial *d = dial_ctx;
	uint64_t now = now_ms();
	d->connecting = 0;
	d->attempts++;
	d->next_try_ms = now + backoff_ms(net, d->attempts);
	snprintf(d->status.last_error, sizeof(d->status.last_error),
		 "cannot connect: %s", why);
	d->status.last_error_ms = now;
	d->status.online = 0;
	d->status_dirty = 1;
	if (net->once) {
		net->once_done = 1;
		net->once_err = FERRY_E_NETWORK;
		snprintf(net->once_detail, sizeof(net->once_detail),
			 "cannot connect to %s: %s", d->url, why);
	} else if (d->attempts == 1 || d->attempts % 10 == 0) {
		net_log(net, FERRY_LOG_WARN,
			"cannot connect to %s: %s (attempt %u, next in %llu "
			"ms)",
			d->url, why, d->attempts,
			(unsigned long long)(d->next_try_ms - now));
	}
}

static void run_dials(ferry_net *net, uint64_t now)
{
	for (dial *d = net->dials; d; d = d->next) {
		char detail[256];
		if (d->conn || d->connecting || now < d->next_try_ms)
			continue;
		if (net->once && d->attempts)
			continue;
		d->connecting = 1;
		if (transport_dial(net->t, d->url, d, detail, sizeof(detail)))
			dial_failed(d, detail, net);
	}
}

/* ------------------------------------------------------------------------ */
/* Connections                                                              */
/* ------------------------------------------------------------------------ */

static void *opened(transport_conn *tc, void *dial_ctx, void *payload)
{
	ferry_net *net = payload;
	session_config cfg = {0};
	dial *d = dial_ctx;
	conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	cfg.is_client = d != NULL;
	cfg.heartbeat_ms = net->opts.heartbeat_ms;
	cfg.max_frame = net->opts.max_frame_bytes;
	cfg.origin_policy = (session_origin_policy)net->opts.origin_policy;
	cfg.url = d ? d->url : NULL;
	if (session_new(&c->s, net->node, &cfg, now_ms()) != FERRY_OK) {
		free(c);
		return NULL;
	}
	c->net = net;
	c->tc = tc;
	c->d = d;
	if (d) {
		d->connecting = 0;
		d->conn = c;
	}
	c->next = net->conns;
	net->conns = c;
	return c;
}

static void flush(conn *c)
{
	unsigned code;
	const char *reason;
	if (session_finished(c->s, &code, &reason))
		transport_close(c->tc, code, reason);
	else if (session_wants_write(c->s))
		transport_want_write(c->tc);
}

/* Tell every other session that the store changed. */
static void store_changed(ferry_net *net, const conn *except)
{
	for (conn *c = net->conns; c; c = c->next) {
		if (c == except)
			continue;
		session_store_changed(c->s);
		flush(c);
	}
}

static void note_established(ferry_net *net, conn *c)
{
	char label[320];
	if (c->was_established || !session_established(c->s))
		return;
	c->was_established = 1;
	if (c->d)
		c->d->attempts = 0;
	peer_label(label, sizeof(label), session_status(c->s));
	net_log(net, FERRY_LOG_INFO, "connected to %s (%s)", label,
		transport_peer_address(c->tc));
}

static void message(transport_conn *tc, void *ctx, const uint8_t *msg,
		    size_t len)
{
	conn *c = ctx;
	ferry_net *net = c->net;
	(void)tc;
	ferry_err err = session_receive(c->s, msg, len, now_ms());
	if (err && err != FERRY_E_CLOSED) {
		char label[320];
		peer_label(label, sizeof(label), session_status(c->s));
		net_log(net, FERRY_LOG_WARN, "%s (%s): %s", label,
			transport_peer_address(c->tc),
			session_status(c->s)->last_error);
	}
	note_established(net, c);
	if (session_take_applied(c->s))
		store_changed(net, c);
	flush(c);
}

static int writable(transport_conn *tc, void *ctx, const uint8_t **msg,
		    size_t *len)
{
	conn *c = ctx;
	(void)tc;
	if (session_next(c->s, msg, len, now_ms()) == FERRY_OK)
		return 1;
	flush(c);
	return 0;
}

static void closed(transport_conn *tc, void *ctx, unsigned code,
		   const char *reason)
{
	conn *c = ctx, **p;
	ferry_net *net = c->net;
	const peer_status *st;
	char label[320];
	(void)tc;

	session_lost(c->s, code, reason, now_ms());
	st = session_status(c->s);
	net->closed_sent += st->sent;
	net->closed_received += st->received;
	peer_label(label, sizeof(label), st);
	if (c->was_established)
		net_log(net, FERRY_LOG_INFO, "disconnected from %s (%u%s%s)",
			label, code, reason && *reason ? ": " : "",
			reason ? reason : "");
	write_status(net, st);
	if (c->d) {
		dial *d = c->d;
		d->conn = NULL;
		d->status = *st;
		if (!c->was_established)
			d->attempts++;
		d->next_try_ms = now_ms() + backoff_ms(net, d->attempts);
	}
	if (net->once) {
		net->once_done = 1;
		if (!net->once_err && !c->completed) {
			net->once_err = code == SESSION_CLOSE_UNTRUSTED
						? FERRY_E_UNTRUSTED
					: code == SESSION_CLOSE_AUTH
						? FERRY_E_AUTH
						: FERRY_E_CLOSED;
			snprintf(net->once_detail, sizeof(net->once_detail),
				 "%s", st->last_error);
		}
	}
	for (p = &net->conns; *p && *p != c; p = &(*p)->next)
		;
	if (*p)
		*p = c->next;
	session_free(c->s);
	free(c);
}

/* ------------------------------------------------------------------------ */
/* The periodic tick                                                        */
/* ------------------------------------------------------------------------ */

/* Commits by anyone (this process, an application, `ferry put`) move the
 * arrival cursor; trust and peer edits move their tables' generations. */
static void watch_store(ferry_net *net)
{
	uint64_t cursor = 0, trust_gen = 0, peers_gen = 0;
	if (ferry_changes_last(&cursor, net->node) == FERRY_OK &&
	    cursor != net->cursor) {
		net->cursor = cursor;
		store_changed(net, NULL);
	}
	if (ferry_kv_generation(&trust_gen, net->node, "trust") == FERRY_OK &&
	    trust_gen != net->trust_gen) {
		net->trust_gen = trust_gen;
		for (conn *c = net->conns; c; c = c->next) {
			session_trust_changed(c->s);
			flush(c);
		}
	}
	if (ferry_kv_generation(&peers_gen, net->node, "peers") == FERRY_OK &&
	    peers_gen != net->peers_gen) {
		net->peers_gen = peers_gen;
		reload_peers(net);
	}
}

static void tick(void *payload)
{
	ferry_net *net = payload;
	uint64_t now = now_ms();
	if (net->stop)
		return;
	watch_store(net);
	run_dials(net, now);
	if (now - net->last_session_tick_ms >= SESSION_TICK_MS) {
		net->last_session_tick_ms = now;
		for (conn *c = net->conns; c; c = c->next) {
			session_tick(c->s, now);
			note_established(net, c);
			if (net->once && session_caught_up(c->s) &&
			    !c->completed) {
				c->completed = 1;
				session_close(c->s, SESSION_CLOSE_NORMAL,
					      "sync complete");
			}
			flush(c);
		}
	}
	if (now - net->last_status_ms >= STATUS_WRITE_MS) {
		net->last_status_ms = now;
		write_statuses(net, 0);
	}
	if (net->hub) {
		hub_net_view view = {0, net->closed_sent, net->closed_received};
		for (conn *c = net->conns; c; c = c->next) {
			const peer_status *st = session_status(c->s);
			view.peers_connected += session_established(c->s);
			view.changes_sent += st->sent;
			view.changes_received += st->received;
		}
		hub_set_net_view(net->hub, &view);
		hub_tick(net->hub, net->cursor);
	}
}

/* ------------------------------------------------------------------------ */
/* Public API                                                               */
/* ------------------------------------------------------------------------ */

ferry_err ferry_net_start(ferry_net **out, ferry_node *node,
			  const ferry_net_options *opts, char **errdetail)
{
	ferry_net_options defaults = FERRY_NET_OPTIONS_INIT;
	transport_handler h = {opened,	    message, writable, closed,
			       dial_failed, tick,    NULL};
	char detail[256] = "";
	ferry_net *net;
	ferry_err err;

	*out = NULL;
	if (errdetail)
		*errdetail = NULL;
	if (!node)
		return FERRY_E_INVALID;
	if (opts && opts->version != FERRY_NET_OPTIONS_VERSION)
		return FERRY_E_VERSION;
	if (sodium_init() < 0)
		return FERRY_E_NETWORK;
	net = calloc(1, sizeof(*net));
	if (!net)
		return FERRY_E_NOMEM;
	net->node = node;
	net->opts = opts ? *opts : defaults;
	if (!net->opts.backoff_base_ms)
		net->opts.backoff_base_ms = DEFAULT_BACKOFF_BASE_MS;
	if (!net->opts.backoff_cap_ms)
		net->opts.backoff_cap_ms = DEFAULT_BACKOFF_CAP_MS;
	if (!net->opts.watch_ms)
		net->opts.watch_ms = DEFAULT_WATCH_MS;
	if (!net->opts.max_frame_bytes)
		net->opts.max_frame_bytes = SESSION_DEFAULT_MAX_FRAME;
	if (net->opts.max_frame_bytes < 65536)
		net->opts.max_frame_bytes = 65536;
	net->opts.listen = NULL; /* not owned past this call */
	h.payload = net;
	err = transport_new(&net->t, opts ? opts->listen : NULL,
			    net->opts.max_frame_bytes, net->opts.watch_ms, &h,
			    detail, sizeof(detail));
	if (err) {
		if (errdetail)
			*errdetail = strdup(detail);
		free(net);
		return err;
	}
	if (opts && opts->adapters_path) {
		char why[1024];
		err = adapters_start(&net->adapters, node, opts->adapters_path,
				     net->opts.log, net->opts.log_payload, why,
				     sizeof(why));
		if (err) {
			/* The prefix tells callers which part failed. */
			size_t len = strlen(why) + sizeof("adapters: ");
			if (errdetail && (*errdetail = malloc(len)))
				snprintf(*errdetail, len, "adapters: %s", why);
			ferry_net_free(net);
			return err;
		}
	}
	if (opts && opts->http_listen && *opts->http_listen) {
		hub_config hc = {
			net->opts.pricelist_scope,
			net->opts.http_max_body ? net->opts.http_max_body
						: DEFAULT_HTTP_MAX_BODY,
			net->opts.http_max_actions ? net->opts.http_max_actions
						   : DEFAULT_HTTP_MAX_ACTIONS,
			DEFAULT_MAX_WAIT_S, net->adapters};
		err = hub_new(&net->hub, node, &hc);
		if (!err)
			err = transport_http_listen(
				net->t, opts->http_listen, hc.max_body,
				hub_handle, net->hub, detail, sizeof(detail));
		if (err) {
			if (errdetail)
				*errdetail = strdup(detail);
			ferry_net_free(net);
			return err;
		}
	}
	net->opts.http_listen = NULL;
	net->opts.pricelist_scope = NULL;
	net->opts.adapters_path = NULL;
	ferry_changes_last(&net->cursor, node);
	ferry_kv_generation(&net->trust_gen, node, "trust");
	reload_peers(net);
	ferry_kv_generation(&net->peers_gen, node, "peers");
	*out = net;
	return FERRY_OK;
}

const char *ferry_net_address(const ferry_net *net)
{
	return transport_address(net->t);
}

const char *ferry_net_http_address(const ferry_net *net)
{
	return transport_http_address(net->t);
}

static void shutdown_all(ferry_net *net)
{
	uint64_t deadline = now_ms() + SHUTDOWN_GRACE_MS;
	for (conn *c = net->conns; c; c = c->next) {
		session_close(c->s, SESSION_CLOSE_SHUTDOWN,
			      "node shutting down");
		flush(c);
	}
	while (net->conns && now_ms() < deadline)
		transport_service(net->t);
	write_statuses(net, 1);
}

ferry_err ferry_net_run(ferry_net *net)
{
	while (!net->stop && !(net->once && net->once_done))
		transport_service(net->t);
	shutdown_all(net);
	return FERRY_OK;
}

void ferry_net_stop(ferry_net *net)
{
	net->stop = 1;
}

void ferry_net_reload_adapters(ferry_net *net)
{
	if (net->adapters)
		adapters_reload(net->adapters);
}

void ferry_net_free(ferry_net *net)
{
	if (!net)
		return;
	/* Parked long polls get their 503 while their sockets still exist. */
	hub_free(net->hub);
	adapters_stop(net->adapters);
	transport_free(net->t);
	while (net->conns) {
		conn *c = net->conns;
		net->conns = c->next;
		session_free(c->s);
		free(c);
	}
	while (net->dials) {
		dial *d = net->dials;
		net->dials = d->next;
		free(d);
	}
	free(net);
}

static void fill_progress(ferry_sync_progress *p, const ferry_net *net,
			  uint64_t started)
{
	const peer_status *st = NULL;
	memset(p, 0, sizeof(*p));
	if (net->conns)
		st = session_status(net->conns->s);
	else if (net->once_dial)
		st = &net->once_dial->status;
	if (st) {
		p->sent = st->sent;
		p->received = st->received;
		p->pending_send = st->pending_send;
		p->pending_recv = st->pending_recv;
	}
	p->seconds = (double)(now_ms() - started) / 1000.0;
}

ferry_err ferry_net_sync_once(ferry_sync_progress *report, ferry_node *node,
			      const char *url, const ferry_net_options *opts,
			      uint32_t timeout_ms,
			      ferry_sync_progress_cb progress, void *payload,
			      char **errdetail)
{
	ferry_net_options o =
		opts ? *opts : (ferry_net_options)FERRY_NET_OPTIONS_INIT;
	ferry_sync_progress p, last = {0};
	uint64_t started = now_ms(), last_change = started, last_report = 0;
	ferry_net *net;
	ferry_err err;

	if (errdetail)
		*errdetail = NULL;
	memset(report, 0, sizeof(*report));
	o.listen = NULL;
	o.no_dial = 1;
	err = ferry_net_start(&net, node, &o, errdetail);
	if (err)
		return err;
	net->once = 1;
	net->once_dial = add_dial(net, url);
	if (!net->once_dial) {
		ferry_net_free(net);
		return FERRY_E_NOMEM;
	}
	if (!timeout_ms)
		timeout_ms = 30000;
	while (!net->once_done && !net->stop) {
		transport_service(net->t);
		uint64_t now = now_ms();
		fill_progress(&p, net, started);
		if (p.sent != last.sent || p.received != last.received ||
		    (net->conns && !last_report)) {
			last_change = now;
			last = p;
		}
		if (progress && now - last_report >= 200) {
			last_report = now;
			progress(&p, payload);
		}
		if (now - last_change > timeout_ms) {
			net->once_err = FERRY_E_TIMEOUT;
			snprintf(net->once_detail, sizeof(net->once_detail),
				 "no progress syncing with %s for %u ms", url,
				 timeout_ms);
			break;
		}
	}
	shutdown_all(net);
	fill_progress(report, net, started);
	if (progress)
		progress(report, payload);
	err = net->once_err;
	if (err && errdetail && !*errdetail)
		*errdetail = strdup(net->once_detail);
	ferry_net_free(net);
	return err;
}

typedef struct peers_walk {
	ferry_peer_cb cb;
	void *payload;
	uint64_t now;
} peers_walk;

static int visit_peer(const peer_status *st, void *payload)
{
	peers_walk *w = payload;
	ferry_peer_info p;
	memset(&p, 0, sizeof(p));
	p.has_id = st->has_id;
	p.id = st->has_id ? st->id : NULL;
	p.name = st->name;
	p.url = st->url;
	p.online = st->online;
	p.stale = st->online && w->now > st->updated_ms + FERRY_NET_STALE_MS;
	p.updated_ms = st->updated_ms;
	p.connected_ms = st->connected_ms;
	p.last_sync_ms = st->last_sync_ms;
	p.pending_send = st->pending_send;
	p.pending_recv = st->pending_recv;
	p.sent = st->sent;
	p.received = st->received;
	p.refused_in = st->refused_in;
	p.refused_out = st->refused_out;
	p.last_refusal = st->last_refusal;
	p.last_error = st->last_error;
	p.last_error_ms = st->last_error_ms;
	return w->cb(&p, w->payload);
}

ferry_err ferry_net_peers(ferry_node *node, ferry_peer_cb cb, void *payload)
{
	peers_walk w = {cb, payload, now_ms()};
	if (!node || !cb)
		return FERRY_E_INVALID;
	return peer_status_list(node, visit_peer, &w);
}
