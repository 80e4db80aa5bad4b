// A flat group as an overlay of its tier's base group (src/policy/clusternetworkpolicy/flat-overlay.ts):
// on seeded random rule lists (pod and network peers of both families, port ranges, all-ports rules,
// egress named ports, broken rules, Accept/Deny/Pass, tied priorities), a group made of the base's
// rules with some inserted (a new CNP) or some taken out, judged by looking the overlay up first and
// the base's flat tier where it holds nothing, against the group flattened whole: every address of the
// rules' boundaries, every port at their edges, every protocol.
import { describe, expect, it } from 'vitest';
import { formatIp } from '../../src/net/ip.ts';
import { cidrInterval, intervalToPrefixes, type Interval } from '../../src/policy/cidr.ts';
import { addressValue } from '../../src/policy/cidr.ts';
import { decide, flattenTier, type FlatProtocol, type FlatTier } from '../../src/policy/clusternetworkpolicy/flat.ts';
import {
  compareTiers,
  insertedOverlay,
  type Decisions,
  type Overlay,
} from '../../src/policy/clusternetworkpolicy/flat-overlay.ts';
import type { CompiledRule, NamedPortSet, PeerSet, PortRange, Protocol } from '../../src/policy/types.ts';
import { rng } from '../support/rng.ts';

const PROTOS: readonly Protocol[] = ['TCP', 'UDP', 'SCTP'];
const isV6 = (ip: string) => ip.includes(':');

