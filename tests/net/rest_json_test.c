/*
 * rest_json_test.c — JSON values through a real node and back, the way the
 * hub's REST endpoints store and serve them (net/rest_generic.c): each
 * document goes in with ferry_json_put(), is committed, read back with
 * ferry_get() + ferry_json_from_record() and through the change feed with
 * ferry_json_from_change(), and must come out exactly equal — integers
 * stay integers (to the int64 bounds), reals stay reals (bit for bit,
 * -0.0 included), strings keep their escapes and non-ASCII text. Also the
 * replace a PUT does (delete and put in one transaction) and the inputs
 * ferry_json_put() refuses without changing the transaction.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ferry_json.h"
#include "testing.h"

#define SCOPE "1/1"
#define COLL "clients"

static json_t *parse(const char *text)
{
	json_error_t error;
	json_t *v = json_loads(text, JSON_DECODE_ANY, &error);
	if (!v)
		test_fail(__FILE__, __LINE__, "bad test JSON at %d:%d: %s",
			  error.line, error.column, error.text);
	return v;
}

static void check_equal(const json_t *got, const json_t *want, const char *what)
{
	if (!json_equal((json_t *)got, (json_t *)want)) {
		char *g = json_dumps(got, JSON_ENCODE_ANY | JSON_SORT_KEYS);
		char *w = json_dumps(want, JSON_ENCODE_ANY | JSON_SORT_KEYS);
		test_fail(__FILE__, __LINE__, "%s:\n  got  %s\n  want %s", what,
			  g ? g : "?", w ? w : "?");
	}
}

static uint64_t put_fields(ferry_node *node, const char *key,
			   const json_t *fields)
{
	ferry_txn *txn;
	uint64_t cursor = 0;
	CHECK_NODE_OK(node, ferry_txn_begin(&txn, node));
	int err = ferry_json_put(txn, SCOPE, COLL, key, fields);
	if (err)
		test_fail(__FILE__, __LINE__, "ferry_json_put(%s): %s: %s", key,
			  ferry_err_name(err), ferry_node_errmsg(node));
	CHECK_NODE_OK(node, ferry_txn_commit_cursor(txn, &cursor));
	CHECK(cursor > 0);
	return cursor;
}

static json_t *get_fields(ferry_node *node, const char *key)
{
	ferry_record *rec;
	json_t *out;
	CHECK_NODE_OK(node, ferry_get(&rec, node, SCOPE, COLL, key));
	CHECK_OK(ferry_json_from_record(&out, rec, 0));
	ferry_record_free(rec);
	return out;
}

/* The change at `cursor`, as the change feed serves it. */
typedef struct one_change {
	uint64_t cursor;
	json_t *doc;
} one_change;

static int grab_change(const ferry_change *c, void *payload)
{
	one_change *oc = payload;
	if (c->cursor == oc->cursor)
		CHECK_OK(ferry_json_from_change(&oc->doc, c));
	return 0;
}

static json_t *change_at(ferry_node *node, uint64_t cursor)
{
	one_change oc = {cursor, NULL};
	CHECK_NODE_OK(node,
		      ferry_changes(node, cursor - 1, 1, grab_change, &oc));
	CHECK(oc.doc != NULL);
	return oc.doc;
}

/* Put `fields_text` as record `key`, read it back both ways, and compare
 * with the original exactly. */
static void round_trip(ferry_node *node, const char *key,
		       const char *fields_text)
{
	json_t *want = parse(fields_text);
	uint64_t cursor = put_fields(node, key, want);
	json_t *got = get_fields(node, key);
	json_t *change = change_at(node, cursor);

	check_equal(got, want, key);
	check_equal(json_object_get(change, "fields"), want, key);
	CHECK(!strcmp(json_string_value(json_object_get(change, "op")), "put"));
	CHECK(!strcmp(json_string_value(json_object_get(change, "key")), key));
	json_decref(change);
	json_decref(got);
	json_decref(want);
}

