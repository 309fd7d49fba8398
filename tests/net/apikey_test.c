/*
 * apikey_test.c — API keys (net/apikey.c) on a real node's kv table:
 * creating, looking up, listing and revoking; that revocation is
 * immediate; that malformed and unknown tokens are indistinguishable
 * (FERRY_E_NOT_FOUND); unique names; grants that round-trip; and that no
 * part of a token ever reaches the store, only its hash.
 */
#include <string.h>

#include <sodium.h>

#include "apikey.h"
#include "testing.h"

#define TOKEN_CHARS 46 /* "fk_" + 43 */

static void check_grant(const grant *g, const char *want)
{
	char *text = grant_format(g);
	CHECK(text != NULL);
	if (strcmp(text, want) != 0)
		test_fail(__FILE__, __LINE__, "grant '%s', want '%s'", text,
			  want);
	free(text);
}

static void check_token_shape(const char *token)
{
	CHECK_EQ_U64(strlen(token), TOKEN_CHARS);
	CHECK(strncmp(token, "fk_", 3) == 0);
	for (const char *p = token + 3; *p; p++)
		CHECK((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_');
}

/* Create a key that must succeed. */
static void create(ferry_node *node, const char *name, const char *read,
		   const char *write, char token[APIKEY_TOKEN_BYTES],
		   apikey_info *info)
{
	char err[256];
	int rc = apikey_create(node, name, read, write, token, info, err,
			       sizeof(err));
	if (rc)
		test_fail(__FILE__, __LINE__, "apikey_create(%s): %s (%s)",
			  name, ferry_err_name(rc), err);
	check_token_shape(token);
}

/* apikey_list() callback: names in order, comma-separated. */
struct names {
	char list[1024];
	int count;
	int stop_after;
};

static int collect_name(const apikey_info *k, void *payload)
{
	struct names *n = payload;
	size_t at = strlen(n->list);
	snprintf(n->list + at, sizeof(n->list) - at, "%s%s", at ? "," : "",
		 k->name);
	n->count++;
	return n->stop_after && n->count >= n->stop_after;
}

static int count_keys(ferry_node *node)
{
	struct names n = {0};
	CHECK_NODE_OK(node, apikey_list(node, collect_name, &n));
	return n.count;
}

static void test_create_lookup(void)
{
	ferry_node *node = test_node("apikey_create_lookup", 0);
	char token[APIKEY_TOKEN_BYTES];
	apikey_info info;
	create(node, "web-shop", "shop, shop/*,pricelist", "shop", token,
	       &info);
	CHECK(strcmp(info.name, "web-shop") == 0);
	CHECK_EQ_U64(strlen(info.id), 16);
	CHECK(info.created_ms > 1700000000000);
	check_grant(&info.read, "shop,shop/*,pricelist");
	check_grant(&info.write, "shop");

	/* The id is the start of the stored hash: BLAKE2b-256 of the
	 * token, which is the table key. */
	unsigned char hash[32];
	char hex[65];
	crypto_generichash(hash, sizeof(hash), (const unsigned char *)token,
			   strlen(token), NULL, 0);
	sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));
	CHECK(strncmp(hex, info.id, 16) == 0);
	void *value;
	size_t len;
	CHECK_NODE_OK(node, ferry_kv_get(&value, &len, node, "apikeys", hex));
	free(value);

	hub_key key;
	CHECK_NODE_OK(node, apikey_lookup(node, token, &key));
	CHECK(strcmp(key.id, info.id) == 0);
	CHECK(strcmp(key.name, "web-shop") == 0);
	check_grant(&key.read, "shop,shop/*,pricelist");
	check_grant(&key.write, "shop");
	CHECK(grant_allows(&key.read, "shop/orders"));
	CHECK(!grant_allows(&key.write, "shop/orders"));
	hub_key_clear(&key);
	CHECK(key.read.patterns == NULL && key.write.patterns == NULL);
	hub_key_clear(&key); /* twice is harmless */
	hub_key_clear(NULL);

	/* Two keys, two different tokens and ids. */
	char token2[APIKEY_TOKEN_BYTES];
	apikey_info info2;
	create(node, "reports", "*", "", token2, &info2);
	CHECK(strcmp(token, token2) != 0);
	CHECK(strcmp(info.id, info2.id) != 0);
	CHECK_NODE_OK(node, apikey_lookup(node, token2, &key));
	CHECK(strcmp(key.name, "reports") == 0);
	check_grant(&key.read, "*");
	CHECK_EQ_U64(key.write.n, 0);
	hub_key_clear(&key);

	/* Without `out` (and with a NULL err) it works as well. */
	char token3[APIKEY_TOKEN_BYTES];
	CHECK_NODE_OK(node, apikey_create(node, "bare", NULL, NULL, token3,
					  NULL, NULL, 0));
	CHECK_NODE_OK(node, apikey_lookup(node, token3, &key));
	CHECK_EQ_U64(key.read.n, 0);
	CHECK_EQ_U64(key.write.n, 0);
	hub_key_clear(&key);

	apikey_info_clear(&info);
	apikey_info_clear(&info2);
	apikey_info_clear(NULL);
	ferry_node_close(node);
}

