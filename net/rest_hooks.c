/*
 * rest_hooks.c — POST /hooks/{adapter}: an external system's webhook turned
 * into record writes (docs/adapters.md, "Webhooks").
 *
 * The order is what makes a webhook safe to retry and impossible to forge:
 *
 *   1. the adapter and its webhook must exist (404);
 *   2. the sender is authenticated — HMAC-SHA256 of the raw body with a
 *      stored secret, or an API key — before the body is even parsed (401);
 *   3. the body must be a JSON object with an event id (400);
 *   4. an event id seen before answers its stored result, writing nothing;
 *   5. every `writes` entry is rendered (400 naming the entry, member and
 *      pointer), so a payload that fails anywhere writes nothing;
 *   6. the writes (only changed fields), the adapter's memory of what it
 *      received (no echo back to the sender) and the event's result are
 *      committed in one transaction: a write is never stored without its
 *      event id, nor the reverse, so a retried delivery after a crash
 *      either replays or writes, never both or neither.
 *
 * The route is public (hub_route.public_route): whether a key is needed
 * depends on the adapter's configuration, so the handler authenticates.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "adapter.h"
#include "adapter_map.h"
#include "adapter_state.h"
#include "hub.h"
#include "kvjson.h"
#include "secret.h"

/* Event ids up to this many bytes are their own kv key; longer ones are
 * hashed ("h." + BLAKE2b-128 in hex), which keeps them under the kv key
 * limit (256 bytes) whatever the sender uses. */
#define EVENT_KEY_MAX 200
#define EVENT_KEY_BYTES (EVENT_KEY_MAX + 1)

/* A signature header: "sha256=" + 64 hex digits is 71 bytes; leave room
 * for longer prefixes and base64 with padding. */
#define SIGNATURE_HEADER_MAX 256

#define WHY_BYTES 384

/* ------------------------------------------------------------------------ */
/* Authentication                                                           */
/* ------------------------------------------------------------------------ */

/* Decode the signature text (after the prefix) into a 32-byte MAC. */
static int decode_mac(uint8_t mac[crypto_auth_hmacsha256_BYTES],
		      const char *text, adapter_encoding encoding)
{
	size_t len = strlen(text), bin_len = 0;
	const char *end = NULL;
	if (encoding == ADAPTER_BASE64) {
		/* Padding is optional: senders differ. */
		if (!sodium_base642bin(mac, crypto_auth_hmacsha256_BYTES, text,
				       len, NULL, &bin_len, &end,
				       sodium_base64_VARIANT_ORIGINAL) &&
		    end == text + len &&
		    bin_len == crypto_auth_hmacsha256_BYTES)
			return 1;
		return !sodium_base642bin(
			       mac, crypto_auth_hmacsha256_BYTES, text, len,
			       NULL, &bin_len, &end,
			       sodium_base64_VARIANT_ORIGINAL_NO_PADDING) &&
		       end == text + len &&
		       bin_len == crypto_auth_hmacsha256_BYTES;
	}
	return !sodium_hex2bin(mac, crypto_auth_hmacsha256_BYTES, text, len,
			       NULL, &bin_len, &end) &&
	       end == text + len && bin_len == crypto_auth_hmacsha256_BYTES;
}

