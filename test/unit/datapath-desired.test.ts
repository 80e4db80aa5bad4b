// The pure thinking of the backends: which routes, neighbours and FDB entries a list of peers needs
// (desiredState), and which operations turn what the kernel holds into that (planChanges).
import { describe, expect, it } from 'vitest';
import { PrefixClaims } from '../../src/datapath/cidr.ts';
import {
  desiredState,
  desiredSteps,
  PEERS_PER_STEP,
  planChanges,
  planSteps,
  vtepMacFor,
  vxlanOverhead,
  type ActualState,
  type DatapathMode,
  type DesiredInput,
  type Devices,
  type Peer,
} from '../../src/datapath/index.ts';
import { drainSliced } from '../../src/util/sliced.ts';

const VXLAN: DatapathMode = { kind: 'vxlan', directRouting: false, vtepMac: '0e:00:00:00:00:01', vtepFamily: 4 };
const HOST_GW: DatapathMode = { kind: 'host-gw' };

function input(mode: DatapathMode, opts: Partial<DesiredInput> = {}): DesiredInput {
  return { mode, local: { name: 'n1', podCidrs: ['10.244.1.0/24'] }, underlayPrefixes: ['198.18.0.0/24'], ...opts };
}

function peer(n: number, extra: Partial<Peer> = {}): Peer {
  return {
    name: `n${n}`,
    underlayIps: [`198.18.0.${n}`],
    podCidrs: [`10.244.${n}.0/24`],
    vtepMac: `0e:00:00:00:00:0${n}`,
    ...extra,
  };
}

