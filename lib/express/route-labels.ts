/**
 * Route templates for metrics labels, taken when Express *matches* a route.
 *
 * Express assigns `req.route = route` when a route layer matches; at that
 * moment the route's own path is known, and the mount path of the routers
 * above it is still in force. When the response ends outside the router
 * (a later middleware after `next()`, an app-level error handler after
 * `next(err)`), Express has already restored `req.baseUrl`, so reading it
 * at the end loses the mount path. And `req.baseUrl` is the concrete prefix
 * (`/users/42/posts`), not the template (`/users/:uid/posts`).
 *
 * So `req.route` becomes an accessor on the request prototype (installed
 * with the other getters, see accessors.ts): its setter records the
 * request's `RouteLabel` in the tracker's record of the request (no
 * property is added to `req`, which under load costs more than this). The
 * template comes from the router tree: the first time a route object
 * matches, the app's stack is walked once to find the mount layers above
 * it, and each layer's path pattern is turned into a template (Express 5's
 * router keeps it as `layer.rawPath`; Express 4 keeps only the compiled
 * regexp, which is read back into its pattern). A route object mounted
 * once (the usual case) then costs one WeakMap lookup per request; one
 * reachable through several mounts is told apart by its concrete
 * `req.baseUrl`.
 *
 * Label forms (bounded: one per route layer, whatever the URLs):
 *   - `app.use('/api', router)` + `router.get('/users/:id')` → `/api/users/:id`
 *   - a regular expression path → its literal, e.g. `/api` + `/^\/item-\d+$/i` → `/api/^\/item-\d+$/i`
 *   - an array of paths → `(a|b)`, e.g. `app.get(['/a', '/b'])` → `(/a|/b)`
 *   - a request refused before routing (safe mode, brownout, quarantine,
 *     rollout) → the template of the route it would have reached, or
 *     `refused` when no route would have matched it.
 *
 *   const label = labelOfRequest(req); // RouteLabel | null, for finishRequest
 */
import { native, type Binding } from '../native';
import { endedSlot, liveSlot, type Label } from './tracker';

/**
 * The binding's refusal codes (the reasons of `http_requests_refused_total`);
 * a refused request's ring entry has status `status + stride * code`. The ops
 * gate's decisions 1-3 are the same codes.
 */
export const REFUSAL: Binding.SgRefusalCodes = native.metricsRefusalCodes();

/** One route template; `ids` caches its series id per method (metrics.ts owns that cache). */
export class RouteLabel implements Label {
  /** Series ids per method: [method, id, method, id, ...]; stale when `gen` differs from the store's. */
  ids: Array<string | number> = [];
  gen = -1;
  constructor(readonly template: string) {}
}

/** The label of requests refused before routing that no route would have matched. */
export const REFUSED_ROUTE = 'refused';
const REFUSED = new RouteLabel(REFUSED_ROUTE);

/** What a request the tracker does not follow (mocks, HTTP/2 objects, outside our middleware) keeps. */
interface Loose {
  route: unknown;
  label: RouteLabel | null;
  refused: number;
}
const loose = new WeakMap<object, Loose>();

// ---- templates of path patterns ---------------------------------------------------

/** A path pattern (string, RegExp or array of them) as a label part. */
export function templateOfPath(p: unknown): string {
  if (typeof p === 'string') return p;
  if (p instanceof RegExp) return String(p);
  if (Array.isArray(p)) return '(' + p.map(templateOfPath).join('|') + ')';
  return String(p);
}

/** A mount pattern as a prefix: `/` is nothing, a trailing slash is dropped (as Express drops it from `baseUrl`). */
function mountPart(t: string): string {
  if (t === '/' || t === '') return '';
  return t.length > 1 && t.endsWith('/') ? t.slice(0, -1) : t;
}

/** Mount prefix + route path, as Express composes URLs (`/api` + `/` is `/api`). */
export function joinTemplate(prefix: string, path: string): string {
  if (prefix === '') return path === '' ? '/' : path;
  return path === '/' || path === '' ? prefix : prefix + path;
}

/**
 * The pattern an Express 4 layer was built from, read back from the regexp
 * path-to-regexp 0.1 compiled it into (Express 4 does not keep the
 * pattern), or the regexp's literal when it is not one of those (a regexp
 * the app passed itself, or a form not read back here).
 */
