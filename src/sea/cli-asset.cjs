// The command line inside the single executable: scripts/build.mjs bundles src/cli/main.ts on its own
// and embeds it as the SEA asset "cli.cjs"; bin/strand.ts's import of the command line is redirected
// here, so the bundle is read and compiled only when `strand` runs as a command line, never in CNI
// mode. It needs nothing but Node's built-in modules (koffi's native module comes from its own asset).
'use strict';
const Module = require('node:module');
const { getAsset } = require('node:sea');

const filename = `${process.execPath}/cli.cjs`;
const cli = new Module(filename);
cli.filename = filename;
cli.paths = [];
cli._compile(getAsset('cli.cjs', 'utf8'), filename);
module.exports = cli.exports;
