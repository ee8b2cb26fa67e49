/**
 * The `/express` subpath: every Express adapter of the package in one
 * import (middleware, routers, the combined stack, probes, the one auth
 * guard and the endpoint list). The domain subpaths (`/ops`,
 * `/health-gates`, `/metrics`, ...) re-export the same functions.
 *
 *   import { reliabilityStack, createOpsRouter, createHealthRouter } from '@dreamnet/reliability-core/express';
 */
export * from './ops';
export * from './stack';
export * from './health';
export { AUTH_DEFAULTS, checkToken, configureReadAccess, createAccess, type Access, type AccessOptions, type ReadAccess } from './auth';
export { ENDPOINTS, ROUTER_MOUNTS, isPackageRequest, type Endpoint } from './endpoints';
export { metricsMiddleware, createMetricsRouter } from '../metrics';
export { createObservabilityRouter } from '../observability';
export { createDashboardRouter } from '../dashboard';
export { trafficShapingMiddleware, withTrafficShaping } from '../traffic-shaping';
export type { ExpressErrorHandler, ExpressHandler, ExpressMiddleware, ExpressModule, ExpressPath, ExpressRouter, NextFunction } from './types';
