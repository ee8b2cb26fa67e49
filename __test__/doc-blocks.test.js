// @ts-check
'use strict';
// Every ```js, ```ts and ```sh block in README.md and docs/*.md runs as written, so an
// example cannot rot:
// - js: its own file in a folder inside the package (`require('@dreamnet/reliability-core/…')`
//   resolves by self-reference to the built package), run by node; it must exit 0, on its own.
// - ts: type-checked by tsc against the built types (dist/, index.d.ts), strict.
// - sh: run by sh from the repository root; it must exit 0.
// A block that cannot run alone (needs a server, a database, an install) has
// `<!-- not-run: reason -->` on the line before its fence; the reason is required.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.join(__dirname, '..');
const LANGS = { js: 'js', javascript: 'js', ts: 'ts', typescript: 'ts', sh: 'sh', bash: 'sh', shell: 'sh' };

/**
 * The fenced blocks of one markdown file.
 *
 * @example
 *   blocks('README.md')[0] // { file: 'README.md', line: 11, lang: 'sh', code: 'npm install …', notRun: 'installs from the registry' }
 */
function blocks(rel) {
  const lines = fs.readFileSync(path.join(root, rel), 'utf8').split('\n');
  const out = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*$/.exec(lines[i]);
    if (!open) continue;
    let j = i + 1;
    while (j < lines.length && !/^```\s*$/.test(lines[j])) j++;
    const lang = LANGS[open[1].toLowerCase()];
    const marker = /^<!--\s*not-run:\s*(.*?)\s*-->\s*$/.exec(lines[i - 1] ?? '');
    if (lang) out.push({ file: rel, line: i + 1, lang, code: lines.slice(i + 1, j).join('\n') + '\n', notRun: marker ? marker[1] : null });
    i = j;
  }
  return out;
}

function docFiles() {
  const docs = fs.readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`);
  return ['README.md', ...docs];
}

const all = docFiles().flatMap(blocks);
const runnable = all.filter((b) => b.notRun === null);

// One scratch folder inside the package, so the package resolves by its own name.
fs.mkdirSync(path.join(root, '.tmp'), { recursive: true });
const scratch = fs.mkdtempSync(path.join(root, '.tmp', 'doc-blocks-'));
test.after(() => fs.rmSync(scratch, { recursive: true, force: true }));

const label = (b) => `${b.file}:${b.line} (${b.lang})`;

// The marker is for the few blocks that cannot run alone, not a way out: this number may
// only go down (a block made runnable lowers it). 20: the 15 that need a database, a server or
// an install, four in docs/TESTING.md that run under Jest or vitest (the testing-kit test runs
// the same specs there), and one in docs/DEPLOYING.md that needs AWS.
const MAX_NOT_RUN = 20;

test('every not-run marker gives its reason, and they stay few', () => {
  for (const b of all) if (b.notRun !== null) assert.ok(b.notRun.length >= 8, `${label(b)}: say why it cannot run alone`);
  const notRun = all.filter((b) => b.notRun !== null);
  assert.ok(notRun.length <= MAX_NOT_RUN, `${notRun.length} blocks are not run (at most ${MAX_NOT_RUN}):\n${notRun.map(label).join('\n')}`);
});

// The names a reference page's fragment takes from the reader's app, as `declare`s: the
// fragment is still checked against the package's types (imports, options, call shapes).
const TS_PRELUDE = `
declare const app: import('express').Express;
declare const port: number;
declare const pool: { query(sql: string, params?: unknown[]): Promise<unknown> };
declare const openai: any;
declare const dlq: { size(): number };
declare const replay: (n: number) => Promise<{ processed: number; failed?: number }>;
declare const skipOptionalWork: () => void;
declare const searchV1: import('express').RequestHandler;
declare const searchV2: import('express').RequestHandler;
declare const req: any;
declare const bus: { publish(topic: string, payload: unknown): Promise<unknown> };
declare const log: (line: string) => void;
`;

for (const b of runnable.filter((x) => x.lang === 'js')) {
  test(`${label(b)} runs`, () => {
    const esm = /^\s*(import|export)\s/m.test(b.code);
    const file = path.join(scratch, `${b.file.replace(/\W/g, '_')}_${b.line}.${esm ? 'mjs' : 'cjs'}`);
    // A CommonJS block may `await` at the top, as the docs read: run it in an async function.
    fs.writeFileSync(file, esm ? b.code : `(async () => {\n${b.code}\n})().catch((e) => { console.error(e); process.exitCode = 1; });\n`);
    const r = spawnSync(process.execPath, [file], { cwd: scratch, encoding: 'utf8', timeout: 30_000, env: { ...process.env, PORT: '0' } });
    assert.equal(r.error?.message ?? null, null, `${label(b)}: ${r.error?.message} (a block must exit on its own)\n${r.stdout}\n${r.stderr}`);
    assert.equal(r.status, 0, `${label(b)} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  });
}

test('every ts block type-checks against the built types', () => {
  const ts = runnable.filter((x) => x.lang === 'ts');
  assert.ok(ts.length > 0);
  const dir = path.join(scratch, 'ts');
  fs.mkdirSync(dir);
  const names = new Map();
  for (const b of ts) {
    const name = `${b.file.replace(/\W/g, '_')}_${b.line}.ts`;
    names.set(name, b);
    // Each block is its own module, so two blocks may declare the same names.
    fs.writeFileSync(path.join(dir, name), `${b.code}\nexport {};\n`);
  }
  fs.writeFileSync(path.join(dir, 'prelude.d.ts'), TS_PRELUDE);
  const pkg = (p) => path.join(root, p);
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      // es2022 modules: the pages `await` at the top, as an ES module may.
      target: 'ES2022', module: 'es2022', moduleResolution: 'bundler', strict: true, noEmit: true,
      // Fragments leave a handler's parameters unannotated, as an app's code would.
      noImplicitAny: false,
      esModuleInterop: true, skipLibCheck: true, types: ['node'], typeRoots: [pkg('node_modules/@types')],
      paths: {
        '@dreamnet/reliability-core': [pkg('dist/index.d.ts')],
        '@dreamnet/reliability-core/native': [pkg('index.d.ts')],
        // Entry files that add their Express side (package.json "exports").
        '@dreamnet/reliability-core/ops': [pkg('dist/entries/ops.d.ts')],
        '@dreamnet/reliability-core/health-gates': [pkg('dist/entries/health-gates.d.ts')],
        '@dreamnet/reliability-core/*': [pkg('dist/*.d.ts')],
        '*': [pkg('node_modules/*'), pkg('node_modules/@types/*')],
      },
    },
    include: ['*.ts', 'prelude.d.ts'],
  }));
  const tsc = require.resolve('typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', dir], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
  // Name each failure by its markdown file and line.
  const where = (r.stdout || '').replace(/^(\S+?\.ts)\((\d+),\d+\)/gm, (m, f, l) => {
    const b = names.get(path.basename(f));
    return b ? `${b.file}:${b.line + Number(l)}` : m;
  });
  assert.equal(r.status, 0, `tsc:\n${where}${r.stderr}`);
});

for (const b of runnable.filter((x) => x.lang === 'sh')) {
  test(`${label(b)} runs`, () => {
    const r = spawnSync('sh', ['-eu', '-c', b.code], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.error?.message ?? null, null, `${label(b)}: ${r.error?.message}\n${r.stdout}\n${r.stderr}`);
    assert.equal(r.status, 0, `${label(b)} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  });
}
