// Over 400 lines: every link kind's attributes (veth, bridge, VXLAN) encoded and decoded side by side.
// Network devices over rtnetlink (RTM_NEWLINK/DELLINK/GETLINK/SETLINK): veth pairs, bridges, VXLAN
// devices; their state (up, MTU, MAC, master, promisc) and bridge port options (hairpin).
// Encoding and decoding are pure functions exported for unit tests; the operations take a socket.
import { closeSync } from 'node:fs';
import { isKernelError, KernelError } from './errors.ts';
import { formatIp, formatMac, parseIp, parseMac } from '../net/ip.ts';
import { Attrs, ifinfomsg, MessageBuilder, readIfinfomsg, type NlMessage } from './netlink-codec.ts';
import {
  AF,
  IF_OPER,
  IFF,
  IFLA,
  IFLA_BR,
  IFLA_BRPORT,
  IFLA_INFO,
  IFLA_VXLAN,
  NLM_F,
  RTM,
  VETH_INFO,
} from './netlink-const.ts';
import type { NetlinkSocket } from './netlink-socket.ts';
import { openNetns } from './netns.ts';

/** A link by name or by ifindex. */
export type LinkRef = string | number;

/** A network namespace by path (/run/netns/x, /proc/<pid>/ns/net) or as an open file descriptor. */
export type NetnsRef = string | { fd: number };

export type OperState = 'unknown' | 'notpresent' | 'down' | 'lowerlayerdown' | 'testing' | 'dormant' | 'up';
const OPER_STATES: OperState[] = ['unknown', 'notpresent', 'down', 'lowerlayerdown', 'testing', 'dormant', 'up'];

export interface BridgeInfo {
  vlanFiltering: boolean | undefined;
  stpState: number | undefined;
}

export interface BridgePortInfo {
  /** IFLA_BRPORT_MODE: frames may leave by the port they came in on (pod to own Service). */
  hairpin: boolean;
  isolated: boolean;
  learning: boolean | undefined;
  /** STP port state (3 = forwarding). */
  state: number | undefined;
}

export interface VxlanInfo {
  vni: number | undefined;
  port: number | undefined;
  local: string | undefined;
  group: string | undefined;
  learning: boolean | undefined;
  /** ifindex of the underlay device. */
  link: number | undefined;
  ttl: number | undefined;
}

/**
 * The largest packets the stack hands a device in one piece (GSO, sending) and builds from what it
 * receives (GRO). Above 64 KiB is BIG TCP: `gso`/`gro` apply to IPv6 (Linux 5.19+), the `Ipv4` ones to
 * IPv4 (Linux 6.3+). A kernel without an attribute does not report it and ignores it when set.
 */
export interface OffloadSizes {
  gsoMaxSize?: number;
  groMaxSize?: number;
  gsoIpv4MaxSize?: number;
  groIpv4MaxSize?: number;
}

export interface Link {
  index: number;
  name: string;
  /** IFLA_INFO_KIND: "veth", "bridge", "vxlan", "dummy"…; undefined for physical devices and lo. */
  kind: string | undefined;
  mtu: number;
  mac: string | undefined;
  /** ifindex of the bridge (or bond) this link is a port of. */
  master: number | undefined;
  /** ifi_flags (IFF_*). */
  flags: number;
  /** Administratively up (IFF_UP). */
  up: boolean;
  /** Carrier present (IFF_LOWER_UP). */
  lowerUp: boolean;
  operState: OperState;
  /** Promiscuous mode set by a user (IFF_PROMISC as reported by dev_get_flags). */
  promisc: boolean;
  /** IFLA_LINK: for a veth, the peer's ifindex (in the peer's namespace); for a VLAN, the parent. */
  parentIndex: number | undefined;
  /** Set when IFLA_LINK refers to another namespace (an id local to this one). */
  linkNetnsId: number | undefined;
  txqlen: number | undefined;
  /** IFLA_INFO_SLAVE_KIND: "bridge" when this link is a bridge port. */
  portKind: string | undefined;
  bridgePort: BridgePortInfo | undefined;
  bridge: BridgeInfo | undefined;
  vxlan: VxlanInfo | undefined;
  offload: OffloadSizes;
}

