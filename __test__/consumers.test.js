'use strict';
/**
 * "Works in projects, test runners and type-checkers we did not write": the
 * packed tarball installed into consumer projects under os.tmpdir(), each
 * built with real tools from the registry, none of them mocked.
 *
 * Layout (one scratch folder per run; the tools are installed once and
 * shared through Node's and TypeScript's walk up the folders):
 *
 *   base/node_modules       the tarball, typescript, @types/node; NO express, NO @types/express
 *   base/ts-<mode>/         TypeScript strict, skipLibCheck: false, node10 / node16 / nodenext / bundler
 *   base/missing/           an app with no express anywhere: the error, and `{ express }` by hand
 *   base/full/node_modules  jest 27/29/30, jsdom environments, supertest, vitest 3, express 4 and 5,
 *                           @types/express, pnpm 10: express is resolvable from the apps below,
 *                           never from the package's folder (base/node_modules/...)
 *   base/full/<project>/    Jest and vitest projects, TypeScript with @types/express
 *   unpacked/               the tarball unpacked: a source checkout, a linked package
 *   linked/                 an app with a linked install (`npm link` / `npm i ../pkg`) of unpacked/
 *   pnpm/                   a pnpm workspace (nothing hoisted): an app installing the tarball, one linking unpacked/
 *
 * The pack runs with scripts ignored, so the build outputs must exist
 * (`npm test` builds first), as in pack-install.test.js.
 */
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const FIXTURES = path.join(__dirname, 'fixtures', 'consumers');
const PKG = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
// migrations/ also holds the shipped example migration, which imports the
// package by name: a package.json there would make it a package scope of its
// own, so that folder has index.js + index.d.ts instead.
const INDEX_FOLDERS = new Set(['migrations']);
const SUBPATHS = Object.keys(PKG.exports).filter((k) => k !== '.' && k !== './package.json').map((k) => k.slice(2));

let scratch;
let tarball;
const dirs = {};
const installed = {};

// ---- child processes (npm's own variables dropped; shared with the testing-kit test) ----

const { run, describe, write, npmInstall } = require('./helpers/consumer-tools');
const node = (args, opts) => run(process.execPath, args, opts);
const fixture = (name) => fs.readFileSync(path.join(FIXTURES, name), 'utf8');
const lastJson = (stdout) => JSON.parse(stdout.trim().split('\n').pop());

before(() => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'rc-consumers-'));
  dirs.base = path.join(scratch, 'base');
  dirs.full = path.join(dirs.base, 'full');
  dirs.linked = path.join(scratch, 'linked');
  dirs.pnpm = path.join(scratch, 'pnpm');
});

after(() => {
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
});

// ---- in the repo: the subpath map and the timers -------------------------------------

test('every subpath resolves without `exports`: typesVersions and a folder with main/types, packed', () => {
  const tv = PKG.typesVersions?.['*'] ?? {};
  assert.deepEqual(Object.keys(tv).sort(), [...SUBPATHS].sort(), 'typesVersions maps exactly the exported subpaths');
  for (const sub of SUBPATHS) {
    const e = PKG.exports[`./${sub}`];
    assert.deepEqual(Object.keys(e), ['types', 'default'], `./${sub}: "types" first (TypeScript takes the first match), then "default"`);
    assert.deepEqual(tv[sub], [e.types.slice(2)], `typesVersions.${sub}`);
    if (INDEX_FOLDERS.has(sub)) {
      assert.ok(!fs.existsSync(path.join(ROOT, sub, 'package.json')), `${sub}/ holds no package.json`);
      assert.equal(require(path.join(ROOT, sub)), require(path.join(ROOT, e.default)), `${sub}/index.js is ${e.default}`);
      assert.match(fs.readFileSync(path.join(ROOT, sub, 'index.d.ts'), 'utf8'), new RegExp(`^export \\* from '\\.\\./${e.types.slice(2, -5)}';$`, 'm'), `${sub}/index.d.ts`);
      assert.ok(PKG.files.includes(`${sub}/`), `${sub}/ is in files`);
      continue;
    }
    const folder = JSON.parse(fs.readFileSync(path.join(ROOT, sub, 'package.json'), 'utf8'));
    assert.equal(path.posix.join(sub, folder.main), e.default.slice(2), `${sub}/package.json main`);
    assert.equal(path.posix.join(sub, folder.types), e.types.slice(2), `${sub}/package.json types`);
    assert.ok(PKG.files.includes(`${sub}/package.json`), `${sub}/package.json is in files`);
  }
});

