/*
 * bundle.h — the bundle file `ferry export` writes and `ferry import`
 * reads, for carrying batches between nodes that cannot talk (a USB stick).
 *
 * Format: the 8-byte magic "FERRYBN1", then zero or more frames, each a
 * 4-byte big-endian length (1..FERRY_MAX_BATCH_BYTES) and that many bytes of
 * one batch as ferry_export_next() produced it. The file ends after the last
 * frame. Batches are applied in order and each is atomic, so a damaged
 * bundle still yields every complete batch before the damage.
 */
#ifndef FERRY_BUNDLE_H
#define FERRY_BUNDLE_H

#include <stdint.h>
#include <stdio.h>

#define BUNDLE_MAGIC "FERRYBN1"
#define BUNDLE_MAGIC_BYTES 8
#define BUNDLE_FRAME_HEADER_BYTES 4

/* Write the magic / one frame. Return 0, or -1 with errno set. */
int bundle_write_magic(FILE *out);
int bundle_write_batch(FILE *out, const void *batch, size_t len);

/* Reads a bundle frame by frame, keeping the byte offset for messages. */
struct bundle_reader {
	FILE *in;
	uint64_t offset; /* bytes consumed so far */
	char error[160]; /* what is wrong, when a call returns -1 */
};

/* Check the magic. 0, or -1 with reader->error set. */
int bundle_read_magic(struct bundle_reader *reader);

/* The next batch into *out (malloc'd, the caller's to free) and its length;
 * *at gets the offset of its frame. Returns 1 for a batch, 0 at a clean end
 * of file, -1 with reader->error set (truncated, bad length, I/O error). */
int bundle_read_batch(struct bundle_reader *reader, void **out, size_t *len,
		      uint64_t *at);

#endif
