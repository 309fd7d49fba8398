/*
 * adapter_config.c — the adapters' configuration file (docs/adapters.md,
 * "The file"): every member checked for its type and bounds and every
 * template compiled once, here, so that a running adapter never meets a
 * setting it cannot use.
 *
 * Errors name the member by its path ("adapters[0].pulls[1].page.size"),
 * built on the stack as the walk descends. Arrays are allocated at their
 * final size, zeroed, and counted before they are filled, so that
 * adapter_config_free() releases a half-built configuration on any error.
 *
 * Unknown members are checked before anything else in an object: a
 * misspelt "crate" is then reported as the typo it is rather than as a
 * missing "create".
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "adapter_config.h"

#define MAX_ADAPTERS 64
#define MAX_COLLECTIONS 256
#define MAX_PULLS 64
#define MAX_WRITES 64
#define MAX_HEADERS 64
#define HEADER_NAME_MAX 128
#define PARAM_NAME_MAX 64
/* The rule as people read it; the number is PARAM_NAME_MAX. */
#define PARAM_NAME_RULE                                                        \
	"a query parameter name (1 to 64 of A-Z, a-z, 0-9, '-', '.', '_', "    \
	"'~', '[' and ']')"
#define PAGE_SIZE_MAX 10000
/* The largest configuration file read; far above any real one. */
#define FILE_MAX (16u * 1024 * 1024)
/* Paths are at most a handful of members deep; user-chosen names in them
 * (collections, headers) are bounded by the checks below or truncated. */
#define PATH_LEN 512

typedef struct parser {
	char *why;
	size_t why_len;
} parser;

static ferry_err fail(parser *p, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Write "PATH: problem" and return FERRY_E_INVALID. */
static ferry_err fail(parser *p, const char *path, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(p->why, p->why_len,
			 "%s: ", *path ? path : "top level");
	if (n >= 0 && (size_t)n < p->why_len) {
		va_start(ap, fmt);
		vsnprintf(p->why + n, p->why_len - (size_t)n, fmt, ap);
		va_end(ap);
	}
	ferry_utf8_trim(p->why);
	return FERRY_E_INVALID;
}

static ferry_err nomem(parser *p)
{
	snprintf(p->why, p->why_len, "out of memory");
	return FERRY_E_NOMEM;
}

/* Member names are written as they are; an empty one as "". A path too
 * long for PATH_LEN is cut: its start still says where to look. */
static void path_member(char *out, const char *path, const char *name)
{
	int n;
	if (!*name)
		name = "\"\"";
	if (*path)
		n = snprintf(out, PATH_LEN, "%s.%s", path, name);
	else
		n = snprintf(out, PATH_LEN, "%s", name);
	if (n >= PATH_LEN)
		ferry_utf8_trim(out);
}

static void path_index(char *out, const char *path, size_t i)
{
	if (snprintf(out, PATH_LEN, "%s[%zu]", path, i) >= PATH_LEN)
		ferry_utf8_trim(out);
}

static ferry_err dup_str(parser *p, char **out, const char *s)
{
	*out = strdup(s);
	return *out ? FERRY_OK : nomem(p);
}

/* ------------------------------------------------------------------------ */
/* Members and their types                                                  */
/* ------------------------------------------------------------------------ */

typedef enum want {
	WANT_ANY,
	WANT_STRING,
	WANT_OBJECT,
	WANT_ARRAY,
	WANT_INTEGER,
	WANT_BOOL,
} want;

const char *adapter_json_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a number with a fraction";
	case JSON_TRUE:
		return "true";
	case JSON_FALSE:
		return "false";
	case JSON_NULL:
		return "null";
	}
	return "an unknown value";
}

static int is_kind(const json_t *v, want w)
{
	switch (w) {
	case WANT_ANY:
		return 1;
	case WANT_STRING:
		return json_is_string(v);
	case WANT_OBJECT:
		return json_is_object(v);
	case WANT_ARRAY:
		return json_is_array(v);
	case WANT_INTEGER:
		return json_is_integer(v);
	case WANT_BOOL:
		return json_is_boolean(v);
	}
	return 0;
}

static const char *want_name(want w)
{
	static const char *const names[] = {
		[WANT_ANY] = "any value",      [WANT_STRING] = "a string",
		[WANT_OBJECT] = "an object",   [WANT_ARRAY] = "an array",
		[WANT_INTEGER] = "an integer", [WANT_BOOL] = "true or false",
	};
	return names[w];
}

/* Check that `v`, found at `path`, is of kind `w`; strings must not hold a
 * NUL (a C string would silently end there). */
static ferry_err check_kind(parser *p, const json_t *v, const char *path,
			    want w)
{
	if (!is_kind(v, w))
		return fail(p, path, "expected %s (got %s)", want_name(w),
			    adapter_json_kind(v));
	if (json_is_string(v) &&
	    strlen(json_string_value(v)) != json_string_length(v))
		return fail(p, path, "contains a NUL character");
	return FERRY_OK;
}

/*
 * The member `name` of `obj` (at `path`) in *out, checked to be of kind
 * `w`; NULL when absent. `required` is NULL for an optional member, else
 * the reason it is required ("" for plain "required").
 */
static ferry_err get(parser *p, const json_t *obj, const char *path,
		     const char *name, want w, const char *required,
		     const json_t **out)
{
	char mpath[PATH_LEN];
	path_member(mpath, path, name);
	*out = json_object_get(obj, name);
	if (!*out) {
		if (!required)
			return FERRY_OK;
		return fail(p, mpath, "missing (%s)",
			    *required ? required : "required");
	}
	return check_kind(p, *out, mpath, w);
}

static ferry_err get_str(parser *p, const json_t *obj, const char *path,
			 const char *name, const char *required,
			 const char **out)
{
	const json_t *v;
	ferry_err err = get(p, obj, path, name, WANT_STRING, required, &v);
	*out = v && !err ? json_string_value(v) : NULL;
	return err;
}

static ferry_err get_bool(parser *p, const json_t *obj, const char *path,
			  const char *name, int *out)
{
	const json_t *v;
	ferry_err err = get(p, obj, path, name, WANT_BOOL, NULL, &v);
	*out = v && json_is_true(v);
	return err;
}

/* An integer member in lo..hi, `def` when absent. */
static ferry_err get_u32(parser *p, const json_t *obj, const char *path,
			 const char *name, uint32_t lo, uint32_t hi,
			 uint32_t def, const char *required, uint32_t *out)
{
	const json_t *v;
	ferry_err err = get(p, obj, path, name, WANT_INTEGER, required, &v);
	*out = def;
	if (err || !v)
		return err;
	json_int_t n = json_integer_value(v);
	if (n < (json_int_t)lo || n > (json_int_t)hi) {
		char mpath[PATH_LEN];
		path_member(mpath, path, name);
		return fail(p, mpath, "%lld is out of range (%u to %u)",
			    (long long)n, lo, hi);
	}
	*out = (uint32_t)n;
	return FERRY_OK;
}

