/*
 * ferry_json.h — JSON at the edge of ferry: field values between JSON
 * (jansson) and msgpack, and JSON views of records, changes and conflicts.
 *
 * Value mapping (both directions):
 *
 *   JSON                        msgpack
 *   null, true, false           nil, true, false
 *   integer (int64 range)       int / uint, shortest form
 *   real                        float64 (float32 is read as a JSON real and
 *                               comes back as float64)
 *   string                      str
 *   array, object               array, map (keys are str)
 *   {"$bin": "<base64>"}        bin
 *   {"$msgpack": "<base64>"}    any one msgpack object JSON cannot hold
 *
 * The two tagged forms are objects with exactly that one member. msgpack to
 * JSON produces {"$msgpack": ...} for what JSON has no lossless spelling
 * for: unsigned integers above INT64_MAX, ext, maps with a non-str or
 * repeated key, and str that is not valid UTF-8. JSON to msgpack turns both
 * tagged forms back into the bytes they name, so msgpack -> JSON -> msgpack
 * round trips (float32 aside) and JSON -> msgpack -> JSON round trips
 * exactly. The price: a user map whose only key is "$bin" or "$msgpack"
 * cannot be stored through JSON. Base64 is the original alphabet, padded.
 *
 * Containers nest at most FERRY_JSON_MAX_DEPTH deep in either direction.
 *
 * Conventions are ferry.h's: ferry_err results, out-parameters first, what
 * comes back through `**out` is the caller's (json_decref() for jansson
 * values). These functions keep no state and may be called from any thread.
 */
#ifndef FERRY_JSON_H
#define FERRY_JSON_H

#include <jansson.h>
#include <msgpack.h>

#include "ferry.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Deepest nesting of arrays and objects (maps) accepted. */
#define FERRY_JSON_MAX_DEPTH FERRY_MAX_VALUE_DEPTH

/* Append `value` to `out` as one msgpack object.
 *
 * out:   the buffer to append to (msgpack_sbuffer_init()ed by the caller).
 * value: any JSON value, borrowed.
 * Errors: FERRY_E_LIMIT (nesting deeper than FERRY_JSON_MAX_DEPTH),
 *         FERRY_E_INVALID (a tagged object whose base64 does not decode, or
 *         whose "$msgpack" bytes are not exactly one msgpack object),
 *         FERRY_E_NOMEM. On error `out` may hold a partial object: discard
 *         it (or truncate to its previous size). */
ferry_err ferry_json_to_msgpack(msgpack_sbuffer *out, const json_t *value);

/* Decode exactly one msgpack object from buf[0..len) into JSON.
 *
 * The bytes are untrusted: they are walked first, every count bounded by the
 * bytes left and nesting by FERRY_JSON_MAX_DEPTH, before anything is
 * allocated for them.
 * out: the new JSON value, the caller's to json_decref().
 * Errors: FERRY_E_MALFORMED (truncated, trailing bytes, reserved byte 0xc1,
 *         a count larger than the bytes left), FERRY_E_LIMIT (too deep),
 *         FERRY_E_NOMEM. */
ferry_err ferry_json_from_msgpack(json_t **out, const void *buf, size_t len);

/* Set the fields of record (scope, collection, key) in `txn` from a JSON
 * object: each member becomes one field holding its value in msgpack.
 * Errors: FERRY_E_INVALID (`fields` is not an object, or has no member),
 *         FERRY_E_LIMIT (more than FERRY_MAX_FIELDS_PER_WRITE members or too
 *         deep), and whatever ferry_json_to_msgpack() and ferry_txn_put()
 *         return. On error the transaction is unchanged. */
ferry_err ferry_json_put(ferry_txn *txn, const char *scope,
			 const char *collection, const char *key,
			 const json_t *fields);

/* A stamp as {"hlc": N, "time": "2024-05-01T12:00:00.123Z", "counter": C}
 * where time is FERRY_HLC_MS in UTC (ISO 8601) and counter the logical
 * part; N is the raw 64-bit stamp. NULL only when out of memory. */
json_t *ferry_json_hlc(ferry_hlc hlc);

/* Unix milliseconds as ISO 8601 UTC with milliseconds
 * ("2024-05-01T12:00:00.123Z") into `out`. The size leaves room for the
 * five-digit years a 48-bit millisecond clock can reach. */
#define FERRY_JSON_TIME_BYTES 32
void ferry_json_time(char out[FERRY_JSON_TIME_BYTES], uint64_t unix_ms);

/* What ferry_json_from_record() includes. */
enum ferry_json_record_flags {
	/* Wrap as {"scope", "collection", "key", "fields": {...}}. */
	FERRY_JSON_RECORD_NAMES = 1 << 0,
	/* Add "stamps": {field: {hlc, time, counter, "origin": hex}};
	 * implies FERRY_JSON_RECORD_NAMES. */
	FERRY_JSON_RECORD_STAMPS = 1 << 1,
};

/* The live fields of `rec` as a JSON object {field: value}, or wrapped as
 * `flags` asks.
 * out:  the caller's to json_decref().
 * rec:  borrowed.
 * Errors: those of ferry_json_from_msgpack() for a stored value. */
ferry_err ferry_json_from_record(json_t **out, const ferry_record *rec,
				 unsigned int flags);

/* A change as {"cursor", "origin" (hex), "scope", "seq", "hlc", "time",
 * "counter", "collection", "key", "op" ("put" or "delete"), "fields"
 * (put only: {field: value})}.
 * out: the caller's to json_decref(). change: borrowed.
 * Errors: those of ferry_json_from_msgpack() for a field value. */
ferry_err ferry_json_from_change(json_t **out, const ferry_change *change);

/* A conflict-log entry as {"id", "recorded" (ISO 8601), "scope",
 * "collection", "key", "field", "loser": {"value", hlc..., "origin"},
 * "winner": {hlc..., "origin", "deleted": bool}}.
 * out: the caller's to json_decref(). conflict: borrowed.
 * Errors: those of ferry_json_from_msgpack() for the losing value. */
ferry_err ferry_json_from_conflict(json_t **out,
				   const ferry_conflict *conflict);

#ifdef __cplusplus
}
#endif
#endif /* FERRY_JSON_H */
