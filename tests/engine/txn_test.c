/*
 * txn_test.c — local writes and reads through the public API (engine/txn.c,
 * engine/read.c): put/get/delete/scan/count/collections, transaction
 * semantics, every size limit, input validation, and the change feed.
 */
#include "engine_helpers.h"

static int has_field(ferry_node *node, const char *scope, const char *coll,
		     const char *key, const char *field, const eh_value *v)
{
	ferry_record *rec = NULL;
	int err = ferry_get(&rec, node, scope, coll, key);
	if (err == FERRY_E_NOT_FOUND)
		return 0;
	CHECK_NODE_OK(node, err);
	const ferry_field_info *fi = ferry_record_find(rec, field);
	int ok = fi && fi->value_len == v->len &&
		 !memcmp(fi->value, v->buf, v->len);
	ferry_record_free(rec);
	return ok;
}

static int exists(ferry_node *node, const char *scope, const char *coll,
		  const char *key)
{
	ferry_record *rec = NULL;
	int err = ferry_get(&rec, node, scope, coll, key);
	if (err == FERRY_E_NOT_FOUND) {
		CHECK(rec == NULL);
		return 0;
	}
	CHECK_NODE_OK(node, err);
	ferry_record_free(rec);
	return 1;
}

static uint64_t count(ferry_node *node, const char *scope, const char *coll)
{
	uint64_t n = 0;
	CHECK_NODE_OK(node, ferry_count(&n, node, scope, coll));
	return n;
}

static void test_put_get_delete(ferry_node *node)
{
	eh_value name = eh_str("Rex"), age = eh_int(7), owner = eh_str("Ann");
	ferry_field f[3] = {eh_field("name", &name), eh_field("age", &age),
			    eh_field("owner", &owner)};
	ferry_txn *txn = NULL;
	ferry_record *rec = NULL;

	CHECK_ERR(ferry_get(&rec, node, "clinic-1", "patients", "p1"),
		  FERRY_E_NOT_FOUND);
	CHECK(rec == NULL);
	CHECK_NODE_OK(node, ferry_txn_begin(&txn, node));
	CHECK_NODE_OK(node,
		      ferry_txn_put(txn, "clinic-1", "patients", "p1", f, 3));
	CHECK_NODE_OK(node, ferry_txn_commit(txn));

	CHECK_NODE_OK(node,
		      ferry_get(&rec, node, "clinic-1", "patients", "p1"));
	CHECK(!strcmp(ferry_record_key(rec), "p1"));
	CHECK(!strcmp(ferry_record_collection(rec), "patients"));
	CHECK(!strcmp(ferry_record_scope(rec), "clinic-1"));
	CHECK_EQ_U64(ferry_record_field_count(rec), 3);
	/* Sorted bytewise by name. */
	const char *order[3] = {"age", "name", "owner"};
	const eh_value *vals[3] = {&age, &name, &owner};
	for (size_t i = 0; i < 3; i++) {
		ferry_field_info fi;
		ferry_record_field(rec, i, &fi);
		CHECK(!strcmp(fi.name, order[i]));
		CHECK(fi.value_len == vals[i]->len &&
		      !memcmp(fi.value, vals[i]->buf, fi.value_len));
		CHECK(fi.hlc != 0);
		CHECK(!memcmp(fi.origin, ferry_node_id(node),
			      FERRY_PUBLIC_KEY_BYTES));
	}
	CHECK(ferry_record_find(rec, "owner") != NULL);
	CHECK(ferry_record_find(rec, "nope") == NULL);
	ferry_record_free(rec);
	ferry_record_free(NULL);

	/* A put sets only its fields; the others stay. */
	eh_value age2 = eh_int(8);
	ferry_field f2 = eh_field("age", &age2);
	CHECK_NODE_OK(node, ferry_txn_begin(&txn, node));
	CHECK_NODE_OK(node,
		      ferry_txn_put(txn, "clinic-1", "patients", "p1", &f2, 1));
	CHECK_NODE_OK(node, ferry_txn_commit(txn));
	CHECK(has_field(node, "clinic-1", "patients", "p1", "age", &age2));
	CHECK(has_field(node, "clinic-1", "patients", "p1", "name", &name));
	CHECK_EQ_U64(count(node, "clinic-1", "patients"), 1);

	eh_delete(node, "clinic-1", "patients", "p1");
	CHECK(!exists(node, "clinic-1", "patients", "p1"));
	CHECK_EQ_U64(count(node, "clinic-1", "patients"), 0);
	/* Deleting what is already deleted or never existed is fine. */
	eh_delete(node, "clinic-1", "patients", "p1");
	eh_delete(node, "clinic-1", "patients", "never");
	CHECK_EQ_U64(count(node, "clinic-1", "patients"), 0);
	/* Written again after the delete: live, without the old fields. */
	eh_put_int(node, "clinic-1", "patients", "p1", "age", 9);
	CHECK(exists(node, "clinic-1", "patients", "p1"));
	CHECK(!has_field(node, "clinic-1", "patients", "p1", "name", &name));
	CHECK_EQ_U64(count(node, "clinic-1", "patients"), 1);
}

