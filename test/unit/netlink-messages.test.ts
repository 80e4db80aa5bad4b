// rtnetlink objects encoded and decoded without a kernel: what a request puts on the wire, and that
// a message laid out as the kernel's answer decodes back to the same object.
import { describe, expect, it } from 'vitest';
import { decodeAddress, encodeAddress } from '../../src/kernel/addresses.ts';
import {
  decodeLink,
  encodeNewLink,
  encodeSetBridgePort,
  encodeSetLink,
  offloadDifference,
} from '../../src/kernel/links.ts';
import {
  Attrs,
  MessageBuilder,
  ifinfomsg,
  readIfaddrmsg,
  readIfinfomsg,
  readNdmsg,
  readRtmsg,
  splitMessages,
  type NlMessage,
} from '../../src/kernel/netlink-codec.ts';
import {
  AF,
  IFA,
  IFA_F,
  IFF,
  IFLA,
  IFLA_BRPORT,
  IFLA_INFO,
  IFLA_VXLAN,
  NDA,
  NLA_F_NESTED,
  NLM_F,
  NTF,
  NUD,
  RT_SCOPE,
  RTA,
  RTM,
  RTN,
  RTPROT,
  VETH_INFO,
} from '../../src/kernel/netlink-const.ts';
import { decodeFdb, decodeNeighbour, encodeFdb, encodeNeighbour } from '../../src/kernel/neighbours.ts';
import { decodeRoute, encodeRoute } from '../../src/kernel/routes.ts';

/** The builder's message as the single NlMessage a kernel answer of that layout would be. */
const asReply = (m: MessageBuilder): NlMessage => splitMessages(m.finish(1))[0]!;

