// nf_tables over netlink (NETLINK_NETFILTER, <linux/netfilter/nf_tables.h>): the few messages the
// CNI plugin needs to masquerade its pods without running `nft` on the pod start path (tables,
// chains, sets, set elements with a comment, and rules built from a handful of expressions).
// Pure encoders and decoders; the socket and the batch live in the kernel module.
import { Attrs, MessageBuilder, type MessageSink, type NlMessage } from '../kernel/netlink-codec.ts';

export const NFNL_SUBSYS_NFTABLES = 10;
export const NFNL_MSG_BATCH_BEGIN = 0x10;
export const NFNL_MSG_BATCH_END = 0x11;
export const NFPROTO_INET = 1;
export const NFPROTO_IPV4 = 2;
export const NFPROTO_IPV6 = 10;

export const NFT_MSG = {
  NEWTABLE: 0,
  GETTABLE: 1,
  DELTABLE: 2,
  NEWCHAIN: 3,
  GETCHAIN: 4,
  DELCHAIN: 5,
  NEWRULE: 6,
  GETRULE: 7,
  DELRULE: 8,
  NEWSET: 9,
  GETSET: 10,
  DELSET: 11,
  NEWSETELEM: 12,
  GETSETELEM: 13,
  DELSETELEM: 14,
} as const;

const NFTA_TABLE_NAME = 1;
const NFTA_CHAIN_TABLE = 1;
const NFTA_CHAIN_NAME = 3;
const NFTA_CHAIN_HOOK = 4;
const NFTA_CHAIN_POLICY = 5;
const NFTA_CHAIN_TYPE = 7;
const NFTA_HOOK_HOOKNUM = 1;
const NFTA_HOOK_PRIORITY = 2;
const NFTA_RULE_TABLE = 1;
const NFTA_RULE_CHAIN = 2;
const NFTA_RULE_EXPRESSIONS = 4;
const NFTA_LIST_ELEM = 1;
const NFTA_EXPR_NAME = 1;
const NFTA_EXPR_DATA = 2;
const NFTA_SET_TABLE = 1;
const NFTA_SET_NAME = 2;
const NFTA_SET_FLAGS = 3;
const NFTA_SET_KEY_TYPE = 4;
const NFTA_SET_KEY_LEN = 5;
const NFTA_SET_ID = 10;
const NFTA_SET_ELEM_LIST_TABLE = 1;
const NFTA_SET_ELEM_LIST_SET = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS = 3;
const NFTA_SET_ELEM_KEY = 1;
const NFTA_SET_ELEM_USERDATA = 6;
const NFTA_DATA_VALUE = 1;
const NFTA_DATA_VERDICT = 2;
const NFTA_VERDICT_CODE = 1;
const NFTA_VERDICT_CHAIN = 2;
/** libnftnl's element comment, as `nft list` shows it (NFTNL_UDATA_SET_ELEM_COMMENT). */
const UDATA_SET_ELEM_COMMENT = 0;
/** Longest comment nft accepts (NFT_USERDATA_MAXLEN is 256; nft limits comments to 128). */
export const MAX_COMMENT = 128;

export const NF_INET_POST_ROUTING = 4;
/** NF_IP_PRI_NAT_SRC: nft's "srcnat" priority. */
export const PRIORITY_SRCNAT = 100;
export const NF_ACCEPT = 1;
export const NFT_RETURN = -5;
export const NFT_JUMP = -3;

/** nft's data types for set keys (nft's datatype ids, kept in NFTA_SET_KEY_TYPE). */
export const TYPE_IPADDR = 7;
export const TYPE_IP6ADDR = 8;

const NFT_REG_VERDICT = 0;
const NFT_REG_1 = 1;
const NFT_META_NFPROTO = 15;
const NFT_PAYLOAD_NETWORK_HEADER = 1;
const NFT_CMP_EQ = 0;

function be32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(v, 0);
  return b;
}

/** A netfilter request: nlmsghdr + nfgenmsg (family, version 0, res_id in network order). */
export function nftMessage(type: number, flags: number, family = NFPROTO_INET): MessageBuilder {
  const m = new MessageBuilder((NFNL_SUBSYS_NFTABLES << 8) | type, flags);
  const gen = Buffer.alloc(4);
  gen.writeUInt8(family, 0);
  m.raw(gen);
  return m;
}

/** BATCH_BEGIN / BATCH_END around a transaction; res_id names the nf_tables subsystem. */
export function batchMarker(
  type: typeof NFNL_MSG_BATCH_BEGIN | typeof NFNL_MSG_BATCH_END,
  sink?: MessageSink,
): MessageBuilder {
  const m = new MessageBuilder(type, 0, 64, sink);
  const gen = Buffer.alloc(4);
  gen.writeUInt16BE(NFNL_SUBSYS_NFTABLES, 2);
  m.raw(gen);
  return m;
}

