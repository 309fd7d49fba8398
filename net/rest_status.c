/*
 * rest_status.c — what the hub tells people and machines about itself:
 *
 *   GET /                 the status page (public: a static shell with no
 *                         data; it fetches /api/sync/status with a key)
 *   GET /healthz          liveness for load balancers (public)
 *   GET /metrics          Prometheus text exposition format 0.0.4
 *   GET /api/sync/status  the hub's view of itself and its peers, as JSON
 *
 * Peer statuses come from ferry_net_peers(), the table the running node
 * rewrites several times a second, so these endpoints never touch the
 * network code's live state and cost one read of the store.
 *
 * The traffic-light indicator is computed here, not in the page, so that
 * the page, scripts reading /api/sync/status and /metrics all agree, and so
 * that ages are measured against the hub's clock rather than the clock of
 * whatever desktop happens to show the page:
 *
 *   red     stale: the serving process stopped updating the status;
 *           offline, and never synced or last synced 5 minutes ago or more;
 *           online, but an error happened on this connection (after its
 *           handshake) in the last minute.
 *   yellow  offline, but last synced less than 5 minutes ago (a short
 *           outage: changes wait locally and flow when it is back);
 *           online with changes pending in either direction (catching up).
 *   green   online, nothing pending either way, no error on this connection
 *           in the last minute (caught up).
 *
 * Errors recorded before the current connection's handshake do not count
 * against an online peer: every disconnect records one, and a peer that
 * reconnected has recovered from it. Offline peers always have one (that
 * is why they are offline), so for them only the age of the last sync
 * matters. Refused segments are a policy matter (a grant says no), shown
 * but not coloured.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adapter_state.h"
#include "ferry_net.h"
#include "hub.h"
#include "kvjson.h"
#include "trust.h"

#define OFFLINE_YELLOW_MS (5 * 60 * 1000) /* offline shorter: yellow */
#define RECENT_ERROR_MS (60 * 1000)	  /* online with an error: red */

/* ------------------------------------------------------------------------ */
/* Peers as this node sees them                                             */
/* ------------------------------------------------------------------------ */

/* One row of the view: ferry_peer_info with its strings owned, since the
 * tables are read one after another and the callbacks' strings die with
 * each callback. */
typedef struct peer_row {
	int has_id;
	char id[FERRY_ID_HEX_BYTES];
	char *name, *url, *last_refusal, *last_error;
	int online, stale;
	uint64_t updated_ms, connected_ms, last_sync_ms;
	uint64_t pending_send, pending_recv, sent, received;
	uint64_t refused_in, refused_out, last_error_ms;
	const char *indicator; /* "green", "yellow", "red" */
	const char *reason;    /* why, in a few words */
	int drop;	       /* superseded "url:" record */
} peer_row;

typedef struct peer_view {
	peer_row *rows;
	size_t n, cap;
	char **urls; /* configured dial URLs */
	size_t nurls, capurls;
	int nomem;
} peer_view;

static void peer_view_clear(peer_view *v)
{
	for (size_t i = 0; i < v->n; i++) {
		free(v->rows[i].name);
		free(v->rows[i].url);
		free(v->rows[i].last_refusal);
		free(v->rows[i].last_error);
	}
	free(v->rows);
	for (size_t i = 0; i < v->nurls; i++)
		free(v->urls[i]);
	free(v->urls);
	memset(v, 0, sizeof(*v));
}

static peer_row *add_row(peer_view *v)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? 2 * v->cap : 16;
		peer_row *grown = realloc(v->rows, cap * sizeof(*grown));
		if (!grown)
			return NULL;
		v->rows = grown;
		v->cap = cap;
	}
	peer_row *row = &v->rows[v->n++];
	memset(row, 0, sizeof(*row));
	return row;
}

static char *dup_or_empty(const char *s)
{
	return strdup(s ? s : "");
}

static int collect_peer(const ferry_peer_info *p, void *payload)
{
	peer_view *v = payload;
	peer_row *row = add_row(v);
	if (!row) {
		v->nomem = 1;
		return 1;
	}
	row->has_id = p->has_id;
	if (p->has_id)
		ferry_id_to_hex(row->id, p->id);
	row->name = dup_or_empty(p->name);
	row->url = dup_or_empty(p->url);
	row->last_refusal = dup_or_empty(p->last_refusal);
	row->last_error = dup_or_empty(p->last_error);
	if (!row->name || !row->url || !row->last_refusal || !row->last_error) {
		v->nomem = 1;
		return 1;
	}
	row->online = p->online;
	row->stale = p->stale;
	row->updated_ms = p->updated_ms;
	row->connected_ms = p->connected_ms;
	row->last_sync_ms = p->last_sync_ms;
	row->pending_send = p->pending_send;
	row->pending_recv = p->pending_recv;
	row->sent = p->sent;
	row->received = p->received;
	row->refused_in = p->refused_in;
	row->refused_out = p->refused_out;
	row->last_error_ms = p->last_error_ms;
	return 0;
}

static int collect_url(const char *url, void *payload)
{
	peer_view *v = payload;
	if (v->nurls == v->capurls) {
		size_t cap = v->capurls ? 2 * v->capurls : 8;
		char **grown = realloc(v->urls, cap * sizeof(*grown));
		if (!grown) {
			v->nomem = 1;
			return 1;
		}
		v->urls = grown;
		v->capurls = cap;
	}
	if (!(v->urls[v->nurls] = strdup(url))) {
		v->nomem = 1;
		return 1;
	}
	v->nurls++;
	return 0;
}

/* A session learns the peer's trusted name only after the handshake;
 * until then (and for older status records) the trust list names it. */
