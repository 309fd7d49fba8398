/*
 * secure_test.c — the ferry.v1 handshake cryptography and encrypted channel
 * (net/secure.c, docs/protocol.md §2–3).
 *
 * A simulated client and server run the handshake on real HELLO frames;
 * both must derive matching keys, every AUTH that is not exactly right must
 * fail, a man in the middle who swaps key-exchange keys must be caught, and
 * the channel must refuse replayed, reordered, altered and truncated
 * frames without losing its place. The derivations are also recomputed here
 * straight from the spec's formulas, so a second implementation that
 * follows protocol.md interoperates.
 */
#include <string.h>

#include <msgpack.h>
#include <sodium.h>

#include "frame.h"
#include "secure.h"
#include "testing.h"

/* One side of a connection. */
typedef struct side {
	uint8_t id_pk[crypto_sign_PUBLICKEYBYTES];
	uint8_t id_sk[crypto_sign_SECRETKEYBYTES];
	secure_hello hello;
	msgpack_sbuffer hello_bytes;
} side;

/* An AUTH signature made with a secret key the test holds (the node signs
 * through ferry_node_sign, which never hands its key out). */
static void secure_auth_sign(uint8_t sig[64], const uint8_t *identity_sk,
			     uint8_t role, const uint8_t t[32])
{
	uint8_t msg[SECURE_AUTH_MESSAGE_BYTES];
	secure_auth_message(msg, role, t);
	crypto_sign_detached(sig, NULL, msg, sizeof(msg), identity_sk);
}

static void side_new(side *s)
{
	crypto_sign_keypair(s->id_pk, s->id_sk);
	secure_hello_new(&s->hello);
	msgpack_sbuffer_init(&s->hello_bytes);
	CHECK_OK(frame_encode_hello(&s->hello_bytes, s->id_pk, s->hello.kx_pk,
				    s->hello.nonce, 1048576 + 65536));
}

static void side_free(side *s)
{
	secure_hello_wipe(&s->hello);
	msgpack_sbuffer_destroy(&s->hello_bytes);
}

static void transcript_of(uint8_t t[32], const msgpack_sbuffer *hc,
			  const msgpack_sbuffer *hs)
{
	secure_transcript(t, hc->data, hc->size, hs->data, hs->size);
}

/* The handshake as the spec runs it, with each side working only from the
 * bytes it received. */
static void handshake(side *c, side *s, secure_channel *cch,
		      secure_channel *sch)
{
	uint8_t tc[32], ts[32], sig_s[64], sig_c[64];
	frame hc, hs;

	/* Server receives HELLO(c), answers HELLO(s) and AUTH(s). */
	CHECK_OK(frame_decode(&hc, c->hello_bytes.data, c->hello_bytes.size));
	transcript_of(ts, &c->hello_bytes, &s->hello_bytes);
	secure_auth_sign(sig_s, s->id_sk, SECURE_ROLE_SERVER, ts);

	/* Client receives HELLO(s) and AUTH(s), verifies, sends AUTH(c). */
	CHECK_OK(frame_decode(&hs, s->hello_bytes.data, s->hello_bytes.size));
	transcript_of(tc, &c->hello_bytes, &s->hello_bytes);
	CHECK(!memcmp(tc, ts, 32));
	CHECK(secure_auth_verify(sig_s, hs.u.hello.identity, SECURE_ROLE_SERVER,
				 tc));
	secure_auth_sign(sig_c, c->id_sk, SECURE_ROLE_CLIENT, tc);

	/* Server verifies AUTH(c). */
	CHECK(secure_auth_verify(sig_c, hc.u.hello.identity, SECURE_ROLE_CLIENT,
				 ts));

	CHECK_OK(secure_channel_init(cch, 1, &c->hello, hs.u.hello.kx, tc));
	CHECK_OK(secure_channel_init(sch, 0, &s->hello, hc.u.hello.kx, ts));
	frame_clear(&hc);
	frame_clear(&hs);
}

