/*
 * template.c — compiling and rendering the adapters' templates
 * (docs/adapters.md, "Templates").
 *
 * A template compiles to a tree shaped like its JSON value:
 *   - a subtree without placeholders folds into one CONST node (with {{ and
 *     }} already unescaped), copied on every render;
 *   - a string with placeholders becomes a TEXT node of pre-split segments
 *     (literal runs and placeholder indices), so rendering never re-parses;
 *   - arrays and objects whose members hold placeholders become ARRAY and
 *     OBJECT nodes;
 *   - a computed value object ({"from", ...}) of a payload template becomes
 *     a COMPUTED node; {"const": v} folds into a CONST node.
 * Placeholders live in one array on the template, in order of appearance,
 * so tmpl_each_ref is a loop and nodes refer to them by index.
 *
 * Depth: compiling and rendering recurse over the template's own structure
 * only, never over a payload's, and compiling refuses templates nested more
 * than TMPL_MAX_DEPTH containers deep, so the stack is bounded whatever a
 * payload holds. Copies of payload values are jansson's (json_deep_copy),
 * bounded by jansson's own decoding depth limit.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template.h"

/* Containers nested deeper than this are refused when compiling. */
#define TMPL_MAX_DEPTH 64

/* Rounded results become JSON integers; that needs a 64-bit json_int_t. */
_Static_assert(sizeof(json_int_t) == 8, "json_int_t must be 64 bits");

typedef enum node_type {
	N_CONST,    /* value */
	N_TEXT,	    /* segs, nsegs */
	N_ARRAY,    /* kids, n */
	N_OBJECT,   /* kids, keys, key_lens, n */
	N_COMPUTED, /* ph (from), multiply, round, dflt */
} node_type;

typedef enum round_mode {
	ROUND_NONE,
	ROUND_FLOOR,
	ROUND_CEIL,
	ROUND_NEAREST,
} round_mode;

/* One run of a TEXT node: literal text[off..off+len) or a placeholder. */
typedef struct seg {
	size_t off, len; /* literal: into node->text */
	long ph;	 /* placeholder index, or -1 for literal text */
} seg;

typedef struct node {
	node_type type;
	json_t *value; /* CONST */
	/* TEXT */
	char *text;
	seg *segs;
	size_t nsegs;
	/* ARRAY, OBJECT */
	struct node **kids;
	char **keys;
	size_t *key_lens;
	size_t n;
	/* COMPUTED */
	size_t ph;
	int has_multiply;
	double multiply;
	round_mode round;
	json_t *dflt; /* or NULL */
} node;

typedef struct placeholder {
	/* For messages: the placeholder as written ("{phone}"), or the
	 * pointer of a computed value ("/amount"). */
	char *written;
	tmpl_ref ref;	/* TMPL_RECORD */
	char *storage;	/* TMPL_RECORD: owns ref.name and ref.collection */
	char *tokens;	/* TMPL_PAYLOAD: decoded reference tokens, each
			   NUL-terminated */
	size_t ntokens; /* 0: the whole document */
} placeholder;

struct tmpl {
	tmpl_kind kind;
	node *root;
	placeholder *phs;
	size_t nphs, cap;
};

/* Where compile errors go; `why` is never NULL and why_len > 0. */
typedef struct compile_ctx {
	tmpl *t;
	char *why;
	size_t why_len;
	int fields_root; /* TMPL_FIELDS: the root maps field names */
} compile_ctx;

/* ---- small helpers ---- */

/* How much of s[0..len) to quote in a message: at most 60 bytes, cut at a
 * character boundary and before any NUL. *more is set if cut. */
static int excerpt(const char *s, size_t len, int *more)
{
	size_t n = len < 60 ? len : 60;
	while (n > 0 && n < len && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	const char *nul = memchr(s, '\0', n);
	if (nul)
		n = (size_t)(nul - s);
	*more = n < len;
	return (int)n;
}

static char *dup_n(const char *s, size_t n)
{
	char *out = malloc(n + 1);
	if (!out)
		return NULL;
	memcpy(out, s, n);
	out[n] = '\0';
	return out;
}

static ferry_err nomem(char *why, size_t why_len)
{
	snprintf(why, why_len, "out of memory");
	return FERRY_E_NOMEM;
}

/* ---- JSON pointers ---- */

int tmpl_pointer_valid(const char *pointer)
{
	if (!pointer)
		return 0;
	if (pointer[0] == '\0')
		return 1;
	if (pointer[0] != '/')
		return 0;
	for (const char *p = pointer; *p; p++)
		if (*p == '~' && p[1] != '0' && p[1] != '1')
			return 0;
	return 1;
}

/* Decode the reference token raw[0..len) (~1 -> '/', ~0 -> '~') into out,
 * which has room for len bytes; returns the decoded length. The token is
 * known to be well formed. */
static size_t token_decode(char *out, const char *raw, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		if (raw[i] == '~') {
			out[n++] = raw[i + 1] == '1' ? '/' : '~';
			i++;
		} else {
			out[n++] = raw[i];
		}
	}
	return n;
}

