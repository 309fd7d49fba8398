/*
 * rest_desktop.c — compatibility profile 1: the offline desktop companion
 * (docs/rest-api.md). Clinic desktop apps download their branch's clients
 * and patients plus the head office's price list, queue actions while
 * offline and upload the queue when they can:
 *
 *   GET  /api/sync/initial-data    {"clients", "patients", "nomenclature"}
 *   POST /api/sync/upload-changes  {"tenantId", "branchId", "actions"}
 *                                  -> {"results": [per action]}
 *
 * A key's branch is its one writable scope, named TENANT/BRANCH. Records
 * created here get server ids from a counter per (scope, collection) kept
 * in the kv table "server_ids"; each successful action's result is kept in
 * "upload_results" under (key id, queue_id). Counters, results and data of
 * one request commit in one transaction, so a retried upload sees either
 * everything it did before or nothing, never a record without its result
 * (which would be created twice) or a result without its record.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry_json.h"
#include "hub.h"
#include "kvjson.h"

#define DEFAULT_PRICELIST_SCOPE "pricelist"
#define TABLE_SERVER_IDS "server_ids"
#define TABLE_RESULTS "upload_results"

/* Idempotency keys are "KEYID:QUEUEID" in a kv key of at most 256 bytes;
 * 200 bytes of queue id leave room for the key id and separator. */
#define MAX_QUEUE_ID_BYTES 200

/* Room for an error reason sent back with one action. */
#define REASON_BYTES 512

/* ------------------------------------------------------------------------ */
/* Records as JSON                                                          */
/* ------------------------------------------------------------------------ */

/* A record key as the desktop apps expect ids: a JSON integer when it is
 * a plain decimal number (the server ids this module hands out), else the
 * string. Leading zeros stay a string, since "007" -> 7 would not map
 * back to the same record; 18 digits always fit an int64. */
static json_t *id_json(const char *key)
{
	size_t n = strlen(key);
	if (n == 0 || n > 18 || key[strspn(key, "0123456789")] != '\0' ||
	    (key[0] == '0' && n > 1))
		return json_string(key);
	return json_integer((json_int_t)strtoll(key, NULL, 10));
}

/* All live records of (scope, collection) as a JSON array, one scan. */
static ferry_err collection_json(json_t **out, ferry_node *node,
				 const char *scope, const char *collection)
{
	json_t *list = json_array();
	ferry_err err = hub_scan_json(list, node, scope, collection, id_json);
	if (err) {
		json_decref(list);
		return err;
	}
	*out = list;
	return FERRY_OK;
}

static void reply_ferry_error(hub_request *r, ferry_err err, const char *what)
{
	const char *detail = ferry_node_errmsg(r->node);
	if (err == FERRY_E_LIMIT)
		hub_reply_error(r, 413, "too_large", "%s: %s%s%s", what,
				ferry_strerror(err), *detail ? ": " : "",
				detail);
	else
		hub_reply_error(r, 500, "internal", "%s: %s%s%s", what,
				ferry_strerror(err), *detail ? ": " : "",
				detail);
}

/* ------------------------------------------------------------------------ */
/* GET /api/sync/initial-data                                               */
/* ------------------------------------------------------------------------ */

/* The branch's clients and patients and the whole price list. The price
 * list is sent complete every time so the app can replace its copy
 * wholesale instead of merging; it is read-only for branches, so there is
 * nothing of theirs to merge with. */
static void initial_data(hub_request *r)
{
	static const struct {
		const char *member, *collection;
		int pricelist;
	} parts[] = {
		{"clients", "clients", 0},
		{"patients", "patients", 0},
		{"nomenclature", "nomenclature", 1},
	};
	const char *pricelist = r->config && r->config->pricelist_scope
					? r->config->pricelist_scope
					: DEFAULT_PRICELIST_SCOPE;
	const char *branch = hub_write_scope(r);
	if (!branch)
		return;
	/* Writing a scope does not imply reading it: both grants are
	 * checked, so a key never downloads what it was not given. */
	if (!hub_may_read(r, branch) || !hub_may_read(r, pricelist))
		return;

	json_t *doc = json_object();
	if (!doc) {
		hub_reply_json(r, 500, NULL);
		return;
	}
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		const char *scope = parts[i].pricelist ? pricelist : branch;
		json_t *list;
		ferry_err err = collection_json(&list, r->node, scope,
						parts[i].collection);
		if (!err &&
		    json_object_set_new_nocheck(doc, parts[i].member, list))
			err = FERRY_E_NOMEM;
		if (err) {
			json_decref(doc);
			reply_ferry_error(r, err, parts[i].collection);
			return;
		}
	}
	hub_reply_json(r, 200, doc);
}

