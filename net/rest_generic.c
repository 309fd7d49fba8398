/*
 * rest_generic.c — the hub's generic JSON API (docs/rest-api.md): records
 * by scope/collection/key, paged lists, the change feed with long polling,
 * and idempotent batch writes.
 *
 * Every handler follows the same order, so a rejected request never writes:
 * names are checked (400), then the key's grant (403), then existence
 * (404), and only then is a transaction built and committed, in one piece.
 * The checks run the engine's own validation on a scratch transaction that
 * is always aborted, so the rules (and the messages naming a broken limit)
 * are the engine's, not a copy of them.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "ferry_json.h"
#include "hub.h"
#include "kvjson.h"

/* Query bounds shared by list and changes. */
#define PAGE_DEFAULT 100
#define PAGE_MAX 1000

/* The change feed examines at most this many changes per request, however
 * few of them the key may read, so a narrow key polling a busy hub costs
 * bounded work; the reply's "next" lets the client go on from there. */
#define CHANGES_SCAN_BUDGET 10000

/* Batch operation ids: client-chosen, 1..128 bytes of UTF-8. */
#define BATCH_ID_MAX_BYTES 128
/* The kv table that remembers what each (API key, operation id) did. */
#define BATCH_TABLE "batch_results"

/* A list continuation token: the last key, base64url without padding. */
#define TOKEN_VARIANT sodium_base64_VARIANT_URLSAFE_NO_PADDING
#define TOKEN_MAX_BYTES                                                        \
	sodium_base64_ENCODED_LEN(FERRY_MAX_KEY_BYTES, TOKEN_VARIANT)

/* Why a request (or one batch operation) is refused: the HTTP status, the
 * stable error code and a message for people. */
typedef struct rest_error {
	int status;
	const char *code;
	char message[384];
} rest_error;

static int fail(rest_error *e, int status, const char *code, const char *fmt,
		...) __attribute__((format(printf, 4, 5)));

/* Fill `e` and return -1. The message is cut back to well-formed UTF-8:
 * it may end in the middle of a name, and JSON strings must be UTF-8. */
static int fail(rest_error *e, int status, const char *code, const char *fmt,
		...)
{
	va_list ap;
	e->status = status;
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	ferry_utf8_trim(e->message);
	return -1;
}

static void reply_fail(hub_request *r, const rest_error *e)
{
	hub_reply_error(r, e->status, e->code, "%s", e->message);
}

/* An engine failure as a rest_error. Validation errors are the client's
 * (400, or 413 for a size limit); anything else is the hub's. */
static int fail_engine(rest_error *e, ferry_node *node, ferry_err err,
		       const char *what)
{
	const char *detail = ferry_node_errmsg(node);
	if (!*detail)
		detail = ferry_strerror(err);
	switch (err) {
	case FERRY_E_INVALID:
	case FERRY_E_MALFORMED:
		return fail(e, 400, "invalid", "%s: %s", what, detail);
	case FERRY_E_LIMIT:
		return fail(e, 413, "too_large", "%s: %s", what, detail);
	case FERRY_E_MAP_FULL:
		return fail(e, 507, "store_full", "%s: %s", what, detail);
	case FERRY_E_NOMEM:
		return fail(e, 500, "out_of_memory", "%s: %s", what, detail);
	default:
		return fail(e, 500, "store_error", "%s: %s (%s)", what, detail,
			    ferry_err_name(err));
	}
}

/* ------------------------------------------------------------------------ */
/* Validation on a scratch transaction                                      */
/* ------------------------------------------------------------------------ */

/* Would a write to (scope, collection, key) with `fields` (NULL for a
 * delete) be accepted? The names go through the engine's checks on a
 * transaction that is aborted (nothing is written); the fields through
 * hub_check_fields(). Returns 0, or -1 with `e` filled. */
