/*
 * hub.c — the hub's HTTP side: authentication, routing, JSON replies, long
 * polls and request metrics (hub.h). Endpoint work lives in rest_*.c.
 *
 * A request's life: the transport hands over a whole request → the route
 * is matched (404 / 405 otherwise) → unless the route is public, the API
 * key (X-API-Key, or Authorization: Bearer) is looked up (401 if missing,
 * unknown or revoked: revocation is immediate because every request reads
 * the key table) → the handler runs and replies exactly once, now or after
 * hub_park() → the reply is counted per route, by status class and
 * latency, and the request is freed.
 */
#include "hub.h"

#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apikey.h"
#include "ferry_json.h"

/* A scope of 64 bytes holds at most 32 '/'-separated parts. */
#define MAX_PATH_SEGMENTS 40
#define MAX_KEY_HEADER 256

const double hub_latency_bounds[HUB_LATENCY_BUCKETS] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
};

/* A parked long poll. */
typedef struct parked {
	hub_request *r;
	uint64_t cursor, deadline_ms;
	void (*retry)(hub_request *r, int timed_out);
	struct parked *next;
} parked;

struct hub {
	ferry_node *node;
	hub_config config;
	char *pricelist_scope;
	const hub_route **routes;
	size_t nroutes;
	hub_stats stats;
	parked *parked;
	hub_net_view net;
};

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ------------------------------------------------------------------------ */
/* Replies                                                                  */
/* ------------------------------------------------------------------------ */

static void count(hub_request *r, int status, size_t bytes)
{
	hub_stats *st = &r->hub->stats;
	st->bytes_out += bytes;
	if (!r->route)
		return;
	for (size_t i = 0; i < st->nroutes; i++) {
		hub_route_stats *rs = &st->routes[i];
		double s;
		if (rs->route != r->route)
			continue;
		if (status < 400)
			rs->requests_2xx++;
		else if (status < 500)
			rs->requests_4xx++;
		else
			rs->requests_5xx++;
		s = (double)(now_us() - r->started_us) / 1e6;
		for (int b = 0; b < HUB_LATENCY_BUCKETS; b++)
			if (s <= hub_latency_bounds[b])
				rs->latency_buckets[b]++;
		rs->latency_sum_s += s;
		rs->latency_count++;
		return;
	}
}

static void request_free(hub_request *r)
{
	for (size_t i = 0; i < r->nparams; i++)
		free(r->params[i]);
	if (r->key) {
		hub_key *k = (hub_key *)r->key;
		hub_key_clear(k);
		free(k);
	}
	free(r);
}

void hub_reply_raw(hub_request *r, int status, const char *content_type,
		   const void *body, size_t len)
{
	http_respond(r->x, status, content_type, body, len, NULL);
	count(r, status, len);
	request_free(r);
}

void hub_reply_json(hub_request *r, int status, json_t *body)
{
	char *text;
	if (!body) {
		hub_reply_error(r, 500, "internal", "out of memory");
		return;
	}
	text = json_dumps(body, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(body);
	if (!text) {
		hub_reply_error(r, 500, "internal", "out of memory");
		return;
	}
	hub_reply_raw(r, status, "application/json", text, strlen(text));
	free(text);
}

void hub_reply_error(hub_request *r, int status, const char *code,
		     const char *fmt, ...)
{
	char message[512];
	json_t *body;
	char *text;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	ferry_utf8_trim(message);
	body = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message",
			 message);
	text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (text) {
		hub_reply_raw(r, status, "application/json", text,
			      strlen(text));
		free(text);
	} else {
		static const char oom[] =
			"{\"error\": {\"code\": \"internal\", \"message\": "
			"\"out of memory\"}}";
		hub_reply_raw(r, 500, "application/json", oom, sizeof(oom) - 1);
	}
}

/* ------------------------------------------------------------------------ */
/* Input                                                                    */
/* ------------------------------------------------------------------------ */

