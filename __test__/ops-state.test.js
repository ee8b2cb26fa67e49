'use strict';
// Issues 18 and 19: the state the ops plane writes always loads (a bad entry
// costs only itself), read-only CLI commands never touch the file, the CLI's
// local mode loses nothing and says whether a server applied the change,
// refusals never evict operator actions, odd files (FIFO, /dev/zero, huge,
// not UTF-8) never hang or get overwritten, and the CLI never prints the
// token or URL credentials. Real Express 4 and 5 apps, the real fixture
// server and the real CLI as child processes.
const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const express4 = require('express4');
const express5 = require('express');
const { OpsControls, createOpsRouter } = require('../dist/entries/ops.js');
const { startServer, stop, cli, killAll } = require('./helpers/ops-child');

const TOKEN = `t-${crypto.randomBytes(12).toString('hex')}`;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ops-state-'));
let n = 0;
const fresh = (name = 'state.json') => {
  const d = path.join(dir, `case-${n++}`);
  fs.mkdirSync(d, { recursive: true });
  return path.join(d, name);
};

after(() => {
  killAll();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A raw HTTP request (node:http sends header bytes such as U+0085 as they are). */
function request(url, method, headers = {}, body, agent) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method, headers: { 'content-type': 'application/json', ...headers }, agent }, (res) => {
      let data = '';
      res.on('data', (d) => (data += d));
      res.on('end', () => resolve({ status: res.statusCode, body: data ? JSON.parse(data) : null }));
    });
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}
const authed = (url, p, body, method = 'POST') => request(url + p, method, { authorization: `Bearer ${TOKEN}` }, body);

