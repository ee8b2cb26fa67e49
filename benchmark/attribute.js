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
 *
 * `node --expose-gc benchmark/attribute.js closed-path` (no perf needed):
 * the closed breaker path of `await breaker.execute(async () => 1)` taken
 * apart. perf cannot split it by function (TurboFan inlines the parts into
 * one frame), so each part is measured by ablation in one interleaved run:
 * replicas that add one part at a time (one `.then`, its closures, the
 * clock reads, the ring write), beside the real breaker (default, and with
 * `exactLatency: true`: two clock reads per call) and cockatiel. Figures are
 * CPU ns per call over a bare `await f()` of the same round, medians over
 * rounds (BENCH_ROUNDS, default 9; BENCH_N calls, default 200000).
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

/** The closed path by ablation (see the header): prints and returns { part: ns }. */
async function closedPath() {
  const { performance } = require('node:perf_hooks');
  const { setImmediate: nodeSetImmediate } = require('node:timers');
  const CB = require(path.join(__dirname, '..', 'dist', 'circuit-breaker.js'));
  const cockatiel = require('cockatiel');
  CB.configureCircuitBreakers({ logger: null });
  const rounds = SMOKE ? 2 : Number(process.env.BENCH_ROUNDS) || 9;
  const n = SMOKE ? 2000 : Number(process.env.BENCH_N) || 200_000;
  const f = async () => 1;
  // Replicas of lib/circuit-breaker.ts's parts (a ring of 512, the epoch slot, the turn clock).
  const ring = new Float64Array(1 + 3 * 512);
  const io = new Float64Array(8);
  const push = (id, latency, at) => {
    let k = ring[0];
    if (k >= 512) k = 0;
    const o = 1 + 3 * k;
    ring[o] = id;
    ring[o + 1] = latency;
    ring[o + 2] = at;
    ring[0] = k + 1;
  };
  let turnAt = 0;
  let dirty = true;
  const ended = () => (dirty = true);
  const readTurn = () => {
    dirty = false;
    turnAt = performance.now();
    nodeSetImmediate(ended).unref();
    return turnAt;
  };
  const me = { id: 3, epoch: 0 };
  const fail = (e) => {
    throw e;
  };
  const C = {
    'bare await f()': () => f(),
    'one .then(v => v)': () => f().then((v) => v),
    '+ closures (this, t0; ok and fail)': () => {
      const t0 = turnAt;
      return f().then((v) => (me.x = t0) && v, fail);
    },
    '+ two turn-clock reads': () => {
      const t0 = dirty ? readTurn() : turnAt;
      return f().then((v) => {
        const t1 = dirty ? readTurn() : turnAt;
        me.x = t1 - t0;
        return v;
      }, fail);
    },
    '+ epoch check and ring write (the design)': () => {
      const t0 = dirty ? readTurn() : turnAt;
      return f().then((v) => {
        const t1 = dirty ? readTurn() : turnAt;
        if (io[7] === me.epoch) push(me.id, t1 - t0, t1);
        return v;
      }, fail);
    },
    'same with two performance.now() (former)': () => {
      const t0 = performance.now();
      return f().then((v) => {
        const t1 = performance.now();
        if (io[7] === me.epoch) push(me.id, t1 - t0, t1);
        return v;
      }, fail);
    },
    'async/await instead of .then (same parts)': async () => {
      const t0 = dirty ? readTurn() : turnAt;
      const v = await f();
      const t1 = dirty ? readTurn() : turnAt;
      if (io[7] === me.epoch) push(me.id, t1 - t0, t1);
      return v;
    },
  };
  const reg = CB.getCircuitBreakerRegistry();
  const ours = reg.get('parts-default');
  const exact = reg.get('parts-exact', { exactLatency: true });
  const ck = cockatiel.circuitBreaker(cockatiel.handleAll, { halfOpenAfter: 10_000, breaker: new cockatiel.ConsecutiveBreaker(5) });
  C['real breaker, default (turn clock)'] = () => ours.execute(f);
  C['real breaker, exactLatency: true'] = () => exact.execute(f);
  C['cockatiel 4 consecutive breaker'] = () => ck.execute(f);
  const names = Object.keys(C);
  const raw = Object.fromEntries(names.map((k) => [k, []]));
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(k + r) % names.length];
      const fn = C[name];
      if (typeof global.gc === 'function') global.gc();
      const c0 = process.cpuUsage();
      for (let i = 0; i < n; i++) await fn();
      const c = process.cpuUsage(c0);
      raw[name].push(((c.user + c.system) * 1000) / n);
      // Let the turn end (the turn clock's setImmediate runs) between contenders.
      await new Promise((res) => setImmediate(res));
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const base = raw['bare await f()'];
  const out = {};
  console.log(`Closed breaker path by ablation: CPU ns per call over a bare await f(), median of ${rounds} rounds x ${n} calls (${os.cpus().length} x ${os.cpus()[0].model}, Node ${process.version})`);
  for (const name of names.slice(1)) {
    out[name] = median(raw[name].map((x, i) => x - base[i]));
    console.log(`  ${name.padEnd(44)} ${out[name].toFixed(0).padStart(5)}`);
  }
  return out;
}

async function main() {
  if (args.includes('closed-path')) {
    await closedPath();
    return;
  }
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
