export * from './circuit-breaker';
export * from './metrics';
