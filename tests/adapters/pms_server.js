#!/usr/bin/env node
// pms_server.js — a stand-in practice-management system for ferry's adapter
// integration tests: the real json-server 0.17.4 (used as a library, so its
// REST semantics, ids and _page/_limit pagination are the genuine ones) with
// middlewares in front that a real external API has and a test must steer:
// Idempotency-Key replay, fault injection, bearer auth and an OAuth2 token
// endpoint.
//
//   node pms_server.js --port P --db FILE [--fixtures F] [--token-secret S]
//       [--client-id ID --client-secret S] [--refresh-token R]
//       [--token-ttl SECONDS] [--bearer-required]
//
// FILE is json-server's database (written on every change, so a test reads
// the server's own state from it); when it does not exist it starts as a copy
// of F. FILE.pms-state.json keeps what must survive a restart: remembered
// idempotent responses, per-key counts, tokens and the current refresh token.
// Faults and the request log are runtime only. --port 0 picks a free port;
// the one line on stdout says which.
'use strict';
const fs = require('fs');
const crypto = require('crypto');
const jsonServer = require('json-server');

const opt = { port: null, db: null, fixtures: null, 'token-secret': null,
  'client-id': null, 'client-secret': null, 'refresh-token': null,
  'token-ttl': '3', 'bearer-required': false };
for (let i = 2; i < process.argv.length; i++) {
  const name = process.argv[i].replace(/^--/, '');
  if (!(name in opt)) fail(`unknown option ${process.argv[i]}`);
  if (typeof opt[name] === 'boolean') opt[name] = true;
  else if (i + 1 < process.argv.length) opt[name] = process.argv[++i];
  else fail(`${process.argv[i]} needs a value`);
}
if (opt.port === null || !opt.db) fail('usage: pms_server.js --port P --db FILE [options]');
function fail(msg) { console.error(`pms_server: ${msg}`); process.exit(2); }

// The database: fixtures on first start, and every collection the adapters
// address present (json-server only routes collections that exist).
const data = fs.existsSync(opt.db) ? JSON.parse(fs.readFileSync(opt.db, 'utf8'))
  : opt.fixtures ? JSON.parse(fs.readFileSync(opt.fixtures, 'utf8')) : {};
for (const c of ['owners', 'patients', 'appointments', 'doctors']) data[c] = data[c] || [];
fs.writeFileSync(opt.db, JSON.stringify(data, null, 2));

// Persistent side state, rewritten whole (temp file + rename) on each change
// so a SIGKILL leaves either the old or the new version.
const stateFile = `${opt.db}.pms-state.json`;
const st = fs.existsSync(stateFile) ? JSON.parse(fs.readFileSync(stateFile, 'utf8')) : {
  keys: {}, tokens: {}, issued: { client_credentials: 0, refresh_token: 0 },
  refresh_token: opt['refresh-token'], bearer_required: opt['bearer-required'] };
if (opt['bearer-required']) st.bearer_required = true;
function save() {
  fs.writeFileSync(`${stateFile}.tmp`, JSON.stringify(st));
  fs.renameSync(`${stateFile}.tmp`, stateFile);
}
save();

// Runtime only: injected faults and the request log.
let faults = { fail: null, retry_after: null, delay: null, status_for: [] };
let log = [];
let inFlight = 0, maxInFlight = 0;
const pending = new Map(); // key -> promise settled when its first request ends

const app = jsonServer.create();
app.use(jsonServer.defaults({ logger: false, noGzip: true }));
app.use(jsonServer.bodyParser);

// The test's own reads (X-Test-Observer, sent by lib.sh's pms_get) see the
// data as it is: no faults, no auth, not logged, so polling a result never
// consumes a fault meant for ferry.
const observer = (req) => req.path.startsWith('/__control') || req.get('X-Test-Observer');

// Every request but the control ones is logged with the status it got.
app.use((req, res, next) => {
  if (observer(req)) return next();
  const entry = { method: req.method, url: req.originalUrl,
    key: req.get('Idempotency-Key') || null, status: null, time: Date.now(),
    // Extension headers as sent, so a test can see configured headers.
    x: Object.fromEntries(Object.entries(req.headers).filter(([h]) => h.startsWith('x-'))),
    replayed: false, fault: null };
  log.push(entry);
  // How many requests are being handled at once, and the most ever: shows
  // whether a client really keeps several in flight.
  inFlight++;
  maxInFlight = Math.max(maxInFlight, inFlight);
  let counted = true;
  const leave = () => { if (counted) { counted = false; inFlight--; } };
  res.on('close', leave);
  res.on('finish', () => { entry.status = res.statusCode; leave(); });
  res.locals.entry = entry;
  if (entry.key && !req.path.startsWith('/oauth/')) {
    const k = st.keys[entry.key] = st.keys[entry.key] || { requests: 0, replays: 0, stored: null };
    k.requests++;
    save();
  }
  next();
});

