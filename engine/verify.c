/*
 * verify.c — ferry_verify(): the store's fsck.
 *
 * 1. Every chain: entries 1..seq present and consecutive, each decodes,
 *    each links to the hash of the one before, the last hash is the stored
 *    head, every stored signature verifies and the head is signed.
 * 2. No log entry outside a chain; one arrival index entry per log entry.
 * 3. All entries are merged afresh into a scratch store beside the node;
 *    its records and live counts must equal the node's byte for byte.
 * The node's read transaction stays open for the whole check.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apply.h"
#include "codec.h"

/* Commit the scratch store this often to keep its transaction small. */
#define VERIFY_COMMIT_EVERY 10000

typedef struct verify_ctx {
	ferry_node *node;
	store_txn *txn; /* the node, read-only */
	store *scratch;
	store_txn *stxn; /* the scratch store, writing */
	uint64_t pending;
	msgpack_sbuffer buf;
	ferry_verify_report *report;
} verify_ctx;

static ferry_err chain_fail(verify_ctx *v, ferry_err err, const uint8_t *origin,
			    const char *scope, uint64_t seq, const char *what)
{
	char id[9];
	node_short_id(id, origin);
	return node_fail(v->node, err,
			 "chain of origin %s, scope %s, seq %llu: %s", id,
			 scope, (unsigned long long)seq, what);
}

static ferry_err scratch_merge(verify_ctx *v, const char *scope,
			       const changelog_entry *e, const uint8_t *origin)
{
	int delta;
	ferry_err err;
	if (!v->stxn) {
		err = store_begin(&v->stxn, v->scratch, 1);
		if (err)
			return err;
	}
	err = apply_merge_record(v->stxn, scope, e, origin, 0, &v->buf, 0,
				 &delta, NULL, NULL);
	if (!err && ++v->pending >= VERIFY_COMMIT_EVERY) {
		err = store_commit(v->stxn);
		v->stxn = NULL;
		v->pending = 0;
	}
	return err;
}

