/*
 * rest_watermelon.c — compatibility profile 2: the change format of
 * WatermelonDB's synchronize() (docs/rest-api.md).
 *
 *   GET  /api/sync/initial                       everything, as created
 *   GET  /api/sync/incremental?last_pulled_at=T  what changed after T
 *   POST /api/sync/outgoing?last_pulled_at=T     the client's changes
 *
 * Pulls answer {"changes": {table: {"created", "updated", "deleted"}},
 * "timestamp": T2}. Tables are collection names; the key's readable
 * scopes are served together (a client sees one database), and a push is
 * written into the key's one writable scope. The "timestamp" is not a
 * clock but the node's arrival cursor (ferry_changes_last), which the
 * client hands back as last_pulled_at: cursors never go backwards and a
 * record's created/changed cursors compare with it exactly, which wall
 * clocks across machines would not.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry_json.h"
#include "hub.h"

/* ------------------------------------------------------------------------ */
/* Shared pieces                                                            */
/* ------------------------------------------------------------------------ */

/* A readable (scope, collection) pair. */
typedef struct pair {
	char *scope, *collection;
} pair;

typedef struct pairs {
	pair *v;
	size_t n, cap;
	const hub_key *key;
	ferry_err err;
} pairs;

static void pairs_free(pairs *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->v[i].scope);
		free(p->v[i].collection);
	}
	free(p->v);
}

static int add_pair(const char *scope, const char *collection,
		    uint64_t live_records, void *payload)
{
	pairs *p = payload;
	(void)live_records;
	if (!hub_key_reads(p->key, scope))
		return 0;
	if (p->n == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 16;
		pair *grown = realloc(p->v, cap * sizeof(*grown));
		if (!grown) {
			p->err = FERRY_E_NOMEM;
			return 1;
		}
		p->v = grown;
		p->cap = cap;
	}
	p->v[p->n].scope = strdup(scope);
	p->v[p->n].collection = strdup(collection);
	if (!p->v[p->n].scope || !p->v[p->n].collection) {
		free(p->v[p->n].scope);
		free(p->v[p->n].collection);
		p->err = FERRY_E_NOMEM;
		return 1;
	}
	p->n++;
	return 0;
}

/* Every (scope, collection) the key may read. Collected before any scan:
 * a scan inside ferry_collections' callback would nest read
 * transactions. */
static ferry_err readable_pairs(pairs *out, hub_request *r)
{
	memset(out, 0, sizeof(*out));
	out->key = r->key;
	ferry_err err = ferry_collections(r->node, add_pair, out);
	if (!err)
		err = out->err;
	if (err)
		pairs_free(out);
	return err;
}

/* changes[table] = {"created": [], "updated": [], "deleted": []}, made on
 * first use; returns the table's object (borrowed). */
static json_t *table_of(json_t *changes, const char *table)
{
	json_t *t = json_object_get(changes, table);
	if (t)
		return t;
	t = json_pack("{s:[], s:[], s:[]}", "created", "updated", "deleted");
	if (!t || json_object_set_new(changes, table, t))
		return NULL;
	return t;
}

/* {"id": key, field: value, ...}. WatermelonDB ids are strings, so the
 * key is always sent as one; a stored field named "id" would contradict
 * it and is left out. */
static ferry_err record_json(json_t **out, const ferry_record *rec)
{
	return hub_record_json(out, rec, json_string(ferry_record_key(rec)));
}

static void reply_ferry_error(hub_request *r, ferry_err err, const char *what)
{
	const char *detail = ferry_node_errmsg(r->node);
	hub_reply_error(r, err == FERRY_E_LIMIT ? 413 : 500,
			err == FERRY_E_LIMIT ? "too_large" : "internal",
			"%s: %s%s%s", what, ferry_strerror(err),
			*detail ? ": " : "", detail);
}

