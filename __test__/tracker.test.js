'use strict';
// How reliabilityStack() and metricsMiddleware follow a request to its end
// without a listener on the response or a property on req/res
// (lib/express/tracker.ts): pipelined requests, aborted ones, reads of
// req.rollout after the response, requests that are not Node HTTP/1 ones,
// on Express 4 and 5, in real apps on 127.0.0.1.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { EventEmitter } = require('node:events');

const { reliabilityStack, OpsControls } = require('../dist/entries/ops.js');
const { TrafficShaping } = require('../dist/traffic-shaping.js');
const { getEndpointMetrics, getGoldenSignals, metricsMiddleware } = require('../dist/metrics.js');

const listen = (app) =>
  new Promise((r) => {
    const s = app.listen(0, '127.0.0.1', () => r(s));
  });
const close = (s) => new Promise((r) => {
  s.close(r);
  s.closeAllConnections();
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Writes raw HTTP/1.1 on one socket; resolves with the raw answer once `n` responses arrived. */
function raw(port, text, n) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => sock.write(text));
    let out = '';
    sock.setEncoding('utf8');
    sock.on('data', (d) => {
      out += d;
      if ((out.match(/HTTP\/1\.1 /g) || []).length >= n && /\}$/.test(out)) {
        sock.end();
        resolve(out);
      }
    });
    sock.on('error', reject);
    setTimeout(() => reject(new Error(`no ${n} answers: ${out}`)), 5000).unref();
  });
}

for (const flavour of ['express', 'express4']) {
  test(`${flavour}: pipelined requests on one socket keep their own cohort, route and latency`, { timeout: 20_000 }, async () => {
    const express = require(flavour);
    const shaping = new TrafficShaping();
    shaping.startRollout(`pipe-${flavour}`, { percentage: 50 });
    const ops = new OpsControls({ stateFile: false, logger: null });
    const app = express();
    app.use(reliabilityStack({ ops, shaping, onBlocked: 'next', rollouts: { '/pipe/*': `pipe-${flavour}` } }));
    // The first request is slow, so the next two wait behind it on the socket.
    app.get(`/pipe/${flavour}/:user`, async (req, res) => {
      const before = req.rollout;
      if (req.params.user === 'u0') await sleep(80);
      // Still this request's decision after the others started.
      assert.equal(req.rollout, before);
      res.json({ user: req.params.user, cohort: req.rollout.cohort, name: req.rollout.name, dimmer: req.reliability.dimmer, own: Object.keys(req).filter((k) => k === 'rollout' || k === 'reliability') });
    });
    const server = await listen(app);
    try {
      const users = ['u0', 'u1', 'u2', 'u3', 'u4', 'u5'];
      const text = users.map((u) => `GET /pipe/${flavour}/${u} HTTP/1.1\r\nHost: x\r\nx-user-id: ${u}\r\n\r\n`).join('');
      const out = await raw(server.address().port, text, users.length);
      const bodies = out.split('\r\n\r\n').filter((b) => b.startsWith('{')).map((b) => JSON.parse(b.slice(0, b.lastIndexOf('}') + 1)));
      assert.deepEqual(bodies.map((b) => b.user), users, 'answers in order');
      for (const b of bodies) {
        assert.equal(b.cohort, shaping.shouldRoute(`pipe-${flavour}`, b.user) ? 'new' : 'stable', `cohort of ${b.user}`);
        assert.equal(b.name, `pipe-${flavour}`);
        assert.equal(b.dimmer, 1);
        assert.deepEqual(b.own, [], 'nothing stored on req');
      }
      const m = getEndpointMetrics(`GET /pipe/${flavour}/:user`);
      assert.equal(m.count, users.length);
      // u0 slept 80 ms; the others waited behind it, so the slowest is at least that.
      assert.ok(m.latency.max >= 75, `max latency ${m.latency.max}`);
      const st = shaping.getStatus(`pipe-${flavour}`);
      assert.equal(st.requestCount + st.stableRequestCount, users.length, 'each outcome in its cohort');
      assert.equal(getGoldenSignals().saturation.activeConnections, 0, 'nothing left in flight');
    } finally {
      await close(server);
    }
  });
}

