// Neighbour (ARP/NDP) and FDB entries through src/kernel on the real kernel, checked with `ip -j`
// and `bridge -j`, inside test namespaces removed in afterEach. The VXLAN case is the agent's per-peer
// programming: one FDB entry (VTEP MAC -> underlay IP) and one neighbour entry per remote node.
import { describe, expect, it } from 'vitest';
import {
  addFdbEntry,
  addLink,
  addNeighbour,
  deleteFdbEntry,
  deleteNeighbour,
  getLink,
  listFdbEntries,
  listNeighbours,
  NetlinkSocket,
  setLink,
} from '../../src/kernel/index.ts';
import { testName } from '../support/names.ts';
import { kernelFixture } from '../support/kernel-fixture.ts';
import { TestNetns } from '../support/netns.ts';
import { ipJson, sh } from '../support/sh.ts';

interface IpNeigh {
  dst: string;
  dev?: string;
  lladdr?: string;
  state: string[];
}

interface BridgeFdb {
  mac: string;
  dst?: string;
  ifname?: string;
  master?: string;
  flags: string[];
  state?: string;
  vni?: number;
}

const { netns, socketIn } = kernelFixture();

function setup(): { ns: TestNetns; nl: NetlinkSocket } {
  const ns = netns();
  const nl = socketIn(ns);
  return { ns, nl };
}

function fdb(ns: TestNetns, dev: string): BridgeFdb[] {
  const out = sh('bridge', ['-n', ns.name, '-j', 'fdb', 'show', 'dev', dev]);
  return out.trim() === '' ? [] : (JSON.parse(out) as BridgeFdb[]);
}

/** A VXLAN device as the agent makes one: learning off, a veth as the underlay. */
function vxlan(nl: NetlinkSocket): { vx: string; underlay: string } {
  const underlay = testName('ul');
  const vx = testName('vxl');
  addLink(nl, { kind: 'veth', name: underlay, up: true, peer: { name: testName('vy') } });
  addLink(nl, {
    kind: 'vxlan',
    name: vx,
    vni: 1,
    port: 4789,
    local: '198.18.0.1',
    learning: false,
    link: underlay,
    up: true,
  });
  return { vx, underlay };
}