describe('desiredState, VXLAN', () => {
  it('one route, one neighbour and one FDB entry per peer, in name order; this node is skipped', () => {
    const d = desiredState(input(VXLAN), [peer(3), peer(1), peer(2)]);
    expect(d.problems).toEqual([]);
    expect(d.routes).toEqual([
      { peer: 'n2', dst: '10.244.2.0/24', gateway: '10.244.2.0', dev: 'vxlan', onlink: true },
      { peer: 'n3', dst: '10.244.3.0/24', gateway: '10.244.3.0', dev: 'vxlan', onlink: true },
    ]);
    expect(d.neighbours).toEqual([
      { peer: 'n2', ip: '10.244.2.0', mac: '0e:00:00:00:00:02' },
      { peer: 'n3', ip: '10.244.3.0', mac: '0e:00:00:00:00:03' },
    ]);
    expect(d.fdb).toEqual([
      { peer: 'n2', mac: '0e:00:00:00:00:02', dst: '198.18.0.2' },
      { peer: 'n3', mac: '0e:00:00:00:00:03', dst: '198.18.0.3' },
    ]);
  });

  it('dual-stack: a route and a neighbour per pod CIDR, one FDB entry, endpoint of the VTEP family', () => {
    const local = { name: 'n1', podCidrs: ['10.244.1.0/24', 'fd00:1::/64'] };
    const p = peer(2, { podCidrs: ['10.244.2.0/24', 'fd00:2::/64'], underlayIps: ['198.18.0.2', '2001:db8::2'] });
    const v4 = desiredState(input(VXLAN, { local }), [p]);
    expect(v4.problems).toEqual([]);
    expect(v4.routes.map((r) => [r.dst, r.gateway])).toEqual([
      ['10.244.2.0/24', '10.244.2.0'],
      ['fd00:2::/64', 'fd00:2::'],
    ]);
    expect(v4.neighbours.map((n) => n.ip)).toEqual(['10.244.2.0', 'fd00:2::']);
    expect(v4.fdb).toEqual([{ peer: 'n2', mac: '0e:00:00:00:00:02', dst: '198.18.0.2' }]);
    const v6 = desiredState(input({ ...VXLAN, vtepFamily: 6 } as DatapathMode, { local }), [p]);
    expect(v6.fdb).toEqual([{ peer: 'n2', mac: '0e:00:00:00:00:02', dst: '2001:db8::2' }]);
  });

  it('a peer without a VTEP MAC, or without an endpoint of the VTEP family, gets nothing and a reason', () => {
    const d = desiredState(input(VXLAN), [
      peer(2, { vtepMac: undefined, backend: 'host-gw' }),
      peer(3, { underlayIps: ['2001:db8::3'] }),
      peer(4),
    ]);
    expect(d.routes.map((r) => r.peer)).toEqual(['n4']);
    expect(d.fdb.map((r) => r.peer)).toEqual(['n4']);
    expect(d.problems).toEqual([
      {
        peer: 'n2',
        message: 'node n2: no VTEP MAC (annotation strand.dev/vtep-mac) (it runs host-gw); no VXLAN entries',
      },
      { peer: 'n3', message: 'node n3: no IPv4 underlay address for the VXLAN endpoint; no VXLAN entries' },
    ]);
  });

  it("a VTEP MAC claimed twice (or this node's) is a conflict: the first peer by name keeps it", () => {
    const d = desiredState(input(VXLAN), [
      peer(3, { vtepMac: '0e:00:00:00:00:02' }),
      peer(2),
      peer(4, { vtepMac: '0e:00:00:00:00:01' }),
    ]);
    expect(d.fdb.map((e) => e.peer)).toEqual(['n2']);
    expect(d.problems.map((p) => p.message)).toEqual([
      "node n3: VTEP MAC 0e:00:00:00:00:02 is also node n2's; no VXLAN entries",
      "node n4: VTEP MAC 0e:00:00:00:00:01 is also this node's; no VXLAN entries",
    ]);
  });

  it('overlapping pod CIDRs: with this node, or with an earlier peer', () => {
    const d = desiredState(input(VXLAN), [
      peer(2, { podCidrs: ['10.244.0.0/16'] }),
      peer(3),
      peer(4, { podCidrs: ['10.244.3.128/25'] }),
    ]);
    expect(d.routes.map((r) => r.dst)).toEqual(['10.244.3.0/24']);
    expect(d.problems.map((p) => p.message)).toEqual([
      "node n2: pod CIDR 10.244.0.0/16 overlaps this node's 10.244.1.0/24; no route",
      "node n4: pod CIDR 10.244.3.128/25 overlaps node n3's 10.244.3.0/24; no route",
    ]);
    // n4 had no route, so it needs no neighbour or FDB entry either.
    expect(d.fdb.map((e) => e.peer)).toEqual(['n3']);
  });

  describe('overlapping pod CIDRs: the older Node keeps its CIDR, whatever the names', () => {
    const T0 = '2026-01-01T00:00:00Z';
    const LATER = '2026-03-01T12:00:00Z';
    // A stale or hand-made Node with a /25 inside n3's /24, created after n3.
    const bad = (name: string, podCidrs = ['10.244.3.0/25']) => ({ ...peer(9, { podCidrs }), name, createdAt: LATER });
    const n3 = peer(3, { createdAt: T0 });

    for (const name of ['a-bad', 'zz-bad']) {
      it(`the newer Node ${name} (sorted ${name === 'a-bad' ? 'first' : 'last'}) is refused; n3 keeps its route`, () => {
        for (const mode of [VXLAN, HOST_GW]) {
          const d = desiredState(input(mode), [bad(name), n3, peer(2, { createdAt: T0 })]);
          expect(d.routes.map((r) => `${r.peer} ${r.dst}`)).toEqual(['n2 10.244.2.0/24', 'n3 10.244.3.0/24']);
          expect(d.problems).toEqual([
            {
              peer: name,
              overlaps: { cidr: '10.244.3.0/24', node: 'n3' },
              message: `node ${name}: pod CIDR 10.244.3.0/25 overlaps node n3's 10.244.3.0/24; no route`,
            },
          ]);
          if (mode.kind === 'vxlan') expect(d.fdb.map((e) => e.peer)).toEqual(['n2', 'n3']);
        }
      });
    }

    it('a /23 around the /24 is refused the same way', () => {
      const d = desiredState(input(VXLAN), [bad('a-bad', ['10.244.2.0/23']), n3]);
      expect(d.routes.map((r) => r.peer)).toEqual(['n3']);
      expect(d.problems.map((p) => p.message)).toEqual([
        "node a-bad: pod CIDR 10.244.2.0/23 overlaps node n3's 10.244.3.0/24; no route",
      ]);
    });

    it('the older Node wins even when it sorts after the newer one and the newer one is well formed', () => {
      const old = { ...peer(2, { podCidrs: ['10.244.3.0/25'] }), name: 'zz-old', createdAt: T0 };
      const d = desiredState(input(VXLAN), [old, peer(3, { createdAt: LATER })]);
      expect(d.routes.map((r) => r.peer)).toEqual(['zz-old']);
      expect(d.problems.map((p) => p.overlaps?.node)).toEqual(['zz-old']);
    });

    it('ties and missing timestamps go by name; a missing one counts as the newest', () => {
      const tie = desiredState(input(VXLAN), [bad('zz-bad'), { ...n3, createdAt: LATER }]);
      expect(tie.routes.map((r) => r.peer)).toEqual(['n3']);
      const none = desiredState(input(VXLAN), [{ ...bad('a-bad'), createdAt: undefined }, n3]);
      expect(none.routes.map((r) => r.peer)).toEqual(['n3']);
      const unreadable = desiredState(input(VXLAN), [{ ...bad('a-bad'), createdAt: 'yesterday' }, n3]);
      expect(unreadable.routes.map((r) => r.peer)).toEqual(['n3']);
    });

    it("a Node inside this node's own CIDR is refused whatever its age", () => {
      const d = desiredState(input(HOST_GW), [
        { ...bad('a-bad', ['10.244.1.128/25']), createdAt: '2000-01-01T00:00:00Z' },
      ]);
      expect(d.routes).toEqual([]);
      expect(d.problems).toEqual([
        {
          peer: 'a-bad',
          overlaps: { cidr: '10.244.1.0/24', node: 'n1' },
          message: "node a-bad: pod CIDR 10.244.1.128/25 overlaps this node's 10.244.1.0/24; no route",
        },
      ]);
    });

    it('a Node inside the service range is refused; a service range around this node is reported, not used', () => {
      const local = { name: 'n1', podCidrs: ['10.244.1.0/24'], serviceCidrs: ['10.96.0.0/12'] };
      const d = desiredState(input(VXLAN, { local }), [bad('a-bad', ['10.96.5.0/24']), n3]);
      expect(d.routes.map((r) => r.peer)).toEqual(['n3']);
      expect(d.problems.map((p) => p.message)).toEqual([
        'node a-bad: pod CIDR 10.96.5.0/24 overlaps the service range 10.96.0.0/12; no route',
      ]);
      expect(d.problems[0]?.overlaps).toEqual({ cidr: '10.96.0.0/12' });
      const inside = desiredState(input(VXLAN, { local: { ...local, serviceCidrs: ['10.244.0.0/16'] } }), [n3]);
      // A service range around this node's own CIDR is wrong: said, and not held against the peers.
      expect(inside.problems.map((p) => p.message)).toEqual([
        "this node's pod CIDR 10.244.1.0/24 overlaps the service range 10.244.0.0/16; that range is not checked",
      ]);
      expect(inside.routes.map((r) => r.peer)).toEqual(['n3']);
    });

    it('IPv6: the newer /80 inside an older /64 is refused, the IPv4 route of the same Node stays', () => {
      const local = { name: 'n1', podCidrs: ['10.244.1.0/24', 'fd00:1::/64'] };
      const old = peer(3, {
        podCidrs: ['10.244.3.0/24', 'fd00:3::/64'],
        underlayIps: ['198.18.0.3', '2001:db8::3'],
        createdAt: T0,
      });
      const newer = {
        ...bad('a-bad', ['10.244.9.0/24', 'fd00:3:0:0:1::/80']),
        underlayIps: ['198.18.0.9', '2001:db8::9'],
      };
      const d = desiredState(input(VXLAN, { local }), [newer, old]);
      expect(d.routes.map((r) => `${r.peer} ${r.dst}`)).toEqual([
        'a-bad 10.244.9.0/24',
        'n3 10.244.3.0/24',
        'n3 fd00:3::/64',
      ]);
      expect(d.problems.map((p) => p.message)).toEqual([
        "node a-bad: pod CIDR fd00:3:0:0:1::/80 overlaps node n3's fd00:3::/64; no route",
      ]);
    });

    it('every node computes the same owner: the one that cannot route to the older Node still refuses the newer', () => {
      // n3 has no VTEP MAC (its agent runs host-gw): no VXLAN entries for it, and its CIDR stays its own.
      const d = desiredState(input(VXLAN), [bad('a-bad'), { ...n3, vtepMac: undefined }]);
      expect(d.routes).toEqual([]);
      expect(d.problems.map((p) => p.peer)).toEqual(['a-bad', 'n3']);
    });
  });

  it('a pod CIDR of a family this node has none of is skipped with a reason', () => {
    const d = desiredState(input(VXLAN), [peer(2, { podCidrs: ['10.244.2.0/24', 'fd00:2::/64'] })]);
    expect(d.routes.map((r) => r.dst)).toEqual(['10.244.2.0/24']);
    expect(d.problems.map((p) => p.message)).toEqual([
      'node n2: pod CIDR fd00:2::/64 is IPv6 but this node has no IPv6 pod CIDR; no route',
    ]);
  });

  it('a peer built by hand is read in canonical form; malformed values are dropped with a reason', () => {
    const d = desiredState(input(VXLAN, { local: { name: 'n1', podCidrs: ['10.244.1.0/24', 'fd00:1::/64'] } }), [
      {
        name: 'n2',
        podCidrs: ['10.244.2.9/24', 'FD00:2:0::/64', 'nonsense'],
        underlayIps: ['198.18.0.2', 'x'],
        vtepMac: '0E:00:00:00:00:02',
      },
      { name: 'n3', podCidrs: ['10.244.3.0/24'], underlayIps: ['198.18.0.3'], vtepMac: 'ff:ff:ff:ff:ff:ff' },
    ]);
    expect(d.routes.map((r) => `${r.dst} via ${r.gateway}`)).toEqual([
      '10.244.2.0/24 via 10.244.2.0',
      'fd00:2::/64 via fd00:2::',
    ]);
    expect(d.fdb).toEqual([{ peer: 'n2', mac: '0e:00:00:00:00:02', dst: '198.18.0.2' }]);
    expect(d.problems.map((p) => p.message)).toEqual([
      'node n2: malformed pod CIDR "nonsense"; no route',
      'node n2: malformed underlay address "x"; ignored',
      'node n3: VTEP MAC "ff:ff:ff:ff:ff:ff" is not a unicast MAC address; ignored',
      'node n3: no VTEP MAC (annotation strand.dev/vtep-mac); no VXLAN entries',
    ]);
  });

  it('a peer listed twice is used once', () => {
    const d = desiredState(input(VXLAN), [peer(2), peer(2, { underlayIps: ['198.18.0.99'] })]);
    expect(d.fdb).toHaveLength(1);
    expect(d.problems.map((p) => p.message)).toEqual(['node n2: listed more than once; the first one is used']);
  });

  it('directRouting: same-segment peers get underlay routes and no tunnel entries, others VXLAN', () => {
    const mode: DatapathMode = { ...VXLAN, directRouting: true } as DatapathMode;
    const far = peer(3, { underlayIps: ['198.19.0.3'] });
    const d = desiredState(input(mode), [peer(2), far]);
    expect(d.problems).toEqual([]);
    expect(d.routes).toEqual([
      { peer: 'n2', dst: '10.244.2.0/24', gateway: '198.18.0.2', dev: 'underlay', onlink: false },
      { peer: 'n3', dst: '10.244.3.0/24', gateway: '10.244.3.0', dev: 'vxlan', onlink: true },
    ]);
    expect(d.neighbours.map((n) => n.peer)).toEqual(['n3']);
    expect(d.fdb.map((n) => n.peer)).toEqual(['n3']);
    // A same-segment peer needs no VTEP MAC at all (a host-gw node next to a VXLAN one).
    expect(desiredState(input(mode), [peer(2, { vtepMac: undefined })]).problems).toEqual([]);
  });
});

