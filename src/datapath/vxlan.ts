// The VXLAN backend: one device strand.<VNI> per node (learning off: every remote MAC is programmed,
// never learnt), with the node's VTEP address (the network address of each pod CIDR, /32 or /128)
// and a MAC derived from the node name. For each peer reached through it: a route to the peer's pod
// CIDR via the peer's VTEP address (onlink), a permanent neighbour entry for that address, and an
// FDB entry sending the peer's VTEP MAC to its underlay address. With directRouting, peers on the
// same layer-2 segment get plain routes via their underlay address instead (as flannel's DirectRouting).
import { VNI, VXLAN_PORT } from '../defaults.ts';
import {
  addAddress,
  addLink,
  deleteAddress,
  deleteLink,
  findLink,
  isKernelError,
  listAddresses,
  setLink,
  type Link,
  type LinkChanges,
  type NetlinkSocket,
} from '../kernel/index.ts';
import { familyOf } from '../net/text.ts';
import { vtepHostCidr } from './cidr.ts';
import {
  deleteLeftoverDevices,
  deleteStrandRoutes,
  emptyReport,
  forwardingWarnings,
  reconcileEntries,
  reportDeviceChange,
  vxlanDeviceName,
} from './datapath.ts';
import type { DatapathMode } from './desired.ts';
import { podMtu } from './mtu.ts';
import { normalizeLocal, underlayLink } from './local.ts';
import { localAnnotations } from './peer.ts';
import type { Backend, Change, LocalNode, Peer, ReconcileReport, ReconcileWatch, SetUpResult } from './types.ts';
import { vtepMacFor } from './vtep-mac.ts';

export const DEFAULT_VNI = VNI;
/** IANA's VXLAN port (RFC 7348); the kernel's own default is the pre-standard 8472. */
export const DEFAULT_VXLAN_PORT = VXLAN_PORT;

export interface VxlanOptions {
  /** VXLAN network identifier, 1–16777215 (default 1); also names the device strand.<VNI>. */
  vni?: number;
  /** UDP destination port (default 4789); every node of a cluster must use the same. */
  port?: number;
  /** Peers on the same layer-2 segment get direct routes (default false). */
  directRouting?: boolean;
}

interface DeviceState {
  link: Link;
  underlay: Link;
  changes: Change[];
}

export class VxlanBackend implements Backend {
  readonly kind = 'vxlan' as const;
  readonly vni: number;
  readonly port: number;
  readonly directRouting: boolean;
  readonly device: string;
  private readonly nl: NetlinkSocket;
  private local: LocalNode | undefined;

  /** nl: a socket in the node's network namespace; its netns is also where sysctls are read. */
  constructor(nl: NetlinkSocket, opts: VxlanOptions = {}) {
    this.nl = nl;
    this.vni = opts.vni ?? DEFAULT_VNI;
    this.port = opts.port ?? DEFAULT_VXLAN_PORT;
    this.directRouting = opts.directRouting ?? false;
    if (!Number.isInteger(this.vni) || this.vni < 1 || this.vni > 0xffffff)
      throw new RangeError(`VXLAN VNI ${this.vni} is not in 1..16777215`);
    if (!Number.isInteger(this.port) || this.port < 1 || this.port > 0xffff)
      throw new RangeError(`VXLAN port ${this.port} is not in 1..65535`);
    this.device = vxlanDeviceName(this.vni);
  }

  setUp(localNode: LocalNode): SetUpResult {
    const local = normalizeLocal(localNode);
    const changes = deleteLeftoverDevices(this.nl, this.device);
    const device = this.ensureDevice(local);
    changes.push(...device.changes);
    this.local = local;
    return {
      annotations: localAnnotations('vxlan', local, vtepMacFor(local.name)),
      podMtu: device.link.mtu,
      changes,
      warnings: forwardingWarnings(this.nl.netns, local.podCidrs),
    };
  }

  async reconcile(peers: readonly Peer[], watch?: ReconcileWatch): Promise<ReconcileReport> {
    const local = this.local;
    if (!local) throw new Error('VXLAN backend: reconcile before setUp');
    const started = performance.now();
    const report = emptyReport();
    try {
      // Level-based for the device too: one deleted or changed by hand is put back before its
      // entries are looked at (deleting it took its routes, neighbours and FDB entries along).
      const device = this.ensureDevice(local);
      for (const c of device.changes) reportDeviceChange(report, c);
      const mode: DatapathMode = {
        kind: 'vxlan',
        directRouting: this.directRouting,
        vtepMac: vtepMacFor(local.name),
        vtepFamily: familyOf(local.underlayIps[0]!)!,
      };
      const devices = {
        underlay: { index: device.underlay.index, name: device.underlay.name },
        vxlan: { index: device.link.index, name: device.link.name },
      };
      await reconcileEntries(this.nl, mode, local, devices, peers, report, watch);
    } catch (err) {
      report.problems.push({
        message: `reconcile ${this.device}: ${err instanceof Error ? err.message : String(err)}`,
      });
    }
    report.durationMs = performance.now() - started;
    return report;
  }

