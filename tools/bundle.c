/*
 * bundle.c — reading and writing bundle files (format in bundle.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "ferry.h"

int bundle_write_magic(FILE *out)
{
	return fwrite(BUNDLE_MAGIC, BUNDLE_MAGIC_BYTES, 1, out) == 1 ? 0 : -1;
}

int bundle_write_batch(FILE *out, const void *batch, size_t len)
{
	uint8_t header[BUNDLE_FRAME_HEADER_BYTES] = {
		(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
		(uint8_t)len};
	if (len == 0 || len > FERRY_MAX_BATCH_BYTES) {
		errno = EINVAL;
		return -1;
	}
	if (fwrite(header, sizeof(header), 1, out) != 1 ||
	    fwrite(batch, len, 1, out) != 1)
		return -1;
	return 0;
}

/* Read up to `len` bytes; the count read, advancing the offset. Sets the
 * error and returns SIZE_MAX on an I/O error. */
static size_t read_some(struct bundle_reader *reader, void *buf, size_t len)
{
	size_t n = fread(buf, 1, len, reader->in);
	reader->offset += n;
	if (n < len && ferror(reader->in)) {
		snprintf(reader->error, sizeof(reader->error),
			 "read error at byte offset %" PRIu64 ": %s",
			 reader->offset, strerror(errno));
		return SIZE_MAX;
	}
	return n;
}

int bundle_read_magic(struct bundle_reader *reader)
{
	char magic[BUNDLE_MAGIC_BYTES];
	size_t n = read_some(reader, magic, sizeof(magic));
	if (n == SIZE_MAX)
		return -1;
	if (n < sizeof(magic) || memcmp(magic, BUNDLE_MAGIC, sizeof(magic))) {
		snprintf(reader->error, sizeof(reader->error),
			 "not a ferry bundle: the first %zu bytes are not "
			 "\"" BUNDLE_MAGIC "\"",
			 sizeof(magic));
		return -1;
	}
	return 0;
}

int bundle_read_batch(struct bundle_reader *reader, void **out, size_t *len,
		      uint64_t *at)
{
	uint8_t header[BUNDLE_FRAME_HEADER_BYTES];
	*out = NULL;
	*at = reader->offset;
	size_t n = read_some(reader, header, sizeof(header));
	if (n == SIZE_MAX)
		return -1;
	if (n == 0)
		return 0;
	if (n < sizeof(header)) {
		snprintf(reader->error, sizeof(reader->error),
			 "truncated at byte offset %" PRIu64
			 ": frame header cut short",
			 *at);
		return -1;
	}
	uint32_t size = (uint32_t)header[0] << 24 | (uint32_t)header[1] << 16 |
			(uint32_t)header[2] << 8 | header[3];
	if (size == 0 || size > FERRY_MAX_BATCH_BYTES) {
		snprintf(reader->error, sizeof(reader->error),
			 "corrupt at byte offset %" PRIu64
			 ": frame length %" PRIu32 " is outside 1..%d",
			 *at, size, FERRY_MAX_BATCH_BYTES);
		return -1;
	}
	uint8_t *batch = malloc(size);
	if (!batch) {
		snprintf(reader->error, sizeof(reader->error),
			 "out of memory for the %" PRIu32
			 "-byte batch at byte offset %" PRIu64,
			 size, *at);
		return -1;
	}
	n = read_some(reader, batch, size);
	if (n != size) {
		if (n != SIZE_MAX)
			snprintf(reader->error, sizeof(reader->error),
				 "truncated at byte offset %" PRIu64
				 ": the batch there claims %" PRIu32
				 " bytes, %zu are present",
				 *at, size, n);
		free(batch);
		return -1;
	}
	*out = batch;
	*len = size;
	return 1;
}
