export * from './circuit-breaker';
export * from './metrics';
export * from './db-circuit-breaker';
export * from './migrations';
