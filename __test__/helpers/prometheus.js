'use strict';
/**
 * A real Prometheus for tests (Debian's `prometheus`, which `npm test`
 * installs): started on a free 127.0.0.1 port with a 1 s scrape of one
 * target, ready when `/-/ready` answers. The caller kills the child.
 *
 *   const prom = await startPrometheus({ dir, target: '127.0.0.1:3000', job: 'demo' });
 */
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');

/** A TCP port free on 127.0.0.1 right now. */
function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

/** Polls `pred` every `everyMs` until it gives a truthy value; fails after `ms`. */
async function until(what, pred, ms, everyMs = 100) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await pred().catch(() => null);
    if (v) return v;
    if (Date.now() > end) assert.fail(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * Starts `prometheus` scraping `target` every second as job `job`, its files
 * in `dir`; `flags` are added to its command line. Returns `{ child, url }`
 * once it is ready.
 */
async function startPrometheus({ dir, target, job, flags = [] }) {
  const port = await freePort();
  const config = path.join(dir, 'prometheus.yml');
  fs.writeFileSync(config, [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 1s',
    'scrape_configs:',
    `  - job_name: ${job}`,
    '    metrics_path: /metrics',
    '    static_configs:',
    `      - targets: ['${target}']`,
    '',
  ].join('\n'));
  const child = spawn('prometheus', [
    `--config.file=${config}`,
    `--storage.tsdb.path=${path.join(dir, 'tsdb')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    ...flags,
    '--log.level=warn',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err = (err + d).slice(-4000)));
  const url = `http://127.0.0.1:${port}`;
  try {
    await until('prometheus ready', async () => (await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(5000) })).status === 200, 15_000);
  } catch (e) {
    child.kill('SIGKILL');
    throw new Error(`${e.message}: ${err}`);
  }
  return { child, url };
}

module.exports = { freePort, until, startPrometheus };
