// The node's bridge (cni0 by default) and its gateway addresses: created once, however many ADDs
// race for it (the reference bridge plugin's "could not add IP address to cni0: file exists"), and
// never deleted by DEL (cni-spec.md §8: the bridge and its gateway address stay).
import { readFileSync } from 'node:fs';
import { CniError, ErrorCode } from '../cni/errors.ts';
import { randomMac } from './names.ts';
import {
  addAddress,
  addLink,
  findLink,
  isKernelError,
  listAddresses,
  deleteAddress,
  ensureSysctl,
  offloadDifference,
  setLink,
  writeSysctl,
  interfaceSysctl,
  type Link,
  type NetlinkSocket,
  type OffloadSizes,
} from '../kernel/index.ts';
import { cidrsOverlap, parseCidr } from '../net/ip.ts';

export interface BridgeOptions {
  name: string;
  mtu: number | undefined;
  promisc: boolean;
}

/**
 * Ensures the bridge exists, is a bridge, is up, and (if asked) promiscuous. It is created with a
 * fixed MAC so that its address does not follow the lowest port's MAC as ports come and go; a
 * bridge made by someone else gets its current MAC pinned the same way.
 */
export function ensureBridge(nl: NetlinkSocket, opts: BridgeOptions): Link {
  let link = findLink(nl, opts.name);
  const existed = link !== undefined;
  if (!link) {
    try {
      addLink(nl, { kind: 'bridge', name: opts.name, mtu: opts.mtu, mac: randomMac(), up: true });
      // IPv6 router advertisements on the pod bridge would make the node take routes from pods.
      writeSysctlIfPresent(interfaceSysctl('ipv6', opts.name, 'accept_ra'), 0);
    } catch (err) {
      // Another ADD created it first: use theirs.
      if (!isKernelError(err, 'EEXIST')) throw err;
    }
    link = findLink(nl, opts.name);
    if (!link)
      throw new CniError(ErrorCode.KernelFailure, `bridge ${opts.name} disappeared while it was being created`);
  }
  if (link.kind !== 'bridge') {
    throw new CniError(ErrorCode.InvalidNetworkConfig, `"${opts.name}" already exists but is not a bridge`);
  }
  if (existed && link.mac && !macPinned(opts.name)) {
    // A bridge someone else made takes its lowest port's MAC as ports come and go, and the pods'
    // ARP caches hold it as their gateway's: setting the MAC to itself pins it (the kernel then
    // treats it as chosen by the user, NET_ADDR_SET), as the reference does in ensureAddr.
    setLink(nl, link.index, { mac: link.mac });
  }
  if (!link.up || (opts.promisc && !link.promisc)) {
    setLink(nl, link.index, { up: true, ...(opts.promisc ? { promisc: true } : {}) });
    link = findLink(nl, link.index) ?? link;
  }
  return link;
}

/** Sets those of the link's GSO/GRO sizes (BIG TCP) that differ from `sizes`, in one request. */
export function ensureOffload(nl: NetlinkSocket, link: Link, sizes: OffloadSizes): void {
  const diff = offloadDifference(link.offload, sizes);
  if (Object.keys(diff).length > 0) setLink(nl, link.index, { offload: diff });
}

/** Whether the bridge's MAC was set explicitly (addr_assign_type NET_ADDR_SET), so it stays. */
function macPinned(name: string): boolean {
  try {
    return readFileSync(`/sys/class/net/${name}/addr_assign_type`, 'utf8').trim() === '3';
  } catch {
    return false;
  }
}

/** Writes a sysctl that may not exist (IPv6 disabled on the node: nothing to set, nothing to protect). */
export function writeSysctlIfPresent(key: string, value: number): void {
  try {
    writeSysctl(key, value);
  } catch (err) {
    if (!isKernelError(err, 'ENOENT')) throw err;
  }
}

/**
 * Puts each gateway address (gateway/prefix of the pod subnet) on the bridge. As the reference
 * ensureAddr: an IPv4 bridge with a different address is an error unless forceAddress, which
 * replaces it; IPv6 addresses in other subnets may coexist. A concurrent ADD adding the same
 * address first is fine.
 */
export function ensureGatewayAddresses(
  nl: NetlinkSocket,
  bridge: Link,
  gateways: readonly string[],
  forceAddress: boolean,
): void {
  if (gateways.length === 0) return;
  const present = listAddresses(nl, { link: bridge.index });
  for (const gw of gateways) {
    const want = parseCidr(gw);
    let have = false;
    for (const a of present) {
      if (a.family !== want.family || a.scope === 253 /* link-local */) continue;
      if (a.cidr === gw) {
        have = true;
        continue;
      }
      if (want.family === 6 && !cidrsOverlap(a.cidr, gw)) continue;
      if (!forceAddress) {
        throw new CniError(
          ErrorCode.InvalidNetworkConfig,
          `"${bridge.name}" already has an IP address different from ${gw}: ${a.cidr}`,
          'set forceAddress to replace it',
        );
      }
      deleteAddress(nl, bridge.index, a.cidr);
    }
    if (have) continue;
    try {
      // No DAD for the gateway: a tentative address would delay the first pods' traffic.
      addAddress(nl, bridge.index, gw, want.family === 6 ? { noDad: true } : {});
    } catch (err) {
      if (!isKernelError(err, 'EEXIST')) throw err;
    }
  }
}

/**
 * Forwarding between the pods and the node, for each family in use (reference: with isGateway).
 * Read first: after the first pod it is on, and a write makes the kernel walk every device.
 */
export function enableForwarding(families: ReadonlySet<4 | 6>): void {
  if (families.has(4)) ensureSysctl('net.ipv4.ip_forward', 1);
  if (families.has(6)) {
    try {
      ensureSysctl('net/ipv6/conf/all/forwarding', 1);
    } catch (err) {
      // IPv6 disabled on the node: nothing to set.
      if (!isKernelError(err, 'ENOENT')) throw err;
    }
  }
}
