/*
 * grant_test.c — scope grants (net/grant.c): the pattern grammar, which
 * scopes each pattern covers (the boundary cases an authorization check
 * must not get wrong), parse errors, formatting and copying.
 */
#include <string.h>

#include "grant.h"
#include "testing.h"

static grant parse_ok(const char *csv)
{
	grant g;
	char err[256];
	int rc = grant_parse(&g, csv, err, sizeof(err));
	if (rc != FERRY_OK)
		test_fail(__FILE__, __LINE__, "grant_parse(\"%s\"): %s (%s)",
			  csv, ferry_err_name(rc), err);
	return g;
}

static void check_format(const grant *g, const char *want)
{
	char *text = grant_format(g);
	CHECK(text != NULL);
	if (strcmp(text, want) != 0)
		test_fail(__FILE__, __LINE__, "grant_format: '%s', want '%s'",
			  text, want);
	free(text);
}

/* One row: grant text, scope, whether it is allowed. */
struct match_case {
	const char *grant;
	const char *scope;
	int allowed;
};

static void test_matching(void)
{
	static const struct match_case cases[] = {
		{"*", "clinic-7", 1},
		{"*", "clinic-7/pricelist", 1},
		{"*", "x", 1},
		{"clinic-7", "clinic-7", 1},
		{"clinic-7", "clinic-70", 0},
		{"clinic-7", "clinic-", 0},
		{"clinic-7", "clinic-7/x", 0},
		{"clinic-7", "Clinic-7", 0},
		/* The prefix pattern covers what is below the prefix, not
		 * the prefix itself and not a longer sibling name. */
		{"clinic-7/*", "clinic-7/x", 1},
		{"clinic-7/*", "clinic-7/x/y", 1},
		{"clinic-7/*", "clinic-7", 0},
		{"clinic-7/*", "clinic-7/", 0},
		{"clinic-7/*", "clinic-70/x", 0},
		{"clinic-7/*", "clinic-70", 0},
		{"clinic-7/*", "clinic-", 0},
		{"clinic-7,clinic-7/*", "clinic-7", 1},
		{"clinic-7,clinic-7/*", "clinic-7/pricelist", 1},
		{"clinic-7,clinic-7/*", "clinic-70/x", 0},
		{"a, b ,c", "b", 1},
		{"a, b ,c", " b", 0},
		{"", "anything", 0},
		{"  ", "anything", 0},
		{"pricelist,*", "whatever", 1},
		{"tier/a/*", "tier/a/b", 1},
		{"tier/a/*", "tier/ab", 0},
		{"\xc3\xa9t\xc3\xa9", "\xc3\xa9t\xc3\xa9", 1},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		grant g = parse_ok(cases[i].grant);
		int got = grant_allows(&g, cases[i].scope);
		if (got != cases[i].allowed)
			test_fail(__FILE__, __LINE__,
				  "grant '%s' scope '%s': allowed %d, want %d",
				  cases[i].grant, cases[i].scope, got,
				  cases[i].allowed);
		grant_clear(&g);
	}
}

static void test_empty(void)
{
	grant g = parse_ok("");
	CHECK_EQ_U64(g.n, 0);
	CHECK(!grant_allows(&g, "a"));
	check_format(&g, "");
	grant_clear(&g);

	g = parse_ok(NULL);
	CHECK_EQ_U64(g.n, 0);
	grant_clear(&g);

	/* A zeroed grant is empty too, and NULL allows nothing. */
	grant zero = {0};
	CHECK(!grant_allows(&zero, "a"));
	CHECK(!grant_allows(NULL, "a"));
	grant_clear(&zero);
	grant_clear(NULL);
}

static void check_parse_error(const char *csv, int code, const char *needle)
{
	grant g;
	char err[256];
	int rc = grant_parse(&g, csv, err, sizeof(err));
	if (rc != code)
		test_fail(__FILE__, __LINE__,
			  "grant_parse(\"%s\"): got %s, want %s", csv,
			  ferry_err_name(rc), ferry_err_name(code));
	if (!strstr(err, needle))
		test_fail(__FILE__, __LINE__,
			  "grant_parse(\"%s\") error '%s' lacks '%s'", csv, err,
			  needle);
	/* A failed parse leaves an empty grant behind. */
	CHECK_EQ_U64(g.n, 0);
	CHECK(g.patterns == NULL);
}