/* last_pulled_at, required: 0 after replying 400 if missing or bad. */
static int last_pulled_at(hub_request *r, uint64_t *out)
{
	char text[32], *end;
	int found = hub_query(r, "last_pulled_at", text, sizeof(text));
	if (found < 0)
		return 0;
	if (!found) {
		hub_reply_error(r, 400, "bad_query",
				"last_pulled_at is required: the timestamp "
				"of the last pull (use /api/sync/initial for "
				"the first)");
		return 0;
	}
	errno = 0;
	unsigned long long v = strtoull(text, &end, 10);
	if (!text[0] || *end || text[0] < '0' || text[0] > '9' || errno) {
		hub_reply_error(r, 400, "bad_query",
				"last_pulled_at must be a timestamp returned "
				"by an earlier pull (an unsigned integer), "
				"not \"%s\"",
				text);
		return 0;
	}
	*out = v;
	return 1;
}

static void reply_pull(hub_request *r, json_t *changes, uint64_t timestamp)
{
	hub_reply_json(r, 200,
		       json_pack("{s:o, s:I}", "changes", changes, "timestamp",
				 (json_int_t)timestamp));
}

/* ------------------------------------------------------------------------ */
/* GET /api/sync/initial                                                    */
/* ------------------------------------------------------------------------ */

/* Every live record of every readable collection, as "created". The
 * cursor is read first, so whatever lands during the scans is at worst
 * sent again by the next incremental pull, never missed. */
static void initial(hub_request *r)
{
	uint64_t now;
	pairs p;
	json_t *changes = NULL;
	ferry_err err = ferry_changes_last(&now, r->node);
	if (!err)
		err = readable_pairs(&p, r);
	if (err) {
		reply_ferry_error(r, err, "listing collections");
		return;
	}
	changes = json_object();
	if (!changes)
		err = FERRY_E_NOMEM;
	for (size_t i = 0; i < p.n && !err; i++) {
		json_t *t = table_of(changes, p.v[i].collection);
		err = hub_scan_json(json_object_get(t, "created"), r->node,
				    p.v[i].scope, p.v[i].collection,
				    json_string);
	}
	pairs_free(&p);
	if (err) {
		json_decref(changes);
		reply_ferry_error(r, err, "reading records");
		return;
	}
	reply_pull(r, changes, now);
}

/* ------------------------------------------------------------------------ */
/* GET /api/sync/incremental?last_pulled_at=T                               */
/* ------------------------------------------------------------------------ */

/* A record touched after T, in a readable scope. */
typedef struct touched {
	char *scope, *collection, *key;
} touched;

typedef struct walk {
	const hub_key *key;
	uint64_t until;
	json_t *seen; /* length-prefixed "scope collection key" -> true */
	touched *v;
	size_t n, cap;
	ferry_err err;
} walk;

static void walk_free(walk *w)
{
	for (size_t i = 0; i < w->n; i++) {
		free(w->v[i].scope);
		free(w->v[i].collection);
		free(w->v[i].key);
	}
	free(w->v);
	json_decref(w->seen);
}

/* Collect each (scope, collection, key) once. Records are not read here:
 * that would nest a read transaction inside ferry_changes'. */
static int walk_change(const ferry_change *c, void *payload)
{
	walk *w = payload;
	/* Names may hold any byte but NUL; length prefixes keep
	 * ("a", "b c") and ("a b", "c") apart. */
	char id[3 * 8 + FERRY_MAX_SCOPE_BYTES + FERRY_MAX_COLLECTION_BYTES +
		FERRY_MAX_KEY_BYTES + 1];
	if (c->cursor > w->until)
		return 1; /* the next pull's */
	if (!hub_key_reads(w->key, c->scope))
		return 0;
	snprintf(id, sizeof(id), "%zu:%s%zu:%s%s", strlen(c->scope), c->scope,
		 strlen(c->collection), c->collection, c->key);
	if (json_object_get(w->seen, id))
		return 0;
	if (w->n == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 64;
		touched *grown = realloc(w->v, cap * sizeof(*grown));
		if (!grown)
			goto nomem;
		w->v = grown;
		w->cap = cap;
	}
	if (json_object_set_new(w->seen, id, json_true()))
		goto nomem;
	touched *t = &w->v[w->n];
	t->scope = strdup(c->scope);
	t->collection = strdup(c->collection);
	t->key = strdup(c->key);
	w->n++;
	if (!t->scope || !t->collection || !t->key)
		goto nomem;
	return 0;
nomem:
	w->err = FERRY_E_NOMEM;
	return 1;
}

