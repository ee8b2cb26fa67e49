'use strict';
/**
 * The deploy kit and the release workflow, checked as far as this machine
 * can (no Docker engine, no AWS account):
 * - .github/workflows/*.yml pass actionlint;
 * - deploy/cloudformation.yaml passes cfn-lint, checks /health/ready over
 *   HTTP, takes every variable of docs/ENVIRONMENT_MANIFEST.md the service
 *   reads, and the ops token only as a Secrets Manager ARN;
 * - deploy/Dockerfile: every COPY source exists, every --from names an
 *   earlier stage, the runtime runs as a non-root user and its HEALTHCHECK
 *   asks /health/live, which deploy/app/server.js (started here on the
 *   repo's build) answers 200.
 * actionlint and cfn-lint come from scripts/ensure-build-tools.sh (npm test
 * runs it); a test is skipped only if its tool is not installed.
 */
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const PKG = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const userBase = spawnSync('python3', ['-m', 'site', '--user-base'], { encoding: 'utf8' }).stdout?.trim() || path.join(os.homedir(), '.local');
const PATH = [path.join(userBase, 'bin'), process.env.PATH].join(path.delimiter);
const env = { ...process.env, PATH };
const has = (cmd) => spawnSync(cmd, ['--version'], { env }).status === 0;

test('the release workflow passes actionlint', { skip: has('actionlint') ? false : 'actionlint not installed' }, () => {
  const dir = path.join(ROOT, '.github', 'workflows');
  const files = fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).map((f) => path.join(dir, f));
  assert.ok(files.some((f) => f.endsWith('release.yml')));
  const r = spawnSync('actionlint', ['-no-color', ...files], { env, encoding: 'utf8', cwd: ROOT, timeout: 120_000 });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const wf = fs.readFileSync(path.join(dir, 'release.yml'), 'utf8');
  // The matrix covers every configured napi target, on native runners.
  for (const t of PKG.napi.targets) assert.ok(wf.includes(`target: ${t}`), `release.yml builds ${t}`);
  for (const runner of ['ubuntu-24.04', 'ubuntu-24.04-arm', 'macos-15-intel', 'macos-15', 'windows-2022']) assert.ok(wf.includes(`runner: ${runner}`), runner);
  assert.ok(wf.indexOf('napi prepublish') < wf.indexOf('npm publish --access public'), 'platform packages before the main package');
});