/* Every member of `obj` must be one of `allowed` (NULL-terminated). */
static ferry_err check_members(parser *p, const json_t *obj, const char *path,
			       const char *const *allowed)
{
	const char *key;
	size_t key_len;
	const json_t *v;
	json_object_keylen_foreach((json_t *)obj, key, key_len, v)
	{
		size_t i;
		for (i = 0; allowed[i]; i++)
			if (strlen(allowed[i]) == key_len &&
			    memcmp(allowed[i], key, key_len) == 0)
				break;
		if (allowed[i])
			continue;
		char list[256] = "";
		size_t used = 0;
		for (i = 0; allowed[i]; i++) {
			int n = snprintf(list + used, sizeof(list) - used,
					 "%s%s", i ? ", " : "", allowed[i]);
			if (n < 0 || (size_t)n >= sizeof(list) - used)
				break;
			used += (size_t)n;
		}
		char mpath[PATH_LEN];
		path_member(mpath, path, key);
		return fail(p, mpath, "unknown member (expected %s)", list);
	}
	return FERRY_OK;
}

/* A member name chosen by the user (collection, header, field): no NUL,
 * which jansson allows in keys but C strings cannot carry. */
static ferry_err check_key(parser *p, const char *path, const char *key,
			   size_t key_len)
{
	if (strlen(key) != key_len)
		return fail(p, path, "name contains a NUL character");
	return FERRY_OK;
}

/* ------------------------------------------------------------------------ */
/* Names, URLs, pointers                                                    */
/* ------------------------------------------------------------------------ */

/* Adapter and pull names: 1..32 of [a-z0-9_-]. */
static int slug_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > ADAPTER_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

/* 1..max characters, each an ASCII letter, a digit or one of `extra`. */
static int ascii_name_ok(const char *s, size_t max, const char *extra)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || strchr(extra, c)))
			return 0;
	}
	return 1;
}

/* The rule of secret.h, kept here so that the configuration can be
 * checked without linking the secret store: 1..64 of [A-Za-z0-9_.-]. */
static int secret_name_ok(const char *s)
{
	return ascii_name_ok(s, 64, "_.-");
}

/* HTTP header names are RFC 9110 tokens. */
static int header_name_ok(const char *s)
{
	return ascii_name_ok(s, HEADER_NAME_MAX, "!#$%&'*+-.^_`|~");
}

/* Query parameter names are sent as written, so only characters that need
 * no percent-encoding (plus brackets, for "page[number]" styles). */
static int param_name_ok(const char *s)
{
	return ascii_name_ok(s, PARAM_NAME_MAX, "-._~[]");
}

/* A scope, collection or key as ferry stores it (node_check_name). */
static ferry_err check_store_name(parser *p, const char *path, const char *what,
				  const char *s, size_t max, const char *limit)
{
	size_t n = strlen(s);
	if (n == 0)
		return fail(p, path, "%s is empty", what);
	if (n > max)
		return fail(p, path, "%s is %zu bytes; the limit %s is %zu",
			    what, n, limit, max);
	if (!ferry_utf8_valid(s, n))
		return fail(p, path, "%s is not valid UTF-8", what);
	return FERRY_OK;
}

/* Length of the "http://" or "https://" at the start of `s`, or 0. */
static size_t url_scheme(const char *s)
{
	if (strncmp(s, "http://", 7) == 0)
		return 7;
	if (strncmp(s, "https://", 8) == 0)
		return 8;
	return 0;
}

static int has_space_or_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/* An absolute http(s) URL with a host; `base` ones (base_url) take no
 * query or fragment, since request paths are appended to them. */
static ferry_err check_abs_url(parser *p, const char *path, const char *s,
			       int base)
{
	size_t scheme = url_scheme(s);
	if (!scheme)
		return fail(p, path,
			    "'%.80s' must start with http:// or "
			    "https://",
			    s);
	if (s[scheme] == '\0' || strchr("/?#", s[scheme]))
		return fail(p, path, "'%.80s' has no host", s);
	if (has_space_or_control(s))
		return fail(p, path,
			    "contains a space or control character "
			    "(percent-encode it)");
	if (base && strpbrk(s, "?#"))
		return fail(p, path,
			    "must not have a query or fragment (request URLs "
			    "are appended to it)");
	return FERRY_OK;
}

/* A request URL as written: absolute, or relative to base_url and then
 * starting with '/'. */
static ferry_err check_request_url(parser *p, const char *path, const char *s)
{
	if (url_scheme(s)) {
		if (s[url_scheme(s)] == '\0')
			return fail(p, path, "'%.80s' has no host", s);
	} else if (s[0] != '/') {
		return fail(p, path,
			    "'%.80s' must start with '/' (relative to "
			    "base_url) or with http:// or https://",
			    s);
	}
	if (has_space_or_control(s))
		return fail(p, path,
			    "contains a space or control character "
			    "(percent-encode it)");
	return FERRY_OK;
}

/* An optional string member that must pass `valid`, copied into *out
 * (`def` when absent, or NULL). The error reads "'VALUE' is not WHAT". */
static ferry_err get_checked(parser *p, const json_t *obj, const char *path,
			     const char *name, const char *required,
			     const char *def, int (*valid)(const char *),
			     const char *what, char **out)
{
	const char *s;
	ferry_err err = get_str(p, obj, path, name, required, &s);
	if (err)
		return err;
	if (!s)
		return def ? dup_str(p, out, def) : FERRY_OK;
	if (!valid(s)) {
		char mpath[PATH_LEN];
		path_member(mpath, path, name);
		return fail(p, mpath, "'%.80s' is not %s", s, what);
	}
	return dup_str(p, out, s);
}

static ferry_err get_pointer(parser *p, const json_t *obj, const char *path,
			     const char *name, const char *required,
			     const char *def, char **out)
{
	return get_checked(p, obj, path, name, required, def,
			   tmpl_pointer_valid,
			   "a JSON pointer (\"\" or \"/a/b\", with ~0 for ~ "
			   "and ~1 for /)",
			   out);
}

static ferry_err get_secret(parser *p, const json_t *obj, const char *path,
			    const char *name, const char *required, char **out)
{
	return get_checked(p, obj, path, name, required, NULL, secret_name_ok,
			   "a secret name (1 to 64 of A-Z, a-z, 0-9, '_', '.' "
			   "and '-')",
			   out);
}

static ferry_err get_param(parser *p, const json_t *obj, const char *path,
			   const char *name, const char *required, char **out)
{
	return get_checked(p, obj, path, name, required, NULL, param_name_ok,
			   PARAM_NAME_RULE, out);
}

static ferry_err get_header_name(parser *p, const json_t *obj, const char *path,
				 const char *name, const char *required,
				 const char *def, char **out)
{
	return get_checked(p, obj, path, name, required, def, header_name_ok,
			   "an HTTP header name", out);
}

/* ------------------------------------------------------------------------ */
/* Templates                                                                */
/* ------------------------------------------------------------------------ */

/* How many containers deep a failed template is searched for the member
 * that fails on its own; past that the error names the container. */
#define LOCATE_DEPTH 8

/* Compile `alone` (one member or element, wrapped; taken) to see whether
 * it is the part that fails. FERRY_E_NOMEM when `alone` is NULL. */
static ferry_err compiles_alone(json_t *alone, tmpl_kind kind, char *why,
				size_t why_len)
{
	tmpl *t = NULL;
	why[0] = '\0';
	ferry_err err = alone ? tmpl_compile(&t, alone, kind, why, why_len)
			      : FERRY_E_NOMEM;
	json_decref(alone);
	tmpl_free(t);
	return err;
}

/*
 * Report a template that failed to compile at the deepest member that
 * fails on its own, so that "fields.amount: round must be ..." names the
 * member rather than the whole object. Each member is tried inside a
 * one-member object (or array) of its own, so that it keeps its meaning:
 * a computed value is only one as a member of `fields`. When no single
 * member fails, the container itself is reported with `why`.
 */
