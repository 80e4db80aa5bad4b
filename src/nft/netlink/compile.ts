// nft's rule grammar → kernel expressions, the way nft itself linearises them (checked against
// `nft --debug=netlink`): a match loads a field into a register (after the implicit dependency nft
// adds in an inet table, e.g. `meta nfproto ipv4` before `ip saddr`) and compares it; a set or map
// lookup loads a concatenation into consecutive 32-bit registers; statements follow in order.
import type { Expr, Verdict } from './expr.ts';
import { NF_NAT_RANGE, NFT_FIB_F, NFT_REG_1, NFT_REG32_00, NFT_REG32_COUNT, NFT_REG_VERDICT } from './const.ts';
import { DATA_TYPES, encodeRange, encodeScalar, roundUp4, type Scalar, type TypeName } from './values.ts';

export type Family = 'inet' | 'ip' | 'ip6';

interface FieldSpec {
  type: TypeName;
  load: (dreg: number) => Expr;
  /** The network family the field exists in: an inet table adds `meta nfproto` before it. */
  nfproto?: 'ipv4' | 'ipv6';
  /** The transport protocol the field exists in: nft adds `meta l4proto` before it. */
  l4proto?: 'tcp' | 'udp' | 'ipv6-icmp';
}

const payload =
  (base: 'network' | 'transport', offset: number, len: number) =>
  (dreg: number): Expr => ({ kind: 'payload', dreg, base, offset, len });
const meta =
  (key: 'iifname' | 'oifname' | 'l4proto' | 'nfproto' | 'mark') =>
  (dreg: number): Expr => ({ kind: 'meta', dreg, key });

export const FIELDS = {
  'ip saddr': { type: 'ipv4_addr', load: payload('network', 12, 4), nfproto: 'ipv4' },
  'ip daddr': { type: 'ipv4_addr', load: payload('network', 16, 4), nfproto: 'ipv4' },
  'ip protocol': { type: 'inet_proto', load: payload('network', 9, 1), nfproto: 'ipv4' },
  'ip6 saddr': { type: 'ipv6_addr', load: payload('network', 8, 16), nfproto: 'ipv6' },
  'ip6 daddr': { type: 'ipv6_addr', load: payload('network', 24, 16), nfproto: 'ipv6' },
  'meta l4proto': { type: 'inet_proto', load: meta('l4proto') },
  'meta nfproto': { type: 'nf_proto', load: meta('nfproto') },
  'meta mark': { type: 'mark', load: meta('mark') },
  iifname: { type: 'ifname', load: meta('iifname') },
  oifname: { type: 'ifname', load: meta('oifname') },
  'th sport': { type: 'inet_service', load: payload('transport', 0, 2) },
  'th dport': { type: 'inet_service', load: payload('transport', 2, 2) },
  'tcp sport': { type: 'inet_service', load: payload('transport', 0, 2), l4proto: 'tcp' },
  'tcp dport': { type: 'inet_service', load: payload('transport', 2, 2), l4proto: 'tcp' },
  'udp sport': { type: 'inet_service', load: payload('transport', 0, 2), l4proto: 'udp' },
  'udp dport': { type: 'inet_service', load: payload('transport', 2, 2), l4proto: 'udp' },
  'icmpv6 type': { type: 'icmpv6_type', load: payload('transport', 0, 1), nfproto: 'ipv6', l4proto: 'ipv6-icmp' },
  'ct state': { type: 'ct_state', load: (dreg) => ({ kind: 'ct', dreg, key: 'state' }) },
  'fib daddr type': { type: 'fib_addrtype', load: (dreg) => ({ kind: 'fib-addrtype', dreg, flags: NFT_FIB_F.DADDR }) },
} as const satisfies Record<string, FieldSpec>;

export type Field = keyof typeof FIELDS;
export type CmpOp = '==' | '!=' | '<' | '<=' | '>' | '>=';
export type LogLevel = 'emerg' | 'alert' | 'crit' | 'err' | 'warn' | 'notice' | 'info' | 'debug';
export type RateUnit = 'second' | 'minute' | 'hour' | 'day' | 'week';

