// The incremental compiler, render and diff (src/policy/incremental/, diffIdentity) against the pure
// pipeline, on seeded random sequences of events: pods added, deleted, relabelled and given
// addresses (local and remote, host-network, finished, notices' extraPodIps), namespaces relabelled,
// NetworkPolicies and ClusterNetworkPolicies added, changed and deleted, nodes relabelled. After every
// event the incremental compile deep-equals compilePolicy, the reusing render equals renderPolicy, and
// the identity diff from the previous table brings the fake to what a full build of the new one
// gives. Reuse is asserted too: what an event cannot affect keeps its objects.
import { describe, expect, it } from 'vitest';
import { FakeNft } from '../../src/nft/fake.ts';
import { emptyTableState } from '../../src/nft/objects.ts';
import { diffIdentity } from '../../src/policy/diff.ts';
import { modelDifferences } from '../../src/policy/incremental/compare.ts';
import { IncrementalCompiler } from '../../src/policy/incremental/compiler.ts';
import { TableRenderer } from '../../src/policy/incremental/render.ts';
import {
  compilePolicy,
  fullBuildPolicy,
  renderPolicy,
  type ClusterNetworkPolicyObject,
  type CompileInput,
  type NetworkPolicyObject,
  type PolicyNamespace,
  type PolicyNode,
  type PolicyPod,
} from '../../src/policy/index.ts';
import { rng } from '../support/rng.ts';

type Json = Record<string, unknown>;
const NSS = ['a', 'b', 'c', 'd'];
const APPS = ['web', 'db', 'cache'];
const PORTS = ['http', 'dns', 'metrics'];

class World {
  readonly r: () => number;
  pods = new Map<string, PolicyPod>();
  namespaces = new Map<string, PolicyNamespace>();
  policies = new Map<string, NetworkPolicyObject>();
  cnps = new Map<string, ClusterNetworkPolicyObject>();
  nodes = new Map<string, PolicyNode>();
  extra = new Map<string, readonly string[]>();
  private serial = 0;

  constructor(seed: number) {
    this.r = rng(seed);
    for (const n of NSS) this.namespaces.set(n, this.namespace(n));
    for (const n of ['n1', 'n2', 'n3']) this.nodes.set(n, this.node(n));
    for (let i = 0; i < 14; i++) this.addPod();
    for (let i = 0; i < 3; i++) this.putPolicy(`np${i}`);
    for (let i = 0; i < 2; i++) this.putCnp(`cnp${i}`);
  }

