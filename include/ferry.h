/*
 * ferry.h — the public API of libferry, ferry's storage and sync engine.
 *
 * A node is one data directory holding one LMDB environment and one Ed25519
 * key pair; the public key is the node's identity (its "origin id"). Data is
 * organised as scope -> collection -> record (string key) -> fields, where a
 * field value is one msgpack object. Every write is stamped with a hybrid
 * logical clock, appended to a hash-chained, signed change log (one chain per
 * origin and scope) and merged per field, last writer wins by (HLC, origin).
 *
 * Conventions (the same everywhere in this header):
 * - Functions return a ferry_err: 0 (FERRY_OK) on success, a negative
 *   FERRY_E_* code otherwise. ferry_strerror() describes a code;
 *   ferry_node_errmsg() gives the detail of the last failure on a node.
 * - Out-parameters come first. Whatever comes back through `**out` belongs
 *   to the caller and is released with the matching ferry_*_free(), which
 *   accepts NULL. On failure `*out` is left NULL.
 * - Strings are NUL-terminated UTF-8. Names (scope, collection, record key,
 *   field name) must be non-empty, must not contain NUL and are bounded by
 *   the FERRY_MAX_* limits below; a violation returns FERRY_E_LIMIT or
 *   FERRY_E_INVALID with a detail that names the limit.
 * - Threads: a ferry_node may be used by several threads at once (LMDB
 *   serialises writers; readers run in parallel); ferry_node_errmsg() gives
 *   the detail of the calling thread's last failure. Several processes may
 *   open the same directory at once. A process must not open the same
 *   directory twice.
 */
#ifndef FERRY_H
#define FERRY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

/* One list generates the enum, ferry_strerror() and ferry_err_name(), so
 * they never drift apart. Codes are stable: never renumber, only append. */
#define FERRY_ERRORS(X)                                                        \
	X(OK, 0, "success")                                                    \
	X(E_INVALID, -1, "invalid argument")                                   \
	X(E_NOMEM, -2, "out of memory")                                        \
	X(E_IO, -3, "file system error")                                       \
	X(E_STORE, -4, "storage engine error")                                 \
	X(E_NOT_FOUND, -5, "not found")                                        \
	X(E_LIMIT, -6, "size limit exceeded")                                  \
	X(E_MAP_FULL, -7, "database map is full")                              \
	X(E_MALFORMED, -8, "malformed input")                                  \
	X(E_BAD_SIGNATURE, -9, "signature does not verify")                    \
	X(E_BAD_LINK, -10, "hash chain link broken")                           \
	X(E_GAP, -11, "sequence gap in change log")                            \
	X(E_FORK, -12, "conflicting history for an already held sequence")     \
	X(E_UNKNOWN_ORIGIN, -13, "origin is not trusted")                      \
	X(E_CLOCK_DRIFT, -14, "timestamp too far ahead of the local clock")    \
	X(E_KEY_FILE, -15, "node key file missing, unreadable or unsafe")      \
	X(E_VERSION, -16, "unsupported format version")                        \
	X(E_CORRUPT, -17, "store is inconsistent")                             \
	X(E_BUSY, -18, "resource busy")                                        \
	X(E_DONE, -19, "no more data")                                         \
	X(E_PROTOCOL, -20, "peer broke the ferry.v1 protocol")                 \
	X(E_DECRYPT, -21, "frame failed authentication")                       \
	X(E_UNTRUSTED, -22, "peer is not in the trust list")                   \
	X(E_AUTH, -23, "peer failed to prove its key")                         \
	X(E_NETWORK, -24, "network error")                                     \
	X(E_TIMEOUT, -25, "timed out")                                         \
	X(E_CLOSED, -26, "connection closed by peer")

typedef enum ferry_err {
#define FERRY_ERR_ENUM_(name, code, text) FERRY_##name = code,
	FERRY_ERRORS(FERRY_ERR_ENUM_)
#undef FERRY_ERR_ENUM_
} ferry_err;

/* A static description of `err` ("sequence gap in change log"). Never NULL. */
const char *ferry_strerror(int err);