static void test_scalars(ferry_node *node)
{
	/* Integers at every msgpack width boundary and the int64 ends. */
	round_trip(node, "ints",
		   "{\"zero\": 0, \"one\": 1, \"minus1\": -1,"
		   " \"fix_max\": 127, \"fix_min\": -32, \"u8\": 255,"
		   " \"u16\": 65535, \"u32\": 4294967295,"
		   " \"i8\": -128, \"i16\": -32768, \"i32\": -2147483648,"
		   " \"big\": 4294967296, \"negbig\": -4294967297,"
		   " \"max\": 9223372036854775807,"
		   " \"min\": -9223372036854775808}");
	round_trip(
		node, "reals",
		"{\"tenth\": 0.1, \"huge\": 1e300, \"tiny\": 5e-324,"
		" \"neg\": -2.5, \"one\": 1.0, \"third\": 0.3333333333333333,"
		" \"maxd\": 1.7976931348623157e308, \"zero\": 0.0}");
	round_trip(node, "literals",
		   "{\"t\": true, \"f\": false, \"n\": null}");
	round_trip(
		node, "strings",
		"{\"empty\": \"\", \"ascii\": \"hello\","
		" \"escapes\": \"quote \\\" backslash \\\\ slash \\/ "
		"\\b\\f\\n\\r\\t ctl \\u0001\\u001f\","
		" \"latin\": \"caf\\u00e9 Stra\\u00dfe\","
		" \"cyrillic\": \"\\u041a\\u043b\\u0438\\u0435\\u043d\\u0442\","
		" \"cjk\": \"\\u4e2d\\u6587\","
		" \"astral\": \"\\ud83d\\ude00 \\ud834\\udd1e\","
		" \"raw_utf8\": \"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\","
		" \"unicode name \\u00e9\": 1}");
}

/* Integers and reals must not turn into each other, and -0.0 must keep
 * its sign (json_equal alone says -0.0 == 0.0). */
static void test_types_kept(ferry_node *node)
{
	json_t *want =
		json_pack("{s:f, s:f, s:I, s:f}", "negzero", -0.0, "two", 2.0,
			  "int_two", (json_int_t)2, "ulp", 1.0 + DBL_EPSILON);
	json_t *got;
	double nz;
	CHECK(want != NULL);
	put_fields(node, "types", want);
	got = get_fields(node, "types");
	check_equal(got, want, "types");
	CHECK(json_is_real(json_object_get(got, "negzero")));
	nz = json_real_value(json_object_get(got, "negzero"));
	CHECK(nz == 0.0 && signbit(nz));
	CHECK(json_is_real(json_object_get(got, "two")));
	CHECK(json_is_integer(json_object_get(got, "int_two")));
	CHECK(json_real_value(json_object_get(got, "ulp")) ==
	      1.0 + DBL_EPSILON);
	CHECK_EQ_U64(json_integer_value(json_object_get(got, "int_two")), 2);
	json_decref(got);
	json_decref(want);
}

static void test_containers(ferry_node *node)
{
	round_trip(node, "nested",
		   "{\"empty_obj\": {}, \"empty_arr\": [],"
		   " \"arr\": [1, -1, 0.5, \"s\", true, false, null, [], {}],"
		   " \"deep\": {\"a\": {\"b\": {\"c\": [[[1, [2, {\"d\": "
		   "null}]]]]}}},"
		   " \"mixed\": [{\"k\": [9223372036854775807, "
		   "-9223372036854775808]}, {\"\": \"empty key\"}],"
		   " \"keys\": {\"caf\\u00e9\": 1, \"a.b\": 2, \"$x\": 3}}");
	/* Tagged forms come back as the same tagged JSON. */
	round_trip(node, "tagged",
		   "{\"bin\": {\"$bin\": \"AAECA/8=\"},"
		   " \"empty_bin\": {\"$bin\": \"\"},"
		   " \"u64\": {\"$msgpack\": \"z///////////\"}}");

	ferry_txn *txn;
	json_t *fields;
	CHECK_OK(ferry_txn_begin(&txn, node));
	/* Not an object, or empty: refused. */
	fields = json_array();
	CHECK_ERR(ferry_json_put(txn, SCOPE, COLL, "arr", fields),
		  FERRY_E_INVALID);
	json_decref(fields);
	fields = json_object();
	CHECK_ERR(ferry_json_put(txn, SCOPE, COLL, "empty", fields),
		  FERRY_E_INVALID);
	json_decref(fields);
	/* A "$bin" that is not base64. */
	fields = parse("{\"b\": {\"$bin\": \"not base64!\"}}");
	CHECK_ERR(ferry_json_put(txn, SCOPE, COLL, "badbin", fields),
		  FERRY_E_INVALID);
	json_decref(fields);
	/* The refusals left the transaction empty: committing writes
	 * nothing. */
	uint64_t before, after, cursor = 99;
	CHECK_OK(ferry_changes_last(&before, node));
	CHECK_OK(ferry_txn_commit_cursor(txn, &cursor));
	CHECK_OK(ferry_changes_last(&after, node));
	CHECK_EQ_U64(after, before);
	CHECK_EQ_U64(cursor, 0);
	ferry_record *rec;
	CHECK_ERR(ferry_get(&rec, node, SCOPE, COLL, "arr"), FERRY_E_NOT_FOUND);
}

/* Nesting: exactly FERRY_JSON_MAX_DEPTH levels round trip through the
 * store (record and change log); one more is refused without touching the
 * transaction. */
