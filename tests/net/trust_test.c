/*
 * trust_test.c — the trust list, peers and peer status (net/trust.c) on a
 * real node's kv tables: round trips of every field, replacing, deleting,
 * listing order, validation, tolerant decoding of hand-written values, and
 * that every write moves its table's kv generation (how running nodes
 * notice) and no other table's.
 */
#include <string.h>

#include "testing.h"
#include "trust.h"

static uint64_t generation(ferry_node *node, const char *table)
{
	uint64_t gen;
	CHECK_NODE_OK(node, ferry_kv_generation(&gen, node, table));
	return gen;
}

static void make_id(uint8_t id[FERRY_PUBLIC_KEY_BYTES], uint8_t fill)
{
	memset(id, fill, FERRY_PUBLIC_KEY_BYTES);
}

static void make_entry(trust_entry *e, uint8_t fill, const char *name,
		       const char *read, const char *write)
{
	memset(e, 0, sizeof(*e));
	make_id(e->id, fill);
	snprintf(e->name, sizeof(e->name), "%s", name);
	CHECK_OK(grant_parse(&e->read, read, NULL, 0));
	CHECK_OK(grant_parse(&e->write, write, NULL, 0));
	e->added_ms = 1700000000000 + fill;
}

static void check_grant(const grant *g, const char *want)
{
	char *text = grant_format(g);
	CHECK(text != NULL);
	if (strcmp(text, want) != 0)
		test_fail(__FILE__, __LINE__, "grant '%s', want '%s'", text,
			  want);
	free(text);
}

/* trust_list() callback: record names in order. */
struct names {
	char list[512];
	int count;
	int stop_after;
};

static int collect_name(const trust_entry *e, void *payload)
{
	struct names *n = payload;
	size_t at = strlen(n->list);
	snprintf(n->list + at, sizeof(n->list) - at, "%s%s", at ? "," : "",
		 e->name);
	n->count++;
	return n->stop_after && n->count >= n->stop_after;
}

static void test_trust_round_trip(void)
{
	ferry_node *node = test_node("trust_round_trip", 0);
	trust_entry e, got;
	make_entry(&e, 0x11, "clinic-7", "clinic-7,clinic-7/*", "clinic-7");

	uint8_t missing[FERRY_PUBLIC_KEY_BYTES];
	make_id(missing, 0x99);
	CHECK_ERR(trust_get(node, missing, &got), FERRY_E_NOT_FOUND);
	CHECK_ERR(trust_delete(node, missing), FERRY_E_NOT_FOUND);

	uint64_t gen = generation(node, "trust");
	CHECK_NODE_OK(node, trust_put(node, &e));
	CHECK(generation(node, "trust") != gen);

	CHECK_NODE_OK(node, trust_get(node, e.id, &got));
	CHECK(memcmp(got.id, e.id, FERRY_PUBLIC_KEY_BYTES) == 0);
	CHECK(strcmp(got.name, "clinic-7") == 0);
	check_grant(&got.read, "clinic-7,clinic-7/*");
	check_grant(&got.write, "clinic-7");
	CHECK_EQ_U64(got.added_ms, e.added_ms);
	CHECK(grant_allows(&got.read, "clinic-7/pricelist"));
	CHECK(!grant_allows(&got.write, "clinic-70"));
	trust_entry_clear(&got);

	/* Replace: same id, new name and grants. */
	trust_entry e2;
	make_entry(&e2, 0x11, "branch", "*", "");
	gen = generation(node, "trust");
	CHECK_NODE_OK(node, trust_put(node, &e2));
	CHECK(generation(node, "trust") != gen);
	CHECK_NODE_OK(node, trust_get(node, e.id, &got));
	CHECK(strcmp(got.name, "branch") == 0);
	check_grant(&got.read, "*");
	CHECK_EQ_U64(got.write.n, 0);
	trust_entry_clear(&got);

	/* added_ms 0 means "now". */
	trust_entry e3;
	make_entry(&e3, 0x22, "hq", "", "");
	e3.added_ms = 0;
	CHECK_NODE_OK(node, trust_put(node, &e3));
	CHECK_NODE_OK(node, trust_get(node, e3.id, &got));
	CHECK(got.added_ms > 1700000000000);
	trust_entry_clear(&got);

	/* Listed in id order, whatever the insertion order. */
	trust_entry e0;
	make_entry(&e0, 0x01, "first", "a", "b");
	CHECK_NODE_OK(node, trust_put(node, &e0));
	struct names n = {0};
	CHECK_NODE_OK(node, trust_list(node, collect_name, &n));
	CHECK_EQ_U64(n.count, 3);
	CHECK(strcmp(n.list, "first,branch,hq") == 0);
	struct names stop = {.stop_after = 2};
	CHECK_NODE_OK(node, trust_list(node, collect_name, &stop));
	CHECK_EQ_U64(stop.count, 2);

	gen = generation(node, "trust");
	CHECK_NODE_OK(node, trust_delete(node, e.id));
	CHECK(generation(node, "trust") != gen);
	CHECK_ERR(trust_get(node, e.id, &got), FERRY_E_NOT_FOUND);
	memset(&n, 0, sizeof(n));
	CHECK_NODE_OK(node, trust_list(node, collect_name, &n));
	CHECK(strcmp(n.list, "first,hq") == 0);

	trust_entry_clear(&e);
	trust_entry_clear(&e2);
	trust_entry_clear(&e3);
	trust_entry_clear(&e0);
	trust_entry_clear(NULL);
	ferry_node_close(node);
}

