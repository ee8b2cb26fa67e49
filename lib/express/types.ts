/**
 * The Express shapes the package's factories return, declared here so that
 * the package's `.d.ts` files need no `@types/express`: `express` is an
 * optional peer, and a type import of it would fail to compile for every
 * user without those types (`skipLibCheck: false`). Each type is
 * structural and assignable where Express takes a handler, with or without
 * `@types/express` (4 or 5) in the app:
 *
 *   import express from 'express';
 *   import { createMetricsRouter, type ExpressRouter } from '@dreamnet/reliability-core';
 *   const metrics: ExpressRouter = createMetricsRouter();
 *   express().use(metrics);
 *
 * Where the full `express.Router` type is wanted, cast:
 * `createMetricsRouter() as unknown as express.Router` (it is one at run time).
 */

/** Express's `next`: called with nothing to go on, or an error. */
export type NextFunction = (err?: unknown) => void;

/**
 * A middleware, as Express calls it. Request and response are `any` so that
 * it fits Express's own `RequestHandler`, whatever the app's types for them.
 */
export interface ExpressMiddleware {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  (req: any, res: any, next: NextFunction): void;
}

/** A route path as Express takes it. */
export type ExpressPath = string | RegExp | Array<string | RegExp>;

/** A route handler or middleware to add to a router. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ExpressHandler = (req: any, res: any, next: NextFunction) => unknown;

/** An error handler (four parameters), for `use`. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ExpressErrorHandler = (err: any, req: any, res: any, next: NextFunction) => unknown;

/**
 * An Express router: mounts with `app.use(router)`, and takes more routes
 * (one signature per form, so handlers' parameters are typed from context).
 */
export interface ExpressRouter extends ExpressMiddleware {
  use(...handlers: Array<ExpressHandler | ExpressHandler[]>): this;
  use(path: ExpressPath, ...handlers: Array<ExpressHandler | ExpressHandler[]>): this;
  use(...handlers: ExpressErrorHandler[]): this;
  use(path: ExpressPath, ...handlers: ExpressErrorHandler[]): this;
  all(path: ExpressPath, ...handlers: Array<ExpressHandler | ExpressHandler[]>): this;
  get(path: ExpressPath, ...handlers: Array<ExpressHandler | ExpressHandler[]>): this;
  post(path: ExpressPath, ...handlers: Array<ExpressHandler | ExpressHandler[]>): this;
  put(path: ExpressPath, ...handlers: Array<ExpressHandler | ExpressHandler[]>): this;
  patch(path: ExpressPath, ...handlers: Array<ExpressHandler | ExpressHandler[]>): this;
  delete(path: ExpressPath, ...handlers: Array<ExpressHandler | ExpressHandler[]>): this;
}

/**
 * What the package uses of the `express` module: `Router()` and `json()`. Pass the app's
 * own as the `express` option of a router factory where the package cannot
 * find it (see `express-of.ts`).
 */
export interface ExpressModule {
  Router(options?: object): ExpressRouter;
  json(options?: { limit?: string | number; strict?: boolean }): ExpressMiddleware;
}
