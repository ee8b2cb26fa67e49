// Circuit breakers as a user sees them: through the package's own export
// (`@dreamnet/reliability-core/circuit-breaker`, resolved by self-reference).
const { test, describe } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const cb = require('@dreamnet/reliability-core/circuit-breaker');

const {
  getCircuitBreakerRegistry,
  withCircuitBreaker,
  configureCircuitBreakers,
  CircuitOpenError,
  CircuitTimeoutError,
} = cb;

configureCircuitBreakers({ logger: null });

let seq = 0;
const uniq = (p) => `${p}-${++seq}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const fail = (msg = 'boom') => async () => {
  throw new Error(msg);
};
const ok = (v = 1) => async () => v;
// No retries and fast timings, for state-machine tests.
const quick = (o = {}) => ({ retryOptions: { maxRetries: 0 }, ...o });

async function settle(p) {
  try {
    return { value: await p };
  } catch (error) {
    return { error };
  }
}

describe('parity with the original registry (spec §8)', () => {
  test('singleton registry; same instance per name; later options ignored', () => {
    const r = getCircuitBreakerRegistry();
    assert.equal(getCircuitBreakerRegistry(), r);
    const name = uniq('same');
    const a = r.get(name, { failureThreshold: 2 });
    const b = r.get(name, { failureThreshold: 9 });
    assert.equal(a, b);
    assert.equal(a.toJSON().options.failureThreshold, 2);
    assert.equal(r.getBreaker(name), a, 'docs alias getBreaker');
  });

  test('defaults: 5 / 60000 / 3 / retries 5, 100, 3000, jitter on', () => {
    const o = getCircuitBreakerRegistry().get(uniq('defaults')).toJSON().options;
    assert.equal(o.failureThreshold, 5);
    assert.equal(o.resetTimeout, 60000);
    assert.equal(o.halfOpenMaxAttempts, 3);
    assert.equal(o.maxRetries, 5);
    assert.equal(o.initialDelay, 100);
    assert.equal(o.maxDelay, 3000);
    assert.equal(o.jitter, 'proportional');
    assert.equal(o.halfOpenMaxCalls, 1);
  });

  test('getState shape, failureCount, lastFailureTime, opening after threshold, exact message', async () => {
    const name = uniq('open');
    const b = getCircuitBreakerRegistry().get(name, quick({ failureThreshold: 3 }));
    assert.deepEqual(b.getState(), { state: 'closed', failureCount: 0, lastFailureTime: null });
    const before = Date.now();
    for (let i = 0; i < 2; i++) await settle(b.execute(fail()));
    let s = b.getState();
    assert.deepEqual(Object.keys(s), ['state', 'failureCount', 'lastFailureTime']);
    assert.equal(s.state, 'closed');
    assert.equal(s.failureCount, 2);
    assert.ok(s.lastFailureTime >= before - 1 && s.lastFailureTime <= Date.now() + 1);
    await settle(b.execute(fail()));
    assert.equal(b.getState().state, 'open');
    let calls = 0;
    const r = await settle(b.execute(async () => ++calls));
    assert.equal(calls, 0, 'fn is not called while open');
    assert.equal(r.error.message, `Circuit breaker ${name} is OPEN (too many failures)`);
    assert.ok(r.error.message.includes('Circuit breaker'));
    assert.ok(r.error instanceof CircuitOpenError);
    assert.ok(r.error instanceof Error);
    assert.equal(r.error.code, 'ERR_CIRCUIT_OPEN');
    assert.equal(r.error.breaker, name);
    assert.ok(r.error.retryAfterMs > 50_000 && r.error.retryAfterMs <= 60_000);
    assert.match(r.error.stack, /CircuitOpenError: Circuit breaker/);
    // Refusals made from the mirror (no crossing) are still counted by Rust.
    for (let i = 0; i < 4; i++) await settle(b.execute(ok()));
    const snap = b.toJSON();
    assert.equal(snap.totals.rejects, 5);
    assert.equal(snap.window.rejects, 5);
    assert.equal(snap.window.calls, 3, 'refusals are not calls');
  });

  test('a success resets failureCount and lastFailureTime', async () => {
    const b = getCircuitBreakerRegistry().get(uniq('reset-count'), quick());
    await settle(b.execute(fail()));
    await settle(b.execute(fail()));
    assert.equal(await b.execute(ok(7)), 7);
    assert.deepEqual(b.getState(), { state: 'closed', failureCount: 0, lastFailureTime: null });
  });

  test('non-Error rejections become Error(String(value)); Errors keep identity', async () => {
    const b = getCircuitBreakerRegistry().get(uniq('wrap'), quick());
    const r = await settle(b.execute(async () => Promise.reject('plain string')));
    assert.ok(r.error instanceof Error);
    assert.equal(r.error.message, 'plain string');
    const e = new Error('mine');
    const r2 = await settle(b.execute(async () => { throw e; }));
    assert.equal(r2.error, e);
  });

  test('getAll in creation order; reset and resetAll zero everything', async () => {
    const r = getCircuitBreakerRegistry();
    const a = r.get(uniq('all-a'), quick({ failureThreshold: 1 }));
    const b = r.get(uniq('all-b'), quick());
    await settle(a.execute(fail()));
    await settle(b.execute(fail()));
    const all = r.getAll();
    const ia = all.findIndex((x) => x.name === a.name);
    const ib = all.findIndex((x) => x.name === b.name);
    assert.ok(ia >= 0 && ib > ia);
    assert.deepEqual(all[ia], { name: a.name, state: 'open', failureCount: 1 });
    assert.deepEqual(Object.keys(all[ib]), ['name', 'state', 'failureCount']);
    r.resetAll();
    assert.deepEqual(a.getState(), { state: 'closed', failureCount: 0, lastFailureTime: null });
    assert.deepEqual(b.getState(), { state: 'closed', failureCount: 0, lastFailureTime: null });
    assert.equal(a.toJSON().totals.failures, 0);
  });

  test('withCircuitBreaker is registry.get(name, opts).execute(fn)', async () => {
    const name = uniq('with');
    assert.equal(await withCircuitBreaker(name, ok(3), quick({ failureThreshold: 1 })), 3);
    await settle(withCircuitBreaker(name, fail()));
    assert.equal(getCircuitBreakerRegistry().get(name).getState().state, 'open');
    assert.equal(getCircuitBreakerRegistry().get(name).fire.name, 'fire', 'docs alias fire');
  });

  test('spec §9 breaker sequence, with the half-open leak fixed', async () => {
    const b = getCircuitBreakerRegistry().get(uniq('seq'), {
      failureThreshold: 2,
      resetTimeout: 50,
      retryOptions: { maxRetries: 1, initialDelay: 1 },
    });
    let calls = 0;
    const f = async () => {
      calls++;
      throw new Error('x');
    };
    await settle(b.execute(f));
    await settle(b.execute(f));
    assert.equal(calls, 4, 'two executes, two attempts each');
    assert.equal(b.getState().state, 'open');
    calls = 0;
    await settle(b.execute(f));
    assert.equal(calls, 0);
    await sleep(60);
    await b.execute(ok());
    assert.equal(b.getState().state, 'half-open');
    // Three failed trials re-open it (each trial retries once inside the same call).
    for (let i = 0; i < 3; i++) await settle(b.execute(f));
    assert.equal(b.getState().state, 'open');
    await sleep(60);
    await b.execute(ok());
    assert.equal(b.getState().state, 'half-open', 'original closed here (leaked success); fixed: needs two fresh successes');
    await b.execute(ok());
    assert.equal(b.getState().state, 'closed');
  });
});

describe('retries and backoff', () => {
  test('maxRetries: 0 means exactly one attempt (original gave 6)', async () => {
    let calls = 0;
    const b = getCircuitBreakerRegistry().get(uniq('r0'), { retryOptions: { maxRetries: 0 } });
    await settle(b.execute(async () => { calls++; throw new Error('x'); }));
    assert.equal(calls, 1);
  });

  test('at most maxRetries+1 calls; success on a retry resolves and stops; one execute counts once', async () => {
    let calls = 0;
    const b = getCircuitBreakerRegistry().get(uniq('r3'), { retryOptions: { maxRetries: 3, initialDelay: 1, jitter: false } });
    const v = await b.execute(async () => {
      if (++calls < 3) throw new Error('flaky');
      return 'done';
    });
    assert.equal(v, 'done');
    assert.equal(calls, 3);
    calls = 0;
    await settle(b.execute(async () => { calls++; throw new Error('x'); }));
    assert.equal(calls, 4);
    assert.equal(b.getState().failureCount, 1, 'one failed execute = one failure');
  });

  test('delays without jitter follow min(initial*2^a, max); retry events carry them', async () => {
    const b = getCircuitBreakerRegistry().get(uniq('delays'), { retryOptions: { maxRetries: 5, initialDelay: 1, maxDelay: 6, jitter: false } });
    const delays = [];
    b.on('retry', (e) => delays.push(e.delay));
    await settle(b.execute(fail()));
    assert.deepEqual(delays, [1, 2, 4, 6, 6]);
  });

  test('proportional jitter stays in [base, 1.1 base) with an injected random source', async () => {
    for (const u of [0, 0.5, 0.999999]) {
      const b = getCircuitBreakerRegistry().get(uniq('jit'), { retryOptions: { maxRetries: 3, initialDelay: 2, jitter: true, random: () => u } });
      const delays = [];
      b.on('retry', (e) => delays.push(e.delay));
      await settle(b.execute(fail()));
      delays.forEach((d, a) => {
        const base = 2 * 2 ** a;
        assert.ok(d >= base && d < base * 1.1, `${d} in [${base}, ${base * 1.1})`);
        assert.ok(Math.abs(d - (base + u * base * 0.1)) < 1e-9);
      });
    }
  });

  test('full, equal and decorrelated jitter bounds; a seed makes delays reproducible', async () => {
    const run = async (jitter, seed) => {
      const b = getCircuitBreakerRegistry().get(uniq(`j-${jitter}`), { retryOptions: { maxRetries: 4, initialDelay: 1, maxDelay: 5, jitter, seed } });
      const delays = [];
      b.on('retry', (e) => delays.push(e.delay));
      await settle(b.execute(fail()));
      return delays;
    };
    const full = await run('full', 42);
    assert.deepEqual(full, await run('full', 42));
    full.forEach((d, a) => assert.ok(d >= 0 && d < Math.min(2 ** a, 5)));
    const equal = await run('equal', 7);
    equal.forEach((d, a) => {
      const base = Math.min(2 ** a, 5);
      assert.ok(d >= base / 2 && d < base);
    });
    const dec = await run('decorrelated', 9);
    let prev = 1;
    for (const d of dec) {
      assert.ok(d >= 1 && d <= 5 && d <= prev * 3 + 1e-9);
      prev = d;
    }
    assert.notDeepEqual(await run('full', 1), await run('full', 2));
  });

  test('retries re-check the breaker: opened by others meanwhile, the retry is not made', async () => {
    const b = getCircuitBreakerRegistry().get(uniq('recheck'), { failureThreshold: 1, retryOptions: { maxRetries: 3, initialDelay: 30, jitter: false } });
    let calls = 0;
    const pending = settle(b.execute(async () => { calls++; throw new Error('slow fail'); }));
    await sleep(5);
    b.open();
    const r = await pending;
    assert.equal(calls, 1);
    assert.ok(r.error instanceof CircuitOpenError);
    assert.equal(r.error.cause.message, 'slow fail');
  });

  test('isFailure=false errors pass through, are not retried and do not count', async () => {
    let calls = 0;
    const b = getCircuitBreakerRegistry().get(uniq('4xx'), { failureThreshold: 1, isFailure: (e) => !(e.status >= 400 && e.status < 500) });
    const e404 = Object.assign(new Error('not found'), { status: 404 });
    const r = await settle(b.execute(async () => { calls++; throw e404; }));
    assert.equal(r.error, e404);
    assert.equal(calls, 1);
    assert.equal(b.getState().state, 'closed');
    assert.equal(b.getState().failureCount, 0);
  });
});

describe('timeouts, fallback, events', () => {
  test('timeout rejects with CircuitTimeoutError and aborts the signal; counts as a failure', async () => {
    const keepAlive = setTimeout(() => {}, 5000); // the deadline timer is unref'd
    const b = getCircuitBreakerRegistry().get(uniq('timeout'), quick({ timeout: 30, failureThreshold: 1 }));
    let aborted = null;
    const events = [];
    b.on('timeout', () => events.push('timeout'));
    b.on('open', () => events.push('open'));
    const t0 = Date.now();
    const r = await settle(b.execute((signal) => new Promise((resolve) => {
      signal.addEventListener('abort', () => { aborted = signal.reason; });
      setTimeout(resolve, 2000).unref();
    })));
    clearTimeout(keepAlive);
    assert.ok(r.error instanceof CircuitTimeoutError);
    assert.equal(r.error.code, 'ERR_CIRCUIT_TIMEOUT');
    assert.match(r.error.message, /timed out after 30 ms/);
    assert.equal(aborted, r.error, 'the AbortSignal carries the timeout error');
    assert.ok(Date.now() - t0 < 1000);
    assert.deepEqual(events, ['timeout', 'open']);
    assert.equal(b.toJSON().totals.timeouts, 1);
  });

  test('a call that finishes before its timeout is unaffected', async () => {
    const b = getCircuitBreakerRegistry().get(uniq('in-time'), quick({ timeout: 500 }));
    let signalSeen;
    assert.equal(await b.execute(async (s) => { signalSeen = s; return 5; }), 5);
    assert.ok(signalSeen instanceof AbortSignal);
    assert.equal(signalSeen.aborted, false);
  });

  test("version B's requestTimeout is honoured (0 turns it off); a conflicting timeout is a RangeError", async () => {
    const b = getCircuitBreakerRegistry().get(uniq('b-timeout'), quick({ requestTimeout: 30, failureThreshold: 5 }));
    assert.equal(b.toJSON().options.timeout, 30);
    const r = await b.execute(() => new Promise(() => {})).then(() => null, (e) => e);
    assert.ok(r instanceof CircuitTimeoutError, `rejected with ${r?.name}`);
    const off = getCircuitBreakerRegistry().get(uniq('b-off'), quick({ requestTimeout: 0 }));
    assert.equal(off.toJSON().options.timeout ?? null, null);
    assert.throws(() => getCircuitBreakerRegistry().get(uniq('b-both'), quick({ timeout: 100, requestTimeout: 200 })), { name: 'RangeError', message: /^requestTimeout must be absent or equal to timeout \(100\)/ });
  });

  test('fallback answers rejections and failures', async () => {
    const seen = [];
    const b = getCircuitBreakerRegistry().get(uniq('fb'), quick({ failureThreshold: 1, fallback: (e) => { seen.push(e.name); return 'cached'; } }));
    assert.equal(await b.execute(fail()), 'cached');
    assert.equal(await b.execute(ok()), 'cached');
    assert.deepEqual(seen, ['Error', 'CircuitOpenError']);
  });

  test('events follow the transitions Rust returns', async () => {
    const b = getCircuitBreakerRegistry().get(uniq('events'), quick({ failureThreshold: 2, resetTimeout: 20, halfOpenSuccessThreshold: 1 }));
    const ev = [];
    for (const e of ['open', 'close', 'halfOpen', 'success', 'failure', 'reject']) b.on(e, () => ev.push(e));
    await b.execute(ok());
    await settle(b.execute(fail()));
    await settle(b.execute(fail()));
    await settle(b.execute(ok()));
    await sleep(30);
    await b.execute(ok());
    assert.deepEqual(ev, ['success', 'failure', 'failure', 'open', 'reject', 'halfOpen', 'success', 'close']);
  });

  test("the original's log lines, through the configured logger", async () => {
    const lines = [];
    const capture = { log: (m) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(m) };
    configureCircuitBreakers({ logger: capture });
    try {
      const name = uniq('logs');
      const b = getCircuitBreakerRegistry().get(name, { failureThreshold: 1, resetTimeout: 5, halfOpenMaxAttempts: 1, retryOptions: { maxRetries: 1, initialDelay: 1, jitter: false } });
      await settle(b.execute(fail()));
      await sleep(10);
      await settle(b.execute(fail()));
      b.reset();
      let isolated = 0;
      b.on('isolate', () => isolated++);
      b.isolate();
      b.isolate();
      assert.equal(isolated, 2);
      assert.deepEqual(lines, [
        `⚠️  [CircuitBreaker:${name}] Attempt 1/2 failed, retrying in 1ms:`,
        `❌ [CircuitBreaker:${name}] Circuit OPENED (failure threshold reached)`,
        `🔄 [CircuitBreaker:${name}] Transitioning to half-open state`,
        // The trial keeps its slot for its own retry.
        `⚠️  [CircuitBreaker:${name}] Attempt 1/2 failed, retrying in 1ms:`,
        `❌ [CircuitBreaker:${name}] Circuit OPENED (half-open failures)`,
        `🔄 [CircuitBreaker:${name}] Circuit RESET`,
        `❌ [CircuitBreaker:${name}] Circuit OPENED (isolated)`,
      ]);
    } finally {
      configureCircuitBreakers({ logger: null });
    }
  });

  test('a throwing listener does not break the call (its error surfaces as uncaught, later)', () => {
    const script = `
      const { getCircuitBreakerRegistry, configureCircuitBreakers } = require('@dreamnet/reliability-core/circuit-breaker');
      configureCircuitBreakers({ logger: null });
      const seen = [];
      process.on('uncaughtException', (e) => seen.push(e.message));
      const b = getCircuitBreakerRegistry().get('x', { failureThreshold: 1, retryOptions: { maxRetries: 0 } });
      b.on('failure', () => { throw new Error('listener bug'); });
      b.execute(async () => { throw new Error('real'); }).catch((e) => {
        setTimeout(() => process.stdout.write(JSON.stringify({ rejected: e.message, state: b.getState().state, seen })), 10);
      });
    `;
    const res = spawnSync(process.execPath, ['-e', script], { cwd: path.join(__dirname, '..'), timeout: 20_000, encoding: 'utf8' });
    assert.equal(res.status, 0, res.stderr);
    assert.deepEqual(JSON.parse(res.stdout), { rejected: 'real', state: 'open', seen: ['listener bug'] });
  });
});

describe('half-open', () => {
  test('100 concurrent calls: exactly halfOpenMaxCalls run, the rest are rejected', async () => {
    for (const maxCalls of [1, 3]) {
      const b = getCircuitBreakerRegistry().get(uniq('stampede'), quick({ failureThreshold: 1, resetTimeout: 10, halfOpenMaxCalls: maxCalls }));
      await settle(b.execute(fail()));
      await sleep(15);
      let running = 0;
      let started = 0;
      let release;
      const gate = new Promise((r) => (release = r));
      const all = Array.from({ length: 100 }, () => settle(b.execute(async () => {
        started++;
        running++;
        await gate;
        running--;
        return 'trial';
      })));
      await sleep(5);
      assert.equal(started, maxCalls);
      assert.equal(running, maxCalls);
      release();
      const results = await Promise.all(all);
      assert.equal(results.filter((r) => r.value === 'trial').length, maxCalls);
      const rejected = results.filter((r) => r.error);
      assert.equal(rejected.length, 100 - maxCalls);
      assert.ok(rejected.every((r) => r.error instanceof CircuitOpenError && r.error.state === 'half-open'));
    }
  });

  test('manual open / isolate / close', async () => {
    const b = getCircuitBreakerRegistry().get(uniq('manual'), quick({ resetTimeout: 10 }));
    b.isolate();
    await sleep(20);
    const r = await settle(b.execute(ok()));
    assert.match(r.error.message, /is OPEN \(isolated\)/);
    assert.equal(r.error.isolated, true);
    assert.equal(b.toJSON().isolated, true);
    b.close();
    assert.equal(await b.execute(ok(2)), 2);
    b.open();
    assert.equal(b.state, 'open');
    await sleep(15);
    assert.equal(await b.execute(ok(3)), 3);
  });
});

describe('rate-based opening and slow calls', () => {
  test('errorThresholdPercentage over the rolling window with a volume threshold', async () => {
    const b = getCircuitBreakerRegistry().get(uniq('rate'), quick({ errorThresholdPercentage: 50, volumeThreshold: 10, failureThreshold: 1 }));
    for (let i = 0; i < 4; i++) await settle(b.execute(fail()));
    assert.equal(b.getState().state, 'closed', 'below volume, failures in a row do not open it');
    for (let i = 0; i < 5; i++) await b.execute(ok());
    await settle(b.execute(fail()));
    assert.equal(b.getState().state, 'open', '5 of 10 = 50 %');
    const w = b.toJSON().window;
    assert.equal(w.calls, 10);
    assert.equal(w.failures, 5);
    assert.equal(w.failureRate, 50);
  });

  test('batched successes are all counted (more than the ring holds)', async () => {
    const b = getCircuitBreakerRegistry().get(uniq('ring'));
    for (let i = 0; i < 1500; i++) await b.execute(ok());
    const s = b.toJSON();
    assert.equal(s.totals.successes, 1500);
    assert.equal(s.window.successes, 1500);
  });

  test('slow calls open the breaker by rate', async () => {
    const b = getCircuitBreakerRegistry().get(uniq('slow'), quick({ slowCallDurationMs: 15, slowCallRateThreshold: 50, volumeThreshold: 2 }));
    await b.execute(ok());
    await b.execute(async () => { await sleep(25); return 1; });
    assert.equal(b.getState().state, 'open');
    assert.equal(b.toJSON().totals.slow, 1);
  });
});

describe('bad input', () => {
  const r = () => getCircuitBreakerRegistry();
  const cases = [
    [{ failureThreshold: -1 }, RangeError, /^failureThreshold must be an integer from 1/],
    [{ failureThreshold: 0 }, RangeError, /^failureThreshold/],
    [{ failureThreshold: 2.5 }, RangeError, /^failureThreshold/],
    [{ failureThreshold: NaN }, RangeError, /^failureThreshold.*NaN/],
    [{ failureThreshold: '5' }, TypeError, /^failureThreshold must be .*got a string/],
    [{ resetTimeout: -5 }, RangeError, /^resetTimeout/],
    [{ resetTimeout: Infinity }, RangeError, /^resetTimeout/],
    [{ errorThresholdPercentage: 101 }, RangeError, /^errorThresholdPercentage must be a percentage/],
    [{ errorThresholdPercentage: -1 }, RangeError, /^errorThresholdPercentage/],
    [{ halfOpenMaxCalls: 0 }, RangeError, /^halfOpenMaxCalls/],
    [{ timeout: 0 }, RangeError, /^timeout/],
    [{ timeout: 'soon' }, TypeError, /^timeout/],
    [{ retryOptions: { maxRetries: -1 } }, RangeError, /^retryOptions\.maxRetries/],
    [{ retryOptions: { maxRetries: 1.5 } }, RangeError, /^retryOptions\.maxRetries/],
    [{ retryOptions: { initialDelay: 10, maxDelay: 5 } }, RangeError, /^retryOptions\.maxDelay/],
    [{ retryOptions: { jitter: 'sometimes' } }, RangeError, /^retryOptions\.jitter/],
    [{ retryOptions: 5 }, TypeError, /^retryOptions must be an object/],
    [{ fallback: 'x' }, TypeError, /^fallback must be a function/],
    [{ isFailure: 1 }, TypeError, /^isFailure must be a function/],
    ['fast', TypeError, /^options must be an object/],
  ];
  for (const [opts, Cls, re] of cases) {
    test(`${JSON.stringify(opts)} → ${Cls.name}`, () => {
      const name = uniq('bad');
      assert.throws(() => r().get(name, opts), (e) => e instanceof Cls && re.test(e.message));
      assert.equal(r().has(name), false, 'nothing is left behind');
    });
  }

  test('names: empty, oversize or not a string', () => {
    assert.throws(() => r().get('', {}), RangeError);
    assert.throws(() => r().get('x'.repeat(257), {}), /^RangeError: name must be a non-empty string of at most 256 characters/);
    assert.throws(() => r().get('a\u202eb', {}), RangeError);
    assert.throws(() => r().get(42, {}), TypeError);
  });

  test('non-function fn rejects with a TypeError; the breaker keeps working', async () => {
    const b = r().get(uniq('fn'));
    const res = await settle(b.execute(null));
    assert.ok(res.error instanceof TypeError);
    assert.match(res.error.message, /^fn must be a function/);
    assert.equal(await b.execute(ok(1)), 1);
  });
});

describe('process-level behaviour', () => {
  test('a second copy of the wrapper in the same thread works and shares breakers by name', () => {
    const file = require.resolve('@dreamnet/reliability-core/circuit-breaker');
    const saved = require.cache[file];
    delete require.cache[file];
    const copy = require(file);
    require.cache[file] = saved;
    assert.notEqual(copy.getCircuitBreakerRegistry, getCircuitBreakerRegistry);
    copy.configureCircuitBreakers({ logger: null });
    const name = uniq('shared');
    const mine = getCircuitBreakerRegistry().get(name, quick({ failureThreshold: 1 }));
    const theirs = copy.getCircuitBreakerRegistry().get(name);
    mine.isolate();
    assert.equal(theirs.getState().state, 'open');
    assert.equal(theirs.state, 'open', 'mirror pages of both copies are written');
    mine.close();
    assert.equal(theirs.state, 'closed');
  });

  test('10,000 breakers: no timers, no open handles, the process exits by itself', () => {
    const script = `
      const { getCircuitBreakerRegistry, configureCircuitBreakers } = require('@dreamnet/reliability-core/circuit-breaker');
      configureCircuitBreakers({ logger: null });
      (async () => {
        const r = getCircuitBreakerRegistry();
        for (let i = 0; i < 10000; i++) {
          const b = r.get('b' + i, { failureThreshold: 1, resetTimeout: 60000, retryOptions: { maxRetries: 0 } });
          await b.execute(async () => i);
          if (i % 2) { try { await b.execute(async () => { throw new Error('x'); }); } catch {} }
        }
        const timers = process.getActiveResourcesInfo().filter((x) => x === 'Timeout').length;
        const open = r.getAll().filter((b) => b.state === 'open').length;
        process.stdout.write(JSON.stringify({ timers, open, count: r.getAll().length }));
      })();
    `;
    const t0 = Date.now();
    const res = spawnSync(process.execPath, ['-e', script], { cwd: path.join(__dirname, '..'), timeout: 60_000, encoding: 'utf8' });
    assert.equal(res.status, 0, res.stderr);
    const out = JSON.parse(res.stdout);
    assert.deepEqual(out, { timers: 0, open: 5000, count: 10000 });
    assert.ok(Date.now() - t0 < 60_000);
  });
});

test('per-call timeouts: a hung call ends in CircuitTimeoutError even with nothing else alive; an idle process exits at once', { timeout: 20_000 }, async () => {
  const { execFile } = require('node:child_process');
  const run = (code) => new Promise((resolve) => execFile(process.execPath, ['-e', code], { timeout: 10_000 }, (error, stdout) => resolve({ code: error ? error.code : 0, stdout })));
  const dist = JSON.stringify(require.resolve('../dist/circuit-breaker.js'));
  const hung = await run(`const cb=require(${dist});cb.configureCircuitBreakers({logger:null});cb.withCircuitBreaker('hung',()=>new Promise(()=>{}),{timeout:150,retryOptions:{maxRetries:0}}).then(()=>console.log('resolved'),(e)=>console.log('rejected '+e.name));`);
  assert.equal(hung.stdout.trim(), 'rejected CircuitTimeoutError', 'the timer held the process until the deadline');
  const t0 = Date.now();
  const quick = await run(`const cb=require(${dist});cb.configureCircuitBreakers({logger:null});cb.withCircuitBreaker('quick',async()=>1,{timeout:30000}).then((v)=>console.log('done '+v));`);
  assert.equal(quick.stdout.trim(), 'done 1');
  assert.ok(Date.now() - t0 < 5000, 'no 30 s timer left behind');
});

describe('retry() and wrap(): retry as a policy composed with the breaker', () => {
  const { retry, wrap, CircuitBreaker } = require('../dist/index.js');
  const native = require('../index.js');

  test('wrap runs the first policy around the second around the call', async () => {
    const order = [];
    const tag = (name) => ({
      execute: async (fn, signal) => {
        order.push(`${name}>`);
        try {
          return await fn(signal);
        } finally {
          order.push(`<${name}`);
        }
      },
    });
    assert.equal(await wrap(tag('a'), tag('b'), tag('c')).execute(async () => (order.push('fn'), 7)), 7);
    assert.deepEqual(order, ['a>', 'b>', 'c>', 'fn', '<c', '<b', '<a']);
    assert.throws(() => wrap({}), { name: 'TypeError', message: /policies\[0\]/ });
  });

  test('wrap(retry, breaker): each attempt is a call the breaker counts', async () => {
    const b = new CircuitBreaker(uniq('wrap-count'), quick({ failureThreshold: 10 }));
    let n = 0;
    const v = await wrap(retry({ maxRetries: 3, baseDelay: 0, maxDelay: 0 }), b).execute(async () => {
      if (++n < 3) throw new Error('flaky');
      return 'ok';
    });
    assert.equal(v, 'ok');
    assert.equal(n, 3);
    const t = b.toJSON().totals;
    assert.equal(t.failures, 2, 'two failed attempts, two failures');
    assert.equal(t.successes, 1);
  });

  test('wrap(retry, breaker) does not retry CircuitOpenError: the retries stop when the breaker opens', async () => {
    const b = new CircuitBreaker(uniq('wrap-open'), quick({ failureThreshold: 2, resetTimeout: 60_000 }));
    let n = 0;
    const retries = [];
    const p = wrap(retry({ maxRetries: 5, baseDelay: 0, maxDelay: 0, onRetry: (i) => retries.push(i.attempt) }), b);
    await assert.rejects(p.execute(async () => {
      n++;
      throw new Error('down');
    }), CircuitOpenError);
    assert.equal(n, 2, 'two attempts opened the breaker; the third was refused, not run');
    assert.deepEqual(retries, [1, 2]);
    assert.equal(b.getState().state, 'open');
    // retryOn cannot make a refusal retryable.
    await assert.rejects(wrap(retry({ maxRetries: 3, baseDelay: 0, maxDelay: 0, retryOn: () => true }), b).execute(ok()), CircuitOpenError);
  });

  test('the backoff delays are the binding\'s backoffDelay', async () => {
    const us = [0.25, 0.5, 0.75];
    let k = 0;
    const delays = [];
    const opts = { maxRetries: 3, baseDelay: 1, maxDelay: 3, factor: 2, jitter: 'full' };
    const p = retry({ ...opts, random: () => us[k++], onRetry: (i) => delays.push(i.delay) });
    await assert.rejects(p.execute(fail('x')), { message: 'x' });
    let prev = 0;
    const want = us.map((u, a) => (prev = native.backoffDelay(a, 1, 3, 2, 'full', prev, u)));
    assert.deepEqual(delays, want);
    assert.deepEqual(want, [0.25, 1, 2.25]);
    assert.throws(() => retry({ jitter: 'sometimes' }), RangeError);
    assert.throws(() => retry({ maxRetries: -1 }), { name: 'RangeError', message: /maxRetries/ });
    assert.throws(() => retry({ retryOn: 5 }), { name: 'TypeError', message: /retryOn/ });
  });

  test('wrap(breaker, retry): the attempts run inside one breaker call, counted once', async () => {
    const b = new CircuitBreaker(uniq('wrap-inside'), quick({ failureThreshold: 10 }));
    let n = 0;
    await assert.rejects(wrap(b, retry({ maxRetries: 2, baseDelay: 0, maxDelay: 0 })).execute(fail('x')).finally(() => (n = b.toJSON().totals.failures)), { message: 'x' });
    assert.equal(n, 1, 'three attempts, one failure');
  });

  test('retryOn: an error it refuses is thrown at once', async () => {
    let n = 0;
    const p = retry({ maxRetries: 4, baseDelay: 0, maxDelay: 0, retryOn: (e) => e.message !== 'fatal' });
    await assert.rejects(p.execute(async () => {
      n++;
      throw new Error('fatal');
    }), { message: 'fatal' });
    assert.equal(n, 1);
  });
});
