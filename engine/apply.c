/*
 * apply.c — appending entries and merging them into records (apply.h).
 */
#include "apply.h"

#include <stdlib.h>
#include <string.h>

#include "codec.h"

size_t apply_record_key(char *out, const char *scope, const char *collection,
			const char *key)
{
	size_t s = strlen(scope), c = strlen(collection), k = strlen(key);
	memcpy(out, scope, s + 1);
	memcpy(out + s + 1, collection, c + 1);
	memcpy(out + s + c + 2, key, k);
	return s + c + k + 2;
}

size_t apply_chain_key(uint8_t *out, const uint8_t *origin, const char *scope)
{
	size_t s = strlen(scope);
	memcpy(out, origin, FERRY_PUBLIC_KEY_BYTES);
	memcpy(out + FERRY_PUBLIC_KEY_BYTES, scope, s);
	return FERRY_PUBLIC_KEY_BYTES + s;
}

void apply_log_key(uint8_t out[16], uint64_t chain_id, uint64_t seq)
{
	codec_put_be64(out, chain_id);
	codec_put_be64(out + 8, seq);
}

static ferry_err load_log_tail(apply_ctx *ctx)
{
	store_cursor *c = NULL;
	store_val k;
	ferry_err err = store_cursor_open(&c, ctx->txn, DB_LOG);
	memset(ctx->log_tail, 0, sizeof(ctx->log_tail));
	if (!err)
		err = store_cursor_get(c, STORE_LAST, &k, NULL);
	if (!err && k.len == sizeof(ctx->log_tail))
		memcpy(ctx->log_tail, k.data, k.len);
	store_cursor_close(c);
	return err == FERRY_E_NOT_FOUND ? FERRY_OK : err;
}

ferry_err apply_begin(apply_ctx *ctx, ferry_node *node)
{
	ferry_hlc persisted = 0;
	ferry_err err;

	memset(ctx, 0, sizeof(*ctx));
	ctx->node = node;
	msgpack_sbuffer_init(&ctx->scratch);
	err = store_begin(&ctx->txn, node->store, 1);
	if (!err)
		err = meta_get_u64(ctx->txn, META_HLC, &persisted);
	if (!err)
		err = meta_get_u64(ctx->txn, META_ARRIVAL, &ctx->arrival);
	if (!err)
		err = meta_get_u64(ctx->txn, META_NEXT_CHAIN, &ctx->next_chain);
	if (!err)
		err = meta_get_u64(ctx->txn, META_CONFLICT_SEQ,
				   &ctx->conflict_seq);
	if (err) {
		node_store_fail(node, err, "starting a write");
		apply_abort(ctx);
		return err;
	}
	if (ctx->next_chain == 0)
		ctx->next_chain = 1;
	err = load_log_tail(ctx);
	if (err) {
		node_store_fail(node, err, "starting a write");
		apply_abort(ctx);
		return err;
	}
	/* Read inside the write transaction: another process writing the
	 * same store has committed its stamps before we got the lock. */
	hlc_init(&ctx->clock, persisted);
	ctx->wall_ms = node_wall_ms(node);
	return FERRY_OK;
}

static ferry_err load_chain(apply_ctx *ctx, apply_chain *ch)
{
	uint8_t key[APPLY_CHAIN_KEY_MAX];
	size_t klen = apply_chain_key(key, ch->origin, ch->scope);
	store_val v;
	ferry_err err =
		store_get(ctx->txn, DB_CHAINS, STORE_VAL(key, klen), &v);
	if (err)
		return err;
	if (v.len != APPLY_CHAIN_VALUE_BYTES)
		return node_fail(ctx->node, FERRY_E_CORRUPT,
				 "chain record of scope %s has %zu bytes",
				 ch->scope, v.len);
	ch->id = codec_get_be64(v.data);
	ch->seq = codec_get_be64((const uint8_t *)v.data + 8);
	memcpy(ch->head, (const uint8_t *)v.data + 16, FERRY_HASH_BYTES);
	ch->signed_seq = ch->seq;
	return FERRY_OK;
}

