'use strict';
// Metrics labels in real routing (issue 18): a request handled by a route in a
// mounted router, nested routers, params in a mount path, app.route(), arrays
// and regular expressions is counted under its full template (mount path +
// route path) whoever answers it in the end: the route's handler, a later
// app-level middleware after next(), or an app-level error handler after
// next(err). And requests refused by safe mode, brownout, quarantine or a
// rollout keep their method and are counted under the route they would have
// reached (or `refused`), with the reason in http_requests_refused_total.
//
// Real Express 5 (`express`) and Express 4 (`express4`) apps over HTTP on
// 127.0.0.1, with metricsMiddleware and with reliabilityStack(). The store is
// process-wide: each block resets it and reads its own figures from /metrics.
const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { once } = require('node:events');
const parsePrometheus = require('parse-prometheus-text-format');

const { metricsMiddleware, createMetricsRouter, resetMetrics, getRefusedRequests } = require('../dist/metrics.js');
const { reliabilityStack, OpsControls } = require('../dist/entries/ops.js');
const { TrafficShaping, configureTrafficShaping } = require('../dist/traffic-shaping.js');
// The rollouts' log lines are not what these tests look at.
configureTrafficShaping({ logger: null });

const REQUEST_TIMEOUT_MS = 3000;

/** Answers as `?via=` says: `route` (the handler), `next` (a later app-level middleware), `error` (the app's error handler). */
function answer(req, res, next) {
  const via = req.query.via;
  if (via === 'next') return next();
  if (via === 'error') return next(new Error('boom'));
  res.status(200).json({ ok: true });
}

/** Every routing shape of the issue, and the template each must be labelled with. */
function buildRoutes(express, app) {
  const users = express.Router();
  users.get('/:id', answer);
  app.use('/api/users', users);

  const posts = express.Router();
  posts.get('/:id', answer);
  app.use('/users/:uid/posts', posts);

  const inner = express.Router();
  inner.get('/:id', answer);
  const outer = express.Router();
  outer.use('/inner', inner);
  app.use('/outer', outer);

  app.route('/things/:id').get(answer);

  const arr = express.Router();
  arr.get('/items/:id', answer);
  app.use(['/v1', '/v2'], arr);
  app.get(['/a', '/b'], answer);

  app.get(/^\/re-\d+$/, answer);

  // One router mounted twice: each mount keeps its own template.
  const shared = express.Router();
  shared.get('/x/:id', answer);
  app.use('/m1', shared);
  app.use('/m2', shared);

  app.post('/agents/:agentId/run', answer);
  app.get('/roll/:id', answer);
}

const SHAPES = [
  // [request path, expected template]
  ['/api/users/42', '/api/users/:id'],
  ['/users/7/posts/9', '/users/:uid/posts/:id'],
  ['/outer/inner/5', '/outer/inner/:id'],
  ['/things/3', '/things/:id'],
  ['/v1/items/1', '(/v1|/v2)/items/:id'],
  ['/v2/items/2', '(/v1|/v2)/items/:id'],
  ['/b', '(/a|/b)'],
  ['/re-12', String(/^\/re-\d+$/)],
  ['/m1/x/1', '/m1/x/:id'],
  ['/m2/x/2', '/m2/x/:id'],
];

function buildApp(express, layer) {
  const app = express();
  app.use(createMetricsRouter());
  app.use(layer);
  buildRoutes(express, app);
  // The final middleware that renders for routes that called next().
  app.use((req, res, next) => {
    if (req.query.via === 'next') return res.status(202).json({ from: 'final middleware' });
    next();
  });
  // eslint-disable-next-line no-unused-vars
  app.use((err, req, res, next) => res.status(500).json({ error: err.message }));
  return app;
}

async function listen(app) {
  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, base: `http://127.0.0.1:${server.address().port}` };
}

async function close(server) {
  server.closeAllConnections?.();
  await new Promise((r) => server.close(() => r()));
}