export function newTable(name: string, flags: number): MessageBuilder {
  return nftMessage(NFT_MSG.NEWTABLE, flags).str(NFTA_TABLE_NAME, name);
}

export function getTable(name: string): MessageBuilder {
  return nftMessage(NFT_MSG.GETTABLE, 0).str(NFTA_TABLE_NAME, name);
}

/** Deletes a table with everything in it (only `strand uninstall` does this). */
export function delTable(name: string): MessageBuilder {
  return nftMessage(NFT_MSG.DELTABLE, 0).str(NFTA_TABLE_NAME, name);
}

export interface BaseChain {
  hook: number;
  priority: number;
  type: 'filter' | 'nat' | 'route';
  policy?: number;
}

export function newChain(table: string, name: string, flags: number, base?: BaseChain): MessageBuilder {
  const m = nftMessage(NFT_MSG.NEWCHAIN, flags).str(NFTA_CHAIN_TABLE, table).str(NFTA_CHAIN_NAME, name);
  if (base) {
    m.nested(NFTA_CHAIN_HOOK, (b) =>
      b.attr(NFTA_HOOK_HOOKNUM, be32(base.hook)).attr(NFTA_HOOK_PRIORITY, be32(base.priority)),
    );
    m.attr(NFTA_CHAIN_POLICY, be32(base.policy ?? NF_ACCEPT));
    m.str(NFTA_CHAIN_TYPE, base.type);
  }
  return m;
}

export interface SetSpec {
  table: string;
  name: string;
  keyType: number;
  keyLen: number;
  /** Lets rules in the same batch refer to the set before it has a handle. */
  id: number;
}

export function newSet(s: SetSpec, flags: number): MessageBuilder {
  return nftMessage(NFT_MSG.NEWSET, flags)
    .str(NFTA_SET_TABLE, s.table)
    .str(NFTA_SET_NAME, s.name)
    .attr(NFTA_SET_FLAGS, be32(0))
    .attr(NFTA_SET_KEY_TYPE, be32(s.keyType))
    .attr(NFTA_SET_KEY_LEN, be32(s.keyLen))
    .attr(NFTA_SET_ID, be32(s.id));
}

export function getSets(table: string): MessageBuilder {
  return nftMessage(NFT_MSG.GETSET, 0).str(NFTA_SET_TABLE, table);
}

export function getSetElements(table: string, set: string): MessageBuilder {
  return nftMessage(NFT_MSG.GETSETELEM, 0).str(NFTA_SET_ELEM_LIST_TABLE, table).str(NFTA_SET_ELEM_LIST_SET, set);
}

function commentUdata(comment: string): Buffer {
  const text = Buffer.from(`${comment}\0`, 'utf8');
  if (text.length > MAX_COMMENT)
    throw new RangeError(`nftables element comment longer than ${MAX_COMMENT} bytes: ${comment}`);
  return Buffer.concat([Buffer.of(UDATA_SET_ELEM_COMMENT, text.length), text]);
}

export interface SetElement {
  key: Uint8Array;
  comment?: string;
}

function setElements(
  type: number,
  flags: number,
  table: string,
  set: string,
  elements: readonly SetElement[],
): MessageBuilder {
  const m = nftMessage(type, flags).str(NFTA_SET_ELEM_LIST_TABLE, table).str(NFTA_SET_ELEM_LIST_SET, set);
  m.nested(NFTA_SET_ELEM_LIST_ELEMENTS, (b) => {
    for (const e of elements) {
      b.nested(NFTA_LIST_ELEM, (el) => {
        el.nested(NFTA_SET_ELEM_KEY, (k) => k.attr(NFTA_DATA_VALUE, e.key));
        if (e.comment !== undefined) el.attr(NFTA_SET_ELEM_USERDATA, commentUdata(e.comment));
      });
    }
  });
  return m;
}

export function newSetElements(
  table: string,
  set: string,
  elements: readonly SetElement[],
  flags: number,
): MessageBuilder {
  return setElements(NFT_MSG.NEWSETELEM, flags, table, set, elements);
}

export function delSetElements(table: string, set: string, elements: readonly SetElement[]): MessageBuilder {
  return setElements(NFT_MSG.DELSETELEM, 0, table, set, elements);
}

// ---- expressions ---------------------------------------------------------------------------------

export type Expr =
  | { kind: 'meta-nfproto' }
  | { kind: 'payload'; offset: number; len: number }
  | { kind: 'cmp-eq'; data: Uint8Array }
  | { kind: 'bitwise'; len: number; mask: Uint8Array }
  | { kind: 'lookup'; set: string; setId: number }
  | { kind: 'verdict'; code: number; chain?: string }
  | { kind: 'masq' };

