'use strict';
// Traffic shaping as users see it: parity with the original, sticky
// bucketing, SLO rollback and step advance, bad input, Express over HTTP.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const express = require('express');

const T = require('../dist/traffic-shaping.js');
const { TrafficShaping, getTrafficShaping, shouldRouteToNewVersion, recordRequestMetrics, updateRollout, getRolloutStatus, withTrafficShaping, trafficShapingMiddleware } = T;

test('parity: no rollout routes through; getStatus(unknown) is null; updateRollout(unknown, n) throws', () => {
  assert.equal(shouldRouteToNewVersion('never-started'), true);
  assert.equal(getTrafficShaping().getStatus('never-started'), null);
  assert.equal(getRolloutStatus('never-started'), null);
  assert.throws(() => updateRollout('never-started', 50), { message: 'Rollout not found: never-started' });
  recordRequestMetrics('never-started', false, 5); // ignored, as the original
  assert.equal(getTrafficShaping(), getTrafficShaping());
});

test("parity: the original's example rolls back on the 11th request (errorRate 0.05)", () => {
  const ts = new TrafficShaping();
  const events = [];
  ts.on('change', (e) => events.push(e.kind));
  ts.startRollout('r', { percentage: 100, slo: { errorRate: 0.05 }, autoRollback: true });
  for (let i = 0; i < 10; i++) ts.recordRequest('r', i !== 3, 5);
  assert.equal(ts.getStatus('r').percentage, 100, '1 failure in 10: still 100 (inconclusive below 11 samples)');
  assert.equal(ts.getStatus('r').verdict, 'inconclusive');
  ts.recordRequest('r', true, 5);
  const s = ts.getStatus('r');
  assert.equal(s.percentage, 0);
  assert.equal(s.requestCount, 11);
  assert.ok(Math.abs(s.errorRate - 1 / 11) < 1e-12);
  assert.deepEqual(events, ['start', 'breach', 'rollback']);
  assert.equal(ts.shouldRoute('r', 'anyone'), false, 'stays at 0 until someone changes it');
  const h = ts.getRolloutStatus('r').history;
  assert.equal(h.at(-1).kind, 'rollback');
  assert.match(h.at(-1).reason, /^error rate 0.0909 > 0.05/);
  assert.equal(h.at(-1).figures.requests, 11);
});

test('parity: the p99 rule (10 × 5 ms and one 101 ms breach a 100 ms ceiling)', () => {
  const ts = new TrafficShaping();
  ts.startRollout('p', { percentage: 100, slo: { p99Latency: 100 }, autoRollback: true });
  for (let i = 0; i < 10; i++) ts.recordRequest('p', true, 5);
  ts.recordRequest('p', true, 101);
  assert.equal(ts.getStatus('p').percentage, 0);
  assert.match(ts.getRolloutStatus('p').history.at(-1).reason, /^p99 latency 10\d\.\d ms > 100 ms/);
});

test('parity: an SLO without autoRollback reports the breach and never rolls back (as the original)', () => {
  const ts = new TrafficShaping();
  const events = [];
  ts.on('change', (e) => events.push(e.kind));
  ts.startRollout('watch-only', { percentage: 100, slo: { errorRate: 0.05 } });
  for (let i = 0; i < 30; i++) ts.recordRequest('watch-only', false, 5);
  const s = ts.getStatus('watch-only');
  assert.equal(s.percentage, 100, 'no autoRollback: stays at 100');
  assert.equal(s.verdict, 'breach');
  assert.ok(events.includes('breach') && !events.includes('rollback'), events.join());
  assert.equal(ts.getConfig('watch-only').autoRollback, undefined);
});

