/*
 * sync.c — verifying and applying received segments (ferry_sync_apply)
 * and the list of known origins.
 *
 * A segment is checked completely before any of it is applied: entries
 * decode, sequences are consecutive and continue what is held, every entry
 * names the hash of the one before, entries already held are identical to
 * ours, no stamp is too far in the future, and the origin's signature over
 * the last entry's hash verifies. One signature check authenticates the
 * whole segment because the hash chain binds every entry to the signed head.
 * The whole batch is one LMDB transaction: any failure aborts all of it.
 */
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "codec.h"

typedef struct segment_check {
	uint64_t first_seq, last_seq;
	uint8_t last_hash[FERRY_HASH_BYTES];
	int forked;
	uint64_t fork_seq;
} segment_check;

/* Details name the segment the way an operator would look for it. */
static ferry_err segment_fail(apply_ctx *ctx, const changelog_segment *s,
			      size_t index, ferry_err err, const char *what,
			      uint64_t seq)
{
	char id[9];
	node_short_id(id, s->origin);
	return node_fail(ctx->node, err,
			 "segment %zu (origin %s, scope %s) at seq %llu: %s",
			 index, id, s->scope, (unsigned long long)seq, what);
}

static ferry_err held_hash(apply_ctx *ctx, const apply_chain *chain,
			   uint64_t seq, uint8_t out[FERRY_HASH_BYTES])
{
	uint8_t key[16];
	store_val v;
	ferry_err err;
	apply_log_key(key, chain->id, seq);
	err = store_get(ctx->txn, DB_LOG, STORE_VAL(key, 16), &v);
	if (err)
		return err;
	changelog_hash(out, v.data, v.len);
	return FERRY_OK;
}

/* Pass 1: everything but the writes. */
static ferry_err check_segment(apply_ctx *ctx, const changelog_segment *s,
			       size_t index, const apply_chain *chain,
			       segment_check *chk)
{
	changelog_entry e;
	uint8_t prev[FERRY_HASH_BYTES], held[FERRY_HASH_BYTES];
	ferry_err err = FERRY_OK;

	memset(chk, 0, sizeof(*chk));
	changelog_entry_init(&e);
	for (size_t i = 0; i < s->nentries && !err; i++) {
		uint8_t hash[FERRY_HASH_BYTES];
		err = changelog_entry_decode(&e, s->entries[i],
					     s->entry_lens[i]);
		if (err) {
			err = segment_fail(ctx, s, index, err,
					   "entry does not decode",
					   chk->first_seq + i);
			break;
		}
		if (i == 0) {
			chk->first_seq = e.seq;
			if (e.seq > chain->seq + 1) {
				err = segment_fail(
					ctx, s, index, FERRY_E_GAP,
					"segment starts past the held chain "
					"end; earlier changes are missing",
					e.seq);
				break;
			}
		} else if (e.seq != chk->first_seq + i) {
			err = segment_fail(ctx, s, index, FERRY_E_GAP,
					   "sequence numbers are not "
					   "consecutive",
					   e.seq);
			break;
		}
		changelog_hash(hash, s->entries[i], s->entry_lens[i]);
		if (i > 0 && memcmp(e.prev, prev, FERRY_HASH_BYTES)) {
			err = segment_fail(ctx, s, index, FERRY_E_BAD_LINK,
					   "entry does not link to the one "
					   "before it",
					   e.seq);
			break;
		}
		if (e.seq <= chain->seq) {
			err = held_hash(ctx, chain, e.seq, held);
			if (err) {
				err = node_store_fail(ctx->node, err,
						      "reading the log");
				break;
			}
			if (memcmp(hash, held, FERRY_HASH_BYTES) &&
			    !chk->forked) {
				chk->forked = 1;
				chk->fork_seq = e.seq;
			}
		} else if (e.seq == chain->seq + 1 &&
			   memcmp(e.prev, chain->head, FERRY_HASH_BYTES)) {
			err = segment_fail(ctx, s, index, FERRY_E_BAD_LINK,
					   "entry does not link to the held "
					   "chain head",
					   e.seq);
			break;
		}
		if (hlc_ahead_ms(e.hlc, ctx->wall_ms) >
		    ctx->node->opts.max_clock_drift_ms) {
			char what[160];
			snprintf(what, sizeof(what),
				 "stamp is %llu ms ahead of the local clock "
				 "(limit %llu ms); check the origin's clock",
				 (unsigned long long)hlc_ahead_ms(e.hlc,
								  ctx->wall_ms),
				 (unsigned long long)
					 ctx->node->opts.max_clock_drift_ms);
			err = segment_fail(ctx, s, index, FERRY_E_CLOCK_DRIFT,
					   what, e.seq);
			break;
		}
		memcpy(prev, hash, FERRY_HASH_BYTES);
		chk->last_seq = e.seq;
	}
	changelog_entry_clear(&e);
	if (err)
		return err;
	memcpy(chk->last_hash, prev, FERRY_HASH_BYTES);
	if (!changelog_head_verify(s->sig, s->origin, s->scope, chk->last_seq,
				   chk->last_hash))
		return segment_fail(ctx, s, index, FERRY_E_BAD_SIGNATURE,
				    "the origin's signature over the segment "
				    "head does not verify",
				    chk->last_seq);
	/* Only a validly signed different history is a fork; anything else
	 * was caught as a bad signature above. */
	if (chk->forked)
		return segment_fail(ctx, s, index, FERRY_E_FORK,
				    "the origin signed a different entry for "
				    "a sequence this node already holds",
				    chk->fork_seq);
	return FERRY_OK;
}

