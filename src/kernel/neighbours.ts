// Neighbour entries (ARP/NDP) and bridge forwarding database entries, both RTM_NEWNEIGH/DELNEIGH/
// GETNEIGH: family AF_INET/AF_INET6 for neighbours, AF_BRIDGE for the FDB. For a VXLAN device an FDB
// entry maps a remote VTEP MAC to its underlay IP (NDA_DST), the per-peer entry flannel's backend adds
// next to one route and one neighbour.
import { formatIp, formatMac, parseIp, parseMac, type IpFamily } from '../net/ip.ts';
import { linkIndex, linkLabel, type LinkRef } from './links.ts';
import { Attrs, MessageBuilder, ndmsg, readNdmsg, type NlMessage } from './netlink-codec.ts';
import { AF, NDA, NLM_F, NTF, NUD, RTM } from './netlink-const.ts';
import type { NetlinkSocket } from './netlink-socket.ts';

export type NeighbourState = 'permanent' | 'noarp' | 'reachable' | 'stale';

const STATES: Record<NeighbourState, number> = {
  permanent: NUD.PERMANENT,
  noarp: NUD.NOARP,
  reachable: NUD.REACHABLE,
  stale: NUD.STALE,
};

export interface NeighbourSpec {
  link: LinkRef;
  ip: string;
  /** Needed to add; ignored when deleting. */
  mac?: string;
  /** Default permanent: a static entry that never ages out. */
  state?: NeighbourState;
}

export interface Neighbour {
  family: IpFamily;
  index: number;
  ip: string;
  mac: string | undefined;
  /** NUD_* bits. */
  state: number;
  /** NTF_* bits. */
  flags: number;
  permanent: boolean;
}

export interface FdbSpec {
  link: LinkRef;
  mac: string;
  /** Remote VTEP (VXLAN): where frames for mac are sent. */
  dst?: string;
  vni?: number;
  /** Remote UDP port (VXLAN). */
  port?: number;
  vlan?: number;
  /** Put the entry in the master bridge's FDB (NTF_MASTER) rather than the device's own (NTF_SELF,
   * the default, which is what a VXLAN device needs). */
  master?: boolean;
  /** Default: permanent for the device's own table (VXLAN accepts only permanent or reachable),
   * static (noarp) for a bridge's. */
  state?: NeighbourState;
}

export interface FdbEntry {
  index: number;
  mac: string;
  dst: string | undefined;
  vni: number | undefined;
  port: number | undefined;
  vlan: number | undefined;
  /** ifindex of the bridge when the entry is in a bridge's FDB. */
  master: number | undefined;
  state: number;
  flags: number;
  permanent: boolean;
  /** In the device's own table (NTF_SELF). */
  self: boolean;
}

export interface NeighbourOptions {
  /** Update an existing entry (NLM_F_REPLACE) rather than failing with EEXIST. */
  replace?: boolean;
  /** FDB only: add another destination for the same MAC (NLM_F_APPEND), as `bridge fdb append`
   * does for the all-zeros MAC of a VXLAN device flooding to several VTEPs. */
  append?: boolean;
}

function createFlags(opts: NeighbourOptions): number {
  if (opts.replace) return NLM_F.CREATE | NLM_F.REPLACE;
  if (opts.append) return NLM_F.CREATE | NLM_F.APPEND;
  return NLM_F.CREATE | NLM_F.EXCL;
}

export function encodeNeighbour(type: number, index: number, spec: NeighbourSpec, flags = 0): MessageBuilder {
  const ip = parseIp(spec.ip);
  const m = new MessageBuilder(type, flags);
  const state = type === RTM.NEWNEIGH ? STATES[spec.state ?? 'permanent'] : 0;
  m.raw(ndmsg({ family: ip.family === 4 ? AF.INET : AF.INET6, index, state }));
  m.attr(NDA.DST, ip.bytes);
  if (type === RTM.NEWNEIGH && spec.mac !== undefined) m.attr(NDA.LLADDR, parseMac(spec.mac));
  return m;
}

export function encodeFdb(type: number, index: number, spec: FdbSpec, flags = 0): MessageBuilder {
  const m = new MessageBuilder(type, flags);
  const defaultState: NeighbourState = spec.master ? 'noarp' : 'permanent';
  m.raw(
    ndmsg({
      family: AF.BRIDGE,
      index,
      state: STATES[spec.state ?? defaultState],
      flags: spec.master ? NTF.MASTER : NTF.SELF,
    }),
  );
  m.attr(NDA.LLADDR, parseMac(spec.mac));
  if (spec.dst !== undefined) m.attr(NDA.DST, parseIp(spec.dst).bytes);
  if (spec.vni !== undefined) m.u32(NDA.VNI, spec.vni);
  if (spec.port !== undefined) m.be16(NDA.PORT, spec.port);
  if (spec.vlan !== undefined) m.u16(NDA.VLAN, spec.vlan);
  return m;
}

export function encodeDumpNeighbours(family: number): MessageBuilder {
  const m = new MessageBuilder(RTM.GETNEIGH, 0);
  m.raw(ndmsg({ family }));
  return m;
}