/* The symbolic name of `err` ("FERRY_E_GAP"). Never NULL. */
const char *ferry_err_name(int err);

/* ------------------------------------------------------------------------ */
/* UTF-8                                                                    */
/* ------------------------------------------------------------------------ */

/* Every name ferry stores or sends is well-formed UTF-8: shortest forms
 * only, no surrogates, nothing past U+10FFFF. These are the checks it uses,
 * for code that prepares names or text for it. */

/* Length (1..4) of the well-formed character at p[0..left), or 0 if the
 * bytes there do not start one. */
size_t ferry_utf8_char(const void *p, size_t left);

/* Non-zero if buf[0..len) is well-formed UTF-8. */
int ferry_utf8_valid(const void *buf, size_t len);

/* Cut the NUL-terminated `s` back to its longest well-formed prefix (for
 * text truncated by snprintf in the middle of a character). */
void ferry_utf8_trim(char *s);

/* msgpack-c allocates for whatever count an array or map header claims, so
 * untrusted bytes are walked with this first: buf[0..len) must be exactly
 * one well-formed object whose counts fit in the bytes present and whose
 * arrays and maps nest at most `max_depth` deep (a flat array is 1; at most
 * 31, the deepest msgpack-c decodes).
 * Errors: FERRY_E_MALFORMED, FERRY_E_LIMIT (nested too deep). */
ferry_err ferry_msgpack_check(const void *buf, size_t len,
			      unsigned int max_depth);

/* ------------------------------------------------------------------------ */
/* Limits                                                                   */
/* ------------------------------------------------------------------------ */

/* Bounds on names and sizes. Local writes over a bound fail with
 * FERRY_E_LIMIT; wire input over a bound fails with FERRY_E_LIMIT or
 * FERRY_E_MALFORMED. The sum of scope, collection and key lengths keeps the
 * LMDB key under its 511-byte maximum. */
#define FERRY_MAX_SCOPE_BYTES 64
#define FERRY_MAX_COLLECTION_BYTES 64
#define FERRY_MAX_KEY_BYTES 256
#define FERRY_MAX_FIELD_NAME_BYTES 128
#define FERRY_MAX_VALUE_BYTES (64 * 1024)
#define FERRY_MAX_FIELDS_PER_WRITE 1024
/* Containers (arrays, maps) nested inside one field value. The store wraps
 * each value in three more levels and msgpack-c decodes at most 32. */
#define FERRY_MAX_VALUE_DEPTH 24
/* A record's merged state (all fields with their stamps). */
#define FERRY_MAX_RECORD_BYTES (256 * 1024)
#define FERRY_MAX_WRITES_PER_TXN 100000
#define FERRY_MAX_TXN_BYTES (64 * 1024 * 1024)
/* The largest batch (encoded segments) ferry_sync_apply() accepts. */
#define FERRY_MAX_BATCH_BYTES (16 * 1024 * 1024)
/* Default size a batch produced by ferry_export_next() aims for. */
#define FERRY_DEFAULT_BATCH_BYTES (1024 * 1024)

#define FERRY_PUBLIC_KEY_BYTES 32
#define FERRY_HASH_BYTES 32
#define FERRY_SIGNATURE_BYTES 64
/* Hex text of a public key plus its NUL. */
#define FERRY_ID_HEX_BYTES (2 * FERRY_PUBLIC_KEY_BYTES + 1)

/* ------------------------------------------------------------------------ */
/* Hybrid logical clock stamps                                              */
/* ------------------------------------------------------------------------ */

/* A stamp: 48 bits of Unix milliseconds, 16 bits of logical counter. */
typedef uint64_t ferry_hlc;
#define FERRY_HLC_MS(h) ((h) >> 16)
#define FERRY_HLC_COUNTER(h) ((h)&0xffffu)

/* Wall clock in Unix milliseconds; replaceable for tests. */
typedef uint64_t (*ferry_clock_fn)(void *payload);

/* ------------------------------------------------------------------------ */
/* Node                                                                     */
/* ------------------------------------------------------------------------ */

