/*
 * secret.h — credentials encrypted at rest (docs/adapters.md, "Secrets"):
 * values sealed with crypto_secretbox under a key in <data dir>/secret.key
 * (0600, created on first use) and kept in the kv table "secrets". Shared
 * by every process that opens the data directory.
 *
 * Errors: the kv calls underneath leave their detail on the node
 * (ferry_node_errmsg); errors raised here — a bad name or size, a problem
 * with secret.key, a record that does not open — carry no detail (net/
 * uses the engine's public API only, which cannot set one), so their codes
 * are specific and a caller that wants to say more about FERRY_E_KEY_FILE
 * looks at <ferry_node_dir>/secret.key itself. Values never appear in any
 * error or detail text. Every function may be called from any thread.
 */
#ifndef FERRY_SECRET_H
#define FERRY_SECRET_H

#include <stddef.h>
#include <stdint.h>

#include "ferry.h"

/* Secret names: 1..64 bytes of [A-Za-z0-9_.-]. */
#define SECRET_NAME_MAX 64
/* Values: 1..8 KiB of any bytes. */
#define SECRET_VALUE_MAX 8192

/* 1 if `name` is a valid secret name. */
int secret_name_valid(const char *name);

/* The length of value[0..len) without one trailing "\n" or "\r\n": how
 * `ferry secret set` turns what it read from stdin into the value. */
size_t secret_value_trim(const void *value, size_t len);

/* Store (replace) the secret `name`. Creates secret.key if needed.
 * Errors: FERRY_E_INVALID (name, empty value), FERRY_E_LIMIT (value size),
 *         FERRY_E_KEY_FILE (secret.key unreadable, not a regular file,
 *         wrong size or readable by group/others), FERRY_E_IO (creating
 *         secret.key), kv errors (with the node's detail). */
ferry_err secret_set(ferry_node *node, const char *name, const void *value,
		     size_t len);

/* The secret's value, NUL-terminated as a convenience (len excludes the
 * NUL); malloc'd — wipe with sodium_memzero before free (secret_free).
 * Errors: FERRY_E_INVALID (name), FERRY_E_NOT_FOUND, FERRY_E_KEY_FILE
 *         (as for secret_set, or missing), FERRY_E_DECRYPT (sealed under
 *         another key, under another name, or altered), FERRY_E_VERSION
 *         (written by a newer ferry), FERRY_E_CORRUPT (record truncated). */
ferry_err secret_get(char **out, size_t *len, ferry_node *node,
		     const char *name);

/* Errors: FERRY_E_INVALID (name), FERRY_E_NOT_FOUND. */
ferry_err secret_delete(ferry_node *node, const char *name);

/* Names in order, with the time each was set (Unix ms; 0 for a damaged
 * record or one of a newer format, which secret_get then reports). Never
 * values; needs no key. Return non-zero from `fn` to stop. */
ferry_err secret_list(ferry_node *node,
		      int (*fn)(const char *name, uint64_t set_ms, void *arg),
		      void *arg);

/* Zero and free a value from secret_get. Accepts NULL. */
void secret_free(char *value, size_t len);

#endif