json_t *hub_body_json(hub_request *r)
{
	json_error_t error;
	json_t *doc;
	if (!r->http->body_len) {
		hub_reply_error(r, 400, "bad_json",
				"the request needs a JSON body");
		return NULL;
	}
	doc = json_loadb((const char *)r->http->body, r->http->body_len,
			 JSON_REJECT_DUPLICATES, &error);
	if (!doc) {
		hub_reply_error(r, 400, "bad_json",
				"malformed JSON at line %d, column %d: %s",
				error.line, error.column, error.text);
		return NULL;
	}
	return doc;
}

int hub_query(hub_request *r, const char *name, char *out, size_t out_len)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < r->http->nargs; i++) {
		const char *arg = r->http->args[i];
		const char *value;
		if (strncmp(arg, name, n) || (arg[n] != '=' && arg[n]))
			continue;
		value = arg[n] ? arg + n + 1 : "";
		if (strlen(value) >= out_len) {
			hub_reply_error(r, 400, "bad_query",
					"query parameter %s is longer than "
					"%zu bytes",
					name, out_len - 1);
			return -1;
		}
		memcpy(out, value, strlen(value) + 1);
		return 1;
	}
	return 0;
}

int hub_query_u64(hub_request *r, const char *name, uint64_t dflt, uint64_t max,
		  uint64_t *out)
{
	char text[32], *end;
	int found = hub_query(r, name, text, sizeof(text));
	unsigned long long v;
	if (found < 0)
		return -1;
	if (!found) {
		*out = dflt;
		return 0;
	}
	v = strtoull(text, &end, 10);
	if (!text[0] || *end || text[0] == '-' || v > max) {
		hub_reply_error(r, 400, "bad_query",
				"query parameter %s must be an integer from 0 "
				"to %llu, not \"%s\"",
				name, (unsigned long long)max, text);
		return -1;
	}
	*out = v;
	return 0;
}

/* One field's value as msgpack, within the limits; fills the failure. */
static int check_value(const char *name, const json_t *value,
		       msgpack_sbuffer *buf, int *status, const char **code,
		       char *why, size_t why_len)
{
	ferry_err err;
	buf->size = 0;
	err = ferry_json_to_msgpack(buf, value);
	*status = 400;
	*code = "invalid_fields";
	if (err == FERRY_E_LIMIT)
		snprintf(why, why_len,
			 "field \"%s\" nests deeper than %d levels", name,
			 FERRY_JSON_MAX_DEPTH);
	else if (err == FERRY_E_INVALID)
		snprintf(why, why_len,
			 "field \"%s\": a $bin or $msgpack value that does not "
			 "decode to exactly one value",
			 name);
	else if (err) {
		*status = 500;
		*code = "out_of_memory";
		snprintf(why, why_len, "field \"%s\": %s", name,
			 ferry_strerror(err));
	} else if (buf->size > FERRY_MAX_VALUE_BYTES) {
		*status = 413;
		*code = "too_large";
		snprintf(
			why, why_len,
			"field \"%s\" is %zu bytes as msgpack; the limit is %d",
			name, buf->size, FERRY_MAX_VALUE_BYTES);
	} else {
		return 0;
	}
	return -1;
}

