// Tests of the upstream ClusterNetworkPolicy conformance suite (network-policy-api v0.2.0,
// conformance/tests and conformance/base) as data: the suite's cluster (namespaces named after the
// houses, two pods each, serving TCP 80/8080, UDP 5353/53 and SCTP 9003/9005, with the named ports
// `web` TCP 80 and `dns` UDP 53), each test's policy as its manifest writes it, and its subtests in
// order: a subtest may first change the policy (the suite mutates the applied object, so changes
// accumulate), then probes (client pod, server pod, protocol, port, whether it connects). Only the
// expectations are upstream's; the test judges each probe by the oracle, the model and the nft objects.
import type { Protocol } from '../../src/policy/index.ts';

type Json = Record<string, unknown>;

export const HOUSES = ['gryffindor', 'slytherin', 'hufflepuff', 'ravenclaw'] as const;
export const HOUSE_PODS: Record<(typeof HOUSES)[number], string> = {
  gryffindor: 'harry-potter',
  slytherin: 'draco-malfoy',
  hufflepuff: 'cedric-diggory',
  ravenclaw: 'luna-lovegood',
};
export const houseNs = (house: string): string => `network-policy-conformance-${house}`;

export interface ConformanceProbe {
  /** "house/pod-index", e.g. "ravenclaw/0". */
  from: string;
  to: string;
  protocol: Protocol;
  port: number;
  connects: boolean;
}

export interface ConformanceStep {
  name: string;
  /** Changes to the policy before the probes (accumulating, as upstream's subtests do). */
  change?: (spec: Json) => void;
  probes: readonly ConformanceProbe[];
}

export interface ConformanceCase {
  /** Upstream test file and manifest. */
  test: string;
  policy: { metadata: { name: string }; spec: Json };
  steps: readonly ConformanceStep[];
}

const nsIs = (house: string): Json => ({ matchLabels: { 'kubernetes.io/metadata.name': houseNs(house) } });
const swap = (dir: 'ingress' | 'egress', i: number, j: number) => (spec: Json) => {
  const rules = spec[dir] as Json[];
  [rules[i], rules[j]] = [rules[j] as Json, rules[i] as Json];
};
const tcp = (from: string, to: string, port: number, connects: boolean): ConformanceProbe => ({ from, to, protocol: 'TCP', port, connects });

export const CONFORMANCE_CASES: readonly ConformanceCase[] = [
  {
    test: 'admin-network-policy-standard-ingress-tcp-rules.go (base/admin_tier/standard-ingress-tcp-rules.yaml)',
    policy: {
      metadata: { name: 'ingress-tcp' },
      spec: {
        tier: 'Admin',
        priority: 3,
        subject: { namespaces: nsIs('gryffindor') },
        ingress: [
          { name: 'allow-from-ravenclaw-everything', action: 'Accept', from: [{ namespaces: nsIs('ravenclaw') }] },
          { name: 'deny-from-ravenclaw-everything', action: 'Deny', from: [{ namespaces: nsIs('ravenclaw') }] },
          { name: 'pass-from-ravenclaw-everything', action: 'Pass', from: [{ namespaces: nsIs('ravenclaw') }] },
          { name: 'deny-from-slytherin-at-port-80', action: 'Deny', from: [{ namespaces: nsIs('slytherin') }], protocols: [{ tcp: { destinationPort: { number: 80 } } }] },
          { name: 'pass-from-slytherin-at-port-80', action: 'Pass', from: [{ namespaces: nsIs('slytherin') }], protocols: [{ tcp: { destinationPort: { number: 80 } } }] },
          { name: 'allow-from-hufflepuff-at-port-80', action: 'Accept', from: [{ namespaces: nsIs('hufflepuff') }], protocols: [{ tcp: { destinationPort: { number: 80 } } }] },
          { name: 'deny-from-hufflepuff-everything-else', action: 'Deny', from: [{ namespaces: nsIs('hufflepuff') }] },
        ],
      },
    },
    steps: [
      {
        name: "Should support an 'allow-ingress' policy for TCP protocol; ensure rule ordering is respected",
        probes: [tcp('ravenclaw/0', 'gryffindor/0', 80, true), tcp('ravenclaw/1', 'gryffindor/0', 8080, true)],
      },
      {
        name: "Should support an 'allow-ingress' policy for TCP protocol at the specified port",
        probes: [tcp('hufflepuff/0', 'gryffindor/1', 80, true), tcp('hufflepuff/1', 'gryffindor/1', 8080, false)],
      },
      {
        name: "Should support an 'deny-ingress' policy for TCP protocol; ensure rule ordering is respected",
        change: swap('ingress', 0, 1),
        probes: [tcp('ravenclaw/0', 'gryffindor/0', 80, false), tcp('ravenclaw/1', 'gryffindor/0', 8080, false)],
      },
      {
        name: "Should support a 'deny-ingress' policy for TCP protocol at the specified port",
        probes: [tcp('slytherin/0', 'gryffindor/1', 80, false), tcp('slytherin/1', 'gryffindor/1', 8080, true)],
      },
      {
        name: "Should support an 'pass-ingress' policy for TCP protocol; ensure rule ordering is respected",
        change: swap('ingress', 0, 2),
        probes: [tcp('ravenclaw/0', 'gryffindor/0', 80, true), tcp('ravenclaw/1', 'gryffindor/0', 8080, true)],
      },
      {
        name: "Should support a 'pass-ingress' policy for TCP protocol at the specified port",
        change: swap('ingress', 3, 4),
        probes: [tcp('slytherin/0', 'gryffindor/1', 80, true), tcp('slytherin/1', 'gryffindor/1', 8080, true)],
      },
    ],
  },
];
