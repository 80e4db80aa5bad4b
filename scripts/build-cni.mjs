// Builds dist/cni/strand, the pod-path executable (bin/strand-cni.ts), with the pinned Bun from the
// npm package @oven/bun-linux-x64: `Bun.build` with `compile` and `bytecode`, so the executable
// starts from precompiled bytecode in a runtime that itself starts in a few ms (docs/architecture.md).
// Run by scripts/build.mjs under that Bun:  bun scripts/build-cni.mjs <root> <version>
// With STRAND_CNI_PROFILE_DIR set it writes the same bundle, not compiled, into that directory, for
// `bun --cpu-prof <dir>/strand-cni.js` (profiling one ADD or DEL; see docs/architecture.md).
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';

const [root, version] = process.argv.slice(2);
const dist = join(root, 'dist', 'cni');

// What Bun itself has, used instead of modules that cost every pod start: the kernel layer binds libc
// with koffi under Node (src/kernel/libc-koffi.ts) and with Bun's own FFI here (src/kernel/libc-bun.ts),
// so the executable carries no koffi (no native module to embed, unpack and dlopen with libstdc++).
// The agent client's pod-start notice uses those libc calls too (a blocking unix socket), not node:net.
const bunNatives = {
  name: 'strand-bun-natives',
  setup(b) {
    b.onResolve({ filter: /\/libc-koffi\.ts$/ }, () => ({ path: join(root, 'src', 'kernel', 'libc-bun.ts') }));
    // Anything else that reaches for koffi fails the build rather than the pod start.
    b.onResolve({ filter: /^koffi$|^@koromix\/koffi-/ }, (args) => {
      throw new Error(`${args.importer} imports ${args.path}: the CNI executable binds libc with bun:ffi only`);
    });
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

// A CNI invocation is a few ms of run-once code: JavaScriptCore's JIT compiling it on its worker threads
// costs CPU that never pays back (ADD 74 -> 61 ms of CPU at 100 on a loaded machine, VERSION about 3 ms
// less). Scaled by 100 rather than switched off, so that a long loop (an IPAM range walked across tens
// of thousands of addresses) still reaches the baseline JIT.
const JIT_POLICY = 100;

mkdirSync(dist, { recursive: true });
const exe = join(dist, 'strand');
const tmp = `${exe}.tmp`;
rmSync(tmp, { force: true });
const profileDir = process.env.STRAND_CNI_PROFILE_DIR;
const result = await Bun.build({
  entrypoints: [join(root, 'bin', 'strand-cni.ts')],
  ...(profileDir ? { outdir: profileDir } : { compile: { outfile: tmp, ...NO_AUTOLOAD, jitPolicy: JIT_POLICY } }),
  target: 'bun',
  format: 'cjs',
  bytecode: true,
  minify: profileDir ? false : { syntax: true, whitespace: true, identifiers: false },
  sourcemap: 'none',
  define: {
    STRAND_VERSION: JSON.stringify(version),
  },
  plugins: [bunNatives],
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