/**
 * One item of a rule in nft's order, e.g. `ip saddr . th dport @s counter accept` is
 * [{ kind: 'lookup', fields: ['ip saddr', 'th dport'], set: 's' }, { kind: 'counter' },
 *  { kind: 'verdict', verdict: { code: 'accept' } }].
 */
export type Construct =
  /** `field op value`: value is an address, CIDR, "a-b" range, number, name, or for `ct state` a list. */
  | { kind: 'match'; field: Field; op?: CmpOp; value: Scalar | readonly string[] }
  | { kind: 'lookup'; fields: readonly Field[]; set: string; not?: boolean }
  /** `field { a, b }`: a lookup in an anonymous constant set sent in the same batch (batch.ts). */
  | { kind: 'match-set'; field: Field; values: readonly Scalar[]; not?: boolean }
  | { kind: 'vmap'; fields: readonly Field[]; map: string }
  | { kind: 'counter' }
  | { kind: 'log'; prefix?: string; level?: LogLevel; group?: number }
  | { kind: 'limit'; rate: number; per: RateUnit; burst?: number; unit?: 'packets' | 'bytes' }
  | { kind: 'masquerade'; fullyRandom?: boolean; random?: boolean; persistent?: boolean }
  | { kind: 'verdict'; verdict: Verdict };

export interface CompileContext {
  family: Family;
  /** Sets created in the same batch, by name: their NFTA_SET_ID goes into the lookup. */
  setIds?: ReadonlyMap<string, number>;
  /** The NFTA_SET_ID of each `match-set`'s anonymous set, in the rule's order. */
  anonSetIds?: readonly number[];
}

/** The name nft gives an anonymous set; the kernel replaces %d with the first free number. */
export const ANON_SET_NAME = '__set%d';

const LOG_LEVELS: Record<LogLevel, number> = {
  emerg: 0,
  alert: 1,
  crit: 2,
  err: 3,
  warn: 4,
  notice: 5,
  info: 6,
  debug: 7,
};
const RATE_UNITS: Record<RateUnit, bigint> = { second: 1n, minute: 60n, hour: 3600n, day: 86400n, week: 604800n };
/** nft's default burst for a packet limit (a byte limit's is 0). */
const DEFAULT_PACKET_BURST = 5;

/** Per-rule state: which dependencies the rule has already matched, so each is emitted once. */
interface RuleState {
  nfproto?: 'ipv4' | 'ipv6';
  l4proto?: string;
}

/** The bytes a dependency compares with, made once: a rebuild compiles ~25,000 of them. */
const NFPROTO_DATA = { ipv4: encodeScalar('nf_proto', 'ipv4'), ipv6: encodeScalar('nf_proto', 'ipv6') };
const L4PROTO_DATA: Record<NonNullable<FieldSpec['l4proto']>, Uint8Array> = {
  tcp: encodeScalar('inet_proto', 'tcp'),
  udp: encodeScalar('inet_proto', 'udp'),
  'ipv6-icmp': encodeScalar('inet_proto', 'ipv6-icmp'),
};

