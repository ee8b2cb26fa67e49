/**
 * Circuit breakers with retries: a drop-in replacement for the original
 * `server/core/circuit-breaker.ts`.
 *
 * The state machine, every transition, the rolling window and the retry
 * delays live in Rust (`src/core/breaker.rs`). This file runs the user's
 * function, turns transitions into events and adapts errors.
 *
 * Hot path: Rust mirrors each breaker's gate ("closed: run without asking")
 * into a shared Float64Array, so a call on a closed breaker reads one array
 * slot, runs, and appends its success to a shared ring that Rust drains in
 * batches. Failures, slow calls, half-open trials and rejections cross into
 * Rust at once, with their arguments passed through a shared I/O block. A
 * closed call's latency comes from the turn clock (one clock read per
 * event-loop turn, see below) unless the breaker needs per-call reads.
 */
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { setImmediate as nodeSetImmediate } from 'node:timers';
import { native, type Binding } from './native';
import { RetryPolicy } from './retry';
import { callTimers, checkFile, epoch, monotonicClock, onClock, underTestRunner, watchFiles } from './test-runner';
// The binding's protocol codes (const enums in index.d.ts: tsc inlines them, so reading one costs nothing).
import { BreakerAdmission, BreakerControl, BreakerGate, BreakerOutcome, BreakerTransition } from '../index';

const SHIFT = native.BREAKER_TRANSITION_SHIFT;
const ADMISSION = native.BREAKER_ADMISSION_MASK;

// ---- shared buffers with the Rust core -------------------------------------

const layout = native.BreakerTable.layout();
const PAGE = layout.page;
const STRIDE = layout.stride;
const RING_CAP = layout.ringCap;
const io = new Float64Array(layout.ioLen);
const ring = new Float64Array(1 + 3 * RING_CAP);
// This copy of the module's view of the thread's breakers (the buffers above,
// attached to Rust's registry): kept for the module's life; its cold methods
// are the breakers' controls and snapshots. The per-call crossings
// (cbAcquire, cbRecord, cbDrain, cbRetryDelay) are free functions of its
// `inst`: a class method's crossing costs about twice theirs (~270 against ~105-130 ns, src/breaker_napi.rs).
const table = new native.BreakerTable(io, ring, performance.timeOrigin);
const INST = table.inst;
const pages: Float64Array[] = [];
// The clock in force (./test-runner: performance.now(), the test runner's
// Date, or one injected with setClock), kept in a local for the hot path.
let now: () => number = () => performance.now();
// Set by Rust on resetAll(): a breaker made before re-creates itself by name.
const EPOCH_SLOT = layout.ioLen - 1;

// ---- the turn clock ------------------------------------------------------------
//
// Why: two performance.now() reads per call (~25 ns each here) were most of
// a closed breaker's own cost. A closed breaker without a slow-call rule, a
// timeout or `exactLatency` (Rust decides: `options.timesPerTurn`) takes its
// latency from this clock instead: the first read in an event-loop turn reads
// the real clock and arms ONE unref'd setImmediate (node:timers, which no fake
// timer or jsdom global replaces) that marks the reading stale for the next
// turn; every other read in the turn returns the same reading. So all calls of
// one turn share one read, a latency is exact to the turn, and synchronous
// work inside one turn is not counted. Only the monotonic clock is cached: a
// test runner's or an injected clock (`turnClock` false) is read per call, so
// fake timers move every breaker exactly as before. Kept in module-level
// variables (not a module of its own) so the hot path reads a local, not a
// property of an imported module.

/** The clock in force is the monotonic one, so the turn clock may cache it. */
let turnClock = false;
/** The cached reading is from an earlier turn (or none was taken yet). */
let turnDirty = true;
/** The setImmediate that marks the reading stale is pending. */
let turnArmed = false;
/** The reading of this turn. */
let turnAt = 0;

function turnEnded(): void {
  turnArmed = false;
  turnDirty = true;
}

/** The first read in a turn: reads the clock and arms the end-of-turn mark (once). */
function readTurn(): number {
  turnDirty = false;
  turnAt = now();
  if (!turnArmed) {
    turnArmed = true;
    nodeSetImmediate(turnEnded).unref();
  }
  return turnAt;
}

onClock((c) => {
  now = c;
  turnClock = c === monotonicClock;
  turnDirty = true;
});

/** When the last `acquire` ran; a rejection reuses it instead of reading the clock again. */
let acquiredAt = 0;

function acquire(id: number): number {
  io[0] = id;
  io[1] = acquiredAt = now();
  return native.cbAcquire(INST);
}

function record(id: number, outcome: number, latency: number, at: number, trial: boolean): number {
  io[0] = id;
  io[1] = outcome;
  io[2] = latency;
  io[3] = at;
  io[4] = trial ? 1 : 0;
  return native.cbRecord(INST);
}

/**
 * Appends a plain success (latency >= 0) or a refusal made from the mirror
 * (latency -1) to the ring; Rust applies it on its next crossing.
 */
function pushOutcome(id: number, latency: number, at: number): void {
  let n = ring[0];
  if (n >= RING_CAP) {
    native.cbDrain(INST);
    n = 0;
  }
  const o = 1 + 3 * n;
  ring[o] = id;
  ring[o + 1] = latency;
  ring[o + 2] = at;
  ring[0] = n + 1;
}

// ---- configuration shared by every breaker ---------------------------------

