'use strict';
/**
 * A real Prometheus (Debian's `prometheus` package; `npm test` installs it
 * when missing) against the demo (demo/server.js) running in a child
 * process on 127.0.0.1:
 *   - a fresh process's /metrics has a sample for every counter family;
 *   - `promtool check metrics` accepts /metrics after traffic of every kind
 *     (2xx, 4xx, 5xx, aborted, breakers, a rollout) without a warning;
 *   - a `prometheus` server scraping the demo every second answers PromQL
 *     by `route` with full route templates, including a route of a router
 *     mounted at /api whose error the app-level error handler answered.
 * Bounded: a fixed number of requests, waits with deadlines; the demo and
 * Prometheus are killed and their temp dirs removed at the end.
 */
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const parsePrometheus = require('parse-prometheus-text-format');
const { until, startPrometheus: startPrometheusAt } = require('./helpers/prometheus');

const FILE_STARTED = performance.now();
const ROOT = path.join(__dirname, '..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rc-prom-'));
const children = new Set();
let demo; // { child, url, port }
let prom; // { child, url }
let freshMetrics = '';

function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

const get = async (url, init) => {
  const r = await fetch(url, { signal: AbortSignal.timeout(5000), ...init });
  return { status: r.status, text: await r.text() };
};

function startDemo() {
  const script = `
    require(${JSON.stringify(path.join(ROOT, 'demo', 'server.js'))})
      .start(0, { opsToken: '5f0c3a9e8b7d6c5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a', tokenFile: ${JSON.stringify(path.join(dir, 'token'))}, stateFile: ${JSON.stringify(path.join(dir, 'ops.json'))}, log: () => {} })
      .then((d) => console.log('URL ' + d.url));`;
  const child = track(spawn(process.execPath, ['-e', script], {
    cwd: ROOT,
    env: { ...process.env, NODE_TEST_CONTEXT: '', REDIS_URL: '', DATABASE_URL: '', OPS_TOKEN: '' },
    stdio: ['ignore', 'pipe', 'inherit'],
  }));
  return new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error('the demo did not start within 10 s')), 10_000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = /URL (http:\/\/127\.0\.0\.1:(\d+))/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve({ child, url: m[1], port: Number(m[2]) });
      }
    });
    child.once('exit', (code) => reject(new Error(`the demo exited with ${code}`)));
  });
}

async function startPrometheus(target) {
  const p = await startPrometheusAt({ dir, target, job: 'demo' });
  track(p.child);
  return p;
}

/** An instant PromQL query; the result vector. */
async function query(q) {
  const r = await get(`${prom.url}/api/v1/query?query=${encodeURIComponent(q)}`);
  assert.equal(r.status, 200, r.text);
  const body = JSON.parse(r.text);
  assert.equal(body.status, 'success', r.text);
  return body.data.result;
}

async function metrics() {
  const r = await get(`${demo.url}/metrics`);
  assert.equal(r.status, 200);
  return r.text;
}

const setDownstream = (settings) =>
  get(`${demo.url}/demo/downstream`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(settings) });

/** Traffic of every kind. Returns how many 5xx the mounted users route answered. */
async function traffic() {
  await setDownstream({ failureRate: 0, latencyMs: 1 });
  for (let i = 0; i < 5; i++) {
    assert.equal((await get(`${demo.url}/api/users/${i}`)).status, 200);
    assert.equal((await get(`${demo.url}/api/inventory`)).status, 200);
    await get(`${demo.url}/api/orders/o-${i}`);
    await get(`${demo.url}/api/recommendations`, { headers: { 'x-user-id': `u${i}` } });
  }
  assert.equal((await get(`${demo.url}/api/users/not-a-number`)).status, 400);
  // An AI call: its latency tracker is a watchdog (watchdog_watched_latency_seconds).
  assert.equal((await get(`${demo.url}/api/ai/embed`, { method: 'POST' })).status, 200);
  // An agent run publishes on the bus: its pending-count gauge is a watchdog (watchdog_value).
  assert.equal((await get(`${demo.url}/api/agents/agent-1/run`, { method: 'POST' })).status, 200);
  assert.equal((await get(`${demo.url}/no/such/route`)).status, 404);
  // The users route fails downstream: the app-level error handler answers (502).
  await setDownstream({ failureRate: 1 });
  let users5xx = 0;
  for (let i = 0; i < 4; i++) {
    const r = await get(`${demo.url}/api/users/${100 + i}`);
    assert.ok(r.status >= 500, `users route answered ${r.status}`);
    users5xx++;
  }
  // Failures through the orders-api breaker (it opens) and a rollout cohort.
  for (let i = 0; i < 8; i++) await get(`${demo.url}/api/orders/f-${i}`);
  for (let i = 0; i < 5; i++) await get(`${demo.url}/api/recommendations`, { headers: { 'x-user-id': `f${i}` } });
  // An aborted request: the client goes away while the downstream is slow.
  await setDownstream({ failureRate: 0, latencyMs: 3000 });
  const ac = new AbortController();
  const pending = fetch(`${demo.url}/api/users/7`, { signal: ac.signal }).catch(() => null);
  await new Promise((r) => setTimeout(r, 200));
  ac.abort();
  await pending;
  await setDownstream({ failureRate: 0, latencyMs: 1 });
  await until('the aborted request is counted', async () => /http_requests_aborted_total\{[^}]*\} [1-9]/.test(await metrics()), 5000);
  return users5xx;
}

