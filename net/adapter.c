/*
 * adapter.c — the adapters' runtime: one thread, one libcurl multi handle
 * for every adapter's requests, the configuration in force (swapped on
 * reload, kept alive while webhooks borrow it), authentication (static
 * credentials, OAuth2 tokens) and the status other processes read.
 *
 * The thread wakes at least every 2 ms (curl_multi_poll's timeout) to
 * notice new changes in the feed, as net.c's tick does for peers.
 */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sodium.h>

#include "adapter_rt.h"
#include "kvjson.h"
#include "secret.h"

#define POLL_MS 2
#define STATUS_WRITE_MS 250
#define ERROR_REPEAT_MS 10000
/* Ask for a new token when this share of its lifetime has passed. */
#define TOKEN_REFRESH_SHARE 0.8
#define TOKEN_RESPONSE_MAX (64 * 1024)

/* A configuration and how many borrowers hold it. */
typedef struct held_config {
	adapter_config *cfg;
	unsigned refs; /* the runtime's own counts as one while current */
	struct held_config *next;
} held_config;

struct adapters {
	ferry_node *node;
	char *path;
	adapters_log_fn log;
	void *log_payload;
	pthread_t thread;
	int thread_started;
	volatile sig_atomic_t stop, reload;

	pthread_mutex_t lock; /* guards `held` */
	held_config *held;    /* the first is current */

	CURLM *multi;
	http_call *calls; /* in flight */
	/* Finished easy handles kept for the next calls: a fresh one per
	 * request costs more than the request on a fast local system. */
	CURL *idle[64];
	size_t nidle;
	adapter_rt *ads;
	size_t nads;
	uint64_t control_gen, reload_seen;
	uint64_t last_status_ms;
	uint64_t loaded_ms;
	char reload_error[1100];
};

/* ------------------------------------------------------------------------ */
/* Logging                                                                  */
/* ------------------------------------------------------------------------ */

static void vlog_line(adapters *a, int level, const char *fmt, va_list ap)
{
	static const char *const names[] = {"error", "warn", "info"};
	char line[700];
	vsnprintf(line, sizeof(line), fmt, ap);
	if (a->log)
		a->log(level, line, a->log_payload);
	else
		fprintf(stderr, "ferry: %s: %s\n", names[level], line);
}

