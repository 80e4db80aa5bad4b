// The files a node's Strand keeps, read for the observing commands: the node state the agent writes
// (node.json), the conflist it keeps in the CNI conf dir, and strand-ipam's store (the host-local
// layout). None of them needs the agent; paths come from the command line so that each simulated
// node on one machine can be asked.
import { readFileSync } from 'node:fs';
import { CONFLIST_DEFAULTS, CONFLIST_FILE, isStrandConflist, NETWORK_NAME } from '../contracts/conflist.ts';
import { join } from 'node:path';
import { loadIpamConfig, type IpamConfig } from '../ipam/config.ts';
import { addressUsage } from '../ipam/plugin.ts';
import { nodeStatePath, readNodeState, type NodeState } from '../contracts/node-state.ts';
import type { NodePaths } from './output.ts';
import { usageOf, type IpamNetworkStatus } from './status-report.ts';

export function readNodeStateFile(stateDir: string): { path: string; state?: NodeState; error?: string } {
  const path = nodeStatePath(stateDir);
  try {
    return { path, state: readNodeState(stateDir) };
  } catch (err) {
    return { path, error: (err as Error).message };
  }
}

export interface ConflistFile {
  path: string;
  ok: boolean;
  error?: string;
  /** The strand plugin's entry as a runtime hands it over: plugins[0] with the list's name and cniVersion. */
  netconf?: Record<string, unknown>;
}

export function readConflist(cniConfDir: string): ConflistFile {
  const path = join(cniConfDir, CONFLIST_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return {
      path,
      ok: false,
      error: e.code === 'ENOENT' ? 'missing (the agent writes it once the node is set up)' : e.message,
    };
  }
  if (!isStrandConflist(text))
    return { path, ok: false, error: `not Strand's (no "name": "${NETWORK_NAME}" with the strand.dev/managed marker)` };
  const list = JSON.parse(text) as { name: string; cniVersion?: string; plugins?: Record<string, unknown>[] };
  const first = list.plugins?.[0];
  if (!first || first.type !== 'strand') return { path, ok: false, error: 'its first plugin is not strand' };
  return { path, ok: true, netconf: { ...first, name: list.name, cniVersion: list.cniVersion } };
}

/**
 * The IPAM configuration of the strand network: the conflist's, with the command line's
 * --ipam-data-dir and --state-dir taking precedence; without a conflist, the agent's defaults.
 */
export function ipamConfigOf(paths: NodePaths, conflist: ConflistFile): IpamConfig {
  const base = conflist.netconf ?? {
    name: NETWORK_NAME,
    ipam: {
      type: 'strand-ipam',
      subnet: 'usePodCidr',
      stateDir: paths.stateDir,
      dataDir: CONFLIST_DEFAULTS.ipamDataDir,
    },
  };
  const ipam: Record<string, unknown> = { ...(base.ipam as Record<string, unknown>), stateDir: paths.stateDir };
  if (paths.ipamDataDir !== undefined) ipam.dataDir = paths.ipamDataDir;
  return loadIpamConfig({ ...base, ipam }, typeof base.name === 'string' ? base.name : NETWORK_NAME);
}

/** Addresses used and free per range set. */
export function ipamUsage(paths: NodePaths, conflist: ConflistFile): IpamNetworkStatus {
  let conf: IpamConfig | undefined;
  try {
    conf = ipamConfigOf(paths, conflist);
    return { network: conf.network, dir: join(conf.dataDir, conf.network), ranges: addressUsage(conf).map(usageOf) };
  } catch (err) {
    return {
      network: conf?.network ?? NETWORK_NAME,
      dir: conf ? join(conf.dataDir, conf.network) : '',
      ranges: [],
      error: (err as Error).message,
    };
  }
}
