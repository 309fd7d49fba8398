/*
 * grant.h — scope grants: which scopes a peer may read or write.
 *
 * A grant is a list of patterns: a lone star (every scope), a name ending
 * in a slash and a star (every scope starting with that name and the
 * slash), or an exact scope name. Written by people as a comma-separated
 * list, e.g. clinic-7,clinic-7/<star>,pricelist (docs/protocol.md §5).
 */
#ifndef FERRY_GRANT_H
#define FERRY_GRANT_H

#include <jansson.h>

#include "ferry.h"

#define GRANT_MAX_PATTERNS 256

typedef struct grant {
	char **patterns; /* owned */
	size_t n;
} grant;

/* Parse a comma-separated list; an empty string is an empty grant
 * (nothing allowed). Errors: FERRY_E_INVALID with `err` saying which
 * pattern is bad (empty, "*" inside a name, over FERRY_MAX_SCOPE_BYTES,
 * not UTF-8), FERRY_E_LIMIT over GRANT_MAX_PATTERNS. */
ferry_err grant_parse(grant *g, const char *csv, char *err, size_t err_len);

/* 1 if `scope` matches any pattern. */
int grant_allows(const grant *g, const char *scope);

/* The grant as a comma-separated list (malloc'd). */
char *grant_format(const grant *g);

/* Deep copy. Errors: FERRY_E_NOMEM. */
ferry_err grant_copy(grant *dst, const grant *src);

void grant_clear(grant *g);

/* 1 if `pattern` is one valid pattern, exactly as written (how stored
 * grants are checked: what is stored obeys the grammar people type). */
int grant_pattern_valid(const char *pattern);

/* The grant as a JSON array of its patterns; NULL when out of memory. */
json_t *grant_to_json(const grant *g);

/* A JSON array of patterns as a grant (NULL: the empty grant). `g` is
 * output only. Errors: FERRY_E_CORRUPT (not an array of valid patterns, or
 * more than GRANT_MAX_PATTERNS), FERRY_E_NOMEM. */
ferry_err grant_from_json(grant *g, const json_t *arr);

#endif
