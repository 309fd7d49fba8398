/*
 * kvjson.c — kv records whose values are compact JSON objects.
 */
#include <stdlib.h>
#include <string.h>

#include "kvjson.h"

ferry_err kvjson_parse(json_t **out, const void *value, size_t len)
{
	json_error_t jerr;
	*out = json_loadb(value, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!*out)
		return FERRY_E_CORRUPT;
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return FERRY_E_CORRUPT;
	}
	return FERRY_OK;
}

ferry_err kvjson_get(json_t **out, ferry_node *node, const char *table,
		     const char *key)
{
	void *value;
	size_t len;
	*out = NULL;
	ferry_err err = ferry_kv_get(&value, &len, node, table, key);
	if (err)
		return err;
	err = kvjson_parse(out, value, len);
	free(value);
	return err;
}

ferry_err kvjson_put(ferry_node *node, const char *table, const char *key,
		     const json_t *doc)
{
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	if (!text)
		return FERRY_E_NOMEM;
	ferry_err err = ferry_kv_put(node, table, key, text, strlen(text));
	free(text);
	return err;
}

ferry_err kvjson_txn_put(ferry_txn *txn, const char *table, const char *key,
			 const json_t *doc)
{
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	if (!text)
		return FERRY_E_NOMEM;
	ferry_err err = ferry_txn_kv_put(txn, table, key, text, strlen(text));
	free(text);
	return err;
}
