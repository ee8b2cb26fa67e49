'use strict';
/**
 * Circuit-breaker benchmark: @dreamnet/reliability-core vs opossum 10 vs cockatiel 4.
 *
 *   node --expose-gc benchmark/run.js          (or: npm run bench)
 *
 * 1. Closed path: `await x.execute(async () => 1)` in a tight sequential loop.
 * 2. Open path: breaker forced open, `try { await x.execute(f) } catch {}`.
 * 3. Memory and timers for 10,000 breakers, each library in its own child process.
 *
 * Timed sections are interleaved (round-robin over the contenders, starting
 * contender rotated each round) and medians are reported. This is a
 * benchmark, not a test: it never fails on a figure, it prints the targets
 * next to the figures. See benchmark/README.md.
 */

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const v8 = require('node:v8');

const N_BREAKERS = 10_000;
const TARGETS = {
  closedOverheadNs: 300, // per call, over a bare `await f()` (cockatiel's level)
  openRejectNs: 1000, // per rejected call
  bytesPerBreaker: 1024,
  timersPerBreaker: 0,
};

const gc =
  typeof global.gc === 'function'
    ? () => {
        global.gc();
        global.gc();
      }
    : () => {};

function loadOurs() {
  const m = require('../dist/circuit-breaker.js');
  m.configureCircuitBreakers({ logger: null });
  return m;
}

// ============================================================================
// child mode: memory / timers of 10,000 breakers for one library
// ============================================================================

/**
 * Wraps the global timer functions to count live timers, unref'd ones
 * included (process.getActiveResourcesInfo() only lists ref'd timers).
 * Only used in the `timers` child: the bookkeeping Set would otherwise show
 * up in the heap figures.
 */
function instrumentTimers() {
  const live = new Set();
  const { setTimeout: st, setInterval: si, clearTimeout: ct, clearInterval: ci } = global;
  global.setTimeout = function (cb, ms, ...args) {
    const t = st(
      function () {
        live.delete(t);
        return cb.apply(this, arguments);
      },
      ms,
      ...args,
    );
    live.add(t);
    return t;
  };
  global.setInterval = function (cb, ms, ...args) {
    const t = si(cb, ms, ...args);
    live.add(t);
    return t;
  };
  global.clearTimeout = function (t) {
    live.delete(t);
    return ct(t);
  };
  global.clearInterval = function (t) {
    live.delete(t);
    return ci(t);
  };
  return () => {
    let ref = 0;
    let unref = 0;
    for (const t of live) {
      if (typeof t.hasRef === 'function' && !t.hasRef()) unref++;
      else ref++;
    }
    return { total: live.size, ref, unref };
  };
}

/** process.memoryUsage() plus the physical memory V8's heap spaces occupy. */
function memUsage() {
  const m = process.memoryUsage();
  m.heapPhysical = v8.getHeapSpaceStatistics().reduce((a, s) => a + s.physical_space_size, 0);
  return m;
}

const activeTimeouts = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

/** Returns { make(name) -> handle, call(handle) -> Promise, shutdown(handles) }. */
function childFactory(lib) {
  const f = async () => 1;
  if (lib === 'ours') {
    const m = loadOurs();
    const reg = m.getCircuitBreakerRegistry();
    return {
      make: (name) => reg.get(name),
      call: (b) => b.execute(f),
      shutdown: () => {},
    };
  }
  if (lib === 'opossum') {
    const CircuitBreaker = require('opossum');
    return {
      make: (name) => new CircuitBreaker(f, { name }),
      call: (b) => b.fire(),
      shutdown: (all) => {
        for (const b of all) b.shutdown();
      },
    };
  }
  if (lib === 'cockatiel') {
    const { circuitBreaker, handleAll, ConsecutiveBreaker } = require('cockatiel');
    return {
      make: () => circuitBreaker(handleAll, { halfOpenAfter: 10_000, breaker: new ConsecutiveBreaker(5) }),
      call: (p) => p.execute(() => f()),
      shutdown: () => {},
    };
  }
  throw new Error(`unknown library ${lib}`);
}

