// Loads koffi's native module inside the Node single executable. A SEA has no node_modules, so the
// build embeds koffi.node as an asset (scripts/build.mjs redirects '@koromix/koffi-linux-x64' here);
// it is unpacked once by content hash (native-dir.cjs) and dlopened from there.
'use strict';
const { loadNative, nativePath } = require('./native-dir.cjs');

/* global STRAND_KOFFI_HASH */
module.exports = loadNative(
  nativePath(STRAND_KOFFI_HASH, () => new Uint8Array(require('node:sea').getAsset('koffi.node'))),
);
