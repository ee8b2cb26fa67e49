// @ts-check
'use strict';
/**
 * "Installs into another project": `npm pack` the package, install the
 * tarball (with express@5) into a scratch project under os.tmpdir(), and run
 * a CommonJS and an ESM consumer there that serve an Express route through
 * `withCircuitBreaker` and open a breaker.
 *
 * The pack runs with scripts ignored (no `prepack` native rebuild), so it
 * needs the build outputs to exist already: `npm test` builds them first.
 */
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFile, spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const PKG = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const nodeFiles = () => fs.readdirSync(ROOT).filter((f) => f.endsWith('.node'));

let scratch;
let tarball;
let platformTarball;
let packed;

/** napi-rs's name for this machine's platform package suffix (linux-x64-gnu, darwin-arm64, ...). */
function hostTriple() {
  if (process.platform === 'linux') {
    let musl = false;
    try { musl = fs.readFileSync('/usr/bin/ldd', 'utf8').includes('musl'); } catch { /* glibc */ }
    return `linux-${process.arch}-${musl ? 'musl' : 'gnu'}`;
  }
  return process.platform === 'win32' ? `win32-${process.arch}-msvc` : `${process.platform}-${process.arch}`;
}
const PLATFORM_PKG = `${PKG.name}-${hostTriple()}`;

/**
 * The environment for child npm/node processes. Under `npm test` npm exports
 * its own config (npm_config_prefix, npm_config_local_prefix, ...) pointing
 * at this repo; a child `npm install` honouring them would install into the
 * repo instead of the scratch project, so every npm_* variable except a few
 * harmless ones (cache, user config, registry, certificates, proxies) is dropped.
 */
function childEnv(extra = {}) {
  const keep = /^npm_config_(cache|userconfig|globalconfig|registry|cafile|ca|strict_ssl|proxy|https_proxy|noproxy|offline|prefer_offline)$/i;
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) && !keep.test(k)) continue;
    if (k === 'NODE_OPTIONS' || k === 'NODE_TEST_CONTEXT') continue; // don't leak the test runner into children
    env[k] = v;
  }
  env.npm_config_update_notifier = 'false';
  env.npm_config_fund = 'false';
  env.npm_config_audit = 'false';
  return { ...env, ...extra };
}

function run(cmd, args, { cwd, timeout, env = childEnv() }) {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, timeout, env, maxBuffer: 32 * 1024 * 1024, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      resolve({ code: error ? (error.code ?? 1) : 0, killed: !!error?.killed, signal: error?.signal ?? null, stdout, stderr });
    });
  });
}

function describe(r) {
  return `exit ${r.code}${r.killed ? ' (killed: timeout)' : ''}\n--- stdout ---\n${r.stdout.slice(-4000)}\n--- stderr ---\n${r.stderr.slice(-4000)}`;
}

/** `npm pack --json` output, tolerating anything npm prints before the JSON. */
function parsePackJson(stdout) {
  try {
    return JSON.parse(stdout);
  } catch {
    const i = stdout.search(/^\[\s*$/m);
    assert.ok(i >= 0, `no JSON in npm pack output:\n${stdout}`);
    return JSON.parse(stdout.slice(i));
  }
}

before(() => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'rc-pack-install-'));
});

after(() => {
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  if (tarball && !tarball.startsWith(scratch)) fs.rmSync(tarball, { force: true });
});

const BUILD_OUTPUTS = ['dist/circuit-breaker.js', 'dist/circuit-breaker.d.ts', 'dist/metrics.js', 'dist/metrics.d.ts', 'dist/index.js', 'index.js'];
const built = () => nodeFiles().length > 0 && BUILD_OUTPUTS.every((f) => fs.existsSync(path.join(ROOT, f)));

test('build outputs exist (so the pack below need not rebuild them)', () => {
  for (const f of BUILD_OUTPUTS) {
    assert.ok(fs.existsSync(path.join(ROOT, f)), `${f} exists (run npm run build first)`);
  }
  assert.ok(nodeFiles().length > 0, 'a native .node file exists at the repo root (run npm run build first)');
});

