/**
 * Defensive readers for the values the Redis backend reads back: anyone
 * with access to the Redis can write anything under the prefix, so every
 * value is checked before use and a bad one comes back as `null` (the
 * caller ignores and counts it) instead of throwing inside an async
 * callback. The ops replica documents are checked in Rust
 * (`src/core/ops_merge.rs`), entry by entry; these are the shapes the
 * TypeScript side writes itself.
 *
 * @example
 * const vote = parseVote(await redis.hget('rc:breaker:db', 'i-1')); // null when bad
 */

/** Parses JSON, or null on any error (never throws). */
function json(raw: unknown): any {
  if (typeof raw !== 'string' || raw.length > 16 * 1024 * 1024) return null;
  try {
    return JSON.parse(raw);
  } catch {
    return null;
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const count = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;
const time = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** A quorum breaker's vote (`breaker:<name>` hash field). */
export interface Vote {
  state: 'open' | 'closed' | 'halfOpen';
  at: number;
}

const STATES = new Set(['open', 'closed', 'halfOpen']);

export function parseVote(raw: unknown): Vote | null {
  const v = json(raw);
  return isObj(v) && typeof v.state === 'string' && STATES.has(v.state) && time(v.at) ? { state: v.state as Vote['state'], at: v.at } : null;
}

/** A pub/sub notice on the `events` channel. */
export interface Notice {
  type: string;
  by: string | null;
}

export function parseNotice(raw: unknown): Notice | null {
  const m = json(raw);
  if (!isObj(m) || typeof m.type !== 'string') return null;
  return { type: m.type, by: typeof m.by === 'string' ? m.by : null };
}

/** One shared rollout change (`rollouts` hash field). */
export interface RolloutChange {
  kind: string;
  toPercentage: number;
  at: number;
  by: string;
}

export function parseRolloutChange(raw: unknown, kinds: ReadonlySet<string>): RolloutChange | null {
  const c = json(raw);
  if (!isObj(c) || typeof c.kind !== 'string' || !kinds.has(c.kind) || !time(c.at) || typeof c.by !== 'string') return null;
  if (typeof c.toPercentage !== 'number' || !(c.toPercentage >= 0 && c.toPercentage <= 100)) return null;
  return { kind: c.kind, toPercentage: c.toPercentage, at: c.at, by: c.by };
}

/** An instance's metrics document (`metrics:<instance>`). */
export interface MetricsDoc {
  instance: string;
  at: number;
  counts: { requests: number; status4xx: number; status5xx: number; aborted: number };
  lastMinute: { requests: number; status4xx: number; status5xx: number };
  rollouts: Record<string, { requests: number; errors: number }>;
  histograms: { all: string; '1m': string };
}

function counts<K extends string>(v: unknown, keys: readonly K[]): Record<K, number> | null {
  if (!isObj(v)) return null;
  const out = {} as Record<K, number>;
  for (const k of keys) {
    if (!count(v[k])) return null;
    out[k] = v[k] as number;
  }
  return out;
}

/** Shape only: the histograms' encoding is checked when they are merged (in Rust). */
export function parseMetricsDoc(raw: unknown): MetricsDoc | null {
  const d = json(raw);
  if (!isObj(d) || typeof d.instance !== 'string' || !time(d.at)) return null;
  const c = counts(d.counts, ['requests', 'status4xx', 'status5xx', 'aborted'] as const);
  const m = counts(d.lastMinute, ['requests', 'status4xx', 'status5xx'] as const);
  const h = d.histograms;
  if (!c || !m || !isObj(h) || typeof h.all !== 'string' || typeof h['1m'] !== 'string') return null;
  // No prototype: a rollout named `__proto__` in Redis must stay a plain key.
  const rollouts: MetricsDoc['rollouts'] = Object.create(null);
  if (d.rollouts !== undefined) {
    if (!isObj(d.rollouts)) return null;
    for (const [name, r] of Object.entries(d.rollouts)) {
      const x = counts(r, ['requests', 'errors'] as const);
      if (!x) return null;
      rollouts[name] = x;
    }
  }
  return { instance: d.instance, at: d.at, counts: c, lastMinute: m, rollouts, histograms: { all: h.all, '1m': h['1m'] } };
}
