/**
 * Access to the package's own endpoints, for every router it ships: the
 * constant-time token check, the failed-token limiter (per address and
 * global; it only ever throttles failures) and the one read guard.
 *
 * The thresholds (10 failures per address and 100 in all per minute, the
 * 128-bit token minimum) and the limiter's state are the Rust core's
 * (`src/core/auth.rs`): one limiter per process, shared by every router,
 * so the global limit cannot be dodged by spreading guesses over routers.
 *
 *   configureReadAccess({ token: process.env.RELIABILITY_READ_TOKEN });  // closes every read endpoint
 *   const access = createAccess({ token: opsToken });
 *   router.get('/status', access.read, handler);
 *   router.post('/safe-mode', access.write('safe-mode'), handler);
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { native } from '../native';
import type { Who } from '../ops';

type Req = any;
type Res = any;
type Next = (err?: unknown) => void;
export type Middleware = (req: Req, res: Res, next: Next) => void;

/** The limiter's defaults and the token minimum, from the Rust core. */
export const AUTH_DEFAULTS: Readonly<ReturnType<typeof native.authDefaults>> = Object.freeze(native.authDefaults());

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * Constant-time comparison of a presented token with the configured one.
 *
 *   tokenMatches(req.get('authorization')?.slice(7), token); // constant time
 */
export function tokenMatches(given: string | undefined, expected: string): boolean {
  // Hashing both first gives equal lengths, so timingSafeEqual applies and
  // the comparison's time says nothing about the token's length or prefix.
  return typeof given === 'string' && typeof expected === 'string' && timingSafeEqual(digest(given), digest(expected));
}

/**
 * Ops tokens of every router made in this process (at most 16): a read
 * guard accepts them wherever it is, so the operator's token opens the
 * health and metrics routers' reads too, not only the ops router's.
 */
const opsTokens = new Set<string>();

/** True when `given` matches any of `tokens`, each compared (no early exit). */
function matchesAny(given: string | undefined, tokens: string[]): boolean {
  let ok = false;
  for (const t of tokens) if (tokenMatches(given, t)) ok = true;
  return ok;
}

/** The token of an `Authorization: Bearer <token>` header. */
export function bearer(req: Req): string | undefined {
  const h = req.headers?.authorization;
  if (typeof h !== 'string') return undefined;
  const m = /^Bearer\s+(.+)$/i.exec(h.trim());
  return m ? m[1] : undefined;
}

/** The address a request came from (`req.ip`, so Express's `trust proxy` applies). */
export function sourceOf(req: Req): string {
  return String(req.ip ?? req.socket?.remoteAddress ?? 'unknown');
}

function isLoopback(ip: string | undefined): boolean {
  return ip === '127.0.0.1' || ip === '::1' || ip === '::ffff:127.0.0.1';
}

/**
 * Throws a RangeError naming `field` when a configured token is under 128
 * bits (estimated from its length and alphabet); the message says how to
 * make one and never quotes the token. Empty means "not configured".
 *
 *   const token = checkToken('token', process.env.OPS_TOKEN); // throws on a weak token
 */
export function checkToken(field: string, token: string | undefined): string {
  if (typeof field !== 'string') throw new TypeError(`field must be a string, got ${typeof field}`);
  if (token === undefined || token === '') return '';
  if (typeof token !== 'string') throw new TypeError(`${field} must be a string, got ${typeof token}`);
  native.authCheckToken(field, token);
  return token;
}

export interface ReadAccess {
  /** A token read endpoints require (`Authorization: Bearer <token>`). */
  token?: string;
  /** Or decide per request; false answers 403. Wins over `token`. */
  authorize?: (req: Req) => boolean;
}

let processRead: { token: string; authorize?: (req: Req) => boolean } | null = null;

/**
 * Closes (or, with `null`, reopens) every read endpoint of every router the
 * package serves, created before or after: one switch, whatever the mount
 * order. `RELIABILITY_READ_TOKEN` does the same when this is not called.
 *
 *   configureReadAccess({ authorize: (req) => req.user?.isOperator === true });
 */
export function configureReadAccess(access: ReadAccess | null): void {
  if (access === null) {
    processRead = null;
    return;
  }
  if (typeof access !== 'object') throw new TypeError(`access must be an object or null, got ${typeof access}`);
  if (access.authorize !== undefined && typeof access.authorize !== 'function') throw new TypeError(`authorize must be a function, got ${typeof access.authorize}`);
  const token = checkToken('token', access.token);
  if (!token && !access.authorize) throw new TypeError('configureReadAccess needs a token or an authorize function (null reopens read access)');
  processRead = { token, authorize: access.authorize };
}

export interface AccessOptions {
  /** Records a refused state change in the audit trail (the ops router passes its ops plane's). */
  audit?: (action: string, source: string, why: string) => void;
  /** The ops token (default env `RELIABILITY_OPS_TOKEN`): state changes need it; reads accept it. */
  token?: string;
  /** The read token (default: `configureReadAccess`, else env `RELIABILITY_READ_TOKEN`). */
  readToken?: string;
  /** Decides read access per request (false: 403); wins over the read token. */
  authorize?: (req: Req) => boolean;
  /** Require a token for reads even when no read token is configured (the ops token then). */
  protectReads?: boolean;
  /** With no ops token configured, allow state changes from loopback addresses (default false: 403). */
  allowLoopbackWithoutToken?: boolean;
  /** Failed tokens per address per window before that address's failures get 429 (default 10). */
  maxTokenFailures?: number;
  /** Failed tokens from all addresses together per window before every failure gets 429 (default 100). */
  maxGlobalTokenFailures?: number;
  /** The limiter's window in ms (default 60000). */
  failureWindowMs?: number;
}