static ferry_err locate(parser *p, const char *path, const json_t *v,
			tmpl_kind kind, const char *why, int depth)
{
	char mpath[PATH_LEN], mwhy[256];
	const char *key;
	size_t key_len, i;
	json_t *m;
	if (depth < LOCATE_DEPTH && json_is_object(v)) {
		json_object_keylen_foreach((json_t *)v, key, key_len, m)
		{
			json_t *one = json_object();
			if (one && json_object_setn(one, key, key_len, m)) {
				json_decref(one);
				one = NULL;
			}
			ferry_err err =
				compiles_alone(one, kind, mwhy, sizeof(mwhy));
			if (err == FERRY_E_NOMEM)
				return nomem(p);
			if (!err)
				continue;
			path_member(mpath, path, key);
			return locate(p, mpath, m, kind, mwhy, depth + 1);
		}
	} else if (depth < LOCATE_DEPTH && json_is_array(v)) {
		json_array_foreach(v, i, m)
		{
			json_t *one = json_array();
			if (one && json_array_append(one, m)) {
				json_decref(one);
				one = NULL;
			}
			ferry_err err =
				compiles_alone(one, kind, mwhy, sizeof(mwhy));
			if (err == FERRY_E_NOMEM)
				return nomem(p);
			if (!err)
				continue;
			path_index(mpath, path, i);
			return locate(p, mpath, m, kind, mwhy, depth + 1);
		}
	}
	return fail(p, path, "%s", why);
}

static ferry_err compile(parser *p, const char *path, const json_t *value,
			 tmpl_kind kind, tmpl **out)
{
	char why[256];
	why[0] = '\0';
	ferry_err err = tmpl_compile(out, value, kind, why, sizeof(why));
	if (err == FERRY_E_NOMEM)
		return nomem(p);
	if (err)
		return locate(p, path, value, kind, why, 0);
	return FERRY_OK;
}

/* The text of a constant payload template (rendered against nothing, so
 * that "{{" and "}}" escapes come out as the braces they stand for). */
static ferry_err constant_text(parser *p, const char *path, const tmpl *t,
			       char **out)
{
	char why[256];
	json_t *empty = json_object();
	json_t *v = empty ? tmpl_render_payload(t, TMPL_TEXT, empty, why,
						sizeof(why))
			  : NULL;
	json_decref(empty);
	if (!v)
		return empty ? fail(p, path, "%s", why) : nomem(p);
	*out = tmpl_text(v);
	json_decref(v);
	return *out ? FERRY_OK : nomem(p);
}

/* ------------------------------------------------------------------------ */
/* Headers and requests                                                     */
/* ------------------------------------------------------------------------ */

/* The optional "headers" member of `obj`: name -> text template. */
static ferry_err parse_headers(parser *p, const json_t *obj, const char *path,
			       adapter_header **out, size_t *n)
{
	char hpath[PATH_LEN], mpath[PATH_LEN];
	const json_t *h, *v;
	const char *key;
	size_t key_len;
	ferry_err err = get(p, obj, path, "headers", WANT_OBJECT, NULL, &h);
	if (err || !h)
		return err;
	path_member(hpath, path, "headers");
	if (json_object_size(h) > MAX_HEADERS)
		return fail(p, hpath, "%zu headers; at most %d are allowed",
			    json_object_size(h), MAX_HEADERS);
	if (json_object_size(h) == 0)
		return FERRY_OK;
	*out = calloc(json_object_size(h), sizeof(**out));
	if (!*out)
		return nomem(p);
	json_object_keylen_foreach((json_t *)h, key, key_len, v)
	{
		path_member(mpath, hpath, key);
		if ((err = check_key(p, mpath, key, key_len)))
			return err;
		if (!header_name_ok(key))
			return fail(p, mpath, "not an HTTP header name");
		for (size_t i = 0; i < *n; i++)
			if (strcasecmp((*out)[i].name, key) == 0)
				return fail(p, mpath,
					    "repeats header %s (names are "
					    "case-insensitive)",
					    (*out)[i].name);
		if ((err = check_kind(p, v, mpath, WANT_STRING)))
			return err;
		for (const char *c = json_string_value(v); *c; c++)
			if (((unsigned char)*c < 0x20 && *c != '\t') ||
			    *c == 0x7f)
				return fail(p, mpath,
					    "contains a control character");
		adapter_header *hd = &(*out)[(*n)++];
		if ((err = dup_str(p, &hd->name, key)) ||
		    (err = compile(p, mpath, v, TMPL_RECORD, &hd->value)))
			return err;
	}
	return FERRY_OK;
}

static const char *const methods[] = {"GET",   "POST",	 "PUT",
				      "PATCH", "DELETE", NULL};

/* One push REQUEST, the member `name` of a collection. */
static ferry_err parse_request(parser *p, const json_t *coll, const char *cpath,
			       const char *name, int is_create,
			       adapter_request *r)
{
	static const char *const create_members[] = {
		"method", "url", "body", "headers", "id_from", NULL};
	static const char *const other_members[] = {"method", "url", "body",
						    "headers", NULL};
	char rpath[PATH_LEN], mpath[PATH_LEN];
	const json_t *obj, *v;
	const char *s;
	ferry_err err = get(p, coll, cpath, name, WANT_OBJECT,
			    is_create ? "" : NULL, &obj);
	if (err || !obj)
		return err;
	path_member(rpath, cpath, name);
	if ((err = check_members(p, obj, rpath,
				 is_create ? create_members : other_members)))
		return err;

	if ((err = get_str(p, obj, rpath, "method", "", &s)))
		return err;
	size_t i;
	for (i = 0; methods[i] && strcmp(methods[i], s) != 0; i++)
		;
	if (!methods[i]) {
		path_member(mpath, rpath, "method");
		return fail(p, mpath,
			    "'%.40s' is not one of GET, POST, PUT, PATCH, "
			    "DELETE (upper case)",
			    s);
	}
	if ((err = dup_str(p, &r->method, s)))
		return err;

	if ((err = get(p, obj, rpath, "url", WANT_STRING, "", &v)))
		return err;
	path_member(mpath, rpath, "url");
	if ((err = check_request_url(p, mpath, json_string_value(v))) ||
	    (err = compile(p, mpath, v, TMPL_RECORD, &r->url)))
		return err;

	if ((err = get(p, obj, rpath, "body", WANT_ANY, NULL, &v)))
		return err;
	path_member(mpath, rpath, "body");
	if (v && (err = compile(p, mpath, v, TMPL_RECORD, &r->body)))
		return err;

	if ((err = parse_headers(p, obj, rpath, &r->headers, &r->nheaders)))
		return err;
	if (is_create)
		err = get_pointer(p, obj, rpath, "id_from", NULL, NULL,
				  &r->id_from);
	return err;
}

/* ------------------------------------------------------------------------ */
/* Push                                                                     */
/* ------------------------------------------------------------------------ */

