// End to end on a simulated three-node cluster with the VXLAN backend (test/kit/sim/): three node
// namespaces on one underlay bridge, each running `strand agent` against the test API server, two
// pods per node wired by dist/strand as a runtime wires them. The tests run in order on one cluster;
// the later ones change it (an underlay address moves, an agent is killed, nodes are deleted).
// The set-up waits for every Node to carry strand.dev/backend=vxlan (the agents run the backend and
// published their VTEPs) and fails, naming what the Nodes carry, if they do not.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ANNOTATION_BACKEND,
  ANNOTATION_UNDERLAY_IP,
  ANNOTATION_VTEP_MAC,
  startMeshCluster,
  describeNode,
  ipJson,
  meshFailures,
  OUTSIDE_IP,
  probeMesh,
  run,
  tcpTransfer,
  tcpWhoami,
  waitFor,
  waitForMasquerade,
  type SimCluster,
  type SimNode,
  type SimPod,
} from '../support/sim.ts';
import { expectLeastPrivilege, POD_GET_RACE } from '../support/least-privilege.ts';

const UNDERLAY_MTU = 1500;
const POD_MTU = UNDERLAY_MTU - 50;

let cluster: SimCluster;
let pods: SimPod[] = [];
let convergence: Error | undefined;
/** VTEP MACs as published before anything was changed, by node name. */
const macs = new Map<string, string>();

beforeAll(async () => {
  ({ cluster, pods, convergence } = await startMeshCluster({ nodes: 3, backend: 'vxlan', underlayMtu: UNDERLAY_MTU }));
  for (const n of cluster.nodes) macs.set(n.name, (await n.annotations())[ANNOTATION_VTEP_MAC] ?? '');
}, 150_000);

afterAll(async () => {
  await cluster?.destroy();
});

function podsOn(...nodes: SimNode[]): SimPod[] {
  return pods.filter((p) => nodes.includes(p.node));
}

/** Entries `on` holds for `peer`, with the peer's MAC as first published and its current address. */
function entries(on: SimNode, peer: SimNode) {
  return on.entriesFor({
    podCidr: peer.podCidr,
    vtepIp: peer.vtepIp,
    vtepMac: macs.get(peer.name),
    underlayIps: [peer.underlayIp],
  });
}

function expectOneSet(on: SimNode, peer: SimNode): void {
  const e = entries(on, peer);
  const mac = macs.get(peer.name);
  try {
    expect(e.routes, 'routes').toHaveLength(1);
    expect(e.routes[0], 'route').toMatchObject({ dst: peer.podCidr, gateway: peer.vtepIp, dev: cluster.vxlanDevice });
    expect(e.neighbours, 'neighbours').toHaveLength(1);
    expect(e.neighbours[0], 'neighbour').toMatchObject({ dst: peer.vtepIp, lladdr: mac });
    expect(e.neighbours[0]?.state, 'neighbour state').toContain('PERMANENT');
    expect(e.fdb, 'FDB entries').toHaveLength(1);
    expect(e.fdb[0], 'FDB entry').toMatchObject({ mac, dst: peer.underlayIp });
  } catch (err) {
    throw new Error(
      `${on.name}'s entries for ${peer.name}: ${(err as Error).message}\n${describeNode(cluster, on.name)}`,
    );
  }
}

async function expectGone(on: SimNode, peer: SimNode, timeoutMs = 15_000): Promise<void> {
  const left = () => {
    const e = entries(on, peer);
    return e.routes.length + e.neighbours.length + e.fdb.length;
  };
  await waitFor(() => left() === 0, timeoutMs, `${on.name} to drop ${peer.name}'s entries`).catch(() => {
    throw new Error(
      `${on.name} still holds entries for ${peer.name}: ${JSON.stringify(entries(on, peer))}\n${describeNode(cluster, on.name)}`,
    );
  });
}