static int check_write(ferry_node *node, const char *scope,
		       const char *collection, const char *key,
		       const json_t *fields, rest_error *e)
{
	ferry_txn *txn;
	ferry_err err = ferry_txn_begin(&txn, node);
	int rc = 0;

	if (err)
		return fail_engine(e, node, err, "checking the write");
	/* A delete validates exactly the three names. */
	err = ferry_txn_delete(txn, scope, collection, key);
	if (err) {
		rc = fail(e, 400, "invalid_name", "%s",
			  *ferry_node_errmsg(node) ? ferry_node_errmsg(node)
						   : ferry_strerror(err));
		goto out;
	}
	if (!fields)
		goto out;
	int status;
	const char *code;
	char why[sizeof(e->message)];
	if (hub_check_fields(fields, &status, &code, why, sizeof(why)))
		rc = fail(e, status, code, "%s", why);
out:
	ferry_txn_abort(txn);
	return rc;
}

/* Is the record live? 1 yes, 0 no, -1 on a store error (e filled). */
static int record_live(ferry_node *node, const char *scope,
		       const char *collection, const char *key, rest_error *e)
{
	int live = 0;
	ferry_err err = ferry_record_state(&live, NULL, NULL, node, scope,
					   collection, key);
	if (err == FERRY_E_NOT_FOUND)
		return 0;
	if (err)
		return fail_engine(e, node, err, "reading the record");
	return live != 0;
}

/* Add the writes of one operation to `txn`. A replace ("put") is a delete
 * followed by the new fields: stamps increase within a transaction, so the
 * tombstone is older than the new fields and only they stay live. */
static ferry_err add_write(ferry_txn *txn, int replace, const char *scope,
			   const char *collection, const char *key,
			   const json_t *fields)
{
	ferry_err err = FERRY_OK;
	if (replace || !fields)
		err = ferry_txn_delete(txn, scope, collection, key);
	if (!err && fields)
		err = ferry_json_put(txn, scope, collection, key, fields);
	return err;
}

/* ------------------------------------------------------------------------ */
/* Records: GET/PUT/PATCH/DELETE /v1/{scope}/{collection}/{key}             */
/* ------------------------------------------------------------------------ */

static void record_get(hub_request *r)
{
	const char *scope = r->params[0], *collection = r->params[1];
	const char *key = r->params[2];
	ferry_record *rec = NULL;
	json_t *doc = NULL;
	uint64_t changed = 0;
	rest_error e;
	ferry_err err;

	if (check_write(r->node, scope, collection, key, NULL, &e)) {
		reply_fail(r, &e);
		return;
	}
	if (!hub_may_read(r, scope))
		return;
	err = ferry_get(&rec, r->node, scope, collection, key);
	if (err == FERRY_E_NOT_FOUND) {
		hub_reply_error(r, 404, "not_found",
				"no record with that key in this scope "
				"and collection");
		return;
	}
	if (err) {
		fail_engine(&e, r->node, err, "reading the record");
		reply_fail(r, &e);
		return;
	}
	ferry_record_cursors(rec, NULL, &changed);
	err = ferry_json_from_record(&doc, rec, FERRY_JSON_RECORD_NAMES);
	ferry_record_free(rec);
	if (!err && json_object_set_new(doc, "cursor",
					json_integer((json_int_t)changed)))
		err = FERRY_E_NOMEM;
	if (err) {
		json_decref(doc);
		fail_engine(&e, r->node, err, "reading the record");
		reply_fail(r, &e);
		return;
	}
	hub_reply_json(r, 200, doc);
}

/* Commit `txn` and reply {"cursor": N}; `txn` is consumed. */
static void commit_and_reply(hub_request *r, ferry_txn *txn)
{
	uint64_t cursor = 0;
	rest_error e;
	ferry_err err = ferry_txn_commit_cursor(txn, &cursor);
	if (err) {
		fail_engine(&e, r->node, err, "committing");
		reply_fail(r, &e);
		return;
	}
	hub_reply_json(r, 200,
		       json_pack("{s:I}", "cursor", (json_int_t)cursor));
}

/* PUT (replace = 1) and PATCH (replace = 0) share everything but the
 * delete before the fields and the 404 for a missing record. */