/* Step 1 for one chain, merging its entries into the scratch store. */
static ferry_err check_chain(verify_ctx *v, store_val ck, store_val cv)
{
	uint8_t origin[FERRY_PUBLIC_KEY_BYTES], prev[FERRY_HASH_BYTES] = {0};
	uint8_t start[16], idkey[8];
	char scope[FERRY_MAX_SCOPE_BYTES + 1];
	store_cursor *log = NULL, *sigs = NULL;
	uint64_t id, seq, signed_head = 0;
	store_val k, val, sk, sv, idv;
	changelog_entry e;
	ferry_err err;

	if (ck.len <= FERRY_PUBLIC_KEY_BYTES || ck.len > APPLY_CHAIN_KEY_MAX ||
	    cv.len != APPLY_CHAIN_VALUE_BYTES)
		return node_fail(v->node, FERRY_E_CORRUPT,
				 "malformed chain record");
	memcpy(origin, ck.data, FERRY_PUBLIC_KEY_BYTES);
	memcpy(scope, (const uint8_t *)ck.data + FERRY_PUBLIC_KEY_BYTES,
	       ck.len - FERRY_PUBLIC_KEY_BYTES);
	scope[ck.len - FERRY_PUBLIC_KEY_BYTES] = '\0';
	id = codec_get_be64(cv.data);
	seq = codec_get_be64((const uint8_t *)cv.data + 8);
	codec_put_be64(idkey, id);
	err = store_get(v->txn, DB_CHAIN_IDS, STORE_VAL(idkey, 8), &idv);
	if (err || idv.len != ck.len || memcmp(idv.data, ck.data, ck.len))
		return chain_fail(v, FERRY_E_CORRUPT, origin, scope, 0,
				  "chain id index does not match");

	changelog_entry_init(&e);
	err = store_cursor_open(&log, v->txn, DB_LOG);
	if (!err)
		err = store_cursor_open(&sigs, v->txn, DB_SIGS);
	apply_log_key(start, id, 1);
	k = STORE_VAL(start, 16);
	sk = STORE_VAL(start, 16);
	if (!err)
		err = store_cursor_get(log, STORE_AT_OR_AFTER, &k, &val);
	ferry_err serr =
		err ? err : store_cursor_get(sigs, STORE_AT_OR_AFTER, &sk, &sv);
	for (uint64_t s = 1; !err && s <= seq; s++) {
		uint8_t hash[FERRY_HASH_BYTES];
		if (k.len != 16 || codec_get_be64(k.data) != id ||
		    codec_get_be64((const uint8_t *)k.data + 8) != s) {
			err = chain_fail(v, FERRY_E_CORRUPT, origin, scope, s,
					 "entry missing");
			break;
		}
		if (changelog_entry_decode(&e, val.data, val.len) ||
		    e.seq != s) {
			err = chain_fail(v, FERRY_E_CORRUPT, origin, scope, s,
					 "entry does not decode");
			break;
		}
		if (memcmp(e.prev, prev, FERRY_HASH_BYTES)) {
			err = chain_fail(v, FERRY_E_BAD_LINK, origin, scope, s,
					 "entry does not link to the one "
					 "before it");
			break;
		}
		changelog_hash(hash, val.data, val.len);
		if (!serr && sk.len == 16 && codec_get_be64(sk.data) == id &&
		    codec_get_be64((const uint8_t *)sk.data + 8) == s) {
			if (sv.len != FERRY_SIGNATURE_BYTES ||
			    !changelog_head_verify(sv.data, origin, scope, s,
						   hash)) {
				err = chain_fail(v, FERRY_E_BAD_SIGNATURE,
						 origin, scope, s,
						 "stored signature does not "
						 "verify");
				break;
			}
			signed_head = s;
			v->report->signatures++;
			serr = store_cursor_get(sigs, STORE_NEXT, &sk, &sv);
		}
		err = scratch_merge(v, scope, &e, origin);
		if (err) {
			err = node_fail(v->node, err, "re-merging: %s",
					ferry_strerror(err));
			break;
		}
		memcpy(prev, hash, FERRY_HASH_BYTES);
		v->report->changes++;
		err = store_cursor_get(log, STORE_NEXT, &k, &val);
		if (err == FERRY_E_NOT_FOUND) {
			k.len = 0;
			err = FERRY_OK;
		}
	}
	if (!err && seq &&
	    memcmp(prev, (const uint8_t *)cv.data + 16, FERRY_HASH_BYTES))
		err = chain_fail(v, FERRY_E_CORRUPT, origin, scope, seq,
				 "stored head is not the last entry's hash");
	if (!err && signed_head != seq)
		err = chain_fail(v, FERRY_E_BAD_SIGNATURE, origin, scope, seq,
				 "the chain head is not signed");
	if (!err && k.len == 16 && codec_get_be64(k.data) == id)
		err = chain_fail(v, FERRY_E_CORRUPT, origin, scope, seq + 1,
				 "log holds entries past the chain head");
	changelog_entry_clear(&e);
	store_cursor_close(log);
	store_cursor_close(sigs);
	v->report->chains++;
	return err;
}

static ferry_err check_chains(verify_ctx *v)
{
	store_cursor *cur = NULL;
	store_val k, val;
	uint64_t log_entries = 0, arrivals = 0;
	ferry_err err = store_cursor_open(&cur, v->txn, DB_CHAINS);
	if (!err)
		err = store_cursor_get(cur, STORE_FIRST, &k, &val);
	while (!err) {
		err = check_chain(v, k, val);
		if (!err)
			err = store_cursor_get(cur, STORE_NEXT, &k, &val);
	}
	store_cursor_close(cur);
	if (err != FERRY_E_NOT_FOUND)
		return err;
	err = store_entries(v->txn, DB_LOG, &log_entries);
	if (!err)
		err = store_entries(v->txn, DB_ARRIVAL, &arrivals);
	if (err)
		return node_store_fail(v->node, err, "counting the log");
	if (log_entries != v->report->changes)
		return node_fail(v->node, FERRY_E_CORRUPT,
				 "log holds %llu entries, chains account for "
				 "%llu",
				 (unsigned long long)log_entries,
				 (unsigned long long)v->report->changes);
	if (arrivals != log_entries)
		return node_fail(v->node, FERRY_E_CORRUPT,
				 "arrival index holds %llu entries, the log "
				 "%llu",
				 (unsigned long long)arrivals,
				 (unsigned long long)log_entries);
	return FERRY_OK;
}

