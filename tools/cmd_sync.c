/*
 * cmd_sync.c — sync by file, for sites that cannot reach each other:
 * `vector` (what this node holds), `export` (a bundle of what another
 * node's vector lacks) and `import` (apply a bundle). Bundle format in
 * bundle.h; the workflow in docs/cli.md.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bundle.h"
#include "cli.h"

/* Vectors are O(origins x scopes); anything this size is not one. */
#define MAX_VECTOR_FILE_BYTES FERRY_MAX_BATCH_BYTES

json_t *cli_vector_json(const ferry_vector *vec)
{
	json_t *list = json_array();
	for (size_t i = 0; list && i < ferry_vector_count(vec); i++) {
		ferry_vector_entry e;
		char origin[FERRY_ID_HEX_BYTES];
		char head[2 * FERRY_HASH_BYTES + 1];
		ferry_vector_at(vec, i, &e);
		ferry_id_to_hex(origin, e.origin);
		cli_hex(head, e.head, FERRY_HASH_BYTES);
		if (json_array_append_new(
			    list, json_pack("{s:s, s:s, s:I, s:s}", "origin",
					    origin, "scope", e.scope, "seq",
					    (json_int_t)e.seq, "head", head))) {
			json_decref(list);
			return NULL;
		}
	}
	return list;
}

int cmd_vector(struct cli *cli, int argc, char **argv)
{
	static const struct option options[] = {
		{"output", required_argument, NULL, 'o'},
		CLI_COMMON_OPTIONS,
	};
	const char *path = NULL;
	while (cli_next_option(cli, argc, argv, "o:", options) != -1)
		path = optarg; /* -o, the only option of its own */
	if (optind != argc)
		return cli_usage(cli, "takes no arguments (write with > FILE "
				      "or -o FILE)");
	int rc = cli_open(cli, 0);
	if (rc)
		return rc;
	ferry_vector *vec;
	ferry_err err = ferry_vector_get(&vec, cli->node);
	if (err)
		return cli_fail(cli, err, NULL,
				"cannot read the version vector");
	if (cli->json) {
		rc = cli_print_json(cli_vector_json(vec));
		ferry_vector_free(vec);
		return rc;
	}
	void *bytes;
	size_t len;
	err = ferry_vector_encode(&bytes, &len, vec);
	ferry_vector_free(vec);
	if (err)
		return cli_fail(cli, err, NULL,
				"cannot encode the version vector");
	FILE *out = cli_open_output(path, "version vector");
	if (!out) {
		free(bytes);
		return CLI_EXIT_FAILED;
	}
	if (fwrite(bytes, 1, len, out) != len)
		rc = cli_fail_msg("check the free space on the target",
				  "cannot write the vector: %s",
				  strerror(errno));
	free(bytes);
	int close_rc = cli_close_output(out, path);
	return rc ? rc : close_rc;
}

/* Read and decode the vector file `path` into *out. */
static int read_vector(struct cli *cli, const char *path, ferry_vector **out)
{
	FILE *in = fopen(path, "rb");
	if (!in)
		return cli_fail_msg("write one on the other node with `ferry "
				    "vector > FILE`",
				    "cannot open vector file %s: %s", path,
				    strerror(errno));
	size_t cap = 4096, len = 0;
	uint8_t *buf = malloc(cap);
	while (buf) {
		len += fread(buf + len, 1, cap - len, in);
		if (len < cap || cap >= MAX_VECTOR_FILE_BYTES)
			break;
		cap *= 2;
		uint8_t *bigger = realloc(buf, cap);
		if (!bigger)
			free(buf);
		buf = bigger;
	}
	int failed = !buf || ferror(in) || (len == cap && !feof(in));
	fclose(in);
	if (failed) {
		free(buf);
		return cli_fail_msg("pass the file `ferry vector` wrote",
				    "cannot read vector file %s (unreadable, "
				    "or over %d bytes)",
				    path, MAX_VECTOR_FILE_BYTES);
	}
	ferry_err err = ferry_vector_decode(out, buf, len);
	free(buf);
	if (err)
		return cli_fail(cli, err,
				"pass the file `ferry vector` wrote, unchanged",
				"%s is not a version vector", path);
	return CLI_EXIT_OK;
}

