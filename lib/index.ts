export * from './circuit-breaker';
export * from './metrics';
export * from './dag-loader';
export * from './health-gates';