typedef struct ferry_node ferry_node;

#define FERRY_NODE_OPTIONS_VERSION 1

typedef struct ferry_node_options {
	unsigned int version; /* FERRY_NODE_OPTIONS_VERSION */
	/* Maximum size of the LMDB map in bytes; 0 = default (32 GiB). The
	 * file grows as needed; the map is only address space. */
	uint64_t map_size;
	/* Remote stamps more than this many ms ahead of the local wall clock
	 * are refused with FERRY_E_CLOCK_DRIFT; 0 = default (300000). */
	uint64_t max_clock_drift_ms;
	/* How many conflict-log entries to keep (oldest dropped first);
	 * 0 = default (10000). */
	uint64_t conflict_retention;
	/* Non-zero: ferry_sync_apply() refuses chains whose origin was not
	 * added with ferry_origin_trust() (FERRY_E_UNKNOWN_ORIGIN). Zero:
	 * any origin whose signatures verify is accepted. */
	int require_known_origins;
	/* Non-zero: commits are not flushed to disk (tests and benchmarks
	 * only: a crash may lose recent commits, never consistency). */
	int no_sync;
	/* Wall clock; NULL = CLOCK_REALTIME. */
	ferry_clock_fn clock;
	void *clock_payload;
} ferry_node_options;

#define FERRY_NODE_OPTIONS_INIT                                                \
	{                                                                      \
		FERRY_NODE_OPTIONS_VERSION, 0, 0, 0, 0, 0, NULL, NULL          \
	}

/* Open (creating if needed) the node in directory `dir`.
 *
 * On first open the directory is created (mode 0700), an Ed25519 key pair is
 * generated (secret key in `node.key`, mode 0600; public key in `node.pub`)
 * and the LMDB environment is initialised. Later opens check that the secret
 * key file is not readable by group or others and matches `node.pub`.
 *
 * out:  the node handle, released with ferry_node_close().
 * dir:  data directory path.
 * opts: NULL for defaults.
 * Errors: FERRY_E_INVALID, FERRY_E_IO, FERRY_E_KEY_FILE, FERRY_E_STORE,
 *         FERRY_E_VERSION (opts->version unknown, or a store written in
 *         another format), FERRY_E_NOMEM. `errdetail`, if not NULL, receives
 *         a heap string describing the failure (free() it) since there is no
 *         node to hold it. */
ferry_err ferry_node_open(ferry_node **out, const char *dir,
			  const ferry_node_options *opts, char **errdetail);

/* Close the node. Pending ferry_txn handles must be finished first. */
void ferry_node_close(ferry_node *node);

/* Detail text of the calling thread's last failed call on `node` ("" if
 * none). Valid until that thread's next call on the node. */
const char *ferry_node_errmsg(const ferry_node *node);

/* The node's public key (its origin id), FERRY_PUBLIC_KEY_BYTES long.
 * Valid while the node is open. */
const uint8_t *ferry_node_id(const ferry_node *node);

/* Hex text of a public key into `out` (FERRY_ID_HEX_BYTES long). */
void ferry_id_to_hex(char out[FERRY_ID_HEX_BYTES],
		     const uint8_t id[FERRY_PUBLIC_KEY_BYTES]);

/* Parse 64 hex digits into a public key. FERRY_E_INVALID if malformed. */
ferry_err ferry_id_from_hex(uint8_t out[FERRY_PUBLIC_KEY_BYTES],
			    const char *hex);

/* Sign `msg` with the node's identity key (Ed25519, detached) — for
 * protocols above the engine, such as the ferry.v1 handshake. To keep the
 * change log's signatures unforgeable through this door, a message that
 * starts with the log's own context ("ferry.head.") is refused with
 * FERRY_E_INVALID. */
ferry_err ferry_node_sign(ferry_node *node, uint8_t sig[FERRY_SIGNATURE_BYTES],
			  const void *msg, size_t len);

/* The node's wall clock in Unix ms: ferry_node_options.clock if one was
 * given (tests), else CLOCK_REALTIME. For timestamps layers above the
 * engine keep (when a peer was trusted, a key created). */
