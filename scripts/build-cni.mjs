// Builds dist/cni/strand, the pod-path executable (bin/strand-cni.ts), with the pinned Bun from the
// npm package @oven/bun-linux-x64: `Bun.build` with `compile` and `bytecode`, so the executable
// starts from precompiled bytecode in a runtime that itself starts in a few ms (docs/architecture.md).
// Run by scripts/build.mjs under that Bun:  bun scripts/build-cni.mjs <root> <koffi-hash> <version>
// With STRAND_CNI_PROFILE_DIR set it writes the same bundle, not compiled, into that directory, for
// `bun --cpu-prof <dir>/strand-cni.js` (profiling one ADD or DEL; see docs/architecture.md).
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const [root, koffiHash, version] = process.argv.slice(2);
const dist = join(root, 'dist', 'cni');
const require = createRequire(join(root, 'package.json'));
const koffiNative = join(dirname(require.resolve('@koromix/koffi-linux-x64/package.json')), 'linux_x64', 'koffi.node');

// koffi finds its native module through require('@koromix/koffi-<platform>'): linux-x64 is answered
// by the loader that unpacks the module embedded in the executable; the other platforms' packages
// are not installed and become a clear error if ever reached.
const koffiPlugin = {
  name: 'strand-koffi',
  setup(b) {
    b.onResolve({ filter: /^@koromix\/koffi-/ }, (args) =>
      args.path === '@koromix/koffi-linux-x64'
        ? { path: 'koffi-linux-x64', namespace: 'strand-koffi' }
        : { path: args.path, namespace: 'strand-koffi-absent' },
    );
    // Embedded as a file (its bytes, readable at run time), not as a native module: Bun would
    // otherwise unpack it into /tmp and dlopen it on every start.
    b.onResolve({ filter: /^strand-koffi-native-file$/ }, () => ({
      path: koffiNative,
      namespace: 'strand-koffi-file',
    }));
    b.onLoad({ filter: /.*/, namespace: 'strand-koffi-file' }, () => ({
      contents: readFileSync(koffiNative),
      loader: 'file',
    }));
    b.onLoad({ filter: /.*/, namespace: 'strand-koffi' }, () => ({
      contents: `module.exports = require(${JSON.stringify(join(root, 'src', 'sea', 'koffi-native-bun.ts'))}).default;`,
      loader: 'js',
    }));
    b.onLoad({ filter: /.*/, namespace: 'strand-koffi-absent' }, () => ({
      contents: 'throw new Error("koffi: only linux-x64 is bundled in this build")',
      loader: 'js',
    }));
  },
};

// A compiled executable would otherwise read .env, bunfig.toml, tsconfig.json and package.json from
// its working directory (the runtime's, on a node): nothing a CNI plugin may take configuration
// from, and each a file system walk at every pod start.
const NO_AUTOLOAD = {
  autoloadDotenv: false,
  autoloadBunfig: false,
  autoloadTsconfig: false,
  autoloadPackageJson: false,
};

mkdirSync(dist, { recursive: true });
const exe = join(dist, 'strand');
const tmp = `${exe}.tmp`;
rmSync(tmp, { force: true });
const profileDir = process.env.STRAND_CNI_PROFILE_DIR;
const result = await Bun.build({
  entrypoints: [join(root, 'bin', 'strand-cni.ts')],
  ...(profileDir ? { outdir: profileDir } : { compile: { outfile: tmp, ...NO_AUTOLOAD } }),
  target: 'bun',
  format: 'cjs',
  bytecode: true,
  minify: profileDir ? false : { syntax: true, whitespace: true, identifiers: false },
  sourcemap: 'none',
  define: {
    STRAND_VERSION: JSON.stringify(version),
    STRAND_KOFFI_HASH: JSON.stringify(koffiHash),
  },
  plugins: [koffiPlugin],
  throw: false,
});
if (!result.success) {
  for (const log of result.logs) console.error(log);
  process.exit(1);
}
if (profileDir) process.exit(0);
chmodSync(tmp, 0o755);
// Replace atomically so a running test or benchmark never executes a half-written file.
renameSync(tmp, exe);
const ipamLink = join(dist, 'strand-ipam');
rmSync(ipamLink, { force: true });
symlinkSync('strand', ipamLink);
