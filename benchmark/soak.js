// @ts-check
'use strict';
/**
 * Soak: 2,000,000 requests through the full stack (metrics, reliability
 * middleware, traffic shaping, breakers) over 1,000 distinct routes, each
 * with its own breaker (1,000 breakers), from a keep-alive client in this
 * process against the server in a child process. RSS and heap are sampled
 * every 5 s; after the warm-up the growth must stay under 10 MB. At the end
 * the server is asked which handles are still open, then stopped: it must
 * exit by itself on SIGTERM.
 *
 *   npm run bench:soak               (a few minutes)
 *   node benchmark/soak.js --smoke   (20,000 requests, 1 s samples: run by the tests)
 *
 * Writes benchmark/results/soak.json.
 */
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { startServer, ask, stop } = require('./harness');

const SMOKE = process.argv.includes('--smoke') || process.env.BENCH_SMOKE === '1';
const TOTAL = SMOKE ? 20_000 : 2_000_000;
const ROUTES = 1000;
const CONNECTIONS = 50;
const SAMPLE_MS = SMOKE ? 1000 : 5000;
const WARMUP_SHARE = 0.2;
/**
 * The metrics store allocates a window slice the first time a series records
 * into it, so it grows until the longest window (5 min) has turned over once
 * (see src/core/metrics/store.rs, "Memory"). Samples from then on show whether
 * anything else still grows.
 */
const WINDOWS_FULL_S = 310;
const trough = (xs, k) => Math.min(...xs.map((x) => x[k]));

