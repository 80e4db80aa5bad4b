// Decoders for what the kernel answers to nf_tables reads (<linux/netfilter/nf_tables.h>): the
// ruleset generation, rules, chains and sets. Pure: the socket calls are in read.ts. A rule is
// reduced to what the drift check and the counters need (its chain, handle, comment, counter) plus
// the bytes that identify it, so that a digest changes when the rule does and not when a packet
// passes through it.
import { createHash, type Hash } from 'node:crypto';
import { Attrs, type NlMessage } from '../../kernel/netlink-codec.ts';

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
const NFTA_SET_KEY_LEN = 5;
const NFTA_SET_DATA_LEN = 7;
const NFTA_SET_HANDLE = 16;
const NFTA_SET_ELEM_LIST_ELEMENTS = 3;
const NFTA_SET_ELEM_FLAGS = 3;
const NFT_SET_ELEM_INTERVAL_END = 0x1;
/** NFT_SET_MAP: the set is a map (elements carry data). */
const NFT_SET_MAP = 0x8;

/** libnftnl's rule comment (NFTNL_UDATA_RULE_COMMENT), as `nft` stores `comment "…"`. */
const UDATA_RULE_COMMENT = 0;

/**
 * Expressions whose attributes change as packets pass (or as time does): left out of the digest so
 * that it says "the rule changed", not "the rule matched". null: the whole data; else those types.
 */
const VOLATILE: ReadonlyMap<string, ReadonlySet<number> | null> = new Map([
  ['counter', null],
  ['last', null],
  ['quota', new Set([NFTA_QUOTA_CONSUMED])],
]);

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
  /** Elements carry data: a map or verdict map. */
  map: boolean;
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
  if (!udata) return undefined;
  for (let at = 0; at + 2 <= udata.length; ) {
    const type = udata[at] as number;
    const len = udata[at + 1] as number;
    if (type === UDATA_RULE_COMMENT) return udata.subarray(at + 2, at + 2 + len).toString('utf8').replace(/\0$/, '');
    at += 2 + len;
  }
  return undefined;
}

/** A rule message decoded; `identity` feeds the chain digest (handle, stable expression bytes, user data). */
export interface DecodedRule extends RuleInfo {
  table: string;
  identity: Buffer[];
}

export function decodeRule(msg: NlMessage): DecodedRule | undefined {
  const a = attrsOf(msg);
  const table = a.str(NFTA_RULE_TABLE);
  const chain = a.str(NFTA_RULE_CHAIN);
  const handleBytes = a.get(NFTA_RULE_HANDLE);
  const handle = u64(handleBytes);
  if (table === undefined || chain === undefined || handleBytes === undefined || handle === undefined) return undefined;
  const identity: Buffer[] = [handleBytes];
  const rule: DecodedRule = { table, chain, handle, identity };
  const exprs = a.get(NFTA_RULE_EXPRESSIONS);
  for (const [type, item] of exprs ? new Attrs(exprs).entries : []) {
    if (type !== NFTA_LIST_ELEM) continue;
    const e = new Attrs(item);
    const name = e.str(NFTA_EXPR_NAME) ?? '';
    const data = e.get(NFTA_EXPR_DATA);
    identity.push(Buffer.from(`${name}\0`));
    if (name === 'counter' && data) {
      const d = new Attrs(data);
      rule.counter = { packets: u64(d.get(NFTA_COUNTER_PACKETS)) ?? 0, bytes: u64(d.get(NFTA_COUNTER_BYTES)) ?? 0 };
    }
    if (!data) continue;
    const volatile = VOLATILE.get(name);
    if (volatile === undefined) identity.push(data);
    else if (volatile !== null) identity.push(...stableAttrs(data, volatile));
  }
  const udata = a.get(NFTA_RULE_USERDATA);
  if (udata) {
    identity.push(Buffer.from('\0udata\0'), udata);
    const comment = parseRuleComment(udata);
    if (comment !== undefined) rule.comment = comment;
  }
  return rule;
}

/** The attributes of `data` but those of the volatile types, each as type + payload. */
function stableAttrs(data: Buffer, volatile: ReadonlySet<number>): Buffer[] {
  const out: Buffer[] = [];
  for (const [type, payload] of new Attrs(data).entries) {
    if (volatile.has(type)) continue;
    const t = Buffer.alloc(2);
    t.writeUInt16LE(type, 0);
    out.push(t, payload);
  }
  return out;
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
    // Each part length-prefixed, so that moving bytes between expressions changes the digest too.
    const len = Buffer.alloc(4);
    for (const part of rule.identity) {
      len.writeUInt32LE(part.length, 0);
      h.hash.update(len);
      h.hash.update(part);
    }
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