test('npm pack produces a tarball with dist/ and the loader, without sources or a binary; the platform package carries the binary', { timeout: 330_000 }, async () => {
  const dest = path.join(scratch, 'pack');
  fs.mkdirSync(dest);
  // With the build outputs present, scripts are ignored: `prepack` would only
  // rebuild them (a native release build with cargo). Without them, let
  // `prepack` build, which is slow.
  const ignoreScripts = built();
  const r = await run('npm', ['pack', '--json', '--pack-destination', dest], {
    cwd: ROOT,
    timeout: ignoreScripts ? 110_000 : 300_000,
    env: childEnv(ignoreScripts ? { npm_config_ignore_scripts: 'true' } : {}),
  });
  assert.equal(r.code, 0, describe(r));
  const [info] = parsePackJson(r.stdout);
  assert.equal(info.name, PKG.name);
  assert.equal(info.version, PKG.version);
  tarball = path.join(dest, info.filename);
  assert.ok(fs.existsSync(tarball), `${tarball} written`);

  // What npm says it packed, and what the tarball really holds.
  const listed = info.files.map((f) => f.path);
  const t = await run('tar', ['-tzf', tarball], { cwd: scratch, timeout: 30_000 });
  assert.equal(t.code, 0, describe(t));
  const inTar = t.stdout.split('\n').filter(Boolean).map((p) => p.replace(/^package\//, ''));
  for (const files of [listed, inTar]) {
    for (const f of ['package.json', 'dist/circuit-breaker.js', 'dist/circuit-breaker.d.ts', 'dist/metrics.js', 'dist/metrics.d.ts', 'dist/index.js', 'dist/index.d.ts', 'dist/native.js', 'index.js', 'index.d.ts']) {
      assert.ok(files.includes(f), `${f} in the tarball (has: ${files.join(', ')})`);
    }
    for (const f of files) {
      assert.ok(!/^(src|target|lib|__test__|benchmark|demo|npm|node_modules|\.tmp)\//.test(f), `${f} must not be packed`);
      assert.ok(!/^(Cargo\.(toml|lock)|build\.rs|tsconfig\.json)$/.test(f), `${f} must not be packed`);
    }
  }
  // The binary comes from the platform package (an optional dependency), not the main tarball.
  assert.deepEqual(inTar.filter((f) => f.endsWith('.node')), [], 'no native addon in the main tarball');
  assert.equal(JSON.parse(fs.readFileSync(path.join(ROOT, 'npm', hostTriple(), 'package.json'), 'utf8')).version, PKG.version, `${PLATFORM_PKG} at the main version`);
  packed = inTar;

  // This machine's platform package, as `napi prepublish` publishes it: npm/<triple>/ plus the binary built here.
  const dir = path.join(scratch, 'platform-pkg');
  fs.cpSync(path.join(ROOT, 'npm', hostTriple()), dir, { recursive: true });
  const binary = `reliability-core.${hostTriple()}.node`;
  fs.copyFileSync(path.join(ROOT, binary), path.join(dir, binary));
  const p = await run('npm', ['pack', '--json', '--pack-destination', dest], { cwd: dir, timeout: 60_000 });
  assert.equal(p.code, 0, describe(p));
  const [pinfo] = parsePackJson(p.stdout);
  assert.equal(pinfo.name, PLATFORM_PKG);
  assert.ok(pinfo.files.some((f) => f.path === binary), `${binary} in the platform tarball`);
  platformTarball = path.join(dest, pinfo.filename);
});

test('the tarball installs into a fresh project and works from CommonJS and ESM', { timeout: 240_000 }, async (t) => {
  assert.ok(tarball, 'the pack test produced a tarball');
  const app = path.join(scratch, 'consumer');
  fs.mkdirSync(app);
  fs.writeFileSync(
    path.join(app, 'package.json'),
    JSON.stringify({ name: 'rc-consumer', version: '1.0.0', private: true, license: 'MIT' }, null, 2) + '\n',
  );

  const installArgs = ['install', platformTarball, tarball, 'express@5', '--no-audit', '--no-fund', '--prefix', app];
  let r = await run('npm', [...installArgs, '--offline'], { cwd: app, timeout: 100_000 });
  if (r.code !== 0) {
    t.diagnostic(`offline install failed, retrying online:\n${describe(r)}`);
    r = await run('npm', installArgs, { cwd: app, timeout: 120_000 });
  }
  assert.equal(r.code, 0, describe(r));

  const installed = fs.realpathSync(path.join(app, 'node_modules', ...PKG.name.split('/')));
  assert.ok(fs.existsSync(path.join(installed, 'dist', 'circuit-breaker.js')));
  const platformDir = path.join(app, 'node_modules', ...PLATFORM_PKG.split('/'));
  assert.ok(fs.existsSync(path.join(platformDir, `reliability-core.${hostTriple()}.node`)), `${PLATFORM_PKG} installed with its binary`);
  assert.deepEqual(fs.readdirSync(installed).filter((f) => f.endsWith('.node')), [], 'the main package has no binary of its own');
  assert.equal(JSON.parse(fs.readFileSync(path.join(installed, 'package.json'), 'utf8')).version, PKG.version);
  const consumerPkg = JSON.parse(fs.readFileSync(path.join(app, 'package.json'), 'utf8'));
  assert.ok(consumerPkg.dependencies?.[PKG.name], 'the dependency was saved in the consumer, not elsewhere');
  assert.match(require(path.join(app, 'node_modules', 'express', 'package.json')).version, /^5\./);
  // The install went into the scratch project, not into the repo.
  const repoPkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  assert.ok(!repoPkg.dependencies?.[PKG.name], 'the repo did not gain a dependency on itself');
  assert.ok(!fs.existsSync(path.join(ROOT, 'node_modules', ...PKG.name.split('/'))), 'nothing installed into the repo');

  // A startup graph for the dag-loader: resolved from the consumer's working directory.
  fs.mkdirSync(path.join(app, 'deploy'));
  fs.writeFileSync(
    path.join(app, 'deploy', 'graph.json'),
    JSON.stringify({
      services: [
        { id: 'db', name: 'DB', critical: true, initModule: 'svc', initFunction: 'initDb' },
        { id: 'api', name: 'API', dependencies: ['db'], initModule: './svc.js', initFunction: 'initApi' },
        { id: 'extra', name: 'Extra', conditional: 'NOT_SET_HERE' },
      ],
    }),
  );
  fs.writeFileSync(path.join(app, 'svc.js'), 'exports.initDb = async () => { globalThis.__started = (globalThis.__started || []).concat("db"); };\nexports.initApi = () => { globalThis.__started.push("api"); };\n');
  fs.writeFileSync(path.join(app, 'consumer.cjs'), CJS_CONSUMER);
  fs.writeFileSync(path.join(app, 'consumer.mjs'), ESM_CONSUMER);

  for (const script of ['consumer.cjs', 'consumer.mjs']) {
    const c = await run(process.execPath, [script], { cwd: app, timeout: 30_000 });
    assert.equal(c.code, 0, `${script}: ${describe(c)}`);
    const lines = c.stdout.trim().split('\n');
    const out = JSON.parse(lines[lines.length - 1]);
    t.diagnostic(`${script}: ${lines[lines.length - 1]}`);
    const name = script === 'consumer.cjs' ? 'consumer-cjs' : 'consumer-esm';

    // Loaded from the installed copy, not from the repo.
    assert.ok(out.resolved.startsWith(installed + path.sep), `${script} resolved ${out.resolved}`);
    assert.ok(out.nativeResolved.startsWith(installed + path.sep), `${script} native ${out.nativeResolved}`);
    assert.deepEqual(out.exportsSeen, ['CircuitBreaker', 'CircuitOpenError', 'getCircuitBreakerRegistry', 'withCircuitBreaker']);
    assert.equal(out.rootSameAsSubpath, true, 'the package root re-exports the circuit-breaker module');

    assert.equal(out.healthy.status, 200);
    assert.deepEqual(out.healthy.body, { hello: 'world', via: name });
    assert.deepEqual(out.failing.map((f) => f.status), [500, 500, 500, 503, 503]);
    assert.equal(out.failing[0].body.error, 'downstream down');
    assert.equal(out.failing[3].body.error, `Circuit breaker ${name} is OPEN (too many failures)`);
    assert.equal(out.failing[3].body.code, 'ERR_CIRCUIT_OPEN');
    assert.equal(out.failing[3].body.isOpenError, true);
    assert.equal(out.downstreamCalls, 1 + 3, 'an open breaker does not call the route\'s dependency');
    assert.deepEqual(out.state, { name, state: 'open', failureCount: 3 });
    assert.deepEqual(out.events, ['open', 'close'], 'opened by failures, closed by reset()');
    assert.equal(out.afterReset.status, 200);
    // Metrics from the installed package: 1 + 5 + 1 requests on GET /hello, 5 of them 5xx (3 failures, 2 rejections).
    assert.deepEqual(out.metrics, { helloCount: 7, hello5xx: 5, goldenTotal: 7, promHasRoute: true });
    // Startup DAG and health gates from the installed package.
    // Traffic shaping, watchdogs, the observability router and the dashboard's assets, installed.
    assert.deepEqual(out.more, { stacked: { cohort: 'new', dimmer: 1, own: false, header: 'new', count: 1 }, routed: true, aiCall: 42, summaryKeys: ['goldenSignals', 'watchdogs', 'circuitBreakers', 'rollouts', 'healthGates', 'startupDAG', 'ops'], dashboard: true });
    assert.deepEqual(out.startup, { loaded: ['db', 'api'], skipped: ['extra'], order: ['db', 'api'], started: ['db', 'api'], outcome: 'ready', readyBefore: 503, readyAfter: 200, live: 200 });
  }
});

test('the incident-response bin runs from the installed package', { timeout: 60_000 }, async () => {
  assert.ok(scratch, 'the install test ran');
  const app = path.join(scratch, 'consumer');
  const bin = path.join(app, 'node_modules', '.bin', 'incident-response');
  assert.ok(fs.existsSync(bin), 'npm linked the bin');
  const env = childEnv({ RELIABILITY_STATE_FILE: path.join(app, 'ops-state.json') });
  // Local mode acts through the server that reads the state file: one from the installed package.
  const server = spawn(process.execPath, ['-e', `require('${PKG.name}/ops').getOps(); console.log('READY'); setInterval(() => {}, 1000);`], { cwd: app, env, stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('the consumer server did not start')), 20_000);
      server.stdout.on('data', (d) => String(d).includes('READY') && (clearTimeout(t), resolve()));
      server.once('exit', (c) => reject(new Error(`the consumer server exited with ${c}`)));
    });
    let r = await run(bin, ['safe-mode', 'enable', '--reason', 'from the installed bin'], { cwd: app, timeout: 30_000, env });
    assert.equal(r.code, 0, describe(r));
    assert.match(r.stdout, new RegExp(`safe-mode: changed, applied by server pid ${server.pid}`));
    r = await run(bin, ['status', '--json'], { cwd: app, timeout: 30_000, env });
    assert.equal(r.code, 0, describe(r));
    assert.equal(JSON.parse(r.stdout).safeMode.reason, 'from the installed bin');
    r = await run(bin, ['nope'], { cwd: app, timeout: 30_000, env });
    assert.equal(r.code, 2);
  } finally {
    server.kill('SIGKILL');
  }
});

