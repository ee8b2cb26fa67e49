// @ts-check
'use strict';
// autocannon in its own process (so the client does not share the server's
// CPU accounting): `node load-client.js <port> <seconds> <connections>`,
// prints autocannon's result as JSON.
const autocannon = require('autocannon');

const [port, seconds, connections] = process.argv.slice(2).map(Number);
const requests = Array.from({ length: 16 }, (_, i) => ({ method: 'GET', path: `/api/items/${i * 7}`, headers: { 'x-user-id': `user-${i}` } }));
autocannon({ url: `http://127.0.0.1:${port}`, connections, duration: seconds, requests, pipelining: 1 }, (err, res) => {
  if (err) {
    console.error(err);
    process.exit(1);
  }
  process.stdout.write(JSON.stringify(res));
});
