/*
 * adapter_rt.h — the adapters' runtime inside: what adapter.c (the thread,
 * HTTP calls, auth, status), adapter_push.c (the change feed to external
 * APIs) and adapter_pull.c (timed pulls) share. Everything here runs on
 * the runtime's one thread.
 */
#ifndef FERRY_ADAPTER_RT_H
#define FERRY_ADAPTER_RT_H

#include <stdint.h>

#include <curl/curl.h>
#include <jansson.h>

#include "adapter.h"
#include "adapter_state.h"

typedef struct adapter_rt adapter_rt;
typedef struct http_call http_call;

/* ------------------------------------------------------------------------ */
/* HTTP calls (adapter.c)                                                   */
/* ------------------------------------------------------------------------ */

typedef void (*http_done_fn)(http_call *call, void *arg);

struct http_call {
	adapter_rt *ad;
	http_call *prev, *next; /* the runtime's calls in flight */
	CURL *easy;
	struct curl_slist *headers;
	char *method, *url, *body; /* kept for dead-letter excerpts */
	char *response;		   /* NUL-terminated */
	size_t response_len, response_cap, response_max;
	int too_large;
	long status; /* 0 when no HTTP answer came */
	CURLcode result;
	int64_t retry_after_ms; /* -1: none given */
	char *next_link;	/* Link: <...>; rel="next", or NULL */
	int sent_token;		/* carried the OAuth2 access token */
	char error[CURL_ERROR_SIZE];
	http_done_fn done;
	void *arg;
};

/* Start a request: `url` absolute or relative to the adapter's base_url;
 * `headers` extra lines ("Name: value"), borrowed; `body` NULL or JSON
 * text (copied). Adds the adapter's auth and configured constant headers
 * unless `bare` (the token endpoint). `done` runs once, on this thread,
 * when the call ends; the call is freed after it returns. Returns NULL
 * (and logs) when it cannot even start. */
http_call *http_start(adapter_rt *ad, const char *method, const char *url,
		      const struct curl_slist *headers, const char *body,
		      const char *content_type, size_t response_max, int bare,
		      http_done_fn done, void *arg);

/* Abandon a call without running its callback. */
void http_abandon(http_call *call);

/* A short description of a failed call ("HTTP 503", "timed out after
 * 10000 ms", "connection refused"). */
void http_describe(const http_call *call, char *out, size_t len);

/* 1 if a failed call is worth retrying: no answer, 5xx, 429. */
int http_retryable(const http_call *call);

/* ------------------------------------------------------------------------ */
/* One adapter's runtime state                                              */
/* ------------------------------------------------------------------------ */

typedef struct push_item push_item;
typedef struct pull_rt pull_rt;

struct adapter_rt {
	adapters *owner;
	ferry_node *node;
	const adapter_def *def;
	char table[ADAPTER_TABLE_BYTES], dlq_table[ADAPTER_TABLE_BYTES];
	struct curl_slist *fixed_headers; /* "Name: value", constant ones */

	/* Auth: a static credential, or an OAuth2 access token. */
	char *credential; /* header value or bearer token; wiped on free */
	char *token, *refresh_token;
	/* Hash of the configured refresh-token secret the rotated
	 * refresh_token descends from. */
	char refresh_seed[ADAPTER_HASH_BYTES];
	uint64_t token_expires_ms, token_refresh_ms;
	int token_pending; /* a token request is in flight */
	int token_invalid; /* a 401 said so */
	unsigned auth_attempts;
	uint64_t auth_retry_ms;
	char auth_error[256];
	uint64_t auth_error_ms;

	/* Push (adapter_push.c). */
	uint64_t cursor;   /* everything up to here delivered or parked */
	uint64_t scan_pos; /* the feed is read up to here */
	push_item *queue, *queue_tail;
	size_t queued;
	push_item *redo; /* dead letters being sent again */
	unsigned in_flight;
	uint64_t dlq_gen;
	json_t *parked; /* record key -> [dead-letter ids], in order */
	json_t *dirty;	/* record key -> state to store */
	json_t *links;	/* [[collection, id, scope|null, key|null]] */
	json_t *writes; /* [[scope, collection, key, field, value]] */
	int cursor_dirty;
	uint64_t last_flush_ms;
	uint64_t delivered, skipped, retries, dead_letters;

	/* Pulls (adapter_pull.c). */
	pull_rt *pulls;

	char last_error[512];
	uint64_t last_error_ms, last_logged_ms;
};

/* Log a line and remember it as the adapter's last error. */
void adapter_error(adapter_rt *ad, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void adapter_log(adapter_rt *ad, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* A request was answered 401: drop the OAuth2 token it carried, or the
 * cached static credential, so the next request gets a fresh one. Returns
 * 1 if something was dropped (worth one more try), 0 if not. */
int adapter_auth_renew(adapter_rt *ad, const http_call *call);

/* 1 if requests may go out now (a usable credential or token). */
int adapter_auth_ready(adapter_rt *ad, uint64_t now);

/* Exponential backoff with ±25 % jitter for attempt n (1-based). */
uint64_t adapter_backoff_ms(const adapter_rt *ad, unsigned attempt);

uint64_t adapter_now_ms(const adapter_rt *ad);

/* text[0..len) cut to fit out_size as valid UTF-8 without control
 * characters (but newline and tab): for dead letters and errors. */
void adapter_excerpt(char *out, size_t out_size, const char *text, size_t len);

/* ------------------------------------------------------------------------ */
/* Push (adapter_push.c)                                                    */
/* ------------------------------------------------------------------------ */

ferry_err push_open(adapter_rt *ad);
/* Read the feed, start what may start, store what is done. */
void push_step(adapter_rt *ad, uint64_t now, uint64_t feed_last);
/* The dead-letter table changed (retry or drop from the CLI). */
void push_dlq_changed(adapter_rt *ad);
/* Store what is done (on stop: force). */
void push_flush(adapter_rt *ad, uint64_t now, int force);
void push_close(adapter_rt *ad);
/* For status: queued changes, age of the oldest undelivered one. */
void push_lag(const adapter_rt *ad, uint64_t now, uint64_t *queued,
	      double *lag_s);

/* ------------------------------------------------------------------------ */
/* Pulls (adapter_pull.c)                                                   */
/* ------------------------------------------------------------------------ */

ferry_err pull_open(adapter_rt *ad, uint64_t now);
void pull_step(adapter_rt *ad, uint64_t now);
void pull_close(adapter_rt *ad);
/* A JSON array describing each pull, for status. */
json_t *pull_status(const adapter_rt *ad);

#endif
