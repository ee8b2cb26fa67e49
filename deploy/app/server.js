'use strict';
/**
 * The service the deploy kit ships (deploy/Dockerfile): an Express 5 app that
 * uses @dreamnet/reliability-core as an installed dependency. It listens on
 * 0.0.0.0:$PORT (App Runner and Docker route to the container's interface),
 * serves the probes (/health/live, /health/ready), /metrics, the observability
 * API and dashboard, the token-guarded ops API, and drains on SIGTERM.
 *
 *   PORT=8080 RELIABILITY_OPS_TOKEN=$(openssl rand -hex 32) node server.js
 *
 * Static assets are not served here: they live in S3 behind CloudFront
 * (deploy/cloudformation.yaml), so the container only answers API traffic.
 */
const express = require('express');
const { metricsMiddleware, createMetricsRouter } = require('@dreamnet/reliability-core/metrics');
const { initializeReliabilitySystemFromEnv } = require('@dreamnet/reliability-core/dag-loader');
const { createHealthRouter, createGracefulShutdown } = require('@dreamnet/reliability-core/health-gates');
const { observabilityRouter } = require('@dreamnet/reliability-core/observability');
const { createOpsRouter, reliabilityMiddleware } = require('@dreamnet/reliability-core/ops');
const { withCircuitBreaker } = require('@dreamnet/reliability-core/circuit-breaker');

const port = process.env.PORT === undefined || process.env.PORT === '' ? 8080 : Number(process.env.PORT);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`invalid PORT ${JSON.stringify(process.env.PORT)}: an integer in 0..65535`);
  process.exit(2);
}

const app = express();
app.disable('x-powered-by');
app.use(metricsMiddleware);
app.use(createMetricsRouter());
app.use(createHealthRouter());
app.use('/api/observability', observabilityRouter);
app.use('/api/ops', createOpsRouter());
app.use(reliabilityMiddleware());
app.get('/api/hello', async (req, res) => {
  const body = await withCircuitBreaker('hello', async () => ({ hello: 'world' }));
  res.json(body);
});

const server = app.listen(port, '0.0.0.0', () => {
  console.log(`listening on 0.0.0.0:${server.address().port}`);
});
createGracefulShutdown(server, {
  shutdownDelayMs: Number(process.env.SHUTDOWN_DELAY_MS ?? 10_000),
  drainTimeoutMs: 15_000,
});
initializeReliabilitySystemFromEnv();
