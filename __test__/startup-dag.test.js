// The startup DAG and the graph loader as users see them (dist/ build).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const L = require('../dist/dag-loader.js');
const { StartupDAG, StartupDAGError, getStartupDAG, planStartupOrder, loadServicesFromGraph, configureStartupLogging } = L;

configureStartupLogging({ logger: null });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const ORIGINAL = path.join(__dirname, 'fixtures', 'graph.json');

function tmpRoot(graph, files = {}) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'dag-'));
  fs.mkdirSync(path.join(root, 'deploy'));
  fs.writeFileSync(path.join(root, 'deploy', 'graph.json'), typeof graph === 'string' ? graph : JSON.stringify(graph));
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
    fs.writeFileSync(path.join(root, name), text);
  }
  return root;
}

test('getStartupDAG is a singleton', () => {
  assert.equal(getStartupDAG(), getStartupDAG());
});

test('order is the original DFS post-order; levels group what can start together', () => {
  const d = new StartupDAG();
  d.register({ id: 'app', name: 'App', dependencies: ['cache', 'db'], critical: true });
  d.addNode({ id: 'cache', dependencies: ['config'] });
  d.register({ id: 'db', dependencies: ['config'] });
  d.register({ id: 'config' });
  assert.deepEqual(d.topologicalSort(), ['config', 'cache', 'db', 'app']);
  assert.deepEqual(d.getLevels(), [['config'], ['cache', 'db'], ['app']]);
});

test('every problem at once: missing dependencies and whole cycle paths', () => {
  const d = new StartupDAG();
  d.register({ id: 'a', dependencies: ['b'] });
  d.register({ id: 'b', dependencies: ['c'] });
  d.register({ id: 'c', dependencies: ['a', 'ghost'] });
  d.register({ id: 'x', dependencies: ['nope'] });
  const probs = d.validate();
  assert.deepEqual(
    probs.map((p) => p.message),
    ['Dependency not found: ghost (required by c)', 'Dependency not found: nope (required by x)', 'Circular dependency detected: a → b → c → a'],
  );
  assert.deepEqual(probs[2].path, ['a', 'b', 'c', 'a']);
  assert.throws(() => d.topologicalSort(), (e) => e instanceof StartupDAGError && e.problems.length === 3 && /3 problems/.test(e.message));
});

test('a graph with problems does not lock the DAG: fix it and start again', async () => {
  const d = new StartupDAG();
  d.register({ id: 'a', dependencies: ['b'] });
  await assert.rejects(d.initialize(), /Dependency not found: b \(required by a\)/);
  assert.equal(d.isInitialized(), false);
  d.register({ id: 'b' });
  const r = await d.initialize();
  assert.equal(r.outcome, 'ready');
  assert.throws(() => d.register({ id: 'c' }), { message: 'Cannot register nodes after DAG initialization' });
  assert.equal(d.initialize(), d.initialize(), 'a second initialize returns the same promise');
});

test('services start in parallel by level within the concurrency limit, and every step is timed', async () => {
  const d = new StartupDAG();
  let running = 0;
  let peak = 0;
  const events = [];
  const svc = (id, deps, ms) => ({
    id,
    dependencies: deps,
    init: async () => {
      running++;
      peak = Math.max(peak, running);
      events.push(`start ${id}`);
      await sleep(ms);
      running--;
      events.push(`end ${id}`);
    },
    healthCheck: async () => true,
  });
  d.register(svc('db', [], 30));
  for (const id of ['a', 'b', 'c', 'e']) d.register(svc(id, ['db'], 60));
  d.register(svc('api', ['a', 'b', 'c', 'e'], 5));
  const report = await d.initialize({ concurrency: 3 });
  assert.equal(report.outcome, 'ready');
  assert.equal(peak, 3, 'level 1 ran three at a time, never more');
  assert.deepEqual(events.slice(0, 2), ['start db', 'end db']);
  assert.equal(events.at(-1), 'end api');
  assert.deepEqual(report.levels, [['db'], ['a', 'b', 'c', 'e'], ['api']]);
  const e = report.services.find((s) => s.id === 'e');
  assert.ok(e.waitMs >= 40, `e queued behind the limit (${e.waitMs} ms)`);
  for (const s of report.services) {
    assert.equal(s.status, 'ready');
    assert.ok(s.initMs >= 0 && s.healthCheckMs >= 0 && s.duration >= s.initMs);
  }
  await assert.rejects(new StartupDAG().initialize({ concurrency: 0 }), RangeError);
});

