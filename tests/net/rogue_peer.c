/*
 * rogue_peer.c — a misbehaving ferry.v1 peer for the integration tests
 * (tests/net/rogue_test.sh). It connects to a running `ferry serve` and
 * breaks the protocol in one chosen way, then reports what the server did
 * (the close code and reason it received) and exits 0 if the server
 * behaved as docs/protocol.md requires.
 *
 * Built on the transport contract (net/transport.h), the frame codec
 * (net/frame.h), the handshake crypto (net/secure.h) and the engine API:
 * the rogue opens its own node directory for an identity and signs its
 * AUTH with ferry_node_sign(). The `text` mode alone talks raw WebSocket
 * over a TCP socket, because the transport only sends binary messages.
 *
 * usage: rogue_peer MODE URL DIR [SECONDS]
 *   garbage   random bytes instead of HELLO            -> close 4002
 *   text      a text message instead of HELLO (raw)    -> close 4002
 *   oversize  after the handshake, a message over the server's max_frame
 *                                                      -> close 4006
 *   forged    after the handshake, a BATCH exported from DIR's node whose
 *             last segment's signature is altered      -> close 4005
 *   replay    after the handshake, the same encrypted PING twice
 *                                                      -> close 4004
 *   slow      after the handshake, an empty VECTOR (send me everything),
 *             then read and answer PINGs but never ACK for SECONDS: the
 *             server must hold at most 4 batches in flight and stay
 *             connected; then ACK and see it continue  -> no close
 *   stall     as slow, but stop reading the socket altogether for SECONDS
 *             (TCP back-pressure), then read what came -> no close
 * DIR is the rogue's node directory (created if missing; for forged it
 * must hold some changes the server does not have).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <msgpack.h>
#include <netdb.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "ferry.h"
#include "frame.h"
#include "secure.h"
#include "transport.h"

#define WINDOW 4
#define ROGUE_MAX_FRAME (1024 * 1024 + 65536)

typedef struct qmsg {
	struct qmsg *next;
	size_t len;
	uint8_t data[];
} qmsg;

typedef enum phase {
	PH_DIALING,
	PH_HELLO, /* waiting for the server's HELLO */
	PH_AUTH,  /* waiting for the server's AUTH */
	PH_OPEN,
	PH_DONE,
} phase;

static struct rogue {
	const char *mode;
	ferry_node *node;
	transport *t;
	transport_conn *conn;
	phase ph;
	secure_hello h;
	secure_channel ch;
	uint8_t t_hash[32];
	uint8_t *my_hello;
	size_t my_hello_len;
	uint8_t server_id[32];
	uint64_t server_max_frame;
	qmsg *head, *tail, *current;
	/* What the server did. */
	int closed, dial_failed;
	unsigned ws_code;
	char ws_reason[256];
	int got_close_frame;
	uint64_t close_frame_code;
	char close_frame_reason[FRAME_MAX_REASON_BYTES + 1];
	unsigned vectors, batches, pendings, pings, acks;
	uint64_t last_pending;
	size_t largest_batch;
	int read_paused;
} R;

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("rogue %s: ", R.mode);
	vprintf(fmt, ap);
	printf("\n");
	fflush(stdout);
	va_end(ap);
}

static void die(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("rogue %s: error: ", R.mode);
	vprintf(fmt, ap);
	printf("\n");
	fflush(stdout);
	va_end(ap);
	exit(2);
}

/* ------------------------------------------------------------------------ */
/* Sending                                                                  */
/* ------------------------------------------------------------------------ */

static void queue_raw(const void *data, size_t len)
{
	qmsg *m = malloc(sizeof(*m) + len);
	if (!m)
		die("out of memory");
	m->next = NULL;
	m->len = len;
	memcpy(m->data, data, len);
	if (R.tail)
		R.tail->next = m;
	else
		R.head = m;
	R.tail = m;
	if (R.conn)
		transport_want_write(R.conn);
}

/* Seal the frame in `sb` (emptied) and queue it; returns the sealed
 * message's length. A copy of the ciphertext goes to `keep` if not NULL. */