static ferry_err check_origin(apply_ctx *ctx, const changelog_segment *s,
			      size_t index)
{
	store_val v;
	ferry_err err;
	if (!ctx->node->opts.require_known_origins ||
	    !memcmp(s->origin, ctx->node->public_key, FERRY_PUBLIC_KEY_BYTES))
		return FERRY_OK;
	err = store_get(ctx->txn, DB_ORIGINS,
			STORE_VAL(s->origin, FERRY_PUBLIC_KEY_BYTES), &v);
	if (err == FERRY_E_NOT_FOUND)
		return segment_fail(ctx, s, index, FERRY_E_UNKNOWN_ORIGIN,
				    "this node only accepts origins it was "
				    "told to trust",
				    0);
	if (err)
		return node_store_fail(ctx->node, err, "reading origins");
	return FERRY_OK;
}

static ferry_err apply_segment(apply_ctx *ctx, const changelog_segment *s,
			       size_t index, const ferry_apply_options *opts,
			       ferry_apply_stats *stats)
{
	apply_chain *chain;
	segment_check chk;
	changelog_entry e;
	ferry_err err;

	if (opts && opts->filter) {
		char reason[256] = "";
		if (opts->filter(s->origin, s->scope, reason, sizeof(reason),
				 opts->filter_payload)) {
			stats->segments_refused++;
			stats->changes_refused += s->nentries;
			return FERRY_OK;
		}
	}
	err = check_origin(ctx, s, index);
	if (err)
		return err;
	err = apply_chain_get(ctx, s->origin, s->scope, 1, &chain);
	if (err)
		return node_store_fail(ctx->node, err, "loading a chain");
	err = check_segment(ctx, s, index, chain, &chk);
	if (err)
		return err;
	stats->segments++;
	if (chk.last_seq <= chain->seq) {
		stats->changes_duplicate += s->nentries;
		return FERRY_OK;
	}
	changelog_entry_init(&e);
	size_t skip = (size_t)(chain->seq + 1 - chk.first_seq);
	stats->changes_duplicate += skip;
	for (size_t i = skip; i < s->nentries && !err; i++) {
		uint8_t hash[FERRY_HASH_BYTES];
		err = changelog_entry_decode(&e, s->entries[i],
					     s->entry_lens[i]);
		if (err)
			break;
		/* Checked above: cannot fail, but keeps the clock honest. */
		err = hlc_observe(&ctx->clock, e.hlc, ctx->wall_ms,
				  ctx->node->opts.max_clock_drift_ms);
		if (err)
			break;
		changelog_hash(hash, s->entries[i], s->entry_lens[i]);
		err = apply_entry(ctx, chain, &e, s->entries[i],
				  s->entry_lens[i], hash, 0);
		stats->changes_applied++;
	}
	changelog_entry_clear(&e);
	if (!err)
		err = apply_sign(ctx, chain, s->sig);
	return err;
}