interface CommonSpec {
  name: string;
  mtu?: number;
  mac?: string;
  txqlen?: number;
  offload?: OffloadSizes;
  /** Bring it up as it is created. */
  up?: boolean;
  /** Make it a port of this bridge as it is created. */
  master?: LinkRef;
  /** Create it in this namespace rather than the socket's. */
  netns?: NetnsRef;
}

export interface VethPeerSpec {
  name: string;
  /** The peer's namespace; default: the same as the first end. */
  netns?: NetnsRef;
  mtu?: number;
  mac?: string;
  txqlen?: number;
  offload?: OffloadSizes;
  // No `up`: veth_newlink configures the peer before the two ends are joined, so bringing it up there
  // fails with ENOTCONN (veth_open finds no peer). Bring it up afterwards from its own namespace.
}

export interface VethSpec extends CommonSpec {
  kind: 'veth';
  peer: VethPeerSpec;
}

export interface BridgeSpec extends CommonSpec {
  kind: 'bridge';
  vlanFiltering?: boolean;
  /** STP on (1) or off (0). */
  stpState?: number;
  /** Forward delay, in centiseconds (kernel unit: USER_HZ). */
  forwardDelay?: number;
  mcastSnooping?: boolean;
}

export interface VxlanSpec extends CommonSpec {
  kind: 'vxlan';
  vni: number;
  /** UDP destination port (kernel default 8472; IANA 4789). */
  port?: number;
  /** Source address for the underlay (IPv4 or IPv6). */
  local?: string;
  /** Multicast group or a unicast default remote. */
  group?: string;
  /** Learn remote MACs from received packets; off when the agent programs FDB entries. */
  learning?: boolean;
  /** Underlay device. */
  link?: LinkRef;
  ttl?: number;
  tos?: number;
  /** Ageing time of learnt entries, in seconds. */
  ageing?: number;
  udpCsum?: boolean;
  udp6ZeroCsumTx?: boolean;
  udp6ZeroCsumRx?: boolean;
  gbp?: boolean;
}

/** Any other kind that needs no kind-specific data: "dummy", "ifb"… */
export interface PlainLinkSpec extends CommonSpec {
  kind: 'dummy' | 'ifb';
}

export type LinkSpec = VethSpec | BridgeSpec | VxlanSpec | PlainLinkSpec;

export interface LinkChanges {
  up?: boolean;
  mtu?: number;
  mac?: string;
  /** A bridge to attach to, or null to detach. */
  master?: LinkRef | null;
  promisc?: boolean;
  allmulti?: boolean;
  name?: string;
  txqlen?: number;
  offload?: OffloadSizes;
  /** Move the link to another namespace. */
  netns?: NetnsRef;
}

export interface BridgePortChanges {
  hairpin?: boolean;
  isolated?: boolean;
  learning?: boolean;
  unicastFlood?: boolean;
  neighSuppress?: boolean;
}

/** RTEXT_FILTER_SKIP_STATS (Linux 5.2+, ignored before): replies without the ~400 bytes of counters. */
const RTEXT_FILTER_SKIP_STATS = 1 << 3;

export function linkLabel(ref: LinkRef): string {
  return typeof ref === 'number' ? `link #${ref}` : ref;
}

function netnsLabel(ns: NetnsRef): string {
  return typeof ns === 'string' ? ns : `netns fd ${ns.fd}`;
}

// ---- encoding ------------------------------------------------------------------------------------

