// Decoders for what the kernel answers to nf_tables reads (<linux/netfilter/nf_tables.h>): the
// ruleset generation, rules, chains and sets. Pure: the socket calls are in read.ts. A rule is
// reduced to what the drift check and the counters need (its chain, handle, comment, counter) plus
// the bytes that identify it, so that a digest changes when the rule does and not when a packet
// passes through it.
import { createHash, type Hash } from 'node:crypto';
import { Attrs, nlaAlign, type NlMessage } from '../../kernel/netlink-codec.ts';
import { udataComment } from '../netlink-msgs.ts';

/** nfgenmsg: family, version, res_id (the low 16 bits of the generation in answers). */
const NFGENMSG_LEN = 4;

export const NFT_MSG_NEWGEN = 15;
export const NFT_MSG_GETGEN = 16;
const NFTA_GEN_ID = 1;

const NFTA_RULE_TABLE = 1;
const NFTA_RULE_CHAIN = 2;
const NFTA_RULE_HANDLE = 3;
const NFTA_RULE_EXPRESSIONS = 4;
const NFTA_RULE_USERDATA = 7;
const NFTA_LIST_ELEM = 1;
const NFTA_EXPR_NAME = 1;
const NFTA_EXPR_DATA = 2;
const NFTA_COUNTER_BYTES = 1;
const NFTA_COUNTER_PACKETS = 2;
const NFTA_QUOTA_CONSUMED = 3;

const NFTA_CHAIN_TABLE = 1;
const NFTA_CHAIN_HANDLE = 2;
const NFTA_CHAIN_NAME = 3;
const NFTA_CHAIN_HOOK = 4;
const NFTA_CHAIN_POLICY = 5;
const NFTA_CHAIN_USE = 6;
const NFTA_CHAIN_TYPE = 7;
const NFTA_HOOK_HOOKNUM = 1;
const NFTA_HOOK_PRIORITY = 2;

const NFTA_SET_TABLE = 1;
const NFTA_SET_NAME = 2;
const NFTA_SET_FLAGS = 3;
const NFTA_SET_KEY_TYPE = 4;
const NFTA_SET_KEY_LEN = 5;
const NFTA_SET_DATA_TYPE = 6;
const NFTA_SET_DATA_LEN = 7;
const NFTA_SET_HANDLE = 16;
const NFTA_SET_ELEM_LIST_ELEMENTS = 3;
const NFTA_SET_ELEM_FLAGS = 3;
const NFT_SET_ELEM_INTERVAL_END = 0x1;
/** NFT_SET_MAP: the set is a map (elements carry data). */
const NFT_SET_MAP = 0x8;

/** libnftnl's rule comment (NFTNL_UDATA_RULE_COMMENT), as `nft` stores `comment "…"`. */
const UDATA_RULE_COMMENT = 0;

export interface RuleCounter {
  packets: number;
  bytes: number;
}

/** One rule as read back: where it is, its comment and, with a counter expression, its counts. */
export interface RuleInfo {
  chain: string;
  handle: number;
  comment?: string;
  counter?: RuleCounter;
}

/** One chain's rules in a word: how many, and a hash of each rule's handle, expressions and comment. */
export interface ChainDigest {
  count: number;
  digest: string;
}

export interface ChainInfo {
  name: string;
  handle: number;
  /** References to the chain (jumps, gotos, verdict-map entries), as the kernel counts them. */
  use: number;
  base?: { hook: number; priority: number; type: string; policy?: number };
}

export interface SetInfo {
  name: string;
  handle: number;
  flags: number;
  keyLen: number;
  /** nft's datatype id of the key (a concatenation's ids shifted together, see values.ts keyLayout). */
  keyType?: number;
  /** Elements carry data: a map or verdict map. */
  map: boolean;
  /** nft's datatype id of a map's data (0xffffff00 for a verdict map). */
  dataType?: number;
  dataLen?: number;
}

function u64(b: Buffer | undefined): number | undefined {
  return b && b.length >= 8 ? Number(b.readBigUInt64BE(0)) : undefined;
}

function be32(a: Attrs, type: number): number | undefined {
  const b = a.get(type);
  return b && b.length >= 4 ? b.readUInt32BE(0) : undefined;
}

function attrsOf(msg: NlMessage): Attrs {
  return new Attrs(msg.data, NFGENMSG_LEN);
}

