/**
 * Express adapters for health gates and the startup DAG: liveness and
 * readiness probes, the observability JSON, and graceful shutdown.
 *
 * Readiness is read from Rust state (no check runs on a probe), so a probe
 * costs one crossing and answers the same however often it is polled.
 */
import { statfsSync } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { setTimeout, clearTimeout } from 'node:timers';
import { isDatabaseConfigured } from '../db-circuit-breaker';
import { getHealthGates, type GateStatus, type HealthGates, type Readiness } from '../health-gates';
import { assertDatabaseHealthy, getLogger, getStartupDAG, reasonOf, type StartupDAG } from '../startup-dag';
import { expressOf } from './express-of';
import type { ExpressModule, ExpressRouter } from './types';
// `Binding` names the binding's types in the emitted .d.ts (why: lib/native.ts).
import type { Binding } from '../native';
import { createAccess } from './auth';
import { ownsPaths, tagRouter } from './endpoints';

type Handler = (req: any, res: any) => void;
type Paths = string | string[] | false;

export interface HealthRouterOptions {
  /** The app's `express` module, where the package cannot find it (default: found from the app). */
  express?: ExpressModule;
  gates?: HealthGates;
  dag?: StartupDAG;
  /** Liveness path(s) (default `/health/live` and the original's `/api/health/live`). */
  livePath?: Paths;
  /** Readiness path(s) (default `/health/ready` and the original's `/api/health/ready`). */
  readyPath?: Paths;
  /** Default `/api/observability/health-gates`. */
  gatesPath?: Paths;
  /** Default `/api/observability/startup-dag`. */
  dagPath?: Paths;
  /**
   * Return false to answer 403 on the observability paths (probes stay
   * open). Without it they follow the one read guard (`configureReadAccess`,
   * `RELIABILITY_READ_TOKEN`), as every router's read endpoints do.
   */
  authorize?: (req: unknown) => boolean;
  /** A read token for the observability paths (default: as every router). */
  readToken?: string;
  /** Readiness also needs `NODE_ENV` set, as the original (default false: `checks.environment` is reported only). */
  requireNodeEnv?: boolean;
}

/**
 * The gates (and DAG) a router serves: the ones given, or the process-wide
 * ones, looked up at each request (resetAll() in tests replaces them). The
 * process-wide gates get their periodic checks started once, by the router
 * that reports them, so `/health/ready` turns ready as soon as the gates
 * pass; without that it answered 503 "not checked yet" until someone called
 * `getHealthGates().start()`. Gates passed in are their owner's to start.
 */
function servedGates(given: HealthGates | undefined): () => HealthGates {
  if (given) return () => given;
  let started: HealthGates | null = null;
  return () => {
    const g = getHealthGates();
    if (g !== started) {
      started = g;
      g.start();
    }
    return g;
  };
}

export interface ReadyHandlerOptions {
  /** Readiness also needs `NODE_ENV` set, as the original (default false: `checks.environment` is reported only). */
  requireNodeEnv?: boolean;
}

type DatabaseCheck = { database: true | false | 'not-configured'; error?: string };

/**
 * The original's `checks.database`: `'not-configured'` without a database
 * and without `DATABASE_URL`; else the `database` gate's last answer when
 * that gate is registered (no query on the probe); else one bounded
 * `SELECT 1`, as the original ran on every probe.
 */
function databaseCheck(gates: GateStatus[]): DatabaseCheck | Promise<DatabaseCheck> {
  if (!isDatabaseConfigured() && !process.env.DATABASE_URL) return { database: 'not-configured' };
  const g = gates.find((x) => x.serviceId === 'database');
  if (g) return g.lastResult === true ? { database: true } : { database: false, error: g.reason ?? 'not checked yet' };
  return assertDatabaseHealthy().then(
    () => ({ database: true as const }),
    (e) => ({ database: false as const, error: reasonOf(e) }),
  );
}

/** The original's `checks.disk`: true when the working directory's file system answers. */
function diskCheck(): true | 'unavailable' {
  try {
    statfsSync(process.cwd());
    return true;
  } catch {
    return 'unavailable';
  }
}

