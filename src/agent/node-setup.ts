// The node's own network set-up, level-based and idempotent: every reconcile pass may run it again.
//   - the underlay: the interface Strand's traffic to other nodes leaves by (the default route's, or
//     --iface) and its MTU, from which the pod MTU follows (VXLAN costs 50 bytes of headers);
//   - the node state file the plugins read (pod CIDRs, cluster CIDRs, MTU, backend, agent socket),
//     written atomically and only when its content changes;
//   - the pod bridge and the forwarding sysctls, br_netfilter's included;
//   - BIG TCP: the pods' GSO/GRO sizes follow the underlay's when it takes packets over 64 KiB, so
//     a pod hands the stack packets as large as the node's NIC does (fewer packets through the bridge,
//     conntrack and routing for the same bytes). Never with VXLAN: a tunnel packet's outer UDP and IP
//     lengths are 16 bits, so the kernel cannot encapsulate more than 64 KiB.
// Pure parts (podMtu, podOffload, desiredNodeState, sameNodeState) are separate from the kernel and
// file work.
import { existsSync, readFileSync } from 'node:fs';
import {
  findLink,
  isKernelError,
  listAddresses,
  listLinks,
  OFFLOAD_KEYS,
  type Link,
  type OffloadSizes,
  type NetlinkSocket,
  type Route,
} from '../kernel/index.ts';
import { RT_TABLE, RTM } from '../kernel/netlink-const.ts';
import { decodeRoute, encodeDumpRoutes } from '../kernel/routes.ts';
import { firstHost, parseCidr } from '../net/ip.ts';
import type { Logger } from '../log.ts';
import {
  enableForwarding,
  ensureBridge,
  ensureGatewayAddresses,
  ensureOffload,
  writeSysctlIfPresent,
} from '../plugin/bridge.ts';
import {
  NODE_STATE_VERSION,
  nodeStatePath,
  parseNodeState,
  writeNodeStateAsync,
  type NodeState,
} from '../contracts/node-state.ts';
import type { AgentBackend, BigTcpMode } from './config.ts';

export interface Underlay {
  name: string;
  index: number;
  mtu: number;
  /** Global addresses, IPv4 first: the VXLAN endpoint address comes from here. */
  addresses: string[];
  /** Its GSO/GRO sizes: above 64 KiB when BIG TCP is on for it. */
  offload: OffloadSizes;
}

/** The GSO/GRO size every device starts with, and the most a pre-BIG TCP kernel handles. */
export const LEGACY_OFFLOAD_SIZE = 65_536;

/**
 * The pods' GSO/GRO sizes (pure): with bigTcp auto and host-gw, which routes pod packets as they
 * are, each of the underlay's sizes that is above 64 KiB; undefined when none is, or with VXLAN,
 * or off. The pods' sizes then never exceed what the underlay takes, so a
 * pod's packet leaving the node is not cut up in software on the way.
 */
export function podOffload(
  backend: AgentBackend,
  bigTcp: BigTcpMode,
  underlay: OffloadSizes,
): OffloadSizes | undefined {
  if (bigTcp === 'off' || backend === 'vxlan') return undefined;
  const sizes: OffloadSizes = {};
  for (const key of OFFLOAD_KEYS) {
    const size = underlay[key];
    if (size !== undefined && size > LEGACY_OFFLOAD_SIZE) sizes[key] = size;
  }
  return Object.keys(sizes).length > 0 ? sizes : undefined;
}

/** The family of the underlay's first address (the VXLAN endpoint); IPv4 when it has none. */
export function underlayFamily(u: Underlay): 4 | 6 {
  return u.addresses[0]?.includes(':') ? 6 : 4;
}

/** The default route to use: the main table's, lowest metric, IPv4 before IPv6 (pure). */
export function pickDefaultRoute(routes: readonly Route[]): Route | undefined {
  const defaults = routes.filter((r) => (r.dst === '0.0.0.0/0' || r.dst === '::/0') && r.type === 1 /* RTN_UNICAST */);
  defaults.sort((a, b) => a.family - b.family || (a.metric ?? 0) - (b.metric ?? 0));
  return defaults[0];
}

