// @ts-check
'use strict';
/**
 * End-to-end load test: the same Express 4 app four ways (see
 * load-server.js), each in its own process, driven by autocannon in another
 * process (50 connections, fixed duration), 3 interleaved rounds. Reports
 * server CPU µs per request (the stable figure on a shared 2-core machine),
 * requests/s and p50/p99 latency, with ratios. Then a failure run: the
 * dependency fails 50 % of the time for 10 s and recovers; the timeline of
 * answers, the breaker's state and how fast rejections are.
 *
 *   npm run bench:load            (about 3 minutes)
 *   node benchmark/load.js --smoke   (1 round of 1 s per mode, short failure run: run by the tests)
 *
 * Writes benchmark/results/load.json; benchmark/charts.js draws it.
 */
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { startServer, ask, stop, nodeChild, PIN } = require('./harness');

const SMOKE = process.argv.includes('--smoke') || process.env.BENCH_SMOKE === '1';
// `bare-control` is a second bare server: how far two identical servers
// differ is the noise floor of the figures.
const MODES = ['bare', 'ours', 'ours-stack', 'js', 'original', 'bare-control'];
const ROUNDS = SMOKE ? 1 : Number(process.env.BENCH_ROUNDS || 5);
const DURATION = SMOKE ? 1 : Number(process.env.BENCH_SECONDS || 6);
const WARMUP = SMOKE ? 0.5 : 2;
const CONNECTIONS = 50;
const CLIENT = path.join(__dirname, 'load-client.js');