test('a critical failure aborts with the original message; the rest stay pending', async () => {
  const d = new StartupDAG();
  d.register({ id: 'db', critical: true, init: async () => { throw new Error('ECONNREFUSED'); } });
  d.register({ id: 'api', dependencies: ['db'] });
  await assert.rejects(d.initialize(), { message: 'Critical service db failed to initialize: ECONNREFUSED' });
  const s = d.getStatus();
  assert.deepEqual([s.total, s.ready, s.failed, s.pending], [2, 0, 1, 1]);
  assert.equal(s.services[0].error, 'ECONNREFUSED');
  assert.ok('duration' in s.services[0] && s.services[0].duration === undefined);
  assert.equal(d.areCriticalServicesReady(), false);
  assert.equal(d.getStartupReport().outcome, 'failed');
});

test('a non-critical failure degrades its dependents at once instead of a 30 s wait each', async () => {
  const d = new StartupDAG();
  d.register({ id: 'db', critical: true });
  d.register({ id: 'mesh', dependencies: ['db'], init: () => Promise.reject('plain string') });
  d.register({ id: 'bridge', dependencies: ['mesh'] });
  d.register({ id: 'agent', dependencies: ['bridge'] });
  d.register({ id: 'wallet', dependencies: ['db'] });
  const failed = [];
  d.on('serviceFailed', (id, reason, degraded) => failed.push([id, reason, degraded]));
  const t0 = Date.now();
  const r = await d.initialize();
  assert.ok(Date.now() - t0 < 1000);
  assert.equal(r.outcome, 'degraded');
  assert.deepEqual(failed, [['mesh', 'plain string', ['bridge', 'agent']]]);
  const by = Object.fromEntries(r.services.map((s) => [s.id, s]));
  assert.equal(by.bridge.status, 'degraded');
  assert.equal(by.agent.error, 'dependency bridge failed');
  assert.equal(by.wallet.status, 'ready');
  assert.equal(d.areCriticalServicesReady(), true);
  assert.equal(d.getStatus().degraded, 2);
});

test('init and health-check timeouts, hanging and non-boolean health checks', async () => {
  const d = new StartupDAG();
  d.register({ id: 'hang', init: () => new Promise(() => {}), timeout: 50 });
  d.register({ id: 'slowcheck', healthCheck: () => new Promise(() => {}), healthCheckTimeout: 40 });
  d.register({ id: 'obj', healthCheck: async () => ({ ok: true }) });
  d.register({ id: 'no', healthCheck: async () => false });
  d.register({ id: 'throws', healthCheck: () => { throw new TypeError('bad probe'); } });
  const t0 = Date.now();
  const r = await d.initialize();
  assert.ok(Date.now() - t0 < 1000, 'timeouts fire');
  const err = Object.fromEntries(r.services.map((s) => [s.id, [s.error, s.failedPhase]]));
  assert.deepEqual(err.hang, ['Init timeout: hang', 'init']);
  assert.deepEqual(err.slowcheck, ['Health check failed for slowcheck: timed out after 40 ms', 'health-check']);
  assert.deepEqual(err.obj, ['Health check failed for obj: returned an object, expected true', 'health-check']);
  assert.deepEqual(err.no, ['Health check failed for no', 'health-check']);
  assert.deepEqual(err.throws, ['Health check failed for throws: bad probe', 'health-check']);
});

