/**
 * Schema migrations for PostgreSQL, run through the database configured with
 * `setDatabase()`/`configureDatabase()` (the original's `migrations.ts`, made
 * safe to run from several instances at once).
 *
 * ```ts
 * registerMigration({
 *   name: '0001_add_orders_status',
 *   async up({ query }) { await query('ALTER TABLE orders ADD COLUMN status text'); },
 *   async down({ query }) { await query('ALTER TABLE orders DROP COLUMN status'); },
 * });
 * await runMigrations();
 * ```
 *
 * - Migrations run in registration order. Each runs in its own transaction
 *   (`BEGIN` ... `COMMIT`) together with the row that records it, so a
 *   migration is either applied and recorded or neither.
 * - The whole run holds a session-level `pg_advisory_lock` on one dedicated
 *   connection, so instances starting together queue up: the first applies,
 *   the others then find everything recorded and do nothing.
 * - Each applied migration is recorded with a checksum; if the registered
 *   code no longer matches what was applied, the run stops with
 *   `MigrationChecksumError` before running anything.
 *
 * The checksum is the sha256 of `name`, `up.toString()` and `down.toString()`
 * unless the migration gives its own `checksum` (any string, e.g. "v1"):
 * give one when the code is bundled or minified, since a different build of
 * the same source changes `toString()`.
 */
import { createHash } from 'node:crypto';
import {
  DatabaseLogger,
  DatabaseNotConfiguredError,
  DatabaseSession,
  _databaseInternals,
} from './db-circuit-breaker';

// ---- types -------------------------------------------------------------------

export interface MigrationQueryResult<R = any> {
  rows: R[];
  rowCount: number | null;
}

/** What `up` and `down` receive: a query function on the migration's own connection (inside its transaction). */
export interface MigrationContext {
  /** Runs SQL with `$1`-style parameters on the migration's connection. */
  query<R = any>(sql: string, params?: unknown[]): Promise<MigrationQueryResult<R>>;
  /** The raw connection (a node-postgres `PoolClient` with a `pg.Pool`), e.g. for `drizzle(session)`. */
  session: DatabaseSession;
  /** The migration's name. */
  name: string;
}

export type MigrationFn = (ctx: MigrationContext) => unknown | Promise<unknown>;

export interface MigrationDefinition {
  /** Unique; letters, digits, `_`, `-`, `.`; 1 to 200 characters. Prefix with a number or date to read the order at a glance. */
  name: string;
  up: MigrationFn;
  /** Undoes `up`; optional, but `rollbackMigration` needs it. */
  down?: MigrationFn;
  /** Replaces the computed checksum (use when code is bundled/minified, or to accept a cosmetic edit). */
  checksum?: string;
  /** `false` runs without a transaction (e.g. `CREATE INDEX CONCURRENTLY`); default true. */
  transaction?: boolean;
}

export interface RegisteredMigration {
  readonly name: string;
  readonly checksum: string;
  readonly transaction: boolean;
  readonly hasDown: boolean;
}

export interface MigrationOptions {
  /** Table that records applied migrations (default `reliability_schema_migrations`; may be `schema.table`). */
  tableName?: string;
  /** How long to wait for another instance's run (default 60000 ms). */
  lockTimeoutMs?: number;
  /** Advisory lock key (default: derived from the table name). */
  lockKey?: bigint | number | string;
  /** Progress lines; `null` silences. Default: the database's logger (console). */
  logger?: DatabaseLogger | null;
}

export interface MigrationRunResult {
  /** Names applied by this call, in order. */
  applied: string[];
  /** Registered names that were already applied. */
  alreadyApplied: string[];
  /** Set when nothing could run: `no-migrations` (none registered; no database needed). */
  reason?: 'no-migrations';
  durationMs: number;
}

