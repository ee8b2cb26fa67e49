/**
 * Every endpoint the package serves, in one list: which router serves it,
 * where (relative to the router's default mount), whether it reads or
 * changes state, and that no control may shed it. The operator must never
 * be locked out: safe mode, brownout at any level, quarantine and rollout
 * refusals all leave these alone, whatever order the stack and the routers
 * are mounted in and wherever they are mounted.
 *
 * How a gate mounted before the routers knows them: every package router is
 * tagged (`tagRouter`) with what it serves below its mount point; for a
 * request, `isPackageRequest` walks the app's own layers (Express 4's
 * `app._router`, Express 5's `app.router`, nested routers and sub-apps) to
 * the tagged router the path would reach. Routers mounted at the root are
 * asked directly; for the others the answer is cached per app and path
 * (bounded), so the walk runs once per distinct path, and only while a
 * control is on. The default mount points are recognised without a walk.
 *
 *   isPackageRequest(req) // true for /api/ops/status, /metrics, /internal/ops/status if mounted there
 */
import { compilePattern } from './patterns';

/** `probe`: open, for load balancers; `page`: the dashboard's assets (no data); `read`: behind the read guard; `write`: needs the ops token. */
export type Access = 'probe' | 'page' | 'read' | 'write';
export type RouterKind = 'health' | 'metrics' | 'observability' | 'ops' | 'dashboard';

export interface Endpoint {
  router: RouterKind;
  method: 'GET' | 'POST' | 'DELETE';
  /** The path relative to the router (its default mount point is `ROUTER_MOUNTS`). */
  path: string;
  access: Access;
  /** Whether a control may shed it: never, for the package's own endpoints. */
  shed: false;
}

/** Where each router is mounted in the README (health and metrics at the root, with full paths). */
export const ROUTER_MOUNTS: Readonly<Record<RouterKind, string>> = Object.freeze({
  health: '',
  metrics: '',
  observability: '/api/observability',
  ops: '/api/ops',
  dashboard: '/api/observability/dashboard',
});

const e = (router: RouterKind, method: Endpoint['method'], path: string, access: Access): Endpoint => ({ router, method, path, access, shed: false });

/** The list. The observability parts added with `addObservabilityPart` join it (`addEndpoint`). */
export const ENDPOINTS: Endpoint[] = [
  e('health', 'GET', '/health/live', 'probe'),
  e('health', 'GET', '/api/health/live', 'probe'),
  e('health', 'GET', '/health/ready', 'probe'),
  e('health', 'GET', '/api/health/ready', 'probe'),
  e('health', 'GET', '/api/observability/health-gates', 'read'),
  e('health', 'GET', '/api/observability/startup-dag', 'read'),
  e('metrics', 'GET', '/api/observability/golden-signals', 'read'),
  e('metrics', 'GET', '/metrics', 'read'),
  ...['/golden-signals', '/watchdogs', '/circuit-breakers', '/health-gates', '/startup-dag', '/ops', '/cluster', '/rollouts', '/summary'].map((p) => e('observability', 'GET', p, 'read')),
  e('ops', 'GET', '/status', 'read'),
  e('ops', 'GET', '/audit', 'read'),
  e('ops', 'GET', '/dlq', 'read'),
  e('ops', 'POST', '/safe-mode', 'write'),
  e('ops', 'POST', '/brownout', 'write'),
  e('ops', 'POST', '/agents/:agentId/quarantine', 'write'),
  e('ops', 'DELETE', '/agents/:agentId/quarantine', 'write'),
  e('ops', 'POST', '/rollback', 'write'),
  e('ops', 'POST', '/dlq/:name/drain', 'write'),
  e('ops', 'POST', '/dlq/drain', 'write'),
  e('dashboard', 'GET', '/', 'page'),
  e('dashboard', 'GET', '/config.json', 'page'),
  e('dashboard', 'GET', '/:file', 'page'),
];

/** Adds an endpoint to the list (an observability part added at run time). */
export function addEndpoint(endpoint: Omit<Endpoint, 'shed'>): void {
  if (!ENDPOINTS.some((x) => x.router === endpoint.router && x.method === endpoint.method && x.path === endpoint.path)) ENDPOINTS.push({ ...endpoint, shed: false });
}

