// Over 400 lines: a message builder for each kind of nf_tables object, with the element writers (general and the plain-address fast path) that share its helpers.
// nf_tables object messages (NEW/DEL of tables, chains, rules, sets and elements) as nft sends them,
// so `nft list` shows what the agent wrote exactly as if `nft -f` had written it: rule comments and
// set key byte orders travel in libnftnl's userdata, element comments likewise. Pure: no kernel.
import { MessageBuilder, type MessageSink } from '../../kernel/netlink-codec.ts';
import { NLM_F } from '../../kernel/netlink-const.ts';
import { NFNL_SUBSYS_NFTABLES, NFPROTO_INET, NFPROTO_IPV4, NFPROTO_IPV6, NFT_MSG } from '../netlink-msgs.ts';
import { compileRule, sameBytes, type CompileContext, type Construct, type Family } from './compile.ts';
import {
  CHAIN_PRIORITY,
  NF_HOOK,
  NFT_BYTEORDER,
  NFT_DATA_VERDICT,
  NFT_SET_ELEM_INTERVAL_END,
  NFT_SET_F,
  NFTA_CHAIN,
  NFTA_DATA,
  NFTA_HOOK,
  NFTA_LIST_ELEM,
  NFTA_RULE,
  NFTA_SET,
  NFTA_SET_DESC,
  NFTA_SET_ELEM,
  NFTA_SET_ELEM_LIST,
  NFTA_SET_FIELD_LEN,
  NFTA_TABLE,
  UDATA_RULE_COMMENT,
  UDATA_SET,
  UDATA_CHAIN_COMMENT,
  UDATA_SET_ELEM_COMMENT,
} from './const.ts';
import { ipv4Word } from '../../net/ip.ts';
import { be32, be64, putExpr, putVerdict, type Expr, type Verdict } from './expr.ts';
import { concat, DATA_TYPES, encodeRange, keyLayout, successor, type Scalar, type TypeName } from './values.ts';

const NFPROTO: Record<Family, number> = { inet: NFPROTO_INET, ip: NFPROTO_IPV4, ip6: NFPROTO_IPV6 };
/** nft refuses longer comments (NFT_USERDATA_MAXLEN is 256, nft's own limit 128). */
export const MAX_COMMENT = 128;

export interface TableRef {
  family?: Family;
  table: string;
}

export interface BaseChainSpec {
  type: 'filter' | 'nat' | 'route';
  hook: keyof typeof NF_HOOK;
  priority: number | keyof typeof CHAIN_PRIORITY;
  policy?: 'accept' | 'drop';
}

/** A set or map as nft declares it; elements are encoded from the same description. */
export interface SetSpec extends TableRef {
  name: string;
  /** One type, or several for a concatenation (`type ipv4_addr . inet_service`). */
  key: readonly TypeName[];
  /** A verdict map (`: verdict`). */
  verdictMap?: boolean;
  flags?: ReadonlyArray<'interval' | 'constant' | 'timeout'>;
  /** Default element timeout in ms (`timeout 30s`). */
  timeoutMs?: number;
  comment?: string;
  /** A rule's anonymous constant set (`{ a, b }`), named by the kernel; `size` its element count. */
  anonymous?: { size: number };
}

export interface ElementSpec {
  /** One value per key field; an interval set takes a CIDR or "a-b" per field. */
  key: readonly Scalar[];
  verdict?: Verdict;
  comment?: string;
  timeoutMs?: number;
}

/** The set's NFTA_SET_ID when created in the same batch, for rules and elements that refer to it. */
export type SetIds = ReadonlyMap<string, number>;

const nfproto = (r: TableRef): number => NFPROTO[r.family ?? 'inet'];

/** Most rules fit in 512 bytes, so the builder (256 by default) does not grow and copy for each. */
const INITIAL_MESSAGE_SIZE = 512;

/** The sink the messages made now go into (encodeInto); none: each its own buffer. */
let target: MessageSink | undefined;

/**
 * Runs `build` with every message it makes built at the end of `sink`, one after another (a batch's
 * datagram, netlink/batch.ts), rather than each in a buffer of its own. Set around a call rather than
 * passed to every message function: each makes one message, finished before the next starts.
 */
