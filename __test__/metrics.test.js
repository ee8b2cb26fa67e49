'use strict';
// Golden-signal metrics without HTTP: the store is driven through
// `seriesIdFor` + `recordRequest`, loaded through the package's own export
// (`@dreamnet/reliability-core/metrics`, resolved by self-reference).
//
// Options that must be set before anything records (maxSeries, buckets) are
// exercised in short-lived child processes, so this file keeps the defaults.
const { test, describe, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const parsePrometheus = require('parse-prometheus-text-format');
const hdr = require('hdr-histogram-js');

const metrics = require('@dreamnet/reliability-core/metrics');

const {
  recordRequest,
  seriesIdFor,
  getGoldenSignals,
  getEndpointMetrics,
  resetMetrics,
  configureMetrics,
  getPrometheusMetrics,
  exportLatencyHistogram,
  getMetricsDiagnostics,
  registerQueueDepth,
} = metrics;

const PKG_ROOT = path.join(__dirname, '..');
const CHILD_TIMEOUT_MS = 10_000;

/** `actual` within `rel` (relative) of the closed range [lo, hi]. */
function near(actual, lo, hi, rel, what) {
  assert.equal(typeof actual, 'number', `${what}: not a number (${actual})`);
  assert.ok(actual >= lo * (1 - rel) && actual <= hi * (1 + rel), `${what}: ${actual} outside [${lo}, ${hi}] ± ${rel * 100}%`);
}

/** Nearest-rank percentile of sorted values, and the next rank (HDR may land on either). */
function rankRange(sorted, q) {
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return [sorted[rank - 1], sorted[Math.min(rank, sorted.length - 1)]];
}

/** Runs `script` in a fresh node (cwd = package root, so the self-reference resolves); returns its JSON stdout. */
function runChild(script) {
  const r = spawnSync(process.execPath, ['-e', script], { cwd: PKG_ROOT, timeout: CHILD_TIMEOUT_MS, encoding: 'utf8' });
  assert.equal(r.error, undefined, `child failed to run: ${r.error}`);
  assert.equal(r.status, 0, `child exited with ${r.status} (signal ${r.signal})\nstderr:\n${r.stderr}\nstdout:\n${r.stdout}`);
  return JSON.parse(r.stdout);
}

/** Every non-comment line is `name{labels} value`: the real parser below is lenient, so check the grammar too. */
function assertWellFormed(text) {
  assert.ok(text.endsWith('\n'), 'exposition ends with a newline');
  const sample = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*\})? (-?[0-9.]+(e[+-]?[0-9]+)?|[+-]Inf|NaN)$/;
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    assert.match(line, sample, `malformed exposition line: ${JSON.stringify(line)}`);
  }
}

/** Parsed families by name (each name once). */
function families(text) {
  assertWellFormed(text);
  const parsed = parsePrometheus(text);
  const byName = new Map();
  for (const f of parsed) {
    assert.ok(!byName.has(f.name), `family ${f.name} appears twice (split up)`);
    byName.set(f.name, f);
  }
  return byName;
}

/**
 * One series of the duration histogram, through the real parser. The parser
 * flattens a labelled histogram into a single object keyed by `le` (so
 * several series would overwrite each other, and `_sum`/`_count` with
 * labels are dropped): feed it only this series' lines, its labels removed.
 */
function durationSeries(text, method, route) {
  const prefix = `method="${method}",route="${route}"`;
  const lines = text
    .split('\n')
    .filter((l) => l.startsWith('http_request_duration_seconds_') && l.includes(`{${prefix}`))
    .map((l) => l.replace(`{${prefix},`, '{').replace(`{${prefix}}`, ''));
  assert.ok(lines.length > 0, `no duration histogram lines for ${method} ${route}`);
  const parsed = parsePrometheus(`# TYPE http_request_duration_seconds histogram\n${lines.join('\n')}\n`);
  assert.equal(parsed.length, 1);
  assert.equal(parsed[0].type, 'HISTOGRAM');
  assert.equal(parsed[0].metrics.length, 1);
  const m = parsed[0].metrics[0];
  const buckets = Object.entries(m.buckets)
    .map(([le, v]) => [le, Number(v)])
    .sort((a, b) => (a[0] === '+Inf' ? Infinity : Number(a[0])) - (b[0] === '+Inf' ? Infinity : Number(b[0])));
  return { buckets, count: Number(m.count), sum: Number(m.sum) };
}