static void test_trust_invalid(void)
{
	ferry_node *node = test_node("trust_invalid", 0);
	trust_entry e;
	make_entry(&e, 0x33, "", "a", "b");
	CHECK_ERR(trust_put(node, &e), FERRY_E_INVALID); /* empty name */
	snprintf(e.name, sizeof(e.name), "bad\nname");
	CHECK_ERR(trust_put(node, &e), FERRY_E_INVALID);
	snprintf(e.name, sizeof(e.name), "bad\xff");
	CHECK_ERR(trust_put(node, &e), FERRY_E_INVALID);
	memset(e.name, 'n', TRUST_MAX_NAME_BYTES);
	e.name[TRUST_MAX_NAME_BYTES] = '\0'; /* exactly the limit */
	CHECK_NODE_OK(node, trust_put(node, &e));

	/* A hand-built grant with a bad pattern is refused too. */
	char *bad = strdup("clinic-*");
	char **saved = e.read.patterns;
	char *one[1] = {bad};
	e.read.patterns = one;
	e.read.n = 1;
	snprintf(e.name, sizeof(e.name), "ok");
	CHECK_ERR(trust_put(node, &e), FERRY_E_INVALID);
	e.read.patterns = saved;
	free(bad);
	trust_entry_clear(&e);
	CHECK_ERR(trust_put(node, NULL), FERRY_E_INVALID);
	ferry_node_close(node);
}

/* Values written by another tool, or by a future ferry. */
static void test_trust_decoding(void)
{
	ferry_node *node = test_node("trust_decoding", 0);
	uint8_t id[FERRY_PUBLIC_KEY_BYTES];
	char key[FERRY_ID_HEX_BYTES];
	make_id(id, 0x44);
	ferry_id_to_hex(key, id);
	trust_entry got;

	/* Missing members take defaults; unknown members are ignored. */
	const char *minimal = "{\"name\": \"m\", \"future\": [1, 2]}";
	CHECK_NODE_OK(node, ferry_kv_put(node, "trust", key, minimal,
					 strlen(minimal)));
	CHECK_NODE_OK(node, trust_get(node, id, &got));
	CHECK(strcmp(got.name, "m") == 0);
	CHECK_EQ_U64(got.read.n, 0);
	CHECK_EQ_U64(got.write.n, 0);
	CHECK_EQ_U64(got.added_ms, 0);
	trust_entry_clear(&got);

	static const char *const corrupt[] = {
		"not json",
		"[1, 2]",
		"{\"name\": 7}",
		"{\"read\": \"a,b\"}",
		"{\"read\": [7]}",
		"{\"write\": [\"a*\"]}",
		"{\"write\": [\"a,b\"]}",
		"{\"write\": [\"\"]}",
		"{\"added_ms\": \"yesterday\"}",
		"{\"added_ms\": -5}",
		"{\"name\": \"a\", \"name\": \"b\"}",
		"{\"name\": "
		"\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}",
	};
	for (size_t i = 0; i < sizeof(corrupt) / sizeof(corrupt[0]); i++) {
		CHECK_NODE_OK(node, ferry_kv_put(node, "trust", key, corrupt[i],
						 strlen(corrupt[i])));
		int rc = trust_get(node, id, &got);
		if (rc != FERRY_E_CORRUPT)
			test_fail(__FILE__, __LINE__,
				  "decoding '%s': got %s, want "
				  "FERRY_E_CORRUPT",
				  corrupt[i], ferry_err_name(rc));
		/* The failed get leaves nothing to free behind. */
		CHECK(got.read.patterns == NULL && got.write.patterns == NULL);
	}
	/* A corrupt entry stops the listing with the error. */
	struct names n = {0};
	CHECK_ERR(trust_list(node, collect_name, &n), FERRY_E_CORRUPT);

	/* A key that is not an id is corrupt as well. */
	CHECK_NODE_OK(node, ferry_kv_delete(node, "trust", key));
	CHECK_NODE_OK(node, ferry_kv_put(node, "trust", "zz", "{}", 2));
	CHECK_ERR(trust_list(node, collect_name, &n), FERRY_E_CORRUPT);
	ferry_node_close(node);
}

