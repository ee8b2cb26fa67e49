'use strict';
// Issue 19: no malformed value in Redis crashes an instance. Garbage is
// written into every key the backend reads (breaker votes, metrics
// documents, ops documents and their digests, rollout changes), announced
// on the events channel, and then keys of the wrong type; the
// cluster-server.js instances stay alive and serving, ignore each bad value
// and count it, keep the good parts, and an instance started into the mess
// survives too. (Before: `HSET rc:breaker:<name> x 'not json'` plus one
// PUBLISH killed every instance through an unhandled rejection.)
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const Redis = require('ioredis');
const { freePort, startRedis, startInstance, killAll, req, until } = require('./helpers/redis');

const TOKEN = require('node:crypto').randomBytes(32).toString('hex');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rc-redis-bad-'));
let redisPort;
let r;
const inst = {};
const start = (n) => startInstance(n, { redisPort, stateFile: path.join(dir, `${n}.json`), token: TOKEN, captureStderr: true });
const malformed = async (n) => (await req(`${inst[n].url}/state`)).body.backend.malformed;
const alive = (n) => inst[n].child.exitCode === null && inst[n].child.signalCode === null;

before(async () => {
  redisPort = await freePort();
  await startRedis(redisPort, dir);
  for (const n of ['a', 'b']) inst[n] = await start(n);
  for (const n of ['a', 'b']) assert.ok(await until(async () => (await req(`${inst[n].url}/state`)).body.backend.state === 'ready'), `${n} connected`);
  r = new Redis(`redis://127.0.0.1:${redisPort}`, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await r.connect();
});

after(async () => {
  await r?.quit().catch(() => undefined);
  r?.disconnect();
  killAll();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function announce() {
  for (const m of ['not json', 'null', '42', '[]', '{"type":7}', '{"type":"breaker","by":"evil"}', '{"type":"ops","by":"evil"}', '{"type":"rollout","by":"evil"}']) await r.publish('rc:events', m);
}

async function assertServing(names) {
  for (const n of names) {
    assert.ok(alive(n), `${n} is alive`);
    assert.equal((await req(`${inst[n].url}/plain`)).status, 200, `${n} serves`);
    assert.equal((await req(`${inst[n].url}/work`)).status, 200, `${n} serves through its breaker`);
  }
}

const sources = ['breaker', 'metrics', 'ops', 'rollouts', 'message'];

test('malformed values in every key the backend reads: no instance dies, each is ignored and counted, the good parts kept', { timeout: 30_000 }, async () => {
  const now = Date.now();
  await r.hset('rc:breaker:dep', 'x1', 'not json', 'x2', 'null', 'x3', '{"state":"open","at":"soon"}', 'x4', '[1,2]', 'x5', '{"state":"exploded","at":1}');
  await r.set('rc:metrics:bogus1', 'not json');
  await r.set('rc:metrics:bogus2', JSON.stringify({ instance: 'x', at: 1, counts: { requests: 'many' } }));
  // Right shape, histograms that do not decode: only the merge can tell.
  const shape = { instance: 'x', at: now, counts: { requests: 1, status4xx: 0, status5xx: 0, aborted: 0 }, lastMinute: { requests: 1, status4xx: 0, status5xx: 0 } };
  await r.set('rc:metrics:bogus3', JSON.stringify({ ...shape, histograms: { all: 'AAAA', '1m': '!!' } }));
  // Ops documents: not JSON, another format, null, and one whose bad entries surround a good quarantine.
  const mixed = {
    format: 1,
    node: 'evil3',
    safeMode: 'on',
    brownout: { at: [now, 0, 'evil3'], value: { level: 9, since: 0, reason: '', actor: '' } },
    quarantine: {
      'good-agent': { at: [now, 0, 'evil3'], value: { since: now, reason: 'kept', actor: 'x', expiresAt: null } },
      'bad\nagent': { at: [now, 0, 'evil3'], value: { since: now, reason: '', actor: '' } },
      'far-future': { at: [now + 10 * 86_400_000, 0, 'evil3'], value: { since: now, reason: '', actor: '' } },
      stampless: { value: { since: now, reason: '', actor: '' } },
    },
    rolledBack: 'all of them',
  };
  await r.hset('rc:ops:replicas', 'evil1', 'not json', 'evil2', '{"format":99}', 'evil3', JSON.stringify(mixed), 'evil4', 'null');
  await r.hset('rc:ops:revs', 'evil1', '1', 'evil2', '1', 'evil3', '1', 'evil4', '1', 'evil5', 'a digest without a document');
  await r.hset('rc:rollouts', 'gamma', 'not json', 'beta', JSON.stringify({ kind: 'rollback', toPercentage: 'x', at: now + 1000, by: 'evil' }), 'gamma2', 'null');
  await announce();

  let m;
  for (const n of ['a', 'b']) {
    const counted = await until(async () => {
      m = await malformed(n);
      return sources.every((s) => m[s] > 0);
    }, 5000);
    assert.ok(counted, `${n} counted bad values from every source: ${JSON.stringify(m)}`);
  }
  await assertServing(['a', 'b']);
  for (const n of ['a', 'b']) {
    const st = (await req(`${inst[n].url}/api/ops/status`)).body;
    assert.deepEqual(st.quarantined.map((q) => q.agentId), ['good-agent'], `${n} kept the good entry and only it`);
    assert.equal(st.brownout, null, 'a brownout level of 9 was dropped');
    assert.equal(st.safeMode, null);
    assert.equal((await req(`${inst[n].url}/beta-status`)).body.percentage, 100, 'a rollback with a bad percentage was not applied');
  }
  // Cluster figures leave the bad documents out instead of failing.
  const g = await req(`${inst.a.url}/api/observability/golden-signals?scope=cluster`);
  assert.equal(g.status, 200, JSON.stringify(g.body));
  assert.deepEqual(g.body.instances.map((i) => i.instance).sort(), ['a', 'b']);

  // The counts keep rising while bad values keep coming, and nobody dies of it.
  const before = await malformed('a');
  await announce();
  assert.ok(await until(async () => (await malformed('a')).message > before.message && (await malformed('a')).breaker > before.breaker, 3000));
  await assertServing(['a', 'b']);

  // A warning line says so, without repeating any value read.
  assert.ok(await until(() => /"event":"redis.malformed"/.test(inst.a.stderr()), 3000), inst.a.stderr().slice(-500));
  assert.doesNotMatch(inst.a.stderr(), /not json|good-agent|exploded/);
});

test('an instance started while the bad values are still there survives them', { timeout: 30_000 }, async () => {
  inst.c = await start('c');
  // Several ticks (200 ms each) over the bad breaker votes: each tick counts the five again.
  assert.ok(await until(async () => (await req(`${inst.c.url}/state`).catch(() => ({ body: null }))).body?.backend.malformed.breaker >= 25, 10_000));
  assert.ok((await malformed('c')).ops > 0);
  await assertServing(['a', 'b', 'c']);
  assert.deepEqual((await req(`${inst.c.url}/api/ops/status`)).body.quarantined.map((q) => q.agentId), ['good-agent']);
});

test('keys of the wrong type (a string or list where a hash belongs) are ignored and counted too', { timeout: 30_000 }, async () => {
  const before = await malformed('a');
  // MULTI: the instances write these keys too, and must not recreate one between the two commands.
  await r.multi().del('rc:breaker:dep').lpush('rc:breaker:dep', 'x').exec();
  await r.multi().del('rc:ops:revs').set('rc:ops:revs', 'x').exec();
  await r.multi().del('rc:rollouts').set('rc:rollouts', 'x').exec();
  await announce();
  let m;
  assert.ok(
    await until(async () => {
      m = await malformed('a');
      return m.breaker > before.breaker + 2 && m.ops > before.ops + 2 && m.rollouts > before.rollouts + 2;
    }, 5000),
    JSON.stringify(m),
  );
  await assertServing(['a', 'b', 'c']);
});
