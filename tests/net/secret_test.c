/*
 * secret_test.c — secrets encrypted at rest (net/secret.c): round trips of
 * text and binary values up to the limit, replace, list and delete, name
 * rules, the secret.key file's creation and checks (mode, type, size, a
 * race of processes creating it), records altered, moved under another
 * name or opened with another node's key, and no plaintext in data.mdb.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "secret.h"
#include "testing.h"

#define TABLE "secrets"

/* A settable wall clock, so set times are known. */
static uint64_t fake_now = UINT64_C(1700000000000);

static uint64_t fake_clock(void *payload)
{
	(void)payload;
	return fake_now;
}

/* A node in a fresh directory `name`/node on the fake clock; its data
 * directory goes to `dir` (4200 bytes) when not NULL. */
static ferry_node *open_node(const char *name, char *dir)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/node", test_tmpdir(name));
	if (dir)
		snprintf(dir, 4200, "%s", path);
	ferry_node_options opts = test_node_options(0);
	opts.clock = fake_clock;
	ferry_node *node = NULL;
	char *detail = NULL;
	int err = ferry_node_open(&node, path, &opts, &detail);
	if (err)
		test_fail(__FILE__, __LINE__, "ferry_node_open(%s): %s: %s",
			  path, ferry_err_name(err), detail ? detail : "");
	return node;
}

static void key_path(char out[4200], ferry_node *node)
{
	snprintf(out, 4200, "%s/secret.key", ferry_node_dir(node));
}

/* `name` must hold exactly value[0..len). */
static void check_value(ferry_node *node, const char *name, const void *value,
			size_t len)
{
	char *got = NULL;
	size_t got_len = 0;
	CHECK_NODE_OK(node, secret_get(&got, &got_len, node, name));
	CHECK_EQ_U64(got_len, len);
	CHECK(memcmp(got, value, len) == 0);
	CHECK(got[len] == '\0');
	secret_free(got, got_len);
}

static void check_get_err(ferry_node *node, const char *name, int code)
{
	char *got = (char *)1;
	size_t got_len = 1;
	CHECK_ERR(secret_get(&got, &got_len, node, name), code);
	CHECK(got == NULL);
	CHECK_EQ_U64(got_len, 0);
}

static void set_str(ferry_node *node, const char *name, const char *value)
{
	CHECK_NODE_OK(node, secret_set(node, name, value, strlen(value)));
}

static void test_round_trip(void)
{
	ferry_node *node = open_node("secret_round_trip", NULL);
	check_get_err(node, "missing", FERRY_E_NOT_FOUND);

	set_str(node, "pms_token", "s3cr3t-t0ken");
	check_value(node, "pms_token", "s3cr3t-t0ken", 12);

	/* Binary: every byte value, NULs included. */
	uint8_t bin[512];
	for (size_t i = 0; i < sizeof(bin); i++)
		bin[i] = (uint8_t)i;
	CHECK_NODE_OK(node, secret_set(node, "bin", bin, sizeof(bin)));
	check_value(node, "bin", bin, sizeof(bin));
	uint8_t nul = 0;
	CHECK_NODE_OK(node, secret_set(node, "nul", &nul, 1));
	check_value(node, "nul", &nul, 1);

	/* Exactly the limit is fine; one byte more is refused. */
	uint8_t *big = malloc(SECRET_VALUE_MAX + 1);
	CHECK(big);
	for (size_t i = 0; i < SECRET_VALUE_MAX + 1; i++)
		big[i] = (uint8_t)test_rand();
	CHECK_NODE_OK(node, secret_set(node, "big", big, SECRET_VALUE_MAX));
	check_value(node, "big", big, SECRET_VALUE_MAX);
	CHECK_ERR(secret_set(node, "bigger", big, SECRET_VALUE_MAX + 1),
		  FERRY_E_LIMIT);
	check_get_err(node, "bigger", FERRY_E_NOT_FOUND);
	/* A refused replace keeps the old value. */
	CHECK_ERR(secret_set(node, "big", big, SECRET_VALUE_MAX + 1),
		  FERRY_E_LIMIT);
	check_value(node, "big", big, SECRET_VALUE_MAX);
	free(big);

	/* Empty values are refused. */
	CHECK_ERR(secret_set(node, "empty", "", 0), FERRY_E_INVALID);
	CHECK_ERR(secret_set(node, "empty", NULL, 3), FERRY_E_INVALID);
	check_get_err(node, "empty", FERRY_E_NOT_FOUND);
	secret_free(NULL, 0);

	/* Values survive a reopen (the key is read back from the file). */
	char dir[4200];
	snprintf(dir, sizeof(dir), "%s", ferry_node_dir(node));
	ferry_node_close(node);
	ferry_node_options opts = test_node_options(0);
	CHECK_OK(ferry_node_open(&node, dir, &opts, NULL));
	check_value(node, "pms_token", "s3cr3t-t0ken", 12);
	check_value(node, "bin", bin, sizeof(bin));
	ferry_node_close(node);
}

