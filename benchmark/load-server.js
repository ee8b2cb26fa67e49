'use strict';
/**
 * The same Express 4 app, four ways, for benchmark/load.js:
 *   bare      no reliability code at all
 *   ours      this package: metrics middleware, reliability middleware,
 *             traffic shaping (sticky rollout), a breaker around the dependency
 *   js        the JS stack a user would otherwise pick: express-prom-bundle
 *             (prom-client histograms), opossum around the dependency, a
 *             MurmurHash rollout check (unleash-client's flexible rollout)
 *   ours-stack the same as `ours` through reliabilityStack() (one layer, one listener)
 *   original  the original TypeScript core's logic, reimplemented from the
 *             spec: A's metrics (arrays of samples), A's breaker, A's
 *             Math.random rollout
 *
 *   node benchmark/load-server.js <mode>      prints `PORT <n>`; IPC: {cmd:'cpu'} -> cpu usage
 *
 * The dependency is an async call; `POST /control {failRate}` makes it fail.
 * `GET /state` gives the breaker's state (for the failure timeline).
 */
const path = require('node:path');
const express = require('express4');

const mode = process.argv[2] || 'bare';
let failRate = 0;
let calls = 0;
/** Requests the rollout check sent to the new version (js and original modes). */
let newCohort = 0;
/** Server-side time (µs) from the handler's start to a breaker's refusal, for the failure run. */
const rejectUs = [];

async function dependency(id) {
  calls++;
  if (failRate > 0 && Math.random() < failRate) throw new Error('dependency failed');
  return { id, name: `item-${id}`, price: 42 };
}

const app = express();
app.disable('x-powered-by');
app.disable('etag');
app.use(express.json({ limit: '1kb' }));
app.post('/control', (req, res) => {
  failRate = Number(req.body.failRate) || 0;
  res.json({ failRate });
});

let handler;
let stateOf = () => 'n/a';

