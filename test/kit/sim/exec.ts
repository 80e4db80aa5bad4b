// Running commands for the simulator: `ip`, `bridge`, `ping`, the plugin. The simulator stands in for
// the machine's operator and container runtime, so it may run tools; Strand itself (src/) may not.
import { execFileSync, spawn, spawnSync } from 'node:child_process';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command and returns its output; throws with the command line and stderr when it fails. */
export function sh(cmd: string, args: readonly string[], opts: { input?: string } = {}): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', input: opts.input, stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${(e.stderr ?? '').trim() || e.message}`);
  }
}

/** Like sh, but returns the status instead of throwing. */
export function trySh(cmd: string, args: readonly string[]): RunResult {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** Runs a command without blocking the event loop (probes run many at once). */
export function run(
  cmd: string,
  args: readonly string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    if (opts.timeoutMs !== undefined) timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}

/** `ip -j …` in a namespace, parsed. */
export function ipJson<T = unknown>(netns: string, args: readonly string[]): T {
  const out = sh('ip', ['-n', netns, '-j', ...args]);
  return (out.trim() === '' ? [] : JSON.parse(out)) as T;
}

/** `bridge -j …` in a namespace, parsed; [] when the device does not exist. */
export function bridgeJson<T = unknown>(netns: string, args: readonly string[]): T {
  const r = trySh('bridge', ['-n', netns, '-j', ...args]);
  if (r.code !== 0) return [] as T;
  return (r.stdout.trim() === '' ? [] : JSON.parse(r.stdout)) as T;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `condition` (sync or async) until it returns true; rejects naming `what` after timeoutMs. */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
  everyMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}
