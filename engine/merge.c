/*
 * merge.c — per-field last-writer-wins merge of a record's state (merge.h).
 *
 * Stored state, msgpack array of 3:
 *   [tombstone hlc uint (0: none), tombstone origin bin32 | nil,
 *    {field name str: [hlc uint, origin bin32, value]}]
 */
#include "merge.h"

#include <stdlib.h>
#include <string.h>

#include "codec.h"

int merge_stamp_cmp(const merge_stamp *a, const merge_stamp *b)
{
	if (a->hlc != b->hlc)
		return a->hlc < b->hlc ? -1 : 1;
	return memcmp(a->origin, b->origin, FERRY_PUBLIC_KEY_BYTES);
}

void merge_state_init(merge_state *st)
{
	memset(st, 0, sizeof(*st));
}

static void field_free(merge_field *f)
{
	free(f->name);
	free(f->value);
}

void merge_state_clear(merge_state *st)
{
	for (size_t i = 0; i < st->nfields; i++)
		field_free(&st->fields[i]);
	free(st->fields);
	merge_state_init(st);
}

/* Index of `name`, or -(insertion point) - 1 when absent. */
static long find_field(const merge_state *st, const char *name)
{
	size_t lo = 0, hi = st->nfields;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(st->fields[mid].name, name);
		if (c == 0)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -(long)lo - 1;
}

static ferry_err set_value(merge_field *f, const void *value, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);
	if (!copy)
		return FERRY_E_NOMEM;
	memcpy(copy, value, len);
	free(f->value);
	f->value = copy;
	f->value_len = len;
	return FERRY_OK;
}

static ferry_err insert_field(merge_state *st, size_t at, const char *name,
			      const void *value, size_t len,
			      const merge_stamp *stamp)
{
	merge_field f = {0};
	if (st->nfields == st->cap) {
		size_t cap = st->cap ? st->cap * 2 : 4;
		merge_field *grown = realloc(st->fields, cap * sizeof(*grown));
		if (!grown)
			return FERRY_E_NOMEM;
		st->fields = grown;
		st->cap = cap;
	}
	f.name = strdup(name);
	if (!f.name || set_value(&f, value, len) != FERRY_OK) {
		field_free(&f);
		return FERRY_E_NOMEM;
	}
	f.stamp = *stamp;
	memmove(&st->fields[at + 1], &st->fields[at],
		(st->nfields - at) * sizeof(*st->fields));
	st->fields[at] = f;
	st->nfields++;
	return FERRY_OK;
}

static void report(merge_loss_fn on_loss, void *payload, const char *field,
		   const merge_stamp *loser, const void *value, size_t len,
		   const merge_stamp *winner, int winner_is_delete)
{
	merge_loss loss;
	/* Superseding one's own earlier write is editing, not a conflict. */
	if (!on_loss ||
	    !memcmp(loser->origin, winner->origin, FERRY_PUBLIC_KEY_BYTES))
		return;
	loss.field = field;
	loss.loser = loser;
	loss.loser_value = value;
	loss.loser_value_len = len;
	loss.winner = winner;
	loss.winner_is_delete = winner_is_delete;
	on_loss(&loss, payload);
}

ferry_err merge_put(merge_state *st, const merge_stamp *stamp,
		    const ferry_field *fields, size_t nfields, int *changed,
		    merge_loss_fn on_loss, void *payload)
{
	int any = 0;
	for (size_t i = 0; i < nfields; i++) {
		const ferry_field *in = &fields[i];
		long at;

		if (st->has_tombstone &&
		    merge_stamp_cmp(stamp, &st->tombstone) <= 0) {
			report(on_loss, payload, in->name, stamp, in->value,
			       in->value_len, &st->tombstone, 1);
			continue;
		}
		at = find_field(st, in->name);
		if (at < 0) {
			ferry_err err =
				insert_field(st, (size_t)(-at - 1), in->name,
					     in->value, in->value_len, stamp);
			if (err)
				return err;
			any = 1;
			continue;
		}
		merge_field *cur = &st->fields[at];
		int c = merge_stamp_cmp(stamp, &cur->stamp);
		if (c > 0) {
			report(on_loss, payload, cur->name, &cur->stamp,
			       cur->value, cur->value_len, stamp, 0);
			if (set_value(cur, in->value, in->value_len))
				return FERRY_E_NOMEM;
			cur->stamp = *stamp;
			any = 1;
		} else if (c < 0) {
			report(on_loss, payload, in->name, stamp, in->value,
			       in->value_len, &cur->stamp, 0);
		}
		/* c == 0: the same write seen again. */
	}
	if (changed)
		*changed = any;
	return FERRY_OK;
}

ferry_err merge_delete(merge_state *st, const merge_stamp *stamp, int *changed,
		       merge_loss_fn on_loss, void *payload)
{
	size_t kept = 0;
	if (st->has_tombstone && merge_stamp_cmp(stamp, &st->tombstone) <= 0) {
		if (changed)
			*changed = 0;
		return FERRY_OK;
	}
	st->has_tombstone = 1;
	st->tombstone = *stamp;
	for (size_t i = 0; i < st->nfields; i++) {
		merge_field *f = &st->fields[i];
		if (merge_stamp_cmp(&f->stamp, stamp) > 0) {
			st->fields[kept++] = *f;
			continue;
		}
		report(on_loss, payload, f->name, &f->stamp, f->value,
		       f->value_len, stamp, 1);
		field_free(f);
	}
	st->nfields = kept;
	if (changed)
		*changed = 1;
	return FERRY_OK;
}

