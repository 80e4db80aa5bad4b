// The command line: `strand <command>`. Only runs when CNI_COMMAND is unset (bin/strand.ts).
import yargs from 'yargs';
import { agentCommand } from './commands/agent.ts';
import { explainCommand } from './commands/explain.ts';
import { installCommand } from './commands/install.ts';
import { ipamCommand } from './commands/ipam.ts';
import { statusCommand } from './commands/status.ts';
import { uninstallCommand } from './commands/uninstall.ts';
import { versionCommand } from './commands/version.ts';
import { strandVersion } from '../version.ts';

export async function runCli(argv: string[]): Promise<number> {
  let exitCode = 0;
  try {
    const cli = yargs(argv);
    await cli
      .scriptName('strand')
      .usage(
        '$0 <command> [options]\n\nKubernetes pod networking. Called with CNI_COMMAND set, strand is a CNI plugin;\ncalled as strand-ipam, the host-local-compatible IPAM plugin.',
      )
      .command(versionCommand())
      .command(agentCommand((code) => (exitCode = code)))
      .command(installCommand((code) => (exitCode = code)))
      .command(uninstallCommand((code) => (exitCode = code)))
      .command(statusCommand((code) => (exitCode = code)))
      .command(ipamCommand((code) => (exitCode = code)))
      .command(explainCommand((code) => (exitCode = code)))
      .demandCommand(1, 'name a command; see strand --help')
      .strict()
      .help()
      .alias('h', 'help')
      .version(strandVersion)
      .fail((msg, err, y) => {
        exitCode = 2;
        const flag = msg?.startsWith('Unknown argument')
          ? unknownFlag(argv, (cli as unknown as { getOptions(): DefinedOptions }).getOptions())
          : undefined;
        if (flag !== undefined) {
          // One line naming the flag as typed, prefixed like the commands' own refusals; yargs' own
          // text names it twice (kebab and camel case) and reads --no-x as a negated x.
          process.stderr.write(`strand ${commandOf(argv)}: unknown flag ${flag}\n`);
          throw new UsageFailure();
        }
        process.stderr.write(`${msg ?? err?.message ?? 'error'}\n\n${y.help() ? '' : ''}`);
        process.stderr.write('run "strand --help" for usage\n');
        // A fail handler that returns lets yargs run the command anyway (yargs usage.js fail()): a
        // mistyped flag would run `install` with the defaults. Throwing stops it; caught below.
        throw new UsageFailure();
      })
      .parseAsync();
  } catch (err) {
    // yargs throws synchronously from some validation paths, so this is a try, not a .catch().
    if (!(err instanceof UsageFailure)) throw err;
  }
  return exitCode;
}

class UsageFailure extends Error {}

/** What yargs' getOptions() (public in yargs, missing from @types/yargs) tells of the defined flags. */
interface DefinedOptions {
  key: Record<string, unknown>;
  alias: Record<string, string[]>;
  boolean: string[];
}

/** The first flag on the command line that the command does not define (`--no-x` only for a defined boolean x). */
export function unknownFlag(argv: readonly string[], options: DefinedOptions): string | undefined {
  const known = new Set([...Object.keys(options.key), ...Object.values(options.alias).flat(), 'help', 'h', 'version']);
  const booleans = new Set(options.boolean);
  for (const token of argv) {
    if (token === '--') break;
    if (!token.startsWith('-') || token === '-' || /^-\d/.test(token)) continue;
    const dashes = token.startsWith('--') ? '--' : '-';
    const name = token.slice(dashes.length).split('=')[0] ?? '';
    if (dashes === '-' && name.length > 1) continue; // a group of short flags: left to yargs' own message
    if (known.has(name)) continue;
    if (name.startsWith('no-') && booleans.has(name.slice(3))) continue;
    return `${dashes}${name}`;
  }
  return undefined;
}

function commandOf(argv: readonly string[]): string {
  return argv.find((token) => !token.startsWith('-')) ?? '';
}
