/*
 * grant.c — scope grants: parsing the comma-separated form people write,
 * matching scopes against patterns, and printing a grant back.
 *
 * Patterns are kept exactly as written (after trimming), so a grant
 * formats back to what the operator typed, minus repeats.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grant.h"

static int is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* Check one trimmed pattern p[0..len); on failure write why into err. */
static ferry_err check_pattern(const char *p, size_t len, char *err,
			       size_t err_len)
{
	if (len == 0) {
		snprintf(err, err_len,
			 "empty pattern (two commas in a row, or a comma at "
			 "the start or end)");
		return FERRY_E_INVALID;
	}
	if (len > FERRY_MAX_SCOPE_BYTES) {
		snprintf(err, err_len,
			 "pattern '%.*s...' is over the %d-byte scope limit",
			 20, p, FERRY_MAX_SCOPE_BYTES);
		return FERRY_E_INVALID;
	}
	if (!ferry_utf8_valid(p, len)) {
		snprintf(err, err_len, "pattern is not valid UTF-8");
		return FERRY_E_INVALID;
	}
	if (len == 1 && p[0] == '*')
		return FERRY_OK;
	/* A prefix pattern ("P/" then a star): the star may only stand for
	 * the rest of the name, and P must not be empty, or a lone slash-star
	 * would quietly mean "scopes starting with a slash". */
	size_t body = len;
	if (len >= 2 && p[len - 2] == '/' && p[len - 1] == '*') {
		body = len - 2;
		if (body == 0) {
			snprintf(err, err_len,
				 "pattern '/*' has no prefix (use '*' for "
				 "every scope, or 'NAME/*')");
			return FERRY_E_INVALID;
		}
	}
	if (memchr(p, '*', body)) {
		snprintf(err, err_len,
			 "pattern '%.*s' has '*' inside a name ('*' is only "
			 "allowed alone or as a final '/*')",
			 (int)len, p);
		return FERRY_E_INVALID;
	}
	return FERRY_OK;
}

static int grant_has(const grant *g, const char *p, size_t len)
{
	for (size_t i = 0; i < g->n; i++)
		if (strlen(g->patterns[i]) == len &&
		    memcmp(g->patterns[i], p, len) == 0)
			return 1;
	return 0;
}

ferry_err grant_parse(grant *g, const char *csv, char *err, size_t err_len)
{
	char dummy[1];
	if (!err || err_len == 0) {
		err = dummy;
		err_len = sizeof(dummy);
	}
	err[0] = '\0';
	g->patterns = NULL;
	g->n = 0;
	if (!csv)
		return FERRY_OK;

	/* A string of only blanks is as empty as "", so that `--read ""`
	 * and `--read " "` mean the same. */
	const char *s = csv;
	while (is_space(*s))
		s++;
	if (*s == '\0')
		return FERRY_OK;

	size_t items = 1;
	for (const char *c = csv; *c; c++)
		items += *c == ',';
	if (items > GRANT_MAX_PATTERNS) {
		snprintf(err, err_len, "%zu patterns; at most %d are allowed",
			 items, GRANT_MAX_PATTERNS);
		return FERRY_E_LIMIT;
	}
	g->patterns = calloc(items, sizeof(*g->patterns));
	if (!g->patterns) {
		snprintf(err, err_len, "out of memory");
		return FERRY_E_NOMEM;
	}

	ferry_err rc = FERRY_OK;
	const char *item = csv;
	for (;;) {
		const char *end = strchr(item, ',');
		size_t len = end ? (size_t)(end - item) : strlen(item);
		const char *p = item;
		while (len > 0 && is_space(*p)) {
			p++;
			len--;
		}
		while (len > 0 && is_space(p[len - 1]))
			len--;
		rc = check_pattern(p, len, err, err_len);
		if (rc)
			break;
		if (!grant_has(g, p, len)) {
			char *copy = malloc(len + 1);
			if (!copy) {
				snprintf(err, err_len, "out of memory");
				rc = FERRY_E_NOMEM;
				break;
			}
			memcpy(copy, p, len);
			copy[len] = '\0';
			g->patterns[g->n++] = copy;
		}
		if (!end)
			break;
		item = end + 1;
	}
	if (rc)
		grant_clear(g);
	return rc;
}

