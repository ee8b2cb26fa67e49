/**
 * Traffic shaping: a drop-in replacement for the original
 * `server/core/traffic-shaping.ts` and `server/middleware/traffic-shaping.ts`
 * (spec §2.6–§2.8), with the decisions and the SLO analysis in Rust
 * (`src/core/traffic_shaping/`: config, bucket, cohort, slo, rollout, set).
 *
 * - Sticky bucketing: MurmurHash3 of `<rollout>:<key>` into 10,000 buckets
 *   (0.01 % steps); raising a percentage only adds users. `hash: 'legacy'`
 *   keeps the original B rule (Java hashCode % 100).
 * - Outcomes are appended to a ring that Rust drains in one call (when full,
 *   before reads, or by one shared unref'd timer); each drain evaluates the
 *   rollouts it touched, and a breach rolls back within that evaluation.
 *   New-cohort outcomes of a rollout that rolls back by itself (`slo` and
 *   `autoRollback: true`) are recorded at once instead, and Rust judges the
 *   ones that could start a breach on the spot, so a rollback acts on the
 *   request that makes the breach, as the original's rule did.
 * - The original's log lines (start, update, SLO breach, rollback) go to the
 *   package's logger (`configureTrafficShaping({ logger })`, `null` silences).
 * - Events: `breach`, `rollback`, `advance`, `pause`, `resume`, `promote`,
 *   `abort`, `start`, `update`, and `change` for all of them.
 */
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { setTimeout } from 'node:timers';
import { isPackageRequest } from './express/endpoints';
import { cohortOf, ensureAccessors } from './express/accessors';
import { markRefused, REFUSAL } from './express/route-labels';
import { liveSlot, track, type Owner, type RolloutRecorder } from './express/tracker';
// `Binding` names the binding's types in the emitted .d.ts (why: lib/native.ts).
import { native, type Binding } from './native';
import { epoch, onClock, underTestRunner } from './test-runner';

// The package's clock (./test-runner): the same one metrics started the
// request on, or an injected/fake clock would give negative durations.
let now: () => number = () => performance.now();
onClock((c) => (now = c));
import { peekOps } from './ops-peek';
import { RolloutOutcomeFlag } from '../index';

export interface RolloutSlo {
  /** Error-rate ceiling for the new cohort, 0..1 (a strict `>` breaches). */
  errorRate?: number;
  /** Latency ceiling in ms for `latencyQuantile` (default the p99, as the original). */
  p99Latency?: number;
  latencyQuantile?: number;
  /** Availability target (e.g. 0.999): multi-window burn-rate alerting on its error budget. */
  availability?: number;
  /** Default: the SRE workbook's pairs, 14.4x over 1 h and 5 min, 6x over 6 h and 30 min. */
  burnRateWindows?: Array<{ longMs: number; shortMs: number; factor: number }>;
  /** Breach when the new cohort's error rate exceeds the stable cohort's by more than this (0..1). */
  maxErrorRateIncrease?: number;
  /** Breach when the new cohort's latency exceeds the stable cohort's times this (> 1). */
  maxLatencyRatio?: number;
}

export interface RolloutConfig {
  /** 0..100 with 0.01 granularity (default 100). With `steps`, the first step's. */
  percentage?: number;
  allowList?: string[];
  denyList?: string[];
  /** `murmur3` (default: sticky, 10,000 buckets) or `legacy` (the original B rule). */
  hash?: 'murmur3' | 'legacy';
  /** A plan, e.g. 1 → 5 → 25 → 50 → 100, each with a minimum duration and request count. */
  steps?: Array<{ percentage: number; minDurationMs?: number; minRequests?: number }>;
  slo?: RolloutSlo;
  /** Roll back automatically on an SLO breach (default false, as the original: a breach is then only reported). */
  autoRollback?: boolean;
  /** Advance through `steps` automatically when healthy (default true). */
  autoAdvance?: boolean;
  /** Where a rollback goes: 0 % (default) or the last step judged healthy. */
  rollbackTo?: 'zero' | 'last-good-step';
  /** The analysis window in ms (default 60000). */
  windowMs?: number;
  /** New-cohort requests in the window below which the verdict is inconclusive (default 11, as the original's `> 10`). */
  minSamples?: number;
}

