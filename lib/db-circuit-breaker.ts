/**
 * Database protection: a drop-in replacement for the original
 * `server/core/db-circuit-breaker.ts` (both version A and version B).
 *
 * The package brings no database driver. The app hands over its own client
 * once, with `setDatabase(pool)` (node-postgres `Pool`/`Client`, drizzle's
 * `db`, or any object with `execute`/`query`) or `configureDatabase({ execute })`,
 * and then calls:
 *
 * ```ts
 * // version A: SQL text and arguments, breaker "database"
 * const r = await executeWithCircuitBreaker('SELECT * FROM users WHERE id = $1', [id]);
 * // version B (and the original docs): a callback, breaker "db-<name>"
 * const rows = await executeWithCircuitBreaker('load-user', (db) => db.query('SELECT 1'));
 * // health checks, no breaker
 * await executeDirect('SELECT 1');
 * ```
 *
 * Errors are classified (`classifyDatabaseError`): only "the database is not
 * healthy" errors (connection refused/reset, timeouts, too many clients,
 * shutdown) count as breaker failures; a unique violation or a syntax error
 * is the caller's problem, passes straight through and never opens the
 * breaker. Retries happen only for errors where the statement certainly did
 * not reach the server (connection refused, too many clients, ...), and all
 * attempts together are bounded by the breaker's per-call timeout, so one
 * query can never stack up seconds of retries (spec §7.6).
 *
 * The breaker itself is the package's ordinary breaker (`lib/circuit-breaker.ts`,
 * state machine in Rust); this file only adapts clients, classifies errors
 * and retries.
 */
import { setTimeout, clearTimeout } from 'node:timers';
import { retry, wrap, type RetryPolicy } from './retry';
import { setDatabaseProbe } from './startup-dag';
import {
  CircuitBreakerOptions,
  CircuitTimeoutError,
  getCircuitBreakerRegistry,
} from './circuit-breaker';
import { underTestRunner } from './test-runner';

// ---- types -------------------------------------------------------------------

/** What a classifier says about an error. */
export type DatabaseErrorClass = 'transient' | 'client';

/** Runs SQL text with positional arguments (`$1`, `$2`, ...). */
export type ExecuteFn = (sql: string, args: unknown[]) => unknown | Promise<unknown>;

/**
 * One connection, held until `release()`. Migrations need it (a transaction
 * and an advisory lock must stay on one connection). A node-postgres
 * `PoolClient` is one as it is.
 */
export interface DatabaseSession {
  query(sql: string, params?: unknown[]): unknown | Promise<unknown>;
  release?(err?: unknown): unknown;
}

