/*
 * apikey.h — API keys for the hub's HTTP side.
 *
 * A key is a random token shown once at creation ("fk_" + 43 base64url
 * characters of 32 random bytes). The node stores only its BLAKE2b-256
 * hash, in the kv table "apikeys" (key: the hash in hex; value: JSON
 * {"name", "read": [patterns], "write": [patterns], "created_ms"}), with
 * the same grant model as the trust list. Lookups read the table on every
 * request, so a revocation takes effect at once, in every process.
 */
#ifndef FERRY_APIKEY_H
#define FERRY_APIKEY_H

#include "ferry.h"
#include "grant.h"
#include "hub.h"

#define APIKEY_PREFIX "fk_"
#define APIKEY_TOKEN_BYTES 48 /* "fk_" + 43 characters + NUL, rounded */
#define APIKEY_MAX_NAME_BYTES 64

typedef struct apikey_info {
	char id[17]; /* first 16 hex digits of the hash */
	char name[APIKEY_MAX_NAME_BYTES + 1];
	grant read, write;
	uint64_t created_ms;
} apikey_info;

void apikey_info_clear(apikey_info *k);

/* Create a key named `name` (unique, 1..64 bytes of UTF-8 without control
 * characters) with grants parsed from comma-separated patterns (grant.h).
 * The token goes to `token` (APIKEY_TOKEN_BYTES) and is never stored.
 * Errors: FERRY_E_INVALID (name taken or bad, bad pattern: `err` says
 * which), store errors. */
ferry_err apikey_create(ferry_node *node, const char *name, const char *read,
			const char *write, char token[APIKEY_TOKEN_BYTES],
			apikey_info *out, char *err, size_t err_len);

/* The key a presented token belongs to. Errors: FERRY_E_NOT_FOUND for an
 * unknown, malformed or revoked token (never says which). `out` must be
 * cleared with grant_clear on its grants by the caller. */
ferry_err apikey_lookup(ferry_node *node, const char *token, hub_key *out);

/* Keys in hash order; `k` is borrowed during the call. */
typedef int (*apikey_cb)(const apikey_info *k, void *payload);
ferry_err apikey_list(ferry_node *node, apikey_cb cb, void *payload);

/* Revoke by name or by id (its 16 hex digits, or a unique prefix of at
 * least 8). Errors: FERRY_E_NOT_FOUND, FERRY_E_INVALID (ambiguous). */
ferry_err apikey_revoke(ferry_node *node, const char *name_or_id);

/* Release a hub_key's grants. */
void hub_key_clear(hub_key *k);

#endif
