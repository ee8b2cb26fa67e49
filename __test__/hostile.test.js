'use strict';
// A hostile caller: every exported function (and the main methods of the
// singletons) called with wrong types, undefined, huge strings, NaN/Infinity
// and objects with `__proto__` keys. Allowed outcomes: a value, or a thrown
// (or rejected) TypeError / RangeError. Never a crash, a napi conversion
// message, or a changed Object.prototype.
const { test } = require('node:test');
const assert = require('node:assert/strict');

const pkg = require('../dist/index.js');
pkg.configureCircuitBreakers({ logger: null });
pkg.configureStartupLogging({ logger: null });

const HUGE = 'x'.repeat(1 << 20);
const polluted = JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}}');
const VALUES = [undefined, null, NaN, Infinity, -1, 1e308, '', HUGE, {}, [], polluted, () => {}, Symbol('s'), 10n];

// Functions that would act on the process (signals, servers, timers) or whose
// job is to accept anything (loggers, handlers); the rest get the full treatment.
const SKIP = new Set([
  'createGracefulShutdown', // registers signal handlers: tested on its own
  'initializeReliabilitySystem', 'initializeReliabilitySystemFromEnv', 'loadServicesFromGraph', 'initializeHealthGates', // never throw by contract
  'metricsMiddleware', 'trafficShapingMiddleware', 'observabilityRouter', 'dashboardRouter', 'prometheusHandler', 'goldenSignalsHandler', 'liveHandler', 'rolloutsHandler', 'watchdogsHandler',
  'OpsDashboard', // a React component
  'runMigrations', 'rollbackMigration', 'rollbackLastMigration', 'getMigrationStatus', // need a database; covered by their tests
  'configureOps', // replaces the process-wide ops plane (file watch)
  'main',
]);

/** Conditions that are not about the arguments: a named state (no database configured) or a thing not found. */
const STATE_ERRORS = /^(Cannot find module|Database not available|.* not found: )/;

function isAllowed(e) {
  if (!(e instanceof Error) || /Failed to convert|napi/i.test(e.message)) return false;
  return e instanceof TypeError || e instanceof RangeError || STATE_ERRORS.test(e.message);
}

async function call(fn, args) {
  try {
    const r = fn(...args);
    if (r && typeof r.then === 'function') await r;
    return null;
  } catch (e) {
    return isAllowed(e) ? null : e;
  }
}

test('every exported function survives hostile arguments with TypeError/RangeError only', { timeout: 120_000 }, async () => {
  const problems = [];
  const names = Object.keys(pkg).filter((k) => typeof pkg[k] === 'function' && !SKIP.has(k) && !/^[A-Z]/.test(k));
  assert.ok(names.length > 40, `${names.length} functions exported`);
  for (const name of names) {
    for (const v of VALUES) {
      for (const args of [[v], [v, v], ['ok-name', v], ['ok-name', v, v]]) {
        const e = await call(pkg[name], args);
        if (e) problems.push(`${name}(${args.map((a) => (typeof a === 'string' && a.length > 20 ? `<${a.length} chars>` : String(typeof a === 'symbol' ? 'Symbol' : typeof a === 'bigint' ? '10n' : typeof a === 'function' ? 'fn' : JSON.stringify(a) ?? a))).join(', ')}): ${e.constructor.name}: ${String(e.message).slice(0, 120)}`);
      }
    }
  }
  assert.equal(Object.prototype.polluted, undefined, 'Object.prototype unchanged');
  assert.equal({}.polluted, undefined);
  // Report every problem at once.
  const byFn = [...new Set(problems.map((p) => p.split("(")[0]))];
  assert.deepEqual(byFn, [], problems.filter((p, i) => problems.findIndex((q) => q.split("(")[0] === p.split("(")[0]) === i).join("\n"));
});

test('the classes users create: every method survives hostile arguments', { timeout: 120_000 }, async () => {
  // Private members (per the published .d.ts files) are not API.
  const dts = require('node:fs').readdirSync(require('node:path').join(__dirname, '..', 'dist')).filter((f) => f.endsWith('.d.ts'));
  const privates = dts.flatMap((f) => [...require('node:fs').readFileSync(require('node:path').join(__dirname, '..', 'dist', f), 'utf8').matchAll(/private (?:readonly )?(\w+)/g)].map((m) => m[1]));
  const skipMethods = new Set(['constructor', 'initialize', 'start', 'close', 'reset', 'emit', 'drainDeadLetterQueue', 'save', 'loadFile', ...privates]);
  const instances = {
    TrafficShaping: new pkg.TrafficShaping(),
    HealthGates: new pkg.HealthGates(),
    StartupDAG: new pkg.StartupDAG(),
    Watchdogs: new pkg.Watchdogs(),
    OpsControls: new pkg.OpsControls({ stateFile: false, logger: null }),
  };
  instances.TrafficShaping.startRollout('ok-name', { percentage: 50 });
  const problems = [];
  for (const [cls, obj] of Object.entries(instances)) {
    const methods = Object.getOwnPropertyNames(Object.getPrototypeOf(obj)).filter((m) => !skipMethods.has(m) && !m.startsWith('_') && typeof obj[m] === 'function');
    for (const m of methods) {
      for (const v of VALUES) {
        for (const args of [[v], ['ok-name', v], [v, v, v]]) {
          const e = await call(obj[m].bind(obj), args);
          if (e) problems.push(`${cls}.${m}: ${e.constructor.name}: ${String(e.message).slice(0, 100)}`);
        }
      }
    }
  }
  instances.Watchdogs.close();
  instances.HealthGates.reset();
  assert.equal(Object.prototype.polluted, undefined);
  assert.deepEqual([...new Set(problems)], []);
});
