'use strict';
// Several instances sharing state through a real redis-server (Debian's
// package; `npm test` installs it when missing) on 127.0.0.1: ops changes
// reach every instance, cluster metrics are exact sums, breakers open on a
// quorum, and Redis dying and coming back loses nothing.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { freePort, startRedis: start, killRedis, startInstance: spawnInstance, killAll, req, post, until } = require('./helpers/redis');

const TOKEN = require('node:crypto').randomBytes(32).toString('hex');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rc-redis-'));
let redis;
let redisPort;
const inst = {};

const startRedis = () => start(redisPort, dir);
const stopRedis = () => killRedis(redis);
const startInstance = (name) => spawnInstance(name, { redisPort, stateFile: path.join(dir, `${name}.json`), token: TOKEN });

before(async () => {
  redisPort = await freePort();
  redis = await startRedis();
  for (const n of ['a', 'b', 'c']) inst[n] = await startInstance(n);
  for (const n of ['a', 'b', 'c']) assert.ok(await until(async () => (await req(`${inst[n].url}/state`)).body.backend.state === 'ready'), `${n} connected`);
});

after(() => {
  killAll();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a safe-mode change through one instance is applied by all within a second', { timeout: 20_000 }, async () => {
  const r = await post(`${inst.a.url}/api/ops/safe-mode`, { enabled: true, reason: 'cluster test' }, TOKEN);
  assert.equal(r.status, 200);
  const t0 = Date.now();
  for (const n of ['b', 'c']) assert.ok(await until(async () => (await req(`${inst[n].url}/plain`)).status === 503, 1500), `${n} in safe mode`);
  assert.ok(Date.now() - t0 < 1500);
  const st = (await req(`${inst.c.url}/api/ops/status`)).body;
  assert.equal(st.safeMode.reason, 'cluster test');
  await post(`${inst.b.url}/api/ops/safe-mode`, { enabled: false }, TOKEN);
  for (const n of ['a', 'c']) assert.ok(await until(async () => (await req(`${inst[n].url}/plain`)).status === 200, 1500), `${n} back to normal`);
});

test('a rollout change made on one instance is applied by all within a second', { timeout: 20_000 }, async () => {
  assert.equal((await post(`${inst.b.url}/rollout`, { name: 'gamma', percentage: 35 })).body.percentage, 35);
  for (const n of ['a', 'c']) assert.ok(await until(async () => (await req(`${inst[n].url}/gamma-status`)).body.percentage === 35, 1500), `${n} at 35 %`);
});

test('cluster golden signals are the exact sum of every instance', { timeout: 20_000 }, async () => {
  const sent = { a: 10, b: 20, c: 30 };
  for (const [n, k] of Object.entries(sent)) for (let i = 0; i < k; i++) assert.equal((await req(`${inst[n].url}/work`)).status, 200);
  let g;
  assert.ok(await until(async () => {
    g = (await req(`${inst.a.url}/api/observability/golden-signals?scope=cluster`)).body;
    return g.traffic?.totalRequests === 60;
  }, 3000), JSON.stringify(g));
  assert.deepEqual(g.instances.map((i) => i.instance).sort(), ['a', 'b', 'c']);
  assert.equal(g.latency.allTime.count, 60, 'histograms merged, not averaged');
  assert.equal((await req(`${inst.c.url}/cluster-signals`)).body.traffic.totalRequests, 60, "getGoldenSignals({ scope: 'cluster' })");
  assert.equal(g.errors.status5xx, 0);
  const local = (await req(`${inst.b.url}/api/observability/golden-signals`)).body;
  assert.equal(local.traffic.totalRequests, 20, 'without scope: this instance only');
  assert.equal((await req(`${inst.c.url}/api/observability/cluster`)).body.state, 'ready');
});