function template() {
  const r = spawnSync('python3', ['-c', 'import json,sys; from cfnlint.decode import cfn_yaml; print(json.dumps(cfn_yaml.load(sys.argv[1])))', path.join(ROOT, 'deploy', 'cloudformation.yaml')], { encoding: 'utf8', env });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

test('the CloudFormation template passes cfn-lint and wires App Runner, Secrets Manager, S3 and CloudFront', { skip: has('cfn-lint') ? false : 'cfn-lint not installed' }, () => {
  const r = spawnSync('cfn-lint', [path.join(ROOT, 'deploy', 'cloudformation.yaml')], { env, encoding: 'utf8', timeout: 180_000 });
  assert.equal(r.status, 0, r.stdout + r.stderr);

  const t = template();
  const types = Object.values(t.Resources).map((x) => x.Type);
  for (const type of ['AWS::AppRunner::Service', 'AWS::S3::Bucket', 'AWS::CloudFront::Distribution', 'AWS::S3::BucketPolicy', 'AWS::CloudFront::OriginAccessControl']) assert.ok(types.includes(type), type);
  const svc = Object.values(t.Resources).find((x) => x.Type === 'AWS::AppRunner::Service').Properties;
  assert.deepEqual({ Protocol: svc.HealthCheckConfiguration.Protocol, Path: svc.HealthCheckConfiguration.Path }, { Protocol: 'HTTP', Path: '/health/ready' });

  const image = svc.SourceConfiguration.ImageRepository.ImageConfiguration;
  const plain = image.RuntimeEnvironmentVariables.map((v) => v.Name);
  const unwrap = (x) => (x['Fn::If'] ? x['Fn::If'][1] : x);
  const secrets = image.RuntimeEnvironmentSecrets.map(unwrap);
  // The package's variables from the manifest that a running service reads
  // (RELIABILITY_OPS_URL is the CLI's; the test-mode switches are for test
  // runners, never a deployed service; graph conditionals are the app's own).
  const manifest = fs.readFileSync(path.join(ROOT, 'docs', 'ENVIRONMENT_MANIFEST.md'), 'utf8').split('## The demo server')[0];
  const notForService = new Set(['RELIABILITY_OPS_URL', 'RELIABILITY_TEST_MODE', 'RELIABILITY_AUTO_RESET']);
  const vars = [...manifest.matchAll(/^\| `([A-Z][A-Z0-9_]+)` \|/gm)].map((m) => m[1]).filter((v) => !notForService.has(v));
  assert.ok(vars.length >= 7, `manifest lists ${vars}`);
  for (const v of vars) assert.ok(plain.includes(v) || secrets.some((s) => s.Name === v), `${v} is passed to the service`);

  // Tokens and the database URL only from Secrets Manager: never a plain value or a parameter default.
  for (const v of ['RELIABILITY_OPS_TOKEN', 'RELIABILITY_READ_TOKEN', 'DATABASE_URL']) {
    assert.ok(!plain.includes(v), `${v} is not a plain environment variable`);
    const s = secrets.find((x) => x.Name === v);
    assert.ok(s, `${v} comes from a secret`);
    const param = t.Parameters[s.Value.Ref];
    assert.match(param.AllowedPattern, /secretsmanager/, `${s.Value.Ref} takes a Secrets Manager ARN`);
  }
  assert.ok(secrets[0].Name === 'RELIABILITY_OPS_TOKEN' && !image.RuntimeEnvironmentSecrets[0]['Fn::If'], 'the ops token is always required');
  assert.equal(t.Parameters.OpsTokenSecretArn.Default, undefined, 'no default for the ops token secret');
  for (const [name, p] of Object.entries(t.Parameters)) assert.ok(!/token$/i.test(name), `${name}: no parameter holds a token itself`), void p;

  const bucket = Object.values(t.Resources).find((x) => x.Type === 'AWS::S3::Bucket').Properties;
  assert.deepEqual(bucket.PublicAccessBlockConfiguration, { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true });
});

/** The Dockerfile's instructions, continuation lines joined. */
function dockerfile() {
  const text = fs.readFileSync(path.join(ROOT, 'deploy', 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  return text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
}

test('the Dockerfile: multi-stage, its COPY sources exist, runs as non-root, HEALTHCHECK on /health/live', () => {
  const lines = dockerfile();
  const stages = [];
  let last = null;
  for (const l of lines) {
    const [op, ...rest] = l.split(/\s+/);
    if (op === 'FROM') {
      const m = l.match(/^FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?/i);
      last = { image: m[1], name: m[2], user: null, healthcheck: null, cmd: null, copies: [] };
      stages.push(last);
    } else if (op === 'COPY') {
      const from = l.match(/--from=(\S+)/)?.[1];
      const args = rest.filter((a) => !a.startsWith('--'));
      const srcs = args.slice(0, -1);
      if (from) {
        assert.ok(stages.slice(0, -1).some((s) => s.name === from), `COPY --from=${from} names an earlier stage`);
      } else {
        for (const s of srcs) assert.ok(fs.existsSync(path.join(ROOT, s)), `COPY source ${s} exists (context: the repo root)`);
      }
      last.copies.push({ from, srcs });
    } else if (op === 'USER') last.user = rest[0];
    else if (op === 'HEALTHCHECK') last.healthcheck = l;
    else if (op === 'CMD') last.cmd = l;
  }
  assert.ok(stages.length >= 3, 'build, deps and runtime stages');
  const runtime = stages[stages.length - 1];
  assert.ok(runtime.user && !/^(root|0)(:|$)/.test(runtime.user), `runtime USER ${runtime.user} is not root`);
  assert.match(runtime.healthcheck, /\/health\/live/);
  assert.match(runtime.cmd, /server\.js/);
  assert.ok(runtime.copies.some((c) => c.srcs.includes('deploy/app/server.js')));
  // The runtime carries no toolchain: it is Node slim, not the Rust image.
  assert.match(runtime.image, /^node:.*slim/);
  assert.ok(stages.some((s) => /^rust:/.test(s.image)), 'the addon is compiled in a Rust stage');
});

test('deploy/app/server.js serves /health/live (the HEALTHCHECK), /health/ready and /metrics from the package', { timeout: 60_000 }, async () => {
  // The service resolves the package by name, as in the image: a scratch
  // node_modules links it to this repository's build.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rc-deploy-app-'));
  try {
    fs.mkdirSync(path.join(dir, 'node_modules', '@dreamnet'), { recursive: true });
    fs.symlinkSync(ROOT, path.join(dir, 'node_modules', '@dreamnet', 'reliability-core'), 'dir');
    fs.symlinkSync(path.dirname(require.resolve('express/package.json')), path.join(dir, 'node_modules', 'express'), 'dir');
    fs.copyFileSync(path.join(ROOT, 'deploy', 'app', 'server.js'), path.join(dir, 'server.js'));
    const childEnv = { ...process.env, PORT: '0', NODE_ENV: 'production', RELIABILITY_STATE_FILE: path.join(dir, 'ops.json'), SHUTDOWN_DELAY_MS: '0' };
    delete childEnv.NODE_TEST_CONTEXT;
    delete childEnv.USE_RELIABILITY_SYSTEM;
    const child = spawn(process.execPath, ['server.js'], { cwd: dir, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    try {
      const port = await new Promise((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d) => {
          out += d;
          const m = out.match(/listening on 0\.0\.0\.0:(\d+)/);
          if (m) resolve(Number(m[1]));
        });
        child.once('exit', (c) => reject(new Error(`server exited ${c}: ${err}`)));
      });
      const live = await fetch(`http://127.0.0.1:${port}/health/live`);
      assert.equal(live.status, 200);
      const ready = await fetch(`http://127.0.0.1:${port}/health/ready`);
      assert.ok([200, 503].includes(ready.status), `ready answers (${ready.status})`);
      assert.equal(typeof (await ready.json()), 'object');
      await fetch(`http://127.0.0.1:${port}/api/hello`);
      const metrics = await fetch(`http://127.0.0.1:${port}/metrics`);
      assert.equal(metrics.status, 200);
      assert.match(await metrics.text(), /\/api\/hello/);
      const ops = await fetch(`http://127.0.0.1:${port}/api/ops/safe-mode`, { method: 'POST' });
      assert.equal(ops.status, 403, 'ops routes closed without RELIABILITY_OPS_TOKEN');
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000).unref())]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