export function decodeNeighbour(msg: NlMessage): Neighbour | undefined {
  const h = readNdmsg(msg.data);
  if (h.family !== AF.INET && h.family !== AF.INET6) return undefined;
  const a = new Attrs(msg.data, 12);
  const dst = a.get(NDA.DST);
  if (!dst) return undefined;
  const ll = a.get(NDA.LLADDR);
  return {
    family: h.family === AF.INET ? 4 : 6,
    index: h.index,
    ip: formatIp(dst),
    mac: ll ? formatMac(ll) : undefined,
    state: h.state,
    flags: h.flags,
    permanent: (h.state & NUD.PERMANENT) !== 0,
  };
}

export function decodeFdb(msg: NlMessage): FdbEntry | undefined {
  const h = readNdmsg(msg.data);
  if (h.family !== AF.BRIDGE) return undefined;
  const a = new Attrs(msg.data, 12);
  const ll = a.get(NDA.LLADDR);
  if (!ll) return undefined;
  const dst = a.get(NDA.DST);
  return {
    index: h.index,
    mac: formatMac(ll),
    dst: dst ? formatIp(dst) : undefined,
    vni: a.u32(NDA.VNI),
    port: a.be16(NDA.PORT),
    vlan: a.u16(NDA.VLAN),
    master: a.u32(NDA.MASTER),
    state: h.state,
    flags: h.flags,
    permanent: (h.state & NUD.PERMANENT) !== 0,
    self: (h.flags & NTF.SELF) !== 0,
  };
}

/** Adds a static ARP (IPv4) or NDP (IPv6) entry: ip is at mac on link. */
export function addNeighbour(nl: NetlinkSocket, spec: NeighbourSpec, opts: NeighbourOptions = {}): void {
  if (spec.mac === undefined) throw new TypeError(`neighbour ${spec.ip} needs a MAC address`);
  const index = linkIndex(nl, spec.link);
  const verb = opts.replace ? 'replace' : 'add';
  nl.request(
    encodeNeighbour(RTM.NEWNEIGH, index, spec, createFlags({ replace: opts.replace ?? false })),
    () => `${verb} neighbour ${spec.ip} lladdr ${spec.mac} on ${linkLabel(spec.link)}`,
  );
}

export function deleteNeighbour(nl: NetlinkSocket, spec: NeighbourSpec): void {
  const index = linkIndex(nl, spec.link);
  nl.request(
    encodeNeighbour(RTM.DELNEIGH, index, spec),
    () => `delete neighbour ${spec.ip} on ${linkLabel(spec.link)}`,
  );
}

export interface NeighbourFilter {
  link?: LinkRef;
  family?: IpFamily;
}

export function listNeighbours(nl: NetlinkSocket, filter: NeighbourFilter = {}): Neighbour[] {
  const index = filter.link === undefined ? undefined : linkIndex(nl, filter.link);
  const family = filter.family === undefined ? AF.UNSPEC : filter.family === 4 ? AF.INET : AF.INET6;
  const out: Neighbour[] = [];
  for (const m of nl.dump(encodeDumpNeighbours(family), 'list neighbours')) {
    if (m.type !== RTM.NEWNEIGH) continue;
    const n = decodeNeighbour(m);
    if (!n || n.flags & NTF.PROXY) continue;
    if (index !== undefined && n.index !== index) continue;
    if (filter.family !== undefined && n.family !== filter.family) continue;
    out.push(n);
  }
  return out;
}

function describeFdb(spec: FdbSpec): string {
  let s = `${spec.mac} dev ${linkLabel(spec.link)}`;
  if (spec.dst !== undefined) s += ` dst ${spec.dst}`;
  if (spec.vni !== undefined) s += ` vni ${spec.vni}`;
  return s;
}

export function addFdbEntry(nl: NetlinkSocket, spec: FdbSpec, opts: NeighbourOptions = {}): void {
  const index = linkIndex(nl, spec.link);
  const verb = opts.replace ? 'replace' : opts.append ? 'append' : 'add';
  nl.request(encodeFdb(RTM.NEWNEIGH, index, spec, createFlags(opts)), () => `${verb} fdb entry ${describeFdb(spec)}`);
}

/** Deletes an FDB entry; with dst, only that destination of the MAC (VXLAN may hold several). */
export function deleteFdbEntry(nl: NetlinkSocket, spec: FdbSpec): void {
  const index = linkIndex(nl, spec.link);
  nl.request(encodeFdb(RTM.DELNEIGH, index, spec), () => `delete fdb entry ${describeFdb(spec)}`);
}

export interface FdbFilter {
  /** Entries of this device (a VXLAN device, or a bridge port). */
  link?: LinkRef;
  /** Entries in this bridge's table. */
  master?: LinkRef;
}

export function listFdbEntries(nl: NetlinkSocket, filter: FdbFilter = {}): FdbEntry[] {
  const index = filter.link === undefined ? undefined : linkIndex(nl, filter.link);
  const master = filter.master === undefined ? undefined : linkIndex(nl, filter.master);
  const out: FdbEntry[] = [];
  for (const m of nl.dump(encodeDumpNeighbours(AF.BRIDGE), 'list fdb entries')) {
    if (m.type !== RTM.NEWNEIGH) continue;
    const e = decodeFdb(m);
    if (!e) continue;
    if (index !== undefined && e.index !== index) continue;
    if (master !== undefined && e.master !== master) continue;
    out.push(e);
  }
  return out;
}
