// End to end on a simulated three-node cluster with the host-gw backend (test/kit/sim/): pods reach
// each other through plain routes via the peers' underlay addresses on the shared layer-2 segment.
// The tests run in order on one cluster; the last ones change it.
// The set-up waits for every Node to carry strand.dev/backend=host-gw and fails if they do not.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ANNOTATION_BACKEND,
  ANNOTATION_UNDERLAY_IP,
  startMeshCluster,
  describeNode,
  ipJson,
  meshFailures,
  OUTSIDE_IP,
  probeMesh,
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

let cluster: SimCluster;
let pods: SimPod[] = [];
let convergence: Error | undefined;

beforeAll(async () => {
  ({ cluster, pods, convergence } = await startMeshCluster({
    nodes: 3,
    backend: 'host-gw',
    underlayMtu: UNDERLAY_MTU,
  }));
}, 150_000);

afterAll(async () => {
  await cluster?.destroy();
});

function routesFor(on: SimNode, peer: SimNode) {
  return on.routes().filter((r) => r.dst === peer.podCidr);
}

describe('host-gw backend, 3 nodes × 2 pods', () => {
  it('holds exactly one route per peer, via the peer’s underlay address, and no VXLAN device', async () => {
    if (convergence) throw convergence;
    for (const n of cluster.nodes) {
      const a = await n.annotations();
      expect(a[ANNOTATION_BACKEND]).toBe('host-gw');
      expect(a[ANNOTATION_UNDERLAY_IP]).toBe(n.underlayIp);
      expect(n.link(cluster.vxlanDevice), `no ${cluster.vxlanDevice} on ${n.name}`).toBeUndefined();
      for (const m of cluster.nodes) {
        if (m === n) continue;
        const routes = routesFor(n, m);
        if (routes.length !== 1)
          throw new Error(
            `${n.name} has ${routes.length} routes to ${m.name}'s ${m.podCidr}\n${describeNode(cluster, n.name)}`,
          );
        expect(routes[0]).toMatchObject({ dst: m.podCidr, gateway: m.underlayIp, dev: 'eth0' });
      }
    }
    for (const p of pods) {
      const [eth0] = ipJson<{ mtu: number }[]>(p.netns, ['link', 'show', 'eth0']);
      expect(eth0?.mtu, `${p.name}'s eth0 MTU (no encapsulation)`).toBe(UNDERLAY_MTU);
    }
  });

  it('lets every pod reach every other pod (ICMP and TCP, both ways) with its own source address', async () => {
    const results = await probeMesh(pods);
    expect(results).toHaveLength(30);
    expect(meshFailures(results)).toEqual([]);
  });

  it('gives pods and the bridge the NIC’s BIG TCP sizes, and carries 20 MB across nodes both ways at them', async () => {
    const big = cluster.underlayOffload;
    expect(big).toBeGreaterThan(65536);
    for (const p of pods) {
      const [eth0] = ipJson<{ gso_max_size: number; gro_max_size: number }[]>(p.netns, ['-d', 'link', 'show', 'eth0']);
      expect(eth0, `${p.name}'s eth0`).toMatchObject({ gso_max_size: big, gro_max_size: big });
    }
    for (const n of cluster.nodes) {
      const links = ipJson<{ ifname: string; master?: string; gso_max_size: number }[]>(n.netns, [
        '-d',
        'link',
        'show',
      ]);
      const bridged = links.filter((l) => l.ifname === 'cni0' || l.master === 'cni0');
      expect(bridged.length, `${n.name}: cni0 and its ports`).toBeGreaterThan(1);
      expect(bridged.filter((l) => l.gso_max_size !== big)).toEqual([]);
    }
    const [a, b] = [pods.find((p) => p.node === cluster.node(1)), pods.find((p) => p.node === cluster.node(2))];
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
    for (const on of [cluster.node(1), cluster.node(2)]) {
      await waitFor(
        () => routesFor(on, moved).length === 1 && routesFor(on, moved)[0]?.gateway === newIp,
        15_000,
        `${on.name} to route via ${newIp}`,
      ).catch(() => {
        throw new Error(
          `${on.name} did not follow ${moved.name} to ${newIp}\n${describeNode(cluster, on.name)}\n${describeNode(cluster, moved.name)}`,
        );
      });
    }
    const from = pods.filter((p) => p.node !== moved);
    const to = pods.filter((p) => p.node === moved);
    for (const [a, b] of from.flatMap((x) => to.map((y) => [x, y] as const))) {
      expect(await tcpWhoami(a.netns, b.ip), `${a.name} → ${b.name}`).toBe(a.ip);
      expect(await tcpWhoami(b.netns, a.ip), `${b.name} → ${a.name}`).toBe(b.ip);
    }
  });

  it('drops a node deleted from the API on the other nodes', async () => {
    const deleted = cluster.node(3);
    await cluster.deleteNode(deleted);
    for (const on of [cluster.node(1), cluster.node(2)]) {
      await waitFor(
        () => routesFor(on, deleted).length === 0,
        15_000,
        `${on.name} to drop the route to ${deleted.podCidr}`,
      ).catch(() => {
        throw new Error(`${on.name} still routes ${deleted.podCidr}\n${describeNode(cluster, on.name)}`);
      });
      expect(routesFor(on, on === cluster.node(1) ? cluster.node(2) : cluster.node(1))).toHaveLength(1);
    }
  });

  it("ran every agent as the DaemonSet's ServiceAccount: refused nothing, and used every permission of the manifest's ClusterRole", async () => {
    expectLeastPrivilege(await cluster.api.leastPrivilege(), { notExercisedHere: POD_GET_RACE });
  });
});
