'use strict';
// createGracefulShutdown (dist/entries/health-gates.js) in a child process
// (fixtures/shutdown-server.js, Express 5): SIGTERM turns readiness 503
// first, in-flight requests finish, new connections are refused once the
// listener closes, and the process exits by itself (0 when drained, 1 when
// the drain timed out). Every wait is bounded; children are SIGKILLed in after().
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

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Rejects if `p` has not settled within `ms` (the timer is cleared either way, so it never holds the process). */
function within(p, ms, what) {
  let timer;
  return Promise.race([p, new Promise((_, rej) => (timer = setTimeout(() => rej(new Error(`${what}: not within ${ms} ms`)), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}

/** Starts the fixture; resolves once it prints PORT. `waitFor(re, ms)` waits for a line of its output. */
function start(env = {}) {
  const child = spawn(process.execPath, [SERVER], { env: { ...process.env, NODE_TEST_CONTEXT: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  const listeners = new Set();
  const exited = new Promise((r) =>
    child.once('exit', (code, signal) => {
      children.delete(child);
      r(code ?? signal);
    }),
  );
  const onData = (d) => {
    out += d;
    for (const l of listeners) l();
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const waitFor = (re, ms) =>
    within(
      new Promise((resolve) => {
        const check = () => {
          const m = re.exec(out);
          if (m) {
            listeners.delete(check);
            resolve(m);
          }
        };
        listeners.add(check);
        check();
      }),
      ms,
      `output ${re}`,
    ).catch((e) => {
      throw new Error(`${e.message}; output so far:\n${out}`);
    });
  return waitFor(/PORT (\d+)/, 10_000).then((m) => ({ child, port: Number(m[1]), exited, waitFor, out: () => out }));
}

/** One request on its own connection (agent: false, no keep-alive pool): { status, body, connection } or { error }. */
function get(port, p, agent = false) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, agent }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        let parsed = body;
        try {
          parsed = body ? JSON.parse(body) : null;
        } catch {}
        resolve({ status: res.statusCode, body: parsed, connection: res.headers.connection });
      });
      res.on('error', (error) => resolve({ error }));
      res.on('aborted', () => resolve({ error: new Error('response aborted') }));
    });
    req.on('error', (error) => resolve({ error }));
    req.setTimeout(12_000, () => req.destroy(new Error('client timeout')));
  });
}

test('SIGTERM: 503 during the delay, in-flight request completes, hook runs, exit 0 by itself', { timeout: 15_000 }, async () => {
  const s = await start({ DELAY: '400', DRAIN: '3000' });
  const before = await get(s.port, '/health/ready');
  assert.equal(before.status, 200, 'ready before the signal (no gates registered)');
  const slow = get(s.port, '/slow?ms=800');
  await s.waitFor(/SLOW 800/, 3000); // the request is in flight on the server
  s.child.kill('SIGTERM');
  await s.waitFor(/\[Shutdown\] SIGTERM: readiness now 503/, 2000);
  const ready = await get(s.port, '/health/ready');
  assert.equal(ready.status, 503, `not ready while shutting down: ${ready.error?.message ?? ''}`);
  assert.equal(ready.body.status, 'shutting-down');
  assert.equal(ready.body.ready, false);
  const live = await get(s.port, '/health/live');
  assert.equal(live.status, 200, `still live during the delay: ${live.error?.message ?? ''}`);
  const r = await within(slow, 3000, 'slow request');
  assert.equal(r.status, 200, `the in-flight request finished: ${r.error?.message ?? ''}`);
  assert.deepEqual(r.body, { ok: true, ms: 800 });
  const code = await within(s.exited, 5000, 'exit');
  assert.equal(code, 0);
  assert.match(s.out(), /^HOOK$/m);
  assert.match(s.out(), /drained: true/);
});

test('drain timeout: a request still running is cut and the process exits 1', { timeout: 15_000 }, async () => {
  const s = await start({ DELAY: '100', DRAIN: '300' });
  const stuck = get(s.port, '/slow?ms=10000');
  await s.waitFor(/SLOW 10000/, 3000);
  const t0 = Date.now();
  s.child.kill('SIGTERM');
  const code = await within(s.exited, 2000, 'exit');
  assert.equal(code, 1, 'exit code 1: not drained');
  assert.ok(Date.now() - t0 < 2000, `bounded by delay + drain timeout (${Date.now() - t0} ms)`);
  const r = await within(stuck, 2000, 'stuck request settles');
  assert.ok(r.error || r.status !== 200, `the stuck request was cut (got ${JSON.stringify(r.status)})`);
  assert.match(s.out(), /still running after 300 ms/);
  assert.match(s.out(), /^HOOK$/m, 'onShutdown still runs after a drain timeout');
});

test('after the delay the listener is closed: new connections are refused while in-flight work finishes', { timeout: 15_000 }, async () => {
  const s = await start({ DELAY: '200', DRAIN: '3000' });
  let slowDone = false;
  const slow = get(s.port, '/slow?ms=1500').finally(() => (slowDone = true));
  await s.waitFor(/SLOW 1500/, 3000);
  s.child.kill('SIGTERM');
  await s.waitFor(/\[Shutdown\] SIGTERM/, 2000);
  // Poll with fresh connections until one is refused (the listener closes ~200 ms after the signal).
  let fresh;
  const deadline = Date.now() + 1000;
  do {
    await sleep(50);
    fresh = await get(s.port, '/health/live');
  } while (!fresh.error && Date.now() < deadline);
  assert.ok(fresh.error, `a new connection after close is refused (last answer ${JSON.stringify(fresh.status)})`);
  assert.match(fresh.error.code ?? fresh.error.message, /ECONNREFUSED|ECONNRESET/);
  assert.equal(slowDone, false, 'the slow request was still in flight when new connections were refused');
  const r = await within(slow, 3000, 'slow request');
  assert.equal(r.status, 200, `the in-flight request finished: ${r.error?.message ?? ''}`);
  assert.equal(await within(s.exited, 5000, 'exit'), 0);
});

// Known bug (reported, not fixed here): lib/express/health.ts sets
// `Connection: close` only on requests that *arrive* after the signal, so a
// keep-alive response that was in flight at SIGTERM says keep-alive, the
// client reuses the socket, and closeAllConnections() resets its next request.
test('keep-alive: a response in flight at SIGTERM carries Connection: close', { timeout: 15_000 }, async () => {
  const s = await start({ DELAY: '100', DRAIN: '3000' });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const slow = get(s.port, '/slow?ms=500', agent);
    await s.waitFor(/SLOW 500/, 3000);
    s.child.kill('SIGTERM');
    const r = await within(slow, 3000, 'slow request');
    assert.equal(r.status, 200);
    assert.equal(r.connection, 'close');
  } finally {
    agent.destroy();
    await within(s.exited, 5000, 'exit').catch(() => {});
  }
});
