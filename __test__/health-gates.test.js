// Health gates as users see them, and the probes in a real Express app on 127.0.0.1.
const test = require('node:test');
const assert = require('node:assert/strict');
const express = require('express');

const H = require('../dist/entries/health-gates.js');
const { HealthGates, getHealthGates, fromBreaker, createHealthRouter, checkDatabaseGate, checkDAGGate } = H;
const { getCircuitBreakerRegistry } = require('../dist/circuit-breaker.js');
const { configureStartupLogging, getStartupDAG, StartupDAG, checkDatabaseHealth } = require('../dist/dag-loader.js');

configureStartupLogging({ logger: null });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(pred, ms = 2000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred()) return true;
    await sleep(5);
  }
  return false;
}

test('getHealthGates is a singleton', () => {
  assert.equal(getHealthGates(), getHealthGates());
});

test('three consecutive passes make a gate ready; reading readiness never runs a check', async () => {
  const g = new HealthGates();
  let calls = 0;
  g.registerGate({ serviceId: 'db', name: 'Database', critical: true, check: async () => (++calls, true) });
  assert.equal(g.isReady(), false);
  for (let k = 1; k <= 3; k++) {
    const s = await g.checkGate('db');
    assert.equal(s.consecutivePasses, k);
    assert.equal(s.ready, k >= 3);
  }
  for (let k = 0; k < 50; k++) await g.getReadiness();
  assert.equal(calls, 3, 'getReadiness read state only');
  const r = await g.getReadiness();
  assert.equal(r.ready, true);
  assert.deepEqual(
    Object.keys(r.gates[0]).filter((k) => ['serviceId', 'name', 'ready', 'consecutivePasses', 'requiredPasses', 'critical', 'lastCheck'].includes(k)).sort(),
    ['consecutivePasses', 'critical', 'lastCheck', 'name', 'ready', 'requiredPasses', 'serviceId'],
  );
  assert.ok(r.gates[0].lastCheck > Date.now() - 5000);
});

test('requiredConsecutiveFailures keeps a ready gate through a blip', async () => {
  const g = new HealthGates();
  let ok = true;
  g.registerGate({ serviceId: 'api', critical: true, requiredConsecutivePasses: 1, requiredConsecutiveFailures: 3, check: () => ok });
  await g.checkGate('api');
  assert.equal(g.isReady(), true);
  ok = false;
  await g.checkGate('api');
  await g.checkGate('api');
  assert.equal(g.isReady(), true, 'two failures tolerated');
  const s = await g.checkGate('api');
  assert.equal(s.ready, false);
  assert.equal(s.reason, 'check returned false');
  assert.equal(s.consecutiveFailures, 3);
});

test('only critical gates block readiness; non-critical failures show as degraded', async () => {
  const g = new HealthGates();
  g.registerGate({ serviceId: 'db', critical: true, requiredPasses: 1, check: () => true });
  g.registerGate({ serviceId: 'cache', critical: false, requiredPasses: 1, check: () => { throw new Error('redis down'); } });
  const all = await g.checkAllGates();
  assert.equal(all.criticalReady, true);
  assert.equal(all.allReady, false);
  const r = g.getReadinessSnapshot();
  assert.equal(r.ready, true);
  assert.equal(r.degraded, true);
  assert.equal(r.gates[1].reason, 'redis down');
});

test('checks that hang, return non-booleans or throw non-errors fail with the reason', async () => {
  const g = new HealthGates();
  g.registerGate({ serviceId: 'hang', requiredPasses: 1, timeoutMs: 30, check: () => new Promise(() => {}) });
  g.registerGate({ serviceId: 'obj', requiredPasses: 1, check: async () => ({ status: 'ok' }) });
  g.registerGate({ serviceId: 'str', requiredPasses: 1, check: async () => { throw 'nope'; } });
  g.registerGate({ serviceId: 'one', requiredPasses: 1, check: () => 1 });
  const t0 = Date.now();
  const all = await g.checkAllGates();
  assert.ok(Date.now() - t0 < 1000);
  const reasons = Object.fromEntries(all.gates.map((x) => [x.serviceId, x.reason]));
  assert.deepEqual(reasons, {
    hang: 'check timed out after 30 ms',
    obj: 'check returned an object, expected true',
    str: 'nope',
    one: 'check returned number, expected true',
  });
});

