/*
 * adapter_config_test.c — the adapters' configuration file
 * (net/adapter_config.c): the documented example lands in the structs with
 * every default applied, each kind of mistake is reported at the member
 * that holds it, and adapter_config_load names the file, line and column.
 *
 * Documents are written with single quotes for readability; doc() turns
 * them into JSON. It lets a repeated member replace the earlier one, so a
 * case can override a member of the macros' valid defaults (PULL, ...).
 */
#include <errno.h>
#include <string.h>

#include "adapter_config.h"
#include "testing.h"

static json_t *doc(const char *text)
{
	char *s = strdup(text);
	CHECK(s != NULL);
	for (char *c = s; *c; c++)
		if (*c == '\'')
			*c = '"';
	json_error_t jerr;
	json_t *d = json_loads(s, 0, &jerr);
	if (!d)
		test_fail(__FILE__, __LINE__, "bad test JSON %s: %d:%d: %s", s,
			  jerr.line, jerr.column, jerr.text);
	free(s);
	return d;
}

static adapter_config *parse_ok(const char *text)
{
	char why[512];
	adapter_config *cfg;
	json_t *d = doc(text);
	ferry_err err = adapter_config_parse(&cfg, d, why, sizeof(why));
	json_decref(d);
	if (err)
		test_fail(__FILE__, __LINE__, "%s: %s\n%s", ferry_err_name(err),
			  why, text);
	return cfg;
}

/* The docs/adapters.md example, except for the push scope: the docs write
 * "clinic-*", which is no grant pattern (a star stands alone or ends
 * "NAME/" then star; grant.h) and is refused below, so here it is the
 * prefix pattern of "clinic". */
static const char example[] =
	"{\n"
	"  \"adapters\": [\n"
	"    {\n"
	"      \"name\": \"pms\",\n"
	"      \"base_url\": \"http://pms.example.org/api\",\n"
	"      \"auth\": {\"type\": \"bearer\", \"secret\": \"pms_token\"},\n"
	"      \"headers\": {\"X-Clinic-Group\": \"north\"},\n"
	"      \"timeout_ms\": 10000,\n"
	"      \"concurrency\": 1,\n"
	"      \"retry\": {\"max_attempts\": 10, \"base_ms\": 500, "
	"\"max_ms\": 60000},\n"
	"      \"push\": {\n"
	"        \"scopes\": [\"clinic/*\"],\n"
	"        \"collections\": {\n"
	"          \"owners\": {\n"
	"            \"store_id\": \"pms_id\",\n"
	"            \"create\": {\"method\": \"POST\", \"url\": \"/owners\",\n"
	"                       \"body\": {\"name\": \"{full_name}\", "
	"\"phone\": \"{phone}\"},\n"
	"                       \"id_from\": \"/id\"},\n"
	"            \"update\": {\"method\": \"PATCH\", \"url\": "
	"\"/owners/{@id}\",\n"
	"                       \"body\": {\"name\": \"{full_name}\", "
	"\"phone\": \"{phone}\"}},\n"
	"            \"delete\": {\"method\": \"DELETE\", \"url\": "
	"\"/owners/{@id}\"}\n"
	"          }\n"
	"        }\n"
	"      },\n"
	"      \"pulls\": [\n"
	"        {\"name\": \"doctors\", \"every_s\": 300, \"url\": "
	"\"/doctors\",\n"
	"         \"page\": {\"param\": \"_page\", \"size_param\": \"_limit\", "
	"\"size\": 100},\n"
	"         \"scope\": \"head-office\", \"collection\": \"doctors\",\n"
	"         \"id\": \"{/id}\", \"key\": \"doctor-{/id}\",\n"
	"         \"fields\": {\"name\": \"{/name}\", \"speciality\": "
	"\"{/speciality}\"},\n"
	"         \"delete_missing\": true}\n"
	"      ],\n"
	"      \"webhook\": {\n"
	"        \"auth\": {\"hmac\": {\"secret\": \"pms_hook\", \"header\": "
	"\"X-Signature\",\n"
	"                          \"prefix\": \"sha256=\", \"encoding\": "
	"\"hex\"}},\n"
	"        \"event_id\": \"/event/id\",\n"
	"        \"writes\": [\n"
	"          {\"scope\": \"{/clinic}\", \"collection\": "
	"\"appointments\",\n"
	"           \"id\": \"{/appointment/id}\", \"key\": "
	"\"pms-{/appointment/id}\",\n"
	"           \"fields\": {\"status\": \"{/appointment/status}\"}}\n"
	"        ]\n"
	"      }\n"
	"    }\n"
	"  ]\n"
	"}\n";

/* Resolver for the push templates: fields from a JSON object, @id. */
static json_t *resolve(const tmpl_ref *ref, void *arg, int *fatal, char *why,
		       size_t why_len)
{
	const json_t *rec = arg;
	(void)why;
	(void)why_len;
	*fatal = 0;
	if (ref->type == TMPL_REF_ID)
		return json_string("a b");
	if (ref->type != TMPL_REF_FIELD)
		return NULL;
	json_t *v = json_object_get(rec, ref->name);
	return v ? json_incref(v) : NULL;
}

/* A payload template rendered against `payload` (single-quoted JSON), as
 * compact JSON text for comparison. */
static int payload_is(const tmpl *t, tmpl_mode mode, const char *payload,
		      const char *want)
{
	char why[256];
	json_t *d = doc(payload);
	json_t *v = tmpl_render_payload(t, mode, d, why, sizeof(why));
	json_decref(d);
	CHECK(v != NULL);
	char *text =
		json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
	json_decref(v);
	int same = strcmp(text, want) == 0;
	if (!same)
		fprintf(stderr, "rendered %s, expected %s\n", text, want);
	free(text);
	return same;
}

static int record_is(const tmpl *t, tmpl_mode mode, const char *record,
		     const char *want)
{
	char why[256];
	json_t *rec = doc(record);
	json_t *v = tmpl_render_record(t, mode, resolve, rec, why, sizeof(why));
	json_decref(rec);
	CHECK(v != NULL);
	char *text =
		json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
	json_decref(v);
	int same = strcmp(text, want) == 0;
	if (!same)
		fprintf(stderr, "rendered %s, expected %s\n", text, want);
	free(text);
	return same;
}

static void count_ref(const tmpl_ref *ref, void *arg)
{
	int *n = arg;
	CHECK(ref->type == TMPL_REF_ID);
	(*n)++;
}

