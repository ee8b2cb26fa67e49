/**
 * `req.rollout` and `req.reliability` as getters on the request's prototype
 * (Express's `app.request`), installed once per prototype, instead of
 * properties stored on every request: under load a new property on `req`
 * costs 2-5 µs of server CPU (see tracker.ts). A getter reads the
 * tracker's record of the request, so a request pays only when a handler
 * reads it. Assigning either property still works: it makes an own
 * property, which wins over the getter.
 */
import { slotOf, type Owner } from './tracker';

/** `req.reliability` while no ops control is on. */
export const NORMAL = Object.freeze({ dimmer: 1, safeMode: false });

export interface RequestRollout {
  readonly name: string;
  readonly cohort: 'new' | 'stable';
}

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

type Slot = { owner: Owner; data: unknown };
const isStateOwner = (o: Owner): o is StateOwner => typeof (o as StateOwner).reliability === 'function';

/** State of requests the tracker does not follow (mocks, HTTP/2 compatibility objects). */
const remembered = new WeakMap<object, Slot>();
export function rememberSlot(req: object, slot: Slot): void {
  remembered.set(req, slot);
}

function stateOf(req: object): { owner: StateOwner; data: unknown } | undefined {
  const s = slotOf(req);
  if (s !== undefined && isStateOwner(s.owner)) return s as { owner: StateOwner; data: unknown };
  const r = remembered.get(req);
  return r !== undefined && isStateOwner(r.owner) ? (r as { owner: StateOwner; data: unknown }) : undefined;
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
  define(proto, 'rollout', function (this: object) {
    const s = stateOf(this);
    return s === undefined || s.data === null ? undefined : s.data;
  });
  // Outside any stack (reliabilityMiddleware with no control on), the normal state.
  define(proto, 'reliability', function (this: object) {
    const s = stateOf(this);
    return s === undefined ? NORMAL : s.owner.reliability();
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