static ferry_err parse_scopes(parser *p, const json_t *push, const char *path,
			      grant *g)
{
	char spath[PATH_LEN], ipath[PATH_LEN];
	const json_t *arr, *v;
	size_t i;
	ferry_err err = get(p, push, path, "scopes", WANT_ARRAY, "", &arr);
	if (err)
		return err;
	path_member(spath, path, "scopes");
	if (json_array_size(arr) == 0)
		return fail(p, spath,
			    "is empty (name at least one scope pattern: '*', "
			    "'NAME/*' or a scope)");
	if (json_array_size(arr) > GRANT_MAX_PATTERNS)
		return fail(p, spath, "%zu patterns; at most %d are allowed",
			    json_array_size(arr), GRANT_MAX_PATTERNS);
	g->patterns = calloc(json_array_size(arr), sizeof(*g->patterns));
	if (!g->patterns)
		return nomem(p);
	json_array_foreach(arr, i, v)
	{
		path_index(ipath, spath, i);
		if ((err = check_kind(p, v, ipath, WANT_STRING)))
			return err;
		const char *s = json_string_value(v);
		if (!grant_pattern_valid(s)) {
			/* grant_parse says what is wrong with a pattern;
			 * one it accepts is still not a single pattern as
			 * written when it has commas or blanks around it. */
			char why[160] = "";
			grant one;
			if (!strchr(s, ',') &&
			    grant_parse(&one, s, why, sizeof(why)) ==
				    FERRY_OK) {
				grant_clear(&one);
				why[0] = '\0';
			}
			if (why[0])
				return fail(p, ipath, "bad grant pattern: %s",
					    why);
			return fail(p, ipath,
				    "'%.80s' is not one grant pattern ('*', "
				    "'NAME/*' or a scope name, without commas "
				    "or surrounding blanks)",
				    s);
		}
		size_t j;
		for (j = 0; j < g->n && strcmp(g->patterns[j], s) != 0; j++)
			;
		if (j < g->n)
			continue;
		if ((err = dup_str(p, &g->patterns[g->n], s)))
			return err;
		g->n++;
	}
	return FERRY_OK;
}

static ferry_err parse_push(parser *p, const json_t *a, const char *apath,
			    adapter_push **out)
{
	static const char *const push_members[] = {"scopes", "collections",
						   "start", NULL};
	static const char *const coll_members[] = {"create", "update", "delete",
						   "store_id", NULL};
	char path[PATH_LEN], cspath[PATH_LEN], cpath[PATH_LEN];
	const json_t *push, *colls, *c;
	const char *key, *s;
	size_t key_len;
	ferry_err err = get(p, a, apath, "push", WANT_OBJECT, NULL, &push);
	if (err || !push)
		return err;
	path_member(path, apath, "push");
	if ((err = check_members(p, push, path, push_members)))
		return err;
	adapter_push *ps = calloc(1, sizeof(*ps));
	if (!ps)
		return nomem(p);
	*out = ps;
	if ((err = parse_scopes(p, push, path, &ps->scopes)))
		return err;
	if ((err = get_str(p, push, path, "start", NULL, &s)))
		return err;
	if (s && strcmp(s, "beginning") && strcmp(s, "now")) {
		char spath[PATH_LEN];
		path_member(spath, path, "start");
		return fail(p, spath, "'%.40s' is not beginning or now", s);
	}
	ps->start_now = s && !strcmp(s, "now");

	if ((err = get(p, push, path, "collections", WANT_OBJECT, "", &colls)))
		return err;
	path_member(cspath, path, "collections");
	if (json_object_size(colls) == 0)
		return fail(p, cspath,
			    "is empty (name at least one collection)");
	if (json_object_size(colls) > MAX_COLLECTIONS)
		return fail(p, cspath,
			    "%zu collections; at most %d are allowed",
			    json_object_size(colls), MAX_COLLECTIONS);
	ps->collections =
		calloc(json_object_size(colls), sizeof(*ps->collections));
	if (!ps->collections)
		return nomem(p);
	json_object_keylen_foreach((json_t *)colls, key, key_len, c)
	{
		path_member(cpath, cspath, key);
		if ((err = check_key(p, cpath, key, key_len)) ||
		    (err = check_store_name(p, cpath, "collection name", key,
					    FERRY_MAX_COLLECTION_BYTES,
					    "FERRY_MAX_COLLECTION_BYTES")) ||
		    (err = check_kind(p, c, cpath, WANT_OBJECT)) ||
		    (err = check_members(p, c, cpath, coll_members)))
			return err;
		adapter_push_collection *pc =
			&ps->collections[ps->ncollections++];
		if ((err = dup_str(p, &pc->name, key)) ||
		    (err = parse_request(p, c, cpath, "create", 1,
					 &pc->create)) ||
		    (err = parse_request(p, c, cpath, "update", 0,
					 &pc->update)) ||
		    (err = parse_request(p, c, cpath, "delete", 0, &pc->del)) ||
		    (err = get_str(p, c, cpath, "store_id", NULL, &s)))
			return err;
		if (s) {
			char mpath[PATH_LEN];
			path_member(mpath, cpath, "store_id");
			if ((err = check_store_name(
				     p, mpath, "field name", s,
				     FERRY_MAX_FIELD_NAME_BYTES,
				     "FERRY_MAX_FIELD_NAME_BYTES")) ||
			    (err = dup_str(p, &pc->store_id, s)))
				return err;
		}
	}
	return FERRY_OK;
}

/* ------------------------------------------------------------------------ */
/* Mappings: webhook writes and pulls                                       */
/* ------------------------------------------------------------------------ */

/*
 * One text member of a mapping, compiled as a payload template. With
 * `constant` it must hold no placeholder; a constant scope, collection or
 * key is checked against ferry's limits now (`max` > 0), since every
 * payload would otherwise fail on it.
 */
static ferry_err map_text(parser *p, const json_t *obj, const char *path,
			  const char *name, const char *required,
			  const char *constant, const char *what, size_t max,
			  const char *limit, tmpl **out)
{
	char mpath[PATH_LEN];
	const json_t *v;
	ferry_err err = get(p, obj, path, name, WANT_STRING, required, &v);
	if (err || !v)
		return err;
	path_member(mpath, path, name);
	if ((err = compile(p, mpath, v, TMPL_PAYLOAD, out)))
		return err;
	if (!tmpl_is_constant(*out)) {
		if (constant)
			return fail(p, mpath,
				    "must be a constant (%s; no placeholders "
				    "such as {/x})",
				    constant);
		return FERRY_OK;
	}
	if (max == 0)
		return FERRY_OK;
	char *text = NULL;
	if ((err = constant_text(p, mpath, *out, &text)))
		return err;
	err = check_store_name(p, mpath, what, text, max, limit);
	free(text);
	return err;
}

static ferry_err parse_fields(parser *p, const json_t *obj, const char *path,
			      tmpl **out)
{
	char fpath[PATH_LEN], mpath[PATH_LEN];
	const json_t *f, *v;
	const char *key;
	size_t key_len;
	ferry_err err = get(p, obj, path, "fields", WANT_OBJECT, "", &f);
	if (err)
		return err;
	path_member(fpath, path, "fields");
	if (json_object_size(f) == 0)
		return fail(p, fpath, "is empty (map at least one field)");
	if (json_object_size(f) > FERRY_MAX_FIELDS_PER_WRITE)
		return fail(p, fpath,
			    "%zu fields; the limit FERRY_MAX_FIELDS_PER_WRITE "
			    "is %d",
			    json_object_size(f), FERRY_MAX_FIELDS_PER_WRITE);
	json_object_keylen_foreach((json_t *)f, key, key_len, v)
	{
		path_member(mpath, fpath, key);
		if ((err = check_key(p, mpath, key, key_len)) ||
		    (err = check_store_name(p, mpath, "field name", key,
					    FERRY_MAX_FIELD_NAME_BYTES,
					    "FERRY_MAX_FIELD_NAME_BYTES")))
			return err;
	}
	return compile(p, fpath, f, TMPL_FIELDS, out);
}

/* `pull` selects the pull rules: scope and collection constant, id
 * required. */
