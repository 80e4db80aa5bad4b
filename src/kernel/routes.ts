// Routes over rtnetlink (RTM_NEWROUTE/DELROUTE/GETROUTE), IPv4 and IPv6, in any table.
import { scopeNumber, type Scope } from './addresses.ts';
import { formatCidr, formatIp, parseCidr, parseIp, type IpFamily } from '../net/ip.ts';
import { linkIndex, linkLabel, type LinkRef } from './links.ts';
import { Attrs, MessageBuilder, readRtmsg, rtmsg, type NlMessage } from './netlink-codec.ts';
import { AF, NLM_F, RT_SCOPE, RT_TABLE, RTA, RTAX, RTM, RTN, RTNH_F, RTPROT } from './netlink-const.ts';
import type { NetlinkSocket } from './netlink-socket.ts';

export type RouteType =
  | 'unicast'
  | 'local'
  | 'broadcast'
  | 'anycast'
  | 'multicast'
  | 'blackhole'
  | 'unreachable'
  | 'prohibit'
  | 'throw';

export interface RouteSpec {
  /** "default", a CIDR ("10.244.2.0/24", "fd00:2::/64") or a host address. */
  dst: string;
  /** Needed only when dst is "default" and there is no gateway to tell the family from. */
  family?: IpFamily;
  gateway?: string;
  /** Output device. */
  oif?: LinkRef;
  /** Preferred source address (RTA_PREFSRC). */
  src?: string;
  /** Default: link when there is no gateway (directly connected), host for local routes, else universe. */
  scope?: Scope;
  /** Routing table; default main (254). */
  table?: number;
  /** RTA_PRIORITY, the route metric. */
  metric?: number;
  /** Path MTU for the route (RTAX_MTU). */
  mtu?: number;
  /** Advertised TCP MSS (RTAX_ADVMSS). */
  advmss?: number;
  /** Who installed it (rtm_protocol); default RTPROT_BOOT, as `ip route add` uses. */
  protocol?: number;
  type?: RouteType;
  /** Gateway reachable on oif even though no prefix says so (RTNH_F_ONLINK). */
  onlink?: boolean;
}

export interface Route {
  family: IpFamily;
  /** Always a CIDR; "0.0.0.0/0" or "::/0" for a default route. */
  dst: string;
  gateway: string | undefined;
  oif: number | undefined;
  src: string | undefined;
  scope: number;
  table: number;
  metric: number | undefined;
  mtu: number | undefined;
  advmss: number | undefined;
  protocol: number;
  type: number;
  flags: number;
}

export interface RouteOptions {
  /** Change the route if one with the same key exists (NLM_F_REPLACE). */
  replace?: boolean;
  /** Add another next hop to an existing route (NLM_F_APPEND; IPv6 makes it multipath). */
  append?: boolean;
}

const ROUTE_TYPES: Record<RouteType, number> = {
  unicast: RTN.UNICAST,
  local: RTN.LOCAL,
  broadcast: RTN.BROADCAST,
  anycast: RTN.ANYCAST,
  multicast: RTN.MULTICAST,
  blackhole: RTN.BLACKHOLE,
  unreachable: RTN.UNREACHABLE,
  prohibit: RTN.PROHIBIT,
  throw: RTN.THROW,
};
/** RTM_F_CLONED: a cached clone (IPv6 exceptions), not a configured route. */
const RTM_F_CLONED = 0x200;

function destination(spec: RouteSpec): { family: IpFamily; bytes: Uint8Array | undefined; prefixLength: number } {
  if (spec.dst === 'default') {
    const family = spec.family ?? (spec.gateway !== undefined ? parseIp(spec.gateway).family : 4);
    return { family, bytes: undefined, prefixLength: 0 };
  }
  const c = parseCidr(spec.dst);
  return { family: c.family, bytes: c.prefixLength === 0 ? undefined : c.bytes, prefixLength: c.prefixLength };
}

/** "10.244.2.0/24 via 10.0.0.2 dev eth0 table 100 metric 10" for error messages. */
export function describeRoute(spec: RouteSpec): string {
  let s = spec.dst;
  if (spec.gateway !== undefined) s += ` via ${spec.gateway}`;
  if (spec.oif !== undefined) s += ` dev ${linkLabel(spec.oif)}`;
  if (spec.table !== undefined) s += ` table ${spec.table}`;
  if (spec.metric !== undefined) s += ` metric ${spec.metric}`;
  return s;
}