/** NFT_MSG_NEWGEN's NFTA_GEN_ID: bumped by every committed nf_tables transaction. */
export function decodeGeneration(msg: NlMessage): number | undefined {
  return be32(attrsOf(msg), NFTA_GEN_ID);
}

/** The comment of a rule's user data (libnftnl TLVs: type, length, value). */
export function parseRuleComment(udata: Buffer | undefined): string | undefined {
  return udataComment(udata, UDATA_RULE_COMMENT);
}

/** A rule message decoded; `identity` feeds the chain digest: the rule as dumped, volatile bytes zeroed. */
export interface DecodedRule extends RuleInfo {
  table: string;
  identity: Buffer;
}

/** An expression name attribute equal to `want` (NUL included, as the kernel writes names). */
function nameIs(d: Buffer, at: number, len: number, want: Buffer): boolean {
  if (len !== want.length) return false;
  for (let i = 0; i < len; i++) if (d[at + i] !== want[i]) return false;
  return true;
}

const COUNTER = Buffer.from('counter\0');
const LAST = Buffer.from('last\0');
const QUOTA = Buffer.from('quota\0');

function cstr(buf: Buffer, at: number, len: number): string {
  return buf.toString('utf8', at, buf[at + len - 1] === 0 ? at + len - 1 : at + len);
}

export function u64At(d: Buffer, at: number): number {
  return d.readUInt32BE(at) * 0x1_0000_0000 + d.readUInt32BE(at + 4);
}

/** Attribute walks below are written out as loops: at 10,000 rules of a dozen nested attributes
 * each, Attrs' maps and arrays and per-attribute closures were most of the decoding time. */
export function attrLen(d: Buffer, off: number, end: number): number {
  if (off + 4 > end) return 0;
  // Bytes rather than readUInt16LE: its argument checks cost more than the read, per attribute.
  const len = (d[off] as number) | ((d[off + 1] as number) << 8);
  return len < 4 || off + len > end ? 0 : len;
}

/** The byte ranges (at, len pairs) to zero in a rule's identity: its volatile expression data. */
const zeroRanges: number[] = [];

/** One expression (a NFTA_LIST_ELEM's contents): its counter values, and its volatile bytes. */
function readExpression(d: Buffer, start: number, end: number, rule: { counter?: RuleCounter }): void {
  let nameAt = -1;
  let nameLen = 0;
  let dataAt = -1;
  let dEnd = 0;
  for (let off = start, len = attrLen(d, off, end); len > 0; off += nlaAlign(len), len = attrLen(d, off, end)) {
    const type = d.readUInt16LE(off + 2) & 0x3fff;
    if (type === NFTA_EXPR_NAME) [nameAt, nameLen] = [off + 4, len - 4];
    else if (type === NFTA_EXPR_DATA) [dataAt, dEnd] = [off + 4, off + len];
  }
  if (dataAt < 0 || nameAt < 0) return;
  if (nameIs(d, nameAt, nameLen, COUNTER)) {
    const counter: RuleCounter = { packets: 0, bytes: 0 };
    for (let off = dataAt, len = attrLen(d, off, dEnd); len > 0; off += nlaAlign(len), len = attrLen(d, off, dEnd)) {
      const type = d.readUInt16LE(off + 2) & 0x3fff;
      if (len < 12) continue;
      if (type === NFTA_COUNTER_PACKETS) counter.packets = u64At(d, off + 4);
      else if (type === NFTA_COUNTER_BYTES) counter.bytes = u64At(d, off + 4);
    }
    rule.counter = counter;
    zeroRanges.push(dataAt, dEnd - dataAt);
  } else if (nameIs(d, nameAt, nameLen, LAST)) {
    zeroRanges.push(dataAt, dEnd - dataAt);
  } else if (nameIs(d, nameAt, nameLen, QUOTA)) {
    for (let off = dataAt, len = attrLen(d, off, dEnd); len > 0; off += nlaAlign(len), len = attrLen(d, off, dEnd)) {
      if ((d.readUInt16LE(off + 2) & 0x3fff) === NFTA_QUOTA_CONSUMED) zeroRanges.push(off + 4, len - 4);
    }
  }
}