int hub_check_fields(const json_t *fields, int *status, const char **code,
		     char *why, size_t why_len)
{
	msgpack_sbuffer buf;
	const char *name;
	json_t *value;
	int rc = -1;

	*status = 400;
	*code = "invalid_fields";
	if (!json_is_object(fields)) {
		snprintf(why, why_len,
			 "the fields must be a JSON object, not %s",
			 json_is_array(fields)	  ? "an array"
			 : json_is_string(fields) ? "a string"
			 : json_is_null(fields)	  ? "null"
						  : "a scalar");
		return -1;
	}
	if (json_object_size(fields) == 0) {
		snprintf(why, why_len,
			 "the fields object must name at least one field");
		return -1;
	}
	if (json_object_size(fields) > FERRY_MAX_FIELDS_PER_WRITE) {
		*status = 413;
		*code = "too_large";
		snprintf(why, why_len,
			 "%zu fields in one write; the limit is %d",
			 json_object_size(fields), FERRY_MAX_FIELDS_PER_WRITE);
		return -1;
	}
	msgpack_sbuffer_init(&buf);
	for (void *it = json_object_iter((json_t *)fields); it;
	     it = json_object_iter_next((json_t *)fields, it)) {
		size_t len = json_object_iter_key_len(it);
		name = json_object_iter_key(it);
		value = json_object_iter_value(it);
		if (len == 0 || strlen(name) != len) {
			snprintf(why, why_len,
				 "a field name is empty or holds a NUL "
				 "character");
			goto out;
		}
		if (len > FERRY_MAX_FIELD_NAME_BYTES) {
			*status = 413;
			*code = "too_large";
			snprintf(why, why_len,
				 "field name \"%.40s...\" is %zu bytes; the "
				 "limit "
				 "is %d",
				 name, len, FERRY_MAX_FIELD_NAME_BYTES);
			goto out;
		}
		if (check_value(name, value, &buf, status, code, why, why_len))
			goto out;
	}
	rc = 0;
out:
	msgpack_sbuffer_destroy(&buf);
	if (rc)
		ferry_utf8_trim(why);
	return rc;
}

ferry_err hub_record_json(json_t **out, const ferry_record *rec, json_t *id)
{
	json_t *obj = json_object();
	/* json_object_set_new_nocheck() takes `id` even when it fails. */
	if (!obj || !id || json_object_set_new_nocheck(obj, "id", id)) {
		if (!obj)
			json_decref(id);
		json_decref(obj);
		return FERRY_E_NOMEM;
	}
	size_t n = ferry_record_field_count(rec);
	for (size_t i = 0; i < n; i++) {
		ferry_field_info f;
		json_t *v;
		ferry_record_field(rec, i, &f);
		if (strcmp(f.name, "id") == 0)
			continue;
		ferry_err err =
			ferry_json_from_msgpack(&v, f.value, f.value_len);
		/* Field names were checked to be UTF-8 when written. */
		if (!err && json_object_set_new_nocheck(obj, f.name, v))
			err = FERRY_E_NOMEM;
		if (err) {
			json_decref(obj);
			return err;
		}
	}
	*out = obj;
	return FERRY_OK;
}

typedef struct scan_json_ctx {
	json_t *list;
	json_t *(*id_of)(const char *key);
	ferry_err err;
} scan_json_ctx;

static int scan_json_one(const ferry_record *rec, void *payload)
{
	scan_json_ctx *c = payload;
	json_t *obj;
	c->err = hub_record_json(&obj, rec, c->id_of(ferry_record_key(rec)));
	if (!c->err && json_array_append_new(c->list, obj))
		c->err = FERRY_E_NOMEM;
	return c->err != FERRY_OK;
}

ferry_err hub_scan_json(json_t *list, ferry_node *node, const char *scope,
			const char *collection,
			json_t *(*id_of)(const char *key))
{
	if (!list)
		return FERRY_E_NOMEM;
	scan_json_ctx c = {list, id_of, FERRY_OK};
	ferry_err err =
		ferry_scan(node, scope, collection, NULL, scan_json_one, &c);
	return err ? err : c.err;
}

/* ------------------------------------------------------------------------ */
/* Authorization                                                            */
/* ------------------------------------------------------------------------ */

int hub_key_reads(const hub_key *k, const char *scope)
{
	return k && grant_allows(&k->read, scope);
}

int hub_key_reads_all(const hub_key *k)
{
	for (size_t i = 0; k && i < k->read.n; i++)
		if (!strcmp(k->read.patterns[i], "*"))
			return 1;
	return 0;
}

int hub_key_writes(const hub_key *k, const char *scope)
{
	return k && grant_allows(&k->write, scope);
}

int hub_may_read(hub_request *r, const char *scope)
{
	if (hub_key_reads(r->key, scope))
		return 1;
	hub_reply_error(
		r, 403, "forbidden", "API key %s (%s) may not read scope %s",
		r->key ? r->key->id : "?", r->key ? r->key->name : "", scope);
	return 0;
}

