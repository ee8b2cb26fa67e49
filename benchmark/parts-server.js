'use strict';
/**
 * One Express 4 server whose reliability layer is switched at run time, for
 * benchmark/parts.js: what each part of reliabilityStack() costs under load,
 * measured against bare periods of the same process (same JIT state, same
 * heap, same CPU), which resolves about 1 µs where separate servers resolve
 * about 5.
 *
 *   node benchmark/parts-server.js        prints `PORT <n>`; IPC: {cmd:'mode', mode}, {cmd:'cpu'}
 *
 * The tracker's diagnostics-channel subscription is global once made, so
 * variants without it unsubscribe it for their periods (wrapping
 * `dc.subscribe` before the package loads is how this script finds it).
 */
const dc = require('node:diagnostics_channel');
const path = require('node:path');

const subscriptions = [];
const subscribe = dc.subscribe;
dc.subscribe = (name, fn) => {
  subscriptions.push([name, fn]);
  return subscribe(name, fn);
};

const express = require('express4');
const dist = path.join(__dirname, '..', 'dist');
const { reliabilityStack, OpsControls } = require(path.join(dist, 'entries', 'ops.js'));
const { getTrafficShaping } = require(path.join(dist, 'traffic-shaping.js'));
const { getCircuitBreakerRegistry, configureCircuitBreakers } = require(path.join(dist, 'circuit-breaker.js'));

configureCircuitBreakers({ logger: null });
const ops = new OpsControls({ stateFile: false, logger: null });
getTrafficShaping().startRollout('items-v2', { percentage: 50 });
const breaker = getCircuitBreakerRegistry().get('dependency', { failureThreshold: 5, resetTimeout: 2000, retryOptions: { maxRetries: 0 } });
async function dependency(id) {
  return { id, name: `item-${id}`, price: 42 };
}
const pass = (req, res, next) => next();
const noop = () => {};
const rollouts = { '/api/items/*': 'items-v2' };

// name: [middleware, breaker around the dependency?, tracker subscription on?]
const VARIANTS = {
  bare: [pass, false, false],
  full: [reliabilityStack({ ops, rollouts, onBlocked: 'next' }), true, true],
  'no-breaker': [reliabilityStack({ ops, rollouts, onBlocked: 'next' }), false, true],
  'metrics-only': [reliabilityStack({ ops }), false, true],
  'shaping-only': [reliabilityStack({ ops, metrics: false, rollouts, onBlocked: 'next' }), false, true],
  'breaker-only': [pass, true, false],
  'cohort-header': [reliabilityStack({ ops, metrics: false, rollouts, onBlocked: 'next', cohortHeader: 'x-rollout-cohort' }), false, true],
  // References: what Node charges for the two ways of hearing that a response ended.
  'close-listener': [
    (req, res, next) => {
      res.on('close', noop);
      next();
    },
    false,
    false,
  ],
  'req-property': [
    (req, res, next) => {
      req.someState = 1;
      next();
    },
    false,
    false,
  ],
};

let current = VARIANTS.bare;
let subscribed = true;
function setSubscribed(on) {
  if (on === subscribed) return;
  for (const [name, fn] of subscriptions) (on ? subscribe : dc.unsubscribe)(name, fn);
  subscribed = on;
}

const app = express();
app.disable('x-powered-by');
app.disable('etag');
app.use(express.json({ limit: '1kb' }));
let count = 0;
app.use((req, res, next) => {
  count++;
  current[0](req, res, next);
});
app.get('/api/items/:id', async (req, res) => {
  try {
    res.json(await (current[1] ? breaker.execute(() => dependency(req.params.id)) : dependency(req.params.id)));
  } catch (e) {
    res.status(500).json({ error: e.message });
  }
});

// Time spent in garbage collection (ms, cumulative): how much of a variant's cost is allocation.
let gcMs = 0;
new (require('node:perf_hooks').PerformanceObserver)((list) => {
  for (const e of list.getEntries()) gcMs += e.duration;
}).observe({ entryTypes: ['gc'] });

const server = app.listen(0, '127.0.0.1', () => console.log(`PORT ${server.address().port}`));
server.keepAliveTimeout = 120_000;
process.on('message', (m) => {
  if (m?.cmd === 'mode') {
    if (!VARIANTS[m.mode]) throw new Error(`unknown variant ${m.mode}; known: ${Object.keys(VARIANTS).join(', ')}`);
    current = VARIANTS[m.mode];
    setSubscribed(current[2]);
    process.send({ ok: true });
  }
  if (m?.cmd === 'cpu') process.send({ cpu: process.cpuUsage(), count, gcMs });
});
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
