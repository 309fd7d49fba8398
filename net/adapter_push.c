/*
 * adapter_push.c — an adapter's push: the hub's change feed, in arrival
 * order, to an external HTTP API (docs/adapters.md, "Push").
 *
 * Changes of watched collections queue up in cursor order. A change is
 * rendered from the record's current state when its turn comes, sent with
 * an idempotency key made from its (origin, scope, seq), and marked done
 * on a 2xx or parked as a dead letter. What a 2xx taught (the external id,
 * the hashes of the values sent, the external id written back into the
 * record) is kept in memory and stored every FLUSH_MS in one transaction
 * with the cursor, which only ever passes changes that are done: after a
 * crash, what was sent but not stored is sent again with the same keys.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "adapter_rt.h"
#include "ferry_json.h"
#include "kvjson.h"

#define MAX_QUEUE 4096
#define FEED_BATCH 512
#define FLUSH_MS 20
#define DISPATCH_WINDOW 1024
#define RESPONSE_MAX (1024 * 1024)
#define EXCERPT_BYTES 1024

typedef enum push_kind { PUSH_CREATE, PUSH_UPDATE, PUSH_DELETE } push_kind;

struct push_item {
	push_item *next;
	uint64_t cursor;
	uint8_t origin[FERRY_PUBLIC_KEY_BYTES];
	char *scope, *collection, *key;
	uint64_t seq;
	ferry_hlc hlc;
	ferry_op op;
	json_t *fields; /* names the change set */
	char rkey[ADAPTER_STATE_KEY_BYTES];
	int done, in_flight, from_dlq, token_retried;
	unsigned attempts;
	/* How often the system refused this change outright (a 4xx): each
	 * refusal did nothing there, so a retry after it is a new request
	 * with a new idempotency key — a system that stored the refusal
	 * under the old key would only replay it. */
	unsigned generation;
	uint64_t retry_ms;
	/* The request in flight. */
	push_kind kind;
	json_t *sent; /* the record's fields it was rendered from */
	adapter_rt *ad;
};

/* ------------------------------------------------------------------------ */
/* Items                                                                    */
/* ------------------------------------------------------------------------ */

static void item_free(push_item *it)
{
	if (!it)
		return;
	free(it->scope);
	free(it->collection);
	free(it->key);
	json_decref(it->fields);
	json_decref(it->sent);
	free(it);
}

static push_item *item_new(adapter_rt *ad, uint64_t cursor,
			   const uint8_t *origin, const char *scope,
			   uint64_t seq, ferry_hlc hlc, const char *collection,
			   const char *key, ferry_op op)
{
	push_item *it = calloc(1, sizeof(*it));
	if (!it)
		return NULL;
	it->ad = ad;
	it->cursor = cursor;
	memcpy(it->origin, origin, FERRY_PUBLIC_KEY_BYTES);
	it->seq = seq;
	it->hlc = hlc;
	it->op = op;
	it->scope = strdup(scope);
	it->collection = strdup(collection);
	it->key = strdup(key);
	it->fields = json_array();
	if (!it->scope || !it->collection || !it->key || !it->fields) {
		item_free(it);
		return NULL;
	}
	adapter_record_key(it->rkey, scope, collection, key);
	return it;
}

static int watched(const adapter_rt *ad, const char *scope,
		   const char *collection)
{
	return grant_allows(&ad->def->push->scopes, scope) &&
	       adapter_push_find(ad->def, collection);
}

static int on_change(const ferry_change *c, void *arg)
{
	adapter_rt *ad = arg;
	ad->scan_pos = c->cursor;
	if (!watched(ad, c->scope, c->collection))
		return 0;
	push_item *it = item_new(ad, c->cursor, c->origin, c->scope, c->seq,
				 c->hlc, c->collection, c->key, c->op);
	for (size_t i = 0; it && i < c->nfields; i++)
		if (json_array_append_new(it->fields,
					  json_string(c->fields[i].name))) {
			item_free(it);
			it = NULL;
		}
	if (!it) {
		ad->scan_pos = c->cursor - 1; /* read it again later */
		adapter_error(ad, "out of memory reading the change feed");
		return 1;
	}
	if (ad->queue_tail)
		ad->queue_tail->next = it;
	else
		ad->queue = it;
	ad->queue_tail = it;
	return ++ad->queued >= MAX_QUEUE;
}

static void read_feed(adapter_rt *ad, uint64_t feed_last)
{
	while (ad->queued < MAX_QUEUE && ad->scan_pos < feed_last) {
		uint64_t before = ad->scan_pos;
		ferry_err err = ferry_changes(ad->node, ad->scan_pos,
					      FEED_BATCH, on_change, ad);
		if (err) {
			adapter_error(ad, "cannot read the change feed: %s",
				      ferry_node_errmsg(ad->node));
			return;
		}
		if (ad->scan_pos == before)
			return;
	}
}

