// @ts-check
'use strict';
// The unit/integration split (scripts/run-tests.js, scripts/test-groups.json): every test
// file is in exactly one group, a file the list does not name is integration, a stale
// name is an error, and no unit test reaches for a server.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { classify } = require('../scripts/run-tests.js');

test('every test file has one group, and the groups cover __test__/', () => {
  const all = classify();
  const files = fs.readdirSync(__dirname).filter((f) => f.endsWith('.test.js'));
  assert.deepEqual(all.map((t) => t.file).sort(), files.sort());
  for (const t of all) assert.ok(['unit', 'integration', 'docs'].includes(t.group), `${t.file}: ${t.group}`);
  assert.ok(all.some((t) => t.group === 'unit') && all.some((t) => t.group === 'integration'));
});

test('a file the list does not name is integration; a stale or doubled name is an error', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'test-groups-'));
  try {
    fs.writeFileSync(path.join(dir, 'a.test.js'), '');
    fs.writeFileSync(path.join(dir, 'b.test.js'), '');
    const list = path.join(dir, 'groups.json');
    fs.writeFileSync(list, JSON.stringify({ unit: ['a.test.js'] }));
    assert.deepEqual(classify(dir, list), [{ file: 'a.test.js', group: 'unit' }, { file: 'b.test.js', group: 'integration' }]);
    fs.writeFileSync(list, JSON.stringify({ unit: ['gone.test.js'] }));
    assert.throws(() => classify(dir, list), /gone\.test\.js/);
    fs.writeFileSync(list, JSON.stringify({ unit: ['a.test.js'], docs: ['a.test.js'] }));
    assert.throws(() => classify(dir, list), /twice/);
    fs.writeFileSync(list, JSON.stringify({ integration: ['a.test.js'] }));
    assert.throws(() => classify(dir, list), /unknown group/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// What a unit test may not do: start or reach a server, a browser or npm.
const SERVER = /helpers\/(postgres|redis)|playwright|chromium|promtool|ioredis|['"`](npm|npx|prometheus|redis-server|initdb|pg_ctl|postgres)['"`]|npm (pack|install)/;

test('no unit test starts a server, a browser or npm', () => {
  for (const t of classify().filter((x) => x.group === 'unit' && x.file !== path.basename(__filename))) {
    const src = fs.readFileSync(path.join(__dirname, t.file), 'utf8');
    const m = SERVER.exec(src);
    assert.equal(m, null, `${t.file} is listed as unit but uses ${m?.[0]}: move it out of "unit" in scripts/test-groups.json`);
  }
});