struct urls {
	char list[1024];
	int count;
};

static int collect_url(const char *url, void *payload)
{
	struct urls *u = payload;
	size_t at = strlen(u->list);
	snprintf(u->list + at, sizeof(u->list) - at, "%s%s", at ? " " : "",
		 url);
	u->count++;
	return 0;
}

static void test_peers(void)
{
	ferry_node *node = test_node("peers", 0);
	struct urls u = {0};
	CHECK_NODE_OK(node, peers_list(node, collect_url, &u));
	CHECK_EQ_U64(u.count, 0);

	uint64_t gen = generation(node, "peers");
	CHECK_NODE_OK(node, peers_add(node, "wss://hq.example:7400/"));
	CHECK(generation(node, "peers") != gen);
	gen = generation(node, "peers");
	CHECK_NODE_OK(node, peers_add(node, "ws://10.0.0.7:7400"));
	CHECK(generation(node, "peers") != gen);
	/* Adding again is a no-op. */
	gen = generation(node, "peers");
	CHECK_NODE_OK(node, peers_add(node, "ws://10.0.0.7:7400"));
	CHECK_EQ_U64(generation(node, "peers"), gen);

	CHECK_NODE_OK(node, peers_list(node, collect_url, &u));
	CHECK_EQ_U64(u.count, 2);
	CHECK(strcmp(u.list, "ws://10.0.0.7:7400 wss://hq.example:7400/") == 0);

	static const char *const bad[] = {
		"http://hq.example/",
		"hq.example:7400",
		"ws://",
		"wss://",
		"ws:///path",
		"ws://hq example/",
		"ws://hq.example/\n",
		"WS://hq.example/",
		"",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = peers_add(node, bad[i]);
		if (rc != FERRY_E_INVALID)
			test_fail(__FILE__, __LINE__,
				  "peers_add('%s'): %s, want FERRY_E_INVALID",
				  bad[i], ferry_err_name(rc));
	}
	CHECK_ERR(peers_add(node, NULL), FERRY_E_INVALID);
	char long_url[TRUST_MAX_URL_BYTES + 2];
	memset(long_url, 'h', sizeof(long_url) - 1);
	memcpy(long_url, "ws://", 5);
	long_url[sizeof(long_url) - 1] = '\0';
	CHECK_ERR(peers_add(node, long_url), FERRY_E_INVALID);
	long_url[TRUST_MAX_URL_BYTES] = '\0'; /* exactly the limit */
	CHECK_NODE_OK(node, peers_add(node, long_url));
	CHECK_NODE_OK(node, peers_remove(node, long_url));

	gen = generation(node, "peers");
	CHECK_NODE_OK(node, peers_remove(node, "wss://hq.example:7400/"));
	CHECK(generation(node, "peers") != gen);
	CHECK_ERR(peers_remove(node, "wss://hq.example:7400/"),
		  FERRY_E_NOT_FOUND);
	memset(&u, 0, sizeof(u));
	CHECK_NODE_OK(node, peers_list(node, collect_url, &u));
	CHECK(strcmp(u.list, "ws://10.0.0.7:7400") == 0);
	ferry_node_close(node);
}

static void fill_status(peer_status *st, uint8_t fill)
{
	memset(st, 0, sizeof(*st));
	st->has_id = 1;
	make_id(st->id, fill);
	peer_status_key_id(st->key, sizeof(st->key), st->id);
	snprintf(st->name, sizeof(st->name), "peer-%02x", fill);
	snprintf(st->url, sizeof(st->url), "wss://p%02x.example/", fill);
	st->online = 1;
	st->updated_ms = 1700000000001;
	st->connected_ms = 1700000000002;
	st->last_sync_ms = 1700000000003;
	st->pending_send = 4;
	st->pending_recv = 5;
	st->sent = 6;
	st->received = 7;
	st->refused_in = 8;
	st->refused_out = 9;
	snprintf(st->last_refusal, sizeof(st->last_refusal),
		 "peer %02x may not write scope pricelist", fill);
	snprintf(st->last_error, sizeof(st->last_error),
		 "connection refused \xe2\x80\x94 retrying");
	st->last_error_ms = 1700000000010;
}

