#!/usr/bin/env node
/**
 * `incident-response`: the operator's CLI (replaces the original
 * `scripts/incident-response.ts`, which only printed messages).
 *
 * Remote mode (`--url` or `RELIABILITY_OPS_URL`): calls the server's
 * `/api/ops` API with the token from `RELIABILITY_OPS_TOKEN` (never
 * printed, nor credentials in a URL: every output is redacted). Local mode
 * (no URL) talks to the server that reads the state file (`--state-file`,
 * `RELIABILITY_STATE_FILE`, or `.reliability/ops-state.json`): a change is
 * queued in the file's inbox and reported "applied" only once that server
 * has applied it; with no server reading the file it says so and exits 1.
 * Read-only commands (`status`, `audit`) never modify the file.
 *
 * Exit codes: 0 done, 1 failed (refused, unreachable, timeout, not applied), 2 usage.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { localActor, OpsControls, type ActionResult, type OpsStatus } from '../ops';
import { commandId, inboxDir, liveServers, queueCommand } from '../ops-state-file';

const USAGE = `Usage: incident-response <command> [options]

Commands:
  status                                   show safe mode, brownout, quarantines, rollbacks, queues
  safe-mode <enable|disable> [--reason R]  serve only essential routes while enabled
  brownout <enable|disable> [reason...] [--level 0..1]
                                           shed non-critical traffic (level = share still served; default 0)
  quarantine-agent <agentId> [--ttl 30m] [--reason R]
                                           answer 423 for requests acting for this agent
  release-agent <agentId>                  lift a quarantine
  rollback <rollout> [--reason R]          roll a rollout back to 0% at once, skipping analysis
  rollback --all [--reason R]              the same for every rollout
  drain-dlq [queue] [--limit N]            re-process dead letters, paced by the queue's rate (server only)
  audit [--limit N]                        the last ops actions

Options:
  --url URL          act on a running server (default RELIABILITY_OPS_URL); token from RELIABILITY_OPS_TOKEN
  --state-file PATH  local mode: the state file of the server on this machine
                     (default RELIABILITY_STATE_FILE or .reliability/ops-state.json); changes are
                     queued for that server and reported once it applied them
  --timeout MS       remote request timeout (default 10000); local mode: wait for the server (default 5000)
  --json             machine-readable output
  --help             this text (or: incident-response <command> --help)

Exit codes: 0 done, 1 failed (or, in local mode, no running server applied the change), 2 usage.`;

const HELP: Record<string, string> = {
  status: 'incident-response status [--url URL] [--json]\n  Shows every control, the dead-letter queues and where the state is kept.',
  'safe-mode': "incident-response safe-mode <enable|disable> [--reason R]\n  While enabled only essential routes (health, observability, ops and the app's list) are served; others get 503.",
  brownout:
    'incident-response brownout <enable|disable> [reason...] [--level 0..1]\n  The level is the share of non-critical traffic still served: 0 = critical only (default), 0.5 = every sheddable request shed.',
  'quarantine-agent': 'incident-response quarantine-agent <agentId> [--ttl 30m|90s|2h|ms] [--reason R]\n  Requests acting for the agent get 423 until released or until the ttl ends.',
  'release-agent': 'incident-response release-agent <agentId>',
  rollback:
    'incident-response rollback <rollout> [--reason R]\nincident-response rollback --all [--reason R]\n  Sends the rollout (or every rollout with --all) to 0% at once; the rollback is recorded, so it survives a restart.\n  `incident-response status` lists the rollouts rolled back; GET /api/observability/rollouts lists them all.',
  'drain-dlq': 'incident-response drain-dlq [queue] [--limit N]\n  Re-processes up to N dead letters per queue (default 1000), paced by the queue rate. Needs --url.',
  audit: 'incident-response audit [--limit N]\n  The last N ops actions (default 20): time, action, actor, source, result.',
};

class UsageError extends Error {}

interface Parsed {
  command: string | undefined;
  args: string[];
  flags: Record<string, string | true>;
}

const VALUE_FLAGS = new Set(['url', 'state-file', 'timeout', 'reason', 'level', 'ttl', 'limit']);
const BOOL_FLAGS = new Set(['json', 'help', 'all']);

function parse(argv: string[]): Parsed {
  const args: string[] = [];
  const flags: Record<string, string | true> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h') {
      flags.help = true;
      continue;
    }
    if (!a.startsWith('--')) {
      args.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
    if (BOOL_FLAGS.has(name)) {
      flags[name] = true;
    } else if (VALUE_FLAGS.has(name)) {
      const v = eq > 0 ? a.slice(eq + 1) : argv[++i];
      if (v === undefined) throw new UsageError(`--${name} needs a value`);
      flags[name] = v;
    } else {
      throw new UsageError(`unknown option --${name}`);
    }
  }
  return { command: args.shift(), args, flags };
}

/** `30m`, `90s`, `2h`, `1d` or plain milliseconds. */
export function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(s.trim());
  if (!m) throw new UsageError(`--ttl must be a duration like 30m, 90s, 2h or a number of ms, got ${JSON.stringify(s)}`);
  const mult = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] ?? 'ms']!;
  return Number(m[1]) * mult;
}

