// What tells the node-set-up step that the underlay may have moved, without asking the kernel for the
// underlay every few seconds: a NETLINK_ROUTE socket subscribed to rtnetlink's link, address and route
// notifications (rtnetlink(7), NETLINK_ADD_MEMBERSHIP), read without waiting (MSG_DONTWAIT). The kernel
// queues a message for every change; a look that finds the queue empty costs one recv(2) instead of a
// link query, an address dump and two route dumps (about 1 ms, a tenth of the idle agent's CPU at a
// look every 2 s; issue 18). Only changes that can move the underlay count: its own link and
// addresses, and the default routes (the underlay is the default route's interface without --iface);
// a pod's veth coming and going does not. When the queue overflowed (ENOBUFS: notifications were
// lost) the answer is "maybe", and the caller looks at the underlay itself.
import { errno, libc } from '../../kernel/libc.ts';
import { splitMessages } from '../../kernel/netlink-codec.ts';
import { AF, NETLINK_ROUTE, RTM, SOL_NETLINK } from '../../kernel/netlink-const.ts';
import { withNetns } from '../../kernel/netns.ts';

const SOCK_RAW = 3;
const SOCK_NONBLOCK = 0x800;
const SOCK_CLOEXEC = 0x80000;
const NETLINK_ADD_MEMBERSHIP = 1;
const MSG_DONTWAIT = 0x40;
const EAGAIN = 11;
const EINTR = 4;
const ENOBUFS = 105;
/** rtnetlink multicast groups, <linux/rtnetlink.h> enum rtnetlink_groups. */
const RTNLGRP = { LINK: 1, IPV4_IFADDR: 5, IPV4_ROUTE: 7, IPV6_IFADDR: 9, IPV6_ROUTE: 11 } as const;
/** Offsets in the message payloads: ifinfomsg's ifi_index, ifaddrmsg's ifa_index, rtmsg's rtm_dst_len. */
const IFI_INDEX = 4;
const IFA_INDEX = 4;
const RTM_DST_LEN = 1;
/** At most this many datagrams are drained in one look. */
const MAX_DATAGRAMS = 4096;

/** Whether one rtnetlink notification can move the underlay whose link index is `index`. */
export function movesUnderlay(type: number, data: Buffer, index: number): boolean {
  switch (type) {
    case RTM.NEWLINK:
    case RTM.DELLINK:
      return data.length >= IFI_INDEX + 4 && data.readInt32LE(IFI_INDEX) === index;
    case RTM.NEWADDR:
    case RTM.DELADDR:
      return data.length >= IFA_INDEX + 4 && data.readUInt32LE(IFA_INDEX) === index;
    case RTM.NEWROUTE:
    case RTM.DELROUTE:
      return data.length > RTM_DST_LEN && data[RTM_DST_LEN] === 0;
    default:
      return false;
  }
}

export class UnderlayWatch {
  private fd: number;
  private readonly rx = Buffer.allocUnsafe(64 * 1024);

  private constructor(fd: number) {
    this.fd = fd;
  }

  /** Subscribes in the caller's network namespace, or in `netns` (a path) when given. */
  static open(netns?: string): UnderlayWatch {
    return netns === undefined ? UnderlayWatch.create() : withNetns(netns, () => UnderlayWatch.create());
  }

  private static create(): UnderlayWatch {
    const c = libc();
    const fd = c.socket(AF.NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) throw new Error(`could not open a netlink socket for rtnetlink notifications (errno ${errno()})`);
    const sa = Buffer.alloc(12); // struct sockaddr_nl { u16 family; u16 pad; u32 pid; u32 groups; }
    sa.writeUInt16LE(AF.NETLINK, 0);
    // bind(2) sets the first 32 groups from nl_groups (0 here): the memberships come after it.
    if (c.bind(fd, sa, 12) !== 0) {
      const e = errno();
      c.close(fd);
      throw new Error(`could not bind the rtnetlink notification socket (errno ${e})`);
    }
    const group = Buffer.alloc(4);
    for (const g of Object.values(RTNLGRP)) {
      group.writeUInt32LE(g, 0);
      if (c.setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group, 4) !== 0) {
        const e = errno();
        c.close(fd);
        throw new Error(`could not subscribe to rtnetlink group ${g} (errno ${e})`);
      }
    }
    return new UnderlayWatch(fd);
  }

  /**
   * Reads every notification queued since the last call; true when one of them can have moved the
   * underlay at link `index`, or when some were lost (the socket's queue overflowed).
   */
  moved(index: number): boolean {
    if (this.fd < 0) return true;
    const c = libc();
    let moved = false;
    // Bounded: past MAX_DATAGRAMS queued the look reads the underlay instead of draining further.
    for (let i = 0; i < MAX_DATAGRAMS; i++) {
      const n = c.recv(this.fd, this.rx, this.rx.length, MSG_DONTWAIT);
      if (n < 0) {
        const e = errno();
        if (e === EINTR) continue;
        if (e === EAGAIN) return moved;
        // ENOBUFS: the kernel dropped notifications; anything else: the socket is no use any more.
        if (e !== ENOBUFS) this.close();
        return true;
      }
      // An empty datagram ends the look too: a loop here would hold the event loop.
      if (n === 0) return moved;
      if (!moved) moved = this.anyMoves(n, index);
    }
    return true;
  }

  private anyMoves(length: number, index: number): boolean {
    try {
      return splitMessages(this.rx.subarray(0, length)).some((m) => movesUnderlay(m.type, m.data, index));
    } catch {
      // Not understood: look at the underlay rather than miss a change.
      return true;
    }
  }

  close(): void {
    if (this.fd >= 0) libc().close(this.fd);
    this.fd = -1;
  }
}
