// Address arithmetic the backends need: prefixes as network addresses, containment and overlap,
// and the VTEP address of a pod CIDR.
import { formatCidr, formatIp, networkOf, parseCidr, tryParseIp, type IpFamily, type ParsedCidr } from '../../kernel/index.ts';

/** The family of an address or CIDR, undefined when it is neither. */
export function familyOf(text: string): IpFamily | undefined {
  const slash = text.indexOf('/');
  return tryParseIp(slash < 0 ? text : text.slice(0, slash))?.family;
}

/** A CIDR with its host bits cleared ("10.244.1.5/24" → "10.244.1.0/24"); undefined when malformed. */
export function normalizeCidr(text: string): string | undefined {
  let c: ParsedCidr;
  try {
    c = parseCidr(text);
  } catch {
    return undefined;
  }
  if (!text.includes('/')) return undefined;
  return formatCidr(networkOf(c.bytes, c.prefixLength), c.prefixLength);
}

/** An address in canonical form (RFC 5952 for IPv6), undefined when malformed. */
export function normalizeIp(text: string): string | undefined {
  const ip = tryParseIp(text);
  return ip ? formatIp(ip.bytes) : undefined;
}

function prefixMatches(a: Uint8Array, b: Uint8Array, bits: number): boolean {
  if (a.length !== b.length) return false;
  const na = networkOf(a, bits);
  const nb = networkOf(b, bits);
  return na.every((x, i) => x === nb[i]);
}

/** True when ip lies inside cidr (same family). */
export function cidrContains(cidr: string, ip: string): boolean {
  const c = parseCidr(cidr);
  const a = tryParseIp(ip);
  return a !== undefined && prefixMatches(c.bytes, a.bytes, c.prefixLength);
}

/** True when the two prefixes share any address. */
export function cidrsOverlap(a: string, b: string): boolean {
  const x = parseCidr(a);
  const y = parseCidr(b);
  return prefixMatches(x.bytes, y.bytes, Math.min(x.prefixLength, y.prefixLength));
}

/**
 * The VTEP address of a node for one of its pod CIDRs: the network address itself ("10.244.2.0"),
 * as flannel uses. It is never a pod's or the bridge gateway's (.1), and peers can compute it from
 * the pod CIDR alone, so it needs no annotation of its own.
 */
export function vtepAddress(podCidr: string): string {
  const c = parseCidr(podCidr);
  return formatIp(networkOf(c.bytes, c.prefixLength));
}

/** The VTEP address as the VXLAN device holds it: "10.244.2.0/32", "fd00:2::/128". */
export function vtepHostCidr(podCidr: string): string {
  const c = parseCidr(podCidr);
  return formatCidr(networkOf(c.bytes, c.prefixLength), c.family === 4 ? 32 : 128);
}