function listen(app) {
  return new Promise((resolve) => {
    const server = app.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${server.address().port}` }));
  });
}

const asideFiles = (file) => fs.readdirSync(path.dirname(file)).filter((f) => f.includes('.corrupt-'));

function assertAllControls(st, label) {
  assert.equal(st.safeMode?.reason, 'maintenance', `${label}: safe mode kept`);
  assert.equal(st.brownout?.level, 0.3, `${label}: brownout kept`);
  assert.deepEqual(st.quarantined.map((q) => q.agentId), ['agent-1'], `${label}: quarantine kept`);
  assert.deepEqual(st.rolledBack.map((r) => r.name), ['search-v2'], `${label}: the rolled-back rollout stays rolled back`);
}

test('poisoned audit entries (drain error, X-Forwarded-For with U+0085, unauthenticated) cost nothing after a restart', { timeout: 60_000 }, async () => {
  const file = fresh();
  const env = { RELIABILITY_OPS_TOKEN: TOKEN, TRUST_PROXY: '1', DLQ_ERROR: `boom\nline two ${'x'.repeat(700)}` };
  const s = await startServer(file, env);
  let s2;
  try {
    // An unauthenticated, refused request whose source (trust proxy on) holds U+0085.
    const refused = await request(`${s.url}/api/ops/safe-mode`, 'POST', { 'x-forwarded-for': '203.0.113.9\u0085evil' }, { enabled: true });
    assert.equal(refused.status, 401);
    assert.equal((await authed(s.url, '/api/ops/safe-mode', { enabled: true, reason: 'maintenance' })).status, 200);
    assert.equal((await authed(s.url, '/api/ops/brownout', { enabled: true, level: 0.3 })).status, 200);
    assert.equal((await authed(s.url, '/api/ops/agents/agent-1/quarantine', { reason: 'spam' })).status, 200);
    assert.equal((await authed(s.url, '/api/ops/rollback', { name: 'search-v2' })).status, 200);
    const drain = await authed(s.url, '/api/ops/dlq/bad-dlq/drain', {});
    assert.equal(drain.status, 200);
    assert.match(drain.body.runs[0].error, /^boom/);
    const audit = (await request(`${s.url}/api/ops/audit?limit=50`, 'GET')).body.entries;
    const refusal = audit.find((e) => e.result.startsWith('refused'));
    assert.ok(refusal && !refusal.source.includes('\u0085'), 'written sanitised');
    const drained = audit.find((e) => e.action === 'drain-dlq');
    assert.ok(!drained.result.includes('\n') && drained.result.length <= 600, 'written within the reader\'s limits');
    await stop(s);

    s2 = await startServer(file, env);
    const st = (await request(`${s2.url}/api/ops/status`, 'GET')).body;
    assertAllControls(st, 'after restart');
    assert.equal(st.stateFile.error, null);
    assert.deepEqual(st.stateFile.dropped, []);
    assert.deepEqual(asideFiles(file), [], 'the file was not moved aside');
    assert.deepEqual((await request(`${s2.url}/test/rolled-back`, 'GET')).body.rolledBack, ['search-v2'], 'the rollback is applied again');
    assert.equal((await request(`${s2.url}/api/normal`, 'GET')).status, 503);
  } finally {
    if (s2) await stop(s2);
  }
});

test('an actor with a control character or > 256 characters, through the API of Express 4 and 5 apps, costs nothing', { timeout: 30_000 }, async () => {
  for (const express of [express4, express5]) {
    const file = fresh();
    const ops = new OpsControls({ stateFile: file, logger: null, watch: false });
    const app = express();
    app.set('trust proxy', true);
    app.use('/api/ops', createOpsRouter({ ops, token: TOKEN }));
    const { server, url } = await listen(app);
    try {
      const hostile = { actor: `ops\u0007${'a'.repeat(300)}`, source: 'x\u2028y' };
      ops.setSafeMode(true, { ...hostile, reason: 'maintenance' });
      ops.setBrownout(true, { ...hostile, level: 0.3 });
      ops.quarantineAgent('agent-1', hostile);
      ops.setRolloutController({ names: () => ['search-v2'], rollback() {} });
      ops.rollback('search-v2', hostile);
      assert.equal((await request(`${url}/api/ops/safe-mode`, 'POST', { 'x-forwarded-for': '198.51.100.1\u0085' }, { enabled: false })).status, 401);
      ops.save();
    } finally {
      ops.close();
      server.close();
    }
    const again = new OpsControls({ stateFile: file, logger: null, watch: false });
    const st = again.status();
    assertAllControls(st, express === express4 ? 'express 4' : 'express 5');
    assert.equal(st.stateFile.error, null);
    assert.ok(st.safeMode.actor.length <= 256 && !/\u0007/.test(st.safeMode.actor));
    assert.deepEqual(asideFiles(file), []);
  }
});

test('a state file with bad entries (written by an older version) loads everything else and reports what it dropped', { timeout: 30_000 }, () => {
  const file = fresh();
  fs.writeFileSync(file, JSON.stringify({
    format: 1,
    safeMode: { since: 1, reason: 'maintenance', actor: 'a' },
    brownout: { level: 0.3, since: 1, reason: '', actor: 'a' },
    quarantine: { 'agent-1': { since: 1, reason: '', actor: 'a' }, 'bad\u202eid': { since: 1, reason: '', actor: 'a' } },
    rolledBack: { 'search-v2': { since: 1, reason: '', actor: 'a' } },
    audit: [{ seq: 5, at: 1, action: 'drain-dlq', args: {}, actor: 'a', source: 's', result: `error: a\nb${'c'.repeat(900)}` }, { seq: 'x' }],
  }));
  const lines = [];
  const ops = new OpsControls({ stateFile: file, logger: { log() {}, warn: (l) => lines.push(l) }, watch: false });
  const st = ops.status();
  assertAllControls(st, 'old file');
  assert.equal(st.stateFile.error, null);
  assert.equal(st.stateFile.dropped.length, 2, st.stateFile.dropped.join('\n'));
  assert.match(st.stateFile.dropped.join('\n'), /quarantine\["bad\\u\{202e\}id"\]|quarantine\["bad.id"\]/);
  assert.ok(lines.some((l) => JSON.parse(l).event === 'ops.state-file.dropped'), 'a warning line says what was dropped');
  assert.equal(ops.audit(10).length, 1, 'the repaired entry is kept');
  ops.setSafeMode(false);
  assert.ok(ops.audit(1)[0].seq > 5, 'sequence numbers continue above the saved ones');
});

test('status and audit --state-file never modify the file (valid, with bad entries, or corrupt)', { timeout: 30_000 }, async () => {
  const valid = fresh();
  const w = new OpsControls({ stateFile: valid, logger: null, watch: false });
  w.setSafeMode(true, { reason: 'maintenance' });
  const bad = fresh();
  fs.writeFileSync(bad, '{"format":1,"safeMode":{"since":1,"reason":"x","actor":"a"},"audit":[{"seq":1,"at":1,"action":"a","args":{},"actor":"a\\u0085","source":"s","result":"r"}]}');
  const corrupt = fresh();
  fs.writeFileSync(corrupt, 'garbage');
  for (const [file, code] of [[valid, 0], [bad, 0], [corrupt, 1]]) {
    const bytes = fs.readFileSync(file);
    const mtime = fs.statSync(file).mtimeMs;
    const before = fs.readdirSync(path.dirname(file)).sort();
    for (const cmd of ['status', 'audit']) {
      const r = await cli([cmd, '--state-file', file]);
      assert.equal(r.code, code, `${cmd} ${path.basename(path.dirname(file))}: ${r.stderr}`);
    }
    assert.deepEqual(fs.readFileSync(file), bytes, 'same bytes');
    assert.equal(fs.statSync(file).mtimeMs, mtime, 'same mtime');
    assert.deepEqual(fs.readdirSync(path.dirname(file)).sort(), before, 'nothing moved aside, no inbox, no temp file');
  }
  const r = await cli(['status', '--state-file', valid]);
  assert.match(r.stdout, /no running server reads this state file/);
});

test('24 CLI quarantines while the server takes HTTP actions: all 24 applied, each reported applied by the server', { timeout: 90_000 }, async () => {
  const file = fresh();
  const s = await startServer(file, { RELIABILITY_OPS_TOKEN: TOKEN });
  let busy = true;
  let httpActions = 0;
  const traffic = (async () => {
    for (let i = 0; busy; i++) {
      const r = await authed(s.url, '/api/ops/brownout', i % 2 ? { enabled: false } : { enabled: true, level: 0.9 });
      assert.equal(r.status, 200);
      httpActions++;
    }
  })();
  try {
    const ids = Array.from({ length: 24 }, (_, i) => `agent-${i}`);
    const results = [];
    for (let i = 0; i < ids.length; i += 4) {
      results.push(...(await Promise.all(ids.slice(i, i + 4).map((id) => cli(['quarantine-agent', id, '--reason', 'race'], { RELIABILITY_STATE_FILE: file })))));
    }
    busy = false;
    await traffic;
    for (const r of results) {
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`applied by server pid ${s.child.pid}`));
    }
    assert.ok(httpActions > 10, `${httpActions} HTTP actions ran meanwhile`);
    const st = (await request(`${s.url}/api/ops/status`, 'GET')).body;
    assert.deepEqual(st.quarantined.map((q) => q.agentId).sort(), [...ids].sort(), 'all 24 in the server');
    const saved = JSON.parse(fs.readFileSync(file, 'utf8'));
    assert.deepEqual(Object.keys(saved.quarantine).sort(), [...ids].sort(), 'all 24 in the file');
  } finally {
    busy = false;
    await traffic.catch(() => {});
    await stop(s);
  }
});

test('local mode with no server reading the file: says so, exits 1; the queued change applies when a server starts', { timeout: 60_000 }, async () => {
  const empty = fs.mkdtempSync(path.join(dir, 'nothing-'));
  let r = await cli(['safe-mode', 'enable'], {}, empty);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /no running server reads the state file .*ops-state\.json and there is none there: nothing changed/);
  assert.doesNotMatch(r.stdout, /✅/);
  assert.deepEqual(fs.readdirSync(empty), [], 'nothing created in a folder no server uses');

  const file = fresh();
  const s = await startServer(file, { RELIABILITY_OPS_TOKEN: TOKEN });
  assert.equal((await authed(s.url, '/api/ops/brownout', { enabled: false })).status, 200); // the server writes its file
  await stop(s);
  r = await cli(['safe-mode', 'enable', '--reason', 'while down', '--json'], { RELIABILITY_STATE_FILE: file });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /no running server reads the state file .*: the change is NOT applied; it is queued as /);
  assert.match(JSON.parse(r.stdout).error, /NOT applied/);
  const s2 = await startServer(file, { RELIABILITY_OPS_TOKEN: TOKEN });
  try {
    const end = Date.now() + 5000;
    let st;
    while (Date.now() < end && !(st = (await request(`${s2.url}/api/ops/status`, 'GET')).body).safeMode) await new Promise((res) => setTimeout(res, 50));
    assert.equal(st.safeMode?.reason, 'while down', 'the queued command applied at the next start');
  } finally {
    await stop(s2);
  }
});

test('bare rollback (the original usage) says how to name the rollout, exit 2; the help matches', { timeout: 30_000 }, async () => {
  const r = await cli(['rollback']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /rollback needs the rollout to roll back: incident-response rollback <rollout>, or --all/);
  assert.match(r.stderr, /incident-response rollback <rollout> \[--reason R\]\nincident-response rollback --all/);
  const usage = (await cli(['--help'])).stdout;
  assert.match(usage, /rollback <rollout> \[--reason R\] +roll a rollout back/);
  assert.match(usage, /rollback --all \[--reason R\]/);
});

test('a FIFO or /dev/zero as the state file: quick, bounded start; reported; never written', { timeout: 60_000 }, async () => {
  const fifo = fresh('fifo');
  execFileSync('mkfifo', [fifo]);
  for (const file of [fifo, '/dev/zero']) {
    const t0 = Date.now();
    const s = await startServer(file, { RELIABILITY_OPS_TOKEN: TOKEN }, 8000);
    try {
      assert.ok(Date.now() - t0 < 8000, 'started');
      const st = (await request(`${s.url}/api/ops/status`, 'GET')).body;
      assert.match(st.stateFile.error, /is (a FIFO|a character device), not a regular file: not read and never written/);
      assert.equal((await authed(s.url, '/api/ops/safe-mode', { enabled: true })).status, 200, 'the plane still works, in memory');
      assert.equal((await request(`${s.url}/api/normal`, 'GET')).status, 503);
    } finally {
      await stop(s);
    }
    const st = fs.statSync(file);
    assert.ok(file === fifo ? st.isFIFO() : st.isCharacterDevice(), `${file} untouched`);
    assert.ok(!fs.existsSync(`${file}.inbox`), 'no inbox beside it');
  }
});

test('unreadable files (not UTF-8, larger than the cap) are moved aside, never overwritten; stale temp files are removed', { timeout: 30_000 }, () => {
  const binary = fresh();
  fs.writeFileSync(binary, Buffer.from([0xff, 0xfe, 0x00, 0x7b]));
  const huge = fresh();
  fs.writeFileSync(huge, '');
  fs.truncateSync(huge, 33 * 1024 * 1024);
  for (const file of [binary, huge]) {
    const size = fs.statSync(file).size;
    const t0 = Date.now();
    const ops = new OpsControls({ stateFile: file, logger: null, watch: false });
    assert.ok(Date.now() - t0 < 5000);
    assert.match(ops.stateFileError, /is invalid \(cannot read it: (not UTF-8 text|larger than \d+ bytes)\); moved aside to /);
    const [aside] = asideFiles(file);
    assert.equal(fs.statSync(path.join(path.dirname(file), aside)).size, size, 'the original is kept aside intact');
    ops.setSafeMode(true);
    assert.equal(JSON.parse(fs.readFileSync(file, 'utf8')).format, 1, 'a new file is written in its place');
  }
  const file = fresh();
  const stale = `${file}.2147483646.tmp`;
  fs.writeFileSync(stale, 'half a save');
  const ops = new OpsControls({ stateFile: file, logger: null, watch: false });
  assert.ok(!fs.existsSync(stale), 'the temp file of a dead process is removed at start');
  ops.close();
});

test('the CLI never prints the token or URL credentials, --json included', { timeout: 30_000 }, async () => {
  const port = await new Promise((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const p = srv.address().port;
      srv.close(() => resolve(p));
    });
  });
  const secret = 'sekrit-Token-42';
  for (const json of [[], ['--json']]) {
    let r = await cli(['safe-mode', 'enable', ...json], { RELIABILITY_OPS_URL: `http://127.0.0.1:${port}`, RELIABILITY_OPS_TOKEN: `${secret}\nX` });
    assert.equal(r.code, 1);
    assert.ok(!(r.stdout + r.stderr).includes(secret), r.stdout + r.stderr);
    assert.match(r.stderr, /RELIABILITY_OPS_TOKEN holds a character an HTTP header cannot carry/);
    r = await cli(['status', '--url', `http://admin:pw-Secret-9@127.0.0.1:${port}`, ...json], { RELIABILITY_OPS_TOKEN: TOKEN });
    assert.equal(r.code, 1);
    assert.ok(!(r.stdout + r.stderr).includes('pw-Secret-9'), r.stdout + r.stderr);
    assert.ok(!(r.stdout + r.stderr).includes(TOKEN));
    r = await cli(['status', ...json], { RELIABILITY_OPS_URL: `http://127.0.0.1:${port}/${TOKEN}`, RELIABILITY_OPS_TOKEN: TOKEN });
    assert.ok(!(r.stdout + r.stderr).includes(TOKEN), 'the token is redacted wherever it appears');
  }
});

