/**
 * Ops controls: safe mode, brownout, agent quarantine, rollback and
 * dead-letter-queue drains, with an audit trail and a state file that
 * survives restarts. The switches, the per-request decision, the audit ring,
 * the drain pacing and the state file's format are Rust's (`src/core/ops.rs`,
 * `src/core/dlq.rs`); this file runs the user's queue functions, writes the
 * file atomically and watches it for changes made by the CLI.
 */
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { clearInterval, setInterval, setTimeout } from 'node:timers';
import { native } from './native';
import { epoch, underTestRunner } from './test-runner';
import { setOpsSource } from './ops-peek';
import { rolloutController } from './traffic-shaping';
import { codedError, notFound, NO_ROLLOUTS } from './errors';
import { OpsCriticality, OpsDecision, OpsFlag } from '../index';
import {
  claimCommands,
  moveAside,
  notRegular,
  readStateFile,
  removeCommand,
  removeDeadHeartbeats,
  removeHeartbeat,
  removeStaleTmp,
  touchHeartbeat,
  writeHeartbeat,
  writeStateFile,
  type InboxCommand,
} from './ops-state-file';

export type Criticality = 'critical' | 'default' | 'sheddable';

export interface Who {
  /** Who acted (an operator name, `cli:<user>`); default `api`. */
  actor?: string;
  /** Where from (an IP, `local`); default `process`. */
  source?: string;
}

export interface ActionResult<T = OpsStatus> {
  action: string;
  changed: boolean;
  before: T;
  after: T;
}

/** The native plane's instance type (its methods give the record types below). */
type Plane = InstanceType<typeof native.OpsPlane>;

export type OpsStatus = ReturnType<Plane['status']>;
type Quarantined = OpsStatus['quarantined'][number];

/**
 * `list` (sorted as the core's map: by UTF-8 bytes of the agent id) with
 * `agentId`'s entry replaced by `entry`, or removed when there is none.
 * O(log n) comparisons plus one array copy.
 */
function patchQuarantined(list: Quarantined[], agentId: string, entry: Quarantined | undefined): Quarantined[] {
  const key = Buffer.from(agentId);
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (Buffer.compare(Buffer.from(list[mid].agentId), key) < 0) lo = mid + 1;
    else hi = mid;
  }
  const out = list.slice();
  const found = lo < out.length && out[lo].agentId === agentId;
  if (entry) out.splice(lo, found ? 1 : 0, Object.freeze(entry));
  else if (found) out.splice(lo, 1);
  return out;
}
export type OpsLoadReport = ReturnType<Plane['loadJson']>;
export type DlqRun = ReturnType<Plane['dlqEnd']>;

export interface AuditEntry {
  seq: number;
  at: number;
  action: string;
  args: Record<string, unknown>;
  actor: string;
  source: string;
  result: string;
}

export interface DeadLetterQueue {
  /** Messages waiting (may be async). */
  depth(): number | Promise<number>;
  /** Re-processes at most `limit` messages; returns how many were re-processed and how many failed. */
  drain(limit: number): { processed: number; failed?: number } | Promise<{ processed: number; failed?: number }>;
  /** Pace of drains in messages per second (default 100). */
  ratePerSecond?: number;
}

/** Something that can roll rollouts back at once (the traffic-shaping module registers itself). */
export interface RolloutController {
  names(): string[];
  rollback(name: string, reason: string): void;
}

export interface OpsLogger {
  log(line: string): void;
  warn(line: string): void;
}

export interface OpsOptions {
  /**
   * The state file (default env `RELIABILITY_STATE_FILE`, else
   * `.reliability/ops-state.json` under the working directory, or none under
   * a test runner); `false` keeps the state in memory only.
   */
  stateFile?: string | false;
  /**
   * Poll the file and its command inbox (default true): commands the CLI
   * queues in local mode are applied, and a heartbeat tells the CLI that a
   * server reads this file.
   */
  watch?: boolean;
  /** Poll interval of the watch in ms (default 500: changes apply within a second). */
  watchIntervalMs?: number;
  /**
   * Read the file and never change it (no save, no moving a bad file aside,
   * no inbox): what the CLI's read-only commands use. Default false.
   */
  readOnly?: boolean;
  /** Where the JSON action lines and warnings go (default console; null silences). */
  logger?: OpsLogger | null;
}

const DEFAULT_STATE_FILE = path.join('.reliability', 'ops-state.json');

/** A string option or its default; anything else is a TypeError naming the field. */
function text(field: string, v: unknown, dflt: string): string {
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'string') throw new TypeError(`${field} must be a string, got ${typeof v}`);
  return v;
}

