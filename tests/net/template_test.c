/*
 * template_test.c — the adapters' templates (net/template.c): every
 * placeholder form and compile error, rendering record and payload
 * templates in each mode, computed values and JSON pointers.
 */
#include <string.h>

#include "template.h"
#include "testing.h"

static json_t *parse(const char *text)
{
	json_error_t jerr;
	json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	if (!v)
		test_fail(__FILE__, __LINE__, "bad test JSON %s: %s", text,
			  jerr.text);
	return v;
}

static tmpl *compile(const char *text, tmpl_kind kind)
{
	json_t *v = parse(text);
	char why[256];
	tmpl *t;
	ferry_err err = tmpl_compile(&t, v, kind, why, sizeof(why));
	if (err)
		test_fail(__FILE__, __LINE__, "compile %s: %s", text, why);
	json_decref(v);
	return t;
}

/* `got` (consumed) must equal the JSON `want`. */
#define CHECK_JSON(got, want)                                                  \
	do {                                                                   \
		json_t *got_ = (got);                                          \
		json_t *want_ = parse(want);                                   \
		if (!got_ || !json_equal(got_, want_)) {                       \
			char *g_ = got_ ? json_dumps(got_, JSON_ENCODE_ANY)    \
					: NULL;                                \
			test_fail(__FILE__, __LINE__, "got %s, want %s",       \
				  g_ ? g_ : "NULL", want);                     \
		}                                                              \
		json_decref(got_);                                             \
		json_decref(want_);                                            \
	} while (0)

/* ---- a record for the resolver ---- */

/* The test record: {"fields": {...}, "key", "scope", "collection", "id"?,
 * "links": {"collection": {"key": "external id"}}, "fatal": "why"?}. */
static json_t *resolve(const tmpl_ref *ref, void *arg, int *fatal, char *why,
		       size_t why_len)
{
	const json_t *rec = arg;
	const json_t *fatal_why = json_object_get(rec, "fatal");
	if (fatal_why) {
		*fatal = 1;
		snprintf(why, why_len, "%s", json_string_value(fatal_why));
		return NULL;
	}
	const json_t *v = NULL;
	switch (ref->type) {
	case TMPL_REF_FIELD:
		v = json_object_get(json_object_get(rec, "fields"), ref->name);
		v = tmpl_pointer_get(v, ref->pointer);
		break;
	case TMPL_REF_KEY:
		v = json_object_get(rec, "key");
		break;
	case TMPL_REF_SCOPE:
		v = json_object_get(rec, "scope");
		break;
	case TMPL_REF_COLLECTION:
		v = json_object_get(rec, "collection");
		break;
	case TMPL_REF_ID:
		v = json_object_get(rec, "id");
		break;
	case TMPL_REF_LINK: {
		const json_t *key = json_object_get(
			json_object_get(rec, "fields"), ref->name);
		const json_t *links = json_object_get(
			json_object_get(rec, "links"), ref->collection);
		if (key && json_is_string(key))
			v = json_object_get(links, json_string_value(key));
		if (key && !v) {
			/* The linked record exists but was not created yet. */
			*fatal = 1;
			why[0] = '\0';
			return NULL;
		}
		break;
	}
	}
	return v ? json_deep_copy(v) : NULL;
}

static const char *const record_json =
	"{\"fields\": {\"name\": \"Ann\", \"age\": 42, \"vip\": true,"
	" \"nothing\": null, \"addr\": {\"city\": \"Oslo\", \"zip\": [1, 2]},"
	" \"owner\": \"o-1\", \"odd\": \"a b/c?d&\u00e9\"},"
	" \"key\": \"p-1\", \"scope\": \"clinic-7\", \"collection\": "
	"\"patients\", \"id\": 991, \"links\": {\"owners\": {\"o-1\": "
	"\"X7\"}}}";

static json_t *render_rec(const char *tmpl_text_, tmpl_mode mode,
			  const json_t *rec, char *why, size_t why_len)
{
	tmpl *t = compile(tmpl_text_, TMPL_RECORD);
	json_t *out =
		tmpl_render_record(t, mode, resolve, (void *)rec, why, why_len);
	tmpl_free(t);
	return out;
}

/* ---- tests ---- */

typedef struct seen {
	char text[1024];
} seen;

