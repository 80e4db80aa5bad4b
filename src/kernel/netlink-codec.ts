// Over 400 lines: the whole netlink wire format (headers, attributes, nesting) in one module.
// The netlink wire format, in pure TypeScript (no kernel needed to test it).
//
// A message is a 16-byte nlmsghdr, a fixed family header (ifinfomsg, ifaddrmsg, rtmsg, ndmsg) and a
// run of attributes: 4-byte rtattr headers (length, type) each followed by a payload padded to 4 bytes.
// Nested attributes are attributes whose payload is another run of attributes (NLA_F_NESTED set).
// All integers are host byte order (little endian here) except where the kernel says network order
// (VXLAN port, addresses). See netlink(7), rtnetlink(7) and <linux/netlink.h>.
import { NLA_F_NESTED, NLA_TYPE_MASK, NLM_F, NLMSG, NLMSG_HDRLEN, NLMSGERR_ATTR } from './netlink-const.ts';

export const NLA_ALIGNTO = 4;
export const nlaAlign = (n: number): number => (n + NLA_ALIGNTO - 1) & ~(NLA_ALIGNTO - 1);

/**
 * Where the messages of a large batch are built one after another (src/nft/netlink/sink.ts): one
 * growing buffer, the batch's datagram once they are all in it. A type only here: the plugin's
 * executable carries no code for it.
 */
export interface MessageSink {
  /** The bytes; replaced by a larger buffer as it grows. */
  buf: Buffer;
  /** Bytes written (or reserved by the message being built). */
  used: number;
  /** Makes room for `need` bytes in all, keeping what is written; returns the (new) buffer. */
  grow(need: number): Buffer;
}

/**
 * Builds one request: header, fixed family struct, attributes. Grows as needed. With a sink it is
 * built at the sink's end (one builder at a time per sink: the next one starts after this one).
 */
export class MessageBuilder {
  private buf: Buffer;
  private len = NLMSG_HDRLEN;
  /** Where the message starts in `buf` (0 without a sink). */
  readonly offset: number;
  private readonly sink: MessageSink | undefined;

  constructor(type: number, flags: number, initialSize = 256, sink?: MessageSink) {
    if (sink) {
      this.sink = sink;
      this.offset = sink.used;
      sink.used += NLMSG_HDRLEN;
      this.buf = sink.grow(sink.used);
      // seq and pid zeroed (the sink's memory is uninitialised); the rest is written below. Two
      // writes rather than fill(): its range checks were 55 ms of a rebuild's 14,000 messages.
      this.buf.writeUInt32LE(0, this.offset + 8);
      this.buf.writeUInt32LE(0, this.offset + 12);
    } else {
      this.offset = 0;
      this.buf = Buffer.alloc(Math.max(initialSize, 64));
    }
    this.buf.writeUInt32LE(NLMSG_HDRLEN, this.offset);
    this.buf.writeUInt16LE(type, this.offset + 4);
    this.buf.writeUInt16LE(flags | NLM_F.REQUEST, this.offset + 6);
  }

  get length(): number {
    return this.len;
  }

  /** Room for `n` bytes and their padding (zeroed); returns where they go in `buf`. */
  private reserve(n: number): number {
    const at = this.offset + this.len;
    const end = at + nlaAlign(n);
    if (this.sink) {
      // The sink's buffer is this builder's until the next one starts: it grows it only when full.
      if (end > this.buf.length) this.buf = this.sink.grow(end);
      this.sink.used = end;
    } else if (end > this.buf.length) {
      const bigger = Buffer.alloc(Math.max(end, this.buf.length * 2));
      this.buf.copy(bigger, 0, 0, at);
      this.buf = bigger;
    }
    for (let i = at + n; i < end; i++) this.buf[i] = 0;
    this.len = end - this.offset;
    // The length is kept current: a sink's message is read in place, never finish()ed.
    this.buf.writeUInt32LE(this.len, this.offset);
    return at;
  }

  /** Raw bytes (a fixed header such as ifinfomsg), padded to 4 bytes. */
  raw(bytes: Uint8Array): this {
    const at = this.reserve(bytes.length);
    this.buf.set(bytes, at);
    return this;
  }

