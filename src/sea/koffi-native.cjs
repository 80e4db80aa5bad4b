// Loads koffi's native module inside the single executable. A SEA has no node_modules, so the build
// embeds koffi.node as an asset (scripts/build.mjs redirects '@koromix/koffi-linux-x64' here). Node
// can only dlopen a file, so the asset is written once, named by its content hash, into a directory
// that only this user can write to, and loaded from there on every later start.
'use strict';
const { chmodSync, existsSync, lstatSync, mkdirSync, renameSync, writeFileSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');

/* global STRAND_KOFFI_HASH */
function privateDir() {
  const uid = process.getuid ? process.getuid() : 0;
  const candidates = [process.env.STRAND_NATIVE_DIR, uid === 0 ? '/run/strand/native' : undefined, join(tmpdir(), `strand-native-${uid}`)];
  for (const dir of candidates) {
    if (!dir) continue;
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const st = lstatSync(dir);
      if (st.isDirectory() && st.uid === uid && (st.mode & 0o022) === 0) return dir;
    } catch {
      // try the next candidate
    }
  }
  throw new Error('no private directory to unpack the koffi native module into (set STRAND_NATIVE_DIR)');
}

function nativePath() {
  const path = join(privateDir(), `koffi-${STRAND_KOFFI_HASH}.node`);
  if (!existsSync(path)) {
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, new Uint8Array(require('node:sea').getAsset('koffi.node')), { mode: 0o500 });
    chmodSync(tmp, 0o500);
    renameSync(tmp, path);
  }
  return path;
}

const native = { exports: {} };
process.dlopen(native, nativePath());
module.exports = native.exports;