test('a socket closed with requests in flight ends them as aborted, and req.rollout answers after the response', { timeout: 20_000 }, async () => {
  const express = require('express');
  const shaping = new TrafficShaping();
  shaping.startRollout('after', { percentage: 100 });
  const app = express();
  app.use(reliabilityStack({ shaping, ops: new OpsControls({ stateFile: false, logger: null }), rollouts: { '/after': 'after' } }));
  let late;
  app.get('/after', (req, res) => {
    res.json({ ok: true });
    // Code that runs after the response still sees the decision.
    setImmediate(() => (late = req.rollout && req.rollout.cohort));
  });
  app.get('/hang', () => {});
  const server = await listen(app);
  const port = server.address().port;
  try {
    const before = getGoldenSignals().traffic.aborted;
    await raw(port, 'GET /after HTTP/1.1\r\nHost: x\r\n\r\n', 1);
    await sleep(20);
    assert.equal(late, 'new');
    // Two pipelined requests that never get an answer, then the client leaves.
    const sock = net.connect(port, '127.0.0.1', () => sock.write('GET /hang HTTP/1.1\r\nHost: x\r\n\r\nGET /hang HTTP/1.1\r\nHost: x\r\n\r\n'));
    await sleep(100);
    assert.equal(getGoldenSignals().saturation.activeConnections, 2, 'both in flight (the second queued behind the first)');
    sock.destroy();
    let g;
    for (let i = 0; i < 50 && !(g && g.saturation.activeConnections === 0); i++) {
      await sleep(20);
      g = getGoldenSignals();
    }
    assert.equal(g.saturation.activeConnections, 0);
    assert.equal(g.traffic.aborted, before + 2, `aborted ${g.traffic.aborted}, before ${before}`);
  } finally {
    await close(server);
  }
});

test('requests that are not Node HTTP/1 ones (mocks) fall back to a listener, with the same getters', async () => {
  const shaping = new TrafficShaping();
  shaping.startRollout('mock', { percentage: 100 });
  const mw = reliabilityStack({ shaping, ops: new OpsControls({ stateFile: false, logger: null }), rollouts: { '/mock': 'mock' } });
  class Req {
    constructor() {
      this.method = 'GET';
      this.url = '/mock';
      this.headers = { 'x-user-id': 'm1' };
    }
  }
  const req = new Req();
  const res = Object.assign(new EventEmitter(), { statusCode: 200, writableFinished: true, setHeader() {} });
  let nexted = false;
  mw(req, res, () => (nexted = true));
  assert.ok(nexted);
  assert.deepEqual({ ...req.rollout }, { name: 'mock', cohort: 'new' });
  assert.equal(req.reliability.dimmer, 1);
  // Assigning keeps working (an own property wins over the getter).
  const other = new Req();
  other.rollout = { name: 'x', cohort: 'stable' };
  assert.equal(other.rollout.cohort, 'stable');
  const n0 = shaping.getStatus('mock').requestCount;
  res.emit('close');
  shaping.flush();
  assert.equal(shaping.getStatus('mock').requestCount, n0 + 1);

  // metricsMiddleware on a mock: counted when the response closes.
  const before = getGoldenSignals().traffic.totalRequests;
  const r2 = Object.assign(new EventEmitter(), { statusCode: 204, writableFinished: true });
  metricsMiddleware({ method: 'GET', route: { path: '/mocked' } }, r2, () => {});
  r2.emit('close');
  assert.equal(getGoldenSignals().traffic.totalRequests, before + 1);
});

test('cohortHeader: none by default, the named header when asked; bad names are a TypeError', { timeout: 20_000 }, async () => {
  const express = require('express');
  const shaping = new TrafficShaping();
  shaping.startRollout('hdr', { percentage: 100 });
  const ops = new OpsControls({ stateFile: false, logger: null });
  const app = express();
  app.use('/a', reliabilityStack({ ops, shaping, rollouts: { '/x': 'hdr' } }));
  app.use('/b', reliabilityStack({ ops, shaping, rollouts: { '/x': 'hdr' }, cohortHeader: 'X-Cohort' }));
  app.get(['/a/x', '/b/x'], (req, res) => res.json({ cohort: req.rollout.cohort }));
  const server = await listen(app);
  const base = `http://127.0.0.1:${server.address().port}`;
  try {
    const a = await fetch(`${base}/a/x`);
    assert.equal(a.headers.get('x-cohort'), null);
    assert.equal(a.headers.get('x-rollout-cohort'), null);
    assert.equal((await a.json()).cohort, 'new');
    const b = await fetch(`${base}/b/x`);
    assert.equal(b.headers.get('x-cohort'), 'new');
  } finally {
    await close(server);
  }
  assert.throws(() => reliabilityStack({ cohortHeader: 'bad header' }), /cohortHeader must be a header name/);
  assert.throws(() => reliabilityStack({ cohortHeader: 42 }), TypeError);
});

