'use strict';
// The operator is never locked out, one read guard, auth nobody can bypass
// (issues 18 and 19): real Express 4 and 5 apps over HTTP on 127.0.0.1.
const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const express5 = require('express');
const express4 = require('express4');
const { OpsControls, reliabilityStack, reliabilityMiddleware, createOpsRouter, configureReadAccess, ENDPOINTS } = require('../dist/entries/ops.js');
const { createObservabilityRouter } = require('../dist/observability.js');
const { createMetricsRouter } = require('../dist/metrics.js');
const { createHealthRouter, HealthGates } = require('../dist/entries/health-gates.js');
const { StartupDAG } = require('../dist/startup-dag.js');
const { TrafficShaping, withTrafficShaping } = require('../dist/traffic-shaping.js');

const TOKEN = crypto.randomBytes(32).toString('hex');
const READ_TOKEN = crypto.randomBytes(32).toString('hex');
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'operator-access-'));
const servers = [];
after(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  fs.rmSync(TMP, { recursive: true, force: true });
});

async function listen(app) {
  const server = await new Promise((r) => {
    const s = app.listen(0, '127.0.0.1', () => r(s));
  });
  servers.push(server);
  return `http://127.0.0.1:${server.address().port}`;
}

async function call(base, method, p, { token, headers = {}, json, body } = {}) {
  const h = { ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  let payload = body;
  if (json !== undefined) {
    h['content-type'] = 'application/json';
    payload = JSON.stringify(json);
  }
  const r = await fetch(base + p, { method, headers: h, body: payload });
  const text = await r.text();
  return { status: r.status, text, headers: r.headers };
}

// An app-level error handler as many apps have: any error is a 500. The
// package's routers must answer their own 400s before it.
const catchAll = (err, req, res, _next) => res.status(500).json({ error: 'app error handler', message: String(err?.message) });

const OBS_PARTS = ENDPOINTS.filter((e) => e.router === 'observability').map((e) => e.path);

/**
 * One app: the stack or the middleware, and every package router, in the
 * given order and at the given mount points. Returns the package paths to
 * probe and the ops prefix.
 */
function buildApp(express, { ops, shaping, order, layer, custom }) {
  const app = express();
  const gates = new HealthGates();
  const dag = new StartupDAG();
  const gateOptions = {
    ops,
    agentPaths: ['/api/work/agents/:agentId', '/api/ops/agents/:agentId', '/internal/ops/agents/:agentId'],
    // A quarantined agent's requests carry its id; an operator acting from that agent's host must still get through.
    agentFrom: (req) => req.headers['x-agent-id'],
  };
  const controls = () => {
    if (layer === 'stack') app.use(reliabilityStack({ ...gateOptions, shaping, rollouts: { '/*': 'closed' } }));
    else {
      app.use(reliabilityMiddleware(gateOptions));
      app.use(withTrafficShaping({ rolloutName: 'closed', shaping }));
    }
  };
  const p = custom
    ? { ops: '/internal/ops', obs: '/internal/obs', live: ['/h/live', '/internal/live'], ready: ['/h/ready'], gates: ['/h/gates'], dag: ['/h/dag'], metrics: '/internal/metrics', gs: '/internal/gs' }
    : { ops: '/api/ops', obs: '/api/observability', live: ['/health/live', '/api/health/live'], ready: ['/health/ready', '/api/health/ready'], gates: ['/api/observability/health-gates'], dag: ['/api/observability/startup-dag'], metrics: '/metrics', gs: '/api/observability/golden-signals' };
  const routers = () => {
    if (custom) {
      app.use(createMetricsRouter({ prometheusPath: p.metrics, goldenSignalsPath: p.gs }));
      app.use('/h', createHealthRouter({ gates, dag, livePath: '/live', readyPath: '/ready', gatesPath: '/gates', dagPath: '/dag' }));
      app.use(createHealthRouter({ gates, dag, livePath: '/internal/live', readyPath: false, gatesPath: false, dagPath: false }));
      // Nested: a user router holding the package's router.
      const internal = express.Router();
      internal.use('/ops', createOpsRouter({ ops, token: TOKEN }));
      internal.use('/obs', createObservabilityRouter({ gates, dag, ops }));
      app.use('/internal', internal);
    } else {
      app.use(createMetricsRouter());
      app.use(createHealthRouter({ gates, dag }));
      app.use('/api/observability', createObservabilityRouter({ gates, dag, ops }));
      app.use('/api/ops', createOpsRouter({ ops, token: TOKEN }));
    }
  };
  if (order === 'stack first') {
    controls();
    routers();
  } else {
    routers();
    controls();
  }
  app.get('/api/work', (req, res) => res.json({ ok: true }));
  app.get('/api/work/agents/:agentId', (req, res) => res.json({ ok: true }));
  app.use(catchAll);
  const reads = [
    ...p.live,
    ...p.ready,
    ...p.gates,
    ...p.dag,
    p.metrics,
    p.gs,
    ...OBS_PARTS.map((x) => p.obs + x),
    `${p.obs}/dashboard/`,
    `${p.obs}/dashboard/config.json`,
    `${p.ops}/status`,
    `${p.ops}/audit`,
    `${p.ops}/dlq`,
  ];
  return { app, reads, opsPrefix: p.ops };
}

const CONTROLS = [
  { name: 'safe mode', on: (ops) => ops.enableSafeMode('drill'), off: ['POST', 'safe-mode', { enabled: false }] },
  ...[0, 0.25, 0.5, 0.75, 1].map((level) => ({ name: `brownout ${level}`, on: (ops) => ops.setBrownout(true, { level, reason: 'drill' }), off: ['POST', 'brownout', { enabled: false }] })),
  { name: 'quarantine', on: (ops) => ops.quarantineAgent('agent-q', { reason: 'drill' }), off: ['DELETE', 'agents/agent-q/quarantine'] },
  { name: 'rollout refusal', rollout: true, on: () => {}, off: ['POST', 'safe-mode', { enabled: false }] },
];
const MOUNTS = [
  { order: 'stack first', layer: 'stack' },
  { order: 'stack first', layer: 'middleware' },
  { order: 'routers first', layer: 'stack' },
  { order: 'stack first', layer: 'stack', custom: true },
  { order: 'routers first', layer: 'middleware', custom: true },
];

test('every control × every package path × both mount orders × after a restart: never 503 or 423, and the operator can switch it off', { timeout: 60_000 }, async () => {
  let requests = 0;
  for (const [fw, express] of [['express5', express5], ['express4', express4]]) {
    for (const m of MOUNTS) {
      for (const c of CONTROLS) {
        const stateFile = path.join(TMP, `${fw}-${m.order}-${m.layer}-${m.custom ? 'custom' : 'default'}-${c.name}.json`.replace(/\s+/g, '_'));
        const shaping = new TrafficShaping();
        shaping.startRollout('closed', { percentage: c.rollout ? 0 : 100 });
        const first = new OpsControls({ stateFile, watch: false, logger: null });
        c.on(first);
        for (const phase of ['live', 'after restart']) {
          // The restart: a new ops plane that loads the persisted state before serving.
          const ops = phase === 'live' ? first : new OpsControls({ stateFile, watch: false, logger: null });
          const { app, reads, opsPrefix } = buildApp(express, { ...m, ops, shaping });
          const base = await listen(app);
          const where = `${fw}, ${m.order} (${m.layer}${m.custom ? ', custom mounts' : ''}), ${c.name}, ${phase}`;
          // The control really is on: an app route is refused.
          const work = await call(base, 'GET', c.name === 'quarantine' ? '/api/work/agents/agent-q' : '/api/work', { headers: { 'x-user-id': 'u1' } });
          if (!c.name.startsWith('brownout 0.') && c.name !== 'brownout 1') assert.ok([503, 423].includes(work.status), `${where}: /api/work answered ${work.status}, so the control is off`);
          for (const p of reads) {
            const r = await call(base, 'GET', p, { headers: { 'x-agent-id': 'agent-q', 'x-user-id': 'u1' } });
            requests++;
            assert.ok(r.status === 200 || r.status === 301, `${where}: GET ${p} answered ${r.status} ${r.text.slice(0, 160)}`);
          }
          if (phase === 'after restart') {
            const [method, sub, json] = c.off;
            const r = await call(base, method, `${opsPrefix}/${sub}`, { token: TOKEN, json, headers: { 'x-agent-id': 'agent-q', 'x-user-id': 'u1' } });
            requests++;
            assert.equal(r.status, 200, `${where}: the operator's ${method} ${sub} answered ${r.status} ${r.text.slice(0, 160)}`);
            if (!c.rollout) assert.equal(ops.anyActive(), false, `${where}: switched off`);
          }
        }
        first.close();
      }
    }
  }
  console.log(`# ${requests} requests to the package's endpoints under controls, none refused`);
});

const READ_PATHS = [
  '/api/observability/health-gates',
  '/api/observability/startup-dag',
  '/api/observability/golden-signals',
  '/metrics',
  ...OBS_PARTS.map((x) => '/api/observability' + x),
  '/api/ops/status',
  '/api/ops/audit',
  '/api/ops/dlq',
];
const PROBES = ['/health/live', '/health/ready', '/api/health/live', '/api/health/ready'];

/** The README's mount order: metrics and health routers first, then observability and ops. */
function readmeApp(express, ops, extra = {}) {
  const app = express();
  app.use(createMetricsRouter(extra));
  app.use(createHealthRouter({ gates: new HealthGates(), dag: new StartupDAG(), ...extra }));
  app.use('/api/observability', createObservabilityRouter({ ops, ...extra }));
  app.use('/api/ops', createOpsRouter({ ops, token: TOKEN, ...extra }));
  return app;
}

test('one read guard: RELIABILITY_READ_TOKEN, configureReadAccess and authorize close every documented read path of every router', { timeout: 30_000 }, async () => {
  const ops = new OpsControls({ stateFile: false, logger: null });
  for (const [fw, express] of [['express5', express5], ['express4', express4]]) {
    // 1. The environment variable, read when the routers are created.
    process.env.RELIABILITY_READ_TOKEN = READ_TOKEN;
    let base;
    try {
      base = await listen(readmeApp(express, ops));
    } finally {
      delete process.env.RELIABILITY_READ_TOKEN;
    }
    for (const p of READ_PATHS) {
      // Refused: 401, or 429 once this address's failures pass the limiter (which never stops the right token).
      assert.ok([401, 429].includes((await call(base, 'GET', p)).status), `${fw} RELIABILITY_READ_TOKEN: GET ${p} without a token`);
      assert.ok([401, 429].includes((await call(base, 'GET', p, { token: 'f'.repeat(64) })).status), `${fw}: GET ${p} with a wrong token`);
      assert.equal((await call(base, 'GET', p, { token: READ_TOKEN })).status, 200, `${fw}: GET ${p} with the read token`);
      assert.equal((await call(base, 'GET', p, { token: TOKEN })).status, 200, `${fw}: GET ${p} with the ops token`);
    }
    for (const p of PROBES) assert.equal((await call(base, 'GET', p)).status, 200, `${fw}: probe ${p} stays open`);

    // 2. One process-wide switch, applying to routers created before it.
    const open = await listen(readmeApp(express, ops));
    assert.equal((await call(open, 'GET', '/api/observability/summary')).status, 200, 'open by default');
    configureReadAccess({ authorize: (req) => req.headers['x-operator'] === 'yes' });
    try {
      for (const p of READ_PATHS) {
        assert.equal((await call(open, 'GET', p)).status, 403, `${fw} configureReadAccess: GET ${p}`);
        assert.equal((await call(open, 'GET', p, { headers: { 'x-operator': 'yes' } })).status, 200, `${fw}: GET ${p} authorized`);
      }
      for (const p of PROBES) assert.equal((await call(open, 'GET', p)).status, 200, `${fw}: probe ${p} stays open`);
    } finally {
      configureReadAccess(null);
    }
    assert.equal((await call(open, 'GET', '/api/observability/summary')).status, 200, 'reopened');

    // 3. authorize given to each router.
    const own = await listen(readmeApp(express, ops, { authorize: (req) => req.headers['x-operator'] === 'yes' }));
    for (const p of READ_PATHS) {
      assert.equal((await call(own, 'GET', p)).status, 403, `${fw} authorize: GET ${p}`);
      assert.equal((await call(own, 'GET', p, { headers: { 'x-operator': 'yes' } })).status, 200, `${fw}: GET ${p} authorized`);
    }
  }
});

test('weak tokens: the routers refuse to start and say how to make one, never quoting it', () => {
  for (const make of [
    () => createOpsRouter({ token: 'secret' }),
    () => createOpsRouter({ token: 'cluster-token' }),
    () => createObservabilityRouter({ readToken: 'read-me' }),
    () => createMetricsRouter({ readToken: 'x'.repeat(100) }),
    () => configureReadAccess({ token: 'hunter2hunter2' }),
  ]) {
    assert.throws(make, (e) => e instanceof RangeError && /at least 128 bits/.test(e.message) && /openssl rand -hex 32/.test(e.message) && !/secret|cluster-token|read-me|xxxx|hunter2/.test(e.message));
  }
  process.env.RELIABILITY_OPS_TOKEN = 'changeme';
  try {
    assert.throws(() => createOpsRouter(), (e) => e instanceof RangeError && /^RELIABILITY_OPS_TOKEN must be/.test(e.message) && !/changeme/.test(e.message));
  } finally {
    delete process.env.RELIABILITY_OPS_TOKEN;
  }
  assert.doesNotThrow(() => createOpsRouter({ token: crypto.randomBytes(16).toString('hex') }), '128 random bits are enough');
});

test('bodies and paths: non-JSON bodies to ops actions get 415 and change nothing; malformed percent-encoding gets 400, not the app error handler', { timeout: 20_000 }, async () => {
  for (const [fw, express] of [['express5', express5], ['express4', express4]]) {
    const ops = new OpsControls({ stateFile: false, logger: null });
    const app = express();
    app.use('/api/ops', createOpsRouter({ ops, token: TOKEN }));
    app.use('/api/observability', createObservabilityRouter({ ops }));
    app.use(catchAll);
    const base = await listen(app);
    const form = await call(base, 'POST', '/api/ops/safe-mode', { token: TOKEN, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'enabled=true&reason=drill' });
    assert.equal(form.status, 415, `${fw}: form body: ${form.text}`);
    const text = await call(base, 'POST', '/api/ops/brownout', { token: TOKEN, headers: { 'content-type': 'text/plain' }, body: '{"enabled":true}' });
    assert.equal(text.status, 415, `${fw}: text/plain body`);
    assert.equal(ops.anyActive(), false, 'nothing changed');
    const ok = await call(base, 'POST', '/api/ops/safe-mode', { token: TOKEN, json: { enabled: true, reason: 'kept' } });
    assert.equal(ok.status, 200);
    assert.equal(ops.status().safeMode.reason, 'kept');
    const noBody = await call(base, 'POST', '/api/ops/dlq/drain', { token: TOKEN });
    assert.equal(noBody.status, 200, `${fw}: no body at all is fine: ${noBody.text}`);
    for (const [method, p] of [
      ['DELETE', '/api/ops/agents/%E0%A4%A/quarantine'],
      ['POST', '/api/ops/dlq/%ZZ/drain'],
      ['GET', '/api/ops/%E0%A4%A'],
      ['GET', '/api/observability/dashboard/%E0%A4%A'],
      ['GET', '/api/observability/%ZZ'],
    ]) {
      const r = await call(base, method, p, { token: TOKEN, json: method === 'POST' ? {} : undefined });
      assert.equal(r.status, 400, `${fw}: ${method} ${p} answered ${r.status} ${r.text.slice(0, 120)}`);
      assert.match(r.text, /malformed percent-encoding/);
    }
  }
});

test('a quarantined agent: the 423 answer is one lookup, not the whole status rebuilt', { timeout: 30_000 }, async () => {
  const ops = new OpsControls({ stateFile: false, logger: null });
  for (let i = 0; i < 3263; i++) ops.quarantineAgent(`agent-${i}`, { reason: `loop ${i}`, ...(i === 7 ? { ttlMs: 3_600_000 } : {}) });
  let statusCalls = 0;
  const status = ops.status.bind(ops);
  ops.status = () => {
    statusCalls++;
    return status();
  };
  const app = express5();
  app.use(reliabilityStack({ ops, agentPaths: ['/api/agents/:agentId'] }));
  app.get('/api/agents/:agentId/run', (req, res) => res.json({ ok: true }));
  const base = await listen(app);
  const n = 200;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const r = await call(base, 'GET', '/api/agents/agent-7/run');
    assert.equal(r.status, 423);
    const body = JSON.parse(r.text);
    assert.equal(body.reason, 'loop 7');
    assert.equal(typeof body.until, 'number');
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  assert.equal((await call(base, 'GET', '/api/agents/free/run')).status, 200);
  assert.equal(statusCalls, 0, 'no 423 rebuilt the status');
  console.log(`# 423 with 3,263 quarantines: ${(ms / n).toFixed(3)} ms per request over HTTP (client included)`);
});

// Last: the limiter is the process's, so its global count outlives this test.
test('the limiter: rotating addresses hit the global limit; the right token is never refused, during a flood or after failures from its own address', { timeout: 30_000 }, async () => {
  for (const [fw, express] of [['express5', express5], ['express4', express4]]) {
    const ops = new OpsControls({ stateFile: false, logger: null });
    const app = express();
    app.set('trust proxy', true);
    app.use('/api/ops', createOpsRouter({ ops, token: TOKEN }));
    const base = await listen(app);
    // 11 wrong tokens from one address: that address's failures get 429 ...
    let r;
    for (let i = 0; i < 11; i++) r = await call(base, 'POST', '/api/ops/safe-mode', { token: 'wrong', json: { enabled: true }, headers: { 'x-forwarded-for': '10.9.9.9' } });
    assert.equal(r.status, 429, `${fw}: the 11th failure`);
    assert.ok(Number(r.headers.get('retry-after')) >= 1, 'Retry-After');
    // ... but the right token from that same address (a NAT, a proxy, the local CLI) is served.
    const right = await call(base, 'POST', '/api/ops/safe-mode', { token: TOKEN, json: { enabled: false }, headers: { 'x-forwarded-for': '10.9.9.9' } });
    assert.equal(right.status, 200, `${fw}: the right token after 11 failures: ${right.text}`);

    // 1,200 guesses from 120 addresses, each under its own limit.
    let limited = 0;
    let rightDuring = 0;
    const t0 = Date.now();
    for (let i = 0; i < 1200; i++) {
      const g = await call(base, 'POST', '/api/ops/brownout', { token: crypto.randomBytes(32).toString('hex'), json: { enabled: true }, headers: { 'x-forwarded-for': `10.1.${i % 120}.7` } });
      assert.ok(g.status === 401 || g.status === 429, `guess answered ${g.status}`);
      if (g.status === 429) limited++;
      if (i % 100 === 50) {
        const ok = await call(base, 'GET', '/api/ops/status', { token: TOKEN, headers: { 'x-forwarded-for': `10.1.${i % 120}.7` } });
        const act = await call(base, 'POST', '/api/ops/safe-mode', { token: TOKEN, json: { enabled: false }, headers: { 'x-forwarded-for': `10.1.${i % 120}.7` } });
        assert.equal(act.status, 200, `${fw}: the right token during the flood: ${act.text}`);
        assert.equal(ok.status, 200);
        rightDuring++;
      }
    }
    assert.ok(limited >= 1000, `${fw}: ${limited} of 1200 rotating guesses got 429 (global limit 100 per window)`);
    assert.equal(rightDuring, 12);
    assert.equal(ops.status().brownout, null, 'no guess changed anything');
    console.log(`# ${fw}: 1,200 guesses from 120 addresses in ${Date.now() - t0} ms: ${limited} got 429; 12 right-token actions during the flood all served`);
  }
});