export interface MigrationStatusEntry {
  name: string;
  /** `changed`: applied, but the registered code's checksum differs from the recorded one. */
  status: 'applied' | 'pending' | 'changed';
  checksum: string;
  appliedChecksum: string | null;
  appliedAt: Date | null;
  executionMs: number | null;
}

export interface MigrationStatus {
  configured: boolean;
  table: string;
  migrations: MigrationStatusEntry[];
  applied: string[];
  pending: string[];
  changed: string[];
  /** Recorded in the table but not registered in this process (e.g. from a newer release). */
  unknown: string[];
}

export interface RollbackResult {
  name: string;
  rolledBack: boolean;
  reason?: 'not-applied';
}

// ---- errors ------------------------------------------------------------------

/**
 * A migration's `up` or `down` threw; its transaction was rolled back. `cause` is the original error.
 *
 *   catch (e) { if (e instanceof MigrationError) console.error(e.message); }
 */
export class MigrationError extends Error {
  readonly code = 'ERR_MIGRATION_FAILED';
  constructor(readonly migration: string, readonly phase: 'up' | 'down', cause: unknown) {
    super(`Migration "${migration}" failed in ${phase}(): ${cause instanceof Error ? cause.message : String(cause)}`);
    (this as { cause?: unknown }).cause = cause;
  }
}
Object.defineProperty(MigrationError.prototype, 'name', { value: 'MigrationError' });

/**
 * An applied migration's code changed since it ran. Write a new migration instead of editing an applied one.
 *
 *   catch (e) { if (e instanceof MigrationChecksumError) console.error('an applied migration was edited'); }
 */
export class MigrationChecksumError extends Error {
  readonly code = 'ERR_MIGRATION_CHECKSUM';
  constructor(readonly migration: string, readonly expected: string, readonly actual: string) {
    super(
      `Migration "${migration}" was changed after it was applied (recorded checksum ${expected.slice(0, 12)}…, ` +
        `registered ${actual.slice(0, 12)}…). Add a new migration instead of editing an applied one.`,
    );
  }
}
Object.defineProperty(MigrationChecksumError.prototype, 'name', { value: 'MigrationChecksumError' });

/**
 * Another instance held the migration lock for longer than `lockTimeoutMs`.
 *
 *   catch (e) { if (e instanceof MigrationLockTimeoutError) console.error('another instance is migrating'); }
 */
export class MigrationLockTimeoutError extends Error {
  readonly code = 'ERR_MIGRATION_LOCK_TIMEOUT';
  constructor(readonly lockTimeoutMs: number) {
    super(`Could not acquire the migration lock within ${lockTimeoutMs} ms (another instance is migrating)`);
  }
}
Object.defineProperty(MigrationLockTimeoutError.prototype, 'name', { value: 'MigrationLockTimeoutError' });

// ---- registry ----------------------------------------------------------------

interface Migration extends RegisteredMigration {
  up: MigrationFn;
  down?: MigrationFn;
}

const registry = new Map<string, Migration>();
const NAME_RE = /^[A-Za-z0-9_.-]{1,200}$/;

/**
 * sha256 over the name and the source text of `up` and `down`.
 *
 *   migrationChecksum({ name: '0001', up: async () => {}, down: async () => {} });
 */
export function migrationChecksum(def: Pick<MigrationDefinition, 'name' | 'up' | 'down'>): string {
  const h = createHash('sha256');
  h.update(def.name);
  h.update('\0');
  h.update(def.up.toString());
  h.update('\0');
  h.update(def.down ? def.down.toString() : '');
  return h.digest('hex');
}

/**
 * Registers a migration (runs on the next `runMigrations()`). Throws
 * `TypeError`/`RangeError` naming the field for a bad name, a duplicate
 * name, or a non-function `up`/`down`.
 *
 *   registerMigration({ name: '0001_orders_status', async up({ query }) { await query('ALTER TABLE orders ADD COLUMN status text'); } });
 */