/* One step of a lookup: the member `tok` of an object, or the element of an
 * array whose index `tok` spells (digits, no leading zero; "-", the element
 * after the last, never exists). */
static const json_t *pointer_step(const json_t *cur, const char *tok,
				  size_t len)
{
	if (json_is_object(cur))
		return json_object_getn(cur, tok, len);
	if (!json_is_array(cur))
		return NULL;
	/* 19 digits cannot overflow 64 bits; arrays that long do not exist. */
	if (len == 0 || len > 19 || (tok[0] == '0' && len > 1))
		return NULL;
	uint64_t index = 0;
	for (size_t i = 0; i < len; i++) {
		if (tok[i] < '0' || tok[i] > '9')
			return NULL;
		index = index * 10 + (uint64_t)(tok[i] - '0');
	}
	if (index >= json_array_size(cur))
		return NULL;
	return json_array_get(cur, (size_t)index);
}

const json_t *tmpl_pointer_get(const json_t *doc, const char *pointer)
{
	if (!doc || !tmpl_pointer_valid(pointer))
		return NULL;
	/* Tokens are decoded into a stack buffer; a longer one (rare) into
	 * the heap, where running out of memory reads as absent. */
	char small[256];
	const json_t *cur = doc;
	const char *p = pointer;
	while (cur && *p == '/') {
		p++;
		size_t len = strcspn(p, "/");
		char *buf = len <= sizeof(small) ? small : malloc(len);
		if (!buf)
			return NULL;
		cur = pointer_step(cur, buf, token_decode(buf, p, len));
		if (buf != small)
			free(buf);
		p += len;
	}
	return cur;
}

/* Look a compiled payload placeholder up in doc. */
static const json_t *ph_lookup(const placeholder *ph, const json_t *doc)
{
	const json_t *cur = doc;
	const char *tok = ph->tokens;
	for (size_t i = 0; cur && i < ph->ntokens; i++) {
		size_t len = strlen(tok);
		cur = pointer_step(cur, tok, len);
		tok += len + 1;
	}
	return cur;
}

/* ---- compiling placeholders ---- */

static void ph_clear(placeholder *ph)
{
	free(ph->written);
	free(ph->storage);
	free(ph->tokens);
}

/* Decode the valid pointer pointer[0..len) into ph->tokens. */
static ferry_err ph_set_pointer(placeholder *ph, const char *pointer,
				size_t len)
{
	ph->tokens = malloc(len + 1);
	if (!ph->tokens)
		return FERRY_E_NOMEM;
	char *w = ph->tokens;
	size_t i = 0;
	while (i < len) {
		/* pointer[i] == '/' */
		i++;
		size_t end = i;
		while (end < len && pointer[end] != '/')
			end++;
		w += token_decode(w, pointer + i, end - i);
		*w++ = '\0';
		ph->ntokens++;
		i = end;
	}
	return FERRY_OK;
}

/* Check the field name of a record placeholder. */
static ferry_err check_field(const char *name, size_t len, const char *what,
			     const placeholder *ph, compile_ctx *c)
{
	if (len == 0) {
		snprintf(c->why, c->why_len,
			 "placeholder %s has no field name %s", ph->written,
			 what);
		return FERRY_E_INVALID;
	}
	if (len > FERRY_MAX_FIELD_NAME_BYTES) {
		snprintf(c->why, c->why_len,
			 "placeholder %s: the field name is over %d bytes",
			 ph->written, FERRY_MAX_FIELD_NAME_BYTES);
		return FERRY_E_INVALID;
	}
	if (!ferry_utf8_valid(name, len)) {
		snprintf(c->why, c->why_len,
			 "placeholder %s: the field name is not valid UTF-8",
			 ph->written);
		return FERRY_E_INVALID;
	}
	return FERRY_OK;
}

static const char *memmem_arrow(const char *s, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++)
		if (s[i] == '-' && s[i + 1] == '>')
			return s + i;
	return NULL;
}

