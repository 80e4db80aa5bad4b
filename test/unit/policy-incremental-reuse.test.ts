// A policy change's work follows the pods it selects (src/policy/incremental/compiler.ts `kept`,
// clusternetworkpolicy/compile.ts's deltas): the other pods of the namespace (for a NetworkPolicy) or
// of the node (for a ClusterNetworkPolicy) keep their LocalPod object, so the render and the diff
// pass over them by identity; and the result still equals the pure compile.
import { describe, expect, it } from 'vitest';
import { IncrementalCompiler } from '../../src/policy/incremental/compiler.ts';
import { TableRenderer } from '../../src/policy/incremental/render.ts';
import { diffIdentity } from '../../src/policy/diff.ts';
import { podChainName } from '../../src/policy/networkpolicy/names.ts';
import { verdictMapName } from '../../src/policy/skeleton.ts';
import {
  compilePolicy,
  renderPolicy,
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

describe('incremental compile and render: a pod a policy change selects keeps its other rules', () => {
  it('compiled rules and rendered rules of the unchanged policies are the last objects; the refill keeps them', () => {
    // One rule with a named ingress port (it resolves on each pod), one without.
    const named: NetworkPolicyObject = {
      metadata: { name: 'named', namespace: 'a' },
      spec: {
        podSelector: {},
        ingress: [{ from: [{ podSelector: { matchLabels: { app: 'web' } } }], ports: [{ port: 'http' }] }],
      },
    };
    const withPorts = pods.map((p) => ({
      ...p,
      spec: { ...p.spec, containers: [{ name: 'c', ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }] }] },
    }));
    const policies = [named, np('db-in', 'db')];
    const input = (): CompileInput => ({
      nodeName: 'n1',
      nodeAddresses: ['192.0.2.1'],
      namespaces: [{ metadata: { name: 'a', labels: { 'kubernetes.io/metadata.name': 'a' } } }],
      pods: withPorts,
      policies: [...policies],
    });
    const compiler = new IncrementalCompiler();
    const renderer = new TableRenderer();
    const db = (c: CompiledPolicy) => c.pods.find((p) => p.name === 'db-1');
    const before = compiler.compile(input());
    const tableBefore = renderer.render(before);
    policies.push(np('db-more', 'db'));
    const after = compiler.compile(input());
    expect(after).toEqual(compilePolicy(input()));
    const tableAfter = renderer.render(after);
    const pure = renderPolicy(after);
    expect(tableAfter).toEqual(pure);
    // In the same order too (a Map's equality does not look at it; the diff and the kernel's listing do).
    for (const k of ['chains', 'sets', 'elements', 'chainOwners', 'comments'] as const)
      expect([...tableAfter[k].keys()], k).toEqual([...pure[k].keys()]);
    const rulesBefore = db(before)?.ingress?.rules ?? [];
    const rulesAfter = db(after)?.ingress?.rules ?? [];
    expect(rulesAfter).toHaveLength(rulesBefore.length + 1);
    for (const r of rulesBefore) expect(rulesAfter).toContain(r);
    // The pod's ingress chain: its unchanged policies' rules are the same objects.
    const chain = podChainName({ namespace: 'a', name: 'db-1' }, 'ingress');
    const was = tableBefore.chains.get(chain)?.rules ?? [];
    const now = tableAfter.chains.get(chain)?.rules ?? [];
    const kept = now.filter((r) => was.includes(r));
    expect(kept.length).toBe(was.filter((r) => r.comment?.startsWith('a/')).length);
    expect(kept.length).toBeGreaterThanOrEqual(2);
    // The verdict maps did not change (db-1's address jumps to the same chain): the same lists.
    const vmap = verdictMapName('ingress', 4);
    expect(tableAfter.elements.get(vmap)?.length).toBe(3);
    expect(tableAfter.elements.get(vmap)).toBe(tableBefore.elements.get(vmap));
    // The diff refills that chain with a chain edit that keeps all but the new rule.
    const tx = diffIdentity(tableBefore, tableAfter);
    const flush = tx.operations.find((o) => o.verb === 'flush' && nameOfOp(o) === chain);
    const edit = flush?.verb === 'flush' ? flush.edit : undefined;
    expect(edit).toBeDefined();
    expect((edit?.keep ?? 0) + (edit?.tail ?? 0)).toBe(now.length - 1);
  });
});

function nameOfOp(o: { object: { kind: string } }): string | undefined {
  return (o.object as { name?: string }).name;
}