test('the packed file list was checked', () => {
  assert.ok(Array.isArray(packed) && packed.length > 0);
});

// ---- consumer scripts written into the scratch project -----------------------

const CONSUMER_BODY = `
configureCircuitBreakers({ logger: null });
configureStartupLogging({ logger: null });

async function main(name, resolved, nativeResolved, rootSameAsSubpath, exportsSeen) {
  let failing = false;
  let downstreamCalls = 0;
  const events = [];
  const app = express();
  app.use(metricsMiddleware);
  app.use(createMetricsRouter());
  app.use(createHealthRouter());
  app.use('/api/observability', createObservabilityRouter());
  app.use('/stacked', reliabilityStack({ rollouts: { '/r': 'stacked-v2' }, cohortHeader: 'x-rollout-cohort' }));
  app.get('/stacked/r', (req, res) => res.json({ cohort: req.rollout.cohort, dimmer: req.reliability.dimmer, own: Object.keys(req).includes('rollout') }));
  app.get('/hello', async (req, res) => {
    try {
      const body = await withCircuitBreaker(
        name,
        async () => {
          downstreamCalls++;
          if (failing) throw new Error('downstream down');
          return { hello: 'world', via: name };
        },
        { failureThreshold: 3, resetTimeout: 60000, retryOptions: { maxRetries: 0 } },
      );
      res.json(body);
    } catch (err) {
      res.status(err instanceof CircuitOpenError ? 503 : 500).json({
        error: err.message,
        code: err.code ?? null,
        isOpenError: err instanceof CircuitOpenError,
      });
    }
  });
  const server = await new Promise((resolve, reject) => {
    const s = app.listen(0, '127.0.0.1');
    s.once('listening', () => resolve(s));
    s.once('error', reject);
  });
  const base = 'http://127.0.0.1:' + server.address().port;
  const get = async (p) => {
    const r = await fetch(base + p, { signal: AbortSignal.timeout(5000) });
    return { status: r.status, body: await r.json() };
  };
  try {
    const healthy = await get('/hello');
    for (const e of ['open', 'close', 'halfOpen']) getCircuitBreakerRegistry().get(name).on(e, () => events.push(e));
    failing = true;
    const failing_ = [];
    for (let i = 0; i < 5; i++) failing_.push(await get('/hello'));
    const state = getCircuitBreakerRegistry().getAll().find((b) => b.name === name);
    const callsBeforeReset = downstreamCalls;
    getCircuitBreakerRegistry().get(name).reset();
    failing = false;
    const afterReset = await get('/hello');
    const golden = await get('/api/observability/golden-signals');
    const prom = await (await fetch(base + '/metrics', { signal: AbortSignal.timeout(5000) })).text();
    const metrics = {
      helloCount: getEndpointMetrics('GET /hello').count,
      hello5xx: getEndpointMetrics('/hello').status5xx,
      goldenTotal: golden.body.traffic.totalRequests,
      promHasRoute: prom.includes('http_requests_total{method="GET",route="/hello",status_class="5xx"} 5'),
    };
    const load = await loadServicesFromGraph();
    const report = await getStartupDAG().initialize();
    getHealthGates().registerGate({ serviceId: 'svc', critical: true, requiredPasses: 1, check: () => getStartupDAG().areCriticalServicesReady() });
    const readyBefore = (await get('/health/ready')).status;
    await getHealthGates().checkAllGates();
    getTrafficShaping().startRollout('consumer-v2', { percentage: 100 });
    const summary = (await get('/api/observability/summary')).body;
    const page = await fetch(base + '/api/observability/dashboard/', { signal: AbortSignal.timeout(5000) });
    const pageText = await page.text();
    const chart = await fetch(base + '/api/observability/dashboard/uPlot.iife.min.js', { signal: AbortSignal.timeout(5000) });
    await chart.arrayBuffer();
    getTrafficShaping().startRollout('stacked-v2', { percentage: 100 });
    const stackedRes = await fetch(base + '/stacked/r', { signal: AbortSignal.timeout(5000) });
    const stacked = { ...(await stackedRes.json()), header: stackedRes.headers.get('x-rollout-cohort'), count: getEndpointMetrics('GET /stacked/r').count };
    const more = {
      stacked,
      routed: getTrafficShaping().shouldRoute('consumer-v2', 'someone'),
      aiCall: await trackAiCall('consumer-ai', async () => 42),
      summaryKeys: ['goldenSignals', 'watchdogs', 'circuitBreakers', 'rollouts', 'healthGates', 'startupDAG', 'ops'].filter((k) => k in summary),
      dashboard: page.status === 200 && pageText.includes('Ops dashboard') && chart.status === 200,
    };
    getWatchdogs().close();
    const startup = {
      loaded: load.loaded, skipped: load.skipped.map((s) => s.id), order: getStartupDAG().topologicalSort(),
      started: globalThis.__started, outcome: report.outcome, readyBefore,
      readyAfter: (await get('/health/ready')).status, live: (await get('/health/live')).status,
    };
    console.log(JSON.stringify({
      resolved, nativeResolved, rootSameAsSubpath, exportsSeen,
      healthy, failing: failing_, downstreamCalls: callsBeforeReset, state, events, afterReset, metrics, startup, more,
    }));
  } finally {
    server.close();
    server.closeAllConnections();
  }
}
`;

