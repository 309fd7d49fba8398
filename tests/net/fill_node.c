/*
 * fill_node.c — test helper: open (or create) the node in DIR and commit
 * COUNT records in transactions of BATCH writes, so the network tests can
 * build a large store in seconds instead of one `ferry put` process per
 * record.
 *
 * usage: fill_node DIR COUNT [BATCH [SCOPE [COLLECTION]]]
 *
 * Record i (0-based) is SCOPE/COLLECTION/r%08d with fields
 * {"n": i, "name": "record %d", "pad": <40 bytes>}. Commits are not flushed
 * (no_sync): the test only needs other processes to see them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry.h"

/* msgpack uint32 (0xce) */
static size_t pack_u32(uint8_t *out, uint32_t v)
{
	out[0] = 0xce;
	out[1] = (uint8_t)(v >> 24);
	out[2] = (uint8_t)(v >> 16);
	out[3] = (uint8_t)(v >> 8);
	out[4] = (uint8_t)v;
	return 5;
}

/* msgpack str8 (0xd9) of at most 255 bytes */
static size_t pack_str(uint8_t *out, const char *s)
{
	size_t len = strlen(s);
	out[0] = 0xd9;
	out[1] = (uint8_t)len;
	memcpy(out + 2, s, len);
	return 2 + len;
}

static int fail(ferry_node *node, ferry_err err, const char *what)
{
	fprintf(stderr, "fill_node: %s: %s (%s)\n", what, ferry_strerror(err),
		node ? ferry_node_errmsg(node) : "");
	return 2;
}

int main(int argc, char **argv)
{
	if (argc < 3 || argc > 6) {
		fprintf(stderr, "usage: fill_node DIR COUNT [BATCH [SCOPE "
				"[COLLECTION]]]\n");
		return 1;
	}
	const char *dir = argv[1];
	long count = strtol(argv[2], NULL, 10);
	long batch = argc > 3 ? strtol(argv[3], NULL, 10) : 1000;
	const char *scope = argc > 4 ? argv[4] : "bulk";
	const char *collection = argc > 5 ? argv[5] : "items";
	if (count < 0 || batch < 1 || batch > FERRY_MAX_WRITES_PER_TXN) {
		fprintf(stderr, "fill_node: bad COUNT or BATCH\n");
		return 1;
	}

	ferry_node_options opts = FERRY_NODE_OPTIONS_INIT;
	opts.no_sync = 1;
	ferry_node *node = NULL;
	char *detail = NULL;
	ferry_err err = ferry_node_open(&node, dir, &opts, &detail);
	if (err) {
		fprintf(stderr, "fill_node: cannot open %s: %s (%s)\n", dir,
			ferry_strerror(err), detail ? detail : "");
		free(detail);
		return 2;
	}

	static const char pad[] = "0123456789abcdefghijklmnopqrstuvwxyzABCD";
	for (long done = 0; done < count;) {
		ferry_txn *txn;
		err = ferry_txn_begin(&txn, node);
		if (err)
			return fail(node, err, "begin");
		long end = done + batch < count ? done + batch : count;
		for (long i = done; i < end; i++) {
			char key[32], name[32];
			uint8_t n_val[8], name_val[64], pad_val[64];
			snprintf(key, sizeof(key), "r%08ld", i);
			snprintf(name, sizeof(name), "record %ld", i);
			ferry_field fields[3] = {
				{"n", n_val, pack_u32(n_val, (uint32_t)i)},
				{"name", name_val, pack_str(name_val, name)},
				{"pad", pad_val, pack_str(pad_val, pad)},
			};
			err = ferry_txn_put(txn, scope, collection, key, fields,
					    3);
			if (err) {
				ferry_txn_abort(txn);
				return fail(node, err, "put");
			}
		}
		err = ferry_txn_commit(txn);
		if (err)
			return fail(node, err, "commit");
		done = end;
	}
	ferry_node_close(node);
	return 0;
}