static void runtime_log(adapters *a, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void runtime_log(adapters *a, int level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog_line(a, level, fmt, ap);
	va_end(ap);
}

void adapter_log(adapter_rt *ad, int level, const char *fmt, ...)
{
	char line[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	runtime_log(ad->owner, level, "adapter %s: %s", ad->def->name, line);
}

void adapter_error(adapter_rt *ad, const char *fmt, ...)
{
	char text[sizeof(ad->last_error)];
	uint64_t now = adapter_now_ms(ad);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	ferry_utf8_trim(text);
	/* The same failure again and again (a store that keeps failing)
	 * is logged once every 10 s, not at the loop's pace. */
	int repeat = !strcmp(text, ad->last_error) &&
		     now - ad->last_logged_ms < ERROR_REPEAT_MS;
	memcpy(ad->last_error, text, sizeof(text));
	ad->last_error_ms = now;
	if (repeat)
		return;
	ad->last_logged_ms = now;
	adapter_log(ad, 1, "%s", ad->last_error);
}

void adapter_excerpt(char *out, size_t out_size, const char *text, size_t len)
{
	size_t n = 0;
	/* Anything not UTF-8, and control characters but newline and tab,
	 * become '?': the excerpt is for people, and must be valid JSON
	 * text. */
	for (size_t i = 0; i < len && n + 4 < out_size;) {
		size_t cl = ferry_utf8_char(text + i, len - i);
		if (!cl || (cl == 1 && (unsigned char)text[i] < 0x20 &&
			    text[i] != '\n' && text[i] != '\t')) {
			out[n++] = '?';
			i++;
			continue;
		}
		memcpy(out + n, text + i, cl);
		n += cl;
		i += cl;
	}
	out[n] = '\0';
}

uint64_t adapter_now_ms(const adapter_rt *ad)
{
	return ferry_node_now_ms(ad->node);
}

uint64_t adapter_backoff_ms(const adapter_rt *ad, unsigned attempt)
{
	uint64_t ms = ad->def->retry_base_ms;
	for (unsigned i = 1; i < attempt && ms < ad->def->retry_max_ms; i++)
		ms *= 2;
	if (ms > ad->def->retry_max_ms)
		ms = ad->def->retry_max_ms;
	/* ±25 %: many sites failing together must not retry together. */
	uint64_t spread = ms / 2;
	if (spread > UINT32_MAX)
		spread = UINT32_MAX;
	return ms - ms / 4 +
	       (spread ? randombytes_uniform((uint32_t)spread) : 0);
}

/* ------------------------------------------------------------------------ */
/* HTTP calls                                                               */
/* ------------------------------------------------------------------------ */

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	http_call *call = arg;
	size_t len = size * n;
	if (call->response_len + len > call->response_max) {
		call->too_large = 1;
		return 0; /* curl fails the transfer: CURLE_WRITE_ERROR */
	}
	if (call->response_len + len + 1 > call->response_cap) {
		size_t cap = call->response_cap ? call->response_cap : 4096;
		while (cap < call->response_len + len + 1)
			cap *= 2;
		char *grown = realloc(call->response, cap);
		if (!grown)
			return 0;
		call->response = grown;
		call->response_cap = cap;
	}
	memcpy(call->response + call->response_len, data, len);
	call->response_len += len;
	call->response[call->response_len] = '\0';
	return len;
}

/* The target of rel="next" in one Link header value (RFC 8288):
 * `<url>; rel="next", <url>; rel="last"`. malloc'd or NULL. */
static char *link_next(const char *v, size_t len)
{
	const char *end = v + len;
	while (v < end) {
		const char *lt = memchr(v, '<', (size_t)(end - v));
		const char *gt =
			lt ? memchr(lt, '>', (size_t)(end - lt)) : NULL;
		if (!gt)
			return NULL;
		const char *params = gt + 1;
		const char *stop = memchr(params, '<', (size_t)(end - params));
		if (!stop)
			stop = end;
		/* rel's value: one or more space-separated relation types. */
		for (const char *r = params; r + 4 <= stop; r++) {
			if (strncasecmp(r, "rel=", 4))
				continue;
			const char *t = r + 4 + (r[4] == '"');
			const char *te = t;
			while (te < stop && *te != '"' && *te != ';' &&
			       *te != ',')
				te++;
			for (const char *w = t; w < te;) {
				const char *we = w;
				while (we < te && *we != ' ')
					we++;
				if (we - w == 4 && !strncasecmp(w, "next", 4))
					return strndup(lt + 1,
						       (size_t)(gt - lt - 1));
				w = we + (we < te);
			}
		}
		v = stop;
	}
	return NULL;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	http_call *call = arg;
	size_t len = size * n;
	char value[128];
	if (len > 5 && !strncasecmp(data, "Link:", 5) && !call->next_link)
		call->next_link = link_next(data + 5, len - 5);
	if (len > 12 && !strncasecmp(data, "Retry-After:", 12)) {
		size_t vlen = len - 12;
		if (vlen >= sizeof(value))
			vlen = sizeof(value) - 1;
		memcpy(value, data + 12, vlen);
		value[vlen] = '\0';
		char *v = value + strspn(value, " \t");
		v[strcspn(v, "\r\n")] = '\0';
		char *end;
		unsigned long long secs = strtoull(v, &end, 10);
		if (end != v && !*end) {
			call->retry_after_ms =
				secs > 86400 ? 86400000 : (int64_t)secs * 1000;
		} else {
			time_t when = curl_getdate(v, NULL);
			uint64_t now = adapter_now_ms(call->ad);
			if (when > 0 && (uint64_t)when * 1000 > now)
				call->retry_after_ms =
					(int64_t)((uint64_t)when * 1000 - now);
		}
	}
	return len;
}

static struct curl_slist *add_header(struct curl_slist *list, const char *name,
				     const char *value)
{
	size_t len = strlen(name) + strlen(value) + 3;
	char *line = malloc(len);
	struct curl_slist *grown = NULL;
	if (line) {
		snprintf(line, len, "%s: %s", name, value);
		grown = curl_slist_append(list, line);
		sodium_memzero(line, len); /* may be a credential */
		free(line);
	}
	if (!grown)
		curl_slist_free_all(list);
	return grown;
}

/* The adapter's auth header and constant configured headers. */
static struct curl_slist *auth_headers(adapter_rt *ad, struct curl_slist *list,
				       int *sent_token)
{
	const adapter_def *def = ad->def;
	char *bearer = NULL;
	switch (def->auth.type) {
	case ADAPTER_AUTH_NONE:
		break;
	case ADAPTER_AUTH_HEADER:
		if (ad->credential)
			list = add_header(list, def->auth.header_name,
					  ad->credential);
		break;
	case ADAPTER_AUTH_BEARER:
	case ADAPTER_AUTH_OAUTH2: {
		const char *t = def->auth.type == ADAPTER_AUTH_BEARER
					? ad->credential
					: ad->token;
		if (!t)
			break;
		size_t len = strlen(t) + 8;
		bearer = malloc(len);
		if (!bearer) {
			curl_slist_free_all(list);
			return NULL;
		}
		snprintf(bearer, len, "Bearer %s", t);
		list = add_header(list, "Authorization", bearer);
		sodium_memzero(bearer, len);
		free(bearer);
		*sent_token = def->auth.type == ADAPTER_AUTH_OAUTH2;
		break;
	}
	}
	for (const struct curl_slist *h = ad->fixed_headers; list && h;
	     h = h->next) {
		struct curl_slist *grown = curl_slist_append(list, h->data);
		if (!grown)
			curl_slist_free_all(list);
		list = grown;
	}
	return list;
}

/* The configured headers without placeholders, rendered once: they go
 * with every request (record headers are rendered by the push). */
static ferry_err fixed_headers(adapter_rt *ad)
{
	const adapter_def *def = ad->def;
	for (size_t i = 0; i < def->nheaders; i++) {
		if (!tmpl_is_constant(def->headers[i].value))
			continue;
		char why[64];
		json_t *v = tmpl_render_record(def->headers[i].value, TMPL_TEXT,
					       NULL, NULL, why, sizeof(why));
		char *text = v ? tmpl_text(v) : NULL;
		json_decref(v);
		if (text)
			ad->fixed_headers = add_header(
				ad->fixed_headers, def->headers[i].name, text);
		free(text);
		if (!text || !ad->fixed_headers)
			return FERRY_E_NOMEM;
	}
	return FERRY_OK;
}

static void call_unlink(http_call *call)
{
	adapters *a = call->ad->owner;
	curl_multi_remove_handle(a->multi, call->easy);
	if (call->prev)
		call->prev->next = call->next;
	else
		a->calls = call->next;
	if (call->next)
		call->next->prev = call->prev;
}

static void call_free(http_call *call)
{
	adapters *a = call->ad->owner;
	if (call->easy && a->nidle < sizeof(a->idle) / sizeof(a->idle[0])) {
		curl_easy_reset(call->easy);
		a->idle[a->nidle++] = call->easy;
	} else if (call->easy) {
		curl_easy_cleanup(call->easy);
	}
	curl_slist_free_all(call->headers);
	free(call->method);
	free(call->url);
	free(call->body);
	free(call->response);
	free(call->next_link);
	free(call);
}

http_call *http_start(adapter_rt *ad, const char *method, const char *url,
		      const struct curl_slist *headers, const char *body,
		      const char *content_type, size_t response_max, int bare,
		      http_done_fn done, void *arg)
{
	const char *base = ad->def->base_url;
	int absolute =
		!strncmp(url, "http://", 7) || !strncmp(url, "https://", 8);
	http_call *call = calloc(1, sizeof(*call));
	if (!call)
		return NULL;
	call->ad = ad;
	call->done = done;
	call->arg = arg;
	call->retry_after_ms = -1;
	call->response_max = response_max;
	call->method = strdup(method);
	size_t ulen = strlen(url) + (absolute || !base ? 0 : strlen(base)) + 1;
	call->url = malloc(ulen);
	if (call->url)
		snprintf(call->url, ulen, "%s%s", absolute || !base ? "" : base,
			 url);
	call->body = body ? strdup(body) : NULL;
	call->easy = ad->owner->nidle ? ad->owner->idle[--ad->owner->nidle]
				      : curl_easy_init();
	if (!call->method || !call->url || (body && !call->body) || !call->easy)
		goto fail;

	struct curl_slist *list = NULL;
	for (const struct curl_slist *h = headers; h; h = h->next)
		if (!(list = curl_slist_append(list, h->data)))
			goto fail;
	/* No "Expect: 100-continue" round trip before bodies. */
	if (!(list = curl_slist_append(list, "Expect:")))
		goto fail;
	if (content_type && body)
		if (!(list = add_header(list, "Content-Type", content_type)))
			goto fail;
	if (!bare && !(list = auth_headers(ad, list, &call->sent_token)))
		goto fail;
	call->headers = list;

	CURL *e = call->easy;
	curl_easy_setopt(e, CURLOPT_URL, call->url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)ad->def->timeout_ms);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, call->headers);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, call);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, call);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, call->error);
	curl_easy_setopt(e, CURLOPT_PRIVATE, call);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "ferry-adapter");
	if (!strcmp(method, "GET"))
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	else
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	if (call->body) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, call->body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE,
				 (long)strlen(call->body));
	}
	if (curl_multi_add_handle(ad->owner->multi, e) != CURLM_OK)
		goto fail;
	call->next = ad->owner->calls;
	if (call->next)
		call->next->prev = call;
	ad->owner->calls = call;
	return call;