static void test_example(void)
{
	char why[512];
	adapter_config *cfg;
	json_error_t jerr;
	json_t *d = json_loads(example, JSON_REJECT_DUPLICATES, &jerr);
	CHECK(d != NULL);
	ferry_err err = adapter_config_parse(&cfg, d, why, sizeof(why));
	json_decref(d);
	if (err)
		test_fail(__FILE__, __LINE__, "%s", why);
	CHECK_EQ_U64(cfg->n, 1);
	const adapter_def *a = &cfg->adapters[0];
	CHECK(adapter_config_find(cfg, "pms") == a);
	CHECK(adapter_config_find(cfg, "pm") == NULL);
	CHECK(strcmp(a->name, "pms") == 0);
	CHECK(strcmp(a->base_url, "http://pms.example.org/api") == 0);
	CHECK(a->auth.type == ADAPTER_AUTH_BEARER);
	CHECK(strcmp(a->auth.secret, "pms_token") == 0);
	CHECK(a->auth.header_name == NULL && a->auth.token_url == NULL);
	CHECK_EQ_U64(a->nheaders, 1);
	CHECK(strcmp(a->headers[0].name, "X-Clinic-Group") == 0);
	CHECK(tmpl_is_constant(a->headers[0].value));
	CHECK(record_is(a->headers[0].value, TMPL_TEXT, "{}", "\"north\""));
	CHECK_EQ_U64(a->timeout_ms, 10000);
	CHECK_EQ_U64(a->concurrency, 1);
	CHECK_EQ_U64(a->retry_max_attempts, 10);
	CHECK_EQ_U64(a->retry_base_ms, 500);
	CHECK_EQ_U64(a->retry_max_ms, 60000);

	/* Push. */
	CHECK(a->push != NULL);
	CHECK_EQ_U64(a->push->scopes.n, 1);
	CHECK(strcmp(a->push->scopes.patterns[0], "clinic/*") == 0);
	CHECK(grant_allows(&a->push->scopes, "clinic/7"));
	CHECK_EQ_U64(a->push->ncollections, 1);
	const adapter_push_collection *c = adapter_push_find(a, "owners");
	CHECK(c == &a->push->collections[0]);
	CHECK(adapter_push_find(a, "patients") == NULL);
	CHECK(strcmp(c->name, "owners") == 0);
	CHECK(strcmp(c->store_id, "pms_id") == 0);
	CHECK(strcmp(c->create.method, "POST") == 0);
	CHECK(tmpl_is_constant(c->create.url));
	CHECK(record_is(c->create.url, TMPL_URL, "{}", "\"/owners\""));
	CHECK(!tmpl_is_constant(c->create.body));
	/* A partial record sends a partial body. */
	CHECK(record_is(c->create.body, TMPL_BODY, "{'full_name':'Ann'}",
			"{\"name\":\"Ann\"}"));
	CHECK(strcmp(c->create.id_from, "/id") == 0);
	CHECK_EQ_U64(c->create.nheaders, 0);
	CHECK(strcmp(c->update.method, "PATCH") == 0);
	CHECK(record_is(c->update.url, TMPL_URL, "{}", "\"/owners/a%20b\""));
	int refs = 0;
	tmpl_each_ref(c->update.url, count_ref, &refs);
	CHECK(refs == 1);
	CHECK(c->update.body != NULL && c->update.id_from == NULL);
	CHECK(strcmp(c->del.method, "DELETE") == 0);
	CHECK(c->del.body == NULL && c->del.id_from == NULL);

	/* Pulls. */
	CHECK_EQ_U64(a->npulls, 1);
	const adapter_pull *pl = &a->pulls[0];
	CHECK(strcmp(pl->name, "doctors") == 0);
	CHECK_EQ_U64(pl->every_s, 300);
	CHECK(tmpl_is_constant(pl->url));
	CHECK(record_is(pl->url, TMPL_URL, "{}", "\"/doctors\""));
	CHECK(strcmp(pl->items, "") == 0);
	CHECK(pl->paged == 1);
	CHECK(strcmp(pl->page_param, "_page") == 0);
	CHECK(strcmp(pl->size_param, "_limit") == 0);
	CHECK_EQ_U64(pl->page_size, 100);
	CHECK(tmpl_is_constant(pl->map.scope));
	CHECK(payload_is(pl->map.scope, TMPL_TEXT, "{}", "\"head-office\""));
	CHECK(payload_is(pl->map.collection, TMPL_TEXT, "{}", "\"doctors\""));
	CHECK(payload_is(pl->map.id, TMPL_TEXT, "{'id':7}", "7"));
	CHECK(payload_is(pl->map.key, TMPL_TEXT, "{'id':7}", "\"doctor-7\""));
	CHECK(payload_is(pl->map.fields, TMPL_BODY, "{'id':7,'name':'Bo'}",
			 "{\"name\":\"Bo\"}"));
	CHECK(pl->delete_missing == 1);

	/* Webhook. */
	const adapter_webhook *w = a->webhook;
	CHECK(w != NULL);
	CHECK(w->api_key == 0);
	CHECK(strcmp(w->hmac_secret, "pms_hook") == 0);
	CHECK(strcmp(w->hmac_header, "X-Signature") == 0);
	CHECK(strcmp(w->hmac_prefix, "sha256=") == 0);
	CHECK(w->hmac_encoding == ADAPTER_HEX);
	CHECK(strcmp(w->event_id, "/event/id") == 0);
	CHECK_EQ_U64(w->nwrites, 1);
	const adapter_mapping *m = &w->writes[0];
	CHECK(!tmpl_is_constant(m->scope));
	CHECK(payload_is(m->scope, TMPL_TEXT, "{'clinic':'clinic-7'}",
			 "\"clinic-7\""));
	CHECK(payload_is(m->collection, TMPL_TEXT, "{}", "\"appointments\""));
	CHECK(payload_is(m->key, TMPL_TEXT, "{'appointment':{'id':'x1'}}",
			 "\"pms-x1\""));
	CHECK(payload_is(m->id, TMPL_TEXT, "{'appointment':{'id':'x1'}}",
			 "\"x1\""));
	CHECK(payload_is(m->fields, TMPL_BODY,
			 "{'appointment':{'status':'done'}}",
			 "{\"status\":\"done\"}"));
	adapter_config_free(cfg);
}

/* One webhook that accepts API keys: the smallest useful adapter. */
#define WH                                                                     \
	"'webhook':{'auth':{'api_key':true},'event_id':'/id','writes':"        \
	"[{'scope':'s','collection':'c','key':'k-{/id}','fields':{'f':'{/f}'}" \
	"}]}"
#define A(members) "{'adapters':[{'name':'a'," members "}]}"
#define REQ "{'method':'POST','url':'/c'}"
#define PUSH(colls)                                                            \
	"'base_url':'http://h','push':{'scopes':['*'],'collections':{" colls   \
	"}}"
#define PULL(members)                                                          \
	"'base_url':'http://h','pulls':[{'name':'p','every_s':60,'url':'/x',"  \
	"'scope':'s','collection':'c','id':'{/id}','key':'k-{/id}',"           \
	"'fields':{'f':'{/f}'}" members "}]"
#define OAUTH(members)                                                         \
	A("'auth':{'type':'oauth2','token_url':'https://t/token'," members     \
	  "}," WH)
#define HOOK(members)                                                          \
	A("'webhook':{'event_id':'/id','writes':[{'scope':'s',"                \
	  "'collection':'c','key':'k','fields':{'f':'{/f}'}}]," members "}")
#define WRITE(members)                                                         \
	A("'webhook':{'auth':{'api_key':true},'event_id':'/"                   \
	  "id','writes':[{" members "}]}")

