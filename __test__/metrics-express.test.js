'use strict';
// metricsMiddleware and createMetricsRouter in real Express apps on
// 127.0.0.1, once with Express 5 and once with Express 4 (the `express4`
// npm alias), same test body. The store is process-wide, so each framework's
// block starts with resetMetrics(). Every request has a timeout and every
// server is closed in after().
const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { once } = require('node:events');
const parsePrometheus = require('parse-prometheus-text-format');

const metrics = require('@dreamnet/reliability-core/metrics');

const { metricsMiddleware, createMetricsRouter, getGoldenSignals, getEndpointMetrics, resetMetrics } = metrics;

const REQUEST_TIMEOUT_MS = 3000;
const SLOW_MS = 300;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` (which returns truthy when done) every 20 ms for up to `ms`; returns its last value. */
async function eventually(check, ms = 2000) {
  const deadline = performance.now() + ms;
  let v;
  for (;;) {
    v = check();
    if (v || performance.now() > deadline) return v;
    await sleep(20);
  }
}

function buildApp(express) {
  const app = express();
  app.use(metricsMiddleware);
  app.get('/api/agents/:id', (req, res) => {
    if (req.params.id === 'ghost') return res.status(404).json({ error: 'no such agent' });
    res.json({ id: req.params.id });
  });
  const tasks = express.Router();
  tasks.get('/:taskId', (req, res) => res.json({ taskId: req.params.taskId }));
  tasks.post('/', (req, res) => res.status(201).json({ created: true }));
  app.use('/api/tasks', tasks);
  app.get('/boom', (req, res) => res.status(500).json({ error: 'boom' }));
  app.get('/slow', (req, res) => {
    const t = setTimeout(() => {
      if (!res.destroyed && !res.writableEnded) res.json({ slow: true });
    }, SLOW_MS);
    res.once('close', () => clearTimeout(t));
  });
  app.use(
    createMetricsRouter({
      goldenSignalsPath: '/closed/golden-signals',
      prometheusPath: '/closed/metrics',
      authorize: () => false,
    }),
  );
  app.use(createMetricsRouter());
  return app;
}

const frameworks = [
  ['express5', require('express')],
  ['express4', require('express4')],
];

test('the two frameworks are really Express 5 and Express 4', () => {
  assert.match(require('express/package.json').version, /^5\./);
  assert.match(require('express4/package.json').version, /^4\./);
});

for (const [name, express] of frameworks) {
  describe(name, () => {
    let server;
    let base;

    async function http(method, urlPath, { signal } = {}) {
      const res = await fetch(base + urlPath, { method, signal: signal ?? AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
      const text = await res.text();
      let body = null;
      try {
        body = JSON.parse(text);
      } catch {
        // not JSON (Prometheus text, HTML 404 page)
      }
      return { status: res.status, headers: res.headers, text, body };
    }

    before(async () => {
      resetMetrics();
      server = buildApp(express).listen(0, '127.0.0.1');
      await once(server, 'listening');
      base = `http://127.0.0.1:${server.address().port}`;
    });

    after(async () => {
      if (!server) return;
      server.closeAllConnections?.();
      await new Promise((resolve) => server.close(() => resolve()));
    });

    test('requests are keyed by route template (with mount path), never by raw path', async () => {
      for (const id of ['a1', 'b22', 'c333']) assert.equal((await http('GET', `/api/agents/${id}`)).status, 200);
      for (const id of ['t1', 't2']) assert.equal((await http('GET', `/api/tasks/${id}`)).status, 200);
      assert.equal((await http('POST', '/api/tasks')).status, 201);
      assert.equal((await http('GET', '/missing-thing')).status, 404);

      const agents = getEndpointMetrics('GET /api/agents/:id');
      assert.ok(agents, 'GET /api/agents/:id has a series');
      assert.equal(agents.count, 3);
      assert.equal(agents.errorRate, 0);
      assert.equal(getEndpointMetrics('/api/agents/:id').count, 3);
      for (const raw of ['/api/agents/a1', 'GET /api/agents/a1', '/missing-thing', 'GET /missing-thing', '/:id', '/:taskId', '/']) {
        assert.equal(getEndpointMetrics(raw), null, `no series for ${raw}`);
      }

      assert.equal(getEndpointMetrics('GET /api/tasks/:taskId')?.count, 2);
      assert.equal(getEndpointMetrics('/api/tasks/:taskId')?.count, 2);
      assert.equal(getEndpointMetrics('POST /api/tasks')?.count, 1);
      assert.equal(getEndpointMetrics('/api/tasks')?.count, 1);

      const unmatched = getEndpointMetrics('unmatched');
      assert.ok(unmatched, 'the 404 is in `unmatched`');
      assert.equal(unmatched.count, 1);
      assert.equal(unmatched.status4xx, 1);

      if (typeof metrics.getAllEndpointMetrics === 'function') {
        const routes = metrics.getAllEndpointMetrics().map((s) => `${s.method} ${s.route}`);
        for (const r of routes) assert.ok(!/a1|b22|c333|t1|t2|missing-thing/.test(r), `raw path became a key: ${r}`);
      }
    });

    test('4xx / 5xx split, via getEndpointMetrics and the golden-signals endpoint', async () => {
      resetMetrics();
      assert.equal((await http('GET', '/api/agents/ghost')).status, 404);
      assert.equal((await http('GET', '/api/agents/x')).status, 200);
      assert.equal((await http('GET', '/boom')).status, 500);
      assert.equal((await http('GET', '/boom')).status, 500);
      assert.equal((await http('GET', '/missing-thing')).status, 404);

      const agents = getEndpointMetrics('/api/agents/:id');
      assert.deepEqual([agents.count, agents.status4xx, agents.status5xx, agents.errorRate], [2, 1, 0, 0.5]);
      const boom = getEndpointMetrics('GET /boom');
      assert.deepEqual([boom.count, boom.status4xx, boom.status5xx, boom.errorRate], [2, 0, 2, 1]);

      const r = await http('GET', '/api/observability/golden-signals');
      assert.equal(r.status, 200);
      assert.match(r.headers.get('content-type'), /application\/json/);
      const g = r.body;
      // The golden-signals request itself is recorded when it finishes, after this body was built.
      assert.equal(g.traffic.totalRequests, 5);
      assert.equal(g.errors.status4xx, 2);
      assert.equal(g.errors.status5xx, 2);
      assert.equal(g.errors.errorRate, 4 / 5);
      assert.equal(g.traffic.requestsPerSecond, 5 / 60);
      assert.equal(g.traffic.activeConnections, 1, 'only the golden-signals request is in flight');
      for (const s of ['traffic', 'errors', 'latency', 'saturation']) assert.equal(g[s].timestamp, g.traffic.timestamp);
      assert.ok(g.latency.p50 > 0 && g.latency.max >= g.latency.p50);

      // Now the golden-signals request has been counted too (a 200).
      await eventually(() => getGoldenSignals().traffic.totalRequests === 6, 1000);
      const d = getGoldenSignals();
      assert.equal(d.traffic.totalRequests, 6);
      assert.equal(d.errors.errorRate, 4 / 6);
      assert.equal(getEndpointMetrics('GET /api/observability/golden-signals')?.count, 1);
    });

    test('a request the client aborts is counted as aborted, and leaves the in-flight gauge', async () => {
      resetMetrics();
      const ac = new AbortController();
      const pending = fetch(`${base}/slow`, { signal: ac.signal });
      setTimeout(() => ac.abort(), 50);
      await assert.rejects(pending, (e) => e.name === 'AbortError');

      const g = await eventually(() => {
        const s = getGoldenSignals();
        return s.traffic.aborted === 1 && s.traffic.activeConnections === 0 && s;
      });
      assert.ok(g, `aborted / activeConnections never became 1 / 0: ${JSON.stringify(getGoldenSignals().traffic)}`);
      assert.equal(g.traffic.totalRequests, 0, 'an aborted request is not a completed one');
      assert.equal(g.errors.errorRate, 0);
      assert.equal(g.saturation.activeConnections, 0);

      const r = await http('GET', '/api/observability/golden-signals');
      assert.equal(r.body.traffic.aborted, 1);
      assert.equal(r.body.traffic.windows['10s'].aborted, 1);
      // The handler's timer must not turn the aborted request into a 200 later.
      await sleep(SLOW_MS);
      assert.equal(getGoldenSignals().traffic.aborted, 1);
      // No completed /slow request, but the endpoint shows its aborted one.
      const slow = getEndpointMetrics('GET /slow');
      assert.equal(slow.count, 0);
      assert.equal(slow.aborted, 1);
    });

    test('concurrency: in-flight gauge while 5 slow requests run, 0 after; open sockets', async () => {
      resetMetrics();
      const slow = Array.from({ length: 5 }, () => http('GET', '/slow'));
      const during = await eventually(() => getGoldenSignals().traffic.activeConnections >= 5, 1000);
      assert.ok(during, `activeConnections never reached 5: ${getGoldenSignals().traffic.activeConnections}`);
      const direct = getGoldenSignals();
      assert.ok(direct.traffic.activeConnections >= 5);
      assert.ok(direct.saturation.activeConnections >= 5);
      assert.ok(direct.traffic.openSockets >= 5, `openSockets ${direct.traffic.openSockets} with 5 requests on the wire`);

      // Read from another request's handler, while the slow ones are still running.
      const over = await http('GET', '/api/observability/golden-signals');
      assert.ok(over.body.traffic.activeConnections >= 5, `over HTTP: ${over.body.traffic.activeConnections}`);
      assert.ok(over.body.saturation.openSockets > 0);

      const results = await Promise.all(slow);
      for (const r of results) assert.equal(r.status, 200);
      const settled = await eventually(() => getGoldenSignals().traffic.activeConnections === 0, 1000);
      assert.ok(settled, `activeConnections stuck at ${getGoldenSignals().traffic.activeConnections}`);
      const g = getGoldenSignals();
      assert.ok(g.traffic.openSockets > 0, 'keep-alive sockets are still open');
      assert.equal(g.traffic.openSockets, g.saturation.openSockets);

      const e = getEndpointMetrics('GET /slow');
      assert.equal(e.count, 5);
      assert.ok(e.p50 >= SLOW_MS * 0.9, `/slow p50 ${e.p50} ms`);
      assert.ok(e.latency.max < SLOW_MS + 1500, `/slow max ${e.latency.max} ms`);
    });

    test('GET /metrics parses as Prometheus text with route-template labels', async () => {
      resetMetrics();
      for (const id of ['a1', 'b2']) await http('GET', `/api/agents/${id}`);
      await http('GET', '/api/tasks/t9');
      await http('GET', '/missing-thing');
      await http('GET', '/boom');

      const r = await http('GET', '/metrics');
      assert.equal(r.status, 200);
      assert.match(r.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
      const fams = new Map(parsePrometheus(r.text).map((f) => [f.name, f]));
      assert.equal(fams.get('http_requests_total')?.type, 'COUNTER');
      assert.equal(fams.get('http_request_duration_seconds')?.type, 'HISTOGRAM');
      assert.equal(fams.get('http_requests_in_flight')?.type, 'GAUGE');

      const total = fams.get('http_requests_total').metrics;
      const find = (method, route, cls) => total.find((s) => s.labels.method === method && s.labels.route === route && s.labels.status_class === cls);
      assert.equal(find('GET', '/api/agents/:id', '2xx')?.value, '2');
      assert.equal(find('GET', '/api/tasks/:taskId', '2xx')?.value, '1');
      assert.equal(find('GET', '/boom', '5xx')?.value, '1');
      assert.equal(find('*', 'unmatched', '4xx')?.value, '1');
      for (const s of total) assert.ok(!/a1|b2|t9|missing-thing/.test(s.labels.route), `raw path as a label: ${s.labels.route}`);
      assert.equal(fams.get('http_requests_in_flight').metrics[0].value, '1', 'the scrape itself is in flight');
      assert.ok(r.text.includes('http_request_duration_seconds_bucket{method="GET",route="/api/agents/:id",le="+Inf"} 2\n'));
      assert.ok(r.text.includes('http_request_duration_seconds_count{method="GET",route="/api/agents/:id"} 2\n'));
    });

    test('createMetricsRouter({ authorize: () => false }) answers 403', async () => {
      for (const p of ['/closed/golden-signals', '/closed/metrics']) {
        const r = await http('GET', p);
        assert.equal(r.status, 403, p);
        assert.equal(r.body?.error, 'Forbidden');
        assert.ok(!r.text.includes('http_requests_total'));
      }
    });
  });
}