  attr(type: number, payload: Uint8Array): this {
    const at = this.reserve(4 + payload.length);
    this.buf.writeUInt16LE(4 + payload.length, at);
    this.buf.writeUInt16LE(type, at + 2);
    this.buf.set(payload, at + 4);
    return this;
  }

  /** A flag attribute: present with no payload. */
  flag(type: number): this {
    return this.attr(type, new Uint8Array(0));
  }

  u8(type: number, value: number): this {
    const at = this.reserve(5);
    this.buf.writeUInt16LE(5, at);
    this.buf.writeUInt16LE(type, at + 2);
    this.buf.writeUInt8(value, at + 4);
    return this;
  }

  u16(type: number, value: number): this {
    const at = this.reserve(6);
    this.buf.writeUInt16LE(6, at);
    this.buf.writeUInt16LE(type, at + 2);
    this.buf.writeUInt16LE(value, at + 4);
    return this;
  }

  /** A 16-bit value in network byte order (ports). */
  be16(type: number, value: number): this {
    const at = this.reserve(6);
    this.buf.writeUInt16LE(6, at);
    this.buf.writeUInt16LE(type, at + 2);
    this.buf.writeUInt16BE(value, at + 4);
    return this;
  }

  u32(type: number, value: number): this {
    const at = this.reserve(8);
    this.buf.writeUInt16LE(8, at);
    this.buf.writeUInt16LE(type, at + 2);
    this.buf.writeUInt32LE(value >>> 0, at + 4);
    return this;
  }

  s32(type: number, value: number): this {
    const at = this.reserve(8);
    this.buf.writeUInt16LE(8, at);
    this.buf.writeUInt16LE(type, at + 2);
    this.buf.writeInt32LE(value, at + 4);
    return this;
  }

  /** A NUL-terminated string (IFLA_IFNAME, IFLA_INFO_KIND). */
  str(type: number, value: string): this {
    // Written in place: a rule's table, chain and expression names, no buffer of their own each.
    const n = Buffer.byteLength(value, 'utf8');
    const at = this.reserve(5 + n);
    this.buf.writeUInt16LE(5 + n, at);
    this.buf.writeUInt16LE(type, at + 2);
    this.buf.write(value, at + 4, n, 'utf8');
    this.buf[at + 4 + n] = 0;
    return this;
  }

  /** Starts a nested attribute; close it with end(). */
  begin(type: number): number {
    const at = this.reserve(4);
    this.buf.writeUInt16LE(type | NLA_F_NESTED, at + 2);
    return at;
  }

  end(at: number): this {
    this.buf.writeUInt16LE(this.offset + this.len - at, at);
    return this;
  }

  nested(type: number, fill: (b: this) => void): this {
    const at = this.begin(type);
    fill(this);
    return this.end(at);
  }

  /** The finished message with its length and sequence number filled in. */
  finish(seq = 0, pid = 0): Buffer {
    const at = this.offset;
    this.buf.writeUInt32LE(this.len, at);
    this.buf.writeUInt32LE(seq >>> 0, at + 8);
    this.buf.writeUInt32LE(pid >>> 0, at + 12);
    return this.buf.subarray(at, at + this.len);
  }
}

/** One received netlink message; data is the payload after the nlmsghdr. */
export interface NlMessage {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  data: Buffer;
}