/**
 * One rule of a GETRULE dump. Its identity is the message as the kernel wrote it (table, chain,
 * handle, every expression in order, user data) after the nfgenmsg header, whose res_id carries the
 * generation, with the volatile attributes (counter values, quota consumed, last used) zeroed.
 */
export function decodeRule(msg: NlMessage): DecodedRule | undefined {
  const d = msg.data;
  const end = d.length;
  let table: string | undefined;
  let chain: string | undefined;
  let handle: number | undefined;
  let comment: string | undefined;
  const found: { counter?: RuleCounter } = {};
  zeroRanges.length = 0;
  for (let off = NFGENMSG_LEN, len = attrLen(d, off, end); len > 0; off += nlaAlign(len), len = attrLen(d, off, end)) {
    const type = d.readUInt16LE(off + 2) & 0x3fff;
    const at = off + 4;
    if (type === NFTA_RULE_TABLE) table = cstr(d, at, len - 4);
    else if (type === NFTA_RULE_CHAIN) chain = cstr(d, at, len - 4);
    else if (type === NFTA_RULE_HANDLE && len >= 12) handle = u64At(d, at);
    else if (type === NFTA_RULE_USERDATA) comment = parseRuleComment(d.subarray(at, off + len));
    else if (type === NFTA_RULE_EXPRESSIONS) {
      const listEnd = off + len;
      for (let e = at, elen = attrLen(d, e, listEnd); elen > 0; e += nlaAlign(elen), elen = attrLen(d, e, listEnd)) {
        if ((d.readUInt16LE(e + 2) & 0x3fff) === NFTA_LIST_ELEM) readExpression(d, e + 4, e + elen, found);
      }
    }
  }
  if (table === undefined || chain === undefined || handle === undefined) return undefined;
  // A length prefix, so that the rules of a chain hash as a sequence with unambiguous boundaries.
  const identity = Buffer.allocUnsafe(4 + end - NFGENMSG_LEN);
  identity.writeUInt32LE(end - NFGENMSG_LEN, 0);
  d.copy(identity, 4, NFGENMSG_LEN);
  for (let i = 0; i < zeroRanges.length; i += 2) {
    const at = 4 + (zeroRanges[i] as number) - NFGENMSG_LEN;
    identity.fill(0, at, at + (zeroRanges[i + 1] as number));
  }
  const rule: DecodedRule = { table, chain, handle, identity };
  if (comment !== undefined) rule.comment = comment;
  if (found.counter) rule.counter = found.counter;
  return rule;
}

/** Per-chain digests of the decoded rules of one table, in the kernel's (chain) order. */
export class ChainDigester {
  private readonly hashes = new Map<string, { count: number; hash: Hash }>();

  add(rule: DecodedRule): void {
    let h = this.hashes.get(rule.chain);
    if (!h) {
      h = { count: 0, hash: createHash('sha256') };
      this.hashes.set(rule.chain, h);
    }
    h.count++;
    h.hash.update(rule.identity);
  }

  /** Chain → { count, digest }; chains without rules are absent (listChains has every chain). */
  finish(): Map<string, ChainDigest> {
    const out = new Map<string, ChainDigest>();
    for (const [chain, h] of this.hashes) out.set(chain, { count: h.count, digest: h.hash.digest('hex').slice(0, 32) });
    return out;
  }
}

export function decodeChain(msg: NlMessage): (ChainInfo & { table: string }) | undefined {
  const a = attrsOf(msg);
  const table = a.str(NFTA_CHAIN_TABLE);
  const name = a.str(NFTA_CHAIN_NAME);
  const handle = u64(a.get(NFTA_CHAIN_HANDLE));
  if (table === undefined || name === undefined || handle === undefined) return undefined;
  const chain: ChainInfo & { table: string } = { table, name, handle, use: be32(a, NFTA_CHAIN_USE) ?? 0 };
  const hook = a.nested(NFTA_CHAIN_HOOK);
  if (hook) {
    const policy = be32(a, NFTA_CHAIN_POLICY);
    chain.base = {
      hook: be32(hook, NFTA_HOOK_HOOKNUM) ?? 0,
      priority: hook.get(NFTA_HOOK_PRIORITY)?.readInt32BE(0) ?? 0,
      type: a.str(NFTA_CHAIN_TYPE) ?? '',
      ...(policy !== undefined ? { policy } : {}),
    };
  }
  return chain;
}

