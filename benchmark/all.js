// @ts-check
'use strict';
/**
 * `npm run bench`: every micro-benchmark, one after the other, each
 * interleaving its contenders (A B A B …) and printing medians and ratios;
 * then benchmark/results/latest.json (every script's results) and
 * benchmark/results/latest.md (one table of the figures they printed).
 *
 *   node --expose-gc benchmark/all.js
 */
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const SCRIPTS = [
  ['circuit breakers (vs opossum, cockatiel)', 'run.js', 'breakers.json'],
  ['golden-signal metrics (vs prom-client, hdr-histogram-js)', 'metrics.js', 'metrics-latest.json'],
  ['latency histograms: wide and narrow shapes, memory (vs prom-client)', 'histograms.js', 'histograms.json'],
  ['startup DAG (vs toposort, dependency-graph)', 'dag.js', 'dag.json'],
  ['rollout decisions (vs original TS rules, unleash-client)', 'rollout.js', 'rollout.json'],
  ['watchdogs (trackAiCall, protectPublish)', 'watchdogs.js', 'watchdogs.json'],
  ['every hot path of issue 22 against its peers, one interleaved run', 'hotpath.js', 'hotpath.json'],
];

const dir = path.join(__dirname, 'results');
fs.mkdirSync(dir, { recursive: true });
const latest = { when: new Date().toISOString(), node: process.version, cpu: `${os.cpus().length} × ${os.cpus()[0].model}`, benchmarks: {} };
const rows = [];
let failed = 0;
for (const [title, script, file] of SCRIPTS) {
  console.log(`\n=== ${title}: benchmark/${script}`);
  const r = spawnSync(process.execPath, ['--expose-gc', path.join(__dirname, script)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 << 20 });
  process.stdout.write(r.stdout);
  if (r.status !== 0) {
    failed++;
    continue;
  }
  const f = path.join(dir, file);
  latest.benchmarks[script] = fs.existsSync(f) ? JSON.parse(fs.readFileSync(f, 'utf8')) : null;
  // Every printed figure line: "<what>   <number> <unit> (... <ratio>x ...)".
  for (const line of r.stdout.split('\n')) {
    const m = /^\s*(.+?)\s{2,}([\d,]+(?:\.\d+)?)\s*(ns|µs|ms)\b.*?(?:\((\d+(?:\.\d+)?)x[^)]*\))?\s*$/.exec(line);
    if (m) rows.push({ benchmark: script, what: m[1].trim(), value: `${m[2]} ${m[3]}`, ratio: m[4] ? `${m[4]}×` : '' });
  }
}
fs.writeFileSync(path.join(dir, 'latest.json'), JSON.stringify(latest, null, 2) + '\n');
const md = [`# Benchmarks (${latest.when}, ${latest.cpu}, Node ${latest.node})`, '', '| benchmark | what | figure | ratio (printed by the script) |', '|---|---|---|---|', ...rows.map((r) => `| ${r.benchmark} | ${r.what.replace(/\|/g, '\\|')} | ${r.value} | ${r.ratio} |`), ''].join('\n');
fs.writeFileSync(path.join(dir, 'latest.md'), md);
console.log(`\nWrote benchmark/results/latest.json and latest.md (${rows.length} figures).`);
process.exit(failed ? 1 : 0);
