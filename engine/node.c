/*
 * node.c — opening a node: its directory, key pair and store.
 */
#include "node.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "hlc.h"

#define KEY_FILE "node.key"
#define PUB_FILE "node.pub"

/* The detail of the calling thread's last failure, tagged with the node it
 * concerns: several threads may use one node, and each must read its own
 * failure, not a neighbour's. */
static _Thread_local struct {
	const ferry_node *node;
	char text[512];
} thread_detail;

ferry_err node_fail(ferry_node *node, ferry_err err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(thread_detail.text, sizeof(thread_detail.text), fmt, ap);
	va_end(ap);
	thread_detail.node = node;
	return err;
}

ferry_err node_store_fail(ferry_node *node, ferry_err err, const char *what)
{
	if (err == FERRY_E_NOMEM)
		return node_fail(node, err, "%s: out of memory", what);
	return node_fail(node, err, "%s: %s", what, store_detail(node->store));
}

void node_clear_error(ferry_node *node)
{
	if (thread_detail.node == node)
		thread_detail.text[0] = '\0';
}

int node_has_error(const ferry_node *node)
{
	return thread_detail.node == node && thread_detail.text[0];
}

const char *ferry_node_errmsg(const ferry_node *node)
{
	return node && thread_detail.node == node ? thread_detail.text : "";
}

uint64_t node_wall_ms(const ferry_node *node)
{
	if (node->opts.clock)
		return node->opts.clock(node->opts.clock_payload);
	return hlc_wall_ms();
}

ferry_err node_check_name(ferry_node *node, const char *what, const char *name,
			  size_t max, const char *limit)
{
	size_t len;
	if (!name || !*name)
		return node_fail(node, FERRY_E_INVALID, "%s is empty", what);
	len = strlen(name);
	if (len > max)
		return node_fail(node, FERRY_E_LIMIT,
				 "%s is %zu bytes; the limit %s is %zu", what,
				 len, limit, max);
	if (!ferry_utf8_valid(name, len))
		return node_fail(node, FERRY_E_INVALID, "%s is not valid UTF-8",
				 what);
	return FERRY_OK;
}

ferry_err meta_get_u64(store_txn *txn, const char *name, uint64_t *out)
{
	store_val v;
	ferry_err err =
		store_get(txn, DB_META, STORE_VAL(name, strlen(name)), &v);
	*out = 0;
	if (err == FERRY_E_NOT_FOUND)
		return FERRY_OK;
	if (err)
		return err;
	if (v.len != 8)
		return FERRY_E_CORRUPT;
	*out = codec_get_be64(v.data);
	return FERRY_OK;
}

ferry_err meta_put_u64(store_txn *txn, const char *name, uint64_t value)
{
	uint8_t buf[8];
	codec_put_be64(buf, value);
	return store_put(txn, DB_META, STORE_VAL(name, strlen(name)),
			 STORE_VAL(buf, 8));
}

void node_short_id(char out[9], const uint8_t *origin)
{
	for (int i = 0; i < 4; i++)
		snprintf(out + 2 * i, 3, "%02x", origin[i]);
}

void ferry_id_to_hex(char out[FERRY_ID_HEX_BYTES],
		     const uint8_t id[FERRY_PUBLIC_KEY_BYTES])
{
	sodium_bin2hex(out, FERRY_ID_HEX_BYTES, id, FERRY_PUBLIC_KEY_BYTES);
}

ferry_err ferry_id_from_hex(uint8_t out[FERRY_PUBLIC_KEY_BYTES],
			    const char *hex)
{
	size_t len = 0;
	const char *end = NULL;
	if (!hex || strlen(hex) != 2 * FERRY_PUBLIC_KEY_BYTES ||
	    sodium_hex2bin(out, FERRY_PUBLIC_KEY_BYTES, hex, strlen(hex), NULL,
			   &len, &end) != 0 ||
	    len != FERRY_PUBLIC_KEY_BYTES || *end != '\0')
		return FERRY_E_INVALID;
	return FERRY_OK;
}

const uint8_t *ferry_node_id(const ferry_node *node)
{
	return node->public_key;
}