/* Parse the record placeholder in[0..len) (between the braces). */
static ferry_err parse_record(placeholder *ph, const char *in, size_t len,
			      compile_ctx *c)
{
	static const struct {
		const char *name;
		tmpl_ref_type type;
	} specials[] = {
		{"@key", TMPL_REF_KEY},
		{"@scope", TMPL_REF_SCOPE},
		{"@collection", TMPL_REF_COLLECTION},
		{"@id", TMPL_REF_ID},
	};
	ph->ref.pointer = "";
	if (in[0] == '@') {
		for (size_t i = 0; i < sizeof(specials) / sizeof(specials[0]);
		     i++) {
			if (strlen(specials[i].name) == len &&
			    memcmp(specials[i].name, in, len) == 0) {
				ph->ref.type = specials[i].type;
				return FERRY_OK;
			}
		}
		snprintf(c->why, c->why_len,
			 "unknown placeholder %s (expected a field name, @key, "
			 "@scope, @collection, @id or FIELD->COLLECTION)",
			 ph->written);
		return FERRY_E_INVALID;
	}

	ph->storage = dup_n(in, len);
	if (!ph->storage)
		return nomem(c->why, c->why_len);
	/* "->" after a '/' belongs to a JSON pointer ({f/a->b}). */
	const char *slash = memchr(in, '/', len);
	const char *arrow =
		memmem_arrow(in, slash ? (size_t)(slash - in) : len);
	if (arrow) {
		size_t flen = (size_t)(arrow - in);
		size_t clen = len - flen - 2;
		ferry_err err = check_field(in, flen, "before ->", ph, c);
		if (err)
			return err;
		if (clen == 0 || clen > FERRY_MAX_COLLECTION_BYTES) {
			snprintf(c->why, c->why_len,
				 "placeholder %s: the collection after -> "
				 "must be 1 to %d bytes",
				 ph->written, FERRY_MAX_COLLECTION_BYTES);
			return FERRY_E_INVALID;
		}
		if (!ferry_utf8_valid(arrow + 2, clen)) {
			snprintf(c->why, c->why_len,
				 "placeholder %s: the collection is not valid "
				 "UTF-8",
				 ph->written);
			return FERRY_E_INVALID;
		}
		ph->storage[flen] = '\0';
		ph->ref.type = TMPL_REF_LINK;
		ph->ref.name = ph->storage;
		ph->ref.collection = ph->storage + flen + 2;
		return FERRY_OK;
	}

	size_t flen = slash ? (size_t)(slash - in) : len;
	ferry_err err = check_field(in, flen, "before the JSON pointer", ph, c);
	if (err)
		return err;
	ph->ref.type = TMPL_REF_FIELD;
	ph->ref.name = ph->storage;
	if (slash) {
		/* The name needs a NUL where the pointer's '/' is: store
		 * "name\0/ptr". */
		char *s = malloc(len + 2);
		if (!s)
			return nomem(c->why, c->why_len);
		memcpy(s, in, flen);
		s[flen] = '\0';
		memcpy(s + flen + 1, slash, len - flen);
		s[len + 1] = '\0';
		free(ph->storage);
		ph->storage = s;
		ph->ref.name = s;
		ph->ref.pointer = s + flen + 1;
		if (!tmpl_pointer_valid(ph->ref.pointer)) {
			snprintf(c->why, c->why_len,
				 "placeholder %s: bad JSON pointer (~ must be "
				 "followed by 0 or 1)",
				 ph->written);
			return FERRY_E_INVALID;
		}
	}
	return FERRY_OK;
}

/* Parse the payload placeholder in[0..len): a JSON pointer. */
static ferry_err parse_payload(placeholder *ph, const char *in, size_t len,
			       compile_ctx *c)
{
	if (in[0] != '/') {
		snprintf(c->why, c->why_len,
			 "placeholder %s is not a JSON pointer (expected "
			 "e.g. {/id} or {/items/0/name})",
			 ph->written);
		return FERRY_E_INVALID;
	}
	/* The pointer is in ph->written, between the braces. */
	char *pointer = ph->written + 1;
	pointer[len] = '\0';
	int valid = tmpl_pointer_valid(pointer);
	pointer[len] = '}';
	if (!valid) {
		snprintf(c->why, c->why_len,
			 "placeholder %s is not a valid JSON pointer (~ must "
			 "be followed by 0 or 1)",
			 ph->written);
		return FERRY_E_INVALID;
	}
	if (ph_set_pointer(ph, in, len))
		return nomem(c->why, c->why_len);
	return FERRY_OK;
}

/* Room for one more placeholder; returns it zeroed, or NULL. */
static placeholder *ph_new(tmpl *t)
{
	if (t->nphs == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 4;
		placeholder *p = realloc(t->phs, cap * sizeof(*p));
		if (!p)
			return NULL;
		t->phs = p;
		t->cap = cap;
	}
	placeholder *ph = &t->phs[t->nphs];
	memset(ph, 0, sizeof(*ph));
	return ph;
}

/* Compile the placeholder in[0..len) of a string into a new entry of
 * c->t->phs; on success it is kept (nphs grows). */
static ferry_err compile_placeholder(const char *in, size_t len, compile_ctx *c)
{
	placeholder *ph = ph_new(c->t);
	if (!ph)
		return nomem(c->why, c->why_len);
	ph->written = malloc(len + 3);
	if (!ph->written)
		return nomem(c->why, c->why_len);
	ph->written[0] = '{';
	memcpy(ph->written + 1, in, len);
	ph->written[len + 1] = '}';
	ph->written[len + 2] = '\0';
	ferry_err err = FERRY_OK;
	if (memchr(in, '\0', len)) {
		snprintf(c->why, c->why_len,
			 "placeholder %s contains a NUL character",
			 ph->written);
		err = FERRY_E_INVALID;
	} else if (c->t->kind == TMPL_RECORD) {
		err = parse_record(ph, in, len, c);
	} else {
		err = parse_payload(ph, in, len, c);
	}
	if (err) {
		ph_clear(ph);
		return err;
	}
	c->t->nphs++;
	return FERRY_OK;
}

