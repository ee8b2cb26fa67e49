// @ts-check
'use strict';
// Every environment variable the code reads is listed in docs/ENVIRONMENT_MANIFEST.md.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');

function files(dir, ext) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return files(p, ext);
    return ext.some((x) => e.name.endsWith(x)) ? [p] : [];
  });
}

test('docs/ENVIRONMENT_MANIFEST.md lists every variable lib/ and demo/ read', () => {
  const manifest = fs.readFileSync(path.join(ROOT, 'docs', 'ENVIRONMENT_MANIFEST.md'), 'utf8');
  const listed = new Set([...manifest.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1]));
  const read = new Map();
  const patterns = [/process\.env\.([A-Z][A-Z0-9_]*)/g, /process\.env\[['"]([A-Z][A-Z0-9_]*)['"]\]/g, /\benv\.([A-Z][A-Z0-9_]*)/g];
  for (const f of [...files(path.join(ROOT, 'lib'), ['.ts']), ...files(path.join(ROOT, 'demo'), ['.js', '.json'])]) {
    const text = fs.readFileSync(f, 'utf8');
    for (const re of patterns) for (const m of text.matchAll(re)) read.set(m[1], path.relative(ROOT, f));
    // graph.json `conditional` names are variables too.
    if (f.endsWith('.json')) for (const m of text.matchAll(/"conditional":\s*"([A-Z][A-Z0-9_]*)"/g)) read.set(m[1], path.relative(ROOT, f));
  }
  assert.ok(read.size >= 8, `found ${read.size} variables: the scan works`);
  const missing = [...read].filter(([v]) => !listed.has(v)).map(([v, f]) => `${v} (read in ${f})`);
  assert.deepEqual(missing, [], `not in docs/ENVIRONMENT_MANIFEST.md: ${missing.join(', ')}`);
  // And the scan would catch an unlisted one.
  assert.ok(!listed.has('SOME_UNLISTED_VARIABLE'));
});