/* Drop done items from the head; the cursor follows. */
static void advance(adapter_rt *ad)
{
	while (ad->queue && ad->queue->done) {
		push_item *it = ad->queue;
		ad->queue = it->next;
		if (!ad->queue)
			ad->queue_tail = NULL;
		ad->queued--;
		item_free(it);
	}
	uint64_t cursor = ad->queue ? ad->queue->cursor - 1 : ad->scan_pos;
	if (cursor != ad->cursor) {
		ad->cursor = cursor;
		ad->cursor_dirty = 1;
	}
}

/* ------------------------------------------------------------------------ */
/* What the adapter knows of records                                        */
/* ------------------------------------------------------------------------ */

/* The record's state: what is waiting to be stored, else what is. NULL
 * on failure, with *err (FERRY_E_CORRUPT: the stored state is damaged). */
static json_t *state_lookup(adapter_rt *ad, const char *scope,
			    const char *collection, const char *key,
			    ferry_err *err)
{
	char rkey[ADAPTER_STATE_KEY_BYTES];
	adapter_record_key(rkey, scope, collection, key);
	json_t *st = json_object_get(ad->dirty, rkey);
	*err = FERRY_OK;
	if (st)
		return json_incref(st);
	if ((*err = adapter_state_get(&st, ad->node, ad->def->name, scope,
				      collection, key))) {
		adapter_error(ad,
			      "cannot read the adapter's state of %s/%s/%s "
			      "(kv table %s, key %s): %s",
			      scope, collection, key, ad->table, rkey,
			      ferry_strerror(*err));
		return NULL;
	}
	return st;
}

static void state_store(adapter_rt *ad, const char *rkey, json_t *state)
{
	json_object_set(ad->dirty, rkey, state);
}

/* The record's live fields as a JSON object; NULL when not live. */
static json_t *record_fields(adapter_rt *ad, const push_item *it, int *failed)
{
	ferry_record *rec;
	*failed = 0;
	ferry_err err =
		ferry_get(&rec, ad->node, it->scope, it->collection, it->key);
	if (err == FERRY_E_NOT_FOUND)
		return NULL;
	json_t *obj = err ? NULL : json_object();
	for (size_t i = 0; obj && i < ferry_record_field_count(rec); i++) {
		ferry_field_info f;
		json_t *v;
		ferry_record_field(rec, i, &f);
		if (ferry_json_from_msgpack(&v, f.value, f.value_len) ||
		    json_object_set_new(obj, f.name, v)) {
			json_decref(obj);
			obj = NULL;
		}
	}
	ferry_record_free(rec);
	if (!obj) {
		*failed = 1;
		adapter_error(ad, "cannot read %s/%s/%s: %s", it->scope,
			      it->collection, it->key,
			      err ? ferry_node_errmsg(ad->node)
				  : "a value does not convert to JSON");
	}
	return obj;
}

/* ------------------------------------------------------------------------ */
/* Dead letters                                                             */
/* ------------------------------------------------------------------------ */

static json_t *excerpt(const char *text, size_t len)
{
	char buf[EXCERPT_BYTES + 1];
	adapter_excerpt(buf, sizeof(buf), text, len);
	return json_string(buf);
}

static json_t *dlq_entry(const push_item *it, const char *state,
			 const char *error, uint64_t now)
{
	char origin[FERRY_ID_HEX_BYTES];
	ferry_id_to_hex(origin, it->origin);
	return json_pack(
		"{s:I, s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:O, s:s, "
		"s:I, s:s, s:I, s:I}",
		"id", (json_int_t)it->cursor, "origin", origin, "scope",
		it->scope, "seq", (json_int_t)it->seq, "hlc",
		(json_int_t)it->hlc, "collection", it->collection, "key",
		it->key, "op", it->op == FERRY_OP_DELETE ? "delete" : "put",
		"fields", it->fields, "state", state, "attempts",
		(json_int_t)it->attempts, "error", error, "time",
		(json_int_t)now, "generation", (json_int_t)it->generation);
}

static push_item *item_from_dlq(adapter_rt *ad, const json_t *e)
{
	uint8_t origin[FERRY_PUBLIC_KEY_BYTES];
	const char *hex = json_string_value(json_object_get(e, "origin"));
	const char *scope = json_string_value(json_object_get(e, "scope"));
	const char *coll = json_string_value(json_object_get(e, "collection"));
	const char *key = json_string_value(json_object_get(e, "key"));
	const char *op = json_string_value(json_object_get(e, "op"));
	const json_t *fields = json_object_get(e, "fields");
	if (!hex || ferry_id_from_hex(origin, hex) || !scope || !coll || !key ||
	    !op || !json_is_array(fields))
		return NULL;
	push_item *it = item_new(
		ad, (uint64_t)json_integer_value(json_object_get(e, "id")),
		origin, scope,
		(uint64_t)json_integer_value(json_object_get(e, "seq")),
		(ferry_hlc)json_integer_value(json_object_get(e, "hlc")), coll,
		key, strcmp(op, "delete") ? FERRY_OP_PUT : FERRY_OP_DELETE);
	if (it) {
		json_decref(it->fields);
		it->fields = json_deep_copy(fields);
		it->from_dlq = 1;
		it->generation = (unsigned)json_integer_value(
			json_object_get(e, "generation"));
	}
	return it;
}

