/*
 * template_fuzz.c — libFuzzer target for the adapters' templates
 * (net/template.c): compiling a template from a configuration file and
 * rendering it against a document from the network (a webhook payload, a
 * pulled list item, or a record's fields). Invalid input must come back as
 * an error: a crash, a leak or a sanitizer report is a bug.
 *
 * Input: a template JSON text, a NUL byte, a payload JSON text (no NUL: no
 * payload). The template is compiled as TMPL_PAYLOAD and rendered against
 * the payload in each mode, and as TMPL_RECORD with a resolver that reads
 * the payload as a record's fields.
 *
 * Invariants checked (abort() otherwise, so libFuzzer reports a crash):
 *   - a failed compile or render leaves a non-empty, well-formed UTF-8
 *     reason, and a failed compile no template;
 *   - a string template rendered under TMPL_URL is a string, and every
 *     result can be turned into text (tmpl_text);
 *   - every record ref is well formed (names set, pointers valid).
 *
 * How CI runs it (see tests/fuzz/fuzz.cmake):
 *   CC=clang cmake -S . -B build-fuzz -DFERRY_BUILD_FUZZERS=ON \
 *         -DFERRY_SANITIZE=address,undefined -DFERRY_BUILD_BENCH=OFF
 *   cmake --build build-fuzz --target template_fuzz
 *   cp -r tests/fuzz/corpus/template /tmp/template-corpus
 *   build-fuzz/tests/template_fuzz -max_total_time=60 /tmp/template-corpus
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ferry.h"
#include "template.h"

static void check(int cond)
{
	if (!cond)
		abort();
}

static void check_why(const char *why)
{
	check(why[0] != '\0' && ferry_utf8_valid(why, strlen(why)));
}

static void check_ref(const tmpl_ref *ref, void *arg)
{
	size_t *count = arg;
	(*count)++;
	check(ref->pointer && tmpl_pointer_valid(ref->pointer));
	switch (ref->type) {
	case TMPL_REF_FIELD:
		check(ref->name && ref->name[0] && ref->name[0] != '@');
		check(strlen(ref->name) <= FERRY_MAX_FIELD_NAME_BYTES);
		check(!strchr(ref->name, '/'));
		break;
	case TMPL_REF_LINK:
		check(ref->name && ref->name[0] && ref->collection &&
		      ref->collection[0] &&
		      strlen(ref->collection) <= FERRY_MAX_COLLECTION_BYTES);
		break;
	default:
		break;
	}
}

/* The payload as a record: fields are its members; a field named "fatal"
 * fails rendering; links resolve to "ext-" and the field's text. */
static json_t *resolve(const tmpl_ref *ref, void *arg, int *fatal, char *why,
		       size_t why_len)
{
	const json_t *doc = arg;
	switch (ref->type) {
	case TMPL_REF_FIELD: {
		if (strcmp(ref->name, "fatal") == 0) {
			*fatal = 1;
			snprintf(why, why_len, "fatal field");
			return NULL;
		}
		const json_t *v = tmpl_pointer_get(
			json_object_get(doc, ref->name), ref->pointer);
		return v ? json_deep_copy(v) : NULL;
	}
	case TMPL_REF_LINK: {
		const char *key =
			json_string_value(json_object_get(doc, ref->name));
		if (!key)
			return NULL;
		char id[64];
		snprintf(id, sizeof(id), "ext-%.50s", key);
		ferry_utf8_trim(id);
		return json_string(id);
	}
	case TMPL_REF_KEY:
		return json_string("key 1");
	case TMPL_REF_SCOPE:
		return json_string("clinic/7");
	case TMPL_REF_COLLECTION:
		return json_integer(7);
	case TMPL_REF_ID:
		/* Absent, with a stale reason the engine must overwrite. */
		snprintf(why, why_len, "stale");
		return NULL;
	}
	return NULL;
}

static void check_rendered(json_t *out, const char *why, const json_t *tv,
			   tmpl_mode mode)
{
	if (!out) {
		check_why(why);
		return;
	}
	if (json_is_string(tv) && mode == TMPL_URL)
		check(json_is_string(out));
	char *text = tmpl_text(out);
	check(text != NULL || json_is_string(out));
	free(text);
	json_decref(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const tmpl_mode modes[] = {TMPL_BODY, TMPL_TEXT, TMPL_URL};
	const uint8_t *nul = memchr(data, '\0', size);
	size_t tlen = nul ? (size_t)(nul - data) : size;
	json_t *tv = json_loadb((const char *)data, tlen,
				JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	if (!tv)
		return 0;
	json_t *doc = NULL;
	if (nul)
		doc = json_loadb((const char *)nul + 1, size - tlen - 1,
				 JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);

	char why[128];
	tmpl *t = (tmpl *)1;
	if (tmpl_compile(&t, tv, TMPL_PAYLOAD, why, sizeof(why)) == FERRY_OK) {
		size_t refs = 0;
		tmpl_each_ref(t, check_ref, &refs);
		check(refs == 0);
		for (size_t m = 0; m < 3; m++)
			check_rendered(tmpl_render_payload(t, modes[m], doc,
							   why, sizeof(why)),
				       why, tv, modes[m]);
		tmpl_free(t);
	} else {
		check(t == NULL);
		check_why(why);
	}

	t = (tmpl *)1;
	if (tmpl_compile(&t, tv, TMPL_RECORD, why, sizeof(why)) == FERRY_OK) {
		size_t refs = 0;
		tmpl_each_ref(t, check_ref, &refs);
		check(!tmpl_is_constant(t) || refs == 0);
		for (size_t m = 0; m < 3; m++)
			check_rendered(tmpl_render_record(t, modes[m], resolve,
							  doc, why,
							  sizeof(why)),
				       why, tv, modes[m]);
		tmpl_free(t);
	} else {
		check(t == NULL);
		check_why(why);
	}

	/* The template text as a pointer into the payload. */
	const char *ptr = json_string_value(tv);
	if (ptr) {
		const json_t *v = tmpl_pointer_get(doc, ptr);
		check(!v || tmpl_pointer_valid(ptr));
	}
	json_decref(doc);
	json_decref(tv);
	return 0;
}