static void test_defaults(void)
{
	adapter_config *cfg = parse_ok(A(WH));
	const adapter_def *a = &cfg->adapters[0];
	CHECK(a->base_url == NULL && a->push == NULL && a->npulls == 0);
	CHECK(a->auth.type == ADAPTER_AUTH_NONE && a->nheaders == 0);
	CHECK_EQ_U64(a->timeout_ms, 10000);
	CHECK_EQ_U64(a->concurrency, 1);
	CHECK_EQ_U64(a->retry_max_attempts, 10);
	CHECK_EQ_U64(a->retry_base_ms, 500);
	CHECK_EQ_U64(a->retry_max_ms, 60000);
	CHECK(a->webhook->api_key == 1 && a->webhook->hmac_secret == NULL);
	CHECK(a->webhook->writes[0].id == NULL);
	adapter_config_free(cfg);

	/* HMAC defaults; an empty adapters array. */
	cfg = parse_ok(HOOK("'auth':{'hmac':{'secret':'s.1'}}"));
	const adapter_webhook *w = cfg->adapters[0].webhook;
	CHECK(strcmp(w->hmac_secret, "s.1") == 0);
	CHECK(strcmp(w->hmac_header, "X-Signature") == 0);
	CHECK(strcmp(w->hmac_prefix, "") == 0);
	CHECK(w->hmac_encoding == ADAPTER_HEX);
	adapter_config_free(cfg);
	cfg = parse_ok(HOOK("'auth':{'hmac':{'secret':'s','encoding':"
			    "'base64','header':'X-Hub-Sig'}}"));
	CHECK(cfg->adapters[0].webhook->hmac_encoding == ADAPTER_BASE64);
	CHECK(strcmp(cfg->adapters[0].webhook->hmac_header, "X-Hub-Sig") == 0);
	adapter_config_free(cfg);
	cfg = parse_ok("{'adapters':[]}");
	CHECK(cfg->n == 0);
	adapter_config_free(cfg);

	/* Pull defaults; base_url loses its trailing slashes; absolute
	 * request URLs; max_ms follows a long base_ms. */
	cfg = parse_ok("{'adapters':[{'name':'a','base_url':'https://h/api//',"
		       "'retry':{'base_ms':120000},"
		       "'pulls':[{'name':'p','every_s':1,'url':'http://o/x',"
		       "'scope':'s','collection':'c','id':'{/id}','key':'k',"
		       "'fields':{'f':1}}]}]}");
	a = &cfg->adapters[0];
	CHECK(strcmp(a->base_url, "https://h/api") == 0);
	CHECK_EQ_U64(a->retry_base_ms, 120000);
	CHECK_EQ_U64(a->retry_max_ms, 120000);
	CHECK(strcmp(a->pulls[0].items, "") == 0);
	CHECK(a->pulls[0].paged == 0 && a->pulls[0].page_param == NULL);
	CHECK(a->pulls[0].size_param == NULL && a->pulls[0].page_size == 0);
	CHECK(a->pulls[0].delete_missing == 0);
	adapter_config_free(cfg);

	/* Every bound is inclusive. */
	cfg = parse_ok(A("'timeout_ms':100,'concurrency':64,'retry':{"
			 "'max_attempts':1,'base_ms':10,'max_ms':10}," WH));
	CHECK_EQ_U64(cfg->adapters[0].timeout_ms, 100);
	CHECK_EQ_U64(cfg->adapters[0].concurrency, 64);
	CHECK_EQ_U64(cfg->adapters[0].retry_max_ms, 10);
	adapter_config_free(cfg);
	cfg = parse_ok(A("'timeout_ms':600000,'retry':{'max_attempts':1000,"
			 "'base_ms':600000}," PULL(",'every_s':604800,"
						   "'page':{'param':'p',"
						   "'size':10000}")));
	CHECK_EQ_U64(cfg->adapters[0].timeout_ms, 600000);
	CHECK_EQ_U64(cfg->adapters[0].pulls[0].every_s, 604800);
	CHECK_EQ_U64(cfg->adapters[0].pulls[0].page_size, 10000);
	adapter_config_free(cfg);

	/* Header and OAuth2 auth; repeated scope patterns kept once;
	 * request headers; a 32-character name. */
	cfg = parse_ok(
		"{'adapters':[{'name':'abcdefghijklmnopqrstuvwxyz-_0123',"
		"'auth':{'type':'header','name':'X-Api-Key',"
		"'secret':'k'}," PUSH(
			"'c':{'create':{'method':'PUT',"
			"'url':'/c/{@key}','headers':{"
			"'If-Match':'{etag}'}}}") "},"
						  "{'name':'b','auth':{'type':'"
						  "oauth2','token_url':"
						  "'https://t/"
						  "token?x=1','grant':'client_"
						  "credentials',"
						  "'client_id':'me','client_"
						  "secret':'cs','scope':'rw'},"
						  "'push':{'scopes':['a','shop/"
						  "*','a'],'collections':{"
						  "'c':{'create':" REQ
						  ",'update':" REQ "}}},"
						  "'base_url':'http://h'}]}");
	a = &cfg->adapters[0];
	CHECK(a->auth.type == ADAPTER_AUTH_HEADER);
	CHECK(strcmp(a->auth.header_name, "X-Api-Key") == 0);
	CHECK(strcmp(a->auth.secret, "k") == 0);
	const adapter_request *r = &a->push->collections[0].create;
	CHECK_EQ_U64(r->nheaders, 1);
	CHECK(strcmp(r->headers[0].name, "If-Match") == 0);
	CHECK(record_is(r->headers[0].value, TMPL_TEXT, "{'etag':'e1'}",
			"\"e1\""));
	CHECK(a->push->collections[0].update.method == NULL);
	CHECK(a->push->collections[0].store_id == NULL);
	a = &cfg->adapters[1];
	CHECK(a->auth.type == ADAPTER_AUTH_OAUTH2);
	CHECK(a->auth.grant == ADAPTER_GRANT_CLIENT_CREDENTIALS);
	CHECK(strcmp(a->auth.token_url, "https://t/token?x=1") == 0);
	CHECK(strcmp(a->auth.client_id, "me") == 0);
	CHECK(strcmp(a->auth.client_secret, "cs") == 0);
	CHECK(a->auth.refresh_token == NULL);
	CHECK(strcmp(a->auth.scope, "rw") == 0);
	CHECK_EQ_U64(a->push->scopes.n, 2);
	CHECK(grant_allows(&a->push->scopes, "shop/7"));
	CHECK(!grant_allows(&a->push->scopes, "b"));
	CHECK(strcmp(a->push->collections[0].update.method, "POST") == 0);
	adapter_config_free(cfg);
}

typedef struct secret_seen {
	char text[512];
} secret_seen;

static void on_secret(const char *secret, const char *path, void *arg)
{
	secret_seen *s = arg;
	size_t n = strlen(s->text);
	snprintf(s->text + n, sizeof(s->text) - n, "%s=%s;", path, secret);
}

