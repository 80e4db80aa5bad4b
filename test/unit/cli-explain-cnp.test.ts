// `strand explain` with ClusterNetworkPolicies (issue 19): the deciding tier, policy, priority and
// rule, a Pass chain down to the NetworkPolicy rule that allowed, and with --kernel the rule in the
// tier's chain with its counter (checked against a table the fake nft holds).
import { describe, expect, it } from 'vitest';
import { explain, type ExplainContext } from '../../src/agent/explain.ts';
import { explainPolicy, type PolicyCaches } from '../../src/agent/explain-policy.ts';
import { checkNft } from '../../src/cli/explain-kernel.ts';
import { explainAnswerSchema, formatExplain } from '../../src/cli/explain.ts';
import type { NodeInfo, PodInfo } from '../../src/k8s/objects.ts';
import { emptyTableState } from '../../src/nft/objects.ts';
import { FakeNft } from '../../src/nft/fake.ts';
import { compilePolicy, fullBuildPolicy, renderPolicy } from '../../src/policy/index.ts';

function node(i: number): NodeInfo {
  return {
    metadata: {
      name: `node-${i}`,
      annotations: { 'strand.dev/backend': 'vxlan', 'strand.dev/underlay-ip': `198.18.0.${10 + i}` },
    },
    spec: { podCIDRs: [`10.244.${i}.0/24`] },
    status: { addresses: [{ type: 'InternalIP', address: `198.18.0.${10 + i}` }], conditions: [] },
  };
}
const pod = (name: string, i: number, ip: string): PodInfo => ({
  metadata: { name, namespace: 'x', labels: { app: name } },
  spec: { nodeName: `node-${i}`, containers: [] },
  status: { phase: 'Running', podIPs: [{ ip }] },
});
const nodes = [node(1), node(2)];
const pods = [pod('a', 1, '10.244.1.2'), pod('c', 1, '10.244.1.3')];
const caches: PolicyCaches = {
  nodes,
  pods,
  namespaces: [{ metadata: { name: 'x', labels: { 'kubernetes.io/metadata.name': 'x' } } }],
  policies: [
    {
      metadata: { name: 'np', namespace: 'x' },
      spec: {
        podSelector: { matchLabels: { app: 'c' } },
        ingress: [
          { from: [{ podSelector: { matchLabels: { app: 'zzz' } } }] },
          { from: [{ podSelector: { matchLabels: { app: 'a' } } }] },
        ],
      },
    },
  ],
  clusterNetworkPolicies: [
    {
      metadata: { name: 'deny-metadata' },
      spec: {
        tier: 'Admin',
        priority: 1,
        subject: { namespaces: {} },
        egress: [{ name: 'deny-imds', action: 'Deny', to: [{ networks: ['169.254.169.254/32'] }] }],
      },
    },
    {
      metadata: { name: 'pass-x' },
      spec: {
        tier: 'Admin',
        priority: 10,
        subject: { namespaces: {} },
        ingress: [{ name: 'to-np', action: 'Pass', from: [{ namespaces: {} }] }],
      },
    },
  ],
};
const config = {
  nodeName: 'node-1',
  backend: 'vxlan' as const,
  vni: 1,
  directRouting: false,
  bridge: 'cni0',
  clusterCIDRs: ['10.244.0.0/16'],
};
const ctx: ExplainContext = {
  config,
  nodes,
  pods,
  underlayPrefixes: ['198.18.0.0/24'],
  underlayIface: 'eth0',
  policy: (p, s, d) => explainPolicy(caches, p, s, d, true),
};
const report = (answer: Awaited<ReturnType<typeof explain>>) => ({
  kind: 'StrandExplain' as const,
  v: 1 as const,
  answer,
  mismatches: [],
  verdict: answer.allowed ? ('allowed' as const) : ('denied' as const),
});

async function kernelTable() {
  const own = { nodeName: 'node-1', nodeAddresses: ['198.18.0.11'], ...caches };
  const nft = new FakeNft();
  await nft.run(fullBuildPolicy(renderPolicy(compilePolicy(own)), emptyTableState()));
  return nft.list();
}

describe('explain with ClusterNetworkPolicies', () => {
  it('names the deciding Admin rule with its priority, and --kernel finds it in its rule chain', async () => {
    const a = await explain(ctx, { src: 'x/a', dst: '169.254.169.254', port: 80 });
    expect(explainAnswerSchema().parse(JSON.parse(JSON.stringify(a)))).toEqual(a);
    expect(a.allowed).toBe(false);
    const text = formatExplain(report(a));
    expect(text).toContain(
      'egress of the source: DENIED: Admin cnp/deny-metadata egress[0] "deny-imds" Deny (priority 1)',
    );
    const nft = checkNft(await kernelTable(), a);
    expect(nft.directions[0]).toMatchObject({
      direction: 'egress',
      matches: true,
      rules: [{ comment: 'cnp/deny-metadata egress 0 deny-imds' }],
    });
    // The flat layout: the rule's own chain (shared by its pods), reached from the pod's Admin chain.
    expect(nft.directions[0]?.rules[0]?.chain).toMatch(/^agent-pol-cr-/);
    expect(nft.directions[0]?.implementedBy).toMatch(/from agent-pol-aout-/);
  });

  it('follows a Pass chain: Admin Pass, then the NetworkPolicy rule that allowed', async () => {
    const a = await explain(ctx, { src: 'x/a', dst: 'x/c', port: 80 });
    expect(a.allowed).toBe(true);
    expect(formatExplain(report(a))).toContain(
      'ingress of the destination: allowed: Admin cnp/pass-x ingress[0] "to-np" Pass (priority 10) → NetworkPolicy: allowed by x/np spec.ingress[1]',
    );
    const nft = checkNft(await kernelTable(), a);
    const ingress = nft.directions.find((d) => d.direction === 'ingress');
    expect(ingress).toMatchObject({ matches: true, rules: [{ comment: 'x/np ingress 1' }] });
  });
});
