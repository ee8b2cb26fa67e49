/**
 * The testing kit: `@dreamnet/reliability-core/testing`.
 *
 * Everything the package holds lives in the Rust addon, once per thread,
 * while Jest and vitest evaluate the package's JS once per test file: so the
 * reset is done in Rust, for every registry at once, and reaches state made
 * by any copy of the JS. Under a test runner the package already resets
 * itself when a new test file loads it (see `docs/TESTING.md`); call
 * `resetAll()` yourself between tests, and in a setup file when files share
 * one module instance (vitest `isolate: false`).
 *
 * ```ts
 * import { resetAll, openBreaker, routeFigures, drained } from '@dreamnet/reliability-core/testing';
 * beforeEach(() => resetAll());
 * it('answers 503 while payments is open', async () => {
 *   openBreaker('payments');
 *   await request(app).post('/pay').expect(503);
 *   await drained();
 *   expect(routeFigures('POST', '/pay')?.status5xx).toBe(1);
 * });
 * ```
 */
import { setImmediate } from 'node:timers';
import { getCircuitBreakerRegistry, type CircuitBreaker, type CircuitBreakerOptions } from './circuit-breaker';
import { flushMetrics, requestsInFlight } from './metrics';
import { native, type Binding } from './native';
import { checkFile, currentClock, resetNative, setClock, underTestRunner } from './test-runner';

export { setClock, underTestRunner };

/**
 * Resets everything the package holds, in Rust and JS: breakers are removed
 * (`has(name)` is false, `get(name, options)` makes a fresh one with those
 * options; a breaker object kept from before re-creates itself by name on
 * its next use), metrics figures and buffered requests are cleared, the ops
 * plane (switches, quarantines, audit, dead-letter queues), rollouts, health
 * gates, watchdogs and the startup DAG start empty, failed-token counts are
 * forgotten. Settings stay: `configureCircuitBreakers`, `configureMetrics`,
 * an injected clock. State made by any copy of the package's JS in this
 * thread is reached.
 *
 * ```ts
 * import { resetAll } from '@dreamnet/reliability-core/testing';
 * resetAll();
 * ```
 */
export function resetAll(): void {
  resetNative();
}

/**
 * Opens breaker `name` by hand (creating it with `options` if it does not
 * exist); it half-opens after its `resetTimeout` as usual. Returns it.
 *
 * ```ts
 * import { openBreaker } from '@dreamnet/reliability-core/testing';
 * openBreaker('payments').state; // 'open'
 * ```
 */
export function openBreaker(name: string, options?: CircuitBreakerOptions): CircuitBreaker {
  const b = getCircuitBreakerRegistry().get(name, options);
  b.open();
  return b;
}

/**
 * Closes breaker `name` by hand (creating it if needed), keeping its statistics. Returns it.
 *
 *   closeBreaker('payments'); // a test that opened it puts it back
 */
export function closeBreaker(name: string, options?: CircuitBreakerOptions): CircuitBreaker {
  const b = getCircuitBreakerRegistry().get(name, options);
  b.close();
  return b;
}

/** A clock a test moves by hand, installed with `setClock` by `useManualClock`. */
export interface ManualClock {
  /** The clock's time, ms on `performance.now()`'s scale. */
  now(): number;
  /** Moves the clock forward by `ms` (>= 0). */
  advance(ms: number): void;
}

/**
 * This module's own metrics binding, made on the first `routeFigures` call:
 * the store is shared by every binding of the thread, so reads through it see
 * what the middleware recorded. Its ring stays empty (nothing records here).
 */
let figuresBinding: InstanceType<typeof native.MetricsBinding> | null = null;
function figures(): InstanceType<typeof native.MetricsBinding> {
  figuresBinding ??= new native.MetricsBinding(new Float64Array(1 + 3 * native.metricsRingCap()), currentClock()());
  return figuresBinding;
}

let manual: (ManualClock & { read: () => number }) | null = null;

/**
 * Installs a clock that only moves when the test says so, starting at the
 * current time, for every breaker, metric window and call timeout. Use it
 * when fake timers are not an option; `setClock(null)` removes it.
 *
 * ```ts
 * import { useManualClock, openBreaker, setClock } from '@dreamnet/reliability-core/testing';
 * const clock = useManualClock();
 * const b = openBreaker('clock-doc', { resetTimeout: 1000 });
 * clock.advance(1000);
 * b.execute(() => 'ok'); // the half-open trial
 * setClock(null);
 * ```
 */
export function useManualClock(start: number = currentClock()()): ManualClock {
  if (typeof start !== 'number' || !Number.isFinite(start)) throw new TypeError(`start must be a finite number, got ${typeof start}`);
  let t = start;
  const read = (): number => t;
  manual = {
    read,
    now: read,
    advance(ms: number) {
      if (typeof ms !== 'number' || !(ms >= 0) || !Number.isFinite(ms)) throw new RangeError(`ms must be a finite number >= 0, got ${ms}`);
      t += ms;
    },
  };
  setClock(read);
  return manual;
}

/**
 * Moves the package's time forward by `ms`: the manual clock if one is in
 * force, otherwise installs one (see `useManualClock`) and moves it. With
 * Jest's or vitest's fake timers, `advanceTimersByTime` works as well.
 *
 *   openBreaker('payments', { resetTimeout: 30_000 });
 *   advanceClock(30_000); // the next call is the half-open trial
 */
export function advanceClock(ms: number): void {
  if (!manual || currentClock() !== manual.read) useManualClock();
  manual!.advance(ms);
}

/**
 * Resolves once every request the metrics saw begin has finished and the
 * buffered figures are applied, so reads that follow see them. Waits on
 * real event-loop turns (not timers: fake timers do not hold it), at most
 * `maxTurns` of them (default 1000), then applies what there is.
 *
 * ```ts
 * import { drained } from '@dreamnet/reliability-core/testing';
 * await drained();
 * ```
 */
export async function drained(maxTurns = 1000): Promise<void> {
  for (let i = 0; i < maxTurns && requestsInFlight() > 0; i++) {
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  flushMetrics();
}

/** The figures of one window of one route, as `getAllEndpointMetrics()` gives them. */
export type RouteWindow = Binding.SgWindow;

/**
 * A route's figures since the last reset (the `all` window: requests,
 * status4xx, status5xx, aborted, errorRate, latency), or null when the route
 * has no series. `route` is the route template as Express matched it
 * (`'/users/:id'`), `method` upper case. Applies buffered requests first;
 * `await drained()` before it when the requests may still be finishing.
 *
 * ```ts
 * import { routeFigures } from '@dreamnet/reliability-core/testing';
 * routeFigures('GET', '/users/:id')?.requests;
 * ```
 */
export function routeFigures(method: string, route: string): RouteWindow | null {
  if (typeof method !== 'string' || typeof route !== 'string') {
    throw new TypeError(`method and route must be strings, got ${typeof method} and ${typeof route}`);
  }
  checkFile();
  flushMetrics();
  const id = figures().lookup(method, route);
  if (id === null || id === undefined) return null;
  const ws = figures().windows([id], currentClock()());
  return ws.find((w) => w.window === 'all') ?? null;
}
