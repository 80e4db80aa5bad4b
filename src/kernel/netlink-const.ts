// Numbers from the Linux UAPI headers that the rtnetlink codec needs: <linux/netlink.h>,
// <linux/rtnetlink.h>, <linux/if_link.h>, <linux/if_addr.h>, <linux/neighbour.h>, <linux/veth.h>,
// <linux/if.h>. Each object is named after the C prefix, so IFLA.MTU is IFLA_MTU; the values are ABI
// and never change, which is why they can be written down here rather than read from headers.

export const AF = { UNSPEC: 0, INET: 2, BRIDGE: 7, INET6: 10, NETLINK: 16 } as const;

export const NETLINK_ROUTE = 0;
/** nfnetlink: nf_tables and ctnetlink (conntrack) messages. */
export const NETLINK_NETFILTER = 12;
export const SOL_NETLINK = 270;
export const NETLINK = { CAP_ACK: 10, EXT_ACK: 11, GET_STRICT_CHK: 12 } as const;

export const NLMSG = { NOOP: 1, ERROR: 2, DONE: 3, OVERRUN: 4 } as const;
export const NLMSG_HDRLEN = 16;

export const NLM_F = {
  REQUEST: 0x01,
  MULTI: 0x02,
  ACK: 0x04,
  ECHO: 0x08,
  DUMP_INTR: 0x10,
  DUMP_FILTERED: 0x20,
  // GET requests
  ROOT: 0x100,
  MATCH: 0x200,
  DUMP: 0x300,
  // NEW requests
  REPLACE: 0x100,
  EXCL: 0x200,
  CREATE: 0x400,
  APPEND: 0x800,
  // acknowledgements (NLMSG_ERROR)
  CAPPED: 0x100,
  ACK_TLVS: 0x200,
} as const;

export const NLMSGERR_ATTR = { MSG: 1, OFFS: 2, COOKIE: 3, POLICY: 4, MISS_TYPE: 5, MISS_NEST: 6 } as const;

export const NLA_F_NESTED = 0x8000;
export const NLA_F_NET_BYTEORDER = 0x4000;
export const NLA_TYPE_MASK = 0x3fff;

export const RTM = {
  NEWLINK: 16,
  DELLINK: 17,
  GETLINK: 18,
  SETLINK: 19,
  NEWADDR: 20,
  DELADDR: 21,
  GETADDR: 22,
  NEWROUTE: 24,
  DELROUTE: 25,
  GETROUTE: 26,
  NEWNEIGH: 28,
  DELNEIGH: 29,
  GETNEIGH: 30,
} as const;

/** Interface flags (ifi_flags), <linux/if.h>. */
export const IFF = {
  UP: 0x1,
  BROADCAST: 0x2,
  LOOPBACK: 0x8,
  POINTOPOINT: 0x10,
  RUNNING: 0x40,
  NOARP: 0x80,
  PROMISC: 0x100,
  ALLMULTI: 0x200,
  MASTER: 0x400,
  SLAVE: 0x800,
  MULTICAST: 0x1000,
  LOWER_UP: 0x10000,
  DORMANT: 0x20000,
} as const;

/** RFC 2863 operational states (IFLA_OPERSTATE). */
export const IF_OPER = {
  UNKNOWN: 0,
  NOTPRESENT: 1,
  DOWN: 2,
  LOWERLAYERDOWN: 3,
  TESTING: 4,
  DORMANT: 5,
  UP: 6,
} as const;

export const IFLA = {
  ADDRESS: 1,
  BROADCAST: 2,
  IFNAME: 3,
  MTU: 4,
  LINK: 5,
  MASTER: 10,
  PROTINFO: 12,
  TXQLEN: 13,
  OPERSTATE: 16,
  LINKMODE: 17,
  LINKINFO: 18,
  NET_NS_PID: 19,
  IFALIAS: 20,
  AF_SPEC: 26,
  GROUP: 27,
  NET_NS_FD: 28,
  EXT_MASK: 29,
  PROMISCUITY: 30,
  NUM_TX_QUEUES: 31,
  NUM_RX_QUEUES: 32,
  CARRIER: 33,
  LINK_NETNSID: 37,
  GSO_MAX_SIZE: 41,
  MIN_MTU: 50,
  MAX_MTU: 51,
  ALT_IFNAME: 53,
  PERM_ADDRESS: 54,
  GRO_MAX_SIZE: 58,
  GSO_IPV4_MAX_SIZE: 63,
  GRO_IPV4_MAX_SIZE: 64,
} as const;

export const IFLA_INFO = { KIND: 1, DATA: 2, XSTATS: 3, SLAVE_KIND: 4, SLAVE_DATA: 5 } as const;

export const VETH_INFO = { PEER: 1 } as const;

/** Bridge device attributes inside IFLA_INFO_DATA of kind "bridge". */
export const IFLA_BR = {
  FORWARD_DELAY: 1,
  HELLO_TIME: 2,
  MAX_AGE: 3,
  AGEING_TIME: 4,
  STP_STATE: 5,
  PRIORITY: 6,
  VLAN_FILTERING: 7,
  VLAN_PROTOCOL: 8,
  GROUP_FWD_MASK: 9,
  MCAST_SNOOPING: 23,
  NF_CALL_IPTABLES: 36,
  NF_CALL_IP6TABLES: 37,
  NF_CALL_ARPTABLES: 38,
  VLAN_DEFAULT_PVID: 39,
} as const;