describe('links', () => {
  it('puts the veth peer, with its own ifinfomsg, name and namespace fd, inside VETH_INFO_PEER', () => {
    const msg = asReply(
      encodeNewLink(
        {
          kind: 'veth',
          name: 'eth0',
          mtu: 1450,
          up: true,
          peer: { name: 'veth1234', mtu: 1450, mac: '02:00:00:00:00:01' },
        },
        { peerNetnsFd: 7, netnsFd: 9 },
      ),
    );
    expect(msg.type).toBe(RTM.NEWLINK);
    expect(msg.flags & (NLM_F.CREATE | NLM_F.EXCL)).toBe(NLM_F.CREATE | NLM_F.EXCL);
    expect(readIfinfomsg(msg.data).flags).toBe(IFF.UP);
    const a = new Attrs(msg.data, 16);
    expect([a.str(IFLA.IFNAME), a.u32(IFLA.MTU), a.u32(IFLA.NET_NS_FD)]).toEqual(['eth0', 1450, 9]);
    const info = a.nested(IFLA.LINKINFO)!;
    expect(info.get(IFLA_INFO.KIND)!.toString()).toBe('veth');
    const peer = info.nested(IFLA_INFO.DATA)!.get(VETH_INFO.PEER)!;
    expect(readIfinfomsg(peer).flags).toBe(0);
    const pa = new Attrs(peer, 16);
    expect([
      pa.str(IFLA.IFNAME),
      pa.u32(IFLA.MTU),
      pa.u32(IFLA.NET_NS_FD),
      Buffer.from(pa.get(IFLA.ADDRESS)!).toString('hex'),
    ]).toEqual(['veth1234', 1450, 7, '020000000001']);
  });

  it('round-trips a VXLAN device: VNI, port in network order, local address, learning, underlay', () => {
    const l = decodeLink(
      asReply(
        encodeNewLink(
          { kind: 'vxlan', name: 'strand.1', vni: 1, port: 4789, local: '198.18.0.1', learning: false, ttl: 64 },
          { vxlanLink: 2 },
        ),
      ),
    );
    expect(l.kind).toBe('vxlan');
    expect(l.name).toBe('strand.1');
    expect(l.vxlan).toEqual({
      vni: 1,
      port: 4789,
      local: '198.18.0.1',
      group: undefined,
      learning: false,
      link: 2,
      ttl: 64,
    });
    const v6 = decodeLink(asReply(encodeNewLink({ kind: 'vxlan', name: 'v6', vni: 7, local: 'fd00::1' }, {})));
    expect(v6.vxlan?.local).toBe('fd00::1');
  });

  it('round-trips a bridge with its options and the common attributes', () => {
    const l = decodeLink(
      asReply(
        encodeNewLink(
          { kind: 'bridge', name: 'cni0', mtu: 1400, mac: '0a:58:0a:f4:01:01', vlanFiltering: true, stpState: 0 },
          { master: 0 },
        ),
      ),
    );
    expect(l).toMatchObject({
      name: 'cni0',
      kind: 'bridge',
      mtu: 1400,
      mac: '0a:58:0a:f4:01:01',
      master: undefined,
      bridge: { vlanFiltering: true, stpState: 0 },
    });
  });

  it('decodes flags, operstate, the veth peer index and bridge port data', () => {
    const m = new MessageBuilder(RTM.NEWLINK, 0);
    m.raw(ifinfomsg({ index: 12, flags: IFF.UP | IFF.PROMISC | IFF.LOWER_UP | IFF.BROADCAST }));
    m.str(IFLA.IFNAME, 'veth1234')
      .u32(IFLA.MTU, 1500)
      .u32(IFLA.MASTER, 5)
      .s32(IFLA.LINK, 3)
      .s32(IFLA.LINK_NETNSID, 0)
      .u8(IFLA.OPERSTATE, 6);
    m.nested(IFLA.LINKINFO, (n) => {
      n.attr(IFLA_INFO.KIND, Buffer.from('veth'));
      n.attr(IFLA_INFO.SLAVE_KIND, Buffer.from('bridge\0'));
      n.nested(IFLA_INFO.SLAVE_DATA, (d) =>
        d.u8(IFLA_BRPORT.MODE, 1).u8(IFLA_BRPORT.ISOLATED, 0).u8(IFLA_BRPORT.LEARNING, 1).u8(IFLA_BRPORT.STATE, 3),
      );
    });
    const l = decodeLink(asReply(m));
    expect(l).toMatchObject({
      index: 12,
      name: 'veth1234',
      kind: 'veth',
      up: true,
      lowerUp: true,
      promisc: true,
      operState: 'up',
      master: 5,
      parentIndex: 3,
      linkNetnsId: 0,
      portKind: 'bridge',
      bridgePort: { hairpin: true, isolated: false, learning: true, state: 3 },
    });
  });

  it('changes only the flags named in ifi_change', () => {
    const msg = asReply(encodeSetLink(4, { up: true, promisc: false, mtu: 9000 }, { master: 0 }));
    const h = readIfinfomsg(msg.data);
    expect(h.index).toBe(4);
    expect(h.change).toBe(IFF.UP | IFF.PROMISC);
    expect(h.flags).toBe(IFF.UP);
    const a = new Attrs(msg.data, 16);
    expect(a.u32(IFLA.MTU)).toBe(9000);
    expect(a.u32(IFLA.MASTER)).toBe(0); // nomaster
  });

  it('carries the GSO/GRO sizes (BIG TCP) under their ABI numbers, and decodes them back', () => {
    const offload = { gsoMaxSize: 131072, groMaxSize: 131072, gsoIpv4MaxSize: 196608, groIpv4MaxSize: 196608 };
    const msg = asReply(encodeSetLink(4, { offload }, {}));
    const a = new Attrs(msg.data, 16);
    // linux/if_link.h: IFLA_GSO_MAX_SIZE 41, IFLA_GRO_MAX_SIZE 58, IFLA_GSO_IPV4_MAX_SIZE 63, IFLA_GRO_IPV4_MAX_SIZE 64.
    expect([a.u32(41), a.u32(58), a.u32(63), a.u32(64)]).toEqual([131072, 131072, 196608, 196608]);
    expect(decodeLink(msg).offload).toEqual(offload);
    // Sizes a kernel does not report are left out, not read as 0.
    expect(decodeLink(asReply(encodeSetLink(4, { mtu: 1500 }, {}))).offload).toEqual({});
  });

  it('asks only for the sizes that differ from what the link reports', () => {
    const have = { gsoMaxSize: 65536, groMaxSize: 65536, gsoIpv4MaxSize: 196608 };
    expect(offloadDifference(have, { gsoMaxSize: 65536, gsoIpv4MaxSize: 196608 })).toEqual({});
    expect(offloadDifference(have, { gsoMaxSize: 196608, groMaxSize: 196608, gsoIpv4MaxSize: 196608 })).toEqual({
      gsoMaxSize: 196608,
      groMaxSize: 196608,
    });
    // groIpv4MaxSize is not reported (a kernel before 6.3): nothing to set.
    expect(offloadDifference(have, { groIpv4MaxSize: 196608 })).toEqual({});
  });

  it('sets hairpin through an AF_BRIDGE IFLA_PROTINFO that carries NLA_F_NESTED', () => {
    const msg = asReply(encodeSetBridgePort(6, { hairpin: true, isolated: false }));
    expect(msg.type).toBe(RTM.SETLINK);
    expect(readIfinfomsg(msg.data)).toMatchObject({ family: AF.BRIDGE, index: 6 });
    // br_setlink reads the port options only when the flag is set; without it the payload is taken
    // as an old-style STP port state.
    expect(msg.data.readUInt16LE(16 + 2)).toBe(IFLA.PROTINFO | NLA_F_NESTED);
    const p = new Attrs(msg.data, 16).nested(IFLA.PROTINFO)!;
    expect([p.u8(IFLA_BRPORT.MODE), p.u8(IFLA_BRPORT.ISOLATED)]).toEqual([1, 0]);
  });
});

