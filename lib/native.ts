/**
 * The compiled Rust addon, loaded through napi-rs's platform loader
 * (`index.js` at the package root picks the right `.node` file or the
 * per-platform npm package).
 */
// eslint-disable-next-line @typescript-eslint/no-var-requires
export const native: typeof import('../index') = require('../index.js');
