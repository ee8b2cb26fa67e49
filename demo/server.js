'use strict';
/**
 * reliability-core demo: an Express 5 service calling a simulated flaky
 * downstream dependency through circuit breakers.
 *
 *   PORT=3000 OPS_TOKEN=secret node demo/server.js     (or: npm start)
 *
 * Routes
 *   GET  /                              dashboard (self-contained HTML, polls /api/breakers)
 *   GET  /api/orders/:id                via breaker `orders-api` (consecutive failures,
 *                                       retries with full jitter, timeout, stale-cache fallback)
 *   GET  /api/inventory                 via breaker `inventory-api` (failure-rate based)
 *   GET  /api/users/:id                 in a router mounted at /api; a downstream failure is
 *                                       answered by the app-level error handler (502), and
 *                                       /metrics labels it with the full template /api/users/:id
 *   GET  /api/breakers                  getCircuitBreakerRegistry().toJSON()
 *   POST /api/breakers/:name/isolate    \
 *   POST /api/breakers/:name/close       > ops actions, need `Authorization: Bearer <OPS_TOKEN>`
 *   POST /api/breakers/:name/reset      /
 *   GET  /demo/downstream               simulated dependency: settings and call counters
 *   POST /demo/downstream               JSON { failureRate: 0..1, latencyMs: 0..10000 }
 *   GET  /demo/transitions              the last breaker transitions
 *   GET  /health/live, /health/ready    probes (also under /api/health/); ready = every
 *                                       critical gate passing (database, startup DAG,
 *                                       the orders-api breaker not open)
 *   GET  /api/observability/health-gates, /api/observability/startup-dag
 *   GET  /api/db/ping                   with DATABASE_URL set: SELECT now() through the
 *                                       `database` breaker (the `database` gate probes it too)
 *
 * At start the services of demo/deploy/graph.json start in dependency order
 * through the package's dag-loader (DEMO_FAIL_SERVICE=<id> makes one fail,
 * DEMO_SEARCH=true adds a conditional one). SIGTERM turns readiness 503,
 * waits SHUTDOWN_DELAY_MS (default 1000), drains in-flight requests and exits.
 *
 * When OPS_TOKEN is unset a random token is generated and written to
 * .tmp/ops-token (mode 0600); the token itself is never printed.
 *
 * `require('./demo/server.js').start(port, { opsToken, tokenFile, log })` starts it
 * from another module (tests) and resolves to `{ server, url, close, downstream }`.
 */
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { AsyncLocalStorage } = require('node:async_hooks');
const express = require('express');
const {
  getCircuitBreakerRegistry,
  configureCircuitBreakers,
  CircuitOpenError,
  CircuitTimeoutError,
} = require('@dreamnet/reliability-core/circuit-breaker');
const { metricsMiddleware, createMetricsRouter, getAllEndpointMetrics } = require('@dreamnet/reliability-core/metrics');
const { StartupDAG, initializeReliabilitySystem, configureStartupLogging } = require('@dreamnet/reliability-core/dag-loader');
const { HealthGates, fromBreaker, createHealthRouter, createGracefulShutdown } = require('@dreamnet/reliability-core/health-gates');
const { setDatabase, configureDatabase, executeWithCircuitBreaker } = require('@dreamnet/reliability-core/db-circuit-breaker');
const { OpsControls, reliabilityMiddleware, createOpsRouter } = require('@dreamnet/reliability-core/ops');
const { createObservabilityRouter } = require('@dreamnet/reliability-core/observability');
const { getTrafficShaping, withTrafficShaping } = require('@dreamnet/reliability-core/traffic-shaping');
const { protectPublish, trackAiCall } = require('@dreamnet/reliability-core/watchdogs');
const { createRedisBackend } = require('@dreamnet/reliability-core/redis');
const { EventEmitter } = require('node:events');

const HOST = '127.0.0.1';
const OPS_ACTIONS = new Set(['isolate', 'close', 'reset']);
const TOKEN_FILE = path.join(__dirname, '..', '.tmp', 'ops-token');

// Where demo output goes; start(port, { log }) can redirect it (tests).
let log = (...args) => console.log(...args);

// The demo logs transitions itself (below), so the package's own log lines
// (one per retry, one per transition) are silenced to keep stdout readable.
configureCircuitBreakers({ logger: null });
// Startup, loader and gate lines go through the demo's log (tests capture it).
const relay = (...args) => log(...args);
configureStartupLogging({ logger: { log: relay, warn: relay, error: relay } });

// ---- the simulated downstream dependency -----------------------------------

const downstream = {
  failureRate: 0,
  latencyMs: 20,
  calls: 0,
  failures: 0,
  aborted: 0,
};

