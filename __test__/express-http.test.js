'use strict';
/**
 * Drives demo/server.js over real HTTP: an Express 5 app on 127.0.0.1 whose
 * routes call a simulated flaky dependency through the package's breakers.
 * Every request has a timeout; nothing waits for a breaker's resetTimeout.
 */
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { start } = require('../demo/server.js');

const FILE_STARTED = performance.now();
const TOKEN = `test-${crypto.randomBytes(16).toString('hex')}`;
const REQUEST_TIMEOUT_MS = 5000;
const logs = [];
let demo;
const STATE_FILE = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'demo-ops-')), 'ops-state.json');

before(async () => {
  delete process.env.OPS_TOKEN;
  demo = await start(0, { opsToken: TOKEN, stateFile: STATE_FILE, log: (...args) => logs.push(args.join(' ')) });
});

after(async () => {
  if (demo) await demo.close();
});

async function http(method, urlPath, { json, token, headers = {}, body } = {}) {
  const h = { ...headers };
  if (token !== undefined) h.authorization = `Bearer ${token}`;
  if (json !== undefined) {
    h['content-type'] = 'application/json';
    body = JSON.stringify(json);
  }
  const t0 = performance.now();
  const res = await fetch(demo.url + urlPath, { method, headers: h, body, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  const text = await res.text();
  const ms = performance.now() - t0;
  let parsed = null;
  try {
    parsed = JSON.parse(text);
  } catch {
    // HTML or empty
  }
  return { status: res.status, headers: res.headers, body: parsed, text, ms };
}

async function snapshot(name) {
  const r = await http('GET', '/api/breakers');
  assert.equal(r.status, 200);
  assert.ok(Array.isArray(r.body), 'GET /api/breakers returns an array');
  const b = r.body.find((s) => s.name === name);
  assert.ok(b, `breaker ${name} listed in /api/breakers`);
  return b;
}

async function setDownstream(settings) {
  const r = await http('POST', '/demo/downstream', { json: settings });
  assert.equal(r.status, 200, r.text);
  return r.body;
}

async function downstreamCalls() {
  const r = await http('GET', '/demo/downstream');
  assert.equal(r.status, 200);
  return r.body.calls;
}

test('start(0) listens on 127.0.0.1 and prints the listening line once', () => {
  assert.match(demo.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(demo.server.address().address, '127.0.0.1');
  const lines = logs.filter((l) => l.startsWith('reliability-core demo listening on '));
  assert.deepEqual(lines, [`reliability-core demo listening on ${demo.url}`]);
});

test('startup runs demo/deploy/graph.json by levels and /health/ready turns 200 after 3 passes', { timeout: 15000 }, async () => {
  const report = await demo.startup;
  assert.equal(report.ok, true, JSON.stringify(report.steps));
  assert.equal(report.startup.outcome, 'ready');
  assert.deepEqual(report.startup.levels, [['config'], ['database', 'cache'], ['orders-api', 'inventory-api']]);
  const sd = await http('GET', '/api/observability/startup-dag');
  assert.equal(sd.status, 200);
  assert.deepEqual([sd.body.total, sd.body.ready], [5, 5]);
  let r;
  for (let k = 0; k < 100; k++) {
    r = await http('GET', '/health/ready');
    if (r.status === 200) break;
    assert.equal(r.status, 503);
    await new Promise((done) => setTimeout(done, 100));
  }
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.status, 'ready');
  // The original's checks are all there (the demo has no DATABASE_URL here).
  const original = await http('GET', '/api/health/ready');
  assert.deepEqual(Object.keys(original.body.checks).sort(), ['database', 'disk', 'environment', 'healthGates']);
  assert.equal(original.body.checks.database, process.env.DATABASE_URL ? true : 'not-configured');
  assert.equal(original.body.checks.environment, !!process.env.NODE_ENV);
  assert.equal(original.body.checks.disk, true);
  const gates = await http('GET', '/api/observability/health-gates');
  assert.deepEqual(gates.body.gates.map((g) => g.serviceId).sort(), ['breaker:inventory-api', 'breaker:orders-api', 'database', 'startup-dag']);
  assert.equal((await http('GET', '/health/live')).status, 200);
});

test('GET / serves a self-contained dashboard', { timeout: 10000 }, async () => {
  const r = await http('GET', '/');
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/html/);
  assert.match(r.text, /<style nonce=/);
  assert.match(r.text, /<script nonce=/);
  assert.match(r.text, /\/api\/breakers/);
  assert.match(r.text, /setInterval\(refresh, 2000\)/);
  assert.doesNotMatch(r.text, /(src|href)\s*=\s*["']?(https?:)?\/\//i, 'no external resources');
  const csp = r.headers.get('content-security-policy');
  assert.ok(csp && /script-src 'nonce-[^']+'/.test(csp), `CSP with a nonce: ${csp}`);
  // The nonce in the header is the one in the page, and is fresh per response.
  const nonce = /'nonce-([^']+)'/.exec(csp)[1];
  assert.ok(r.text.includes(`nonce="${nonce}"`));
  const again = await http('GET', '/');
  assert.notEqual(again.headers.get('content-security-policy'), csp);
});

test('healthy downstream: calls succeed through closed breakers', { timeout: 10000 }, async () => {
  await setDownstream({ failureRate: 0, latencyMs: 1 });
  for (const id of ['o-1', 'o-2']) {
    const r = await http('GET', `/api/orders/${id}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.id, id);
    assert.equal(r.body.status, 'shipped');
    assert.equal(r.body.stale, false);
    assert.equal(r.headers.get('x-breaker-state'), 'closed');
  }
  const inv = await http('GET', '/api/inventory');
  assert.equal(inv.status, 200, inv.text);
  assert.ok(Array.isArray(inv.body.skus));

  const orders = await snapshot('orders-api');
  assert.equal(orders.state, 'closed');
  assert.equal(orders.isolated, false);
  assert.equal(orders.failureCount, 0);
  assert.equal(orders.options.failureThreshold, 5);
  assert.equal(orders.options.resetTimeout, 5000);
  assert.equal(orders.options.timeout, 1000);
  assert.equal(orders.options.maxRetries, 2);
  assert.equal(orders.options.initialDelay, 50);
  assert.equal(orders.options.jitter, 'full');
  const inventory = await snapshot('inventory-api');
  assert.equal(inventory.state, 'closed');
  assert.equal(inventory.options.errorThresholdPercentage, 50);
  assert.equal(inventory.options.volumeThreshold, 10);
  assert.equal(inventory.options.rollingWindowMs, 10000);
});

test('failing downstream opens orders-api; the fallback then answers stale, fast, without calling downstream', { timeout: 15000 }, async () => {
  await setDownstream({ failureRate: 1, latencyMs: 1 });
  const before = await downstreamCalls();
  for (let i = 1; i <= 5; i++) {
    const r = await http('GET', '/api/orders/o-1');
    // Failed after its retries: served from the cache by the fallback.
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.stale, true);
    assert.equal(r.body.cached, true, 'o-1 was fetched while healthy, so the fallback has it');
    assert.equal(r.body.id, 'o-1');
    assert.equal(r.body.reason, 'EDOWNSTREAM');
    const s = await snapshot('orders-api');
    assert.equal(s.failureCount, i);
    assert.equal(s.state, i < 5 ? 'closed' : 'open', `state after ${i} failed calls`);
  }
  // One first attempt plus maxRetries (2) per call.
  assert.equal((await downstreamCalls()) - before, 5 * 3);
  assert.ok(logs.includes('[breaker] orders-api -> OPEN'), `transition logged: ${JSON.stringify(logs)}`);
  // orders-api is a critical dependency: its open breaker makes the instance not ready.
  let ready;
  for (let k = 0; k < 50; k++) {
    ready = await http('GET', '/health/ready');
    if (ready.status === 503) break;
    await new Promise((done) => setTimeout(done, 20));
  }
  assert.equal(ready.status, 503);
  assert.deepEqual(ready.body.failing.map((f) => [f.serviceId, f.reason]), [['breaker:orders-api', 'circuit breaker orders-api is open']]);

  const open = await snapshot('orders-api');
  assert.equal(open.isolated, false);
  assert.ok(open.window.failures >= 5);
  assert.ok(open.nextAttemptTime > Date.now(), 'an open breaker schedules its next trial');

  const callsWhileOpen = await downstreamCalls();
  const rejectsBefore = open.totals.rejects;
  for (let i = 0; i < 20; i++) {
    const id = i % 2 ? 'o-1' : 'never-seen';
    const r = await http('GET', `/api/orders/${id}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.stale, true);
    assert.equal(r.body.reason, 'ERR_CIRCUIT_OPEN');
    assert.equal(r.body.message, 'Circuit breaker orders-api is OPEN (too many failures)');
    assert.equal(r.body.cached, id === 'o-1');
    assert.equal(r.headers.get('x-breaker-state'), 'open');
  }
  assert.equal(await downstreamCalls(), callsWhileOpen, 'an open breaker does not call the downstream');
  const after = await snapshot('orders-api');
  assert.equal(after.state, 'open');
  assert.equal(after.totals.rejects - rejectsBefore, 20);
});

test('inventory-api opens on failure rate over the window, not on failures in a row', { timeout: 15000 }, async () => {
  // failureRate is still 1. The window holds one healthy call from earlier.
  const start = await snapshot('inventory-api');
  assert.equal(start.state, 'closed');
  assert.equal(start.window.calls, 1);
  let failures = 0;
  while (failures < 8) {
    const r = await http('GET', '/api/inventory');
    assert.equal(r.status, 502, r.text);
    assert.equal(r.body.code, 'EDOWNSTREAM');
    failures++;
  }
  // 8 failures in a row (> failureThreshold 5), but 9 calls < volumeThreshold 10.
  let s = await snapshot('inventory-api');
  assert.equal(s.state, 'closed', 'a rate-based breaker ignores consecutive failures below the volume threshold');
  assert.equal(s.window.calls, 9);

  const r = await http('GET', '/api/inventory');
  assert.equal(r.status, 502, r.text);
  s = await snapshot('inventory-api');
  assert.equal(s.window.calls, 10);
  assert.equal(s.window.failureRate, 90, 'failureRate is a percentage');
  assert.equal(s.state, 'open', '10 calls, 90 % failures >= 50 %');
  assert.ok(logs.includes('[breaker] inventory-api -> OPEN'));

  const calls = await downstreamCalls();
  const rejected = await http('GET', '/api/inventory');
  assert.equal(rejected.status, 503);
  assert.equal(rejected.body.code, 'ERR_CIRCUIT_OPEN');
  assert.equal(rejected.body.error, 'Circuit breaker inventory-api is OPEN (too many failures)');
  const retryAfter = Number(rejected.headers.get('retry-after'));
  assert.ok(retryAfter >= 1 && retryAfter <= 5, `Retry-After ${retryAfter}`);
  assert.equal(await downstreamCalls(), calls);
});

test('ops actions need the token: missing -> 401, wrong -> 403, and change nothing', { timeout: 10000 }, async () => {
  const before = await snapshot('orders-api');
  assert.equal(before.state, 'open');
  assert.equal(before.isolated, false);

  const wrongSameLength = TOKEN.slice(0, -1) + (TOKEN.endsWith('0') ? '1' : '0');
  const attempts = [
    { expect: 401, headers: {} },
    { expect: 401, headers: { 'x-unrelated': TOKEN } },
    { expect: 403, token: 'nope' },
    { expect: 403, token: wrongSameLength },
    { expect: 403, token: TOKEN + 'x' },
    { expect: 403, token: 'x'.repeat(5000) },
    { expect: 403, headers: { authorization: `Basic ${Buffer.from(`ops:${TOKEN}`).toString('base64')}` } },
    { expect: 403, headers: { 'x-ops-token': 'wrong' } },
  ];
  for (const action of ['isolate', 'close', 'reset']) {
    for (const a of attempts) {
      const r = await http('POST', `/api/breakers/orders-api/${action}`, { token: a.token, headers: a.headers });
      assert.equal(r.status, a.expect, `${action} with ${JSON.stringify(a)} -> ${r.status} ${r.text}`);
      assert.ok(r.body && typeof r.body.error === 'string');
      assert.ok(!r.text.includes(TOKEN), 'the response never echoes the token');
      if (a.expect === 401) assert.match(r.headers.get('www-authenticate'), /^Bearer/);
    }
  }
  // Unknown breakers are not revealed before authentication either.
  assert.equal((await http('POST', '/api/breakers/no-such/isolate')).status, 401);

  const after = await snapshot('orders-api');
  assert.equal(after.state, 'open');
  assert.equal(after.isolated, false);
  assert.equal(after.failureCount, before.failureCount);
  assert.ok(!logs.some((l) => l.startsWith('[ops]')), 'no ops action ran');
  assert.ok(!logs.some((l) => l.includes(TOKEN)), 'the token is never logged');
});

test('isolate with the token holds the breaker open; reset closes it', { timeout: 10000 }, async () => {
  const iso = await http('POST', '/api/breakers/orders-api/isolate', { token: TOKEN });
  assert.equal(iso.status, 200, iso.text);
  assert.equal(iso.body.name, 'orders-api');
  assert.equal(iso.body.state, 'open');
  assert.equal(iso.body.isolated, true);
  let s = await snapshot('orders-api');
  assert.equal(s.state, 'open');
  assert.equal(s.isolated, true);

  // Even with a healthy downstream an isolated breaker keeps answering from the fallback.
  await setDownstream({ failureRate: 0 });
  const calls = await downstreamCalls();
  const r = await http('GET', '/api/orders/o-1');
  assert.equal(r.status, 200);
  assert.equal(r.body.stale, true);
  assert.equal(r.body.message, 'Circuit breaker orders-api is OPEN (isolated)');
  assert.equal(await downstreamCalls(), calls);

  // The x-ops-token header is accepted as well as a bearer token.
  const reset = await http('POST', '/api/breakers/orders-api/reset', { headers: { 'x-ops-token': TOKEN } });
  assert.equal(reset.status, 200, reset.text);
  assert.equal(reset.body.state, 'closed');
  assert.equal(reset.body.isolated, false);
  assert.equal(reset.body.failureCount, 0);
  s = await snapshot('orders-api');
  assert.equal(s.state, 'closed');
  assert.equal(s.failureCount, 0);
  assert.ok(logs.includes('[breaker] orders-api -> CLOSED'));
  assert.ok(logs.includes('[ops] isolate orders-api') && logs.includes('[ops] reset orders-api'));

  const fresh = await http('GET', '/api/orders/o-3');
  assert.equal(fresh.status, 200);
  assert.equal(fresh.body.stale, false);
  assert.equal(fresh.body.id, 'o-3');
  assert.equal(await downstreamCalls(), calls + 1);

  // close ends the inventory breaker's open period by hand.
  const close = await http('POST', '/api/breakers/inventory-api/close', { token: TOKEN });
  assert.equal(close.status, 200, close.text);
  assert.equal(close.body.state, 'closed');
  assert.equal((await http('GET', '/api/inventory')).status, 200);
});

test('unknown breakers and actions are 404 once authenticated', { timeout: 10000 }, async () => {
  assert.equal((await http('POST', '/api/breakers/no-such/isolate', { token: TOKEN })).status, 404);
  assert.equal((await http('POST', '/api/breakers/orders-api/explode', { token: TOKEN })).status, 404);
  assert.equal((await snapshot('orders-api')).state, 'closed');
});

test('POST /demo/downstream validates its JSON body', { timeout: 10000 }, async () => {
  const form = await http('POST', '/demo/downstream', {
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'failureRate=1',
  });
  assert.equal(form.status, 415);
  assert.equal((await http('POST', '/demo/downstream', { json: { failureRate: 2 } })).status, 400);
  assert.equal((await http('POST', '/demo/downstream', { json: { latencyMs: -1 } })).status, 400);
  assert.equal((await http('POST', '/demo/downstream', { json: [1] })).status, 415);
  const bad = await http('POST', '/demo/downstream', { headers: { 'content-type': 'application/json' }, body: '{oops' });
  assert.equal(bad.status, 400);
  const state = (await http('GET', '/demo/downstream')).body;
  assert.equal(state.failureRate, 0);
  assert.equal(state.latencyMs, 1);
});

test('without OPS_TOKEN a token is generated, written 0600, and never printed', { timeout: 10000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rc-demo-token-'));
  const tokenFile = path.join(dir, 'nested', 'ops-token');
  const lines = [];
  let second;
  try {
    second = await start(0, { tokenFile, stateFile: STATE_FILE + '.second', log: (...a) => lines.push(a.join(' ')) });
    const token = fs.readFileSync(tokenFile, 'utf8').trim();
    assert.ok(token.length >= 32);
    assert.equal(fs.statSync(tokenFile).mode & 0o777, 0o600);
    assert.ok(lines.some((l) => l.includes(tokenFile)), 'the file path is printed');
    assert.ok(!lines.some((l) => l.includes(token)), 'the token is not printed');
    const ok = await fetch(`${second.url}/api/breakers/orders-api/close`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    assert.equal(ok.status, 200);
    const wrong = await fetch(`${second.url}/api/breakers/orders-api/close`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    assert.equal(wrong.status, 403);
  } finally {
    if (second) await second.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('ops through the demo: safe mode keeps probes and essential routes, brownout sheds sheddable first, quarantine answers 423, the DLQ drains', { timeout: 20000 }, async () => {
  const ops = (method, p, json) => http(method, `/api/ops/${p}`, { json, token: TOKEN });
  assert.equal((await http('POST', '/api/ops/safe-mode', { json: { enabled: true } })).status, 401, 'token required');
  let r = await ops('POST', 'safe-mode', { enabled: true, reason: 'test' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.changed, true);
  assert.equal((await http('GET', '/api/inventory')).status, 503);
  assert.equal((await http('GET', '/health/live')).status, 200);
  assert.equal((await http('GET', '/demo/downstream')).status, 200, 'the demo controls are essential');
  assert.equal((await http('GET', '/api/observability/summary')).status, 200);
  await ops('POST', 'safe-mode', { enabled: false });
  r = await ops('POST', 'brownout', { enabled: true, level: 0.5, reason: 'test' });
  assert.equal(r.body.after.brownout.level, 0.5);
  assert.equal((await http('GET', '/api/recommendations')).status, 503, 'sheddable shed at 0.5');
  assert.equal((await http('GET', '/api/inventory')).status !== 503, true, 'default served at 0.5');
  await ops('POST', 'brownout', { enabled: false });
  const rec = await http('GET', '/api/recommendations');
  assert.equal(rec.status, 200);
  assert.equal(rec.body.dimmer, 1);
  await ops('POST', 'agents/agent-1/quarantine', { reason: 'test', ttlMs: 60000 });
  r = await http('POST', '/api/agents/agent-1/run');
  assert.equal(r.status, 423);
  assert.equal(r.body.reason, 'test');
  await ops('DELETE', 'agents/agent-1/quarantine');
  assert.equal((await http('POST', '/api/agents/agent-1/run')).status, 200);
  // The failed orders of the earlier test went to the dead-letter queue; downstream is healthy now.
  await setDownstream({ failureRate: 0, latencyMs: 1 });
  const waiting = demo.deadLetters.length;
  assert.ok(waiting > 0, 'failed orders were kept for a drain');
  r = await ops('POST', 'dlq/orders-dlq/drain', { limit: 100 });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.runs[0].processed, waiting);
  assert.equal(demo.deadLetters.length, 0);
  // Agent runs publish on the bus; AI calls are tracked.
  assert.equal((await http('POST', '/api/agents/agent-2/run')).status, 200);
  assert.equal((await http('POST', '/api/ai/embed')).status, 200);
  const wd = (await http('GET', '/api/observability/watchdogs')).body;
  assert.ok(wd.aiCallLatency.totalCalls >= 1);
  assert.ok(wd.watchdogs.some((w) => w.name === 'publish:agent.run' && w.totalCalls >= 1));
  const summary = (await http('GET', '/api/observability/summary')).body;
  for (const k of ['goldenSignals', 'watchdogs', 'circuitBreakers', 'rollouts', 'healthGates', 'startupDAG', 'ops']) assert.ok(summary[k] && Object.keys(summary[k]).length > 0, k);
  assert.ok(summary.ops.audit.some((e) => e.action === 'drain-dlq'));
  assert.ok(fs.existsSync(STATE_FILE), 'the ops state was saved');
});

test('the whole file stays well inside its time budget', () => {
  const elapsed = performance.now() - FILE_STARTED;
  assert.ok(elapsed < 20000, `took ${elapsed.toFixed(0)} ms`);
});