static void collect(const tmpl_ref *ref, void *arg)
{
	seen *s = arg;
	char one[256];
	switch (ref->type) {
	case TMPL_REF_FIELD:
		snprintf(one, sizeof(one), "F:%s:%s;", ref->name, ref->pointer);
		break;
	case TMPL_REF_KEY:
		snprintf(one, sizeof(one), "key;");
		break;
	case TMPL_REF_SCOPE:
		snprintf(one, sizeof(one), "scope;");
		break;
	case TMPL_REF_COLLECTION:
		snprintf(one, sizeof(one), "collection;");
		break;
	case TMPL_REF_ID:
		snprintf(one, sizeof(one), "id;");
		break;
	case TMPL_REF_LINK:
		snprintf(one, sizeof(one), "L:%s:%s;", ref->name,
			 ref->collection);
		break;
	}
	strncat(s->text, one, sizeof(s->text) - strlen(s->text) - 1);
}

static void test_refs(void)
{
	tmpl *t = compile(
		"{\"a\": \"{name}\", \"b\": [\"{addr/zip/0}\", 1, "
		"\"{@key}-{@scope}\"], \"c\": {\"d\": \"{@collection}/{@id}\"},"
		" \"e\": \"{owner->owners}\", \"f\": \"{we ird/a~1b->x}\","
		" \"g\": \"{ spaced name }\", \"h\": \"{\u00e9t\u00e9}\"}",
		TMPL_RECORD);
	CHECK(!tmpl_is_constant(t));
	seen s = {""};
	tmpl_each_ref(t, collect, &s);
	const char *want = "F:name:;F:addr:/zip/0;key;scope;collection;id;"
			   "L:owner:owners;F:we ird:/a~1b->x;"
			   "F: spaced name :;F:\u00e9t\u00e9:;";
	if (strcmp(s.text, want) != 0)
		test_fail(__FILE__, __LINE__, "refs %s, want %s", s.text, want);
	tmpl_free(t);

	/* Payload templates have no record refs; constants none at all. */
	t = compile("{\"a\": \"{/x}\"}", TMPL_PAYLOAD);
	s.text[0] = '\0';
	tmpl_each_ref(t, collect, &s);
	CHECK(s.text[0] == '\0');
	tmpl_free(t);
	t = compile("[\"plain\", 1, {\"x\": \"{{not}}\"}]", TMPL_RECORD);
	CHECK(tmpl_is_constant(t));
	tmpl_each_ref(t, collect, &s);
	CHECK(s.text[0] == '\0');
	tmpl_free(t);
}

static void expect_error(const char *text, tmpl_kind kind, const char *want)
{
	json_t *v = parse(text);
	char why[512];
	tmpl *t = (tmpl *)1;
	ferry_err err = tmpl_compile(&t, v, kind, why, sizeof(why));
	json_decref(v);
	if (err != FERRY_E_INVALID || t != NULL)
		test_fail(__FILE__, __LINE__, "%s compiled (err %d)", text,
			  err);
	if (!strstr(why, want))
		test_fail(__FILE__, __LINE__, "%s: error \"%s\" lacks \"%s\"",
			  text, why, want);
}