function defaultLogger(): OpsLogger {
  return { log: (l) => console.log(l), warn: (l) => console.warn(l) };
}

/**
 * The ops plane of one process. Events: `change` (the audit entry of an
 * action that changed something), `action` (every audit entry),
 * `stateFileError` (Error), `reload` (status after the file changed).
 *
 *   getOps().enableSafeMode('db failover');
 */
export class OpsControls extends EventEmitter {
  private readonly plane = new native.OpsPlane(Math.random() * 2 ** 52);
  /** The plane's slot for `native.opsDecide`, a free function because it runs per request (cheaper crossing than a method). */
  private readonly slot = this.plane.slot;
  private flags: number[] = [0, 0, -1, 0, -1];
  private quarantineCache: { version: number; list: Quarantined[] } | null = null;
  private readonly file: string | null;
  private readonly logger: OpsLogger | null;
  private readonly queues = new Map<string, DeadLetterQueue>();
  private rollouts: RolloutController | null = null;
  private lastWritten: string | null = null;
  private watching = false;
  private watchInterval: number;
  private readonly readOnly: boolean;
  /** Set when the path is not a regular file (or a bad file could not be moved aside): never written. */
  private blocked: string | null = null;
  private poller: ReturnType<typeof setInterval> | null = null;
  private heartbeat: string | null = null;
  private seen: { mtimeMs: number; size: number } | null = null;
  /** Last problem with the state file (read-only folder, corrupt file), for status. */
  stateFileError: string | null = null;
  lastSavedAt: number | null = null;
  /** What the last load dropped or repaired (bad entries; the rest was kept). */
  lastLoadReport: OpsLoadReport | null = null;

  constructor(options: OpsOptions = {}) {
    super();
    // Under a test runner no file is written unless one is named: a test
    // that leaves safe mode on must not start the next run (or the dev
    // server) in safe mode.
    const f = options.stateFile ?? process.env.RELIABILITY_STATE_FILE ?? (underTestRunner ? false : DEFAULT_STATE_FILE);
    if (f !== false && (typeof f !== 'string' || f === '')) throw new TypeError(`stateFile must be a path or false, got ${typeof f}`);
    this.file = f === false ? null : path.resolve(f);
    this.logger = options.logger === undefined ? (underTestRunner ? null : defaultLogger()) : options.logger;
    this.watchInterval = options.watchIntervalMs ?? 500;
    if (!Number.isFinite(this.watchInterval) || this.watchInterval < 10 || this.watchInterval > 60_000) {
      throw new RangeError(`watchIntervalMs must be a number of ms from 10 to 60000, got ${String(options.watchIntervalMs)}`);
    }
    this.readOnly = options.readOnly === true;
    if (this.file) {
      // Temp files of a process killed mid-save would otherwise pile up.
      if (!this.readOnly) removeStaleTmp(this.file);
      this.loadFile();
      if (options.watch !== false && !this.readOnly) this.watch();
    }
    this.refresh();
    // Rollbacks act on the package's traffic shaping unless told otherwise.
    this.rollouts = rolloutController();
  }

  /** The state file in use, or null. */
  get stateFile(): string | null {
    return this.file;
  }

  // ---- reading -------------------------------------------------------------

  private refresh(): void {
    this.flags = this.plane.flags(Date.now());
  }

  /** Flags for the hot path, refreshed when a quarantine expires. */
  private current(): number[] {
    const exp = this.flags[OpsFlag.NextExpiry];
    if (exp >= 0 && Date.now() >= exp) this.refresh();
    return this.flags;
  }

  isSafeMode(): boolean {
    return this.current()[OpsFlag.SafeMode] === 1;
  }

  /** The brownout dimmer: the share of non-critical traffic served (1 when brownout is off). */
  getDimmer(): number {
    const l = this.current()[OpsFlag.Dimmer];
    return l < 0 ? 1 : l;
  }

  isAgentQuarantined(agentId: string): boolean {
    if (this.current()[OpsFlag.Quarantines] === 0) return false;
    return native.opsDecide(this.slot, true, OpsCriticality.Critical, String(agentId), Date.now()) === OpsDecision.Quarantined;
  }

  /** True when any control is on (the middleware then asks Rust per request). */
  anyActive(): boolean {
    const f = this.current();
    return f[OpsFlag.SafeMode] === 1 || f[OpsFlag.Dimmer] >= 0 || f[OpsFlag.Quarantines] > 0;
  }