function template4(layer: any): string {
  const re: RegExp = layer.regexp;
  if ((re as any).fast_slash) return '/';
  if ((re as any).fast_star) return '*';
  const keys: Array<{ name: string | number }> = layer.keys ?? [];
  const parts = splitAlternatives(re.source);
  const k = { i: 0 };
  const out: string[] = [];
  for (const part of parts) {
    const t = readBack(part, keys, k);
    if (t === null) return String(re);
    out.push(t);
  }
  return out.length === 1 ? out[0] : '(' + out.join('|') + ')';
}

/** Splits `^a…|^b…` (path-to-regexp's array form) at its top-level `|`s. */
function splitAlternatives(src: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (c === '\\') i++;
    else if (c === '(' || c === '[') depth++;
    else if (c === ')' || c === ']') depth--;
    else if (c === '|' && depth === 0) {
      out.push(src.slice(start, i));
      start = i + 1;
    }
  }
  out.push(src.slice(start));
  return out;
}

const SUFFIXES = ['\\/?(?=\\/|$)', '\\/?$', '?(?=\\/|$)', '?$', '(?=\\/|$)', '$'];
const PARAM = /^\(\?:(\\\.)?(\\\/)?\((.*?)\)\)(\?)?/;

/** One alternative of a path-to-regexp 0.1 source back to its pattern, or null. */
function readBack(src: string, keys: Array<{ name: string | number }>, k: { i: number }): string | null {
  if (!src.startsWith('^')) return null;
  let s = src.slice(1);
  const suffix = SUFFIXES.find((x) => s.endsWith(x));
  if (suffix === undefined) return null;
  s = s.slice(0, s.length - suffix.length);
  let out = '';
  while (s.length > 0) {
    if (s.startsWith('\\/')) {
      out += '/';
      s = s.slice(2);
    } else if (s.startsWith('\\.')) {
      out += '.';
      s = s.slice(2);
    } else if (s.startsWith('(.*)')) {
      out += '*';
      k.i++;
      s = s.slice(4);
    } else if (s.startsWith('(?:')) {
      const m = PARAM.exec(s);
      const key = keys[k.i];
      if (m === null || key === undefined || typeof key.name !== 'string') return null;
      k.i++;
      const capture = m[3];
      // The default capture of a parameter, `[^/]+?` (or `[^/.]+?` after a `.`), however the source escapes it.
      const plain = /^\[\^\\?\/(\\?\.)?\]\+\?$/.test(capture);
      out += (m[1] ? '.' : '') + (m[2] ? '/' : '') + ':' + key.name + (plain ? '' : `(${capture})`) + (m[4] ?? '');
      s = s.slice(m[0].length);
    } else if (/^[\w\-~!@&=+,;%]/.test(s)) {
      out += s[0];
      s = s.slice(1);
    } else {
      return null;
    }
  }
  return out === '' ? '/' : out;
}

/** A layer's path pattern as a template (Express 5: `rawPath`; Express 4: read back from its regexp). */
const layerTemplates = new WeakMap<object, string | null>();
function templateOfLayer(layer: any): string | null {
  let t = layerTemplates.get(layer);
  if (t === undefined) {
    if ('rawPath' in layer) t = templateOfPath(layer.rawPath);
    else if (layer.regexp instanceof RegExp) t = template4(layer);
    else t = null; // a router without either (an older `router`): fall back to the concrete baseUrl
    layerTemplates.set(layer, t);
  }
  return t;
}

// ---- matching layers (for mounts told apart by baseUrl, and for refused requests) ----

/** Length of the prefix of `path` that `layer` matches, or -1. Neither form stores anything on the layer. */
function matchLength(layer: any, path: string): number {
  if (typeof layer.match === 'function' && 'matchers' in layer) {
    // Express 5's router: `match` returns the match and leaves the layer alone.
    let m: any;
    try {
      m = layer.match(path);
    } catch {
      return -1; // a malformed escape in the path: Express answers 400 itself
    }
    return m ? String(m.path ?? '').length : -1;
  }
  const re = layer.regexp;
  if (!(re instanceof RegExp)) return -1;
  if ((re as any).fast_slash) return 0;
  if ((re as any).fast_star) return path.length;
  const m = re.exec(path);
  return m === null ? -1 : m[0].length;
}

function isRouter(fn: unknown): fn is { stack: unknown[] } {
  return typeof fn === 'function' && Array.isArray((fn as any).stack);
}

function handlesMethod(route: any, method: string): boolean {
  const f = route._handlesMethod ?? route._handles_method;
  try {
    return typeof f === 'function' ? Boolean(f.call(route, method)) : false;
  } catch {
    return false;
  }
}

