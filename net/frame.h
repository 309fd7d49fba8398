/*
 * frame.h — ferry.v1 frames (docs/protocol.md §2–3): encoding and bounded,
 * I/O-free decoding of the plaintext frames. Encryption is secure.h's.
 */
#ifndef FERRY_FRAME_H
#define FERRY_FRAME_H

#include <msgpack.h>

#include "ferry.h"

#define FRAME_PROTOCOL "ferry.v1"
#define FRAME_VERSION 1
#define FRAME_MIN_MAX_FRAME 65536
#define FRAME_MAX_REASON_BYTES 1024
#define FRAME_MAX_REFUSALS 65536
#define FRAME_NONCE_BYTES 32
#define FRAME_KX_BYTES 32

typedef enum frame_type {
	FRAME_HELLO = 1,
	FRAME_AUTH = 2,
	FRAME_VECTOR = 3,
	FRAME_BATCH = 4,
	FRAME_ACK = 5,
	FRAME_PENDING = 6,
	FRAME_PING = 7,
	FRAME_PONG = 8,
	FRAME_CLOSE = 9,
} frame_type;

#define FRAME_ACK_APPLIED 0
#define FRAME_ACK_RESYNC 1

/* One refused segment in an ACK. Strings are NUL-terminated copies when
 * decoded; when encoding, only the pointers are read. */
typedef struct frame_refusal {
	const uint8_t *origin; /* FERRY_PUBLIC_KEY_BYTES */
	const char *scope;
	const char *reason;
} frame_refusal;

/* A decoded frame. Byte pointers point into the decoded buffer (valid while
 * it is and until frame_clear); strings are owned copies. */
typedef struct frame {
	frame_type type;
	union {
		struct {
			uint64_t version;
			const uint8_t *identity; /* 32 */
			const uint8_t *kx;	 /* 32 */
			const uint8_t *nonce;	 /* 32 */
			uint64_t max_frame;
		} hello;
		struct {
			const uint8_t *sig; /* 64 */
		} auth;
		struct {
			const uint8_t *data; /* an encoded ferry vector */
			size_t len;
		} vector;
		struct {
			uint64_t batch_no;
			const uint8_t *data; /* an encoded batch */
			size_t len;
		} batch;
		struct {
			uint64_t batch_no, status, applied, duplicate;
			frame_refusal *refused; /* owned */
			size_t nrefused;
		} ack;
		struct {
			uint64_t changes;
		} pending;
		struct {
			uint64_t time_ms; /* PING and PONG */
		} ping;
		struct {
			uint64_t code;
			char *reason; /* owned */
		} close;
	} u;
	msgpack_unpacked unpacked; /* owns the decoded tree */
	char *strings;		   /* owns refusal and close strings */
} frame;

/* Decode one plaintext frame that must fill buf[0..len) exactly. Counts
 * are bounded before anything is allocated; sizes are exact (32-byte keys,
 * 64-byte signatures); names are valid UTF-8.
 * Errors: FERRY_E_PROTOCOL (malformed, unknown type, wrong fields),
 *         FERRY_E_VERSION (HELLO with another protocol name), FERRY_E_LIMIT,
 *         FERRY_E_NOMEM. On error `f` needs no clearing. */
ferry_err frame_decode(frame *f, const void *buf, size_t len);
void frame_clear(frame *f);

/* Encoders append one frame to `out`. Errors: FERRY_E_NOMEM,
 * FERRY_E_INVALID (a string over its bound). */
ferry_err frame_encode_hello(msgpack_sbuffer *out, const uint8_t *identity,
			     const uint8_t *kx, const uint8_t *nonce,
			     uint64_t max_frame);
ferry_err frame_encode_auth(msgpack_sbuffer *out, const uint8_t *sig);
ferry_err frame_encode_vector(msgpack_sbuffer *out, const void *vector,
			      size_t len);
ferry_err frame_encode_batch(msgpack_sbuffer *out, uint64_t batch_no,
			     const void *batch, size_t len);
ferry_err frame_encode_ack(msgpack_sbuffer *out, uint64_t batch_no,
			   uint64_t status, uint64_t applied,
			   uint64_t duplicate, const frame_refusal *refused,
			   size_t nrefused);
ferry_err frame_encode_pending(msgpack_sbuffer *out, uint64_t changes);
ferry_err frame_encode_ping(msgpack_sbuffer *out, frame_type type,
			    uint64_t time_ms); /* FRAME_PING or FRAME_PONG */
ferry_err frame_encode_close(msgpack_sbuffer *out, uint64_t code,
			     const char *reason);

#endif
