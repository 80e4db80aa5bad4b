// Running a delegated plugin (an IPAM plugin named in the config) as CNI 1.1 §4 "Delegated plugins"
// says: found by name in CNI_PATH, run with the same environment (CNI_COMMAND set to the verb) and
// the complete network configuration on stdin; its stdout is the result or an error object.
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import type { CniEnv, Verb } from './env.ts';
import { CniError, ErrorCode } from './errors.ts';
import { parseResult, type Result } from './result.ts';

/** How long a delegate may run before it is killed: kubelet's own CNI timeout is minutes; IPAM is fast. */
const DELEGATE_TIMEOUT_MS = 60_000;

export function findPlugin(type: string, path: readonly string[]): string {
  if (path.length === 0) {
    throw new CniError(ErrorCode.InvalidEnvironment, `CNI_PATH is empty: cannot find the delegated plugin "${type}"`);
  }
  for (const dir of path) {
    const candidate = join(dir, type);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  throw new CniError(ErrorCode.DelegateFailure, `failed to find plugin "${type}" in path [${path.join(' ')}]`);
}

/**
 * Runs `type` for `verb`. ADD returns its parsed result; the other verbs return undefined. A delegate
 * error object keeps its own code and message.
 */
export async function execDelegate(
  type: string,
  verb: Exclude<Verb, 'VERSION'>,
  env: CniEnv,
  stdin: string,
): Promise<Result | undefined> {
  const plugin = findPlugin(type, env.path);
  // node:child_process only when there is a delegate to run (its loading is about 1.5 ms of a start).
  const { spawnSync } = await import('node:child_process');
  const childEnv: NodeJS.ProcessEnv = { ...process.env, CNI_COMMAND: verb, CNI_PATH: env.path.join(':') };
  const r = spawnSync(plugin, [], {
    env: childEnv,
    input: stdin,
    encoding: 'utf8',
    timeout: DELEGATE_TIMEOUT_MS,
    maxBuffer: 16 << 20,
  });
  if (r.error) {
    throw new CniError(
      ErrorCode.DelegateFailure,
      `failed to run delegated plugin ${plugin} for ${verb}: ${r.error.message}`,
    );
  }
  const out = (r.stdout ?? '').trim();
  if (r.status !== 0) {
    let parsed: { code?: unknown; msg?: unknown; details?: unknown } | undefined;
    try {
      parsed = JSON.parse(out) as typeof parsed;
    } catch {
      parsed = undefined;
    }
    if (parsed && typeof parsed.code === 'number' && typeof parsed.msg === 'string') {
      throw new CniError(parsed.code, parsed.msg, typeof parsed.details === 'string' ? parsed.details : undefined);
    }
    const why = out || (r.stderr ?? '').trim() || `exit status ${r.status ?? r.signal}`;
    throw new CniError(ErrorCode.DelegateFailure, `delegated plugin ${type} failed for ${verb}: ${why}`);
  }
  if (verb !== 'ADD') return undefined;
  let json: unknown;
  try {
    json = JSON.parse(out);
  } catch {
    throw new CniError(
      ErrorCode.DecodingFailure,
      `failed to decode the result of delegated plugin ${type}: ${out.slice(0, 200)}`,
    );
  }
  return parseResult(json, `the result of delegated plugin ${type}`);
}
