// Numbers from <linux/netfilter/nf_tables.h>, <linux/netfilter.h> and libnftnl's userdata
// (libnftnl/udata.h) that the nf_tables writer needs beyond those in ../netlink-msgs.ts. Each object is
// named after the C prefix (NFTA_SET.FLAGS is NFTA_SET_FLAGS); the values are kernel ABI.

export const NFTA_TABLE = { NAME: 1, FLAGS: 2 } as const;
export const NFTA_CHAIN = { TABLE: 1, HANDLE: 2, NAME: 3, HOOK: 4, POLICY: 5, TYPE: 7, USERDATA: 12 } as const;
export const NFTA_HOOK = { HOOKNUM: 1, PRIORITY: 2 } as const;
export const NFTA_RULE = { TABLE: 1, CHAIN: 2, HANDLE: 3, EXPRESSIONS: 4, POSITION: 6, USERDATA: 7 } as const;
export const NFTA_SET = {
  TABLE: 1,
  NAME: 2,
  FLAGS: 3,
  KEY_TYPE: 4,
  KEY_LEN: 5,
  DATA_TYPE: 6,
  DATA_LEN: 7,
  DESC: 9,
  ID: 10,
  TIMEOUT: 11,
  USERDATA: 13,
} as const;
export const NFTA_SET_DESC = { SIZE: 1, CONCAT: 2 } as const;
export const NFTA_SET_FIELD_LEN = 1;
export const NFTA_SET_ELEM_LIST = { TABLE: 1, SET: 2, ELEMENTS: 3, SET_ID: 4 } as const;
export const NFTA_SET_ELEM = { KEY: 1, DATA: 2, FLAGS: 3, TIMEOUT: 4, USERDATA: 6, KEY_END: 10 } as const;
export const NFTA_LIST_ELEM = 1;
export const NFTA_EXPR = { NAME: 1, DATA: 2 } as const;
export const NFTA_DATA = { VALUE: 1, VERDICT: 2 } as const;
export const NFTA_VERDICT = { CODE: 1, CHAIN: 2 } as const;

export const NFT_SET_F = {
  ANONYMOUS: 0x1,
  CONSTANT: 0x2,
  INTERVAL: 0x4,
  MAP: 0x8,
  TIMEOUT: 0x10,
  CONCAT: 0x80,
} as const;
export const NFT_SET_ELEM_INTERVAL_END = 0x1;
/** NFTA_SET_DATA_TYPE of a verdict map (NFT_DATA_VERDICT). */
export const NFT_DATA_VERDICT = 0xffffff00;

/** Registers: 0 holds the verdict; 1-4 are the legacy 16-byte registers; 8-23 the 32-bit ones. */
export const NFT_REG_VERDICT = 0;
export const NFT_REG_1 = 1;
export const NFT_REG32_00 = 8;
export const NFT_REG32_COUNT = 16;

export const NFT_PAYLOAD_BASE = { link: 0, network: 1, transport: 2 } as const;
export const NFT_META_KEY = {
  len: 0,
  protocol: 1,
  mark: 3,
  iif: 4,
  oif: 5,
  iifname: 6,
  oifname: 7,
  nfproto: 15,
  l4proto: 16,
} as const;
export const NFT_CMP_OP = { '==': 0, '!=': 1, '<': 2, '<=': 3, '>': 4, '>=': 5 } as const;
export const NFT_RANGE_OP = { '==': 0, '!=': 1 } as const;
export const NFT_CT_KEY = { state: 0 } as const;
export const NFT_FIB_RESULT_ADDRTYPE = 3;
export const NFT_FIB_F = { SADDR: 1, DADDR: 2, MARK: 4, IIF: 8, OIF: 16 } as const;
export const NFT_LOOKUP_F_INV = 1;
export const NFT_LIMIT_TYPE = { packets: 0, bytes: 1 } as const;
export const NF_NAT_RANGE = { PERSISTENT: 0x8, RANDOM: 0x4, RANDOM_FULLY: 0x10 } as const;

/** Verdict codes: NF_DROP, NF_ACCEPT and nf_tables' own negative ones. */
export const VERDICT_CODE = { drop: 0, accept: 1, continue: -1, break: -2, jump: -3, goto: -4, return: -5 } as const;

export const NF_HOOK = { prerouting: 0, input: 1, forward: 2, output: 3, postrouting: 4, ingress: 0 } as const;
/** nft's named priorities (nft(8) "CHAINS": the inet/ip/ip6 family values). */
export const CHAIN_PRIORITY = { raw: -300, mangle: -150, dstnat: -100, filter: 0, security: 50, srcnat: 100 } as const;

/** Attributes of each expression's NFTA_EXPR_DATA (nf_tables.h `enum nft_<name>_attributes`). */
export const EXPR_ATTR = {
  payload: { DREG: 1, BASE: 2, OFFSET: 3, LEN: 4 },
  meta: { DREG: 1, KEY: 2 },
  cmp: { SREG: 1, OP: 2, DATA: 3 },
  bitwise: { SREG: 1, DREG: 2, LEN: 3, MASK: 4, XOR: 5 },
  range: { SREG: 1, OP: 2, FROM: 3, TO: 4 },
  lookup: { SET: 1, SREG: 2, DREG: 3, SET_ID: 4, FLAGS: 5 },
  immediate: { DREG: 1, DATA: 2 },
  counter: { BYTES: 1, PACKETS: 2 },
  log: { GROUP: 1, PREFIX: 2, LEVEL: 5 },
  limit: { RATE: 1, UNIT: 2, BURST: 3, TYPE: 4, FLAGS: 5 },
  masq: { FLAGS: 1 },
  ct: { DREG: 1, KEY: 2 },
  fib: { DREG: 1, RESULT: 2, FLAGS: 3 },
} as const;

/** libnftnl's userdata TLVs (type u8, length u8, value), which nft reads back for comments and display. */
export const UDATA_RULE_COMMENT = 0;
export const UDATA_SET = { KEYBYTEORDER: 0, DATABYTEORDER: 1, COMMENT: 7 } as const;
export const UDATA_CHAIN_COMMENT = 0;
export const UDATA_SET_ELEM_COMMENT = 0;
/** nft's `enum byteorder` as stored in set userdata. */
export const NFT_BYTEORDER = { invalid: 0, host: 1, big: 2 } as const;