  /**
   * The decision for one request: 0 serve, 1 safe mode, 2 shed, 3
   * quarantined. Costs nothing while no control is on.
   */
  decide(essential: boolean, criticality: 0 | 1 | 2, agentId?: string): number {
    if (!this.anyActive()) return OpsDecision.Serve;
    return native.opsDecide(this.slot, essential, criticality, agentId, Date.now());
  }

  status(): OpsStatus & { deadLetterQueues: string[]; stateFile: { path: string | null; lastSavedAt: number | null; error: string | null; dropped: string[]; repaired: string[] } } {
    return {
      ...this.controls(),
      deadLetterQueues: [...this.queues.keys()],
      stateFile: { path: this.file, lastSavedAt: this.lastSavedAt, error: this.stateFileError, dropped: this.lastLoadReport?.dropped ?? [], repaired: this.lastLoadReport?.repaired ?? [] },
    };
  }

  /** The last `limit` audit entries, oldest first. */
  audit(limit = 100): AuditEntry[] {
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new RangeError(`limit must be an integer from 1 to 10000, got ${String(limit)}`);
    return JSON.parse(this.plane.audit(limit));
  }

  // ---- actions ---------------------------------------------------------------

  /**
   * The controls, with `null` for a switch that is off (JSON keeps the key).
   *
   * The quarantine list (up to thousands of entries, each a JS object built
   * by the binding) is cached by plane version: it is rebuilt only when the
   * version moved, and an action on one agent (`touched`, see `act`) patches
   * the cached list with that agent's entry instead. Rebuilding it twice per
   * action made creating n quarantines O(n²). Entries are frozen because
   * successive snapshots share them; each snapshot gets its own array.
   */
  private controls(now = Date.now(), touched?: { agentId: string; fromVersion: number }): OpsStatus {
    const c = this.quarantineCache;
    const head = this.plane.status(now, touched ? [touched.agentId] : []);
    let list: Quarantined[];
    if (c && c.version === head.version) {
      list = c.list;
    } else if (c && touched && c.version === touched.fromVersion && head.version === touched.fromVersion + 1) {
      // Same `now` as the action: no expiry moved the version, the action did.
      list = patchQuarantined(c.list, touched.agentId, head.quarantined[0]);
    } else {
      list = this.plane.status(now).quarantined.map((q) => Object.freeze(q));
    }
    this.quarantineCache = { version: head.version, list };
    return { ...head, quarantined: list.slice(), safeMode: head.safeMode ?? null, brownout: head.brownout ?? null } as OpsStatus;
  }

  private act(action: string, who: Who | undefined, run: (actor: string, source: string, now: number) => boolean, agentId?: string): ActionResult {
    if (who !== undefined && (who === null || typeof who !== 'object')) throw new TypeError(`options must be an object, got ${who === null ? 'null' : typeof who}`);
    const actor = text('actor', who?.actor, 'api');
    const source = text('source', who?.source, 'process');
    // One `now` for the whole action: `before` expires what is due, so only
    // the action itself can move the version before `after` is read.
    const now = Date.now();
    const before = this.controls(now);
    const changed = run(actor, source, now);
    this.refresh();
    const after = this.controls(now, agentId === undefined ? undefined : { agentId, fromVersion: before.version });
    this.afterAction(changed);
    return { action, changed, before, after };
  }

  private afterAction(changed: boolean): void {
    const [entry] = this.audit(1);
    if (entry) {
      this.logger?.log(JSON.stringify({ ts: new Date(entry.at).toISOString(), level: 'info', event: 'ops.action', ...entry }));
      this.emit('action', entry);
      if (changed) this.emit('change', entry);
    }
    this.save();
  }

  /** Safe mode on or off. While on, only essential routes are served. */
  setSafeMode(enabled: boolean, opts: Who & { reason?: string } = {}): ActionResult {
    if (typeof enabled !== 'boolean') throw new TypeError(`enabled must be a boolean, got ${typeof enabled}`);
    const reason = text('reason', opts?.reason, '');
    return this.act('safe-mode', opts, (a, s) => this.plane.setSafeMode(enabled, reason, a, s, Date.now()));
  }

  enableSafeMode(reason = '', who: Who = {}): ActionResult {
    return this.setSafeMode(true, { ...who, reason: text('reason', reason, '') });
  }

  disableSafeMode(who: Who = {}): ActionResult {
    return this.setSafeMode(false, who);
  }

