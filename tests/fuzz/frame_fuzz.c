/*
 * frame_fuzz.c — libFuzzer target for what a peer's plaintext frame reaches
 * first: frame_decode(), then, for what it accepts, the payload decoders the
 * session hands a VECTOR or BATCH to (ferry_vector_decode(),
 * ferry_batch_segments()). Invalid input must come back as an error: a
 * crash, a leak or a sanitizer report is a bug.
 *
 * Whatever decodes must also survive a round trip: re-encoded with the
 * frame_encode_* functions it decodes again to the same fields. That keeps
 * the encoders and the decoder agreeing on every bound.
 *
 * How CI runs it (see tests/fuzz/fuzz.cmake):
 *   CC=clang cmake -S . -B build-fuzz -DFERRY_BUILD_FUZZERS=ON \
 *         -DFERRY_SANITIZE=address,undefined -DFERRY_BUILD_BENCH=OFF
 *   cmake --build build-fuzz --target frame_fuzz
 *   cp -r tests/fuzz/corpus/frame /tmp/frame-corpus
 *   build-fuzz/tests/frame_fuzz -max_total_time=60 /tmp/frame-corpus
 * The seeds are the valid frames of frame_test, written with
 *   FERRY_FRAME_CORPUS=tests/fuzz/corpus/frame build/tests/frame_test
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ferry.h"
#include "frame.h"

static void check(int cond)
{
	if (!cond)
		abort();
}

static int segment_cb(const ferry_segment_info *seg, void *payload)
{
	uint64_t *sum = payload;
	*sum += seg->origin[0] + seg->head[0] + strlen(seg->scope) +
		seg->first_seq + seg->last_seq + seg->changes;
	return 0;
}

static void fuzz_payload(const frame *f)
{
	ferry_vector *v = NULL;
	uint64_t sum = 0;

	if (f->type == FRAME_VECTOR &&
	    ferry_vector_decode(&v, f->u.vector.data, f->u.vector.len) ==
		    FERRY_OK) {
		for (size_t i = 0; i < ferry_vector_count(v); i++) {
			ferry_vector_entry e;
			ferry_vector_at(v, i, &e);
			sum += e.origin[0] + e.head[0] + strlen(e.scope);
		}
		ferry_vector_free(v);
	}
	if (f->type == FRAME_BATCH)
		(void)ferry_batch_segments(f->u.batch.data, f->u.batch.len,
					   segment_cb, &sum);
	/* Keep the reads from being optimised away. */
	__asm__ volatile("" : : "r"(sum));
}

static ferry_err reencode(msgpack_sbuffer *out, const frame *f)
{
	switch (f->type) {
	case FRAME_HELLO:
		/* The encoder always writes FRAME_VERSION; compare the rest. */
		return frame_encode_hello(out, f->u.hello.identity,
					  f->u.hello.kx, f->u.hello.nonce,
					  f->u.hello.max_frame);
	case FRAME_AUTH:
		return frame_encode_auth(out, f->u.auth.sig);
	case FRAME_VECTOR:
		return frame_encode_vector(out, f->u.vector.data,
					   f->u.vector.len);
	case FRAME_BATCH:
		return frame_encode_batch(out, f->u.batch.batch_no,
					  f->u.batch.data, f->u.batch.len);
	case FRAME_ACK:
		return frame_encode_ack(out, f->u.ack.batch_no, f->u.ack.status,
					f->u.ack.applied, f->u.ack.duplicate,
					f->u.ack.refused, f->u.ack.nrefused);
	case FRAME_PENDING:
		return frame_encode_pending(out, f->u.pending.changes);
	case FRAME_PING:
	case FRAME_PONG:
		return frame_encode_ping(out, f->type, f->u.ping.time_ms);
	case FRAME_CLOSE:
		return frame_encode_close(out, f->u.close.code,
					  f->u.close.reason);
	}
	abort();
}

static int same_bytes(const void *a, const void *b, size_t n)
{
	return n == 0 || memcmp(a, b, n) == 0;
}

static void check_same(const frame *a, const frame *b)
{
	check(a->type == b->type);
	switch (a->type) {
	case FRAME_HELLO:
		check(!memcmp(a->u.hello.identity, b->u.hello.identity, 32) &&
		      !memcmp(a->u.hello.kx, b->u.hello.kx, 32) &&
		      !memcmp(a->u.hello.nonce, b->u.hello.nonce, 32) &&
		      a->u.hello.max_frame == b->u.hello.max_frame);
		break;
	case FRAME_AUTH:
		check(!memcmp(a->u.auth.sig, b->u.auth.sig, 64));
		break;
	case FRAME_VECTOR:
		check(a->u.vector.len == b->u.vector.len &&
		      same_bytes(a->u.vector.data, b->u.vector.data,
				 a->u.vector.len));
		break;
	case FRAME_BATCH:
		check(a->u.batch.batch_no == b->u.batch.batch_no &&
		      a->u.batch.len == b->u.batch.len &&
		      same_bytes(a->u.batch.data, b->u.batch.data,
				 a->u.batch.len));
		break;
	case FRAME_ACK:
		check(a->u.ack.batch_no == b->u.ack.batch_no &&
		      a->u.ack.status == b->u.ack.status &&
		      a->u.ack.applied == b->u.ack.applied &&
		      a->u.ack.duplicate == b->u.ack.duplicate &&
		      a->u.ack.nrefused == b->u.ack.nrefused);
		for (size_t i = 0; i < a->u.ack.nrefused; i++) {
			const frame_refusal *x = &a->u.ack.refused[i];
			const frame_refusal *y = &b->u.ack.refused[i];
			check(!memcmp(x->origin, y->origin, 32) &&
			      !strcmp(x->scope, y->scope) &&
			      !strcmp(x->reason, y->reason));
		}
		break;
	case FRAME_PENDING:
		check(a->u.pending.changes == b->u.pending.changes);
		break;
	case FRAME_PING:
	case FRAME_PONG:
		check(a->u.ping.time_ms == b->u.ping.time_ms);
		break;
	case FRAME_CLOSE:
		check(a->u.close.code == b->u.close.code &&
		      !strcmp(a->u.close.reason, b->u.close.reason));
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	frame f, again;
	msgpack_sbuffer sb;
	ferry_err err;

	err = frame_decode(&f, data, size);
	check(err == FERRY_OK || err == FERRY_E_PROTOCOL ||
	      err == FERRY_E_VERSION || err == FERRY_E_LIMIT ||
	      err == FERRY_E_NOMEM);
	if (err != FERRY_OK)
		return 0;
	fuzz_payload(&f);

	msgpack_sbuffer_init(&sb);
	check(reencode(&sb, &f) == FERRY_OK);
	check(frame_decode(&again, sb.data, sb.size) == FERRY_OK);
	check_same(&f, &again);
	frame_clear(&again);
	msgpack_sbuffer_destroy(&sb);
	frame_clear(&f);
	return 0;
}