test('quorum breaker: one failing instance does not open it elsewhere; two do', { timeout: 30_000 }, async () => {
  await post(`${inst.a.url}/control`, { fail: true });
  for (let i = 0; i < 3; i++) await req(`${inst.a.url}/work`);
  assert.equal((await req(`${inst.a.url}/state`)).body.breaker, 'open');
  await new Promise((r) => setTimeout(r, 700));
  assert.equal((await req(`${inst.c.url}/state`)).body.breaker, 'closed', 'one instance is not a quorum');
  await post(`${inst.b.url}/control`, { fail: true });
  for (let i = 0; i < 3; i++) await req(`${inst.b.url}/work`);
  assert.ok(await until(async () => (await req(`${inst.c.url}/state`)).body.breaker === 'open', 1500), 'two instances are');
  const before = (await req(`${inst.c.url}/state`)).body.depCalls;
  assert.equal((await req(`${inst.c.url}/work`)).status, 503);
  assert.equal((await req(`${inst.c.url}/state`)).body.depCalls, before, 'refused without calling the dependency');
  for (const n of ['a', 'b']) await post(`${inst[n].url}/control`, { fail: false, reset: true });
  assert.ok(await until(async () => (await req(`${inst.c.url}/state`)).body.breaker === 'closed', 2000), 'closes when the quorum is gone');
});

test('a rollout too small to judge on any one instance is judged on the cluster and rolled back everywhere', { timeout: 30_000 }, async () => {
  for (const n of ['a', 'b', 'c']) await post(`${inst[n].url}/control`, { betaFail: true });
  for (const n of ['a', 'b', 'c']) for (let i = 0; i < 20; i++) await req(`${inst[n].url}/beta`, { headers: { 'x-user-id': `u${i}` } });
  for (const n of ['a', 'b', 'c']) {
    const st = (await req(`${inst[n].url}/beta-status`)).body;
    assert.ok(st.verdict === 'inconclusive' || st.percentage === 0, `${n}: 20 samples alone are inconclusive (${st.verdict})`);
  }
  for (const n of ['a', 'b', 'c']) assert.ok(await until(async () => (await req(`${inst[n].url}/beta-status`)).body.percentage === 0, 3000), `${n} rolled back`);
  const audit = (await req(`${inst.a.url}/api/ops/audit?limit=20`)).body.entries;
  assert.ok(audit.some((e) => e.action === 'rollback' && /cluster error rate/.test(e.args.reason)), JSON.stringify(audit.slice(-3)));
  for (const n of ['a', 'b', 'c']) await post(`${inst[n].url}/control`, { betaFail: false });
});

test('Redis killed mid-test: nothing fails; state changed meanwhile catches up when it returns', { timeout: 30_000 }, async () => {
  await stopRedis();
  for (let i = 0; i < 20; i++) assert.equal((await req(`${inst.a.url}/work`)).status, 200, 'serving on the last-known state');
  assert.ok(await until(async () => (await req(`${inst.a.url}/api/observability/cluster`)).body.state === 'reconnecting', 3000));
  const summary = (await req(`${inst.a.url}/api/observability/summary`)).body;
  assert.equal(summary.cluster.state, 'reconnecting');
  assert.equal((await req(`${inst.a.url}/api/observability/golden-signals?scope=cluster`)).status, 500, 'cluster figures say they are unavailable');
  // A change while Redis is down applies locally at once...
  assert.equal((await post(`${inst.a.url}/api/ops/brownout`, { enabled: true, level: 0, reason: 'during outage' }, TOKEN)).status, 200);
  assert.equal((await req(`${inst.a.url}/plain`)).status, 503);
  assert.equal((await req(`${inst.b.url}/plain`)).status, 200, 'others cannot hear of it yet');
  // ...and reaches the others when Redis is back.
  redis = await startRedis();
  assert.ok(await until(async () => (await req(`${inst.b.url}/plain`)).status === 503, 10_000), 'b caught up');
  assert.ok(await until(async () => (await req(`${inst.c.url}/plain`)).status === 503, 3000), 'c caught up');
  assert.equal((await req(`${inst.a.url}/api/observability/cluster`)).body.state, 'ready');
  await post(`${inst.a.url}/api/ops/brownout`, { enabled: false }, TOKEN);
});
