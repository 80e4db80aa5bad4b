// Address arithmetic for the host-local-compatible IPAM, pure: parsing and printing addresses the
// way Go's net package does (the on-disk file names must be byte-identical to host-local's),
// range canonicalisation and validation (reference allocator/range.go, range_set.go), containment,
// and the round-robin iteration order (reference allocator.go RangeIter). IPv6 needs 128-bit
// arithmetic, so every address is a bigint. Parsing and printing are src/net/ip.ts's (pure;
// test/unit/ipam-range.test.ts holds them to what the ip-address package does): loading ip-address
// was about 3 ms of every pod start under Bun.
import { formatIp as formatBytes, tryParseIp, type IpFamily } from '../net/ip.ts';

/** The IPAM's name for net/'s IpFamily. */
export type Family = IpFamily;

export interface IpAddr {
  readonly family: Family;
  readonly value: bigint;
}

export interface Subnet {
  readonly family: Family;
  /** The network address (host bits zero). */
  readonly network: bigint;
  readonly prefix: number;
}

/** One canonical range: every field filled in and checked (reference Range after Canonicalize). */
export interface Range {
  readonly subnet: Subnet;
  readonly rangeStart: IpAddr;
  readonly rangeEnd: IpAddr;
  readonly gateway: IpAddr;
}

/** One address per range set is allocated (CNI spec checklist §9: `[[v4…],[v6…]]` is dual-stack). */
export type RangeSet = readonly Range[];

/** A range as written in a configuration, before canonicalisation. */
export interface RangeInput {
  subnet: string;
  rangeStart?: string;
  rangeEnd?: string;
  gateway?: string;
}

/** A configuration mistake in a range; the message is the reference's wording. */
export class RangeConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RangeConfigError';
  }
}

const BITS: Record<Family, number> = { 4: 32, 6: 128 };

export function bitsOf(family: Family): number {
  return BITS[family];
}

function allOnes(family: Family): bigint {
  return (1n << BigInt(BITS[family])) - 1n;
}

function hostMask(family: Family, prefix: number): bigint {
  return (1n << BigInt(BITS[family] - prefix)) - 1n;
}

/**
 * Parses an address without prefix. An IPv4-mapped IPv6 address (::ffff:a.b.c.d) becomes IPv4, as
 * Go's To4() canonicalisation does in the reference (canonicalizeIP), so both name its file alike.
 */
export function parseIp(text: string): IpAddr | undefined {
  const ip = text.includes('/') || text.includes('%') ? undefined : parsedIp(text);
  if (!ip) return undefined;
  if (ip.family === 6 && ip.value >> 32n === 0xffffn) return { family: 4, value: ip.value & 0xffffffffn };
  return ip;
}

/** The address as written (IPv4-mapped IPv6 stays IPv6), or undefined. */
function parsedIp(text: string): IpAddr | undefined {
  const p = tryParseIp(text);
  if (!p) return undefined;
  let value = 0n;
  for (const b of p.bytes) value = (value << 8n) | BigInt(b);
  return { family: p.family, value };
}

function bytesOf(value: bigint, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = length - 1; i >= 0; i--) {
    out[i] = Number(value & 0xffn);
    value >>= 8n;
  }
  return out;
}

/**
 * The text Go's net.IP.String() prints: dotted decimal for IPv4, RFC 5952 for IPv6 (lower case,
 * the longest run of zero groups compressed). host-local names each reservation file this way.
 */
