'use strict';
/**
 * The database breaker against a real PostgreSQL (started by
 * helpers/postgres.js, stopped and restarted mid-test), through
 * node-postgres. Never skips: without PostgreSQL installed `before` fails.
 */
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Pool } = require('pg');

const { startPostgres } = require('./helpers/postgres');
const db = require('../dist/db-circuit-breaker.js');
const { getCircuitBreakerRegistry, configureCircuitBreakers, CircuitOpenError, CircuitTimeoutError } = require('../dist/circuit-breaker.js');
const root = require('../dist/index.js');

const FILE_STARTED = performance.now();
const PASSWORD = 'pw-Zq81-never-logged';
const SECRET_ARG = 'arg-Xk42-never-logged';
const logs = [];
const capture = { log: (...a) => logs.push(a.join(' ')), warn: (...a) => logs.push(a.join(' ')), error: (...a) => logs.push(a.join(' ')) };
let pg;
let pool;
let calls = 0;

/** Configures the package over `pool`, counting every statement it sends. */
function configure(extra = {}) {
  db.configureDatabase({
    execute: (sql, args) => {
      calls++;
      return pool.query(sql, args);
    },
    db: pool,
    connect: () => pool.connect(),
    logger: capture,
    // Small numbers so the outage test is quick; breakers keep the options they were created with.
    breaker: { failureThreshold: 3, resetTimeout: 400 },
    retryDelayMs: 20,
    ...extra,
  });
}

const state = (name) => getCircuitBreakerRegistry().get(name).getState();

