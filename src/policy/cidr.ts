// Address arithmetic for ipBlock peers (R9): CIDRs as [first, last] intervals of bigints, a cidr
// minus its excepts as the fewest prefixes that cover exactly the rest (the form nft lists an
// interval set in), and containment tests for the evaluators.
import { formatIp, parseCidr, tryParseIp, type ParsedCidr } from '../net/ip.ts';

export interface Interval {
  family: 4 | 6;
  first: bigint;
  last: bigint;
}

const bitsOf = (family: 4 | 6): bigint => (family === 4 ? 32n : 128n);

function toBig(bytes: Uint8Array): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return v;
}

function toBytes(v: bigint, family: 4 | 6): Uint8Array {
  const n = family === 4 ? 4 : 16;
  const out = new Uint8Array(n);
  for (let i = n - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** A CIDR (host bits allowed: the API accepts `10.1.2.3/8` and means 10.0.0.0/8) as an interval;
 * undefined when it does not parse. A bare address is not a CIDR here (the API requires the prefix). */
export function cidrInterval(text: string): Interval | undefined {
  if (typeof text !== 'string' || !text.includes('/')) return undefined;
  let c: ParsedCidr;
  try {
    c = parseCidr(text.trim());
  } catch {
    return undefined;
  }
  const bits = bitsOf(c.family);
  const size = 1n << (bits - BigInt(c.prefixLength));
  const first = (toBig(c.bytes) / size) * size;
  return { family: c.family, first, last: first + size - 1n };
}

/** Canonical text of a CIDR: host bits cleared, RFC 5952. */
export function canonicalCidr(iv: Interval): string {
  const bits = bitsOf(iv.family);
  let len = bits;
  for (let size = iv.last - iv.first + 1n; size > 1n; size >>= 1n) len--;
  return `${formatIp(toBytes(iv.first, iv.family))}/${len}`;
}

/** The fewest prefixes covering [first, last] exactly, as nft lists interval elements (a full-length
 * prefix as a bare address). */
export function intervalToPrefixes(iv: Interval): string[] {
  const bits = bitsOf(iv.family);
  const out: string[] = [];
  let cur = iv.first;
  while (cur <= iv.last) {
    // The largest aligned block starting at cur that fits.
    let size = 1n;
    while (size < 1n << bits && cur % (size * 2n) === 0n && cur + size * 2n - 1n <= iv.last) size *= 2n;
    let len = bits;
    for (let s = size; s > 1n; s >>= 1n) len--;
    const addr = formatIp(toBytes(cur, iv.family));
    out.push(len === bits ? addr : `${addr}/${len}`);
    cur += size;
  }
  return out;
}

/** cidr minus every except, as sorted disjoint intervals. */
export function subtract(cidr: Interval, excepts: readonly Interval[]): Interval[] {
  let parts: Interval[] = [cidr];
  for (const e of excepts) {
    if (e.family !== cidr.family) continue;
    const next: Interval[] = [];
    for (const p of parts) {
      if (e.last < p.first || e.first > p.last) {
        next.push(p);
        continue;
      }
      if (e.first > p.first) next.push({ family: p.family, first: p.first, last: e.first - 1n });
      if (e.last < p.last) next.push({ family: p.family, first: e.last + 1n, last: p.last });
    }
    parts = next;
  }
  return parts.sort((a, b) => (a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
}

/** The address as a number, with its family; undefined when it is not an address. */
export function addressValue(ip: string): { family: 4 | 6; value: bigint } | undefined {
  const p = tryParseIp(ip);
  return p ? { family: p.family, value: toBig(p.bytes) } : undefined;
}

export function intervalContains(iv: Interval, ip: { family: 4 | 6; value: bigint }): boolean {
  return iv.family === ip.family && iv.first <= ip.value && ip.value <= iv.last;
}