test('bad input: TypeError/RangeError naming the field; nothing registered', () => {
  const d = new StartupDAG();
  assert.throws(() => d.register(null), TypeError);
  assert.throws(() => d.register({ id: 'a', init: 'x' }), { name: 'TypeError', message: 'node.init must be a function, got string' });
  assert.throws(() => d.register({ id: '' }), { name: 'RangeError', message: /node.id must be a non-empty string/ });
  assert.throws(() => d.register({ id: 7 }), { name: 'TypeError', message: /node.id/ });
  assert.throws(() => d.register({ id: 'a', dependencies: 'b' }), { name: 'TypeError', message: /node.dependencies/ });
  assert.throws(() => d.register({ id: 'a', dependencies: ['b', 'b'] }), { name: 'RangeError', message: /node.dependencies\[1\]/ });
  assert.throws(() => d.register({ id: 'a', timeout: NaN }), { name: 'RangeError', message: /node.timeout .* got NaN/ });
  assert.throws(() => d.register({ id: 'x'.repeat(10_000) }), RangeError);
  assert.throws(() => d.register({ id: 'a', critical: 'yes' }), { name: 'TypeError', message: /node.critical must be a boolean/ });
  assert.equal(d.getStatus().total, 0);
  assert.throws(() => planStartupOrder('x'), TypeError);
  assert.throws(() => planStartupOrder([{ id: 'a' }, { id: 'a' }]), RangeError);
  assert.throws(() => planStartupOrder([{ id: 'a', dependencies: ['a'] }]), /depends on itself/);
});

test('planStartupOrder sorts without registering', () => {
  const r = planStartupOrder([{ id: 'web', dependencies: ['db', 'cache'] }, { id: 'cache' }, { id: 'db' }]);
  assert.deepEqual(r.order, ['db', 'cache', 'web']);
  assert.deepEqual(r.levels, [['cache', 'db'], ['web']]);
});

test('the original graph.json with default env: a clear error naming runtime-bridge', async () => {
  const root = tmpRoot(fs.readFileSync(ORIGINAL, 'utf8'));
  const dag = new StartupDAG();
  const r = await loadServicesFromGraph({ root, dag, env: {} });
  assert.equal(r.ok, false);
  assert.deepEqual(r.loaded, ['database', 'event-bus', 'agent-wallet-manager', 'dreamkeeper']);
  assert.equal(r.skipped.length, 5);
  assert.deepEqual(r.problems, [
    "Dependency not found: runtime-bridge (required by dreamkeeper); runtime-bridge was skipped because INIT_SUBSYSTEMS is not 'true'",
  ]);
  // Only INIT_SUBSYSTEMS: the next real problem.
  const dag2 = new StartupDAG();
  const r2 = await loadServicesFromGraph({ root, dag: dag2, env: { INIT_SUBSYSTEMS: 'true' } });
  assert.match(r2.problems[0], /^Dependency not found: latent-collaboration \(required by runtime-bridge\); .*USE_LATENT_COLLABORATION/);
});

test('the original graph.json with both flags: file order, five levels, and unloadable modules fail loudly', async () => {
  const root = tmpRoot(fs.readFileSync(ORIGINAL, 'utf8'), { 'server/db.ts': 'export const initDb = 1' });
  const dag = new StartupDAG();
  const r = await loadServicesFromGraph({ root, dag, env: { INIT_SUBSYSTEMS: 'true', USE_LATENT_COLLABORATION: 'true' } });
  assert.equal(r.ok, true);
  assert.equal(r.loaded.length, 9);
  assert.deepEqual(dag.topologicalSort(), r.loaded, 'file order');
  assert.equal(dag.getLevels().length, 5);
  assert.match(r.unresolved[0].reason, /server\/db resolves to server\/db.ts, which Node cannot load without a TypeScript loader/);
  await assert.rejects(dag.initialize(), /^Error: Critical service database failed to initialize: server\/db resolves to/);
});