test("parity: the original's log lines (start, update, SLO breach, rollback) go to the package logger", () => {
  const lines = [];
  T.configureTrafficShaping({ logger: { log: (m) => lines.push(['log', m]), error: (m) => lines.push(['error', m]) } });
  try {
    const ts = new TrafficShaping();
    ts.startRollout('logged', { percentage: 20, slo: { errorRate: 0.05 }, autoRollback: true });
    ts.updateRollout('logged', 100);
    for (let i = 0; i < 11; i++) ts.recordRequest('logged', false, 5);
    assert.deepEqual(lines.slice(0, 2), [
      ['log', '🚀 [TrafficShaping] Started rollout "logged" at 20%'],
      ['log', '📊 [TrafficShaping] Updated rollout "logged" to 100%'],
    ]);
    assert.equal(lines.length, 4, JSON.stringify(lines));
    assert.equal(lines[2][0], 'error');
    assert.match(lines[2][1], /^❌ \[TrafficShaping\] SLO breach on "logged": error rate 1\.0000 > 0\.05/);
    assert.equal(lines[3][0], 'log');
    assert.match(lines[3][1], /^⏪ \[TrafficShaping\] Rolled back "logged" to 0%/);
    T.configureTrafficShaping({ logger: null });
    ts.startRollout('silent', { percentage: 5 });
    assert.equal(lines.length, 4, 'null silences');
    // A logger that throws changes nothing: the rollback still happens, nothing reaches the caller.
    T.configureTrafficShaping({ logger: { log() { throw new Error('log down'); }, error() { throw new Error('log down'); } } });
    ts.startRollout('loud', { percentage: 100, slo: { errorRate: 0.05 }, autoRollback: true });
    for (let i = 0; i < 11; i++) assert.doesNotThrow(() => ts.recordRequest('loud', false, 5));
    assert.equal(ts.getStatus('loud').percentage, 0);
  } finally {
    T.configureTrafficShaping({ logger: console });
  }
});

test('parity: an empty rollout name is hashed as the original B did ("" + ":anonymous" is bucket 77)', () => {
  const ts = new TrafficShaping();
  ts.startRollout('', { percentage: 77, hash: 'legacy' });
  assert.equal(ts.has(''), true);
  assert.equal(ts.shouldRoute('', 'anonymous'), false, 'bucket 77 is not < 77');
  ts.updateRollout('', 78);
  assert.equal(ts.shouldRoute('', 'anonymous'), true);
  assert.equal(ts.getStatus('').percentage, 78);
});

test('legacy hash reproduces the original B vectors; murmur3 is sticky and proportional', () => {
  const ts = new TrafficShaping();
  ts.startRollout('api-agent', { percentage: 65, hash: 'legacy' });
  assert.equal(ts.shouldRoute('api-agent', 'anonymous'), false, 'bucket 65 is not < 65');
  ts.updateRollout('api-agent', 66);
  assert.equal(ts.shouldRoute('api-agent', 'anonymous'), true);
  ts.startRollout('search-v2', { percentage: 45.01, hash: 'legacy' });
  assert.equal(ts.shouldRoute('search-v2', 'alice'), true, 'alice is bucket 45');

  ts.startRollout('new-checkout', { percentage: 10 });
  const users = Array.from({ length: 20_000 }, (_, i) => `u${i}`);
  const in10 = users.filter((u) => ts.shouldRoute('new-checkout', u));
  ts.updateRollout('new-checkout', 20);
  const in20 = new Set(users.filter((u) => ts.shouldRoute('new-checkout', u)));
  assert.ok(in10.every((u) => in20.has(u)), 'raising 10 → 20 keeps every user of the 10 %');
  assert.ok(Math.abs(in10.length / users.length - 0.1) < 0.01 && Math.abs(in20.size / users.length - 0.2) < 0.01);
  assert.equal(ts.shouldRoute('new-checkout', 'u1'), ts.shouldRoute('new-checkout', 'u1'), 'deterministic');
  ts.updateRollout('new-checkout', 0.01);
  assert.ok(users.filter((u) => ts.shouldRoute('new-checkout', u)).length < 10, '0.01 % granularity');
});

test('allow and deny lists: deny wins', () => {
  const ts = new TrafficShaping();
  ts.startRollout('f', { percentage: 0, allowList: ['beta', 'both'], denyList: ['both'] });
  assert.equal(ts.shouldRoute('f', 'beta'), true);
  assert.equal(ts.shouldRoute('f', 'both'), false);
  assert.equal(ts.shouldRoute('f', 'other'), false);
  ts.updateRollout('f', { percentage: 100 });
  assert.equal(ts.shouldRoute('f', 'other'), true);
  assert.equal(ts.shouldRoute('f', 'both'), false);
});

