// `strand ipam` and `strand ipam gc` on the command line: the work is in ../ipam.ts.
import type { Argv, CommandModule } from 'yargs';
import { DEFAULT_MIN_AGE_S, formatIpam, ipamExitCode, runIpam, type IpamOptions } from '../ipam.ts';
import { emit, EXIT, nodeOptions, nodePaths } from '../output.ts';

function ipamOptions<T>(y: Argv<T>) {
  return nodeOptions(y)
    .option('min-age', {
      type: 'number',
      default: DEFAULT_MIN_AGE_S,
      describe:
        'seconds a reservation without its host veth must be old to count as leaked (an ADD reserves before it makes the veth)',
      requiresArg: true,
    })
    .option('force', {
      type: 'boolean',
      default: false,
      describe: 'leaked as soon as the host veth is gone: ignore --min-age and the pods the agent sees',
    });
}

type IpamArgs = ReturnType<typeof ipamOptions<object>> extends Argv<infer U> ? U : never;

export function ipamCommand(setExitCode: (code: number) => void): CommandModule<object, IpamArgs> {
  const run = async (a: IpamArgs & { 'dry-run'?: boolean }, gc: boolean) => {
    try {
      const opts: IpamOptions = { minAgeSeconds: a['min-age'], force: a.force };
      if (gc) opts.gc = { dryRun: a['dry-run'] ?? false };
      const report = await runIpam(nodePaths(a), opts);
      emit(a.output, report, formatIpam);
      setExitCode(ipamExitCode(report));
    } catch (err) {
      process.stderr.write(`strand ipam: ${(err as Error).message}\n`);
      setExitCode(EXIT.unknown);
    }
  };
  return {
    command: 'ipam',
    describe:
      'IPAM reservations per network with their containers, and the leaked ones (exit 0 none leaked, 1 some, 2 cannot tell)',
    builder: (y) =>
      ipamOptions(y).command(
        'gc',
        'release the leaked reservations under the IPAM lock',
        (g) =>
          ipamOptions(g).option('dry-run', {
            type: 'boolean',
            default: false,
            describe: 'say what would be released, release nothing',
          }),
        (a) => run(a as IpamArgs & { 'dry-run': boolean }, true),
      ) as unknown as Argv<IpamArgs>,
    handler: (a) => run(a, false),
  };
}
