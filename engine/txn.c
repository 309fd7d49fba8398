/*
 * txn.c — local transactions: buffer writes, then commit them as signed
 * log entries through the apply path.
 */
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "codec.h"
#include "kv.h"

/* Sign the chain head at least this often within one commit, so exports
 * can cut segments well below FERRY_DEFAULT_BATCH_BYTES. */
#define SIGN_INTERVAL_BYTES (FERRY_DEFAULT_BATCH_BYTES / 4)

typedef struct txn_write {
	char *scope, *collection, *key;
	ferry_op op;
	ferry_field *fields; /* sorted by name, unique; point into blob */
	size_t nfields;
	char *blob; /* names and canonical values */
} txn_write;

/* A kv write that commits with the data (ferry_txn_kv_put). */
typedef struct txn_kv {
	char *table, *key;
	void *value;
	size_t len;
} txn_kv;

struct ferry_txn {
	ferry_node *node;
	txn_write *writes;
	size_t nwrites, cap;
	size_t bytes;
	txn_kv *kv;
	size_t nkv;
};

ferry_err ferry_txn_begin(ferry_txn **out, ferry_node *node)
{
	ferry_txn *txn;
	*out = NULL;
	if (!node)
		return FERRY_E_INVALID;
	node_clear_error(node);
	txn = calloc(1, sizeof(*txn));
	if (!txn)
		return FERRY_E_NOMEM;
	txn->node = node;
	*out = txn;
	return FERRY_OK;
}

static void write_free(txn_write *w)
{
	free(w->scope);
	free(w->collection);
	free(w->key);
	free(w->fields);
	free(w->blob);
}

void ferry_txn_abort(ferry_txn *txn)
{
	if (!txn)
		return;
	for (size_t i = 0; i < txn->nwrites; i++)
		write_free(&txn->writes[i]);
	free(txn->writes);
	for (size_t i = 0; i < txn->nkv; i++) {
		free(txn->kv[i].table);
		free(txn->kv[i].key);
		free(txn->kv[i].value);
	}
	free(txn->kv);
	free(txn);
}

ferry_err ferry_txn_kv_put(ferry_txn *txn, const char *table, const char *key,
			   const void *value, size_t len)
{
	txn_kv *grown, *kv;
	ferry_err err;
	if (!txn || (!value && len))
		return FERRY_E_INVALID;
	node_clear_error(txn->node);
	err = kv_check(txn->node, table, key, len);
	if (err)
		return err;
	grown = realloc(txn->kv, (txn->nkv + 1) * sizeof(*grown));
	if (!grown)
		return FERRY_E_NOMEM;
	txn->kv = grown;
	kv = &grown[txn->nkv];
	kv->table = strdup(table);
	kv->key = strdup(key);
	kv->value = malloc(len ? len : 1);
	kv->len = len;
	if (!kv->table || !kv->key || !kv->value) {
		free(kv->table);
		free(kv->key);
		free(kv->value);
		return FERRY_E_NOMEM;
	}
	if (len)
		memcpy(kv->value, value, len);
	txn->nkv++;
	return FERRY_OK;
}

static ferry_err check_target(ferry_txn *txn, const char *scope,
			      const char *collection, const char *key)
{
	ferry_node *node = txn->node;
	ferry_err err;
	err = node_check_name(node, "scope", scope, FERRY_MAX_SCOPE_BYTES,
			      "FERRY_MAX_SCOPE_BYTES");
	if (!err)
		err = node_check_name(node, "collection", collection,
				      FERRY_MAX_COLLECTION_BYTES,
				      "FERRY_MAX_COLLECTION_BYTES");
	if (!err)
		err = node_check_name(node, "record key", key,
				      FERRY_MAX_KEY_BYTES,
				      "FERRY_MAX_KEY_BYTES");
	if (!err && txn->nwrites >= FERRY_MAX_WRITES_PER_TXN)
		err = node_fail(node, FERRY_E_LIMIT,
				"a transaction holds at most "
				"FERRY_MAX_WRITES_PER_TXN (%d) writes",
				FERRY_MAX_WRITES_PER_TXN);
	return err;
}

static ferry_err add_write(ferry_txn *txn, txn_write *w, const char *scope,
			   const char *collection, const char *key)
{
	if (txn->nwrites == txn->cap) {
		size_t cap = txn->cap ? 2 * txn->cap : 16;
		txn_write *grown = realloc(txn->writes, cap * sizeof(*grown));
		if (!grown)
			return FERRY_E_NOMEM;
		txn->writes = grown;
		txn->cap = cap;
	}
	w->scope = strdup(scope);
	w->collection = strdup(collection);
	w->key = strdup(key);
	if (!w->scope || !w->collection || !w->key)
		return FERRY_E_NOMEM;
	txn->writes[txn->nwrites++] = *w;
	return FERRY_OK;
}