/** Repeats `fn` until it returns true, at most `ms`. */
async function eventually(what, fn, ms = 10_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > deadline) assert.fail(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

before(async () => {
  configureCircuitBreakers({ logger: capture });
  pg = await startPostgres();
  // Trust auth ignores the password; it is here to prove it never reaches a log.
  pool = new Pool({ connectionString: `postgres://postgres:${PASSWORD}@127.0.0.1:${pg.port}/postgres`, max: 4, connectionTimeoutMillis: 2000 });
  pool.on('error', () => {}); // idle connections die when the server is stopped
  await pool.query('CREATE TABLE users (id serial PRIMARY KEY, email text UNIQUE NOT NULL)');
});

after(async () => {
  await pool?.end().catch(() => undefined);
  await pg?.cleanup();
  const ms = Math.round(performance.now() - FILE_STARTED);
  console.log(`# db-circuit-breaker.test.js took ${ms} ms`);
});

test('classifyDatabaseError: server trouble is transient, statement trouble is the client\'s', () => {
  const err = (props, C = Error) => Object.assign(new C('x'), props);
  const transient = [
    err({ code: 'ECONNREFUSED' }), err({ code: 'ECONNRESET' }), err({ code: 'ETIMEDOUT' }), err({ code: 'EPIPE' }),
    err({ code: '53300' }), err({ code: '08006' }), err({ code: '08001' }), err({ code: '57P01' }), err({ code: '57P03' }),
    err({ code: '57014' }), err({ code: '58030' }), err({ code: 'XX000' }),
    new Error('Connection terminated unexpectedly'), new Error('timeout exceeded when trying to connect'),
    new CircuitTimeoutError('database', 5000),
    err({ cause: err({ code: 'ECONNREFUSED' }) }), // drizzle-style wrapper
    Object.assign(new AggregateError([err({ code: 'ECONNREFUSED' })], 'x')),
    new Error('some unknown driver failure'), // like the original: unknown errors count
  ];
  const client = [
    err({ code: '23505' }), err({ code: '23503' }), err({ code: '23502' }), err({ code: '42601' }), err({ code: '42P01' }),
    err({ code: '22P02' }), err({ code: '40001' }), err({ code: '40P01' }), err({ code: '25P02' }),
    new TypeError('bad'), new RangeError('bad'),
    err({ cause: err({ code: '23505' }) }),
  ];
  for (const e of transient) assert.equal(db.classifyDatabaseError(e), 'transient', `${e.code ?? e.message}`);
  for (const e of client) assert.equal(db.classifyDatabaseError(e), 'client', `${e.code ?? e.message}`);
  // Retried only when the statement certainly never ran.
  for (const c of ['ECONNREFUSED', '53300', '57P03', '08001']) assert.equal(db.isRetryableDatabaseError(err({ code: c })), true, c);
  for (const c of ['ECONNRESET', 'ETIMEDOUT', 'EPIPE', '57P01', '57014', '23505', '42601']) assert.equal(db.isRetryableDatabaseError(err({ code: c })), false, c);
  assert.equal(db.isRetryableDatabaseError(new CircuitTimeoutError('database', 1)), false);
});

test('bad input names the field; a missing database never trips a breaker', async () => {
  db.configureDatabase(null);
  assert.throws(() => db.configureDatabase({}), { name: 'TypeError', message: /execute/ });
  assert.throws(() => db.configureDatabase({ execute: 'SELECT 1' }), { name: 'TypeError', message: /execute/ });
  assert.throws(() => db.configureDatabase({ execute() {}, connect: 1 }), { name: 'TypeError', message: /connect/ });
  assert.throws(() => db.configureDatabase({ execute() {}, retries: -1 }), { name: 'RangeError', message: /retries/ });
  assert.throws(() => db.setDatabase(null), { name: 'TypeError', message: /db/ });
  assert.throws(() => db.setDatabase({}), { name: 'TypeError', message: /execute or query/ });
  assert.throws(() => db.databaseGate({ timeoutMs: 0 }), { name: 'RangeError', message: /timeoutMs/ });

  await assert.rejects(db.executeWithCircuitBreaker('SELECT 1'), { name: 'DatabaseNotConfiguredError', code: 'ERR_DATABASE_NOT_CONFIGURED' });
  await assert.rejects(db.executeWithCircuitBreaker('users', async () => 1), { name: 'DatabaseNotConfiguredError' });
  await assert.rejects(db.executeDirect(async () => 1), { name: 'DatabaseNotConfiguredError' });
  assert.equal(getCircuitBreakerRegistry().has('database'), false, 'no breaker was created for a missing database');

  configure();
  await assert.rejects(db.executeWithCircuitBreaker(42), { name: 'TypeError', message: /sql must be a string/ });
  await assert.rejects(db.executeWithCircuitBreaker({ sql: 'SELECT 1' }), { name: 'TypeError', message: /sql/ });
  await assert.rejects(db.executeWithCircuitBreaker('SELECT 1', 'x'), { name: 'TypeError', message: /args must be an array/ });
  await assert.rejects(db.executeWithCircuitBreaker('   '), { name: 'RangeError', message: /sql/ });
  await assert.rejects(db.executeDirect(null), { name: 'TypeError', message: /sql/ });
  await assert.rejects(db.executeWithCircuitBreaker('', async () => 1), { name: 'RangeError', message: /name/ });
  assert.equal(typeof root.executeWithCircuitBreaker, 'function', 'the package root re-exports the module');
});

test('version A (sql, args) runs on breaker "database"; version B (name, fn) on "db-<name>"; executeDirect both forms', async () => {
  configure();
  const a = await db.executeWithCircuitBreaker('SELECT $1::int + 1 AS x', [41]);
  assert.equal(a.rows[0].x, 42);
  assert.equal(state('database').state, 'closed');

  const b = await db.executeWithCircuitBreaker('load-user', async (client, signal) => {
    assert.equal(client, pool, 'the callback receives the configured db');
    assert.ok(signal instanceof AbortSignal, 'and the call\'s AbortSignal');
    return (await client.query('SELECT current_database() AS d')).rows[0].d;
  });
  assert.equal(b, 'postgres');
  assert.ok(getCircuitBreakerRegistry().has('db-load-user'));

  assert.equal((await db.executeDirect('SELECT $1::text AS t', ['x'])).rows[0].t, 'x');
  assert.equal(await db.executeDirect(async (client) => (await client.query('SELECT 7 AS n')).rows[0].n), 7);
});

test('setDatabase(pool) adapts a node-postgres Pool', async () => {
  db.setDatabase(pool, { logger: capture });
  const r = await db.executeWithCircuitBreaker('SELECT 1 AS one');
  assert.equal(r.rows[0].one, 1);
  assert.equal(db.getDatabase(), pool);
  assert.equal(await db.databaseGate().check(), true);
});

test('a unique violation or a syntax error passes through, is not retried and never opens the breaker', async () => {
  configure();
  await db.executeWithCircuitBreaker('INSERT INTO users (email) VALUES ($1)', ['a@example.com']);
  const before = calls;
  for (let i = 0; i < 12; i++) {
    await assert.rejects(db.executeWithCircuitBreaker('INSERT INTO users (email) VALUES ($1)', ['a@example.com']), { code: '23505' });
    await assert.rejects(db.executeWithCircuitBreaker('SELEC 1'), { code: '42601' });
    await assert.rejects(
      db.executeWithCircuitBreaker('signup', (c) => c.query('INSERT INTO users (email) VALUES ($1)', ['a@example.com'])),
      { code: '23505' },
    );
  }
  assert.equal(calls - before, 24, 'one statement per call: client errors are not retried');
  for (const name of ['database', 'db-signup']) {
    assert.deepEqual({ ...state(name), lastFailureTime: null }, { state: 'closed', failureCount: 0, lastFailureTime: null }, name);
  }
});

test('a per-call timeout fails the call with CircuitTimeoutError and counts as a failure', async () => {
  configure({ breaker: { timeout: 300, failureThreshold: 5 } });
  const t0 = performance.now();
  await assert.rejects(db.executeWithCircuitBreaker('slow-report', (c) => c.query('SELECT pg_sleep(1.5)')), CircuitTimeoutError);
  const ms = performance.now() - t0;
  assert.ok(ms >= 250 && ms < 1200, `timed out after ${Math.round(ms)} ms`);
  assert.equal(state('db-slow-report').failureCount, 1);
});

test('databaseGate(): shape, SELECT 1 with a timeout, and the original\'s "no DATABASE_URL" rule', async () => {
  const gate = db.databaseGate();
  assert.deepEqual(
    { serviceId: gate.serviceId, name: gate.name, critical: gate.critical, requiredConsecutivePasses: gate.requiredConsecutivePasses },
    { serviceId: 'database', name: 'Database', critical: true, requiredConsecutivePasses: 3 },
  );
  configure();
  assert.equal(await gate.check(), true);

  // A database that never answers: false after the gate's timeout, not later.
  db.configureDatabase({ execute: () => new Promise(() => {}), logger: null });
  const t0 = performance.now();
  assert.equal(await db.databaseGate({ timeoutMs: 150 }).check(), false);
  assert.ok(performance.now() - t0 < 1000);

  db.configureDatabase(null);
  const saved = process.env.DATABASE_URL;
  try {
    delete process.env.DATABASE_URL;
    assert.equal(await gate.check(), true, 'no DATABASE_URL and no database: healthy, as the original');
    process.env.DATABASE_URL = 'postgres://example.invalid/db';
    assert.equal(await gate.check(), false, 'DATABASE_URL set but nothing configured: not healthy');
  } finally {
    if (saved === undefined) delete process.env.DATABASE_URL;
    else process.env.DATABASE_URL = saved;
  }
});

test('server stopped mid-test: the breaker opens; after a restart it closes again', async () => {
  const registry = getCircuitBreakerRegistry();
  assert.equal(registry.has('db-orders'), false);
  configure();
  const orders = () => db.executeWithCircuitBreaker('orders', (c) => c.query('SELECT count(*)::int AS n FROM users WHERE email <> $1', [SECRET_ARG]));
  assert.equal((await orders()).rows[0].n, 1);

  await pg.stop();
  assert.equal(await db.databaseGate({ timeoutMs: 1000 }).check(), false, 'the gate fails while the server is down');
  // The original's checkDatabaseHealth / checkDatabaseGate resolved false here; the assert variant says why.
  assert.equal(await root.checkDatabaseHealth(), false, 'database down: resolves false, as the original');
  assert.equal(await root.checkDatabaseGate(), false);
  await assert.rejects(root.assertDatabaseHealthy(), (e) => e instanceof Error && !e.message.includes(PASSWORD));
  let sent = calls;
  for (let i = 0; i < 3; i++) {
    await assert.rejects(db.executeWithCircuitBreaker('SELECT 1'), (e) => db.classifyDatabaseError(e) === 'transient');
  }
  assert.equal(calls - sent, 9, 'connection refused is retried twice per call (3 attempts)');
  assert.equal(state('database').state, 'open');
  sent = calls;
  const t0 = performance.now();
  await assert.rejects(db.executeWithCircuitBreaker('SELECT 1'), CircuitOpenError);
  assert.ok(performance.now() - t0 < 50, 'an open breaker rejects at once');
  assert.equal(calls, sent, 'without touching the database');

  for (let i = 0; i < 3; i++) await assert.rejects(orders());
  assert.equal(state('db-orders').state, 'open');
  await assert.rejects(orders(), { name: 'CircuitOpenError', message: 'Circuit breaker db-orders is OPEN (too many failures)' });

  await pg.start();
  // After resetTimeout a trial goes through; two good trials close it.
  await eventually('db-orders closes', async () => {
    await orders().catch(() => undefined);
    return state('db-orders').state === 'closed';
  });
  await eventually('database closes', async () => {
    await db.executeWithCircuitBreaker('SELECT 1').catch(() => undefined);
    return state('database').state === 'closed';
  });
  assert.equal((await orders()).rows[0].n, 1);
  assert.equal(await db.databaseGate().check(), true);
  assert.equal(await root.checkDatabaseHealth(), true, 'up again');

  const text = logs.join('\n');
  assert.match(text, /Circuit OPENED/, 'the breaker logged its opening');
  assert.ok(!text.includes(PASSWORD), 'no password in the logs');
  assert.ok(!text.includes(SECRET_ARG), 'no SQL argument in the logs');
});

test('classification is configurable', async () => {
  // Treat unique violations as failures (silly, but proves the hook).
  configure({ classifyError: (e) => (e && e.code === '23505' ? 'transient' : undefined), breaker: { failureThreshold: 2, resetTimeout: 60_000 } });
  const dup = () => db.executeWithCircuitBreaker('strict', (c) => c.query('INSERT INTO users (email) VALUES ($1)', ['a@example.com']));
  await assert.rejects(dup(), { code: '23505' });
  await assert.rejects(dup(), { code: '23505' });
  assert.equal(state('db-strict').state, 'open');
  // Other codes still use the default table.
  await assert.rejects(db.executeWithCircuitBreaker('lenient', (c) => c.query('SELEC')), { code: '42601' });
  assert.equal(state('db-lenient').failureCount, 0);
});

test('setDatabase(drizzle(pool)): SQL text goes through $client, callbacks get the drizzle db', async () => {
  const { drizzle } = require('drizzle-orm/node-postgres');
  const { sql } = require('drizzle-orm');
  const d = drizzle(pool);
  db.setDatabase(d, { logger: capture });
  assert.equal((await db.executeWithCircuitBreaker('SELECT $1::int * 2 AS x', [21])).rows[0].x, 42);
  const r = await db.executeWithCircuitBreaker('drizzle-read', (client) => {
    assert.equal(client, d);
    return client.execute(sql`SELECT ${'v'}::text AS v`);
  });
  assert.equal(r.rows[0].v, 'v');
  assert.equal((await db.executeDirect((client) => client.execute(sql`SELECT 3 AS n`))).rows[0].n, 3);
  await assert.rejects(db.executeWithCircuitBreaker('drizzle-dup', (client) => client.execute(sql`INSERT INTO users (email) VALUES (${'a@example.com'})`)), (e) => {
    assert.equal(db.classifyDatabaseError(e), 'client', 'drizzle wraps the pg error; the cause is found');
    return true;
  });
  assert.equal(state('db-drizzle-dup').failureCount, 0);
});

test('setDatabase({ execute }) uses the original call shape; migrations then ask for connect', async () => {
  const seen = [];
  db.setDatabase({ execute: async (q) => (seen.push(q), { rows: [] }) }, { logger: null });
  await db.executeWithCircuitBreaker('SELECT $1', [SECRET_ARG]);
  assert.deepEqual(seen, [{ sql: 'SELECT $1', args: [SECRET_ARG] }]);
  const mig = require('../dist/migrations.js');
  mig.registerMigration({ name: 'needs_connect', up: async () => {} });
  try {
    await assert.rejects(mig.runMigrations(), { name: 'TypeError', message: /^connect/ });
  } finally {
    mig.clearMigrations();
  }
});
