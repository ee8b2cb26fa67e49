'use strict';
/**
 * Every signal in Prometheus (issue 21 part A), in one process on 127.0.0.1:
 *   - /metrics holds the HTTP, breaker, rollout, health-gate, ops, DLQ,
 *     watchdog, startup DAG and Node process families (prom-client's names);
 *   - `promtool check metrics` accepts it with no warning;
 *   - `Accept: application/openmetrics-text` gets OpenMetrics 1.0 (# EOF,
 *     counters' TYPE without _total, its Content-Type);
 *   - a real prom-client Registry with collectDefaultMetrics serves one
 *     /metrics with this package's families through registerWith, with no
 *     family twice;
 *   - bad configuration throws naming the field.
 * Bounded: a few requests; the server is closed at the end.
 */
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const http = require('node:http');
const express = require('express');
const promClient = require('prom-client');
const rc = require('..');

let server;
let url;
// Held for the whole file: a DAG's families go with its JS object.
let dag;

function families(text) {
  const out = new Map();
  for (const line of text.split('\n')) {
    const m = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (m) out.set(m[1], m[2]);
  }
  return out;
}

before(async () => {
  const app = express();
  app.use(rc.metricsMiddleware);
  const breaker = rc.getCircuitBreakerRegistry().get('fam-api');
  app.get('/ok/:id', async (req, res) => {
    await breaker.execute(async () => 1);
    res.json({ ok: true });
  });
  app.get('/bad', (req, res) => res.status(500).end());
  app.use(rc.createMetricsRouter({ express, authorize: () => true }));
  const gates = rc.getHealthGates();
  gates.register({ serviceId: 'fam-db', name: 'Database', critical: true, check: async () => true });
  const ts = rc.getTrafficShaping();
  ts.startRollout('fam-rollout', { percentage: 10 });
  const w = rc.getWatchdogs();
  w.gauge('fam-queue', { warn: 10, critical: 20 }).set(3);
  // One family per unit of judged value: a tracker's quantile in seconds, a counter's rate per second.
  w.latency('fam-ai', { quantile: 0.9 }).record(250);
  w.counter('fam-dead').add(120);
  w.drain();
  // The core cannot ask a queue its depth: the status read forwards it (dlq_depth).
  rc.getOps().registerDeadLetterQueue('fam-dlq', { depth: async () => 7, drain: async () => 0 });
  assert.equal((await rc.getOps().deadLetterQueues()).find((q) => q.name === 'fam-dlq').depth, 7);
  dag = new rc.StartupDAG();
  dag.register({ id: 'fam-store', critical: true, init: async () => {}, healthCheck: async () => true });
  dag.register({ id: 'fam-mailer', dependencies: ['fam-store'], init: async () => {}, healthCheck: async () => true });
  await dag.initialize();
  // Start the gc observer (first scrape), then make garbage so a minor GC happens.
  rc.getPrometheusMetrics();
  let keep = 0;
  for (let i = 0; i < 200_000; i++) keep += new Array(16).fill(i).length;
  assert.ok(keep > 0);
  await new Promise((r) => setTimeout(r, 50));
  server = http.createServer(app);
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${server.address().port}`;
  for (let i = 0; i < 5; i++) await fetch(`${url}/ok/${i}`);
  await fetch(`${url}/bad`);
});

after(() => new Promise((r) => server.close(r)));

const EXPECTED = {
  http_requests_total: 'counter',
  http_request_duration_seconds: 'histogram',
  circuit_breaker_state: 'gauge',
  circuit_breaker_calls_total: 'counter',
  circuit_breaker_transitions_total: 'counter',
  circuit_breaker_call_duration_seconds: 'histogram',
  circuit_breaker_failure_rate: 'gauge',
  circuit_breaker_slow_call_rate: 'gauge',
  rollout_percentage: 'gauge',
  rollout_phase: 'gauge',
  rollout_requests_total: 'counter',
  rollout_verdict: 'gauge',
  health_gate_ready: 'gauge',
  health_ready: 'gauge',
  ops_safe_mode: 'gauge',
  ops_brownout_level: 'gauge',
  dlq_depth: 'gauge',
  dlq_drain_running: 'gauge',
  dlq_drain_progress: 'gauge',
  dlq_drained_total: 'counter',
  watchdog_value: 'gauge',
  watchdog_watched_latency_seconds: 'gauge',
  watchdog_rate_per_second: 'gauge',
  startup_service_duration_seconds: 'gauge',
  startup_service_state: 'gauge',
  startup_complete: 'gauge',
  startup_critical_ready: 'gauge',
  watchdog_level: 'gauge',
  process_cpu_user_seconds_total: 'counter',
  process_cpu_system_seconds_total: 'counter',
  process_cpu_seconds_total: 'counter',
  process_start_time_seconds: 'gauge',
  process_resident_memory_bytes: 'gauge',
  nodejs_eventloop_lag_seconds: 'gauge',
  nodejs_eventloop_lag_p99_seconds: 'gauge',
  nodejs_active_handles: 'gauge',
  nodejs_heap_size_used_bytes: 'gauge',
  nodejs_heap_space_size_used_bytes: 'gauge',
  nodejs_version_info: 'gauge',
  nodejs_gc_duration_seconds: 'histogram',
};

test('/metrics has every family, each with its type', async () => {
  const r = await fetch(`${url}/metrics`);
  assert.equal(r.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  const text = await r.text();
  const fams = families(text);
  for (const [name, type] of Object.entries(EXPECTED)) assert.equal(fams.get(name), type, `${name} in /metrics`);
  assert.match(text, /circuit_breaker_state\{name="fam-api",state="closed"\} 1\n/);
  assert.match(text, /circuit_breaker_calls_total\{name="fam-api",outcome="success"\} 5\n/);
  assert.match(text, /health_gate_ready\{service="fam-db",critical="true"\} [01]\n/);
  assert.match(text, /rollout_percentage\{rollout="fam-rollout"\} 10\n/);
  assert.match(text, /watchdog_value\{watchdog="fam-queue"\} 3\n/);
  assert.doesNotMatch(text, /watchdog_value\{watchdog="fam-(ai|dead)"\}/, 'watchdog_value holds plain gauges only');
  assert.match(text, /watchdog_watched_latency_seconds\{watchdog="fam-ai",percentile="90"\} 0\.2\d*\n/);
  assert.match(text, /watchdog_rate_per_second\{watchdog="fam-dead"\} 2\n/);
  assert.match(text, /dlq_depth\{queue="fam-dlq"\} 7\n/);
  assert.match(text, /dlq_drain_running\{queue="fam-dlq"\} 0\n/);
  assert.match(text, /startup_service_state\{service="fam-store",state="ready"\} 1\n/);
  assert.match(text, /startup_service_state\{service="fam-mailer",state="pending"\} 0\n/);
  assert.match(text, /startup_service_duration_seconds\{service="fam-mailer"\} \d/);
  assert.match(text, /^startup_complete 1$/m);
  assert.match(text, /^startup_critical_ready 1$/m);
  assert.match(text, new RegExp(`nodejs_version_info\\{version="${process.version}",major="\\d+",minor="\\d+",patch="\\d+"\\} 1\\n`));
  assert.match(text, /nodejs_heap_space_size_used_bytes\{space="old"\} \d+/);
});

test('promtool check metrics passes without a warning', async () => {
  const text = await (await fetch(`${url}/metrics`)).text();
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.equal(r.error, undefined, String(r.error));
  assert.equal(`${r.stdout}${r.stderr}`.trim(), '', 'promtool says nothing');
  assert.equal(r.status, 0);
});

test('OpenMetrics by content negotiation', async () => {
  const r = await fetch(`${url}/metrics`, { headers: { accept: 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5' } });
  assert.equal(r.headers.get('content-type'), 'application/openmetrics-text; version=1.0.0; charset=utf-8');
  const text = await r.text();
  assert.ok(text.endsWith('# EOF\n'));
  assert.match(text, /^# TYPE http_requests counter$/m);
  assert.match(text, /^# UNIT http_request_duration_seconds seconds$/m);
  assert.match(text, /^http_requests_total\{/m);
  assert.doesNotMatch(text, /^# TYPE \S+_total counter$/m);
  const plain = await (await fetch(`${url}/metrics`, { headers: { accept: 'text/plain' } })).text();
  assert.ok(!plain.includes('# EOF'));
});

test('one prom-client registry serves both, no family twice', async () => {
  const registry = new promClient.Registry();
  promClient.collectDefaultMetrics({ register: registry });
  new promClient.Counter({ name: 'app_jobs_total', help: 'Jobs.', registers: [registry] });
  const added = rc.registerWith(registry);
  assert.ok(added.includes('http_requests_total') && added.includes('circuit_breaker_state'));
  assert.ok(!added.some((n) => n.startsWith('process_') || n.startsWith('nodejs_')), 'process families left to prom-client');
  const text = await registry.metrics();
  const names = [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]);
  assert.equal(new Set(names).size, names.length, `duplicates: ${names.filter((n, i) => names.indexOf(n) !== i)}`);
  for (const n of ['app_jobs_total', 'process_cpu_seconds_total', 'nodejs_heap_size_used_bytes', 'http_requests_total', 'circuit_breaker_calls_total', 'http_request_duration_seconds']) {
    assert.ok(names.includes(n), `${n} in the merged /metrics`);
  }
  assert.match(text, /http_request_duration_seconds_bucket\{[^}]*le="\+Inf"[^}]*route="\/ok\/:id"[^}]*\} 5\n/);
  // promtool's only complaints are about prom-client's own gauges named *_total.
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  const problems = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.trim() !== '');
  assert.deepEqual(problems.filter((l) => !/^nodejs_active_(handles|requests|resources)_total non-counter/.test(l)), []);
  assert.throws(() => rc.registerWith({}), TypeError);
});

test('bad configuration throws naming the field', () => {
  assert.throws(() => rc.configurePrometheus({ prefix: '9bad' }), (e) => e instanceof RangeError && /prefix/.test(e.message));
  assert.throws(() => rc.configurePrometheus({ processMetrics: 'yes' }), (e) => e instanceof TypeError && /processMetrics/.test(e.message));
  rc.configurePrometheus({ prefix: 'app_' });
  assert.match(rc.getPrometheusMetrics(), /^app_process_cpu_seconds_total \d/m);
  // prom-client's two gauges named *_total (promtool warns about them) only on request.
  assert.doesNotMatch(rc.getPrometheusMetrics(), /^app_nodejs_active_handles_total /m);
  rc.configurePrometheus({ activeTotals: true });
  assert.match(rc.getPrometheusMetrics(), /^nodejs_active_handles_total \d+$/m);
  assert.match(rc.getPrometheusMetrics(), /^nodejs_active_requests_total \d+$/m);
  rc.configurePrometheus({});
});
