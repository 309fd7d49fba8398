'use strict';
/*
 * pouchdb_bench.js — the PouchDB side of `ferry-bench ... --with-pouchdb`.
 * Run it through pouchdb_bench.sh, which installs the packages first.
 *
 *   node A: a PouchDB (leveldb adapter) in a temp dir, served over HTTP on
 *           127.0.0.1 (a free port) by express-pouchdb;
 *   node B: a local PouchDB (leveldb) in another temp dir that replicates
 *           from A's URL.
 *
 *   full-sync: N documents on A (loaded with bulkDocs, 1,000 a batch, not
 *              timed), B empty; the clock runs from the start of a one-shot
 *              PouchDB.replicate(A's URL, B, {batch_size: 1000}) until it
 *              completes; B must then hold all N documents.
 *   live:      B replicates live ({live: true, retry: true}) and watches its
 *              own changes feed (since 'now'); A writes one document per tick
 *              at R/s for S seconds through its local PouchDB (not HTTP);
 *              lag = when the document shows on B's feed minus when A's put
 *              returned. Nearest-rank p50/p95/p99/max. No write starts
 *              after S seconds: "writes" is below R*S when A cannot keep
 *              up with R (at 1,000/s it manages ~700/s on 2 cores).
 *
 * Documents: the same keys as ferry-bench's bench_record() (bench/
 * bench_util.c: 32 hex chars from splitmix64, state seed ^ (i *
 * 0xd1b54a32d192ed03)); the value is a string of B printable characters
 * drawn from the same generator words (a JSON document cannot carry raw
 * bytes). MB = N * (32 + B) / 1e6, as ferry-bench counts it.
 *
 * Usage: node pouchdb_bench.js full-sync|live [--n N] [--value-bytes B]
 *            [--rate R] [--seconds S] [--seed S]
 * Exactly one JSON line goes to stdout; progress goes to stderr.
 * Environment: FERRY_PEERS_NODE_MODULES (where the packages are; default
 * ./node_modules beside this file), TMPDIR (default /var/tmp).
 */
const fs = require('fs');
const os = require('os');
const path = require('path');
const { performance } = require('perf_hooks');

const modules = process.env.FERRY_PEERS_NODE_MODULES ||
	path.join(__dirname, 'node_modules');
const PouchDB = require(path.join(modules, 'pouchdb-node'));
const expressPouchDB = require(path.join(modules, 'express-pouchdb'));

function log(msg) {
	process.stderr.write(`pouchdb_bench: ${msg}\n`);
}

function usage() {
	process.stderr.write('usage: pouchdb_bench full-sync|live [--n N] ' +
		'[--value-bytes B] [--rate R] [--seconds S] [--seed S]\n');
	process.exit(2);
}

function parseArgs(argv) {
	const cfg = { scenario: argv[0], n: 1000000, valueBytes: 100,
		rate: 1000, seconds: 10, seed: 0x5eedfe77n };
	if (cfg.scenario !== 'full-sync' && cfg.scenario !== 'live')
		usage();
	for (let i = 1; i < argv.length; i += 2) {
		const a = argv[i], v = argv[i + 1];
		if (v === undefined)
			usage();
		if (a === '--n') cfg.n = Number(v);
		else if (a === '--value-bytes') cfg.valueBytes = Number(v);
		else if (a === '--rate') cfg.rate = Number(v);
		else if (a === '--seconds') cfg.seconds = Number(v);
		else if (a === '--seed') cfg.seed = BigInt(v) & M64;
		else usage();
	}
	if (!(Number.isInteger(cfg.n) && cfg.n > 0) ||
	    !(Number.isInteger(cfg.valueBytes) && cfg.valueBytes > 0) ||
	    !(cfg.rate > 0) || !(cfg.seconds > 0))
		usage();
	return cfg;
}

/* splitmix64, as bench/bench_util.c has it (same ids for the same seed). */
const M64 = (1n << 64n) - 1n;
let rngState = 0n;
function rng() {
	rngState = (rngState + 0x9e3779b97f4a7c15n) & M64;
	let z = rngState;
	z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M64;
	z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M64;
	return z ^ (z >> 31n);
}

const ALPHABET =
	'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/* Record i: a 32-hex-char key and a value of `bytes` printable chars. */
