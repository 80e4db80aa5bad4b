// What the observing commands (status, ipam, explain) share: their exit codes, the options that say
// which node's files to read (several simulated nodes on one machine each have their own), and the
// two output forms.
import type { Argv } from 'yargs';
import { CONFLIST_DEFAULTS } from '../contracts/conflist.ts';
import { DEFAULT_STATE_DIR } from '../contracts/node-state.ts';

/** Exit codes scripts can use: 0 healthy / allowed, 1 not, 2 could not tell (or bad usage). */
export const EXIT = { ok: 0, not: 1, unknown: 2 } as const;

export type Verdict = 'healthy' | 'unhealthy' | 'unknown';

export { DEFAULT_CNI_CONF_DIR } from './commands/install.ts';
import { DEFAULT_CNI_CONF_DIR } from './commands/install.ts';

/** --state-dir, --ipam-data-dir, --cni-conf-dir, -o. The kernel read is that of the namespace the command runs in. */
export function nodeOptions<T>(y: Argv<T>) {
  return y
    .option('state-dir', {
      type: 'string',
      default: DEFAULT_STATE_DIR,
      describe: "the agent's state dir (node.json, agent.sock)",
      requiresArg: true,
    })
    .option('ipam-data-dir', {
      type: 'string',
      describe: `strand-ipam's data dir (default: the conflist's ipam.dataDir, else ${CONFLIST_DEFAULTS.ipamDataDir})`,
      requiresArg: true,
    })
    .option('cni-conf-dir', {
      type: 'string',
      default: DEFAULT_CNI_CONF_DIR,
      describe: 'where the CNI configuration list is (10-strand.conflist)',
      requiresArg: true,
    })
    .option('output', {
      alias: 'o',
      choices: ['text', 'json'] as const,
      default: 'text' as 'text' | 'json',
      describe: 'text for people, json for scripts (one object; its zod schema is in src/cli/)',
    });
}

export interface NodePaths {
  stateDir: string;
  cniConfDir: string;
  /** Given on the command line; else the conflist decides. */
  ipamDataDir: string | undefined;
}

export function nodePaths(a: {
  'state-dir': string;
  'cni-conf-dir': string;
  'ipam-data-dir'?: string | undefined;
}): NodePaths {
  return { stateDir: a['state-dir'], cniConfDir: a['cni-conf-dir'], ipamDataDir: a['ipam-data-dir'] };
}

/** Writes the report as JSON (one line) or as its text. */
export function emit<T>(output: 'text' | 'json', report: T, text: (r: T) => string): void {
  process.stdout.write(output === 'json' ? `${JSON.stringify(report)}\n` : text(report));
}
