// Each rule exists once, in the Rust core: no TypeScript file in lib/ may
// re-declare a protocol code or threshold the binding exports. The binding
// is the list of what counts: its numeric enums (admission, transition,
// decision codes...) and its numeric constants (shifts, masks, defaults,
// thresholds). The scan looks for what a hand copy looks like:
//   1. `const NAME = <number>` whose NAME ends with an exported enum member's
//      or constant's name, or (8 letters or more) ends the constant's name,
//      and whose value is that member's value (`const REJECT_OPEN = 2` for
//      BreakerAdmission.RejectOpen, `const MAX_RETRIES = 100` for RETRY_MAX_RETRIES);
//   2. an object literal whose keys and numbers mirror two or more members of
//      one exported enum (`{ critical: 0, default: 1, sheddable: 2 }`);
//   3. `x ?? <number>` where x names an exported DEFAULT constant with that
//      value (`cfg.minSamples ?? 11` for ROLLOUT_DEFAULT_MIN_SAMPLES);
//   4. a status compared with the exported error threshold
//      (`s < 400` for ERROR_STATUS_FROM).
// ONE_RULE_LIB points the scan at another tree (to see it fail on old code).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const binding = require('../index.js');
const LIB = process.env.ONE_RULE_LIB || path.join(__dirname, '..', 'lib');

const norm = (s) => s.replace(/[^A-Za-z0-9]/g, '').toUpperCase();
const num = (s) => Number(s.replace(/_/g, ''));

function exported() {
  const enums = [];
  const consts = [];
  for (const [name, v] of Object.entries(binding)) {
    if (typeof v === 'number') consts.push({ name, value: v });
    else if (v && typeof v === 'object' && !Array.isArray(v)) {
      const members = Object.entries(v).filter(([k, x]) => typeof x === 'number' && !/^-?\d+$/.test(k));
      if (members.length >= 2 && members.length === Object.keys(v).filter((k) => !/^-?\d+$/.test(k)).length) {
        enums.push({ name, members: members.map(([k, x]) => ({ name: k, value: x })) });
      }
    }
  }
  return { enums, consts };
}

function tsFiles(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...tsFiles(p));
    else if (/\.ts$/.test(e.name) && !/\.d\.ts$/.test(e.name)) out.push(p);
  }
  return out;
}