static void test_bad_tokens(void)
{
	ferry_node *node = test_node("apikey_bad_tokens", 0);
	char token[APIKEY_TOKEN_BYTES];
	apikey_info info;
	create(node, "k", "a", "b", token, &info);
	apikey_info_clear(&info);

	char buf[128];
	static const char *const bad[] = {
		"",
		"fk_",
		"fk",
		"Bearer fk_",
		"not a token at all",
		"\xff\xfe\x00",
		"fk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",  /* unknown */
		"fk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",   /* short */
		"fk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", /* long */
		"fk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",  /* pad */
		"fk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
		"fk_AAAAAAAAAAAAAAAAAAAAAA+AAAAAAAAAAAAAAAAAAAA", /* std b64 */
	};
	hub_key key;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = apikey_lookup(node, bad[i], &key);
		if (rc != FERRY_E_NOT_FOUND)
			test_fail(__FILE__, __LINE__,
				  "lookup of bad token #%zu: %s, want "
				  "FERRY_E_NOT_FOUND",
				  i, ferry_err_name(rc));
		CHECK(key.read.patterns == NULL && key.write.patterns == NULL);
	}
	CHECK_ERR(apikey_lookup(node, NULL, &key), FERRY_E_NOT_FOUND);

	/* Near misses of the real token: one character changed, cut
	 * short, extended, other prefix, other case. */
	snprintf(buf, sizeof(buf), "%s", token);
	buf[10] = buf[10] == 'A' ? 'B' : 'A';
	CHECK_ERR(apikey_lookup(node, buf, &key), FERRY_E_NOT_FOUND);
	snprintf(buf, sizeof(buf), "%s", token);
	buf[TOKEN_CHARS - 1] = '\0';
	CHECK_ERR(apikey_lookup(node, buf, &key), FERRY_E_NOT_FOUND);
	snprintf(buf, sizeof(buf), "%sA", token);
	CHECK_ERR(apikey_lookup(node, buf, &key), FERRY_E_NOT_FOUND);
	snprintf(buf, sizeof(buf), "fx_%s", token + 3);
	CHECK_ERR(apikey_lookup(node, buf, &key), FERRY_E_NOT_FOUND);
	snprintf(buf, sizeof(buf), "FK_%s", token + 3);
	CHECK_ERR(apikey_lookup(node, buf, &key), FERRY_E_NOT_FOUND);
	snprintf(buf, sizeof(buf), " %s", token);
	CHECK_ERR(apikey_lookup(node, buf, &key), FERRY_E_NOT_FOUND);

	/* A wrong token cannot be told from a malformed one, and the real
	 * one still works. */
	CHECK_NODE_OK(node, apikey_lookup(node, token, &key));
	hub_key_clear(&key);
	ferry_node_close(node);
}