/** The full default path of each endpoint (mount point + path). */
export function defaultPaths(filter: (x: Endpoint) => boolean = () => true): string[] {
  return ENDPOINTS.filter(filter).map((x) => ROUTER_MOUNTS[x.router] + (x.path === '/' ? '/' : x.path));
}

// The default mount points: recognised by a prefix test, no walk.
const DEFAULT_OWN = ['/health', '/api/health', '/api/observability', '/api/ops', '/metrics'].map(compilePattern);

const TAG = Symbol.for('@dreamnet/reliability-core.endpoints');
let generation = 0;

/**
 * Marks `router` as the package's: `owns(rest)` says whether a path below
 * its mount point (`/status`) is one of its endpoints. Routers that own
 * everything below their mount point (observability, ops, dashboard) pass
 * nothing.
 */
export function tagRouter<T extends object>(router: T, owns: (rest: string) => boolean = () => true): T {
  Object.defineProperty(router, TAG, { value: owns, configurable: true });
  // Cached "not the package's" answers may now be wrong (this router may be mounted next).
  generation++;
  return router;
}

/** A matcher for a router that serves only the given paths below its mount point. */
export function ownsPaths(paths: string[]): (rest: string) => boolean {
  // The compiled patterns match each exact path too (`/a` matches `/a` and
  // `/a/...`): no Set of the paths, whose lookup would hash the request's
  // path, a fresh string, on every miss.
  const ms = paths.map((p) => compilePattern(p.includes(':') ? p : p.replace(/\/$/, '') || '/'));
  return (rest) => {
    for (let i = 0; i < ms.length; i++) if (ms[i].test(rest)) return true;
    return false;
  };
}

function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

/** The router stack of an app (Express 4 `_router`, Express 5 `router`), or of a router. */
function stackOf(h: any): any[] | undefined {
  if (Array.isArray(h?.stack)) return h.stack;
  // Express 5's `app.router` is a getter that creates the router: read `_router` first.
  const r = h?._router ?? (typeof h?.handle === 'function' && typeof h?.set === 'function' ? h.router : undefined);
  return Array.isArray(r?.stack) ? r.stack : undefined;
}

/** The part of `path` a middleware layer matches, or null (Express 4: boolean + `layer.path`; 5: an object). */
function layerMatch(layer: any, path: string): string | null {
  try {
    const m = layer.match(path);
    if (m === true) return typeof layer.path === 'string' ? layer.path : '';
    if (m && typeof m === 'object') return typeof m.path === 'string' ? m.path : '';
    return null;
  } catch {
    return null; // a malformed parameter: Express answers 400 itself
  }
}

function walk(stack: any[], path: string, depth: number): boolean {
  if (depth > 16) return false;
  for (const layer of stack) {
    if (!layer || layer.route || typeof layer.match !== 'function') continue; // app.get(...) routes are the app's
    const h = layer.handle;
    if (typeof h !== 'function') continue;
    const owns = h[TAG] as ((rest: string) => boolean) | undefined;
    const sub = owns ? undefined : stackOf(h);
    if (!owns && !sub) continue;
    const matched = layerMatch(layer, path);
    if (matched === null) continue;
    let rest = path.slice(matched.length);
    if (!rest.startsWith('/')) rest = '/' + rest;
    if (owns ? owns(rest) : walk(sub!, rest, depth + 1)) return true;
  }
  return false;
}

/** Whether an app-level layer matches every path (mounted at `/`): Express 4 `regexp.fast_slash`, 5 `slash`. */
function atRoot(layer: any): boolean {
  return layer.regexp?.fast_slash === true || layer.slash === true;
}

/** Whether any stack below `stack` holds a tagged router (the walk could answer true). */
function holdsTagged(stack: any[], depth: number): boolean {
  if (depth > 16) return false;
  for (const layer of stack) {
    if (!layer || layer.route || typeof layer.match !== 'function') continue;
    const h = layer.handle;
    if (typeof h !== 'function') continue;
    if (h[TAG]) return true;
    const sub = stackOf(h);
    if (sub && holdsTagged(sub, depth + 1)) return true;
  }
  return false;
}

/**
 * What an app's layers say about its paths, computed once per app, tag
 * generation and length of its stack. `rootOwns`: the tagged routers
 * mounted at `/` (health and metrics are, by default), asked directly. Only
 * when some other layer could reach a tagged router (`walk`) does a request
 * pay for a lookup by path in `paths`, whose key is the request's path: a
 * fresh string, hashed on each lookup. So an app without the package's
 * routers away from the root, like most, pays a few prefix tests per
 * request and no hashing.
 */