function rootOf(app: any): { stack: unknown[] } | null {
  if (app == null || typeof app !== 'function') return null;
  // Express 4: `_router` (created by the first `use`/route; its `app.router` getter throws);
  // Express 5: the `router` getter.
  let r: any;
  try {
    r = app._router ?? app.router;
  } catch {
    return null;
  }
  return r != null && Array.isArray(r.stack) ? r : null;
}

/** The mount prefix of a sub-app (`app.use('/admin', adminApp)`): its mount paths up to the root app. */
function appPrefix(app: any): string {
  let prefix = '';
  for (let a = app, n = 0; a != null && a.parent != null && n < 8; a = a.parent, n++) {
    prefix = mountPart(templateOfPath(a.mountpath ?? '/')) + prefix;
  }
  return prefix;
}

/** Tree walks stop here: a router mounted inside itself, or a very large app, cannot make them unbounded. */
const MAX_DEPTH = 16;
const MAX_VISITS = 5_000;

// ---- the label of a matched route -------------------------------------------------

interface Chain {
  layers: unknown[];
  label: RouteLabel;
}
interface RouteInfo {
  /** The label when the route is reachable one way only (no baseUrl needed). */
  single: RouteLabel | null;
  chains: Chain[];
  /** Routes found nowhere in the app's tree: labelled from the concrete baseUrl, as before (bounded cache). */
  byBase: Map<string, RouteLabel> | null;
  path: string;
}
const routeInfos = new WeakMap<object, RouteInfo>();
const MAX_CHAINS = 8;

function analyse(route: any, app: any): RouteInfo {
  const path = templateOfPath(route.path);
  const info: RouteInfo = { single: null, chains: [], byBase: null, path };
  const root = rootOf(app);
  if (root !== null) {
    const prefix = appPrefix(app);
    const visits = { n: 0 };
    const walk = (stack: unknown[], layers: unknown[], parts: string, depth: number): void => {
      for (const layer of stack as any[]) {
        if (++visits.n > MAX_VISITS || info.chains.length >= MAX_CHAINS) return;
        if (layer == null) continue;
        if (layer.route === route) {
          info.chains.push({ layers, label: new RouteLabel(joinTemplate(parts, path)) });
        } else if (layer.route === undefined && isRouter(layer.handle) && depth < MAX_DEPTH) {
          const t = templateOfLayer(layer);
          if (t === null) continue;
          walk(layer.handle.stack, [...layers, layer], parts + mountPart(t), depth + 1);
        }
      }
    };
    walk(root.stack, [], prefix, 0);
  }
  if (info.chains.length === 1) info.single = info.chains[0].label;
  else if (info.chains.length === 0) info.byBase = new Map();
  return info;
}

/** Which of a route's mounts `baseUrl` (the concrete prefix Express matched) went through. */
function pickChain(info: RouteInfo, baseUrl: string): RouteLabel | null {
  for (const c of info.chains) {
    let rest = baseUrl;
    let ok = true;
    for (const layer of c.layers) {
      const n = matchLength(layer, rest === '' ? '/' : rest);
      if (n < 0) {
        ok = false;
        break;
      }
      rest = rest.slice(Math.min(n, rest.length));
      if (rest !== '' && rest[0] !== '/') rest = '/' + rest;
    }
    if (ok && (rest === '' || rest === '/')) return c.label;
  }
  return null;
}

function fromBase(info: RouteInfo, baseUrl: string): RouteLabel {
  const map = info.byBase ?? (info.byBase = new Map());
  let l = map.get(baseUrl);
  if (l === undefined) {
    l = new RouteLabel(joinTemplate(mountPart(baseUrl), info.path));
    // A route under many concrete prefixes: keep a few; the store caps series anyway.
    if (map.size < 8) map.set(baseUrl, l);
  }
  return l;
}

/**
 * The label of `route` for `req`, which just matched it. Reads `req.app`
 * the first time a route object is seen, and `req.baseUrl` only for a
 * route reachable several ways (or found nowhere in the tree).
 */
export function labelOfRoute(route: object, req: any): RouteLabel {
  let info = routeInfos.get(route);
  if (info === undefined) {
    info = analyse(route, req.app);
    routeInfos.set(route, info);
  }
  if (info.single !== null) return info.single;
  const base: string = req.baseUrl ?? '';
  if (info.chains.length > 0) {
    const l = pickChain(info, base);
    if (l !== null) return l;
  }
  return fromBase(info, base);
}

// ---- the `req.route` accessor -------------------------------------------------------