/* secret_list() callback: "name@ms;" appended to the string `arg`. */
static int collect(const char *name, uint64_t set_ms, void *arg)
{
	char *out = arg;
	size_t at = strlen(out);
	snprintf(out + at, 1024 - at, "%s@%llu;", name,
		 (unsigned long long)set_ms);
	return 0;
}

static int stop_at_first(const char *name, uint64_t set_ms, void *arg)
{
	(void)set_ms;
	snprintf(arg, 1024, "%s", name);
	return 1;
}

static void test_replace_list_delete(void)
{
	ferry_node *node = open_node("secret_list", NULL);
	char seen[1024] = "";
	CHECK_NODE_OK(node, secret_list(node, collect, seen));
	CHECK(strcmp(seen, "") == 0);

	fake_now = 1000;
	set_str(node, "c", "value-c");
	fake_now = 2000;
	set_str(node, "a", "value-a");
	fake_now = 3000;
	set_str(node, "b", "value-b");
	CHECK_NODE_OK(node, secret_list(node, collect, seen));
	CHECK(strcmp(seen, "a@2000;b@3000;c@1000;") == 0);

	/* Replace: the new value and the new time. */
	fake_now = 4000;
	set_str(node, "c", "value-c2");
	check_value(node, "c", "value-c2", 8);
	seen[0] = '\0';
	CHECK_NODE_OK(node, secret_list(node, collect, seen));
	CHECK(strcmp(seen, "a@2000;b@3000;c@4000;") == 0);
	CHECK(strstr(seen, "value") == NULL);

	/* The callback can stop the listing. */
	CHECK_NODE_OK(node, secret_list(node, stop_at_first, seen));
	CHECK(strcmp(seen, "a") == 0);

	/* A damaged record is still listed (time unknown) so it can be
	 * removed, and getting it says it is damaged. */
	CHECK_NODE_OK(node, ferry_kv_put(node, TABLE, "short", "\x01", 1));
	CHECK_NODE_OK(node, ferry_kv_put(node, TABLE, "zz_empty", "", 0));
	seen[0] = '\0';
	CHECK_NODE_OK(node, secret_list(node, collect, seen));
	CHECK(strcmp(seen, "a@2000;b@3000;c@4000;short@0;zz_empty@0;") == 0);
	check_get_err(node, "short", FERRY_E_CORRUPT);
	check_get_err(node, "zz_empty", FERRY_E_CORRUPT);

	/* Delete. */
	CHECK_NODE_OK(node, secret_delete(node, "b"));
	check_get_err(node, "b", FERRY_E_NOT_FOUND);
	CHECK_ERR(secret_delete(node, "b"), FERRY_E_NOT_FOUND);
	CHECK_ERR(secret_delete(node, "never"), FERRY_E_NOT_FOUND);
	CHECK_NODE_OK(node, secret_delete(node, "short"));
	CHECK_NODE_OK(node, secret_delete(node, "zz_empty"));
	seen[0] = '\0';
	CHECK_NODE_OK(node, secret_list(node, collect, seen));
	CHECK(strcmp(seen, "a@2000;c@4000;") == 0);
	check_value(node, "a", "value-a", 7);
	fake_now = UINT64_C(1700000000000);
	ferry_node_close(node);
}