ferry_err apply_chain_get(apply_ctx *ctx, const uint8_t *origin,
			  const char *scope, int create, apply_chain **out)
{
	apply_chain *ch;
	ferry_err err;

	for (size_t i = 0; i < ctx->nchains; i++) {
		ch = &ctx->chains[i];
		if (!memcmp(ch->origin, origin, FERRY_PUBLIC_KEY_BYTES) &&
		    !strcmp(ch->scope, scope)) {
			*out = ch;
			return FERRY_OK;
		}
	}
	if (ctx->nchains == ctx->chains_cap) {
		size_t cap = ctx->chains_cap ? 2 * ctx->chains_cap : 8;
		apply_chain *grown = realloc(ctx->chains, cap * sizeof(*grown));
		if (!grown)
			return FERRY_E_NOMEM;
		ctx->chains = grown;
		ctx->chains_cap = cap;
	}
	ch = &ctx->chains[ctx->nchains];
	memset(ch, 0, sizeof(*ch));
	memcpy(ch->origin, origin, FERRY_PUBLIC_KEY_BYTES);
	snprintf(ch->scope, sizeof(ch->scope), "%s", scope);
	err = load_chain(ctx, ch);
	if (err == FERRY_E_NOT_FOUND) {
		if (!create)
			return err;
		ch->id = ctx->next_chain++;
		ch->is_new = 1;
		ch->dirty = 1;
		err = FERRY_OK;
	}
	if (err)
		return err;
	ctx->nchains++;
	*out = ch;
	return FERRY_OK;
}

static ferry_err add_count(apply_ctx *ctx, const char *scope,
			   const char *collection, int delta)
{
	char key[sizeof(ctx->counts[0].key)];
	size_t s = strlen(scope), c = strlen(collection), len = s + 1 + c;
	memcpy(key, scope, s + 1);
	memcpy(key + s + 1, collection, c);
	for (size_t i = 0; i < ctx->ncounts; i++) {
		if (ctx->counts[i].key_len == len &&
		    !memcmp(ctx->counts[i].key, key, len)) {
			ctx->counts[i].delta += delta;
			return FERRY_OK;
		}
	}
	if (ctx->ncounts == ctx->counts_cap) {
		size_t cap = ctx->counts_cap ? 2 * ctx->counts_cap : 8;
		apply_count *grown = realloc(ctx->counts, cap * sizeof(*grown));
		if (!grown)
			return FERRY_E_NOMEM;
		ctx->counts = grown;
		ctx->counts_cap = cap;
	}
	memcpy(ctx->counts[ctx->ncounts].key, key, len);
	ctx->counts[ctx->ncounts].key_len = len;
	ctx->counts[ctx->ncounts].delta = delta;
	ctx->ncounts++;
	return FERRY_OK;
}

/* Conflict record, msgpack array of 11:
 * [recorded_ms, scope, collection, key, field, loser_hlc, loser_origin,
 *  loser_value | nil, winner_hlc, winner_origin, winner_is_delete] */
