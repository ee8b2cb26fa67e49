'use strict';
// The React component, rendered with react-test-renderer against a real
// observability router on 127.0.0.1.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const express = require('express');
const React = require('react');
const { act, create } = require('react-test-renderer');

const { OpsDashboard } = require('../dist/react.js');
const { createObservabilityRouter } = require('../dist/observability.js');
const { getCircuitBreakerRegistry, configureCircuitBreakers } = require('../dist/circuit-breaker.js');

test('OpsDashboard renders the live summary and says when it goes stale', { timeout: 20_000 }, async () => {
  globalThis.IS_REACT_ACT_ENVIRONMENT = true;
  configureCircuitBreakers({ logger: null });
  getCircuitBreakerRegistry().get('react-test-breaker');
  const app = express();
  app.use('/api/observability', createObservabilityRouter());
  const server = await new Promise((r) => {
    const s = app.listen(0, '127.0.0.1', () => r(s));
  });
  const base = `http://127.0.0.1:${server.address().port}/api/observability`;
  let root;
  try {
    await act(async () => {
      root = create(React.createElement(OpsDashboard, { apiBase: base, pollMs: 200 }));
    });
    assert.match(JSON.stringify(root.toJSON()), /Loading ops dashboard/);
    for (let i = 0; i < 50 && !/Circuit breakers/.test(JSON.stringify(root.toJSON())); i++) {
      await act(() => new Promise((r) => setTimeout(r, 50)));
    }
    const out = JSON.stringify(root.toJSON());
    assert.match(out, /Circuit breakers/);
    assert.match(out, /react-test-breaker/);
    assert.match(out, /req\/s/);
    await new Promise((r) => server.close(r));
    for (let i = 0; i < 50 && !/Stale/.test(JSON.stringify(root.toJSON())); i++) {
      await act(() => new Promise((r) => setTimeout(r, 50)));
    }
    assert.match(JSON.stringify(root.toJSON()), /Stale/);
  } finally {
    await act(async () => root?.unmount());
    server.close();
  }
});