uint64_t ferry_node_now_ms(const ferry_node *node);

/* The data directory the node was opened on. Valid while open. */
const char *ferry_node_dir(const ferry_node *node);

/* ------------------------------------------------------------------------ */
/* Writes                                                                   */
/* ------------------------------------------------------------------------ */

/* One field of a write: a name and one msgpack-encoded value. */
typedef struct ferry_field {
	const char *name;
	const void *value; /* exactly one msgpack object */
	size_t value_len;
} ferry_field;

typedef struct ferry_txn ferry_txn;

/* Start a transaction. Writes are validated and buffered in memory; nothing
 * touches the store (and no lock is held) until ferry_txn_commit().
 * out: the transaction, finished by commit or abort. */
ferry_err ferry_txn_begin(ferry_txn **out, ferry_node *node);

/* Set `nfields` fields of record (scope, collection, key); other fields of
 * the record are left as they are. The values are copied (and stored in
 * msgpack-c's canonical, shortest encoding). A later write to the same
 * field in the same transaction wins; one write may not name a field twice.
 * Errors: FERRY_E_INVALID (bad or repeated name, name not UTF-8, value not
 *         exactly one msgpack object),
 *         FERRY_E_LIMIT (name, value, field count or transaction size).
 * On error the transaction is unchanged and may still be committed. */
ferry_err ferry_txn_put(ferry_txn *txn, const char *scope,
			const char *collection, const char *key,
			const ferry_field *fields, size_t nfields);

/* Delete record (scope, collection, key): a tombstone stamped now. Fields
 * written later (by stamp) are live again. */
ferry_err ferry_txn_delete(ferry_txn *txn, const char *scope,
			   const char *collection, const char *key);

/* Commit all buffered writes atomically and durably (unless opts.no_sync):
 * each write gets its own HLC stamp and log entry; each touched chain head
 * is signed. `txn` is freed whatever the result.
 * Errors: FERRY_E_LIMIT (a merged record would exceed
 *         FERRY_MAX_RECORD_BYTES), FERRY_E_MAP_FULL, FERRY_E_STORE. On error
 *         nothing is written. */
ferry_err ferry_txn_commit(ferry_txn *txn);

/* ferry_txn_commit(), also returning the arrival cursor of the
 * transaction's last change in *last_cursor (0 if it had none). */
ferry_err ferry_txn_commit_cursor(ferry_txn *txn, uint64_t *last_cursor);

/* Also put `value` under (table, key) of the kv tables (see ferry_kv_put),
 * in the same atomic commit as the transaction's changes: a record of what
 * a request did can never survive without the changes, or the reverse.
 * Errors: as ferry_kv_put, checked now. */
ferry_err ferry_txn_kv_put(ferry_txn *txn, const char *table, const char *key,
			   const void *value, size_t len);

/* Discard the transaction and free it. Accepts NULL. */
void ferry_txn_abort(ferry_txn *txn);

/* ------------------------------------------------------------------------ */
/* Reads                                                                    */
/* ------------------------------------------------------------------------ */

/* A live field with the stamp of the write that set it. */
typedef struct ferry_field_info {
	const char *name;
	const void *value; /* one msgpack object */
	size_t value_len;
	ferry_hlc hlc;
	const uint8_t *origin; /* FERRY_PUBLIC_KEY_BYTES */
} ferry_field_info;

typedef struct ferry_record ferry_record;

/* Read the live fields of one record.
 * out: the record, released with ferry_record_free().
 * Errors: FERRY_E_NOT_FOUND if the record never existed, is deleted, or
 *         has no live field; FERRY_E_INVALID for bad names. */
ferry_err ferry_get(ferry_record **out, ferry_node *node, const char *scope,
		    const char *collection, const char *key);

/* The record's key, collection and scope. Valid until the record is freed. */
const char *ferry_record_key(const ferry_record *rec);
const char *ferry_record_collection(const ferry_record *rec);
const char *ferry_record_scope(const ferry_record *rec);