static void test_names(void)
{
	char max[SECRET_NAME_MAX + 2];
	memset(max, 'n', SECRET_NAME_MAX);
	max[SECRET_NAME_MAX] = '\0';
	CHECK(secret_name_valid("a"));
	CHECK(secret_name_valid("Pms_token-2.prod"));
	CHECK(secret_name_valid("0.-_"));
	CHECK(secret_name_valid(max));

	static const char *const bad[] = {
		"",    "a b", "a/b",  "a:b",   "a\nb", "tab\t", "caf\xc3\xa9",
		"a\\", "a*",  "a\"b", "a\x7f", "\xff", "a,b",	"a=b",
	};
	char toolong[SECRET_NAME_MAX + 2];
	memset(toolong, 'n', SECRET_NAME_MAX + 1);
	toolong[SECRET_NAME_MAX + 1] = '\0';
	CHECK(!secret_name_valid(NULL));
	CHECK(!secret_name_valid(toolong));

	ferry_node *node = open_node("secret_names", NULL);
	set_str(node, max, "v");
	check_value(node, max, "v", 1);
	for (size_t i = 0; i <= sizeof(bad) / sizeof(bad[0]); i++) {
		const char *name =
			i < sizeof(bad) / sizeof(bad[0]) ? bad[i] : toolong;
		CHECK(!secret_name_valid(name));
		CHECK_ERR(secret_set(node, name, "v", 1), FERRY_E_INVALID);
		check_get_err(node, name, FERRY_E_INVALID);
		CHECK_ERR(secret_delete(node, name), FERRY_E_INVALID);
	}
	CHECK_ERR(secret_set(node, NULL, "v", 1), FERRY_E_INVALID);
	ferry_node_close(node);
}

static void test_trim(void)
{
	static const struct {
		const char *in;
		size_t want;
	} cases[] = {
		{"abc\n", 3},	  {"abc\r\n", 3}, {"abc", 3},  {"abc\n\n", 4},
		{"abc\r\n\n", 5}, {"abc\r", 4},	  {"\n", 0},   {"\r\n", 0},
		{"", 0},	  {"\r", 1},	  {"\n\r", 2}, {"a\nb", 3},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CHECK_EQ_U64(
			secret_value_trim(cases[i].in, strlen(cases[i].in)),
			cases[i].want);
	/* Only the end counts, and NULs are just bytes. */
	CHECK_EQ_U64(secret_value_trim("a\0\n", 3), 2);
	CHECK_EQ_U64(secret_value_trim(NULL, 0), 0);
}

/* Files in `dir` whose name contains "tmp". */
static size_t count_tmp(const char *dir)
{
	DIR *d = opendir(dir);
	CHECK(d);
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		n += strstr(e->d_name, "tmp") != NULL;
	closedir(d);
	return n;
}

/* Overwrite secret.key with `len` bytes of `data`, mode 0600. */
static void write_key(const char *path, const void *data, size_t len)
{
	unlink(path);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0);
	CHECK(write(fd, data, len) == (ssize_t)len);
	CHECK(close(fd) == 0);
}