test('steps advance when healthy with enough time and requests; never on no data', async () => {
  const ts = new TrafficShaping();
  const adv = [];
  ts.on('advance', (e) => adv.push(e.toPercentage));
  ts.startRollout('plan', { steps: [{ percentage: 1, minDurationMs: 50, minRequests: 15 }, { percentage: 5, minDurationMs: 50, minRequests: 15 }, { percentage: 25 }], slo: { errorRate: 0.1 } });
  assert.equal(ts.getStatus('plan').percentage, 1, 'starts at the first step');
  await new Promise((r) => setTimeout(r, 80));
  ts.flush();
  assert.equal(ts.getRolloutStatus('plan').percentage, 1, 'no data: no advance');
  for (let i = 0; i < 20; i++) ts.recordRequest('plan', true, 3);
  ts.flush();
  assert.deepEqual(adv, [5]);
  for (let i = 0; i < 20; i++) ts.recordRequest('plan', true, 3);
  ts.flush();
  assert.deepEqual(adv, [5], 'the new step waits its minimum duration');
  await new Promise((r) => setTimeout(r, 60));
  ts.recordRequest('plan', true, 3);
  ts.flush();
  assert.deepEqual(adv, [5, 25]);
});

test('a rollout that rolls back by itself still advances its steps when healthy (outcomes recorded one by one)', async () => {
  const ts = new TrafficShaping();
  const adv = [];
  ts.on('advance', (e) => adv.push(e.toPercentage));
  ts.startRollout('judged-plan', { steps: [{ percentage: 50, minRequests: 10 }, { percentage: 100 }], slo: { errorRate: 0.5 }, autoRollback: true, minSamples: 5 });
  for (let i = 0; i < 20; i++) ts.recordRequest('judged-plan', true, 3);
  // The shared timer analyses them within 250 ms; no read is needed.
  for (let k = 0; k < 40 && adv.length === 0; k++) await new Promise((r) => setTimeout(r, 25));
  assert.deepEqual(adv, [100]);
  assert.equal(ts.shouldRoute('judged-plan', 'anyone'), true, 'the JS mirror follows the advance');
});

test('manual pause, resume, promote, abort and fast rollback', () => {
  const ts = new TrafficShaping();
  ts.startRollout('m', { percentage: 30, slo: { errorRate: 0.01 }, autoRollback: true });
  ts.pause('m');
  for (let i = 0; i < 30; i++) ts.recordRequest('m', false, 1);
  assert.equal(ts.getStatus('m').percentage, 30, 'paused: a breach does not roll back');
  assert.equal(ts.getStatus('m').verdict, 'breach');
  ts.resume('m');
  ts.recordRequest('m', false, 1);
  assert.equal(ts.getStatus('m').percentage, 0);
  ts.promote('m');
  assert.equal(ts.getStatus('m').percentage, 100);
  ts.rollback('m', 'fast');
  assert.equal(ts.getStatus('m').percentage, 0);
  ts.abort('m');
  assert.equal(ts.getRolloutStatus('m').phase, 'aborted');
  ts.rollback('unknown'); // does nothing, as the original
});

test('bad input: RangeError/TypeError naming the field; nothing half-applied', () => {
  const ts = new TrafficShaping();
  assert.throws(() => ts.startRollout('x', { percentage: 150 }), { name: 'RangeError', message: 'percentage must be a number from 0 to 100, got 150' });
  assert.throws(() => ts.startRollout('x', { percentage: NaN }), RangeError);
  assert.throws(() => ts.startRollout('x', { percentage: '50' }), { name: 'TypeError', message: /percentage/ });
  assert.throws(() => ts.startRollout('x'.repeat(257), {}), RangeError);
  assert.throws(() => ts.startRollout('x', { steps: [{ percentage: 10 }, { percentage: 5 }] }), { name: 'RangeError', message: /^steps\[1\]\.percentage must be greater than steps\[0\]\.percentage/ });
  assert.throws(() => ts.startRollout('x', { slo: { errorRate: 2 } }), { name: 'RangeError', message: /^slo.errorRate must be a number from 0 to 1/ });
  assert.throws(() => ts.startRollout('x', { slo: { burnRateWindows: [{ longMs: 1, shortMs: 1, factor: 1 }] } }), { message: /slo.availability/ });
  assert.throws(() => ts.startRollout('x', { hash: 'md5' }), { name: 'RangeError', message: /^hash must be 'murmur3' or 'legacy'/ });
  assert.throws(() => ts.startRollout('x', { allowList: 'bob' }), { name: 'TypeError', message: /allowList/ });
  assert.equal(ts.getStatus('x'), null, 'nothing was created');
  ts.startRollout('y', { percentage: 10 });
  assert.throws(() => ts.updateRollout('y', -1), RangeError);
  assert.throws(() => ts.updateRollout('y', { percentage: 101 }), RangeError);
  assert.equal(ts.getStatus('y').percentage, 10, 'unchanged after refused updates');
});

