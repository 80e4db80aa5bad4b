// Which rtnetlink notifications the drift watch counts as a change to Strand's entries
// (src/datapath/drift-watch.ts touchesOwned), on hand-built messages: the kernel side is in
// test/integration/cluster-network-drift.test.ts.
import { describe, expect, it } from 'vitest';
import { touchesOwned, type Owned } from '../../src/datapath/drift-watch.ts';
import { STRAND_ROUTE_PROTOCOL } from '../../src/datapath/index.ts';
import { ifinfomsg, ifaddrmsg, MessageBuilder, ndmsg, rtmsg } from '../../src/kernel/netlink-codec.ts';
import { AF, IFF, RTA, RTM } from '../../src/kernel/netlink-const.ts';

const UNDERLAY = 2;
const VXLAN = 7;
const OTHER = 9;
const PORT = 4242;
const owned: Owned = {
  links: new Set([UNDERLAY, VXLAN]),
  entriesOn: VXLAN,
  routes: new Set(['10.245.1.0/24']),
  port: PORT,
};

function msg(type: number, header: Buffer, pid = 0, attrs: [number, Buffer][] = []) {
  const b = new MessageBuilder(type, 0).raw(header);
  for (const [t, v] of attrs) b.attr(t, v);
  const bytes = b.finish(1);
  return { type, pid, data: bytes.subarray(16) };
}
const route = (type: number, dst: string, len: number, protocol: number, pid = 0, table = 254) =>
  msg(type, rtmsg({ family: AF.INET, dstLength: len, table, protocol }), pid, [
    [RTA.DST, Buffer.from(dst.split('.').map(Number))],
    [RTA.TABLE, Buffer.from(Uint32Array.of(table).buffer)],
  ]);

describe('touchesOwned', () => {
  it('counts its devices deleted, set down or losing an address, not other links nor the kernel bringing them up', () => {
    const link = (type: number, index: number, flags: number) => msg(type, ifinfomsg({ family: 0, index, flags }));
    expect(touchesOwned(link(RTM.DELLINK, VXLAN, IFF.UP), owned)).toBe(true);
    expect(touchesOwned(link(RTM.DELLINK, OTHER, IFF.UP), owned)).toBe(false);
    expect(touchesOwned(link(RTM.NEWLINK, VXLAN, 0), owned)).toBe(true);
    expect(touchesOwned(link(RTM.NEWLINK, UNDERLAY, IFF.BROADCAST), owned)).toBe(true);
    expect(touchesOwned(link(RTM.NEWLINK, VXLAN, IFF.UP | IFF.RUNNING | IFF.LOWER_UP), owned)).toBe(false);
    expect(touchesOwned(link(RTM.NEWLINK, OTHER, 0), owned)).toBe(false);
    expect(touchesOwned(msg(RTM.DELADDR, ifaddrmsg({ family: AF.INET, index: UNDERLAY })), owned)).toBe(true);
    expect(touchesOwned(msg(RTM.DELADDR, ifaddrmsg({ family: AF.INET, index: OTHER })), owned)).toBe(false);
    expect(touchesOwned(msg(RTM.NEWADDR, ifaddrmsg({ family: AF.INET6, index: VXLAN })), owned)).toBe(false);
  });

  it("counts main-table routes of Strand's protocol or of a destination it wants, not others", () => {
    expect(touchesOwned(route(RTM.DELROUTE, '10.245.3.0', 24, STRAND_ROUTE_PROTOCOL), owned)).toBe(true);
    expect(touchesOwned(route(RTM.NEWROUTE, '10.245.1.0', 24, 4), owned)).toBe(true);
    expect(touchesOwned(route(RTM.NEWROUTE, '10.96.0.0', 24, 4), owned)).toBe(false);
    expect(touchesOwned(route(RTM.NEWROUTE, '10.245.1.0', 24, 2, 0, 255), owned)).toBe(false);
  });

  it('counts neighbour and FDB entries on the VXLAN device only, and FDB entries just written as its own', () => {
    const neigh = (family: number, index: number) => msg(RTM.DELNEIGH, ndmsg({ family, index }));
    expect(touchesOwned(neigh(AF.INET, VXLAN), owned)).toBe(true);
    expect(touchesOwned(neigh(AF.INET6, VXLAN), owned)).toBe(true);
    expect(touchesOwned(neigh(AF.INET, OTHER), owned)).toBe(false);
    expect(touchesOwned(neigh(AF.INET, UNDERLAY), owned)).toBe(false);
    expect(touchesOwned(neigh(AF.BRIDGE, VXLAN), owned)).toBe(true);
    expect(touchesOwned(neigh(AF.BRIDGE, VXLAN), owned, true)).toBe(false);
    expect(touchesOwned(neigh(AF.INET, VXLAN), owned, true)).toBe(true);
    expect(touchesOwned(neigh(AF.INET, VXLAN), { ...owned, entriesOn: undefined })).toBe(false);
  });

  it("ignores what its own socket's requests caused, and counts a route message too short to read", () => {
    expect(touchesOwned(route(RTM.DELROUTE, '10.245.3.0', 24, STRAND_ROUTE_PROTOCOL, PORT), owned)).toBe(false);
    expect(touchesOwned(msg(RTM.DELNEIGH, ndmsg({ family: AF.INET, index: VXLAN }), PORT), owned)).toBe(false);
    expect(touchesOwned({ type: RTM.DELROUTE, pid: 0, data: Buffer.alloc(4) }, owned)).toBe(true);
    expect(touchesOwned({ type: 3 /* NLMSG_DONE */, pid: 0, data: Buffer.alloc(4) }, owned)).toBe(false);
  });
});
