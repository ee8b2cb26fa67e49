// @ts-check
'use strict';
// Benchmarks are not timed tests; this only runs each one that has a
// --smoke mode on a tiny input, so the scripts cannot rot unnoticed.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const path = require('node:path');

// What each script prints when it ran: its figures (attribute.js samples
// with Linux perf, and says so when perf is not installed: then only its
// stack parser is checked).
const PRINTS = { 'paired.js': /µs\/request {2}adds/, 'hotpath.js': /overhead/, 'attribute.js': /µs\/request over \d+ requests|perf is not installed|perf cannot sample here/ };
for (const script of ['dag.js', 'rollout.js', 'watchdogs.js', 'hotpath.js', 'load.js', 'soak.js', 'parts.js', 'paired.js', 'attribute.js', 'histograms.js']) {
  test(`benchmark/${script} --smoke runs and checks its results`, { timeout: 120_000 }, async () => {
    const r = await new Promise((resolve) =>
      execFile(process.execPath, [path.join(__dirname, '..', 'benchmark', script), '--smoke'], { timeout: 110_000 }, (error, stdout, stderr) =>
        resolve({ code: error ? (error.code ?? 1) : 0, stdout, stderr }),
      ),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, PRINTS[script] ?? /\d ms\b|\d ns\b/, 'printed its figures');
  });
}
