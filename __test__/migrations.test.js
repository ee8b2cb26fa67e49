'use strict';
/**
 * Migrations against a real PostgreSQL (helpers/postgres.js): idempotence,
 * one transaction per migration, rollback, changed checksums, the advisory
 * lock (two processes racing runMigrations), and the shipped example
 * (type-checked with tsc and run). Never skips.
 */
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { fork, execFile } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { Pool } = require('pg');

const { startPostgres } = require('./helpers/postgres');
const dbm = require('../dist/db-circuit-breaker.js');
const mig = require('../dist/migrations.js');

const ROOT = path.resolve(__dirname, '..');
const FILE_STARTED = performance.now();
const logs = [];
const capture = { log: (...a) => logs.push(a.join(' ')), warn: (...a) => logs.push(a.join(' ')), error: (...a) => logs.push(a.join(' ')) };
let pg;
let pool;
const children = new Set();
const tmpFiles = [];

before(async () => {
  pg = await startPostgres();
  pool = new Pool({ ...pg.config, max: 4 });
  pool.on('error', () => {});
});

after(async () => {
  for (const c of children) c.kill('SIGKILL');
  for (const f of tmpFiles) fs.rmSync(f, { recursive: true, force: true });
  await pool?.end().catch(() => undefined);
  await pg?.cleanup();
  console.log(`# migrations.test.js took ${Math.round(performance.now() - FILE_STARTED)} ms`);
});

const rows = async (sql, args = []) => (await pool.query(sql, args)).rows;
const tableExists = async (name) => (await rows('SELECT to_regclass($1) IS NOT NULL AS t', [name]))[0].t;

function useDb() {
  dbm.setDatabase(pool, { logger: capture });
}

test('with nothing registered and no database, runMigrations() resolves saying nothing ran', async () => {
  dbm.configureDatabase(null);
  mig.clearMigrations();
  const r = await mig.runMigrations();
  assert.deepEqual({ ...r, durationMs: 0 }, { applied: [], alreadyApplied: [], reason: 'no-migrations', durationMs: 0 });
  const s = await mig.getMigrationStatus();
  assert.equal(s.configured, false);
  assert.deepEqual(s.migrations, []);

  mig.registerMigration({ name: 'needs_db', up: async () => {} });
  await assert.rejects(mig.runMigrations(), { name: 'DatabaseNotConfiguredError' });
  assert.deepEqual((await mig.getMigrationStatus()).pending, ['needs_db']);
  mig.clearMigrations();
});

test('registerMigration rejects bad input, naming the field', async () => {
  mig.clearMigrations();
  const up = async () => {};
  assert.throws(() => mig.registerMigration(null), { name: 'TypeError', message: /migration/ });
  assert.throws(() => mig.registerMigration({ name: 1, up }), { name: 'TypeError', message: /^name/ });
  assert.throws(() => mig.registerMigration({ name: 'has space', up }), { name: 'RangeError', message: /^name/ });
  assert.throws(() => mig.registerMigration({ name: '', up }), { name: 'RangeError', message: /^name/ });
  assert.throws(() => mig.registerMigration({ name: 'x'.repeat(201), up }), { name: 'RangeError', message: /^name/ });
  assert.throws(() => mig.registerMigration({ name: 'a', up: 'CREATE TABLE a()' }), { name: 'TypeError', message: /^up/ });
  assert.throws(() => mig.registerMigration({ name: 'a', up, down: 'DROP TABLE a' }), { name: 'TypeError', message: /^down/ });
  assert.throws(() => mig.registerMigration({ name: 'a', up, checksum: 5 }), { name: 'TypeError', message: /^checksum/ });
  assert.throws(() => mig.registerMigration({ name: 'a', up, transaction: 'no' }), { name: 'TypeError', message: /^transaction/ });
  const m = mig.registerMigration({ name: 'a', up });
  assert.match(m.checksum, /^[0-9a-f]{64}$/);
  assert.equal(m.hasDown, false);
  assert.throws(() => mig.registerMigration({ name: 'a', up }), { name: 'RangeError', message: /already registered/ });
  assert.equal(mig.registerMigration({ name: 'b', up, checksum: 'v1' }).checksum, 'v1');
  await assert.rejects(mig.rollbackMigration(7), { name: 'TypeError', message: /^name/ });
  mig.clearMigrations();
});

