'use strict';
// The hot paths of issue 22 keep their semantics and their shape: which
// calls cross into Rust is counted here (by wrapping the binding's
// functions), never timed. benchmark/hotpath.js measures the cost.
const { test, describe } = require('node:test');
const assert = require('node:assert/strict');
const native = require('@dreamnet/reliability-core/native');
const cb = require('@dreamnet/reliability-core/circuit-breaker');
const ts = require('@dreamnet/reliability-core/traffic-shaping');
const wd = require('@dreamnet/reliability-core/watchdogs');

cb.configureCircuitBreakers({ logger: null });
// Quiet: the runner reads this process's stdout (Node 20's runner has failed to parse emoji split across chunks).
ts.configureTrafficShaping({ logger: null });
const { getCircuitBreakerRegistry, CircuitTimeoutError } = cb;
let seq = 0;
const uniq = (p) => `hot-${p}-${++seq}`;
const quick = (o = {}) => ({ retryOptions: { maxRetries: 0 }, ...o });

/** Counts calls of `native[name]` while `fn` runs. */
async function crossings(name, fn) {
  const orig = native[name];
  let n = 0;
  native[name] = function (...args) {
    n++;
    return orig.apply(this, args);
  };
  try {
    await fn();
  } finally {
    native[name] = orig;
  }
  return n;
}

describe('breaker with a timeout, closed', () => {
  test('plain successes cross into Rust not at all, and are still counted', async () => {
    const b = getCircuitBreakerRegistry().get(uniq('t'), quick({ timeout: 10_000 }));
    const n = await crossings('cbRecord', async () => {
      for (let i = 0; i < 200; i++) assert.equal(await b.execute(async () => i), i);
    });
    assert.equal(n, 0, 'no cbRecord per success (batched in the ring)');
    assert.equal(b.toJSON().totals.successes, 200);
    assert.equal(b.state, 'closed');
  });

  test('a call that hangs still ends in CircuitTimeoutError, and its late answer is ignored', async () => {
    const b = getCircuitBreakerRegistry().get(uniq('hang'), quick({ timeout: 20, failureThreshold: 5 }));
    let answer;
    const r = await b.execute(() => new Promise((res) => (answer = res))).catch((e) => e);
    assert.ok(r instanceof CircuitTimeoutError, String(r));
    answer(1);
    await new Promise((res) => setImmediate(res));
    const t = b.toJSON().totals;
    assert.equal(t.timeouts, 1);
    assert.equal(t.successes, 0, 'the late answer is not a success');
  });

  test('a function that throws synchronously, or returns a plain value, under a timeout', async () => {
    const b = getCircuitBreakerRegistry().get(uniq('sync'), quick({ timeout: 10_000, failureThreshold: 5 }));
    const boom = new Error('boom');
    await assert.rejects(
      b.execute(() => {
        throw boom;
      }),
      (e) => e === boom,
    );
    assert.equal(await b.execute(() => 7), 7);
    const t = b.toJSON().totals;
    assert.equal(t.failures, 1);
    assert.equal(t.successes, 1);
  });

  test('a slow success under a timeout still reaches Rust at once (it may open the breaker)', async () => {
    const b = getCircuitBreakerRegistry().get(uniq('slow'), quick({ timeout: 10_000, slowCallDurationMs: 5 }));
    const n = await crossings('cbRecord', () => b.execute(() => new Promise((res) => setTimeout(res, 15, 'late'))));
    assert.equal(n, 1);
    assert.equal(b.toJSON().totals.slow, 1);
  });

  test('many calls in flight at once each settle with their own value; a failing one fails alone', async () => {
    const b = getCircuitBreakerRegistry().get(uniq('many'), quick({ timeout: 10_000, failureThreshold: 100 }));
    const rs = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => b.execute(() => new Promise((res, rej) => setTimeout(() => (i === 7 ? rej(new Error('seven')) : res(i)), i % 5)))));
    rs.forEach((r, i) => (i === 7 ? assert.equal(r.reason.message, 'seven') : assert.equal(r.value, i)));
    assert.equal(b.toJSON().totals.failures, 1);
    assert.equal(b.toJSON().totals.successes, 49);
  });
});

