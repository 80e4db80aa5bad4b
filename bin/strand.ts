// dist/strand, the Node executable: the command line and the agent (docs/architecture.md, "Two
// executables, two runtimes"). The CNI roles are kept for an installation that still runs it as a
// plugin; the shipped plugin is dist/cni/strand (bin/strand-cni.ts). How it was called decides:
//   argv[0] basename "strand-ipam"    -> the host-local-compatible IPAM plugin
//   CNI_COMMAND set                    -> the strand CNI plugin
//   otherwise                          -> the command line (agent, install, ...)
// Each role is imported lazily (esbuild keeps dynamic imports as lazily initialised modules).
import { basename } from 'node:path';
import { startupSnapshot } from 'node:v8';
import { exitWith, isIpamName, runIpamRole, runStrandRole } from './cni-roles.ts';

async function main(): Promise<number> {
  const called = basename(process.argv0 || process.argv[0] || 'strand');
  if (isIpamName(called)) return runIpamRole();
  if (process.env.CNI_COMMAND) return runStrandRole();
  const { runCli } = await import('../src/cli/main.ts');
  return runCli(process.argv.slice(2));
}

function start(): void {
  exitWith(main());
}

if (startupSnapshot?.isBuildingSnapshot()) {
  // Building the executable's startup snapshot: initialise the CNI modules and their schemas now, so
  // that every start resumes with them ready; start() runs when the executable is launched.
  startupSnapshot.setDeserializeMainFunction(start);
  void import('./cni-prewarm.ts').then((m) => m.prewarm());
} else {
  start();
}
