'use strict';
/**
 * Issue 19: no panic crosses into Node, including re-entrancy. Every export of
 * the binding (index.js) and every public function of the package that takes
 * an object gets that object three ways: with getters, as a Proxy whose traps
 * run, and with getters that throw; each getter/trap first calls back into
 * the same module (the same function, and a reader of the same table). A
 * binding that still held its RefCell borrow while reading the object would
 * panic across the FFI and abort the process; so each case runs in a child
 * process, where an abort is a signal exit the parent reports, not a dead
 * test runner.
 *
 * Per case and way: the outer call returns a correct result (or, with a
 * throwing getter, throws a catchable Error), the calls made from inside
 * the getters succeed too (the binding reads user objects before borrowing,
 * so it never even needs ERR_REENTRANT), and the module works afterwards.
 *
 * The test enumerates the exports: a new export is either given a case here
 * or put on the explicit list of exports that take no object (for the
 * binding, checked against index.d.ts: only numbers, strings, booleans and
 * typed arrays, which run no user code when read).
 */
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const ROOT = path.join(__dirname, '..');

// ---- hostile objects ----------------------------------------------------------

/**
 * `valid` dressed up as `way`: 'getter' (own accessor properties),
 * 'proxy' (get/has/ownKeys/getOwnPropertyDescriptor traps) or 'throw'
 * (accessors that throw). Every read first calls `reenter()`. Nested plain
 * objects and arrays are dressed the same way; functions are left as they are.
 */
function hostile(way, valid, reenter) {
  if (valid === null || typeof valid !== 'object') return valid;
  const dress = (v) => hostile(way, v, reenter);
  // V8's napi does not see a Proxy of an array as an array (napi_is_array is false), so
  // the binding refuses one with a TypeError; arrays get accessors on their elements instead.
  if (way === 'proxy' && Array.isArray(valid)) return hostile('getter', valid, reenter);
  if (way === 'proxy') {
    const target = Object.fromEntries(Object.entries(valid).map(([k, v]) => [k, dress(v)]));
    return new Proxy(target, {
      get(t, k, r) { reenter(); return Reflect.get(t, k, r); },
      has(t, k) { reenter(); return Reflect.has(t, k); },
      ownKeys(t) { reenter(); return Reflect.ownKeys(t); },
      getOwnPropertyDescriptor(t, k) { reenter(); return Reflect.getOwnPropertyDescriptor(t, k); },
    });
  }
  const out = Array.isArray(valid) ? new Array(valid.length) : {};
  for (const [k, v] of Object.entries(valid)) {
    const inner = dress(v);
    Object.defineProperty(out, k, {
      enumerable: true,
      configurable: true,
      get() {
        reenter();
        if (way === 'throw') throw new Error(`user getter ${k} threw`);
        return inner;
      },
    });
  }
  return out;
}

const WAYS = ['getter', 'proxy', 'throw'];

// ---- binding cases ----------------------------------------------------------------
// Each: setup(n) -> ctx; call(n, ctx, dress) -> result, where dress(valid) is the hostile
// version of `valid`; reenter(n, ctx, k) calls back into the same table; check(n, ctx, result)
// asserts the result is right; after(n, ctx) asserts the table still works.

const assert = require('node:assert/strict');

function cbSetup(n) {
  const l = n.BreakerTable.layout();
  const t = new n.BreakerTable(new Float64Array(l.ioLen), new Float64Array(l.ringCap * 8 + 64), 0, 1);
  return { t, pages: [] };
}
function cbPages(n, ctx) {
  const l = n.BreakerTable.layout();
  const count = ctx.t.snapshotAll(0).length;
  while (ctx.pages.length * l.page <= count) {
    const p = new Float64Array(l.page * l.stride);
    ctx.pages.push(p);
    ctx.t.attachPage(p);
  }
}
const cbAfter = (n, ctx) => {
  const id = ctx.t.create(`after-${Math.random()}`, { failureThreshold: 3 }, 0);
  assert.equal(ctx.t.snapshot(id, 0).options.failureThreshold, 3);
};

function sgSetup(n) {
  return { m: new n.MetricsBinding(new Float64Array(n.metricsRingCap() * 4 + 64), 0) };
}