typedef struct scan_log {
	size_t n;
	char keys[32][16];
	size_t stop_after;
} scan_log;

static int scan_cb(const ferry_record *rec, void *payload)
{
	scan_log *l = payload;
	CHECK(l->n < 32);
	CHECK(ferry_record_field_count(rec) >= 1);
	snprintf(l->keys[l->n], sizeof(l->keys[0]), "%s",
		 ferry_record_key(rec));
	l->n++;
	return l->stop_after && l->n >= l->stop_after;
}

static scan_log scan(ferry_node *node, const char *prefix, const char *after,
		     uint64_t limit, size_t stop_after)
{
	ferry_scan_options o = {prefix, after, limit};
	scan_log l;
	memset(&l, 0, sizeof(l));
	l.stop_after = stop_after;
	CHECK_NODE_OK(node, ferry_scan(node, "s", "scan", &o, scan_cb, &l));
	return l;
}

static void test_scan(ferry_node *node)
{
	ferry_txn *txn = NULL;
	eh_value v = eh_int(1);
	ferry_field f = eh_field("f", &v);
	char key[16];
	CHECK_NODE_OK(node, ferry_txn_begin(&txn, node));
	/* Inserted out of order; scans return key order. */
	for (int i = 9; i >= 0; i--) {
		snprintf(key, sizeof(key), "a%02d", i);
		CHECK_NODE_OK(node,
			      ferry_txn_put(txn, "s", "scan", key, &f, 1));
	}
	for (int i = 0; i < 5; i++) {
		snprintf(key, sizeof(key), "b%02d", i);
		CHECK_NODE_OK(node,
			      ferry_txn_put(txn, "s", "scan", key, &f, 1));
	}
	/* Same key in another collection and scope: never visited. */
	CHECK_NODE_OK(node, ferry_txn_put(txn, "s", "scan2", "a00", &f, 1));
	CHECK_NODE_OK(node, ferry_txn_put(txn, "s2", "scan", "a00", &f, 1));
	CHECK_NODE_OK(node, ferry_txn_commit(txn));
	eh_delete(node, "s", "scan", "a03");

	scan_log l = scan(node, NULL, NULL, 0, 0);
	CHECK_EQ_U64(l.n, 14);
	for (size_t i = 1; i < l.n; i++)
		CHECK(strcmp(l.keys[i - 1], l.keys[i]) < 0);
	CHECK(!strcmp(l.keys[0], "a00"));
	CHECK(!strcmp(l.keys[3], "a04")); /* a03 deleted */

	l = scan(node, "b", NULL, 0, 0);
	CHECK_EQ_U64(l.n, 5);
	CHECK(!strcmp(l.keys[0], "b00"));
	l = scan(node, "a0", "a05", 0, 0);
	CHECK_EQ_U64(l.n, 4);
	CHECK(!strcmp(l.keys[0], "a06"));
	l = scan(node, NULL, "a09", 0, 0);
	CHECK_EQ_U64(l.n, 5);
	CHECK(!strcmp(l.keys[0], "b00"));
	l = scan(node, NULL, NULL, 3, 0);
	CHECK_EQ_U64(l.n, 3);
	CHECK(!strcmp(l.keys[2], "a02"));
	/* Paging with after + limit visits everything once. */
	char after[16] = "";
	size_t total = 0;
	for (;;) {
		l = scan(node, NULL, *after ? after : NULL, 4, 0);
		total += l.n;
		if (l.n < 4)
			break;
		snprintf(after, sizeof(after), "%s", l.keys[l.n - 1]);
	}
	CHECK_EQ_U64(total, 14);
	/* Early stop by the callback is not an error. */
	l = scan(node, NULL, NULL, 0, 2);
	CHECK_EQ_U64(l.n, 2);
	l = scan(node, "zzz", NULL, 0, 0);
	CHECK_EQ_U64(l.n, 0);
	/* NULL options = everything. */
	memset(&l, 0, sizeof(l));
	CHECK_NODE_OK(node, ferry_scan(node, "s", "scan", NULL, scan_cb, &l));
	CHECK_EQ_U64(l.n, 14);
	/* An unknown collection is empty, not an error. */
	memset(&l, 0, sizeof(l));
	CHECK_NODE_OK(node, ferry_scan(node, "s", "none", NULL, scan_cb, &l));
	CHECK_EQ_U64(l.n, 0);
	CHECK_EQ_U64(count(node, "s", "scan"), 14);
	CHECK_EQ_U64(count(node, "s", "scan2"), 1);
	CHECK_EQ_U64(count(node, "s2", "scan"), 1);
	CHECK_EQ_U64(count(node, "s", "none"), 0);
}

