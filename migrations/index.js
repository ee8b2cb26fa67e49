'use strict';
// The `./migrations` subpath for resolvers without package.json `exports`
// (Jest 27, older bundlers). An index file, not a package.json as the other
// subpath folders have: a package.json here would make this folder its own
// package scope, and the shipped example beside it could no longer import
// '@dreamnet/reliability-core/migrations' by the package's name.
module.exports = require('../dist/migrations.js');