/* ---- compiling values ---- */

static void node_free(node *n)
{
	if (!n)
		return;
	json_decref(n->value);
	json_decref(n->dflt);
	free(n->text);
	free(n->segs);
	for (size_t i = 0; i < n->n; i++) {
		if (n->kids)
			node_free(n->kids[i]);
		if (n->keys)
			free(n->keys[i]);
	}
	free(n->kids);
	free(n->keys);
	free(n->key_lens);
	free(n);
}

static node *node_new(node_type type)
{
	node *n = calloc(1, sizeof(*n));
	if (n)
		n->type = type;
	return n;
}

/* A CONST node owning `value` (a new reference, or NULL for no memory). */
static ferry_err const_node(node **out, json_t *value, compile_ctx *c)
{
	*out = value ? node_new(N_CONST) : NULL;
	if (!*out) {
		json_decref(value);
		return nomem(c->why, c->why_len);
	}
	(*out)->value = value;
	return FERRY_OK;
}

/* Report a brace error in string s[0..len). */
static ferry_err brace_error(const char *what, const char *hint, const char *s,
			     size_t len, compile_ctx *c)
{
	int more;
	int n = excerpt(s, len, &more);
	snprintf(c->why, c->why_len, "%s in \"%.*s%s\" (%s)", what, n, s,
		 more ? "..." : "", hint);
	return FERRY_E_INVALID;
}

/* Compile a string: scan it once to check the braces and count the
 * placeholders, then split it into segments. */
static ferry_err compile_string(node **out, const json_t *v, compile_ctx *c)
{
	const char *s = json_string_value(v);
	size_t len = json_string_length(v);
	if (!ferry_utf8_valid(s, len)) {
		snprintf(c->why, c->why_len, "a string is not valid UTF-8");
		return FERRY_E_INVALID;
	}

	size_t nph = 0;
	for (size_t i = 0; i < len;) {
		if (s[i] == '{') {
			if (i + 1 < len && s[i + 1] == '{') {
				i += 2;
				continue;
			}
			size_t j = i + 1;
			while (j < len && s[j] != '{' && s[j] != '}')
				j++;
			if (j == len || s[j] == '{')
				return brace_error("unmatched {",
						   "write {{ for a literal {",
						   s, len, c);
			if (j == i + 1)
				return brace_error("empty placeholder {}",
						   "write {{}} for literal "
						   "braces",
						   s, len, c);
			nph++;
			i = j + 1;
		} else if (s[i] == '}') {
			if (i + 1 < len && s[i + 1] == '}') {
				i += 2;
				continue;
			}
			return brace_error("unmatched }",
					   "write }} for a literal }", s, len,
					   c);
		} else {
			i++;
		}
	}

	node *n = node_new(N_TEXT);
	char *text = malloc(len + 1);
	seg *segs = calloc(2 * nph + 1, sizeof(*segs));
	if (!n || !text || !segs) {
		free(n);
		free(text);
		free(segs);
		return nomem(c->why, c->why_len);
	}
	n->text = text;
	n->segs = segs;
	size_t tlen = 0, lit = 0; /* text written; start of the open run */
	for (size_t i = 0; i < len;) {
		if ((s[i] == '{' || s[i] == '}') && i + 1 < len &&
		    s[i + 1] == s[i]) {
			text[tlen++] = s[i];
			i += 2;
			continue;
		}
		if (s[i] != '{') {
			text[tlen++] = s[i++];
			continue;
		}
		size_t j = i + 1;
		while (s[j] != '}')
			j++;
		if (tlen > lit) {
			segs[n->nsegs++] = (seg){lit, tlen - lit, -1};
			lit = tlen;
		}
		ferry_err err = compile_placeholder(s + i + 1, j - i - 1, c);
		if (err) {
			node_free(n);
			return err;
		}
		segs[n->nsegs++] = (seg){0, 0, (long)(c->t->nphs - 1)};
		i = j + 1;
	}
	if (tlen > lit)
		segs[n->nsegs++] = (seg){lit, tlen - lit, -1};
	text[tlen] = '\0';

	if (nph == 0) {
		json_t *value = json_stringn(text, tlen);
		node_free(n);
		return const_node(out, value, c);
	}
	*out = n;
	return FERRY_OK;
}

/* 1 if obj is a computed value object: exactly {"const"}, or "from" with
 * any of "multiply", "round", "default". */
static int is_computed(const json_t *obj)
{
	size_t n = json_object_size(obj);
	if (n == 1 && json_object_get(obj, "const"))
		return 1;
	if (!json_object_get(obj, "from"))
		return 0;
	size_t known = 1 + !!json_object_get(obj, "multiply") +
		       !!json_object_get(obj, "round") +
		       !!json_object_get(obj, "default");
	return known == n;
}

