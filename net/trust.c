/*
 * trust.c — the trust list, the peers to dial and per-peer connection
 * status, as JSON objects in the node's kv tables.
 *
 * JSON rather than msgpack because these are settings an operator may
 * want to read with jq or a text editor when something goes wrong, and
 * they are tiny. Decoding is tolerant of missing members (they take their
 * zero value, so a record written by an older or newer ferry still loads)
 * but a member of the wrong type is FERRY_E_CORRUPT: guessing what a
 * mistyped grant meant could hand a peer scopes it was never given.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "kvjson.h"
#include "trust.h"

#define TABLE_TRUST "trust"
#define TABLE_PEERS "peers"
#define TABLE_STATUS "peer_status"

/* A peer name: 1..TRUST_MAX_NAME_BYTES of UTF-8 without control
 * characters, NUL-terminated inside its `cap`-byte array. Names are shown
 * in tables and logs, where a newline or escape would garble them. */
static int name_valid(const char *name, size_t cap)
{
	size_t len = strnlen(name, cap);
	if (len == 0 || len == cap || len > TRUST_MAX_NAME_BYTES)
		return 0;
	const unsigned char *p = (const unsigned char *)name;
	for (size_t i = 0; i < len;) {
		if (p[i] < 0x20 || p[i] == 0x7f)
			return 0;
		size_t n = ferry_utf8_char(p + i, len - i);
		if (n == 0)
			return 0;
		i += n;
	}
	return 1;
}

/* ws:// or wss://, a host, at most TRUST_MAX_URL_BYTES, and printable
 * ASCII only (no spaces): the form libwebsockets dials and that fits a kv
 * key with the "url:" prefix. */
static int url_valid(const char *url)
{
	if (!url)
		return 0;
	size_t len = strlen(url);
	size_t scheme;
	if (strncmp(url, "ws://", 5) == 0)
		scheme = 5;
	else if (strncmp(url, "wss://", 6) == 0)
		scheme = 6;
	else
		return 0;
	if (len > TRUST_MAX_URL_BYTES || len == scheme || url[scheme] == '/')
		return 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)url[i] <= 0x20 ||
		    (unsigned char)url[i] >= 0x7f)
			return 0;
	return 1;
}

/* ------------------------------------------------------------------------ */
/* JSON in and out                                                          */
/* ------------------------------------------------------------------------ */

/* jansson integers are int64: clamp rather than wrap for counters that
 * could in theory pass it. */
static json_t *json_u64(uint64_t v)
{
	return json_integer(v > (uint64_t)INT64_MAX ? INT64_MAX
						    : (json_int_t)v);
}

/* A text field of up to `cap` bytes as a JSON string. Reasons and errors
 * are often cut to fit their array by snprintf, which can split a UTF-8
 * sequence; jansson refuses such a string, so the stray bytes become '?'
 * instead of losing the whole status record. */
static json_t *json_text(const char *s, size_t cap)
{
	size_t len = strnlen(s, cap);
	char *copy = malloc(len + 1);
	if (!copy)
		return NULL;
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i < len;) {
		size_t n = ferry_utf8_char(p + i, len - i);
		if (n == 0) {
			copy[i++] = '?';
			continue;
		}
		memcpy(copy + i, p + i, n);
		i += n;
	}
	json_t *out = json_stringn(copy, len);
	free(copy);
	return out;
}

/* Member `name` of `obj` as a non-negative integer; absent = 0. */
static ferry_err member_u64(const json_t *obj, const char *name, uint64_t *out)
{
	const json_t *v = json_object_get(obj, name);
	*out = 0;
	if (!v)
		return FERRY_OK;
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return FERRY_E_CORRUPT;
	*out = (uint64_t)json_integer_value(v);
	return FERRY_OK;
}

/* Member `name` as a string copied into out[cap]; absent = "". */
static ferry_err member_str(const json_t *obj, const char *name, char *out,
			    size_t cap)
{
	const json_t *v = json_object_get(obj, name);
	out[0] = '\0';
	if (!v)
		return FERRY_OK;
	if (!json_is_string(v) || json_string_length(v) >= cap)
		return FERRY_E_CORRUPT;
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return FERRY_OK;
}

