/**
 * `reliabilityStack()`: metrics, ops controls (safe mode, brownout,
 * quarantine) and traffic shaping in one Express layer. The same work as
 * mounting `metricsMiddleware`, `reliabilityMiddleware()` and
 * `withTrafficShaping()` separately, for less.
 *
 * What it avoids, because under load each costs 2-5 µs of server CPU
 * per request (benchmark/README.md): a listener on the response (the end of
 * the request comes from `express/tracker.ts`), and any property stored on
 * `req` or `res`. `req.rollout` and `req.reliability` are getters on the
 * request prototype that read the tracker's record of the request, so a
 * request pays for them only when a handler reads them.
 *
 *   app.use(reliabilityStack({ rollouts: { '/api/search/*': 'search-v2' }, criticality: { '/api/recs': 'sheddable' } }));
 */
import { performance } from 'node:perf_hooks';
import { onClock } from '../test-runner';
import { native } from '../native';
import { beginRequest, finishRequest } from '../metrics';
import { getOps, type OpsControls } from '../ops';
import { cohortHeaderOf, getTrafficShaping, pickCohort, type TrafficShaping } from '../traffic-shaping';
import { cohortOf, ensureAccessors, NORMAL, rememberSlot, type ListenedSlot, type StateOwner } from './accessors';
import { isPackageRequest } from './endpoints';
import { compileUrlTest, createOpsGate, type ReliabilityMiddlewareOptions } from './ops';
import { liveSlot, track, type Label, type RequestRollout, type RolloutRecorder } from './tracker';

// The package's clock (../test-runner): the same one metrics started the
// request on, or an injected/fake clock would give negative durations.
let now: () => number = () => performance.now();
onClock((c) => (now = c));

export interface ReliabilityStackOptions extends ReliabilityMiddlewareOptions {
  /** Count golden signals (default true). */
  metrics?: boolean;
  /** Rollouts by path pattern (`/api/search/*`, `/api/items/:id`, exact): the first match applies. */
  rollouts?: Record<string, string>;
  /** As `withTrafficShaping`: blocked requests get the original 503 (default) or go on as `stable`. */
  onBlocked?: '503' | 'next';
  /** Header with a stickiness key, after `req.user.id` (default `x-user-id`). */
  stickinessHeader?: string;
  /**
   * A response header naming the request's cohort (e.g. `'x-rollout-cohort'`;
   * default none: a header costs about 2 µs of server CPU per request under load).
   */
  cohortHeader?: string | false;
  /** Which answers count as successes for rollouts (default status < 400, as the original). */
  isSuccess?: (statusCode: number) => boolean;
  shaping?: TrafficShaping;
}

/**
 * One middleware that does metrics, ops controls (safe mode, brownout,
 * quarantine) and rollouts, in that order. Mount it after your auth (rollouts
 * stick to `req.user`).
 *
 *   app.use(reliabilityStack({ rollouts: { '/api/search/*': 'search-v2' } }));
 */