/* Check the HMAC-SHA256 of the raw body. Returns 1, or 0 after replying. */
static int check_hmac(hub_request *r, const adapter_webhook *wh)
{
	const char *header = wh->hmac_header ? wh->hmac_header : "X-Signature";
	const char *prefix = wh->hmac_prefix ? wh->hmac_prefix : "";
	const char *encoding =
		wh->hmac_encoding == ADAPTER_BASE64 ? "base64" : "hex";
	uint8_t given[crypto_auth_hmacsha256_BYTES];
	uint8_t expected[crypto_auth_hmacsha256_BYTES];
	char sig[SIGNATURE_HEADER_MAX];
	char *secret = NULL;
	size_t secret_len = 0;
	crypto_auth_hmacsha256_state st;
	ferry_err err;
	int match;

	if (http_header(r->x, header, sig, sizeof(sig)) < 0) {
		hub_reply_error(r, 401, "bad_signature",
				"missing header %s: the body's HMAC-SHA256 "
				"(%s%s) with the webhook secret",
				header, prefix, encoding);
		return 0;
	}
	if (strncmp(sig, prefix, strlen(prefix)) ||
	    !decode_mac(given, sig + strlen(prefix), wh->hmac_encoding)) {
		hub_reply_error(r, 401, "bad_signature",
				"header %s must hold %s%s the body's "
				"HMAC-SHA256 in %s",
				header, prefix, *prefix ? " followed by" : "",
				encoding);
		return 0;
	}
	err = secret_get(&secret, &secret_len, r->node, wh->hmac_secret);
	if (err == FERRY_E_NOT_FOUND) {
		hub_reply_error(r, 500, "secret_missing",
				"the webhook secret %s is not stored: run "
				"ferry secret set %s",
				wh->hmac_secret, wh->hmac_secret);
		return 0;
	}
	if (err) {
		hub_reply_error(r, 500, "secret_error",
				"cannot read the webhook secret %s: %s (%s)",
				wh->hmac_secret, ferry_strerror(err),
				ferry_err_name(err));
		return 0;
	}
	/* init/update/final take a key of any length (hashed when longer
	 * than a block), unlike crypto_auth_hmacsha256's fixed 32 bytes. */
	crypto_auth_hmacsha256_init(&st, (const uint8_t *)secret, secret_len);
	crypto_auth_hmacsha256_update(&st, r->http->body, r->http->body_len);
	crypto_auth_hmacsha256_final(&st, expected);
	sodium_memzero(&st, sizeof(st));
	secret_free(secret, secret_len);
	match = sodium_memcmp(given, expected, sizeof(expected)) == 0;
	sodium_memzero(expected, sizeof(expected));
	if (!match) {
		hub_reply_error(r, 401, "bad_signature",
				"the signature in %s does not match the body",
				header);
		return 0;
	}
	return 1;
}

/* ------------------------------------------------------------------------ */
/* Events                                                                   */
/* ------------------------------------------------------------------------ */

/* The event id's kv key: its text, or "h.<32 hex>" when longer than
 * EVENT_KEY_MAX bytes. */
static void event_key(char out[EVENT_KEY_BYTES], const char *text)
{
	uint8_t digest[16];
	size_t len = strlen(text);
	if (len <= EVENT_KEY_MAX) {
		memcpy(out, text, len + 1);
		return;
	}
	crypto_generichash(digest, sizeof(digest), (const uint8_t *)text, len,
			   NULL, 0);
	out[0] = 'h';
	out[1] = '.';
	sodium_bin2hex(out + 2, EVENT_KEY_BYTES - 2, digest, sizeof(digest));
}

/* The event id (borrowed from `body`), or NULL after replying 400. */
static const json_t *event_id(hub_request *r, const adapter_webhook *wh,
			      const json_t *body)
{
	const json_t *id = tmpl_pointer_get(body, wh->event_id);
	if (!id) {
		hub_reply_error(r, 400, "bad_payload",
				"event_id: pointer %s is absent from the "
				"payload",
				wh->event_id);
		return NULL;
	}
	if (!json_is_integer(id) &&
	    !(json_is_string(id) && json_string_length(id) > 0)) {
		hub_reply_error(r, 400, "bad_payload",
				"event_id: %s must be a non-empty string or "
				"an integer",
				wh->event_id);
		return NULL;
	}
	return id;
}

/* An event seen before: its stored result with "replayed": true. Returns
 * 1 after replying (replayed or an error), 0 if the event is new. */
