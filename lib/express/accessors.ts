/**
 * `req.rollout` and `req.reliability` as getters on the request's prototype
 * (Express's `app.request`), installed once per prototype, instead of
 * properties stored on every request: under load a new property on `req`
 * costs 2-5 µs of server CPU (see tracker.ts). A getter reads the
 * tracker's record of the request, so a request pays only when a handler
 * reads it. Assigning either property still works: it makes an own
 * property, which wins over the getter. `req.route` is an accessor too, so
 * that metrics take the route's full template when Express matches it
 * (route-labels.ts).
 */
import { defineRouteAccessor } from './route-labels';
import { stateOf as trackedState, type Owner, type RequestRollout, type RolloutRecorder } from './tracker';

export type { RequestRollout } from './tracker';

/** `req.reliability` while no ops control is on. */
export const NORMAL = Object.freeze({ dimmer: 1, safeMode: false });

// What handlers see on Express's Request, for TypeScript users.
declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The request's rollout and cohort (`reliabilityStack` / `withTrafficShaping`), when one applies. */
      rollout?: RequestRollout;
      /** The ops state, for dropping optional work (`reliabilityStack` / `reliabilityMiddleware`). */
      reliability?: { dimmer: number; safeMode: boolean };
    }
  }
}

/** An owner whose requests have ops state and, in `data`, a `RequestRollout` or null. */
export interface StateOwner extends Owner {
  reliability(): { dimmer: number; safeMode: boolean };
}

/** The state of a request the tracker does not follow (mocks, HTTP/2 compatibility objects). */
export interface ListenedSlot {
  owner: Owner;
  data: unknown;
  rollout: RequestRollout | null;
  recorder: RolloutRecorder | null;
}
type State = { owner: Owner; data: unknown; rollout: RequestRollout | null };

const isStateOwner = (o: Owner): o is StateOwner => typeof (o as StateOwner).reliability === 'function';

const remembered = new WeakMap<object, ListenedSlot>();
export function rememberSlot(req: object, slot: ListenedSlot): void {
  remembered.set(req, slot);
}

function stateOf(req: object): State | undefined {
  return trackedState(req) ?? remembered.get(req);
}

/** One frozen `{ name, cohort }` per rollout and cohort: a request allocates none. */
const cohorts = new Map<string, [RequestRollout, RequestRollout]>();
export function cohortOf(name: string, cohort: 'new' | 'stable'): RequestRollout {
  let pair = cohorts.get(name);
  if (pair === undefined) {
    pair = [Object.freeze({ name, cohort: 'stable' as const }), Object.freeze({ name, cohort: 'new' as const })];
    if (cohorts.size < 10_000) cohorts.set(name, pair);
  }
  return pair[cohort === 'new' ? 1 : 0];
}

let lastProto: object | null = null;
const installed = new WeakSet<object>();

/** Makes sure the getters exist on `req`'s prototype (a pointer compare per request). */
export function ensureAccessors(req: object): void {
  const proto = Object.getPrototypeOf(req);
  if (proto === lastProto) return;
  lastProto = proto;
  if (proto === null || proto === Object.prototype || installed.has(proto)) return;
  installed.add(proto);
  defineRouteAccessor(proto);
  define(proto, 'rollout', function (this: object) {
    return stateOf(this)?.rollout ?? undefined;
  });
  // Outside any stack (reliabilityMiddleware with no control on), the normal state.
  define(proto, 'reliability', function (this: object) {
    const s = stateOf(this);
    return s !== undefined && isStateOwner(s.owner) ? s.owner.reliability() : NORMAL;
  });
}

function define(proto: object, key: string, get: (this: object) => unknown): void {
  if (Object.prototype.hasOwnProperty.call(proto, key)) return; // someone else's
  Object.defineProperty(proto, key, {
    configurable: true,
    enumerable: false,
    get,
    set(this: object, value: unknown) {
      Object.defineProperty(this, key, { value, writable: true, configurable: true, enumerable: true });
    },
  });
}
