/*
 * json_value_test.c — JSON <-> msgpack values (net/json_value.c): exact
 * round trips both ways, the tagged forms, the nesting bound, and untrusted
 * msgpack that must fail cleanly rather than crash or allocate wildly.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ferry_json.h"
#include "testing.h"

static msgpack_sbuffer encode(const json_t *value)
{
	msgpack_sbuffer sbuf;
	msgpack_sbuffer_init(&sbuf);
	CHECK_OK(ferry_json_to_msgpack(&sbuf, value));
	return sbuf;
}

/* JSON -> msgpack -> JSON must give back an equal value of the same type,
 * and re-encoding that must give the same bytes. */
static void check_round_trip(json_t *value)
{
	msgpack_sbuffer first = encode(value);
	json_t *back;
	CHECK_OK(ferry_json_from_msgpack(&back, first.data, first.size));
	if (!json_equal(value, back)) {
		char *want = json_dumps(value, JSON_ENCODE_ANY);
		char *got = json_dumps(back, JSON_ENCODE_ANY);
		test_fail(__FILE__, __LINE__, "round trip: %s became %s", want,
			  got);
	}
	msgpack_sbuffer second = encode(back);
	CHECK(second.size == first.size);
	CHECK(memcmp(second.data, first.data, first.size) == 0);
	msgpack_sbuffer_destroy(&first);
	msgpack_sbuffer_destroy(&second);
	json_decref(back);
	json_decref(value);
}

static json_t *parse(const char *text)
{
	json_error_t error;
	json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &error);
	if (!v)
		test_fail(__FILE__, __LINE__, "bad test JSON %s: %s", text,
			  error.text);
	return v;
}

static void test_scalars(void)
{
	check_round_trip(json_integer(INT64_MIN));
	check_round_trip(json_integer(INT64_MAX));
	check_round_trip(json_integer(0));
	check_round_trip(json_integer(-1));
	check_round_trip(json_integer(127));
	check_round_trip(json_integer(-33));
	check_round_trip(json_integer(65536));
	check_round_trip(json_real(0.1));
	check_round_trip(json_real(1e300));
	check_round_trip(json_real(-1e-300));
	check_round_trip(json_real(1.0)); /* stays a real, not 1 */
	check_round_trip(json_true());
	check_round_trip(json_false());
	check_round_trip(json_null());
	check_round_trip(parse("\"\""));
	check_round_trip(parse("\"żółw 🐢 — naïve\""));
	check_round_trip(parse("\"quote \\\" backslash \\\\ nl \\n tab \\t\""));
	check_round_trip(parse("\"with \\u0000 inside\""));

	/* -0.0 equals 0.0 to json_equal: check the sign survives. */
	json_t *neg_zero = json_real(-0.0);
	msgpack_sbuffer sbuf = encode(neg_zero);
	json_t *back;
	CHECK_OK(ferry_json_from_msgpack(&back, sbuf.data, sbuf.size));
	CHECK(json_is_real(back) && signbit(json_real_value(back)));
	json_decref(back);
	json_decref(neg_zero);
	msgpack_sbuffer_destroy(&sbuf);
}

static void test_containers(void)
{
	check_round_trip(parse("[]"));
	check_round_trip(parse("{}"));
	check_round_trip(parse("[[], {}, [[]], {\"a\": {}}]"));
	check_round_trip(parse("{\"name\": \"Rex\", \"age\": 7, \"weight\": "
			       "31.5, \"tags\": [\"dog\", null, true], "
			       "\"owner\": {\"id\": -4, \"vip\": false}}"));
	check_round_trip(parse("{\"\": 2}"));

	/* json_equal() cannot compare keys holding NUL: look them up. */
	json_t *nul_key = json_object();
	json_object_setn_new(nul_key, "k\0ey", 4, json_integer(1));
	msgpack_sbuffer sbuf = encode(nul_key);
	json_t *back;
	CHECK_OK(ferry_json_from_msgpack(&back, sbuf.data, sbuf.size));
	CHECK(json_object_size(back) == 1);
	CHECK(json_integer_value(json_object_getn(back, "k\0ey", 4)) == 1);
	json_decref(back);
	json_decref(nul_key);
	msgpack_sbuffer_destroy(&sbuf);
	/* Member order is kept. */
	check_round_trip(parse("{\"z\": 1, \"a\": 2, \"m\": 3}"));
}

