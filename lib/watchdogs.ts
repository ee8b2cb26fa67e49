/**
 * Watchdogs: queue depth, event-bus publishes, AI-call latency and
 * dead-letter rates, each with warn/critical thresholds and hysteresis,
 * alerts as events and to an optional webhook. The registry, the windows
 * and the state machines are Rust's (`src/core/watchdog.rs`); this file
 * wraps the user's functions and feeds it.
 *
 * Tracked calls go into a ring drained in Rust (when full, before reads, and
 * on one shared unref'd tick that also steps the state machines), so
 * `trackAiCall` adds typed-array writes to a call, not a crossing.
 */
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { setTimeout, setInterval, clearInterval } from 'node:timers';
// `Binding` names the binding's types in the emitted .d.ts (why: lib/native.ts).
import { native, type Binding } from './native';
import { epoch } from './test-runner';
import { peekOps } from './ops-peek';
import { CircuitOpenError, getCircuitBreakerRegistry, type CircuitBreaker, type CircuitBreakerOptions } from './circuit-breaker';
import { getGoldenSignals, registerQueueDepth } from './metrics';

export interface Thresholds {
  warn?: number;
  critical?: number;
  /** How long a value must stay past (or back over) a threshold before the state changes (ms, default 0). */
  holdMs?: number;
}

export type WatchdogView = Binding.WdView;
export type Alert = Binding.WdTransition;

const RING_CAP = 1024;
const TICK_MS = 1000;
/** Per-topic and per-agent series at most; later ones share `other`. */
const MAX_SERIES = 200;

/**
 * A watched value (a queue depth, a pool size), made by `Watchdogs.gauge`.
 *
 *   getWatchdogs().gauge('queue:emails', { warn: 100, critical: 1000 }).set(42);
 */
export class Gauge {
  constructor(private readonly w: Watchdogs, readonly name: string, private readonly id: number) {}
  /** Sets the value (a finite number >= 0). */
  set(value: number): void {
    this.w._set(this.id, value);
  }
}

/**
 * A watched latency (a quantile over a window), made by `Watchdogs.latency`.
 *
 *   getWatchdogs().latency('ai:embeddings', { warn: 2000, critical: 5000 }).record(812);
 */
export class LatencyTracker {
  constructor(private readonly w: Watchdogs, readonly name: string, private readonly id: number) {}
  /** Records one call of `latencyMs` (finite, >= 0); `ok` false counts an error. */
  record(latencyMs: number, ok = true): void {
    this.w._record(this.id, latencyMs, ok);
  }
}

/**
 * A watched event rate (per minute), made by `Watchdogs.counter`.
 *
 *   getWatchdogs().counter('dead-letters', { warn: 10 }).add();
 */
export class RateCounter {
  constructor(private readonly w: Watchdogs, readonly name: string, private readonly id: number) {}
  /** Counts `n` events (a whole number >= 0). */
  add(n = 1): void {
    this.w._count(this.id, n);
  }
}

export interface AlertOptions {
  /** POSTs each state change as JSON here (bounded by `timeoutMs`, retried through a breaker). */
  webhookUrl?: string | null;
  timeoutMs?: number;
  retries?: number;
}

/**
 * The registry. Events: `alert` (a state change `{ name, from, to, value,
 * at }`), `webhookError` (Error).
 *
 *   getWatchdogs().gauge('queue:emails', { warn: 100, critical: 1000, read: () => queue.length });
 */
export class Watchdogs extends EventEmitter {
  /** The native registry: this object owns it, and it is freed when this object is collected. */
  private readonly h = new native.Watchdogs();
  private readonly ring = new Float64Array(1 + 3 * RING_CAP);
  private readonly byName = new Map<string, { id: number; kind: string; handle: Gauge | LatencyTracker | RateCounter }>();
  private readonly pulls = new Map<number, () => number>();
  private timer: NodeJS.Timeout | null = null;
  private alerts: Required<AlertOptions> = { webhookUrl: null, timeoutMs: 3000, retries: 2 };
  private readonly dlqDepths = new Map<string, number>();

  private register(kind: 'gauge' | 'latency' | 'counter', name: string, opts: (Thresholds & { quantile?: number }) | undefined) {
    if (typeof name !== 'string') throw new TypeError(`name must be a string, got ${typeof name}`);
    const id = this.h.register(kind, name, opts, Date.now());
    this.startTicking();
    return id;
  }

