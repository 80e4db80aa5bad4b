// `strand status` on the command line: the gathering is in ../status.ts, the judging in
// ../status-report.ts.
import type { Argv, CommandModule } from 'yargs';
import { emit, EXIT, nodeOptions, nodePaths } from '../output.ts';
import { gatherStatus } from '../status.ts';
import { formatStatus, statusExitCode } from '../status-report.ts';

function statusOptions(y: Argv<object>) {
  return nodeOptions(y).option('timeout', {
    type: 'number',
    default: 5,
    describe: 'seconds to wait for the agent',
    requiresArg: true,
  });
}

type StatusArgs = ReturnType<typeof statusOptions> extends Argv<infer U> ? U : never;

export function statusCommand(setExitCode: (code: number) => void): CommandModule<object, StatusArgs> {
  return {
    command: 'status',
    describe: "is this node's networking healthy, and if not, why (exit 0 healthy, 1 not, 2 cannot tell)",
    builder: (y) => statusOptions(y),
    handler: async (a) => {
      try {
        const report = await gatherStatus(nodePaths(a), { timeoutMs: a.timeout * 1000 });
        emit(a.output, report, (r) => formatStatus(r));
        setExitCode(statusExitCode(report));
      } catch (err) {
        process.stderr.write(`strand status: ${(err as Error).message}\n`);
        setExitCode(EXIT.unknown);
      }
    },
  };
}