export function registerMigration(def: MigrationDefinition): RegisteredMigration {
  if (def === null || typeof def !== 'object') throw new TypeError(`migration must be an object, got ${def === null ? 'null' : typeof def}`);
  if (typeof def.name !== 'string') throw new TypeError(`name must be a string, got ${def.name === null ? 'null' : typeof def.name}`);
  if (!NAME_RE.test(def.name)) {
    throw new RangeError(`name must be 1 to 200 letters, digits, "_", "-" or ".", got ${JSON.stringify(def.name.slice(0, 60))}`);
  }
  if (registry.has(def.name)) throw new RangeError(`name "${def.name}" is already registered (migration names must be unique)`);
  if (typeof def.up !== 'function') throw new TypeError(`up must be a function, got ${def.up === null ? 'null' : typeof def.up}`);
  if (def.down !== undefined && typeof def.down !== 'function') {
    throw new TypeError(`down must be a function, got ${def.down === null ? 'null' : typeof def.down}`);
  }
  if (def.checksum !== undefined && (typeof def.checksum !== 'string' || def.checksum === '' || def.checksum.length > 200)) {
    throw new TypeError('checksum must be a non-empty string of at most 200 characters');
  }
  if (def.transaction !== undefined && typeof def.transaction !== 'boolean') {
    throw new TypeError(`transaction must be a boolean, got ${typeof def.transaction}`);
  }
  const m: Migration = Object.freeze({
    name: def.name,
    checksum: def.checksum ?? migrationChecksum(def),
    transaction: def.transaction ?? true,
    hasDown: typeof def.down === 'function',
    up: def.up,
    down: def.down,
  });
  registry.set(m.name, m);
  return { name: m.name, checksum: m.checksum, transaction: m.transaction, hasDown: m.hasDown };
}

/**
 * Registered migrations, in registration (= run) order.
 *
 *   getRegisteredMigrations().map((m) => m.name);
 */
export function getRegisteredMigrations(): RegisteredMigration[] {
  return [...registry.values()].map((m) => ({ name: m.name, checksum: m.checksum, transaction: m.transaction, hasDown: m.hasDown }));
}

/**
 * Forgets every registered migration (tests; the database is not touched).
 *
 *   clearMigrations(); // in tests, between cases
 */
export function clearMigrations(): void {
  registry.clear();
}

// ---- options -----------------------------------------------------------------

const IDENT_RE = /^[a-z_][a-z0-9_]{0,62}$/;
const DEFAULT_TABLE = 'reliability_schema_migrations';

interface Resolved {
  table: string; // display form
  quoted: string;
  lockTimeoutMs: number;
  lockKey: string;
  logger: DatabaseLogger | null;
}

function resolve(opts: MigrationOptions | undefined, logger: DatabaseLogger | null): Resolved {
  if (opts !== undefined && (opts === null || typeof opts !== 'object')) throw new TypeError(`options must be an object, got ${opts === null ? 'null' : typeof opts}`);
  const o = opts ?? {};
  const table = o.tableName ?? DEFAULT_TABLE;
  if (typeof table !== 'string') throw new TypeError(`tableName must be a string, got ${typeof table}`);
  const parts = table.split('.');
  if (parts.length > 2 || !parts.every((p) => IDENT_RE.test(p))) {
    throw new RangeError(`tableName must be a lower-case identifier or schema.table, got ${JSON.stringify(table.slice(0, 80))}`);
  }
  const lockTimeoutMs = o.lockTimeoutMs ?? 60_000;
  if (typeof lockTimeoutMs !== 'number' || !Number.isInteger(lockTimeoutMs)) throw new TypeError('lockTimeoutMs must be an integer');
  if (lockTimeoutMs < 1 || lockTimeoutMs > 3_600_000) throw new RangeError(`lockTimeoutMs must be between 1 and 3600000, got ${lockTimeoutMs}`);
  let lockKey: bigint;
  if (o.lockKey === undefined) {
    lockKey = createHash('sha256').update(`@dreamnet/reliability-core:migrations:${table}`).digest().readBigInt64BE(0);
  } else {
    try {
      lockKey = BigInt(o.lockKey);
    } catch {
      throw new TypeError('lockKey must be an integer (bigint, number or decimal string)');
    }
    if (lockKey < -(2n ** 63n) || lockKey >= 2n ** 63n) throw new RangeError('lockKey must fit in a signed 64-bit integer');
  }
  return {
    table,
    quoted: parts.map((p) => `"${p}"`).join('.'),
    lockTimeoutMs,
    lockKey: lockKey.toString(),
    logger: o.logger === undefined ? logger : o.logger,
  };
}

