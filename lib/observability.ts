/**
 * The observability router: a drop-in replacement for the original
 * `server/routes/observability.ts`, to mount at `/api/observability`.
 * Every endpoint keeps the original's field names (spec §3.1) and adds the
 * package's figures; `/summary` really contains every part (the original's
 * was all empty objects). Read access is open by default and can be closed
 * with a token.
 */
import { getCircuitBreakerRegistry } from './circuit-breaker';
import { getGoldenSignals } from './metrics';
import { getHealthGates, type HealthGates } from './health-gates';
import { getStartupDAG, type StartupDAG } from './startup-dag';
import { getOps, type OpsControls } from './ops';
import { getRedisBackend } from './redis';
import { getWatchdogsReport } from './watchdogs';
import { getRolloutsReport } from './traffic-shaping';
import { createDashboardRouter, type DashboardOptions } from './dashboard';
// `Binding` names the binding's types in the emitted .d.ts (why: lib/native.ts).
import type { Binding } from './native';
import { expressOf } from './express/express-of';
import type { ExpressModule, ExpressRouter } from './express/types';
import { createAccess } from './express/auth';
import { addEndpoint, tagRouter } from './express/endpoints';
import { healthGatesReport, startupDagReport } from './express/health';
import { rejectMalformedPath, requestErrors } from './express/requests';

export { healthGatesReport, startupDagReport } from './express/health';

type Req = any;
type Res = any;

export interface ObservabilityOptions {
  /** The app's `express` module, where the package cannot find it (default: found from the app). */
  express?: ExpressModule;
  gates?: HealthGates;
  dag?: StartupDAG;
  ops?: OpsControls;
  /**
   * A token that read access requires (`Authorization: Bearer <token>`;
   * default `configureReadAccess`, else env `RELIABILITY_READ_TOKEN`,
   * unset = open; at least 128 bits). The ops token is accepted too.
   */
  readToken?: string;
  /** Or decide per request (wins over `readToken`; false answers 403). */
  authorize?: (req: Req) => boolean;
  /** The ops dashboard at `/dashboard` (default on; its data still needs the read token when one is set). */
  dashboard?: false | DashboardOptions;
}

/**
 * `{ breakers: [{ name, state, failureCount, ... }], timestamp }`.
 *
 *   const { breakers } = circuitBreakersReport();
 */
export function circuitBreakersReport() {
  const snaps = getCircuitBreakerRegistry().toJSON();
  return {
    breakers: snaps.map((s) => ({
      name: s.name,
      state: s.state,
      failureCount: s.failureCount,
      isolated: s.isolated,
      lastFailureTime: s.lastFailureTime,
      lastTransitionTime: s.lastTransitionTime,
      nextAttemptTime: s.nextAttemptTime,
      window: s.window,
      totals: s.totals,
    })),
    timestamp: Date.now(),
  };
}

/**
 * Ops controls, dead-letter queues and the last audit entries.
 *
 *   const report = await opsReport();
 */
export async function opsReport(ops: OpsControls = getOps()) {
  return { ...ops.status(), queues: await ops.deadLetterQueues(), audit: ops.audit(20), timestamp: Date.now() };
}

type Part = { path: string; key: string; thing: string; get: (o: Required<Pick<ObservabilityOptions, 'gates' | 'dag' | 'ops'>>, req?: Req) => unknown };


/** `?scope=cluster` (with a Redis backend): every instance's figures, merged exactly. */
function goldenSignals(req?: Req) {
  if (req?.query?.scope !== 'cluster') return getGoldenSignals();
  const b = getRedisBackend();
  if (!b) throw new Error('scope=cluster needs a Redis backend (createRedisBackend)');
  return b.clusterGoldenSignals();
}