export interface BreakerLogger {
  log(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

// Quiet under a test runner (see ./test-runner): configureCircuitBreakers({ logger: console }) turns it on.
let logger: BreakerLogger | null = underTestRunner ? null : console;
let captureStacks = process.env.RELIABILITY_CAPTURE_STACKS === '1';

/**
 * Package-wide settings. `logger` receives the original's log lines
 * (`null` silences them); `captureStacks` makes rejection errors capture a
 * stack trace (off by default: see `CircuitOpenError`); `maxBreakers` caps
 * how many breakers may exist (default 10,000, at most 1,000,000): past it,
 * creating one throws a RangeError with `code === 'ERR_LIMIT_REACHED'`.
 *
 * ```ts
 * configureCircuitBreakers({ maxBreakers: 50_000, logger: null });
 * ```
 */
export function configureCircuitBreakers(opts: { logger?: BreakerLogger | null; captureStacks?: boolean; maxBreakers?: number }): void {
  // Read each option once, before acting on any (a getter runs once).
  const { logger: l, captureStacks: c, maxBreakers: m } = opts;
  if (m !== undefined) table.configure({ maxBreakers: m });
  if (l !== undefined) logger = l;
  if (c !== undefined) captureStacks = !!c;
}

// ---- errors -------------------------------------------------------------------

/**
 * Rejects on the next microtask rather than at once. A promise that is
 * already rejected when the caller attaches its handler costs ~1 µs in
 * Node's unhandled-rejection bookkeeping; rejecting after the caller's
 * `await`/`.catch` is attached skips it. Unhandled rejections are still
 * reported normally.
 */
function rejectLater<T>(e: unknown): Promise<T> {
  // A promise reaction, not queueMicrotask(): Jest's fake timers fake
  // queueMicrotask, and a rejection queued there never settles until the
  // test runs the fake ticks.
  return resolved.then(() => Promise.reject(e));
}
const resolved = Promise.resolve();

/**
 * Thrown when a breaker refuses a call. The message keeps the original's
 * text (`Circuit breaker <name> is OPEN (too many failures)`), which callers
 * match on; `instanceof CircuitOpenError` and `code === 'ERR_CIRCUIT_OPEN'`
 * work too.
 *
 * Capturing a stack trace costs ~4 µs (~0.5 µs even with
 * `Error.stackTraceLimit = 0`), more than the whole fast-reject path is
 * allowed, and a stack would only point at the breaker anyway. So by default
 * the error is built without running the Error constructor: it names the
 * breaker in its message, carries `breaker`, `state`, `retryAfterMs` and
 * `isolated`, and its `stack` says where it came from.
 * `RELIABILITY_CAPTURE_STACKS=1` or `configureCircuitBreakers({ captureStacks: true })`
 * restores real stacks for debugging.
 *
 *   try { await b.execute(call); } catch (e) { if (e instanceof CircuitOpenError) res.set('retry-after', String(Math.ceil((e.retryAfterMs ?? 0) / 1000))); }
 */
export class CircuitOpenError extends Error {
  declare readonly code: string;
  declare readonly breaker: string;
  declare readonly state: CircuitState;
  declare readonly retryAfterMs: number | null;
  declare readonly isolated: boolean;

  constructor(message: string, breaker: string, state: CircuitState, retryAfterMs: number | null, isolated: boolean) {
    super(message);
    fillOpenError(this, breaker, state, retryAfterMs, isolated);
  }

  /** Builds the error the cheap way, or the normal way when stacks are wanted. */
  static create(message: string, breaker: string, state: CircuitState, retryAfterMs: number | null, isolated: boolean): CircuitOpenError {
    if (captureStacks) return new CircuitOpenError(message, breaker, state, retryAfterMs, isolated);
    const e = Object.create(CircuitOpenError.prototype) as CircuitOpenError;
    (e as { message: string }).message = message;
    return fillOpenError(e, breaker, state, retryAfterMs, isolated);
  }
}

function fillOpenError(e: CircuitOpenError, breaker: string, state: CircuitState, retryAfterMs: number | null, isolated: boolean): CircuitOpenError {
  const w = e as unknown as { breaker: string; state: CircuitState; retryAfterMs: number | null; isolated: boolean };
  w.breaker = breaker;
  w.state = state;
  w.retryAfterMs = retryAfterMs;
  w.isolated = isolated;
  return e;
}

Object.defineProperty(CircuitOpenError.prototype, 'name', { value: 'CircuitOpenError' });
Object.defineProperty(CircuitOpenError.prototype, 'code', { value: 'ERR_CIRCUIT_OPEN' });
// Errors built without the constructor have no own `stack`; this one says why.
Object.defineProperty(CircuitOpenError.prototype, 'stack', {
  get(this: CircuitOpenError) {
    return `${this.name}: ${this.message}\n    at circuit breaker "${this.breaker}" (stack not captured; set RELIABILITY_CAPTURE_STACKS=1)`;
  },
  set(this: CircuitOpenError, v: unknown) {
    Object.defineProperty(this, 'stack', { value: v, writable: true, configurable: true });
  },
  configurable: true,
});

/**
 * Thrown (and passed to the call's AbortSignal) when a call runs past `timeout`.
 *
 *   catch (e) { if (e instanceof CircuitTimeoutError) console.warn(`${e.breaker} took over ${e.timeoutMs} ms`); }
 */
export class CircuitTimeoutError extends Error {
  declare readonly code: string;
  constructor(readonly breaker: string, readonly timeoutMs: number) {
    super(`Circuit breaker ${breaker} timed out after ${timeoutMs} ms`);
  }
}
Object.defineProperty(CircuitTimeoutError.prototype, 'name', { value: 'CircuitTimeoutError' });
Object.defineProperty(CircuitTimeoutError.prototype, 'code', { value: 'ERR_CIRCUIT_TIMEOUT' });

function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

// ---- timeouts: one shared, unref'd timer -----------------------------------

interface Deadline {
  at: number;
  fire(): void;
  prev: Deadline | null;
  next: Deadline | null;
  list: DeadlineList | null;
}
interface DeadlineList {
  head: Deadline | null;
  tail: Deadline | null;
}

/**
 * Deadlines of calls in flight, one FIFO list per timeout length: a
 * breaker's timeout is fixed, so each list is already in deadline order and
 * removing a settled call is O(1). One timer is armed for the earliest head;
 * there is no timer per call and none per breaker. The timer is ref'd while
 * a call is in flight (someone awaits it: a hung call must end in a timeout,
 * not in a process that exits with the promise pending) and unref'd as soon
 * as none is, so it never holds an idle process open.
 */
class Deadlines {
  private lists = new Map<number, DeadlineList>();
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;
  /** Deadlines in the lists. */
  private live = 0;

  add(ms: number, fire: () => void): Deadline {
    const d: Deadline = { at: now() + ms, fire, prev: null, next: null, list: null };
    this.link(ms, d);
    return d;
  }

  /** Links `d` (its `at` set, `ms` after now) at the tail of the list for `ms`. */
  link(ms: number, d: Deadline): void {
    if (++this.live === 1) this.timer?.ref();
    let list = this.lists.get(ms);
    if (!list) {
      list = { head: null, tail: null };
      this.lists.set(ms, list);
    }
    d.list = list;
    d.prev = list.tail;
    if (list.tail) list.tail.next = d;
    else list.head = d;
    list.tail = d;
    if (d.at < this.timerAt) this.arm(d.at);
  }

  remove(d: Deadline): void {
    const list = d.list;
    if (list === null) return;
    const linked = d.prev !== null || d.next !== null || list.head === d;
    if (d.prev) d.prev.next = d.next;
    else if (list.head === d) list.head = d.next;
    if (d.next) d.next.prev = d.prev;
    else if (list.tail === d) list.tail = d.prev;
    d.prev = d.next = null;
    // Idle: the timer stays armed (re-arming per call would be a timer per
    // call) but no longer holds the process open.
    if (linked && --this.live === 0) this.timer?.unref();
  }

  private arm(at: number): void {
    if (this.timer) callTimers.cancel(this.timer);
    this.timerAt = at;
    this.timer = callTimers.after(() => this.run(), Math.max(0, at - now()));
    if (this.live === 0) this.timer.unref();
  }

  private run(): void {
    this.timer = null;
    this.timerAt = Infinity;
    const t = now();
    let next = Infinity;
    for (const [ms, list] of this.lists) {
      while (list.head && list.head.at <= t) {
        const d = list.head;
        this.remove(d);
        d.fire();
      }
      if (list.head) next = Math.min(next, list.head.at);
      else this.lists.delete(ms);
    }
    if (next !== Infinity) this.arm(next);
  }
}

const deadlines = new Deadlines();

/**
 * @internal Told how a call went: its latency in ms and whether the
 * caller's promise resolved (a watchdog's latency tracker).
 */
export interface CallObserver {
  record(latencyMs: number, ok: boolean): void;
}

/** Tells `obs` how `p` settles, timed from `t0`; a refusal by an open breaker ran nothing and is not told. */
function observe<T>(p: Promise<T>, t0: number, obs: CallObserver): Promise<T> {
  return p.then(
    (v) => {
      obs.record(now() - t0, true);
      return v;
    },
    (e: unknown) => {
      if (!(e instanceof CircuitOpenError)) obs.record(now() - t0, false);
      throw e;
    },
  );
}

// A promise's resolve function, taken without a closure per call.
let captured: (v: unknown) => void = () => {};
function capture(resolve: (v: unknown) => void): void {
  captured = resolve;
}

/**
 * A call on a closed breaker with a timeout, in flight. It is its own
 * deadline node (no second object, no `fire` closure) and settles the
 * promise `execute` returned: with the value, or with what `afterFailure`
 * makes of the failure or the timeout (retries, fallback, the error).
 */
class TimedCall implements Deadline {
  /** Told how the call went, with the breaker's own latency (see `_executeObserved`). */
  obs: CallObserver | null = null;
  prev: Deadline | null = null;
  next: Deadline | null = null;
  list: DeadlineList | null = null;
  done = false;
  constructor(
    readonly b: CircuitBreaker,
    readonly fn: (signal?: AbortSignal) => unknown,
    readonly t0: number,
    readonly at: number,
    readonly resolve: (v: unknown) => void,
    readonly ac: AbortController | null,
  ) {}

  ok(value: unknown): void {
    if (this.done) return;
    this.done = true;
    deadlines.remove(this);
    this.b['closedSuccess'](value, this.t0, this.obs);
    this.resolve(value);
  }

  fail(err: unknown): void {
    if (this.done) return;
    this.done = true;
    deadlines.remove(this);
    const r = this.b['afterFailure'](this.fn, toError(err), now() - this.t0, false);
    this.resolve(this.obs === null ? r : observe(r, this.t0, this.obs));
  }

  /** The deadline passed first: the call fails with a timeout (the function's late answer is ignored). */
  fire(): void {
    if (this.done) return;
    this.done = true;
    const e = new CircuitTimeoutError(this.b.name, this.b['timeoutMs']);
    this.ac?.abort(e);
    const r = this.b['afterFailure'](this.fn, e, now() - this.t0, false);
    this.resolve(this.obs === null ? r : observe(r, this.t0, this.obs));
  }
}

// ---- retries: the one retry loop of ./retry -----------------------------------

/** Why a failed attempt ends the retries, decided by the breaker (see `AttemptFailed`). */
const enum Stop {
  /** Retry if attempts remain. */
  None,
  /** `resetAll()` removed the breaker meanwhile: no more retries, nothing recorded. */
  Stale,
  /** `isFailure` says the dependency is healthy: pass the error through, count a success. */
  Healthy,
  /** Re-checked before a retry, the breaker refused: the call ends in a rejection. */
  Rejected,
}

/**
 * What a breaker call's attempt throws into its `RetryPolicy`: the error,
 * boxed with the breaker's verdict on it. Boxed so that the policy retries
 * exactly what the breaker's contract retries (every failure, even a nested
 * breaker's `CircuitOpenError`, which a bare `retry()` would not retry) and
 * so that its hooks, shared by every call of the breaker, find the call's
 * breaker on the error. Never seen outside this module. An `Error` for the
 * type of a throw, but built by `of` without running the Error constructor
 * (no stack trace, ~µs, captured per failed attempt for nothing).
 */
class AttemptFailed extends Error {
  declare readonly b: CircuitBreaker;
  declare readonly error: Error;
  declare readonly stop: Stop;
  declare readonly admission: number;
  declare readonly retryAfterMs: number | null;

  static of(b: CircuitBreaker, error: Error, stop: Stop, admission = 0, retryAfterMs: number | null = null): AttemptFailed {
    const box = Object.create(AttemptFailed.prototype) as { -readonly [K in keyof AttemptFailed]: AttemptFailed[K] };
    box.b = b;
    box.error = error;
    box.stop = stop;
    box.admission = admission;
    box.retryAfterMs = retryAfterMs;
    return box as AttemptFailed;
  }
}

/** `retryOn`: retry unless the breaker stopped the retries. */
function mayRetry(e: unknown): boolean {
  return e instanceof AttemptFailed && e.stop === Stop.None;
}

/** `onRetry`: the breaker's log line and `retry` event, with the unboxed error. */
function announceRetry(info: { attempt: number; delay: number; error: unknown }): void {
  const { b, error } = info.error as AttemptFailed;
  b['announceRetry'](info.attempt, info.delay, error);
}

/**
 * A breaker's `retryOptions` as a `RetryPolicy` (the one retry loop): its
 * attempt count is the breaker's `maxRetries`, and its delays are the
 * breaker's own (`cbRetryDelay`: Rust's backoff rule with the breaker's
 * options, seed and `random`, and the test-runner defaults), not `retry()`'s.
 */
class BreakerRetries extends RetryPolicy {
  constructor(private readonly b: CircuitBreaker) {
    super({ maxRetries: b['maxRetries'], retryOn: mayRetry, onRetry: announceRetry });
  }

  override delay(attempt: number, previousMs: number): number {
    return this.b['retryDelay'](attempt, previousMs);
  }
}

// ---- the breaker ---------------------------------------------------------------

export type CircuitState = 'closed' | 'open' | 'half-open';
export type JitterStrategy = boolean | 'none' | 'proportional' | 'full' | 'equal' | 'decorrelated';

export interface RetryOptions {
  /** Extra attempts after the first (default 5). `0` means no retries. */
  maxRetries?: number;
  /** First backoff in ms (default 100; 0 under a test runner, see docs/TESTING.md). */
  initialDelay?: number;
  /** Cap on the backoff in ms (default 3000). */
  maxDelay?: number;
  /** Growth per attempt (default 2). */
  factor?: number;
  /** `true` (default) adds up to 10 % like the original; or a named strategy. */
  jitter?: JitterStrategy;
  /** Seed for the breaker's own jitter generator (reproducible delays). */
  seed?: number;
  /** Injected random source in [0, 1), e.g. for tests. */
  random?: () => number;
}

export interface CircuitBreakerOptions {
  /** Failed calls in a row that open the breaker (default 5). */
  failureThreshold?: number;
  /** Time an open breaker waits before a trial call, in ms (default 60000). */
  resetTimeout?: number;
  /** Failed trials in one half-open period before it re-opens (default 3). */
  halfOpenMaxAttempts?: number;
  /** Trial calls in flight at once while half-open (default 1); the rest are rejected. */
  halfOpenMaxCalls?: number;
  /** Successful trials that close a half-open breaker (default 2). */
  halfOpenSuccessThreshold?: number;
  /** Open on failure rate over the rolling window instead of failures in a row. */
  errorThresholdPercentage?: number;
  /** Calls the window must hold before a rate can open the breaker (default 10). */
  volumeThreshold?: number;
  /** Rolling window length in ms (default 10000). */
  rollingWindowMs?: number;
  /** Buckets in the rolling window (default 10). */
  rollingBuckets?: number;
  /** Calls at least this slow (ms) count as slow. */
  slowCallDurationMs?: number;
  /** Share of slow calls (percent) that opens the breaker (default 100). */
  slowCallRateThreshold?: number;
  /**
   * Per-call timeout in ms; the call is rejected with `CircuitTimeoutError` when it fires, and a
   * function that declares a parameter gets an AbortSignal that is aborted then (`(signal) =>
   * fetch(url, { signal })`). `false` = none.
   */
  timeout?: number | false;
  /** Version B's name for `timeout` (ms; 0 or false: none, as there). Giving both with different values is a RangeError. */
  requestTimeout?: number | false;
  retryOptions?: RetryOptions;
  /** Value (or promise) to answer with when the call is rejected, times out or fails. */
  fallback?: (error: Error) => unknown;
  /** Return false for errors that say nothing about the dependency's health (e.g. 4xx): they are passed through, not retried, and count as successes. */
  isFailure?: (error: Error) => boolean;
  /**
   * Read the clock before and after every call (default false). Without it, a closed breaker
   * with no `slowCallDurationMs` and no `timeout` times its calls with one clock read per
   * event-loop turn, shared by every call in that turn: a latency (in `toJSON().window` and the
   * `success` event) is exact to the turn, and synchronous work inside one turn is not counted.
   * A call that awaits I/O or a timer is timed to the turn it resumed in. Breakers with
   * `slowCallDurationMs` or `timeout`, half-open trials and failures read the clock per call
   * whatever this says, and so does every breaker under a test runner or `setClock`.
   *
   *   getCircuitBreakerRegistry().get('payments', { exactLatency: true });
   */
  exactLatency?: boolean;
}

export interface BreakerStateView {
  state: CircuitState;
  failureCount: number;
  lastFailureTime: number | null;
}

export type BreakerSnapshot = Binding.CbSnapshot;

// Mirror gate values (BreakerGate) to the state getState() names.
const STATES: Record<number, CircuitState> = {
  [BreakerGate.Closed]: 'closed',
  [BreakerGate.Ask]: 'closed',
  [BreakerGate.Open]: 'open',
  [BreakerGate.HalfOpen]: 'half-open',
  [BreakerGate.Isolated]: 'open',
};

function checkFn(field: string, v: unknown): void {
  if (v !== undefined && typeof v !== 'function') {
    throw new TypeError(`${field} must be a function, got ${v === null ? 'null' : typeof v}`);
  }
}

/**
 * One circuit breaker: closed, open or half-open, with the state and the
 * arithmetic in the Rust core. Emits `open`, `halfOpen`, `close`, `success`,
 * `failure`, `reject` and `timeout`. Most code gets one from the registry.
 *
 *   const b = new CircuitBreaker('orders-db', { failureThreshold: 5, resetTimeout: 30_000 });
 *   const row = await b.execute(() => pool.query('SELECT 1'));
 */
export class CircuitBreaker extends EventEmitter {
  readonly name: string;
  // Rebound by `bind()` when resetAll() removed the breaker this object named.
  private id!: number;
  private page!: Float64Array;
  private slot!: number;
  private timeoutMs!: number;
  private maxRetries!: number;
  /** Closed calls are timed with the turn clock (Rust's `timesPerTurn`: no slow-call rule, no timeout, no `exactLatency`). */
  private perTurn!: boolean;
  /** This breaker's retry loop, made at its first failure (see `afterFailure`). */
  private retrier: BreakerRetries | null = null;
  /** The reset epoch this object was bound in (see `bound()`). */
  private epoch!: number;
  private readonly options: CircuitBreakerOptions;
  private readonly fallback?: (error: Error) => unknown;
  private readonly isFailure?: (error: Error) => boolean;
  private readonly random?: () => number;
  /** Set when someone listens to `success`, so the hot path skips `emit` otherwise. */
  private hotListeners = false;

  /** Use `getCircuitBreakerRegistry().get(name, options)`. */
  constructor(name: string, options: CircuitBreakerOptions = {}) {
    super();
    if (options !== null && options !== undefined && typeof options !== 'object') {
      throw new TypeError(`options must be an object, got ${typeof options}`);
    }
    const o = options ?? {};
    checkFn('fallback', o.fallback);
    checkFn('isFailure', o.isFailure);
    checkFn('retryOptions.random', o.retryOptions?.random);
    this.name = name;
    this.options = o;
    this.bind();
    this.fallback = o.fallback;
    this.isFailure = o.isFailure;
    this.random = o.retryOptions?.random;
  }

  /** Finds or creates this name's breaker in Rust and points at its mirror slot. */
  private bind(): void {
    const o = this.options;
    this.epoch = io[EPOCH_SLOT];
    this.id = table.create(this.name, o, now());
    while (pages.length * PAGE <= this.id) {
      const p = new Float64Array(PAGE * STRIDE);
      pages.push(p);
      table.attachPage(p);
    }
    this.page = pages[Math.floor(this.id / PAGE)];
    this.slot = (this.id % PAGE) * STRIDE;
    // Read back what Rust validated rather than re-validating here.
    const applied = table.snapshot(this.id, now()).options;
    this.timeoutMs = applied.timeout ?? 0;
    this.maxRetries = applied.maxRetries;
    this.perTurn = applied.timesPerTurn;
    this.retrier = null;
  }

  /**
   * resetAll() removed every breaker: an object made before (kept by an app
   * module, say) re-creates its breaker by name, fresh, on its next use
   * rather than acting on an id that now means another breaker. One array read.
   */
  private bound(): void {
    if (watchFiles) checkFile();
    if (io[EPOCH_SLOT] !== this.epoch) this.bind();
  }

  /**
   * A call that began before resetAll() ends after it: its breaker is gone
   * (the id may already name another), so its outcome is not recorded.
   */
  private stale(): boolean {
    return io[EPOCH_SLOT] !== this.epoch;
  }

  /** Current state, read from the mirror without crossing into Rust. */
  get state(): CircuitState {
    this.bound();
    const gate = this.page[this.slot];
    return STATES[gate];
  }

  /**
   * Runs `fn` through the breaker: rejects at once when open, retries with
   * backoff on failure, enforces `timeout` (passing an AbortSignal), and
   * reports the outcome to Rust. The original's `execute(fn)`.
   */
  execute<T>(fn: (signal?: AbortSignal) => T | Promise<T>): Promise<T> {
    if (typeof fn !== 'function') {
      return rejectLater(new TypeError(`fn must be a function, got ${fn === null ? 'null' : typeof fn}`));
    }
    this.bound();
    const gate = this.page[this.slot];
    if (gate === 0) {
      if (this.timeoutMs !== 0) return this.runTimed(fn);
      return turnClock && this.perTurn ? this.runTurn(fn) : this.runClosed(fn);
    }
    let trial = false;
    if (gate !== 0) {
      // Open and inside its reset timeout (Rust wrote until when): refuse
      // without crossing; the refusal is counted with the next batch.
      const t = now();
      const until = this.page[this.slot + 2];
      if (t < until) {
        pushOutcome(this.id, -1, t);
        const isolated = gate === BreakerGate.Isolated;
        return this.rejected<T>(isolated ? BreakerAdmission.RejectIsolated : BreakerAdmission.RejectOpen, null, isolated ? null : until - t);
      }
      // Otherwise Rust decides (and may turn open into half-open here).
      const code = acquire(this.id);
      if (code >> SHIFT) this.transitions(code >> SHIFT);
      const admission = code & ADMISSION;
      if (admission >= BreakerAdmission.RejectOpen) return this.rejected<T>(admission, null, this.retryAfter());
      trial = admission === BreakerAdmission.Trial;
    }
    return this.runAdmitted(fn, trial);
  }

  /**
   * @internal `execute(fn)`, and `obs` is told how the call went (the
   * watchdogs' `trackAiCall`). On a closed breaker with a timeout, a plain
   * success tells it the latency the breaker measured itself: no wrapper
   * promise and no clock reads of the caller's. Any other path is observed
   * as a wrapper would.
   */
  _executeObserved<T>(fn: (signal?: AbortSignal) => T | Promise<T>, obs: CallObserver): Promise<T> {
    if (typeof fn === 'function' && this.timeoutMs !== 0 && this.page[this.slot] === 0) return this.runTimed(fn, obs);
    const t0 = now();
    return observe(this.execute(fn), t0, obs);
  }

  /** Alias used by the original docs (opossum's name). */
  fire<T>(fn: (signal?: AbortSignal) => T | Promise<T>): Promise<T> {
    return this.execute(fn);
  }

  /**
   * Closed breaker, no timeout: no crossing before the call, none after a
   * plain success. The user's promise's `.then` is returned directly (no
   * async frame of ours around it): one promise more than a bare call.
   */
  private runClosed<T>(fn: (signal?: AbortSignal) => T | Promise<T>): Promise<T> {
    const t0 = now();
    let p: T | Promise<T>;
    try {
      p = fn();
    } catch (err) {
      return this.afterFailure(fn, toError(err), now() - t0, false);
    }
    return (p instanceof Promise ? p : Promise.resolve(p)).then(
      (value: T) => {
        this.closedSuccess(value, t0);
        return value;
      },
      (err: unknown) => this.afterFailure(fn, toError(err), now() - t0, false),
    );
  }

  /**
   * Closed breaker timed with the turn clock (see "the turn clock" above):
   * `runClosed` without its two clock reads. Kept a function of its own: one
   * `runClosed` with a `perTurn` flag measured 10–20 ns slower per call
   * (hotpath.js, three alternated runs), more than the turn clock's whole cost. A failure reads the real clock
   * when it happens (its time and the window bucket are exact; its latency
   * starts at the turn's reading).
   */
  private runTurn<T>(fn: (signal?: AbortSignal) => T | Promise<T>): Promise<T> {
    const t0 = turnDirty ? readTurn() : turnAt;
    let p: T | Promise<T>;
    try {
      p = fn();
    } catch (err) {
      return this.afterFailure(fn, toError(err), now() - t0, false);
    }
    return (p instanceof Promise ? p : Promise.resolve(p)).then(
      (value: T) => {
        this.turnSuccess(value, t0);
        return value;
      },
      (err: unknown) => this.afterFailure(fn, toError(err), now() - t0, false),
    );
  }

  /** `runTurn`'s success: batched in the ring (no slow-call rule on this breaker, so never slow). */
  private turnSuccess(value: unknown, t0: number): void {
    const t1 = turnDirty ? readTurn() : turnAt;
    if (io[EPOCH_SLOT] !== this.epoch) return;
    pushOutcome(this.id, t1 - t0, t1);
    if (this.hotListeners) this.emitSafe('success', value, t1 - t0);
  }

  /** A success on a closed breaker: batched in the ring unless slow (then Rust hears of it now). */
  private closedSuccess(value: unknown, t0: number, obs: CallObserver | null = null): void {
    const t1 = now();
    const latency = t1 - t0;
    if (obs !== null) obs.record(latency, true);
    if (this.stale()) return;
    if (latency < this.page[this.slot + 1]) {
      pushOutcome(this.id, latency, t1);
      if (this.hotListeners) this.emitSafe('success', value, latency);
    } else {
      // Slow: it may open the breaker, so Rust hears of it now.
      const tr = record(this.id, BreakerOutcome.Success, latency, t1, false);
      if (this.hotListeners) this.emitSafe('success', value, latency);
      this.transitions(tr);
    }
  }

  /**
   * Closed breaker with a timeout: one clock read before the call, its
   * deadline linked in the shared list (no timer of its own), and a plain
   * success batched in the ring like `runClosed`'s (no crossing). Failures
   * and timeouts go through `afterFailure` as any other.
   */
  private runTimed<T>(fn: (signal?: AbortSignal) => T | Promise<T>, obs: CallObserver | null = null): Promise<T> {
    const t0 = now();
    const ms = this.timeoutMs;
    const promise = new Promise<T>(capture as (resolve: (v: T | PromiseLike<T>) => void) => void);
    // An AbortSignal costs ~3 µs to create in Node 20: only functions that
    // declare a parameter (the signal) get one (see `attempt`).
    const ac = fn.length > 0 ? new AbortController() : null;
    const c = new TimedCall(this, fn, t0, t0 + ms, captured, ac);
    c.obs = obs;
    deadlines.link(ms, c);
    let p: T | Promise<T>;
    try {
      p = ac ? fn(ac.signal) : fn();
    } catch (err) {
      c.fail(err);
      return promise;
    }
    (p instanceof Promise ? p : Promise.resolve(p)).then(
      (v) => c.ok(v),
      (e) => c.fail(e),
    );
    return promise;
  }

  /** Admitted with a timeout, or as a half-open trial: run with timeout and retries. */
  private async runAdmitted<T>(fn: (signal?: AbortSignal) => T | Promise<T>, trial: boolean): Promise<T> {
    const t0 = now();
    let value: T;
    try {
      value = await this.attempt(fn);
    } catch (err) {
      return this.afterFailure(fn, toError(err), now() - t0, trial);
    }
    this.succeeded(now() - t0, trial, value);
    return value;
  }

  private succeeded(latency: number, trial: boolean, value: unknown): void {
    if (this.stale()) return;
    const tr = record(this.id, BreakerOutcome.Success, latency, now(), trial);
    if (this.hotListeners) this.emitSafe('success', value, latency);
    this.transitions(tr);
  }

  /** One attempt, under the timeout when there is one. */
  private attempt<T>(fn: (signal?: AbortSignal) => T | Promise<T>): Promise<T> {
    if (this.timeoutMs === 0) return Promise.resolve().then(() => fn());
    const ms = this.timeoutMs;
    // An AbortSignal costs ~3 µs to create in Node 20, more than everything
    // else here together: only functions that declare a parameter (the
    // signal) get one. The timeout rejects the call either way.
    const ac = fn.length > 0 ? new AbortController() : null;
    return new Promise<T>((resolve, reject) => {
      const d = deadlines.add(ms, () => {
        const e = new CircuitTimeoutError(this.name, ms);
        ac?.abort(e);
        reject(e);
      });
      let p: T | Promise<T>;
      try {
        p = ac ? fn(ac.signal) : fn();
      } catch (err) {
        deadlines.remove(d);
        reject(err);
        return;
      }
      Promise.resolve(p).then(
        (v) => {
          deadlines.remove(d);
          resolve(v);
        },
        (err) => {
          deadlines.remove(d);
          reject(err);
        },
      );
    });
  }

  /**
   * After a failed first attempt: retries with backoff through the breaker's
   * `RetryPolicy` (./retry's loop, the package's one), the breaker re-checked
   * before each retry, then reports one outcome for the whole call. Each
   * failure is judged first (`judge`): a reset breaker or an `isFailure`
   * verdict of "healthy" stops the retries.
   */
  private async afterFailure<T>(fn: (signal?: AbortSignal) => T | Promise<T>, err: Error, latency: number, trial: boolean): Promise<T> {
    const t0 = now() - latency;
    const verdict = this.judge(err);
    // Nothing to retry (no retries, or the verdict ends the call): no loop to run.
    if (verdict.stop !== Stop.None || this.maxRetries === 0) return this.settle<T>(verdict, t0, trial);
    let first = true;
    let last = err;
    // Not async: the first attempt's error and a refusal are thrown synchronously,
    // so RetryPolicy's try catches them without a rejected promise (which Node's
    // unhandled-rejection bookkeeping would charge ~1 µs before the await sees it).
    const attempt = (): Promise<T> => {
      if (first) {
        // The first attempt already ran (and failed) before the breaker knew it would retry.
        first = false;
        throw verdict;
      }
      // Re-check the breaker: other calls may have opened it meanwhile. A
      // half-open trial keeps its slot for its own retries.
      if (!trial && this.page[this.slot] !== 0) {
        const code = acquire(this.id);
        this.transitions(code >> SHIFT);
        const admission = code & ADMISSION;
        if (admission >= BreakerAdmission.RejectOpen) throw AttemptFailed.of(this, last, Stop.Rejected, admission, this.retryAfter());
        trial = admission === BreakerAdmission.Trial;
      }
      return retryOnce();
    };
    // A retry: its failure is judged and boxed for the loop. This frame and
    // the box's throw cost ~0.5-1 µs per retry over the breaker's former loop
    // of its own (measured with retries that do not sleep; a retry's default
    // sleep is 100 ms or more).
    const retryOnce = async (): Promise<T> => {
      try {
        return await this.attempt(fn);
      } catch (e) {
        last = toError(e);
        throw this.judge(last);
      }
    };
    let value: T;
    try {
      value = await (this.retrier ??= new BreakerRetries(this)).execute(attempt);
    } catch (e) {
      if (!(e instanceof AttemptFailed)) throw e;
      return this.settle<T>(e, t0, trial);
    }
    this.succeeded(now() - t0, trial, value);
    return value;
  }

  /** Ends a call whose last attempt failed with `box`: one outcome for the whole call. */
  private settle<T>(box: AttemptFailed, t0: number, trial: boolean): Promise<T> {
    if (box.stop === Stop.Healthy) {
      // Not the dependency's fault: pass it through, count the call as healthy.
      this.succeeded(now() - t0, trial, undefined);
      throw box.error;
    }
    if (box.stop === Stop.Rejected) {
      this.failed(box.error, now() - t0, false);
      return this.rejected<T>(box.admission, box.error, box.retryAfterMs);
    }
    this.failed(box.error, now() - t0, trial);
    if (this.fallback) return this.runFallback<T>(box.error);
    throw box.error;
  }

  /** The breaker's verdict on one failed attempt, boxed for the retry loop; emits `timeout` for its own timeouts. */
  private judge(err: Error): AttemptFailed {
    // Reset meanwhile: the breaker this call ran under is gone; no more retries.
    if (this.stale()) return AttemptFailed.of(this, err, Stop.Stale);
    if (this.isFailure && !this.isFailure(err)) return AttemptFailed.of(this, err, Stop.Healthy);
    if (err instanceof CircuitTimeoutError && err.breaker === this.name) this.emitSafe('timeout', err);
    return AttemptFailed.of(this, err, Stop.None);
  }

  /** Told by the retry loop before each sleep: the original's log line and the `retry` event. */
  private announceRetry(attempt: number, delay: number, error: Error): void {
    logger?.warn(`⚠️  [CircuitBreaker:${this.name}] Attempt ${attempt}/${this.maxRetries + 1} failed, retrying in ${Math.round(delay)}ms:`, error.message);
    this.emitSafe('retry', { attempt, delay, error });
  }

  private failed(err: Error, latency: number, trial: boolean): void {
    if (this.stale()) {
      this.emitSafe('failure', err, latency);
      return;
    }
    const outcome = err instanceof CircuitTimeoutError && err.breaker === this.name ? BreakerOutcome.Timeout : BreakerOutcome.Failure;
    const tr = record(this.id, outcome, latency, now(), trial);
    this.emitSafe('failure', err, latency);
    this.transitions(tr);
  }

  private retryDelay(attempt: number, previous: number): number {
    io[0] = this.id;
    io[1] = attempt;
    io[2] = previous;
    io[3] = this.random ? Number(this.random()) : NaN;
    return native.cbRetryDelay(INST);
  }

  /** After `acquire` refused: it left the time the breaker admits its next trial in io[1]. */
  private retryAfter(): number | null {
    const nextAt = io[1];
    return nextAt === nextAt ? Math.max(0, nextAt - acquiredAt) : null;
  }

  private rejected<T>(admission: number, cause: Error | null, retryAfterMs: number | null): Promise<T> {
    const message = this.message(admission);
    const state: CircuitState = admission === BreakerAdmission.RejectHalfOpenFull ? 'half-open' : 'open';
    const e = CircuitOpenError.create(message, this.name, state, retryAfterMs, admission === BreakerAdmission.RejectIsolated);
    if (cause) (e as { cause?: unknown }).cause = cause;
    this.emitSafe('reject', e);
    if (this.fallback) return this.runFallback<T>(e);
    return rejectLater(e);
  }

  /** Rejection messages, built on first use and kept (a breaker that never rejects pays nothing). */
  private messages?: string[];
  private message(admission: number): string {
    let m = this.messages;
    if (!m) {
      const n = this.name;
      m = this.messages = [
        `Circuit breaker ${n} is OPEN (too many failures)`,
        `Circuit breaker ${n} is OPEN (isolated)`,
        `Circuit breaker ${n} is HALF-OPEN (trial calls in progress)`,
      ];
    }
    return m[admission === BreakerAdmission.RejectIsolated ? 1 : admission === BreakerAdmission.RejectHalfOpenFull ? 2 : 0];
  }

  // Listening to `success` switches on its emission in the hot path; these
  // overrides keep that flag without a per-breaker `newListener` listener.
  override on(event: string | symbol, listener: (...args: any[]) => void): this {
    if (event === 'success') this.hotListeners = true;
    return super.on(event, listener);
  }
  override addListener(event: string | symbol, listener: (...args: any[]) => void): this {
    return this.on(event, listener);
  }
  override once(event: string | symbol, listener: (...args: any[]) => void): this {
    if (event === 'success') this.hotListeners = true;
    return super.once(event, listener);
  }
  override prependListener(event: string | symbol, listener: (...args: any[]) => void): this {
    if (event === 'success') this.hotListeners = true;
    return super.prependListener(event, listener);
  }
  override prependOnceListener(event: string | symbol, listener: (...args: any[]) => void): this {
    if (event === 'success') this.hotListeners = true;
    return super.prependOnceListener(event, listener);
  }

  private async runFallback<T>(err: Error): Promise<T> {
    table.control(this.id, BreakerControl.Fallback, now());
    this.emitSafe('fallback', err);
    return (await this.fallback!(err)) as T;
  }

  /** Emits one event per transition bit Rust returned, in the order they happen. */
  private transitions(bits: number, why?: string): void {
    if (bits === 0) return;
    if (bits & BreakerTransition.HalfOpened) {
      logger?.log(`🔄 [CircuitBreaker:${this.name}] Transitioning to half-open state`);
      this.emitSafe('halfOpen');
    }
    if (bits & BreakerTransition.Closed) {
      logger?.log(`✅ [CircuitBreaker:${this.name}] Circuit CLOSED (recovered)`);
      this.emitSafe('close');
    }
    if (bits & BreakerTransition.Opened) {
      why ??= bits & BreakerTransition.FromHalfOpen ? 'half-open failures' : 'failure threshold reached';
      logger?.error(`❌ [CircuitBreaker:${this.name}] Circuit OPENED (${why})`);
      this.emitSafe('open');
    }
  }

  /** A throwing listener must not corrupt the call it listens to. */
  private emitSafe(event: string, ...args: unknown[]): void {
    if (this.listenerCount(event) === 0) return;
    try {
      this.emit(event, ...args);
    } catch (e) {
      process.nextTick(() => {
        throw e;
      });
    }
  }

  /** The original's `getState()`: `{ state, failureCount, lastFailureTime }`. */
  getState(): BreakerStateView {
    this.bound();
    const s = table.state(this.id);
    return { state: s.state as CircuitState, failureCount: s.failureCount, lastFailureTime: s.lastFailureTime ?? null };
  }

  /** Forces the breaker closed and zeroes every counter. */
  reset(): void {
    this.bound();
    const tr = table.control(this.id, BreakerControl.Reset, now());
    logger?.log(`🔄 [CircuitBreaker:${this.name}] Circuit RESET`);
    if (tr & BreakerTransition.Closed) this.emitSafe('close');
  }

  /** Closes the breaker by hand (ends an isolation), keeping its statistics. */
  close(): void {
    this.bound();
    this.transitions(table.control(this.id, BreakerControl.Close, now()));
  }

  /** Opens the breaker by hand; it half-opens after `resetTimeout` as usual. */
  open(): void {
    this.bound();
    this.transitions(table.control(this.id, BreakerControl.Open, now()), 'opened by hand');
  }

  /** Opens the breaker and holds it open until `close()` or `reset()` (incidents). */
  isolate(): void {
    this.bound();
    this.transitions(table.control(this.id, BreakerControl.Isolate, now()), 'isolated');
    // Isolating an already-open breaker changes no state, so `open` may not
    // fire; `isolate` always does.
    this.emitSafe('isolate');
  }

  /** Everything Rust knows about this breaker: state, counters, rolling window, options. */
  toJSON(): BreakerSnapshot {
    this.bound();
    return table.snapshot(this.id, now());
  }

  snapshot(): BreakerSnapshot {
    return this.toJSON();
  }
}

// ---- registry ----------------------------------------------------------------

/**
 * The breakers by name (capped); `get` creates one on first use with the given
 * options and returns the same one afterwards.
 *
 *   const orders = getCircuitBreakerRegistry().get('orders-db', { timeout: 2_000 });
 *   getCircuitBreakerRegistry().getAll(); // [{ name: 'orders-db', state: 'closed', failureCount: 0 }]
 */
export class CircuitBreakerRegistry {
  private readonly breakers = new Map<string, CircuitBreaker>();
  private seen = epoch();

  /** resetAll() removed every breaker in Rust: forget the objects too. */
  private current(): Map<string, CircuitBreaker> {
    if (this.seen !== epoch()) {
      this.breakers.clear();
      this.seen = epoch();
    }
    return this.breakers;
  }

  /**
   * The breaker named `name`, created on first use. As in the original,
   * later calls return the same instance and ignore their options.
   */
  get(name: string, options?: CircuitBreakerOptions): CircuitBreaker {
    let b = this.current().get(name);
    if (!b) {
      b = new CircuitBreaker(name, options);
      // An options getter may have created this name already (re-entrancy):
      // keep the first instance so every caller shares one emitter.
      const first = this.current().get(name);
      if (first) return first;
      this.current().set(name, b);
    }
    return b;
  }

  /** Alias from the original docs. */
  getBreaker(name: string, options?: CircuitBreakerOptions): CircuitBreaker {
    return this.get(name, options);
  }

  has(name: string): boolean {
    return this.current().has(name);
  }

  /** `[{ name, state, failureCount }]` in creation order. */
  getAll(): Array<{ name: string; state: CircuitState; failureCount: number }> {
    return [...this.current().values()].map((b) => {
      const s = b.getState();
      return { name: b.name, state: s.state, failureCount: s.failureCount };
    });
  }

  resetAll(): void {
    for (const b of this.current().values()) b.reset();
  }

  /** Full snapshots of every breaker, in creation order. */
  toJSON(): BreakerSnapshot[] {
    return [...this.current().values()].map((b) => b.toJSON());
  }
}

let registry: CircuitBreakerRegistry | null = null;

/**
 * The process-wide registry (a lazily created singleton, as the original).
 *
 *   getCircuitBreakerRegistry().get('orders-db').on('open', () => console.warn('orders-db is failing'));
 */
export function getCircuitBreakerRegistry(): CircuitBreakerRegistry {
  if (!registry) registry = new CircuitBreakerRegistry();
  return registry;
}

/**
 * Same as `getCircuitBreakerRegistry().get(name, options).execute(fn)`.
 *
 *   const order = await withCircuitBreaker('orders-api', (signal) => fetch(url, { signal }).then((r) => r.json()), { timeout: 2000 });
 */
export function withCircuitBreaker<T>(name: string, fn: (signal?: AbortSignal) => T | Promise<T>, options?: CircuitBreakerOptions): Promise<T> {
  return getCircuitBreakerRegistry().get(name, options).execute(fn);
}
