/*
 * testing.c — shared test harness (see testing.h).
 */
#include "testing.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <msgpack.h>

#define TEST_DEFAULT_SEED UINT64_C(20261121)
#define TEST_MAX_DIRS 64

static uint64_t seed_value = TEST_DEFAULT_SEED;
static uint64_t rng_state;
static const char *program = "test";
static char *dirs[TEST_MAX_DIRS];
static size_t ndirs;
static int failed;

static void remove_tree(const char *path)
{
	DIR *d = opendir(path);
	if (d) {
		struct dirent *ent;
		while ((ent = readdir(d)) != NULL) {
			if (!strcmp(ent->d_name, ".") ||
			    !strcmp(ent->d_name, ".."))
				continue;
			char child[4096];
			snprintf(child, sizeof(child), "%s/%s", path,
				 ent->d_name);
			struct stat st;
			if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode))
				remove_tree(child);
			else
				unlink(child);
		}
		closedir(d);
	}
	rmdir(path);
}

static void cleanup_dirs(void)
{
	for (size_t i = 0; i < ndirs; i++) {
		if (failed)
			fprintf(stderr, "%s: kept test directory %s\n", program,
				dirs[i]);
		else
			remove_tree(dirs[i]);
		free(dirs[i]);
	}
	ndirs = 0;
}

void test_init(int argc, char **argv)
{
	const char *env = getenv("FERRY_TEST_SEED");
	if (argc > 0)
		program = argv[0];
	if (env && *env)
		seed_value = strtoull(env, NULL, 0);
	for (int i = 1; i + 1 < argc; i++)
		if (!strcmp(argv[i], "--seed"))
			seed_value = strtoull(argv[i + 1], NULL, 0);
	test_reseed(seed_value);
	atexit(cleanup_dirs);
	setvbuf(stdout, NULL, _IOLBF, 0);
}

uint64_t test_seed(void)
{
	return seed_value;
}

void test_reseed(uint64_t seed)
{
	seed_value = seed;
	rng_state = seed;
}

/* splitmix64: tiny, fast and good enough for test data. */
uint64_t test_rand(void)
{
	uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

uint64_t test_rand_below(uint64_t n)
{
	return test_rand() % n;
}

void test_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	failed = 1;
	fprintf(stderr, "%s: FAIL %s:%d: ", program, file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n%s: seed %llu (repeat with --seed %llu)\n", program,
		(unsigned long long)seed_value, (unsigned long long)seed_value);
	exit(1);
}

const char *test_tmpdir(const char *name)
{
	const char *base = getenv("TMPDIR");
	char path[4096];
	if (!base || !*base)
		base = "/tmp";
	if (ndirs == TEST_MAX_DIRS)
		test_fail(__FILE__, __LINE__, "too many test directories");
	snprintf(path, sizeof(path), "%s/ferry-test-%s-XXXXXX", base, name);
	if (!mkdtemp(path))
		test_fail(__FILE__, __LINE__, "mkdtemp %s: %s", path,
			  strerror(errno));
	dirs[ndirs] = strdup(path);
	if (!dirs[ndirs])
		test_fail(__FILE__, __LINE__, "out of memory");
	return dirs[ndirs++];
}

ferry_node_options test_node_options(int durable)
{
	ferry_node_options opts = FERRY_NODE_OPTIONS_INIT;
	opts.no_sync = !durable;
	opts.map_size = UINT64_C(1) << 30;
	return opts;
}

ferry_node *test_node(const char *name, int durable)
{
	ferry_node_options opts = test_node_options(durable);
	char *detail = NULL;
	char dir[4200];
	snprintf(dir, sizeof(dir), "%s/node", test_tmpdir(name));
	ferry_node *node = NULL;
	int err = ferry_node_open(&node, dir, &opts, &detail);
	if (err)
		test_fail(__FILE__, __LINE__, "ferry_node_open(%s): %s: %s",
			  dir, ferry_err_name(err),
			  detail ? detail : ferry_strerror(err));
	return node;
}

void test_put_str(ferry_node *node, const char *scope, const char *collection,
		  const char *key, const char *field, const char *value)
{
	msgpack_sbuffer buf;
	msgpack_packer pk;
	msgpack_sbuffer_init(&buf);
	msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
	msgpack_pack_str_with_body(&pk, value, strlen(value));
	ferry_field f = {field, buf.data, buf.size};
	ferry_txn *txn = NULL;
	CHECK_NODE_OK(node, ferry_txn_begin(&txn, node));
	CHECK_NODE_OK(node, ferry_txn_put(txn, scope, collection, key, &f, 1));
	CHECK_NODE_OK(node, ferry_txn_commit(txn));
	msgpack_sbuffer_destroy(&buf);
}

int test_same_digest(ferry_node *a, ferry_node *b)
{
	uint8_t da[FERRY_HASH_BYTES], db[FERRY_HASH_BYTES];
	CHECK_NODE_OK(a, ferry_digest(da, a, NULL));
	CHECK_NODE_OK(b, ferry_digest(db, b, NULL));
	return memcmp(da, db, sizeof(da)) == 0;
}

uint64_t test_sync_oneway(ferry_node *from, ferry_node *to)
{
	ferry_vector *vec = NULL;
	ferry_export *exp = NULL;
	uint64_t applied = 0;
	CHECK_NODE_OK(to, ferry_vector_get(&vec, to));
	CHECK_NODE_OK(from, ferry_export_begin(&exp, from, vec, NULL));
	for (;;) {
		void *batch = NULL;
		size_t len = 0;
		int err = ferry_export_next(exp, &batch, &len, NULL);
		if (err == FERRY_E_DONE)
			break;
		CHECK_NODE_OK(from, err);
		ferry_apply_stats stats;
		CHECK_NODE_OK(to, ferry_sync_apply(to, batch, len, &stats));
		applied += stats.changes_applied;
		free(batch);
	}
	ferry_export_free(exp);
	ferry_vector_free(vec);
	return applied;
}

pid_t test_spawn(int (*fn)(void *arg), void *arg, int *read_fd)
{
	int fds[2] = {-1, -1};
	if (read_fd && pipe(fds) != 0)
		test_fail(__FILE__, __LINE__, "pipe: %s", strerror(errno));
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		test_fail(__FILE__, __LINE__, "fork: %s", strerror(errno));
	if (pid == 0) {
		if (read_fd) {
			close(fds[0]);
			dup2(fds[1], STDOUT_FILENO);
			close(fds[1]);
		}
		/* The child must not remove the parent's directories. */
		ndirs = 0;
		_exit(fn(arg));
	}
	if (read_fd) {
		close(fds[1]);
		*read_fd = fds[0];
	}
	return pid;
}

void test_kill(pid_t pid)
{
	kill(pid, SIGKILL);
	test_wait(pid);
}

int test_wait(pid_t pid)
{
	int status = 0;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			test_fail(__FILE__, __LINE__, "waitpid: %s",
				  strerror(errno));
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
