// Issue 16 item 1, end to end on a simulated three-node cluster, host-gw and VXLAN: a Node object
// whose pod CIDR is a /25 inside node-2's /24 (a buggy controller, a hand edit, a stale object) must
// not take node-2's pods away from the other nodes. Its name sorts before every real node's, as the
// one that broke node-2 did; it is refused because it is newer. Malformed Nodes alongside it stay
// harmless. Every pod pair is probed before and after; the conflict shows in `strand status` (naming
// both nodes), in the agent's log once, and in strand_pod_cidr_conflicts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statusReportSchema, type StatusReport } from '../../src/cli/status-report.ts';
import {
  ANNOTATION_BACKEND,
  ANNOTATION_UNDERLAY_IP,
  ANNOTATION_VTEP_MAC,
  describeNode,
  meshFailures,
  probeMesh,
  run,
  startMeshCluster,
  waitFor,
  type SimBackend,
  type SimCluster,
  type SimNode,
  type SimPod,
} from '../support/sim.ts';

const BAD = 'a-bad-node';

async function status(cluster: SimCluster, node: SimNode): Promise<StatusReport> {
  const args = [
    'netns',
    'exec',
    node.netns,
    cluster.strand,
    'status',
    '--state-dir',
    node.stateDir,
    '--cni-conf-dir',
    node.confDir,
    '--ipam-data-dir',
    node.ipamDir,
    '-o',
    'json',
  ];
  const r = await run('ip', args, { timeoutMs: 30_000 });
  return statusReportSchema().parse(JSON.parse(r.stdout));
}

for (const backend of ['host-gw', 'vxlan'] as const satisfies readonly SimBackend[]) {
  describe(`a Node whose pod CIDR overlaps node-2's, ${backend}`, () => {
    let cluster: SimCluster;
    let pods: SimPod[] = [];
    let convergence: Error | undefined;

    beforeAll(async () => {
      ({ cluster, pods, convergence } = await startMeshCluster({ nodes: 3, backend }));
    }, 150_000);

    afterAll(async () => {
      await cluster?.destroy();
    });

    it('every pod reaches every other before the bad Node', async () => {
      if (convergence) throw convergence;
      expect(meshFailures(await probeMesh(pods))).toEqual([]);
    });

    it('refuses the newer Node on every node, keeps node-2 reachable, and says so', async () => {
      const [n1, n2, n3] = cluster.nodes as [SimNode, SimNode, SimNode];
      const inside = n2.podCidr.replace('.0/24', '.0/25');
      // Well formed in every other respect: published annotations as an agent would, an address on
      // the segment, so that nothing but the overlap keeps it from being a peer.
      await cluster.api.create('nodes', {
        metadata: {
          name: BAD,
          annotations: {
            [ANNOTATION_BACKEND]: backend,
            [ANNOTATION_UNDERLAY_IP]: '198.18.0.99',
            [ANNOTATION_VTEP_MAC]: '0e:00:00:00:99:99',
          },
        },
        spec: { podCIDR: inside, podCIDRs: [inside] },
        status: { addresses: [{ type: 'InternalIP', address: '198.18.0.99' }] },
      });
      // Malformed neighbours in the same run stay harmless: no InternalIP; two IPv4 pod CIDRs.
      await cluster.api.create('nodes', { metadata: { name: 'b-no-address' }, spec: { podCIDR: '10.244.77.0/24' } });
      await cluster.api.create('nodes', {
        metadata: { name: 'c-two-v4' },
        spec: { podCIDRs: ['10.244.78.0/24', '10.244.79.0/24'] },
        status: { addresses: [{ type: 'InternalIP', address: '198.18.0.98' }] },
      });

      const expected = new Map<SimNode, string>([
        [n1, `node ${BAD}: pod CIDR ${inside} overlaps node ${n2.name}'s ${n2.podCidr}; no route`],
        [n2, `node ${BAD}: pod CIDR ${inside} overlaps this node's ${n2.podCidr}; no route`],
        [n3, `node ${BAD}: pod CIDR ${inside} overlaps node ${n2.name}'s ${n2.podCidr}; no route`],
      ]);
      const reports = new Map<SimNode, StatusReport>();
      for (const [n, message] of expected) {
        await waitFor(
          async () => {
            const report = await status(cluster, n);
            reports.set(n, report);
            return report.problems.some((p) => p.severity === 'problem' && p.message === message);
          },
          20_000,
          `${n.name}'s status to name the conflict`,
          500,
        ).catch(() => {
          const seen = reports.get(n)?.problems.map((p) => p.message);
          throw new Error(`${n.name}: no "${message}" in ${JSON.stringify(seen)}\n${describeNode(cluster, n.name)}`);
        });
      }

      // Routes: n1 and n3 keep their one route to node-2's /24 and have none to the /25.
      for (const on of [n1, n3]) {
        const routes = on.routes();
        expect(
          routes.filter((r) => r.dst === n2.podCidr),
          `${on.name}\n${describeNode(cluster, on.name)}`,
        ).toHaveLength(1);
        expect(
          routes.filter((r) => r.dst === inside),
          `${on.name}\n${describeNode(cluster, on.name)}`,
        ).toEqual([]);
      }
      expect(meshFailures(await probeMesh(pods))).toEqual([]);

      // Said once in the log (not on every pass), and counted.
      for (const n of [n1, n2, n3]) {
        const lines = n.logs().filter((l) => l.msg === expected.get(n));
        expect(lines, `${n.name}'s log`).toHaveLength(1);
        const metrics = await n.health('/metrics');
        expect(metrics.body).toMatch(/^strand_pod_cidr_conflicts 1$/m);
      }
    });

    it('every pod still reaches every other a while later (the periodic passes changed nothing)', async () => {
      await new Promise((r) => setTimeout(r, 3_000));
      expect(meshFailures(await probeMesh(pods))).toEqual([]);
      expect(
        cluster
          .node(1)
          .routes()
          .filter((r) => r.dst === cluster.node(2).podCidr),
      ).toHaveLength(1);
    });
  });
}