function text(family: 4 | 6, v: bigint): string {
  const bytes = new Uint8Array(family === 4 ? 4 : 16);
  for (let i = bytes.length - 1; i >= 0; i--) {
    bytes[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return formatIp(bytes);
}

interface World {
  peers: Map<string, PeerSet>;
  namedPorts: Map<string, NamedPortSet>;
  rules: CompiledRule[];
  addresses: string[];
  ports: number[];
}

function world(seed: number): World {
  const r = rng(seed);
  const int = (n: number) => Math.floor(r() * n);
  const pick = <T>(xs: readonly T[]) => xs[int(xs.length)] as T;
  const addrs = new Set<string>();
  for (let i = 0; i < 10; i++) addrs.add(text(4, 0x0a000000n + BigInt(int(3) * 256 + int(30))));
  for (let i = 0; i < 5; i++) addrs.add(text(6, (0xfd00n << 112n) + BigInt(int(30))));
  const pool = [...addrs];
  const peers = new Map<string, PeerSet>();
  for (let i = 0; i < 2 + int(6); i++) {
    const id = `p${i}`;
    if (r() < 0.7) {
      const members = [...new Set(Array.from({ length: 1 + int(4) }, () => pick(pool)))].sort();
      const meaning = { kind: 'pods' as const, podSelector: { requirements: [] } };
      peers.set(id, { id, meaning, v4: members.filter((a) => !isV6(a)), v6: members.filter(isV6), intervals: [] });
    } else {
      const ip = pick(pool);
      const cidr = `${ip}/${isV6(ip) ? pick([128, 124, 120, 64]) : pick([32, 29, 27, 24, 16])}`;
      const iv = cidrInterval(cidr) as Interval;
      peers.set(id, {
        id,
        meaning: { kind: 'ipBlock', family: iv.family, cidr, except: [] },
        v4: [],
        v6: [],
        intervals: intervalToPrefixes(iv),
      });
    }
  }
  const namedPorts = new Map<string, NamedPortSet>([
    [
      'n0',
      {
        id: 'n0',
        ports: [],
        v4: [{ address: pick(pool.filter((a) => !isV6(a))), protocol: 'TCP', port: 8080 }],
        v6: [],
      },
    ],
  ]);
  const ids = [...peers.keys()];
  const range = (): PortRange => {
    const from = pick([1, 53, 80, 443, 8080, 65535, int(65536)]);
    return { protocol: pick(PROTOS), from, to: r() < 0.5 ? from : Math.min(65535, from + pick([1, 100, 2000])) };
  };
  const rules: CompiledRule[] = [];
  for (let i = 0; i < 2 + int(12); i++) {
    const rule: CompiledRule = {
      source: { namespace: '', name: `cnp-${i}`, direction: 'egress', index: i },
      tier: 'admin',
      priority: pick([0, 10, 10, 20, 30]),
      action: pick(['accept', 'drop', 'pass'] as const),
      peers: r() < 0.1 ? 'all' : [...new Set(Array.from({ length: 1 + int(2) }, () => pick(ids)))].sort(),
      ports: r() < 0.3 ? 'all' : Array.from({ length: int(3) }, range),
      namedPorts: r() < 0.1 ? ['n0'] : [],
    };
    rules.push(r() < 0.05 ? { ...rule, broken: true } : rule);
  }
  rules.sort((a, b) => a.priority - b.priority);
  const addresses = new Set<string>([...pool, '192.0.2.1', '2001:db8::1', '0.0.0.0', '255.255.255.255', '::']);
  for (const p of peers.values())
    for (const prefix of p.intervals) {
      const iv = cidrInterval(prefix.includes('/') ? prefix : `${prefix}/${isV6(prefix) ? 128 : 32}`) as Interval;
      for (const v of [iv.first - 1n, iv.first, iv.last, iv.last + 1n]) if (v >= 0n) addresses.add(text(iv.family, v));
    }
  const ports = new Set<number>([0, 53, 80, 8080, 65535]);
  for (const x of rules)
    if (x.ports !== 'all') for (const p of x.ports) for (const v of [p.from - 1, p.from, p.to, p.to + 1]) ports.add(v);
  return { peers, namedPorts, rules, addresses: [...addresses], ports: [...ports].filter((p) => p >= 0 && p <= 65535) };
}

/** The first match through the overlay, then the base: what the pod's group chain does. */
function overlaid(base: FlatTier, overlay: Overlay, remote: string, protocol: FlatProtocol, port: number) {
  const v = addressValue(remote);
  const hit = v && (v.family === 4 ? overlay.v4 : overlay.v6).find((x) => x.first <= v.value && v.value <= x.last);
  if (!hit) return decide(base, remote, protocol, port);
  const d: Decisions = hit.decisions;
  if (protocol === 'other') return d.other;
  return d.ports.find((s) => s.protocol === protocol && s.from <= port && port <= s.to)?.rule;
}

const SEEDS = Number(process.env.OVERLAY_SEEDS ?? 300);

describe('a flat group as an overlay of its tier base', () => {
  it(`decides as the group flattened whole (${SEEDS} seeded pairs, rules inserted and taken out)`, () => {
    let inserted = 0;
    let packets = 0;
    for (let seed = 1; seed <= SEEDS; seed++) {
      const w = world(seed);
      // Base: the rules less a few (so the group is the base with rules inserted); and the reverse.
      const keep = rng(seed * 7919);
      const fewer = w.rules.filter(() => keep() < 0.7);
      for (const [baseRules, groupRules] of [
        [fewer, w.rules],
        [w.rules, fewer],
      ] as const) {
        const base = flattenTier(baseRules, w.peers, w.namedPorts);
        const whole = flattenTier(groupRules, w.peers, w.namedPorts);
        const overlays: Overlay[] = [compareTiers(base, whole)];
        const fast = insertedOverlay(base, baseRules, groupRules, w.peers);
        if (fast) {
          inserted++;
          overlays.push(fast);
          // Only what the inserted rules' peers hold, and never more than comparing whole finds.
          const size = (o: Overlay) => o.v4.length + o.v6.length;
          expect(size(fast)).toBeLessThanOrEqual(size(overlays[0] as Overlay) + 2 * groupRules.length);
        }
        for (const overlay of overlays)
          for (const remote of w.addresses)
            for (const protocol of [...PROTOS, 'other'] as const)
              for (const port of protocol === 'other' ? [0] : w.ports) {
                const want = decide(whole, remote, protocol, port);
                const got = overlaid(base, overlay, remote, protocol, port);
                packets++;
                if (got?.source !== want?.source || got?.action !== want?.action)
                  expect(
                    { got: got?.source, action: got?.action },
                    `seed ${seed}: ${remote} ${protocol} ${port}`,
                  ).toEqual({ got: want?.source, action: want?.action });
              }
      }
    }
    // The fast path ran on most pairs (the rest name every address or named ports, or take rules out).
    expect(inserted).toBeGreaterThan(SEEDS / 3);
    console.log(`overlay: ${packets} packets, ${inserted} pairs through the inserted-rules path`);
  });

  it('an overlay over itself is empty', () => {
    const w = world(7);
    const flat = flattenTier(w.rules, w.peers, w.namedPorts);
    const o = compareTiers(flat, flattenTier(w.rules, w.peers, w.namedPorts));
    expect(o.v4.length + o.v6.length).toBe(0);
  });
});