static size_t queue_sealed(msgpack_sbuffer *sb, uint8_t **keep)
{
	size_t len = sb->size + SECURE_TAG_BYTES;
	uint8_t *c = malloc(len);
	if (!c)
		die("out of memory");
	if (secure_seal(&R.ch, c, sb->data, sb->size))
		die("cannot seal");
	queue_raw(c, len);
	sb->size = 0;
	if (keep)
		*keep = c;
	else
		free(c);
	return len;
}

static void send_vector_empty(void)
{
	ferry_vector *v = NULL;
	msgpack_sbuffer sb;
	void *buf = NULL;
	size_t len = 0;
	msgpack_sbuffer_init(&sb);
	if (ferry_vector_new(&v) || ferry_vector_encode(&buf, &len, v) ||
	    frame_encode_vector(&sb, buf, len))
		die("cannot encode a VECTOR");
	queue_sealed(&sb, NULL);
	free(buf);
	ferry_vector_free(v);
	msgpack_sbuffer_destroy(&sb);
}

static void send_simple(frame_type type, uint64_t value)
{
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	if (type == FRAME_ACK)
		frame_encode_ack(&sb, value, FRAME_ACK_APPLIED, 0, 0, NULL, 0);
	else
		frame_encode_ping(&sb, type, value);
	queue_sealed(&sb, NULL);
	msgpack_sbuffer_destroy(&sb);
}

/* ------------------------------------------------------------------------ */
/* The misbehaviour, once the handshake is done                             */
/* ------------------------------------------------------------------------ */

static void misbehave(void)
{
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	if (!strcmp(R.mode, "oversize")) {
		size_t len = (size_t)R.server_max_frame + 1;
		uint8_t *junk = malloc(len);
		if (!junk)
			die("out of memory");
		randombytes_buf(junk, len);
		say("handshake done; sending a %zu-byte message (server's "
		    "max_frame %llu)",
		    len, (unsigned long long)R.server_max_frame);
		queue_raw(junk, len);
		free(junk);
	} else if (!strcmp(R.mode, "forged")) {
		ferry_export *exp = NULL;
		void *batch = NULL;
		size_t len = 0;
		uint64_t changes = 0;
		ferry_err err = ferry_export_begin(&exp, R.node, NULL, NULL);
		if (!err)
			err = ferry_export_next(exp, &batch, &len, &changes);
		if (err)
			die("cannot export from the rogue's node: %s: %s",
			    ferry_strerror(err), ferry_node_errmsg(R.node));
		ferry_export_free(exp);
		/* The batch ends with its last segment's 64-byte signature. */
		((uint8_t *)batch)[len - 1] ^= 0x01;
		if (frame_encode_batch(&sb, 1, batch, len))
			die("cannot encode the BATCH");
		queue_sealed(&sb, NULL);
		say("handshake done; sent BATCH 1 (%llu changes, %zu bytes) "
		    "with its last signature altered",
		    (unsigned long long)changes, len);
		free(batch);
	} else if (!strcmp(R.mode, "replay")) {
		uint8_t *copy = NULL;
		size_t len;
		frame_encode_ping(&sb, FRAME_PING, 12345);
		len = queue_sealed(&sb, &copy);
		queue_raw(copy, len);
		free(copy);
		say("handshake done; sent an encrypted PING twice");
	} else if (!strcmp(R.mode, "slow") || !strcmp(R.mode, "stall")) {
		send_vector_empty();
		say("handshake done; sent an empty VECTOR: send me everything");
	}
	msgpack_sbuffer_destroy(&sb);
}

/* ------------------------------------------------------------------------ */
/* Receiving                                                                */
/* ------------------------------------------------------------------------ */

static void on_hello(const uint8_t *msg, size_t len)
{
	frame f;
	uint8_t kx[32];
	if (frame_decode(&f, msg, len) || f.type != FRAME_HELLO)
		die("the server's first message is not a HELLO");
	memcpy(R.server_id, f.u.hello.identity, 32);
	memcpy(kx, f.u.hello.kx, 32);
	R.server_max_frame = f.u.hello.max_frame;
	frame_clear(&f);
	secure_transcript(R.t_hash, R.my_hello, R.my_hello_len, msg, len);
	if (secure_channel_init(&R.ch, 1, &R.h, kx, R.t_hash))
		die("unusable key exchange key from the server");
	R.ph = PH_AUTH;
}

