/*
 * secure.c — the handshake's cryptography and the encrypted channel
 * (secure.h, docs/protocol.md §2–3). Everything here is libsodium; this
 * file only fixes the messages, labels and nonces the protocol names.
 */
#include "secure.h"

#include <assert.h>
#include <string.h>

#define TRANSCRIPT_LABEL "ferry.v1 transcript"
#define AUTH_LABEL "ferry.v1 auth"
#define KEY_LABEL "ferry.v1 key"
#define LABEL_LEN(l) (sizeof(l) - 1) /* labels are sent without their NUL */

/* libsodium must be initialised before use; sodium_init() is idempotent and
 * thread-safe but takes a lock, so the per-frame paths (seal, open) rely on
 * secure_channel_init() having called it. A failure here means the process
 * has no usable randomness: nothing secure can be done. */
static void sodium_ready(void)
{
	if (sodium_init() < 0)
		sodium_misuse();
}

void secure_hello_new(secure_hello *h)
{
	sodium_ready();
	crypto_kx_keypair(h->kx_pk, h->kx_sk);
	randombytes_buf(h->nonce, sizeof(h->nonce));
}

void secure_hello_wipe(secure_hello *h)
{
	sodium_memzero(h, sizeof(*h));
}

static void put_be32(uint8_t dst[4], uint32_t v)
{
	dst[0] = (uint8_t)(v >> 24);
	dst[1] = (uint8_t)(v >> 16);
	dst[2] = (uint8_t)(v >> 8);
	dst[3] = (uint8_t)v;
}

void secure_transcript(uint8_t t[32], const void *client_hello,
		       size_t client_len, const void *server_hello,
		       size_t server_len)
{
	crypto_generichash_state st;
	uint8_t len[4];

	/* A HELLO is ~120 bytes and bounded by max_frame; a length that does
	 * not fit be32 is a caller bug. */
	assert(client_len <= UINT32_MAX && server_len <= UINT32_MAX);
	sodium_ready();
	crypto_generichash_init(&st, NULL, 0, 32);
	crypto_generichash_update(&st, (const uint8_t *)TRANSCRIPT_LABEL,
				  LABEL_LEN(TRANSCRIPT_LABEL));
	/* Length prefixes make the split between the two HELLOs unambiguous. */
	put_be32(len, (uint32_t)client_len);
	crypto_generichash_update(&st, len, sizeof(len));
	crypto_generichash_update(&st, client_hello, client_len);
	put_be32(len, (uint32_t)server_len);
	crypto_generichash_update(&st, len, sizeof(len));
	crypto_generichash_update(&st, server_hello, server_len);
	crypto_generichash_final(&st, t, 32);
}

/* "ferry.v1 auth" || role || T: the role byte keeps a peer from reflecting
 * our own AUTH back at us (both sides sign the same T). */
#define AUTH_MSG_LEN (LABEL_LEN(AUTH_LABEL) + 1 + 32)

void secure_auth_message(uint8_t msg[SECURE_AUTH_MESSAGE_BYTES], uint8_t role,
			 const uint8_t t[32])
{
	memcpy(msg, AUTH_LABEL, LABEL_LEN(AUTH_LABEL));
	msg[LABEL_LEN(AUTH_LABEL)] = role;
	memcpy(msg + LABEL_LEN(AUTH_LABEL) + 1, t, 32);
}

int secure_auth_verify(const uint8_t sig[64], const uint8_t identity[32],
		       uint8_t role, const uint8_t t[32])
{
	uint8_t msg[AUTH_MSG_LEN];
	sodium_ready();
	secure_auth_message(msg, role, t);
	return crypto_sign_verify_detached(sig, msg, sizeof(msg), identity) ==
	       0;
}

/* key = BLAKE2b-256(key = kx key, "ferry.v1 key" || T): the channel keys
 * depend on the whole transcript, not just the X25519 shares, so a key
 * agreed under a tampered HELLO never matches the honest side's. */
