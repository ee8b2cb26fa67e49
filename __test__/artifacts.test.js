'use strict';
/**
 * The Linux binaries `npm run build:all` (scripts/build-all.sh) puts into the
 * platform packages under npm/: each one's ELF machine, libc, highest glibc
 * symbol version (<= 2.17 for gnu, so Debian 11, Ubuntu 20.04, RHEL 8 and
 * Amazon Linux 2 load it) and that it is stripped; the x64 gnu one is loaded
 * into this Node.
 *
 * A target is skipped only when this machine cannot build it (no
 * cargo-zigbuild, or `rustup target add` could not install the target), the
 * same condition under which build-all skips it; otherwise a missing artefact
 * fails.
 */
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const PKG = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const PATH = [path.join(os.homedir(), '.cargo', 'bin'), process.env.PATH].join(path.delimiter);

const TARGETS = [
  { triple: 'x86_64-unknown-linux-gnu', platform: 'linux-x64-gnu', machine: /X86-64/, libc: 'gnu' },
  { triple: 'aarch64-unknown-linux-gnu', platform: 'linux-arm64-gnu', machine: /AArch64/, libc: 'gnu' },
  { triple: 'x86_64-unknown-linux-musl', platform: 'linux-x64-musl', machine: /X86-64/, libc: 'musl' },
  { triple: 'aarch64-unknown-linux-musl', platform: 'linux-arm64-musl', machine: /AArch64/, libc: 'musl' },
];

function canBuild(triple) {
  const zig = spawnSync('cargo-zigbuild', ['--version'], { env: { ...process.env, PATH } });
  if (zig.status !== 0) return 'cargo-zigbuild is not installed (scripts/ensure-build-tools.sh)';
  const r = spawnSync('rustup', ['target', 'list', '--installed'], { env: { ...process.env, PATH }, encoding: 'utf8' });
  if (r.status !== 0 || !r.stdout.split('\n').includes(triple)) return `Rust target ${triple} is not installed`;
  return null;
}

const readelf = (args, file) => execFileSync('readelf', [...args, file], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });

/** "2.17" < "2.3.4"? Compared numerically part by part. */
function cmpVersion(a, b) {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d) return d;
  }
  return 0;
}

test('every Linux target is a configured napi target with a platform package at the main version', () => {
  for (const t of TARGETS) {
    assert.ok(PKG.napi.targets.includes(t.triple), `${t.triple} in napi.targets`);
    const sub = JSON.parse(fs.readFileSync(path.join(ROOT, 'npm', t.platform, 'package.json'), 'utf8'));
    assert.equal(sub.name, `${PKG.name}-${t.platform}`);
    assert.equal(sub.version, PKG.version, `${sub.name} version locked to the main one`);
    assert.deepEqual(sub.libc, [t.libc === 'gnu' ? 'glibc' : 'musl']);
    assert.equal(PKG.optionalDependencies, undefined, 'optionalDependencies are written by `napi prepublish`, so npm ci works before the platform packages exist');
  }
});

for (const t of TARGETS) {
  const reason = canBuild(t.triple);
  test(`${t.platform}: architecture, libc, glibc symbol versions, stripped`, { skip: reason ?? false }, () => {
    const file = path.join(ROOT, 'npm', t.platform, `reliability-core.${t.platform}.node`);
    assert.ok(fs.existsSync(file), `${file} exists (npm run build:all)`);
    const header = readelf(['-h'], file);
    assert.match(header, /Class:\s+ELF64/);
    assert.match(header, /Type:\s+DYN/);
    assert.match(header.match(/Machine:\s+(.*)/)[1], t.machine);

    const needed = [...readelf(['-d'], file).matchAll(/\(NEEDED\)\s+Shared library: \[(.+?)\]/g)].map((m) => m[1]);
    const versions = [...new Set([...readelf(['-V', '--wide'], file).matchAll(/GLIBC_([0-9.]+)/g)].map((m) => m[1]))].sort(cmpVersion);
    if (t.libc === 'gnu') {
      assert.ok(needed.includes('libc.so.6'), `links glibc (NEEDED: ${needed})`);
      assert.ok(!needed.some((n) => /musl/.test(n)));
      const highest = versions[versions.length - 1];
      assert.ok(highest, 'has glibc symbol versions');
      assert.ok(cmpVersion(highest, '2.17') <= 0, `highest GLIBC_ symbol is ${highest}, must be <= 2.17 (all: ${versions})`);
    } else {
      assert.ok(needed.some((n) => /^libc\.musl-|^ld-musl-|^libc\.so$/.test(n)), `links musl libc (NEEDED: ${needed})`);
      assert.deepEqual(versions, [], 'no glibc symbol versions in a musl binary');
    }
    const sections = readelf(['-S', '-W'], file);
    assert.doesNotMatch(sections, /\.symtab|\.debug_/, 'stripped: no .symtab or debug sections');
  });
}

test('the x64 gnu artefact loads in this Node and works', { skip: process.platform !== 'linux' || process.arch !== 'x64' ? 'not linux x64' : canBuild('x86_64-unknown-linux-gnu') ?? false }, () => {
  const file = path.join(ROOT, 'npm', 'linux-x64-gnu', 'reliability-core.linux-x64-gnu.node');
  const script = `const b = require(${JSON.stringify(file)}); const fns = Object.keys(b).filter((k) => typeof b[k] === 'function'); console.log(JSON.stringify({ count: fns.length, hasCb: fns.some((k) => /^cb/.test(k)) }));`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.ok(out.count > 20, `exports ${out.count} functions`);
  assert.equal(out.hasCb, true);
});