static void on_auth(const uint8_t *msg, size_t len)
{
	uint8_t m[SECURE_AUTH_MESSAGE_BYTES], sig[FERRY_SIGNATURE_BYTES];
	msgpack_sbuffer sb;
	frame f;
	if (frame_decode(&f, msg, len) || f.type != FRAME_AUTH)
		die("the server's second message is not an AUTH");
	if (!secure_auth_verify(f.u.auth.sig, R.server_id, SECURE_ROLE_SERVER,
				R.t_hash))
		die("the server's AUTH does not verify");
	frame_clear(&f);
	secure_auth_message(m, SECURE_ROLE_CLIENT, R.t_hash);
	if (ferry_node_sign(R.node, sig, m, sizeof(m)))
		die("cannot sign: %s", ferry_node_errmsg(R.node));
	msgpack_sbuffer_init(&sb);
	frame_encode_auth(&sb, sig);
	queue_raw(sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	R.ph = PH_OPEN;
	/* The server's VECTOR proves it accepted us; misbehave then. */
}

static void on_open(const uint8_t *msg, size_t len)
{
	uint8_t *plain;
	frame f;
	if (len < SECURE_TAG_BYTES || !(plain = malloc(len)))
		die("short or unallocatable message");
	if (secure_open(&R.ch, plain, msg, len))
		die("a message from the server does not decrypt");
	if (frame_decode(&f, plain, len - SECURE_TAG_BYTES))
		die("a frame from the server does not decode");
	switch (f.type) {
	case FRAME_VECTOR:
		if (R.vectors++ == 0)
			misbehave();
		break;
	case FRAME_BATCH:
		R.batches++;
		if (f.u.batch.len > R.largest_batch)
			R.largest_batch = f.u.batch.len;
		break;
	case FRAME_PENDING:
		R.pendings++;
		R.last_pending = f.u.pending.changes;
		break;
	case FRAME_PING:
		R.pings++;
		send_simple(FRAME_PONG, f.u.ping.time_ms);
		break;
	case FRAME_ACK:
		R.acks++;
		break;
	case FRAME_CLOSE:
		R.got_close_frame = 1;
		R.close_frame_code = f.u.close.code;
		snprintf(R.close_frame_reason, sizeof(R.close_frame_reason),
			 "%s", f.u.close.reason);
		break;
	default:
		break;
	}
	frame_clear(&f);
	free(plain);
}

/* ------------------------------------------------------------------------ */
/* Transport callbacks                                                      */
/* ------------------------------------------------------------------------ */

static void *cb_opened(transport_conn *c, void *dial_ctx, void *payload)
{
	(void)dial_ctx;
	(void)payload;
	R.conn = c;
	if (!strcmp(R.mode, "garbage")) {
		uint8_t junk[300];
		randombytes_buf(junk, sizeof(junk));
		junk[0] = 0xc1; /* never valid msgpack */
		queue_raw(junk, sizeof(junk));
		say("connected; sending %zu random bytes instead of HELLO",
		    sizeof(junk));
		R.ph = PH_HELLO;
		return &R;
	}
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	secure_hello_new(&R.h);
	frame_encode_hello(&sb, ferry_node_id(R.node), R.h.kx_pk, R.h.nonce,
			   ROGUE_MAX_FRAME);
	R.my_hello = malloc(sb.size);
	if (!R.my_hello)
		die("out of memory");
	memcpy(R.my_hello, sb.data, sb.size);
	R.my_hello_len = sb.size;
	queue_raw(sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	R.ph = PH_HELLO;
	return &R;
}

static void cb_message(transport_conn *c, void *ctx, const uint8_t *msg,
		       size_t len)
{
	(void)c;
	(void)ctx;
	if (!strcmp(R.mode, "garbage"))
		die("the server answered garbage with a %zu-byte message", len);
	if (R.ph == PH_HELLO)
		on_hello(msg, len);
	else if (R.ph == PH_AUTH)
		on_auth(msg, len);
	else if (R.ph == PH_OPEN)
		on_open(msg, len);
}

static int cb_writable(transport_conn *c, void *ctx, const uint8_t **msg,
		       size_t *len)
{
	(void)c;
	(void)ctx;
	free(R.current);
	R.current = NULL;
	if (!R.head)
		return 0;
	R.current = R.head;
	R.head = R.head->next;
	if (!R.head)
		R.tail = NULL;
	*msg = R.current->data;
	*len = R.current->len;
	return 1;
}

static void cb_closed(transport_conn *c, void *ctx, unsigned code,
		      const char *reason)
{
	(void)c;
	(void)ctx;
	R.closed = 1;
	R.ws_code = code;
	snprintf(R.ws_reason, sizeof(R.ws_reason), "%s", reason ? reason : "");
	R.conn = NULL;
}

static void cb_dial_failed(void *dial_ctx, const char *why, void *payload)
{
	(void)dial_ctx;
	(void)payload;
	R.dial_failed = 1;
	snprintf(R.ws_reason, sizeof(R.ws_reason), "%s", why);
}

static void cb_tick(void *payload)
{
	(void)payload;
}

/* Service the loop until `until` (monotonic ms) or the connection ends. */
static void run_until(uint64_t until)
{
	while (!R.closed && !R.dial_failed && now_ms() < until)
		transport_service(R.t);
}

/* ------------------------------------------------------------------------ */
/* The text mode: raw WebSocket over TCP                                    */
/* ------------------------------------------------------------------------ */

static int parse_url(const char *url, char *host, size_t host_len, char *port,
		     size_t port_len)
{
	const char *p = strncmp(url, "ws://", 5) ? NULL : url + 5;
	const char *colon, *end;
	if (!p)
		return -1;
	colon = strchr(p, ':');
	if (!colon)
		return -1;
	end = colon + 1 + strspn(colon + 1, "0123456789");
	if ((size_t)(colon - p) >= host_len || (size_t)(end - colon) > port_len)
		return -1;
	memcpy(host, p, (size_t)(colon - p));
	host[colon - p] = '\0';
	memcpy(port, colon + 1, (size_t)(end - colon - 1));
	port[end - colon - 1] = '\0';
	return 0;
}

static int read_full(int fd, uint8_t *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

static int mode_text(const char *url)
{
	char host[128], port[16], req[512], resp[2048];
	struct addrinfo hints, *ai = NULL;
	struct timeval tv = {15, 0};
	size_t got = 0;
	int fd;

	if (parse_url(url, host, sizeof(host), port, sizeof(port)))
		die("URL must be ws://HOST:PORT/");
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, port, &hints, &ai))
		die("cannot resolve %s", host);
	fd = socket(ai->ai_family, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen))
		die("cannot connect to %s:%s: %s", host, port, strerror(errno));
	freeaddrinfo(ai);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	snprintf(req, sizeof(req),
		 "GET / HTTP/1.1\r\nHost: %s:%s\r\nUpgrade: websocket\r\n"
		 "Connection: Upgrade\r\n"
		 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		 "Sec-WebSocket-Version: 13\r\n"
		 "Sec-WebSocket-Protocol: ferry.v1\r\n\r\n",
		 host, port);
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req))
		die("cannot send the upgrade request");
	while (got < sizeof(resp) - 1) {
		ssize_t n = read(fd, resp + got, 1);
		if (n <= 0)
			die("no upgrade response");
		got++;
		resp[got] = '\0';
		if (got >= 4 && !memcmp(resp + got - 4, "\r\n\r\n", 4))
			break;
	}
	if (!strstr(resp, " 101 "))
		die("upgrade refused: %.80s", resp);
	say("connected (raw WebSocket); sending a text message instead of "
	    "HELLO");

	/* One masked text frame. */
	const char *text = "hello, I am text";
	uint8_t frame_buf[64], mask[4];
	size_t tl = strlen(text);
	randombytes_buf(mask, sizeof(mask));
	frame_buf[0] = 0x81;
	frame_buf[1] = 0x80 | (uint8_t)tl;
	memcpy(frame_buf + 2, mask, 4);
	for (size_t i = 0; i < tl; i++)
		frame_buf[6 + i] = (uint8_t)text[i] ^ mask[i % 4];
	if (write(fd, frame_buf, 6 + tl) != (ssize_t)(6 + tl))
		die("cannot send the text frame");

	/* Read frames until the server's close frame. */
	for (;;) {
		uint8_t hdr[2], ext[8];
		uint64_t plen;
		if (read_full(fd, hdr, 2)) {
			say("connection ended without a close frame");
			close(fd);
			return 1;
		}
		plen = hdr[1] & 0x7f;
		if (plen == 126) {
			if (read_full(fd, ext, 2))
				return 1;
			plen = (uint64_t)ext[0] << 8 | ext[1];
		} else if (plen == 127) {
			if (read_full(fd, ext, 8))
				return 1;
			plen = 0;
			for (int i = 0; i < 8; i++)
				plen = plen << 8 | ext[i];
		}
		if (plen > 1 << 20)
			die("huge frame from the server");
		uint8_t *payload = malloc(plen + 1);
		if (!payload || read_full(fd, payload, plen))
			die("short frame from the server");
		if ((hdr[0] & 0x0f) == 0x8) {
			unsigned code = plen >= 2 ? (unsigned)(payload[0] << 8 |
							       payload[1])
						  : 1005;
			payload[plen] = '\0';
			say("server closed %u: %s", code,
			    plen > 2 ? (char *)payload + 2 : "");
			free(payload);
			close(fd);
			if (code != 4002) {
				say("FAIL: expected 4002");
				return 1;
			}
			say("ok");
			return 0;
		}
		say("server sent a %llu-byte frame (opcode %d) first",
		    (unsigned long long)plen, hdr[0] & 0x0f);
		free(payload);
	}
}

