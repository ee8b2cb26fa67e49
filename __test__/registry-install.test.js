'use strict';
/**
 * Installs the package as a user does (issue 23): a local npm registry
 * (verdaccio 6.8.x on 127.0.0.1, other packages proxied to the public
 * registry), this machine's platform package and the main package published
 * to it, then, in a fresh project with no Rust toolchain on PATH:
 *   npm install @dreamnet/reliability-core express   (and the same with pnpm 10)
 * and a script that mounts the stack, opens a breaker, serves /metrics, and
 * `npx incident-response --help`; the script also runs under Node 18 and 22
 * (the `node` npm package's runtimes) besides this Node. Prints the install
 * size (`du -sh node_modules/@dreamnet`) and the `npm install` time.
 *
 * verdaccio is installed once into ~/.cache/reliability-core-test/verdaccio
 * (outside the repo, so its ~330 packages stay out of the lockfile). The
 * platform package carries the binary `npm run build:all` made (glibc 2.17),
 * or the local build when build:all could not make one.
 */
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFile, spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const PKG = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const VERDACCIO_DIR = path.join(os.homedir(), '.cache', 'reliability-core-test', 'verdaccio');
const VERDACCIO_BIN = path.join(VERDACCIO_DIR, 'node_modules', '.bin', 'verdaccio');

function hostTriple() {
  if (process.platform === 'linux') {
    let musl = false;
    try { musl = fs.readFileSync('/usr/bin/ldd', 'utf8').includes('musl'); } catch { /* glibc */ }
    return `linux-${process.arch}-${musl ? 'musl' : 'gnu'}`;
  }
  return process.platform === 'win32' ? `win32-${process.arch}-msvc` : `${process.platform}-${process.arch}`;
}
const TRIPLE = hostTriple();
const PLATFORM_PKG = `${PKG.name}-${TRIPLE}`;

/** PATH without any directory that holds cargo or rustc: the user has no Rust. */
function pathWithoutRust() {
  return (process.env.PATH || '').split(path.delimiter).filter((d) => d && !['cargo', 'rustc', 'rustup'].some((b) => fs.existsSync(path.join(d, b)))).join(path.delimiter);
}

/** A child environment: none of npm's own npm_* config (it points at this repo), no Rust, no test-runner leaks. */
function childEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) || /^(NODE_OPTIONS|NODE_TEST_CONTEXT|CARGO|CARGO_HOME|RUSTUP_HOME|RUSTUP_TOOLCHAIN|NAPI_RS_NATIVE_LIBRARY_PATH)$/.test(k)) continue;
    env[k] = v;
  }
  return { ...env, PATH: pathWithoutRust(), npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false', ...extra };
}

