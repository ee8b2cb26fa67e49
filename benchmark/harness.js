'use strict';
// Shared by load.js and soak.js: the server under test in its own process.
const { fork } = require('node:child_process');
const path = require('node:path');

/** Starts load-server.js in `mode`; resolves with `{ child, port }` once it listens. */
function startServer(mode, env = {}) {
  return new Promise((resolve, reject) => {
    const child = fork(path.join(__dirname, 'load-server.js'), [mode], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'], env: { ...process.env, ...env }, execArgv: ['--expose-gc'] });
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${mode}: no PORT line`)), 15_000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = /PORT (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]) });
      }
    });
  });
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

module.exports = { startServer, ask, stop };
