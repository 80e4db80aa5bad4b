// Connection tracking entries over ctnetlink (NETLINK_NETFILTER, subsystem CTNETLINK), in process:
// list the entries of one address family, look one entry up by a tuple (a hash lookup, no walk) and
// delete single entries by their original tuple. The
// policy code uses it to cut flows a NetworkPolicy change denies (nftables only judges a
// connection's first packet; an established flow keeps passing `ct state established` until its
// entry goes). See <linux/netfilter/nfnetlink_conntrack.h> for the message and attribute numbers.
//
// Deleting an entry does not drop anything by itself: the flow's next packet finds no entry, is
// tracked again as new (TCP mid-stream pickup, nf_conntrack_tcp_loose, is on by default; UDP is
// always "new") and meets the policy's verdict for new connections.
import { Attrs, MessageBuilder, type NlMessage } from './netlink-codec.ts';
import { NetlinkSocket } from './netlink-socket.ts';
import { AF, NETLINK_NETFILTER } from './netlink-const.ts';
import { isKernelError } from './errors.ts';
import { formatIp, parseIp } from '../net/ip.ts';

const NFNL_SUBSYS_CTNETLINK = 1;
const IPCTNL_MSG_CT_NEW = 0;
const IPCTNL_MSG_CT_GET = 1;
const IPCTNL_MSG_CT_DELETE = 2;

const CTA_TUPLE_ORIG = 1;
const CTA_TUPLE_REPLY = 2;
const CTA_STATUS = 3;
const CTA_ID = 12;
const CTA_ZONE = 18;
const CTA_TUPLE_IP = 1;
const CTA_TUPLE_PROTO = 2;
const CTA_TUPLE_ZONE = 3;
const CTA_IP_V4_SRC = 1;
const CTA_IP_V4_DST = 2;
const CTA_IP_V6_SRC = 3;
const CTA_IP_V6_DST = 4;
const CTA_PROTO_NUM = 1;
const CTA_PROTO_SRC_PORT = 2;
const CTA_PROTO_DST_PORT = 3;

export const IPPROTO = { TCP: 6, UDP: 17, SCTP: 132, ICMP: 1, ICMPV6: 58 } as const;

export interface ConntrackTuple {
  src: string;
  dst: string;
  /** IP protocol number (6 TCP, 17 UDP, 132 SCTP…). */
  proto: number;
  /** Ports for TCP, UDP and SCTP; undefined for other protocols. */
  sport?: number;
  dport?: number;
}

export interface ConntrackEntry {
  family: 4 | 6;
  /** The tuple of the connection's first packet (its source, its destination before any DNAT). */
  orig: ConntrackTuple;
  /** The tuple replies carry: its source is the real destination after DNAT. */
  reply: ConntrackTuple;
  zone?: number;
  /** The kernel's id of the entry: a delete with it never hits a newer entry of the same tuple. */
  id?: number;
  status?: number;
}

function ctMessage(type: number, flags: number, family: number): MessageBuilder {
  const m = new MessageBuilder((NFNL_SUBSYS_CTNETLINK << 8) | type, flags);
  const gen = Buffer.alloc(4);
  gen.writeUInt8(family, 0);
  m.raw(gen);
  return m;
}

function decodeTuple(a: Attrs | undefined, family: 4 | 6): ConntrackTuple | undefined {
  if (!a) return undefined;
  const ip = a.nested(CTA_TUPLE_IP);
  const proto = a.nested(CTA_TUPLE_PROTO);
  if (!ip || !proto) return undefined;
  const src = ip.get(family === 4 ? CTA_IP_V4_SRC : CTA_IP_V6_SRC);
  const dst = ip.get(family === 4 ? CTA_IP_V4_DST : CTA_IP_V6_DST);
  const num = proto.u8(CTA_PROTO_NUM);
  if (!src || !dst || num === undefined) return undefined;
  const t: ConntrackTuple = { src: formatIp(new Uint8Array(src)), dst: formatIp(new Uint8Array(dst)), proto: num };
  const sport = proto.be16(CTA_PROTO_SRC_PORT);
  const dport = proto.be16(CTA_PROTO_DST_PORT);
  if (sport !== undefined) t.sport = sport;
  if (dport !== undefined) t.dport = dport;
  return t;
}

/** One CT_NEW message of a dump into an entry; undefined for what it cannot read. */
export function decodeConntrack(msg: NlMessage): ConntrackEntry | undefined {
  if (msg.type >> 8 !== NFNL_SUBSYS_CTNETLINK || (msg.type & 0xff) !== IPCTNL_MSG_CT_NEW || msg.data.length < 4)
    return undefined;
  const af = msg.data.readUInt8(0);
  const family = af === AF.INET ? 4 : af === AF.INET6 ? 6 : undefined;
  if (!family) return undefined;
  const attrs = new Attrs(msg.data, 4);
  const orig = decodeTuple(attrs.nested(CTA_TUPLE_ORIG), family);
  const reply = decodeTuple(attrs.nested(CTA_TUPLE_REPLY), family);
  if (!orig || !reply) return undefined;
  const e: ConntrackEntry = { family, orig, reply };
  const zone = attrs.get(CTA_ZONE);
  if (zone && zone.length >= 2) e.zone = zone.readUInt16BE(0);
  const id = attrs.get(CTA_ID);
  if (id && id.length >= 4) e.id = id.readUInt32BE(0);
  const status = attrs.get(CTA_STATUS);
  if (status && status.length >= 4) e.status = status.readUInt32BE(0);
  return e;
}