function run(cmd, args, { cwd, timeout, env = childEnv() }) {
  const t0 = Date.now();
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, timeout, env, maxBuffer: 32 * 1024 * 1024, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      resolve({ code: error ? (error.code ?? 1) : 0, killed: !!error?.killed, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}
const describe = (r) => `exit ${r.code}${r.killed ? ' (killed: timeout)' : ''}\n--- stdout ---\n${r.stdout.slice(-3000)}\n--- stderr ---\n${r.stderr.slice(-3000)}`;

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

let scratch;
let registry;
let verdaccio;
const figures = {};

before(async () => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'rc-registry-'));
  if (!fs.existsSync(VERDACCIO_BIN)) {
    fs.mkdirSync(VERDACCIO_DIR, { recursive: true });
    if (!fs.existsSync(path.join(VERDACCIO_DIR, 'package.json'))) fs.writeFileSync(path.join(VERDACCIO_DIR, 'package.json'), '{"private":true}\n');
    const r = await run('npm', ['install', '--no-audit', '--no-fund', 'verdaccio@~6.8.0'], { cwd: VERDACCIO_DIR, timeout: 300_000 });
    assert.equal(r.code, 0, `installing verdaccio: ${describe(r)}`);
  }
  const port = await freePort();
  registry = `http://127.0.0.1:${port}/`;
  const storage = path.join(scratch, 'storage');
  fs.mkdirSync(storage);
  const config = path.join(scratch, 'verdaccio.yaml');
  fs.writeFileSync(
    config,
    [
      `storage: ${storage}`,
      'auth:',
      '  htpasswd:',
      `    file: ${path.join(scratch, 'htpasswd')}`,
      'uplinks:',
      '  npmjs:',
      '    url: https://registry.npmjs.org/',
      '    timeout: 60s',
      'packages:',
      // Ours come only from here: never proxied, so nothing on the public registry can stand in.
      "  '@dreamnet/*':",
      '    access: $all',
      '    publish: $authenticated',
      "  '**':",
      '    access: $all',
      '    publish: $authenticated',
      '    proxy: npmjs',
      'log: { type: stdout, format: pretty, level: warn }',
      '',
    ].join('\n'),
  );
  verdaccio = spawn(process.execPath, [VERDACCIO_BIN, '--config', config, '--listen', `127.0.0.1:${port}`], { cwd: scratch, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  verdaccio.stdout.on('data', (d) => (log += d));
  verdaccio.stderr.on('data', (d) => (log += d));
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const r = await fetch(`${registry}-/ping`);
      if (r.ok) break;
    } catch { /* not up yet */ }
    assert.ok(Date.now() < deadline && verdaccio.exitCode === null, `verdaccio did not start: ${log}`);
    await new Promise((r) => setTimeout(r, 300));
  }
  // A publisher account (verdaccio's htpasswd creates it on first login).
  const user = 'publisher';
  const res = await fetch(`${registry}-/user/org.couchdb.user:${user}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: user, password: require('node:crypto').randomBytes(32).toString('hex') }),
  });
  const body = await res.text();
  assert.equal(res.status, 201, body);
  const { token } = JSON.parse(body);
  const host = registry.replace(/^http:/, '');
  fs.writeFileSync(path.join(scratch, 'publish.npmrc'), `registry=${registry}\n${host}:_authToken=${token}\n`);
});

after(async () => {
  if (verdaccio && verdaccio.exitCode === null) {
    const exited = new Promise((r) => verdaccio.once('exit', r));
    verdaccio.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000).unref())]);
    if (verdaccio.exitCode === null) verdaccio.kill('SIGKILL');
  }
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  if (Object.keys(figures).length) console.log(`# registry-install figures: ${JSON.stringify(figures)}`);
});

const publishEnv = () => childEnv({ npm_config_userconfig: path.join(scratch, 'publish.npmrc'), npm_config_cache: path.join(scratch, 'publish-cache') });

test('publish the platform package and the main package to the local registry', { timeout: 180_000 }, async () => {
  // The platform package as `napi prepublish` publishes it: npm/<triple>/ with its binary.
  const dir = path.join(scratch, 'platform');
  fs.cpSync(path.join(ROOT, 'npm', TRIPLE), dir, { recursive: true });
  const binary = `reliability-core.${TRIPLE}.node`;
  if (!fs.existsSync(path.join(dir, binary))) fs.copyFileSync(path.join(ROOT, binary), path.join(dir, binary));
  let r = await run('npm', ['publish', '--registry', registry, '--access', 'public'], { cwd: dir, timeout: 60_000, env: publishEnv() });
  assert.equal(r.code, 0, describe(r));

  // The main package: packed without scripts (dist/ is built; prepack would rebuild the addon).
  r = await run('npm', ['pack', '--ignore-scripts', '--pack-destination', scratch], { cwd: ROOT, timeout: 120_000, env: publishEnv() });
  assert.equal(r.code, 0, describe(r));
  const tarball = path.join(scratch, r.stdout.trim().split('\n').pop());
  // What `napi prepublish` (the package's prepublishOnly) does to the manifest:
  // one optional dependency per napi target, at the main version. The repo's
  // package.json has none, so `npm ci` works before they are on the registry.
  const { parseTriple } = await import('@napi-rs/cli');
  const staged = path.join(scratch, 'main');
  fs.mkdirSync(staged);
  r = await run('tar', ['-xzf', tarball, '-C', staged], { cwd: scratch, timeout: 30_000 });
  assert.equal(r.code, 0, describe(r));
  const manifestPath = path.join(staged, 'package', 'package.json');
  const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
  manifest.optionalDependencies = Object.fromEntries(PKG.napi.targets.map((t) => [`${PKG.name}-${parseTriple(t).platformArchABI}`, PKG.version]));
  fs.writeFileSync(manifestPath, JSON.stringify(manifest, null, 2) + '\n');
  r = await run('npm', ['publish', '--registry', registry, '--access', 'public', '--ignore-scripts'], { cwd: path.join(staged, 'package'), timeout: 60_000, env: publishEnv() });
  assert.equal(r.code, 0, describe(r));

  const meta = await (await fetch(`${registry}${encodeURIComponent(PKG.name).replace('%40', '@')}`)).json();
  assert.equal(meta['dist-tags'].latest, PKG.version);
  assert.equal(meta.versions[PKG.version].optionalDependencies[PLATFORM_PKG], PKG.version);
});