test('1,500 refusals neither evict an operator\'s quarantine from the audit nor from the file; they are aggregated with a count', { timeout: 60_000 }, async () => {
  const file = fresh();
  const ops = new OpsControls({ stateFile: file, logger: null, watch: false });
  const app = express4();
  app.set('trust proxy', true);
  app.use('/api/ops', createOpsRouter({ ops, token: TOKEN, maxGlobalTokenFailures: 100_000 }));
  const { server, url } = await listen(app);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  try {
    ops.quarantineAgent('agent-1', { reason: 'spam', actor: 'alice' });
    // Many sources (as a spoofed X-Forwarded-For would give), and the global failed-token limit raised, so no limiter stops them.
    for (let i = 0; i < 1500; i += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, j) => request(`${url}/api/ops/safe-mode`, 'POST', { 'x-forwarded-for': `10.1.${(i + j) >> 8}.${(i + j) & 255}` }, { enabled: true }, agent).then((r) => assert.equal(r.status, 401))));
    }
    for (let i = 0; i < 5; i++) await request(`${url}/api/ops/safe-mode`, 'POST', { 'x-forwarded-for': '10.9.9.9', authorization: 'Bearer nope' }, { enabled: true }, agent);
    const audit = ops.audit(10_000);
    assert.ok(audit.some((e) => e.action === 'quarantine-agent' && e.actor === 'alice'), 'the operator action is still in the audit');
    const agg = audit.filter((e) => e.source === '10.9.9.9');
    assert.equal(agg.length, 1, 'one entry per source, action and reason in the window');
    assert.equal(agg[0].count, 5);
    assert.ok(audit.length < 600, `${audit.length} entries: refusals are bounded on their own`);
    ops.setSafeMode(true, { reason: 'maintenance' }); // a save
    const saved = JSON.parse(fs.readFileSync(file, 'utf8'));
    assert.ok(saved.audit.some((e) => e.action === 'quarantine-agent'), 'the operator action is in the file');
    assert.deepEqual(Object.keys(saved.quarantine), ['agent-1']);
  } finally {
    agent.destroy();
    server.close();
    ops.close();
  }
  const again = new OpsControls({ stateFile: file, logger: null, watch: false });
  assert.ok(again.isAgentQuarantined('agent-1'));
  assert.ok(again.audit(1000).some((e) => e.action === 'quarantine-agent'));
});

