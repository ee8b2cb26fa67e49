/**
 * The `/ops` subpath: the ops plane (`../ops`) and its Express side (the
 * middleware, the combined stack, the /api/ops router, the one auth guard),
 * so `/ops` stays one import while the domain module imports no adapter.
 *
 *   import { OpsControls, reliabilityStack, createOpsRouter } from '@dreamnet/reliability-core/ops';
 */
export * from '../ops';
export * from '../express/ops';
export * from '../express/stack';
export { AUTH_DEFAULTS, checkToken, configureReadAccess, createAccess, type Access, type AccessOptions, type ReadAccess } from '../express/auth';
export { ENDPOINTS, ROUTER_MOUNTS, isPackageRequest, type Endpoint } from '../express/endpoints';