/** The parts, in the order `/summary` lists them. Other modules add theirs with `addObservabilityPart`. */
const parts: Part[] = [
  { path: '/golden-signals', key: 'goldenSignals', thing: 'golden signals', get: (_o, req) => goldenSignals(req) },
  { path: '/watchdogs', key: 'watchdogs', thing: 'watchdogs', get: () => getWatchdogsReport() },
  { path: '/circuit-breakers', key: 'circuitBreakers', thing: 'circuit breakers', get: () => circuitBreakersReport() },
  { path: '/health-gates', key: 'healthGates', thing: 'health gates', get: (o) => healthGatesReport(o.gates) },
  { path: '/startup-dag', key: 'startupDAG', thing: 'startup DAG', get: (o) => startupDagReport(o.dag) },
  { path: '/ops', key: 'ops', thing: 'ops state', get: (o) => opsReport(o.ops) },
  { path: '/cluster', key: 'cluster', thing: 'cluster state', get: () => getRedisBackend()?.status() ?? { backend: 'none', state: 'single-instance' } },
  { path: '/rollouts', key: 'rollouts', thing: 'rollouts', get: () => getRolloutsReport() },
];

/**
 * Adds an endpoint (and a `/summary` key) to every observability router
 * created afterwards: how the watchdog and rollout modules plug in.
 *
 *   addObservabilityPart({ path: '/queues', key: 'queues', thing: 'queues', get: () => queueReport() });
 */
export function addObservabilityPart(part: Part): void {
  const i = parts.findIndex((p) => p.path === part.path);
  if (i >= 0) parts[i] = part;
  else parts.push(part);
  addEndpoint({ router: 'observability', method: 'GET', path: part.path, access: 'read' });
}

/**
 * An Express router with every observability endpoint and `/summary`.
 *
 *   app.use('/api/observability', createObservabilityRouter());
 */
export function createObservabilityRouter(options: ObservabilityOptions = {}): ExpressRouter {
  const express = expressOf(options.express, 'createObservabilityRouter');
  const router = express.Router();
  const ctx = () => ({ gates: options.gates ?? getHealthGates(), dag: options.dag ?? getStartupDAG(), ops: options.ops ?? getOps() });
  // The one read guard (express/auth.ts): the read token, or the ops token, or `authorize`.
  const access = createAccess({ readToken: options.readToken, authorize: options.authorize });
  router.use(rejectMalformedPath);
  // The page itself holds no data, so it is served before the read guard;
  // it asks for the read token when the API answers 401.
  if (options.dashboard !== false) router.use('/dashboard', createDashboardRouter({ express, ...options.dashboard }));
  router.use(access.read);
  for (const p of parts) {
    router.get(p.path, async (req: Req, res: Res) => {
      try {
        res.setHeader('Cache-Control', 'no-store');
        res.json(await p.get(ctx(), req));
      } catch (e) {
        res.status(500).json({ error: `Failed to get ${p.thing}`, message: (e as Error)?.message ?? String(e) });
      }
    });
  }
  router.get('/summary', async (_req: Req, res: Res) => {
    const out: Record<string, unknown> = {};
    const errors: Record<string, string> = {};
    await Promise.all(
      parts.map(async (p) => {
        try {
          out[p.key] = await p.get(ctx());
        } catch (e) {
          errors[p.key] = (e as Error)?.message ?? String(e);
        }
      }),
    );
    res.setHeader('Cache-Control', 'no-store');
    res.json({ ...Object.fromEntries(parts.filter((p) => p.key in out).map((p) => [p.key, out[p.key]])), ...(Object.keys(errors).length ? { errors } : {}), timestamp: Date.now() });
  });
  router.use(requestErrors);
  // Everything below its mount point is the package's: never shed by a control.
  return tagRouter(router);
}

let shared: ((req: Req, res: Res, next: (e?: unknown) => void) => void) | null = null;

/**
 * The original's default export: a ready router for `/api/observability`
 * (created on first request, so importing this module needs no Express).
 *
 *   app.use('/api/observability', observabilityRouter);
 */
export function observabilityRouter(req: Req, res: Res, next: (e?: unknown) => void): void {
  const r = (shared ??= createObservabilityRouter());
  r(req, res, next);
}
tagRouter(observabilityRouter);