export interface DatabaseLogger {
  log(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

export interface DatabaseConfig {
  /** Runs SQL text with arguments; version A and `executeDirect(sql)` call it. Required unless `query` is given. */
  execute?: ExecuteFn;
  /** Same signature as `execute`; used when `execute` is absent (a `pg.Pool`'s `query` fits). */
  query?: ExecuteFn;
  /** The object version-B callbacks receive (default: a `{ execute, query }` facade). */
  db?: unknown;
  /** Hands out one dedicated connection (needed by migrations). With a `pg.Pool`: `() => pool.connect()`. */
  connect?: () => DatabaseSession | Promise<DatabaseSession>;
  /**
   * Overrides the classification. Return `'transient'` (a failure: counts
   * towards opening the breaker), `'client'` (passed through, not retried,
   * counts as a healthy call) or `undefined` to fall back to the default.
   */
  classifyError?: (err: unknown) => DatabaseErrorClass | undefined;
  /** Which failures are retried (default: `isRetryableDatabaseError`, statement certainly not sent). */
  retryOn?: (err: unknown) => boolean;
  /** Extra attempts after the first, all inside the per-call timeout (default 2). */
  retries?: number;
  /** First retry delay in ms, doubled each attempt, half of it jittered (default 100). */
  retryDelayMs?: number;
  /** Cap on one retry delay in ms (default 1000). */
  maxRetryDelayMs?: number;
  /**
   * Options for breakers this module creates (`database`, `db-<name>`),
   * merged over `DEFAULT_DATABASE_BREAKER_OPTIONS`. As everywhere in the
   * registry, a breaker keeps the options it was created with.
   */
  breaker?: CircuitBreakerOptions;
  /** Receives warnings (never SQL arguments or connection strings). `null` silences. Default console (none under a test runner). */
  logger?: DatabaseLogger | null;
}

// ---- defaults ------------------------------------------------------------------

/**
 * Breaker defaults for a database (spec §2.3 B plus §7.6):
 * - `failureThreshold: 5`, `resetTimeout: 10000`, `timeout: 5000`: version B's values.
 * - `retryOptions.maxRetries: 0`: the breaker does not retry; this module
 *   retries inside the call (see `DEFAULT_DATABASE_RETRIES`), so the 5 s
 *   timeout bounds every attempt together and a failing call counts once.
 * - `isFailure`: `classifyDatabaseError(err) === 'transient'`.
 */
export const DEFAULT_DATABASE_BREAKER_OPTIONS: Readonly<CircuitBreakerOptions> = Object.freeze({
  failureThreshold: 5,
  resetTimeout: 10_000,
  timeout: 5_000,
  retryOptions: Object.freeze({ maxRetries: 0 }),
});

/** Retry defaults: 2 retries after 100 ms and 200 ms (± jitter), capped at 1 s each. */
export const DEFAULT_DATABASE_RETRIES = Object.freeze({ retries: 2, retryDelayMs: 100, maxRetryDelayMs: 1000 });

/** The breaker name version A uses. */
export const DEFAULT_DATABASE_BREAKER = 'database';

// ---- errors ------------------------------------------------------------------

/**
 * Thrown when no database was configured (before any breaker: it never trips one).
 *
 *   catch (e) { if (e instanceof DatabaseNotConfiguredError) console.error('call setDatabase(pool) first'); }
 */
export class DatabaseNotConfiguredError extends Error {
  readonly code = 'ERR_DATABASE_NOT_CONFIGURED';
  constructor() {
    super('Database not available. Call configureDatabase() or setDatabase() first (DATABASE_URL may not be set).');
  }
}
Object.defineProperty(DatabaseNotConfiguredError.prototype, 'name', { value: 'DatabaseNotConfiguredError' });

// ---- classification ----------------------------------------------------------

/** Node/libuv error codes that mean "could not talk to the server". */
const TRANSIENT_ERRNO = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'ESOCKETTIMEDOUT', 'EPIPE', 'ENOTCONN',
  'EHOSTUNREACH', 'EHOSTDOWN', 'ENETUNREACH', 'ENETDOWN', 'ENETRESET', 'EAI_AGAIN',
]);
/** ...of which the request certainly never reached the server (safe to retry). */
const NOT_SENT_ERRNO = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'EHOSTDOWN', 'ENETUNREACH', 'ENETDOWN', 'EAI_AGAIN']);

/**
 * SQLSTATE classes that describe the server, not the statement:
 * 08 connection exception, 53 insufficient resources (53300 too many
 * connections), 58 system error (I/O), XX internal error.
 */
const TRANSIENT_SQLSTATE_CLASSES = new Set(['08', '53', '58', 'XX']);
/**
 * Single codes from class 57 (operator intervention): 57P01 admin_shutdown,
 * 57P02 crash_shutdown, 57P03 cannot_connect_now (starting up / shutting
 * down), 57P05 idle_session_timeout, 57014 query_canceled (statement_timeout).
 */
const TRANSIENT_SQLSTATE = new Set(['57P01', '57P02', '57P03', '57P05', '57014']);
/** SQLSTATEs where the statement was refused before running (safe to retry). */
const NOT_SENT_SQLSTATE = new Set(['08001', '08004', '53300', '57P03']);