interface AppPlan {
  generation: number;
  layers: number;
  rootOwns: ((rest: string) => boolean)[];
  walk: boolean;
  paths: Map<string, boolean>;
}

function planOf(stack: any[]): AppPlan {
  const rootOwns: ((rest: string) => boolean)[] = [];
  let needsWalk = false;
  for (const layer of stack) {
    if (!layer || layer.route || typeof layer.match !== 'function') continue;
    const h = layer.handle;
    if (typeof h !== 'function') continue;
    const owns = h[TAG] as ((rest: string) => boolean) | undefined;
    if (owns && atRoot(layer)) rootOwns.push(owns);
    else if (owns) needsWalk = true;
    else {
      const sub = stackOf(h);
      if (sub && holdsTagged(sub, 1)) needsWalk = true;
    }
  }
  return { generation, layers: stack.length, rootOwns, walk: needsWalk, paths: new Map() };
}

const CACHE_CAP = 10_000;
const byApp = new WeakMap<object, AppPlan>();

// The outermost app, cached by the request's prototype. Express gives
// every request its app's \`app.request\` as prototype, which holds \`app\`:
// the prototype says which app a request runs in without loading
// \`req.app\` (a load through the prototype chain of an object the engine
// sees in many shapes) nor \`app.parent\` (missing on a top-level app: a
// walk of its prototype chain), about 0.2-0.3 µs per request together.
// Requests whose prototype holds no \`app\` (mocks) are not cached. The
// answer changes only when an app is mounted into another, so it is looked
// up again every 1024 requests.
let lastProto: object | null = null;
let lastRoot: unknown = null;
let rootChecks = 0;

/** The outermost app a request runs in (sub-apps know their parent). */
function rootApp(req: any): any {
  const proto = Object.getPrototypeOf(req);
  if (proto === lastProto && (++rootChecks & 1023) !== 0) return lastRoot;
  let app = req.app;
  const cacheable = proto !== null && Object.prototype.hasOwnProperty.call(proto, 'app') && proto.app === app;
  for (let i = 0; i < 16 && app?.parent; i++) app = app.parent;
  if (cacheable) {
    lastProto = proto;
    lastRoot = app;
  } else if (proto === lastProto) lastProto = null;
  return app;
}

/** The default mount points, without a loop over matchers: the first character after `/` rules most paths out. */
function atDefaultMount(path: string): boolean {
  const c = path.charCodeAt(1);
  if (c === 97 /* a */) {
    // `/api/health`, `/api/observability`, `/api/ops`.
    const d = path.charCodeAt(5);
    if ((d !== 104 && d !== 111) || !path.startsWith('/api/')) return false; // h, o
  } else if (c !== 104 /* h */ && c !== 109 /* m */) return false;
  for (let i = 0; i < DEFAULT_OWN.length; i++) if (DEFAULT_OWN[i].test(path)) return true;
  return false;
}

/**
 * True when the request is for one of the package's own endpoints, wherever
 * its router is mounted. Costs a few prefix tests for the default mount
 * points and the routers mounted at the root; a cached lookup by path only
 * when a package router is mounted elsewhere.
 *
 *   if (isPackageRequest(req)) return next(); // never shed the package's own endpoints
 */
export function isPackageRequest(req: any): boolean {
  const url = req.originalUrl ?? req.url ?? '/';
  const path = pathOf(typeof url === 'string' ? url : String(url));
  if (atDefaultMount(path)) return true;
  const app = rootApp(req);
  const stack = stackOf(app);
  if (!stack) return false;
  let c = byApp.get(app);
  // A new layer (app.use after the first request) or a newly tagged router may change the plan.
  if (c === undefined || c.generation !== generation || c.layers !== stack.length) byApp.set(app, (c = planOf(stack)));
  const root = c.rootOwns;
  for (let i = 0; i < root.length; i++) if (root[i](path)) return true;
  if (!c.walk) return false;
  let v = c.paths.get(path);
  if (v === undefined) {
    v = walk(stack, path, 0);
    if (c.paths.size < CACHE_CAP) c.paths.set(path, v);
  }
  return v;
}
