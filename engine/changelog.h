/*
 * changelog.h — log entries, their hash chain, signed heads, and the
 * segment/batch wire format. Encoding and decoding only: no storage, no I/O,
 * so every decoder here can be fuzzed directly.
 *
 * Entry (the bytes that are hashed and stored, msgpack array of 7):
 *   [seq uint, prev bin32, hlc uint, collection str, key str, op uint,
 *    fields map{str: any} | nil]
 * Entry hash: BLAKE2b-256 of the entry bytes. Entry 1's prev is 32 zeros.
 * Signed head: Ed25519 by the origin over
 *   "ferry.head.v1" || origin(32) || u8 scope_len || scope || be64 seq ||
 *   head hash(32)
 * Segment: [origin bin32, scope str, [entry bin, ...], signature bin64] —
 *   consecutive entries of one chain ending at a signed head.
 * Batch: ["ferry.batch", 1, [segment, ...]].
 */
#ifndef FERRY_CHANGELOG_H
#define FERRY_CHANGELOG_H

#include <msgpack.h>

#include "ferry.h"

#define CHANGELOG_BATCH_TAG "ferry.batch"
#define CHANGELOG_BATCH_VERSION 1
#define CHANGELOG_HEAD_CONTEXT "ferry.head.v1"
/* Upper bound on a decoded entry (fields of one write plus overhead). */
#define CHANGELOG_MAX_ENTRY_BYTES                                              \
	(FERRY_MAX_FIELDS_PER_WRITE * (FERRY_MAX_FIELD_NAME_BYTES + 8) +       \
	 FERRY_MAX_RECORD_BYTES)
#define CHANGELOG_MAX_SEGMENTS_PER_BATCH 65536
#define CHANGELOG_MAX_ENTRIES_PER_SEGMENT (1u << 20)

/* A decoded entry. `fields` (names and canonical values) point into memory
 * the entry owns, valid until changelog_entry_clear(). Fields are sorted
 * strictly by name (bytewise), which also makes them unique. */
typedef struct changelog_entry {
	uint64_t seq;
	uint8_t prev[FERRY_HASH_BYTES];
	ferry_hlc hlc;
	char collection[FERRY_MAX_COLLECTION_BYTES + 1];
	char key[FERRY_MAX_KEY_BYTES + 1];
	ferry_op op;
	ferry_field *fields;
	size_t nfields;
	char *names;		/* owned: the field names, NUL-separated */
	msgpack_sbuffer values; /* owned: canonical re-encoded values */
} changelog_entry;

void changelog_entry_init(changelog_entry *e);
void changelog_entry_clear(changelog_entry *e);

/* Encode an entry whose field values are already canonical and whose
 * fields are sorted strictly by name. */
ferry_err changelog_entry_encode(msgpack_sbuffer *out, uint64_t seq,
				 const uint8_t prev[FERRY_HASH_BYTES],
				 ferry_hlc hlc, const char *collection,
				 const char *key, ferry_op op,
				 const ferry_field *fields, size_t nfields);

/* Decode and validate entry bytes (names bounded, fields strictly sorted,
 * values re-encoded canonically into e->values). `e` must be initialised;
 * earlier contents are cleared.
 * Errors: FERRY_E_MALFORMED, FERRY_E_LIMIT, FERRY_E_NOMEM. */
ferry_err changelog_entry_decode(changelog_entry *e, const void *buf,
				 size_t len);

void changelog_hash(uint8_t out[FERRY_HASH_BYTES], const void *entry,
		    size_t len);

/* Sign / verify a chain head. */
void changelog_head_sign(uint8_t sig[FERRY_SIGNATURE_BYTES],
			 const uint8_t *secret_key,
			 const uint8_t origin[FERRY_PUBLIC_KEY_BYTES],
			 const char *scope, uint64_t seq,
			 const uint8_t head[FERRY_HASH_BYTES]);
int changelog_head_verify(const uint8_t sig[FERRY_SIGNATURE_BYTES],
			  const uint8_t origin[FERRY_PUBLIC_KEY_BYTES],
			  const char *scope, uint64_t seq,
			  const uint8_t head[FERRY_HASH_BYTES]);

/* A segment as decoded from a batch: borrowed pointers into the batch
 * buffer, valid while it is. */
typedef struct changelog_segment {
	const uint8_t *origin;
	char scope[FERRY_MAX_SCOPE_BYTES + 1];
	const uint8_t *sig;
	size_t nentries;
	const uint8_t **entries; /* owned array of pointers into the batch */
	size_t *entry_lens;	 /* owned */
} changelog_segment;

/* A decoded batch. */
typedef struct changelog_batch {
	msgpack_unpacked unpacked;
	changelog_segment *segments;
	size_t nsegments;
} changelog_batch;

/* Decode the outer structure of a batch (segments and their entry byte
 * ranges); entries themselves are decoded by the caller. Bounded by
 * FERRY_MAX_BATCH_BYTES and the limits above.
 * Errors: FERRY_E_MALFORMED, FERRY_E_LIMIT, FERRY_E_VERSION,
 *         FERRY_E_NOMEM. On error `b` needs no clearing. */
ferry_err changelog_batch_decode(changelog_batch *b, const void *buf,
				 size_t len);
void changelog_batch_clear(changelog_batch *b);

/* Batch writer: begin, add segments, finish. */
typedef struct changelog_batch_writer {
	msgpack_sbuffer header; /* tag, version, array header */
	msgpack_sbuffer body;	/* encoded segments */
	size_t nsegments;
} changelog_batch_writer;

void changelog_writer_init(changelog_batch_writer *w);
void changelog_writer_clear(changelog_batch_writer *w);
/* Append one segment whose entries are given as encoded entry bytes. */
ferry_err changelog_writer_add(changelog_batch_writer *w,
			       const uint8_t origin[FERRY_PUBLIC_KEY_BYTES],
			       const char *scope, const void *const *entries,
			       const size_t *entry_lens, size_t nentries,
			       const uint8_t sig[FERRY_SIGNATURE_BYTES]);
/* Bytes the batch would have now. */
size_t changelog_writer_size(const changelog_batch_writer *w);
/* The finished batch, malloc'd. Errors: FERRY_E_NOMEM. */
ferry_err changelog_writer_finish(changelog_batch_writer *w, void **out,
				  size_t *out_len);

#endif