static void redo_remove(adapter_rt *ad, const push_item *it, int whole_record)
{
	for (push_item **p = &ad->redo; *p;) {
		push_item *x = *p;
		if (x == it || (whole_record && !strcmp(x->rkey, it->rkey) &&
				!x->in_flight)) {
			*p = x->next;
			if (x != it)
				item_free(x);
		} else {
			p = &x->next;
		}
	}
}

/* Finish an item: mark it done in the main queue (freed when the cursor
 * passes it), or end a dead letter sent again — what it taught is stored
 * before the dead letter goes: a crash in between sends it once more, and
 * the idempotency key absorbs that. */
static void finish(adapter_rt *ad, push_item *it)
{
	if (!it->from_dlq) {
		it->done = 1;
		return;
	}
	char key[ADAPTER_DLQ_KEY_BYTES];
	push_flush(ad, adapter_now_ms(ad), 1);
	adapter_dlq_key(key, it->cursor);
	ferry_kv_delete(ad->node, ad->dlq_table, key);
	redo_remove(ad, it, 0);
	item_free(it);
}

/* Park `it` as a dead letter: "failed", or "blocked" behind `blocked_by`
 * (NULL: the first dead letter of the same record). */
static void park(adapter_rt *ad, push_item *it, const char *state,
		 const char *error, const http_call *call,
		 const json_t *blocked_by)
{
	char key[ADAPTER_DLQ_KEY_BYTES];
	uint64_t now = adapter_now_ms(ad);
	if (call && call->status >= 400 && call->status < 500 &&
	    call->status != 429)
		it->generation++;
	json_t *entry = dlq_entry(it, state, error, now);
	json_t *ids = json_object_get(ad->parked, it->rkey);
	if (!blocked_by && json_array_size(ids))
		blocked_by = json_array_get(ids, 0);
	if (entry && !strcmp(state, "blocked") && blocked_by)
		json_object_set(entry, "blocked_by", (json_t *)blocked_by);
	if (entry && call) {
		json_object_set_new(
			entry, "request",
			json_pack("{s:s, s:s, s:o}", "method", call->method,
				  "url", call->url, "body",
				  call->body ? excerpt(call->body,
						       strlen(call->body))
					     : json_null()));
		if (call->status)
			json_object_set_new(
				entry, "response",
				json_pack("{s:I, s:o}", "status",
					  (json_int_t)call->status, "body",
					  excerpt(call->response
							  ? call->response
							  : "",
						  call->response_len)));
	}
	adapter_dlq_key(key, it->cursor);
	if (kvjson_put(ad->node, ad->dlq_table, key, entry)) {
		/* Not stored: it must not be passed over; try again later. */
		json_decref(entry);
		adapter_error(ad, "cannot store dead letter %" PRIu64 ": %s",
			      it->cursor, ferry_node_errmsg(ad->node));
		it->retry_ms = now + adapter_backoff_ms(ad, 1);
		return;
	}
	json_decref(entry);
	if (!ids) {
		ids = json_array();
		json_object_set_new(ad->parked, it->rkey, ids);
	}
	json_array_append_new(ids, json_integer((json_int_t)it->cursor));
	ad->dead_letters++;
	if (!strcmp(state, "failed"))
		adapter_error(ad,
			      "change %" PRIu64 " (%s/%s/%s) is a dead "
			      "letter: %s",
			      it->cursor, it->scope, it->collection, it->key,
			      error);
	if (!it->from_dlq) {
		it->done = 1;
		return;
	}
	/* Parked again: the record's later changes stay parked behind it. */
	redo_remove(ad, it, 1);
	item_free(it);
}

static int collect_entry(const char *key, const void *value, size_t len,
			 void *arg)
{
	json_t *doc;
	(void)key;
	if (!kvjson_parse(&doc, value, len))
		json_array_append_new(arg, doc);
	return 0;
}

/* The record key of a dead letter; -1 if the entry is damaged. */
static int entry_record(char rkey[ADAPTER_STATE_KEY_BYTES], const json_t *e)
{
	const char *s = json_string_value(json_object_get(e, "scope"));
	const char *c = json_string_value(json_object_get(e, "collection"));
	const char *k = json_string_value(json_object_get(e, "key"));
	if (!s || !c || !k)
		return -1;
	adapter_record_key(rkey, s, c, k);
	return 0;
}

static int in_redo(const adapter_rt *ad, const char *rkey)
{
	for (const push_item *it = ad->redo; it; it = it->next)
		if (!strcmp(it->rkey, rkey))
			return 1;
	return 0;
}

static void redo_append(adapter_rt *ad, push_item *it)
{
	push_item **p = &ad->redo;
	while (*p)
		p = &(*p)->next;
	*p = it;
}

/* Re-read the dead letters (ours, or the CLI's retry and drop): which
 * records are parked, and which chains to send again — a record whose
 * first dead letter is marked for retry, or is only "blocked" (what
 * blocked it was dropped or went through). */