static void test_compile_errors(void)
{
	expect_error("\"/owners/{@idd}\"", TMPL_RECORD,
		     "unknown placeholder {@idd} (expected a field name, "
		     "@key, @scope, @collection, @id or FIELD->COLLECTION)");
	expect_error("\"{@}\"", TMPL_RECORD, "unknown placeholder {@}");
	expect_error("\"{@key->owners}\"", TMPL_RECORD,
		     "unknown placeholder {@key->owners}");
	expect_error("\"a {name\"", TMPL_RECORD, "unmatched { in \"a {name\"");
	expect_error("\"a {na{me}\"", TMPL_RECORD, "unmatched {");
	expect_error("\"a } b\"", TMPL_RECORD, "unmatched } in \"a } b\"");
	expect_error("\"x {name}} y\"", TMPL_RECORD, "unmatched }");
	expect_error("\"a {} b\"", TMPL_RECORD, "empty placeholder {}");
	expect_error("\"{}\"", TMPL_PAYLOAD, "empty placeholder {}");
	expect_error("[1, {\"x\": \"{\"}]", TMPL_RECORD, "unmatched {");
	expect_error("\"{/zip}\"", TMPL_RECORD,
		     "placeholder {/zip} has no field name");
	expect_error("\"{->owners}\"", TMPL_RECORD,
		     "placeholder {->owners} has no field name before ->");
	expect_error("\"{owner->}\"", TMPL_RECORD,
		     "placeholder {owner->}: the collection after -> must be");
	expect_error("\"{owner->"
		     "12345678901234567890123456789012345678901234567890"
		     "123456789012345}\"",
		     TMPL_RECORD, "the collection after -> must be 1 to 64");
	expect_error("\"{f/a~2}\"", TMPL_RECORD,
		     "placeholder {f/a~2}: bad JSON pointer");
	expect_error("\"{a\\u0000b}\"", TMPL_RECORD,
		     "contains a NUL character");
	char long_field[200] = "\"{";
	memset(long_field + 2, 'f', 129);
	strcpy(long_field + 131, "}\"");
	expect_error(long_field, TMPL_RECORD, "field name is over 128 bytes");

	expect_error("\"{name}\"", TMPL_PAYLOAD,
		     "placeholder {name} is not a JSON pointer");
	expect_error("\"id-{/a~}\"", TMPL_PAYLOAD,
		     "placeholder {/a~} is not a valid JSON pointer");
	expect_error("{\"from\": 5}", TMPL_PAYLOAD,
		     "from must be a JSON pointer");
	expect_error("{\"from\": \"amount\"}", TMPL_PAYLOAD,
		     "from must be a JSON pointer");
	expect_error("{\"from\": \"/a\", \"multiply\": \"2\"}", TMPL_PAYLOAD,
		     "multiply must be a number");
	expect_error("{\"from\": \"/a\", \"round\": \"up\"}", TMPL_PAYLOAD,
		     "round must be floor, ceil or nearest");
	expect_error("{\"x\": {\"from\": \"/a\", \"round\": 1}}", TMPL_PAYLOAD,
		     "round must be floor, ceil or nearest");
	/* A misspelt option is an error, not a literal object. */
	expect_error("{\"v\": {\"from\": \"/a\", \"mutliply\": 2}}",
		     TMPL_PAYLOAD,
		     "a computed value takes only from, multiply");

	/* 64 nested containers compile; 65 do not. */
	char deep[200];
	memset(deep, '[', 64);
	memset(deep + 64, ']', 64);
	deep[128] = '\0';
	tmpl *t = compile(deep, TMPL_RECORD);
	tmpl_free(t);
	memset(deep, '[', 65);
	memset(deep + 65, ']', 65);
	deep[130] = '\0';
	expect_error(deep, TMPL_RECORD, "nested more than 64 levels");

	/* NULL why is allowed. */
	json_t *v = parse("\"{\"");
	CHECK_ERR(tmpl_compile(&t, v, TMPL_RECORD, NULL, 0), FERRY_E_INVALID);
	json_decref(v);
}

static void test_record_render(void)
{
	json_t *rec = parse(record_json);
	char why[256];

	/* Lone placeholders keep their type. */
	CHECK_JSON(render_rec("\"{age}\"", TMPL_BODY, rec, why, sizeof(why)),
		   "42");
	CHECK_JSON(render_rec("\"{addr}\"", TMPL_BODY, rec, why, sizeof(why)),
		   "{\"city\": \"Oslo\", \"zip\": [1, 2]}");
	CHECK_JSON(render_rec("\"{vip}\"", TMPL_TEXT, rec, why, sizeof(why)),
		   "true");
	CHECK_JSON(
		render_rec("\"{nothing}\"", TMPL_BODY, rec, why, sizeof(why)),
		"null");
	CHECK_JSON(render_rec("\"{addr/zip/1}\"", TMPL_BODY, rec, why,
			      sizeof(why)),
		   "2");
	CHECK_JSON(render_rec("\"{@id}\"", TMPL_BODY, rec, why, sizeof(why)),
		   "991");
	CHECK_JSON(render_rec("\"{owner->owners}\"", TMPL_BODY, rec, why,
			      sizeof(why)),
		   "\"X7\"");

	/* Mixed text: strings as they are, other values compact JSON. */
	CHECK_JSON(render_rec("\"{name} ({age}, {vip}, {nothing}) {addr} "
			      "{@scope}/{@collection}/{@key}\"",
			      TMPL_BODY, rec, why, sizeof(why)),
		   "\"Ann (42, true, null) {\\\"city\\\":\\\"Oslo\\\","
		   "\\\"zip\\\":[1,2]} clinic-7/patients/p-1\"");

	/* Brace escapes, around and next to placeholders. */
	CHECK_JSON(render_rec("\"{{{name}}} {{x}} }}{{\"", TMPL_TEXT, rec, why,
			      sizeof(why)),
		   "\"{Ann} {x} }{\"");
	tmpl *t = compile("\"{{literal}}\"", TMPL_RECORD);
	CHECK(tmpl_is_constant(t));
	CHECK_JSON(
		tmpl_render_record(t, TMPL_URL, NULL, NULL, why, sizeof(why)),
		"\"{literal}\"");
	tmpl_free(t);

	/* URLs: values percent-encoded, the literal text not. */
	CHECK_JSON(render_rec("\"/owners/{odd}?q={name}&n={age}&t={@key}\"",
			      TMPL_URL, rec, why, sizeof(why)),
		   "\"/owners/a%20b%2Fc%3Fd%26%C3%A9?q=Ann&n=42&t=p-1\"");
	CHECK_JSON(render_rec("\"{odd}\"", TMPL_URL, rec, why, sizeof(why)),
		   "\"a%20b%2Fc%3Fd%26%C3%A9\"");
	CHECK_JSON(render_rec("\"{age}\"", TMPL_URL, rec, why, sizeof(why)),
		   "\"42\"");
	CHECK_JSON(
		render_rec("\"{addr}\"", TMPL_URL, rec, why, sizeof(why)),
		"\"%7B%22city%22%3A%22Oslo%22%2C%22zip%22%3A%5B1%2C2%5D%7D\"");
	CHECK_JSON(render_rec("\"{odd}\"", TMPL_TEXT, rec, why, sizeof(why)),
		   "\"a b/c?d&\u00e9\"");
	json_decref(rec);
}