function record(seed, i, bytes) {
	rngState = seed ^ ((BigInt(i) * 0xd1b54a32d192ed03n) & M64);
	let key = '';
	for (let h = 0; h < 2; h++) {
		/* The C side hex-prints the words' bytes in memory order. */
		let r = rng();
		for (let j = 0; j < 8; j++, r >>= 8n)
			key += Number(r & 0xffn).toString(16).padStart(2, '0');
	}
	let value = '';
	for (let k = 0; k < bytes; k += 8) {
		let r = rng();
		for (let j = 0; j < 8 && k + j < bytes; j++, r >>= 8n)
			value += ALPHABET[Number(r & 63n)];
	}
	return { _id: key, v: value };
}

function pct(sorted, p) {
	if (!sorted.length)
		return null;
	const i = Math.ceil(p / 100 * sorted.length);
	return sorted[i ? i - 1 : 0];
}

const round = (x, d) => Math.round(x * 10 ** d) / 10 ** d;

/* Everything made along the way, undone by cleanup(). */
const state = { dirs: [], dbs: [], server: null, repl: null, feed: null };

async function cleanup() {
	if (state.feed) state.feed.cancel();
	if (state.repl) state.repl.cancel();
	state.feed = state.repl = null;
	for (const db of state.dbs.splice(0))
		await db.close().catch(() => {});
	if (state.server) {
		const server = state.server;
		state.server = null;
		if (server.closeAllConnections) server.closeAllConnections();
		await new Promise((resolve) => server.close(() => resolve()));
	}
	for (const dir of state.dirs.splice(0))
		fs.rmSync(dir, { recursive: true, force: true });
}

async function setup() {
	const base = fs.mkdtempSync(path.join(process.env.TMPDIR || '/var/tmp',
		'ferry-pouchdb-'));
	state.dirs.push(base);
	const dirA = path.join(base, 'a'), dirB = path.join(base, 'b');
	fs.mkdirSync(dirA);
	fs.mkdirSync(dirB);
	const PouchA = PouchDB.defaults({ prefix: dirA + path.sep });
	const PouchB = PouchDB.defaults({ prefix: dirB + path.sep });
	const app = expressPouchDB(PouchA, {
		mode: 'minimumForPouchDB',
		inMemoryConfig: true,
		logPath: path.join(base, 'express-pouchdb.log'),
	});
	const a = new PouchA('a');
	state.dbs.push(a);
	await a.info();
	state.server = await new Promise((resolve, reject) => {
		const s = app.listen(0, '127.0.0.1', () => resolve(s));
		s.on('error', reject);
	});
	const url = `http://127.0.0.1:${state.server.address().port}/a`;
	const b = new PouchB('b');
	state.dbs.push(b);
	await b.info();
	log(`A at ${url} (${dirA}), B in ${dirB}`);
	return { a, b, url };
}

async function fullSync(cfg) {
	const { a, b, url } = await setup();
	log(`loading ${cfg.n} documents (${cfg.valueBytes}-byte values) on A`);
	const t0 = performance.now();
	for (let i = 0; i < cfg.n; i += 1000) {
		const docs = [];
		for (let j = i; j < Math.min(i + 1000, cfg.n); j++)
			docs.push(record(cfg.seed, j, cfg.valueBytes));
		const res = await a.bulkDocs(docs);
		for (const r of res)
			if (r.error)
				throw new Error(`load: ${r.id}: ${r.message || r.error}`);
		if ((i + 1000) % 100000 === 0)
			log(`  ${i + 1000} loaded`);
	}
	const infoA = await a.info();
	if (infoA.doc_count !== cfg.n)
		throw new Error(`A holds ${infoA.doc_count} of ${cfg.n} documents`);
	log(`loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s; ` +
		'replicating A -> B over HTTP');

	const start = performance.now();
	const repl = PouchDB.replicate(url, b, { batch_size: 1000 });
	state.repl = repl;
	let last = 0;
	repl.on('change', (info) => {
		if (info.docs_written - last >= 100000) {
			last = info.docs_written;
			log(`  ${last} replicated`);
		}
	});
	const result = await repl;
	const seconds = (performance.now() - start) / 1000;
	state.repl = null;
	if (!result.ok)
		throw new Error(`replication finished with errors: ` +
			JSON.stringify(result.errors).slice(0, 300));
	const infoB = await b.info();
	if (infoB.doc_count !== cfg.n)
		throw new Error(`B holds ${infoB.doc_count} of ${cfg.n} documents`);
	/* Spot-check the contents, not only the count. */
	for (const i of [0, cfg.n >> 1, cfg.n - 1]) {
		const want = record(cfg.seed, i, cfg.valueBytes);
		const got = await b.get(want._id);
		if (got.v !== want.v)
			throw new Error(`B's ${want._id} differs from A's`);
	}
	log(`B holds all ${cfg.n} documents after ${seconds.toFixed(2)} s`);
	return {
		scenario: 'full-sync',
		docs: cfg.n,
		seconds: round(seconds, 3),
		docs_per_s: Math.round(cfg.n / seconds),
		mb_per_s: round(cfg.n * (32 + cfg.valueBytes) / 1e6 / seconds, 2),
	};
}