static ferry_err compile_computed(node **out, const json_t *obj, compile_ctx *c)
{
	const json_t *cv = json_object_get(obj, "const");
	if (cv)
		return const_node(out, json_deep_copy(cv), c);

	const json_t *from = json_object_get(obj, "from");
	const json_t *multiply = json_object_get(obj, "multiply");
	const json_t *rnd = json_object_get(obj, "round");
	const json_t *dflt = json_object_get(obj, "default");
	const char *ptr = json_string_value(from);
	if (!ptr || strlen(ptr) != json_string_length(from) ||
	    !tmpl_pointer_valid(ptr)) {
		snprintf(c->why, c->why_len,
			 "from must be a JSON pointer string such as "
			 "\"/amount\"");
		return FERRY_E_INVALID;
	}
	if (multiply && !json_is_number(multiply)) {
		snprintf(c->why, c->why_len, "multiply must be a number");
		return FERRY_E_INVALID;
	}
	round_mode rm = ROUND_NONE;
	if (rnd) {
		const char *r = json_string_value(rnd);
		if (r && strcmp(r, "floor") == 0)
			rm = ROUND_FLOOR;
		else if (r && strcmp(r, "ceil") == 0)
			rm = ROUND_CEIL;
		else if (r && strcmp(r, "nearest") == 0)
			rm = ROUND_NEAREST;
		if (rm == ROUND_NONE || strlen(r) != json_string_length(rnd)) {
			snprintf(c->why, c->why_len,
				 "round must be floor, ceil or nearest");
			return FERRY_E_INVALID;
		}
	}

	node *n = node_new(N_COMPUTED);
	placeholder *ph = n ? ph_new(c->t) : NULL;
	if (!ph) {
		free(n);
		return nomem(c->why, c->why_len);
	}
	ph->written = strdup(ptr[0] ? ptr : "\"\" (the whole document)");
	if (!ph->written || ph_set_pointer(ph, ptr, strlen(ptr))) {
		ph_clear(ph);
		free(n);
		return nomem(c->why, c->why_len);
	}
	n->ph = c->t->nphs++;
	n->has_multiply = multiply != NULL;
	n->multiply = multiply ? json_number_value(multiply) : 1.0;
	n->round = rm;
	if (dflt) {
		n->dflt = json_deep_copy(dflt);
		if (!n->dflt) {
			node_free(n);
			return nomem(c->why, c->why_len);
		}
	}
	*out = n;
	return FERRY_OK;
}

static ferry_err compile_value(node **out, const json_t *v, int depth,
			       compile_ctx *c);

/* Compile an array or object's members; if none holds a placeholder, fold
 * the container into a CONST node. */
static ferry_err compile_container(node **out, const json_t *v, int depth,
				   compile_ctx *c)
{
	if (depth >= TMPL_MAX_DEPTH) {
		snprintf(c->why, c->why_len,
			 "template nested more than %d levels deep",
			 TMPL_MAX_DEPTH);
		return FERRY_E_INVALID;
	}
	int is_obj = json_is_object(v);
	size_t count = is_obj ? json_object_size(v) : json_array_size(v);
	node *n = node_new(is_obj ? N_OBJECT : N_ARRAY);
	if (!n)
		return nomem(c->why, c->why_len);
	n->kids = calloc(count ? count : 1, sizeof(*n->kids));
	if (is_obj) {
		n->keys = calloc(count ? count : 1, sizeof(*n->keys));
		n->key_lens = calloc(count ? count : 1, sizeof(*n->key_lens));
	}
	if (!n->kids || (is_obj && (!n->keys || !n->key_lens))) {
		node_free(n);
		return nomem(c->why, c->why_len);
	}

	ferry_err err = FERRY_OK;
	int all_const = 1;
	if (is_obj) {
		const char *key;
		size_t key_len;
		json_t *member;
		json_object_keylen_foreach((json_t *)v, key, key_len, member)
		{
			if (!ferry_utf8_valid(key, key_len)) {
				snprintf(c->why, c->why_len,
					 "a member name is not valid UTF-8");
				err = FERRY_E_INVALID;
				break;
			}
			n->keys[n->n] = malloc(key_len + 1);
			if (!n->keys[n->n]) {
				err = nomem(c->why, c->why_len);
				break;
			}
			memcpy(n->keys[n->n], key, key_len);
			n->keys[n->n][key_len] = '\0';
			n->key_lens[n->n] = key_len;
			err = compile_value(&n->kids[n->n], member, depth + 1,
					    c);
			n->n++; /* the key is owned even if the value failed */
			if (err)
				break;
			all_const &= n->kids[n->n - 1]->type == N_CONST;
		}
	} else {
		for (size_t i = 0; i < count && !err; i++) {
			err = compile_value(&n->kids[i], json_array_get(v, i),
					    depth + 1, c);
			if (!err) {
				n->n++;
				all_const &= n->kids[i]->type == N_CONST;
			}
		}
	}
	if (err) {
		node_free(n);
		return err;
	}
	if (!all_const) {
		*out = n;
		return FERRY_OK;
	}

	/* Fold: move the members' constants into one value. */
	json_t *value = is_obj ? json_object() : json_array();
	for (size_t i = 0; value && i < n->n; i++) {
		json_t *kid = n->kids[i]->value;
		n->kids[i]->value = NULL;
		int rc = is_obj ? json_object_setn_new(value, n->keys[i],
						       n->key_lens[i], kid)
				: json_array_append_new(value, kid);
		if (rc) {
			json_decref(value);
			value = NULL;
		}
	}
	node_free(n);
	return const_node(out, value, c);
}