  /**
   * @internal A watchdog for a name the package derives from user data. Once
   * the registry is full (1,000 watchdogs), a new name gets the shared
   * watchdog `overflow` instead (`overflowed: true`, counted in
   * `overflowed()`), so the wrappers never fail because of the cap. The
   * fallback handle is not cached by callers (the registry may not be
   * full for ever in another copy).
   */
  _track<K extends 'gauge' | 'latency' | 'counter'>(kind: K, name: string, overflow: string, opts: Thresholds & { quantile?: number } = {}): { handle: K extends 'gauge' ? Gauge : K extends 'latency' ? LatencyTracker : RateCounter; id: number; overflowed: boolean } {
    const t = this.h.track(kind, name, overflow, opts, Date.now());
    this.startTicking();
    const actual = t.overflowed ? overflow : name;
    let had = this.byName.get(actual);
    if (had?.kind !== kind) {
      const handle = kind === 'gauge' ? new Gauge(this, actual, t.id) : kind === 'latency' ? new LatencyTracker(this, actual, t.id) : new RateCounter(this, actual, t.id);
      had = { id: t.id, kind, handle };
      this.byName.set(actual, had);
    }
    return { handle: had.handle as any, id: t.id, overflowed: t.overflowed };
  }

  /** @internal Pulls gauge `id`'s value from `read` on every tick and read. */
  _pull(id: number, read: () => number): void {
    this.pulls.set(id, read);
  }

  /** How many wrapped calls were counted under a shared overflow watchdog because the registry was full. */
  overflowed(): number {
    return this.h.overflowed();
  }

  /** A gauge; with `read`, its value is pulled on every tick and read. */
  gauge(name: string, opts: Thresholds & { read?: () => number } = {}): Gauge {
    const had = this.byName.get(name);
    if (opts.read !== undefined && typeof opts.read !== 'function') throw new TypeError(`read must be a function, got ${typeof opts.read}`);
    const id = this.register('gauge', name, opts);
    if (opts.read) this.pulls.set(id, opts.read);
    const g = had?.kind === 'gauge' ? (had.handle as Gauge) : new Gauge(this, name, id);
    this.byName.set(name, { id, kind: 'gauge', handle: g });
    return g;
  }

  /** A latency tracker watching `quantile` (default 0.99) of the last minute, in ms. */
  latency(name: string, opts: Thresholds & { quantile?: number } = {}): LatencyTracker {
    const had = this.byName.get(name);
    const id = this.register('latency', name, opts);
    const t = had?.kind === 'latency' ? (had.handle as LatencyTracker) : new LatencyTracker(this, name, id);
    this.byName.set(name, { id, kind: 'latency', handle: t });
    return t;
  }

  /** A counter watching its rate per minute. */
  counter(name: string, opts: Thresholds = {}): RateCounter {
    const had = this.byName.get(name);
    const id = this.register('counter', name, opts);
    const c = had?.kind === 'counter' ? (had.handle as RateCounter) : new RateCounter(this, name, id);
    this.byName.set(name, { id, kind: 'counter', handle: c });
    return c;
  }

  /** The watchdog of that name (or undefined). */
  get(name: string): Gauge | LatencyTracker | RateCounter | undefined {
    return this.byName.get(name)?.handle;
  }

  /** @internal */
  _set(id: number, value: number): void {
    if (typeof value !== 'number') throw new TypeError(`value must be a finite number >= 0, got ${value === null ? 'null' : typeof value}`);
    const t = this.h.set(id, value, Date.now());
    if (t) this.alert(t);
  }

  /** @internal */
  _record(id: number, latencyMs: number, ok: boolean): void {
    if (typeof latencyMs !== 'number') throw new TypeError(`latencyMs must be a finite number >= 0, got ${latencyMs === null ? 'null' : typeof latencyMs}`);
    if (!(latencyMs >= 0 && latencyMs < Infinity)) {
      // The core's own check and message (RangeError naming latencyMs).
      this.h.record(id, latencyMs, ok, Date.now());
      return;
    }
    let n = this.ring[0];
    if (n >= RING_CAP) {
      this.drain();
      n = 0;
    }
    const o = 1 + 3 * n;
    this.ring[o] = id;
    this.ring[o + 1] = latencyMs;
    this.ring[o + 2] = ok ? 1 : 0;
    this.ring[0] = n + 1;
  }