ferry_err ferry_sync_apply(ferry_node *node, const void *batch, size_t len,
			   ferry_apply_stats *stats)
{
	return ferry_sync_apply_with(node, batch, len, NULL, stats);
}

ferry_err ferry_sync_apply_with(ferry_node *node, const void *batch, size_t len,
				const ferry_apply_options *opts,
				ferry_apply_stats *stats)
{
	ferry_apply_stats local_stats;
	changelog_batch b;
	apply_ctx ctx;
	ferry_err err;

	if (!stats)
		stats = &local_stats;
	memset(stats, 0, sizeof(*stats));
	if (!node || (!batch && len))
		return FERRY_E_INVALID;
	node_clear_error(node);
	if (opts && opts->version != FERRY_APPLY_OPTIONS_VERSION)
		return node_fail(node, FERRY_E_VERSION,
				 "ferry_apply_options version %u, expected %d",
				 opts->version, FERRY_APPLY_OPTIONS_VERSION);
	err = changelog_batch_decode(&b, batch, len);
	if (err)
		return node_fail(node, err,
				 "batch of %zu bytes rejected: %s (limit "
				 "FERRY_MAX_BATCH_BYTES is %d)",
				 len, ferry_strerror(err),
				 FERRY_MAX_BATCH_BYTES);
	err = apply_begin(&ctx, node);
	for (size_t i = 0; i < b.nsegments && !err; i++)
		err = apply_segment(&ctx, &b.segments[i], i, opts, stats);
	if (!err) {
		stats->conflicts = ctx.conflicts_added;
		err = apply_commit(&ctx);
	} else {
		apply_abort(&ctx);
	}
	changelog_batch_clear(&b);
	if (err) {
		ferry_apply_stats none = {0};
		*stats = none;
	}
	return err;
}

ferry_err ferry_origin_trust(ferry_node *node,
			     const uint8_t origin[FERRY_PUBLIC_KEY_BYTES],
			     const char *name)
{
	store_txn *txn;
	ferry_err err;
	if (!node || !origin)
		return FERRY_E_INVALID;
	node_clear_error(node);
	err = store_begin(&txn, node->store, 1);
	if (err)
		return node_store_fail(node, err, "trusting an origin");
	err = store_put(txn, DB_ORIGINS,
			STORE_VAL(origin, FERRY_PUBLIC_KEY_BYTES),
			STORE_VAL(name ? name : "", name ? strlen(name) : 0));
	if (err) {
		store_abort(txn);
		return node_store_fail(node, err, "trusting an origin");
	}
	err = store_commit(txn);
	return err ? node_store_fail(node, err, "trusting an origin") : err;
}

/* Outline of one segment: its first and last entry and the head hash. */
static ferry_err outline_segment(const changelog_segment *s,
				 ferry_segment_info *info, changelog_entry *e,
				 uint8_t head[FERRY_HASH_BYTES])
{
	ferry_err err =
		changelog_entry_decode(e, s->entries[0], s->entry_lens[0]);
	if (err)
		return err;
	info->first_seq = e->seq;
	err = changelog_entry_decode(e, s->entries[s->nentries - 1],
				     s->entry_lens[s->nentries - 1]);
	if (err)
		return err;
	info->last_seq = e->seq;
	if (info->last_seq - info->first_seq + 1 != s->nentries)
		return FERRY_E_MALFORMED;
	changelog_hash(head, s->entries[s->nentries - 1],
		       s->entry_lens[s->nentries - 1]);
	info->origin = s->origin;
	info->scope = s->scope;
	info->head = head;
	info->changes = s->nentries;
	return FERRY_OK;
}

ferry_err ferry_batch_segments(const void *batch, size_t len,
			       ferry_segment_cb cb, void *payload)
{
	uint8_t head[FERRY_HASH_BYTES];
	changelog_batch b;
	changelog_entry e;
	ferry_err err;

	if ((!batch && len) || !cb)
		return FERRY_E_INVALID;
	err = changelog_batch_decode(&b, batch, len);
	if (err)
		return err;
	changelog_entry_init(&e);
	for (size_t i = 0; i < b.nsegments && !err; i++) {
		ferry_segment_info info;
		err = outline_segment(&b.segments[i], &info, &e, head);
		if (!err && cb(&info, payload))
			break;
	}
	changelog_entry_clear(&e);
	changelog_batch_clear(&b);
	return err;
}
