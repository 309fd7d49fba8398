/*
 * export.c — the segments a remote vector lacks, in bounded batches.
 *
 * ferry_export_begin() fixes a plan: for every chain the remote is behind
 * on, the range (remote seq, our seq]. Each ferry_export_next() opens a
 * short read transaction, fills one batch with segments that each end at a
 * signed head, and remembers where it stopped, so no read transaction (and
 * no page it pins) outlives a call.
 */
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "codec.h"
#include "vector.h"

typedef struct export_range {
	uint64_t chain_id;
	uint8_t origin[FERRY_PUBLIC_KEY_BYTES];
	char scope[FERRY_MAX_SCOPE_BYTES + 1];
	uint64_t next_seq, last_seq;
} export_range;

struct ferry_export {
	ferry_node *node;
	size_t batch_bytes;
	export_range *ranges;
	size_t nranges, cur;
	uint64_t remaining;
	/* Entries of the segment being built (pointers into the map). */
	const void **entries;
	size_t *entry_lens;
	size_t entries_cap;
};

static int scope_wanted(const ferry_export_options *opts, const char *scope)
{
	if (!opts || !opts->scopes)
		return 1;
	for (size_t i = 0; i < opts->nscopes; i++)
		if (opts->scopes[i] && !strcmp(opts->scopes[i], scope))
			return 1;
	return 0;
}

void ferry_export_free(ferry_export *exp)
{
	if (!exp)
		return;
	free(exp->ranges);
	free(exp->entries);
	free(exp->entry_lens);
	free(exp);
}

static ferry_err add_range(ferry_export *exp, const export_range *r)
{
	if ((exp->nranges & (exp->nranges - 1)) == 0) {
		size_t cap = exp->nranges ? 2 * exp->nranges : 1;
		export_range *grown =
			realloc(exp->ranges, cap * sizeof(*grown));
		if (!grown)
			return FERRY_E_NOMEM;
		exp->ranges = grown;
	}
	exp->ranges[exp->nranges++] = *r;
	exp->remaining += r->last_seq - r->next_seq + 1;
	return FERRY_OK;
}

ferry_err ferry_export_begin(ferry_export **out, ferry_node *node,
			     const ferry_vector *remote,
			     const ferry_export_options *opts)
{
	ferry_vector *held = NULL;
	ferry_export *exp;
	ferry_err err;

	*out = NULL;
	if (!node)
		return FERRY_E_INVALID;
	if (opts && opts->version != FERRY_EXPORT_OPTIONS_VERSION)
		return node_fail(node, FERRY_E_VERSION,
				 "ferry_export_options version %u, expected %d",
				 opts->version, FERRY_EXPORT_OPTIONS_VERSION);
	exp = calloc(1, sizeof(*exp));
	if (!exp)
		return FERRY_E_NOMEM;
	exp->node = node;
	exp->batch_bytes = opts && opts->batch_bytes
				   ? opts->batch_bytes
				   : FERRY_DEFAULT_BATCH_BYTES;
	if (exp->batch_bytes > FERRY_MAX_BATCH_BYTES)
		exp->batch_bytes = FERRY_MAX_BATCH_BYTES;
	err = ferry_vector_get(&held, node);
	if (err) {
		ferry_export_free(exp);
		return err;
	}
	/* Chain ids are not in the vector: look each up as we plan. */
	store_txn *txn = NULL;
	err = store_begin(&txn, node->store, 0);
	for (size_t i = 0; i < held->n && !err; i++) {
		const vector_item *it = &held->items[i];
		uint64_t have = vector_seq(remote, it->origin, it->scope);
		uint8_t key[APPLY_CHAIN_KEY_MAX];
		export_range r;
		store_val v;
		if (have >= it->seq || !scope_wanted(opts, it->scope) ||
		    (opts && opts->filter &&
		     !opts->filter(it->origin, it->scope,
				   opts->filter_payload)))
			continue;
		size_t klen = apply_chain_key(key, it->origin, it->scope);
		err = store_get(txn, DB_CHAINS, STORE_VAL(key, klen), &v);
		if (err)
			break;
		memset(&r, 0, sizeof(r));
		r.chain_id = codec_get_be64(v.data);
		memcpy(r.origin, it->origin, FERRY_PUBLIC_KEY_BYTES);
		memcpy(r.scope, it->scope, sizeof(r.scope));
		r.next_seq = have + 1;
		r.last_seq = it->seq;
		err = add_range(exp, &r);
	}
	store_abort(txn);
	ferry_vector_free(held);
	if (err) {
		ferry_export_free(exp);
		return node_store_fail(node, err, "planning an export");
	}
	*out = exp;
	return FERRY_OK;
}

uint64_t ferry_export_remaining(const ferry_export *exp)
{
	return exp->remaining;
}

static ferry_err hold_entry(ferry_export *exp, size_t n, store_val v)
{
	if (n == exp->entries_cap) {
		size_t cap = exp->entries_cap ? 2 * exp->entries_cap : 256;
		const void **e = realloc(exp->entries, cap * sizeof(*e));
		if (!e)
			return FERRY_E_NOMEM;
		exp->entries = e;
		size_t *l = realloc(exp->entry_lens, cap * sizeof(*l));
		if (!l)
			return FERRY_E_NOMEM;
		exp->entry_lens = l;
		exp->entries_cap = cap;
	}
	exp->entries[n] = v.data;
	exp->entry_lens[n] = v.len;
	return FERRY_OK;
}

