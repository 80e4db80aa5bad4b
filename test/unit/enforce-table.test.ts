// The enforcement's pure pieces over a compiled table: the counters read back per pod and per policy
// (the log rule's counter is neither), and which local pods' flows a change may judge differently
// (those are the conntrack entries looked at).
import { describe, expect, it } from 'vitest';
import { changedPodAddresses } from '../../src/agent/policy/flow-cutter.ts';
import { readPolicyCounters } from '../../src/agent/policy-counters.ts';
import { compilePolicy, DENY_COMMENT, LOG_COMMENT, renderPolicy, type CompileInput } from '../../src/policy/index.ts';
import type { NetworkPolicyInfo, PodInfo } from '../../src/k8s/objects.ts';

const pod = (ns: string, name: string, ip: string, labels: Record<string, string>, nodeName = 'n1'): PodInfo => ({
  metadata: { name, namespace: ns, uid: `${ns}-${name}`, labels },
  spec: { nodeName, containers: [] },
  status: { phase: 'Running', podIPs: [{ ip }] },
});
const np = (ns: string, name: string, spec: Record<string, unknown>): NetworkPolicyInfo => ({
  metadata: { name, namespace: ns },
  spec,
});

function input(policies: NetworkPolicyInfo[], labelsB: Record<string, string> = { app: 'b' }): CompileInput {
  return {
    nodeName: 'n1',
    nodeAddresses: ['198.18.0.11'],
    namespaces: [{ metadata: { name: 'x', labels: { 'kubernetes.io/metadata.name': 'x' } } }],
    pods: [
      pod('x', 'a', '10.244.1.2', { app: 'a' }),
      pod('x', 'b', '10.244.2.2', labelsB, 'n2'),
      pod('x', 'c', '10.244.1.3', { app: 'c' }),
    ],
    policies,
  };
}

const allowB = np('x', 'allow-b', {
  podSelector: { matchLabels: { app: 'a' } },
  ingress: [{ from: [{ podSelector: { matchLabels: { app: 'b' } } }], ports: [{ port: 80 }] }],
});

describe('enforcement over the rendered table', () => {
  it('reads the rules’ counters back per pod and direction, and per policy', () => {
    const table = renderPolicy(compilePolicy(input([allowB])), { logDenied: { perSecond: 10 } });
    expect([...table.chains.values()].some((c) => c.rules.some((r) => r.comment === LOG_COMMENT))).toBe(true);
    const [chainName, chain] = [...table.chains].find(([name]) => table.chainOwners.has(name))!;
    const counters = chain.rules.map((r, i) => ({
      chain: chainName,
      handle: i + 2,
      ...(r.comment ? { comment: r.comment } : {}),
      packets: r.comment === DENY_COMMENT ? 7 : 3,
      bytes: 0,
    }));
    const { pods, policies } = readPolicyCounters(counters, table);
    expect(pods).toContainEqual({ namespace: 'x', name: 'a', direction: 'ingress', verdict: 'deny', packets: 7 });
    expect(pods.find((p) => p.verdict === 'allow')?.packets).toBeGreaterThanOrEqual(3);
    expect(policies).toEqual([
      {
        namespace: 'x',
        name: 'allow-b',
        direction: 'ingress',
        packets: pods.find((p) => p.verdict === 'allow')!.packets,
      },
    ]);
  });

  it('names the local pods whose verdicts a change may alter: their policies, or their peers’ members', () => {
    const before = compilePolicy(input([allowB]));
    expect(changedPodAddresses(before, compilePolicy(input([allowB])))).toEqual(new Set());
    // x/b loses the label x/a's peer selects: x/a's peer set changes, so x/a's flows are looked at.
    expect(changedPodAddresses(before, compilePolicy(input([allowB], { app: 'other' })))).toEqual(
      new Set(['10.244.1.2']),
    );
    // A new policy isolating x/c: x/c.
    const isolateC = np('x', 'deny-c', { podSelector: { matchLabels: { app: 'c' } }, policyTypes: ['Ingress'] });
    expect(changedPodAddresses(before, compilePolicy(input([allowB, isolateC])))).toEqual(new Set(['10.244.1.3']));
  });
});