const NATIVE_CASES = {
  retrySpec: {
    call: (n, c, dress) => n.retrySpec(dress({ maxRetries: 2, baseDelay: 5, jitter: 'equal' })),
    reenter: (n) => { n.retrySpec({ maxRetries: 1 }); n.backoffDelay(0, 1, 2, 2, 'none', 0, 0); },
    check: (n, c, r) => assert.deepEqual({ ...r }, { maxRetries: 2, baseDelay: 5, maxDelay: 3000, factor: 2, jitter: 'equal' }),
    after: (n) => assert.throws(() => n.retrySpec({ maxRetries: n.RETRY_MAX_RETRIES + 1 }), RangeError),
  },
  dlqDrainSpec: {
    call: (n, c, dress) => n.dlqDrainSpec(dress({ limit: 7, batchSize: 3 })),
    reenter: (n) => { n.dlqDrainSpec({ limit: 1 }); },
    check: (n, c, r) => assert.deepEqual({ ...r }, { limit: 7, batchSize: 3 }),
    after: (n) => assert.throws(() => n.dlqDrainSpec({ batchSize: 0 }), RangeError),
  },
  'BreakerTable#configure': {
    setup: cbSetup,
    call: (n, c, dress) => c.t.configure(dress({ maxBreakers: 20_000 })),
    reenter: (n, c) => { c.t.configure({ maxBreakers: 30_000 }); c.t.snapshotAll(0); },
    check: (n, c, r) => assert.equal(r, 20_000),
    after: cbAfter,
  },
  'BreakerTable#create': {
    setup: cbSetup,
    call: (n, c, dress) => c.t.create(`outer-${++c.k}`, dress({ failureThreshold: 5, retryOptions: { maxRetries: 2, jitter: 'full' }, exactLatency: true }), 0),
    reenter: (n, c) => { c.t.create(`inner-${++c.k}`, { failureThreshold: 2 }, 0); c.t.snapshotAll(0); },
    check: (n, c, id) => {
      const o = c.t.snapshot(id, 0).options;
      assert.equal(o.exactLatency, true);
      assert.equal(o.failureThreshold, 5);
      assert.equal(o.maxRetries, 2);
      assert.equal(o.jitter, 'full');
    },
    after: cbAfter,
    init: (c) => { c.k = 0; },
  },
  'StartupDag#register': {
    setup: (n) => ({ d: new n.StartupDag(), k: 0 }),
    call: (n, c, dress) => c.d.register(dress({ id: `outer-${++c.k}`, dependencies: ['db'], critical: true, timeout: 1000 })),
    reenter: (n, c) => { c.d.register({ id: `inner-${++c.k}` }); c.d.plan(); },
    check: (n, c, i) => {
      assert.equal(typeof i, 'number');
      assert.ok(JSON.stringify(c.d.plan()).includes(`"outer-${c.k0}"`), 'the outer node is registered');
    },
    after: (n, c) => { c.d.register({ id: 'db' }); assert.ok(JSON.stringify(c.d.plan()).includes('"db"')); },
  },
  'HealthGates#register': {
    setup: (n) => ({ g: new n.HealthGates(), k: 0 }),
    call: (n, c, dress) => c.g.register(dress({ serviceId: `outer-${++c.k}`, requiredConsecutivePasses: 2, critical: true }), 0),
    reenter: (n, c) => { c.g.register({ serviceId: `inner-${++c.k}` }, 0); c.g.readiness(); },
    check: (n, c) => assert.ok(JSON.stringify(c.g.readiness()).includes('outer-'), 'the outer gate is registered'),
    after: (n, c) => { c.g.register({ serviceId: 'after' }, 0); c.g.tick(1, true); },
  },
  'MetricsBinding#configure': {
    setup: sgSetup,
    call: (n, c, dress) => c.m.configure(dress({ maxSeries: 3, buckets: [0.1, 1, 10] }), 0),
    reenter: (n, c) => { c.m.configure({ maxSeries: 60 }, 0); c.m.diagnostics(0); },
    check: (n, c) => {
      for (let i = 0; i < 6; i++) c.m.intern('GET', `/r${i}`);
      assert.ok(c.m.diagnostics(0).seriesOverflow > 0, 'the outer maxSeries is in force');
    },
    after: (n, c) => { assert.ok(Number.isInteger(c.m.intern('GET', '/after'))); assert.ok(c.m.diagnostics(0).series >= 3); },
  },
  metricsMergeExports: {
    setup: (n) => { const c = sgSetup(n); const id = c.m.intern('GET', '/x'); return { ...c, e: c.m.export(id, 'all', 0) }; },
    call: (n, c, dress) => n.metricsMergeExports(dress([c.e, c.e])),
    reenter: (n, c) => { n.metricsMergeExports([c.e]); c.m.diagnostics(0); },
    check: (n, c, r) => assert.equal(typeof r, 'object'),
    after: (n, c) => { n.metricsMergeExports([c.e]); c.m.intern('GET', '/after'); },
  },
  'MetricsBinding#windows': {
    setup: (n) => { const c = sgSetup(n); return { ...c, id: c.m.intern('GET', '/w') }; },
    call: (n, c, dress) => c.m.windows(dress([c.id]), 0),
    reenter: (n, c) => { c.m.windows(null, 0); c.m.intern('GET', '/inner'); },
    check: (n, c, r) => assert.deepEqual(r, c.m.windows([c.id], 0)),
    after: (n, c) => assert.ok(c.m.windows(null, 0).length >= 1),
  },
  'MetricsBinding#windowTable': {
    setup: (n) => { const c = sgSetup(n); return { ...c, id: c.m.intern('GET', '/w') }; },
    call: (n, c, dress) => c.m.windowTable(dress([c.id]), 0),
    reenter: (n, c) => { c.m.windowTable(null, 0); c.m.intern('GET', '/inner'); },
    check: (n, c, r) => assert.deepEqual(Array.from(r), Array.from(c.m.windowTable([c.id], 0))),
    after: (n, c) => assert.ok(c.m.windowTable(null, 0).length >= 4),
  },
  'RolloutTable#start': {
    setup: (n) => ({ t: new n.RolloutTable(), k: 0 }),
    call: (n, c, dress) => c.t.start(`outer-${++c.k}`, dress({ percentage: 25, allowList: ['a', 'b'] }), 0),
    reenter: (n, c) => { c.t.start(`inner-${++c.k}`, { percentage: 5 }, 0); c.t.list(); },
    check: (n, c, r) => { assert.equal(r.bp, 2500); assert.equal(r.hasLists, true); },
    after: (n, c) => { const r = c.t.start('after', { percentage: 10 }, 0); assert.equal(c.t.status(r.id, 0).percentage, 10); },
  },
  'RolloutTable#reconfigure': {
    setup: (n) => { const t = new n.RolloutTable(); t.start('r', { percentage: 1 }, 0); return { t, k: 0 }; },
    call: (n, c, dress) => c.t.reconfigure('r', dress({ percentage: 40, denyList: ['x'] }), 0),
    reenter: (n, c) => { c.t.start(`inner-${++c.k}`, { percentage: 5 }, 0); c.t.list(); },
    check: (n, c, r) => assert.equal(r.bp, 4000),
    after: (n, c) => { const r = c.t.reconfigure('r', { percentage: 50 }, 0); assert.equal(r.bp, 5000); },
  },
  // A class method that takes an object: `Class#method`, called on an instance made in setup.
  'Watchdogs#register': {
    setup: (n) => ({ w: new n.Watchdogs(), k: 0 }),
    call: (n, c, dress) => c.w.register('gauge', `outer-${++c.k}`, dress({ warn: 1, critical: 2, holdMs: 0 }), 0),
    reenter: (n, c) => { c.w.register('gauge', `inner-${++c.k}`, { warn: 5 }, 0); c.w.report(0); },
    check: (n, c, id) => { const t = c.w.set(id, 3, 1); assert.ok(t, 'a value over critical is a transition'); },
    after: (n, c) => { const id = c.w.register('counter', 'after', {}, 0); c.w.count(id, 1, 1); c.w.report(1); },
  },
  'Watchdogs#track': {
    setup: (n) => ({ w: new n.Watchdogs(), k: 0 }),
    call: (n, c, dress) => c.w.track('latency', `outer-${++c.k}`, 'overflow', dress({ warn: 100, critical: 200, quantile: 0.99 }), 0),
    reenter: (n, c) => { c.w.track('latency', `inner-${++c.k}`, 'overflow', {}, 0); c.w.report(0); },
    check: (n, c, r) => assert.equal(r.overflowed, false),
    after: (n, c) => { const r = c.w.track('latency', 'after', 'overflow', {}, 0); c.w.record(r.id, 5, true, 1); },
  },
  'OpsPlane#recordRollback': {
    setup: (n) => ({ p: new n.OpsPlane(1), k: 0 }),
    call: (n, c, dress) => c.p.recordRollback(dress([`outer-${++c.k}`, 'second']), 'why', 'alice', 'test', 0),
    reenter: (n, c) => { c.p.quarantine(`agent-${++c.k}`, 'r', null, 'bob', 'test', 0); c.p.status(0); },
    check: (n, c) => assert.ok(JSON.stringify(c.p.status(0)).includes('second'), 'the rollback is recorded'),
    after: (n, c) => { c.p.setSafeMode(true, 'r', 'a', 's', 1); assert.ok(c.p.toJson(1).includes('safeMode')); },
  },
  'OpsPlane#dlqRegister': {
    // `ratePerSecond` is read before the plane is borrowed.
    setup: (n) => ({ p: new n.OpsPlane(1), k: 0 }),
    call: (n, c, dress) => c.p.dlqRegister(`q-${++c.k}`, dress({ ratePerSecond: 7 })),
    reenter: (n, c) => { c.p.dlqRegister(`inner-${++c.k}`, { ratePerSecond: 3 }); c.p.dlqViews(); },
    check: (n, c) => {
      const outer = c.p.dlqViews().filter((q) => q.name.startsWith('q-'));
      assert.ok(outer.length > 0 && outer.every((q) => q.ratePerSecond === 7), 'the outer registrations keep their rate');
    },
    after: (n, c) => assert.throws(() => c.p.dlqRegister('bad', { ratePerSecond: 'fast' }), { name: 'TypeError', message: /^ratePerSecond must be a number/ }),
  },
  'OpsPlane#status': {
    // The `only` array is converted before the plane is borrowed.
    setup: (n) => {
      const p = new n.OpsPlane(1);
      p.quarantine('q-1', 'why', null, 'alice', 'test', 0);
      return { p, k: 0 };
    },
    call: (n, c, dress) => assert.equal(c.p.status(0, dress(['q-1'])).quarantined[0].agentId, 'q-1'),
    reenter: (n, c) => { c.p.quarantine(`agent-${++c.k}`, 'r', null, 'bob', 'test', 0); c.p.status(0); },
    check: (n, c) => assert.ok(c.p.status(0).quarantined.some((q) => q.agentId === 'q-1'), 'the quarantine is listed'),
    after: (n, c) => { c.p.setSafeMode(true, 'r', 'a', 's', 1); assert.ok(c.p.toJson(1).includes('safeMode')); },
  },
  exScrape: {
    // The strings array is converted before the scrape borrows any registry.
    call: (n, c, dress) => n.exScrape('application/openmetrics-text', 0, null, dress(['a', 'b']), '', 0),
    reenter: (n) => { n.metricsErrorRate(1, 1, 4); n.exScrape('', 0, null, null, '', 0); },
    check: (n, c, r) => assert.ok(typeof r.body === 'string' && r.contentType.startsWith('application/openmetrics-text'), 'an OpenMetrics body'),
    after: (n) => assert.equal(typeof n.exScrape('', 0, null, null, '', 0).body, 'string'),
  },
  exFamiliesJson: {
    call: (n, c, dress) => n.exFamiliesJson(0, null, dress(['a']), '', 0),
    reenter: (n) => { n.exFamiliesJson(0, null, null, '', 0); },
    check: (n, c, r) => assert.ok(Array.isArray(JSON.parse(r)), 'a JSON array of families'),
    after: (n) => assert.ok(Array.isArray(JSON.parse(n.exFamiliesJson(0, null, null, '', 0)))),
  },
};

