/*
 * session.c — the ferry.v1 state machine for one connection (session.h,
 * docs/protocol.md).
 *
 * Life of a session:
 *   1. HELLO exchange (plaintext), transcript, session keys;
 *   2. AUTH exchange (plaintext signatures over the transcript), then the
 *      trust check; everything after is encrypted;
 *   3. both sides send VECTOR; each plans an export of what the other
 *      lacks in the scopes it may read, and streams BATCH frames with at
 *      most `window` unacknowledged; received batches are applied under the
 *      write rules and acknowledged;
 *   4. live: on every store change the session plans again from its
 *      estimate of the peer's vector;
 *   5. CLOSE, heartbeat timeout or a lost connection ends it.
 */
#include "session.h"

#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "grant.h"
#include "secure.h"

#define DEFAULT_HEARTBEAT_MS 5000
#define DEFAULT_HANDSHAKE_MS 10000
#define DEFAULT_WINDOW 4
/* Room for the BATCH envelope and the AEAD tag inside the peer's limit. */
#define BATCH_ENVELOPE_BYTES 64

typedef enum session_state {
	STATE_HELLO,   /* waiting for the peer's HELLO */
	STATE_AUTH,    /* waiting for the peer's AUTH */
	STATE_OPEN,    /* authenticated and trusted */
	STATE_CLOSING, /* sending what is queued, then done */
} session_state;

/* A queued outgoing message, plaintext until it is sent. */
typedef struct out_msg {
	struct out_msg *next;
	int encrypt;
	size_t len;
	uint8_t data[];
} out_msg;

/* A chain the peer refused: not offered again in this session. */
typedef struct refused_chain {
	uint8_t origin[FERRY_PUBLIC_KEY_BYTES];
	char scope[FERRY_MAX_SCOPE_BYTES + 1];
} refused_chain;

/* A segment we refused while applying one batch, for its ACK. */
typedef struct refusal {
	uint8_t origin[FERRY_PUBLIC_KEY_BYTES];
	char scope[FERRY_MAX_SCOPE_BYTES + 1];
	char reason[200];
} refusal;

struct session {
	ferry_node *node;
	session_config cfg;
	session_state state;
	int channel_ready; /* keys derived and our AUTH queued */

	secure_hello hello;
	uint8_t transcript[32];
	uint8_t *my_hello, *peer_hello;
	size_t my_hello_len, peer_hello_len;
	secure_channel channel;
	uint8_t peer_id[FERRY_PUBLIC_KEY_BYTES];
	uint64_t peer_max_frame;

	trust_entry peer;   /* the peer's trust entry */
	trust_entry *trust; /* the whole list, for origin checks */
	size_t ntrust;

	out_msg *head, *tail;
	uint8_t *sendbuf;
	size_t sendcap;
	msgpack_sbuffer scratch;

	/* Sending half. */
	ferry_vector *estimate; /* the peer's vector as we believe it */
	ferry_export *plan;
	int replan;
	int awaiting_vector;
	uint64_t next_batch_no, acked_batch_no;
	uint64_t pending_announced;
	refused_chain *refused;
	size_t nrefused;

	/* Receiving half. */
	uint64_t recv_batch_no;
	uint64_t peer_pending;
	int peer_pending_known;
	refusal *refusals;
	size_t nrefusals;
	uint64_t applied_unreported;

	uint64_t started_ms, last_rx_ms, last_tx_ms;
	unsigned close_code;
	char close_reason[256];

	peer_status status;
	int status_dirty;
};

/* ------------------------------------------------------------------------ */
/* Status                                                                   */
/* ------------------------------------------------------------------------ */

static void set_error(session *s, uint64_t now_ms, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_error(session *s, uint64_t now_ms, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->status.last_error, sizeof(s->status.last_error), fmt, ap);
	va_end(ap);
	ferry_utf8_trim(s->status.last_error);
	s->status.last_error_ms = now_ms;
	s->status_dirty = 1;
}

/* ------------------------------------------------------------------------ */
/* Outgoing queue                                                           */
/* ------------------------------------------------------------------------ */

static ferry_err enqueue(session *s, const void *data, size_t len, int encrypt)
{
	out_msg *m = malloc(sizeof(*m) + len);
	if (!m)
		return FERRY_E_NOMEM;
	m->next = NULL;
	m->encrypt = encrypt;
	m->len = len;
	memcpy(m->data, data, len);
	if (s->tail)
		s->tail->next = m;
	else
		s->head = m;
	s->tail = m;
	return FERRY_OK;
}

/* Queue the frame in s->scratch, encrypted once the channel is up. */
static ferry_err enqueue_scratch(session *s, ferry_err encode_err)
{
	ferry_err err = encode_err;
	if (!err)
		err = enqueue(s, s->scratch.data, s->scratch.size,
			      s->channel_ready);
	s->scratch.size = 0;
	return err;
}