static ferry_err compile_value(node **out, const json_t *v, int depth,
			       compile_ctx *c)
{
	*out = NULL;
	switch (json_typeof(v)) {
	case JSON_STRING:
		return compile_string(out, v, c);
	case JSON_OBJECT:
		if (c->t->kind != TMPL_PAYLOAD ||
		    (depth == 0 && c->fields_root))
			return compile_container(out, v, depth, c);
		if (is_computed(v))
			return compile_computed(out, v, c);
		if (json_object_get(v, "from")) {
			/* A misspelt option must not turn a computed value
			 * into a literal object silently. */
			snprintf(c->why, c->why_len,
				 "a computed value takes only from, multiply, "
				 "round and default (write {\"const\": {...}} "
				 "for an object with a \"from\" member)");
			return FERRY_E_INVALID;
		}
		return compile_container(out, v, depth, c);
	case JSON_ARRAY:
		return compile_container(out, v, depth, c);
	default:
		return const_node(out, json_deep_copy(v), c);
	}
}

ferry_err tmpl_compile(tmpl **out, const json_t *value, tmpl_kind kind,
		       char *why, size_t why_len)
{
	char dummy[1];
	if (!why || why_len == 0) {
		why = dummy;
		why_len = sizeof(dummy);
	}
	why[0] = '\0';
	*out = NULL;
	if (!value || (kind != TMPL_RECORD && kind != TMPL_PAYLOAD &&
		       kind != TMPL_FIELDS)) {
		snprintf(why, why_len, "no template value");
		return FERRY_E_INVALID;
	}
	tmpl *t = calloc(1, sizeof(*t));
	if (!t)
		return nomem(why, why_len);
	t->kind = kind == TMPL_FIELDS ? TMPL_PAYLOAD : kind;
	compile_ctx c = {t, why, why_len, kind == TMPL_FIELDS};
	ferry_err err = compile_value(&t->root, value, 0, &c);
	if (err) {
		/* Placeholders quoted in the text may have been cut. */
		ferry_utf8_trim(why);
		tmpl_free(t);
		return err;
	}
	*out = t;
	return FERRY_OK;
}

void tmpl_free(tmpl *t)
{
	if (!t)
		return;
	node_free(t->root);
	for (size_t i = 0; i < t->nphs; i++)
		ph_clear(&t->phs[i]);
	free(t->phs);
	free(t);
}

int tmpl_is_constant(const tmpl *t)
{
	return t && t->root && t->root->type == N_CONST;
}

void tmpl_each_ref(const tmpl *t, void (*fn)(const tmpl_ref *ref, void *arg),
		   void *arg)
{
	if (!t || !fn || t->kind != TMPL_RECORD)
		return;
	for (size_t i = 0; i < t->nphs; i++)
		fn(&t->phs[i].ref, arg);
}

/* ---- rendering ---- */

typedef enum render_status {
	R_OK,
	R_ABSENT, /* a lone placeholder was absent (TMPL_BODY only) */
	R_ERR,	  /* why is filled */
} render_status;

typedef struct render_ctx {
	const tmpl *t;
	tmpl_mode mode;
	tmpl_resolver fn; /* TMPL_RECORD */
	void *arg;
	const json_t *doc; /* TMPL_PAYLOAD */
	char *why;
	size_t why_len;
} render_ctx;

typedef struct buf {
	char *p;
	size_t len, cap;
} buf;

/* Room for `extra` more bytes (and a NUL); 0 when out of memory. */
static int buf_reserve(buf *b, size_t extra)
{
	if (extra > SIZE_MAX / 2 - b->len)
		return 0;
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return 1;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p)
		return 0;
	b->p = p;
	b->cap = cap;
	return 1;
}

static int buf_add(buf *b, const char *s, size_t n)
{
	if (!buf_reserve(b, n))
		return 0;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	return 1;
}