function listen(app) {
  return new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
}

test('Express: a new version that starts failing is rolled back automatically; 503 or stable follows', { timeout: 20_000 }, async () => {
  const ts = getTrafficShaping();
  let failing = false;
  ts.startRollout('search-v2', { percentage: 50, slo: { errorRate: 0.1 }, minSamples: 20, autoRollback: true });
  const rollbacks = [];
  ts.on('rollback', (e) => e.name === 'search-v2' && rollbacks.push(e));
  const app = express();
  app.get('/search', withTrafficShaping({ rolloutName: 'search-v2', onBlocked: 'next' }), (req, res) => {
    if (req.rollout.cohort === 'new' && failing) return res.status(500).json({ version: 'v2', error: 'boom' });
    res.json({ version: req.rollout.cohort === 'new' ? 'v2' : 'v1' });
  });
  app.get('/strict', withTrafficShaping({ rolloutName: 'search-v2' }), (req, res) => res.json({ ok: true }));
  const server = await listen(app);
  const base = `http://127.0.0.1:${server.address().port}`;
  const get = async (p, user) => {
    const r = await fetch(base + p, { headers: { 'x-user-id': user } });
    return { status: r.status, cohort: r.headers.get('x-rollout-cohort'), body: await r.json() };
  };
  try {
    const seen = { v1: 0, v2: 0 };
    const byUser = new Map();
    for (let i = 0; i < 60; i++) {
      const r = await get('/search', `user-${i % 30}`);
      assert.equal(r.status, 200);
      seen[r.body.version]++;
      if (byUser.has(i % 30)) assert.equal(byUser.get(i % 30), r.cohort, 'sticky per user');
      byUser.set(i % 30, r.cohort);
    }
    assert.ok(seen.v1 > 0 && seen.v2 > 0, JSON.stringify(seen));
    failing = true;
    for (let i = 0; i < 60 && rollbacks.length === 0; i++) {
      await get('/search', `user-${i % 30}`);
      ts.flush();
    }
    assert.equal(rollbacks.length, 1, 'rolled back automatically');
    assert.match(rollbacks[0].reason, /^error rate/);
    for (let i = 0; i < 30; i++) {
      const r = await get('/search', `user-${i}`);
      assert.equal(r.status, 200, 'every user now gets the stable version');
      assert.equal(r.body.version, 'v1');
      assert.equal(r.cohort, 'stable');
    }
    const strict = await get('/strict', 'user-1');
    assert.equal(strict.status, 503);
    assert.deepEqual(strict.body, { error: 'Service in gradual rollout', message: 'This endpoint is currently rolling out. Please retry in a moment.', rolloutName: 'search-v2' });
    const report = T.getRolloutsReport().rollouts.find((r) => r.name === 'search-v2');
    assert.equal(report.status.percentage, 0);
    assert.ok(report.detail.stableCohort.totalRequests > 0, 'stable outcomes recorded too');
  } finally {
    await new Promise((r) => server.close(r));
  }
});

test('Express: a breach acts within a few requests under concurrent load (the original stopped at the 11th)', { timeout: 20_000 }, async () => {
  const ts = new TrafficShaping();
  const MIN = 11;
  const CONCURRENCY = 8;
  ts.startRollout('v2-fails', { percentage: 100, slo: { errorRate: 0.05 }, autoRollback: true, minSamples: MIN });
  let reachedNew = 0;
  let rolledBackAt = null;
  ts.on('rollback', () => (rolledBackAt ??= reachedNew));
  const app = express();
  app.get('/v', withTrafficShaping({ rolloutName: 'v2-fails', onBlocked: 'next', shaping: ts }), (req, res) => {
    if (req.rollout.cohort === 'new') {
      reachedNew++;
      return res.status(500).json({ version: 'v2' });
    }
    res.json({ version: 'v1' });
  });
  const server = await listen(app);
  const base = `http://127.0.0.1:${server.address().port}`;
  const agent = new (require('node:http').Agent)({ keepAlive: true, maxSockets: CONCURRENCY });
  const one = () => new Promise((resolve, reject) => {
    require('node:http').get(`${base}/v`, { agent }, (r) => { r.resume(); r.on('end', resolve); }).on('error', reject);
  });
  try {
    // 400 requests, CONCURRENCY at a time: every failure of v2 is a request that reached it.
    let next = 0;
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next++ < 400) await one();
    }));
    assert.equal(ts.getStatus('v2-fails').percentage, 0, 'rolled back');
    assert.ok(rolledBackAt !== null && rolledBackAt >= MIN, `rolled back after ${rolledBackAt}`);
    // Past the threshold (the MIN-th failure), only requests already routed may still reach v2.
    assert.ok(reachedNew <= MIN + CONCURRENCY, `${reachedNew} failing requests reached the new cohort (bound ${MIN + CONCURRENCY})`);
  } finally {
    agent.destroy();
    await new Promise((r) => server.close(r));
  }
});