test('applies pending migrations in order, each in a transaction, and is idempotent', async () => {
  useDb();
  mig.clearMigrations();
  const T = { tableName: 'mig_apply' };
  const ran = [];
  mig.registerMigration({
    name: '0001_accounts',
    async up({ query }) {
      ran.push('0001');
      await query('CREATE TABLE accounts (id serial PRIMARY KEY, email text)');
    },
    async down({ query }) {
      await query('DROP TABLE accounts');
    },
  });
  mig.registerMigration({
    name: '0002_accounts_email_unique',
    async up({ query }) {
      ran.push('0002');
      // Inside the migration's transaction: the first migration is visible, this one not yet committed.
      const r = await query("SELECT count(*)::int AS n FROM mig_apply WHERE name = '0002_accounts_email_unique'");
      assert.equal(r.rows[0].n, 0);
      await query('CREATE UNIQUE INDEX accounts_email ON accounts (email)');
    },
    async down({ query }) {
      await query('DROP INDEX accounts_email');
    },
  });
  const r1 = await mig.runMigrations(T);
  assert.deepEqual(r1.applied, ['0001_accounts', '0002_accounts_email_unique']);
  assert.deepEqual(r1.alreadyApplied, []);
  assert.equal(await tableExists('accounts'), true);
  const recorded = await rows('SELECT name, checksum, execution_ms FROM mig_apply ORDER BY id');
  assert.deepEqual(recorded.map((x) => x.name), ['0001_accounts', '0002_accounts_email_unique']);
  assert.deepEqual(recorded.map((x) => x.checksum), mig.getRegisteredMigrations().map((m) => m.checksum));

  const r2 = await mig.runMigrations(T);
  assert.deepEqual(r2.applied, []);
  assert.deepEqual(r2.alreadyApplied, ['0001_accounts', '0002_accounts_email_unique']);
  assert.deepEqual(ran, ['0001', '0002'], 'nothing ran twice');

  const s = await mig.getMigrationStatus(T);
  assert.equal(s.configured, true);
  assert.deepEqual(s.applied, ['0001_accounts', '0002_accounts_email_unique']);
  assert.deepEqual(s.pending, []);
  assert.ok(s.migrations.every((m) => m.status === 'applied' && m.appliedAt instanceof Date));
  assert.ok(logs.some((l) => l.includes('Applied 0001_accounts')));
});

test('a failing migration is rolled back entirely, is not recorded, and stops the run', async () => {
  useDb();
  mig.clearMigrations();
  const T = { tableName: 'mig_fail' };
  mig.registerMigration({ name: 'f1_ok', up: ({ query }) => query('CREATE TABLE f1 (id int)') });
  mig.registerMigration({
    name: 'f2_broken',
    async up({ query }) {
      await query('CREATE TABLE f2 (id int)');
      await query('INSERT INTO f2 VALUES (1)');
      await query('ALTER TABLE f2 ADD COLUMN oops nonexistent_type');
    },
  });
  mig.registerMigration({ name: 'f3_never', up: ({ query }) => query('CREATE TABLE f3 (id int)') });
  await assert.rejects(mig.runMigrations(T), (e) => {
    assert.equal(e.name, 'MigrationError');
    assert.equal(e.migration, 'f2_broken');
    assert.equal(e.phase, 'up');
    assert.equal(e.cause.code, '42704');
    return true;
  });
  assert.equal(await tableExists('f1'), true, 'the earlier migration stays applied');
  assert.equal(await tableExists('f2'), false, 'the failed migration left nothing behind');
  assert.equal(await tableExists('f3'), false, 'later migrations did not run');
  assert.deepEqual((await rows('SELECT name FROM mig_fail')).map((x) => x.name), ['f1_ok']);
  const s = await mig.getMigrationStatus(T);
  assert.deepEqual(s.pending, ['f2_broken', 'f3_never']);
  // The lock was released and the connection is usable: a fixed run goes on.
  mig.clearMigrations();
  mig.registerMigration({ name: 'f1_ok', up: ({ query }) => query('CREATE TABLE f1 (id int)') });
  assert.deepEqual((await mig.runMigrations(T)).alreadyApplied, ['f1_ok']);
});

