/**
 * Startup DAG: a drop-in replacement for the original
 * `server/core/startup-dag.ts` (`getStartupDAG`, `alwaysHealthy`,
 * `checkDatabaseHealth`), with the graph and the run's state in Rust
 * (`src/core/startup/`, petgraph).
 *
 * This file only runs the user's callbacks: it asks Rust which services may
 * start, runs their `init` and `healthCheck` with timeouts, and reports each
 * outcome back. Rust decides the order, the parallel levels, what a failure
 * does to dependents, and whether startup is aborted.
 *
 * Differences from the original, on purpose (see README):
 * - every problem in the graph (missing dependencies, cycles with their
 *   path) is reported at once, and a failed `initialize()` leaves the DAG
 *   usable, so the graph can be fixed and started again;
 * - services whose dependencies are ready start in parallel (`concurrency`,
 *   default 8) instead of one at a time;
 * - a failed non-critical service marks its dependents degraded at once,
 *   instead of each waiting 30 s and failing;
 * - a health check must answer `true`; anything else fails with the reason;
 * - timers are cleared as soon as each step settles.
 */
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { setTimeout, clearTimeout } from 'node:timers';
import { native } from './native';
import { epoch, underTestRunner } from './test-runner';

export interface ServiceNode {
  id: string;
  /** Display name (defaults to the id). */
  name?: string;
  /** Ids of the services that must be ready first. */
  dependencies?: string[];
  /** A critical failure aborts startup and blocks readiness. */
  critical?: boolean;
  init?: () => unknown;
  /** Must resolve `true`; anything else counts as a failure. */
  healthCheck?: () => unknown;
  /** Init timeout in ms (default 30000). */
  timeout?: number;
  /** Health-check timeout in ms (default 5000). */
  healthCheckTimeout?: number;
}

export type ServiceStatus = 'pending' | 'initializing' | 'ready' | 'failed' | 'degraded';