/** Splits a datagram into its messages; throws on a length that does not fit. */
export function splitMessages(datagram: Buffer): NlMessage[] {
  const out: NlMessage[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= datagram.length) {
    const len = datagram.readUInt32LE(off);
    if (len < NLMSG_HDRLEN || off + len > datagram.length) {
      throw new Error(`malformed netlink message: length ${len} at offset ${off} of ${datagram.length}`);
    }
    out.push({
      type: datagram.readUInt16LE(off + 4),
      flags: datagram.readUInt16LE(off + 6),
      seq: datagram.readUInt32LE(off + 8),
      pid: datagram.readUInt32LE(off + 12),
      data: datagram.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += nlaAlign(len);
  }
  return out;
}

/** A run of attributes, by type (flags masked off). A repeated type keeps its last value in get(). */
export class Attrs {
  readonly entries: Array<[number, Buffer]> = [];
  private readonly byType = new Map<number, Buffer>();

  constructor(buf: Buffer, start = 0, end = buf.length) {
    let off = start;
    while (off + 4 <= end) {
      const len = buf.readUInt16LE(off);
      if (len < 4 || off + len > end) break; // a truncated tail: keep what parsed cleanly
      const type = buf.readUInt16LE(off + 2) & NLA_TYPE_MASK;
      const payload = buf.subarray(off + 4, off + len);
      this.entries.push([type, payload]);
      this.byType.set(type, payload);
      off += nlaAlign(len);
    }
  }

  has(type: number): boolean {
    return this.byType.has(type);
  }

  get(type: number): Buffer | undefined {
    return this.byType.get(type);
  }

  u8(type: number): number | undefined {
    const b = this.byType.get(type);
    return b && b.length >= 1 ? b.readUInt8(0) : undefined;
  }

  u16(type: number): number | undefined {
    const b = this.byType.get(type);
    return b && b.length >= 2 ? b.readUInt16LE(0) : undefined;
  }

  be16(type: number): number | undefined {
    const b = this.byType.get(type);
    return b && b.length >= 2 ? b.readUInt16BE(0) : undefined;
  }

  u32(type: number): number | undefined {
    const b = this.byType.get(type);
    return b && b.length >= 4 ? b.readUInt32LE(0) : undefined;
  }

  s32(type: number): number | undefined {
    const b = this.byType.get(type);
    return b && b.length >= 4 ? b.readInt32LE(0) : undefined;
  }

  /** A string attribute without its NUL terminator. */
  str(type: number): string | undefined {
    const b = this.byType.get(type);
    if (!b) return undefined;
    const nul = b.indexOf(0);
    return b.toString('utf8', 0, nul < 0 ? b.length : nul);
  }

  nested(type: number): Attrs | undefined {
    const b = this.byType.get(type);
    return b ? new Attrs(b) : undefined;
  }
}

/** An NLMSG_ERROR payload: errno 0 is an acknowledgement. */
export interface NlError {
  /** Positive errno, 0 for success. */
  errno: number;
  /** Extended ack message (NETLINK_EXT_ACK), e.g. "Nexthop has invalid gateway". */
  message?: string;
  /** Offset in the request of the attribute the kernel rejected. */
  offset?: number;
  /** Type of a required attribute that was missing. */
  missingType?: number;
  /** Header of the request this answers. */
  request: { length: number; type: number; flags: number; seq: number };
}

/**
 * Parses the payload of an NLMSG_ERROR message (struct nlmsgerr): an int error, the request's header
 * (and its payload too unless NLM_F_CAPPED), then with NLM_F_ACK_TLVS the extended ack attributes.
 */
export function parseError(msg: NlMessage): NlError {
  const d = msg.data;
  if (d.length < 4 + NLMSG_HDRLEN) throw new Error(`truncated netlink error message (${d.length} bytes)`);
  const error = d.readInt32LE(0);
  const request = {
    length: d.readUInt32LE(4),
    type: d.readUInt16LE(8),
    flags: d.readUInt16LE(10),
    seq: d.readUInt32LE(12),
  };
  const out: NlError = { errno: error === 0 ? 0 : -error, request };
  if (msg.flags & NLM_F.ACK_TLVS) {
    const tlvStart = msg.flags & NLM_F.CAPPED ? 4 + NLMSG_HDRLEN : 4 + nlaAlign(request.length);
    if (tlvStart <= d.length) {
      const a = new Attrs(d, tlvStart);
      const text = a.str(NLMSGERR_ATTR.MSG);
      if (text) out.message = text;
      const offset = a.u32(NLMSGERR_ATTR.OFFS);
      if (offset !== undefined) out.offset = offset;
      const missing = a.u32(NLMSGERR_ATTR.MISS_TYPE);
      if (missing !== undefined) out.missingType = missing;
    }
  }
  return out;
}

/**
 * Gathers the answer to one request from the datagrams that arrive, for a request with NLM_F_ACK
 * (answer: any replies, then an NLMSG_ERROR) or a dump (answer: multipart messages up to NLMSG_DONE).
 * Messages with another sequence number are left-overs of an earlier request that timed out, and are
 * dropped. Pure: the socket feeds it, and tests feed it recorded or synthetic datagrams.
 */
export class ReplyCollector {
  readonly messages: NlMessage[] = [];
  error: NlError | undefined;
  /** The dump changed while being read (NLM_F_DUMP_INTR): the result may be inconsistent. */
  interrupted = false;
  done = false;

  readonly seq: number;
  readonly dump: boolean;
  readonly portId: number;

  constructor(seq: number, dump: boolean, portId = 0) {
    this.seq = seq;
    this.dump = dump;
    this.portId = portId;
  }

  /** Takes one datagram; returns true once the answer is complete. */
  feed(datagram: Buffer): boolean {
    for (const m of splitMessages(datagram)) {
      if (this.done) break;
      if (m.seq !== this.seq || (m.pid !== 0 && this.portId !== 0 && m.pid !== this.portId)) continue;
      switch (m.type) {
        case NLMSG.NOOP:
          break;
        case NLMSG.ERROR: {
          const e = parseError(m);
          if (e.errno !== 0) this.error = e;
          this.done = true;
          break;
        }
        case NLMSG.DONE: {
          // A dump that failed part way ends in NLMSG_DONE carrying a negative errno (and maybe ack TLVs).
          if (m.data.length >= 4 && m.data.readInt32LE(0) < 0) {
            const e: NlError = { errno: -m.data.readInt32LE(0), request: { length: 0, type: 0, flags: 0, seq: m.seq } };
            if (m.flags & NLM_F.ACK_TLVS) {
              const text = new Attrs(m.data, 4).str(NLMSGERR_ATTR.MSG);
              if (text) e.message = text;
            }
            this.error = e;
          }
          this.done = true;
          break;
        }
        case NLMSG.OVERRUN:
          this.error = {
            errno: 105 /* ENOBUFS */,
            message: 'netlink overrun',
            request: { length: 0, type: 0, flags: 0, seq: m.seq },
          };
          this.done = true;
          break;
        default:
          if (m.flags & NLM_F.DUMP_INTR) this.interrupted = true;
          this.messages.push(m);
      }
    }
    return this.done;
  }
}

// Fixed family headers. Each returns the bytes that follow the nlmsghdr.

export interface IfInfoMsg {
  family?: number;
  type?: number;
  index?: number;
  flags?: number;
  change?: number;
}

/** struct ifinfomsg: family u8, pad u8, type u16, index s32, flags u32, change u32. */
export function ifinfomsg(h: IfInfoMsg): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt8(h.family ?? 0, 0);
  b.writeUInt16LE(h.type ?? 0, 2);
  b.writeInt32LE(h.index ?? 0, 4);
  b.writeUInt32LE((h.flags ?? 0) >>> 0, 8);
  b.writeUInt32LE((h.change ?? 0) >>> 0, 12);
  return b;
}

export function readIfinfomsg(d: Buffer): Required<IfInfoMsg> {
  return {
    family: d.readUInt8(0),
    type: d.readUInt16LE(2),
    index: d.readInt32LE(4),
    flags: d.readUInt32LE(8),
    change: d.readUInt32LE(12),
  };
}

export interface IfAddrMsg {
  family: number;
  prefixLength?: number;
  flags?: number;
  scope?: number;
  index?: number;
}

/** struct ifaddrmsg: family u8, prefixlen u8, flags u8, scope u8, index u32. */
export function ifaddrmsg(h: IfAddrMsg): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt8(h.family, 0);
  b.writeUInt8(h.prefixLength ?? 0, 1);
  b.writeUInt8((h.flags ?? 0) & 0xff, 2);
  b.writeUInt8(h.scope ?? 0, 3);
  b.writeUInt32LE(h.index ?? 0, 4);
  return b;
}

