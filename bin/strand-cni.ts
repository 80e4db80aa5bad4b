// The pod-path executable: the `strand` CNI plugin and, called as `strand-ipam`, the host-local
// compatible IPAM plugin. scripts/build-cni.mjs compiles it with Bun (`--compile --bytecode`) into
// dist/cni/strand, which `strand install` puts in the CNI bin dir (docs/architecture.md, "Two
// executables, two runtimes"): a runtime execs it once per pod and verb, so it starts in a few ms
// and loads only the modules of its verb. The agent and the command line are dist/strand.
//   argv[0] basename "strand-ipam"  -> strand-ipam
//   otherwise                       -> strand (without CNI_COMMAND: the "about" text, as any plugin)
import { basename } from 'node:path';
import { exitWith, isIpamName, runIpamRole, runStrandRole } from './cni-roles.ts';
import { EXECUTABLE_MARKER } from '../src/version.ts';

/** Kept in the executable's text for uninstall to recognise it (an export is never dropped). */
export const marker = EXECUTABLE_MARKER;

exitWith(isIpamName(basename(process.argv0 || 'strand')) ? runIpamRole() : runStrandRole());