static ferry_err parse_mapping(parser *p, const json_t *obj, const char *path,
			       int pull, adapter_mapping *m)
{
	const char *constant =
		pull ? "a pull writes every item into one scope and collection"
		     : NULL;
	ferry_err err;
	if ((err = map_text(p, obj, path, "scope", "", constant, "scope",
			    FERRY_MAX_SCOPE_BYTES, "FERRY_MAX_SCOPE_BYTES",
			    &m->scope)) ||
	    (err = map_text(p, obj, path, "collection", "", constant,
			    "collection", FERRY_MAX_COLLECTION_BYTES,
			    "FERRY_MAX_COLLECTION_BYTES", &m->collection)) ||
	    (err = map_text(p, obj, path, "key", "", NULL, "key",
			    FERRY_MAX_KEY_BYTES, "FERRY_MAX_KEY_BYTES",
			    &m->key)) ||
	    (err = map_text(p, obj, path, "id",
			    pull ? "required for pulls" : NULL, NULL, "id", 0,
			    NULL, &m->id)))
		return err;
	return parse_fields(p, obj, path, &m->fields);
}

/* ------------------------------------------------------------------------ */
/* Pulls                                                                    */
/* ------------------------------------------------------------------------ */

static ferry_err parse_page(parser *p, const json_t *obj, const char *path,
			    adapter_pull *pl)
{
	static const char *const page_members[] = {"param", "size_param",
						   "size", NULL};
	char ppath[PATH_LEN], mpath[PATH_LEN];
	const json_t *page;
	ferry_err err = get(p, obj, path, "page", WANT_OBJECT, NULL, &page);
	if (err || !page)
		return err;
	path_member(ppath, path, "page");
	if ((err = check_members(p, page, ppath, page_members)))
		return err;
	pl->paged = 1;
	if ((err = get_param(p, page, ppath, "param", "", &pl->page_param)) ||
	    (err = get_param(p, page, ppath, "size_param", NULL,
			     &pl->size_param)))
		return err;
	if (pl->size_param && strcmp(pl->size_param, pl->page_param) == 0) {
		path_member(mpath, ppath, "size_param");
		return fail(p, mpath, "is the same as param");
	}
	return get_u32(p, page, ppath, "size", 1, PAGE_SIZE_MAX, 0, "",
		       &pl->page_size);
}

/* "next": {"link": true} | {"url": POINTER} | {"cursor": POINTER,
 * "param": NAME} — exactly one way, and not together with "page". */
static ferry_err parse_next(parser *p, const json_t *obj, const char *path,
			    adapter_pull *pl)
{
	static const char *const next_members[] = {"link", "url", "cursor",
						   "param", NULL};
	char npath[PATH_LEN], mpath[PATH_LEN];
	const json_t *next;
	int link = 0;
	ferry_err err = get(p, obj, path, "next", WANT_OBJECT, NULL, &next);
	if (err || !next)
		return err;
	path_member(npath, path, "next");
	if ((err = check_members(p, next, npath, next_members)) ||
	    (err = get_bool(p, next, npath, "link", &link)) ||
	    (err = get_pointer(p, next, npath, "url", NULL, NULL,
			       &pl->next_pointer)))
		return err;
	int ways =
		link + !!pl->next_pointer + !!json_object_get(next, "cursor");
	if (ways != 1)
		return fail(p, npath,
			    "give exactly one of \"link\": true, \"url\" "
			    "(a pointer to the next page's URL) or "
			    "\"cursor\" with \"param\"");
	if (pl->paged)
		return fail(p, npath, "cannot be used together with page");
	pl->next = link		      ? ADAPTER_NEXT_LINK
		   : pl->next_pointer ? ADAPTER_NEXT_URL
				      : ADAPTER_NEXT_CURSOR;
	if (pl->next != ADAPTER_NEXT_CURSOR) {
		if (json_object_get(next, "param")) {
			path_member(mpath, npath, "param");
			return fail(p, mpath, "goes only with cursor");
		}
		return FERRY_OK;
	}
	if ((err = get_pointer(p, next, npath, "cursor", "", NULL,
			       &pl->next_pointer)))
		return err;
	return get_param(p, next, npath, "param", "", &pl->cursor_param);
}

/*
 * A pull's URL: a constant, since a pull has no record to fill
 * placeholders from. Any placeholder, even one that would be no valid
 * record placeholder ("{/x}"), is reported as such rather than by the
 * record rules; only broken braces keep the template's own message.
 */
static ferry_err pull_url(parser *p, const char *path, const json_t *v,
			  tmpl **out)
{
	static const char not_constant[] =
		"must be a constant (a pull has no record to fill "
		"placeholders from)";
	char why[256];
	tmpl *probe = NULL;
	ferry_err err = tmpl_compile(out, v, TMPL_RECORD, why, sizeof(why));
	if (err == FERRY_E_NOMEM)
		return nomem(p);
	if (!err)
		return tmpl_is_constant(*out)
			       ? FERRY_OK
			       : fail(p, path, "%s", not_constant);
	/* A payload template takes any "{/pointer}": if the text compiles
	 * as one, the braces are fine and a placeholder is what is wrong. */
	char pwhy[256];
	ferry_err perr =
		tmpl_compile(&probe, v, TMPL_PAYLOAD, pwhy, sizeof(pwhy));
	int placeholder = !perr && !tmpl_is_constant(probe);
	if (probe)
		tmpl_free(probe);
	if (perr == FERRY_E_NOMEM)
		return nomem(p);
	return placeholder ? fail(p, path, "%s", not_constant)
			   : fail(p, path, "%s", why);
}

static ferry_err parse_pulls(parser *p, const json_t *a, const char *apath,
			     adapter_def *d)
{
	static const char *const pull_members[] = {
		"name",	  "every_s",	    "url",	  "items", "page",
		"next",	  "scope",	    "collection", "id",	   "key",
		"fields", "delete_missing", NULL};
	char path[PATH_LEN], ipath[PATH_LEN], mpath[PATH_LEN];
	const json_t *arr, *obj, *v;
	const char *s;
	size_t i;
	ferry_err err = get(p, a, apath, "pulls", WANT_ARRAY, NULL, &arr);
	if (err || !arr || json_array_size(arr) == 0)
		return err;
	path_member(path, apath, "pulls");
	if (json_array_size(arr) > MAX_PULLS)
		return fail(p, path, "%zu pulls; at most %d are allowed",
			    json_array_size(arr), MAX_PULLS);
	d->pulls = calloc(json_array_size(arr), sizeof(*d->pulls));
	if (!d->pulls)
		return nomem(p);
	json_array_foreach(arr, i, obj)
	{
		path_index(ipath, path, i);
		if ((err = check_kind(p, obj, ipath, WANT_OBJECT)) ||
		    (err = check_members(p, obj, ipath, pull_members)))
			return err;
		adapter_pull *pl = &d->pulls[d->npulls++];

		if ((err = get_str(p, obj, ipath, "name", "", &s)))
			return err;
		path_member(mpath, ipath, "name");
		if (!slug_valid(s))
			return fail(p, mpath,
				    "'%.40s' is not a valid name (1 to %d of "
				    "a-z, 0-9, '_' and '-')",
				    s, ADAPTER_NAME_MAX);
		for (size_t j = 0; j + 1 < d->npulls; j++)
			if (strcmp(d->pulls[j].name, s) == 0)
				return fail(p, mpath,
					    "duplicate pull name '%s' (also "
					    "pulls[%zu])",
					    s, j);
		if ((err = dup_str(p, &pl->name, s)))
			return err;

		if ((err = get_u32(p, obj, ipath, "every_s", 1, 604800, 0, "",
				   &pl->every_s)))
			return err;

		if ((err = get(p, obj, ipath, "url", WANT_STRING, "", &v)))
			return err;
		path_member(mpath, ipath, "url");
		if ((err = check_request_url(p, mpath, json_string_value(v))) ||
		    (err = pull_url(p, mpath, v, &pl->url)))
			return err;

		if ((err = get_pointer(p, obj, ipath, "items", NULL, "",
				       &pl->items)) ||
		    (err = parse_page(p, obj, ipath, pl)) ||
		    (err = parse_next(p, obj, ipath, pl)) ||
		    (err = parse_mapping(p, obj, ipath, 1, &pl->map)) ||
		    (err = get_bool(p, obj, ipath, "delete_missing",
				    &pl->delete_missing)))
			return err;
	}
	return FERRY_OK;
}