export interface Access {
  /** Guards a state-changing endpoint (`action` names it in the audit trail). */
  write(action: string): Middleware;
  /** The read guard: open unless read access is closed by configuration. */
  read: Middleware;
}

/**
 * The guards of one router. A request with the right token is never refused
 * by the limiter: it is checked first, and the limiter only counts and
 * throttles failures (so others' failures, behind one proxy or NAT, cannot
 * lock the operator out).
 *
 *   const access = createAccess({ token }); router.post('/safe-mode', access.write('safe-mode'), handler);
 */
export function createAccess(options: AccessOptions = {}): Access {
  const opsToken = checkToken(options.token !== undefined ? 'token' : 'RELIABILITY_OPS_TOKEN', options.token ?? process.env.RELIABILITY_OPS_TOKEN);
  const ownRead = checkToken(options.readToken !== undefined ? 'readToken' : 'RELIABILITY_READ_TOKEN', options.readToken ?? process.env.RELIABILITY_READ_TOKEN);
  if (options.authorize !== undefined && typeof options.authorize !== 'function') throw new TypeError(`authorize must be a function, got ${typeof options.authorize}`);
  const perSource = options.maxTokenFailures ?? AUTH_DEFAULTS.maxTokenFailures;
  const windowMs = options.failureWindowMs ?? AUTH_DEFAULTS.failureWindowMs;
  const global = options.maxGlobalTokenFailures ?? AUTH_DEFAULTS.maxGlobalTokenFailures;
  for (const [k, v] of [['maxTokenFailures', perSource], ['failureWindowMs', windowMs], ['maxGlobalTokenFailures', global]] as const) {
    if (typeof v !== 'number') throw new TypeError(`${k} must be a number, got ${typeof v}`);
  }
  native.authCheckLimits(perSource, windowMs, global);
  const audit = options.audit ?? (() => {});

  const tooMany = (res: Res, seconds: number) => {
    res.setHeader('Retry-After', String(Math.max(1, seconds)));
    res.status(429).json({ error: 'Too Many Requests', message: 'too many failed token attempts; requests with the right token are still served' });
  };
  /** A failed token: 429 while failures are throttled, else counted and 401. */
  const refuse = (req: Req, res: Res, given: string | undefined, message: string, action?: string): void => {
    const source = sourceOf(req);
    const wait = native.authRetryAfter(source, Date.now(), perSource, windowMs, global);
    if (wait > 0) return tooMany(res, wait);
    const [now, retry] = native.authFailure(source, Date.now(), perSource, windowMs, global);
    if (action !== undefined) audit(action, source, given === undefined ? 'missing token' : 'wrong token');
    if (now === 1) return tooMany(res, retry);
    res.setHeader('WWW-Authenticate', 'Bearer');
    res.status(401).json({ error: 'Unauthorized', message });
  };

  const write = (action: string): Middleware => (req, res, next) => {
    const source = sourceOf(req);
    if (!opsToken) {
      if (options.allowLoopbackWithoutToken && isLoopback(source)) {
        req.opsWho = { actor: 'loopback', source } satisfies Who;
        return next();
      }
      audit(action, source, 'no ops token configured');
      return res.status(403).json({ error: 'Forbidden', message: 'ops actions are disabled: set RELIABILITY_OPS_TOKEN' });
    }
    const given = bearer(req);
    if (!tokenMatches(given, opsToken)) {
      return refuse(req, res, given, given === undefined ? 'an ops token is required (Authorization: Bearer <token>)' : 'wrong ops token', action);
    }
    native.authSuccess(source);
    const h = req.headers['x-ops-actor'];
    const actor = typeof h === 'string' ? h.replace(/[^\w.@:-]/g, '').slice(0, 64) : '';
    req.opsWho = { actor: actor || 'ops-token', source } satisfies Who;
    next();
  };

  if (opsToken && opsTokens.size < 16) opsTokens.add(opsToken);

  const read: Middleware = (req, res, next) => {
    // Read per request, so configureReadAccess applies to routers made before it.
    const authorize = options.authorize ?? (ownRead ? undefined : processRead?.authorize);
    if (authorize) {
      let ok = false;
      try {
        ok = authorize(req) === true;
      } catch {
        ok = false;
      }
      if (ok) return next();
      return res.status(403).json({ error: 'Forbidden', message: 'read access to this endpoint is closed by configuration' });
    }
    const readToken = ownRead || processRead?.token || '';
    if (!readToken && !options.protectReads) return next();
    const accepted = [readToken, opsToken, ...opsTokens].filter((t) => t !== '');
    const given = bearer(req);
    if (accepted.length > 0 && matchesAny(given, accepted)) return next();
    if (accepted.length === 0) return res.status(403).json({ error: 'Forbidden', message: 'reads need a token and none is configured: set RELIABILITY_READ_TOKEN' });
    refuse(req, res, given, given === undefined ? 'this endpoint needs a read token (Authorization: Bearer <token>)' : 'wrong read token');
  };
  return { write, read };
}
