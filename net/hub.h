/*
 * hub.h — the hub's HTTP side: JSON endpoints for clients that do not speak
 * ferry.v1 (docs/rest-api.md). hub.c authenticates every request by API
 * key, routes it to a handler of one of the endpoint modules, answers
 * errors as JSON, counts requests for /metrics and parks long polls; the
 * modules (rest_*.c) only do their endpoint's work.
 *
 * Everything runs on the event loop's thread. A handler must answer its
 * request exactly once, through hub_reply_*() (directly or after
 * hub_park()), and must not block.
 */
#ifndef FERRY_HUB_H
#define FERRY_HUB_H

#include <jansson.h>

#include "ferry.h"
#include "grant.h"
#include "transport.h"

typedef struct hub hub;

typedef struct hub_config {
	/* The head-office scope profile 1 serves as "nomenclature". */
	const char *pricelist_scope;
	size_t max_body;     /* bytes; larger requests get 413 */
	size_t max_actions;  /* per upload or batch request */
	uint32_t max_wait_s; /* upper bound of ?wait= long polls */
	/* The adapters' runtime (adapter.h), for POST /hooks/{adapter};
	 * NULL = none. */
	struct adapters *adapters;
} hub_config;

/* An authenticated API key (apikey.h). */
typedef struct hub_key {
	char id[17]; /* 16 hex digits of the key's hash: stable, not secret */
	char name[65];
	grant read, write;
} hub_key;

#define HUB_MAX_PARAMS 4

typedef struct hub_request {
	hub *hub;
	ferry_node *node;
	const hub_config *config;
	http_exchange *x;
	const http_request *http;
	const hub_key *key; /* NULL on public routes */
	/* Path parameters matched by "{}" in the route, percent-decoded. */
	char *params[HUB_MAX_PARAMS];
	size_t nparams;
	const struct hub_route *route;
	uint64_t started_us;
} hub_request;

/* ------------------------------------------------------------------------ */
/* Replies: exactly one per request. They free the request.                 */
/* ------------------------------------------------------------------------ */

/* `body` is stolen (NULL → 500 "out of memory"). */
void hub_reply_json(hub_request *r, int status, json_t *body);

/* {"error": {"code": code, "message": ...}} with `status`. Codes are short
 * stable words ("bad_json", "forbidden", "not_found", "too_large", ...). */
