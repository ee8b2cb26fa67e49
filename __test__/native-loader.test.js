'use strict';
/**
 * The loader's error on a platform with no binary (issue 23): it names the
 * platform package it looked for and the command that builds from source,
 * gives no "remove package-lock.json" advice, and keeps napi's per-candidate
 * failures visible (in the message and in `error.cause`).
 *
 * Each case runs in a child process on a copy of the package's JS (dist/,
 * index.js, package.json) without any `.node` file, as an install whose
 * optional platform package is missing looks; the unsupported-platform case
 * also overrides `process.arch` before the loader runs.
 */
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const PKG = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
let copy;

before(() => {
  assert.ok(fs.existsSync(path.join(ROOT, 'dist', 'native.js')), 'dist/ is built (npm run build)');
  copy = fs.mkdtempSync(path.join(os.tmpdir(), 'rc-loader-'));
  fs.cpSync(path.join(ROOT, 'dist'), path.join(copy, 'dist'), { recursive: true });
  for (const f of ['index.js', 'index.d.ts', 'package.json']) fs.copyFileSync(path.join(ROOT, f), path.join(copy, f));
  assert.deepEqual(fs.readdirSync(copy).filter((f) => f.endsWith('.node')), [], 'no binary in the copy');
});

after(() => {
  if (copy) fs.rmSync(copy, { recursive: true, force: true });
});

/** Loads dist/native.js in a child with `process.arch` (optionally) overridden; returns the error it threw. */
function loadIn(dir, arch) {
  const script = `
    ${arch ? `Object.defineProperty(process, 'arch', { value: ${JSON.stringify(arch)} });` : ''}
    try {
      require(${JSON.stringify(path.join(dir, 'dist', 'native.js'))});
      console.log(JSON.stringify({ loaded: true }));
    } catch (e) {
      const chain = [];
      for (let c = e.cause; c && chain.length < 20; c = c.cause) chain.push(String(c.message));
      console.log(JSON.stringify({ loaded: false, message: e.message, code: e.code, platformPackage: e.platformPackage, chain }));
    }`;
  const env = { ...process.env };
  delete env.NAPI_RS_NATIVE_LIBRARY_PATH;
  delete env.NODE_TEST_CONTEXT;
  const r = spawnSync(process.execPath, ['-e', script], { cwd: os.tmpdir(), env, encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

const hostTriple = () => {
  if (process.platform === 'linux') {
    const musl = (() => { try { return fs.readFileSync('/usr/bin/ldd', 'utf8').includes('musl'); } catch { return false; } })();
    return `linux-${process.arch}-${musl ? 'musl' : 'gnu'}`;
  }
  return process.platform === 'win32' ? `win32-${process.arch}-msvc` : `${process.platform}-${process.arch}`;
};

function assertCommon(out) {
  assert.equal(out.loaded, false, 'the copy without a binary cannot load');
  assert.equal(out.code, 'ERR_NATIVE_BINDING_MISSING');
  assert.doesNotMatch(out.message, /package-lock\.json/, 'no "remove package-lock.json" advice');
  assert.doesNotMatch(out.message, /removing both/);
  assert.match(out.message, /npm run build:native/, 'names the command that builds from source');
  // napi's own candidate failures are in the message, not only in .cause.
  assert.match(out.message, /What failed:\n {2}- /);
  assert.ok(out.chain.length >= 1, 'the original error is kept as the cause');
  assert.match(out.chain[0], /Cannot find native binding/);
}

test('a published platform whose package is missing: names it with its version and how to install it', () => {
  const triple = hostTriple();
  const want = `${PKG.name}-${triple}`;
  assert.ok(PKG.napi.targets.some((t) => t.startsWith(process.arch === 'x64' ? 'x86_64-' : 'aarch64-') && t.includes(process.platform === 'darwin' ? 'darwin' : process.platform === 'win32' ? 'windows' : 'linux')), 'this platform is a napi target (napi prepublish makes it an optional dependency)');
  const out = loadIn(copy);
  assertCommon(out);
  assert.equal(out.platformPackage, want);
  assert.ok(out.message.includes(`platform package ${want}@${PKG.version}`), out.message);
  assert.ok(out.message.includes(`npm install ${want}@${PKG.version}`), out.message);
  assert.ok(out.message.includes(`reliability-core.${triple}.node`), 'names the file to build');
  // napi's candidates: the local file and the platform package, both named in the reasons.
  assert.match(out.message, new RegExp(`Cannot find module '\\./reliability-core\\.${triple}\\.node'`));
  assert.ok(out.message.includes(`Cannot find module '${want}'`), out.message);
});

test('a platform nothing is published for: says so, and still names the package it looked for', { skip: process.platform !== 'linux' }, () => {
  const out = loadIn(copy, 'riscv64');
  assertCommon(out);
  const want = `${PKG.name}-linux-riscv64-${hostTriple().split('-')[2]}`;
  assert.equal(out.platformPackage, want);
  assert.ok(out.message.includes(`platform package ${want}, and none is published`), out.message);
  assert.doesNotMatch(out.message, /npm install @/, 'no install advice for a package that does not exist');
});

test('with the binary present the same loader loads it', () => {
  const out = loadIn(ROOT);
  assert.deepEqual(out, { loaded: true });
});