static void record_loss(const merge_loss *loss, void *payload)
{
	apply_ctx *ctx = payload;
	const changelog_entry *e = ctx->cur_entry;
	msgpack_sbuffer buf;
	msgpack_packer pk;
	uint8_t key[8];
	int rc = 0;

	if (ctx->loss_err)
		return;
	msgpack_sbuffer_init(&buf);
	msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
	rc |= msgpack_pack_array(&pk, 11);
	rc |= msgpack_pack_uint64(&pk, ctx->wall_ms);
	rc |= msgpack_pack_str_with_body(&pk, ctx->cur_scope,
					 strlen(ctx->cur_scope));
	rc |= msgpack_pack_str_with_body(&pk, e->collection,
					 strlen(e->collection));
	rc |= msgpack_pack_str_with_body(&pk, e->key, strlen(e->key));
	rc |= msgpack_pack_str_with_body(&pk, loss->field, strlen(loss->field));
	rc |= msgpack_pack_uint64(&pk, loss->loser->hlc);
	rc |= msgpack_pack_bin_with_body(&pk, loss->loser->origin,
					 FERRY_PUBLIC_KEY_BYTES);
	if (loss->loser_value)
		rc |= codec_pack_raw(&pk, loss->loser_value,
				     loss->loser_value_len);
	else
		rc |= msgpack_pack_nil(&pk);
	rc |= msgpack_pack_uint64(&pk, loss->winner->hlc);
	rc |= msgpack_pack_bin_with_body(&pk, loss->winner->origin,
					 FERRY_PUBLIC_KEY_BYTES);
	rc |= loss->winner_is_delete ? msgpack_pack_true(&pk)
				     : msgpack_pack_false(&pk);
	if (rc) {
		ctx->loss_err = FERRY_E_NOMEM;
	} else {
		codec_put_be64(key, ++ctx->conflict_seq);
		ctx->loss_err =
			store_append(ctx->txn, DB_CONFLICTS, STORE_VAL(key, 8),
				     STORE_VAL(buf.data, buf.size));
		ctx->conflicts_added++;
	}
	msgpack_sbuffer_destroy(&buf);
}

ferry_err apply_record_split(apply_record_value *out, const void *buf,
			     size_t len)
{
	const uint8_t *trailer;
	if (len < APPLY_RECORD_TRAILER_BYTES)
		return FERRY_E_CORRUPT;
	out->state = buf;
	out->state_len = len - APPLY_RECORD_TRAILER_BYTES;
	trailer = (const uint8_t *)buf + out->state_len;
	out->created_cursor = codec_get_be64(trailer);
	out->changed_cursor = codec_get_be64(trailer + 8);
	return FERRY_OK;
}

ferry_err apply_merge_record(store_txn *txn, const char *scope,
			     const changelog_entry *e,
			     const uint8_t origin[FERRY_PUBLIC_KEY_BYTES],
			     uint64_t cursor, msgpack_sbuffer *scratch,
			     size_t max_record, int *live_delta,
			     merge_loss_fn on_loss, void *payload)
{
	char key[APPLY_RECORD_KEY_MAX];
	size_t klen = apply_record_key(key, scope, e->collection, e->key);
	apply_record_value old = {NULL, 0, 0, 0};
	uint8_t trailer[APPLY_RECORD_TRAILER_BYTES];
	merge_state st;
	merge_stamp stamp;
	store_val v;
	int was_live = 0, changed = 0;
	ferry_err err;

	*live_delta = 0;
	err = store_get(txn, DB_RECORDS, STORE_VAL(key, klen), &v);
	if (err == FERRY_E_NOT_FOUND) {
		merge_state_init(&st);
	} else if (err) {
		return err;
	} else {
		err = apply_record_split(&old, v.data, v.len);
		if (!err)
			err = merge_state_decode(&st, old.state, old.state_len);
		if (err)
			return err;
		was_live = merge_state_live(&st);
	}
	stamp.hlc = e->hlc;
	memcpy(stamp.origin, origin, FERRY_PUBLIC_KEY_BYTES);
	if (e->op == FERRY_OP_PUT)
		err = merge_put(&st, &stamp, e->fields, e->nfields, &changed,
				on_loss, payload);
	else
		err = merge_delete(&st, &stamp, &changed, on_loss, payload);
	if (!err && changed) {
		int live = merge_state_live(&st);
		scratch->size = 0;
		err = merge_state_encode(scratch, &st);
		if (!err && max_record && scratch->size > max_record)
			err = FERRY_E_LIMIT;
		codec_put_be64(trailer,
			       live && !was_live ? cursor : old.created_cursor);
		codec_put_be64(trailer + 8, cursor);
		if (!err &&
		    msgpack_sbuffer_write(scratch, (const char *)trailer,
					  sizeof(trailer)))
			err = FERRY_E_NOMEM;
		if (!err)
			err = store_put(
				txn, DB_RECORDS, STORE_VAL(key, klen),
				STORE_VAL(scratch->data, scratch->size));
		if (!err)
			*live_delta = live - was_live;
	}
	merge_state_clear(&st);
	return err;
}