/* Node-local arrival cursors (see ferry_changes) of the change that last
 * made the record live (created, or re-created after a delete) and of the
 * last change to it. For "what changed since cursor N" questions. Either
 * pointer may be NULL. */
void ferry_record_cursors(const ferry_record *rec, uint64_t *created,
			  uint64_t *changed);

/* The same cursors for any record the node holds, live or deleted: *live
 * is set non-zero if it has a live field. Any out-pointer may be NULL.
 * Errors: FERRY_E_NOT_FOUND if the node never held the record. */
ferry_err ferry_record_state(int *live, uint64_t *created, uint64_t *changed,
			     ferry_node *node, const char *scope,
			     const char *collection, const char *key);

/* Number of live fields, sorted by name (bytewise). */
size_t ferry_record_field_count(const ferry_record *rec);

/* Field `i` (< ferry_record_field_count). Pointers in `out` are valid until
 * the record is freed. */
void ferry_record_field(const ferry_record *rec, size_t i,
			ferry_field_info *out);

/* Find a live field by name; NULL if absent. Valid until freed. */
const ferry_field_info *ferry_record_find(const ferry_record *rec,
					  const char *name);

void ferry_record_free(ferry_record *rec);

/* Called once per live record, in key order. The record is borrowed: valid
 * only during the call. Return non-zero to stop the scan early. */
typedef int (*ferry_scan_cb)(const ferry_record *rec, void *payload);

typedef struct ferry_scan_options {
	const char *prefix; /* only keys starting with this; NULL = all */
	const char *after;  /* only keys > this (for paging); NULL = none */
	uint64_t limit;	    /* stop after this many records; 0 = no limit */
} ferry_scan_options;

/* Visit the live records of a collection. A read snapshot is held during
 * the whole scan: keep callbacks short (a long read blocks page reuse).
 * Errors: FERRY_E_INVALID; the scan stops without error if cb asks. */
ferry_err ferry_scan(ferry_node *node, const char *scope,
		     const char *collection, const ferry_scan_options *opts,
		     ferry_scan_cb cb, void *payload);

/* Number of live records in a collection (O(1), kept at commit). */
ferry_err ferry_count(uint64_t *out, ferry_node *node, const char *scope,
		      const char *collection);

/* Called once per (scope, collection) that holds or held records, in order,
 * with its live record count. Return non-zero to stop. */
typedef int (*ferry_collection_cb)(const char *scope, const char *collection,
				   uint64_t live_records, void *payload);

ferry_err ferry_collections(ferry_node *node, ferry_collection_cb cb,
			    void *payload);

/* ------------------------------------------------------------------------ */
/* Change log                                                               */
/* ------------------------------------------------------------------------ */

typedef enum ferry_op { FERRY_OP_PUT = 1, FERRY_OP_DELETE = 2 } ferry_op;

/* One change as held in the log. All pointers are borrowed: valid only
 * during the callback that receives the change. */
typedef struct ferry_change {
	uint64_t cursor; /* node-local arrival sequence, starting at 1 */
	const uint8_t *origin;
	const char *scope;
	uint64_t seq; /* position in the (origin, scope) chain, from 1 */
	ferry_hlc hlc;
	const char *collection;
	const char *key;
	ferry_op op;
	const ferry_field *fields; /* FERRY_OP_PUT only */
	size_t nfields;
} ferry_change;

typedef int (*ferry_change_cb)(const ferry_change *change, void *payload);

/* Visit the changes this node has applied (its own and received) with
 * cursor > `since`, in arrival order, at most `limit` (0 = all). A consumer
 * remembers the last cursor it saw and asks again from there. */
ferry_err ferry_changes(ferry_node *node, uint64_t since, uint64_t limit,
			ferry_change_cb cb, void *payload);

/* The newest arrival cursor (0 if the log is empty). */
ferry_err ferry_changes_last(uint64_t *out, ferry_node *node);

/* ------------------------------------------------------------------------ */
/* Conflict log                                                             */
/* ------------------------------------------------------------------------ */