/* ------------------------------------------------------------------------ */
/* POST /api/sync/upload-changes                                            */
/* ------------------------------------------------------------------------ */

typedef enum action_verb { VERB_CREATE, VERB_UPDATE, VERB_DELETE } action_verb;

static const struct entity {
	const char *name; /* in action types and messages */
	const char *collection;
} entities[] = {
	{"client", "clients"},
	{"patient", "patients"},
	{"appointment", "appointments"},
	{"invoice", "invoices"},
};

/* State of one upload request. */
typedef struct upload {
	hub_request *r;
	const char *scope;
	ferry_txn *txn;
	/* Server id counters touched by this request: collection -> integer,
	 * loaded from the kv table on first use, written back at commit. */
	json_t *counters;
	/* Results of actions applied in this request by idempotency key, so
	 * a queue_id repeated within one request is applied once too. */
	json_t *done;
	/* Records written in this request, "collection\x1fkey" -> true if
	 * created or updated, false if deleted: the store shows none of it
	 * until commit, and an update or delete must see it. */
	json_t *pending;
	size_t writes; /* actions with a pending write */
} upload;

/* Text of a tenantId / branchId: apps send strings, but a number is the
 * same id and refusing it would only break an app over a quote. */
static int id_text(const json_t *v, char *out, size_t out_len)
{
	if (json_is_string(v) && json_string_length(v) > 0 &&
	    json_string_length(v) < out_len &&
	    strlen(json_string_value(v)) == json_string_length(v)) {
		memcpy(out, json_string_value(v), json_string_length(v) + 1);
		return 0;
	}
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		snprintf(out, out_len, "%" PRId64,
			 (int64_t)json_integer_value(v));
		return 0;
	}
	return -1;
}

/* The idempotency key of an action: the API key's id and the queue id,
 * so two apps (two keys) can both use queue_id 1. */
static int queue_key(const json_t *qid, const char *key_id, char *out,
		     size_t out_len)
{
	char text[MAX_QUEUE_ID_BYTES + 1];
	if (id_text(qid, text, sizeof(text)))
		return -1;
	snprintf(out, out_len, "%s:%s", key_id, text);
	return 0;
}

/* Parse "create_client" and the like. */
static const struct entity *parse_type(const char *type, action_verb *verb)
{
	static const char *const verbs[] = {"create_", "update_", "delete_"};
	for (size_t v = 0; v < 3; v++) {
		size_t n = strlen(verbs[v]);
		if (strncmp(type, verbs[v], n) != 0)
			continue;
		for (size_t e = 0; e < sizeof(entities) / sizeof(entities[0]);
		     e++)
			if (strcmp(type + n, entities[e].name) == 0) {
				*verb = (action_verb)v;
				return &entities[e];
			}
	}
	return NULL;
}

/* The payload's fields minus the ids, which name the record rather than
 * being part of it. Borrows the values (shallow). */
static json_t *payload_fields(json_t *payload)
{
	json_t *fields = json_object();
	const char *name;
	json_t *v;
	if (!fields)
		return NULL;
	json_object_foreach(payload, name, v)
	{
		if (strcmp(name, "id") == 0 || strcmp(name, "server_id") == 0)
			continue;
		if (json_object_set_nocheck(fields, name, v)) {
			json_decref(fields);
			return NULL;
		}
	}
	return fields;
}

/* The record key an update or delete names: "server_id", else "id". */
static int payload_server_id(json_t *payload, char *out, size_t out_len)
{
	json_t *v = json_object_get(payload, "server_id");
	if (!v)
		v = json_object_get(payload, "id");
	return v ? id_text(v, out, out_len) : -1;
}

/* The next free server id of a collection. Starts from the persisted
 * counter and steps over keys the store already holds (live or deleted),
 * so a record written under a numeric key by another endpoint is never
 * overwritten by a create. The counter only advances when the create's
 * write succeeded (upload_advance). */
