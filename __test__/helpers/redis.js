'use strict';
// A real redis-server on 127.0.0.1 (Debian's package; `npm test` installs it
// when missing) and instances of __test__/fixtures/cluster-server.js sharing
// it, for the Redis tests. Everything started is tracked, so `killAll()`
// in `after` leaves no process behind.
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const net = require('node:net');
const path = require('node:path');

const children = new Set();

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

/** Starts redis-server (no persistence: a restart comes back empty) and waits until it accepts connections. */
async function startRedis(port, dir) {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  for (let i = 0; i < 100 && !/Ready to accept connections/.test(out); i++) await new Promise((r) => setTimeout(r, 50));
  assert.match(out, /Ready to accept connections/, 'redis-server started');
  return child;
}

/** SIGKILLs redis-server and waits for it to be gone. */
async function killRedis(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

/**
 * Starts one cluster-server.js instance; resolves with its child process,
 * URL and (with `captureStderr`) a getter of what it wrote to stderr.
 */
function startInstance(name, { redisPort, stateFile, token, env = {}, captureStderr = false }) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(__dirname, '..', 'fixtures', 'cluster-server.js')], {
      env: { ...process.env, NODE_TEST_CONTEXT: '', REDIS_URL: `redis://127.0.0.1:${redisPort}`, INSTANCE: name, STATE_FILE: stateFile, OPS_TOKEN: token, ...env },
      stdio: ['ignore', 'pipe', captureStderr ? 'pipe' : 'inherit'],
    });
    children.add(child);
    child.once('exit', () => children.delete(child));
    let out = '';
    let err = '';
    if (captureStderr) child.stderr.on('data', (d) => (err += d));
    const t = setTimeout(() => reject(new Error(`${name} did not start`)), 10_000);
    child.once('exit', (code, sig) => {
      clearTimeout(t);
      reject(new Error(`${name} exited before it started (${code ?? sig}): ${err.slice(-2000)}`));
    });
    child.stdout.on('data', (d) => {
      out += d;
      const m = /PORT (\d+)/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve({ child, url: `http://127.0.0.1:${m[1]}`, stderr: () => err });
      }
    });
  });
}

function killAll() {
  for (const c of children) c.kill('SIGKILL');
}

const req = async (url, init) => {
  const r = await fetch(url, { signal: AbortSignal.timeout(5000), ...init });
  return { status: r.status, body: await r.json().catch(() => null) };
};

const post = (url, body, token, method = 'POST') =>
  req(url, { method, headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) });

/** Polls `pred` every 50 ms for at most `ms`; true as soon as it holds. */
async function until(pred, ms = 3000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

module.exports = { freePort, startRedis, killRedis, startInstance, killAll, req, post, until };
