/**
 * Raw Node process figures for the Prometheus scrape, with prom-client's
 * `collectDefaultMetrics` names (the families are built in Rust:
 * `src/core/exposition/process.rs`). This module only reads what only JS
 * can read (`process`, `v8`, `perf_hooks`) into one reused Float64Array in
 * the layout the binding gives. It runs no timer of its own: one
 * `monitorEventLoopDelay` sampler (inside Node, unref'd) and a `gc`
 * PerformanceObserver, both started on the first scrape that wants them.
 *
 *   const { values, strings } = gatherProcess();
 */
import { monitorEventLoopDelay, performance, PerformanceObserver, constants, type IntervalHistogram } from 'node:perf_hooks';
import { setImmediate } from 'node:timers';
import * as v8 from 'node:v8';
import { native } from './native';

const L = native.exProcessLayout();
// Fixed part offsets (src/core/exposition/process.rs `layout`).
const CPU_USER = 0, CPU_SYSTEM = 1, START_TIME = 2, RSS = 3, LAG = 4, LAG_STATS = 5;
const HANDLES = 12, REQUESTS = 13, HEAP_TOTAL = 14, HEAP_USED = 15, EXTERNAL = 16;

let eld: IntervalHistogram | null = null;
let gcObserver: PerformanceObserver | null = null;
/** Cumulative GC figures, in the layout's GC block. */
const gc = new Float64Array(4 * L.gcStride);
let lastLag = 0;
let lagPending = false;
const startTime = Math.round((Date.now() - performance.now()) / 1000);
let buf = new Float64Array(L.fixed + 64);

const GC_KIND: Record<number, number> = {
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 0,
  [constants.NODE_PERFORMANCE_GC_MINOR]: 1,
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 2,
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 3,
};

function start(): void {
  if (eld) return;
  eld = monitorEventLoopDelay({ resolution: 10 });
  eld.enable();
  gcObserver = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const detail = (e as unknown as { detail?: { kind?: number } }).detail;
      const k = GC_KIND[detail?.kind ?? -1];
      if (k === undefined) continue;
      const s = e.duration / 1000;
      const at = k * L.gcStride;
      const b = L.gcBuckets.findIndex((le) => s <= le);
      if (b >= 0) gc[at + b]++;
      gc[at + L.gcBuckets.length]++;
      gc[at + L.gcBuckets.length + 1] += s;
    }
  });
  gcObserver.observe({ entryTypes: ['gc'] });
}

function countTypes(list: unknown[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const h of list) {
    const t = (h as { constructor?: { name?: string } } | null)?.constructor?.name ?? 'unknown';
    m.set(t, (m.get(t) ?? 0) + 1);
  }
  return m;
}

/** The process figures and their strings, for one scrape. */
export function gatherProcess(activeTotals = false): { values: Float64Array; strings: string[] } {
  start();
  const cpu = process.cpuUsage();
  const mem = process.memoryUsage();
  const spaces = v8.getHeapSpaceStatistics();
  const p = process as unknown as { _getActiveHandles?: () => unknown[]; _getActiveRequests?: () => unknown[] };
  const handles = countTypes(p._getActiveHandles ? p._getActiveHandles() : []);
  const requests = countTypes(p._getActiveRequests ? p._getActiveRequests() : []);
  const n = L.fixed + 3 * spaces.length + handles.size + requests.size;
  if (buf.length < n) buf = new Float64Array(n * 2);
  const v = buf.subarray(0, n);
  v[CPU_USER] = cpu.user / 1e6;
  v[CPU_SYSTEM] = cpu.system / 1e6;
  v[START_TIME] = startTime;
  v[RSS] = mem.rss;
  v[LAG] = lastLag;
  const h = eld!;
  const stats = h.count === 0 ? [0, 0, 0, 0, 0, 0, 0] : [h.min, h.max, h.mean, h.stddev, h.percentile(50), h.percentile(90), h.percentile(99)];
  for (let i = 0; i < 7; i++) v[LAG_STATS + i] = stats[i] / 1e9;
  h.reset();
  // NaN leaves a family out (see process.rs).
  v[HANDLES] = activeTotals && p._getActiveHandles ? [...handles.values()].reduce((a, b) => a + b, 0) : NaN;
  v[REQUESTS] = activeTotals && p._getActiveRequests ? [...requests.values()].reduce((a, b) => a + b, 0) : NaN;
  v[HEAP_TOTAL] = mem.heapTotal;
  v[HEAP_USED] = mem.heapUsed;
  v[EXTERNAL] = mem.external;
  v.set(gc, L.gc);
  v[L.counts] = spaces.length;
  v[L.counts + 1] = handles.size;
  v[L.counts + 2] = requests.size;
  const strings = [process.version];
  let at = L.fixed;
  for (const s of spaces) {
    v[at++] = s.space_size;
    v[at++] = s.space_used_size;
    v[at++] = s.space_available_size;
    strings.push(s.space_name);
  }
  for (const [t, c] of handles) { v[at++] = c; strings.push(t); }
  for (const [t, c] of requests) { v[at++] = c; strings.push(t); }
  // As prom-client: the lag is how late a setImmediate after this scrape
  // runs, reported by the next scrape.
  if (!lagPending) {
    lagPending = true;
    const t0 = performance.now();
    setImmediate(() => {
      lastLag = (performance.now() - t0) / 1000;
      lagPending = false;
    }).unref();
  }
  return { values: v, strings };
}
