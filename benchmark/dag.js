'use strict';
/**
 * Startup-DAG benchmark: order + parallel levels for 10,000 services and
 * 50,000 dependency edges, @dreamnet/reliability-core (`planStartupOrder`:
 * one JSON string into Rust, one Uint32Array back) vs `toposort` 2 and
 * `dependency-graph` 1.
 *
 *   node --expose-gc benchmark/dag.js            (or: npm run bench)
 *   node benchmark/dag.js --smoke                (tiny graph, 2 rounds: run by the tests)
 *
 * Neither peer computes levels (dependency-graph's PR #39 has been open
 * since 2020), so each is timed twice: order only, and order plus levels
 * computed in JS over its order. Ours always returns both. A cycle case
 * times how long each takes to refuse a graph with one long cycle, and
 * shows what each error names.
 *
 * Rounds are interleaved (A B C, B C A, ...) and medians reported. A
 * benchmark, not a test: it fails only if a result is wrong.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const toposort = require('toposort');
const { DepGraph } = require('dependency-graph');

const SMOKE = process.argv.includes('--smoke') || process.env.BENCH_SMOKE === '1';
const N = SMOKE ? 200 : 10_000;
const EDGES = SMOKE ? 1_000 : 50_000;
const ROUNDS = SMOKE ? 2 : 9;

const { planStartupOrder, configureStartupLogging } = require('../dist/startup-dag.js');
configureStartupLogging({ logger: null });

const gc = typeof global.gc === 'function' ? () => global.gc() : () => {};

/** Seeded xorshift32: the same graph every run. */
function rng(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

/** N services; each (but the first few) depends on distinct earlier ones, EDGES in total. */
function makeGraph() {
  const r = rng(42);
  const services = Array.from({ length: N }, (_, i) => ({ id: `svc-${i}`, dependencies: [] }));
  let edges = 0;
  // Spread the edges: service i gets about EDGES/N dependencies among earlier services.
  const per = EDGES / N;
  for (let i = 1; i < N && edges < EDGES; i++) {
    const want = Math.min(i, Math.round(per + (r() - 0.5) * 2));
    const seen = new Set();
    while (seen.size < want && edges < EDGES) {
      const j = Math.floor(r() * i);
      if (!seen.has(j)) {
        seen.add(j);
        services[i].dependencies.push(`svc-${j}`);
        edges++;
      }
    }
  }
  // Top up to exactly EDGES with more distinct earlier dependencies.
  for (let i = N - 1; edges < EDGES && i > 0; i--) {
    const have = new Set(services[i].dependencies);
    for (let j = 0; j < i && edges < EDGES; j++) {
      const id = `svc-${j}`;
      if (!have.has(id)) {
        services[i].dependencies.push(id);
        have.add(id);
        edges++;
        break;
      }
    }
  }
  return { services, edges };
}

/** Longest-path levels over a given order (dependencies first): what ours computes in Rust. */
function levelsOver(order, depsOf) {
  const level = new Map();
  for (const id of order) {
    let l = 0;
    for (const d of depsOf(id)) l = Math.max(l, level.get(d) + 1);
    level.set(id, l);
  }
  const out = [];
  for (const [id, l] of level) (out[l] ??= []).push(id);
  return { level, out };
}

const contenders = {
  ours: (services) => planStartupOrder(services),
  'toposort (order)': (services) => {
    const edges = [];
    for (const s of services) for (const d of s.dependencies) edges.push([d, s.id]);
    return { order: toposort.array(services.map((s) => s.id), edges) };
  },
  'toposort + levels': (services) => {
    const edges = [];
    for (const s of services) for (const d of s.dependencies) edges.push([d, s.id]);
    const order = toposort.array(services.map((s) => s.id), edges);
    const deps = new Map(services.map((s) => [s.id, s.dependencies]));
    return { order, levels: levelsOver(order, (id) => deps.get(id)).out };
  },
  'dependency-graph (order)': (services) => {
    const g = new DepGraph();
    for (const s of services) g.addNode(s.id);
    for (const s of services) for (const d of s.dependencies) g.addDependency(s.id, d);
    return { order: g.overallOrder() };
  },
  'dependency-graph + levels': (services) => {
    const g = new DepGraph();
    for (const s of services) g.addNode(s.id);
    for (const s of services) for (const d of s.dependencies) g.addDependency(s.id, d);
    const order = g.overallOrder();
    return { order, levels: levelsOver(order, (id) => g.directDependenciesOf(id)).out };
  },
};

function checkOrder(name, services, order) {
  if (order.length !== services.length) throw new Error(`${name}: order has ${order.length} of ${services.length} services`);
  const pos = new Map(order.map((id, i) => [id, i]));
  for (const s of services) for (const d of s.dependencies) if (!(pos.get(d) < pos.get(s.id))) throw new Error(`${name}: ${d} is not before ${s.id}`);
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function main() {
  const { services, edges } = makeGraph();
  console.log(`Startup DAG: ${N} services, ${edges} edges, ${ROUNDS} interleaved rounds (${os.cpus()[0].model}, Node ${process.version})`);

  // Correctness first: every result is a topological order; our levels equal the JS longest-path levels.
  const deps = new Map(services.map((s) => [s.id, s.dependencies]));
  for (const [name, f] of Object.entries(contenders)) checkOrder(name, services, f(services).order);
  const ours = contenders.ours(services);
  const ref = levelsOver(ours.order, (id) => deps.get(id)).level;
  ours.levels.forEach((ids, l) => ids.forEach((id) => {
    if (ref.get(id) !== l) throw new Error(`ours: ${id} at level ${l}, expected ${ref.get(id)}`);
  }));

  const names = Object.keys(contenders);
  const times = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < ROUNDS; r++) {
    for (let k = 0; k < names.length; k++) {
      const n = names[(k + r) % names.length];
      gc();
      const t0 = process.hrtime.bigint();
      contenders[n](services);
      times[n].push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  }
  const med = Object.fromEntries(names.map((n) => [n, median(times[n])]));
  console.log('\nOrder + levels (median ms; ratio = peer / ours):');
  for (const n of names) {
    const ratio = n === 'ours' ? '' : `  (${(med[n] / med.ours).toFixed(1)}x ours)`;
    console.log(`  ${n.padEnd(28)} ${med[n].toFixed(2).padStart(8)} ms${ratio}`);
  }

  // A long cycle: svc-0 depends on the last service, which (transitively) depends on svc-0.
  const cyclic = services.map((s) => ({ id: s.id, dependencies: [...s.dependencies] }));
  const chain = Math.min(N - 1, 50);
  const add = (i, id) => cyclic[i].dependencies.includes(id) || cyclic[i].dependencies.push(id);
  for (let i = 1; i <= chain; i++) add(i, `svc-${i - 1}`);
  add(0, `svc-${chain}`);
  const detect = {
    ours: () => planStartupOrder(cyclic),
    toposort: () => {
      const e = [];
      for (const s of cyclic) for (const d of s.dependencies) e.push([d, s.id]);
      return toposort.array(cyclic.map((s) => s.id), e);
    },
    'dependency-graph': () => {
      const g = new DepGraph();
      for (const s of cyclic) g.addNode(s.id);
      for (const s of cyclic) for (const d of s.dependencies) g.addDependency(s.id, d);
      return g.overallOrder();
    },
  };
  console.log('\nCycle detection (one cycle through', chain + 1, 'services; median ms, what the error names):');
  const cyc = {};
  for (const [n, f] of Object.entries(detect)) {
    const ts = [];
    let msg = '';
    for (let r = 0; r < ROUNDS; r++) {
      const t0 = process.hrtime.bigint();
      try {
        f();
        throw new Error(`${n}: no error for a cyclic graph`);
      } catch (e) {
        if (/no error for a cyclic graph/.test(e.message)) throw e;
        msg = e.cyclePath ? `cyclePath ${e.cyclePath.length} ids` : e.message;
      }
      ts.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    cyc[n] = { ms: median(ts), error: msg.length > 90 ? msg.slice(0, 87) + '...' : msg };
    console.log(`  ${n.padEnd(18)} ${cyc[n].ms.toFixed(2).padStart(8)} ms  ${cyc[n].error}`);
  }

  if (!SMOKE) {
    const dir = path.join(__dirname, 'results');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'dag.json'), JSON.stringify({ when: new Date().toISOString(), node: process.version, cpu: os.cpus()[0].model, services: N, edges, medianMs: med, cycle: cyc }, null, 2));
  }
}

main();
