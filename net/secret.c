/*
 * secret.c — credentials encrypted at rest: each value sealed with
 * crypto_secretbox (XSalsa20-Poly1305) and kept in the kv table "secrets",
 * under a 32-byte key in <data dir>/secret.key.
 *
 * A stored record is binary, since it is opaque to people anyway:
 *
 *   offset 0   1 byte    format version (1)
 *          1   8 bytes   set time, Unix ms, big-endian
 *          9  24 bytes   random nonce
 *         33   rest      crypto_secretbox_easy output (16-byte MAC, then
 *                        the value's bytes)
 *
 * The box is not sealed under secret.key itself but under a subkey,
 * BLAKE2b-256 keyed with secret.key over a context string, the version,
 * the set time and the secret's name. So a record moved under another
 * name, or whose version or time was edited, opens under the wrong key and
 * fails authentication (FERRY_E_DECRYPT) like an altered ciphertext, and
 * the plaintext is exactly the value, with nothing to strip or compare.
 * (Putting back an older record of the same name is not detected: whoever
 * can write the store can delete or roll back secrets, never read them.)
 *
 * The key lives on the stack only during one call and is wiped before the
 * call returns. Errors raised here (not by the kv calls) carry no node
 * detail: net/ sits on the engine's public API, which has no way to set
 * one, so the codes are specific instead (secret.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "secret.h"

#define TABLE_SECRETS "secrets"
#define KEY_FILE "secret.key"

#define FORMAT_VERSION 1
#define KEY_BYTES crypto_secretbox_KEYBYTES
#define NONCE_BYTES crypto_secretbox_NONCEBYTES
#define MAC_BYTES crypto_secretbox_MACBYTES
#define OFF_TIME 1
#define OFF_NONCE (OFF_TIME + 8)
#define HEADER_BYTES (OFF_NONCE + NONCE_BYTES)

/* Domain separation for the subkey: no other use of secret.key can ever
 * produce the same hash input. */
#define SUBKEY_CONTEXT "ferry.secret.v1"

_Static_assert(KEY_BYTES == 32, "secret.key holds a 32-byte key");
_Static_assert(HEADER_BYTES + MAC_BYTES + SECRET_VALUE_MAX <=
		       FERRY_MAX_VALUE_BYTES,
	       "a sealed secret must fit in one kv value");

/* Paths under the data directory: as long as the engine's own. */
#define PATH_BYTES 4200

int secret_name_valid(const char *name)
{
	if (!name)
		return 0;
	size_t len = strnlen(name, SECRET_NAME_MAX + 1);
	if (len == 0 || len > SECRET_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '.' ||
		      c == '-'))
			return 0;
	}
	return 1;
}

size_t secret_value_trim(const void *value, size_t len)
{
	const char *p = value;
	if (len > 0 && p[len - 1] == '\n') {
		len--;
		if (len > 0 && p[len - 1] == '\r')
			len--;
	}
	return len;
}

void secret_free(char *value, size_t len)
{
	if (!value)
		return;
	/* +1: the convenience NUL secret_get() adds. */
	sodium_memzero(value, len + 1);
	free(value);
}

/* ------------------------------------------------------------------------ */
/* secret.key                                                               */
/* ------------------------------------------------------------------------ */

static void key_path(char out[PATH_BYTES], ferry_node *node)
{
	snprintf(out, PATH_BYTES, "%s/%s", ferry_node_dir(node), KEY_FILE);
}

/* Read an existing secret.key into `key`. It must be a regular file (not
 * followed through a symlink), private to its owner and exactly
 * KEY_BYTES long: a key anyone else can read protects nothing, and one of
 * another size is not ours. Errors: FERRY_E_NOT_FOUND (no file),
 * FERRY_E_KEY_FILE. */
static ferry_err key_read(uint8_t key[KEY_BYTES], const char *path)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? FERRY_E_NOT_FOUND : FERRY_E_KEY_FILE;
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) ||
	    st.st_size != KEY_BYTES) {
		close(fd);
		return FERRY_E_KEY_FILE;
	}
	/* One byte more than a key: a file that grew since fstat() is
	 * refused too. */
	uint8_t buf[KEY_BYTES + 1];
	ssize_t n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n == KEY_BYTES)
		memcpy(key, buf, KEY_BYTES);
	sodium_memzero(buf, sizeof(buf));
	return n == KEY_BYTES ? FERRY_OK : FERRY_E_KEY_FILE;
}

