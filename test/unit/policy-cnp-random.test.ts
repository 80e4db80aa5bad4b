// Randomized: seeded random clusters with ClusterNetworkPolicies of both tiers (Accept, Deny, Pass,
// tied and distinct priorities, namespace/pod/network/node peers, ports, ranges, named ports) beside
// NetworkPolicies; every connection between pods, node addresses and an outside address is judged by
// each node's compiled model and its fake's nft objects (SimCluster.verdict checks they agree) and by
// the ClusterNetworkPolicy oracle (support/cnp-oracle.ts), sharing no code with src/policy; then once
// more after a change of one policy's priority and a full rebuild. POLICY_SEED picks the seeds.
import { describe, expect, it } from 'vitest';
import type { NamespaceInfo, NetworkPolicyInfo, PodInfo, PodPort } from '../../src/k8s/objects.ts';
import type { ClusterNetworkPolicyObject, PolicyNode, Protocol } from '../../src/policy/index.ts';
import { cnpJudge, type CnpWorld } from '../support/cnp-oracle.ts';
import { oracleWorld } from '../support/netpol-oracle.ts';
import { namespace, NODE_IPS, NODE_IPS_V6, NODES, pod, policy, SimCluster } from '../support/netpol.ts';
import { rng } from '../support/rng.ts';

type Json = Record<string, unknown>;