export type RolloutEvent = Binding.TsEvent;
export type RolloutDetail = Binding.TsStatus;

/** The original's status, plus the package's figures. */
export interface RolloutStatus {
  percentage: number;
  requestCount: number;
  errorRate: number;
  p99Latency: number | undefined;
  phase: string;
  verdict: string;
  stableRequestCount: number;
}

const RING_CAP = 512;

export interface TrafficShapingLogger {
  log(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

// Quiet under a test runner (see ./test-runner).
let logger: TrafficShapingLogger | null = underTestRunner ? null : console;

/**
 * Package-wide settings: `logger` receives the original's lines (`🚀 Started
 * rollout`, `📊 Updated rollout`, `❌ SLO breach`, `⏪ Rolled back`); `null`
 * silences them.
 *
 * ```ts
 * configureTrafficShaping({ logger: { log: pino.info.bind(pino), error: pino.error.bind(pino) } });
 * ```
 */
export function configureTrafficShaping(opts: { logger?: TrafficShapingLogger | null }): void {
  if (opts.logger !== undefined) logger = opts.logger;
}

/** One log line per event, worded as the original's where it had one. A throwing logger is ignored (this runs on the request path). */
function logEvent(e: RolloutEvent): void {
  try {
    logLine(e);
  } catch {
    // The decision stands whatever the logger does.
  }
}

function logLine(e: RolloutEvent): void {
  const l = logger;
  if (!l) return;
  switch (e.kind) {
    case 'start':
      return l.log(`🚀 [TrafficShaping] Started rollout "${e.name}" at ${e.toPercentage}%`);
    case 'update':
    case 'advance':
    case 'promote':
    case 'resume':
      return l.log(`📊 [TrafficShaping] Updated rollout "${e.name}" to ${e.toPercentage}%${e.kind === 'update' ? '' : ` (${e.kind}${e.reason ? `: ${e.reason}` : ''})`}`);
    case 'breach':
      return l.error(`❌ [TrafficShaping] SLO breach on "${e.name}": ${e.reason}`);
    case 'rollback':
    case 'abort':
      return l.log(`⏪ [TrafficShaping] Rolled back "${e.name}" to ${e.toPercentage}%${e.reason ? ` (${e.reason})` : ''}`);
    case 'pause':
      return l.log(`⏸️  [TrafficShaping] Paused rollout "${e.name}" at ${e.toPercentage}%${e.reason ? ` (${e.reason})` : ''}`);
  }
}

function checkName(name: unknown): asserts name is string {
  if (typeof name !== 'string') throw new TypeError(`name must be a string, got ${name === null ? 'null' : typeof name}`);
}
/** Cached buckets per rollout (about 100 bytes each). */
const BUCKET_CACHE = 10_000;
/** Buffered outcomes are applied at the latest this long after the first. */
const FLUSH_MS = 250;

/**
 * Sticky percentage rollouts with SLO analysis (the rules live in the Rust
 * core); emits `rollback`, `advance`, `complete`. Get the process's one with
 * `getTrafficShaping()`.
 *
 *   getTrafficShaping().startRollout('search-v2', { steps: [{ percentage: 5 }, { percentage: 100 }] });
 *   getTrafficShaping().shouldRoute('search-v2', 'user-42'); // the same answer for user-42 every time
 */
export class TrafficShaping extends EventEmitter {
  /** The native set of rollouts: freed with this object. */
  private readonly h = new native.RolloutTable();
  /**
   * `RolloutTable#record` as a function of its own: a judged rollout records
   * every new-cohort outcome at once, one crossing per request, and a class
   * method's crossing costs more (see `recordFn` in src/rollout_napi.rs).
   */
  private readonly recordNow = this.h.recordFn();
  private readonly ring = new Float64Array(1 + 3 * RING_CAP);
  private readonly ids = new Map<string, number>();
  /** Per id, Rust's answer for every key (1 new, 0 stable) or -1 when it depends on the key. */
  private readonly uniform: number[] = [];
  /** Per id: new-cohort outcomes are recorded at once and judged by Rust (it says which rollouts). */
  private readonly judged: boolean[] = [];
  private readonly configs = new Map<string, RolloutConfig>();
  /**
   * Per rollout id, key → Rust's decision (`RolloutTable#decide`), valid until the
   * rollout's percentage or config changes (then dropped): repeat users
   * cost a map lookup instead of a crossing, and the rule itself (lists,
   * buckets, percentage) stays in Rust. Bounded: a full cache is dropped
   * and refilled.
   */
  private readonly buckets: Array<Map<string, boolean>> = [];
  /** Per rollout id, `RolloutTable#decideFn`: Rust's decision for a key not cached, in a one-argument crossing. */
  private readonly decideOf: Array<(key: string) => boolean> = [];
  /** Cache lookups and hits since the cache was last emptied (see `shouldRoute`). */
  private lookups = 0;
  private hits = 0;
  /** While > 0, new buckets are not cached (keys do not repeat: caching them only costs). */
  private noCacheFor = 0;
  private timer: NodeJS.Timeout | null = null;
  /** Outcomes went through `RolloutTable#record` without an analysis since the last drain. */
  private recordedPending = false;

  /** Starts (or restarts, zeroing its figures) a rollout. */
  startRollout(name: string, config: RolloutConfig = {}): void {
    if (typeof name !== 'string') throw new TypeError(`name must be a string, got ${typeof name}`);
    this.flush();
    const r = this.h.start(name, config, Date.now());
    this.ids.set(name, r.id);
    this.uniform[r.id] = r.event.uniform;
    this.judged[r.id] = r.judgedOnRecord;
    this.buckets[r.id] = new Map();
    this.decideOf[r.id] = this.h.decideFn(r.id);
    this.configs.set(name, { ...config });
    this.emitEvent(r.event);
    // An operator rollback recorded before a restart still applies.
    const ops = peekOps();
    if (ops?.status().rolledBack.some((x) => x.name === name)) this.rollback(name, 'operator rollback (restored from the ops state)');
  }

  /**
   * `updateRollout(name, percentage)` sets the percentage (unknown name:
   * `Rollout not found: <name>`, as the original A). `updateRollout(name,
   * partialConfig)` merges onto the current config, or starts the rollout
   * from the defaults (as the original B).
   */
  updateRollout(name: string, update: number | RolloutConfig): void {
    checkName(name);
    this.flush();
    if (typeof update === 'number') {
      const e = this.h.setPercentage(name, update, 'manual update', Date.now());
      this.applyEvent(e);
      const c = this.configs.get(name);
      if (c) c.percentage = update;
      return;
    }
    if (update === null || typeof update !== 'object') throw new TypeError(`update must be a percentage or a config object, got ${update === null ? 'null' : typeof update}`);
    const current = this.configs.get(name);
    if (!current) return this.startRollout(name, update);
    const merged = { ...current, ...update };
    const r = this.h.reconfigure(name, merged, Date.now());
    this.uniform[r.id] = r.event.uniform;
    this.judged[r.id] = r.judgedOnRecord;
    this.buckets[r.id] = new Map(); // the hash mode or the lists may have changed
    this.configs.set(name, merged);
    this.emitEvent(r.event);
  }

  /** Fast rollback to 0 %, skipping analysis. Unknown names do nothing (as the original). */
  rollback(name: string, reason = 'manual rollback'): void {
    checkName(name);
    if (!this.ids.has(name)) return;
    this.flush();
    this.applyEvent(this.h.action(name, 'rollback', String(reason), Date.now()));
  }

  pause(name: string, reason = ''): void {
    checkName(name);
    this.applyEvent(this.h.action(name, 'pause', String(reason), Date.now()));
  }

  resume(name: string, reason = ''): void {
    checkName(name);
    this.applyEvent(this.h.action(name, 'resume', String(reason), Date.now()));
  }

  /** To 100 % at once. */
  promote(name: string, reason = ''): void {
    checkName(name);
    this.applyEvent(this.h.action(name, 'promote', String(reason), Date.now()));
  }

  /** To 0 %, and it stays there (no automatic advance). */
  abort(name: string, reason = ''): void {
    checkName(name);
    this.applyEvent(this.h.action(name, 'abort', String(reason), Date.now()));
  }

  /**
   * Is `key` (a user id, header value, session or IP) in the new cohort of
   * `name`? True when `name` has no rollout (as the original).
   */
  shouldRoute(name: string, key = 'anonymous'): boolean {
    const id = this.ids.get(name);
    if (id === undefined) return true;
    const u = this.uniform[id];
    if (u >= 0) return u === 1;
    const cache = this.buckets[id];
    let b = cache.get(key);
    this.lookups++;
    if (b === undefined) {
      b = this.decideOf[id](typeof key === 'string' ? key : String(key));
      if (this.noCacheFor > 0) this.noCacheFor--;
      else {
        if (cache.size >= BUCKET_CACHE) {
          // A cache that filled up with under 10 % hits is not helping (every
          // key new): stop inserting for a while instead of churning the map.
          if (this.hits * 10 < this.lookups) this.noCacheFor = 10 * BUCKET_CACHE;
          cache.clear();
          this.lookups = this.hits = 0;
        }
        cache.set(key, b);
      }
    } else this.hits++;
    return b;
  }

  /** Records one outcome (unknown names are ignored, as the original). */
  recordRequest(name: string, success: boolean, latencyMs: number, cohort: 'new' | 'stable' = 'new'): void {
    const id = this.ids.get(name);
    if (id === undefined) return;
    const flags = (cohort === 'stable' ? 0 : RolloutOutcomeFlag.NewCohort) | (success ? RolloutOutcomeFlag.Ok : 0);
    if (cohort !== 'stable' && this.judged[id]) {
      // Judged now: a breach must act within a few requests, not after the ring's delay.
      const events = this.recordNow(id, flags, latencyMs, Date.now());
      if (events != null) for (const e of events) this.applyEvent(e);
      else {
        // Not judged yet (it could not breach): the deferred drain analyses it (step advances).
        this.recordedPending = true;
        this.armFlush();
      }
      return;
    }
    let n = this.ring[0];
    if (n >= RING_CAP) {
      this.flush();
      n = 0;
    }
    const o = 1 + 3 * n;
    this.ring[o] = id;
    this.ring[o + 1] = flags;
    this.ring[o + 2] = latencyMs;
    this.ring[0] = n + 1;
    this.armFlush();
  }

  /** One shared unref'd timer: buffered (or unjudged) outcomes are analysed within FLUSH_MS. */
  private armFlush(): void {
    if (this.timer === null) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.flush();
      }, FLUSH_MS);
      this.timer.unref();
    }
  }

  /** Applies buffered outcomes now and runs the analysis of what they touched. */
  flush(): void {
    if (this.ring[0] === 0 && !this.recordedPending) return;
    this.recordedPending = false;
    const events = this.h.drain(this.ring, Date.now());
    this.ring[0] = 0;
    for (const e of events) this.applyEvent(e);
  }

  private applyEvent(e: RolloutEvent): void {
    if (e.fromPercentage !== e.toPercentage || this.uniform[e.id] !== e.uniform) this.buckets[e.id]?.clear();
    this.uniform[e.id] = e.uniform;
    this.emitEvent(e);
  }

  private emitEvent(e: RolloutEvent): void {
    logEvent(e);
    this.emit(e.kind, e);
    this.emit('change', e);
  }

  /**
   * @internal The Redis backend's cluster-wide check: `requests`/`errors`
   * are the new cohort of `name` summed over every instance. The error-rate
   * limit broken, or null (also for unknown names); the rule is Rust's.
   */
  clusterBreach(name: string, requests: number, errors: number): number | null {
    const id = this.ids.get(name);
    return id === undefined ? null : this.h.clusterBreach(id, Number(requests), Number(errors));
  }

  /** The original's `getStatus`: `{ percentage, requestCount, errorRate, p99Latency }` plus more; null for unknown names. */
  getStatus(name: string): RolloutStatus | null {
    const d = this.getRolloutStatus(name);
    if (!d) return null;
    const w = d.newCohort.windows.find((x) => x.window === 'window');
    return {
      percentage: d.percentage,
      requestCount: d.newCohort.totalRequests,
      errorRate: d.newCohort.totalRequests === 0 ? 0 : d.newCohort.totalErrors / d.newCohort.totalRequests,
      p99Latency: w?.p99 ?? undefined,
      phase: d.phase,
      verdict: d.verdict,
      stableRequestCount: d.stableCohort.totalRequests,
    };
  }

  /** Everything about one rollout: step, cohorts per window, SLO verdict, burn rates, history. */
  getRolloutStatus(name: string): RolloutDetail | null {
    const id = this.ids.get(name);
    if (id === undefined) return null;
    this.flush();
    return this.h.status(id, Date.now());
  }

  /** `[{ name, status }]` in creation order. */
  getAllRollouts(): Array<{ name: string; status: RolloutStatus }> {
    return this.h.list().map((name) => ({ name, status: this.getStatus(name)! }));
  }

  names(): string[] {
    return this.h.list();
  }

  has(name: string): boolean {
    return this.ids.has(name);
  }

  /** The config a rollout was started (and updated) with, or undefined. */
  getConfig(name: string): Readonly<RolloutConfig> | undefined {
    const c = this.configs.get(name);
    return c ? { ...c } : undefined;
  }

  /** The body of `GET /api/observability/rollouts`. */
  getReport() {
    this.flush();
    return {
      rollouts: this.h.list().map((name) => ({ name, status: this.getStatus(name)!, detail: this.getRolloutStatus(name)! })),
      timestamp: Date.now(),
    };
  }
}

