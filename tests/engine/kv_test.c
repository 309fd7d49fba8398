/*
 * kv_test.c — the kv tables (engine/kv.c), kv writes inside transactions,
 * the commit cursor, and per-record cursors (created / changed).
 */
#include <string.h>

#include "testing.h"

static uint64_t gen(ferry_node *node, const char *table)
{
	uint64_t g = 0;
	CHECK_NODE_OK(node, ferry_kv_generation(&g, node, table));
	return g;
}

static int count_entry(const char *key, const void *value, size_t len,
		       void *payload)
{
	(void)key;
	(void)value;
	(void)len;
	(*(int *)payload)++;
	return 0;
}

static void test_tables(void)
{
	ferry_node *node = test_node("kv-tables", 0);
	void *v = NULL;
	size_t len = 0;
	int n = 0;

	CHECK_EQ_U64(gen(node, "t"), 0);
	CHECK_NODE_OK(node, ferry_kv_put(node, "t", "a", "1", 1));
	CHECK_NODE_OK(node, ferry_kv_put(node, "t", "b", "22", 2));
	CHECK_NODE_OK(node, ferry_kv_put(node, "u", "a", "x", 1));
	CHECK_EQ_U64(gen(node, "t"), 2);
	CHECK_EQ_U64(gen(node, "u"), 1);
	CHECK_NODE_OK(node, ferry_kv_get(&v, &len, node, "t", "b"));
	CHECK(len == 2 && !memcmp(v, "22", 2));
	free(v);
	CHECK_NODE_OK(node, ferry_kv_scan(node, "t", count_entry, &n));
	CHECK(n == 2);
	CHECK_NODE_OK(node, ferry_kv_delete(node, "t", "a"));
	CHECK_ERR(ferry_kv_delete(node, "t", "a"), FERRY_E_NOT_FOUND);
	CHECK_ERR(ferry_kv_get(&v, &len, node, "t", "a"), FERRY_E_NOT_FOUND);
	CHECK(v == NULL);
	CHECK_ERR(ferry_kv_put(node, "", "a", "1", 1), FERRY_E_INVALID);
	CHECK_ERR(ferry_kv_put(node, "t", "k\xff", "1", 1), FERRY_E_INVALID);
	CHECK(ferry_kv_put(node, "t", "big", "", FERRY_MAX_VALUE_BYTES + 1) ==
	      FERRY_E_LIMIT);
	ferry_node_close(node);
}

static ferry_field str_field(const char *name, const char *value, char *buf,
			     size_t cap)
{
	size_t n = strlen(value);
	ferry_field f = {name, buf, n + 1};
	CHECK(n < 32 && n + 1 <= cap);
	buf[0] = (char)(0xa0 | n); /* fixstr */
	memcpy(buf + 1, value, n);
	return f;
}

static void test_txn_kv_and_cursor(void)
{
	ferry_node *node = test_node("kv-txn", 0);
	char buf[40];
	ferry_field f = str_field("name", "Rex", buf, sizeof(buf));
	ferry_txn *txn;
	uint64_t cursor = 99, last = 0;
	void *v = NULL;
	size_t len;

	/* Abort: neither the change nor the kv write happen. */
	CHECK_NODE_OK(node, ferry_txn_begin(&txn, node));
	CHECK_NODE_OK(node, ferry_txn_put(txn, "s", "c", "k", &f, 1));
	CHECK_NODE_OK(node, ferry_txn_kv_put(txn, "done", "req-1", "ok", 2));
	ferry_txn_abort(txn);
	CHECK_ERR(ferry_kv_get(&v, &len, node, "done", "req-1"),
		  FERRY_E_NOT_FOUND);
	CHECK_NODE_OK(node, ferry_changes_last(&last, node));
	CHECK_EQ_U64(last, 0);

	/* Commit: both, and the cursor of the last change comes back. */
	CHECK_NODE_OK(node, ferry_txn_begin(&txn, node));
	CHECK_NODE_OK(node, ferry_txn_put(txn, "s", "c", "k", &f, 1));
	CHECK_NODE_OK(node, ferry_txn_put(txn, "s", "c", "k2", &f, 1));
	CHECK_NODE_OK(node, ferry_txn_kv_put(txn, "done", "req-1", "ok", 2));
	CHECK_NODE_OK(node, ferry_txn_commit_cursor(txn, &cursor));
	CHECK_EQ_U64(cursor, 2);
	CHECK_NODE_OK(node, ferry_kv_get(&v, &len, node, "done", "req-1"));
	CHECK(len == 2 && !memcmp(v, "ok", 2));
	free(v);
	CHECK_EQ_U64(gen(node, "done"), 1);

	/* A transaction of kv writes only commits too; cursor 0. */
	CHECK_NODE_OK(node, ferry_txn_begin(&txn, node));
	CHECK_NODE_OK(node, ferry_txn_kv_put(txn, "done", "req-2", "", 0));
	CHECK_NODE_OK(node, ferry_txn_commit_cursor(txn, &cursor));
	CHECK_EQ_U64(cursor, 0);
	CHECK_NODE_OK(node, ferry_kv_get(&v, &len, node, "done", "req-2"));
	free(v);
	CHECK_ERR(ferry_txn_kv_put(NULL, "done", "x", "", 0), FERRY_E_INVALID);
	ferry_node_close(node);
}