function assertCumulative(buckets, what) {
  for (let i = 1; i < buckets.length; i++) {
    assert.ok(buckets[i][1] >= buckets[i - 1][1], `${what}: buckets not cumulative at le=${buckets[i][0]}: ${JSON.stringify(buckets)}`);
  }
  assert.equal(buckets[buckets.length - 1][0], '+Inf', `${what}: last bucket is +Inf`);
}

beforeEach(() => resetMetrics());

describe('spec vector (original semantics)', () => {
  test('ten requests on /a (404, 404, 503, 7×200) and one 500 on /b', () => {
    const a = seriesIdFor('GET', '/a');
    const b = seriesIdFor('GET', '/b');
    assert.equal(seriesIdFor('GET', '/a'), a, 'interning is stable');
    assert.notEqual(a, b);
    for (const status of [404, 404, 503, 200, 200, 200, 200, 200, 200, 200]) recordRequest(a, status, 12);
    recordRequest(b, 500, 30);

    const before = Date.now();
    const g = getGoldenSignals();
    const after = Date.now();
    assert.deepEqual(Object.keys(g).sort(), ['errors', 'latency', 'saturation', 'traffic']);

    assert.equal(g.errors.errorRate, 4 / 11);
    assert.equal(g.errors.status4xx, 2);
    assert.equal(g.errors.status5xx, 2);
    assert.equal(g.traffic.requestsPerSecond, 11 / 60);
    assert.equal(g.traffic.totalRequests, 11);
    assert.equal(g.traffic.aborted, 0);
    assert.equal(g.traffic.activeConnections, 0);
    assert.deepEqual(Object.keys(g.traffic.windows).sort(), ['10s', '1m', '5m', 'all']);
    for (const w of ['10s', '1m', '5m', 'all']) {
      assert.equal(g.traffic.windows[w].requests, 11, `traffic.windows.${w}.requests`);
      assert.equal(g.errors.windows[w].status4xx, 2, `errors.windows.${w}.status4xx`);
      assert.equal(g.errors.windows[w].status5xx, 2, `errors.windows.${w}.status5xx`);
      assert.equal(g.errors.windows[w].errorRate, 4 / 11, `errors.windows.${w}.errorRate`);
      assert.ok(g.latency.windows[w], `latency.windows.${w}`);
    }
    near(g.latency.p50, 12, 12, 0.001, 'latency.p50');
    near(g.latency.max, 30, 30, 0.001, 'latency.max');

    const ts = g.traffic.timestamp;
    assert.ok(Number.isFinite(ts) && ts >= before && ts <= after, `timestamp ${ts} is Date.now() at the read`);
    for (const section of ['traffic', 'errors', 'latency', 'saturation']) {
      assert.equal(g[section].timestamp, ts, `${section}.timestamp is the shared one`);
    }

    const ea = getEndpointMetrics('/a');
    assert.ok(ea, "getEndpointMetrics('/a')");
    assert.equal(ea.count, 10);
    assert.equal(ea.errorRate, 0.3);
    assert.equal(ea.status4xx, 2);
    assert.equal(ea.status5xx, 1);
    assert.equal(ea.aborted, 0);
    near(ea.p50, 12, 12, 0.001, '/a p50');
    near(ea.p99, 12, 12, 0.001, '/a p99');
    assert.deepEqual(getEndpointMetrics('GET /a'), ea, "'GET /a' and '/a' agree when GET is the only method");
    assert.equal(getEndpointMetrics('POST /a'), null);
    const eb = getEndpointMetrics('/b');
    assert.equal(eb.count, 1);
    assert.equal(eb.errorRate, 1);
    assert.equal(eb.status5xx, 1);
    assert.equal(getEndpointMetrics('/nope'), null);

    resetMetrics();
    const z = getGoldenSignals();
    assert.equal(z.errors.errorRate, 0);
    assert.equal(z.errors.status4xx, 0);
    assert.equal(z.errors.status5xx, 0);
    assert.equal(z.traffic.requestsPerSecond, 0);
    assert.equal(z.traffic.totalRequests, 0);
    assert.equal(z.traffic.aborted, 0);
    for (const k of ['p50', 'p95', 'p99', 'p90', 'p999', 'max', 'mean']) assert.equal(z.latency[k], 0, `latency.${k} after reset`);
    for (const w of ['10s', '1m', '5m', 'all']) assert.equal(z.traffic.windows[w].requests, 0, `windows.${w} after reset`);
    assert.equal(getEndpointMetrics('/a'), null);
    assert.equal(getEndpointMetrics('/b'), null);
    // Ids stay valid across a reset.
    recordRequest(a, 201, 5);
    assert.equal(getEndpointMetrics('/a').count, 1);
  });

  test('status -1 counts as aborted: not a completed request, not an error', () => {
    const id = seriesIdFor('GET', '/aborts');
    recordRequest(id, -1, 40);
    recordRequest(id, 200, 10);
    const g = getGoldenSignals();
    assert.equal(g.traffic.aborted, 1);
    assert.equal(g.traffic.totalRequests, 1);
    assert.equal(g.errors.errorRate, 0);
    const e = getEndpointMetrics('GET /aborts');
    assert.equal(e.count, 1);
    assert.equal(e.aborted, 1);
  });

  test('endpoint by route pools every method; by "METHOD route" only that one', () => {
    const get = seriesIdFor('GET', '/multi/:id');
    const post = seriesIdFor('POST', '/multi/:id');
    assert.notEqual(get, post);
    recordRequest(get, 200, 1);
    recordRequest(get, 200, 1);
    recordRequest(post, 422, 1);
    assert.equal(getEndpointMetrics('/multi/:id').count, 3);
    assert.equal(getEndpointMetrics('/multi/:id').status4xx, 1);
    assert.equal(getEndpointMetrics('GET /multi/:id').count, 2);
    assert.equal(getEndpointMetrics('POST /multi/:id').errorRate, 1);
    assert.throws(() => exportLatencyHistogram('/multi/:id'), RangeError, 'export needs one series');
  });
});