/* Add the next segment of range `r` to the batch, or return FERRY_E_DONE
 * if the batch is full. Entries are read up to the last signed head that
 * keeps the batch within its size; the first segment of a batch may exceed
 * it if its first signed head lies beyond the limit. */
static ferry_err add_segment(ferry_export *exp, store_txn *txn, export_range *r,
			     changelog_batch_writer *w)
{
	store_cursor *log = NULL, *sigs = NULL;
	uint8_t start[16];
	const void *sig = NULL;
	size_t n = 0, cut = 0, bytes = 0, cut_bytes = 0;
	uint64_t next_signed = 0;
	store_val k, v, sk, sv;
	ferry_err err;

	err = store_cursor_open(&log, txn, DB_LOG);
	if (!err)
		err = store_cursor_open(&sigs, txn, DB_SIGS);
	apply_log_key(start, r->chain_id, r->next_seq);
	sk = STORE_VAL(start, 16);
	if (!err)
		err = store_cursor_get(sigs, STORE_AT_OR_AFTER, &sk, &sv);
	k = STORE_VAL(start, 16);
	if (!err)
		err = store_cursor_get(log, STORE_AT_OR_AFTER, &k, &v);
	for (uint64_t seq = r->next_seq; !err && seq <= r->last_seq; seq++) {
		if (k.len != 16 || codec_get_be64(k.data) != r->chain_id ||
		    codec_get_be64((const uint8_t *)k.data + 8) != seq) {
			err = FERRY_E_CORRUPT;
			break;
		}
		/* The next signed sequence at or after `seq` in this chain. */
		while (!err && next_signed < seq) {
			if (sk.len != 16 ||
			    codec_get_be64(sk.data) != r->chain_id) {
				next_signed = UINT64_MAX;
				break;
			}
			next_signed =
				codec_get_be64((const uint8_t *)sk.data + 8);
			if (next_signed < seq) {
				err = store_cursor_get(sigs, STORE_NEXT, &sk,
						       &sv);
				if (err == FERRY_E_NOT_FOUND) {
					err = FERRY_OK;
					next_signed = UINT64_MAX;
				}
			}
		}
		if (err)
			break;
		if (cut && changelog_writer_size(w) + bytes + v.len + 16 >
				   exp->batch_bytes)
			break;
		err = hold_entry(exp, n, v);
		if (err)
			break;
		n++;
		bytes += v.len + 5;
		if (seq == next_signed) {
			if (sv.len != FERRY_SIGNATURE_BYTES) {
				err = FERRY_E_CORRUPT;
				break;
			}
			cut = n;
			cut_bytes = bytes;
			sig = sv.data;
		}
		if (seq < r->last_seq)
			err = store_cursor_get(log, STORE_NEXT, &k, &v);
	}
	if (err == FERRY_E_NOT_FOUND)
		err = FERRY_E_CORRUPT;
	if (!err && !cut)
		err = FERRY_E_CORRUPT; /* the held head is always signed */
	if (!err && w->nsegments &&
	    changelog_writer_size(w) + cut_bytes + 128 > exp->batch_bytes)
		err = FERRY_E_DONE;
	if (!err)
		err = changelog_writer_add(w, r->origin, r->scope, exp->entries,
					   exp->entry_lens, cut, sig);
	if (!err) {
		r->next_seq += cut;
		exp->remaining -= cut;
	}
	store_cursor_close(sigs);
	store_cursor_close(log);
	return err;
}

ferry_err ferry_export_next(ferry_export *exp, void **out, size_t *out_len,
			    uint64_t *out_changes)
{
	changelog_batch_writer w;
	uint64_t before = exp->remaining;
	store_txn *txn = NULL;
	ferry_err err;

	*out = NULL;
	*out_len = 0;
	if (out_changes)
		*out_changes = 0;
	node_clear_error(exp->node);
	if (exp->cur >= exp->nranges)
		return FERRY_E_DONE;
	err = store_begin(&txn, exp->node->store, 0);
	if (err)
		return node_store_fail(exp->node, err, "exporting");
	changelog_writer_init(&w);
	/* At least one segment per batch, whatever the target size: a batch
	 * without changes would never end the export. */
	while (exp->cur < exp->nranges &&
	       (w.nsegments == 0 ||
		changelog_writer_size(&w) < exp->batch_bytes)) {
		export_range *r = &exp->ranges[exp->cur];
		err = add_segment(exp, txn, r, &w);
		if (err)
			break;
		if (r->next_seq > r->last_seq)
			exp->cur++;
	}
	if (err == FERRY_E_DONE)
		err = FERRY_OK;
	if (!err)
		err = changelog_writer_finish(&w, out, out_len);
	changelog_writer_clear(&w);
	store_abort(txn);
	if (err == FERRY_E_CORRUPT) {
		char id[9];
		node_short_id(id, exp->ranges[exp->cur].origin);
		return node_fail(
			exp->node, err,
			"the log of origin %s, scope %s is damaged "
			"near seq %llu; run ferry verify",
			id, exp->ranges[exp->cur].scope,
			(unsigned long long)exp->ranges[exp->cur].next_seq);
	}
	if (err)
		return node_store_fail(exp->node, err, "exporting");
	if (out_changes)
		*out_changes = before - exp->remaining;
	return FERRY_OK;
}