function abortableDelay(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    function onAbort() {
      clearTimeout(timer);
      reject(signal.reason);
    }
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** One call to the "remote" service: latency, then success or failure. */
async function callDownstream(resource, params, signal) {
  downstream.calls++;
  try {
    await abortableDelay(downstream.latencyMs, signal);
  } catch (err) {
    downstream.aborted++;
    throw err;
  }
  if (Math.random() < downstream.failureRate) {
    downstream.failures++;
    const err = new Error(`downstream ${resource} failed (simulated)`);
    err.code = 'EDOWNSTREAM';
    throw err;
  }
  if (resource === 'orders') {
    return {
      id: params.id,
      status: 'shipped',
      items: 1 + (params.id.length % 4),
      totalCents: 1000 + ((params.id.charCodeAt(0) || 0) % 50) * 100,
      fetchedAt: new Date().toISOString(),
    };
  }
  return {
    warehouse: 'eu-west-1',
    skus: [
      { sku: 'WIDGET-1', available: 42 },
      { sku: 'GADGET-7', available: 7 },
    ],
    fetchedAt: new Date().toISOString(),
  };
}

// ---- breakers -----------------------------------------------------------------

/** Carries the request's order id into the breaker's fallback. */
const orderContext = new AsyncLocalStorage();
/** Last good answer per order id: what the fallback serves, marked stale. */
const orderCache = new Map();
const ORDER_CACHE_MAX = 1000;

// An in-memory event bus standing in for the server's DreamEventBus.
const bus = new EventEmitter();
const publishEvent = protectPublish(async (topic, payload) => {
  await new Promise((r) => setImmediate(r));
  bus.emit(topic, payload);
  return true;
});

// Orders whose fetch failed for good (the fallback answered from cache or
// failed): kept for a later `drain-dlq`, bounded.
const deadLetters = [];
const DEAD_LETTERS_MAX = 1000;

function rememberOrder(order) {
  orderCache.delete(order.id);
  orderCache.set(order.id, order);
  if (orderCache.size > ORDER_CACHE_MAX) orderCache.delete(orderCache.keys().next().value);
}

const registry = getCircuitBreakerRegistry();

const ordersBreaker = registry.get('orders-api', {
  failureThreshold: 5,
  resetTimeout: 5000,
  timeout: 1000,
  retryOptions: { maxRetries: 2, initialDelay: 50, jitter: 'full' },
  // Runs when the call failed after its retries, timed out, or was rejected
  // by an open breaker: answer from the cache instead of failing the request.
  fallback(err) {
    const id = orderContext.getStore()?.orderId ?? null;
    const cached = id !== null ? orderCache.get(id) : undefined;
    // Keep the order for a later drain-dlq (once per id, bounded).
    if (id !== null && deadLetters.length < DEAD_LETTERS_MAX && !deadLetters.some((m) => m.id === id)) deadLetters.push({ id, at: Date.now(), reason: err.code || err.name });
    return {
      ...(cached ?? { id, status: 'unknown', items: null, totalCents: null, fetchedAt: null }),
      stale: true,
      cached: cached !== undefined,
      reason: err.code || err.name || 'Error',
      message: err.message,
    };
  },
});

const inventoryBreaker = registry.get('inventory-api', {
  errorThresholdPercentage: 50,
  volumeThreshold: 10,
  rollingWindowMs: 10000,
  resetTimeout: 5000,
  timeout: 1000,
  retryOptions: { maxRetries: 1, initialDelay: 50, jitter: 'full' },
});

const transitions = [];
for (const breaker of [ordersBreaker, inventoryBreaker]) {
  for (const [event, to] of [['open', 'OPEN'], ['halfOpen', 'HALF-OPEN'], ['close', 'CLOSED']]) {
    breaker.on(event, () => {
      const entry = { at: new Date().toISOString(), breaker: breaker.name, to };
      transitions.push(entry);
      if (transitions.length > 50) transitions.shift();
      log(`[breaker] ${breaker.name} -> ${to}`);
    });
  }
}

// ---- ops auth -------------------------------------------------------------------

function sha256(s) {
  return crypto.createHash('sha256').update(s, 'utf8').digest();
}

/**
 * Constant-time token check. Both sides are hashed first, so the buffers
 * handed to timingSafeEqual always have the same length (it throws
 * otherwise) and the comparison leaks neither content nor length.
 */
function tokenMatches(given, expected) {
  if (typeof given !== 'string' || given.length === 0 || given.length > 4096) return false;
  return crypto.timingSafeEqual(sha256(given), sha256(expected));
}

function presentedToken(req) {
  const auth = req.get('authorization');
  if (auth) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    return m ? m[1] : '';
  }
  const header = req.get('x-ops-token');
  return header === undefined ? null : header;
}

function requireOpsToken(expected) {
  return (req, res, next) => {
    const given = presentedToken(req);
    if (given === null) {
      res.set('WWW-Authenticate', 'Bearer realm="reliability-core-demo"');
      return res.status(401).json({ error: 'ops token required (Authorization: Bearer <token>)' });
    }
    if (!tokenMatches(given, expected)) return res.status(403).json({ error: 'invalid ops token' });
    next();
  };
}

/** The token from options or OPS_TOKEN, else a fresh one written to `tokenFile` (0600). */
function resolveOpsToken(explicit, tokenFile = TOKEN_FILE) {
  if (typeof explicit === 'string' && explicit.length > 0) return explicit;
  if (process.env.OPS_TOKEN) return process.env.OPS_TOKEN;
  const token = crypto.randomBytes(32).toString('base64url');
  fs.mkdirSync(path.dirname(tokenFile), { recursive: true, mode: 0o700 });
  const fd = fs.openSync(tokenFile, 'w', 0o600);
  try {
    fs.fchmodSync(fd, 0o600); // the file may already exist with wider permissions
    fs.writeSync(fd, token + '\n');
  } finally {
    fs.closeSync(fd);
  }
  log(`OPS_TOKEN not set: generated a random ops token and wrote it to ${tokenFile} (mode 0600)`);
  log(`  use it as: curl -X POST -H "Authorization: Bearer $(cat ${tokenFile})" .../api/breakers/orders-api/isolate`);
  return token;
}

