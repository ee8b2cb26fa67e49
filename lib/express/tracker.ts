/**
 * Following a request to its end without storing anything on it.
 *
 * The state of a request in flight (its start time, its rollout cohort) has
 * to live somewhere until the response ends. A new property on `req` or `res`
 * costs 2-5 µs of server CPU per request under load (Express swaps their
 * prototypes, so a store that adds a property misses V8's inline caches; see
 * benchmark/README.md, "Where the microseconds went"), and a per-request
 * WeakMap entry adds work for the garbage collector on every request.
 *
 * Node already announces every finished response on the
 * `http.server.response.finish` diagnostics channel, with its socket. So
 * this module subscribes once and keeps the state of a request in a record
 * per socket: an HTTP/1 socket carries one request at a time (pipelined ones
 * queue behind it and finish in order), and the record is created once per
 * connection. A request then costs a WeakMap lookup and a few stores into an
 * object of ours, about what a `close` listener with a closure costs
 * (measured equal within noise), and the record also answers `stateOf`, which
 * serves the `req.rollout` / `req.reliability` getters. A socket that closes
 * with requests pending ends them as aborted, as a `close` listener would.
 *
 * Why a few property reads matter: under Node 20 every `IncomingMessage`
 * gets a hidden class of its own (measured with %HaveSameMap: no two
 * requests share one), so no inline cache holds for `req` or `res` and
 * each read of one of their properties goes to V8's runtime: 0.03-0.1 µs
 * for a property that is there, ~0.4 µs for one that is missing (the whole
 * prototype chain is walked). So the hot path reads each property once
 * (the status code here, for every layer) and never probes for a missing
 * one.
 *
 * Requests that are not Node HTTP/1 requests (mocks, HTTP/2 compatibility
 * objects) are not tracked here: `track` returns null and the caller falls
 * back to a listener.
 */
import * as dc from 'node:diagnostics_channel';
import { ServerResponse } from 'node:http';
// Not the global `performance`: in Node 20 that is a getter on globalThis,
// which costs ~0.1 µs per read.
import { performance } from 'node:perf_hooks';
import { onClock } from '../test-runner';

// The package's clock (../test-runner): the same one metrics started the
// request on, or an injected/fake clock would give negative durations.
let now: () => number = () => performance.now();
onClock((c) => (now = c));

/** Who tracks a request, and what to do when it ends. */
export interface Owner {
  /**
   * Called once per tracked request, `ms` after it began, with the response's
   * status code, or -1 for a request aborted (its socket closed first). The
   * status is read here once for every layer: under Express each property
   * read on `req` or `res` costs 0.05-0.4 µs (see below).
   */
  end(req: object, status: number, ms: number, data: unknown, label: Label | null, refused: number): void;
  /** True when this owner counts the request's golden signals (so no later layer counts it again). */
  readonly metrics?: boolean;
}

/**
 * A request's route template, taken when Express matched its route (see
 * route-labels.ts, which makes them); `ids` and `gen` are metrics.ts's
 * cache of its series ids.
 */
export interface Label {
  readonly template: string;
  ids: Array<string | number>;
  gen: number;
}

/** A request's rollout decision, as handlers read it in `req.rollout`. */
export interface RequestRollout {
  readonly name: string;
  readonly cohort: 'new' | 'stable';
}

/** Records a rollout outcome when a request under a rollout completes (not when it is aborted). */
export interface RolloutRecorder {
  record(rollout: RequestRollout, status: number, ms: number): void;
}

/**
 * One tracked request. `data` is the owner's; `rollout` and `recorder` are
 * set by whichever layer decides the request's cohort (the stack, or
 * `withTrafficShaping` after `metricsMiddleware`), so one record serves
 * every layer.
 */
