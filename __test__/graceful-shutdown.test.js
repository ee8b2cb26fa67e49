'use strict';
// Graceful shutdown in a child process: SIGTERM turns readiness 503 first,
// in-flight requests finish, new connections are refused after the delay,
// and the process exits by itself (0 when drained, 1 when the drain timed out).
const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const http = require('node:http');
const path = require('node:path');

const SERVER = path.join(__dirname, 'fixtures', 'shutdown-server.js');
const children = new Set();
after(() => {
  for (const c of children) c.kill('SIGKILL');
});

function start(env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SERVER], { env: { ...process.env, NODE_TEST_CONTEXT: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no PORT line: ${out}`)), 10_000);
    const exited = new Promise((r) => child.once('exit', (code) => (children.delete(child), r(code))));
    child.stderr.on('data', (d) => (out += d));
    child.stdout.on('data', (d) => {
      out += d;
      const m = /PORT (\d+)/.exec(out);
      if (m && timer) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]), exited, out: () => out });
      }
    });
  });
}

/** A request on its own connection (no keep-alive pool), resolving to { status, body } or { error }. */
function get(port, p) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, body: body ? JSON.parse(body) : null, connection: res.headers.connection }));
      res.on('error', (error) => resolve({ error }));
    });
    req.on('error', (error) => resolve({ error }));
    req.setTimeout(15_000, () => req.destroy(new Error('client timeout')));
  });
}

const within = (p, ms, what) => Promise.race([p, new Promise((_, rej) => setTimeout(() => rej(new Error(`${what}: not within ${ms} ms`)), ms))]);

test('SIGTERM: 503 during the delay, in-flight request completes, hook runs, exit 0 by itself', { timeout: 20_000 }, async () => {
  const s = await start({ DELAY: '400', DRAIN: '3000' });
  assert.equal((await get(s.port, '/health/ready')).status, 200);
  const slow = get(s.port, '/slow?ms=900');
  await new Promise((r) => setTimeout(r, 50));
  s.child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 100));
  const ready = await get(s.port, '/health/ready');
  assert.equal(ready.status, 503);
  assert.equal(ready.body.status, 'shutting-down');
  const live = await get(s.port, '/health/live');
  assert.equal(live.status, 200, `still alive while draining: ${live.error?.message}`);
  const r = await slow;
  assert.equal(r.status, 200, 'the in-flight request finished');
  assert.equal(r.connection, 'close', 'answers during shutdown close their connection');
  const code = await within(s.exited, 5000, 'exit');
  assert.equal(code, 0);
  assert.match(s.out(), /HOOK/);
  assert.match(s.out(), /drained: true/);
});

test('after the delay the listener is closed: new connections are refused while in-flight work finishes', { timeout: 20_000 }, async () => {
  const s = await start({ DELAY: '200', DRAIN: '3000' });
  const slow = get(s.port, '/slow?ms=1200');
  await new Promise((r) => setTimeout(r, 50));
  s.child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 500));
  const fresh = await get(s.port, '/health/live');
  assert.ok(fresh.error, `a new connection after close is refused (got ${JSON.stringify(fresh.status)})`);
  assert.match(fresh.error.code ?? fresh.error.message, /ECONNREFUSED|ECONNRESET/);
  assert.equal((await slow).status, 200);
  assert.equal(await within(s.exited, 5000, 'exit'), 0);
});

test('drain timeout: a request still running is cut and the process exits 1', { timeout: 20_000 }, async () => {
  const s = await start({ DELAY: '100', DRAIN: '300' });
  const stuck = get(s.port, '/slow?ms=10000');
  await new Promise((r) => setTimeout(r, 50));
  const t0 = Date.now();
  s.child.kill('SIGTERM');
  const code = await within(s.exited, 4000, 'exit');
  assert.equal(code, 1);
  assert.ok(Date.now() - t0 < 3000, 'bounded by delay + drain timeout');
  const r = await stuck;
  assert.ok(r.error || r.status !== 200, 'the stuck request did not get a 200');
  assert.match(s.out(), /still running after 300 ms/);
});
