'use strict';
/**
 * Startup-DAG benchmark: order + parallel levels for 10,000 services and
 * 50,000 dependency edges, @dreamnet/reliability-core (`planStartupOrder`:
 * one JSON string into Rust, one Uint32Array back) vs `toposort` 2 and
 * `dependency-graph` 1.
 *
 *   node --expose-gc benchmark/dag.js            (or: npm run bench)
 *   node benchmark/dag.js --smoke                (200 services, 2 rounds: run by the tests)
 *   BENCH_SMOKE=1 node benchmark/dag.js          (same)
 *
 * Neither peer computes levels, so each is timed twice: (a) order only and
 * (b) order plus levels computed in JS (one longest-path pass over its
 * order). Ours always returns both, so (b) is the like-for-like comparison.
 * Every contender starts from the same `[{ id, dependencies }]` array, so
 * building the peers' graphs (and our JSON encoding) is inside the timing.
 *
 * A cycle case adds one back edge to the same graph (the first service of
 * its longest dependency chain now depends on the last one) and times how
 * long each takes to refuse it, and shows what each error names.
 *
 * Correctness is checked once before timing; the script exits 1 if any
 * order is not topological, if our levels differ from the JS levels, or if
 * a cycle goes undetected or is misnamed. Otherwise it never fails on a figure.
 *
 * Rounds are interleaved (A B C …, B C … A, …) after one discarded warm-up
 * round; figures are medians. Results: benchmark/results/dag.json
 * (git-ignored; not written in smoke mode).
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const toposort = require('toposort');
const { DepGraph, DepGraphCycleError } = require('dependency-graph');

const SMOKE = process.argv.includes('--smoke') || process.env.BENCH_SMOKE === '1';
const N = SMOKE ? 200 : 10_000;
const EDGES = SMOKE ? 1_000 : 50_000;
const ROUNDS = SMOKE ? 2 : Number(process.env.BENCH_ROUNDS) || 9;

const { planStartupOrder, configureStartupLogging } = require('../dist/startup-dag.js');
configureStartupLogging({ logger: null });

const gc =
  typeof global.gc === 'function'
    ? () => {
        global.gc();
        global.gc();
      }
    : () => {};

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

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

/**
 * N services; service i depends on 4-6 distinct earlier services (seeded),
 * then the count is topped up (or cut) to exactly EDGES. Services are
 * listed in a shuffled order, so no contender gets an already-sorted input.
 */
function makeGraph() {
  const r = rng(42);
  const deps = Array.from({ length: N }, () => []);
  let edges = 0;
  const per = EDGES / N;
  for (let i = 1; i < N && edges < EDGES; i++) {
    const want = Math.min(i, Math.round(per + (r() - 0.5) * 2));
    const seen = new Set();
    while (seen.size < want && edges < EDGES) {
      const j = Math.floor(r() * i);
      if (!seen.has(j)) {
        seen.add(j);
        deps[i].push(j);
        edges++;
      }
    }
  }
  // Top up to exactly EDGES: one more distinct earlier dependency per service, from the end.
  for (let i = N - 1; edges < EDGES; i = i > 1 ? i - 1 : N - 1) {
    const have = new Set(deps[i]);
    if (have.size >= i) continue;
    let j;
    do j = Math.floor(r() * i);
    while (have.has(j));
    deps[i].push(j);
    edges++;
  }
  const services = deps.map((d, i) => ({ id: `svc-${i}`, dependencies: d.map((j) => `svc-${j}`) }));
  // Fisher-Yates with the same PRNG.
  for (let i = services.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [services[i], services[j]] = [services[j], services[i]];
  }
  return { services, edges };
}

/** Longest-path levels over a topological order (dependencies first): what ours computes in Rust. */
function levelsOver(order, depsOf) {
  const level = new Map();
  const levels = [];
  for (const id of order) {
    let l = 0;
    for (const d of depsOf(id)) {
      const dl = level.get(d) + 1;
      if (dl > l) l = dl;
    }
    level.set(id, l);
    (levels[l] ??= []).push(id);
  }
  return { level, levels };
}