  tearDown(): Change[] {
    const changes: Change[] = [];
    try {
      deleteLink(this.nl, this.device);
      changes.push({ object: 'device', detail: `delete ${this.device}` });
    } catch (err) {
      if (!isKernelError(err, 'ENODEV')) throw err;
    }
    // Direct routes (directRouting) went out the underlay and did not go with the device.
    changes.push(...deleteStrandRoutes(this.nl));
    this.local = undefined;
    return changes;
  }

  /** Creates strand.<VNI> as wanted, or brings an existing one back to it. */
  private ensureDevice(local: LocalNode): DeviceState {
    const nl = this.nl;
    const changes: Change[] = [];
    const underlay = underlayLink(nl, local);
    const endpoint = local.underlayIps[0]!;
    const mtu = podMtu('vxlan', local.underlayMtu ?? underlay.mtu, familyOf(endpoint)!);
    const mac = vtepMacFor(local.name);

    let link = findLink(nl, this.device);
    if (link) {
      // VNI, port, endpoint and lower device cannot all be changed in place (vxlan_changelink):
      // a device that differs in any of them is made again, as flannel does.
      const wrong = this.incompatibility(link, underlay.index, endpoint);
      if (wrong !== undefined) {
        deleteLink(nl, link.index);
        changes.push({ object: 'device', detail: `delete ${this.device}: ${wrong}` });
        link = undefined;
      }
    }
    if (!link) {
      addLink(nl, {
        kind: 'vxlan',
        name: this.device,
        vni: this.vni,
        port: this.port,
        local: endpoint,
        link: underlay.index,
        learning: false,
        mtu,
        mac,
        up: true,
      });
      changes.push({
        object: 'device',
        detail: `create ${this.device} vni ${this.vni} dstport ${this.port} local ${endpoint} dev ${underlay.name} nolearning mtu ${mtu} address ${mac}`,
      });
      link = findLink(nl, this.device);
      if (!link) throw new Error(`${this.device} vanished right after being created`);
    } else {
      const fix: LinkChanges = {};
      const what: string[] = [];
      if (link.mac !== mac) {
        fix.mac = mac;
        what.push(`address ${link.mac} → ${mac}`);
      }
      if (link.mtu !== mtu) {
        fix.mtu = mtu;
        what.push(`mtu ${link.mtu} → ${mtu}`);
      }
      if (!link.up) {
        fix.up = true;
        what.push('up');
      }
      if (what.length > 0) {
        setLink(nl, link.index, fix);
        changes.push({ object: 'device', detail: `set ${this.device} ${what.join(', ')}` });
        link = findLink(nl, this.device) ?? link;
      }
    }

    // The VTEP addresses: exactly one per pod CIDR family. Link-local IPv6 is the kernel's.
    const wanted = local.podCidrs.map(vtepHostCidr);
    const held = listAddresses(nl, { link: link.index }).filter(
      (a) => !(a.family === 6 && a.address.startsWith('fe80:')),
    );
    for (const a of held) {
      if (wanted.includes(a.cidr)) continue;
      deleteAddress(nl, link.index, a.cidr);
      changes.push({ object: 'address', detail: `delete ${a.cidr} from ${this.device}` });
    }
    for (const cidr of wanted) {
      if (held.some((a) => a.cidr === cidr)) continue;
      // No DAD (the address is the node's own by construction) and no prefix route for the /128.
      addAddress(nl, link.index, cidr, familyOf(cidr) === 6 ? { noDad: true, noPrefixRoute: true } : {});
      changes.push({ object: 'address', detail: `add ${cidr} to ${this.device}` });
    }
    return { link, underlay, changes };
  }

  private incompatibility(link: Link, underlayIndex: number, endpoint: string): string | undefined {
    if (link.kind !== 'vxlan') return `it is a ${link.kind ?? 'physical'} device, not vxlan`;
    const v = link.vxlan;
    if (!v) return 'its VXLAN attributes are unreadable';
    if (v.vni !== this.vni) return `vni ${v.vni}, not ${this.vni}`;
    if (v.port !== this.port) return `dstport ${v.port}, not ${this.port}`;
    if (v.local !== endpoint) return `local ${v.local ?? 'unset'}, not ${endpoint}`;
    if (v.link !== underlayIndex) return `lower device #${v.link ?? 'unset'}, not #${underlayIndex}`;
    if (v.learning !== false) return 'learning is on';
    if (v.group !== undefined) return `remote/group ${v.group} set`;
    return undefined;
  }
}
