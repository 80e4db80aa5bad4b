// `strand install` on the command line (uninstall.ts shares its directory flags). The work is in src/install/, imported
// when one of these commands runs, so other commands do not load it.
import { CNI_BIN_DIR, CNI_CONF_DIR } from '../../defaults.ts';
import type { Argv, CommandModule } from 'yargs';
import { interfaceNameProblem } from '../../cni/env.ts';
import { CONFLIST_DEFAULTS, CONFLIST_FILE } from '../../contracts/conflist.ts';

export const DEFAULT_CNI_BIN_DIR = CNI_BIN_DIR;
export const DEFAULT_CNI_CONF_DIR = CNI_CONF_DIR;

export function dirOptions(y: Argv<object>) {
  return y
    .option('cni-bin-dir', {
      type: 'string',
      default: DEFAULT_CNI_BIN_DIR,
      describe: 'where the runtime looks for CNI plugins',
      requiresArg: true,
    })
    .option('cni-conf-dir', {
      type: 'string',
      default: DEFAULT_CNI_CONF_DIR,
      describe: `where the runtime reads network configurations (${CONFLIST_FILE})`,
      requiresArg: true,
    })
    .option('dry-run', { type: 'boolean', default: false, describe: 'print what would change and change nothing' });
}

function installOptions(y: Argv<object>) {
  return dirOptions(y)
    .option('state-dir', {
      type: 'string',
      default: CONFLIST_DEFAULTS.stateDir,
      describe: 'node state dir the plugin reads (conflist stateDir)',
      requiresArg: true,
    })
    .option('ipam-data-dir', {
      type: 'string',
      default: CONFLIST_DEFAULTS.ipamDataDir,
      describe: 'strand-ipam data dir (conflist ipam.dataDir)',
      requiresArg: true,
    })
    .option('log-file', {
      type: 'string',
      default: CONFLIST_DEFAULTS.logFile,
      describe: 'the plugin log file (conflist logFile)',
      requiresArg: true,
    })
    .option('bridge', {
      type: 'string',
      default: CONFLIST_DEFAULTS.bridge,
      describe: "the pods' bridge (conflist bridge)",
      requiresArg: true,
    })
    .option('source', {
      type: 'string',
      describe: 'the CNI executable to install (default: cni/strand beside this executable)',
      requiresArg: true,
    });
}

/**
 * Flag values yargs cannot check by type. Checked in the handler, not with yargs' check(): with the
 * command line's fail() handler (which reports and sets the exit code) a failed check would still
 * run the command.
 */
export function flagProblem(a: Record<string, unknown>): string | undefined {
  for (const k of ['cni-bin-dir', 'cni-conf-dir', 'state-dir', 'ipam-data-dir', 'log-file', 'source']) {
    if (a[k] === '') return `--${k} must not be empty`;
  }
  if (typeof a.bridge === 'string') {
    const problem = interfaceNameProblem(a.bridge);
    if (problem) return `--bridge "${a.bridge}" ${problem}`;
  }
  return undefined;
}

export type ArgsOf<B> = B extends (y: Argv<object>) => Argv<infer U> ? U : never;
type InstallArgs = ArgsOf<typeof installOptions>;

export function installCommand(setExitCode: (code: number) => void): CommandModule<object, InstallArgs> {
  return {
    command: 'install',
    describe: `copy this executable into the CNI bin dir (with the strand-ipam link) and write ${CONFLIST_FILE}, atomically`,
    builder: (y) => installOptions(y),
    handler: async (a) => {
      const problem = flagProblem(a);
      if (problem) {
        process.stderr.write(`strand install: ${problem}\n`);
        return setExitCode(2);
      }
      const { install, describeSteps } = await import('../../install/install.ts');
      try {
        const { steps, warnings } = await install({
          cniBinDir: a['cni-bin-dir'],
          cniConfDir: a['cni-conf-dir'],
          source: a.source,
          conflist: {
            bridge: a.bridge,
            stateDir: a['state-dir'],
            ipamDataDir: a['ipam-data-dir'],
            logFile: a['log-file'],
          },
          dryRun: a['dry-run'],
        });
        process.stdout.write(describeSteps(steps, a['dry-run']));
        // The list is written without them; the agent rewrites it once they are there.
        for (const w of warnings) process.stderr.write(`strand install: warning: ${w}\n`);
      } catch (err) {
        process.stderr.write(`strand install: ${(err as Error).message}\n`);
        setExitCode(1);
      }
    },
  };
}