export function encodeInto<T>(sink: MessageSink, build: () => T): T {
  const was = target;
  target = sink;
  try {
    return build();
  } finally {
    target = was;
  }
}

const NFGENMSG = [
  Uint8Array.of(NFPROTO_INET, 0, 0, 0),
  Uint8Array.of(NFPROTO_IPV4, 0, 0, 0),
  Uint8Array.of(NFPROTO_IPV6, 0, 0, 0),
];

/** nlmsghdr + nfgenmsg (family, version 0, res_id 0), as ../netlink-msgs.ts's nftMessage. */
function nftMessage(type: number, flags: number, family: number): MessageBuilder {
  const m = new MessageBuilder((NFNL_SUBSYS_NFTABLES << 8) | type, flags, INITIAL_MESSAGE_SIZE, target);
  const gen = family === NFPROTO_INET ? NFGENMSG[0] : family === NFPROTO_IPV4 ? NFGENMSG[1] : NFGENMSG[2];
  return m.raw(gen as Uint8Array);
}

function udata(tlvs: ReadonlyArray<[number, Uint8Array]>): Buffer {
  return Buffer.concat(tlvs.map(([type, v]) => Buffer.concat([Buffer.of(type, v.length), v])));
}

function commentTlv(type: number, comment: string): [number, Uint8Array] {
  const text = Buffer.from(`${comment}\0`, 'utf8');
  if (text.length > MAX_COMMENT) throw new RangeError(`comment longer than ${MAX_COMMENT} bytes: ${comment}`);
  return [type, text];
}

const u32le = (v: number): Uint8Array => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v, 0);
  return b;
};

/** NLM_F_EXCL: fail with EEXIST when the object exists (`nft create`) instead of leaving it (`nft add`). */
const excl = (exclusive: boolean | undefined): number => (exclusive ? NLM_F.EXCL : 0);

export function newTable(r: TableRef, exclusive?: boolean): MessageBuilder {
  const m = nftMessage(NFT_MSG.NEWTABLE, NLM_F.CREATE | excl(exclusive), nfproto(r));
  return m.str(NFTA_TABLE.NAME, r.table).attr(NFTA_TABLE.FLAGS, be32(0));
}

export function delTable(r: TableRef): MessageBuilder {
  return nftMessage(NFT_MSG.DELTABLE, 0, nfproto(r)).str(NFTA_TABLE.NAME, r.table);
}

export function newChain(
  r: TableRef,
  name: string,
  base?: BaseChainSpec,
  exclusive?: boolean,
  comment?: string,
): MessageBuilder {
  const m = nftMessage(NFT_MSG.NEWCHAIN, NLM_F.CREATE | excl(exclusive), nfproto(r));
  m.str(NFTA_CHAIN.TABLE, r.table).str(NFTA_CHAIN.NAME, name);
  if (base) {
    const priority = typeof base.priority === 'number' ? base.priority : CHAIN_PRIORITY[base.priority];
    m.str(NFTA_CHAIN.TYPE, base.type).attr(NFTA_CHAIN.POLICY, be32(base.policy === 'drop' ? 0 : 1));
    m.nested(NFTA_CHAIN.HOOK, (h) => {
      h.attr(NFTA_HOOK.HOOKNUM, be32(NF_HOOK[base.hook])).attr(NFTA_HOOK.PRIORITY, be32(priority));
    });
  }
  if (comment !== undefined) m.attr(NFTA_CHAIN.USERDATA, udata([commentTlv(UDATA_CHAIN_COMMENT, comment)]));
  return m;
}

export function delChain(r: TableRef, name: string): MessageBuilder {
  return nftMessage(NFT_MSG.DELCHAIN, 0, nfproto(r)).str(NFTA_CHAIN.TABLE, r.table).str(NFTA_CHAIN.NAME, name);
}

/** Every rule of the chain (DELRULE naming only the chain). */
export function flushChain(r: TableRef, chain: string): MessageBuilder {
  return nftMessage(NFT_MSG.DELRULE, 0, nfproto(r)).str(NFTA_RULE.TABLE, r.table).str(NFTA_RULE.CHAIN, chain);
}

/**
 * Where a new rule goes: appended (the default), after (`add … handle N`) or before (`insert … handle
 * N`) a rule, first in the chain (`insert` without a handle), or in place of a rule (`replace`).
 */
