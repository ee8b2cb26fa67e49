/**
 * The loader: a drop-in replacement for the original
 * `server/core/dag-loader.ts` (`loadServicesFromGraph`,
 * `initializeHealthGates`, `initializeReliabilitySystem`). Also re-exports
 * the startup DAG, so `@dreamnet/reliability-core/dag-loader` is the one
 * import a server needs.
 *
 * `deploy/graph.json` is parsed and checked in Rust (`src/core/graph_file.rs`):
 * every problem comes back at once with its JSON path. Modules named in the
 * file are resolved from a root folder (default: the working directory), as
 * the paths in the original file are written (`server/db`,
 * `@dreamnet/neural-mesh`); a module that cannot be loaded fails its service
 * with the reason, where the original silently fell back to a no-op.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { native } from './native';
import {
  alwaysHealthy,
  assertDatabaseHealthy,
  getLogger,
  getStartupDAG,
  reasonOf,
  type StartupDAG,
  type StartupReport,
} from './startup-dag';
import { assertDAGReady, getHealthGates, type HealthGates } from './health-gates';
import { getRegisteredMigrations, runMigrations } from './migrations';
import { canInitializeQueues, DEFAULT_QUEUES, initializeAllQueues, type QueueDeclaration } from './queue-init';

export * from './startup-dag';

export interface LoadOptions {
  /** The graph file (default `<root>/deploy/graph.json`). */
  path?: string;
  /** Folder that module paths are resolved from (default `process.cwd()`). */
  root?: string;
  /** Where `conditional` variables are read (default `process.env`). */
  env?: Record<string, string | undefined>;
  dag?: StartupDAG;
}

export interface LoadResult {
  ok: boolean;
  file: string;
  loaded: string[];
  skipped: Array<{ id: string; reason: string }>;
  /** File problems (with JSON paths) and graph problems (missing dependencies, cycles). */
  problems: string[];
  /** Modules that could not be resolved (their services will fail when started). */
  unresolved: Array<{ id: string; module: string; reason: string }>;
  error?: string;
}

/**
 * Errors of graph.json: `problems` lists each with its JSON path.
 *
 *   catch (e) { if (e instanceof GraphFileError) console.error(e.message); } // names the file and position
 */
export class GraphFileError extends Error {
  readonly problems: string[];
  constructor(file: string, problems: string[]) {
    super(`${file} is invalid (${problems.length} problem${problems.length === 1 ? '' : 's'}): ${problems.join('; ')}`);
    this.name = 'GraphFileError';
    this.problems = problems;
  }
}

const EXTENSIONS = ['', '.js', '.cjs', '.mjs', '.json', '/index.js', '/index.cjs', '/index.mjs'];
const UNLOADABLE = ['.ts', '.mts', '.cts', '.tsx', '/index.ts'];

/**
 * Resolves a module path as written in graph.json: relative to `root`
 * (`./x`, `server/db`), then as a package from `root`.
 *
 *   resolveServiceModule('./services/db.js', process.cwd()); // an absolute path
 */
