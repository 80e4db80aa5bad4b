// Runs dist/cni/strand (or any CNI plugin) as a process exactly as a container runtime does: CNI_*
// variables in the environment, the network configuration on stdin, the result or error on stdout.
import { spawn, spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

export const DIST = resolve(import.meta.dirname, '../../dist');
/** The agent and the command line (the Node single executable). */
export const STRAND = `${DIST}/strand`;
/** The CNI bin dir the build lays out: what `strand install` puts in /opt/cni/bin. */
export const CNI_BIN = `${DIST}/cni`;
/** The shipped CNI plugins (the Bun-compiled pod-path executable): the runtime users run is the one tested. */
export const STRAND_CNI = `${CNI_BIN}/strand`;
export const STRAND_IPAM = `${CNI_BIN}/strand-ipam`;
/** Where Debian's containernetworking-plugins puts the reference plugins. */
export const REFERENCE_CNI_DIR = '/usr/lib/cni';

export interface CniCall {
  command: 'ADD' | 'DEL' | 'CHECK' | 'VERSION' | 'GC' | 'STATUS';
  containerId?: string;
  netns?: string;
  ifname?: string;
  args?: string;
  path?: string;
  config: unknown;
  /** Extra or overriding environment variables. */
  env?: Record<string, string | undefined>;
}

export interface CniOutcome {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON, when it is JSON. */
  json: any;
}

function buildEnv(call: CniCall): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, CNI_COMMAND: call.command };
  if (call.containerId !== undefined) env.CNI_CONTAINERID = call.containerId;
  if (call.netns !== undefined) env.CNI_NETNS = call.netns;
  if (call.ifname !== undefined) env.CNI_IFNAME = call.ifname;
  if (call.args !== undefined) env.CNI_ARGS = call.args;
  env.CNI_PATH = call.path ?? `${CNI_BIN}:${REFERENCE_CNI_DIR}`;
  for (const [k, v] of Object.entries(call.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

function outcome(code: number, stdout: string, stderr: string): CniOutcome {
  let json: unknown;
  try {
    json = stdout.trim() === '' ? undefined : JSON.parse(stdout);
  } catch {
    json = undefined;
  }
  return { code, stdout, stderr, json };
}

function stdinOf(call: CniCall): string {
  return typeof call.config === 'string' ? call.config : JSON.stringify(call.config);
}

export function runPlugin(plugin: string, call: CniCall): CniOutcome {
  const r = spawnSync(plugin, [], { env: buildEnv(call), input: stdinOf(call), encoding: 'utf8' });
  return outcome(r.status ?? -1, r.stdout ?? '', r.stderr ?? '');
}

export function runPluginAsync(plugin: string, call: CniCall): Promise<CniOutcome> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(plugin, [], { env: buildEnv(call), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolvePromise(outcome(code ?? (signal ? 128 : -1), stdout, stderr)));
    child.stdin.end(stdinOf(call));
  });
}
