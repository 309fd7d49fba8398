/*
 * kvjson.h — kv records whose values are compact JSON objects: the trust
 * list, API keys, peer status and the REST idempotency results.
 */
#ifndef FERRY_KVJSON_H
#define FERRY_KVJSON_H

#include <stddef.h>

#include <jansson.h>

#include "ferry.h"

/* A stored value as a new JSON object. FERRY_E_CORRUPT when it is not
 * JSON, not an object, or repeats a member. */
ferry_err kvjson_parse(json_t **out, const void *value, size_t len);

/* kvjson_parse of table/key. FERRY_E_NOT_FOUND and read errors as
 * ferry_kv_get. */
ferry_err kvjson_get(json_t **out, ferry_node *node, const char *table,
		     const char *key);

/* Store `doc` (borrowed) under table/key. A NULL `doc` is FERRY_E_NOMEM,
 * so a failed json_pack can be passed straight in. */
ferry_err kvjson_put(ferry_node *node, const char *table, const char *key,
		     const json_t *doc);

/* As kvjson_put, inside `txn`: committed with the writes it describes. */
ferry_err kvjson_txn_put(ferry_txn *txn, const char *table, const char *key,
			 const json_t *doc);

#endif
