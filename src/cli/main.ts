// The command line: `strand <command>`. Only runs when CNI_COMMAND is unset (bin/strand.ts).
import yargs from 'yargs';
import { agentCommand } from '../agent/config.ts';
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
    await yargs(argv)
      .scriptName('strand')
      .usage('$0 <command> [options]\n\nKubernetes pod networking. Called with CNI_COMMAND set, strand is a CNI plugin;\ncalled as strand-ipam, the host-local-compatible IPAM plugin.')
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