/** Exports whose `unknown` parameter is read only when it is a primitive (no coercion). */
const UNKNOWN_READ_AS_PRIMITIVE = ['QuorumRule'];

/** Binding exports that take no object: only numbers, strings, booleans, typed arrays. */
const NATIVE_NO_OBJECT = [
  'authCheckLimits', 'authCheckToken', 'authDefaults', 'authFailure', 'authRetryAfter', 'authSuccess',
  'BreakerTable', 'cbAcquire', 'cbDrain', 'cbRecord', 'cbRetryDelay',
  'dagParseGraph', 'dagSortJson', 'StartupDag', 'HealthGates',
  'errorCodes', 'opsCheckState', 'opsDecide', 'OpsPlane',
  'MetricsBinding', 'metricsDrain', 'metricsRefusalCodes', 'metricsRingCap',
  'RolloutTable',
  'Watchdogs', 'QuorumRule', 'rcAttach', 'rcResetAll', 'metricsErrorRate', 'exProcessLayout', 'backoffDelay',
];

// ---- package cases ---------------------------------------------------------------
// Same shape, on the package's public functions (dist/index.js): `m` is the package.

const tmpState = () => path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'rc-reentrancy-')), 'ops.json');
const breakerAfter = (m) => {
  const b = m.getCircuitBreakerRegistry().get(`after-${Math.random()}`, { failureThreshold: 4 });
  assert.equal(b.getState().state ?? b.state, 'closed');
};