static void test_key_file(void)
{
	ferry_node *node = open_node("secret_key_file", NULL);
	char path[4200];
	key_path(path, node);
	struct stat st;

	/* Created on the first set only: reading or listing does not. */
	check_get_err(node, "x", FERRY_E_NOT_FOUND);
	char seen[1024] = "";
	CHECK_NODE_OK(node, secret_list(node, collect, seen));
	CHECK(stat(path, &st) != 0 && errno == ENOENT);

	mode_t old_umask = umask(0277);
	set_str(node, "x", "value-x");
	umask(old_umask);
	CHECK(lstat(path, &st) == 0);
	CHECK(S_ISREG(st.st_mode));
	CHECK_EQ_U64(st.st_mode & 0777, 0600);
	CHECK_EQ_U64(st.st_size, 32);
	uint8_t key[32];
	int fd = open(path, O_RDONLY);
	CHECK(fd >= 0 && read(fd, key, sizeof(key)) == (ssize_t)sizeof(key));
	close(fd);
	/* No temporary file left behind. */
	CHECK_EQ_U64(count_tmp(ferry_node_dir(node)), 0);

	/* A second set uses the same key. */
	set_str(node, "y", "value-y");
	uint8_t again[32];
	fd = open(path, O_RDONLY);
	CHECK(fd >= 0 && read(fd, again, sizeof(again)) == (ssize_t)32);
	close(fd);
	CHECK(memcmp(key, again, sizeof(key)) == 0);

	/* Readable by group or others: refused both ways, value intact. */
	static const mode_t unsafe[] = {0644, 0640, 0604, 0660, 0601};
	for (size_t i = 0; i < sizeof(unsafe) / sizeof(unsafe[0]); i++) {
		CHECK(chmod(path, unsafe[i]) == 0);
		CHECK_ERR(secret_set(node, "z", "v", 1), FERRY_E_KEY_FILE);
		check_get_err(node, "x", FERRY_E_KEY_FILE);
	}
	CHECK(chmod(path, 0600) == 0);
	check_value(node, "x", "value-x", 7);
	check_get_err(node, "z", FERRY_E_NOT_FOUND);
	/* 0400 is private too. */
	CHECK(chmod(path, 0400) == 0);
	check_value(node, "x", "value-x", 7);

	/* Wrong size, either way. */
	write_key(path, key, 31);
	check_get_err(node, "x", FERRY_E_KEY_FILE);
	CHECK_ERR(secret_set(node, "z", "v", 1), FERRY_E_KEY_FILE);
	uint8_t longer[33] = {0};
	memcpy(longer, key, sizeof(key));
	write_key(path, longer, sizeof(longer));
	check_get_err(node, "x", FERRY_E_KEY_FILE);
	write_key(path, "", 0);
	check_get_err(node, "x", FERRY_E_KEY_FILE);
	CHECK_ERR(secret_set(node, "z", "v", 1), FERRY_E_KEY_FILE);

	/* Not a regular file: a symlink to the right key, a directory. */
	char real[4300];
	snprintf(real, sizeof(real), "%s.real", path);
	write_key(real, key, sizeof(key));
	unlink(path);
	CHECK(symlink(real, path) == 0);
	check_get_err(node, "x", FERRY_E_KEY_FILE);
	CHECK_ERR(secret_set(node, "z", "v", 1), FERRY_E_KEY_FILE);
	unlink(path);
	CHECK(mkdir(path, 0700) == 0);
	check_get_err(node, "x", FERRY_E_KEY_FILE);
	CHECK_ERR(secret_set(node, "z", "v", 1), FERRY_E_KEY_FILE);
	CHECK(rmdir(path) == 0);
	unlink(real);

	/* Missing while secrets exist: the value cannot be opened (and is
	 * not silently lost to a new key on get). */
	check_get_err(node, "x", FERRY_E_KEY_FILE);
	CHECK(stat(path, &st) != 0);

	/* Back in place: everything opens again. */
	write_key(path, key, sizeof(key));
	check_value(node, "x", "value-x", 7);
	check_value(node, "y", "value-y", 7);
	ferry_node_close(node);
}

/* A child racing to create secret.key: opens the node, waits for the
 * starting gun (EOF on a pipe), stores its own secret. */
struct racer {
	const char *dir;
	int go[2];
	int index;
};