static void test_body(void)
{
	json_t *rec = parse(record_json);
	char why[256];
	const char *body =
		"{\"name\": \"{name}\", \"phone\": \"{phone}\", \"const\": "
		"{\"n\": 1, \"s\": \"{{x}}\"}, \"nested\": {\"p\": \"{phone}\","
		" \"c\": \"{addr/city}\", \"z\": \"{addr/zip/7}\"}, "
		"\"list\": [\"{phone}\", \"{age}\", 3, \"{addr/nope}\"], "
		"\"owner\": \"{owner->owners}\"}";
	CHECK_JSON(render_rec(body, TMPL_BODY, rec, why, sizeof(why)),
		   "{\"name\": \"Ann\", \"const\": {\"n\": 1, \"s\": \"{x}\"},"
		   " \"nested\": {\"c\": \"Oslo\"}, \"list\": [null, 42, 3, "
		   "null], \"owner\": \"X7\"}");

	/* Absent inside text is an error even in a body. */
	CHECK(render_rec("{\"p\": \"tel {phone}\"}", TMPL_BODY, rec, why,
			 sizeof(why)) == NULL);
	CHECK(strcmp(why, "{phone} is absent") == 0);
	/* A lone absent placeholder at the top cannot be dropped. */
	CHECK(render_rec("\"{phone}\"", TMPL_BODY, rec, why, sizeof(why)) ==
	      NULL);
	CHECK(strcmp(why, "{phone} is absent") == 0);

	/* TEXT and URL: absent anywhere is an error naming the placeholder
	 * as written. */
	CHECK(render_rec("\"{phone}\"", TMPL_TEXT, rec, why, sizeof(why)) ==
	      NULL);
	CHECK(strcmp(why, "{phone} is absent") == 0);
	CHECK(render_rec("\"/x/{addr/zip/9}\"", TMPL_URL, rec, why,
			 sizeof(why)) == NULL);
	CHECK(strcmp(why, "{addr/zip/9} is absent") == 0);
	CHECK(render_rec("{\"h\": \"{phone}\"}", TMPL_TEXT, rec, why,
			 sizeof(why)) == NULL);
	CHECK(strcmp(why, "{phone} is absent") == 0);
	json_object_del(rec, "id");
	CHECK(render_rec("\"/owners/{@id}\"", TMPL_URL, rec, why,
			 sizeof(why)) == NULL);
	CHECK(strcmp(why, "{@id} is absent") == 0);

	/* Fatal resolver errors stop rendering, their text passed on. */
	json_object_set_new(json_object_get(rec, "fields"), "owner",
			    json_string("o-2"));
	CHECK(render_rec("{\"a\": \"{name}\", \"o\": \"{owner->owners}\"}",
			 TMPL_BODY, rec, why, sizeof(why)) == NULL);
	CHECK(strcmp(why, "{owner->owners} could not be resolved") == 0);
	json_object_set_new(rec, "fatal",
			    json_string("owner o-2 is a dead letter"));
	CHECK(render_rec("[\"{name}\"]", TMPL_BODY, rec, why, sizeof(why)) ==
	      NULL);
	CHECK(strcmp(why, "owner o-2 is a dead letter") == 0);
	CHECK(render_rec("\"x{name}\"", TMPL_TEXT, rec, why, sizeof(why)) ==
	      NULL);
	CHECK(strcmp(why, "owner o-2 is a dead letter") == 0);

	/* Wrong kind or no resolver. */
	tmpl *t = compile("\"{/a}\"", TMPL_PAYLOAD);
	CHECK(tmpl_render_record(t, TMPL_BODY, resolve, rec, why,
				 sizeof(why)) == NULL);
	tmpl_free(t);
	t = compile("\"{a}\"", TMPL_RECORD);
	CHECK(tmpl_render_payload(t, TMPL_BODY, rec, why, sizeof(why)) == NULL);
	CHECK(tmpl_render_record(t, TMPL_BODY, NULL, NULL, why, sizeof(why)) ==
	      NULL);
	CHECK(strstr(why, "{a}") != NULL);
	tmpl_free(t);
	json_decref(rec);
}

