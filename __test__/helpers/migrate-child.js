// @ts-check
'use strict';
/**
 * One "instance" for the migrations race test: configures the package over
 * its own pg Pool, registers the same migrations as its twin, waits for the
 * parent's "go" and runs `runMigrations()`, then reports the result.
 * Each migration's up() logs itself in race_log and creates a table without
 * IF NOT EXISTS, so a second run of the same migration would both be counted
 * and fail.
 */
const { Pool } = require('pg');
const { setDatabase } = require('../../dist/db-circuit-breaker.js');
const { registerMigration, runMigrations } = require('../../dist/migrations.js');

const config = JSON.parse(process.env.RC_PG_CONFIG);
const table = process.env.RC_MIGRATIONS_TABLE;
const pool = new Pool({ ...config, max: 2 });
pool.on('error', () => {});
setDatabase(pool, { logger: null });

for (const n of [1, 2, 3]) {
  registerMigration({
    name: `race_${n}`,
    async up({ query }) {
      await query('INSERT INTO race_log (migration, pid) VALUES ($1, $2)', [`race_${n}`, process.pid]);
      await query(`CREATE TABLE race_table_${n} (id int)`);
      await query('SELECT pg_sleep(0.15)');
    },
    async down({ query }) {
      await query(`DROP TABLE race_table_${n}`);
    },
  });
}

process.on('message', async (msg) => {
  if (msg !== 'go') return;
  let out;
  try {
    const r = await runMigrations({ tableName: table, lockTimeoutMs: 20_000, logger: null });
    out = { ok: true, pid: process.pid, applied: r.applied, alreadyApplied: r.alreadyApplied };
  } catch (err) {
    out = { ok: false, pid: process.pid, error: `${err.name}: ${err.message}` };
  }
  await pool.end().catch(() => undefined);
  process.send(out, () => process.exit(0));
});
process.send('ready');