fail:
	adapter_error(ad, "cannot start %s %s: out of memory", method, url);
	call_free(call);
	return NULL;
}

void http_abandon(http_call *call)
{
	call_unlink(call);
	call_free(call);
}

void http_describe(const http_call *call, char *out, size_t len)
{
	if (call->too_large)
		snprintf(out, len, "response larger than %zu bytes",
			 call->response_max);
	else if (call->status)
		snprintf(out, len, "HTTP %ld", call->status);
	else if (call->result == CURLE_OPERATION_TIMEDOUT)
		snprintf(out, len, "timed out after %" PRIu32 " ms",
			 call->ad->def->timeout_ms);
	else
		snprintf(out, len, "%s",
			 call->error[0] ? call->error
					: curl_easy_strerror(call->result));
}

int http_retryable(const http_call *call)
{
	if (call->too_large)
		return 0;
	return !call->status || call->status == 429 || call->status >= 500;
}

/* Run the callbacks of finished calls; how many finished. */
static unsigned finish_calls(adapters *a)
{
	CURLMsg *msg;
	int left;
	unsigned finished = 0;
	while ((msg = curl_multi_info_read(a->multi, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		http_call *call = NULL;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
				  (char **)&call);
		call->result = msg->data.result;
		if (call->result == CURLE_OK ||
		    call->result == CURLE_WRITE_ERROR)
			curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE,
					  &call->status);
		if (call->result != CURLE_OK && !call->too_large)
			call->status = 0;
		call_unlink(call);
		call->done(call, call->arg);
		call_free(call);
		finished++;
	}
	return finished;
}

