/**
 * What the package does differently under a test runner, and the per-load
 * bookkeeping that makes `resetAll()` reach everything.
 *
 * A test runner is detected from `JEST_WORKER_ID`, `VITEST` or
 * `NODE_ENV=test` (`RELIABILITY_TEST_MODE=0`/`1` overrides the guess). Then:
 * - the package's log lines are off (pass a `logger` to turn them back on);
 * - the ops plane writes no state file unless one is named;
 * - breakers fill options left out from the test defaults held in Rust
 *   (`BreakerOptions::under_test()`: retries keep their count but do not wait);
 * - time comes from `Date.now()`, read at each use, and timers from the
 *   global `setTimeout`, so Jest's and vitest's fake timers move breakers,
 *   windows, timeouts and retry sleeps (outside tests: `performance.now()`
 *   and `node:timers`, which no fake timer touches);
 * - when the package's JS is loaded again in the same thread (Jest loads it
 *   once per test file, vitest `vmThreads` too) everything the addon holds is
 *   reset, so no state leaks from one test file into the next
 *   (`RELIABILITY_AUTO_RESET=0` turns that off).
 *
 *   import { underTestRunner } from './test-runner';
 *   if (underTestRunner) console.log('quiet, no state file, instant retries');
 */
import { performance } from 'node:perf_hooks';
import { clearTimeout as nodeClearTimeout, setTimeout as nodeSetTimeout } from 'node:timers';
import { native } from './native';

function detect(env: NodeJS.ProcessEnv): boolean {
  const forced = env.RELIABILITY_TEST_MODE;
  if (forced === '1' || forced === 'true') return true;
  if (forced === '0' || forced === 'false') return false;
  return env.JEST_WORKER_ID !== undefined || env.VITEST !== undefined || env.NODE_ENV === 'test';
}

/** True when the package was loaded under Jest, vitest or `NODE_ENV=test`. */
export const underTestRunner: boolean = detect(process.env);

// [epoch, loads]: Rust bumps the epoch on every reset, in every load's copy.
const shared = new Float64Array(2);

/** How many times the package's JS has been loaded in this thread (this load included). */
export const loadCount: number = native.rcAttach(shared, underTestRunner);

/** Changes on every `resetAll()`: caches compare it to drop what they hold. */
export function epoch(): number {
  if (watchFiles) checkFile();
  return shared[0];
}

// ---- the clock ------------------------------------------------------------------

const realNow = (): number => performance.now();
/**
 * The monotonic clock in force outside tests when none is injected: a module
 * compares the clock `onClock` hands it with this one to know that it may
 * cache readings (the breakers' turn clock does; a fake or injected clock is
 * read at every use).
 *
 *   onClock((c) => (cacheable = c === monotonicClock));
 */
export const monotonicClock: () => number = realNow;
// Under a test runner: the global Date, looked up at each call (fake timers
// replace it after this module loaded), on the same origin as performance.now().
const origin = performance.timeOrigin;
const runnerNow = (): number => globalThis.Date.now() - origin;

let injected: (() => number) | null = null;
const listeners: Array<(now: () => number) => void> = [];

/** The clock in force: an injected one, the test runner's, or the monotonic one. */
export function currentClock(): () => number {
  return injected ?? (underTestRunner ? runnerNow : realNow);
}

/**
 * Calls `use` with the clock now and whenever `setClock` changes it, so a
 * module keeps a plain function in a local (no indirection on its hot path).
 */
export function onClock(use: (now: () => number) => void): void {
  listeners.push(use);
  use(currentClock());
}

/**
 * Injects the clock every breaker, metric window and timeout reads: a
 * function returning milliseconds on `performance.now()`'s scale
 * (monotonic, from `performance.timeOrigin`). `null` restores the default.
 *
 *   let t = 0;
 *   setClock(() => t); // then move `t` forward in the test
 */
export function setClock(clock: (() => number) | null): void {
  if (clock !== null && typeof clock !== 'function') throw new TypeError(`clock must be a function or null, got ${typeof clock}`);
  injected = clock;
  const c = currentClock();
  for (const l of listeners) l(c);
}

// ---- timers ------------------------------------------------------------------------

/**
 * The timers for work a caller awaits (retry sleeps, call timeouts): under a
 * test runner the global ones, looked up at each call so fake timers
 * installed later drive them; otherwise `node:timers`.
 */
export const callTimers: { after: (fn: () => void, ms: number) => NodeJS.Timeout; cancel: (t: NodeJS.Timeout) => void } = underTestRunner
  ? { after: globalSetTimeout, cancel: globalClearTimeout }
  : { after: (fn, ms) => nodeSetTimeout(fn, ms), cancel: (t) => nodeClearTimeout(t) };

/**
 * A browser-like environment (Jest's jsdom) answers `setTimeout` with a
 * number: wrap it so callers can still `ref()`/`unref()` (no-ops there).
 */
class TimerId {
  constructor(readonly id: unknown) {}
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
  hasRef(): boolean {
    return true;
  }
}

function globalSetTimeout(fn: () => void, ms: number): NodeJS.Timeout {
  const t: unknown = globalThis.setTimeout(fn, ms);
  return (typeof t === 'object' && t !== null && typeof (t as NodeJS.Timeout).unref === 'function' ? t : new TimerId(t)) as NodeJS.Timeout;
}

function globalClearTimeout(t: NodeJS.Timeout): void {
  globalThis.clearTimeout((t instanceof TimerId ? t.id : t) as NodeJS.Timeout);
}

// ---- automatic isolation between test files -------------------------------------

/** Resets what the addon holds in this thread (see `resetAll` in `./testing`). */
export function resetNative(): void {
  native.rcResetAll(currentClock()());
}

const autoReset = underTestRunner && process.env.RELIABILITY_AUTO_RESET !== '0';

// A second load in this thread under a test runner is a new test file (Jest's
// module registry per file, vitest's vmThreads): start it from nothing.
if (loadCount > 1 && autoReset) resetNative();

// vitest with `isolate: false` runs many files on one module instance, so
// there is no second load to see; its worker state names the file running
// (`__vitest_worker__.filepath`, set before each file's tests). When it
// changes, the first call into the package resets first.
type VitestWorker = { filepath?: string };
const vitestWorker = (): VitestWorker | undefined => (globalThis as { __vitest_worker__?: VitestWorker }).__vitest_worker__;

/** True when `checkFile()` has a test file to watch (vitest); the hot paths test it before calling. */
export const watchFiles: boolean = autoReset && process.env.VITEST !== undefined;
let lastFile: string | undefined = watchFiles ? vitestWorker()?.filepath : undefined;

/** Resets the package when vitest has moved on to another test file since the last call. */
export function checkFile(): void {
  const f = vitestWorker()?.filepath;
  if (f === lastFile || f === undefined) return;
  const first = lastFile === undefined;
  lastFile = f;
  if (!first) resetNative();
}