let shaping: TrafficShaping | null = null;
let shapingEpoch = epoch();

/**
 * The process-wide manager (a lazily created singleton, as the original).
 *
 *   getTrafficShaping().on('rollback', (e) => console.warn(`${e.name} rolled back: ${e.reason}`));
 */
export function getTrafficShaping(): TrafficShaping {
  // After resetAll() the rollouts Rust held are gone: start a new manager.
  if (!shaping || shapingEpoch !== epoch()) {
    shaping = new TrafficShaping();
    shapingEpoch = epoch();
  }
  return shaping;
}

/**
 * As the original: true when `name` has no rollout; sticky per `userId` (default `'anonymous'`).
 *
 *   if (shouldRouteToNewVersion('search-v2', req.user.id)) return searchV2(req, res);
 */
export function shouldRouteToNewVersion(name: string, userId = 'anonymous'): boolean {
  return getTrafficShaping().shouldRoute(name, userId);
}

/**
 * As the original: records one request's outcome for the rollout `name`.
 *
 *   recordRequestMetrics('search-v2', res.statusCode < 400, 42, 'new');
 */
export function recordRequestMetrics(name: string, success: boolean, latencyMs: number, cohort: 'new' | 'stable' = 'new'): void {
  getTrafficShaping().recordRequest(name, success, latencyMs, cohort);
}