test('req.reliability: the normal state with no control on, the dimmer during a brownout (stack and reliabilityMiddleware)', { timeout: 20_000 }, async () => {
  const express = require('express');
  const { reliabilityMiddleware } = require('../dist/entries/ops.js');
  const ops = new OpsControls({ stateFile: false, logger: null });
  const app = express();
  app.use('/s', reliabilityStack({ ops, criticality: { '/x': 'critical' } }));
  app.use('/m', reliabilityMiddleware({ ops, criticality: { '/x': 'critical' } }));
  app.get(['/s/x', '/m/x'], (req, res) => res.json({ ...req.reliability, own: Object.keys(req).includes('reliability') }));
  const server = await listen(app);
  const base = `http://127.0.0.1:${server.address().port}`;
  try {
    for (const p of ['/s/x', '/m/x']) assert.deepEqual(await (await fetch(base + p)).json(), { dimmer: 1, safeMode: false, own: false }, p);
    ops.setBrownout(true, { level: 0.4, reason: 'test' });
    for (const p of ['/s/x', '/m/x']) {
      const b = await (await fetch(base + p)).json();
      assert.equal(b.dimmer, 0.4, p);
      assert.equal(b.safeMode, false, p);
    }
  } finally {
    ops.setBrownout(false);
    await close(server);
  }
});

test('TypeScript: req.rollout and req.reliability are typed on Express requests', { timeout: 60_000 }, async () => {
  const { execFile } = require('node:child_process');
  const fs = require('node:fs');
  const path = require('node:path');
  const tsc = path.join(__dirname, '..', 'node_modules', 'typescript', 'bin', 'tsc');
  const src = fs.readFileSync(path.join(__dirname, 'fixtures', 'types-consumer.ts'), 'utf8');
  const check = (text) => {
    const dir = fs.mkdtempSync(path.join(__dirname, 'fixtures', '.types-'));
    const file = path.join(dir, 'consumer.ts');
    fs.writeFileSync(file, text.replace("'../../dist/entries/ops'", `'${path.join(__dirname, '..', 'dist', 'entries', 'ops')}'`));
    return new Promise((resolve) =>
      execFile(process.execPath, [tsc, '--noEmit', '--strict', '--esModuleInterop', '--skipLibCheck', '--types', 'node', file], (error, stdout) => {
        fs.rmSync(dir, { recursive: true, force: true });
        resolve({ ok: !error, out: stdout });
      }),
    );
  };
  const good = await check(src);
  assert.ok(good.ok, good.out);
  const bad = await check(`${src}\napp.get('/x', (req) => { const n: number = req.rollout!.cohort; return n; });\n`);
  assert.ok(!bad.ok, 'a wrong use must not type-check');
  assert.match(bad.out, /not assignable to type 'number'/);
});

test('connection churn: 400 one-request connections leave no request in flight and no socket counted open', { timeout: 30_000 }, async () => {
  const express = require('express');
  const http = require('node:http');
  const app = express();
  app.use(reliabilityStack({ ops: new OpsControls({ stateFile: false, logger: null }) }));
  app.get('/churn/:i', (req, res) => res.json({ i: req.params.i }));
  const server = await listen(app);
  const port = server.address().port;
  try {
    const one = (i) =>
      new Promise((resolve, reject) => {
        http
          .get({ host: '127.0.0.1', port, path: `/churn/${i}`, agent: false, headers: { connection: 'close' } }, (res) => {
            res.resume();
            res.on('end', resolve);
          })
          .on('error', reject);
      });
    const before = getEndpointMetrics('GET /churn/:i')?.count ?? 0;
    for (let i = 0; i < 400; i += 20) await Promise.all(Array.from({ length: 20 }, (_, k) => one(i + k)));
    let g;
    for (let i = 0; i < 100 && !(g && g.saturation.openSockets === 0); i++) {
      await sleep(20);
      g = getGoldenSignals();
    }
    assert.equal(g.saturation.openSockets, 0, 'every socket counted closed');
    assert.equal(g.saturation.activeConnections, 0, 'nothing in flight');
    assert.equal(getEndpointMetrics('GET /churn/:i').count, before + 400);
  } finally {
    await close(server);
  }
});