/* Seal on `from`, open on `to`, check the plaintext. */
static void send_ok(secure_channel *from, secure_channel *to, const char *msg)
{
	size_t len = strlen(msg);
	uint8_t cipher[256], plain[256];
	CHECK(len + SECURE_TAG_BYTES <= sizeof(cipher));
	CHECK_OK(secure_seal(from, cipher, msg, len));
	CHECK_OK(secure_open(to, plain, cipher, len + SECURE_TAG_BYTES));
	CHECK(!memcmp(plain, msg, len));
}

static void test_handshake(void)
{
	side c, s;
	secure_channel cch, sch;

	side_new(&c);
	side_new(&s);
	handshake(&c, &s, &cch, &sch);

	/* client tx = server rx and the other way round, and the two
	 * directions use different keys. */
	CHECK(!memcmp(cch.tx_key, sch.rx_key, 32));
	CHECK(!memcmp(cch.rx_key, sch.tx_key, 32));
	CHECK(memcmp(cch.tx_key, cch.rx_key, 32) != 0);
	CHECK_EQ_U64(cch.tx_counter, 0);
	CHECK_EQ_U64(cch.rx_counter, 0);

	send_ok(&cch, &sch, "[3, vector]");
	send_ok(&sch, &cch, "[3, vector back]");
	for (int i = 0; i < 100; i++) {
		send_ok(&cch, &sch, "batch");
		send_ok(&sch, &cch, "ack");
	}
	CHECK_EQ_U64(cch.tx_counter, 101);
	CHECK_EQ_U64(sch.rx_counter, 101);

	/* An empty plaintext is a valid frame too. */
	{
		uint8_t cipher[SECURE_TAG_BYTES], plain[1];
		CHECK_OK(secure_seal(&cch, cipher, "", 0));
		CHECK_OK(secure_open(&sch, plain, cipher, sizeof(cipher)));
	}

	secure_channel_wipe(&cch);
	{
		static const secure_channel zero;
		CHECK(!memcmp(&cch, &zero, sizeof(zero)));
	}
	secure_channel_wipe(&sch);
	side_free(&c);
	side_free(&s);
}

/* The formulas of protocol.md §2–3, recomputed with libsodium directly. */
static void test_spec_derivations(void)
{
	side c, s;
	secure_channel cch, sch;
	uint8_t t[32], want[32], buf[1024], kx_rx[32], kx_tx[32];
	size_t n = 0;

	side_new(&c);
	side_new(&s);
	handshake(&c, &s, &cch, &sch);

	/* T = BLAKE2b-256("ferry.v1 transcript" || be32 len || HC || be32
	 * len || HS) */
	memcpy(buf, "ferry.v1 transcript", 19);
	n = 19;
	buf[n++] = 0;
	buf[n++] = 0;
	buf[n++] = (uint8_t)(c.hello_bytes.size >> 8);
	buf[n++] = (uint8_t)c.hello_bytes.size;
	memcpy(buf + n, c.hello_bytes.data, c.hello_bytes.size);
	n += c.hello_bytes.size;
	buf[n++] = 0;
	buf[n++] = 0;
	buf[n++] = (uint8_t)(s.hello_bytes.size >> 8);
	buf[n++] = (uint8_t)s.hello_bytes.size;
	memcpy(buf + n, s.hello_bytes.data, s.hello_bytes.size);
	n += s.hello_bytes.size;
	crypto_generichash(want, 32, buf, n, NULL, 0);
	transcript_of(t, &c.hello_bytes, &s.hello_bytes);
	CHECK(!memcmp(t, want, 32));

	/* AUTH: Ed25519 over "ferry.v1 auth" || role || T. */
	{
		uint8_t sig[64], msg[13 + 1 + 32];
		memcpy(msg, "ferry.v1 auth", 13);
		msg[13] = 'S';
		memcpy(msg + 14, t, 32);
		secure_auth_sign(sig, s.id_sk, SECURE_ROLE_SERVER, t);
		CHECK(crypto_sign_verify_detached(sig, msg, sizeof(msg),
						  s.id_pk) == 0);
	}

	/* Client keys: crypto_kx client session keys, each bound to T with
	 * keyed BLAKE2b-256 over "ferry.v1 key" || T. */
	CHECK(crypto_kx_client_session_keys(kx_rx, kx_tx, c.hello.kx_pk,
					    c.hello.kx_sk, s.hello.kx_pk) == 0);
	memcpy(buf, "ferry.v1 key", 12);
	memcpy(buf + 12, t, 32);
	crypto_generichash(want, 32, buf, 12 + 32, kx_tx, 32);
	CHECK(!memcmp(cch.tx_key, want, 32));
	crypto_generichash(want, 32, buf, 12 + 32, kx_rx, 32);
	CHECK(!memcmp(cch.rx_key, want, 32));
	/* Not the raw kx keys. */
	CHECK(memcmp(cch.tx_key, kx_tx, 32) != 0);

	/* Frames: ChaCha20-Poly1305-IETF, ad empty, nonce 4 zero bytes ||
	 * be64 counter. Check at a counter with bytes in several places. */
	{
		const uint64_t counter = UINT64_C(0x0102030405060708);
		uint8_t nonce[12] = {0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8};
		uint8_t mine[5 + SECURE_TAG_BYTES],
			theirs[5 + SECURE_TAG_BYTES];
		unsigned long long clen = 0;
		cch.tx_counter = counter;
		CHECK_OK(secure_seal(&cch, mine, "hello", 5));
		crypto_aead_chacha20poly1305_ietf_encrypt(
			theirs, &clen, (const uint8_t *)"hello", 5, NULL, 0,
			NULL, nonce, cch.tx_key);
		CHECK_EQ_U64(clen, sizeof(theirs));
		CHECK(!memcmp(mine, theirs, sizeof(mine)));
		CHECK_EQ_U64(cch.tx_counter, counter + 1);
	}

	secure_channel_wipe(&cch);
	secure_channel_wipe(&sch);
	side_free(&c);
	side_free(&s);
}