/* ------------------------------------------------------------------------ */
/* Authentication                                                           */
/* ------------------------------------------------------------------------ */

static void token_secret_name(char out[SECRET_NAME_MAX + 1],
			      const adapter_rt *ad)
{
	snprintf(out, SECRET_NAME_MAX + 1, "adapter.%s.token", ad->def->name);
}

static void wipe(char **s)
{
	if (*s) {
		sodium_memzero(*s, strlen(*s));
		free(*s);
		*s = NULL;
	}
}

static void auth_failed(adapter_rt *ad, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void auth_failed(adapter_rt *ad, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ad->auth_error, sizeof(ad->auth_error), fmt, ap);
	va_end(ap);
	ferry_utf8_trim(ad->auth_error);
	ad->auth_attempts++;
	ad->auth_error_ms = adapter_now_ms(ad);
	ad->auth_retry_ms =
		ad->auth_error_ms + adapter_backoff_ms(ad, ad->auth_attempts);
	adapter_error(ad, "auth: %s", ad->auth_error);
}

/* Keep a token (and a rotated refresh token) encrypted in the store, so
 * a restart reuses it instead of asking again. */
static void save_token(adapter_rt *ad)
{
	char name[SECRET_NAME_MAX + 1];
	json_t *doc = json_pack("{s:s, s:I}", "access_token", ad->token,
				"expires_ms", (json_int_t)ad->token_expires_ms);
	if (doc && ad->refresh_token) {
		json_object_set_new(doc, "refresh_token",
				    json_string(ad->refresh_token));
		json_object_set_new(doc, "seed", json_string(ad->refresh_seed));
	}
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	token_secret_name(name, ad);
	if (!text || secret_set(ad->node, name, text, strlen(text)))
		adapter_error(ad, "cannot store the OAuth2 token: %s",
			      ferry_node_errmsg(ad->node));
	wipe(&text);
}

static void load_token(adapter_rt *ad)
{
	char name[SECRET_NAME_MAX + 1];
	char *text = NULL;
	size_t len;
	token_secret_name(name, ad);
	if (secret_get(&text, &len, ad->node, name))
		return;
	json_t *doc = json_loadb(text, len, 0, NULL);
	secret_free(text, len);
	const char *token =
		json_string_value(json_object_get(doc, "access_token"));
	const char *refresh =
		json_string_value(json_object_get(doc, "refresh_token"));
	json_int_t expires =
		json_integer_value(json_object_get(doc, "expires_ms"));
	if (token) {
		ad->token = strdup(token);
		ad->token_expires_ms = (uint64_t)expires;
		/* The issue time is not stored, so 80 % of the lifetime is not
		 * known: a stored token is refreshed when it expires. */
		ad->token_refresh_ms = ad->token_expires_ms;
	}
	const char *seed = json_string_value(json_object_get(doc, "seed"));
	if (refresh && seed && strlen(seed) < sizeof(ad->refresh_seed)) {
		ad->refresh_token = strdup(refresh);
		strcpy(ad->refresh_seed, seed);
	}
	json_decref(doc);
}