  /** @internal */
  _count(id: number, n: number): void {
    if (typeof n !== 'number') throw new TypeError(`n must be a whole number >= 0, got ${n === null ? 'null' : typeof n}`);
    this.h.count(id, n, Date.now());
  }

  /** Applies buffered calls, pulls gauges, steps every watchdog; emits alerts. */
  drain(): void {
    const now = Date.now();
    for (const [id, read] of this.pulls) {
      let v: number;
      try {
        v = Number(read());
      } catch {
        continue;
      }
      if (v >= 0 && v < Infinity) {
        const t = this.h.set(id, v, now);
        if (t) this.alert(t);
      }
    }
    const ts = this.h.drain(this.ring, now);
    this.ring[0] = 0;
    for (const t of ts) this.alert(t);
  }

  private startTicking(): void {
    if (this.timer) return;
    // One timer for every watchdog: hold times elapse and pulled gauges
    // refresh without traffic. Unref'd: it never keeps the process alive.
    this.timer = setInterval(() => {
      this.drain();
      void this.sampleDeadLetters();
    }, TICK_MS);
    this.timer.unref();
  }

  /** Every watchdog as it stands, without applying buffered calls first. */
  views(): WatchdogView[] {
    return this.h.report(Date.now());
  }

  /** Every watchdog with its state and figures. */
  report(): WatchdogView[] {
    this.drain();
    return this.h.report(Date.now());
  }

  configureAlerts(opts: AlertOptions): void {
    if (opts.webhookUrl != null) {
      try {
        const u = new URL(opts.webhookUrl);
        if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('protocol');
      } catch {
        throw new TypeError('webhookUrl must be an http(s) URL');
      }
    }
    for (const [k, min, max] of [['timeoutMs', 1, 60_000], ['retries', 0, 10]] as const) {
      const v = opts[k];
      if (v !== undefined && !(Number.isInteger(v) && v >= min && v <= max)) throw new RangeError(`${k} must be an integer from ${min} to ${max}, got ${String(v)}`);
    }
    this.alerts = { ...this.alerts, ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) } as Required<AlertOptions>;
  }

  private alert(t: Alert): void {
    this.emit('alert', t);
    const url = this.alerts.webhookUrl;
    if (!url) return;
    const body = JSON.stringify({ watchdog: t.name, from: t.from, to: t.to, value: t.value, at: new Date(t.at).toISOString() });
    const timeoutMs = this.alerts.timeoutMs;
    // Never blocks the caller: the post runs detached, through the package's
    // own breaker (a dead webhook is not hammered), each attempt bounded by
    // the timeout. Retries are counted here, not by the breaker, so
    // `configureAlerts({ retries })` applies whenever it is called.
    const retries = this.alerts.retries;
    // Past the breaker cap the post runs without one rather than throw out of a drain.
    const breaker = breakerOrNull('watchdog-webhook', { failureThreshold: 5, resetTimeout: 30_000, retryOptions: { maxRetries: 0 } });
    const post = async () => {
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(timeoutMs) });
      await res.arrayBuffer().catch(() => undefined);
      if (!res.ok) throw new Error(`webhook answered ${res.status}`);
    };
    void (async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          await (breaker ? breaker.execute(post) : post());
          return;
        } catch (e) {
          if (attempt >= retries || e instanceof CircuitOpenError) {
            this.emit('webhookError', new Error(`watchdog webhook failed: ${(e as Error).message}`));
            return;
          }
          await new Promise((r) => setTimeout(r, Math.min(1000, 100 * 2 ** attempt)).unref());
        }
      }
    })();
  }

  /** Dead letters arriving, seen as depth increases of the ops plane's queues. */
  private async sampleDeadLetters(): Promise<void> {
    const ops = peekOps();
    if (!ops) return;
    for (const q of await ops.deadLetterQueues()) {
      if (q.depth === null) continue;
      const before = this.dlqDepths.get(q.name);
      this.dlqDepths.set(q.name, q.depth);
      if (before !== undefined && q.depth > before) recordDeadLetter(q.name, q.depth - before);
    }
  }

  /** Stops the tick (tests, shutdown). */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