static void test_tagged(void)
{
	check_round_trip(parse("{\"$bin\": \"\"}"));
	check_round_trip(parse("{\"$bin\": \"AAEC/w==\"}"));
	check_round_trip(parse("[{\"$bin\": \"aGk=\"}]"));
	/* An object with more members is an ordinary map. */
	check_round_trip(parse("{\"$bin\": 1, \"other\": 2}"));

	json_t *bin = parse("{\"$bin\": \"AAEC\"}");
	msgpack_sbuffer sbuf = encode(bin);
	const char want[] = {(char)0xc4, 3, 0, 1, 2};
	CHECK(sbuf.size == sizeof(want));
	CHECK(memcmp(sbuf.data, want, sizeof(want)) == 0);
	msgpack_sbuffer_destroy(&sbuf);
	json_decref(bin);

	const char *invalid[] = {
		"{\"$bin\": \"!!!\"}",	    "{\"$bin\": 5}",
		"{\"$bin\": \"AAE\"}",	    "{\"$msgpack\": \"\"}",
		"{\"$msgpack\": \"kQ==\"}", /* [ with its item missing */
		"{\"$msgpack\": \"wAA=\"}", /* nil plus a trailing byte */
	};
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		json_t *v = parse(invalid[i]);
		msgpack_sbuffer_init(&sbuf);
		CHECK_ERR(ferry_json_to_msgpack(&sbuf, v), FERRY_E_INVALID);
		msgpack_sbuffer_destroy(&sbuf);
		json_decref(v);
	}
}

/* msgpack JSON cannot spell comes back as {"$msgpack": ...} and encodes to
 * exactly the same bytes. */
static void check_opaque(const void *bytes, size_t len)
{
	json_t *v;
	CHECK_OK(ferry_json_from_msgpack(&v, bytes, len));
	CHECK(json_is_object(v) && json_object_get(v, "$msgpack"));
	msgpack_sbuffer sbuf = encode(v);
	CHECK(sbuf.size == len && memcmp(sbuf.data, bytes, len) == 0);
	msgpack_sbuffer_destroy(&sbuf);
	json_decref(v);
}

static void test_opaque(void)
{
	const uint8_t uint64_max[] = {0xcf, 0xff, 0xff, 0xff, 0xff,
				      0xff, 0xff, 0xff, 0xff};
	const uint8_t ext[] = {0xd4, 0x05, 0x2a};
	const uint8_t int_key_map[] = {0x81, 0x01, 0xa1, 'x'};
	const uint8_t dup_key_map[] = {0x82, 0xa1, 'k', 0x01, 0xa1, 'k', 0x02};
	const uint8_t bad_utf8[] = {0xa2, 0xc3, 0x28};
	const uint8_t nan64[] = {0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0};
	/* A native map that would read back as the tagged form. */
	const uint8_t looks_tagged[] = {0x81, 0xa4, '$', 'b', 'i', 'n', 0x01};
	check_opaque(uint64_max, sizeof(uint64_max));
	check_opaque(ext, sizeof(ext));
	check_opaque(int_key_map, sizeof(int_key_map));
	check_opaque(dup_key_map, sizeof(dup_key_map));
	check_opaque(bad_utf8, sizeof(bad_utf8));
	check_opaque(nan64, sizeof(nan64));
	check_opaque(looks_tagged, sizeof(looks_tagged));

	/* Only the part JSON cannot hold is opaque. */
	const uint8_t nested[] = {0x92, 0x01, 0xd4, 0x05, 0x2a};
	json_t *v;
	CHECK_OK(ferry_json_from_msgpack(&v, nested, sizeof(nested)));
	CHECK(json_is_array(v) &&
	      json_integer_value(json_array_get(v, 0)) == 1);
	CHECK(json_object_get(json_array_get(v, 1), "$msgpack"));
	json_decref(v);
}

