// nft's data types as the kernel stores them: the id nft keeps in NFTA_SET_KEY_TYPE, the length, the
// byte order, and how a value written in nft's syntax ("10.0.0.0/8", 80, "tcp", "veth*") becomes bytes.
// Set keys, element keys and rule matches all go through here, so a set and the rule that looks it up
// can never disagree on an encoding.
import { formatIp, parseCidr, parseIp } from '../../net/ip.ts';
import { NFT_BYTEORDER } from './const.ts';

export interface DataType {
  /** nft's datatype id (src/datatype.h `enum datatypes`). */
  id: number;
  len: number;
  byteorder: keyof typeof NFT_BYTEORDER;
}

export const DATA_TYPES = {
  verdict: { id: 1, len: 0, byteorder: 'invalid' },
  nf_proto: { id: 2, len: 1, byteorder: 'host' },
  ipv4_addr: { id: 7, len: 4, byteorder: 'big' },
  ipv6_addr: { id: 8, len: 16, byteorder: 'big' },
  inet_proto: { id: 12, len: 1, byteorder: 'big' },
  inet_service: { id: 13, len: 2, byteorder: 'big' },
  mark: { id: 19, len: 4, byteorder: 'host' },
  ct_state: { id: 26, len: 4, byteorder: 'host' },
  icmpv6_type: { id: 29, len: 1, byteorder: 'big' },
  fib_addrtype: { id: 38, len: 4, byteorder: 'host' },
  ifname: { id: 41, len: 16, byteorder: 'host' },
} as const satisfies Record<string, DataType>;

export type TypeName = Exclude<keyof typeof DATA_TYPES, 'verdict'>;

/** Bits nft shifts each concatenated type by in NFTA_SET_KEY_TYPE (TYPE_BITS in nft's datatype.h). */
const TYPE_BITS = 6;

export const roundUp4 = (n: number): number => (n + 3) & ~3;

/** NFTA_SET_KEY_TYPE, NFTA_SET_KEY_LEN and the field lengths (NFTA_SET_DESC_CONCAT) of a key. */
export function keyLayout(types: readonly TypeName[]): { typeId: number; len: number; fieldLens: number[] } {
  if (types.length === 0) throw new RangeError('a set key needs at least one type');
  const fieldLens = types.map((t) => DATA_TYPES[t].len);
  const only = types.length === 1 ? (types[0] as TypeName) : undefined;
  if (only) return { typeId: DATA_TYPES[only].id, len: DATA_TYPES[only].len, fieldLens };
  let typeId = 0;
  for (const t of types) typeId = (typeId << TYPE_BITS) | DATA_TYPES[t].id;
  return { typeId: typeId >>> 0, len: fieldLens.reduce((a, l) => a + roundUp4(l), 0), fieldLens };
}

const PROTOCOLS: Record<string, number> = {
  'ipv6-icmp': 58,
  icmp: 1,
  igmp: 2,
  tcp: 6,
  udp: 17,
  gre: 47,
  esp: 50,
  icmpv6: 58,
  sctp: 132,
};
const NFPROTOS: Record<string, number> = { ipv4: 2, ipv6: 10 };
const ICMPV6_TYPES: Record<string, number> = {
  'echo-request': 128,
  'echo-reply': 129,
  'nd-router-solicit': 133,
  'nd-router-advert': 134,
  'nd-neighbor-solicit': 135,
  'nd-neighbor-advert': 136,
  'nd-redirect': 137,
};
export const CT_STATES: Record<string, number> = { invalid: 1, established: 2, related: 4, new: 8, untracked: 64 };
const ADDR_TYPES: Record<string, number> = {
  unspec: 0,
  unicast: 1,
  local: 2,
  broadcast: 3,
  anycast: 4,
  multicast: 5,
  blackhole: 6,
  unreachable: 7,
  prohibit: 8,
};

export type Scalar = string | number;

function named(table: Record<string, number>, what: string, v: Scalar): number {
  if (typeof v === 'number') return v;
  const n = table[v] ?? (/^\d+$/.test(v) ? Number(v) : undefined);
  if (n === undefined) throw new RangeError(`unknown ${what} "${v}"`);
  return n;
}

function uintBE(len: number, v: number): Uint8Array {
  const b = Buffer.alloc(len);
  b.writeUIntBE(v, 0, len);
  return b;
}

function uint32LE(v: number): Uint8Array {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0, 0);
  return b;
}

function address(family: 4 | 6, v: Scalar): Uint8Array {
  const ip = parseIp(String(v));
  if (ip.family !== family) throw new RangeError(`${v} is not an IPv${family} address`);
  return ip.bytes;
}

