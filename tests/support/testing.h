/*
 * testing.h — the shared test harness: assertions that print the ferry
 * error text and the random seed, deterministic randomness, a fresh
 * temporary directory per test, and fault helpers (child processes killed
 * with SIGKILL).
 *
 * Every test program calls test_init(argc, argv) first. The seed comes from
 * `--seed N`, else the FERRY_TEST_SEED environment variable, else a fixed
 * default; it is printed on every failure so a run can be repeated exactly.
 */
#ifndef FERRY_TESTING_H
#define FERRY_TESTING_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

#include "ferry.h"

void test_init(int argc, char **argv);

/* The seed of this run, and a deterministic generator seeded from it. */
uint64_t test_seed(void);
void test_reseed(uint64_t seed);
uint64_t test_rand(void);
/* Uniform in [0, n); n > 0. */
uint64_t test_rand_below(uint64_t n);

/* Print the failure (with the seed) and exit(1). */
void test_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 3, 4)));

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond))                                                   \
			test_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);     \
	} while (0)

#define CHECK_EQ_U64(a, b)                                                     \
	do {                                                                   \
		uint64_t check_a_ = (a), check_b_ = (b);                       \
		if (check_a_ != check_b_)                                      \
			test_fail(__FILE__, __LINE__,                          \
				  "%s == %s: %llu != %llu", #a, #b,            \
				  (unsigned long long)check_a_,                \
				  (unsigned long long)check_b_);               \
	} while (0)

/* `expr` must return FERRY_OK. */
#define CHECK_OK(expr)                                                         \
	do {                                                                   \
		int check_err_ = (expr);                                       \
		if (check_err_ != 0)                                           \
			test_fail(__FILE__, __LINE__, "%s: %s (%s)", #expr,    \
				  ferry_err_name(check_err_),                  \
				  ferry_strerror(check_err_));                 \
	} while (0)

/* Like CHECK_OK, adding the node's detail text. */
#define CHECK_NODE_OK(node, expr)                                              \
	do {                                                                   \
		int check_err_ = (expr);                                       \
		if (check_err_ != 0)                                           \
			test_fail(__FILE__, __LINE__, "%s: %s (%s): %s",       \
				  #expr, ferry_err_name(check_err_),           \
				  ferry_strerror(check_err_),                  \
				  ferry_node_errmsg(node));                    \
	} while (0)

/* `expr` must return exactly `code`. */
#define CHECK_ERR(expr, code)                                                  \
	do {                                                                   \
		int check_err_ = (expr);                                       \
		if (check_err_ != (code))                                      \
			test_fail(__FILE__, __LINE__,                          \
				  "%s: expected %s, got %s (%s)", #expr,       \
				  ferry_err_name(code),                        \
				  ferry_err_name(check_err_),                  \
				  ferry_strerror(check_err_));                 \
	} while (0)

/* A fresh empty directory for this test, removed at a successful exit and
 * kept (its path printed) on failure. Returns a path valid until exit. */
const char *test_tmpdir(const char *name);

/* Open a node in a fresh test directory named `name`, without fsync unless
 * `durable`. The node is the caller's to close. */
ferry_node *test_node(const char *name, int durable);

/* Options used by test_node(). */
ferry_node_options test_node_options(int durable);

/* Put one record with one field `field` holding a msgpack string `value`. */
void test_put_str(ferry_node *node, const char *scope, const char *collection,
		  const char *key, const char *field, const char *value);

/* Equal digests of all scopes? */
int test_same_digest(ferry_node *a, ferry_node *b);

/* Export everything `from` holds beyond `to`'s vector and apply it to `to`,
 * batch by batch. Returns changes applied. */
uint64_t test_sync_oneway(ferry_node *from, ferry_node *to);

/* Fault support: run fn(arg) in a child process; returns its pid. The
 * child's stdout is connected to *read_fd (may be NULL for none). */
pid_t test_spawn(int (*fn)(void *arg), void *arg, int *read_fd);

/* SIGKILL a child and reap it. */
void test_kill(pid_t pid);

/* Wait for a child; returns its exit status (or 128+signal). */
int test_wait(pid_t pid);

#endif
