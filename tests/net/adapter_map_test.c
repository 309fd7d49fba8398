/*
 * adapter_map_test.c — webhook payloads and pulled items mapped into record
 * writes (net/adapter_map.c): render errors that name the member and the
 * pointer, integer keys and ids, computed values; applying creates the
 * record, writes only what changed, follows the adapter's links, and
 * leaves the state that keeps values from being pushed back.
 */
#include <string.h>

#include "adapter_config.h"
#include "adapter_map.h"
#include "adapter_state.h"
#include "ferry_json.h"
#include "testing.h"

#define ADAPTER "acc"

/* The accounting -> loyalty mapping of docs/adapters/accounting.md, and a
 * second write keyed by an integer. */
static const char config_text[] =
	"{\"adapters\": [{\"name\": \"acc\", \"webhook\": {"
	"  \"auth\": {\"hmac\": {\"secret\": \"acc_hook\"}},"
	"  \"event_id\": \"/event_id\","
	"  \"writes\": ["
	"    {\"scope\": \"{/branch}\", \"collection\": \"loyalty\","
	"     \"key\": \"visit-{/visit_id}\", \"id\": \"{/visit_id}\","
	"     \"fields\": {\"client\": \"{/client/id}\","
	"                \"visit\": \"{/visit_id}\","
	"                \"amount\": \"{/amount}\","
	"                \"points\": {\"from\": \"/amount\", \"multiply\": 0.1,"
	"                           \"round\": \"floor\"},"
	"                \"source\": {\"const\": \"accounting\"},"
	"                \"note\": {\"from\": \"/note\", \"default\": \"\"}}},"
	"    {\"scope\": \"head\", \"collection\": \"clients\","
	"     \"key\": \"{/client/id}\", \"id\": \"{/client/id}\","
	"     \"fields\": {\"name\": \"{/client/name}\"}}"
	"  ]}}]}";

static adapter_config *load_config(void)
{
	json_error_t jerr;
	char why[512];
	adapter_config *cfg = NULL;
	json_t *doc = json_loads(config_text, 0, &jerr);
	if (!doc)
		test_fail(__FILE__, __LINE__, "config: %s", jerr.text);
	if (adapter_config_parse(&cfg, doc, why, sizeof(why)))
		test_fail(__FILE__, __LINE__, "config: %s", why);
	json_decref(doc);
	CHECK(cfg->n == 1 && cfg->adapters[0].webhook);
	CHECK(cfg->adapters[0].webhook->nwrites == 2);
	return cfg;
}

static json_t *parse(const char *text)
{
	json_error_t jerr;
	json_t *doc = json_loads(text, 0, &jerr);
	if (!doc)
		test_fail(__FILE__, __LINE__, "%s: %s", text, jerr.text);
	return doc;
}

static const char visit[] =
	"{\"event_id\": \"ev-1\", \"branch\": \"clinic-7\", \"visit_id\": 991,"
	" \"amount\": 1234.5, \"client\": {\"id\": 42, \"name\": \"Anna\"}}";

/* mapped must be all NULL after a failure. */
static int cleared(const adapter_mapped *m)
{
	return !m->scope && !m->collection && !m->key && !m->id && !m->fields;
}

/* Render `text` with mapping `m`; must fail naming every string of `want`. */
static void render_fails(const adapter_mapping *m, const char *text,
			 const char *want1, const char *want2)
{
	adapter_mapped out;
	char why[256];
	json_t *doc = parse(text);
	memset(&out, 0x5a, sizeof(out));
	CHECK_ERR(adapter_map_render(&out, m, doc, why, sizeof(why)),
		  FERRY_E_INVALID);
	CHECK(cleared(&out));
	if (!strstr(why, want1) || (want2 && !strstr(why, want2)))
		test_fail(__FILE__, __LINE__,
			  "why \"%s\" should name \"%s\" and \"%s\"", why,
			  want1, want2 ? want2 : "");
	json_decref(doc);
}