test('rollbackMigration runs down() in a transaction and forgets the record; order is enforced', async () => {
  useDb();
  mig.clearMigrations();
  const T = { tableName: 'mig_rollback' };
  const r1 = mig.registerMigration({
    name: 'r1_table',
    up: ({ query }) => query('CREATE TABLE r1 (id int)'),
    down: ({ query }) => query('DROP TABLE r1'),
  });
  mig.registerMigration({
    name: 'r2_column',
    up: ({ query }) => query('ALTER TABLE r1 ADD COLUMN note text'),
    down: ({ query }) => query('ALTER TABLE r1 DROP COLUMN note'),
  });
  mig.registerMigration({ name: 'r3_no_down', up: async () => {} });
  await mig.runMigrations(T);

  await assert.rejects(mig.rollbackMigration('r1_table', T), /applied after it and still applied: r2_column, r3_no_down/);
  await assert.rejects(mig.rollbackMigration('r3_no_down', T), { name: 'TypeError', message: /^down/ });
  await assert.rejects(mig.rollbackMigration('nope', T), { name: 'RangeError', message: /not a registered migration/ });

  assert.deepEqual(await mig.rollbackMigration('r2_column', { ...T, force: true }), { name: 'r2_column', rolledBack: true });
  const cols = await rows("SELECT column_name FROM information_schema.columns WHERE table_name = 'r1'");
  assert.deepEqual(cols.map((c) => c.column_name), ['id']);
  assert.deepEqual(await mig.rollbackMigration('r2_column', T), { name: 'r2_column', rolledBack: false, reason: 'not-applied' });
  assert.deepEqual((await mig.getMigrationStatus(T)).pending, ['r2_column']);
  assert.deepEqual((await mig.runMigrations(T)).applied, ['r2_column'], 'a rolled-back migration can be applied again');
  await mig.rollbackMigration('r3_no_down', T).catch(() => undefined);
  assert.deepEqual(await mig.rollbackMigration('r2_column', { ...T, force: true }), { name: 'r2_column', rolledBack: true });

  // A down() that fails leaves the migration applied.
  mig.clearMigrations();
  mig.registerMigration({ name: 'r1_table', up: ({ query }) => query('CREATE TABLE r1 (id int)'), down: ({ query }) => query('DROP TABLE r1'), checksum: r1.checksum });
  mig.registerMigration({ name: 'r9_bad_down', up: async () => {}, down: ({ query }) => query('DROP TABLE does_not_exist') });
  await mig.runMigrations(T);
  await assert.rejects(mig.rollbackMigration('r9_bad_down', T), { name: 'MigrationError', phase: 'down' });
  assert.ok((await mig.getMigrationStatus(T)).applied.includes('r9_bad_down'));

  await assert.rejects(mig.rollbackLastMigration(T), { name: 'MigrationError', migration: 'r9_bad_down' });
});