describe('desiredState, host-gw', () => {
  it('a route via the underlay address per pod CIDR; no neighbours, no FDB', () => {
    const local = { name: 'n1', podCidrs: ['10.244.1.0/24', 'fd00:1::/64'] };
    const p = peer(2, {
      podCidrs: ['10.244.2.0/24', 'fd00:2::/64'],
      underlayIps: ['198.18.0.2', '2001:db8::2'],
      vtepMac: undefined,
    });
    const d = desiredState(input(HOST_GW, { local, underlayPrefixes: ['198.18.0.0/24', '2001:db8::/64'] }), [p]);
    expect(d).toEqual({
      routes: [
        { peer: 'n2', dst: '10.244.2.0/24', gateway: '198.18.0.2', dev: 'underlay', onlink: false },
        { peer: 'n2', dst: 'fd00:2::/64', gateway: '2001:db8::2', dev: 'underlay', onlink: false },
      ],
      neighbours: [],
      fdb: [],
      problems: [],
    });
  });

  it('a peer off the layer-2 segment, or without an address of the family, is reported and gets no route', () => {
    const local = { name: 'n1', podCidrs: ['10.244.1.0/24', 'fd00:1::/64'] };
    const far = peer(2, { underlayIps: ['198.19.0.2'] });
    const v4only = peer(3, { podCidrs: ['10.244.3.0/24', 'fd00:3::/64'] });
    const d = desiredState(input(HOST_GW, { local }), [far, v4only]);
    expect(d.routes.map((r) => r.dst)).toEqual(['10.244.3.0/24']);
    expect(d.problems.map((p) => p.message)).toEqual([
      "node n2: underlay address 198.19.0.2 is not on this node's layer-2 segment (198.18.0.0/24): host-gw cannot use it as a next hop; no route to 10.244.2.0/24",
      'node n3: no IPv6 underlay address to route pod CIDR fd00:3::/64 via; no route',
    ]);
  });
});