/** Routing goes on whatever an odd router tree does when walked: such a route is counted as unmatched. */
function safeLabel(route: object, req: any): RouteLabel | null {
  try {
    return labelOfRoute(route, req);
  } catch {
    return null;
  }
}

/**
 * `req.route` on a request prototype: the setter (Express's own
 * `req.route = route`) records the route and its label in the tracker's
 * record of the request, or, for a request the tracker does not follow, in
 * a WeakMap; the getter reads it back.
 */
export function defineRouteAccessor(proto: object): void {
  if (Object.prototype.hasOwnProperty.call(proto, 'route')) return; // someone else's
  Object.defineProperty(proto, 'route', {
    configurable: true,
    enumerable: false,
    get(this: any) {
      const s = liveSlot(this) ?? endedSlot(this);
      if (s !== null) return s.route ?? undefined;
      return loose.get(this)?.route;
    },
    set(this: any, route: unknown) {
      const label = route !== null && typeof route === 'object' ? safeLabel(route, this) : null;
      const s = liveSlot(this);
      if (s !== null) {
        s.route = route;
        s.label = label;
        return;
      }
      const l = loose.get(this);
      if (l !== undefined) {
        l.route = route;
        l.label = label;
      } else loose.set(this, { route, label, refused: 0 });
    },
  });
}

/** The label and refusal of a request the tracker does not follow (the listener path), or undefined. */
export function looseState(req: object): { label: RouteLabel | null; refused: number } | undefined {
  return loose.get(req);
}

// ---- refused requests ------------------------------------------------------------------

/**
 * Marks `req` as refused with `reason` (a refusal code from the binding,
 * `native.metricsRefusalCodes()`; the ops gate's decision codes are the same
 * numbers), and gives it the label of the route it would have reached when
 * routing has not happened yet. Counted when its response ends.
 */
export function markRefused(req: any, reason: number): void {
  const s = liveSlot(req);
  if (s !== null) {
    s.refused = reason;
    if (s.label === null) s.label = safeReach(req);
    return;
  }
  const l = loose.get(req);
  if (l !== undefined) {
    l.refused = reason;
    if (l.label === null) l.label = safeReach(req);
  } else loose.set(req, { route: undefined, label: safeReach(req), refused: reason });
}

/** A refusal is answered whatever an odd router or route object does when matched. */
function safeReach(req: any): RouteLabel {
  try {
    return wouldReach(req);
  } catch {
    return REFUSED;
  }
}

/** Per routing tree, method + path → label, for refused requests (bounded: past the cap, each refusal walks the tree). */
const reachCaches = new WeakMap<object, Map<string, RouteLabel>>();
const MAX_REACH_CACHE = 10_000;

/**
 * The label of the route `req` would have reached, found by matching the
 * app's routing table as Express would (middleware skipped), or `refused`.
 */
export function wouldReach(req: any): RouteLabel {
  const app = req.app;
  const root = rootOf(app);
  // A sub-app's requests are matched from the root app's path, which a sub-app does not have: labelled `refused`.
  if (root === null || app.parent != null) return REFUSED;
  const url: string = req.originalUrl ?? req.url ?? '/';
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const method: string = req.method ?? 'GET';
  const key = method + ' ' + path;
  let cache = reachCaches.get(root);
  if (cache === undefined) reachCaches.set(root, (cache = new Map()));
  let l = cache.get(key);
  if (l !== undefined) return l;
  const visits = { n: 0 };
  const walk = (stack: unknown[], p: string, parts: string, depth: number): RouteLabel | null => {
    for (const layer of stack as any[]) {
      if (++visits.n > MAX_VISITS) return null;
      if (layer == null) continue;
      const route = layer.route;
      if (route == null && !isRouter(layer.handle)) continue; // plain middleware: not a destination
      const n = matchLength(layer, p);
      if (n < 0) continue;
      if (route != null) {
        if (!handlesMethod(route, method)) continue;
        const found = routeInfos.get(route)?.single;
        return found ?? new RouteLabel(joinTemplate(parts, templateOfPath(route.path)));
      }
      if (depth >= MAX_DEPTH) continue;
      const t = templateOfLayer(layer);
      if (t === null) continue;
      let rest = p.slice(n);
      if (rest === '' || rest[0] !== '/') rest = '/' + rest;
      const r = walk(layer.handle.stack, rest, parts + mountPart(t), depth + 1);
      if (r !== null) return r;
    }
    return null;
  };
  l = walk(root.stack, path, '', 0) ?? REFUSED;
  if (cache.size < MAX_REACH_CACHE) cache.set(key, l);
  return l;
}