static void check_same_status(const peer_status *a, const peer_status *b)
{
	CHECK(strcmp(a->key, b->key) == 0);
	CHECK_EQ_U64(a->has_id, b->has_id);
	if (a->has_id)
		CHECK(memcmp(a->id, b->id, FERRY_PUBLIC_KEY_BYTES) == 0);
	CHECK(strcmp(a->name, b->name) == 0);
	CHECK(strcmp(a->url, b->url) == 0);
	CHECK_EQ_U64(a->online, b->online);
	CHECK_EQ_U64(a->updated_ms, b->updated_ms);
	CHECK_EQ_U64(a->connected_ms, b->connected_ms);
	CHECK_EQ_U64(a->last_sync_ms, b->last_sync_ms);
	CHECK_EQ_U64(a->pending_send, b->pending_send);
	CHECK_EQ_U64(a->pending_recv, b->pending_recv);
	CHECK_EQ_U64(a->sent, b->sent);
	CHECK_EQ_U64(a->received, b->received);
	CHECK_EQ_U64(a->refused_in, b->refused_in);
	CHECK_EQ_U64(a->refused_out, b->refused_out);
	CHECK(strcmp(a->last_refusal, b->last_refusal) == 0);
	CHECK(strcmp(a->last_error, b->last_error) == 0);
	CHECK_EQ_U64(a->last_error_ms, b->last_error_ms);
}

struct statuses {
	peer_status seen[4];
	int count;
};

static int collect_status(const peer_status *st, void *payload)
{
	struct statuses *s = payload;
	if (s->count < 4)
		s->seen[s->count] = *st;
	s->count++;
	return 0;
}