const DEVICES: Devices = { underlay: { index: 2, name: 'eth0' }, vxlan: { index: 5, name: 'strand.1' } };
const EMPTY: ActualState = { routes: [], neighbours: [], fdb: [] };

function actualFor(peers: Peer[]): ActualState {
  const d = desiredState(input(VXLAN), peers);
  return {
    routes: d.routes.map((r) => ({
      dst: r.dst,
      gateway: r.gateway,
      oif: r.dev === 'vxlan' ? 5 : 2,
      onlink: r.onlink,
      metric: undefined,
    })),
    neighbours: d.neighbours.map((n) => ({ ip: n.ip, mac: n.mac, permanent: true })),
    fdb: d.fdb.map((f) => ({ mac: f.mac, dst: f.dst })),
  };
}

function summary(peers: Peer[], actual: ActualState, mode: DatapathMode = VXLAN) {
  const plan = planChanges(desiredState(input(mode), peers), actual, DEVICES);
  return { ops: plan.ops.map((o) => `${o.action} ${o.object} ${o.detail}`), unchanged: plan.unchanged };
}

describe('planChanges', () => {
  it('from nothing: adds FDB, then neighbour, then route', () => {
    expect(summary([peer(2)], EMPTY)).toEqual({
      ops: [
        'add fdb 0e:00:00:00:00:02 dev strand.1 dst 198.18.0.2 self permanent',
        'add neighbour 10.244.2.0 lladdr 0e:00:00:00:00:02 dev strand.1',
        'add route 10.244.2.0/24 via 10.244.2.0 dev strand.1 onlink',
      ],
      unchanged: 0,
    });
  });

  it('nothing to do when the kernel holds exactly the desired entries', () => {
    expect(summary([peer(2), peer(3)], actualFor([peer(2), peer(3)]))).toEqual({ ops: [], unchanged: 6 });
  });

  it('a peer gone: route first, then neighbour, then FDB entry', () => {
    expect(summary([peer(2)], actualFor([peer(2), peer(3)]))).toEqual({
      ops: [
        'delete route 10.244.3.0/24 via 10.244.3.0 dev strand.1 onlink',
        'delete neighbour 10.244.3.0 lladdr 0e:00:00:00:00:03 dev strand.1',
        'delete fdb 0e:00:00:00:00:03 dev strand.1 dst 198.18.0.3 self permanent',
      ],
      unchanged: 3,
    });
  });

  it("a peer's underlay address changed: its FDB entry is replaced, nothing else", () => {
    expect(summary([peer(2, { underlayIps: ['198.18.0.22'] })], actualFor([peer(2)])).ops).toEqual([
      'replace fdb 0e:00:00:00:00:02 dev strand.1 dst 198.18.0.22 self permanent',
    ]);
  });

  it("a peer's VTEP MAC changed: new FDB entry, neighbour replaced, old FDB entry removed last", () => {
    expect(summary([peer(2, { vtepMac: '0e:00:00:00:00:22' })], actualFor([peer(2)])).ops).toEqual([
      'add fdb 0e:00:00:00:00:22 dev strand.1 dst 198.18.0.2 self permanent',
      'replace neighbour 10.244.2.0 lladdr 0e:00:00:00:00:22 dev strand.1',
      'delete fdb 0e:00:00:00:00:02 dev strand.1 dst 198.18.0.2 self permanent',
    ]);
  });

  it("a peer's pod CIDR changed: new route and neighbour, old ones removed", () => {
    expect(summary([peer(2, { podCidrs: ['10.244.20.0/24'] })], actualFor([peer(2)])).ops).toEqual([
      'delete route 10.244.2.0/24 via 10.244.2.0 dev strand.1 onlink',
      'add neighbour 10.244.20.0 lladdr 0e:00:00:00:00:02 dev strand.1',
      'add route 10.244.20.0/24 via 10.244.20.0 dev strand.1 onlink',
      'delete neighbour 10.244.2.0 lladdr 0e:00:00:00:00:02 dev strand.1',
    ]);
  });

  it('a route changed device (VXLAN to direct) is replaced in place', () => {
    const mode = { ...VXLAN, directRouting: true } as DatapathMode;
    expect(summary([peer(2)], actualFor([peer(2)]), mode).ops).toEqual([
      'replace route 10.244.2.0/24 via 198.18.0.2 dev eth0',
      'delete neighbour 10.244.2.0 lladdr 0e:00:00:00:00:02 dev strand.1',
      'delete fdb 0e:00:00:00:00:02 dev strand.1 dst 198.18.0.2 self permanent',
    ]);
  });

  it('duplicates: a second route with another metric and a second FDB destination are removed', () => {
    const actual = actualFor([peer(2)]);
    actual.routes.push({ dst: '10.244.2.0/24', gateway: '10.244.2.0', oif: 5, onlink: true, metric: 100 });
    actual.fdb.unshift({ mac: '0e:00:00:00:00:02', dst: '198.18.0.99' });
    expect(summary([peer(2)], actual)).toEqual({
      ops: [
        'delete route 10.244.2.0/24 via 10.244.2.0 dev strand.1 onlink metric 100',
        'delete fdb 0e:00:00:00:00:02 dev strand.1 dst 198.18.0.99 self permanent',
      ],
      unchanged: 3,
    });
  });

  it('a non-permanent neighbour for a VTEP is made permanent; stray non-permanent ones are left to age out', () => {
    const actual = actualFor([peer(2)]);
    actual.neighbours = [
      { ip: '10.244.2.0', mac: undefined, permanent: false },
      { ip: '10.244.9.0', mac: undefined, permanent: false },
    ];
    expect(summary([peer(2)], actual).ops).toEqual([
      'replace neighbour 10.244.2.0 lladdr 0e:00:00:00:00:02 dev strand.1',
    ]);
  });

  it('IPv6 routes carry metric 1024 by default and are not duplicates', () => {
    const local = { name: 'n1', podCidrs: ['fd00:1::/64'] };
    const p = peer(2, { podCidrs: ['fd00:2::/64'] });
    const desired = desiredState(input(VXLAN, { local }), [p]);
    const actual: ActualState = {
      routes: [{ dst: 'fd00:2::/64', gateway: 'fd00:2::', oif: 5, onlink: true, metric: 1024 }],
      neighbours: [{ ip: 'fd00:2::', mac: '0e:00:00:00:00:02', permanent: true }],
      fdb: [{ mac: '0e:00:00:00:00:02', dst: '198.18.0.2' }],
    };
    expect(planChanges(desired, actual, DEVICES)).toEqual({ ops: [], unchanged: 3 });
  });

  it('host-gw: stale Strand routes through any device are removed', () => {
    const actual: ActualState = {
      routes: [{ dst: '10.244.7.0/24', gateway: '10.244.7.0', oif: 9, onlink: true, metric: undefined }],
      neighbours: [],
      fdb: [],
    };
    const plan = planChanges(desiredState(input(HOST_GW), [peer(2)]), actual, { underlay: DEVICES.underlay });
    expect(plan.ops.map((o) => `${o.action} ${o.object} ${o.detail}`)).toEqual([
      'delete route 10.244.7.0/24 via 10.244.7.0 dev #9 onlink',
      'add route 10.244.2.0/24 via 198.18.0.2 dev eth0',
    ]);
  });
});

