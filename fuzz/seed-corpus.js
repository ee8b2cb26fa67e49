'use strict';
/**
 * Writes the seed files of fuzz/corpus/<target>/ from what the package
 * itself writes: ops state files and replica documents after a run of
 * operator actions, HDR exports of recorded latencies, the repository's
 * graph files. `npm run fuzz` adds what the fuzzer finds next to them.
 * Run after `npm run build`: node fuzz/seed-corpus.js
 */
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');

const root = path.join(__dirname, '..');
const corpus = path.join(__dirname, 'corpus');
const n = require(path.join(root, 'index.js'));

function put(target, name, data) {
  const dir = path.join(corpus, target);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `seed-${name}`), data);
}

// Ops state and replica documents, from a run of every kind of action.
const h = n.opsCreate(1);
n.opsReplicaSetNode(h, 'seed-a');
n.opsSetSafeMode(h, true, 'incident 42', 'alice', '10.0.0.1', 1000);
n.opsSetBrownout(h, 0.4, 'shed load', 'bob', 'cli:bob', 2000);
n.opsQuarantine(h, 'agent-7', 'loops', 60_000, 'alice', '10.0.0.1', 3000);
n.opsQuarantine(h, 'agent-8', 'spam', null, 'alice', '10.0.0.1', 3500);
n.opsRelease(h, 'agent-8', 'carol', 'api', 4000);
n.opsRecordRollback(h, ['checkout-v2'], 'errors', 'alice', 'api', 5000);
n.opsRecordRefusal(h, 'safe-mode', '10.9.9.9', 'wrong token', 6000);
n.dlqRegister(h, 'orders-dlq', 50);
n.dlqBegin(h, 'orders-dlq', 10, 7000);
n.dlqProgress(h, 'orders-dlq', 3, 1, 7100);
n.dlqEnd(h, 'orders-dlq', 7200, 'broker went away');
n.opsMarkApplied(h, crypto.randomBytes(8).toString('hex'), 'server', 'applied', 7300);
put('ops_state', 'full', n.opsToJson(h, 8000));
put('ops_state', 'empty', n.opsToJson(n.opsCreate(2), 0));
put('redis_message', 'full', n.opsReplicaExport(h, 8000));
const h2 = n.opsCreate(3);
n.opsReplicaSetNode(h2, 'seed-b');
n.opsSetSafeMode(h2, false, 'over', 'dave', 'api', 9000);
n.opsClearRollback(h2, 'checkout-v2', 9100);
put('redis_message', 'other-node', n.opsReplicaExport(h2, 9200));

// HDR exports of recorded latencies (the metrics store's own encoding).
const m = require(path.join(root, 'dist', 'index.js'));
const id = m.seriesIdFor('GET', '/orders');
for (let i = 0; i < 500; i++) m.recordRequest(id, i % 50 === 0 ? 500 : 200, 0.2 + (i % 97) * 3.7);
const orders = m.exportLatencyHistogram('GET /orders', 'all') || m.exportLatencyHistogram(undefined, 'all');
put('hdr_import', 'orders', orders);
// A first byte 0 tells the target the rest is raw bytes: the decoded form, for the fuzzer to mutate.
put('hdr_import', 'orders-raw', Buffer.concat([Buffer.from([0]), Buffer.from(orders, 'base64')]));
put('hdr_import', 'one', (() => { m.recordRequest(m.seriesIdFor('GET', '/one'), 200, 12); return m.exportLatencyHistogram(undefined, 'all'); })());

// Graph files shipped with the repository.
put('graph_file', 'fixture.json', fs.readFileSync(path.join(root, '__test__', 'fixtures', 'graph.json')));
put('graph_file', 'demo.json', fs.readFileSync(path.join(root, 'demo', 'deploy', 'graph.json')));

// Option bytes: defaults everywhere, then edge values, then random fields.
put('options', 'zeros', Buffer.alloc(64));
put('options', 'edges', Buffer.from(Array.from({ length: 160 }, (_, i) => (i * 7) % 128)));
put('options', 'random', crypto.randomBytes(256));
