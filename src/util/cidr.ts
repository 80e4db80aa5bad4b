// IP and CIDR text checks shared by configuration, results and state files. Pure: node:net's isIP
// would load node:net, about 3 ms of a pod start under Bun, for a check this small.
import { tryParseIp } from '../kernel/ip.ts';

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
