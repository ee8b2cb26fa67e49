'use strict';
// reliabilityStack(): metrics, ops controls and traffic shaping in one layer,
// in a real Express app on 127.0.0.1.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const express = require('express');

const { reliabilityStack, OpsControls } = require('../dist/entries/ops.js');
const { TrafficShaping } = require('../dist/traffic-shaping.js');
const { getEndpointMetrics } = require('../dist/metrics.js');

test('one layer: golden signals, rollout cohorts and their outcomes, safe mode, quarantine, the original 503', { timeout: 20_000 }, async () => {
  const ops = new OpsControls({ stateFile: false, logger: null });
  const shaping = new TrafficShaping();
  shaping.startRollout('stack-v2', { percentage: 50 });
  shaping.startRollout('stack-closed', { percentage: 0 });
  const app = express();
  // Blocked users of the default stack get the original 503; this one serves them as `stable`.
  app.use('/strict', reliabilityStack({ ops, shaping, metrics: false, rollouts: { '/closed': 'stack-closed' } }));
  app.get('/strict/closed', (req, res) => res.json({ never: true }));
  app.use(reliabilityStack({ ops, shaping, onBlocked: 'next', cohortHeader: 'x-rollout-cohort', rollouts: { '/stack/items/*': 'stack-v2' }, agentPaths: ['/stack/agents/:agentId'] }));
  app.get('/stack/items/:id', (req, res) => res.status(req.params.id === 'bad' ? 500 : 200).json({ cohort: req.rollout.cohort, dimmer: req.reliability.dimmer }));
  app.get('/stack/agents/:agentId/run', (req, res) => res.json({ ok: true }));
  const server = await new Promise((r) => {
    const s = app.listen(0, '127.0.0.1', () => r(s));
  });
  const base = `http://127.0.0.1:${server.address().port}`;
  const get = async (p, user) => {
    const r = await fetch(base + p, { headers: user ? { 'x-user-id': user } : {} });
    return { status: r.status, cohort: r.headers.get('x-rollout-cohort'), body: await r.json() };
  };
  try {
    const seen = new Set();
    for (let i = 0; i < 40; i++) {
      const r = await get(`/stack/items/${i}`, `user-${i}`);
      assert.equal(r.status, 200);
      assert.equal(r.cohort, r.body.cohort);
      assert.equal(r.body.dimmer, 1);
      seen.add(r.cohort);
      assert.equal((await get(`/stack/items/${i}`, `user-${i}`)).cohort, r.cohort, 'sticky');
    }
    assert.deepEqual([...seen].sort(), ['new', 'stable']);
    assert.equal((await get('/stack/items/bad', 'user-1')).status, 500);
    const st = shaping.getStatus('stack-v2');
    assert.equal(st.requestCount + st.stableRequestCount, 81, 'every answer recorded in its cohort');
    assert.equal(getEndpointMetrics('GET /stack/items/:id').count, 81, 'and counted by route template');
    const closed = await get('/strict/closed', 'anyone');
    assert.equal(closed.status, 503);
    assert.deepEqual(closed.body, { error: 'Service in gradual rollout', message: 'This endpoint is currently rolling out. Please retry in a moment.', rolloutName: 'stack-closed' });
    ops.enableSafeMode('stack test');
    assert.equal((await get('/stack/items/1', 'user-1')).status, 503);
    ops.disableSafeMode();
    ops.quarantineAgent('a7', { reason: 'loop' });
    assert.equal((await get('/stack/agents/a7/run')).status, 423);
    assert.equal((await get('/stack/agents/a8/run')).status, 200);
    assert.throws(() => reliabilityStack({ rollouts: { '/x': '' } }), TypeError);
    assert.throws(() => reliabilityStack({ onBlocked: 'maybe' }), RangeError);
  } finally {
    await new Promise((r) => server.close(r));
  }
});

test('isPackageRequest: package routers at the root, at a custom mount, nested, and mounted after the first request', () => {
  const { isPackageRequest, tagRouter, ownsPaths } = require('../dist/express/endpoints.js');
  for (const [name, ex] of [
    ['express5', express],
    ['express4', require('express4')],
  ]) {
    const app = ex();
    const ask = (url) => isPackageRequest({ app, url, originalUrl: url });
    app.use(tagRouter(ex.Router(), ownsPaths(['/probe/live', '/things/:id'])));
    app.get('/api/items/:id', () => {});
    assert.equal(ask('/api/items/1'), false, `${name}: an app route`);
    assert.equal(ask('/probe/live'), true, `${name}: a root-mounted router's exact path`);
    assert.equal(ask('/probe/live?x=1'), true, `${name}: with a query`);
    assert.equal(ask('/things/7'), true, `${name}: a root-mounted router's pattern`);
    assert.equal(ask('/probe/liveness'), false, `${name}: not a prefix of a name`);
    assert.equal(ask('/metrics'), true, `${name}: a default mount point`);
    assert.equal(ask('/internal/ops/status'), false, `${name}: nothing mounted there yet`);
    // Mounted after requests were answered: the plan follows the app's layers.
    app.use('/internal/ops', tagRouter(ex.Router()));
    assert.equal(ask('/internal/ops/status'), true, `${name}: a custom mount`);
    assert.equal(ask('/internal/opsx'), false, `${name}: beside the custom mount`);
    const outer = ex.Router();
    outer.use('/ctl', tagRouter(ex.Router()));
    app.use('/nested', outer);
    assert.equal(ask('/nested/ctl/status'), true, `${name}: nested below an app router`);
    assert.equal(ask('/nested/other'), false, `${name}: the app router's own paths`);
    assert.equal(ask('/api/items/1'), false, `${name}: still an app route`);
    // A request inside a sub-app (req.app is the sub-app) is judged from the outermost app's layers.
    const sub = ex();
    app.use('/sub', sub);
    for (let i = 0; i < 3; i++) {
      assert.equal(isPackageRequest({ app: sub, url: '/probe/live', originalUrl: '/probe/live' }), true, `${name}: the outer app's root router, from a sub-app`);
      assert.equal(isPackageRequest({ app: sub, url: '/x', originalUrl: '/sub/x' }), false, `${name}: a sub-app's own path`);
      assert.equal(ask('/internal/ops/status'), true, `${name}: the outer app again`);
    }
  }
});