ferry_err apply_entry(apply_ctx *ctx, apply_chain *chain,
		      const changelog_entry *e, const void *raw, size_t len,
		      const uint8_t hash[FERRY_HASH_BYTES], int local)
{
	uint8_t logkey[16], arrkey[8];
	int delta = 0;
	ferry_err err;

	apply_log_key(logkey, chain->id, e->seq);
	if (memcmp(logkey, ctx->log_tail, sizeof(logkey)) > 0) {
		err = store_append(ctx->txn, DB_LOG, STORE_VAL(logkey, 16),
				   STORE_VAL(raw, len));
		memcpy(ctx->log_tail, logkey, sizeof(logkey));
	} else {
		err = store_put(ctx->txn, DB_LOG, STORE_VAL(logkey, 16),
				STORE_VAL(raw, len));
	}
	if (err)
		return node_store_fail(ctx->node, err, "appending to the log");
	codec_put_be64(arrkey, ++ctx->arrival);
	err = store_append(ctx->txn, DB_ARRIVAL, STORE_VAL(arrkey, 8),
			   STORE_VAL(logkey, 16));
	if (err)
		return node_store_fail(ctx->node, err, "indexing arrival");

	ctx->cur_scope = chain->scope;
	ctx->cur_entry = e;
	ctx->loss_err = FERRY_OK;
	err = apply_merge_record(ctx->txn, chain->scope, e, chain->origin,
				 ctx->arrival, &ctx->scratch,
				 local ? FERRY_MAX_RECORD_BYTES : 0, &delta,
				 local ? NULL : record_loss, ctx);
	if (!err)
		err = ctx->loss_err;
	if (err == FERRY_E_LIMIT)
		return node_fail(ctx->node, err,
				 "record %s/%s/%s would exceed the limit "
				 "FERRY_MAX_RECORD_BYTES (%d bytes)",
				 chain->scope, e->collection, e->key,
				 FERRY_MAX_RECORD_BYTES);
	if (err == FERRY_E_CORRUPT)
		return node_fail(ctx->node, err,
				 "stored state of %s/%s/%s is damaged; run "
				 "ferry verify",
				 chain->scope, e->collection, e->key);
	if (err)
		return node_store_fail(ctx->node, err, "merging a record");
	if (delta) {
		err = add_count(ctx, chain->scope, e->collection, delta);
		if (err)
			return err;
	}
	chain->seq = e->seq;
	memcpy(chain->head, hash, FERRY_HASH_BYTES);
	chain->unsigned_bytes += len;
	chain->dirty = 1;
	return FERRY_OK;
}

ferry_err apply_sign(apply_ctx *ctx, apply_chain *chain,
		     const uint8_t sig[FERRY_SIGNATURE_BYTES])
{
	uint8_t key[16];
	ferry_err err;
	apply_log_key(key, chain->id, chain->seq);
	err = store_put(ctx->txn, DB_SIGS, STORE_VAL(key, 16),
			STORE_VAL(sig, FERRY_SIGNATURE_BYTES));
	if (err)
		return node_store_fail(ctx->node, err, "storing a signature");
	chain->signed_seq = chain->seq;
	chain->unsigned_bytes = 0;
	return FERRY_OK;
}