int hub_may_write(hub_request *r, const char *scope)
{
	if (hub_key_writes(r->key, scope))
		return 1;
	hub_reply_error(
		r, 403, "forbidden", "API key %s (%s) may not write scope %s",
		r->key ? r->key->id : "?", r->key ? r->key->name : "", scope);
	return 0;
}

const char *hub_write_scope(hub_request *r)
{
	const grant *w = &r->key->write;
	if (w->n == 1 && !strchr(w->patterns[0], '*'))
		return w->patterns[0];
	hub_reply_error(r, 400, "ambiguous_scope",
			"this endpoint writes into the API key's one writable "
			"scope, but key %s (%s) may write %s; create a key "
			"whose --write names exactly one scope",
			r->key->id, r->key->name,
			w->n == 0 ? "no scope" : "several scopes or a pattern");
	return NULL;
}

/* The presented key: X-API-Key, else "Authorization: Bearer <key>". */
static int presented_key(http_exchange *x, char *out, size_t len)
{
	char auth[MAX_KEY_HEADER + 16];
	if (http_header(x, "X-API-Key", out, len) > 0)
		return 1;
	if (http_header(x, "Authorization", auth, sizeof(auth)) > 7 &&
	    !strncmp(auth, "Bearer ", 7) && strlen(auth + 7) < len) {
		memcpy(out, auth + 7, strlen(auth + 7) + 1);
		return 1;
	}
	return 0;
}

int hub_authenticate(hub_request *r)
{
	char token[MAX_KEY_HEADER];
	hub_key *key = calloc(1, sizeof(*key));
	int have = presented_key(r->x, token, sizeof(token));
	if (!key) {
		hub_reply_error(r, 500, "internal", "out of memory");
		return 0;
	}
	ferry_err err =
		have ? apikey_lookup(r->node, token, key) : FERRY_E_NOT_FOUND;
	if (err && err != FERRY_E_NOT_FOUND) {
		free(key);
		hub_reply_error(r, 500, "internal",
				"cannot read the API key table: %s "
				"(run ferry apikey ls)",
				ferry_strerror(err));
		return 0;
	}
	if (err) {
		free(key);
		r->hub->stats.unauthorized++;
		hub_reply_error(r, 401, "unauthorized",
				have ? "unknown or revoked API key"
				     : "this endpoint needs an API key: "
				       "send X-API-Key: <key> or "
				       "Authorization: Bearer <key>");
		return 0;
	}
	r->key = key;
	return 1;
}

/* ------------------------------------------------------------------------ */
/* Long polling                                                             */
/* ------------------------------------------------------------------------ */

static void unpark(hub *h, hub_request *r)
{
	for (parked **p = &h->parked; *p; p = &(*p)->next) {
		if ((*p)->r == r) {
			parked *gone = *p;
			*p = gone->next;
			free(gone);
			return;
		}
	}
}

/* The client went away: nobody to answer. */
static void parked_aborted(void *ctx)
{
	hub_request *r = ctx;
	unpark(r->hub, r);
	request_free(r);
}

void hub_park(hub_request *r, uint64_t cursor, uint64_t wait_ms,
	      void (*retry)(hub_request *r, int timed_out))
{
	parked *p = calloc(1, sizeof(*p));
	if (!p) {
		hub_reply_error(r, 500, "internal", "out of memory");
		return;
	}
	p->r = r;
	p->cursor = cursor;
	p->deadline_ms = ferry_node_now_ms(r->node) + wait_ms;
	p->retry = retry;
	p->next = r->hub->parked;
	r->hub->parked = p;
	http_on_abort(r->x, parked_aborted, r);
}