static void token_done(http_call *call, void *arg)
{
	adapter_rt *ad = arg;
	char what[CURL_ERROR_SIZE + 64];
	ad->token_pending = 0;
	if (call->status < 200 || call->status >= 300) {
		http_describe(call, what, sizeof(what));
		/* The endpoint's own words ({"error": "invalid_client"}) tell
		 * people what to fix; a token endpoint's errors hold no
		 * credentials. */
		char said[201];
		adapter_excerpt(said, sizeof(said),
				call->response ? call->response : "",
				call->response_len);
		for (char *c = said; *c; c++)
			if (*c == '\n' || *c == '\t')
				*c = ' '; /* one line in logs and status */
		auth_failed(ad, "token endpoint %s answered %s%s%s", call->url,
			    what, said[0] ? ": " : "", said);
		return;
	}
	json_t *doc = json_loadb(call->response ? call->response : "",
				 call->response_len, 0, NULL);
	const char *token =
		json_string_value(json_object_get(doc, "access_token"));
	const json_t *expires_in = json_object_get(doc, "expires_in");
	const char *refresh =
		json_string_value(json_object_get(doc, "refresh_token"));
	if (!token || !*token) {
		json_decref(doc);
		auth_failed(ad,
			    "token endpoint %s answered without an "
			    "access_token",
			    call->url);
		return;
	}
	uint64_t now = adapter_now_ms(ad);
	wipe(&ad->token);
	ad->token = strdup(token);
	if (json_is_number(expires_in) && json_number_value(expires_in) > 0) {
		double life_ms = json_number_value(expires_in) * 1000.0;
		ad->token_expires_ms = now + (uint64_t)life_ms;
		ad->token_refresh_ms =
			now + (uint64_t)(life_ms * TOKEN_REFRESH_SHARE);
	} else {
		ad->token_expires_ms = UINT64_MAX;
		ad->token_refresh_ms = UINT64_MAX;
	}
	if (refresh && *refresh) {
		wipe(&ad->refresh_token);
		ad->refresh_token = strdup(refresh);
	}
	json_decref(doc);
	ad->token_invalid = 0;
	ad->auth_attempts = 0;
	ad->auth_error[0] = '\0';
	save_token(ad);
	adapter_log(ad, 2, "auth: new OAuth2 access token");
}

/* application/x-www-form-urlencoded pair. */
static int form_add(char **form, CURL *esc, const char *name, const char *value)
{
	char *v = curl_easy_escape(esc, value, 0);
	size_t old = *form ? strlen(*form) : 0;
	size_t len = old + strlen(name) + (v ? strlen(v) : 0) + 3;
	char *grown = v ? realloc(*form, len) : NULL;
	if (grown)
		snprintf(grown + old, len - old, "%s%s=%s", old ? "&" : "",
			 name, v);
	if (v) {
		sodium_memzero(v, strlen(v));
		curl_free(v);
	}
	if (!grown)
		return -1;
	*form = grown;
	return 0;
}

static char *secret_text(adapter_rt *ad, const char *name)
{
	char *value = NULL;
	size_t len;
	ferry_err err = secret_get(&value, &len, ad->node, name);
	if (err) {
		auth_failed(ad,
			    "secret %s %s (store it with: ferry secret set "
			    "%s)",
			    name,
			    err == FERRY_E_NOT_FOUND ? "is not stored"
						     : ferry_strerror(err),
			    name);
		return NULL;
	}
	return value;
}

static void request_token(adapter_rt *ad)
{
	const adapter_auth *auth = &ad->def->auth;
	char *form = NULL, *client_secret = NULL, *refresh = NULL;
	CURL *esc = curl_easy_init();
	int refreshing = auth->grant == ADAPTER_GRANT_REFRESH_TOKEN;
	if (!esc)
		return;
	if (auth->client_secret &&
	    !(client_secret = secret_text(ad, auth->client_secret)))
		goto out;
	if (refreshing) {
		/* The configured refresh token seeds the chain of rotated
		 * ones; once an operator stores a new one (the old chain
		 * revoked: invalid_grant), it wins over the rotated token. */
		char seed[ADAPTER_HASH_BYTES];
		if (!(refresh = secret_text(ad, auth->refresh_token)))
			goto out;
		json_t *v = json_string(refresh);
		adapter_value_hash(seed, v);
		json_decref(v);
		if (strcmp(seed, ad->refresh_seed)) {
			wipe(&ad->refresh_token);
			memcpy(ad->refresh_seed, seed, sizeof(seed));
		}
	}
	if (form_add(&form, esc, "grant_type",
		     refreshing ? "refresh_token" : "client_credentials") ||
	    form_add(&form, esc, "client_id", auth->client_id) ||
	    (client_secret &&
	     form_add(&form, esc, "client_secret", client_secret)) ||
	    (refreshing &&
	     form_add(&form, esc, "refresh_token",
		      ad->refresh_token ? ad->refresh_token : refresh)) ||
	    (auth->scope && form_add(&form, esc, "scope", auth->scope))) {
		auth_failed(ad, "out of memory");
		goto out;
	}
	struct curl_slist *accept = curl_slist_append(NULL, "Accept: "
							    "application/json");
	if (http_start(ad, "POST", auth->token_url, accept, form,
		       "application/x-www-form-urlencoded", TOKEN_RESPONSE_MAX,
		       1, token_done, ad))
		ad->token_pending = 1;
	curl_slist_free_all(accept);
out:
	wipe(&form);
	wipe(&client_secret);
	wipe(&refresh);
	curl_easy_cleanup(esc);
}

