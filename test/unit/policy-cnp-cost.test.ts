// Issue 19's packet cost: "a connection's first packet must not walk a list of every CNP rule". With
// many ClusterNetworkPolicies that all select a pod, its Admin ingress chain today holds every one of
// their ingress rules, tried in order (bench/policy.mjs section 7 measures the connection rate it
// costs). The flat layout (clusternetworkpolicy/flat-render.ts) makes that walk a few lookups: the
// pod's chain holds its self rule and one address-map lookup per family.
import { describe, expect, it } from 'vitest';
import type { ClusterNetworkPolicyInfo } from '../../src/k8s/objects.ts';
import { clusterChainName, compilePolicy, renderPolicy, type CompileInput } from '../../src/policy/index.ts';

const POLICIES = 100;
const RULES = 25;

function input(): CompileInput {
  const namespaces = Array.from({ length: 20 }, (_, n) => ({
    metadata: { name: `ns-${n}`, labels: { 'kubernetes.io/metadata.name': `ns-${n}`, team: `team-${n}` } },
  }));
  const pods = Array.from({ length: 40 }, (_, p) => ({
    metadata: { name: `p${p}`, namespace: `ns-${p % 20}`, labels: { app: `app-${p % 10}` } },
    spec: { nodeName: p === 0 ? 'n1' : 'n2', containers: [] },
    status: { phase: 'Running', podIPs: [{ ip: `10.244.${p === 0 ? 1 : 2}.${p + 2}` }] },
  }));
  const clusterNetworkPolicies: ClusterNetworkPolicyInfo[] = Array.from({ length: POLICIES }, (_, i) => ({
    metadata: { name: `cnp-${i}` },
    spec: {
      tier: 'Admin',
      priority: i,
      subject: { namespaces: {} },
      ingress: Array.from({ length: RULES }, (_, j) => ({
        name: `r${j}`,
        action: j % 2 === 0 ? 'Pass' : 'Deny',
        from: [{ namespaces: { matchLabels: { team: `team-${1 + ((i + j) % 19)}` } } }],
        protocols: [{ tcp: { destinationPort: { range: { start: 1000 + j, end: 2000 + j } } } }],
      })),
    },
  }));
  return { nodeName: 'n1', nodeAddresses: ['198.18.0.11'], namespaces, pods, policies: [], clusterNetworkPolicies };
}

describe('the first packet and many ClusterNetworkPolicies', () => {
  it(`a pod selected by ${POLICIES} Admin CNPs of ${RULES} ingress rules each: its Admin ingress chain does not list every rule`, () => {
    const table = renderPolicy(compilePolicy(input()));
    const chain = table.chains.get(clusterChainName('admin', { namespace: 'ns-0', name: 'p0' }, 'ingress'));
    expect(chain, 'the pod has an Admin ingress chain').toBeDefined();
    // Flat: bounded by something other than the number of rules (a lookup per tier, a few rules).
    expect(chain!.rules.length).toBeLessThan(POLICIES);
  });
});