static void test_names(void)
{
	ferry_node *node = test_node("apikey_names", 0);
	char token[APIKEY_TOKEN_BYTES], err[256];
	apikey_info info;
	create(node, "shop", "a", "a", token, &info);
	apikey_info_clear(&info);

	/* Taken: refused, with nothing stored and no token handed out. */
	memset(token, 'x', sizeof(token));
	CHECK_ERR(apikey_create(node, "shop", "b", "b", token, &info, err,
				sizeof(err)),
		  FERRY_E_INVALID);
	CHECK(strcmp(err, "name taken") == 0);
	CHECK(token[0] == '\0');
	CHECK(info.read.patterns == NULL && info.write.patterns == NULL);
	CHECK_EQ_U64(count_keys(node), 1);

	static const char *const bad_names[] = {
		"",
		"bad\nname",
		"tab\there",
		"del\x7f",
		"bad\xff",
		"\xc0\xaf", /* overlong '/' */
		/* 65 bytes, one over the limit */
		("0123456789012345678901234567890123456789012345678901234567890"
		 "1"
		 "234"),
	};
	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		int rc = apikey_create(node, bad_names[i], "a", "a", token,
				       &info, err, sizeof(err));
		if (rc != FERRY_E_INVALID)
			test_fail(__FILE__, __LINE__,
				  "bad name #%zu: %s, want FERRY_E_INVALID", i,
				  ferry_err_name(rc));
		CHECK(err[0] != '\0');
	}
	CHECK_ERR(apikey_create(node, NULL, "a", "a", token, &info, err,
				sizeof(err)),
		  FERRY_E_INVALID);

	/* Exactly 64 bytes, and multi-byte UTF-8, are fine. */
	char longest[APIKEY_MAX_NAME_BYTES + 1];
	memset(longest, 'n', APIKEY_MAX_NAME_BYTES);
	longest[APIKEY_MAX_NAME_BYTES] = '\0';
	create(node, longest, "", "", token, &info);
	CHECK(strcmp(info.name, longest) == 0);
	apikey_info_clear(&info);
	create(node, "касса \xe2\x80\x94 7", "", "", token, &info);
	apikey_info_clear(&info);

	/* Bad patterns: FERRY_E_INVALID, saying which grant. */
	CHECK_ERR(apikey_create(node, "p1", "clinic-*", "", token, &info, err,
				sizeof(err)),
		  FERRY_E_INVALID);
	CHECK(strncmp(err, "read: ", 6) == 0 && strstr(err, "'*'"));
	CHECK_ERR(apikey_create(node, "p2", "", "a,,b", token, &info, err,
				sizeof(err)),
		  FERRY_E_INVALID);
	CHECK(strncmp(err, "write: ", 7) == 0 && strstr(err, "empty"));
	char many[GRANT_MAX_PATTERNS * 8] = "";
	for (int i = 0; i <= GRANT_MAX_PATTERNS; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many),
			 "%sp%d", i ? "," : "", i);
	CHECK_ERR(apikey_create(node, "p3", many, "", token, &info, err,
				sizeof(err)),
		  FERRY_E_INVALID);
	CHECK_EQ_U64(count_keys(node), 3);

	/* A revoked key's name is free again. */
	CHECK_NODE_OK(node, apikey_revoke(node, "shop"));
	create(node, "shop", "", "", token, &info);
	apikey_info_clear(&info);
	ferry_node_close(node);
}

/* apikey_list() callback keeping copies of the ids, in order. */
struct ids {
	char id[8][17];
	char name[8][APIKEY_MAX_NAME_BYTES + 1];
	uint64_t created[8];
	int count;
};

static int collect_id(const apikey_info *k, void *payload)
{
	struct ids *s = payload;
	if (s->count < 8) {
		memcpy(s->id[s->count], k->id, sizeof(k->id));
		memcpy(s->name[s->count], k->name, sizeof(k->name));
		s->created[s->count] = k->created_ms;
	}
	s->count++;
	return 0;
}