static void test_secrets(void)
{
	secret_seen seen = {""};
	adapter_config *cfg;
	json_error_t jerr;
	json_t *d = json_loads(example, 0, &jerr);
	CHECK_OK(adapter_config_parse(&cfg, d, NULL, 0));
	json_decref(d);
	adapter_config_each_secret(cfg, on_secret, &seen);
	CHECK(strcmp(seen.text, "adapters[0].auth.secret=pms_token;"
				"adapters[0].webhook.auth.hmac.secret="
				"pms_hook;") == 0);
	adapter_config_free(cfg);

	seen.text[0] = '\0';
	cfg = parse_ok("{'adapters':[{'name':'x'," WH "},{'name':'y','auth':{"
		       "'type':'oauth2','token_url':'http://t/','grant':"
		       "'refresh_token','client_id':'c','client_secret':'cs',"
		       "'refresh_token':'rt'}," WH "}]}");
	CHECK(cfg->adapters[1].auth.grant == ADAPTER_GRANT_REFRESH_TOKEN);
	adapter_config_each_secret(cfg, on_secret, &seen);
	CHECK(strcmp(seen.text, "adapters[1].auth.client_secret=cs;"
				"adapters[1].auth.refresh_token=rt;") == 0);
	adapter_config_free(cfg);
}

typedef struct bad_case {
	const char *doc;
	const char *path;  /* the error starts with "PATH: " */
	const char *words; /* and contains this */
} bad_case;

