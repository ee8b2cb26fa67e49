#!/usr/bin/env node
// @ts-check
'use strict';
// Every exported TS function and class of each package subpath (except `@internal`
// ones) has a doc comment with a short example; every public Rust item has a doc comment (rustdoc's `missing_docs`).
//
//   node scripts/check-docs.js            # fails on a gap that scripts/docs-allowlist.json does not name
//   node scripts/check-docs.js --list     # prints every gap
//   node scripts/check-docs.js --update   # rewrites the allowlist to today's gaps; refuses to add any
//
// The allowlist holds the gaps found when the checker came in; it may only shrink: a new
// function without docs fails, documenting a listed one prints a note to run --update.
// An example is an `@example` tag, a ``` block, or a line indented in the comment
// (` *   code()`), the style lib/ uses.
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const ts = require('typescript');

const root = path.join(__dirname, '..');
const ALLOW = path.join(__dirname, 'docs-allowlist.json');

/** The TS entry file of each subpath in package.json's `exports` (the root is `.`). */
function entries() {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  const out = [];
  for (const [sub, target] of Object.entries(pkg.exports)) {
    const d = typeof target === 'string' ? target : target.default;
    const m = /^\.\/dist\/(.+)\.js$/.exec(d ?? '');
    if (m) out.push({ sub, file: path.join(root, 'lib', `${m[1]}.ts`) });
  }
  return out.filter((e) => fs.existsSync(e.file));
}

function hasExample(text) {
  return /@example/.test(text) || /```/.test(text) || /^\s*\*\s{3,}\S/m.test(text);
}

/**
 * Gaps in the TS surface: `subpath#name: no doc comment` or `: no example`.
 *
 * @example
 *   tsGaps() // ['./ops#getOps: no example', ...]
 */
function tsGaps() {
  const list = entries();
  const program = ts.createProgram(list.map((e) => e.file), { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS, strict: true, skipLibCheck: true, types: ['node'] });
  const checker = program.getTypeChecker();
  const gaps = new Set();
  const seen = new Set();
  for (const e of list) {
    const sf = program.getSourceFile(e.file);
    const mod = sf && checker.getSymbolAtLocation(sf);
    if (!mod) continue;
    for (let sym of checker.getExportsOfModule(mod)) {
      const name = sym.getName();
      if (sym.flags & ts.SymbolFlags.Alias) sym = checker.getAliasedSymbol(sym);
      const decl = sym.declarations?.[0];
      if (!decl) continue;
      const isFn = ts.isFunctionDeclaration(decl) || (ts.isVariableDeclaration(decl) && decl.initializer && (ts.isArrowFunction(decl.initializer) || ts.isFunctionExpression(decl.initializer)));
      const isClass = ts.isClassDeclaration(decl);
      if (!isFn && !isClass) continue;
      // A name re-exported by several subpaths is one item: report it where it is declared.
      const where = `${path.relative(root, decl.getSourceFile().fileName)}#${name}`;
      if (seen.has(where)) continue;
      seen.add(where);
      if (decl.getSourceFile().fileName.endsWith('.d.ts')) continue;
      const node = ts.isVariableDeclaration(decl) ? decl.parent.parent : decl;
      const docs = ts.getJSDocCommentsAndTags(node).map((d) => d.getText()).join('\n');
      // `@internal` items are the package's own plumbing (TypeDoc leaves them out too).
      if (/@internal\b/.test(docs)) continue;
      if (!docs) gaps.add(`${where}: no doc comment`);
      else if (!hasExample(docs)) gaps.add(`${where}: no example`);
    }
  }
  return [...gaps].sort();
}

/**
 * Public Rust items without a doc comment, as `file: source line` (line numbers move).
 *
 * @example
 *   rustGaps() // ['src/core/rng.rs: pub fn next(&mut self) -> u64 {', ...]
 */
function rustGaps() {
  const r = spawnSync('cargo', ['rustdoc', '--lib', '--quiet', '--', '-W', 'missing_docs'], { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`cargo rustdoc failed:\n${r.stderr}`);
  const gaps = [];
  const re = /^warning: missing documentation for [^\n]*\n\s*--> ([^:\n]+):(\d+):\d+\n\s*\|\n\s*\d+\s*\|([^\n]*)/gm;
  let m;
  while ((m = re.exec(r.stderr))) gaps.push(`${m[1]}: ${m[3].trim()}`);
  return gaps.sort();
}

function main(argv) {
  const gaps = { ts: tsGaps(), rust: rustGaps() };
  if (argv.includes('--list')) {
    for (const k of ['ts', 'rust']) for (const g of gaps[k]) process.stdout.write(`${k}\t${g}\n`);
    return 0;
  }
  const allow = fs.existsSync(ALLOW) ? JSON.parse(fs.readFileSync(ALLOW, 'utf8')) : { ts: [], rust: [] };
  let bad = 0;
  const fresh = {};
  for (const k of ['ts', 'rust']) {
    // Multisets: two fields `pub id: u64,` in one file are two gaps.
    const left = new Map();
    for (const a of allow[k] ?? []) left.set(a, (left.get(a) ?? 0) + 1);
    fresh[k] = [];
    for (const g of gaps[k]) {
      const n = left.get(g) ?? 0;
      if (n > 0) left.set(g, n - 1);
      else fresh[k].push(g);
    }
    const stale = [...left].reduce((s, [, n]) => s + n, 0);
    for (const g of fresh[k]) process.stderr.write(`check-docs: ${k}: ${g}\n`);
    bad += fresh[k].length;
    process.stdout.write(`check-docs: ${k}: ${gaps[k].length} gaps, ${gaps[k].length - fresh[k].length} allowlisted, ${fresh[k].length} new${stale ? `, ${stale} documented since (run --update to shrink the allowlist)` : ''}\n`);
  }
  if (argv.includes('--update')) {
    if (bad) {
      process.stderr.write('check-docs: --update only shrinks the allowlist: document the new items above first\n');
      return 1;
    }
    fs.writeFileSync(ALLOW, JSON.stringify({ '//': 'Doc gaps that predate scripts/check-docs.js. May only shrink.', ts: gaps.ts, rust: gaps.rust }, null, 2) + '\n');
    return 0;
  }
  if (bad) process.stderr.write('check-docs: document the items above (a doc comment with a short example)\n');
  return bad ? 1 : 0;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));

module.exports = { tsGaps, rustGaps };
