// A policy change's work follows the pods it selects (src/policy/incremental/compiler.ts `kept`,
// clusternetworkpolicy/compile.ts's deltas): the other pods of the namespace (for a NetworkPolicy) or
// of the node (for a ClusterNetworkPolicy) keep their LocalPod object, so the render and the diff
// pass over them by identity; and the result still equals the pure compile.
import { describe, expect, it } from 'vitest';
import { IncrementalCompiler } from '../../src/policy/incremental/compiler.ts';
import {
  compilePolicy,
  type ClusterNetworkPolicyObject,
  type CompiledPolicy,
  type CompileInput,
  type NetworkPolicyObject,
  type PolicyPod,
} from '../../src/policy/index.ts';

const pod = (name: string, app: string, ip: string): PolicyPod => ({
  metadata: { name, namespace: 'a', labels: { app } },
  spec: { nodeName: 'n1', containers: [] },
  status: { phase: 'Running', podIPs: [{ ip }] },
});
const pods = [pod('web-1', 'web', '10.0.0.2'), pod('db-1', 'db', '10.0.0.3'), pod('cache-1', 'cache', '10.0.0.4')];
const np = (name: string, app: string): NetworkPolicyObject => ({
  metadata: { name, namespace: 'a' },
  spec: {
    podSelector: { matchLabels: { app } },
    ingress: [{ from: [{ podSelector: { matchLabels: { app: 'web' } } }] }],
  },
});
const cnp = (name: string, priority: number, app: string): ClusterNetworkPolicyObject => ({
  metadata: { name },
  spec: {
    tier: 'Admin',
    priority,
    subject: { pods: { namespaceSelector: {}, podSelector: { matchLabels: { app } } } },
    ingress: [{ name: 'deny-b', action: 'Deny', from: [{ namespaces: { matchLabels: { team: 'b' } } }] }],
  },
});

describe('incremental compile: a policy change keeps the pods it does not select', () => {
  it('a NetworkPolicy and a ClusterNetworkPolicy in and out', () => {
    const policies = [np('db-in', 'db')];
    const cnps = [cnp('all-db', 10, 'db'), cnp('all-cache', 20, 'cache')];
    const input = (): CompileInput => ({
      nodeName: 'n1',
      nodeAddresses: ['192.0.2.1'],
      namespaces: [
        { metadata: { name: 'a', labels: { 'kubernetes.io/metadata.name': 'a' } } },
        { metadata: { name: 'b', labels: { 'kubernetes.io/metadata.name': 'b', team: 'b' } } },
      ],
      pods,
      policies: [...policies],
      clusterNetworkPolicies: [...cnps],
    });
    const compiler = new IncrementalCompiler();
    const byName = (c: CompiledPolicy, n: string) => c.pods.find((p) => p.name === n);
    const steps: [string, () => void, string][] = [
      ['NP selecting web in', () => policies.push(np('web-in', 'web')), 'web-1'],
      ['NP selecting web out', () => policies.pop(), 'web-1'],
      ['CNP selecting web in, between the others', () => cnps.push(cnp('all-web', 15, 'web')), 'web-1'],
      ['CNP selecting web out', () => cnps.pop(), 'web-1'],
      ['CNP selecting db in, first', () => cnps.push(cnp('first-db', 1, 'db')), 'db-1'],
    ];
    let last = compiler.compile(input());
    for (const [what, change, selected] of steps) {
      change();
      const now = compiler.compile(input());
      expect(now, what).toEqual(compilePolicy(input()));
      for (const p of pods) {
        const name = p.metadata.name;
        if (name === selected) expect(byName(now, name), `${what}: ${name}`).not.toBe(byName(last, name));
        else expect(byName(now, name), `${what}: ${name}`).toBe(byName(last, name));
      }
      last = now;
    }
    // The first-priority CNP comes first in db-1's Admin rules.
    expect(byName(last, 'db-1')?.admin?.ingress?.isolatedBy.map((r) => r.name)).toEqual(['first-db', 'all-db']);
  });
});
