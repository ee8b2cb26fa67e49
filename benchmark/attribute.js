// @ts-check
'use strict';
/**
 * Where a request's server CPU goes, by function: the load server of
 * benchmark/load.js sampled by Linux `perf` (the kernel's cpu-clock, 5 kHz,
 * with V8's JIT dump so JavaScript frames are named), once per mode. Each
 * sample is charged to the innermost JavaScript function on its stack, with
 * the V8 runtime and builtins it called (property lookups, Map hashing, GC
 * write barriers), and the totals are divided by the requests served while
 * perf recorded.
 *
 * Why this and not only load.js: load.js compares whole-process CPU time
 * between runs, which on a shared 2-core VM moves by 5-20 µs per request
 * from run to run. Here the package's own functions are measured inside one
 * run, to about 0.05 µs; what Express and Node spend around them (the extra
 * router layer, the finish event) shows in the per-function differences.
 *
 *   node benchmark/attribute.js [seconds] [mode ...]   (default 12 s; bare ours-stack)
 *   node benchmark/attribute.js --smoke                 (checks the stack parser; a 1 s run if perf is there)
 *   BASE_DIST=/tmp/base/dist node benchmark/attribute.js 12 bare ours-stack ours-stack-base   (before/after)
 *
 * Needs `perf` (Debian: apt-get install -y linux-perf) and permission to
 * sample (root, or kernel.perf_event_paranoid <= 1).
 */
const { spawnSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startServer, ask: askServer, nodeChild, PIN } = require('./harness');

const SMOKE = process.argv.includes('--smoke');
const args = process.argv.slice(2).filter((a) => a !== '--smoke');
const SECONDS = SMOKE ? 1 : Number(args[0] || 12);
const MODES = args.length > 1 ? args.slice(1) : ['bare', 'ours-stack'];
const WARMUP_MS = SMOKE ? 1500 : 4000;
const OURS = `${path.sep}dist${path.sep}`;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Parses `perf script -F period,ip,sym` output: per stack, the innermost
 * JavaScript frame (`JS:*name file:line:col`) is charged the sample's
 * period in ns. Stacks with no JavaScript frame are charged to their
 * innermost native frame (`native:` + symbol): the event loop, the kernel,
 * the garbage collector on its own.
 */
function attribute(text) {
  const charged = new Map();
  let period = 0;
  let frames = [];
  const flush = () => {
    if (frames.length === 0) return;
    const js = frames.find((f) => f.startsWith('JS:'));
    const key = js ?? `native:${frames[0]}`;
    charged.set(key, (charged.get(key) ?? 0) + period);
    frames = [];
  };
  for (const line of text.split('\n')) {
    const head = /^\s*(\d+)\s*$/.exec(line);
    if (head) {
      flush();
      period = Number(head[1]);
      continue;
    }
    const frame = /^\s+[0-9a-f]+\s+(.+?)\s*$/.exec(line);
    if (frame) {
      // `JS:*fn file:1:2 (/tmp/x/jitted-1-2.so)` -> `JS:fn file:1:2`; `sym+0x1f (dso)` -> `sym`.
      const name = frame[1]
        .replace(/ \([^()]*\)$/, '')
        .replace(/\+0x[0-9a-f]+$/, '')
        .replace(/^JS:[*~^+]?/, 'JS:');
      frames.push(name);
    } else if (line.trim() === '') flush();
  }
  flush();
  return charged;
}

function hasPerf() {
  const r = spawnSync('perf', ['--version'], { encoding: 'utf8' });
  return r.status === 0;
}

