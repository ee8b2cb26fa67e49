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
 * Keys (prefix default `rc:`): `ops:replicas` (a hash instance -> that
 * instance's ops replica document: every switch, quarantine and rollback with
 * the hybrid-logical clock of its last change; each instance merges every
 * other's, per field, in Rust, so concurrent changes all survive),
 * `ops:revs` (instance -> a digest of its document, read every tick so
 * unchanged documents are not fetched), channel `events` (change notices), `rollouts` (the last shared change of
 * each rollout: manual updates, advances, pauses, rollbacks), `metrics:<instance>` (each instance's
 * counters and HDR histograms, with a TTL: a dead instance drops out),
 * `breaker:<name>` (a hash instance -> state, for quorum breakers).
 *
 * Every value read back is checked (`redis-values.ts`, and Rust for the ops
 * documents): a malformed one is ignored and counted (`status().malformed`,
 * and a warning line at most every 30 s), and no callback of a Redis event
 * can reject unhandled.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as os from 'node:os';
import { setInterval, clearInterval } from 'node:timers';
// `Binding` names the binding's types in the emitted .d.ts (why: lib/native.ts).
import { native, type Binding } from './native';
import { QuorumAction } from '../index';
import { getCircuitBreakerRegistry } from './circuit-breaker';
import { exportLatencyHistogram, getGoldenSignals, setClusterSignalsSource } from './metrics';
import { getOps, type OpsControls } from './ops';
import { getTrafficShaping } from './traffic-shaping';
import { parseMetricsDoc, parseNotice, parseRolloutChange, parseVote, type MetricsDoc, type Vote } from './redis-values';

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
  /** Where warnings about malformed values go (default console; null silences). */
  logger?: { warn(line: string): void } | null;
}

export interface QuorumOptions {
  /** Instances that must see the dependency failing (an integer >= 1), or a share of the live ones (0..1). */
  quorum: number;
}

export type BackendState = 'connecting' | 'ready' | 'reconnecting' | 'closed';

/** Rollout events every instance applies (a `start` is each instance's own code). */
const SHARED_ROLLOUT_EVENTS = new Set(['update', 'advance', 'promote', 'rollback', 'abort', 'pause', 'resume']);

/** Where a malformed value was read (the keys of `status().malformed`). */
type MalformedSource = 'breaker' | 'metrics' | 'ops' | 'rollouts' | 'message';
/** Instances' ops documents merged at most (a bound on work per tick and on memory). */
const MAX_PEERS = 256;
/** Votes read per quorum breaker at most. */
const MAX_VOTES = 1024;
/** At most one warning line about malformed values per this many ms. */
const MALFORMED_LOG_MS = 30_000;

/** Counters that sum exactly across instances. */
interface Counts {
  requests: number;
  status4xx: number;
  status5xx: number;
  aborted: number;
}

/**
 * Shared state for several instances through Redis: ops state merged per
 * field, summed golden signals, and quorum breakers. Made by `createRedisBackend`.
 *
 *   const cluster = createRedisBackend({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' });
 *   cluster.quorumBreaker('payments', { quorum: 2 });
 */
