'use strict';
// The ops dashboard in a real headless Chromium (Debian's chromium, driven by
// playwright-core; `npm test` installs chromium when it is missing), against
// the demo server on 127.0.0.1.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const express = require('express');
const { chromium } = require('playwright-core');
const { start } = require('../demo/server.js');

const TOKEN = require('node:crypto').randomBytes(32).toString('hex');
const READ_TOKEN = require('node:crypto').randomBytes(32).toString('hex');
const POLL = 300;
const ARTIFACTS = path.join(__dirname, 'artifacts');
const STATE = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'dash-')), 'ops.json');
let browser;
let demo;
let port;

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

before(async () => {
  port = await freePort();
  demo = await start(port, { opsToken: TOKEN, stateFile: STATE, log: () => {} });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
});

after(async () => {
  await browser?.close();
  await demo?.close();
});

async function openPage(url) {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1300 } });
  const errors = [];
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('dialog', (d) => d.accept());
  await page.goto(url);
  return { page, errors };
}

const text = (page, sel) => page.textContent(sel);

test('loads fast with no console errors, and its numbers follow the traffic', { timeout: 60_000 }, async () => {
  const t0 = Date.now();
  const { page, errors } = await openPage(`${demo.url}/api/observability/dashboard/?interval=${POLL}`);
  await page.waitForSelector('#status:not(.stale)');
  await page.waitForFunction(() => document.querySelector('#card-traffic [data-sub]').textContent.includes('total'));
  assert.ok(Date.now() - t0 < 5000, 'first data within seconds (page load itself is far under a second)');
  const before = await text(page, '#card-traffic [data-sub]');
  for (let i = 0; i < 25; i++) await (await fetch(`${demo.url}/api/orders/o-${i % 5}`)).arrayBuffer();
  await page.waitForFunction((b) => document.querySelector('#card-traffic [data-sub]').textContent !== b, before, { timeout: 5000 });
  const after = await text(page, '#card-traffic [data-sub]');
  assert.notEqual(after, before);
  assert.match(after, /\d+ total/);
  assert.match(await text(page, '#breakers'), /orders-api\s*closed/);
  assert.match(await text(page, '#gates'), /Startup DAG/);
  assert.deepEqual(errors, []);
  await page.close();
});

test('a breaker turns open on the page within one poll of its dependency failing', { timeout: 60_000 }, async () => {
  const { page, errors } = await openPage(`${demo.url}/api/observability/dashboard/?interval=${POLL}`);
  await page.waitForSelector('#breakers tr');
  await fetch(`${demo.url}/demo/downstream`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ failureRate: 1, latencyMs: 1 }) });
  for (let i = 0; i < 10; i++) {
    await (await fetch(`${demo.url}/api/orders/x-${i}`)).arrayBuffer();
    const b = await (await fetch(`${demo.url}/api/breakers`)).json();
    if (b.find((x) => x.name === 'orders-api').state === 'open') break;
  }
  const openedAt = Date.now();
  await page.waitForFunction(() => /orders-api\s*open/.test(document.querySelector('#breakers').textContent), null, { timeout: 2 * POLL + 1500 });
  assert.ok(Date.now() - openedAt <= 2 * POLL + 1500, 'within one poll (plus the request)');
  await page.waitForFunction(() => /not ready/.test(document.querySelector('#ready').textContent));
  await fetch(`${demo.url}/demo/downstream`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ failureRate: 0 }) });
  await fetch(`${demo.url}/api/breakers/orders-api/reset`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
  assert.deepEqual(errors, []);
  await page.close();
});

test('a rollback is marked in the history; actions need the ops token and a confirmation', { timeout: 60_000 }, async () => {
  const { page, errors } = await openPage(`${demo.url}/api/observability/dashboard/?interval=${POLL}`);
  await page.waitForSelector('#rolloutSelect option', { state: 'attached' });
  // Without the token nothing is sent.
  await page.click('[data-action="safe-on"]');
  assert.match(await text(page, '#actionResult'), /enter the ops token first/);
  await page.fill('#opsToken', TOKEN);
  await page.dispatchEvent('#opsToken', 'change');
  await page.selectOption('#rolloutSelect', 'recommendations-v2');
  await page.click('[data-action="rollback"]');
  await page.waitForFunction(() => /ROLLBACK/.test(document.querySelector('#history').textContent));
  assert.match(await page.getAttribute('#history li.rollback', 'class'), /rollback/);
  await page.waitForFunction(() => /rollback by dashboard/.test(document.querySelector('#audit').textContent));
  await page.click('[data-action="safe-on"]');
  await page.waitForFunction(() => /Safe mode: ON/.test(document.querySelector('#ops').textContent));
  await page.click('[data-action="safe-off"]');
  await page.waitForFunction(() => /Safe mode: off/.test(document.querySelector('#ops').textContent));
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard.png'), fullPage: true });
  assert.ok(fs.statSync(path.join(ARTIFACTS, 'dashboard.png')).size > 10_000, 'a screenshot was kept');
  assert.ok(!(await page.evaluate(() => JSON.stringify(localStorage) + JSON.stringify(sessionStorage) + location.href)).includes(TOKEN), 'the token stays in memory');
  assert.deepEqual(errors, []);
  await page.close();
});

test('goes stale when the server stops answering and recovers by itself', { timeout: 60_000 }, async () => {
  const { page } = await openPage(`${demo.url}/api/observability/dashboard/?interval=${POLL}`);
  await page.waitForSelector('#status:not(.stale)');
  await demo.close();
  await page.waitForFunction(() => /STALE/.test(document.querySelector('#status').textContent), null, { timeout: 5000 });
  demo = await start(port, { opsToken: TOKEN, stateFile: STATE, log: () => {} });
  await page.waitForFunction(() => /updated/.test(document.querySelector('#status').textContent), null, { timeout: 5000 });
  await page.close();
});

test('behind a read token: the page asks for it and then shows the data', { timeout: 60_000 }, async () => {
  const { createObservabilityRouter } = require('../dist/observability.js');
  const app = express();
  app.use('/api/observability', createObservabilityRouter({ readToken: READ_TOKEN, dashboard: { pollMs: POLL } }));
  const server = await new Promise((r) => {
    const s = app.listen(0, '127.0.0.1', () => r(s));
  });
  try {
    const { page, errors } = await openPage(`http://127.0.0.1:${server.address().port}/api/observability/dashboard`);
    await page.waitForFunction(() => /STALE: a read token is needed/.test(document.querySelector('#status').textContent));
    assert.equal(await page.isVisible('#readToken'), true);
    await page.fill('#readToken', READ_TOKEN);
    await page.dispatchEvent('#readToken', 'change');
    await page.waitForFunction(() => /updated/.test(document.querySelector('#status').textContent));
    assert.match(await text(page, '#card-latency'), /ms/);
    // The only console errors allowed are the 401s before the token was entered.
    assert.ok(errors.every((e) => /401/.test(e)), errors.join('\n'));
    await page.close();
  } finally {
    await new Promise((r) => server.close(r));
  }
});