ferry_err ferry_node_sign(ferry_node *node, uint8_t sig[FERRY_SIGNATURE_BYTES],
			  const void *msg, size_t len)
{
	static const char head_context[] = "ferry.head.";
	if (!node || !sig || (!msg && len))
		return FERRY_E_INVALID;
	node_clear_error(node);
	if (len >= sizeof(head_context) - 1 &&
	    !memcmp(msg, head_context, sizeof(head_context) - 1))
		return node_fail(node, FERRY_E_INVALID,
				 "refusing to sign a change-log head outside "
				 "the log");
	crypto_sign_detached(sig, NULL, msg, len, node->secret_key);
	return FERRY_OK;
}

uint64_t ferry_node_now_ms(const ferry_node *node)
{
	return node_wall_ms(node);
}

const char *ferry_node_dir(const ferry_node *node)
{
	return node->dir;
}

/* Create `dir` and its parents (mode 0700 for what we create). */
static int make_dirs(const char *dir)
{
	char path[4096];
	size_t len = strlen(dir);
	if (len == 0 || len >= sizeof(path))
		return -1;
	memcpy(path, dir, len + 1);
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0700) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

/* Write `data` to dir/name atomically: a temporary file, fsync, then
 * link() — which fails if another process created the file first, so two
 * processes opening a new directory at once agree on one key. */
static int write_file_once(const char *dir, const char *name, const void *data,
			   size_t len, mode_t mode)
{
	char tmp[4200], final[4200];
	int fd, rc = -1;
	snprintf(tmp, sizeof(tmp), "%s/.%s.%ld.tmp", dir, name, (long)getpid());
	snprintf(final, sizeof(final), "%s/%s", dir, name);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -1;
	if (write(fd, data, len) == (ssize_t)len && fsync(fd) == 0)
		rc = link(tmp, final);
	close(fd);
	unlink(tmp);
	return rc;
}

static ferry_err open_fail(char **errdetail, ferry_err err, const char *fmt,
			   ...) __attribute__((format(printf, 3, 4)));

static ferry_err open_fail(char **errdetail, ferry_err err, const char *fmt,
			   ...)
{
	va_list ap;
	if (!errdetail)
		return err;
	*errdetail = malloc(1024);
	if (*errdetail) {
		va_start(ap, fmt);
		vsnprintf(*errdetail, 1024, fmt, ap);
		va_end(ap);
	}
	return err;
}

static ferry_err load_key(ferry_node *node, char **errdetail)
{
	char path[4200], pubpath[4200], hex[FERRY_ID_HEX_BYTES + 1];
	uint8_t pub[FERRY_PUBLIC_KEY_BYTES];
	struct stat st;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", node->dir, KEY_FILE);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return open_fail(errdetail, FERRY_E_KEY_FILE, "%s: %s", path,
				 strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return open_fail(errdetail, FERRY_E_KEY_FILE,
				 "%s: not a regular file", path);
	}
	if (st.st_mode & 077) {
		close(fd);
		return open_fail(errdetail, FERRY_E_KEY_FILE,
				 "%s is readable by others (mode %03o); the "
				 "secret key must be private: chmod 600 %s",
				 path, (unsigned)(st.st_mode & 0777), path);
	}
	n = read(fd, node->secret_key, sizeof(node->secret_key));
	close(fd);
	if (n != (ssize_t)sizeof(node->secret_key))
		return open_fail(errdetail, FERRY_E_KEY_FILE,
				 "%s: expected a %zu-byte Ed25519 secret key",
				 path, sizeof(node->secret_key));
	crypto_sign_ed25519_sk_to_pk(node->public_key, node->secret_key);

	/* node.pub is for people and scripts; it must agree with the key. */
	snprintf(pubpath, sizeof(pubpath), "%s/%s", node->dir, PUB_FILE);
	fd = open(pubpath, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ferry_id_to_hex(hex, node->public_key);
		hex[FERRY_ID_HEX_BYTES - 1] = '\n';
		if (write_file_once(node->dir, PUB_FILE, hex,
				    FERRY_ID_HEX_BYTES, 0644) != 0 &&
		    errno != EEXIST)
			return open_fail(errdetail, FERRY_E_IO, "%s: %s",
					 pubpath, strerror(errno));
		return FERRY_OK;
	}
	n = read(fd, hex, sizeof(hex) - 1);
	close(fd);
	hex[n > 0 ? (size_t)n : 0] = '\0';
	if (n >= FERRY_ID_HEX_BYTES - 1)
		hex[FERRY_ID_HEX_BYTES - 1] = '\0';
	if (ferry_id_from_hex(pub, hex) != FERRY_OK ||
	    memcmp(pub, node->public_key, sizeof(pub)) != 0)
		return open_fail(errdetail, FERRY_E_KEY_FILE,
				 "%s does not match %s: the key file was "
				 "replaced or damaged; restore it from backup",
				 pubpath, path);
	return FERRY_OK;
}