test('modules resolve from the root: functions, objects with init, ESM, missing exports', async () => {
  const graph = {
    services: [
      { id: 'db', name: 'DB', critical: true, initModule: 'server/db', initFunction: 'initDb', healthCheckModule: 'server/db', healthCheckFunction: 'ping' },
      { id: 'bus', name: 'Bus', dependencies: ['db'], initModule: './lib/bus.mjs', initFunction: 'bus' },
      { id: 'bad', name: 'Bad', dependencies: ['db'], initModule: 'server/db', initFunction: 'nothere' },
      { id: 'pkg', name: 'Pkg', initModule: 'fake-pkg', initFunction: 'init', timeout: 1000, healthCheckTimeout: 500 },
    ],
  };
  const root = tmpRoot(graph, {
    'server/db.js': 'let up = false; exports.initDb = async () => { up = true; }; exports.ping = async () => up;',
    'lib/bus.mjs': 'export const bus = { init: async () => { globalThis.__busStarted = true; } };',
    'node_modules/fake-pkg/package.json': '{"name":"fake-pkg","main":"main.js"}',
    'node_modules/fake-pkg/main.js': 'module.exports = { default: { init() { globalThis.__pkgStarted = true; } } };',
  });
  const dag = new StartupDAG();
  const r = await loadServicesFromGraph({ root, dag });
  assert.equal(r.ok, true, r.error);
  const rep = await dag.initialize();
  const by = Object.fromEntries(rep.services.map((s) => [s.id, s]));
  assert.equal(by.db.status, 'ready');
  assert.equal(by.bus.status, 'ready');
  assert.equal(globalThis.__busStarted, true);
  assert.equal(globalThis.__pkgStarted, true);
  assert.equal(by.pkg.timeout, 1000);
  assert.match(by.bad.error, /^Function nothere not found in server\/db \(exports: initDb, ping\)/);
});

test("checkDatabaseHealth resolves false as the original; named in graph.json, the service fails with the reason", async () => {
  const saved = process.env.DATABASE_URL;
  process.env.DATABASE_URL = 'postgres://app:pw-never-shown@127.0.0.1:1/app';
  try {
    assert.equal(await L.checkDatabaseHealth(), false, 'DATABASE_URL set, nothing configured: false, not a rejection');
    await assert.rejects(L.assertDatabaseHealthy(), (e) => /no database is configured/.test(e.message) && !e.message.includes('pw-never-shown'));
    const root = tmpRoot({ services: [{ id: 'database', name: 'DB', critical: true, healthCheckModule: 'server/core/startup-dag', healthCheckFunction: 'checkDatabaseHealth' }] });
    const dag = new StartupDAG();
    assert.equal((await loadServicesFromGraph({ root, dag })).ok, true);
    // A critical failure aborts with the original's message, and the reason instead of a bare "Health check failed".
    await assert.rejects(dag.initialize(), { message: /^Critical service database failed to initialize: Health check failed for database: DATABASE_URL is set but no database is configured/ });
  } finally {
    if (saved === undefined) delete process.env.DATABASE_URL;
    else process.env.DATABASE_URL = saved;
  }
});

test('malformed graph.json: one error listing every problem with its JSON path; never throws', async () => {
  const dag = new StartupDAG();
  const bad = tmpRoot('{"services":[{"id":"a","name":"A","critical":"yes"},{"id":"a","name":"B","extra":1}]}');
  const r = await loadServicesFromGraph({ root: bad, dag });
  assert.equal(r.ok, false);
  assert.deepEqual(r.problems, [
    '$.services[0].critical: must be a boolean, got a string',
    '$.services[1].extra: unknown field (allowed: id, name, description, dependencies, critical, initModule, initFunction, healthCheckModule, healthCheckFunction, conditional, timeout, healthCheckTimeout)',
  ]);
  assert.match(r.error, /graph.json is invalid \(2 problems\)/);
  const notJson = await loadServicesFromGraph({ root: tmpRoot('{"services": [,]}'), dag });
  assert.match(notJson.error, /not valid JSON: .* line 1 column/);
  const missing = await loadServicesFromGraph({ root: os.tmpdir(), path: 'no/such/graph.json', dag });
  assert.match(missing.error, /Cannot read .*no\/such\/graph.json: ENOENT/);
  assert.equal(dag.getStatus().total, 0);
});