void hub_tick(hub *h, uint64_t cursor)
{
	uint64_t now_ms = ferry_node_now_ms(h->node);
	parked *ready = NULL, **p = &h->parked;
	/* Detach first: a retry may park its request again, and that new
	 * entry waits for the next tick. */
	while (*p) {
		parked *w = *p;
		if (cursor <= w->cursor && now_ms < w->deadline_ms) {
			p = &w->next;
			continue;
		}
		*p = w->next;
		w->next = ready;
		ready = w;
	}
	while (ready) {
		parked *w = ready;
		ready = w->next;
		http_on_abort(w->r->x, NULL, NULL);
		w->retry(w->r, cursor <= w->cursor);
		free(w);
	}
}

/* ------------------------------------------------------------------------ */
/* Routing                                                                  */
/* ------------------------------------------------------------------------ */

/* Segments of `path` (cut in place); more than MAX_PATH_SEGMENTS returns
 * MAX_PATH_SEGMENTS + 1 and fills only the first MAX_PATH_SEGMENTS. */
static size_t split_path(char *path, char **segs)
{
	size_t n = 0;
	for (char *p = strtok(path, "/"); p; p = strtok(NULL, "/")) {
		if (n == MAX_PATH_SEGMENTS)
			return n + 1;
		segs[n++] = p;
	}
	return n;
}