int adapter_auth_renew(adapter_rt *ad, const http_call *call)
{
	switch (ad->def->auth.type) {
	case ADAPTER_AUTH_OAUTH2:
		if (!call->sent_token)
			return 0;
		ad->token_invalid = 1;
		return 1;
	case ADAPTER_AUTH_HEADER:
	case ADAPTER_AUTH_BEARER:
		if (!ad->credential)
			return 0;
		wipe(&ad->credential);
		return 1;
	case ADAPTER_AUTH_NONE:
		break;
	}
	return 0;
}

int adapter_auth_ready(adapter_rt *ad, uint64_t now)
{
	const adapter_def *def = ad->def;
	if (def->auth.type == ADAPTER_AUTH_NONE)
		return 1;
	if (def->auth.type != ADAPTER_AUTH_OAUTH2) {
		if (!ad->credential && now >= ad->auth_retry_ms) {
			char *v = secret_text(ad, def->auth.secret);
			if (v) {
				ad->credential = v;
				ad->auth_error[0] = '\0';
			}
		}
		return ad->credential != NULL;
	}
	int usable =
		ad->token && !ad->token_invalid && now < ad->token_expires_ms;
	int due =
		!ad->token || ad->token_invalid || now >= ad->token_refresh_ms;
	if (due && !ad->token_pending && now >= ad->auth_retry_ms)
		request_token(ad);
	return usable;
}

/* ------------------------------------------------------------------------ */
/* Adapters in force                                                        */
/* ------------------------------------------------------------------------ */

static void close_adapter(adapter_rt *ad)
{
	pull_close(ad);
	push_close(ad);
	curl_slist_free_all(ad->fixed_headers);
	wipe(&ad->credential);
	wipe(&ad->token);
	wipe(&ad->refresh_token);
}

static void close_all(adapters *a)
{
	/* Calls in flight first: their callbacks point into the adapters. */
	while (a->calls)
		http_abandon(a->calls);
	for (size_t i = 0; i < a->nads; i++)
		close_adapter(&a->ads[i]);
	free(a->ads);
	a->ads = NULL;
	a->nads = 0;
}

static ferry_err open_all(adapters *a, const adapter_config *cfg)
{
	uint64_t now = ferry_node_now_ms(a->node);
	a->ads = calloc(cfg->n ? cfg->n : 1, sizeof(*a->ads));
	if (!a->ads)
		return FERRY_E_NOMEM;
	for (size_t i = 0; i < cfg->n; i++) {
		adapter_rt *ad = &a->ads[i];
		ad->owner = a;
		ad->node = a->node;
		ad->def = &cfg->adapters[i];
		adapter_table(ad->table, ad->def->name, "");
		adapter_table(ad->dlq_table, ad->def->name, ".dlq");
		a->nads++;
		if (ad->def->auth.type == ADAPTER_AUTH_OAUTH2)
			load_token(ad);
		ferry_err err = fixed_headers(ad);
		if (!err)
			err = push_open(ad);
		if (!err)
			err = pull_open(ad, now);
		if (err)
			return err;
	}
	return FERRY_OK;
}

static void write_running(adapters *a)
{
	json_t *doc = json_pack("{s:s, s:I}", "path", a->path, "loaded",
				(json_int_t)a->loaded_ms);
	if (doc && a->reload_error[0]) {
		json_object_set_new(doc, "error", json_string(a->reload_error));
		/* Each refused reload answers `ferry adapter reload`, even
		 * when it fails the same way as the last one. */
		json_object_set_new(
			doc, "error_time",
			json_integer((json_int_t)ferry_node_now_ms(a->node)));
	}
	if (kvjson_put(a->node, ADAPTER_CONTROL_TABLE, "running", doc))
		runtime_log(a, 0, "adapters: cannot write status: %s",
			    ferry_node_errmsg(a->node));
	json_decref(doc);
}

/* Put `cfg` in force (the caller holds the lock). */
static ferry_err install(adapters *a, adapter_config *cfg)
{
	held_config *h = calloc(1, sizeof(*h));
	if (!h)
		return FERRY_E_NOMEM;
	h->cfg = cfg;
	h->refs = 1;
	h->next = a->held;
	if (a->held)
		a->held->refs--; /* the runtime's own hold on the old one */
	a->held = h;
	/* Free configurations nobody borrows any more. */
	for (held_config **p = &a->held->next; *p;) {
		if ((*p)->refs == 0) {
			held_config *dead = *p;
			*p = dead->next;
			adapter_config_free(dead->cfg);
			free(dead);
		} else {
			p = &(*p)->next;
		}
	}
	return FERRY_OK;
}

