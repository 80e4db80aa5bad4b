// The kernel's nf_tables expressions, one encoder each: what `nft --debug=netlink` prints between
// brackets ("[ payload load 4b @ network header + 12 => reg 1 ]"). Registers are explicit so the
// compiler (compile.ts) can lay a concatenation over consecutive 32-bit registers.
import type { MessageBuilder } from '../../kernel/netlink-codec.ts';
import {
  EXPR_ATTR as A,
  NFT_CMP_OP,
  NFT_CT_KEY,
  NFT_FIB_RESULT_ADDRTYPE,
  NFT_LIMIT_TYPE,
  NFT_LOOKUP_F_INV,
  NFT_META_KEY,
  NFT_PAYLOAD_BASE,
  NFT_RANGE_OP,
  NFTA_DATA,
  NFTA_EXPR,
  NFTA_LIST_ELEM,
  NFTA_VERDICT,
} from './const.ts';

export type Verdict = { code: 'accept' | 'drop' | 'return' | 'continue' } | { code: 'jump' | 'goto'; chain: string };

export type Expr =
  | { kind: 'payload'; dreg: number; base: keyof typeof NFT_PAYLOAD_BASE; offset: number; len: number }
  | { kind: 'meta'; dreg: number; key: keyof typeof NFT_META_KEY }
  | { kind: 'cmp'; sreg: number; op: keyof typeof NFT_CMP_OP; data: Uint8Array }
  | { kind: 'bitwise'; sreg: number; dreg: number; mask: Uint8Array; xor: Uint8Array }
  | { kind: 'range'; sreg: number; op: keyof typeof NFT_RANGE_OP; from: Uint8Array; to: Uint8Array }
  /** A set lookup (no dreg) or a map lookup into dreg (0: the verdict register of a vmap). */
  | { kind: 'lookup'; sreg: number; set: string; setId?: number; dreg?: number; invert?: boolean }
  | { kind: 'immediate-verdict'; verdict: Verdict }
  | { kind: 'counter' }
  | { kind: 'log'; prefix?: string; level?: number; group?: number }
  | { kind: 'limit'; rate: bigint; unitSeconds: bigint; burst: number; type: keyof typeof NFT_LIMIT_TYPE }
  | { kind: 'masq'; flags: number }
  | { kind: 'ct'; dreg: number; key: keyof typeof NFT_CT_KEY }
  | { kind: 'fib-addrtype'; dreg: number; flags: number };

/** Small values (registers, lengths, offsets, verdict codes) are most attributes: encoded once. */
const BE32_CACHE = new Map<number, Buffer>();

export function be32(v: number): Buffer {
  if (v >= -8 && v < 1024) {
    let hit = BE32_CACHE.get(v);
    if (!hit) BE32_CACHE.set(v, (hit = encodeBe32(v)));
    return hit;
  }
  return encodeBe32(v);
}

function encodeBe32(v: number): Buffer {
  const b = Buffer.alloc(4);
  if (v < 0) b.writeInt32BE(v, 0);
  else b.writeUInt32BE(v >>> 0, 0);
  return b;
}

const ZERO64 = Buffer.alloc(8);

export function be64(v: bigint): Buffer {
  if (v === 0n) return ZERO64;
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(v, 0);
  return b;
}

const VERDICT_CODES = { drop: 0, accept: 1, continue: -1, jump: -3, goto: -4, return: -5 } as const;

/** NFTA_DATA_VERDICT inside an already opened NFTA_*_DATA attribute. */
export function putVerdict(b: MessageBuilder, v: Verdict): void {
  const at = b.begin(NFTA_DATA.VERDICT);
  b.attr(NFTA_VERDICT.CODE, be32(VERDICT_CODES[v.code]));
  if ('chain' in v) b.str(NFTA_VERDICT.CHAIN, v.chain);
  b.end(at);
}

// begin/end rather than nested(): a rebuild writes ~100,000 expressions, and a closure for each
// attribute that nests was most of the encoder's garbage.
function value(b: MessageBuilder, type: number, data: Uint8Array): void {
  const at = b.begin(type);
  b.attr(NFTA_DATA.VALUE, data).end(at);
}