export interface DagLogger {
  log(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

type NativeDag = InstanceType<typeof native.StartupDag>;
export type DagProblem = ReturnType<NativeDag['plan']>['problems'][number];
export type StartupReport = ReturnType<NativeDag['report']>;

/**
 * Thrown when the graph cannot be ordered; `problems` lists every one.
 *
 *   catch (e) { if (e instanceof StartupDAGError) console.error(e.message); }
 */
export class StartupDAGError extends Error {
  readonly problems: DagProblem[];
  constructor(problems: DagProblem[]) {
    const list = problems.map((p) => p.message);
    super(
      list.length === 1
        ? list[0]
        : `Startup DAG has ${list.length} problems: ${list.map((m, i) => `(${i + 1}) ${m}`).join('; ')}`,
    );
    this.name = 'StartupDAGError';
    this.problems = problems;
  }
}

// Quiet under a test runner (see ./test-runner); setLogger(console) turns it on.
let logger: DagLogger | null = underTestRunner ? null : console;

/**
 * Package-wide logger for the DAG, the loader and the gates (`null` silences them).
 *
 *   configureStartupLogging({ logger: null }); // silence
 */
export function configureStartupLogging(opts: { logger?: DagLogger | null }): void {
  if (opts.logger !== undefined) logger = opts.logger;
}

/**
 * @internal shared with the loader and the gates.
 *
 *   getLogger()?.info('starting');
 */
export function getLogger(): DagLogger | null {
  return logger;
}

function checkFn(field: string, v: unknown): void {
  if (v !== undefined && typeof v !== 'function') {
    throw new TypeError(`${field} must be a function, got ${v === null ? 'null' : typeof v}`);
  }
}

/**
 * The message of anything thrown, as the original wrapped non-Errors.
 *
 *   reasonOf(new Error('boom')); // 'boom'
 */
export function reasonOf(e: unknown): string {
  if (e instanceof Error) return e.message || e.name;
  try {
    return String(e);
  } catch {
    return 'unknown error';
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- objects are excluded just before
  return typeof v === 'object' ? 'an object' : `${typeof v} ${String(v).slice(0, 40)}`;
}

const TIMED_OUT = Symbol('timed out');

/** Epoch ms with sub-ms precision, so report durations agree with the measured steps. */
const now = () => performance.timeOrigin + performance.now();

/**
 * Races `p` against a timer. The timer stays ref'd on purpose: it is
 * cleared as soon as `p` settles, and it is what turns a hung init into a
 * reported failure instead of a process that exits or hangs silently.
 */
function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(resolve, ms, TIMED_OUT);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

function call(fn: (() => unknown) | undefined): Promise<unknown> {
  if (!fn) return Promise.resolve(true);
  try {
    return Promise.resolve(fn());
  } catch (e) {
    return Promise.reject(e);
  }
}

export interface InitializeOptions {
  /** Services starting at once (default 8). */
  concurrency?: number;
}

/**
 * A dependency graph of services and its startup run. Events:
 * `serviceStart` (id), `serviceReady` (id, ms), `serviceFailed` (id, reason,
 * degradedIds), `done` (report).
 *
 *   getStartupDAG().register({ id: 'db', dependencies: [], init: connect, healthCheck: ping, critical: true });
 */
export class StartupDAG extends EventEmitter {
  /** This DAG's native half: owned here, freed with this object. */
  private readonly d: NativeDag = new native.StartupDag();
  private readonly nodes = new Map<string, ServiceNode>();
  private byIndex: string[] = [];
  private running: Promise<StartupReport> | null = null;

  /** Adds a service, or replaces the one with the same id. */
  register(node: ServiceNode): void {
    if (node === null || typeof node !== 'object') {
      throw new TypeError(`node must be an object, got ${node === null ? 'null' : typeof node}`);
    }
    checkFn('node.init', node.init);
    checkFn('node.healthCheck', node.healthCheck);
    const i = this.d.register(node);
    this.byIndex[i] = node.id;
    this.nodes.set(node.id, { ...node });
  }

  /** Alias of `register`. */
  addNode(node: ServiceNode): void {
    this.register(node);
  }

  /** Records a service left out on purpose, so dependencies on it name the reason. */
  skip(id: string, reason: string): void {
    this.d.skip(String(id), String(reason));
  }

  /** Every problem that prevents a start order (empty when there is none). */
  validate(): DagProblem[] {
    return this.d.plan().problems;
  }

  /** Service ids in start order, dependencies first. Throws `StartupDAGError`. */
  topologicalSort(): string[] {
    const p = this.d.plan();
    if (p.problems.length) throw new StartupDAGError(p.problems);
    return p.order;
  }

  /** Service ids per level: a level's services can start together. Throws `StartupDAGError`. */
  getLevels(): string[][] {
    const p = this.d.plan();
    if (p.problems.length) throw new StartupDAGError(p.problems);
    return p.levels;
  }

  isInitialized(): boolean {
    return this.running !== null;
  }

  /**
   * Starts every service in dependency order. Resolves with the startup
   * report; rejects with `StartupDAGError` when the graph has problems
   * (nothing is marked initialised then) or with
   * `Critical service <id> failed to initialize: <reason>`. A second call
   * returns the first call's promise.
   */
  initialize(options: InitializeOptions = {}): Promise<StartupReport> {
    if (this.running) return this.running;
    const concurrency = options.concurrency ?? 8;
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 10_000) {
      return Promise.reject(new RangeError(`concurrency must be an integer from 1 to 10000, got ${String(concurrency)}`));
    }
    const problems = this.d.begin(now());
    if (problems.length) {
      const err = new StartupDAGError(problems);
      logger?.error(`❌ [StartupDAG] ${err.message}`);
      return Promise.reject(err);
    }
    const services = this.d.report().services;
    logger?.log(`🚀 [StartupDAG] Initializing ${services.length} services in dependency order...`);
    this.running = new Promise<StartupReport>((resolve, reject) => {
      let settled = false;
      const finish = () => {
        if (settled || !this.d.finished()) return;
        settled = true;
        const report = this.d.report();
        this.emit('done', report);
        if (report.outcome === 'failed') return reject(new Error(report.error ?? 'startup failed'));
        logger?.log(
          report.outcome === 'ready'
            ? '✅ [StartupDAG] All services initialized'
            : `⚠️  [StartupDAG] Started degraded: ${report.failed} failed, ${report.degraded} not started`,
        );
        resolve(report);
      };
      const pump = () => {
        for (const i of this.d.next(now(), concurrency)) {
          void this.startOne(i, services[i].timeout, services[i].healthCheckTimeout).then((abort) => {
            if (abort && !settled) {
              settled = true;
              logger?.error(`❌ [StartupDAG] ${abort}`);
              this.emit('done', this.d.report());
              reject(new Error(abort));
            }
            pump();
          });
        }
        finish();
      };
      pump();
    });
    return this.running;
  }

  /** Runs one service; returns the abort message if its failure stops startup. */
  private async startOne(i: number, timeout: number, healthTimeout: number): Promise<string | null> {
    const id = this.byIndex[i];
    const node = this.nodes.get(id)!;
    logger?.log(`⏳ [StartupDAG] Initializing ${id}...`);
    this.emit('serviceStart', id);
    const t0 = performance.now();
    let initMs: number | undefined;
    let phase: 'init' | 'health-check' = 'init';
    let reason: string;
    try {
      const r = await withTimeout(call(node.init), timeout);
      if (r === TIMED_OUT) throw new Error(`Init timeout: ${id}`);
      initMs = performance.now() - t0;
      phase = 'health-check';
      const ok = await withTimeout(call(node.healthCheck), healthTimeout);
      const healthMs = performance.now() - t0 - initMs;
      if (ok === true) {
        this.d.reportReady(i, now(), initMs, healthMs);
        logger?.log(`✅ [StartupDAG] ${id} ready (${Math.round(initMs + healthMs)}ms)`);
        this.emit('serviceReady', id, initMs + healthMs);
        return null;
      }
      reason =
        ok === TIMED_OUT
          ? `Health check failed for ${id}: timed out after ${healthTimeout} ms`
          : ok === false
            ? `Health check failed for ${id}`
            : `Health check failed for ${id}: returned ${describe(ok)}, expected true`;
    } catch (e) {
      reason = phase === 'init' ? reasonOf(e) : `Health check failed for ${id}: ${reasonOf(e)}`;
    }
    const effect = this.d.reportFailed(i, now(), reason, phase, initMs);
    logger?.error(`❌ [StartupDAG] ${id} failed:`, reason);
    if (!effect.abort) {
      logger?.warn(
        `⚠️  [StartupDAG] Non-critical service failed, continuing...` +
          (effect.degraded.length ? ` (not starting: ${effect.degraded.join(', ')})` : ''),
      );
    }
    this.emit('serviceFailed', id, reason, effect.degraded);
    return effect.abort ?? null;
  }

  /**
   * The original's status: `{ total, ready, failed, pending, services }`
   * (`pending` counts initializing ones too), plus `degraded`. Services are
   * in registration order; `duration` is set only for ready ones and
   * `error` only for failed or degraded ones.
   */
  getStatus(): {
    total: number;
    ready: number;
    failed: number;
    pending: number;
    degraded: number;
    services: Array<{ id: string; name: string; status: ServiceStatus; critical: boolean; duration?: number; error?: string }>;
  } {
    const r = this.d.report();
    return {
      total: r.total,
      ready: r.ready,
      failed: r.failed,
      pending: r.pending,
      degraded: r.degraded,
      services: r.services.map((s) => ({
        id: s.id,
        name: s.name,
        status: s.status as ServiceStatus,
        critical: s.critical,
        duration: s.duration ?? undefined,
        error: s.error ?? undefined,
      })),
    };
  }

  /** Order, levels, outcome, problems and per-service timings. */
  getStartupReport(): StartupReport {
    return this.d.report();
  }

  /** True when every critical service is ready (vacuously true with none). */
  areCriticalServicesReady(): boolean {
    return this.d.criticalReady();
  }

  /** Forgets every service and the run (tests; or rebuilding the graph). */
  reset(): void {
    this.d.clear();
    this.nodes.clear();
    this.byIndex = [];
    this.running = null;
  }
}

let dag: StartupDAG | null = null;
let dagEpoch = epoch();

/**
 * The process-wide DAG (a lazily created singleton, as the original).
 *
 *   const dag = getStartupDAG();
 */
export function getStartupDAG(): StartupDAG {
  // After resetAll() the graph Rust held is empty: start a new one.
  if (!dag || dagEpoch !== epoch()) {
    dag = new StartupDAG();
    dagEpoch = epoch();
  }
  return dag;
}

/**
 * A health check that always passes.
 *
 *   getStartupDAG().register({ id: 'cache', init, healthCheck: alwaysHealthy });
 */
export async function alwaysHealthy(): Promise<boolean> {
  return true;
}

/**
 * As the original: resolves true when no database is configured and
 * `DATABASE_URL` is unset, or when `SELECT 1` on the configured database
 * (`configureDatabase`/`setDatabase`) answers within 2 s; resolves false
 * otherwise (database down, or `DATABASE_URL` set with nothing configured).
 * It never rejects; `assertDatabaseHealthy()` gives the reason.
 *
 * ```ts
 * if (!(await checkDatabaseHealth())) console.warn('database not healthy');
 * ```
 */
export function checkDatabaseHealth(): Promise<boolean> {
  return assertDatabaseHealthy().then(
    () => true,
    () => false,
  );
}

/** What `assertDatabaseHealthy` needs of the database module. */
export interface DatabaseProbe {
  isDatabaseConfigured(): boolean;
  executeDirect(sql: string): Promise<unknown>;
}

let databaseProbe: DatabaseProbe | null = null;

/** @internal Called by `db-circuit-breaker.ts` at load. */
export function setDatabaseProbe(p: DatabaseProbe): void {
  databaseProbe = p;
}

/**
 * The same probe as `checkDatabaseHealth`, rejecting with the reason (the
 * driver's error, the timeout, or a `DATABASE_URL` set with nothing
 * configured) instead of resolving false: what the `database` gate and DAG
 * health checks use, so readiness says why.
 *
 * ```ts
 * await assertDatabaseHealthy().catch((e) => console.warn(e.message));
 * ```
 */
export async function assertDatabaseHealthy(): Promise<true> {
  // The database module (an integration, above this one) installs itself
  // when it loads; without it no database can be configured.
  const db = databaseProbe;
  if (db?.isDatabaseConfigured()) {
    const r = await withTimeout(db.executeDirect('SELECT 1'), 2000);
    if (r === TIMED_OUT) throw new Error('SELECT 1 did not answer within 2000 ms');
    return true;
  }
  if (!process.env.DATABASE_URL) return true;
  throw new Error('DATABASE_URL is set but no database is configured (setDatabase or configureDatabase)');
}

/**
 * A standalone sort of `services` (`[{ id, dependencies }]`), without
 * registering anything: `{ order, levels }` as ids. The graph crosses to
 * Rust as one JSON string and comes back as one typed array of indices.
 * Throws with every problem (missing ids, cycles with their path).
 *
 *   planStartupOrder([{ id: 'api', dependencies: ['db'] }, { id: 'db' }]).order; // ['db', 'api']
 */
export function planStartupOrder(services: Array<{ id: string; dependencies?: string[] }>): { order: string[]; levels: string[][] } {
  if (!Array.isArray(services)) throw new TypeError(`services must be an array, got ${typeof services}`);
  const pairs = services.map((s) => [s?.id, s?.dependencies ?? []]);
  const out = native.dagSortJson(JSON.stringify(pairs));
  const n = services.length;
  const order: string[] = new Array(n);
  for (let k = 0; k < n; k++) order[k] = services[out[k]].id;
  const levels: string[][] = [];
  for (let i = 0; i < n; i++) {
    const l = out[n + 1 + i];
    (levels[l] ??= []).push(services[i].id);
  }
  return { order, levels };
}