/** One value of a type, exactly DATA_TYPES[type].len bytes (an ifname is NUL-padded). */
export function encodeScalar(type: TypeName, v: Scalar): Uint8Array {
  switch (type) {
    case 'ipv4_addr':
      return address(4, v);
    case 'ipv6_addr':
      return address(6, v);
    case 'inet_service':
      return uintBE(2, Number(v));
    case 'inet_proto':
      return uintBE(1, named(PROTOCOLS, 'protocol', v));
    case 'nf_proto':
      return uintBE(1, named(NFPROTOS, 'nfproto', v));
    case 'icmpv6_type':
      return uintBE(1, named(ICMPV6_TYPES, 'icmpv6 type', v));
    case 'mark':
      return uint32LE(Number(v));
    case 'ct_state':
      return uint32LE(named(CT_STATES, 'ct state', v));
    case 'fib_addrtype':
      return uint32LE(named(ADDR_TYPES, 'address type', v));
    case 'ifname': {
      const b = Buffer.alloc(16);
      const text = Buffer.from(String(v), 'utf8');
      if (text.length > 15) throw new RangeError(`interface name longer than 15 bytes: ${v}`);
      b.set(text, 0);
      return b;
    }
  }
}

function isName(type: TypeName, text: string): boolean {
  const names: Partial<Record<TypeName, Record<string, number>>> = {
    inet_proto: PROTOCOLS,
    icmpv6_type: ICMPV6_TYPES,
    fib_addrtype: ADDR_TYPES,
  };
  const table = names[type];
  return table !== undefined && text in table;
}

/** An inclusive range [first, last] of one type, from "a-b", a CIDR, or a single value. */
export function encodeRange(type: TypeName, v: Scalar): { first: Uint8Array; last: Uint8Array; prefix?: number } {
  const text = String(v);
  if ((type === 'ipv4_addr' || type === 'ipv6_addr') && text.includes('/')) {
    const c = parseCidr(text);
    if (c.family !== (type === 'ipv4_addr' ? 4 : 6)) throw new RangeError(`${text} is not of type ${type}`);
    const first = Uint8Array.from(c.bytes);
    const last = Uint8Array.from(c.bytes);
    for (let bit = 0; bit < first.length * 8; bit++) {
      const mask = 0x80 >> (bit & 7);
      if (bit < c.prefixLength) continue;
      first[bit >> 3] = (first[bit >> 3] as number) & ~mask;
      last[bit >> 3] = (last[bit >> 3] as number) | mask;
    }
    return { first, last, prefix: c.prefixLength };
  }
  const dash = text.indexOf('-', 1);
  // Some names hold a dash (`ipv6-icmp`, `nd-router-solicit`): a whole name is not a range.
  if (dash > 0 && type !== 'ifname' && !isName(type, text)) {
    return { first: encodeScalar(type, text.slice(0, dash)), last: encodeScalar(type, text.slice(dash + 1)) };
  }
  const one = encodeScalar(type, v);
  return { first: one, last: one };
}

/** bytes + 1 as a big-endian number; undefined when it wraps (the range ends at the top of the space). */
export function successor(bytes: Uint8Array): Uint8Array | undefined {
  const out = Uint8Array.from(bytes);
  for (let i = out.length - 1; i >= 0; i--) {
    if (out[i] !== 0xff) {
      out[i] = (out[i] as number) + 1;
      return out;
    }
    out[i] = 0;
  }
  return undefined;
}

/** Concatenated fields, each padded to 4 bytes (the kernel's register layout). */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + roundUp4(p.length), 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += roundUp4(p.length);
  }
  return out;
}

const TYPE_BY_ID = new Map<number, TypeName>(
  (Object.entries(DATA_TYPES) as Array<[string, DataType]>)
    .filter(([name]) => name !== 'verdict')
    .map(([name, t]) => [t.id, name as TypeName]),
);

/** NFTA_SET_KEY_TYPE back to its types (undefined for a type not in DATA_TYPES). */
export function keyTypesOfId(typeId: number): TypeName[] | undefined {
  const single = TYPE_BY_ID.get(typeId);
  if (single) return [single];
  const out: TypeName[] = [];
  for (let rest = typeId >>> 0; rest > 0; rest = Math.floor(rest / (1 << TYPE_BITS))) {
    const t = TYPE_BY_ID.get(rest & ((1 << TYPE_BITS) - 1));
    if (!t) return undefined;
    out.unshift(t);
  }
  return out.length > 0 ? out : undefined;
}

const NAMES_OF = (table: Record<string, number>) => new Map(Object.entries(table).map(([k, v]) => [v, k]));
const PROTOCOL_NAMES = new Map([...NAMES_OF(PROTOCOLS)].map(([v, k]) => [v, v === 58 ? 'ipv6-icmp' : k]));

/** One value of a type as nft lists it (`10.0.0.1`, `80`, `tcp`); the inverse of encodeScalar. */
export function formatScalar(type: TypeName, b: Uint8Array): string {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  switch (type) {
    case 'ipv4_addr':
      return formatIp(buf.subarray(0, 4));
    case 'ipv6_addr':
      return formatIp(buf.subarray(0, 16));
    case 'inet_service':
      return String(buf.readUInt16BE(0));
    case 'inet_proto':
      return PROTOCOL_NAMES.get(buf[0] as number) ?? String(buf[0]);
    case 'nf_proto':
      return NAMES_OF(NFPROTOS).get(buf[0] as number) ?? String(buf[0]);
    case 'icmpv6_type':
      return NAMES_OF(ICMPV6_TYPES).get(buf[0] as number) ?? String(buf[0]);
    case 'ifname':
      return buf.toString('utf8').replace(/\0.*$/s, '');
    default:
      return String(buf.readUInt32LE(0));
  }
}