/** node-postgres errors that carry no code, recognised by their (fixed) messages. */
const TRANSIENT_MESSAGES = [
  /connection terminated/i,
  /timeout exceeded when trying to connect/i,
  /connection timeout/i,
  /client has encountered a connection error and is not queryable/i,
  /query read timeout/i,
  /client was closed and is not queryable/i,
  /socket hang up/i,
];
const NOT_SENT_MESSAGES = [/timeout exceeded when trying to connect/i, /client has encountered a connection error and is not queryable/i];

const SQLSTATE_RE = /^[0-9A-Z]{5}$/;

/** The error and its `cause`s and `errors` (AggregateError, drizzle's wrapped errors), depth-limited. */
function errorChain(err: unknown): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const walk = (e: unknown, depth: number): void => {
    if (!e || typeof e !== 'object' || depth > 4 || out.includes(e as Record<string, unknown>)) return;
    const o = e as Record<string, unknown>;
    out.push(o);
    if (Array.isArray(o.errors)) for (const x of o.errors.slice(0, 8)) walk(x, depth + 1);
    walk(o.cause, depth + 1);
  };
  walk(err, 0);
  return out;
}

function sqlstateOf(o: Record<string, unknown>): string | null {
  const c = o.code;
  return typeof c === 'string' && SQLSTATE_RE.test(c) && !c.startsWith('E') ? c : null;
}

/**
 * The default classification of a database error, looking through `cause`
 * and `AggregateError.errors`:
 *
 * | error | class |
 * |---|---|
 * | our own per-call timeout (`CircuitTimeoutError`) | transient |
 * | Node errno ECONNREFUSED, ECONNRESET, ETIMEDOUT, EPIPE, EHOSTUNREACH, ENETUNREACH, EAI_AGAIN, ... | transient |
 * | SQLSTATE class 08 (connection), 53 (resources, incl. 53300 too many clients), 58 (system), XX (internal) | transient |
 * | SQLSTATE 57P01/57P02/57P03/57P05 (shutdown, starting up), 57014 (statement timeout) | transient |
 * | node-postgres "Connection terminated...", "timeout exceeded when trying to connect" | transient |
 * | any other SQLSTATE: 23xxx constraints, 42xxx syntax/undefined, 22xxx data, 40001/40P01 serialization/deadlock, ... | client |
 * | JS programming errors (TypeError, RangeError, SyntaxError, ReferenceError) | client |
 * | anything else (unknown driver errors) | transient, as the original counted every error |
 *
 * 40001/40P01 are "client": they say two transactions collided, not that the
 * server is ill, and only the whole transaction can be retried, which is the
 * caller's job.
 *
 *   classifyDatabaseError(err); // 'transient' (counts against the breaker) or 'client'
 */
export function classifyDatabaseError(err: unknown): DatabaseErrorClass {
  const chain = errorChain(err);
  if (chain.length === 0) return 'transient';
  let sawSqlstate = false;
  for (const o of chain) {
    if (o instanceof CircuitTimeoutError) return 'transient';
    const state = sqlstateOf(o);
    if (state) {
      sawSqlstate = true;
      if (TRANSIENT_SQLSTATE.has(state) || TRANSIENT_SQLSTATE_CLASSES.has(state.slice(0, 2))) return 'transient';
      continue;
    }
    if (typeof o.code === 'string' && TRANSIENT_ERRNO.has(o.code)) return 'transient';
    if (typeof o.errno === 'string' && TRANSIENT_ERRNO.has(o.errno)) return 'transient';
    const msg = typeof o.message === 'string' ? o.message : '';
    if (TRANSIENT_MESSAGES.some((re) => re.test(msg))) return 'transient';
  }
  if (sawSqlstate) return 'client';
  const top = chain[0];
  if (top instanceof TypeError || top instanceof RangeError || top instanceof SyntaxError || top instanceof ReferenceError) return 'client';
  return 'transient';
}