void push_dlq_changed(adapter_rt *ad)
{
	uint64_t gen = 0;
	if (ferry_kv_generation(&gen, ad->node, ad->dlq_table) ||
	    gen == ad->dlq_gen)
		return;
	json_t *entries = json_array(), *parked = json_object(),
	       *first = json_object();
	if (!entries || !parked || !first ||
	    ferry_kv_scan(ad->node, ad->dlq_table, collect_entry, entries)) {
		json_decref(entries);
		json_decref(parked);
		json_decref(first);
		return; /* tried again at the next step */
	}
	ad->dlq_gen = gen;
	size_t i;
	json_t *e;
	json_t *present = json_object();
	json_array_foreach(entries, i, e)
	{
		char *id = adapter_id_text(json_object_get(e, "id"));
		if (id)
			json_object_set_new(present, id, json_true());
		free(id);
	}
	json_array_foreach(entries, i, e)
	{
		char rkey[ADAPTER_STATE_KEY_BYTES];
		if (entry_record(rkey, e))
			continue;
		json_t *ids = json_object_get(parked, rkey);
		if (!ids) {
			json_object_set_new(parked, rkey, ids = json_array());
			const char *state =
				json_string_value(json_object_get(e, "state"));
			char *blocker = adapter_id_text(
				json_object_get(e, "blocked_by"));
			int go = json_is_true(json_object_get(e, "retry")) ||
				 (state && !strcmp(state, "blocked") &&
				  !json_object_get(present,
						   blocker ? blocker : ""));
			free(blocker);
			json_object_set_new(first, rkey, json_boolean(go));
		}
		json_array_append(ids, json_object_get(e, "id"));
	}
	/* A chain already being sent again is left to finish. */
	const char *rk;
	json_t *go;
	json_object_foreach(first, rk,
			    go) if (json_is_true(go) && in_redo(ad, rk))
		json_object_set_new(first, rk, json_false());
	/* Send chains again, in cursor order (the scan's order). */
	json_array_foreach(entries, i, e)
	{
		char rkey[ADAPTER_STATE_KEY_BYTES];
		if (entry_record(rkey, e))
			continue;
		if (!json_is_true(json_object_get(first, rkey)))
			continue;
		push_item *it = item_from_dlq(ad, e);
		if (it)
			redo_append(ad, it);
	}
	json_decref(ad->parked);
	ad->parked = parked;
	ad->dead_letters = json_array_size(entries);
	json_decref(entries);
	json_decref(first);
	json_decref(present);
}

/* ------------------------------------------------------------------------ */
/* Sending                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct render_ctx {
	adapter_rt *ad;
	push_item *item;
	const json_t *sent;  /* the record's fields */
	const json_t *state; /* the record's state */
	const json_t *busy;  /* records with an earlier change not done */
	int wait;	     /* a linked record is still being sent */
	json_t *blocked_by;  /* the dead letter a linked record waits in */
} render_ctx;

static json_t *resolve(const tmpl_ref *ref, void *arg, int *fatal, char *why,
		       size_t why_len)
{
	render_ctx *ctx = arg;
	push_item *it = ctx->item;
	const json_t *v, *id;
	char rkey[ADAPTER_STATE_KEY_BYTES];
	switch (ref->type) {
	case TMPL_REF_FIELD:
		v = json_object_get(ctx->sent, ref->name);
		if (v && ref->pointer[0])
			v = tmpl_pointer_get(v, ref->pointer);
		return v ? json_incref((json_t *)v) : NULL;
	case TMPL_REF_KEY:
		return json_string(it->key);
	case TMPL_REF_SCOPE:
		return json_string(it->scope);
	case TMPL_REF_COLLECTION:
		return json_string(it->collection);
	case TMPL_REF_ID:
		if ((id = adapter_state_id(ctx->state)))
			return json_incref((json_t *)id);
		*fatal = 1;
		snprintf(why, why_len,
			 "{@id}: no external id is stored for %s/%s/%s (its "
			 "create has not succeeded)",
			 it->scope, it->collection, it->key);
		return NULL;
	case TMPL_REF_LINK:
		break;
	}
	v = json_object_get(ctx->sent, ref->name);
	if (!v)
		return NULL;
	char *key = adapter_id_text(v);
	if (!key)
		return NULL;
	adapter_record_key(rkey, it->scope, ref->collection, key);
	if (ctx->busy && json_object_get(ctx->busy, rkey)) {
		ctx->wait = 1;
		*fatal = 1;
		free(key);
		return NULL;
	}
	ferry_err err;
	json_t *st =
		state_lookup(ctx->ad, it->scope, ref->collection, key, &err);
	id = st ? adapter_state_id(st) : NULL;
	json_t *out = id ? json_incref((json_t *)id) : NULL;
	const json_t *parked = json_object_get(ctx->ad->parked, rkey);
	if (!out && json_array_size(parked) && !ctx->blocked_by)
		ctx->blocked_by = json_incref(json_array_get(parked, 0));
	if (!out) {
		*fatal = 1;
		snprintf(why, why_len,
			 "{%s->%s}: %s/%s has no external id yet (its create "
			 "has not succeeded: see ferry adapter dlq ls %s)",
			 ref->name, ref->collection, ref->collection, key,
			 ctx->ad->def->name);
	}
	json_decref(st);
	free(key);
	return out;
}