static void test_auth_failures(void)
{
	side c, s, other;
	uint8_t t[32], t2[32], sig[64];

	side_new(&c);
	side_new(&s);
	side_new(&other);
	transcript_of(t, &c.hello_bytes, &s.hello_bytes);
	secure_auth_sign(sig, s.id_sk, SECURE_ROLE_SERVER, t);
	CHECK(secure_auth_verify(sig, s.id_pk, SECURE_ROLE_SERVER, t));

	/* Wrong role: the server's own AUTH reflected back as a client's. */
	CHECK(!secure_auth_verify(sig, s.id_pk, SECURE_ROLE_CLIENT, t));
	/* Wrong key. */
	CHECK(!secure_auth_verify(sig, c.id_pk, SECURE_ROLE_SERVER, t));
	CHECK(!secure_auth_verify(sig, other.id_pk, SECURE_ROLE_SERVER, t));
	/* Another transcript: a different client HELLO, or the HELLOs
	 * swapped. */
	transcript_of(t2, &other.hello_bytes, &s.hello_bytes);
	CHECK(!secure_auth_verify(sig, s.id_pk, SECURE_ROLE_SERVER, t2));
	transcript_of(t2, &s.hello_bytes, &c.hello_bytes);
	CHECK(!secure_auth_verify(sig, s.id_pk, SECURE_ROLE_SERVER, t2));
	/* Any flipped bit in the signature. */
	for (size_t i = 0; i < 64 * 8; i += 7) {
		sig[i / 8] ^= (uint8_t)(1u << (i % 8));
		CHECK(!secure_auth_verify(sig, s.id_pk, SECURE_ROLE_SERVER, t));
		sig[i / 8] ^= (uint8_t)(1u << (i % 8));
	}
	CHECK(secure_auth_verify(sig, s.id_pk, SECURE_ROLE_SERVER, t));

	side_free(&c);
	side_free(&s);
	side_free(&other);
}

/* Mallory sits between client and server and replaces each side's kx key
 * in its HELLO with her own, hoping to hold one channel with each. She
 * cannot re-sign: each side's AUTH covers the transcript it saw. */
