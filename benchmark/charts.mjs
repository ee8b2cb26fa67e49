// Draws the load, failure and soak results as SVG charts with Vega-Lite
// (rendered in Node, no browser): benchmark/charts/*.svg, embedded in
// benchmark/README.md. Run after benchmark/load.js and benchmark/soak.js
// (and paired.js, attribute.js: each chart is drawn when its results exist).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as vega from 'vega';
import * as vl from 'vega-lite';

const here = path.dirname(fileURLToPath(import.meta.url));
const results = path.join(here, 'results');
const out = path.join(here, 'charts');
fs.mkdirSync(out, { recursive: true });
const read = (f) => (fs.existsSync(path.join(results, f)) ? JSON.parse(fs.readFileSync(path.join(results, f), 'utf8')) : null);

const theme = { background: '#0f1115', config: { axis: { labelColor: '#d7dce5', titleColor: '#d7dce5', gridColor: '#262b36', domainColor: '#8a93a6' }, legend: { labelColor: '#d7dce5', titleColor: '#d7dce5' }, title: { color: '#d7dce5' }, view: { stroke: '#262b36' } } };

async function draw(name, spec) {
  const compiled = vl.compile({ ...theme, ...spec }).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  fs.writeFileSync(path.join(out, `${name}.svg`), await view.toSVG());
  console.log(`  wrote benchmark/charts/${name}.svg`);
}

const STACK = { bare: 'bare Express 4', ours: 'reliability-core (3 layers)', 'ours-stack': 'reliability-core (reliabilityStack)', js: 'express-prom-bundle + opossum + unleash', original: 'original TS logic', 'bare-control': 'bare Express 4 (A/A control)' };
const load = read('load.json');
if (load) {
  const rows = Object.entries(load.throughput.summary).map(([k, v]) => ({ stack: STACK[k], cpu: +v.cpuUsPerRequest.toFixed(1), rps: Math.round(v.rps), p50: v.p50, p99: v.p99 }));
  await draw('load-cpu', {
    title: `Server CPU per request (µs, lower is better) — ${load.connections} connections, median of ${load.rounds} rounds`,
    width: 520, height: 180, data: { values: rows },
    layer: [
      { mark: { type: 'bar', color: '#5aa9ff' }, encoding: { y: { field: 'stack', type: 'nominal', sort: null, title: null }, x: { field: 'cpu', type: 'quantitative', title: 'µs CPU per request' } } },
      { mark: { type: 'text', align: 'left', dx: 4, color: '#d7dce5' }, encoding: { y: { field: 'stack', type: 'nominal', sort: null }, x: { field: 'cpu', type: 'quantitative' }, text: { field: 'cpu' } } },
    ],
  });
  await draw('load-latency', {
    title: 'Latency at 50 connections (ms)', width: 520, height: 180,
    data: { values: rows.flatMap((r) => [{ stack: r.stack, q: 'p50', ms: r.p50 }, { stack: r.stack, q: 'p99', ms: r.p99 }]) },
    mark: 'bar',
    encoding: { y: { field: 'stack', type: 'nominal', sort: null, title: null }, yOffset: { field: 'q' }, x: { field: 'ms', type: 'quantitative', title: 'ms' }, color: { field: 'q', type: 'nominal', scale: { range: ['#2ecc71', '#ff5c5c'] }, title: null } },
  });
  const tl = load.failure.timeline.flatMap((b) => [
    { t: b.t, kind: '200 ok', n: b.ok },
    { t: b.t, kind: '500 failed', n: b.failed },
    { t: b.t, kind: '503 rejected by the breaker', n: b.rejected },
  ]);
  const open = load.failure.timeline.filter((b) => b.breaker !== 'closed').map((b) => ({ t: b.t, t2: b.t + 0.5, state: b.breaker }));
  const ph = load.failure.phasesMs;
  await draw('failure-timeline', {
    title: `Dependency failing 50 % from ${ph.healthy / 1000} s to ${(ph.healthy + ph.failing) / 1000} s (answers per 0.5 s; shaded: breaker not closed)`,
    width: 620, height: 220,
    layer: [
      { data: { values: open }, mark: { type: 'rect', color: '#f5b942', opacity: 0.15 }, encoding: { x: { field: 't', type: 'quantitative' }, x2: { field: 't2' } } },
      { data: { values: tl }, mark: { type: 'line', strokeWidth: 2 }, encoding: { x: { field: 't', type: 'quantitative', title: 'seconds' }, y: { field: 'n', type: 'quantitative', title: 'answers per 0.5 s' }, color: { field: 'kind', type: 'nominal', scale: { range: ['#2ecc71', '#ff5c5c', '#f5b942'] }, title: null } } },
    ],
  });
}
const soak = read('soak.json');
if (soak) {
  const pts = soak.samples.flatMap((s) => [
    { t: s.t, what: 'RSS', mb: +s.rssMB.toFixed(1) },
    { t: s.t, what: 'heap used', mb: +s.heapMB.toFixed(1) },
    ...(s.metricsMB == null ? [] : [{ t: s.t, what: 'metrics store (Rust, bounded)', mb: +s.metricsMB.toFixed(1) }]),
  ]);
  const lines = { data: { values: pts }, mark: { type: 'line', strokeWidth: 2 }, encoding: { x: { field: 't', type: 'quantitative', title: 'seconds' }, y: { field: 'mb', type: 'quantitative', title: 'MB' }, color: { field: 'what', type: 'nominal', scale: { range: ['#5aa9ff', '#2ecc71', '#f5b942'] }, title: null } } };
  // From the dashed line on, every metrics window has turned over once: the store is full.
  const full = soak.afterWindowsFull ? [{ data: { values: [{ t: soak.afterWindowsFull.fromS }] }, mark: { type: 'rule', color: '#8a93a6', strokeDash: [4, 4] }, encoding: { x: { field: 't', type: 'quantitative' } } }] : [];
  await draw('soak-memory', {
    title: `Soak: ${(soak.requests / 1e6).toFixed(1)} M requests, ${soak.routes} routes, ${soak.breakers} breakers (MB)${full.length ? '; dashed: every window turned over' : ''}`,
    width: 620, height: 220, layer: [lines, ...full],
  });
}