static void do_reload(adapters *a)
{
	adapter_config *cfg;
	char why[1024];
	ferry_err err = adapter_config_load(&cfg, a->path, why, sizeof(why));
	if (err) {
		snprintf(a->reload_error, sizeof(a->reload_error),
			 "reload refused, the previous configuration stays: "
			 "%s",
			 why);
		ferry_utf8_trim(a->reload_error);
		runtime_log(a, 0, "adapters: %s", a->reload_error);
		write_running(a);
		return;
	}
	for (size_t i = 0; i < a->nads; i++)
		push_flush(&a->ads[i], ferry_node_now_ms(a->node), 1);
	close_all(a);
	pthread_mutex_lock(&a->lock);
	err = install(a, cfg);
	pthread_mutex_unlock(&a->lock);
	if (err) {
		adapter_config_free(cfg);
		runtime_log(a, 0, "adapters: reload: out of memory");
	}
	a->reload_error[0] = '\0';
	a->loaded_ms = ferry_node_now_ms(a->node);
	err = open_all(a, a->held->cfg);
	if (err)
		runtime_log(a, 0, "adapters: cannot start: %s",
			    ferry_strerror(err));
	else
		runtime_log(a, 2,
			    "adapters: configuration %s loaded (%zu "
			    "adapters)",
			    a->path, a->nads);
	write_running(a);
}

/* `ferry adapter reload` bumps adapter.control "reload". */
static int reload_requested(adapters *a)
{
	uint64_t gen = 0;
	json_t *doc;
	if (ferry_kv_generation(&gen, a->node, ADAPTER_CONTROL_TABLE) ||
	    gen == a->control_gen)
		return 0;
	a->control_gen = gen;
	if (kvjson_get(&doc, a->node, ADAPTER_CONTROL_TABLE, "reload"))
		return 0;
	uint64_t requested =
		(uint64_t)json_integer_value(json_object_get(doc, "requested"));
	json_decref(doc);
	if (requested <= a->reload_seen)
		return 0;
	a->reload_seen = requested;
	return 1;
}

/* ------------------------------------------------------------------------ */
/* Status                                                                   */
/* ------------------------------------------------------------------------ */

static json_t *auth_status(const adapter_rt *ad)
{
	static const char *const types[] = {"none", "header", "bearer",
					    "oauth2"};
	json_t *auth = json_pack("{s:s}", "type", types[ad->def->auth.type]);
	if (!auth)
		return NULL;
	if (ad->token && !ad->token_invalid &&
	    ad->token_expires_ms != UINT64_MAX)
		json_object_set_new(
			auth, "token_expires",
			json_integer((json_int_t)ad->token_expires_ms));
	if (ad->token_invalid)
		json_object_set_new(auth, "token_refused", json_true());
	if (ad->auth_error[0]) {
		json_object_set_new(auth, "error", json_string(ad->auth_error));
		json_object_set_new(
			auth, "error_time",
			json_integer((json_int_t)ad->auth_error_ms));
	}
	return auth;
}

static json_t *adapter_status(adapter_rt *ad, uint64_t now, uint64_t feed_last)
{
	uint64_t queued;
	double lag_s;
	push_lag(ad, now, &queued, &lag_s);
	json_t *st = json_pack(
		"{s:s, s:I, s:s, s:I, s:I, s:I, s:f, s:I, s:I, s:I, s:I, s:I, "
		"s:I, s:o, s:o}",
		"name", ad->def->name, "updated", (json_int_t)now, "state",
		"running", "cursor", (json_int_t)ad->cursor, "feed_last",
		(json_int_t)feed_last, "lag_changes",
		(json_int_t)(feed_last > ad->cursor ? feed_last - ad->cursor
						    : 0),
		"lag_seconds", lag_s, "queued", (json_int_t)queued, "delivered",
		(json_int_t)ad->delivered, "skipped", (json_int_t)ad->skipped,
		"retries", (json_int_t)ad->retries, "dead_letters",
		(json_int_t)ad->dead_letters, "in_flight",
		(json_int_t)ad->in_flight, "auth", auth_status(ad), "pulls",
		pull_status(ad));
	if (st && ad->last_error[0])
		json_object_set_new(st, "last_error",
				    json_pack("{s:s, s:I}", "text",
					      ad->last_error, "time",
					      (json_int_t)ad->last_error_ms));
	return st;
}

/* Every adapter's status in one commit: one flush to disk a quarter
 * second, however many adapters run. */