function encodeTuple(
  m: MessageBuilder,
  type: number,
  t: ConntrackTuple,
  family: 4 | 6,
  zone: number | undefined,
): void {
  m.nested(type, (b) => {
    b.nested(CTA_TUPLE_IP, (ip) => {
      ip.attr(family === 4 ? CTA_IP_V4_SRC : CTA_IP_V6_SRC, parseIp(t.src).bytes);
      ip.attr(family === 4 ? CTA_IP_V4_DST : CTA_IP_V6_DST, parseIp(t.dst).bytes);
    });
    b.nested(CTA_TUPLE_PROTO, (p) => {
      p.u8(CTA_PROTO_NUM, t.proto);
      if (t.sport !== undefined) p.be16(CTA_PROTO_SRC_PORT, t.sport);
      if (t.dport !== undefined) p.be16(CTA_PROTO_DST_PORT, t.dport);
    });
    if (zone !== undefined) {
      const z = Buffer.alloc(2);
      z.writeUInt16BE(zone, 0);
      b.attr(CTA_TUPLE_ZONE, z);
    }
  });
}

/**
 * A ctnetlink socket in the caller's network namespace (or `netns`). Synchronous, as NetlinkSocket:
 * a dump of a few thousand entries takes a few milliseconds.
 */
export class Conntrack {
  private readonly nl: NetlinkSocket;

  private constructor(nl: NetlinkSocket) {
    this.nl = nl;
  }

  /** Opens the socket; the kernel loads nf_conntrack_netlink on the first request if needed. */
  static open(opts: { netns?: string } = {}): Conntrack {
    return new Conntrack(
      NetlinkSocket.open({ protocol: NETLINK_NETFILTER, ...(opts.netns ? { netns: opts.netns } : {}) }),
    );
  }

  close(): void {
    this.nl.close();
  }

  /** Every entry of one family. */
  list(family: 4 | 6): ConntrackEntry[] {
    const msgs = this.nl.dump(
      ctMessage(IPCTNL_MSG_CT_GET, 0, family === 4 ? AF.INET : AF.INET6),
      `list the IPv${family} conntrack entries`,
    );
    const out: ConntrackEntry[] = [];
    for (const m of msgs) {
      const e = decodeConntrack(m);
      if (e) out.push(e);
    }
    return out;
  }

  /**
   * The entry one of whose two tuples is `tuple` (the kernel's hash lookup, no walk of the table), or
   * undefined when there is none. The kernel does not say which direction matched: a caller that
   * wants the entry whose original tuple is `tuple` compares it (sameTuple).
   */
  get(family: 4 | 6, tuple: ConntrackTuple, zone?: number): ConntrackEntry | undefined {
    const m = tupleMessage(IPCTNL_MSG_CT_GET, family, tuple, zone);
    try {
      for (const msg of this.nl.request(m, () => `look up the conntrack entry ${describeTuple(tuple)}`)) {
        const e = decodeConntrack(msg);
        if (e) return e;
      }
      return undefined;
    } catch (err) {
      if (isKernelError(err, 'ENOENT')) return undefined;
      throw err;
    }
  }

  /**
   * Deletes one entry by its original tuple (and id, when known). Returns false when it is gone
   * already (ENOENT: it expired, or the kernel removed it since it was listed).
   */
  delete(entry: ConntrackEntry): boolean {
    const m = tupleMessage(IPCTNL_MSG_CT_DELETE, entry.family, entry.orig, entry.zone);
    if (entry.id !== undefined) {
      const id = Buffer.alloc(4);
      id.writeUInt32BE(entry.id, 0);
      m.attr(CTA_ID, id);
    }
    try {
      this.nl.request(m, () => `delete the conntrack entry ${describeTuple(entry.orig)}`);
      return true;
    } catch (err) {
      if (isKernelError(err, 'ENOENT')) return false;
      throw err;
    }
  }
}

/** A GET or DELETE of the entry whose original tuple is `tuple` (in `zone`, when one is given). */
function tupleMessage(type: number, family: 4 | 6, tuple: ConntrackTuple, zone: number | undefined) {
  const m = ctMessage(type, 0, family === 4 ? AF.INET : AF.INET6);
  encodeTuple(m, CTA_TUPLE_ORIG, tuple, family, zone);
  if (zone !== undefined) {
    const z = Buffer.alloc(2);
    z.writeUInt16BE(zone, 0);
    m.attr(CTA_ZONE, z);
  }
  return m;
}

/** Whether two tuples name the same addresses, protocol and ports. */
export function sameTuple(a: ConntrackTuple, b: ConntrackTuple): boolean {
  return a.proto === b.proto && a.src === b.src && a.dst === b.dst && a.sport === b.sport && a.dport === b.dport;
}

/** "tcp 10.244.1.2:40000 -> 10.244.2.3:80" for logs. */
export function describeTuple(t: ConntrackTuple): string {
  const name =
    Object.entries(IPPROTO)
      .find(([, n]) => n === t.proto)?.[0]
      .toLowerCase() ?? `proto ${t.proto}`;
  const host = (ip: string, port: number | undefined) =>
    port === undefined ? ip : ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
  return `${name} ${host(t.src, t.sport)} -> ${host(t.dst, t.dport)}`;
}
