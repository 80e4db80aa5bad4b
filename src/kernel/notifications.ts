// rtnetlink notifications read when asked, not as they come: a NETLINK_ROUTE socket subscribed to
// multicast groups (rtnetlink(7), NETLINK_ADD_MEMBERSHIP) and read without waiting (MSG_DONTWAIT). The
// kernel queues a message for every change in those groups, so the socket's queue is the journal of
// what changed since the last read: a caller that only needs to know whether something it owns moved
// reads the queue when it asks, with no thread or wake-up of its own, and a look that finds it empty
// costs one recv(2). When the queue overflowed (ENOBUFS: the kernel dropped notifications) or could
// not be read whole, the answer is "maybe", and the caller reads the kernel itself.
import { attachFilter, errno, libc } from './libc.ts';
import { splitMessages, type NlMessage } from './netlink-codec.ts';
import { AF, NETLINK_ROUTE, SOL_NETLINK } from './netlink-const.ts';
import { withNetns } from './netns.ts';

const SOCK_RAW = 3;
const SOCK_NONBLOCK = 0x800;
const SOCK_CLOEXEC = 0x80000;
const SOL_SOCKET = 1;
const SO_RCVBUF = 8;
const SO_RCVBUFFORCE = 33;
const NETLINK_ADD_MEMBERSHIP = 1;
const MSG_DONTWAIT = 0x40;
const MSG_TRUNC = 0x20;
const EAGAIN = 11;
const EINTR = 4;
const ENOBUFS = 105;
/** Classic BPF opcodes (<linux/bpf_common.h>): load a word at an absolute offset, jump if equal to
 * k, return k (the bytes to keep: 0 drops the message). */
const BPF_LD_W_ABS = 0x20;
const BPF_JEQ_K = 0x15;
const BPF_RET_K = 0x06;
/** struct nlmsghdr { u32 len; u16 type; u16 flags; u32 seq; u32 pid; } */
const NLMSG_PID_OFFSET = 12;
/** At most this many datagrams are read in one look: past it the look is incomplete. */
const MAX_DATAGRAMS = 4096;

/** rtnetlink multicast groups, <linux/rtnetlink.h> enum rtnetlink_groups. */
export const RTNLGRP = {
  LINK: 1,
  NEIGH: 3,
  IPV4_IFADDR: 5,
  IPV4_ROUTE: 7,
  IPV6_IFADDR: 9,
  IPV6_ROUTE: 11,
} as const;

export interface NotificationOptions {
  /** Subscribe in this network namespace (a path); default: the caller's. */
  netns?: string;
  /** The receive queue in bytes, how many changes can wait unread before the kernel drops them;
   * past net.core.rmem_max with CAP_NET_ADMIN. Default: the system's (net.core.rmem_default). */
  receiveBytes?: number;
}

export class NotificationSocket {
  private fd: number;
  private readonly rx = Buffer.allocUnsafe(64 * 1024);

  private constructor(fd: number) {
    this.fd = fd;
  }

  /** Subscribes to `groups` (RTNLGRP values). Throws when the socket cannot be opened or subscribed. */
  static open(groups: readonly number[], opts: NotificationOptions = {}): NotificationSocket {
    const create = () => NotificationSocket.create(groups, opts.receiveBytes);
    return opts.netns === undefined ? create() : withNetns(opts.netns, create);
  }

  private static create(groups: readonly number[], receiveBytes: number | undefined): NotificationSocket {
    const c = libc();
    const fd = c.socket(AF.NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) throw new Error(`could not open a netlink socket for rtnetlink notifications (errno ${errno()})`);
    const fail = (what: string): never => {
      const e = errno();
      c.close(fd);
      throw new Error(`${what} (errno ${e})`);
    };
    if (receiveBytes !== undefined) {
      const v = Buffer.alloc(4);
      v.writeInt32LE(receiveBytes, 0);
      if (
        c.setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, v, 4) !== 0 &&
        c.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, v, 4) !== 0
      )
        fail('could not size the rtnetlink notification queue');
    }
    const sa = Buffer.alloc(12); // struct sockaddr_nl { u16 family; u16 pad; u32 pid; u32 groups; }
    sa.writeUInt16LE(AF.NETLINK, 0);
    // bind(2) sets the first 32 groups from nl_groups (0 here): the memberships come after it.
    if (c.bind(fd, sa, 12) !== 0) fail('could not bind the rtnetlink notification socket');
    const group = Buffer.alloc(4);
    for (const g of groups) {
      group.writeUInt32LE(g, 0);
      if (c.setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group, 4) !== 0)
        fail(`could not subscribe to rtnetlink group ${g}`);
    }
    return new NotificationSocket(fd);
  }

  get closed(): boolean {
    return this.fd < 0;
  }

  /**
   * Has the kernel drop, before they are queued, the notifications whose nlmsg_pid is `port`: those
   * a netlink socket of the caller's own caused with its requests (a classic BPF filter on the
   * socket: `ld [12]` reads the header's nlmsg_pid, in network order). A pass writing 15,000 entries
   * then queues nothing of its own here. False where it cannot (the caller still skips them itself).
   */
  ignorePort(port: number): boolean {
    const attach = attachFilter();
    if (this.fd < 0 || !attach) return false;
    const swapped = (((port & 0xff) << 24) | ((port & 0xff00) << 8) | ((port >>> 8) & 0xff00) | (port >>> 24)) >>> 0;
    const program = [
      { code: BPF_LD_W_ABS, jt: 0, jf: 0, k: NLMSG_PID_OFFSET },
      { code: BPF_JEQ_K, jt: 0, jf: 1, k: swapped },
      { code: BPF_RET_K, jt: 0, jf: 0, k: 0 },
      { code: BPF_RET_K, jt: 0, jf: 0, k: 0xffffffff },
    ];
    return attach(this.fd, program) === 0;
  }

  /**
   * Reads every notification queued since the last call, each visited in the receive buffer itself
   * (copy what is kept). False when notifications may have been missed: the queue overflowed, it held
   * more than one look reads, a message could not be split, or the socket failed (it is closed then,
   * and every later look is false).
   */
  drain(visit: (message: NlMessage) => void): boolean {
    if (this.fd < 0) return false;
    const c = libc();
    let complete = true;
    for (let i = 0; i < MAX_DATAGRAMS; i++) {
      const n = c.recv(this.fd, this.rx, this.rx.length, MSG_DONTWAIT | MSG_TRUNC);
      if (n < 0) {
        const e = errno();
        if (e === EINTR) continue;
        if (e === EAGAIN) return complete;
        if (e !== ENOBUFS) {
          this.close();
          return false;
        }
        complete = false;
        continue;
      }
      // An empty datagram ends the look too: a loop here would hold the event loop.
      if (n === 0) return complete;
      // A datagram larger than the buffer was cut short: it still says that something changed.
      if (n > this.rx.length) complete = false;
      try {
        for (const m of splitMessages(this.rx.subarray(0, Math.min(n, this.rx.length)))) visit(m);
      } catch {
        complete = false;
      }
    }
    return false;
  }

  close(): void {
    if (this.fd >= 0) libc().close(this.fd);
    this.fd = -1;
  }
}
