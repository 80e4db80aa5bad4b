// Whether the kernel still holds what the last reconcile left there, without reading it back. The
// periodic resync read every route, neighbour and FDB entry of Strand's and planned against them: at
// 5,000 peers 15,000 entries, ~300 ms of the agent's CPU and tens of MiB of garbage once a minute, the
// largest part of an idle agent's cost (issue 18). rtnetlink announces every change to those entries
// (src/kernel/notifications.ts): a change made by anyone but this agent's own socket to a Strand route
// (its protocol, or a destination it wants), to a neighbour or FDB entry on the VXLAN device, or to
// the devices themselves (a link down or deleted, an address gone: IPv4 drops routes with no
// notification of their own) means drift, and only then is the kernel read. A queue that overflowed
// means drift too. The resync still reads everything on a long timer (FULL_READ_MS, cluster-network).
import { AF, IFF, RTM } from '../kernel/netlink-const.ts';
import type { NlMessage } from '../kernel/netlink-codec.ts';
import { NotificationSocket, RTNLGRP } from '../kernel/notifications.ts';
import { decodeRoute } from '../kernel/routes.ts';
import { STRAND_ROUTE_PROTOCOL, type OwnedEntries, type ReconcileWatch } from './types.ts';

const RT_TABLE_MAIN = 254;
/** Offsets in the message payloads: ifinfomsg's ifi_index, ifaddrmsg's ifa_index; ndmsg's family and ifindex. */
const IFI_INDEX = 4;
const IFI_FLAGS = 8;
const IFA_INDEX = 4;
const NDM_FAMILY = 0;
const NDM_IFINDEX = 4;
/** Links, addresses, routes and neighbours (FDB entries are AF_BRIDGE neighbours). */
const GROUPS = [
  RTNLGRP.LINK,
  RTNLGRP.NEIGH,
  RTNLGRP.IPV4_IFADDR,
  RTNLGRP.IPV4_ROUTE,
  RTNLGRP.IPV6_IFADDR,
  RTNLGRP.IPV6_ROUTE,
];
/** A node's ARP and neighbour-discovery churn on other links lands in the same queue (it is dropped
 * when read): room for thousands of notifications between two looks. */
const RECEIVE_BYTES = 4 * 1024 * 1024;

/** What a reconcile left in the kernel, and the port of the socket it wrote with: notifications of
 * its own requests carry it. */
export interface Owned extends OwnedEntries {
  port: number;
}

/**
 * Whether one notification can mean that what `owned` describes changed. `ownFdb`: a reconcile is
 * writing; the VXLAN driver's FDB notifications carry no port (vxlan_fdb_notify sends 0), so while it
 * writes, the FDB notifications are taken as its own (a change by hand in that window waits for the
 * full read).
 */
export function touchesOwned(m: Pick<NlMessage, 'type' | 'pid' | 'data'>, owned: Owned, ownFdb = false): boolean {
  if (m.pid !== 0 && m.pid === owned.port) return false;
  const d = m.data;
  switch (m.type) {
    // A link deleted or set down takes entries along (IPv4 routes go with no notification of their
    // own); its carrier, operational state and other attributes do not (the kernel announces those
    // on its own after a device comes up). An MTU changed by hand waits for the full read.
    case RTM.DELLINK:
      return d.length >= IFI_INDEX + 4 && owned.links.has(d.readInt32LE(IFI_INDEX));
    case RTM.NEWLINK:
      return (
        d.length >= IFI_FLAGS + 4 &&
        owned.links.has(d.readInt32LE(IFI_INDEX)) &&
        (d.readUInt32LE(IFI_FLAGS) & IFF.UP) === 0
      );
    // An address removed can take routes through it along; one added (an IPv6 link-local address
    // once the device is up) takes nothing.
    case RTM.DELADDR:
      return d.length >= IFA_INDEX + 4 && owned.links.has(d.readUInt32LE(IFA_INDEX));
    case RTM.NEWROUTE:
    case RTM.DELROUTE: {
      if (d.length < 12) return true;
      const r = decodeRoute(m as NlMessage);
      if (!r || r.table !== RT_TABLE_MAIN) return false;
      return r.protocol === STRAND_ROUTE_PROTOCOL || owned.routes.has(r.dst);
    }
    case RTM.NEWNEIGH:
    case RTM.DELNEIGH: {
      if (d.length < NDM_IFINDEX + 4 || owned.entriesOn === undefined) return false;
      if (d.readInt32LE(NDM_IFINDEX) !== owned.entriesOn) return false;
      return !(ownFdb && d[NDM_FAMILY] === AF.BRIDGE);
    }
    default:
      return false;
  }
}

