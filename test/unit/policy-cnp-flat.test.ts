// The flat ClusterNetworkPolicy tier (src/policy/clusternetworkpolicy/flat.ts) against the rule walk
// it replaces: seeded random rule lists (pod, node and network peers of both families, overlapping
// CIDRs with excepts, unknown peers, port ranges, all-ports rules, egress named ports, broken rules,
// Accept/Deny/Pass, tied and distinct priorities) and random packets, boundaries included; the walk is
// the evaluator's own (src/policy/match.ts ruleMatches over the rules in priority order, as
// src/policy/evaluate.ts judges a tier). FLAT_SEED picks the seeds.
import { describe, expect, it } from 'vitest';
import { formatIp } from '../../src/net/ip.ts';
import { cidrInterval, intervalToPrefixes, subtract, type Interval } from '../../src/policy/cidr.ts';
import { decide, flatSize, flattenTier, type FlatProtocol } from '../../src/policy/clusternetworkpolicy/flat.ts';
import { ruleMatches } from '../../src/policy/match.ts';
import type {
  CompiledPolicy,
  CompiledRule,
  NamedPortElement,
  NamedPortSet,
  PeerSet,
  PortRange,
  Protocol,
  RuleAction,
} from '../../src/policy/types.ts';
import { rng } from '../support/rng.ts';

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

const PROTOS: readonly Protocol[] = ['TCP', 'UDP', 'SCTP'];

