// The pod-path executable: the `strand` CNI plugin and, called as `strand-ipam`, the host-local
// compatible IPAM plugin. scripts/build-cni.mjs compiles it with Bun (`--compile --bytecode`) into
// dist/cni/strand, which `strand install` puts in the CNI bin dir (docs/architecture.md, "The pod
// path's runtime"): a runtime execs it once per pod and verb, so it starts in a few ms and loads
// only the modules of its verb. The agent and the command line are dist/strand (bin/strand.ts).
//   argv[0] basename "strand-ipam"  -> strand-ipam
//   otherwise                       -> strand (without CNI_COMMAND: the "about" text, as any plugin)
import { basename } from 'node:path';
import { runCni } from '../src/cni/skel.ts';
import { EXECUTABLE_MARKER, strandVersion } from '../src/version.ts';

/** Kept in the executable's text for uninstall to recognise it (an export is never dropped). */
export const marker = EXECUTABLE_MARKER;

async function main(): Promise<number> {
  const called = basename(process.argv0 || 'strand');
  if (called === 'strand-ipam' || called.startsWith('strand-ipam.')) {
    return runCni(`CNI strand-ipam plugin ${strandVersion} (host-local compatible)`, async () => (await import('../src/ipam/plugin.ts')).ipamPlugin);
  }
  return runCni(`CNI strand plugin ${strandVersion}`, async () => (await import('../src/plugin/plugin.ts')).strandPlugin);
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`strand: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