/* Sort one touched record into created / updated / deleted by its
 * cursors: created after T → created; live but created before → updated;
 * gone and created before → deleted; born and gone after T → the client
 * never saw it, so nothing. */
static ferry_err classify(hub_request *r, json_t *changes, const touched *t,
			  uint64_t since)
{
	int live = 0;
	uint64_t created = 0;
	ferry_record *rec;
	json_t *obj, *table;
	ferry_err err = ferry_record_state(&live, &created, NULL, r->node,
					   t->scope, t->collection, t->key);
	if (err)
		return err;
	if (!live && created > since)
		return FERRY_OK;
	table = table_of(changes, t->collection);
	if (!table)
		return FERRY_E_NOMEM;
	if (!live)
		return json_array_append_new(json_object_get(table, "deleted"),
					     json_string(t->key))
			       ? FERRY_E_NOMEM
			       : FERRY_OK;
	err = ferry_get(&rec, r->node, t->scope, t->collection, t->key);
	if (err == FERRY_E_NOT_FOUND) /* deleted by another process since */
		return json_array_append_new(json_object_get(table, "deleted"),
					     json_string(t->key))
			       ? FERRY_E_NOMEM
			       : FERRY_OK;
	if (err)
		return err;
	err = record_json(&obj, rec);
	ferry_record_free(rec);
	if (!err && json_array_append_new(
			    json_object_get(table, created > since ? "created"
								   : "updated"),
			    obj))
		err = FERRY_E_NOMEM;
	return err;
}

static void incremental(hub_request *r)
{
	uint64_t since, now;
	pairs p;
	walk w = {0};
	json_t *changes = NULL;
	if (!last_pulled_at(r, &since))
		return;
	ferry_err err = ferry_changes_last(&now, r->node);
	if (!err)
		err = readable_pairs(&p, r);
	if (err) {
		reply_ferry_error(r, err, "listing collections");
		return;
	}
	changes = json_object();
	w.key = r->key;
	w.until = now;
	w.seen = json_object();
	if (!changes || !w.seen)
		err = FERRY_E_NOMEM;
	/* Every readable table is listed, empty or not, so a client sees
	 * the same set of tables from initial and incremental pulls. */
	for (size_t i = 0; i < p.n && !err; i++)
		if (!table_of(changes, p.v[i].collection))
			err = FERRY_E_NOMEM;
	pairs_free(&p);
	if (!err && since < now)
		err = ferry_changes(r->node, since, 0, walk_change, &w);
	if (!err)
		err = w.err;
	for (size_t i = 0; i < w.n && !err; i++)
		err = classify(r, changes, &w.v[i], since);
	walk_free(&w);
	if (err) {
		json_decref(changes);
		reply_ferry_error(r, err, "reading changes");
		return;
	}
	reply_pull(r, changes, now);
}

/* ------------------------------------------------------------------------ */
/* POST /api/sync/outgoing?last_pulled_at=T                                 */
/* ------------------------------------------------------------------------ */

/* The lists of a pushed table, in the order they are applied. */
static const char *const kinds[] = {"created", "updated", "deleted"};
#define KIND_DELETED 2

/* One record of a push: index `i` of table's kinds[kind] list. A deleted
 * record is its id; the others are objects holding one. */
typedef struct pushed {
	const char *table;
	size_t kind;
	size_t i;
	json_t *item;
	const char *id;
} pushed;

/* What checking and staging one push share. */
typedef struct push {
	const char *scope;
	uint64_t since; /* last_pulled_at */
	ferry_txn *txn;
	size_t writes;
} push;

/* Call `fn` on every record of a push check_push() accepted, stopping at
 * the first nonzero return, which is returned. */