export function readIfaddrmsg(d: Buffer): Required<IfAddrMsg> {
  return {
    family: d.readUInt8(0),
    prefixLength: d.readUInt8(1),
    flags: d.readUInt8(2),
    scope: d.readUInt8(3),
    index: d.readUInt32LE(4),
  };
}

export interface RtMsg {
  family: number;
  dstLength?: number;
  srcLength?: number;
  tos?: number;
  table?: number;
  protocol?: number;
  scope?: number;
  type?: number;
  flags?: number;
}

/** struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type (u8 each), flags u32. */
export function rtmsg(h: RtMsg): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt8(h.family, 0);
  b.writeUInt8(h.dstLength ?? 0, 1);
  b.writeUInt8(h.srcLength ?? 0, 2);
  b.writeUInt8(h.tos ?? 0, 3);
  b.writeUInt8(h.table ?? 0, 4);
  b.writeUInt8(h.protocol ?? 0, 5);
  b.writeUInt8(h.scope ?? 0, 6);
  b.writeUInt8(h.type ?? 0, 7);
  b.writeUInt32LE((h.flags ?? 0) >>> 0, 8);
  return b;
}

export function readRtmsg(d: Buffer): Required<RtMsg> {
  return {
    family: d.readUInt8(0),
    dstLength: d.readUInt8(1),
    srcLength: d.readUInt8(2),
    tos: d.readUInt8(3),
    table: d.readUInt8(4),
    protocol: d.readUInt8(5),
    scope: d.readUInt8(6),
    type: d.readUInt8(7),
    flags: d.readUInt32LE(8),
  };
}

