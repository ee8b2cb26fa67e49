/**
 * Finds `express` for the router factories. Express is the app's (an
 * optional peer), so it is looked up from the app first: with pnpm's strict
 * layout, a linked package (`npm link`, workspaces) or a nested install,
 * `require('express')` from this package's own folder finds nothing, or
 * another copy. Looked up once per process; an `express` option wins.
 *
 *   const express = expressOf(options.express, 'createMetricsRouter');
 *   const router = express.Router();
 */
import { createRequire } from 'node:module';
import * as path from 'node:path';
import type { ExpressModule } from './types';

let found: ExpressModule | null = null;

/** Where to look: the app's entry point, the script run, the working directory, then this package. */
function bases(): string[] {
  const out: string[] = [];
  const main = require.main?.filename;
  if (main) out.push(main);
  const script = process.argv[1];
  if (script && path.isAbsolute(script)) out.push(script);
  // createRequire wants a file; it need not exist.
  out.push(path.join(process.cwd(), '__reliability_core_resolve__.js'));
  out.push(__filename);
  return out;
}

function isExpress(m: unknown): m is ExpressModule {
  return (typeof m === 'function' || (typeof m === 'object' && m !== null)) && typeof (m as ExpressModule).Router === 'function';
}

/**
 * The `express` module to build routers with: `given` (a factory's
 * `express` option) if set, else the app's. Throws an `Error` with code
 * `ERR_EXPRESS_NOT_FOUND` naming the folders tried and the two fixes.
 */
export function expressOf(given: ExpressModule | undefined, caller: string): ExpressModule {
  if (given !== undefined) {
    if (!isExpress(given)) throw new TypeError(`${caller}: options.express must be the express module (with a Router function), got ${given === null ? 'null' : typeof given}`);
    return given;
  }
  if (found) return found;
  const tried: string[] = [];
  for (const base of bases()) {
    const dir = path.dirname(base);
    if (tried.includes(dir)) continue;
    tried.push(dir);
    const req = createRequire(base);
    let file: string;
    try {
      file = req.resolve('express');
    } catch {
      continue; // not from here: try the next place
    }
    const m = req(file);
    if (isExpress(m)) return (found = m);
  }
  const err = new Error(
    `${caller}() needs express, which was not found from ${tried.join(', ')}. ` +
      `Install it in your app (npm i express), or pass it: ${caller}({ express: require('express') }).`,
  );
  (err as Error & { code: string }).code = 'ERR_EXPRESS_NOT_FOUND';
  throw err;
}
