// A NETLINK_ROUTE socket bound to one network namespace, used synchronously: send a request, read
// until its answer is complete. A CNI invocation makes a handful of requests, each a few tens of
// microseconds, so blocking the event loop is cheaper than any async machinery; SO_RCVTIMEO bounds
// every read so a missing answer can never hang the plugin.
import { errno, libc, sendOffThread } from './libc.ts';
import { KernelError } from './errors.ts';
import { withNetns } from './netns.ts';
import {
  MessageBuilder,
  parseError,
  ReplyCollector,
  ScanCollector,
  splitMessages,
  type NlError,
  type NlMessage,
} from './netlink-codec.ts';
import type { MessageVisitor } from './netlink-codec.ts';
import { AF, NETLINK, NETLINK_ROUTE, NLM_F, NLMSG, SOL_NETLINK } from './netlink-const.ts';

const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0x80000;
const SOL_SOCKET = 1;
const SO_SNDBUF = 7;
const SO_RCVBUF = 8;
const SO_RCVTIMEO = 20;
const SO_SNDBUFFORCE = 32;
const SO_RCVBUFFORCE = 33;
const MSG_TRUNC = 0x20;
const EINTR = 4;
const EAGAIN = 11;
const ETIMEDOUT = 110;
const EMSGSIZE = 90;
const EBUSY = 16;

/** Large enough for any rtnetlink datagram: the kernel caps dump datagrams at 32 KiB. */
const RECV_BUFFER = 64 * 1024;
/** How often a dump that the kernel marked inconsistent (NLM_F_DUMP_INTR) is read again. */
const DUMP_RETRIES = 5;

export interface NetlinkOptions {
  /** Open the socket in this network namespace (a path such as /run/netns/x); default: the caller's. */
  netns?: string;
  /** Longest wait for one answer from the kernel, in ms (default 5000). */
  timeoutMs?: number;
  /** Netlink protocol; default NETLINK_ROUTE. NETLINK_NETFILTER (12) for nf_tables. */
  protocol?: number;
}

/** What a request is about, for the error message: "add address 10.1.1.2/24 to eth0". */
export type Operation = string | (() => string);

function int32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(value, 0);
  return b;
}

/** What reads the kernel's answer to one request (ReplyCollector) or to a batch. */
export interface Collector {
  done: boolean;
  error: NlError | undefined;
  feed(datagram: Buffer): boolean;
  /** The collector reads each datagram before feed returns and keeps no reference into it: the
   * socket hands it the receive buffer itself instead of a copy. */
  readonly borrows?: boolean;
}

export class NetlinkSocket {
  /** The namespace path this socket was opened in, undefined for the caller's own. */
  readonly netns: string | undefined;
  private fd: number;
  private seq: number;
  private readonly portId: number;
  private readonly rx = Buffer.allocUnsafe(RECV_BUFFER);

  /** The socket's netlink port id: the nlmsg_pid of the notifications its own requests cause. */
  get port(): number {
    return this.portId;
  }

  private constructor(fd: number, portId: number, netns: string | undefined) {
    this.fd = fd;
    this.portId = portId;
    this.netns = netns;
    // Start from an unpredictable number so answers meant for another process's socket (impossible by
    // port id, but cheap to rule out) or a previous request never match.
    this.seq = (Date.now() ^ (process.pid << 16)) >>> 0;
  }

  /** Opens a socket in the caller's namespace or, with opts.netns, inside that one. */
  static open(opts: NetlinkOptions = {}): NetlinkSocket {
    const timeoutMs = opts.timeoutMs ?? 5000;
    const protocol = opts.protocol ?? NETLINK_ROUTE;
    if (opts.netns !== undefined) {
      const path = opts.netns;
      return withNetns(path, () => NetlinkSocket.create(path, timeoutMs, protocol));
    }
    return NetlinkSocket.create(undefined, timeoutMs, protocol);
  }