static int race_set(void *arg)
{
	struct racer *r = arg;
	ferry_node_options opts = test_node_options(0);
	ferry_node *node = NULL;
	if (ferry_node_open(&node, r->dir, &opts, NULL) != FERRY_OK)
		return 2;
	/* Our copy of the write end would keep the pipe open forever. */
	close(r->go[1]);
	char c;
	while (read(r->go[0], &c, 1) > 0)
		;
	char name[32], value[32];
	snprintf(name, sizeof(name), "racer%d", r->index);
	snprintf(value, sizeof(value), "value of racer %d", r->index);
	ferry_err err = secret_set(node, name, value, strlen(value));
	ferry_node_close(node);
	return err ? 3 : 0;
}

static void test_key_race(void)
{
	enum { RACERS = 6 };
	char dir[4200];
	ferry_node *node = open_node("secret_key_race", dir);
	int go[2];
	CHECK(pipe(go) == 0);
	struct racer racers[RACERS];
	pid_t pids[RACERS];
	for (int i = 0; i < RACERS; i++) {
		racers[i] = (struct racer){dir, {go[0], go[1]}, i};
		pids[i] = test_spawn(race_set, &racers[i], NULL);
	}
	close(go[0]);
	usleep(100 * 1000);
	close(go[1]);
	for (int i = 0; i < RACERS; i++)
		CHECK_EQ_U64(test_wait(pids[i]), 0);
	/* One key for all: every racer's value opens here. */
	for (int i = 0; i < RACERS; i++) {
		char name[32], value[32];
		snprintf(name, sizeof(name), "racer%d", i);
		snprintf(value, sizeof(value), "value of racer %d", i);
		check_value(node, name, value, strlen(value));
	}
	CHECK_EQ_U64(count_tmp(dir), 0);
	ferry_node_close(node);
}

/* The raw stored record of `name`. */
static uint8_t *raw_get(ferry_node *node, const char *name, size_t *len)
{
	void *rec = NULL;
	CHECK_NODE_OK(node, ferry_kv_get(&rec, len, node, TABLE, name));
	return rec;
}

static void test_tamper(void)
{
	ferry_node *node = open_node("secret_tamper", NULL);
	set_str(node, "orig", "the original value");
	set_str(node, "other", "another value");
	size_t len;
	uint8_t *rec = raw_get(node, "orig", &len);
	/* version, time, nonce, MAC, value */
	CHECK_EQ_U64(len, 1 + 8 + 24 + 16 + 18);

	/* One flipped bit anywhere after the version byte: the header
	 * (time, nonce) and the box are all authenticated. */
	for (size_t i = 1; i < len; i++) {
		rec[i] ^= (uint8_t)(1u << (i % 8));
		CHECK_NODE_OK(node, ferry_kv_put(node, TABLE, "bad", rec, len));
		check_get_err(node, "bad", FERRY_E_DECRYPT);
		rec[i] ^= (uint8_t)(1u << (i % 8));
	}
	/* The version byte: an unknown format, not a guess. */
	rec[0] = 2;
	CHECK_NODE_OK(node, ferry_kv_put(node, TABLE, "bad", rec, len));
	check_get_err(node, "bad", FERRY_E_VERSION);
	rec[0] = 1;
	/* Truncated: too short to hold a box, or missing bytes. */
	CHECK_NODE_OK(node,
		      ferry_kv_put(node, TABLE, "bad", rec, 1 + 8 + 24 + 16));
	check_get_err(node, "bad", FERRY_E_CORRUPT);
	CHECK_NODE_OK(node, ferry_kv_put(node, TABLE, "bad", rec, len - 1));
	check_get_err(node, "bad", FERRY_E_DECRYPT);

	/* Moved under another name, new or existing: it does not open. */
	CHECK_NODE_OK(node, ferry_kv_put(node, TABLE, "copy", rec, len));
	check_get_err(node, "copy", FERRY_E_DECRYPT);
	CHECK_NODE_OK(node, ferry_kv_put(node, TABLE, "other", rec, len));
	check_get_err(node, "other", FERRY_E_DECRYPT);
	/* Put back under its own name, it does. */
	CHECK_NODE_OK(node, ferry_kv_put(node, TABLE, "orig", rec, len));
	check_value(node, "orig", "the original value", 18);
	free(rec);
	ferry_node_close(node);
}