struct export_totals {
	uint64_t batches;
	uint64_t changes;
	uint64_t bytes;
};

/* Write every batch of `exp` as a bundle to `out`. */
static int write_bundle(struct cli *cli, ferry_export *exp, FILE *out,
			struct export_totals *totals)
{
	if (bundle_write_magic(out))
		return cli_fail_msg("check the free space on the target",
				    "cannot write the bundle: %s",
				    strerror(errno));
	totals->bytes = BUNDLE_MAGIC_BYTES;
	for (;;) {
		void *batch;
		size_t len;
		uint64_t changes = 0;
		ferry_err err = ferry_export_next(exp, &batch, &len, &changes);
		if (err == FERRY_E_DONE)
			return CLI_EXIT_OK;
		if (err)
			return cli_fail(cli, err, NULL,
					"cannot export batch %" PRIu64,
					totals->batches + 1);
		int failed = bundle_write_batch(out, batch, len);
		free(batch);
		if (failed)
			return cli_fail_msg(
				"check the free space on the target",
				"cannot write the bundle: %s", strerror(errno));
		totals->batches++;
		totals->changes += changes;
		totals->bytes += BUNDLE_FRAME_HEADER_BYTES + len;
	}
}

int cmd_export(struct cli *cli, int argc, char **argv)
{
	static const struct option options[] = {
		{"since", required_argument, NULL, 's'},
		{"scope", required_argument, NULL, 'S'},
		{"output", required_argument, NULL, 'o'},
		CLI_COMMON_OPTIONS,
	};
	const char *since = NULL, *path = NULL;
	/* At most one --scope per argument. */
	const char **scopes = calloc((size_t)argc, sizeof(*scopes));
	size_t nscopes = 0;
	int c;
	if (!scopes)
		return cli_fail_msg("free some memory", "out of memory");
	while ((c = cli_next_option(cli, argc, argv, "o:", options)) != -1) {
		if (c == 's')
			since = optarg;
		else if (c == 'S')
			scopes[nscopes++] = optarg;
		else
			path = optarg;
	}
	int rc = CLI_EXIT_OK;
	if (optind != argc)
		rc = cli_usage(cli, "takes no arguments (write with > FILE "
				    "or -o FILE)");
	else if (cli->json && !path)
		rc = cli_usage(cli, "--json prints a summary, so the bundle "
				    "needs -o FILE");
	ferry_vector *remote = NULL;
	if (!rc)
		rc = cli_open(cli, 0);
	if (!rc && since)
		rc = read_vector(cli, since, &remote);
	ferry_export *exp = NULL;
	if (!rc) {
		ferry_export_options opts = FERRY_EXPORT_OPTIONS_INIT;
		opts.scopes = nscopes ? scopes : NULL;
		opts.nscopes = nscopes;
		ferry_err err =
			ferry_export_begin(&exp, cli->node, remote, &opts);
		if (err)
			rc = cli_fail(cli, err, NULL, "cannot plan the export");
	}
	ferry_vector_free(remote);
	free(scopes);
	FILE *out = NULL;
	if (!rc && !(out = cli_open_output(path, "bundle")))
		rc = CLI_EXIT_FAILED;
	struct export_totals totals = {0};
	if (!rc)
		rc = write_bundle(cli, exp, out, &totals);
	ferry_export_free(exp);
	if (out) {
		int close_rc = cli_close_output(out, path);
		rc = rc ? rc : close_rc;
		/* No half bundle left on the stick to be carried away. */
		if (rc && path)
			unlink(path);
	}
	if (rc)
		return rc;
	if (cli->json)
		return cli_print_json(
			json_pack("{s:s, s:I, s:I, s:I}", "file", path,
				  "batches", (json_int_t)totals.batches,
				  "changes", (json_int_t)totals.changes,
				  "bytes", (json_int_t)totals.bytes));
	fprintf(stderr,
		"ferry: exported %" PRIu64 " changes in %" PRIu64
		" batches (%" PRIu64 " bytes)\n",
		totals.changes, totals.batches, totals.bytes);
	return CLI_EXIT_OK;
}