static int fill_name(const trust_entry *e, void *payload)
{
	peer_view *v = payload;
	char id[FERRY_ID_HEX_BYTES];
	ferry_id_to_hex(id, e->id);
	for (size_t i = 0; i < v->n; i++) {
		peer_row *row = &v->rows[i];
		if (row->name[0] || !row->has_id || strcmp(row->id, id) != 0)
			continue;
		char *name = strdup(e->name);
		if (!name) {
			v->nomem = 1;
			return 1;
		}
		free(row->name);
		row->name = name;
	}
	return 0;
}

static int url_configured(const peer_view *v, const char *url)
{
	for (size_t i = 0; i < v->nurls; i++)
		if (strcmp(v->urls[i], url) == 0)
			return 1;
	return 0;
}

/* Some row other than `skip` already accounts for `url`. */
static int url_has_row(const peer_view *v, const char *url, size_t skip)
{
	for (size_t i = 0; i < v->n; i++)
		if (i != skip && v->rows[i].url[0] &&
		    strcmp(v->rows[i].url, url) == 0 &&
		    (v->rows[i].has_id || skip == (size_t)-1))
			return 1;
	return 0;
}

static void classify(peer_row *row, uint64_t now)
{
	uint64_t since_sync = row->last_sync_ms && now > row->last_sync_ms
				      ? now - row->last_sync_ms
				      : 0;
	int error_now = row->last_error_ms &&
			row->last_error_ms >= row->connected_ms &&
			(now < row->last_error_ms ||
			 now - row->last_error_ms < RECENT_ERROR_MS);
	if (row->stale) {
		row->indicator = "red";
		row->reason = "status not updated: the serving process is gone";
	} else if (!row->online) {
		if (row->last_sync_ms && since_sync < OFFLINE_YELLOW_MS) {
			row->indicator = "yellow";
			row->reason = "offline for less than 5 minutes";
		} else {
			row->indicator = "red";
			row->reason = row->last_sync_ms
					      ? "offline for 5 minutes or more"
					      : "offline, never synced";
		}
	} else if (error_now) {
		row->indicator = "red";
		row->reason = "error on this connection in the last minute";
	} else if (row->pending_send || row->pending_recv) {
		row->indicator = "yellow";
		row->reason = "online, catching up";
	} else {
		row->indicator = "green";
		row->reason = "online, caught up";
	}
}

static int row_order(const void *a, const void *b)
{
	const peer_row *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	if (!c)
		c = strcmp(x->url, y->url);
	if (!c)
		c = strcmp(x->id, y->id);
	return c;
}

/* Read the peer tables into `v`, one after another (never one inside
 * another's scan), drop what means nothing any more and colour the rest.
 * On failure replies and returns non-zero. */