export class RedisBackend {
  readonly instanceId: string;
  private readonly prefix: string;
  private readonly syncMs: number;
  private readonly ops: OpsControls;
  private readonly cmd: any;
  private readonly sub: any;
  private timer: NodeJS.Timeout | null = null;
  /** The ops replica document last written to Redis, and the ops version it was exported at. */
  private lastPushed = '';
  private lastPushedVersion = -1;
  /** The local document must be (re)written: a change while Redis was unreachable, or Redis restarted. */
  private dirty = true;
  /** Per other instance, the digest of its ops document last merged here. */
  private readonly seenRevs = new Map<string, string>();
  private readonly logger: { warn(line: string): void } | null;
  /** Values read from Redis and ignored as malformed, by where they were read. */
  private readonly malformed: Record<MalformedSource, number> = { breaker: 0, metrics: 0, ops: 0, rollouts: 0, message: 0 };
  private malformedTotal = 0;
  private malformedLogged = 0;
  private malformedLoggedAt = 0;
  /** Quorum breakers by name: the rule and whether the quorum opened the local breaker live in Rust (`core::quorum`). */
  private readonly quorums = new Map<string, Binding.QuorumRule>();
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
    this.ops.setReplicaId(this.instanceId);
    this.logger = options.logger === undefined ? { warn: (l) => console.warn(l) } : options.logger;
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
      c.on('error', (e: Error) => this.guard(() => (this.lastError = String((e as any)?.code ?? e?.message ?? e))));
      c.on('end', () => this.state !== 'closed' && (this.state = 'reconnecting'));
      c.on('reconnecting', () => this.state !== 'closed' && (this.state = 'reconnecting'));
    }
    this.cmd.on('ready', () =>
      this.guard(() => {
        this.state = 'ready';
        this.lastError = null;
        // Redis may have restarted empty: write this instance's document again
        // (with whatever changed meanwhile) and read every other one afresh.
        this.dirty = true;
        this.seenRevs.clear();
        return this.sync();
      }),
    );
    this.sub.on('ready', () => this.guard(() => this.sub.subscribe(`${this.prefix}events`)));
    this.sub.on('message', (_ch: string, msg: string) => this.guard(() => this.onNotice(msg)));
    // Local ops changes go out at once (and again on each tick if they failed).
    this.ops.on('action', () => this.guard(() => this.pushOps()));
    // So do rollout decisions (manual updates, automatic advances and rollbacks).
    getTrafficShaping().on('change', (e: { name: string; kind: string; toPercentage: number }) =>
      this.guard(() => {
        if (!this.applyingRemote && SHARED_ROLLOUT_EVENTS.has(e.kind)) return this.pushRollout(e.name, e.kind, e.toPercentage);
      }),
    );
  }

  /** Runs an event callback so that neither a throw nor a rejection escapes it. */
  private guard(fn: () => unknown): void {
    try {
      const p = fn() as Promise<unknown> | undefined;
      if (p && typeof p.then === 'function') p.then(undefined, (e) => this.noteError(e));
    } catch (e) {
      this.noteError(e);
    }
  }

  /** Keeps the last error for status; a key of the wrong type (a string where a hash belongs) also counts as malformed. */
  private noteError(e: unknown, where?: MalformedSource): void {
    const msg = (e as Error)?.message ?? String(e);
    this.lastError = msg;
    if (where && /WRONGTYPE/.test(msg)) this.countMalformed(where);
  }

  /** Counts values ignored as malformed; logs at most one line per 30 s (never the value: it may hold anything). */
  private countMalformed(where: MalformedSource, n = 1): void {
    this.malformed[where] += n;
    this.malformedTotal += n;
    const now = Date.now();
    if (this.logger && now - this.malformedLoggedAt >= MALFORMED_LOG_MS) {
      this.logger.warn(JSON.stringify({ ts: new Date(now).toISOString(), level: 'warn', event: 'redis.malformed', instance: this.instanceId, ignored: this.malformedTotal - this.malformedLogged, total: this.malformedTotal, byKey: { ...this.malformed } }));
      this.malformedLogged = this.malformedTotal;
      this.malformedLoggedAt = now;
    }
  }

  private onNotice(raw: string): Promise<void> | undefined {
    const m = parseNotice(raw);
    if (!m) {
      this.countMalformed('message');
      return;
    }
    if (m.by === this.instanceId) return;
    if (m.type === 'ops') return this.pullOps();
    if (m.type === 'breaker') return this.checkQuorums();
    if (m.type === 'rollout') return this.pullRollouts();
  }

  /** Connects and starts the shared sync timer. Never throws: a down Redis is retried. */
  async start(): Promise<this> {
    this.timer = setInterval(() => this.guard(() => this.sync()), this.syncMs);
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

  private get opsKeys() {
    return { docs: `${this.prefix}ops:replicas`, revs: `${this.prefix}ops:revs` };
  }

  /**
   * Writes this instance's ops document when it changed (or must be
   * rewritten) and tells the others. While Redis is down the change waits,
   * with its clock, in the local replica, and goes out on reconnect.
   */
  private async pushOps(): Promise<void> {
    const v = this.ops.version;
    if (!this.dirty && v === this.lastPushedVersion) return;
    if (!this.ready()) {
      this.dirty = true;
      return;
    }
    const doc = this.ops.exportReplica();
    if (!this.dirty && doc === this.lastPushed) {
      this.lastPushedVersion = v;
      return;
    }
    const rev = createHash('sha256').update(doc).digest('base64url').slice(0, 22);
    const { docs, revs } = this.opsKeys;
    try {
      // The document and its digest in one transaction: a reader that sees the
      // digest finds its document. Written one after the other, a Redis killed
      // between the two came back empty and the reconnect replayed only the
      // queued digest, which peers then read as a digest without a document.
      const results: Array<[Error | null, unknown]> | null = await this.cmd
        .multi()
        .hset(docs, this.instanceId, doc)
        .hset(revs, this.instanceId, rev)
        .publish(`${this.prefix}events`, JSON.stringify({ type: 'ops', by: this.instanceId }))
        .exec();
      const failed = results === null ? new Error('the ops transaction was discarded') : results.find(([e]) => e)?.[0];
      if (failed) throw failed;
      this.lastPushed = doc;
      this.lastPushedVersion = v;
      this.dirty = false;
    } catch (e) {
      this.dirty = true;
      this.noteError(e);
    }
  }

  /** Merges every other instance's ops document that changed since it was last merged here. */
  private async pullOps(): Promise<void> {
    if (!this.ready()) return;
    const { docs, revs } = this.opsKeys;
    let all: Record<string, string>;
    try {
      all = await this.cmd.hgetall(revs);
    } catch (e) {
      this.noteError(e, 'ops');
      return;
    }
    const want: string[] = [];
    for (const [peer, rev] of Object.entries(all)) {
      if (peer === this.instanceId || this.seenRevs.get(peer) === rev) continue;
      if (want.length >= MAX_PEERS) break;
      want.push(peer);
    }
    if (want.length === 0) return;
    let texts: Array<string | null>;
    try {
      texts = await this.cmd.hmget(docs, ...want);
    } catch (e) {
      this.noteError(e, 'ops');
      return;
    }
    if (this.seenRevs.size + want.length > MAX_PEERS * 2) this.seenRevs.clear();
    want.forEach((peer, i) => {
      this.seenRevs.set(peer, all[peer]);
      const text = texts[i];
      if (typeof text !== 'string') return this.countMalformed('ops');
      try {
        const r = this.ops.mergeReplica(text);
        if (r.dropped > 0) this.countMalformed('ops', r.dropped);
      } catch (e) {
        // Not a replica document at all (not JSON, another format): ignored, counted.
        this.countMalformed('ops');
        this.lastError = `ignored an invalid ops document from ${peer.slice(0, 64)}: ${(e as Error).message.slice(0, 200)}`;
      }
    });
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
    const docs = (await this.instanceDocs()).filter((d) => {
      try {
        native.metricsMergeExports([d.histograms.all, d.histograms['1m']]); // checks the encoding
        return true;
      } catch {
        this.countMalformed('metrics');
        return false;
      }
    });
    const total: Counts = { requests: 0, status4xx: 0, status5xx: 0, aborted: 0 };
    const minute = { requests: 0, status4xx: 0, status5xx: 0 };
    for (const d of docs) {
      for (const k of Object.keys(total) as Array<keyof Counts>) total[k] += d.counts[k] ?? 0;
      for (const k of Object.keys(minute) as Array<keyof typeof minute>) minute[k] += d.lastMinute[k] ?? 0;
    }
    const latencyAll = native.metricsMergeExports(docs.map((d) => d.histograms.all));
    const latency1m = native.metricsMergeExports(docs.map((d) => d.histograms['1m']));
    return {
      scope: 'cluster' as const,
      instances: docs.map((d) => ({ instance: d.instance, at: d.at, requests: d.counts.requests })),
      traffic: { totalRequests: total.requests, aborted: total.aborted, lastMinute: minute.requests, requestsPerSecond: minute.requests / 60 },
      errors: { errorRate: native.metricsErrorRate(total.status4xx, total.status5xx, total.requests), status4xx: total.status4xx, status5xx: total.status5xx, lastMinute: { status4xx: minute.status4xx, status5xx: minute.status5xx } },
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
    // Validated by the binding: a RangeError naming `quorum`.
    this.quorums.set(name, new native.QuorumRule(options?.quorum));
    const b = getCircuitBreakerRegistry().get(name);
    const publish = () => this.guard(() => this.pushBreaker(name));
    for (const ev of ['open', 'close', 'halfOpen']) b.on(ev, publish);
  }

  private localState(name: string): string {
    const q = this.quorums.get(name);
    const s = getCircuitBreakerRegistry().get(name).getState().state;
    // A breaker opened by the quorum does not count as a vote of its own (Rust says which).
    if (s !== 'open' || !q) return s;
    return q.votesOpen(true) ? 'open' : 'closed';
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
      } catch (e) {
        this.noteError(e, 'breaker');
        continue;
      }
      const fresh: Vote[] = [];
      for (const raw of Object.values(votes).slice(0, MAX_VOTES)) {
        const v = parseVote(raw);
        if (!v) this.countMalformed('breaker');
        else if (Date.now() - v.at < this.syncMs * 4) fresh.push(v);
      }
      const failing = fresh.filter((v) => v.state === 'open').length;
      const b = getCircuitBreakerRegistry().get(name);
      const action = q.decide(failing, fresh.length, b.getState().state === 'open');
      if (action === QuorumAction.Open) b.open();
      else if (action === QuorumAction.Close) b.close();
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
    } catch (e) {
      this.noteError(e, 'rollouts');
      return;
    }
    const ts = getTrafficShaping();
    for (const [name, raw] of Object.entries(all)) {
      if (!ts.has(name)) continue;
      const c = parseRolloutChange(raw, SHARED_ROLLOUT_EVENTS);
      if (!c) {
        this.countMalformed('rollouts');
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
      let requests = 0;
      let errors = 0;
      for (const d of docs) {
        requests += d.rollouts?.[name]?.requests ?? 0;
        errors += d.rollouts?.[name]?.errors ?? 0;
      }
      // The rule (autoRollback, traffic, minSamples, the limit) is the one each instance applies to itself, in Rust.
      const max = ts.clusterBreach(name, requests, errors);
      if (max !== null) {
        this.ops.rollback(name, { actor: `cluster:${this.instanceId}`, source: 'redis', reason: `cluster error rate ${(errors / requests).toFixed(4)} > ${max} over ${requests} requests on ${docs.length} instances` });
      }
    }
  }

  /** Every live instance's metrics document; malformed ones are ignored and counted. */
  private async instanceDocs(): Promise<MetricsDoc[]> {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await this.cmd.scan(cursor, 'MATCH', `${this.prefix}metrics:*`, 'COUNT', 200);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0' && keys.length < MAX_PEERS * 4);
    const raws: Array<string | null> = keys.length ? await this.cmd.mget(keys) : [];
    const docs: MetricsDoc[] = [];
    for (const raw of raws) {
      if (raw === null) continue; // expired between SCAN and MGET, or not a string key
      const d = parseMetricsDoc(raw);
      if (d) docs.push(d);
      else this.countMalformed('metrics');
    }
    return docs;
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
      // Merge the others first, then publish the result (and anything changed here or while Redis was away).
      await this.pullOps();
      await this.pushOps();
      await this.pushMetrics();
      for (const name of this.quorums.keys()) await this.pushBreaker(name);
      await this.checkQuorums();
      await this.pullRollouts();
      await this.checkClusterRollouts();
      this.lastSyncAt = Date.now();
    } catch (e) {
      this.noteError(e);
    } finally {
      this.syncing = false;
    }
  }

  /** What `/api/observability/cluster` (and `/summary`) report. */
  status() {
    return { backend: 'redis', instanceId: this.instanceId, state: this.state, lastError: this.lastError, lastSyncAt: this.lastSyncAt, syncMs: this.syncMs, quorumBreakers: [...this.quorums.keys()], pendingOpsPublish: this.dirty, malformed: { total: this.malformedTotal, ...this.malformed } };
  }
}

let current: RedisBackend | null = null;

/**
 * Creates (and starts) the backend; `/api/observability/cluster` and `?scope=cluster` use it.
 *
 *   const cluster = createRedisBackend({ url: 'redis://127.0.0.1:6379' });
 */
export function createRedisBackend(options: RedisBackendOptions): RedisBackend {
  const b = new RedisBackend(options);
  current = b;
  void b.start();
  return b;
}

/**
 * The backend created last, or null.
 *
 *   getRedisBackend()?.quorumBreaker('payments', { quorum: 2 });
 */
export function getRedisBackend(): RedisBackend | null {
  return current;
}
// getGoldenSignals({ scope: 'cluster' }) asks the backend through this.
setClusterSignalsSource(() => current?.clusterGoldenSignals() ?? null);