app.post('/__control', (req, res) => {
  const b = req.body || {};
  if (b.clear) faults = { fail: null, retry_after: null, delay: null, status_for: [] };
  if (b.clear_log) log = [];
  // An administrator re-issuing the client's grant: every token and the
  // refresh-token chain are revoked; only the new refresh token works.
  if (b.reissue_refresh_token) {
    st.tokens = {};
    st.refresh_token = b.reissue_refresh_token;
    save();
  }
  if (b.fail) faults.fail = { status: b.fail.status || 500, count: b.fail.count ?? 1 };
  if (b.retry_after) faults.retry_after = { seconds: b.retry_after.seconds ?? 1, count: b.retry_after.count ?? 1 };
  if (b.delay_ms !== undefined) faults.delay = { ms: b.delay_ms, count: b.count ?? 1 };
  if (b.status_for) faults.status_for.push(b.status_for);
  if (b.auth) st.bearer_required = !!b.auth.bearer_required;
  if (b.expire_tokens) st.tokens = {};
  save();
  res.json(stateView());
});
app.get('/__control/log', (req, res) => res.json(log));
app.get('/__control/state', (req, res) => res.json(stateView()));
function stateView() {
  const keys = {};
  for (const [k, v] of Object.entries(st.keys))
    keys[k] = { requests: v.requests, replays: v.replays, status: v.stored ? v.stored.status : null };
  return { requests: log.length, keys, issued: st.issued, refresh_token: st.refresh_token,
    valid_tokens: Object.values(st.tokens).filter((t) => t > Date.now()).length,
    bearer_required: !!st.bearer_required, faults, max_in_flight: maxInFlight };
}

// OAuth2 token endpoint (RFC 6749 §4.4 and §6); client credentials in the
// form body or as HTTP Basic. Each refresh rotates the refresh token, so a
// client that keeps using the old one fails as it would against a real one.
app.post('/oauth/token', (req, res) => {
  const f = req.body || {};
  const basic = /^Basic (.+)$/.exec(req.get('Authorization') || '');
  if (basic) [f.client_id, f.client_secret] = Buffer.from(basic[1], 'base64').toString().split(':');
  const bad = (status, error) => res.status(status).json({ error });
  if (f.grant_type === 'client_credentials') {
    if (!opt['client-id'] || f.client_id !== opt['client-id'] || f.client_secret !== opt['client-secret'])
      return bad(401, 'invalid_client');
  } else if (f.grant_type === 'refresh_token') {
    if (f.client_id && opt['client-id'] && f.client_id !== opt['client-id']) return bad(401, 'invalid_client');
    if (!st.refresh_token || f.refresh_token !== st.refresh_token) return bad(400, 'invalid_grant');
  } else return bad(400, 'unsupported_grant_type');
  const ttl = Number(opt['token-ttl']);
  const access = `at-${crypto.randomBytes(12).toString('hex')}`;
  st.tokens[access] = Date.now() + ttl * 1000;
  st.issued[f.grant_type]++;
  const answer = { access_token: access, token_type: 'Bearer', expires_in: ttl };
  // Client credentials get no refresh token (RFC 6749 §4.4.3).
  if (f.grant_type === 'refresh_token')
    answer.refresh_token = st.refresh_token = `rt-${crypto.randomBytes(12).toString('hex')}`;
  save();
  res.json(answer);
});

