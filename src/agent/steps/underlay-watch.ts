// What tells the node-set-up step that the underlay may have moved, without asking the kernel for the
// underlay every few seconds: a NETLINK_ROUTE socket subscribed to rtnetlink's link, address and route
// notifications (src/kernel/notifications.ts), read without waiting (MSG_DONTWAIT). The kernel
// queues a message for every change; a look that finds the queue empty costs one recv(2) instead of a
// link query, an address dump and two route dumps (about 1 ms, a tenth of the idle agent's CPU at a
// look every 2 s; issue 18). Only changes that can move the underlay count: its own link and
// addresses, and the default routes (the underlay is the default route's interface without --iface);
// a pod's veth coming and going does not. When the queue overflowed (ENOBUFS: notifications were
// lost) the answer is "maybe", and the caller looks at the underlay itself.
import { RTM } from '../../kernel/netlink-const.ts';
import { NotificationSocket, RTNLGRP } from '../../kernel/notifications.ts';

/** Offsets in the message payloads: ifinfomsg's ifi_index, ifaddrmsg's ifa_index, rtmsg's rtm_dst_len. */
const IFI_INDEX = 4;
const IFA_INDEX = 4;
const RTM_DST_LEN = 1;
/** Link, address and route changes: what can move the underlay. */
const GROUPS = [RTNLGRP.LINK, RTNLGRP.IPV4_IFADDR, RTNLGRP.IPV4_ROUTE, RTNLGRP.IPV6_IFADDR, RTNLGRP.IPV6_ROUTE];

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
  private readonly socket: NotificationSocket;

  private constructor(socket: NotificationSocket) {
    this.socket = socket;
  }

  /** Subscribes in the caller's network namespace, or in `netns` (a path) when given. */
  static open(netns?: string): UnderlayWatch {
    return new UnderlayWatch(NotificationSocket.open(GROUPS, netns === undefined ? {} : { netns }));
  }

  /**
   * Reads every notification queued since the last call; true when one of them can have moved the
   * underlay at link `index`, or when some were lost (the socket's queue overflowed).
   */
  moved(index: number): boolean {
    let moved = false;
    const complete = this.socket.drain((m) => {
      if (!moved) moved = movesUnderlay(m.type, m.data, index);
    });
    return moved || !complete;
  }

  close(): void {
    this.socket.close();
  }
}