export interface NdMsg {
  family: number;
  index?: number;
  state?: number;
  flags?: number;
  type?: number;
}

/** struct ndmsg: family u8, pad u8, pad u16, ifindex s32, state u16, flags u8, type u8. */
export function ndmsg(h: NdMsg): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt8(h.family, 0);
  b.writeInt32LE(h.index ?? 0, 4);
  b.writeUInt16LE(h.state ?? 0, 8);
  b.writeUInt8(h.flags ?? 0, 10);
  b.writeUInt8(h.type ?? 0, 11);
  return b;
}

export function readNdmsg(d: Buffer): Required<NdMsg> {
  return {
    family: d.readUInt8(0),
    index: d.readInt32LE(4),
    state: d.readUInt16LE(8),
    flags: d.readUInt8(10),
    type: d.readUInt8(11),
  };
}

/** Visits one message of a dump in place: `buf` is reused after the call, so copy what is kept. */
export type MessageVisitor = (buf: Buffer, type: number, payloadAt: number, end: number) => void;

/**
 * The answer to a dump, like ReplyCollector's, with each data message handed to a visitor where it
 * lies in the datagram instead of being collected: no NlMessage and no copy per message.
 */
export class ScanCollector {
  error: NlError | undefined;
  interrupted = false;
  done = false;
  readonly borrows = true;

  private readonly seq: number;
  private readonly portId: number;
  private readonly visit: MessageVisitor;

  constructor(seq: number, portId: number, visit: MessageVisitor) {
    this.seq = seq;
    this.portId = portId;
    this.visit = visit;
  }

  feed(datagram: Buffer): boolean {
    let off = 0;
    while (!this.done && off + NLMSG_HDRLEN <= datagram.length) {
      const len = datagram.readUInt32LE(off);
      if (len < NLMSG_HDRLEN || off + len > datagram.length) {
        throw new Error(`malformed netlink message: length ${len} at offset ${off} of ${datagram.length}`);
      }
      const type = datagram.readUInt16LE(off + 4);
      const flags = datagram.readUInt16LE(off + 6);
      const seq = datagram.readUInt32LE(off + 8);
      const pid = datagram.readUInt32LE(off + 12);
      if (seq === this.seq && (pid === 0 || this.portId === 0 || pid === this.portId)) {
        if (type === NLMSG.ERROR || type === NLMSG.DONE || type === NLMSG.OVERRUN) {
          // The rare ends of an answer: ReplyCollector's reading of them, on a copy of this message.
          const end = new ReplyCollector(this.seq, true, this.portId);
          end.feed(Buffer.from(datagram.subarray(off, off + len)));
          this.error = end.error;
          this.done = true;
        } else if (type !== NLMSG.NOOP) {
          if (flags & NLM_F.DUMP_INTR) this.interrupted = true;
          this.visit(datagram, type, off + NLMSG_HDRLEN, off + len);
        }
      }
      off += nlaAlign(len);
    }
    return this.done;
  }
}
