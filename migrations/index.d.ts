// The `./migrations` subpath's types for resolvers without `exports` (see index.js).
export * from '../dist/migrations';
