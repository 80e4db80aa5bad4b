// Randomized: a few hundred seeded random clusters and policies; every connection between pods, node
// addresses and an outside address is judged by the nft objects each node's fake holds (after the
// compiler, the renderer and the diffs) and by a straightforward evaluator of netpol-semantics §1
// (support/netpol-oracle.ts), over the raw API objects, sharing no code with src/policy. A failure prints the seed
// and the case. Then the cluster changes (labels, a policy) and everything is judged again, and once
// more after a full rebuild from the listed tables.
import { Address4, Address6 } from 'ip-address';
import { describe, expect, it } from 'vitest';
import type { NamespaceInfo, NetworkPolicyInfo, PodInfo, PodPort } from '../../src/k8s/objects.ts';
import type { Protocol } from '../../src/policy/index.ts';
import { namespace, NODE_IPS, NODE_IPS_V6, NODES, pod, policy, SimCluster } from '../support/netpol.ts';
import { allows, oracleWorld } from '../support/netpol-oracle.ts';
import { rng } from '../support/rng.ts';

/** mulberry32: small, seedable, good enough for test generation. */

type Json = Record<string, unknown>;

class Gen {
  readonly r: () => number;
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
  some<T>(xs: readonly T[], max = xs.length): T[] {
    const out = xs.filter(() => this.chance(0.5));
    return out.slice(0, max);
  }
}

const LABELS: Record<string, string[]> = { app: ['web', 'db', 'cache'], tier: ['front', 'back'] };
const NS_LABELS: Record<string, string[]> = { team: ['red', 'blue'], env: ['prod', 'dev'] };
const PORT_NAMES = ['http', 'dns', 'metrics'];

function labels(g: Gen, vocab: Record<string, string[]>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, vs] of Object.entries(vocab)) if (g.chance(0.6)) out[k] = g.pick(vs);
  return out;
}

function selector(g: Gen, vocab: Record<string, string[]>): Json {
  const s: Json = {};
  if (g.chance(0.5)) {
    const ml: Record<string, string> = {};
    for (const [k, vs] of Object.entries(vocab)) if (g.chance(0.4)) ml[k] = g.pick(vs);
    s.matchLabels = ml;
  }
  if (g.chance(0.5)) {
    const exprs: Json[] = [];
    for (const [k, vs] of Object.entries(vocab)) {
      if (!g.chance(0.4)) continue;
      const op = g.pick(['In', 'NotIn', 'Exists', 'DoesNotExist']);
      exprs.push(
        op === 'In' || op === 'NotIn'
          ? { key: k, operator: op, values: g.some(vs).concat(g.pick(vs)) }
          : { key: k, operator: op },
      );
    }
    s.matchExpressions = exprs;
  }
  return s;
}

interface World {
  namespaces: NamespaceInfo[];
  pods: PodInfo[];
  policies: NetworkPolicyInfo[];
}

function podPorts(g: Gen): PodPort[] {
  const out: PodPort[] = [];
  // The same name means different numbers on different pods.
  if (g.chance(0.7)) out.push({ name: 'http', containerPort: g.pick([80, 8080]), protocol: 'TCP' });
  if (g.chance(0.5)) out.push({ name: 'dns', containerPort: 53, protocol: g.pick(['UDP', 'TCP']) });
  if (g.chance(0.3)) out.push({ name: 'metrics', containerPort: 9000, protocol: 'SCTP' });
  return out;
}

