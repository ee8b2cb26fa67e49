'use strict';
/**
 * The testing kit (issue 24), proven the way a service's developers would
 * meet it: consumer projects built from the packed tarball, with Jest 29 and
 * 30 (in band and with workers, fake timers on and off) and vitest 3 (pools
 * threads, forks and vmThreads, isolate on and off). Each project has four
 * test files that open breakers and count requests through supertest
 * against an Express app; every test checks that the names it uses start
 * fresh and leaves them dirty, in a random order (`--randomize`,
 * `--sequence.shuffle`), so state leaking from one file into another fails.
 * The runs also must print none of the package's log lines and leave no
 * state file in the project.
 *
 * Layout (one scratch folder per run):
 *   tools/node_modules   the tarball, jest 29 and 30, vitest 3, supertest, express 5
 *   tools/<project>/     one folder per runner mode
 */
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { describe, npmInstall, pack, run, write } = require('./helpers/consumer-tools');

const FIXTURES = path.join(__dirname, 'fixtures', 'testing-kit');
const PKG = require('../package.json');
const FILES = 4;
const TESTS_PER_FILE = 6;

let scratch;
let tools;
let installed = false;

before(() => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'rc-testing-kit-'));
  tools = path.join(scratch, 'tools');
});

after(() => {
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
});

const template = () => fs.readFileSync(path.join(FIXTURES, 'spec.template.js'), 'utf8');
const appCjs = () => fs.readFileSync(path.join(FIXTURES, 'app.cjs'), 'utf8');

/** The same app as an ES module, so vitest keeps it in its module graph (per file, or shared with isolate off). */
function appEsm() {
  return appCjs()
    .replace("'use strict';\n", '')
    .replace(/^const (\w+) = require\('([^']+)'\);$/gm, "import $1 from '$2';")
    .replace(/^const \{ ([^}]+) \} = require\('([^']+)'\);$/gm, "import { $1 } from '$2';")
    .replace(/^module\.exports = \{ ([^}]+) \};$/m, 'export { $1 };');
}

const fill = (text, parts) => Object.entries(parts).reduce((s, [k, v]) => s.split(`__${k}__`).join(v), text);

const JEST_IMPORTS = `const request = require('supertest');
const { getCircuitBreakerRegistry } = require('${PKG.name}/circuit-breaker');
const { getOps } = require('${PKG.name}/ops');
const { resetAll, routeFigures, drained, advanceClock, setClock, openBreaker } = require('${PKG.name}/testing');
const { createApp, orders } = require('./app.cjs');`;

const VITEST_IMPORTS = `import { afterAll, expect, test, vi } from 'vitest';
import request from 'supertest';
import { getCircuitBreakerRegistry } from '${PKG.name}/circuit-breaker';
import { getOps } from '${PKG.name}/ops';
import { resetAll, routeFigures, drained, advanceClock, setClock, openBreaker } from '${PKG.name}/testing';
import { createApp, orders } from './app.mjs';`;

function jestSpec(k) {
  return fill(template(), {
    IMPORTS: JEST_IMPORTS,
    K: String(k),
    FAKE_ON: '',
    FAKE_OFF: '',
    FAKE_RETRY_ON: '',
    FAKE_RETRY_OFF: '',
    // Fake timers are on for the whole project (config) or off: the package
    // follows them, or the kit's manual clock stands in.
    ADVANCE: '(FAKE ? (ms) => jest.advanceTimersByTime(ms) : advanceClock)',
    ADVANCE_ASYNC: 'if (FAKE) await jest.advanceTimersByTimeAsync(5000);',
  });
}

function vitestSpec(k) {
  return fill(template(), {
    IMPORTS: VITEST_IMPORTS,
    K: String(k),
    // supertest's requests need the real setImmediate: fake the clock and the timeouts only.
    FAKE_ON: "vi.useFakeTimers({ toFake: ['Date', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });",
    FAKE_OFF: 'vi.useRealTimers();',
    FAKE_RETRY_ON: 'vi.useFakeTimers();',
    FAKE_RETRY_OFF: 'vi.useRealTimers();',
    ADVANCE: '((ms) => vi.advanceTimersByTime(ms))',
    ADVANCE_ASYNC: 'await vi.advanceTimersByTimeAsync(5000);',
  });
}