test('the scheduler: one shared unref timer runs due checks periodically; stop() stops it', async () => {
  const g = new HealthGates();
  let n = 0;
  g.registerGate({ serviceId: 'a', critical: true, checkIntervalMs: 20, check: () => (n++, true) });
  g.registerGate({ serviceId: 'b', checkIntervalMs: 20, check: () => true });
  assert.equal(n, 0, 'nothing runs before start()');
  g.start();
  g.start();
  assert.ok(await until(() => g.isReady()), 'ready after 3 scheduled passes');
  assert.ok(n >= 3);
  g.stop();
  await sleep(10);
  const m = n;
  await sleep(80);
  assert.equal(n, m, 'no checks after stop()');
  // The timer never keeps a process alive: the child exits while gates are started.
  const { execFileSync } = require('node:child_process');
  const code = `const {HealthGates}=require(${JSON.stringify(require.resolve('../dist/entries/health-gates.js'))});` +
    `const g=new HealthGates();g.registerGate({serviceId:'x',checkIntervalMs:50,check:()=>true});g.start();`;
  const t0 = Date.now();
  execFileSync(process.execPath, ['-e', code], { timeout: 5000 });
  assert.ok(Date.now() - t0 < 4000);
});

test('a late answer from a timed-out check is ignored', async () => {
  const g = new HealthGates();
  let release;
  g.registerGate({ serviceId: 'slow', requiredPasses: 1, timeoutMs: 20, check: () => new Promise((r) => (release = r)) });
  const s = await g.checkGate('slow');
  assert.equal(s.ready, false);
  release(true);
  await sleep(5);
  const after = g.getReadinessSnapshot().gates[0];
  assert.equal(after.ready, false);
  assert.equal(after.checks, 1);
});

test('events: ready and notReady on transitions', async () => {
  const g = new HealthGates();
  const ev = [];
  g.on('ready', (id) => ev.push(['ready', id]));
  g.on('notReady', (id, reason) => ev.push(['notReady', id, reason]));
  let ok = true;
  g.registerGate({ serviceId: 's', requiredPasses: 1, check: () => (ok ? true : Promise.reject(new Error('boom'))) });
  await g.checkGate('s');
  ok = false;
  await g.checkGate('s');
  assert.deepEqual(ev, [['ready', 's'], ['notReady', 's', 'boom']]);
});

test('bad input: errors name the field; a replaced gate restarts from zero', async () => {
  const g = new HealthGates();
  assert.throws(() => g.registerGate(null), TypeError);
  assert.throws(() => g.registerGate({ serviceId: 'x' }), { name: 'TypeError', message: 'gate.check must be a function, got undefined' });
  assert.throws(() => g.registerGate({ serviceId: 'x', check: () => true, requiredPasses: 0 }), { name: 'RangeError', message: 'gate.requiredPasses must be an integer from 1 to 1000, got 0' });
  assert.throws(() => g.registerGate({ serviceId: 'x', check: () => true, checkIntervalMs: NaN }), { name: 'RangeError', message: /gate.checkIntervalMs/ });
  assert.throws(() => g.registerGate({ serviceId: 'x', check: () => true, timeoutMs: '5' }), { name: 'TypeError', message: /gate.timeoutMs/ });
  assert.throws(() => g.registerGate({ serviceId: '', check: () => true }), RangeError);
  assert.equal(g.getReadinessSnapshot().gates.length, 0);
  await assert.rejects(g.checkGate('nope'), { message: 'Health gate not found: nope' });
  g.registerGate({ serviceId: 'x', requiredPasses: 1, check: () => true });
  await g.checkGate('x');
  g.registerGate({ serviceId: 'x', requiredPasses: 2, check: () => true });
  const s = g.getReadinessSnapshot().gates[0];
  assert.deepEqual([s.ready, s.consecutivePasses, s.requiredPasses], [false, 0, 2]);
});