static void test_parse_errors(void)
{
	check_parse_error("a,,b", FERRY_E_INVALID, "empty");
	check_parse_error(",a", FERRY_E_INVALID, "empty");
	check_parse_error("a,", FERRY_E_INVALID, "empty");
	check_parse_error("a, ,b", FERRY_E_INVALID, "empty");
	check_parse_error("clinic-*", FERRY_E_INVALID, "'*'");
	check_parse_error("*/x", FERRY_E_INVALID, "'*'");
	check_parse_error("a/*/b", FERRY_E_INVALID, "'*'");
	check_parse_error("a/**", FERRY_E_INVALID, "'*'");
	check_parse_error("**", FERRY_E_INVALID, "'*'");
	check_parse_error("a*", FERRY_E_INVALID, "'*'");
	check_parse_error("/*", FERRY_E_INVALID, "prefix");
	check_parse_error("ok,bad*", FERRY_E_INVALID, "bad*");
	check_parse_error("\xff", FERRY_E_INVALID, "UTF-8");
	check_parse_error("a\xc3", FERRY_E_INVALID, "UTF-8");
	check_parse_error("\xc0\xaf", FERRY_E_INVALID, "UTF-8"); /* overlong */
	check_parse_error("\xed\xa0\x80", FERRY_E_INVALID,
			  "UTF-8"); /* surrogate */

	char name[FERRY_MAX_SCOPE_BYTES + 2];
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	check_parse_error(name, FERRY_E_INVALID, "limit");
	name[FERRY_MAX_SCOPE_BYTES] = '\0'; /* exactly at the limit */
	grant g = parse_ok(name);
	CHECK_EQ_U64(g.n, 1);
	CHECK(grant_allows(&g, name));
	grant_clear(&g);

	/* GRANT_MAX_PATTERNS distinct patterns parse; one more does not. */
	size_t cap = (GRANT_MAX_PATTERNS + 1) * 8;
	char *csv = malloc(cap);
	CHECK(csv != NULL);
	size_t at = 0;
	for (int i = 0; i < GRANT_MAX_PATTERNS; i++)
		at += snprintf(csv + at, cap - at, "%ss%d", i ? "," : "", i);
	g = parse_ok(csv);
	CHECK_EQ_U64(g.n, GRANT_MAX_PATTERNS);
	grant_clear(&g);
	snprintf(csv + at, cap - at, ",extra");
	check_parse_error(csv, FERRY_E_LIMIT, "at most");
	free(csv);

	/* No error buffer is fine. */
	CHECK_ERR(grant_parse(&g, "a,,b", NULL, 0), FERRY_E_INVALID);
}

static void test_format_and_copy(void)
{
	grant g = parse_ok(" clinic-7 , clinic-7/* ,pricelist,clinic-7");
	/* Trimmed, in the order written, repeats dropped. */
	CHECK_EQ_U64(g.n, 3);
	check_format(&g, "clinic-7,clinic-7/*,pricelist");

	grant copy;
	CHECK_OK(grant_copy(&copy, &g));
	grant_clear(&g);
	CHECK(g.n == 0 && g.patterns == NULL);
	CHECK_EQ_U64(copy.n, 3);
	CHECK(grant_allows(&copy, "clinic-7/x"));
	CHECK(grant_allows(&copy, "pricelist"));
	CHECK(!grant_allows(&copy, "clinic-70/x"));
	check_format(&copy, "clinic-7,clinic-7/*,pricelist");

	/* Formatting parses back to the same grant. */
	char *text = grant_format(&copy);
	CHECK(text != NULL);
	grant again = parse_ok(text);
	free(text);
	CHECK_EQ_U64(again.n, copy.n);
	for (size_t i = 0; i < copy.n; i++)
		CHECK(strcmp(again.patterns[i], copy.patterns[i]) == 0);
	grant_clear(&again);
	grant_clear(&copy);

	grant empty = {0}, copy_empty;
	CHECK_OK(grant_copy(&copy_empty, &empty));
	CHECK_EQ_U64(copy_empty.n, 0);
	check_format(&copy_empty, "");
	grant_clear(&copy_empty);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	test_matching();
	test_empty();
	test_parse_errors();
	test_format_and_copy();
	printf("grant_test: ok\n");
	return 0;
}
