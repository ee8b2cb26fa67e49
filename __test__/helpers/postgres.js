'use strict';
/**
 * A throwaway PostgreSQL server for tests.
 *
 * `startPostgres()` runs `initdb` in a fresh temporary folder and starts
 * `postgres` on 127.0.0.1 on a free port (unix socket in the same folder,
 * trust authentication, fsync off). When the test process is root, both run
 * as the unprivileged `postgres` user created by Debian's package (Node's
 * spawn `uid`/`gid`, which also drops supplementary groups, like
 * `runuser -u postgres --`) and the folder is chowned to it; otherwise they
 * run as the current user.
 *
 * The returned object can `stop()` the server and `start()` it again on the
 * same port and data folder (to test an outage), and `cleanup()` kills it
 * and removes the folder. Cleanup also runs on process exit, so a failing
 * test never leaves a server or a folder behind. Every wait is bounded.
 *
 * Run `sh scripts/ensure-test-servers.sh` first (npm test does) to install
 * the `postgresql` package if it is missing; without it this throws, never skips.
 */
const { spawn, spawnSync, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;

function findBinDir() {
  const base = '/usr/lib/postgresql';
  let versions = [];
  try {
    versions = fs.readdirSync(base).filter((v) => fs.existsSync(path.join(base, v, 'bin', 'initdb')));
  } catch {
    // no postgresql at all
  }
  versions.sort((a, b) => Number(b) - Number(a));
  if (versions.length === 0) {
    throw new Error('PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): run `sh scripts/ensure-test-servers.sh` (npm test does)');
  }
  return path.join(base, versions[0], 'bin');
}

/** uid/gid to run the server as: the `postgres` user when we are root, else ourselves. */
function serverUser() {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return null;
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  if (!Number.isInteger(uid) || uid === 0) throw new Error('the postgres system user is missing (install the postgresql package)');
  return { uid, gid };
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const done = (ok) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(500, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/**
 * Where the data folder goes: os.tmpdir(), unless the server runs as another
 * user who could not reach it (e.g. TMPDIR under /root), then /tmp.
 */
function tempBase(user) {
  const base = os.tmpdir();
  if (!user) return base;
  for (let d = path.resolve(base); ; d = path.dirname(d)) {
    if ((fs.statSync(d).mode & 0o001) === 0) return '/tmp';
    if (d === path.dirname(d)) return base;
  }
}

const live = new Set();
process.on('exit', () => {
  for (const pg of live) pg.cleanupSync();
});

/**
 * Starts a server. Resolves `{ port, host, dir, connectionString, config,
 * start(), stop(), cleanup(), log() }`; `config` is a node-postgres config.
 */
async function startPostgres({ database = 'postgres' } = {}) {
  const bin = findBinDir();
  const user = serverUser();
  const dir = fs.mkdtempSync(path.join(tempBase(user), 'rc-pg-'));
  const data = path.join(dir, 'data');
  const logFile = path.join(dir, 'server.log');
  const opts = user ? { uid: user.uid, gid: user.gid } : {};
  if (user) fs.chownSync(dir, user.uid, user.gid);
  const env = { ...process.env, LC_ALL: 'C', LANG: 'C', HOME: dir, PGDATA: data };
  delete env.PGHOST;
  delete env.PGPORT;

  let child = null;
  let exited = null;
  const handle = {
    host: '127.0.0.1',
    port: 0,
    dir,
    running: false,
    get connectionString() {
      return `postgres://postgres@127.0.0.1:${handle.port}/${database}`;
    },
    get config() {
      return { host: '127.0.0.1', port: handle.port, user: 'postgres', database };
    },
    /** The server's own log (for assertion messages). */
    log() {
      try {
        return fs.readFileSync(logFile, 'utf8').slice(-4000);
      } catch {
        return '';
      }
    },
    async start() {
      if (handle.running) return;
      const out = fs.openSync(logFile, 'a');
      if (user) fs.fchownSync(out, user.uid, user.gid);
      child = spawn(
        path.join(bin, 'postgres'),
        ['-D', data, '-p', String(handle.port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off',
          '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'max_connections=40', '-c', 'shared_buffers=16MB'],
        { ...opts, env, stdio: ['ignore', out, out] },
      );
      fs.closeSync(out);
      exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
      let gone = null;
      exited.then((r) => {
        gone = r;
      });
      handle.running = true;
      const deadline = Date.now() + START_TIMEOUT_MS;
      while (Date.now() < deadline) {
        if (gone) break;
        if (await canConnect(handle.port)) {
          // The port accepts before recovery finishes; wait until a login works.
          const r = spawnSync(path.join(bin, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(handle.port), '-U', 'postgres', '-t', '2'], { env, timeout: 5000 });
          if (r.status === 0) return;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      const why = gone ? `exited (${gone.code ?? gone.signal})` : `not ready after ${START_TIMEOUT_MS} ms`;
      await handle.stop().catch(() => undefined);
      throw new Error(`postgres ${why}\n${handle.log()}`);
    },
    /** Fast shutdown (SIGINT: clients are disconnected), waiting for the process to exit. */
    async stop() {
      if (!child || !handle.running) return;
      const c = child;
      handle.running = false;
      if (c.exitCode === null && c.signalCode === null) {
        c.kill('SIGINT');
        const timer = setTimeout(() => c.kill('SIGKILL'), STOP_TIMEOUT_MS);
        await exited;
        clearTimeout(timer);
      }
      child = null;
    },
    async cleanup() {
      await handle.stop().catch(() => undefined);
      handle.cleanupSync();
    },
    cleanupSync() {
      live.delete(handle);
      if (child && child.exitCode === null && child.signalCode === null) {
        try {
          child.kill('SIGKILL');
        } catch {
          // already gone
        }
      }
      // Children the server forked die with the postmaster; the folder can go.
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  live.add(handle);

  try {
    const init = spawnSync(
      path.join(bin, 'initdb'),
      ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C'],
      { ...opts, env, encoding: 'utf8', timeout: 60_000 },
    );
    if (init.status !== 0) throw new Error(`initdb failed (${init.status ?? init.signal}): ${init.error?.message ?? ''}\n${init.stdout}\n${init.stderr}`);
    handle.port = await freePort();
    await handle.start();
  } catch (err) {
    handle.cleanupSync();
    throw err;
  }
  return handle;
}

module.exports = { startPostgres };