static void test_render(const adapter_config *cfg)
{
	const adapter_webhook *wh = cfg->adapters[0].webhook;
	adapter_mapped out;
	char why[256];
	json_t *doc = parse(visit);

	CHECK_OK(adapter_map_render(&out, &wh->writes[0], doc, why,
				    sizeof(why)));
	CHECK(!strcmp(out.scope, "clinic-7"));
	CHECK(!strcmp(out.collection, "loyalty"));
	CHECK(!strcmp(out.key, "visit-991"));
	/* A lone placeholder keeps the payload's type. */
	CHECK(json_is_integer(out.id) && json_integer_value(out.id) == 991);
	CHECK(json_integer_value(json_object_get(out.fields, "client")) == 42);
	CHECK(json_real_value(json_object_get(out.fields, "amount")) == 1234.5);
	/* floor(1234.5 * 0.1) = 123, an integer. */
	CHECK(json_is_integer(json_object_get(out.fields, "points")));
	CHECK(json_integer_value(json_object_get(out.fields, "points")) == 123);
	CHECK(!strcmp(json_string_value(json_object_get(out.fields, "source")),
		      "accounting"));
	CHECK(!strcmp(json_string_value(json_object_get(out.fields, "note")),
		      ""));
	adapter_mapped_clear(&out);
	CHECK(cleared(&out));
	adapter_mapped_clear(NULL);

	/* An integer key becomes its decimal text; the id stays 42. */
	CHECK_OK(adapter_map_render(&out, &wh->writes[1], doc, why,
				    sizeof(why)));
	CHECK(!strcmp(out.scope, "head") && !strcmp(out.key, "42"));
	CHECK(json_integer_value(out.id) == 42);
	adapter_mapped_clear(&out);
	json_decref(doc);

	/* Absent pointers name the member and the pointer. */
	render_fails(&wh->writes[0], "{\"visit_id\": 1, \"amount\": 1}",
		     "scope", "{/branch}");
	render_fails(&wh->writes[0], "{\"branch\": \"b\", \"amount\": 1}",
		     "key", "{/visit_id}");
	render_fails(&wh->writes[1], "{\"client\": {}}", "key", "{/client/id}");
	/* Wrong values. */
	render_fails(&wh->writes[0],
		     "{\"branch\": {\"a\": 1}, \"visit_id\": 1, \"amount\": 1}",
		     "scope", "an object");
	render_fails(&wh->writes[0],
		     "{\"branch\": \"\", \"visit_id\": 1, \"amount\": 1}",
		     "scope", "empty");
	render_fails(&wh->writes[1], "{\"client\": {\"id\": true}}", "key",
		     "gives true");
	render_fails(&wh->writes[1], "{\"client\": {\"id\": 1.5}}", "key",
		     "fraction");
	/* Within ferry's limits. */
	{
		char big[400];
		memset(big, 'x', 300);
		big[300] = '\0';
		char text[512];
		snprintf(text, sizeof(text),
			 "{\"branch\": \"b\", \"visit_id\": \"%s\"}", big);
		render_fails(&wh->writes[0], text, "key", "limit is 256");
		snprintf(text, sizeof(text),
			 "{\"branch\": \"%.70s\", \"visit_id\": 1}", big);
		render_fails(&wh->writes[0], text, "scope", "limit is 64");
	}
	/* A computed value over a non-number names its pointer. */
	render_fails(&wh->writes[0],
		     "{\"branch\": \"b\", \"visit_id\": 1, \"amount\": \"x\"}",
		     "fields", "/amount");
	/* Every field absent: nothing to write. */
	render_fails(&wh->writes[1], "{\"client\": {\"id\": 7}}", "fields",
		     "none");
}

/* Render `text` with write 0 and apply it in one transaction; returns the
 * number of fields written. `mapped` (if not NULL) gets the applied
 * scope and key. */
