/*
 * node_test.c — opening a node (engine/node.c): directory and key files,
 * identity across reopen, refusal of unsafe or mismatched key files; the
 * error names and texts; hex ids.
 */
#include "engine_helpers.h"

static ferry_err try_open(const char *dir, char **detail)
{
	ferry_node_options opts = test_node_options(0);
	ferry_node *node = NULL;
	*detail = NULL;
	ferry_err err = ferry_node_open(&node, dir, &opts, detail);
	if (err == FERRY_OK) {
		CHECK(node != NULL);
		ferry_node_close(node);
	} else {
		CHECK(node == NULL);
	}
	return err;
}

static void path_in(char *out, size_t cap, const char *dir, const char *name)
{
	snprintf(out, cap, "%s/%s", dir, name);
}

static void test_open_creates(void)
{
	const char *dir = eh_node_dir("node-create");
	char path[4300];
	struct stat st;
	uint8_t id[FERRY_PUBLIC_KEY_BYTES];

	CHECK(stat(dir, &st) != 0);
	ferry_node *node = eh_open(dir, NULL);
	CHECK(stat(dir, &st) == 0 && S_ISDIR(st.st_mode));
	CHECK((st.st_mode & 077) == 0);
	path_in(path, sizeof(path), dir, "node.key");
	CHECK(stat(path, &st) == 0 && S_ISREG(st.st_mode));
	CHECK_EQ_U64(st.st_mode & 0777, 0600);
	CHECK_EQ_U64(st.st_size, 64);
	path_in(path, sizeof(path), dir, "node.pub");
	CHECK(stat(path, &st) == 0 && S_ISREG(st.st_mode));

	/* node.pub holds the id in hex. */
	char pub[256], hex[FERRY_ID_HEX_BYTES];
	size_t n = eh_read_file(path, pub, sizeof(pub) - 1);
	pub[n] = '\0';
	ferry_id_to_hex(hex, ferry_node_id(node));
	CHECK(n >= FERRY_ID_HEX_BYTES - 1);
	CHECK(!strncmp(pub, hex, FERRY_ID_HEX_BYTES - 1));

	CHECK(!strcmp(ferry_node_dir(node), dir));
	CHECK(!strcmp(ferry_node_errmsg(node), ""));
	memcpy(id, ferry_node_id(node), sizeof(id));
	eh_put_int(node, "s", "c", "k", "f", 1);
	ferry_node_close(node);

	/* Reopen: same identity, same data. */
	node = eh_open(dir, NULL);
	CHECK(!memcmp(id, ferry_node_id(node), sizeof(id)));
	ferry_record *rec = NULL;
	CHECK_NODE_OK(node, ferry_get(&rec, node, "s", "c", "k"));
	ferry_record_free(rec);
	ferry_node_close(node);

	/* Nested directories that do not exist yet are created. */
	char nested[4300];
	snprintf(nested, sizeof(nested), "%s/a/b/c", test_tmpdir("node-nest"));
	node = eh_open(nested, NULL);
	ferry_node_close(node);

	/* Two different nodes have different ids. */
	ferry_node *a = test_node("node-id-a", 0);
	ferry_node *b = test_node("node-id-b", 0);
	CHECK(memcmp(ferry_node_id(a), ferry_node_id(b),
		     FERRY_PUBLIC_KEY_BYTES) != 0);
	ferry_node_close(a);
	ferry_node_close(b);
}

