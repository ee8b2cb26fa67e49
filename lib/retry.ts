/**
 * Retry as a policy of its own, composable with a circuit breaker (the
 * cockatiel `wrap` model): `retry(opts)` retries a failing call with
 * jittered exponential backoff, `wrap(a, b, ...)` runs `a` around `b` around
 * ... around the call.
 *
 * Why a separate policy: the order says what a retry means. `wrap(retry(...),
 * breaker)` retries around the breaker, so every attempt is a call the breaker
 * counts, and once it opens its refusal (`CircuitOpenError`) ends the retries.
 * `wrap(breaker, retry(...))` retries inside one breaker call, which counts
 * once however many attempts it took.
 *
 * The options and the delays are the one retry rule in Rust (`core::backoff`):
 * the binding's `retrySpec` validates and defaults the options with the rule a
 * breaker's `retryOptions` uses (so the two share their limits), and
 * `backoffDelay` computes each sleep.
 * Sleeps go through `./test-runner`'s timers, so a test runner's fake timers
 * drive them, as they drive the breaker's.
 */
import { native } from './native';
import { callTimers } from './test-runner';

/**
 * Anything that runs a call under some rule: a `retry(...)` policy, a
 * `wrap(...)` of policies, or a `CircuitBreaker`. `signal` is the AbortSignal
 * of an enclosing policy's call (a breaker's timeout), passed on to `fn`.
 */
export interface Policy {
  execute<T>(fn: (signal?: AbortSignal) => T | Promise<T>, signal?: AbortSignal): Promise<T>;
}

/** Jitter of `retry()`: `true` = 'proportional' (the original's +[0, 10 %)), `false` = 'none'. */
export type RetryJitter = boolean | 'none' | 'proportional' | 'full' | 'equal' | 'decorrelated';

/** Options of `retry()`. */
export interface RetryPolicyOptions {
  /** Extra attempts after the first (default 3, at most the binding's `RETRY_MAX_RETRIES`, 100). `0`: the call runs once. */
  maxRetries?: number;
  /** The sleep before the first retry in ms (default 100). */
  baseDelay?: number;
  /** Cap on any one sleep in ms (default 3000). */
  maxDelay?: number;
  /** Growth per attempt (default 2, from 1 to 10). */
  factor?: number;
  /** How each sleep is spread around its base (default 'full'). */
  jitter?: RetryJitter;
  /** Return false for errors not worth retrying. A `CircuitOpenError` is never retried. */
  retryOn?: (error: unknown) => boolean;
  /** Uniform source in [0, 1) for the jitter (default Math.random), e.g. for tests. */
  random?: () => number;
  /** Told before each sleep: the retry's number (1-based), the sleep and the error. */
  onRetry?: (info: { attempt: number; delay: number; error: unknown }) => void;
}

function checkFn(field: string, v: unknown): void {
  if (v !== undefined && typeof v !== 'function') {
    throw new TypeError(`${field} must be a function, got ${v === null ? 'null' : typeof v}`);
  }
}

/** A breaker's refusal: retrying it would only hammer the open breaker. */
function isCircuitOpen(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === 'ERR_CIRCUIT_OPEN';
}

const resolved = Promise.resolve();