/* ------------------------------------------------------------------------ */
/* Webhook                                                                  */
/* ------------------------------------------------------------------------ */

static ferry_err parse_hmac(parser *p, const json_t *hmac, const char *path,
			    adapter_webhook *w)
{
	static const char *const hmac_members[] = {"secret", "header", "prefix",
						   "encoding", NULL};
	const char *s;
	ferry_err err;
	if ((err = check_members(p, hmac, path, hmac_members)) ||
	    (err = get_secret(p, hmac, path, "secret", "", &w->hmac_secret)) ||
	    (err = get_header_name(p, hmac, path, "header", NULL, "X-Signature",
				   &w->hmac_header)) ||
	    (err = get_str(p, hmac, path, "prefix", NULL, &s)) ||
	    (err = dup_str(p, &w->hmac_prefix, s ? s : "")) ||
	    (err = get_str(p, hmac, path, "encoding", NULL, &s)))
		return err;
	if (!s || strcmp(s, "hex") == 0) {
		w->hmac_encoding = ADAPTER_HEX;
	} else if (strcmp(s, "base64") == 0) {
		w->hmac_encoding = ADAPTER_BASE64;
	} else {
		char mpath[PATH_LEN];
		path_member(mpath, path, "encoding");
		return fail(p, mpath, "'%.40s' is not hex or base64", s);
	}
	return FERRY_OK;
}

static ferry_err parse_webhook_auth(parser *p, const json_t *wh,
				    const char *path, adapter_webhook *w)
{
	static const char *const auth_members[] = {"hmac", "api_key", NULL};
	char apath[PATH_LEN], mpath[PATH_LEN];
	const json_t *auth, *hmac, *key;
	ferry_err err;
	if ((err = get(p, wh, path, "auth", WANT_OBJECT, "", &auth)))
		return err;
	path_member(apath, path, "auth");
	if ((err = check_members(p, auth, apath, auth_members)) ||
	    (err = get(p, auth, apath, "hmac", WANT_OBJECT, NULL, &hmac)) ||
	    (err = get(p, auth, apath, "api_key", WANT_BOOL, NULL, &key)))
		return err;
	if (key && !json_is_true(key)) {
		path_member(mpath, apath, "api_key");
		return fail(p, mpath,
			    "must be true (or leave it out and use "
			    "hmac)");
	}
	if (!hmac == !key)
		return fail(p, apath,
			    "give exactly one of hmac and api_key (%s)",
			    hmac ? "both are set" : "neither is set");
	if (key) {
		w->api_key = 1;
		return FERRY_OK;
	}
	path_member(mpath, apath, "hmac");
	return parse_hmac(p, hmac, mpath, w);
}

static ferry_err parse_webhook(parser *p, const json_t *a, const char *apath,
			       adapter_webhook **out)
{
	static const char *const webhook_members[] = {"auth", "event_id",
						      "writes", NULL};
	char path[PATH_LEN], wpath[PATH_LEN], ipath[PATH_LEN];
	const json_t *wh, *arr, *obj;
	size_t i;
	ferry_err err = get(p, a, apath, "webhook", WANT_OBJECT, NULL, &wh);
	if (err || !wh)
		return err;
	path_member(path, apath, "webhook");
	if ((err = check_members(p, wh, path, webhook_members)))
		return err;
	adapter_webhook *w = calloc(1, sizeof(*w));
	if (!w)
		return nomem(p);
	*out = w;
	if ((err = parse_webhook_auth(p, wh, path, w)) ||
	    (err = get_pointer(p, wh, path, "event_id", "", NULL,
			       &w->event_id)))
		return err;
	if (w->event_id[0] == '\0') {
		path_member(ipath, path, "event_id");
		return fail(p, ipath,
			    "\"\" is the whole payload, an object; point at "
			    "a string or integer in it");
	}

	if ((err = get(p, wh, path, "writes", WANT_ARRAY, "", &arr)))
		return err;
	path_member(wpath, path, "writes");
	if (json_array_size(arr) == 0)
		return fail(p, wpath, "is empty (map at least one write)");
	if (json_array_size(arr) > MAX_WRITES)
		return fail(p, wpath, "%zu writes; at most %d are allowed",
			    json_array_size(arr), MAX_WRITES);
	w->writes = calloc(json_array_size(arr), sizeof(*w->writes));
	if (!w->writes)
		return nomem(p);
	static const char *const write_members[] = {
		"scope", "collection", "key", "id", "fields", NULL};
	json_array_foreach(arr, i, obj)
	{
		path_index(ipath, wpath, i);
		if ((err = check_kind(p, obj, ipath, WANT_OBJECT)) ||
		    (err = check_members(p, obj, ipath, write_members)) ||
		    (err = parse_mapping(p, obj, ipath, 0,
					 &w->writes[w->nwrites++])))
			return err;
	}
	return FERRY_OK;
}

/* ------------------------------------------------------------------------ */
/* Auth                                                                     */
/* ------------------------------------------------------------------------ */

static ferry_err parse_oauth2(parser *p, const json_t *auth, const char *path,
			      adapter_auth *au)
{
	char mpath[PATH_LEN];
	const char *s;
	ferry_err err;
	if ((err = get_str(p, auth, path, "token_url", "required for oauth2",
			   &s)))
		return err;
	path_member(mpath, path, "token_url");
	if ((err = check_abs_url(p, mpath, s, 0)) ||
	    (err = dup_str(p, &au->token_url, s)))
		return err;

	if ((err = get_str(p, auth, path, "grant", "required for oauth2", &s)))
		return err;
	int refresh = strcmp(s, "refresh_token") == 0;
	if (!refresh && strcmp(s, "client_credentials") != 0) {
		path_member(mpath, path, "grant");
		return fail(p, mpath,
			    "'%.40s' is not refresh_token or "
			    "client_credentials",
			    s);
	}
	au->grant = refresh ? ADAPTER_GRANT_REFRESH_TOKEN
			    : ADAPTER_GRANT_CLIENT_CREDENTIALS;

	if ((err = get_str(p, auth, path, "client_id", "required for oauth2",
			   &s)))
		return err;
	if (*s == '\0') {
		path_member(mpath, path, "client_id");
		return fail(p, mpath, "is empty");
	}
	if ((err = dup_str(p, &au->client_id, s)) ||
	    (err = get_secret(p, auth, path, "client_secret",
			      refresh ? NULL
				      : "required for grant client_credentials",
			      &au->client_secret)))
		return err;
	if (!refresh && json_object_get(auth, "refresh_token")) {
		path_member(mpath, path, "refresh_token");
		return fail(p, mpath,
			    "only for grant refresh_token (this adapter uses "
			    "client_credentials)");
	}
	if ((err = get_secret(p, auth, path, "refresh_token",
			      refresh ? "required for grant refresh_token"
				      : NULL,
			      &au->refresh_token)) ||
	    (err = get_str(p, auth, path, "scope", NULL, &s)))
		return err;
	return s ? dup_str(p, &au->scope, s) : FERRY_OK;
}

