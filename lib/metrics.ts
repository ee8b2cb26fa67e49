/**
 * Golden-signal metrics: a drop-in replacement for the original
 * `server/middleware/metrics.ts` (`metricsMiddleware`, `getGoldenSignals`,
 * `getEndpointMetrics`, `resetMetrics`), backed by the Rust store in
 * `src/core/metrics/` (exponential histograms over 10 s / 1 min / 5 min windows and
 * all-time, per route template and method, cardinality-capped).
 *
 * Hot path: the middleware appends `(seriesId, status, durationUs)` to a
 * shared ring that Rust drains in batches (when full, 250 ms after its first
 * entry by one shared unref'd timer, or before any read), so a request costs
 * three typed-array writes and no crossing. Route templates are interned to
 * ids once.
 */
import { monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks';
import { setImmediate, setInterval, setTimeout } from 'node:timers';
import { gatherProcess } from './process-metrics';
import { ensureAccessors } from './express/accessors';
import { looseState, REFUSAL } from './express/route-labels';
import { endedSlot, liveSlot, track, trackedSockets, type Label, type Owner } from './express/tracker';
// `Binding` names the binding's types in the emitted .d.ts (why: lib/native.ts).
import { native, type Binding } from './native';
import { checkFile, onClock, watchFiles } from './test-runner';

// The clock in force (see ./test-runner), kept in a local for the hot path.
let now: () => number = () => performance.now();
onClock((c) => (now = c));
import { expressOf } from './express/express-of';
import type { ExpressModule, ExpressRouter } from './express/types';
import { createAccess } from './express/auth';
import { ownsPaths, tagRouter } from './express/endpoints';

const RING_CAP = native.metricsRingCap();
const ring = new Float64Array(1 + 3 * RING_CAP);
// This copy's binding, owning its ring (a thread may load this module more
// than once; every copy reads the thread's one store). Held for the module's
// life: when the module is collected, the binding's Drop detaches the ring.
const binding = new native.MetricsBinding(ring, now());
/**
 * Buffered entries are applied at the latest this long after the first of
 * them, by one shared unref'd timer armed when the ring goes from empty to
 * not empty, so that windows stay honest at low traffic without reading the
 * clock on every record.
 */
const FLUSH_MS = 250;
const UNMATCHED = 0;
const WINDOWS = ['10s', '1m', '5m', 'all'] as const;
export type WindowName = (typeof WINDOWS)[number];

let flushTimer: NodeJS.Timeout | null = null;
let inFlight = 0;
let openSockets = 0;
const seenSockets = new WeakSet<object>();
/** `METHOD route` → series id. Bounded: past the cap, lookups go to Rust (which answers `other`). */
const seriesIds = new Map<string, number>();
/** Route object of a request without a label (mocks: `req.route` and `req.baseUrl` set by hand) → [method, baseUrl, series id, ...]. */
let routeSeries = new WeakMap<object, Array<string | number>>();
/** Bumped when the store is replaced: series ids cached on route labels are then stale. */
let generation = 0;
const MAX_CACHED_KEYS = 10_000;

/**
 * Records one finished request: `seriesId` from `seriesIdFor`, HTTP
 * `status` (or -1 for a request the client aborted), duration in ms.
 * Bad values are counted by Rust under a named reason, never thrown.
 *
 *   recordRequest(seriesIdFor('GET', '/api/orders/:id'), 200, 12.5);
 */
export function recordRequest(seriesId: number, status: number, durationMs: number): void {
  push(seriesId, status, durationMs * 1000);
}

function push(id: number, status: number, durationUs: number): void {
  let n = ring[0];
  if (n >= RING_CAP) {
    native.metricsDrain(now());
    n = 0;
  }
  const o = 1 + 3 * n;
  ring[o] = id;
  ring[o + 1] = status;
  ring[o + 2] = durationUs;
  ring[0] = n + 1;
  if (flushTimer === null) {
    flushTimer = setTimeout(flush, FLUSH_MS);
    flushTimer.unref();
  }
}

function flush(): void {
  flushTimer = null;
  if (ring[0] > 0) native.metricsDrain(now());
}

/** Minimal shapes of Express's request and response, so the types need no Express install. */
export interface RequestLike {
  method: string;
  baseUrl?: string;
  route?: { path?: unknown };
  socket?: { once(event: 'close', fn: () => void): unknown } | null;
}
export interface ResponseLike {
  statusCode: number;
  writableFinished?: boolean;
  on(event: 'close', fn: () => void): unknown;
}

/**
 * The series of a method and route template (created on first use; `other` past the cap).
 *
 *   const id = seriesIdFor('GET', '/api/orders/:id');
 */
export function seriesIdFor(method: string, route: string): number {
  const key = `${method} ${route}`;
  let id = seriesIds.get(key);
  if (id === undefined) {
    if (typeof method !== 'string' || typeof route !== 'string') {
      throw new TypeError(`method and route must be strings, got ${typeof method} and ${typeof route}`);
    }
    id = binding.intern(method, route);
    if (seriesIds.size < MAX_CACHED_KEYS) seriesIds.set(key, id);
  }
  return id;
}

/**
 * The series of a request: its route label (the full template, taken when
 * Express matched the route: see express/route-labels.ts) and method.
 * Requests no route matched share the `unmatched` series, so raw paths
 * never become keys; a refused one has a label (the route it would have
 * reached, or `refused`) and keeps its method.
 */
function seriesOf(req: RequestLike, label: Label | null): number {
  if (label !== null) return seriesOfLabel(label, req.method);
  // A request with `req.route` as its own property (a mock, or a request on
  // a prototype without the accessor): its route and baseUrl, as they are now.
  if (!Object.prototype.hasOwnProperty.call(req, 'route')) return UNMATCHED;
  return seriesOfRoute(req);
}

/** A label's series for `method`, cached on the label (a few methods each). */
function seriesOfLabel(l: Label, method: string): number {
  const c = l.ids;
  if (l.gen !== generation) {
    c.length = 0;
    l.gen = generation;
  }
  for (let i = 0; i < c.length; i += 2) if (c[i] === method) return c[i + 1] as number;
  const id = seriesIdFor(method, l.template);
  if (c.length < 2 * 8) c.push(method, id);
  return id;
}

/** The mount path plus the route's path (`/api/agents` + `/:id`), cached per route object. */
function seriesOfRoute(req: RequestLike): number {
  const r = req.route;
  if (!r || typeof r !== 'object') return UNMATCHED;
  const base = req.baseUrl || '';
  const method = req.method;
  let c = routeSeries.get(r);
  if (c !== undefined) {
    for (let i = 0; i < c.length; i += 3) if (c[i] === method && c[i + 1] === base) return c[i + 2] as number;
  }
  const path = typeof r.path === 'string' ? r.path : String(r.path);
  const id = seriesIdFor(method, base && path === '/' ? base : base + path);
  if (c === undefined) routeSeries.set(r, (c = []));
  // A route seen under many mount paths or methods: cache the first few only.
  if (c.length < 3 * 8) c.push(method, base, id);
  return id;
}

function onSocketClose(): void {
  openSockets--;
}

let eld: IntervalHistogram | null = null;
function startEventLoopMonitor(): void {
  if (eld) return;
  // One sampling timer for the process, inside Node (unref'd); started on first use.
  eld = monitorEventLoopDelay({ resolution: 10 });
  eld.enable();
}

/**
 * Express middleware: counts every request by route template and method
 * when its response finishes (or as aborted when the client goes away
 * first), with its status and latency, and keeps the in-flight and
 * open-socket gauges. Mount it before your routes: `app.use(metricsMiddleware)`.
 *
 *   app.use(metricsMiddleware);
 */
export function metricsMiddleware(req: RequestLike, res: ResponseLike, next: (err?: unknown) => void): void {
  const t0 = now();
  // `req.route` as an accessor, so the route's full template is taken when Express matches it.
  ensureAccessors(req);
  // Node HTTP/1 requests are ended by the tracker (no listener, nothing
  // stored on req or res: see express/tracker.ts); anything else by a
  // `close` listener.
  if (track(req, res, metricsOwner, t0) !== null) beginRequest(req, true);
  else {
    // Tracked already by a layer mounted before this one: when that layer
    // counts golden signals (reliabilityStack with metrics on), counting the
    // request here too would count it twice.
    const live = liveSlot(req);
    if (live !== null && live.owner!.metrics === true) return next();
    beginRequest(req, live !== null);
    res.on('close', () => endRequest(req, res, t0));
  }
  next();
}

const metricsOwner: Owner = {
  metrics: true,
  end(req, status, ms, _data, label, refused) {
    finishRequest(req as RequestLike, status, ms, label, refused);
  },
};

/**
 * @internal The two halves of `metricsMiddleware`, for `reliabilityStack`,
 * which does metrics, ops and shaping in one layer: counts a request in
 * flight (the caller reads the clock once for every layer). A request the
 * tracker follows has its socket counted there (once per connection, not a
 * lookup per request); any other has it counted here.
 */
export function beginRequest(req: RequestLike, tracked: boolean): void {
  // vitest without isolation: a request may be the new file's first call.
  if (watchFiles) checkFile();
  inFlight++;
  if (!tracked) {
    const sock = req.socket;
    if (sock && !seenSockets.has(sock)) {
      seenSockets.add(sock);
      openSockets++;
      sock.once('close', onSocketClose);
    }
  }
  if (!eld) startEventLoopMonitor();
}

/** @internal Records the finished (or aborted) request; returns its duration in ms. */
export function endRequest(req: RequestLike, res: ResponseLike, t0: number): number {
  const ms = now() - t0;
  finishRequest(req, res.writableFinished === false ? -1 : res.statusCode, ms);
  return ms;
}

/**
 * @internal Records a request that ended with `status` (-1: aborted) after
 * `ms`, under `label` and refused for `refused` (0: not refused), as the
 * tracker's record has them; without them (the listener path), as the
 * route accessor kept them for the request.
 */
export function finishRequest(req: RequestLike, status: number, ms: number, label?: Label | null, refused = 0): void {
  inFlight--;
  if (label === undefined || label === null) {
    // A listener's end (this layer rides on a record another layer owns, or
    // the tracker does not follow the request): the label is in that record,
    // live or just ended, or kept by the route accessor.
    const l = label === undefined ? liveSlot(req) ?? endedSlot(req) ?? looseState(req) : looseState(req);
    if (l != null) {
      label = l.label;
      refused = l.refused;
    }
  }
  const id = seriesOf(req, label ?? null);
  push(id, refused > 0 && status >= 0 ? status + REFUSAL.stride * refused : status, ms * 1000);
}

export interface MetricsOptions {
  /** Series (method × route) before overflow goes to `other` (default 1000). */
  maxSeries?: number;
  /** Prometheus `http_request_duration_seconds` bucket bounds in seconds. */
  buckets?: number[];
  /** Memory for window histograms before new series get all-time figures only (default 64 MiB). */
  maxWindowBytes?: number;
}

/**
 * Sets the store's options. Call before the first request is recorded.
 *
 *   configureMetrics({ maxSeries: 2000 });
 */
export function configureMetrics(options: MetricsOptions): void {
  binding.configure(options, now());
  seriesIds.clear();
  routeSeries = new WeakMap();
  generation++;
}

// ---- reads --------------------------------------------------------------------

type NativeWindow = ReturnType<Binding.MetricsBinding['windows']>[number];

const queueDepthSources = new Map<string, () => number>();

/**
 * Registers a queue whose depth counts in `saturation.queueDepth` (the
 * original hard-coded 0). Returns a function that unregisters it.
 *
 *   const stop = registerQueueDepth('emails', () => queue.length);
 */
export function registerQueueDepth(name: string, depth: () => number): () => void {
  if (typeof depth !== 'function') throw new TypeError(`depth must be a function, got ${typeof depth}`);
  queueDepthSources.set(name, depth);
  return () => queueDepthSources.delete(name);
}

function queueDepth(): { total: number; queues: Record<string, number> } {
  const queues: Record<string, number> = {};
  let total = 0;
  for (const [name, f] of queueDepthSources) {
    let v = 0;
    try {
      v = Number(f()) || 0;
    } catch {
      v = 0;
    }
    queues[name] = v;
    total += v;
  }
  return { total, queues };
}

/**
 * CPU percent and event-loop utilisation are rates over a period. One shared
 * unref'd timer closes a period every SAMPLE_MS, and a read reports the last
 * closed one (or, before the first closes, the time since this module
 * loaded), so reading never moves the baseline: two readers (a dashboard and
 * a scraper) see the same figures, whatever their order or rate.
 */
const SAMPLE_MS = 1000;
let cpuBase = { at: performance.now(), usage: process.cpuUsage(), elu: performance.eventLoopUtilization() };
let cpuClosed: { cpuPercent: number; elu: number } | null = null;
let cpuSampler: NodeJS.Timeout | null = null;

function cpuSince(base: typeof cpuBase, t: number): { cpuPercent: number; elu: number } {
  const d = process.cpuUsage(base.usage);
  const wall = (t - base.at) * 1000;
  return { cpuPercent: wall > 0 ? ((d.user + d.system) / wall) * 100 : 0, elu: performance.eventLoopUtilization(base.elu).utilization };
}

function closeCpuPeriod(): void {
  const t = performance.now();
  cpuClosed = cpuSince(cpuBase, t);
  cpuBase = { at: t, usage: process.cpuUsage(), elu: performance.eventLoopUtilization() };
}

function startCpuSampler(): void {
  if (cpuSampler !== null) return;
  cpuSampler = setInterval(closeCpuPeriod, SAMPLE_MS);
  cpuSampler.unref();
}

function byWindow<T>(ws: NativeWindow[], f: (w: NativeWindow) => T): Record<WindowName, T> {
  const out = {} as Record<WindowName, T>;
  ws.forEach((w, i) => (out[WINDOWS[i]] = f(w)));
  return out;
}

const latencyOf = (w: NativeWindow) => ({ ...w.latency });

/**
 * The four golden signals, in the original's shape (`traffic`, `errors`,
 * `latency`, `saturation`, each with the same `timestamp`) with the
 * original's hard-coded zeros made real and per-window figures beside them.
 * Latencies are milliseconds.
 *
 *   const { traffic, errors, latency, saturation } = getGoldenSignals();
 */
export function getGoldenSignals(): LocalGoldenSignals;
/** Every instance's figures through the Redis backend (`createRedisBackend`): counters summed, histograms merged. */
export function getGoldenSignals(options: { scope: 'cluster' }): Promise<unknown>;
export function getGoldenSignals(options?: { scope?: 'local' | 'cluster' }): LocalGoldenSignals | Promise<unknown> {
  if (options?.scope === 'cluster') {
    const p = clusterSignals();
    return p ?? Promise.reject(new Error("scope 'cluster' needs a Redis backend (createRedisBackend)"));
  }
  return localGoldenSignals();
}

export type LocalGoldenSignals = ReturnType<typeof localGoldenSignals>;

/** Every instance's figures, or null without a cluster backend. Installed by `redis.ts` when it loads (integrations sit above this module). */
let clusterSignals: () => Promise<unknown> | null = () => null;

/** @internal Called by `redis.ts` at load. */
export function setClusterSignalsSource(f: () => Promise<unknown> | null): void {
  clusterSignals = f;
}

/** The nine latency figures of a flat table row from `at` on (the order of `SgLatency::row` in src/metrics_napi.rs). */
function latencyAt(v: Float64Array, at: number): Binding.SgLatency {
  return { count: v[at], min: v[at + 1], max: v[at + 2], mean: v[at + 3], p50: v[at + 4], p90: v[at + 5], p95: v[at + 6], p99: v[at + 7], p999: v[at + 8] };
}

/**
 * The figures of the four windows (`WINDOWS`, in Rust's `Window::ALL` order) pooled over `ids`, or
 * over every series when null: `binding.windows`' objects, built here from
 * one flat array (napi would cross once per property: see `windowTable`
 * in src/metrics_napi.rs).
 */
function windowsOf(ids: number[] | null, t: number): Binding.SgWindow[] {
  const v = binding.windowTable(ids, t);
  const n = WINDOWS.length;
  const row = v.length / n;
  const out: Binding.SgWindow[] = new Array(n);
  for (let i = 0, o = 0; i < n; i++, o += row) {
    out[i] = {
      window: WINDOWS[i],
      requests: v[o],
      status4xx: v[o + 1],
      status5xx: v[o + 2],
      aborted: v[o + 3],
      errorRate: v[o + 4],
      serverErrorRate: v[o + 5],
      requestsPerSecond: v[o + 6],
      spanSeconds: v[o + 7],
      latency: latencyAt(v, o + 8),
    };
  }
  return out;
}

function localGoldenSignals() {
  const t = now();
  const timestamp = Date.now();
  const ws = windowsOf(null, t);
  const [, oneMin, , all] = ws;
  const cpu = process.cpuUsage();
  startCpuSampler();
  // CPU is real time, whatever clock the figures run on (a test may inject one).
  const { cpuPercent, elu } = cpuClosed ?? cpuSince(cpuBase, performance.now());
  const q = queueDepth();
  if (!eld) startEventLoopMonitor();
  const delay = eld!;
  return {
    traffic: {
      // The original's figure: requests finished in the last minute / 60.
      requestsPerSecond: oneMin.requests / 60,
      activeConnections: inFlight,
      openSockets: openSockets + trackedSockets(),
      totalRequests: all.requests,
      aborted: all.aborted,
      windows: byWindow(ws, (w) => ({ requests: w.requests, requestsPerSecond: w.requestsPerSecond, aborted: w.aborted, spanSeconds: w.spanSeconds })),
      timestamp,
    },
    errors: {
      errorRate: all.errorRate,
      status4xx: all.status4xx,
      status5xx: all.status5xx,
      windows: byWindow(ws, (w) => ({ errorRate: w.errorRate, serverErrorRate: w.serverErrorRate, status4xx: w.status4xx, status5xx: w.status5xx })),
      timestamp,
    },
    latency: {
      p50: all.latency.p50,
      p95: all.latency.p95,
      p99: all.latency.p99,
      p90: all.latency.p90,
      p999: all.latency.p999,
      max: all.latency.max,
      mean: all.latency.mean,
      windows: byWindow(ws, latencyOf),
      timestamp,
    },
    saturation: {
      cpu,
      cpuPercent,
      memory: process.memoryUsage(),
      queueDepth: q.total,
      queues: q.queues,
      activeConnections: inFlight,
      openSockets: openSockets + trackedSockets(),
      // Milliseconds; zeros until the monitor has its first sample.
      eventLoopDelay: delay.count === 0
        ? { mean: 0, p50: 0, p99: 0, max: 0 }
        : { mean: nsToMs(delay.mean), p50: nsToMs(delay.percentile(50)), p99: nsToMs(delay.percentile(99)), max: nsToMs(delay.max) },
      eventLoopUtilization: elu,
      timestamp,
    },
  };
}

function nsToMs(ns: number): number {
  return Number.isFinite(ns) ? ns / 1e6 : 0;
}

/** Ids for `'GET /api/x/:id'` (one series) or `'/api/x/:id'` (every method of the route). */
function idsOf(endpoint: string): number[] {
  if (typeof endpoint !== 'string') throw new TypeError(`endpoint must be a string, got ${typeof endpoint}`);
  const m = /^([A-Z]+|\*) (.+)$/.exec(endpoint);
  if (m) {
    const id = binding.lookup(m[1], m[2]);
    return id == null ? [] : [id];
  }
  return binding.idsForRoute(endpoint);
}

/**
 * One endpoint's figures in the original's shape `{ count, errorRate,
 * status4xx, status5xx, p50, p95, p99 }` (plus per-window figures), or
 * `null` when it is unknown or has no requests. `endpoint` is a route
 * template (`'/api/agents/:id'`, every method) or `'GET /api/agents/:id'`;
 * `'unmatched'` and `'other'` name the two shared series.
 *
 *   getEndpointMetrics('GET /api/orders/:id');
 */
export function getEndpointMetrics(endpoint: string) {
  const ids = idsOf(endpoint);
  if (ids.length === 0) return null;
  const ws = windowsOf(ids, now());
  const all = ws[3];
  // As the original: null when nothing finished; an endpoint with only aborted requests still shows.
  if (all.requests === 0 && all.aborted === 0) return null;
  return {
    count: all.requests,
    errorRate: all.errorRate,
    status4xx: all.status4xx,
    status5xx: all.status5xx,
    p50: all.latency.p50,
    p95: all.latency.p95,
    p99: all.latency.p99,
    aborted: all.aborted,
    latency: latencyOf(all),
    windows: byWindow(ws, (w) => ({ requests: w.requests, requestsPerSecond: w.requestsPerSecond, errorRate: w.errorRate, latency: latencyOf(w) })),
  };
}

/**
 * Every route with traffic: `[{ method, route, ...figures }]`, for dashboards.
 *
 *   for (const e of getAllEndpointMetrics()) console.log(e.method, e.route, e.windows['1m'].latency.p99);
 */
export function getAllEndpointMetrics() {
  const t = now();
  return binding.series(t).map((s) => {
    const ws = windowsOf([s.id], t);
    return { method: s.method, route: s.route, windows: byWindow(ws, (w) => ({ ...w, latency: latencyOf(w) })) };
  });
}

/**
 * Latency (ms: count, min, max, mean, p50, p90, p95, p99, p999) and request
 * count of every route with traffic over one window, in one call into Rust.
 *
 *   for (const { method, route, latency } of getLatencyPercentiles('5m')) console.log(method, route, latency.p99);
 */
export function getLatencyPercentiles(window: WindowName = '1m'): Binding.SgSeriesLatency[] {
  if (typeof window !== 'string') throw new TypeError(`window must be one of ${WINDOWS.join(', ')}, got ${typeof window}`);
  // Flat from Rust, objects built here: napi would set every property with
  // its own crossing (see `latencyTable` in src/metrics_napi.rs).
  const { labels, values: v } = binding.latencyTable(window, now());
  const n = labels.length >> 1;
  const row = n > 0 ? v.length / n : 0;
  const out: Binding.SgSeriesLatency[] = new Array(n);
  for (let i = 0, o = 0; i < n; i++, o += row) {
    out[i] = {
      method: labels[2 * i],
      route: labels[2 * i + 1],
      requests: v[o],
      latency: latencyAt(v, o + 1),
    };
  }
  return out;
}

/**
 * Requests refused by safe mode, brownout, quarantine or a rollout, all
 * time: `[{ method, route, reason, count }]`, `route` being the template of
 * the route the request would have reached, or `refused` when none would
 * have matched (as in `http_requests_refused_total`).
 *
 *   const refused = getRefusedRequests(); // by reason: safe mode, brownout, ...
 */
export function getRefusedRequests() {
  return binding.refused(now());
}

/**
 * Clears every figure.
 *
 *   afterEach(() => resetMetrics());
 */
export function resetMetrics(): void {
  binding.reset(now());
}

export interface PrometheusOptions {
  /**
   * Expose the Node process families with prom-client's
   * `collectDefaultMetrics` names (default true). Turn off when prom-client
   * already collects them in the same `/metrics` (see `registerWith`).
   */
  processMetrics?: boolean;
  /** Prefix of the process families' names, as prom-client's `prefix` (default none). */
  prefix?: string;
  /**
   * Also expose prom-client's `nodejs_active_handles_total` and
   * `nodejs_active_requests_total` (default false): gauges whose `_total`
   * suffix `promtool check metrics` warns about. `sum(nodejs_active_handles)`
   * gives the same figure.
   */
  activeTotals?: boolean;
}

let promOptions: Required<PrometheusOptions> = { processMetrics: true, prefix: '', activeTotals: false };

/**
 * Settings of the Prometheus exposition; bad values throw naming the field.
 *
 *   configurePrometheus({ prefix: 'app_' });
 */
export function configurePrometheus(options: PrometheusOptions = {}): void {
  if (options === null || typeof options !== 'object') throw new TypeError(`options must be an object, got ${options === null ? 'null' : typeof options}`);
  const processMetrics = options.processMetrics ?? true;
  if (typeof processMetrics !== 'boolean') throw new TypeError(`processMetrics must be a boolean, got ${typeof processMetrics}`);
  const prefix = options.prefix ?? '';
  if (typeof prefix !== 'string') throw new TypeError(`prefix must be a string, got ${typeof prefix}`);
  const activeTotals = options.activeTotals ?? false;
  if (typeof activeTotals !== 'boolean') throw new TypeError(`activeTotals must be a boolean, got ${typeof activeTotals}`);
  // The rule for a prefix lives in Rust: a trial scrape throws RangeError naming `prefix`.
  const { values, strings } = gatherProcess(activeTotals);
  native.exFamiliesJson(0, values, strings, prefix, now());
  promOptions = { processMetrics, prefix, activeTotals };
}

function processArgs(processMetrics = promOptions.processMetrics): [Float64Array | null, string[] | null] {
  if (!processMetrics) return [null, null];
  const { values, strings } = gatherProcess(promOptions.activeTotals);
  return [values, strings];
}

/**
 * Every family the package has (HTTP, breakers, rollouts, health gates,
 * ops, watchdogs, Node process) in the format an `Accept` header asks for:
 * OpenMetrics 1.0 when it accepts `application/openmetrics-text`, else
 * Prometheus text 0.0.4 (protobuf with native histograms when preferred).
 * One call into Rust.
 *
 *   const { contentType, body } = scrapeMetrics(req.headers.accept);
 *   res.setHeader('Content-Type', contentType).end(body);
 */
export function scrapeMetrics(accept = ''): { contentType: string; body: string | Buffer } {
  const [values, strings] = processArgs();
  const r = native.exScrape(typeof accept === 'string' ? accept : '', inFlight, values, strings, promOptions.prefix, now());
  return { contentType: r.contentType, body: r.body ?? (r.bytes as Buffer) };
}

/**
 * The exposition a scraper asked for with its `Accept` header (the same as
 * `scrapeMetrics`): Prometheus protobuf with native histograms when it
 * prefers it, as Prometheus does with native histograms enabled;
 * OpenMetrics or Prometheus text otherwise.
 *
 *   const { contentType, body } = getPrometheusExposition(req.headers.accept);
 */
export function getPrometheusExposition(accept?: string): { contentType: string; body: string | Buffer } {
  return scrapeMetrics(accept);
}

/**
 * Prometheus text exposition format 0.0.4 of every family.
 *
 *   res.type('text/plain').send(getPrometheusMetrics());
 */
export function getPrometheusMetrics(): string {
  return scrapeMetrics('').body as string;
}

/** The subset of prom-client's `Registry` that `registerWith` uses. */
export interface PromClientRegistryLike {
  registerMetric(metric: unknown): void;
  getSingleMetric(name: string): unknown;
}

/**
 * Adds this package's families to a prom-client `Registry`, so one
 * `/metrics` (prom-client's `registry.metrics()`) serves both. Each family
 * becomes one prom-client metric object whose `get()` reads the package's
 * figures at scrape time (one call into Rust per scrape, shared by all of
 * them). A family whose name the registry already has is left to the
 * registry; with `processMetrics: false` (the default here, as a
 * prom-client user usually runs `collectDefaultMetrics`) the process
 * families are left out. Returns the names added.
 *
 *   const client = require('prom-client');
 *   client.collectDefaultMetrics();
 *   registerWith(client.register);
 */
export function registerWith(registry: PromClientRegistryLike, options: { processMetrics?: boolean } = {}): string[] {
  if (!registry || typeof registry.registerMetric !== 'function' || typeof registry.getSingleMetric !== 'function') {
    throw new TypeError('registry must be a prom-client Registry (with registerMetric and getSingleMetric)');
  }
  const processMetrics = options.processMetrics ?? false;
  if (typeof processMetrics !== 'boolean') throw new TypeError(`processMetrics must be a boolean, got ${typeof processMetrics}`);
  type Fam = { name: string; help: string; type: string; values: unknown[] };
  let cache: { at: number; byName: Map<string, Fam> } | null = null;
  const read = (): Map<string, Fam> => {
    // One crossing per scrape: prom-client calls every get() in one tick.
    const t = now();
    if (!cache || t - cache.at > 50) {
      const [values, strings] = processArgs(processMetrics);
      const fams = JSON.parse(native.exFamiliesJson(inFlight, values, strings, promOptions.prefix, t)) as Fam[];
      cache = { at: t, byName: new Map(fams.map((f) => [f.name, f])) };
      setImmediate(() => { cache = null; }).unref();
    }
    return cache.byName;
  };
  const added: string[] = [];
  for (const f of read().values()) {
    if (registry.getSingleMetric(f.name)) continue;
    const name = f.name;
    registry.registerMetric({
      name,
      help: f.help,
      type: f.type,
      aggregator: 'sum',
      get: async () => {
        const fam = read().get(name);
        return { name, help: f.help, type: f.type, aggregator: 'sum', values: fam ? fam.values : [] };
      },
      reset: () => {},
    });
    added.push(name);
  }
  return added;
}

/**
 * A latency histogram in HDR's compressed base64 interchange format, for
 * one endpoint (`'GET /route'`) or every request (no endpoint); histograms
 * from several processes merge exactly.
 *
 *   const text = exportLatencyHistogram('GET /api/orders/:id', '5m');
 */
export function exportLatencyHistogram(endpoint?: string, window: WindowName = 'all'): string {
  let id: number | null = null;
  if (endpoint !== undefined) {
    const ids = idsOf(endpoint);
    if (ids.length !== 1) throw new RangeError(`endpoint must name one series ('GET /route'), got '${endpoint}' (${ids.length} series)`);
    id = ids[0];
  }
  return binding.export(id, window, now());
}

/**
 * Counted reasons for input that was not recorded, and store figures.
 *
 *   console.log(getMetricsDiagnostics());
 */
export function getMetricsDiagnostics() {
  return binding.diagnostics(now());
}

// ---- HTTP -----------------------------------------------------------------------

export interface MetricsRouterOptions {
  /** The app's `express` module, where the package cannot find it (default: found from the app). */
  express?: ExpressModule;
  /** Path of the golden-signals JSON (default `/api/observability/golden-signals`). */
  goldenSignalsPath?: string;
  /** Path of the Prometheus text (default `/metrics`). */
  prometheusPath?: string;
  /**
   * Return false to answer 403. Without it both endpoints follow the one
   * read guard (`configureReadAccess`, `RELIABILITY_READ_TOKEN`), as every
   * router's read endpoints do; Prometheus then sends the token
   * (`authorization: { credentials: ... }` in its scrape config).
   */
  authorize?: (req: unknown) => boolean;
  /** A read token for both endpoints (default: as every router). */
  readToken?: string;
}

type Handler = (req: any, res: any) => void;

/**
 * `GET` handler for the metrics: the format is negotiated from `Accept`
 * (Prometheus protobuf with native histograms, OpenMetrics 1.0 text or
 * Prometheus text 0.0.4).
 *
 *   app.get('/metrics', prometheusHandler);
 */
export const prometheusHandler: Handler = (req, res) => {
  const accept: unknown = req && req.headers ? req.headers.accept : '';
  const out = scrapeMetrics(Array.isArray(accept) ? accept.join(',') : typeof accept === 'string' ? accept : '');
  res.setHeader('Content-Type', out.contentType);
  res.setHeader('Vary', 'Accept');
  res.end(out.body);
};

/**
 * `GET` handler for the golden signals JSON.
 *
 *   app.get('/api/observability/golden-signals', goldenSignalsHandler);
 */
export const goldenSignalsHandler: Handler = (_req, res) => {
  try {
    res.json(getGoldenSignals());
  } catch (e) {
    res.status(500).json({ error: 'Failed to get golden signals', message: (e as Error).message });
  }
};

/**
 * An Express router with `GET /api/observability/golden-signals` and
 * `GET /metrics` (paths configurable). Needs `express` installed (a peer
 * dependency).
 *
 *   app.use(createMetricsRouter()); // /metrics, /api/observability/golden-signals
 */
export function createMetricsRouter(options: MetricsRouterOptions = {}): ExpressRouter {
  // Loaded here so that the rest of the module works without Express.
  const express = expressOf(options.express, 'createMetricsRouter');
  const router = express.Router();
  const guard = createAccess({ readToken: options.readToken, authorize: options.authorize }).read;
  const gs = options.goldenSignalsPath ?? '/api/observability/golden-signals';
  const prom = options.prometheusPath ?? '/metrics';
  router.get(gs, guard, goldenSignalsHandler);
  router.get(prom, guard, prometheusHandler);
  // The package's endpoints (never shed by a control), wherever this router is mounted.
  return tagRouter(router, ownsPaths([gs, prom]));
}

/** @internal Requests begun and not yet finished (for `drained()` in `./testing`). */
export function requestsInFlight(): number {
  return inFlight;
}

/** @internal Applies every buffered request now (reads do it themselves). */
export function flushMetrics(): void {
  flush();
}