/* Append s[0..n) percent-encoded: all but RFC 3986's unreserved bytes. */
static int buf_add_encoded(buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	if (n > SIZE_MAX / 3 || !buf_reserve(b, n * 3))
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' ||
		    ch == '_' || ch == '~') {
			b->p[b->len++] = (char)ch;
		} else {
			b->p[b->len++] = '%';
			b->p[b->len++] = hex[ch >> 4];
			b->p[b->len++] = hex[ch & 15];
		}
	}
	return 1;
}

static render_status render_nomem(render_ctx *c)
{
	snprintf(c->why, c->why_len, "out of memory");
	return R_ERR;
}

static render_status absent(render_ctx *c, const placeholder *ph)
{
	snprintf(c->why, c->why_len, "%s is absent", ph->written);
	return R_ABSENT;
}

/* Resolve placeholder `ph`: *out is a new reference (TMPL_RECORD: the
 * resolver's; TMPL_PAYLOAD: into c->doc, borrowed, *owned = 0). */
static render_status resolve(render_ctx *c, const placeholder *ph,
			     const json_t **out, int *owned)
{
	*out = NULL;
	*owned = 0;
	if (c->t->kind == TMPL_PAYLOAD) {
		*out = ph_lookup(ph, c->doc);
		return *out ? R_OK : absent(c, ph);
	}
	if (!c->fn) {
		snprintf(c->why, c->why_len, "no resolver for %s", ph->written);
		return R_ERR;
	}
	int fatal = 0;
	c->why[0] = '\0';
	json_t *v = c->fn(&ph->ref, c->arg, &fatal, c->why, c->why_len);
	if (fatal) {
		json_decref(v);
		if (!c->why[0])
			snprintf(c->why, c->why_len, "%s could not be resolved",
				 ph->written);
		return R_ERR;
	}
	if (!v)
		return absent(c, ph);
	*out = v;
	*owned = 1;
	return R_OK;
}

/* A value to keep in the result: the resolver's reference, or a copy of
 * the payload's (so the result never shares with the document). */
static json_t *keep(const json_t *v, int owned)
{
	return owned ? (json_t *)v : json_deep_copy(v);
}

/* A real as text: the shortest form that reads back as the same double
 * (12.345, where json_dumps writes 12.345000000000001), with ".0" added to
 * an integral value as jansson does. */
static size_t format_real(char out[32], double d)
{
	int n = 0;
	for (int prec = 15; prec <= 17; prec++) {
		n = snprintf(out, 32, "%.*g", prec, d);
		if (strtod(out, NULL) == d)
			break;
	}
	if (n > 0 && n < 30 && !strpbrk(out, ".eE")) {
		memcpy(out + n, ".0", 3);
		n += 2;
	}
	return n > 0 ? (size_t)n : 0;
}

static render_status render_text(const node *n, render_ctx *c, json_t **out)
{
	const json_t *v;
	int owned;
	render_status st;
	if (n->nsegs == 1 && n->segs[0].ph >= 0 && c->mode != TMPL_URL) {
		st = resolve(c, &c->t->phs[n->segs[0].ph], &v, &owned);
		if (st != R_OK)
			return st;
		*out = keep(v, owned);
		return *out ? R_OK : render_nomem(c);
	}

	buf b = {0};
	for (size_t i = 0; i < n->nsegs; i++) {
		const seg *s = &n->segs[i];
		if (s->ph < 0) {
			if (!buf_add(&b, n->text + s->off, s->len))
				goto nomem;
			continue;
		}
		st = resolve(c, &c->t->phs[s->ph], &v, &owned);
		if (st != R_OK) {
			free(b.p);
			return R_ERR; /* absent inside text is an error */
		}
		char *dumped = NULL, real[32];
		const char *text;
		size_t len;
		if (json_is_string(v)) {
			text = json_string_value(v);
			len = json_string_length(v);
		} else if (json_is_real(v)) {
			len = format_real(real, json_real_value(v));
			text = real;
		} else {
			dumped = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
			text = dumped;
			len = dumped ? strlen(dumped) : 0;
		}
		int ok = text &&
			 (c->mode == TMPL_URL ? buf_add_encoded(&b, text, len)
					      : buf_add(&b, text, len));
		free(dumped);
		if (owned)
			json_decref((json_t *)v);
		if (!ok)
			goto nomem;
	}
	*out = json_stringn(b.p ? b.p : "", b.len);
	free(b.p);
	return *out ? R_OK : render_nomem(c);
nomem:
	free(b.p);
	return render_nomem(c);
}

/* Round r as `mode` says (nearest: halves away from zero). Written out
 * rather than taken from libm, which ferry_net does not link. */
static double round_to(double r, round_mode mode)
{
	/* From 2^52 on every double is an integer; NaN and infinities fail
	 * both comparisons and pass through. */
	if (mode == ROUND_NONE || !(r < 0x1p52 && r > -0x1p52))
		return r;
	double t = (double)(int64_t)r; /* toward zero; r - t is exact */
	switch (mode) {
	case ROUND_FLOOR:
		return t > r ? t - 1 : t;
	case ROUND_CEIL:
		return t < r ? t + 1 : t;
	case ROUND_NEAREST:
		if (r - t >= 0.5)
			return t + 1;
		if (r - t <= -0.5)
			return t - 1;
		return t;
	case ROUND_NONE:
		break;
	}
	return r;
}

