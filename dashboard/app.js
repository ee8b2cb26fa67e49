// The ops dashboard: polls /api/observability/summary (one request per poll)
// and renders cards, uPlot charts and tables. Tokens live in this page's
// memory only (never in storage, never in the URL).
(() => {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const el = (tag, props = {}, text) => {
    const e = document.createElement(tag);
    Object.assign(e, props);
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  };
  const fmt = (v, digits = 1) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits));
  const ago = (ms) => {
    if (!ms) return '–';
    const s = Math.max(0, (Date.now() - ms) / 1000);
    return s < 90 ? `${s.toFixed(0)} s` : s < 5400 ? `${(s / 60).toFixed(0)} min` : `${(s / 3600).toFixed(1)} h`;
  };

  let config = { apiBase: '../', opsPath: '/api/ops', pollMs: 5000, points: 120 };
  let readToken = '';
  let opsToken = '';
  let timer = null;
  let lastOk = 0;
  let failures = 0;
  const prev = {};
  const series = { t: [], rps: [], err: [], p50: [], p95: [], p99: [] };
  const charts = {};

  function chart(id, labels, colors) {
    const target = $(id);
    const opts = {
      width: Math.max(280, target.clientWidth || 320),
      height: 160,
      scales: { x: { time: true } },
      axes: [{ stroke: '#8a93a6', grid: { stroke: '#262b36' } }, { stroke: '#8a93a6', grid: { stroke: '#262b36' } }],
      series: [{}, ...labels.map((label, i) => ({ label, stroke: colors[i], width: 2, points: { show: false } }))],
      legend: { show: labels.length > 1 },
    };
    return new uPlot(opts, [[], ...labels.map(() => [])], target);
  }

  function push(t, g) {
    const w1 = g.traffic.windows['1m'];
    const w10 = g.traffic.windows['10s'];
    const lat = g.latency.windows['10s'].count > 0 ? g.latency.windows['10s'] : g.latency.windows['1m'];
    series.t.push(t / 1000);
    series.rps.push(w10.requestsPerSecond ?? w1.requestsPerSecond ?? 0);
    series.err.push(100 * (g.errors.windows['10s'].errorRate ?? 0));
    series.p50.push(lat.p50 ?? 0);
    series.p95.push(lat.p95 ?? 0);
    series.p99.push(lat.p99 ?? 0);
    for (const k of Object.keys(series)) if (series[k].length > config.points) series[k].shift();
  }

  /** After a reload the charts start from the server's 5 min, 1 min and 10 s windows, not empty. */
  function seed(g, now) {
    for (const [w, back] of [['5m', 150_000], ['1m', 30_000]]) {
      const tw = g.traffic.windows[w];
      const lw = g.latency.windows[w];
      if (!tw || tw.requests === 0) continue;
      series.t.push((now - back) / 1000);
      series.rps.push(tw.requestsPerSecond);
      series.err.push(100 * g.errors.windows[w].errorRate);
      series.p50.push(lw.p50);
      series.p95.push(lw.p95);
      series.p99.push(lw.p99);
    }
  }

  function redraw() {
    charts.rps.setData([series.t, series.rps]);
    charts.err.setData([series.t, series.err]);
    charts.lat.setData([series.t, series.p50, series.p95, series.p99]);
  }

  function card(id, value, sub, key, n) {
    const c = $(id);
    const v = c.querySelector('[data-v]');
    v.textContent = value;
    v.className = 'big';
    if (prev[key] !== undefined && n !== prev[key]) v.classList.add(n > prev[key] ? 'trend-up' : 'trend-down');
    prev[key] = n;
    c.querySelector('[data-sub]').textContent = sub;
  }

  function renderCards(g) {
    const w = g.traffic.windows['1m'];
    const e = g.errors.windows['1m'];
    const l = g.latency.windows['1m'];
    const s = g.saturation;
    card('card-traffic', `${fmt(w.requestsPerSecond, 2)} req/s`, `${w.requests} in the last minute · ${g.traffic.totalRequests} total`, 'rps', w.requestsPerSecond);
    card('card-errors', `${fmt(100 * e.errorRate, 2)} %`, `${e.status5xx} 5xx · ${e.status4xx} 4xx in the last minute`, 'err', e.errorRate);
    card('card-latency', `${fmt(l.p95)} ms`, `p50 ${fmt(l.p50)} · p99 ${fmt(l.p99)} ms (1 min)`, 'lat', l.p95);
    card('card-saturation', `${s.activeConnections} in flight`, `event loop ${fmt(s.eventLoopDelay.mean)} ms · heap ${fmt(s.memory.heapUsed / 1048576, 0)} MB · queue ${s.queueDepth}`, 'sat', s.activeConnections);
  }

  function rows(id, list, cells) {
    const t = $(id);
    t.replaceChildren();
    for (const x of list) {
      const tr = el('tr');
      for (const c of cells(x)) tr.append(c instanceof Node ? wrapTd(c) : el('td', {}, c));
      t.append(tr);
    }
  }
  const wrapTd = (node) => {
    const td = el('td');
    td.append(node);
    return td;
  };
  const badge = (cls, text) => el('span', { className: `state ${cls}` }, text);

  function render(s) {
    const g = s.goldenSignals;
    if (g) renderCards(g);
    const hg = s.healthGates;
    if (hg) {
      const r = $('ready');
      r.className = `pill ${hg.shuttingDown ? 'not-ready' : hg.ready ? (hg.degraded ? 'degraded' : 'ready') : 'not-ready'}`;
      r.textContent = hg.shuttingDown ? 'shutting down' : hg.ready ? (hg.degraded ? 'ready (degraded)' : 'ready') : 'not ready';
      rows('gates', hg.gates, (x) => [x.name, x.critical ? 'yes' : 'no', badge(x.ready ? 'ready' : 'not-ready', x.ready ? 'ready' : 'not ready'), `${x.consecutivePasses}/${x.requiredPasses}`, x.reason ?? '']);
    }
    if (s.circuitBreakers) {
      rows('breakers', s.circuitBreakers.breakers, (b) => [
        b.name,
        badge(b.state, b.isolated ? 'open (isolated)' : b.state),
        String(b.failureCount),
        `${fmt(b.window?.failureRate ?? 0, 0)} %`,
        String(b.window?.calls ?? 0),
        ago(b.lastTransitionTime),
      ]);
    }
    if (s.watchdogs) rows('watchdogs', s.watchdogs.watchdogs, (w) => [w.name, badge(w.state, w.state), fmt(w.value)]);
    if (s.rollouts) {
      const list = s.rollouts.rollouts;
      rows('rollouts', list, (r) => {
        const d = r.detail;
        const nw = d.newCohort.windows.find((x) => x.window === 'window');
        const st = d.stableCohort.windows.find((x) => x.window === 'window');
        const burn = d.figures.burnRates.map(([l, sh]) => `${fmt(l)} / ${fmt(sh)}`).join(', ') || '–';
        return [r.name, String(d.percentage), d.steps.length ? `${(d.step ?? 0) + 1} of ${d.steps.length}` : '–', badge(d.phase === 'rolled-back' ? 'breach' : d.phase === 'paused' ? 'paused' : 'ok', d.phase), badge(d.verdict, d.verdict), fmt(100 * (nw?.errorRate ?? 0)), fmt(100 * (st?.errorRate ?? 0)), burn];
      });
      const h = $('history');
      h.replaceChildren();
      const entries = list.flatMap((r) => r.detail.history.map((e) => ({ ...e, name: r.name }))).sort((a, b) => b.at - a.at).slice(0, 30);
      for (const e of entries) h.append(el('li', { className: e.kind }, `${new Date(e.at).toLocaleTimeString()} ${e.name} ${e.kind === 'rollback' ? 'ROLLBACK' : e.kind} ${e.fromPercentage}% → ${e.toPercentage}% ${e.reason}`));
      const sel = $('rolloutSelect');
      const keep = sel.value;
      sel.replaceChildren(...list.map((r) => el('option', { value: r.name }, r.name)));
      if (keep) sel.value = keep;
    }
    if (s.ops) {
      const o = s.ops;
      const box = $('ops');
      box.replaceChildren(
        el('div', {}, `Safe mode: ${o.safeMode ? `ON (${o.safeMode.reason || 'no reason'})` : 'off'}`),
        el('div', {}, `Brownout: ${o.brownout ? `level ${o.brownout.level} (${o.brownout.reason || 'no reason'})` : 'off'}`),
        el('div', {}, `Quarantined agents: ${o.quarantined.length ? o.quarantined.map((q) => q.agentId).join(', ') : 'none'}`),
        el('div', { className: 'muted' }, `Dead-letter queues: ${(o.queues || []).map((q) => `${q.name} (${q.depth ?? '?'})`).join(', ') || 'none'}`),
      );
      const a = $('audit');
      a.replaceChildren(...o.audit.slice().reverse().map((e) => el('li', {}, `${new Date(e.at).toLocaleTimeString()} ${e.action} by ${e.actor} from ${e.source}: ${e.result}`)));
    }
  }

  async function poll() {
    const headers = readToken ? { authorization: `Bearer ${readToken}` } : {};
    try {
      const res = await fetch(new URL('summary', new URL(config.apiBase, location.href)), { headers, cache: 'no-store', signal: AbortSignal.timeout(Math.max(2000, config.pollMs)) });
      if (res.status === 401) {
        $('readTokenBox').hidden = false;
        throw new Error('a read token is needed');
      }
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const s = await res.json();
      const now = Date.now();
      if (series.t.length === 0 && s.goldenSignals) seed(s.goldenSignals, now);
      if (s.goldenSignals) push(now, s.goldenSignals);
      redraw();
      render(s);
      lastOk = now;
      failures = 0;
      const st = $('status');
      st.className = 'muted';
      st.textContent = `updated ${new Date(now).toLocaleTimeString()} · every ${config.pollMs / 1000} s`;
    } catch (e) {
      failures++;
      const st = $('status');
      st.className = 'pill stale';
      st.textContent = `STALE: ${e.message}${lastOk ? ` · last update ${ago(lastOk)} ago` : ''} · retrying`;
    } finally {
      timer = setTimeout(poll, config.pollMs);
    }
  }

  async function act(method, path, body, what) {
    const out = $('actionResult');
    if (!opsToken) {
      out.textContent = 'enter the ops token first';
      return;
    }
    if (!window.confirm(`${what}?`)) return;
    try {
      const res = await fetch(config.opsPath.replace(/\/$/, '') + path, {
        method,
        headers: { authorization: `Bearer ${opsToken}`, 'content-type': 'application/json', 'x-ops-actor': 'dashboard' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const data = await res.json().catch(() => ({}));
      out.textContent = res.ok ? `${what}: ${data.changed === false ? 'unchanged' : 'done'}` : `${what}: refused (${res.status} ${data.message ?? ''})`;
    } catch (e) {
      out.textContent = `${what}: ${e.message}`;
    }
    clearTimeout(timer);
    poll();
  }

  function wire() {
    $('readToken').addEventListener('change', (e) => {
      readToken = e.target.value;
      clearTimeout(timer);
      poll();
    });
    $('opsToken').addEventListener('change', (e) => (opsToken = e.target.value));
    const actions = {
      'safe-on': () => act('POST', '/safe-mode', { enabled: true, reason: 'from the dashboard' }, 'Turn safe mode on'),
      'safe-off': () => act('POST', '/safe-mode', { enabled: false }, 'Turn safe mode off'),
      'brownout-on': () => act('POST', '/brownout', { enabled: true, level: Number($('brownoutLevel').value), reason: 'from the dashboard' }, `Brownout at level ${$('brownoutLevel').value}`),
      'brownout-off': () => act('POST', '/brownout', { enabled: false }, 'Turn brownout off'),
      rollback: () => act('POST', '/rollback', { name: $('rolloutSelect').value, reason: 'from the dashboard' }, `Roll back ${$('rolloutSelect').value}`),
      quarantine: () => act('POST', `/agents/${encodeURIComponent($('agentId').value)}/quarantine`, { reason: 'from the dashboard' }, `Quarantine ${$('agentId').value}`),
      release: () => act('DELETE', `/agents/${encodeURIComponent($('agentId').value)}/quarantine`, undefined, `Release ${$('agentId').value}`),
    };
    for (const b of document.querySelectorAll('[data-action]')) b.addEventListener('click', () => actions[b.dataset.action]());
  }

  async function start() {
    try {
      const res = await fetch('config.json', { cache: 'no-store' });
      if (res.ok) config = { ...config, ...(await res.json()) };
    } catch {
      /* defaults */
    }
    const q = Number(new URLSearchParams(location.search).get('interval'));
    if (q >= 200 && q <= 600_000) config.pollMs = q;
    charts.rps = chart('chart-rps', ['req/s'], ['#5aa9ff']);
    charts.err = chart('chart-errors', ['error %'], ['#ff5c5c']);
    charts.lat = chart('chart-latency', ['p50', 'p95', 'p99'], ['#2ecc71', '#f5b942', '#ff5c5c']);
    wire();
    poll();
  }

  start();
})();