let dogs: Watchdogs | null = null;
let dogsEpoch = epoch();

/**
 * The process-wide registry.
 *
 *   getWatchdogs().on('alert', (a) => console.warn(`${a.name}: ${a.from} -> ${a.to}`));
 */
export function getWatchdogs(): Watchdogs {
  // After resetAll() the registry Rust held is empty: a new one, the old one closed.
  if (dogs && dogsEpoch !== epoch()) {
    dogs.close();
    dogs = null;
  }
  if (!dogs) {
    dogs = new Watchdogs();
    dogsEpoch = epoch();
    const d = dogs;
    // Queue depths watched here count in the golden signals' saturation.queueDepth.
    registerQueueDepth('watchdogs', () => queueTotals(d).total);
  }
  return dogs;
}

function queueTotals(d: Watchdogs) {
  const perAgent: Record<string, number> = {};
  const perTopic: Record<string, number> = {};
  let total = 0;
  for (const v of d.views()) {
    if (v.kind !== 'gauge') continue;
    if (v.name.startsWith('queue:agent:')) perAgent[v.name.slice(12)] = v.value;
    else if (v.name.startsWith('queue:topic:')) {
      perTopic[v.name.slice(12)] = v.value;
      total += v.value;
    } else if (v.name.startsWith('queue:')) total += v.value;
  }
  return { perAgent, perTopic, total };
}

// ---- the three uses ----------------------------------------------------------------

/** Bounded series names: past MAX_SERIES distinct values, `other`. */
const seen = new Map<string, Set<string>>();
function series(kind: string, value: string): string {
  let s = seen.get(kind);
  if (!s) seen.set(kind, (s = new Set()));
  if (s.has(value)) return value;
  if (s.size >= MAX_SERIES) return 'other';
  s.add(value);
  return value;
}

/**
 * Pending publishes per queue gauge. Counted here and pulled by Rust on each
 * tick and read (a gauge with `read`), so a publish costs two map updates,
 * not four crossings.
 */
const inFlight = new Map<string, { n: number }>();
/**
 * The pending-count cell of gauge `name`, registering the gauge on first
 * use; past the watchdog cap the cell of the shared gauge `other`. Callers
 * keep the cell, so a publish adds and subtracts on it without a lookup.
 */
function gaugeCell(name: string, other: string, thresholds: Thresholds): { n: number } {
  let c = inFlight.get(name);
  if (c !== undefined) return c;
  const w = getWatchdogs();
  const t = w._track('gauge', name, other, thresholds);
  const key = t.overflowed ? other : name;
  c = inFlight.get(key);
  if (c === undefined) {
    const cell = { n: 0 };
    inFlight.set(key, cell);
    w._pull(t.id, () => cell.n);
    c = cell;
  }
  // An overflowed name is not remembered under its own key: it keeps asking, so it is counted each time.
  return c;
}

/** Calls run without a breaker because the breaker cap was reached (see `breakerOrNull`). */
const unprotected = { aiCalls: 0, publishes: 0 };
const LIMIT_REACHED = native.errorCodes().limitReached;

/**
 * The breaker `name`, or null when the breaker cap (`maxBreakers`) refuses a
 * new one: the wrappers then run the user's call without a breaker rather
 * than fail it, and count it.
 */
function breakerOrNull(name: string, options: CircuitBreakerOptions): CircuitBreaker | null {
  try {
    return getCircuitBreakerRegistry().get(name, options);
  } catch (e) {
    if ((e as { code?: unknown }).code === LIMIT_REACHED) return null;
    throw e;
  }
}

export interface ProtectPublishOptions {
  /** Breaker name (default `event-bus`). */
  breaker?: string;
  breakerOptions?: CircuitBreakerOptions;
  /** Topic of a publish (default: the first argument when it is a string). */
  topic?: string | ((...args: any[]) => string | undefined);
  /** Agent of a publish, for per-agent queue depth (default: `args[1]?.agentId`). */
  agentOf?: (...args: any[]) => string | undefined;
  /** Thresholds for the publish latency (ms) and the per-topic/agent queue depth. */
  latency?: Thresholds;
  queueDepth?: Thresholds;
}

/**
 * Wraps a publish function (e.g. `DreamEventBus.publish`) with a circuit
 * breaker, and tracks publish latency and failures per topic and pending
 * publishes (queue depth) per topic and per agent.
 *
 *   bus.publish = protectPublish(bus.publish.bind(bus), { breaker: 'event-bus' });
 */