const PUBLIC_CASES = {
  getCircuitBreakerRegistry: {
    setup: () => ({ k: 0 }),
    call: (m, c, dress) => m.getCircuitBreakerRegistry().get(`outer-${++c.k}`, dress({ failureThreshold: 5, resetTimeout: 1000, fallback: () => 'fb' })),
    reenter: (m, c) => { m.getCircuitBreakerRegistry().get(`inner-${++c.k}`, { failureThreshold: 2 }); m.getCircuitBreakerRegistry().getAll(); },
    check: (m, c, b) => {
      assert.equal(b.snapshot().options.failureThreshold, 5);
      assert.equal(m.getCircuitBreakerRegistry().get(b.name), b, 'one instance per name');
    },
    after: breakerAfter,
  },
  CircuitBreaker: {
    setup: () => ({ k: 0 }),
    call: (m, c, dress) => new m.CircuitBreaker(`cls-${++c.k}`, dress({ failureThreshold: 6 })),
    reenter: (m, c) => { m.getCircuitBreakerRegistry().get(`inner-${++c.k}`); },
    check: (m, c, b) => assert.equal(b.snapshot().options.failureThreshold, 6),
    after: breakerAfter,
  },
  withCircuitBreaker: {
    setup: () => ({ k: 0 }),
    call: (m, c, dress) => m.withCircuitBreaker(`with-${++c.k}`, () => 42, dress({ failureThreshold: 7 })),
    reenter: (m, c) => { m.getCircuitBreakerRegistry().get(`inner-${++c.k}`); },
    check: async (m, c, p) => assert.equal(await p, 42),
    after: breakerAfter,
  },
  retry: {
    call: (m, c, dress) => m.retry(dress({ maxRetries: 2, baseDelay: 0, maxDelay: 0, jitter: 'equal' })),
    reenter: (m) => { m.retry({ maxRetries: 1 }); m.getCircuitBreakerRegistry().get('inner-retry'); },
    check: async (m, c, p) => {
      assert.equal(p.maxRetries, 2);
      let n = 0;
      assert.equal(await p.execute(() => { if (++n < 3) throw new Error('x'); return n; }), 3);
    },
    after: breakerAfter,
  },
  RetryPolicy: {
    call: (m, c, dress) => new m.RetryPolicy(dress({ maxRetries: 4, baseDelay: 1, maxDelay: 2 })),
    reenter: (m) => { m.retry({ maxRetries: 1 }); m.getCircuitBreakerRegistry().get('inner-retry'); },
    check: (m, c, p) => assert.equal(p.maxRetries, 4),
    after: breakerAfter,
  },
  configureCircuitBreakers: {
    call: (m, c, dress) => m.configureCircuitBreakers(dress({ maxBreakers: 20_000, logger: null })),
    reenter: (m) => { m.getCircuitBreakerRegistry().get('inner'); m.configureCircuitBreakers({ captureStacks: false }); },
    check: () => {},
    after: breakerAfter,
  },
  configureMetrics: {
    call: (m, c, dress) => m.configureMetrics(dress({ maxSeries: 3, buckets: [0.1, 1, 10] })),
    reenter: (m) => { m.getMetricsDiagnostics(); m.configureMetrics({ maxSeries: 60 }); },
    check: (m) => {
      for (let i = 0; i < 6; i++) m.seriesIdFor('GET', `/r${i}`);
      assert.ok(m.getMetricsDiagnostics().seriesOverflow > 0, 'the outer maxSeries is in force');
    },
    after: (m) => { m.recordRequest(m.seriesIdFor('GET', '/after'), 200, 3); assert.ok(m.getAllEndpointMetrics()); },
  },
  getGoldenSignals: {
    call: (m, c, dress) => m.getGoldenSignals(dress({ scope: 'local' })),
    reenter: (m) => { m.getMetricsDiagnostics(); m.seriesIdFor('GET', '/inner'); },
    check: (m, c, r) => assert.equal(typeof r, 'object'),
    after: (m) => m.getGoldenSignals(),
  },
  configureOps: {
    setup: () => ({ file: tmpState() }),
    call: (m, c, dress) => m.configureOps(dress({ stateFile: c.file, watch: false, logger: null })),
    reenter: (m) => { m.isSafeMode(); m.peekOps()?.status(); },
    check: (m, c, ops) => { ops.enableSafeMode('r'); assert.ok(fs.readFileSync(c.file, 'utf8').includes('safeMode')); ops.disableSafeMode(); },
    after: (m) => { assert.equal(m.isSafeMode(), false); m.getOps().close(); },
  },
  getOps: {
    setup: (m) => ({ ops: m.configureOps({ stateFile: false, logger: null }), k: 0 }),
    call: (m, c, dress) => c.ops.quarantineAgent(`agent-${++c.k}`, dress({ reason: 'r', actor: 'alice', ttlMs: 60_000 })),
    reenter: (m, c) => { c.ops.status(); c.ops.releaseAgent('nobody'); m.isAgentQuarantined('x'); },
    check: (m, c) => assert.equal(m.isAgentQuarantined(`agent-${c.k0}`), true),
    after: (m, c) => { c.ops.enableSafeMode('r', { actor: 'a' }); assert.equal(m.isSafeMode(), true); c.ops.disableSafeMode(); c.ops.close(); },
  },
  registerDeadLetterQueue: {
    setup: (m) => ({ ops: m.configureOps({ stateFile: false, logger: null }) }),
    call: (m, c, dress) => m.registerDeadLetterQueue('dlq', dress({ depth: () => 3, drain: () => ({ processed: 0, failed: 0 }) })),
    reenter: (m, c) => { c.ops.status(); },
    check: async (m, c) => assert.ok((await c.ops.deadLetterQueues()).some((q) => q.name === 'dlq')),
    after: async (m, c) => { await c.ops.deadLetterQueues(); c.ops.close(); },
  },
  configureTrafficShaping: {
    call: (m, c, dress) => m.configureTrafficShaping(dress({ logger: null })),
    reenter: (m) => { m.getTrafficShaping().names(); m.getTrafficShaping().startRollout('inner', { percentage: 1 }); },
    check: () => {},
    after: (m) => { m.getTrafficShaping().startRollout('after', { percentage: 5 }); assert.equal(m.getTrafficShaping().has('after'), true); },
  },
  getTrafficShaping: {
    setup: () => ({ k: 0 }),
    call: (m, c, dress) => m.getTrafficShaping().startRollout(`outer-${++c.k}`, dress({ percentage: 30, allowList: ['a'] })),
    reenter: (m, c) => { m.getTrafficShaping().startRollout(`inner-${++c.k}`, { percentage: 1 }); m.getRolloutsReport(); },
    check: (m, c) => assert.equal(m.getTrafficShaping().getStatus(`outer-${c.k0}`)?.percentage ?? m.getTrafficShaping().getConfig(`outer-${c.k0}`)?.percentage, 30),
    after: (m) => { m.getTrafficShaping().startRollout('after', { percentage: 5 }); assert.equal(m.shouldRouteToNewVersion('after', 'x') === true || m.shouldRouteToNewVersion('after', 'x') === false, true); },
    mark: true,
  },
  updateRollout: {
    setup: (m) => { m.getTrafficShaping().startRollout('u', { percentage: 1 }); return { k: 0 }; },
    call: (m, c, dress) => m.updateRollout('u', dress({ percentage: 45 })),
    reenter: (m, c) => { m.getTrafficShaping().startRollout(`inner-${++c.k}`, { percentage: 1 }); m.getRolloutStatus('u'); },
    check: (m) => assert.equal(m.getTrafficShaping().getConfig('u').percentage, 45),
    after: (m) => { m.updateRollout('u', 50); assert.equal(m.getTrafficShaping().getConfig('u').percentage, 50); },
  },
  getHealthGates: {
    setup: () => ({ k: 0 }),
    call: (m, c, dress) => m.getHealthGates().register(dress({ serviceId: `outer-${++c.k}`, check: async () => true, requiredConsecutivePasses: 2 })),
    reenter: (m, c) => { m.getHealthGates().register({ serviceId: `inner-${++c.k}`, check: async () => true }); m.getHealthGates().getReadinessSnapshot(); },
    check: (m) => assert.ok(JSON.stringify(m.getHealthGates().getReadinessSnapshot()).includes('outer-')),
    after: async (m) => { m.getHealthGates().register({ serviceId: 'after', check: async () => true }); await m.getHealthGates().checkGate('after'); },
  },
  fromBreaker: {
    call: (m, c, dress) => m.fromBreaker('brk', dress({ critical: true })),
    reenter: (m) => { m.getHealthGates().getReadinessSnapshot(); m.getCircuitBreakerRegistry().get('brk'); },
    check: (m, c, g) => assert.equal(g.critical, true),
    after: (m) => m.getHealthGates().register(m.fromBreaker('brk')),
  },
  getWatchdogs: {
    setup: () => ({ k: 0 }),
    call: (m, c, dress) => m.getWatchdogs().gauge(`outer-${++c.k}`, dress({ warn: 1, critical: 2 })),
    reenter: (m, c) => { m.getWatchdogs().counter(`inner-${++c.k}`, { warn: 5 }); m.getWatchdogs().views(); },
    check: (m, c, g) => { g.set(3); m.getWatchdogs().drain(); },
    after: (m) => { m.getWatchdogs().latency('after', {}).record(4); m.getWatchdogsReport(); },
  },
  trackAiCall: {
    setup: () => ({ k: 0 }),
    call: (m, c, dress) => m.trackAiCall(`ai-${++c.k}`, async () => 'answer', dress({ timeoutMs: 5000 })),
    reenter: (m, c) => { m.getWatchdogs().views(); m.getWatchdogs().counter(`inner-${++c.k}`); },
    check: async (m, c, p) => assert.equal(await p, 'answer'),
    after: async (m) => assert.equal(await m.trackAiCall('after', async () => 1), 1),
  },
  protectPublish: {
    call: (m, c, dress) => m.protectPublish(async (x) => x * 2, dress({ topic: 'events', breaker: 'pub' })),
    reenter: (m) => { m.getWatchdogs().views(); m.getCircuitBreakerRegistry().get('pub-inner'); },
    check: async (m, c, f) => assert.equal(await f(21), 42),
    after: async (m) => assert.equal(await m.protectPublish(async () => 'ok')(), 'ok'),
  },
  getStartupDAG: {
    setup: () => ({ k: 0 }),
    call: (m, c, dress) => m.getStartupDAG().register(dress({ id: `outer-${++c.k}`, init: async () => {}, dependencies: [] })),
    reenter: (m, c) => { m.getStartupDAG().register({ id: `inner-${++c.k}`, init: async () => {} }); m.getStartupDAG().topologicalSort(); },
    check: (m) => assert.ok(m.getStartupDAG().topologicalSort().some((id) => id.startsWith('outer-'))),
    after: (m) => { m.getStartupDAG().register({ id: 'after', init: async () => {} }); assert.ok(m.getStartupDAG().topologicalSort().includes('after')); },
  },
  StartupDAG: {
    setup: (m) => ({ dag: new m.StartupDAG(), k: 0 }),
    call: (m, c, dress) => c.dag.register(dress({ id: `outer-${++c.k}`, init: async () => {} })),
    reenter: (m, c) => { c.dag.register({ id: `inner-${++c.k}`, init: async () => {} }); c.dag.validate(); },
    check: (m, c) => assert.ok(c.dag.topologicalSort().some((id) => id.startsWith('outer-'))),
    after: async (m, c) => { const r = await c.dag.initialize(); assert.equal(typeof r, 'object'); },
  },
  planStartupOrder: {
    call: (m, c, dress) => m.planStartupOrder(dress([{ id: 'a', dependencies: ['b'] }, { id: 'b' }])),
    reenter: (m) => { m.planStartupOrder([{ id: 'x' }]); },
    check: (m, c, r) => assert.match(JSON.stringify(r), /"b"[^]*"a"/),
    after: (m) => m.planStartupOrder([{ id: 'y' }]),
  },
  configureStartupLogging: {
    call: (m, c, dress) => m.configureStartupLogging(dress({ logger: null })),
    reenter: (m) => { m.getStartupDAG().topologicalSort(); },
    check: () => {},
    after: (m) => m.planStartupOrder([{ id: 'y' }]),
  },
  HealthGates: {
    setup: (m) => ({ g: new m.HealthGates(), k: 0 }),
    call: (m, c, dress) => c.g.register(dress({ serviceId: `outer-${++c.k}`, check: async () => true })),
    reenter: (m, c) => { c.g.register({ serviceId: `inner-${++c.k}`, check: async () => true }); c.g.getReadinessSnapshot(); },
    check: (m, c) => assert.ok(JSON.stringify(c.g.getReadinessSnapshot()).includes('outer-')),
    after: async (m, c) => { await c.g.checkAllGates(); },
  },
  Watchdogs: {
    setup: (m) => ({ w: new m.Watchdogs(), k: 0 }),
    call: (m, c, dress) => c.w.counter(`outer-${++c.k}`, dress({ warn: 1 })),
    reenter: (m, c) => { c.w.gauge(`inner-${++c.k}`, {}); c.w.views(); },
    check: (m, c, r) => r.add(2),
    after: (m, c) => { c.w.gauge('after').set(1); c.w.report(); c.w.close(); },
  },
  createAccess: {
    setup: () => ({ token: crypto.randomBytes(32).toString('hex') }),
    call: (m, c, dress) => m.createAccess(dress({ token: c.token, maxTokenFailures: 5 })),
    reenter: (m) => { m.createAccess({ token: crypto.randomBytes(32).toString('hex') }); },
    check: (m, c, a) => assert.ok(a && typeof a === 'object'),
    after: (m) => assert.throws(() => m.createAccess({ token: 'short' }), RangeError),
  },
  TrafficShaping: {
    setup: (m) => ({ t: new m.TrafficShaping(), k: 0 }),
    call: (m, c, dress) => c.t.startRollout(`outer-${++c.k}`, dress({ percentage: 20 })),
    reenter: (m, c) => { c.t.startRollout(`inner-${++c.k}`, { percentage: 1 }); c.t.names(); },
    check: (m, c) => assert.equal(c.t.getConfig(`outer-${c.k0}`).percentage, 20),
    after: (m, c) => { c.t.startRollout('after', { percentage: 1 }); c.t.updateRollout('after', 60); assert.equal(c.t.getConfig('after').percentage, 60); },
  },
};