class Gen {
  private readonly r: () => number;
  constructor(seed: number) {
    this.r = rng(seed);
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
}

const NS = ['ns-a', 'ns-b', 'ns-c'];
const APPS = ['web', 'db', 'cache'];
const OUTSIDE = '203.0.113.7';

function selector(g: Gen, key: string, values: readonly string[]): Json {
  const k = g.int(4);
  if (k === 0) return {};
  if (k === 1) return { matchLabels: { [key]: g.pick(values) } };
  if (k === 2)
    return { matchExpressions: [{ key, operator: g.pick(['In', 'NotIn']), values: [g.pick(values), g.pick(values)] }] };
  return { matchExpressions: [{ key, operator: g.pick(['Exists', 'DoesNotExist']) }] };
}

function podPorts(g: Gen): PodPort[] {
  const out: PodPort[] = [];
  if (g.chance(0.7)) out.push({ name: 'http', containerPort: g.pick([80, 8080]), protocol: 'TCP' });
  if (g.chance(0.5)) out.push({ name: 'dns', containerPort: 53, protocol: g.pick(['UDP', 'TCP']) });
  if (g.chance(0.3)) out.push({ name: 'metrics', containerPort: 9000, protocol: 'SCTP' });
  return out;
}

function peer(g: Gen, egress: boolean, ips: string[]): Json {
  const k = g.int(egress ? 4 : 2);
  if (k === 0) return { namespaces: selector(g, 'team', ['red', 'blue']) };
  if (k === 1) {
    const pods: Json = { podSelector: selector(g, 'app', APPS) };
    if (g.chance(0.6)) pods.namespaceSelector = selector(g, 'team', ['red', 'blue']);
    return { pods };
  }
  if (k === 2) {
    const ip = g.pick([...ips, OUTSIDE]);
    return { networks: [`${ip}/${g.pick([32, 24, 16, 0])}`] };
  }
  return { nodes: selector(g, 'role', ['infra', 'worker']) };
}

function protocols(g: Gen, named: boolean): Json[] | undefined {
  if (g.chance(0.4)) return undefined;
  const out: Json[] = [];
  for (let i = 0; i < 1 + g.int(2); i++) {
    if (named && g.chance(0.3)) {
      out.push({ destinationNamedPort: g.pick(['http', 'dns', 'metrics']) });
      continue;
    }
    const proto = g.pick(['tcp', 'udp', 'sctp']);
    const port = g.chance(0.5)
      ? { number: g.pick([80, 53, 8080, 9000]) }
      : { range: { start: g.pick([53, 80]), end: g.pick([81, 9000]) } };
    out.push({ [proto]: { destinationPort: port } });
  }
  return out;
}

function clusterPolicy(g: Gen, name: string, ips: string[]): ClusterNetworkPolicyObject {
  const subject = g.chance(0.5)
    ? { namespaces: selector(g, 'team', ['red', 'blue']) }
    : { pods: { namespaceSelector: selector(g, 'team', ['red', 'blue']), podSelector: selector(g, 'app', APPS) } };
  const spec: Json = { tier: g.pick(['Admin', 'Baseline']), priority: g.pick([1, 2, 2, 5]), subject };
  for (const dir of ['ingress', 'egress'] as const) {
    if (g.chance(0.3)) continue;
    spec[dir] = Array.from({ length: 1 + g.int(3) }, (_, i) => {
      const peers = Array.from({ length: 1 + g.int(2) }, () => peer(g, dir === 'egress', ips));
      const rule: Json = {
        name: `r${i}`,
        action: g.pick(['Accept', 'Deny', 'Pass']),
        [dir === 'ingress' ? 'from' : 'to']: peers,
      };
      const podsOnly = peers.every((p) => p.namespaces !== undefined || p.pods !== undefined);
      const prot = protocols(g, podsOnly);
      if (prot) rule.protocols = prot;
      return rule;
    });
  }
  return { metadata: { name }, spec };
}

function netpol(g: Gen, name: string): NetworkPolicyInfo {
  const spec: Json = {
    podSelector: selector(g, 'app', APPS),
    policyTypes: g.pick([['Ingress'], ['Egress'], ['Ingress', 'Egress']]),
  };
  const rule: Json = {};
  if (g.chance(0.6)) rule.from = [{ namespaceSelector: selector(g, 'team', ['red', 'blue']) }];
  if (g.chance(0.5)) rule.ports = [{ protocol: g.pick(['TCP', 'UDP']), port: g.pick([80, 53]) }];
  spec.ingress = [rule];
  spec.egress = [{ ...(g.chance(0.5) ? { to: [{ podSelector: selector(g, 'app', APPS) }] } : {}) }];
  return policy(g.pick(NS), name, spec);
}

interface World {
  namespaces: NamespaceInfo[];
  pods: PodInfo[];
  policies: NetworkPolicyInfo[];
  cnps: ClusterNetworkPolicyObject[];
  nodes: PolicyNode[];
}

function world(g: Gen): World {
  const namespaces = NS.map((n) => namespace(n, g.chance(0.8) ? { team: g.pick(['red', 'blue']) } : {}));
  const pods: PodInfo[] = [];
  for (let i = 0; i < 5 + g.int(4); i++) {
    const node = g.pick(NODES);
    const n = NODES.indexOf(node);
    const labels: Record<string, string> = g.chance(0.8) ? { app: g.pick(APPS) } : {};
    if (g.chance(0.08)) {
      pods.push(
        pod({
          namespace: g.pick(NS),
          name: `host-${i}`,
          labels,
          node,
          ips: [NODE_IPS[node] as string],
          hostNetwork: true,
        }),
      );
      continue;
    }
    pods.push(
      pod({ namespace: g.pick(NS), name: `p${i}`, labels, node, ips: [`10.244.${n}.${10 + i}`], ports: podPorts(g) }),
    );
  }
  const nodes: PolicyNode[] = NODES.map((n) => ({
    metadata: { name: n, labels: { role: g.pick(['infra', 'worker']) } },
    status: {
      addresses: [
        { type: 'InternalIP', address: NODE_IPS[n] as string },
        { type: 'Hostname', address: n },
      ],
    },
  }));
  const ips = pods.flatMap((p) => p.status.podIPs.map((x) => x.ip));
  const cnps = Array.from({ length: 1 + g.int(4) }, (_, i) => clusterPolicy(g, `cnp-${i}`, ips));
  const policies = Array.from({ length: g.int(3) }, (_, i) => netpol(g, `np-${i}`));
  return { namespaces, pods, policies, cnps, nodes };
}

const NODE_ADDRESSES: Record<string, string[]> = Object.fromEntries(
  NODES.map((n) => [n, [NODE_IPS[n] as string, NODE_IPS_V6[n] as string]]),
);

const PROBES: { protocol: Protocol; dport: number }[] = [
  { protocol: 'TCP', dport: 80 },
  { protocol: 'TCP', dport: 8080 },
  { protocol: 'UDP', dport: 53 },
  { protocol: 'TCP', dport: 53 },
  { protocol: 'SCTP', dport: 9000 },
];

function judgeAll(c: SimCluster, w: World, seed: number, stage: string): number {
  const ips = [
    ...new Set([...w.pods.flatMap((p) => p.status.podIPs.map((x) => x.ip)), ...Object.values(NODE_IPS), OUTSIDE]),
  ];
  const ow: CnpWorld = {
    ...oracleWorld({ ...w, nodeAddresses: NODE_ADDRESSES }),
    clusterPolicies: w.cnps.map((p) => ({ metadata: { name: p.metadata.name }, spec: p.spec as Json })),
    nodes: w.nodes.map((n) => ({
      name: n.metadata.name,
      labels: { ...n.metadata.labels },
      addresses: (n.status?.addresses ?? []).map((a) => a.address),
    })),
  };
  let checked = 0;
  for (const src of ips) {
    for (const dst of ips) {
      if (src === dst) continue;
      for (const probe of PROBES) {
        const pkt = { src, dst, ...probe };
        const want = cnpJudge(ow, pkt);
        let got: boolean;
        try {
          got = c.verdict(pkt);
        } catch (err) {
          throw new Error(`seed ${seed} (${stage}): ${(err as Error).message}`);
        }
        if (got !== want.allowed) {
          const why = `egress: ${want.egress.by}; ingress: ${want.ingress.by}`;
          throw new Error(
            `seed ${seed} (${stage}): ${src} → ${dst} ${probe.protocol}/${probe.dport}: oracle ${want.allowed} (${why}), strand ${got}\n` +
              `pods ${JSON.stringify(w.pods)}\ncnps ${JSON.stringify(w.cnps)}\nnps ${JSON.stringify(w.policies)}\nnamespaces ${JSON.stringify(w.namespaces)}`,
          );
        }
        checked++;
      }
    }
  }
  return checked;
}

describe('randomized ClusterNetworkPolicy clusters: model and nft objects against the oracle', () => {
  it('agrees on every connection of 150 seeded clusters, through a priority change and a rebuild', async () => {
    const base = Number(process.env.POLICY_SEED ?? 5000);
    let checked = 0;
    for (let seed = base; seed < base + 150; seed++) {
      const g = new Gen(seed);
      const w = world(g);
      const c = new SimCluster({ namespaces: w.namespaces, pods: w.pods, policies: w.policies });
      c.clusterPolicies = w.cnps;
      c.nodes = w.nodes;
      await c.sync();
      checked += judgeAll(c, w, seed, 'first');

      // One policy moves to another priority and tier: the diff reorders and moves its rules.
      const i = g.int(w.cnps.length);
      w.cnps = w.cnps.map((p, j) =>
        j === i
          ? { ...p, spec: { ...(p.spec as Json), priority: g.pick([0, 2, 7]), tier: g.pick(['Admin', 'Baseline']) } }
          : p,
      );
      c.clusterPolicies = w.cnps;
      await c.sync();
      checked += judgeAll(c, w, seed, 'after a change');
      await c.rebuild();
      checked += judgeAll(c, w, seed, 'after rebuild');
    }
    expect(checked).toBeGreaterThan(10_000);
  });
});