static void test_other_node(void)
{
	ferry_node *a = open_node("secret_node_a", NULL);
	ferry_node *b = open_node("secret_node_b", NULL);
	set_str(a, "shared", "sealed on node a");
	set_str(b, "own", "sealed on node b");
	size_t len;
	uint8_t *rec = raw_get(a, "shared", &len);
	CHECK_NODE_OK(b, ferry_kv_put(b, TABLE, "shared", rec, len));
	free(rec);
	check_get_err(b, "shared", FERRY_E_DECRYPT);
	check_value(b, "own", "sealed on node b", 16);
	check_value(a, "shared", "sealed on node a", 16);

	/* The two keys differ. */
	char pa[4200], pb[4200];
	uint8_t ka[32], kb[32];
	key_path(pa, a);
	key_path(pb, b);
	int fd = open(pa, O_RDONLY);
	CHECK(fd >= 0 && read(fd, ka, 32) == 32);
	close(fd);
	fd = open(pb, O_RDONLY);
	CHECK(fd >= 0 && read(fd, kb, 32) == 32);
	close(fd);
	CHECK(memcmp(ka, kb, 32) != 0);

	/* Node b given node a's key opens a's record but no longer its
	 * own: the key file is the whole secret. */
	write_key(pb, ka, 32);
	check_value(b, "shared", "sealed on node a", 16);
	check_get_err(b, "own", FERRY_E_DECRYPT);
	ferry_node_close(a);
	ferry_node_close(b);
}

/* The bytes of dir/name, malloc'd. */
static uint8_t *read_file(const char *dir, const char *name, size_t *len)
{
	char path[4300];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "rb");
	CHECK(f);
	CHECK(fseek(f, 0, SEEK_END) == 0);
	long size = ftell(f);
	CHECK(size > 0);
	rewind(f);
	uint8_t *buf = malloc((size_t)size);
	CHECK(buf);
	CHECK(fread(buf, 1, (size_t)size, f) == (size_t)size);
	fclose(f);
	*len = (size_t)size;
	return buf;
}

static int contains(const uint8_t *hay, size_t len, const char *needle)
{
	size_t n = strlen(needle);
	for (size_t i = 0; i + n <= len; i++)
		if (memcmp(hay + i, needle, n) == 0)
			return 1;
	return 0;
}

static void test_not_in_store(void)
{
	static const char value[] = "zq9-PLAINTEXT-CANARY-7f3e1d";
	char dir[4200];
	ferry_node *node = open_node("secret_not_in_store", dir);
	set_str(node, "canary_secret_name", value);
	/* The same bytes as an ordinary kv value: shows the search sees
	 * what the store writes. */
	CHECK_NODE_OK(node, ferry_kv_put(node, "plain", "k",
					 "visible-marker-"
					 "4b2a",
					 19));
	check_value(node, "canary_secret_name", value, strlen(value));
	ferry_node_close(node);

	size_t len;
	uint8_t *db = read_file(dir, "data.mdb", &len);
	CHECK(contains(db, len, "visible-marker-4b2a"));
	CHECK(contains(db, len, "canary_secret_name"));
	CHECK(!contains(db, len, value));
	CHECK(!contains(db, len, "PLAINTEXT-CANARY"));
	free(db);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	test_round_trip();
	test_replace_list_delete();
	test_names();
	test_trim();
	test_key_file();
	test_key_race();
	test_tamper();
	test_other_node();
	test_not_in_store();
	printf("secret_test: ok\n");
	return 0;
}