/**
 * Default retry rule: only errors where the statement certainly never ran
 * (connection refused, host unreachable, DNS, too many clients, server
 * starting up, pool connect timeout). A reset or timeout mid-statement is a
 * failure but is not retried by default: the statement may have run, and
 * repeating a write is the app's decision (`retryOn`).
 *
 *   retryOn: (err) => isRetryableDatabaseError(err) || err.code === 'ECONNRESET',
 */
export function isRetryableDatabaseError(err: unknown): boolean {
  for (const o of errorChain(err)) {
    if (o instanceof CircuitTimeoutError) return false;
    const state = sqlstateOf(o);
    if (state) {
      if (NOT_SENT_SQLSTATE.has(state)) return true;
      continue;
    }
    if (typeof o.code === 'string' && NOT_SENT_ERRNO.has(o.code)) return true;
    const msg = typeof o.message === 'string' ? o.message : '';
    if (NOT_SENT_MESSAGES.some((re) => re.test(msg))) return true;
  }
  return false;
}

// ---- configuration -----------------------------------------------------------

interface ResolvedDatabase {
  execute: ExecuteFn;
  db: unknown;
  connect: (() => DatabaseSession | Promise<DatabaseSession>) | null;
  classify: (err: unknown) => DatabaseErrorClass;
  retryOn: (err: unknown) => boolean;
  retries: number;
  retryDelayMs: number;
  maxRetryDelayMs: number;
  /** `retries`, `retryDelayMs`, `maxRetryDelayMs` and `retryOn` as a policy (see `retriesOf`). */
  retry: RetryPolicy;
  breaker: CircuitBreakerOptions;
  logger: DatabaseLogger | null;
}

let current: ResolvedDatabase | null = null;

function fnOrUndefined(field: string, v: unknown): void {
  if (v !== undefined && typeof v !== 'function') {
    throw new TypeError(`${field} must be a function, got ${v === null ? 'null' : typeof v}`);
  }
}

function nonNegativeInt(field: string, v: unknown, dflt: number, max: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new TypeError(`${field} must be an integer, got ${typeof v === 'number' ? v : typeof v}`);
  if (v < 0 || v > max) throw new RangeError(`${field} must be between 0 and ${max}, got ${v}`);
  return v;
}

/**
 * Configures the database this module protects. `execute` (or `query`) is
 * required; everything else has a default (see `DatabaseConfig`).
 * `configureDatabase(null)` forgets the database.
 *
 *   configureDatabase({ execute: (sql, args) => myClient.run(sql, args) });
 */
export function configureDatabase(config: DatabaseConfig | null): void {
  if (config === null) {
    current = null;
    return;
  }
  if (typeof config !== 'object') throw new TypeError(`config must be an object, got ${typeof config}`);
  fnOrUndefined('execute', config.execute);
  fnOrUndefined('query', config.query);
  fnOrUndefined('connect', config.connect);
  fnOrUndefined('classifyError', config.classifyError);
  fnOrUndefined('retryOn', config.retryOn);
  const exec = config.execute ?? config.query;
  if (typeof exec !== 'function') throw new TypeError('execute must be a function (sql, args) => Promise, got undefined');
  if (config.breaker !== undefined && (config.breaker === null || typeof config.breaker !== 'object')) {
    throw new TypeError(`breaker must be an object, got ${config.breaker === null ? 'null' : typeof config.breaker}`);
  }
  if (config.logger !== undefined && config.logger !== null && typeof config.logger?.warn !== 'function') {
    throw new TypeError('logger must have log/warn/error functions, or be null');
  }
  const custom = config.classifyError;
  const classify = custom
    ? (err: unknown): DatabaseErrorClass => {
        const c = custom(err);
        if (c === 'transient' || c === 'client') return c;
        return classifyDatabaseError(err);
      }
    : classifyDatabaseError;
  const execute: ExecuteFn = config.execute ? config.execute : config.query!;
  const resolved: Omit<ResolvedDatabase, 'retry'> = {
    execute,
    db: config.db !== undefined ? config.db : { execute, query: execute },
    connect: config.connect ?? null,
    classify,
    retryOn: config.retryOn ?? isRetryableDatabaseError,
    retries: nonNegativeInt('retries', config.retries, DEFAULT_DATABASE_RETRIES.retries, 10),
    retryDelayMs: nonNegativeInt('retryDelayMs', config.retryDelayMs, DEFAULT_DATABASE_RETRIES.retryDelayMs, 60_000),
    maxRetryDelayMs: nonNegativeInt('maxRetryDelayMs', config.maxRetryDelayMs, DEFAULT_DATABASE_RETRIES.maxRetryDelayMs, 60_000),
    breaker: { ...DEFAULT_DATABASE_BREAKER_OPTIONS, ...(config.breaker ?? {}) },
    logger: config.logger === undefined ? (underTestRunner ? null : console) : config.logger,
  };
  const d = resolved as ResolvedDatabase;
  d.retry = retriesOf(d);
  current = d;
}