test('fromBreaker: an open breaker of a critical dependency makes the process not ready at once', async () => {
  const g = new HealthGates();
  const name = `orders-${process.pid}`;
  g.registerGate(fromBreaker(name));
  await g.checkGate(`breaker:${name}`);
  assert.equal(g.isReady(), true, 'a breaker not created yet counts as closed');
  const b = getCircuitBreakerRegistry().get(name, { failureThreshold: 1, resetTimeout: 60_000, retryOptions: { maxRetries: 0 } });
  await g.checkGate(`breaker:${name}`); // hooks the breaker's events
  await assert.rejects(b.execute(async () => { throw new Error('down'); }));
  assert.ok(await until(() => !g.isReady(), 500), 'not ready right after the breaker opened');
  assert.equal(g.getReadinessSnapshot().gates[0].reason, `circuit breaker ${name} is open`);
  b.close();
  assert.ok(await until(() => g.isReady(), 500), 'ready again after close');
});

test('checkDatabaseGate and checkDAGGate resolve false as the original; the assert variants say why', async () => {
  const saved = process.env.DATABASE_URL;
  delete process.env.DATABASE_URL;
  try {
    assert.equal(await checkDatabaseGate(), true);
    assert.equal(await checkDatabaseHealth(), true);
    process.env.DATABASE_URL = 'postgres://user:secret@127.0.0.1:1/x';
    assert.equal(await checkDatabaseGate(), false, 'DATABASE_URL set, no database configured: false, not a rejection');
    assert.equal(await checkDatabaseHealth(), false);
    await assert.rejects(H.assertDatabaseGate(), (e) => /no database is configured/.test(e.message) && !/secret/.test(e.message));
  } finally {
    if (saved === undefined) delete process.env.DATABASE_URL;
    else process.env.DATABASE_URL = saved;
  }
  const dag = getStartupDAG();
  dag.reset();
  assert.equal(await checkDAGGate(), true, 'vacuous with no services');
  dag.register({ id: 'a', critical: true, dependencies: ['missing'] });
  assert.equal(await checkDAGGate(), false, 'invalid graph: false');
  await assert.rejects(H.assertDAGReady(), { message: 'startup DAG is invalid: Dependency not found: missing (required by a)' });
  dag.register({ id: 'missing' });
  assert.equal(await checkDAGGate(), false, 'not initialised: false, as the original');
  await assert.rejects(H.assertDAGReady(), { message: 'startup DAG not initialized yet' });
  await dag.initialize();
  assert.equal(await checkDAGGate(), true);
  dag.reset();
});

function listen(app) {
  return new Promise((resolve) => {
    const server = app.listen(0, '127.0.0.1', () => resolve(server));
  });
}

test("Express: /api/health/ready has the original's checks (database, environment, disk); a database down is 503; requireNodeEnv restores the NODE_ENV rule", async () => {
  const { Pool } = require('pg');
  const db = require('../dist/db-circuit-breaker.js');
  const net = require('node:net');
  const closedPort = await new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
  const saved = { NODE_ENV: process.env.NODE_ENV, DATABASE_URL: process.env.DATABASE_URL };
  delete process.env.NODE_ENV;
  delete process.env.DATABASE_URL;
  const gates = new HealthGates();
  const app = express();
  app.use(createHealthRouter({ gates }));
  app.use('/strict', createHealthRouter({ gates, requireNodeEnv: true }));
  const server = await listen(app);
  const base = `http://127.0.0.1:${server.address().port}`;
  const ready = async (p) => {
    const r = await fetch(base + p, { signal: AbortSignal.timeout(10_000) });
    return { status: r.status, body: await r.json() };
  };
  // A real node-postgres pool against a port nothing listens on: the database is down.
  const pool = new Pool({ host: '127.0.0.1', port: closedPort, user: 'u', password: 'pw-never-shown', database: 'd', connectionTimeoutMillis: 1000 });
  pool.on('error', () => {});
  try {
    let r = await ready('/api/health/ready');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.checks, { database: 'not-configured', healthGates: { ready: true, gates: 0, criticalReady: true }, environment: false, disk: true });

    r = await ready('/strict/api/health/ready');
    assert.equal(r.status, 503, 'NODE_ENV unset with requireNodeEnv: 503, as the original');
    assert.equal(r.body.checks.environment, false);
    process.env.NODE_ENV = 'production';
    r = await ready('/strict/api/health/ready');
    assert.equal(r.status, 200);
    assert.equal(r.body.checks.environment, true);

    db.setDatabase(pool, { logger: null });
    r = await ready('/api/health/ready');
    assert.equal(r.status, 503, 'database down: 503, as the original');
    assert.equal(r.body.checks.database, false);
    assert.equal(typeof r.body.checks.database_error, 'string');
    assert.ok(!JSON.stringify(r.body).includes('pw-never-shown'), 'no secret in the answer');
  } finally {
    db.configureDatabase(null);
    await pool.end().catch(() => {});
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await new Promise((r) => server.close(r));
  }
});