export interface Slot {
  req: object | null;
  owner: Owner | null;
  t0: number;
  data: unknown;
  rollout: RequestRollout | null;
  recorder: RolloutRecorder | null;
  /** What Express assigned to `req.route` (served by the `req.route` accessor), and its label. */
  route: unknown;
  label: Label | null;
  /** A refusal code (`native.metricsRefusalCodes()`) when a control refused the request, else 0. */
  refused: number;
}

class Pending implements Slot {
  rollout: RequestRollout | null = null;
  recorder: RolloutRecorder | null = null;
  route: unknown = undefined;
  label: Label | null = null;
  refused = 0;
  constructor(
    public req: object | null,
    public owner: Owner | null,
    public t0: number,
    public data: unknown,
  ) {}
}

/** A socket's record: its request in flight (head), those queued behind it, and the last one ended. */
class SocketRecord implements Slot {
  req: object | null = null;
  owner: Owner | null = null;
  t0 = 0;
  data: unknown = null;
  rollout: RequestRollout | null = null;
  recorder: RolloutRecorder | null = null;
  route: unknown = undefined;
  label: Label | null = null;
  refused = 0;
  more: Pending[] | null = null;
  /** The last request that ended, so that `stateOf` still answers for it just after its response. */
  lastReq: object | null = null;
  lastOwner: Owner | null = null;
  lastData: unknown = null;
  lastRollout: RequestRollout | null = null;
  lastRoute: unknown = undefined;
  lastLabel: Label | null = null;
  lastRefused = 0;
}

const records = new WeakMap<object, SocketRecord>();
let subscribed = false;
/** Sockets with a record that have not closed yet (the open-connections gauge, without a per-request lookup). */
let openSockets = 0;

/** How many sockets that carried a tracked request are still open. */
export function trackedSockets(): number {
  return openSockets;
}

function subscribe(): void {
  subscribed = true;
  const name = 'http.server.response.finish';
  // `dc.subscribe` holds the subscription strongly (Node >= 18.7); before
  // that, a channel object must be kept alive by its subscriber.
  if (typeof (dc as any).subscribe === 'function') {
    (dc as any).subscribe(name, onFinish);
  } else {
    keepChannel = dc.channel(name);
    keepChannel.subscribe(onFinish);
  }
}
let keepChannel: dc.Channel | null = null;

function onFinish(message: unknown): void {
  const m = message as { request: object; response: ServerResponse; socket: object };
  const rec = records.get(m.socket);
  if (rec === undefined || rec.req === null) return;
  if (rec.req === m.request) {
    endHead(rec, m.response, false);
    return;
  }
  // Not the head: a request we never saw (another server's, or one that
  // skipped the middleware) or, rarely, out of order. Look in the queue.
  const more = rec.more;
  if (more === null) return;
  for (let i = 0; i < more.length; i++) {
    const p = more[i];
    if (p.req === m.request) {
      more.splice(i, 1);
      remember(rec, p);
      finish(p, m.response, false);
      return;
    }
  }
}

function remember(rec: SocketRecord, s: Slot): void {
  rec.lastReq = s.req;
  rec.lastOwner = s.owner;
  rec.lastData = s.data;
  rec.lastRollout = s.rollout;
  rec.lastRoute = s.route;
  rec.lastLabel = s.label;
  rec.lastRefused = s.refused;
}

/** Ends the head request and moves the next queued one (if any) up. */
function endHead(rec: SocketRecord, res: ServerResponse | null, aborted: boolean): void {
  const { req, owner, t0, data, rollout, recorder, label, refused } = rec;
  remember(rec, rec);
  const next = rec.more !== null && rec.more.length > 0 ? rec.more.shift()! : null;
  if (next === null) {
    rec.req = null;
    rec.owner = null;
    rec.data = null;
    rec.rollout = null;
    rec.recorder = null;
    rec.route = undefined;
    rec.label = null;
    rec.refused = 0;
  } else {
    rec.req = next.req;
    rec.owner = next.owner;
    rec.t0 = next.t0;
    rec.data = next.data;
    rec.rollout = next.rollout;
    rec.recorder = next.recorder;
    rec.route = next.route;
    rec.label = next.label;
    rec.refused = next.refused;
  }
  end(req!, owner!, t0, data, rollout, recorder, label, refused, res, aborted);
}