/**
 * Public exports that take no option object, and why they need no case.
 * A new export must be added here or to PUBLIC_CASES.
 */
const PUBLIC_NO_OPTIONS = {
  'error classes (a message and primitives)': ['CircuitOpenError', 'CircuitTimeoutError', 'GraphFileError', 'StartupDAGError', 'DatabaseNotConfiguredError', 'MigrationError', 'MigrationChecksumError', 'MigrationLockTimeoutError'],
  'no arguments, or numbers and strings only': ['scrapeMetrics', 'getPrometheusExposition', 'requestsInFlight', 'flushMetrics', 'CircuitBreakerRegistry', 'recordRequest', 'seriesIdFor', 'getEndpointMetrics', 'getAllEndpointMetrics', 'getLatencyPercentiles', 'getRefusedRequests', 'resetMetrics', 'getPrometheusMetrics', 'exportLatencyHistogram', 'getMetricsDiagnostics', 'getLogger', 'alwaysHealthy', 'checkDatabaseHealth', 'assertDatabaseHealthy', 'checkDatabaseGate', 'assertDatabaseGate', 'healthGatesReport', 'startupDagReport', 'isDatabaseConfigured', 'getDatabase', '_databaseInternals', 'databaseGate', 'checkDatabase', 'migrationChecksum', 'getRegisteredMigrations', 'clearMigrations', 'rollbackLastMigration', 'initializeAllQueues', 'ensureQueue', 'canInitializeQueues', 'peekOps', 'isSafeMode', 'isAgentQuarantined', 'localActor', 'tokenMatches', 'checkToken', 'compilePattern', 'compileUrlTest', 'isPackageRequest', 'circuitBreakersReport', 'opsReport', 'shouldRouteToNewVersion', 'recordRequestMetrics', 'getRolloutStatus', 'getRolloutsReport', 'cohortHeaderOf', 'recordDeadLetter', 'getWatchdogsReport', 'getRedisBackend', 'reasonOf', 'registerQueueDepth', 'resolveServiceModule', 'OpsControls', 'Gauge', 'LatencyTracker', 'RateCounter', 'executeDirect', 'executeWithCircuitBreaker', 'classifyDatabaseError', 'isRetryableDatabaseError', 'checkDAGGate', 'assertDAGReady'],
  // Only the binding can abort on re-entrancy (a getter run inside a native call while it holds
  // a borrow); these read their arguments in JS and hand the binding numbers and strings at most.
  'Express handlers, routers and their options: read in JS, never handed to the binding': ['prometheusHandler', 'goldenSignalsHandler', 'metricsMiddleware', 'beginRequest', 'endRequest', 'finishRequest', 'createMetricsRouter', 'liveHandler', 'readyHandler', 'healthGatesHandler', 'startupDagHandler', 'createHealthRouter', 'createGracefulShutdown', 'reliabilityMiddleware', 'createOpsGate', 'createOpsRouter', 'reliabilityStack', 'createObservabilityRouter', 'observabilityRouter', 'addObservabilityPart', 'trafficShapingMiddleware', 'rolloutsHandler', 'rolloutController', 'pickCohort', 'withTrafficShaping', 'watchdogsHandler', 'createDashboardRouter', 'dashboardRouter', 'configureReadAccess'],
  'wiring between modules: take a function, read in JS': ['setClusterSignalsSource', 'setDatabaseProbe'],
  'compose policies (objects with an execute function), read in JS': ['wrap'],
  'read their options in JS and hand the binding strings and typed arrays (exScrape, exFamiliesJson have cases)': ['configurePrometheus', 'registerWith'],
  'need a database, Redis or files (their options are read in JS; the calls they make are covered above)': ['configureDatabase', 'setDatabase', 'registerMigration', 'runMigrations', 'rollbackMigration', 'getMigrationStatus', 'loadServicesFromGraph', 'initializeHealthGates', 'initializeReliabilitySystem', 'initializeReliabilitySystemFromEnv', 'RedisBackend', 'createRedisBackend'],
};