const toposortEdges = (services) => {
  const edges = [];
  for (const s of services) for (const d of s.dependencies) edges.push([d, s.id]); // [dep, dependent]: deps first
  return edges;
};
const depGraph = (services) => {
  const g = new DepGraph();
  for (const s of services) g.addNode(s.id);
  for (const s of services) for (const d of s.dependencies) g.addDependency(s.id, d);
  return g;
};

// One function per contender, so each keeps its own inline caches.
const contenders = {
  ours: (services) => planStartupOrder(services),
  'toposort (order)': (services) => ({ order: toposort.array(services.map((s) => s.id), toposortEdges(services)) }),
  'toposort + levels': (services) => {
    const order = toposort.array(services.map((s) => s.id), toposortEdges(services));
    const deps = new Map(services.map((s) => [s.id, s.dependencies]));
    return { order, levels: levelsOver(order, (id) => deps.get(id)).levels };
  },
  'dependency-graph (order)': (services) => ({ order: depGraph(services).overallOrder() }),
  'dependency-graph + levels': (services) => {
    const g = depGraph(services);
    const order = g.overallOrder();
    return { order, levels: levelsOver(order, (id) => g.directDependenciesOf(id)).levels };
  },
};

function checkOrder(name, services, order) {
  if (!Array.isArray(order) || order.length !== services.length) throw new Error(`${name}: order has ${order?.length} of ${services.length} services`);
  const pos = new Map(order.map((id, i) => [id, i]));
  if (pos.size !== services.length) throw new Error(`${name}: order repeats services`);
  for (const s of services) {
    if (!pos.has(s.id)) throw new Error(`${name}: ${s.id} missing from the order`);
    for (const d of s.dependencies) if (!(pos.get(d) < pos.get(s.id))) throw new Error(`${name}: ${d} is not before its dependent ${s.id}`);
  }
}

function checkLevels(name, levels, ref, n) {
  let count = 0;
  levels.forEach((ids, l) => {
    if (!ids || ids.length === 0) throw new Error(`${name}: level ${l} is empty`);
    for (const id of ids) {
      count++;
      if (ref.get(id) !== l) throw new Error(`${name}: ${id} at level ${l}, expected ${ref.get(id)}`);
    }
  });
  if (count !== n) throw new Error(`${name}: levels hold ${count} services, expected ${n}`);
}

/** Checks that `ids` (a → b: a depends on b) is a closed cycle of `services`' dependencies. */
function checkCycle(name, ids, services) {
  const deps = new Map(services.map((s) => [s.id, new Set(s.dependencies)]));
  const closed = ids[0] === ids[ids.length - 1] ? ids : [...ids, ids[0]];
  if (closed.length < 2) throw new Error(`${name}: empty cycle path`);
  // Either direction convention (dependent → dependency or the reverse), but one for the whole path.
  const steps = closed.slice(1).map((b, k) => [closed[k], b]);
  const fwd = steps.every(([a, b]) => deps.get(a)?.has(b));
  const back = steps.every(([a, b]) => deps.get(b)?.has(a));
  if (!fwd && !back) throw new Error(`${name}: ${closed.join(' → ')} is not a cycle of the graph`);
  if (new Set(closed.slice(1)).size !== closed.length - 1) throw new Error(`${name}: cycle path repeats a service`);
  return closed.length - 1; // services on the cycle
}

/** Times every contender over `rounds` interleaved rounds after one warm-up round; returns ms samples. */
function interleave(fns, input, rounds) {
  const names = Object.keys(fns);
  const times = Object.fromEntries(names.map((n) => [n, []]));
  for (const n of names) fns[n](input); // warm-up, discarded
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < names.length; k++) {
      const n = names[(k + r) % names.length];
      gc();
      const t0 = process.hrtime.bigint();
      fns[n](input);
      times[n].push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  }
  return times;
}

const fmt = (ms) => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2));
const ratio = (x, ours) => `${(x / ours).toFixed(1)}x`;

