/*
 * adapter_config.h — the adapters' configuration file (docs/adapters.md,
 * "The file"), parsed and validated into plain structs. Pure: no network,
 * no store; the checks that need the store (secrets exist) are the
 * caller's.
 */
#ifndef FERRY_ADAPTER_CONFIG_H
#define FERRY_ADAPTER_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ferry.h"
#include "grant.h"
#include "template.h"

#define ADAPTER_NAME_MAX 32

typedef enum adapter_auth_type {
	ADAPTER_AUTH_NONE,
	ADAPTER_AUTH_HEADER,
	ADAPTER_AUTH_BEARER,
	ADAPTER_AUTH_OAUTH2,
} adapter_auth_type;

typedef enum adapter_oauth_grant {
	ADAPTER_GRANT_REFRESH_TOKEN,
	ADAPTER_GRANT_CLIENT_CREDENTIALS,
} adapter_oauth_grant;

typedef struct adapter_auth {
	adapter_auth_type type;
	char *header_name; /* HEADER */
	char *secret;	   /* HEADER, BEARER: secret name */
	/* OAUTH2 */
	char *token_url; /* absolute http(s) URL */
	adapter_oauth_grant grant;
	char *client_id;
	char *client_secret; /* secret name or NULL */
	char *refresh_token; /* secret name (REFRESH_TOKEN grant) */
	char *scope;	     /* or NULL */
} adapter_auth;

typedef struct adapter_header {
	char *name;
	tmpl *value; /* TMPL_RECORD text */
} adapter_header;

typedef struct adapter_request {
	char *method; /* NULL: this kind of request is not sent */
	tmpl *url;    /* TMPL_RECORD; relative to base_url unless absolute */
	tmpl *body;   /* TMPL_RECORD or NULL (no body) */
	adapter_header *headers;
	size_t nheaders;
	char *id_from; /* JSON pointer into a create's response, or NULL */
} adapter_request;

typedef struct adapter_push_collection {
	char *name;
	adapter_request create, update, del;
	char *store_id; /* record field for the external id, or NULL */
} adapter_push_collection;

typedef struct adapter_push {
	grant scopes;
	/* With no stored cursor (a new adapter): 0 = push the whole change
	 * feed from its beginning, 1 = only changes from the first start. */
	int start_now;
	adapter_push_collection *collections;
	size_t ncollections;
} adapter_push;

/* A webhook's or pull's mapping of one document into one record. */
typedef struct adapter_mapping {
	tmpl *scope;	  /* TMPL_PAYLOAD text */
	tmpl *collection; /* TMPL_PAYLOAD text */
	tmpl *key;	  /* TMPL_PAYLOAD text */
	tmpl *id;	  /* TMPL_PAYLOAD text or NULL: the external id */
	tmpl *fields;	  /* TMPL_PAYLOAD object of field -> value */
} adapter_mapping;

/* How a pull finds the next page (besides page numbers). */
typedef enum adapter_next {
	ADAPTER_NEXT_NONE,
	ADAPTER_NEXT_LINK,   /* Link: <url>; rel="next" (RFC 8288) */
	ADAPTER_NEXT_URL,    /* the next page's URL at a pointer in the body */
	ADAPTER_NEXT_CURSOR, /* a cursor at a pointer, sent as a parameter */
} adapter_next;

typedef struct adapter_pull {
	char *name;
	uint32_t every_s;
	tmpl *url;   /* constant TMPL_RECORD text */
	char *items; /* JSON pointer to the array; "" = the response */
	int paged;
	char *page_param;
	char *size_param; /* or NULL */
	uint32_t page_size;
	adapter_next next;
	char *next_pointer;  /* NEXT_URL, NEXT_CURSOR */
	char *cursor_param;  /* NEXT_CURSOR */
	adapter_mapping map; /* scope and collection constant; id required */
	int delete_missing;
} adapter_pull;

typedef enum adapter_encoding {
	ADAPTER_HEX,
	ADAPTER_BASE64,
} adapter_encoding;

typedef struct adapter_webhook {
	int api_key; /* 1: X-API-Key; 0: HMAC below */
	char *hmac_secret;
	char *hmac_header;
	char *hmac_prefix; /* "" when none */
	adapter_encoding hmac_encoding;
	char *event_id; /* JSON pointer */
	adapter_mapping *writes;
	size_t nwrites;
} adapter_webhook;

typedef struct adapter_def {
	char name[ADAPTER_NAME_MAX + 1];
	char *base_url; /* without trailing '/', or NULL */
	adapter_auth auth;
	adapter_header *headers;
	size_t nheaders;
	uint32_t timeout_ms;
	uint32_t concurrency;
	uint32_t retry_max_attempts, retry_base_ms, retry_max_ms;
	adapter_push *push; /* or NULL */
	adapter_pull *pulls;
	size_t npulls;
	adapter_webhook *webhook; /* or NULL */
} adapter_def;

typedef struct adapter_config {
	adapter_def *adapters;
	size_t n;
} adapter_config;

/* Parse and validate a configuration document. On error returns
 * FERRY_E_INVALID (or FERRY_E_NOMEM) and writes into `why` the member path
 * and the problem ("adapters[0].push.collections.owners.create.url:
 * unknown placeholder {@idd} ..."). */
ferry_err adapter_config_parse(adapter_config **out, const json_t *doc,
			       char *why, size_t why_len);

/* Read and parse the file at `path`; JSON syntax errors name the file, line
 * and column; other errors are prefixed with the file name. */
ferry_err adapter_config_load(adapter_config **out, const char *path, char *why,
			      size_t why_len);

void adapter_config_free(adapter_config *cfg);

/* "an object", "a string", "an integer", "true", ...: what a JSON value
 * is, for error messages that say what was found. */
const char *adapter_json_kind(const json_t *v);

/* The adapter called `name`, or NULL. */
const adapter_def *adapter_config_find(const adapter_config *cfg,
				       const char *name);

/* The push settings for `collection`, or NULL if not pushed. */
const adapter_push_collection *adapter_push_find(const adapter_def *def,
						 const char *collection);

/* Call fn for every secret name the configuration refers to (auth secrets,
 * the HMAC secret), with the member path that names it. */
void adapter_config_each_secret(const adapter_config *cfg,
				void (*fn)(const char *secret, const char *path,
					   void *arg),
				void *arg);

#endif