// ---- the child: one case, every way ---------------------------------------------

async function runCase(group, name, way) {
  const table = group === 'native' ? NATIVE_CASES : PUBLIC_CASES;
  const mod = group === 'native' ? require(path.join(ROOT, 'index.js')) : require(path.join(ROOT, 'dist', 'index.js'));
  const cs = table[name];
  const ctx = (cs.setup ? cs.setup(mod) : null) ?? {};
  if (group === 'native' && name.startsWith('BreakerTable#')) cbPages(mod, ctx);
  {
    const reentryErrors = [];
    let reentries = 0;
    let inside = false;
    const reenter = () => {
      if (inside) return; // a trap hit by the re-entrant call itself
      inside = true;
      reentries++;
      try {
        cs.reenter(mod, ctx, reentries);
      } catch (e) {
        reentryErrors.push(e);
      } finally {
        inside = false;
      }
    };
    ctx.k0 = (ctx.k ?? 0) + 1;
    let result;
    let error = null;
    try {
      result = cs.call(mod, ctx, (valid) => hostile(way, valid, reenter));
    } catch (e) {
      error = e;
    }
    if (group === 'native' && name.startsWith('BreakerTable#')) cbPages(mod, ctx);
    if (way === 'throw') {
      // A getter that throws may be read (then its error, or a TypeError naming the field, is
      // thrown) or not (a JS wrapper that destructures only some keys); either way, catchable.
      if (error !== null) assert.ok(error instanceof Error, `${name}/${way}: a catchable Error, got ${error}`);
    } else {
      assert.equal(error, null, `${name}/${way}: the call succeeds, got ${error && (error.code || '')} ${error && error.message}`);
      await cs.check(mod, ctx, result);
    }
    for (const e of reentryErrors) {
      assert.fail(`${name}/${way}: the call made from the getter failed: ${e && e.code} ${e && e.message}`);
    }
    await cs.after(mod, ctx);
    process.stdout.write(`REENTRANCY-OK ${group}:${name}:${way} reentries=${reentries}\n`);
  }
}

