// A breaker's `retryOptions` run through ./retry's RetryPolicy, the package's
// one retry loop (lib/circuit-breaker.ts, "retries"). The breaker's contract
// is kept: one execute = one outcome, the breaker re-checked before each
// retry (circuit-breaker.test.js), every failure retried (a nested breaker's
// refusal too, unlike a bare retry()), and the events carry the user's errors.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { getCircuitBreakerRegistry, configureCircuitBreakers, CircuitOpenError } = require('@dreamnet/reliability-core/circuit-breaker');

configureCircuitBreakers({ logger: null });
let seq = 0;
const uniq = (p) => `retries-${p}-${++seq}`;

test("a nested breaker's refusal thrown by fn is retried like any failure, and counted once", async () => {
  const inner = getCircuitBreakerRegistry().get(uniq('inner'));
  inner.isolate();
  const outer = getCircuitBreakerRegistry().get(uniq('outer'), { retryOptions: { maxRetries: 2, initialDelay: 0 } });
  let calls = 0;
  const err = await outer.execute(() => { calls++; return inner.execute(async () => 1); }).catch((e) => e);
  assert.ok(err instanceof CircuitOpenError);
  assert.equal(err.breaker, inner.name);
  assert.equal(calls, 3);
  assert.equal(outer.toJSON().totals.failures, 1);
});

test('retry events and the final rejection carry the errors fn threw', async () => {
  const b = getCircuitBreakerRegistry().get(uniq('events'), { retryOptions: { maxRetries: 2, initialDelay: 0, jitter: false } });
  const thrown = [];
  const seen = [];
  b.on('retry', (r) => seen.push(r));
  const err = await b.execute(async () => { const e = new Error(`try ${thrown.length}`); thrown.push(e); throw e; }).catch((e) => e);
  assert.equal(err, thrown[2]);
  assert.deepEqual(seen.map((r) => r.attempt), [1, 2]);
  assert.deepEqual(seen.map((r) => r.error), thrown.slice(0, 2));
});

test('circuit-breaker.ts has no retry loop of its own (one rule: ./retry)', () => {
  const src = fs.readFileSync(path.join(__dirname, '..', 'lib', 'circuit-breaker.ts'), 'utf8');
  assert.match(src, /extends RetryPolicy/);
  assert.doesNotMatch(src, /for \(let attempt/);
  assert.doesNotMatch(src, /function sleep\(/);
});
