'use strict';
/**
 * Histogram benchmark (issue 21 part B): recording cost and memory of the
 * package's schema-6 exponential histograms vs prom-client's Histogram, in
 * one interleaved run, reported as ratios.
 *
 *   node --expose-gc benchmark/histograms.js
 *
 * Shapes, 100 routes each:
 *   - wide:   latencies log-uniform over 100 µs .. 2 s;
 *   - narrow: latencies uniform over 1 .. 500 ms (the metrics benchmark's).
 * Record: ns per request, ours through `recordRequest` (the JS ring and the
 * Rust drain included: the drain runs on reads, so each round ends with one)
 * vs prom-client `Histogram.observe` with the same labels. Rounds alternate
 * the contenders and the starting one; medians are reported.
 * Reads: `getLatencyPercentiles('1m')` for 100 routes.
 * Memory: `getMetricsDiagnostics().histogramBytes` per series (counted
 * bytes of every structure) after 100 000 requests on 100 routes (N / 2), in real
 * time (so only the current slices are filled: the all-windows figure of a
 * series busy for 10 minutes is the Rust test
 * `a_busy_series_holds_all_windows_and_all_time_in_16_kb`), the RSS delta,
 * and prom-client's heap delta per route for the same traffic.
 * Not a test: it never fails, it prints figures next to the targets.
 */
const { performance } = require('node:perf_hooks');
const promClient = require('prom-client');
// BENCH_DIST=/path/to/dist compares another build (e.g. main's) in the same shape.
const metrics = require(process.env.BENCH_DIST ? require('node:path').resolve(process.env.BENCH_DIST, 'metrics.js') : '../dist/metrics.js');

const N_ROUTES = 100;
// --smoke: a tiny run (bench-smoke.test.js), only to keep the script working.
const SMOKE = process.argv.includes('--smoke');
const N = SMOKE ? 2_000 : 200_000; // requests per contender per round
const ROUNDS = SMOKE ? 1 : 7;

function lcg(seed) {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 4294967296;
  };
}

const SHAPES = {
  wide: (r) => 0.1 * 20_000 ** r(), // ms, log-uniform 100 µs .. 2 s
  narrow: (r) => 1 + 499 * r(), // ms, uniform 1 .. 500 ms
};

function values(shape) {
  const r = lcg(42);
  const ms = new Float64Array(N);
  const route = new Uint8Array(N);
  for (let i = 0; i < N; i++) {
    ms[i] = SHAPES[shape](r);
    route[i] = Math.floor(r() * N_ROUTES);
  }
  return { ms, route };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const r1 = (x) => Math.round(x * 10) / 10;

function bench() {
  const ids = Array.from({ length: N_ROUTES }, (_, i) => metrics.seriesIdFor('GET', `/r${i}`));
  const registry = new promClient.Registry();
  const hist = new promClient.Histogram({
    name: 'bench_duration_seconds',
    help: 'x',
    labelNames: ['method', 'route', 'status_code'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const out = {};
  for (const shape of Object.keys(SHAPES)) {
    const { ms, route } = values(shape);
    const contenders = {
      ours: () => {
        for (let i = 0; i < N; i++) metrics.recordRequest(ids[route[i]], 200, ms[i]);
        metrics.getMetricsDiagnostics(); // drains the ring into Rust
      },
      promClient: () => {
        for (let i = 0; i < N; i++) hist.observe({ method: 'GET', route: `/r${route[i]}`, status_code: '200' }, ms[i] / 1000);
      },
    };
    const keys = Object.keys(contenders);
    const samples = Object.fromEntries(keys.map((k) => [k, []]));
    for (const k of keys) contenders[k](); // warm-up
    for (let round = 0; round < ROUNDS; round++) {
      for (let j = 0; j < keys.length; j++) {
        const k = keys[(round + j) % keys.length];
        const t = performance.now();
        contenders[k]();
        samples[k].push(((performance.now() - t) * 1e6) / N);
      }
    }
    out[shape] = Object.fromEntries(keys.map((k) => [k, r1(median(samples[k]))]));
    out[shape].ratio = r1(out[shape].promClient / out[shape].ours);
  }
  // Reads over the store now holding both shapes.
  const reads = [];
  for (let i = 0; i < 200; i++) {
    const t = performance.now();
    metrics.getLatencyPercentiles('1m');
    reads.push(performance.now() - t);
  }
  out.percentiles1mMs = Math.round(median(reads) * 1000) / 1000;
  return { out, registry };
}

function memory() {
  // prom-client: heap per route for one label set each, same traffic.
  global.gc?.();
  const h0 = process.memoryUsage().heapUsed;
  const registry = new promClient.Registry();
  const hist = new promClient.Histogram({ name: 'mem_seconds', help: 'x', labelNames: ['route'], registers: [registry] });
  const r = lcg(7);
  for (let i = 0; i < N / 2; i++) hist.observe({ route: `/m${i % N_ROUTES}` }, 0.001 * 500 ** r());
  global.gc?.();
  const promPerRoute = Math.round((process.memoryUsage().heapUsed - h0) / N_ROUTES);
  // Ours: 100 fresh routes, latencies log-uniform 1..500 ms.
  const before = metrics.getMetricsDiagnostics();
  global.gc?.();
  const rss0 = process.memoryUsage().rss;
  const ids = Array.from({ length: N_ROUTES }, (_, i) => metrics.seriesIdFor('GET', `/m${i}`));
  for (let i = 0; i < N / 2; i++) metrics.recordRequest(ids[i % N_ROUTES], 200, 500 ** r());
  const d = metrics.getMetricsDiagnostics();
  global.gc?.();
  const rss1 = process.memoryUsage().rss;
  return {
    oursBytesPerSeries: Math.round((d.histogramBytes - before.histogramBytes) / N_ROUTES),
    oursRssDeltaPerRoute: Math.round((rss1 - rss0) / N_ROUTES),
    promClientHeapPerRoute: promPerRoute,
  };
}

// Memory first, on a clean heap, then the timed sections.
const mem = memory();
const { out } = bench();
console.log('histograms: 100 routes, medians of', ROUNDS, 'interleaved rounds of', N, 'requests');
for (const shape of Object.keys(SHAPES)) {
  const f = out[shape];
  console.log(`  record ${shape.padEnd(6)}: ours ${f.ours} ns, prom-client Histogram ${f.promClient} ns (x${f.ratio}; target ours <= 150 ns)`);
}
console.log(`  getLatencyPercentiles('1m') for 100 routes: ${out.percentiles1mMs} ms (target <= 0.5 ms)`);
console.log(`  memory: ours ${mem.oursBytesPerSeries} B per series (counted; target <= 16384), RSS delta ${mem.oursRssDeltaPerRoute} B per route; prom-client Histogram ${mem.promClientHeapPerRoute} B heap per route`);
const result = { record: out, memory: mem };
console.log(JSON.stringify(result));
if (!SMOKE) {
  const dir = require('node:path').join(__dirname, 'results');
  require('node:fs').mkdirSync(dir, { recursive: true });
  require('node:fs').writeFileSync(require('node:path').join(dir, 'histograms.json'), JSON.stringify(result, null, 2) + '\n');
}
if (SMOKE) {
  // The figures exist and the store saw every request it was given.
  const ok = Object.keys(SHAPES).every((k) => out[k].ours > 0 && out[k].promClient > 0) && mem.oursBytesPerSeries > 0;
  if (!ok) process.exit(1);
}