static ferry_err ensure_key(ferry_node *node, char **errdetail)
{
	char path[4200];
	uint8_t pk[FERRY_PUBLIC_KEY_BYTES], sk[crypto_sign_SECRETKEYBYTES];
	snprintf(path, sizeof(path), "%s/%s", node->dir, KEY_FILE);
	if (access(path, F_OK) != 0) {
		crypto_sign_keypair(pk, sk);
		if (write_file_once(node->dir, KEY_FILE, sk, sizeof(sk),
				    0600) != 0 &&
		    errno != EEXIST) {
			sodium_memzero(sk, sizeof(sk));
			return open_fail(errdetail, FERRY_E_IO,
					 "creating %s: %s", path,
					 strerror(errno));
		}
		sodium_memzero(sk, sizeof(sk));
	}
	return load_key(node, errdetail);
}

static ferry_err check_format(ferry_node *node, char **errdetail)
{
	store_txn *txn;
	uint64_t format = 0;
	ferry_err err = store_begin(&txn, node->store, 1);
	if (!err)
		err = meta_get_u64(txn, META_FORMAT, &format);
	if (!err && format == 0) {
		format = NODE_FORMAT_VERSION;
		err = meta_put_u64(txn, META_FORMAT, format);
		if (!err)
			err = store_commit(txn);
		else
			store_abort(txn);
		txn = NULL;
	}
	store_abort(txn);
	if (err)
		return open_fail(errdetail, err,
				 "%s: initialising the store: %s", node->dir,
				 store_detail(node->store));
	if (format != NODE_FORMAT_VERSION)
		return open_fail(errdetail, FERRY_E_VERSION,
				 "%s: store format %llu, this ferry reads %d",
				 node->dir, (unsigned long long)format,
				 NODE_FORMAT_VERSION);
	return FERRY_OK;
}

ferry_err ferry_node_open(ferry_node **out, const char *dir,
			  const ferry_node_options *opts, char **errdetail)
{
	ferry_node_options defaults = FERRY_NODE_OPTIONS_INIT;
	ferry_node *node;
	char detail[512] = "";
	ferry_err err;

	if (errdetail)
		*errdetail = NULL;
	*out = NULL;
	if (!dir || !*dir)
		return open_fail(errdetail, FERRY_E_INVALID,
				 "no data directory given");
	if (opts && opts->version != FERRY_NODE_OPTIONS_VERSION)
		return open_fail(errdetail, FERRY_E_VERSION,
				 "ferry_node_options version %u, expected %d",
				 opts->version, FERRY_NODE_OPTIONS_VERSION);
	if (sodium_init() < 0)
		return open_fail(errdetail, FERRY_E_IO,
				 "libsodium failed to initialise");
	node = calloc(1, sizeof(*node));
	if (!node || !(node->dir = strdup(dir))) {
		free(node);
		return FERRY_E_NOMEM;
	}
	node->opts = opts ? *opts : defaults;
	if (!node->opts.max_clock_drift_ms)
		node->opts.max_clock_drift_ms = DEFAULT_MAX_CLOCK_DRIFT_MS;
	if (!node->opts.conflict_retention)
		node->opts.conflict_retention = DEFAULT_CONFLICT_RETENTION;

	if (make_dirs(dir) != 0) {
		err = open_fail(errdetail, FERRY_E_IO,
				"creating data directory %s: %s", dir,
				strerror(errno));
		goto fail;
	}
	err = ensure_key(node, errdetail);
	if (err)
		goto fail;
	err = store_open(&node->store, dir, node->opts.map_size,
			 node->opts.no_sync, detail, sizeof(detail));
	if (err) {
		err = open_fail(errdetail, err, "%s", detail);
		goto fail;
	}
	err = check_format(node, errdetail);
	if (err)
		goto fail;
	*out = node;
	return FERRY_OK;
fail:
	ferry_node_close(node);
	return err;
}

void ferry_node_close(ferry_node *node)
{
	if (!node)
		return;
	/* A later node at the same address must not inherit this detail. */
	node_clear_error(node);
	store_close(node->store);
	sodium_memzero(node->secret_key, sizeof(node->secret_key));
	free(node->dir);
	free(node);
}