// ---- the app ----------------------------------------------------------------------

function errorStatus(err) {
  if (err instanceof CircuitOpenError) return 503;
  if (err instanceof CircuitTimeoutError) return 504;
  return 502;
}

/** `GET /users/:id` (mounted at /api): a user from the simulated downstream, without a breaker. */
function usersRouter() {
  const router = express.Router();
  router.get('/users/:id', async (req, res) => {
    const id = req.params.id;
    if (!/^[0-9]{1,12}$/.test(id)) return res.status(400).json({ error: 'invalid user id' });
    await callDownstream('users', { id });
    res.json({ id, name: `user ${id}` });
  });
  return router;
}

function createApp(opsToken, { gates, dag, ops }) {
  const app = express();
  app.disable('x-powered-by');
  app.use((req, res, next) => {
    res.set('X-Content-Type-Options', 'nosniff');
    res.set('Cache-Control', 'no-store');
    next();
  });
  // Golden signals per route template: GET /api/observability/golden-signals and GET /metrics.
  app.use(metricsMiddleware);
  app.use(createMetricsRouter());
  app.get('/api/observability/endpoints', (req, res) => res.json(getAllEndpointMetrics()));
  // /health/live, /health/ready (+ /api/health/*), /api/observability/{health-gates,startup-dag}.
  app.use(createHealthRouter({ gates, dag }));
  // Everything observable, as the original server/routes/observability.ts (plus /summary, /ops).
  app.use('/api/observability', createObservabilityRouter({ gates, dag, ops }));
  // Ops API: token-guarded state changes (the same token as the breaker actions).
  app.use('/api/ops', createOpsRouter({ ops, token: opsToken }));
  // Safe mode, brownout and agent quarantine, in the order server/index.ts would use:
  // metrics -> reliability middleware -> routes.
  app.use(
    reliabilityMiddleware({
      ops,
      essential: ['/demo/*', '/api/breakers'],
      criticality: { '/api/orders/*': 'critical', '/api/inventory': 'default', '/api/recommendations': 'sheddable' },
      agentPaths: ['/api/agents/:agentId'],
      retryAfterSeconds: 10,
    }),
  );

  app.get('/', (req, res) => {
    const nonce = crypto.randomBytes(16).toString('base64');
    res.set(
      'Content-Security-Policy',
      `default-src 'self'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; img-src 'none'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'`,
    );
    res.type('html').send(PAGE.replaceAll('__NONCE__', nonce));
  });

  app.get('/api/orders/:id', async (req, res) => {
    const id = req.params.id;
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) return res.status(400).json({ error: 'invalid order id' });
    const t0 = performance.now();
    const order = await orderContext.run({ orderId: id }, () =>
      ordersBreaker.execute((signal) => callDownstream('orders', { id }, signal)),
    );
    if (!order.stale) rememberOrder(order);
    res.set('X-Breaker-State', ordersBreaker.state);
    res.json({ ...order, stale: order.stale === true, durationMs: +(performance.now() - t0).toFixed(2) });
  });

  app.get('/api/inventory', async (req, res) => {
    const inventory = await inventoryBreaker.execute((signal) => callDownstream('inventory', {}, signal));
    res.set('X-Breaker-State', inventoryBreaker.state);
    res.json(inventory);
  });

  // Sheddable: the first thing a brownout drops.
  // A v2 of recommendations in gradual rollout (10 -> 50 -> 100 %, sticky per
  // x-user-id or IP). v2 calls the simulated downstream, so raising its
  // failure rate makes v2 fail and the rollout roll back by itself.
  app.get('/api/recommendations', withTrafficShaping({ rolloutName: 'recommendations-v2', onBlocked: 'next' }), async (req, res) => {
    if (req.rollout.cohort === 'new') {
      try {
        await callDownstream('recommendations', {});
      } catch (e) {
        return res.status(502).json({ error: 'recommendations v2 failed', version: 'v2' });
      }
      return res.json({ version: 'v2', items: ['ord-3', 'ord-1'], dimmer: req.reliability.dimmer });
    }
    res.json({ version: 'v1', items: ['ord-1', 'ord-2', 'ord-3'], dimmer: req.reliability.dimmer });
  });

  // An agent endpoint: answers 423 while the agent is quarantined; each run
  // publishes an event on the bus (behind the `event-bus` breaker, with
  // publish latency and per-agent queue depth watched).
  app.post('/api/agents/:agentId/run', async (req, res) => {
    await publishEvent('agent.run', { agentId: req.params.agentId, at: Date.now() });
    res.json({ agentId: req.params.agentId, ran: true });
  });

  // A simulated AI call (the downstream's latency and failures), tracked as
  // `ai:embeddings` with warn/critical thresholds on its p99.
  app.post('/api/ai/embed', async (req, res) => {
    const vector = await trackAiCall('embeddings', (signal) => callDownstream('ai', {}, signal).then(() => [0.12, 0.34, 0.56]), { timeoutMs: 2000, latency: { warn: 300, critical: 1000, holdMs: 5000 } });
    res.json({ vector });
  });

  app.get('/api/breakers', (req, res) => {
    res.json(registry.toJSON());
  });

  app.post('/api/breakers/:name/:action', requireOpsToken(opsToken), (req, res) => {
    const { name, action } = req.params;
    if (!OPS_ACTIONS.has(action)) return res.status(404).json({ error: `unknown action ${action}` });
    if (!registry.has(name)) return res.status(404).json({ error: `unknown breaker ${name}` });
    const breaker = registry.get(name);
    breaker[action]();
    log(`[ops] ${action} ${name}`);
    res.json(breaker.toJSON());
  });

  app.get('/demo/downstream', (req, res) => {
    res.json(downstream);
  });

  app.post('/demo/downstream', express.json({ limit: '1kb' }), (req, res) => {
    // Only JSON bodies: a cross-site form post cannot change the simulation.
    if (!req.is('application/json') || req.body === null || typeof req.body !== 'object' || Array.isArray(req.body)) {
      return res.status(415).json({ error: 'send a JSON object: { "failureRate": 0..1, "latencyMs": 0..10000 }' });
    }
    const { failureRate, latencyMs } = req.body;
    if (failureRate !== undefined && !(typeof failureRate === 'number' && failureRate >= 0 && failureRate <= 1)) {
      return res.status(400).json({ error: 'failureRate must be a number in [0, 1]' });
    }
    if (latencyMs !== undefined && !(Number.isInteger(latencyMs) && latencyMs >= 0 && latencyMs <= 10000)) {
      return res.status(400).json({ error: 'latencyMs must be an integer in [0, 10000]' });
    }
    if (failureRate !== undefined) downstream.failureRate = failureRate;
    if (latencyMs !== undefined) downstream.latencyMs = latencyMs;
    log(`[downstream] failureRate=${downstream.failureRate} latencyMs=${downstream.latencyMs}`);
    res.json(downstream);
  });

  // With DATABASE_URL set: a real PostgreSQL behind the `database` breaker and gate.
  app.get('/api/db/ping', async (req, res) => {
    if (!dbPool) return res.status(404).json({ error: 'no database: set DATABASE_URL' });
    try {
      const r = await executeWithCircuitBreaker('SELECT now() AS now');
      res.json({ ok: true, now: r.rows[0].now });
    } catch (e) {
      res.status(e.code === 'ERR_CIRCUIT_OPEN' ? 503 : 500).json({ ok: false, error: e.name, code: e.code ?? null });
    }
  });

  app.get('/demo/transitions', (req, res) => {
    res.json(transitions);
  });

  // A router mounted under a prefix, as most apps are organised: its errors
  // go to the app-level error handler below (Express 5 forwards the
  // rejected promise), so the answer is written outside the router.
  app.use('/api', usersRouter());

  app.use((req, res) => {
    res.status(404).json({ error: 'not found' });
  });

  // Express 5 forwards rejected promises from async handlers here.
  app.use((err, req, res, next) => {
    if (res.headersSent) return next(err);
    if (err.type === 'entity.parse.failed' || err.type === 'entity.too.large') {
      return res.status(err.status || 400).json({ error: err.message });
    }
    const status = errorStatus(err);
    if (err instanceof CircuitOpenError && err.retryAfterMs !== null) {
      res.set('Retry-After', String(Math.max(1, Math.ceil(err.retryAfterMs / 1000))));
    }
    res.status(status).json({
      error: err.message,
      code: err.code || null,
      breaker: err.breaker || null,
    });
  });

  return app;
}