function isPool(c: Record<string, unknown>): boolean {
  // pg.Pool (class BoundPool extends Pool), @neondatabase/serverless Pool:
  // `connect()` hands out a client with `release()`. A pg.Client's
  // `connect()` opens its own socket instead, so it must not be called.
  if (typeof c.connect !== 'function') return false;
  if (typeof c.totalCount === 'number' && typeof c.idleCount === 'number') return true;
  const ctor = (c.constructor as { name?: string } | undefined)?.name ?? '';
  return /pool/i.test(ctor);
}

function sessionFactory(c: Record<string, unknown>): (() => Promise<DatabaseSession>) | null {
  if (isPool(c)) return () => (c.connect as () => Promise<DatabaseSession>).call(c);
  if (typeof c.query === 'function') {
    // A single connection (pg.Client): it is its own session, never released.
    return async () => ({ query: (sql: string, params?: unknown[]) => (c.query as ExecuteFn).call(c, sql, params ?? []) });
  }
  return null;
}

/**
 * Configures the database from the app's client object:
 * - node-postgres `Pool` (or neon's `Pool`): `pool.query(sql, args)`; migrations use `pool.connect()`.
 * - node-postgres `Client`: `client.query(sql, args)`; migrations run on it directly.
 * - drizzle's `db` (`drizzle(pool)`): SQL text goes through `db.$client.query(sql, args)`,
 *   version-B callbacks receive the drizzle `db`, migrations use `db.$client.connect()`.
 * - any other object with `execute`: `db.execute({ sql, args })`, the original's call
 *   (libsql-style); pass `configureDatabase({ execute, connect })` for anything else.
 *
 * `options` are the rest of `DatabaseConfig` (breaker, retries, classification, ...).
 */
export function setDatabase(db: unknown, options: Omit<DatabaseConfig, 'execute' | 'query' | 'db'> = {}): void {
  if (db === null || (typeof db !== 'object' && typeof db !== 'function')) {
    throw new TypeError(`db must be a database client object, got ${db === null ? 'null' : typeof db}`);
  }
  const c = db as Record<string, unknown>;
  const inner = c.$client && typeof c.$client === 'object' ? (c.$client as Record<string, unknown>) : null;
  let execute: ExecuteFn;
  let connect: (() => DatabaseSession | Promise<DatabaseSession>) | null = null;
  if (inner && typeof inner.query === 'function') {
    execute = (sql, args) => (inner.query as ExecuteFn).call(inner, sql, args);
    connect = sessionFactory(inner);
  } else if (typeof c.query === 'function') {
    execute = (sql, args) => (c.query as ExecuteFn).call(c, sql, args);
    connect = sessionFactory(c);
  } else if (typeof c.execute === 'function') {
    execute = (sql, args) => (c.execute as (q: unknown) => unknown).call(c, { sql, args });
  } else {
    throw new TypeError('db must have an execute or query function (a pg Pool/Client, a drizzle db, or { execute })');
  }
  configureDatabase({ ...options, execute, db, connect: options.connect ?? connect ?? undefined });
}

/**
 * True once `configureDatabase`/`setDatabase` ran.
 *
 *   if (!isDatabaseConfigured()) setDatabase(pool);
 */