  /**
   * Brownout on (dimmer `level`, the share of non-critical traffic served;
   * default 0: critical traffic only) or off.
   */
  setBrownout(enabled: boolean, opts: Who & { level?: number; reason?: string } = {}): ActionResult {
    if (typeof enabled !== 'boolean') throw new TypeError(`enabled must be a boolean, got ${typeof enabled}`);
    if (opts.level !== undefined && typeof opts.level !== 'number') throw new TypeError(`level must be a number from 0 to 1, got ${typeof opts.level}`);
    const level = enabled ? (opts.level ?? 0) : undefined;
    const reason = text('reason', opts.reason, '');
    return this.act('brownout', opts, (a, s) => this.plane.setBrownout(level, reason, a, s, Date.now()));
  }

  quarantineAgent(agentId: string, opts: Who & { reason?: string; ttlMs?: number } = {}): ActionResult {
    if (typeof agentId !== 'string') throw new TypeError(`agentId must be a string, got ${typeof agentId}`);
    if (opts.ttlMs !== undefined && typeof opts.ttlMs !== 'number') throw new TypeError(`ttlMs must be a number of ms, got ${typeof opts.ttlMs}`);
    const reason = text('reason', opts.reason, '');
    return this.act('quarantine-agent', opts, (a, s, now) => this.plane.quarantine(agentId, reason, opts.ttlMs, a, s, now), agentId);
  }

  releaseAgent(agentId: string, who: Who = {}): ActionResult {
    if (typeof agentId !== 'string') throw new TypeError(`agentId must be a string, got ${typeof agentId}`);
    return this.act('release-agent', who, (a, s, now) => this.plane.release(agentId, a, s, now), agentId);
  }

  /** Lets rollbacks act on other rollouts than the package's traffic shaping (the default). */
  setRolloutController(c: RolloutController | null): void {
    this.rollouts = c;
    // Rollbacks recorded before a restart apply again as soon as the rollouts exist.
    if (c) this.reapplyRollbacks();
  }

  /** Re-applies recorded rollbacks to rollouts that exist now (e.g. started after a restart). */
  reapplyRollbacks(): string[] {
    if (!this.rollouts) return [];
    const have = new Set(this.rollouts.names());
    const done: string[] = [];
    for (const r of this.plane.status(Date.now()).rolledBack) {
      if (have.has(r.name)) {
        this.rollouts.rollback(r.name, r.reason || 'operator rollback (restored)');
        done.push(r.name);
      }
    }
    return done;
  }

  /** Forgets a recorded rollback, so the rollout can run again after a restart. */
  clearRollback(name: string): boolean {
    const changed = this.plane.clearRollback(String(name), Date.now());
    if (changed) this.save();
    return changed;
  }

  /**
   * Fast rollback of one rollout (or all with `name` undefined), skipping
   * analysis. Recorded in the state, so it survives a restart.
   */
  rollback(name?: string, opts: Who & { reason?: string } = {}): ActionResult & { rolledBack: string[] } {
    if (name !== undefined && typeof name !== 'string') throw new TypeError(`name must be a string, got ${typeof name}`);
    if (!this.rollouts) {
      throw codedError(NO_ROLLOUTS, 'No rollouts to roll back: the traffic-shaping module is not in use');
    }
    const all = this.rollouts.names();
    if (name !== undefined && !all.includes(name)) throw notFound(`Rollout not found: ${name}`);
    const names = name === undefined ? all : [name];
    const reason = text('reason', opts.reason, 'operator rollback');
    const r = this.act('rollback', opts, (a, s) => {
      const changed = this.plane.recordRollback(names, reason, a, s, Date.now());
      for (const n of names) this.rollouts!.rollback(n, reason);
      return changed || names.length > 0;
    });
    return { ...r, rolledBack: names };
  }

  /**
   * Records rollbacks without rolling anything back here: for the CLI's
   * local mode. The server that owns the rollouts applies them when it
   * reloads the state file.
   */
  recordRollback(names: string[], opts: Who & { reason?: string } = {}): ActionResult {
    if (!Array.isArray(names) || names.length === 0 || !names.every((n) => typeof n === 'string')) throw new TypeError('names must be a non-empty array of rollout names');
    const reason = text('reason', opts.reason, 'operator rollback');
    return this.act('rollback', opts, (a, s) => this.plane.recordRollback(names.map(String), reason, a, s, Date.now()));
  }

