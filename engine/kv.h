/*
 * kv.h — the kv tables inside other write transactions (ferry_txn_kv_put).
 */
#ifndef FERRY_KV_H
#define FERRY_KV_H

#include "node.h"

/* Validate a table, key and value size (detail on the node). */
ferry_err kv_check(ferry_node *node, const char *table, const char *key,
		   size_t len);

/* Put (value != NULL) or delete in `txn`, bumping the table's generation.
 * The names must have passed kv_check(). */
ferry_err kv_write(store_txn *txn, const char *table, const char *key,
		   const void *value, size_t len);

#endif
