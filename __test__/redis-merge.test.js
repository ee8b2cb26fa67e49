'use strict';
// Issue 19: no acknowledged ops change is lost across instances. Three
// cluster-server.js instances on a real redis-server make concurrent
// quarantines, releases, rollbacks, brownout and safe-mode changes, with
// Redis SIGKILLed and restarted in the middle; afterwards every instance
// holds every acknowledged change not later undone, and they agree. (With
// the whole ops document last-writer-wins, the outage's changes of all but
// one instance vanished.)
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { freePort, startRedis, killRedis, startInstance, killAll, req, post, until } = require('./helpers/redis');

const TOKEN = require('node:crypto').randomBytes(32).toString('hex');
const NAMES = ['a', 'b', 'c'];
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rc-redis-merge-'));
let redis;
let redisPort;
const inst = {};
const range = (n) => [...Array(n).keys()];

before(async () => {
  redisPort = await freePort();
  redis = await startRedis(redisPort, dir);
  for (const n of NAMES) {
    inst[n] = await startInstance(n, { redisPort, stateFile: path.join(dir, `${n}.json`), token: TOKEN, env: { EXTRA_ROLLOUTS: 'r-a,r-b,r-c' } });
  }
  for (const n of NAMES) assert.ok(await until(async () => (await req(`${inst[n].url}/state`)).body.backend.state === 'ready'), `${n} connected`);
});

after(() => {
  killAll();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** What an instance holds, in a form three instances can be compared by. */
async function view(n) {
  const s = (await req(`${inst[n].url}/api/ops/status`)).body;
  return {
    quarantined: s.quarantined.map((q) => `${q.agentId} (${q.reason})`).sort(),
    brownout: s.brownout && { level: s.brownout.level, reason: s.brownout.reason },
    safeMode: s.safeMode && { reason: s.safeMode.reason },
    rolledBack: s.rolledBack.map((r) => r.name).sort(),
  };
}

test('concurrent changes on three instances with Redis killed and restarted in the middle: none is lost, all agree', { timeout: 60_000 }, async (t) => {
  const held = new Map(); // agent -> reason, every acknowledged quarantine not later released
  const quarantine = async (n, agent) => {
    const r = await post(`${inst[n].url}/api/ops/agents/${agent}/quarantine`, { reason: `by ${n}` }, TOKEN);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    held.set(agent, `by ${n}`);
  };
  const release = async (n, agent) => {
    const r = await post(`${inst[n].url}/api/ops/agents/${agent}/quarantine`, {}, TOKEN, 'DELETE');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    held.delete(agent);
  };
  const ok = async (p) => assert.equal((await p).status, 200);

  // 1. Redis up: all three quarantine their own agents at once; a browns out.
  await Promise.all(NAMES.flatMap((n) => range(20).map((i) => quarantine(n, `${n}-p1-${i}`))));
  await ok(post(`${inst.a.url}/api/ops/brownout`, { enabled: true, level: 0.4, reason: 'a before the outage' }, TOKEN));
  for (const n of NAMES) assert.ok(await until(async () => (await view(n)).quarantined.length === 60, 10_000), `${n} has the 60 first quarantines`);

  // 2. Redis SIGKILLed: every instance changes things the others cannot hear of.
  await killRedis(redis);
  const next = { a: 'b', b: 'c', c: 'a' };
  await Promise.all(
    NAMES.flatMap((n) => [
      ...range(15).map((i) => quarantine(n, `${n}-p2-${i}`)),
      // Undo some of another instance's earlier quarantines.
      ...range(5).map((i) => release(n, `${next[n]}-p1-${i}`)),
      ok(post(`${inst[n].url}/api/ops/rollback`, { name: `r-${n}`, reason: `${n} in the outage` }, TOKEN)),
    ]),
  );
  // Switches: b's brownout comes after a's, c alone turns safe mode on.
  await ok(post(`${inst.b.url}/api/ops/brownout`, { enabled: true, level: 0.7, reason: 'b in the outage' }, TOKEN));
  await ok(post(`${inst.c.url}/api/ops/safe-mode`, { enabled: true, reason: 'c in the outage' }, TOKEN));
  for (const n of NAMES) assert.ok(await until(async () => (await req(`${inst[n].url}/api/observability/cluster`)).body.state === 'reconnecting', 5000), `${n} knows Redis is gone`);

  // 3. Redis back (empty): more concurrent changes while the instances reconnect.
  redis = await startRedis(redisPort, dir);
  const back = Date.now();
  await Promise.all(NAMES.flatMap((n) => range(10).map((i) => quarantine(n, `${n}-p3-${i}`))));

  // 4. Everyone holds everything acknowledged and not undone, and they agree.
  const want = {
    quarantined: [...held].map(([a, r]) => `${a} (${r})`).sort(),
    brownout: { level: 0.7, reason: 'b in the outage' },
    safeMode: { reason: 'c in the outage' },
    rolledBack: ['r-a', 'r-b', 'r-c'],
  };
  assert.equal(want.quarantined.length, 60 - 15 + 45 + 30);
  let views;
  const agreed = await until(async () => {
    views = await Promise.all(NAMES.map(view));
    return views.every((v) => JSON.stringify(v) === JSON.stringify(want));
  }, 20_000);
  t.diagnostic(`all three agreed ${Date.now() - back} ms after Redis came back`);
  if (!agreed) {
    for (const [i, v] of views.entries()) assert.deepEqual(v, want, `instance ${NAMES[i]}`);
  }
  // The rollbacks made elsewhere were applied to the rollouts here too.
  for (const n of NAMES) for (const r of want.rolledBack) assert.equal((await req(`${inst[n].url}/rollout-status/${r}`)).body.percentage, 0, `${r} rolled back on ${n}`);
  // And the merged changes are in each instance's audit trail, with where they came from.
  const audit = (await req(`${inst.a.url}/api/ops/audit?limit=1000`)).body.entries;
  assert.ok(audit.some((e) => e.action === 'safe-mode' && e.source === 'replica:c'), 'a audited c\'s safe mode as merged from c');
  for (const n of NAMES) assert.equal((await req(`${inst[n].url}/state`)).body.backend.malformed.total, 0, 'nothing malformed in a healthy cluster');
});

test('a restarted instance gets the merged state back from its state file and from Redis, without undoing anything', { timeout: 30_000 }, async () => {
  const before = await view('a');
  inst.b.child.kill('SIGKILL');
  // While b is down, a releases one more agent.
  await post(`${inst.a.url}/api/ops/agents/c-p2-0/quarantine`, {}, TOKEN, 'DELETE');
  inst.b = await startInstance('b', { redisPort, stateFile: path.join(dir, 'b.json'), token: TOKEN, env: { EXTRA_ROLLOUTS: 'r-a,r-b,r-c' } });
  const want = { ...before, quarantined: before.quarantined.filter((q) => !q.startsWith('c-p2-0 ')) };
  let v;
  assert.ok(await until(async () => JSON.stringify((v = await view('b'))) === JSON.stringify(want), 10_000), JSON.stringify(v));
  assert.ok(await until(async () => JSON.stringify(await view('c')) === JSON.stringify(want), 5000), 'the restart undid nothing elsewhere');
});
