// IP and MAC addresses as the kernel holds them (network-order bytes) and as people write them.
// IPv6 text follows RFC 5952 (lower case, longest zero run compressed), which is also what `ip -j`
// and the reference plugins print, so addresses compare as strings.

export type IpFamily = 4 | 6;

export interface ParsedIp {
  family: IpFamily;
  bytes: Uint8Array;
}

export interface ParsedCidr extends ParsedIp {
  prefixLength: number;
}

/**
 * A dotted-quad IPv4 address as a 32-bit number, or -1 for anything else: four decimal parts of
 * 0-255, no leading zeros (they would read as octal to inet_aton). Allocates nothing: the agent reads
 * every pod's address with it at start (50,000 at a time) and the nf_tables encoder every element.
 */
export function ipv4Word(text: string): number {
  const n = text.length;
  if (n < 7 || n > 15) return -1;
  let word = 0;
  let parts = 0;
  let i = 0;
  while (parts < 4) {
    const start = i;
    let v = 0;
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c < 48 || c > 57) break;
      v = v * 10 + (c - 48);
      i++;
    }
    const digits = i - start;
    if (digits === 0 || digits > 3 || v > 255 || (digits > 1 && text.charCodeAt(start) === 48)) return -1;
    word = word * 256 + v;
    parts++;
    if (parts < 4) {
      if (i >= n || text.charCodeAt(i) !== 46) return -1;
      i++;
    }
  }
  return i === n ? word : -1;
}

function parseIpv4(text: string): Uint8Array | undefined {
  const word = ipv4Word(text);
  if (word < 0) return undefined;
  return new Uint8Array([word >>> 24, (word >>> 16) & 255, (word >>> 8) & 255, word & 255]);
}

function parseIpv6(text: string): Uint8Array | undefined {
  if (text.length < 2 || text.length > 45) return undefined;
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groups = (s: string): number[] | undefined => {
    if (s === '') return [];
    const out: number[] = [];
    const parts = s.split(':');
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (i === parts.length - 1 && p.includes('.')) {
        const v4 = parseIpv4(p);
        if (!v4) return undefined;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return undefined;
        out.push(parseInt(p, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return undefined;
  let all: number[];
  if (halves.length === 2) {
    const missing = 8 - head.length - tail.length;
    if (missing < 1) return undefined;
    all = [...head, ...new Array<number>(missing).fill(0), ...tail];
  } else {
    all = head;
  }
  if (all.length !== 8) return undefined;
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[2 * i] = all[i]! >> 8;
    out[2 * i + 1] = all[i]! & 0xff;
  }
  return out;
}

/** Parses an IPv4 or IPv6 address; undefined when it is neither. */
export function tryParseIp(text: string): ParsedIp | undefined {
  const v4 = parseIpv4(text);
  if (v4) return { family: 4, bytes: v4 };
  const v6 = text.includes(':') ? parseIpv6(text) : undefined;
  if (v6) return { family: 6, bytes: v6 };
  return undefined;
}

export function parseIp(text: string): ParsedIp {
  const ip = tryParseIp(text);
  if (!ip) throw new TypeError(`invalid IP address ${JSON.stringify(text)}`);
  return ip;
}

/** Parses "10.1.2.3/24" or "2001:db8::1/64"; a bare address gets the full prefix length. */
export function parseCidr(text: string): ParsedCidr {
  const slash = text.indexOf('/');
  const ip = parseIp(slash < 0 ? text : text.slice(0, slash));
  const max = ip.family === 4 ? 32 : 128;
  if (slash < 0) return { ...ip, prefixLength: max };
  const p = text.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > max) {
    throw new TypeError(`invalid prefix length in ${JSON.stringify(text)}`);
  }
  return { ...ip, prefixLength: Number(p) };
}

export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  if (bytes.length !== 16) throw new TypeError(`an IP address has 4 or 16 bytes, not ${bytes.length}`);
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((bytes[2 * i]! << 8) | bytes[2 * i + 1]!);
  // IPv4-mapped addresses keep the dotted tail (RFC 5952 §5).
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `::ffff:${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  }
  // The longest run of two or more zero groups, the first one on a tie, becomes "::".
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number) =>
    g
      .slice(from, to)
      .map((x) => x.toString(16))
      .join(':');
  if (bestStart < 0) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLen, 8)}`;
}

export function formatCidr(bytes: Uint8Array, prefixLength: number): string {
  return `${formatIp(bytes)}/${prefixLength}`;
}

/** The address with all host bits cleared. */
export function networkOf(bytes: Uint8Array, prefixLength: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    const bits = Math.max(0, Math.min(8, prefixLength - 8 * i));
    out[i] = bytes[i]! & ((0xff00 >> bits) & 0xff);
  }
  return out;
}

/** True when two prefixes share any address (the shorter prefix decides). */
export function cidrsOverlap(a: string, b: string): boolean {
  const x = parseCidr(a);
  const y = parseCidr(b);
  if (x.family !== y.family) return false;
  const bits = Math.min(x.prefixLength, y.prefixLength);
  const nx = networkOf(x.bytes, bits);
  const ny = networkOf(y.bytes, bits);
  return nx.every((v, i) => v === ny[i]);
}

/**
 * The subnet's first host address, "network + 1" ("10.244.1.5/24" → "10.244.1.1"): the gateway the
 * reference bridge plugin and host-local assume when none is given.
 */
export function firstHost(cidr: string): string {
  const c = parseCidr(cidr);
  const net = networkOf(c.bytes, c.prefixLength);
  net[net.length - 1] = (net[net.length - 1] as number) + 1;
  return formatIp(net);
}

/** The IPv4 broadcast address of a prefix (all host bits set). */
export function broadcastOf(bytes: Uint8Array, prefixLength: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    const bits = Math.max(0, Math.min(8, prefixLength - 8 * i));
    out[i] = bytes[i]! | (0xff >> bits);
  }
  return out;
}

/** The value of a hex digit's char code, -1 for any other. */
function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const lower = c | 0x20;
  return lower >= 97 && lower <= 102 ? lower - 87 : -1;
}

/** Six pairs of hex digits separated by ':' or '-'. By char code: every Node of a 5,000-node cluster
 * has one, read on each pass (split and a regular expression per pair took 40 ms of such a pass). */
export function parseMac(text: string): Uint8Array {
  const out = new Uint8Array(6);
  let ok = text.length === 17;
  for (let i = 0; ok && i < 6; i++) {
    const at = 3 * i;
    const hi = hexDigit(text.charCodeAt(at));
    const lo = hexDigit(text.charCodeAt(at + 1));
    const sep = text.charCodeAt(at + 2);
    ok = hi >= 0 && lo >= 0 && (i === 5 || sep === 58 || sep === 45);
    out[i] = (hi << 4) | lo;
  }
  if (!ok) throw new TypeError(`invalid MAC address ${JSON.stringify(text)}`);
  return out;
}

/** Lower-case colon-separated hex, the form `ip` prints and the CNI result carries. */
export function formatMac(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i++) {
    if (i > 0) out += ':';
    out += bytes[i]!.toString(16).padStart(2, '0');
  }
  return out;
}