/* The idempotency key of a change: the same for every attempt and after
 * restarts, different for every change and adapter. */
static void idempotency_key(char out[33], const adapter_rt *ad,
			    const push_item *it)
{
	crypto_generichash_state st;
	uint8_t digest[16], seq[8];
	for (int i = 0; i < 8; i++)
		seq[i] = (uint8_t)(it->seq >> (56 - 8 * i));
	crypto_generichash_init(&st, NULL, 0, sizeof(digest));
	crypto_generichash_update(&st, it->origin, FERRY_PUBLIC_KEY_BYTES);
	crypto_generichash_update(&st, (const uint8_t *)it->scope,
				  strlen(it->scope) + 1);
	crypto_generichash_update(&st, seq, sizeof(seq));
	crypto_generichash_update(&st, (const uint8_t *)ad->def->name,
				  strlen(ad->def->name));
	if (it->generation) {
		uint8_t g[4] = {(uint8_t)(it->generation >> 24),
				(uint8_t)(it->generation >> 16),
				(uint8_t)(it->generation >> 8),
				(uint8_t)it->generation};
		crypto_generichash_update(&st, g, sizeof(g));
	}
	crypto_generichash_final(&st, digest, sizeof(digest));
	sodium_bin2hex(out, 33, digest, sizeof(digest));
}

static char *render_text(const tmpl *t, tmpl_mode mode, render_ctx *ctx,
			 char *why, size_t why_len)
{
	json_t *v = tmpl_render_record(t, mode, resolve, ctx, why, why_len);
	char *text = v ? tmpl_text(v) : NULL;
	json_decref(v);
	return text;
}

/* Header lines rendered for this record: the adapter's record-dependent
 * headers and the request's own. */
static int render_headers(struct curl_slist **list, const adapter_header *h,
			  size_t n, int only_templates, render_ctx *ctx,
			  char *why, size_t why_len)
{
	for (size_t i = 0; i < n; i++) {
		if (only_templates && tmpl_is_constant(h[i].value))
			continue; /* http_start adds the constant ones */
		char *v = render_text(h[i].value, TMPL_TEXT, ctx, why, why_len);
		size_t len = v ? strlen(h[i].name) + strlen(v) + 3 : 0;
		char *line = v ? malloc(len) : NULL;
		struct curl_slist *grown = NULL;
		if (line) {
			snprintf(line, len, "%s: %s", h[i].name, v);
			grown = curl_slist_append(*list, line);
		}
		free(line);
		free(v);
		if (!grown)
			return -1;
		*list = grown;
	}
	return 0;
}

static void push_done(http_call *call, void *arg);

typedef enum start_result { STARTED, WAIT, FINISHED } start_result;

static void skip(adapter_rt *ad, push_item *it)
{
	ad->skipped++;
	finish(ad, it);
}

/* 1 if a put set a field to something the system does not hold yet. */
static int put_is_news(const push_item *it, const json_t *sent,
		       const json_t *state)
{
	size_t i;
	json_t *name;
	json_array_foreach(it->fields, i, name)
	{
		const char *field = json_string_value(name);
		if (!adapter_state_synced(state, field,
					  json_object_get(sent, field)))
			return 1;
	}
	return 0;
}

/* The request this change needs now (and it->kind), or NULL when there is
 * nothing to send: a put to a record deleted since (its delete comes
 * later), a put of values the system already holds (an echo, the
 * write-back), a delete of a record never created there or live again,
 * or a kind of request the configuration does not send. */
static const adapter_request *request_for(adapter_rt *ad, push_item *it,
					  const json_t *sent,
					  const json_t *state)
{
	const adapter_push_collection *pc =
		adapter_push_find(ad->def, it->collection);
	const json_t *id = adapter_state_id(state);
	const adapter_request *req;
	if (it->op == FERRY_OP_DELETE) {
		it->kind = PUSH_DELETE;
		req = !sent && id ? &pc->del : NULL;
	} else {
		it->kind = id ? PUSH_UPDATE : PUSH_CREATE;
		req = sent && put_is_news(it, sent, state)
			      ? (id ? &pc->update : &pc->create)
			      : NULL;
	}
	return req && req->method ? req : NULL;
}

