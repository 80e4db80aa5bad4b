// The enforcement's pure pieces over a compiled table: single-port matches without anonymous sets,
// the rate-limited log before each deny, the counters read back per pod and per policy, and which
// local pods' flows a change may judge differently (those are the conntrack entries looked at).
import { describe, expect, it } from 'vitest';
import { changedPodAddresses } from '../../src/agent/policy-enforcer.ts';
import { readPolicyCounters } from '../../src/agent/policy-counters.ts';
import { emptyTableState } from '../../src/nft/objects.ts';
import { compactPortMatches, compactRule } from '../../src/policy/nft-compact.ts';
import { denyLogged, DENY_LOG_COMMENT } from '../../src/policy/deny-log.ts';
import { compilePolicy, DENY_COMMENT, renderPolicy, type CompileInput } from '../../src/policy/model.ts';
import type { NetworkPolicyInfo, PodInfo } from '../../src/agent/kube.ts';

const pod = (ns: string, name: string, ip: string, labels: Record<string, string>, nodeName = 'n1'): PodInfo => ({
  metadata: { name, namespace: ns, uid: `${ns}-${name}`, labels },
  spec: { nodeName, containers: [] },
  status: { phase: 'Running', podIPs: [{ ip }] },
});
const np = (ns: string, name: string, spec: Record<string, unknown>): NetworkPolicyInfo => ({ metadata: { name, namespace: ns }, spec });

function input(policies: NetworkPolicyInfo[], labelsB: Record<string, string> = { app: 'b' }): CompileInput {
  return {
    nodeName: 'n1',
    nodeAddresses: ['198.18.0.11'],
    namespaces: [{ metadata: { name: 'x', labels: { 'kubernetes.io/metadata.name': 'x' } } }],
    pods: [pod('x', 'a', '10.244.1.2', { app: 'a' }), pod('x', 'b', '10.244.2.2', labelsB, 'n2'), pod('x', 'c', '10.244.1.3', { app: 'c' })],
    policies,
  };
}

const allowB = np('x', 'allow-b', { podSelector: { matchLabels: { app: 'a' } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: 'b' } } }], ports: [{ port: 80 }] }] });

describe('enforcement over the rendered table', () => {
  it('writes a single port without an anonymous set and leaves several ports as they are', () => {
    expect(compactRule('ip saddr @s meta l4proto . th dport { tcp . 80 } counter accept')).toBe('ip saddr @s tcp dport 80 counter accept');
    expect(compactRule('meta l4proto . th dport { udp . 53-80 } counter accept')).toBe('udp dport 53-80 counter accept');
    expect(compactRule('meta l4proto . th dport { tcp . 80, udp . 81 } counter accept')).toBe('meta l4proto . th dport { tcp . 80, udp . 81 } counter accept');
    const table = compactPortMatches(renderPolicy(compilePolicy(input([allowB]))));
    const rules = [...table.chains.values()].flatMap((c) => c.rules.map((r) => r.rule));
    expect(rules.some((r) => r.includes('{'))).toBe(false);
    expect(rules.some((r) => r.includes('tcp dport 80 counter accept'))).toBe(true);
  });

  it('logs denied new connections, rate-limited, just before each deny rule of a pod chain', () => {
    const table = denyLogged(renderPolicy(compilePolicy(input([allowB]))));
    const owned = [...table.chains].filter(([name]) => table.chainOwners.has(name));
    expect(owned.length).toBe(1);
    const rules = owned[0]![1].rules;
    const deny = rules.findIndex((r) => r.comment === DENY_COMMENT);
    expect(rules[deny - 1]).toMatchObject({ comment: DENY_LOG_COMMENT, rule: 'ct state new limit rate 10/second burst 20 packets log prefix "strand-deny x/a ingress: " level info' });
    expect(rules.filter((r) => r.comment === DENY_LOG_COMMENT)).toHaveLength(1);
  });

  it('reads the rules’ counters back per pod and direction, and per policy', () => {
    const table = renderPolicy(compilePolicy(input([allowB])));
    const [chainName, chain] = [...table.chains].find(([name]) => table.chainOwners.has(name))!;
    const state = emptyTableState();
    state.exists = true;
    state.chains.set(chainName, {
      name: chainName,
      handle: 1,
      rules: chain.rules.map((r, i) => ({ chain: chainName, handle: i + 2, ...(r.comment ? { comment: r.comment } : {}), expr: [{ match: {} }, { counter: { packets: r.comment === DENY_COMMENT ? 7 : 3, bytes: 0 } }, { accept: null }] })),
    });
    const { pods, policies } = readPolicyCounters(state, table);
    expect(pods).toContainEqual({ namespace: 'x', name: 'a', direction: 'ingress', verdict: 'deny', packets: 7 });
    expect(pods.find((p) => p.verdict === 'allow')?.packets).toBeGreaterThanOrEqual(3);
    expect(policies).toEqual([{ namespace: 'x', name: 'allow-b', direction: 'ingress', packets: pods.find((p) => p.verdict === 'allow')!.packets }]);
  });

  it('names the local pods whose verdicts a change may alter: their policies, or their peers’ members', () => {
    const before = compilePolicy(input([allowB]));
    expect(changedPodAddresses(before, compilePolicy(input([allowB])))).toEqual(new Set());
    // x/b loses the label x/a's peer selects: x/a's peer set changes, so x/a's flows are looked at.
    expect(changedPodAddresses(before, compilePolicy(input([allowB], { app: 'other' })))).toEqual(new Set(['10.244.1.2']));
    // A new policy isolating x/c: x/c.
    const isolateC = np('x', 'deny-c', { podSelector: { matchLabels: { app: 'c' } }, policyTypes: ['Ingress'] });
    expect(changedPodAddresses(before, compilePolicy(input([allowB, isolateC])))).toEqual(new Set(['10.244.1.3']));
  });
});
