/*
 * adapter_config_fuzz.c — libFuzzer target for the adapters' configuration
 * file (net/adapter_config.c): the input is JSON text, decoded as
 * adapter_config_load() decodes a file and handed to
 * adapter_config_parse(). Any document must come back as a configuration
 * or as FERRY_E_INVALID with a reason naming a member; a crash, a leak (of
 * a half-built configuration, say) or a sanitizer report is a bug.
 *
 * What parses is walked the way the adapters use it: every adapter found
 * by name, every pushed collection found, every secret listed, and the
 * constant templates rendered.
 *
 * How CI runs it (see tests/fuzz/fuzz.cmake):
 *   CC=clang cmake -S . -B build-fuzz -DFERRY_BUILD_FUZZERS=ON \
 *         -DFERRY_SANITIZE=address,undefined -DFERRY_BUILD_BENCH=OFF
 *   cmake --build build-fuzz --target adapter_config_fuzz
 *   cp -r tests/fuzz/corpus/adapter_config /tmp/adapter_config-corpus
 *   build-fuzz/tests/adapter_config_fuzz -max_total_time=60 \
 *         /tmp/adapter_config-corpus
 * The seeds are the docs/adapters.md example and variants of it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "adapter_config.h"

static void check(int cond)
{
	if (!cond)
		abort();
}

static void on_secret(const char *secret, const char *path, void *arg)
{
	size_t *sum = arg;
	check(secret && *secret && path && strncmp(path, "adapters[", 9) == 0);
	*sum += strlen(secret) + strlen(path);
}

static void render_constant(const tmpl *t)
{
	if (!t || !tmpl_is_constant(t))
		return;
	char why[256];
	json_t *empty = json_object();
	json_t *v = tmpl_render_payload(t, TMPL_TEXT, empty, why, sizeof(why));
	json_decref(empty);
	json_decref(v);
}

static void walk(const adapter_config *cfg)
{
	size_t sum = 0;
	for (size_t i = 0; i < cfg->n; i++) {
		const adapter_def *a = &cfg->adapters[i];
		check(adapter_config_find(cfg, a->name) == a);
		check(a->push || a->npulls || a->webhook);
		check(a->retry_base_ms <= a->retry_max_ms);
		if (a->base_url)
			check(a->base_url[strlen(a->base_url) - 1] != '/');
		for (size_t j = 0; a->push && j < a->push->ncollections; j++) {
			const adapter_push_collection *c =
				&a->push->collections[j];
			check(adapter_push_find(a, c->name) == c);
			check(c->create.method && c->create.url);
		}
		for (size_t j = 0; j < a->npulls; j++) {
			const adapter_pull *pl = &a->pulls[j];
			check(tmpl_is_constant(pl->url) && pl->map.id);
			render_constant(pl->map.scope);
			render_constant(pl->map.collection);
		}
		for (size_t j = 0; a->webhook && j < a->webhook->nwrites; j++)
			render_constant(a->webhook->writes[j].key);
	}
	adapter_config_each_secret(cfg, on_secret, &sum);
	/* Keep the reads from being optimised away. */
	__asm__ volatile("" : : "r"(sum));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t jerr;
	json_t *doc = json_loadb((const char *)data, size,
				 JSON_REJECT_DUPLICATES, &jerr);
	if (!doc)
		return 0;
	adapter_config *cfg = NULL;
	char why[512];
	ferry_err err = adapter_config_parse(&cfg, doc, why, sizeof(why));
	check(err == FERRY_OK || err == FERRY_E_INVALID ||
	      err == FERRY_E_NOMEM);
	if (err == FERRY_OK)
		walk(cfg);
	else
		check(cfg == NULL && strchr(why, ':') != NULL);
	adapter_config_free(cfg);
	json_decref(doc);
	return 0;
}
