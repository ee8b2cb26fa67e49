// @ts-check
'use strict';
// Shared by load.js and soak.js: the server under test in its own process.
const { fork, spawn, spawnSync } = require('node:child_process');
const os = require('node:os');
const path = require('node:path');

/**
 * On Linux with 2+ CPUs and `taskset`, the server runs on the last CPU and
 * the load client on CPU 0, so they do not take turns on one core (the
 * biggest source of noise in the CPU-per-request figure). `BENCH_PIN=0` turns
 * it off.
 */
const PIN =
  process.env.BENCH_PIN !== '0' && process.platform === 'linux' && os.cpus().length >= 2 && spawnSync('taskset', ['-c', '0', 'true']).status === 0;
const SERVER_CPU = String(os.cpus().length - 1);

/** `node <script> <args>` with IPC, pinned to `cpu` when pinning is on. */
function nodeChild(script, args, cpu, options) {
  if (!PIN) return fork(script, args, options);
  if (cpu === 'last') cpu = SERVER_CPU;
  const execArgv = options.execArgv ?? [];
  return spawn('taskset', ['-c', cpu, process.execPath, ...execArgv, script, ...args], { ...options, stdio: options.stdio });
}

/** Resolves with the port once `child` prints its `PORT <n>` line; rejects if it exits or stays silent for 15 s. */
function portOf(child, label) {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${label}: no PORT line`)), 15_000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = /PORT (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once('exit', (c) => {
      clearTimeout(timer);
      reject(new Error(`${label}: exited with ${c} before listening`));
    });
  });
}

/**
 * Starts load-server.js in `mode` (options: `execArgv`, default
 * `--expose-gc`; `cwd`); resolves with `{ child, port }` once it listens.
 */
async function startServer(mode, env = {}, options = {}) {
  const child = nodeChild(path.join(__dirname, 'load-server.js'), [mode], SERVER_CPU, {
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    env: { ...process.env, ...env },
    execArgv: options.execArgv ?? ['--expose-gc'],
    cwd: options.cwd,
  });
  return { child, port: await portOf(child, mode) };
}

/** Asks the server process for its figures (`cpu`: CPU, memory and open handles). */
function ask(child, cmd) {
  return new Promise((resolve) => {
    child.once('message', resolve);
    child.send({ cmd });
  });
}

/** SIGTERM, then SIGKILL after 5 s; resolves whether it exited by itself. */
function stop(child) {
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      resolve(false);
    }, 5000);
    child.once('exit', () => {
      clearTimeout(t);
      resolve(true);
    });
    child.kill('SIGTERM');
  });
}

module.exports = { startServer, portOf, ask, stop, nodeChild, PIN };
