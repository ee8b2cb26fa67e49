/**
 * `reliabilityStack()`: metrics, ops controls (safe mode, brownout,
 * quarantine) and traffic shaping in one Express layer with one response
 * listener. The same work as mounting `metricsMiddleware`,
 * `reliabilityMiddleware()` and `withTrafficShaping()` separately, for less:
 * under load each extra layer and listener costs a few µs of Express and
 * Node (benchmark/README.md).
 *
 *   app.use(reliabilityStack({ rollouts: { '/api/search/*': 'search-v2' }, criticality: { '/api/recs': 'sheddable' } }));
 */
import { beginRequest, endRequest } from '../metrics';
import { getTrafficShaping, pickCohort, type TrafficShaping } from '../traffic-shaping';
import { compilePattern, createOpsGate, type ReliabilityMiddlewareOptions } from './ops';

export interface ReliabilityStackOptions extends ReliabilityMiddlewareOptions {
  /** Count golden signals (default true). */
  metrics?: boolean;
  /** Rollouts by path pattern (`/api/search/*`, `/api/items/:id`, exact): the first match applies. */
  rollouts?: Record<string, string>;
  /** As `withTrafficShaping`: blocked requests get the original 503 (default) or go on as `stable`. */
  onBlocked?: '503' | 'next';
  /** Header with a stickiness key, after `req.user.id` (default `x-user-id`). */
  stickinessHeader?: string;
  /** Which answers count as successes for rollouts (default status < 400, as the original). */
  isSuccess?: (statusCode: number) => boolean;
  shaping?: TrafficShaping;
}

export function reliabilityStack(options: ReliabilityStackOptions = {}) {
  const gate = createOpsGate(options);
  const metrics = options.metrics !== false;
  const rollouts = Object.entries(options.rollouts ?? {}).map(([p, name]) => {
    if (typeof name !== 'string' || !name) throw new TypeError(`rollouts[${JSON.stringify(p)}] must be a rollout name, got ${typeof name}`);
    return [compilePattern(p), name] as const;
  });
  if (options.onBlocked !== undefined && options.onBlocked !== '503' && options.onBlocked !== 'next') {
    throw new RangeError(`onBlocked must be '503' or 'next', got ${JSON.stringify(options.onBlocked)}`);
  }
  const header = (options.stickinessHeader ?? 'x-user-id').toLowerCase();
  const isSuccess = options.isSuccess ?? ((s: number) => s < 400);
  // Path -> rollout name ('' for none), bounded like the ops gate's cache.
  const byPath = new Map<string, string>();
  const rolloutOf = (path: string): string => {
    let n = byPath.get(path);
    if (n === undefined) {
      n = rollouts.find(([m]) => m.test(path))?.[1] ?? '';
      if (byPath.size < 10_000) byPath.set(path, n);
    }
    return n;
  };

  return function reliabilityStackMiddleware(req: any, res: any, next: (e?: unknown) => void) {
    const t0 = metrics ? beginRequest(req) : performance.now();
    let name = '';
    let cohort: 'new' | 'stable' | null = null;
    const ts = options.shaping ?? getTrafficShaping();
    // One listener for everything this layer records (a closure: see metrics.ts).
    res.on('close', () => {
      const ms = metrics ? endRequest(req, res, t0) : performance.now() - t0;
      if (cohort !== null && res.writableFinished !== false) ts.recordRequest(name, isSuccess(res.statusCode), ms, cohort);
    });
    if (gate(req, res)) return;
    if (rollouts.length > 0 && !req.rollout) {
      name = rolloutOf(req.path ?? req.url ?? '/');
      if (name) {
        cohort = pickCohort(ts, name, req, res, header, options.onBlocked);
        if (cohort === null) return;
      }
    }
    next();
  };
}