test('a changed applied migration is an error before anything runs; an explicit checksum is honoured', async () => {
  useDb();
  mig.clearMigrations();
  const T = { tableName: 'mig_checksum' };
  mig.registerMigration({ name: 'c1', up: ({ query }) => query('CREATE TABLE c1 (id int)') });
  await mig.runMigrations(T);

  mig.clearMigrations();
  mig.registerMigration({ name: 'c1', up: ({ query }) => query('CREATE TABLE c1 (id bigint)') }); // edited after it ran
  mig.registerMigration({ name: 'c2', up: ({ query }) => query('CREATE TABLE c2 (id int)') });
  await assert.rejects(mig.runMigrations(T), (e) => {
    assert.equal(e.name, 'MigrationChecksumError');
    assert.equal(e.migration, 'c1');
    assert.match(e.message, /was changed after it was applied/);
    return true;
  });
  assert.equal(await tableExists('c2'), false, 'nothing ran');
  const s = await mig.getMigrationStatus(T);
  assert.deepEqual(s.changed, ['c1']);
  assert.equal(s.migrations[0].status, 'changed');

  // Accepting a cosmetic edit: register with the recorded checksum.
  const recorded = (await rows("SELECT checksum FROM mig_checksum WHERE name = 'c1'"))[0].checksum;
  mig.clearMigrations();
  mig.registerMigration({ name: 'c1', up: async () => { /* reformatted */ }, checksum: recorded });
  mig.registerMigration({ name: 'c2', up: ({ query }) => query('CREATE TABLE c2 (id int)') });
  assert.deepEqual((await mig.runMigrations(T)).applied, ['c2']);
});

test('the migration lock: a run waits for another holder and gives up after lockTimeoutMs', async () => {
  useDb();
  mig.clearMigrations();
  const T = { tableName: 'mig_lock', lockKey: 424242n };
  mig.registerMigration({ name: 'l1', up: async () => {} });
  const holder = await pool.connect();
  try {
    await holder.query('SELECT pg_advisory_lock(424242)');
    const t0 = performance.now();
    await assert.rejects(mig.runMigrations({ ...T, lockTimeoutMs: 300 }), { name: 'MigrationLockTimeoutError' });
    const ms = performance.now() - t0;
    assert.ok(ms >= 250 && ms < 3000, `gave up after ${Math.round(ms)} ms`);
    const pending = mig.runMigrations({ ...T, lockTimeoutMs: 10_000 });
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(await tableExists('mig_lock'), false, 'still waiting for the lock');
    await holder.query('SELECT pg_advisory_unlock(424242)');
    assert.deepEqual((await pending).applied, ['l1']);
  } finally {
    holder.release();
  }
  // The lock is not left behind on a pooled connection.
  const held = await rows("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND granted");
  assert.equal(held[0].n, 0);
});

test('two processes racing runMigrations(): each migration runs exactly once', async () => {
  await pool.query('CREATE TABLE race_log (migration text NOT NULL, pid int NOT NULL, at timestamptz DEFAULT clock_timestamp())');
  const table = 'mig_race';
  const spawnOne = () => {
    const c = fork(path.join(__dirname, 'helpers', 'migrate-child.js'), [], {
      env: { ...process.env, RC_PG_CONFIG: JSON.stringify(pg.config), RC_MIGRATIONS_TABLE: table, NODE_TEST_CONTEXT: '' },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      timeout: 30_000,
    });
    children.add(c);
    c.once('exit', () => children.delete(c));
    const ready = new Promise((resolve, reject) => {
      c.once('message', (m) => (m === 'ready' ? resolve() : reject(new Error(`unexpected ${JSON.stringify(m)}`))));
      c.once('exit', (code) => reject(new Error(`child exited early (${code})`)));
    });
    const result = ready.then(
      () =>
        new Promise((resolve, reject) => {
          c.once('message', resolve);
          c.once('exit', (code) => reject(new Error(`child exited without a result (${code})`)));
        }),
    );
    return { c, ready, result };
  };
  const a = spawnOne();
  const b = spawnOne();
  await Promise.all([a.ready, b.ready]);
  a.c.send('go');
  b.c.send('go');
  const [ra, rb] = await Promise.all([a.result, b.result]);
  assert.ok(ra.ok, ra.error);
  assert.ok(rb.ok, rb.error);
  const all = ['race_1', 'race_2', 'race_3'];
  assert.deepEqual([...ra.applied, ...rb.applied].sort(), all, 'between them, every migration was applied once');
  assert.deepEqual([...ra.alreadyApplied, ...rb.alreadyApplied].sort(), all, 'and the other found it applied');
  const log = await rows('SELECT migration, count(*)::int AS n FROM race_log GROUP BY migration ORDER BY migration');
  assert.deepEqual(log, all.map((m) => ({ migration: m, n: 1 })), 'each up() ran exactly once');
  assert.deepEqual((await rows('SELECT name FROM mig_race ORDER BY id')).map((x) => x.name), all);
});

