// Interface addresses over rtnetlink (RTM_NEWADDR/DELADDR/GETADDR), IPv4 and IPv6.
import { broadcastOf, formatCidr, formatIp, parseCidr, type IpFamily } from '../net/ip.ts';
import { KernelError } from './errors.ts';
import { linkIndex, linkLabel, sleepSync, type LinkRef, type WaitOptions } from './links.ts';
import { Attrs, ifaddrmsg, MessageBuilder, readIfaddrmsg, type NlMessage } from './netlink-codec.ts';
import { AF, IFA, IFA_F, NLM_F, RT_SCOPE, RTM } from './netlink-const.ts';
import type { NetlinkSocket } from './netlink-socket.ts';

export type Scope = 'universe' | 'site' | 'link' | 'host' | 'nowhere' | number;

export function scopeNumber(scope: Scope): number {
  if (typeof scope === 'number') return scope;
  return RT_SCOPE[scope.toUpperCase() as keyof typeof RT_SCOPE];
}

export interface Address {
  family: IpFamily;
  /** The address itself (IFA_LOCAL for IPv4, IFA_ADDRESS for IPv6). */
  address: string;
  prefixLength: number;
  /** address/prefixLength, e.g. "10.244.1.5/24". */
  cidr: string;
  index: number;
  scope: number;
  /** IFA_F_* (from IFA_FLAGS when present: it has the bits above 8). */
  flags: number;
  label: string | undefined;
  broadcast: string | undefined;
  /** The other end of a point-to-point address, when it differs from address. */
  peer: string | undefined;
  permanent: boolean;
  /** IPv6 duplicate address detection still running. */
  tentative: boolean;
  dadFailed: boolean;
  deprecated: boolean;
}

export interface AddressOptions {
  /** Update the address if present (NLM_F_REPLACE) rather than failing with EEXIST. */
  replace?: boolean;
  /** IPv6: skip duplicate address detection (IFA_F_NODAD). */
  noDad?: boolean;
  /** Do not add the prefix route for the address's subnet (IFA_F_NOPREFIXROUTE). */
  noPrefixRoute?: boolean;
  scope?: Scope;
  label?: string;
  /** IPv4 broadcast: computed from the prefix by default (as the reference plugins' netlink.AddrAdd
   * does), an explicit address, or false for none. */
  broadcast?: string | false;
  /** Point-to-point peer address. */
  peer?: string;
}

const familyAf = (f: IpFamily) => (f === 4 ? AF.INET : AF.INET6);

export function encodeAddress(
  type: number,
  index: number,
  cidr: string,
  opts: AddressOptions = {},
  flags = 0,
): MessageBuilder {
  const c = parseCidr(cidr);
  let ifaFlags = 0;
  if (opts.noDad) ifaFlags |= IFA_F.NODAD;
  if (opts.noPrefixRoute) ifaFlags |= IFA_F.NOPREFIXROUTE;
  let scope = opts.scope === undefined ? RT_SCOPE.UNIVERSE : scopeNumber(opts.scope);
  // iproute2 puts 127.0.0.0/8 addresses in host scope unless told otherwise; so do we.
  if (opts.scope === undefined && c.family === 4 && c.bytes[0] === 127) scope = RT_SCOPE.HOST;
  const m = new MessageBuilder(type, flags);
  m.raw(ifaddrmsg({ family: familyAf(c.family), prefixLength: c.prefixLength, flags: ifaFlags & 0xff, scope, index }));
  m.attr(IFA.LOCAL, c.bytes);
  m.attr(IFA.ADDRESS, opts.peer !== undefined ? parseCidr(opts.peer).bytes : c.bytes);
  if (type === RTM.NEWADDR) {
    if (c.family === 4 && opts.broadcast !== false && opts.peer === undefined) {
      if (typeof opts.broadcast === 'string') m.attr(IFA.BROADCAST, parseCidr(opts.broadcast).bytes);
      else if (c.prefixLength < 31) m.attr(IFA.BROADCAST, broadcastOf(c.bytes, c.prefixLength));
    }
    if (opts.label !== undefined) m.str(IFA.LABEL, opts.label);
    if (ifaFlags !== 0) m.u32(IFA.FLAGS, ifaFlags);
  }
  return m;
}

export function encodeDumpAddresses(family?: IpFamily): MessageBuilder {
  const m = new MessageBuilder(RTM.GETADDR, 0);
  m.raw(ifaddrmsg({ family: family === undefined ? AF.UNSPEC : familyAf(family) }));
  return m;
}