static void bind_key(uint8_t out[32], const uint8_t kx_key[32],
		     const uint8_t t[32])
{
	crypto_generichash_state st;
	crypto_generichash_init(&st, kx_key, 32, 32);
	crypto_generichash_update(&st, (const uint8_t *)KEY_LABEL,
				  LABEL_LEN(KEY_LABEL));
	crypto_generichash_update(&st, t, 32);
	crypto_generichash_final(&st, out, 32);
	sodium_memzero(&st, sizeof(st));
}

ferry_err secure_channel_init(secure_channel *ch, int is_client,
			      const secure_hello *mine,
			      const uint8_t peer_kx[32], const uint8_t t[32])
{
	uint8_t rx[crypto_kx_SESSIONKEYBYTES], tx[crypto_kx_SESSIONKEYBYTES];
	int rc;

	sodium_ready();
	memset(ch, 0, sizeof(*ch));
	/* crypto_kx refuses a low-order peer key (the shared secret would be
	 * predictable), which is a peer failing the handshake. */
	if (is_client)
		rc = crypto_kx_client_session_keys(rx, tx, mine->kx_pk,
						   mine->kx_sk, peer_kx);
	else
		rc = crypto_kx_server_session_keys(rx, tx, mine->kx_pk,
						   mine->kx_sk, peer_kx);
	if (rc != 0) {
		sodium_memzero(rx, sizeof(rx));
		sodium_memzero(tx, sizeof(tx));
		return FERRY_E_AUTH;
	}
	bind_key(ch->rx_key, rx, t);
	bind_key(ch->tx_key, tx, t);
	sodium_memzero(rx, sizeof(rx));
	sodium_memzero(tx, sizeof(tx));
	return FERRY_OK;
}

void secure_channel_wipe(secure_channel *ch)
{
	sodium_memzero(ch, sizeof(*ch));
}

/* 4 zero bytes || be64 counter. The counter is implicit: both sides count
 * frames, so a replayed, dropped or reordered frame fails to open. */
static void
channel_nonce(uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES],
	      uint64_t counter)
{
	memset(nonce, 0, 4);
	for (int i = 11; i >= 4; i--) {
		nonce[i] = (uint8_t)counter;
		counter >>= 8;
	}
}

ferry_err secure_seal(secure_channel *ch, uint8_t *out, const void *plain,
		      size_t len)
{
	uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
	unsigned long long clen = 0;

	/* UINT64_MAX is never used, so the counter can never wrap back to a
	 * nonce already used under this key. */
	if (ch->tx_counter == UINT64_MAX)
		return FERRY_E_PROTOCOL;
	/* libsodium's bound (~256 GiB) is far above any max_frame. */
	if (len > crypto_aead_chacha20poly1305_ietf_MESSAGEBYTES_MAX)
		return FERRY_E_INVALID;
	channel_nonce(nonce, ch->tx_counter);
	crypto_aead_chacha20poly1305_ietf_encrypt(out, &clen, plain, len, NULL,
						  0, NULL, nonce, ch->tx_key);
	assert(clen == len + SECURE_TAG_BYTES);
	ch->tx_counter++;
	return FERRY_OK;
}

ferry_err secure_open(secure_channel *ch, uint8_t *out, const void *cipher,
		      size_t len)
{
	uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
	unsigned long long mlen = 0;

	/* A peer honouring secure_seal() never uses UINT64_MAX either. */
	if (len < SECURE_TAG_BYTES || ch->rx_counter == UINT64_MAX)
		return FERRY_E_DECRYPT;
	channel_nonce(nonce, ch->rx_counter);
	if (crypto_aead_chacha20poly1305_ietf_decrypt(out, &mlen, NULL, cipher,
						      len, NULL, 0, nonce,
						      ch->rx_key) != 0)
		return FERRY_E_DECRYPT;
	assert(mlen == len - SECURE_TAG_BYTES);
	ch->rx_counter++;
	return FERRY_OK;
}