/* Every arrival entry must name a log entry. */
static ferry_err check_arrivals(verify_ctx *v)
{
	store_cursor *cur = NULL;
	store_val k, val, entry;
	uint64_t last = 0, meta = 0;
	ferry_err err = store_cursor_open(&cur, v->txn, DB_ARRIVAL);
	if (!err)
		err = store_cursor_get(cur, STORE_FIRST, &k, &val);
	while (!err) {
		if (k.len != 8 || val.len != 16 ||
		    store_get(v->txn, DB_LOG, val, &entry) != FERRY_OK) {
			err = node_fail(
				v->node, FERRY_E_CORRUPT,
				"arrival cursor %llu names no log "
				"entry",
				k.len == 8 ? (unsigned long long)codec_get_be64(
						     k.data)
					   : 0ULL);
			break;
		}
		last = codec_get_be64(k.data);
		err = store_cursor_get(cur, STORE_NEXT, &k, &val);
	}
	store_cursor_close(cur);
	if (err != FERRY_E_NOT_FOUND)
		return err;
	err = meta_get_u64(v->txn, META_ARRIVAL, &meta);
	if (err)
		return node_store_fail(v->node, err, "reading the cursor");
	if (meta < last)
		return node_fail(v->node, FERRY_E_CORRUPT,
				 "arrival cursor %llu is behind the index "
				 "(%llu)",
				 (unsigned long long)meta,
				 (unsigned long long)last);
	return FERRY_OK;
}

/* Live counts per collection from the scratch records, stored in the
 * scratch DB_COUNTS (records are sorted, so each collection is a run). */
static ferry_err count_scratch(verify_ctx *v)
{
	store_cursor *cur = NULL;
	store_val k, val;
	char group[APPLY_RECORD_KEY_MAX];
	size_t glen = 0;
	uint64_t n = 0;
	merge_state st;
	ferry_err err = store_begin(&v->stxn, v->scratch, 1);
	if (!err)
		err = store_cursor_open(&cur, v->stxn, DB_RECORDS);
	if (!err)
		err = store_cursor_get(cur, STORE_FIRST, &k, &val);
	for (;;) {
		const char *sep = NULL;
		size_t len = 0;
		if (!err) {
			sep = memchr(k.data, 0, k.len);
			sep = sep ? memchr(sep + 1, 0,
					   k.len - (size_t)(sep + 1 -
							    (const char *)
								    k.data))
				  : NULL;
			if (!sep) {
				err = FERRY_E_CORRUPT;
				break;
			}
			len = (size_t)(sep - (const char *)k.data);
		}
		if (glen &&
		    (err || len != glen || memcmp(group, k.data, len))) {
			uint8_t be[8];
			codec_put_be64(be, n);
			ferry_err perr = store_put(v->stxn, DB_COUNTS,
						   STORE_VAL(group, glen),
						   STORE_VAL(be, 8));
			if (perr) {
				err = perr;
				break;
			}
			glen = 0;
		}
		if (err)
			break;
		if (!glen) {
			memcpy(group, k.data, len);
			glen = len;
			n = 0;
		}
		apply_record_value rv;
		err = apply_record_split(&rv, val.data, val.len);
		if (!err)
			err = merge_state_decode(&st, rv.state, rv.state_len);
		if (err)
			break;
		n += merge_state_live(&st);
		merge_state_clear(&st);
		err = store_cursor_get(cur, STORE_NEXT, &k, &val);
	}
	store_cursor_close(cur);
	if (err == FERRY_E_NOT_FOUND)
		err = store_commit(v->stxn);
	else
		store_abort(v->stxn);
	v->stxn = NULL;
	return err;
}

/* The part of a value that must match a fresh merge: for records the
 * merged state without its node-local trailer of cursors. */
static store_val comparable(store_db db, store_val v)
{
	apply_record_value rv;
	if (db == DB_RECORDS && apply_record_split(&rv, v.data, v.len) == 0)
		return STORE_VAL(rv.state, rv.state_len);
	return v;
}

/* Equal databases, except that `zero_ok` treats a be64 zero value as
 * absent (a collection whose records were all deleted keeps a 0 count). */