function text(family: 4 | 6, v: bigint): string {
  const n = family === 4 ? 4 : 16;
  const bytes = new Uint8Array(n);
  for (let i = n - 1; i >= 0; i--) {
    bytes[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return formatIp(bytes);
}

const V4_BASE = 0x0a000000n; // 10.0.0.0
const V6_BASE = 0xfd00n << 112n;

/** A pool of addresses close together, so peers overlap and CIDRs hold several of them. */
function pool(g: Gen): string[] {
  const out = new Set<string>();
  for (let i = 0; i < 12; i++) out.add(text(4, V4_BASE + BigInt(g.int(3) * 256 + g.int(40))));
  for (let i = 0; i < 6; i++) out.add(text(6, V6_BASE + BigInt(g.int(3) * 65536 + g.int(40))));
  return [...out];
}

const isV6 = (ip: string) => ip.includes(':');

function cidrOf(g: Gen, ip: string): string {
  return `${ip}/${isV6(ip) ? g.pick([128, 126, 122, 112, 104, 64, 0]) : g.pick([32, 30, 27, 24, 22, 16, 8, 0])}`;
}

interface World {
  peers: Map<string, PeerSet>;
  namedPorts: Map<string, NamedPortSet>;
  rules: CompiledRule[];
  /** The evaluator's model around the peers (one object per world: match.ts indexes it once). */
  model: CompiledPolicy;
  addresses: string[];
  ports: number[];
}

function randomPeer(g: Gen, id: string, addrs: string[]): PeerSet {
  const k = g.int(3);
  if (k < 2) {
    const members = [...new Set(Array.from({ length: 1 + g.int(4) }, () => g.pick(addrs)))].sort();
    const meaning =
      k === 0
        ? { kind: 'pods' as const, podSelector: { requirements: [] } }
        : { kind: 'nodes' as const, nodeSelector: { requirements: [] } };
    return { id, meaning, v4: members.filter((a) => !isV6(a)), v6: members.filter(isV6), intervals: [] };
  }
  const cidr = cidrOf(g, g.pick(addrs));
  const iv = cidrInterval(cidr) as Interval;
  const except = g.chance(0.4) ? [cidrOf(g, g.pick(addrs))] : [];
  const parts = subtract(
    iv,
    except.map((e) => cidrInterval(e) as Interval),
  );
  return {
    id,
    meaning: { kind: 'ipBlock', family: iv.family, cidr, except },
    v4: [],
    v6: [],
    intervals: parts.flatMap(intervalToPrefixes),
  };
}

function randomRange(g: Gen): PortRange {
  const from = g.pick([1, 53, 80, 443, 1000, 8080, 65535, g.int(65536)]);
  const to = g.chance(0.5) ? from : Math.min(65535, from + g.pick([1, 10, 100, 2000, 70000]));
  return { protocol: g.pick(PROTOS), from, to };
}

function world(seed: number): World {
  const g = new Gen(seed);
  const addrs = pool(g);
  const peers = new Map<string, PeerSet>();
  for (let i = 0; i < 2 + g.int(8); i++) peers.set(`p${i}`, randomPeer(g, `p${i}`, addrs));
  const namedPorts = new Map<string, NamedPortSet>();
  for (let i = 0; i < g.int(4); i++) {
    const elements: NamedPortElement[] = Array.from({ length: 1 + g.int(4) }, () => ({
      address: g.pick(addrs),
      protocol: g.pick(PROTOS),
      port: g.pick([80, 8080, 53, 9000]),
    }));
    const v4 = elements.filter((e) => !isV6(e.address));
    namedPorts.set(`n${i}`, { id: `n${i}`, ports: [], v4, v6: elements.filter((e) => isV6(e.address)) });
  }
  const rules: CompiledRule[] = [];
  const ids = [...peers.keys()];
  for (let i = 0; i < 1 + g.int(14); i++) {
    const action: RuleAction = g.pick(['accept', 'drop', 'pass']);
    const peerList = g.chance(0.15)
      ? ('all' as const)
      : [...new Set(Array.from({ length: 1 + g.int(3) }, () => (g.chance(0.05) ? 'unknown' : g.pick(ids))))];
    const ports = g.chance(0.3) ? ('all' as const) : Array.from({ length: g.int(4) }, () => randomRange(g));
    const named = g.chance(0.25) && namedPorts.size > 0 ? [g.pick([...namedPorts.keys()])] : [];
    const rule: CompiledRule = {
      source: { namespace: '', name: `cnp-${i}`, direction: 'egress', index: i },
      tier: 'admin',
      priority: g.pick([0, 10, 10, 20, 30]),
      action,
      peers: peerList,
      ports,
      namedPorts: named,
    };
    rules.push(g.chance(0.05) ? { ...rule, broken: true } : rule);
  }
  // Packets: every pool address, every CIDR's ends and their neighbours, and addresses outside.
  const addresses = new Set<string>([...addrs, '192.0.2.1', '2001:db8::1', '0.0.0.0', '255.255.255.255', '::']);
  for (const p of peers.values())
    for (const prefix of p.intervals) {
      const iv = cidrInterval(prefix.includes('/') ? prefix : `${prefix}/${isV6(prefix) ? 128 : 32}`) as Interval;
      const max = iv.family === 4 ? (1n << 32n) - 1n : (1n << 128n) - 1n;
      for (const v of [iv.first - 1n, iv.first, iv.last, iv.last + 1n])
        if (v >= 0n && v <= max) addresses.add(text(iv.family, v));
    }
  const ports = new Set<number>([0, 1, 53, 80, 8080, 9000, 65535]);
  for (const r of rules)
    if (r.ports !== 'all')
      for (const p of r.ports)
        for (const x of [p.from - 1, p.from, p.to, p.to + 1]) if (x >= 0 && x <= 65535) ports.add(x);
  const model: CompiledPolicy = {
    nodeName: 'n1',
    nodeAddresses: [],
    pods: [],
    peers,
    namedPorts,
    errors: [],
    warnings: [],
  };
  return { peers, namedPorts, rules, model, addresses: [...addresses], ports: [...ports] };
}

/** The rule walk: the tier's rules in priority order (stable), the first that matches. */
function walk(w: World, remote: string, protocol: FlatProtocol, port: number): CompiledRule | undefined {
  const model = w.model;
  const ordered = [...w.rules].sort((a, b) => a.priority - b.priority);
  if (protocol === 'other')
    return ordered.find(
      (r) => r.ports === 'all' && ruleMatches(model, { ...r, namedPorts: [] }, remote, packet(remote, 'TCP', 0)),
    );
  return ordered.find((r) => ruleMatches(model, r, remote, packet(remote, protocol, port)));
}

function packet(remote: string, protocol: Protocol, dport: number) {
  return { src: remote, dst: '10.99.0.1', protocol, dport };
}

const SEEDS = Number(process.env.FLAT_SEEDS ?? 300);
const FIRST = Number(process.env.FLAT_SEED ?? 1);

describe('flat ClusterNetworkPolicy tier: first match without walking the rules', () => {
  it(`decides every packet as the rule walk does (${SEEDS} seeded rule lists, every address × port × protocol)`, () => {
    let cases = 0;
    let decided = 0;
    for (let seed = FIRST; seed < FIRST + SEEDS; seed++) {
      const w = world(seed);
      const flat = flattenTier(w.rules, w.peers, w.namedPorts);
      for (const remote of w.addresses)
        for (const protocol of [...PROTOS, 'other'] as const)
          for (const port of protocol === 'other' ? [0] : w.ports) {
            const want = walk(w, remote, protocol, port);
            const got = decide(flat, remote, protocol, port);
            cases++;
            if (want) decided++;
            // expect() per packet would cost more than the flattening; report the first difference.
            if (got?.source !== want?.source || got?.action !== want?.action)
              expect({ got: got?.source, action: got?.action }, `seed ${seed}: ${remote} ${protocol} ${port}`).toEqual({
                got: want?.source,
                action: want?.action,
              });
          }
    }
    // The packets hit rules, not only the fall-through (else the comparison would say little).
    expect(decided).toBeGreaterThan(cases / 10);
    console.log(`flat: ${cases} packets over ${SEEDS} rule lists, ${decided} decided by a rule`);
  });

  it('keeps the address ranges sorted and disjoint, and the default class out of them', () => {
    for (let seed = FIRST; seed < FIRST + 50; seed++) {
      const w = world(seed);
      const flat = flattenTier(w.rules, w.peers, w.namedPorts);
      for (const ranges of [flat.v4, flat.v6])
        for (const [i, r] of ranges.entries()) {
          expect(r.first <= r.last).toBe(true);
          expect(r.class).not.toBe(0);
          const prev = ranges[i - 1];
          if (prev) expect(prev.last < r.first && !(prev.last + 1n === r.first && prev.class === r.class)).toBe(true);
        }
      // Bounded by the rules' boundaries, not by anything multiplied.
      const bounds = w.rules.length * 40;
      expect(flatSize(flat).ranges).toBeLessThanOrEqual(bounds);
    }
  });

  it('an empty rule list and an Accept that failed closed decide nothing', () => {
    const none = flattenTier([], new Map(), new Map());
    expect(decide(none, '10.0.0.1', 'TCP', 80)).toBeUndefined();
    const broken: CompiledRule = {
      source: { namespace: '', name: 'x', direction: 'ingress', index: 0 },
      tier: 'admin',
      priority: 0,
      action: 'accept',
      peers: [],
      ports: [],
      namedPorts: [],
      broken: true,
    };
    const flat = flattenTier([broken], new Map(), new Map());
    expect(decide(flat, '10.0.0.1', 'UDP', 53)).toBeUndefined();
    expect(flat.classes).toHaveLength(1);
  });

  it('a fail-closed Deny (every peer, every port) decides every packet, ICMP included', () => {
    const deny: CompiledRule = {
      source: { namespace: '', name: 'd', direction: 'egress', index: 2 },
      tier: 'baseline',
      priority: 5,
      action: 'drop',
      peers: 'all',
      ports: 'all',
      namedPorts: [],
    };
    const flat = flattenTier([deny], new Map(), new Map());
    for (const remote of ['0.0.0.0', '10.1.2.3', '::', 'fd00::1'])
      for (const protocol of [...PROTOS, 'other'] as const)
        expect(decide(flat, remote, protocol, 0)?.action, `${remote} ${protocol}`).toBe('drop');
    expect(flat.v4).toHaveLength(0);
  });
});