function main() {
  const t0 = Date.now();
  if (typeof global.gc !== 'function') console.warn('warning: run with --expose-gc for stable figures');
  const { services, edges } = makeGraph();
  const versions = { toposort: require('toposort/package.json').version, 'dependency-graph': require('dependency-graph/package.json').version };
  console.log(
    `Startup DAG: ${N} services, ${edges} edges (exact), ${ROUNDS} interleaved rounds + 1 warm-up` +
      ` (${os.cpus().length} × ${os.cpus()[0].model}, Node ${process.version}; toposort ${versions.toposort}, dependency-graph ${versions['dependency-graph']})`,
  );
  if (edges !== EDGES) throw new Error(`built ${edges} edges, expected ${EDGES}`);

  // ---- correctness, once, untimed --------------------------------------------
  const results = Object.fromEntries(Object.entries(contenders).map(([n, f]) => [n, f(services)]));
  for (const [n, r] of Object.entries(results)) checkOrder(n, services, r.order);
  // Reference levels from a peer's order (longest path does not depend on which topological order).
  const deps = new Map(services.map((s) => [s.id, s.dependencies]));
  const ref = levelsOver(results['toposort (order)'].order, (id) => deps.get(id));
  checkLevels('ours', results.ours.levels, ref.level, N);
  checkLevels('toposort + levels', results['toposort + levels'].levels, ref.level, N);
  checkLevels('dependency-graph + levels', results['dependency-graph + levels'].levels, ref.level, N);
  console.log(`correctness: every order is topological; our ${results.ours.levels.length} levels equal the JS longest-path levels`);

  // ---- timing --------------------------------------------------------------
  const times = interleave(contenders, services, ROUNDS);
  const med = Object.fromEntries(Object.entries(times).map(([n, t]) => [n, median(t)]));
  const lo = Object.fromEntries(Object.entries(times).map(([n, t]) => [n, Math.min(...t)]));
  const hi = Object.fromEntries(Object.entries(times).map(([n, t]) => [n, Math.max(...t)]));
  console.log('\nmedian ms per plan (min-max); ratio = peer / ours, > 1x means ours is faster:');
  for (const n of Object.keys(contenders)) {
    const r = n === 'ours' ? '  (order + levels)' : `  (${ratio(med[n], med.ours)} ours)`;
    console.log(`  ${n.padEnd(28)} ${fmt(med[n]).padStart(8)} ms  [${fmt(lo[n])}-${fmt(hi[n])}]${r}`);
  }
  console.log(
    `(a) order only:     ours ${fmt(med.ours)} ms, toposort ${fmt(med['toposort (order)'])} ms (${ratio(med['toposort (order)'], med.ours)}),` +
      ` dependency-graph ${fmt(med['dependency-graph (order)'])} ms (${ratio(med['dependency-graph (order)'], med.ours)})`,
  );
  console.log(
    `(b) order + levels: ours ${fmt(med.ours)} ms, toposort ${fmt(med['toposort + levels'])} ms (${ratio(med['toposort + levels'], med.ours)}),` +
      ` dependency-graph ${fmt(med['dependency-graph + levels'])} ms (${ratio(med['dependency-graph + levels'], med.ours)})`,
  );

  // ---- cycle detection -----------------------------------------------------
  // Longest dependency chain: from a service on the last level down to level 0.
  const maxLevel = ref.levels.length - 1;
  const chain = [ref.levels[maxLevel][0]];
  while (ref.level.get(chain[chain.length - 1]) > 0) {
    const cur = chain[chain.length - 1];
    chain.push(deps.get(cur).find((d) => ref.level.get(d) === ref.level.get(cur) - 1));
  }
  const [top, root] = [chain[0], chain[chain.length - 1]];
  // One back edge: the root of the chain now depends on its top, closing a cycle through chain.length services.
  const cyclic = services.map((s) => (s.id === root ? { id: s.id, dependencies: [...s.dependencies, top] } : s));
  const errorOf = (f) => {
    try {
      f();
    } catch (e) {
      return e;
    }
    return null;
  };
  const detect = {
    ours: (svcs) => errorOf(() => planStartupOrder(svcs)),
    toposort: (svcs) => errorOf(() => toposort.array(svcs.map((s) => s.id), toposortEdges(svcs))),
    'dependency-graph': (svcs) => errorOf(() => depGraph(svcs).overallOrder()),
  };
  const cyc = {};
  for (const [n, f] of Object.entries(detect)) {
    const e = f(cyclic);
    if (!e) throw new Error(`${n}: no error for a graph with a cycle`);
    cyc[n] = { error: e.message };
  }
  const m = /Circular dependency detected: (.*)$/.exec(cyc.ours.error);
  if (!m) throw new Error(`ours: unexpected cycle error: ${cyc.ours.error}`);
  const oursPath = m[1].split(' → ');
  if (oursPath[0] !== oursPath[oursPath.length - 1]) throw new Error(`ours: cycle path does not close: ${m[1]}`);
  cyc.ours.cycleLength = checkCycle('ours', oursPath, cyclic);
  if (!oursPath.includes(top) || !oursPath.includes(root)) throw new Error(`ours: cycle path misses the back edge ${root} → ${top}`);
  const dgErr = detect['dependency-graph'](cyclic);
  if (!(dgErr instanceof DepGraphCycleError) || !Array.isArray(dgErr.cyclePath)) throw new Error(`dependency-graph: expected a DepGraphCycleError, got ${dgErr.message}`);
  // cyclePath is the DFS path up to the repeated service: a lead-in, then the cycle.
  const cp = dgErr.cyclePath;
  cyc['dependency-graph'].pathLength = cp.length;
  cyc['dependency-graph'].cycleLength = checkCycle('dependency-graph', cp.slice(cp.indexOf(cp[cp.length - 1])), cyclic);
  if (!/Cyclic dependency/.test(cyc.toposort.error)) throw new Error(`toposort: unexpected error ${cyc.toposort.error}`);

  const ctimes = interleave(detect, cyclic, ROUNDS);
  for (const n of Object.keys(detect)) cyc[n].medianMs = median(ctimes[n]);
  const short = (s) => (s.length > 110 ? `${s.slice(0, 60)} … ${s.slice(-45)}` : s);
  console.log(`\ncycle detection: the same graph + 1 back edge (${root} → ${top}) closing a cycle along its ${chain.length}-service longest chain; median ms to the error:`);
  for (const n of Object.keys(detect)) {
    const r = n === 'ours' ? '' : `  (${ratio(cyc[n].medianMs, cyc.ours.medianMs)} ours)`;
    console.log(`  ${n.padEnd(28)} ${fmt(cyc[n].medianMs).padStart(8)} ms${r}`);
  }
  console.log(`  ours names the whole path (${cyc.ours.cycleLength} services): ${short(cyc.ours.error)}`);
  const dg = cyc['dependency-graph'];
  console.log(`  dependency-graph DepGraphCycleError.cyclePath: ${dg.pathLength} ids, a ${dg.cycleLength}-service cycle after a ${dg.pathLength - dg.cycleLength - 1}-service lead-in`);
  console.log(`  toposort names one node: ${cyc.toposort.error}`);
  console.log(
    `cycle: ours ${fmt(cyc.ours.medianMs)} ms, toposort ${fmt(cyc.toposort.medianMs)} ms (${ratio(cyc.toposort.medianMs, cyc.ours.medianMs)}),` +
      ` dependency-graph ${fmt(cyc['dependency-graph'].medianMs)} ms (${ratio(cyc['dependency-graph'].medianMs, cyc.ours.medianMs)})`,
  );

  const out = {
    when: new Date().toISOString(),
    node: process.version,
    cpu: `${os.cpus().length} × ${os.cpus()[0].model}`,
    versions,
    services: N,
    edges,
    levels: results.ours.levels.length,
    rounds: ROUNDS,
    medianMs: med,
    minMs: lo,
    maxMs: hi,
    ratios: Object.fromEntries(Object.keys(med).filter((n) => n !== 'ours').map((n) => [n, med[n] / med.ours])),
    cycle: { backEdge: [root, top], chainLength: chain.length, ...cyc },
    seconds: (Date.now() - t0) / 1000,
  };
  if (!SMOKE) {
    const dir = path.join(__dirname, 'results');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'dag.json'), JSON.stringify(out, null, 2) + '\n');
    console.log('\nwrote benchmark/results/dag.json');
  }
  console.log(`JSON ${JSON.stringify({ medianMs: med, cycleMs: Object.fromEntries(Object.entries(cyc).map(([n, c]) => [n, c.medianMs])) })}`);
}

try {
  main();
} catch (e) {
  console.error(`benchmark/dag.js: FAILED: ${e.message}`);
  process.exit(1);
}