// ---- database plumbing ---------------------------------------------------------

function rowsOf(res: unknown): { rows: any[]; rowCount: number | null } {
  if (Array.isArray(res)) return { rows: res, rowCount: res.length };
  const r = res as { rows?: unknown; rowCount?: unknown } | null | undefined;
  const rows = r && Array.isArray(r.rows) ? r.rows : [];
  return { rows, rowCount: r && typeof r.rowCount === 'number' ? r.rowCount : rows.length };
}

async function q(session: DatabaseSession, sql: string, params: unknown[] = []) {
  return rowsOf(await session.query(sql, params));
}

/** A dedicated connection, the advisory lock held on it, released on every path. */
async function withLockedSession<T>(opts: MigrationOptions | undefined, body: (s: DatabaseSession, r: Resolved) => Promise<T>): Promise<T> {
  const db = _databaseInternals();
  if (!db) throw new DatabaseNotConfiguredError();
  const r = resolve(opts, db.logger);
  if (!db.connect) {
    throw new TypeError('connect must be configured for migrations (they need one dedicated connection): setDatabase(pool) or configureDatabase({ execute, connect })');
  }
  const session = await db.connect();
  if (!session || typeof session.query !== 'function') throw new TypeError('connect() must resolve to a session with a query function');
  let broken: unknown;
  try {
    await q(session, "SELECT set_config('lock_timeout', $1, false)", [`${r.lockTimeoutMs}ms`]);
    try {
      await q(session, 'SELECT pg_advisory_lock($1::bigint)', [r.lockKey]);
    } catch (err) {
      if ((err as { code?: unknown })?.code === '55P03') throw new MigrationLockTimeoutError(r.lockTimeoutMs);
      throw err;
    } finally {
      await q(session, "SELECT set_config('lock_timeout', '0', false)").catch(() => undefined);
    }
    try {
      return await body(session, r);
    } finally {
      await q(session, 'SELECT pg_advisory_unlock($1::bigint)', [r.lockKey]).catch((err) => {
        broken = err; // destroying the connection releases the lock too
      });
    }
  } catch (err) {
    broken ??= err;
    throw err;
  } finally {
    try {
      // A pg PoolClient destroys its connection when given an error, so a
      // connection in an unknown state (or still holding the lock) never returns to the pool.
      await session.release?.(broken instanceof MigrationError || broken instanceof MigrationChecksumError ? undefined : broken);
    } catch {
      // nothing to do: the pool will notice a dead connection
    }
  }
}

async function ensureTable(s: DatabaseSession, r: Resolved): Promise<void> {
  await q(
    s,
    `CREATE TABLE IF NOT EXISTS ${r.quoted} (
       id bigserial PRIMARY KEY,
       name text NOT NULL UNIQUE,
       checksum text NOT NULL,
       applied_at timestamptz NOT NULL DEFAULT now(),
       execution_ms integer NOT NULL
     )`,
  );
}

interface AppliedRow {
  id: string;
  name: string;
  checksum: string;
  applied_at: Date;
  execution_ms: number;
}

