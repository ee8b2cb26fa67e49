/**
 * Health gates: a drop-in replacement for the original
 * `server/core/health-gates.ts` (`getHealthGates`, `checkDatabaseGate`,
 * `checkDAGGate`), with the gate state machines in Rust
 * (`src/core/gate.rs`).
 *
 * This file runs the check functions. Which checks are due, their
 * timeouts, the consecutive-pass/failure counting and the readiness verdict
 * are Rust's. All gates share one unref'd timer, armed for the earliest due
 * check or deadline; a check that hangs is failed at its deadline and its
 * late answer is ignored.
 *
 * Differences from the original, on purpose (see README):
 * - `getReadiness()` reads state; it never runs a check (the original ran a
 *   round on every call, so every probe advanced the counters);
 * - `requiredConsecutiveFailures` (default 1, as the original) lets a ready
 *   gate survive a blip, like Kubernetes' failureThreshold;
 * - a check must answer `true`; `false`, another value, a throw or a
 *   timeout fail it with the reason recorded;
 * - `requiredPasses: 0` is a RangeError, not 3 (the original's `||`).
 */
import { EventEmitter } from 'node:events';
import { setTimeout, clearTimeout } from 'node:timers';
import { native } from './native';
import { epoch } from './test-runner';
import { notFound } from './errors';
import { GateTransition } from '../index';
import { getCircuitBreakerRegistry } from './circuit-breaker';
import { assertDatabaseHealthy, checkDatabaseHealth, getLogger, getStartupDAG, reasonOf, type StartupDAG } from './startup-dag';

export interface HealthGateOptions {
  serviceId: string;
  name?: string;
  /** Only critical gates decide readiness (default false). */
  critical?: boolean;
  /** Must resolve `true` to pass. */
  check: () => unknown;
  /** Passes in a row before the gate is ready (default 3). */
  requiredConsecutivePasses?: number;
  /** The original's name for `requiredConsecutivePasses`. */
  requiredPasses?: number;
  /** Failures in a row before a ready gate turns not-ready (default 1). */
  requiredConsecutiveFailures?: number;
  /** Period of the scheduled check in ms (default 5000). */
  checkIntervalMs?: number;
  /** A check running longer than this fails (default 5000 ms). */
  timeoutMs?: number;
  /** Set by `fromBreaker`: the gate also re-checks on the breaker's transitions. */
  breaker?: string;
}

type NativeGates = InstanceType<typeof native.HealthGates>;
export type GateView = ReturnType<NativeGates['readiness']>['gates'][number];

/** The original's per-gate shape plus this package's fields. */
export interface GateStatus extends GateView {
  lastCheck: number | undefined;
}

export interface Readiness {
  ready: boolean;
  criticalReady: boolean;
  allReady: boolean;
  degraded: boolean;
  shuttingDown: boolean;
  gates: GateStatus[];
}

function view(g: GateView): GateStatus {
  return { ...g, lastCheck: g.lastCheck ?? undefined };
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : typeof v;
}

interface Pending {
  token: number;
  promise: Promise<boolean>;
  resolve: (pass: boolean) => void;
}

/**
 * A set of gates with their scheduler. Events: `ready` (serviceId),
 * `notReady` (serviceId, reason), `check` (serviceId, pass, reason).
 *
 *   getHealthGates().registerGate({ serviceId: 'cache', name: 'Cache', critical: false, check: async () => cache.ping() });
 */
export class HealthGates extends EventEmitter {
  /** This set's native half: owned here, freed with this object. */
  private readonly g: NativeGates = new native.HealthGates();
  private checks: Array<HealthGateOptions['check']> = [];
  private ids: string[] = [];
  private breakers: Array<string | undefined> = [];
  private hooked = new Set<string>();
  private readonly pending = new Map<number, Pending>();
  private started = false;
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;
  /** Explicit checks someone is awaiting: while any, the timer (their deadline) is ref'd. */
  private awaited = 0;

  /** Adds a gate, or replaces the one with the same `serviceId` (counts restart at 0). */
  registerGate(gate: HealthGateOptions): void {
    if (gate === null || typeof gate !== 'object') {
      throw new TypeError(`gate must be an object, got ${gate === null ? 'null' : typeof gate}`);
    }
    if (typeof gate.check !== 'function') {
      throw new TypeError(`gate.check must be a function, got ${gate.check === null ? 'null' : typeof gate.check}`);
    }
    const i = this.g.register(gate, Date.now());
    this.checks[i] = gate.check;
    this.ids[i] = gate.serviceId;
    this.breakers[i] = typeof gate.breaker === 'string' ? gate.breaker : undefined;
    this.pending.get(i)?.resolve(false);
    this.pending.delete(i);
    this.schedule();
  }

  /** The original's name for `registerGate`. */
  register(gate: HealthGateOptions): void {
    this.registerGate(gate);
  }

  /** Starts the periodic checks (one at once for every gate). Idempotent. */
  start(): void {
    if (this.started) return;
    this.started = true;
    getLogger()?.log('✅ [HealthGates] Started periodic checks');
    this.tick();
  }