static void test_mitm(void)
{
	side c, s, m;
	msgpack_sbuffer hc_forged, hs_forged;
	uint8_t t_client[32], t_server[32], sig_s[64], sig_m[64];
	secure_channel cch, sch;

	side_new(&c);
	side_new(&s);
	side_new(&m);
	msgpack_sbuffer_init(&hc_forged);
	msgpack_sbuffer_init(&hs_forged);
	/* The identities stay (the victims check them); the kx keys are
	 * Mallory's. */
	CHECK_OK(frame_encode_hello(&hc_forged, c.id_pk, m.hello.kx_pk,
				    c.hello.nonce, 1048576 + 65536));
	CHECK_OK(frame_encode_hello(&hs_forged, s.id_pk, m.hello.kx_pk,
				    s.hello.nonce, 1048576 + 65536));

	/* The server saw (forged HC, real HS); the client (real HC, forged
	 * HS). */
	transcript_of(t_server, &hc_forged, &s.hello_bytes);
	transcript_of(t_client, &c.hello_bytes, &hs_forged);
	CHECK(memcmp(t_server, t_client, 32) != 0);

	/* The server's genuine AUTH, relayed, fails at the client. */
	secure_auth_sign(sig_s, s.id_sk, SECURE_ROLE_SERVER, t_server);
	CHECK(!secure_auth_verify(sig_s, s.id_pk, SECURE_ROLE_SERVER,
				  t_client));
	/* Mallory signing the client's transcript herself fails too. */
	secure_auth_sign(sig_m, m.id_sk, SECURE_ROLE_SERVER, t_client);
	CHECK(!secure_auth_verify(sig_m, s.id_pk, SECURE_ROLE_SERVER,
				  t_client));

	/* And even ignoring AUTH, the keys she agreed with each side are
	 * not the keys the two sides would share. */
	CHECK_OK(secure_channel_init(&cch, 1, &c.hello, m.hello.kx_pk,
				     t_client));
	CHECK_OK(secure_channel_init(&sch, 0, &s.hello, m.hello.kx_pk,
				     t_server));
	CHECK(memcmp(cch.tx_key, sch.rx_key, 32) != 0);

	secure_channel_wipe(&cch);
	secure_channel_wipe(&sch);
	msgpack_sbuffer_destroy(&hc_forged);
	msgpack_sbuffer_destroy(&hs_forged);
	side_free(&c);
	side_free(&s);
	side_free(&m);
}

static void test_channel_attacks(void)
{
	side c, s;
	secure_channel cch, sch;
	uint8_t a[4 + SECURE_TAG_BYTES], b[4 + SECURE_TAG_BYTES];
	uint8_t plain[64];

	side_new(&c);
	side_new(&s);
	handshake(&c, &s, &cch, &sch);

	CHECK_OK(secure_seal(&cch, a, "aaaa", 4));
	CHECK_OK(secure_seal(&cch, b, "bbbb", 4));

	/* Reordered: b arrives first. The counter stays, so a still opens. */
	CHECK_ERR(secure_open(&sch, plain, b, sizeof(b)), FERRY_E_DECRYPT);
	CHECK_EQ_U64(sch.rx_counter, 0);
	CHECK_OK(secure_open(&sch, plain, a, sizeof(a)));
	CHECK(!memcmp(plain, "aaaa", 4));

	/* Replayed: a again. */
	CHECK_ERR(secure_open(&sch, plain, a, sizeof(a)), FERRY_E_DECRYPT);
	CHECK_EQ_U64(sch.rx_counter, 1);

	/* Altered: every byte flipped in turn, tag included. */
	for (size_t i = 0; i < sizeof(b); i++) {
		b[i] ^= 0x01;
		CHECK_ERR(secure_open(&sch, plain, b, sizeof(b)),
			  FERRY_E_DECRYPT);
		b[i] ^= 0x01;
	}
	/* Truncated: below the tag, and by one byte. */
	for (size_t n = 0; n < SECURE_TAG_BYTES; n++)
		CHECK_ERR(secure_open(&sch, plain, b, n), FERRY_E_DECRYPT);
	CHECK_ERR(secure_open(&sch, plain, b, sizeof(b) - 1), FERRY_E_DECRYPT);
	/* Sent in the wrong direction: the server's rx key is not its tx
	 * key, so a frame reflected back to its sender fails. */
	{
		uint8_t r[4 + SECURE_TAG_BYTES];
		/* Even under the counter the receiver expects. */
		sch.tx_counter = sch.rx_counter;
		CHECK_OK(secure_seal(&sch, r, "rrrr", 4));
		sch.tx_counter = 0;
		CHECK_ERR(secure_open(&sch, plain, r, sizeof(r)),
			  FERRY_E_DECRYPT);
	}

	/* After all that, the genuine next frame still opens. */
	CHECK_EQ_U64(sch.rx_counter, 1);
	CHECK_OK(secure_open(&sch, plain, b, sizeof(b)));
	CHECK(!memcmp(plain, "bbbb", 4));
	CHECK_EQ_U64(sch.rx_counter, 2);

	secure_channel_wipe(&cch);
	secure_channel_wipe(&sch);
	side_free(&c);
	side_free(&s);
}