/* A value that lost a merge against a write from another origin. `winner`
 * is the write that now holds the field (for a delete, the tombstone). */
typedef struct ferry_conflict {
	uint64_t id;
	uint64_t recorded_ms; /* local wall clock when recorded */
	const char *scope;
	const char *collection;
	const char *key;
	const char *field;
	ferry_hlc loser_hlc;
	const uint8_t *loser_origin;
	const void *loser_value; /* msgpack */
	size_t loser_value_len;
	ferry_hlc winner_hlc;
	const uint8_t *winner_origin;
	int winner_is_delete;
} ferry_conflict;

typedef int (*ferry_conflict_cb)(const ferry_conflict *c, void *payload);

/* Visit recorded conflicts, oldest first, optionally filtered by scope,
 * collection and key (NULL = any). Pointers are valid during the call. */
ferry_err ferry_conflicts(ferry_node *node, const char *scope,
			  const char *collection, const char *key,
			  ferry_conflict_cb cb, void *payload);

/* ------------------------------------------------------------------------ */
/* Sync core (transport-free)                                               */
/* ------------------------------------------------------------------------ */

/* A version vector: what a node holds, (origin, scope) -> (seq, head). */
typedef struct ferry_vector ferry_vector;

typedef struct ferry_vector_entry {
	const uint8_t *origin;
	const char *scope;
	uint64_t seq;
	const uint8_t *head; /* FERRY_HASH_BYTES: hash of entry `seq` */
} ferry_vector_entry;

/* This node's vector. out: free with ferry_vector_free(). */
ferry_err ferry_vector_get(ferry_vector **out, ferry_node *node);

/* An empty vector (a node that holds nothing). */
ferry_err ferry_vector_new(ferry_vector **out);

size_t ferry_vector_count(const ferry_vector *vec);

/* Entry `i`, sorted by (origin, scope). Valid until the vector is freed. */
void ferry_vector_at(const ferry_vector *vec, size_t i,
		     ferry_vector_entry *out);

/* Encode as msgpack (see docs/architecture.md). out: malloc'd, free(). */
ferry_err ferry_vector_encode(void **out, size_t *out_len,
			      const ferry_vector *vec);

/* Decode msgpack bytes; bounded, never trusts counts.
 * Errors: FERRY_E_MALFORMED, FERRY_E_LIMIT, FERRY_E_NOMEM. */
ferry_err ferry_vector_decode(ferry_vector **out, const void *buf, size_t len);

void ferry_vector_free(ferry_vector *vec);

/* Set (insert or replace) the entry for (origin, scope), keeping the vector
 * sorted. Errors: FERRY_E_INVALID (bad scope), FERRY_E_NOMEM. */
ferry_err ferry_vector_set(ferry_vector *vec,
			   const uint8_t origin[FERRY_PUBLIC_KEY_BYTES],
			   const char *scope, uint64_t seq,
			   const uint8_t head[FERRY_HASH_BYTES]);

/* The held sequence for (origin, scope) in `vec`, 0 if absent. */
uint64_t ferry_vector_seq(const ferry_vector *vec,
			  const uint8_t origin[FERRY_PUBLIC_KEY_BYTES],
			  const char *scope);

/* Export: the segments a remote vector lacks, in bounded batches. */
typedef struct ferry_export ferry_export;

#define FERRY_EXPORT_OPTIONS_VERSION 1

typedef struct ferry_export_options {
	unsigned int version; /* FERRY_EXPORT_OPTIONS_VERSION */
	/* Target batch size in bytes; 0 = FERRY_DEFAULT_BATCH_BYTES. A batch
	 * exceeds it only when a single signed segment does. */
	size_t batch_bytes;
	/* Only these scopes (NULL = all). */
	const char *const *scopes;
	size_t nscopes;
	/* Only chains for which filter(origin, scope, payload) returns
	 * non-zero (NULL = all). Called while planning, not later. */
	int (*filter)(const uint8_t *origin, const char *scope, void *payload);
	void *filter_payload;
} ferry_export_options;