/* ------------------------------------------------------------------------ */
/* Main                                                                     */
/* ------------------------------------------------------------------------ */

static int expect_close(unsigned code, uint64_t wait_ms)
{
	run_until(now_ms() + wait_ms);
	if (R.dial_failed) {
		say("FAIL: could not connect: %s", R.ws_reason);
		return 1;
	}
	if (R.got_close_frame)
		say("server sent CLOSE %llu: %s",
		    (unsigned long long)R.close_frame_code,
		    R.close_frame_reason);
	if (!R.closed) {
		say("FAIL: the server did not close within %llu ms",
		    (unsigned long long)wait_ms);
		return 1;
	}
	say("server closed the WebSocket %u: %s", R.ws_code, R.ws_reason);
	if (R.ws_code != code) {
		say("FAIL: expected close code %u", code);
		return 1;
	}
	if (R.got_close_frame && R.close_frame_code != code) {
		say("FAIL: the CLOSE frame says %llu, expected %u",
		    (unsigned long long)R.close_frame_code, code);
		return 1;
	}
	if (strcmp(R.mode, "garbage") && strcmp(R.mode, "oversize") &&
	    !R.got_close_frame) {
		say("FAIL: no encrypted CLOSE frame explained the close");
		return 1;
	}
	say("ok");
	return 0;
}

