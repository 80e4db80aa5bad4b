// The rules' counters read straight out of a GETRULE dump, for the /metrics scrape: per rule its
// chain, handle, comment and counter, decoded where the message lies in the receive buffer. No
// expression tree, no copy of a datagram or a message, no digest, and one string per chain rather
// than per rule (a chain's rules arrive together). read.ts's readTableRules is the full reading (the
// drift check's digests); this one is for the scrape, which runs on a timer at any table size.
import type { NetlinkSocket } from '../../kernel/index.ts';
import { nlaAlign } from '../../kernel/netlink-codec.ts';
import { NFNL_SUBSYS_NFTABLES, NFT_MSG } from '../netlink-msgs.ts';
import { EXPR_ATTR, NFTA_EXPR, NFTA_LIST_ELEM, NFTA_RULE, UDATA_RULE_COMMENT } from './const.ts';
import { attrLen, u64At } from './decode.ts';

/** One counted rule, as the transport's counters() returns it. */
export interface ScannedCounter {
  chain: string;
  handle: number;
  comment?: string;
  packets: number;
  bytes: number;
}

/** nfgenmsg: family, version, res_id. */
const NFGENMSG_LEN = 4;
const COUNTER = Buffer.from('counter\0');

/** Whether d[at, end) holds exactly `want`: a loop, as Buffer#compare's checks cost more than these
 * few bytes (it was a quarter of the scan's time). */
function bytesEqual(d: Buffer, at: number, end: number, want: Buffer): boolean {
  if (end - at !== want.length) return false;
  for (let i = 0; i < want.length; i++) if (d[at + i] !== want[i]) return false;
  return true;
}

/** An attribute's type, flags masked off (bytes rather than readUInt16LE, whose checks cost more). */
function attrType(d: Buffer, off: number): number {
  return ((d[off + 2] as number) | ((d[off + 3] as number) << 8)) & 0x3fff;
}

/** The bytes of a string attribute without its NUL. */
function strEnd(d: Buffer, at: number, end: number): number {
  return end > at && d[end - 1] === 0 ? end - 1 : end;
}

/** Reads NEWRULE messages of one table into counters; rules without a counter expression are skipped
 * (kept with zero counts when `everyRule`: a chain's handles and comments, in order). */
export class CounterScanner {
  readonly out: ScannedCounter[] = [];
  private readonly tableName: Buffer;
  private readonly everyRule: boolean;
  /** The last chain's name, as bytes and as the string every rule of it shares. */
  private chainBytes = Buffer.alloc(0);
  private chain = '';

  constructor(table: string, everyRule = false) {
    this.tableName = Buffer.from(table);
    this.everyRule = everyRule;
  }

  readonly visit = (d: Buffer, type: number, start: number, end: number): void => {
    if (type !== ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG.NEWRULE)) return;
    let tableOk = false;
    let chainAt = -1;
    let chainEnd = -1;
    let handle = -1;
    let packets = -1;
    let bytes = 0;
    let udataAt = -1;
    let udataEnd = -1;
    for (
      let off = start + NFGENMSG_LEN, len = attrLen(d, off, end);
      len > 0;
      off += nlaAlign(len), len = attrLen(d, off, end)
    ) {
      const t = attrType(d, off);
      const at = off + 4;
      if (t === NFTA_RULE.TABLE) {
        const e = strEnd(d, at, off + len);
        tableOk = bytesEqual(d, at, e, this.tableName);
      } else if (t === NFTA_RULE.CHAIN) {
        chainAt = at;
        chainEnd = strEnd(d, at, off + len);
      } else if (t === NFTA_RULE.HANDLE && len >= 12) handle = u64At(d, at);
      else if (t === NFTA_RULE.USERDATA) {
        udataAt = at;
        udataEnd = off + len;
      } else if (t === NFTA_RULE.EXPRESSIONS && packets < 0) {
        const listEnd = off + len;
        for (let e = at, el = attrLen(d, e, listEnd); el > 0; e += nlaAlign(el), el = attrLen(d, e, listEnd)) {
          if (attrType(d, e) !== NFTA_LIST_ELEM) continue;
          const found = readCounter(d, e + 4, e + el);
          if (found) {
            [packets, bytes] = found;
            break;
          }
        }
      }
    }
    if (!tableOk || chainAt < 0 || handle < 0 || (packets < 0 && !this.everyRule)) return;
    if (!bytesEqual(d, chainAt, chainEnd, this.chainBytes)) {
      this.chainBytes = Buffer.from(d.subarray(chainAt, chainEnd));
      this.chain = d.toString('utf8', chainAt, chainEnd);
    }
    const rule: ScannedCounter =
      packets < 0 ? { chain: this.chain, handle, packets: 0, bytes: 0 } : { chain: this.chain, handle, packets, bytes };
    if (udataAt >= 0) {
      const comment = udataComment(d, udataAt, udataEnd);
      if (comment !== undefined) rule.comment = comment;
    }
    this.out.push(rule);
  };
}

/** A counter expression's [packets, bytes] (a NFTA_LIST_ELEM's contents), or undefined for another. */
function readCounter(d: Buffer, start: number, end: number): [number, number] | undefined {
  let isCounter = false;
  let dataAt = -1;
  let dataEnd = -1;
  for (let off = start, len = attrLen(d, off, end); len > 0; off += nlaAlign(len), len = attrLen(d, off, end)) {
    const t = attrType(d, off);
    if (t === NFTA_EXPR.NAME) {
      isCounter = bytesEqual(d, off + 4, off + len, COUNTER);
      // The name comes first: another expression's data is not walked.
      if (!isCounter) return undefined;
    } else if (t === NFTA_EXPR.DATA) {
      dataAt = off + 4;
      dataEnd = off + len;
    }
  }
  if (!isCounter || dataAt < 0) return undefined;
  let packets = 0;
  let bytes = 0;
  for (
    let off = dataAt, len = attrLen(d, off, dataEnd);
    len > 0;
    off += nlaAlign(len), len = attrLen(d, off, dataEnd)
  ) {
    if (len < 12) continue;
    const t = attrType(d, off);
    if (t === EXPR_ATTR.counter.PACKETS) packets = u64At(d, off + 4);
    else if (t === EXPR_ATTR.counter.BYTES) bytes = u64At(d, off + 4);
  }
  return [packets, bytes];
}

/** The comment TLV of libnftnl's rule user data (type, length, value), as udataComment reads it. */
function udataComment(d: Buffer, start: number, end: number): string | undefined {
  for (let at = start; at + 2 <= end; ) {
    const type = d[at] as number;
    const len = d[at + 1] as number;
    if (type === UDATA_RULE_COMMENT) {
      const stop = Math.min(at + 2 + len, end);
      return d.toString('utf8', at + 2, stop > at + 2 && d[stop - 1] === 0 ? stop - 1 : stop);
    }
    at += 2 + len;
  }
  return undefined;
}

/**
 * The counters of one table's rules (one GETRULE dump, or with `chain` that chain's), in the kernel's
 * order; [] when the table or chain does not exist (ENOENT is the caller's, as for read.ts's dumps).
 */
export function scanRuleCounters(
  nl: NetlinkSocket,
  request: Parameters<NetlinkSocket['dumpScan']>[0],
  table: string,
  what: string,
  everyRule = false,
): ScannedCounter[] {
  let scanner = new CounterScanner(table, everyRule);
  nl.dumpScan(request, what, () => {
    scanner = new CounterScanner(table, everyRule);
    return scanner.visit;
  });
  return scanner.out;
}