async function http(base, method, path, headers = {}) {
  const r = await fetch(base + path, { method, headers, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  const text = await r.text();
  return { status: r.status, text };
}

/** The samples of one family in `/metrics`, as { labels, value } with numbers. */
async function family(base, name) {
  const r = await http(base, 'GET', '/metrics');
  assert.equal(r.status, 200);
  const fam = parsePrometheus(r.text).find((f) => f.name === name);
  return (fam?.metrics ?? []).map((m) => ({ labels: m.labels, value: Number(m.value) }));
}

function count(samples, labels) {
  return samples.filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((n, s) => n + s.value, 0);
}

const frameworks = [
  ['express5', require('express')],
  ['express4', require('express4')],
];

for (const [fw, express] of frameworks) {
  for (const [layerName, makeLayer] of [
    ['metricsMiddleware', () => metricsMiddleware],
    ['reliabilityStack()', () => reliabilityStack({ ops: new OpsControls({ stateFile: false, logger: null }) })],
  ]) {
    describe(`${fw}, ${layerName}`, () => {
      let server;
      let base;
      before(async () => {
        resetMetrics();
        ({ server, base } = await listen(buildApp(express, makeLayer())));
      });
      after(() => close(server));

      for (const [via, status, cls] of [
        ['route', 200, '2xx'],
        ['next', 202, '2xx'],
        ['error', 500, '5xx'],
      ]) {
        test(`answered by ${via === 'route' ? 'the route handler' : via === 'next' ? 'a later middleware after next()' : 'the error handler after next(err)'}: the full template`, async () => {
          const before = await family(base, 'http_requests_total');
          for (const [path] of SHAPES) assert.equal((await http(base, 'GET', `${path}?via=${via}`)).status, status, path);
          const total = await family(base, 'http_requests_total');
          const wanted = new Map();
          for (const [, t] of SHAPES) wanted.set(t, (wanted.get(t) ?? 0) + 1);
          for (const [t, n] of wanted) {
            const labels = { method: 'GET', route: t, status_class: cls };
            assert.equal(count(total, labels) - count(before, labels), n, `GET ${t} ${cls}: ${JSON.stringify(total.filter((s) => s.labels.status_class === cls))}`);
          }
          // Nothing lost its mount path, nothing became a raw path, nothing went to `unmatched`.
          for (const s of total) {
            assert.ok(!['/:id', '/', '/x/:id', '/items/:id'].includes(s.labels.route), `label without its mount path: ${s.labels.route}`);
            assert.ok(!/\/(42|7|9|5|3)(\/|$)|\/m1\/x\/1/.test(s.labels.route), `raw path as a label: ${s.labels.route}`);
          }
          assert.equal(count(total, { route: 'unmatched', status_class: cls }), count(before, { route: 'unmatched', status_class: cls }));
        });
      }

      test('a real 404 is still `unmatched` under method *', async () => {
        const before = count(await family(base, 'http_requests_total'), { method: '*', route: 'unmatched', status_class: '4xx' });
        assert.equal((await http(base, 'GET', '/no/such/thing')).status, 404);
        assert.equal(count(await family(base, 'http_requests_total'), { method: '*', route: 'unmatched', status_class: '4xx' }), before + 1);
      });

      test('req.route still reads as Express set it, in the handler and just after the response', async () => {
        const app = express();
        app.use(makeLayer());
        const seen = [];
        const r = express.Router();
        r.get('/:id', (req, res) => {
          seen.push(req.route.path);
          res.on('finish', () => seen.push(req.route?.path));
          res.json({ ok: true });
        });
        app.use('/p', r);
        const s = await listen(app);
        try {
          assert.equal((await http(s.base, 'GET', '/p/1')).status, 200);
          assert.deepEqual(seen, ['/:id', '/:id']);
        } finally {
          await close(s.server);
        }
      });
    });
  }

  describe(`${fw}, refused requests`, () => {
    let server;
    let base;
    const ops = new OpsControls({ stateFile: false, logger: null });
    const shaping = new TrafficShaping();
    before(async () => {
      resetMetrics();
      shaping.startRollout('closed-roll', { percentage: 0 });
      const app = express();
      app.use(createMetricsRouter());
      app.use(reliabilityStack({ ops, shaping, rollouts: { '/roll/*': 'closed-roll' }, agentPaths: ['/agents/:agentId'] }));
      buildRoutes(express, app);
      ({ server, base } = await listen(app));
    });
    after(() => close(server));

    test('the zero sample of every reason is there before anything is refused', async () => {
      const refused = await family(base, 'http_requests_refused_total');
      for (const reason of ['safe_mode', 'brownout', 'quarantine', 'rollout']) {
        assert.equal(count(refused, { reason }), 0);
        assert.ok(refused.some((s) => s.labels.reason === reason), `a zero sample for ${reason}`);
      }
    });

    test('safe mode, brownout, quarantine and a rollout: method, the route it would have reached, the reason', async () => {
      ops.enableSafeMode('route-labels test');
      assert.equal((await http(base, 'GET', '/api/users/42')).status, 503);
      assert.equal((await http(base, 'GET', '/users/7/posts/9')).status, 503);
      assert.equal((await http(base, 'DELETE', '/nowhere/at/all')).status, 503);
      ops.disableSafeMode();
      ops.setBrownout(true, { level: 0, reason: 'route-labels test' });
      assert.equal((await http(base, 'GET', '/outer/inner/5')).status, 503);
      ops.setBrownout(false);
      ops.quarantineAgent('a7', { reason: 'loop' });
      assert.equal((await http(base, 'POST', '/agents/a7/run')).status, 423);
      ops.releaseAgent('a7');
      assert.equal((await http(base, 'GET', '/roll/1', { 'x-user-id': 'u1' })).status, 503);

      const refused = await family(base, 'http_requests_refused_total');
      assert.equal(count(refused, { method: 'GET', route: '/api/users/:id', reason: 'safe_mode' }), 1);
      assert.equal(count(refused, { method: 'GET', route: '/users/:uid/posts/:id', reason: 'safe_mode' }), 1);
      assert.equal(count(refused, { method: 'DELETE', route: 'refused', reason: 'safe_mode' }), 1, 'no route would have matched: `refused`');
      assert.equal(count(refused, { method: 'GET', route: '/outer/inner/:id', reason: 'brownout' }), 1);
      assert.equal(count(refused, { method: 'POST', route: '/agents/:agentId/run', reason: 'quarantine' }), 1);
      assert.equal(count(refused, { method: 'GET', route: '/roll/:id', reason: 'rollout' }), 1);
      assert.equal(count(refused, { method: '*' }), 0, 'no zero sample is left once every reason has a count');

      const total = await family(base, 'http_requests_total');
      assert.equal(count(total, { method: '*', route: 'unmatched' }), 0, 'no refused request is `* unmatched`');
      assert.equal(count(total, { method: 'GET', route: '/api/users/:id', status_class: '5xx' }), 1);
      assert.equal(count(total, { method: 'POST', route: '/agents/:agentId/run', status_class: '4xx' }), 1);
      assert.equal(count(total, { method: 'DELETE', route: 'refused', status_class: '5xx' }), 1);

      const api = getRefusedRequests();
      assert.ok(api.some((r) => r.method === 'GET' && r.route === '/roll/:id' && r.reason === 'rollout' && r.count === 1), JSON.stringify(api));
    });
  });
}

test('a refusal inside the route (per-route shaping, reliabilityMiddleware in a router) has the route it was in', async () => {
  const express = require('express');
  const { withTrafficShaping } = require('../dist/traffic-shaping.js');
  const { reliabilityMiddleware } = require('../dist/entries/ops.js');
  resetMetrics();
  const ops = new OpsControls({ stateFile: false, logger: null });
  const shaping = new TrafficShaping();
  shaping.startRollout('per-route', { percentage: 0 });
  const app = express();
  app.use(createMetricsRouter());
  app.use(metricsMiddleware);
  const r = express.Router();
  r.get('/search/:q', withTrafficShaping({ rolloutName: 'per-route', shaping }), answer);
  r.use(reliabilityMiddleware({ ops }));
  r.get('/orders/:id', answer);
  app.use('/shop', r);
  const s = await listen(app);
  try {
    assert.equal((await http(s.base, 'GET', '/shop/search/shoes', { 'x-user-id': 'u1' })).status, 503);
    ops.enableSafeMode('test');
    assert.equal((await http(s.base, 'GET', '/shop/orders/1')).status, 503);
    ops.disableSafeMode();
    const refused = await family(s.base, 'http_requests_refused_total');
    assert.equal(count(refused, { method: 'GET', route: '/shop/search/:q', reason: 'rollout' }), 1);
    assert.equal(count(refused, { method: 'GET', route: '/shop/orders/:id', reason: 'safe_mode' }), 1);
  } finally {
    await close(s.server);
  }
});

test('mount patterns read back as written (Express 4 keeps only a regexp; Express 5 its rawPath), sub-apps, bounded labels', async () => {
  for (const [fw, express] of frameworks) {
    resetMetrics();
    const app = express();
    app.use(createMetricsRouter());
    app.use(metricsMiddleware);
    const leaf = express.Router();
    leaf.get('/leaf', answer);
    const cases =
      fw === 'express4'
        ? [['/a.b/:x.:y', '/a.b/1.2/leaf'], ['/o/:opt?', '/o/9/leaf'], ['/n/:id(\\d+)', '/n/12/leaf'], ['/t/', '/t/leaf'], [/^\/rx-\d+/i, '/RX-12/leaf']]
        : [['/a.b/:x.:y', '/a.b/1.2/leaf'], ['/o{/:opt}', '/o/9/leaf'], ['/t/', '/t/leaf'], [/^\/rx-\d+/i, '/RX-12/leaf']];
    for (const [p] of cases) app.use(p, leaf);
    const admin = express();
    admin.get('/users/:id', answer);
    app.use('/admin', admin);
    const s = await listen(app);
    try {
      for (const [, url] of cases) assert.equal((await http(s.base, 'GET', url)).status, 200, `${fw} ${url}`);
      for (let i = 0; i < 20; i++) assert.equal((await http(s.base, 'GET', `/admin/users/u${i}`)).status, 200);
      for (let i = 0; i < 20; i++) assert.equal((await http(s.base, 'GET', `/a.b/${i}.${i}/leaf`)).status, 200);
      const total = await family(s.base, 'http_requests_total');
      const routes = new Set(total.filter((x) => x.labels.method === 'GET' && x.labels.route !== '/metrics' && Number(x.value) > 0).map((x) => x.labels.route));
      const want = new Set([...cases.map(([p]) => (p instanceof RegExp ? String(p) : p.replace(/\/$/, '')) + '/leaf'), '/admin/users/:id']);
      assert.deepEqual([...routes].sort(), [...want].sort(), fw);
      assert.equal(count(total, { route: '/a.b/:x.:y/leaf' }), 21, `${fw}: one series for every URL of the pattern`);
      assert.equal(count(total, { route: '/admin/users/:id' }), 20, `${fw}: a sub-app's routes under its mount path`);
    } finally {
      await close(s.server);
    }
  }
});