/**
 * `GET /health/live`: 200 while the process serves (as the original's `/api/health/live`).
 *
 *   app.get('/health/live', liveHandler);
 */
export const liveHandler: Handler = (_req, res) => {
  res.status(200).json({ status: 'alive', timestamp: new Date().toISOString(), uptime: process.uptime(), pid: process.pid });
};

/**
 * `GET /health/ready`: 200 when every critical gate is ready and the
 * database answers (or none is configured), else 503 with the failing
 * gates and their reasons. Non-critical failures show as `degraded` and do
 * not fail the probe. `checks` has the original's `database` (`true`,
 * `false` or `'not-configured'`, with `database_error`), `healthGates`,
 * `environment` (`NODE_ENV` set) and `disk`.
 *
 * ```ts
 * app.get('/api/health/ready', readyHandler(getHealthGates(), { requireNodeEnv: true }));
 * ```
 */
export function readyHandler(gates: HealthGates | (() => HealthGates) = getHealthGates(), options: ReadyHandlerOptions = {}): Handler {
  const gatesOf = typeof gates === 'function' ? gates : () => gates;
  const requireNodeEnv = options.requireNodeEnv === true;
  const answer = (res: any, r: Readiness, db: DatabaseCheck) => {
    const environment = !!process.env.NODE_ENV;
    const dbOk = db.database !== false;
    const ready = r.ready && dbOk && (environment || !requireNodeEnv);
    const failing = r.gates
      .filter((g) => !g.ready)
      .map((g) => ({ serviceId: g.serviceId, name: g.name, critical: g.critical, reason: g.reason ?? (g.lastCheck === undefined ? 'not checked yet' : `${g.consecutivePasses}/${g.requiredPasses} passes`) }));
    res.setHeader('Cache-Control', 'no-store');
    res.status(ready ? 200 : 503).json({
      ready,
      status: r.shuttingDown ? 'shutting-down' : ready ? (r.degraded ? 'degraded' : 'ready') : 'not-ready',
      degraded: r.degraded,
      shuttingDown: r.shuttingDown,
      checks: {
        database: db.database,
        ...(db.error !== undefined ? { database_error: db.error } : {}),
        healthGates: { ready: r.ready, gates: r.gates.length, criticalReady: r.criticalReady },
        environment,
        disk: diskCheck(),
      },
      failing,
      timestamp: new Date().toISOString(),
    });
  };
  const fail = (res: any, e: unknown) => {
    if (!res.headersSent) res.status(503).json({ ready: false, error: reasonOf(e), timestamp: new Date().toISOString() });
  };
  return (_req, res) => {
    try {
      const r = gatesOf().getReadinessSnapshot();
      const db = databaseCheck(r.gates);
      if (db instanceof Promise) db.then((d) => answer(res, r, d)).catch((e) => fail(res, e));
      else answer(res, r, db);
    } catch (e) {
      fail(res, e);
    }
  };
}

/**
 * The original's health-gates body, read from state (no check round).
 *
 *   const { ready, gates } = healthGatesReport();
 */
export function healthGatesReport(gates: HealthGates = getHealthGates()) {
  const r = gates.getReadinessSnapshot();
  return { ready: r.ready, criticalReady: r.criticalReady, allReady: r.allReady, degraded: r.degraded, shuttingDown: r.shuttingDown, gates: r.gates, timestamp: Date.now() };
}

/**
 * The original's startup-dag body plus nodes, edges, order, levels and timings.
 *
 *   const report = startupDagReport();
 */
export function startupDagReport(dag: StartupDAG = getStartupDAG()) {
  const r = dag.getStartupReport();
  const edges = r.services.flatMap((s) => s.dependencies.map((d) => ({ from: d, to: s.id })));
  return { ...r, nodes: r.services.map((s) => s.id), edges, timestamp: Date.now() };
}

/**
 * `GET /api/observability/health-gates`: `healthGatesReport` (the observability router serves the same).
 *
 *   app.get('/api/health/gates', healthGatesHandler());
 */
