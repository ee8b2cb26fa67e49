/**
 * The compiled Rust addon, loaded through napi-rs's platform loader
 * (`index.js` at the package root picks the right `.node` file or the
 * per-platform npm package).
 *
 * The binding's types are imported as `'../index'`, written out: the emitted
 * `dist/*.d.ts` keep that specifier, which from `dist/` names the binding's
 * `index.d.ts` at the package root. A type TypeScript infers from the
 * binding (a return type nobody wrote) is emitted as `import("..").X`
 * unless the file has a name for the binding in scope, and from `dist/`
 * `".."` is the package's own main types (`dist/index.d.ts`): TS2694 for
 * every consumer with `skipLibCheck: false`. So a module whose declarations
 * carry such types imports `type Binding` from here, even if its code never
 * names it (__test__/consumers.test.js checks dist/ for `import("..")`).
 *
 *   import { native, type Binding } from './native';
 *   const s: Binding.CbSnapshot = new native.BreakerTable(io, ring, 0).snapshot(id, 0);
 */
import type * as Binding from '../index';
import { loadBinding } from './load-binding';

export type { Binding };

// A platform with no binary gets an error naming the platform package and the
// build-from-source command (lib/load-binding.ts), not napi's generic one.
// eslint-disable-next-line @typescript-eslint/no-var-requires
export const native: typeof Binding = loadBinding(() => require('../index.js'));