describe('addresses', () => {
  it('encodes IPv4 with IFA_LOCAL, IFA_ADDRESS and the computed broadcast', () => {
    const msg = asReply(encodeAddress(RTM.NEWADDR, 3, '10.244.1.5/24', {}, NLM_F.CREATE | NLM_F.EXCL));
    expect(readIfaddrmsg(msg.data)).toEqual({
      family: AF.INET,
      prefixLength: 24,
      flags: 0,
      scope: RT_SCOPE.UNIVERSE,
      index: 3,
    });
    const a = new Attrs(msg.data, 8);
    expect([...a.get(IFA.LOCAL)!]).toEqual([10, 244, 1, 5]);
    expect([...a.get(IFA.BROADCAST)!]).toEqual([10, 244, 1, 255]);
    const d = decodeAddress(msg)!;
    expect(d).toMatchObject({
      family: 4,
      address: '10.244.1.5',
      prefixLength: 24,
      cidr: '10.244.1.5/24',
      index: 3,
      broadcast: '10.244.1.255',
      peer: undefined,
    });
  });

  it('encodes IPv6 flags above 8 bits in IFA_FLAGS and decodes them from there', () => {
    const msg = asReply(encodeAddress(RTM.NEWADDR, 3, 'fd00::5/64', { noDad: true, noPrefixRoute: true }));
    expect(readIfaddrmsg(msg.data).flags).toBe(IFA_F.NODAD);
    const a = new Attrs(msg.data, 8);
    expect(a.u32(IFA.FLAGS)).toBe(IFA_F.NODAD | IFA_F.NOPREFIXROUTE);
    expect(a.has(IFA.BROADCAST)).toBe(false);
    expect(decodeAddress(msg)).toMatchObject({
      family: 6,
      cidr: 'fd00::5/64',
      flags: IFA_F.NODAD | IFA_F.NOPREFIXROUTE,
    });
  });

  it('puts loopback addresses in host scope and leaves attributes off a delete', () => {
    expect(readIfaddrmsg(asReply(encodeAddress(RTM.NEWADDR, 1, '127.0.0.2/8')).data).scope).toBe(RT_SCOPE.HOST);
    const del = new Attrs(asReply(encodeAddress(RTM.DELADDR, 1, '10.1.1.1/24')).data, 8);
    expect(del.has(IFA.BROADCAST)).toBe(false);
    expect(del.has(IFA.LOCAL)).toBe(true);
  });
});

