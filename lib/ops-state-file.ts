/**
 * The ops state file on disk, and the command inbox beside it.
 *
 * * Reading opens only regular files, without blocking (a FIFO or a device
 *   given as the state file is reported, never read or written), and reads at
 *   most {@link STATE_FILE_MAX_BYTES}.
 * * Writing is atomic (temp file, fsync, rename, fsync of the folder); temp
 *   files left by a killed process are removed at start.
 * * The inbox (`<state file>.inbox/`) is how the CLI's local mode reaches a
 *   running server without racing its saves: each command is its own file,
 *   created atomically; the server claims it (rename), applies it, saves the
 *   state with the command's id and deletes it. A server that consumes the
 *   inbox leaves a heartbeat file there, so the CLI knows whether one does.
 *
 * The state's content (validation, format) is Rust's; this file only moves bytes.
 *
 * @example
 * const r = readStateFile('/var/lib/app/ops-state.json');
 * if (r.kind === 'ok') plane.loadJson(r.text, Date.now());
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** A state file larger than this is not read (10,000 quarantines with long reasons stay far below). */
export const STATE_FILE_MAX_BYTES = 32 * 1024 * 1024;
/** Commands waiting in the inbox at most; the CLI refuses to queue more. */
export const INBOX_MAX_COMMANDS = 10_000;
/** A command file larger than this is not a command. */
const COMMAND_MAX_BYTES = 64 * 1024;

export type StateFileRead =
  | { kind: 'missing' }
  | { kind: 'ok'; text: string }
  /** Not a regular file (FIFO, device, folder): never read, never replaced. */
  | { kind: 'unusable'; reason: string }
  /** A regular file that cannot be read as text (too large, unreadable, not UTF-8). */
  | { kind: 'unreadable'; reason: string };

function fileKind(st: fs.Stats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isDirectory()) return 'a folder';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** Reads the state file: regular files only, non-blocking open, size-capped. */
export function readStateFile(file: string): StateFileRead {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // ENOTDIR: a path under a regular file; nothing there to read (the first save says why it cannot write).
    if (code === 'ENOENT' || code === 'ENOTDIR') return { kind: 'missing' };
    if (code === 'EISDIR') return { kind: 'unusable', reason: 'a folder' };
    return { kind: 'unreadable', reason: code ?? (e as Error).message };
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) return { kind: 'unusable', reason: fileKind(st) };
    if (st.size > STATE_FILE_MAX_BYTES) return { kind: 'unreadable', reason: `larger than ${STATE_FILE_MAX_BYTES} bytes` };
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buf = Buffer.allocUnsafe(Math.min(1 << 20, STATE_FILE_MAX_BYTES + 1 - total));
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      chunks.push(buf.subarray(0, n));
      total += n;
      // The file grew while being read: still never more than the cap.
      if (total > STATE_FILE_MAX_BYTES) return { kind: 'unreadable', reason: `larger than ${STATE_FILE_MAX_BYTES} bytes` };
    }
    try {
      return { kind: 'ok', text: new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks)) };
    } catch {
      return { kind: 'unreadable', reason: 'not UTF-8 text' };
    }
  } catch (e) {
    return { kind: 'unreadable', reason: (e as NodeJS.ErrnoException).code ?? (e as Error).message };
  } finally {
    fs.closeSync(fd);
  }
}

/** Why `file` must not be replaced (it exists and is not a regular file), or null. */
export function notRegular(file: string): string | null {
  try {
    const st = fs.statSync(file);
    return st.isFile() ? null : fileKind(st);
  } catch {
    return null;
  }
}

/** Writes `text` to `file` atomically: temp file, fsync, rename, fsync of the folder. */
export function writeStateFile(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const fd = fs.openSync(tmp, 'w', 0o600);
    try {
      fs.writeSync(fd, text);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      /* nothing to clean */
    }
    throw e;
  }
  try {
    const dfd = fs.openSync(path.dirname(file), 'r');
    fs.fsyncSync(dfd);
    fs.closeSync(dfd);
  } catch {
    /* some filesystems cannot fsync a folder; the rename is still atomic */
  }
}