/** A NEWROUTE or DELROUTE; oif already resolved to an ifindex. */
export function encodeRoute(type: number, spec: RouteSpec, oif: number | undefined, flags = 0): MessageBuilder {
  const dst = destination(spec);
  const table = spec.table ?? RT_TABLE.MAIN;
  const isAdd = type === RTM.NEWROUTE;
  const rtype = spec.type !== undefined ? ROUTE_TYPES[spec.type] : isAdd ? RTN.UNICAST : RTN.UNSPEC;
  let scope: number;
  if (spec.scope !== undefined) scope = scopeNumber(spec.scope);
  else if (!isAdd)
    scope = RT_SCOPE.NOWHERE; // the kernel's wildcard when deleting (fib_table_delete)
  else if (rtype === RTN.LOCAL) scope = RT_SCOPE.HOST;
  else if ((rtype === RTN.UNICAST || rtype === RTN.UNSPEC) && spec.gateway === undefined) scope = RT_SCOPE.LINK;
  else scope = RT_SCOPE.UNIVERSE;
  const m = new MessageBuilder(type, flags);
  m.raw(
    rtmsg({
      family: dst.family === 4 ? AF.INET : AF.INET6,
      dstLength: dst.prefixLength,
      // rtm_table has 8 bits; tables above 255 go in RTA_TABLE with RT_TABLE_COMPAT here.
      table: table < 256 ? table : 252,
      protocol: isAdd ? (spec.protocol ?? RTPROT.BOOT) : (spec.protocol ?? RTPROT.UNSPEC),
      scope,
      type: rtype,
      flags: spec.onlink ? RTNH_F.ONLINK : 0,
    }),
  );
  if (dst.bytes) m.attr(RTA.DST, dst.bytes);
  m.u32(RTA.TABLE, table);
  if (spec.gateway !== undefined) {
    const gw = parseIp(spec.gateway);
    if (gw.family !== dst.family) throw new TypeError(`gateway ${spec.gateway} is not of the family of ${spec.dst}`);
    m.attr(RTA.GATEWAY, gw.bytes);
  }
  if (oif !== undefined) m.u32(RTA.OIF, oif);
  if (spec.src !== undefined) m.attr(RTA.PREFSRC, parseIp(spec.src).bytes);
  if (spec.metric !== undefined) m.u32(RTA.PRIORITY, spec.metric);
  if (isAdd && (spec.mtu !== undefined || spec.advmss !== undefined)) {
    const metrics = m.begin(RTA.METRICS);
    if (spec.mtu !== undefined) m.u32(RTAX.MTU, spec.mtu);
    if (spec.advmss !== undefined) m.u32(RTAX.ADVMSS, spec.advmss);
    m.end(metrics);
  }
  return m;
}

export function encodeDumpRoutes(family?: IpFamily): MessageBuilder {
  const m = new MessageBuilder(RTM.GETROUTE, 0);
  m.raw(rtmsg({ family: family === undefined ? AF.UNSPEC : family === 4 ? AF.INET : AF.INET6 }));
  return m;
}

export function decodeRoute(msg: NlMessage): Route | undefined {
  const h = readRtmsg(msg.data);
  if (h.family !== AF.INET && h.family !== AF.INET6) return undefined;
  const family: IpFamily = h.family === AF.INET ? 4 : 6;
  const a = new Attrs(msg.data, 12);
  const dst = a.get(RTA.DST) ?? new Uint8Array(family === 4 ? 4 : 16);
  const gw = a.get(RTA.GATEWAY);
  const src = a.get(RTA.PREFSRC);
  const metrics = a.nested(RTA.METRICS);
  return {
    family,
    dst: formatCidr(dst, h.dstLength),
    gateway: gw ? formatIp(gw) : undefined,
    oif: a.u32(RTA.OIF),
    src: src ? formatIp(src) : undefined,
    scope: h.scope,
    table: a.u32(RTA.TABLE) ?? h.table,
    metric: a.u32(RTA.PRIORITY),
    mtu: metrics?.u32(RTAX.MTU),
    advmss: metrics?.u32(RTAX.ADVMSS),
    protocol: h.protocol,
    type: h.type,
    flags: h.flags,
  };
}

function resolveOif(nl: NetlinkSocket, spec: RouteSpec): number | undefined {
  return spec.oif === undefined ? undefined : linkIndex(nl, spec.oif);
}

/** Adds a route; EEXIST when one with the same destination, table, tos and metric exists. */
export function addRoute(nl: NetlinkSocket, spec: RouteSpec, opts: RouteOptions = {}): void {
  let flags = NLM_F.CREATE;
  if (opts.replace) flags |= NLM_F.REPLACE;
  else if (opts.append) flags |= NLM_F.APPEND;
  else flags |= NLM_F.EXCL;
  const verb = opts.replace ? 'replace' : 'add';
  nl.request(
    encodeRoute(RTM.NEWROUTE, spec, resolveOif(nl, spec), flags),
    () => `${verb} route ${describeRoute(spec)}`,
  );
}

/** Adds the route or changes the existing one with the same key. */
export function replaceRoute(nl: NetlinkSocket, spec: RouteSpec): void {
  addRoute(nl, spec, { replace: true });
}

/** Deletes the first route matching spec; fields left out match anything. ESRCH when none does. */
export function deleteRoute(nl: NetlinkSocket, spec: RouteSpec): void {
  nl.request(encodeRoute(RTM.DELROUTE, spec, resolveOif(nl, spec)), () => `delete route ${describeRoute(spec)}`);
}

export interface RouteFilter {
  family?: IpFamily;
  /** A table number, or "all"; default main. */
  table?: number | 'all';
  oif?: LinkRef;
}

/** Configured routes (no cached clones), by default those of the main table. */
export function listRoutes(nl: NetlinkSocket, filter: RouteFilter = {}): Route[] {
  const oif = filter.oif === undefined ? undefined : linkIndex(nl, filter.oif);
  const table = filter.table ?? RT_TABLE.MAIN;
  const out: Route[] = [];
  for (const m of nl.dump(encodeDumpRoutes(filter.family), 'list routes')) {
    if (m.type !== RTM.NEWROUTE) continue;
    const r = decodeRoute(m);
    if (!r || r.flags & RTM_F_CLONED) continue;
    if (filter.family !== undefined && r.family !== filter.family) continue;
    if (table !== 'all' && r.table !== table) continue;
    if (oif !== undefined && r.oif !== oif) continue;
    out.push(r);
  }
  return out;
}
