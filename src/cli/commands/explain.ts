// `strand explain` on the command line: the work is in ../explain.ts.
import type { Argv, CommandModule } from 'yargs';
import type { ExplainQuery } from '../../contracts/agent-socket.ts';
import { explainExitCode, formatExplain, parsePortProto, runExplain } from '../explain.ts';
import { emit, EXIT, nodeOptions, nodePaths } from '../output.ts';

function explainOptions<T>(y: Argv<T>) {
  return nodeOptions(y)
    .positional('src', {
      type: 'string',
      demandOption: true,
      describe: 'namespace/pod, a pod or node address, or an address/CIDR outside the cluster',
    })
    .positional('dst', { type: 'string', demandOption: true, describe: 'the same kinds as src' })
    .positional('port', {
      type: 'string',
      describe: 'PORT or PORT/PROTO (TCP, UDP, SCTP); TCP when no protocol is given',
    })
    .option('kernel', {
      type: 'boolean',
      default: false,
      describe: 'also find the nftables rule that implements the decision and its packet counter',
    });
}

type ExplainArgs = ReturnType<typeof explainOptions<object>> extends Argv<infer U> ? U : never;

export function explainCommand(setExitCode: (code: number) => void): CommandModule<object, ExplainArgs> {
  return {
    command: 'explain <src> <dst> [port]',
    describe:
      'can SRC connect to DST, and why: the path, the policies that isolate each end and the rule that allows it (exit 0 allowed, 1 not, 2 cannot tell)',
    builder: (y) => explainOptions(y),
    handler: async (a) => {
      try {
        const q: ExplainQuery = { src: a.src, dst: a.dst };
        if (a.port !== undefined) Object.assign(q, parsePortProto(a.port));
        const r = await runExplain(nodePaths(a).stateDir, q, { kernel: a.kernel });
        if ('error' in r) {
          process.stderr.write(`strand explain: ${r.error}\n`);
          return setExitCode(r.code);
        }
        emit(a.output, r, formatExplain);
        setExitCode(explainExitCode(r));
      } catch (err) {
        process.stderr.write(`strand explain: ${(err as Error).message}\n`);
        setExitCode(EXIT.unknown);
      }
    },
  };
}