/** The consumer script: mounts the stack, opens a breaker, serves /metrics; prints one JSON line. */
const CONSUMER = `
const express = require('express');
const { withCircuitBreaker, getCircuitBreakerRegistry, configureCircuitBreakers } = require('@dreamnet/reliability-core/circuit-breaker');
const { metricsMiddleware, createMetricsRouter } = require('@dreamnet/reliability-core/metrics');
const { createHealthRouter } = require('@dreamnet/reliability-core/health-gates');
const { observabilityRouter } = require('@dreamnet/reliability-core/observability');
const { createOpsRouter, reliabilityMiddleware } = require('@dreamnet/reliability-core/ops');
configureCircuitBreakers({ logger: null });
const app = express();
app.use(metricsMiddleware);
app.use(createMetricsRouter());
app.use(createHealthRouter());
app.use('/api/observability', observabilityRouter);
app.use('/api/ops', createOpsRouter());
app.use(reliabilityMiddleware());
app.get('/dep', async (req, res) => {
  try {
    await withCircuitBreaker('dep', async () => { throw new Error('down'); }, { failureThreshold: 2, resetTimeout: 60000, retryOptions: { maxRetries: 0 } });
  } catch (e) { res.status(e.code === 'ERR_CIRCUIT_OPEN' ? 503 : 500).json({ code: e.code || null }); }
});
const server = app.listen(0, '127.0.0.1', async () => {
  const base = 'http://127.0.0.1:' + server.address().port;
  const statuses = [];
  for (let i = 0; i < 3; i++) statuses.push((await fetch(base + '/dep')).status);
  const state = getCircuitBreakerRegistry().get('dep').getState();
  const metrics = await fetch(base + '/metrics');
  const text = await metrics.text();
  const live = (await fetch(base + '/health/live')).status;
  console.log(JSON.stringify({ node: process.versions.node, statuses, state, metricsStatus: metrics.status, metricsHasDep: text.includes('/dep'), live,
    binary: require.resolve('${PLATFORM_PKG}', { paths: [require('path').dirname(require.resolve('@dreamnet/reliability-core/package.json'))] }) }));
  server.close();
  process.exit(0);
});
`;

function consumerProject(name) {
  const app = path.join(scratch, name);
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: `rc-${name}`, version: '1.0.0', private: true, license: 'MIT' }, null, 2) + '\n');
  // Only the local registry, with a cache of its own: what gets installed comes from there.
  fs.writeFileSync(path.join(app, '.npmrc'), `registry=${registry}\n`);
  fs.writeFileSync(path.join(app, 'consumer.js'), CONSUMER);
  return app;
}
const appEnv = (app) => childEnv({ npm_config_userconfig: path.join(app, '.npmrc'), npm_config_cache: path.join(app, '.npm-cache'), npm_config_store_dir: path.join(app, '.pnpm-store') });

