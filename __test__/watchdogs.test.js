'use strict';
// Watchdogs as users see them: event-bus publish behind a breaker, AI-call
// latency with states and alerts, a webhook received by a real listener,
// dead-letter rates, the /api/observability/watchdogs body, bad input.
const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { EventEmitter } = require('node:events');

const W = require('../dist/watchdogs.js');
const { getWatchdogs, protectPublish, trackAiCall, recordDeadLetter, getWatchdogsReport, Watchdogs } = W;
const { getCircuitBreakerRegistry, CircuitOpenError, configureCircuitBreakers } = require('../dist/circuit-breaker.js');
const { getGoldenSignals } = require('../dist/metrics.js');

configureCircuitBreakers({ logger: null });
after(() => getWatchdogs().close());

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A small in-memory event bus, as the server's DreamEventBus would be used. */
class MemoryBus extends EventEmitter {
  constructor() {
    super();
    this.down = false;
    this.delayMs = 0;
    this.published = 0;
  }
  async publish(topic, payload) {
    if (this.delayMs) await sleep(this.delayMs);
    if (this.down) throw new Error('bus unavailable');
    this.published++;
    this.emit(topic, payload);
    return true;
  }
}

test('protectPublish: failures open the breaker, publishes are then refused fast, and it recovers', { timeout: 10_000 }, async () => {
  const bus = new MemoryBus();
  const publish = protectPublish(bus.publish.bind(bus), { breaker: 'bus-test', breakerOptions: { failureThreshold: 3, resetTimeout: 200, retryOptions: { maxRetries: 0 } } });
  assert.equal(await publish('agent.events', { agentId: 'a1' }), true);
  bus.down = true;
  for (let i = 0; i < 3; i++) await assert.rejects(publish('agent.events', { agentId: 'a1' }), { message: 'bus unavailable' });
  const t0 = performance.now();
  await assert.rejects(publish('agent.events', { agentId: 'a1' }), (e) => e instanceof CircuitOpenError);
  assert.ok(performance.now() - t0 < 50, 'refused without calling the bus');
  const calls = bus.published;
  bus.down = false;
  await sleep(250);
  assert.equal(await publish('agent.events', { agentId: 'a1' }), true, 'half-open trial succeeds');
  assert.equal(bus.published, calls + 1);
  assert.equal(await publish('agent.events', { agentId: 'a1' }), true, 'the second trial closes it');
  const rep = getWatchdogsReport();
  const t = rep.watchdogs.find((w) => w.name === 'publish:agent.events');
  assert.equal(t.totalCalls, 6, '3 successes and 3 failures timed; the refusal made no call');
  assert.equal(t.totalErrors, 3);
  assert.equal(getCircuitBreakerRegistry().get('bus-test').getState().state, 'closed');
});

test('queue depth per topic and per agent, also in the golden signals', { timeout: 10_000 }, async () => {
  const bus = new MemoryBus();
  bus.delayMs = 100;
  const publish = protectPublish(bus.publish.bind(bus), { breaker: 'bus-depth' });
  const pending = [publish('jobs', { agentId: 'agent-7' }), publish('jobs', { agentId: 'agent-7' }), publish('jobs', { agentId: 'agent-8' })];
  await sleep(20);
  const rep = getWatchdogsReport();
  assert.equal(rep.queueDepth.perTopic.jobs, 3);
  assert.equal(rep.queueDepth.perAgent['agent-7'], 2);
  assert.equal(rep.queueDepth.perAgent['agent-8'], 1);
  assert.ok(rep.queueDepth.total >= 3);
  assert.ok(getGoldenSignals().saturation.queueDepth >= 3, 'saturation.queueDepth is the real total');
  await Promise.all(pending);
  assert.equal(getWatchdogsReport().queueDepth.perTopic.jobs, 0);
});