describe('rollout decision for a new key', () => {
  test('RolloutTable#decideFn decides as RolloutTable#decide, for every kind of key, both hash modes and with lists', () => {
    const t = new native.RolloutTable();
    const long = 'n'.repeat(240); // names are at most 256 characters: the prefix fills most of the buffer
    const names = ['checkout-v2', long];
    const keys = ['', 'u', 'user-42', 'ünïcødé-🦀-ключ', 'k'.repeat(240), 'k'.repeat(300), `a${'é'.repeat(130)}`];
    for (const hash of ['murmur3', 'legacy']) {
      for (const name of names) {
        for (const extra of [{}, { allowList: ['u'], denyList: ['user-42'] }]) {
          const { id } = t.start(`${name}-${hash.slice(0, 3)}-${Object.keys(extra).length}`, { percentage: 50, hash, ...extra }, Date.now());
          const decide = t.decideFn(id);
          for (const k of keys) assert.equal(decide(k), t.decide(id, k), `${hash} ${name.length} ${JSON.stringify(k.slice(0, 20))} (${k.length})`);
          // The answer follows the bucket rule of the core: it agrees with RolloutTable#bucket where no list applies.
          if (!extra.allowList) for (const k of keys) assert.equal(decide(k), t.bucket(id, k) < 5000);
        }
      }
    }
    assert.equal(t.decideFn(9999)('x'), true, 'unknown rollout: routed, as shouldRoute answers');
    assert.doesNotThrow(() => t.decideFn(0)(), 'no argument does not throw');
  });

  test('shouldRoute on a key never seen makes no two-argument RolloutTable#decide crossing, and decides as before', () => {
    const s = ts.getTrafficShaping();
    const name = uniq('rollout');
    s.startRollout(name, { percentage: 37.5 });
    const keys = Array.from({ length: 500 }, (_, i) => `fresh-${i}-${seq}`);
    let routed = 0;
    const proto = native.RolloutTable.prototype;
    const orig = proto.decide;
    let n = 0;
    proto.decide = function (...a) { n++; return orig.apply(this, a); };
    try {
      for (const k of keys) if (s.shouldRoute(name, k)) routed++;
    } finally {
      proto.decide = orig;
    }
    assert.equal(n, 0);
    const id = s.ids.get(name);
    const expected = keys.filter((k) => s.h.bucket(id, k) < 3750).length;
    assert.equal(routed, expected);
  });
});

describe('watchdogs', () => {
  test('trackAiCall passes a function that takes no signal to the breaker as it is, and the breaker times it for the tracker', async () => {
    const fn = async () => 'ok';
    const name = uniq('ai');
    await wd.trackAiCall(name, fn);
    const b = getCircuitBreakerRegistry().get(name);
    const seen = [];
    const exec = b._executeObserved;
    b._executeObserved = function (f, obs) {
      seen.push(f);
      return exec.call(this, f, obs);
    };
    const calls = () => wd.getWatchdogsReport().aiCallLatency.totalCalls;
    const before = calls();
    try {
      assert.equal(await wd.trackAiCall(name, fn), 'ok');
      await assert.rejects(
        wd.trackAiCall(name, async () => {
          throw new Error('model down');
        }),
        /model down/,
      );
    } finally {
      delete b._executeObserved;
    }
    assert.equal(seen[0], fn, 'no wrapper per call');
    assert.equal(calls() - before, 2, 'the success and the failure are both timed');
    assert.equal(b.toJSON().totals.successes, 2);
    assert.equal(b.toJSON().totals.failures, 1);
    await assert.rejects(wd.trackAiCall(name, 'not a function'), TypeError);
  });

  test('protectPublish: pending counts go back to 0 per topic and agent, failures included', async () => {
    let release;
    const gate = new Promise((res) => (release = res));
    const publish = async (topic, payload) => {
      await gate;
      if (payload.fail) throw new Error('bus down');
      return true;
    };
    const p = wd.protectPublish(publish, { breaker: uniq('bus'), breakerOptions: quick({ failureThreshold: 100, timeout: 10_000 }) });
    const topic = uniq('topic');
    const inflight = [p(topic, { agentId: 'a1' }), p(topic, { agentId: 'a1', fail: true }), p(topic, { agentId: 'a2' })];
    const gauge = (n) => wd.getWatchdogs().report().find((v) => v.name === n);
    await new Promise((res) => setImmediate(res));
    assert.equal(gauge(`queue:topic:${topic}`)?.value, 3);
    assert.equal(gauge('queue:agent:a1')?.value, 2);
    release();
    const rs = await Promise.allSettled(inflight);
    assert.deepEqual(
      rs.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    for (const n of [`queue:topic:${topic}`, 'queue:agent:a1', 'queue:agent:a2']) assert.equal(gauge(n)?.value, 0, n);
  });
});