static void test_depth(ferry_node *node)
{
	json_t *deep = json_array(), *fields, *got;
	ferry_txn *txn;
	ferry_record *rec;
	uint64_t cursor;

	for (int i = 1; i < FERRY_JSON_MAX_DEPTH; i++)
		deep = json_pack("[o]", deep);
	fields = json_pack("{s:O}", "deep", deep);
	cursor = put_fields(node, "deepest", fields);
	got = get_fields(node, "deepest");
	check_equal(got, fields, "deepest");
	json_decref(got);
	got = change_at(node, cursor);
	check_equal(json_object_get(got, "fields"), fields, "deepest change");
	json_decref(got);
	json_decref(fields);

	fields = json_pack("{s:[o]}", "deep", deep);
	CHECK_OK(ferry_txn_begin(&txn, node));
	CHECK_ERR(ferry_json_put(txn, SCOPE, COLL, "too-deep", fields),
		  FERRY_E_LIMIT);
	json_decref(fields);
	CHECK_OK(ferry_txn_commit(txn));
	CHECK_ERR(ferry_get(&rec, node, SCOPE, COLL, "too-deep"),
		  FERRY_E_NOT_FOUND);

	/* The store stays consistent with the deepest value in it. */
	ferry_verify_report report;
	CHECK_NODE_OK(node, ferry_verify(node, &report));
}

/* PUT replaces a record: a delete and the new fields in one transaction.
 * The tombstone's stamp is older than the new fields', so exactly the new
 * fields are live — and PATCH (a put alone) keeps the others. */
static void test_replace(ferry_node *node)
{
	json_t *first = parse("{\"a\": 1, \"b\": \"two\", \"c\": [3]}");
	json_t *second = parse("{\"b\": \"new\", \"d\": {\"x\": null}}");
	json_t *patch = parse("{\"a\": 10}");
	json_t *patched = parse("{\"a\": 10, \"b\": \"new\", "
				"\"d\": {\"x\": null}}");
	ferry_txn *txn;
	uint64_t cursor, created, changed;
	ferry_record *rec;
	json_t *got;

	put_fields(node, "replace", first);
	CHECK_OK(ferry_txn_begin(&txn, node));
	CHECK_OK(ferry_txn_delete(txn, SCOPE, COLL, "replace"));
	CHECK_OK(ferry_json_put(txn, SCOPE, COLL, "replace", second));
	CHECK_OK(ferry_txn_commit_cursor(txn, &cursor));
	got = get_fields(node, "replace");
	check_equal(got, second, "replaced");
	json_decref(got);

	/* The record's changed cursor is the commit's last change. */
	CHECK_OK(ferry_get(&rec, node, SCOPE, COLL, "replace"));
	ferry_record_cursors(rec, &created, &changed);
	CHECK_EQ_U64(changed, cursor);
	ferry_record_free(rec);

	put_fields(node, "replace", patch);
	got = get_fields(node, "replace");
	check_equal(got, patched, "patched");
	json_decref(got);

	/* The named view the GET endpoint serves. */
	CHECK_OK(ferry_get(&rec, node, SCOPE, COLL, "replace"));
	CHECK_OK(ferry_json_from_record(&got, rec, FERRY_JSON_RECORD_NAMES));
	ferry_record_free(rec);
	CHECK(!strcmp(json_string_value(json_object_get(got, "scope")), SCOPE));
	CHECK(!strcmp(json_string_value(json_object_get(got, "collection")),
		      COLL));
	CHECK(!strcmp(json_string_value(json_object_get(got, "key")),
		      "replace"));
	check_equal(json_object_get(got, "fields"), patched, "named view");
	json_decref(got);

	json_decref(first);
	json_decref(second);
	json_decref(patch);
	json_decref(patched);
}

/* A JSON text written by the hub (jansson's dump) and parsed again by a
 * client is the same value: reals print with enough digits. */
static void test_text_round_trip(ferry_node *node)
{
	json_t *want = parse("{\"tenth\": 0.1, \"huge\": 1e300, \"third\": "
			     "0.3333333333333333, \"min\": "
			     "-9223372036854775808, \"s\": \"\\u00e9\\n\"}");
	put_fields(node, "text", want);
	json_t *got = get_fields(node, "text");
	char *text = json_dumps(got, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_t *again;
	CHECK(text != NULL);
	again = parse(text);
	check_equal(again, want, "dumped and parsed");
	free(text);
	json_decref(again);
	json_decref(got);
	json_decref(want);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	ferry_node *node = test_node("rest_json", 0);
	test_scalars(node);
	test_types_kept(node);
	test_containers(node);
	test_replace(node);
	test_text_round_trip(node);
	test_depth(node);
	ferry_node_close(node);
	printf("rest_json_test: ok\n");
	return 0;
}