function num(flag: string, v: string | true | undefined, min: number, max: number, int = false): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v === true || !Number.isFinite(n) || n < min || n > max || (int && !Number.isInteger(n))) {
    throw new UsageError(`--${flag} must be ${int ? 'an integer' : 'a number'} from ${min} to ${max}, got ${JSON.stringify(v)}`);
  }
  return n;
}

function str(v: string | true | undefined): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

// ---- remote mode ------------------------------------------------------------------

async function call(base: string, method: string, route: string, body: unknown, timeoutMs: number): Promise<any> {
  const token = process.env.RELIABILITY_OPS_TOKEN;
  // Checked here so no error from fetch ever quotes the header (and the token).
  if (token && !/^[\x21-\x7e]+$/.test(token)) throw new Error('RELIABILITY_OPS_TOKEN holds a character an HTTP header cannot carry (space, line break, control or non-ASCII character)');
  const headers: Record<string, string> = { accept: 'application/json', 'x-ops-actor': localActor().replace(/[^\w.@:-]/g, '') };
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  // The URL is the server's base (http://host:port); the ops API is under /api/ops.
  let root: URL;
  try {
    root = new URL(base);
  } catch {
    throw new Error('--url (or RELIABILITY_OPS_URL) is not a valid URL (expected http://host:port)');
  }
  if (root.username || root.password) throw new Error('--url must not hold credentials (user:password@): the ops token comes from RELIABILITY_OPS_TOKEN');
  const prefix = root.pathname.replace(/\/+$/, '');
  root.pathname = (prefix.endsWith('/api/ops') ? prefix : `${prefix}/api/ops`) + '/';
  const url = new URL(route.replace(/^\//, ''), root);
  let res: Response;
  try {
    res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    const err = e as Error & { cause?: { code?: string; message?: string } };
    const why = err.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (err.cause?.code ?? err.cause?.message ?? err.message);
    throw new Error(`cannot reach ${url.origin}: ${why}`);
  }
  let data: any = null;
  try {
    data = await res.json();
  } catch {
    /* not JSON */
  }
  if (!res.ok) throw new Error(`server answered ${res.status}: ${data?.message ?? data?.error ?? res.statusText}`);
  return data;
}

// ---- output ------------------------------------------------------------------------

function describeStatus(s: OpsStatus): string[] {
  const t = (ms: number) => new Date(ms).toISOString();
  const lines = [
    `safe mode:  ${s.safeMode ? `ON since ${t(s.safeMode.since)}${s.safeMode.reason ? ` (${s.safeMode.reason})` : ''}` : 'off'}`,
    `brownout:   ${s.brownout ? `ON, level ${s.brownout.level} (share of non-critical traffic served) since ${t(s.brownout.since)}${s.brownout.reason ? ` (${s.brownout.reason})` : ''}` : 'off'}`,
    `quarantine: ${s.quarantined.length === 0 ? 'none' : s.quarantined.map((q) => `${q.agentId}${q.expiresAt ? ` until ${t(q.expiresAt)}` : ''}${q.reason ? ` (${q.reason})` : ''}`).join(', ')}`,
    `rolled back: ${s.rolledBack.length === 0 ? 'none' : s.rolledBack.map((r) => r.name).join(', ')}`,
  ];
  return lines;
}

function summary(r: ActionResult): string {
  return r.changed ? 'changed' : 'unchanged (already in that state)';
}

// ---- commands -------------------------------------------------------------------------

async function run(p: Parsed): Promise<{ human: string[]; json: unknown }> {
  const base = str(p.flags.url) ?? process.env.RELIABILITY_OPS_URL;
  const timeout = num('timeout', p.flags.timeout, 100, 600_000, true) ?? 10_000;
  const remote = !!base;
  const file = path.resolve(str(p.flags['state-file']) ?? process.env.RELIABILITY_STATE_FILE ?? path.join('.reliability', 'ops-state.json'));
  const localWait = num('timeout', p.flags.timeout, 100, 600_000, true) ?? 5000;
  /** The state file, read-only: status and audit never change it. */
  const readLocal = () => {
    if (!fs.existsSync(file)) throw new Error(`no state file at ${file}, and no running server reads it: run this from the server's folder, or pass --state-file or --url`);
    const o = new OpsControls({ stateFile: file, watch: false, logger: null, readOnly: true });
    if (o.stateFileError) throw new Error(o.stateFileError);
    return o;
  };
  const serverLine = () => {
    const live = liveServers(file);
    return live.length ? `server: ${live.map((l) => `pid ${l.pid}`).join(', ')} reads this state file (heartbeat ${(Math.min(...live.map((l) => l.ageMs)) / 1000).toFixed(1)} s ago)` : `⚠️  no running server reads this state file (no live heartbeat in ${inboxDir(file)})`;
  };
  const who = { actor: localActor(), source: 'local' };
  /**
   * Local mode: checks the command (the core's rules, on a scratch plane),
   * queues it for the server and waits until the state file says the server
   * applied it.
   */
  const queued = async (command: string, args: Record<string, unknown>, check: (scratch: OpsControls) => void) => {
    check(new OpsControls({ stateFile: false, logger: null }));
    const live = liveServers(file);
    if (live.length === 0 && !fs.existsSync(file)) {
      throw new Error(`no running server reads the state file ${file} and there is none there: nothing changed. Run this from the server's folder, or pass --state-file or --url`);
    }
    const id = commandId();
    queueCommand(file, { id, at: Date.now(), command, args, ...who });
    if (live.length === 0) {
      throw new Error(`no running server reads the state file ${file} (no live heartbeat in ${inboxDir(file)}): the change is NOT applied; it is queued as ${id} and applies when a server starts with this state file`);
    }
    const view = new OpsControls({ stateFile: file, watch: false, logger: null, readOnly: true });
    const end = Date.now() + localWait;
    let applied = view.appliedCommand(id);
    while (!applied && Date.now() < end) {
      await sleep(50);
      view.reload();
      applied = view.appliedCommand(id);
    }
    if (!applied) throw new Error(`queued as ${id}, but the server (pid ${live.map((l) => l.pid).join(', ')}) did not apply it within ${localWait} ms; it applies it when it polls again`);
    if (applied.result.startsWith('error: ')) throw new Error(`server ${applied.by} refused the change: ${applied.result.slice('error: '.length)}`);
    const after = view.status();
    const changed = applied.result === 'changed';
    return {
      human: [`${command}: ${changed ? 'changed' : 'unchanged (already in that state)'}, applied by server ${applied.by}`, 'after:', ...describeStatus(after).map((l) => '  ' + l)],
      json: { action: command, id, applied: true, by: applied.by, changed, result: applied.result, after },
    };
  };
  const act = async (method: string, route: string, body: unknown, command: string, args: Record<string, unknown>, check: (scratch: OpsControls) => unknown) => {
    if (!remote) return queued(command, args, (o) => void check(o));
    const r: ActionResult = await call(base!, method, route, body, timeout);
    return { human: [`${r.action}: ${summary(r)}`, 'before:', ...describeStatus(r.before).map((l) => '  ' + l), 'after:', ...describeStatus(r.after).map((l) => '  ' + l)], json: r };
  };
  const onOff = (cmd: string) => {
    const a = p.args[0];
    if (a !== 'enable' && a !== 'disable') throw new UsageError(`❌ Error: Action required (enable|disable) for ${cmd}`);
    return a === 'enable';
  };

  switch (p.command) {
    case 'status': {
      const s = remote ? await call(base!, 'GET', 'status', undefined, timeout) : readLocal().status();
      const lines = describeStatus(s);
      if (s.deadLetterQueues?.length) lines.push(`dead-letter queues: ${s.deadLetterQueues.join(', ')}`);
      lines.push(remote ? `server: ${base}` : `state file: ${s.stateFile?.path}`);
      if (!remote) lines.push(serverLine());
      if (s.stateFile?.error) lines.push(`⚠️  state file: ${s.stateFile.error}`);
      if (s.stateFile?.dropped?.length) lines.push(`⚠️  state file entries dropped: ${s.stateFile.dropped.join('; ')}`);
      return { human: lines, json: s };
    }
    case 'safe-mode': {
      const enabled = onOff('safe-mode');
      const reason = str(p.flags.reason) ?? p.args.slice(1).join(' ');
      return act('POST', 'safe-mode', { enabled, reason }, 'safe-mode', { enabled, reason }, (o) => o.setSafeMode(enabled, { ...who, reason }));
    }
    case 'brownout': {
      const enabled = onOff('brownout');
      const reason = str(p.flags.reason) ?? (p.args.slice(1).join(' ') || (enabled ? 'Manual trigger' : ''));
      const level = num('level', p.flags.level, 0, 1);
      if (!enabled && level !== undefined) throw new UsageError('--level applies to brownout enable only');
      const body = { enabled, reason, ...(level !== undefined ? { level } : {}) };
      return act('POST', 'brownout', body, 'brownout', body, (o) => o.setBrownout(enabled, { ...who, reason, level }));
    }
    case 'quarantine-agent': {
      const id = p.args[0];
      if (!id) throw new UsageError('❌ Error: Agent ID required');
      const ttlMs = p.flags.ttl === undefined ? undefined : parseDuration(String(p.flags.ttl));
      const reason = str(p.flags.reason) ?? p.args.slice(1).join(' ');
      const body = { reason, ...(ttlMs !== undefined ? { ttlMs } : {}) };
      return act('POST', `agents/${encodeURIComponent(id)}/quarantine`, body, 'quarantine-agent', { agentId: id, ...body }, (o) => o.quarantineAgent(id, { ...who, reason, ttlMs }));
    }
    case 'release-agent': {
      const id = p.args[0];
      if (!id) throw new UsageError('❌ Error: Agent ID required');
      return act('DELETE', `agents/${encodeURIComponent(id)}/quarantine`, undefined, 'release-agent', { agentId: id }, (o) => o.releaseAgent(id, who));
    }
    case 'rollback': {
      const name = p.args[0];
      const all = p.flags.all === true;
      // The original took no argument: say how to name the rollout instead of guessing.
      if (!name && !all) throw new UsageError('rollback needs the rollout to roll back: incident-response rollback <rollout>, or --all for every rollout');
      if (name && all) throw new UsageError('give a rollout name or --all, not both');
      const reason = str(p.flags.reason) ?? 'operator rollback (incident-response)';
      const body = all ? { all: true, reason } : { name, reason };
      return act('POST', 'rollback', body, 'rollback', body, (o) => (all ? undefined : o.recordRollback([name!], { ...who, reason })));
    }
    case 'drain-dlq': {
      if (!remote) throw new Error('drain-dlq needs a running server (--url or RELIABILITY_OPS_URL): the queues live in its process');
      const limit = num('limit', p.flags.limit, 1, 1e9, true);
      const q = p.args[0];
      const r = await call(base!, 'POST', q ? `dlq/${encodeURIComponent(q)}/drain` : 'dlq/drain', limit !== undefined ? { limit } : {}, timeout);
      const human = r.runs.length === 0 ? ['no dead-letter queues registered'] : r.runs.map((x: any) => `${x.queue}: ${x.processed} reprocessed, ${x.failed} failed${x.error ? `, stopped: ${x.error}` : ''} (${x.status})`);
      return { human, json: r };
    }
    case 'audit': {
      const limit = num('limit', p.flags.limit, 1, 10_000, true) ?? 20;
      const entries = remote ? (await call(base!, 'GET', `audit?limit=${limit}`, undefined, timeout)).entries : readLocal().audit(limit);
      const human =
        entries.length === 0
          ? ['no ops actions recorded']
          : entries.map((e: any) => `${new Date(e.at).toISOString()}  ${e.action.padEnd(16)} ${e.actor} from ${e.source}: ${e.result}${e.count > 1 ? ` (×${e.count})` : ''} ${JSON.stringify(e.args)}`);
      return { human, json: { entries } };
    }
    default:
      throw new UsageError(`❌ Unknown command: ${p.command}`);
  }
}

/**
 * Removes secrets from anything the CLI prints: the ops token (raw and as
 * JSON escapes it) and credentials in URLs (`http://user:pw@host`).
 *
 * @example redact('cannot reach http://admin:pw@10.0.0.1') // 'cannot reach http://<redacted>@10.0.0.1'
 */
export function redact(text: string, token = process.env.RELIABILITY_OPS_TOKEN): string {
  let out = text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@]*@/gi, '$1<redacted>@');
  if (token && token.length >= 3) {
    for (const form of new Set([token, JSON.stringify(token).slice(1, -1), encodeURIComponent(token)])) out = out.split(form).join('<redacted>');
  }
  return out;
}