test('state from elsewhere (Redis) with a bad entry: applyState keeps every control and returns what it dropped; opsCheckState sanitises', { timeout: 30_000 }, () => {
  const { native } = require('../dist/native.js');
  const doc = JSON.stringify({
    format: 1,
    safeMode: { since: 1, reason: 'maintenance', actor: 'a' },
    brownout: { level: 0.3, since: 1, reason: '', actor: 'a' },
    quarantine: { 'agent-1': { since: 1, reason: '', actor: 'a' } },
    rolledBack: { 'search-v2': { since: 1, reason: '', actor: 'a' } },
    audit: [{ seq: 3, at: 1, action: 'safe-mode', args: {}, actor: 'a', source: '10.0.0.1\u0085', result: 'refused: x' }, { seq: 4 }],
  });
  const ops = new OpsControls({ stateFile: false, logger: null });
  const report = ops.applyState(doc);
  assertAllControls(ops.status(), 'applyState');
  assert.equal(report.dropped.length, 1, report.dropped.join('\n'));
  assert.equal(report.repaired.length, 1);
  const checked = native.opsCheckState(doc, Date.now());
  assert.equal(checked.dropped.length, 1);
  assert.deepEqual(native.opsCheckState(checked.text, Date.now()).dropped, [], 'the sanitised document is clean');
  assert.throws(() => native.opsCheckState('not json', 0), TypeError);
});