/** A GETLINK for one link, by name or index. */
export function encodeGetLink(ref: LinkRef): MessageBuilder {
  const m = new MessageBuilder(RTM.GETLINK, 0);
  m.raw(ifinfomsg({ family: AF.UNSPEC, index: typeof ref === 'number' ? ref : 0 }));
  if (typeof ref === 'string') m.str(IFLA.IFNAME, ref);
  m.u32(IFLA.EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  return m;
}

export function encodeDumpLinks(): MessageBuilder {
  const m = new MessageBuilder(RTM.GETLINK, 0);
  m.raw(ifinfomsg({ family: AF.UNSPEC }));
  m.u32(IFLA.EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  return m;
}

function putCommon(
  m: MessageBuilder,
  s: { mtu?: number; mac?: string; txqlen?: number; offload?: OffloadSizes },
): void {
  if (s.mac !== undefined) m.attr(IFLA.ADDRESS, parseMac(s.mac));
  if (s.mtu !== undefined) m.u32(IFLA.MTU, s.mtu);
  if (s.txqlen !== undefined) m.u32(IFLA.TXQLEN, s.txqlen);
  for (const key of OFFLOAD_KEYS) {
    const size = s.offload?.[key];
    if (size !== undefined) m.u32(OFFLOAD_ATTRS[key].attr, size);
  }
}

/** Each offload size's attribute, and iproute2's name for it (in messages). */
const OFFLOAD_ATTRS: Record<keyof OffloadSizes, { attr: number; label: string }> = {
  gsoMaxSize: { attr: IFLA.GSO_MAX_SIZE, label: 'gso_max_size' },
  groMaxSize: { attr: IFLA.GRO_MAX_SIZE, label: 'gro_max_size' },
  gsoIpv4MaxSize: { attr: IFLA.GSO_IPV4_MAX_SIZE, label: 'gso_ipv4_max_size' },
  groIpv4MaxSize: { attr: IFLA.GRO_IPV4_MAX_SIZE, label: 'gro_ipv4_max_size' },
};
export const OFFLOAD_KEYS = Object.keys(OFFLOAD_ATTRS) as (keyof OffloadSizes)[];

/** The sizes `want` names that `have` does not hold already (pure); empty when they agree. */
export function offloadDifference(have: OffloadSizes, want: OffloadSizes): OffloadSizes {
  const diff: OffloadSizes = {};
  for (const key of OFFLOAD_KEYS) {
    const w = want[key];
    if (w !== undefined && have[key] !== undefined && have[key] !== w) diff[key] = w;
  }
  return diff;
}

/**
 * A NEWLINK that creates spec. Namespaces are given as already-open fds (IFLA_NET_NS_FD) and master
 * as an ifindex; resolving names and opening paths is addLink's job.
 */
export function encodeNewLink(
  spec: LinkSpec,
  resolved: { netnsFd?: number; peerNetnsFd?: number; master?: number; vxlanLink?: number },
  flags = NLM_F.CREATE | NLM_F.EXCL,
): MessageBuilder {
  const m = new MessageBuilder(RTM.NEWLINK, flags);
  // ifi_change 0 means "take all of ifi_flags" on creation (rtnl_dev_combine_flags): IFF_UP or nothing.
  m.raw(ifinfomsg({ family: AF.UNSPEC, flags: spec.up ? IFF.UP : 0 }));
  m.str(IFLA.IFNAME, spec.name);
  putCommon(m, spec);
  if (resolved.master !== undefined) m.u32(IFLA.MASTER, resolved.master);
  if (resolved.netnsFd !== undefined) m.u32(IFLA.NET_NS_FD, resolved.netnsFd);
  const info = m.begin(IFLA.LINKINFO);
  // Without a NUL, as iproute2 and vishvananda/netlink send it; the kernel accepts either.
  m.attr(IFLA_INFO.KIND, Buffer.from(spec.kind));
  switch (spec.kind) {
    case 'veth': {
      const data = m.begin(IFLA_INFO.DATA);
      // VETH_INFO_PEER holds a whole ifinfomsg followed by the peer's own IFLA_* attributes.
      const peer = m.begin(VETH_INFO.PEER);
      m.raw(ifinfomsg({ family: AF.UNSPEC }));
      m.str(IFLA.IFNAME, spec.peer.name);
      putCommon(m, spec.peer);
      if (resolved.peerNetnsFd !== undefined) m.u32(IFLA.NET_NS_FD, resolved.peerNetnsFd);
      m.end(peer);
      m.end(data);
      break;
    }
    case 'bridge': {
      const data = m.begin(IFLA_INFO.DATA);
      if (spec.vlanFiltering !== undefined) m.u8(IFLA_BR.VLAN_FILTERING, spec.vlanFiltering ? 1 : 0);
      if (spec.stpState !== undefined) m.u32(IFLA_BR.STP_STATE, spec.stpState);
      if (spec.forwardDelay !== undefined) m.u32(IFLA_BR.FORWARD_DELAY, spec.forwardDelay);
      if (spec.mcastSnooping !== undefined) m.u8(IFLA_BR.MCAST_SNOOPING, spec.mcastSnooping ? 1 : 0);
      m.end(data);
      break;
    }
    case 'vxlan': {
      const data = m.begin(IFLA_INFO.DATA);
      m.u32(IFLA_VXLAN.ID, spec.vni);
      if (spec.port !== undefined) m.be16(IFLA_VXLAN.PORT, spec.port);
      if (spec.local !== undefined) {
        const ip = parseIp(spec.local);
        m.attr(ip.family === 4 ? IFLA_VXLAN.LOCAL : IFLA_VXLAN.LOCAL6, ip.bytes);
      }
      if (spec.group !== undefined) {
        const ip = parseIp(spec.group);
        m.attr(ip.family === 4 ? IFLA_VXLAN.GROUP : IFLA_VXLAN.GROUP6, ip.bytes);
      }
      if (spec.learning !== undefined) m.u8(IFLA_VXLAN.LEARNING, spec.learning ? 1 : 0);
      if (resolved.vxlanLink !== undefined) m.u32(IFLA_VXLAN.LINK, resolved.vxlanLink);
      if (spec.ttl !== undefined) m.u8(IFLA_VXLAN.TTL, spec.ttl);
      if (spec.tos !== undefined) m.u8(IFLA_VXLAN.TOS, spec.tos);
      if (spec.ageing !== undefined) m.u32(IFLA_VXLAN.AGEING, spec.ageing);
      if (spec.udpCsum !== undefined) m.u8(IFLA_VXLAN.UDP_CSUM, spec.udpCsum ? 1 : 0);
      if (spec.udp6ZeroCsumTx !== undefined) m.u8(IFLA_VXLAN.UDP_ZERO_CSUM6_TX, spec.udp6ZeroCsumTx ? 1 : 0);
      if (spec.udp6ZeroCsumRx !== undefined) m.u8(IFLA_VXLAN.UDP_ZERO_CSUM6_RX, spec.udp6ZeroCsumRx ? 1 : 0);
      if (spec.gbp) m.flag(IFLA_VXLAN.GBP);
      m.end(data);
      break;
    }
    default:
      break;
  }
  m.end(info);
  return m;
}

/** A NEWLINK that changes an existing link (by index); flags apply only to the bits in ifi_change. */
export function encodeSetLink(
  index: number,
  changes: LinkChanges,
  resolved: { master?: number; netnsFd?: number },
): MessageBuilder {
  let flags = 0;
  let change = 0;
  const flag = (bit: number, on: boolean | undefined) => {
    if (on === undefined) return;
    change |= bit;
    if (on) flags |= bit;
  };
  flag(IFF.UP, changes.up);
  flag(IFF.PROMISC, changes.promisc);
  flag(IFF.ALLMULTI, changes.allmulti);
  const m = new MessageBuilder(RTM.NEWLINK, 0);
  m.raw(ifinfomsg({ family: AF.UNSPEC, index, flags, change }));
  if (changes.name !== undefined) m.str(IFLA.IFNAME, changes.name);
  putCommon(m, changes);
  if (resolved.master !== undefined) m.u32(IFLA.MASTER, resolved.master);
  if (resolved.netnsFd !== undefined) m.u32(IFLA.NET_NS_FD, resolved.netnsFd);
  return m;
}

/** An AF_BRIDGE SETLINK carrying IFLA_PROTINFO: the bridge's options for one of its ports. */
export function encodeSetBridgePort(index: number, changes: BridgePortChanges): MessageBuilder {
  const m = new MessageBuilder(RTM.SETLINK, 0);
  m.raw(ifinfomsg({ family: AF.BRIDGE, index }));
  const p = m.begin(IFLA.PROTINFO);
  const bool = (type: number, v: boolean | undefined) => {
    if (v !== undefined) m.u8(type, v ? 1 : 0);
  };
  bool(IFLA_BRPORT.MODE, changes.hairpin);
  bool(IFLA_BRPORT.ISOLATED, changes.isolated);
  bool(IFLA_BRPORT.LEARNING, changes.learning);
  bool(IFLA_BRPORT.UNICAST_FLOOD, changes.unicastFlood);
  bool(IFLA_BRPORT.NEIGH_SUPPRESS, changes.neighSuppress);
  m.end(p);
  return m;
}

export function encodeDelLink(ref: LinkRef): MessageBuilder {
  const m = new MessageBuilder(RTM.DELLINK, 0);
  m.raw(ifinfomsg({ family: AF.UNSPEC, index: typeof ref === 'number' ? ref : 0 }));
  if (typeof ref === 'string') m.str(IFLA.IFNAME, ref);
  return m;
}

// ---- decoding ------------------------------------------------------------------------------------

function optBool(v: number | undefined): boolean | undefined {
  return v === undefined ? undefined : v !== 0;
}

/** A NEWLINK message (the answer to GETLINK) as a Link. */
export function decodeLink(msg: NlMessage): Link {
  const h = readIfinfomsg(msg.data);
  const a = new Attrs(msg.data, 16);
  const info = a.nested(IFLA.LINKINFO);
  const kind = info?.str(IFLA_INFO.KIND);
  const portKind = info?.str(IFLA_INFO.SLAVE_KIND);
  const data = info?.nested(IFLA_INFO.DATA);
  const portData = info?.nested(IFLA_INFO.SLAVE_DATA);
  const addr = a.get(IFLA.ADDRESS);
  const oper = a.u8(IFLA.OPERSTATE);

  let bridgePort: BridgePortInfo | undefined;
  if (portKind === 'bridge' && portData) {
    bridgePort = {
      hairpin: portData.u8(IFLA_BRPORT.MODE) === 1,
      isolated: portData.u8(IFLA_BRPORT.ISOLATED) === 1,
      learning: optBool(portData.u8(IFLA_BRPORT.LEARNING)),
      state: portData.u8(IFLA_BRPORT.STATE),
    };
  }
  let bridge: BridgeInfo | undefined;
  if (kind === 'bridge' && data) {
    bridge = { vlanFiltering: optBool(data.u8(IFLA_BR.VLAN_FILTERING)), stpState: data.u32(IFLA_BR.STP_STATE) };
  }
  let vxlan: VxlanInfo | undefined;
  if (kind === 'vxlan' && data) {
    const local = data.get(IFLA_VXLAN.LOCAL) ?? data.get(IFLA_VXLAN.LOCAL6);
    const group = data.get(IFLA_VXLAN.GROUP) ?? data.get(IFLA_VXLAN.GROUP6);
    const notZero = (b: Buffer | undefined) => (b && b.some((x) => x !== 0) ? formatIp(b) : undefined);
    vxlan = {
      vni: data.u32(IFLA_VXLAN.ID),
      port: data.be16(IFLA_VXLAN.PORT),
      local: notZero(local),
      group: notZero(group),
      learning: optBool(data.u8(IFLA_VXLAN.LEARNING)),
      link: data.u32(IFLA_VXLAN.LINK) || undefined,
      ttl: data.u8(IFLA_VXLAN.TTL),
    };
  }
  return {
    index: h.index,
    name: a.str(IFLA.IFNAME) ?? '',
    kind,
    mtu: a.u32(IFLA.MTU) ?? 0,
    mac: addr && addr.length > 0 ? formatMac(addr) : undefined,
    master: a.u32(IFLA.MASTER) || undefined,
    flags: h.flags,
    up: (h.flags & IFF.UP) !== 0,
    lowerUp: (h.flags & IFF.LOWER_UP) !== 0,
    operState: OPER_STATES[oper ?? IF_OPER.UNKNOWN] ?? 'unknown',
    promisc: (h.flags & IFF.PROMISC) !== 0,
    parentIndex: a.s32(IFLA.LINK),
    linkNetnsId: a.s32(IFLA.LINK_NETNSID),
    txqlen: a.u32(IFLA.TXQLEN),
    portKind,
    bridgePort,
    bridge,
    vxlan,
    offload: decodeOffload(a),
  };
}

/** The sizes the kernel reports; one it does not know is left out rather than read as 0. */
function decodeOffload(a: Attrs): OffloadSizes {
  const sizes: OffloadSizes = {};
  for (const key of OFFLOAD_KEYS) {
    const size = a.u32(OFFLOAD_ATTRS[key].attr);
    if (size !== undefined) sizes[key] = size;
  }
  return sizes;
}

// ---- operations ----------------------------------------------------------------------------------

/** The link, or a KernelError (ENODEV) naming it when there is none. */
export function getLink(nl: NetlinkSocket, ref: LinkRef): Link {
  const replies = nl.request(encodeGetLink(ref), () => `find ${linkLabel(ref)}`);
  const msg = replies.find((m) => m.type === RTM.NEWLINK);
  if (!msg) throw new Error(`no answer describing ${linkLabel(ref)}`);
  return decodeLink(msg);
}

/** The link, or undefined when it does not exist. */
export function findLink(nl: NetlinkSocket, ref: LinkRef): Link | undefined {
  try {
    return getLink(nl, ref);
  } catch (err) {
    if (isKernelError(err, 'ENODEV')) return undefined;
    throw err;
  }
}

export interface LinkFilter {
  kind?: string;
  /** Only ports of this bridge. */
  master?: LinkRef;
}

export function listLinks(nl: NetlinkSocket, filter: LinkFilter = {}): Link[] {
  const master = filter.master === undefined ? undefined : linkIndex(nl, filter.master);
  const links = nl
    .dump(encodeDumpLinks(), 'list links')
    .filter((m) => m.type === RTM.NEWLINK)
    .map(decodeLink);
  return links.filter(
    (l) => (filter.kind === undefined || l.kind === filter.kind) && (master === undefined || l.master === master),
  );
}

/** The ifindex of a link; a number is taken as one already. */
export function linkIndex(nl: NetlinkSocket, ref: LinkRef): number {
  return typeof ref === 'number' ? ref : getLink(nl, ref).index;
}

function describeSpec(spec: LinkSpec): string {
  const details: string[] = [];
  if (spec.netns !== undefined) details.push(`created in ${netnsLabel(spec.netns)}`);
  if (spec.kind === 'veth')
    details.push(`peer ${spec.peer.name}${spec.peer.netns !== undefined ? ` in ${netnsLabel(spec.peer.netns)}` : ''}`);
  if (spec.kind === 'vxlan') details.push(`vni ${spec.vni}`);
  if (spec.master !== undefined) details.push(`master ${linkLabel(spec.master)}`);
  return `add ${spec.kind} ${spec.name}${details.length ? ` (${details.join(', ')})` : ''}`;
}

/** Opens the namespaces a request names, and closes the ones it opened when done. */
class FdScope {
  private readonly opened: number[] = [];

  fd(ns: NetnsRef | undefined): number | undefined {
    if (ns === undefined) return undefined;
    if (typeof ns !== 'string') return ns.fd;
    const fd = openNetns(ns);
    this.opened.push(fd);
    return fd;
  }

  close(): void {
    for (const fd of this.opened.splice(0)) {
      try {
        closeSync(fd);
      } catch {
        // already closed: nothing to release
      }
    }
  }
}

export interface AddLinkOptions {
  /** Fail with EEXIST when the name is taken (default); false replaces nothing but tolerates nothing
   * either: without NLM_F_EXCL the kernel changes an existing link of the same name in place. */
  exclusive?: boolean;
  /**
   * Ask the kernel to echo the link it made (NLM_F_ECHO, honoured for RTM_NEWLINK since Linux 6.2):
   * its index and, for a veth, the peer's (parentIndex), without a lookup by name each afterwards.
   */
  echo?: boolean;
}

/**
 * Creates a link in the socket's namespace (or spec.netns). A veth's peer is created directly in
 * spec.peer.netns, so "container end in the pod, host end here" and the other way round are one call.
 * With opts.echo, returns the link as the kernel made it, or undefined from a kernel that does not echo.
 */
export function addLink(nl: NetlinkSocket, spec: LinkSpec, opts: AddLinkOptions = {}): Link | undefined {
  const fds = new FdScope();
  try {
    const resolved: { netnsFd?: number; peerNetnsFd?: number; master?: number; vxlanLink?: number } = {};
    const netnsFd = fds.fd(spec.netns);
    if (netnsFd !== undefined) resolved.netnsFd = netnsFd;
    if (spec.kind === 'veth') {
      const peerFd = fds.fd(spec.peer.netns);
      if (peerFd !== undefined) resolved.peerNetnsFd = peerFd;
    }
    if (spec.master !== undefined) resolved.master = linkIndex(nl, spec.master);
    if (spec.kind === 'vxlan' && spec.link !== undefined) resolved.vxlanLink = linkIndex(nl, spec.link);
    const flags = (opts.exclusive === false ? NLM_F.CREATE : NLM_F.CREATE | NLM_F.EXCL) | (opts.echo ? NLM_F.ECHO : 0);
    const answer = nl.request(encodeNewLink(spec, resolved, flags), () => describeSpec(spec));
    if (!opts.echo) return undefined;
    const made = answer.filter((m) => m.type === RTM.NEWLINK).map(decodeLink);
    // Created in another namespace, the echo describes it there: only a link of the name asked for
    // here is taken as the answer.
    return made.find((l) => l.name === spec.name && spec.netns === undefined);
  } finally {
    fds.close();
  }
}

function describeChanges(ref: LinkRef, c: LinkChanges): string {
  const parts: string[] = [];
  if (c.name !== undefined) parts.push(`name ${c.name}`);
  if (c.mtu !== undefined) parts.push(`mtu ${c.mtu}`);
  if (c.mac !== undefined) parts.push(`address ${c.mac}`);
  if (c.master === null) parts.push('nomaster');
  else if (c.master !== undefined) parts.push(`master ${linkLabel(c.master)}`);
  if (c.promisc !== undefined) parts.push(`promisc ${c.promisc ? 'on' : 'off'}`);
  if (c.allmulti !== undefined) parts.push(`allmulticast ${c.allmulti ? 'on' : 'off'}`);
  if (c.txqlen !== undefined) parts.push(`txqlen ${c.txqlen}`);
  for (const key of OFFLOAD_KEYS) {
    if (c.offload?.[key] !== undefined) parts.push(`${OFFLOAD_ATTRS[key].label} ${c.offload[key]}`);
  }
  if (c.netns !== undefined) parts.push(`netns ${netnsLabel(c.netns)}`);
  if (c.up !== undefined) parts.push(c.up ? 'up' : 'down');
  return `set ${linkLabel(ref)} ${parts.join(' ')}`;
}

/** Changes a link in one request; the kernel applies netns, MAC, MTU, master, then flags. */
export function setLink(nl: NetlinkSocket, ref: LinkRef, changes: LinkChanges): void {
  const fds = new FdScope();
  try {
    const index = linkIndex(nl, ref);
    const resolved: { master?: number; netnsFd?: number } = {};
    if (changes.master === null) resolved.master = 0;
    else if (changes.master !== undefined) resolved.master = linkIndex(nl, changes.master);
    const netnsFd = fds.fd(changes.netns);
    if (netnsFd !== undefined) resolved.netnsFd = netnsFd;
    nl.request(encodeSetLink(index, changes, resolved), () => describeChanges(ref, changes));
  } finally {
    fds.close();
  }
}

export function setLinkUp(nl: NetlinkSocket, ref: LinkRef): void {
  setLink(nl, ref, { up: true });
}

export function setLinkDown(nl: NetlinkSocket, ref: LinkRef): void {
  setLink(nl, ref, { up: false });
}

/** Bridge port options (hairpin, isolated, learning…) of a link that is a bridge port. */
export function setBridgePort(nl: NetlinkSocket, ref: LinkRef, changes: BridgePortChanges): void {
  const index = linkIndex(nl, ref);
  const what = Object.entries(changes)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k} ${v ? 'on' : 'off'}`)
    .join(' ');
  nl.request(encodeSetBridgePort(index, changes), () => `set bridge port ${linkLabel(ref)} ${what}`);
}

/** Deletes a link (a veth takes its peer with it). */
export function deleteLink(nl: NetlinkSocket, ref: LinkRef): void {
  nl.request(encodeDelLink(ref), () => `delete ${linkLabel(ref)}`);
}

/** Deletes a link if it exists; returns whether it did. */
export function deleteLinkIfExists(nl: NetlinkSocket, ref: LinkRef): boolean {
  try {
    deleteLink(nl, ref);
    return true;
  } catch (err) {
    if (isKernelError(err, 'ENODEV')) return false;
    throw err;
  }
}

const ETIMEDOUT = 110;
// Made on first use: SharedArrayBuffer does not exist while the executable's startup snapshot is built.
let sleeper: Int32Array | undefined;

/** Blocks the thread for ms milliseconds (the plugin is synchronous; nothing else is waiting). */
export function sleepSync(ms: number): void {
  sleeper ??= new Int32Array(new SharedArrayBuffer(4));
  Atomics.wait(sleeper, 0, 0, ms);
}

export interface WaitOptions {
  /** Give up after this long (default 5000 ms). */
  timeoutMs?: number;
  /** Time between looks (default 20 ms). */
  intervalMs?: number;
}

/**
 * Polls a link until ready(link) holds and returns it; a KernelError (ETIMEDOUT) naming the link and
 * what was awaited otherwise. The reference bridge plugin waits this way for the host veth to be
 * oper-up before it reports success (its "bridge port in error state").
 */
export function waitForLink(
  nl: NetlinkSocket,
  ref: LinkRef,
  what: string,
  ready: (link: Link) => boolean,
  opts: WaitOptions = {},
): Link {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const intervalMs = opts.intervalMs ?? 20;
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const link = getLink(nl, ref);
    if (ready(link)) return link;
    if (performance.now() >= deadline) {
      throw new KernelError({
        errno: ETIMEDOUT,
        operation: `see ${linkLabel(ref)} ${what} within ${timeoutMs} ms`,
        netns: nl.netns,
      });
    }
    sleepSync(Math.min(intervalMs, Math.max(1, deadline - performance.now())));
  }
}

/** Waits for a link to be operationally up (IFLA_OPERSTATE up, or unknown with carrier, as for lo). */
export function waitForOperUp(nl: NetlinkSocket, ref: LinkRef, opts: WaitOptions = {}): Link {
  return waitForLink(
    nl,
    ref,
    'operationally up',
    (l) => l.operState === 'up' || (l.operState === 'unknown' && l.up && l.lowerUp),
    opts,
  );
}