static ferry_err parse_auth(parser *p, const json_t *a, const char *apath,
			    adapter_auth *au)
{
	static const char *const none_members[] = {"type", NULL};
	static const char *const header_members[] = {"type", "name", "secret",
						     NULL};
	static const char *const bearer_members[] = {"type", "secret", NULL};
	static const char *const oauth2_members[] = {
		"type",		 "token_url",	  "grant", "client_id",
		"client_secret", "refresh_token", "scope", NULL};
	char path[PATH_LEN], mpath[PATH_LEN];
	const json_t *auth;
	const char *type;
	ferry_err err = get(p, a, apath, "auth", WANT_OBJECT, NULL, &auth);
	au->type = ADAPTER_AUTH_NONE;
	if (err || !auth)
		return err;
	path_member(path, apath, "auth");
	if ((err = get_str(p, auth, path, "type", "", &type)))
		return err;
	if (strcmp(type, "none") == 0) {
		return check_members(p, auth, path, none_members);
	} else if (strcmp(type, "header") == 0) {
		au->type = ADAPTER_AUTH_HEADER;
		if ((err = check_members(p, auth, path, header_members)) ||
		    (err = get_header_name(p, auth, path, "name",
					   "required for type header", NULL,
					   &au->header_name)))
			return err;
		return get_secret(p, auth, path, "secret",
				  "required for type header", &au->secret);
	} else if (strcmp(type, "bearer") == 0) {
		au->type = ADAPTER_AUTH_BEARER;
		if ((err = check_members(p, auth, path, bearer_members)))
			return err;
		return get_secret(p, auth, path, "secret",
				  "required for type bearer", &au->secret);
	} else if (strcmp(type, "oauth2") == 0) {
		au->type = ADAPTER_AUTH_OAUTH2;
		if ((err = check_members(p, auth, path, oauth2_members)))
			return err;
		return parse_oauth2(p, auth, path, au);
	}
	path_member(mpath, path, "type");
	return fail(p, mpath, "'%.40s' is not none, header, bearer or oauth2",
		    type);
}

/* ------------------------------------------------------------------------ */
/* Adapters                                                                 */
/* ------------------------------------------------------------------------ */

static ferry_err parse_retry(parser *p, const json_t *a, const char *apath,
			     adapter_def *d)
{
	static const char *const retry_members[] = {"max_attempts", "base_ms",
						    "max_ms", NULL};
	char path[PATH_LEN];
	const json_t *r;
	ferry_err err = get(p, a, apath, "retry", WANT_OBJECT, NULL, &r);
	d->retry_max_attempts = 10;
	d->retry_base_ms = 500;
	d->retry_max_ms = 60000;
	if (err || !r)
		return err;
	path_member(path, apath, "retry");
	/* max_ms defaults to 60 s, or to base_ms when that is longer, so
	 * that raising base_ms alone is never an error. */
	if ((err = check_members(p, r, path, retry_members)) ||
	    (err = get_u32(p, r, path, "max_attempts", 1, 1000, 10, NULL,
			   &d->retry_max_attempts)) ||
	    (err = get_u32(p, r, path, "base_ms", 10, 600000, 500, NULL,
			   &d->retry_base_ms)))
		return err;
	uint32_t def = d->retry_base_ms > 60000 ? d->retry_base_ms : 60000;
	if ((err = get_u32(p, r, path, "max_ms", 10, 86400000, def, NULL,
			   &d->retry_max_ms)))
		return err;
	if (d->retry_max_ms < d->retry_base_ms) {
		char mpath[PATH_LEN];
		path_member(mpath, path, "max_ms");
		return fail(p, mpath, "%u is less than base_ms (%u)",
			    d->retry_max_ms, d->retry_base_ms);
	}
	return FERRY_OK;
}

static ferry_err parse_adapter(parser *p, const json_t *a, const char *apath,
			       adapter_def *d, const adapter_def *earlier,
			       size_t nearlier)
{
	static const char *const adapter_members[] = {
		"name",	      "base_url",    "auth",  "headers",
		"timeout_ms", "concurrency", "retry", "push",
		"pulls",      "webhook",     NULL};
	char mpath[PATH_LEN];
	const char *s;
	ferry_err err;
	if ((err = check_kind(p, a, apath, WANT_OBJECT)) ||
	    (err = check_members(p, a, apath, adapter_members)))
		return err;

	if ((err = get_str(p, a, apath, "name", "", &s)))
		return err;
	path_member(mpath, apath, "name");
	if (!slug_valid(s))
		return fail(p, mpath,
			    "'%.40s' is not a valid name (1 to %d of a-z, "
			    "0-9, '_' and '-')",
			    s, ADAPTER_NAME_MAX);
	for (size_t i = 0; i < nearlier; i++)
		if (strcmp(earlier[i].name, s) == 0)
			return fail(p, mpath,
				    "duplicate adapter name '%s' (also "
				    "adapters[%zu])",
				    s, i);
	memcpy(d->name, s, strlen(s) + 1);

	const json_t *pulls = json_object_get(a, "pulls");
	int sends = json_object_get(a, "push") ||
		    (json_is_array(pulls) && json_array_size(pulls) > 0);
	if ((err = get_str(p, a, apath, "base_url",
			   sends ? "required when the adapter has push or "
				   "pulls"
				 : NULL,
			   &s)))
		return err;
	if (s) {
		path_member(mpath, apath, "base_url");
		if ((err = check_abs_url(p, mpath, s, 1)) ||
		    (err = dup_str(p, &d->base_url, s)))
			return err;
		/* Request paths start with '/', so the base loses its own. */
		size_t n = strlen(d->base_url);
		while (n > 0 && d->base_url[n - 1] == '/')
			d->base_url[--n] = '\0';
	}

	if ((err = parse_auth(p, a, apath, &d->auth)) ||
	    (err = parse_headers(p, a, apath, &d->headers, &d->nheaders)) ||
	    (err = get_u32(p, a, apath, "timeout_ms", 100, 600000, 10000, NULL,
			   &d->timeout_ms)) ||
	    (err = get_u32(p, a, apath, "concurrency", 1, 64, 1, NULL,
			   &d->concurrency)) ||
	    (err = parse_retry(p, a, apath, d)) ||
	    (err = parse_push(p, a, apath, &d->push)) ||
	    (err = parse_pulls(p, a, apath, d)) ||
	    (err = parse_webhook(p, a, apath, &d->webhook)))
		return err;
	if (!d->push && d->npulls == 0 && !d->webhook)
		return fail(p, apath,
			    "does nothing: give at least one of push, pulls "
			    "and webhook");
	return FERRY_OK;
}