test('trackAiCall: a slow AI function turns critical (p99), the alert is emitted and POSTed to a webhook', { timeout: 15_000 }, async () => {
  const received = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      received.push({ method: req.method, type: req.headers['content-type'], body: JSON.parse(body) });
      res.end('ok');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const w = getWatchdogs();
  w.configureAlerts({ webhookUrl: `http://127.0.0.1:${server.address().port}/alerts`, timeoutMs: 2000 });
  const alerts = [];
  const onAlert = (a) => a.name === 'ai:openai-embeddings' && alerts.push(a);
  w.on('alert', onAlert);
  w.latency('ai:openai-embeddings', { warn: 40, critical: 80 });
  try {
    let delay = 5;
    const embed = () => trackAiCall('openai-embeddings', async (signal) => {
      await sleep(delay);
      if (signal.aborted) throw new Error('aborted');
      return [0.1, 0.2];
    });
    for (let i = 0; i < 5; i++) assert.deepEqual(await embed(), [0.1, 0.2]);
    w.drain();
    assert.equal(alerts.length, 0, 'fast calls: ok');
    delay = 120;
    for (let i = 0; i < 3; i++) await embed();
    w.drain();
    assert.deepEqual(alerts.map((a) => [a.from, a.to]), [['ok', 'critical']]);
    assert.ok(alerts[0].value >= 100, `p99 ${alerts[0].value}`);
    for (let i = 0; i < 100 && received.length === 0; i++) await sleep(20);
    assert.equal(received.length, 1);
    assert.equal(received[0].method, 'POST');
    assert.equal(received[0].type, 'application/json');
    assert.deepEqual([received[0].body.watchdog, received[0].body.from, received[0].body.to], ['ai:openai-embeddings', 'ok', 'critical']);
    const rep = getWatchdogsReport();
    assert.ok(rep.aiCallLatency.p99 >= 100);
    assert.ok(rep.aiCallLatency.totalCalls >= 8);
    assert.ok(rep.aiCallLatency.average > 5);
    assert.equal(rep.aiCallLatency.perCall['openai-embeddings'].state, 'critical');
  } finally {
    w.off('alert', onAlert);
    w.configureAlerts({ webhookUrl: null });
    await new Promise((r) => server.close(r));
  }
});

test('trackAiCall: the timeout aborts the call through its signal; the breaker protects the rest', { timeout: 10_000 }, async () => {
  let aborted = 0;
  const hang = (signal) => new Promise((_, reject) => signal.addEventListener('abort', () => (aborted++, reject(new Error('aborted by timeout')))));
  const opts = { timeoutMs: 50, breakerOptions: { failureThreshold: 2, resetTimeout: 60_000, timeout: 50, retryOptions: { maxRetries: 0 } } };
  await assert.rejects(trackAiCall('ai-hang', hang, opts));
  await assert.rejects(trackAiCall('ai-hang', hang, opts));
  assert.equal(aborted, 2);
  await assert.rejects(trackAiCall('ai-hang', hang, opts), (e) => e instanceof CircuitOpenError);
  assert.equal(aborted, 2, 'an open breaker does not call');
});

test('hysteresis: a state changes only after holdMs past the threshold', { timeout: 10_000 }, async () => {
  const w = new Watchdogs();
  try {
    const alerts = [];
    w.on('alert', (a) => alerts.push(a.to));
    const g = w.gauge('queue:test', { warn: 10, critical: 100, holdMs: 150 });
    g.set(50);
    assert.deepEqual(alerts, []);
    g.set(5);
    await sleep(200);
    g.set(5);
    assert.deepEqual(alerts, [], 'the spike did not last');
    g.set(50);
    await sleep(200);
    w.drain();
    assert.deepEqual(alerts, ['warn']);
    let depth = 500;
    w.gauge('queue:pulled', { warn: 10, critical: 100, read: () => depth });
    w.drain();
    assert.equal(w.report().find((x) => x.name === 'queue:pulled').state, 'critical');
    depth = 0;
    w.drain();
    assert.equal(w.report().find((x) => x.name === 'queue:pulled').state, 'ok');
  } finally {
    w.close();
  }
});