describe('routes', () => {
  it('encodes a default route via a gateway with metric, MTU and ADVMSS', () => {
    const msg = asReply(
      encodeRoute(
        RTM.NEWROUTE,
        { dst: 'default', gateway: '10.244.1.1', metric: 100, mtu: 1450, advmss: 1410 },
        3,
        NLM_F.CREATE | NLM_F.EXCL,
      ),
    );
    expect(readRtmsg(msg.data)).toMatchObject({
      family: AF.INET,
      dstLength: 0,
      table: 254,
      protocol: RTPROT.BOOT,
      scope: RT_SCOPE.UNIVERSE,
      type: RTN.UNICAST,
    });
    const a = new Attrs(msg.data, 12);
    expect(a.has(RTA.DST)).toBe(false);
    expect(decodeRoute(msg)).toMatchObject({
      family: 4,
      dst: '0.0.0.0/0',
      gateway: '10.244.1.1',
      oif: 3,
      metric: 100,
      mtu: 1450,
      advmss: 1410,
      table: 254,
    });
  });

  it('gives a directly connected route link scope, and a table above 255 goes in RTA_TABLE', () => {
    const msg = asReply(encodeRoute(RTM.NEWROUTE, { dst: '10.244.2.0/24', table: 1000 }, 5));
    const h = readRtmsg(msg.data);
    expect(h.scope).toBe(RT_SCOPE.LINK);
    expect(h.table).toBe(252);
    expect(decodeRoute(msg)).toMatchObject({ dst: '10.244.2.0/24', table: 1000, oif: 5, gateway: undefined });
  });

  it('takes the family of a default route from its gateway', () => {
    const r = decodeRoute(asReply(encodeRoute(RTM.NEWROUTE, { dst: 'default', gateway: 'fd00::1' }, undefined)))!;
    expect(r).toMatchObject({ family: 6, dst: '::/0', gateway: 'fd00::1' });
    expect(() => encodeRoute(RTM.NEWROUTE, { dst: '10.0.0.0/8', gateway: 'fd00::1' }, undefined)).toThrow(/family/);
  });

  it('deletes with wildcards: scope nowhere, no protocol, no type', () => {
    const h = readRtmsg(asReply(encodeRoute(RTM.DELROUTE, { dst: '10.244.2.0/24' }, undefined)).data);
    expect(h).toMatchObject({ scope: RT_SCOPE.NOWHERE, protocol: 0, type: RTN.UNSPEC });
  });
});

describe('neighbours and FDB', () => {
  it('encodes a permanent ARP entry', () => {
    const msg = asReply(encodeNeighbour(RTM.NEWNEIGH, 4, { link: 4, ip: '10.244.2.0', mac: '0a:0b:0c:0d:0e:0f' }));
    expect(readNdmsg(msg.data)).toEqual({ family: AF.INET, index: 4, state: NUD.PERMANENT, flags: 0, type: 0 });
    expect(decodeNeighbour(msg)).toMatchObject({
      family: 4,
      index: 4,
      ip: '10.244.2.0',
      mac: '0a:0b:0c:0d:0e:0f',
      permanent: true,
    });
  });

  it('encodes a VXLAN FDB entry in the device table (NTF_SELF) with its remote VTEP', () => {
    const msg = asReply(
      encodeFdb(RTM.NEWNEIGH, 9, { link: 9, mac: '0a:0b:0c:0d:0e:0f', dst: '198.18.0.2', vni: 1, port: 4789 }),
    );
    expect(readNdmsg(msg.data)).toMatchObject({ family: AF.BRIDGE, index: 9, state: NUD.PERMANENT, flags: NTF.SELF });
    expect(new Attrs(msg.data, 12).be16(NDA.PORT)).toBe(4789);
    expect(decodeFdb(msg)).toMatchObject({
      index: 9,
      mac: '0a:0b:0c:0d:0e:0f',
      dst: '198.18.0.2',
      vni: 1,
      port: 4789,
      self: true,
      permanent: true,
    });
  });

  it('makes bridge FDB entries static in the master table', () => {
    const h = readNdmsg(asReply(encodeFdb(RTM.NEWNEIGH, 9, { link: 9, mac: '0a:0b:0c:0d:0e:0f', master: true })).data);
    expect(h).toMatchObject({ state: NUD.NOARP, flags: NTF.MASTER });
  });

  it('skips messages of other families', () => {
    const fdb = asReply(encodeFdb(RTM.NEWNEIGH, 9, { link: 9, mac: '0a:0b:0c:0d:0e:0f' }));
    expect(decodeNeighbour(fdb)).toBeUndefined();
    const arp = asReply(encodeNeighbour(RTM.NEWNEIGH, 4, { link: 4, ip: '10.0.0.1', mac: '0a:0b:0c:0d:0e:0f' }));
    expect(decodeFdb(arp)).toBeUndefined();
  });
});

describe('IFLA_VXLAN constants', () => {
  it('match the kernel ABI for the attributes the agent uses', () => {
    expect([
      IFLA_VXLAN.ID,
      IFLA_VXLAN.LINK,
      IFLA_VXLAN.LOCAL,
      IFLA_VXLAN.TTL,
      IFLA_VXLAN.LEARNING,
      IFLA_VXLAN.PORT,
      IFLA_VXLAN.LOCAL6,
    ]).toEqual([1, 3, 4, 5, 7, 15, 17]);
  });
});