export class UnderlayError extends Error {
  override name = 'UnderlayError';
}

/** RTM_F_CLONED: a cached clone (IPv6 exceptions), not a configured route. */
const RTM_F_CLONED = 0x200;

/**
 * The main table's routes that can be default routes (a /0), without decoding the others: under
 * host-gw a node holds a route per peer, and the underlay is looked at every few seconds.
 */
export function defaultRouteCandidates(nl: NetlinkSocket): Route[] {
  const out: Route[] = [];
  for (const family of [4, 6] as const) {
    for (const m of nl.dump(encodeDumpRoutes(family), 'list routes')) {
      // struct rtmsg begins { family, dst_len, … }.
      if (m.type !== RTM.NEWROUTE || m.data[1] !== 0) continue;
      const r = decodeRoute(m);
      if (!r || r.flags & RTM_F_CLONED || r.family !== family || r.table !== RT_TABLE.MAIN) continue;
      out.push(r);
    }
  }
  return out;
}

/** Finds the underlay interface: `iface` if given, else the default route's output interface. */
export function detectUnderlay(nl: NetlinkSocket, iface: string | undefined): Underlay {
  let link: Link | undefined;
  if (iface !== undefined) {
    link = findLink(nl, iface);
    if (!link) throw new UnderlayError(`underlay interface ${iface} (--iface) does not exist`);
  } else {
    const route = pickDefaultRoute(defaultRouteCandidates(nl));
    if (!route) throw new UnderlayError('no default route to find the underlay interface by: add one or give --iface');
    if (route.oif === undefined)
      throw new UnderlayError(
        `the default route ${route.dst} has no single output interface (multipath?): give --iface`,
      );
    link = findLink(nl, route.oif);
    if (!link) throw new UnderlayError(`the default route's interface (index ${route.oif}) disappeared`);
  }
  const addresses = listAddresses(nl, { link: link.index })
    .filter((a) => a.scope === 0 /* universe */)
    .sort((a, b) => a.family - b.family)
    .map((a) => a.address);
  return { name: link.name, index: link.index, mtu: link.mtu, addresses, offload: link.offload };
}

export interface NodeStateInputs {
  nodeName: string;
  podCIDRs: readonly string[];
  clusterCIDRs: readonly string[];
  mtu: number;
  podOffload: OffloadSizes | undefined;
  backend: AgentBackend;
  agentSocket: string;
}

/** The node state the plugins should see (pure; updatedAt is set at the write). */
export function desiredNodeState(i: NodeStateInputs, now = new Date()): NodeState {
  return {
    version: NODE_STATE_VERSION,
    nodeName: i.nodeName,
    podCIDRs: [...i.podCIDRs],
    clusterCIDRs: [...i.clusterCIDRs],
    mtu: i.mtu,
    ...(i.podOffload ? { podOffload: { ...i.podOffload } } : {}),
    backend: i.backend,
    agentSocket: i.agentSocket,
    updatedAt: now.toISOString(),
  };
}

/** Same content, whatever the write times. */
export function sameNodeState(a: NodeState, b: NodeState): boolean {
  const strip = ({ updatedAt: _updatedAt, ...rest }: NodeState) => JSON.stringify(rest);
  return strip(a) === strip(b);
}

/** The node state on disk, or undefined when it is missing or not valid. */
export function readCurrentNodeState(stateDir: string): NodeState | undefined {
  try {
    return parseNodeState(JSON.parse(readFileSync(nodeStatePath(stateDir), 'utf8')), nodeStatePath(stateDir));
  } catch {
    return undefined;
  }
}

/** Writes the node state if its content differs from the file's; returns whether it wrote. */
export async function ensureNodeState(stateDir: string, desired: NodeState): Promise<boolean> {
  const current = readCurrentNodeState(stateDir);
  if (current && sameNodeState(current, desired)) return false;
  await writeNodeStateAsync(stateDir, desired);
  return true;
}

/** The pod bridge's gateway address for a pod CIDR: its first address, as strand-ipam hands out. */
export function gatewayFor(podCidr: string): string {
  return `${firstHost(podCidr)}/${parseCidr(podCidr).prefixLength}`;
}

