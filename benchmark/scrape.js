'use strict';
/**
 * `/metrics` cost with 100 routes and every family (issue 21): 100 routes
 * with traffic, 20 breakers, 3 rollouts, 5 health gates, 10 watchdogs and
 * the Node process families; times `scrapeMetrics()` (text 0.0.4 and
 * OpenMetrics) in process, median and p99 of 500 scrapes after warm-up.
 *   node benchmark/scrape.js
 */
const rc = require('..');

async function main() {
  for (let r = 0; r < 100; r++) {
    const id = rc.seriesIdFor('GET', `/api/r${r}/:id`);
    for (let i = 0; i < 200; i++) rc.recordRequest(id, i % 17 === 0 ? 503 : 200, 1 + ((i * 37) % 500));
  }
  const reg = rc.getCircuitBreakerRegistry();
  for (let b = 0; b < 20; b++) {
    const br = reg.get(`dep-${b}`);
    for (let i = 0; i < 20; i++) await br.execute(async () => i).catch(() => {});
  }
  const ts = rc.getTrafficShaping();
  for (let i = 0; i < 3; i++) ts.startRollout(`ro-${i}`, { percentage: 10 * (i + 1) });
  const gates = rc.getHealthGates();
  for (let i = 0; i < 5; i++) gates.register({ serviceId: `svc-${i}`, name: `svc ${i}`, critical: i === 0, check: async () => true });
  const w = rc.getWatchdogs();
  for (let i = 0; i < 10; i++) w.gauge(`g-${i}`, { warn: 10, critical: 20 }).set(i);
  const time = (accept) => {
    for (let i = 0; i < 100; i++) rc.scrapeMetrics(accept);
    const t = [];
    let bytes = 0;
    for (let i = 0; i < 500; i++) {
      const t0 = process.hrtime.bigint();
      bytes = rc.scrapeMetrics(accept).body.length;
      t.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    t.sort((a, b) => a - b);
    return { median_ms: +t[250].toFixed(3), p99_ms: +t[495].toFixed(3), bytes };
  };
  const text = time('');
  const om = time('application/openmetrics-text');
  console.log(JSON.stringify({ routes: 100, breakers: 20, rollouts: 3, gates: 5, watchdogs: 10, text, openmetrics: om }));
  process.exit(0);
}
main();
