/*
 * vector.h — version vectors inside the engine.
 */
#ifndef FERRY_VECTOR_H
#define FERRY_VECTOR_H

#include "ferry.h"

typedef struct vector_item {
	uint8_t origin[FERRY_PUBLIC_KEY_BYTES];
	char scope[FERRY_MAX_SCOPE_BYTES + 1];
	uint64_t seq;
	uint8_t head[FERRY_HASH_BYTES];
} vector_item;

struct ferry_vector {
	vector_item *items; /* sorted by (origin, scope) */
	size_t n, cap;
};

/* The held sequence for (origin, scope), 0 if absent. */
uint64_t vector_seq(const ferry_vector *vec, const uint8_t *origin,
		    const char *scope);

#define VECTOR_TAG "ferry.vector"
#define VECTOR_VERSION 1
#define VECTOR_MAX_ITEMS (1u << 20)

#endif
