// The planned layout of the flat ClusterNetworkPolicy tiers (src/policy/clusternetworkpolicy/
// flat-render.ts), put by hand over renderPolicy's table in place of its Admin and Baseline pod
// chains (the wiring to come), judged by the nft interpreter (src/policy/evaluate-nft.ts) against
// the model's verdict (src/policy/evaluate.ts) on seeded random clusters: both tiers, Accept/Deny/Pass,
// tied priorities, namespace/pod/network/node peers (v4 and v6), port ranges, named ports, and
// NetworkPolicies between the tiers (a Pass and a fall-through go on to the pod's next tier).
import { describe, expect, it } from 'vitest';
import { flatSize } from '../../src/policy/clusternetworkpolicy/flat.ts';
import { renderFlatClusterTiers } from '../../src/policy/clusternetworkpolicy/flat-groups.ts';
import {
  compilePolicy,
  evaluateNft,
  evaluatePolicy,
  nftView,
  renderPolicy,
  type CompileInput,
  type DesiredPolicyTable,
  type Protocol,
} from '../../src/policy/index.ts';
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
const APPS = ['web', 'db'];
const OUTSIDE = ['203.0.113.7', '2001:db8::7'];
const NODE_IPS = { n1: ['198.18.0.11', 'fd00:18::11'], n2: ['198.18.0.12', 'fd00:18::12'] };

function selector(g: Gen, key: string, values: readonly string[]): Json {
  if (g.chance(0.3)) return {};
  return { matchLabels: { [key]: g.pick(values) } };
}

function peer(g: Gen, egress: boolean, ips: string[]): Json {
  const k = g.int(egress ? 4 : 3);
  if (k === 0) return { namespaces: selector(g, 'team', ['red', 'blue']) };
  if (k === 1)
    return { pods: { namespaceSelector: selector(g, 'team', ['red', 'blue']), podSelector: selector(g, 'app', APPS) } };
  if (k === 2) {
    const ip = g.pick([...ips, ...OUTSIDE]);
    return { networks: [`${ip}/${ip.includes(':') ? g.pick([128, 120, 64, 0]) : g.pick([32, 24, 16, 0])}`] };
  }
  return { nodes: selector(g, 'role', ['infra', 'worker']) };
}

function protocols(g: Gen, named: boolean): Json[] | undefined {
  if (g.chance(0.35)) return undefined;
  return Array.from({ length: 1 + g.int(2) }, () => {
    if (named && g.chance(0.3)) return { destinationNamedPort: g.pick(['http', 'dns']) };
    const port = g.chance(0.5)
      ? { number: g.pick([80, 53, 8080]) }
      : { range: { start: g.pick([53, 80]), end: g.pick([81, 9000]) } };
    return { [g.pick(['tcp', 'udp', 'sctp'])]: { destinationPort: port } };
  });
}