export function decodeAddress(msg: NlMessage): Address | undefined {
  const h = readIfaddrmsg(msg.data);
  if (h.family !== AF.INET && h.family !== AF.INET6) return undefined;
  const a = new Attrs(msg.data, 8);
  const local = a.get(IFA.LOCAL);
  const address = a.get(IFA.ADDRESS);
  const own = local ?? address;
  if (!own) return undefined;
  const flags = a.u32(IFA.FLAGS) ?? h.flags;
  const brd = a.get(IFA.BROADCAST);
  const peer = local && address && !local.equals(address) ? formatIp(address) : undefined;
  return {
    family: h.family === AF.INET ? 4 : 6,
    address: formatIp(own),
    prefixLength: h.prefixLength,
    cidr: formatCidr(own, h.prefixLength),
    index: h.index,
    scope: h.scope,
    flags,
    label: a.str(IFA.LABEL),
    broadcast: brd ? formatIp(brd) : undefined,
    peer,
    permanent: (flags & IFA_F.PERMANENT) !== 0,
    tentative: (flags & IFA_F.TENTATIVE) !== 0,
    dadFailed: (flags & IFA_F.DADFAILED) !== 0,
    deprecated: (flags & IFA_F.DEPRECATED) !== 0,
  };
}

/** Adds cidr (e.g. "10.244.1.5/24", "fd00::5/64") to a link. EEXIST when present, unless replace. */
export function addAddress(nl: NetlinkSocket, link: LinkRef, cidr: string, opts: AddressOptions = {}): void {
  const index = linkIndex(nl, link);
  const flags = NLM_F.CREATE | (opts.replace ? NLM_F.REPLACE : NLM_F.EXCL);
  nl.request(encodeAddress(RTM.NEWADDR, index, cidr, opts, flags), () => `add address ${cidr} to ${linkLabel(link)}`);
}

/** Removes cidr from a link; EADDRNOTAVAIL when it is not there. */
export function deleteAddress(nl: NetlinkSocket, link: LinkRef, cidr: string): void {
  const index = linkIndex(nl, link);
  nl.request(encodeAddress(RTM.DELADDR, index, cidr), () => `delete address ${cidr} from ${linkLabel(link)}`);
}

export interface AddressFilter {
  link?: LinkRef;
  family?: IpFamily;
}

export function listAddresses(nl: NetlinkSocket, filter: AddressFilter = {}): Address[] {
  const index = filter.link === undefined ? undefined : linkIndex(nl, filter.link);
  const what = filter.link === undefined ? 'list addresses' : `list addresses of ${linkLabel(filter.link)}`;
  const out: Address[] = [];
  for (const m of nl.dump(encodeDumpAddresses(filter.family), what)) {
    if (m.type !== RTM.NEWADDR) continue;
    const a = decodeAddress(m);
    if (!a) continue;
    if (index !== undefined && a.index !== index) continue;
    if (filter.family !== undefined && a.family !== filter.family) continue;
    out.push(a);
  }
  return out;
}

/**
 * Waits until no IPv6 address on the link is still tentative (duplicate address detection running),
 * so that routes via a v6 gateway can be added; the reference bridge plugin waits up to 5 s the same
 * way. Fails with EADDRNOTAVAIL when DAD finds a duplicate, ETIMEDOUT when it does not settle.
 */
export function waitForDad(nl: NetlinkSocket, link: LinkRef, opts: WaitOptions = {}): void {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const intervalMs = opts.intervalMs ?? 20;
  const deadline = performance.now() + timeoutMs;
  const index = linkIndex(nl, link);
  for (;;) {
    const v6 = listAddresses(nl, { link: index, family: 6 });
    const failed = v6.find((a) => a.dadFailed);
    if (failed) {
      throw new KernelError({
        errno: 99 /* EADDRNOTAVAIL */,
        operation: `use ${failed.cidr} on ${linkLabel(link)}`,
        netns: nl.netns,
        kernelMessage: 'duplicate address detected',
      });
    }
    if (!v6.some((a) => a.tentative)) return;
    if (performance.now() >= deadline) {
      throw new KernelError({
        errno: 110 /* ETIMEDOUT */,
        operation: `see IPv6 duplicate address detection finish on ${linkLabel(link)} within ${timeoutMs} ms`,
        netns: nl.netns,
      });
    }
    sleepSync(Math.min(intervalMs, Math.max(1, deadline - performance.now())));
  }
}