/**
 * Starts the demo on 127.0.0.1:`port` (0 = any free port). Options:
 * `opsToken` (else OPS_TOKEN, else generated), `tokenFile` (where a generated
 * token goes; default .tmp/ops-token), `log` (default console.log). Resolves
 * to `{ server, url, close, downstream, gates, dag, startup }` (`startup`:
 * the promise of the reliability system's start); `close()` also drops
 * keep-alive connections.
 */
let dbPool = null;

function start(port = 3000, options = {}) {
  if (process.env.DATABASE_URL && !dbPool) {
    // pg is this repo's devDependency (an app brings its own client).
    const { Pool } = require('pg');
    dbPool = new Pool({ connectionString: process.env.DATABASE_URL, max: 5, connectionTimeoutMillis: 3000 });
    dbPool.on('error', (err) => log('[database] idle connection lost', err.code)); // never log the URL
    setDatabase(dbPool, { logger: { log, warn: log, error: log } });
  }
  if (typeof options.log === 'function') log = options.log;
  const opsToken = resolveOpsToken(options.opsToken, options.tokenFile);
  // One DAG and one gate set per started app (tests start several in one process).
  const dag = new StartupDAG();
  const gates = new HealthGates();
  // Ops state survives restarts in this file; the CLI's local mode edits it.
  const ops = new OpsControls({
    stateFile: options.stateFile ?? process.env.RELIABILITY_STATE_FILE ?? path.join(__dirname, '..', '.tmp', 'ops-state.json'),
    logger: { log: relay, warn: relay },
  });
  ops.registerDeadLetterQueue('orders-dlq', {
    depth: () => deadLetters.length,
    ratePerSecond: 20,
    async drain(limit) {
      let processed = 0;
      let failed = 0;
      for (const msg of deadLetters.splice(0, limit)) {
        try {
          rememberOrder(await callDownstream('orders', { id: msg.id }));
          processed++;
        } catch {
          failed++;
          if (deadLetters.length < DEAD_LETTERS_MAX) deadLetters.push(msg);
        }
      }
      return { processed, failed };
    },
  });
  // Restarted with each start() (tests start several apps in one process).
  getTrafficShaping().startRollout('recommendations-v2', {
    steps: [{ percentage: 10, minDurationMs: 10_000, minRequests: 20 }, { percentage: 50, minDurationMs: 10_000, minRequests: 20 }, { percentage: 100 }],
    slo: { errorRate: 0.1, p99Latency: 800 },
    // Off by default, as in the original: the demo wants the automatic rollback.
    autoRollback: true,
    minSamples: 10,
    windowMs: 30_000,
  });
  gates.registerGate(fromBreaker('orders-api', { critical: true }));
  gates.registerGate(fromBreaker('inventory-api', { critical: false }));
  // With REDIS_URL: ops state shared with every other instance, cluster-wide
  // golden signals (?scope=cluster), and orders-api opening on a quorum of 2.
  const cluster = process.env.REDIS_URL ? createRedisBackend({ url: process.env.REDIS_URL, ops }) : null;
  cluster?.quorumBreaker('orders-api', { quorum: 2 });
  const app = createApp(opsToken, { gates, dag, ops });
  return new Promise((resolve, reject) => {
    const server = app.listen(port, HOST);
    server.once('error', reject);
    server.once('listening', () => {
      server.off('error', reject);
      const url = `http://${HOST}:${server.address().port}`;
      log(`reliability-core demo listening on ${url}`);
      // As server/index.ts: only with USE_RELIABILITY_SYSTEM=true (the demo's
      // default). Never throws; /health/ready says why when something failed.
      const startup =
        (process.env.USE_RELIABILITY_SYSTEM ?? 'true') === 'true'
          ? initializeReliabilitySystem({ root: __dirname, dag, gates, checkIntervalMs: 1000 })
          : Promise.resolve(null);
      let closing = null;
      const close = () => {
        if (!closing) {
          gates.reset();
          ops.close();
          void cluster?.close();
          if (dbPool) {
            const pool = dbPool;
            dbPool = null;
            configureDatabase(null);
            pool.end().catch(() => {});
          }
          closing = new Promise((done) => {
            server.close(() => done());
            server.closeAllConnections();
          });
        }
        return closing;
      };
      resolve({ server, url, close, downstream, gates, dag, ops, startup, deadLetters });
    });
  });
}