if (mode === 'noop-layers') {
  // Profiling aid: bare plus what our stack adds structurally (two app-level
  // layers, one route-level layer, two response listeners), doing nothing.
  const noop = () => {};
  app.use((req, res, next) => {
    res.once('close', noop);
    next();
  });
  app.use((req, res, next) => next());
  const layer = (req, res, next) => {
    res.on('finish', noop);
    next();
  };
  const inner = async (req, res) => {
    try {
      res.json(await dependency(req.params.id));
    } catch {
      res.status(500).json({ error: 'failed' });
    }
  };
  handler = (req, res, next) => layer(req, res, () => inner(req, res, next));
} else if (mode === 'floor') {
  // The floor for the stack (issue 22): an empty app-level layer at the
  // stack's place, that also observes each request's end through the same
  // notification the stack uses (lib/express/tracker.ts: the
  // `http.server.response.finish` diagnostics channel, and a record found
  // by the request's socket). It records nothing.
  const dc = require('node:diagnostics_channel');
  const records = new WeakMap();
  let ended = 0;
  dc.subscribe('http.server.response.finish', (m) => {
    const rec = records.get(m.socket);
    if (rec !== undefined && rec.req === m.request) {
      rec.req = null;
      ended++;
    }
  });
  app.use((req, res, next) => {
    let rec = records.get(req.socket);
    if (rec === undefined) records.set(req.socket, (rec = { req: null }));
    rec.req = req;
    next();
  });
  stateOf = () => `ended ${ended}`;
  handler = async (req, res) => {
    try {
      res.json(await dependency(req.params.id));
    } catch {
      res.status(500).json({ error: 'failed' });
    }
  };
} else if (mode === 'noop-layer') {
  // The floor for any middleware: one app-level layer that only calls next().
  app.use((req, res, next) => next());
  handler = async (req, res) => {
    try {
      res.json(await dependency(req.params.id));
    } catch {
      res.status(500).json({ error: 'failed' });
    }
  };
} else if (mode === 'bare') {
  handler = async (req, res) => {
    try {
      res.json(await dependency(req.params.id));
    } catch {
      res.status(500).json({ error: 'failed' });
    }
  };
} else if (mode === 'ours') {
  const dist = path.join(__dirname, '..', 'dist');
  const { metricsMiddleware } = require(path.join(dist, 'metrics.js'));
  const { reliabilityMiddleware, OpsControls } = require(path.join(dist, 'entries', 'ops.js'));
  const { getTrafficShaping, withTrafficShaping } = require(path.join(dist, 'traffic-shaping.js'));
  const { getCircuitBreakerRegistry, configureCircuitBreakers, CircuitOpenError } = require(path.join(dist, 'circuit-breaker.js'));
  configureCircuitBreakers({ logger: null });
  const ops = new OpsControls({ stateFile: false, logger: null });
  getTrafficShaping().startRollout('items-v2', { percentage: 50 });
  const breaker = getCircuitBreakerRegistry().get('dependency', { failureThreshold: 5, resetTimeout: 2000, retryOptions: { maxRetries: 0 } });
  stateOf = () => breaker.getState().state;
  // OURS_PARTS (profiling): which layers to mount; default all.
  const parts = new Set((process.env.OURS_PARTS || 'metrics,ops,shaping,breaker').split(','));
  if (parts.has('metrics')) app.use(metricsMiddleware);
  if (parts.has('ops')) app.use(reliabilityMiddleware({ ops }));
  const shaping = parts.has('shaping') ? withTrafficShaping({ rolloutName: 'items-v2', onBlocked: 'next' }) : (req, res, next) => next();
  const call = parts.has('breaker') ? (id) => breaker.execute(() => dependency(id)) : dependency;
  const inner = async (req, res) => {
    const t0 = process.hrtime.bigint();
    try {
      res.json(await call(req.params.id));
    } catch (e) {
      if (e instanceof CircuitOpenError) rejectUs.push(Number(process.hrtime.bigint() - t0) / 1000);
      res.status(e instanceof CircuitOpenError ? 503 : 500).json({ error: e.message });
    }
  };
  handler = (req, res, next) => shaping(req, res, () => inner(req, res, next));
} else if (mode === 'ours-stack') {
  // The same work as `ours`, through reliabilityStack(): one layer, one listener.
  // OURS_DIST: another build of the package (paired.js's `ours-stack-base`, a before/after in one run).
  const dist = process.env.OURS_DIST || path.join(__dirname, '..', 'dist');
  const { reliabilityStack, OpsControls } = require(path.join(dist, 'entries', 'ops.js'));
  const { getTrafficShaping } = require(path.join(dist, 'traffic-shaping.js'));
  const { getCircuitBreakerRegistry, configureCircuitBreakers, CircuitOpenError } = require(path.join(dist, 'circuit-breaker.js'));
  configureCircuitBreakers({ logger: null });
  const ops = new OpsControls({ stateFile: false, logger: null });
  getTrafficShaping().startRollout('items-v2', { percentage: 50 });
  const breaker = getCircuitBreakerRegistry().get('dependency', { failureThreshold: 5, resetTimeout: 2000, retryOptions: { maxRetries: 0 } });
  stateOf = () => breaker.getState().state;
  // OURS_PARTS (profiling): which parts to use; default all.
  const parts = new Set((process.env.OURS_PARTS || 'metrics,shaping,breaker').split(','));
  app.use(reliabilityStack({ ops, metrics: parts.has('metrics'), rollouts: parts.has('shaping') ? { '/api/items/*': 'items-v2' } : {}, onBlocked: 'next' }));
  const call = parts.has('breaker') ? (id) => breaker.execute(() => dependency(id)) : dependency;
  handler = async (req, res) => {
    try {
      res.json(await call(req.params.id));
    } catch (e) {
      res.status(e instanceof CircuitOpenError ? 503 : 500).json({ error: e.message });
    }
  };
} else if (mode === 'js') {
  const promBundle = require('express-prom-bundle');
  const CircuitBreaker = require('opossum');
  const FlexibleRolloutStrategy = require('unleash-client/lib/strategy/flexible-rollout-strategy').default;
  const rollout = new FlexibleRolloutStrategy();
  const params = { rollout: '50', stickiness: 'userId', groupId: 'items-v2' };
  const breaker = new CircuitBreaker((id) => dependency(id), { errorThresholdPercentage: 50, resetTimeout: 2000, volumeThreshold: 5 });
  stateOf = () => (breaker.opened ? 'open' : breaker.halfOpen ? 'half-open' : 'closed');
  app.use(promBundle({ includeMethod: true, includePath: true, includeStatusCode: true, normalizePath: [['^/api/items/[^/]+', '/api/items/#id']] }));
  handler = async (req, res) => {
    // The decision is what a handler would branch on (no response header: ours sets none by default).
    if (rollout.isEnabled(params, { userId: req.headers['x-user-id'] || req.ip })) newCohort++;
    try {
      res.json(await breaker.fire(req.params.id));
    } catch (e) {
      res.status(breaker.opened ? 503 : 500).json({ error: e.message });
    }
  };
} else if (mode === 'original') {
  // A's metrics middleware (spec §2.4): per-endpoint arrays of the last 10,000
  // samples, plus recent requests for requests/s.
  const endpoints = new Map();
  const recent = [];
  app.use((req, res, next) => {
    const start = Date.now();
    res.on('finish', () => {
      const key = req.path || req.url;
      let m = endpoints.get(key);
      if (!m) endpoints.set(key, (m = { count: 0, errors: 0, s4: 0, s5: 0, latencies: [] }));
      m.count++;
      if (res.statusCode >= 400) m.errors++;
      if (res.statusCode >= 400 && res.statusCode < 500) m.s4++;
      if (res.statusCode >= 500) m.s5++;
      m.latencies.push(Date.now() - start);
      if (m.latencies.length > 10000) m.latencies.shift();
      recent.push(Date.now());
      while (recent.length && recent[0] < Date.now() - 60000) recent.shift();
    });
    next();
  });
  // A's breaker (spec §2.1): consecutive failures, retries with backoff (here 0 retries).
  const b = { state: 'closed', failureCount: 0, lastFailureTime: null, successCount: 0, halfOpenAttempts: 0 };
  stateOf = () => b.state;
  async function execute(fn) {
    if (b.state === 'open') {
      if (Date.now() - b.lastFailureTime >= 2000) b.state = 'half-open';
      else throw Object.assign(new Error('Circuit breaker dependency is OPEN (too many failures)'), { open: true });
    }
    try {
      const v = await fn();
      if (b.state === 'half-open' && ++b.successCount >= 2) b.state = 'closed';
      b.failureCount = 0;
      b.lastFailureTime = null;
      return v;
    } catch (e) {
      b.failureCount++;
      b.lastFailureTime = Date.now();
      if (b.state === 'half-open' ? ++b.halfOpenAttempts >= 3 : b.failureCount >= 5) b.state = 'open';
      throw e;
    }
  }
  // A's traffic shaping (spec §2.6): Math.random per request.
  const rollout = { percentage: 50 };
  handler = async (req, res) => {
    if (Math.random() * 100 < rollout.percentage) newCohort++;
    try {
      res.json(await execute(() => dependency(req.params.id)));
    } catch (e) {
      res.status(e.open ? 503 : 500).json({ error: e.message });
    }
  };
} else {
  throw new Error(`unknown mode ${mode}`);
}