/** autocannon in its own process; resolves with its JSON result. */
function runClient(port, seconds) {
  return new Promise((resolve, reject) => {
    const c = nodeChild(CLIENT, [String(port), String(seconds), String(CONNECTIONS)], '0', { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`client exit ${code}`))));
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function throughput() {
  const runs = Object.fromEntries(MODES.map((m) => [m, []]));
  for (let r = 0; r < ROUNDS; r++) {
    for (let k = 0; k < MODES.length; k++) {
      const mode = MODES[(k + r) % MODES.length];
      const s = await startServer(mode === 'bare-control' ? 'bare' : mode);
      await runClient(s.port, WARMUP);
      const c0 = (await ask(s.child, 'cpu')).cpu;
      const res = await runClient(s.port, DURATION);
      const c1 = (await ask(s.child, 'cpu')).cpu;
      await stop(s.child);
      const cpuUs = c1.user + c1.system - (c0.user + c0.system);
      const total = res.requests.total;
      runs[mode].push({ cpuUsPerRequest: cpuUs / total, rps: res.requests.average, p50: res.latency.p50, p99: res.latency.p99, errors: res.non2xx + res.errors, total });
      console.log(`  round ${r + 1} ${mode.padEnd(9)} ${(cpuUs / total).toFixed(1).padStart(6)} µs CPU/req  ${res.requests.average.toFixed(0).padStart(6)} req/s  p50 ${res.latency.p50} ms  p99 ${res.latency.p99} ms  (${total} requests, ${res.non2xx + res.errors} not 2xx)`);
    }
  }
  const summary = {};
  for (const m of MODES) {
    // Overhead: median over rounds of (mode - bare in the same round), so a
    // slow round moves both sides.
    const deltas = runs[m].map((x, r) => x.cpuUsPerRequest - runs.bare[r].cpuUsPerRequest);
    summary[m] = {
      cpuUsPerRequest: median(runs[m].map((x) => x.cpuUsPerRequest)),
      overheadUs: median(deltas),
      overheadRangeUs: [Math.min(...deltas), Math.max(...deltas)],
      rps: median(runs[m].map((x) => x.rps)),
      p50: median(runs[m].map((x) => x.p50)),
      p99: median(runs[m].map((x) => x.p99)),
    };
  }
  const bare = summary.bare.cpuUsPerRequest;
  console.log(`\nMedians (CPU µs per request is the server process; overhead = median over rounds of mode - bare in the same round${PIN ? '; server and client pinned to their own CPU' : ''}):`);
  for (const m of MODES) {
    const s = summary[m];
    const over = m === 'bare' ? '' : `  overhead ${s.overheadUs.toFixed(1)} µs [${s.overheadRangeUs.map((x) => x.toFixed(1)).join(', ')}] (${((bare / (bare + s.overheadUs)) * 100).toFixed(1)} % of bare throughput per CPU)`;
    console.log(`  ${m.padEnd(12)} ${s.cpuUsPerRequest.toFixed(1).padStart(6)} µs/req  ${s.rps.toFixed(0).padStart(6)} req/s  p50 ${s.p50} ms  p99 ${s.p99} ms${over}`);
  }
  const ours = summary.ours.overheadUs;
  const stack = summary['ours-stack'].overheadUs;
  const js = summary.js.overheadUs;
  const orig = summary.original.overheadUs;
  const noise = Math.max(...runs['bare-control'].map((x, r) => Math.abs(x.cpuUsPerRequest - runs.bare[r].cpuUsPerRequest)));
  console.log(`\n  reliabilityStack adds ${stack.toFixed(1)} µs (the three separate middlewares ${ours.toFixed(1)} µs); the JS stack adds ${js.toFixed(1)} µs (${(js / Math.max(stack, 0.1)).toFixed(1)}x reliabilityStack); the original logic adds ${orig.toFixed(1)} µs`);
  console.log(`  noise floor: two identical bare servers differ by up to ${noise.toFixed(1)} µs per request in a round (median ${summary['bare-control'].overheadUs.toFixed(1)})`);
  console.log(`  target: under 5 µs and under a tenth of the JS stack (${(js / 10).toFixed(1)} µs): ${stack < 5 && stack < js / 10 ? 'MEETS' : 'MISSES'}`);
  return { runs, summary, overheadUs: { ours, stack, js, original: orig }, noiseFloorUs: noise, pinned: PIN };
}

/** A keep-alive load loop that records every answer, for the failure timeline. */
async function failureRun() {
  const s = await startServer('ours');
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  const t0 = Date.now();
  const healthyMs = SMOKE ? 1000 : 5000;
  const failingMs = SMOKE ? 2000 : 10_000;
  const recoveryMs = SMOKE ? 2500 : 10_000;
  const endAt = t0 + healthyMs + failingMs + recoveryMs;
  const samples = [];
  const states = [];
  const control = (failRate) =>
    new Promise((resolve) => {
      const req = http.request({ host: '127.0.0.1', port: s.port, path: '/control', method: 'POST', headers: { 'content-type': 'application/json' }, agent: false }, (res) => res.resume().on('end', resolve));
      req.end(JSON.stringify({ failRate }));
    });
  const one = (i) =>
    new Promise((resolve) => {
      const start = process.hrtime.bigint();
      const req = http.get({ host: '127.0.0.1', port: s.port, path: `/api/items/${i % 100}`, headers: { 'x-user-id': `u${i % 1000}` }, agent }, (res) => {
        res.resume();
        res.on('end', () => {
          samples.push({ at: Date.now() - t0, status: res.statusCode, ms: Number(process.hrtime.bigint() - start) / 1e6 });
          resolve();
        });
      });
      req.on('error', () => resolve());
      req.setTimeout(5000, () => req.destroy());
    });
  let n = 0;
  const loops = Array.from({ length: CONNECTIONS }, async () => {
    while (Date.now() < endAt) await one(n++);
  });
  const poll = (async () => {
    while (Date.now() < endAt) {
      const st = await new Promise((resolve) => http.get({ host: '127.0.0.1', port: s.port, path: '/state', agent: false }, (res) => {
        let b = '';
        res.on('data', (d) => (b += d));
        res.on('end', () => resolve(JSON.parse(b)));
      }).on('error', () => resolve(null)));
      if (st) states.push({ at: Date.now() - t0, breaker: st.breaker });
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  setTimeout(() => control(0.5), healthyMs);
  setTimeout(() => control(0), healthyMs + failingMs);
  await Promise.all([...loops, poll]);
  agent.destroy();
  const serverSide = await new Promise((resolve) => http.get({ host: '127.0.0.1', port: s.port, path: '/state', agent: false }, (res) => {
    let b = '';
    res.on('data', (d) => (b += d));
    res.on('end', () => resolve(JSON.parse(b)));
  }));
  await stop(s.child);

  const bucketMs = 500;
  const timeline = [];
  for (let b = 0; b * bucketMs < endAt - t0; b++) {
    const xs = samples.filter((x) => x.at >= b * bucketMs && x.at < (b + 1) * bucketMs);
    const st = states.filter((x) => x.at < (b + 1) * bucketMs).at(-1)?.breaker ?? 'closed';
    timeline.push({ t: (b * bucketMs) / 1000, ok: xs.filter((x) => x.status === 200).length, failed: xs.filter((x) => x.status === 500).length, rejected: xs.filter((x) => x.status === 503).length, breaker: st });
  }
  const p = (xs, q) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * q))] : null);
  const rejected = samples.filter((x) => x.status === 503).map((x) => x.ms);
  const served = samples.filter((x) => x.status !== 503).map((x) => x.ms);
  const opened = states.find((x) => x.breaker === 'open' && x.at >= healthyMs);
  const closedAgain = states.find((x) => x.breaker === 'closed' && x.at >= healthyMs + failingMs);
  const result = {
    phasesMs: { healthy: healthyMs, failing: failingMs, recovery: recoveryMs },
    requests: samples.length,
    rejectedP50Ms: p(rejected, 0.5),
    rejectedP99Ms: p(rejected, 0.99),
    servedP99Ms: p(served, 0.99),
    hung: samples.filter((x) => x.ms >= 5000).length,
    serverRejectP50Us: serverSide.rejectP50Us,
    serverRejectP99Us: serverSide.rejectP99Us,
    breakerOpenedAfterMs: opened ? opened.at - healthyMs : null,
    breakerClosedAfterRecoveryMs: closedAgain ? closedAgain.at - (healthyMs + failingMs) : null,
    timeline,
  };
  console.log(`\nFailure run: ${samples.length} requests; dependency 50 % failing from ${healthyMs / 1000} s to ${(healthyMs + failingMs) / 1000} s`);
  console.log(`  breaker opened ${result.breakerOpenedAfterMs} ms after the failures began; closed ${result.breakerClosedAfterRecoveryMs} ms after recovery`);
  console.log(`  rejected (503) answers: ${rejected.length}, client-side p50 ${result.rejectedP50Ms?.toFixed(2)} ms, p99 ${result.rejectedP99Ms?.toFixed(2)} ms (50 connections, loopback, HTTP included)`);
  console.log(`  in the server, from the handler's start to the refusal: p50 ${result.serverRejectP50Us?.toFixed(1)} µs, p99 ${result.serverRejectP99Us?.toFixed(1)} µs (target p99 < 1 ms)`);
  console.log(`  no request hung: ${result.hung === 0 ? 'yes' : `no, ${result.hung}`}`);
  return result;
}

async function main() {
  console.log(`Load test: Express 4, ${CONNECTIONS} connections, ${DURATION} s per run, ${ROUNDS} interleaved rounds (${os.cpus().length} × ${os.cpus()[0].model}, Node ${process.version})`);
  const prev = process.argv.includes('--failure-only') ? JSON.parse(fs.readFileSync(path.join(__dirname, 'results', 'load.json'), 'utf8')).throughput : null;
  const tp = prev ?? (await throughput());
  const failure = await failureRun();
  const out = { when: new Date().toISOString(), node: process.version, cpu: `${os.cpus().length} × ${os.cpus()[0].model}`, connections: CONNECTIONS, durationS: DURATION, rounds: ROUNDS, throughput: tp, failure };
  const dir = path.join(__dirname, 'results');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, SMOKE ? 'load-smoke.json' : 'load.json'), JSON.stringify(out, null, 2));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