/* Member `name` as a flag (true/false, or an integer 0/1); absent = 0. */
static ferry_err member_flag(const json_t *obj, const char *name, int *out)
{
	const json_t *v = json_object_get(obj, name);
	*out = 0;
	if (!v)
		return FERRY_OK;
	if (json_is_boolean(v))
		*out = json_is_true(v);
	else if (json_is_integer(v))
		*out = json_integer_value(v) != 0;
	else
		return FERRY_E_CORRUPT;
	return FERRY_OK;
}

/* ------------------------------------------------------------------------ */
/* Trust list                                                               */
/* ------------------------------------------------------------------------ */

void trust_entry_clear(trust_entry *e)
{
	if (!e)
		return;
	grant_clear(&e->read);
	grant_clear(&e->write);
	memset(e, 0, sizeof(*e));
}

static int grant_valid(const grant *g)
{
	if (g->n > GRANT_MAX_PATTERNS || (g->n > 0 && !g->patterns))
		return 0;
	for (size_t i = 0; i < g->n; i++)
		if (!g->patterns[i] || !grant_pattern_valid(g->patterns[i]))
			return 0;
	return 1;
}

ferry_err trust_put(ferry_node *node, const trust_entry *e)
{
	if (!e || !name_valid(e->name, sizeof(e->name)) ||
	    !grant_valid(&e->read) || !grant_valid(&e->write))
		return FERRY_E_INVALID;
	char key[FERRY_ID_HEX_BYTES];
	ferry_id_to_hex(key, e->id);
	/* 0 means "not set by the caller": stamp it now so `trust ls` can
	 * always say when a peer was added. */
	uint64_t added = e->added_ms ? e->added_ms : ferry_node_now_ms(node);
	json_t *doc = json_pack("{s:s, s:o, s:o, s:o}", "name", e->name, "read",
				grant_to_json(&e->read), "write",
				grant_to_json(&e->write), "added_ms",
				json_u64(added));
	ferry_err err = kvjson_put(node, TABLE_TRUST, key, doc);
	json_decref(doc);
	return err;
}

/* Decode a stored trust value; the id comes from the table key. */
static ferry_err decode_trust(trust_entry *out, const char *key,
			      const void *value, size_t len)
{
	memset(out, 0, sizeof(*out));
	if (ferry_id_from_hex(out->id, key) != FERRY_OK)
		return FERRY_E_CORRUPT;
	json_t *doc;
	ferry_err err = kvjson_parse(&doc, value, len);
	if (err)
		return err;
	err = member_str(doc, "name", out->name, sizeof(out->name));
	if (!err)
		err = member_u64(doc, "added_ms", &out->added_ms);
	if (!err)
		err = grant_from_json(&out->read, json_object_get(doc, "read"));
	if (!err)
		err = grant_from_json(&out->write,
				      json_object_get(doc, "write"));
	json_decref(doc);
	if (err)
		trust_entry_clear(out);
	return err;
}

ferry_err trust_get(ferry_node *node, const uint8_t *id, trust_entry *out)
{
	char key[FERRY_ID_HEX_BYTES];
	ferry_id_to_hex(key, id);
	void *value;
	size_t len;
	memset(out, 0, sizeof(*out));
	ferry_err err = ferry_kv_get(&value, &len, node, TABLE_TRUST, key);
	if (err)
		return err;
	err = decode_trust(out, key, value, len);
	free(value);
	return err;
}

ferry_err trust_delete(ferry_node *node, const uint8_t *id)
{
	char key[FERRY_ID_HEX_BYTES];
	ferry_id_to_hex(key, id);
	return ferry_kv_delete(node, TABLE_TRUST, key);
}

/* A scan in progress: the caller's callback and the first decode error,
 * which ferry_kv_scan() cannot carry back itself. */
struct list_ctx {
	union {
		trust_cb trust;
		peers_cb peers;
		peer_status_cb status;
	} cb;
	void *payload;
	ferry_err err;
};

static int trust_scan_cb(const char *key, const void *value, size_t len,
			 void *payload)
{
	struct list_ctx *ctx = payload;
	trust_entry e;
	ctx->err = decode_trust(&e, key, value, len);
	if (ctx->err)
		return 1;
	int stop = ctx->cb.trust(&e, ctx->payload);
	trust_entry_clear(&e);
	return stop;
}