static void test_peer_status(void)
{
	ferry_node *node = test_node("peer_status", 0);
	peer_status st, got;
	fill_status(&st, 0x55);
	CHECK_ERR(peer_status_get(node, st.key, &got), FERRY_E_NOT_FOUND);

	uint64_t gen = generation(node, "peer_status");
	uint64_t trust_gen = generation(node, "trust");
	uint64_t peers_gen = generation(node, "peers");
	CHECK_NODE_OK(node, peer_status_put(node, &st));
	CHECK(generation(node, "peer_status") != gen);
	/* Status is written often; readers of the settings must not see
	 * that as a settings change. */
	CHECK_EQ_U64(generation(node, "trust"), trust_gen);
	CHECK_EQ_U64(generation(node, "peers"), peers_gen);
	CHECK_NODE_OK(node, peer_status_get(node, st.key, &got));
	check_same_status(&st, &got);

	/* Update in place. */
	st.online = 0;
	st.pending_send = 0;
	st.refused_out = 10;
	st.updated_ms++;
	gen = generation(node, "peer_status");
	CHECK_NODE_OK(node, peer_status_put(node, &st));
	CHECK(generation(node, "peer_status") != gen);
	CHECK_NODE_OK(node, peer_status_get(node, st.key, &got));
	check_same_status(&st, &got);

	/* A dialed peer not reached yet: keyed by URL, no id. */
	peer_status dial;
	memset(&dial, 0, sizeof(dial));
	snprintf(dial.url, sizeof(dial.url), "ws://10.0.0.9:7400");
	peer_status_key_url(dial.key, sizeof(dial.key), dial.url);
	CHECK(strcmp(dial.key, "url:ws://10.0.0.9:7400") == 0);
	snprintf(dial.last_error, sizeof(dial.last_error),
		 "connection refused");
	dial.last_error_ms = 1700000000100;
	dial.updated_ms = 1700000000100;
	CHECK_NODE_OK(node, peer_status_put(node, &dial));
	CHECK_NODE_OK(node, peer_status_get(node, dial.key, &got));
	check_same_status(&dial, &got);
	CHECK_EQ_U64(got.has_id, 0);

	/* An empty key is derived from the id; updated_ms 0 means now. */
	peer_status derived;
	fill_status(&derived, 0x01);
	derived.key[0] = '\0';
	derived.updated_ms = 0;
	CHECK_NODE_OK(node, peer_status_put(node, &derived));
	char key[sizeof(derived.key)];
	peer_status_key_id(key, sizeof(key), derived.id);
	CHECK_NODE_OK(node, peer_status_get(node, key, &got));
	CHECK(got.updated_ms > 1700000000000);

	peer_status nothing;
	memset(&nothing, 0, sizeof(nothing));
	CHECK_ERR(peer_status_put(node, &nothing), FERRY_E_INVALID);

	/* A reason cut inside a UTF-8 sequence still stores (as '?'). */
	peer_status cut;
	fill_status(&cut, 0x66);
	snprintf(cut.last_error, sizeof(cut.last_error), "bad \xe2\x80");
	CHECK_NODE_OK(node, peer_status_put(node, &cut));
	CHECK_NODE_OK(node, peer_status_get(node, cut.key, &got));
	CHECK(strcmp(got.last_error, "bad ??") == 0);

	/* Listed in key order: hex ids ("01...", "55...", "66..."), then
	 * "url:...". */
	struct statuses s;
	memset(&s, 0, sizeof(s));
	CHECK_NODE_OK(node, peer_status_list(node, collect_status, &s));
	CHECK_EQ_U64(s.count, 4);
	CHECK(strncmp(s.seen[0].key, "0101", 4) == 0);
	check_same_status(&st, &s.seen[1]);
	CHECK(strncmp(s.seen[2].key, "6666", 4) == 0);
	check_same_status(&dial, &s.seen[3]);

	/* Tolerant decoding: missing members, "online" as an integer, the
	 * id taken from the key. */
	char hexkey[FERRY_ID_HEX_BYTES];
	uint8_t id[FERRY_PUBLIC_KEY_BYTES];
	make_id(id, 0x77);
	ferry_id_to_hex(hexkey, id);
	const char *sparse = "{\"online\": 1, \"sent\": 3}";
	CHECK_NODE_OK(node, ferry_kv_put(node, "peer_status", hexkey, sparse,
					 strlen(sparse)));
	CHECK_NODE_OK(node, peer_status_get(node, hexkey, &got));
	CHECK_EQ_U64(got.has_id, 1);
	CHECK(memcmp(got.id, id, FERRY_PUBLIC_KEY_BYTES) == 0);
	CHECK_EQ_U64(got.online, 1);
	CHECK_EQ_U64(got.sent, 3);
	CHECK_EQ_U64(got.received, 0);
	CHECK(got.name[0] == '\0' && got.last_error[0] == '\0');

	static const char *const corrupt[] = {
		"{\"online\": \"yes\"}",
		"{\"sent\": 1.5}",
		"{\"id\": \"abc\"}",
		"{\"id\": 5}",
		"{\"last_error\": false}",
		"{\"pending_recv\": -1}",
		"[]",
	};
	for (size_t i = 0; i < sizeof(corrupt) / sizeof(corrupt[0]); i++) {
		CHECK_NODE_OK(node,
			      ferry_kv_put(node, "peer_status", hexkey,
					   corrupt[i], strlen(corrupt[i])));
		int rc = peer_status_get(node, hexkey, &got);
		if (rc != FERRY_E_CORRUPT)
			test_fail(__FILE__, __LINE__,
				  "decoding '%s': got %s, want "
				  "FERRY_E_CORRUPT",
				  corrupt[i], ferry_err_name(rc));
	}
	ferry_node_close(node);
}

/* Settings are shared by every process using the directory: what one
 * handle writes, another opened later reads. */
static void test_reopen(void)
{
	ferry_node *node = test_node("trust_reopen", 0);
	char *dir = strdup(ferry_node_dir(node));
	trust_entry e;
	make_entry(&e, 0x12, "kept", "x/*", "x");
	CHECK_NODE_OK(node, trust_put(node, &e));
	CHECK_NODE_OK(node, peers_add(node, "ws://kept.example/"));
	ferry_node_close(node);

	ferry_node_options opts = test_node_options(0);
	CHECK_OK(ferry_node_open(&node, dir, &opts, NULL));
	trust_entry got;
	CHECK_NODE_OK(node, trust_get(node, e.id, &got));
	CHECK(strcmp(got.name, "kept") == 0);
	check_grant(&got.read, "x/*");
	trust_entry_clear(&got);
	struct urls u = {0};
	CHECK_NODE_OK(node, peers_list(node, collect_url, &u));
	CHECK(strcmp(u.list, "ws://kept.example/") == 0);
	trust_entry_clear(&e);
	ferry_node_close(node);
	free(dir);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	test_trust_round_trip();
	test_trust_invalid();
	test_trust_decoding();
	test_peers();
	test_peer_status();
	test_reopen();
	printf("trust_test: ok\n");
	return 0;
}