function putExpr(b: MessageBuilder, e: Expr): void {
  const named = (name: string, data?: (d: MessageBuilder) => void) =>
    b.nested(NFTA_LIST_ELEM, (x) => {
      x.str(NFTA_EXPR_NAME, name);
      if (data) x.nested(NFTA_EXPR_DATA, data);
    });
  switch (e.kind) {
    case 'meta-nfproto':
      return void named('meta', (d) => d.attr(2 /* KEY */, be32(NFT_META_NFPROTO)).attr(1 /* DREG */, be32(NFT_REG_1)));
    case 'payload':
      return void named('payload', (d) =>
        d
          .attr(1 /* DREG */, be32(NFT_REG_1))
          .attr(2 /* BASE */, be32(NFT_PAYLOAD_NETWORK_HEADER))
          .attr(3 /* OFFSET */, be32(e.offset))
          .attr(4 /* LEN */, be32(e.len)),
      );
    case 'cmp-eq':
      return void named('cmp', (d) =>
        d
          .attr(1 /* SREG */, be32(NFT_REG_1))
          .attr(2 /* OP */, be32(NFT_CMP_EQ))
          .nested(3 /* DATA */, (v) => v.attr(NFTA_DATA_VALUE, e.data)),
      );
    case 'bitwise':
      return void named('bitwise', (d) =>
        d
          .attr(1 /* SREG */, be32(NFT_REG_1))
          .attr(2 /* DREG */, be32(NFT_REG_1))
          .attr(3 /* LEN */, be32(e.len))
          .nested(4 /* MASK */, (v) => v.attr(NFTA_DATA_VALUE, e.mask))
          .nested(5 /* XOR */, (v) => v.attr(NFTA_DATA_VALUE, new Uint8Array(e.len))),
      );
    case 'lookup':
      return void named('lookup', (d) =>
        d.str(1 /* SET */, e.set).attr(2 /* SREG */, be32(NFT_REG_1)).attr(4 /* SET_ID */, be32(e.setId)),
      );
    case 'verdict':
      return void named('immediate', (d) =>
        d.attr(1 /* DREG */, be32(NFT_REG_VERDICT)).nested(2 /* DATA */, (v) =>
          v.nested(NFTA_DATA_VERDICT, (vd) => {
            vd.attr(NFTA_VERDICT_CODE, be32(e.code));
            if (e.chain !== undefined) vd.str(NFTA_VERDICT_CHAIN, e.chain);
          }),
        ),
      );
    case 'masq':
      return void named('masq');
  }
}

export function newRule(table: string, chain: string, exprs: readonly Expr[], flags: number): MessageBuilder {
  const m = nftMessage(NFT_MSG.NEWRULE, flags).str(NFTA_RULE_TABLE, table).str(NFTA_RULE_CHAIN, chain);
  m.nested(NFTA_RULE_EXPRESSIONS, (b) => {
    for (const e of exprs) putExpr(b, e);
  });
  return m;
}

// ---- decoding ------------------------------------------------------------------------------------

/** nfgenmsg is 4 bytes before the attributes of every nf_tables message. */
const NFGENMSG_LEN = 4;

export function decodeSetName(msg: NlMessage): { table: string; name: string } | undefined {
  const a = new Attrs(msg.data, NFGENMSG_LEN);
  const table = a.str(NFTA_SET_TABLE);
  const name = a.str(NFTA_SET_NAME);
  return table !== undefined && name !== undefined ? { table, name } : undefined;
}

/** The comment in libnftnl's user data (TLVs: type, length, value) of an element or a rule. */
export function udataComment(udata: Buffer | undefined, commentType = UDATA_SET_ELEM_COMMENT): string | undefined {
  if (!udata) return undefined;
  for (let at = 0; at + 2 <= udata.length; ) {
    const type = udata[at] as number;
    const len = udata[at + 1] as number;
    if (type === commentType)
      return udata
        .subarray(at + 2, at + 2 + len)
        .toString('utf8')
        .replace(/\0$/, '');
    at += 2 + len;
  }
  return undefined;
}

export function decodeSetElements(msg: NlMessage): SetElement[] {
  const a = new Attrs(msg.data, NFGENMSG_LEN);
  const list = a.get(NFTA_SET_ELEM_LIST_ELEMENTS);
  if (!list) return [];
  const out: SetElement[] = [];
  for (const [type, item] of new Attrs(list).entries) {
    if (type !== NFTA_LIST_ELEM) continue;
    const el = new Attrs(item);
    const keyAttr = el.get(NFTA_SET_ELEM_KEY);
    const key = keyAttr ? new Attrs(keyAttr).get(NFTA_DATA_VALUE) : undefined;
    if (!key) continue;
    const comment = udataComment(el.get(NFTA_SET_ELEM_USERDATA));
    out.push(comment === undefined ? { key: Uint8Array.from(key) } : { key: Uint8Array.from(key), comment });
  }
  return out;
}