static int for_each_pushed(hub_request *r, json_t *changes, push *ps,
			   int (*fn)(hub_request *r, push *ps, const pushed *p))
{
	pushed p;
	json_t *t;
	json_object_foreach(changes, p.table, t)
	{
		for (p.kind = 0; p.kind < 3; p.kind++) {
			json_array_foreach(json_object_get(t, kinds[p.kind]),
					   p.i, p.item)
			{
				p.id = json_string_value(
					p.kind == KIND_DELETED
						? p.item
						: json_object_get(p.item,
								  "id"));
				int rc = fn(r, ps, &p);
				if (rc)
					return rc;
			}
		}
	}
	return 0;
}

/* Check the shape of {"changes": {table: {created, updated, deleted}}}
 * before anything is read or written. Returns 0, or -1 after replying
 * 400 naming the first problem. Counts the records into *n. */
static int check_push(hub_request *r, json_t *changes, size_t *n)
{
	const char *table;
	json_t *t;
	*n = 0;
	if (!json_is_object(changes)) {
		hub_reply_error(r, 400, "bad_request",
				"the body must be {\"changes\": {table: "
				"{\"created\": [...], \"updated\": [...], "
				"\"deleted\": [...]}}}");
		return -1;
	}
	json_object_foreach(changes, table, t)
	{
		if (!json_is_object(t)) {
			hub_reply_error(r, 400, "bad_request",
					"changes.%.64s is not an object",
					table);
			return -1;
		}
		for (size_t k = 0; k < 3; k++) {
			json_t *list = json_object_get(t, kinds[k]);
			json_t *item;
			size_t i;
			if (!list)
				continue;
			if (!json_is_array(list)) {
				hub_reply_error(r, 400, "bad_request",
						"changes.%.64s.%s is not an "
						"array",
						table, kinds[k]);
				return -1;
			}
			json_array_foreach(list, i, item)
			{
				json_t *id =
					k == KIND_DELETED
						? item
						: json_object_get(item, "id");
				if (k != KIND_DELETED &&
				    !json_is_object(item)) {
					hub_reply_error(
						r, 400, "bad_request",
						"changes.%.64s.%s[%zu] is not "
						"an object",
						table, kinds[k], i);
					return -1;
				}
				if (!json_is_string(id)) {
					hub_reply_error(
						r, 400, "bad_request",
						"changes.%.64s.%s[%zu] needs "
						"a string id",
						table, kinds[k], i);
					return -1;
				}
				(*n)++;
			}
		}
	}
	return 0;
}

/* 409 if the record changed on the hub after last_pulled_at (WatermelonDB
 * then pulls and pushes again). Returns 0 if it did not, -1 after
 * replying. */
static int check_conflict(hub_request *r, push *ps, const pushed *p)
{
	uint64_t changed = 0;
	ferry_err err = ferry_record_state(NULL, NULL, &changed, r->node,
					   ps->scope, p->table, p->id);
	if (err == FERRY_E_NOT_FOUND)
		return 0;
	if (err == FERRY_E_INVALID || err == FERRY_E_LIMIT) {
		hub_reply_error(r, 400, "bad_request",
				"changes.%.64s.%s[%zu]: %s", p->table,
				kinds[p->kind], p->i,
				ferry_node_errmsg(r->node));
		return -1;
	}
	if (err) {
		reply_ferry_error(r, err, "checking conflicts");
		return -1;
	}
	if (changed > ps->since) {
		hub_reply_error(r, 409, "conflict",
				"%.64s %.256s changed on the hub after %" PRIu64
				" (at %" PRIu64 "): pull, then push again",
				p->table, p->id, ps->since, changed);
		return -1;
	}
	return 0;
}

/* A pushed record's fields: all but the id (the key) and WatermelonDB's
 * own bookkeeping, which means something only on the client. Borrows the
 * values. */
static json_t *push_fields(json_t *rec)
{
	json_t *fields = json_object();
	const char *name;
	json_t *v;
	if (!fields)
		return NULL;
	json_object_foreach(rec, name, v)
	{
		if (!strcmp(name, "id") || !strcmp(name, "_status") ||
		    !strcmp(name, "_changed"))
			continue;
		if (json_object_set_nocheck(fields, name, v)) {
			json_decref(fields);
			return NULL;
		}
	}
	return fields;
}