/** Moves a file that cannot be used aside (`<file>.corrupt-<time>`); the new path, or null. */
export function moveAside(file: string): string | null {
  const aside = `${file}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  try {
    fs.renameSync(file, aside);
    return aside;
  } catch {
    return null;
  }
}

/** True while process `pid` exists (on this machine). */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes `<file>.<pid>.tmp` left by processes that no longer run (a kill during a save). */
export function removeStaleTmp(file: string): string[] {
  const dir = path.dirname(file);
  const base = path.basename(file);
  const removed: string[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return removed;
  }
  for (const n of names) {
    if (!n.startsWith(base + '.') || !n.endsWith('.tmp')) continue;
    const pid = Number(n.slice(base.length + 1, -'.tmp'.length));
    if (!Number.isInteger(pid) || (pid !== process.pid && pidAlive(pid))) continue;
    try {
      fs.rmSync(path.join(dir, n), { force: true });
      removed.push(n);
    } catch {
      /* someone else removed it */
    }
  }
  return removed;
}

// ---- the command inbox ------------------------------------------------------------

/** A CLI command for the server (local mode). */
export interface InboxCommand {
  id: string;
  at: number;
  command: string;
  args: Record<string, unknown>;
  actor: string;
  source: string;
}

export function inboxDir(file: string): string {
  return `${file}.inbox`;
}

/** A fresh command id (what `mark_applied` in Rust accepts). */
export function commandId(): string {
  return `${Date.now().toString(36)}-${randomBytes(8).toString('hex')}`;
}

/** Queues a command: one file, created by rename so the server never sees half of it. */
export function queueCommand(file: string, cmd: InboxCommand): string {
  const dir = inboxDir(file);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const waiting = fs.readdirSync(dir).filter((n) => n.startsWith('cmd-')).length;
  if (waiting >= INBOX_MAX_COMMANDS) throw new Error(`the command inbox ${dir} holds ${waiting} commands already; is a server consuming it?`);
  const tmp = path.join(dir, `.tmp-${cmd.id}`);
  const dest = path.join(dir, `cmd-${String(cmd.at).padStart(15, '0')}-${cmd.id}.json`);
  const fd = fs.openSync(tmp, 'wx', 0o600);
  try {
    fs.writeSync(fd, JSON.stringify(cmd));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, dest);
  return dest;
}

/** A claimed command: its file (to delete once applied) and its content, or why it is not one. */
export type Claimed = { path: string; cmd: InboxCommand } | { path: string; error: string };

const CLAIM = '.claimed-';

/**
 * Claims up to `max` waiting commands, oldest first (rename: two servers on
 * one file never both apply one), plus commands claimed by a process that
 * died before finishing them.
 */
export function claimCommands(file: string, max: number): Claimed[] {
  const dir = inboxDir(file);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const out: Claimed[] = [];
  const mine = `${CLAIM}${process.pid}`;
  const candidates = names.filter((n) => n.startsWith('cmd-')).sort();
  for (const n of candidates) {
    if (out.length >= max) break;
    const at = n.indexOf(CLAIM);
    if (at >= 0) {
      const owner = Number(n.slice(at + CLAIM.length));
      if (owner !== process.pid && pidAlive(owner)) continue; // another live server is on it
    }
    const claimed = path.join(dir, (at >= 0 ? n.slice(0, at) : n) + mine);
    try {
      if (path.join(dir, n) !== claimed) fs.renameSync(path.join(dir, n), claimed);
    } catch {
      continue; // someone else took it
    }
    const r = readStateFile(claimed);
    if (r.kind !== 'ok' || r.text.length > COMMAND_MAX_BYTES) {
      out.push({ path: claimed, error: r.kind === 'ok' ? 'too large' : r.kind });
      continue;
    }
    try {
      const c = JSON.parse(r.text);
      if (!c || typeof c !== 'object' || typeof c.id !== 'string' || typeof c.command !== 'string' || (c.args !== undefined && (typeof c.args !== 'object' || c.args === null))) throw new Error('not a command');
      out.push({ path: claimed, cmd: { id: c.id, at: Number(c.at) || Date.now(), command: c.command, args: c.args ?? {}, actor: String(c.actor ?? 'cli'), source: String(c.source ?? 'local') } });
    } catch (e) {
      out.push({ path: claimed, error: (e as Error).message });
    }
  }
  return out;
}

export function removeCommand(p: string): void {
  try {
    fs.rmSync(p, { force: true });
  } catch {
    /* already gone */
  }
}

// ---- the heartbeat of a server consuming the inbox --------------------------------------

export interface Heartbeat {
  pid: number;
  host: string;
  stateFile: string;
  startedAt: number;
  intervalMs: number;
}

let heartbeats = 0;
/** Heartbeat files of this process, removed when it exits (a killed one leaves a stale file the CLI ignores). */
const ownHeartbeats = new Set<string>();
let exitHook = false;

/** Removes a heartbeat file of this process (on close). */
export function removeHeartbeat(p: string): void {
  ownHeartbeats.delete(p);
  removeCommand(p);
}

/** Writes this process's heartbeat file in the inbox folder; returns its path. */
export function writeHeartbeat(file: string, intervalMs: number): string {
  const dir = inboxDir(file);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const p = path.join(dir, `server-${process.pid}-${heartbeats++}.json`);
  const hb: Heartbeat = { pid: process.pid, host: os.hostname(), stateFile: file, startedAt: Date.now(), intervalMs };
  fs.writeFileSync(p, JSON.stringify(hb), { mode: 0o600 });
  ownHeartbeats.add(p);
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => {
      for (const h of ownHeartbeats) removeCommand(h);
    });
  }
  return p;
}

/** Marks the heartbeat fresh (its mtime); rewrites it when someone removed it. */
export function touchHeartbeat(p: string, file: string, intervalMs: number): string {
  try {
    const t = new Date();
    fs.utimesSync(p, t, t);
    return p;
  } catch {
    return writeHeartbeat(file, intervalMs);
  }
}

/** Servers consuming `file`'s inbox now: a live pid on this host with a fresh heartbeat. */
export function liveServers(file: string, now = Date.now()): Array<Heartbeat & { ageMs: number }> {
  const dir = inboxDir(file);
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => n.startsWith('server-') && n.endsWith('.json'));
  } catch {
    return [];
  }
  const out: Array<Heartbeat & { ageMs: number }> = [];
  for (const n of names) {
    try {
      const p = path.join(dir, n);
      const st = fs.statSync(p);
      if (!st.isFile() || st.size > 4096) continue;
      const hb = JSON.parse(fs.readFileSync(p, 'utf8')) as Heartbeat;
      const ageMs = now - st.mtimeMs;
      if (hb.host === os.hostname() && pidAlive(hb.pid) && ageMs < Math.max(3 * Number(hb.intervalMs), 3000)) out.push({ ...hb, ageMs });
    } catch {
      /* not a heartbeat */
    }
  }
  return out;
}

/**
 * At a server's start: removes heartbeat files of processes that no longer
 * run, and half-written commands (`.tmp-*`) of a CLI killed over a minute ago.
 */
export function removeDeadHeartbeats(file: string): void {
  const dir = inboxDir(file);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) {
    if (/^server-\d+-\d+\.json$/.test(n)) {
      const pid = Number(n.split('-')[1]);
      if (pid !== process.pid && !pidAlive(pid)) removeCommand(path.join(dir, n));
    } else if (n.startsWith('.tmp-')) {
      try {
        if (Date.now() - fs.statSync(path.join(dir, n)).mtimeMs > 60_000) removeCommand(path.join(dir, n));
      } catch {
        /* gone */
      }
    }
  }
}