/**
 * A retry sleep is part of a call the caller is awaiting, so, as the
 * breaker's own, it keeps the process alive as the call would (not
 * unref'd). An abort of `signal` ends it early.
 */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  // No wait, no timer: nothing for a fake timer to hold.
  if (!(ms > 0)) return resolved;
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = callTimers.after(done, ms);
    function done(): void {
      callTimers.cancel(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * The policy `retry()` returns: runs a call and, while it fails with an
 * error `retryOn` accepts, sleeps and runs it again, at most `maxRetries`
 * more times. The last error is rethrown.
 *
 *   const policy = new RetryPolicy({ maxRetries: 2, jitter: 'equal' }); // same as retry({ ... })
 */
export class RetryPolicy implements Policy {
  /** Extra attempts after the first. */
  readonly maxRetries: number;
  private readonly baseDelay: number;
  private readonly maxDelay: number;
  private readonly factor: number;
  private readonly jitter: string;
  private readonly retryOn?: (error: unknown) => boolean;
  private readonly random: () => number;
  private readonly onRetry?: (info: { attempt: number; delay: number; error: unknown }) => void;

  /** Use `retry(options)`. */
  constructor(options: RetryPolicyOptions = {}) {
    if (options !== null && options !== undefined && typeof options !== 'object') {
      throw new TypeError(`options must be an object, got ${typeof options}`);
    }
    // Read each option once (a getter runs once).
    const { maxRetries, baseDelay, maxDelay, factor, jitter, retryOn, random, onRetry } = options ?? {};
    checkFn('retryOn', retryOn);
    checkFn('random', random);
    checkFn('onRetry', onRetry);
    // Rust validates every limit and fills the defaults now, not at the first failure.
    const spec = native.retrySpec({ maxRetries, baseDelay, maxDelay, factor, jitter });
    this.maxRetries = spec.maxRetries;
    this.baseDelay = spec.baseDelay;
    this.maxDelay = spec.maxDelay;
    this.factor = spec.factor;
    this.jitter = spec.jitter;
    this.retryOn = retryOn;
    this.random = random ?? Math.random;
    this.onRetry = onRetry;
  }

  /**
   * The sleep after failed attempt `attempt` (0-based), given the previous
   * sleep: the binding's `backoffDelay`, the one backoff rule.
   */
  delay(attempt: number, previousMs: number): number {
    return native.backoffDelay(attempt, this.baseDelay, this.maxDelay, this.factor, this.jitter, previousMs, Number(this.random()));
  }

  /**
   * Runs `fn` (passing `signal` on) until it succeeds, fails with an error
   * not to retry, or runs out of retries. An abort of `signal` stops the retries.
   *
   *   const rows = await retry({ maxRetries: 2 }).execute(() => pool.query('SELECT 1'));
   */
  async execute<T>(fn: (signal?: AbortSignal) => T | Promise<T>, signal?: AbortSignal): Promise<T> {
    if (typeof fn !== 'function') throw new TypeError(`fn must be a function, got ${fn === null ? 'null' : typeof fn}`);
    let previous = 0;
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn(signal);
      } catch (err) {
        if (attempt >= this.maxRetries || signal?.aborted || isCircuitOpen(err)) throw err;
        if (this.retryOn && !this.retryOn(err)) throw err;
        const delay = this.delay(attempt, previous);
        previous = delay;
        this.onRetry?.({ attempt: attempt + 1, delay, error: err });
        await sleep(delay, signal);
        if (signal?.aborted) throw err;
      }
    }
  }
}

/**
 * A retry policy: exponential backoff (`min(baseDelay * factor^a, maxDelay)`)
 * with jitter, from the Rust core's one backoff rule. Compose it with a
 * breaker with `wrap`.
 *
 * ```ts
 * import { retry } from '@dreamnet/reliability-core';
 * const policy = retry({ maxRetries: 2, baseDelay: 50, maxDelay: 1000, jitter: 'full' });
 * const value = await policy.execute(() => Promise.resolve(42)); // 42
 * ```
 */
export function retry(options: RetryPolicyOptions = {}): RetryPolicy {
  return new RetryPolicy(options);
}

/**
 * Policies composed: `wrap(a, b, c).execute(fn)` runs `a` around `b` around
 * `c` around `fn`. Each policy passes its AbortSignal (a breaker's timeout)
 * to the next.
 *
 * ```ts
 * import { CircuitBreaker, retry, wrap } from '@dreamnet/reliability-core';
 * const breaker = new CircuitBreaker('payments', { failureThreshold: 5 });
 * // Every attempt is a call the breaker counts; once it opens, the retries stop.
 * const policy = wrap(retry({ maxRetries: 2, baseDelay: 100 }), breaker);
 * await policy.execute(() => Promise.resolve('paid'));
 * ```
 */
export function wrap(...policies: Policy[]): Policy {
  policies.forEach((p, i) => {
    if (typeof p !== 'object' || p === null || typeof p.execute !== 'function') {
      throw new TypeError(`policies[${i}] must have an execute function, got ${p === null ? 'null' : typeof p}`);
    }
  });
  const list = [...policies];
  return {
    execute<T>(fn: (signal?: AbortSignal) => T | Promise<T>, signal?: AbortSignal): Promise<T> {
      let next = fn;
      for (let i = list.length - 1; i >= 0; i--) {
        const p = list[i];
        const inner = next;
        // A breaker makes an AbortSignal (~3 µs) only for a function that
        // declares a parameter: declare one only when `fn` takes the signal.
        next = inner.length > 0 ? (s?: AbortSignal) => p.execute(inner, s) : () => p.execute(inner);
      }
      return Promise.resolve().then(() => next(signal));
    },
  };
}
