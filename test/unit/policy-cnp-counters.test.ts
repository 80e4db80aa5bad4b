// Counters per ClusterNetworkPolicy rule on /metrics (issue 19) include the rules an earlier rule
// always decides: the flat layout gives such a rule no chain and so no kernel counter, and the table
// lists its comment so that readPolicyCounters reports it at 0 instead of leaving it out.
import { describe, expect, it } from 'vitest';
import { readPolicyCounters } from '../../src/agent/policy-counters.ts';
import type { ClusterNetworkPolicyInfo } from '../../src/k8s/objects.ts';
import type { RuleCounter } from '../../src/nft/transport.ts';
import { flatRuleChainName } from '../../src/policy/clusternetworkpolicy/flat-render.ts';
import { compilePolicy, renderPolicy, type CompileInput } from '../../src/policy/index.ts';

function input(): CompileInput {
  const namespaces = ['a', 'b'].map((n) => ({ metadata: { name: n, labels: { 'kubernetes.io/metadata.name': n } } }));
  const pods = [0, 1].map((p) => ({
    metadata: { name: `p${p}`, namespace: p === 0 ? 'a' : 'b', labels: { app: 'x' } },
    spec: { nodeName: p === 0 ? 'n1' : 'n2', containers: [] },
    status: { phase: 'Running', podIPs: [{ ip: `10.244.${p + 1}.2` }] },
  }));
  const from = [{ namespaces: { matchLabels: { 'kubernetes.io/metadata.name': 'b' } } }];
  const clusterNetworkPolicies: ClusterNetworkPolicyInfo[] = [
    {
      metadata: { name: 'deny-b' },
      spec: {
        tier: 'Admin',
        priority: 1,
        subject: { namespaces: {} },
        ingress: [
          { name: 'deny-all-ports', action: 'Deny', from },
          // Shadowed: every packet it could match is decided by the rule above.
          { name: 'accept-web', action: 'Accept', from, protocols: [{ tcp: { destinationPort: { number: 80 } } }] },
        ],
      },
    },
    // Shadowed across policies: the same peer, a later priority.
    {
      metadata: { name: 'later' },
      spec: {
        tier: 'Admin',
        priority: 2,
        subject: { namespaces: {} },
        ingress: [{ name: 'pass-b', action: 'Pass', from }],
      },
    },
  ];
  return { nodeName: 'n1', nodeAddresses: ['198.18.0.11'], namespaces, pods, policies: [], clusterNetworkPolicies };
}

describe('counters of ClusterNetworkPolicy rules', () => {
  const table = renderPolicy(compilePolicy(input()));
  const ref = (name: string, index: number, ruleName: string) =>
    ({ namespace: '', name, direction: 'ingress', index, ruleName }) as const;

  it('gives the shadowed rules no chain of their own', () => {
    expect(table.chains.has(flatRuleChainName(ref('deny-b', 0, 'deny-all-ports')))).toBe(true);
    expect(table.chains.has(flatRuleChainName(ref('deny-b', 1, 'accept-web')))).toBe(false);
    expect(table.chains.has(flatRuleChainName(ref('later', 0, 'pass-b')))).toBe(false);
  });

  it('reports every rule of the node pods, the shadowed ones at 0, the deciding one with its packets', () => {
    const chain = flatRuleChainName(ref('deny-b', 0, 'deny-all-ports'));
    const counted = table.chains.get(chain)?.rules.find((r) => r.comment !== undefined);
    expect(counted?.comment).toBeDefined();
    const counters: RuleCounter[] = [{ chain, handle: 4, comment: counted?.comment, packets: 7, bytes: 420 }];
    const { clusterRules } = readPolicyCounters(counters, table);
    const byRule = new Map(clusterRules.map((c) => [`${c.policy} ${c.rule}`, c]));
    expect(byRule.get('deny-b deny-all-ports')).toMatchObject({ tier: 'admin', action: 'drop', packets: 7 });
    expect(byRule.get('deny-b accept-web')).toMatchObject({ tier: 'admin', action: 'accept', packets: 0 });
    expect(byRule.get('later pass-b')).toMatchObject({ tier: 'admin', action: 'pass', packets: 0 });
    expect(clusterRules).toHaveLength(3);
  });
});