static void drop_queue(session *s)
{
	while (s->head) {
		out_msg *m = s->head;
		s->head = m->next;
		free(m);
	}
	s->tail = NULL;
}

/* ------------------------------------------------------------------------ */
/* Closing                                                                  */
/* ------------------------------------------------------------------------ */

void session_close(session *s, unsigned code, const char *reason)
{
	if (s->state == STATE_CLOSING)
		return;
	s->close_code = code;
	snprintf(s->close_reason, sizeof(s->close_reason), "%s",
		 reason ? reason : "");
	ferry_utf8_trim(s->close_reason);
	/* Before the channel exists the peer could not read a CLOSE frame:
	 * the transport's close code and reason carry the news instead. */
	if (s->channel_ready) {
		if (enqueue_scratch(s, frame_encode_close(&s->scratch, code,
							  s->close_reason)))
			drop_queue(s);
	} else {
		drop_queue(s);
	}
	s->state = STATE_CLOSING;
	ferry_export_free(s->plan);
	s->plan = NULL;
	s->status.online = 0;
	s->status_dirty = 1;
}

/* Close for a fault of the peer's, recording it as the last error. */
static ferry_err fail(session *s, ferry_err err, unsigned code, uint64_t now_ms,
		      const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static ferry_err fail(session *s, ferry_err err, unsigned code, uint64_t now_ms,
		      const char *fmt, ...)
{
	char reason[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	ferry_utf8_trim(reason);
	set_error(s, now_ms, "%s", reason);
	session_close(s, code, reason);
	return err;
}

int session_finished(const session *s, unsigned *code, const char **reason)
{
	if (s->state != STATE_CLOSING || s->head)
		return 0;
	*code = s->close_code;
	*reason = s->close_reason;
	return 1;
}

void session_lost(session *s, unsigned code, const char *reason,
		  uint64_t now_ms)
{
	/* A session already closing knows why, in full: the transport's
	 * close reason is cut to 123 bytes by the WebSocket protocol. */
	if (s->state != STATE_CLOSING)
		set_error(s, now_ms, "connection closed (%u%s%s)", code,
			  reason && *reason ? ": " : "", reason ? reason : "");
	drop_queue(s);
	s->state = STATE_CLOSING;
	s->close_code = code;
	s->status.online = 0;
	s->status_dirty = 1;
}

/* ------------------------------------------------------------------------ */
/* Trust                                                                    */
/* ------------------------------------------------------------------------ */

static void free_trust(session *s)
{
	for (size_t i = 0; i < s->ntrust; i++)
		trust_entry_clear(&s->trust[i]);
	free(s->trust);
	s->trust = NULL;
	s->ntrust = 0;
}

static int collect_trust(const trust_entry *e, void *payload)
{
	session *s = payload;
	trust_entry *grown =
		realloc(s->trust, (s->ntrust + 1) * sizeof(*grown));
	if (!grown)
		return 1;
	s->trust = grown;
	trust_entry *t = &s->trust[s->ntrust];
	memset(t, 0, sizeof(*t));
	memcpy(t->id, e->id, sizeof(t->id));
	memcpy(t->name, e->name, sizeof(t->name));
	t->added_ms = e->added_ms;
	if (grant_copy(&t->read, &e->read) ||
	    grant_copy(&t->write, &e->write)) {
		trust_entry_clear(t);
		return 1;
	}
	s->ntrust++;
	return 0;
}

/* Load the trust list; FERRY_E_UNTRUSTED if the peer is not in it. */
static ferry_err load_trust(session *s)
{
	ferry_err err;
	free_trust(s);
	trust_entry_clear(&s->peer);
	err = trust_list(s->node, collect_trust, s);
	if (err)
		return err;
	for (size_t i = 0; i < s->ntrust; i++) {
		if (!memcmp(s->trust[i].id, s->peer_id, sizeof(s->peer_id))) {
			memcpy(s->peer.id, s->peer_id, sizeof(s->peer_id));
			memcpy(s->peer.name, s->trust[i].name,
			       sizeof(s->peer.name));
			if (grant_copy(&s->peer.read, &s->trust[i].read) ||
			    grant_copy(&s->peer.write, &s->trust[i].write))
				return FERRY_E_NOMEM;
			memcpy(s->status.name, s->peer.name,
			       sizeof(s->status.name));
			return FERRY_OK;
		}
	}
	return FERRY_E_UNTRUSTED;
}

static const trust_entry *trusted_origin(const session *s,
					 const uint8_t *origin)
{
	for (size_t i = 0; i < s->ntrust; i++)
		if (!memcmp(s->trust[i].id, origin, FERRY_PUBLIC_KEY_BYTES))
			return &s->trust[i];
	return NULL;
}

/* The write rule of docs/protocol.md §5. Returns 0 to accept. */
static int refuse_segment(const uint8_t *origin, const char *scope,
			  char *reason, size_t reason_len, void *payload)
{
	session *s = payload;
	const trust_entry *o;
	char id[FERRY_ID_HEX_BYTES];

	if (!memcmp(origin, ferry_node_id(s->node), FERRY_PUBLIC_KEY_BYTES))
		return 0;
	/* Messages show the first 8 hex digits, as everywhere. */
	ferry_id_to_hex(id, origin);
	id[8] = '\0';
	o = trusted_origin(s, origin);
	if (o) {
		if (grant_allows(&o->write, scope))
			return 0;
		snprintf(reason, reason_len,
			 "origin %s (%s) may not write scope %s", id, o->name,
			 scope);
	} else if (s->cfg.origin_policy == SESSION_ORIGINS_LISTED) {
		snprintf(reason, reason_len,
			 "origin %s is not in the trust list (policy: listed "
			 "origins only)",
			 id);
	} else if (grant_allows(&s->peer.write, scope)) {
		return 0;
	} else {
		char pid[FERRY_ID_HEX_BYTES];
		ferry_id_to_hex(pid, s->peer_id);
		pid[8] = '\0';
		snprintf(reason, reason_len,
			 "peer %s (%s) may not write scope %s", pid,
			 s->peer.name, scope);
	}
	/* Remember it for the ACK, once per chain per batch. */
	for (size_t i = 0; i < s->nrefusals; i++)
		if (!memcmp(s->refusals[i].origin, origin,
			    FERRY_PUBLIC_KEY_BYTES) &&
		    !strcmp(s->refusals[i].scope, scope))
			return 1;
	refusal *grown =
		realloc(s->refusals, (s->nrefusals + 1) * sizeof(*grown));
	if (grown) {
		s->refusals = grown;
		refusal *r = &grown[s->nrefusals++];
		memcpy(r->origin, origin, FERRY_PUBLIC_KEY_BYTES);
		snprintf(r->scope, sizeof(r->scope), "%s", scope);
		snprintf(r->reason, sizeof(r->reason), "%s", reason);
		ferry_utf8_trim(r->reason);
	}
	return 1;
}

static int peer_refused(const session *s, const uint8_t *origin,
			const char *scope)
{
	for (size_t i = 0; i < s->nrefused; i++)
		if (!memcmp(s->refused[i].origin, origin,
			    FERRY_PUBLIC_KEY_BYTES) &&
		    !strcmp(s->refused[i].scope, scope))
			return 1;
	return 0;
}

/* The read rule: what we may send the peer. */
static int may_send(const uint8_t *origin, const char *scope, void *payload)
{
	session *s = payload;
	return grant_allows(&s->peer.read, scope) &&
	       !peer_refused(s, origin, scope);
}

/* ------------------------------------------------------------------------ */
/* Vectors                                                                  */
/* ------------------------------------------------------------------------ */

/* Our vector, restricted to the scopes we accept from the peer. */
static ferry_err queue_vector(session *s)
{
	ferry_vector *all = NULL, *mine = NULL;
	void *buf = NULL;
	size_t len = 0;
	ferry_err err = ferry_vector_get(&all, s->node);
	if (!err)
		err = ferry_vector_new(&mine);
	for (size_t i = 0; !err && i < ferry_vector_count(all); i++) {
		ferry_vector_entry e;
		ferry_vector_at(all, i, &e);
		if (grant_allows(&s->peer.write, e.scope))
			err = ferry_vector_set(mine, e.origin, e.scope, e.seq,
					       e.head);
	}
	if (!err)
		err = ferry_vector_encode(&buf, &len, mine);
	if (!err)
		err = enqueue_scratch(
			s, frame_encode_vector(&s->scratch, buf, len));
	free(buf);
	ferry_vector_free(all);
	ferry_vector_free(mine);
	return err;
}

/* The peer holds every segment of `batch` (it sent them, or we did and it
 * did not refuse them): advance our estimate of its vector. */
static int advance_one(const ferry_segment_info *seg, void *payload)
{
	session *s = payload;
	if (ferry_vector_seq(s->estimate, seg->origin, seg->scope) <
	    seg->last_seq)
		ferry_vector_set(s->estimate, seg->origin, seg->scope,
				 seg->last_seq, seg->head);
	return 0;
}

static void advance_estimate(session *s, const void *batch, size_t len)
{
	if (s->estimate)
		ferry_batch_segments(batch, len, advance_one, s);
}

/* ------------------------------------------------------------------------ */
/* Sending half                                                             */
/* ------------------------------------------------------------------------ */

static ferry_err announce_pending(session *s, uint64_t changes)
{
	if (changes == s->pending_announced)
		return FERRY_OK;
	s->pending_announced = changes;
	s->status.pending_send = changes;
	s->status_dirty = 1;
	return enqueue_scratch(s, frame_encode_pending(&s->scratch, changes));
}

static size_t batch_target(const session *s)
{
	uint64_t limit = s->peer_max_frame - BATCH_ENVELOPE_BYTES;
	/* Segments end at signed heads, which a commit places every
	 * 256 KiB: leave that much slack under the peer's limit. */
	if (limit > 2 * (FERRY_DEFAULT_BATCH_BYTES / 4))
		limit -= FERRY_DEFAULT_BATCH_BYTES / 4;
	else
		limit /= 2;
	return limit < FERRY_DEFAULT_BATCH_BYTES ? (size_t)limit
						 : FERRY_DEFAULT_BATCH_BYTES;
}

static ferry_err make_plan(session *s)
{
	ferry_export_options opts = FERRY_EXPORT_OPTIONS_INIT;
	ferry_err err;
	ferry_export_free(s->plan);
	s->plan = NULL;
	s->replan = 0;
	opts.batch_bytes = batch_target(s);
	opts.filter = may_send;
	opts.filter_payload = s;
	err = ferry_export_begin(&s->plan, s->node, s->estimate, &opts);
	if (err)
		return err;
	return announce_pending(s, ferry_export_remaining(s->plan));
}

/* Produce the next BATCH if the window and the plan allow. */
static ferry_err produce(session *s)
{
	void *batch = NULL;
	size_t len = 0;
	uint64_t changes = 0;
	ferry_err err;

	if (s->state != STATE_OPEN || !s->estimate || s->awaiting_vector ||
	    s->next_batch_no - s->acked_batch_no >= s->cfg.window)
		return FERRY_OK;
	if (!s->plan && s->replan) {
		err = make_plan(s);
		if (err)
			return err;
	}
	if (!s->plan)
		return FERRY_OK;
	err = ferry_export_next(s->plan, &batch, &len, &changes);
	if (err == FERRY_E_DONE) {
		ferry_export_free(s->plan);
		s->plan = NULL;
		if (s->replan)
			return produce(s);
		return announce_pending(s, 0);
	}
	if (err)
		return err;
	if (len + BATCH_ENVELOPE_BYTES > s->peer_max_frame) {
		free(batch);
		return FERRY_E_LIMIT;
	}
	advance_estimate(s, batch, len);
	err = frame_encode_batch(&s->scratch, ++s->next_batch_no, batch, len);
	free(batch);
	err = enqueue_scratch(s, err);
	if (!err) {
		s->status.sent += changes;
		err = announce_pending(s, ferry_export_remaining(s->plan));
	}
	return err;
}

void session_store_changed(session *s)
{
	s->replan = 1;
}

/* ------------------------------------------------------------------------ */
/* Receiving half                                                           */
/* ------------------------------------------------------------------------ */

static ferry_err on_batch(session *s, const frame *f, uint64_t now_ms)
{
	ferry_apply_options opts = FERRY_APPLY_OPTIONS_INIT;
	ferry_apply_stats st;
	frame_refusal *list = NULL;
	ferry_err err;

	if (f->u.batch.batch_no != s->recv_batch_no + 1)
		return fail(s, FERRY_E_PROTOCOL, SESSION_CLOSE_PROTOCOL, now_ms,
			    "batch %llu arrived, expected %llu",
			    (unsigned long long)f->u.batch.batch_no,
			    (unsigned long long)s->recv_batch_no + 1);
	s->recv_batch_no++;
	s->nrefusals = 0;
	opts.filter = refuse_segment;
	opts.filter_payload = s;
	err = ferry_sync_apply_with(s->node, f->u.batch.data, f->u.batch.len,
				    &opts, &st);
	if (err == FERRY_E_GAP) {
		/* Not bad data: the peer's picture of us is stale. */
		err = enqueue_scratch(
			s, frame_encode_ack(&s->scratch, s->recv_batch_no,
					    FRAME_ACK_RESYNC, 0, 0, NULL, 0));
		return err ? err : queue_vector(s);
	}
	if (err)
		return fail(s, err, SESSION_CLOSE_BAD_DATA, now_ms,
			    "rejected batch %llu: %s: %s",
			    (unsigned long long)s->recv_batch_no,
			    ferry_strerror(err), ferry_node_errmsg(s->node));
	if (s->nrefusals) {
		list = calloc(s->nrefusals, sizeof(*list));
		if (!list)
			return FERRY_E_NOMEM;
		for (size_t i = 0; i < s->nrefusals; i++) {
			list[i].origin = s->refusals[i].origin;
			list[i].scope = s->refusals[i].scope;
			list[i].reason = s->refusals[i].reason;
		}
		s->status.refused_in += s->nrefusals;
		snprintf(s->status.last_refusal, sizeof(s->status.last_refusal),
			 "refused from peer: %s", s->refusals[0].reason);
		ferry_utf8_trim(s->status.last_refusal);
		s->status_dirty = 1;
	}
	err = enqueue_scratch(
		s, frame_encode_ack(&s->scratch, s->recv_batch_no,
				    FRAME_ACK_APPLIED, st.changes_applied,
				    st.changes_duplicate, list, s->nrefusals));
	free(list);
	/* The peer holds what it sent: never send it back. */
	advance_estimate(s, f->u.batch.data, f->u.batch.len);
	s->status.received += st.changes_applied;
	s->applied_unreported += st.changes_applied;
	s->status_dirty = 1;
	return err;
}

static ferry_err on_ack(session *s, const frame *f, uint64_t now_ms)
{
	if (f->u.ack.batch_no != s->acked_batch_no + 1 ||
	    f->u.ack.batch_no > s->next_batch_no)
		return fail(s, FERRY_E_PROTOCOL, SESSION_CLOSE_PROTOCOL, now_ms,
			    "ACK for batch %llu, expected %llu",
			    (unsigned long long)f->u.ack.batch_no,
			    (unsigned long long)s->acked_batch_no + 1);
	s->acked_batch_no++;
	for (size_t i = 0; i < f->u.ack.nrefused; i++) {
		const frame_refusal *r = &f->u.ack.refused[i];
		refused_chain *grown;
		if (peer_refused(s, r->origin, r->scope))
			continue;
		grown = realloc(s->refused, (s->nrefused + 1) * sizeof(*grown));
		if (!grown)
			return FERRY_E_NOMEM;
		s->refused = grown;
		memcpy(grown[s->nrefused].origin, r->origin,
		       FERRY_PUBLIC_KEY_BYTES);
		snprintf(grown[s->nrefused].scope,
			 sizeof(grown[s->nrefused].scope), "%s", r->scope);
		s->nrefused++;
		s->status.refused_out++;
		snprintf(s->status.last_refusal, sizeof(s->status.last_refusal),
			 "refused by peer: %s", r->reason);
		ferry_utf8_trim(s->status.last_refusal);
		s->status_dirty = 1;
	}
	if (f->u.ack.status == FRAME_ACK_RESYNC) {
		s->awaiting_vector = 1;
		ferry_export_free(s->plan);
		s->plan = NULL;
	}
	return FERRY_OK;
}

static ferry_err on_vector(session *s, const frame *f, uint64_t now_ms)
{
	ferry_vector *v = NULL;
	ferry_err err =
		ferry_vector_decode(&v, f->u.vector.data, f->u.vector.len);
	if (err)
		return fail(s, FERRY_E_PROTOCOL, SESSION_CLOSE_PROTOCOL, now_ms,
			    "malformed VECTOR: %s", ferry_strerror(err));
	ferry_vector_free(s->estimate);
	s->estimate = v;
	s->awaiting_vector = 0;
	ferry_export_free(s->plan);
	s->plan = NULL;
	s->replan = 1;
	return FERRY_OK;
}

static ferry_err on_open_frame(session *s, const frame *f, uint64_t now_ms)
{
	switch (f->type) {
	case FRAME_VECTOR:
		return on_vector(s, f, now_ms);
	case FRAME_BATCH:
		return on_batch(s, f, now_ms);
	case FRAME_ACK:
		return on_ack(s, f, now_ms);
	case FRAME_PENDING:
		s->peer_pending = f->u.pending.changes;
		s->peer_pending_known = 1;
		s->status.pending_recv = f->u.pending.changes;
		s->status_dirty = 1;
		return FERRY_OK;
	case FRAME_PING:
		return enqueue_scratch(s, frame_encode_ping(&s->scratch,
							    FRAME_PONG,
							    f->u.ping.time_ms));
	case FRAME_PONG:
		return FERRY_OK;
	case FRAME_CLOSE:
		/* A normal close (a finished one-shot sync) or a peer shutting
		 * down is not an error; offline shows in the status anyway. */
		if (f->u.close.code != SESSION_CLOSE_NORMAL &&
		    f->u.close.code != SESSION_CLOSE_SHUTDOWN)
			set_error(s, now_ms,
				  "peer closed the connection (%llu): %s",
				  (unsigned long long)f->u.close.code,
				  f->u.close.reason);
		drop_queue(s);
		s->state = STATE_CLOSING;
		s->close_code = (unsigned)f->u.close.code;
		snprintf(s->close_reason, sizeof(s->close_reason), "%s",
			 f->u.close.reason);
		s->status.online = 0;
		return FERRY_E_CLOSED;
	default:
		return fail(s, FERRY_E_PROTOCOL, SESSION_CLOSE_PROTOCOL, now_ms,
			    "frame type %d out of place", (int)f->type);
	}
}

/* ------------------------------------------------------------------------ */
/* Handshake                                                                */
/* ------------------------------------------------------------------------ */

static ferry_err queue_hello(session *s)
{
	ferry_err err = frame_encode_hello(&s->scratch, ferry_node_id(s->node),
					   s->hello.kx_pk, s->hello.nonce,
					   s->cfg.max_frame);
	if (err)
		return err;
	s->my_hello = malloc(s->scratch.size);
	if (!s->my_hello)
		return FERRY_E_NOMEM;
	memcpy(s->my_hello, s->scratch.data, s->scratch.size);
	s->my_hello_len = s->scratch.size;
	return enqueue_scratch(s, FERRY_OK);
}

static uint8_t peer_role(const session *s)
{
	return s->cfg.is_client ? SECURE_ROLE_SERVER : SECURE_ROLE_CLIENT;
}

static ferry_err on_hello(session *s, const uint8_t *msg, size_t len,
			  uint64_t now_ms)
{
	uint8_t *t = s->transcript, sig[FERRY_SIGNATURE_BYTES];
	frame f;
	ferry_err err = frame_decode(&f, msg, len);

	if (err == FERRY_E_VERSION)
		return fail(s, err, SESSION_CLOSE_VERSION, now_ms,
			    "peer does not speak ferry.v1");
	if (err || f.type != FRAME_HELLO) {
		if (!err)
			frame_clear(&f);
		return fail(s, FERRY_E_PROTOCOL, SESSION_CLOSE_PROTOCOL, now_ms,
			    "expected HELLO");
	}
	if (f.u.hello.version != FRAME_VERSION) {
		unsigned long long v = f.u.hello.version;
		frame_clear(&f);
		return fail(s, FERRY_E_VERSION, SESSION_CLOSE_VERSION, now_ms,
			    "unsupported protocol version %llu (this node "
			    "speaks %d)",
			    v, FRAME_VERSION);
	}
	if (!memcmp(f.u.hello.identity, ferry_node_id(s->node),
		    FERRY_PUBLIC_KEY_BYTES)) {
		frame_clear(&f);
		return fail(s, FERRY_E_AUTH, SESSION_CLOSE_AUTH, now_ms,
			    "peer claims this node's own identity");
	}
	if (f.u.hello.max_frame < FRAME_MIN_MAX_FRAME) {
		frame_clear(&f);
		return fail(s, FERRY_E_PROTOCOL, SESSION_CLOSE_PROTOCOL, now_ms,
			    "peer's max_frame is below %d",
			    FRAME_MIN_MAX_FRAME);
	}
	memcpy(s->peer_id, f.u.hello.identity, FERRY_PUBLIC_KEY_BYTES);
	memcpy(s->status.id, s->peer_id, sizeof(s->peer_id));
	s->status.has_id = 1;
	s->peer_max_frame = f.u.hello.max_frame;
	uint8_t peer_kx[FRAME_KX_BYTES];
	memcpy(peer_kx, f.u.hello.kx, sizeof(peer_kx));
	frame_clear(&f);
	s->peer_hello = malloc(len);
	if (!s->peer_hello)
		return FERRY_E_NOMEM;
	memcpy(s->peer_hello, msg, len);
	s->peer_hello_len = len;

	if (!s->cfg.is_client) {
		err = queue_hello(s);
		if (err)
			return err;
		secure_transcript(t, s->peer_hello, s->peer_hello_len,
				  s->my_hello, s->my_hello_len);
	} else {
		secure_transcript(t, s->my_hello, s->my_hello_len,
				  s->peer_hello, s->peer_hello_len);
	}
	err = secure_channel_init(&s->channel, s->cfg.is_client, &s->hello,
				  peer_kx, t);
	if (err)
		return fail(s, err, SESSION_CLOSE_AUTH, now_ms,
			    "peer's key-exchange key is unusable");
	uint8_t auth[SECURE_AUTH_MESSAGE_BYTES];
	secure_auth_message(
		auth,
		s->cfg.is_client ? SECURE_ROLE_CLIENT : SECURE_ROLE_SERVER, t);
	err = ferry_node_sign(s->node, sig, auth, sizeof(auth));
	if (!err)
		err = enqueue_scratch(s, frame_encode_auth(&s->scratch, sig));
	if (err)
		return err;
	s->channel_ready = 1;
	s->state = STATE_AUTH;
	return FERRY_OK;
}

static ferry_err on_auth(session *s, const uint8_t *msg, size_t len,
			 uint64_t now_ms)
{
	char id[FERRY_ID_HEX_BYTES];
	frame f;
	ferry_err err = frame_decode(&f, msg, len);
	int ok;

	if (err || f.type != FRAME_AUTH) {
		if (!err)
			frame_clear(&f);
		return fail(s, FERRY_E_PROTOCOL, SESSION_CLOSE_PROTOCOL, now_ms,
			    "expected AUTH");
	}
	ok = secure_auth_verify(f.u.auth.sig, s->peer_id, peer_role(s),
				s->transcript);
	frame_clear(&f);
	secure_hello_wipe(&s->hello);
	if (!ok)
		return fail(s, FERRY_E_AUTH, SESSION_CLOSE_AUTH, now_ms,
			    "peer failed to prove its key");
	ferry_id_to_hex(id, s->peer_id);
	err = load_trust(s);
	if (err == FERRY_E_UNTRUSTED)
		return fail(s, err, SESSION_CLOSE_UNTRUSTED, now_ms,
			    "untrusted key %s; on the refusing node run: "
			    "ferry trust add %s --name NAME --read SCOPES "
			    "--write SCOPES",
			    id, id);
	if (err)
		return fail(s, err, SESSION_CLOSE_SHUTDOWN, now_ms,
			    "cannot read the trust list: %s",
			    ferry_strerror(err));
	s->state = STATE_OPEN;
	s->status.online = 1;
	s->status.connected_ms = now_ms;
	s->status.last_error[0] = '\0';
	s->status_dirty = 1;
	return queue_vector(s);
}

/* ------------------------------------------------------------------------ */
/* Entry points                                                             */
/* ------------------------------------------------------------------------ */

ferry_err session_new(session **out, ferry_node *node,
		      const session_config *cfg, uint64_t now_ms)
{
	session *s = calloc(1, sizeof(*s));
	ferry_err err;
	*out = NULL;
	if (!s)
		return FERRY_E_NOMEM;
	s->node = node;
	s->cfg = *cfg;
	if (!s->cfg.heartbeat_ms)
		s->cfg.heartbeat_ms = DEFAULT_HEARTBEAT_MS;
	if (!s->cfg.handshake_ms)
		s->cfg.handshake_ms = DEFAULT_HANDSHAKE_MS;
	if (!s->cfg.max_frame)
		s->cfg.max_frame = SESSION_DEFAULT_MAX_FRAME;
	if (!s->cfg.window)
		s->cfg.window = DEFAULT_WINDOW;
	s->cfg.url = NULL; /* not owned */
	msgpack_sbuffer_init(&s->scratch);
	s->pending_announced = UINT64_MAX;
	s->started_ms = s->last_rx_ms = s->last_tx_ms = now_ms;
	if (cfg->url) {
		snprintf(s->status.url, sizeof(s->status.url), "%s", cfg->url);
		peer_status_key_url(s->status.key, sizeof(s->status.key),
				    cfg->url);
	}
	secure_hello_new(&s->hello);
	err = cfg->is_client ? queue_hello(s) : FERRY_OK;
	if (err) {
		session_free(s);
		return err;
	}
	*out = s;
	return FERRY_OK;
}

void session_free(session *s)
{
	if (!s)
		return;
	drop_queue(s);
	secure_hello_wipe(&s->hello);
	secure_channel_wipe(&s->channel);
	free(s->my_hello);
	free(s->peer_hello);
	free(s->sendbuf);
	msgpack_sbuffer_destroy(&s->scratch);
	ferry_export_free(s->plan);
	ferry_vector_free(s->estimate);
	free(s->refused);
	free(s->refusals);
	free_trust(s);
	trust_entry_clear(&s->peer);
	free(s);
}

ferry_err session_receive(session *s, const uint8_t *msg, size_t len,
			  uint64_t now_ms)
{
	uint8_t *plain;
	frame f;
	ferry_err err;

	if (s->state == STATE_CLOSING)
		return FERRY_E_CLOSED;
	s->last_rx_ms = now_ms;
	if (len > s->cfg.max_frame)
		return fail(s, FERRY_E_LIMIT, SESSION_CLOSE_TOO_LARGE, now_ms,
			    "frame of %zu bytes exceeds max_frame %zu", len,
			    s->cfg.max_frame);
	if (s->state == STATE_HELLO)
		return on_hello(s, msg, len, now_ms);
	if (s->state == STATE_AUTH)
		return on_auth(s, msg, len, now_ms);

	if (len < SECURE_TAG_BYTES)
		return fail(s, FERRY_E_DECRYPT, SESSION_CLOSE_DECRYPT, now_ms,
			    "frame too short to be encrypted");
	plain = malloc(len - SECURE_TAG_BYTES + 1);
	if (!plain)
		return FERRY_E_NOMEM;
	err = secure_open(&s->channel, plain, msg, len);
	if (err) {
		free(plain);
		return fail(s, err, SESSION_CLOSE_DECRYPT, now_ms,
			    "frame failed authentication (replayed, reordered "
			    "or altered)");
	}
	err = frame_decode(&f, plain, len - SECURE_TAG_BYTES);
	if (err) {
		free(plain);
		return fail(s, FERRY_E_PROTOCOL, SESSION_CLOSE_PROTOCOL, now_ms,
			    "malformed frame: %s", ferry_strerror(err));
	}
	err = on_open_frame(s, &f, now_ms);
	frame_clear(&f);
	free(plain);
	return err;
}

int session_wants_write(const session *s)
{
	if (s->head)
		return 1;
	return s->state == STATE_OPEN && s->estimate && !s->awaiting_vector &&
	       (s->plan || s->replan) &&
	       s->next_batch_no - s->acked_batch_no < s->cfg.window;
}

ferry_err session_next(session *s, const uint8_t **msg, size_t *len,
		       uint64_t now_ms)
{
	out_msg *m;
	ferry_err err;

	*msg = NULL;
	*len = 0;
	if (!s->head && s->state == STATE_OPEN) {
		err = produce(s);
		if (err && err != FERRY_E_NOMEM) {
			char what[200];
			snprintf(what, sizeof(what),
				 "cannot export to the peer: %s: %s",
				 ferry_strerror(err),
				 ferry_node_errmsg(s->node));
			fail(s, err, SESSION_CLOSE_SHUTDOWN, now_ms, "%s",
			     what);
		}
	}
	m = s->head;
	if (!m)
		return FERRY_E_DONE;
	s->head = m->next;
	if (!s->head)
		s->tail = NULL;
	size_t need = m->len + (m->encrypt ? SECURE_TAG_BYTES : 0);
	if (need > s->sendcap) {
		uint8_t *grown = realloc(s->sendbuf, need);
		if (!grown) {
			free(m);
			return FERRY_E_NOMEM;
		}
		s->sendbuf = grown;
		s->sendcap = need;
	}
	if (m->encrypt)
		err = secure_seal(&s->channel, s->sendbuf, m->data, m->len);
	else {
		memcpy(s->sendbuf, m->data, m->len);
		err = FERRY_OK;
	}
	free(m);
	if (err == FERRY_E_PROTOCOL) {
		/* The send counter would wrap: no frame can be encrypted any
		 * more, not even a CLOSE, so the transport's close code says
		 * it (docs/protocol.md §3). */
		s->channel_ready = 0;
		session_close(s, SESSION_CLOSE_PROTOCOL,
			      "send counter exhausted");
	}
	if (err)
		return err;
	s->last_tx_ms = now_ms;
	*msg = s->sendbuf;
	*len = need;
	return FERRY_OK;
}

int session_caught_up(const session *s)
{
	return s->state == STATE_OPEN && s->estimate && !s->plan &&
	       !s->replan && !s->awaiting_vector &&
	       s->acked_batch_no == s->next_batch_no && s->peer_pending_known &&
	       s->peer_pending == 0;
}

void session_tick(session *s, uint64_t now_ms)
{
	if (s->state == STATE_CLOSING)
		return;
	if (s->state != STATE_OPEN) {
		if (now_ms - s->started_ms > s->cfg.handshake_ms)
			fail(s, FERRY_E_TIMEOUT, SESSION_CLOSE_PROTOCOL, now_ms,
			     "handshake not finished within %u ms",
			     s->cfg.handshake_ms);
		return;
	}
	if (now_ms - s->last_rx_ms > 3ull * s->cfg.heartbeat_ms) {
		fail(s, FERRY_E_TIMEOUT, SESSION_CLOSE_HEARTBEAT, now_ms,
		     "nothing heard from the peer for %llu ms",
		     (unsigned long long)(now_ms - s->last_rx_ms));
		return;
	}
	if (now_ms - s->last_tx_ms >= s->cfg.heartbeat_ms && !s->head)
		enqueue_scratch(
			s, frame_encode_ping(&s->scratch, FRAME_PING, now_ms));
	if (session_caught_up(s) && s->status.last_sync_ms != now_ms) {
		s->status.last_sync_ms = now_ms;
		s->status_dirty = 1;
	}
}

void session_trust_changed(session *s)
{
	ferry_err err;
	if (s->state != STATE_OPEN)
		return;
	err = load_trust(s);
	if (err == FERRY_E_UNTRUSTED) {
		session_close(s, SESSION_CLOSE_UNTRUSTED,
			      "this node no longer trusts your key");
		return;
	}
	s->replan = 1;
}

int session_established(const session *s)
{
	return s->state == STATE_OPEN;
}

const peer_status *session_status(const session *s)
{
	return &s->status;
}

int session_status_dirty(session *s)
{
	int dirty = s->status_dirty;
	s->status_dirty = 0;
	return dirty;
}

uint64_t session_take_applied(session *s)
{
	uint64_t n = s->applied_unreported;
	s->applied_unreported = 0;
	return n;
}
