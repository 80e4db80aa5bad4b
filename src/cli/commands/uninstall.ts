// `strand uninstall` on the command line. The work is in src/install/, imported when the command
// runs, so other commands do not load it.
import type { Argv, CommandModule } from 'yargs';
import { CONFLIST_DEFAULTS, CONFLIST_FILE } from '../../contracts/conflist.ts';
import { dirOptions, flagProblem, type ArgsOf } from './install.ts';

function uninstallOptions(y: Argv<object>) {
  return dirOptions(y)
    .option('state-dir', {
      type: 'string',
      default: CONFLIST_DEFAULTS.stateDir,
      describe: "the agent's node state dir (node.json, agent.sock are removed)",
      requiresArg: true,
    })
    .option('ipam-data-dir', {
      type: 'string',
      default: CONFLIST_DEFAULTS.ipamDataDir,
      describe: "strand-ipam data dir (the strand network's reservations are removed once no pod is attached)",
      requiresArg: true,
    })
    .option('bridge', {
      type: 'string',
      default: CONFLIST_DEFAULTS.bridge,
      describe: "the pods' bridge (removed once no pod is attached)",
      requiresArg: true,
    })
    .option('keep-datapath', {
      type: 'boolean',
      default: false,
      describe: 'remove only the files in the CNI dirs; leave node state, VXLAN device, routes, nftables table, bridge',
    });
}

type UninstallArgs = ArgsOf<typeof uninstallOptions>;

export function uninstallCommand(setExitCode: (code: number) => void): CommandModule<object, UninstallArgs> {
  return {
    command: 'uninstall',
    describe: `remove everything Strand put on the node: strand, strand-ipam and ${CONFLIST_FILE} (only where they are Strand's), the node state, the VXLAN device, Strand's routes, the nftables table inet strand, and the bridge and its reservations once no pod is attached`,
    builder: (y) => uninstallOptions(y),
    handler: async (a) => {
      const problem = flagProblem(a);
      if (problem) {
        process.stderr.write(`strand uninstall: ${problem}\n`);
        return setExitCode(2);
      }
      const { uninstall, describeSteps } = await import('../../install/install.ts');
      try {
        // Before anything is removed: a running agent would put it all back.
        if (!a['keep-datapath'])
          await (await import('../../install/node-cleanup.ts')).refuseWhileAgentRuns(a['state-dir']);
        const steps = uninstall({ cniBinDir: a['cni-bin-dir'], cniConfDir: a['cni-conf-dir'], dryRun: a['dry-run'] });
        if (!a['keep-datapath']) {
          const { cleanUpNode } = await import('../../install/node-cleanup.ts');
          steps.push(
            ...(await cleanUpNode({
              stateDir: a['state-dir'],
              ipamDataDir: a['ipam-data-dir'],
              bridge: a.bridge,
              dryRun: a['dry-run'],
            })),
          );
        }
        process.stdout.write(describeSteps(steps, a['dry-run']));
      } catch (err) {
        process.stderr.write(`strand uninstall: ${(err as Error).message}\n`);
        setExitCode(1);
      }
    },
  };
}