const PAIRED = { ...STACK, 'noop-layer': 'one no-op middleware' };
const paired = read('paired.json');
if (paired) {
  const rows = Object.entries(paired.modes)
    .filter(([k]) => k !== 'bare')
    .map(([k, v]) => ({ stack: PAIRED[k] ?? k, added: +v.addedUs.toFixed(1), q1: +v.q1.toFixed(1), q3: +v.q3.toFixed(1) }));
  await draw('paired-cpu', {
    title: `CPU added per request over bare, all stacks at once on one CPU (µs; median, IQR)`,
    width: 520, height: 170, data: { values: rows },
    layer: [
      { mark: { type: 'bar', color: '#5aa9ff' }, encoding: { y: { field: 'stack', type: 'nominal', sort: null, title: null, axis: { labelLimit: 320 } }, x: { field: 'added', type: 'quantitative', title: 'µs CPU added per request' } } },
      { mark: { type: 'rule', color: '#f5b942', strokeWidth: 2 }, encoding: { y: { field: 'stack', type: 'nominal', sort: null }, x: { field: 'q1', type: 'quantitative' }, x2: { field: 'q3' } } },
    ],
  });
}
const attribution = read('attribution.json');
if (attribution?.modes['ours-stack']) {
  const fns = Object.entries(attribution.modes['ours-stack'].ours)
    .filter(([, us]) => us >= 0.05)
    .sort((a, b) => b[1] - a[1])
    .map(([k, us]) => ({ fn: k.replace(/^JS:(\S+) .*\/dist\/(\S+?):\d+:\d+$/, '$1 ($2)'), us: +us.toFixed(2) }));
  await draw('attribution', {
    title: 'The package\'s own CPU per request, by function: reliabilityStack() + a breaker (µs)',
    width: 520, height: 200, data: { values: fns },
    layer: [
      { mark: { type: 'bar', color: '#2ecc71' }, encoding: { y: { field: 'fn', type: 'nominal', sort: null, title: null, axis: { labelLimit: 320 } }, x: { field: 'us', type: 'quantitative', title: 'µs per request' } } },
      { mark: { type: 'text', align: 'left', dx: 4, color: '#d7dce5' }, encoding: { y: { field: 'fn', type: 'nominal', sort: null }, x: { field: 'us', type: 'quantitative' }, text: { field: 'us' } } },
    ],
  });
}
