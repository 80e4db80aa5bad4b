// The one executable. How it was called decides what it is (docs/architecture.md):
//   argv[0] basename "strand-ipam"    -> the host-local-compatible IPAM plugin
//   CNI_COMMAND set                    -> the strand CNI plugin
//   otherwise                          -> the command line (agent, install, ...)
// Each role is imported lazily so that CNI mode loads only what it needs (esbuild keeps dynamic
// imports as lazily initialised modules inside the one bundle).
import { basename } from 'node:path';
import { startupSnapshot } from 'node:v8';

async function main(): Promise<number> {
  const called = basename(process.argv0 || process.argv[0] || 'strand');
  if (called === 'strand-ipam' || called.startsWith('strand-ipam.')) {
    const { runCni } = await import('../src/cni/skel.ts');
    const { strandVersion } = await import('../src/version.ts');
    return runCni(`CNI strand-ipam plugin ${strandVersion} (host-local compatible)`, async () => (await import('../src/ipam/plugin.ts')).ipamPlugin);
  }
  if (process.env.CNI_COMMAND) {
    const { runCni } = await import('../src/cni/skel.ts');
    const { strandVersion } = await import('../src/version.ts');
    return runCni(`CNI strand plugin ${strandVersion}`, async () => (await import('../src/plugin/plugin.ts')).strandPlugin);
  }
  const { runCli } = await import('../src/cli/main.ts');
  return runCli(process.argv.slice(2));
}

function start(): void {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`strand: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}

if (startupSnapshot?.isBuildingSnapshot()) {
  // Building the executable's startup snapshot: initialise the CNI modules and their schemas now, so
  // that every start resumes with them ready; start() runs when the executable is launched.
  startupSnapshot.setDeserializeMainFunction(start);
  void import('../src/cni/prewarm.ts').then((m) => m.prewarm());
} else {
  start();
}
