/*
 * engine_helpers.h — small helpers shared by the engine tests (header only,
 * because each test is one source file and one executable). Everything here
 * fails the test through test_fail() rather than returning errors, except
 * where the error itself is what a test looks at.
 */
#ifndef FERRY_ENGINE_HELPERS_H
#define FERRY_ENGINE_HELPERS_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <msgpack.h>

#include "ferry.h"
#include "testing.h"

/* A msgpack value built on the stack of the caller: big enough for the
 * short strings and integers tests write. */
typedef struct eh_value {
	char buf[256];
	size_t len;
} eh_value;

static inline int eh_value_write_(void *data, const char *buf, size_t len)
{
	eh_value *v = data;
	if (v->len + len > sizeof(v->buf))
		return -1;
	memcpy(v->buf + v->len, buf, len);
	v->len += len;
	return 0;
}

static inline eh_value eh_str(const char *s)
{
	eh_value v = {.len = 0};
	msgpack_packer pk;
	msgpack_packer_init(&pk, &v, eh_value_write_);
	CHECK(msgpack_pack_str_with_body(&pk, s, strlen(s)) == 0);
	return v;
}

static inline eh_value eh_int(int64_t i)
{
	eh_value v = {.len = 0};
	msgpack_packer pk;
	msgpack_packer_init(&pk, &v, eh_value_write_);
	CHECK(msgpack_pack_int64(&pk, i) == 0);
	return v;
}

/* A field pointing into `v`, which must outlive it. */
static inline ferry_field eh_field(const char *name, const eh_value *v)
{
	ferry_field f = {name, v->buf, v->len};
	return f;
}

/* Commit one put of one integer field. */
static inline void eh_put_int(ferry_node *node, const char *scope,
			      const char *collection, const char *key,
			      const char *field, int64_t value)
{
	eh_value v = eh_int(value);
	ferry_field f = eh_field(field, &v);
	ferry_txn *txn = NULL;
	CHECK_NODE_OK(node, ferry_txn_begin(&txn, node));
	CHECK_NODE_OK(node, ferry_txn_put(txn, scope, collection, key, &f, 1));
	CHECK_NODE_OK(node, ferry_txn_commit(txn));
}

/* Commit one delete. */
static inline void eh_delete(ferry_node *node, const char *scope,
			     const char *collection, const char *key)
{
	ferry_txn *txn = NULL;
	CHECK_NODE_OK(node, ferry_txn_begin(&txn, node));
	CHECK_NODE_OK(node, ferry_txn_delete(txn, scope, collection, key));
	CHECK_NODE_OK(node, ferry_txn_commit(txn));
}

/* Open a node in `dir` with `opts` (NULL = test defaults), failing the test
 * with the open's detail text on error. */
static inline ferry_node *eh_open(const char *dir,
				  const ferry_node_options *opts)
{
	ferry_node_options def = test_node_options(0);
	ferry_node *node = NULL;
	char *detail = NULL;
	int err = ferry_node_open(&node, dir, opts ? opts : &def, &detail);
	if (err)
		test_fail(__FILE__, __LINE__, "ferry_node_open(%s): %s: %s",
			  dir, ferry_err_name(err),
			  detail ? detail : ferry_strerror(err));
	free(detail);
	return node;
}

/* A fresh path "<tmpdir>/node" (not yet created) for a node named `name`;
 * the string is static storage of up to 8 slots, enough for one test. */
static inline const char *eh_node_dir(const char *name)
{
	static char paths[8][4200];
	static unsigned next;
	char *p = paths[next++ % 8];
	snprintf(p, sizeof(paths[0]), "%s/node", test_tmpdir(name));
	return p;
}

static inline void eh_digest(uint8_t out[FERRY_HASH_BYTES], ferry_node *node)
{
	CHECK_NODE_OK(node, ferry_digest(out, node, NULL));
}

static inline uint64_t eh_last(ferry_node *node)
{
	uint64_t last = 0;
	CHECK_NODE_OK(node, ferry_changes_last(&last, node));
	return last;
}

/* Export everything `from` holds beyond `remote` (NULL = all) as exactly one
 * batch (the test data is far below the default batch size). */
static inline void *eh_export_one(ferry_node *from, const ferry_vector *remote,
				  size_t *len)
{
	ferry_export *exp = NULL;
	void *batch = NULL;
	void *extra = NULL;
	size_t extra_len = 0;
	CHECK_NODE_OK(from, ferry_export_begin(&exp, from, remote, NULL));
	CHECK_NODE_OK(from, ferry_export_next(exp, &batch, len, NULL));
	CHECK_ERR(ferry_export_next(exp, &extra, &extra_len, NULL),
		  FERRY_E_DONE);
	CHECK(extra == NULL);
	ferry_export_free(exp);
	return batch;
}

/* Read a whole small file into `buf`; returns its length. */
static inline size_t eh_read_file(const char *path, void *buf, size_t cap)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		test_fail(__FILE__, __LINE__, "open %s: %s", path,
			  strerror(errno));
	ssize_t n = read(fd, buf, cap);
	close(fd);
	if (n < 0)
		test_fail(__FILE__, __LINE__, "read %s: %s", path,
			  strerror(errno));
	return (size_t)n;
}

static inline void eh_write_file(const char *path, const void *buf, size_t len,
				 mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	if (fd < 0)
		test_fail(__FILE__, __LINE__, "open %s: %s", path,
			  strerror(errno));
	CHECK(write(fd, buf, len) == (ssize_t)len);
	close(fd);
	CHECK(chmod(path, mode) == 0);
}

/* An injectable wall clock: the payload is a uint64_t holding Unix ms. */
static inline uint64_t eh_clock_fn(void *payload)
{
	return *(const uint64_t *)payload;
}

/* Collect every change's (cursor, hlc, seq) via ferry_changes. */
typedef struct eh_change_list {
	size_t n;
	uint64_t cursor[64];
	ferry_hlc hlc[64];
	uint64_t seq[64];
} eh_change_list;

static inline int eh_collect_cb_(const ferry_change *c, void *payload)
{
	eh_change_list *l = payload;
	if (l->n < 64) {
		l->cursor[l->n] = c->cursor;
		l->hlc[l->n] = c->hlc;
		l->seq[l->n] = c->seq;
	}
	l->n++;
	return 0;
}

static inline eh_change_list eh_changes(ferry_node *node, uint64_t since)
{
	eh_change_list l;
	memset(&l, 0, sizeof(l));
	CHECK_NODE_OK(node, ferry_changes(node, since, 0, eh_collect_cb_, &l));
	return l;
}

#endif