static void write_status(adapters *a, uint64_t now)
{
	uint64_t feed_last = 0;
	ferry_txn *txn;
	ferry_changes_last(&feed_last, a->node);
	ferry_err err = ferry_txn_begin(&txn, a->node);
	for (size_t i = 0; !err && i < a->nads; i++) {
		json_t *st = adapter_status(&a->ads[i], now, feed_last);
		err = kvjson_txn_put(txn, ADAPTER_STATUS_TABLE,
				     a->ads[i].def->name, st);
		json_decref(st);
	}
	if (!err)
		err = ferry_txn_commit(txn);
	else
		ferry_txn_abort(txn);
	if (err)
		runtime_log(a, 0, "adapters: cannot write status: %s",
			    ferry_node_errmsg(a->node));
}

/* ------------------------------------------------------------------------ */
/* The thread                                                               */
/* ------------------------------------------------------------------------ */

static void *run(void *arg)
{
	adapters *a = arg;
	while (!a->stop) {
		uint64_t now = ferry_node_now_ms(a->node), feed_last = 0;
		if (a->reload || reload_requested(a)) {
			a->reload = 0;
			do_reload(a);
		}
		ferry_changes_last(&feed_last, a->node);
		for (size_t i = 0; i < a->nads; i++) {
			adapter_rt *ad = &a->ads[i];
			push_step(ad, now, feed_last);
			pull_step(ad, now);
		}
		int running = 0;
		curl_multi_perform(a->multi, &running);
		unsigned finished = finish_calls(a);
		if (now - a->last_status_ms >= STATUS_WRITE_MS) {
			a->last_status_ms = now;
			write_status(a, now);
		}
		/* A finished call frees a slot for the next change at once: an
		 * idle keep-alive connection has nothing to wake the poll. */
		if (!finished)
			curl_multi_poll(a->multi, NULL, 0, POLL_MS, NULL);
	}
	uint64_t now = ferry_node_now_ms(a->node);
	for (size_t i = 0; i < a->nads; i++)
		push_flush(&a->ads[i], now, 1);
	write_status(a, now);
	return NULL;
}

ferry_err adapters_start(adapters **out, ferry_node *node, const char *path,
			 adapters_log_fn log, void *log_payload, char *why,
			 size_t why_len)
{
	adapter_config *cfg;
	*out = NULL;
	ferry_err err = adapter_config_load(&cfg, path, why, why_len);
	if (err)
		return err;
	adapters *a = calloc(1, sizeof(*a));
	if (!a || !(a->path = strdup(path)) ||
	    curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    !(a->multi = curl_multi_init())) {
		if (a) {
			free(a->path);
			free(a);
		}
		adapter_config_free(cfg);
		snprintf(why, why_len, "out of memory");
		return FERRY_E_NOMEM;
	}
	a->node = node;
	a->log = log;
	a->log_payload = log_payload;
	pthread_mutex_init(&a->lock, NULL);
	install(a, cfg);
	a->loaded_ms = ferry_node_now_ms(node);
	ferry_kv_generation(&a->control_gen, node, ADAPTER_CONTROL_TABLE);
	err = open_all(a, cfg);
	if (!err) {
		write_running(a);
		if (pthread_create(&a->thread, NULL, run, a)) {
			snprintf(why, why_len, "cannot start a thread");
			err = FERRY_E_IO;
		} else {
			a->thread_started = 1;
		}
	} else {
		snprintf(why, why_len, "cannot start: %s", ferry_strerror(err));
	}
	if (err) {
		adapters_stop(a);
		return err;
	}
	runtime_log(a, 2, "adapters: %zu running from %s", a->nads, path);
	*out = a;
	return FERRY_OK;
}

void adapters_reload(adapters *a)
{
	a->reload = 1;
}

void adapters_stop(adapters *a)
{
	if (!a)
		return;
	a->stop = 1;
	if (a->thread_started) {
		curl_multi_wakeup(a->multi);
		pthread_join(a->thread, NULL);
	}
	close_all(a);
	while (a->nidle)
		curl_easy_cleanup(a->idle[--a->nidle]);
	curl_multi_cleanup(a->multi);
	while (a->held) {
		held_config *h = a->held;
		a->held = h->next;
		adapter_config_free(h->cfg);
		free(h);
	}
	pthread_mutex_destroy(&a->lock);
	free(a->path);
	free(a);
}

const adapter_config *adapters_acquire(adapters *a)
{
	pthread_mutex_lock(&a->lock);
	a->held->refs++;
	const adapter_config *cfg = a->held->cfg;
	pthread_mutex_unlock(&a->lock);
	return cfg;
}

void adapters_release(adapters *a, const adapter_config *cfg)
{
	pthread_mutex_lock(&a->lock);
	for (held_config **p = &a->held; *p; p = &(*p)->next) {
		if ((*p)->cfg != cfg)
			continue;
		if (--(*p)->refs == 0 && *p != a->held) {
			held_config *dead = *p;
			*p = dead->next;
			adapter_config_free(dead->cfg);
			free(dead);
		}
		break;
	}
	pthread_mutex_unlock(&a->lock);
}