test('the three separate middlewares share the record too: withTrafficShaping after metricsMiddleware stores nothing on req', { timeout: 20_000 }, async () => {
  const express = require('express');
  const { withTrafficShaping } = require('../dist/traffic-shaping.js');
  const { reliabilityMiddleware } = require('../dist/entries/ops.js');
  const shaping = new TrafficShaping();
  shaping.startRollout('three', { percentage: 50 });
  const app = express();
  app.use(metricsMiddleware);
  app.use(reliabilityMiddleware({ ops: new OpsControls({ stateFile: false, logger: null }) }));
  app.get('/three/:u', withTrafficShaping({ rolloutName: 'three', shaping, onBlocked: 'next' }), (req, res) =>
    res.json({ cohort: req.rollout.cohort, own: Object.keys(req).filter((k) => k === 'rollout' || k === 'reliability') }),
  );
  const server = await listen(app);
  const base = `http://127.0.0.1:${server.address().port}`;
  try {
    for (let i = 0; i < 20; i++) {
      const r = await fetch(`${base}/three/${i}`, { headers: { 'x-user-id': `t${i}` } });
      const b = await r.json();
      const want = shaping.shouldRoute('three', `t${i}`) ? 'new' : 'stable';
      assert.equal(b.cohort, want);
      assert.equal(r.headers.get('x-rollout-cohort'), want, 'the header, as before');
      assert.deepEqual(b.own, []);
    }
    await sleep(20);
    shaping.flush();
    const st = shaping.getStatus('three');
    assert.equal(st.requestCount + st.stableRequestCount, 20, 'each outcome recorded once');
    assert.equal(getEndpointMetrics('GET /three/:u').count, 20);
  } finally {
    await close(server);
  }
});

test('metricsMiddleware mounted before the stack: the stack rides on its record (counted once, nothing left in flight, req.rollout answers)', { timeout: 20_000 }, async () => {
  const express = require('express');
  const shaping = new TrafficShaping();
  shaping.startRollout('both', { percentage: 100 });
  const app = express();
  app.use(metricsMiddleware);
  app.use(reliabilityStack({ shaping, ops: new OpsControls({ stateFile: false, logger: null }), rollouts: { '/both': 'both' } }));
  app.get('/both', (req, res) => res.json({ cohort: req.rollout.cohort }));
  const server = await listen(app);
  try {
    for (let i = 0; i < 5; i++) assert.deepEqual(await (await fetch(`http://127.0.0.1:${server.address().port}/both`)).json(), { cohort: 'new' });
    await sleep(20);
    assert.equal(getEndpointMetrics('GET /both').count, 5, 'counted once each');
    assert.equal(getGoldenSignals().saturation.activeConnections, 0, 'nothing left in flight');
    shaping.flush();
    assert.equal(shaping.getStatus('both').requestCount, 5, 'outcomes recorded once each');
  } finally {
    await close(server);
  }
});

test('metricsMiddleware mounted after the stack: counted once; after a stack without metrics: counted by metricsMiddleware; sockets counted once', { timeout: 20_000 }, async () => {
  const express = require('express');
  for (const stackMetrics of [true, false]) {
    const app = express();
    app.use(reliabilityStack({ metrics: stackMetrics, ops: new OpsControls({ stateFile: false, logger: null }) }));
    app.use(metricsMiddleware);
    const route = `/after-${stackMetrics}`;
    app.get(route, (req, res) => res.json({ ok: true }));
    const server = await listen(app);
    const agent = new (require('node:http').Agent)({ keepAlive: true, maxSockets: 2 });
    try {
      const get = () =>
        new Promise((resolve, reject) => {
          require('node:http')
            .get({ host: '127.0.0.1', port: server.address().port, path: route, agent }, (res) => {
              res.resume();
              res.on('end', resolve);
            })
            .on('error', reject);
        });
      await Promise.all(Array.from({ length: 6 }, get));
      await sleep(20);
      assert.equal(getEndpointMetrics(`GET ${route}`).count, 6, `counted once each (stack metrics ${stackMetrics})`);
      const g = getGoldenSignals();
      assert.equal(g.saturation.activeConnections, 0, 'nothing left in flight');
      assert.equal(g.saturation.openSockets, 2, 'two keep-alive sockets, each counted once');
    } finally {
      agent.destroy();
      await close(server);
    }
    for (let i = 0; i < 50 && getGoldenSignals().saturation.openSockets !== 0; i++) await sleep(10);
    assert.equal(getGoldenSignals().saturation.openSockets, 0, 'closed sockets counted closed');
  }
});

/** A 50 % rollout, and one key in each of its cohorts: reading the wrong key shows in the cohort. */
function rolloutWithKeysInBothCohorts(name) {
  const shaping = new TrafficShaping();
  shaping.startRollout(name, { percentage: 50 });
  const keys = Array.from({ length: 40 }, (_, i) => `${name}-${i}`);
  const newKey = keys.find((k) => shaping.shouldRoute(name, k));
  const stableKey = keys.find((k) => !shaping.shouldRoute(name, k));
  assert.ok(newKey && stableKey, 'keys in both cohorts');
  return { shaping, newKey, stableKey };
}