static ferry_err parse_doc(parser *p, const json_t *doc, adapter_config *cfg)
{
	static const char *const top_members[] = {"adapters", NULL};
	char ipath[PATH_LEN];
	const json_t *arr, *a;
	size_t i;
	ferry_err err;
	if (!json_is_object(doc))
		return fail(p, "",
			    "expected an object with member adapters "
			    "(got %s)",
			    adapter_json_kind(doc));
	if ((err = check_members(p, doc, "", top_members)) ||
	    (err = get(p, doc, "", "adapters", WANT_ARRAY, "", &arr)))
		return err;
	if (json_array_size(arr) > MAX_ADAPTERS)
		return fail(p, "adapters",
			    "%zu adapters; at most %d are allowed",
			    json_array_size(arr), MAX_ADAPTERS);
	if (json_array_size(arr) == 0)
		return FERRY_OK;
	cfg->adapters = calloc(json_array_size(arr), sizeof(*cfg->adapters));
	if (!cfg->adapters)
		return nomem(p);
	json_array_foreach(arr, i, a)
	{
		path_index(ipath, "adapters", i);
		cfg->n++;
		if ((err = parse_adapter(p, a, ipath, &cfg->adapters[i],
					 cfg->adapters, i)))
			return err;
	}
	return FERRY_OK;
}

ferry_err adapter_config_parse(adapter_config **out, const json_t *doc,
			       char *why, size_t why_len)
{
	char dummy[1];
	parser p = {why, why_len};
	if (!why || why_len == 0) {
		p.why = dummy;
		p.why_len = sizeof(dummy);
	}
	p.why[0] = '\0';
	*out = NULL;
	adapter_config *cfg = calloc(1, sizeof(*cfg));
	if (!cfg)
		return nomem(&p);
	ferry_err err =
		doc ? parse_doc(&p, doc, cfg) : fail(&p, "", "no document");
	if (err) {
		adapter_config_free(cfg);
		return err;
	}
	*out = cfg;
	return FERRY_OK;
}

/* Read the whole file at `path` (at most FILE_MAX bytes); errno on error. */
static int read_file(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0;
	*out = NULL;
	if (!f)
		return errno;
	for (;;) {
		if (n == cap) {
			if (cap >= FILE_MAX) {
				free(buf);
				fclose(f);
				return EFBIG;
			}
			cap = cap ? cap * 2 : 64 * 1024;
			char *grown = realloc(buf, cap);
			if (!grown) {
				free(buf);
				fclose(f);
				return ENOMEM;
			}
			buf = grown;
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0) {
			int e = ferror(f) ? (errno ? errno : EIO) : 0;
			fclose(f);
			if (e) {
				free(buf);
				return e;
			}
			*out = buf;
			*len = n;
			return 0;
		}
	}
}

ferry_err adapter_config_load(adapter_config **out, const char *path, char *why,
			      size_t why_len)
{
	char dummy[1], inner[1024];
	char *text = NULL;
	size_t len = 0;
	*out = NULL;
	if (!why || why_len == 0) {
		why = dummy;
		why_len = sizeof(dummy);
	}
	int e = read_file(path, &text, &len);
	if (e == ENOMEM) {
		snprintf(why, why_len, "%s: out of memory", path);
		return FERRY_E_NOMEM;
	}
	if (e == EFBIG) {
		snprintf(why, why_len, "%s: larger than %u bytes", path,
			 FILE_MAX);
		return FERRY_E_LIMIT;
	}
	if (e) {
		snprintf(why, why_len, "%s: cannot read: %s", path,
			 strerror(e));
		return FERRY_E_IO;
	}
	json_error_t jerr;
	json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	free(text);
	if (!doc) {
		snprintf(why, why_len, "%s:%d:%d: %s", path, jerr.line,
			 jerr.column, jerr.text);
		return FERRY_E_INVALID;
	}
	ferry_err err = adapter_config_parse(out, doc, inner, sizeof(inner));
	json_decref(doc);
	if (err)
		snprintf(why, why_len, "%s: %s", path, inner);
	return err;
}

/* tmpl_free() is not documented to take NULL; unset templates are. */
static void free_tmpl(tmpl *t)
{
	if (t)
		tmpl_free(t);
}

static void free_headers(adapter_header *h, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(h[i].name);
		free_tmpl(h[i].value);
	}
	free(h);
}

static void free_request(adapter_request *r)
{
	free(r->method);
	free_tmpl(r->url);
	free_tmpl(r->body);
	free_headers(r->headers, r->nheaders);
	free(r->id_from);
}

static void free_mapping(adapter_mapping *m)
{
	free_tmpl(m->scope);
	free_tmpl(m->collection);
	free_tmpl(m->key);
	free_tmpl(m->id);
	free_tmpl(m->fields);
}

static void free_adapter(adapter_def *d)
{
	free(d->base_url);
	free(d->auth.header_name);
	free(d->auth.secret);
	free(d->auth.token_url);
	free(d->auth.client_id);
	free(d->auth.client_secret);
	free(d->auth.refresh_token);
	free(d->auth.scope);
	free_headers(d->headers, d->nheaders);
	if (d->push) {
		for (size_t i = 0; i < d->push->ncollections; i++) {
			adapter_push_collection *c = &d->push->collections[i];
			free(c->name);
			free_request(&c->create);
			free_request(&c->update);
			free_request(&c->del);
			free(c->store_id);
		}
		free(d->push->collections);
		grant_clear(&d->push->scopes);
		free(d->push);
	}
	for (size_t i = 0; i < d->npulls; i++) {
		adapter_pull *pl = &d->pulls[i];
		free(pl->name);
		free_tmpl(pl->url);
		free(pl->items);
		free(pl->page_param);
		free(pl->size_param);
		free(pl->next_pointer);
		free(pl->cursor_param);
		free_mapping(&pl->map);
	}
	free(d->pulls);
	if (d->webhook) {
		adapter_webhook *w = d->webhook;
		free(w->hmac_secret);
		free(w->hmac_header);
		free(w->hmac_prefix);
		free(w->event_id);
		for (size_t i = 0; i < w->nwrites; i++)
			free_mapping(&w->writes[i]);
		free(w->writes);
		free(w);
	}
}

void adapter_config_free(adapter_config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->n; i++)
		free_adapter(&cfg->adapters[i]);
	free(cfg->adapters);
	free(cfg);
}

const adapter_def *adapter_config_find(const adapter_config *cfg,
				       const char *name)
{
	for (size_t i = 0; cfg && name && i < cfg->n; i++)
		if (strcmp(cfg->adapters[i].name, name) == 0)
			return &cfg->adapters[i];
	return NULL;
}

const adapter_push_collection *adapter_push_find(const adapter_def *def,
						 const char *collection)
{
	if (!def || !def->push || !collection)
		return NULL;
	for (size_t i = 0; i < def->push->ncollections; i++)
		if (strcmp(def->push->collections[i].name, collection) == 0)
			return &def->push->collections[i];
	return NULL;
}

void adapter_config_each_secret(const adapter_config *cfg,
				void (*fn)(const char *secret, const char *path,
					   void *arg),
				void *arg)
{
	char path[PATH_LEN];
	for (size_t i = 0; cfg && i < cfg->n; i++) {
		const adapter_def *d = &cfg->adapters[i];
		const struct {
			const char *secret, *member;
		} refs[] = {
			{d->auth.secret, "auth.secret"},
			{d->auth.client_secret, "auth.client_secret"},
			{d->auth.refresh_token, "auth.refresh_token"},
			{d->webhook ? d->webhook->hmac_secret : NULL,
			 "webhook.auth.hmac.secret"},
		};
		for (size_t j = 0; j < sizeof(refs) / sizeof(refs[0]); j++) {
			if (!refs[j].secret)
				continue;
			snprintf(path, sizeof(path), "adapters[%zu].%s", i,
				 refs[j].member);
			fn(refs[j].secret, path, arg);
		}
	}
}
