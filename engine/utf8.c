/*
 * utf8.c — the UTF-8 rules ferry applies to every name and text it stores
 * or sends (ferry.h).
 */
#include <string.h>

#include "ferry.h"

size_t ferry_utf8_char(const void *p, size_t left)
{
	const uint8_t *b = p;
	uint32_t cp;
	size_t n;

	if (left == 0)
		return 0;
	if (b[0] < 0x80)
		return 1;
	if ((b[0] & 0xe0) == 0xc0) {
		n = 2;
		cp = b[0] & 0x1fu;
	} else if ((b[0] & 0xf0) == 0xe0) {
		n = 3;
		cp = b[0] & 0x0fu;
	} else if ((b[0] & 0xf8) == 0xf0) {
		n = 4;
		cp = b[0] & 0x07u;
	} else {
		return 0;
	}
	if (left < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((b[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (b[i] & 0x3fu);
	}
	/* Shortest form only; no surrogates; Unicode's upper bound. */
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) ||
	    (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

int ferry_utf8_valid(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	for (size_t i = 0; i < len;) {
		size_t n = ferry_utf8_char(p + i, len - i);
		if (!n)
			return 0;
		i += n;
	}
	return 1;
}

void ferry_utf8_trim(char *s)
{
	size_t len = strlen(s), i = 0;
	while (i < len) {
		size_t n = ferry_utf8_char(s + i, len - i);
		if (!n)
			break;
		i += n;
	}
	s[i] = '\0';
}
