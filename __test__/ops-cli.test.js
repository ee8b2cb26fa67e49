'use strict';
// The ops plane end to end: the real `incident-response` CLI as a child
// process against a real server on 127.0.0.1 (fixtures/ops-server.js), in
// remote and local mode; tokens, malformed bodies, a corrupt state file, a
// restart that keeps the state.
const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const child = require('./helpers/ops-child');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const TOKEN = `t-${crypto.randomBytes(12).toString('hex')}`;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ops-cli-'));

after(() => {
  child.killAll();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The fixture server with the test's token (unless `extra` overrides it). */
const startServer = (stateFile, extra = {}) => child.startServer(stateFile, { RELIABILITY_OPS_TOKEN: TOKEN, ...extra });
const { stop } = child;
const cli = (args, env = {}) => child.cli(args, env, dir);

const get = async (url, p, init) => {
  const r = await fetch(url + p, { signal: AbortSignal.timeout(5000), ...init });
  return { status: r.status, body: await r.json().catch(() => null), headers: r.headers };
};

test('remote mode: every command acts on the server and says what changed', { timeout: 60_000 }, async () => {
  const stateFile = path.join(dir, 'remote', 'state.json');
  const s = await startServer(stateFile, { DLQ_SIZE: '30' });
  const env = { RELIABILITY_OPS_URL: s.url, RELIABILITY_OPS_TOKEN: TOKEN };
  try {
    let r = await cli(['status'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /safe mode: +off/);
    assert.ok(!r.stdout.includes(TOKEN) && !r.stderr.includes(TOKEN), 'the token is never echoed');

    r = await cli(['safe-mode', 'enable', '--reason', 'db failover'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /safe-mode: changed/);
    assert.match(r.stdout, /before:\n.*safe mode: +off/);
    assert.match(r.stdout, /after:\n.*safe mode: +ON since .* \(db failover\)/);
    assert.equal((await get(s.url, '/api/normal')).status, 503);
    const blocked = await get(s.url, '/api/critical');
    assert.equal(blocked.status, 503, 'critical is not essential: safe mode serves only essential routes');
    assert.equal(blocked.headers.get('retry-after'), '30');
    assert.equal((await get(s.url, '/api/observability/ops')).status, 200, 'observability stays up in safe mode');
    r = await cli(['safe-mode', 'enable', '--reason', 'db failover'], env);
    assert.match(r.stdout, /unchanged/, 'idempotent');
    r = await cli(['safe-mode', 'disable', '--json'], env);
    assert.equal(JSON.parse(r.stdout).after.safeMode, null);
    assert.equal((await get(s.url, '/api/normal')).status, 200);

    r = await cli(['brownout', 'enable', 'latency', 'spike'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /level 0 .* \(latency spike\)/);
    assert.equal((await get(s.url, '/api/normal')).status, 503, 'level 0: critical only');
    assert.equal((await get(s.url, '/api/critical')).status, 200);
    r = await cli(['brownout', 'enable', '--level', '0.5', '--json'], env);
    assert.equal(JSON.parse(r.stdout).after.brownout.level, 0.5);
    const normal = await get(s.url, '/api/normal');
    assert.equal(normal.status, 200, 'level 0.5: default traffic served');
    assert.equal(normal.body.dimmer, 0.5);
    assert.equal((await get(s.url, '/api/extra')).status, 503, 'level 0.5: sheddable shed');
    await cli(['brownout', 'disable'], env);
    assert.equal((await get(s.url, '/api/extra')).status, 200);

    r = await cli(['quarantine-agent', 'agent-7', '--ttl', '2s', '--reason', 'runaway loop'], env);
    assert.equal(r.code, 0, r.stderr);
    const q = await get(s.url, '/api/agents/agent-7/run');
    assert.equal(q.status, 423);
    assert.deepEqual([q.body.agentId, q.body.reason], ['agent-7', 'runaway loop']);
    assert.equal((await get(s.url, '/api/agents/agent-8/run')).status, 200);
    r = await cli(['release-agent', 'agent-7'], env);
    assert.match(r.stdout, /release-agent: changed/);
    assert.equal((await get(s.url, '/api/agents/agent-7/run')).status, 200);

    r = await cli(['rollback', 'search-v2'], env);
    assert.equal(r.code, 0, r.stderr);
    r = await cli(['rollback', '--all', '--json'], env);
    assert.deepEqual(JSON.parse(r.stdout).rolledBack, ['search-v2', 'agent-v2']);
    assert.deepEqual((await get(s.url, '/test/rolled-back')).body.rolledBack, ['search-v2', 'search-v2', 'agent-v2']);
    r = await cli(['rollback', 'nope'], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /server answered 404: Rollout not found: nope/);

    const t0 = Date.now();
    r = await cli(['drain-dlq', 'jobs-dlq', '--limit', '40'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /jobs-dlq: 30 reprocessed, 3 failed/);
    assert.ok(Date.now() - t0 >= 100, 'paced at 200 msg/s');
    assert.equal((await get(s.url, '/test/rolled-back')).body.waiting, 0);

    r = await cli(['audit', '--limit', '50', '--json'], env);
    const actions = JSON.parse(r.stdout).entries.map((e) => e.action);
    for (const a of ['safe-mode', 'brownout', 'quarantine-agent', 'release-agent', 'rollback', 'drain-dlq']) assert.ok(actions.includes(a), a);
    const entry = JSON.parse(r.stdout).entries.find((e) => e.action === 'safe-mode');
    assert.match(entry.actor, /^cli:/);
    assert.equal(entry.source, '127.0.0.1');
    assert.ok(!fs.readFileSync(stateFile, 'utf8').includes(TOKEN), 'no token in the state file');
    assert.ok(!s.logs().includes(TOKEN), 'no token in the server log');
    assert.match(s.logs(), /"event":"ops.action","action":"safe-mode"/, 'one JSON log line per action');
  } finally {
    await stop(s);
  }
});

test('remote mode refusals: no token, wrong token, rate limit, unreachable, usage errors', { timeout: 60_000 }, async () => {
  const s = await startServer(path.join(dir, 'refusals', 'state.json'));
  try {
    let r = await cli(['safe-mode', 'enable'], { RELIABILITY_OPS_URL: s.url });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /server answered 401: an ops token is required/);
    r = await cli(['safe-mode', 'enable'], { RELIABILITY_OPS_URL: s.url, RELIABILITY_OPS_TOKEN: 'not-the-token' });
    assert.match(r.stderr, /server answered 401: wrong ops token/);
    assert.equal((await get(s.url, '/api/ops/status')).body.safeMode, null, 'nothing changed');
    // Failed tokens are throttled (429 after the limit), but the right token never is.
    let throttled = 0;
    for (let i = 0; i < 20 && throttled === 0; i++) {
      const r2 = await get(s.url, '/api/ops/safe-mode', { method: 'POST', headers: { authorization: 'Bearer nope', 'content-type': 'application/json' }, body: '{"enabled":true}' });
      if (r2.status === 429) throttled = i + 1;
    }
    assert.ok(throttled > 0, 'wrong tokens get 429 past the limit');
    const right = await get(s.url, '/api/ops/safe-mode', { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: '{"enabled":true,"reason":"still in"}' });
    assert.equal(right.status, 200, 'the right token is not locked out by others\' failures');
    const audit = (await get(s.url, '/api/ops/audit?limit=50', { headers: { authorization: `Bearer ${TOKEN}` } })).body.entries;
    assert.ok(audit.some((e) => /^refused: wrong token/.test(e.result ?? '')), 'refusals are in the audit');
    await get(s.url, '/api/ops/safe-mode', { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: '{"enabled":false}' });

    const closedPort = await new Promise((resolve) => {
      const srv = require('node:net').createServer().listen(0, '127.0.0.1', () => {
        const { port } = srv.address();
        srv.close(() => resolve(port));
      });
    });
    r = await cli(['status'], { RELIABILITY_OPS_URL: `http://127.0.0.1:${closedPort}` });
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`cannot reach http://127.0.0.1:${closedPort}: ECONNREFUSED`));
    for (const args of [['safe-mode'], ['safe-mode', 'maybe'], ['quarantine-agent'], ['brownout', 'enable', '--level', '2'], ['nope'], ['status', '--bogus'], ['quarantine-agent', 'a', '--ttl', 'soon']]) {
      r = await cli(args, { RELIABILITY_OPS_URL: s.url, RELIABILITY_OPS_TOKEN: TOKEN });
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    }
    assert.match((await cli(['safe-mode'])).stderr, /❌ Error: Action required \(enable\|disable\)/);
    assert.match((await cli(['quarantine-agent'])).stderr, /❌ Error: Agent ID required/);
    assert.match((await cli(['nope'])).stderr, /❌ Unknown command: nope/);
    r = await cli([]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^Usage: incident-response/);
    r = await cli(['brownout', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /share of non-critical traffic/);
  } finally {
    await stop(s);
  }
});

test('HTTP: malformed bodies get 400 naming the field; no token configured means 403', { timeout: 30_000 }, async () => {
  const s = await startServer(path.join(dir, 'bodies', 'state.json'));
  const post = (p, body, headers = {}) =>
    get(s.url, p, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...headers }, body });
  try {
    assert.deepEqual((await post('/api/ops/safe-mode', '{"enabled":')).body, { error: 'Bad Request', message: 'the body is not valid JSON' });
    assert.match((await post('/api/ops/safe-mode', '{}')).body.message, /enabled is required/);
    assert.match((await post('/api/ops/safe-mode', '{"enabled":"yes"}')).body.message, /enabled must be a boolean, got string/);
    assert.match((await post('/api/ops/safe-mode', '{"enabled":true,"__proto__":{"admin":true}}')).body.message, /unknown field "__proto__"/);
    assert.match((await post('/api/ops/brownout', '{"enabled":true,"level":7}')).body.message, /level must be a number from 0 to 1/);
    assert.match((await post('/api/ops/agents/a/quarantine', '{"ttlMs":-5}')).body.message, /ttlMs must be/);
    assert.equal((await post('/api/ops/safe-mode', JSON.stringify({ enabled: true, reason: 'x'.repeat(5000) }))).status, 413);
    assert.equal((await post('/api/ops/dlq/nope/drain', '{}')).status, 404);
    assert.equal((await get(s.url, '/api/ops/status')).body.safeMode, null, 'no bad request changed anything');
  } finally {
    await stop(s);
  }
  const open = await startServer(path.join(dir, 'notoken', 'state.json'), { RELIABILITY_OPS_TOKEN: '' });
  try {
    const r = await get(open.url, '/api/ops/safe-mode', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"enabled":true}' });
    assert.equal(r.status, 403);
    assert.match(r.body.message, /set RELIABILITY_OPS_TOKEN/);
  } finally {
    await stop(open);
  }
});

test('local mode queues for the server that reads the state file and reports it applied; state survives a restart', { timeout: 60_000 }, async () => {
  const stateFile = path.join(dir, 'local', 'state.json');
  const s = await startServer(stateFile);
  const env = { RELIABILITY_STATE_FILE: stateFile };
  let s2;
  try {
    let r = await cli(['safe-mode', 'enable', '--reason', 'from the terminal'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`safe-mode: changed, applied by server pid ${s.child.pid}`));
    assert.equal((await get(s.url, '/api/normal')).status, 503, 'applied when the CLI says so');
    r = await cli(['quarantine-agent', 'agent-9'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await get(s.url, '/api/agents/agent-9/run')).status, 423);
    r = await cli(['rollback', 'agent-v2', '--json'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual([JSON.parse(r.stdout).applied, JSON.parse(r.stdout).changed], [true, true]);
    assert.deepEqual((await get(s.url, '/test/rolled-back')).body.rolledBack, ['agent-v2']);
    r = await cli(['rollback', 'nope'], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /refused the change: Rollout not found: nope/);
    r = await cli(['drain-dlq'], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /needs a running server/);

    await stop(s);
    s2 = await startServer(stateFile);
    const st = (await get(s2.url, '/api/ops/status')).body;
    assert.equal(st.safeMode.reason, 'from the terminal', 'safe mode survived the restart');
    assert.deepEqual(st.quarantined.map((q) => q.agentId), ['agent-9']);
    assert.equal((await get(s2.url, '/api/normal')).status, 503);
    assert.deepEqual((await get(s2.url, '/test/rolled-back')).body.rolledBack, ['agent-v2'], 'the rollback is applied again after the restart');
    const audit = JSON.parse((await cli(['audit', '--json'], env)).stdout).entries;
    assert.deepEqual(audit.map((e) => e.action), ['safe-mode', 'quarantine-agent', 'rollback']);
    assert.ok(audit.every((e) => e.source === 'local'));
  } finally {
    if (s2) await stop(s2);
  }
});

test('a corrupt state file is moved aside with a loud warning; the server starts with defaults and serves', { timeout: 30_000 }, async () => {
  const stateFile = path.join(dir, 'corrupt', 'state.json');
  fs.mkdirSync(path.dirname(stateFile), { recursive: true });
  fs.writeFileSync(stateFile, '{"format":1,"safeMode":{"since":"yesterday"');
  const s = await startServer(stateFile);
  try {
    assert.equal((await get(s.url, '/api/normal')).status, 200);
    const st = (await get(s.url, '/api/ops/status')).body;
    assert.equal(st.safeMode, null);
    assert.match(st.stateFile.error, /is invalid .*moved aside to .*state.json.corrupt-/);
    assert.match(s.logs(), /"event":"ops.state-file.corrupt"/);
    const aside = fs.readdirSync(path.dirname(stateFile)).filter((f) => f.includes('.corrupt-'));
    assert.equal(aside.length, 1);
    // The CLI in local mode says so too, and still works on a fresh file.
    fs.writeFileSync(stateFile, 'garbage');
    const r = await cli(['status'], { RELIABILITY_STATE_FILE: stateFile });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /is invalid/);
  } finally {
    await stop(s);
  }
});

test('a state file in a read-only folder: the server keeps serving and reports it', { timeout: 30_000 }, async (t) => {
  // Tests run as root in CI, and root ignores folder permissions, so the
  // unwritable location is a path under a regular file (ENOTDIR).
  const blocker = path.join(dir, 'not-a-folder');
  fs.writeFileSync(blocker, 'x');
  const s = await startServer(path.join(blocker, 'state.json'));
  try {
    const r = await cli(['safe-mode', 'enable'], { RELIABILITY_OPS_URL: s.url, RELIABILITY_OPS_TOKEN: TOKEN });
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await get(s.url, '/api/normal')).status, 503, 'the change applies in memory');
    const st = (await get(s.url, '/api/ops/status')).body;
    assert.match(st.stateFile.error, /cannot save ops state .*: (ENOTDIR|EEXIST)/);
    t.diagnostic(st.stateFile.error);
  } finally {
    await stop(s);
  }
});