/** The package's log lines: the breakers' emoji lines and the ops plane's JSON lines. */
const LOG_LINE = /\[CircuitBreaker:|\[HealthGates\]|"event":"ops\./;

function checkRun(name, r, result, dir) {
  assert.ok(result, `${name} wrote no result: ${describe(r)}`);
  const lines = result.testResults.flatMap((f) => [
    `${path.basename(f.name)}: ${f.status} ${(f.message ?? '').slice(0, 1500)}`,
    ...f.assertionResults.filter((a) => a.status !== 'passed').map((a) => `  ${a.status}: ${a.title}\n${(a.failureMessages ?? []).join('\n').slice(0, 1500)}`),
  ]);
  assert.equal(r.code, 0, `${name}:\n${lines.join('\n')}\n${describe(r)}`);
  assert.equal(result.numPassedTests, FILES * TESTS_PER_FILE, `${name}: every test ran and passed\n${lines.join('\n')}`);
  assert.equal(result.numFailedTests, 0);
  const out = r.stdout + r.stderr;
  assert.ok(!LOG_LINE.test(out), `${name}: the package logged under a test runner:\n${out.split('\n').filter((l) => LOG_LINE.test(l)).slice(0, 5).join('\n')}`);
  assert.ok(!fs.existsSync(path.join(dir, '.reliability')), `${name}: an ops state file was written into the project`);
}

test('npm pack (once) and the tools install from the tarball and the registry', { timeout: 420_000 }, async (t) => {
  const tarball = await pack(path.join(scratch, 'pack'));
  write(path.join(tools, 'package.json'), {
    name: 'rc-testing-kit-tools',
    private: true,
    devDependencies: {
      [PKG.name]: `file:${tarball}`,
      jest29: 'npm:jest@^29',
      jest30: 'npm:jest@^30',
      vitest: '^3',
      supertest: '^7',
      express: '^5',
    },
    // get-intrinsic 1.3 requires async-function, whose "module-sync" export is
    // an ES module: vitest's vmThreads loader evaluates it as CommonJS and
    // fails before any test (express and supertest both pull it in through
    // qs). 1.2 has the same API without it.
    overrides: { 'get-intrinsic': '1.2.7' },
  });
  const r = await npmInstall(tools, t);
  t.diagnostic(`install: ${r.ms} ms`);
  assert.equal(r.code, 0, describe(r));
  installed = true;
});

/** A package as `start`'s chain of dependencies sees it (each Jest has its own jest-environment-node). */
function resolveVia(start, ...chain) {
  let dir = start;
  for (const name of chain) dir = path.dirname(require.resolve(`${name}/package.json`, { paths: [dir] }));
  return dir;
}

async function jest(version, { workers, fake }) {
  const name = `jest${version}-${workers ? 'workers' : 'inband'}-${fake ? 'fake' : 'real'}`;
  const dir = path.join(tools, name);
  const jestDir = path.join(tools, 'node_modules', `jest${version}`);
  const config = { testEnvironment: resolveVia(jestDir, 'jest-cli', 'jest-config', 'jest-environment-node') };
  // Fake timers for every test, as a project configures them; nextTick and
  // setImmediate stay real, or supertest's server could not answer.
  if (fake) config.fakeTimers = { enableGlobally: true, doNotFake: ['nextTick', 'setImmediate'] };
  write(path.join(dir, 'package.json'), { name, private: true, jest: config });
  write(path.join(dir, 'app.cjs'), appCjs());
  for (let k = 1; k <= FILES; k++) write(path.join(dir, `file${k}.test.js`), jestSpec(k));
  const out = path.join(dir, 'result.json');
  const seed = crypto.randomInt(1, 2 ** 31 - 1);
  const args = [path.join(jestDir, 'bin', 'jest.js'), '--ci', '--rootDir', dir, '--cacheDirectory', path.join(scratch, `cache-${name}`), '--randomize', `--seed=${seed}`, '--json', '--outputFile', out];
  args.push(...(workers ? ['--maxWorkers=2'] : ['--runInBand']));
  const r = await run(process.execPath, args, { cwd: dir, timeout: 150_000, env: { RC_FAKE: fake ? '1' : '0' } });
  const result = fs.existsSync(out) ? JSON.parse(fs.readFileSync(out, 'utf8')) : null;
  return { name: `${name} (seed ${seed})`, r, result, dir };
}

async function vitest(pool, isolate) {
  const name = `vitest-${pool}-${isolate ? 'isolate' : 'no-isolate'}`;
  const dir = path.join(tools, name);
  write(path.join(dir, 'package.json'), { name, private: true, type: 'module' });
  write(path.join(dir, 'app.mjs'), appEsm());
  for (let k = 1; k <= FILES; k++) write(path.join(dir, `file${k}.test.mjs`), vitestSpec(k));
  const out = path.join(dir, 'result.json');
  const seed = crypto.randomInt(1, 2 ** 31 - 1);
  // One worker: every file meets the state the files before it left.
  const args = [path.join(tools, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--root', dir, '--pool', pool, '--maxWorkers=1', '--minWorkers=1', '--globals', '--sequence.shuffle', `--sequence.seed=${seed}`, '--reporter', 'json', '--outputFile', out];
  if (!isolate) args.push('--no-isolate');
  const r = await run(process.execPath, args, { cwd: dir, timeout: 150_000, env: { RC_FAKE: '1' } });
  const result = fs.existsSync(out) ? JSON.parse(fs.readFileSync(out, 'utf8')) : null;
  return { name: `${name} (seed ${seed})`, r, result, dir };
}

/** Runs the thunks, at most `n` at once; resolves with their results in order. */
async function pool(thunks, n) {
  const results = new Array(thunks.length);
  let next = 0;
  const worker = async () => {
    while (next < thunks.length) {
      const i = next++;
      results[i] = await thunks[i]();
    }
  };
  await Promise.all(Array.from({ length: n }, worker));
  return results;
}

test('Jest 29 and 30 (in band, workers; fake timers off, on) and vitest 3 (threads, forks, vmThreads; isolate on, off)', { timeout: 480_000 }, async (t) => {
  assert.ok(installed, 'the install test ran');
  const runs = [];
  for (const version of ['29', '30']) {
    for (const workers of [false, true]) for (const fake of [false, true]) runs.push(() => jest(version, { workers, fake }));
  }
  for (const p of ['threads', 'forks', 'vmThreads']) for (const isolate of [true, false]) runs.push(() => vitest(p, isolate));
  // Three at once: the runners wait on their workers and on I/O much of the time.
  const t0 = Date.now();
  const results = await pool(runs, 3);
  t.diagnostic(`${runs.length} runs in ${Date.now() - t0} ms`);
  for (const res of results) {
    await t.test(res.name, (st) => {
      st.diagnostic(`${res.r.ms} ms`);
      checkRun(res.name, res.r, res.result, res.dir);
    });
  }
});