static void test_bad_key_files(void)
{
	const char *dir = eh_node_dir("node-keyfile");
	const char *other = eh_node_dir("node-other");
	char key[4300], pub[4300], other_key[4300];
	uint8_t sk[128], sk_other[128];
	char *detail = NULL;

	ferry_node_close(eh_open(dir, NULL));
	ferry_node_close(eh_open(other, NULL));
	path_in(key, sizeof(key), dir, "node.key");
	path_in(pub, sizeof(pub), dir, "node.pub");
	path_in(other_key, sizeof(other_key), other, "node.key");
	size_t sk_len = eh_read_file(key, sk, sizeof(sk));
	CHECK_EQ_U64(sk_len, 64);
	CHECK_EQ_U64(eh_read_file(other_key, sk_other, sizeof(sk_other)), 64);

	/* Readable by group or others: refused, with a detail that names
	 * the file. */
	CHECK(chmod(key, 0644) == 0);
	CHECK_ERR(try_open(dir, &detail), FERRY_E_KEY_FILE);
	CHECK(detail != NULL && strstr(detail, "node.key") != NULL);
	free(detail);
	CHECK(chmod(key, 0640) == 0);
	CHECK_ERR(try_open(dir, &detail), FERRY_E_KEY_FILE);
	free(detail);
	CHECK(chmod(key, 0600) == 0);
	CHECK_OK(try_open(dir, &detail));
	free(detail);
	/* A NULL errdetail is allowed. */
	CHECK(chmod(key, 0604) == 0);
	ferry_node *node = NULL;
	ferry_node_options opts = test_node_options(0);
	CHECK_ERR(ferry_node_open(&node, dir, &opts, NULL), FERRY_E_KEY_FILE);
	CHECK(node == NULL);
	CHECK(chmod(key, 0600) == 0);

	/* Another node's key: does not match node.pub. */
	eh_write_file(key, sk_other, 64, 0600);
	CHECK_ERR(try_open(dir, &detail), FERRY_E_KEY_FILE);
	CHECK(detail != NULL && *detail);
	free(detail);

	/* Truncated key. */
	eh_write_file(key, sk, 40, 0600);
	CHECK_ERR(try_open(dir, &detail), FERRY_E_KEY_FILE);
	CHECK(detail != NULL && *detail);
	free(detail);

	/* Key deleted while node.pub remains: a fresh key would silently
	 * change the node's identity, so it must not open. */
	CHECK(unlink(key) == 0);
	CHECK_ERR(try_open(dir, &detail), FERRY_E_KEY_FILE);
	free(detail);

	/* The original key restored: opens again. */
	eh_write_file(key, sk, 64, 0600);
	CHECK_OK(try_open(dir, &detail));
	free(detail);

	/* A damaged node.pub. */
	eh_write_file(pub, "not hex\n", 8, 0644);
	CHECK_ERR(try_open(dir, &detail), FERRY_E_KEY_FILE);
	free(detail);
}

static void test_bad_options(void)
{
	const char *dir = eh_node_dir("node-opts");
	ferry_node_options opts = test_node_options(0);
	ferry_node *node = NULL;
	char *detail = NULL;

	/* An options struct from a newer (or broken) caller: the header
	 * does not say which code, INVALID or VERSION both describe it. */
	opts.version = FERRY_NODE_OPTIONS_VERSION + 100;
	int err = ferry_node_open(&node, dir, &opts, &detail);
	CHECK(err == FERRY_E_INVALID || err == FERRY_E_VERSION);
	CHECK(node == NULL);
	free(detail);
	detail = NULL;
	opts = test_node_options(0);
	CHECK_ERR(ferry_node_open(&node, NULL, &opts, &detail),
		  FERRY_E_INVALID);
	CHECK(node == NULL);
	free(detail);
	detail = NULL;
	CHECK_ERR(ferry_node_open(&node, "", &opts, &detail), FERRY_E_INVALID);
	free(detail);
	detail = NULL;
	/* A regular file where the directory should be. */
	char file[4300];
	snprintf(file, sizeof(file), "%s/plain", test_tmpdir("node-file"));
	eh_write_file(file, "x", 1, 0600);
	CHECK(ferry_node_open(&node, file, &opts, &detail) != FERRY_OK);
	CHECK(node == NULL);
	free(detail);
	/* NULL options mean defaults. */
	detail = NULL;
	CHECK_OK(ferry_node_open(&node, dir, NULL, &detail));
	ferry_node_close(node);
	ferry_node_close(NULL);
}