static int pattern_matches(const char *pattern, const char *scope)
{
	size_t plen = strlen(pattern);
	if (plen == 1 && pattern[0] == '*')
		return 1;
	if (plen >= 2 && pattern[plen - 2] == '/' && pattern[plen - 1] == '*') {
		/* The prefix pattern of P covers "P/x" and deeper, but not
		 * "P" itself, nor "P/" (an empty remainder is no scope below
		 * P). */
		size_t prefix = plen - 1; /* "P/" */
		return strncmp(scope, pattern, prefix) == 0 &&
		       scope[prefix] != '\0';
	}
	return strcmp(pattern, scope) == 0;
}

int grant_allows(const grant *g, const char *scope)
{
	if (!g || !scope)
		return 0;
	for (size_t i = 0; i < g->n; i++)
		if (pattern_matches(g->patterns[i], scope))
			return 1;
	return 0;
}

char *grant_format(const grant *g)
{
	size_t len = 1;
	for (size_t i = 0; g && i < g->n; i++)
		len += strlen(g->patterns[i]) + 1;
	char *out = malloc(len);
	if (!out)
		return NULL;
	char *w = out;
	for (size_t i = 0; g && i < g->n; i++) {
		if (i > 0)
			*w++ = ',';
		size_t n = strlen(g->patterns[i]);
		memcpy(w, g->patterns[i], n);
		w += n;
	}
	*w = '\0';
	return out;
}

ferry_err grant_copy(grant *dst, const grant *src)
{
	dst->patterns = NULL;
	dst->n = 0;
	if (!src || src->n == 0)
		return FERRY_OK;
	dst->patterns = calloc(src->n, sizeof(*dst->patterns));
	if (!dst->patterns)
		return FERRY_E_NOMEM;
	for (size_t i = 0; i < src->n; i++) {
		dst->patterns[i] = strdup(src->patterns[i]);
		if (!dst->patterns[i]) {
			grant_clear(dst);
			return FERRY_E_NOMEM;
		}
		dst->n++;
	}
	return FERRY_OK;
}

void grant_clear(grant *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->n; i++)
		free(g->patterns[i]);
	free(g->patterns);
	g->patterns = NULL;
	g->n = 0;
}

/* Is pattern a single valid grant pattern, exactly as written? Reuses
 * grant_parse() so that what is stored and what people type obey one
 * grammar. */
int grant_pattern_valid(const char *pattern)
{
	grant one;
	if (grant_parse(&one, pattern, NULL, 0) != FERRY_OK)
		return 0;
	int ok = one.n == 1 && strcmp(one.patterns[0], pattern) == 0;
	grant_clear(&one);
	return ok;
}

/* A grant as a JSON array of its patterns; NULL when out of memory. */
json_t *grant_to_json(const grant *g)
{
	json_t *arr = json_array();
	for (size_t i = 0; arr && i < g->n; i++) {
		if (json_array_append_new(arr, json_string(g->patterns[i]))) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

ferry_err grant_from_json(grant *g, const json_t *arr)
{
	g->patterns = NULL;
	g->n = 0;
	if (!arr)
		return FERRY_OK;
	if (!json_is_array(arr) || json_array_size(arr) > GRANT_MAX_PATTERNS)
		return FERRY_E_CORRUPT;
	if (json_array_size(arr) == 0)
		return FERRY_OK;
	g->patterns = calloc(json_array_size(arr), sizeof(*g->patterns));
	if (!g->patterns)
		return FERRY_E_NOMEM;
	size_t i;
	const json_t *item;
	json_array_foreach(arr, i, item)
	{
		const char *p = json_string_value(item);
		if (!p || !grant_pattern_valid(p)) {
			grant_clear(g);
			return FERRY_E_CORRUPT;
		}
		g->patterns[g->n] = strdup(p);
		if (!g->patterns[g->n]) {
			grant_clear(g);
			return FERRY_E_NOMEM;
		}
		g->n++;
	}
	return FERRY_OK;
}
