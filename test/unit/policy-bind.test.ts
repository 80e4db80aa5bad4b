// The pod-start fast path (src/policy/bind.ts) against the full compiler, on seeded random clusters:
// binding a local pod's notice addresses to the last compiled model gives exactly what compiling the
// whole input with those addresses gives, or declines (undefined) and the caller compiles everything.
import { describe, expect, it } from 'vitest';
import { bindLocalPod, prepareBinds } from '../../src/policy/bind.ts';
import { diffShared, newMembers, renderBound } from '../../src/policy/bind-render.ts';
import { compilePolicy, diffPolicy, renderPolicy, type CompileInput, type PolicyPod } from '../../src/policy/index.ts';
import { rng } from '../support/rng.ts';

type Json = Record<string, unknown>;
const NSS = ['a', 'b', 'c'];
const APPS = ['web', 'db', 'cache'];
const PORTS = ['http', 'dns', 'metrics'];

function cluster(seed: number): { input: CompileInput; waiting: PolicyPod[] } {
  const r = rng(seed);
  const int = (n: number) => Math.floor(r() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;
  const podLabels = () =>
    r() < 0.8 ? { app: pick(APPS), ...(r() < 0.5 ? { tier: pick(['front', 'back']) } : {}) } : {};
  const ports = () =>
    r() < 0.6 ? [{ name: pick(PORTS), containerPort: 80 + int(5), protocol: pick(['TCP', 'UDP']) }] : [];
  const pods: PolicyPod[] = [];
  const waiting: PolicyPod[] = [];
  for (let i = 0; i < 12 + int(12); i++) {
    const local = r() < 0.5;
    const noIp = local && r() < 0.4;
    const p: PolicyPod = {
      metadata: { name: `p${i}`, namespace: pick(NSS), labels: podLabels() },
      spec: { nodeName: local ? 'n1' : 'n2', hostNetwork: r() < 0.05, containers: [{ ports: ports() }] },
      status: { phase: 'Running', podIPs: noIp ? [] : [{ ip: `10.0.0.${1 + int(40)}` }] },
    };
    (noIp ? waiting : pods).push(p);
  }
  const peer = (): Json => {
    const k = int(4);
    if (k === 0) return { podSelector: r() < 0.3 ? {} : { matchLabels: { app: pick(APPS) } } };
    if (k === 1) return { namespaceSelector: r() < 0.3 ? {} : { matchLabels: { team: pick(['red', 'blue']) } } };
    if (k === 2)
      return {
        namespaceSelector: {},
        podSelector: { matchExpressions: [{ key: 'tier', operator: pick(['Exists', 'DoesNotExist']) }] },
      };
    return { ipBlock: { cidr: '10.0.0.0/26', except: ['10.0.0.16/28'] } };
  };
  const rule = (dir: 'from' | 'to'): Json => ({
    ...(r() < 0.8 ? { [dir]: Array.from({ length: 1 + int(2) }, peer) } : {}),
    ...(r() < 0.7 ? { ports: [{ protocol: pick(['TCP', 'UDP']), port: r() < 0.5 ? pick(PORTS) : 80 + int(5) }] } : {}),
  });
  const policies = Array.from({ length: 1 + int(6) }, (_, i) => ({
    metadata: { name: `np${i}`, namespace: pick(NSS) },
    spec: {
      podSelector: r() < 0.3 ? {} : { matchLabels: { app: pick(APPS) } },
      policyTypes: pick([['Ingress'], ['Egress'], ['Ingress', 'Egress']]),
      ingress: Array.from({ length: int(3) }, () => rule('from')),
      egress: Array.from({ length: int(3) }, () => rule('to')),
    },
  }));
  const namespaces = NSS.map((n) => ({ metadata: { name: n, labels: { team: pick(['red', 'blue']) } } }));
  // Half of the clusters add ClusterNetworkPolicies: their flat groups (address ranges of the peers'
  // pods) change when a new pod joins a peer.
  const sel = (): Json => (r() < 0.3 ? {} : { matchLabels: { app: pick(APPS) } });
  const cnpPeer = (dir: 'from' | 'to'): Json => {
    const k = int(dir === 'to' ? 3 : 2);
    if (k === 0) return { namespaces: r() < 0.4 ? {} : { matchLabels: { team: pick(['red', 'blue']) } } };
    if (k === 1) return { pods: { namespaceSelector: {}, podSelector: sel() } };
    return { networks: ['10.0.0.0/27'] };
  };
  const cnpRule = (dir: 'from' | 'to', i: number): Json => ({
    name: `r${i}`,
    action: pick(['Accept', 'Deny', 'Pass']),
    [dir]: Array.from({ length: 1 + int(2) }, () => cnpPeer(dir)),
    ...(r() < 0.5 ? { protocols: [{ [pick(['tcp', 'udp'])]: { destinationPort: { number: 80 + int(5) } } }] } : {}),
  });
  const clusterNetworkPolicies =
    seed % 4 < 2
      ? Array.from({ length: 1 + int(3) }, (_, i) => ({
          metadata: { name: `cnp${i}` },
          spec: {
            tier: pick(['Admin', 'Baseline']),
            priority: int(5),
            subject: r() < 0.5 ? { namespaces: {} } : { pods: { namespaceSelector: {}, podSelector: sel() } },
            ingress: Array.from({ length: int(3) }, (_, j) => cnpRule('from', j)),
            egress: Array.from({ length: int(3) }, (_, j) => cnpRule('to', j)),
          },
        }))
      : [];
  return {
    input: { nodeName: 'n1', nodeAddresses: ['192.168.0.1'], namespaces, pods, policies, clusterNetworkPolicies },
    waiting,
  };
}

describe('binding a pod-start notice to the last compiled model', () => {
  it('equals the full compile, or declines, over 400 seeded random clusters', () => {
    let bound = 0;
    let declined = 0;
    let grewSets = 0;
    let regrouped = 0;
    for (let seed = 1; seed <= 400; seed++) {
      const { input, waiting } = cluster(seed);
      const everything = { ...input, pods: [...input.pods, ...waiting] };
      let prev = compilePolicy(everything);
      // Half of the clusters prepare the waiting pods' sets ahead, as the agent does at a full compile.
      let prepared = seed % 2 === 0 ? prepareBinds(everything, prev, waiting) : undefined;
      const opts = seed % 3 === 0 ? { logDenied: { perSecond: 10 } } : {};
      let table = renderPolicy(prev, opts);
      const extra = new Map<string, string[]>();
      for (const [i, p] of waiting.entries()) {
        const key = `${p.metadata.namespace}/${p.metadata.name}`;
        extra.set(key, [`10.0.${seed % 2 ? 0 : 1}.${100 + i}`]);
        const full: CompileInput = { ...input, pods: [...input.pods, ...waiting], extraPodIps: new Map(extra) };
        const want = compilePolicy(full);
        const result = bindLocalPod(prev, full, p, prepared);
        if (result === undefined) {
          declined++;
          prev = want;
          table = renderPolicy(want, opts);
          const rest = waiting.filter((w) => !extra.has(`${w.metadata.namespace}/${w.metadata.name}`));
          if (prepared) prepared = prepareBinds(full, want, rest);
          continue;
        }
        const got = result.compiled;
        if (prepared) prepared = result.prepared;
        bound++;
        expect(got, `seed ${seed}, pod ${key}`).toEqual(want);
        // Rendered from the last table, and diffed over what changed only: as the whole render and diff.
        const grown = renderBound(prev, table, got, opts);
        const whole = renderPolicy(want, opts);
        expect(grown, `seed ${seed}, pod ${key}`).toEqual(whole);
        // In the same order too (toEqual does not compare the order of a Map's keys): renderBound merges
        // the new names into the applied table's order instead of sorting the table again.
        for (const part of ['chains', 'sets', 'elements', 'chainOwners', 'comments'] as const)
          expect([...grown[part].keys()], `seed ${seed}, pod ${key}, ${part}`).toEqual([...whole[part].keys()]);
        const lines = (t: { render(): string }) => t.render().split('\n').sort();
        expect(lines(diffShared(table, grown)), `seed ${seed}, pod ${key}`).toEqual(lines(diffPolicy(table, whole)));
        for (const name of grown.elements.keys()) {
          if (grown.elements.get(name) !== table.elements.get(name) && /-(?:peer|port)-/.test(name)) grewSets++;
          if (grown.elements.get(name) !== table.elements.get(name) && /-cm-/.test(name)) regrouped++;
        }
        prev = got;
        table = grown;
      }
    }
    // Most notices take the fast path; a peer only the new pod's rules name sends the rest to the full compile.
    expect(bound).toBeGreaterThan(3 * declined);
    // The cases include peer and named-port sets of other pods' rules that the new pod joins.
    expect(grewSets).toBeGreaterThan(50);
    // And flat ClusterNetworkPolicy groups whose address maps the new pod changes.
    console.log(`bound ${bound}, declined ${declined}, grown sets ${grewSets}, regrouped flat maps ${regrouped}`);
    expect(regrouped).toBeGreaterThan(20);
  });

  it("declines a pod that is not this node's, one already bound, and an address another local pod owns", () => {
    const pod = (name: string, node: string, ip?: string): PolicyPod => ({
      metadata: { name, namespace: 'a', labels: { app: 'web' } },
      spec: { nodeName: node, containers: [] },
      status: { podIPs: ip ? [{ ip }] : [] },
    });
    const base: CompileInput = {
      nodeName: 'n1',
      nodeAddresses: [],
      namespaces: [],
      pods: [pod('x', 'n1', '10.0.0.1')],
      policies: [],
    };
    const prev = compilePolicy(base);
    expect(bindLocalPod(prev, base, pod('y', 'n2', '10.0.0.2'))).toBeUndefined();
    expect(bindLocalPod(prev, base, pod('x', 'n1', '10.0.0.1'))).toBeUndefined();
    expect(bindLocalPod(prev, base, pod('z', 'n1', '10.0.0.1'))).toBeUndefined();
    const ok = bindLocalPod(prev, base, pod('z', 'n1', '10.0.0.3'))?.compiled;
    expect(ok).toEqual(compilePolicy({ ...base, pods: [...base.pods, pod('z', 'n1', '10.0.0.3')] }));
  });
});

describe('newMembers (the members a bind added to a sorted set)', () => {
  it('finds what a sorted list gained over a sorted subset of it, over 2,000 seeded random cases', () => {
    const order = (a: number, b: number) => a - b;
    let found = 0;
    for (let seed = 1; seed <= 2000; seed++) {
      const r = rng(seed);
      const all = [...new Set(Array.from({ length: Math.floor(r() * 60) }, () => Math.floor(r() * 200)))].sort(order);
      const was = all.filter(() => r() < 0.9);
      const want = all.filter((x) => !was.includes(x));
      expect(newMembers(was, all, order), `seed ${seed}`).toEqual(want);
      found += want.length;
    }
    expect(found).toBeGreaterThan(1000);
    const same = [1, 2, 3];
    expect(newMembers(same, same, order)).toEqual([]);
  });
});