function world(g: Gen): World {
  const nsNames = ['ns-a', 'ns-b', 'ns-c'].slice(0, 2 + g.int(2));
  const namespaces = nsNames.map((n) => namespace(n, labels(g, NS_LABELS)));
  const dual = g.chance(0.3);
  const pods: PodInfo[] = [];
  const count = 4 + g.int(5);
  for (let i = 0; i < count; i++) {
    const node = g.pick(NODES);
    const ns = g.pick(nsNames);
    if (g.chance(0.1)) {
      pods.push(
        pod({
          namespace: ns,
          name: `host-${i}`,
          labels: labels(g, LABELS),
          node,
          ips: [NODE_IPS[node] as string],
          hostNetwork: true,
        }),
      );
      continue;
    }
    const n = NODES.indexOf(node);
    const ips = [`10.244.${n}.${10 + i}`, ...(dual ? [`fd00:244:${n}::${(10 + i).toString(16)}`] : [])];
    pods.push(
      pod({
        namespace: ns,
        name: `p${i}`,
        labels: labels(g, LABELS),
        node,
        ips,
        ports: podPorts(g),
        ...(g.chance(0.08) ? { phase: 'Succeeded' } : {}),
      }),
    );
  }
  const policies: NetworkPolicyInfo[] = [];
  const nPol = 1 + g.int(4);
  for (let i = 0; i < nPol; i++) policies.push(randomPolicy(g, g.pick(nsNames), `pol-${i}`, pods));
  return { namespaces, pods, policies };
}

function randomPeer(g: Gen, pods: PodInfo[]): Json {
  const k = g.int(5);
  if (k === 0) return { podSelector: selector(g, LABELS) };
  if (k === 1) return { namespaceSelector: selector(g, NS_LABELS) };
  if (k === 2) return { podSelector: selector(g, LABELS), namespaceSelector: selector(g, NS_LABELS) };
  // ipBlock around some pod's (or node's) address, with host bits set as the API allows.
  const ips = [...pods.flatMap((p) => p.status.podIPs.map((x) => x.ip)), '203.0.113.7'];
  const ip = g.pick(ips);
  if (ip.includes(':')) {
    const len = g.pick([128, 64, 48, 16]);
    const block: Json = { cidr: `${ip}/${len}` };
    if (len < 128 && g.chance(0.5))
      block.except = [
        `${g.pick(ips.filter((x) => x.includes(':') && new Address6(x).isInSubnet(new Address6(`${ip}/${len}`))))}/128`,
      ];
    return { ipBlock: block };
  }
  const len = g.pick([32, 24, 16, 8, 0]);
  const block: Json = { cidr: `${ip}/${len}` };
  if (len < 32 && g.chance(0.5)) {
    const inside = ips.filter((x) => !x.includes(':') && new Address4(x).isInSubnet(new Address4(`${ip}/${len}`)));
    const e = g.pick(inside);
    const elen = g.pick([32, 30, Math.max(len + 1, 24)]);
    if (elen > len) block.except = [`${e}/${elen}`];
  }
  return { ipBlock: block };
}

function randomPort(g: Gen): Json {
  const p: Json = {};
  if (g.chance(0.6)) p.protocol = g.pick(['TCP', 'UDP', 'SCTP']);
  const k = g.int(4);
  if (k === 1) p.port = g.pick([80, 53, 8080, 9000, 81]);
  if (k === 2) p.port = g.pick(PORT_NAMES);
  if (k === 3) {
    p.port = g.pick([53, 80]);
    p.endPort = (p.port as number) + g.pick([0, 1, 30, 8000]);
  }
  return p;
}

function randomRules(g: Gen, pods: PodInfo[], peersField: 'from' | 'to'): Json[] | undefined {
  const k = g.int(4);
  if (k === 0) return undefined;
  if (k === 1) return [];
  const out: Json[] = [];
  for (let i = 0; i < 1 + g.int(2); i++) {
    const rule: Json = {};
    const pk = g.int(3);
    if (pk === 1) rule[peersField] = [];
    if (pk === 2) rule[peersField] = Array.from({ length: 1 + g.int(2) }, () => randomPeer(g, pods));
    const qk = g.int(3);
    if (qk === 1) rule.ports = [];
    if (qk === 2) rule.ports = Array.from({ length: 1 + g.int(2) }, () => randomPort(g));
    out.push(rule);
  }
  return out;
}