// Faults, in the order a request would meet them: slowness first, then an
// outright failure, rate limiting, a validation rule. Counts are consumed
// as requests arrive.
app.use(async (req, res, next) => {
  if (observer(req)) return next();
  if (faults.delay) {
    const ms = faults.delay.ms;
    if (--faults.delay.count <= 0) faults.delay = null;
    await new Promise((resolve) => setTimeout(resolve, ms));
  }
  const inject = (status, why) => { res.locals.entry.fault = why; res.status(status).json({ error: why }); };
  if (faults.fail) {
    const status = faults.fail.status;
    if (--faults.fail.count <= 0) faults.fail = null;
    return inject(status, 'injected failure');
  }
  if (faults.retry_after) {
    res.set('Retry-After', String(faults.retry_after.seconds));
    if (--faults.retry_after.count <= 0) faults.retry_after = null;
    return inject(429, 'rate limited');
  }
  for (const rule of faults.status_for) {
    const m = rule.match || {};
    const body = req.body && typeof req.body === 'object' ? req.body : {};
    if ((!m.path || req.path === m.path || req.path.startsWith(`${m.path}/`)) &&
        (!m.body_field || body[m.body_field] === m.equals))
      return inject(rule.status || 422, `rejected: ${m.body_field || m.path} matched`);
  }
  next();
});

// Bearer auth: the static --token-secret, or an unexpired issued token.
app.use((req, res, next) => {
  if (!st.bearer_required || observer(req)) return next();
  const t = (/^Bearer (.+)$/.exec(req.get('Authorization') || '') || [])[1];
  if (t && (t === opt['token-secret'] || st.tokens[t] > Date.now())) return next();
  res.locals.entry.fault = 'unauthorized';
  res.set('WWW-Authenticate', 'Bearer error="invalid_token"').status(401).json({ error: 'invalid_token' });
});

// Idempotency-Key: the first answer to a key (below 500: a server error
// leaves nothing done, so a retry must really run) is remembered and
// replayed for every repeat without touching the data. A repeat that comes
// while the first is still running waits for it, as a client that timed
// out and retried would need.
app.use(async (req, res, next) => {
  const key = req.get('Idempotency-Key');
  if (!key || req.method === 'GET' || req.method === 'HEAD') return next();
  while (pending.has(key)) await pending.get(key);
  const k = st.keys[key];
  if (k.stored) {
    k.replays++;
    save();
    res.locals.entry.replayed = true;
    if (k.stored.location) res.set('Location', k.stored.location);
    return res.status(k.stored.status).set({ 'Content-Type': k.stored.type,
      'Idempotent-Replayed': 'true' }).send(k.stored.body);
  }
  let done;
  pending.set(key, new Promise((resolve) => { done = resolve; }));
  // Released after the answer, or when the client went away first ('close'
  // has then fired already if it left during an injected delay: end()
  // releases too).
  const release = () => { if (pending.get(key) === mine) pending.delete(key); done(); };
  const mine = pending.get(key);
  res.on('close', release);
  const chunks = [];
  const { write, end } = res;
  res.write = function (c, ...rest) { if (c) chunks.push(Buffer.from(c)); return write.call(this, c, ...rest); };
  res.end = function (c, ...rest) {
    if (c && typeof c !== 'function') chunks.push(Buffer.from(c));
    if (res.statusCode < 500) {
      k.stored = { status: res.statusCode, type: res.get('Content-Type') || 'application/json',
        location: res.get('Location') || null, body: Buffer.concat(chunks).toString() };
      save();
    }
    const r = end.call(this, c, ...rest);
    release();
    return r;
  };
  next();
});

const router = jsonServer.router(opt.db);

// GET /paged/COLLECTION?cursor=K&limit=L: the collection in the envelope
// many APIs use instead of json-server's Link headers —
// {"data": [...], "links": {"next": URL|null}, "meta": {"next_cursor": K|null}}
// — for pulls that follow a next URL or a cursor from the body.
app.get('/paged/:collection', (req, res) => {
  const all = router.db.get(req.params.collection).value();
  if (!Array.isArray(all)) return res.status(404).json({ error: 'no such collection' });
  const cursor = Number(req.query.cursor || 0), limit = Number(req.query.limit || 2);
  const more = cursor + limit < all.length;
  res.json({ data: all.slice(cursor, cursor + limit),
    links: { next: more ? `/paged/${req.params.collection}?cursor=${cursor + limit}&limit=${limit}` : null },
    meta: { next_cursor: more ? String(cursor + limit) : null } });
});

app.use(router);

const server = app.listen(Number(opt.port), '127.0.0.1', () => {
  console.log(`pms listening on 127.0.0.1:${server.address().port}`);
});
// json-server writes FILE after every change; this makes sure of it and of
// the side state, then exits without waiting for idle keep-alive clients.
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    router.db.write();
    save();
    process.exit(0);
  });
}