static int mode_slow(int stall, unsigned seconds)
{
	uint64_t deadline = now_ms() + 15000;
	/* Handshake, then the VECTOR (sent from on_open). */
	while (!R.closed && !R.dial_failed && !R.vectors && now_ms() < deadline)
		transport_service(R.t);
	if (!R.vectors) {
		say("FAIL: no handshake (%s%u %s)", R.closed ? "closed " : "",
		    R.ws_code, R.ws_reason);
		return 1;
	}
	/* Let the VECTOR out and the first batches in. */
	run_until(now_ms() + 500);
	say("stalling for %u s (%s), never acknowledging", seconds,
	    stall ? "not reading the socket at all"
		  : "reading, answering PINGs");
	printf("STALL_BEGIN\n");
	fflush(stdout);
	if (stall)
		sleep(seconds);
	else
		run_until(now_ms() + seconds * 1000ull);
	printf("STALL_END\n");
	fflush(stdout);
	run_until(now_ms() + 1000);
	say("during the stall: %u batches (largest %zu bytes), %u PINGs, "
	    "server says %llu changes pending",
	    R.batches, R.largest_batch, R.pings,
	    (unsigned long long)R.last_pending);
	if (R.closed) {
		say("FAIL: the server closed %u: %s (CLOSE frame %llu: %s)",
		    R.ws_code, R.ws_reason,
		    (unsigned long long)R.close_frame_code,
		    R.close_frame_reason);
		return 1;
	}
	if (R.batches == 0 || R.batches > WINDOW) {
		say("FAIL: %u unacknowledged batches (window %d)", R.batches,
		    WINDOW);
		return 1;
	}
	if (R.last_pending == 0) {
		say("FAIL: the server claims nothing is pending");
		return 1;
	}
	/* Acknowledge: the server must go on. */
	unsigned held = R.batches;
	for (unsigned i = 1; i <= held; i++)
		send_simple(FRAME_ACK, i);
	run_until(now_ms() + 3000);
	say("after %u ACKs: %u batches in all", held, R.batches);
	if (R.batches <= held || R.closed) {
		say("FAIL: the server did not continue after the ACKs");
		return 1;
	}
	if (R.batches > 2 * held) {
		say("FAIL: more than %u batches after %u ACKs", 2 * held, held);
		return 1;
	}
	transport_close(R.conn, 1000, "rogue done");
	run_until(now_ms() + 2000);
	say("ok");
	return 0;
}