describe('neighbours', () => {
  it('adds, lists and deletes permanent ARP and NDP entries', () => {
    const { ns, nl } = setup();
    const dev = testName('eth');
    addLink(nl, { kind: 'veth', name: dev, up: true, peer: { name: testName('vy') } });
    addNeighbour(nl, { link: dev, ip: '10.244.2.0', mac: '0a:0b:0c:0d:0e:01' });
    addNeighbour(nl, { link: dev, ip: 'fd00:2::', mac: '0a:0b:0c:0d:0e:02' });

    const ip = ipJson<IpNeigh[]>(['neigh', 'show', 'dev', dev], ns.name);
    expect(ip).toEqual(
      expect.arrayContaining([
        { dst: '10.244.2.0', lladdr: '0a:0b:0c:0d:0e:01', state: ['PERMANENT'] },
        { dst: 'fd00:2::', lladdr: '0a:0b:0c:0d:0e:02', state: ['PERMANENT'] },
      ]),
    );
    const index = getLink(nl, dev).index;
    const ours = listNeighbours(nl, { link: dev }).filter((n) => n.permanent);
    expect(ours.map((n) => [n.family, n.ip, n.mac, n.index]).sort()).toEqual([
      [4, '10.244.2.0', '0a:0b:0c:0d:0e:01', index],
      [6, 'fd00:2::', '0a:0b:0c:0d:0e:02', index],
    ]);

    expect(() => addNeighbour(nl, { link: dev, ip: '10.244.2.0', mac: '0a:0b:0c:0d:0e:09' })).toThrow(
      new RegExp(`^failed to add neighbour 10.244.2.0 lladdr 0a:0b:0c:0d:0e:09 on ${dev} in ${ns.path}: File exists`),
    );
    // A peer node's VTEP MAC changed (agent restart): replace updates the entry in place.
    addNeighbour(nl, { link: dev, ip: '10.244.2.0', mac: '0a:0b:0c:0d:0e:09' }, { replace: true });
    expect(ipJson<IpNeigh[]>(['neigh', 'show', '10.244.2.0', 'dev', dev], ns.name)).toEqual([
      { dst: '10.244.2.0', lladdr: '0a:0b:0c:0d:0e:09', state: ['PERMANENT'] },
    ]);

    deleteNeighbour(nl, { link: dev, ip: '10.244.2.0' });
    deleteNeighbour(nl, { link: dev, ip: 'fd00:2::' });
    expect(
      ipJson<IpNeigh[]>(['neigh', 'show', 'dev', dev], ns.name).filter((n) => n.state.includes('PERMANENT')),
    ).toEqual([]);
    expect(() => deleteNeighbour(nl, { link: dev, ip: '10.244.2.0' })).toThrow(/No such file or directory/);
  });

  it('programs a remote node on a VXLAN device: neighbour and FDB entry', () => {
    const { ns, nl } = setup();
    const { vx } = vxlan(nl);
    const vtepMac = '0a:0b:0c:0d:0e:0f';
    addNeighbour(nl, { link: vx, ip: '10.244.2.0', mac: vtepMac }, { replace: true });
    addFdbEntry(nl, { link: vx, mac: vtepMac, dst: '198.18.0.2' }, { replace: true });

    expect(ipJson<IpNeigh[]>(['neigh', 'show', 'dev', vx], ns.name)).toEqual([
      { dst: '10.244.2.0', lladdr: vtepMac, state: ['PERMANENT'] },
    ]);
    expect(fdb(ns, vx).filter((e) => e.mac === vtepMac)).toEqual([
      expect.objectContaining({ mac: vtepMac, dst: '198.18.0.2', flags: ['self'], state: 'permanent' }),
    ]);
    const entry = listFdbEntries(nl, { link: vx }).find((e) => e.mac === vtepMac);
    expect(entry).toMatchObject({ dst: '198.18.0.2', self: true, permanent: true, index: getLink(nl, vx).index });

    // Replace moves the MAC to another VTEP (the node's underlay address changed).
    addFdbEntry(nl, { link: vx, mac: vtepMac, dst: '198.18.0.3' }, { replace: true });
    expect(
      fdb(ns, vx)
        .filter((e) => e.mac === vtepMac)
        .map((e) => e.dst),
    ).toEqual(['198.18.0.3']);

    deleteFdbEntry(nl, { link: vx, mac: vtepMac, dst: '198.18.0.3' });
    expect(fdb(ns, vx).filter((e) => e.mac === vtepMac)).toEqual([]);
    expect(listFdbEntries(nl, { link: vx }).some((e) => e.mac === vtepMac)).toBe(false);
  });

  it('appends several flooding destinations for the all-zeros MAC, and deletes one', () => {
    const { ns, nl } = setup();
    const { vx } = vxlan(nl);
    const zero = '00:00:00:00:00:00';
    addFdbEntry(nl, { link: vx, mac: zero, dst: '198.18.0.2' }, { append: true });
    addFdbEntry(nl, { link: vx, mac: zero, dst: '198.18.0.3' }, { append: true });
    expect(
      fdb(ns, vx)
        .filter((e) => e.mac === zero)
        .map((e) => e.dst)
        .sort(),
    ).toEqual(['198.18.0.2', '198.18.0.3']);
    deleteFdbEntry(nl, { link: vx, mac: zero, dst: '198.18.0.2' });
    expect(
      fdb(ns, vx)
        .filter((e) => e.mac === zero)
        .map((e) => e.dst),
    ).toEqual(['198.18.0.3']);
  });

  it('adds a static entry to a bridge FDB', () => {
    const { ns, nl } = setup();
    const br = testName('br');
    const port = testName('veth');
    addLink(nl, { kind: 'bridge', name: br, up: true });
    addLink(nl, { kind: 'veth', name: port, up: true, peer: { name: testName('vy') } });
    setLink(nl, port, { master: br });
    addFdbEntry(nl, { link: port, mac: '0a:00:00:00:00:77', master: true });
    expect(fdb(ns, port).find((e) => e.mac === '0a:00:00:00:00:77')).toMatchObject({ master: br, state: 'static' });
    const entry = listFdbEntries(nl, { master: br }).find((e) => e.mac === '0a:00:00:00:00:77');
    expect(entry).toMatchObject({ index: getLink(nl, port).index, master: getLink(nl, br).index, self: false });
    deleteFdbEntry(nl, { link: port, mac: '0a:00:00:00:00:77', master: true });
    expect(fdb(ns, port).find((e) => e.mac === '0a:00:00:00:00:77')).toBeUndefined();
  });
});