/* `depth` arrays nested inside each other. */
static json_t *nested_arrays(unsigned int depth)
{
	json_t *v = json_array();
	for (unsigned int i = 1; i < depth; i++) {
		json_t *outer = json_array();
		json_array_append_new(outer, v);
		v = outer;
	}
	return v;
}

static void test_depth(void)
{
	check_round_trip(nested_arrays(FERRY_JSON_MAX_DEPTH));

	json_t *deep = nested_arrays(FERRY_JSON_MAX_DEPTH + 1);
	msgpack_sbuffer sbuf;
	msgpack_sbuffer_init(&sbuf);
	CHECK_ERR(ferry_json_to_msgpack(&sbuf, deep), FERRY_E_LIMIT);
	msgpack_sbuffer_destroy(&sbuf);
	json_decref(deep);

	uint8_t bytes[FERRY_JSON_MAX_DEPTH + 1];
	memset(bytes, 0x91, sizeof(bytes) - 1); /* [[[...[]...]]] */
	bytes[sizeof(bytes) - 1] = 0x90;
	json_t *v;
	CHECK_ERR(ferry_json_from_msgpack(&v, bytes, sizeof(bytes)),
		  FERRY_E_LIMIT);
	CHECK(v == NULL);
	CHECK_OK(ferry_json_from_msgpack(&v, bytes + 1, sizeof(bytes) - 1));
	json_decref(v);
}

static void check_rejected(const void *bytes, size_t len)
{
	json_t *v = (json_t *)1;
	ferry_err err = ferry_json_from_msgpack(&v, bytes, len);
	if (err == FERRY_OK)
		test_fail(__FILE__, __LINE__, "accepted %zu malformed bytes",
			  len);
	CHECK(v == NULL);
}

static void test_malformed(void)
{
	const uint8_t huge_array[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0};
	const uint8_t huge_map[] = {0xdf, 0x7f, 0xff, 0xff, 0xff, 0xc0, 0xc0};
	const uint8_t huge_str[] = {0xdb, 0xff, 0xff, 0xff, 0xf0, 'a'};
	const uint8_t huge_bin[] = {0xc6, 0xff, 0xff, 0xff, 0xff, 0x00};
	const uint8_t huge_ext[] = {0xc9, 0xff, 0xff, 0xff, 0xff, 0x01};
	const uint8_t reserved[] = {0xc1};
	const uint8_t trailing[] = {0xc0, 0xc0};
	const uint8_t short_fixmap[] = {0x82, 0xa1, 'a', 0x01};
	check_rejected(huge_array, sizeof(huge_array));
	check_rejected(huge_map, sizeof(huge_map));
	check_rejected(huge_str, sizeof(huge_str));
	check_rejected(huge_bin, sizeof(huge_bin));
	check_rejected(huge_ext, sizeof(huge_ext));
	check_rejected(reserved, sizeof(reserved));
	check_rejected(trailing, sizeof(trailing));
	check_rejected(short_fixmap, sizeof(short_fixmap));
	check_rejected("", 0);

	/* Every proper prefix of a valid encoding is truncated. */
	json_t *doc = parse("{\"a\": [1, -200, 70000, 5000000000, 0.5, "
			    "\"text\", {\"$bin\": \"AAEC\"}, null, true], "
			    "\"b\": {\"c\": \"d\"}}");
	msgpack_sbuffer sbuf = encode(doc);
	for (size_t len = 0; len < sbuf.size; len++)
		check_rejected(sbuf.data, len);

	/* Random corruption of it must fail or succeed, never crash. */
	for (int round = 0; round < 20000; round++) {
		uint8_t copy[256];
		CHECK(sbuf.size <= sizeof(copy));
		memcpy(copy, sbuf.data, sbuf.size);
		int flips = 1 + (int)test_rand_below(4);
		for (int i = 0; i < flips; i++)
			copy[test_rand_below(sbuf.size)] =
				(uint8_t)test_rand_below(256);
		size_t len = sbuf.size - test_rand_below(3);
		json_t *v;
		if (ferry_json_from_msgpack(&v, copy, len) == FERRY_OK)
			json_decref(v);
	}
	msgpack_sbuffer_destroy(&sbuf);
	json_decref(doc);
}

