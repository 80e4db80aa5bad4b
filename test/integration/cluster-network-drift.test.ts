// The cluster network's drift watch on the real kernel (src/datapath/drift-watch.ts, ClusterNetwork):
// a forced pass (the resync) whose inputs did not change reads nothing back while rtnetlink announced
// no change to Strand's routes, neighbours, FDB entries or devices; a change made by hand to any of
// them is announced, and the next forced pass reads the kernel and repairs it. The agent's own writes,
// other links' changes and the passing of time short of FULL_READ_MS are not drift; a queue that
// overflowed is.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ClusterNetwork, FULL_READ_MS } from '../../src/agent/cluster-network.ts';
import { loadAgentConfig } from '../../src/agent/config.ts';
import { LEGACY_OFFLOAD_SIZE, type Underlay } from '../../src/agent/node-setup.ts';
import { DriftWatch } from '../../src/datapath/drift-watch.ts';
import { vtepMacFor } from '../../src/datapath/index.ts';
import { findLink, NetlinkSocket } from '../../src/kernel/index.ts';
import { silentLogger } from '../../src/log.ts';
import type { Nft } from '../../src/nft/transport.ts';
import { kernelFixture } from '../support/kernel-fixture.ts';
import { testName } from '../support/names.ts';
import type { TestNetns } from '../support/netns.ts';
import { ipJson, sh } from '../support/sh.ts';

const { netns } = kernelFixture();
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

const PEERS = 3;
const ip = (ns: TestNetns, ...args: string[]) => sh('ip', ['-n', ns.name, ...args]);

interface Node {
  ns: TestNetns;
  network: ClusterNetwork;
  underlay: Underlay;
  nodes: unknown[];
  device: string;
  clock: { now: number };
  pass(force?: boolean): ReturnType<ClusterNetwork['reconcilePeers']>;
}