async function expectConnected(from: SimPod[], to: SimPod[]): Promise<void> {
  const pairs = from.flatMap((a) => to.filter((b) => b !== a).map((b) => [a, b] as const));
  const failures: string[] = [];
  for (const [a, b] of pairs) {
    const seen = await tcpWhoami(a.netns, b.ip);
    if (seen !== a.ip)
      failures.push(`${a.name} (${a.node.name}) → ${b.name} (${b.node.name}): seen as ${seen ?? 'no connection'}`);
  }
  expect(failures).toEqual([]);
}

describe('VXLAN backend, 3 nodes × 2 pods', () => {
  it('publishes each node’s VTEP and holds exactly one route, neighbour and FDB entry per peer', async () => {
    if (convergence) throw convergence;
    for (const n of cluster.nodes) {
      const a = await n.annotations();
      const dev = n.link(cluster.vxlanDevice);
      expect(dev, `${cluster.vxlanDevice} on ${n.name}`).toBeDefined();
      expect(a[ANNOTATION_BACKEND]).toBe('vxlan');
      expect(a[ANNOTATION_UNDERLAY_IP]).toBe(n.underlayIp);
      expect(a[ANNOTATION_VTEP_MAC]).toBe(dev?.address);
      expect(dev?.mtu).toBe(POD_MTU);
      for (const m of cluster.nodes) if (m !== n) expectOneSet(n, m);
    }
    for (const p of pods) {
      const [eth0] = ipJson<{ mtu: number }[]>(p.netns, ['link', 'show', 'eth0']);
      expect(eth0?.mtu, `${p.name}'s eth0 MTU`).toBe(POD_MTU);
    }
  });

  it('lets every pod reach every other pod (ICMP and TCP, both ways) with its own source address', async () => {
    const results = await probeMesh(pods);
    expect(results).toHaveLength(30);
    expect(meshFailures(results)).toEqual([]);
  });

  it('carries full-size packets and a 20 MB TCP transfer across nodes (the MTU is right, nothing is black-holed)', async () => {
    const [a] = podsOn(cluster.node(1));
    const [b] = podsOn(cluster.node(2));
    // The largest packet the pod MTU allows, with DF: it must fit the tunnel without fragmentation.
    const df = await run('ip', [
      'netns',
      'exec',
      a!.netns,
      'ping',
      '-n',
      '-c',
      '1',
      '-W',
      '2',
      '-M',
      'do',
      '-s',
      String(POD_MTU - 28),
      b!.ip,
    ]);
    expect(df.code, df.stdout + df.stderr).toBe(0);
    // The simulated NICs take BIG TCP packets, but a tunnel cannot: the pods keep 64 KiB.
    expect(cluster.underlayOffload).toBeGreaterThan(65536);
    for (const p of pods) {
      const [eth0] = ipJson<{ gso_max_size: number }[]>(p.netns, ['-d', 'link', 'show', 'eth0']);
      expect(eth0?.gso_max_size, `${p.name}'s eth0`).toBe(65536);
    }
    const bytes = 20 * 1024 * 1024;
    const there = await tcpTransfer(a!.netns, b!.ip, bytes);
    expect(there, there.error).toMatchObject({ ok: true, received: bytes, seenAs: a!.ip });
    const back = await tcpTransfer(b!.netns, a!.ip, bytes);
    expect(back, back.error).toMatchObject({ ok: true, received: bytes, seenAs: b!.ip });
  });

  it('masquerades pod traffic to the outside to the node’s address', async () => {
    await waitForMasquerade(cluster);
    const seen = await Promise.all(
      pods.map(async (p) => ({ pod: p.name, node: p.node.underlayIp, seenAs: await tcpWhoami(p.netns, OUTSIDE_IP) })),
    );
    expect(seen.filter((s) => s.seenAs !== s.node)).toEqual([]);
  });

  it('follows a node’s new underlay address on its peers', async () => {
    const moved = cluster.node(3);
    const newIp = '198.18.0.113';
    await moved.setUnderlayIp(newIp);
    await waitFor(
      async () => (await moved.annotations())[ANNOTATION_UNDERLAY_IP] === newIp,
      15_000,
      `${moved.name} to publish ${newIp}`,
    ).catch(() => {
      throw new Error(`${moved.name} did not publish its new underlay address\n${describeNode(cluster, moved.name)}`);
    });
    for (const on of [cluster.node(1), cluster.node(2)]) {
      await waitFor(
        () => entries(on, moved).fdb.every((f) => f.dst === newIp) && entries(on, moved).fdb.length === 1,
        15_000,
        `${on.name}'s FDB to follow`,
      ).catch(() => {
        throw new Error(`${on.name} did not follow ${moved.name} to ${newIp}\n${describeNode(cluster, on.name)}`);
      });
      expectOneSet(on, moved);
    }
    await expectConnected(podsOn(cluster.node(1), cluster.node(2)).slice(0, 2), podsOn(moved));
    await expectConnected(podsOn(moved), podsOn(cluster.node(1), cluster.node(2)));
  });

  it('cleans up after a node deleted while an agent was down, when it restarts (nothing duplicated, same VTEP MAC)', async () => {
    const restarted = cluster.node(1);
    const survivor = cluster.node(2);
    const deleted = cluster.node(3);
    const macBefore = restarted.link(cluster.vxlanDevice)?.address;
    await restarted.stopAgent('SIGKILL');
    await cluster.deleteNode(deleted);
    // The live agent on node 2 drops node 3 at once; node 1's kernel keeps them while its agent is down.
    await expectGone(survivor, deleted);
    expect(entries(restarted, deleted).routes).toHaveLength(1);

    restarted.startAgent();
    await cluster.waitReady();
    await expectGone(restarted, deleted);
    expectOneSet(restarted, survivor);
    expect(restarted.link(cluster.vxlanDevice)?.address).toBe(macBefore);
    expect((await restarted.annotations())[ANNOTATION_VTEP_MAC]).toBe(macBefore);
    await expectConnected(podsOn(restarted), podsOn(survivor));
    await expectConnected(podsOn(survivor), podsOn(restarted));
  });

  it('drops a node deleted from the API on the other nodes', async () => {
    await cluster.deleteNode(cluster.node(2));
    await expectGone(cluster.node(1), cluster.node(2));
    // Nothing of Strand's is left on node 1: it has no peers.
    const strandRoutes = cluster
      .node(1)
      .routes()
      .filter((r) => r.dev === cluster.vxlanDevice);
    expect(strandRoutes).toEqual([]);
    expect(cluster.node(1).fdb()).toEqual([]);
  });

  it('reaches a node that joins (again): its agent republishes and the others add it', async () => {
    // Node 3 was deleted two tests ago while its agent kept running; it registers again.
    const joined = cluster.node(3);
    await cluster.restoreNode(joined);
    await waitFor(
      async () => (await joined.annotations())[ANNOTATION_VTEP_MAC] === macs.get(joined.name),
      15_000,
      `${joined.name} to publish its VTEP again`,
    ).catch(() => {
      throw new Error(`${joined.name} did not publish its annotations again\n${describeNode(cluster, joined.name)}`);
    });
    await waitFor(
      () => entries(cluster.node(1), joined).fdb.length === 1,
      15_000,
      `node-1 to add ${joined.name}`,
    ).catch(() => {
      throw new Error(`node-1 did not add ${joined.name}\n${describeNode(cluster, 'node-1')}`);
    });
    expectOneSet(cluster.node(1), joined);
    await expectConnected(podsOn(cluster.node(1)), podsOn(joined));
    await expectConnected(podsOn(joined), podsOn(cluster.node(1)));
  });

  it("ran every agent as the DaemonSet's ServiceAccount: refused nothing, and used every permission of the manifest's ClusterRole", async () => {
    expectLeastPrivilege(await cluster.api.leastPrivilege(), { notExercisedHere: POD_GET_RACE });
  });
});
