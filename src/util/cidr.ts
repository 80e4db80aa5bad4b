// CIDR text checks shared by configuration and state files (pure, node:net only: cheap to load).
import { isIP } from 'node:net';

/** "address/prefix" with a prefix length that fits the address family. */
export function isCidr(s: string): boolean {
  const slash = s.indexOf('/');
  if (slash < 0) return false;
  const family = isIP(s.slice(0, slash));
  const prefix = s.slice(slash + 1);
  return family !== 0 && /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}