  /** Stops the periodic checks; explicit checks still work. */
  stop(): void {
    if (!this.started) return;
    this.started = false;
    this.disarm();
    if (this.pending.size) this.schedule();
    getLogger()?.log('🛑 [HealthGates] Stopped periodic checks');
  }

  isStarted(): boolean {
    return this.started;
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = Infinity;
  }

  /** Arms the one timer for the next due check or deadline. */
  private schedule(): void {
    if (!this.started && this.pending.size === 0) return this.disarm();
    const at = this.g.nextWake();
    if (at < 0) return this.disarm();
    if (this.timer && this.timerAt <= at) return this.holdOpen();
    this.disarm();
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.timerAt = Infinity;
      this.tick();
    }, Math.max(0, at - Date.now()));
    this.holdOpen();
  }

  /**
   * The scheduled checks never keep the process alive (unref), but an
   * explicit `checkGate()` that someone awaits must end, even if its check
   * hangs and nothing else is running: its deadline timer is ref'd meanwhile.
   */
  private holdOpen(): void {
    if (!this.timer) return;
    if (this.awaited > 0) this.timer.ref();
    else this.timer.unref();
  }

  private tick(): void {
    const now = Date.now();
    const t = this.g.tick(now, this.started);
    for (let k = 0; k < t.expired.length; k += 2) {
      const i = t.expired[k];
      const p = this.pending.get(i);
      this.pending.delete(i);
      this.transition(i, t.expired[k + 1]);
      this.emit('check', this.ids[i], false, 'timeout');
      p?.resolve(false);
    }
    for (let k = 0; k < t.start.length; k += 2) void this.run(t.start[k], t.start[k + 1]);
    this.schedule();
  }

  private run(i: number, token: number): Promise<boolean> {
    const existing = this.pending.get(i);
    if (existing && existing.token === token) return existing.promise;
    let resolve!: (pass: boolean) => void;
    const promise = new Promise<boolean>((r) => (resolve = r));
    const entry: Pending = { token, promise, resolve };
    this.pending.set(i, entry);
    this.hookBreaker(i);
    let result: Promise<unknown>;
    try {
      result = Promise.resolve(this.checks[i]());
    } catch (e) {
      result = Promise.reject(e);
    }
    result.then(
      (v) => this.answer(i, entry, v === true, v === true ? null : v === false ? 'check returned false' : `check returned ${describe(v)}, expected true`),
      (e) => this.answer(i, entry, false, reasonOf(e)),
    );
    return promise;
  }

  private answer(i: number, entry: Pending, pass: boolean, reason: string | null): void {
    const tr = this.g.record(i, entry.token, pass, reason, Date.now());
    if (tr === GateTransition.Stale) return; // timed out or replaced: already answered
    if (this.pending.get(i) === entry) this.pending.delete(i);
    this.transition(i, tr);
    this.emit('check', this.ids[i], pass, reason);
    entry.resolve(pass);
    this.schedule();
  }

  private transition(i: number, tr: number): void {
    if (tr === GateTransition.BecameReady) {
      getLogger()?.log(`✅ [HealthGates] ${this.ids[i]} is ready`);
      this.emit('ready', this.ids[i]);
    } else if (tr === GateTransition.BecameNotReady) {
      const reason = this.g.readiness().gates[i]?.reason ?? 'check failed';
      getLogger()?.warn(`⚠️  [HealthGates] ${this.ids[i]} is not ready: ${reason}`);
      this.emit('notReady', this.ids[i], reason);
    }
  }

  /** Breaker-bound gates re-check at once on the breaker's transitions. */
  private hookBreaker(i: number): void {
    const name = this.breakers[i];
    if (!name || this.hooked.has(name)) return;
    const reg = getCircuitBreakerRegistry();
    if (!reg.has(name)) return;
    this.hooked.add(name);
    const b = reg.get(name);
    const recheck = () => {
      const k = this.ids.findIndex((id, j) => this.breakers[j] === name && id !== undefined);
      if (k >= 0) void this.checkGate(this.ids[k]).catch(() => {});
    };
    for (const ev of ['open', 'close', 'halfOpen', 'isolate']) b.on(ev, recheck);
  }

  private indexOf(serviceId: string): number {
    const i = this.ids.indexOf(serviceId);
    if (i < 0) throw notFound(`Health gate not found: ${serviceId}`);
    return i;
  }

  /** Runs gate `serviceId`'s check now (or joins the one running) and returns its state. */
  async checkGate(serviceId: string): Promise<GateStatus> {
    const i = this.indexOf(serviceId);
    const token = this.g.start(i, Date.now());
    const p = this.run(i, token);
    this.awaited++;
    this.schedule();
    try {
      await p;
    } finally {
      this.awaited--;
      this.holdOpen();
    }
    return view(this.g.readiness().gates[i]);
  }

  /**
   * Checks every gate now, concurrently. Returns the original's
   * `{ allReady, criticalReady, gates }` (gates with this package's extra fields).
   */
  async checkAllGates(): Promise<{ allReady: boolean; criticalReady: boolean; gates: GateStatus[] }> {
    await Promise.all(this.ids.map((id) => this.checkGate(id)));
    const r = this.g.readiness();
    return { allReady: r.allReady, criticalReady: r.criticalReady, gates: r.gates.map(view) };
  }

  /** The original's name for `checkAllGates`. */
  checkAll(): Promise<{ allReady: boolean; criticalReady: boolean; gates: GateStatus[] }> {
    return this.checkAllGates();
  }

  /** Readiness from state; never runs a check. */
  getReadinessSnapshot(): Readiness {
    const r = this.g.readiness();
    return { ...r, gates: r.gates.map(view) };
  }

  /** As `getReadinessSnapshot()`, as a promise (the original's signature). */
  async getReadiness(): Promise<Readiness> {
    return this.getReadinessSnapshot();
  }

  /** The verdict alone (cheapest: for probes). */
  isReady(): boolean {
    return this.g.ready();
  }

  /** While shutting down, readiness is false whatever the gates say. */
  setShuttingDown(on: boolean): void {
    this.g.setShuttingDown(!!on);
  }

  /** Stops checks and forgets every gate (tests). */
  reset(): void {
    this.stop();
    this.disarm();
    for (const p of this.pending.values()) p.resolve(false);
    this.pending.clear();
    this.g.clear();
    this.checks = [];
    this.ids = [];
    this.breakers = [];
  }
}