static const char *const doc_json =
	"{\"a\": {\"b\": [10, 20, {\"c\": \"x\"}]}, \"m~n\": 1, \"s/t\": 2,"
	" \"\": 3, \"amount\": 12.345, \"neg\": -1.5, \"int\": 7, "
	"\"big\": 1e300, \"text\": \"12\", \"name\": \"a b\", "
	"\"0\": \"zero\", \"01\": \"one\"}";

static json_t *render_pay(const char *tmpl_text_, tmpl_mode mode,
			  const json_t *doc, char *why, size_t why_len)
{
	tmpl *t = compile(tmpl_text_, TMPL_PAYLOAD);
	json_t *out = tmpl_render_payload(t, mode, doc, why, why_len);
	tmpl_free(t);
	return out;
}

static void test_payload(void)
{
	json_t *doc = parse(doc_json);
	char why[256];

	CHECK_JSON(render_pay("\"{/a/b/1}\"", TMPL_BODY, doc, why, sizeof(why)),
		   "20");
	CHECK_JSON(render_pay("\"{/a}\"", TMPL_BODY, doc, why, sizeof(why)),
		   "{\"b\": [10, 20, {\"c\": \"x\"}]}");
	CHECK_JSON(render_pay("\"{/a/b/2/c}-{/m~0n}-{/s~1t}-{/}-{/0}-{/01}\"",
			      TMPL_TEXT, doc, why, sizeof(why)),
		   "\"x-1-2-3-zero-one\"");
	CHECK_JSON(render_pay("\"/v/{/name}?a={/amount}\"", TMPL_URL, doc, why,
			      sizeof(why)),
		   "\"/v/a%20b?a=12.345\"");

	/* Absent: past the end, leading zero, "-", not an index, member of
	 * a scalar. */
	static const char *const absent[] = {
		"{/a/b/3}", "{/a/b/01}",
		"{/a/b/-}", "{/a/b/x}",
		"{/int/0}", "{/nope}",
		"{/a/b/}",  "{/a/b/99999999999999999999}",
	};
	for (size_t i = 0; i < sizeof(absent) / sizeof(absent[0]); i++) {
		char text[64], want[80];
		snprintf(text, sizeof(text), "\"%s\"", absent[i]);
		CHECK(render_pay(text, TMPL_TEXT, doc, why, sizeof(why)) ==
		      NULL);
		snprintf(want, sizeof(want), "%s is absent", absent[i]);
		if (strcmp(why, want) != 0)
			test_fail(__FILE__, __LINE__, "why %s, want %s", why,
				  want);
	}
	CHECK_JSON(render_pay("{\"x\": \"{/nope}\", \"y\": [\"{/nope}\"], "
			      "\"z\": \"{/int}\"}",
			      TMPL_BODY, doc, why, sizeof(why)),
		   "{\"y\": [null], \"z\": 7}");
	/* No document: everything is absent. */
	CHECK_JSON(render_pay("{\"x\": \"{/a}\"}", TMPL_BODY, NULL, why,
			      sizeof(why)),
		   "{}");

	/* The result never shares with the document. */
	json_t *out = render_pay("\"{/a}\"", TMPL_BODY, doc, why, sizeof(why));
	CHECK(out && out != json_object_get(doc, "a"));
	json_object_set_new(out, "added", json_true());
	CHECK(json_object_get(json_object_get(doc, "a"), "added") == NULL);
	json_decref(out);
	json_decref(doc);
}