/**
 * Sets a rollout's percentage, or replaces its config.
 *
 *   updateRollout('search-v2', 25);
 */
export function updateRollout(name: string, update: number | RolloutConfig): void {
  getTrafficShaping().updateRollout(name, update);
}

/**
 * The docs' name: the full status of one rollout, or null.
 *
 *   getRolloutStatus('search-v2')?.percentage;
 */
export function getRolloutStatus(name: string): RolloutDetail | null {
  return getTrafficShaping().getRolloutStatus(name);
}

/**
 * Every rollout's status, as served by the observability router.
 *
 *   const { rollouts } = getRolloutsReport();
 */
export function getRolloutsReport() {
  return getTrafficShaping().getReport();
}

/**
 * `GET` handler for `/api/observability/rollouts`.
 *
 *   app.get('/api/rollouts', rolloutsHandler);
 */
export function rolloutsHandler(_req: unknown, res: any): void {
  try {
    res.json(getRolloutsReport());
  } catch (e) {
    res.status(500).json({ error: 'Failed to get rollouts', message: (e as Error).message });
  }
}

/**
 * For the ops plane's rollback command.
 *
 *   const c = rolloutController();
 */
export function rolloutController() {
  return {
    names: () => getTrafficShaping().names(),
    rollback: (name: string, reason: string) => getTrafficShaping().rollback(name, reason),
  };
}