describe('desiredSteps and planSteps (sliced)', () => {
  // 1,000 peers, a tenth of them in a problem (no VTEP MAC), half already in the kernel.
  const many = Array.from({ length: 1000 }, (_, i) => {
    const n = i + 2;
    return peer(n, {
      name: `n${String(n).padStart(4, '0')}`,
      underlayIps: [`198.18.${n >> 8}.${n & 255}`],
      podCidrs: [`10.${n >> 8}.${n & 255}.0/24`],
      ...(i % 10 === 0
        ? { vtepMac: undefined }
        : {
            vtepMac: `0e:00:00:00:${(n >> 8).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`,
          }),
    });
  });
  const wide = input(VXLAN, { underlayPrefixes: ['198.18.0.0/16'] });

  it('pause every PEERS_PER_STEP peers and make what desiredState and planChanges make', async () => {
    let pauses = 0;
    const breathe = async () => void pauses++;
    const sliced = await drainSliced(desiredSteps(wide, many), breathe, 0);
    expect(sliced).toEqual(desiredState(wide, many));
    expect(sliced.routes).toHaveLength(900); // a peer with no VTEP MAC gets no VXLAN route
    expect(sliced.problems).toHaveLength(100);
    // The read, the claims and the entries each pause every PEERS_PER_STEP peers.
    expect(pauses).toBeGreaterThanOrEqual(3 * Math.floor(1000 / PEERS_PER_STEP));

    const actual = actualFor(many.slice(0, 500).filter((p) => p.vtepMac !== undefined));
    pauses = 0;
    const plan = await drainSliced(planSteps(sliced, actual, DEVICES), breathe, 0);
    expect(plan).toEqual(planChanges(sliced, actual, DEVICES));
    expect(plan.unchanged).toBeGreaterThan(0);
    expect(plan.ops.length).toBeGreaterThan(0);
    expect(pauses).toBeGreaterThan(0);
  });
});