const TYPE_NAMES: Record<number, string> = {
  [RTM.NEWLINK]: 'link changed',
  [RTM.DELLINK]: 'link deleted',
  [RTM.NEWADDR]: 'address added',
  [RTM.DELADDR]: 'address deleted',
  [RTM.NEWROUTE]: 'route added or changed',
  [RTM.DELROUTE]: 'route deleted',
  [RTM.NEWNEIGH]: 'neighbour added or changed',
  [RTM.DELNEIGH]: 'neighbour deleted',
};

/** One notification in words, for the log: what, on which link or to where, and who (netlink port). */
export function describeNotification(m: Pick<NlMessage, 'type' | 'pid' | 'data'>): string {
  const d = m.data;
  let what = TYPE_NAMES[m.type] ?? `message type ${m.type}`;
  if ((m.type === RTM.NEWROUTE || m.type === RTM.DELROUTE) && d.length >= 12) {
    const r = decodeRoute(m as NlMessage);
    if (r) what += ` ${r.dst} (protocol ${r.protocol}${r.oif !== undefined ? `, link ${r.oif}` : ''})`;
  } else if (d.length >= 8) {
    const index = d.readInt32LE(4);
    if (m.type === RTM.NEWNEIGH || m.type === RTM.DELNEIGH) {
      what = `${d[NDM_FAMILY] === AF.BRIDGE ? 'FDB entry' : 'neighbour'} ${what.split(' ').slice(1).join(' ')} on link ${index}`;
    } else what += ` (link ${index})`;
  }
  return `${what}, by ${m.pid === 0 ? 'the kernel' : `netlink port ${m.pid}`}`;
}

export class DriftWatch implements ReconcileWatch {
  private readonly socket: NotificationSocket;
  /** none: nothing known (no reconcile yet, or the last met problems); reading: a reconcile is under
   * way; watching: `owned` is what the last one left. */
  private phase: 'none' | 'reading' | 'watching' = 'none';
  private port = 0;
  private owned: Owned | undefined;
  /** Something of Strand's may have changed since the last read (sticky until the next). */
  private changed = false;
  /** What the first notification that counted said, for the log ("route deleted 10.245.1.0/24 ..."). */
  reason: string | undefined;

  private constructor(socket: NotificationSocket) {
    this.socket = socket;
  }

  /** Subscribes in the caller's network namespace or in `netns`. Throws when it cannot. */
  static open(netns?: string, receiveBytes = RECEIVE_BYTES): DriftWatch {
    return new DriftWatch(NotificationSocket.open(GROUPS, { receiveBytes, ...(netns ? { netns } : {}) }));
  }

  /** A reconcile writing with the socket at `port` begins: what changed before is in what it reads. */
  reading(port: number): void {
    if (port !== this.port) this.socket.ignorePort(port);
    this.socket.drain(() => {});
    this.phase = 'reading';
    this.port = port;
    this.owned = undefined;
    this.changed = false;
    this.reason = undefined;
  }

  /** The reconcile is about to read the kernel's entries, which `entries` describes. */
  owns(entries: OwnedEntries): void {
    if (this.phase !== 'reading') return;
    // What came before, the reconcile's own putting back of a device included (the kernel announces
    // a new device as its own doing), is in what it reads now or has just read.
    this.socket.drain(() => {});
    this.owned = { ...entries, port: this.port };
  }

  /** Between the reconcile's writes: the FDB notifications are taken as its own (they carry no port). */
  keepUp(): void {
    if (this.phase === 'reading' && this.owned) this.look(this.owned, true);
  }

  /** The reconcile ended; `clean`: without problems, so the kernel holds what it wanted. */
  finished(clean: boolean): void {
    const owned = this.owned;
    if (this.phase !== 'reading' || !owned || !clean) {
      this.phase = 'none';
      this.owned = undefined;
      return;
    }
    this.look(owned, true);
    this.phase = 'watching';
  }

  /**
   * Whether the kernel may differ from what the last reconcile left: always before one or after one
   * that met problems, never while one is under way (it reads the kernel itself).
   */
  drifted(): boolean {
    if (this.phase === 'reading') return false;
    if (this.phase === 'none' || !this.owned) {
      this.socket.drain(() => {});
      return true;
    }
    this.look(this.owned, false);
    return this.changed;
  }

  private look(owned: Owned, ownFdb: boolean): void {
    if (this.changed) {
      // Known to need a read already: the queue is only kept short.
      this.socket.drain(() => {});
      return;
    }
    const complete = this.socket.drain((m) => {
      if (this.changed || !touchesOwned(m, owned, ownFdb)) return;
      this.changed = true;
      this.reason = describeNotification(m);
    });
    if (!complete && !this.changed) {
      this.changed = true;
      this.reason = 'notifications were lost (the queue overflowed)';
    }
  }

  close(): void {
    this.socket.close();
  }
}