static size_t apply_doc(ferry_node *node, const adapter_mapping *m,
			const char *text, char *scope_out, char *key_out)
{
	adapter_mapped out;
	ferry_txn *txn;
	char why[256];
	size_t written = 99;
	json_t *doc = parse(text);
	if (adapter_map_render(&out, m, doc, why, sizeof(why)))
		test_fail(__FILE__, __LINE__, "render: %s", why);
	CHECK_NODE_OK(node, ferry_txn_begin(&txn, node));
	if (adapter_map_apply(txn, node, ADAPTER, &out, &written, why,
			      sizeof(why)))
		test_fail(__FILE__, __LINE__, "apply: %s", why);
	CHECK_NODE_OK(node, ferry_txn_commit(txn));
	if (scope_out)
		strcpy(scope_out, out.scope);
	if (key_out)
		strcpy(key_out, out.key);
	adapter_mapped_clear(&out);
	json_decref(doc);
	return written;
}

/* The record's field as JSON (a new reference), or NULL. */
static json_t *field(ferry_node *node, const char *scope, const char *key,
		     const char *name)
{
	ferry_record *rec;
	json_t *v = NULL;
	if (ferry_get(&rec, node, scope, "loyalty", key))
		return NULL;
	const ferry_field_info *f = ferry_record_find(rec, name);
	if (f)
		CHECK_OK(ferry_json_from_msgpack(&v, f->value, f->value_len));
	ferry_record_free(rec);
	return v;
}

static uint64_t last_cursor(ferry_node *node)
{
	uint64_t cursor = 0;
	CHECK_NODE_OK(node,
		      ferry_record_state(NULL, NULL, &cursor, node, "clinic-7",
					 "loyalty", "visit-991"));
	return cursor;
}

static void test_apply(const adapter_config *cfg)
{
	const adapter_mapping *m = &cfg->adapters[0].webhook->writes[0];
	ferry_node *node = test_node("adapter_map_apply", 0);
	char scope[80], key[300];
	json_t *v, *state, *link, *id = json_integer(991);

	/* Creates the record with every mapped field. */
	CHECK_EQ_U64(apply_doc(node, m, visit, scope, key), 6);
	CHECK(!strcmp(scope, "clinic-7") && !strcmp(key, "visit-991"));
	v = field(node, "clinic-7", "visit-991", "points");
	CHECK(json_integer_value(v) == 123);
	json_decref(v);
	v = field(node, "clinic-7", "visit-991", "client");
	CHECK(json_integer_value(v) == 42);
	json_decref(v);

	/* The state: the id, a hash of every field received, the link. */
	CHECK_NODE_OK(node, adapter_state_get(&state, node, ADAPTER, "clinic-7",
					      "loyalty", "visit-991"));
	CHECK(json_equal(adapter_state_id(state), id));
	v = json_integer(123);
	CHECK(adapter_state_synced(state, "points", v));
	json_decref(v);
	v = json_string("accounting");
	CHECK(adapter_state_synced(state, "source", v));
	json_decref(v);
	CHECK(json_object_size(json_object_get(state, "h")) == 6);
	json_decref(state);
	CHECK_NODE_OK(node,
		      adapter_link_get(&link, node, ADAPTER, "loyalty", id));
	CHECK(!strcmp(json_string_value(json_object_get(link, "s")),
		      "clinic-7"));
	CHECK(!strcmp(json_string_value(json_object_get(link, "k")),
		      "visit-991"));
	json_decref(link);

	/* The same document again writes nothing: no new change. */
	uint64_t before = last_cursor(node);
	CHECK_EQ_U64(apply_doc(node, m, visit, NULL, NULL), 0);
	CHECK_EQ_U64(last_cursor(node), before);

	/* One changed value: only that field. */
	CHECK_EQ_U64(apply_doc(node, m,
			       "{\"branch\": \"clinic-7\", \"visit_id\": 991,"
			       " \"amount\": 1234.5, \"client\": {\"id\": 42},"
			       " \"note\": \"birthday\"}",
			       NULL, NULL),
		     1);
	v = field(node, "clinic-7", "visit-991", "note");
	CHECK(!strcmp(json_string_value(v), "birthday"));
	json_decref(v);
	CHECK(last_cursor(node) > before);
	CHECK_NODE_OK(node, adapter_state_get(&state, node, ADAPTER, "clinic-7",
					      "loyalty", "visit-991"));
	v = json_string("birthday");
	CHECK(adapter_state_synced(state, "note", v));
	json_decref(v);
	json_decref(state);

	/* The linked id wins over the rendered scope and key: the visit
	 * reported by another branch updates the record it is linked to. */
	CHECK_EQ_U64(apply_doc(node, m,
			       "{\"branch\": \"clinic-9\", \"visit_id\": 991,"
			       " \"amount\": 2000, \"client\": {\"id\": 42},"
			       " \"note\": \"birthday\"}",
			       scope, key),
		     2); /* amount and points */
	CHECK(!strcmp(scope, "clinic-7") && !strcmp(key, "visit-991"));
	v = field(node, "clinic-7", "visit-991", "points");
	CHECK(json_integer_value(v) == 200);
	json_decref(v);
	ferry_record *rec;
	CHECK_ERR(ferry_get(&rec, node, "clinic-9", "loyalty", "visit-991"),
		  FERRY_E_NOT_FOUND);

	/* A link made elsewhere (by a push's create) to another key. */
	json_t *id2 = json_integer(555);
	ferry_txn *txn;
	CHECK_NODE_OK(node, ferry_txn_begin(&txn, node));
	CHECK_OK(adapter_link_txn_put(txn, ADAPTER, "clinic-7", "loyalty",
				      "legacy-555", id2));
	CHECK_NODE_OK(node, ferry_txn_commit(txn));
	CHECK_EQ_U64(apply_doc(node, m,
			       "{\"branch\": \"clinic-7\", \"visit_id\": 555,"
			       " \"amount\": 10}",
			       scope, key),
		     5); /* no client: that field is left out */
	CHECK(!strcmp(key, "legacy-555"));
	v = field(node, "clinic-7", "legacy-555", "visit");
	CHECK(json_integer_value(v) == 555);
	json_decref(v);
	CHECK_ERR(ferry_get(&rec, node, "clinic-7", "loyalty", "visit-555"),
		  FERRY_E_NOT_FOUND);
	json_decref(id2);
	json_decref(id);
	ferry_node_close(node);
}