test('lib uses the timers of node:timers, never the global ones (jsdom returns numbers)', () => {
  const ts = require('typescript');
  const NAMES = new Set(['setTimeout', 'setInterval', 'setImmediate', 'clearTimeout', 'clearInterval', 'clearImmediate']);
  // The React component runs in the app's browser bundle, where node:timers
  // does not exist: it calls the browser's, spelled `globalThis.setTimeout`, and never unrefs.
  const BROWSER = new Set(['react.ts']);
  // Under a test runner, retry sleeps and call timeouts run on the global
  // timers on purpose, so Jest's and vitest's fake timers drive them: that
  // choice is made in one file (docs/TESTING.md), spelled `globalThis.x`.
  const RUNNER = new Set(['test-runner.ts']);
  const problems = [];
  const walk = (dir) => fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? walk(path.join(dir, d.name)) : d.name.endsWith('.ts') ? [path.join(dir, d.name)] : []));
  for (const file of walk(path.join(ROOT, 'lib'))) {
    const rel = path.relative(path.join(ROOT, 'lib'), file);
    const sf = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
    const imported = new Set();
    for (const st of sf.statements) {
      if (ts.isImportDeclaration(st) && st.moduleSpecifier.text === 'node:timers') {
        for (const el of st.importClause?.namedBindings?.elements ?? []) imported.add(el.name.text);
      }
    }
    const visit = (n) => {
      if (ts.isIdentifier(n) && NAMES.has(n.text)) {
        const p = n.parent;
        const line = sf.getLineAndCharacterOfPosition(n.getStart()).line + 1;
        const isImport = ts.isImportSpecifier(p);
        // `x.setTimeout(...)`, or `typeof x.setTimeout` in a type
        const member = (ts.isPropertyAccessExpression(p) && p.name === n) || (ts.isQualifiedName(p) && p.right === n);
        if (member) {
          const owner = (ts.isQualifiedName(p) ? p.left : p.expression).getText();
          if (!(owner === 'globalThis' && (BROWSER.has(rel) || RUNNER.has(rel)))) problems.push(`${rel}:${line} ${owner}.${n.text}`);
        } else if (!isImport && !ts.isPropertyAssignment(p) && !imported.has(n.text)) {
          problems.push(`${rel}:${line} ${n.text} (the global: import it from 'node:timers')`);
        }
        if (BROWSER.has(rel) && !member && !isImport) problems.push(`${rel}:${line} ${n.text} (browser code: use globalThis.${n.text})`);
      }
      if (BROWSER.has(rel) && ts.isPropertyAccessExpression(n) && /^(unref|ref)$/.test(n.name.text)) problems.push(`${rel}: .${n.name.text}() does not exist on a browser timer`);
      ts.forEachChild(n, visit);
    };
    visit(sf);
  }
  assert.deepEqual(problems, []);
});

