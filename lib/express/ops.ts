/**
 * Express adapters for the ops plane: `reliabilityMiddleware()` (safe mode,
 * brownout and quarantine applied to each request, one crossing at most)
 * and the `/api/ops` router (status, actions, audit), token-protected.
 */
import { getOps, type Criticality, type OpsControls } from '../ops';
import { errorKind, HTTP_STATUS, type ErrorKind } from '../errors';
import { OpsCriticality, OpsDecision } from '../../index';
import { ensureAccessors } from './accessors';
import { expressOf } from './express-of';
import type { ExpressModule, ExpressRouter } from './types';
import { markRefused } from './route-labels';
import { createAccess, type AccessOptions } from './auth';
import { isPackageRequest, tagRouter } from './endpoints';
import { compilePattern } from './patterns';
import { rejectMalformedPath, requestErrors, requireJsonBody } from './requests';

export { tokenMatches } from './auth';

export { compilePattern, compileUrlTest, type Matcher } from './patterns';

type Req = any;
type Res = any;
type Next = (err?: unknown) => void;

/**
 * The package's endpoints at their default mount points (`express/endpoints.ts`
 * lists them all). They, and the package's routers wherever they are
 * mounted, are never refused by any control.
 */
export const ALWAYS_ESSENTIAL = ['/health', '/api/health', '/api/observability', '/api/ops', '/metrics'];

export interface ReliabilityMiddlewareOptions {
  ops?: OpsControls;
  /**
   * Paths served in safe mode, besides `ALWAYS_ESSENTIAL`: exact paths,
   * prefixes ending in `*` or `/`, or Express-style patterns (`/api/orders/:id`).
   */
  essential?: string[];
  /** Criticality per path pattern (as above); unlisted paths are `default`. */
  criticality?: Record<string, Criticality>;
  /** Classifies a request itself (wins over the table). */
  classify?: (req: Req) => Criticality | undefined;
  /** The agent a request acts for (default: `req.params.agentId` or the `agentPaths` patterns). */
  agentFrom?: (req: Req) => string | undefined;
  /** Patterns with an `:agentId` segment, read before routing (e.g. `/api/agents/:agentId`). */
  agentPaths?: string[];
  /** `Retry-After` for 503 answers, in seconds (default 30). */
  retryAfterSeconds?: number;
}

const CRIT_CODE: Record<Criticality, OpsCriticality> = { critical: OpsCriticality.Critical, default: OpsCriticality.Default, sheddable: OpsCriticality.Sheddable };

/**
 * Applies safe mode, brownout and agent quarantine. While no control is on,
 * a request costs a flag read; otherwise one call into Rust decides it.
 * `req.reliability` is `{ dimmer, safeMode }` for app code that wants to
 * drop optional work (a getter while no control is on).
 *
 *   app.use(reliabilityMiddleware({ essential: ['/api/auth/*'], agentPaths: ['/api/agents/:agentId'] }));
 */
export function reliabilityMiddleware(options: ReliabilityMiddlewareOptions = {}) {
  const gate = createOpsGate(options);
  return function reliability(req: Req, res: Res, next: Next) {
    // With no control on, `req.reliability` comes from a getter (NORMAL):
    // storing it on every request would cost more than the rest of this.
    ensureAccessors(req);
    if (!gate(req, res)) next();
  };
}

/**
 * @internal The decision of `reliabilityMiddleware` as a function: true
 * when it answered the request (503 or 423), false when the request goes on.
 * Shared with `reliabilityStack`.
 *
 *   const admit = createOpsGate({ essential: ['/api/auth/*'] }); if (!admit(req, res)) return;
 */