export function resolveServiceModule(spec: string, root: string): string {
  if (typeof spec !== 'string' || spec === '') throw new TypeError(`spec must be a non-empty module path, got ${typeof spec}`);
  if (typeof root !== 'string') throw new TypeError(`root must be a folder path, got ${typeof root}`);
  const local = path.resolve(root, spec);
  for (const ext of EXTENSIONS) {
    if (existsSync(local + ext) && !local.endsWith(path.sep) && (ext !== '' || !isDir(local))) return local + ext;
  }
  if (!spec.startsWith('.') && !path.isAbsolute(spec)) {
    try {
      return require.resolve(spec, { paths: [root] });
    } catch {
      /* reported below */
    }
  }
  for (const ext of UNLOADABLE) {
    if (existsSync(local + ext)) {
      throw new Error(`${spec} resolves to ${path.relative(root, local + ext)}, which Node cannot load without a TypeScript loader (compile it, or run under tsx)`);
    }
  }
  throw new Error(`Cannot find module ${spec} (looked in ${root} and its node_modules)`);
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

// A real dynamic import: TypeScript compiles `import()` to `require()` for
// CommonJS output, which cannot load ES modules.
// eslint-disable-next-line @typescript-eslint/no-implied-eval -- a constant body, no input reaches it
const importEsm = new Function('url', 'return import(url)') as (url: string) => Promise<any>;

/** Loads a CommonJS module with `require`, an ES module with `import()`. */
async function loadModule(file: string): Promise<any> {
  try {
    return require(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ERR_REQUIRE_ESM') throw e;
    return importEsm(pathToFileURL(file).href);
  }
}

async function loadExport(file: string, fn: string, spec: string): Promise<unknown> {
  const mod: any = await loadModule(file);
  const found = mod?.[fn] ?? mod?.default?.[fn];
  if (found === undefined) {
    const names = Object.keys(mod ?? {}).filter((k) => k !== 'default').slice(0, 10);
    throw new Error(`Function ${fn} not found in ${spec} (exports: ${names.join(', ') || 'none'})`);
  }
  return found;
}

/**
 * The original's special cases: health checks that live in this package.
 * The rejecting variants, so a failing check fails its service with the
 * reason (the original's resolved false, and said only "Health check failed").
 */
function builtinCheck(spec: string, fn: string): (() => Promise<boolean>) | null {
  if (spec.includes('startup-dag') && fn === 'checkDatabaseHealth') return assertDatabaseHealthy;
  if (spec.includes('startup-dag') && fn === 'alwaysHealthy') return alwaysHealthy;
  if (spec.includes('health-gates') && fn === 'checkDatabaseGate') return assertDatabaseHealthy;
  if (spec.includes('health-gates') && fn === 'checkDAGGate') return () => assertDAGReady();
  return null;
}

/**
 * Reads the graph, registers every service whose `conditional` variable is
 * exactly `'true'` (as the original), and checks the whole graph. Never
 * throws (as the original): problems are logged together and returned.
 *
 *   const { services } = await loadServicesFromGraph({ path: 'deploy/graph.json' });
 */
export async function loadServicesFromGraph(options: LoadOptions = {}): Promise<LoadResult> {
  const root = path.resolve(options.root ?? process.cwd());
  const file = path.resolve(root, options.path ?? path.join('deploy', 'graph.json'));
  const env = options.env ?? process.env;
  const dag = options.dag ?? getStartupDAG();
  const log = getLogger();
  const result: LoadResult = { ok: false, file, loaded: [], skipped: [], problems: [], unresolved: [] };
  try {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new Error(`Cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? reasonOf(e)}`);
    }
    const parsed = native.dagParseGraph(text);
    if (parsed.problems.length) {
      result.problems = parsed.problems;
      throw new GraphFileError(file, parsed.problems);
    }
    if (parsed.services.length === 0) log?.warn('⚠️  [DAGLoader] No services defined in graph.json');
    for (const s of parsed.services) {
      if (s.conditional && env[s.conditional] !== 'true') {
        const reason = `${s.conditional} is not 'true'`;
        dag.skip(s.id, reason);
        result.skipped.push({ id: s.id, reason });
        log?.log(`⏭️  [DAGLoader] Skipping ${s.id} (${reason})`);
        continue;
      }
      let init: (() => Promise<void>) | undefined;
      let healthCheck: (() => Promise<unknown>) | undefined = alwaysHealthy;
      if (s.initModule && s.initFunction) {
        init = makeInit(s.id, s.initModule, s.initFunction, root, result);
      }
      if (s.healthCheckModule && s.healthCheckFunction) {
        healthCheck = builtinCheck(s.healthCheckModule, s.healthCheckFunction) ?? makeCheck(s.id, s.healthCheckModule, s.healthCheckFunction, root, result);
      }
      dag.register({
        id: s.id,
        name: s.name,
        dependencies: s.dependencies,
        critical: s.critical,
        init,
        healthCheck,
        timeout: s.timeout ?? undefined,
        healthCheckTimeout: s.healthCheckTimeout ?? undefined,
      });
      result.loaded.push(s.id);
    }
    const graphProblems = dag.validate();
    if (graphProblems.length) {
      result.problems = graphProblems.map((p) => p.message);
      throw new Error(`${file}: ${result.problems.join('; ')}`);
    }
    for (const u of result.unresolved) log?.warn(`⚠️  [DAGLoader] ${u.id}: ${u.reason}`);
    result.ok = true;
    log?.log(`✅ [DAGLoader] Loaded ${result.loaded.length} services from graph.json (${result.skipped.length} skipped)`);
  } catch (e) {
    result.error = reasonOf(e);
    log?.warn(`⚠️  [DAGLoader] Could not load services from graph.json: ${result.error}`);
  }
  return result;
}

function resolveOrNote(id: string, spec: string, root: string, result: LoadResult): string | Error {
  try {
    return resolveServiceModule(spec, root);
  } catch (e) {
    result.unresolved.push({ id, module: spec, reason: reasonOf(e) });
    return e as Error;
  }
}

function makeInit(id: string, spec: string, fn: string, root: string, result: LoadResult): () => Promise<void> {
  const file = resolveOrNote(id, spec, root, result);
  return async () => {
    if (file instanceof Error) throw file;
    const found: any = await loadExport(file, fn, spec);
    if (typeof found === 'function') await found();
    else if (found && typeof found.init === 'function') await found.init();
    else throw new Error(`Invalid init function: ${fn}`);
  };
}

function makeCheck(id: string, spec: string, fn: string, root: string, result: LoadResult): () => Promise<unknown> {
  const file = resolveOrNote(id, spec, root, result);
  return async () => {
    if (file instanceof Error) throw file;
    const found: any = await loadExport(file, fn, spec);
    if (typeof found !== 'function') throw new Error(`${fn} in ${spec} is not a function`);
    return found();
  };
}

export interface GateInitOptions {
  gates?: HealthGates;
  /** The DAG the `startup-dag` gate watches (default: the process-wide one). */
  dag?: StartupDAG;
  /** Passes in a row for the two gates (default 3, as the original). */
  requiredConsecutivePasses?: number;
  checkIntervalMs?: number;
}

/**
 * As the original: registers the critical gates `database` and
 * `startup-dag` (3 passes) and starts the checks.
 *
 *   await initializeHealthGates();
 */
export async function initializeHealthGates(options: GateInitOptions = {}): Promise<void> {
  const gates = options.gates ?? getHealthGates();
  const common = {
    critical: true,
    requiredConsecutivePasses: options.requiredConsecutivePasses ?? 3,
    ...(options.checkIntervalMs !== undefined ? { checkIntervalMs: options.checkIntervalMs } : {}),
  };
  // The rejecting variants of checkDatabaseGate / checkDAGGate: the gates' reasons say why.
  gates.registerGate({ serviceId: 'database', name: 'Database', check: assertDatabaseHealthy, ...common });
  const dag = options.dag ?? getStartupDAG();
  gates.registerGate({ serviceId: 'startup-dag', name: 'Startup DAG', check: () => assertDAGReady(dag), ...common });
  gates.start();
}

export interface ReliabilityStep {
  step: string;
  ok: boolean;
  ms: number;
  detail?: string;
  error?: string;
}

export interface ReliabilitySystemReport {
  ok: boolean;
  steps: ReliabilityStep[];
  startup?: StartupReport;
}

export interface ReliabilitySystemOptions extends LoadOptions, GateInitOptions {
  /**
   * Runs first. Default: `runMigrations()` when migrations are registered
   * (`registerMigration`), as the original ran its migrations here; `false` skips it.
   */
  migrate?: (() => unknown) | false;
  /**
   * The original's second step: rows in `queue_registry` for these queues
   * (default: the original's four Spine queues), when a database is
   * configured; `false` skips it.
   */
  queues?: readonly QueueDeclaration[] | false;
  concurrency?: number;
}

/**
 * As the original, in order: migrations → queues → graph → gates → DAG start. Never
 * throws: each step's failure is logged and reported, and the gates keep
 * saying why the process is not ready.
 *
 *   const report = await initializeReliabilitySystem({ path: 'deploy/graph.json' });
 */
export async function initializeReliabilitySystem(options: ReliabilitySystemOptions = {}): Promise<ReliabilitySystemReport> {
  const log = getLogger();
  const report: ReliabilitySystemReport = { ok: true, steps: [] };
  const step = async (name: string, fn: () => Promise<string | void>) => {
    const t0 = performance.now();
    try {
      const detail = await fn();
      report.steps.push({ step: name, ok: true, ms: performance.now() - t0, ...(detail ? { detail } : {}) });
    } catch (e) {
      report.ok = false;
      report.steps.push({ step: name, ok: false, ms: performance.now() - t0, error: reasonOf(e) });
      log?.error(`❌ [Reliability] ${name} failed: ${reasonOf(e)}`);
    }
  };
  log?.log('🛡️  [Reliability] Initializing reliability system...');
  const dag = options.dag ?? getStartupDAG();
  const migrate =
    options.migrate === false
      ? null
      : (options.migrate ??
        (getRegisteredMigrations().length > 0
          ? async () => {
              const r = await runMigrations();
              return `${r.applied.length} applied, ${r.alreadyApplied.length} already applied`;
            }
          : null));
  if (migrate) await step('migrations', async () => ((await migrate()) as string | void) ?? undefined);
  // Without a database the original never got here (its migrations threw first): skipped.
  if (options.queues !== false && canInitializeQueues()) {
    await step('queues', async () => {
      const r = await initializeAllQueues(options.queues || DEFAULT_QUEUES);
      return `${r.created.length} created, ${r.existing.length} already there`;
    });
  }
  await step('graph', async () => {
    const r = await loadServicesFromGraph(options);
    if (!r.ok) throw new Error(r.error ?? 'graph not loaded');
    return `${r.loaded.length} services, ${r.skipped.length} skipped`;
  });
  await step('health-gates', () => initializeHealthGates(options));
  if (dag.getStatus().total > 0 && dag.validate().length === 0) {
    await step('startup', async () => {
      report.startup = await dag.initialize({ concurrency: options.concurrency });
      return report.startup.outcome;
    });
  }
  if (!report.startup) report.startup = dag.getStartupReport();
  if (report.ok) log?.log('✅ [Reliability] Reliability system initialized');
  else log?.error('❌ [Reliability] Failed to initialize reliability system (degraded mode); /health/ready says why');
  return report;
}

/**
 * What the original server did: `initializeReliabilitySystem()` only when
 * `USE_RELIABILITY_SYSTEM` is exactly `'true'`. Returns null otherwise.
 *
 *   await initializeReliabilitySystemFromEnv(); // null unless USE_RELIABILITY_SYSTEM is set
 */
export function initializeReliabilitySystemFromEnv(options: ReliabilitySystemOptions = {}): Promise<ReliabilitySystemReport> | null {
  const env = options.env ?? process.env;
  return env.USE_RELIABILITY_SYSTEM === 'true' ? initializeReliabilitySystem(options) : null;
}