export function protectPublish<A extends any[], R>(publish: (...args: A) => R | Promise<R>, options: ProtectPublishOptions = {}): (...args: A) => Promise<R> {
  if (typeof publish !== 'function') throw new TypeError(`publish must be a function, got ${typeof publish}`);
  const breakerName = options.breaker ?? 'event-bus';
  const breakerOptions = options.breakerOptions ?? { failureThreshold: 5, resetTimeout: 10_000, timeout: 5000, retryOptions: { maxRetries: 0 } };
  // Null while the breaker cap refuses it: publishes then run unprotected (counted).
  let breaker = breakerOrNull(breakerName, breakerOptions);
  // Without retries the breaker calls `publish` at most once per call and
  // tells the observer of every call it ran (never of a refusal): the pending
  // count goes up inside the call and down in the observer, so a publish
  // adds no promise, closure pair or clock read of ours (issue 22). With
  // retries a call may run, then be refused on a retry (the observer is not
  // told), so those publishes keep the `.then` below.
  const observed = (breakerOptions.retryOptions?.maxRetries ?? 5) === 0;
  const w = getWatchdogs();
  /** Per topic: its latency tracker and pending-count cell, looked up once (overflowed topics are not cached). */
  const topics = new Map<string, TopicEntry>();
  const agents = new Map<string, { n: number }>();
  const qd = options.queueDepth ?? {};
  const topicOf = options.topic;
  const agentOf = options.agentOf;
  const done = (pending: { n: number }, agentPending: { n: number } | undefined): void => {
    pending.n = Math.max(0, pending.n - 1);
    if (agentPending !== undefined) agentPending.n = Math.max(0, agentPending.n - 1);
  };
  // A `.then` on the breaker's promise rather than an async frame: one promise fewer per publish.
  const run = (args: A, pending: { n: number }, agentPending: { n: number } | undefined, tracker: LatencyTracker): Promise<R> => {
    pending.n++;
    if (agentPending !== undefined) agentPending.n++;
    const t0 = performance.now();
    let p: Promise<R>;
    try {
      breaker ??= breakerOrNull(breakerName, breakerOptions);
      if (breaker) p = breaker.execute(() => publish(...args));
      else {
        unprotected.publishes++;
        p = Promise.resolve(publish(...args));
      }
    } catch (e) {
      p = Promise.reject(e);
    }
    return p.then(
      (r) => {
        done(pending, agentPending);
        tracker.record(performance.now() - t0, true);
        return r;
      },
      (e: unknown) => {
        done(pending, agentPending);
        // Refused by the open breaker: no publish ran, so there is nothing to time.
        if (!(e instanceof CircuitOpenError)) tracker.record(performance.now() - t0, false);
        throw e;
      },
    );
  };
  const lookup = (t: string | undefined): TopicEntry => {
    const topic = series('topic', String(t ?? 'default'));
    let entry = topics.get(topic);
    if (entry !== undefined) return entry;
    const key = `publish:${topic}`;
    const existing = w.get(key) as LatencyTracker | undefined;
    const tr = existing ? { handle: existing, overflowed: false } : w._track('latency', key, 'publish:other', options.latency);
    const gauge = `queue:topic:${topic}`;
    entry = { tracker: tr.handle, pending: gaugeCell(gauge, 'queue:topic:other', qd) };
    // An overflow tracker or gauge is not cached: the topic keeps asking, so it is counted each time.
    if (!tr.overflowed && inFlight.get(gauge) === entry.pending) topics.set(topic, entry);
    return entry;
  };
  const agentCell = (raw: any): { n: number } => {
    const agent = series('agent', String(raw));
    let cell = agents.get(agent);
    if (cell !== undefined) return cell;
    const gauge = `queue:agent:${agent}`;
    cell = gaugeCell(gauge, 'queue:agent:other', qd);
    if (inFlight.get(gauge) === cell) agents.set(agent, cell);
    return cell;
  };
  return (...args: A): Promise<R> => {
    try {
      const t = typeof topicOf === 'function' ? topicOf(...args) : (topicOf ?? (typeof args[0] === 'string' ? args[0] : undefined));
      // A topic (agent) seen before is found by its own string, without the series bound's two lookups.
      const entry = (typeof t === 'string' ? topics.get(t) : undefined) ?? lookup(t);
      const agentRaw = agentOf ? agentOf(...args) : (args[1] as any)?.agentId;
      const agentPending = agentRaw === undefined ? undefined : ((typeof agentRaw === 'string' ? agents.get(agentRaw) : undefined) ?? agentCell(agentRaw));
      if (!observed) return run(args, entry.pending, agentPending, entry.tracker);
      breaker ??= breakerOrNull(breakerName, breakerOptions);
      if (breaker === null) return run(args, entry.pending, agentPending, entry.tracker);
      const obs = new PublishObserver(entry, agentPending);
      return breaker._executeObserved(() => {
        obs.start();
        return publish(...args);
      }, obs);
    } catch (e) {
      return Promise.reject(e);
    }
  };
}