static const bad_case bad[] = {
	/* The top level. */
	{"[]", "top level", "expected an object"},
	{"{}", "adapters", "missing"},
	{"{'adapters':{}}", "adapters", "expected an array (got an object)"},
	{"{'adapters':[],'adapter':1}", "adapter",
	 "unknown member (expected adapters)"},
	{"{'adapters':[1]}", "adapters[0]", "expected an object"},
	{A("'webhok':{}"), "adapters[0].webhok", "unknown member (expected "},

	/* Names. */
	{"{'adapters':[{" WH "}]}", "adapters[0].name", "missing (required)"},
	{"{'adapters':[{'name':'Pms'," WH "}]}", "adapters[0].name",
	 "not a valid name"},
	{"{'adapters':[{'name':''," WH "}]}", "adapters[0].name",
	 "not a valid name"},
	{"{'adapters':[{'name':'abcdefghijklmnopqrstuvwxyz0123456'," WH "}]}",
	 "adapters[0].name", "not a valid name"},
	{"{'adapters':[{'name':'a b'," WH "}]}", "adapters[0].name",
	 "not a valid name"},
	{"{'adapters':[{'name':7," WH "}]}", "adapters[0].name",
	 "expected a string (got an integer)"},
	{"{'adapters':[{'name':'a'," WH "},{'name':'b'," WH "},{'name':'a'," WH
	 "}]}",
	 "adapters[2].name", "duplicate adapter name 'a'"},
	{"{'adapters':[{'name':'a'}]}", "adapters[0]",
	 "at least one of push, pulls and webhook"},

	/* base_url. */
	{A("'base_url':null,'push':{'scopes':['*'],'collections':{'c':{"
	   "'create':" REQ "}}}"),
	 "adapters[0].base_url", "expected a string"},
	{"{'adapters':[{'name':'a','push':{'scopes':['*'],'collections':{"
	 "'c':{'create':" REQ "}}}}]}",
	 "adapters[0].base_url", "required when the adapter has push or pulls"},
	{"{'adapters':[{'name':'a','pulls':[{'name':'p','every_s':1,'url':"
	 "'/x'}]}]}",
	 "adapters[0].base_url", "required when the adapter has push or pulls"},
	{A("'base_url':'ftp://h'," WH), "adapters[0].base_url",
	 "must start with http:// or https://"},
	{A("'base_url':'http://'," WH), "adapters[0].base_url", "no host"},
	{A("'base_url':'http://h/a?k=1'," WH), "adapters[0].base_url",
	 "query or fragment"},
	{A("'base_url':'http://h/a b'," WH), "adapters[0].base_url", "space"},

	/* Numbers, both bounds. */
	{A("'timeout_ms':99," WH), "adapters[0].timeout_ms",
	 "99 is out of range (100 to 600000)"},
	{A("'timeout_ms':600001," WH), "adapters[0].timeout_ms",
	 "out of range"},
	{A("'timeout_ms':'10'," WH), "adapters[0].timeout_ms",
	 "expected an integer (got a string)"},
	{A("'timeout_ms':1000.5," WH), "adapters[0].timeout_ms",
	 "expected an integer"},
	{A("'concurrency':0," WH), "adapters[0].concurrency",
	 "0 is out of range (1 to 64)"},
	{A("'concurrency':65," WH), "adapters[0].concurrency", "out of range"},
	{A("'concurrency':-1," WH), "adapters[0].concurrency", "out of range"},
	{A("'concurrency':4294967297," WH), "adapters[0].concurrency",
	 "out of range"},
	{A("'retry':{'max_attempts':0}," WH), "adapters[0].retry.max_attempts",
	 "out of range (1 to 1000)"},
	{A("'retry':{'max_attempts':1001}," WH),
	 "adapters[0].retry.max_attempts", "out of range"},
	{A("'retry':{'base_ms':9}," WH), "adapters[0].retry.base_ms",
	 "out of range (10 to 600000)"},
	{A("'retry':{'base_ms':600001}," WH), "adapters[0].retry.base_ms",
	 "out of range"},
	{A("'retry':{'base_ms':1000,'max_ms':999}," WH),
	 "adapters[0].retry.max_ms", "less than base_ms"},
	{A("'retry':{'max_ms':86400001}," WH), "adapters[0].retry.max_ms",
	 "out of range"},
	{A("'retry':{'tries':3}," WH), "adapters[0].retry.tries",
	 "unknown member (expected max_attempts, base_ms, max_ms)"},
	{A("'retry':[]," WH), "adapters[0].retry", "expected an object"},

	/* Adapter headers. */
	{A("'headers':['X-A']," WH), "adapters[0].headers",
	 "expected an object (got an array)"},
	{A("'headers':{'X-Clinic':1}," WH), "adapters[0].headers.X-Clinic",
	 "expected a string"},
	{A("'headers':{'X Clinic':'a'}," WH), "adapters[0].headers.X Clinic",
	 "not an HTTP header name"},
	{A("'headers':{'X-A':'a','x-a':'b'}," WH), "adapters[0].headers.x-a",
	 "case-insensitive"},
	{A("'headers':{'X-A':'a\\r\\nHost: evil'}," WH),
	 "adapters[0].headers.X-A", "control character"},
	{A("'headers':{'X-A':'{group'}," WH), "adapters[0].headers.X-A",
	 "unmatched {"},

	/* Auth. */
	{A("'auth':'bearer'," WH), "adapters[0].auth", "expected an object"},
	{A("'auth':{'secret':'s'}," WH), "adapters[0].auth.type", "missing"},
	{A("'auth':{'type':'basic'}," WH), "adapters[0].auth.type",
	 "not none, header, bearer or oauth2"},
	{A("'auth':{'type':'none','secret':'s'}," WH),
	 "adapters[0].auth.secret", "unknown member (expected type)"},
	{A("'auth':{'type':'bearer'}," WH), "adapters[0].auth.secret",
	 "missing (required for type bearer)"},
	{A("'auth':{'type':'bearer','secret':'pms token'}," WH),
	 "adapters[0].auth.secret", "not a secret name"},
	{A("'auth':{'type':'bearer','secret':''}," WH),
	 "adapters[0].auth.secret", "not a secret name"},
	{A("'auth':{'type':'bearer','secret':'"
	   "a123456789b123456789c123456789d123456789e123456789f123456789g1234'"
	   "}," WH),
	 "adapters[0].auth.secret", "not a secret name"},
	{A("'auth':{'type':'bearer','secret':'s','name':'X'}," WH),
	 "adapters[0].auth.name", "unknown member (expected type, secret)"},
	{A("'auth':{'type':'header','secret':'s'}," WH),
	 "adapters[0].auth.name", "missing (required for type header)"},
	{A("'auth':{'type':'header','name':'X:Y','secret':'s'}," WH),
	 "adapters[0].auth.name", "not an HTTP header name"},
	{OAUTH("'grant':'client_credentials','client_id':'c',"
	       "'client_secret':'s','token':'x'"),
	 "adapters[0].auth.token", "unknown member"},
	{A("'auth':{'type':'oauth2','grant':'client_credentials',"
	   "'client_id':'c','client_secret':'s'}," WH),
	 "adapters[0].auth.token_url", "missing (required for oauth2)"},
	{A("'auth':{'type':'oauth2','token_url':'/token','grant':"
	   "'client_credentials','client_id':'c','client_secret':'s'}," WH),
	 "adapters[0].auth.token_url", "must start with http:// or https://"},
	{OAUTH("'client_id':'c','client_secret':'s'"), "adapters[0].auth.grant",
	 "missing"},
	{OAUTH("'grant':'password','client_id':'c','client_secret':'s'"),
	 "adapters[0].auth.grant", "not refresh_token or client_credentials"},
	{OAUTH("'grant':'client_credentials','client_secret':'s'"),
	 "adapters[0].auth.client_id", "missing (required for oauth2)"},
	{OAUTH("'grant':'client_credentials','client_id':'','client_secret':"
	       "'s'"),
	 "adapters[0].auth.client_id", "empty"},
	{OAUTH("'grant':'client_credentials','client_id':'c'"),
	 "adapters[0].auth.client_secret",
	 "missing (required for grant client_credentials)"},
	{OAUTH("'grant':'client_credentials','client_id':'c',"
	       "'client_secret':'s','refresh_token':'r'"),
	 "adapters[0].auth.refresh_token", "only for grant refresh_token"},
	{OAUTH("'grant':'refresh_token','client_id':'c'"),
	 "adapters[0].auth.refresh_token",
	 "missing (required for grant refresh_token)"},
	{OAUTH("'grant':'refresh_token','client_id':'c','refresh_token':"
	       "'r/t'"),
	 "adapters[0].auth.refresh_token", "not a secret name"},
	{OAUTH("'grant':'refresh_token','client_id':'c','refresh_token':"
	       "'r','scope':1"),
	 "adapters[0].auth.scope", "expected a string"},

	/* Push. */
	{A("'base_url':'http://h','push':[]"), "adapters[0].push",
	 "expected an object"},
	{A("'base_url':'http://h','push':{'collections':{'c':{'create':" REQ
	   "}}}"),
	 "adapters[0].push.scopes", "missing"},
	{A("'base_url':'http://h','push':{'scopes':[],'collections':{'c':{"
	   "'create':" REQ "}}}"),
	 "adapters[0].push.scopes", "empty"},
	{A("'base_url':'http://h','push':{'scopes':'*','collections':{'c':{"
	   "'create':" REQ "}}}"),
	 "adapters[0].push.scopes", "expected an array"},
	{A("'base_url':'http://h','push':{'scopes':['a',3],'collections':{"
	   "'c':{'create':" REQ "}}}"),
	 "adapters[0].push.scopes[1]", "expected a string"},
	{A("'base_url':'http://h','push':{'scopes':['a','clinic-*'],"
	   "'collections':{'c':{'create':" REQ "}}}"),
	 "adapters[0].push.scopes[1]", "bad grant pattern"},
	{A("'base_url':'http://h','push':{'scopes':['a,b'],"
	   "'collections':{'c':{'create':" REQ "}}}"),
	 "adapters[0].push.scopes[0]", "not one grant pattern"},
	{A("'base_url':'http://h','push':{'scopes':[' a'],"
	   "'collections':{'c':{'create':" REQ "}}}"),
	 "adapters[0].push.scopes[0]", "not one grant pattern"},
	{A("'base_url':'http://h','push':{'scopes':['/*'],"
	   "'collections':{'c':{'create':" REQ "}}}"),
	 "adapters[0].push.scopes[0]", "no prefix"},
	{A("'base_url':'http://h','push':{'scopes':['*']}"),
	 "adapters[0].push.collections", "missing"},
	{A(PUSH("")), "adapters[0].push.collections", "empty"},
	{A("'base_url':'http://h','push':{'scopes':['*'],'collections':{"
	   "'c':{'create':" REQ "}},'mode':1}"),
	 "adapters[0].push.mode",
	 "unknown member (expected scopes, collections, start)"},
	{A(PUSH("'owners':{'crate':" REQ "}")),
	 "adapters[0].push.collections.owners.crate",
	 "unknown member (expected create, update, delete, store_id)"},
	{A(PUSH("'owners':{'update':" REQ "}")),
	 "adapters[0].push.collections.owners.create", "missing (required)"},
	{A(PUSH("'owners':[]")), "adapters[0].push.collections.owners",
	 "expected an object"},
	{A(PUSH("'owners':{'create':'POST /owners'}")),
	 "adapters[0].push.collections.owners.create", "expected an object"},
	{A(PUSH("'a123456789b123456789c123456789d123456789e123456789f123456789"
		"g1234':{'create':" REQ "}")),
	 "adapters[0].push.collections."
	 "a123456789b123456789c123456789d123456789e123456789f123456789g1234",
	 "FERRY_MAX_COLLECTION_BYTES"},
	{A(PUSH("'':{'create':" REQ "}")), "adapters[0].push.collections.\"\"",
	 "collection name is empty"},
	{A(PUSH("'o':{'create':{'url':'/o'}}")),
	 "adapters[0].push.collections.o.create.method", "missing"},
	{A(PUSH("'o':{'create':{'method':'post','url':'/o'}}")),
	 "adapters[0].push.collections.o.create.method",
	 "'post' is not one of GET, POST, PUT, PATCH, DELETE"},
	{A(PUSH("'o':{'create':{'method':'SEND','url':'/o'}}")),
	 "adapters[0].push.collections.o.create.method", "not one of"},
	{A(PUSH("'o':{'create':{'method':'POST'}}")),
	 "adapters[0].push.collections.o.create.url", "missing"},
	{A(PUSH("'o':{'create':{'method':'POST','url':['/o']}}")),
	 "adapters[0].push.collections.o.create.url", "expected a string"},
	{A(PUSH("'o':{'create':{'method':'POST','url':'owners'}}")),
	 "adapters[0].push.collections.o.create.url", "must start with '/'"},
	{A(PUSH("'o':{'create':{'method':'POST','url':'ftp://x/o'}}")),
	 "adapters[0].push.collections.o.create.url", "must start with '/'"},
	{A(PUSH("'o':{'create':{'method':'POST','url':'https://'}}")),
	 "adapters[0].push.collections.o.create.url", "no host"},
	{A(PUSH("'o':{'create':{'method':'POST','url':'/o w'}}")),
	 "adapters[0].push.collections.o.create.url", "space"},
	{A(PUSH("'o':{'create':" REQ ",'update':{'method':'PATCH','url':"
		"'/o/{@idd}'}}")),
	 "adapters[0].push.collections.o.update.url",
	 "unknown placeholder {@idd}"},
	{A(PUSH("'o':{'create':{'method':'POST','url':'/o','body':{'n':"
		"'{name'}}}")),
	 "adapters[0].push.collections.o.create.body.n", "unmatched {"},
	{A(PUSH("'o':{'create':{'method':'POST','url':'/o','body':{'n':"
		"'{/name}'}}}")),
	 "adapters[0].push.collections.o.create.body.n", "{/name}"},
	{A(PUSH("'o':{'create':{'method':'POST','url':'/o','body':{'a':1,'b':"
		"{'c':['x','{@nope}']}}}}")),
	 "adapters[0].push.collections.o.create.body.b.c[1]", "{@nope}"},
	{A(PUSH("'o':{'create':{'method':'POST','url':'/o','body':'{x}}'}}")),
	 "adapters[0].push.collections.o.create.body", "unmatched }"},
	{A(PUSH("'o':{'create':{'method':'POST','url':'/o','id_from':'id'}}")),
	 "adapters[0].push.collections.o.create.id_from", "not a JSON pointer"},
	{A(PUSH("'o':{'create':{'method':'POST','url':'/o','id_from':'/a~2'}"
		"}")),
	 "adapters[0].push.collections.o.create.id_from", "not a JSON pointer"},
	{A(PUSH("'o':{'create':" REQ ",'update':{'method':'PUT','url':'/o',"
		"'id_from':'/id'}}")),
	 "adapters[0].push.collections.o.update.id_from",
	 "unknown member (expected method, url, body, headers)"},
	{A(PUSH("'o':{'create':" REQ ",'delete':{'method':'DELETE'}}")),
	 "adapters[0].push.collections.o.delete.url", "missing"},
	{A(PUSH("'o':{'create':{'method':'POST','url':'/o','headers':{"
		"'X-Id':'{a->}'}}}")),
	 "adapters[0].push.collections.o.create.headers.X-Id", "{a->}"},
	{A(PUSH("'o':{'create':" REQ ",'store_id':''}")),
	 "adapters[0].push.collections.o.store_id", "field name is empty"},
	{A(PUSH("'o':{'create':" REQ ",'store_id':true}")),
	 "adapters[0].push.collections.o.store_id", "expected a string"},

	/* Pulls. */
	{A("'base_url':'http://h','pulls':{}"), "adapters[0].pulls",
	 "expected an array"},
	{A("'base_url':'http://h','pulls':['doctors']"), "adapters[0].pulls[0]",
	 "expected an object"},
	{A(PULL(",'every':60")), "adapters[0].pulls[0].every",
	 "unknown member (expected name, every_s,"},
	{A("'base_url':'http://h','pulls':[{'every_s':60,'url':'/x'}]"),
	 "adapters[0].pulls[0].name", "missing"},
	{A(PULL(",'name':'Doctors'")), "adapters[0].pulls[0].name",
	 "not a valid name"},
	{A("'base_url':'http://h','pulls':[{'name':'p','every_s':60,'url':"
	   "'/x','scope':'s','collection':'c','id':'{/id}','key':'k',"
	   "'fields':{'f':'{/f}'}},{'name':'q','every_s':60,'url':'/x',"
	   "'scope':'s','collection':'c','id':'{/id}','key':'k','fields':{"
	   "'f':'{/f}'}},{'name':'p','every_s':60,'url':'/y','scope':'s',"
	   "'collection':'c','id':'{/id}','key':'k','fields':{'f':'{/f}'}}]"),
	 "adapters[0].pulls[2].name", "duplicate pull name 'p'"},
	{A("'base_url':'http://h','pulls':[{'name':'p','url':'/x'}]"),
	 "adapters[0].pulls[0].every_s", "missing"},
	{A(PULL(",'every_s':0")), "adapters[0].pulls[0].every_s",
	 "0 is out of range (1 to 604800)"},
	{A(PULL(",'every_s':604801")), "adapters[0].pulls[0].every_s",
	 "out of range"},
	{A(PULL(",'url':'/x/{a}'")), "adapters[0].pulls[0].url",
	 "must be a constant"},
	{A(PULL(",'url':'/x/{/a}'")), "adapters[0].pulls[0].url",
	 "must be a constant"},
	{A(PULL(",'url':'/x/{a'")), "adapters[0].pulls[0].url", "unmatched {"},
	{A(PULL(",'url':'x'")), "adapters[0].pulls[0].url",
	 "must start with '/'"},
	{A(PULL(",'items':'data'")), "adapters[0].pulls[0].items",
	 "not a JSON pointer"},
	{A(PULL(",'page':{'param':'p','size':0}")),
	 "adapters[0].pulls[0].page.size", "0 is out of range (1 to 10000)"},
	{A(PULL(",'page':{'param':'p','size':10001}")),
	 "adapters[0].pulls[0].page.size", "out of range"},
	{A(PULL(",'page':{'param':'p'}")), "adapters[0].pulls[0].page.size",
	 "missing"},
	{A(PULL(",'page':{'size':10}")), "adapters[0].pulls[0].page.param",
	 "missing"},
	{A(PULL(",'page':{'param':'a b','size':10}")),
	 "adapters[0].pulls[0].page.param", "not a query parameter name"},
	{A(PULL(",'page':{'param':'p','size_param':'p','size':10}")),
	 "adapters[0].pulls[0].page.size_param", "same as param"},
	{A(PULL(",'next':{}")), "adapters[0].pulls[0].next",
	 "give exactly one of"},
	{A(PULL(",'next':{'link':true,'url':'/next'}")),
	 "adapters[0].pulls[0].next", "give exactly one of"},
	{A(PULL(",'next':{'url':'next'}")), "adapters[0].pulls[0].next.url",
	 "not a JSON pointer"},
	{A(PULL(",'next':{'cursor':'/c'}")), "adapters[0].pulls[0].next.param",
	 "missing"},
	{A(PULL(",'next':{'cursor':'/c','param':'a b'}")),
	 "adapters[0].pulls[0].next.param", "not a query parameter name"},
	{A(PULL(",'next':{'link':true,'param':'c'}")),
	 "adapters[0].pulls[0].next.param", "goes only with cursor"},
	{A(PULL(",'next':{'link':true},'page':{'param':'p','size':2}")),
	 "adapters[0].pulls[0].next", "cannot be used together with page"},
	{A(PULL(",'next':{'lnk':true}")), "adapters[0].pulls[0].next.lnk",
	 "unknown member"},
	{A("'base_url':'http://h','push':{'scopes':['*'],'start':'later',"
	   "'collections':{'c':{'create':" REQ "}}}"),
	 "adapters[0].push.start", "not beginning or now"},
	{A(PULL(",'page':{'param':'p','sizze':10}")),
	 "adapters[0].pulls[0].page.sizze",
	 "unknown member (expected param, size_param, size)"},
	{A("'base_url':'http://h','pulls':[{'name':'p','every_s':60,'url':"
	   "'/x','scope':'s','collection':'c','key':'k','fields':{'f':1}}]"),
	 "adapters[0].pulls[0].id", "missing (required for pulls)"},
	{A(PULL(",'scope':'{/clinic}'")), "adapters[0].pulls[0].scope",
	 "must be a constant"},
	{A(PULL(",'collection':'c-{/kind}'")),
	 "adapters[0].pulls[0].collection", "must be a constant"},
	{A(PULL(",'scope':''")), "adapters[0].pulls[0].scope",
	 "scope is empty"},
	{A(PULL(",'scope':'a123456789b123456789c123456789d123456789e1234567"
		"89f123456789g1234'")),
	 "adapters[0].pulls[0].scope", "FERRY_MAX_SCOPE_BYTES"},
	{A("'base_url':'http://h','pulls':[{'name':'p','every_s':60,'url':"
	   "'/x','scope':'s','collection':'c','id':'{/id}','fields':{'f':1}}]"),
	 "adapters[0].pulls[0].key", "missing"},
	{A(PULL(",'fields':{}")), "adapters[0].pulls[0].fields", "empty"},
	{A(PULL(",'fields':{'f':'{name}'}")), "adapters[0].pulls[0].fields.f",
	 "{name}"},
	{A(PULL(",'delete_missing':'yes'")),
	 "adapters[0].pulls[0].delete_missing",
	 "expected true or false (got a string)"},

	/* Webhook. */
	{A("'webhook':true"), "adapters[0].webhook", "expected an object"},
	{HOOK("'secret':'x'"), "adapters[0].webhook.secret",
	 "unknown member (expected auth, event_id, writes)"},
	{A("'webhook':{'event_id':'/id','writes':[]}"),
	 "adapters[0].webhook.auth", "missing"},
	{HOOK("'auth':{'hmac':{'secret':'s'},'api_key':true}"),
	 "adapters[0].webhook.auth", "exactly one of hmac and api_key"},
	{HOOK("'auth':{}"), "adapters[0].webhook.auth",
	 "exactly one of hmac and api_key"},
	{HOOK("'auth':{'api_key':false}"), "adapters[0].webhook.auth.api_key",
	 "must be true"},
	{HOOK("'auth':{'api_key':'yes'}"), "adapters[0].webhook.auth.api_key",
	 "expected true or false"},
	{HOOK("'auth':{'bearer':'x'}"), "adapters[0].webhook.auth.bearer",
	 "unknown member (expected hmac, api_key)"},
	{HOOK("'auth':{'hmac':{}}"), "adapters[0].webhook.auth.hmac.secret",
	 "missing"},
	{HOOK("'auth':{'hmac':{'secret':'s','algo':'sha1'}}"),
	 "adapters[0].webhook.auth.hmac.algo",
	 "unknown member (expected secret, header, prefix, encoding)"},
	{HOOK("'auth':{'hmac':{'secret':'s','encoding':'b64'}}"),
	 "adapters[0].webhook.auth.hmac.encoding", "not hex or base64"},
	{HOOK("'auth':{'hmac':{'secret':'s','header':''}}"),
	 "adapters[0].webhook.auth.hmac.header", "not an HTTP header name"},
	{HOOK("'auth':{'hmac':{'secret':'s','prefix':1}}"),
	 "adapters[0].webhook.auth.hmac.prefix", "expected a string"},
	{A("'webhook':{'auth':{'api_key':true},'writes':[]}"),
	 "adapters[0].webhook.event_id", "missing"},
	{A("'webhook':{'auth':{'api_key':true},'event_id':'id'}"),
	 "adapters[0].webhook.event_id", "not a JSON pointer"},
	{A("'webhook':{'auth':{'api_key':true},'event_id':''}"),
	 "adapters[0].webhook.event_id", "whole payload"},
	{A("'webhook':{'auth':{'api_key':true},'event_id':'/id'}"),
	 "adapters[0].webhook.writes", "missing"},
	{A("'webhook':{'auth':{'api_key':true},'event_id':'/id','writes':[]}"),
	 "adapters[0].webhook.writes", "empty"},
	{A("'webhook':{'auth':{'api_key':true},'event_id':'/id','writes':{}}"),
	 "adapters[0].webhook.writes", "expected an array"},
	{WRITE("'collection':'c','key':'k','fields':{'f':1}"),
	 "adapters[0].webhook.writes[0].scope", "missing"},
	{WRITE("'scope':'s','key':'k','fields':{'f':1}"),
	 "adapters[0].webhook.writes[0].collection", "missing"},
	{WRITE("'scope':'s','collection':'c','fields':{'f':1}"),
	 "adapters[0].webhook.writes[0].key", "missing"},
	{WRITE("'scope':'s','collection':'c','key':'k'"),
	 "adapters[0].webhook.writes[0].fields", "missing"},
	{WRITE("'scope':'s','collection':'c','key':'k','fields':['f']"),
	 "adapters[0].webhook.writes[0].fields", "expected an object"},
	{WRITE("'scope':'s','collection':'c','key':'k','fields':{'':1}"),
	 "adapters[0].webhook.writes[0].fields.\"\"", "field name is empty"},
	{WRITE("'scope':'s','collection':'c','key':'k','fields':{'f':1},"
	       "'field':{}"),
	 "adapters[0].webhook.writes[0].field",
	 "unknown member (expected scope, collection, key, id, fields)"},
	{WRITE("'scope':'s','collection':'c','key':'k','id':5,'fields':{'f':"
	       "1}"),
	 "adapters[0].webhook.writes[0].id", "expected a string"},
	{WRITE("'scope':'{/s','collection':'c','key':'k','fields':{'f':1}"),
	 "adapters[0].webhook.writes[0].scope", "unmatched {"},
	{WRITE("'scope':'s','collection':'','key':'k','fields':{'f':1}"),
	 "adapters[0].webhook.writes[0].collection", "collection is empty"},
	{WRITE("'scope':'s','collection':'c','key':'{{}}"
	       "a123456789b123456789c123456789d123456789e123456789f123456789"
	       "a123456789b123456789c123456789d123456789e123456789f123456789"
	       "a123456789b123456789c123456789d123456789e123456789f123456789"
	       "a123456789b123456789c123456789d123456789e123456789f123456789"
	       "a123456789b1234','fields':{'f':1}"),
	 "adapters[0].webhook.writes[0].key", "FERRY_MAX_KEY_BYTES"},
	{WRITE("'scope':'s','collection':'c','key':'k','fields':{'f':{"
	       "'from':'/a','round':'up'}}"),
	 "adapters[0].webhook.writes[0].fields.f", "round"},
	{WRITE("'scope':'s','collection':'c','key':'k','fields':{'f':{"
	       "'from':'/a','multiply':'2'}}"),
	 "adapters[0].webhook.writes[0].fields.f", "multiply"},
	{"{'adapters':[{'name':'a'," WH "},{'name':'b','webhook':{'auth':{"
	 "'api_key':true},'event_id':'/id','writes':[{'scope':'s',"
	 "'collection':'c','key':'k','fields':{'f':1}},{'scope':'s',"
	 "'collection':'c','key':'k','fields':{'f':'{a}'}}]}}]}",
	 "adapters[1].webhook.writes[1].fields.f", "{a}"},
};

