/*
 * secure.h — the handshake's cryptography and the encrypted channel
 * (docs/protocol.md §2–3). Pure functions over libsodium; no I/O.
 */
#ifndef FERRY_SECURE_H
#define FERRY_SECURE_H

#include <sodium.h>

#include "ferry.h"

#define SECURE_ROLE_CLIENT 0x43 /* 'C' */
#define SECURE_ROLE_SERVER 0x53 /* 'S' */
#define SECURE_TAG_BYTES crypto_aead_chacha20poly1305_ietf_ABYTES

/* This side's per-connection secrets for HELLO. */
typedef struct secure_hello {
	uint8_t kx_pk[crypto_kx_PUBLICKEYBYTES];
	uint8_t kx_sk[crypto_kx_SECRETKEYBYTES];
	uint8_t nonce[32];
} secure_hello;

/* Fresh X25519 key pair and nonce. */
void secure_hello_new(secure_hello *h);

/* Wipe the secrets. */
void secure_hello_wipe(secure_hello *h);

/* T = BLAKE2b-256("ferry.v1 transcript" || be32 len || client HELLO ||
 * be32 len || server HELLO). */
void secure_transcript(uint8_t t[32], const void *client_hello,
		       size_t client_len, const void *server_hello,
		       size_t server_len);

#define SECURE_AUTH_CONTEXT "ferry.v1 auth"
#define SECURE_AUTH_MESSAGE_BYTES (sizeof(SECURE_AUTH_CONTEXT) - 1 + 1 + 32)

/* The message an AUTH signs: "ferry.v1 auth" || role || T. The node signs
 * it with ferry_node_sign(), which keeps its secret key to itself. */
void secure_auth_message(uint8_t out[SECURE_AUTH_MESSAGE_BYTES], uint8_t role,
			 const uint8_t t[32]);

/* 1 if `sig` is `identity`'s AUTH signature for `role` over T. */
int secure_auth_verify(const uint8_t sig[64], const uint8_t identity[32],
		       uint8_t role, const uint8_t t[32]);

/* One direction-pair of keys with their implicit counters. */
typedef struct secure_channel {
	uint8_t tx_key[32], rx_key[32];
	uint64_t tx_counter, rx_counter;
} secure_channel;

/* Derive the session keys (crypto_kx, then each bound to T).
 * Errors: FERRY_E_AUTH if the peer's kx key is unusable (low order). */
ferry_err secure_channel_init(secure_channel *ch, int is_client,
			      const secure_hello *mine,
			      const uint8_t peer_kx[32], const uint8_t t[32]);

/* Wipe the keys. */
void secure_channel_wipe(secure_channel *ch);

/* Encrypt `plain` with the next send counter into `out` (which must have
 * len + SECURE_TAG_BYTES bytes). Errors: FERRY_E_PROTOCOL if the counter
 * would wrap. */
ferry_err secure_seal(secure_channel *ch, uint8_t *out, const void *plain,
		      size_t len);

/* Decrypt `cipher` (len >= SECURE_TAG_BYTES) with the next receive counter
 * into `out` (len - SECURE_TAG_BYTES bytes). The counter advances only on
 * success. Errors: FERRY_E_DECRYPT. */
ferry_err secure_open(secure_channel *ch, uint8_t *out, const void *cipher,
		      size_t len);

#endif
