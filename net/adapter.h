/*
 * adapter.h — the adapters' runtime (docs/adapters.md): one thread that
 * pushes the change feed to external HTTP APIs and runs timed pulls,
 * through one libcurl multi handle, so a slow system never stalls sync.
 * Webhooks arrive on the hub's HTTP side (rest_hooks.c) and borrow the
 * running configuration from here.
 */
#ifndef FERRY_ADAPTER_H
#define FERRY_ADAPTER_H

#include "adapter_config.h"
#include "ferry.h"

typedef struct adapters adapters;

typedef void (*adapters_log_fn)(int level, const char *line, void *payload);

/* Load the configuration at `path` and start the runtime's thread.
 * Errors: FERRY_E_INVALID with the configuration error (file, line or
 * member path) in `why`; FERRY_E_NOMEM; FERRY_E_IO (thread). */
ferry_err adapters_start(adapters **out, ferry_node *node, const char *path,
			 adapters_log_fn log, void *log_payload, char *why,
			 size_t why_len);

/* Ask for the file to be read again (async-signal-safe). */
void adapters_reload(adapters *a);

/* Stop the thread (requests in flight are abandoned: their changes are
 * sent again on the next start, with the same idempotency keys) and free.
 * Accepts NULL. */
void adapters_stop(adapters *a);

/* The configuration in force, held until adapters_release(); a reload
 * meanwhile does not free it. Never NULL. */
const adapter_config *adapters_acquire(adapters *a);
void adapters_release(adapters *a, const adapter_config *cfg);

#endif