// Comments say what codes mean; only code counts.
const stripComments = (src) => src.replace(/\/\*[\s\S]*?\*\//g, (m) => m.replace(/[^\n]/g, ' ')).replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');

function scan(root) {
  const { enums, consts } = exported();
  const found = [];
  for (const file of tsFiles(root)) {
    const src = stripComments(fs.readFileSync(file, 'utf8'));
    const rel = path.relative(root, file);
    const where = (i) => `${rel}:${src.slice(0, i).split('\n').length}`;
    // 1. named numeric declarations
    for (const m of src.matchAll(/\b(?:const|let|var)\s+([A-Za-z_$][\w$]*)\s*(?::\s*[\w.]+\s*)?=\s*(-?\d[\d_]*(?:\.\d+)?)\s*[;,\n]/g)) {
      const [, name, raw] = m;
      const n = norm(name);
      const v = num(raw);
      // Every exported name this declaration could copy; the longest match names it.
      const candidates = [
        ...enums.flatMap((e) => e.members.map((mem) => ({ key: norm(mem.name), full: norm(e.name) + norm(mem.name), value: mem.value, label: `${e.name}.${mem.name}` }))),
        ...consts.map((c) => ({ key: norm(c.name), full: norm(c.name), value: c.value, label: c.name })),
      ].filter((c) => c.value === v && c.key.length >= 4 && (n === c.full || n.endsWith(c.key) || (n.length >= 8 && c.full.endsWith(n))));
      candidates.sort((a, b) => b.key.length - a.key.length);
      if (candidates.length) found.push(`${where(m.index)}: ${name} = ${raw} copies ${candidates[0].label}`);
    }
    // 2. object literals mirroring an enum
    for (const m of src.matchAll(/\{([^{}]*)\}/g)) {
      const pairs = [...m[1].matchAll(/(?:^|,)\s*['"]?([A-Za-z_$][\w$-]*)['"]?\s*:\s*(-?\d[\d_]*)\s*(?=,|$)/g)].map((p) => [norm(p[1]), num(p[2])]);
      if (pairs.length < 2) continue;
      for (const e of enums) {
        const hits = pairs.filter(([k, v]) => e.members.some((mem) => norm(mem.name) === k && mem.value === v));
        if (hits.length >= 2) found.push(`${where(m.index)}: an object literal mirrors ${e.name} (${hits.map(([k]) => k.toLowerCase()).join(', ')})`);
      }
    }
    // 3. defaults written again
    for (const c of consts.filter((c) => /DEFAULT/.test(c.name))) {
      const rest = norm(c.name).replace(/DEFAULT/g, '');
      for (const m of src.matchAll(/([A-Za-z_$][\w$]*)\s*\?\?\s*(-?\d[\d_]*)\b/g)) {
        if (num(m[2]) === c.value && rest.endsWith(norm(m[1]))) found.push(`${where(m.index)}: ${m[1]} ?? ${m[2]} copies ${c.name}`);
      }
    }
    // 4. the error threshold
    if (typeof binding.ERROR_STATUS_FROM === 'number') {
      const re = new RegExp(`\\b(?:status\\w*|statusCode|s|code)\\s*[<>]=?\\s*${binding.ERROR_STATUS_FROM}\\b`, 'g');
      for (const m of src.matchAll(re)) found.push(`${where(m.index)}: '${m[0]}' copies ERROR_STATUS_FROM`);
    }
  }
  return found;
}

test('the binding exports the protocol codes and thresholds (index.d.ts carries them)', () => {
  const { enums, consts } = exported();
  const names = enums.map((e) => e.name);
  for (const n of ['BreakerAdmission', 'BreakerTransition', 'BreakerOutcome', 'BreakerGate', 'BreakerControl', 'OpsDecision', 'OpsCriticality', 'GateTransition', 'RolloutOutcomeFlag', 'QuorumAction', 'OpsFlag']) {
    assert.ok(names.includes(n), `${n} is exported`);
  }
  for (const n of ['BREAKER_TRANSITION_SHIFT', 'BREAKER_ADMISSION_MASK', 'ERROR_STATUS_FROM', 'ROLLOUT_DEFAULT_MIN_SAMPLES', 'RETRY_MAX_RETRIES']) {
    assert.ok(consts.some((c) => c.name === n), `${n} is exported`);
  }
  const dts = fs.readFileSync(path.join(__dirname, '..', 'index.d.ts'), 'utf8');
  for (const n of names) assert.match(dts, new RegExp(`export declare const enum ${n}\\b`));
  // The decision codes are the refusal codes metrics count refused requests under.
  const r = binding.metricsRefusalCodes();
  assert.deepEqual([r.safeMode, r.brownout, r.quarantine], [binding.OpsDecision.SafeMode, binding.OpsDecision.Shed, binding.OpsDecision.Quarantined]);
});

test('the scan recognises a hand copy (so it can fail)', () => {
  const dir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'one-rule-'));
  try {
    fs.writeFileSync(
      path.join(dir, 'copy.ts'),
      [
        'const REJECT_OPEN = 2;',
        'const CRIT = { critical: 0, default: 1, sheddable: 2 };',
        'const n = cfg?.minSamples ?? 11;',
        'const ok = (s: number) => s < 400;',
        '// const OPENED = 1; in a comment is fine',
        'const FLUSH_MS = 250;',
        'const MAX_RETRIES = 100;',
        'register(name, queue.ratePerSecond ?? 100);',
      ].join('\n'),
    );
    const found = scan(dir);
    assert.equal(found.length, 6, found.join('\n'));
    assert.match(found.join('\n'), /ratePerSecond \?\? 100 copies DLQ_DEFAULT_RATE_PER_SECOND/);
    assert.match(found.join('\n'), /MAX_RETRIES = 100 copies RETRY_MAX_RETRIES/);
    assert.match(found.join('\n'), /REJECT_OPEN = 2 copies BreakerAdmission\.RejectOpen/);
    assert.match(found.join('\n'), /mirrors OpsCriticality/);
    assert.match(found.join('\n'), /minSamples \?\? 11 copies ROLLOUT_DEFAULT_MIN_SAMPLES/);
    assert.match(found.join('\n'), /copies ERROR_STATUS_FROM/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('no file in lib/ re-declares a code or threshold the binding exports', () => {
  const found = scan(LIB);
  assert.deepEqual(found, [], `import these from the binding instead:\n${found.join('\n')}`);
});

test('retry() and a breaker\'s retryOptions share one retry rule (core::backoff)', () => {
  const rc = require('..');
  const max = binding.RETRY_MAX_RETRIES;
  assert.equal(rc.retry({ maxRetries: max }).maxRetries, max);
  const b = new rc.CircuitBreaker(`one-rule-retry-${process.pid}`, { retryOptions: { maxRetries: max } });
  assert.equal(b.snapshot().options.maxRetries, max);
  const range = `an integer from 0 to ${max}, got ${max + 1}`;
  assert.throws(() => rc.retry({ maxRetries: max + 1 }), { name: 'RangeError', message: `maxRetries must be ${range}` });
  assert.throws(() => new rc.CircuitBreaker('one-rule-retry-bad', { retryOptions: { maxRetries: max + 1 } }), {
    name: 'RangeError',
    message: `retryOptions.maxRetries must be ${range}`,
  });
  // The same delay and factor limits, each error naming the field as the caller wrote it.
  assert.throws(() => rc.retry({ factor: 11 }), { name: 'RangeError', message: 'factor must be a number from 1 to 10, got 11' });
  assert.throws(() => new rc.CircuitBreaker('one-rule-retry-f', { retryOptions: { factor: 11 } }), { name: 'RangeError', message: 'retryOptions.factor must be a number from 1 to 10, got 11' });
  assert.throws(() => rc.retry({ baseDelay: 10, maxDelay: 5 }), { name: 'RangeError', message: 'maxDelay must be a number >= baseDelay (10), got 5' });
  assert.throws(() => rc.retry({ maxRetries: '3' }), { name: 'TypeError', message: /^maxRetries must be an integer from 0 to 100, got a string/ });
});