  private static create(netns: string | undefined, timeoutMs: number, protocol: number): NetlinkSocket {
    const c = libc();
    const fail = (what: string): never => {
      throw new KernelError({ errno: errno(), operation: what, netns });
    };
    const fd = c.socket(AF.NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
    if (fd < 0) fail('open a netlink socket');
    try {
      const setInt = (level: number, name: number, value: number, what: string) => {
        if (c.setsockopt(fd, level, name, int32(value), 4) !== 0) fail(what);
      };
      const tv = Buffer.alloc(16); // struct timeval { long tv_sec; long tv_usec; }
      tv.writeBigInt64LE(BigInt(Math.floor(timeoutMs / 1000)), 0);
      tv.writeBigInt64LE(BigInt((timeoutMs % 1000) * 1000), 8);
      if (c.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, tv, 16) !== 0) fail('set the netlink receive timeout');
      setInt(SOL_SOCKET, SO_SNDBUF, 32 * 1024, 'set the netlink send buffer');
      setInt(SOL_SOCKET, SO_RCVBUF, 1024 * 1024, 'set the netlink receive buffer');
      // Error answers carry the kernel's reason as text (NETLINK_EXT_ACK, Linux 4.12) and only the
      // header of the failed request rather than all of it (NETLINK_CAP_ACK). Older kernels refuse
      // the options; errors are then just less descriptive.
      c.setsockopt(fd, SOL_NETLINK, NETLINK.EXT_ACK, int32(1), 4);
      c.setsockopt(fd, SOL_NETLINK, NETLINK.CAP_ACK, int32(1), 4);
      const sa = Buffer.alloc(12); // struct sockaddr_nl { u16 family; u16 pad; u32 pid; u32 groups; }
      sa.writeUInt16LE(AF.NETLINK, 0);
      if (c.bind(fd, sa, 12) !== 0) fail('bind a netlink socket');
      const len = Uint32Array.of(12);
      if (c.getsockname(fd, sa, len) !== 0) fail('read the netlink port id');
      return new NetlinkSocket(fd, sa.readUInt32LE(4), netns);
    } catch (err) {
      c.close(fd);
      throw err;
    }
  }

  get closed(): boolean {
    return this.fd < 0;
  }