static void record_write(hub_request *r, int replace)
{
	const char *scope = r->params[0], *collection = r->params[1];
	const char *key = r->params[2];
	json_t *fields;
	ferry_txn *txn = NULL;
	rest_error e;
	ferry_err err;
	int live;

	fields = hub_body_json(r);
	if (!fields)
		return; /* hub_body_json replied 400 */
	if (check_write(r->node, scope, collection, key, fields, &e))
		goto refuse;
	if (!hub_may_write(r, scope))
		goto out;
	live = record_live(r->node, scope, collection, key, &e);
	if (live < 0)
		goto refuse;
	if (!replace && !live) {
		hub_reply_error(r, 404, "not_found",
				"no record with that key to patch; PUT creates "
				"records");
		goto out;
	}
	err = ferry_txn_begin(&txn, r->node);
	/* Replacing nothing needs no tombstone: a PUT creating a record is
	 * one change, not a delete and a put. */
	if (!err)
		err = add_write(txn, replace && live, scope, collection, key,
				fields);
	if (err) {
		ferry_txn_abort(txn);
		fail_engine(&e, r->node, err, "writing the record");
		goto refuse;
	}
	commit_and_reply(r, txn);
	goto out;
refuse:
	reply_fail(r, &e);
out:
	json_decref(fields);
}

static void record_put(hub_request *r)
{
	record_write(r, 1);
}

static void record_patch(hub_request *r)
{
	record_write(r, 0);
}

static void record_delete(hub_request *r)
{
	const char *scope = r->params[0], *collection = r->params[1];
	const char *key = r->params[2];
	ferry_txn *txn = NULL;
	rest_error e;
	ferry_err err;
	int live;

	if (check_write(r->node, scope, collection, key, NULL, &e)) {
		reply_fail(r, &e);
		return;
	}
	if (!hub_may_write(r, scope))
		return;
	live = record_live(r->node, scope, collection, key, &e);
	if (live < 0) {
		reply_fail(r, &e);
		return;
	}
	if (!live) {
		hub_reply_error(r, 404, "not_found",
				"no record with that key to delete");
		return;
	}
	err = ferry_txn_begin(&txn, r->node);
	if (!err)
		err = ferry_txn_delete(txn, scope, collection, key);
	if (err) {
		ferry_txn_abort(txn);
		fail_engine(&e, r->node, err, "deleting the record");
		reply_fail(r, &e);
		return;
	}
	commit_and_reply(r, txn);
}

/* ------------------------------------------------------------------------ */
/* List: GET /v1/{scope}/{collection}?prefix=&after=&limit=                 */
/* ------------------------------------------------------------------------ */

typedef struct list_ctx {
	json_t *records;
	uint64_t limit; /* records to return; one more is read */
	uint64_t seen;
	char last[FERRY_MAX_KEY_BYTES + 1]; /* key of the last returned */
	int more;			    /* a record beyond the page */
	ferry_err err;
} list_ctx;

static int list_one(const ferry_record *rec, void *payload)
{
	list_ctx *ctx = payload;
	json_t *fields = NULL, *item;
	uint64_t changed = 0;

	/* The scan reads one record past the page only to learn whether a
	 * continuation token is needed. */
	if (ctx->seen == ctx->limit) {
		ctx->more = 1;
		return 1;
	}
	ctx->err = ferry_json_from_record(&fields, rec, 0);
	if (ctx->err)
		return 1;
	ferry_record_cursors(rec, NULL, &changed);
	item = json_pack("{s:s, s:o, s:I}", "key", ferry_record_key(rec),
			 "fields", fields, "cursor", (json_int_t)changed);
	if (!item || json_array_append_new(ctx->records, item)) {
		ctx->err = FERRY_E_NOMEM;
		return 1;
	}
	snprintf(ctx->last, sizeof(ctx->last), "%s", ferry_record_key(rec));
	ctx->seen++;
	return 0;
}

/* Decode a continuation token into the key it names. */
static int token_decode(const char *token, char *key, size_t key_len,
			rest_error *e)
{
	size_t n = 0;
	const char *end = NULL;
	if (sodium_base642bin((unsigned char *)key, key_len - 1, token,
			      strlen(token), NULL, &n, &end, TOKEN_VARIANT) ||
	    *end || n == 0 || memchr(key, 0, n) || !ferry_utf8_valid(key, n))
		return fail(e, 400, "bad_token",
			    "after= is not a continuation token from a "
			    "previous page (\"next\")");
	key[n] = 0;
	return 0;
}