static ferry_err next_server_id(upload *u, const char *collection,
				uint64_t *out)
{
	json_t *counter = json_object_get(u->counters, collection);
	uint64_t n = 0;
	if (!counter) {
		void *value;
		size_t len;
		char kvkey[FERRY_MAX_SCOPE_BYTES + FERRY_MAX_COLLECTION_BYTES +
			   2];
		snprintf(kvkey, sizeof(kvkey), "%s\x1f%s", u->scope,
			 collection);
		ferry_err err = ferry_kv_get(&value, &len, u->r->node,
					     TABLE_SERVER_IDS, kvkey);
		if (err && err != FERRY_E_NOT_FOUND)
			return err;
		if (!err) {
			char text[24];
			if (len >= sizeof(text)) {
				free(value);
				return FERRY_E_CORRUPT;
			}
			memcpy(text, value, len);
			text[len] = '\0';
			free(value);
			n = strtoull(text, NULL, 10);
		}
		counter = json_integer((json_int_t)n);
		if (!counter ||
		    json_object_set_new(u->counters, collection, counter))
			return FERRY_E_NOMEM;
	}
	n = (uint64_t)json_integer_value(counter);
	for (;;) {
		char key[24];
		n++;
		snprintf(key, sizeof(key), "%" PRIu64, n);
		ferry_err err = ferry_record_state(NULL, NULL, NULL, u->r->node,
						   u->scope, collection, key);
		if (err == FERRY_E_NOT_FOUND)
			break;
		if (err)
			return err;
	}
	*out = n;
	return FERRY_OK;
}

static void pending_key(char *out, size_t out_len, const char *collection,
			const char *key)
{
	snprintf(out, out_len, "%s\x1f%s", collection, key);
}

/* Does the record exist for an update or delete? As this request left
 * it if it wrote it, else live in the store. */
static int record_exists(upload *u, const char *collection, const char *key)
{
	char pkey[FERRY_MAX_COLLECTION_BYTES + FERRY_MAX_KEY_BYTES + 2];
	int live = 0;
	pending_key(pkey, sizeof(pkey), collection, key);
	json_t *pending = json_object_get(u->pending, pkey);
	if (pending)
		return json_is_true(pending);
	if (ferry_record_state(&live, NULL, NULL, u->r->node, u->scope,
			       collection, key))
		return 0;
	return live;
}

/* Why the engine refused a write, for the action's error: the fields
 * passed hub_check_fields(), so the failure and its detail are the
 * engine's own. */
static void write_reason(char *out, size_t out_len, ferry_err err,
			 ferry_node *node)
{
	const char *detail = ferry_node_errmsg(node);
	snprintf(out, out_len, "payload not stored: %s%s%s",
		 ferry_strerror(err), *detail ? ": " : "", detail);
	ferry_utf8_trim(out);
}

/* Apply one action to the request's transaction. Returns 0 with the
 * server id (the record key) in `server_id`, -1 with a reason, or -2 if
 * out of memory with a write staged (the request must fail). */
static int apply_action(upload *u, json_t *action, char *server_id,
			size_t server_id_len, char *reason, size_t reason_len)
{
	json_t *type = json_object_get(action, "action_type");
	json_t *payload = json_object_get(action, "payload");
	const struct entity *ent;
	action_verb verb;
	ferry_err err;

	if (!json_is_string(type)) {
		snprintf(reason, reason_len,
			 "action_type missing or not a string");
		return -1;
	}
	ent = parse_type(json_string_value(type), &verb);
	if (!ent) {
		snprintf(reason, reason_len,
			 "unknown action_type \"%.100s\" (expected "
			 "create_, update_ or delete_ followed by client, "
			 "patient, appointment or invoice)",
			 json_string_value(type));
		ferry_utf8_trim(reason);
		return -1;
	}
	if (!json_is_object(payload)) {
		snprintf(reason, reason_len,
			 "payload missing or not an object");
		return -1;
	}

	if (verb == VERB_CREATE) {
		uint64_t id;
		err = next_server_id(u, ent->collection, &id);
		if (err) {
			snprintf(reason, reason_len,
				 "could not allocate a server id: %s",
				 ferry_strerror(err));
			return -1;
		}
		snprintf(server_id, server_id_len, "%" PRIu64, id);
	} else if (payload_server_id(payload, server_id, server_id_len)) {
		snprintf(reason, reason_len,
			 "payload needs a server_id (a number or string) to "
			 "%s a %s",
			 verb == VERB_UPDATE ? "update" : "delete", ent->name);
		return -1;
	} else if (!record_exists(u, ent->collection, server_id)) {
		snprintf(reason, reason_len, "no %s with server_id %s",
			 ent->name, server_id);
		ferry_utf8_trim(reason);
		return -1;
	}

	if (verb == VERB_DELETE) {
		err = ferry_txn_delete(u->txn, u->scope, ent->collection,
				       server_id);
	} else {
		json_t *fields = payload_fields(payload);
		int status;
		const char *code;
		if (!fields) {
			err = FERRY_E_NOMEM;
		} else if (json_object_size(fields) == 0) {
			json_decref(fields);
			snprintf(reason, reason_len,
				 "payload has no fields to %s",
				 verb == VERB_CREATE ? "create" : "update");
			return -1;
		} else if (hub_check_fields(fields, &status, &code, reason,
					    reason_len)) {
			json_decref(fields);
			return -1;
		} else {
			err = ferry_json_put(u->txn, u->scope, ent->collection,
					     server_id, fields);
		}
		json_decref(fields);
	}
	if (err) {
		write_reason(reason, reason_len, err, u->r->node);
		return -1;
	}
	if (verb == VERB_CREATE) {
		json_t *counter = json_object_get(u->counters, ent->collection);
		json_integer_set(counter, strtoll(server_id, NULL, 10));
	}
	char pkey[FERRY_MAX_COLLECTION_BYTES + FERRY_MAX_KEY_BYTES + 2];
	pending_key(pkey, sizeof(pkey), ent->collection, server_id);
	/* The write is in the transaction: failing to note it must fail the
	 * request, not the action, or the write would commit unrecorded. */
	if (json_object_set_new(u->pending, pkey,
				json_boolean(verb != VERB_DELETE)))
		return -2;
	return 0;
}

