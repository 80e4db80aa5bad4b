// The NetworkPolicies prepared ahead of the pods (issue 18: at 50,000 pods they are listed seconds
// before the pods; PolicyTier.prepare, IncrementalCompiler.prepareAsync, the enforcer's passes before
// sync): what the first compile gives afterwards is what a compile of fresh copies of the same input
// gives (no memo shared with the prepare), whatever changed between: policies replaced, deleted or
// added after they were prepared, namespaces and pods listed later, a relist in another order. And
// the sliced sort of a pods peer's addresses (incremental/order.ts) is a whole sort.
import { describe, expect, it } from 'vitest';
import { IncrementalCompiler } from '../../src/policy/incremental/compiler.ts';
import { sortedUniqueSliced } from '../../src/policy/incremental/order.ts';
import { parsedAlready } from '../../src/policy/networkpolicy/parse.ts';
import {
  compilePolicy,
  type CompileInput,
  type NetworkPolicyObject,
  type PolicyNamespace,
  type PolicyPod,
} from '../../src/policy/index.ts';
import type { NamespaceInfo, NetworkPolicyInfo, PodInfo } from '../../src/k8s/objects.ts';
import { fakeEnforcer } from '../support/fake-enforcer.ts';
import { policyCaches } from '../support/cache-store.ts';
import { rng } from '../support/rng.ts';

const NS = 6;
const namespace = (n: number, team: string): PolicyNamespace => ({
  metadata: { name: `ns${n}`, labels: { 'kubernetes.io/metadata.name': `ns${n}`, team } },
});
const pod = (i: number, r: () => number): PolicyPod => ({
  metadata: { name: `p${i}`, namespace: `ns${i % NS}`, labels: { app: `a${Math.floor(r() * 4)}` } },
  spec: {
    nodeName: i % 3 === 0 ? 'n1' : 'n2',
    containers: [{ ports: [{ name: 'web', containerPort: 8000 + (i % 3), protocol: 'TCP' }] }],
  },
  status: { phase: 'Running', podIPs: [{ ip: `10.0.${i >> 8}.${i & 255}` }] },
});
/** A policy with every kind of peer and port, some of them invalid (errors are part of the result). */
const policy = (name: string, r: () => number): NetworkPolicyObject => {
  const app = `a${Math.floor(r() * 4)}`;
  const peers = [
    { podSelector: { matchLabels: { app } } },
    { namespaceSelector: { matchLabels: { team: `t${Math.floor(r() * 3)}` } } },
    { namespaceSelector: {}, podSelector: { matchExpressions: [{ key: 'app', operator: 'NotIn', values: [app] }] } },
    { ipBlock: { cidr: '10.0.0.0/16', except: ['10.0.1.0/24'] } },
    { podSelector: { matchLabels: { app: 'bad value!' } } },
  ];
  const pick = () => peers[Math.floor(r() * peers.length)];
  const ports = [[{ port: 'web' }], [{ protocol: 'UDP', port: 53 }], [{ port: 80, endPort: 90 }]];
  return {
    metadata: { name, namespace: `ns${Math.floor(r() * (NS + 1))}` }, // ns6: a namespace listed later
    spec: {
      podSelector: r() < 0.2 ? {} : { matchLabels: { app: `a${Math.floor(r() * 4)}` } },
      policyTypes: r() < 0.5 ? ['Ingress'] : ['Ingress', 'Egress'],
      ingress: [{ from: [pick(), pick()], ports: ports[Math.floor(r() * ports.length)] }],
      egress: [{ to: [pick()], ports: ports[Math.floor(r() * ports.length)] }],
    },
  } as NetworkPolicyObject;
};

const input = (
  pods: PolicyPod[],
  namespaces: PolicyNamespace[],
  policies: NetworkPolicyObject[],
  nodeName = 'n1',
): CompileInput => ({ nodeName, nodeAddresses: ['192.0.2.1'], namespaces, pods, policies });

/** A breath that gives nothing back: these tests look at results, not at timing. */
const breathe = () => Promise.resolve();