export function formatIp(ip: IpAddr): string {
  if (ip.family === 4) {
    const v = Number(ip.value);
    return `${(v >>> 24) & 255}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
  }
  // Go prints an IPv4-mapped IPv6 address as IPv4; parseIp never yields one, but a computed
  // address (the end of a ::ffff:0:0/96 subnet) could.
  if (ip.value >> 32n === 0xffffn) return formatIp({ family: 4, value: ip.value & 0xffffffffn });
  return formatBytes(bytesOf(ip.value, 16));
}

export function ipEquals(a: IpAddr, b: IpAddr): boolean {
  return a.family === b.family && a.value === b.value;
}

/** CIDR "addr/prefix" with the address as given (host bits may be set: validation is the caller's). */
export function parseCidr(text: string): { ip: IpAddr; prefix: number } | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const addrText = text.slice(0, slash);
  const prefixText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  // A CIDR keeps the family it was written in: Go's ParseCIDR of "::ffff:10.0.0.0/104" is IPv6.
  const ip = addrText.includes('%') ? undefined : parsedIp(addrText);
  if (!ip || prefix > BITS[ip.family]) return undefined;
  return { ip, prefix };
}

export function subnetString(subnet: Subnet): string {
  return `${formatIp({ family: subnet.family, value: subnet.network })}/${subnet.prefix}`;
}

/** The highest address of the subnet (the IPv4 broadcast address). */
export function subnetLast(subnet: Subnet): bigint {
  return subnet.network | hostMask(subnet.family, subnet.prefix);
}

export function subnetContains(subnet: Subnet, ip: IpAddr): boolean {
  return ip.family === subnet.family && ip.value >= subnet.network && ip.value <= subnetLast(subnet);
}

/** Parses a subnet that must name a network (no host bits), as a configured range's `subnet`. */
export function parseSubnet(text: string): Subnet {
  const cidr = parseCidr(text);
  if (!cidr) throw new RangeConfigError(`invalid CIDR address: ${text}`);
  const { ip, prefix } = cidr;
  // Go canonicalises an IPv4-mapped network address to IPv4 while its mask stays IPv6-sized, and
  // the reference then refuses it; its addresses would also be named as IPv4 on disk.
  if (ip.family === 6 && ip.value >> 32n === 0xffffn)
    throw new RangeConfigError(`IPNet IP and Mask version mismatch in ${text}`);
  // Reference range.go: a /31 or /32 (IPv6 /127, /128) leaves nothing to hand out.
  if (prefix > BITS[ip.family] - 2) throw new RangeConfigError(`Network ${text} too small to allocate from`);
  const network = ip.value & ~hostMask(ip.family, prefix) & allOnes(ip.family);
  if (network !== ip.value) {
    throw new RangeConfigError(
      `Network has host bits set. For a subnet mask of length ${prefix} the network address is ${formatIp({ family: ip.family, value: network })}`,
    );
  }
  return { family: ip.family, network, prefix };
}

function parseRangeIp(field: string, text: string): IpAddr {
  const ip = parseIp(text);
  if (!ip) throw new RangeConfigError(`${field} "${text}" is not an IP address`);
  return ip;
}

/**
 * Fills in and checks one range (reference Range.Canonicalize): gateway = network+1,
 * rangeStart = network+1 (the gateway is skipped by the iterator, not by the range),
 * rangeEnd = broadcast-1 for IPv4 and the last address for IPv6.
 */
export function canonicalizeRange(input: RangeInput): Range {
  const subnet = parseSubnet(input.subnet);
  const net = subnetString(subnet);
  const at = (value: bigint): IpAddr => ({ family: subnet.family, value });
  let gateway = at(subnet.network + 1n);
  if (input.gateway !== undefined) {
    gateway = parseRangeIp('gateway', input.gateway);
    // The current reference accepts a gateway outside the subnet (it no longer checks), but one of
    // the other family can only be a mistake.
    if (gateway.family !== subnet.family) {
      throw new RangeConfigError(`gateway ${formatIp(gateway)} is not the same address family as network ${net}`);
    }
  }
  let rangeStart = at(subnet.network + 1n);
  if (input.rangeStart !== undefined) {
    rangeStart = parseRangeIp('rangeStart', input.rangeStart);
    if (!subnetContains(subnet, rangeStart))
      throw new RangeConfigError(`RangeStart ${formatIp(rangeStart)} not in network ${net}`);
  }
  let rangeEnd = at(subnet.family === 4 ? subnetLast(subnet) - 1n : subnetLast(subnet));
  if (input.rangeEnd !== undefined) {
    rangeEnd = parseRangeIp('rangeEnd', input.rangeEnd);
    if (!subnetContains(subnet, rangeEnd))
      throw new RangeConfigError(`RangeEnd ${formatIp(rangeEnd)} not in network ${net}`);
  }
  // The reference does not check this, and its iterator then walks the whole address space.
  if (rangeStart.value > rangeEnd.value) {
    throw new RangeConfigError(
      `RangeStart ${formatIp(rangeStart)} is after RangeEnd ${formatIp(rangeEnd)} in network ${net}`,
    );
  }
  return { subnet, rangeStart, rangeEnd, gateway };
}

/** Is `ip` an address of the range, rangeStart and rangeEnd included (reference Range.Contains)? */
export function rangeContains(range: Range, ip: IpAddr): boolean {
  return ip.family === range.subnet.family && ip.value >= range.rangeStart.value && ip.value <= range.rangeEnd.value;
}

export function rangeFor(set: RangeSet, ip: IpAddr): Range | undefined {
  return set.find((r) => rangeContains(r, ip));
}

export function rangeSetContains(set: RangeSet, ip: IpAddr): boolean {
  return rangeFor(set, ip) !== undefined;
}

export function rangesOverlap(a: Range, b: Range): boolean {
  if (a.subnet.family !== b.subnet.family) return false;
  return a.rangeStart.value <= b.rangeEnd.value && b.rangeStart.value <= a.rangeEnd.value;
}

export function rangeSetsOverlap(a: RangeSet, b: RangeSet): boolean {
  return a.some((ra) => b.some((rb) => rangesOverlap(ra, rb)));
}

/** "start-end", the reference Range.String(). */
export function rangeString(range: Range): string {
  return `${formatIp(range.rangeStart)}-${formatIp(range.rangeEnd)}`;
}

/** Ranges joined with ",", the reference RangeSet.String() used in its error messages. */
export function rangeSetString(set: RangeSet): string {
  return set.map(rangeString).join(',');
}

export function familyOfSet(set: RangeSet): Family {
  const first = set[0];
  if (!first) throw new RangeConfigError('empty range set');
  return first.subnet.family;
}

/** Canonicalises every range of a set and checks the set (reference RangeSet.Canonicalize). */
export function canonicalizeRangeSet(inputs: readonly RangeInput[]): RangeSet {
  if (inputs.length === 0) throw new RangeConfigError('empty range set');
  const set = inputs.map(canonicalizeRange);
  const family = familyOfSet(set);
  if (set.some((r) => r.subnet.family !== family)) throw new RangeConfigError('mixed address families');
  for (let i = 0; i < set.length; i++) {
    for (let j = i + 1; j < set.length; j++) {
      const a = set[i] as Range;
      const b = set[j] as Range;
      if (rangesOverlap(a, b)) throw new RangeConfigError(`subnets ${rangeString(a)} and ${rangeString(b)} overlap`);
    }
  }
  return set;
}

/** The address after `ip`, wrapping at the end of the family's space (Go ip.NextIP). */
export function nextIp(ip: IpAddr): IpAddr {
  return { family: ip.family, value: (ip.value + 1n) & allOnes(ip.family) };
}

export interface Candidate {
  ip: IpAddr;
  range: Range;
}

/**
 * The addresses to try, in host-local's order (reference allocator.go GetIter/Next): start after
 * `lastReserved` when it lies in the set, else at the first range's start; run to each range's end,
 * move on to the next range's start, wrap around from the last range to the first, skip every
 * range's gateway, and stop after one full cycle. `lastReserved` itself comes last, so a released
 * address is reused only after everything else was tried (a crash-looping pod gets a new IP).
 */
export function* roundRobin(set: RangeSet, lastReserved?: IpAddr): Generator<Candidate> {
  const n = set.length;
  if (n === 0) return;
  let idx = 0;
  let cur: bigint | undefined;
  let start: bigint | undefined;
  if (lastReserved) {
    const found = set.findIndex((r) => rangeContains(r, lastReserved));
    if (found >= 0) {
      idx = found;
      cur = lastReserved.value;
    }
  }
  for (;;) {
    let range = set[idx] as Range;
    if (cur === undefined) {
      cur = range.rangeStart.value;
      start = cur;
    } else {
      if (cur === range.rangeEnd.value) {
        idx = (idx + 1) % n;
        range = set[idx] as Range;
        cur = range.rangeStart.value;
      } else {
        cur += 1n;
      }
      if (start === undefined) start = cur;
      else if (cur === start) return;
    }
    if (cur === range.gateway.value) continue;
    yield { ip: { family: range.subnet.family, value: cur }, range };
  }
}

/** How many addresses a range can hand out: rangeStart..rangeEnd, without its gateway. */
export function rangeCapacity(range: Range): bigint {
  const size = range.rangeEnd.value - range.rangeStart.value + 1n;
  return rangeContains(range, range.gateway) ? size - 1n : size;
}

export function rangeSetCapacity(set: RangeSet): bigint {
  return set.reduce((sum, r) => sum + rangeCapacity(r), 0n);
}

/** Is `ip` allocatable from the set: in one of its ranges and not that range's gateway? */
export function isAllocatable(set: RangeSet, ip: IpAddr): boolean {
  const range = rangeFor(set, ip);
  return range !== undefined && !ipEquals(range.gateway, ip);
}

/** The address with the prefix length of its range's subnet, as an IPAM result carries it. */
export function addressWithPrefix(ip: IpAddr, range: Range): string {
  return `${formatIp(ip)}/${range.subnet.prefix}`;
}

/** The family of a plain CIDR or address text ("10.0.0.0/24", "fd00::1"), or undefined. */
export function familyOfText(text: string): Family | undefined {
  const cidr = parseCidr(text);
  if (cidr) return cidr.ip.family;
  return parseIp(text)?.family;
}