/* A per-action result, or NULL after replying 500 if it could not be
 * built. */
static json_t *result_or_reply(hub_request *r, json_t *res)
{
	if (!res)
		hub_reply_error(r, 500, "internal", "out of memory");
	return res;
}

/* One action: a stored result if it was applied before, else apply it.
 * Returns the result object, or NULL after replying (store failures,
 * which are the hub's problem and not the action's). */
static json_t *handle_action(upload *u, json_t *action, size_t index)
{
	hub_request *r = u->r;
	json_t *qid = json_is_object(action)
			      ? json_object_get(action, "queue_id")
			      : NULL;
	char ikey[sizeof(r->key->id) + 1 + MAX_QUEUE_ID_BYTES + 1];
	char reason[REASON_BYTES];
	char server_id[FERRY_MAX_KEY_BYTES + 1];

	if (!json_is_object(action)) {
		snprintf(reason, sizeof(reason), "action %zu is not an object",
			 index);
		return result_or_reply(r, json_pack("{s:n, s:s, s:s}",
						    "queue_id", "status",
						    "error", "error", reason));
	}
	if (!qid || queue_key(qid, r->key->id, ikey, sizeof(ikey))) {
		snprintf(reason, sizeof(reason),
			 "action %zu: queue_id missing or not a number or a "
			 "string of 1 to %d bytes",
			 index, MAX_QUEUE_ID_BYTES);
		return result_or_reply(r, json_pack("{s:O?, s:s, s:s}",
						    "queue_id", qid, "status",
						    "error", "error", reason));
	}

	/* Applied before: in this request, or in an earlier one. */
	json_t *prior = json_object_get(u->done, ikey);
	if (prior)
		return json_incref(prior);
	json_t *stored;
	ferry_err err = kvjson_get(&stored, r->node, TABLE_RESULTS, ikey);
	if (!err)
		return stored;
	if (err != FERRY_E_NOT_FOUND) {
		reply_ferry_error(r, err, "reading earlier upload results");
		return NULL;
	}

	int applied = apply_action(u, action, server_id, sizeof(server_id),
				   reason, sizeof(reason));
	if (applied == -2) {
		hub_reply_error(r, 500, "internal", "out of memory");
		return NULL;
	}
	if (applied)
		return result_or_reply(r, json_pack("{s:O, s:s, s:s}",
						    "queue_id", qid, "status",
						    "error", "error", reason));

	/* Record the result with the write, in the same transaction. */
	json_t *res = json_pack("{s:O, s:s, s:o}", "queue_id", qid, "status",
				"success", "server_id", id_json(server_id));
	err = kvjson_txn_put(u->txn, TABLE_RESULTS, ikey, res);
	if (!err && json_object_set(u->done, ikey, res))
		err = FERRY_E_NOMEM;
	if (err) {
		/* The write is in the transaction but its result is not:
		 * committing would let a retry apply it twice. */
		json_decref(res);
		reply_ferry_error(r, err, "recording an upload result");
		return NULL;
	}
	u->writes++;
	return res;
}