/* The counter never wraps: the last value is refused, and a refused seal
 * does not advance it. */
static void test_counter_wrap(void)
{
	side c, s;
	secure_channel cch, sch;
	uint8_t out[1 + SECURE_TAG_BYTES], plain[1];

	side_new(&c);
	side_new(&s);
	handshake(&c, &s, &cch, &sch);
	cch.tx_counter = UINT64_MAX - 1;
	sch.rx_counter = UINT64_MAX - 1;
	CHECK_OK(secure_seal(&cch, out, "x", 1));
	CHECK_OK(secure_open(&sch, plain, out, sizeof(out)));
	CHECK_EQ_U64(cch.tx_counter, UINT64_MAX);
	CHECK_ERR(secure_seal(&cch, out, "x", 1), FERRY_E_PROTOCOL);
	CHECK_EQ_U64(cch.tx_counter, UINT64_MAX);
	CHECK_ERR(secure_open(&sch, plain, out, sizeof(out)), FERRY_E_DECRYPT);
	CHECK_EQ_U64(sch.rx_counter, UINT64_MAX);

	secure_channel_wipe(&cch);
	secure_channel_wipe(&sch);
	side_free(&c);
	side_free(&s);
}

/* A peer kx key of low order (all zeros, or the point of order 1) would
 * make the shared secret predictable: the handshake fails. */
static void test_low_order_kx(void)
{
	static const uint8_t zero[32];
	static const uint8_t one[32] = {1};
	side c;
	secure_channel ch;
	uint8_t t[32];

	side_new(&c);
	memset(t, 0x5a, sizeof(t));
	CHECK_ERR(secure_channel_init(&ch, 1, &c.hello, zero, t), FERRY_E_AUTH);
	CHECK_ERR(secure_channel_init(&ch, 0, &c.hello, zero, t), FERRY_E_AUTH);
	CHECK_ERR(secure_channel_init(&ch, 1, &c.hello, one, t), FERRY_E_AUTH);
	CHECK_ERR(secure_channel_init(&ch, 0, &c.hello, one, t), FERRY_E_AUTH);
	side_free(&c);
}

static void test_hello_secrets(void)
{
	secure_hello a, b;
	static const secure_hello zero;
	uint8_t derived[crypto_scalarmult_BYTES];

	secure_hello_new(&a);
	secure_hello_new(&b);
	/* Fresh every time, and the pair belongs together. */
	CHECK(memcmp(a.kx_pk, b.kx_pk, sizeof(a.kx_pk)) != 0);
	CHECK(memcmp(a.nonce, b.nonce, sizeof(a.nonce)) != 0);
	CHECK(crypto_scalarmult_base(derived, a.kx_sk) == 0);
	CHECK(!memcmp(derived, a.kx_pk, sizeof(derived)));
	secure_hello_wipe(&a);
	secure_hello_wipe(&b);
	CHECK(!memcmp(&a, &zero, sizeof(zero)));
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	CHECK(sodium_init() >= 0);
	test_hello_secrets();
	test_handshake();
	test_spec_derivations();
	test_auth_failures();
	test_mitm();
	test_channel_attacks();
	test_counter_wrap();
	test_low_order_kx();
	printf("secure_test: ok\n");
	return 0;
}