const CJS_CONSUMER = `'use strict';
const express = require('express');
const cb = require('${PKG.name}/circuit-breaker');
const { getCircuitBreakerRegistry, withCircuitBreaker, configureCircuitBreakers, CircuitOpenError } = cb;
const { metricsMiddleware, createMetricsRouter, getEndpointMetrics } = require('${PKG.name}/metrics');
const { loadServicesFromGraph, getStartupDAG, configureStartupLogging } = require('${PKG.name}/dag-loader');
const { getHealthGates, createHealthRouter } = require('${PKG.name}/health-gates');
const { getTrafficShaping } = require('${PKG.name}/traffic-shaping');
const { reliabilityStack } = require('${PKG.name}/ops');
const { createObservabilityRouter } = require('${PKG.name}/observability');
const { trackAiCall, getWatchdogs } = require('${PKG.name}/watchdogs');
${CONSUMER_BODY}
const exportsSeen = ['CircuitBreaker', 'CircuitOpenError', 'getCircuitBreakerRegistry', 'withCircuitBreaker'].filter((k) => typeof cb[k] === 'function');
main(
  'consumer-cjs',
  require.resolve('${PKG.name}/circuit-breaker'),
  require.resolve('${PKG.name}/native'),
  require('${PKG.name}').withCircuitBreaker === withCircuitBreaker,
  exportsSeen,
).catch((err) => {
  console.error(err);
  process.exit(1);
});
`;