typedef struct coll_log {
	size_t n;
	char names[16][64];
	uint64_t live[16];
} coll_log;

static int coll_cb(const char *scope, const char *collection, uint64_t live,
		   void *payload)
{
	coll_log *l = payload;
	CHECK(l->n < 16);
	snprintf(l->names[l->n], sizeof(l->names[0]), "%s/%s", scope,
		 collection);
	l->live[l->n] = live;
	l->n++;
	return 0;
}

static int coll_stop_cb(const char *scope, const char *collection,
			uint64_t live, void *payload)
{
	(void)scope;
	(void)collection;
	(void)live;
	++*(int *)payload;
	return 1;
}

static void test_collections(ferry_node *node)
{
	coll_log l;
	memset(&l, 0, sizeof(l));
	CHECK_NODE_OK(node, ferry_collections(node, coll_cb, &l));
	/* From the writes above: clinic-1/patients (1), s/scan (14),
	 * s/scan2 (1), s2/scan (1), in order. */
	CHECK_EQ_U64(l.n, 4);
	CHECK(!strcmp(l.names[0], "clinic-1/patients"));
	CHECK_EQ_U64(l.live[0], 1);
	CHECK(!strcmp(l.names[1], "s/scan"));
	CHECK_EQ_U64(l.live[1], 14);
	CHECK(!strcmp(l.names[2], "s/scan2"));
	CHECK(!strcmp(l.names[3], "s2/scan"));
	int calls = 0;
	CHECK_NODE_OK(node, ferry_collections(node, coll_stop_cb, &calls));
	CHECK_EQ_U64(calls, 1);
}

static void test_txn_semantics(ferry_node *node)
{
	eh_value v1 = eh_int(1), v2 = eh_int(2), v3 = eh_int(3);
	ferry_field f1 = eh_field("f", &v1), f2 = eh_field("f", &v2);
	ferry_field g1 = eh_field("g", &v1);
	ferry_txn *txn = NULL;
	uint64_t last = eh_last(node);

	/* Several writes in one commit: all visible, one change each. */
	CHECK_NODE_OK(node, ferry_txn_begin(&txn, node));
	CHECK_NODE_OK(node, ferry_txn_put(txn, "t", "c", "k1", &f1, 1));
	CHECK_NODE_OK(node, ferry_txn_put(txn, "t", "c", "k2", &f1, 1));
	CHECK_NODE_OK(node, ferry_txn_put(txn, "t2", "c", "k3", &f1, 1));
	/* Nothing is visible before commit. */
	CHECK(!exists(node, "t", "c", "k1"));
	CHECK_NODE_OK(node, ferry_txn_commit(txn));
	CHECK(exists(node, "t", "c", "k1") && exists(node, "t", "c", "k2") &&
	      exists(node, "t2", "c", "k3"));
	CHECK_EQ_U64(eh_last(node), last + 3);

	/* The later write to the same field in one transaction wins. */
	CHECK_NODE_OK(node, ferry_txn_begin(&txn, node));
	CHECK_NODE_OK(node, ferry_txn_put(txn, "t", "c", "same", &f1, 1));
	CHECK_NODE_OK(node, ferry_txn_put(txn, "t", "c", "same", &f2, 1));
	CHECK_NODE_OK(node, ferry_txn_commit(txn));
	CHECK(has_field(node, "t", "c", "same", "f", &v2));

	/* Delete then put in one transaction: only the new field lives. */
	ferry_field fg[2] = {f1, g1};
	CHECK_NODE_OK(node, ferry_txn_begin(&txn, node));
	CHECK_NODE_OK(node, ferry_txn_put(txn, "t", "c", "dp", fg, 2));
	CHECK_NODE_OK(node, ferry_txn_commit(txn));
	CHECK_NODE_OK(node, ferry_txn_begin(&txn, node));
	CHECK_NODE_OK(node, ferry_txn_delete(txn, "t", "c", "dp"));
	CHECK_NODE_OK(node, ferry_txn_put(txn, "t", "c", "dp", &f2, 1));
	CHECK_NODE_OK(node, ferry_txn_commit(txn));
	CHECK(has_field(node, "t", "c", "dp", "f", &v2));
	CHECK(!has_field(node, "t", "c", "dp", "g", &v1));

	/* Put then delete in one transaction: gone. */
	CHECK_NODE_OK(node, ferry_txn_begin(&txn, node));
	CHECK_NODE_OK(node, ferry_txn_put(txn, "t", "c", "pd", &f1, 1));
	CHECK_NODE_OK(node, ferry_txn_delete(txn, "t", "c", "pd"));
	CHECK_NODE_OK(node, ferry_txn_commit(txn));
	CHECK(!exists(node, "t", "c", "pd"));

	/* Abort writes nothing. */
	last = eh_last(node);
	ferry_field f3 = eh_field("f", &v3);
	CHECK_NODE_OK(node, ferry_txn_begin(&txn, node));
	CHECK_NODE_OK(node, ferry_txn_put(txn, "t", "c", "aborted", &f3, 1));
	CHECK_NODE_OK(node, ferry_txn_put(txn, "t", "c", "same", &f3, 1));
	CHECK_NODE_OK(node, ferry_txn_delete(txn, "t", "c", "k1"));
	ferry_txn_abort(txn);
	ferry_txn_abort(NULL);
	CHECK(!exists(node, "t", "c", "aborted"));
	CHECK(has_field(node, "t", "c", "same", "f", &v2));
	CHECK(exists(node, "t", "c", "k1"));
	CHECK_EQ_U64(eh_last(node), last);

	/* An empty transaction commits (nothing to do). */
	CHECK_NODE_OK(node, ferry_txn_begin(&txn, node));
	CHECK_NODE_OK(node, ferry_txn_commit(txn));
	CHECK_EQ_U64(eh_last(node), last);
}

