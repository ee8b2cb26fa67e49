/**
 * Example migrations for @dreamnet/reliability-core (shipped as TypeScript
 * source: copy the file into your app and import it once before
 * `runMigrations()` / `initializeReliabilitySystem()`).
 *
 * One change, "every event has a severity", done the safe way
 * (docs/DATABASE.md): expand, backfill, then constrain, each step its own
 * migration so no step holds a heavy lock for long, and every statement is
 * safe to run against a live table:
 * - `lock_timeout` makes a DDL statement give up quickly instead of queueing
 *   behind a long transaction (and blocking every query queued behind it);
 * - new columns are added nullable, with no default that rewrites the table;
 * - the backfill runs in batches;
 * - the NOT NULL rule arrives as a `CHECK ... NOT VALID` constraint that is
 *   validated by a later migration, which does not block reads or writes.
 * On a big table, ship steps 3 and 4 in a later release than 1 and 2, once
 * the new code writes `severity` everywhere.
 *
 * The name starts with a sortable prefix; migrations run in the order they
 * are registered, so import them in that order.
 */
import { registerMigration, type MigrationContext } from '@dreamnet/reliability-core/migrations';

const BATCH = 1000;

export default [
  // 1. Expand: a new table and a new nullable column (no table rewrite).
  registerMigration({
    name: '0001_reliability_events',
    async up({ query }: MigrationContext) {
      await query(`SET LOCAL lock_timeout = '5s'`);
      await query(`
        CREATE TABLE IF NOT EXISTS reliability_events (
          id         bigserial PRIMARY KEY,
          service    text NOT NULL,
          kind       text NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now()
        )`);
      await query(`ALTER TABLE reliability_events ADD COLUMN IF NOT EXISTS severity text`);
    },
    async down({ query }: MigrationContext) {
      await query(`SET LOCAL lock_timeout = '5s'`);
      await query(`DROP TABLE IF EXISTS reliability_events`);
    },
  }),

  // 2. Backfill in batches, outside one big transaction: each UPDATE commits
  //    on its own, so row locks are short. Safe to re-run after a crash
  //    (it only touches rows still NULL).
  registerMigration({
    name: '0002_reliability_events_backfill_severity',
    transaction: false,
    async up({ query }: MigrationContext) {
      for (;;) {
        const r = await query(
          `UPDATE reliability_events SET severity = 'info'
            WHERE id IN (SELECT id FROM reliability_events WHERE severity IS NULL LIMIT $1)`,
          [BATCH],
        );
        if (!r.rowCount) break;
      }
    },
    async down() {
      // Nothing to undo: the values are harmless once the column is gone.
    },
  }),

  // 3. Constrain, cheaply: NOT VALID checks new writes only (brief lock, no scan).
  registerMigration({
    name: '0003_reliability_events_severity_check',
    async up({ query }: MigrationContext) {
      await query(`SET LOCAL lock_timeout = '5s'`);
      await query(`
        ALTER TABLE reliability_events
          ADD CONSTRAINT reliability_events_severity_not_null CHECK (severity IS NOT NULL) NOT VALID`);
    },
    async down({ query }: MigrationContext) {
      await query(`SET LOCAL lock_timeout = '5s'`);
      await query(`ALTER TABLE reliability_events DROP CONSTRAINT IF EXISTS reliability_events_severity_not_null`);
    },
  }),

  // 4. Validate the existing rows (SHARE UPDATE EXCLUSIVE: reads and writes go on).
  registerMigration({
    name: '0004_reliability_events_validate_severity',
    async up({ query }: MigrationContext) {
      await query(`ALTER TABLE reliability_events VALIDATE CONSTRAINT reliability_events_severity_not_null`);
    },
    async down() {
      // A validated constraint becomes "not validated" only by re-adding it; step 3's down drops it.
    },
  }),
];