// ---- the dashboard ------------------------------------------------------------------

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>reliability-core demo</title>
<style nonce="__NONCE__">
  :root { color-scheme: dark; --bg:#0f1115; --panel:#171a21; --line:#262b36; --text:#d7dce5; --muted:#8a93a6;
          --green:#2ecc71; --red:#ff5c5c; --amber:#f5b942; --blue:#5aa9ff; }
  * { box-sizing: border-box; }
  body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background:var(--bg); color:var(--text); }
  header { padding:16px 24px; border-bottom:1px solid var(--line); display:flex; gap:16px; align-items:baseline; flex-wrap:wrap; }
  h1 { font-size:18px; margin:0; }
  h2 { font-size:13px; text-transform:uppercase; letter-spacing:.06em; color:var(--muted); margin:0 0 10px; }
  main { padding:20px 24px; display:grid; gap:20px; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); }
  section { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:14px 16px; }
  section.wide { grid-column: 1 / -1; }
  table { width:100%; border-collapse:collapse; }
  th, td { text-align:left; padding:6px 8px; border-bottom:1px solid var(--line); white-space:nowrap; }
  th { color:var(--muted); font-weight:500; }
  td.num { font-variant-numeric: tabular-nums; }
  button { background:#222836; color:var(--text); border:1px solid #333a4a; border-radius:5px; padding:5px 10px; cursor:pointer; font:inherit; }
  button:hover { border-color:var(--blue); }
  button.active { border-color:var(--blue); background:#1d2a40; }
  input { background:#0c0e12; color:var(--text); border:1px solid #333a4a; border-radius:5px; padding:5px 8px; font:inherit; }
  .row { display:flex; gap:6px; flex-wrap:wrap; align-items:center; margin:6px 0; }
  .muted { color:var(--muted); }
  .state { display:inline-block; padding:1px 8px; border-radius:10px; font-weight:600; font-size:12px; }
  .state.closed { background:rgba(46,204,113,.15); color:var(--green); }
  .state.open { background:rgba(255,92,92,.15); color:var(--red); }
  .state.half-open { background:rgba(245,185,66,.15); color:var(--amber); }
  .bar { height:6px; background:#0c0e12; border-radius:3px; overflow:hidden; width:90px; display:inline-block; vertical-align:middle; margin-left:6px; }
  .bar > span { display:block; height:100%; background:var(--red); }
  #log { font:12px/1.5 ui-monospace, SFMono-Regular, Menlo, monospace; max-height:220px; overflow:auto; margin:0; }
  .ok { color:var(--green); } .err { color:var(--red); } .warn { color:var(--amber); }
</style>
</head>
<body>
<header>
  <h1>reliability-core demo</h1>
  <span class="muted">circuit breakers in front of a simulated flaky dependency &middot; refreshes every 2 s</span>
  <span id="status" class="muted"></span>
</header>
<main>
  <section class="wide">
    <h2>Golden signals <span class="muted">(last 10 s &middot; <a href="/metrics">/metrics</a>)</span></h2>
    <div id="golden" class="muted">loading&hellip;</div>
    <table>
      <thead><tr><th>Route</th><th>Requests (10 s)</th><th>req/s</th><th>Error rate</th><th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>Aborted</th></tr></thead>
      <tbody id="routes"></tbody>
    </table>
  </section>
  <section class="wide">
    <h2>Breakers</h2>
    <table>
      <thead><tr><th>Name</th><th>State</th><th>Failures in a row</th><th>Window failure rate</th><th>Window calls</th><th>Rejected (total)</th><th>Next trial</th><th>Ops</th></tr></thead>
      <tbody id="breakers"><tr><td colspan="8" class="muted">loading&hellip;</td></tr></tbody>
    </table>
    <div class="row"><label class="muted" for="token">Ops token</label><input id="token" type="password" autocomplete="off" placeholder="OPS_TOKEN (see .tmp/ops-token)"><span id="opsResult" class="muted"></span></div>
  </section>
  <section>
    <h2>Simulated downstream</h2>
    <div class="row">Failure rate:
      <button data-rate="0">0%</button><button data-rate="0.1">10%</button><button data-rate="0.3">30%</button>
      <button data-rate="0.5">50%</button><button data-rate="0.8">80%</button><button data-rate="1">100%</button>
    </div>
    <div class="row">Latency:
      <button data-latency="20">20 ms</button><button data-latency="250">250 ms</button><button data-latency="1500">1500 ms (&gt; timeout)</button>
    </div>
    <div id="downstream" class="muted"></div>
  </section>
  <section>
    <h2>Traffic</h2>
    <div class="row">
      <button id="burstOrders">10 &times; /api/orders/:id</button>
      <button id="burstInventory">10 &times; /api/inventory</button>
      <button id="burstRecs">20 &times; /api/recommendations</button>
      <label><input id="auto" type="checkbox"> steady traffic (4 req/s)</label>
    </div>
    <div id="traffic" class="muted">no requests yet</div>
  </section>
  <section class="wide">
    <h2>Readiness &amp; startup <span class="muted">(<a href="/health/ready">/health/ready</a>)</span></h2>
    <div id="ready" class="muted">loading&hellip;</div>
    <table>
      <thead><tr><th>Gate</th><th>Critical</th><th>State</th><th>Passes</th><th>Reason</th></tr></thead>
      <tbody id="gates"></tbody>
    </table>
    <table>
      <thead><tr><th>Service</th><th>Level</th><th>Critical</th><th>Status</th><th>Init ms</th><th>Health ms</th><th>Error</th></tr></thead>
      <tbody id="services"></tbody>
    </table>
  </section>
  <section>
    <h2>Rollouts <span class="muted">(<a href="/api/observability/rollouts">/api/observability/rollouts</a>)</span></h2>
    <table>
      <thead><tr><th>Rollout</th><th>%</th><th>Phase</th><th>Verdict</th><th>New (window)</th><th>Last decision</th></tr></thead>
      <tbody id="rollouts"></tbody>
    </table>
  </section>
  <section>
    <h2>Watchdogs <span class="muted">(<a href="/api/observability/watchdogs">/api/observability/watchdogs</a>)</span></h2>
    <div class="row"><button id="burstAgents">10 &times; agent runs</button><button id="burstAi">10 &times; AI calls</button></div>
    <table>
      <thead><tr><th>Watchdog</th><th>State</th><th>Value</th><th>Calls/min</th></tr></thead>
      <tbody id="watchdogs"></tbody>
    </table>
  </section>
  <section>
    <h2>Transitions</h2>
    <pre id="log" class="muted">none yet</pre>
  </section>
</main>
<script nonce="__NONCE__">
(() => {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const el = (tag, props = {}, text) => {
    const e = document.createElement(tag);
    Object.assign(e, props);
    if (text !== undefined) e.textContent = String(text);
    return e;
  };
  const counts = { ok: 0, stale: 0, rejected: 0, failed: 0 };
  const tokenInput = $('token');
  tokenInput.value = sessionStorage.getItem('opsToken') || '';
  tokenInput.addEventListener('change', () => sessionStorage.setItem('opsToken', tokenInput.value));

  async function getJSON(url, init = {}) {
    const res = await fetch(url, { cache: 'no-store', signal: AbortSignal.timeout(5000), ...init });
    let body = null;
    try { body = await res.json(); } catch { /* not JSON */ }
    return { status: res.status, body };
  }

  function renderBreakers(list) {
    const tbody = $('breakers');
    tbody.replaceChildren();
    for (const b of list) {
      const tr = el('tr');
      tr.append(el('td', {}, b.name));
      const st = el('td');
      st.append(el('span', { className: 'state ' + b.state }, b.state + (b.isolated ? ' (isolated)' : '')));
      tr.append(st);
      tr.append(el('td', { className: 'num' }, b.failureCount + ' / ' + b.options.failureThreshold));
      // window.failureRate is a percentage (0..100), like errorThresholdPercentage.
      const rate = el('td', { className: 'num' }, b.window.failureRate.toFixed(0) + '%');
      const bar = el('span', { className: 'bar' });
      const fill = el('span');
      fill.style.width = Math.min(100, b.window.failureRate).toFixed(0) + '%';
      bar.append(fill);
      rate.append(bar);
      if (b.options.errorThresholdPercentage !== undefined && b.options.errorThresholdPercentage !== null) {
        rate.append(el('span', { className: 'muted' }, ' (opens at ' + b.options.errorThresholdPercentage + '%)'));
      }
      tr.append(rate);
      tr.append(el('td', { className: 'num' }, b.window.calls));
      tr.append(el('td', { className: 'num' }, b.totals.rejects));
      const next = b.state === 'open' && !b.isolated && b.nextAttemptTime
        ? Math.max(0, (b.nextAttemptTime - Date.now()) / 1000).toFixed(1) + ' s' : '';
      tr.append(el('td', { className: 'num muted' }, next));
      const ops = el('td');
      for (const action of ['isolate', 'close', 'reset']) {
        const btn = el('button', {}, action);
        btn.addEventListener('click', () => op(b.name, action));
        ops.append(btn, ' ');
      }
      tr.append(ops);
      tbody.append(tr);
    }
  }

  async function op(name, action) {
    const token = tokenInput.value.trim();
    const headers = token ? { Authorization: 'Bearer ' + token } : {};
    const r = await getJSON('/api/breakers/' + encodeURIComponent(name) + '/' + action, { method: 'POST', headers });
    const out = $('opsResult');
    out.className = r.status === 200 ? 'ok' : 'err';
    out.textContent = action + ' ' + name + ': ' + r.status + (r.body && r.body.error ? ' ' + r.body.error : '');
    refresh();
  }

  function renderDownstream(d) {
    $('downstream').textContent = 'failure rate ' + Math.round(d.failureRate * 100) + '%, latency ' + d.latencyMs +
      ' ms, calls ' + d.calls + ', failures ' + d.failures + ', aborted by timeout ' + d.aborted;
    for (const b of document.querySelectorAll('[data-rate]')) b.classList.toggle('active', Number(b.dataset.rate) === d.failureRate);
    for (const b of document.querySelectorAll('[data-latency]')) b.classList.toggle('active', Number(b.dataset.latency) === d.latencyMs);
  }

  function renderLog(entries) {
    const pre = $('log');
    if (!entries.length) { pre.textContent = 'none yet'; return; }
    pre.replaceChildren();
    for (const e of entries.slice().reverse()) {
      const cls = e.to === 'OPEN' ? 'err' : e.to === 'CLOSED' ? 'ok' : 'warn';
      pre.append(el('span', { className: cls }, e.at.slice(11, 23) + '  ' + e.breaker + ' -> ' + e.to), '\\n');
    }
  }

  function renderGolden(g, routes) {
    const w = g.latency.windows['10s'];
    const t = g.traffic.windows['10s'];
    const e = g.errors.windows['10s'];
    $('golden').textContent = 'traffic ' + t.requestsPerSecond.toFixed(1) + ' req/s · errors ' + (e.errorRate * 100).toFixed(1) +
      ' % · latency p50 ' + w.p50.toFixed(1) + ' / p95 ' + w.p95.toFixed(1) + ' / p99 ' + w.p99.toFixed(1) + ' ms · in flight ' +
      g.saturation.activeConnections + ' · sockets ' + g.saturation.openSockets + ' · event-loop p99 ' + g.saturation.eventLoopDelay.p99.toFixed(1) + ' ms';
    const body = $('routes');
    body.replaceChildren();
    for (const r of routes) {
      const x = r.windows['10s'];
      if (!x.requests) continue;
      const tr = el('tr', {});
      for (const v of [r.method + ' ' + r.route, x.requests, x.requestsPerSecond.toFixed(1), (x.errorRate * 100).toFixed(1) + ' %',
        x.latency.p50.toFixed(1), x.latency.p95.toFixed(1), x.latency.p99.toFixed(1), x.aborted]) tr.append(el('td', {}, String(v)));
      body.append(tr);
    }
  }

  function renderWatchdogs(list) {
    const t = $('watchdogs');
    t.replaceChildren();
    for (const w of list) {
      const tr = el('tr');
      const cls = w.state === 'critical' ? 'err' : w.state === 'warn' ? 'warn' : 'ok';
      tr.append(el('td', {}, w.name), el('td', { className: cls }, w.state), el('td', { className: 'num' }, w.value.toFixed(1)), el('td', { className: 'num' }, w.callsPerMinute == null ? '' : w.callsPerMinute));
      t.append(tr);
    }
  }

  function renderRollouts(list) {
    const t = $('rollouts');
    t.replaceChildren();
    for (const r of list) {
      const d = r.detail;
      const w = d.newCohort.windows.find((x) => x.window === 'window') || { requests: 0, errorRate: 0 };
      const last = d.history[d.history.length - 1];
      const tr = el('tr');
      const cls = d.verdict === 'breach' ? 'err' : d.verdict === 'healthy' ? 'ok' : 'muted';
      tr.append(el('td', {}, r.name), el('td', { className: 'num' }, d.percentage), el('td', {}, d.phase), el('td', { className: cls }, d.verdict),
        el('td', { className: 'num' }, w.requests + ' req, ' + (w.errorRate * 100).toFixed(1) + '% err'),
        el('td', { className: 'muted' }, last ? last.kind + ' ' + last.fromPercentage + '→' + last.toPercentage + (last.reason ? ': ' + last.reason : '') : ''));
      t.append(tr);
    }
  }

  function renderReadiness(ready, sd) {
    const r = ready.body || {};
    $('ready').replaceChildren(el('span', { className: 'state ' + (r.ready ? 'closed' : 'open') }, (r.status || 'unknown') + ' (' + ready.status + ')'),
      el('span', { className: 'muted' }, '  startup: ' + (sd.outcome || '?') + (sd.error ? ' - ' + sd.error : '') + (sd.problems && sd.problems.length ? ' - ' + sd.problems.map((p) => p.message).join('; ') : '')));
    const g = $('gates');
    g.replaceChildren();
    for (const x of (r.gates || [])) {
      const tr = el('tr');
      tr.append(el('td', {}, x.name), el('td', {}, x.critical ? 'yes' : 'no'));
      const st = el('td');
      st.append(el('span', { className: 'state ' + (x.ready ? 'closed' : 'open') }, x.ready ? 'ready' : 'not ready'));
      tr.append(st, el('td', { className: 'num' }, x.consecutivePasses + ' / ' + x.requiredPasses), el('td', { className: 'muted' }, x.reason || ''));
      g.append(tr);
    }
    const sv = $('services');
    sv.replaceChildren();
    for (const x of (sd.services || [])) {
      const tr = el('tr');
      const cls = x.status === 'ready' ? 'ok' : x.status === 'failed' ? 'err' : 'warn';
      tr.append(el('td', {}, x.name), el('td', { className: 'num' }, x.level == null ? '' : x.level), el('td', {}, x.critical ? 'yes' : 'no'),
        el('td', { className: cls }, x.status), el('td', { className: 'num' }, x.initMs == null ? '' : x.initMs.toFixed(0)),
        el('td', { className: 'num' }, x.healthCheckMs == null ? '' : x.healthCheckMs.toFixed(0)), el('td', { className: 'muted' }, x.error || ''));
      sv.append(tr);
    }
  }

  async function refresh() {
    try {
      const [ready, gates, sd, ro] = await Promise.all([getJSON('/health/ready'), getJSON('/api/observability/health-gates'), getJSON('/api/observability/startup-dag'), getJSON('/api/observability/rollouts')]);
      renderRollouts((ro.body || {}).rollouts || []);
      const wd = await getJSON('/api/observability/watchdogs');
      renderWatchdogs((wd.body || {}).watchdogs || []);
      renderReadiness({ status: ready.status, body: { ...(ready.body || {}), gates: (gates.body || {}).gates } }, sd.body || {});
      const [g, r] = await Promise.all([getJSON('/api/observability/golden-signals'), getJSON('/api/observability/endpoints')]);
      renderGolden(g.body, r.body || []);
      const [b, d, t] = await Promise.all([getJSON('/api/breakers'), getJSON('/demo/downstream'), getJSON('/demo/transitions')]);
      renderBreakers(b.body || []);
      renderDownstream(d.body);
      renderLog(t.body || []);
      $('status').textContent = 'updated ' + new Date().toLocaleTimeString();
    } catch (e) {
      $('status').textContent = 'refresh failed: ' + e.message;
    }
  }

  async function setDownstream(patch) {
    await getJSON('/demo/downstream', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(patch) });
    refresh();
  }
  for (const b of document.querySelectorAll('[data-rate]')) b.addEventListener('click', () => setDownstream({ failureRate: Number(b.dataset.rate) }));
  for (const b of document.querySelectorAll('[data-latency]')) b.addEventListener('click', () => setDownstream({ latencyMs: Number(b.dataset.latency) }));

  async function one(url) {
    try {
      // A random user per request, so sticky rollouts show both cohorts.
      const r = await getJSON(url, { headers: { 'x-user-id': 'demo-user-' + Math.floor(Math.random() * 1000) } });
      if (r.status === 200) counts[r.body && r.body.stale ? 'stale' : 'ok']++;
      else if (r.status === 503) counts.rejected++;
      else counts.failed++;
    } catch { counts.failed++; }
    $('traffic').textContent = 'ok ' + counts.ok + ' · stale (fallback) ' + counts.stale + ' · rejected (503) ' + counts.rejected + ' · failed ' + counts.failed;
  }
  let n = 0;
  const orderUrl = () => '/api/orders/ord-' + (n++ % 5);
  $('burstOrders').addEventListener('click', async () => { await Promise.all(Array.from({ length: 10 }, () => one(orderUrl()))); refresh(); });
  $('burstRecs').addEventListener('click', async () => { await Promise.all(Array.from({ length: 20 }, (_, i) => one('/api/recommendations?u=' + i))); refresh(); });
  $('burstAgents').addEventListener('click', async () => { await Promise.all(Array.from({ length: 10 }, (_, i) => getJSON('/api/agents/agent-' + (i % 3) + '/run', { method: 'POST' }))); refresh(); });
  $('burstAi').addEventListener('click', async () => { await Promise.all(Array.from({ length: 10 }, () => getJSON('/api/ai/embed', { method: 'POST' }))); refresh(); });
  $('burstInventory').addEventListener('click', async () => { await Promise.all(Array.from({ length: 10 }, () => one('/api/inventory'))); refresh(); });
  setInterval(() => { if ($('auto').checked) { one(orderUrl()); one('/api/inventory'); } }, 500);

  refresh();
  setInterval(refresh, 2000);
})();
</script>
</body>
</html>
`;

if (require.main === module) {
  const port = process.env.PORT === undefined || process.env.PORT === '' ? 3000 : Number(process.env.PORT);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`invalid PORT ${JSON.stringify(process.env.PORT)}`);
    process.exit(1);
  }
  start(port).then(
    ({ server, gates }) => {
      // SIGTERM/SIGINT: readiness 503 first, then close, drain, exit.
      const delay = Number(process.env.SHUTDOWN_DELAY_MS ?? 1000);
      createGracefulShutdown(server, { gates, shutdownDelayMs: Number.isFinite(delay) && delay >= 0 ? delay : 1000, drainTimeoutMs: 5000 });
    },
    (err) => {
      console.error(`could not start the demo: ${err.message}`);
      process.exit(1);
    },
  );
} else {
  module.exports = { start };
}
