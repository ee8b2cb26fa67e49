'use strict';
/**
 * The demo's startup services, named in demo/deploy/graph.json and loaded by
 * the package's dag-loader. Each init simulates real start-up work with a
 * delay; DEMO_FAIL_SERVICE=<id> makes one of them fail, to show degraded
 * (non-critical) or aborted (critical) startup on the dashboard.
 */
const delay = (ms) => new Promise((r) => setTimeout(r, ms));

function step(id, ms) {
  return async () => {
    await delay(ms);
    if (process.env.DEMO_FAIL_SERVICE === id) throw new Error(`${id}: simulated failure (DEMO_FAIL_SERVICE)`);
  };
}

let databaseUp = false;

module.exports = {
  loadConfig: step('config', 30),
  connectDatabase: async () => {
    await step('database', 150)();
    databaseUp = true;
  },
  pingDatabase: async () => databaseUp,
  warmCache: step('cache', 80),
  startOrders: step('orders-api', 40),
  startInventory: step('inventory-api', 60),
  startSearch: step('search', 300),
};