static int load_peers(hub_request *r, peer_view *v, uint64_t now)
{
	ferry_err err = ferry_net_peers(r->node, collect_peer, v);
	if (!err && !v->nomem)
		err = peers_list(r->node, collect_url, v);
	if (!err && !v->nomem)
		err = trust_list(r->node, fill_name, v);
	if (v->nomem) {
		hub_reply_error(r, 500, "out_of_memory", "out of memory");
		return -1;
	}
	if (err) {
		hub_reply_error(r, 500, "store", "cannot read peer status: %s",
				ferry_strerror(err));
		return -1;
	}
	/* A "url:" record stands for a dialed peer not reached yet. Once the
	 * URL is no longer dialed, or a record by id covers it, it only
	 * repeats (or contradicts) what is known better. */
	for (size_t i = 0; i < v->n; i++) {
		peer_row *row = &v->rows[i];
		row->drop = !row->has_id && (!url_configured(v, row->url) ||
					     url_has_row(v, row->url, i));
	}
	size_t kept = 0;
	for (size_t i = 0; i < v->n; i++) {
		peer_row *row = &v->rows[i];
		if (row->drop) {
			free(row->name);
			free(row->url);
			free(row->last_refusal);
			free(row->last_error);
			continue;
		}
		v->rows[kept++] = *row;
	}
	v->n = kept;
	/* Configured URLs the running node has written nothing about yet
	 * (it is not running, or has just started): offline, never synced. */
	for (size_t i = 0; i < v->nurls; i++) {
		if (url_has_row(v, v->urls[i], (size_t)-1))
			continue;
		peer_row *row = add_row(v);
		if (!row || !(row->name = strdup("")) ||
		    !(row->url = strdup(v->urls[i])) ||
		    !(row->last_refusal = strdup("")) ||
		    !(row->last_error = strdup(""))) {
			hub_reply_error(r, 500, "out_of_memory",
					"out of memory");
			return -1;
		}
	}
	if (v->n) /* rows is NULL when there are none */
		qsort(v->rows, v->n, sizeof(*v->rows), row_order);
	for (size_t i = 0; i < v->n; i++)
		classify(&v->rows[i], now);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* GET /api/sync/status                                                     */
/* ------------------------------------------------------------------------ */

typedef struct readable_total {
	const hub_key *key;
	uint64_t records;
} readable_total;

/* Only scopes the key may read count: a tenant's key must not learn the
 * size of another tenant's data. */
static int sum_records(const char *scope, const char *collection, uint64_t live,
		       void *payload)
{
	readable_total *t = payload;
	(void)collection;
	if (hub_key_reads(t->key, scope))
		t->records += live;
	return 0;
}

static json_t *null_if_empty(const char *s)
{
	return s && *s ? json_string(s) : json_null();
}

static json_t *peer_json(const peer_row *row)
{
	const char *state = row->stale	  ? "stale"
			    : row->online ? "online"
					  : "offline";
	return json_pack(
		"{s:s, s:o, s:o, s:s, s:b, s:s, s:s, s:I, s:I, s:I, s:I, s:I, "
		"s:I, s:I, s:I, s:I, s:o, s:o, s:I}",
		"name", row->name, "id",
		row->has_id ? json_string(row->id) : json_null(), "url",
		null_if_empty(row->url), "state", state, "online",
		row->online && !row->stale, "indicator", row->indicator,
		"indicator_reason", row->reason, "last_sync_ms",
		(json_int_t)row->last_sync_ms, "connected_ms",
		(json_int_t)row->connected_ms, "updated_ms",
		(json_int_t)row->updated_ms, "pending_send",
		(json_int_t)row->pending_send, "pending_recv",
		(json_int_t)row->pending_recv, "sent", (json_int_t)row->sent,
		"received", (json_int_t)row->received, "refused_in",
		(json_int_t)row->refused_in, "refused_out",
		(json_int_t)row->refused_out, "last_refusal",
		null_if_empty(row->last_refusal), "last_error",
		null_if_empty(row->last_error), "last_error_ms",
		(json_int_t)row->last_error_ms);
}

static void get_sync_status(hub_request *r)
{
	ferry_status st;
	readable_total total = {r->key, 0};
	uint64_t now = ferry_node_now_ms(r->node);
	ferry_err err = ferry_status_get(&st, r->node);
	if (!err)
		err = ferry_collections(r->node, sum_records, &total);
	uint64_t records = total.records;
	if (err) {
		hub_reply_error(r, 500, "store", "cannot read node status: %s",
				ferry_strerror(err));
		return;
	}
	peer_view v = {0};
	if (load_peers(r, &v, now)) {
		peer_view_clear(&v);
		return;
	}
	hub_net_view net;
	hub_get_net_view(r->hub, &net);
	char id[FERRY_ID_HEX_BYTES];
	ferry_id_to_hex(id, ferry_node_id(r->node));

	json_t *peers = json_array();
	uint64_t colours[3] = {0, 0, 0}; /* green, yellow, red */
	int nomem = !peers;
	for (size_t i = 0; i < v.n && !nomem; i++) {
		const char *c = v.rows[i].indicator;
		colours[c[0] == 'g' ? 0 : c[0] == 'y' ? 1 : 2]++;
		nomem = json_array_append_new(peers, peer_json(&v.rows[i])) !=
			0;
	}
	peer_view_clear(&v);
	if (nomem) {
		json_decref(peers);
		hub_reply_json(r, 500, NULL);
		return;
	}
	/* The data directory helps the operator (a key reading every scope)
	 * find the store; a tenant's key is not shown the hub's file system,
	 * and node-wide counts only cover the scopes it may read. */
	json_t *doc = json_pack(
		"{s:{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:o, "
		"s:{s:I, s:I, s:I}, s:I}",
		"node", "id", id, "dir", ferry_node_dir(r->node), "changes",
		(json_int_t)st.changes, "last_cursor",
		(json_int_t)st.last_cursor, "records", (json_int_t)records,
		"conflicts", (json_int_t)st.conflicts, "store_bytes",
		(json_int_t)st.store_bytes, "peers_connected",
		(json_int_t)net.peers_connected, "changes_sent",
		(json_int_t)net.changes_sent, "changes_received",
		(json_int_t)net.changes_received, "peers", peers, "summary",
		"green", (json_int_t)colours[0], "yellow",
		(json_int_t)colours[1], "red", (json_int_t)colours[2],
		"time_ms", (json_int_t)now);
	if (doc && !hub_key_reads_all(r->key))
		json_object_del(json_object_get(doc, "node"), "dir");
	hub_reply_json(r, 200, doc);
}

/* ------------------------------------------------------------------------ */
/* GET /healthz                                                             */
/* ------------------------------------------------------------------------ */

/* One cheap read proves the store opens a read transaction; the answer
 * says no more than the error's text, since anyone may ask. */
static void get_healthz(hub_request *r)
{
	uint64_t cursor;
	ferry_err err = ferry_changes_last(&cursor, r->node);
	if (err) {
		hub_reply_json(r, 503,
			       json_pack("{s:s, s:s}", "status", "error",
					 "error", ferry_strerror(err)));
		return;
	}
	hub_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

/* ------------------------------------------------------------------------ */
/* GET /metrics                                                             */
/* ------------------------------------------------------------------------ */

/* A label value as the exposition format wants it: backslash, double
 * quote and line feed escaped; everything else (UTF-8 included) as is. */
static void put_label(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", f);
		else if (*s == '"')
			fputs("\\\"", f);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void family(FILE *f, const char *name, const char *type,
		   const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int put_collection(const char *scope, const char *collection,
			  uint64_t live, void *payload)
{
	FILE *f = payload;
	fputs("ferry_records{scope=", f);
	put_label(f, scope);
	fputs(",collection=", f);
	put_label(f, collection);
	fprintf(f, "} %" PRIu64 "\n", live);
	return 0;
}

/* `route` labels: "GET /api/sync/status". The method is a label of its own
 * too, so a query can pick either. */
static void route_labels(FILE *f, const hub_route *route)
{
	fputs("method=", f);
	put_label(f, route->method);
	fputs(",route=", f);
	put_label(f, route->pattern);
}

static void http_metrics(FILE *f, const hub_stats *s)
{
	family(f, "ferry_http_requests_total", "counter",
	       "HTTP requests answered, by route and status class.");
	for (size_t i = 0; i < s->nroutes; i++) {
		const hub_route_stats *rs = &s->routes[i];
		const uint64_t n[3] = {rs->requests_2xx, rs->requests_4xx,
				       rs->requests_5xx};
		static const char *const cls[3] = {"2xx", "4xx", "5xx"};
		for (int c = 0; c < 3; c++) {
			fputs("ferry_http_requests_total{", f);
			route_labels(f, rs->route);
			fprintf(f, ",code_class=\"%s\"} %" PRIu64 "\n", cls[c],
				n[c]);
		}
	}
	family(f, "ferry_http_request_duration_seconds", "histogram",
	       "Time from a request's arrival to its reply, by route.");
	for (size_t i = 0; i < s->nroutes; i++) {
		const hub_route_stats *rs = &s->routes[i];
		for (int b = 0; b < HUB_LATENCY_BUCKETS; b++) {
			fputs("ferry_http_request_duration_seconds_bucket{", f);
			route_labels(f, rs->route);
			fprintf(f, ",le=\"%g\"} %" PRIu64 "\n",
				hub_latency_bounds[b], rs->latency_buckets[b]);
		}
		fputs("ferry_http_request_duration_seconds_bucket{", f);
		route_labels(f, rs->route);
		fprintf(f, ",le=\"+Inf\"} %" PRIu64 "\n", rs->latency_count);
		fputs("ferry_http_request_duration_seconds_sum{", f);
		route_labels(f, rs->route);
		fprintf(f, "} %.9g\n", rs->latency_sum_s);
		fputs("ferry_http_request_duration_seconds_count{", f);
		route_labels(f, rs->route);
		fprintf(f, "} %" PRIu64 "\n", rs->latency_count);
	}
	family(f, "ferry_http_bytes_total", "counter",
	       "HTTP body bytes received (in) and sent (out).");
	fprintf(f, "ferry_http_bytes_total{direction=\"in\"} %" PRIu64 "\n",
		s->bytes_in);
	fprintf(f, "ferry_http_bytes_total{direction=\"out\"} %" PRIu64 "\n",
		s->bytes_out);
	family(f, "ferry_http_unauthorized_total", "counter",
	       "Requests refused with 401: no API key, or an unknown or "
	       "revoked one.");
	fprintf(f, "ferry_http_unauthorized_total %" PRIu64 "\n",
		s->unauthorized);
	family(f, "ferry_http_unmatched_total", "counter",
	       "Requests for paths no route serves (404).");
	fprintf(f, "ferry_http_unmatched_total %" PRIu64 "\n", s->unmatched);
}

/* `peer` is the trusted name (else the id, else the URL) for dashboards;
 * `id` keeps two peers of the same name apart. */
static void peer_labels(FILE *f, const peer_row *row)
{
	fputs("peer=", f);
	put_label(f, row->name[0]  ? row->name
		     : row->has_id ? row->id
				   : row->url);
	fputs(",id=", f);
	put_label(f, row->has_id ? row->id : "");
	fputs(",url=", f);
	put_label(f, row->url);
}

static void peer_metrics(FILE *f, const peer_view *v)
{
	uint64_t colours[3] = {0, 0, 0};
	for (size_t i = 0; i < v->n; i++) {
		const char *c = v->rows[i].indicator;
		colours[c[0] == 'g' ? 0 : c[0] == 'y' ? 1 : 2]++;
	}
	family(f, "ferry_peers", "gauge",
	       "Known peers by status indicator (green: caught up, yellow: "
	       "catching up or briefly offline, red: needs attention).");
	fprintf(f, "ferry_peers{indicator=\"green\"} %" PRIu64 "\n",
		colours[0]);
	fprintf(f, "ferry_peers{indicator=\"yellow\"} %" PRIu64 "\n",
		colours[1]);
	fprintf(f, "ferry_peers{indicator=\"red\"} %" PRIu64 "\n", colours[2]);

	family(f, "ferry_peer_up", "gauge",
	       "1 if the peer is connected and authenticated.");
	for (size_t i = 0; i < v->n; i++) {
		fputs("ferry_peer_up{", f);
		peer_labels(f, &v->rows[i]);
		fprintf(f, "} %d\n", v->rows[i].online && !v->rows[i].stale);
	}
	family(f, "ferry_peer_pending_changes", "gauge",
	       "Changes waiting to be sent to (send) or received from (recv) "
	       "the peer.");
	for (size_t i = 0; i < v->n; i++) {
		fputs("ferry_peer_pending_changes{", f);
		peer_labels(f, &v->rows[i]);
		fprintf(f, ",direction=\"send\"} %" PRIu64 "\n",
			v->rows[i].pending_send);
		fputs("ferry_peer_pending_changes{", f);
		peer_labels(f, &v->rows[i]);
		fprintf(f, ",direction=\"recv\"} %" PRIu64 "\n",
			v->rows[i].pending_recv);
	}
	family(f, "ferry_peer_refused_segments_total", "counter",
	       "Log segments refused by a grant: from the peer (in) or by "
	       "the peer (out).");
	for (size_t i = 0; i < v->n; i++) {
		fputs("ferry_peer_refused_segments_total{", f);
		peer_labels(f, &v->rows[i]);
		fprintf(f, ",direction=\"in\"} %" PRIu64 "\n",
			v->rows[i].refused_in);
		fputs("ferry_peer_refused_segments_total{", f);
		peer_labels(f, &v->rows[i]);
		fprintf(f, ",direction=\"out\"} %" PRIu64 "\n",
			v->rows[i].refused_out);
	}
	family(f, "ferry_peer_last_sync_timestamp_seconds", "gauge",
	       "When both directions were last caught up (0: never).");
	for (size_t i = 0; i < v->n; i++) {
		fputs("ferry_peer_last_sync_timestamp_seconds{", f);
		peer_labels(f, &v->rows[i]);
		fprintf(f, "} %.3f\n", (double)v->rows[i].last_sync_ms / 1e3);
	}
	family(f, "ferry_peer_last_error_timestamp_seconds", "gauge",
	       "When the peer's connection last failed (0: never).");
	for (size_t i = 0; i < v->n; i++) {
		fputs("ferry_peer_last_error_timestamp_seconds{", f);
		peer_labels(f, &v->rows[i]);
		fprintf(f, "} %.3f\n", (double)v->rows[i].last_error_ms / 1e3);
	}
}

/* Adapters' status (the kv table the adapters' thread rewrites every
 * quarter second, adapter_state.h), one series per adapter. */
static int collect_adapter(const char *key, const void *value, size_t len,
			   void *payload)
{
	json_t *doc;
	if (!kvjson_parse(&doc, value, len))
		json_object_set_new(payload, key, doc);
	return 0;
}

static void adapter_metrics(FILE *f, ferry_node *node)
{
	static const struct {
		const char *name, *member, *type, *help;
	} series[] = {
		{"ferry_adapter_lag_changes", "lag_changes", "gauge",
		 "Changes in the feed the adapter has not delivered or parked "
		 "yet."},
		{"ferry_adapter_lag_seconds", "lag_seconds", "gauge",
		 "Age of the oldest change not delivered yet."},
		{"ferry_adapter_dead_letters", "dead_letters", "gauge",
		 "Changes parked in the dead-letter list (ferry adapter dlq "
		 "ls)."},
		{"ferry_adapter_delivered_total", "delivered", "counter",
		 "Requests answered 2xx since the serving process started."},
		{"ferry_adapter_retries_total", "retries", "counter",
		 "Requests retried since the serving process started."},
		{"ferry_adapter_status_timestamp_seconds", "updated", "gauge",
		 "When the serving process last wrote the adapter's status "
		 "(stale: the process stopped)."},
	};
	json_t *all = json_object();
	if (!all ||
	    ferry_kv_scan(node, ADAPTER_STATUS_TABLE, collect_adapter, all) ||
	    !json_object_size(all)) {
		json_decref(all);
		return;
	}
	for (size_t i = 0; i < sizeof(series) / sizeof(series[0]); i++) {
		const char *name;
		json_t *st;
		family(f, series[i].name, series[i].type, series[i].help);
		json_object_foreach(all, name, st)
		{
			double v = json_number_value(
				json_object_get(st, series[i].member));
			if (!strcmp(series[i].member, "updated"))
				v /= 1e3;
			fprintf(f, "%s{adapter=", series[i].name);
			put_label(f, name);
			fprintf(f, "} %.3f\n", v);
		}
	}
	json_decref(all);
}

static void get_metrics(hub_request *r)
{
	ferry_status st;
	ferry_err err;
	if (!hub_key_reads_all(r->key)) {
		hub_reply_error(r, 403, "forbidden",
				"/metrics names every scope; use a key created "
				"with --read '*'");
		return;
	}
	err = ferry_status_get(&st, r->node);
	if (err) {
		hub_reply_error(r, 500, "store", "cannot read node status: %s",
				ferry_strerror(err));
		return;
	}
	peer_view v = {0};
	if (load_peers(r, &v, ferry_node_now_ms(r->node))) {
		peer_view_clear(&v);
		return;
	}
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f) {
		peer_view_clear(&v);
		hub_reply_error(r, 500, "out_of_memory", "out of memory");
		return;
	}
	family(f, "ferry_records", "gauge",
	       "Live records by scope and collection.");
	err = ferry_collections(r->node, put_collection, f);
	family(f, "ferry_changes_total", "counter",
	       "Entries in the change log (own and received).");
	fprintf(f, "ferry_changes_total %" PRIu64 "\n", st.changes);
	family(f, "ferry_last_cursor", "gauge",
	       "Newest arrival cursor of the change log.");
	fprintf(f, "ferry_last_cursor %" PRIu64 "\n", st.last_cursor);
	family(f, "ferry_conflicts_total", "counter",
	       "Values that lost a merge, kept in the conflict log.");
	fprintf(f, "ferry_conflicts_total %" PRIu64 "\n", st.conflicts);
	family(f, "ferry_store_bytes", "gauge", "Size of the data file.");
	fprintf(f, "ferry_store_bytes %" PRIu64 "\n", st.store_bytes);

	hub_net_view net;
	hub_get_net_view(r->hub, &net);
	family(f, "ferry_changes_applied_total", "counter",
	       "Changes received from peers and applied, since the hub "
	       "started.");
	fprintf(f, "ferry_changes_applied_total %" PRIu64 "\n",
		net.changes_received);
	family(f, "ferry_changes_sent_total", "counter",
	       "Changes sent to peers, since the hub started.");
	fprintf(f, "ferry_changes_sent_total %" PRIu64 "\n", net.changes_sent);
	family(f, "ferry_peers_connected", "gauge",
	       "Peers connected and authenticated now.");
	fprintf(f, "ferry_peers_connected %" PRIu64 "\n", net.peers_connected);
	peer_metrics(f, &v);
	peer_view_clear(&v);
	adapter_metrics(f, r->node);
	http_metrics(f, hub_get_stats(r->hub));
	int bad = ferror(f);
	if (fclose(f) || bad || !text) {
		free(text);
		hub_reply_error(r, 500, "out_of_memory", "out of memory");
		return;
	}
	if (err) {
		free(text);
		hub_reply_error(r, 500, "store", "cannot read collections: %s",
				ferry_strerror(err));
		return;
	}
	hub_reply_raw(r, 200, "text/plain; version=0.0.4; charset=utf-8", text,
		      len);
	free(text);
}

/* ------------------------------------------------------------------------ */
/* GET / — the status page                                                  */
/* ------------------------------------------------------------------------ */

/* Static: no data, so it is public. The key travels in the URL fragment
 * (http://hub:8080/#key=fk_...), which browsers never send to servers or
 * write to access logs; the page moves it into sessionStorage and removes
 * it from the address bar. Everything the page shows is set through
 * textContent, never parsed as HTML, since names and errors come from
 * peers and operators. The CSP forbids anything but this page and its own
 * origin's API. */
static const char status_page[] =
	"<!DOCTYPE html>\n"
	"<html lang=\"en\">\n"
	"<head>\n"
	"<meta charset=\"utf-8\">\n"
	"<meta name=\"viewport\" content=\"width=device-width, "
	"initial-scale=1\">\n"
	"<meta http-equiv=\"Content-Security-Policy\" content=\"default-src "
	"'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
	"connect-src 'self'; img-src data:\">\n"
	"<meta name=\"referrer\" content=\"no-referrer\">\n"
	"<link rel=\"icon\" href=\"data:,\">\n"
	"<title>ferry hub status</title>\n"
	"<style>\n"
	":root{--green:#1f9d55;--yellow:#e0a800;--red:#d64545;--grey:#8a94a3;"
	"--ink:#1d2530;--muted:#5c6776;--line:#e3e7ed;--bg:#f5f7fa}\n"
	"*{box-sizing:border-box}\n"
	"body{margin:0;font:15px/1.45 system-ui,-apple-system,'Segoe UI',"
	"Roboto,'Helvetica Neue',Arial,sans-serif;color:var(--ink);"
	"background:var(--bg)}\n"
	"header{background:#fff;border-bottom:1px solid var(--line);"
	"padding:14px 24px;display:flex;flex-wrap:wrap;align-items:baseline;"
	"gap:6px 24px}\n"
	"h1{font-size:20px;margin:0}\n"
	"h2{font-size:16px;margin:0 0 10px}\n"
	".muted{color:var(--muted)}\n"
	".mono{font-family:ui-monospace,'SFMono-Regular',Menlo,Consolas,"
	"monospace;font-size:13px}\n"
	"#updated{margin-left:auto}\n"
	"main{padding:20px 24px;max-width:1200px}\n"
	".banner{padding:10px 14px;border-radius:6px;margin-bottom:16px}\n"
	".banner.bad{background:#fdecec;border:1px solid #f3b9b9}\n"
	".summary{display:flex;flex-wrap:wrap;gap:12px;margin-bottom:20px}\n"
	".tile{background:#fff;border:1px solid var(--line);border-radius:8px;"
	"padding:10px 16px;min-width:130px}\n"
	".tile .v{font-size:22px;font-weight:600}\n"
	".tile .k{font-size:12px;color:var(--muted);text-transform:uppercase;"
	"letter-spacing:.04em}\n"
	"table{width:100%;border-collapse:collapse;background:#fff;"
	"border:1px solid var(--line);border-radius:8px;overflow:hidden}\n"
	"th,td{text-align:left;padding:10px 12px;border-bottom:1px solid "
	"var(--line);vertical-align:top}\n"
	"th{font-size:12px;color:var(--muted);text-transform:uppercase;"
	"letter-spacing:.04em;background:#fafbfc}\n"
	"tr:last-child td{border-bottom:0}\n"
	".small{font-size:13px}\n"
	".dot{display:inline-block;width:14px;height:14px;border-radius:50%;"
	"margin-right:8px;vertical-align:-2px;background:var(--grey)}\n"
	".indicator[data-state=green] .dot{background:var(--green)}\n"
	".indicator[data-state=yellow] .dot{background:var(--yellow)}\n"
	".indicator[data-state=red] .dot{background:var(--red)}\n"
	".indicator{white-space:nowrap;font-weight:600}\n"
	".reason{font-weight:400;font-size:13px;color:var(--muted);"
	"white-space:normal}\n"
	".num{font-size:18px;font-weight:600}\n"
	".num.zero{color:var(--muted);font-weight:400}\n"
	".err{color:#a12b2b;font-size:13px;max-width:340px;"
	"overflow-wrap:anywhere}\n"
	".refusal{color:#8a6100;font-size:13px;margin-top:4px;"
	"overflow-wrap:anywhere}\n"
	".legend{margin-top:16px;font-size:13px;color:var(--muted)}\n"
	".legend span{margin-right:18px}\n"
	"form{background:#fff;border:1px solid var(--line);border-radius:8px;"
	"padding:16px;max-width:560px}\n"
	"input{font:inherit;padding:6px 8px;width:100%;margin:8px 0;"
	"border:1px solid #c5ccd6;border-radius:4px}\n"
	"button{font:inherit;padding:6px 14px;border-radius:4px;border:1px "
	"solid #2b6cb0;background:#2b6cb0;color:#fff;cursor:pointer}\n"
	"[hidden]{display:none!important}\n"
	"</style>\n"
	"</head>\n"
	"<body>\n"
	"<header>\n"
	"<h1>ferry hub</h1>\n"
	"<span class=\"muted\">node <span id=\"node-id\" class=\"mono\">"
	"&hellip;</span></span>\n"
	"<span id=\"updated\" class=\"muted\">not loaded yet</span>\n"
	"</header>\n"
	"<main>\n"
	"<div id=\"problem\" class=\"banner bad\" hidden></div>\n"
	"<form id=\"key-form\" hidden>\n"
	"<h2>API key needed</h2>\n"
	"<div class=\"muted\">Paste a key with read access (<span "
	"class=\"mono\">ferry apikey create</span>). It is kept only in this "
	"browser tab. You can also open the page as <span class=\"mono\">"
	"http://HUB/#key=fk_&hellip;</span></div>\n"
	"<input id=\"key-input\" type=\"password\" autocomplete=\"off\" "
	"placeholder=\"fk_&hellip;\">\n"
	"<button type=\"submit\">Show status</button>\n"
	"</form>\n"
	"<div id=\"status\" hidden>\n"
	"<div class=\"summary\">\n"
	"<div class=\"tile\"><div class=\"k\">Caught up</div><div "
	"class=\"v\"><span class=\"dot\" style=\"background:var(--green)\">"
	"</span><span id=\"sum-green\">0</span></div></div>\n"
	"<div class=\"tile\"><div class=\"k\">Catching up or away</div><div "
	"class=\"v\"><span class=\"dot\" style=\"background:var(--yellow)\">"
	"</span><span id=\"sum-yellow\">0</span></div></div>\n"
	"<div class=\"tile\"><div class=\"k\">Need attention</div><div "
	"class=\"v\"><span class=\"dot\" style=\"background:var(--red)\">"
	"</span><span id=\"sum-red\">0</span></div></div>\n"
	"<div class=\"tile\"><div class=\"k\">Peers connected</div><div "
	"class=\"v\" "
	"id=\"connected\">0</div></div>\n"
	"<div class=\"tile\"><div class=\"k\">Records</div><div class=\"v\" "
	"id=\"records\">0</div></div>\n"
	"<div class=\"tile\"><div class=\"k\">Changes</div><div class=\"v\" "
	"id=\"changes\">0</div></div>\n"
	"<div class=\"tile\"><div class=\"k\">Conflicts kept</div><div "
	"class=\"v\" id=\"conflicts\">0</div></div>\n"
	"</div>\n"
	"<table>\n"
	"<thead><tr><th>Status</th><th>Peer</th><th>Waiting to send</th>"
	"<th>Waiting to receive</th><th>Last sync</th><th>Last error</th>"
	"</tr></thead>\n"
	"<tbody id=\"peers\"></tbody>\n"
	"</table>\n"
	"<div id=\"no-peers\" class=\"muted\" hidden>No peers yet: add one "
	"with <span class=\"mono\">ferry peer add</span> or <span "
	"class=\"mono\">ferry trust add</span>.</div>\n"
	"<div class=\"legend\"><span><span class=\"dot\" "
	"style=\"background:var(--green)\"></span>caught up</span>"
	"<span><span class=\"dot\" style=\"background:var(--yellow)\"></span>"
	"catching up, or offline under 5 min</span><span><span class=\"dot\" "
	"style=\"background:var(--red)\"></span>offline 5 min or more, never "
	"synced, or failing now</span><span>Refreshes every 2 s.</span></div>\n"
	"</div>\n"
	"</main>\n"
	"<script>\n"
	"'use strict';\n"
	"const REFRESH_MS = 2000;\n"
	"const $ = (id) => document.getElementById(id);\n"
	"let key = null;\n"
	"let timer = null;\n"
	"let lastOk = 0;\n"
	"/* The key arrives in the fragment, never sent to the server; keep "
	"it\n"
	"   for this tab only and take it out of the address bar. */\n"
	"(function () {\n"
	"  const m = /(?:^#|&)key=([^&]+)/.exec(location.hash);\n"
	"  if (m) {\n"
	"    key = decodeURIComponent(m[1]);\n"
	"    try { sessionStorage.setItem('ferry-key', key); } catch (e) {}\n"
	"    history.replaceState(null, '', location.pathname + "
	"location.search);\n"
	"  } else {\n"
	"    try { key = sessionStorage.getItem('ferry-key'); } catch (e) {}\n"
	"  }\n"
	"})();\n"
	"function el(tag, cls, text) {\n"
	"  const e = document.createElement(tag);\n"
	"  if (cls) e.className = cls;\n"
	"  if (text !== undefined) e.textContent = String(text);\n"
	"  return e;\n"
	"}\n"
	"function ago(ms, now) {\n"
	"  if (!ms) return 'never';\n"
	"  const s = Math.max(0, Math.round((now - ms) / 1000));\n"
	"  if (s < 5) return 'just now';\n"
	"  if (s < 60) return s + ' s ago';\n"
	"  if (s < 3600) return Math.floor(s / 60) + ' min ago';\n"
	"  if (s < 86400) return Math.floor(s / 3600) + ' h ago';\n"
	"  return Math.floor(s / 86400) + ' days ago';\n"
	"}\n"
	"function stamp(ms) {\n"
	"  return ms ? new Date(ms).toLocaleString() : '';\n"
	"}\n"
	"/* The words beside the dot; the colour rules live in the hub. */\n"
	"function label(p) {\n"
	"  if (p.indicator === 'green') return 'Caught up';\n"
	"  if (p.state === 'stale') return 'Not reporting';\n"
	"  if (p.state === 'offline') return 'Offline';\n"
	"  return p.indicator === 'yellow' ? 'Catching up' : 'Failing';\n"
	"}\n"
	"function waiting(n, cls) {\n"
	"  const td = el('td', cls);\n"
	"  td.dataset.count = String(n);\n"
	"  td.append(el('span', n ? 'num' : 'num zero', n),\n"
	"            el('span', 'muted', n === 1 ? ' record waiting' : ' "
	"records waiting'));\n"
	"  return td;\n"
	"}\n"
	"function peerRow(p, now) {\n"
	"  const tr = el('tr', 'peer');\n"
	"  tr.dataset.peer = p.name || p.id || p.url || '';\n"
	"  tr.dataset.state = p.indicator;\n"
	"  const ind = el('td', 'indicator');\n"
	"  ind.dataset.state = p.indicator;\n"
	"  ind.title = p.indicator_reason;\n"
	"  ind.append(el('span', 'dot'), el('span', 'label', label(p)),\n"
	"             el('div', 'reason', p.indicator_reason));\n"
	"  const who = el('td', 'who');\n"
	"  who.append(el('div', 'name', p.name || (p.id ? '(not in the trust "
	"list)' : '(not reached yet)')));\n"
	"  if (p.url) who.append(el('div', 'mono muted', p.url));\n"
	"  if (p.id) who.append(el('div', 'mono muted', p.id.slice(0, 16) + "
	"'\\u2026'));\n"
	"  if (p.last_refusal) who.append(el('div', 'refusal', 'Refused: ' + "
	"p.last_refusal));\n"
	"  const sync = el('td', 'last-sync', ago(p.last_sync_ms, now));\n"
	"  sync.dataset.ms = String(p.last_sync_ms);\n"
	"  sync.title = stamp(p.last_sync_ms);\n"
	"  const err = el('td', 'last-error');\n"
	"  if (p.last_error) {\n"
	"    err.append(el('div', 'err', p.last_error), el('div', 'muted "
	"small', ago(p.last_error_ms, now)));\n"
	"    err.title = stamp(p.last_error_ms);\n"
	"  } else {\n"
	"    err.append(el('span', 'muted', 'none'));\n"
	"  }\n"
	"  tr.append(ind, who, waiting(p.pending_send, 'pending-send'),\n"
	"            waiting(p.pending_recv, 'pending-recv'), sync, err);\n"
	"  return tr;\n"
	"}\n"
	"function render(d) {\n"
	"  $('node-id').textContent = d.node.id.slice(0, 16) + '\\u2026';\n"
	"  $('node-id').title = d.node.id;\n"
	"  for (const k of ['records', 'changes', 'conflicts']) "
	"$(k).textContent = d.node[k].toLocaleString();\n"
	"  $('connected').textContent = d.node.peers_connected;\n"
	"  for (const c of ['green', 'yellow', 'red']) $('sum-' + "
	"c).textContent = d.summary[c];\n"
	"  const body = $('peers');\n"
	"  /* Worst first: with hundreds of branches, red must not scroll "
	"away. */\n"
	"  const rank = {red: 0, yellow: 1, green: 2};\n"
	"  const peers = d.peers.slice().sort((a, b) => rank[a.indicator] - "
	"rank[b.indicator]);\n"
	"  body.replaceChildren(...peers.map((p) => peerRow(p, d.time_ms)));\n"
	"  $('no-peers').hidden = d.peers.length > 0;\n"
	"  $('status').hidden = false;\n"
	"}\n"
	"function problem(text) {\n"
	"  $('problem').textContent = text || '';\n"
	"  $('problem').hidden = !text;\n"
	"}\n"
	"function askKey(text) {\n"
	"  clearTimeout(timer);\n"
	"  $('status').hidden = true;\n"
	"  $('key-form').hidden = false;\n"
	"  problem(text);\n"
	"  $('key-input').focus();\n"
	"}\n"
	"async function refresh() {\n"
	"  clearTimeout(timer);\n"
	"  if (!key) { askKey(''); return; }\n"
	"  try {\n"
	"    const res = await fetch('/api/sync/status', {headers: "
	"{'X-API-Key': key}, cache: 'no-store'});\n"
	"    if (res.status === 401 || res.status === 403) {\n"
	"      try { sessionStorage.removeItem('ferry-key'); } catch (e) {}\n"
	"      key = null;\n"
	"      askKey('The hub refused this API key (HTTP ' + res.status + "
	"'). Paste another one.');\n"
	"      return;\n"
	"    }\n"
	"    if (!res.ok) throw new Error('HTTP ' + res.status);\n"
	"    render(await res.json());\n"
	"    lastOk = Date.now();\n"
	"    problem('');\n"
	"    $('updated').textContent = 'Last updated ' + new "
	"Date(lastOk).toLocaleTimeString();\n"
	"    $('updated').dataset.ms = String(lastOk);\n"
	"  } catch (e) {\n"
	"    problem('Cannot reach the hub: ' + e.message + (lastOk ? '. "
	"Figures below are from ' + new Date(lastOk).toLocaleTimeString() : "
	"'') + '.');\n"
	"  }\n"
	"  timer = setTimeout(refresh, REFRESH_MS);\n"
	"}\n"
	"$('key-form').addEventListener('submit', (ev) => {\n"
	"  ev.preventDefault();\n"
	"  key = $('key-input').value.trim();\n"
	"  $('key-input').value = '';\n"
	"  if (!key) return;\n"
	"  try { sessionStorage.setItem('ferry-key', key); } catch (e) {}\n"
	"  $('key-form').hidden = true;\n"
	"  refresh();\n"
	"});\n"
	"refresh();\n"
	"</script>\n"
	"</body>\n"
	"</html>\n";

static void get_page(hub_request *r)
{
	hub_reply_raw(r, 200, "text/html; charset=utf-8", status_page,
		      sizeof(status_page) - 1);
}

const hub_route hub_status_routes[] = {
	{"GET", "/", get_page, 1},
	{"GET", "/healthz", get_healthz, 1},
	{"GET", "/metrics", get_metrics, 0},
	{"GET", "/api/sync/status", get_sync_status, 0},
	{NULL, NULL, NULL, 0},
};
