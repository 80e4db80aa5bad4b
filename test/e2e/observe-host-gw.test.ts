// `strand status` on a simulated host-gw cluster (routes via the peers' underlay addresses, no VXLAN
// device): healthy, a peer's route changed by hand to another gateway, MTU trouble after the
// underlay's MTU was lowered under running pods, and the peers read from the kernel alone while the
// agent is stopped. Each JSON answer is checked against the report's schema.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statusReportSchema, type StatusReport } from '../../src/cli/status-report.ts';
import { describeNode, run, startMeshCluster, waitFor, type SimCluster, type SimNode } from '../support/sim.ts';

let cluster: SimCluster;
let convergence: Error | undefined;

beforeAll(async () => {
  ({ cluster, convergence } = await startMeshCluster({ nodes: 3, backend: 'host-gw' }));
}, 150_000);

afterAll(async () => {
  await cluster?.destroy();
});

async function status(node: SimNode): Promise<{ code: number; report: StatusReport }> {
  const r = await run(
    'ip',
    [
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
    ],
    { timeoutMs: 30_000 },
  );
  return { code: r.code, report: statusReportSchema().parse(JSON.parse(r.stdout)) };
}

const problems = (r: StatusReport) => r.problems.filter((p) => p.severity === 'problem').map((p) => p.message);

describe('strand status, host-gw', () => {
  it('healthy: each peer has its one route via the peer’s underlay address, and nothing else is asked for', async () => {
    if (convergence) throw convergence;
    for (const n of cluster.nodes) {
      const { code, report } = await status(n);
      expect(problems(report), `${n.name}\n${describeNode(cluster, n.name)}`).toEqual([]);
      expect(code).toBe(0);
      expect(report.node).toMatchObject({ backend: 'host-gw', podMtu: 1500 });
      expect(report.node.vxlanDevice).toBeUndefined();
      for (const m of cluster.nodes.filter((x) => x !== n)) {
        expect(report.peers.find((p) => p.name === m.name)).toMatchObject({
          ok: true,
          entries: [{ object: 'route', detail: `${m.podCidr} via ${m.underlayIp} dev eth0`, state: 'ok' }],
        });
      }
    }
  });

  it('a route changed by hand to another gateway differs from what the agent wants', async () => {
    const [n1, n2, n3] = cluster.nodes as [SimNode, SimNode, SimNode];
    // The agent's periodic pass may put it right between the change and the look: change it again then.
    let seen: { code: number; report: StatusReport } | undefined;
    for (let i = 0; i < 3 && seen?.code !== 1; i++) {
      n1.exec('ip', ['route', 'replace', n2.podCidr, 'via', n3.underlayIp, 'dev', 'eth0', 'proto', '83']);
      seen = await status(n1);
    }
    const { code, report } = seen!;
    expect(code).toBe(1);
    expect(report.peers.find((p) => p.name === n2.name)?.entries).toEqual([
      { object: 'route', detail: `${n2.podCidr} via ${n2.underlayIp} dev eth0`, state: 'differs' },
    ]);
    expect(problems(report)).toContain(
      `node ${n2.name}: route ${n2.podCidr} via ${n2.underlayIp} dev eth0 differs in the kernel`,
    );
    n1.exec('ip', ['route', 'replace', n2.podCidr, 'via', n2.underlayIp, 'dev', 'eth0', 'proto', '83']);
    expect((await status(n1)).code).toBe(0);
  });

  it('MTU trouble: the underlay MTU lowered under running pods names the pods’ interfaces that are now too big', async () => {
    const n3 = cluster.nodes[2] as SimNode;
    n3.exec('ip', ['link', 'set', 'eth0', 'mtu', '1400']);
    try {
      // The agent sees the underlay change within seconds and writes the new pod MTU.
      await waitFor(
        async () => (await status(n3)).report.node.podMtu === 1400,
        15_000,
        'the node state to take MTU 1400',
        200,
      );
      const { code, report } = await status(n3);
      expect(code).toBe(1);
      const p = report.problems.find((x) => x.message.includes('an MTU above 1400'));
      expect(p?.message).toMatch(
        /^2 pod interfaces have an MTU above 1400, what the underlay carries now \(veth[0-9a-f]{11} 1500, veth[0-9a-f]{11} 1500\)/,
      );
      expect(p?.see).toContain('ip link show master cni0');
    } finally {
      n3.exec('ip', ['link', 'set', 'eth0', 'mtu', '1500']);
    }
    await waitFor(async () => (await status(n3)).code === 0, 15_000, 'status healthy again after the MTU is back', 200);
  });

  it('with the agent stopped, the peers come from the kernel’s routes', async () => {
    const n2 = cluster.nodes[1] as SimNode;
    await n2.stopAgent();
    const { code, report } = await status(n2);
    expect(code).toBe(1);
    expect(report.agent.running).toBe(false);
    const want = cluster.nodes
      .filter((m) => m !== n2)
      .map((m) => ({ podCIDRs: [m.podCidr], underlayIps: [m.underlayIp], source: 'kernel', ok: true }));
    expect(
      report.peers.map(({ podCIDRs, underlayIps, source, ok }) => ({ podCIDRs, underlayIps, source, ok })),
    ).toEqual(want);
  });
});