static void test_list_revoke(void)
{
	ferry_node *node = test_node("apikey_list_revoke", 0);
	CHECK_EQ_U64(count_keys(node), 0);
	CHECK_ERR(apikey_revoke(node, "nothing"), FERRY_E_NOT_FOUND);

	char tokens[4][APIKEY_TOKEN_BYTES];
	apikey_info infos[4];
	const char *names[4] = {"alpha", "beta", "gamma", "delta"};
	for (int i = 0; i < 4; i++)
		create(node, names[i], "s", "", tokens[i], &infos[i]);

	/* Listed in hash (id) order, with the right names. */
	struct ids seen = {0};
	CHECK_NODE_OK(node, apikey_list(node, collect_id, &seen));
	CHECK_EQ_U64(seen.count, 4);
	for (int i = 1; i < 4; i++)
		CHECK(strcmp(seen.id[i - 1], seen.id[i]) < 0);
	for (int i = 0; i < 4; i++) {
		int found = 0;
		for (int j = 0; j < 4; j++)
			if (strcmp(seen.id[j], infos[i].id) == 0) {
				CHECK(strcmp(seen.name[j], names[i]) == 0);
				CHECK_EQ_U64(seen.created[j],
					     infos[i].created_ms);
				found = 1;
			}
		CHECK(found);
	}
	struct names stop = {.stop_after = 2};
	CHECK_NODE_OK(node, apikey_list(node, collect_name, &stop));
	CHECK_EQ_U64(stop.count, 2);

	hub_key key;
	/* By name: gone at once, for lookups too. */
	CHECK_NODE_OK(node, apikey_lookup(node, tokens[0], &key));
	hub_key_clear(&key);
	CHECK_NODE_OK(node, apikey_revoke(node, "alpha"));
	CHECK_ERR(apikey_lookup(node, tokens[0], &key), FERRY_E_NOT_FOUND);
	CHECK_ERR(apikey_revoke(node, "alpha"), FERRY_E_NOT_FOUND);
	CHECK_EQ_U64(count_keys(node), 3);

	/* By the full 16-digit id, in upper case too. */
	char upper[17];
	for (int i = 0; i < 17; i++)
		upper[i] = (char)(infos[1].id[i] >= 'a' && infos[1].id[i] <= 'f'
					  ? infos[1].id[i] - 'a' + 'A'
					  : infos[1].id[i]);
	CHECK_NODE_OK(node, apikey_revoke(node, upper));
	CHECK_ERR(apikey_lookup(node, tokens[1], &key), FERRY_E_NOT_FOUND);

	/* By an 8-digit prefix; 7 digits are too few to name a key. */
	char prefix[17];
	snprintf(prefix, sizeof(prefix), "%.7s", infos[2].id);
	CHECK_ERR(apikey_revoke(node, prefix), FERRY_E_NOT_FOUND);
	snprintf(prefix, sizeof(prefix), "%.8s", infos[2].id);
	CHECK_NODE_OK(node, apikey_revoke(node, prefix));
	CHECK_ERR(apikey_lookup(node, tokens[2], &key), FERRY_E_NOT_FOUND);
	/* A longer string than an id is no id. */
	char longer[20];
	snprintf(longer, sizeof(longer), "%s0", infos[3].id);
	CHECK_ERR(apikey_revoke(node, longer), FERRY_E_NOT_FOUND);
	CHECK_ERR(apikey_revoke(node, ""), FERRY_E_NOT_FOUND);
	CHECK_ERR(apikey_revoke(node, NULL), FERRY_E_NOT_FOUND);

	/* The untouched key still works; nothing else is left. */
	CHECK_NODE_OK(node, apikey_lookup(node, tokens[3], &key));
	CHECK(strcmp(key.name, "delta") == 0);
	hub_key_clear(&key);
	CHECK_EQ_U64(count_keys(node), 1);

	/* A key named like another key's id prefix: revoking that string
	 * is ambiguous and removes nothing. */
	char decoy_name[9];
	snprintf(decoy_name, sizeof(decoy_name), "%.8s", infos[3].id);
	char decoy[APIKEY_TOKEN_BYTES];
	apikey_info decoy_info;
	create(node, decoy_name, "", "", decoy, &decoy_info);
	CHECK_ERR(apikey_revoke(node, decoy_name), FERRY_E_INVALID);
	CHECK_EQ_U64(count_keys(node), 2);
	/* Its own id still names it uniquely. */
	CHECK_NODE_OK(node, apikey_revoke(node, decoy_info.id));
	CHECK_NODE_OK(node, apikey_lookup(node, tokens[3], &key));
	hub_key_clear(&key);
	apikey_info_clear(&decoy_info);

	for (int i = 0; i < 4; i++)
		apikey_info_clear(&infos[i]);
	ferry_node_close(node);
}