export function isDatabaseConfigured(): boolean {
  return current !== null;
}

/**
 * The object version-B callbacks receive; throws `DatabaseNotConfiguredError` when none is configured.
 *
 *   const pool = getDatabase();
 */
export function getDatabase(): unknown {
  return need().db;
}

function need(): ResolvedDatabase {
  if (!current) throw new DatabaseNotConfiguredError();
  return current;
}

/** @internal For `migrations.ts`: a dedicated connection, or null when the client cannot give one. */
export function _databaseInternals(): {
  execute: ExecuteFn;
  connect: (() => DatabaseSession | Promise<DatabaseSession>) | null;
  logger: DatabaseLogger | null;
} | null {
  return current ? { execute: current.execute, connect: current.connect, logger: current.logger } : null;
}

// ---- execution -----------------------------------------------------------------

/**
 * The configured retries as a policy, placed inside the breaker
 * (`wrap(breaker, retries)`): one statement's attempts count as one breaker
 * call, as before, so a few failing statements still open it at
 * `failureThreshold` and the breaker's timeout bounds the whole call.
 */
function retriesOf(d: ResolvedDatabase): RetryPolicy {
  // The breaker's backoff family (core::backoff): doubling, capped, equal
  // jitter. A cap below the first delay caps the first delay too (as before).
  return retry({
    maxRetries: d.retries,
    baseDelay: Math.min(d.retryDelayMs, d.maxRetryDelayMs),
    maxDelay: d.maxRetryDelayMs,
    jitter: 'equal',
    retryOn: (err) => d.retryOn(err),
  });
}

function breakerFor(d: ResolvedDatabase, name: string) {
  return getCircuitBreakerRegistry().get(name, {
    ...d.breaker,
    // Reads the live configuration, so a later configureDatabase({ classifyError }) applies
    // to breakers that already exist.
    isFailure: d.breaker.isFailure ?? ((err: Error) => (current ?? d).classify(err) === 'transient'),
  });
}

function checkSql(sql: unknown, args: unknown): unknown[] {
  if (typeof sql !== 'string') throw new TypeError(`sql must be a string, got ${sql === null ? 'null' : typeof sql}`);
  if (sql.trim() === '') throw new RangeError('sql must not be empty');
  if (args === undefined) return [];
  if (!Array.isArray(args)) throw new TypeError(`args must be an array, got ${args === null ? 'null' : typeof args}`);
  return args;
}

function checkName(name: string): void {
  if (name.length === 0 || name.length > 200) throw new RangeError(`name must be 1 to 200 characters, got ${name.length}`);
}

/** Version B: the callback gets the configured db and the call's AbortSignal (fired on timeout). */
export type DatabaseOperation<T> = (db: any, signal?: AbortSignal) => T | Promise<T>;

/**
 * Runs SQL (version A: `(sql, args)`, breaker `database`) or a callback
 * (version B: `(name, async (db) => ...)`, breaker `db-<name>`) through a
 * circuit breaker with the database defaults. A missing database throws
 * `DatabaseNotConfiguredError` before the breaker and never trips it.
 * Rejects with `CircuitOpenError` while the breaker is open, with
 * `CircuitTimeoutError` after the per-call timeout, and with the driver's
 * own error otherwise (client errors unchanged, not retried).
 *
 *   const { rows } = await executeWithCircuitBreaker('SELECT * FROM users WHERE id = $1', [id]);
 */
export function executeWithCircuitBreaker<T = any>(sql: string, args?: unknown[]): Promise<T>;
export function executeWithCircuitBreaker<T = any>(name: string, operation: DatabaseOperation<T>): Promise<T>;
export async function executeWithCircuitBreaker<T = any>(first: string, second?: unknown[] | DatabaseOperation<T>): Promise<T> {
  if (typeof first === 'string' && typeof second === 'function') {
    checkName(first);
    const d = need();
    const op = second;
    return wrap(breakerFor(d, `db-${first}`), d.retry).execute((signal) => op(d.db, signal)) as Promise<T>;
  }
  const args = checkSql(first, second);
  const d = need();
  // The parameter makes the breaker pass its timeout's signal, which stops the retries.
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  return wrap(breakerFor(d, DEFAULT_DATABASE_BREAKER), d.retry).execute((_signal) => d.execute(first, args)) as Promise<T>;
}