static int replay(hub_request *r, const char *table, const char *key,
		  const adapter_webhook *wh)
{
	json_t *stored = NULL, *result;
	ferry_err err = kvjson_get(&stored, r->node, table, key);
	if (err == FERRY_E_NOT_FOUND)
		return 0;
	if (err) {
		const char *detail = ferry_node_errmsg(r->node);
		hub_reply_error(r, 500, "store_error",
				"reading the webhook's events: %s (%s)",
				*detail ? detail : ferry_strerror(err),
				ferry_err_name(err));
		return 1;
	}
	result = json_object_get(stored, "result");
	if (!json_is_object(result)) {
		json_decref(stored);
		hub_reply_error(r, 500, "store_error",
				"the stored result of this event in %s is "
				"damaged",
				table);
		return 1;
	}
	/* An API key learns only about writes it could have made. */
	if (wh->api_key) {
		size_t i;
		json_t *w;
		json_array_foreach(json_object_get(result, "writes"), i, w)
		{
			const char *scope =
				json_string_value(json_object_get(w, "scope"));
			if (!hub_may_write(r, scope ? scope : "")) {
				json_decref(stored);
				return 1;
			}
		}
	}
	result = json_deep_copy(result);
	json_decref(stored);
	if (result && json_object_set_new(result, "replayed", json_true())) {
		json_decref(result);
		result = NULL;
	}
	hub_reply_json(r, 200, result);
	return 1;
}

/* ------------------------------------------------------------------------ */
/* Writes                                                                   */
/* ------------------------------------------------------------------------ */

/* An engine failure: the client's for a name or size it sent, the hub's
 * otherwise (as rest_generic.c answers them). */
static void reply_engine(hub_request *r, ferry_err err, const char *what)
{
	const char *detail = ferry_node_errmsg(r->node);
	if (!*detail)
		detail = ferry_strerror(err);
	switch (err) {
	case FERRY_E_LIMIT:
		hub_reply_error(r, 413, "too_large", "%s: %s", what, detail);
		break;
	case FERRY_E_MAP_FULL:
		hub_reply_error(r, 507, "store_full", "%s: %s", what, detail);
		break;
	default:
		hub_reply_error(r, 500, "store_error", "%s: %s (%s)", what,
				detail, ferry_err_name(err));
	}
}

/* Render every write, apply them and store the event, in one commit; then
 * reply. `maps` has wh->nwrites zeroed entries. */
static void run_writes(hub_request *r, const adapter_def *def,
		       const json_t *body, const json_t *id, const char *table,
		       const char *key, adapter_mapped *maps)
{
	const adapter_webhook *wh = def->webhook;
	char why[WHY_BYTES];
	ferry_txn *txn = NULL;
	json_t *result = NULL, *writes, *stored;
	ferry_err err;

	/* 5. Render all first: a bad payload writes nothing. */
	for (size_t i = 0; i < wh->nwrites; i++) {
		err = adapter_map_render(&maps[i], &wh->writes[i], body, why,
					 sizeof(why));
		if (err == FERRY_E_NOMEM) {
			hub_reply_error(r, 500, "internal", "out of memory");
			return;
		}
		if (err) {
			hub_reply_error(r, 400, "bad_payload", "writes[%zu].%s",
					i, why);
			return;
		}
	}

	/* 6. One transaction: the writes, what the adapter received, the
	 * event. */
	err = ferry_txn_begin(&txn, r->node);
	if (err) {
		reply_engine(r, err, "starting the transaction");
		return;
	}
	result = json_pack("{s:O, s:[], s:b}", "event_id", id, "writes",
			   "replayed", 0);
	if (!result)
		goto nomem;
	writes = json_object_get(result, "writes");
	for (size_t i = 0; i < wh->nwrites; i++) {
		adapter_mapped *m = &maps[i];
		size_t written = 0;
		err = adapter_map_apply(txn, r->node, def->name, m, &written,
					why, sizeof(why));
		if (err == FERRY_E_INVALID) {
			hub_reply_error(r, 400, "bad_payload", "writes[%zu].%s",
					i, why);
			goto out;
		}
		if (err == FERRY_E_NOMEM)
			goto nomem;
		if (err) {
			reply_engine(r, err, why);
			goto out;
		}
		/* After apply: a linked id may have moved the write to the
		 * linked record's scope, and that is the scope written. */
		if (wh->api_key && !hub_may_write(r, m->scope))
			goto out;
		if (json_array_append_new(
			    writes,
			    json_pack("{s:s, s:s, s:s, s:I}", "scope", m->scope,
				      "collection", m->collection, "key",
				      m->key, "written", (json_int_t)written)))
			goto nomem;
	}
	stored = json_pack("{s:O}", "result", result);
	err = kvjson_txn_put(txn, table, key, stored);
	json_decref(stored);
	if (err == FERRY_E_NOMEM)
		goto nomem;
	if (err) {
		reply_engine(r, err, "recording the event");
		goto out;
	}
	err = ferry_txn_commit(txn);
	txn = NULL;
	if (err) {
		reply_engine(r, err, "committing the webhook's writes");
		goto out;
	}
	hub_reply_json(r, 200, result);
	return;

nomem:
	hub_reply_error(r, 500, "internal", "out of memory");
out:
	ferry_txn_abort(txn);
	json_decref(result);
}