/* Render `req` for the record and start it. */
static start_result send_request(adapter_rt *ad, push_item *it,
				 const adapter_request *req, json_t *sent,
				 const json_t *state, const json_t *busy,
				 uint64_t now)
{
	char why[512] = "", idem[33], line[64];
	render_ctx ctx = {ad, it, sent, state, busy, 0, NULL};
	struct curl_slist *headers = NULL;
	http_call *call = NULL;
	char *url = render_text(req->url, TMPL_URL, &ctx, why, sizeof(why));
	json_t *body =
		url && req->body
			? tmpl_render_record(req->body, TMPL_BODY, resolve,
					     &ctx, why, sizeof(why))
			: NULL;
	char *body_text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	int ok = url && (!req->body || body_text) &&
		 !render_headers(&headers, ad->def->headers, ad->def->nheaders,
				 1, &ctx, why, sizeof(why)) &&
		 !render_headers(&headers, req->headers, req->nheaders, 0, &ctx,
				 why, sizeof(why));
	idempotency_key(idem, ad, it);
	snprintf(line, sizeof(line), "Idempotency-Key: %s", idem);
	struct curl_slist *grown = ok ? curl_slist_append(headers, line) : NULL;
	if (grown) {
		headers = grown;
		call = http_start(ad, req->method, url, headers, body_text,
				  "application/json", RESPONSE_MAX, 0,
				  push_done, it);
	}
	curl_slist_free_all(headers);
	json_decref(body);
	free(body_text);
	free(url);
	start_result r = STARTED;
	if (ctx.wait) {
		r = WAIT;
	} else if (!ok) {
		park(ad, it, ctx.blocked_by ? "blocked" : "failed",
		     why[0] ? why : "cannot render the request: out of memory",
		     NULL, ctx.blocked_by);
		r = FINISHED;
	} else if (!call) {
		it->retry_ms = now + adapter_backoff_ms(ad, ++it->attempts);
		r = WAIT;
	}
	json_decref(ctx.blocked_by);
	return r;
}

static start_result start(adapter_rt *ad, push_item *it, uint64_t now,
			  const json_t *busy)
{
	int failed;
	ferry_err err;
	json_t *sent = record_fields(ad, it, &failed);
	if (failed) {
		it->retry_ms = now + adapter_backoff_ms(ad, ++it->attempts);
		return WAIT;
	}
	json_t *state =
		state_lookup(ad, it->scope, it->collection, it->key, &err);
	if (!state) {
		json_decref(sent);
		if (err == FERRY_E_CORRUPT) {
			/* Without its state the record's external id is
			 * unknown: sending could create it twice. */
			park(ad, it, "failed",
			     "the adapter's stored state of this record is "
			     "damaged; it cannot tell whether the system has "
			     "the record (see docs/operations.md, Adapters)",
			     NULL, NULL);
			return FINISHED;
		}
		it->retry_ms = now + adapter_backoff_ms(ad, ++it->attempts);
		return WAIT;
	}
	const adapter_request *req = request_for(ad, it, sent, state);
	start_result r = FINISHED;
	if (!req) {
		skip(ad, it);
	} else {
		if (!sent)
			sent = json_object(); /* a delete renders from nothing
					       */
		r = send_request(ad, it, req, sent, state, busy, now);
	}
	json_decref(state);
	if (r == STARTED) {
		json_decref(it->sent);
		it->sent = sent;
		it->in_flight = 1;
		ad->in_flight++;
	} else {
		json_decref(sent);
	}
	return r;
}

/* A 2xx: remember what the system now holds. */
static void succeed(adapter_rt *ad, push_item *it, const http_call *call)
{
	const adapter_push_collection *pc =
		adapter_push_find(ad->def, it->collection);
	ferry_err err;
	json_t *state =
		state_lookup(ad, it->scope, it->collection, it->key, &err);
	json_t *id = NULL;
	const char *name;
	json_t *value;
	if (!state) {
		/* Sent, but what it taught cannot be kept: send it again
		 * later (same key) rather than lose the external id. */
		it->retry_ms = adapter_now_ms(ad) + adapter_backoff_ms(ad, 1);
		return;
	}
	if (it->kind == PUSH_DELETE) {
		const json_t *old = adapter_state_id(state);
		if (old)
			json_array_append_new(
				ad->links,
				json_pack("[s, O, n, n]", it->collection, old));
		adapter_state_set_id(state, NULL);
	} else {
		if (it->kind == PUSH_CREATE) {
			if (pc->create.id_from) {
				json_t *doc = json_loads(
					call->response ? call->response : "", 0,
					NULL);
				const json_t *got = tmpl_pointer_get(
					doc, pc->create.id_from);
				if (json_is_string(got) || json_is_integer(got))
					id = json_deep_copy(got);
				json_decref(doc);
				if (!id) {
					char why[256];
					snprintf(why, sizeof(why),
						 "the create succeeded but its "
						 "response has no id at %s",
						 pc->create.id_from);
					json_decref(state);
					park(ad, it, "failed", why, call, NULL);
					return;
				}
			} else {
				id = json_string(it->key);
			}
			adapter_state_set_id(state, id);
			json_array_append_new(ad->links,
					      json_pack("[s, O, s, s]",
							it->collection, id,
							it->scope, it->key));
			if (pc->store_id) {
				/* The write-back is an echo: never sent. */
				adapter_state_set_hash(state, pc->store_id, id);
				if (!json_equal(json_object_get(it->sent,
								pc->store_id),
						id))
					json_array_append_new(
						ad->writes,
						json_pack("[s, s, s, s, O]",
							  it->scope,
							  it->collection,
							  it->key, pc->store_id,
							  id));
			}
		}
		json_object_foreach(it->sent, name, value)
			adapter_state_set_hash(state, name, value);
	}
	state_store(ad, it->rkey, state);
	json_decref(state);
	json_decref(id);
	ad->delivered++;
	finish(ad, it);
}