static void test_time(void)
{
	char when[FERRY_JSON_TIME_BYTES];
	ferry_json_time(when, 0);
	CHECK(strcmp(when, "1970-01-01T00:00:00.000Z") == 0);
	ferry_json_time(when, UINT64_C(1714564800123));
	CHECK(strcmp(when, "2024-05-01T12:00:00.123Z") == 0);
	ferry_json_time(when, (UINT64_C(1) << 48) - 1);
	CHECK(strlen(when) < sizeof(when));

	json_t *stamp = ferry_json_hlc((UINT64_C(1714564800123) << 16) | 7);
	CHECK(stamp);
	CHECK(json_integer_value(json_object_get(stamp, "counter")) == 7);
	CHECK(strcmp(json_string_value(json_object_get(stamp, "time")),
		     "2024-05-01T12:00:00.123Z") == 0);
	json_decref(stamp);
}

static int keep_change(const ferry_change *change, void *payload)
{
	json_t **out = payload;
	CHECK_OK(ferry_json_from_change(out, change));
	return 0;
}

/* ferry_json_put() and the record and change views, on a real node. */
static void test_node_views(void)
{
	ferry_node *node = test_node("json_views", 0);
	json_t *fields = parse("{\"name\": \"Rex\", \"age\": 7, \"tags\": "
			       "[\"dog\"], \"photo\": {\"$bin\": \"AAEC\"}}");
	ferry_txn *txn;
	CHECK_NODE_OK(node, ferry_txn_begin(&txn, node));
	CHECK_NODE_OK(node, ferry_json_put(txn, "s", "c", "k", fields));

	json_t *bad = json_object();
	CHECK_ERR(ferry_json_put(txn, "s", "c", "k", bad), FERRY_E_INVALID);
	json_object_setn_new(bad, "a\0b", 3, json_integer(1));
	CHECK_ERR(ferry_json_put(txn, "s", "c", "k", bad), FERRY_E_INVALID);
	json_decref(bad);
	json_t *array = parse("[1]");
	CHECK_ERR(ferry_json_put(txn, "s", "c", "k", array), FERRY_E_INVALID);
	json_decref(array);
	CHECK_NODE_OK(node, ferry_txn_commit(txn));

	ferry_record *rec;
	CHECK_NODE_OK(node, ferry_get(&rec, node, "s", "c", "k"));
	json_t *plain, *stamped;
	CHECK_OK(ferry_json_from_record(&plain, rec, 0));
	CHECK(json_equal(plain, fields));
	CHECK_OK(ferry_json_from_record(&stamped, rec,
					FERRY_JSON_RECORD_STAMPS));
	ferry_record_free(rec);
	CHECK(json_equal(json_object_get(stamped, "fields"), fields));
	CHECK(strcmp(json_string_value(json_object_get(stamped, "key")), "k") ==
	      0);
	char id[FERRY_ID_HEX_BYTES];
	ferry_id_to_hex(id, ferry_node_id(node));
	const json_t *age =
		json_object_get(json_object_get(stamped, "stamps"), "age");
	CHECK(strcmp(json_string_value(json_object_get(age, "origin")), id) ==
	      0);
	CHECK(json_integer_value(json_object_get(age, "hlc")) > 0);

	json_t *change = NULL;
	CHECK_NODE_OK(node, ferry_changes(node, 0, 0, keep_change, &change));
	CHECK(change);
	CHECK(json_equal(json_object_get(change, "fields"), fields));
	CHECK(strcmp(json_string_value(json_object_get(change, "op")), "put") ==
	      0);
	CHECK(json_integer_value(json_object_get(change, "cursor")) == 1);

	json_decref(change);
	json_decref(stamped);
	json_decref(plain);
	json_decref(fields);
	ferry_node_close(node);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	test_scalars();
	test_containers();
	test_tagged();
	test_opaque();
	test_depth();
	test_malformed();
	test_time();
	test_node_views();
	printf("json_value_test: ok\n");
	return 0;
}