const ESM_CONSUMER = `import express from 'express';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import * as root from '${PKG.name}';
import * as cb from '${PKG.name}/circuit-breaker';
import { getCircuitBreakerRegistry, withCircuitBreaker, configureCircuitBreakers, CircuitOpenError, CircuitBreaker } from '${PKG.name}/circuit-breaker';
import { metricsMiddleware, createMetricsRouter, getEndpointMetrics } from '${PKG.name}/metrics';
import { loadServicesFromGraph, getStartupDAG, configureStartupLogging } from '${PKG.name}/dag-loader';
import { getHealthGates, createHealthRouter } from '${PKG.name}/health-gates';
import { getTrafficShaping } from '${PKG.name}/traffic-shaping';
import { reliabilityStack } from '${PKG.name}/ops';
import { createObservabilityRouter } from '${PKG.name}/observability';
import { trackAiCall, getWatchdogs } from '${PKG.name}/watchdogs';
${CONSUMER_BODY}
const require = createRequire(import.meta.url);
const exportsSeen = Object.entries({ CircuitBreaker, CircuitOpenError, getCircuitBreakerRegistry, withCircuitBreaker })
  .filter(([, v]) => typeof v === 'function')
  .map(([k]) => k);
await main(
  'consumer-esm',
  fileURLToPath(import.meta.resolve('${PKG.name}/circuit-breaker')),
  require.resolve('${PKG.name}/native'),
  root.withCircuitBreaker === withCircuitBreaker && cb.withCircuitBreaker === withCircuitBreaker,
  exportsSeen,
);
`;