test('dead-letter rate per queue and in total', () => {
  recordDeadLetter('orders-dlq', 4);
  recordDeadLetter('orders-dlq');
  recordDeadLetter('email-dlq', 2);
  const r = getWatchdogsReport().dlqRate;
  assert.equal(r.perQueue['orders-dlq'].messagesPerMinute, 5);
  assert.equal(r.perQueue['email-dlq'].totalMessages, 2);
  assert.ok(r.messagesPerMinute >= 7 && r.totalMessages >= 7);
});

test('bad input: clear errors, nothing recorded half-way', () => {
  const w = new Watchdogs();
  try {
    assert.throws(() => w.gauge('g', { warn: 10, critical: 5 }), { name: 'RangeError', message: 'warn must be at most critical (5), got 10' });
    assert.throws(() => w.gauge('g', { warn: NaN }), RangeError);
    assert.throws(() => w.gauge('g', { holdMs: -1 }), { message: /^holdMs/ });
    assert.throws(() => w.latency('l', { quantile: 0.42 }), { name: 'RangeError', message: /^quantile must be one of 0.5, 0.9, 0.95, 0.99, 0.999/ });
    assert.equal(w.report().length, 0);
    const g = w.gauge('g');
    assert.throws(() => g.set(-3), { name: 'RangeError', message: 'value must be a finite number >= 0, got -3' });
    assert.throws(() => g.set(Infinity), RangeError);
    const l = w.latency('l');
    assert.throws(() => l.record(NaN), { name: 'RangeError', message: 'latencyMs must be a finite number >= 0, got NaN' });
    assert.throws(() => l.record(-1), RangeError);
    assert.equal(w.report().find((x) => x.name === 'l').totalCalls, 0);
    const c = w.counter('c');
    assert.throws(() => c.add(1.5), RangeError);
    assert.throws(() => w.configureAlerts({ webhookUrl: 'ftp://x' }), TypeError);
    assert.throws(() => w.configureAlerts({ timeoutMs: 0 }), RangeError);
    assert.throws(() => protectPublish('nope'), TypeError);
  } finally {
    w.close();
  }
});

test('the report keeps the original fields', () => {
  const r = getWatchdogsReport();
  for (const k of ['eventLoopDelay', 'heartbeat', 'memory', 'uptime']) assert.ok(k in r.processHealth, k);
  assert.ok('perAgent' in r.queueDepth && 'total' in r.queueDepth);
  assert.ok('messagesPerMinute' in r.dlqRate && 'totalMessages' in r.dlqRate);
  for (const k of ['p99', 'average', 'totalCalls']) assert.equal(typeof r.aiCallLatency[k], 'number');
  assert.equal(typeof r.timestamp, 'number');
});

test('a webhook that never answers: the alert is not held up, the post times out and is reported', { timeout: 15_000 }, async () => {
  const hung = [];
  const server = http.createServer((req) => hung.push(req)); // never answers
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const w = new Watchdogs();
  try {
    w.configureAlerts({ webhookUrl: `http://127.0.0.1:${server.address().port}/`, timeoutMs: 200, retries: 0 });
    const errors = [];
    w.on('webhookError', (e) => errors.push(e.message));
    const g = w.gauge('queue:hung-webhook', { critical: 1 });
    const t0 = performance.now();
    g.set(5); // alert fires here
    assert.ok(performance.now() - t0 < 20, 'set() does not wait for the webhook');
    for (let i = 0; i < 100 && errors.length === 0; i++) await sleep(20);
    assert.equal(hung.length, 1, 'the post was sent');
    assert.match(errors[0], /watchdog webhook failed: .*(timeout|aborted)/i);
  } finally {
    w.close();
    for (const r of hung) r.socket.destroy();
    await new Promise((r) => server.close(r));
  }
});
