export * from './circuit-breaker';
export * from './metrics';
export * from './dag-loader';
export * from './health-gates';
export * from './db-circuit-breaker';
export * from './migrations';
export * from './ops';
export * from './observability';