/**
 * The same without a breaker, retries or timeout (health checks): version A
 * `executeDirect(sql, args)` or version B `executeDirect(async (db) => ...)`.
 *
 *   await executeDirect('SELECT 1'); // no breaker, no retries
 */
export function executeDirect<T = any>(sql: string, args?: unknown[]): Promise<T>;
export function executeDirect<T = any>(operation: DatabaseOperation<T>): Promise<T>;
export async function executeDirect<T = any>(first: string | DatabaseOperation<T>, second?: unknown[]): Promise<T> {
  if (typeof first === 'function') {
    return (await first(need().db)) as T;
  }
  const args = checkSql(first, second);
  return (await need().execute(first, args)) as T;
}

// ---- health gate -------------------------------------------------------------

export interface DatabaseGateOptions {
  /** How long `SELECT 1` may take before the check fails (default 2000 ms). */
  timeoutMs?: number;
  /** Gate id (default `database`, as the original). */
  serviceId?: string;
  /** Blocks readiness when failing (default true, as the original). */
  critical?: boolean;
  /** Passes in a row before the gate is ready (default 3, as the original). */
  requiredConsecutivePasses?: number;
}

export interface DatabaseGate {
  serviceId: string;
  name: string;
  critical: boolean;
  requiredConsecutivePasses: number;
  check: () => Promise<boolean>;
}

/**
 * A health-gate description for `getHealthGates().registerGate(databaseGate())`.
 * `check()` resolves true when no database is configured and `DATABASE_URL`
 * is unset (the original's `checkDatabaseGate`), false when `DATABASE_URL`
 * is set but no database was configured, and otherwise whether
 * `executeDirect('SELECT 1')` succeeds within `timeoutMs`. It never rejects.
 *
 *   getHealthGates().registerGate(databaseGate({ timeoutMs: 2000 }));
 */
export function databaseGate(opts: DatabaseGateOptions = {}): DatabaseGate {
  if (opts === null || typeof opts !== 'object') throw new TypeError(`opts must be an object, got ${opts === null ? 'null' : typeof opts}`);
  const timeoutMs = opts.timeoutMs ?? 2000;
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs)) throw new TypeError('timeoutMs must be a finite number');
  if (timeoutMs <= 0) throw new RangeError(`timeoutMs must be > 0, got ${timeoutMs}`);
  const serviceId = opts.serviceId ?? 'database';
  if (typeof serviceId !== 'string' || serviceId === '') throw new TypeError('serviceId must be a non-empty string');
  const required = opts.requiredConsecutivePasses ?? 3;
  if (!Number.isInteger(required) || required < 1) throw new RangeError(`requiredConsecutivePasses must be an integer >= 1, got ${required}`);
  return {
    serviceId,
    name: 'Database',
    critical: opts.critical ?? true,
    requiredConsecutivePasses: required,
    check: () => checkDatabase(timeoutMs),
  };
}

/**
 * One `SELECT 1` bounded by `timeoutMs`; true/false, never throws.
 *
 *   const up = await checkDatabase(2000); // true or false, never rejects
 */
export async function checkDatabase(timeoutMs = 2000): Promise<boolean> {
  if (!current) return !process.env.DATABASE_URL;
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
      timer.unref();
    });
    const ok = executeDirect('SELECT 1').then(
      () => true,
      () => false,
    );
    return await Promise.race([ok, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// The startup DAG's database check (`assertDatabaseHealthy`) asks this module through a probe.
setDatabaseProbe({ isDatabaseConfigured, executeDirect: (sql: string) => executeDirect(sql) });
