/*
 * codec.c — bounded msgpack checks and small encoding helpers (codec.h).
 */
#include "codec.h"

#include <string.h>

/* Sizes of the payload that follows a type byte and, for containers, how
 * many child objects follow. Read straight from the msgpack spec. */
static uint64_t read_be(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

ferry_err codec_check_depth(const void *buf, size_t len, size_t *used,
			    unsigned int max_containers)
{
	const uint8_t *p = buf;
	size_t pos = 0;
	/* left[d]: objects still to read at nesting level d. */
	uint64_t left[CODEC_MAX_DEPTH];
	int depth = 0;

	left[0] = 1;
	for (;;) {
		uint64_t skip = 0, children = 0;
		int is_container;
		size_t lenbytes = 0;
		uint8_t b;

		if (pos >= len)
			return FERRY_E_MALFORMED;
		b = p[pos++];
		/* fixmap, fixarray, array16/32, map16/32 */
		is_container =
			(b >= 0x80 && b <= 0x9f) || (b >= 0xdc && b <= 0xdf);
		if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 ||
		    b == 0xc3) {
			/* fixint, nil, bool: no payload */
		} else if (b <= 0x8f) {
			children = 2u * (b & 0x0fu);
		} else if (b <= 0x9f) {
			children = b & 0x0fu;
		} else if (b <= 0xbf) {
			skip = b & 0x1fu;
		} else {
			switch (b) {
			case 0xc4:
			case 0xd9:
				lenbytes = 1;
				break;
			case 0xc5:
			case 0xda:
				lenbytes = 2;
				break;
			case 0xc6:
			case 0xdb:
				lenbytes = 4;
				break;
			case 0xc7:
				lenbytes = 1;
				skip = 1;
				break;
			case 0xc8:
				lenbytes = 2;
				skip = 1;
				break;
			case 0xc9:
				lenbytes = 4;
				skip = 1;
				break;
			case 0xca:
				skip = 4;
				break;
			case 0xcb:
				skip = 8;
				break;
			case 0xcc:
			case 0xd0:
				skip = 1;
				break;
			case 0xcd:
			case 0xd1:
				skip = 2;
				break;
			case 0xce:
			case 0xd2:
				skip = 4;
				break;
			case 0xcf:
			case 0xd3:
				skip = 8;
				break;
			case 0xd4:
				skip = 2;
				break;
			case 0xd5:
				skip = 3;
				break;
			case 0xd6:
				skip = 5;
				break;
			case 0xd7:
				skip = 9;
				break;
			case 0xd8:
				skip = 17;
				break;
			case 0xdc:
			case 0xde:
				lenbytes = 2;
				break;
			case 0xdd:
			case 0xdf:
				lenbytes = 4;
				break;
			default:
				return FERRY_E_MALFORMED; /* 0xc1 */
			}
			if (lenbytes) {
				uint64_t n;
				if (lenbytes > len - pos)
					return FERRY_E_MALFORMED;
				n = read_be(p + pos, lenbytes);
				pos += lenbytes;
				if (b >= 0xdc)
					children = (b >= 0xde) ? 2 * n : n;
				else
					skip += n;
			}
		}
		if (skip > len - pos)
			return FERRY_E_MALFORMED;
		pos += skip;
		left[depth]--;
		/* Every container counts towards the depth, empty or not. */
		if (is_container && (unsigned int)depth + 1 > max_containers)
			return FERRY_E_LIMIT;
		if (children) {
			/* Every child takes at least one byte: a count larger
			 * than what is left is a lie, refused before anyone
			 * allocates for it. msgpack-c nests at most 32 deep. */
			if (children > len - pos)
				return FERRY_E_MALFORMED;
			left[++depth] = children;
		}
		while (left[depth] == 0) {
			if (depth == 0) {
				*used = pos;
				return FERRY_OK;
			}
			depth--;
		}
	}
}

static ferry_err codec_check(const void *buf, size_t len, size_t *used)
{
	/* left[] holds CODEC_MAX_DEPTH levels: the top one and 31 nested. */
	return codec_check_depth(buf, len, used, CODEC_MAX_DEPTH - 1);
}

ferry_err codec_check_exact(const void *buf, size_t len)
{
	size_t used = 0;
	ferry_err err = codec_check(buf, len, &used);
	if (err)
		return err;
	return used == len ? FERRY_OK : FERRY_E_MALFORMED;
}

ferry_err codec_canonical(msgpack_sbuffer *out, const void *buf, size_t len)
{
	msgpack_unpacked u;
	msgpack_packer pk;
	size_t off = 0;
	ferry_err err = FERRY_OK;

	if (codec_check_exact(buf, len) != FERRY_OK)
		return FERRY_E_INVALID;
	if (codec_check_depth(buf, len, &off, FERRY_MAX_VALUE_DEPTH))
		return FERRY_E_LIMIT;
	off = 0;
	msgpack_unpacked_init(&u);
	switch (msgpack_unpack_next(&u, buf, len, &off)) {
	case MSGPACK_UNPACK_SUCCESS:
		msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
		if (msgpack_pack_object(&pk, u.data) != 0)
			err = FERRY_E_NOMEM;
		break;
	case MSGPACK_UNPACK_NOMEM_ERROR:
		err = FERRY_E_NOMEM;
		break;
	default:
		err = FERRY_E_INVALID;
	}
	msgpack_unpacked_destroy(&u);
	return err;
}

int codec_pack_raw(msgpack_packer *pk, const void *buf, size_t len)
{
	return pk->callback(pk->data, buf, len);
}

int codec_get_uint(const msgpack_object *o, uint64_t *out)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return -1;
	*out = o->via.u64;
	return 0;
}

int codec_get_bin_fixed(const msgpack_object *o, size_t len,
			const uint8_t **out)
{
	if (o->type != MSGPACK_OBJECT_BIN || o->via.bin.size != len)
		return -1;
	*out = (const uint8_t *)o->via.bin.ptr;
	return 0;
}

int codec_get_name(const msgpack_object *o, size_t max, char *dst)
{
	if (o->type != MSGPACK_OBJECT_STR || o->via.str.size == 0 ||
	    o->via.str.size > max ||
	    memchr(o->via.str.ptr, 0, o->via.str.size) ||
	    !ferry_utf8_valid(o->via.str.ptr, o->via.str.size))
		return -1;
	memcpy(dst, o->via.str.ptr, o->via.str.size);
	dst[o->via.str.size] = '\0';
	return 0;
}

void codec_put_be64(uint8_t *dst, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		dst[i] = (uint8_t)v;
		v >>= 8;
	}
}

uint64_t codec_get_be64(const uint8_t *src)
{
	return read_be(src, 8);
}

ferry_err ferry_msgpack_check(const void *buf, size_t len,
			      unsigned int max_depth)
{
	size_t used = 0;
	ferry_err err;
	if (!buf || max_depth > CODEC_MAX_DEPTH - 1)
		return FERRY_E_INVALID;
	err = codec_check_depth(buf, len, &used, max_depth);
	if (err)
		return err;
	return used == len ? FERRY_OK : FERRY_E_MALFORMED;
}
