/**
 * Express adapters for the ops plane: `reliabilityMiddleware()` (safe mode,
 * brownout and quarantine applied to each request, one crossing at most)
 * and the `/api/ops` router (status, actions, audit), token-protected.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { getOps, type Criticality, type OpsControls, type Who } from '../ops';
import { ensureAccessors } from './accessors';
import { expressOf } from './express-of';
import type { ExpressModule, ExpressRouter } from './types';
import { markRefused } from './route-labels';

type Req = any;
type Res = any;
type Next = (err?: unknown) => void;

/** Paths always served in safe mode: probes, observability and the ops API itself. */
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

interface Matcher {
  test(path: string): boolean;
  agent?(path: string): string | undefined;
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** `/a/*` or `/a/` prefix, `/a/:id` segment pattern, or an exact path. */
export function compilePattern(p: string): Matcher {
  if (typeof p !== 'string' || !p.startsWith('/')) throw new TypeError(`a path pattern must be a string starting with '/', got ${JSON.stringify(p)}`);
  if (p.endsWith('*')) {
    const prefix = p.slice(0, -1);
    return { test: (path) => path.startsWith(prefix) };
  }
  if (p.includes('/:')) {
    const names: string[] = [];
    const re = new RegExp(
      '^' +
        p
          .split('/')
          .map((seg) => {
            if (seg.startsWith(':')) {
              names.push(seg.slice(1));
              return '([^/]+)';
            }
            return escape(seg);
          })
          .join('/') +
        '(?:/.*)?$',
    );
    const idx = names.indexOf('agentId');
    return {
      test: (path) => re.test(path),
      agent: (path) => {
        if (idx < 0) return undefined;
        const m = re.exec(path);
        if (!m) return undefined;
        try {
          return decodeURIComponent(m[idx + 1]);
        } catch {
          return m[idx + 1];
        }
      },
    };
  }
  const base = p.endsWith('/') && p.length > 1 ? p.slice(0, -1) : p;
  const under = base + '/';
  return { test: (path) => path === base || path.startsWith(under) };
}

/**
 * `compilePattern(p).test`, applied to a raw URL (query string included)
 * rather than a path: no `indexOf('?')` and no slice per request for
 * prefix and exact patterns, which is what the stack's rollouts match on
 * every request.
 */
export function compileUrlTest(p: string): (url: string) => boolean {
  const m = compilePattern(p);
  if (p.includes('?') || p.includes('#') || p.includes('/:')) {
    return (url) => {
      const q = url.indexOf('?');
      return m.test(q < 0 ? url : url.slice(0, q));
    };
  }
  if (p.endsWith('*')) {
    const prefix = p.slice(0, -1);
    return (url) => url.startsWith(prefix);
  }
  const base = p.endsWith('/') && p.length > 1 ? p.slice(0, -1) : p;
  const n = base.length;
  return (url) => {
    if (!url.startsWith(base)) return false;
    if (url.length === n) return true;
    const c = url.charCodeAt(n);
    return c === 47 /* / */ || c === 63 /* ? */;
  };
}

const CRIT_CODE: Record<Criticality, 0 | 1 | 2> = { critical: 0, default: 1, sheddable: 2 };

/**
 * Applies safe mode, brownout and agent quarantine. While no control is on,
 * a request costs a flag read; otherwise one call into Rust decides it.
 * `req.reliability` is `{ dimmer, safeMode }` for app code that wants to
 * drop optional work (a getter while no control is on).
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
      v = ess | (hit ? hit[1] : 1);
      if (cache.size < 10_000) cache.set(path, v);
    }
    return v;
  };
  return function opsGate(req: Req, res: Res): boolean {
    const ops = options.ops ?? getOps();
    if (!ops.anyActive()) return false;
    const path: string = req.path ?? req.url ?? '/';
    const cls = classifyPath(path);
    let crit = (cls & 3) as 0 | 1 | 2;
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
    if (d === 0) return false;
    // Counted in http_requests_refused_total: the decision codes are the binding's refusal codes.
    markRefused(req, d);
    if (d === 3) {
      const q = ops.status().quarantined.find((x) => x.agentId === agent);
      res.status(423).json({ error: 'Locked', message: `Agent ${agent} is quarantined`, agentId: agent, reason: q?.reason ?? '', until: q?.expiresAt ?? null });
      return true;
    }
    res.setHeader('Retry-After', String(retryAfter));
    const st = ops.status();
    if (d === 1) {
      res.status(503).json({ error: 'Service Unavailable', message: 'Safe mode: only essential routes are served', reason: st.safeMode?.reason ?? '', retryAfter });
    } else {
      res.status(503).json({ error: 'Service Unavailable', message: 'Brownout: request shed to protect critical traffic', level: st.brownout?.level ?? 0, reason: st.brownout?.reason ?? '', retryAfter });
    }
    return true;
  };
}

// ---- the /api/ops router -----------------------------------------------------------

export interface OpsRouterOptions {
  /** The app's `express` module, where the package cannot find it (default: found from the app). */
  express?: ExpressModule;
  ops?: OpsControls;
  /** The token for state-changing routes (default env `RELIABILITY_OPS_TOKEN`). */
  token?: string;
  /** With no token configured, allow state changes from loopback addresses (default false: 403). */
  allowLoopbackWithoutToken?: boolean;
  /** Require the token for the read routes too (`GET status`, `GET audit`; default false). */
  protectReads?: boolean;
  /** Failed token attempts per source before it is refused for `failureWindowMs` (default 10). */
  maxTokenFailures?: number;
  failureWindowMs?: number;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Constant-time comparison of a presented token with the configured one. */
export function tokenMatches(given: string | undefined, expected: string): boolean {
  // Hashing both first gives equal lengths, so timingSafeEqual applies and
  // the comparison's time says nothing about the token's length or prefix.
  return typeof given === 'string' && timingSafeEqual(digest(given), digest(expected));
}

function bearer(req: Req): string | undefined {
  const h = req.headers?.authorization;
  if (typeof h !== 'string') return undefined;
  const m = /^Bearer\s+(.+)$/i.exec(h.trim());
  return m ? m[1] : undefined;
}

function isLoopback(ip: string | undefined): boolean {
  return ip === '127.0.0.1' || ip === '::1' || ip === '::ffff:127.0.0.1';
}

function sourceOf(req: Req): string {
  return String(req.ip ?? req.socket?.remoteAddress ?? 'unknown');
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
 * State changes need `Authorization: Bearer <token>` (constant-time check);
 * a source with too many bad tokens gets 429 for a while.
 */
export function createOpsRouter(options: OpsRouterOptions = {}): ExpressRouter {
  const express = expressOf(options.express, 'createOpsRouter');
  const router = express.Router();
  const ops = () => options.ops ?? getOps();
  const token = options.token ?? process.env.RELIABILITY_OPS_TOKEN ?? '';
  const maxFailures = options.maxTokenFailures ?? 10;
  const windowMs = options.failureWindowMs ?? 60_000;

  const guard = (action: string) => (req: Req, res: Res, next: Next) => {
    const source = sourceOf(req);
    const o = ops();
    if (o.authBlocked(source, maxFailures, windowMs)) {
      res.setHeader('Retry-After', String(Math.ceil(windowMs / 1000)));
      return res.status(429).json({ error: 'Too Many Requests', message: 'too many failed token attempts from this address' });
    }
    if (!token) {
      if (options.allowLoopbackWithoutToken && isLoopback(source)) {
        req.opsWho = { actor: 'loopback', source } satisfies Who;
        return next();
      }
      o.recordRefused(action, source, 'no ops token configured');
      return res.status(403).json({ error: 'Forbidden', message: 'ops actions are disabled: set RELIABILITY_OPS_TOKEN' });
    }
    const given = bearer(req);
    if (!tokenMatches(given, token)) {
      const blocked = o.authFailure(source, maxFailures, windowMs);
      o.recordRefused(action, source, given === undefined ? 'missing token' : 'wrong token');
      if (blocked) {
        res.setHeader('Retry-After', String(Math.ceil(windowMs / 1000)));
        return res.status(429).json({ error: 'Too Many Requests', message: 'too many failed token attempts from this address' });
      }
      res.setHeader('WWW-Authenticate', 'Bearer');
      return res.status(401).json({ error: 'Unauthorized', message: given === undefined ? 'an ops token is required (Authorization: Bearer <token>)' : 'wrong ops token' });
    }
    o.authSuccess(source);
    const actor = typeof req.headers['x-ops-actor'] === 'string' ? req.headers['x-ops-actor'].replace(/[^\w.@:-]/g, '').slice(0, 64) : '';
    req.opsWho = { actor: actor || 'ops-token', source } satisfies Who;
    next();
  };
  const readGuard = options.protectReads ? guard('read') : (_req: Req, _res: Res, next: Next) => next();
  const json = express.json({ limit: '4kb', strict: true });
  const handle = (fn: (req: Req) => unknown | Promise<unknown>) => async (req: Req, res: Res) => {
    try {
      res.json(await fn(req));
    } catch (e) {
      const err = e as Error & { code?: string };
      if (e instanceof BadRequest || e instanceof TypeError || e instanceof RangeError) return res.status(400).json({ error: 'Bad Request', message: err.message });
      if (/not found/i.test(err.message ?? '') || err.code === 'ERR_NOT_FOUND') return res.status(404).json({ error: 'Not Found', message: err.message });
      if (err.code === 'ERR_INVALID_STATE' || err.code === 'ERR_NO_ROLLOUTS') return res.status(409).json({ error: 'Conflict', message: err.message });
      res.status(500).json({ error: 'Failed', message: err.message });
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
  // Malformed JSON bodies and oversize ones: 400/413 with the reason, never a stack.
  router.use((err: any, _req: Req, res: Res, next: Next) => {
    if (err?.type === 'entity.parse.failed') return res.status(400).json({ error: 'Bad Request', message: 'the body is not valid JSON' });
    if (err?.type === 'entity.too.large') return res.status(413).json({ error: 'Payload Too Large', message: 'the body is larger than 4 kB' });
    next(err);
  });
  return router;
}