function randomPolicy(g: Gen, ns: string, name: string, pods: PodInfo[]): NetworkPolicyInfo {
  const spec: Json = { podSelector: selector(g, LABELS) };
  const t = g.int(4);
  if (t === 1) spec.policyTypes = ['Ingress'];
  if (t === 2) spec.policyTypes = ['Egress'];
  if (t === 3) spec.policyTypes = ['Ingress', 'Egress'];
  const ingress = randomRules(g, pods, 'from');
  const egress = randomRules(g, pods, 'to');
  if (ingress !== undefined) spec.ingress = ingress;
  if (egress !== undefined) spec.egress = egress;
  return policy(ns, name, spec);
}

// The oracle (§1 read literally, over the raw objects) lives in support/netpol-oracle.ts, shared with
// the upstream-case e2e. Node addresses as SimCluster gives them (R11).
const NODE_ADDRESSES: Record<string, string[]> = Object.fromEntries(
  NODES.map((n) => [n, [NODE_IPS[n] as string, NODE_IPS_V6[n] as string]]),
);

const PROBES: { protocol: Protocol; dport: number }[] = [
  { protocol: 'TCP', dport: 80 },
  { protocol: 'TCP', dport: 8080 },
  { protocol: 'TCP', dport: 81 },
  { protocol: 'UDP', dport: 53 },
  { protocol: 'TCP', dport: 53 },
  { protocol: 'SCTP', dport: 9000 },
];

function judgeAll(c: SimCluster, w: World, seed: number, stage: string): number {
  const ips = [
    ...new Set([
      ...w.pods.flatMap((p) => p.status.podIPs.map((x) => x.ip)),
      ...Object.values(NODE_IPS),
      '203.0.113.7',
      'fd50::1',
      '2001:db8::7',
    ]),
  ];
  const ow = oracleWorld({ ...w, nodeAddresses: NODE_ADDRESSES });
  let checked = 0;
  for (const src of ips) {
    for (const dst of ips) {
      if (src === dst || src.includes(':') !== dst.includes(':')) continue;
      for (const probe of PROBES) {
        const pkt = { src, dst, ...probe };
        const want = allows(ow, pkt);
        let got: boolean;
        try {
          got = c.verdict(pkt);
        } catch (err) {
          throw new Error(`seed ${seed} (${stage}): ${(err as Error).message}`);
        }
        if (got !== want) {
          throw new Error(
            `seed ${seed} (${stage}): ${src} → ${dst} ${probe.protocol}/${probe.dport}: oracle ${want}, nft ${got}\npods ${JSON.stringify(w.pods)}\npolicies ${JSON.stringify(w.policies)}\nnamespaces ${JSON.stringify(w.namespaces)}`,
          );
        }
        checked++;
      }
    }
  }
  return checked;
}

describe('randomized clusters: nft objects against the spec oracle', () => {
  it('agrees on every connection of 300 seeded clusters, through label and policy changes and a rebuild', async () => {
    const base = Number(process.env.POLICY_SEED ?? 1000);
    let checked = 0;
    for (let seed = base; seed < base + 300; seed++) {
      const g = new Gen(seed);
      const w = world(g);
      const c = new SimCluster({ namespaces: w.namespaces, pods: w.pods, policies: w.policies });
      await c.sync();
      checked += judgeAll(c, w, seed, 'first');

      // A pod's labels, a namespace's labels and one policy change; the diffs carry them.
      const i = g.int(w.pods.length);
      w.pods = w.pods.map((p, j) => (j === i ? { ...p, metadata: { ...p.metadata, labels: labels(g, LABELS) } } : p));
      w.namespaces = w.namespaces.map((n, j) => (j === 0 ? namespace(n.metadata.name, labels(g, NS_LABELS)) : n));
      w.policies = [
        ...w.policies.slice(1),
        randomPolicy(g, g.pick(w.namespaces.map((n) => n.metadata.name)), 'pol-new', w.pods),
      ];
      c.pods = w.pods;
      c.namespaces = w.namespaces;
      c.policies = w.policies;
      await c.sync();
      checked += judgeAll(c, w, seed, 'after changes');

      await c.rebuild();
      checked += judgeAll(c, w, seed, 'after rebuild');
    }
    expect(checked).toBeGreaterThan(10_000);
  });
});
