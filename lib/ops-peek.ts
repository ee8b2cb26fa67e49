/**
 * The process-wide ops plane, handed to the modules below it (traffic
 * shaping, watchdogs) without their importing `ops.ts`: `ops.ts` installs
 * the source when it loads. Until then there is no ops plane, and
 * `peekOps()` is null, which is also what it would answer.
 *
 *   import { peekOps } from './ops-peek';
 *   const ops = peekOps(); // OpsControls | null; never creates one
 */
import type { OpsControls } from './ops';

let source: () => OpsControls | null = () => null;

/** @internal Called by `ops.ts` at load. */
export function setOpsSource(f: () => OpsControls | null): void {
  source = f;
}

/** The process-wide ops plane if something created it, else null. */
export function peekOps(): OpsControls | null {
  return source();
}