  close(): void {
    if (this.fd >= 0) {
      libc().close(this.fd);
      this.fd = -1;
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** A builder for a request of this type; flags get NLM_F_REQUEST added. */
  static message(type: number, flags = 0): MessageBuilder {
    return new MessageBuilder(type, flags);
  }

  /**
   * Sends a request with NLM_F_ACK and waits for the acknowledgement; returns any messages the kernel
   * sent before it (the answer to a GET). A kernel error becomes a KernelError naming the operation.
   */
  request(msg: MessageBuilder, operation: Operation): NlMessage[] {
    const seq = this.nextSeq();
    const bytes = msg.finish(seq);
    bytes.writeUInt16LE(bytes.readUInt16LE(6) | NLM_F.ACK, 6);
    return this.exchange(bytes, new ReplyCollector(seq, false, this.portId), operation).messages;
  }

  /** Sends a dump request (NLM_F_DUMP) and returns every message up to NLMSG_DONE. */
  dump(msg: MessageBuilder, operation: Operation): NlMessage[] {
    return this.dumpWith(msg, operation, (seq) => new ReplyCollector(seq, true, this.portId)).messages;
  }

  /**
   * A dump whose messages are visited where they arrive, without a copy of each datagram or an
   * NlMessage per message (dumpScanner in netlink-codec.ts): for large dumps read often, such as a
   * table's 10,000 rules for their counters. `start` is called before each attempt and returns that
   * attempt's visitor: an attempt the kernel marks inconsistent (NLM_F_DUMP_INTR) is read again from
   * a fresh visitor, so the caller keeps only the last attempt's results.
   */
  dumpScan(msg: MessageBuilder, operation: Operation, start: () => MessageVisitor): void {
    this.dumpWith(msg, operation, (seq) => new ScanCollector(seq, this.portId, start()));
  }

  /** One dump with a fresh collector per attempt: the table changed while the kernel was writing it
   * out (NLM_F_DUMP_INTR), so a consistent copy needs a fresh dump. */
  private dumpWith<C extends Collector & { interrupted: boolean }>(
    msg: MessageBuilder,
    operation: Operation,
    collector: (seq: number) => C,
  ): C {
    for (let attempt = 1; ; attempt++) {
      const seq = this.nextSeq();
      const bytes = msg.finish(seq);
      bytes.writeUInt16LE(bytes.readUInt16LE(6) | NLM_F.DUMP, 6);
      const answer = this.exchange(bytes, collector(seq), operation);
      if (!answer.interrupted) return answer;
      if (attempt >= DUMP_RETRIES) {
        throw new KernelError({
          errno: EBUSY,
          operation: describe(operation),
          netns: this.netns,
          kernelMessage: 'dump kept changing while being read',
        });
      }
    }
  }

  /**
   * Sends `messages` as one nfnetlink batch between `begin` and `end` markers: the kernel applies all
   * of them or none (nf_tables transactions). Every message asks for an acknowledgement, and the
   * kernel answers each one in order even after a failure, so the answer is complete with the last
   * message's. The first error becomes a KernelError naming the operation.
   */
  transaction(
    begin: MessageBuilder,
    messages: readonly MessageBuilder[],
    end: MessageBuilder,
    operation: Operation,
  ): void {
    if (messages.length === 0) return;
    const parts: Buffer[] = [Buffer.from(begin.finish(this.nextSeq()))];
    const seqs = new Set<number>();
    let last = 0;
    for (const m of messages) {
      last = this.nextSeq();
      seqs.add(last);
      const bytes = Buffer.from(m.finish(last));
      bytes.writeUInt16LE(bytes.readUInt16LE(6) | NLM_F.ACK, 6);
      parts.push(bytes);
    }
    parts.push(Buffer.from(end.finish(this.nextSeq())));
    const portId = this.portId;
    const batch: Collector = {
      done: false,
      error: undefined,
      feed(datagram: Buffer) {
        for (const m of splitMessages(datagram)) {
          if (!seqs.has(m.seq) || (m.pid !== 0 && m.pid !== portId) || m.type !== NLMSG.ERROR) continue;
          const e = parseError(m);
          if (e.errno !== 0 && !this.error) this.error = e;
          if (m.seq === last) this.done = true;
        }
        return this.done;
      },
    };
    this.exchange(Buffer.concat(parts), batch, operation);
  }

  /**
   * Grows the socket's buffers for one large request (an nf_tables batch must be one datagram, and the
   * kernel refuses a datagram larger than the send buffer). The FORCE options pass the system limits
   * (net.core.wmem_max) with CAP_NET_ADMIN; without it the capped size is the best there is.
   */
  reserveBuffers(sendBytes: number, receiveBytes = 0): void {
    const c = libc();
    const set = (force: number, plain: number, bytes: number) => {
      if (bytes <= 0) return;
      const v = int32(Math.min(bytes, 0x3fffffff));
      if (c.setsockopt(this.fd, SOL_SOCKET, force, v, 4) !== 0) c.setsockopt(this.fd, SOL_SOCKET, plain, v, 4);
    };
    set(SO_SNDBUFFORCE, SO_SNDBUF, sendBytes);
    set(SO_RCVBUFFORCE, SO_RCVBUF, receiveBytes);
  }

  /** The next sequence number, for callers that build their own batch (nft/netlink/batch.ts). */
  nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0;
    if (this.seq === 0) this.seq = 1;
    return this.seq;
  }

  /** Sends one datagram and feeds the answers to `collector` until it is done. */
  exchange<C extends Collector>(bytes: Buffer, collector: C, operation: Operation): C {
    if (this.fd < 0) throw new Error(`netlink socket is closed (${describe(operation)})`);
    const c = libc();
    for (;;) {
      const sent = c.send(this.fd, bytes, bytes.length, 0);
      if (sent >= 0) break;
      const e = errno();
      if (e !== EINTR) throw new KernelError({ errno: e, operation: describe(operation), netns: this.netns });
    }
    return this.receive(collector, operation);
  }

  /**
   * exchange() whose send runs on a worker thread where the runtime can (libc sendOffThread): the
   * kernel processes a netlink datagram inside send, a large nf_tables batch for a few hundred ms,
   * and the event loop goes on meanwhile. Only for a socket nothing else uses until it resolves (the
   * answers are read after). A failed send processed nothing: the datagram goes again in place.
   */
  async exchangeOffThread<C extends Collector>(bytes: Buffer, collector: C, operation: Operation): Promise<C> {
    const send = sendOffThread();
    if (this.fd < 0 || !send) return this.exchange(bytes, collector, operation);
    const sent = await send(this.fd, bytes, bytes.length, 0);
    if (sent < 0 || this.fd < 0) return this.exchange(bytes, collector, operation);
    return this.receive(collector, operation);
  }

  /** Feeds the answers to `collector` until it is done. */
  private receive<C extends Collector>(collector: C, operation: Operation): C {
    const c = libc();
    while (!collector.done) {
      // MSG_TRUNC makes recv return the datagram's real size, so a message that did not fit is an
      // error rather than silently cut short.
      const n = c.recv(this.fd, this.rx, this.rx.length, MSG_TRUNC);
      if (n < 0) {
        const e = errno();
        if (e === EINTR) continue;
        if (e === EAGAIN) {
          throw new KernelError({
            errno: ETIMEDOUT,
            operation: describe(operation),
            netns: this.netns,
            kernelMessage: 'no answer from the kernel in time',
          });
        }
        throw new KernelError({ errno: e, operation: describe(operation), netns: this.netns });
      }
      if (n > this.rx.length) {
        throw new KernelError({
          errno: EMSGSIZE,
          operation: describe(operation),
          netns: this.netns,
          kernelMessage: `netlink datagram of ${n} bytes`,
        });
      }
      // A copy unless the collector is done with it on return: messages point into it, and the next
      // recv overwrites the receive buffer.
      const datagram = this.rx.subarray(0, n);
      collector.feed(collector.borrows ? datagram : Buffer.from(datagram));
    }
    if (collector.error) {
      throw new KernelError({
        errno: collector.error.errno,
        operation: describe(operation),
        netns: this.netns,
        kernelMessage: collector.error.message,
      });
    }
    return collector;
  }
}

function describe(operation: Operation): string {
  return typeof operation === 'function' ? operation() : operation;
}