/** A node namespace with an underlay veth, and a ClusterNetwork for it with PEERS peers on the underlay's segment. */
async function node(
  backend: 'vxlan' | 'host-gw',
  openWatch?: (netns: string | undefined) => DriftWatch,
  peers = PEERS,
): Promise<Node> {
  const ns = netns();
  const ul = testName('ul');
  ip(ns, 'link', 'add', ul, 'type', 'veth', 'peer', 'name', testName('up'));
  ip(ns, 'addr', 'add', '198.18.0.2/24', 'dev', ul);
  for (const l of [ul]) ip(ns, 'link', 'set', l, 'up');
  sh('ip', ['-n', ns.name, 'link', 'set', 'lo', 'up']);
  const dir = mkdtempSync(join(tmpdir(), 'strand-drift-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const vni = 100 + Math.floor(Math.random() * 1000);
  const config = await loadAgentConfig({
    flags: {
      'node-name': 'me',
      backend,
      vni: String(vni),
      'state-dir': join(dir, 'state'),
      'cni-conf-dir': join(dir, 'conf'),
      'cni-bin-dir': join(dir, 'bin'),
      'ipam-data-dir': join(dir, 'ipam'),
      'health-addr': '127.0.0.1:0',
    },
    env: {},
  });
  const sockets: NetlinkSocket[] = [];
  const clock = { now: 1_000_000 };
  const network = new ClusterNetwork(
    config,
    silentLogger,
    {} as Nft,
    () => {
      const s = NetlinkSocket.open({ netns: ns.path });
      sockets.push(s);
      return s;
    },
    { now: () => clock.now, ...(openWatch ? { openWatch } : {}) },
  );
  cleanups.push(() => {
    network.close();
    for (const s of sockets) s.close();
  });
  const index = findLink(NetlinkSocket.open({ netns: ns.path }), ul)?.index;
  const underlay: Underlay = {
    name: ul,
    index: index!,
    mtu: 1500,
    addresses: ['198.18.0.2'],
    offload: { gsoMaxSize: LEGACY_OFFLOAD_SIZE, groMaxSize: LEGACY_OFFLOAD_SIZE },
  } as Underlay;
  const nodes = Array.from({ length: peers }, (_, i) => {
    const name = `peer-${i + 1}`;
    // The first few on the underlay's segment (host-gw needs them there), the rest anywhere.
    const underlayIp = peers <= 200 ? `198.18.0.${10 + i}` : `198.19.${Math.floor(i / 250)}.${(i % 250) + 1}`;
    const podCidr = peers <= 200 ? `10.245.${i + 1}.0/24` : `10.${200 + (i >> 8)}.${i & 255}.0/24`;
    const annotations: Record<string, string> = {
      'strand.dev/backend': backend,
      'strand.dev/underlay-ip': underlayIp,
    };
    if (backend === 'vxlan') annotations['strand.dev/vtep-mac'] = vtepMacFor(name);
    return {
      metadata: { name, annotations },
      spec: { podCIDR: podCidr, podCIDRs: [podCidr] },
      status: { addresses: [{ type: 'InternalIP', address: underlayIp }] },
    };
  });
  return {
    ns,
    network,
    underlay,
    nodes,
    device: `strand.${vni}`,
    clock,
    pass: (force = true) => network.reconcilePeers('me', underlay, ['10.244.0.0/24'], nodes, force),
  };
}

/** A veth pair beside the underlay, up (a pod's, say). */
function otherLink(n: Node): string {
  const other = testName('nz');
  ip(n.ns, 'link', 'add', other, 'type', 'veth', 'peer', 'name', testName('np'));
  ip(n.ns, 'link', 'set', other, 'up');
  return other;
}

const routes = (n: Node) =>
  ipJson<{ dst: string; protocol?: string }[]>(['route', 'show', 'table', 'main'], n.ns.name)
    .filter((r) => r.dst.startsWith('10.245.'))
    .map((r) => r.dst)
    .sort();

describe('ClusterNetwork drift watch (VXLAN)', () => {
  it('reads nothing back on a resync while nothing of Strand changed, its own writes and other links included', async () => {
    const n = await node('vxlan');
    const first = await n.pass();
    expect(first.reused).toBeUndefined();
    expect(first.report.added.length).toBe(3 * PEERS);
    expect(n.network.kernelDrifted()).toBe(false);
    const again = await n.pass();
    expect(again.reused).toBe(true);
    expect(again.report.unchanged).toBe(3 * PEERS);

    // Another link's routes, neighbours, addresses and state are not Strand's.
    const other = otherLink(n);
    ip(n.ns, 'addr', 'add', '10.99.0.1/24', 'dev', other);
    ip(n.ns, 'route', 'add', '10.98.0.0/24', 'dev', other);
    ip(n.ns, 'neigh', 'add', '10.99.0.7', 'lladdr', '02:00:00:00:00:07', 'dev', other);
    ip(n.ns, 'link', 'set', other, 'mtu', '1400');
    expect(n.network.kernelDrifted()).toBe(false);
    expect((await n.pass()).reused).toBe(true);
    expect(routes(n)).toEqual(['10.245.1.0/24', '10.245.2.0/24', '10.245.3.0/24']);
  });

  it('keeps up with the notifications of its own large pass: 9,000 entries written, no drift after', async () => {
    const n = await node('vxlan', undefined, 3_000);
    const first = await n.pass();
    expect(first.report.problems).toEqual([]);
    expect(first.report.added.length).toBe(9_000);
    expect(n.network.kernelDrifted()).toBe(false);
    expect((await n.pass()).reused).toBe(true);
  });

  it('sees each change made by hand to a route, neighbour, FDB entry or the device, and the next forced pass repairs it', async () => {
    const n = await node('vxlan');
    await n.pass();
    const vtep = (i: number) => `10.245.${i}.0`;
    const changes: [string, () => void][] = [
      ['route deleted', () => ip(n.ns, 'route', 'del', '10.245.1.0/24')],
      [
        'route changed',
        () =>
          ip(n.ns, 'route', 'replace', '10.245.2.0/24', 'via', '10.245.2.9', 'dev', n.device, 'onlink', 'proto', '83'),
      ],
      ['neighbour deleted', () => ip(n.ns, 'neigh', 'del', vtep(3), 'dev', n.device)],
      [
        'FDB entry deleted',
        () =>
          sh('bridge', ['-n', n.ns.name, 'fdb', 'del', vtepMacFor('peer-2'), 'dev', n.device, 'dst', '198.18.0.11']),
      ],
      ['device set down', () => ip(n.ns, 'link', 'set', n.device, 'down')],
      ['device deleted', () => ip(n.ns, 'link', 'del', n.device)],
    ];
    for (const [what, change] of changes) {
      expect(n.network.kernelDrifted(), `before: ${what}`).toBe(false);
      change();
      expect(n.network.kernelDrifted(), what).toBe(true);
      // Sticky until a pass reads the kernel.
      expect(n.network.kernelDrifted(), what).toBe(true);
      const repair = await n.pass();
      expect(repair.reused, what).toBeUndefined();
      expect(repair.report.problems, what).toEqual([]);
      expect(repair.report.added.length + repair.report.changed.length, what).toBeGreaterThan(0);
      expect(routes(n), what).toEqual(['10.245.1.0/24', '10.245.2.0/24', '10.245.3.0/24']);
      expect(n.network.kernelDrifted(), `after: ${what}`).toBe(false);
      expect((await n.pass()).reused, `after: ${what}`).toBe(true);
    }
  });

  it('sees its route replaced by one of another protocol, which it then reports and leaves alone', async () => {
    const n = await node('vxlan');
    await n.pass();
    ip(n.ns, 'route', 'replace', '10.245.2.0/24', 'dev', n.underlay.name);
    expect(n.network.kernelDrifted()).toBe(true);
    const after = await n.pass();
    expect(after.reused).toBeUndefined();
    expect(after.report.problems.map((p) => p.message).join()).toMatch(
      /10\.245\.2\.0\/24 exists but was not installed by Strand/,
    );
    // A pass that met problems is no clean pass: every forced one reads the kernel again.
    expect((await n.pass()).reused).toBeUndefined();
  });

  it('reads the kernel back once FULL_READ_MS passed, announced change or not', async () => {
    const n = await node('vxlan');
    await n.pass();
    n.clock.now += FULL_READ_MS - 1;
    expect((await n.pass()).reused).toBe(true);
    n.clock.now += 1;
    const full = await n.pass();
    expect(full.reused).toBeUndefined();
    expect(full.report.unchanged).toBe(3 * PEERS);
    // An event's pass (not forced) still stops at the unchanged inputs.
    n.clock.now += FULL_READ_MS;
    expect((await n.pass(false)).reused).toBe(true);
  });

  it('counts an overflowed notification queue as drift', async () => {
    const n = await node('vxlan', (path) => DriftWatch.open(path, 4096));
    await n.pass();
    expect((await n.pass()).reused).toBe(true);
    const other = otherLink(n);
    const batch = Array.from({ length: 200 }, (_, i) => `route add 10.97.${i}.0/24 dev ${other}`).join('\n');
    sh('ip', ['-n', n.ns.name, '-batch', '-'], { input: `${batch}\n` });
    expect(n.network.kernelDrifted()).toBe(true);
    const full = await n.pass();
    expect(full.reused).toBeUndefined();
    expect(full.report.unchanged).toBe(3 * PEERS);
    expect(n.network.kernelDrifted()).toBe(false);
  });

  it('reads the kernel on every resync where no watch can be had', async () => {
    const n = await node('vxlan', () => {
      throw new Error('no notifications here');
    });
    await n.pass();
    expect(n.network.kernelDrifted()).toBe(false);
    const again = await n.pass();
    expect(again.reused).toBeUndefined();
    expect(again.report.unchanged).toBe(3 * PEERS);
    expect((await n.pass(false)).reused).toBe(true);
  });
});

describe('ClusterNetwork drift watch (host-gw)', () => {
  it("sees a Strand route deleted or the underlay's address removed, not the underlay's other routes", async () => {
    const n = await node('host-gw');
    expect((await n.pass()).report.added.length).toBe(PEERS);
    expect((await n.pass()).reused).toBe(true);
    ip(n.ns, 'route', 'add', '10.96.0.0/24', 'via', '198.18.0.1', 'dev', n.underlay.name);
    expect(n.network.kernelDrifted()).toBe(false);
    ip(n.ns, 'route', 'del', '10.245.3.0/24');
    expect(n.network.kernelDrifted()).toBe(true);
    expect((await n.pass()).report.added.length).toBe(1);
    expect((await n.pass()).reused).toBe(true);
    // IPv4 drops the routes through an address that goes, with no notification of their own.
    ip(n.ns, 'addr', 'del', '198.18.0.2/24', 'dev', n.underlay.name);
    ip(n.ns, 'addr', 'add', '198.18.0.2/24', 'dev', n.underlay.name);
    expect(n.network.kernelDrifted()).toBe(true);
    expect((await n.pass()).report.added.length).toBe(PEERS);
    expect(routes(n)).toEqual(['10.245.1.0/24', '10.245.2.0/24', '10.245.3.0/24']);
  });
});
