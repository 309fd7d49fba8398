/*
 * apikey.c — API keys for the hub's HTTP side, as JSON objects in the kv
 * table "apikeys" keyed by the hex BLAKE2b-256 hash of the token.
 *
 * The token itself never reaches the store, a log or any other buffer we
 * own: it is written straight into the caller's array and only its hash
 * is kept. A stolen copy of the data directory therefore grants nothing,
 * and a lookup is a single keyed read of the table: no loop comparing
 * secrets byte by byte that could leak how much of a guess was right.
 *
 * Like trust.c, decoding tolerates missing members but refuses a member
 * of the wrong type (FERRY_E_CORRUPT): a mistyped grant must not be
 * guessed into scopes the key was never given.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <sodium.h>

#include "apikey.h"
#include "kvjson.h"

#define TABLE_APIKEYS "apikeys"

#define HASH_BYTES 32
#define HASH_HEX_BYTES (2 * HASH_BYTES + 1)
#define ID_DIGITS 16
#define MIN_PREFIX_DIGITS 8
#define SECRET_BYTES 32

/* "fk_" and the 43 characters of 32 bytes in unpadded base64url. */
#define PREFIX_LEN (sizeof(APIKEY_PREFIX) - 1)
#define TOKEN_LEN                                                              \
	(PREFIX_LEN +                                                          \
	 sodium_base64_ENCODED_LEN(SECRET_BYTES,                               \
				   sodium_base64_VARIANT_URLSAFE_NO_PADDING) - \
	 1)

_Static_assert(TOKEN_LEN + 1 <= APIKEY_TOKEN_BYTES,
	       "APIKEY_TOKEN_BYTES too small for a token");
_Static_assert(sizeof(((hub_key *)0)->name) == APIKEY_MAX_NAME_BYTES + 1,
	       "hub_key and apikey_info names differ in size");

/* 1..APIKEY_MAX_NAME_BYTES of UTF-8 without control characters: names are
 * shown in tables, logs and 403 messages, where a newline or an escape
 * would garble them. */
