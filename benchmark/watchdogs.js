// @ts-check
'use strict';
/**
 * Watchdog overhead: `await trackAiCall(name, fn)` around an already
 * resolved function vs a bare `await fn()`, and `protectPublish` around a
 * resolved publish vs the bare publish. The difference is what a tracked
 * call costs: breaker admission, two clock reads and a ring write.
 *
 *   node --expose-gc benchmark/watchdogs.js        (or: npm run bench)
 *   node benchmark/watchdogs.js --smoke            (tiny, run by the tests)
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const SMOKE = process.argv.includes('--smoke') || process.env.BENCH_SMOKE === '1';
const N = SMOKE ? 2_000 : 300_000;
const ROUNDS = SMOKE ? 2 : 7;

const W = require('../dist/watchdogs.js');
require('../dist/circuit-breaker.js').configureCircuitBreakers({ logger: null });
const gc = typeof global.gc === 'function' ? () => global.gc() : () => {};

const resolved = async () => 1;
const publish = async (_topic, _payload) => true;
const tracked = W.protectPublish(publish, { breaker: 'bench-bus' });

const contenders = {
  'bare await fn()': () => resolved(),
  'await trackAiCall(name, fn)': () => W.trackAiCall('bench-ai', resolved),
  'bare await publish()': () => publish('topic', { agentId: 'a' }),
  'await protectPublish(publish)()': () => tracked('topic', { agentId: 'a' }),
};

async function time(f) {
  gc();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) await f();
  return Number(process.hrtime.bigint() - t0) / N;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  console.log(`Watchdogs: ${N} calls per round, ${ROUNDS} interleaved rounds (${os.cpus()[0].model}, Node ${process.version})`);
  const names = Object.keys(contenders);
  const t = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < ROUNDS; r++) {
    for (let k = 0; k < names.length; k++) {
      const n = names[(k + r) % names.length];
      t[n].push(await time(contenders[n]));
    }
  }
  const m = Object.fromEntries(names.map((n) => [n, median(t[n])]));
  for (const n of names) console.log(`  ${n.padEnd(34)} ${m[n].toFixed(1).padStart(8)} ns`);
  const ai = m['await trackAiCall(name, fn)'] - m['bare await fn()'];
  const pub = m['await protectPublish(publish)()'] - m['bare await publish()'];
  console.log(`\n  trackAiCall adds ${ai.toFixed(0)} ns per call (${(m['await trackAiCall(name, fn)'] / m['bare await fn()']).toFixed(1)}x a bare call)`);
  console.log(`  protectPublish adds ${pub.toFixed(0)} ns per publish (${(m['await protectPublish(publish)()'] / m['bare await publish()']).toFixed(1)}x a bare publish)`);
  const rep = W.getWatchdogsReport();
  if (rep.aiCallLatency.totalCalls < N) throw new Error('calls were not recorded');
  W.getWatchdogs().close();
  if (!SMOKE) {
    const dir = path.join(__dirname, 'results');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'watchdogs.json'), JSON.stringify({ when: new Date().toISOString(), node: process.version, cpu: os.cpus()[0].model, medianNs: m, trackAiCallAddsNs: ai, protectPublishAddsNs: pub }, null, 2));
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