/* Persist the advanced server id counters into the transaction. */
static ferry_err save_counters(upload *u)
{
	const char *collection;
	json_t *counter;
	json_object_foreach(u->counters, collection, counter)
	{
		char kvkey[FERRY_MAX_SCOPE_BYTES + FERRY_MAX_COLLECTION_BYTES +
			   2];
		char text[24];
		snprintf(kvkey, sizeof(kvkey), "%s\x1f%s", u->scope,
			 collection);
		snprintf(text, sizeof(text), "%" PRId64,
			 (int64_t)json_integer_value(counter));
		ferry_err err = ferry_txn_kv_put(u->txn, TABLE_SERVER_IDS,
						 kvkey, text, strlen(text));
		if (err)
			return err;
	}
	return FERRY_OK;
}

/* Body members every upload must carry; returns 0, or -1 after 400/403. */
static int check_tenant(hub_request *r, json_t *body, const char *scope)
{
	char tenant[FERRY_MAX_SCOPE_BYTES + 1],
		branch[FERRY_MAX_SCOPE_BYTES + 1];
	char want[2 * FERRY_MAX_SCOPE_BYTES + 2];
	if (id_text(json_object_get(body, "tenantId"), tenant,
		    sizeof(tenant))) {
		hub_reply_error(r, 400, "bad_request",
				"tenantId missing or not a string or number");
		return -1;
	}
	if (id_text(json_object_get(body, "branchId"), branch,
		    sizeof(branch))) {
		hub_reply_error(r, 400, "bad_request",
				"branchId missing or not a string or number");
		return -1;
	}
	snprintf(want, sizeof(want), "%s/%s", tenant, branch);
	if (strcmp(want, scope) != 0) {
		hub_reply_error(r, 403, "forbidden",
				"tenantId/branchId %s is not this key's "
				"branch: key %s writes %s",
				want, r->key->id, scope);
		return -1;
	}
	return 0;
}

/* Each action succeeds or fails on its own; the successful ones commit
 * together with their results and the advanced counters. */
static void upload_changes(hub_request *r)
{
	json_t *body = hub_body_json(r);
	if (!body)
		return;
	json_t *actions = json_object_get(body, "actions");
	size_t max = r->config && r->config->max_actions
			     ? r->config->max_actions
			     : 10000;
	const char *scope;
	upload u = {0};
	json_t *results = NULL;

	if (!json_is_object(body)) {
		hub_reply_error(r, 400, "bad_request",
				"the body must be a JSON object");
		goto out;
	}
	if (!json_is_array(actions)) {
		hub_reply_error(r, 400, "bad_request",
				"actions missing or not an array");
		goto out;
	}
	scope = hub_write_scope(r);
	if (!scope || check_tenant(r, body, scope))
		goto out;
	/* Each action is at most one write: also keeps the transaction
	 * under FERRY_MAX_WRITES_PER_TXN whatever the configuration. */
	if (max > FERRY_MAX_WRITES_PER_TXN)
		max = FERRY_MAX_WRITES_PER_TXN;
	if (json_array_size(actions) > max) {
		hub_reply_error(r, 413, "too_large",
				"%zu actions in one upload; at most %zu",
				json_array_size(actions), max);
		goto out;
	}

	u.r = r;
	u.scope = scope;
	u.counters = json_object();
	u.done = json_object();
	u.pending = json_object();
	results = json_array();
	ferry_err err = u.counters && u.done && u.pending && results
				? ferry_txn_begin(&u.txn, r->node)
				: FERRY_E_NOMEM;
	if (err) {
		reply_ferry_error(r, err, "starting the upload");
		goto out;
	}
	size_t i;
	json_t *action;
	json_array_foreach(actions, i, action)
	{
		json_t *res = handle_action(&u, action, i);
		if (!res)
			goto out; /* handle_action replied */
		if (json_array_append_new(results, res)) {
			hub_reply_json(r, 500, NULL);
			goto out;
		}
	}
	if (u.writes) {
		err = save_counters(&u);
		if (!err) {
			err = ferry_txn_commit(u.txn);
			u.txn = NULL;
		}
		if (err) {
			reply_ferry_error(r, err, "committing the upload");
			goto out;
		}
	}
	hub_reply_json(r, 200, json_pack("{s:O}", "results", results));
out:
	ferry_txn_abort(u.txn);
	json_decref(results);
	json_decref(u.counters);
	json_decref(u.done);
	json_decref(u.pending);
	json_decref(body);
}

const hub_route hub_desktop_routes[] = {
	{"GET", "/api/sync/initial-data", initial_data, 0},
	{"POST", "/api/sync/upload-changes", upload_changes, 0},
	{NULL, NULL, NULL, 0},
};