/** Bridge port attributes: IFLA_PROTINFO (AF_BRIDGE) or IFLA_INFO_SLAVE_DATA of slave kind "bridge". */
export const IFLA_BRPORT = {
  STATE: 1,
  PRIORITY: 2,
  COST: 3,
  MODE: 4,
  GUARD: 5,
  PROTECT: 6,
  FAST_LEAVE: 7,
  LEARNING: 8,
  UNICAST_FLOOD: 9,
  PROXYARP: 10,
  MCAST_FLOOD: 27,
  BCAST_FLOOD: 30,
  NEIGH_SUPPRESS: 32,
  ISOLATED: 33,
} as const;

export const IFLA_VXLAN = {
  ID: 1,
  GROUP: 2,
  LINK: 3,
  LOCAL: 4,
  TTL: 5,
  TOS: 6,
  LEARNING: 7,
  AGEING: 8,
  LIMIT: 9,
  PORT_RANGE: 10,
  PROXY: 11,
  RSC: 12,
  L2MISS: 13,
  L3MISS: 14,
  PORT: 15,
  GROUP6: 16,
  LOCAL6: 17,
  UDP_CSUM: 18,
  UDP_ZERO_CSUM6_TX: 19,
  UDP_ZERO_CSUM6_RX: 20,
  GBP: 23,
  COLLECT_METADATA: 25,
} as const;

export const IFA = {
  ADDRESS: 1,
  LOCAL: 2,
  LABEL: 3,
  BROADCAST: 4,
  ANYCAST: 5,
  CACHEINFO: 6,
  MULTICAST: 7,
  FLAGS: 8,
  RT_PRIORITY: 9,
  PROTO: 11,
} as const;

export const IFA_F = {
  SECONDARY: 0x01,
  NODAD: 0x02,
  OPTIMISTIC: 0x04,
  DADFAILED: 0x08,
  HOMEADDRESS: 0x10,
  DEPRECATED: 0x20,
  TENTATIVE: 0x40,
  PERMANENT: 0x80,
  MANAGETEMPADDR: 0x100,
  NOPREFIXROUTE: 0x200,
  MCAUTOJOIN: 0x400,
  STABLE_PRIVACY: 0x800,
} as const;

export const RTA = {
  DST: 1,
  SRC: 2,
  IIF: 3,
  OIF: 4,
  GATEWAY: 5,
  PRIORITY: 6,
  PREFSRC: 7,
  METRICS: 8,
  MULTIPATH: 9,
  FLOW: 11,
  CACHEINFO: 12,
  TABLE: 15,
  MARK: 16,
  VIA: 18,
  PREF: 20,
  EXPIRES: 23,
} as const;

export const RTAX = {
  LOCK: 1,
  MTU: 2,
  WINDOW: 3,
  RTT: 4,
  HOPLIMIT: 10,
  INITCWND: 11,
  ADVMSS: 8,
  INITRWND: 14,
} as const;

export const RTN = {
  UNSPEC: 0,
  UNICAST: 1,
  LOCAL: 2,
  BROADCAST: 3,
  ANYCAST: 4,
  MULTICAST: 5,
  BLACKHOLE: 6,
  UNREACHABLE: 7,
  PROHIBIT: 8,
  THROW: 9,
} as const;

export const RTPROT = { UNSPEC: 0, REDIRECT: 1, KERNEL: 2, BOOT: 3, STATIC: 4, RA: 9, DHCP: 16 } as const;

export const RT_SCOPE = { UNIVERSE: 0, SITE: 200, LINK: 253, HOST: 254, NOWHERE: 255 } as const;

export const RT_TABLE = { UNSPEC: 0, DEFAULT: 253, MAIN: 254, LOCAL: 255 } as const;

/** rtm_flags and rtnh_flags. */
export const RTNH_F = { DEAD: 1, PERVASIVE: 2, ONLINK: 4, OFFLOAD: 8, LINKDOWN: 16 } as const;

export const NDA = {
  DST: 1,
  LLADDR: 2,
  CACHEINFO: 3,
  PROBES: 4,
  VLAN: 5,
  PORT: 6,
  VNI: 7,
  IFINDEX: 8,
  MASTER: 9,
  LINK_NETNSID: 10,
  SRC_VNI: 11,
  PROTOCOL: 12,
} as const;

/** Neighbour states (ndm_state). */
export const NUD = {
  NONE: 0x00,
  INCOMPLETE: 0x01,
  REACHABLE: 0x02,
  STALE: 0x04,
  DELAY: 0x08,
  PROBE: 0x10,
  FAILED: 0x20,
  NOARP: 0x40,
  PERMANENT: 0x80,
} as const;

/** Neighbour flags (ndm_flags). */
export const NTF = {
  USE: 0x01,
  SELF: 0x02,
  MASTER: 0x04,
  PROXY: 0x08,
  EXT_LEARNED: 0x10,
  OFFLOADED: 0x20,
  STICKY: 0x40,
  ROUTER: 0x80,
} as const;

/** Fixed header sizes that follow the nlmsghdr. */
export const IFINFOMSG_LEN = 16;
export const IFADDRMSG_LEN = 8;
export const RTMSG_LEN = 12;
export const NDMSG_LEN = 12;