let users5xx = 0;

before(async () => {
  demo = await startDemo();
  freshMetrics = await metrics();
  users5xx = await traffic();
  prom = await startPrometheus(`127.0.0.1:${demo.port}`);
});

after(async () => {
  for (const c of children) {
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }
  fs.rmSync(dir, { recursive: true, force: true });
  console.log(`# prometheus.test.js took ${Math.round(performance.now() - FILE_STARTED)} ms`);
});

test("a fresh process's /metrics has a sample for every counter family, zeros included", () => {
  const fams = parsePrometheus(freshMetrics);
  // The process's CPU and the startup health checks count from the start, not from zero.
  const counters = fams.filter((f) => f.type === 'COUNTER' && !f.name.startsWith('process_') && !f.name.startsWith('health_gate_'));
  for (const name of ['http_requests_total', 'http_requests_aborted_total']) {
    assert.ok(counters.some((f) => f.name === name), `${name} is a counter family: ${fams.map((f) => f.name)}`);
  }
  for (const f of counters) {
    assert.ok(f.metrics.length > 0, `${f.name} has a sample from the start`);
    assert.ok(f.metrics.every((m) => Number(m.value) === 0), `${f.name} starts at 0: ${JSON.stringify(f.metrics)}`);
  }
});

test('promtool check metrics accepts /metrics after traffic of every kind, without a warning', async () => {
  const text = await metrics();
  // Every kind of traffic is in there.
  for (const cls of ['2xx', '4xx', '5xx']) assert.match(text, new RegExp(`http_requests_total\\{[^}]*status_class="${cls}"\\} [1-9]`), cls);
  assert.match(text, /http_requests_aborted_total\{[^}]*\} [1-9]/);
  assert.match(text, /route="\/api\/orders\/:id"/);
  assert.match(text, /route="\/api\/recommendations"/);
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 10_000 });
  assert.equal(r.error, undefined, `promtool did not run: ${r.error}`);
  assert.equal(r.status, 0, `promtool exit ${r.status}: ${r.stdout}${r.stderr}`);
  assert.equal((r.stdout + r.stderr).trim(), '', 'no warnings');
});

test('a real Prometheus scrapes the demo every second; counter families have zero samples a rate() can use', async () => {
  // Scraped at least twice after the traffic, so rate() has two points.
  await until('two scrapes of the demo', async () => {
    const up = await query('count_over_time(up{job="demo"}[1m])');
    return up.length === 1 && Number(up[0].value[1]) >= 2;
  }, 15_000);
  const up = await query('up{job="demo"}');
  assert.equal(up[0].value[1], '1', 'target up');
  const inv = await query('sum by (route, status_class) (http_requests_total{route="/api/inventory"})');
  assert.deepEqual(inv.map((s) => [s.metric.status_class, s.value[1]]).sort(), [['1xx', '0'], ['2xx', '5'], ['3xx', '0'], ['4xx', '0'], ['5xx', '0']]);
  // No abort on /api/inventory: its rate is 0, not an empty result.
  const aborted = await query('rate(http_requests_aborted_total{route="/api/inventory"}[1m])');
  assert.equal(aborted.length, 1, JSON.stringify(aborted));
  assert.equal(Number(aborted[0].value[1]), 0);
});

test('PromQL by route returns the full template of a mounted router, with the 5xx its app-level error handler answered', async () => {
  // Wait until Prometheus has every 5xx the demo answered, then look at routes.
  const total5xx = Number((await metrics()).match(/^http_requests_total\{[^}]*status_class="5xx"\} \d+$/gm).map((l) => Number(l.split(' ').pop())).reduce((a, b) => a + b, 0));
  await until('Prometheus has scraped every 5xx', async () => {
    const r = await query('sum(http_requests_total{status_class="5xx"})');
    return r.length === 1 && Number(r[0].value[1]) >= total5xx;
  }, 15_000);
  const byRoute = await query('sum by (route) (http_requests_total{status_class="5xx"})');
  const routes = Object.fromEntries(byRoute.map((s) => [s.metric.route, Number(s.value[1])]));
  assert.equal(routes['/api/users/:id'], users5xx, `5xx by route: ${JSON.stringify(routes)}`);
});