export function healthGatesHandler(gates: HealthGates | (() => HealthGates) = getHealthGates()): Handler {
  const gatesOf = typeof gates === 'function' ? gates : () => gates;
  return (_req, res) => {
    try {
      res.json(healthGatesReport(gatesOf()));
    } catch (e) {
      res.status(500).json({ error: 'Failed to get health gates', message: (e as Error).message });
    }
  };
}

/**
 * `GET /api/observability/startup-dag`: the original's status
 * (`total, ready, failed, pending, services`) plus nodes, edges, order,
 * levels, outcome, problems and per-service timings.
 *
 *   app.get('/api/health/startup', startupDagHandler());
 */
export function startupDagHandler(dag: StartupDAG | (() => StartupDAG) = getStartupDAG()): Handler {
  const dagOf = typeof dag === 'function' ? dag : () => dag;
  return (_req, res) => {
    try {
      res.json(startupDagReport(dagOf()));
    } catch (e) {
      res.status(500).json({ error: 'Failed to get startup DAG', message: (e as Error).message });
    }
  };
}

function list(p: Paths | undefined, defaults: string[]): string[] {
  if (p === false) return [];
  if (p === undefined) return defaults;
  return Array.isArray(p) ? p : [p];
}

/**
 * An Express router with the probes and the two observability endpoints. Needs `express`.
 *
 *   app.use(createHealthRouter()); // /health/live, /health/ready, /api/health/*
 */
export function createHealthRouter(options: HealthRouterOptions = {}): ExpressRouter {
  const express = expressOf(options.express, 'createHealthRouter');
  const router = express.Router();
  const gates = servedGates(options.gates);
  const given = options.dag;
  const dag = given ? () => given : () => getStartupDAG();
  const guard = createAccess({ readToken: options.readToken, authorize: options.authorize }).read;
  const own: string[] = [];
  const get = (paths: string[], ...h: any[]) => {
    for (const p of paths) {
      router.get(p, ...h);
      own.push(p);
    }
  };
  get(list(options.livePath, ['/health/live', '/api/health/live']), liveHandler);
  get(list(options.readyPath, ['/health/ready', '/api/health/ready']), readyHandler(gates, { requireNodeEnv: options.requireNodeEnv }));
  get(list(options.gatesPath, ['/api/observability/health-gates']), guard, healthGatesHandler(gates));
  get(list(options.dagPath, ['/api/observability/startup-dag']), guard, startupDagHandler(dag));
  // The package's endpoints (never shed by a control), wherever this router is mounted.
  return tagRouter(router, ownsPaths(own));
}

export interface GracefulShutdownOptions {
  gates?: HealthGates;
  /** Signals that start the shutdown (default SIGTERM and SIGINT). */
  signals?: NodeJS.Signals[];
  /**
   * Time between turning not-ready and closing the listener, so load
   * balancers see the 503 and stop sending (default 5000 ms; lightship and
   * terminus users found that closing at once drops requests).
   */
  shutdownDelayMs?: number;
  /** Longest wait for in-flight requests to finish (default 10000 ms). */
  drainTimeoutMs?: number;
  /** Runs after the server has closed (close pools, flush logs). */
  onShutdown?: () => unknown;
  /** Call `process.exit` at the end (default true; exit code 0, or 1 if draining timed out or a hook threw). */
  exit?: boolean;
}

export interface GracefulShutdown {
  /** Starts the shutdown (as a signal would); resolves when it is complete. */
  shutdown(reason?: string): Promise<{ drained: boolean; inFlightAtClose: number }>;
  isShuttingDown(): boolean;
  inFlight(): number;
  /** Removes the signal handlers. */
  dispose(): void;
}

/**
 * Graceful shutdown for an `http.Server`, as terminus and lightship do it:
 * on a signal, readiness turns 503 first, then after `shutdownDelayMs` the
 * listener closes, idle keep-alive connections are closed, in-flight
 * requests get up to `drainTimeoutMs` to finish (answers carry
 * `Connection: close`), the rest are cut, `onShutdown` runs, and the
 * process exits by itself.
 *
 *   createGracefulShutdown(app.listen(3000));
 */