export type RulePlacement =
  | { at: 'append'; handle?: bigint | number }
  | { at: 'insert'; handle?: bigint | number }
  | { at: 'replace'; handle: bigint | number };

export function newRule(
  r: TableRef,
  chain: string,
  items: readonly Construct[],
  comment?: string,
  setIds?: SetIds,
  placement: RulePlacement = { at: 'append' },
  anonSetIds?: readonly number[],
): MessageBuilder {
  const ctx: CompileContext = { family: r.family ?? 'inet' };
  if (setIds) ctx.setIds = setIds;
  if (anonSetIds) ctx.anonSetIds = anonSetIds;
  const exprs = compileRule(items, ctx);
  // As libnftnl: APPEND with a position puts the rule after it, no APPEND before it (or first);
  // REPLACE names the rule by its handle.
  const flags = placement.at === 'append' ? NLM_F.APPEND : placement.at === 'replace' ? NLM_F.REPLACE : 0;
  const m = nftMessage(NFT_MSG.NEWRULE, NLM_F.CREATE | flags, nfproto(r));
  m.str(NFTA_RULE.TABLE, r.table).str(NFTA_RULE.CHAIN, chain);
  if (placement.handle !== undefined) {
    const which = placement.at === 'replace' ? NFTA_RULE.HANDLE : NFTA_RULE.POSITION;
    m.attr(which, be64(BigInt(placement.handle)));
  }
  const at = m.begin(NFTA_RULE.EXPRESSIONS);
  for (let i = 0; i < exprs.length; i++) putExpr(m, exprs[i] as Expr);
  m.end(at);
  if (comment !== undefined) putComment(m, NFTA_RULE.USERDATA, UDATA_RULE_COMMENT, comment);
  return m;
}

/** A comment's userdata (one TLV) as `udata([commentTlv(…)])` makes it, written through one scratch
 * buffer (every rule of a rebuild has a comment: 12,000 × four small buffers). */
const COMMENT_SCRATCH = Buffer.alloc(2 + MAX_COMMENT);

function putComment(m: MessageBuilder, attr: number, tlvType: number, comment: string): void {
  const n = Buffer.byteLength(comment, 'utf8') + 1;
  if (n > MAX_COMMENT) throw new RangeError(`comment longer than ${MAX_COMMENT} bytes: ${comment}`);
  COMMENT_SCRATCH[0] = tlvType;
  COMMENT_SCRATCH[1] = n;
  COMMENT_SCRATCH.write(comment, 2, 'utf8');
  COMMENT_SCRATCH[1 + n] = 0;
  m.attr(attr, COMMENT_SCRATCH.subarray(0, 2 + n));
}

export function delRule(r: TableRef, chain: string, handle: bigint | number): MessageBuilder {
  return nftMessage(NFT_MSG.DELRULE, 0, nfproto(r))
    .str(NFTA_RULE.TABLE, r.table)
    .str(NFTA_RULE.CHAIN, chain)
    .attr(NFTA_RULE.HANDLE, be64(BigInt(handle)));
}

function setFlags(s: SetSpec): number {
  let f = s.anonymous ? NFT_SET_F.ANONYMOUS | NFT_SET_F.CONSTANT : 0;
  const bits = { interval: NFT_SET_F.INTERVAL, constant: NFT_SET_F.CONSTANT, timeout: NFT_SET_F.TIMEOUT };
  for (const x of s.flags ?? []) f |= bits[x];
  if (s.verdictMap) f |= NFT_SET_F.MAP;
  // The pipapo backend (concatenated ranges) is chosen by this flag; nft sets it for interval concats.
  if (s.key.length > 1 && f & NFT_SET_F.INTERVAL) f |= NFT_SET_F.CONCAT;
  return f;
}