export function createOpsGate(options: ReliabilityMiddlewareOptions = {}): (req: Req, res: Res) => boolean {
  const essential = [...ALWAYS_ESSENTIAL, ...(options.essential ?? [])].map(compilePattern);
  const table = Object.entries(options.criticality ?? {}).map(([p, c]) => {
    if (!(c in CRIT_CODE)) throw new RangeError(`criticality[${JSON.stringify(p)}] must be 'critical', 'default' or 'sheddable', got ${JSON.stringify(c)}`);
    return [compilePattern(p), CRIT_CODE[c]] as const;
  });
  const agentPaths = (options.agentPaths ?? []).map(compilePattern);
  const retryAfter = options.retryAfterSeconds ?? 30;
  if (!Number.isInteger(retryAfter) || retryAfter < 0 || retryAfter > 86_400) {
    throw new RangeError(`retryAfterSeconds must be an integer from 0 to 86400, got ${String(options.retryAfterSeconds)}`);
  }
  for (const k of ['classify', 'agentFrom'] as const) {
    if (options[k] !== undefined && typeof options[k] !== 'function') throw new TypeError(`${k} must be a function, got ${typeof options[k]}`);
  }
  // Per-path classification, bounded so random paths cannot grow it.
  const cache = new Map<string, number>();
  const classifyPath = (path: string): number => {
    let v = cache.get(path);
    if (v === undefined) {
      const ess = essential.some((m) => m.test(path)) ? 4 : 0;
      const hit = table.find(([m]) => m.test(path));
      v = ess | (hit ? hit[1] : OpsCriticality.Default);
      if (cache.size < 10_000) cache.set(path, v);
    }
    return v;
  };
  return function opsGate(req: Req, res: Res): boolean {
    const ops = options.ops ?? getOps();
    if (!ops.anyActive()) return false;
    // The operator is never locked out: the package's own endpoints pass
    // every control, wherever and in whatever order they are mounted.
    if (isPackageRequest(req)) return false;
    const path: string = req.path ?? req.url ?? '/';
    const cls = classifyPath(path);
    let crit = (cls & 3) as OpsCriticality;
    if (options.classify) {
      const c = options.classify(req);
      if (c !== undefined) crit = CRIT_CODE[c] ?? crit;
    }
    let agent: string | undefined = options.agentFrom ? options.agentFrom(req) : req.params?.agentId;
    if (agent === undefined) {
      for (const m of agentPaths) {
        agent = m.agent?.(path);
        if (agent !== undefined) break;
      }
    }
    const d = ops.decide((cls & 4) !== 0, crit, agent === undefined ? undefined : String(agent));
    req.reliability = { dimmer: ops.getDimmer(), safeMode: ops.isSafeMode() };
    if (d === OpsDecision.Serve) return false;
    // Counted in http_requests_refused_total: the decision codes are the binding's refusal codes.
    markRefused(req, d);
    // The answer's fields are looked up directly: nothing is rebuilt per refusal.
    const r = ops.refusal(d, agent === undefined ? undefined : String(agent));
    if (d === OpsDecision.Quarantined) {
      res.status(423).json({ error: 'Locked', message: `Agent ${agent} is quarantined`, agentId: agent, reason: r.reason, until: r.until ?? null });
      return true;
    }
    res.setHeader('Retry-After', String(retryAfter));
    if (d === OpsDecision.SafeMode) {
      res.status(503).json({ error: 'Service Unavailable', message: 'Safe mode: only essential routes are served', reason: r.reason, retryAfter });
    } else {
      res.status(503).json({ error: 'Service Unavailable', message: 'Brownout: request shed to protect critical traffic', level: r.level ?? 0, reason: r.reason, retryAfter });
    }
    return true;
  };
}

// ---- the /api/ops router -----------------------------------------------------------

const ERROR_TITLE: Record<ErrorKind, string> = { 'bad-request': 'Bad Request', 'not-found': 'Not Found', conflict: 'Conflict', internal: 'Failed' };

/**
 * Options of the ops router: the ops token (default env
 * `RELIABILITY_OPS_TOKEN`, at least 128 bits), the limiter's figures, and
 * read access (`protectReads`, `readToken`, `authorize`; see `express/auth.ts`).
 */
export interface OpsRouterOptions extends Omit<AccessOptions, 'audit'> {
  /** The app's `express` module, where the package cannot find it (default: found from the app). */
  express?: ExpressModule;
  ops?: OpsControls;
}

class BadRequest extends Error {}

/** Reads a JSON body with only the allowed fields; throws BadRequest naming the field. */
function body(req: Req, spec: Record<string, 'boolean' | 'string' | 'number'>, required: string[] = []): Record<string, any> {
  const b = req.body ?? {};
  if (typeof b !== 'object' || Array.isArray(b)) throw new BadRequest('the body must be a JSON object');
  for (const k of Object.keys(b)) {
    if (!Object.prototype.hasOwnProperty.call(spec, k)) throw new BadRequest(`unknown field "${k}" (allowed: ${Object.keys(spec).join(', ') || 'none'})`);
  }
  for (const [k, t] of Object.entries(spec)) {
    const v = b[k];
    if (v === undefined || v === null) {
      if (required.includes(k)) throw new BadRequest(`${k} is required (${t})`);
      continue;
    }
    if (typeof v !== t || (t === 'number' && !Number.isFinite(v))) throw new BadRequest(`${k} must be a ${t === 'number' ? 'finite number' : t}, got ${typeof v}`);
  }
  return b;
}