ferry_err trust_list(ferry_node *node, trust_cb cb, void *payload)
{
	struct list_ctx ctx = {.cb.trust = cb, .payload = payload};
	ferry_err err = ferry_kv_scan(node, TABLE_TRUST, trust_scan_cb, &ctx);
	return err ? err : ctx.err;
}

/* ------------------------------------------------------------------------ */
/* Peers to dial                                                            */
/* ------------------------------------------------------------------------ */

ferry_err peers_add(ferry_node *node, const char *url)
{
	if (!url_valid(url))
		return FERRY_E_INVALID;
	/* Adding a peer twice keeps the first record (and its time), and
	 * leaves the kv generation alone so running nodes do not re-read
	 * the tables for nothing. */
	void *value;
	size_t len;
	ferry_err err = ferry_kv_get(&value, &len, node, TABLE_PEERS, url);
	if (err == FERRY_OK) {
		free(value);
		return FERRY_OK;
	}
	if (err != FERRY_E_NOT_FOUND)
		return err;
	json_t *doc = json_pack("{s:o}", "added_ms",
				json_u64(ferry_node_now_ms(node)));
	err = kvjson_put(node, TABLE_PEERS, url, doc);
	json_decref(doc);
	return err;
}

ferry_err peers_remove(ferry_node *node, const char *url)
{
	if (!url || !*url || strlen(url) > TRUST_MAX_URL_BYTES)
		return FERRY_E_INVALID;
	return ferry_kv_delete(node, TABLE_PEERS, url);
}

static int peers_scan_cb(const char *key, const void *value, size_t len,
			 void *payload)
{
	(void)value;
	(void)len;
	struct list_ctx *ctx = payload;
	return ctx->cb.peers(key, ctx->payload);
}

ferry_err peers_list(ferry_node *node, peers_cb cb, void *payload)
{
	struct list_ctx ctx = {.cb.peers = cb, .payload = payload};
	ferry_err err = ferry_kv_scan(node, TABLE_PEERS, peers_scan_cb, &ctx);
	return err ? err : ctx.err;
}

/* ------------------------------------------------------------------------ */
/* Connection status                                                        */
/* ------------------------------------------------------------------------ */

void peer_status_key_id(char *out, size_t len, const uint8_t *id)
{
	char hex[FERRY_ID_HEX_BYTES];
	ferry_id_to_hex(hex, id);
	snprintf(out, len, "%s", hex);
}

void peer_status_key_url(char *out, size_t len, const char *url)
{
	snprintf(out, len, "url:%s", url);
}

/* The uint64_t members of peer_status stored under their own names, in
 * one table so that encoding and decoding cannot drift apart.
 * (updated_ms is handled on its own: it defaults to the time of writing.) */
static const struct {
	const char *name;
	size_t offset;
} status_counters[] = {
	{"connected_ms", offsetof(peer_status, connected_ms)},
	{"last_sync_ms", offsetof(peer_status, last_sync_ms)},
	{"pending_send", offsetof(peer_status, pending_send)},
	{"pending_recv", offsetof(peer_status, pending_recv)},
	{"sent", offsetof(peer_status, sent)},
	{"received", offsetof(peer_status, received)},
	{"refused_in", offsetof(peer_status, refused_in)},
	{"refused_out", offsetof(peer_status, refused_out)},
	{"last_error_ms", offsetof(peer_status, last_error_ms)},
};

#define NSTATUS_COUNTERS (sizeof(status_counters) / sizeof(status_counters[0]))