typedef struct sort_item {
	const char *name;
	size_t index;
} sort_item;

/* By name; equal names end up adjacent, which is how duplicates show. */
static int cmp_item(const void *a, const void *b)
{
	const sort_item *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	if (c)
		return c;
	return x->index < y->index ? -1 : (x->index > y->index);
}

/* Copy the fields into one blob: names sorted and unique, values
 * canonical. */
static ferry_err pack_fields(ferry_txn *txn, txn_write *w,
			     const ferry_field *fields, size_t nfields)
{
	ferry_node *node = txn->node;
	sort_item *items = calloc(nfields, sizeof(*items));
	size_t *name_off = calloc(nfields, sizeof(*name_off));
	size_t *val_off = calloc(nfields + 1, sizeof(*val_off));
	msgpack_sbuffer blob;
	ferry_err err = FERRY_OK;
	size_t n = 0;

	msgpack_sbuffer_init(&blob);
	w->fields = calloc(nfields, sizeof(*w->fields));
	if (!items || !name_off || !val_off || !w->fields) {
		err = FERRY_E_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < nfields && !err; i++) {
		items[i].name = fields[i].name;
		items[i].index = i;
		err = node_check_name(node, "field name", fields[i].name,
				      FERRY_MAX_FIELD_NAME_BYTES,
				      "FERRY_MAX_FIELD_NAME_BYTES");
		if (!err && (!fields[i].value ||
			     fields[i].value_len > FERRY_MAX_VALUE_BYTES))
			err = node_fail(node,
					fields[i].value ? FERRY_E_LIMIT
							: FERRY_E_INVALID,
					"field %s: value of %zu bytes; the "
					"limit FERRY_MAX_VALUE_BYTES is %d",
					fields[i].name, fields[i].value_len,
					FERRY_MAX_VALUE_BYTES);
	}
	if (err)
		goto out;
	qsort(items, nfields, sizeof(*items), cmp_item);
	for (size_t i = 0; i < nfields && !err; i++) {
		const ferry_field *f = &fields[items[i].index];
		size_t len = strlen(f->name) + 1;
		if (i + 1 < nfields && !strcmp(f->name, items[i + 1].name)) {
			err = node_fail(node, FERRY_E_INVALID,
					"field %s appears twice in one write",
					f->name);
			break;
		}
		name_off[n] = blob.size;
		if (msgpack_sbuffer_write(&blob, f->name, len)) {
			err = FERRY_E_NOMEM;
			break;
		}
		val_off[n] = blob.size;
		err = codec_canonical(&blob, f->value, f->value_len);
		if (err == FERRY_E_INVALID)
			err = node_fail(node, err,
					"field %s: value is not exactly one "
					"msgpack object",
					f->name);
		else if (err == FERRY_E_LIMIT)
			err = node_fail(node, err,
					"field %s: value nests deeper than the "
					"limit FERRY_MAX_VALUE_DEPTH (%d)",
					f->name, FERRY_MAX_VALUE_DEPTH);
		n++;
	}
	val_off[n] = blob.size;
	if (err)
		goto out;
	/* Point into the blob only now: it moved while growing. */
	for (size_t i = 0; i < n; i++) {
		size_t end = (i + 1 < n) ? name_off[i + 1] : blob.size;
		w->fields[i].name = blob.data + name_off[i];
		w->fields[i].value = blob.data + val_off[i];
		w->fields[i].value_len = end - val_off[i];
	}
	w->nfields = n;
	w->blob = msgpack_sbuffer_release(&blob);
out:
	msgpack_sbuffer_destroy(&blob);
	free(items);
	free(name_off);
	free(val_off);
	return err;
}

ferry_err ferry_txn_put(ferry_txn *txn, const char *scope,
			const char *collection, const char *key,
			const ferry_field *fields, size_t nfields)
{
	txn_write w = {0};
	ferry_err err;
	size_t bytes;

	if (!txn || (!fields && nfields))
		return FERRY_E_INVALID;
	node_clear_error(txn->node);
	err = check_target(txn, scope, collection, key);
	if (err)
		return err;
	if (nfields == 0)
		return node_fail(txn->node, FERRY_E_INVALID,
				 "a put needs at least one field");
	if (nfields > FERRY_MAX_FIELDS_PER_WRITE)
		return node_fail(txn->node, FERRY_E_LIMIT,
				 "%zu fields in one write; the limit "
				 "FERRY_MAX_FIELDS_PER_WRITE is %d",
				 nfields, FERRY_MAX_FIELDS_PER_WRITE);
	w.op = FERRY_OP_PUT;
	err = pack_fields(txn, &w, fields, nfields);
	bytes = 0;
	for (size_t i = 0; !err && i < w.nfields; i++)
		bytes += strlen(w.fields[i].name) + w.fields[i].value_len;
	if (!err && txn->bytes + bytes > FERRY_MAX_TXN_BYTES)
		err = node_fail(txn->node, FERRY_E_LIMIT,
				"transaction would hold %zu bytes; the limit "
				"FERRY_MAX_TXN_BYTES is %d",
				txn->bytes + bytes, FERRY_MAX_TXN_BYTES);
	if (!err)
		err = add_write(txn, &w, scope, collection, key);
	if (err) {
		write_free(&w);
		return err;
	}
	txn->bytes += bytes;
	return FERRY_OK;
}

