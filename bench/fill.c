/*
 * fill.c — ferry-bench-fill DIR SCOPE COLLECTION N: commit N client-like
 * records (name, phone, email, visits) into a node, 1,000 per
 * transaction, for benchmarks that need a large store quickly.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "ferry.h"

static void die(ferry_node *node, const char *what, int err)
{
	fprintf(stderr, "ferry-bench-fill: %s: %s: %s\n", what,
		ferry_strerror(err), node ? ferry_node_errmsg(node) : "");
	exit(1);
}

static void pack_str(msgpack_sbuffer *b, const char *s)
{
	msgpack_packer pk;
	msgpack_packer_init(&pk, b, msgpack_sbuffer_write);
	msgpack_pack_str_with_body(&pk, s, strlen(s));
}

int main(int argc, char **argv)
{
	ferry_node *node;
	char *detail = NULL;
	uint64_t n;
	int err;

	if (argc != 5) {
		fprintf(stderr,
			"usage: ferry-bench-fill DIR SCOPE COLLECTION N\n");
		return 2;
	}
	n = strtoull(argv[4], NULL, 10);
	err = ferry_node_open(&node, argv[1], NULL, &detail);
	if (err) {
		fprintf(stderr, "ferry-bench-fill: %s\n", detail);
		return 1;
	}
	for (uint64_t i = 0; i < n;) {
		ferry_txn *txn;
		err = ferry_txn_begin(&txn, node);
		if (err)
			die(node, "begin", err);
		for (int j = 0; j < 1000 && i < n; j++, i++) {
			char key[32], name[48], phone[32], email[64];
			msgpack_sbuffer v[4];
			msgpack_packer pk;
			snprintf(key, sizeof(key), "c-%" PRIu64, i);
			snprintf(name, sizeof(name), "Client %" PRIu64, i);
			snprintf(phone, sizeof(phone), "+7 900 %07" PRIu64,
				 i % 10000000);
			snprintf(email, sizeof(email),
				 "client%" PRIu64 "@example.invalid", i);
			for (int k = 0; k < 4; k++)
				msgpack_sbuffer_init(&v[k]);
			pack_str(&v[0], email);
			pack_str(&v[1], name);
			pack_str(&v[2], phone);
			msgpack_packer_init(&pk, &v[3], msgpack_sbuffer_write);
			msgpack_pack_uint64(&pk, i % 97);
			ferry_field f[4] = {{"email", v[0].data, v[0].size},
					    {"name", v[1].data, v[1].size},
					    {"phone", v[2].data, v[2].size},
					    {"visits", v[3].data, v[3].size}};
			err = ferry_txn_put(txn, argv[2], argv[3], key, f, 4);
			for (int k = 0; k < 4; k++)
				msgpack_sbuffer_destroy(&v[k]);
			if (err)
				die(node, "put", err);
		}
		err = ferry_txn_commit(txn);
		if (err)
			die(node, "commit", err);
	}
	ferry_node_close(node);
	return 0;
}
