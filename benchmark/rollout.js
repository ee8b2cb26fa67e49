// @ts-check
'use strict';
/**
 * Rollout decision benchmark: the cost of deciding one request's cohort,
 * hash included, for
 *   - ours: `shouldRouteToNewVersion(name, userId)` (MurmurHash3 in Rust, one crossing),
 *   - the original A rule (`Math.random() * 100 < percentage`, not sticky),
 *   - the original B rule (Java hashCode % 100 and allow/deny lists, in JS),
 *   - unleash-client's flexible-rollout strategy (`isEnabled`, MurmurHash3 in JS),
 * and the cost of recording one outcome (ours: a ring write; the original A:
 * counters and a 1,000-latency array with its SLO check).
 *
 *   node --expose-gc benchmark/rollout.js           (or: npm run bench)
 *   node benchmark/rollout.js --smoke               (tiny, run by the tests)
 *
 * Interleaved rounds (A B C D, B C D A, ...), medians, ratios printed.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const FlexibleRolloutStrategy = require('unleash-client/lib/strategy/flexible-rollout-strategy').default;

const SMOKE = process.argv.includes('--smoke') || process.env.BENCH_SMOKE === '1';
const N = SMOKE ? 2_000 : 1_000_000;
const ROUNDS = SMOKE ? 2 : 7;
const PCT = 37.5;

const T = require('../dist/traffic-shaping.js');
const gc = typeof global.gc === 'function' ? () => global.gc() : () => {};

// Users: realistic ids, a fixed set cycled through.
const USERS = Array.from({ length: 4096 }, (_, i) => `user-${(i * 2654435761) >>> 0}`);

// ---- the original A (server/core/traffic-shaping.ts), from the spec ---------------
const aRollouts = new Map([['search-v2', { config: { percentage: PCT, slo: { errorRate: 0.05 }, autoRollback: true }, requestCount: 0, errorCount: 0, latencies: [] }]]);
function aShouldRoute(name) {
  const r = aRollouts.get(name);
  if (!r) return true;
  return Math.random() * 100 < r.config.percentage;
}
function aRecord(name, success, latency) {
  const r = aRollouts.get(name);
  if (!r) return;
  r.requestCount++;
  if (!success) r.errorCount++;
  r.latencies.push(latency);
  if (r.latencies.length > 1000) r.latencies.shift();
  if (r.config.autoRollback && r.config.slo) {
    if (r.config.slo.errorRate !== undefined && r.requestCount > 10) {
      const rate = r.errorCount / r.requestCount;
      if (rate > r.config.slo.errorRate) r.config.percentage = 0;
    }
  }
}

// ---- the original B (core/traffic-shaping.ts), from the spec ----------------------
const bRollouts = new Map([['search-v2', { percentage: PCT, allowList: [], denyList: [] }]]);
function bHash(s) {
  let h = 0;
  for (let i = 0; i < s.length; i++) {
    h = (h << 5) - h + s.charCodeAt(i);
    h = h & h;
  }
  return h;
}
function bShouldRoute(feature, userId = 'anonymous') {
  const c = bRollouts.get(feature) ?? { percentage: 100, allowList: [], denyList: [] };
  if (c.denyList.includes(userId)) return false;
  if (c.allowList.includes(userId)) return true;
  return Math.abs(bHash(`${feature}:${userId}`)) % 100 < c.percentage;
}

const unleash = new FlexibleRolloutStrategy();
const unleashParams = { rollout: String(PCT), stickiness: 'userId', groupId: 'search-v2' };

T.getTrafficShaping().startRollout('search-v2', { percentage: PCT });

let coldSeq = 0;
const decide = {
  ours: (u) => T.shouldRouteToNewVersion('search-v2', u),
  'ours, a new key every call': () => T.shouldRouteToNewVersion('search-v2', `fresh-${coldSeq++}`),
  'original A (Math.random)': () => aShouldRoute('search-v2'),
  'original B (Java hash)': (u) => bShouldRoute('search-v2', u),
  'unleash-client flexibleRollout': (u) => unleash.isEnabled(unleashParams, { userId: u }),
};

function time(f) {
  gc();
  let sink = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) if (f(USERS[i & 4095])) sink++;
  const ns = Number(process.hrtime.bigint() - t0) / N;
  return { ns, sink };
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function run(title, fns) {
  const names = Object.keys(fns);
  const t = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < ROUNDS; r++) {
    for (let k = 0; k < names.length; k++) {
      const n = names[(k + r) % names.length];
      t[n].push(time(fns[n]).ns);
    }
  }
  const med = Object.fromEntries(names.map((n) => [n, median(t[n])]));
  console.log(`\n${title} (median ns per call; ratio = other / ours):`);
  for (const n of names) console.log(`  ${n.padEnd(34)} ${med[n].toFixed(1).padStart(8)} ns${n === 'ours' ? '' : `  (${(med[n] / med.ours).toFixed(2)}x ours)`}`);
  return med;
}

function main() {
  console.log(`Rollout decisions: ${N} calls per round, ${ROUNDS} interleaved rounds, percentage ${PCT} (${os.cpus()[0].model}, Node ${process.version})`);
  // Sanity: the sticky ones route about PCT % of users, the same way twice.
  for (const n of ['ours', 'original B (Java hash)', 'unleash-client flexibleRollout']) {

    const share = USERS.filter((u) => decide[n](u)).length / USERS.length;
    if (Math.abs(share - PCT / 100) > 0.05) throw new Error(`${n}: routed ${share}, expected about ${PCT / 100}`);
    if (!USERS.every((u) => decide[n](u) === decide[n](u))) throw new Error(`${n} is not sticky`);
  }
  const d = run('Decision, hash included', decide);
  const rec = run('Recording one outcome', {
    ours: (u) => (T.recordRequestMetrics('search-v2', u.length !== 3, 12.5), true),
    'original A (array + SLO check)': (u) => (aRecord('search-v2', u.length !== 3, 12.5), true),
  });
  T.getTrafficShaping().flush();
  if (!SMOKE) {
    const dir = path.join(__dirname, 'results');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'rollout.json'), JSON.stringify({ when: new Date().toISOString(), node: process.version, cpu: os.cpus()[0].model, decideNs: d, recordNs: rec }, null, 2));
  }
}

main();