static int ends_in_slash(const char *path)
{
	size_t n = strlen(path);
	return n > 1 && path[n - 1] == '/';
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decode in place; a stray '%' stays as it is. */
static void percent_decode(char *s)
{
	char *out = s;
	for (; *s; s++) {
		int hi, lo;
		if (*s == '%' && (hi = hex_value(s[1])) >= 0 &&
		    (lo = hex_value(s[2])) >= 0 && (hi || lo)) {
			*out++ = (char)(hi << 4 | lo);
			s += 2;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

/* Join segs[from .. from+n) with '/' into a new string. */
static char *join(char *const *segs, size_t from, size_t n)
{
	size_t len = 0;
	char *out;
	for (size_t i = 0; i < n; i++)
		len += strlen(segs[from + i]) + 1;
	out = malloc(len ? len : 1);
	if (!out)
		return NULL;
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (i)
			strcat(out, "/");
		strcat(out, segs[from + i]);
	}
	return out;
}

/* 1 if the path matches the route's pattern; with `r`, fill its params. */
static int match(const hub_route *route, char *const *segs, size_t nsegs,
		 int trailing_slash, hub_request *r)
{
	char pattern[128], *psegs[MAX_PATH_SEGMENTS];
	size_t np, greedy = MAX_PATH_SEGMENTS, span = 1;
	snprintf(pattern, sizeof(pattern), "%s", route->pattern);
	if (ends_in_slash(route->pattern) != trailing_slash)
		return 0;
	np = split_path(pattern, psegs);
	for (size_t i = 0; i < np; i++)
		if (!strcmp(psegs[i], "{*}"))
			greedy = i;
	if (greedy == MAX_PATH_SEGMENTS ? np != nsegs : nsegs < np)
		return 0;
	if (greedy != MAX_PATH_SEGMENTS)
		span = nsegs - np + 1;
	for (size_t i = 0, s = 0; i < np; i++) {
		size_t take = i == greedy ? span : 1;
		int param = !strcmp(psegs[i], "{}") || i == greedy;
		if (!param && strcmp(psegs[i], segs[s]))
			return 0;
		if (param && r && r->nparams < HUB_MAX_PARAMS) {
			char *value = join(segs, s, take);
			if (value)
				percent_decode(value);
			r->params[r->nparams++] = value;
		}
		s += take;
	}
	return 1;
}

void hub_handle(http_exchange *x, const http_request *req, void *payload)
{
	hub *h = payload;
	hub_request *r = calloc(1, sizeof(*r));
	char *path, *segs[MAX_PATH_SEGMENTS];
	const hub_route *found = NULL;
	int path_known = 0;
	size_t nsegs;

	if (!r) {
		http_respond(x, 500, "application/json", "{}", 2, NULL);
		return;
	}
	r->hub = h;
	r->node = h->node;
	r->config = &h->config;
	r->x = x;
	r->http = req;
	r->started_us = now_us();
	h->stats.bytes_in += req->body_len + strlen(req->path);
	path = strdup(req->path);
	if (!path) {
		hub_reply_error(r, 500, "internal", "out of memory");
		return;
	}
	int slash = ends_in_slash(req->path);
	nsegs = split_path(path, segs);
	if (nsegs > MAX_PATH_SEGMENTS) {
		free(path);
		hub_reply_error(r, 414, "path_too_long",
				"the path has more than %d segments",
				MAX_PATH_SEGMENTS);
		return;
	}
	for (size_t i = 0; i < h->nroutes && !found; i++) {
		if (!match(h->routes[i], segs, nsegs, slash, NULL))
			continue;
		path_known = 1;
		if (!strcmp(h->routes[i]->method, req->method) ||
		    (!strcmp(req->method, "HEAD") &&
		     !strcmp(h->routes[i]->method, "GET")))
			found = h->routes[i];
	}
	if (found)
		match(found, segs, nsegs, slash, r);
	free(path);
	for (size_t i = 0; i < r->nparams; i++)
		if (!r->params[i]) {
			hub_reply_error(r, 500, "internal", "out of memory");
			return;
		}
	if (!found) {
		h->stats.unmatched++;
		if (path_known)
			hub_reply_error(r, 405, "method_not_allowed",
					"%s is not allowed on %s", req->method,
					req->path);
		else
			hub_reply_error(r, 404, "not_found",
					"no endpoint %s %s (see "
					"docs/rest-api.md)",
					req->method, req->path);
		return;
	}
	r->route = found;
	if (!found->public_route && !hub_authenticate(r))
		return;
	found->handler(r);
}

/* ------------------------------------------------------------------------ */
/* Lifetime                                                                 */
/* ------------------------------------------------------------------------ */

static ferry_err add_routes(hub *h, const hub_route *list)
{
	for (; list->method; list++) {
		const hub_route **grown;
		hub_route_stats *stats;
		grown = realloc(h->routes, (h->nroutes + 1) * sizeof(*grown));
		if (!grown)
			return FERRY_E_NOMEM;
		h->routes = grown;
		stats = realloc(h->stats.routes,
				(h->nroutes + 1) * sizeof(*stats));
		if (!stats)
			return FERRY_E_NOMEM;
		h->stats.routes = stats;
		memset(&stats[h->nroutes], 0, sizeof(*stats));
		stats[h->nroutes].route = list;
		h->routes[h->nroutes++] = list;
	}
	h->stats.nroutes = h->nroutes;
	return FERRY_OK;
}

ferry_err hub_new(hub **out, ferry_node *node, const hub_config *config)
{
	hub *h = calloc(1, sizeof(*h));
	ferry_err err = FERRY_OK;
	*out = NULL;
	if (!h)
		return FERRY_E_NOMEM;
	h->node = node;
	h->config = *config;
	h->pricelist_scope =
		strdup(config->pricelist_scope ? config->pricelist_scope
					       : "pricelist");
	h->config.pricelist_scope = h->pricelist_scope;
	/* Fixed paths before patterns that could swallow them. */
	const hub_route *lists[] = {hub_status_routes, hub_desktop_routes,
				    hub_watermelon_routes, hub_hooks_routes,
				    hub_generic_routes};
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]) && !err; i++)
		err = add_routes(h, lists[i]);
	if (err || !h->pricelist_scope) {
		hub_free(h);
		return err ? err : FERRY_E_NOMEM;
	}
	*out = h;
	return FERRY_OK;
}

void hub_free(hub *h)
{
	if (!h)
		return;
	while (h->parked) {
		parked *p = h->parked;
		h->parked = p->next;
		hub_reply_error(p->r, 503, "shutting_down",
				"the hub is shutting down");
		free(p);
	}
	free(h->routes);
	free(h->stats.routes);
	free(h->pricelist_scope);
	free(h);
}

const hub_stats *hub_get_stats(const hub *h)
{
	return &h->stats;
}

void hub_get_net_view(const hub *h, hub_net_view *out)
{
	*out = h->net;
}

void hub_set_net_view(hub *h, const hub_net_view *view)
{
	h->net = *view;
}