static void test_computed(void)
{
	json_t *doc = parse(doc_json);
	char why[256];

	CHECK_JSON(render_pay("{\"c\": {\"const\": \"{/a}\"}, \"o\": "
			      "{\"const\": {\"from\": \"/x\"}}}",
			      TMPL_BODY, doc, why, sizeof(why)),
		   "{\"c\": \"{/a}\", \"o\": {\"from\": \"/x\"}}");
	tmpl *t = compile("{\"c\": {\"const\": 5}}", TMPL_PAYLOAD);
	CHECK(tmpl_is_constant(t));
	tmpl_free(t);
	t = compile("{\"c\": {\"from\": \"/a\"}}", TMPL_PAYLOAD);
	CHECK(!tmpl_is_constant(t));
	tmpl_free(t);

	CHECK_JSON(render_pay("{"
			      "\"near\": {\"from\": \"/amount\", \"multiply\": "
			      "100, \"round\": \"nearest\"},"
			      "\"floor\": {\"from\": \"/amount\", "
			      "\"multiply\": 100, \"round\": \"floor\"},"
			      "\"ceil\": {\"from\": \"/amount\", \"multiply\": "
			      "100, \"round\": \"ceil\"},"
			      "\"nfloor\": {\"from\": \"/neg\", \"round\": "
			      "\"floor\"},"
			      "\"nnear\": {\"from\": \"/neg\", \"round\": "
			      "\"nearest\"},"
			      "\"real\": {\"from\": \"/int\", \"multiply\": "
			      "0.5},"
			      "\"int\": {\"from\": \"/int\", \"round\": "
			      "\"ceil\"},"
			      "\"copy\": {\"from\": \"/a/b\"},"
			      "\"huge\": {\"from\": \"/big\", \"round\": "
			      "\"floor\"},"
			      "\"dflt\": {\"from\": \"/nope\", \"default\": "
			      "[0]},"
			      "\"used\": {\"from\": \"/int\", \"default\": 0},"
			      "\"gone\": {\"from\": \"/nope\", \"multiply\": 2}"
			      "}",
			      TMPL_BODY, doc, why, sizeof(why)),
		   "{\"near\": 1235, \"floor\": 1234, \"ceil\": 1235, "
		   "\"nfloor\": -2, \"nnear\": -2, \"real\": 3.5, \"int\": 7, "
		   "\"copy\": [10, 20, {\"c\": \"x\"}], \"huge\": 1e300, "
		   "\"dflt\": [0], \"used\": 7}");
	/* Rounded: an integer; multiplied only: a real. */
	json_t *out = render_pay("[{\"from\": \"/amount\", \"round\": "
				 "\"floor\"}, {\"from\": \"/int\", "
				 "\"multiply\": 1}]",
				 TMPL_BODY, doc, why, sizeof(why));
	CHECK(out && json_is_integer(json_array_get(out, 0)));
	CHECK(json_is_real(json_array_get(out, 1)));
	json_decref(out);

	/* Not a number with multiply or round: an error naming the pointer. */
	CHECK(render_pay("{\"v\": {\"from\": \"/text\", \"multiply\": 2}}",
			 TMPL_BODY, doc, why, sizeof(why)) == NULL);
	CHECK(strcmp(why, "/text is not a number") == 0);
	CHECK(render_pay("{\"v\": {\"from\": \"/a\", \"round\": \"ceil\"}}",
			 TMPL_BODY, doc, why, sizeof(why)) == NULL);
	CHECK(strcmp(why, "/a is not a number") == 0);
	/* Overflow to infinity. */
	CHECK(render_pay("{\"v\": {\"from\": \"/big\", \"multiply\": 1e300}}",
			 TMPL_BODY, doc, why, sizeof(why)) == NULL);
	CHECK(strstr(why, "/big") && strstr(why, "not a finite number"));
	/* Absent without a default: dropped in a body, an error in text. */
	CHECK(render_pay("{\"from\": \"/nope\"}", TMPL_TEXT, doc, why,
			 sizeof(why)) == NULL);
	CHECK(strcmp(why, "/nope is absent") == 0);

	/* A fields map (TMPL_FIELDS) may name fields "from" and "const";
	 * the values below the root are still computed. */
	t = compile("{\"from\": \"{/name}\", \"const\": {\"const\": 1}}",
		    TMPL_FIELDS);
	CHECK_JSON(tmpl_render_payload(t, TMPL_BODY, doc, why, sizeof(why)),
		   "{\"from\": \"a b\", \"const\": 1}");
	tmpl_free(t);

	/* Record templates have no computed values. */
	t = compile("{\"v\": {\"const\": \"{x}\"}}", TMPL_RECORD);
	seen s = {""};
	tmpl_each_ref(t, collect, &s);
	CHECK(strcmp(s.text, "F:x:;") == 0);
	tmpl_free(t);
	json_decref(doc);
}