static ferry_err compare_db(verify_ctx *v, store_db db, int zero_ok,
			    const char *what, uint64_t *entries)
{
	static const uint8_t zero[8] = {0};
	store_txn *stxn = NULL;
	store_cursor *a = NULL, *b = NULL;
	store_val ak, av, bk, bv;
	ferry_err ea, eb, err = store_begin(&stxn, v->scratch, 0);
	if (!err)
		err = store_cursor_open(&a, v->txn, db);
	if (!err)
		err = store_cursor_open(&b, stxn, db);
	if (err)
		goto out;
	ea = store_cursor_get(a, STORE_FIRST, &ak, &av);
	eb = store_cursor_get(b, STORE_FIRST, &bk, &bv);
	for (;;) {
		while (zero_ok && !ea && av.len == 8 &&
		       !memcmp(av.data, zero, 8))
			ea = store_cursor_get(a, STORE_NEXT, &ak, &av);
		while (zero_ok && !eb && bv.len == 8 &&
		       !memcmp(bv.data, zero, 8))
			eb = store_cursor_get(b, STORE_NEXT, &bk, &bv);
		if (ea == FERRY_E_NOT_FOUND && eb == FERRY_E_NOT_FOUND)
			break;
		if ((ea && ea != FERRY_E_NOT_FOUND) ||
		    (eb && eb != FERRY_E_NOT_FOUND)) {
			err = ea ? ea : eb;
			break;
		}
		store_val ac = ea ? av : comparable(db, av);
		store_val bc = eb ? bv : comparable(db, bv);
		if (ea || eb || ak.len != bk.len ||
		    memcmp(ak.data, bk.data, ak.len) || ac.len != bc.len ||
		    memcmp(ac.data, bc.data, ac.len)) {
			const store_val *key = ea ? &bk : &ak;
			char shown[APPLY_RECORD_KEY_MAX + 1];
			size_t n = key->len < APPLY_RECORD_KEY_MAX
					   ? key->len
					   : APPLY_RECORD_KEY_MAX;
			for (size_t i = 0; i < n; i++) {
				char c = ((const char *)key->data)[i];
				shown[i] = c ? c : '/';
			}
			shown[n] = '\0';
			err = node_fail(v->node, FERRY_E_CORRUPT,
					"%s of %s differ from a fresh merge of "
					"the log",
					what, shown);
			break;
		}
		if (entries)
			(*entries)++;
		ea = store_cursor_get(a, STORE_NEXT, &ak, &av);
		eb = store_cursor_get(b, STORE_NEXT, &bk, &bv);
	}
out:
	store_cursor_close(a);
	store_cursor_close(b);
	store_abort(stxn);
	return err;
}

static void remove_scratch(const char *dir)
{
	char path[4300];
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/lock.mdb", dir);
	unlink(path);
	rmdir(dir);
}

ferry_err ferry_verify(ferry_node *node, ferry_verify_report *report)
{
	ferry_verify_report local;
	verify_ctx v;
	char dir[4200], detail[256];
	ferry_err err;

	if (!node)
		return FERRY_E_INVALID;
	node_clear_error(node);
	if (!report)
		report = &local;
	memset(report, 0, sizeof(*report));
	memset(&v, 0, sizeof(v));
	v.node = node;
	v.report = report;
	msgpack_sbuffer_init(&v.buf);
	snprintf(dir, sizeof(dir), "%s/.verify-XXXXXX", node->dir);
	if (!mkdtemp(dir))
		return node_fail(node, FERRY_E_IO,
				 "cannot create a scratch directory in %s",
				 node->dir);
	err = store_open(&v.scratch, dir, 0, 1, detail, sizeof(detail));
	if (err) {
		remove_scratch(dir);
		return node_fail(node, err, "scratch store: %s", detail);
	}
	err = store_begin(&v.txn, node->store, 0);
	if (err)
		err = node_store_fail(node, err, "starting a read");
	if (!err)
		err = check_chains(&v);
	if (!err)
		err = check_arrivals(&v);
	if (!err && v.stxn) {
		err = store_commit(v.stxn);
		v.stxn = NULL;
	}
	if (!err)
		err = count_scratch(&v);
	if (!err)
		err = compare_db(&v, DB_RECORDS, 0, "records",
				 &report->records);
	if (!err)
		err = compare_db(&v, DB_COUNTS, 1, "live counts", NULL);
	if (err && !node_has_error(node))
		node_fail(node, err, "verify: %s", ferry_strerror(err));
	store_abort(v.stxn);
	store_abort(v.txn);
	store_close(v.scratch);
	remove_scratch(dir);
	msgpack_sbuffer_destroy(&v.buf);
	return err;
}
