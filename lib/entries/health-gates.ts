/**
 * The `/health-gates` subpath: the gates (`../health-gates`) and their
 * Express side (probes, observability handlers, graceful shutdown), so
 * `/health-gates` stays one import while the domain module imports no adapter.
 *
 *   import { getHealthGates, createHealthRouter } from '@dreamnet/reliability-core/health-gates';
 */
export * from '../health-gates';
export * from '../express/health';