static void test_errors(void)
{
	static const int codes[] = {
#define CODE_(name, code, text) code,
		FERRY_ERRORS(CODE_)
#undef CODE_
	};
	static const char *const names[] = {
#define NAME_(name, code, text) "FERRY_" #name,
		FERRY_ERRORS(NAME_)
#undef NAME_
	};
	const size_t n = sizeof(codes) / sizeof(codes[0]);
	CHECK(n >= 20);
	for (size_t i = 0; i < n; i++) {
		const char *name = ferry_err_name(codes[i]);
		const char *text = ferry_strerror(codes[i]);
		CHECK(name != NULL && text != NULL && *text);
		CHECK(!strcmp(name, names[i]));
		for (size_t j = 0; j < i; j++) {
			CHECK(codes[i] != codes[j]);
			CHECK(strcmp(name, ferry_err_name(codes[j])) != 0);
			CHECK(strcmp(text, ferry_strerror(codes[j])) != 0);
		}
	}
	CHECK(!strcmp(ferry_err_name(FERRY_E_GAP), "FERRY_E_GAP"));
	CHECK(!strcmp(ferry_err_name(FERRY_OK), "FERRY_OK"));
	CHECK(ferry_strerror(-1000) != NULL);
	CHECK(ferry_err_name(-1000) != NULL);
	CHECK(ferry_strerror(12345) != NULL);
	CHECK(ferry_err_name(12345) != NULL);
}

static void test_hex(void)
{
	uint8_t id[FERRY_PUBLIC_KEY_BYTES], back[FERRY_PUBLIC_KEY_BYTES];
	char hex[FERRY_ID_HEX_BYTES];
	for (int round = 0; round < 100; round++) {
		for (size_t i = 0; i < sizeof(id); i++)
			id[i] = (uint8_t)test_rand();
		if (round == 0)
			memset(id, 0, sizeof(id));
		if (round == 1)
			memset(id, 0xff, sizeof(id));
		memset(hex, 'Z', sizeof(hex));
		ferry_id_to_hex(hex, id);
		CHECK_EQ_U64(strlen(hex), 64);
		for (size_t i = 0; i < 64; i++)
			CHECK((hex[i] >= '0' && hex[i] <= '9') ||
			      (hex[i] >= 'a' && hex[i] <= 'f'));
		CHECK_OK(ferry_id_from_hex(back, hex));
		CHECK(!memcmp(id, back, sizeof(id)));
	}
	/* Upper case is still hex. */
	char upper[FERRY_ID_HEX_BYTES];
	for (size_t i = 0; i < sizeof(upper); i++)
		upper[i] = (char)(hex[i] >= 'a' && hex[i] <= 'f'
					  ? hex[i] - 'a' + 'A'
					  : hex[i]);
	int uerr = ferry_id_from_hex(back, upper);
	CHECK(uerr == FERRY_OK || uerr == FERRY_E_INVALID);
	if (uerr == FERRY_OK)
		CHECK(!memcmp(id, back, sizeof(id)));

	char bad[80];
	CHECK_ERR(ferry_id_from_hex(back, ""), FERRY_E_INVALID);
	memcpy(bad, hex, 63);
	bad[63] = '\0';
	CHECK_ERR(ferry_id_from_hex(back, bad), FERRY_E_INVALID);
	memcpy(bad, hex, 64);
	bad[64] = '0';
	bad[65] = '\0';
	CHECK_ERR(ferry_id_from_hex(back, bad), FERRY_E_INVALID);
	static const char nonhex[] = "gx- :/@G\xff";
	for (size_t k = 0; k < sizeof(nonhex) - 1; k++) {
		for (size_t pos = 0; pos < 64; pos += 21) {
			memcpy(bad, hex, 65);
			bad[pos] = nonhex[k];
			CHECK_ERR(ferry_id_from_hex(back, bad),
				  FERRY_E_INVALID);
		}
	}
	memcpy(bad, hex, 65);
	bad[63] = ' ';
	CHECK_ERR(ferry_id_from_hex(back, bad), FERRY_E_INVALID);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	test_open_creates();
	test_bad_key_files();
	test_bad_options();
	test_errors();
	test_hex();
	printf("node_test: ok\n");
	return 0;
}