test('every family of every signal is in Prometheus after a scrape', async () => {
  const names = [
    'http_requests_total', 'http_requests_aborted_total', 'http_requests_in_flight', 'http_request_duration_seconds_count',
    'http_requests_refused_total',
    'circuit_breaker_state', 'circuit_breaker_calls_total', 'circuit_breaker_slow_calls_total', 'circuit_breaker_transitions_total',
    'circuit_breaker_call_duration_seconds_bucket', 'circuit_breaker_failure_rate', 'circuit_breaker_slow_call_rate',
    'rollout_percentage', 'rollout_step', 'rollout_phase', 'rollout_verdict', 'rollout_requests_total', 'rollout_errors_total', 'rollout_rollbacks_total',
    'health_gate_ready', 'health_gate_checks_total', 'health_gate_check_failures_total', 'health_ready', 'health_degraded',
    'ops_safe_mode', 'ops_brownout_level', 'ops_quarantined_agents', 'ops_audit_entries_total',
    'watchdog_value', 'watchdog_watched_latency_seconds', 'watchdog_level',
    'process_cpu_user_seconds_total', 'process_cpu_system_seconds_total', 'process_cpu_seconds_total', 'process_start_time_seconds',
    'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_eventloop_lag_min_seconds', 'nodejs_eventloop_lag_max_seconds',
    'nodejs_eventloop_lag_mean_seconds', 'nodejs_eventloop_lag_stddev_seconds', 'nodejs_eventloop_lag_p50_seconds',
    'nodejs_eventloop_lag_p90_seconds', 'nodejs_eventloop_lag_p99_seconds', 'nodejs_active_handles', 'nodejs_heap_size_total_bytes',
    'nodejs_heap_size_used_bytes', 'nodejs_external_memory_bytes', 'nodejs_heap_space_size_total_bytes',
    'nodejs_heap_space_size_used_bytes', 'nodejs_heap_space_size_available_bytes', 'nodejs_version_info',
  ];
  await until('two scrapes of the demo', async () => {
    const up = await query('count_over_time(up{job="demo"}[1m])');
    return up.length === 1 && Number(up[0].value[1]) >= 2;
  }, 15_000);
  await until('the watchdogs scraped', async () => (await query('count(watchdog_level{job="demo"})')).length === 1, 15_000);
  const missing = [];
  for (const n of names) if ((await query(`count(${n}{job="demo"})`)).length === 0) missing.push(n);
  assert.deepEqual(missing, [], 'families without a series in Prometheus');
  // The orders-api breaker opened during the traffic, and PromQL says so.
  const opened = await query('sum(circuit_breaker_transitions_total{job="demo",to="open"})');
  assert.ok(Number(opened[0].value[1]) >= 1, JSON.stringify(opened));
});

test('every PromQL expression of the Grafana dashboard returns data from the real Prometheus', async () => {
  const dash = JSON.parse(fs.readFileSync(path.join(ROOT, 'dashboards', 'reliability-core.json'), 'utf8'));
  const exprs = dash.panels.flatMap((p) => p.targets.map((t) => ({ panel: p.title, expr: t.expr })));
  assert.ok(exprs.length >= 12, `${exprs.length} expressions`);
  // rate() over [5m] needs two scrapes in the range: there are.
  await until('two scrapes of the demo', async () => {
    const up = await query('count_over_time(up{job="demo"}[1m])');
    return up.length === 1 && Number(up[0].value[1]) >= 2;
  }, 15_000);
  const empty = [];
  for (const { panel, expr } of exprs) {
    const q = expr.replaceAll('$job', 'demo');
    const r = await query(q);
    if (r.length === 0 || r.every((s) => s.value[1] === 'NaN')) empty.push(`${panel}: ${q}`);
  }
  assert.deepEqual(empty, [], 'dashboard expressions without data');
});

test('promtool checks the alerting rules and their unit tests pass on fixed series', () => {
  for (const args of [['check', 'rules', 'alerts.yml'], ['test', 'rules', 'alerts.test.yml']]) {
    const r = spawnSync('promtool', args, { cwd: path.join(ROOT, 'dashboards'), encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.error, undefined, String(r.error));
    assert.equal(r.status, 0, `promtool ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  }
});
