'use strict';
/**
 * Child processes, npm installs and the pack of the package, for tests that
 * build consumer projects from the tarball (as consumers.test.js and
 * pack-install.test.js do: npm's own variables dropped, the cache first).
 */
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');

function childEnv(extra = {}) {
  const keep = /^npm_config_(cache|userconfig|globalconfig|registry|cafile|ca|strict_ssl|proxy|https_proxy|noproxy|offline|prefer_offline)$/i;
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) && !keep.test(k)) continue;
    if (k === 'NODE_OPTIONS' || k === 'NODE_TEST_CONTEXT' || k === 'NODE_PATH') continue;
    // The runner's own markers: each consumer project's runner sets its own.
    if (k === 'JEST_WORKER_ID' || k === 'VITEST' || k === 'NODE_ENV' || k.startsWith('RELIABILITY_')) continue;
    env[k] = v;
  }
  Object.assign(env, { npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false', CI: 'true', NO_COLOR: '1', FORCE_COLOR: '0' });
  return { ...env, ...extra };
}

function run(cmd, args, { cwd, timeout = 120_000, env = {} }) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    execFile(cmd, args, { cwd, timeout, env: childEnv(env), maxBuffer: 64 * 1024 * 1024, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      resolve({ code: error ? (error.code ?? 1) : 0, killed: !!error?.killed, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

const describe = (r) => `exit ${r.code}${r.killed ? ' (killed: timeout)' : ''}\n--- stdout ---\n${r.stdout.slice(-6000)}\n--- stderr ---\n${r.stderr.slice(-6000)}`;

function write(file, text) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, typeof text === 'string' ? text : JSON.stringify(text, null, 2) + '\n');
}

/** npm install with the cache first (a warm cache needs no network), then online. */
async function npmInstall(dir, t) {
  const args = ['install', '--no-audit', '--no-fund', '--no-package-lock', '--prefix', dir];
  let r = await run('npm', [...args, '--prefer-offline'], { cwd: dir, timeout: 240_000 });
  if (r.code !== 0) {
    t?.diagnostic(`install in ${path.basename(dir)} failed with the cache first, retrying:\n${describe(r)}`);
    r = await run('npm', args, { cwd: dir, timeout: 240_000 });
  }
  return r;
}

/** `npm pack` of the repo (scripts ignored: the build outputs must exist) into `dir`, with the local binary added; returns the tarball's path. */
async function pack(dir) {
  for (const f of ['dist/index.js', 'dist/testing.js', 'index.js']) {
    if (!fs.existsSync(path.join(ROOT, f))) throw new Error(`${f} is missing: run npm run build first`);
  }
  fs.mkdirSync(dir, { recursive: true });
  const p = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: ROOT, timeout: 110_000, env: { npm_config_ignore_scripts: 'true' } });
  if (p.code !== 0) throw new Error(`npm pack failed: ${describe(p)}`);
  const [info] = JSON.parse(p.stdout.slice(p.stdout.search(/^\[/m)));
  const tarball = path.join(dir, info.filename);
  // The main tarball carries no binary (it comes from the platform package,
  // an optional dependency not on the registry for this version): the
  // consumers get the local build at the package root, where napi's loader
  // looks first (registry-install.test.js covers the platform package).
  const staged = path.join(dir, 'staged');
  fs.rmSync(staged, { recursive: true, force: true });
  fs.mkdirSync(staged);
  let x = await run('tar', ['-xzf', tarball, '-C', staged], { cwd: dir, timeout: 30_000 });
  if (x.code !== 0) throw new Error(`untar failed: ${describe(x)}`);
  const binaries = fs.readdirSync(ROOT).filter((n) => n.endsWith('.node'));
  if (binaries.length === 0) throw new Error('no native .node file at the repo root: run npm run build first');
  for (const f of binaries) fs.copyFileSync(path.join(ROOT, f), path.join(staged, 'package', f));
  const withBinary = path.join(dir, `with-binary-${info.filename}`);
  x = await run('tar', ['-czf', withBinary, '-C', staged, 'package'], { cwd: dir, timeout: 30_000 });
  if (x.code !== 0) throw new Error(`tar failed: ${describe(x)}`);
  return withBinary;
}

module.exports = { ROOT, childEnv, run, describe, write, npmInstall, pack };