test('agent ids with invisible or bidirectional-control characters are refused with 400 naming agentId', { timeout: 30_000 }, async () => {
  const ops = new OpsControls({ stateFile: false, logger: null });
  const app = express5();
  app.use('/api/ops', createOpsRouter({ ops, token: TOKEN }));
  const { server, url } = await listen(app);
  try {
    for (const id of ['a\u202eb', 'a\u200bb', 'a\u2066b', 'a\ufeff']) {
      const r = await authed(url, `/api/ops/agents/${encodeURIComponent(id)}/quarantine`, {});
      assert.equal(r.status, 400, id);
      assert.match(r.body.message, /^agentId must be text without control, invisible or bidirectional-control characters, got U\+/);
    }
    assert.throws(() => ops.quarantineAgent('x\u200dy'), RangeError);
    assert.equal(ops.status().quarantined.length, 0);
  } finally {
    server.close();
  }
});

test('the ops router answers 404 by error code, not by message text: a failure that says "not found" is a 500', { timeout: 30_000 }, async () => {
  const ops = new OpsControls({ stateFile: fresh(), logger: null, watch: false });
  const app = express5();
  app.use('/api/ops', createOpsRouter({ ops, token: TOKEN }));
  const { server, url } = await listen(app);
  try {
    ops.setRolloutController({
      names: () => ['search-v2'],
      rollback() {
        throw new Error('upstream config service: key not found');
      },
    });
    const failed = await authed(url, '/api/ops/rollback', { name: 'search-v2' });
    assert.equal(failed.status, 500, JSON.stringify(failed.body));
    assert.equal(failed.body.message, 'upstream config service: key not found');
    // Names nothing is registered under carry ERR_NOT_FOUND, and only those are 404s.
    const unknown = await authed(url, '/api/ops/rollback', { name: 'nope' });
    assert.equal(unknown.status, 404, JSON.stringify(unknown.body));
    assert.match(unknown.body.message, /Rollout not found: nope/);
    let thrown;
    try {
      ops.rollback('nope');
    } catch (e) {
      thrown = e;
    }
    assert.equal(thrown.code, 'ERR_NOT_FOUND');
  } finally {
    ops.close();
    server.close();
  }
});

