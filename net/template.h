/*
 * template.h — the adapters' templates (docs/adapters.md, "Templates"): JSON
 * values whose strings hold {placeholders}, compiled once when the
 * configuration is loaded and rendered per record, webhook payload or list
 * item.
 *
 * Two kinds of placeholder exist. Push templates name things of a record
 * ({field}, {field/a/0}, {@key}, {@scope}, {@collection}, {@id},
 * {field->collection}); the caller resolves them. Payload templates are JSON
 * pointers ({/visit/id}) resolved here against a JSON document, and may use
 * the computed value objects ({"const"}, {"from", "multiply", "round",
 * "default"}) as `fields` members.
 */
#ifndef FERRY_TEMPLATE_H
#define FERRY_TEMPLATE_H

#include <stddef.h>

#include <jansson.h>

#include "ferry.h"

typedef enum tmpl_kind {
	TMPL_RECORD,  /* push: placeholders name record things */
	TMPL_PAYLOAD, /* webhooks and pulls: JSON pointers, computed values */
	/* A payload template whose root is an object of field -> value:
	 * the root itself is never a computed value (a field may be called
	 * "from"). Compiles to a TMPL_PAYLOAD template. */
	TMPL_FIELDS,
} tmpl_kind;

/* What a record placeholder names (TMPL_RECORD). */
typedef enum tmpl_ref_type {
	TMPL_REF_FIELD, /* {field} or {field/ptr}: name, pointer ("" or "/..")
			 */
	TMPL_REF_KEY,	/* {@key} */
	TMPL_REF_SCOPE, /* {@scope} */
	TMPL_REF_COLLECTION, /* {@collection} */
	TMPL_REF_ID,	     /* {@id}: this record's external id */
	TMPL_REF_LINK,	     /* {field->collection}: name = field, collection */
} tmpl_ref_type;

/* Strings are owned by the template and valid until tmpl_free; name and
 * collection are NULL where they do not apply, pointer is never NULL. */
typedef struct tmpl_ref {
	tmpl_ref_type type;
	const char *name;	/* FIELD, LINK: the field name */
	const char *pointer;	/* FIELD: "" or a JSON pointer into the value */
	const char *collection; /* LINK */
} tmpl_ref;

typedef struct tmpl tmpl;

/* Compile `value` (borrowed; any JSON) as a template of `kind`. On error
 * writes why into `why` — naming the placeholder and what was expected,
 * without the member path, which the caller prefixes — and returns
 * FERRY_E_INVALID (or FERRY_E_NOMEM), *out NULL. Templates nested more
 * than 64 arrays/objects deep are refused, which bounds rendering's
 * recursion. A compiled template is read-only: any number of threads may
 * render it at once. */
ferry_err tmpl_compile(tmpl **out, const json_t *value, tmpl_kind kind,
		       char *why, size_t why_len);

/* Free a template; NULL is fine. */
void tmpl_free(tmpl *t);

/* 1 if the template holds no placeholder (a constant). */
int tmpl_is_constant(const tmpl *t);

/* Call fn for every record placeholder of a TMPL_RECORD template (the push
 * engine uses it to learn which collections a template refers to). */
void tmpl_each_ref(const tmpl *t, void (*fn)(const tmpl_ref *ref, void *arg),
		   void *arg);

/* Resolves one record placeholder: returns a new reference to its value
 * (which rendering takes over), or NULL when absent (with *fatal left 0) or
 * on a failure that must stop rendering (*fatal = 1, `why` filled; it is
 * the render's `why` as is). For a FIELD ref with a pointer ("{f/a/0}")
 * the resolver applies ref->pointer itself, e.g. with tmpl_pointer_get()
 * on the field's value. */
typedef json_t *(*tmpl_resolver)(const tmpl_ref *ref, void *arg, int *fatal,
				 char *why, size_t why_len);

/* How absent values are treated and strings escaped. */
typedef enum tmpl_mode {
	TMPL_BODY, /* a member that is a lone absent placeholder is dropped */
	TMPL_TEXT, /* URL path or header: absent is an error, no encoding */
	TMPL_URL,  /* as TEXT, substituted values percent-encoded */
} tmpl_mode;

/* Render a TMPL_RECORD template. Returns a new JSON value, or NULL with
 * `why` naming the placeholder that could not be resolved ("{phone} is
 * absent") or passing on the resolver's reason. Under TMPL_BODY a lone
 * absent placeholder is dropped as an object member, becomes null as an
 * array element and is an error as the whole template. Under TMPL_URL a
 * string template always renders to a string. `fn` may be NULL for a
 * constant template. */
json_t *tmpl_render_record(const tmpl *t, tmpl_mode mode, tmpl_resolver fn,
			   void *arg, char *why, size_t why_len);

/* Render a TMPL_PAYLOAD template against `doc` (borrowed; NULL: every
 * pointer is absent). Objects under TMPL_BODY drop members whose lone
 * pointer is absent; computed value objects are evaluated (a rounded result
 * is an integer). Returns a new value sharing nothing with `doc`, or NULL
 * with `why` naming the pointer. */
json_t *tmpl_render_payload(const tmpl *t, tmpl_mode mode, const json_t *doc,
			    char *why, size_t why_len);

/* A rendered TMPL_TEXT/TMPL_URL result as a string (the template was a
 * string): the value if it is a string, compact JSON otherwise. malloc'd. */
char *tmpl_text(const json_t *rendered);

/* JSON pointer lookup (RFC 6901, ~0 and ~1 escapes); "" is the document.
 * Borrowed result or NULL. */
const json_t *tmpl_pointer_get(const json_t *doc, const char *pointer);

/* 1 if `pointer` is "" or a well-formed JSON pointer. */
int tmpl_pointer_valid(const char *pointer);

#endif