static render_status render_computed(const node *n, render_ctx *c, json_t **out)
{
	const placeholder *ph = &c->t->phs[n->ph];
	const json_t *v = ph_lookup(ph, c->doc);
	if (!v) {
		if (!n->dflt)
			return absent(c, ph);
		*out = json_deep_copy(n->dflt);
		return *out ? R_OK : render_nomem(c);
	}
	if (!n->has_multiply && n->round == ROUND_NONE) {
		*out = json_deep_copy(v);
		return *out ? R_OK : render_nomem(c);
	}
	if (!json_is_number(v)) {
		snprintf(c->why, c->why_len, "%s is not a number", ph->written);
		return R_ERR;
	}
	if (json_is_integer(v) && !n->has_multiply) {
		/* Rounding an integer: exact, even beyond 2^53. */
		*out = json_integer(json_integer_value(v));
		return *out ? R_OK : render_nomem(c);
	}
	double r = round_to(json_number_value(v) * n->multiply, n->round);
	if (!isfinite(r)) {
		snprintf(c->why, c->why_len,
			 "%s times %g is not a finite number", ph->written,
			 n->multiply);
		return R_ERR;
	}
	/* [-2^63, 2^63) converts to json_int_t without overflow. */
	if (n->round != ROUND_NONE && r >= -0x1p63 && r < 0x1p63)
		*out = json_integer((json_int_t)r);
	else
		*out = json_real(r);
	return *out ? R_OK : render_nomem(c);
}

/* Render node n. R_ABSENT only under TMPL_BODY, for a lone placeholder or
 * computed value; the caller drops the member, writes null in an array, or
 * fails at the top. Recursion follows the template (TMPL_MAX_DEPTH). */
static render_status render_node(const node *n, render_ctx *c, json_t **out)
{
	*out = NULL;
	render_status st;
	switch (n->type) {
	case N_CONST:
		*out = json_deep_copy(n->value);
		return *out ? R_OK : render_nomem(c);
	case N_TEXT:
		st = render_text(n, c, out);
		break;
	case N_COMPUTED:
		st = render_computed(n, c, out);
		break;
	case N_ARRAY:
	case N_OBJECT: {
		int is_obj = n->type == N_OBJECT;
		json_t *result = is_obj ? json_object() : json_array();
		if (!result)
			return render_nomem(c);
		for (size_t i = 0; i < n->n; i++) {
			json_t *kid;
			st = render_node(n->kids[i], c, &kid);
			if (st == R_ERR) {
				json_decref(result);
				return R_ERR;
			}
			if (st == R_ABSENT && is_obj)
				continue;
			if (st == R_ABSENT)
				kid = json_null();
			int rc = is_obj ? json_object_setn_new(
						  result, n->keys[i],
						  n->key_lens[i], kid)
					: json_array_append_new(result, kid);
			if (rc) {
				json_decref(result);
				return render_nomem(c);
			}
		}
		*out = result;
		return R_OK;
	}
	default:
		return render_nomem(c);
	}
	if (st == R_ABSENT && c->mode != TMPL_BODY)
		return R_ERR;
	return st;
}

static json_t *render(render_ctx *c)
{
	char dummy[1];
	if (!c->why || c->why_len == 0) {
		c->why = dummy;
		c->why_len = sizeof(dummy);
	}
	c->why[0] = '\0';
	json_t *out;
	if (render_node(c->t->root, c, &out) != R_OK) {
		/* R_ABSENT at the top is an error too; why is filled either
		 * way, maybe cut in the middle of a character. */
		ferry_utf8_trim(c->why);
		return NULL;
	}
	return out;
}

json_t *tmpl_render_record(const tmpl *t, tmpl_mode mode, tmpl_resolver fn,
			   void *arg, char *why, size_t why_len)
{
	if (!t || t->kind != TMPL_RECORD) {
		if (why && why_len)
			snprintf(why, why_len, "not a record template");
		return NULL;
	}
	render_ctx c = {t, mode, fn, arg, NULL, why, why_len};
	return render(&c);
}

json_t *tmpl_render_payload(const tmpl *t, tmpl_mode mode, const json_t *doc,
			    char *why, size_t why_len)
{
	if (!t || t->kind != TMPL_PAYLOAD) {
		if (why && why_len)
			snprintf(why, why_len, "not a payload template");
		return NULL;
	}
	render_ctx c = {t, mode, NULL, NULL, doc, why, why_len};
	return render(&c);
}

char *tmpl_text(const json_t *rendered)
{
	if (!rendered)
		return NULL;
	if (json_is_string(rendered))
		return strdup(json_string_value(rendered));
	return json_dumps(rendered, JSON_COMPACT | JSON_ENCODE_ANY);
}