  int(n: number): number {
    return Math.floor(this.r() * n);
  }
  chance(p: number): boolean {
    return this.r() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)] as T;
  }

  namespace(name: string): PolicyNamespace {
    return { metadata: { name, labels: { team: this.pick(['red', 'blue']) } } };
  }
  node(name: string): PolicyNode {
    const i = Number(name.slice(1));
    return {
      metadata: { name, labels: { role: this.pick(['infra', 'worker']) } },
      status: { addresses: [{ type: 'InternalIP', address: `192.168.0.${i}` }] },
    };
  }
  labels(): Record<string, string> {
    return this.chance(0.85)
      ? { app: this.pick(APPS), ...(this.chance(0.5) ? { tier: this.pick(['front', 'back']) } : {}) }
      : {};
  }
  ip(): string {
    return this.chance(0.15) ? `fd00::${1 + this.int(60)}` : `10.0.0.${1 + this.int(60)}`;
  }
  addPod(): void {
    const name = `p${this.serial++}`;
    const local = this.chance(0.5);
    this.pods.set(`${name}`, {
      metadata: { name, namespace: this.pick(NSS), labels: this.labels() },
      spec: {
        nodeName: local ? 'n1' : this.pick(['n2', 'n3']),
        hostNetwork: this.chance(0.04),
        containers: [
          {
            ports: this.chance(0.6)
              ? [{ name: this.pick(PORTS), containerPort: 80 + this.int(5), protocol: this.pick(['TCP', 'UDP']) }]
              : [],
          },
        ],
      },
      status: {
        phase: this.chance(0.05) ? 'Succeeded' : 'Running',
        podIPs: this.chance(0.2) ? [] : [{ ip: this.ip() }],
      },
    });
  }
  selector(key: string, values: readonly string[]): Json {
    const k = this.int(4);
    if (k === 0) return {};
    if (k === 1) return { matchLabels: { [key]: this.pick(values) } };
    if (k === 2) return { matchExpressions: [{ key, operator: 'In', values: [this.pick(values)] }] };
    return { matchExpressions: [{ key, operator: this.pick(['Exists', 'DoesNotExist']) }] };
  }
  npPeer(): Json {
    const k = this.int(4);
    if (k === 0) return { podSelector: this.selector('app', APPS) };
    if (k === 1) return { namespaceSelector: this.selector('team', ['red', 'blue']) };
    if (k === 2) return { namespaceSelector: {}, podSelector: this.selector('tier', ['front', 'back']) };
    return { ipBlock: { cidr: '10.0.0.0/26', except: ['10.0.0.16/28'] } };
  }
  putPolicy(name: string): void {
    const rule = (dir: 'from' | 'to'): Json => ({
      ...(this.chance(0.8) ? { [dir]: Array.from({ length: 1 + this.int(2) }, () => this.npPeer()) } : {}),
      ...(this.chance(0.7)
        ? { ports: [{ protocol: this.pick(['TCP', 'UDP']), port: this.chance(0.5) ? this.pick(PORTS) : 80 }] }
        : {}),
    });
    this.policies.set(name, {
      metadata: { name, namespace: this.pick(NSS) },
      spec: {
        podSelector: this.selector('app', APPS),
        policyTypes: this.pick([['Ingress'], ['Egress'], ['Ingress', 'Egress']]),
        ingress: Array.from({ length: this.int(3) }, () => rule('from')),
        egress: Array.from({ length: this.int(3) }, () => rule('to')),
      },
    });
  }
  putCnp(name: string): void {
    const peer = (egress: boolean): Json => {
      const k = this.int(egress ? 4 : 2);
      if (k === 0) return { namespaces: this.selector('team', ['red', 'blue']) };
      if (k === 1) return { pods: { namespaceSelector: this.selector('team', ['red', 'blue']), podSelector: {} } };
      if (k === 2) return { networks: ['10.0.0.0/27'] };
      return { nodes: this.selector('role', ['infra', 'worker']) };
    };
    const spec: Json = {
      tier: this.pick(['Admin', 'Baseline']),
      priority: this.pick([1, 2, 5]),
      subject: this.chance(0.5)
        ? { namespaces: this.selector('team', ['red', 'blue']) }
        : { pods: { namespaceSelector: {}, podSelector: this.selector('app', APPS) } },
    };
    for (const dir of ['ingress', 'egress'] as const) {
      if (this.chance(0.3)) continue;
      spec[dir] = [
        {
          name: 'r0',
          action: this.pick(['Accept', 'Deny', 'Pass']),
          [dir === 'ingress' ? 'from' : 'to']: [peer(dir === 'egress')],
          ...(this.chance(0.4) ? { protocols: [{ destinationNamedPort: this.pick(PORTS) }] } : {}),
        },
      ];
    }
    this.cnps.set(name, { metadata: { name }, spec });
  }

  /** One random event; returns its kind. */
  step(): string {
    const k = this.int(13);
    const podNames = [...this.pods.keys()];
    const some = podNames.length > 0 ? this.pick(podNames) : undefined;
    const p = some === undefined ? undefined : this.pods.get(some);
    if (k === 0) {
      this.addPod();
      return 'pod add';
    }
    if (k === 12 && some !== undefined) {
      // One out and one in: the same number of pods, the others moved (the informers' list order).
      this.pods.delete(some);
      this.addPod();
      return 'pod replaced';
    }
    if (k === 1 && some !== undefined) {
      this.pods.delete(some);
      return 'pod delete';
    }
    if (k <= 3 && p && some !== undefined) {
      this.pods.set(some, { ...p, metadata: { ...p.metadata, labels: this.labels() } });
      return 'pod labels';
    }
    if (k === 4 && p && some !== undefined) {
      this.pods.set(some, { ...p, status: { ...p.status, podIPs: [{ ip: this.ip() }] } });
      return 'pod address';
    }
    if (k === 5 && p) {
      const key = `${p.metadata.namespace}/${p.metadata.name}`;
      if (this.extra.has(key)) this.extra.delete(key);
      else this.extra.set(key, [this.ip()]);
      return 'notice';
    }
    if (k === 6) {
      const n = this.pick(NSS);
      this.namespaces.set(n, this.namespace(n));
      return 'namespace labels';
    }
    if (k === 7) {
      this.putPolicy(`np${this.int(5)}`);
      return 'policy put';
    }
    if (k === 8) {
      this.policies.delete(`np${this.int(5)}`);
      return 'policy delete';
    }
    if (k === 9) {
      this.putCnp(`cnp${this.int(3)}`);
      return 'cnp put';
    }
    if (k === 10) {
      this.cnps.delete(`cnp${this.int(3)}`);
      return 'cnp delete';
    }
    const n = this.pick(['n1', 'n2', 'n3']);
    this.nodes.set(n, this.node(n));
    return 'node labels';
  }

  input(): CompileInput {
    return {
      nodeName: 'n1',
      nodeAddresses: ['192.168.0.1'],
      namespaces: [...this.namespaces.values()],
      pods: [...this.pods.values()],
      policies: [...this.policies.values()],
      clusterNetworkPolicies: [...this.cnps.values()],
      nodes: [...this.nodes.values()],
      extraPodIps: new Map(this.extra),
    };
  }
}

const dump = (f: FakeNft) =>
  f
    .dump()
    .split('\n')
    .filter((l) => l.includes('agent-pol-'))
    .sort()
    .join('\n');

