// @ts-check
'use strict';
/**
 * What each part of reliabilityStack() costs under load: one server
 * (parts-server.js), autocannon running throughout from another process,
 * and the server's reliability layer switched every period, round-robin over
 * the variants. Each period's CPU per request is compared with the bare
 * periods around it, so drift (JIT, heap growth, the host) cancels out.
 *
 *   node benchmark/parts.js [seconds] [variant ...]     (default: 240 s, every variant)
 *   node benchmark/parts.js --smoke                      (a few seconds: run by the tests)
 *
 * Prints the median and the interquartile mean of CPU µs per request per
 * variant, and each one's difference from bare. `bare` is always first; the
 * difference between its odd and even periods is the noise floor.
 */
const path = require('node:path');
const { nodeChild, portOf, PIN } = require('./harness');

const SMOKE = process.argv.includes('--smoke');
const args = process.argv.slice(2).filter((a) => a !== '--smoke');
const SECONDS = SMOKE ? 4 : Number(args[0] || 240);
const ALL = ['full', 'no-breaker', 'metrics-only', 'shaping-only', 'breaker-only', 'cohort-header', 'close-listener', 'req-property'];
const VARIANTS = ['bare', ...(args.length > 1 ? args.slice(1) : ALL)];
const PERIOD_MS = SMOKE ? 400 : 2000;
const SETTLE_MS = SMOKE ? 100 : 500;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const iqm = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const cut = Math.floor(s.length / 4);
  const mid = s.slice(cut, s.length - cut);
  return mid.reduce((a, b) => a + b, 0) / mid.length;
};

async function main() {
  const server = nodeChild(path.join(__dirname, 'parts-server.js'), [], 'last', { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  const port = await portOf(server, 'parts-server');
  const ask = (cmd, extra = {}) =>
    new Promise((resolve) => {
      server.once('message', resolve);
      server.send({ cmd, ...extra });
    });
  const client = nodeChild(path.join(__dirname, 'load-client.js'), [String(port), String(SECONDS + 10), '50'], '0', { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  try {
    await sleep(SMOKE ? 1000 : 3000); // warm-up
    const samples = Object.fromEntries(VARIANTS.map((v) => [v, []]));
    const gc = Object.fromEntries(VARIANTS.map((v) => [v, []]));
    const end = Date.now() + SECONDS * 1000;
    for (let k = 0; Date.now() < end; k++) {
      const v = VARIANTS[k % VARIANTS.length];
      await ask('mode', { mode: v });
      await sleep(SETTLE_MS);
      const a = await ask('cpu');
      await sleep(PERIOD_MS - SETTLE_MS);
      const b = await ask('cpu');
      const n = b.count - a.count;
      if (n > 0) {
        samples[v].push((b.cpu.user + b.cpu.system - a.cpu.user - a.cpu.system) / n);
        gc[v].push(((b.gcMs - a.gcMs) * 1000) / n);
      }
    }
    const bare = samples.bare;
    const halves = [bare.filter((_, i) => i % 2 === 0), bare.filter((_, i) => i % 2 === 1)];
    console.log(`Parts of reliabilityStack() under load: Express 4, 50 connections, ${SECONDS} s, ${PERIOD_MS} ms periods${PIN ? ', server and client pinned' : ''}`);
    console.log(`${'variant'.padEnd(16)} ${'periods'.padStart(7)} ${'median'.padStart(8)} ${'IQ mean'.padStart(8)}   added over bare (median / IQ mean), µs per request; GC µs per request (added)`);
    const out = {};
    for (const v of VARIANTS) {
      const xs = samples[v];
      if (xs.length === 0) continue;
      const d = [median(xs) - median(bare), iqm(xs) - iqm(bare)];
      const g = median(gc[v]);
      const gAdded = g - median(gc.bare);
      out[v] = { periods: xs.length, medianUs: median(xs), iqMeanUs: iqm(xs), addedUs: d, gcUs: g, gcAddedUs: gAdded };
      const added = v === 'bare' ? '' : `${d[0].toFixed(1)} / ${d[1].toFixed(1)}`;
      console.log(`${v.padEnd(16)} ${String(xs.length).padStart(7)} ${median(xs).toFixed(1).padStart(8)} ${iqm(xs).toFixed(1).padStart(8)}   ${added.padEnd(12)} GC ${g.toFixed(2)}${v === 'bare' ? '' : ` (${gAdded >= 0 ? '+' : ''}${gAdded.toFixed(2)})`}`);
    }
    if (halves[0].length && halves[1].length) {
      const noise = Math.abs(median(halves[0]) - median(halves[1]));
      out.noiseFloorUs = noise;
      console.log(`noise floor: the two halves of the bare periods differ by ${noise.toFixed(1)} µs`);
    }
    console.log(`JSON ${JSON.stringify(out)}`);
  } finally {
    client.kill();
    server.kill();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
