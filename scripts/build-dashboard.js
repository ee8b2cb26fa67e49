// @ts-check
'use strict';
// Copies the dashboard's assets into dist/dashboard, with uPlot (its
// standalone IIFE build and CSS) from node_modules: the package ships every
// asset, so the page needs no CDN.
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const out = path.join(root, 'dist', 'dashboard');
fs.mkdirSync(out, { recursive: true });
// dashboard/package.json is not an asset: it is the `./dashboard` subpath's
// folder for resolvers without `exports` (see package.json `files`).
for (const f of fs.readdirSync(path.join(root, 'dashboard'))) {
  if (f !== 'package.json') fs.copyFileSync(path.join(root, 'dashboard', f), path.join(out, f));
}
const uplot = path.dirname(require.resolve('uplot/package.json'));
fs.copyFileSync(path.join(uplot, 'dist', 'uPlot.iife.min.js'), path.join(out, 'uPlot.iife.min.js'));
fs.copyFileSync(path.join(uplot, 'dist', 'uPlot.min.css'), path.join(out, 'uPlot.min.css'));
fs.copyFileSync(path.join(uplot, 'LICENSE'), path.join(out, 'uPlot.LICENSE'));