async function live(cfg) {
	const { a, b, url } = await setup();
	const total = Math.max(1, Math.floor(cfg.rate * cfg.seconds));
	const done = new Float64Array(total).fill(NaN);
	const seen = new Float64Array(total).fill(NaN);
	let arrived = 0;

	/* B's own changes feed: a document is visible on B when it shows here. */
	const feed = b.changes({ since: 'now', live: true });
	state.feed = feed;
	feed.on('change', (ch) => {
		const t = performance.now();
		const m = /^live-(\d+)$/.exec(ch.id);
		if (m && Number(m[1]) < total && Number.isNaN(seen[m[1]])) {
			seen[m[1]] = t;
			arrived++;
		}
	});
	feed.on('error', (err) => log(`B's changes feed: ${err}`));

	const repl = PouchDB.replicate(url, b, { live: true, retry: true });
	state.repl = repl;
	repl.on('error', (err) => log(`replication: ${err}`));
	/* Start writing once the (empty) first pass has caught up. */
	await new Promise((resolve, reject) => {
		const timer = setTimeout(() => reject(new Error(
			'live replication did not start within 30 s')), 30000);
		repl.once('paused', () => { clearTimeout(timer); resolve(); });
	});
	log(`writing ${total} documents on A at ${cfg.rate}/s for ` +
		`${cfg.seconds} s`);

	const value = record(cfg.seed, 0, cfg.valueBytes).v;
	const start = performance.now();
	let written = 0;
	/* As ferry-bench live: write i is due at start + i/R; no write starts
	 * after S seconds, so a writer that cannot keep up writes fewer. */
	const end = start + cfg.seconds * 1000;
	for (let i = 0; i < total; i++) {
		const due = start + i * 1000 / cfg.rate;
		const wait = due - performance.now();
		if (wait > 0)
			await new Promise((resolve) => setTimeout(resolve, wait));
		if (performance.now() >= end)
			break;
		await a.put({ _id: `live-${i}`, i, v: value });
		done[i] = performance.now();
		written++;
	}
	log(`${written} written in ${((performance.now() - start) / 1000)
		.toFixed(2)} s; waiting for B`);
	if (written < total)
		log(`A's writer fell behind: ${written} of ${total} writes ` +
			`(${Math.round(written / cfg.seconds)}/s, not ${cfg.rate}/s)`);
	const deadline = performance.now() + 10000 + cfg.seconds * 1000;
	while (arrived < written && performance.now() < deadline)
		await new Promise((resolve) => setTimeout(resolve, 20));
	if (arrived < written)
		throw new Error(`B saw ${arrived} of ${written} live writes`);

	const lags = [];
	for (let i = 0; i < written; i++)
		lags.push(Math.max(0, seen[i] - done[i]));
	lags.sort((x, y) => x - y);
	return {
		scenario: 'live',
		writes: written,
		rate: cfg.rate,
		lag_ms: {
			p50: round(pct(lags, 50), 2),
			p95: round(pct(lags, 95), 2),
			p99: round(pct(lags, 99), 2),
			max: round(lags[lags.length - 1], 2),
		},
	};
}

async function main() {
	const cfg = parseArgs(process.argv.slice(2));
	for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'])
		process.once(sig, () => {
			log(`${sig}: cleaning up`);
			cleanup().finally(() => process.exit(1));
		});
	let out;
	try {
		out = cfg.scenario === 'full-sync' ? await fullSync(cfg)
			: await live(cfg);
	} finally {
		await cleanup();
	}
	process.stdout.write(JSON.stringify(out) + '\n');
}

main().then(() => process.exit(0), (err) => {
	log(`failed: ${err && err.stack ? err.stack : err}`);
	/* The temp dirs go even when the close above did not happen. */
	for (const dir of state.dirs)
		fs.rmSync(dir, { recursive: true, force: true });
	process.exit(1);
});