async function readApplied(s: DatabaseSession, r: Resolved): Promise<AppliedRow[]> {
  return (await q(s, `SELECT id::text AS id, name, checksum, applied_at, execution_ms FROM ${r.quoted} ORDER BY id`)).rows;
}

function contextFor(session: DatabaseSession, name: string): MigrationContext {
  return {
    query: ((sql: string, params?: unknown[]) => {
      if (typeof sql !== 'string') throw new TypeError(`sql must be a string, got ${typeof sql}`);
      if (params !== undefined && !Array.isArray(params)) throw new TypeError('params must be an array');
      return q(session, sql, params ?? []);
    }) as MigrationContext['query'],
    session,
    name,
  };
}

/** Runs `fn` and `then` in one transaction (or none when `transaction` is false). */
async function inTransaction(s: DatabaseSession, m: Migration, phase: 'up' | 'down', then: () => Promise<unknown>): Promise<void> {
  const fn = phase === 'up' ? m.up : m.down!;
  if (m.transaction) await q(s, 'BEGIN');
  try {
    try {
      await fn(contextFor(s, m.name));
    } catch (err) {
      throw new MigrationError(m.name, phase, err);
    }
    await then();
    if (m.transaction) await q(s, 'COMMIT');
  } catch (err) {
    if (m.transaction) await q(s, 'ROLLBACK').catch(() => undefined);
    throw err;
  }
}

// ---- public operations -----------------------------------------------------------

/**
 * Applies every registered migration that is not recorded yet, in
 * registration order, under the advisory lock. Resolves
 * `{ applied: [], alreadyApplied: [], reason: 'no-migrations' }` without
 * touching (or needing) a database when none is registered. Rejects with
 * `DatabaseNotConfiguredError` when migrations are registered but no
 * database is configured, `MigrationChecksumError` when an applied
 * migration changed, `MigrationError` when one fails (earlier ones stay
 * applied, later ones do not run).
 *
 *   await runMigrations();
 */
export async function runMigrations(opts?: MigrationOptions): Promise<MigrationRunResult> {
  const t0 = performance.now();
  const migrations = [...registry.values()];
  if (migrations.length === 0) {
    if (opts !== undefined) resolve(opts, null); // still report bad options
    return { applied: [], alreadyApplied: [], reason: 'no-migrations', durationMs: 0 };
  }
  return withLockedSession(opts, async (s, r) => {
    await ensureTable(s, r);
    const recorded = new Map((await readApplied(s, r)).map((row) => [row.name, row]));
    for (const m of migrations) {
      const row = recorded.get(m.name);
      if (row && row.checksum !== m.checksum) throw new MigrationChecksumError(m.name, row.checksum, m.checksum);
    }
    const applied: string[] = [];
    const alreadyApplied: string[] = [];
    for (const m of migrations) {
      if (recorded.has(m.name)) {
        alreadyApplied.push(m.name);
        continue;
      }
      const started = performance.now();
      await inTransaction(s, m, 'up', () =>
        q(s, `INSERT INTO ${r.quoted} (name, checksum, execution_ms) VALUES ($1, $2, $3)`, [
          m.name,
          m.checksum,
          Math.round(performance.now() - started),
        ]),
      );
      applied.push(m.name);
      r.logger?.log(`✅ [Migrations] Applied ${m.name} (${Math.round(performance.now() - started)} ms)`);
    }
    if (applied.length === 0) r.logger?.log(`✅ [Migrations] Up to date (${alreadyApplied.length} applied)`);
    return { applied, alreadyApplied, durationMs: performance.now() - t0 };
  });
}

/**
 * Runs `down()` of an applied migration and removes its record, in one
 * transaction under the advisory lock. Refuses (Error) when migrations
 * applied after it are still applied, unless `force: true`. Resolves
 * `{ rolledBack: false, reason: 'not-applied' }` when it is not applied.
 *
 *   await rollbackMigration('0001_orders_status');
 */