test('the built .d.ts name the binding\'s types by a path that holds from dist/ (no `import("..")`)', () => {
  const walk = (dir) => fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? walk(path.join(dir, d.name)) : d.name.endsWith('.d.ts') ? [path.join(dir, d.name)] : []));
  const bad = [];
  for (const file of walk(path.join(ROOT, 'dist'))) {
    const text = fs.readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '');
    // From dist/x.d.ts, ".." is the package root, whose "types" is dist/index.d.ts, not the binding.
    for (const m of text.matchAll(/import\(["'](\.\.(?:\/\.\.)*)["']\)/g)) bad.push(`${path.relative(ROOT, file)}: ${m[0]}`);
  }
  assert.deepEqual(bad, []);
});

test('the `express` option: every router factory builds with the module given; a wrong one is a TypeError naming it', () => {
  const express4 = require('express4');
  const { createMetricsRouter } = require('../dist/metrics');
  const { createHealthRouter } = require('../dist/entries/health-gates');
  const { createOpsRouter } = require('../dist/entries/ops');
  const { createObservabilityRouter } = require('../dist/observability');
  const { createDashboardRouter } = require('../dist/dashboard');
  const calls = [];
  // express 4 itself, recording which factory asked for a router.
  const given = { Router: (o) => (calls.push('Router'), express4.Router(o)), json: (o) => (calls.push('json'), express4.json(o)) };
  for (const make of [createMetricsRouter, createHealthRouter, createOpsRouter, createDashboardRouter]) {
    calls.length = 0;
    assert.equal(typeof make({ express: given }), 'function', make.name);
    assert.ok(calls.includes('Router'), `${make.name} used the express given`);
  }
  calls.length = 0;
  createObservabilityRouter({ express: given });
  assert.equal(calls.filter((c) => c === 'Router').length, 2, 'the observability router and its dashboard');
  for (const bad of [42, null, {}, { Router: 'no' }]) {
    assert.throws(() => createMetricsRouter({ express: bad }), (e) => e instanceof TypeError && /^createMetricsRouter: options\.express must be the express module/.test(e.message), String(bad));
  }
});

// ---- pack and install -------------------------------------------------------------

test('npm pack (once), and the consumer projects install from the tarball and the registry', { timeout: 420_000 }, async (t) => {
  const need = ['dist/index.js', 'dist/index.d.ts', 'dist/metrics.js', 'index.js', 'index.d.ts'];
  for (const f of need) assert.ok(fs.existsSync(path.join(ROOT, f)), `${f} exists (run npm run build first)`);
  assert.ok(fs.readdirSync(ROOT).some((f) => f.endsWith('.node')), 'a native .node file exists (run npm run build first)');

  const packDir = path.join(scratch, 'pack');
  fs.mkdirSync(packDir);
  const p = await run('npm', ['pack', '--json', '--pack-destination', packDir], { cwd: ROOT, timeout: 110_000, env: { npm_config_ignore_scripts: 'true' } });
  assert.equal(p.code, 0, describe(p));
  const json = p.stdout.slice(p.stdout.search(/^\[/m));
  const [info] = JSON.parse(json);
  tarball = path.join(packDir, info.filename);
  const packed = info.files.map((f) => f.path);
  for (const sub of SUBPATHS) {
    for (const f of INDEX_FOLDERS.has(sub) ? ['index.js', 'index.d.ts'] : ['package.json']) assert.ok(packed.includes(`${sub}/${f}`), `${sub}/${f} packed`);
  }
  assert.ok(!packed.includes('dist/dashboard/package.json'), 'the dashboard assets hold no package.json');
  // The main tarball carries no binary (it comes from the platform package,
  // an optional dependency that is not on the registry for this version):
  // these consumers get the local build at the package root, where napi's
  // loader looks first (__test__/registry-install.test.js covers the
  // platform package itself).
  const staged = path.join(packDir, 'staged');
  fs.mkdirSync(staged);
  let x = await run('tar', ['-xzf', tarball, '-C', staged], { cwd: packDir, timeout: 30_000 });
  assert.equal(x.code, 0, describe(x));
  for (const f of fs.readdirSync(ROOT).filter((n) => n.endsWith('.node'))) fs.copyFileSync(path.join(ROOT, f), path.join(staged, 'package', f));
  tarball = path.join(packDir, `with-binary-${info.filename}`);
  x = await run('tar', ['-czf', tarball, '-C', staged, 'package'], { cwd: packDir, timeout: 30_000 });
  assert.equal(x.code, 0, describe(x));

  const dev = PKG.devDependencies;
  write(path.join(dirs.base, 'package.json'), {
    name: 'rc-consumers-base',
    private: true,
    dependencies: { [PKG.name]: `file:${tarball}`, typescript: dev.typescript, '@types/node': dev['@types/node'] },
  });
  write(path.join(dirs.full, 'package.json'), {
    name: 'rc-consumers-tools',
    private: true,
    devDependencies: {
      jest27: 'npm:jest@^27',
      jest29: 'npm:jest@^29',
      jest30: 'npm:jest@^30',
      'jest-environment-jsdom29': 'npm:jest-environment-jsdom@^29',
      'jest-environment-jsdom30': 'npm:jest-environment-jsdom@^30',
      supertest: '^7',
      vitest: '^3',
      express: '^5',
      express4: 'npm:express@^4',
      '@types/express': dev['@types/express'],
      '@types/express4': 'npm:@types/express@^4',
      pnpm: '^10',
    },
  });
  const t0 = Date.now();
  const [b, f] = await Promise.all([npmInstall(dirs.base, t), npmInstall(dirs.full, t)]);
  t.diagnostic(`installs: base ${b.ms} ms, tools ${f.ms} ms (in parallel: ${Date.now() - t0} ms)`);
  assert.equal(b.code, 0, describe(b));
  assert.equal(f.code, 0, describe(f));
  const pkgDir = path.join(dirs.base, 'node_modules', ...PKG.name.split('/'));
  assert.equal(JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')).version, PKG.version);
  // What the cases below rely on: express (and its types) only where the apps are.
  assert.ok(!fs.existsSync(path.join(dirs.base, 'node_modules', 'express')), 'no express next to the package');
  assert.ok(!fs.existsSync(path.join(dirs.base, 'node_modules', '@types', 'express')), 'no @types/express next to the package');
  assert.ok(fs.existsSync(path.join(dirs.full, 'node_modules', 'express', 'package.json')));
  installed.base = pkgDir;
  installed.tools = true;
});

// ---- TypeScript ---------------------------------------------------------------------

// node10 keeps TypeScript's default libs (DOM included, as a full-stack app
// has); the others are Node-only projects (`lib: ["es2022"]`), which also
// catches a declaration that needs DOM types.
const NODE_LIB = { lib: ['es2022'] };
const TS_MODES = {
  node10: { module: 'commonjs', moduleResolution: 'node10', file: 'index.ts' },
  node16: { module: 'node16', moduleResolution: 'node16', file: 'index.ts', ...NODE_LIB },
  // As an ES module: named imports from the CommonJS package.
  nodenext: { module: 'nodenext', moduleResolution: 'nodenext', file: 'index.mts', ...NODE_LIB },
  bundler: { module: 'esnext', moduleResolution: 'bundler', file: 'index.ts', ...NODE_LIB },
};

function tsProject(dir, mode, source, extra = {}) {
  const { file, ...options } = TS_MODES[mode];
  write(path.join(dir, file), source);
  write(path.join(dir, 'tsconfig.json'), {
    compilerOptions: { strict: true, skipLibCheck: false, noEmit: true, target: 'ES2022', ...options, types: ['node'], ...extra },
    files: [file],
  });
  return { file, tsc: () => node([path.join(dirs.base, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], { cwd: dir, timeout: 120_000 }) };
}

/** Runs `fn` on each item, two at a time (the machine may have two cores); resolves [item, result] pairs in order. */
async function inPairs(items, fn) {
  const out = [];
  for (let i = 0; i < items.length; i += 2) {
    const pair = items.slice(i, i + 2);
    const rs = await Promise.all(pair.map(fn));
    pair.forEach((item, j) => out.push([item, rs[j]]));
  }
  return out;
}

/** `index.ts(12,5): error TS2322: ...` lines (in any file, the package's .d.ts included), as { file, line, code }. */
const tsErrors = (out) => [...out.matchAll(/^(\S.*?)\((\d+),\d+\): error (TS\d+)/gm)].map((m) => ({ file: m[1], line: Number(m[2]), code: m[3] }));

test('TypeScript strict, skipLibCheck: false, without @types/express: every subpath under node10, node16, nodenext and bundler, no `any`', { timeout: 300_000 }, async (t) => {
  assert.ok(installed.base, 'the install test ran');
  const good = fixture('types-all.ts');
  const wrongText = fixture('types-wrong.ts');
  const firstWrong = good.split('\n').length + wrongText.split('\n').findIndex((l) => l.includes('// WRONG'));
  const expectedWrong = wrongText.split('\n').filter((l) => l.includes('// WRONG')).map((_, i) => firstWrong + i);
  // One compile per mode, of the file with the wrong uses appended: errors
  // on exactly the wrong lines say both that the rest type-checks and that
  // nothing there is `any`. Two compiles at a time.
  const results = await inPairs(Object.keys(TS_MODES), (mode) => tsProject(path.join(dirs.base, `ts-${mode}`), mode, good + wrongText).tsc());
  for (const [mode, r] of results) {
    t.diagnostic(`tsc ${mode}: ${r.ms} ms`);
    assert.notEqual(r.code, 0, `${mode}: the wrong uses compiled: ${describe(r)}`);
    const errors = tsErrors(r.stdout);
    assert.deepEqual([...new Set(errors.map((e) => e.file))], [TS_MODES[mode].file], `${mode}: errors only in the consumer's file:\n${r.stdout}`);
    assert.deepEqual([...new Set(errors.map((e) => e.line))], expectedWrong, `${mode}: one error per wrong line, nothing else:\n${r.stdout}`);
  }
});

test('TypeScript strict, skipLibCheck: false, with @types/express 5 (node10, nodenext) and 4 (node10): routers and middleware fit Express', { timeout: 180_000 }, async (t) => {
  assert.ok(installed.tools, 'the install test ran');
  const src = fixture('types-express.ts');
  const cases = {
    'node10 @types/express 5': ['node10', {}],
    'nodenext @types/express 5': ['nodenext', {}],
    // @types/express@4 installed under another name: `paths` points `express` at it.
    'node10 @types/express 4': ['node10', { paths: { express: [path.join(dirs.full, 'node_modules', '@types', 'express4')] } }],
  };
  const results = await inPairs(Object.keys(cases), (name) => {
    const [mode, extra] = cases[name];
    return tsProject(path.join(dirs.full, `ts-express-${name.replace(/\W+/g, '-')}`), mode, src, { esModuleInterop: true, ...extra }).tsc();
  });
  assert.match(JSON.parse(fs.readFileSync(path.join(dirs.full, 'node_modules', '@types', 'express4', 'package.json'), 'utf8')).version, /^4\./);
  for (const [name, r] of results) {
    t.diagnostic(`tsc ${name}: ${r.ms} ms`);
    assert.equal(r.code, 0, `${name}: ${describe(r)}`);
  }
});

// ---- Jest, vitest -------------------------------------------------------------------

/** A package as `from`'s chain of dependencies sees it (each Jest has its own jest-environment-node). */
function resolveVia(start, ...chain) {
  let dir = start;
  for (const name of chain) dir = path.dirname(require.resolve(`${name}/package.json`, { paths: [dir] }));
  return dir;
}

// Under jsdom, supertest's dependencies (formidable, cuid2) need TextEncoder,
// which Jest's jsdom environment lacks: the usual polyfill, put AFTER the
// package is loaded, so the package itself gets no help.
const JSDOM_POLYFILL = `const { TextEncoder, TextDecoder } = require('node:util');\nObject.assign(globalThis, { TextEncoder, TextDecoder });\n`;

async function jest(version, envs) {
  const dir = path.join(dirs.full, `jest${version}`);
  const jestDir = path.join(dirs.full, 'node_modules', `jest${version}`);
  const nodeEnv = resolveVia(jestDir, 'jest-cli', 'jest-config', 'jest-environment-node');
  write(path.join(dir, 'package.json'), { name: `jest${version}-consumer`, private: true, jest: { testEnvironment: nodeEnv } });
  for (const env of envs) {
    const where = env === 'node' ? nodeEnv : path.join(dirs.full, 'node_modules', `jest-environment-jsdom${version}`);
    const spec = fixture('jest-spec.cjs').replace('// @polyfill\n', env === 'jsdom' ? JSDOM_POLYFILL : '');
    write(path.join(dir, `${env}.test.js`), `/**\n * @jest-environment ${where}\n */\nprocess.env.RC_EXPECT_ENV = ${JSON.stringify(env)};\n${spec}`);
  }
  const out = path.join(dir, 'result.json');
  const bin = path.join(dirs.full, 'node_modules', `jest${version}`, 'bin', 'jest.js');
  const r = await node([bin, '--ci', '--runInBand', '--rootDir', dir, '--cacheDirectory', path.join(scratch, `jest-cache-${version}`), '--json', '--outputFile', out], { cwd: dir, timeout: 150_000 });
  const result = fs.existsSync(out) ? JSON.parse(fs.readFileSync(out, 'utf8')) : null;
  return { r, result };
}

function assertJest(version, envs, { r, result }) {
  assert.ok(result, `jest ${version} wrote no result: ${describe(r)}`);
  const files = result.testResults.map((f) => [path.basename(f.name), f.status, f.assertionResults.map((a) => `${a.status}: ${a.title}`), f.message]);
  assert.equal(r.code, 0, `jest ${version}: ${JSON.stringify(files, null, 2)}\n${describe(r)}`);
  assert.deepEqual(files.map((f) => f[0]).sort(), envs.map((e) => `${e}.test.js`).sort());
  assert.equal(result.numPassedTests, envs.length * 3, `every test ran and passed: ${JSON.stringify(files, null, 2)}`);
  assert.equal(result.numFailedTests, 0);
}

for (const version of ['29', '30']) {
  test(`Jest ${version}, testEnvironment node and jsdom: Express 4 and 5 over supertest, metrics, stack, routers, a breaker with a timeout`, { timeout: 180_000 }, async (t) => {
    assert.ok(installed.tools, 'the install test ran');
    const res = await jest(version, ['node', 'jsdom']);
    t.diagnostic(`jest ${version}: ${res.r.ms} ms`);
    assertJest(version, ['node', 'jsdom'], res);
  });
}

test('Jest 27 (no `exports` support): every subpath resolves through its folder, and the app works', { timeout: 180_000 }, async (t) => {
  assert.ok(installed.tools, 'the install test ran');
  const dir = path.join(dirs.full, 'jest27');
  write(
    path.join(dir, 'subpaths.test.js'),
    `const path = require('node:path');\n` +
      `test.each(${JSON.stringify(SUBPATHS.filter((s) => s !== 'react'))})('%s', (sub) => {\n` +
      `  const m = require('${PKG.name}/' + sub);\n` +
      `  expect(Object.keys(m).length).toBeGreaterThan(0);\n` +
      `  const real = require('${PKG.name}/' + sub);\n` +
      // The file the exports map names for the subpath: the folder must lead to the same module.
      `  const file = ${JSON.stringify(Object.fromEntries(SUBPATHS.map((s) => [s, PKG.exports['./' + s].default])))}[sub];\n` +
      `  expect(real).toBe(require(path.join(path.dirname(require.resolve('${PKG.name}/package.json')), file)));\n` +
      `});\n` +
      `test('react', () => expect(typeof require('${PKG.name}/react').OpsDashboard).toBe('function'));\n`,
  );
  const res = await jest('27', ['node']);
  t.diagnostic(`jest 27: ${res.r.ms} ms`);
  assert.ok(res.result, describe(res.r));
  const failed = res.result.testResults.flatMap((f) => f.assertionResults.filter((a) => a.status !== 'passed').map((a) => `${a.fullName}: ${a.failureMessages.join('\n').slice(0, 600)}`));
  assert.deepEqual(failed, [], `jest 27:\n${res.result.testResults.map((f) => f.message).join('\n').slice(0, 6000)}`);
  assert.equal(res.r.code, 0, describe(res.r));
  assert.equal(res.result.numPassedTests, SUBPATHS.length + 3);
});

for (const pool of ['threads', 'forks']) {
  test(`vitest 3, pool ${pool}: ES module imports, Express 5 over supertest, a breaker with a timeout`, { timeout: 150_000 }, async (t) => {
    assert.ok(installed.tools, 'the install test ran');
    const dir = path.join(dirs.full, `vitest-${pool}`);
    write(path.join(dir, 'package.json'), { name: `vitest-${pool}-consumer`, private: true, type: 'module' });
    write(path.join(dir, 'app.test.mjs'), fixture('vitest-spec.mjs'));
    const out = path.join(dir, 'result.json');
    const bin = path.join(dirs.full, 'node_modules', 'vitest', 'vitest.mjs');
    const r = await node([bin, 'run', '--root', dir, '--pool', pool, '--reporter', 'json', '--outputFile', out], { cwd: dir, timeout: 120_000, env: { RC_EXPECT_POOL: pool } });
    t.diagnostic(`vitest ${pool}: ${r.ms} ms`);
    assert.ok(fs.existsSync(out), describe(r));
    const result = JSON.parse(fs.readFileSync(out, 'utf8'));
    const lines = result.testResults.flatMap((f) => [f.message ?? '', ...f.assertionResults.map((a) => `${a.status}: ${a.title} ${a.failureMessages.join('\n').slice(0, 800)}`)]);
    assert.equal(r.code, 0, `${lines.join('\n')}\n${describe(r)}`);
    assert.equal(result.numPassedTests, 2, lines.join('\n'));
  });
}

// ---- express from the app: pnpm, a linked install, none at all ---------------------

function assertServed(served, what) {
  assert.deepEqual(served, { metrics: 200, live: 200, summary: 200, observabilityDashboard: 200, opsStatus: 200, dashboard: 200 }, what);
}

/** The tarball unpacked once, as a source checkout or `npm link` would leave the package. */
async function unpacked() {
  const pkg = path.join(scratch, 'unpacked');
  if (fs.existsSync(path.join(pkg, 'package.json'))) return pkg;
  fs.mkdirSync(pkg, { recursive: true });
  const x = await run('tar', ['-xzf', tarball, '-C', pkg, '--strip-components=1'], { cwd: pkg, timeout: 30_000 });
  assert.equal(x.code, 0, describe(x));
  return pkg;
}

test('pnpm 10, nothing hoisted, express only in the app: from the tarball, and linked into a workspace app; every router works', { timeout: 240_000 }, async (t) => {
  assert.ok(installed.tools, 'the install test ran');
  // One pnpm workspace, two apps with express 5: "store-app" installs the
  // tarball (pnpm's virtual store: pnpm links the app's express to the
  // package as its optional peer), "linked-app" has it as `link:` (a
  // monorepo's package or a checkout: pnpm manages none of its peers, so
  // express is not resolvable from the package's real path).
  const dir = dirs.pnpm;
  const pkg = await unpacked();
  write(path.join(dir, 'pnpm-workspace.yaml'), 'packages:\n  - store-app\n  - linked-app\n');
  // The strict layout: no hoisting into node_modules/.pnpm/node_modules either.
  write(path.join(dir, '.npmrc'), 'hoist=false\n');
  write(path.join(dir, 'package.json'), { name: 'rc-pnpm-workspace', private: true });
  for (const [app, spec] of [['store-app', `file:${tarball}`], ['linked-app', `link:${pkg}`]]) {
    write(path.join(dir, app, 'package.json'), { name: app, private: true, dependencies: { [PKG.name]: spec, express: '^5' } });
    write(path.join(dir, app, 'routers-app.cjs'), fixture('routers-app.cjs'));
  }
  const pnpm = path.join(dirs.full, 'node_modules', 'pnpm', 'bin', 'pnpm.cjs');
  const args = [pnpm, 'install', '--store-dir', path.join(scratch, 'pnpm-store'), '--reporter', 'append-only'];
  let r = await node([...args, '--prefer-offline'], { cwd: dir, timeout: 180_000 });
  if (r.code !== 0) {
    t.diagnostic(`pnpm install with the cache first failed, retrying:\n${describe(r)}`);
    r = await node(args, { cwd: dir, timeout: 180_000 });
  }
  t.diagnostic(`pnpm install: ${r.ms} ms`);
  assert.equal(r.code, 0, describe(r));
  for (const app of ['store-app', 'linked-app']) {
    const c = await node(['routers-app.cjs'], { cwd: path.join(dir, app), timeout: 30_000 });
    assert.equal(c.code, 0, `${app}: ${describe(c)}`);
    const out = lastJson(c.stdout);
    t.diagnostic(`${app}: ${JSON.stringify(out)}`);
    if (app === 'store-app') {
      assert.ok(out.packageFolder.includes(`${path.sep}.pnpm${path.sep}`), `loaded from pnpm's virtual store: ${out.packageFolder}`);
    } else {
      assert.equal(fs.realpathSync(out.packageFolder), path.join(pkg, 'dist'), 'loaded through the link');
      assert.equal(out.expressFromPackage, false, 'the case is real: express is not resolvable from the package');
    }
    assert.equal(out.expressFromApp, true);
    assert.match(out.express, /^5\./);
    assertServed(out.served, app);
  }
});

test('a linked install (the package\'s real path outside the app): every router finds the app\'s express', { timeout: 60_000 }, async (t) => {
  assert.ok(installed.tools && tarball, 'the install test ran');
  // What `npm link` or `npm i ../pkg` leave: node_modules/<name> is a
  // symlink to a folder elsewhere, and Node resolves from its real path.
  const pkg = await unpacked();
  const app = path.join(dirs.linked, 'app');
  fs.mkdirSync(path.join(app, 'node_modules', '@dreamnet'), { recursive: true });
  fs.symlinkSync(pkg, path.join(app, 'node_modules', ...PKG.name.split('/')), 'dir');
  fs.symlinkSync(path.join(dirs.full, 'node_modules', 'express'), path.join(app, 'node_modules', 'express'), 'dir');
  write(path.join(app, 'routers-app.cjs'), fixture('routers-app.cjs'));
  const c = await node(['routers-app.cjs'], { cwd: app, timeout: 30_000 });
  assert.equal(c.code, 0, describe(c));
  const out = lastJson(c.stdout);
  t.diagnostic(JSON.stringify(out));
  assert.equal(fs.realpathSync(out.packageFolder), path.join(pkg, 'dist'));
  assert.equal(out.expressFromPackage, false, 'the case is real: express is not resolvable from the package');
  assert.equal(out.expressFromApp, true);
  assertServed(out.served, 'linked');
});

test('no express anywhere: a clear error naming what was tried and the fixes; `{ express }` passed by hand works', { timeout: 60_000 }, async (t) => {
  assert.ok(installed.base && installed.tools, 'the install test ran');
  const dir = path.join(dirs.base, 'missing');
  write(path.join(dir, 'routers-app.cjs'), fixture('routers-app.cjs'));
  const c = await node(['routers-app.cjs', 'missing'], { cwd: dir, timeout: 30_000, env: { RC_EXPRESS: path.join(dirs.full, 'node_modules', 'express') } });
  assert.equal(c.code, 0, describe(c));
  const out = lastJson(c.stdout);
  t.diagnostic(JSON.stringify(out));
  assert.equal(out.expressFromPackage, false);
  assert.equal(out.expressFromApp, false);
  assert.equal(out.error?.code, 'ERR_EXPRESS_NOT_FOUND', JSON.stringify(out.error));
  assert.match(out.error.message, /^createMetricsRouter\(\) needs express/);
  assert.ok(out.error.message.includes(dir), `names the app's folder: ${out.error.message}`);
  assert.ok(out.error.message.includes(path.join(installed.base, 'dist')), `names the package's folder: ${out.error.message}`);
  assert.match(out.error.message, /npm i express/);
  assert.match(out.error.message, /\{ express: require\('express'\) \}/);
  assertServed(out.passed, 'express passed as an option');
});