static void push_done(http_call *call, void *arg)
{
	push_item *it = arg;
	adapter_rt *ad = it->ad;
	char what[CURL_ERROR_SIZE + 64];
	uint64_t now = adapter_now_ms(ad);
	it->in_flight = 0;
	ad->in_flight--;
	if (call->status >= 200 && call->status < 300) {
		succeed(ad, it, call);
		return;
	}
	http_describe(call, what, sizeof(what));
	if (call->status == 401 && !it->token_retried &&
	    adapter_auth_renew(ad, call)) {
		/* Once per change: a fresh token (or the credential read
		 * again, in case it was changed), then the same request. */
		it->token_retried = 1;
		it->retry_ms = 0;
		return;
	}
	if (http_retryable(call) &&
	    it->attempts + 1 < ad->def->retry_max_attempts) {
		uint64_t wait = adapter_backoff_ms(ad, ++it->attempts);
		if (call->retry_after_ms > 0 &&
		    (uint64_t)call->retry_after_ms > wait)
			wait = (uint64_t)call->retry_after_ms;
		it->retry_ms = now + wait;
		ad->retries++;
		adapter_error(ad, "%s %s: %s; retry %u in %" PRIu64 " ms",
			      call->method, call->url, what, it->attempts,
			      wait);
		return;
	}
	it->attempts++;
	char why[CURL_ERROR_SIZE + 128];
	snprintf(why, sizeof(why), "%s%s", what,
		 http_retryable(call) ? " (retries exhausted)" : "");
	park(ad, it, "failed", why, call, NULL);
}

/* A change parked already (before a crash) is done; any other change of a
 * parked record waits behind its dead letters. */
static void park_behind(adapter_rt *ad, push_item *it)
{
	char key[ADAPTER_DLQ_KEY_BYTES];
	void *v;
	size_t len;
	adapter_dlq_key(key, it->cursor);
	if (!ferry_kv_get(&v, &len, ad->node, ad->dlq_table, key)) {
		free(v);
		finish(ad, it);
		return;
	}
	park(ad, it, "blocked",
	     "waits behind an earlier dead letter of the same record", NULL,
	     NULL);
}

/* Start what may start: strictly one at a time in order with concurrency
 * 1; otherwise up to `concurrency` requests, never two for one record,
 * nor one whose linked records have an earlier change not done (`busy`
 * collects, as the queue is walked, the records of changes not done). The
 * walk looks at most DISPATCH_WINDOW changes ahead. */
static void dispatch(adapter_rt *ad, uint64_t now)
{
	int strict = ad->def->concurrency <= 1;
	size_t looked = 0;
	if (ad->in_flight >= ad->def->concurrency ||
	    !adapter_auth_ready(ad, now) || (!ad->queue && !ad->redo))
		return;
	json_t *busy = strict ? NULL : json_object();
	if (!strict && !busy)
		return;
	for (int pass = 0; pass < 2; pass++) {
		push_item *next;
		for (push_item *it = pass ? ad->queue : ad->redo; it;
		     it = next) {
			next = it->next;
			if (ad->in_flight >= ad->def->concurrency ||
			    ++looked > DISPATCH_WINDOW)
				goto out;
			if (it->done)
				continue;
			int blocked = busy && json_object_get(busy, it->rkey);
			if (busy)
				json_object_set_new(busy, it->rkey,
						    json_true());
			if (blocked || it->in_flight)
				continue;
			if (it->retry_ms > now) {
				if (strict)
					goto out;
				continue;
			}
			if (pass && json_object_get(ad->parked, it->rkey)) {
				park_behind(ad, it);
				continue;
			}
			start_result r = start(ad, it, now, busy);
			if (r == FINISHED && busy)
				json_object_del(busy, it->rkey);
			if (strict && r != FINISHED)
				goto out;
		}
	}
out:
	json_decref(busy);
}

/* ------------------------------------------------------------------------ */
/* Storing what is done                                                     */
/* ------------------------------------------------------------------------ */

static ferry_err put_writes(adapter_rt *ad, ferry_txn *txn)
{
	size_t i;
	json_t *w;
	json_array_foreach(ad->writes, i, w)
	{
		const char *scope = json_string_value(json_array_get(w, 0));
		const char *coll = json_string_value(json_array_get(w, 1));
		const char *key = json_string_value(json_array_get(w, 2));
		int live = 0;
		/* A record deleted meanwhile is not revived by its id. */
		if (ferry_record_state(&live, NULL, NULL, ad->node, scope, coll,
				       key) ||
		    !live)
			continue;
		json_t *fields = json_object();
		json_object_set(fields, json_string_value(json_array_get(w, 3)),
				json_array_get(w, 4));
		ferry_err err = ferry_json_put(txn, scope, coll, key, fields);
		json_decref(fields);
		if (err)
			return err;
	}
	return FERRY_OK;
}

