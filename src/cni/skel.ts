// The skeleton every Strand CNI plugin runs in: environment and stdin in, one verb handler called,
// the result or a CniError out on stdout (CNI 1.1 §2 and §5). Handlers never print.
import { readFileSync, writeSync } from 'node:fs';
import { loadNetConf, type NetConf } from './config.ts';
import { parseEnv, type CniEnv, type Verb } from './env.ts';
import { asCniError, CniError, ErrorCode } from './errors.ts';
import { formatResult, type Result } from './result.ts';
import type { NodeState } from '../contracts/node-state.ts';
import { CURRENT_VERSION, SUPPORTED_VERSIONS } from './versions.ts';

export interface Invocation {
  env: CniEnv;
  conf: NetConf;
  /** The whole configuration as received, for plugin-specific fields and for delegation. */
  raw: Record<string, unknown>;
  /** stdin exactly as received, handed on unchanged to delegated plugins. */
  stdin: string;
  /**
   * The node state the caller already read for this invocation, and from which state dir: the
   * strand plugin runs strand-ipam in process and hands its copy on, so an ADD reads node.json once.
   */
  nodeState?: { dir: string; state: NodeState };
}

export interface CniPlugin {
  add(inv: Invocation): Promise<Result>;
  del(inv: Invocation): Promise<void>;
  check(inv: Invocation): Promise<void>;
  gc(inv: Invocation): Promise<void>;
  status(inv: Invocation): Promise<void>;
}

export interface CniIo {
  env: NodeJS.ProcessEnv;
  readStdin(): string;
  writeStdout(s: string): void;
  writeStderr(s: string): void;
}

export const processIo: CniIo = {
  env: process.env,
  readStdin() {
    try {
      return readFileSync(0, 'utf8');
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      // No stdin at all (closed, or a terminal at EOF) reads as empty.
      if (e.code === 'EOF' || e.code === 'EBADF') return '';
      throw new CniError(ErrorCode.IoFailure, `failed to read network configuration from stdin: ${e.message}`);
    }
  },
  writeStdout(s) {
    writeSync(1, s);
  },
  writeStderr(s) {
    writeSync(2, s);
  },
};

export function versionInfo(cniVersion: string): string {
  return JSON.stringify({ cniVersion, supportedVersions: [...SUPPORTED_VERSIONS] });
}

/** VERSION: echo the caller's cniVersion (from stdin if it sent one) and list what Strand implements. */
function versionAnswer(stdin: string): string {
  if (stdin.trim() === '') return versionInfo(CURRENT_VERSION);
  let json: unknown;
  try {
    json = JSON.parse(stdin);
  } catch (err) {
    throw new CniError(ErrorCode.DecodingFailure, `failed to decode VERSION input: ${(err as Error).message}`);
  }
  const v = (json as { cniVersion?: unknown } | null)?.cniVersion;
  return versionInfo(typeof v === 'string' && v !== '' ? v : CURRENT_VERSION);
}

/** The cniVersion to stamp on an error: the request's, when it could be read. */
function errorVersion(stdin: string | undefined): string {
  if (!stdin) return CURRENT_VERSION;
  try {
    const v = (JSON.parse(stdin) as { cniVersion?: unknown }).cniVersion;
    return typeof v === 'string' && v !== '' ? v : CURRENT_VERSION;
  } catch {
    return CURRENT_VERSION;
  }
}

/**
 * Runs one CNI invocation; returns the process exit code. The plugin is loaded only for the verbs
 * that need it: the "about" text and VERSION are answered before any of its modules (zod schemas,
 * koffi, pino) are initialised, which keeps them at a bare Node start.
 */
export async function runCni(
  about: string,
  loadPlugin: () => Promise<CniPlugin>,
  io: CniIo = processIo,
): Promise<number> {
  if (!io.env.CNI_COMMAND) {
    io.writeStderr(`${about}\nCNI protocol versions supported: ${SUPPORTED_VERSIONS.join(', ')}\n`);
    return 0;
  }
  let stdin: string | undefined;
  try {
    // stdin first, so that even an environment error carries the request's cniVersion.
    stdin = io.readStdin();
    const env = parseEnv(io.env);
    if (env.command === 'VERSION') {
      io.writeStdout(versionAnswer(stdin));
      return 0;
    }
    const { conf, raw } = loadNetConf(stdin, env.command);
    const inv: Invocation = { env, conf, raw, stdin };
    const out = await dispatch(await loadPlugin(), env.command, inv);
    if (out) io.writeStdout(formatResult(out, conf.cniVersion));
    return 0;
  } catch (err) {
    const e = asCniError(err);
    io.writeStdout(JSON.stringify(e.toJSON(errorVersion(stdin))));
    return 1;
  }
}

async function dispatch(
  plugin: CniPlugin,
  verb: Exclude<Verb, 'VERSION'>,
  inv: Invocation,
): Promise<Result | undefined> {
  switch (verb) {
    case 'ADD':
      return plugin.add(inv);
    case 'DEL':
      await plugin.del(inv);
      return undefined;
    case 'CHECK':
      await plugin.check(inv);
      return undefined;
    case 'GC':
      await plugin.gc(inv);
      return undefined;
    case 'STATUS':
      await plugin.status(inv);
      return undefined;
  }
}