app.get('/api/items/:id', handler);
app.get('/state', (req, res) => {
  const q = (p) => (rejectUs.length ? [...rejectUs].sort((a, b) => a - b)[Math.min(rejectUs.length - 1, Math.floor(rejectUs.length * p))] : null);
  res.json({ breaker: stateOf(), calls, newCohort, rejections: rejectUs.length, rejectP50Us: q(0.5), rejectP99Us: q(0.99) });
});

// Extra routes for the soak: /api/r/<k>/:id go through breaker `b<k>` (ours only).
if (mode === 'ours' && process.env.SOAK_ROUTES) {
  const { getCircuitBreakerRegistry } = require(path.join(__dirname, '..', 'dist', 'circuit-breaker.js'));
  const n = Number(process.env.SOAK_ROUTES);
  for (let k = 0; k < n; k++) {
    const b = getCircuitBreakerRegistry().get(`b${k}`, { failureThreshold: 5, resetTimeout: 2000, retryOptions: { maxRetries: 0 } });
    app.get(`/api/r/${k}/:id`, async (req, res) => {
      try {
        res.json(await b.execute(() => dependency(req.params.id)));
      } catch (e) {
        res.status(503).json({ error: e.message });
      }
    });
  }
}

const server = app.listen(0, '127.0.0.1', () => console.log(`PORT ${server.address().port}`));
server.keepAliveTimeout = 30_000;
process.on('message', (m) => {
  if (m?.cmd === 'cpu') {
    // In our modes, how much the metrics store holds (bounded by maxWindowBytes): RSS growth during a soak can be told apart from a leak.
    const metricsBytes = mode.startsWith('ours') ? require(path.join(__dirname, '..', 'dist', 'metrics.js')).getMetricsDiagnostics().histogramBytes : null;
    process.send({ cpu: process.cpuUsage(), mem: process.memoryUsage(), handles: process.getActiveResourcesInfo().length, metricsBytes, calls });
  }
  if (m?.cmd === 'gc' && global.gc) {
    global.gc();
    process.send({ mem: process.memoryUsage() });
  }
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