if (process.env.REENTRANCY_CASE) {
  const [group, name, way] = process.env.REENTRANCY_CASE.split(':');
  runCase(group, name, way).then(
    () => process.exit(0),
    (e) => {
      process.stderr.write(`${e && e.stack}\n`);
      process.exit(1);
    },
  );
} else {
  const { test } = require('node:test');

  // One child per case and way, so an abort is seen as a signal exit and every way starts fresh.
  const spawnCase = (group, name) => {
    for (const way of WAYS) {
      const id = `${group}:${name}:${way}`;
      const r = spawnSync(process.execPath, [__filename], {
        env: { ...process.env, REENTRANCY_CASE: id, NODE_TEST_CONTEXT: '' },
        encoding: 'utf8',
        timeout: 60_000,
      });
      assert.equal(r.signal, null, `${id} died by ${r.signal} (an abort is a panic across the FFI)\n${r.stderr}`);
      assert.equal(r.status, 0, `${id} failed\n${r.stderr}\n${r.stdout}`);
      assert.match(r.stdout, new RegExp(`REENTRANCY-OK ${id} reentries=[1-9]`), `the getters ran and called back at least once\n${r.stdout}`);
    }
  };

  test('every binding export has a re-entrancy case or is listed as taking no object (checked against index.d.ts)', () => {
    const binding = require(path.join(ROOT, 'index.js'));
    // `__napiBindingTarget` and the like are the loader's, not functions of the binding.
    const exports = Object.keys(binding).filter((k) => typeof binding[k] === 'function');
    // `Class#method` keys are cases of class methods; the rest name exports.
    const cased = Object.keys(NATIVE_CASES).filter((k) => !k.includes('#'));
    const methodCases = Object.keys(NATIVE_CASES).filter((k) => k.includes('#'));
    for (const e of exports) {
      assert.ok(cased.includes(e) !== NATIVE_NO_OBJECT.includes(e), `${e}: give it a case in NATIVE_CASES, or list it in NATIVE_NO_OBJECT if it takes no object`);
    }
    for (const e of [...cased, ...NATIVE_NO_OBJECT]) assert.ok(exports.includes(e), `${e} is listed but no longer exported`);
    for (const k of methodCases) {
      const [cls, method] = k.split('#');
      assert.ok(exports.includes(cls) && typeof binding[cls].prototype[method] === 'function', `${k} is listed but ${cls} has no method ${method}`);
    }
    const dts = fs.readFileSync(path.join(ROOT, 'index.d.ts'), 'utf8');
    const PRIMITIVE = /^(number|string|boolean|Float64Array|Uint32Array)( \| undefined)?( \| null)?$/;
    const paramsOf = (list) => (list.trim() === '' ? [] : list.split(', ').map((p) => p.replace(/^\w+\??: /, '')));
    for (const e of exports) {
      // A class is checked by its constructor's parameters, and each of its methods below.
      const m = dts.match(new RegExp(`export declare function ${e}\\(([^)]*)\\)`)) ?? dts.match(new RegExp(`export declare class ${e} \\{[\\s\\S]*?constructor\\(([^)]*)\\)`));
      assert.ok(m, `${e} declared in index.d.ts`);
      const params = paramsOf(m[1]);
      // QuorumRule's `quorum` is typed unknown but read only when it is a number: an object is
      // refused without running any of its code (tested below).
      const takesObject = params.some((t) => !PRIMITIVE.test(t) && !(t === 'unknown' && UNKNOWN_READ_AS_PRIMITIVE.includes(e)));
      assert.equal(takesObject, cased.includes(e), `${e}(${m[1]}): ${takesObject ? 'takes an object, needs a case' : 'takes no object, belongs in NATIVE_NO_OBJECT'}`);
    }
    // Every method of a class that takes an object has a `Class#method` case, and every such case names one.
    const seen = [];
    for (const [, cls, body] of dts.matchAll(/export declare class (\w+) \{([\s\S]*?)\n\}/g)) {
      for (const [, meth, params] of body.matchAll(/^ {2}(?!constructor)(\w+)\(([^)]*)\)/gm)) {
        const key = `${cls}#${meth}`;
        seen.push(key);
        const types = params.trim() === '' ? [] : params.split(', ').map((p) => p.replace(/^\w+\??: /, ''));
        const takesObject = types.some((t) => !PRIMITIVE.test(t));
        assert.equal(takesObject, methodCases.includes(key), `${key}(${params}): ${takesObject ? 'takes an object, needs a case' : 'takes no object, needs none'}`);
      }
    }
    for (const k of methodCases) assert.ok(seen.includes(k), `${k} is listed but no such class method is declared`);
  });

  test('QuorumRule refuses an object without running its code (valueOf, getters)', () => {
    const binding = require(path.join(ROOT, 'index.js'));
    let ran = 0;
    const hostileQuorum = { valueOf() { ran++; return 2; }, get quorum() { ran++; return 2; } };
    assert.throws(() => new binding.QuorumRule(hostileQuorum), RangeError);
    assert.equal(ran, 0);
    assert.equal(typeof new binding.QuorumRule(2).votesOpen(false), 'boolean');
  });

  test('every public function of the package has a re-entrancy case or a reason it needs none', () => {
    const pkg = require(path.join(ROOT, 'dist', 'index.js'));
    const fns = Object.keys(pkg).filter((k) => typeof pkg[k] === 'function');
    const listed = Object.values(PUBLIC_NO_OPTIONS).flat();
    for (const f of fns) {
      assert.ok(Object.hasOwn(PUBLIC_CASES, f) !== listed.includes(f), `${f}: give it a case in PUBLIC_CASES, or list it in PUBLIC_NO_OPTIONS with the reason`);
    }
    for (const f of [...Object.keys(PUBLIC_CASES), ...listed]) assert.ok(fns.includes(f), `${f} is listed but no longer exported`);
  });

  for (const name of Object.keys(NATIVE_CASES)) {
    test(`binding ${name}: getters, Proxy traps and throwing getters that call back into the binding`, { timeout: 90_000 }, () => spawnCase('native', name));
  }
  for (const name of Object.keys(PUBLIC_CASES)) {
    test(`package ${name}: getters, Proxy traps and throwing getters that call back into the package`, { timeout: 90_000 }, () => spawnCase('public', name));
  }
}