export interface HostNetworkInputs {
  bridge: string;
  mtu: number;
  podCIDRs: readonly string[];
  /** The pods' GSO/GRO sizes (podOffload); undefined: the kernel's 64 KiB. */
  podOffload: OffloadSizes | undefined;
}

export interface HostNetworkReport {
  bridgeIndex: number;
  /** br_netfilter's sysctls are absent: bridged pod traffic bypasses nftables. */
  brNetfilterMissing: boolean;
}

export const BR_NETFILTER_DIR = '/proc/sys/net/bridge';

/**
 * Prepares the node for pods: the bridge (created up, with the pod MTU, if missing), its gateway
 * address per pod CIDR, forwarding for each family with a pod CIDR, and br_netfilter's
 * bridge-nf-call-ip(6)tables so that bridged pod-to-pod traffic reaches the inet hooks where
 * NetworkPolicy is enforced. Loading br_netfilter is the DaemonSet init container's job.
 */
export function prepareHostNetwork(nl: NetlinkSocket, i: HostNetworkInputs, log: Logger): HostNetworkReport {
  const bridge = ensureBridge(nl, { name: i.bridge, mtu: i.mtu, promisc: false });
  try {
    ensureGatewayAddresses(nl, bridge, i.podCIDRs.map(gatewayFor), false);
  } catch (err) {
    // A bridge address in another subnet (the node's pod CIDR changed): the plugin would refuse ADDs
    // on it as well; say so, and leave the bridge as it is for the operator.
    log.warn({ err: (err as Error).message, bridge: i.bridge }, 'the pod bridge has an address outside the pod CIDR');
  }
  const families = new Set<4 | 6>(i.podCIDRs.map((c) => (c.includes(':') ? 6 : 4)));
  families.add(4);
  enableForwarding(families);
  const brNetfilterMissing = !existsSync(BR_NETFILTER_DIR);
  if (!brNetfilterMissing) {
    writeSysctlIfPresent('net.bridge.bridge-nf-call-iptables', 1);
    writeSysctlIfPresent('net.bridge.bridge-nf-call-ip6tables', 1);
  }
  const refused = ensureBridgeOffload(nl, bridge, i.podOffload);
  if (refused.length > 0)
    log.warn(
      { refused },
      'could not set the GSO/GRO sizes (BIG TCP) of the pod bridge or some of its ports; their traffic is cut into 64 KiB pieces',
    );
  return { bridgeIndex: bridge.index, brNetfilterMissing };
}

/**
 * Brings the bridge and the host ends of its ports to the pods' GSO/GRO sizes (or back to 64 KiB):
 * the plugin sets them as it creates a pod, and this pass catches the pods made before a change.
 * The pod ends keep what they were created with until the pod is recreated; a pod end larger
 * than the path is still correct (the stack cuts its packets up), only slower. The bridge takes
 * sizes above 64 KiB only once it has a port (its ceiling is its ports'), so an empty bridge waits.
 * Best effort: a link that refuses (a port whose ceiling is lower, e.g. a NIC someone bridged) is
 * returned with the kernel's reason and everything else goes on.
 */
export function ensureBridgeOffload(nl: NetlinkSocket, bridge: Link, sizes: OffloadSizes | undefined): string[] {
  // Every size: those BIG TCP does not raise go back to 64 KiB.
  const want = Object.fromEntries(OFFLOAD_KEYS.map((k) => [k, sizes?.[k] ?? LEGACY_OFFLOAD_SIZE]));
  const ports = listLinks(nl, { master: bridge.index });
  // Ports first: the bridge's ceiling is its ports'.
  const links = [...ports.filter((p) => p.kind === 'veth'), ...(ports.length > 0 ? [bridge] : [])];
  const refused: string[] = [];
  for (const link of links) {
    try {
      ensureOffload(nl, link, want);
    } catch (err) {
      // A pod deleted meanwhile: its port is gone, nothing to do.
      if (isKernelError(err, 'ENODEV')) continue;
      if (!isKernelError(err)) throw err;
      refused.push(`${link.name}: ${(err as Error).message}`);
    }
  }
  return refused;
}