/* Steps 2-6 for adapter `def`; replies exactly once. */
static void run_hook(hub_request *r, const adapter_def *def)
{
	const adapter_webhook *wh = def->webhook;
	char table[ADAPTER_TABLE_BYTES], key[EVENT_KEY_BYTES];
	adapter_mapped *maps;
	const json_t *id;
	json_t *body;
	char *text;

	/* 2. The sender, before the body is looked at. */
	if (wh->api_key ? !hub_authenticate(r) : !check_hmac(r, wh))
		return;
	/* 3. The payload and its event id. */
	body = hub_body_json(r);
	if (!body)
		return;
	if (!json_is_object(body)) {
		hub_reply_error(r, 400, "bad_payload",
				"the body must be a JSON object");
		json_decref(body);
		return;
	}
	id = event_id(r, wh, body);
	text = id ? adapter_id_text(id) : NULL;
	if (!text) {
		if (id)
			hub_reply_error(r, 500, "internal", "out of memory");
		json_decref(body);
		return;
	}
	event_key(key, text);
	free(text);
	adapter_table(table, def->name, ".events");
	/* 4. Seen before: the first answer again. */
	if (replay(r, table, key, wh)) {
		json_decref(body);
		return;
	}
	maps = calloc(wh->nwrites ? wh->nwrites : 1, sizeof(*maps));
	if (!maps) {
		hub_reply_error(r, 500, "internal", "out of memory");
		json_decref(body);
		return;
	}
	run_writes(r, def, body, id, table, key, maps);
	for (size_t i = 0; i < wh->nwrites; i++)
		adapter_mapped_clear(&maps[i]);
	free(maps);
	json_decref(body);
}

/* POST /hooks/{adapter} */
static void hook_post(hub_request *r)
{
	adapters *rt = r->config->adapters;
	const adapter_config *cfg;
	const adapter_def *def;

	if (!rt) {
		hub_reply_error(r, 404, "not_found",
				"no adapter %s: this hub runs without adapters "
				"(ferry serve --adapters FILE)",
				r->params[0]);
		return;
	}
	/* Held until the reply: a reload meanwhile does not free it. */
	cfg = adapters_acquire(rt);
	def = adapter_config_find(cfg, r->params[0]);
	if (!def || !def->webhook)
		hub_reply_error(r, 404, "not_found",
				def ? "adapter %s takes no webhooks (it has "
				      "no \"webhook\" member)"
				    : "no adapter %s in the adapters' "
				      "configuration",
				r->params[0]);
	else
		run_hook(r, def);
	adapters_release(rt, cfg);
}

const hub_route hub_hooks_routes[] = {
	{"POST", "/hooks/{}", hook_post, 1},
	{NULL, NULL, NULL, 0},
};