static ferry_err put_links(adapter_rt *ad, ferry_txn *txn)
{
	size_t i;
	json_t *l;
	json_array_foreach(ad->links, i, l)
	{
		ferry_err err = adapter_link_txn_put(
			txn, ad->def->name,
			json_string_value(json_array_get(l, 2)),
			json_string_value(json_array_get(l, 0)),
			json_string_value(json_array_get(l, 3)),
			json_array_get(l, 1));
		if (err)
			return err;
	}
	return FERRY_OK;
}

void push_flush(adapter_rt *ad, uint64_t now, int force)
{
	if (!ad->def->push ||
	    (!ad->cursor_dirty && !json_object_size(ad->dirty) &&
	     !json_array_size(ad->writes) && !json_array_size(ad->links)))
		return;
	if (!force && now - ad->last_flush_ms < FLUSH_MS)
		return;
	ad->last_flush_ms = now;
	ferry_txn *txn;
	ferry_err err = ferry_txn_begin(&txn, ad->node);
	if (!err)
		err = put_writes(ad, txn);
	if (!err)
		err = put_links(ad, txn);
	const char *rkey;
	json_t *state;
	json_object_foreach(ad->dirty, rkey, state) if (!err) err =
		adapter_state_txn_put(txn, ad->def->name, state);
	json_t *cursor = json_pack("{s:I}", "cursor", (json_int_t)ad->cursor);
	if (!err)
		err = kvjson_txn_put(txn, ad->table, "cursor", cursor);
	json_decref(cursor);
	if (!err) {
		err = ferry_txn_commit(txn);
	} else {
		ferry_txn_abort(txn);
	}
	if (err) {
		adapter_error(ad, "cannot store the push's progress: %s (%s)",
			      ferry_strerror(err), ferry_node_errmsg(ad->node));
		if (json_array_size(ad->writes)) {
			/* A write-back the engine refuses must not hold up
			 * the cursor for ever; the id is in the state. */
			adapter_error(ad,
				      "dropping %zu external-id write-backs",
				      json_array_size(ad->writes));
			json_array_clear(ad->writes);
		}
		return;
	}
	json_object_clear(ad->dirty);
	json_array_clear(ad->links);
	json_array_clear(ad->writes);
	ad->cursor_dirty = 0;
}

/* ------------------------------------------------------------------------ */
/* Lifetime                                                                 */
/* ------------------------------------------------------------------------ */

ferry_err push_open(adapter_rt *ad)
{
	json_t *doc;
	if (!ad->def->push)
		return FERRY_OK;
	ad->parked = json_object();
	ad->dirty = json_object();
	ad->links = json_array();
	ad->writes = json_array();
	if (!ad->parked || !ad->dirty || !ad->links || !ad->writes)
		return FERRY_E_NOMEM;
	ferry_err err = kvjson_get(&doc, ad->node, ad->table, "cursor");
	if (err && err != FERRY_E_NOT_FOUND)
		return err;
	if (!err) {
		ad->cursor = (uint64_t)json_integer_value(
			json_object_get(doc, "cursor"));
		json_decref(doc);
	} else if (ad->def->push->start_now) {
		/* A new adapter told to start now: stored at once, so a
		 * restart before its first delivery does not skip what was
		 * written in between. */
		if ((err = ferry_changes_last(&ad->cursor, ad->node)))
			return err;
		json_t *c =
			json_pack("{s:I}", "cursor", (json_int_t)ad->cursor);
		err = kvjson_put(ad->node, ad->table, "cursor", c);
		json_decref(c);
		if (err)
			return err;
	}
	ad->scan_pos = ad->cursor;
	ad->dlq_gen = UINT64_MAX; /* read the dead letters at the first step */
	return FERRY_OK;
}

void push_step(adapter_rt *ad, uint64_t now, uint64_t feed_last)
{
	if (!ad->def->push)
		return;
	push_dlq_changed(ad);
	read_feed(ad, feed_last);
	advance(ad);
	dispatch(ad, now);
	advance(ad);
	push_flush(ad, now, 0);
}

void push_lag(const adapter_rt *ad, uint64_t now, uint64_t *queued,
	      double *lag_s)
{
	*queued = 0;
	*lag_s = 0;
	for (int pass = 0; pass < 2; pass++)
		for (const push_item *it = pass ? ad->queue : ad->redo; it;
		     it = it->next) {
			if (it->done)
				continue;
			if (!*queued && FERRY_HLC_MS(it->hlc) < now)
				*lag_s = (double)(now - FERRY_HLC_MS(it->hlc)) /
					 1000.0;
			++*queued;
		}
}

void push_close(adapter_rt *ad)
{
	for (int pass = 0; pass < 2; pass++) {
		push_item *it = pass ? ad->queue : ad->redo;
		while (it) {
			push_item *next = it->next;
			item_free(it);
			it = next;
		}
	}
	ad->queue = ad->queue_tail = ad->redo = NULL;
	ad->queued = 0;
	json_decref(ad->parked);
	json_decref(ad->dirty);
	json_decref(ad->links);
	json_decref(ad->writes);
	ad->parked = ad->dirty = ad->links = ad->writes = NULL;
}
