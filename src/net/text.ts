// Address and CIDR text: family, validation, canonical form, containment. Shared by configuration,
// results, state files, the datapath and the CLI. Pure: node:net's isIP would load node:net, about
// 3 ms of a pod start under Bun, for a check this small.
import { formatCidr, formatIp, networkOf, parseCidr, tryParseIp, type IpFamily, type ParsedCidr } from './ip.ts';

/** 4 or 6 for an IP address as node:net's isIP reads it (IPv6 with an optional %zone), else 0. */
export function ipFamily(s: string): 0 | 4 | 6 {
  const zone = s.indexOf('%');
  if (zone >= 0) {
    if (!/^[0-9a-zA-Z.:-]+$/.test(s.slice(zone + 1))) return 0;
    return tryParseIp(s.slice(0, zone))?.family === 6 ? 6 : 0;
  }
  return tryParseIp(s)?.family ?? 0;
}

/** "address/prefix" with a prefix length that fits the address family. */
export function isCidr(s: string): boolean {
  const slash = s.indexOf('/');
  if (slash < 0) return false;
  const family = ipFamily(s.slice(0, slash));
  const prefix = s.slice(slash + 1);
  return family !== 0 && /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

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

/** The family of an address already checked (canonical text from normalizeIp): no parse. */
export function knownFamily(ip: string): IpFamily {
  return ip.includes(':') ? 6 : 4;
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