/** Appends the field's implicit dependencies to `out` (each emitted once per rule). */
function dependencies(f: FieldSpec, ctx: CompileContext, st: RuleState, field: string, out: Expr[]): void {
  if (f.nfproto) {
    const wrong = (ctx.family === 'ip' && f.nfproto === 'ipv6') || (ctx.family === 'ip6' && f.nfproto === 'ipv4');
    if (wrong || (st.nfproto !== undefined && st.nfproto !== f.nfproto)) {
      const already = st.nfproto ? `, ${st.nfproto} already matched` : '';
      throw new RangeError(`${field} cannot match in this rule (family ${ctx.family}${already})`);
    }
    if (ctx.family === 'inet' && st.nfproto === undefined) {
      out.push(
        { kind: 'meta', dreg: NFT_REG_1, key: 'nfproto' },
        { kind: 'cmp', sreg: NFT_REG_1, op: '==', data: NFPROTO_DATA[f.nfproto] },
      );
    }
    st.nfproto = f.nfproto;
  }
  if (f.l4proto) {
    if (st.l4proto !== undefined && st.l4proto !== f.l4proto) {
      throw new RangeError(`${field} cannot match after meta l4proto ${st.l4proto}`);
    }
    if (st.l4proto === undefined) {
      out.push(
        { kind: 'meta', dreg: NFT_REG_1, key: 'l4proto' },
        { kind: 'cmp', sreg: NFT_REG_1, op: '==', data: L4PROTO_DATA[f.l4proto] },
      );
    }
    st.l4proto = f.l4proto;
  }
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function prefixMask(len: number, prefix: number): Uint8Array {
  const m = new Uint8Array(len);
  for (let bit = 0; bit < prefix; bit++) m[bit >> 3] = (m[bit >> 3] as number) | (0x80 >> (bit & 7));
  return m;
}

/** Appends a match's expressions to `out` (no list of its own: a rebuild compiles 12,000 rules). */
function compileMatch(c: Extract<Construct, { kind: 'match' }>, ctx: CompileContext, st: RuleState, out: Expr[]): void {
  const f: FieldSpec = FIELDS[c.field];
  const op = c.op ?? '==';
  dependencies(f, ctx, st, c.field, out);
  const r = NFT_REG_1;
  if (c.field === 'ct state') {
    // A bit set: any of the listed states (nft: bitwise & mask, cmp != 0).
    const states = typeof c.value === 'object' ? c.value : String(c.value).split(',');
    let mask = 0;
    for (const s of states) mask |= encodeScalar('ct_state', s.trim()).reduce((a, b, i) => a | (b << (8 * i)), 0);
    const maskBytes = encodeScalar('ct_state', mask);
    out.push(f.load(r), { kind: 'bitwise', sreg: r, dreg: r, mask: maskBytes, xor: new Uint8Array(4) });
    out.push({ kind: 'cmp', sreg: r, op: op === '==' ? '!=' : '==', data: new Uint8Array(4) });
    return;
  }
  if (typeof c.value === 'object') throw new RangeError(`${c.field}: a list of values is only supported for ct state`);
  if (f.type === 'ifname' && String(c.value).endsWith('*')) {
    // A wildcard compares only the prefix's bytes (the cmp's data length is the compared length).
    out.push(f.load(r), { kind: 'cmp', sreg: r, op, data: Buffer.from(String(c.value).slice(0, -1), 'utf8') });
    return;
  }
  const range = encodeRange(f.type, c.value);
  const len = DATA_TYPES[f.type].len;
  const single = sameBytes(range.first, range.last);
  if (range.prefix !== undefined && !single) {
    if (range.prefix % 8 === 0) {
      // nft loads only the prefix's bytes when the prefix is byte-aligned.
      const load = f.load(r);
      if (load.kind !== 'payload') throw new RangeError(`${c.field}: prefix match needs a payload field`);
      const bytes = range.prefix / 8;
      out.push({ ...load, len: bytes }, { kind: 'cmp', sreg: r, op, data: range.first.subarray(0, bytes) });
    } else {
      const mask = prefixMask(len, range.prefix);
      out.push(f.load(r), { kind: 'bitwise', sreg: r, dreg: r, mask, xor: new Uint8Array(len) });
      out.push({ kind: 'cmp', sreg: r, op, data: range.first });
    }
    return;
  }
  if (!single) {
    if (op !== '==' && op !== '!=') throw new RangeError(`${c.field}: a range takes == or !=`);
    out.push(f.load(r), { kind: 'range', sreg: r, op, from: range.first, to: range.last });
    return;
  }
  out.push(f.load(r), { kind: 'cmp', sreg: r, op, data: range.first });
  if (op === '==' && c.field === 'meta nfproto') st.nfproto = String(c.value) === 'ipv6' ? 'ipv6' : 'ipv4';
  if (op === '==' && (c.field === 'meta l4proto' || c.field === 'ip protocol')) st.l4proto = String(c.value);
  return;
}

/**
 * Appends the loads of fields into consecutive registers to `out`, after the dependencies of them
 * all (nft's order); the key starts at register 1.
 */
function loadConcat(fields: readonly Field[], ctx: CompileContext, st: RuleState, out: Expr[]): void {
  if (fields.length === 0) throw new RangeError('a lookup needs at least one field');
  let word = 0;
  for (const name of fields) {
    const f: FieldSpec = FIELDS[name];
    dependencies(f, ctx, st, name, out);
    word += roundUp4(DATA_TYPES[f.type].len) / 4;
    if (word > NFT_REG32_COUNT) {
      throw new RangeError(`concatenation ${fields.join(' . ')} is longer than the registers`);
    }
  }
  word = 0;
  for (const name of fields) {
    const f: FieldSpec = FIELDS[name];
    // Register 1 is the first four 32-bit registers seen as one; nft names the start of a key so.
    out.push(f.load(word === 0 ? NFT_REG_1 : NFT_REG32_00 + word));
    word += roundUp4(DATA_TYPES[f.type].len) / 4;
  }
}

/** A lookup of `set` in `fields` (register 1), with the set's id when the batch creates it. */
function lookupExpr(ctx: CompileContext, set: string, not: boolean | undefined, dreg?: number): Expr {
  const e: Extract<Expr, { kind: 'lookup' }> = { kind: 'lookup', sreg: NFT_REG_1, set };
  const id = ctx.setIds?.get(set);
  if (id !== undefined) e.setId = id;
  if (dreg !== undefined) e.dreg = dreg;
  if (not) e.invert = true;
  return e;
}

/** The expression list of one rule; throws RangeError on a construct nft would refuse. */
export function compileRule(items: readonly Construct[], ctx: CompileContext): Expr[] {
  const st: RuleState = {};
  const out: Expr[] = [];
  let anon = 0;
  for (const c of items) {
    switch (c.kind) {
      case 'match':
        compileMatch(c, ctx, st, out);
        break;
      case 'lookup':
        loadConcat(c.fields, ctx, st, out);
        out.push(lookupExpr(ctx, c.set, c.not));
        break;
      case 'match-set': {
        const id = ctx.anonSetIds?.[anon++];
        if (id === undefined) throw new RangeError(`${c.field} { … }: the anonymous set has no id in this batch`);
        loadConcat([c.field], ctx, st, out);
        out.push({
          kind: 'lookup',
          sreg: NFT_REG_1,
          set: ANON_SET_NAME,
          setId: id,
          ...(c.not ? { invert: true } : {}),
        });
        break;
      }
      case 'vmap':
        loadConcat(c.fields, ctx, st, out);
        out.push(lookupExpr(ctx, c.map, false, NFT_REG_VERDICT));
        break;
      case 'counter':
        out.push({ kind: 'counter' });
        break;
      case 'log':
        out.push({
          kind: 'log',
          ...(c.prefix !== undefined ? { prefix: c.prefix } : {}),
          ...(c.level !== undefined ? { level: LOG_LEVELS[c.level] } : {}),
          ...(c.group !== undefined ? { group: c.group } : {}),
        });
        break;
      case 'limit': {
        const unit = c.unit ?? 'packets';
        const burst = c.burst ?? (unit === 'packets' ? DEFAULT_PACKET_BURST : 0);
        out.push({ kind: 'limit', rate: BigInt(c.rate), unitSeconds: RATE_UNITS[c.per], burst, type: unit });
        break;
      }
      case 'masquerade': {
        const flags =
          (c.fullyRandom ? NF_NAT_RANGE.RANDOM_FULLY : 0) |
          (c.random ? NF_NAT_RANGE.RANDOM : 0) |
          (c.persistent ? NF_NAT_RANGE.PERSISTENT : 0);
        out.push({ kind: 'masq', flags });
        break;
      }
      case 'verdict':
        out.push({ kind: 'immediate-verdict', verdict: c.verdict });
        break;
    }
  }
  return out;
}