export function newSet(s: SetSpec, id: number, exclusive?: boolean): MessageBuilder {
  const k = keyLayout(s.key);
  const m = nftMessage(NFT_MSG.NEWSET, NLM_F.CREATE | excl(exclusive), nfproto(s));
  m.str(NFTA_SET.TABLE, s.table).str(NFTA_SET.NAME, s.name);
  m.attr(NFTA_SET.FLAGS, be32(setFlags(s)))
    .attr(NFTA_SET.KEY_TYPE, be32(k.typeId))
    .attr(NFTA_SET.KEY_LEN, be32(k.len));
  if (s.verdictMap) m.attr(NFTA_SET.DATA_TYPE, be32(NFT_DATA_VERDICT)).attr(NFTA_SET.DATA_LEN, be32(0));
  m.attr(NFTA_SET.ID, be32(id));
  if (s.timeoutMs !== undefined) m.attr(NFTA_SET.TIMEOUT, be64(BigInt(s.timeoutMs)));
  // nft sizes an anonymous set to its elements, so the kernel picks the smallest backend for them.
  if (s.anonymous) m.nested(NFTA_SET.DESC, (d) => d.attr(NFTA_SET_DESC.SIZE, be32(s.anonymous?.size ?? 0)));
  // Field lengths tell the pipapo backend where each field starts; nft sends them for it only.
  if (setFlags(s) & NFT_SET_F.CONCAT) {
    m.nested(NFTA_SET.DESC, (d) =>
      d.nested(NFTA_SET_DESC.CONCAT, (c) => {
        for (const len of k.fieldLens) c.nested(NFTA_LIST_ELEM, (f) => f.attr(NFTA_SET_FIELD_LEN, be32(len)));
      }),
    );
  }
  // nft prints keys by these byte orders; a concatenation's is "invalid" (each field has its own).
  const single = s.key.length === 1 ? (s.key[0] as TypeName) : undefined;
  const keyOrder = single ? NFT_BYTEORDER[DATA_TYPES[single].byteorder] : NFT_BYTEORDER.invalid;
  const tlvs: Array<[number, Uint8Array]> = [[UDATA_SET.KEYBYTEORDER, u32le(keyOrder)]];
  if (s.verdictMap) tlvs.push([UDATA_SET.DATABYTEORDER, u32le(NFT_BYTEORDER.invalid)]);
  if (s.comment !== undefined) tlvs.push(commentTlv(UDATA_SET.COMMENT, s.comment));
  m.attr(NFTA_SET.USERDATA, udata(tlvs));
  return m;
}

export function delSet(s: TableRef & { name: string }): MessageBuilder {
  return nftMessage(NFT_MSG.DELSET, 0, nfproto(s)).str(NFTA_SET.TABLE, s.table).str(NFTA_SET.NAME, s.name);
}

interface WireElement {
  key: Uint8Array;
  keyEnd?: Uint8Array;
  end?: boolean;
  verdict?: Verdict;
  comment?: string;
  timeoutMs?: number;
}

/**
 * The kernel's elements for one element as nft writes it. A single-field interval becomes two
 * elements, the start and the first value past the end (NFT_SET_ELEM_INTERVAL_END), none when the
 * range reaches the top of the space; a concatenated interval is one element with a key_end.
 */
export function wireElements(s: SetSpec, e: ElementSpec): WireElement[] {
  if (e.key.length !== s.key.length) {
    throw new RangeError(`element of ${e.key.length} field(s) for set ${s.name} of ${s.key.length}`);
  }
  const extra = {
    ...(e.verdict ? { verdict: e.verdict } : {}),
    ...(e.comment !== undefined ? { comment: e.comment } : {}),
    ...(e.timeoutMs !== undefined ? { timeoutMs: e.timeoutMs } : {}),
  };
  const ranges = s.key.map((t, i) => encodeRange(t, e.key[i] as Scalar));
  const interval = (s.flags ?? []).includes('interval');
  if (s.key.length === 1) {
    const r = ranges[0] as { first: Uint8Array; last: Uint8Array };
    if (!interval) {
      if (!sameBytes(r.first, r.last)) throw new RangeError(`set ${s.name} has no interval flag for ${e.key[0]}`);
      return [{ key: r.first, ...extra }];
    }
    const after = successor(r.last);
    return after
      ? [
          { key: r.first, ...extra },
          { key: after, end: true },
        ]
      : [{ key: r.first, ...extra }];
  }
  const key = concat(ranges.map((r) => r.first));
  if (!interval) return [{ key, ...extra }];
  return [{ key, keyEnd: concat(ranges.map((r) => r.last)), ...extra }];
}