int merge_state_live(const merge_state *st)
{
	return st->nfields > 0;
}

ferry_err merge_state_encode(msgpack_sbuffer *out, const merge_state *st)
{
	msgpack_packer pk;
	int rc = 0;
	msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
	rc |= msgpack_pack_array(&pk, 3);
	rc |= msgpack_pack_uint64(&pk,
				  st->has_tombstone ? st->tombstone.hlc : 0);
	if (st->has_tombstone)
		rc |= msgpack_pack_bin_with_body(&pk, st->tombstone.origin,
						 FERRY_PUBLIC_KEY_BYTES);
	else
		rc |= msgpack_pack_nil(&pk);
	rc |= msgpack_pack_map(&pk, st->nfields);
	for (size_t i = 0; i < st->nfields; i++) {
		const merge_field *f = &st->fields[i];
		rc |= msgpack_pack_str_with_body(&pk, f->name, strlen(f->name));
		rc |= msgpack_pack_array(&pk, 3);
		rc |= msgpack_pack_uint64(&pk, f->stamp.hlc);
		rc |= msgpack_pack_bin_with_body(&pk, f->stamp.origin,
						 FERRY_PUBLIC_KEY_BYTES);
		rc |= codec_pack_raw(&pk, f->value, f->value_len);
	}
	return rc ? FERRY_E_NOMEM : FERRY_OK;
}

static ferry_err decode_field(merge_state *st, const msgpack_object_kv *kv,
			      msgpack_sbuffer *scratch)
{
	char name[FERRY_MAX_FIELD_NAME_BYTES + 1];
	const msgpack_object *arr;
	const uint8_t *origin;
	merge_stamp stamp;
	msgpack_packer pk;
	long at;

	if (codec_get_name(&kv->key, FERRY_MAX_FIELD_NAME_BYTES, name))
		return FERRY_E_CORRUPT;
	arr = &kv->val;
	if (arr->type != MSGPACK_OBJECT_ARRAY || arr->via.array.size != 3 ||
	    codec_get_uint(&arr->via.array.ptr[0], &stamp.hlc) ||
	    codec_get_bin_fixed(&arr->via.array.ptr[1], FERRY_PUBLIC_KEY_BYTES,
				&origin))
		return FERRY_E_CORRUPT;
	memcpy(stamp.origin, origin, FERRY_PUBLIC_KEY_BYTES);
	/* Stored fields are sorted and unique: anything else is damage. */
	at = find_field(st, name);
	if (at >= 0 || (size_t)(-at - 1) != st->nfields)
		return FERRY_E_CORRUPT;
	scratch->size = 0;
	msgpack_packer_init(&pk, scratch, msgpack_sbuffer_write);
	if (msgpack_pack_object(&pk, arr->via.array.ptr[2]))
		return FERRY_E_NOMEM;
	return insert_field(st, st->nfields, name, scratch->data, scratch->size,
			    &stamp);
}

ferry_err merge_state_decode(merge_state *st, const void *buf, size_t len)
{
	msgpack_unpacked u;
	msgpack_sbuffer scratch;
	const msgpack_object *a;
	size_t off = 0;
	ferry_err err = FERRY_OK;

	merge_state_init(st);
	if (codec_check_exact(buf, len))
		return FERRY_E_CORRUPT;
	msgpack_unpacked_init(&u);
	msgpack_sbuffer_init(&scratch);
	if (msgpack_unpack_next(&u, buf, len, &off) != MSGPACK_UNPACK_SUCCESS) {
		err = FERRY_E_CORRUPT;
		goto out;
	}
	a = &u.data;
	if (a->type != MSGPACK_OBJECT_ARRAY || a->via.array.size != 3 ||
	    codec_get_uint(&a->via.array.ptr[0], &st->tombstone.hlc) ||
	    a->via.array.ptr[2].type != MSGPACK_OBJECT_MAP) {
		err = FERRY_E_CORRUPT;
		goto out;
	}
	if (a->via.array.ptr[1].type != MSGPACK_OBJECT_NIL) {
		const uint8_t *origin;
		if (codec_get_bin_fixed(&a->via.array.ptr[1],
					FERRY_PUBLIC_KEY_BYTES, &origin)) {
			err = FERRY_E_CORRUPT;
			goto out;
		}
		memcpy(st->tombstone.origin, origin, FERRY_PUBLIC_KEY_BYTES);
		st->has_tombstone = 1;
	}
	const msgpack_object_map *m = &a->via.array.ptr[2].via.map;
	for (uint32_t i = 0; i < m->size && !err; i++)
		err = decode_field(st, &m->ptr[i], &scratch);
out:
	msgpack_sbuffer_destroy(&scratch);
	msgpack_unpacked_destroy(&u);
	if (err)
		merge_state_clear(st);
	return err;
}