export function createGracefulShutdown(server: Server, options: GracefulShutdownOptions = {}): GracefulShutdown {
  const gates = options.gates ?? getHealthGates();
  const delay = options.shutdownDelayMs ?? 5000;
  const drainMs = options.drainTimeoutMs ?? 10_000;
  for (const [k, v] of [['shutdownDelayMs', delay], ['drainTimeoutMs', drainMs]] as const) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 3_600_000) {
      throw new RangeError(`${k} must be a number of ms from 0 to 3600000, got ${String(v)}`);
    }
  }
  if (options.onShutdown !== undefined && typeof options.onShutdown !== 'function') {
    throw new TypeError(`onShutdown must be a function, got ${typeof options.onShutdown}`);
  }
  let active = 0;
  /** Responses in flight, so that a shutdown can tell them to close their connection too. */
  const pending = new Set<ServerResponse>();
  let idleWaiters: Array<() => void> = [];
  let stopping: Promise<{ drained: boolean; inFlightAtClose: number }> | null = null;
  const onRequest = (_req: IncomingMessage, res: ServerResponse) => {
    active++;
    pending.add(res);
    if (stopping && !res.headersSent) res.setHeader('Connection', 'close');
    let done = false;
    const end = () => {
      if (done) return;
      done = true;
      active--;
      pending.delete(res);
      if (active === 0) {
        const w = idleWaiters;
        idleWaiters = [];
        for (const f of w) f();
      }
    };
    res.once('finish', end);
    res.once('close', end);
  };
  // Before the app's own listener: count the request before any handler
  // answers it (a synchronous handler may finish inside its listener).
  server.prependListener('request', onRequest);
  const wait = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

  const shutdown = (reason = 'shutdown'): Promise<{ drained: boolean; inFlightAtClose: number }> => {
    if (stopping) return stopping;
    stopping = (async () => {
      const log = getLogger();
      log?.log(`🛑 [Shutdown] ${reason}: readiness now 503, closing in ${delay} ms`);
      gates.setShuttingDown(true);
      // Answers already in flight close their keep-alive connection too, so
      // the client's next request gets a clean refusal it can retry, not a
      // reset mid-request when the connections are cut.
      for (const res of pending) if (!res.headersSent) res.setHeader('Connection', 'close');
      if (delay > 0) await wait(delay);
      const closed = new Promise<void>((r) => server.close(() => r()));
      (server as any).closeIdleConnections?.();
      const inFlightAtClose = active;
      let drained = true;
      if (active > 0) {
        let timer: NodeJS.Timeout | undefined;
        drained = await Promise.race([
          new Promise<boolean>((r) => idleWaiters.push(() => r(true))),
          new Promise<boolean>((r) => (timer = setTimeout(r, drainMs, false))),
        ]);
        clearTimeout(timer);
      }
      if (!drained) log?.warn(`⚠️  [Shutdown] ${active} requests still running after ${drainMs} ms; closing their connections`);
      (server as any).closeAllConnections?.();
      await closed;
      gates.stop();
      let hookFailed = false;
      if (options.onShutdown) {
        try {
          await options.onShutdown();
        } catch (e) {
          hookFailed = true;
          log?.error('❌ [Shutdown] onShutdown failed:', (e as Error)?.message ?? e);
        }
      }
      log?.log(`✅ [Shutdown] complete (${inFlightAtClose} in flight at close, drained: ${drained})`);
      if (options.exit !== false) process.exit(drained && !hookFailed ? 0 : 1);
      return { drained, inFlightAtClose };
    })();
    return stopping;
  };

  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  const handlers = signals.map((sig) => {
    const h = () => void shutdown(sig);
    process.once(sig, h);
    return [sig, h] as const;
  });
  return {
    shutdown,
    isShuttingDown: () => stopping !== null,
    inFlight: () => active,
    dispose() {
      for (const [sig, h] of handlers) process.removeListener(sig, h);
      server.removeListener('request', onRequest);
    },
  };
}