static int name_valid(const char *name)
{
	if (!name)
		return 0;
	size_t len = strnlen(name, APIKEY_MAX_NAME_BYTES + 1);
	if (len == 0 || len > APIKEY_MAX_NAME_BYTES)
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

/* The table key of a token: its hash in lowercase hex. */
static void token_hash_hex(char out[HASH_HEX_BYTES], const char *token,
			   size_t len)
{
	unsigned char hash[HASH_BYTES];
	crypto_generichash(hash, sizeof(hash), (const unsigned char *)token,
			   len, NULL, 0);
	sodium_bin2hex(out, HASH_HEX_BYTES, hash, sizeof(hash));
}

/* A table key as written by apikey_create(): 64 lowercase hex digits. */
static int hash_key_valid(const char *key)
{
	size_t i;
	for (i = 0; key[i]; i++)
		if (!((key[i] >= '0' && key[i] <= '9') ||
		      (key[i] >= 'a' && key[i] <= 'f')))
			return 0;
	return i == HASH_HEX_BYTES - 1;
}

/* Could `token` be one apikey_create() made? Checked on shape alone, so
 * that junk in an Authorization header costs no store access. */
static int token_shape_valid(const char *token, size_t *len)
{
	if (!token || strncmp(token, APIKEY_PREFIX, PREFIX_LEN) != 0)
		return 0;
	*len = strnlen(token, TOKEN_LEN + 1);
	if (*len != TOKEN_LEN)
		return 0;
	for (size_t i = PREFIX_LEN; i < TOKEN_LEN; i++) {
		char c = token[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return 0;
	}
	return 1;
}

/* ------------------------------------------------------------------------ */
/* JSON in and out                                                          */
/* ------------------------------------------------------------------------ */

/* Decode a stored key; the id comes from the table key (its hash). The
 * name must be a valid one: it is what `revoke` and 403 messages name. */
static ferry_err decode_key(apikey_info *out, const char *key,
			    const void *value, size_t len)
{
	memset(out, 0, sizeof(*out));
	if (!hash_key_valid(key))
		return FERRY_E_CORRUPT;
	memcpy(out->id, key, ID_DIGITS);
	out->id[ID_DIGITS] = '\0';

	json_t *doc;
	ferry_err err = kvjson_parse(&doc, value, len);
	if (err)
		return err;
	const char *name = json_string_value(json_object_get(doc, "name"));
	if (!name_valid(name))
		err = FERRY_E_CORRUPT;
	else
		snprintf(out->name, sizeof(out->name), "%s", name);
	const json_t *created = json_object_get(doc, "created_ms");
	if (!err && created) {
		if (!json_is_integer(created) ||
		    json_integer_value(created) < 0)
			err = FERRY_E_CORRUPT;
		else
			out->created_ms = (uint64_t)json_integer_value(created);
	}
	if (!err)
		err = grant_from_json(&out->read, json_object_get(doc, "read"));
	if (!err)
		err = grant_from_json(&out->write,
				      json_object_get(doc, "write"));
	json_decref(doc);
	if (err)
		apikey_info_clear(out);
	return err;
}

/* ------------------------------------------------------------------------ */
/* Keys                                                                     */
/* ------------------------------------------------------------------------ */

void apikey_info_clear(apikey_info *k)
{
	if (!k)
		return;
	grant_clear(&k->read);
	grant_clear(&k->write);
	memset(k, 0, sizeof(*k));
}

void hub_key_clear(hub_key *k)
{
	if (!k)
		return;
	grant_clear(&k->read);
	grant_clear(&k->write);
}

/* A scan looking for one name (create's uniqueness check). */
struct name_scan {
	const char *name;
	int found;
};

static int name_scan_cb(const char *key, const void *value, size_t len,
			void *payload)
{
	(void)key;
	struct name_scan *s = payload;
	/* Only the name matters here. A damaged record holds no usable
	 * name and must not stop new keys from being created (it can
	 * still be revoked by id). */
	json_error_t jerr;
	json_t *doc = json_loadb(value, len, 0, &jerr);
	const char *name = json_string_value(json_object_get(doc, "name"));
	if (name && strcmp(name, s->name) == 0)
		s->found = 1;
	json_decref(doc);
	return s->found;
}

static void set_err(char *err, size_t err_len, const char *msg)
{
	if (err && err_len)
		snprintf(err, err_len, "%s", msg);
}

/* Parse one grant for create, naming the option in `err`. */
static ferry_err parse_grant(grant *g, const char *which, const char *csv,
			     char *err, size_t err_len)
{
	char why[256];
	ferry_err rc = grant_parse(g, csv, why, sizeof(why));
	if (rc) {
		if (err && err_len)
			snprintf(err, err_len, "%s: %s", which, why);
		/* Too many patterns is a bad pattern list too: the contract
		 * promises FERRY_E_INVALID for it. */
		if (rc == FERRY_E_LIMIT)
			rc = FERRY_E_INVALID;
	}
	return rc;
}

/* Make a token into `token` and store its hash with the key's record.
 * The hash of the new token goes to `hex`. */
static ferry_err store_new_key(ferry_node *node, const char *name,
			       const grant *r, const grant *w,
			       char token[APIKEY_TOKEN_BYTES],
			       char hex[HASH_HEX_BYTES], uint64_t created)
{
	if (sodium_init() < 0)
		return FERRY_E_NOMEM;
	unsigned char secret[SECRET_BYTES];
	randombytes_buf(secret, sizeof(secret));
	memcpy(token, APIKEY_PREFIX, PREFIX_LEN);
	sodium_bin2base64(token + PREFIX_LEN, APIKEY_TOKEN_BYTES - PREFIX_LEN,
			  secret, sizeof(secret),
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(secret, sizeof(secret));
	token_hash_hex(hex, token, TOKEN_LEN);

	/* Only the hash is the table key; the record holds no part of
	 * the token. */
	json_t *doc = json_pack("{s:s, s:o, s:o, s:I}", "name", name, "read",
				grant_to_json(r), "write", grant_to_json(w),
				"created_ms", (json_int_t)created);
	ferry_err err = kvjson_put(node, TABLE_APIKEYS, hex, doc);
	json_decref(doc);
	return err;
}

ferry_err apikey_create(ferry_node *node, const char *name, const char *read,
			const char *write, char token[APIKEY_TOKEN_BYTES],
			apikey_info *out, char *err, size_t err_len)
{
	if (out)
		memset(out, 0, sizeof(*out));
	set_err(err, err_len, "");
	if (!token)
		return FERRY_E_INVALID;
	token[0] = '\0';
	if (!name_valid(name)) {
		set_err(err, err_len,
			"name must be 1 to 64 bytes of UTF-8 without control "
			"characters");
		return FERRY_E_INVALID;
	}
	grant r = {0}, w = {0};
	ferry_err rc = parse_grant(&r, "read", read, err, err_len);
	if (!rc)
		rc = parse_grant(&w, "write", write, err, err_len);

	/* Names pick keys out in `revoke` and in 403 messages: unique.
	 * (Two processes creating the same name at the same instant could
	 * both pass, as the kv tables have no compare-and-set; the cost is
	 * only a duplicate name, which `revoke` then reports as
	 * ambiguous.) */
	struct name_scan s = {.name = name};
	if (!rc)
		rc = ferry_kv_scan(node, TABLE_APIKEYS, name_scan_cb, &s);
	if (!rc && s.found) {
		set_err(err, err_len, "name taken");
		rc = FERRY_E_INVALID;
	}

	char hex[HASH_HEX_BYTES];
	uint64_t created = ferry_node_now_ms(node);
	if (!rc)
		rc = store_new_key(node, name, &r, &w, token, hex, created);
	if (rc) {
		grant_clear(&r);
		grant_clear(&w);
		/* No half-made token for a caller to print or use. */
		sodium_memzero(token, APIKEY_TOKEN_BYTES);
		return rc;
	}
	if (!out) {
		grant_clear(&r);
		grant_clear(&w);
		return FERRY_OK;
	}
	memcpy(out->id, hex, ID_DIGITS);
	out->id[ID_DIGITS] = '\0';
	snprintf(out->name, sizeof(out->name), "%s", name);
	out->created_ms = created;
	/* The parsed grants move to the caller. */
	out->read = r;
	out->write = w;
	return FERRY_OK;
}

ferry_err apikey_lookup(ferry_node *node, const char *token, hub_key *out)
{
	memset(out, 0, sizeof(*out));
	size_t len;
	if (!token_shape_valid(token, &len))
		return FERRY_E_NOT_FOUND;
	char hex[HASH_HEX_BYTES];
	token_hash_hex(hex, token, len);
	void *value;
	size_t vlen;
	ferry_err err = ferry_kv_get(&value, &vlen, node, TABLE_APIKEYS, hex);
	if (err)
		return err;
	apikey_info info;
	err = decode_key(&info, hex, value, vlen);
	free(value);
	if (err)
		return err;
	memcpy(out->id, info.id, sizeof(out->id));
	memcpy(out->name, info.name, sizeof(out->name));
	/* The grants move: nothing to free in `info` afterwards. */
	out->read = info.read;
	out->write = info.write;
	return FERRY_OK;
}

/* A listing in progress: the caller's callback and the first decode
 * error, which ferry_kv_scan() cannot carry back itself. */
struct list_ctx {
	apikey_cb cb;
	void *payload;
	ferry_err err;
};

static int list_cb(const char *key, const void *value, size_t len,
		   void *payload)
{
	struct list_ctx *ctx = payload;
	apikey_info k;
	ctx->err = decode_key(&k, key, value, len);
	if (ctx->err)
		return 1;
	int stop = ctx->cb(&k, ctx->payload);
	apikey_info_clear(&k);
	return stop;
}

ferry_err apikey_list(ferry_node *node, apikey_cb cb, void *payload)
{
	struct list_ctx ctx = {.cb = cb, .payload = payload};
	ferry_err err = ferry_kv_scan(node, TABLE_APIKEYS, list_cb, &ctx);
	return err ? err : ctx.err;
}

/* A revoke in progress: the keys (table keys) that `want` names. */
struct revoke_scan {
	const char *want;
	char prefix[ID_DIGITS + 1]; /* lowercased, "" if not an id */
	char match[HASH_HEX_BYTES];
	int matches;
};

static int revoke_scan_cb(const char *key, const void *value, size_t len,
			  void *payload)
{
	struct revoke_scan *s = payload;
	int hit = 0;
	/* By id first: that needs only the table key, so a record whose
	 * value is damaged can still be revoked. */
	if (s->prefix[0] && strncmp(key, s->prefix, strlen(s->prefix)) == 0)
		hit = 1;
	if (!hit) {
		json_error_t jerr;
		json_t *doc = json_loadb(value, len, 0, &jerr);
		const char *name =
			json_string_value(json_object_get(doc, "name"));
		hit = name && strcmp(name, s->want) == 0;
		json_decref(doc);
	}
	if (hit) {
		/* A name that is also another key's id prefix is ambiguous
		 * rather than silently resolved one way: revoking the wrong
		 * key breaks a client that did nothing wrong. */
		if (s->matches == 0)
			snprintf(s->match, sizeof(s->match), "%s", key);
		s->matches++;
	}
	return 0;
}

ferry_err apikey_revoke(ferry_node *node, const char *name_or_id)
{
	if (!name_or_id || !*name_or_id)
		return FERRY_E_NOT_FOUND;
	struct revoke_scan s = {.want = name_or_id};
	size_t len = strlen(name_or_id);
	if (len >= MIN_PREFIX_DIGITS && len <= ID_DIGITS) {
		size_t i;
		for (i = 0; i < len; i++) {
			char c = name_or_id[i];
			if (c >= 'A' && c <= 'F')
				c = (char)(c - 'A' + 'a');
			if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
				break;
			s.prefix[i] = c;
		}
		s.prefix[i == len ? len : 0] = '\0';
	}
	ferry_err err = ferry_kv_scan(node, TABLE_APIKEYS, revoke_scan_cb, &s);
	if (err)
		return err;
	if (s.matches == 0)
		return FERRY_E_NOT_FOUND;
	if (s.matches > 1)
		return FERRY_E_INVALID;
	return ferry_kv_delete(node, TABLE_APIKEYS, s.match);
}