async function main() {
  const s = await startServer('ours', { SOAK_ROUTES: String(ROUTES) });
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  const t0 = Date.now();
  let sent = 0;
  let done = 0;
  let non200 = 0;
  const samples = [];
  const sampler = setInterval(async () => {
    const { mem, handles, metricsBytes } = await ask(s.child, 'cpu');
    const metricsMB = metricsBytes / 1048576;
    samples.push({ t: (Date.now() - t0) / 1000, done, rssMB: mem.rss / 1048576, heapMB: mem.heapUsed / 1048576, externalMB: mem.external / 1048576, metricsMB, handles });
    console.log(`  ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s  ${String(done).padStart(8)} requests  rss ${(mem.rss / 1048576).toFixed(1)} MB  heap ${(mem.heapUsed / 1048576).toFixed(1)} MB  metrics store ${metricsMB.toFixed(1)} MB`);
  }, SAMPLE_MS);
  const one = (i) =>
    new Promise((resolve) => {
      const k = i % ROUTES;
      const req = http.get({ host: '127.0.0.1', port: s.port, path: `/api/r/${k}/${i % 997}`, headers: { 'x-user-id': `u${i % 5000}` }, agent }, (res) => {
        if (res.statusCode !== 200) non200++;
        res.resume();
        res.on('end', () => {
          done++;
          resolve();
        });
      });
      req.on('error', () => {
        non200++;
        resolve();
      });
    });
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (sent < TOTAL) await one(sent++);
    }),
  );
  clearInterval(sampler);
  const end = await ask(s.child, 'cpu');
  samples.push({ t: (Date.now() - t0) / 1000, done, rssMB: end.mem.rss / 1048576, heapMB: end.mem.heapUsed / 1048576, externalMB: end.mem.external / 1048576, metricsMB: end.metricsBytes / 1048576, handles: end.handles });
  agent.destroy();
  const exitStart = Date.now();
  const exited = await stop(s.child);
  const after = samples.filter((x) => x.done >= TOTAL * WARMUP_SHARE);
  const base = after[0] ?? samples[0];
  const last = samples.at(-1);
  const result = {
    when: new Date().toISOString(),
    node: process.version,
    cpu: `${os.cpus().length} × ${os.cpus()[0].model}`,
    requests: done,
    routes: ROUTES,
    breakers: ROUTES + 1,
    non200,
    seconds: (Date.now() - t0) / 1000,
    rssGrowthAfterWarmupMB: last.rssMB - base.rssMB,
    heapGrowthAfterWarmupMB: last.heapMB - base.heapMB,
    // RSS and heap swing with GC cycles: the lowest sample of the first and
    // last fifth after warm-up compares troughs, which single samples do not.
    rssTroughGrowthAfterWarmupMB: trough(after.slice(-Math.max(1, Math.floor(after.length / 5))), 'rssMB') - trough(after.slice(0, Math.max(1, Math.floor(after.length / 5))), 'rssMB'),
    metricsStoreGrowthAfterWarmupMB: last.metricsMB - base.metricsMB,
    // What is left when the metrics store's own growth is taken out: its
    // histograms widen, within their documented bound, as longer latencies
    // arrive (src/core/metrics/windows.rs, "Memory"); a leak would show here.
    rssGrowthOutsideStoreAfterWarmupMB: last.rssMB - base.rssMB - (last.metricsMB - base.metricsMB),
    afterWindowsFull: afterWindowsFull(samples),
    exitedOnSigterm: exited,
    exitMs: Date.now() - exitStart,
    samples,
  };
  console.log(`\nSoak: ${done} requests over ${ROUTES} routes and ${ROUTES + 1} breakers in ${result.seconds.toFixed(0)} s (${non200} not 200)`);
  console.log(`  after warm-up: RSS ${result.rssGrowthAfterWarmupMB >= 0 ? '+' : ''}${result.rssGrowthAfterWarmupMB.toFixed(1)} MB, heap ${result.heapGrowthAfterWarmupMB >= 0 ? '+' : ''}${result.heapGrowthAfterWarmupMB.toFixed(1)} MB (target: under 10 MB)`);
  console.log(`  RSS troughs (lowest sample of the first and last fifth after warm-up): ${result.rssTroughGrowthAfterWarmupMB >= 0 ? '+' : ''}${result.rssTroughGrowthAfterWarmupMB.toFixed(1)} MB; the metrics store (bounded by maxWindowBytes) grew ${result.metricsStoreGrowthAfterWarmupMB.toFixed(1)} MB to ${last.metricsMB.toFixed(1)} MB`);
  const ex = result.rssGrowthOutsideStoreAfterWarmupMB;
  console.log(`  RSS outside the metrics store after warm-up: ${ex >= 0 ? '+' : ''}${ex.toFixed(1)} MB (the store widens its histograms as longer latencies arrive, up to 443,520 bytes per series)`);
  const f = result.afterWindowsFull;
  if (f) {
    console.log(
      `  once every window had turned over (${f.fromS.toFixed(0)}-${f.toS.toFixed(0)} s, ${f.requests} requests): RSS ${f.rssGrowthMB >= 0 ? '+' : ''}${f.rssGrowthMB.toFixed(1)} MB (troughs ${f.rssTroughGrowthMB >= 0 ? '+' : ''}${f.rssTroughGrowthMB.toFixed(1)}), heap ${f.heapGrowthMB >= 0 ? '+' : ''}${f.heapGrowthMB.toFixed(1)} MB, metrics store ${f.metricsStoreGrowthMB >= 0 ? '+' : ''}${f.metricsStoreGrowthMB.toFixed(1)} MB, RSS outside the store ${f.rssGrowthOutsideStoreMB >= 0 ? '+' : ''}${f.rssGrowthOutsideStoreMB.toFixed(1)} MB`,
    );
  } else console.log(`  the run ended before every window had turned over (${WINDOWS_FULL_S} s): no plateau figure`);
  console.log(`  the server exited by itself on SIGTERM: ${exited ? `yes, in ${result.exitMs} ms` : 'NO'}`);
  const dir = path.join(__dirname, 'results');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, SMOKE ? 'soak-smoke.json' : 'soak.json'), JSON.stringify(result, null, 2));
  if (!exited) process.exit(1);
}

/** Growth over the samples taken once the longest window had turned over, or null when the run was shorter. */
function afterWindowsFull(samples) {
  const xs = samples.filter((x) => x.t >= WINDOWS_FULL_S);
  if (xs.length < 4) return null;
  const a = xs[0];
  const b = xs.at(-1);
  const part = Math.max(1, Math.floor(xs.length / 3));
  return {
    fromS: a.t,
    toS: b.t,
    requests: b.done - a.done,
    rssGrowthMB: b.rssMB - a.rssMB,
    rssTroughGrowthMB: trough(xs.slice(-part), 'rssMB') - trough(xs.slice(0, part), 'rssMB'),
    heapGrowthMB: b.heapMB - a.heapMB,
    metricsStoreGrowthMB: b.metricsMB - a.metricsMB,
    rssGrowthOutsideStoreMB: b.rssMB - a.rssMB - (b.metricsMB - a.metricsMB),
  };
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
