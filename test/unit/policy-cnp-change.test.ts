// A ClusterNetworkPolicy change costs what it touches (issue 19 on issue 18's path): the incremental
// compiler and renderer keep every pod, chain and flat group the change cannot affect as the very
// objects of before, the pods it touches get the result the pure pipeline gives, and the transaction
// holds only what differs (the moved group's overlay of the addresses the change names and the
// classes that are new, not the classes that decide as before, nor the rules' counting chains).
import { describe, expect, it } from 'vitest';
import type { ClusterNetworkPolicyInfo } from '../../src/k8s/objects.ts';
import { diffIdentity } from '../../src/policy/diff.ts';
import { IncrementalCompiler } from '../../src/policy/incremental/compiler.ts';
import { TableRenderer } from '../../src/policy/incremental/render.ts';
import { compilePolicy, renderPolicy, type CompileInput } from '../../src/policy/index.ts';

const NAMESPACES = 6;
const PODS = 60;

function cnp(i: number): ClusterNetworkPolicyInfo {
  return {
    metadata: { name: `cnp-${i}` },
    spec: {
      tier: i % 2 === 0 ? 'Admin' : 'Baseline',
      priority: 10 + i,
      subject: { namespaces: {} },
      ingress: Array.from({ length: 5 }, (_, j) => ({
        name: `in-${j}`,
        action: ['Pass', 'Deny', 'Accept'][(i + j) % 3] as string,
        from: [{ namespaces: { matchLabels: { team: `t${(i + j) % 3}` } } }],
        protocols: [{ tcp: { destinationPort: { range: { start: 1000 * (j + 1), end: 1000 * (j + 1) + 99 } } } }],
      })),
      egress: [{ name: 'out', action: 'Deny', to: [{ networks: [`203.0.113.${16 * i}/28`] }] }],
    },
  };
}

function world(): CompileInput & { clusterNetworkPolicies: ClusterNetworkPolicyInfo[] } {
  const namespaces = Array.from({ length: NAMESPACES }, (_, n) => ({
    metadata: { name: `ns-${n}`, labels: { 'kubernetes.io/metadata.name': `ns-${n}`, team: `t${n % 3}` } },
  }));
  const pods = Array.from({ length: PODS }, (_, p) => ({
    metadata: { name: `p${p}`, namespace: `ns-${p % NAMESPACES}`, labels: { app: `a${p % 4}` } },
    spec: { nodeName: p % 5 === 0 ? 'n1' : 'n2', containers: [] },
    status: { phase: 'Running', podIPs: [{ ip: `10.244.${p % 5 === 0 ? 1 : 2}.${p + 2}` }] },
  }));
  const clusterNetworkPolicies = Array.from({ length: 8 }, (_, i) => cnp(i));
  return { nodeName: 'n1', nodeAddresses: ['198.18.0.11'], namespaces, pods, policies: [], clusterNetworkPolicies };
}

describe('a ClusterNetworkPolicy change, incrementally', () => {
  it('keeps the pods and groups it does not touch, and sends only what differs', () => {
    const input = world();
    const compiler = new IncrementalCompiler();
    const renderer = new TableRenderer();
    const before = compiler.compile(input);
    const beforeTable = renderer.render(before);
    const local = before.pods.map((p) => `${p.namespace}/${p.name}`);
    expect(local.length).toBeGreaterThan(4);

    // An Admin Deny at the top for the pods of ns-0 only, from one team's namespaces.
    input.clusterNetworkPolicies.push({
      metadata: { name: 'deny-ns-0' },
      spec: {
        tier: 'Admin',
        priority: 0,
        subject: { namespaces: { matchLabels: { 'kubernetes.io/metadata.name': 'ns-0' } } },
        ingress: [{ name: 'deny-t1', action: 'Deny', from: [{ namespaces: { matchLabels: { team: 't1' } } }] }],
      },
    });
    const after = compiler.compile(input);
    expect(after).toEqual(compilePolicy(input));
    const afterTable = renderer.render(after);
    expect(afterTable).toEqual(renderPolicy(compilePolicy(input)));

    let touched = 0;
    after.pods.forEach((pod, i) => {
      if (pod.namespace === 'ns-0') {
        touched++;
        expect(pod).not.toBe(before.pods[i]);
        return;
      }
      // Untouched: the same LocalPod, the same rule list objects, the same chains.
      expect(pod).toBe(before.pods[i]);
    });
    expect(touched).toBeGreaterThan(0);
    expect(touched).toBeLessThan(after.pods.length);
    // Two untouched pods selected by the same policies share one rule list object.
    const others = after.pods.filter((p) => p.namespace !== 'ns-0');
    expect(others[0]?.admin?.ingress?.rules).toBe(others[1]?.admin?.ingress?.rules);

    // The transaction: no chain of an untouched pod, no class chain that decides as before.
    const tx = diffIdentity(beforeTable, afterTable).render({ family: 'inet', name: 'strand' });
    const added = tx.split('\n').filter((l) => l.startsWith('add chain'));
    const classChains = [...beforeTable.chains.keys()].filter((n) => n.startsWith('agent-pol-cc-'));
    for (const name of classChains) expect(added.some((l) => l.endsWith(` ${name}`))).toBe(false);
    const newClasses = [...afterTable.chains.keys()].filter(
      (n) => n.startsWith('agent-pol-cc-') && !beforeTable.chains.has(n),
    );
    expect(newClasses.length).toBeLessThan(classChains.length);
    for (const [name, chain] of afterTable.chains) {
      const owner = afterTable.chainOwners.get(name);
      if (owner && owner.pod.namespace !== 'ns-0') expect(chain).toBe(beforeTable.chains.get(name));
    }
    // The moved pods' group is an overlay of the tier's base (flat-overlay.ts): its map holds the
    // addresses the new rule's peer holds (team t1's pods), the base map is not touched, and no rule
    // chain of before is flushed or deleted (their counters go on).
    const lines = tx.split('\n');
    expect(lines.filter((l) => / agent-pol-cb-/.test(l) && l.startsWith('add element'))).toEqual([]);
    const overlay = [...afterTable.elements].filter(([n]) => /-cm-/.test(n) && !beforeTable.elements.has(n));
    expect(overlay.length).toBeGreaterThan(0);
    const t1Pods = input.pods.filter((p) => Number(p.metadata.namespace?.slice(3)) % 3 === 1).length;
    expect(overlay.reduce((n, [, list]) => n + list.length, 0)).toBeLessThanOrEqual(t1Pods);
    const ruleChains = (l: string) => /^(flush|delete) chain .* agent-pol-cr-/.test(l);
    expect(lines.filter(ruleChains)).toEqual([]);

    // And back: the untouched pods still the same objects, the table equal to the first one.
    input.clusterNetworkPolicies.pop();
    const back = compiler.compile(input);
    back.pods.forEach((pod, i) => {
      if (pod.namespace !== 'ns-0') expect(pod).toBe(before.pods[i]);
    });
    const backTable = renderer.render(back);
    expect(backTable).toEqual(beforeTable);
    const undo = diffIdentity(afterTable, backTable).render({ family: 'inet', name: 'strand' }).split('\n');
    const gone = undo.filter(ruleChains);
    // Only the Deny's own rule chain goes.
    expect(gone.every((l) => !beforeTable.chains.has(l.split(' ').at(-1) as string))).toBe(true);
  });
});