ferry_err ferry_txn_delete(ferry_txn *txn, const char *scope,
			   const char *collection, const char *key)
{
	txn_write w = {0};
	ferry_err err;
	if (!txn)
		return FERRY_E_INVALID;
	node_clear_error(txn->node);
	err = check_target(txn, scope, collection, key);
	if (err)
		return err;
	w.op = FERRY_OP_DELETE;
	err = add_write(txn, &w, scope, collection, key);
	if (err)
		write_free(&w);
	return err;
}

static ferry_err sign_head(apply_ctx *ctx, apply_chain *chain)
{
	uint8_t sig[FERRY_SIGNATURE_BYTES];
	changelog_head_sign(sig, ctx->node->secret_key, chain->origin,
			    chain->scope, chain->seq, chain->head);
	return apply_sign(ctx, chain, sig);
}

static ferry_err commit_write(apply_ctx *ctx, const txn_write *w,
			      msgpack_sbuffer *raw)
{
	changelog_entry e;
	apply_chain *chain;
	uint8_t hash[FERRY_HASH_BYTES];
	ferry_err err;

	err = apply_chain_get(ctx, ctx->node->public_key, w->scope, 1, &chain);
	if (err)
		return node_store_fail(ctx->node, err, "loading a chain");
	changelog_entry_init(&e);
	e.seq = chain->seq + 1;
	memcpy(e.prev, chain->head, FERRY_HASH_BYTES);
	e.hlc = hlc_tick(&ctx->clock, ctx->wall_ms);
	snprintf(e.collection, sizeof(e.collection), "%s", w->collection);
	snprintf(e.key, sizeof(e.key), "%s", w->key);
	e.op = w->op;
	e.fields = w->fields;
	e.nfields = w->nfields;
	raw->size = 0;
	err = changelog_entry_encode(raw, e.seq, e.prev, e.hlc, e.collection,
				     e.key, e.op, e.fields, e.nfields);
	if (err)
		return err;
	changelog_hash(hash, raw->data, raw->size);
	err = apply_entry(ctx, chain, &e, raw->data, raw->size, hash, 1);
	if (!err && chain->unsigned_bytes >= SIGN_INTERVAL_BYTES)
		err = sign_head(ctx, chain);
	return err;
}

ferry_err ferry_txn_commit(ferry_txn *txn)
{
	return ferry_txn_commit_cursor(txn, NULL);
}

ferry_err ferry_txn_commit_cursor(ferry_txn *txn, uint64_t *last_cursor)
{
	apply_ctx ctx;
	msgpack_sbuffer raw;
	ferry_err err;

	if (last_cursor)
		*last_cursor = 0;
	if (!txn)
		return FERRY_E_INVALID;
	if (txn->nwrites == 0 && txn->nkv == 0) {
		ferry_txn_abort(txn);
		return FERRY_OK;
	}
	msgpack_sbuffer_init(&raw);
	err = apply_begin(&ctx, txn->node);
	for (size_t i = 0; i < txn->nwrites && !err; i++)
		err = commit_write(&ctx, &txn->writes[i], &raw);
	for (size_t i = 0; i < ctx.nchains && !err; i++)
		if (ctx.chains[i].signed_seq != ctx.chains[i].seq)
			err = sign_head(&ctx, &ctx.chains[i]);
	for (size_t i = 0; i < txn->nkv && !err; i++) {
		const txn_kv *kv = &txn->kv[i];
		err = kv_write(ctx.txn, kv->table, kv->key, kv->value, kv->len);
		if (err)
			node_store_fail(txn->node, err, "writing a kv table");
	}
	uint64_t last = txn->nwrites ? ctx.arrival : 0;
	if (!err)
		err = apply_commit(&ctx);
	else
		apply_abort(&ctx);
	if (!err && last_cursor)
		*last_cursor = last;
	msgpack_sbuffer_destroy(&raw);
	ferry_txn_abort(txn);
	return err;
}
