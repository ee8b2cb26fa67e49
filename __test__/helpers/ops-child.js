// @ts-check
'use strict';
// The ops fixture server (fixtures/ops-server.js) and the real
// `incident-response` CLI as child processes, for the ops tests. Every child
// is tracked and killed by `killAll()` (call it in `after`).
const { spawn, execFile } = require('node:child_process');
const path = require('node:path');

const CLI = path.join(__dirname, '..', '..', 'dist', 'cli', 'incident-response.js');
const SERVER = path.join(__dirname, '..', 'fixtures', 'ops-server.js');
const children = new Set();

/** The environment without RELIABILITY_* (and the test runner's context), plus `extra`. */
function cleanEnv(extra) {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('RELIABILITY_') || k === 'NODE_TEST_CONTEXT') delete env[k];
  return { ...env, ...extra };
}

/** Starts the fixture server on `stateFile`; resolves with its child, URL and logs once it listens. */
function startServer(stateFile, extra = {}, ms = 10_000) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SERVER], { env: cleanEnv({ RELIABILITY_STATE_FILE: stateFile, ...extra }), stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`server did not start within ${ms} ms: ${out} ${err}`)), ms);
    child.stdout.on('data', (d) => {
      out += d;
      const m = /PORT (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: `http://127.0.0.1:${m[1]}`, logs: () => out + err });
      }
    });
    child.stderr.on('data', (d) => (err += d));
    child.once('exit', () => children.delete(child));
  });
}

async function stop(s) {
  const exited = new Promise((r) => s.child.once('exit', r));
  s.child.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
}

/** Runs the CLI; resolves with its exit code and output (never rejects). */
function cli(args, env = {}, cwd = undefined) {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: cleanEnv(env), timeout: 20_000, cwd }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

function killAll() {
  for (const c of children) c.kill('SIGKILL');
}

module.exports = { cleanEnv, startServer, stop, cli, killAll };