test('Express: a healthy new version advances through its steps', { timeout: 20_000 }, async () => {
  const ts = getTrafficShaping();
  ts.startRollout('agent-v2', { steps: [{ percentage: 10, minRequests: 10 }, { percentage: 50, minRequests: 10 }, { percentage: 100 }], slo: { errorRate: 0.05, p99Latency: 1000 }, minSamples: 5 });
  const app = express();
  app.use((req, res, next) => {
    req.trafficShapingConfig = { rolloutName: 'agent-v2' };
    next();
  });
  app.use(trafficShapingMiddleware);
  app.get('/agent', (req, res) => res.json({ cohort: req.rollout.cohort }));
  const server = await listen(app);
  const base = `http://127.0.0.1:${server.address().port}`;
  try {
    let served = 0;
    for (let i = 0; i < 400 && ts.getStatus('agent-v2').percentage < 100; i++) {
      const r = await fetch(`${base}/agent`, { headers: { 'x-user-id': `u${i}` } });
      if (r.status === 200) served++;
      await r.arrayBuffer();
      ts.flush();
    }
    assert.equal(ts.getStatus('agent-v2').percentage, 100);
    const kinds = ts.getRolloutStatus('agent-v2').history.map((h) => `${h.kind}:${h.toPercentage}`);
    assert.deepEqual(kinds.slice(-2), ['advance:50', 'advance:100']);
    assert.ok(served > 0);
  } finally {
    await new Promise((r) => server.close(r));
  }
});

test('ops rollback reaches the rollouts (and is remembered for a restart)', () => {
  const { OpsControls } = require('../dist/entries/ops.js');
  const ops = new OpsControls({ stateFile: false, logger: null });
  ops.setRolloutController(T.rolloutController());
  getTrafficShaping().startRollout('ops-target', { percentage: 40 });
  const r = ops.rollback('ops-target', { reason: 'incident 42' });
  assert.deepEqual(r.rolledBack, ['ops-target']);
  assert.equal(getTrafficShaping().getStatus('ops-target').percentage, 0);
  assert.equal(r.after.rolledBack[0].name, 'ops-target');
  assert.throws(() => ops.rollback('nope'), { message: 'Rollout not found: nope' });
});

test('RolloutTable#recordFn records and judges as RolloutTable#record, and checks its arguments', () => {
  const native = require('../index.js');
  const cfg = { percentage: 100, slo: { errorRate: 0.05 }, autoRollback: true };
  const [a, b] = [new native.RolloutTable(), new native.RolloutTable()];
  const ia = a.start('r', cfg, 0).id;
  const ib = b.start('r', cfg, 0).id;
  const record = b.recordFn();
  const NEW = native.RolloutOutcomeFlag.NewCohort;
  const OK = native.RolloutOutcomeFlag.Ok;
  const kinds = (evs) => (evs === null ? null : evs.map((e) => `${e.kind}:${e.toPercentage}`));
  for (let i = 0; i < 20; i++) {
    const flags = NEW | (i % 3 === 0 ? 0 : OK);
    assert.deepEqual(kinds(record(ib, flags, 5, 1 + i)), kinds(a.record(ia, flags, 5, 1 + i)), `outcome ${i}`);
  }
  assert.equal(b.status(ib, 30).percentage, a.status(ia, 30).percentage);
  assert.throws(() => record(ib, 'x', 5, 1), TypeError);
  assert.throws(() => record(ib), TypeError);
  assert.equal(record(9999, NEW, 5, 1), null, 'an unknown rollout records nothing');
});