test('dead-letter queues: names, drain limits and defaults are the core\'s rules (core::dlq, core::named)', { timeout: 30_000 }, async () => {
  const { native } = require('../dist/native.js');
  const ops = new OpsControls({ stateFile: false, logger: null });
  const asked = [];
  const queue = (rate) => ({ depth: () => 0, drain: (n) => (asked.push(n), { processed: n }), ratePerSecond: rate });
  // The one name rule: what a breaker or a gate refuses, a queue refuses too.
  for (const bad of ['', 'x'.repeat(257), 'a\u202eb']) assert.throws(() => ops.registerDeadLetterQueue(bad, queue(1000)), { name: 'RangeError', message: /^name must be/ });
  ops.registerDeadLetterQueue('dq-default', queue(undefined));
  ops.registerDeadLetterQueue('dq-fast', queue(100_000));
  assert.throws(() => ops.registerDeadLetterQueue('dq-bad', queue('fast')), { name: 'TypeError', message: 'ratePerSecond must be a number > 0 and <= 100000, got a string' });
  assert.ok(!(await ops.deadLetterQueues()).some((q) => q.name === 'dq-bad'), 'a refused queue is not registered');
  assert.equal((await ops.deadLetterQueues()).find((q) => q.name === 'dq-default').ratePerSecond, native.DLQ_DEFAULT_RATE_PER_SECOND);
  const [run] = await ops.drainDeadLetterQueue('dq-fast', { limit: 7, batchSize: 3 });
  assert.equal(run.processed, 7);
  assert.ok(asked.every((n) => n <= 3), `batches of at most 3: ${asked}`);
  assert.deepEqual({ ...native.dlqDrainSpec(undefined) }, { limit: 1000, batchSize: 100 });
  for (const [opts, msg] of [
    [{ batchSize: 0 }, 'batchSize must be an integer from 1 to 100000, got 0'],
    [{ limit: 1.5 }, 'limit must be an integer from 1 to 1000000000, got 1.5'],
  ]) {
    await assert.rejects(ops.drainDeadLetterQueue('dq-fast', opts), { name: 'RangeError', message: msg });
  }
  await assert.rejects(ops.drainDeadLetterQueue('dq-fast', { batchSize: '5' }), { name: 'TypeError', message: /^batchSize must be a number/ });
  await assert.rejects(ops.drainDeadLetterQueue('dq-fast', { limit: '5' }), { name: 'TypeError', message: /^limit must be a number/ });
  ops.close();
});