export async function main(argv: string[], stdout = process.stdout, stderr = process.stderr): Promise<number> {
  const out = { write: (s: string) => stdout.write(redact(s)) };
  const err = { write: (s: string) => stderr.write(redact(s)) };
  let p: Parsed;
  try {
    p = parse(argv);
  } catch (e) {
    err.write(`${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (!p.command) {
    out.write(USAGE + '\n');
    return p.flags.help ? 0 : 0;
  }
  if (p.flags.help) {
    const h = HELP[p.command];
    if (!h) {
      err.write(`❌ Unknown command: ${p.command}\n${USAGE}\n`);
      return 2;
    }
    out.write(h + '\n');
    return 0;
  }
  const json = p.flags.json === true;
  if (!json) out.write(`🚨 Incident Response: Executing '${p.command}'...\n`);
  try {
    const r = await run(p);
    out.write(json ? JSON.stringify(r.json, null, 2) + '\n' : r.human.map((l) => `✅ ${l}`.replace(/^✅ (\s)/, '   $1')).join('\n') + '\n');
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      err.write(`${e.message}\n${HELP[p.command] ?? USAGE}\n`);
      return 2;
    }
    const msg = (e as Error)?.message ?? String(e);
    if (json) out.write(JSON.stringify({ error: msg }) + '\n');
    err.write(`❌ Execution failed: ${msg}\n`);
    return 1;
  }
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