static void check_bad(const char *text, const char *path, const char *words,
		      size_t i)
{
	char why[512], want[600];
	adapter_config *cfg = (adapter_config *)1;
	json_t *d = doc(text);
	ferry_err err = adapter_config_parse(&cfg, d, why, sizeof(why));
	json_decref(d);
	snprintf(want, sizeof(want), "%s: ", path);
	if (err != FERRY_E_INVALID || cfg != NULL ||
	    strncmp(why, want, strlen(want)) != 0 ||
	    strstr(why + strlen(want), words) == NULL)
		test_fail(__FILE__, __LINE__,
			  "case %zu: %s\n  got %s: %s\n  expected %s%s", i,
			  text, ferry_err_name(err), why, want, words);
}

/* Lists one over their limits, built rather than written out. */
static void test_limits(void)
{
	static const struct {
		const char *head, *item, *sep, *tail, *path, *words;
		int n;
	} lists[] = {
		{"{'adapters':[", "{'name':'a%d'," WH "}", ",", "]}",
		 "adapters", "65 adapters; at most 64", 65},
		{"{'adapters':[{'name':'a','headers':{", "'X-%d':'v'", ",",
		 "}," WH "}]}", "adapters[0].headers", "65 headers; at most 64",
		 65},
		{"{'adapters':[{'name':'a','base_url':'http://h','pulls':[",
		 "{'name':'p%d','every_s':1,'url':'/x'}", ",", "]}]}",
		 "adapters[0].pulls", "65 pulls; at most 64", 65},
		{"{'adapters':[{'name':'a','webhook':{'auth':{'api_key':true},"
		 "'event_id':'/id','writes':[",
		 "{'scope':'s','collection':'c','key':'k%d','fields':{'f':1}}",
		 ",", "]}}]}", "adapters[0].webhook.writes",
		 "65 writes; at most 64", 65},
		{"{'adapters':[{'name':'a','base_url':'http://h','push':{"
		 "'scopes':['*'],'collections':{",
		 "'c%d':{'create':" REQ "}", ",", "}}}]}",
		 "adapters[0].push.collections", "257 collections; at most 256",
		 257},
	};
	for (size_t l = 0; l < sizeof(lists) / sizeof(lists[0]); l++) {
		size_t cap = 256 * 1024, used = 0;
		char *text = malloc(cap);
		CHECK(text != NULL);
		used += (size_t)snprintf(text, cap, "%s", lists[l].head);
		for (int i = 0; i < lists[l].n; i++) {
			if (i)
				used += (size_t)snprintf(text + used,
							 cap - used, "%s",
							 lists[l].sep);
			used += (size_t)snprintf(text + used, cap - used,
						 lists[l].item, i);
		}
		used += (size_t)snprintf(text + used, cap - used, "%s",
					 lists[l].tail);
		CHECK(used < cap);
		check_bad(text, lists[l].path, lists[l].words, l);
		free(text);
	}
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	CHECK(fputs(text, f) >= 0);
	CHECK(fclose(f) == 0);
}

