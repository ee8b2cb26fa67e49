'use strict';
/**
 * The testing kit in this repo's own process (the consumer projects in
 * testing-kit.test.js cover real Jest and vitest): resetAll reaches every
 * registry and every copy of the JS, a second load under a test runner
 * resets, the test defaults, the clock, and health readiness without a
 * hand-called start().
 */
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const http = require('node:http');
const path = require('node:path');

const DIST = path.join(__dirname, '..', 'dist');
const { getCircuitBreakerRegistry } = require('../dist/circuit-breaker');
const { getOps, configureOps } = require('../dist/ops');
const { getHealthGates, fromBreaker, createHealthRouter } = require('../dist/entries/health-gates');
const { getTrafficShaping } = require('../dist/traffic-shaping');
const { recordRequest, seriesIdFor } = require('../dist/metrics');
const kit = require('../dist/testing');

/** Runs `code` in a child Node with the given environment; returns its last stdout line as JSON. */
function child(code, env = {}) {
  const out = execFileSync(process.execPath, ['-e', code], {
    cwd: path.join(__dirname, '..'),
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return JSON.parse(out.trim().split('\n').pop());
}

configureOps({ stateFile: false, logger: null });

test('resetAll removes breakers: has() false, get() makes a fresh one with the new options', () => {
  const reg = getCircuitBreakerRegistry();
  const kept = reg.get('kit-a', { failureThreshold: 2 });
  kept.open();
  kit.resetAll();
  assert.equal(reg.has('kit-a'), false);
  assert.deepEqual(reg.getAll(), []);
  const fresh = reg.get('kit-a', { failureThreshold: 7 });
  assert.notEqual(fresh, kept);
  assert.equal(fresh.state, 'closed');
  assert.equal(fresh.toJSON().options.failureThreshold, 7);
  // The kept object works on the fresh breaker (by name), not on a stale id.
  assert.equal(kept.state, 'closed');
  kept.open();
  assert.equal(fresh.state, 'open');
});

test('resetAll clears metrics, ops switches, rollouts and gates', () => {
  const id = seriesIdFor('GET', '/kit');
  recordRequest(id, 200, 3);
  assert.equal(kit.routeFigures('GET', '/kit').requests, 1);
  getOps().setSafeMode(true, { reason: 'kit' });
  getTrafficShaping().startRollout('kit-rollout', { percentage: 10 });
  getHealthGates().registerGate({ serviceId: 'kit-gate', check: () => true });
  assert.equal(getOps().isSafeMode(), true);
  kit.resetAll();
  assert.equal(kit.routeFigures('GET', '/kit').requests, 0);
  assert.equal(getOps().isSafeMode(), false);
  assert.deepEqual(getTrafficShaping().getAllRollouts(), []);
  assert.equal(getHealthGates().getReadinessSnapshot().gates.length, 0);
});

test('a second load of the package under a test runner starts from nothing (as Jest loads it per file)', () => {
  const code = `
    const load = () => {
      for (const k of Object.keys(require.cache)) if (k.startsWith(${JSON.stringify(DIST)})) delete require.cache[k];
      return require(${JSON.stringify(path.join(DIST, 'circuit-breaker.js'))});
    };
    const first = load().getCircuitBreakerRegistry();
    first.get('leak', { failureThreshold: 2 }).open();
    const second = load().getCircuitBreakerRegistry();
    const b = second.get('leak', { failureThreshold: 7 });
    console.log(JSON.stringify({ has: second.has('leak'), state: b.state, threshold: b.toJSON().options.failureThreshold }));
  `;
  assert.deepEqual(child(code, { JEST_WORKER_ID: '1' }), { has: true, state: 'closed', threshold: 7 });
  // Outside a test runner a second copy shares the breakers, as before.
  assert.deepEqual(child(code, {}), { has: true, state: 'open', threshold: 2 });
});

test('under a test runner: quiet, retries that do not wait, rejections that fake queueMicrotask cannot hold', () => {
  const code = `
    const logs = [];
    for (const k of ['log', 'warn', 'error']) console[k] = (...a) => logs.push(a.join(' '));
    // As Jest's fake timers do: queueMicrotask and setTimeout held until advanced.
    const held = [];
    globalThis.queueMicrotask = (fn) => held.push(fn);
    const realSetTimeout = globalThis.setTimeout;
    let timers = 0;
    globalThis.setTimeout = (fn, ms) => { timers++; return realSetTimeout(fn, ms); };
    const { getCircuitBreakerRegistry } = require(${JSON.stringify(path.join(DIST, 'circuit-breaker.js'))});
    const { getOps } = require(${JSON.stringify(path.join(DIST, 'ops.js'))});
    const reg = getCircuitBreakerRegistry();
    (async () => {
      let calls = 0;
      const e1 = await reg.get('fails').execute(() => { calls++; throw new Error('down'); }).catch((e) => e.message);
      reg.get('open').open();
      const e2 = await reg.get('open').execute(() => 1).catch((e) => e.code);
      await reg.get('delayed', { retryOptions: { maxRetries: 1, initialDelay: 5 } }).execute(() => { throw new Error('x'); }).catch(() => {});
      getOps().setSafeMode(true);
      process.stdout.write(JSON.stringify({ e1, calls, e2, timers, logs: logs.length, stateFile: getOps().stateFile, delay: reg.get('fails').toJSON().options.initialDelay }));
    })();
  `;
  const r = child(code, { RELIABILITY_TEST_MODE: '1' });
  assert.deepEqual(r, { e1: 'down', calls: 6, e2: 'ERR_CIRCUIT_OPEN', timers: 1, logs: 0, stateFile: null, delay: 0 });
});

test('an injected clock moves breakers: exactly resetTimeout later the next call is the trial', async () => {
  kit.resetAll();
  const clock = kit.useManualClock(1_000.123_456_7);
  try {
    const b = kit.openBreaker('kit-clock', { resetTimeout: 1000 });
    clock.advance(999);
    await assert.rejects(b.execute(() => 1), { code: 'ERR_CIRCUIT_OPEN' });
    clock.advance(1);
    assert.equal(await b.execute(() => 'trial'), 'trial');
    assert.equal(b.toJSON().totals.rejects, 1);
    kit.advanceClock(5);
    assert.equal(clock.now(), 1_000.123_456_7 + 1005);
  } finally {
    kit.setClock(null);
  }
  assert.throws(() => kit.setClock(42), TypeError);
  assert.throws(() => kit.useManualClock().advance(-1), RangeError);
  kit.setClock(null);
});

test("createHealthRouter() starts the process-wide gates: /health/ready turns 200 without a hand-called start()", async () => {
  kit.resetAll();
  const express = require('express');
  const app = express();
  app.use(createHealthRouter());
  getHealthGates().registerGate(fromBreaker('kit-payments'));
  const server = http.createServer(app).listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const url = `http://127.0.0.1:${server.address().port}/health/ready`;
  try {
    let status = 0;
    // The first probe starts the checks; the gate passes on its first check.
    for (let i = 0; i < 200 && status !== 200; i++) {
      status = (await fetch(url)).status;
      if (status !== 200) await new Promise((r) => setImmediate(r));
    }
    assert.equal(status, 200);
    assert.equal(getHealthGates().isStarted(), true);
  } finally {
    server.close();
    getHealthGates().stop();
  }
});

test('a call in flight across resetAll() settles with its own outcome and touches no fresh breaker', async () => {
  kit.resetAll();
  const reg = getCircuitBreakerRegistry();
  let release;
  const gate = new Promise((r) => (release = r));
  const old = reg.get('kit-inflight', { retryOptions: { maxRetries: 0 } });
  const ok = old.execute(() => gate.then(() => 'done'));
  const failing = old.execute(() => gate.then(() => Promise.reject(new Error('late failure'))));
  kit.resetAll();
  const fresh = reg.get('kit-other', { failureThreshold: 1 });
  release();
  assert.equal(await ok, 'done');
  await assert.rejects(failing, /late failure/);
  assert.equal(fresh.state, 'closed');
  assert.equal(fresh.toJSON().totals.successes + fresh.toJSON().totals.failures, 0);
});