int main(int argc, char **argv)
{
	transport_handler h = {cb_opened, cb_message,	  cb_writable,
			       cb_closed, cb_dial_failed, cb_tick,
			       NULL};
	char detail[256] = "";
	char *errdetail = NULL;
	ferry_node_options opts = FERRY_NODE_OPTIONS_INIT;
	int rc;

	if (argc < 4) {
		fprintf(stderr, "usage: rogue_peer MODE URL DIR [SECONDS]\n");
		return 2;
	}
	R.mode = argv[1];
	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0)
		die("libsodium");
	if (!strcmp(R.mode, "text"))
		return mode_text(argv[2]);
	if (strcmp(R.mode, "garbage") && strcmp(R.mode, "oversize") &&
	    strcmp(R.mode, "forged") && strcmp(R.mode, "replay") &&
	    strcmp(R.mode, "slow") && strcmp(R.mode, "stall"))
		die("unknown mode");
	opts.no_sync = 1;
	if (ferry_node_open(&R.node, argv[3], &opts, &errdetail))
		die("cannot open %s: %s", argv[3], errdetail ? errdetail : "");
	if (transport_new(&R.t, NULL, 64u << 20, 50, &h, detail,
			  sizeof(detail)))
		die("transport: %s", detail);
	if (transport_dial(R.t, argv[2], &R, detail, sizeof(detail)))
		die("dial: %s", detail);

	if (!strcmp(R.mode, "garbage"))
		rc = expect_close(4002, 15000);
	else if (!strcmp(R.mode, "oversize"))
		rc = expect_close(4006, 15000);
	else if (!strcmp(R.mode, "forged"))
		rc = expect_close(4005, 15000);
	else if (!strcmp(R.mode, "replay"))
		rc = expect_close(4004, 15000);
	else
		rc = mode_slow(!strcmp(R.mode, "stall"),
			       argc > 4 ? (unsigned)atoi(argv[4]) : 5);
	if ((!strcmp(R.mode, "oversize") || !strcmp(R.mode, "forged") ||
	     !strcmp(R.mode, "replay")) &&
	    !R.vectors) {
		say("FAIL: the handshake never completed (no VECTOR)");
		rc = 1;
	}
	transport_free(R.t);
	while (R.head) {
		qmsg *m = R.head;
		R.head = m->next;
		free(m);
	}
	free(R.current);
	free(R.my_hello);
	ferry_node_close(R.node);
	return rc;
}