// ---- middleware ----------------------------------------------------------------

export interface TrafficShapingOptions {
  /** The rollout (default: `req.trafficShapingConfig.rolloutName`, else the path, as the original). */
  rolloutName?: string;
  /** The original's flag; `false` turns the middleware into a pass-through. */
  enabled?: boolean;
  /** Blocked requests: 503 with the original body (default), or `next` marked as the stable cohort. */
  onBlocked?: '503' | 'next';
  /** Header with a stickiness key, tried after `req.user.id` (default `x-user-id`). */
  stickinessHeader?: string;
  /** Which answers count as successes (default: status < 400, as the original). */
  isSuccess?: (statusCode: number) => boolean;
  /** The response header naming the cohort (default `x-rollout-cohort`; false: none, about 2 µs cheaper per request). */
  cohortHeader?: string | false;
  shaping?: TrafficShaping;
}

/**
 * `req.user`, read only where it can exist: as the request's own property
 * (passport and most auth middleware set it so) or on its prototype chain.
 * Under Express every request object gets a hidden class of its own, so no
 * inline cache holds and a property that is missing costs a walk of the
 * whole prototype chain: ~0.4 µs per request, measured under load. An own
 * property check costs ~0.04 µs, and the prototype is checked when it
 * changes and every 1024th request (so a `user` defined on a prototype
 * later is seen within 1024 requests).
 */