static void record_list(hub_request *r)
{
	const char *scope = r->params[0], *collection = r->params[1];
	char prefix[FERRY_MAX_KEY_BYTES + 1], token[TOKEN_MAX_BYTES + 16];
	char after[FERRY_MAX_KEY_BYTES + 1];
	char next[TOKEN_MAX_BYTES];
	ferry_scan_options opts = {NULL, NULL, 0};
	list_ctx ctx = {0};
	rest_error e;
	ferry_err err;
	int got;

	/* The same names check as a write, with any valid key. */
	if (check_write(r->node, scope, collection, "k", NULL, &e)) {
		reply_fail(r, &e);
		return;
	}
	if (!hub_may_read(r, scope))
		return;
	if (hub_query_u64(r, "limit", PAGE_DEFAULT, PAGE_MAX, &ctx.limit))
		return;
	if (ctx.limit == 0) {
		hub_reply_error(r, 400, "bad_query",
				"limit must be between 1 and %d", PAGE_MAX);
		return;
	}
	got = hub_query(r, "prefix", prefix, sizeof(prefix));
	if (got < 0)
		return;
	if (got && *prefix)
		opts.prefix = prefix;
	got = hub_query(r, "after", token, sizeof(token));
	if (got < 0)
		return;
	if (got && *token) {
		if (token_decode(token, after, sizeof(after), &e)) {
			reply_fail(r, &e);
			return;
		}
		opts.after = after;
	}
	opts.limit = ctx.limit + 1;
	ctx.records = json_array();
	if (!ctx.records) {
		hub_reply_error(r, 500, "out_of_memory", "building the list");
		return;
	}
	err = ferry_scan(r->node, scope, collection, &opts, list_one, &ctx);
	if (!err)
		err = ctx.err;
	if (err) {
		json_decref(ctx.records);
		fail_engine(&e, r->node, err, "listing the collection");
		reply_fail(r, &e);
		return;
	}
	if (ctx.more)
		sodium_bin2base64(next, sizeof(next),
				  (const unsigned char *)ctx.last,
				  strlen(ctx.last), TOKEN_VARIANT);
	hub_reply_json(r, 200,
		       json_pack("{s:o, s:o}", "records", ctx.records, "next",
				 ctx.more ? json_string(next) : json_null()));
}

/* ------------------------------------------------------------------------ */
/* Changes: GET /v1/changes?since=&limit=&wait=                             */
/* ------------------------------------------------------------------------ */

typedef struct changes_ctx {
	const hub_key *key;
	json_t *changes;
	uint64_t limit, matched, examined;
	uint64_t next; /* cursor of the last change examined */
	int stopped;   /* by limit or budget: there may be more now */
	ferry_err err;
} changes_ctx;

static int changes_one(const ferry_change *c, void *payload)
{
	changes_ctx *ctx = payload;
	json_t *doc;

	ctx->examined++;
	ctx->next = c->cursor;
	if (hub_key_reads(ctx->key, c->scope)) {
		ctx->err = ferry_json_from_change(&doc, c);
		if (!ctx->err && json_array_append_new(ctx->changes, doc))
			ctx->err = FERRY_E_NOMEM;
		if (ctx->err)
			return 1;
		ctx->matched++;
	}
	if (ctx->matched == ctx->limit ||
	    ctx->examined == CHANGES_SCAN_BUDGET) {
		ctx->stopped = 1;
		return 1;
	}
	return 0;
}

static void changes_run(hub_request *r, int may_park);

/* A parked poll woke: the cursor moved or the deadline passed. Either way
 * it answers now, even with an empty page when the new changes were all
 * in scopes the key cannot read ("next" still moves past them): the wake
 * carries no record of the original deadline to park again until. */
static void changes_retry(hub_request *r, int timed_out)
{
	(void)timed_out;
	changes_run(r, 0);
}

/* The query is re-read from the request on each run, so a woken poll
 * needs no state of its own. */
