/*
 * adapter_pull.c — timed pulls (docs/adapters.md, "Pulls"): GET a list
 * endpoint every `every_s` seconds, page by page, and upsert its items
 * into a collection by external id. One page is one transaction; with
 * delete_missing, a complete and clean round deletes the linked records
 * the list no longer holds.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter_map.h"
#include "adapter_rt.h"

#define PAGE_RESPONSE_MAX (16 * 1024 * 1024)
#define MAX_PAGES 10000

struct pull_rt {
	adapter_rt *ad;
	const adapter_pull *p;
	uint64_t next_ms;
	int running, clean;
	int waiting_token; /* a 401: this page again with fresh credentials */
	int token_retried; /* ... once per page */
	unsigned page, attempts;
	char *page_url; /* the page being read; NULL: build page `page` */
	json_t *seen;	/* external id text -> true, this round */
	uint64_t last_run_ms, items, written, deleted;
	uint64_t round_items, round_written;
	char error[512];
	uint64_t error_ms;
};

static void pull_failed(pull_rt *pr, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void pull_failed(pull_rt *pr, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(pr->error, sizeof(pr->error), fmt, ap);
	va_end(ap);
	ferry_utf8_trim(pr->error);
	pr->error_ms = adapter_now_ms(pr->ad);
	adapter_error(pr->ad, "pull %s: %s", pr->p->name, pr->error);
}

/* The round ends: failed (try again after a backoff) or done. */
static void end_round(pull_rt *pr, int failed)
{
	uint64_t now = adapter_now_ms(pr->ad);
	uint64_t every = (uint64_t)pr->p->every_s * 1000;
	pr->running = 0;
	pr->waiting_token = 0;
	pr->token_retried = 0;
	free(pr->page_url);
	pr->page_url = NULL;
	json_decref(pr->seen);
	pr->seen = NULL;
	pr->last_run_ms = now;
	if (failed) {
		uint64_t wait = adapter_backoff_ms(pr->ad, ++pr->attempts);
		pr->next_ms = now + (wait < every ? wait : every);
		return;
	}
	pr->attempts = 0;
	pr->items = pr->round_items;
	pr->written = pr->round_written;
	pr->next_ms = now + every;
	if (pr->clean)
		pr->error[0] = '\0';
}

static void page_done(http_call *call, void *arg);

/* The URL of page `pr->page` by number (or the list itself when the pull
 * is not paged by numbers). malloc'd; NULL after reporting. */
static char *numbered_url(pull_rt *pr)
{
	const adapter_pull *p = pr->p;
	char why[256] = "", query[160] = "";
	json_t *v = tmpl_render_record(p->url, TMPL_TEXT, NULL, NULL, why,
				       sizeof(why));
	char *base = v ? tmpl_text(v) : NULL;
	json_decref(v);
	if (!base) {
		pull_failed(pr, "cannot build the URL: %s", why);
		return NULL;
	}
	if (p->paged) {
		int n = snprintf(query, sizeof(query), "%c%s=%u",
				 strchr(base, '?') ? '&' : '?', p->page_param,
				 pr->page);
		if (p->size_param)
			snprintf(query + n, sizeof(query) - (size_t)n,
				 "&%s=%" PRIu32, p->size_param, p->page_size);
	}
	size_t len = strlen(base) + strlen(query) + 1;
	char *url = malloc(len);
	if (url)
		snprintf(url, len, "%s%s", base, query);
	free(base);
	return url;
}

static void start_page(pull_rt *pr)
{
	if (!pr->page_url && !(pr->page_url = numbered_url(pr))) {
		end_round(pr, 1);
		return;
	}
	struct curl_slist *accept =
		curl_slist_append(NULL, "Accept: application/json");
	http_call *call =
		accept ? http_start(pr->ad, "GET", pr->page_url, accept, NULL,
				    NULL, PAGE_RESPONSE_MAX, 0, page_done, pr)
		       : NULL;
	curl_slist_free_all(accept);
	if (!call) {
		pull_failed(pr, "cannot start the request");
		end_round(pr, 1);
	}
}

/* `ref` (absolute, or relative as in a Link header or a "next" member)
 * resolved against the URL `base` it came with. malloc'd or NULL. */
static char *resolve_url(const char *base, const char *ref)
{
	CURLU *u = curl_url();
	char *joined = NULL, *out = NULL;
	if (u && !curl_url_set(u, CURLUPART_URL, base, 0) &&
	    !curl_url_set(u, CURLUPART_URL, ref, 0) &&
	    !curl_url_get(u, CURLUPART_URL, &joined, 0))
		out = strdup(joined);
	curl_free(joined);
	curl_url_cleanup(u);
	return out;
}

/* Where the next page is, by the pull's way of paging: a malloc'd URL,
 * or NULL at the end of the list (*failed set if the answer was wrong). */
static char *next_page(pull_rt *pr, const http_call *call, const json_t *doc,
		       size_t nitems, int *failed)
{
	const adapter_pull *p = pr->p;
	const json_t *v;
	char *url = NULL, *text, *base;
	*failed = 0;
	if (pr->page >= MAX_PAGES)
		return NULL;
	switch (p->next) {
	case ADAPTER_NEXT_NONE:
		if (!p->paged || nitems < p->page_size)
			return NULL;
		pr->page++;
		return numbered_url(pr);
	case ADAPTER_NEXT_LINK:
		url = call->next_link ? resolve_url(call->url, call->next_link)
				      : NULL;
		break;
	case ADAPTER_NEXT_URL:
		v = tmpl_pointer_get(doc, p->next_pointer);
		if (json_is_string(v) && json_string_length(v))
			url = resolve_url(call->url, json_string_value(v));
		break;
	case ADAPTER_NEXT_CURSOR:
		v = tmpl_pointer_get(doc, p->next_pointer);
		if (json_is_null(v) || !v ||
		    (json_is_string(v) && !json_string_length(v)))
			return NULL;
		text = adapter_id_text(v);
		base = numbered_url(pr);
		if (text && base) {
			char *esc = curl_easy_escape(NULL, text, 0);
			size_t len = strlen(base) + strlen(p->cursor_param) +
				     (esc ? strlen(esc) : 0) + 3;
			if (esc && (url = malloc(len)))
				snprintf(url, len, "%s%c%s=%s", base,
					 strchr(base, '?') ? '&' : '?',
					 p->cursor_param, esc);
			curl_free(esc);
		}
		free(text);
		free(base);
		break;
	}
	if (url && !strcmp(url, call->url)) {
		/* A list that points at itself would be read for ever. */
		pull_failed(pr, "GET %s: the next page is the same page",
			    call->url);
		free(url);
		*failed = 1;
		return NULL;
	}
	if (url)
		pr->page++;
	return url;
}

static int collect_key(const ferry_record *rec, void *arg)
{
	return json_array_append_new(arg, json_string(ferry_record_key(rec)));
}

/* A pull's constant scope or collection. malloc'd. */
static char *constant_text(const tmpl *t)
{
	char why[64];
	json_t *empty = json_object();
	json_t *v = empty ? tmpl_render_payload(t, TMPL_TEXT, empty, why,
						sizeof(why))
			  : NULL;
	char *text = v ? tmpl_text(v) : NULL;
	json_decref(v);
	json_decref(empty);
	return text;
}

/* Forget and delete the record `key` if it is linked to an external id
 * the round did not see. Returns 1 if it was deleted. */
static int delete_if_gone(pull_rt *pr, ferry_txn *txn, const char *scope,
			  const char *coll, const char *key, ferry_err *err)
{
	adapter_rt *ad = pr->ad;
	json_t *state;
	int gone = 0;
	*err = adapter_state_get(&state, ad->node, ad->def->name, scope, coll,
				 key);
	if (*err)
		return 0;
	const json_t *id = adapter_state_id(state);
	char *text = id ? adapter_id_text(id) : NULL;
	if (text && !json_object_get(pr->seen, text)) {
		*err = ferry_txn_delete(txn, scope, coll, key);
		if (!*err)
			*err = adapter_link_txn_put(txn, ad->def->name, scope,
						    coll, NULL, id);
		adapter_state_set_id(state, NULL);
		if (!*err)
			*err = adapter_state_txn_put(txn, ad->def->name, state);
		gone = !*err;
	}
	free(text);
	json_decref(state);
	return gone;
}

/* After a complete, clean round: the linked records the list no longer
 * holds go. Unlinked records (created here, not yet pushed) stay. */
static void delete_missing(pull_rt *pr)
{
	adapter_rt *ad = pr->ad;
	char *scope = constant_text(pr->p->map.scope);
	char *coll = constant_text(pr->p->map.collection);
	json_t *keys = json_array();
	ferry_txn *txn = NULL;
	uint64_t deleted = 0;
	size_t i;
	json_t *key;
	/* Keys first: the states are read outside the scan's snapshot. */
	ferry_err err = !scope || !coll || !keys
				? FERRY_E_NOMEM
				: ferry_scan(ad->node, scope, coll, NULL,
					     collect_key, keys);
	if (!err)
		err = ferry_txn_begin(&txn, ad->node);
	json_array_foreach(keys, i, key) if (!err) deleted +=
		(uint64_t)delete_if_gone(pr, txn, scope, coll,
					 json_string_value(key), &err);
	if (!err && txn)
		err = ferry_txn_commit(txn);
	else
		ferry_txn_abort(txn);
	if (err)
		pull_failed(pr,
			    "cannot delete what the list no longer holds: "
			    "%s",
			    ferry_node_errmsg(ad->node));
	else
		pr->deleted = deleted;
	json_decref(keys);
	free(scope);
	free(coll);
}

/* Write one page's items; then read the next page (`next`, taken) or end
 * the round. */
static void apply_page(pull_rt *pr, const json_t *items, char *next)
{
	adapter_rt *ad = pr->ad;
	ferry_txn *txn;
	size_t i;
	json_t *item;
	ferry_err err = ferry_txn_begin(&txn, ad->node);
	if (err) {
		pull_failed(pr, "cannot write: %s",
			    ferry_node_errmsg(ad->node));
		free(next);
		end_round(pr, 1);
		return;
	}
	uint64_t written = 0;
	json_array_foreach(items, i, item)
	{
		adapter_mapped m;
		char why[512];
		size_t n = 0;
		if (adapter_map_render(&m, &pr->p->map, item, why,
				       sizeof(why)) ||
		    adapter_map_apply(txn, ad->node, ad->def->name, &m, &n, why,
				      sizeof(why))) {
			/* One bad item does not stop the others, but the
			 * round is not clean: nothing is deleted. */
			pr->clean = 0;
			pull_failed(pr, "page %u item %zu: %s", pr->page, i,
				    why);
			adapter_mapped_clear(&m);
			continue;
		}
		char *id = adapter_id_text(m.id);
		if (id)
			json_object_set_new(pr->seen, id, json_true());
		free(id);
		written += n;
		adapter_mapped_clear(&m);
	}
	err = ferry_txn_commit(txn);
	if (err) {
		pull_failed(pr, "cannot write page %u: %s", pr->page,
			    ferry_node_errmsg(ad->node));
		free(next);
		end_round(pr, 1);
		return;
	}
	pr->round_items += json_array_size(items);
	pr->round_written += written;
	if (next) {
		free(pr->page_url);
		pr->page_url = next;
		start_page(pr);
		return;
	}
	if (pr->p->delete_missing && pr->clean)
		delete_missing(pr);
	end_round(pr, 0);
}

static void page_done(http_call *call, void *arg)
{
	pull_rt *pr = arg;
	char what[CURL_ERROR_SIZE + 64];
	if (call->status == 401 && !pr->token_retried &&
	    adapter_auth_renew(pr->ad, call)) {
		pr->waiting_token = 1;
		pr->token_retried = 1;
		return;
	}
	pr->token_retried = 0;
	if (call->status < 200 || call->status >= 300) {
		http_describe(call, what, sizeof(what));
		pull_failed(pr, "GET %s: %s", call->url, what);
		end_round(pr, 1);
		return;
	}
	json_error_t jerr;
	json_t *doc = json_loadb(call->response ? call->response : "",
				 call->response_len, 0, &jerr);
	const json_t *items = doc ? tmpl_pointer_get(doc, pr->p->items) : NULL;
	if (!json_is_array(items)) {
		pull_failed(pr, "GET %s: %s", call->url,
			    !doc ? "the response is not JSON"
				 : "no array of items at the configured "
				   "\"items\" pointer");
		json_decref(doc);
		end_round(pr, 1);
		return;
	}
	int failed;
	char *next = next_page(pr, call, doc, json_array_size(items), &failed);
	if (failed)
		pr->clean = 0; /* this page is written; nothing deleted */
	apply_page(pr, items, next);
	json_decref(doc);
}

ferry_err pull_open(adapter_rt *ad, uint64_t now)
{
	if (!ad->def->npulls)
		return FERRY_OK;
	ad->pulls = calloc(ad->def->npulls, sizeof(*ad->pulls));
	if (!ad->pulls)
		return FERRY_E_NOMEM;
	for (size_t i = 0; i < ad->def->npulls; i++) {
		ad->pulls[i].ad = ad;
		ad->pulls[i].p = &ad->def->pulls[i];
		ad->pulls[i].next_ms = now; /* once at start */
	}
	return FERRY_OK;
}

void pull_step(adapter_rt *ad, uint64_t now)
{
	for (size_t i = 0; ad->pulls && i < ad->def->npulls; i++) {
		pull_rt *pr = &ad->pulls[i];
		if (pr->running && !pr->waiting_token)
			continue;
		if (!pr->running && now < pr->next_ms)
			continue;
		if (!adapter_auth_ready(ad, now))
			continue;
		if (!pr->running) {
			pr->running = 1;
			pr->clean = 1;
			pr->page = 1;
			free(pr->page_url);
			pr->page_url = NULL;
			pr->round_items = pr->round_written = 0;
			pr->seen = json_object();
		}
		pr->waiting_token = 0;
		start_page(pr);
	}
}

void pull_close(adapter_rt *ad)
{
	for (size_t i = 0; ad->pulls && i < ad->def->npulls; i++) {
		json_decref(ad->pulls[i].seen);
		free(ad->pulls[i].page_url);
	}
	free(ad->pulls);
	ad->pulls = NULL;
}

json_t *pull_status(const adapter_rt *ad)
{
	json_t *list = json_array();
	for (size_t i = 0; list && ad->pulls && i < ad->def->npulls; i++) {
		const pull_rt *pr = &ad->pulls[i];
		json_t *st = json_pack(
			"{s:s, s:b, s:I, s:I, s:I, s:I, s:I}", "name",
			pr->p->name, "running", pr->running, "last_run",
			(json_int_t)pr->last_run_ms, "next_run",
			(json_int_t)pr->next_ms, "items", (json_int_t)pr->items,
			"written", (json_int_t)pr->written, "deleted",
			(json_int_t)pr->deleted);
		if (st && pr->error[0]) {
			json_object_set_new(st, "error",
					    json_string(pr->error));
			json_object_set_new(
				st, "error_time",
				json_integer((json_int_t)pr->error_ms));
		}
		json_array_append_new(list, st);
	}
	return list;
}