/* A field the hub would refuse is refused here, naming it, and the
 * transaction gets nothing. */
static void test_apply_refused(const adapter_config *cfg)
{
	const adapter_mapping *m = &cfg->adapters[0].webhook->writes[0];
	ferry_node *node = test_node("adapter_map_refused", 0);
	char text[512], nested[200], why[256];
	adapter_mapped out;
	ferry_txn *txn;
	size_t written = 7, n = 0;

	/* A note nested 30 levels deep: over FERRY_JSON_MAX_DEPTH. */
	for (int i = 0; i < 30; i++)
		nested[n++] = '[';
	for (int i = 0; i < 30; i++)
		nested[n++] = ']';
	nested[n] = '\0';
	snprintf(text, sizeof(text),
		 "{\"branch\": \"b\", \"visit_id\": 1, \"amount\": 1,"
		 " \"note\": %s}",
		 nested);
	json_t *doc = parse(text);
	CHECK_OK(adapter_map_render(&out, m, doc, why, sizeof(why)));
	CHECK_NODE_OK(node, ferry_txn_begin(&txn, node));
	CHECK_ERR(adapter_map_apply(txn, node, ADAPTER, &out, &written, why,
				    sizeof(why)),
		  FERRY_E_INVALID);
	CHECK(written == 0);
	if (!strstr(why, "\"note\""))
		test_fail(__FILE__, __LINE__, "why \"%s\" should name note",
			  why);
	ferry_txn_abort(txn);
	adapter_mapped_clear(&out);
	json_decref(doc);

	ferry_node_close(node);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	adapter_config *cfg = load_config();
	test_render(cfg);
	test_apply(cfg);
	test_apply_refused(cfg);
	adapter_config_free(cfg);
	printf("adapter_map_test: ok\n");
	return 0;
}
