// The `strand-ipam` CNI plugin: host-local-compatible IPAM (CNI spec checklist §9), plus GC and
// STATUS (CNI 1.1) and pod CIDRs from the node state. The verbs can be called in process too: the
// `strand` plugin runs IPAM this way when its ipam.type is strand-ipam.
import type { Attachment } from '../cni/config.ts';
import { CniError, ErrorCode } from '../cni/errors.ts';
import type { IpConfig, Result } from '../cni/result.ts';
import type { CniPlugin, Invocation } from '../cni/skel.ts';
import { allocate, rangeSetUsage, type RangeSetUsage } from './allocator.ts';
import { loadIpamConfig, resolveRangeSets, type IpamConfig } from './config.ts';
import { addressWithPrefix, formatIp, type RangeSet } from './range.ts';
import { readResolvConf } from './resolv-conf.ts';
import { readReservations, storeDir, withStore } from './store.ts';

function configOf(inv: Invocation): IpamConfig {
  return loadIpamConfig(inv.raw, inv.conf.name, inv.env.args);
}

function attachmentOf(inv: Invocation): Attachment {
  return { containerID: inv.env.containerId, ifname: inv.env.ifname };
}

/** ADD: one address per range set, with the gateway, the configured routes and resolv.conf's DNS. */
async function add(inv: Invocation): Promise<Result> {
  const conf = configOf(inv);
  const known = inv.nodeState;
  const sets =
    known && known.dir === conf.stateDir ? resolveRangeSets(conf, () => known.state) : resolveRangeSets(conf);
  const dns = conf.resolvConf ? readResolvConf(conf.resolvConf) : undefined;
  const allocations = await withStore(conf.dataDir, conf.network, (store) =>
    allocate(store, sets, attachmentOf(inv), conf.requestedIps),
  );
  // An IPAM result is abbreviated (CNI 1.1 §5): no interfaces, so no ips[].interface.
  const ips: IpConfig[] = allocations.map((a) => ({
    address: addressWithPrefix(a.ip, a.range),
    gateway: formatIp(a.range.gateway),
  }));
  const result: Result = { ips };
  if (conf.routes.length > 0) result.routes = conf.routes;
  if (dns) result.dns = dns;
  return result;
}

/** DEL: releases what the attachment holds, in every range set; nothing held is success. */
async function del(inv: Invocation): Promise<void> {
  const conf = configOf(inv);
  await withStore(conf.dataDir, conf.network, (store) => store.releaseAttachment(attachmentOf(inv)));
}

/** CHECK: the attachment holds some address (reference host-local cmdCheck). */
async function check(inv: Invocation): Promise<void> {
  const conf = configOf(inv);
  const found = await withStore(conf.dataDir, conf.network, (store) => store.holds(attachmentOf(inv)));
  if (!found) {
    throw new CniError(
      ErrorCode.CheckFailed,
      `host-local: Failed to find address added by container ${inv.env.containerId}`,
    );
  }
}

/**
 * GC (CNI 1.1 §2): releases every reservation of this network whose attachment is not valid. An
 * empty (or absent) list releases all. A legacy file (id only) stays while any valid attachment has
 * its container ID. last_reserved_ip.* and the lock are not reservations and stay.
 */
async function gc(inv: Invocation): Promise<void> {
  const conf = configOf(inv);
  const valid = inv.conf.validAttachments ?? [];
  const exact = new Set(valid.map((a) => `${a.containerID.trim()}\n${a.ifname}`));
  const ids = new Set(valid.map((a) => a.containerID.trim()));
  await withStore(conf.dataDir, conf.network, (store) => {
    const stale = store
      .reservations()
      .filter((r) => (r.ifname === undefined ? !ids.has(r.containerID) : !exact.has(`${r.containerID}\n${r.ifname}`)));
    for (const r of stale) store.remove(r);
    if (stale.length > 0) store.sync();
  });
}

/**
 * Addresses in use and free per range set of a network configuration (the whole config, as a
 * plugin receives it), for STATUS and the agent's metrics. Reads the store without its lock: a
 * snapshot is enough to count, and it never delays an ADD.
 */
export function addressUsage(conf: IpamConfig, sets: readonly RangeSet[] = resolveRangeSets(conf)): RangeSetUsage[] {
  return rangeSetUsage(sets, readReservations(storeDir(conf.dataDir, conf.network)));
}

/** addressUsage for a network configuration object (with `name` and `ipam`). */
export function networkAddressUsage(netConf: Record<string, unknown>): RangeSetUsage[] {
  const name = netConf.name;
  if (typeof name !== 'string' || name === '')
    throw new CniError(ErrorCode.InvalidNetworkConfig, 'missing network name');
  return addressUsage(loadIpamConfig(netConf, name));
}

/**
 * STATUS (CNI 1.1 §2): code 50 when ADD cannot succeed: a range set without a free address, or the
 * node state that usePodCidr needs is missing. Informational only; ADD never depends on it.
 */
async function status(inv: Invocation): Promise<void> {
  const conf = configOf(inv);
  let sets: RangeSet[];
  try {
    sets = resolveRangeSets(conf);
  } catch (err) {
    if (err instanceof CniError && err.code === ErrorCode.TryAgainLater) {
      throw new CniError(ErrorCode.PluginNotAvailable, err.message, err.details, { cause: err });
    }
    throw err;
  }
  for (const u of addressUsage(conf, sets)) {
    if (u.free === 0n) {
      throw new CniError(
        ErrorCode.PluginNotAvailable,
        `no IP addresses available in range set: ${u.ranges}`,
        `range set ${u.index}: all ${u.capacity} addresses are reserved`,
      );
    }
  }
}

export const ipamPlugin: CniPlugin = {
  add,
  del,
  check,
  gc,
  status,
};