function checkConsumer(out, app) {
  assert.deepEqual(out.statuses, [500, 500, 503], 'two failures open the breaker; the third call is rejected');
  assert.equal(out.state.state, 'open');
  assert.equal(out.metricsStatus, 200);
  assert.equal(out.metricsHasDep, true, '/metrics reports the route');
  assert.equal(out.live, 200);
  assert.ok(fs.realpathSync(out.binary).startsWith(fs.realpathSync(app)), `the binary comes from the installed platform package (${out.binary})`);
}

async function runConsumer(app, t, cmd = process.execPath, args = ['consumer.js'], timeout = 60_000) {
  const r = await run(cmd, args, { cwd: app, timeout, env: appEnv(app) });
  assert.equal(r.code, 0, describe(r));
  const out = JSON.parse(r.stdout.trim().split('\n').pop());
  t.diagnostic(`${path.basename(app)}: node ${out.node}: ${JSON.stringify(out.statuses)} ${out.state.state}`);
  checkConsumer(out, app);
  return out;
}

test('npm install from the registry with no Rust on PATH, then the stack, a breaker, /metrics and the CLI', { timeout: 300_000 }, async (t) => {
  assert.equal(PKG.engines.node, '>= 18');
  const app = consumerProject('npm-app');
  const env = appEnv(app);
  assert.notEqual((await run('sh', ['-c', 'command -v cargo || command -v rustc'], { cwd: app, timeout: 10_000, env })).code, 0, 'no cargo/rustc on PATH');
  const r = await run('npm', ['install', '--no-audit', '--no-fund', PKG.name, 'express'], { cwd: app, timeout: 240_000, env });
  assert.equal(r.code, 0, describe(r));
  figures.npmInstallSeconds = Math.round(r.ms / 100) / 10;
  const du = await run('du', ['-sh', path.join('node_modules', '@dreamnet')], { cwd: app, timeout: 10_000, env });
  figures.installSize = du.stdout.split(/\s/)[0];
  t.diagnostic(`npm install: ${figures.npmInstallSeconds} s; du -sh node_modules/@dreamnet: ${figures.installSize}`);
  const installed = fs.readdirSync(path.join(app, 'node_modules', '@dreamnet')).sort();
  assert.deepEqual(installed, ['reliability-core', `reliability-core-${TRIPLE}`], 'only this platform\'s package next to the main one');
  assert.deepEqual(fs.readdirSync(path.join(app, 'node_modules', '@dreamnet', 'reliability-core')).filter((f) => f.endsWith('.node')), []);

  await runConsumer(app, t);
  const help = await run('npx', ['incident-response', '--help'], { cwd: app, timeout: 60_000, env });
  assert.equal(help.code, 0, describe(help));
  assert.match(help.stdout + help.stderr, /safe-mode/);
});

test('the same script under Node 18 and Node 22 (npm package `node`)', { timeout: 400_000 }, async (t) => {
  const app = path.join(scratch, 'npm-app');
  assert.ok(fs.existsSync(path.join(app, 'node_modules')), 'the npm install test ran');
  for (const major of [18, 22]) {
    const out = await runConsumer(app, t, 'npx', ['-y', '-p', `node@${major}`, 'node', 'consumer.js'], 180_000);
    assert.equal(Number(out.node.split('.')[0]), major);
  }
});

test('pnpm 10 installs it too', { timeout: 300_000 }, async (t) => {
  const app = consumerProject('pnpm-app');
  const env = appEnv(app);
  const r = await run('npx', ['-y', 'pnpm@10', 'add', PKG.name, 'express'], { cwd: app, timeout: 240_000, env });
  assert.equal(r.code, 0, describe(r));
  figures.pnpmAddSeconds = Math.round(r.ms / 100) / 10;
  await runConsumer(app, t);
  const help = await run('npx', ['-y', 'pnpm@10', 'exec', 'incident-response', '--help'], { cwd: app, timeout: 60_000, env });
  assert.equal(help.code, 0, describe(help));
});