test('the shipped example migration type-checks and runs (expand, backfill, constrain) and rolls back', async () => {
  // Type-check as a user's project would see it (package self-reference through "exports").
  const dir = path.join(ROOT, '.tmp', `example-${crypto.randomBytes(4).toString('hex')}`);
  fs.mkdirSync(dir, { recursive: true });
  tmpFiles.push(dir);
  const tsconfig = path.join(dir, 'tsconfig.json');
  fs.writeFileSync(tsconfig, JSON.stringify({
    compilerOptions: { module: 'node16', moduleResolution: 'node16', target: 'ES2022', strict: true, noEmit: true, skipLibCheck: true, types: ['node'], typeRoots: [path.join(ROOT, 'node_modules', '@types')] },
    files: [path.join(ROOT, 'migrations', 'example-migration.ts')],
  }));
  const tsc = await new Promise((resolve) => {
    execFile(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', tsconfig], { timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? (error.code ?? 1) : 0, out: stdout + stderr }),
    );
  });
  assert.equal(tsc.code, 0, `tsc on migrations/example-migration.ts:\n${tsc.out}`);

  // Run it: transpile, load it from inside the package (same dist instance), migrate.
  const ts = require('typescript');
  const src = fs.readFileSync(path.join(ROOT, 'migrations', 'example-migration.ts'), 'utf8');
  const js = ts.transpileModule(src, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true } }).outputText;
  const file = path.join(dir, 'example-migration.js');
  fs.writeFileSync(file, js);
  useDb();
  mig.clearMigrations();
  const T = { tableName: 'mig_example' };
  await pool.query("CREATE TABLE reliability_events (id bigserial PRIMARY KEY, service text NOT NULL, kind text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())");
  await pool.query("INSERT INTO reliability_events (service, kind) SELECT 'api', 'restart' FROM generate_series(1, 2500)");
  const registered = require(file).default;
  assert.equal(registered.length, 4);
  const r = await mig.runMigrations(T);
  assert.deepEqual(r.applied, registered.map((m) => m.name));
  assert.deepEqual(await rows('SELECT severity, count(*)::int AS n FROM reliability_events GROUP BY severity'), [{ severity: 'info', n: 2500 }]);
  await assert.rejects(pool.query("INSERT INTO reliability_events (service, kind) VALUES ('api', 'x')"), { code: '23514' });
  const con = await rows("SELECT convalidated FROM pg_constraint WHERE conname = 'reliability_events_severity_not_null'");
  assert.deepEqual(con, [{ convalidated: true }]);

  for (const m of [...registered].reverse()) assert.equal((await mig.rollbackMigration(m.name, T)).rolledBack, true, m.name);
  assert.equal(await tableExists('reliability_events'), false);
  assert.deepEqual((await mig.getMigrationStatus(T)).applied, []);
});

test('a drizzle db works too: migrations take a connection from db.$client', async () => {
  const { drizzle } = require('drizzle-orm/node-postgres');
  dbm.setDatabase(drizzle(pool), { logger: null });
  mig.clearMigrations();
  mig.registerMigration({ name: 'd1', up: ({ query }) => query('CREATE TABLE d1 (id int)'), down: ({ query }) => query('DROP TABLE d1') });
  assert.deepEqual((await mig.runMigrations({ tableName: 'mig_drizzle' })).applied, ['d1']);
  assert.equal(await tableExists('d1'), true);
  assert.equal((await mig.rollbackLastMigration({ tableName: 'mig_drizzle' })).rolledBack, true);
  assert.equal(await tableExists('d1'), false);
});