function putElement(b: MessageBuilder, w: WireElement): void {
  // begin/end rather than nested(): no closure per element and attribute (a rebuild writes 50,000).
  const el = b.begin(NFTA_LIST_ELEM);
  if (w.end) b.attr(NFTA_SET_ELEM.FLAGS, be32(NFT_SET_ELEM_INTERVAL_END));
  let at = b.begin(NFTA_SET_ELEM.KEY);
  b.attr(NFTA_DATA.VALUE, w.key).end(at);
  if (w.keyEnd) {
    at = b.begin(NFTA_SET_ELEM.KEY_END);
    b.attr(NFTA_DATA.VALUE, w.keyEnd).end(at);
  }
  if (w.verdict) {
    at = b.begin(NFTA_SET_ELEM.DATA);
    putVerdict(b, w.verdict);
    b.end(at);
  }
  if (w.timeoutMs !== undefined) b.attr(NFTA_SET_ELEM.TIMEOUT, be64(BigInt(w.timeoutMs)));
  if (w.comment !== undefined) {
    b.attr(NFTA_SET_ELEM.USERDATA, udata([commentTlv(UDATA_SET_ELEM_COMMENT, w.comment)]));
  }
  b.end(el);
}

/** An element's key bytes, copied by the attribute that takes them (so one buffer serves all). */
const VALUE4 = Buffer.alloc(4);

/**
 * A plain address of a plain IPv4 set (no interval, verdict, comment or timeout) written straight in:
 * what putElement writes for it, without the element's intermediate objects and key buffers (the
 * 50,000 pod addresses of a rebuild made ~1.3 KB of garbage each). False: not such an element.
 */
function putPlainV4(b: MessageBuilder, e: ElementSpec): boolean {
  if (e.key.length !== 1 || e.verdict !== undefined || e.comment !== undefined || e.timeoutMs !== undefined)
    return false;
  const k = e.key[0];
  const word = typeof k === 'string' ? ipv4Word(k) : -1;
  if (word < 0) return false;
  VALUE4.writeUInt32BE(word, 0);
  const el = b.begin(NFTA_LIST_ELEM);
  const key = b.begin(NFTA_SET_ELEM.KEY);
  b.attr(NFTA_DATA.VALUE, VALUE4).end(key);
  b.end(el);
  return true;
}

function elements(type: number, flags: number, s: SetSpec, list: readonly ElementSpec[], ids?: SetIds): MessageBuilder {
  const m = nftMessage(type, flags, nfproto(s));
  m.str(NFTA_SET_ELEM_LIST.TABLE, s.table).str(NFTA_SET_ELEM_LIST.SET, s.name);
  const id = ids?.get(s.name);
  if (id !== undefined) m.attr(NFTA_SET_ELEM_LIST.SET_ID, be32(id));
  const at = m.begin(NFTA_SET_ELEM_LIST.ELEMENTS);
  const plainV4 = s.key.length === 1 && s.key[0] === 'ipv4_addr' && !(s.flags ?? []).includes('interval');
  for (const e of list) {
    if (plainV4 && putPlainV4(m, e)) continue;
    for (const w of wireElements(s, e)) putElement(m, w);
  }
  m.end(at);
  return m;
}

export function newElements(
  s: SetSpec,
  list: readonly ElementSpec[],
  setIds?: SetIds,
  exclusive?: boolean,
): MessageBuilder {
  return elements(NFT_MSG.NEWSETELEM, NLM_F.CREATE | excl(exclusive), s, list, setIds);
}

/** Every element of a set or map (DELSETELEM without an element list, as `nft flush set`). */
export function flushSet(s: TableRef & { name: string }): MessageBuilder {
  return nftMessage(NFT_MSG.DELSETELEM, 0, nfproto(s))
    .str(NFTA_SET_ELEM_LIST.TABLE, s.table)
    .str(NFTA_SET_ELEM_LIST.SET, s.name);
}

export function delElements(s: SetSpec, list: readonly ElementSpec[], setIds?: SetIds): MessageBuilder {
  // A deletion names keys only: verdicts, comments and timeouts are not part of an element's identity.
  return elements(
    NFT_MSG.DELSETELEM,
    0,
    s,
    list.map((e) => ({ key: e.key })),
    setIds,
  );
}