static void record_cursors(ferry_node *node, const char *key, uint64_t *created,
			   uint64_t *changed)
{
	ferry_record *rec = NULL;
	CHECK_NODE_OK(node, ferry_get(&rec, node, "s", "c", key));
	ferry_record_cursors(rec, created, changed);
	ferry_record_free(rec);
}

static void test_record_cursors(void)
{
	ferry_node *a = test_node("kv-cursors-a", 0);
	ferry_node *b = test_node("kv-cursors-b", 0);
	uint64_t created, changed;
	ferry_txn *txn;

	test_put_str(a, "s", "c", "k", "name", "Rex");	   /* cursor 1 */
	test_put_str(a, "s", "c", "other", "name", "Tom"); /* cursor 2 */
	record_cursors(a, "k", &created, &changed);
	CHECK_EQ_U64(created, 1);
	CHECK_EQ_U64(changed, 1);
	test_put_str(a, "s", "c", "k", "name", "Rex II"); /* cursor 3 */
	record_cursors(a, "k", &created, &changed);
	CHECK_EQ_U64(created, 1);
	CHECK_EQ_U64(changed, 3);
	CHECK_NODE_OK(a, ferry_txn_begin(&txn, a));
	CHECK_NODE_OK(a, ferry_txn_delete(txn, "s", "c", "k")); /* 4 */
	CHECK_NODE_OK(a, ferry_txn_commit(txn));
	int live = 1;
	CHECK_NODE_OK(a, ferry_record_state(&live, &created, &changed, a, "s",
					    "c", "k"));
	CHECK(!live);
	CHECK_EQ_U64(created, 1);
	CHECK_EQ_U64(changed, 4);
	CHECK_ERR(ferry_record_state(NULL, NULL, NULL, a, "s", "c", "never"),
		  FERRY_E_NOT_FOUND);
	test_put_str(a, "s", "c", "k", "name", "Rex III"); /* cursor 5 */
	record_cursors(a, "k", &created, &changed);
	CHECK_EQ_U64(created, 5);
	CHECK_EQ_U64(changed, 5);

	/* Cursors are node-local: b numbers its own arrivals, and the
	 * merged state (digest, verify) is the same on both. */
	test_put_str(b, "s", "x", "first", "name", "b's own");
	test_sync_oneway(a, b);
	record_cursors(b, "k", &created, &changed);
	CHECK(created > 1 && changed >= created);
	uint8_t da[FERRY_HASH_BYTES], db[FERRY_HASH_BYTES];
	CHECK_NODE_OK(a, ferry_digest(da, a, "s"));
	CHECK_NODE_OK(b, ferry_digest(db, b, "s"));
	CHECK(memcmp(da, db, sizeof(da)) != 0); /* b also holds s/x/first */
	test_sync_oneway(b, a);
	CHECK(test_same_digest(a, b));
	CHECK_NODE_OK(a, ferry_verify(a, NULL));
	CHECK_NODE_OK(b, ferry_verify(b, NULL));
	ferry_node_close(a);
	ferry_node_close(b);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	test_tables();
	test_txn_kv_and_cursor();
	test_record_cursors();
	printf("kv_test: ok\n");
	return 0;
}