static void test_load(void)
{
	const char *dir = test_tmpdir("adapter_config_load");
	char path[4200], why[1024], want[4400];
	adapter_config *cfg;

	snprintf(path, sizeof(path), "%s/adapters.json", dir);
	write_file(path, example);
	CHECK_OK(adapter_config_load(&cfg, path, why, sizeof(why)));
	CHECK(adapter_config_find(cfg, "pms") != NULL);
	adapter_config_free(cfg);

	/* A syntax error: file, line and column. */
	write_file(path, "{\n  \"adapters\": [\n    {\"name\": \"a\",, }\n"
			 "  ]\n}\n");
	CHECK_ERR(adapter_config_load(&cfg, path, why, sizeof(why)),
		  FERRY_E_INVALID);
	CHECK(cfg == NULL);
	snprintf(want, sizeof(want), "%s:3:18: ", path);
	if (strncmp(why, want, strlen(want)) != 0)
		test_fail(__FILE__, __LINE__, "got %s, expected %s...", why,
			  want);

	/* A repeated member is a syntax error too. */
	write_file(path, "{\"adapters\": [],\n \"adapters\": []}");
	CHECK_ERR(adapter_config_load(&cfg, path, why, sizeof(why)),
		  FERRY_E_INVALID);
	snprintf(want, sizeof(want), "%s:2:", path);
	CHECK(strncmp(why, want, strlen(want)) == 0);
	CHECK(strstr(why, "duplicate") != NULL);

	/* A mistake in a valid JSON document: file, then member path. */
	write_file(path, "{\"adapters\": [{\"name\": \"a\", \"webhook\": "
			 "{\"auth\": {}}}]}");
	CHECK_ERR(adapter_config_load(&cfg, path, why, sizeof(why)),
		  FERRY_E_INVALID);
	snprintf(want, sizeof(want),
		 "%s: adapters[0].webhook.auth: give exactly one", path);
	if (strncmp(why, want, strlen(want)) != 0)
		test_fail(__FILE__, __LINE__, "got %s, expected %s...", why,
			  want);

	/* A missing file and a directory. */
	snprintf(path, sizeof(path), "%s/missing.json", dir);
	CHECK_ERR(adapter_config_load(&cfg, path, why, sizeof(why)),
		  FERRY_E_IO);
	CHECK(cfg == NULL);
	snprintf(want, sizeof(want), "%s: cannot read: %s", path,
		 strerror(ENOENT));
	CHECK(strcmp(why, want) == 0);
	CHECK_ERR(adapter_config_load(&cfg, dir, why, sizeof(why)), FERRY_E_IO);
	CHECK(strstr(why, strerror(EISDIR)) != NULL);

	/* No room for the reason is no reason to crash. */
	CHECK_ERR(adapter_config_load(&cfg, path, NULL, 0), FERRY_E_IO);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	test_example();
	test_defaults();
	test_secrets();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		check_bad(bad[i].doc, bad[i].path, bad[i].words, i);
	test_limits();
	test_load();
	printf("adapter_config_test: ok (%zu broken configurations)\n",
	       sizeof(bad) / sizeof(bad[0]));
	return 0;
}