test('rollout stickiness reads req.user when auth set it (own property) or when the request prototype defines it, else the header', { timeout: 20_000 }, async () => {
  const express = require('express');
  const { shaping, newKey: newUser, stableKey: stableUser } = rolloutWithKeysInBothCohorts('sticky-user');
  const cohortOfKey = (k) => (shaping.shouldRoute('sticky-user', k) ? 'new' : 'stable');
  const ops = new OpsControls({ stateFile: false, logger: null });

  // 1. An auth middleware that sets req.user as an own property, mounted before the stack.
  const app = express();
  app.use((req, res, next) => {
    if (req.headers.authorization) req.user = { id: req.headers.authorization };
    next();
  });
  app.use(reliabilityStack({ ops, shaping, onBlocked: 'next', rollouts: { '/s/*': 'sticky-user' } }));
  app.get('/s/x', (req, res) => res.json({ cohort: req.rollout.cohort }));
  // 2. An app whose request prototype defines `user` (a getter, as some frameworks do).
  const app2 = express();
  Object.defineProperty(app2.request, 'user', {
    configurable: true,
    get() {
      return this.headers.authorization ? { id: this.headers.authorization } : undefined;
    },
  });
  app2.use(reliabilityStack({ ops, shaping, onBlocked: 'next', rollouts: { '/s/*': 'sticky-user' } }));
  app2.get('/s/x', (req, res) => res.json({ cohort: req.rollout.cohort }));
  const s1 = await listen(app);
  const s2 = await listen(app2);
  try {
    for (const s of [s1, s2]) {
      const url = `http://127.0.0.1:${s.address().port}/s/x`;
      for (const [auth, header] of [
        [newUser, stableUser],
        [stableUser, newUser],
      ]) {
        const b = await (await fetch(url, { headers: { authorization: auth, 'x-user-id': header } })).json();
        assert.equal(b.cohort, cohortOfKey(auth), 'req.user.id wins over the header');
      }
      // No user: the header decides.
      for (const header of [newUser, stableUser]) {
        const b = await (await fetch(url, { headers: { 'x-user-id': header } })).json();
        assert.equal(b.cohort, cohortOfKey(header));
      }
    }
  } finally {
    await close(s1);
    await close(s2);
  }
});

test('rollout patterns match raw URLs (query strings included) exactly as they match paths', () => {
  const { compilePattern, compileUrlTest } = require('../dist/express/ops.js');
  const patterns = ['/api/items/*', '/api/items', '/api/items/', '/', '/api/agents/:agentId', '/a/:x/b', '/api/v1.2'];
  const paths = ['/', '/api', '/api/items', '/api/items/', '/api/items/7', '/api/itemsX', '/api/agents/a1', '/api/agents/a1/run', '/api/agents', '/a/1/b', '/a/1/c', '/api/v1.2', '/api/v1x2', '/api/v1.2/x'];
  for (const p of patterns) {
    const m = compilePattern(p);
    const t = compileUrlTest(p);
    for (const path of paths) {
      for (const url of [path, `${path}?q=1`, `${path}?next=/api/items/9`, `${path}?`]) {
        assert.equal(t(url), m.test(path), `pattern ${p} on ${url}`);
      }
    }
  }
});

test('a `user` getter defined on the request prototype after traffic started is used within 1024 requests', { timeout: 30_000 }, async () => {
  const express = require('express');
  const { shaping, newKey: newId, stableKey: stableId } = rolloutWithKeysInBothCohorts('late-user');
  const app = express();
  app.use(reliabilityStack({ ops: new OpsControls({ stateFile: false, logger: null }), shaping, onBlocked: 'next', rollouts: { '/late': 'late-user' } }));
  app.get('/late', (req, res) => res.json({ cohort: req.rollout.cohort }));
  const server = await listen(app);
  const url = `http://127.0.0.1:${server.address().port}/late`;
  // The header says stable; the user (once the prototype has it) says new.
  const ask = async () => (await (await fetch(url, { headers: { 'x-user-id': stableId, authorization: newId } })).json()).cohort;
  try {
    assert.equal(await ask(), 'stable', 'no user yet: the header decides');
    Object.defineProperty(app.request, 'user', {
      configurable: true,
      get() {
        return { id: this.headers.authorization };
      },
    });
    let n = 0;
    while ((await ask()) !== 'new') {
      n++;
      assert.ok(n <= 1024, 'the prototype getter was not seen within 1024 requests');
    }
  } finally {
    await close(server);
  }
});