struct import_totals {
	uint64_t batches;
	ferry_apply_stats stats;
};

static void add_stats(ferry_apply_stats *sum, const ferry_apply_stats *s)
{
	sum->segments += s->segments;
	sum->changes_applied += s->changes_applied;
	sum->changes_duplicate += s->changes_duplicate;
	sum->conflicts += s->conflicts;
}

static json_t *import_json(const struct import_totals *t, const char *error)
{
	return json_pack("{s:b, s:s?, s:I, s:I, s:I, s:I, s:I}", "ok", !error,
			 "error", error, "batches", (json_int_t)t->batches,
			 "segments", (json_int_t)t->stats.segments, "applied",
			 (json_int_t)t->stats.changes_applied, "duplicate",
			 (json_int_t)t->stats.changes_duplicate, "conflicts",
			 (json_int_t)t->stats.conflicts);
}

/* Apply the batches of `reader` one by one, each atomically. */
static int apply_bundle(struct cli *cli, const char *name,
			struct bundle_reader *reader,
			struct import_totals *totals)
{
	for (;;) {
		void *batch;
		size_t len;
		uint64_t at;
		int got = bundle_read_batch(reader, &batch, &len, &at);
		if (got == 0)
			return CLI_EXIT_OK;
		if (got < 0) {
			if (cli->json)
				cli_print_json(
					import_json(totals, reader->error));
			return cli_fail_msg(
				"copy the bundle again; the batches before the "
				"damage are applied and a new import skips "
				"them",
				"import %s: %s; %" PRIu64
				" batches before it were applied",
				name, reader->error, totals->batches);
		}
		ferry_apply_stats stats = {0};
		ferry_err err = ferry_sync_apply(cli->node, batch, len, &stats);
		free(batch);
		if (err) {
			if (cli->json)
				cli_print_json(import_json(
					totals, ferry_err_name(err)));
			return cli_fail(
				cli, err, NULL,
				"import %s: batch %" PRIu64
				" at byte offset %" PRIu64 " rejected, %" PRIu64
				" batches before it were applied",
				name, totals->batches + 1, at, totals->batches);
		}
		totals->batches++;
		add_stats(&totals->stats, &stats);
	}
}

int cmd_import(struct cli *cli, int argc, char **argv)
{
	int first = cli_operands(cli, argc, argv);
	if (argc - first != 1)
		return cli_usage(cli, "wants one BUNDLE file (or - for stdin)");
	const char *path = argv[first];
	int from_stdin = strcmp(path, "-") == 0;
	const char *name = from_stdin ? "stdin" : path;
	struct bundle_reader reader = {0};
	reader.in = from_stdin ? stdin : fopen(path, "rb");
	if (!reader.in)
		return cli_fail_msg("check the path of the bundle",
				    "cannot open %s: %s", path,
				    strerror(errno));
	int rc = cli_open(cli, 0);
	if (!rc && bundle_read_magic(&reader))
		rc = cli_fail_msg("pass a file written by `ferry export`",
				  "import %s: %s", name, reader.error);
	struct import_totals totals = {0};
	if (!rc)
		rc = apply_bundle(cli, name, &reader, &totals);
	if (!from_stdin)
		fclose(reader.in);
	if (rc)
		return rc;
	if (cli->json)
		return cli_print_json(import_json(&totals, NULL));
	printf("imported %" PRIu64 " batches: %" PRIu64
	       " changes applied, %" PRIu64 " duplicate, %" PRIu64
	       " conflicts\n",
	       totals.batches, totals.stats.changes_applied,
	       totals.stats.changes_duplicate, totals.stats.conflicts);
	return CLI_EXIT_OK;
}