  registerDeadLetterQueue(name: string, queue: DeadLetterQueue): void {
    if (queue === null || typeof queue !== 'object') throw new TypeError(`queue must be an object, got ${queue === null ? 'null' : typeof queue}`);
    for (const k of ['depth', 'drain'] as const) {
      if (typeof queue[k] !== 'function') throw new TypeError(`queue.${k} must be a function, got ${typeof queue[k]}`);
    }
    // The default rate is the core's (DLQ_DEFAULT_RATE_PER_SECOND).
    this.plane.dlqRegister(String(name), { ratePerSecond: queue.ratePerSecond });
    this.queues.set(String(name), queue);
  }

  /** Depth and drain figures of every queue. */
  async deadLetterQueues(): Promise<Array<ReturnType<Plane['dlqViews']>[number] & { depth: number | null; depthError?: string }>> {
    const views = this.plane.dlqViews();
    return Promise.all(
      views.map(async (v) => {
        try {
          const depth = Number(await this.queues.get(v.name)!.depth());
          // The core exports the last depth seen (dlq_depth); it cannot ask the queue itself.
          if (Number.isFinite(depth) && depth >= 0) this.plane.dlqSetDepth(v.name, depth);
          return { ...v, depth };
        } catch (e) {
          return { ...v, depth: null, depthError: (e as Error)?.message ?? String(e) };
        }
      }),
    );
  }

  /**
   * Drains `name` (or every queue) of at most `limit` messages each, paced
   * by the queue's rate; one drain per queue at a time.
   */
  async drainDeadLetterQueue(name?: string, opts: Who & { limit?: number; batchSize?: number } = {}): Promise<Array<{ queue: string } & DlqRun>> {
    const names = name === undefined ? [...this.queues.keys()] : [String(name)];
    if (name !== undefined && !this.queues.has(name)) throw notFound(`Dead-letter queue not found: ${name}`);
    // Types, limits and defaults are the core's (core::dlq::DrainSpec), checked before any drain begins.
    const { limit, batchSize: batch } = native.dlqDrainSpec({ limit: opts.limit, batchSize: opts.batchSize });
    const out: Array<{ queue: string } & DlqRun> = [];
    for (const q of names) {
      this.plane.dlqBegin(q, limit, Date.now()); // throws while a drain runs, or on a bad limit
      let error: string | undefined;
      try {
        for (;;) {
          const [n, wait] = this.plane.dlqAllowance(q, Date.now(), batch);
          if (n === 0) {
            if (wait === 0) break;
            await new Promise((r) => setTimeout(r, wait));
            continue;
          }
          const res = await this.queues.get(q)!.drain(n);
          const processed = Number(res?.processed ?? 0);
          const failed = Number(res?.failed ?? 0);
          if (this.plane.dlqProgress(q, processed, failed, Date.now())) break;
        }
      } catch (e) {
        error = (e as Error)?.message ?? String(e);
      }
      const run = this.plane.dlqEnd(q, Date.now(), error);
      this.plane.auditPush(
        'drain-dlq',
        JSON.stringify({ queue: q, limit }),
        opts.actor ?? 'api',
        opts.source ?? 'process',
        error ? `error: ${error}` : `processed ${run.processed}, failed ${run.failed}`,
        Date.now(),
      );
      this.afterAction(run.processed + run.failed > 0);
      out.push({ queue: q, ...run });
    }
    return out;
  }

  /**
   * Records an action refused by the HTTP layer (bad token), for the audit
   * trail. Refusals are aggregated in Rust per source, action and reason
   * over a minute (with a count) apart from operator actions, so a flood
   * never evicts them; the log line and the `action` event come with the
   * first refusal of an entry and at counts 10, 100, 1000...
   */
  recordRefused(action: string, source: string, why: string): void {
    const r = this.plane.recordRefusal(text('action', action, 'unknown'), text('source', source, 'unknown'), text('why', why, ''), Date.now());
    if (!r.first && !/^10*$/.test(String(r.count))) return;
    const entry = JSON.parse(r.entryJson) as AuditEntry & { count: number };
    this.logger?.warn(JSON.stringify({ ts: new Date(entry.at).toISOString(), level: 'warn', event: 'ops.refused', ...entry }));
    this.emit('action', entry);
  }

  /**
   * @internal What a refused request's answer says (decision 1, 2 or 3 of
   * `decide`), looked up directly: O(1) in the number of quarantines.
   */
  refusal(decision: number, agentId?: string): { reason: string; level?: number; until?: number } {
    return this.plane.refusal(Number(decision), agentId === undefined ? undefined : text('agentId', agentId, ''), Date.now());
  }

  // ---- the state file ------------------------------------------------------------