#define FERRY_EXPORT_OPTIONS_INIT                                              \
	{                                                                      \
		FERRY_EXPORT_OPTIONS_VERSION, 0, NULL, 0, NULL, NULL           \
	}

/* Plan an export of everything `node` holds beyond `remote` (NULL = an
 * empty vector: everything). Segments start where the remote's chain ends
 * and end at signed heads. The plan is fixed at this call; writes after it
 * are picked up by the next export. No read transaction is held between
 * calls to ferry_export_next().
 * out: free with ferry_export_free(). */
ferry_err ferry_export_begin(ferry_export **out, ferry_node *node,
			     const ferry_vector *remote,
			     const ferry_export_options *opts);

/* The next batch: one msgpack object holding one or more segments.
 * out: malloc'd batch, the caller's to free(); out_changes: changes in it
 *      (may be NULL).
 * Errors: FERRY_E_DONE when the plan is exhausted (no batch returned);
 *         FERRY_E_CORRUPT if the local log is damaged. */
ferry_err ferry_export_next(ferry_export *exp, void **out, size_t *out_len,
			    uint64_t *out_changes);

/* Changes still to export in the plan. */
uint64_t ferry_export_remaining(const ferry_export *exp);

void ferry_export_free(ferry_export *exp);

/* What ferry_sync_apply() did. */
typedef struct ferry_apply_stats {
	uint64_t segments;
	uint64_t changes_applied;   /* new to this node */
	uint64_t changes_duplicate; /* already held, skipped */
	uint64_t conflicts;	    /* conflict-log entries recorded */
	uint64_t segments_refused;  /* skipped by ferry_apply_options.filter */
	uint64_t changes_refused;
} ferry_apply_stats;

#define FERRY_APPLY_OPTIONS_VERSION 1

/* Decides, per segment, whether to take it: return 0 to accept, non-zero
 * to refuse (the segment is skipped, the rest of the batch applied). A
 * refusing filter may write a reason for people into `reason` (`reason_len`
 * bytes, NUL-terminated). Called before the segment is verified. */
typedef int (*ferry_segment_filter)(const uint8_t *origin, const char *scope,
				    char *reason, size_t reason_len,
				    void *payload);

typedef struct ferry_apply_options {
	unsigned int version;	     /* FERRY_APPLY_OPTIONS_VERSION */
	ferry_segment_filter filter; /* NULL = accept all */
	void *filter_payload;
} ferry_apply_options;

#define FERRY_APPLY_OPTIONS_INIT                                               \
	{                                                                      \
		FERRY_APPLY_OPTIONS_VERSION, NULL, NULL                        \
	}

/* Verify and apply one batch (as produced by ferry_export_next()) in one
 * LMDB transaction. For each segment: it must link to the held chain (or
 * start at sequence 1 with a zero previous hash), have no gap, hash-chain
 * correctly, end in a head signed by its origin, and carry no stamp more
 * than max_clock_drift_ms ahead of the local clock. Entries already held
 * are compared with the held ones and skipped. Any failure rejects the
 * whole batch: nothing is applied, and the node's detail text names the
 * segment (origin, scope, seq) and the reason.
 * stats: may be NULL.
 * Errors: FERRY_E_MALFORMED, FERRY_E_LIMIT, FERRY_E_BAD_LINK, FERRY_E_GAP,
 *         FERRY_E_FORK, FERRY_E_BAD_SIGNATURE, FERRY_E_UNKNOWN_ORIGIN,
 *         FERRY_E_CLOCK_DRIFT, FERRY_E_VERSION, FERRY_E_MAP_FULL,
 *         FERRY_E_STORE. */
ferry_err ferry_sync_apply(ferry_node *node, const void *batch, size_t len,
			   ferry_apply_stats *stats);

/* ferry_sync_apply() with options (a per-segment filter). opts may be NULL.
 * Errors: as ferry_sync_apply(); FERRY_E_VERSION for an unknown
 *         opts->version. */
ferry_err ferry_sync_apply_with(ferry_node *node, const void *batch, size_t len,
				const ferry_apply_options *opts,
				ferry_apply_stats *stats);

