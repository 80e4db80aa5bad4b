// The policy enforcer against the nft fake, on a cluster large enough to matter: where a full pass
// gives the event loop back (structure, not timing: timing tests are not allowed here; the figures
// are bench/policy-incremental.mjs's), that a pod-start notice binds without compiling and answers,
// and that a pass with nothing changed sends nothing.
import { describe, expect, it } from 'vitest';
import type { NamespaceInfo, NetworkPolicyInfo, PodInfo } from '../../src/k8s/objects.ts';
import { fakeEnforcer } from '../support/fake-enforcer.ts';
import { policyCaches } from '../support/cache-store.ts';
import { compilePolicy, renderPolicy } from '../../src/policy/index.ts';

const NS = 40;
const pod = (i: number, node: string, ips: string[]): PodInfo =>
  ({
    metadata: {
      name: `p${i}`,
      namespace: `ns${i % NS}`,
      uid: `u${i}`,
      labels: { app: `a${i % 50}`, tier: i % 3 ? 'back' : 'front' },
    },
    spec: { nodeName: node, containers: [{ ports: [{ name: 'metrics', containerPort: 9090, protocol: 'TCP' }] }] },
    status: { phase: 'Running', podIPs: ips.map((ip) => ({ ip })) },
  }) as unknown as PodInfo;

function cluster(pods: number, policies: number) {
  const cache = policyCaches();
  for (let n = 0; n < NS; n++)
    cache.namespaces.put({ metadata: { name: `ns${n}`, labels: { team: `t${n % 5}` } } } as unknown as NamespaceInfo);
  for (let i = 0; i < pods; i++)
    cache.pods.put(pod(i, `n${i % 20}`, [`10.${1 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`]));
  for (let i = 0; i < policies; i++) {
    cache.networkPolicies.put({
      metadata: { name: `np${i}`, namespace: `ns${i % NS}` },
      spec: {
        podSelector: { matchLabels: { app: `a${i % 50}` } },
        policyTypes: ['Ingress', 'Egress'],
        ingress: [
          {
            from: [
              { podSelector: { matchLabels: { tier: 'front' } } },
              { namespaceSelector: { matchLabels: { team: `t${i % 5}` } } },
            ],
            ports: [{ protocol: 'TCP', port: 'metrics' }],
          },
        ],
        egress: [{ to: [{ namespaceSelector: {} }], ports: [{ protocol: 'UDP', port: 53 }] }],
      },
    } as unknown as NetworkPolicyInfo);
  }
  return cache;
}