describe('the incremental compiler, render and diff', () => {
  it('equal the pure pipeline after every event of 150 seeded random sequences', async () => {
    const kinds = new Map<string, number>();
    for (let seed = 1; seed <= 150; seed++) {
      const w = new World(seed);
      const compiler = new IncrementalCompiler();
      const renderer = new TableRenderer();
      const nft = new FakeNft();
      let table = renderer.render(compiler.compile(w.input()));
      await nft.run(fullBuildPolicy(table, emptyTableState()));
      for (let s = 0; s < 30; s++) {
        const kind = w.step();
        kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
        const input = w.input();
        const inc = compiler.compile(input);
        const pure = compilePolicy(input);
        const where = `seed ${seed} step ${s} (${kind})`;
        expect(inc, where).toEqual(pure);
        expect(modelDifferences(pure, inc), where).toEqual([]);
        const local = new Set(input.pods.filter((p) => p.spec.nodeName === 'n1'));
        expect(new Set(compiler.localInputPods(input)), where).toEqual(local);
        expect([...inc.peers.keys()], where).toEqual([...pure.peers.keys()]);
        expect([...inc.namedPorts.keys()], where).toEqual([...pure.namedPorts.keys()]);
        const next = renderer.render(inc);
        const full = renderPolicy(pure);
        expect(next, where).toEqual(full);
        for (const k of ['chains', 'sets', 'elements', 'chainOwners', 'comments'] as const)
          expect([...next[k].keys()], where).toEqual([...full[k].keys()]);
        await nft.run(diffIdentity(table, next));
        const fresh = new FakeNft();
        await fresh.run(fullBuildPolicy(full, emptyTableState()));
        expect(dump(nft), where).toBe(dump(fresh));
        table = next;
      }
    }
    // Every kind of event happened many times.
    for (const n of kinds.values()) expect(n).toBeGreaterThan(100);
  });

  it('keeps the objects an event cannot affect', () => {
    let kept = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const w = new World(seed);
      const compiler = new IncrementalCompiler();
      const renderer = new TableRenderer();
      const first = compiler.compile(w.input());
      const firstTable = renderer.render(first);
      // Nothing changed: every part is the previous object, and the diff is empty.
      const again = compiler.compile(w.input());
      expect(again.pods.every((p, i) => p === first.pods[i])).toBe(true);
      for (const [id, set] of again.peers) expect(set).toBe(first.peers.get(id));
      const againTable = renderer.render(again);
      for (const [n, c] of againTable.chains) expect(c).toBe(firstTable.chains.get(n));
      for (const [n, e] of againTable.elements) expect(e).toBe(firstTable.elements.get(n));
      expect(diffIdentity(firstTable, againTable).empty).toBe(true);

      // A remote pod in namespace `a` relabelled: every local pod keeps its LocalPod, and the peers
      // that read only other namespaces (and ipBlock and nodes peers) keep their PeerSet.
      const remote = [...w.pods.entries()].find(([, p]) => p.spec.nodeName !== 'n1' && p.metadata.namespace === 'a');
      if (!remote) continue;
      const [key, p] = remote;
      w.pods.set(key, { ...p, metadata: { ...p.metadata, labels: { app: 'other' } } });
      const after = compiler.compile(w.input());
      expect(after).toEqual(compilePolicy(w.input()));
      expect(after.pods.length).toBe(first.pods.length);
      after.pods.forEach((pod, i) => expect(pod).toBe(first.pods[i]));
      for (const [id, set] of after.peers) {
        const m = set.meaning;
        if (m.kind === 'pods' && m.namespace !== undefined && m.namespace !== 'a') {
          expect(set).toBe(first.peers.get(id));
          kept++;
        }
        if (m.kind !== 'pods') expect(set).toBe(first.peers.get(id));
      }
      // The render keeps every chain (no local pod changed).
      const afterTable = renderer.render(after);
      for (const [n, c] of afterTable.chains) expect(c).toBe(firstTable.chains.get(n));
    }
    expect(kept).toBeGreaterThan(5);
  });
});

describe('modelDifferences (the periodic check of the incremental compiler)', () => {
  it('names the pods and sets that differ, and nothing for equal models', () => {
    const w = new World(3);
    const pure = compilePolicy(w.input());
    expect(modelDifferences(pure, new IncrementalCompiler().compile(w.input()))).toEqual([]);
    const pod = pure.pods[0];
    expect(pod).toBeDefined();
    const [id, set] = [...pure.peers][0] ?? [];
    expect(set).toBeDefined();
    const wrong = {
      ...pure,
      pods: [{ ...(pod as (typeof pure.pods)[number]), ips: ['10.9.9.9'] }, ...pure.pods.slice(1)],
      peers: new Map([...pure.peers].map(([k, v]) => [k, k === id ? { ...v, v4: [...v.v4, '10.9.9.9'] } : v])),
    };
    const said = modelDifferences(pure, wrong);
    expect(said).toContain(`local pod ${pod?.namespace}/${pod?.name} differs`);
    expect(said).toContain(`peer set ${id} differs`);
  });
});