async function child(lib, mode) {
  const countTimers = mode === 'timers' ? instrumentTimers() : null;
  const fac = childFactory(lib);
  // Keep every breaker reachable, as an application's registry would (ours
  // already has one; the Map costs the same for all three libraries).
  const held = new Map();
  // Warm-up: first breaker and first call (lazy init, JIT, first mirror page).
  const warm = fac.make('warm-up');
  await fac.call(warm);
  await new Promise((r) => setImmediate(r));
  gc();
  const m0 = memUsage();
  const a0 = activeTimeouts();
  const l0 = countTimers ? countTimers() : null;

  for (let i = 0; i < N_BREAKERS; i++) {
    const name = `svc-${i}`;
    const b = fac.make(name);
    held.set(name, b);
    await fac.call(b);
  }
  await new Promise((r) => setImmediate(r));
  gc();
  const m1 = memUsage();
  const a1 = activeTimeouts();
  const l1 = countTimers ? countTimers() : null;

  const out = { lib, mode, n: N_BREAKERS };
  if (mode === 'mem') {
    const d = (k) => (m1[k] - m0[k]) / N_BREAKERS;
    out.heapUsedPerBreaker = d('heapUsed');
    out.externalPerBreaker = d('external');
    out.arrayBuffersPerBreaker = d('arrayBuffers');
    out.heapPhysicalPerBreaker = d('heapPhysical');
    out.rssPerBreaker = d('rss');
    // RSS growth V8 does not account for (physical heap pages + external):
    // native (malloc'd) memory such as the Rust core's, plus allocator noise.
    out.nativeEstPerBreaker = d('rss') - d('heapPhysical') - d('external');
    out.activeTimeoutsPerBreaker = (a1 - a0) / N_BREAKERS;
    out.activeTimeoutsAfter = a1;
  } else {
    out.liveTimersPerBreaker = (l1.total - l0.total) / N_BREAKERS;
    out.liveRefTimersPerBreaker = (l1.ref - l0.ref) / N_BREAKERS;
    out.liveUnrefTimersPerBreaker = (l1.unref - l0.unref) / N_BREAKERS;
  }
  fac.shutdown([warm, ...held.values()]);
  process.stdout.write(JSON.stringify(out) + '\n');
}