/* What a batch holds, without verifying it: one call per segment. */
typedef struct ferry_segment_info {
	const uint8_t *origin;
	const char *scope;
	uint64_t first_seq, last_seq;
	const uint8_t *head; /* hash of entry last_seq */
	uint64_t changes;
} ferry_segment_info;

typedef int (*ferry_segment_cb)(const ferry_segment_info *seg, void *payload);

/* Decode a batch's outline (segments, their first and last sequence and
 * head hash) and call cb for each segment; non-zero from cb stops. Pointers
 * are valid during the call.
 * Errors: FERRY_E_MALFORMED, FERRY_E_LIMIT, FERRY_E_VERSION. */
ferry_err ferry_batch_segments(const void *batch, size_t len,
			       ferry_segment_cb cb, void *payload);

/* Mark `origin` as known (for require_known_origins). `name` may be NULL. */
ferry_err ferry_origin_trust(ferry_node *node,
			     const uint8_t origin[FERRY_PUBLIC_KEY_BYTES],
			     const char *name);

/* ------------------------------------------------------------------------ */
/* Small tables for the layers above the engine                             */
/* ------------------------------------------------------------------------ */

/* Named tables of (string key -> bytes) in the node's store, for settings
 * that must be shared by every process using the directory (the trust
 * list, peers to dial, connection status). Not replicated. Table and key:
 * non-empty UTF-8 without NUL, table <= 64 bytes, key <= 256 bytes; values
 * <= FERRY_MAX_VALUE_BYTES. Every put or delete increments the table's
 * generation, so a process can notice another's changes cheaply. */

ferry_err ferry_kv_put(ferry_node *node, const char *table, const char *key,
		       const void *value, size_t len);

/* out: malloc'd copy of the value (free()). Errors: FERRY_E_NOT_FOUND. */
ferry_err ferry_kv_get(void **out, size_t *out_len, ferry_node *node,
		       const char *table, const char *key);

/* Errors: FERRY_E_NOT_FOUND if absent. */
ferry_err ferry_kv_delete(ferry_node *node, const char *table, const char *key);

/* Called per entry in key order; pointers valid during the call. Return
 * non-zero to stop. */
typedef int (*ferry_kv_cb)(const char *key, const void *value, size_t len,
			   void *payload);

ferry_err ferry_kv_scan(ferry_node *node, const char *table, ferry_kv_cb cb,
			void *payload);

/* A number that changes whenever `table` changes (0 if it never did). */
ferry_err ferry_kv_generation(uint64_t *out, ferry_node *node,
			      const char *table);

/* ------------------------------------------------------------------------ */
/* Integrity and status                                                     */
/* ------------------------------------------------------------------------ */

/* Hash (BLAKE2b-256) of the merged state of one scope, or of all scopes
 * when `scope` is NULL: equal on two nodes exactly when their records
 * (values, stamps and tombstones) are equal. */
ferry_err ferry_digest(uint8_t out[FERRY_HASH_BYTES], ferry_node *node,
		       const char *scope);

typedef struct ferry_verify_report {
	uint64_t chains;
	uint64_t changes;
	uint64_t signatures;
	uint64_t records;
} ferry_verify_report;

/* Re-check every chain link and stored signature, and that the merged
 * records equal a fresh merge of the whole log (like `git fsck`).
 * Errors: FERRY_E_CORRUPT / FERRY_E_BAD_LINK / FERRY_E_BAD_SIGNATURE with
 *         the first problem in the detail text. */
ferry_err ferry_verify(ferry_node *node, ferry_verify_report *report);

typedef struct ferry_status {
	uint64_t changes;     /* entries in the log */
	uint64_t last_cursor; /* newest arrival cursor */
	uint64_t conflicts;   /* entries in the conflict log */
	ferry_hlc clock;      /* last persisted HLC */
	uint64_t store_bytes; /* size of the data file */
} ferry_status;

ferry_err ferry_status_get(ferry_status *out, ferry_node *node);

#ifdef __cplusplus
}
#endif
#endif /* FERRY_H */