export function decodeSet(msg: NlMessage): (SetInfo & { table: string }) | undefined {
  const a = attrsOf(msg);
  const table = a.str(NFTA_SET_TABLE);
  const name = a.str(NFTA_SET_NAME);
  if (table === undefined || name === undefined) return undefined;
  const flags = be32(a, NFTA_SET_FLAGS) ?? 0;
  const set: SetInfo & { table: string } = {
    table,
    name,
    handle: u64(a.get(NFTA_SET_HANDLE)) ?? 0,
    flags,
    keyLen: be32(a, NFTA_SET_KEY_LEN) ?? 0,
    map: (flags & NFT_SET_MAP) !== 0,
  };
  const keyType = be32(a, NFTA_SET_KEY_TYPE);
  if (keyType !== undefined) set.keyType = keyType;
  const dataType = be32(a, NFTA_SET_DATA_TYPE);
  if (dataType !== undefined) set.dataType = dataType;
  const dataLen = be32(a, NFTA_SET_DATA_LEN);
  if (dataLen !== undefined) set.dataLen = dataLen;
  return set;
}

/**
 * How many elements one NEWSETELEM answer of a dump carries. An interval set holds a range as a start
 * and an end element (NFT_SET_ELEM_INTERVAL_END); the ends are not counted, so a range counts once.
 */
export function countElements(msg: NlMessage): number {
  const list = attrsOf(msg).get(NFTA_SET_ELEM_LIST_ELEMENTS);
  if (!list) return 0;
  let n = 0;
  for (const [type, item] of new Attrs(list).entries) {
    if (type !== NFTA_LIST_ELEM) continue;
    const flags = be32(new Attrs(item), NFTA_SET_ELEM_FLAGS) ?? 0;
    if ((flags & NFT_SET_ELEM_INTERVAL_END) === 0) n++;
  }
  return n;
}

const NFTA_SET_ELEM_KEY = 1;
const NFTA_SET_ELEM_DATA = 2;
const NFTA_SET_ELEM_KEY_END = 10;
const NFTA_DATA_VALUE = 1;
const NFTA_DATA_VERDICT = 2;
const NFTA_VERDICT_CODE = 1;
const NFTA_VERDICT_CHAIN = 2;
const VERDICT_NAMES: Record<number, string> = {
  0: 'drop',
  1: 'accept',
  [-1]: 'continue',
  [-3]: 'jump',
  [-4]: 'goto',
  [-5]: 'return',
};

/** One element of a GETSETELEM answer: its key bytes (and a concatenated range's end), and a verdict. */
export interface ElementInfo {
  key: Buffer;
  keyEnd?: Buffer;
  /** The end of a single-field interval (the first value past it): not an element of its own. */
  intervalEnd: boolean;
  /** A verdict map's value as nft writes it: `accept`, `jump <chain>`. */
  verdict?: string;
}

/** The elements of one NEWSETELEM answer of a dump, in order. */
export function decodeElements(msg: NlMessage): ElementInfo[] {
  const list = attrsOf(msg).get(NFTA_SET_ELEM_LIST_ELEMENTS);
  if (!list) return [];
  const out: ElementInfo[] = [];
  for (const [type, item] of new Attrs(list).entries) {
    if (type !== NFTA_LIST_ELEM) continue;
    const a = new Attrs(item);
    const key = a.nested(NFTA_SET_ELEM_KEY)?.get(NFTA_DATA_VALUE);
    if (!key) continue;
    const el: ElementInfo = {
      key,
      intervalEnd: ((be32(a, NFTA_SET_ELEM_FLAGS) ?? 0) & NFT_SET_ELEM_INTERVAL_END) !== 0,
    };
    const keyEnd = a.nested(NFTA_SET_ELEM_KEY_END)?.get(NFTA_DATA_VALUE);
    if (keyEnd) el.keyEnd = keyEnd;
    const verdict = a.nested(NFTA_SET_ELEM_DATA)?.nested(NFTA_DATA_VERDICT);
    if (verdict) {
      const code = verdict.get(NFTA_VERDICT_CODE)?.readInt32BE(0) ?? 0;
      const chain = verdict.str(NFTA_VERDICT_CHAIN);
      const name = VERDICT_NAMES[code] ?? `verdict ${code}`;
      el.verdict = chain !== undefined ? `${name} ${chain}` : name;
    }
    out.push(el);
  }
  return out;
}