/* Stage one pushed record into ps->txn. Returns 0, or -1 after
 * replying. */
static int stage_record(hub_request *r, push *ps, const pushed *p)
{
	ferry_err err;

	if (p->kind == KIND_DELETED) {
		int live = 0;
		/* Deleting what the hub does not hold (or no longer does) is
		 * a no-op, as WatermelonDB expects; a tombstone would only
		 * add a change. */
		if (ferry_record_state(&live, NULL, NULL, r->node, ps->scope,
				       p->table, p->id) ||
		    !live)
			return 0;
		err = ferry_txn_delete(ps->txn, ps->scope, p->table, p->id);
	} else {
		json_t *fields = push_fields(p->item);
		char why[256];
		int status;
		const char *code;
		if (!fields) {
			reply_ferry_error(r, FERRY_E_NOMEM, "staging the push");
			return -1;
		}
		/* A record of bookkeeping only has nothing to store: ferry has
		 * no empty records. */
		if (json_object_size(fields) == 0) {
			json_decref(fields);
			return 0;
		}
		if (hub_check_fields(fields, &status, &code, why,
				     sizeof(why))) {
			json_decref(fields);
			hub_reply_error(r, status, code,
					"changes.%.64s.%s[%zu]: %s", p->table,
					kinds[p->kind], p->i, why);
			return -1;
		}
		err = ferry_json_put(ps->txn, ps->scope, p->table, p->id,
				     fields);
		json_decref(fields);
	}
	if (err == FERRY_E_INVALID || err == FERRY_E_LIMIT) {
		const char *d = ferry_node_errmsg(r->node);
		hub_reply_error(r, err == FERRY_E_LIMIT ? 413 : 400,
				err == FERRY_E_LIMIT ? "too_large"
						     : "bad_request",
				"changes.%.64s.%s[%zu]: %s%s%s", p->table,
				kinds[p->kind], p->i, ferry_strerror(err),
				*d ? ": " : "", d);
		return -1;
	}
	if (err) {
		reply_ferry_error(r, err, "staging the push");
		return -1;
	}
	ps->writes++;
	return 0;
}

/* All or nothing: the push is checked for shape and conflicts first, then
 * applied in one transaction. Everything runs on the loop's thread, so
 * no write of this hub can slip between the check and the commit. */
static void outgoing(hub_request *r)
{
	push ps = {0};
	uint64_t cursor = 0;
	size_t n;
	if (!last_pulled_at(r, &ps.since))
		return;
	json_t *body = hub_body_json(r);
	if (!body)
		return;
	json_t *changes = json_object_get(body, "changes");
	ps.scope = hub_write_scope(r);
	if (!ps.scope || check_push(r, changes, &n))
		goto out;
	if (n > FERRY_MAX_WRITES_PER_TXN) {
		hub_reply_error(r, 413, "too_large",
				"%zu records in one push; at most %d", n,
				FERRY_MAX_WRITES_PER_TXN);
		goto out;
	}
	if (for_each_pushed(r, changes, &ps, check_conflict))
		goto out;
	ferry_err err = ferry_txn_begin(&ps.txn, r->node);
	if (err) {
		reply_ferry_error(r, err, "starting the push");
		goto out;
	}
	if (for_each_pushed(r, changes, &ps, stage_record))
		goto out;
	if (ps.writes) {
		err = ferry_txn_commit_cursor(ps.txn, &cursor);
		ps.txn = NULL;
	} else {
		err = ferry_changes_last(&cursor, r->node);
	}
	if (err) {
		reply_ferry_error(r, err, "committing the push");
		goto out;
	}
	hub_reply_json(r, 200,
		       json_pack("{s:b, s:I}", "ok", 1, "timestamp",
				 (json_int_t)cursor));
out:
	ferry_txn_abort(ps.txn);
	json_decref(body);
}

const hub_route hub_watermelon_routes[] = {
	{"GET", "/api/sync/initial", initial, 0},
	{"GET", "/api/sync/incremental", incremental, 0},
	{"POST", "/api/sync/outgoing", outgoing, 0},
	{NULL, NULL, NULL, 0},
};
