/*
 * kvjson_test.c — JSON kv records (net/kvjson.c): round trips through a
 * node and inside a transaction, and what counts as a damaged record.
 */
#include <string.h>

#include "kvjson.h"
#include "testing.h"

static void test_round_trip(void)
{
	ferry_node *node = test_node("kvjson_round_trip", 0);
	json_t *doc = json_pack("{s:s, s:I}", "name", "a", "n", (json_int_t)7);
	CHECK_NODE_OK(node, kvjson_put(node, "t", "k", doc));
	json_t *got;
	CHECK_NODE_OK(node, kvjson_get(&got, node, "t", "k"));
	CHECK(json_equal(doc, got));
	json_decref(got);

	/* Inside a transaction: invisible until the commit. */
	ferry_txn *txn;
	CHECK_NODE_OK(node, ferry_txn_begin(&txn, node));
	CHECK_OK(kvjson_txn_put(txn, "t", "k2", doc));
	CHECK_ERR(kvjson_get(&got, node, "t", "k2"), FERRY_E_NOT_FOUND);
	CHECK(got == NULL);
	CHECK_NODE_OK(node, ferry_txn_commit(txn));
	CHECK_NODE_OK(node, kvjson_get(&got, node, "t", "k2"));
	CHECK(json_equal(doc, got));
	json_decref(got);
	json_decref(doc);

	/* A failed json_pack passed straight in stores nothing. */
	CHECK_ERR(kvjson_put(node, "t", "k3", NULL), FERRY_E_NOMEM);
	CHECK_ERR(kvjson_get(&got, node, "t", "k3"), FERRY_E_NOT_FOUND);
	ferry_node_close(node);
}

static void test_damaged(void)
{
	static const char *const damaged[] = {
		"",	    "{",  "not json",	       "[1,2]",
		"\"text\"", "42", "{\"a\":1,\"a\":2}",
	};
	ferry_node *node = test_node("kvjson_damaged", 0);
	for (size_t i = 0; i < sizeof(damaged) / sizeof(damaged[0]); i++) {
		json_t *got = (json_t *)1;
		CHECK_ERR(kvjson_parse(&got, damaged[i], strlen(damaged[i])),
			  FERRY_E_CORRUPT);
		CHECK(got == NULL);
		CHECK_NODE_OK(node, ferry_kv_put(node, "t", "bad", damaged[i],
						 strlen(damaged[i])));
		CHECK_ERR(kvjson_get(&got, node, "t", "bad"), FERRY_E_CORRUPT);
		CHECK(got == NULL);
	}
	json_t *got;
	CHECK_OK(kvjson_parse(&got, "{}", 2));
	CHECK(json_is_object(got) && json_object_size(got) == 0);
	json_decref(got);
	ferry_node_close(node);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	test_round_trip();
	test_damaged();
	printf("kvjson_test: ok\n");
	return 0;
}