/**
 * The ops API, to mount at `/api/ops`:
 * `GET /status`, `POST /safe-mode {enabled, reason}`, `POST /brownout {enabled, level, reason}`,
 * `POST|DELETE /agents/:agentId/quarantine {reason, ttlMs}`, `POST /rollback {name, reason}`,
 * `POST /dlq/:name/drain {limit}`, `GET /audit?limit=`.
 * State changes need `Authorization: Bearer <token>` (constant-time check,
 * `express/auth.ts`); failed tokens are throttled per address and globally,
 * never the right one. Non-JSON bodies get 415.
 *
 *   app.use('/api/ops', createOpsRouter({ token: process.env.OPS_TOKEN }));
 */
export function createOpsRouter(options: OpsRouterOptions = {}): ExpressRouter {
  const express = expressOf(options.express, 'createOpsRouter');
  const router = express.Router();
  const ops = () => options.ops ?? getOps();
  const access = createAccess({ ...options, audit: (action, source, why) => ops().recordRefused(action, source, why) });
  const guard = access.write;
  const readGuard = access.read;
  router.use(rejectMalformedPath);
  const parse = express.json({ limit: '4kb', strict: true });
  const json = [requireJsonBody, parse];
  const handle = (fn: (req: Req) => unknown | Promise<unknown>) => async (req: Req, res: Res) => {
    try {
      res.json(await fn(req));
    } catch (e) {
      const err = e as Error;
      // By class and code (lib/errors.ts), never by message text.
      const kind = e instanceof BadRequest ? 'bad-request' : errorKind(e);
      res.status(HTTP_STATUS[kind]).json({ error: ERROR_TITLE[kind], message: err.message });
    }
  };

  router.get('/status', readGuard, handle(() => ops().status()));
  router.get(
    '/audit',
    readGuard,
    handle((req) => {
      const limit = req.query.limit === undefined ? 100 : Number(req.query.limit);
      return { entries: ops().audit(limit) };
    }),
  );
  router.post(
    '/safe-mode',
    guard('safe-mode'),
    json,
    handle((req) => {
      const b = body(req, { enabled: 'boolean', reason: 'string' }, ['enabled']);
      return ops().setSafeMode(b.enabled, { ...req.opsWho, reason: b.reason });
    }),
  );
  router.post(
    '/brownout',
    guard('brownout'),
    json,
    handle((req) => {
      const b = body(req, { enabled: 'boolean', level: 'number', reason: 'string' }, ['enabled']);
      return ops().setBrownout(b.enabled, { ...req.opsWho, level: b.level, reason: b.reason });
    }),
  );
  router.post(
    '/agents/:agentId/quarantine',
    guard('quarantine-agent'),
    json,
    handle((req) => {
      const b = body(req, { reason: 'string', ttlMs: 'number' });
      return ops().quarantineAgent(req.params.agentId, { ...req.opsWho, reason: b.reason, ttlMs: b.ttlMs });
    }),
  );
  router.delete('/agents/:agentId/quarantine', guard('release-agent'), handle((req) => ops().releaseAgent(req.params.agentId, req.opsWho)));
  router.post(
    '/rollback',
    guard('rollback'),
    json,
    handle((req) => {
      const b = body(req, { name: 'string', all: 'boolean', reason: 'string' });
      if (b.name === undefined && b.all !== true) throw new BadRequest('name is required (or all: true to roll back every rollout)');
      return ops().rollback(b.name, { ...req.opsWho, reason: b.reason });
    }),
  );
  router.post(
    '/dlq/:name/drain',
    guard('drain-dlq'),
    json,
    handle(async (req) => {
      const b = body(req, { limit: 'number' });
      return { runs: await ops().drainDeadLetterQueue(req.params.name, { ...req.opsWho, limit: b.limit }) };
    }),
  );
  router.post(
    '/dlq/drain',
    guard('drain-dlq'),
    json,
    handle(async (req) => {
      const b = body(req, { limit: 'number' });
      return { runs: await ops().drainDeadLetterQueue(undefined, { ...req.opsWho, limit: b.limit }) };
    }),
  );
  router.get('/dlq', readGuard, handle(async () => ({ queues: await ops().deadLetterQueues() })));
  // Malformed JSON bodies, oversize ones, undecodable parameters: 400/413 with the reason, never a stack.
  router.use(requestErrors);
  return tagRouter(router);
}