describe('percentiles', () => {
  test('1..1000 ms: all-time within 0.1 %, 1 min window within 1 %', () => {
    const id = seriesIdFor('GET', '/pct');
    const values = [];
    for (let ms = 1; ms <= 1000; ms++) values.push(ms);
    // Shuffled order, so nothing depends on arrival order.
    const order = values.slice();
    for (let i = order.length - 1; i > 0; i--) {
      const j = (i * 7919) % (i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
    for (const ms of order) recordRequest(id, 200, ms);

    const g = getGoldenSignals();
    const e = getEndpointMetrics('GET /pct');
    assert.equal(e.count, 1000);
    for (const [q, key] of [
      [0.5, 'p50'],
      [0.9, 'p90'],
      [0.95, 'p95'],
      [0.99, 'p99'],
      [0.999, 'p999'],
    ]) {
      const [lo, hi] = rankRange(values, q);
      // Every reported quantile is within 1 % of the exact one (schema-6 buckets, midpoints within 0.55 %).
      near(g.latency[key], lo, hi, 0.01, `golden latency.${key}`);
      near(e.latency[key], lo, hi, 0.01, `endpoint latency.${key}`);
      if (e[key] !== undefined) near(e[key], lo, hi, 0.01, `endpoint ${key}`);
      near(g.latency.windows['1m'][key], lo, hi, 0.01, `golden latency.windows['1m'].${key}`);
      near(e.windows['1m'].latency[key], lo, hi, 0.01, `endpoint windows['1m'].latency.${key}`);
      near(g.latency.windows['10s'][key], lo, hi, 0.01, `golden latency.windows['10s'].${key}`);
    }
    near(g.latency.max, 1000, 1000, 0.001, 'max');
    near(g.latency.mean, 500.5, 500.5, 0.001, 'mean');
    assert.equal(g.latency.windows.all.count, 1000);
    assert.equal(g.latency.windows['1m'].count, 1000);
    near(g.latency.windows['1m'].min, 1, 1, 0.01, "windows['1m'].min");
  });

  test('getLatencyPercentiles: one window for every route in one call, agreeing with getEndpointMetrics', () => {
    const a = seriesIdFor('GET', '/lp-a');
    const b = seriesIdFor('POST', '/lp-b');
    for (let ms = 1; ms <= 200; ms++) recordRequest(a, 200, ms);
    for (let i = 0; i < 10; i++) recordRequest(b, 201, 40);
    for (const w of ['10s', '1m', '5m', 'all']) {
      const rows = metrics.getLatencyPercentiles(w);
      const ra = rows.find((r) => r.method === 'GET' && r.route === '/lp-a');
      const rb = rows.find((r) => r.method === 'POST' && r.route === '/lp-b');
      assert.equal(ra.requests, 200, w);
      assert.equal(ra.latency.count, 200, w);
      assert.deepEqual(ra.latency, w === 'all' ? getEndpointMetrics('GET /lp-a').latency : getEndpointMetrics('GET /lp-a').windows[w].latency, w);
      near(ra.latency.mean, 100.5, 100.5, 0.001, `${w} mean is exact`);
      near(rb.latency.p99, 40, 40, 0.01, `${w} p99`);
    }
    assert.throws(() => metrics.getLatencyPercentiles('1h'), (e) => e instanceof RangeError && /^window must be/.test(e.message));
  });

  test('sub-millisecond and zero durations are kept', () => {
    const id = seriesIdFor('GET', '/fast');
    for (let i = 0; i < 100; i++) recordRequest(id, 200, 0.25);
    recordRequest(id, 200, 0);
    const e = getEndpointMetrics('GET /fast');
    assert.equal(e.count, 101);
    near(e.p50, 0.25, 0.25, 0.001, 'p50 of 250 µs');
  });
});

describe('cardinality cap (child process: maxSeries must be set before anything records)', () => {
  test('maxSeries 5, 20 routes: 5 series of their own, the rest in `other`', () => {
    const out = runChild(`
      const m = require('@dreamnet/reliability-core/metrics');
      m.configureMetrics({ maxSeries: 5 });
      const ids = [];
      for (let i = 0; i < 20; i++) {
        const id = m.seriesIdFor('GET', '/r' + i);
        ids.push(id);
        m.recordRequest(id, 200, 1 + i);
      }
      // A known key past the cap still gets its own series.
      m.recordRequest(m.seriesIdFor('GET', '/r0'), 200, 1);
      const ep = (e) => { const x = m.getEndpointMetrics(e); return x && { count: x.count }; };
      console.log(JSON.stringify({
        ids,
        again: m.seriesIdFor('GET', '/r19'),
        other: ep('other'),
        r0: ep('/r0'), r4: ep('/r4'), r5: ep('/r5'), r19: ep('GET /r19'),
        total: m.getGoldenSignals().traffic.totalRequests,
        diag: m.getMetricsDiagnostics(),
        prom: m.getPrometheusMetrics(),
      }));
    `);
    assert.equal(new Set(out.ids).size, 6, `ids: ${out.ids}`);
    assert.equal(new Set(out.ids.slice(0, 5)).size, 5, 'the first five routes get series of their own');
    const other = out.ids[5];
    assert.ok(out.ids.slice(5).every((id) => id === other), 'routes past the cap share one id');
    assert.ok(!out.ids.slice(0, 5).includes(other));
    assert.equal(out.again, other);
    assert.deepEqual(out.other, { count: 15 });
    assert.deepEqual(out.r0, { count: 2 });
    assert.deepEqual(out.r4, { count: 1 });
    assert.equal(out.r5, null);
    assert.equal(out.r19, null);
    assert.equal(out.total, 21);
    assert.ok(out.diag.seriesOverflow >= 15, `seriesOverflow ${out.diag.seriesOverflow}`);
    assert.equal(out.diag.series, 7, 'five series plus unmatched and other');
    const fams = families(out.prom);
    const routes = new Set(fams.get('http_requests_total').metrics.map((s) => s.labels.route));
    // `unmatched` is always exposed (zeros from the start); `other` once it has traffic.
    assert.deepEqual([...routes].sort(), ['/r0', '/r1', '/r2', '/r3', '/r4', 'other', 'unmatched']);
  });
});

describe('bad input never throws', () => {
  test('durations, statuses and ids that cannot be recorded are counted, not recorded', () => {
    const id = seriesIdFor('GET', '/bad');
    const d0 = getMetricsDiagnostics();
    for (const ms of [NaN, -1, -0.001, Infinity, -Infinity]) assert.doesNotThrow(() => recordRequest(id, 200, ms), `duration ${ms}`);
    for (const status of [42, 700, NaN, 99, 600]) assert.doesNotThrow(() => recordRequest(id, status, 5), `status ${status}`);
    assert.doesNotThrow(() => recordRequest(99999, 200, 5));
    const d = getMetricsDiagnostics();
    assert.equal(d.invalidDuration - d0.invalidDuration, 5, 'invalidDuration');
    assert.equal(d.invalidStatus - d0.invalidStatus, 5, 'invalidStatus');
    assert.equal(d.unknownId - d0.unknownId, 1, 'unknownId');
    const g = getGoldenSignals();
    assert.equal(g.traffic.totalRequests, 0);
    assert.equal(g.traffic.aborted, 0);
    assert.equal(g.errors.status4xx + g.errors.status5xx, 0);
    assert.equal(getEndpointMetrics('/bad'), null);
    for (const k of ['p50', 'max', 'mean']) assert.equal(g.latency[k], 0, `latency.${k}`);
    // Good input after bad still records.
    recordRequest(id, 200, 5);
    assert.equal(getEndpointMetrics('/bad').count, 1);
  });

  test('an oversized route goes to `other` and is counted as invalidRoute', () => {
    const d0 = getMetricsDiagnostics();
    let id;
    assert.doesNotThrow(() => (id = seriesIdFor('GET', '/x'.repeat(1000))));
    assert.equal(typeof id, 'number');
    recordRequest(id, 200, 3);
    const d = getMetricsDiagnostics();
    assert.equal(d.invalidRoute - d0.invalidRoute, 1, 'invalidRoute');
    assert.equal(getEndpointMetrics('other').count, 1);
    assert.equal(getEndpointMetrics('/x'.repeat(1000)), null);
    assert.ok(!getPrometheusMetrics().includes('/x/x/x/x'), 'the raw route is never a label');
  });

  test('configureMetrics: RangeError / TypeError naming the field', () => {
    assert.throws(() => configureMetrics({ maxSeries: -1 }), (e) => e instanceof RangeError && /maxSeries/.test(e.message));
    assert.throws(() => configureMetrics({ maxSeries: 1.5 }), (e) => e instanceof RangeError && /maxSeries/.test(e.message));
    assert.throws(() => configureMetrics({ buckets: [1, 0.5] }), (e) => e instanceof RangeError && /buckets/.test(e.message));
    assert.throws(() => configureMetrics({ buckets: [0.1, 0.1] }), (e) => e instanceof RangeError && /buckets/.test(e.message));
    assert.throws(() => configureMetrics({ buckets: [0, 1] }), (e) => e instanceof RangeError && /buckets/.test(e.message));
    assert.throws(() => configureMetrics({ buckets: 'x' }), (e) => e instanceof TypeError && /buckets/.test(e.message));
    assert.throws(() => configureMetrics({ buckets: [0.1, '1'] }), (e) => e instanceof TypeError && /buckets/.test(e.message));
    assert.throws(() => configureMetrics({ maxSeries: '5' }), (e) => e instanceof TypeError && /maxSeries/.test(e.message));
    // The store still works after refused options.
    recordRequest(seriesIdFor('GET', '/after-bad-options'), 200, 1);
    assert.equal(getEndpointMetrics('/after-bad-options').count, 1);
  });

  test('configureMetrics after requests were recorded is refused (no figure silently lost)', () => {
    recordRequest(seriesIdFor('GET', '/recorded'), 200, 1);
    assert.throws(() => configureMetrics({ maxSeries: 10 }), RangeError);
    assert.equal(getEndpointMetrics('/recorded').count, 1);
  });

  test('reads with bad arguments throw, but with a clear error', () => {
    assert.throws(() => getEndpointMetrics(42), TypeError);
    assert.throws(() => exportLatencyHistogram('GET /nope'), RangeError);
    assert.throws(() => exportLatencyHistogram(undefined, '2h'), (e) => e instanceof RangeError && /window/.test(e.message));
  });
});

describe('HDR export interop (hdr-histogram-js)', () => {
  test('one series decodes to the same count and p50 within 0.1 %', () => {
    const id = seriesIdFor('GET', '/a');
    const other = seriesIdFor('GET', '/b');
    const values = [];
    for (let i = 0; i < 500; i++) {
      const ms = 0.5 + ((i * 37) % 250) * 1.3;
      values.push(ms);
      recordRequest(id, i % 10 === 0 ? 500 : 200, ms);
    }
    for (let i = 0; i < 50; i++) recordRequest(other, 200, 2000);
    const e = getEndpointMetrics('GET /a');
    const b64 = exportLatencyHistogram('GET /a');
    assert.equal(typeof b64, 'string');
    assert.match(b64, /^[A-Za-z0-9+/]+=*$/, 'standard base64');
    const h = hdr.decodeFromCompressedBase64(b64);
    try {
      assert.equal(h.totalCount, 500);
      assert.equal(h.totalCount, e.count);
      // Exported values are microseconds.
      near(h.getValueAtPercentile(50) / 1000, e.p50, e.p50, 0.01, 'decoded p50 vs getEndpointMetrics p50');
      near(h.getValueAtPercentile(99) / 1000, e.p99, e.p99, 0.01, 'decoded p99 vs getEndpointMetrics p99');
      const sorted = values.slice().sort((x, y) => x - y);
      const [lo, hi] = rankRange(sorted, 0.5);
      near(h.getValueAtPercentile(50) / 1000, lo, hi, 0.01, 'decoded p50 vs exact');
      near(h.maxValue / 1000, sorted[sorted.length - 1], sorted[sorted.length - 1], 0.01, 'decoded max');
    } finally {
      h.destroy?.();
    }

    // Pooled (no endpoint) and a window decode too, and hold every request.
    const pooled = hdr.decodeFromCompressedBase64(exportLatencyHistogram());
    assert.equal(pooled.totalCount, 550);
    near(pooled.maxValue / 1000, 2000, 2000, 0.01, 'pooled max');
    pooled.destroy?.();
    const win = hdr.decodeFromCompressedBase64(exportLatencyHistogram('GET /a', '1m'));
    assert.equal(win.totalCount, 500);
    near(win.getValueAtPercentile(50) / 1000, lo50(values), hi50(values), 0.01, "'1m' window p50");
    win.destroy?.();
  });

  test('an empty series exports an empty histogram', () => {
    seriesIdFor('GET', '/empty-export');
    const h = hdr.decodeFromCompressedBase64(exportLatencyHistogram('GET /empty-export'));
    assert.equal(h.totalCount, 0);
    h.destroy?.();
  });
});

function lo50(values) {
  return rankRange(values.slice().sort((x, y) => x - y), 0.5)[0];
}
function hi50(values) {
  return rankRange(values.slice().sort((x, y) => x - y), 0.5)[1];
}

describe('Prometheus exposition (parse-prometheus-text-format)', () => {
  const DEFAULT_LE = ['0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '+Inf'];

  test('families, labels, cumulative histogram whose +Inf equals _count', () => {
    const a = seriesIdFor('GET', '/a');
    const b = seriesIdFor('POST', '/b');
    const ms = [3, 7, 20, 60, 200, 700, 3000];
    const statuses = [200, 200, 404, 200, 500, 503, 200];
    ms.forEach((d, i) => recordRequest(a, statuses[i], d));
    recordRequest(b, 201, 1);
    recordRequest(b, -1, 1);
    recordRequest(0 /* unmatched */, 404, 2);

    const text = getPrometheusMetrics();
    const fams = families(text);
    for (const [name, type] of [
      ['http_requests_total', 'COUNTER'],
      ['http_request_duration_seconds', 'HISTOGRAM'],
      ['http_requests_in_flight', 'GAUGE'],
    ]) {
      assert.ok(fams.has(name), `family ${name} present; got ${[...fams.keys()]}`);
      assert.equal(fams.get(name).type, type, `${name} type`);
      assert.ok(fams.get(name).help.length > 0, `${name} has HELP`);
    }

    const total = fams.get('http_requests_total').metrics;
    for (const s of total) assert.deepEqual(Object.keys(s.labels).sort(), ['method', 'route', 'status_class']);
    const count = (method, route, cls) =>
      Number(total.find((s) => s.labels.method === method && s.labels.route === route && s.labels.status_class === cls)?.value ?? 0);
    assert.equal(count('GET', '/a', '2xx'), 4);
    assert.equal(count('GET', '/a', '4xx'), 1);
    assert.equal(count('GET', '/a', '5xx'), 2);
    assert.equal(count('POST', '/b', '2xx'), 1);
    assert.equal(count('*', 'unmatched', '4xx'), 1);
    assert.equal(total.reduce((n, s) => n + Number(s.value), 0), 9, 'aborted requests are not completed requests');

    const inflight = fams.get('http_requests_in_flight').metrics;
    assert.equal(inflight.length, 1);
    assert.equal(inflight[0].value, '0');

    const ab = fams.get('http_requests_aborted_total');
    assert.equal(ab?.type, 'COUNTER');
    // Every exposed series has its aborted count, zeros included.
    const aborted = new Map(ab.metrics.map((s) => [`${s.labels.method} ${s.labels.route}`, s.value]));
    assert.equal(aborted.get('POST /b'), '1');
    assert.equal(aborted.get('GET /a'), '0');
    assert.equal(aborted.get('* unmatched'), '0');
    assert.ok(ab.metrics.every((s) => s.value === '0' || s.labels.route === '/b'), JSON.stringify(ab.metrics));

    const h = durationSeries(text, 'GET', '/a');
    assertCumulative(h.buckets, 'GET /a');
    assert.deepEqual(h.buckets.map(([le]) => le), DEFAULT_LE);
    assert.deepEqual(
      h.buckets.map(([, v]) => v),
      [1, 2, 3, 3, 4, 5, 5, 6, 6, 7, 7, 7],
      `GET /a buckets ${JSON.stringify(h.buckets)}`,
    );
    assert.equal(h.count, 7);
    assert.equal(h.buckets.at(-1)[1], h.count, '+Inf equals _count');
    near(h.sum, 3.99, 3.99, 0.001, '_sum in seconds');

    const hb = durationSeries(text, 'POST', '/b');
    assertCumulative(hb.buckets, 'POST /b');
    assert.equal(hb.count, 1, 'aborted requests are not in the duration histogram');
    assert.equal(hb.buckets.at(-1)[1], hb.count);
    const hu = durationSeries(text, '*', 'unmatched');
    assert.equal(hu.count, 1);
  });

  test('after reset the families are still there: counters at 0 (a reset, not gone), no histogram samples', () => {
    recordRequest(seriesIdFor('GET', '/a'), 200, 1);
    resetMetrics();
    const fams = families(getPrometheusMetrics());
    assert.ok(fams.has('http_requests_in_flight'));
    assert.equal(fams.get('http_requests_in_flight').metrics[0].value, '0');
    // resetMetrics() resets the HTTP families; the others (process, breakers...) are not its.
    for (const f of [...fams.values()].filter((x) => x.name.startsWith('http_'))) {
      if (f.type === 'COUNTER') {
        assert.ok(f.metrics.length > 0, `${f.name} keeps its zero samples`);
        assert.ok(f.metrics.every((m) => m.value === '0'), `${f.name} is 0 after reset`);
      } else if (f.type === 'HISTOGRAM') assert.deepEqual(f.metrics, [], `${f.name} has no samples after reset`);
    }
  });

  test('custom buckets (child process: buckets must be set before anything records)', () => {
    const out = runChild(`
      const m = require('@dreamnet/reliability-core/metrics');
      m.configureMetrics({ buckets: [0.05, 0.2, 1] });
      const id = m.seriesIdFor('GET', '/custom');
      for (const ms of [10, 50, 60, 150, 199, 800, 5000]) m.recordRequest(id, 200, ms);
      console.log(JSON.stringify({ prom: m.getPrometheusMetrics() }));
    `);
    const fams = families(out.prom);
    assert.equal(fams.get('http_request_duration_seconds').type, 'HISTOGRAM');
    const h = durationSeries(out.prom, 'GET', '/custom');
    assertCumulative(h.buckets, 'GET /custom');
    assert.deepEqual(h.buckets, [
      ['0.05', 2],
      ['0.2', 5],
      ['1', 6],
      ['+Inf', 7],
    ]);
    assert.equal(h.count, 7);
  });
});

describe('saturation', () => {
  test('registerQueueDepth adds to saturation.queueDepth; unregister removes it', () => {
    assert.equal(getGoldenSignals().saturation.queueDepth, 0);
    const off = registerQueueDepth('jobs', () => 7);
    let s = getGoldenSignals().saturation;
    assert.equal(s.queueDepth, 7);
    assert.equal(s.queues.jobs, 7);
    const off2 = registerQueueDepth('mail', () => 3);
    const off3 = registerQueueDepth('broken', () => {
      throw new Error('queue gone');
    });
    s = getGoldenSignals().saturation;
    assert.equal(s.queueDepth, 10, 'a throwing source counts 0 and does not break the read');
    off();
    off2();
    off3();
    s = getGoldenSignals().saturation;
    assert.equal(s.queueDepth, 0);
    assert.deepEqual(s.queues, {});
    assert.throws(() => registerQueueDepth('x', 5), TypeError);
  });

  test('process figures are real numbers', () => {
    const s = getGoldenSignals().saturation;
    assert.ok(s.memory.rss > 0 && s.memory.heapUsed > 0);
    assert.ok(s.cpu.user >= 0 && s.cpu.system >= 0);
    assert.ok(Number.isFinite(s.cpuPercent) && s.cpuPercent >= 0);
    assert.ok(s.eventLoopUtilization >= 0 && s.eventLoopUtilization <= 1, `ELU ${s.eventLoopUtilization}`);
    for (const k of ['mean', 'p50', 'p99', 'max']) assert.ok(Number.isFinite(s.eventLoopDelay[k]) && s.eventLoopDelay[k] >= 0, `eventLoopDelay.${k}`);
    assert.equal(s.activeConnections, 0);
    assert.equal(typeof s.openSockets, 'number');
  });
});

describe('process lifetime', () => {
  test('the flush timer is unref\'d: a process that records and is done exits by itself', () => {
    const script = `
      const m = require('@dreamnet/reliability-core/metrics');
      const id = m.seriesIdFor('GET', '/x');
      for (let i = 0; i < 10; i++) m.recordRequest(id, 200, 3);
      m.getGoldenSignals();
      m.recordRequest(id, 500, 3);
      process.stdout.write(String(m.getEndpointMetrics('GET /x').count));
    `;
    const t0 = Date.now();
    const res = spawnSync(process.execPath, ['-e', script], { cwd: PKG_ROOT, timeout: 10_000, encoding: 'utf8' });
    assert.equal(res.status, 0, res.stderr);
    assert.equal(res.stdout, '11');
    assert.ok(Date.now() - t0 < 5_000);
  });
});


describe('saturation', () => {
  const spin = (ms) => {
    const end = performance.now() + ms;
    while (performance.now() < end);
  };
  test('reading the golden signals does not move the CPU baseline: two reads see the same cpuPercent and utilisation', async () => {
    getGoldenSignals(); // starts the sampler if nothing has yet
    // Let at least one sampling period close, with some CPU work in it.
    const until = performance.now() + 1_500;
    while (performance.now() < until) {
      spin(20);
      await new Promise((r) => setTimeout(r, 50));
    }
    const a = getGoldenSignals().saturation;
    spin(50); // CPU spent between the reads: a read that reset the baseline would report it next
    const b = getGoldenSignals().saturation;
    assert.ok(a.cpuPercent > 0, `cpuPercent ${a.cpuPercent}`);
    assert.equal(b.cpuPercent, a.cpuPercent);
    assert.equal(b.eventLoopUtilization, a.eventLoopUtilization);
    // Cumulative usage is still read live.
    assert.ok(b.cpu.user + b.cpu.system >= a.cpu.user + a.cpu.system);
  });
});

describe('MetricsBinding (one per wrapper copy, sharing the thread store)', () => {
  test('collected bindings leave the shared store and the live rings intact', () => {
    const script = `
      const n = require('./index.js');
      const len = 1 + 3 * n.metricsRingCap();
      const live = new n.MetricsBinding(new Float64Array(len), 0);
      (() => {
        for (let i = 0; i < 300; i++) {
          const r = new Float64Array(len);
          const m = new n.MetricsBinding(r, 0);
          r[1] = m.intern('GET', '/gone'); r[2] = 200; r[3] = 1000; r[0] = 1;
          n.metricsDrain(0);
        }
      })();
      (async () => {
        for (let k = 0; k < 5; k++) { global.gc(); await new Promise((res) => setImmediate(res)); }
        const ring = new Float64Array(len);
        const live2 = new n.MetricsBinding(ring, 0);
        const id = live.intern('GET', '/live');
        for (let i = 0; i < 5; i++) { ring[1 + 3 * i] = id; ring[2 + 3 * i] = 200; ring[3 + 3 * i] = 2000; }
        ring[0] = 5;
        const mine = live.windows([id], 1)[3].requests;
        const gone = live2.windows([live.lookup('GET', '/gone')], 1)[3].requests;
        console.log(JSON.stringify({ mine, gone, unknownId: live.diagnostics(1).unknownId }));
      })();`;
    const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], { cwd: PKG_ROOT, timeout: CHILD_TIMEOUT_MS, encoding: 'utf8' });
    assert.equal(r.status, 0, `child exited with ${r.status} (signal ${r.signal})\n${r.stderr}`);
    // Another binding's ring is drained by any binding's read; figures of collected ones stay.
    assert.deepEqual(JSON.parse(r.stdout), { mine: 5, gone: 300, unknownId: 0 });
  });

  test('a ring shorter than 1 + 3 * metricsRingCap() is refused naming it', () => {
    const n = require(path.join(PKG_ROOT, 'index.js'));
    assert.throws(() => new n.MetricsBinding(new Float64Array(4), 0), (e) => e instanceof RangeError && /metrics ring/.test(e.message));
  });
});