function fill(b: MessageBuilder, e: Expr): void {
  switch (e.kind) {
    case 'payload':
      b.attr(A.payload.DREG, be32(e.dreg)).attr(A.payload.BASE, be32(NFT_PAYLOAD_BASE[e.base]));
      b.attr(A.payload.OFFSET, be32(e.offset)).attr(A.payload.LEN, be32(e.len));
      return;
    case 'meta':
      b.attr(A.meta.KEY, be32(NFT_META_KEY[e.key])).attr(A.meta.DREG, be32(e.dreg));
      return;
    case 'cmp':
      b.attr(A.cmp.SREG, be32(e.sreg)).attr(A.cmp.OP, be32(NFT_CMP_OP[e.op]));
      return value(b, A.cmp.DATA, e.data);
    case 'bitwise':
      b.attr(A.bitwise.SREG, be32(e.sreg)).attr(A.bitwise.DREG, be32(e.dreg)).attr(A.bitwise.LEN, be32(e.mask.length));
      value(b, A.bitwise.MASK, e.mask);
      return value(b, A.bitwise.XOR, e.xor);
    case 'range':
      b.attr(A.range.SREG, be32(e.sreg)).attr(A.range.OP, be32(NFT_RANGE_OP[e.op]));
      value(b, A.range.FROM, e.from);
      return value(b, A.range.TO, e.to);
    case 'lookup':
      b.str(A.lookup.SET, e.set).attr(A.lookup.SREG, be32(e.sreg));
      if (e.dreg !== undefined) b.attr(A.lookup.DREG, be32(e.dreg));
      if (e.setId !== undefined) b.attr(A.lookup.SET_ID, be32(e.setId));
      if (e.invert) b.attr(A.lookup.FLAGS, be32(NFT_LOOKUP_F_INV));
      return;
    case 'immediate-verdict':
      b.attr(A.immediate.DREG, be32(0));
      {
        const at = b.begin(A.immediate.DATA);
        putVerdict(b, e.verdict);
        b.end(at);
      }
      return;
    case 'counter':
      b.attr(A.counter.BYTES, be64(0n)).attr(A.counter.PACKETS, be64(0n));
      return;
    case 'log':
      if (e.prefix !== undefined) b.str(A.log.PREFIX, e.prefix);
      if (e.level !== undefined) b.attr(A.log.LEVEL, be32(e.level));
      if (e.group !== undefined) b.be16(A.log.GROUP, e.group);
      return;
    case 'limit':
      b.attr(A.limit.RATE, be64(e.rate)).attr(A.limit.UNIT, be64(e.unitSeconds));
      b.attr(A.limit.BURST, be32(e.burst)).attr(A.limit.TYPE, be32(NFT_LIMIT_TYPE[e.type]));
      b.attr(A.limit.FLAGS, be32(0));
      return;
    case 'masq':
      if (e.flags !== 0) b.attr(A.masq.FLAGS, be32(e.flags));
      return;
    case 'ct':
      b.attr(A.ct.KEY, be32(NFT_CT_KEY[e.key])).attr(A.ct.DREG, be32(e.dreg));
      return;
    case 'fib-addrtype':
      b.attr(A.fib.DREG, be32(e.dreg)).attr(A.fib.RESULT, be32(NFT_FIB_RESULT_ADDRTYPE));
      b.attr(A.fib.FLAGS, be32(e.flags));
      return;
  }
}

/** The kernel's name for each expression (NFTA_EXPR_NAME). */
export function exprName(e: Expr): string {
  switch (e.kind) {
    case 'immediate-verdict':
      return 'immediate';
    case 'fib-addrtype':
      return 'fib';
    default:
      return e.kind;
  }
}

/** Each expression name NUL-terminated, as str() writes it: made once, not per expression. */
const NAME_BYTES = new Map<string, Buffer>();

function exprNameBytes(e: Expr): Buffer {
  const name = exprName(e);
  let bytes = NAME_BYTES.get(name);
  if (!bytes) NAME_BYTES.set(name, (bytes = Buffer.from(`${name}\0`, 'latin1')));
  return bytes;
}

/** Appends one NFTA_LIST_ELEM { NAME, DATA } to an open NFTA_RULE_EXPRESSIONS. */
export function putExpr(b: MessageBuilder, e: Expr): void {
  const el = b.begin(NFTA_LIST_ELEM);
  b.attr(NFTA_EXPR.NAME, exprNameBytes(e));
  const at = b.begin(NFTA_EXPR.DATA);
  fill(b, e);
  b.end(at);
  b.end(el);
}
