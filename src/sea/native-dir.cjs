// Where a single executable unpacks koffi's native module: both runtimes can only dlopen a file, so
// the module embedded in the executable is written once, named by its content hash, into a directory
// that only this user can write to, and loaded from there on every later start (a pod start then
// costs one stat, not a 1 MiB write). Used by the Node SEA (koffi-native.cjs); the Bun-compiled CNI
// executable has no koffi (src/kernel/libc-bun.ts).
// '/run/strand/native' is written out here rather than taken from src/defaults.ts: this CommonJS file
// runs before any module is loaded, so it cannot import one.
'use strict';
const { chmodSync, existsSync, lstatSync, mkdirSync, renameSync, writeFileSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');

function privateDir() {
  const uid = process.getuid ? process.getuid() : 0;
  const candidates = [
    process.env.STRAND_NATIVE_DIR,
    uid === 0 ? '/run/strand/native' : undefined,
    join(tmpdir(), `strand-native-${uid}`),
  ];
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

/** The unpacked module's path; `bytes()` is called only when it is not there yet. */
function nativePath(hash, bytes) {
  const path = join(privateDir(), `koffi-${hash}.node`);
  if (!existsSync(path)) {
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, bytes(), { mode: 0o500 });
    chmodSync(tmp, 0o500);
    renameSync(tmp, path);
  }
  return path;
}

/** dlopens the native module at `path` and returns its exports, as require() of a .node file would. */
function loadNative(path) {
  const native = { exports: {} };
  process.dlopen(native, path);
  return native.exports;
}

module.exports = { nativePath, loadNative };