test('a single pg.Client works too: it is its own migration session', async () => {
  const { Client } = require('pg');
  const client = new Client(pg.config);
  client.on('error', () => {});
  await client.connect();
  try {
    dbm.setDatabase(client, { logger: null });
    assert.equal((await dbm.executeWithCircuitBreaker('SELECT 5 AS n')).rows[0].n, 5);
    mig.clearMigrations();
    mig.registerMigration({ name: 'k1', up: ({ query }) => query('CREATE TABLE k1 (id int)'), down: ({ query }) => query('DROP TABLE k1') });
    assert.deepEqual((await mig.runMigrations({ tableName: 'mig_client' })).applied, ['k1']);
    assert.equal((await mig.rollbackMigration('k1', { tableName: 'mig_client' })).rolledBack, true);
    assert.equal(await tableExists('k1'), false);
    assert.equal((await client.query('SELECT 1 AS one')).rows[0].one, 1, 'the client is still usable (not released or ended)');
  } finally {
    await client.end();
  }
});

test('initializeReliabilitySystem() runs registered migrations first; the database gate runs SELECT 1', async () => {
  const L = require('../dist/dag-loader.js');
  const { HealthGates } = require('../dist/entries/health-gates.js');
  L.configureStartupLogging({ logger: null });
  useDb();
  mig.clearMigrations();
  const table = `reliability_init_${crypto.randomBytes(4).toString('hex')}`;
  mig.registerMigration({ name: `${table}_create`, up: (ctx) => ctx.query(`CREATE TABLE ${table} (id int)`), down: (ctx) => ctx.query(`DROP TABLE ${table}`) });
  const root = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'init-'));
  tmpFiles.push(root);
  fs.mkdirSync(path.join(root, 'deploy'));
  fs.writeFileSync(path.join(root, 'deploy', 'graph.json'), JSON.stringify({ services: [{ id: 'database', name: 'DB', critical: true, healthCheckModule: 'server/core/startup-dag', healthCheckFunction: 'checkDatabaseHealth' }] }));
  const gates = new HealthGates();
  const dag = new L.StartupDAG();
  try {
    const r = await L.initializeReliabilitySystem({ root, dag, gates, checkIntervalMs: 60_000 });
    assert.deepEqual(r.steps.map((s) => [s.step, s.ok]), [['migrations', true], ['queues', true], ['graph', true], ['health-gates', true], ['startup', true]]);
    assert.equal(r.steps[0].detail, '1 applied, 0 already applied');
    // The original's queue-registry step: its four Spine queues, once.
    const queues = await rows('SELECT name, type FROM queue_registry ORDER BY name');
    assert.deepEqual(queues, [
      { name: 'agent-commands', type: 'queue' },
      { name: 'agent-responses', type: 'queue' },
      { name: 'dead-letter', type: 'queue' },
      { name: 'dreamnet-events', type: 'topic' },
    ]);
    const gates2 = new HealthGates();
    try {
      const again = await L.initializeReliabilitySystem({ root, dag: new L.StartupDAG(), gates: gates2, checkIntervalMs: 60_000, migrate: false });
      assert.equal(again.steps.find((s) => s.step === 'queues').detail, '0 created, 4 already there', 'idempotent');
    } finally {
      gates2.reset();
    }
    assert.equal((await rows('SELECT count(*)::int AS n FROM queue_registry'))[0].n, 4);
    assert.equal(await tableExists(table), true);
    assert.equal(r.startup.outcome, 'ready', 'the database node passed its SELECT 1 health check');
    const db = await gates.checkGate('database');
    assert.equal(db.lastResult, true);
  } finally {
    gates.reset();
    await mig.rollbackMigration(`${table}_create`);
    mig.clearMigrations();
    await pool.query('DROP TABLE IF EXISTS queue_registry');
  }
});