static void test_pointers(void)
{
	CHECK(tmpl_pointer_valid(""));
	CHECK(tmpl_pointer_valid("/"));
	CHECK(tmpl_pointer_valid("//"));
	CHECK(tmpl_pointer_valid("/a/0/~0~1"));
	CHECK(tmpl_pointer_valid("/ with space/\u00e9"));
	CHECK(!tmpl_pointer_valid(NULL));
	CHECK(!tmpl_pointer_valid("a"));
	CHECK(!tmpl_pointer_valid("a/b"));
	CHECK(!tmpl_pointer_valid("/~"));
	CHECK(!tmpl_pointer_valid("/~2"));
	CHECK(!tmpl_pointer_valid("/a~"));
	CHECK(!tmpl_pointer_valid("/~/"));

	json_t *doc = parse(doc_json);
	CHECK(tmpl_pointer_get(doc, "") == doc);
	CHECK(tmpl_pointer_get(NULL, "") == NULL);
	CHECK(tmpl_pointer_get(doc, NULL) == NULL);
	CHECK(json_integer_value(tmpl_pointer_get(doc, "/m~0n")) == 1);
	CHECK(json_integer_value(tmpl_pointer_get(doc, "/s~1t")) == 2);
	CHECK(json_integer_value(tmpl_pointer_get(doc, "/")) == 3);
	CHECK(json_integer_value(tmpl_pointer_get(doc, "/a/b/0")) == 10);
	CHECK(tmpl_pointer_get(doc, "/a/b/00") == NULL);
	CHECK(tmpl_pointer_get(doc, "/a/b/-1") == NULL);
	CHECK(tmpl_pointer_get(doc, "a") == NULL);
	CHECK(tmpl_pointer_get(doc, "/a~2") == NULL);
	/* ~01 is "~1" (decoded once, left to right), not "/". */
	json_object_set_new(doc, "~1", json_integer(9));
	CHECK(json_integer_value(tmpl_pointer_get(doc, "/~01")) == 9);
	/* A token longer than the stack buffer. */
	char key[600], ptr[602];
	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	json_object_set_new(doc, key, json_integer(8));
	snprintf(ptr, sizeof(ptr), "/%s", key);
	CHECK(json_integer_value(tmpl_pointer_get(doc, ptr)) == 8);
	json_decref(doc);
}

static void test_text(void)
{
	json_t *v = json_string("a b");
	char *s = tmpl_text(v);
	CHECK(s && strcmp(s, "a b") == 0);
	free(s);
	json_decref(v);
	v = parse("{\"a\": [1, true]}");
	s = tmpl_text(v);
	CHECK(s && strcmp(s, "{\"a\":[1,true]}") == 0);
	free(s);
	json_decref(v);
	v = json_integer(42);
	s = tmpl_text(v);
	CHECK(s && strcmp(s, "42") == 0);
	free(s);
	json_decref(v);
	CHECK(tmpl_text(NULL) == NULL);

	/* Literal text may hold NUL bytes; they survive rendering. */
	json_t *rec = parse(record_json);
	char why[256];
	json_t *out = render_rec("\"a\\u0000b {name}\"", TMPL_TEXT, rec, why,
				 sizeof(why));
	CHECK(out && json_string_length(out) == 7 &&
	      memcmp(json_string_value(out), "a\0b Ann", 7) == 0);
	json_decref(out);
	json_decref(rec);
	tmpl_free(NULL);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	test_refs();
	test_compile_errors();
	test_record_render();
	test_body();
	test_payload();
	test_computed();
	test_pointers();
	test_text();
	printf("template_test: ok\n");
	return 0;
}
