/**
 * The ops dashboard: a self-contained page (HTML, JS, CSS and uPlot, all
 * shipped in `dist/dashboard/`, no CDN) that polls
 * `/api/observability/summary` and shows golden signals with charts,
 * breakers, health gates, rollouts with their history, watchdogs, the ops
 * state and the audit trail. The observability router mounts it at
 * `/dashboard`; `createDashboardRouter` mounts it anywhere else.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expressOf } from './express/express-of';
import type { ExpressModule, ExpressRouter } from './express/types';
import { tagRouter } from './express/endpoints';
import { rejectMalformedPath, requestErrors } from './express/requests';

export interface DashboardOptions {
  /** The app's `express` module, where the package cannot find it (default: found from the app). */
  express?: ExpressModule;
  /** Where the observability API is, relative to the page or absolute (default: the router's parent path). */
  apiBase?: string;
  /** Where the ops API is (default `/api/ops`). */
  opsPath?: string;
  /** Poll interval in ms (default 5000; `?interval=` in the page's URL overrides it). */
  pollMs?: number;
}

const ASSETS = path.join(__dirname, 'dashboard');
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/** The page's assets, read once (a few hundred kB) and served from memory. */
let files: Map<string, { body: Buffer; type: string }> | null = null;
function load(): Map<string, { body: Buffer; type: string }> {
  if (files) return files;
  files = new Map();
  for (const f of fs.readdirSync(ASSETS)) {
    const type = TYPES[path.extname(f)];
    if (type) files.set(f, { body: fs.readFileSync(path.join(ASSETS, f)), type });
  }
  return files;
}

/**
 * An Express router serving the dashboard (index, assets, `config.json`).
 *
 *   app.use('/ops-dashboard', createDashboardRouter());
 */
export function createDashboardRouter(options: DashboardOptions = {}): ExpressRouter {
  const pollMs = options.pollMs ?? 5000;
  if (!Number.isInteger(pollMs) || pollMs < 200 || pollMs > 600_000) throw new RangeError(`pollMs must be an integer from 200 to 600000, got ${String(options.pollMs)}`);
  const express = expressOf(options.express, 'createDashboardRouter');
  const router = express.Router();
  router.use(rejectMalformedPath);
  const send = (res: any, name: string) => {
    const f = load().get(name);
    if (!f) return res.status(404).json({ error: 'Not Found' });
    res.setHeader('Content-Type', f.type);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Content-Security-Policy', "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'self'");
    res.setHeader('Cache-Control', name === 'index.html' ? 'no-store' : 'public, max-age=300');
    res.end(f.body);
  };
  router.get('/', (req: any, res: any) => {
    // Relative asset paths need the trailing slash.
    if (!req.originalUrl.split('?')[0].endsWith('/')) return res.redirect(301, req.originalUrl.replace(/(\?|$)/, '/$1'));
    send(res, 'index.html');
  });
  router.get('/config.json', (req: any, res: any) => {
    // The API sits one level up from the page unless told otherwise.
    const apiBase = options.apiBase ?? (req.baseUrl.replace(/\/[^/]*$/, '') || '') + '/';
    res.setHeader('Cache-Control', 'no-store');
    res.json({ apiBase, opsPath: options.opsPath ?? '/api/ops', pollMs });
  });
  router.get('/:file', (req: any, res: any) => send(res, req.params.file));
  router.use(requestErrors);
  // Everything below its mount point is the package's: never shed by a control.
  return tagRouter(router);
}

let shared: ((req: any, res: any, next: (e?: unknown) => void) => void) | null = null;

/**
 * A ready dashboard router with the defaults (created on first request).
 *
 *   app.use('/api/observability/dashboard', dashboardRouter);
 */
export function dashboardRouter(req: any, res: any, next: (e?: unknown) => void): void {
  const r = (shared ??= createDashboardRouter());
  r(req, res, next);
}
tagRouter(dashboardRouter);