/* Revocation is seen at once by another process on the same directory
 * (the hub reads the table on every request). */
struct child_revoke {
	char dir[4200];
	const char *name;
};

static int child_revoke(void *arg)
{
	struct child_revoke *c = arg;
	ferry_node_options opts = test_node_options(0);
	ferry_node *node;
	if (ferry_node_open(&node, c->dir, &opts, NULL))
		return 10;
	int rc = apikey_revoke(node, c->name);
	ferry_node_close(node);
	return rc ? 11 : 0;
}

static void test_revoke_other_process(void)
{
	struct child_revoke c = {.name = "shared"};
	snprintf(c.dir, sizeof(c.dir), "%s/node",
		 test_tmpdir("apikey_other_process"));
	ferry_node_options opts = test_node_options(0);
	ferry_node *node;
	CHECK_OK(ferry_node_open(&node, c.dir, &opts, NULL));
	char token[APIKEY_TOKEN_BYTES];
	apikey_info info;
	create(node, "shared", "x", "", token, &info);
	hub_key key;
	CHECK_NODE_OK(node, apikey_lookup(node, token, &key));
	hub_key_clear(&key);
	CHECK_EQ_U64(test_wait(test_spawn(child_revoke, &c, NULL)), 0);
	CHECK_ERR(apikey_lookup(node, token, &key), FERRY_E_NOT_FOUND);
	apikey_info_clear(&info);
	ferry_node_close(node);
}

/* kv scan callback: fail if any stored key or value holds the token, or
 * its secret part. */
struct leak_scan {
	const char *token;
	int entries;
};

static int memmem_found(const void *hay, size_t hlen, const char *needle)
{
	size_t nlen = strlen(needle);
	const char *h = hay;
	for (size_t i = 0; nlen <= hlen && i <= hlen - nlen; i++)
		if (memcmp(h + i, needle, nlen) == 0)
			return 1;
	return 0;
}

static int leak_cb(const char *key, const void *value, size_t len,
		   void *payload)
{
	struct leak_scan *s = payload;
	s->entries++;
	/* Any 12 consecutive characters of the secret would be a leak. */
	char piece[13];
	for (size_t at = 3; at + 12 <= strlen(s->token); at++) {
		memcpy(piece, s->token + at, 12);
		piece[12] = '\0';
		if (memmem_found(value, len, piece) ||
		    memmem_found(key, strlen(key), piece))
			test_fail(__FILE__, __LINE__,
				  "the store holds part of a token: key %s",
				  key);
	}
	return 0;
}

static void test_no_token_stored(void)
{
	ferry_node *node = test_node("apikey_no_token_stored", 0);
	char tokens[8][APIKEY_TOKEN_BYTES];
	apikey_info info;
	for (int i = 0; i < 8; i++) {
		char name[16];
		snprintf(name, sizeof(name), "key-%d", i);
		create(node, name, "*", "w/*", tokens[i], &info);
		apikey_info_clear(&info);
	}
	for (int i = 0; i < 8; i++) {
		struct leak_scan s = {.token = tokens[i]};
		CHECK_NODE_OK(node,
			      ferry_kv_scan(node, "apikeys", leak_cb, &s));
		CHECK_EQ_U64(s.entries, 8);
	}

	/* And what is stored is the documented JSON. */
	unsigned char hash[32];
	char hex[65];
	crypto_generichash(hash, sizeof(hash), (const unsigned char *)tokens[0],
			   strlen(tokens[0]), NULL, 0);
	sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));
	void *value;
	size_t len;
	CHECK_NODE_OK(node, ferry_kv_get(&value, &len, node, "apikeys", hex));
	json_error_t jerr;
	json_t *doc = json_loadb(value, len, 0, &jerr);
	free(value);
	CHECK(doc != NULL);
	CHECK(strcmp(json_string_value(json_object_get(doc, "name")),
		     "key-0") == 0);
	CHECK(json_array_size(json_object_get(doc, "read")) == 1);
	CHECK(json_array_size(json_object_get(doc, "write")) == 1);
	CHECK(json_integer_value(json_object_get(doc, "created_ms")) > 0);
	CHECK_EQ_U64(json_object_size(doc), 4);
	json_decref(doc);
	ferry_node_close(node);
}

