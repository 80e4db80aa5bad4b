// The node state file: what the agent learned about this node and the CNI plugins read on the pod
// start path (DESIGN.md "The two programs and their contract"): the pod CIDR(s) from
// Node.spec.podCIDRs, the cluster CIDRs, the MTU, the pods' offload sizes and the backend. The
// agent writes it atomically (temp file, fsync, rename), so a reader sees a whole old or a whole new
// file, never half of one.
import { NODE_STATE_FILE, STATE_DIR } from '../defaults.ts';
import { isCidr } from '../net/text.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as z from 'zod';
import { CniError, ErrorCode } from '../cni/errors.ts';
import { describeIssues } from '../cni/result.ts';
import { OFFLOAD_KEYS, type OffloadSizes } from '../kernel/links.ts';
import { writeFileAtomic, writeFileAtomicAsync } from '../util/atomic-file.ts';
import { zod } from '../util/lazy-zod.ts';
import { isIntIn, isObject } from '../util/plain.ts';

/** Where the agent keeps node state unless configured otherwise (a tmpfs: gone at reboot, rewritten at start). */
export const DEFAULT_STATE_DIR = STATE_DIR;
export { NODE_STATE_FILE };
export const NODE_STATE_VERSION = 1;

export const BACKENDS = ['vxlan', 'host-gw', 'none'] as const;
export type Backend = (typeof BACKENDS)[number];

export interface NodeState {
  version: 1;
  nodeName: string;
  /** Node.spec.podCIDRs: one per family at most (dual-stack), the IPv4 one first when both exist. */
  podCIDRs: string[];
  clusterCIDRs: string[];
  mtu: number;
  /**
   * GSO/GRO sizes for pod veths (both ends), above 64 KiB: BIG TCP, taken from the underlay
   * interface (agent --big-tcp). Absent: the kernel's defaults.
   */
  podOffload?: OffloadSizes;
  backend: Backend;
  /** The agent's unix socket, when it accepts pod notifications. */
  agentSocket?: string;
  /** ISO 8601 time of the write. */
  updatedAt: string;
}

export function nodeStatePath(stateDir: string): string {
  return join(stateDir, NODE_STATE_FILE);
}

let schema: z.ZodType<NodeState> | undefined;
// Built on first use: schema construction costs start-up time on the CNI path.
export function nodeStateSchema(): z.ZodType<NodeState> {
  if (schema) return schema;
  const z = zod();
  const cidr = z.string().refine(isCidr, 'not a CIDR (address/prefix)');
  // The kernel's GSO_MAX_SIZE is 512 KiB less 8 bytes.
  const size = z.number().int().min(1).max(524_280).optional();
  schema = z.object({
    version: z.literal(NODE_STATE_VERSION),
    nodeName: z.string().min(1),
    podCIDRs: z.array(cidr),
    clusterCIDRs: z.array(cidr),
    mtu: z.number().int().min(68).max(65535),
    podOffload: z.object({ gsoMaxSize: size, groMaxSize: size, gsoIpv4MaxSize: size, groIpv4MaxSize: size }).optional(),
    backend: z.enum(BACKENDS),
    agentSocket: z.string().min(1).optional(),
    updatedAt: z.iso.datetime({ offset: true }),
  });
  return schema;
}

const isCidrList = (v: unknown): v is string[] =>
  Array.isArray(v) && v.every((c) => typeof c === 'string' && isCidr(c));
// What z.iso.datetime({ offset: true }) takes, for the times the agent writes (toISOString's shape).
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

/**
 * The node state as the schema gives it, when the file is plainly what the agent writes (checked in
 * microseconds, on every ADD); undefined for anything else, which the schema decides.
 */
export function plainNodeState(v: unknown): NodeState | undefined {
  if (!isObject(v)) return undefined;
  const { version, nodeName, podCIDRs, clusterCIDRs, mtu, podOffload, backend, agentSocket, updatedAt } = v;
  if (version !== NODE_STATE_VERSION || typeof nodeName !== 'string' || nodeName === '') return undefined;
  if (!isCidrList(podCIDRs) || !isCidrList(clusterCIDRs) || !isIntIn(mtu, 68, 65535)) return undefined;
  if (typeof backend !== 'string' || !(BACKENDS as readonly string[]).includes(backend)) return undefined;
  if (agentSocket !== undefined && (typeof agentSocket !== 'string' || agentSocket === '')) return undefined;
  if (typeof updatedAt !== 'string' || !ISO_UTC.test(updatedAt) || Number.isNaN(Date.parse(updatedAt)))
    return undefined;
  let sizes: OffloadSizes | undefined;
  if (podOffload !== undefined) {
    if (!isObject(podOffload)) return undefined;
    sizes = {};
    for (const k of OFFLOAD_KEYS) {
      const x = podOffload[k];
      if (x === undefined) continue;
      if (!isIntIn(x, 1, 524_280)) return undefined;
      sizes[k] = x;
    }
  }
  // The schema's key order, which the agent's comparison with the file sees.
  return {
    version,
    nodeName,
    podCIDRs,
    clusterCIDRs,
    mtu,
    ...(sizes ? { podOffload: sizes } : {}),
    backend: backend as Backend,
    ...(agentSocket !== undefined ? { agentSocket } : {}),
    updatedAt,
  };
}

/** Checks a decoded node state; throws CniError 11 naming the file and the bad fields. */
export function parseNodeState(json: unknown, path = 'node state'): NodeState {
  const plain = plainNodeState(json);
  if (plain) return plain;
  const parsed = nodeStateSchema().safeParse(json);
  if (!parsed.success) {
    throw new CniError(ErrorCode.TryAgainLater, `node state ${path} is invalid: ${describeIssues(parsed.error)}`);
  }
  return parsed.data;
}

/**
 * Reads `<stateDir>/node.json`. Every failure is CniError 11 (try again later): the agent writes
 * the file when it starts and whenever the node changes, so a missing or damaged one is a state the
 * runtime can wait out, and the message says what is missing and where.
 */
export function readNodeState(stateDir: string): NodeState {
  const path = nodeStatePath(stateDir);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') {
      throw new CniError(
        ErrorCode.TryAgainLater,
        `node state ${path} not found: the strand agent has not written this node's pod CIDR yet`,
      );
    }
    throw new CniError(ErrorCode.TryAgainLater, `could not read node state ${path}: ${e.message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new CniError(ErrorCode.TryAgainLater, `node state ${path} is not valid JSON: ${(err as Error).message}`);
  }
  return parseNodeState(json, path);
}

/** Validates and writes the node state atomically (mode 0644: plugins of any user may read it). */
export function writeNodeState(stateDir: string, state: NodeState): void {
  writeFileAtomic(nodeStatePath(stateDir), nodeStateText(stateDir, state), { mode: 0o644, mkdir: true });
}

/** The same without blocking the event loop (the agent's writes). */
export function writeNodeStateAsync(stateDir: string, state: NodeState): Promise<void> {
  return writeFileAtomicAsync(nodeStatePath(stateDir), nodeStateText(stateDir, state), { mode: 0o644, mkdir: true });
}

function nodeStateText(stateDir: string, state: NodeState): string {
  return `${JSON.stringify(parseNodeState(state, nodeStatePath(stateDir)), null, 2)}\n`;
}
