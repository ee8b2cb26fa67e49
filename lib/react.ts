type Props = { apiBase?: string; pollMs?: number; readToken?: string; fetchImpl?: typeof fetch };

/**
 * `OpsDashboard`: a React component for apps with a React client, fed by the
 * same endpoint as the bundled page (`/api/observability/summary`). It
 * renders the golden signals, breakers, health gates, rollouts, watchdogs
 * and the ops state as cards and tables; for charts, embed the bundled page
 * (`/api/observability/dashboard/`). React is the app's own (a peer, loaded
 * lazily), so importing this package never requires it.
 *
 *   import { OpsDashboard } from '@dreamnet/reliability-core/react';
 *   <OpsDashboard apiBase="/api/observability" pollMs={5000} readToken={token} />
 */
export function OpsDashboard(props: Props): unknown {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const React = require('react');
  const h = React.createElement;
  const [data, setData] = React.useState(null as any);
  const [error, setError] = React.useState(null as string | null);
  const apiBase = (props.apiBase ?? '/api/observability').replace(/\/$/, '');
  const pollMs = props.pollMs ?? 5000;
  React.useEffect(() => {
    let alive = true;
    // The browser's timers (a number there, an object under Node): this runs in
    // the app's client bundle or jsdom, where `node:timers` does not exist, and
    // it never unrefs, so either kind works.
    let timer: ReturnType<typeof globalThis.setTimeout> | undefined;
    const f = props.fetchImpl ?? fetch;
    const poll = async () => {
      try {
        const res = await f(`${apiBase}/summary`, { headers: props.readToken ? { authorization: `Bearer ${props.readToken}` } : {}, cache: 'no-store' });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        const json = await res.json();
        if (alive) {
          setData(json);
          setError(null);
        }
      } catch (e) {
        if (alive) setError((e as Error).message);
      } finally {
        if (alive) timer = globalThis.setTimeout(() => void poll(), pollMs);
      }
    };
    void poll();
    return () => {
      alive = false;
      if (timer !== undefined) globalThis.clearTimeout(timer);
    };
  }, [apiBase, pollMs, props.readToken]);

  if (!data) return h('div', { className: 'ops-dashboard loading' }, error ? `Ops dashboard: ${error}` : 'Loading ops dashboard…');
  const g = data.goldenSignals;
  const m = g?.traffic.windows['1m'];
  const card = (title: string, value: string, sub: string) => h('div', { className: 'ops-card', key: title }, h('h3', null, title), h('strong', null, value), h('div', null, sub));
  const table = (title: string, head: string[], rows: string[][]) =>
    h('section', { key: title }, h('h3', null, title), h('table', null, h('thead', null, h('tr', null, head.map((c) => h('th', { key: c }, c)))), h('tbody', null, rows.map((r, i) => h('tr', { key: i }, r.map((c, j) => h('td', { key: j }, c)))))));
  return h(
    'div',
    { className: 'ops-dashboard' },
    error ? h('div', { className: 'ops-stale', role: 'alert' }, `Stale: ${error}`) : null,
    g &&
      h(
        'div',
        { className: 'ops-cards' },
        card('Traffic', `${m.requestsPerSecond.toFixed(2)} req/s`, `${m.requests} in the last minute`),
        card('Errors', `${(100 * g.errors.windows['1m'].errorRate).toFixed(2)} %`, `${g.errors.windows['1m'].status5xx} 5xx`),
        card('Latency p95', `${g.latency.windows['1m'].p95.toFixed(1)} ms`, `p99 ${g.latency.windows['1m'].p99.toFixed(1)} ms`),
        card('Saturation', `${g.saturation.activeConnections} in flight`, `queue ${g.saturation.queueDepth}`),
      ),
    data.circuitBreakers && table('Circuit breakers', ['Name', 'State', 'Failures'], data.circuitBreakers.breakers.map((b: any) => [b.name, b.state, String(b.failureCount)])),
    data.healthGates && table(`Health gates (${data.healthGates.ready ? 'ready' : 'not ready'})`, ['Gate', 'State', 'Reason'], data.healthGates.gates.map((x: any) => [x.name, x.ready ? 'ready' : 'not ready', x.reason ?? ''])),
    data.rollouts && table('Rollouts', ['Rollout', '%', 'Phase', 'Verdict'], data.rollouts.rollouts.map((r: any) => [r.name, String(r.status.percentage), r.status.phase, r.status.verdict])),
    data.watchdogs && table('Watchdogs', ['Watchdog', 'State', 'Value'], data.watchdogs.watchdogs.map((w: any) => [w.name, w.state, w.value.toFixed(1)])),
    data.ops && table('Ops', ['Control', 'State'], [['Safe mode', data.ops.safeMode ? 'on' : 'off'], ['Brownout', data.ops.brownout ? `level ${data.ops.brownout.level}` : 'off'], ['Quarantined', data.ops.quarantined.map((q: any) => q.agentId).join(', ') || 'none']]),
  );
}