ferry_err peer_status_put(ferry_node *node, const peer_status *st)
{
	if (!st)
		return FERRY_E_INVALID;
	/* The key a caller left empty follows from the record itself. */
	char key[sizeof(st->key)];
	size_t klen = strnlen(st->key, sizeof(st->key));
	if (klen == sizeof(st->key))
		return FERRY_E_INVALID;
	if (klen > 0)
		memcpy(key, st->key, klen + 1);
	else if (st->has_id)
		peer_status_key_id(key, sizeof(key), st->id);
	else if (st->url[0])
		peer_status_key_url(key, sizeof(key), st->url);
	else
		return FERRY_E_INVALID;

	json_t *doc = json_object();
	if (!doc)
		return FERRY_E_NOMEM;
	int bad = 0;
	if (st->has_id) {
		char hex[FERRY_ID_HEX_BYTES];
		ferry_id_to_hex(hex, st->id);
		bad |= json_object_set_new(doc, "id", json_string(hex));
	}
	bad |= json_object_set_new(doc, "name",
				   json_text(st->name, sizeof(st->name)));
	bad |= json_object_set_new(doc, "url",
				   json_text(st->url, sizeof(st->url)));
	bad |= json_object_set_new(doc, "online", json_boolean(st->online));
	bad |= json_object_set_new(doc, "updated_ms",
				   json_u64(st->updated_ms
						    ? st->updated_ms
						    : ferry_node_now_ms(node)));
	for (size_t i = 0; i < NSTATUS_COUNTERS; i++) {
		uint64_t v;
		memcpy(&v, (const char *)st + status_counters[i].offset,
		       sizeof(v));
		bad |= json_object_set_new(doc, status_counters[i].name,
					   json_u64(v));
	}
	bad |= json_object_set_new(
		doc, "last_refusal",
		json_text(st->last_refusal, sizeof(st->last_refusal)));
	bad |= json_object_set_new(
		doc, "last_error",
		json_text(st->last_error, sizeof(st->last_error)));
	if (bad) {
		json_decref(doc);
		return FERRY_E_NOMEM;
	}
	ferry_err err = kvjson_put(node, TABLE_STATUS, key, doc);
	json_decref(doc);
	return err;
}

static ferry_err decode_status(peer_status *out, const char *key,
			       const void *value, size_t len)
{
	memset(out, 0, sizeof(*out));
	if (strlen(key) >= sizeof(out->key))
		return FERRY_E_CORRUPT;
	strcpy(out->key, key);
	json_t *doc;
	ferry_err err = kvjson_parse(&doc, value, len);
	if (err)
		return err;
	const json_t *id = json_object_get(doc, "id");
	if (id && !json_is_null(id)) {
		if (!json_is_string(id) ||
		    ferry_id_from_hex(out->id, json_string_value(id)))
			err = FERRY_E_CORRUPT;
		else
			out->has_id = 1;
	} else if (ferry_id_from_hex(out->id, key) == FERRY_OK) {
		/* An id-keyed record that does not repeat its id. */
		out->has_id = 1;
	}
	if (!err)
		err = member_str(doc, "name", out->name, sizeof(out->name));
	if (!err)
		err = member_str(doc, "url", out->url, sizeof(out->url));
	if (!err)
		err = member_flag(doc, "online", &out->online);
	if (!err)
		err = member_u64(doc, "updated_ms", &out->updated_ms);
	for (size_t i = 0; !err && i < NSTATUS_COUNTERS; i++) {
		uint64_t v;
		err = member_u64(doc, status_counters[i].name, &v);
		memcpy((char *)out + status_counters[i].offset, &v, sizeof(v));
	}
	if (!err)
		err = member_str(doc, "last_refusal", out->last_refusal,
				 sizeof(out->last_refusal));
	if (!err)
		err = member_str(doc, "last_error", out->last_error,
				 sizeof(out->last_error));
	json_decref(doc);
	if (err)
		memset(out, 0, sizeof(*out));
	return err;
}

ferry_err peer_status_get(ferry_node *node, const char *key, peer_status *out)
{
	void *value;
	size_t len;
	memset(out, 0, sizeof(*out));
	ferry_err err = ferry_kv_get(&value, &len, node, TABLE_STATUS, key);
	if (err)
		return err;
	err = decode_status(out, key, value, len);
	free(value);
	return err;
}

static int status_scan_cb(const char *key, const void *value, size_t len,
			  void *payload)
{
	struct list_ctx *ctx = payload;
	/* peer_status is ~1 KiB: keep it off the stack of a deep caller. */
	peer_status *st = malloc(sizeof(*st));
	if (!st) {
		ctx->err = FERRY_E_NOMEM;
		return 1;
	}
	ctx->err = decode_status(st, key, value, len);
	int stop = ctx->err ? 1 : ctx->cb.status(st, ctx->payload);
	free(st);
	return stop;
}

ferry_err peer_status_list(ferry_node *node, peer_status_cb cb, void *payload)
{
	struct list_ctx ctx = {.cb.status = cb, .payload = payload};
	ferry_err err = ferry_kv_scan(node, TABLE_STATUS, status_scan_cb, &ctx);
	return err ? err : ctx.err;
}