describe('PrefixClaims', () => {
  it('finds overlaps in both directions and per family, and forgets released claims', () => {
    const claims = new PrefixClaims();
    expect(claims.claim('10.244.1.0/24', 'a')).toBeUndefined();
    expect(claims.claim('10.244.3.0/24', 'b')).toBeUndefined();
    expect(claims.claim('10.244.1.128/25', 'c')).toEqual({ cidr: '10.244.1.0/24', owner: 'a' });
    expect(claims.claim('10.244.0.0/22', 'c')).toEqual({ cidr: '10.244.1.0/24', owner: 'a' });
    expect(claims.claim('10.244.2.0/24', 'c')).toBeUndefined();
    expect(claims.claim('10.244.3.255/32', 'd')).toEqual({ cidr: '10.244.3.0/24', owner: 'b' });
    expect(claims.claim('0.0.0.0/0', 'd')).toBeDefined();
    expect(claims.claim('fd00::/8', 'd')).toBeUndefined();
    expect(claims.claim('fd00:1::/64', 'e')).toEqual({ cidr: 'fd00::/8', owner: 'd' });
    claims.release('10.244.1.0/24', 'a');
    expect(claims.claim('10.244.1.128/25', 'c')).toBeUndefined();
  });

  it('keeps desiredState near-linear: 5000 peers well within a second or two', () => {
    const peers = Array.from({ length: 5000 }, (_, i) => ({
      name: `p${i}`,
      underlayIps: [`198.18.${i >> 8}.${i & 255}`],
      podCidrs: [`10.${(i >> 8) + 1}.${i & 255}.0/24`],
      vtepMac: vtepMacFor(`p${i}`),
    }));
    const started = performance.now();
    const d = desiredState(input(VXLAN, { underlayPrefixes: ['198.18.0.0/15'] }), peers);
    // Comparing every pair of pod CIDRs took 15 s here; the sorted claims take about 50 ms.
    expect(performance.now() - started).toBeLessThan(3000);
    expect(d.problems).toEqual([]);
    expect(d.routes).toHaveLength(5000);
  });
});

describe('vxlanOverhead', () => {
  it('is 50 bytes over IPv4 and 70 over IPv6', () => {
    expect(vxlanOverhead(4)).toBe(50);
    expect(vxlanOverhead(6)).toBe(70);
  });
});