/* Make the directory entry of a new file durable: a secret sealed under a
 * key whose name a crash then lost could never be opened again. */
static int sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

/* Create secret.key with a fresh random key, or load the one another
 * process or thread created first.
 *
 * 1. Write the key to a temporary file of our own (random name, O_EXCL,
 *    mode 0600) in the data directory, and fsync it.
 * 2. link() it to secret.key: link never replaces, so of two racing
 *    creators exactly one wins and the other gets EEXIST.
 * 3. The loser reads the winner's key; the winner syncs the directory.
 * The temporary name is removed either way. */
static ferry_err key_create(uint8_t key[KEY_BYTES], ferry_node *node,
			    const char *path)
{
	const char *dir = ferry_node_dir(node);
	uint8_t rnd[8];
	char suffix[2 * sizeof(rnd) + 1], tmp[PATH_BYTES];
	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(suffix, sizeof(suffix), rnd, sizeof(rnd));
	snprintf(tmp, sizeof(tmp), "%s/.%s.%s.tmp", dir, KEY_FILE, suffix);

	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return FERRY_E_IO;
	uint8_t fresh[KEY_BYTES];
	randombytes_buf(fresh, sizeof(fresh));
	/* fchmod: a umask such as 0277 would otherwise leave the owner
	 * unable to read the key back. */
	int ok = fchmod(fd, 0600) == 0 &&
		 write(fd, fresh, sizeof(fresh)) == (ssize_t)sizeof(fresh) &&
		 fsync(fd) == 0;
	ok = close(fd) == 0 && ok;
	int linked = ok && link(tmp, path) == 0;
	int lost = ok && !linked && errno == EEXIST;
	unlink(tmp);

	ferry_err err = FERRY_OK;
	if (linked) {
		memcpy(key, fresh, KEY_BYTES);
		if (sync_dir(dir) != 0)
			err = FERRY_E_IO;
	} else if (lost) {
		err = key_read(key, path);
		/* Gone again between link() and open(): someone removed
		 * it; not ours to guess about. */
		if (err == FERRY_E_NOT_FOUND)
			err = FERRY_E_KEY_FILE;
	} else {
		err = FERRY_E_IO;
	}
	sodium_memzero(fresh, sizeof(fresh));
	if (err)
		sodium_memzero(key, KEY_BYTES);
	return err;
}

/* The node's secret key into `key`, created first if `create` and there
 * is none. Errors: FERRY_E_KEY_FILE (also for a missing file when not
 * `create`: secrets exist that it sealed), FERRY_E_IO. */
static ferry_err key_load(uint8_t key[KEY_BYTES], ferry_node *node, int create)
{
	char path[PATH_BYTES];
	key_path(path, node);
	ferry_err err = key_read(key, path);
	if (err == FERRY_E_NOT_FOUND)
		err = create ? key_create(key, node, path) : FERRY_E_KEY_FILE;
	return err;
}

/* The key one record is sealed under (see the top of the file). */
static void subkey(uint8_t out[KEY_BYTES], const uint8_t key[KEY_BYTES],
		   const uint8_t header[OFF_NONCE], const char *name)
{
	crypto_generichash_state st;
	crypto_generichash_init(&st, key, KEY_BYTES, KEY_BYTES);
	crypto_generichash_update(&st, (const uint8_t *)SUBKEY_CONTEXT,
				  sizeof(SUBKEY_CONTEXT));
	crypto_generichash_update(&st, header, OFF_NONCE);
	crypto_generichash_update(&st, (const uint8_t *)name, strlen(name));
	crypto_generichash_final(&st, out, KEY_BYTES);
	sodium_memzero(&st, sizeof(st));
}

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* ------------------------------------------------------------------------ */
/* Secrets                                                                  */
/* ------------------------------------------------------------------------ */