function world(seed: number): { input: CompileInput; addresses: string[] } {
  const g = new Gen(seed);
  const namespaces = NS.map((name) => ({
    metadata: { name, labels: { 'kubernetes.io/metadata.name': name, team: g.pick(['red', 'blue']) } },
  }));
  const ips: string[] = [];
  const pods = Array.from({ length: 6 }, (_, i) => {
    const podIps = [`10.244.${i % 2}.${10 + i}`, ...(g.chance(0.5) ? [`fd00:244::${10 + i}`] : [])];
    ips.push(...podIps);
    return {
      metadata: { name: `p${i}`, namespace: g.pick(NS), labels: { app: g.pick(APPS) } },
      spec: {
        nodeName: i % 2 === 0 ? 'n1' : 'n2',
        containers: [
          {
            ports: [
              { name: 'http', containerPort: g.pick([80, 8080]), protocol: 'TCP' },
              { name: 'dns', containerPort: 53, protocol: 'UDP' },
            ],
          },
        ],
      },
      status: { phase: 'Running', podIPs: podIps.map((ip) => ({ ip })) },
    };
  });
  const clusterNetworkPolicies = Array.from({ length: 1 + g.int(5) }, (_, c) => {
    const spec: Json = {
      tier: g.pick(['Admin', 'Baseline']),
      priority: g.pick([1, 2, 2, 5]),
      subject: g.chance(0.5)
        ? { namespaces: selector(g, 'team', ['red', 'blue']) }
        : { pods: { namespaceSelector: {}, podSelector: selector(g, 'app', APPS) } },
    };
    for (const dir of ['ingress', 'egress'] as const) {
      if (g.chance(0.25)) continue;
      spec[dir] = Array.from({ length: 1 + g.int(4) }, (_, i) => {
        const peers = Array.from({ length: 1 + g.int(2) }, () => peer(g, dir === 'egress', ips));
        const rule: Json = {
          name: `r${i}`,
          action: g.pick(['Accept', 'Deny', 'Pass']),
          [dir === 'ingress' ? 'from' : 'to']: peers,
        };
        const prot = protocols(
          g,
          peers.every((p) => p.namespaces !== undefined || p.pods !== undefined),
        );
        if (prot) rule.protocols = prot;
        return rule;
      });
    }
    return { metadata: { name: `cnp-${c}` }, spec };
  });
  const policies = g.chance(0.6)
    ? [
        {
          metadata: { name: 'np', namespace: g.pick(NS) },
          spec: {
            podSelector: selector(g, 'app', APPS),
            policyTypes: g.pick([['Ingress'], ['Egress'], ['Ingress', 'Egress']]),
            ingress: [{ from: [{ namespaceSelector: selector(g, 'team', ['red', 'blue']) }] }],
            egress: [{ ports: [{ protocol: 'TCP', port: 80 }] }],
          },
        },
      ]
    : [];
  const nodes = (['n1', 'n2'] as const).map((name) => ({
    metadata: { name, labels: { role: name === 'n1' ? 'infra' : 'worker' } },
    status: { addresses: NODE_IPS[name].map((address) => ({ type: 'InternalIP', address })) },
  }));
  const input: CompileInput = {
    nodeName: 'n1',
    nodeAddresses: NODE_IPS.n1,
    namespaces,
    pods,
    policies,
    clusterNetworkPolicies,
    nodes,
  };
  return { input, addresses: [...ips, ...OUTSIDE, ...NODE_IPS.n2] };
}

/** renderPolicy's table with its ClusterNetworkPolicy pod chains replaced by the flat layout. */
function flatTable(table: DesiredPolicyTable, flat: ReturnType<typeof renderFlatClusterTiers>): DesiredPolicyTable {
  return {
    ...table,
    chains: new Map([...table.chains, ...flat.chains]),
    sets: new Map([...table.sets, ...flat.sets]),
    elements: new Map([...table.elements, ...flat.elements]),
    comments: new Map([...table.comments, ...flat.comments]),
  };
}

const SEEDS = Number(process.env.FLAT_RENDER_SEEDS ?? 120);

describe('the flat layout of the ClusterNetworkPolicy tiers, by the nft interpreter', () => {
  it(`allows and drops as the model does (${SEEDS} seeded clusters, every pair of addresses, ports, protocols)`, () => {
    let packets = 0;
    let dropped = 0;
    let flatRules = 0;
    for (let seed = 1; seed <= SEEDS; seed++) {
      const { input, addresses } = world(seed);
      const model = compilePolicy(input);
      const flat = renderFlatClusterTiers(model);
      for (const f of flat.groups.values()) flatRules += flatSize(f).segments;
      const view = nftView(flatTable(renderPolicy(model), flat));
      for (const src of addresses)
        for (const dst of addresses) {
          if (src === dst || src.includes(':') !== dst.includes(':')) continue;
          for (const protocol of ['TCP', 'UDP', 'SCTP'] as Protocol[])
            for (const dport of [53, 80, 81, 8080, 9000, 9001]) {
              const packet = { src, dst, protocol, dport };
              const want = evaluatePolicy(model, packet).allowed;
              const got = evaluateNft(view, packet, input.nodeAddresses).allowed;
              packets++;
              if (!want) dropped++;
              if (got !== want) expect(got, `seed ${seed}: ${src} → ${dst} ${protocol} ${dport}`).toBe(want);
            }
        }
    }
    expect(dropped).toBeGreaterThan(packets / 20);
    expect(packets - dropped).toBeGreaterThan(packets / 20);
    expect(flatRules).toBeGreaterThan(0);
    console.log(`flat render: ${packets} packets over ${SEEDS} clusters, ${dropped} dropped`);
  });
});