interface TopicEntry {
  tracker: LatencyTracker;
  pending: { n: number };
}

/**
 * One observed publish: counted pending when the breaker runs it, uncounted
 * and timed when the breaker tells how it went (one small object per call,
 * instead of a promise and two closures).
 */
class PublishObserver {
  private started = false;
  constructor(
    private readonly entry: TopicEntry,
    private readonly agentPending: { n: number } | undefined,
  ) {}

  start(): void {
    if (this.started) return;
    this.started = true;
    this.entry.pending.n++;
    if (this.agentPending !== undefined) this.agentPending.n++;
  }

  record(latencyMs: number, ok: boolean): void {
    if (this.started) {
      this.started = false;
      this.entry.pending.n = Math.max(0, this.entry.pending.n - 1);
      if (this.agentPending !== undefined) this.agentPending.n = Math.max(0, this.agentPending.n - 1);
    }
    this.entry.tracker.record(latencyMs, ok);
  }
}

export interface AiCallOptions {
  /** Per-call timeout in ms (default 30000): the call's AbortSignal fires. */
  timeoutMs?: number;
  breakerOptions?: CircuitBreakerOptions;
  /** Thresholds for the watched latency quantile (ms). */
  latency?: Thresholds & { quantile?: number };
}

/** Per AI call name: its tracker and breaker, looked up once. */
const aiCalls = new Map<string, { tracker: LatencyTracker; breaker: CircuitBreaker }>();

/**
 * Runs an AI call (`fetch`, an SDK call) behind the breaker `name` and
 * records its latency and outcome under `ai:<name>`. `fn` gets an
 * AbortSignal that fires at the timeout.
 *
 *   const vec = await trackAiCall('openai-embeddings', (signal) => openai.embeddings.create(req, { signal }));
 */
export function trackAiCall<T>(name: string, fn: (signal: AbortSignal) => T | Promise<T>, options: AiCallOptions = {}): Promise<T> {
  if (typeof fn !== 'function') return Promise.reject(new TypeError(`fn must be a function, got ${typeof fn}`));
  let entry = aiCalls.get(name);
  let tracker: LatencyTracker;
  let breaker: CircuitBreaker | null;
  if (entry) ({ tracker, breaker } = entry);
  else {
    try {
      const w = getWatchdogs();
      const key = `ai:${name}`;
      const existing = w.get(key) as LatencyTracker | undefined;
      // Past the watchdog cap the call is timed under the shared `ai:other`
      // and runs without a breaker; nothing is cached, so memory stays bounded.
      const t = existing ? { handle: existing, overflowed: false } : w._track('latency', key, 'ai:other', options.latency);
      tracker = t.handle;
      breaker = t.overflowed ? null : breakerOrNull(name, options.breakerOptions ?? { failureThreshold: 5, resetTimeout: 30_000, timeout: options.timeoutMs ?? 30_000, retryOptions: { maxRetries: 0 } });
      if (breaker) aiCalls.set(name, (entry = { tracker, breaker }));
    } catch (e) {
      return Promise.reject(e);
    }
  }
  if (!breaker) return trackUnprotected(tracker, fn);
  // The breaker passes its AbortSignal only to a function that takes one
  // (see the breaker's `attempt`); one that takes none is passed as it is
  // (no wrapper per call). A breaker without a timeout gives no signal, so
  // the wrapper supplies one that never fires. The breaker tells the
  // tracker how the call went, with the latency it measured itself (no
  // clock reads and no promise of ours on a plain success); a refusal by an
  // open breaker made no call and is not timed.
  return breaker._executeObserved(fn.length > 0 ? (signal?: AbortSignal) => fn(signal ?? new AbortController().signal) : (fn as () => T | Promise<T>), tracker);
}