static void changes_run(hub_request *r, int may_park)
{
	changes_ctx ctx = {0};
	uint64_t since, wait;
	rest_error e;
	ferry_err err;

	if (hub_query_u64(r, "since", 0, UINT64_MAX, &since) ||
	    hub_query_u64(r, "limit", PAGE_DEFAULT, PAGE_MAX, &ctx.limit) ||
	    hub_query_u64(r, "wait", 0, UINT32_MAX, &wait))
		return;
	if (ctx.limit == 0) {
		hub_reply_error(r, 400, "bad_query",
				"limit must be between 1 and %d", PAGE_MAX);
		return;
	}
	/* Longer waits than the hub allows are shortened, not refused: a
	 * client cannot know the hub's setting. */
	if (wait > r->config->max_wait_s)
		wait = r->config->max_wait_s;
	ctx.key = r->key;
	ctx.next = since;
	ctx.changes = json_array();
	if (!ctx.changes) {
		hub_reply_error(r, 500, "out_of_memory",
				"building the change list");
		return;
	}
	err = ferry_changes(r->node, since, 0, changes_one, &ctx);
	if (!err)
		err = ctx.err;
	if (err) {
		json_decref(ctx.changes);
		fail_engine(&e, r->node, err, "reading the change log");
		reply_fail(r, &e);
		return;
	}
	/* Park only at the end of the log: when the budget stopped the scan,
	 * more changes are already there to look at. */
	if (may_park && ctx.matched == 0 && !ctx.stopped && wait > 0) {
		json_decref(ctx.changes);
		hub_park(r, ctx.next, wait * 1000u, changes_retry);
		return;
	}
	hub_reply_json(r, 200,
		       json_pack("{s:o, s:I}", "changes", ctx.changes, "next",
				 (json_int_t)ctx.next));
}

static void changes_get(hub_request *r)
{
	changes_run(r, 1);
}

/* ------------------------------------------------------------------------ */
/* Batch: POST /v1/batch                                                    */
/* ------------------------------------------------------------------------ */

typedef struct batch_ctx {
	hub_request *r;
	ferry_txn *txn;
	json_t *seen_ids; /* id -> true: repeats within one request */
	/* "<len>:scope<len>:collection<len>:key" -> live after the batch's
	 * earlier operations, so a patch may follow a put of the same new
	 * record. */
	json_t *touched;
	size_t writes; /* operations applied to txn */
} batch_ctx;

/* A member that must be a non-empty string; NULL (e filled) otherwise. */
static const char *op_string(const json_t *op, const char *name, rest_error *e)
{
	const json_t *v = json_object_get(op, name);
	if (!v) {
		fail(e, 400, "bad_operation", "\"%s\" is missing", name);
		return NULL;
	}
	if (!json_is_string(v)) {
		fail(e, 400, "bad_operation", "\"%s\" must be a string", name);
		return NULL;
	}
	if (strlen(json_string_value(v)) != json_string_length(v)) {
		fail(e, 400, "bad_operation", "\"%s\" holds a NUL character",
		     name);
		return NULL;
	}
	return json_string_value(v);
}

static char *record_id(const char *scope, const char *collection,
		       const char *key)
{
	size_t len = strlen(scope) + strlen(collection) + strlen(key) + 64;
	char *id = malloc(len);
	if (id)
		snprintf(id, len, "%zu:%s%zu:%s%zu:%s", strlen(scope), scope,
			 strlen(collection), collection, strlen(key), key);
	return id;
}

/* Validate one operation and add it to the batch's transaction. Returns 0
 * (applied), -1 with `e` filled (refused: nothing of it in the txn), or -2
 * when the transaction itself failed (the whole batch must be dropped). */