function userOf(req: any): any {
  if (Object.prototype.hasOwnProperty.call(req, 'user')) return req.user;
  const proto = Object.getPrototypeOf(req);
  if (proto !== userProto || (++userChecks & 1023) === 0) {
    userProto = proto;
    protoHasUser = proto !== null && 'user' in proto;
  }
  return protoHasUser ? req.user : undefined;
}
let userProto: object | null = null;
let protoHasUser = false;
let userChecks = 0;

/** The stickiness key: user id, then the header, then the session, then the IP. */
function keyOf(req: any, header: string): string {
  const v = userOf(req)?.id ?? req.headers?.[header] ?? req.session?.id ?? req.sessionID ?? req.ip ?? 'anonymous';
  return String(Array.isArray(v) ? v[0] : v);
}

/**
 * @internal The `cohortHeader` option: a header name, or null for none (`false`; `undefined` gives `fallback`).
 *
 *   cohortHeaderOf(options.cohortHeader, null);
 */
export function cohortHeaderOf(v: unknown, fallback: string | null): string | null {
  const h = v === false ? null : v === undefined ? fallback : v;
  if (h !== null && (typeof h !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(h))) {
    throw new TypeError(`cohortHeader must be a header name or false, got ${JSON.stringify(h)}`);
  }
  return h;
}

function checkOnBlocked(v: unknown): void {
  if (v !== undefined && v !== '503' && v !== 'next') throw new RangeError(`onBlocked must be '503' or 'next', got ${JSON.stringify(v)}`);
}

/**
 * @internal Decides the cohort of `req` for rollout `name`, sets
 * `req.rollout` (unless `setOnRequest` is false: `reliabilityStack` serves
 * it from a getter) and the `cohortHeader` header (null: none), or answers the original
 * 503 (and returns null) when the request is blocked and `onBlocked` is not
 * `next`. Recording the outcome is the caller's (one listener for all).
 */
