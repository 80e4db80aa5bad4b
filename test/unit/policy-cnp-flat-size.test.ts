// How big the flat ClusterNetworkPolicy tier is for the shape of bench/policy.mjs section 7 (issue 19):
// 100 CNPs of bench/lib.mjs benchCnpSpec (both tiers, 25 rules each, every one selecting every pod)
// on the bench's cluster (5,000 pods in 200 namespaces of 20 teams on 100 nodes, this node node-7),
// compiled in process. Every local pod has the same rules per tier and direction, so one flat tier
// per (tier, direction) serves all of them; its elements are bounded by the peers' addresses and
// the rules' port boundaries, where today's chains hold every rule for every pod. The flat tiers
// also decide sampled packets as the rule walk does (the compiler's real peers, not generated ones).
import { describe, expect, it } from 'vitest';
import {
  decide,
  flatSize,
  flattenTier,
  ruleListId,
  type FlatProtocol,
} from '../../src/policy/clusternetworkpolicy/flat.ts';
import { compilePolicy, renderPolicy, clusterChainName, type CompileInput } from '../../src/policy/index.ts';
import { ruleMatches } from '../../src/policy/match.ts';
import type { CompiledPolicy, CompiledRule, Direction } from '../../src/policy/types.ts';

// The bench's own spec (a .mjs module without types: imported by URL, typed here).
const { benchCnpSpec }: { benchCnpSpec: (i: number, skipTeam: number, subjectsOf: string) => unknown } = await import(
  new URL('../../bench/lib.mjs', import.meta.url).href
);

const PODS = 5000;
const NAMESPACES = 200;
const NODES = 100;
const CNPS = 100;
const ME = 7;

const podIp = (p: number) => `10.244.${p % NODES}.${Math.floor(p / NODES) + 2}`;

function input(): CompileInput {
  const namespaces = Array.from({ length: NAMESPACES }, (_, n) => ({
    metadata: { name: `ns-${n}`, labels: { 'kubernetes.io/metadata.name': `ns-${n}`, team: `team-${n % 20}` } },
  }));
  const pods = Array.from({ length: PODS }, (_, p) => ({
    metadata: {
      name: `app-${p % 250}-${p.toString(36)}`,
      namespace: `ns-${p % NAMESPACES}`,
      labels: { app: `app-${p % 250}`, tier: p % 3 === 0 ? 'front' : 'back' },
    },
    spec: { nodeName: `node-${p % NODES}`, containers: [] },
    status: { phase: 'Running', podIPs: [{ ip: podIp(p) }] },
  }));
  const clusterNetworkPolicies = Array.from({ length: CNPS }, (_, i) => ({
    metadata: { name: `cnp-${i}` },
    spec: benchCnpSpec(i, 8, 'all'),
  }));
  return {
    nodeName: `node-${ME}`,
    nodeAddresses: ['198.18.1.8', `10.244.${ME}.1`],
    namespaces,
    pods,
    policies: [],
    clusterNetworkPolicies,
  };
}

function walk(
  model: CompiledPolicy,
  rules: readonly CompiledRule[],
  remote: string,
  protocol: FlatProtocol,
  port: number,
) {
  const packet = { src: remote, dst: remote, protocol: protocol === 'other' ? 'TCP' : protocol, dport: port } as const;
  return [...rules]
    .sort((a, b) => a.priority - b.priority)
    .find((r) =>
      protocol === 'other'
        ? r.ports === 'all' && ruleMatches(model, { ...r, namedPorts: [] }, remote, packet)
        : ruleMatches(model, r, remote, packet),
    );
}

describe(`the flat tiers for bench/policy.mjs section 7 (${CNPS} CNPs × 25 rules, ${PODS} pods)`, () => {
  it('one flat tier per (tier, direction) for every local pod, elements bounded by addresses and ports, deciding as the walk', () => {
    const model = compilePolicy(input());
    const local = model.pods;
    expect(local.length).toBe(PODS / NODES);
    const groups = new Map<
      string,
      { tier: string; direction: Direction; rules: readonly CompiledRule[]; pods: number }
    >();
    for (const pod of local)
      for (const tier of ['admin', 'baseline'] as const)
        for (const direction of ['ingress', 'egress'] as const) {
          const rules = pod[tier]?.[direction]?.rules;
          if (!rules) continue;
          const id = `${tier} ${direction} ${ruleListId(rules)}`;
          const g = groups.get(id) ?? { tier, direction, rules, pods: 0 };
          g.pods++;
          groups.set(id, g);
        }
    // Every pod is selected by every CNP: one group per tier and direction.
    expect(groups.size).toBe(4);
    const lines: string[] = [];
    let total = 0;
    for (const g of groups.values()) {
      const started = performance.now();
      const flat = flattenTier(g.rules, model.peers, model.namedPorts);
      const ms = performance.now() - started;
      const size = flatSize(flat);
      total += size.ranges + size.segments;
      lines.push(
        `${g.tier} ${g.direction}: ${g.rules.length} rules for ${g.pods} pods -> ${size.ranges} address ranges, ` +
          `${size.classes} classes, ${size.segments} port segments (flattened in ${Math.round(ms)} ms)`,
      );
      // Bounds: address ranges at most twice the cluster's addresses plus the networks' (each
      // peer address and interval adds at most two boundaries); segments per class at most twice
      // the distinct port ranges of the rules plus one, per protocol.
      expect(size.ranges).toBeLessThanOrEqual(2 * PODS + 2 * 4 * CNPS + 1);
      const portRanges = new Set(
        g.rules.flatMap((r) => (r.ports === 'all' ? [] : r.ports.map((p) => `${p.protocol} ${p.from} ${p.to}`))),
      ).size;
      for (const c of flat.classes) expect(c.ports.length).toBeLessThanOrEqual(2 * portRanges + 3);
      // Sampled packets: every 17th pod, an outside address, a network's ends; ports at the rules' edges.
      const remotes = [
        ...Array.from({ length: Math.ceil(PODS / 17) }, (_, k) => podIp(k * 17)),
        '203.0.113.0',
        '203.0.113.15',
        '203.0.113.16',
        '10.150.255.255',
        '192.0.2.1',
      ];
      for (const remote of remotes)
        for (const [protocol, port] of [
          ['TCP', 8080],
          ['TCP', 8001],
          ['TCP', 8100],
          ['TCP', 8125],
          ['TCP', 1500],
          ['TCP', 4501],
          ['UDP', 53],
          ['SCTP', 8080],
          ['other', 0],
        ] as const) {
          const want = walk(model, g.rules, remote, protocol, port);
          const got = decide(flat, remote, protocol, port);
          if (got?.source !== want?.source)
            expect(got?.source, `${g.tier} ${g.direction} ${remote} ${protocol} ${port}`).toEqual(want?.source);
        }
    }
    // The rendered pod chain (the flat layout is what renderPolicy writes): self and two map lookups,
    // where a chain walking the rules held one per (rule, peer, family): at least the rules.
    const table = renderPolicy(model);
    const pod = local[0] as (typeof local)[number];
    const chain = table.chains.get(clusterChainName('admin', pod, 'ingress'))?.rules.length ?? 0;
    const walked = [...groups.values()].find((g) => g.tier === 'admin' && g.direction === 'ingress')?.rules.length ?? 0;
    lines.push(
      `flat, every group: ${total} elements for ${local.length} local pods; one pod's Admin ingress chain: ${chain} rules (a walk: >= ${walked})`,
    );
    console.log(lines.join('\n'));
    expect(chain).toBeLessThanOrEqual(pod.ips.length + 3);
    expect(total).toBeLessThan(walked * local.length);
  });
});