static int batch_apply(batch_ctx *b, const json_t *op, rest_error *e)
{
	const char *kind, *scope, *collection, *key;
	const json_t *fields = json_object_get(op, "fields");
	int replace, live;
	char *rid;
	json_t *state;
	ferry_err err;

	if (!(kind = op_string(op, "op", e)) ||
	    !(scope = op_string(op, "scope", e)) ||
	    !(collection = op_string(op, "collection", e)) ||
	    !(key = op_string(op, "key", e)))
		return -1;
	if (strcmp(kind, "put") && strcmp(kind, "patch") &&
	    strcmp(kind, "delete"))
		return fail(e, 400, "bad_operation",
			    "\"op\" must be \"put\", \"patch\" or \"delete\"");
	replace = !strcmp(kind, "put");
	if (!strcmp(kind, "delete")) {
		if (fields)
			return fail(e, 400, "bad_operation",
				    "a delete takes no \"fields\"");
	} else if (!fields) {
		return fail(e, 400, "bad_operation", "a %s needs \"fields\"",
			    kind);
	}
	if (check_write(b->r->node, scope, collection, key, fields, e))
		return -1;
	if (!hub_key_writes(b->r->key, scope))
		return fail(e, 403, "forbidden",
			    "API key %s (%s) may not write scope %s",
			    b->r->key->id, b->r->key->name, scope);

	rid = record_id(scope, collection, key);
	if (!rid)
		return fail(e, 500, "out_of_memory", "batch");
	state = json_object_get(b->touched, rid);
	if (state)
		live = json_is_true(state);
	else
		live = record_live(b->r->node, scope, collection, key, e);
	if (live < 0 || (!replace && !live)) {
		free(rid);
		if (live < 0)
			return -1;
		return fail(e, 404, "not_found",
			    "no record with that key to %s", kind);
	}
	err = add_write(b->txn, replace, scope, collection, key, fields);
	if (!err &&
	    json_object_set_new(b->touched, rid, json_boolean(fields != NULL)))
		err = FERRY_E_NOMEM;
	free(rid);
	if (err) {
		fail_engine(e, b->r->node, err, "batch");
		return -2;
	}
	b->writes++;
	return 0;
}

/* One operation's result, new or replayed. Returns NULL with `e` filled
 * when the batch must be dropped (store failure, out of memory). */
static json_t *batch_op(batch_ctx *b, const json_t *op, rest_error *e)
{
	const json_t *idv =
		json_is_object(op) ? json_object_get(op, "id") : NULL;
	const char *id = json_string_value(idv);
	char kvkey[sizeof(b->r->key->id) + BATCH_ID_MAX_BYTES + 1];
	rest_error why;
	json_t *res;
	ferry_err err;
	int rc;

	if (!json_is_object(op))
		rc = fail(&why, 400, "bad_operation",
			  "an operation must be a JSON object");
	else if (!id || !*id || json_string_length(idv) > BATCH_ID_MAX_BYTES ||
		 strlen(id) != json_string_length(idv))
		rc = fail(&why, 400, "bad_operation",
			  "\"id\" must be a string of 1 to %d bytes",
			  BATCH_ID_MAX_BYTES);
	else if (json_object_get(b->seen_ids, id))
		rc = fail(&why, 400, "duplicate_id",
			  "id \"%s\" appears more than once in this batch", id);
	else
		rc = 0;
	if (rc)
		goto refused;
	if (json_object_set_new(b->seen_ids, id, json_true())) {
		fail(e, 500, "out_of_memory", "batch");
		return NULL;
	}

	/* An id this key already used: answer what it did then. */
	snprintf(kvkey, sizeof(kvkey), "%s:%s", b->r->key->id, id);
	err = kvjson_get(&res, b->r->node, BATCH_TABLE, kvkey);
	if (!err)
		return res;
	if (err == FERRY_E_CORRUPT) {
		fail(e, 500, "store_error",
		     "the stored result of operation \"%s\" is not a JSON "
		     "object",
		     id);
		return NULL;
	}
	if (err != FERRY_E_NOT_FOUND) {
		fail_engine(e, b->r->node, err, "reading batch results");
		return NULL;
	}

	rc = batch_apply(b, op, &why);
	if (rc == -2) {
		*e = why;
		return NULL;
	}
	if (rc)
		goto refused;
	res = json_pack("{s:s, s:s}", "id", id, "status", "ok");
	if (res) {
		/* Remembered in the same commit as the writes: a retry finds
		 * the result exactly when the writes happened. */
		err = kvjson_txn_put(b->txn, BATCH_TABLE, kvkey, res);
		if (err) {
			json_decref(res);
			fail_engine(e, b->r->node, err, "batch");
			return NULL;
		}
	}
	if (!res)
		fail(e, 500, "out_of_memory", "batch");
	return res;

refused:
	/* Refusals are not remembered: they wrote nothing, so the same id
	 * may be sent again once the operation is fixed (or the key's
	 * grant widened). */
	res = json_pack("{s:O?, s:s, s:i, s:s, s:s}", "id",
			json_is_string(idv) ? idv : NULL, "status", "error",
			"http_status", why.status, "code", why.code, "error",
			why.message);
	if (!res)
		fail(e, 500, "out_of_memory", "batch");
	return res;
}