/* Values written by hand or by another version. */
static void test_decoding(void)
{
	ferry_node *node = test_node("apikey_decoding", 0);
	char token[APIKEY_TOKEN_BYTES];
	apikey_info info;
	create(node, "victim", "a", "b", token, &info);
	unsigned char hash[32];
	char hex[65];
	crypto_generichash(hash, sizeof(hash), (const unsigned char *)token,
			   strlen(token), NULL, 0);
	sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));
	hub_key key;

	/* Missing members take defaults; unknown ones are ignored. */
	const char *minimal = "{\"name\": \"m\", \"future\": true}";
	CHECK_NODE_OK(node, ferry_kv_put(node, "apikeys", hex, minimal,
					 strlen(minimal)));
	CHECK_NODE_OK(node, apikey_lookup(node, token, &key));
	CHECK(strcmp(key.name, "m") == 0);
	CHECK_EQ_U64(key.read.n + key.write.n, 0);
	hub_key_clear(&key);

	static const char *const corrupt[] = {
		"not json",
		"[]",
		"{}",
		"{\"name\": 7}",
		"{\"name\": \"\"}",
		"{\"name\": \"a\\nb\"}",
		"{\"name\": \"m\", \"read\": \"a,b\"}",
		"{\"name\": \"m\", \"read\": [\"a*\"]}",
		"{\"name\": \"m\", \"write\": [7]}",
		"{\"name\": \"m\", \"created_ms\": -1}",
		"{\"name\": \"m\", \"created_ms\": \"now\"}",
		"{\"name\": \"a\", \"name\": \"b\"}",
	};
	for (size_t i = 0; i < sizeof(corrupt) / sizeof(corrupt[0]); i++) {
		CHECK_NODE_OK(node,
			      ferry_kv_put(node, "apikeys", hex, corrupt[i],
					   strlen(corrupt[i])));
		int rc = apikey_lookup(node, token, &key);
		if (rc != FERRY_E_CORRUPT)
			test_fail(__FILE__, __LINE__,
				  "decoding '%s': %s, want FERRY_E_CORRUPT",
				  corrupt[i], ferry_err_name(rc));
		CHECK(key.read.patterns == NULL && key.write.patterns == NULL);
	}
	struct names n = {0};
	CHECK_ERR(apikey_list(node, collect_name, &n), FERRY_E_CORRUPT);
	/* A damaged record neither blocks new keys nor resists revocation
	 * by id. */
	char token2[APIKEY_TOKEN_BYTES];
	apikey_info info2;
	create(node, "victim", "", "", token2, &info2);
	CHECK_NODE_OK(node, apikey_revoke(node, info.id));
	CHECK_ERR(apikey_lookup(node, token, &key), FERRY_E_NOT_FOUND);
	CHECK_EQ_U64(count_keys(node), 1);

	/* A table key that is not a hash is damage too. */
	CHECK_NODE_OK(node, ferry_kv_put(node, "apikeys", "zz",
					 "{\"name\": \"z\"}", 13));
	CHECK_ERR(apikey_list(node, collect_name, &n), FERRY_E_CORRUPT);
	apikey_info_clear(&info);
	apikey_info_clear(&info2);
	ferry_node_close(node);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	CHECK(sodium_init() >= 0);
	test_create_lookup();
	test_bad_tokens();
	test_names();
	test_list_revoke();
	test_revoke_other_process();
	test_no_token_stored();
	test_decoding();
	printf("apikey_test: ok\n");
	return 0;
}
