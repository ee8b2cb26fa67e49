/**
 * Several instances, one picture: ops state shared through Redis, exact
 * cluster-wide golden signals, and breakers that can open on a quorum of
 * instances.
 *
 * Redis is never on the request path: decisions stay in-process, on the
 * state each instance holds; Redis I/O runs on one shared unref'd timer and
 * on pub/sub messages. When Redis is down the instance keeps serving on its
 * last-known state, reconnects with backoff, reports `reconnecting`, and
 * catches up (or publishes what changed locally meanwhile) when Redis is back.
 *
 * Keys (prefix default `rc:`): `ops` (the ops state JSON, last writer wins),
 * channel `events` (change notices), `rollouts` (the last shared change of
 * each rollout: manual updates, advances, pauses, rollbacks), `metrics:<instance>` (each instance's
 * counters and HDR histograms, with a TTL: a dead instance drops out),
 * `breaker:<name>` (a hash instance -> state, for quorum breakers).
 */
import { randomBytes } from 'node:crypto';
import * as os from 'node:os';
import { setInterval, clearInterval } from 'node:timers';
// `Binding` names the binding's types in the emitted .d.ts (why: lib/native.ts).
import { native, type Binding } from './native';
import { getCircuitBreakerRegistry } from './circuit-breaker';
import { exportLatencyHistogram, getGoldenSignals } from './metrics';
import { getOps, type OpsControls } from './ops';
import { getTrafficShaping } from './traffic-shaping';

export interface RedisBackendOptions {
  /** `redis://host:port/db` (credentials allowed; never logged). */
  url: string;
  ops?: OpsControls;
  /** This instance's name in Redis (default host-pid-random). */
  instanceId?: string;
  prefix?: string;
  /** Sync period in ms (default 500: changes reach every instance within a second). */
  syncMs?: number;
  /** A client constructor (default: `require('ioredis')`). */
  Redis?: any;
}

export interface QuorumOptions {
  /** Instances that must see the dependency failing (an integer >= 1), or a share of the live ones (0..1). */
  quorum: number;
}

export type BackendState = 'connecting' | 'ready' | 'reconnecting' | 'closed';

/** Rollout events every instance applies (a `start` is each instance's own code). */
const SHARED_ROLLOUT_EVENTS = new Set(['update', 'advance', 'promote', 'rollback', 'abort', 'pause', 'resume']);

/** Counters that sum exactly across instances. */
interface Counts {
  requests: number;
  status4xx: number;
  status5xx: number;
  aborted: number;
}

export class RedisBackend {
  readonly instanceId: string;
  private readonly prefix: string;
  private readonly syncMs: number;
  private readonly ops: OpsControls;
  private readonly cmd: any;
  private readonly sub: any;
  private timer: NodeJS.Timeout | null = null;
  private lastApplied = '';
  private lastPublishedVersion = -1;
  /** The local ops state changed while Redis was unreachable: publish it on reconnect. */
  private dirty = false;
  private readonly quorums = new Map<string, { quorum: number; forced: boolean }>();
  state: BackendState = 'connecting';
  lastError: string | null = null;
  lastSyncAt: number | null = null;
  private syncing = false;
  /** True while applying a rollout change from another instance (not to echo it back). */
  private applyingRemote = false;
  /** Per rollout, the `at` of the last shared change applied or made here. */
  private readonly rolloutSeen = new Map<string, number>();

