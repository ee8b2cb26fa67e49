/**
 * The original's queue registry step (`server/core/queue-init.ts`:
 * `initializeAllQueues`, `ensureQueue`): declares queues and topics as rows
 * of a `queue_registry` table in the configured database, idempotently, so
 * `initializeReliabilitySystem()` does what the original's did between the
 * migrations and the graph.
 *
 * ```ts
 * setDatabase(pool);
 * await initializeAllQueues(); // the original's four Spine queues
 * await ensureQueue({ name: 'billing-events', type: 'topic' });
 * ```
 */
import { executeDirect, isDatabaseConfigured } from './db-circuit-breaker';

export interface QueueDeclaration {
  name: string;
  type: 'queue' | 'topic' | 'stream';
  config?: Record<string, unknown>;
}

/** The original's Spine Event Bus queues and topic. */
export const DEFAULT_QUEUES: readonly QueueDeclaration[] = Object.freeze([
  { name: 'dreamnet-events', type: 'topic' },
  { name: 'agent-commands', type: 'queue' },
  { name: 'agent-responses', type: 'queue' },
  { name: 'dead-letter', type: 'queue' },
]);

/** At most this many declarations per call: each is one statement. */
export const MAX_QUEUES = 1000;

// The original's table, created when missing.
const CREATE_TABLE = `CREATE TABLE IF NOT EXISTS queue_registry (
  name TEXT PRIMARY KEY,
  type TEXT NOT NULL,
  config JSONB,
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
)`;
const CREATE_INDEX = 'CREATE INDEX IF NOT EXISTS queue_registry_type_idx ON queue_registry (type)';
const INSERT = `INSERT INTO queue_registry (name, type, config, created_at) VALUES ($1, $2, $3, NOW())
  ON CONFLICT (name) DO NOTHING RETURNING name`;

export interface QueueInitResult {
  created: string[];
  existing: string[];
}

function checkDeclaration(q: unknown, i: number): asserts q is QueueDeclaration {
  const d = q as QueueDeclaration;
  if (d === null || typeof d !== 'object') throw new TypeError(`queues[${i}] must be an object, got ${d === null ? 'null' : typeof d}`);
  if (typeof d.name !== 'string' || d.name.length === 0 || d.name.length > 200) {
    throw new TypeError(`queues[${i}].name must be a non-empty string of at most 200 characters`);
  }
  if (d.type !== 'queue' && d.type !== 'topic' && d.type !== 'stream') {
    throw new RangeError(`queues[${i}].type must be 'queue', 'topic' or 'stream', got ${JSON.stringify(d.type)}`);
  }
  if (d.config !== undefined && (d.config === null || typeof d.config !== 'object')) throw new TypeError(`queues[${i}].config must be an object`);
}

/** Rows a driver returned, whatever its result shape (node-postgres, drizzle, or an array). */
function rowsOf(r: unknown): unknown[] {
  if (Array.isArray(r)) return r;
  const rows = (r as { rows?: unknown })?.rows;
  return Array.isArray(rows) ? rows : [];
}

/**
 * Declares the queues (default: the original's four) in `queue_registry`,
 * creating the table if it is missing. Existing rows are left as they are.
 * Needs a configured database (`setDatabase`); rejects with the driver's
 * error otherwise or when a statement fails.
 *
 *   const { created } = await initializeAllQueues();
 */
export async function initializeAllQueues(queues: readonly QueueDeclaration[] = DEFAULT_QUEUES): Promise<QueueInitResult> {
  if (!Array.isArray(queues)) throw new TypeError(`queues must be an array, got ${typeof queues}`);
  if (queues.length > MAX_QUEUES) throw new RangeError(`queues must have at most ${MAX_QUEUES} entries, got ${queues.length}`);
  queues.forEach(checkDeclaration);
  await executeDirect(CREATE_TABLE);
  await executeDirect(CREATE_INDEX);
  const out: QueueInitResult = { created: [], existing: [] };
  for (const q of queues) {
    const r = await executeDirect(INSERT, [q.name, q.type, JSON.stringify(q.config ?? {})]);
    (rowsOf(r).length > 0 ? out.created : out.existing).push(q.name);
  }
  return out;
}

/**
 * One declaration (the original's `ensureQueue`).
 *
 *   await ensureQueue({ name: 'emails', type: 'queue' });
 */
export async function ensureQueue(queue: QueueDeclaration): Promise<boolean> {
  const r = await initializeAllQueues([queue]);
  return r.created.length === 1;
}

/**
 * Whether the queue step can run: a database is configured.
 *
 *   if (canInitializeQueues()) await initializeAllQueues();
 */
export function canInitializeQueues(): boolean {
  return isDatabaseConfigured();
}