export async function rollbackMigration(name: string, opts: MigrationOptions & { force?: boolean } = {}): Promise<RollbackResult> {
  if (typeof name !== 'string') throw new TypeError(`name must be a string, got ${name === null ? 'null' : typeof name}`);
  const m = registry.get(name);
  if (!m) throw new RangeError(`name "${name.slice(0, 200)}" is not a registered migration`);
  if (!m.down) throw new TypeError(`down is not defined for migration "${name}", so it cannot be rolled back`);
  return withLockedSession(opts, async (s, r) => {
    await ensureTable(s, r);
    const rows = await readApplied(s, r);
    const idx = rows.findIndex((row) => row.name === name);
    if (idx < 0) return { name, rolledBack: false, reason: 'not-applied' as const };
    if (rows[idx].checksum !== m.checksum) throw new MigrationChecksumError(name, rows[idx].checksum, m.checksum);
    const later = rows.slice(idx + 1).map((row) => row.name);
    if (later.length > 0 && !opts.force) {
      throw new Error(`Cannot roll back "${name}": applied after it and still applied: ${later.join(', ')} (roll those back first, or pass force: true)`);
    }
    const started = performance.now();
    await inTransaction(s, m, 'down', () => q(s, `DELETE FROM ${r.quoted} WHERE name = $1`, [name]));
    r.logger?.log(`↩️  [Migrations] Rolled back ${name} (${Math.round(performance.now() - started)} ms)`);
    return { name, rolledBack: true };
  });
}

/**
 * Rolls back the most recently applied migration (the original's `rollbackLastMigration`).
 *
 *   await rollbackLastMigration(); // null when nothing was applied
 */
export async function rollbackLastMigration(opts: MigrationOptions = {}): Promise<RollbackResult | null> {
  const last = (await getMigrationStatus(opts)).lastApplied;
  if (!last) return null;
  if (!registry.has(last)) throw new RangeError(`name "${last}" (the last applied migration) is not registered in this process`);
  return rollbackMigration(last, opts);
}

/**
 * What is applied, pending or changed. Reads the table without the lock (a
 * snapshot); with no database configured, every registered migration is
 * `pending` and `configured` is false.
 *
 *   const { applied, pending, lastApplied } = await getMigrationStatus();
 */
export async function getMigrationStatus(opts?: MigrationOptions): Promise<MigrationStatus & { lastApplied: string | null }> {
  const db = _databaseInternals();
  const r = resolve(opts, null);
  let rows: AppliedRow[] = [];
  if (db) {
    const exists = rowsOf(await db.execute('SELECT to_regclass($1) IS NOT NULL AS present', [r.quoted])).rows[0]?.present;
    if (exists) {
      rows = rowsOf(await db.execute(`SELECT id::text AS id, name, checksum, applied_at, execution_ms FROM ${r.quoted} ORDER BY id`, [])).rows;
    }
  }
  const byName = new Map(rows.map((row) => [row.name, row]));
  const migrations: MigrationStatusEntry[] = [...registry.values()].map((m) => {
    const row = byName.get(m.name);
    return {
      name: m.name,
      status: !row ? 'pending' : row.checksum === m.checksum ? 'applied' : 'changed',
      checksum: m.checksum,
      appliedChecksum: row?.checksum ?? null,
      appliedAt: row ? new Date(row.applied_at) : null,
      executionMs: row ? Number(row.execution_ms) : null,
    };
  });
  return {
    configured: !!db,
    table: r.table,
    migrations,
    applied: migrations.filter((m) => m.status !== 'pending').map((m) => m.name),
    pending: migrations.filter((m) => m.status === 'pending').map((m) => m.name),
    changed: migrations.filter((m) => m.status === 'changed').map((m) => m.name),
    unknown: rows.filter((row) => !registry.has(row.name)).map((row) => row.name),
    lastApplied: rows.length ? rows[rows.length - 1].name : null,
  };
}
