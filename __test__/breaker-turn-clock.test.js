// The closed path's turn clock (lib/circuit-breaker.ts, "the turn clock"): a
// closed breaker without a slow-call rule, a timeout or `exactLatency` times
// its calls with one clock reading per event-loop turn. These tests pin what
// that means for a user: latencies are exact to the turn, slow-call rules and
// `exactLatency` keep per-call reads, injected clocks are read per call, and
// the module does not depend on the global setImmediate. No timed assertion:
// each bound is one the code guarantees (a real 20 ms timer cannot take less
// than ~20 ms; busy-work of 30 ms takes at least 30 ms).
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const { getCircuitBreakerRegistry, configureCircuitBreakers } = require('@dreamnet/reliability-core/circuit-breaker');
const { setClock } = require('@dreamnet/reliability-core/testing');

configureCircuitBreakers({ logger: null });

let seq = 0;
const uniq = (p) => `turn-${p}-${++seq}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** Synchronous busy-work of at least `ms` milliseconds, inside one turn. */
function busy(ms) {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

test('a call that awaits a real 20 ms timer records its latency (>= 15 ms) on a default breaker', async () => {
  const b = getCircuitBreakerRegistry().get(uniq('timer'));
  assert.equal(b.toJSON().options.timesPerTurn, true);
  let told = -1;
  b.on('success', (_v, latency) => (told = latency));
  assert.equal(await b.execute(async () => { await sleep(20); return 7; }), 7);
  const s = b.toJSON();
  assert.equal(s.totals.successes, 1);
  assert.ok(s.window.meanLatencyMs >= 15, `mean latency ${s.window.meanLatencyMs} ms`);
  assert.ok(told >= 15, `success event latency ${told} ms`);
});

test('latency is exact to the turn: synchronous work inside one turn is not counted, unless exactLatency', async () => {
  const turn = getCircuitBreakerRegistry().get(uniq('sync'));
  await turn.execute(async () => { busy(30); return 1; });
  assert.equal(turn.toJSON().window.meanLatencyMs, 0);

  const exact = getCircuitBreakerRegistry().get(uniq('exact'), { exactLatency: true });
  const o = exact.toJSON().options;
  assert.equal(o.exactLatency, true);
  assert.equal(o.timesPerTurn, false);
  await exact.execute(async () => { busy(30); return 1; });
  assert.ok(exact.toJSON().window.meanLatencyMs >= 30, `mean latency ${exact.toJSON().window.meanLatencyMs} ms`);
});

test('a slowCallDurationMs breaker still opens on slow calls made of synchronous busy-work within one turn', async () => {
  const b = getCircuitBreakerRegistry().get(uniq('slow'), { slowCallDurationMs: 15, slowCallRateThreshold: 50, volumeThreshold: 2, retryOptions: { maxRetries: 0 } });
  assert.equal(b.toJSON().options.timesPerTurn, false);
  await b.execute(async () => 1);
  await b.execute(async () => { busy(30); return 1; });
  assert.equal(b.getState().state, 'open');
  assert.equal(b.toJSON().totals.slow, 1);
});

test('a breaker with a timeout keeps per-call reads', async () => {
  const b = getCircuitBreakerRegistry().get(uniq('timeout'), { timeout: 10_000 });
  assert.equal(b.toJSON().options.timesPerTurn, false);
  await b.execute(async () => { busy(30); return 1; });
  assert.ok(b.toJSON().window.meanLatencyMs >= 30);
});

test('an injected clock is read per call, not per turn', async () => {
  let t = 1_000;
  setClock(() => t);
  try {
    const b = getCircuitBreakerRegistry().get(uniq('injected'));
    await b.execute(async () => { t += 50; return 1; });
    assert.equal(b.toJSON().window.meanLatencyMs, 50);
  } finally {
    setClock(null);
  }
});

test('exactLatency is validated in Rust with the other options', () => {
  const r = getCircuitBreakerRegistry();
  assert.throws(() => r.get(uniq('bad'), { exactLatency: 'yes' }), (e) => e instanceof TypeError && /^exactLatency must be a boolean/.test(e.message));
  assert.throws(() => r.get(uniq('bad'), { exactLatency: 1 }), TypeError);
  assert.equal(r.get(uniq('ok'), { exactLatency: false }).toJSON().options.exactLatency, false);
});

test('under jsdom-like globals (no usable global setImmediate) the turn clock runs on node:timers', () => {
  const script = `
    globalThis.setImmediate = () => { throw new Error('the global setImmediate was used'); };
    const { getCircuitBreakerRegistry, configureCircuitBreakers } = require('@dreamnet/reliability-core/circuit-breaker');
    configureCircuitBreakers({ logger: null });
    const b = getCircuitBreakerRegistry().get('jsdom-like');
    (async () => {
      for (let i = 0; i < 3; i++) await b.execute(() => new Promise((r) => setTimeout(() => r(1), 20)));
      const s = b.toJSON();
      if (s.totals.successes !== 3 || !(s.window.meanLatencyMs >= 15)) throw new Error(JSON.stringify(s.window));
      console.log('ok');
    })().catch((e) => { console.error(e); process.exit(1); });
  `;
  const env = { ...process.env };
  delete env.NODE_ENV;
  delete env.JEST_WORKER_ID;
  delete env.VITEST;
  const r = spawnSync(process.execPath, ['-e', script], { cwd: path.join(__dirname, '..'), encoding: 'utf8', env });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'ok');
});
