/*
 * segment_fuzz.c — libFuzzer target for everything that decodes a batch or
 * a vector received from a peer: changelog_batch_decode() and
 * changelog_entry_decode() on each entry, ferry_vector_decode() (and a
 * re-encode round trip of what it accepts), and ferry_sync_apply() on a real
 * node. Invalid input must come back as an error: a crash, a leak or a
 * sanitizer report is a bug.
 *
 * The node is opened once (opening per input would spend the time budget on
 * LMDB setup) in a temporary directory removed at exit, so state carries
 * over between inputs: the fuzzer also explores applying onto a non-empty
 * node.
 *
 * How CI runs it (see tests/fuzz/fuzz.cmake):
 *   CC=clang cmake -S . -B build-fuzz -DFERRY_BUILD_FUZZERS=ON \
 *         -DFERRY_SANITIZE=address,undefined -DFERRY_BUILD_BENCH=OFF
 *   cmake --build build-fuzz --target segment_fuzz
 *   cp -r tests/fuzz/corpus/segment /tmp/segment-corpus
 *   build-fuzz/tests/segment_fuzz -max_total_time=60 /tmp/segment-corpus
 * (The copy keeps the checked-in seeds as they are; libFuzzer adds the
 * inputs it finds to the first corpus directory.)
 */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "changelog.h"
#include "ferry.h"

static ferry_node *node;
static char root[256];

static int remove_entry(const char *path, const struct stat *st, int flag,
			struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void teardown(void)
{
	ferry_node_close(node);
	node = NULL;
	if (root[0])
		nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void setup(void)
{
	const char *tmp = getenv("TMPDIR");
	char dir[512];
	char *detail = NULL;
	ferry_node_options opts = FERRY_NODE_OPTIONS_INIT;

	snprintf(root, sizeof(root), "%s/ferry-fuzz-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(root)) {
		perror("mkdtemp");
		abort();
	}
	snprintf(dir, sizeof(dir), "%s/node", root);
	/* Small map: the fuzzer's batches are small, and a big map only costs
	 * address space under ASan. */
	opts.map_size = UINT64_C(256) << 20;
	opts.no_sync = 1;
	if (ferry_node_open(&node, dir, &opts, &detail) != FERRY_OK) {
		fprintf(stderr, "segment_fuzz: open %s: %s\n", dir,
			detail ? detail : "?");
		abort();
	}
	free(detail);
	atexit(teardown);
}

static void fuzz_batch_codec(const uint8_t *data, size_t size)
{
	changelog_batch b;
	if (changelog_batch_decode(&b, data, size) != FERRY_OK)
		return;
	for (size_t i = 0; i < b.nsegments; i++) {
		const changelog_segment *s = &b.segments[i];
		for (size_t j = 0; j < s->nentries; j++) {
			changelog_entry e;
			changelog_entry_init(&e);
			if (changelog_entry_decode(&e, s->entries[j],
						   s->entry_lens[j]) ==
			    FERRY_OK) {
				uint8_t h[FERRY_HASH_BYTES];
				changelog_hash(h, s->entries[j],
					       s->entry_lens[j]);
				(void)changelog_head_verify(s->sig, s->origin,
							    s->scope, e.seq, h);
			}
			changelog_entry_clear(&e);
		}
	}
	changelog_batch_clear(&b);
}

static void fuzz_vector(const uint8_t *data, size_t size)
{
	ferry_vector *v = NULL, *again = NULL;
	void *enc = NULL;
	size_t len = 0;
	if (ferry_vector_decode(&v, data, size) != FERRY_OK)
		return;
	/* What decodes must re-encode and decode to the same entries. */
	if (ferry_vector_encode(&enc, &len, v) != FERRY_OK)
		abort();
	if (ferry_vector_decode(&again, enc, len) != FERRY_OK ||
	    ferry_vector_count(again) != ferry_vector_count(v))
		abort();
	ferry_vector_free(again);
	free(enc);
	ferry_vector_free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ferry_apply_stats st;
	if (!node)
		setup();
	fuzz_batch_codec(data, size);
	fuzz_vector(data, size);
	(void)ferry_sync_apply(node, data, size, &st);
	return 0;
}
