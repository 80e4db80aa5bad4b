// Issue 19's bug found by the e2e test "a pod that a Baseline deny isolates is never reachable, from
// before its ADD on": a pod-start notice bound on the fast path (policy/bind.ts) with an input that had
// no ClusterNetworkPolicies (agent/policy/input.ts, forPod), so a pod that only a CNP isolates was
// answered with no chain of its own and started open until the next full pass. Here, against the nft
// fake: at the moment the gate answers, the kernel holds the pod's CNP chain behind its address, and
// what was applied is what compiling everything gives.
import { describe, expect, it } from 'vitest';
import type { ClusterNetworkPolicyInfo, NamespaceInfo, PodInfo } from '../../src/k8s/objects.ts';
import { fakeEnforcer } from '../support/fake-enforcer.ts';
import { Store } from '../support/cache-store.ts';
import { compilePolicy } from '../../src/policy/index.ts';

const pod = (namespace: string, name: string, node: string, ips: string[]): PodInfo =>
  ({
    metadata: { name, namespace, uid: `u-${namespace}-${name}`, labels: { pod: name } },
    spec: { nodeName: node, containers: [] },
    status: { phase: ips.length ? 'Running' : 'Pending', podIPs: ips.map((ip) => ({ ip })) },
  }) as unknown as PodInfo;
const nsIs = (n: string) => ({ matchLabels: { 'kubernetes.io/metadata.name': n } });

describe('a pod-start notice of a pod that only a ClusterNetworkPolicy isolates (nft fake)', () => {
  for (const tier of ['Admin', 'Baseline'] as const) {
    it(`is answered only with its ${tier} chain in the kernel, behind its address`, async () => {
      const cache = {
        pods: new Store<PodInfo>(),
        namespaces: new Store<NamespaceInfo>(),
        networkPolicies: new Store(),
        nodes: new Store(),
        clusterNetworkPolicies: new Store<ClusterNetworkPolicyInfo>(),
        synced: true,
        unsynced: [],
      };
      for (const n of ['x', 'y', 'z'])
        cache.namespaces.put({
          metadata: { name: n, labels: { 'kubernetes.io/metadata.name': n } },
        } as unknown as NamespaceInfo);
      // As the e2e cluster: running pods in every namespace, none of z's on this node (n3).
      cache.pods.put(pod('x', 'a', 'n1', ['10.244.1.2']));
      cache.pods.put(pod('y', 'a', 'n1', ['10.244.1.3']));
      cache.pods.put(pod('z', 'a', 'n2', ['10.244.2.2']));
      cache.pods.put(pod('x', 'b', 'n3', ['10.244.3.2']));
      cache.clusterNetworkPolicies.put({
        metadata: { name: 'isolate-z' },
        spec: {
          tier,
          priority: 10,
          subject: { namespaces: nsIs('z') },
          ingress: [{ name: 'deny', action: 'Deny', from: [{ namespaces: {} }] }],
        },
      } as unknown as ClusterNetworkPolicyInfo);
      const { enforcer, nft, notices } = fakeEnforcer(cache, { nodeName: 'n3', nodeAddress: '192.168.0.3' });
      try {
        // The pod scheduled here before its ADD, as kubelet creates it; a full pass prepares its bind.
        cache.pods.put(pod('z', 'late', 'n3', []));
        enforcer.request(Date.now());
        await enforcer.settle();
        const before = nft.applied.length;

        const ip = '10.244.3.9';
        const n = { namespace: 'z', name: 'late', uid: 'u-z-late', ips: [ip] };
        notices.record(n);
        const answer = enforcer.gate.podStarted(n, 10_000);
        // What the kernel holds when the answer comes, not after later passes.
        const held = answer.then(() => ({ map: nft.elements('agent-pol-ingress-v4'), state: nft.dump() }));
        expect((await answer).ok).toBe(true);
        const { map, state } = await held;
        const entry = map.find((e) => e.startsWith(`${ip} : `));
        expect(entry, `no verdict-map element for ${ip}: it is open`).toBeDefined();
        const chain = /jump (\S+)/.exec(entry as string)?.[1] as string;
        expect(chain).toMatch(tier === 'Admin' ? /^agent-pol-ain-/ : /^agent-pol-bin-/);
        // The tier is flat (issue 19): the pod chain jumps to its group's chain, which looks its overlay
        // map and the tier's base map up, whose classes jump or go (directly or through a port map) to
        // the deciding rule's chain, which carries its comment.
        const targets = (text: string) => [...text.matchAll(/(?:jump|goto) (\S+)/g)].map((m) => m[1] as string);
        const maps = (text: string) => [...text.matchAll(/@(agent-pol-c[mpb]-\S+)/g)].map((m) => m[1] as string);
        const reached = new Set<string>();
        const walk = (c: string) => {
          if (reached.has(c)) return;
          reached.add(c);
          for (const r of nft.rules(c)) {
            for (const t of targets(r.rule)) walk(t);
            for (const m of maps(r.rule)) for (const e of nft.elements(m)) for (const t of targets(e)) walk(t);
          }
        };
        walk(chain);
        const comments = [...reached].flatMap((c) => nft.rules(c).map((r) => r.comment ?? ''));
        expect(comments).toContain('cnp/isolate-z ingress 0 deny');
        expect(state).toContain(`${ip}`);
        expect(nft.applied.length).toBe(before + 1); // bound on the fast path: one transaction
        // And what the bind applied is what compiling everything gives.
        expect(enforcer.programming.compiled).toEqual(compilePolicy(enforcer.compileInput()));
      } finally {
        enforcer.stop();
      }
    });
  }
});