describe('NetworkPolicies prepared ahead of the pods', () => {
  it('the first compile after them equals a compile of fresh copies, whatever changed meanwhile', async () => {
    for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
      const r = rng(seed);
      const all = Array.from({ length: 40 }, (_, i) => policy(`np${i}`, r));
      const compiler = new IncrementalCompiler();
      // The list comes in pages; each page prepared (sliced at 0 ms: a yield after every step).
      let listed: NetworkPolicyObject[] = [];
      const early = [namespace(0, 't0'), namespace(1, 't1')];
      for (let at = 0; at < all.length; at += 15) {
        listed = [...listed, ...all.slice(at, at + 15)];
        await compiler.prepareAsync({ policies: listed, namespaces: early }, breathe, 0);
      }
      for (const p of listed) expect(parsedAlready(p), `seed ${seed}`).toBe(true);
      // Before the pods: replaced (a new object, another spec), deleted, added, and perhaps a relist.
      const replaced = Math.floor(r() * listed.length);
      listed[replaced] = policy(`np${replaced}`, r);
      listed.splice(Math.floor(r() * listed.length), 1);
      listed.push(policy('late', r));
      if (seed % 2 === 0) {
        await compiler.prepareAsync({ policies: listed, namespaces: early }, breathe, 0);
        listed.reverse();
      }
      const namespaces = Array.from({ length: NS + 1 }, (_, n) => namespace(n, `t${n % 3}`));
      const pods = Array.from({ length: 120 }, (_, i) => pod(i, r));
      const now = input(pods, namespaces, [...listed]);
      const fresh = structuredClone(now);
      expect(compiler.compile(now), `seed ${seed}`).toEqual(compilePolicy(fresh));
      // And the next pass, after one more policy changed, still agrees.
      listed[0] = policy('np0', r);
      const next = input(pods, namespaces, [...listed]);
      expect(compiler.compile(next), `seed ${seed} next`).toEqual(compilePolicy(structuredClone(next)));
    }
  });

  it('compileAsync with nothing prepared and with everything prepared give the same', async () => {
    const r = rng(42);
    const namespaces = Array.from({ length: NS + 1 }, (_, n) => namespace(n, `t${n % 3}`));
    const policies = Array.from({ length: 60 }, (_, i) => policy(`np${i}`, r));
    const pods = Array.from({ length: 200 }, (_, i) => pod(i, r));
    const a = input(pods, namespaces, policies);
    const b = structuredClone(a);
    const prepared = new IncrementalCompiler();
    await prepared.prepareAsync(b, breathe, 0);
    const withPrepare = await prepared.compileAsync(b, breathe, 0);
    const without = await new IncrementalCompiler().compileAsync(a, breathe, 0);
    expect(withPrepare).toEqual(without);
  });

  it('the sliced sort of many addresses is a whole sort without repeats, and yields', () => {
    const r = rng(7);
    for (const n of [0, 1, 50, 4096, 4097, 9000, 30_000]) {
      const items: string[] = [];
      for (let i = 0; i < n; i++)
        items.push(
          r() < 0.1 ? `fd00::${Math.floor(r() * 5000).toString(16)}` : `10.${Math.floor(r() * 40)}.${i % 256}.1`,
        );
      const want = [...new Set(items)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      let yields = 0;
      const it = sortedUniqueSliced([...items], function* () {
        yield;
      });
      let step = it.next();
      while (!step.done) {
        yields++;
        step = it.next();
      }
      expect(step.value, `${n} addresses`).toEqual(want);
      if (n > 4096) expect(yields, `${n} addresses`).toBeGreaterThan(1);
    }
  });
});

describe('the enforcer before every informer has listed', () => {
  it('prepares the policies listed so far, applies nothing, and its first pass equals a fresh compile', async () => {
    const cache = policyCaches(['pods']);
    const r = rng(3);
    cache.namespaces.put(namespace(0, 't0') as unknown as NamespaceInfo);
    for (let i = 0; i < 30; i++) cache.networkPolicies.put(policy(`np${i}`, r) as unknown as NetworkPolicyInfo);
    const { enforcer, nft, stages } = fakeEnforcer(cache, {
      nodeName: 'n1',
      nodeAddress: '192.0.2.1',
      recordStages: true,
    });
    try {
      enforcer.request(Date.now());
      await enforcer.settle();
      for (const p of cache.networkPolicies.list()) expect(parsedAlready(p)).toBe(true);
      expect(nft.applied.length).toBe(0);
      expect(stages).toEqual([]); // no compile began

      // A policy updated and one deleted during the pods' list, one added: the next pass before sync
      // prepares the new objects only.
      const updated = policy('np3', r) as unknown as NetworkPolicyInfo;
      cache.networkPolicies.put(updated);
      cache.networkPolicies.m.delete(
        (() => {
          const p = cache.networkPolicies.list()[5] as NetworkPolicyInfo;
          return `${p.metadata.namespace}/${p.metadata.name}`;
        })(),
      );
      const added = policy('np-new', r) as unknown as NetworkPolicyInfo;
      cache.networkPolicies.put(added);
      expect(parsedAlready(updated)).toBe(false);
      enforcer.request(Date.now());
      await enforcer.settle();
      expect(parsedAlready(updated) && parsedAlready(added)).toBe(true);
      expect(nft.applied.length).toBe(0);

      // The namespaces and the pods listed: synced, the first pass applies.
      for (let n = 1; n <= NS; n++) cache.namespaces.put(namespace(n, `t${n % 3}`) as unknown as NamespaceInfo);
      for (let i = 0; i < 90; i++) cache.pods.put(pod(i, r) as unknown as PodInfo);
      cache.synced = true;
      cache.unsynced = [];
      enforcer.request(Date.now());
      await enforcer.settle();
      expect(nft.applied.length).toBeGreaterThan(0);
      expect(stages.filter((s) => s !== 'slice')).toEqual(['input', 'compiled', 'rendered']);
      const whole = compilePolicy(structuredClone(enforcer.compileInput()));
      expect(enforcer.programming.compiled).toEqual(whole);
    } finally {
      enforcer.stop();
    }
  });
});