  /**
   * Writes the state atomically (temp file, fsync, rename, fsync of the
   * folder). Never in read-only mode, and never over something that is not
   * a regular file (a FIFO or a device named as the state file).
   */
  save(): void {
    if (!this.file || this.readOnly) return;
    const blocked = this.blocked ?? (notRegular(this.file) ? `${this.file} is ${notRegular(this.file)}, not a regular file` : null);
    if (blocked) {
      this.fail(`cannot save ops state: ${blocked}; the state is kept in memory only`);
      return;
    }
    const text = this.plane.toJson(Date.now());
    try {
      writeStateFile(this.file, text);
      this.lastWritten = text;
      this.lastSavedAt = Date.now();
      this.seen = this.statOf();
      if (this.stateFileError) this.logger?.warn(JSON.stringify({ level: 'info', event: 'ops.state-file.ok', path: this.file }));
      this.stateFileError = null;
    } catch (e) {
      this.fail(`cannot save ops state to ${this.file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }

  private fail(msg: string, event = 'ops.state-file.error', level = 'warn'): void {
    if (this.stateFileError !== msg) this.logger?.warn(JSON.stringify({ level, event, message: msg }));
    this.stateFileError = msg;
    this.emit('stateFileError', new Error(msg));
  }

  private statOf(): { mtimeMs: number; size: number } | null {
    try {
      const st = fs.statSync(this.file!);
      return { mtimeMs: st.mtimeMs, size: st.size };
    } catch {
      return null;
    }
  }

  /**
   * Loads the state file if it exists. Only regular files are read (opened
   * without blocking, at most 32 MiB). A bad entry inside costs only itself
   * (dropped or repaired in Rust, listed in `lastLoadReport` and a warning);
   * a file that is not a state file at all, or cannot be read, is moved
   * aside (not in read-only mode) and the plane starts from defaults.
   */
  loadFile(): boolean {
    if (!this.file) return false;
    const r = readStateFile(this.file);
    if (r.kind === 'missing') return false;
    if (r.kind === 'unusable') {
      this.blocked = `${this.file} is ${r.reason}, not a regular file`;
      this.fail(`ops state file ${this.blocked}: not read and never written; starting from defaults`);
      return false;
    }
    if (r.kind === 'ok' && r.text === this.lastWritten) return false;
    let report: OpsLoadReport;
    try {
      if (r.kind === 'unreadable') throw new Error(`cannot read it: ${r.reason}`);
      report = this.plane.loadJson(r.text, Date.now());
    } catch (e) {
      const aside = this.readOnly ? null : moveAside(this.file);
      if (!aside && !this.readOnly) this.blocked = `${this.file} could not be read nor moved aside`;
      const what = this.readOnly ? 'left in place (read-only)' : aside ? `moved aside to ${aside}` : 'could not move it aside, so it is never overwritten';
      this.fail(`ops state file ${this.file} is invalid (${(e as Error).message}); ${what}; starting from defaults`, 'ops.state-file.corrupt', 'error');
      return false;
    }
    this.lastWritten = r.text;
    this.seen = this.statOf();
    this.lastLoadReport = report;
    if (report.dropped.length || report.repaired.length || report.more) {
      this.logger?.warn(JSON.stringify({ level: 'warn', event: 'ops.state-file.dropped', path: this.file, dropped: report.dropped, repaired: report.repaired, more: report.more }));
    }
    this.refresh();
    return true;
  }

  /** Re-reads the state file (read-only planes: the CLI waiting for a server). */
  reload(): boolean {
    return this.loadFile();
  }

  /** `{ by, result }` when the CLI command `id` was applied by the process that wrote this state. */
  appliedCommand(id: string): { by: string; result: string } | null {
    const a = this.plane.applied(text('id', id, ''));
    return a ? { by: a[0], result: a[1] } : null;
  }

  /** The persistent state as JSON (the state file's format), e.g. to share it. */
  exportState(): string {
    return this.plane.toJson(Date.now());
  }

  /**
   * Replaces the state with one exported elsewhere (another instance, via
   * Redis): checked in Rust before anything changes, saved to the state
   * file, rollbacks re-applied. Emits `reload`, never `change` (so a shared
   * backend does not echo it back). Throws only when the text is not a
   * state document at all; a bad entry inside is dropped or repaired and
   * listed in the report returned.
   */
  applyState(text: string): OpsLoadReport {
    if (typeof text !== 'string') throw new TypeError(`text must be a string, got ${typeof text}`);
    const report = this.plane.loadJson(text, Date.now());
    if (report.dropped.length || report.repaired.length || report.more) {
      this.logger?.warn(JSON.stringify({ level: 'warn', event: 'ops.state.dropped', dropped: report.dropped, repaired: report.repaired, more: report.more }));
    }
    this.refresh();
    this.save();
    if (this.rollouts) this.reapplyRollbacks();
    this.emit('reload', this.status());
    return report;
  }

  /**
   * This instance's replica document: every switch, quarantine and rollback
   * with the clock of its last change (a CRDT, `src/core/ops_merge.rs`), for
   * other instances' {@link mergeReplica}.
   *
   * @example
   * other.mergeReplica(ops.exportReplica());
   */
  exportReplica(): string {
    return this.plane.replicaExport(Date.now());
  }

  /**
   * Merges another instance's replica document: per switch and per agent or
   * rollout, the later change wins, so concurrent changes to different things
   * all survive (unlike {@link applyState}, which replaces everything).
   * Invalid entries are dropped and counted in `dropped`; a document that is
   * not a replica throws (TypeError/RangeError) and changes nothing. What
   * changed is saved, audited (source `replica:<instance>`), rollbacks that
   * arrived are applied to the rollouts here, and `reload` is emitted (never
   * `change`/`action`, so a shared backend does not echo it).
   *
   * @example
   * const { changes, dropped } = ops.mergeReplica(docFromRedis);
   */
  mergeReplica(text: string): { changes: ReturnType<Plane['replicaMerge']>['changes']; dropped: number } {
    if (typeof text !== 'string') throw new TypeError(`text must be a string, got ${typeof text}`);
    const r = this.plane.replicaMerge(text, Date.now());
    if (r.changes.length === 0) return r;
    this.refresh();
    this.save();
    if (this.rollouts) {
      const have = new Set(this.rollouts.names());
      const reasons = new Map(this.plane.status(Date.now()).rolledBack.map((x) => [x.name, x.reason] as const));
      for (const c of r.changes) {
        if (c.kind === 'rolledBack' && c.present && c.key && have.has(c.key)) this.rollouts.rollback(c.key, reasons.get(c.key) || 'operator rollback (from another instance)');
      }
    }
    this.emit('reload', this.status());
    return r;
  }

  /** Names this instance in the replica's clock stamps (the Redis backend passes its instance id). */
  setReplicaId(id: string): void {
    this.plane.replicaSetNode(text('id', id, ''));
  }

  /** Bumped on every change (local or applied): cheap to compare. */
  get version(): number {
    return this.current()[OpsFlag.Version];
  }

  /**
   * One unref'd interval (never holds the process open): reloads the file
   * when another process changed it, applies the CLI's queued commands and
   * refreshes the heartbeat that tells the CLI a server reads this file.
   */
  private watch(): void {
    // A path that is not a regular file (a FIFO, /dev/zero) gets nothing beside it: no inbox, no heartbeat.
    if (!this.file || this.watching || this.blocked) return;
    this.watching = true;
    removeDeadHeartbeats(this.file);
    try {
      this.heartbeat = writeHeartbeat(this.file, this.watchInterval);
    } catch {
      /* a read-only folder: the CLI will say no server reads the file */
    }
    this.poller = setInterval(() => this.poll(), this.watchInterval);
    this.poller.unref();
  }

  private poll(): void {
    const file = this.file!;
    try {
      const st = this.statOf();
      if (st && (!this.seen || st.mtimeMs !== this.seen.mtimeMs || st.size !== this.seen.size)) {
        this.seen = st;
        if (this.loadFile()) {
          const status = this.status();
          this.logger?.log(JSON.stringify({ ts: new Date().toISOString(), level: 'info', event: 'ops.reload', path: file, version: status.version }));
          if (this.rollouts) this.reapplyRollbacks();
          this.emit('reload', status);
        }
      }
      if (!this.blocked) {
        for (const c of claimCommands(file, 100)) this.applyQueued(c);
      }
      if (this.heartbeat) this.heartbeat = touchHeartbeat(this.heartbeat, file, this.watchInterval);
    } catch (e) {
      this.fail(`ops state poll of ${file} failed: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }

  /** Applies one command from the CLI's inbox, saves the state with its id, then deletes it. */
  private applyQueued(c: { path: string; cmd: InboxCommand } | { path: string; error: string }): void {
    if ('error' in c) {
      this.logger?.warn(JSON.stringify({ level: 'warn', event: 'ops.inbox.invalid', path: c.path, message: c.error }));
      removeCommand(c.path);
      return;
    }
    const { id, command, args, actor, source } = c.cmd;
    if (this.appliedCommand(id)) {
      removeCommand(c.path); // applied before a crash, not yet deleted
      return;
    }
    let result: string;
    try {
      result = this.runCommand(command, args, { actor, source }) ? 'changed' : 'unchanged';
    } catch (e) {
      result = `error: ${(e as Error)?.message ?? String(e)}`;
    }
    try {
      this.plane.markApplied(id, `pid ${process.pid} on ${os.hostname()}`, result, Date.now());
    } catch (e) {
      this.logger?.warn(JSON.stringify({ level: 'warn', event: 'ops.inbox.invalid', path: c.path, message: (e as Error).message }));
    }
    this.save();
    // Deleted only once the state that says it was applied is on disk.
    if (!this.stateFileError) removeCommand(c.path);
  }

  private runCommand(command: string, a: Record<string, any>, who: Who): boolean {
    const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
    switch (command) {
      case 'safe-mode':
        return this.setSafeMode(a.enabled === true, { ...who, reason: str(a.reason) }).changed;
      case 'brownout':
        return this.setBrownout(a.enabled === true, { ...who, reason: str(a.reason), level: typeof a.level === 'number' ? a.level : undefined }).changed;
      case 'quarantine-agent':
        return this.quarantineAgent(String(a.agentId), { ...who, reason: str(a.reason), ttlMs: typeof a.ttlMs === 'number' ? a.ttlMs : undefined }).changed;
      case 'release-agent':
        return this.releaseAgent(String(a.agentId), who).changed;
      case 'rollback':
        return this.rollback(a.all === true ? undefined : String(a.name), { ...who, reason: str(a.reason) }).changed;
      default:
        throw new Error(`unknown command ${JSON.stringify(command).slice(0, 80)}`);
    }
  }

  /** Stops watching the file (tests; shutdown). */
  close(): void {
    if (this.poller) clearInterval(this.poller);
    this.poller = null;
    if (this.heartbeat) removeHeartbeat(this.heartbeat);
    this.heartbeat = null;
    this.watching = false;
  }
}

let ops: OpsControls | null = null;
let opsEpoch = epoch();
/** The options of the last `configureOps`: a plane re-made after resetAll() keeps them. */
let opsOptions: OpsOptions = {};

/**
 * The process-wide ops plane (created on first use, loading its state file).
 *
 *   if (getOps().isSafeMode()) skipOptionalWork();
 */
export function getOps(): OpsControls {
  // After resetAll() the plane Rust held is empty: start a new one (its
  // timers stopped) so the JS side agrees.
  if (ops && opsEpoch !== epoch()) {
    ops.close();
    ops = null;
  }
  if (!ops) {
    ops = new OpsControls(opsOptions);
    opsEpoch = epoch();
  }
  return ops;
}

/**
 * The process-wide ops plane if something created it, else null (never creates it).
 *
 *   peekOps()?.isSafeMode(); // without creating the ops plane
 */
export function peekOps(): OpsControls | null {
  return ops && opsEpoch === epoch() ? ops : null;
}
// The modules below this one (traffic shaping, watchdogs) see the ops plane through ops-peek.
setOpsSource(peekOps);

/**
 * Replaces the process-wide ops plane (e.g. with other options, before serving).
 *
 *   configureOps({ stateFile: '.reliability/ops-state.json' });
 */
export function configureOps(options: OpsOptions): OpsControls {
  ops?.close();
  ops = new OpsControls(options);
  opsOptions = options;
  opsEpoch = epoch();
  return ops;
}

/**
 * Whether the process-wide ops plane is in safe mode (only essential routes served).
 *
 *   if (isSafeMode()) skipOptionalWork();
 */
export function isSafeMode(): boolean {
  return getOps().isSafeMode();
}

/**
 * Whether an operator quarantined the agent `agentId` (its requests get 423).
 *
 *   if (isAgentQuarantined('agent-7')) return;
 */
export function isAgentQuarantined(agentId: string): boolean {
  return getOps().isAgentQuarantined(agentId);
}

/**
 * Lets operators see and drain a dead-letter queue (`drain-dlq` in the CLI).
 *
 *   registerDeadLetterQueue('dead-letter', { depth: () => dlq.size(), drain: (n) => replay(n), ratePerSecond: 50 });
 */
export function registerDeadLetterQueue(name: string, queue: DeadLetterQueue): void {
  getOps().registerDeadLetterQueue(name, queue);
}

/**
 * `cli:<user>` for actions taken from a terminal.
 *
 *   localActor(); // e.g. 'cli:alice'
 */
export function localActor(): string {
  try {
    return `cli:${os.userInfo().username}`;
  } catch {
    return 'cli';
  }
}

