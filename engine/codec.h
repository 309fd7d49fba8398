/*
 * codec.h — msgpack helpers shared by the engine's formats.
 *
 * msgpack-c trusts the counts it reads (an array header may claim four
 * billion elements and it allocates for them), so every untrusted buffer is
 * first walked by codec_check(), which bounds counts by the bytes left and
 * nesting by CODEC_MAX_DEPTH, before msgpack_unpack_next() sees it.
 */
#ifndef FERRY_CODEC_H
#define FERRY_CODEC_H

#include <msgpack.h>

#include "ferry.h"

#define CODEC_MAX_DEPTH 32

/* Check that buf[0..len) starts with one complete, well-formed msgpack
 * object whose counts fit in the bytes present and whose arrays and maps
 * nest at most `max_containers` deep (a bare array is 1); *used gets its
 * length. Errors: FERRY_E_MALFORMED, FERRY_E_LIMIT (nested too deep). */
ferry_err codec_check_depth(const void *buf, size_t len, size_t *used,
			    unsigned int max_containers);

/* One object filling the buffer exactly, nested at most as deep as
 * msgpack-c decodes (CODEC_MAX_DEPTH - 1). */
ferry_err codec_check_exact(const void *buf, size_t len);

/* Re-encode one msgpack value in msgpack-c's canonical (shortest) form into
 * `out`, after checking it. Stored values are canonical, so every node
 * re-encoding a received value produces the same bytes.
 * Errors: FERRY_E_INVALID if `buf` is not exactly one object,
 *         FERRY_E_LIMIT if it nests deeper than FERRY_MAX_VALUE_DEPTH. */
ferry_err codec_canonical(msgpack_sbuffer *out, const void *buf, size_t len);

/* Append already-encoded msgpack bytes to a packer's buffer. */
int codec_pack_raw(msgpack_packer *pk, const void *buf, size_t len);

/* Accessors that return 0 on success, -1 on a type mismatch. */
int codec_get_uint(const msgpack_object *o, uint64_t *out);
/* Bin of exactly `len` bytes. */
int codec_get_bin_fixed(const msgpack_object *o, size_t len,
			const uint8_t **out);
/* Str of valid UTF-8 without NUL, 1..max bytes; copies into dst (max+1 bytes).
 */
int codec_get_name(const msgpack_object *o, size_t max, char *dst);

/* Big-endian integers for LMDB keys that sort numerically. */
void codec_put_be64(uint8_t *dst, uint64_t v);
uint64_t codec_get_be64(const uint8_t *src);

#endif
