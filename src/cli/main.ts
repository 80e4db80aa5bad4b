// The command line: `strand <command>`. Only runs when CNI_COMMAND is unset (bin/strand.ts).
import yargs from 'yargs';
import { agentCommand } from './commands/agent.ts';
import { SUPPORTED_VERSIONS } from '../cni/versions.ts';
import { installCommand, uninstallCommand } from '../install/cli.ts';
import { explainCommand } from './explain.ts';
import { ipamCommand } from './ipam.ts';
import { statusCommand } from './status.ts';
import { embeddedNodeVersion, strandVersion } from '../version.ts';

export async function runCli(argv: string[]): Promise<number> {
  let exitCode = 0;
  try {
    await yargs(argv)
      .scriptName('strand')
      .usage('$0 <command> [options]\n\nKubernetes pod networking. Called with CNI_COMMAND set, strand is a CNI plugin;\ncalled as strand-ipam, the host-local-compatible IPAM plugin.')
      .command(
        'version',
        'print the version of strand, its embedded Node and the CNI versions it speaks',
        (y) => y.option('json', { type: 'boolean', default: false, describe: 'print JSON' }),
        (args) => {
          const info = { strand: strandVersion, node: embeddedNodeVersion, cniVersions: [...SUPPORTED_VERSIONS] };
          process.stdout.write(
            args.json ? `${JSON.stringify(info)}\n` : `strand ${info.strand}\nnode ${info.node}\nCNI ${info.cniVersions.join(', ')}\n`,
          );
        },
      )
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