ferry_err secret_set(ferry_node *node, const char *name, const void *value,
		     size_t len)
{
	if (!secret_name_valid(name) || !value || len == 0)
		return FERRY_E_INVALID;
	if (len > SECRET_VALUE_MAX)
		return FERRY_E_LIMIT;
	if (sodium_init() < 0)
		return FERRY_E_NOMEM;

	size_t rec_len = HEADER_BYTES + MAC_BYTES + len;
	uint8_t *rec = malloc(rec_len);
	if (!rec)
		return FERRY_E_NOMEM;
	rec[0] = FORMAT_VERSION;
	put_be64(rec + OFF_TIME, ferry_node_now_ms(node));
	randombytes_buf(rec + OFF_NONCE, NONCE_BYTES);

	uint8_t key[KEY_BYTES], sub[KEY_BYTES];
	ferry_err err = key_load(key, node, 1);
	if (!err) {
		subkey(sub, key, rec, name);
		sodium_memzero(key, sizeof(key));
		crypto_secretbox_easy(rec + HEADER_BYTES, value, len,
				      rec + OFF_NONCE, sub);
		sodium_memzero(sub, sizeof(sub));
		err = ferry_kv_put(node, TABLE_SECRETS, name, rec, rec_len);
	}
	free(rec);
	return err;
}

ferry_err secret_get(char **out, size_t *len, ferry_node *node,
		     const char *name)
{
	*out = NULL;
	*len = 0;
	if (!secret_name_valid(name))
		return FERRY_E_INVALID;
	if (sodium_init() < 0)
		return FERRY_E_NOMEM;
	void *stored;
	size_t rec_len;
	ferry_err err =
		ferry_kv_get(&stored, &rec_len, node, TABLE_SECRETS, name);
	if (err)
		return err;
	const uint8_t *rec = stored;
	if (rec_len >= 1 && rec[0] != FORMAT_VERSION)
		err = FERRY_E_VERSION;
	else if (rec_len <= HEADER_BYTES + MAC_BYTES ||
		 rec_len > HEADER_BYTES + MAC_BYTES + SECRET_VALUE_MAX)
		err = FERRY_E_CORRUPT;
	size_t plain_len = err ? 0 : rec_len - HEADER_BYTES - MAC_BYTES;
	char *plain = err ? NULL : malloc(plain_len + 1);
	if (!err && !plain)
		err = FERRY_E_NOMEM;

	uint8_t key[KEY_BYTES], sub[KEY_BYTES];
	if (!err)
		err = key_load(key, node, 0);
	if (!err) {
		subkey(sub, key, rec, name);
		sodium_memzero(key, sizeof(key));
		if (crypto_secretbox_open_easy(
			    (uint8_t *)plain, rec + HEADER_BYTES,
			    rec_len - HEADER_BYTES, rec + OFF_NONCE, sub) != 0)
			err = FERRY_E_DECRYPT;
		sodium_memzero(sub, sizeof(sub));
	}
	free(stored);
	if (err) {
		secret_free(plain, plain_len);
		return err;
	}
	plain[plain_len] = '\0';
	*out = plain;
	*len = plain_len;
	return FERRY_OK;
}

ferry_err secret_delete(ferry_node *node, const char *name)
{
	if (!secret_name_valid(name))
		return FERRY_E_INVALID;
	return ferry_kv_delete(node, TABLE_SECRETS, name);
}

/* A listing in progress: the caller's callback, given names and times
 * read from the records' headers (no key needed, nothing decrypted). */
struct list_ctx {
	int (*fn)(const char *name, uint64_t set_ms, void *arg);
	void *arg;
};

static int list_cb(const char *key, const void *value, size_t len,
		   void *payload)
{
	struct list_ctx *ctx = payload;
	const uint8_t *rec = value;
	/* A damaged or newer record still has a name to show and remove;
	 * secret_get() is where its damage is reported. */
	uint64_t set_ms = 0;
	if (len >= HEADER_BYTES && rec[0] == FORMAT_VERSION)
		set_ms = get_be64(rec + OFF_TIME);
	return ctx->fn(key, set_ms, ctx->arg);
}

ferry_err secret_list(ferry_node *node,
		      int (*fn)(const char *name, uint64_t set_ms, void *arg),
		      void *arg)
{
	struct list_ctx ctx = {.fn = fn, .arg = arg};
	return ferry_kv_scan(node, TABLE_SECRETS, list_cb, &ctx);
}
