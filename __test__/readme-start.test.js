// @ts-check
'use strict';
// The README's start snippet, run as written (from inside the package, so
// its `require('@dreamnet/reliability-core/...')` resolve by self-reference):
// the order it shows must serve, label by template and keep the operator in.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const { spawn } = require('node:child_process');

const root = path.join(__dirname, '..');

function snippet() {
  const md = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const at = md.indexOf('## Start');
  assert.ok(at >= 0, 'README has a Start section');
  const m = /```js\n([\s\S]*?)```/.exec(md.slice(at));
  assert.ok(m, 'the Start section has a js block');
  return m[1];
}

test('the README start snippet serves, labels by template and never locks the operator out', async () => {
  // Inside the package (self-reference), in a folder of its own (the ops state file goes there).
  fs.mkdirSync(path.join(root, '.tmp'), { recursive: true });
  const dir = fs.mkdtempSync(path.join(root, '.tmp', 'readme-start-'));
  const file = path.join(dir, 'server.js');
  fs.writeFileSync(file, snippet());
  const token = crypto.randomBytes(32).toString('hex');
  const child = spawn(process.execPath, [file], { cwd: dir, env: { ...process.env, PORT: '0', OPS_TOKEN: token }, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const port = await new Promise((resolve, reject) => {
      let out = '';
      const t = setTimeout(() => reject(new Error(`no port: ${out}`)), 15_000);
      child.stdout.on('data', (d) => {
        out += d;
        const m = /listening on (\d+)/.exec(out);
        if (m) { clearTimeout(t); resolve(Number(m[1])); }
      });
      child.stderr.on('data', (d) => (out += d));
      child.once('exit', (c) => reject(new Error(`exited ${c}: ${out}`)));
    });
    const base = `http://127.0.0.1:${port}`;
    assert.equal((await fetch(`${base}/health/live`)).status, 200);
    assert.equal((await fetch(`${base}/api/orders/7`)).status, 200);
    assert.equal((await fetch(`${base}/nope`)).status, 404);
    const text = await (await fetch(`${base}/metrics`)).text();
    assert.match(text, /http_requests_total\{method="GET",route="\/api\/orders\/:id",status_class="2xx"\} 1/);
    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const on = await fetch(`${base}/api/ops/brownout`, { method: 'POST', headers: auth, body: JSON.stringify({ enabled: true, level: 0, reason: 'readme test' }) });
    assert.equal(on.status, 200, await on.text());
    assert.equal((await fetch(`${base}/api/ops/status`, { headers: auth })).status, 200);
    const off = await fetch(`${base}/api/ops/brownout`, { method: 'POST', headers: auth, body: JSON.stringify({ enabled: false }) });
    assert.equal(off.status, 200, await off.text());
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