static ferry_err write_chain(apply_ctx *ctx, const apply_chain *ch)
{
	uint8_t key[APPLY_CHAIN_KEY_MAX], val[APPLY_CHAIN_VALUE_BYTES];
	uint8_t idkey[8], idval[APPLY_CHAIN_KEY_MAX];
	size_t klen = apply_chain_key(key, ch->origin, ch->scope);
	ferry_err err;

	/* The head stored is always a signed one: readers export up to it. */
	if (ch->signed_seq != ch->seq)
		return node_fail(ctx->node, FERRY_E_CORRUPT,
				 "internal: chain %s left unsigned", ch->scope);
	codec_put_be64(val, ch->id);
	codec_put_be64(val + 8, ch->seq);
	memcpy(val + 16, ch->head, FERRY_HASH_BYTES);
	err = store_put(ctx->txn, DB_CHAINS, STORE_VAL(key, klen),
			STORE_VAL(val, sizeof(val)));
	if (!err && ch->is_new) {
		codec_put_be64(idkey, ch->id);
		memcpy(idval, key, klen);
		err = store_put(ctx->txn, DB_CHAIN_IDS, STORE_VAL(idkey, 8),
				STORE_VAL(idval, klen));
	}
	return err;
}

static ferry_err write_count(apply_ctx *ctx, const apply_count *c)
{
	uint8_t buf[8];
	store_val v;
	uint64_t n = 0;
	ferry_err err;
	if (c->delta == 0)
		return FERRY_OK;
	err = store_get(ctx->txn, DB_COUNTS, STORE_VAL(c->key, c->key_len), &v);
	if (!err && v.len == 8)
		n = codec_get_be64(v.data);
	else if (err && err != FERRY_E_NOT_FOUND)
		return err;
	n = (uint64_t)((int64_t)n + c->delta);
	codec_put_be64(buf, n);
	return store_put(ctx->txn, DB_COUNTS, STORE_VAL(c->key, c->key_len),
			 STORE_VAL(buf, 8));
}

/* Keep the conflict log within its retention by dropping the oldest. */
static ferry_err trim_conflicts(apply_ctx *ctx)
{
	uint64_t n = 0;
	store_cursor *c = NULL;
	store_val k;
	ferry_err err = store_entries(ctx->txn, DB_CONFLICTS, &n);
	if (err || n <= ctx->node->opts.conflict_retention)
		return err;
	err = store_cursor_open(&c, ctx->txn, DB_CONFLICTS);
	for (; !err && n > ctx->node->opts.conflict_retention; n--) {
		err = store_cursor_get(c, STORE_FIRST, &k, NULL);
		if (!err)
			err = store_cursor_del(c);
	}
	store_cursor_close(c);
	return err;
}

ferry_err apply_commit(apply_ctx *ctx)
{
	ferry_err err = FERRY_OK;
	for (size_t i = 0; i < ctx->nchains && !err; i++)
		if (ctx->chains[i].dirty)
			err = write_chain(ctx, &ctx->chains[i]);
	for (size_t i = 0; i < ctx->ncounts && !err; i++)
		err = write_count(ctx, &ctx->counts[i]);
	if (!err && ctx->conflicts_added)
		err = trim_conflicts(ctx);
	if (!err)
		err = meta_put_u64(ctx->txn, META_HLC, ctx->clock.last);
	if (!err)
		err = meta_put_u64(ctx->txn, META_ARRIVAL, ctx->arrival);
	if (!err)
		err = meta_put_u64(ctx->txn, META_NEXT_CHAIN, ctx->next_chain);
	if (!err)
		err = meta_put_u64(ctx->txn, META_CONFLICT_SEQ,
				   ctx->conflict_seq);
	if (err) {
		if (!node_has_error(ctx->node))
			node_store_fail(ctx->node, err, "committing");
		apply_abort(ctx);
		return err;
	}
	err = store_commit(ctx->txn);
	ctx->txn = NULL;
	if (err)
		node_store_fail(ctx->node, err, "committing");
	apply_abort(ctx);
	return err;
}

void apply_abort(apply_ctx *ctx)
{
	store_abort(ctx->txn);
	ctx->txn = NULL;
	free(ctx->chains);
	free(ctx->counts);
	msgpack_sbuffer_destroy(&ctx->scratch);
	msgpack_sbuffer_init(&ctx->scratch);
	ctx->chains = NULL;
	ctx->counts = NULL;
	ctx->nchains = ctx->ncounts = 0;
}