function finish(p: Pending, res: ServerResponse | null, aborted: boolean): void {
  end(p.req!, p.owner!, p.t0, p.data, p.rollout, p.recorder, p.label, p.refused, res, aborted);
}

/** One clock read for everything that is recorded at the end of a request. */
function end(
  req: object,
  owner: Owner,
  t0: number,
  data: unknown,
  rollout: RequestRollout | null,
  recorder: RolloutRecorder | null,
  label: Label | null,
  refused: number,
  res: ServerResponse | null,
  aborted: boolean,
): void {
  const ms = now() - t0;
  const status = aborted ? -1 : res!.statusCode;
  owner.end(req, status, ms, data, label, refused);
  if (recorder !== null && rollout !== null && !aborted) recorder.record(rollout, status, ms);
}

function onSocketClose(this: object): void {
  const rec = records.get(this);
  if (rec === undefined) return;
  openSockets--;
  while (rec.req !== null) endHead(rec, null, true);
}

/**
 * Starts tracking `req` for `owner` from `t0`. Returns the slot (set its
 * `data` as you go), or null when this request cannot be tracked here: not a
 * Node HTTP/1 request, or already tracked by another owner. Then use a
 * listener.
 */
export function track(req: any, res: any, owner: Owner, t0: number): Slot | null {
  const socket = req.socket;
  if (socket == null || !(res instanceof ServerResponse)) return null;
  let rec = records.get(socket);
  if (rec === undefined) {
    if (!subscribed) subscribe();
    rec = new SocketRecord();
    records.set(socket, rec);
    openSockets++;
    socket.once('close', onSocketClose);
  }
  if (rec.req === null) {
    rec.req = req;
    rec.owner = owner;
    rec.t0 = t0;
    rec.data = null;
    rec.rollout = null;
    rec.recorder = null;
    rec.route = undefined;
    rec.label = null;
    rec.refused = 0;
    return rec;
  }
  if (rec.req === req) return null;
  // Pipelined behind a request still in flight on this socket.
  if (rec.more === null) rec.more = [];
  else for (const p of rec.more) if (p.req === req) return null;
  const p = new Pending(req, owner, t0, null);
  rec.more.push(p);
  return p;
}

/** The slot of `req` while it is in flight here, or null. */
export function liveSlot(req: any): Slot | null {
  const socket = req?.socket;
  if (socket == null) return null;
  const rec = records.get(socket);
  if (rec === undefined) return null;
  if (rec.req === req) return rec;
  if (rec.more !== null) for (const p of rec.more) if (p.req === req) return p;
  return null;
}

/**
 * The owner, data and rollout of `req`: in flight, or the last request that
 * ended on its socket (so that code running just after the response still
 * finds it).
 */
export function stateOf(req: any): { owner: Owner; data: unknown; rollout: RequestRollout | null } | undefined {
  const live = liveSlot(req);
  if (live !== null) return { owner: live.owner!, data: live.data, rollout: live.rollout };
  const rec = req?.socket == null ? undefined : records.get(req.socket);
  if (rec !== undefined && rec.lastReq === req) return { owner: rec.lastOwner!, data: rec.lastData, rollout: rec.lastRollout };
  return undefined;
}

/**
 * The slot-like record of `req` just after it ended (the last request that
 * ended on its socket), for `req.route` read by code running after the
 * response (a logger on `finish`), or null.
 */
export function endedSlot(req: any): { route: unknown; label: Label | null; refused: number } | null {
  const rec = req?.socket == null ? undefined : records.get(req.socket);
  return rec !== undefined && rec.lastReq === req ? { route: rec.lastRoute, label: rec.lastLabel, refused: rec.lastRefused } : null;
}
