#!/usr/bin/env node
// @ts-check
'use strict';
// Runs one group of the JS tests in __test__/: `unit`, `integration` or `docs`.
//
//   node scripts/run-tests.js unit          # no servers, no network, quick
//   node scripts/run-tests.js integration   # PostgreSQL, Redis, Chromium, Prometheus, npm pack
//   node scripts/run-tests.js docs          # the README's and docs/' code blocks
//   node scripts/run-tests.js --list        # prints each file's group
//
// A file's group comes from scripts/test-groups.json, a committed list; a test file
// the list does not name is `integration`. So a new test never lands in the fast
// run by accident (it may need a server), and moving a file there is a choice.
// Files stay where they are in __test__/: a group is a selection, not a folder,
// so adding tests does not conflict with the split.
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.join(__dirname, '..');
const testDir = path.join(root, '__test__');
const GROUPS = ['unit', 'integration', 'docs'];

/**
 * Every `*.test.js` in `dir` (default __test__/, top level) with its group.
 *
 * @example
 *   classify().filter((t) => t.group === 'unit').map((t) => t.file) // ['circuit-breaker.test.js', ...]
 */
function classify(dir = testDir, listFile = path.join(__dirname, 'test-groups.json')) {
  const listed = JSON.parse(fs.readFileSync(listFile, 'utf8'));
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.test.js')).sort();
  const groupOf = new Map();
  for (const g of Object.keys(listed)) {
    if (g.startsWith('//')) continue;
    if (g === 'integration' || !GROUPS.includes(g)) throw new Error(`test-groups.json: unknown group "${g}" (allowed: unit, docs; the rest is integration)`);
    for (const f of listed[g]) {
      // A stale name would silently move nothing: say so instead.
      if (!files.includes(f)) throw new Error(`test-groups.json names ${f} (group ${g}), which is not in ${path.relative(root, dir) || dir}/`);
      if (groupOf.has(f)) throw new Error(`test-groups.json names ${f} twice`);
      groupOf.set(f, g);
    }
  }
  return files.map((file) => ({ file, group: groupOf.get(file) ?? 'integration' }));
}

function main(argv) {
  const which = argv[0];
  if (which === '--list') {
    for (const t of classify()) process.stdout.write(`${t.group.padEnd(12)}${t.file}\n`);
    return 0;
  }
  if (!GROUPS.includes(which)) {
    process.stderr.write(`usage: node scripts/run-tests.js ${GROUPS.join('|')}|--list [node --test flags]\n`);
    return 2;
  }
  const files = classify().filter((t) => t.group === which).map((t) => path.join('__test__', t.file));
  if (files.length === 0) {
    process.stderr.write(`run-tests: no test file in group ${which}\n`);
    return 1;
  }
  const started = process.hrtime.bigint();
  const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...argv.slice(1), ...files], { cwd: root, stdio: 'inherit' });
  const s = Number(process.hrtime.bigint() - started) / 1e9;
  process.stderr.write(`run-tests: ${which}: ${files.length} files in ${s.toFixed(1)} s\n`);
  if (r.error) throw r.error;
  return r.status ?? 1;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));

module.exports = { classify };