export function pickCohort(
  ts: TrafficShaping,
  name: string,
  req: any,
  res: any,
  header: string,
  onBlocked: '503' | 'next' | undefined,
  setOnRequest = true,
  cohortHeader: string | null = 'x-rollout-cohort',
): 'new' | 'stable' | null {
  const routed = ts.shouldRoute(name, keyOf(req, header));
  if (!routed && onBlocked !== 'next') {
    markRefused(req, REFUSAL.rollout);
    res.status(503).json({ error: 'Service in gradual rollout', message: 'This endpoint is currently rolling out. Please retry in a moment.', rolloutName: name });
    return null;
  }
  const cohort: 'new' | 'stable' = routed ? 'new' : 'stable';
  if (setOnRequest) req.rollout = { name, cohort };
  if (cohortHeader !== null && ts.has(name)) res.setHeader(cohortHeader, cohort);
  return cohort;
}

function shape(options: TrafficShapingOptions) {
  const header = (options.stickinessHeader ?? 'x-user-id').toLowerCase();
  const isSuccess = options.isSuccess ?? ((s: number) => s < native.ERROR_STATUS_FROM);
  const cohortHeader = cohortHeaderOf(options.cohortHeader, 'x-rollout-cohort');
  checkOnBlocked(options.onBlocked);
  const recorder: RolloutRecorder = {
    record: (r, status, ms) => (options.shaping ?? getTrafficShaping()).recordRequest(r.name, isSuccess(status), ms, r.cohort),
  };
  return function trafficShaping(req: any, res: any, next: (e?: unknown) => void) {
    if (options.enabled === false) return next();
    // The package's own endpoints (probes, metrics, ops) are never refused by a rollout.
    if (isPackageRequest(req)) return next();
    // Decided already (an earlier shaping layer, or an own `req.rollout`).
    const live = liveSlot(req);
    if (live !== null ? live.rollout !== null : Object.prototype.hasOwnProperty.call(req, 'rollout')) return next();
    const ts = options.shaping ?? getTrafficShaping();
    const name: string = options.rolloutName ?? req.trafficShapingConfig?.rolloutName ?? req.path ?? req.route?.path ?? 'default';
    ensureAccessors(req);
    const cohort = pickCohort(ts, name, req, res, header, options.onBlocked, false, cohortHeader);
    if (cohort === null) return;
    // The decision and its outcome ride on the request's record (the one
    // metricsMiddleware or the stack made, or a new one), so no property is
    // stored on the request and no listener added (see express/tracker.ts).
    const slot = live ?? track(req, res, NO_OWNER, now());
    if (slot !== null) {
      slot.rollout = cohortOf(name, cohort);
      slot.recorder = recorder;
    } else {
      req.rollout = { name, cohort };
      const t0 = now();
      res.on('finish', () => recorder.record({ name, cohort }, res.statusCode, now() - t0));
    }
    next();
  };
}

/** The owner of requests only a shaping layer tracks: it records nothing itself. */
const NO_OWNER: Owner = { end() {} };

/** The original's middleware (rollout from `req.trafficShapingConfig` or the path). */
export const trafficShapingMiddleware = shape({});

/**
 * Per-route shaping: `app.get('/api/search', withTrafficShaping({ rolloutName: 'search-v2' }), handler)`.
 * Stores the config on `req.trafficShapingConfig` (as the original) and applies it.
 *
 *   app.get('/search', withTrafficShaping({ rolloutName: 'search-v2', onBlocked: 'next' }), handler);
 */
export function withTrafficShaping(config: { rolloutName: string } & TrafficShapingOptions) {
  if (!config || typeof config.rolloutName !== 'string') throw new TypeError('rolloutName must be a string');
  const mw = shape(config);
  return (req: any, res: any, next: (e?: unknown) => void) => {
    req.trafficShapingConfig = config;
    mw(req, res, next);
  };
}