/** Unprotected: no breaker, so no timeout either (a per-call timer is not allowed); the signal never fires. */
async function trackUnprotected<T>(tracker: LatencyTracker, fn: (signal: AbortSignal) => T | Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    unprotected.aiCalls++;
    const r = await fn(new AbortController().signal);
    tracker.record(performance.now() - t0, true);
    return r;
  } catch (e) {
    tracker.record(performance.now() - t0, false);
    throw e;
  }
}

/**
 * Counts messages arriving in dead-letter queue `queue` (its rate per minute is watched).
 *
 *   recordDeadLetter('emails');
 */
export function recordDeadLetter(queue: string, n = 1): void {
  const w = getWatchdogs();
  const name = `dlq:${series('dlq', String(queue))}`;
  const c = (w.get(name) as RateCounter | undefined) ?? w._track('counter', name, 'dlq:other').handle;
  c.add(n);
}

/**
 * The body of `GET /api/observability/watchdogs`: the original's fields
 * (`processHealth`, `queueDepth`, `dlqRate`, `aiCallLatency`), now real, and
 * every watchdog with its state.
 *
 *   const { watchdogs } = getWatchdogsReport();
 */
export function getWatchdogsReport() {
  const w = getWatchdogs();
  const all = w.report();
  const q = queueTotals(w);
  const dlq = all.filter((v) => v.kind === 'counter' && v.name.startsWith('dlq:'));
  const ai = all.filter((v) => v.kind === 'latency' && v.name.startsWith('ai:'));
  const aiCalls = ai.reduce((s, v) => s + (v.allTime?.count ?? 0), 0);
  const aiMean = aiCalls === 0 ? 0 : ai.reduce((s, v) => s + (v.allTime ? v.allTime.mean * v.allTime.count : 0), 0) / aiCalls;
  const sat = getGoldenSignals().saturation;
  const now = Date.now();
  return {
    processHealth: { eventLoopDelay: sat.eventLoopDelay.mean, eventLoopDelayP99: sat.eventLoopDelay.p99, heartbeat: now, memory: process.memoryUsage(), uptime: process.uptime() },
    queueDepth: { perAgent: q.perAgent, perTopic: q.perTopic, total: q.total },
    dlqRate: {
      messagesPerMinute: dlq.reduce((s, v) => s + v.value, 0),
      totalMessages: dlq.reduce((s, v) => s + (v.totalCalls ?? 0), 0),
      perQueue: Object.fromEntries(dlq.map((v) => [v.name.slice(4), { messagesPerMinute: v.value, totalMessages: v.totalCalls ?? 0 }])),
    },
    aiCallLatency: {
      // p99 over the last minute, worst of the tracked calls; average and count since start.
      p99: ai.reduce((m, v) => Math.max(m, v.latency?.p99 ?? 0), 0),
      average: aiMean,
      totalCalls: aiCalls,
      perCall: Object.fromEntries(ai.map((v) => [v.name.slice(3), { p50: v.latency?.p50 ?? 0, p99: v.latency?.p99 ?? 0, callsPerMinute: v.callsPerMinute ?? 0, errorsPerMinute: v.errorsPerMinute ?? 0, totalCalls: v.totalCalls ?? 0, state: v.state }])),
    },
    watchdogs: all,
    // Calls counted under a shared `other` watchdog because the registry was
    // full, and calls run without a breaker because the breaker cap was
    // reached (or their name overflowed): nothing is refused for a cap.
    overflow: { watchdogCalls: w.overflowed(), unprotectedAiCalls: unprotected.aiCalls, unprotectedPublishes: unprotected.publishes },
    timestamp: now,
  };
}

/**
 * `GET` handler for `/api/observability/watchdogs`.
 *
 *   app.get('/api/watchdogs', watchdogsHandler);
 */
export function watchdogsHandler(_req: unknown, res: any): void {
  try {
    res.json(getWatchdogsReport());
  } catch (e) {
    res.status(500).json({ error: 'Failed to get watchdogs', message: (e as Error).message });
  }
}