function runChild(lib, mode) {
  const r = spawnSync(process.execPath, ['--expose-gc', __filename, '--child', lib, mode], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  const line = (r.stdout || '').trim().split('\n').pop();
  try {
    return JSON.parse(line);
  } catch {
    return { lib, mode, error: `child failed (status ${r.status}, signal ${r.signal}): ${(r.stderr || '').trim().slice(0, 500)}` };
  }
}

// ============================================================================
// parent mode: interleaved timing
// ============================================================================

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function time(loop, n) {
  gc();
  const t0 = process.hrtime.bigint();
  await loop(n);
  return Number(process.hrtime.bigint() - t0) / n;
}

/** Runs `rounds` rounds over `contenders`, rotating who goes first; returns ns/call per round. */
async function interleave(contenders, n, rounds, warmN, beforeRound) {
  const samples = Object.fromEntries(contenders.map((c) => [c.key, []]));
  for (const c of contenders) await time(c.loop, warmN); // warm-up, discarded
  for (let r = 0; r < rounds; r++) {
    if (beforeRound) beforeRound();
    for (let k = 0; k < contenders.length; k++) {
      const c = contenders[(r + k) % contenders.length];
      samples[c.key].push(await time(c.loop, n));
    }
  }
  return samples;
}

async function main() {
  const started = Date.now();
  const ROUNDS = Number(process.env.BENCH_ROUNDS) || 7;
  const N_CLOSED = Number(process.env.BENCH_N_CLOSED) || 300_000;
  const N_OPEN = Number(process.env.BENCH_N_OPEN) || 200_000;
  if (typeof global.gc !== 'function') console.warn('warning: run with --expose-gc for stable figures');

  const ours = loadOurs();
  const OpossumBreaker = require('opossum');
  const cockatiel = require('cockatiel');
  const opossumVersion = require('opossum/package.json').version;
  const cockatielVersion = require('cockatiel/package.json').version;
  const reg = ours.getCircuitBreakerRegistry();
  const newCockatiel = () =>
    cockatiel.circuitBreaker(cockatiel.handleAll, { halfOpenAfter: 10_000, breaker: new cockatiel.ConsecutiveBreaker(5) });

  const anomalies = [];

  // ---- 1. closed path ------------------------------------------------------
  const f = async () => 1;
  const oursClosed = reg.get('bench-closed');
  const opClosed = new OpossumBreaker(f, {});
  const ckClosed = newCockatiel();
  const ckFn = () => f();

  // Sanity (untimed): each answers 1 and stays closed.
  for (const [name, p] of [
    ['ours', oursClosed.execute(f)],
    ['opossum', opClosed.fire()],
    ['cockatiel', ckClosed.execute(ckFn)],
  ]) {
    const v = await p.catch((e) => e);
    if (v !== 1) anomalies.push(`closed sanity: ${name} answered ${String(v)} instead of 1`);
  }

  // One loop function per contender, so each keeps its own inline caches.
  const closed = [
    {
      key: 'bare',
      loop: async (n) => {
        for (let i = 0; i < n; i++) await f();
      },
    },
    {
      key: 'ours',
      loop: async (n) => {
        const b = oursClosed;
        for (let i = 0; i < n; i++) await b.execute(f);
      },
    },
    {
      key: 'opossum',
      loop: async (n) => {
        const b = opClosed;
        for (let i = 0; i < n; i++) await b.fire();
      },
    },
    {
      key: 'cockatiel',
      loop: async (n) => {
        const p = ckClosed;
        for (let i = 0; i < n; i++) await p.execute(ckFn);
      },
    },
  ];
  process.stdout.write(`closed path: ${ROUNDS} rounds x ${N_CLOSED} calls per contender ... `);
  const closedSamples = await interleave(closed, N_CLOSED, ROUNDS, 30_000);
  console.log('done');

  const oursStateAfterClosed = oursClosed.getState().state;
  if (oursStateAfterClosed !== 'closed') anomalies.push(`ours left the closed path in state ${oursStateAfterClosed}`);
  if (!opClosed.closed) anomalies.push('opossum left the closed path not closed');
  if (ckClosed.state !== cockatiel.CircuitState.Closed) anomalies.push('cockatiel left the closed path not closed');

  // ---- 2. open (fast-reject) path --------------------------------------------
  let reached = { ours: 0, opossum: 0, cockatiel: 0 };
  const fOurs = async () => (reached.ours++, 1);
  const fOp = async () => (reached.opossum++, 1);
  const fCk = async () => (reached.cockatiel++, 1);
  const oursOpen = reg.get('bench-open');
  oursOpen.isolate();
  const opOpen = new OpossumBreaker(fOp, {});
  opOpen.open();
  const ckOpen = newCockatiel();
  const ckIsolation = ckOpen.isolate();
  const prebuilt = new Error('prebuilt');

  // opossum half-opens after resetTimeout (30 s) and a trial would close it: re-open before each round.
  const keepOpen = () => {
    if (!opOpen.opened) opOpen.open();
  };

  // Sanity (untimed): each rejects with its own open-circuit error, without calling f.
  const rejectedWith = {};
  for (const [name, p] of [
    ['ours', oursOpen.execute(fOurs)],
    ['opossum', opOpen.fire()],
    ['cockatiel', ckOpen.execute(fCk)],
  ]) {
    try {
      const v = await p;
      rejectedWith[name] = `resolved ${String(v)}`;
      anomalies.push(`open sanity: ${name} did not reject (answered ${String(v)})`);
    } catch (e) {
      const cls = e && e.constructor && e.constructor.name;
      rejectedWith[name] = `${cls || (e && e.name)}${e && e.code ? ` (${e.code})` : ''}`;
    }
  }
  if (!(await oursOpen.execute(fOurs).catch((e) => e instanceof ours.CircuitOpenError)))
    anomalies.push('ours: open-path rejection is not a CircuitOpenError');
  const oursOpenState = oursOpen.getState().state;
  if (oursOpenState !== 'open') anomalies.push(`ours: getState() after isolate() is ${oursOpenState}, expected open`);

  const open = [
    {
      // Reference: awaiting a promise that is already rejected (what a plain
      // `throw` in an async function produces). Node's rejection tracking
      // makes this cost ~1 us on its own.
      key: 'refRejected',
      loop: async (n) => {
        for (let i = 0; i < n; i++) {
          try {
            await Promise.reject(prebuilt);
          } catch {}
        }
      },
    },
    {
      // Reference: a rejection delivered on the next microtask, after the
      // caller's await is attached (the technique lib/ uses); the floor for
      // a rejecting call with a prebuilt error.
      key: 'refDeferred',
      loop: async (n) => {
        for (let i = 0; i < n; i++) {
          try {
            await new Promise((_, reject) => queueMicrotask(() => reject(prebuilt)));
          } catch {}
        }
      },
    },
    {
      key: 'ours',
      loop: async (n) => {
        const b = oursOpen;
        for (let i = 0; i < n; i++) {
          try {
            await b.execute(fOurs);
          } catch {}
        }
      },
    },
    {
      key: 'opossum',
      loop: async (n) => {
        const b = opOpen;
        for (let i = 0; i < n; i++) {
          try {
            await b.fire();
          } catch {}
        }
      },
    },
    {
      key: 'cockatiel',
      loop: async (n) => {
        const p = ckOpen;
        for (let i = 0; i < n; i++) {
          try {
            await p.execute(fCk);
          } catch {}
        }
      },
    },
  ];
  reached = { ours: 0, opossum: 0, cockatiel: 0 };
  process.stdout.write(`open path:   ${ROUNDS} rounds x ${N_OPEN} calls per contender ... `);
  const openSamples = await interleave(open, N_OPEN, ROUNDS, 20_000, keepOpen);
  console.log('done');
  for (const [k, v] of Object.entries(reached)) {
    if (v > 0) anomalies.push(`open path: ${k} ran the protected function ${v} times while open`);
  }
  opOpen.shutdown();
  opClosed.shutdown();
  ckIsolation.dispose();

  // ---- 3. memory and timers (fresh child per library and mode) ---------------
  process.stdout.write(`memory:      ${N_BREAKERS} breakers per library, fresh child process each ... `);
  const libs = ['ours', 'opossum', 'cockatiel'];
  const memory = {};
  for (const lib of libs) {
    const mem = runChild(lib, 'mem');
    const tim = runChild(lib, 'timers');
    if (mem.error) anomalies.push(`${lib} memory child: ${mem.error}`);
    if (tim.error) anomalies.push(`${lib} timers child: ${tim.error}`);
    memory[lib] = { ...mem, ...tim, mode: undefined };
    delete memory[lib].mode;
    delete memory[lib].lib;
  }
  console.log('done');

  // ---- figures ---------------------------------------------------------------
  const r1 = (x) => (x == null || Number.isNaN(x) ? null : Math.round(x * 10) / 10);
  const r2 = (x) => (x == null || Number.isNaN(x) ? null : Math.round(x * 100) / 100);
  const perRoundOverhead = (key) => closedSamples[key].map((v, i) => v - closedSamples.bare[i]);

  const closedFig = {};
  for (const c of closed) {
    const s = closedSamples[c.key];
    closedFig[c.key] = {
      nsPerCall: r1(median(s)),
      min: r1(Math.min(...s)),
      max: r1(Math.max(...s)),
      overheadNs: c.key === 'bare' ? 0 : r1(median(perRoundOverhead(c.key))),
    };
  }
  const oursOv = closedFig.ours.overheadNs;
  closedFig.ratios = {
    opossumOverOurs: r2(closedFig.opossum.overheadNs / oursOv),
    cockatielOverOurs: r2(closedFig.cockatiel.overheadNs / oursOv),
  };
  if (!(oursOv > 0)) anomalies.push(`ours: closed-path overhead is ${oursOv} ns (<= 0), figure not meaningful`);

  const openFig = {};
  for (const c of open) {
    const s = openSamples[c.key];
    openFig[c.key] = { nsPerCall: r1(median(s)), min: r1(Math.min(...s)), max: r1(Math.max(...s)) };
  }
  openFig.ratios = {
    opossumOverOurs: r2(openFig.opossum.nsPerCall / openFig.ours.nsPerCall),
    cockatielOverOurs: r2(openFig.cockatiel.nsPerCall / openFig.ours.nsPerCall),
  };
  openFig.rejectedWith = rejectedWith;

  const memFig = {};
  for (const lib of libs) {
    const m = memory[lib];
    memFig[lib] = {
      heapUsedPerBreaker: r1(m.heapUsedPerBreaker),
      externalPerBreaker: r1(m.externalPerBreaker),
      arrayBuffersPerBreaker: r1(m.arrayBuffersPerBreaker),
      // `external` already includes `arrayBuffers` in Node's accounting.
      jsVisiblePerBreaker: r1(m.heapUsedPerBreaker + m.externalPerBreaker),
      // Best single estimate of the whole footprint: what V8 sees plus what was malloc'd outside it.
      totalEstPerBreaker: r1(m.heapUsedPerBreaker + m.externalPerBreaker + Math.max(0, m.nativeEstPerBreaker)),
      heapPhysicalPerBreaker: r1(m.heapPhysicalPerBreaker),
      rssPerBreaker: r1(m.rssPerBreaker),
      nativeEstPerBreaker: r1(m.nativeEstPerBreaker),
      activeTimeoutsPerBreaker: r2(m.activeTimeoutsPerBreaker),
      liveTimersPerBreaker: r2(m.liveTimersPerBreaker),
      liveUnrefTimersPerBreaker: r2(m.liveUnrefTimersPerBreaker),
      error: m.error,
    };
  }
  // Observations worth a look (the benchmark never fails on them).
  if (closedFig.cockatiel.overheadNs < oursOv)
    anomalies.push(`closed path: cockatiel's overhead (${closedFig.cockatiel.overheadNs} ns) is below ours (${oursOv} ns)`);
  if (openFig.ours.nsPerCall < TARGETS.openRejectNs && openFig.ours.nsPerCall > 0.9 * TARGETS.openRejectNs)
    anomalies.push(`open path: ours (${openFig.ours.nsPerCall} ns) is within 10 % of the ${TARGETS.openRejectNs} ns target; run-to-run noise can flip it`);
  if (memFig.ours.totalEstPerBreaker >= TARGETS.bytesPerBreaker && memFig.ours.jsVisiblePerBreaker < TARGETS.bytesPerBreaker)
    anomalies.push(
      `memory: ours looks like ${memFig.ours.jsVisiblePerBreaker} B/breaker to V8, but with the Rust side (native~ ${memFig.ours.nativeEstPerBreaker} B) it is ~${memFig.ours.totalEstPerBreaker} B/breaker`,
    );
  if (memFig.cockatiel.totalEstPerBreaker < memFig.ours.totalEstPerBreaker)
    anomalies.push(`memory: cockatiel's total estimate (${memFig.cockatiel.totalEstPerBreaker} B) is below ours (${memFig.ours.totalEstPerBreaker} B)`);

  const pf = (ok) => (ok ? 'MEETS' : 'MISSES');
  const targetsMet = {
    closedOverhead: oursOv <= TARGETS.closedOverheadNs,
    openReject: openFig.ours.nsPerCall < TARGETS.openRejectNs,
    bytesPerBreakerJs: memFig.ours.jsVisiblePerBreaker < TARGETS.bytesPerBreaker,
    bytesPerBreakerTotal: memFig.ours.totalEstPerBreaker < TARGETS.bytesPerBreaker,
    bytesPerBreakerRss: memFig.ours.rssPerBreaker < TARGETS.bytesPerBreaker,
    timersPerBreaker: memFig.ours.activeTimeoutsPerBreaker <= 0 && !(memFig.ours.liveTimersPerBreaker > 0),
  };

  // ---- table -----------------------------------------------------------------
  const pad = (s, w) => String(s ?? '-').padStart(w);
  const padR = (s, w) => String(s ?? '-').padEnd(w);
  const line = '-'.repeat(96);
  const out = [];
  out.push('');
  out.push(`@dreamnet/reliability-core vs opossum ${opossumVersion} vs cockatiel ${cockatielVersion}`);
  out.push(
    `node ${process.version}, ${os.cpus()[0]?.model?.trim() ?? 'cpu?'} x${os.cpus().length}, ${ROUNDS} interleaved rounds, medians`,
  );
  out.push(line);
  out.push(`1. CLOSED PATH  await x.execute(async () => 1), ${N_CLOSED} sequential calls per round`);
  out.push(`   ${padR('contender', 34)}${pad('ns/call', 10)}${pad('min', 9)}${pad('max', 9)}${pad('overhead', 11)}${pad('ovh ratio', 11)}`);
  const closedRows = [
    ['bare', 'bare await f() (baseline)'],
    ['ours', 'reliability-core execute()'],
    ['opossum', `opossum ${opossumVersion} fire() (defaults)`],
    ['cockatiel', `cockatiel ${cockatielVersion} execute()`],
  ];
  for (const [k, label] of closedRows) {
    const c = closedFig[k];
    const ratio = k === 'bare' ? '' : `${r2(c.overheadNs / oursOv)}x`;
    out.push(`   ${padR(label, 34)}${pad(c.nsPerCall, 10)}${pad(c.min, 9)}${pad(c.max, 9)}${pad(k === 'bare' ? '' : c.overheadNs, 11)}${pad(ratio, 11)}`);
  }
  out.push(
    `   overhead ratios: opossum/ours ${closedFig.ratios.opossumOverOurs}x, cockatiel/ours ${closedFig.ratios.cockatielOverOurs}x`,
  );
  out.push(`   target: ours overhead <= ${TARGETS.closedOverheadNs} ns/call -> ${oursOv} ns  ${pf(targetsMet.closedOverhead)}`);
  out.push(line);
  out.push(`2. OPEN PATH  breaker forced open, try { await x.execute(f) } catch {}, ${N_OPEN} calls per round`);
  out.push(`   ${padR('contender', 34)}${pad('ns/call', 10)}${pad('min', 9)}${pad('max', 9)}${pad('ratio', 11)}  rejected with`);
  const openRows = [
    ['refRejected', 'ref: await Promise.reject(e)'],
    ['refDeferred', 'ref: reject on next microtask'],
    ['ours', 'reliability-core isolate()'],
    ['opossum', `opossum ${opossumVersion} open()`],
    ['cockatiel', `cockatiel ${cockatielVersion} isolate()`],
  ];
  for (const [k, label] of openRows) {
    const c = openFig[k];
    const ratio = k.startsWith('ref') ? '' : `${r2(c.nsPerCall / openFig.ours.nsPerCall)}x`;
    out.push(`   ${padR(label, 34)}${pad(c.nsPerCall, 10)}${pad(c.min, 9)}${pad(c.max, 9)}${pad(ratio, 11)}  ${rejectedWith[k] ?? ''}`);
  }
  out.push('   ref rows are not breakers: they show what Node itself charges for a rejected await (prebuilt error).');
  out.push(`   ratios: opossum/ours ${openFig.ratios.opossumOverOurs}x, cockatiel/ours ${openFig.ratios.cockatielOverOurs}x`);
  out.push(`   target: ours rejection < ${TARGETS.openRejectNs} ns -> ${openFig.ours.nsPerCall} ns  ${pf(targetsMet.openReject)}`);
  out.push(line);
  out.push(`3. MEMORY / TIMERS  ${N_BREAKERS} breakers, one successful call each, fresh process per library (bytes per breaker)`);
  out.push(
    `   ${padR('library', 18)}${pad('heapUsed', 10)}${pad('external', 10)}${pad('arrayBuf', 10)}${pad('heap+ext', 10)}${pad('RSS', 10)}${pad('native~', 10)}${pad('total~', 10)}${pad('timers', 8)}${pad('timers*', 9)}`,
  );
  for (const lib of libs) {
    const m = memFig[lib];
    const label = lib === 'ours' ? 'reliability-core' : lib === 'opossum' ? `opossum ${opossumVersion}` : `cockatiel ${cockatielVersion}`;
    if (m.error) {
      out.push(`   ${padR(label, 18)} ERROR: ${m.error}`);
      continue;
    }
    out.push(
      `   ${padR(label, 18)}${pad(m.heapUsedPerBreaker, 10)}${pad(m.externalPerBreaker, 10)}${pad(m.arrayBuffersPerBreaker, 10)}${pad(m.jsVisiblePerBreaker, 10)}${pad(m.rssPerBreaker, 10)}${pad(m.nativeEstPerBreaker, 10)}${pad(m.totalEstPerBreaker, 10)}${pad(m.activeTimeoutsPerBreaker, 8)}${pad(m.liveTimersPerBreaker, 9)}`,
    );
  }
  out.push('   heap+ext = heapUsed + external (external already includes arrayBuffers).');
  out.push("   timers  = getActiveResourcesInfo() 'Timeout' entries per breaker (ref'd timers only).");
  out.push("   timers* = live timers per breaker including unref'd ones (setTimeout/setInterval instrumented, separate child).");
  out.push('   RSS     = process RSS delta: everything, incl. V8 heap pages committed but not yet filled (noisy).');
  out.push('   native~ = RSS - V8 physical heap - external: memory malloc\'d outside V8 (Rust core) + noise; pure-JS');
  out.push('             libraries show the noise floor of this estimate.');
  out.push('   total~  = heap+ext + native~: best single estimate of the footprint per breaker.');
  out.push('   Rust-side state is malloc\'d outside V8: heapUsed/external do not see it; RSS and native~ do.');
  out.push(
    `   target: ours < ${TARGETS.bytesPerBreaker} B/breaker -> heap+ext ${memFig.ours.jsVisiblePerBreaker} B ${pf(targetsMet.bytesPerBreakerJs)}, total~ ${memFig.ours.totalEstPerBreaker} B ${pf(targetsMet.bytesPerBreakerTotal)}, RSS ${memFig.ours.rssPerBreaker} B ${pf(targetsMet.bytesPerBreakerRss)}`,
  );
  out.push(
    `   target: ours ${TARGETS.timersPerBreaker} timers/breaker -> ${memFig.ours.activeTimeoutsPerBreaker} ref'd, ${memFig.ours.liveTimersPerBreaker} incl. unref'd  ${pf(targetsMet.timersPerBreaker)}`,
  );
  out.push(line);
  const elapsedS = Math.round((Date.now() - started) / 100) / 10;
  out.push(`notes / anomalies: ${anomalies.length ? '' : 'none'}`);
  for (const a of anomalies) out.push(`   - ${a}`);
  out.push(`total time ${elapsedS} s`);
  console.log(out.join('\n'));

  const result = {
    date: new Date().toISOString(),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    cpu: os.cpus()[0]?.model?.trim(),
    cores: os.cpus().length,
    versions: { opossum: opossumVersion, cockatiel: cockatielVersion, ours: require('../package.json').version },
    rounds: ROUNDS,
    closed: { calls: N_CLOSED, ...closedFig },
    open: { calls: N_OPEN, ...openFig },
    memory: { breakers: N_BREAKERS, ...memFig },
    targets: TARGETS,
    targetsMet,
    anomalies,
    elapsedS,
  };
  const json = JSON.stringify(result);
  console.log(`JSON ${json}`);
  const dir = path.join(__dirname, 'results');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'breakers.json'), JSON.stringify(result, null, 2) + '\n');
  console.log(`written ${path.relative(process.cwd(), path.join(dir, 'breakers.json'))}`);
}

if (process.argv[2] === '--child') {
  child(process.argv[3], process.argv[4] || 'mem').catch((e) => {
    console.error(e && e.stack ? e.stack : e);
    process.exit(1);
  });
} else {
  main().catch((e) => {
    console.error(e && e.stack ? e.stack : e);
    process.exitCode = 1;
  });
}