/* Does the detail text name the limit (by macro name or value)? */
static int mentions_limit(const char *msg, const char *macro, uint64_t value)
{
	char num[32];
	snprintf(num, sizeof(num), "%llu", (unsigned long long)value);
	return msg && (strstr(msg, macro) || strstr(msg, num) ||
		       strstr(msg, macro + strlen("FERRY_MAX_")));
}

#define CHECK_LIMIT(node, expr, macro)                                         \
	do {                                                                   \
		CHECK_ERR(expr, FERRY_E_LIMIT);                                \
		if (!mentions_limit(ferry_node_errmsg(node), #macro,           \
				    (uint64_t)(macro)))                        \
			test_fail(__FILE__, __LINE__,                          \
				  "detail \"%s\" does not name %s",            \
				  ferry_node_errmsg(node), #macro);            \
	} while (0)

static char *repeat(char c, size_t n)
{
	char *s = malloc(n + 1);
	CHECK(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* A canonical msgpack bin16 of `body` zero bytes (body < 65536). */
static uint8_t *bin16(size_t body)
{
	uint8_t *v = calloc(1, body + 3);
	CHECK(v && body < 65536);
	v[0] = 0xc5;
	v[1] = (uint8_t)(body >> 8);
	v[2] = (uint8_t)body;
	return v;
}

static void test_limits(ferry_node *node)
{
	eh_value v = eh_int(1);
	ferry_field f = eh_field("f", &v);
	ferry_txn *txn = NULL;
	char *scope = repeat('s', FERRY_MAX_SCOPE_BYTES + 1);
	char *coll = repeat('c', FERRY_MAX_COLLECTION_BYTES + 1);
	char *key = repeat('k', FERRY_MAX_KEY_BYTES + 1);
	char *fname = repeat('n', FERRY_MAX_FIELD_NAME_BYTES + 1);
	uint64_t last = eh_last(node);

	CHECK_NODE_OK(node, ferry_txn_begin(&txn, node));
	CHECK_LIMIT(node, ferry_txn_put(txn, scope, "c", "k", &f, 1),
		    FERRY_MAX_SCOPE_BYTES);
	CHECK_LIMIT(node, ferry_txn_delete(txn, scope, "c", "k"),
		    FERRY_MAX_SCOPE_BYTES);
	CHECK_LIMIT(node, ferry_txn_put(txn, "s", coll, "k", &f, 1),
		    FERRY_MAX_COLLECTION_BYTES);
	CHECK_LIMIT(node, ferry_txn_put(txn, "s", "c", key, &f, 1),
		    FERRY_MAX_KEY_BYTES);
	CHECK_LIMIT(node, ferry_txn_delete(txn, "s", "c", key),
		    FERRY_MAX_KEY_BYTES);
	ferry_field lf = {fname, v.buf, v.len};
	CHECK_LIMIT(node, ferry_txn_put(txn, "s", "c", "k", &lf, 1),
		    FERRY_MAX_FIELD_NAME_BYTES);

	/* A value one byte over the limit, then exactly at it: bin16 values
	 * are already canonical, so the stored size is the size given. */
	size_t big_len = FERRY_MAX_VALUE_BYTES + 1;
	uint8_t *big = bin16(big_len - 3);
	ferry_field bf = {"big", big, big_len};
	CHECK_LIMIT(node, ferry_txn_put(txn, "s", "c", "k", &bf, 1),
		    FERRY_MAX_VALUE_BYTES);
	free(big);
	big = bin16(FERRY_MAX_VALUE_BYTES - 3);
	bf.value = big;
	bf.value_len = FERRY_MAX_VALUE_BYTES;
	CHECK_NODE_OK(node,
		      ferry_txn_put(txn, "lim", "c", "max-value", &bf, 1));

	/* Too many fields in one write. */
	size_t nf = FERRY_MAX_FIELDS_PER_WRITE + 1;
	ferry_field *many = calloc(nf, sizeof(*many));
	char(*names)[16] = calloc(nf, sizeof(*names));
	CHECK(many && names);
	for (size_t i = 0; i < nf; i++) {
		snprintf(names[i], sizeof(names[i]), "f%05zu", i);
		many[i] = (ferry_field){names[i], v.buf, v.len};
	}
	CHECK_LIMIT(node, ferry_txn_put(txn, "s", "c", "k", many, nf),
		    FERRY_MAX_FIELDS_PER_WRITE);
	CHECK_NODE_OK(node, ferry_txn_put(txn, "lim", "c", "max-fields", many,
					  nf - 1));

	/* Names exactly at their limits. */
	scope[FERRY_MAX_SCOPE_BYTES] = '\0';
	coll[FERRY_MAX_COLLECTION_BYTES] = '\0';
	key[FERRY_MAX_KEY_BYTES] = '\0';
	fname[FERRY_MAX_FIELD_NAME_BYTES] = '\0';
	lf.name = fname;
	CHECK_NODE_OK(node, ferry_txn_put(txn, scope, coll, key, &lf, 1));

	/* The failed calls left the transaction usable. */
	CHECK_NODE_OK(node, ferry_txn_commit(txn));
	CHECK(exists(node, scope, coll, key));
	CHECK(exists(node, "lim", "c", "max-value"));
	CHECK(exists(node, "lim", "c", "max-fields"));
	CHECK_EQ_U64(eh_last(node), last + 3);

	/* A merged record over FERRY_MAX_RECORD_BYTES: five 60 KB values,
	 * refused at put or at commit; nothing written either way. */
	size_t chunk = 60 * 1024;
	uint8_t *val = bin16(chunk);
	ferry_field five[5];
	static const char *const five_names[5] = {"v1", "v2", "v3", "v4", "v5"};
	for (size_t i = 0; i < 5; i++)
		five[i] = (ferry_field){five_names[i], val, chunk + 3};
	/* Three first (fits), then two more in a later transaction. */
	CHECK_NODE_OK(node, ferry_txn_begin(&txn, node));
	CHECK_NODE_OK(node, ferry_txn_put(txn, "lim", "c", "rec", five, 3));
	CHECK_NODE_OK(node, ferry_txn_commit(txn));
	last = eh_last(node);
	CHECK_NODE_OK(node, ferry_txn_begin(&txn, node));
	CHECK_NODE_OK(node, ferry_txn_put(txn, "lim", "c", "other", &f, 1));
	int err = ferry_txn_put(txn, "lim", "c", "rec", five + 3, 2);
	if (err == FERRY_OK) {
		CHECK_LIMIT(node, ferry_txn_commit(txn),
			    FERRY_MAX_RECORD_BYTES);
		/* All or nothing: the other write is not there either. */
		CHECK(!exists(node, "lim", "c", "other"));
		CHECK_EQ_U64(eh_last(node), last);
	} else {
		CHECK_ERR(err, FERRY_E_LIMIT);
		ferry_txn_abort(txn);
	}
	ferry_record *rec = NULL;
	CHECK_NODE_OK(node, ferry_get(&rec, node, "lim", "c", "rec"));
	CHECK_EQ_U64(ferry_record_field_count(rec), 3);
	ferry_record_free(rec);
	/* All five in one write of a fresh record. */
	CHECK_NODE_OK(node, ferry_txn_begin(&txn, node));
	err = ferry_txn_put(txn, "lim", "c", "rec5", five, 5);
	if (err == FERRY_OK)
		CHECK_LIMIT(node, ferry_txn_commit(txn),
			    FERRY_MAX_RECORD_BYTES);
	else {
		CHECK_ERR(err, FERRY_E_LIMIT);
		ferry_txn_abort(txn);
	}
	CHECK(!exists(node, "lim", "c", "rec5"));
	CHECK_EQ_U64(eh_last(node), last);

	/* Writes per transaction. */
	CHECK_NODE_OK(node, ferry_txn_begin(&txn, node));
	for (uint32_t i = 0; i < FERRY_MAX_WRITES_PER_TXN; i++) {
		char k[16];
		snprintf(k, sizeof(k), "w%u", i);
		int e = ferry_txn_put(txn, "lim", "w", k, &f, 1);
		if (e)
			test_fail(__FILE__, __LINE__, "write %u: %s: %s", i,
				  ferry_err_name(e), ferry_node_errmsg(node));
	}
	CHECK_LIMIT(node, ferry_txn_put(txn, "lim", "w", "one-more", &f, 1),
		    FERRY_MAX_WRITES_PER_TXN);
	CHECK_LIMIT(node, ferry_txn_delete(txn, "lim", "w", "one-more"),
		    FERRY_MAX_WRITES_PER_TXN);
	ferry_txn_abort(txn);
	CHECK_EQ_U64(eh_last(node), last);

	/* Transaction bytes: 64 KiB values until the buffered size passes
	 * FERRY_MAX_TXN_BYTES; the limit must trip, and soon after. */
	free(big);
	big = bin16(FERRY_MAX_VALUE_BYTES - 3);
	bf.value = big;
	bf.value_len = FERRY_MAX_VALUE_BYTES;
	CHECK_NODE_OK(node, ferry_txn_begin(&txn, node));
	size_t max_writes = FERRY_MAX_TXN_BYTES / FERRY_MAX_VALUE_BYTES + 16;
	size_t w = 0;
	for (; w < max_writes; w++) {
		char k[16];
		snprintf(k, sizeof(k), "b%zu", w);
		err = ferry_txn_put(txn, "lim", "big", k, &bf, 1);
		if (err)
			break;
	}
	CHECK(w >= FERRY_MAX_TXN_BYTES / FERRY_MAX_VALUE_BYTES - 16);
	CHECK_LIMIT(node, err, FERRY_MAX_TXN_BYTES);
	ferry_txn_abort(txn);
	CHECK_EQ_U64(eh_last(node), last);

	free(val);
	free(many);
	free(names);
	free(big);
	free(scope);
	free(coll);
	free(key);
	free(fname);
}

static void check_invalid(ferry_node *node, ferry_txn *txn, const char *scope,
			  const char *coll, const char *key, const char *field,
			  const void *value, size_t len, int line)
{
	ferry_field f = {field, value, len};
	int err = ferry_txn_put(txn, scope, coll, key, &f, 1);
	if (err != FERRY_E_INVALID && err != FERRY_E_LIMIT)
		test_fail(__FILE__, line,
			  "put(%s,%s,%s,%s): expected an error, "
			  "got %s",
			  scope ? scope : "NULL", coll ? coll : "NULL",
			  key ? key : "NULL", field ? field : "NULL",
			  ferry_err_name(err));
	if (!*ferry_node_errmsg(node))
		test_fail(__FILE__, line, "no detail text");
}

static void test_invalid(ferry_node *node)
{
	eh_value v = eh_int(1);
	ferry_txn *txn = NULL;
	uint64_t last = eh_last(node);
	CHECK_NODE_OK(node, ferry_txn_begin(&txn, node));

	/* Empty and missing names. */
	check_invalid(node, txn, "", "c", "k", "f", v.buf, v.len, __LINE__);
	check_invalid(node, txn, "s", "", "k", "f", v.buf, v.len, __LINE__);
	check_invalid(node, txn, "s", "c", "", "f", v.buf, v.len, __LINE__);
	check_invalid(node, txn, "s", "c", "k", "", v.buf, v.len, __LINE__);
	check_invalid(node, txn, NULL, "c", "k", "f", v.buf, v.len, __LINE__);
	check_invalid(node, txn, "s", NULL, "k", "f", v.buf, v.len, __LINE__);
	check_invalid(node, txn, "s", "c", NULL, "f", v.buf, v.len, __LINE__);
	check_invalid(node, txn, "s", "c", "k", NULL, v.buf, v.len, __LINE__);
	CHECK(ferry_txn_delete(txn, "", "c", "k") != FERRY_OK);
	CHECK(ferry_txn_delete(txn, "s", "", "k") != FERRY_OK);
	CHECK(ferry_txn_delete(txn, "s", "c", "") != FERRY_OK);
	/* Names that are not UTF-8. */
	check_invalid(node, txn, "s\xff", "c", "k", "f", v.buf, v.len,
		      __LINE__);
	check_invalid(node, txn, "s", "c\xc3", "k", "f", v.buf, v.len,
		      __LINE__);
	check_invalid(node, txn, "s", "c", "k\xed\xa0\x80", "f", v.buf, v.len,
		      __LINE__);
	check_invalid(node, txn, "s", "c", "k", "\xfe", v.buf, v.len, __LINE__);

	/* Values that are not exactly one msgpack object. */
	static const uint8_t two[] = {0x01, 0x02};
	static const uint8_t truncated_array[] = {0x92, 0x01};
	static const uint8_t truncated_str[] = {0xa5, 'a', 'b'};
	static const uint8_t reserved[] = {0xc1};
	static const uint8_t huge_claim[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
	check_invalid(node, txn, "s", "c", "k", "f", v.buf, 0, __LINE__);
	check_invalid(node, txn, "s", "c", "k", "f", NULL, 0, __LINE__);
	check_invalid(node, txn, "s", "c", "k", "f", two, sizeof(two),
		      __LINE__);
	check_invalid(node, txn, "s", "c", "k", "f", truncated_array,
		      sizeof(truncated_array), __LINE__);
	check_invalid(node, txn, "s", "c", "k", "f", truncated_str,
		      sizeof(truncated_str), __LINE__);
	check_invalid(node, txn, "s", "c", "k", "f", reserved, sizeof(reserved),
		      __LINE__);
	check_invalid(node, txn, "s", "c", "k", "f", huge_claim,
		      sizeof(huge_claim), __LINE__);
	ferry_field ok = eh_field("f", &v);
	ferry_field errs[1] = {{"g", two, sizeof(two)}};
	CHECK_ERR(ferry_txn_put(txn, "s", "c", "k", errs, 1), FERRY_E_INVALID);
	/* Duplicate names in one write. */
	ferry_field dup[2] = {ok, ok};
	CHECK_ERR(ferry_txn_put(txn, "s", "c", "k", dup, 2), FERRY_E_INVALID);
	/* No fields at all. */
	CHECK(ferry_txn_put(txn, "s", "c", "k", &ok, 0) != FERRY_OK);
	CHECK(ferry_txn_put(txn, "s", "c", "k", NULL, 1) != FERRY_OK);

	/* Nothing of the above was buffered. */
	CHECK_NODE_OK(node, ferry_txn_commit(txn));
	CHECK_EQ_U64(eh_last(node), last);
	CHECK(!exists(node, "s", "c", "k"));

	/* Non-canonical but valid values are accepted and stored in
	 * canonical form. */
	static const uint8_t wide_five[] = {0xce, 0, 0, 0, 5};
	ferry_field wide = {"w", wide_five, sizeof(wide_five)};
	CHECK_NODE_OK(node, ferry_txn_begin(&txn, node));
	CHECK_NODE_OK(node, ferry_txn_put(txn, "s", "c", "canon", &wide, 1));
	CHECK_NODE_OK(node, ferry_txn_commit(txn));
	ferry_record *rec = NULL;
	CHECK_NODE_OK(node, ferry_get(&rec, node, "s", "c", "canon"));
	const ferry_field_info *fi = ferry_record_find(rec, "w");
	CHECK(fi && fi->value_len == 1 && ((const uint8_t *)fi->value)[0] == 5);
	ferry_record_free(rec);

	/* Reads validate names too. */
	CHECK_ERR(ferry_get(&rec, node, "", "c", "k"), FERRY_E_INVALID);
	uint64_t n;
	CHECK(ferry_count(&n, node, "s", "") != FERRY_OK);
}

/* ---- the change feed ---- */

typedef struct feed {
	size_t n;
	uint64_t cursor[16];
	uint64_t seq[16];
	char what[16][128];
	size_t stop_after;
} feed;

static int feed_cb(const ferry_change *c, void *payload)
{
	feed *fd = payload;
	CHECK(fd->n < 16);
	char fields[64] = "";
	for (size_t i = 0; i < c->nfields; i++) {
		size_t len = strlen(fields);
		snprintf(fields + len, sizeof(fields) - len, "%s%s=%zu",
			 i ? "," : "", c->fields[i].name,
			 c->fields[i].value_len);
	}
	snprintf(fd->what[fd->n], sizeof(fd->what[0]), "%s/%s/%s %s %s",
		 c->scope, c->collection, c->key,
		 c->op == FERRY_OP_PUT ? "put" : "del", fields);
	fd->cursor[fd->n] = c->cursor;
	fd->seq[fd->n] = c->seq;
	CHECK(c->hlc != 0);
	fd->n++;
	return fd->stop_after && fd->n >= fd->stop_after;
}

static void test_changes(void)
{
	ferry_node *node = test_node("txn-changes", 0);
	eh_value a = eh_int(1), b = eh_str("bb");
	ferry_field ab[2] = {eh_field("a", &a), eh_field("b", &b)};
	ferry_txn *txn = NULL;
	feed fd;

	CHECK_EQ_U64(eh_last(node), 0);
	memset(&fd, 0, sizeof(fd));
	CHECK_NODE_OK(node, ferry_changes(node, 0, 0, feed_cb, &fd));
	CHECK_EQ_U64(fd.n, 0);

	CHECK_NODE_OK(node, ferry_txn_begin(&txn, node));
	CHECK_NODE_OK(node, ferry_txn_put(txn, "s1", "c", "k1", ab, 2));
	CHECK_NODE_OK(node, ferry_txn_put(txn, "s2", "c", "k2", ab + 1, 1));
	CHECK_NODE_OK(node, ferry_txn_commit(txn));
	CHECK_NODE_OK(node, ferry_txn_begin(&txn, node));
	CHECK_NODE_OK(node, ferry_txn_delete(txn, "s1", "c", "k1"));
	CHECK_NODE_OK(node, ferry_txn_commit(txn));
	eh_put_int(node, "s1", "d", "k3", "a", 5);

	CHECK_EQ_U64(eh_last(node), 4);
	memset(&fd, 0, sizeof(fd));
	CHECK_NODE_OK(node, ferry_changes(node, 0, 0, feed_cb, &fd));
	CHECK_EQ_U64(fd.n, 4);
	for (size_t i = 0; i < 4; i++)
		CHECK_EQ_U64(fd.cursor[i], i + 1);
	CHECK(!strcmp(fd.what[0], "s1/c/k1 put a=1,b=3"));
	CHECK(!strcmp(fd.what[1], "s2/c/k2 put b=3"));
	CHECK(!strcmp(fd.what[2], "s1/c/k1 del "));
	CHECK(!strcmp(fd.what[3], "s1/d/k3 put a=1"));
	/* Sequence numbers count per (origin, scope) chain. */
	CHECK_EQ_U64(fd.seq[0], 1);
	CHECK_EQ_U64(fd.seq[1], 1);
	CHECK_EQ_U64(fd.seq[2], 2);
	CHECK_EQ_U64(fd.seq[3], 3);

	memset(&fd, 0, sizeof(fd));
	CHECK_NODE_OK(node, ferry_changes(node, 2, 0, feed_cb, &fd));
	CHECK_EQ_U64(fd.n, 2);
	CHECK_EQ_U64(fd.cursor[0], 3);
	memset(&fd, 0, sizeof(fd));
	CHECK_NODE_OK(node, ferry_changes(node, 0, 3, feed_cb, &fd));
	CHECK_EQ_U64(fd.n, 3);
	memset(&fd, 0, sizeof(fd));
	fd.stop_after = 1;
	CHECK_NODE_OK(node, ferry_changes(node, 1, 0, feed_cb, &fd));
	CHECK_EQ_U64(fd.n, 1);
	CHECK_EQ_U64(fd.cursor[0], 2);
	memset(&fd, 0, sizeof(fd));
	CHECK_NODE_OK(node, ferry_changes(node, 4, 0, feed_cb, &fd));
	CHECK_EQ_U64(fd.n, 0);
	CHECK_NODE_OK(node, ferry_changes(node, 1000, 0, feed_cb, &fd));
	CHECK_EQ_U64(fd.n, 0);

	/* Status agrees. */
	ferry_status st;
	CHECK_NODE_OK(node, ferry_status_get(&st, node));
	CHECK_EQ_U64(st.changes, 4);
	CHECK_EQ_U64(st.last_cursor, 4);
	CHECK(st.clock != 0);
	ferry_node_close(node);
}

/* A value may nest FERRY_MAX_VALUE_DEPTH containers: the store wraps it in
 * three more levels, which must still decode. */
static void test_value_depth(void)
{
	ferry_node *node = test_node("txn-depth", 0);
	uint8_t value[FERRY_MAX_VALUE_DEPTH + 2];
	ferry_record *rec = NULL;
	ferry_txn *txn;

	for (int i = 0; i < FERRY_MAX_VALUE_DEPTH; i++)
		value[i] = 0x91; /* a one-element array */
	value[FERRY_MAX_VALUE_DEPTH] = 0x01;
	ferry_field ok = {"deep", value, FERRY_MAX_VALUE_DEPTH + 1};
	CHECK_NODE_OK(node, ferry_txn_begin(&txn, node));
	CHECK_NODE_OK(node, ferry_txn_put(txn, "s", "c", "deep", &ok, 1));
	CHECK_NODE_OK(node, ferry_txn_commit(txn));
	CHECK_NODE_OK(node, ferry_get(&rec, node, "s", "c", "deep"));
	CHECK(ferry_record_find(rec, "deep")->value_len ==
	      FERRY_MAX_VALUE_DEPTH + 1);
	ferry_record_free(rec);

	uint8_t deeper[FERRY_MAX_VALUE_DEPTH + 2];
	for (int i = 0; i <= FERRY_MAX_VALUE_DEPTH; i++)
		deeper[i] = 0x91;
	deeper[FERRY_MAX_VALUE_DEPTH + 1] = 0x01;
	ferry_field bad = {"deep", deeper, sizeof(deeper)};
	CHECK_NODE_OK(node, ferry_txn_begin(&txn, node));
	CHECK_ERR(ferry_txn_put(txn, "s", "c", "deeper", &bad, 1),
		  FERRY_E_LIMIT);
	CHECK(strstr(ferry_node_errmsg(node), "FERRY_MAX_VALUE_DEPTH"));
	ferry_txn_abort(txn);
	CHECK_NODE_OK(node, ferry_verify(node, NULL));
	ferry_node_close(node);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	ferry_node *node = test_node("txn", 0);
	test_put_get_delete(node);
	test_scan(node);
	test_collections(node);
	test_txn_semantics(node);
	test_limits(node);
	test_invalid(node);
	ferry_verify_report rep;
	CHECK_NODE_OK(node, ferry_verify(node, &rep));
	ferry_node_close(node);
	test_changes();
	test_value_depth();
	printf("txn_test: ok\n");
	return 0;
}
