// The two CNI roles and how a process entry runs one (bin/strand-cni.ts, the pod-path executable;
// bin/strand.ts, the agent's executable, which keeps the roles for an old install). Each plugin's
// modules are a dynamic import, so VERSION and the "about" text load neither.
import { strandVersion } from '../src/version.ts';
import { runCni } from '../src/cni/skel.ts';

/** Whether argv[0] names the IPAM plugin (the `strand-ipam` link, or a copy named so). */
export function isIpamName(called: string): boolean {
  return called === 'strand-ipam' || called.startsWith('strand-ipam.');
}

export function runIpamRole(): Promise<number> {
  return runCni(
    `CNI strand-ipam plugin ${strandVersion} (host-local compatible)`,
    async () => (await import('../src/ipam/plugin.ts')).ipamPlugin,
  );
}

export function runStrandRole(): Promise<number> {
  return runCni(
    `CNI strand plugin ${strandVersion}`,
    async () => (await import('../src/plugin/plugin.ts')).strandPlugin,
  );
}

/** Sets the process's exit code from `main`, printing anything it threw (the CNI answer is already out). */
export function exitWith(main: Promise<number>): void {
  main.then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`strand: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