  constructor(options: RedisBackendOptions) {
    if (!options || typeof options.url !== 'string') throw new TypeError('url must be a redis:// URL string');
    const u = new URL(options.url);
    if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new TypeError('url must be a redis:// or rediss:// URL');
    this.syncMs = options.syncMs ?? 500;
    if (!Number.isInteger(this.syncMs) || this.syncMs < 50 || this.syncMs > 60_000) throw new RangeError(`syncMs must be an integer from 50 to 60000, got ${String(options.syncMs)}`);
    this.prefix = options.prefix ?? 'rc:';
    if (typeof this.prefix !== 'string' || !/^[\w:.-]{0,64}$/.test(this.prefix)) throw new TypeError('prefix must be up to 64 word characters, ":", "." or "-"');
    this.instanceId = options.instanceId ?? `${os.hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    this.ops = options.ops ?? getOps();
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const Redis = options.Redis ?? require('ioredis');
    const common = {
      lazyConnect: true,
      // Commands fail at once while disconnected instead of queueing: the
      // sync retries on its next tick, and nothing ever waits on Redis.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      retryStrategy: (n: number) => Math.min(100 * 2 ** Math.min(n, 6), 5000),
      connectTimeout: 2000,
    };
    this.cmd = new Redis(options.url, common);
    this.sub = new Redis(options.url, common);
    for (const c of [this.cmd, this.sub]) {
      c.on('error', (e: Error) => (this.lastError = (e as any).code ?? e.message));
      c.on('end', () => this.state !== 'closed' && (this.state = 'reconnecting'));
      c.on('reconnecting', () => this.state !== 'closed' && (this.state = 'reconnecting'));
    }
    this.cmd.on('ready', () => {
      this.state = 'ready';
      this.lastError = null;
      void this.sync();
    });
    this.sub.on('ready', () => void this.sub.subscribe(`${this.prefix}events`).catch(() => undefined));
    this.sub.on('message', (_ch: string, msg: string) => {
      let m: { type?: string; by?: string } = {};
      try {
        m = JSON.parse(msg);
      } catch {
        return;
      }
      if (m.by === this.instanceId) return;
      if (m.type === 'ops') void this.pullOps();
      if (m.type === 'breaker') void this.checkQuorums();
      if (m.type === 'rollout') void this.pullRollouts();
    });
    // Local ops changes go out at once (and again on each tick if they failed).
    this.ops.on('action', () => void this.pushOps());
    // So do rollout decisions (manual updates, automatic advances and rollbacks).
    getTrafficShaping().on('change', (e: { name: string; kind: string; toPercentage: number }) => {
      if (!this.applyingRemote && SHARED_ROLLOUT_EVENTS.has(e.kind)) void this.pushRollout(e.name, e.kind, e.toPercentage);
    });
  }

  /** Connects and starts the shared sync timer. Never throws: a down Redis is retried. */
  async start(): Promise<this> {
    this.timer = setInterval(() => void this.sync(), this.syncMs);
    this.timer.unref();
    await Promise.allSettled([this.cmd.connect(), this.sub.connect()]);
    if (this.cmd.status !== 'ready') this.state = 'reconnecting';
    return this;
  }

  async close(): Promise<void> {
    this.state = 'closed';
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await Promise.allSettled([this.cmd.quit(), this.sub.quit()]);
    this.cmd.disconnect();
    this.sub.disconnect();
  }

  private ready(): boolean {
    return this.cmd.status === 'ready';
  }

  // ---- ops state ---------------------------------------------------------------

  private async pushOps(): Promise<void> {
    const v = this.ops.version;
    if (v === this.lastPublishedVersion) return;
    if (!this.ready()) {
      this.dirty = true;
      return;
    }
    const state = this.ops.exportState();
    const doc = JSON.stringify({ by: this.instanceId, at: Date.now(), state });
    try {
      await this.cmd.set(`${this.prefix}ops`, doc);
      await this.cmd.publish(`${this.prefix}events`, JSON.stringify({ type: 'ops', by: this.instanceId }));
      this.lastPublishedVersion = this.ops.version;
      this.lastApplied = doc;
      this.dirty = false;
    } catch (e) {
      this.dirty = true;
      this.lastError = (e as Error).message;
    }
  }

  private async pullOps(): Promise<void> {
    if (!this.ready()) return;
    let doc: string | null;
    try {
      doc = await this.cmd.get(`${this.prefix}ops`);
    } catch (e) {
      this.lastError = (e as Error).message;
      return;
    }
    if (!doc || doc === this.lastApplied) return;
    try {
      const { by, state } = JSON.parse(doc);
      if (by === this.instanceId) {
        this.lastApplied = doc;
        return;
      }
      this.ops.applyState(state);
      this.lastApplied = doc;
      this.lastPublishedVersion = this.ops.version;
    } catch (e) {
      this.lastError = `ignored an invalid ops state in Redis: ${(e as Error).message}`;
    }
  }

  // ---- metrics ---------------------------------------------------------------------

  private async pushMetrics(): Promise<void> {
    const g = getGoldenSignals();
    const all = g.traffic.windows.all;
    const counts: Counts = { requests: all.requests, status4xx: g.errors.status4xx, status5xx: g.errors.status5xx, aborted: all.aborted };
    const w1 = g.traffic.windows['1m'];
    // Each rollout's new cohort over its analysis window, for the cluster-wide SLO check.
    const ts = getTrafficShaping();
    const rollouts: Record<string, { requests: number; errors: number }> = {};
    for (const name of ts.names()) {
      const w = ts.getRolloutStatus(name)?.newCohort.windows.find((x) => x.window === 'window');
      if (w) rollouts[name] = { requests: w.requests, errors: w.errors };
    }
    const doc = JSON.stringify({
      instance: this.instanceId,
      at: Date.now(),
      counts,
      rollouts,
      lastMinute: { requests: w1.requests, status4xx: g.errors.windows['1m'].status4xx, status5xx: g.errors.windows['1m'].status5xx },
      histograms: { all: exportLatencyHistogram(undefined, 'all'), '1m': exportLatencyHistogram(undefined, '1m') },
    });
    await this.cmd.set(`${this.prefix}metrics:${this.instanceId}`, doc, 'PX', this.syncMs * 4);
  }

  /**
   * Golden signals over every live instance: counters summed and latency
   * histograms merged exactly (never averaged percentiles). Rejects when
   * Redis is unreachable.
   */
  async clusterGoldenSignals() {
    if (!this.ready()) throw new Error(`Redis is ${this.state}: cluster figures unavailable (${this.lastError ?? 'not connected'})`);
    await this.pushMetrics();
    const docs = await this.instanceDocs();
    const total: Counts = { requests: 0, status4xx: 0, status5xx: 0, aborted: 0 };
    const minute = { requests: 0, status4xx: 0, status5xx: 0 };
    for (const d of docs) {
      for (const k of Object.keys(total) as Array<keyof Counts>) total[k] += d.counts[k] ?? 0;
      for (const k of Object.keys(minute) as Array<keyof typeof minute>) minute[k] += d.lastMinute[k] ?? 0;
    }
    const latencyAll = native.sgMergeExports(docs.map((d: any) => d.histograms.all));
    const latency1m = native.sgMergeExports(docs.map((d: any) => d.histograms['1m']));
    const errs = total.status4xx + total.status5xx;
    return {
      scope: 'cluster' as const,
      instances: docs.map((d: any): { instance: string; at: number; requests: number } => ({ instance: d.instance, at: d.at, requests: d.counts.requests })),
      traffic: { totalRequests: total.requests, aborted: total.aborted, lastMinute: minute.requests, requestsPerSecond: minute.requests / 60 },
      errors: { errorRate: total.requests ? errs / total.requests : 0, status4xx: total.status4xx, status5xx: total.status5xx, lastMinute: { status4xx: minute.status4xx, status5xx: minute.status5xx } },
      latency: { ...latency1m, allTime: latencyAll },
      timestamp: Date.now(),
    };
  }

  // ---- quorum breakers -------------------------------------------------------------

  /**
   * Breaker `name` opens on this instance when at least `quorum` instances
   * (or that share of the live ones) see its dependency failing, and closes
   * again when they no longer do; one bad instance cannot open it for all.
   */
  quorumBreaker(name: string, options: QuorumOptions): void {
    if (typeof name !== 'string' || !name) throw new TypeError('name must be a non-empty string');
    const q = options?.quorum;
    if (typeof q !== 'number' || !Number.isFinite(q) || q <= 0 || (q > 1 && !Number.isInteger(q))) throw new RangeError(`quorum must be an integer >= 1 or a share in (0, 1], got ${String(q)}`);
    this.quorums.set(name, { quorum: q, forced: false });
    const b = getCircuitBreakerRegistry().get(name);
    const publish = () => void this.pushBreaker(name);
    for (const ev of ['open', 'close', 'halfOpen']) b.on(ev, publish);
  }

  private localState(name: string): string {
    const q = this.quorums.get(name);
    const s = getCircuitBreakerRegistry().get(name).getState().state;
    // A breaker opened by the quorum does not count as a vote of its own.
    return q?.forced ? 'closed' : s;
  }

  private async pushBreaker(name: string): Promise<void> {
    if (!this.ready()) return;
    try {
      await this.cmd.hset(`${this.prefix}breaker:${name}`, this.instanceId, JSON.stringify({ state: this.localState(name), at: Date.now() }));
      await this.cmd.publish(`${this.prefix}events`, JSON.stringify({ type: 'breaker', by: this.instanceId }));
    } catch (e) {
      this.lastError = (e as Error).message;
    }
  }

  private async checkQuorums(): Promise<void> {
    if (!this.ready()) return;
    for (const [name, q] of this.quorums) {
      let votes: Record<string, string>;
      try {
        votes = await this.cmd.hgetall(`${this.prefix}breaker:${name}`);
      } catch {
        continue;
      }
      const fresh = Object.values(votes)
        .map((v) => JSON.parse(v))
        .filter((v) => Date.now() - v.at < this.syncMs * 4);
      const failing = fresh.filter((v) => v.state === 'open').length;
      const need = q.quorum <= 1 && q.quorum > 0 && !Number.isInteger(q.quorum) ? Math.ceil(q.quorum * Math.max(fresh.length, 1)) : q.quorum;
      const b = getCircuitBreakerRegistry().get(name);
      if (failing >= need && b.getState().state !== 'open') {
        q.forced = true;
        b.open();
      } else if (failing < need && q.forced) {
        q.forced = false;
        b.close();
      }
    }
  }

  // ---- rollout changes ---------------------------------------------------------------

  private async pushRollout(name: string, kind: string, toPercentage: number): Promise<void> {
    const at = Date.now();
    this.rolloutSeen.set(name, at);
    if (!this.ready()) return; // the state each instance already holds stays; the next change travels
    try {
      await this.cmd.hset(`${this.prefix}rollouts`, name, JSON.stringify({ kind, toPercentage, at, by: this.instanceId }));
      await this.cmd.publish(`${this.prefix}events`, JSON.stringify({ type: 'rollout', by: this.instanceId }));
    } catch (e) {
      this.lastError = (e as Error).message;
    }
  }

  /** Applies rollout changes other instances made since the last ones seen here. */
  private async pullRollouts(): Promise<void> {
    if (!this.ready()) return;
    let all: Record<string, string>;
    try {
      all = await this.cmd.hgetall(`${this.prefix}rollouts`);
    } catch {
      return;
    }
    const ts = getTrafficShaping();
    for (const [name, raw] of Object.entries(all)) {
      let c: { kind: string; toPercentage: number; at: number; by: string };
      try {
        c = JSON.parse(raw);
      } catch {
        continue;
      }
      if (c.by === this.instanceId || c.at <= (this.rolloutSeen.get(name) ?? 0) || !ts.has(name)) continue;
      this.rolloutSeen.set(name, c.at);
      this.applyingRemote = true;
      try {
        if (c.kind === 'pause') ts.pause(name, `from ${c.by}`);
        else if (c.kind === 'resume') ts.resume(name, `from ${c.by}`);
        else if (c.kind === 'rollback') ts.rollback(name, `from ${c.by}`);
        else if (c.kind === 'abort') ts.abort(name, `from ${c.by}`);
        else ts.updateRollout(name, c.toPercentage);
      } catch (e) {
        this.lastError = `could not apply a rollout change for ${name}: ${(e as Error).message}`;
      } finally {
        this.applyingRemote = false;
      }
    }
  }

  // ---- cluster-wide rollout SLO ----------------------------------------------------

  /**
   * Judges each rollout's error-rate SLO on the new cohort of every
   * instance together: at 1 % across 10 instances, no instance alone may
   * reach `minSamples`, but the cluster does. A breach rolls the rollout
   * back through the shared ops state, so every instance rolls back.
   */
  private async checkClusterRollouts(): Promise<void> {
    const ts = getTrafficShaping();
    const names = ts.names();
    if (names.length === 0) return;
    const docs = await this.instanceDocs();
    for (const name of names) {
      const cfg = ts.getConfig(name);
      const max = cfg?.slo?.errorRate;
      if (max === undefined || cfg?.autoRollback === false) continue;
      if ((ts.getStatus(name)?.percentage ?? 0) === 0) continue;
      let requests = 0;
      let errors = 0;
      for (const d of docs) {
        requests += d.rollouts?.[name]?.requests ?? 0;
        errors += d.rollouts?.[name]?.errors ?? 0;
      }
      if (requests >= (cfg?.minSamples ?? 11) && errors / requests > max) {
        this.ops.rollback(name, { actor: `cluster:${this.instanceId}`, source: 'redis', reason: `cluster error rate ${(errors / requests).toFixed(4)} > ${max} over ${requests} requests on ${docs.length} instances` });
      }
    }
  }

  private async instanceDocs(): Promise<any[]> {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await this.cmd.scan(cursor, 'MATCH', `${this.prefix}metrics:*`, 'COUNT', 200);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    return (keys.length ? await this.cmd.mget(keys) : []).filter(Boolean).map((d: string) => JSON.parse(d));
  }

  // ---- the shared tick -------------------------------------------------------------

  private async sync(): Promise<void> {
    if (this.syncing || this.state === 'closed') return;
    if (!this.ready()) {
      this.state = 'reconnecting';
      return;
    }
    this.syncing = true;
    try {
      if (this.dirty) await this.pushOps();
      else await this.pullOps();
      await this.pushMetrics();
      for (const name of this.quorums.keys()) await this.pushBreaker(name);
      await this.checkQuorums();
      await this.pullRollouts();
      await this.checkClusterRollouts();
      this.lastSyncAt = Date.now();
    } catch (e) {
      this.lastError = (e as Error).message;
    } finally {
      this.syncing = false;
    }
  }

  /** What `/api/observability/cluster` (and `/summary`) report. */
  status() {
    return { backend: 'redis', instanceId: this.instanceId, state: this.state, lastError: this.lastError, lastSyncAt: this.lastSyncAt, syncMs: this.syncMs, quorumBreakers: [...this.quorums.keys()], pendingOpsPublish: this.dirty };
  }
}

let current: RedisBackend | null = null;

/** Creates (and starts) the backend; `/api/observability/cluster` and `?scope=cluster` use it. */
export function createRedisBackend(options: RedisBackendOptions): RedisBackend {
  const b = new RedisBackend(options);
  current = b;
  void b.start();
  return b;
}

/** The backend created last, or null. */
export function getRedisBackend(): RedisBackend | null {
  return current;
}