describe('the policy enforcer on a large cluster (nft fake)', () => {
  it('yields between the stages of a full pass; a notice binds without compiling; nothing changed sends nothing', async () => {
    const cache = cluster(4_000, 400);
    const { enforcer, nft, notices, stages } = fakeEnforcer(cache, {
      nodeName: 'n0',
      nodeAddress: '192.168.0.1',
      recordStages: true,
      slices: true,
    });
    try {
      // Pods scheduled here before their ADD, as kubelet creates them.
      for (let i = 0; i < 5; i++) cache.pods.put(pod(100_000 + i * NS, 'n0', []));
      enforcer.request(Date.now());
      await enforcer.settle();
      // The compile yields in slices too when it runs long ('slice'), between the same stages.
      expect(stages.filter((s) => s !== 'slice')).toEqual(['input', 'compiled', 'rendered']);

      stages.length = 0;
      const applied = nft.applied.length;
      enforcer.request(Date.now());
      await enforcer.settle();
      expect(stages).toEqual([]);
      expect(nft.applied.length).toBe(applied);

      const answers = await Promise.all(
        [0, 1, 2, 3, 4].map((k) => {
          const n = {
            namespace: 'ns0',
            name: `p${100_000 + k * NS}`,
            uid: `u${100_000 + k * NS}`,
            ips: [`10.200.0.${k + 1}`],
          };
          notices.record(n);
          return enforcer.gate.podStarted(n, 10_000);
        }),
      );
      expect(answers.every((a) => a.ok)).toBe(true);
      expect(stages).toEqual([]); // bound, not compiled
      // What the binds applied is what compiling everything gives.
      const whole = compilePolicy(enforcer.compileInput());
      expect(enforcer.programming.compiled).toEqual(whole);
      expect(nft.state?.chains.size).toBe(renderPolicy(whole).chains.size + 1); // + the applier's marker chain

      // A pod label change elsewhere: a full pass again, with its yields.
      const p = cache.pods.get('p1', 'ns1') as PodInfo;
      cache.pods.put({ ...p, metadata: { ...p.metadata, labels: { app: 'a0', tier: 'front' } } });
      enforcer.request(Date.now());
      await enforcer.settle();
      // The compile yields in slices too when it runs long ('slice'), between the same stages.
      expect(stages.filter((s) => s !== 'slice')).toEqual(['input', 'compiled', 'rendered']);
    } finally {
      enforcer.stop();
    }
  });
  it("a failed ADD's retraction (a notice without addresses) is answered at once and unbinds the pod", async () => {
    const cache = cluster(500, 50);
    const { enforcer, notices } = fakeEnforcer(cache, { nodeName: 'n0', nodeAddress: '192.168.0.1' });
    try {
      cache.pods.put(pod(100_000, 'n0', []));
      enforcer.request(Date.now());
      await enforcer.settle();
      const n = { namespace: 'ns0', name: 'p100000', uid: 'u100000', ips: ['10.200.0.1'] };
      notices.record(n);
      expect((await enforcer.gate.podStarted(n, 10_000)).ok).toBe(true);
      const bound = () => enforcer.programming.compiled?.pods.find((p) => p.name === 'p100000')?.ips;
      expect(bound()).toEqual(['10.200.0.1']);
      // The ADD failed after its notice (IPAM gave the address back): the plugin takes it back.
      const back = { ...n, ips: [] };
      notices.record(back);
      expect(await enforcer.gate.podStarted(back, 10_000)).toEqual({ ok: true });
      enforcer.request(Date.now());
      await enforcer.settle();
      expect(bound()).toBeUndefined();
      expect(enforcer.programming.compiled).toEqual(compilePolicy(enforcer.compileInput()));
    } finally {
      enforcer.stop();
    }
  });

  it("kubelet's status update with the addresses a notice bound compiles nothing; another change does", async () => {
    const cache = cluster(2_000, 200);
    const { enforcer, nft, notices, stages } = fakeEnforcer(cache, {
      nodeName: 'n0',
      nodeAddress: '192.168.0.1',
      recordStages: true,
      slices: true,
    });
    const fullPass = () => stages.filter((s) => s !== 'slice');
    try {
      const waiting = pod(100_000, 'n0', []);
      cache.pods.put(waiting);
      enforcer.request(Date.now());
      await enforcer.settle();
      const n = { namespace: 'ns0', name: 'p100000', uid: 'u100000', ips: ['10.200.0.1'] };
      notices.record(n);
      expect((await enforcer.gate.podStarted(n, 10_000)).ok).toBe(true);
      stages.length = 0;
      const applied = nft.applied.length;

      // The status update kubelet makes once the sandbox is up: a new object, the notice's address.
      const running = { ...waiting, status: { phase: 'Running', podIPs: [{ ip: '10.200.0.1' }] } } as PodInfo;
      cache.pods.put(running);
      enforcer.request(Date.now());
      await enforcer.settle();
      expect(stages).toEqual([]);
      expect(nft.applied.length).toBe(applied);
      expect(enforcer.programming.compiled).toEqual(compilePolicy(enforcer.compileInput()));

      // The same pod relabelled: compiled again, and what is applied is what compiling everything gives.
      cache.pods.put({ ...running, metadata: { ...running.metadata, labels: { app: 'a7', tier: 'front' } } });
      enforcer.request(Date.now());
      await enforcer.settle();
      expect(fullPass()).toEqual(['input', 'compiled', 'rendered']);
      expect(enforcer.programming.compiled).toEqual(compilePolicy(enforcer.compileInput()));

      // A second address in the status (not the notice's): compiled again.
      stages.length = 0;
      const two = cache.pods.get('p100000', 'ns0') as PodInfo;
      cache.pods.put({ ...two, status: { ...two.status, podIPs: [{ ip: '10.200.0.1' }, { ip: 'fd00::1' }] } });
      enforcer.request(Date.now());
      await enforcer.settle();
      expect(fullPass()).toEqual(['input', 'compiled', 'rendered']);
      const whole = compilePolicy(enforcer.compileInput());
      expect(enforcer.programming.compiled).toEqual(whole);
      expect(whole.pods.find((p) => p.name === 'p100000')?.ips).toEqual(['10.200.0.1', 'fd00::1']);
    } finally {
      enforcer.stop();
    }
  });
  it('binds a notice ahead of a pass that only Pod events asked for, not ahead of a policy change or of its own pod changed', async () => {
    const cache = cluster(2_000, 200);
    const { enforcer, notices, stages } = fakeEnforcer(cache, {
      nodeName: 'n0',
      nodeAddress: '192.168.0.1',
      recordStages: true,
    });
    const start = async (k: number) => {
      const n = {
        namespace: 'ns0',
        name: `p${100_000 + k * NS}`,
        uid: `u${100_000 + k * NS}`,
        ips: [`10.200.0.${k + 1}`],
      };
      notices.record(n);
      const a = await enforcer.gate.podStarted(n, 10_000);
      stages.push('answered');
      return a.ok;
    };
    const relabel = (name: string, namespace: string, app: string) => {
      const p = cache.pods.get(name, namespace) as PodInfo;
      cache.pods.put({ ...p, metadata: { ...p.metadata, labels: { ...p.metadata.labels, app } } });
    };
    try {
      for (let k = 0; k < 3; k++) cache.pods.put(pod(100_000 + k * NS, 'n0', []));
      enforcer.request(Date.now());
      await enforcer.settle();

      // Another pod's labels changed (a pass is due) when the notice comes: bound first, answered
      // before the pass compiles the change.
      stages.length = 0;
      relabel('p1', 'ns1', 'a0');
      enforcer.request(Date.now());
      expect(await start(0)).toBe(true);
      await enforcer.settle();
      // (The pass builds its input in the same turn as the answer's promise settles: 'input' may come
      // either side of it; the compile comes after.)
      expect(stages.filter((x) => x !== 'input')).toEqual(['answered', 'compiled', 'rendered']);
      expect(enforcer.programming.compiled).toEqual(compilePolicy(enforcer.compileInput()));

      // A NetworkPolicy changed: it may isolate the pod, so the answer waits for the pass.
      stages.length = 0;
      const np = cache.networkPolicies.get('np0', 'ns0') as NetworkPolicyInfo;
      cache.networkPolicies.put({
        ...np,
        metadata: { ...np.metadata, labels: { changed: 'yes' } },
      } as NetworkPolicyInfo);
      enforcer.request(Date.now());
      expect(await start(1)).toBe(true);
      await enforcer.settle();
      expect(stages).toEqual(['input', 'compiled', 'rendered', 'answered']);

      // The pod itself relabelled since the last pass: its isolation may differ, the pass decides.
      stages.length = 0;
      relabel(`p${100_000 + 2 * NS}`, 'ns0', 'a3');
      enforcer.request(Date.now());
      expect(await start(2)).toBe(true);
      await enforcer.settle();
      expect(stages).toEqual(['input', 'compiled', 'rendered', 'answered']);
      expect(enforcer.programming.compiled).toEqual(compilePolicy(enforcer.compileInput()));
    } finally {
      enforcer.stop();
    }
  });
});
