/*
 * adapter_map.c — a webhook payload or pulled item mapped into one record
 * write (adapter_map.h).
 */
#include "adapter_map.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter_state.h"
#include "ferry_json.h"
#include "hub.h"

static ferry_err map_fail(char *why, size_t why_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Fill `why` (cut back to well-formed UTF-8: it quotes payload text) and
 * return FERRY_E_INVALID. */
static ferry_err map_fail(char *why, size_t why_len, const char *fmt, ...)
{
	va_list ap;
	if (why_len) {
		va_start(ap, fmt);
		vsnprintf(why, why_len, fmt, ap);
		va_end(ap);
		ferry_utf8_trim(why);
	}
	return FERRY_E_INVALID;
}

/* Render the text template `t` of member `member` into a string or an
 * integer: *value is the rendered value (a new reference), *text its text
 * (malloc'd). Names and ids are never objects, fractions, booleans or
 * null: such a value is refused rather than turned into JSON text. */
static ferry_err render_name(json_t **value, char **text, const char *member,
			     const tmpl *t, const json_t *doc, size_t max_bytes,
			     char *why, size_t why_len)
{
	char inner[256];
	json_t *v;
	*value = NULL;
	*text = NULL;
	inner[0] = '\0';
	v = tmpl_render_payload(t, TMPL_TEXT, doc, inner, sizeof(inner));
	if (!v)
		return map_fail(why, why_len, "%s: %s", member,
				inner[0] ? inner : "cannot be rendered");
	if (!json_is_string(v) && !json_is_integer(v)) {
		ferry_err err =
			map_fail(why, why_len,
				 "%s: the payload gives %s; expected a string "
				 "or an integer",
				 member, adapter_json_kind(v));
		json_decref(v);
		return err;
	}
	if (json_is_string(v)) {
		size_t len = json_string_length(v);
		const char *s = json_string_value(v);
		ferry_err err = FERRY_OK;
		if (len == 0)
			err = map_fail(why, why_len,
				       "%s: renders to an empty string",
				       member);
		else if (strlen(s) != len)
			err = map_fail(why, why_len,
				       "%s: \"%.60s\" holds a NUL character",
				       member, s);
		else if (!ferry_utf8_valid(s, len))
			err = map_fail(why, why_len,
				       "%s: the value is not valid UTF-8",
				       member);
		else if (max_bytes && len > max_bytes)
			err = map_fail(why, why_len,
				       "%s: \"%.60s...\" is %zu bytes; the "
				       "limit is %zu",
				       member, s, len, max_bytes);
		if (err) {
			json_decref(v);
			return err;
		}
	}
	*text = tmpl_text(v);
	if (!*text) {
		json_decref(v);
		return FERRY_E_NOMEM;
	}
	*value = v;
	return FERRY_OK;
}

/* A name: only the text is kept. */
static ferry_err render_text(char **text, const char *member, const tmpl *t,
			     const json_t *doc, size_t max_bytes, char *why,
			     size_t why_len)
{
	json_t *v;
	ferry_err err =
		render_name(&v, text, member, t, doc, max_bytes, why, why_len);
	json_decref(v);
	return err;
}

ferry_err adapter_map_render(adapter_mapped *out, const adapter_mapping *m,
			     const json_t *doc, char *why, size_t why_len)
{
	char inner[256], *id_text = NULL;
	ferry_err err;

	memset(out, 0, sizeof(*out));
	err = render_text(&out->scope, "scope", m->scope, doc,
			  FERRY_MAX_SCOPE_BYTES, why, why_len);
	if (!err)
		err = render_text(&out->collection, "collection", m->collection,
				  doc, FERRY_MAX_COLLECTION_BYTES, why,
				  why_len);
	if (!err)
		err = render_text(&out->key, "key", m->key, doc,
				  FERRY_MAX_KEY_BYTES, why, why_len);
	/* The id is only hashed into the adapter's link keys, so it has no
	 * length limit of its own; it keeps its JSON type (991 and "991"
	 * are told apart, as the external system tells them apart). */
	if (!err && m->id)
		err = render_name(&out->id, &id_text, "id", m->id, doc, 0, why,
				  why_len);
	free(id_text);
	if (err)
		goto fail;

	inner[0] = '\0';
	out->fields = tmpl_render_payload(m->fields, TMPL_BODY, doc, inner,
					  sizeof(inner));
	if (!out->fields) {
		err = map_fail(why, why_len, "fields: %s",
			       inner[0] ? inner : "cannot be rendered");
		goto fail;
	}
	if (!json_is_object(out->fields)) {
		err = map_fail(why, why_len,
			       "fields: renders to %s; expected an object",
			       adapter_json_kind(out->fields));
		goto fail;
	}
	if (json_object_size(out->fields) == 0) {
		err = map_fail(why, why_len,
			       "fields: none is present in the payload (every "
			       "pointer is absent)");
		goto fail;
	}
	return FERRY_OK;

fail:
	adapter_mapped_clear(out);
	return err;
}

void adapter_mapped_clear(adapter_mapped *m)
{
	if (!m)
		return;
	free(m->scope);
	free(m->collection);
	free(m->key);
	json_decref(m->id);
	json_decref(m->fields);
	memset(m, 0, sizeof(*m));
}

/* A failure of the store: its detail, or the code's text. */
static ferry_err store_fail(ferry_node *node, ferry_err err, const char *what,
			    char *why, size_t why_len)
{
	const char *detail = ferry_node_errmsg(node);
	if (why_len) {
		snprintf(why, why_len, "%s: %s", what,
			 *detail ? detail : ferry_strerror(err));
		ferry_utf8_trim(why);
	}
	return err;
}

/* Follow the link from m->id to the record the adapter already mirrors:
 * its scope and key replace m's. */
static ferry_err follow_link(ferry_node *node, const char *adapter,
			     adapter_mapped *m, char *why, size_t why_len)
{
	json_t *link;
	ferry_err err;
	if (!m->id)
		return FERRY_OK;
	err = adapter_link_get(&link, node, adapter, m->collection, m->id);
	if (err == FERRY_E_NOT_FOUND)
		return FERRY_OK;
	if (err)
		return store_fail(node, err, "reading the adapter's links", why,
				  why_len);
	const char *scope = json_string_value(json_object_get(link, "s"));
	const char *key = json_string_value(json_object_get(link, "k"));
	char *s = scope ? strdup(scope) : NULL;
	char *k = key ? strdup(key) : NULL;
	json_decref(link);
	if (!scope || !key) {
		free(s);
		free(k);
		return map_fail(why, why_len,
				"the adapter's link for this id is damaged");
	}
	if (!s || !k) {
		free(s);
		free(k);
		return FERRY_E_NOMEM;
	}
	free(m->scope);
	free(m->key);
	m->scope = s;
	m->key = k;
	return FERRY_OK;
}

/* The members of m->fields whose value the record does not hold yet, as a
 * new object in *out. */
/* The mapped fields to write: those whose value differs from the
 * record's, except where the system still holds the value of the last
 * exchange (`state`) — then the record's value is a change made here,
 * waiting to be pushed, and must not be overwritten by the old one. */
static ferry_err changed_fields(json_t **out, ferry_node *node,
				const adapter_mapped *m, const json_t *state,
				char *why, size_t why_len)
{
	ferry_record *rec = NULL;
	const char *name;
	json_t *value, *changed;
	ferry_err err = ferry_get(&rec, node, m->scope, m->collection, m->key);

	*out = NULL;
	if (err == FERRY_E_NOT_FOUND) {
		rec = NULL;
	} else if (err) {
		return store_fail(node, err,
				  err == FERRY_E_INVALID
					  ? "the record's scope, collection or "
					    "key"
					  : "reading the record",
				  why, why_len);
	}
	changed = json_object();
	if (!changed) {
		ferry_record_free(rec);
		return FERRY_E_NOMEM;
	}
	json_object_foreach(m->fields, name, value)
	{
		const ferry_field_info *f =
			rec ? ferry_record_find(rec, name) : NULL;
		json_t *held = NULL;
		int same = 0;
		/* A stored value that does not decode is simply replaced. */
		if (f &&
		    !ferry_json_from_msgpack(&held, f->value, f->value_len)) {
			same = json_equal(held, value);
			json_decref(held);
		}
		if (f && !same && adapter_state_synced(state, name, value))
			continue;
		if (!same && json_object_set(changed, name, value)) {
			ferry_record_free(rec);
			json_decref(changed);
			return FERRY_E_NOMEM;
		}
	}
	ferry_record_free(rec);
	*out = changed;
	return FERRY_OK;
}

ferry_err adapter_map_apply(ferry_txn *txn, ferry_node *node,
			    const char *adapter, adapter_mapped *m,
			    size_t *written, char *why, size_t why_len)
{
	json_t *changed = NULL;
	const char *code;
	int status;
	ferry_err err;

	*written = 0;
	/* 1. The linked record, if the adapter knows this id. */
	err = follow_link(node, adapter, m, why, why_len);
	if (err)
		return err;
	/* 2. Every mapped field, so acceptance never depends on what is
	 * stored. */
	if (hub_check_fields(m->fields, &status, &code, why, why_len))
		return status == 500 ? FERRY_E_NOMEM : FERRY_E_INVALID;
	/* 3. Only what changed there. */
	json_t *state;
	err = adapter_state_get(&state, node, adapter, m->scope, m->collection,
				m->key);
	if (err)
		return store_fail(node, err, "reading the adapter's state", why,
				  why_len);
	err = changed_fields(&changed, node, m, state, why, why_len);
	json_decref(state);
	if (err)
		return err;
	if (json_object_size(changed)) {
		err = ferry_json_put(txn, m->scope, m->collection, m->key,
				     changed);
		if (err) {
			json_decref(changed);
			return store_fail(node, err, "writing the record", why,
					  why_len);
		}
	}
	*written = json_object_size(changed);
	json_decref(changed);
	/* 4. Everything received, written or not: none of it is echoed. */
	err = adapter_note_inbound(txn, node, adapter, m->scope, m->collection,
				   m->key, m->id, m->fields);
	if (err) {
		*written = 0;
		return store_fail(node, err, "recording what was received", why,
				  why_len);
	}
	return FERRY_OK;
}
