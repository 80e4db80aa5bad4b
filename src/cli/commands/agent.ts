// `strand agent`: the command that runs the node agent (src/agent). It lives apart from the agent so
// that the agent's configuration module does not import the agent back (the cycle of issue 15); the
// agent and @kubernetes/client-node are imported when the command runs, not when the CLI starts.
import type { KubeConfig } from '@kubernetes/client-node';
import type { CommandModule } from 'yargs';
import { agentOptions, ConfigError, loadAgentConfig, type AgentConfig } from '../../agent/config.ts';

/** Exit status of a refused configuration (flags, file, kubeconfig). */
export const EXIT_CONFIG = 2;

/**
 * `strand agent`, for the command line's yargs; the exit status goes to `setExitCode`.
 */
export function agentCommand(
  setExitCode: (code: number) => void,
): CommandModule<object, Record<string, string | string[] | undefined>> {
  return {
    command: 'agent',
    describe:
      'run the node agent (the DaemonSet): watch the cluster, set the node up, write the node state and CNI configuration',
    builder: (y) =>
      agentOptions(y).epilog(
        'Every flag can also be set in the TOML file (--config) under its own name (node-name = "n1") and in the environment; flags win over the environment, which wins over the file. A bad value stops the agent with exit status 2.',
      ),
    handler: async (args) => {
      setExitCode(await runAgentCommand(args));
    },
  };
}

/**
 * Loads the configuration (a bad one is one line on stderr and exit 2), runs the agent until SIGTERM
 * or SIGINT, stops it and returns 0.
 */
export async function runAgentCommand(
  flags: Record<string, unknown>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  const { describeError, KubeConfigError, loadKubeConfig } = await import('../../k8s/client.ts');
  let config: AgentConfig;
  let kubeConfig: KubeConfig;
  try {
    config = await loadAgentConfig({ flags, env });
    kubeConfig = loadKubeConfig(config.kubeconfig, env);
  } catch (err) {
    if (err instanceof ConfigError || err instanceof KubeConfigError) {
      process.stderr.write(`strand agent: ${err.message}\n`);
      return EXIT_CONFIG;
    }
    throw err;
  }
  const { processLogger } = await import('../../log.ts');
  const log = processLogger(config.logLevel, config.logFile);
  // Listening before anything starts: a SIGTERM during start-up stops the agent as cleanly.
  const stopSignal = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  const { tuneMalloc } = await import('../../agent/steps/memory.ts');
  tuneMalloc(env);
  const { Agent } = await import('../../agent/agent.ts');
  let agent: Awaited<ReturnType<typeof Agent.start>>;
  try {
    agent = await Agent.start({ config, kubeConfig, log });
  } catch (err) {
    log.fatal({ err }, `strand agent could not start: ${describeError(err)}`);
    process.stderr.write(`strand agent: could not start: ${describeError(err)}\n`);
    log.flush();
    return 1;
  }
  const signal = await stopSignal;
  log.info({ signal }, 'strand agent stopping');
  // A second signal (an operator's Ctrl-C again) ends the process at once.
  const now = () => {
    log.warn('strand agent: second stop signal, exiting without waiting');
    log.flush();
    process.exit(0);
  };
  process.once('SIGTERM', now);
  process.once('SIGINT', now);
  const stopped = await stopWithin(agent.stop(), STOP_DEADLINE_MS);
  if (!stopped)
    log.warn(
      { deadlineMs: STOP_DEADLINE_MS },
      'strand agent: a pass still running at the stop deadline; exiting without waiting for it (the rules it was writing are applied whole or not at all)',
    );
  log.flush();
  // Everything is closed; should a library still hold a connection open, do not wait for it.
  setTimeout(() => process.exit(), stopped ? 3_000 : 0).unref();
  return 0;
}

/**
 * How long stop() may take before the process exits anyway: well inside the pod's default
 * terminationGracePeriodSeconds (30 s), after which the kubelet kills it. stop() answers the waiting
 * pod-start notices first (at once), then waits for a pass in flight, which at 50,000 pods took
 * longer than any grace period: that wait is what the deadline cuts short. A pass that holds the
 * event loop without yielding delays the deadline's timer too, by as long as it holds it.
 */
export const STOP_DEADLINE_MS = 10_000;

/** Whether `stop` settled within `ms`; its failure counts as settled (the agent is stopping anyway). */
export async function stopWithin(stop: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([
      stop.then(
        () => true,
        () => true,
      ),
      deadline,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