test('Express: /health/live, /health/ready flips 503 ↔ 200 with failing gates and reasons, observability JSON', async () => {
  const gates = new HealthGates();
  const dag = new StartupDAG();
  let dbUp = false;
  gates.registerGate({ serviceId: 'database', name: 'Database', critical: true, requiredPasses: 2, check: async () => { if (!dbUp) throw new Error('ECONNREFUSED 127.0.0.1:5432'); return true; } });
  gates.registerGate({ serviceId: 'search', name: 'Search', critical: false, requiredPasses: 1, check: async () => false });
  dag.register({ id: 'db', critical: true });
  dag.register({ id: 'api', dependencies: ['db'] });
  const app = express();
  app.use(createHealthRouter({ gates, dag, authorize: (req) => req.headers['x-read'] === 'yes' }));
  const server = await listen(app);
  const base = `http://127.0.0.1:${server.address().port}`;
  try {
    const live = await fetch(`${base}/health/live`);
    assert.equal(live.status, 200);
    assert.equal((await live.json()).status, 'alive');
    assert.equal((await fetch(`${base}/api/health/live`)).status, 200, "the original's path too");

    let res = await fetch(`${base}/health/ready`);
    assert.equal(res.status, 503);
    let body = await res.json();
    assert.equal(body.status, 'not-ready');
    assert.deepEqual(body.failing.map((f) => [f.serviceId, f.reason]), [['database', 'not checked yet'], ['search', 'not checked yet']]);

    await gates.checkAllGates();
    body = await (await fetch(`${base}/health/ready`)).json();
    assert.deepEqual(body.failing.map((f) => [f.serviceId, f.critical, f.reason]), [['database', true, 'ECONNREFUSED 127.0.0.1:5432'], ['search', false, 'check returned false']]);

    dbUp = true;
    await gates.checkAllGates();
    res = await fetch(`${base}/api/health/ready`);
    assert.equal(res.status, 503, 'one pass of two');
    await gates.checkAllGates();
    res = await fetch(`${base}/health/ready`);
    assert.equal(res.status, 200);
    body = await res.json();
    assert.equal(body.status, 'degraded');
    assert.equal(body.checks.healthGates.criticalReady, true);
    assert.equal(res.headers.get('cache-control'), 'no-store');

    // Probing many times changes nothing.
    for (let k = 0; k < 20; k++) await (await fetch(`${base}/health/ready`)).arrayBuffer();
    assert.equal(gates.getReadinessSnapshot().gates[0].consecutivePasses, 2);

    assert.equal((await fetch(`${base}/api/observability/health-gates`)).status, 403, 'read endpoints can be closed');
    const hg = await (await fetch(`${base}/api/observability/health-gates`, { headers: { 'x-read': 'yes' } })).json();
    assert.equal(hg.ready, true);
    assert.equal(hg.gates.length, 2);
    assert.equal(typeof hg.timestamp, 'number');

    await dag.initialize();
    const sd = await (await fetch(`${base}/api/observability/startup-dag`, { headers: { 'x-read': 'yes' } })).json();
    assert.deepEqual([sd.total, sd.ready, sd.failed, sd.pending], [2, 2, 0, 0]);
    assert.deepEqual(sd.order, ['db', 'api']);
    assert.deepEqual(sd.levels, [['db'], ['api']]);
    assert.deepEqual(sd.edges, [{ from: 'db', to: 'api' }]);
    assert.equal(sd.outcome, 'ready');

    gates.setShuttingDown(true);
    res = await fetch(`${base}/health/ready`);
    assert.equal(res.status, 503);
    assert.equal((await res.json()).status, 'shutting-down');
  } finally {
    gates.reset();
    await new Promise((r) => server.close(r));
  }
});