static void batch_post(hub_request *r)
{
	json_t *body, *ops, *results = NULL, *res;
	batch_ctx b = {0};
	uint64_t cursor = 0;
	rest_error e;
	ferry_err err;
	size_t i;

	body = hub_body_json(r);
	if (!body)
		return;
	ops = json_object_get(body, "operations");
	if (!json_is_object(body) || !json_is_array(ops)) {
		hub_reply_error(r, 400, "bad_request",
				"the body must be {\"operations\": [...]}");
		goto out;
	}
	if (json_array_size(ops) > r->config->max_actions) {
		hub_reply_error(r, 413, "too_many_operations",
				"%zu operations in one batch; the limit is %zu",
				json_array_size(ops), r->config->max_actions);
		goto out;
	}
	/* A request touching a scope outside the key's grant is refused
	 * whole, before anything is staged: it changes nothing. */
	for (i = 0; i < json_array_size(ops); i++) {
		const char *scope = json_string_value(
			json_object_get(json_array_get(ops, i), "scope"));
		if (scope && !hub_key_writes(r->key, scope)) {
			hub_reply_error(
				r, 403, "forbidden",
				"operation %zu: API key %s (%s) may not "
				"write scope %s; nothing was written",
				i, r->key->id, r->key->name, scope);
			goto out;
		}
	}
	b.r = r;
	b.seen_ids = json_object();
	b.touched = json_object();
	results = json_array();
	err = ferry_txn_begin(&b.txn, r->node);
	if (err || !b.seen_ids || !b.touched || !results) {
		fail_engine(&e, r->node, err ? err : FERRY_E_NOMEM, "batch");
		goto refuse;
	}
	for (i = 0; i < json_array_size(ops); i++) {
		res = batch_op(&b, json_array_get(ops, i), &e);
		if (!res)
			goto refuse;
		if (json_array_append_new(results, res)) {
			fail(&e, 500, "out_of_memory", "batch results");
			goto refuse;
		}
	}
	/* All applied operations and their remembered results commit
	 * together, or none does. */
	if (b.writes) {
		err = ferry_txn_commit_cursor(b.txn, &cursor);
		b.txn = NULL;
		if (err) {
			fail_engine(&e, r->node, err, "committing the batch");
			goto refuse;
		}
	}
	hub_reply_json(r, 200,
		       json_pack("{s:O, s:o}", "results", results, "cursor",
				 b.writes ? json_integer((json_int_t)cursor)
					  : json_null()));
	goto out;
refuse:
	reply_fail(r, &e);
out:
	ferry_txn_abort(b.txn);
	json_decref(results);
	json_decref(b.seen_ids);
	json_decref(b.touched);
	json_decref(body);
}

/* ------------------------------------------------------------------------ */
/* Routes                                                                   */
/* ------------------------------------------------------------------------ */

const hub_route hub_generic_routes[] = {
	{"GET", "/v1/changes", changes_get, 0},
	{"POST", "/v1/batch", batch_post, 0},
	/* A scope may contain '/' (docs/rest-api.md, "Paths"): lists end in
	 * '/' unless the scope has none; records split from the right. */
	{"GET", "/v1/{*}/{}/", record_list, 0},
	{"GET", "/v1/{}/{}", record_list, 0},
	{"GET", "/v1/{*}/{}/{}", record_get, 0},
	{"PUT", "/v1/{*}/{}/{}", record_put, 0},
	{"PATCH", "/v1/{*}/{}/{}", record_patch, 0},
	{"DELETE", "/v1/{*}/{}/{}", record_delete, 0},
	{NULL, NULL, NULL, 0},
};