export function reliabilityStack(options: ReliabilityStackOptions = {}) {
  const gate = createOpsGate(options);
  const metrics = options.metrics !== false;
  const rollouts = Object.entries(options.rollouts ?? {}).map(([p, name]) => {
    if (typeof name !== 'string' || !name) throw new TypeError(`rollouts[${JSON.stringify(p)}] must be a rollout name, got ${typeof name}`);
    return [compileUrlTest(p), name] as const;
  });
  if (options.onBlocked !== undefined && options.onBlocked !== '503' && options.onBlocked !== 'next') {
    throw new RangeError(`onBlocked must be '503' or 'next', got ${JSON.stringify(options.onBlocked)}`);
  }
  const header = (options.stickinessHeader ?? 'x-user-id').toLowerCase();
  const isSuccess = options.isSuccess ?? ((s: number) => s < native.ERROR_STATUS_FROM);
  const cohortHeader = cohortHeaderOf(options.cohortHeader, null);
  // A few patterns are tested on the raw URL directly (a prefix compare
  // each); past that, paths are cached (bounded like the ops gate's cache).
  // A string-keyed Map lookup hashes the request's URL, a fresh string each
  // time: about 0.4 µs, more than testing a handful of prefixes.
  const byPath = new Map<string, string>();
  const rolloutOf =
    rollouts.length <= 8
      ? (url: string): string => {
          for (let i = 0; i < rollouts.length; i++) if (rollouts[i][0](url)) return rollouts[i][1];
          return '';
        }
      : (url: string): string => {
          const path = pathOf(url);
          let n = byPath.get(path);
          if (n === undefined) {
            n = rollouts.find(([t]) => t(path))?.[1] ?? '';
            if (byPath.size < 10_000) byPath.set(path, n);
          }
          return n;
        };
  const owner = new StackOwner(options, metrics, isSuccess);
  // Read once: an option read per request is a property load on an object
  // the engine sees in many shapes.
  const fixedOps = options.ops;
  const fixedShaping = options.shaping;
  const onBlocked = options.onBlocked;
  const anyRollout = rollouts.length > 0;

  return function reliabilityStackMiddleware(req: any, res: any, next: (e?: unknown) => void) {
    const t0 = now();
    ensureAccessors(req);
    let slot: { rollout: RequestRollout | null; recorder: RolloutRecorder | null } | null = track(req, res, owner, t0);
    if (slot !== null) {
      if (metrics) beginRequest(req, true);
    } else if ((slot = liveSlot(req)) === null) {
      if (metrics) beginRequest(req, false);
      slot = listen(req, res, owner, t0);
    }
    // Otherwise tracked already (metricsMiddleware, or another stack, mounted
    // first): the stack rides on that record, whose owner counts the request,
    // rather than counting it twice.
    const ops = fixedOps ?? getOps();
    if (ops.anyActive() && gate(req, res)) return;
    if (anyRollout && slot.rollout === null) {
      const name = rolloutOf(req.url ?? '/');
      // An own `req.rollout` set by earlier code wins; the package's own
      // endpoints are never part of a rollout (nor refused by one).
      if (name && !Object.prototype.hasOwnProperty.call(req, 'rollout') && !isPackageRequest(req)) {
        const ts = fixedShaping ?? getTrafficShaping();
        const cohort = pickCohort(ts, name, req, res, header, onBlocked, false, cohortHeader);
        if (cohort === null) return;
        slot.rollout = cohortOf(name, cohort);
        slot.recorder = owner;
      }
    }
    next();
  };
}

/** What the stack records when a request ends, and what its getters answer. */
class StackOwner implements StateOwner, RolloutRecorder {
  constructor(
    private readonly options: ReliabilityStackOptions,
    readonly metrics: boolean,
    private readonly isSuccess: (statusCode: number) => boolean,
  ) {}

  end(req: object, status: number, ms: number, _data?: unknown, label?: Label | null, refused?: number): void {
    if (this.metrics) finishRequest(req as any, status, ms, label, refused);
  }

  record(r: RequestRollout, status: number, ms: number): void {
    (this.options.shaping ?? getTrafficShaping()).recordRequest(r.name, this.isSuccess(status), ms, r.cohort);
  }

  /** `req.reliability`: the ops state a handler can use to drop optional work. */
  reliability(): { dimmer: number; safeMode: boolean } {
    const ops: OpsControls = this.options.ops ?? getOps();
    return ops.anyActive() ? { dimmer: ops.getDimmer(), safeMode: ops.isSafeMode() } : NORMAL;
  }
}

/** The path of a URL (Express routes on it, relative to the mount point), without parsing a URL object. */
function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

/**
 * Requests the tracker cannot follow (not Node HTTP/1: mocks, HTTP/2
 * compatibility objects) end through a `close` listener; the getters find
 * their state through `rememberSlot`.
 */
function listen(req: any, res: any, owner: StackOwner, t0: number): ListenedSlot {
  const slot: ListenedSlot = { owner, data: null, rollout: null, recorder: null };
  rememberSlot(req, slot);
  res.on('close', () => {
    const ms = now() - t0;
    const status = res.writableFinished === false ? -1 : res.statusCode;
    owner.end(req, status, ms);
    if (slot.rollout !== null && status >= 0) owner.record(slot.rollout, status, ms);
  });
  return slot;
}
// Re-exported through accessors, whose declarations also type req.rollout / req.reliability on Express's Request.
export type { RequestRollout } from './accessors';