async function profile(mode, seconds) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `attr-${mode}-`));
  // V8 writes its JIT dump into the working directory: run the server there.
  // `ours-stack-base`: the stack from another build (BASE_DIST), as in paired.js.
  const env = mode === 'ours-stack-base' ? { OURS_DIST: path.resolve(String(process.env.BASE_DIST)) } : {};
  const { child: server, port } = await startServer(mode === 'ours-stack-base' ? 'ours-stack' : mode, env, { cwd: dir, execArgv: ['--perf-prof', '--perf-prof-unwinding-info'] });
  const ask = () => askServer(server, 'cpu');
  const client = nodeChild(path.join(__dirname, 'load-client.js'), [String(port), String(seconds + WARMUP_MS / 1000 + 3), '50'], '0', { stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    await sleep(WARMUP_MS);
    const data = path.join(dir, 'perf.data');
    const before = await ask();
    const rec = spawn('perf', ['record', '-k', '1', '-e', 'cpu-clock', '-F', '4999', '-g', '-p', String(server.pid), '-o', data, '--', 'sleep', String(seconds)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    rec.stderr.on('data', (d) => (err += d));
    const code = await new Promise((r) => rec.once('exit', r));
    const after = await ask();
    if (code !== 0) throw new Error(`perf record failed (${code}): ${err.trim()}`);
    client.kill();
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
    const injected = path.join(dir, 'perf.jit.data');
    const inj = spawnSync('perf', ['inject', '--jit', '-i', data, '-o', injected], { cwd: dir, encoding: 'utf8' });
    if (inj.status !== 0) throw new Error(`perf inject failed: ${inj.stderr}`);
    const script = spawnSync('perf', ['script', '-i', injected, '-F', 'period,ip,sym'], { cwd: dir, encoding: 'utf8', maxBuffer: 1 << 30 });
    if (script.status !== 0) throw new Error(`perf script failed: ${script.stderr}`);
    const requests = after.calls - before.calls;
    return { mode, requests, charged: attribute(script.stdout) };
  } finally {
    client.kill();
    server.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function perRequest(p) {
  const out = new Map();
  for (const [k, ns] of p.charged) out.set(k, ns / 1000 / p.requests);
  return out;
}

function smokeParser() {
  const sample = [
    '    200040 ',
    '\t          db83ee v8::internal::LoadIC::Load+0x753 (/usr/bin/node)',
    '\t             69c JS:*finish /x/dist/express/tracker.js:164:16+0x61c (/tmp/a/jitted-1-2.so)',
    '\t             330 JS:*resOnFinish node:_http_server:966:21+0x2b0 (/tmp/a/jitted-1-3.so)',
    '',
    '    100020 ',
    '\t          98ef0 cfree@GLIBC_2.2.5+0x0 (/usr/lib/x86_64-linux-gnu/libc.so.6)',
    '',
  ].join('\n');
  const c = attribute(sample);
  const want = [
    ['JS:finish /x/dist/express/tracker.js:164:16', 200040],
    ['native:cfree@GLIBC_2.2.5', 100020],
  ];
  for (const [k, v] of want) if (c.get(k) !== v) throw new Error(`parser: ${k} charged ${c.get(k)}, want ${v} (got ${JSON.stringify([...c])})`);
  if (c.size !== 2) throw new Error(`parser: ${c.size} keys, want 2`);
}

async function main() {
  smokeParser();
  if (!hasPerf()) {
    console.log('perf is not installed (Debian: apt-get install -y linux-perf): nothing to sample.');
    if (SMOKE) return;
    process.exit(1);
  }
  const runs = [];
  try {
    if (MODES.includes('ours-stack-base') && !process.env.BASE_DIST) throw new Error('ours-stack-base needs BASE_DIST (the dist directory of the build to compare with)');
    for (const m of MODES) runs.push(await profile(m, SECONDS));
  } catch (e) {
    // A machine can have perf and still refuse to sample (containers,
    // perf_event_paranoid): the smoke run then stops at the parser check.
    if (SMOKE && /^perf /.test(e.message)) {
      console.log(`perf cannot sample here (${e.message.split('\n')[0]}); the stack parser was checked.`);
      return;
    }
    throw e;
  }
  const per = runs.map(perRequest);
  const total = (m) => [...m.values()].reduce((a, b) => a + b, 0);
  console.log(`Server CPU per request by function (perf cpu-clock, ${SECONDS} s per mode, 50 connections${PIN ? ', pinned' : ''}; ${os.cpus().length} × ${os.cpus()[0].model}, Node ${process.version})`);
  for (let i = 0; i < runs.length; i++) console.log(`  ${runs[i].mode.padEnd(12)} ${total(per[i]).toFixed(1).padStart(7)} µs/request over ${runs[i].requests} requests`);
  const base = per[0];
  const out = { when: new Date().toISOString(), node: process.version, seconds: SECONDS, modes: {} };
  for (let i = 1; i < runs.length; i++) {
    const m = per[i];
    const ours = [...m].filter(([k]) => k.includes(OURS)).sort((a, b) => b[1] - a[1]);
    const oursTotal = ours.reduce((a, [, v]) => a + v, 0);
    const keys = new Set([...base.keys(), ...m.keys()]);
    const others = [...keys]
      .filter((k) => !k.includes(OURS))
      .map((k) => [k, (m.get(k) ?? 0) - (base.get(k) ?? 0)])
      .sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]))
      .slice(0, 12);
    console.log(`\n${runs[i].mode} vs ${runs[0].mode}: ${(total(m) - total(base)).toFixed(1)} µs/request in all (noisy: whole-process), of which the package's own functions ${oursTotal.toFixed(2)} µs:`);
    for (const [k, v] of ours) if (v >= 0.02) console.log(`  ${v.toFixed(2).padStart(6)}  ${k.replace(/ \S*dist\//, ' dist/')}`);
    console.log('  largest differences elsewhere (Express, Node, V8; ± a few tenths of noise):');
    for (const [k, v] of others) console.log(`  ${(v >= 0 ? '+' : '') + v.toFixed(2).padStart(5)}  ${k.replace(/ \S*node_modules\//, ' ')}`);
    out.modes[runs[i].mode] = { totalUs: total(m), baseUs: total(base), oursUs: oursTotal, ours: Object.fromEntries(ours), othersDiffUs: Object.fromEntries(others) };
  }
  if (!SMOKE) {
    const dir = path.join(__dirname, 'results');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'attribution.json'), `${JSON.stringify(out, null, 2)}\n`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
