/*
 * segment_corpus.c — writes the seed corpus for segment_fuzz: real batches
 * exported by a node (two scopes with puts, an overwrite and a delete; a
 * small-batch export; an empty export) and real version vectors, one file
 * each, into the directory given on the command line.
 *
 *   segment_corpus tests/fuzz/corpus/segment
 *
 * The seeds are small and checked in; rerun this when the wire format
 * changes.
 */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <msgpack.h>

#include "ferry.h"

static const char *outdir;

static void die(const char *what, int err, ferry_node *node)
{
	fprintf(stderr, "segment_corpus: %s: %s%s%s\n", what,
		ferry_err_name(err), node ? ": " : "",
		node ? ferry_node_errmsg(node) : "");
	exit(1);
}

static void save(const char *name, const void *buf, size_t len)
{
	char path[4096];
	FILE *f;
	snprintf(path, sizeof(path), "%s/%s", outdir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
	printf("%s (%zu bytes)\n", path, len);
}

static void put(ferry_node *node, const char *scope, const char *coll,
		const char *key, const char *field, int64_t value,
		const char *text)
{
	msgpack_sbuffer a, b;
	msgpack_packer pa, pb;
	ferry_txn *txn = NULL;
	int err;
	msgpack_sbuffer_init(&a);
	msgpack_sbuffer_init(&b);
	msgpack_packer_init(&pa, &a, msgpack_sbuffer_write);
	msgpack_packer_init(&pb, &b, msgpack_sbuffer_write);
	msgpack_pack_int64(&pa, value);
	msgpack_pack_str_with_body(&pb, text, strlen(text));
	/* Field names sorted, as a careful writer would; the engine sorts
	 * anyway. */
	ferry_field f[2] = {{field, a.data, a.size}, {"note", b.data, b.size}};
	if ((err = ferry_txn_begin(&txn, node)) ||
	    (err = ferry_txn_put(txn, scope, coll, key, f, 2)) ||
	    (err = ferry_txn_commit(txn)))
		die("put", err, node);
	msgpack_sbuffer_destroy(&a);
	msgpack_sbuffer_destroy(&b);
}

static void del(ferry_node *node, const char *scope, const char *coll,
		const char *key)
{
	ferry_txn *txn = NULL;
	int err;
	if ((err = ferry_txn_begin(&txn, node)) ||
	    (err = ferry_txn_delete(txn, scope, coll, key)) ||
	    (err = ferry_txn_commit(txn)))
		die("delete", err, node);
}

/* Export from `node` beyond `remote` and save each batch as
 * <prefix>-<n>.bin; returns the number of batches. */
static int export_all(ferry_node *node, const ferry_vector *remote,
		      size_t batch_bytes, const char *prefix)
{
	ferry_export_options eo = FERRY_EXPORT_OPTIONS_INIT;
	ferry_export *exp = NULL;
	int n = 0, err;
	eo.batch_bytes = batch_bytes;
	if ((err = ferry_export_begin(&exp, node, remote, &eo)))
		die("export", err, node);
	for (;;) {
		void *batch = NULL;
		size_t len = 0;
		char name[128];
		err = ferry_export_next(exp, &batch, &len, NULL);
		if (err == FERRY_E_DONE)
			break;
		if (err)
			die("export_next", err, node);
		snprintf(name, sizeof(name), "%s-%d.bin", prefix, n++);
		save(name, batch, len);
		free(batch);
	}
	ferry_export_free(exp);
	return n;
}

static void save_vector(ferry_node *node, const char *name)
{
	ferry_vector *v = NULL;
	void *enc = NULL;
	size_t len = 0;
	int err;
	if ((err = ferry_vector_get(&v, node)) ||
	    (err = ferry_vector_encode(&enc, &len, v)))
		die("vector", err, node);
	save(name, enc, len);
	free(enc);
	ferry_vector_free(v);
}

static int remove_entry(const char *path, const struct stat *st, int flag,
			struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

int main(int argc, char **argv)
{
	char root[] = "/tmp/ferry-corpus-XXXXXX";
	char dir_a[600], dir_b[600];
	ferry_node_options opts = FERRY_NODE_OPTIONS_INIT;
	ferry_node *a = NULL, *b = NULL;
	ferry_vector *empty = NULL;
	void *enc = NULL;
	size_t len = 0;
	int err;

	if (argc != 2) {
		fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
		return 2;
	}
	outdir = argv[1];
	if (!mkdtemp(root)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(dir_a, sizeof(dir_a), "%s/a", root);
	snprintf(dir_b, sizeof(dir_b), "%s/b", root);
	opts.no_sync = 1;
	opts.map_size = UINT64_C(64) << 20;
	if ((err = ferry_node_open(&a, dir_a, &opts, NULL)))
		die("open a", err, NULL);
	if ((err = ferry_node_open(&b, dir_b, &opts, NULL)))
		die("open b", err, NULL);

	put(a, "clinic-7", "patients", "p1", "dose", 10, "first");
	put(a, "clinic-7", "patients", "p2", "dose", 20, "second");
	put(a, "clinic-7", "patients", "p1", "dose", 15, "changed");
	del(a, "clinic-7", "patients", "p2");
	put(a, "shared", "pricelist", "vaccine", "eur", 30, "list price");
	export_all(a, NULL, 0, "batch-a");
	export_all(a, NULL, 200, "small-a");
	save_vector(a, "vector-a.bin");

	/* B holds A's changes and adds its own: a relayed chain and a
	 * conflict travel in the next batch. */
	ferry_vector *va = NULL;
	ferry_export *exp = NULL;
	if ((err = ferry_export_begin(&exp, a, NULL, NULL)))
		die("export a", err, a);
	for (;;) {
		void *batch = NULL;
		size_t blen = 0;
		err = ferry_export_next(exp, &batch, &blen, NULL);
		if (err == FERRY_E_DONE)
			break;
		if (err)
			die("export_next a", err, a);
		if ((err = ferry_sync_apply(b, batch, blen, NULL)))
			die("apply to b", err, b);
		free(batch);
	}
	ferry_export_free(exp);
	if ((err = ferry_vector_get(&va, a)))
		die("vector a", err, a);
	put(b, "clinic-7", "patients", "p1", "dose", 12, "from b");
	export_all(b, va, 0, "batch-b");
	ferry_vector_free(va);
	save_vector(b, "vector-b.bin");

	if ((err = ferry_vector_new(&empty)) ||
	    (err = ferry_vector_encode(&enc, &len, empty)))
		die("empty vector", err, NULL);
	save("vector-empty.bin", enc, len);
	free(enc);
	ferry_vector_free(empty);

	ferry_node_close(a);
	ferry_node_close(b);
	nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}