let gates: HealthGates | null = null;
let gatesEpoch = epoch();

/**
 * The process-wide gates (a lazily created singleton, as the original).
 *
 *   getHealthGates().registerGate(databaseGate({ timeoutMs: 2000 }));
 */
export function getHealthGates(): HealthGates {
  // After resetAll() the set Rust held is empty: a new one, the old one's timer stopped.
  if (gates && gatesEpoch !== epoch()) {
    gates.stop();
    gates = null;
  }
  if (!gates) {
    gates = new HealthGates();
    gatesEpoch = epoch();
  }
  return gates;
}

/**
 * A gate that fails while circuit breaker `name` is open (or isolated), and
 * re-checks on its transitions. A breaker not created yet counts as closed.
 *
 *   getHealthGates().registerGate(fromBreaker('payments-api', { critical: true }));
 */
export function fromBreaker(
  name: string,
  opts: Partial<Omit<HealthGateOptions, 'check' | 'breaker'>> = {},
): HealthGateOptions {
  if (typeof name !== 'string' || !name) throw new TypeError(`name must be a non-empty string, got ${typeof name}`);
  return {
    serviceId: `breaker:${name}`,
    name: `Circuit breaker ${name}`,
    critical: true,
    // The breaker already has its own hysteresis.
    requiredConsecutivePasses: 1,
    checkIntervalMs: 1000,
    ...opts,
    breaker: name,
    check: () => {
      const reg = getCircuitBreakerRegistry();
      if (!reg.has(name)) return true;
      const b = reg.get(name);
      const s = b.getState().state;
      if (s === 'open') throw new Error(`circuit breaker ${name} is open`);
      return true;
    },
  };
}

/**
 * As the original's `checkDatabaseGate`: the same probe as `checkDatabaseHealth` (true or false, never rejects).
 *
 *   const ok = await checkDatabaseGate();
 */
export function checkDatabaseGate(): Promise<boolean> {
  return checkDatabaseHealth();
}

/**
 * `checkDatabaseGate` that rejects with the reason instead of resolving false (for gate checks).
 *
 *   await assertDatabaseGate();
 */
export function assertDatabaseGate(): Promise<true> {
  return assertDatabaseHealthy();
}

/**
 * As the original: true when every critical service of the startup DAG
 * (default: the process-wide one) is ready, false otherwise (not
 * initialised yet, in progress, failed, or an invalid graph). Never rejects;
 * `assertDAGReady()` gives the reason.
 *
 * ```ts
 * const ready = await checkDAGGate(); // false until the critical services are up
 * ```
 */
export function checkDAGGate(dag: StartupDAG = getStartupDAG()): Promise<boolean> {
  return assertDAGReady(dag).then(
    () => true,
    () => false,
  );
}

/**
 * `checkDAGGate` that rejects with why instead of resolving false (graph
 * problems, the abort message, or progress), so a gate's reason says it.
 *
 *   await assertDAGReady(); // rejects unless every critical service is ready
 */
export async function assertDAGReady(dag: StartupDAG = getStartupDAG()): Promise<true> {
  if (dag.areCriticalServicesReady()) {
    const r = dag.getStartupReport();
    if (r.problems.length === 0 && r.outcome !== 'failed') return true;
  }
  const r = dag.getStartupReport();
  if (r.problems.length) throw new Error(`startup DAG is invalid: ${r.problems.map((p) => p.message).join('; ')}`);
  if (r.outcome === 'failed') throw new Error(r.error ?? 'startup failed');
  if (r.outcome === 'not-started') throw new Error('startup DAG not initialized yet');
  throw new Error(`startup in progress: ${r.ready}/${r.total} services ready`);
}

