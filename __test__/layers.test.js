// Imports in lib/ go one way: native binding -> shared utilities -> domain
// modules -> integrations -> Express adapters -> dashboard/React/CLI -> the
// package root and subpath entries. No cycles, no module imports a layer
// above its own, and no `require(` dodges either (only the documented ones:
// the binding itself, optional peer dependencies, user files).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const LIB = path.join(__dirname, '..', 'lib');

// Every file of lib/ has a layer; a new file must be placed here.
const LAYERS = [
  ['binding', ['load-binding.ts', 'native.ts']],
  // Shared utilities: request bookkeeping, auth, patterns and text helpers that know no domain module.
  ['shared', ['test-runner.ts', 'process-metrics.ts', 'errors.ts', 'ops-peek.ts', 'ops-state-file.ts', 'redis-values.ts', 'express/tracker.ts', 'express/route-labels.ts', 'express/accessors.ts', 'express/endpoints.ts', 'express/patterns.ts', 'express/requests.ts', 'express/express-of.ts', 'express/types.ts', 'express/auth.ts']],
  ['domain', ['retry.ts', 'circuit-breaker.ts', 'metrics.ts', 'startup-dag.ts', 'health-gates.ts', 'traffic-shaping.ts', 'watchdogs.ts', 'ops.ts']],
  ['integrations', ['redis.ts', 'db-circuit-breaker.ts', 'migrations.ts', 'queue-init.ts', 'dag-loader.ts']],
  ['express', ['express/ops.ts', 'express/stack.ts', 'express/health.ts', 'express/index.ts', 'observability.ts', 'dashboard.ts']],
  // The testing kit reads every domain module, as a tool does.
  ['ui', ['react.ts', 'cli/incident-response.ts', 'testing.ts']],
  ['root', ['index.ts', 'entries/ops.ts', 'entries/health-gates.ts']],
];
const RANK = new Map();
LAYERS.forEach(([name, files], i) => files.forEach((f) => RANK.set(f, { i, name })));

// `require(` allowed where a static import cannot be used, and why.
const ALLOWED_REQUIRES = {
  'native.ts': 'the addon itself (index.js picks the platform binary)',
  'react.ts': 'react is an optional peer dependency',
  'redis.ts': 'ioredis is an optional peer dependency',
  'dag-loader.ts': "the user's own service modules and node:fs in a sync probe",
  'express/express-of.ts': 'the text of an error message that tells the user how to pass express',
};

function tsFiles(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...tsFiles(p));
    else if (/\.ts$/.test(e.name) && !/\.d\.ts$/.test(e.name)) out.push(p);
  }
  return out;
}

const rel = (f) => path.relative(LIB, f).split(path.sep).join('/');
const code = (src) => src.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');

/** Value imports (not `import type`), re-exports and require()s of other lib/ files. */
function edges(file) {
  const src = code(fs.readFileSync(file, 'utf8'));
  const out = new Set();
  const re = /(?:^|\n)\s*(import|export)\s+(type\s+)?[^'"]*?from\s+['"](\.{1,2}\/[^'"]+)['"]|(?:^|\n)\s*import\s+['"](\.{1,2}\/[^'"]+)['"]|require\(\s*['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]/g;
  for (const m of src.matchAll(re)) {
    if (m[2]) continue; // `import type` / `export type`: erased, no load-time edge
    const spec = m[3] || m[4] || m[5] || m[6];
    const b = path.resolve(path.dirname(file), spec);
    for (const c of [b + '.ts', path.join(b, 'index.ts')]) if (fs.existsSync(c)) out.add(rel(c));
  }
  return out;
}

function graph() {
  const g = new Map();
  for (const f of tsFiles(LIB)) g.set(rel(f), edges(f));
  return g;
}

function cycles(g) {
  const seen = new Map(); // 1 on the stack, 2 done
  const found = [];
  const stack = [];
  const visit = (v) => {
    seen.set(v, 1);
    stack.push(v);
    for (const w of g.get(v) || []) {
      if (seen.get(w) === 1) found.push([...stack.slice(stack.indexOf(w)), w].join(' -> '));
      else if (!seen.has(w)) visit(w);
    }
    stack.pop();
    seen.set(v, 2);
  };
  for (const v of g.keys()) if (!seen.has(v)) visit(v);
  return found;
}

test('every lib/ file has a layer', () => {
  const missing = [...graph().keys()].filter((f) => !RANK.has(f));
  assert.deepEqual(missing, [], 'place new files in LAYERS of __test__/layers.test.js');
});

test('no import cycles in lib/', () => {
  assert.deepEqual(cycles(graph()), []);
});

test('imports only point down the layers (a domain module never imports an Express adapter)', () => {
  const up = [];
  for (const [f, deps] of graph()) {
    const from = RANK.get(f);
    if (!from) continue;
    for (const d of deps) {
      const to = RANK.get(d);
      if (to && to.i > from.i) up.push(`${f} (${from.name}) imports ${d} (${to.name})`);
    }
  }
  assert.deepEqual(up, []);
});

test('no require() in lib/ except the documented ones', () => {
  const found = [];
  for (const f of tsFiles(LIB)) {
    const r = rel(f);
    if (ALLOWED_REQUIRES[r]) continue;
    const src = code(fs.readFileSync(f, 'utf8'));
    for (const m of src.matchAll(/\brequire\(/g)) found.push(`${r}:${src.slice(0, m.index).split('\n').length}`);
  }
  assert.deepEqual(found, []);
});

test('the ./express subpath exports the adapters, and the old subpaths still do', () => {
  const ex = require('@dreamnet/reliability-core/express');
  for (const k of ['reliabilityStack', 'reliabilityMiddleware', 'createOpsRouter', 'createHealthRouter', 'createMetricsRouter', 'createObservabilityRouter', 'createDashboardRouter', 'trafficShapingMiddleware', 'createGracefulShutdown', 'checkToken', 'ENDPOINTS']) {
    assert.equal(typeof ex[k] === 'function' || Array.isArray(ex[k]) || typeof ex[k] === 'object', true, `express exports ${k}`);
  }
  const ops = require('@dreamnet/reliability-core/ops');
  const gates = require('@dreamnet/reliability-core/health-gates');
  const root = require('@dreamnet/reliability-core');
  assert.equal(ops.reliabilityStack, ex.reliabilityStack);
  assert.equal(ops.createOpsRouter, ex.createOpsRouter);
  assert.equal(gates.createHealthRouter, ex.createHealthRouter);
  assert.equal(root.reliabilityStack, ex.reliabilityStack);
  assert.equal(typeof ops.OpsControls, 'function');
  assert.equal(typeof gates.HealthGates, 'function');
});