void hub_reply_error(hub_request *r, int status, const char *code,
		     const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

void hub_reply_raw(hub_request *r, int status, const char *content_type,
		   const void *body, size_t len);

/* ------------------------------------------------------------------------ */
/* Input                                                                    */
/* ------------------------------------------------------------------------ */

/* The body as JSON. On a missing or malformed body replies 400
 * ("bad_json", naming line and column) and returns NULL: the handler just
 * returns. The caller owns the result (json_decref). */
json_t *hub_body_json(hub_request *r);

/* Query parameter `name`, percent-decoded into out. Returns 1 if present,
 * 0 if absent; -1 after replying 400 if malformed or too long. */
int hub_query(hub_request *r, const char *name, char *out, size_t out_len);

/* An unsigned query parameter (default if absent). Returns 0, or -1 after
 * replying 400 naming the parameter and its bounds. */
int hub_query_u64(hub_request *r, const char *name, uint64_t dflt, uint64_t max,
		  uint64_t *out);

/* Check a JSON object of fields before it is written: 1 to
 * FERRY_MAX_FIELDS_PER_WRITE fields, names non-empty, without NUL and
 * within FERRY_MAX_FIELD_NAME_BYTES, values that convert to msgpack nested
 * at most FERRY_JSON_MAX_DEPTH deep and within FERRY_MAX_VALUE_BYTES. On a
 * failure fills *status (400, or 413 for a size limit), *code and `why`
 * (naming the field) and returns -1; 0 otherwise. Every endpoint that
 * writes JSON fields checks them here, so ferry_json_put() can then fail
 * only in the engine, whose node detail says why. */
int hub_check_fields(const json_t *fields, int *status, const char **code,
		     char *why, size_t why_len);

/* A record as {"id": id, field: value, ...} — the shape both compatibility
 * profiles send. `id` is stolen; a stored field also named "id" is left
 * out (the record's id wins). Errors: FERRY_E_NOMEM, value decoding. */
ferry_err hub_record_json(json_t **out, const ferry_record *rec, json_t *id);

/* Append every live record of (scope, collection) to the array `list`, one
 * scan, each as hub_record_json() with the "id" id_of(key) makes (a new
 * reference). Errors: as ferry_scan and hub_record_json. */
ferry_err hub_scan_json(json_t *list, ferry_node *node, const char *scope,
			const char *collection,
			json_t *(*id_of)(const char *key));

/* ------------------------------------------------------------------------ */
/* Authorization                                                            */
/* ------------------------------------------------------------------------ */

/* Look up the request's API key (X-API-Key, or Authorization: Bearer):
 * returns 1 with r->key set, or 0 after replying 401 (missing, unknown or
 * revoked key) or 500 (the key table cannot be read). hub_handle() calls it
 * for every non-public route; a public route whose access depends on its
 * configuration (POST /hooks/{adapter} in API-key mode) calls it itself. */
int hub_authenticate(hub_request *r);

/* 1 if the key may read / write `scope`; otherwise replies 403 naming the
 * scope and the key, and returns 0. */
int hub_may_read(hub_request *r, const char *scope);
int hub_may_write(hub_request *r, const char *scope);

/* The same without replying. */
int hub_key_reads(const hub_key *k, const char *scope);
/* 1 if the key's read grant is "*": it may see node-wide figures
 * (/metrics name every scope; a tenant's key must not). */
int hub_key_reads_all(const hub_key *k);
int hub_key_writes(const hub_key *k, const char *scope);

/* The key's single writable scope, an exact name (the compatibility
 * profiles write there). With none, a pattern, or several, replies 400
 * saying so and returns NULL. */
const char *hub_write_scope(hub_request *r);

/* ------------------------------------------------------------------------ */
/* Long polling                                                             */
/* ------------------------------------------------------------------------ */

/* Park the request until the node's change cursor moves past `cursor` or
 * `wait_ms` pass (by the node's clock); then `retry` runs with timed_out
 * set accordingly, and must reply or park again. A client that
 * disconnects while parked is dropped without a reply. */
void hub_park(hub_request *r, uint64_t cursor, uint64_t wait_ms,
	      void (*retry)(hub_request *r, int timed_out));

/* ------------------------------------------------------------------------ */
/* Routes                                                                   */
/* ------------------------------------------------------------------------ */

typedef void (*hub_handler)(hub_request *r);

typedef struct hub_route {
	const char *method;
	/* Path segments separated by '/'. "{}" matches one segment; "{*}"
	 * (at most one per pattern) matches one or more, joined with '/' —
	 * for scope names like "1/1", since the HTTP server decodes %2F
	 * before routing, the path is split from the right around it. A
	 * pattern ending in '/' matches only paths ending in '/', and the
	 * reverse. Each matched parameter is percent-decoded once more, so
	 * %252F keeps a '/' inside one segment (a key such as "2026/11"). */
	const char *pattern;
	hub_handler handler;
	int public_route; /* no API key needed (health, the status page) */
} hub_route;

/* Each endpoint module's routes, each list ending with {NULL}. */
extern const hub_route hub_generic_routes[];	/* rest_generic.c */
extern const hub_route hub_desktop_routes[];	/* rest_desktop.c */
extern const hub_route hub_watermelon_routes[]; /* rest_watermelon.c */
extern const hub_route hub_status_routes[];	/* rest_status.c */
extern const hub_route hub_hooks_routes[];	/* rest_hooks.c */

/* ------------------------------------------------------------------------ */
/* Metrics (hub.c keeps them; rest_status.c renders /metrics)               */
/* ------------------------------------------------------------------------ */

#define HUB_LATENCY_BUCKETS 12
/* Upper bounds in seconds of the latency histogram's buckets. */
extern const double hub_latency_bounds[HUB_LATENCY_BUCKETS];

typedef struct hub_route_stats {
	const hub_route *route;
	uint64_t requests_2xx, requests_4xx, requests_5xx;
	uint64_t latency_buckets[HUB_LATENCY_BUCKETS]; /* cumulative counts */
	double latency_sum_s;
	uint64_t latency_count;
} hub_route_stats;

typedef struct hub_stats {
	hub_route_stats *routes; /* one per route, in registration order */
	size_t nroutes;
	uint64_t unmatched;    /* 404 for unknown paths */
	uint64_t unauthorized; /* 401: missing or unknown key */
	uint64_t bytes_in, bytes_out;
} hub_stats;

const hub_stats *hub_get_stats(const hub *h);

/* The network node's peers' status and counters, for /api/sync/status and
 * /metrics (NULL when the hub runs without ferry_net). */
typedef struct hub_net_view {
	uint64_t peers_connected;
	uint64_t changes_sent, changes_received;
} hub_net_view;

void hub_get_net_view(const hub *h, hub_net_view *out);

/* ------------------------------------------------------------------------ */
/* Lifetime (net.c)                                                         */
/* ------------------------------------------------------------------------ */

ferry_err hub_new(hub **out, ferry_node *node, const hub_config *config);
void hub_free(hub *h);

/* The transport's http_handler. */
void hub_handle(http_exchange *x, const http_request *req, void *payload);

/* Called by the loop's tick: wakes parked requests whose cursor moved or
 * deadline passed. */
void hub_tick(hub *h, uint64_t cursor);

/* net.c tells the hub what its sessions report. */
void hub_set_net_view(hub *h, const hub_net_view *view);

#endif
