// The breaker binding's class (src/breaker_napi.rs, BreakerTable): one JS
// table owns its buffers in Rust; when the table is collected, Drop detaches
// them (what its ring still held is applied first, never lost) and its slot is reused,
// so a thread that loads the JS module again and again (jest, vitest) does
// not keep every copy's buffers forever. Run in a child with --expose-gc.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');

test('a collected BreakerTable is detached: its ring is applied, its slot reused', () => {
  const script = `
    const assert = require('node:assert/strict');
    const n = require(${JSON.stringify(path.join(ROOT, 'index.js'))});
    const l = n.BreakerTable.layout();
    const make = () => new n.BreakerTable(new Float64Array(l.ioLen), new Float64Array(1 + 3 * l.ringCap), 0, 1);
    const keep = make();
    keep.attachPage(new Float64Array(l.page * l.stride));
    const id = keep.create('table-drop', {}, 0);
    let firstFree;
    (function () {
      const t = make();
      firstFree = t.inst;
      const ring = new Float64Array(1 + 3 * l.ringCap);
      // A second table with one batched success of 'table-drop', never drained by itself.
      const u = new n.BreakerTable(new Float64Array(l.ioLen), ring, 0, 1);
      ring.set([1, id, 5, 1]);
      for (let i = 0; i < 50; i++) make();
      u.inst;
    })();
    (async () => {
      for (let i = 0; i < 10; i++) { global.gc(); await new Promise((r) => setImmediate(r)); }
      // Not lost with its table: applied by a drain (every crossing drains every attached ring) or when detached.
      assert.equal(keep.snapshot(id, 10).totals.successes, 1);
      assert.equal(make().inst, firstFree, 'the first freed slot is reused');
      assert.throws(() => n.cbDrain(9999), /instance/);
      console.log('ok');
    })().catch((e) => { console.error(e); process.exit(1); });
  `;
  const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'ok');
});
