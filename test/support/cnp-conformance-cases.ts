// Tests of the upstream ClusterNetworkPolicy conformance suite (network-policy-api v0.2.0,
// conformance/tests) as data: the suite's cluster (namespaces named after the houses, two pods each,
// serving TCP 80/8080, UDP 5353/53 and SCTP 9003/9005, with the named ports `web` TCP 80 and `dns`
// UDP 53; the forbidden forest's two host-network pods on the nodes), each test's manifests
// (support/cnp-conformance-manifests.ts), and its subtests in order: a subtest may first change what
// is applied (the suite mutates the applied objects, so changes accumulate within a test), then
// probes (client pod, server pod, protocol, port, whether it connects). Only the expectations are
// upstream's; the test judges each probe by the oracle, the model and the nft objects.
import type { Protocol } from '../../src/policy/index.ts';
import {
  HOST_PORTS,
  houseNs,
  type CnpManifest,
  type Json,
  type Manifest,
  ADMIN_EGRESS_INLINE_CIDR_RULES,
  ADMIN_EGRESS_SCTP_RULES,
  ADMIN_EGRESS_SELECTOR_RULES,
  ADMIN_EGRESS_TCP_RULES,
  ADMIN_EGRESS_UDP_RULES,
  ADMIN_GRESS_RULES_COMBINED,
  ADMIN_INGRESS_SCTP_RULES,
  ADMIN_INGRESS_TCP_RULES,
  ADMIN_INGRESS_UDP_RULES,
  ADMIN_PRIORITY_FIELD,
  BASELINE_EGRESS_INLINE_CIDR_RULES,
  BASELINE_EGRESS_SCTP_RULES,
  BASELINE_EGRESS_SELECTOR_RULES,
  BASELINE_EGRESS_TCP_RULES,
  BASELINE_EGRESS_UDP_RULES,
  BASELINE_GRESS_RULES_COMBINED,
  BASELINE_INGRESS_SCTP_RULES,
  BASELINE_INGRESS_TCP_RULES,
  BASELINE_INGRESS_UDP_RULES,
  INTEGRATION_ANP_NP_BANP,
} from './cnp-conformance-manifests.ts';

export { HOST_PORTS, houseNs };

/** The namespace of the host-network pods (spelled as upstream spells it). */
export const FOREST = 'forbidden-forrest';
export const HOUSES = ['gryffindor', 'slytherin', 'hufflepuff', 'ravenclaw'] as const;
export const HOUSE_PODS: Record<(typeof HOUSES)[number] | typeof FOREST, string> = {
  gryffindor: 'harry-potter',
  slytherin: 'draco-malfoy',
  hufflepuff: 'cedric-diggory',
  ravenclaw: 'luna-lovegood',
  [FOREST]: 'centaur',
};

export interface ConformanceProbe {
  /** "house/pod-index", e.g. "ravenclaw/0". */
  from: string;
  to: string;
  protocol: Protocol;
  port: number;
  connects: boolean;
}

/** Changes the applied objects in place; `ip` gives a pod's address ("house/index"). */
export type ConformanceChange = (applied: Manifest[], ip: (ref: string) => string) => void;

export interface ConformanceStep {
  name: string;
  /** Changes before the probes (accumulating, as upstream's subtests do). */
  changes?: readonly ConformanceChange[];
  probes: readonly ConformanceProbe[];
}

export interface ConformanceCase {
  /** Upstream test name and file. */
  test: string;
  manifests: readonly Manifest[];
  steps: readonly ConformanceStep[];
}

function specOf(applied: Manifest[], name: string): Json {
  const m = applied.find((x): x is CnpManifest => x.kind === 'ClusterNetworkPolicy' && x.metadata.name === name);
  if (!m) throw new Error(`no ClusterNetworkPolicy ${name} applied`);
  return m.spec;
}
const rulesOf = (applied: Manifest[], name: string, dir: 'ingress' | 'egress'): Json[] =>
  specOf(applied, name)[dir] as Json[];

const swap =
  (name: string, dir: 'ingress' | 'egress', i: number, j: number): ConformanceChange =>
  (applied) => {
    const rules = rulesOf(applied, name, dir);
    [rules[i], rules[j]] = [rules[j] as Json, rules[i] as Json];
  };
const setPriority =
  (name: string, priority: number): ConformanceChange =>
  (applied) => {
    specOf(applied, name).priority = priority;
  };
const setAction =
  (name: string, dir: 'ingress' | 'egress', i: number, action: 'Accept' | 'Deny' | 'Pass'): ConformanceChange =>
  (applied) => {
    (rulesOf(applied, name, dir)[i] as Json).action = action;
  };
/** The rule's protocols become the one named port. */
const namedPort =
  (name: string, dir: 'ingress' | 'egress', i: number, portName: string): ConformanceChange =>
  (applied) => {
    (rulesOf(applied, name, dir)[i] as Json).protocols = [{ destinationNamedPort: portName }];
  };
/** A new first egress rule accepting the pods' addresses as host CIDRs. */
const prependPodIpRule =
  (name: string, ruleName: string, pods: readonly string[]): ConformanceChange =>
  (applied, ip) => {
    const networks = pods.map((p) => (ip(p).includes(':') ? `${ip(p)}/128` : `${ip(p)}/32`));
    rulesOf(applied, name, 'egress').unshift({ name: ruleName, action: 'Accept', to: [{ networks }] });
  };
const deleteNetworkPolicy =
  (name: string): ConformanceChange =>
  (applied) => {
    const i = applied.findIndex((m) => m.kind === 'NetworkPolicy' && m.metadata.name === name);
    if (i < 0) throw new Error(`no NetworkPolicy ${name} applied`);
    applied.splice(i, 1);
  };
const probe = (from: string, to: string, protocol: Protocol, port: number, connects: boolean): ConformanceProbe => ({
  from,
  to,
  protocol,
  port,
  connects,
});

/** The 18 standard tests (83 subtests), then the 6 experimental named-port and node-peer tests. */
export const CONFORMANCE_CASES: readonly ConformanceCase[] = [
  {
    test: 'CNPAdminTierEgressInlineCIDRPeers (admin-network-policy-standard-egress-inline-cidr-rules.go)',
    manifests: ADMIN_EGRESS_INLINE_CIDR_RULES,
    steps: [
      {
        name: "Should support a 'deny-egress' rule policy for egress-cidr-peer",
        probes: [
          probe('gryffindor/1', 'ravenclaw/0', 'TCP', 80, false),
          probe('gryffindor/1', 'ravenclaw/0', 'UDP', 53, false),
          probe('gryffindor/1', 'ravenclaw/0', 'SCTP', 9003, false),
          probe('gryffindor/1', 'hufflepuff/0', 'TCP', 80, false),
          probe('gryffindor/1', 'hufflepuff/0', 'UDP', 53, false),
          probe('gryffindor/1', 'hufflepuff/0', 'SCTP', 9003, false),
          probe('gryffindor/1', 'slytherin/0', 'TCP', 80, true),
          probe('gryffindor/1', 'slytherin/0', 'UDP', 53, true),
          probe('gryffindor/1', 'slytherin/0', 'SCTP', 9003, true),
        ],
      },
      {
        name: "Should support an 'allow-egress' rule policy for egress-cidr-peer",
        changes: [
          prependPodIpRule('inline-cidr-as-peers-example', 'allow-egress-to-specific-podIPs', [
            'ravenclaw/0',
            'hufflepuff/0',
          ]),
        ],
        probes: [
          probe('gryffindor/1', 'ravenclaw/0', 'TCP', 80, true),
          probe('gryffindor/1', 'ravenclaw/0', 'UDP', 53, true),
          probe('gryffindor/1', 'ravenclaw/0', 'SCTP', 9003, true),
          probe('gryffindor/1', 'hufflepuff/0', 'TCP', 80, true),
          probe('gryffindor/1', 'hufflepuff/0', 'UDP', 53, true),
          probe('gryffindor/1', 'hufflepuff/0', 'SCTP', 9003, true),
          probe('gryffindor/1', 'ravenclaw/1', 'TCP', 80, false),
          probe('gryffindor/1', 'ravenclaw/1', 'UDP', 53, false),
          probe('gryffindor/1', 'ravenclaw/1', 'SCTP', 9003, false),
          probe('gryffindor/1', 'hufflepuff/1', 'TCP', 80, false),
          probe('gryffindor/1', 'hufflepuff/1', 'UDP', 53, false),
          probe('gryffindor/1', 'hufflepuff/1', 'SCTP', 9003, false),
        ],
      },
    ],
  },
  {
    test: 'CNPAdminTierEgressSCTP (admin-network-policy-standard-egress-sctp-rules.go)',
    manifests: ADMIN_EGRESS_SCTP_RULES,
    steps: [
      {
        name: "Should support an 'allow-egress' policy for SCTP protocol; ensure rule ordering is respected",
        probes: [
          probe('ravenclaw/0', 'gryffindor/0', 'SCTP', 9003, true),
          probe('ravenclaw/1', 'gryffindor/0', 'SCTP', 9005, true),
        ],
      },
      {
        name: "Should support an 'allow-egress' policy for SCTP protocol at the specified port",
        probes: [
          probe('ravenclaw/0', 'hufflepuff/1', 'SCTP', 9003, true),
          probe('ravenclaw/1', 'hufflepuff/1', 'SCTP', 9005, false),
        ],
      },
      {
        name: "Should support an 'deny-egress' policy for SCTP protocol; ensure rule ordering is respected",
        changes: [swap('egress-sctp', 'egress', 0, 1)],
        probes: [
          probe('ravenclaw/0', 'gryffindor/1', 'SCTP', 9003, false),
          probe('ravenclaw/1', 'gryffindor/1', 'SCTP', 9005, false),
        ],
      },
      {
        name: "Should support a 'deny-egress' policy for SCTP protocol at the specified port",
        probes: [
          probe('ravenclaw/0', 'slytherin/0', 'SCTP', 9003, false),
          probe('ravenclaw/1', 'slytherin/0', 'SCTP', 9005, true),
        ],
      },
      {
        name: "Should support an 'pass-egress' policy for SCTP protocol; ensure rule ordering is respected",
        changes: [swap('egress-sctp', 'egress', 0, 2)],
        probes: [
          probe('ravenclaw/0', 'gryffindor/1', 'SCTP', 9003, true),
          probe('ravenclaw/1', 'gryffindor/1', 'SCTP', 9005, true),
        ],
      },
      {
        name: "Should support a 'pass-egress' policy for SCTP protocol at the specified port",
        changes: [swap('egress-sctp', 'egress', 3, 4)],
        probes: [
          probe('ravenclaw/0', 'slytherin/0', 'SCTP', 9003, true),
          probe('ravenclaw/1', 'slytherin/0', 'SCTP', 9005, true),
        ],
      },
    ],
  },
  {
    test: 'CNPAdminTierEgressTCP (admin-network-policy-standard-egress-tcp-rules.go)',
    manifests: ADMIN_EGRESS_TCP_RULES,
    steps: [
      {
        name: "Should support an 'allow-egress' policy for TCP protocol; ensure rule ordering is respected",
        probes: [
          probe('gryffindor/0', 'ravenclaw/0', 'TCP', 80, true),
          probe('gryffindor/1', 'ravenclaw/0', 'TCP', 8080, true),
        ],
      },
      {
        name: "Should support an 'allow-egress' policy for TCP protocol at the specified port",
        probes: [
          probe('gryffindor/0', 'hufflepuff/1', 'TCP', 8080, true),
          probe('gryffindor/1', 'hufflepuff/1', 'TCP', 80, false),
        ],
      },
      {
        name: "Should support an 'deny-egress' policy for TCP protocol; ensure rule ordering is respected",
        changes: [swap('egress-tcp', 'egress', 0, 1)],
        probes: [
          probe('gryffindor/0', 'ravenclaw/1', 'TCP', 80, false),
          probe('gryffindor/1', 'ravenclaw/1', 'TCP', 8080, false),
        ],
      },
      {
        name: "Should support a 'deny-egress' policy for TCP protocol at the specified port",
        probes: [
          probe('gryffindor/0', 'slytherin/0', 'TCP', 80, false),
          probe('gryffindor/1', 'slytherin/0', 'TCP', 8080, true),
        ],
      },
      {
        name: "Should support an 'pass-egress' policy for TCP protocol; ensure rule ordering is respected",
        changes: [swap('egress-tcp', 'egress', 0, 2)],
        probes: [
          probe('gryffindor/0', 'ravenclaw/0', 'TCP', 80, true),
          probe('gryffindor/1', 'ravenclaw/0', 'TCP', 8080, true),
        ],
      },
      {
        name: "Should support a 'pass-egress' policy for TCP protocol at the specified port",
        changes: [swap('egress-tcp', 'egress', 3, 4)],
        probes: [
          probe('gryffindor/0', 'slytherin/0', 'TCP', 80, true),
          probe('gryffindor/1', 'slytherin/0', 'TCP', 8080, true),
        ],
      },
    ],
  },
  {
    test: 'CNPAdminTierEgressUDP (admin-network-policy-standard-egress-udp-rules.go)',
    manifests: ADMIN_EGRESS_UDP_RULES,
    steps: [
      {
        name: "Should support an 'allow-egress' policy for UDP protocol; ensure rule ordering is respected",
        probes: [
          probe('hufflepuff/0', 'ravenclaw/0', 'UDP', 53, true),
          probe('hufflepuff/1', 'ravenclaw/0', 'UDP', 5353, true),
        ],
      },
      {
        name: "Should support an 'allow-egress' policy for UDP protocol at the specified port",
        probes: [
          probe('hufflepuff/0', 'gryffindor/1', 'UDP', 53, true),
          probe('hufflepuff/1', 'gryffindor/1', 'UDP', 5353, false),
        ],
      },
      {
        name: "Should support an 'deny-egress' policy for UDP protocol; ensure rule ordering is respected",
        changes: [swap('egress-udp', 'egress', 0, 1)],
        probes: [
          probe('hufflepuff/0', 'ravenclaw/1', 'UDP', 53, false),
          probe('hufflepuff/1', 'ravenclaw/1', 'UDP', 5353, false),
        ],
      },
      {
        name: "Should support a 'deny-egress' policy for UDP protocol at the specified port",
        probes: [
          probe('hufflepuff/0', 'slytherin/0', 'UDP', 5353, false),
          probe('hufflepuff/1', 'slytherin/0', 'UDP', 53, true),
        ],
      },
      {
        name: "Should support an 'pass-egress' policy for UDP protocol; ensure rule ordering is respected",
        changes: [swap('egress-udp', 'egress', 0, 2)],
        probes: [
          probe('hufflepuff/0', 'ravenclaw/1', 'UDP', 5353, true),
          probe('hufflepuff/1', 'ravenclaw/1', 'UDP', 53, true),
        ],
      },
      {
        name: "Should support a 'pass-egress' policy for UDP protocol at the specified port",
        changes: [swap('egress-udp', 'egress', 3, 4)],
        probes: [
          probe('hufflepuff/0', 'slytherin/0', 'UDP', 5353, true),
          probe('hufflepuff/1', 'slytherin/0', 'UDP', 53, true),
        ],
      },
    ],
  },
  {
    test: 'CNPAdminTierGress (admin-network-policy-standard-gress-rules.go)',
    manifests: ADMIN_GRESS_RULES_COMBINED,
    steps: [
      {
        name: "Should support an 'allow-gress' policy across different protocols",
        probes: [
          probe('gryffindor/0', 'ravenclaw/0', 'TCP', 80, true),
          probe('gryffindor/1', 'ravenclaw/0', 'UDP', 53, true),
          probe('gryffindor/0', 'ravenclaw/0', 'SCTP', 9003, true),
          probe('ravenclaw/0', 'gryffindor/0', 'TCP', 80, true),
          probe('ravenclaw/1', 'gryffindor/0', 'UDP', 53, true),
          probe('ravenclaw/1', 'gryffindor/0', 'SCTP', 9003, true),
        ],
      },
      {
        name: "Should support an 'allow-gress' policy across different protocols at the specified ports",
        probes: [
          probe('gryffindor/0', 'hufflepuff/1', 'TCP', 8080, true),
          probe('gryffindor/1', 'hufflepuff/1', 'TCP', 80, false),
          probe('gryffindor/0', 'hufflepuff/1', 'UDP', 5353, true),
          probe('gryffindor/1', 'hufflepuff/1', 'UDP', 53, false),
          probe('gryffindor/0', 'hufflepuff/1', 'SCTP', 9003, true),
          probe('gryffindor/1', 'hufflepuff/1', 'SCTP', 9005, false),
          probe('hufflepuff/0', 'gryffindor/1', 'TCP', 80, true),
          probe('hufflepuff/1', 'gryffindor/1', 'TCP', 8080, false),
          probe('hufflepuff/0', 'gryffindor/1', 'UDP', 5353, true),
          probe('hufflepuff/1', 'gryffindor/1', 'UDP', 53, false),
          probe('hufflepuff/0', 'gryffindor/1', 'SCTP', 9003, true),
          probe('hufflepuff/1', 'gryffindor/1', 'SCTP', 9005, false),
        ],
      },
      {
        name: "Should support an 'deny-gress' policy across different protocols",
        changes: [swap('gress-rules', 'egress', 0, 1), swap('gress-rules', 'ingress', 0, 1)],
        probes: [
          probe('gryffindor/0', 'ravenclaw/1', 'TCP', 80, false),
          probe('gryffindor/1', 'ravenclaw/1', 'UDP', 53, false),
          probe('gryffindor/0', 'ravenclaw/1', 'SCTP', 9003, false),
          probe('ravenclaw/0', 'gryffindor/1', 'TCP', 80, false),
          probe('ravenclaw/1', 'gryffindor/1', 'UDP', 53, false),
          probe('ravenclaw/1', 'gryffindor/1', 'SCTP', 9003, false),
        ],
      },
      {
        name: "Should support a 'deny-gress' policy across different protocols at the specified ports",
        probes: [
          probe('gryffindor/0', 'slytherin/0', 'TCP', 80, false),
          probe('gryffindor/1', 'slytherin/0', 'TCP', 8080, true),
          probe('gryffindor/0', 'slytherin/0', 'UDP', 53, false),
          probe('gryffindor/1', 'slytherin/0', 'UDP', 5353, true),
          probe('gryffindor/0', 'slytherin/0', 'SCTP', 9003, false),
          probe('gryffindor/1', 'slytherin/0', 'SCTP', 9005, true),
          probe('slytherin/0', 'gryffindor/0', 'TCP', 80, false),
          probe('slytherin/1', 'gryffindor/0', 'TCP', 8080, true),
          probe('slytherin/0', 'gryffindor/0', 'UDP', 53, false),
          probe('slytherin/1', 'gryffindor/0', 'UDP', 5353, true),
          probe('slytherin/0', 'gryffindor/0', 'SCTP', 9003, false),
          probe('slytherin/1', 'gryffindor/0', 'SCTP', 9005, true),
        ],
      },
      {
        name: "Should support an 'pass-gress' policy across different protocols",
        changes: [swap('gress-rules', 'egress', 0, 2), swap('gress-rules', 'ingress', 0, 2)],
        probes: [
          probe('gryffindor/0', 'ravenclaw/0', 'TCP', 80, true),
          probe('gryffindor/0', 'ravenclaw/0', 'UDP', 5353, true),
          probe('gryffindor/0', 'ravenclaw/0', 'SCTP', 9003, true),
          probe('ravenclaw/0', 'gryffindor/0', 'TCP', 80, true),
          probe('ravenclaw/1', 'gryffindor/0', 'UDP', 53, true),
          probe('ravenclaw/1', 'gryffindor/0', 'SCTP', 9003, true),
        ],
      },
      {
        name: "Should support a 'pass-gress' policy across different protocols at the specified ports",
        changes: [swap('gress-rules', 'egress', 3, 4), swap('gress-rules', 'ingress', 3, 4)],
        probes: [
          probe('gryffindor/0', 'slytherin/0', 'TCP', 80, true),
          probe('gryffindor/1', 'slytherin/0', 'TCP', 8080, true),
          probe('gryffindor/0', 'slytherin/0', 'UDP', 53, true),
          probe('gryffindor/1', 'slytherin/0', 'UDP', 5353, true),
          probe('gryffindor/0', 'slytherin/0', 'SCTP', 9003, true),
          probe('gryffindor/1', 'slytherin/0', 'SCTP', 9005, true),
          probe('slytherin/0', 'gryffindor/0', 'TCP', 80, true),
          probe('slytherin/1', 'gryffindor/0', 'TCP', 8080, true),
          probe('slytherin/0', 'gryffindor/0', 'UDP', 53, true),
          probe('slytherin/1', 'gryffindor/0', 'UDP', 5353, true),
          probe('slytherin/0', 'gryffindor/0', 'SCTP', 9003, true),
          probe('slytherin/1', 'gryffindor/0', 'SCTP', 9005, true),
        ],
      },
    ],
  },
  {
    test: 'CNPAdminTierIngressSCTP (admin-network-policy-standard-ingress-sctp-rules.go)',
    manifests: ADMIN_INGRESS_SCTP_RULES,
    steps: [
      {
        name: "Should support an 'allow-ingress' policy for SCTP protocol; ensure rule ordering is respected",
        probes: [
          probe('gryffindor/0', 'ravenclaw/0', 'SCTP', 9003, true),
          probe('gryffindor/1', 'ravenclaw/0', 'SCTP', 9005, true),
        ],
      },
      {
        name: "Should support an 'allow-ingress' policy for SCTP protocol at the specified port",
        probes: [
          probe('hufflepuff/0', 'ravenclaw/1', 'SCTP', 9003, true),
          probe('hufflepuff/1', 'ravenclaw/1', 'SCTP', 9005, false),
        ],
      },
      {
        name: "Should support an 'deny-ingress' policy for SCTP protocol; ensure rule ordering is respected",
        changes: [swap('ingress-sctp', 'ingress', 0, 1)],
        probes: [
          probe('gryffindor/0', 'ravenclaw/1', 'SCTP', 9003, false),
          probe('gryffindor/1', 'ravenclaw/1', 'SCTP', 9005, false),
        ],
      },
      {
        name: "Should support a 'deny-ingress' policy for SCTP protocol at the specified port",
        probes: [
          probe('slytherin/0', 'ravenclaw/0', 'SCTP', 9003, false),
          probe('slytherin/1', 'ravenclaw/0', 'SCTP', 9005, true),
        ],
      },
      {
        name: "Should support an 'pass-ingress' policy for SCTP protocol; ensure rule ordering is respected",
        changes: [swap('ingress-sctp', 'ingress', 0, 2)],
        probes: [
          probe('gryffindor/0', 'ravenclaw/1', 'SCTP', 9003, true),
          probe('gryffindor/1', 'ravenclaw/1', 'SCTP', 9005, true),
        ],
      },
      {
        name: "Should support a 'pass-ingress' policy for SCTP protocol at the specified port",
        changes: [swap('ingress-sctp', 'ingress', 3, 4)],
        probes: [
          probe('slytherin/0', 'ravenclaw/0', 'SCTP', 9003, true),
          probe('slytherin/1', 'ravenclaw/0', 'SCTP', 9005, true),
        ],
      },
    ],
  },
  {
    test: 'CNPAdminTierIngressTCP (admin-network-policy-standard-ingress-tcp-rules.go)',
    manifests: ADMIN_INGRESS_TCP_RULES,
    steps: [
      {
        name: "Should support an 'allow-ingress' policy for TCP protocol; ensure rule ordering is respected",
        probes: [
          probe('ravenclaw/0', 'gryffindor/0', 'TCP', 80, true),
          probe('ravenclaw/1', 'gryffindor/0', 'TCP', 8080, true),
        ],
      },
      {
        name: "Should support an 'allow-ingress' policy for TCP protocol at the specified port",
        probes: [
          probe('hufflepuff/0', 'gryffindor/1', 'TCP', 80, true),
          probe('hufflepuff/1', 'gryffindor/1', 'TCP', 8080, false),
        ],
      },
      {
        name: "Should support an 'deny-ingress' policy for TCP protocol; ensure rule ordering is respected",
        changes: [swap('ingress-tcp', 'ingress', 0, 1)],
        probes: [
          probe('ravenclaw/0', 'gryffindor/1', 'TCP', 80, false),
          probe('ravenclaw/1', 'gryffindor/1', 'TCP', 8080, false),
        ],
      },
      {
        name: "Should support a 'deny-ingress' policy for TCP protocol at the specified port",
        probes: [
          probe('slytherin/0', 'gryffindor/0', 'TCP', 80, false),
          probe('slytherin/1', 'gryffindor/0', 'TCP', 8080, true),
        ],
      },
      {
        name: "Should support an 'pass-ingress' policy for TCP protocol; ensure rule ordering is respected",
        changes: [swap('ingress-tcp', 'ingress', 0, 2)],
        probes: [
          probe('ravenclaw/0', 'gryffindor/0', 'TCP', 80, true),
          probe('ravenclaw/1', 'gryffindor/0', 'TCP', 8080, true),
        ],
      },
      {
        name: "Should support a 'pass-ingress' policy for TCP protocol at the specified port",
        changes: [swap('ingress-tcp', 'ingress', 3, 4)],
        probes: [
          probe('slytherin/0', 'gryffindor/0', 'TCP', 80, true),
          probe('slytherin/1', 'gryffindor/0', 'TCP', 8080, true),
        ],
      },
    ],
  },
  {
    test: 'CNPAdminTierIngressUDP (admin-network-policy-standard-ingress-udp-rules.go)',
    manifests: ADMIN_INGRESS_UDP_RULES,
    steps: [
      {
        name: "Should support an 'allow-ingress' policy for UDP protocol; ensure rule ordering is respected",
        probes: [
          probe('ravenclaw/0', 'hufflepuff/0', 'UDP', 53, true),
          probe('ravenclaw/1', 'hufflepuff/0', 'UDP', 5353, true),
        ],
      },
      {
        name: "Should support an 'allow-ingress' policy for UDP protocol at the specified port",
        probes: [
          probe('gryffindor/0', 'hufflepuff/1', 'UDP', 53, true),
          probe('gryffindor/1', 'hufflepuff/1', 'UDP', 5353, false),
        ],
      },
      {
        name: "Should support an 'deny-ingress' policy for UDP protocol; ensure rule ordering is respected",
        changes: [swap('ingress-udp', 'ingress', 0, 1)],
        probes: [
          probe('ravenclaw/0', 'hufflepuff/1', 'UDP', 53, false),
          probe('ravenclaw/1', 'hufflepuff/1', 'UDP', 5353, false),
        ],
      },
      {
        name: "Should support a 'deny-ingress' policy for UDP protocol at the specified port",
        probes: [
          probe('slytherin/0', 'hufflepuff/0', 'UDP', 5353, false),
          probe('slytherin/1', 'hufflepuff/0', 'UDP', 53, true),
        ],
      },
      {
        name: "Should support an 'pass-ingress' policy for UDP protocol; ensure rule ordering is respected",
        changes: [swap('ingress-udp', 'ingress', 0, 2)],
        probes: [
          probe('ravenclaw/0', 'hufflepuff/1', 'UDP', 5353, true),
          probe('ravenclaw/1', 'hufflepuff/1', 'UDP', 53, true),
        ],
      },
      {
        name: "Should support a 'pass-ingress' policy for UDP protocol at the specified port",
        changes: [swap('ingress-udp', 'ingress', 3, 4)],
        probes: [
          probe('slytherin/0', 'hufflepuff/0', 'UDP', 5353, true),
          probe('slytherin/1', 'hufflepuff/0', 'UDP', 53, true),
        ],
      },
    ],
  },
  {
    test: 'CNPAdminTierIntegration (admin-network-policy-standard-integration.go)',
    manifests: INTEGRATION_ANP_NP_BANP,
    steps: [
      {
        name: 'Should Deny traffic from slytherin to gryffindor respecting admin CNP',
        probes: [
          probe('slytherin/0', 'gryffindor/0', 'TCP', 80, false),
          probe('slytherin/1', 'gryffindor/0', 'TCP', 8080, false),
        ],
      },
      {
        name: 'Should Deny traffic to slytherin from gryffindor respecting admin CNP',
        probes: [
          probe('gryffindor/0', 'slytherin/0', 'TCP', 80, false),
          probe('gryffindor/1', 'slytherin/0', 'TCP', 8080, false),
        ],
      },
      {
        name: "Should support a 'pass-ingress' policy for admin CNP and respect the match for network policy",
        changes: [setAction('pass-example', 'ingress', 0, 'Pass')],
        probes: [
          probe('slytherin/0', 'gryffindor/0', 'TCP', 80, true),
          probe('slytherin/1', 'gryffindor/0', 'TCP', 8080, true),
        ],
      },
      {
        name: "Should support a 'pass-egress' policy for admin CNP and respect the match for network policy",
        changes: [setAction('pass-example', 'egress', 0, 'Pass')],
        probes: [
          probe('gryffindor/0', 'slytherin/0', 'TCP', 80, true),
          probe('gryffindor/1', 'slytherin/0', 'TCP', 8080, true),
        ],
      },
      {
        name: "Should support a 'pass-ingress' policy for admin CNP and respect the match for baseline cluster network policy",
        changes: [deleteNetworkPolicy('allow-gress-from-to-slytherin-to-gryffindor')],
        probes: [
          probe('slytherin/0', 'gryffindor/0', 'TCP', 80, false),
          probe('slytherin/1', 'gryffindor/0', 'TCP', 8080, false),
        ],
      },
      {
        name: "Should support a 'pass-egress' policy for admin CNP and respect the match for baseline cluster network policy",
        probes: [
          probe('gryffindor/0', 'slytherin/0', 'TCP', 80, false),
          probe('gryffindor/1', 'slytherin/0', 'TCP', 8080, false),
        ],
      },
    ],
  },
  {
    test: 'CNPAdminTierPriorityField (admin-network-policy-standard-priority.go)',
    manifests: ADMIN_PRIORITY_FIELD,
    steps: [
      {
        name: 'Should Deny traffic from slytherin to gryffindor respecting admin CNP',
        probes: [
          probe('slytherin/0', 'gryffindor/0', 'TCP', 80, false),
          probe('slytherin/1', 'gryffindor/0', 'TCP', 8080, false),
        ],
      },
      {
        name: 'Should Deny traffic to slytherin from gryffindor respecting admin CNP',
        probes: [
          probe('gryffindor/0', 'slytherin/0', 'TCP', 80, false),
          probe('gryffindor/1', 'slytherin/0', 'TCP', 8080, false),
        ],
      },
      {
        name: 'Should respect admin CNP priority field; thus passing both ingress and egress traffic over to baseline CNP',
        changes: [setPriority('old-priority-60-new-priority-40-example', 40)],
        probes: [
          probe('slytherin/0', 'gryffindor/0', 'TCP', 80, true),
          probe('slytherin/1', 'gryffindor/0', 'TCP', 8080, true),
          probe('gryffindor/0', 'slytherin/0', 'TCP', 80, true),
          probe('gryffindor/1', 'slytherin/0', 'TCP', 8080, true),
        ],
      },
    ],
  },
  {
    test: 'CNPBaselineTierEgressInlineCIDRPeers (baseline-admin-network-policy-standard-egress-inline-cidr-rules.go)',
    manifests: BASELINE_EGRESS_INLINE_CIDR_RULES,
    steps: [
      {
        name: "Should support a 'deny-egress' rule policy for egress-cidr-peer",
        probes: [
          probe('gryffindor/1', 'ravenclaw/0', 'TCP', 80, false),
          probe('gryffindor/1', 'ravenclaw/0', 'UDP', 53, false),
          probe('gryffindor/1', 'ravenclaw/0', 'SCTP', 9003, false),
          probe('gryffindor/1', 'hufflepuff/0', 'TCP', 80, false),
          probe('gryffindor/1', 'hufflepuff/0', 'UDP', 53, false),
          probe('gryffindor/1', 'hufflepuff/0', 'SCTP', 9003, false),
          probe('gryffindor/1', 'slytherin/0', 'TCP', 80, true),
          probe('gryffindor/1', 'slytherin/0', 'UDP', 53, true),
          probe('gryffindor/1', 'slytherin/0', 'SCTP', 9003, true),
        ],
      },
      {
        name: "Should support an 'allow-egress' rule policy for egress-cidr-peer",
        changes: [prependPodIpRule('default', 'allow-egress-to-specific-podIPs', ['ravenclaw/0', 'hufflepuff/0'])],
        probes: [
          probe('gryffindor/1', 'ravenclaw/0', 'TCP', 80, true),
          probe('gryffindor/1', 'ravenclaw/0', 'UDP', 53, true),
          probe('gryffindor/1', 'ravenclaw/0', 'SCTP', 9003, true),
          probe('gryffindor/1', 'hufflepuff/0', 'TCP', 80, true),
          probe('gryffindor/1', 'hufflepuff/0', 'UDP', 53, true),
          probe('gryffindor/1', 'hufflepuff/0', 'SCTP', 9003, true),
          probe('gryffindor/1', 'ravenclaw/1', 'TCP', 80, false),
          probe('gryffindor/1', 'ravenclaw/1', 'UDP', 53, false),
          probe('gryffindor/1', 'ravenclaw/1', 'SCTP', 9003, false),
          probe('gryffindor/1', 'hufflepuff/1', 'TCP', 80, false),
          probe('gryffindor/1', 'hufflepuff/1', 'UDP', 53, false),
          probe('gryffindor/1', 'hufflepuff/1', 'SCTP', 9003, false),
        ],
      },
    ],
  },
  {
    test: 'CNPBaselineTierEgressSCTP (baseline-admin-network-policy-standard-egress-sctp-rules.go)',
    manifests: BASELINE_EGRESS_SCTP_RULES,
    steps: [
      {
        name: "Should support an 'allow-egress' policy for SCTP protocol; ensure rule ordering is respected",
        probes: [
          probe('ravenclaw/0', 'gryffindor/0', 'SCTP', 9003, true),
          probe('ravenclaw/1', 'gryffindor/0', 'SCTP', 9005, true),
        ],
      },
      {
        name: "Should support an 'allow-egress' policy for SCTP protocol at the specified port",
        probes: [
          probe('ravenclaw/0', 'hufflepuff/1', 'SCTP', 9003, true),
          probe('ravenclaw/1', 'hufflepuff/1', 'SCTP', 9005, false),
        ],
      },
      {
        name: "Should support an 'deny-egress' policy for SCTP protocol; ensure rule ordering is respected",
        changes: [swap('default', 'egress', 0, 1)],
        probes: [
          probe('ravenclaw/0', 'gryffindor/1', 'SCTP', 9003, false),
          probe('ravenclaw/1', 'gryffindor/1', 'SCTP', 9005, false),
        ],
      },
      {
        name: "Should support a 'deny-egress' policy for SCTP protocol at the specified port",
        probes: [
          probe('ravenclaw/0', 'slytherin/0', 'SCTP', 9003, false),
          probe('ravenclaw/1', 'slytherin/0', 'SCTP', 9005, true),
        ],
      },
    ],
  },
  {
    test: 'CNPBaselineTierEgressTCP (baseline-admin-network-policy-standard-egress-tcp-rules.go)',
    manifests: BASELINE_EGRESS_TCP_RULES,
    steps: [
      {
        name: "Should support an 'allow-egress' policy for TCP protocol; ensure rule ordering is respected",
        probes: [
          probe('gryffindor/0', 'ravenclaw/0', 'TCP', 80, true),
          probe('gryffindor/1', 'ravenclaw/0', 'TCP', 8080, true),
        ],
      },
      {
        name: "Should support an 'allow-egress' policy for TCP protocol at the specified port",
        probes: [
          probe('gryffindor/0', 'hufflepuff/1', 'TCP', 8080, true),
          probe('gryffindor/1', 'hufflepuff/1', 'TCP', 80, false),
        ],
      },
      {
        name: "Should support an 'deny-egress' policy for TCP protocol; ensure rule ordering is respected",
        changes: [swap('default', 'egress', 0, 1)],
        probes: [
          probe('gryffindor/0', 'ravenclaw/1', 'TCP', 80, false),
          probe('gryffindor/1', 'ravenclaw/1', 'TCP', 8080, false),
        ],
      },
      {
        name: "Should support a 'deny-egress' policy for TCP protocol at the specified port",
        probes: [
          probe('gryffindor/0', 'slytherin/0', 'TCP', 80, false),
          probe('gryffindor/1', 'slytherin/0', 'TCP', 8080, true),
        ],
      },
    ],
  },
  {
    test: 'CNPBaselineTierEgressUDP (baseline-admin-network-policy-standard-egress-udp-rules.go)',
    manifests: BASELINE_EGRESS_UDP_RULES,
    steps: [
      {
        name: "Should support an 'allow-egress' policy for UDP protocol; ensure rule ordering is respected",
        probes: [
          probe('hufflepuff/0', 'ravenclaw/0', 'UDP', 53, true),
          probe('hufflepuff/1', 'ravenclaw/0', 'UDP', 5353, true),
        ],
      },
      {
        name: "Should support an 'allow-egress' policy for UDP protocol at the specified port",
        probes: [
          probe('hufflepuff/0', 'gryffindor/1', 'UDP', 53, true),
          probe('hufflepuff/1', 'gryffindor/1', 'UDP', 5353, false),
        ],
      },
      {
        name: "Should support an 'deny-egress' policy for UDP protocol; ensure rule ordering is respected",
        changes: [swap('default', 'egress', 0, 1)],
        probes: [
          probe('hufflepuff/0', 'ravenclaw/1', 'UDP', 53, false),
          probe('hufflepuff/1', 'ravenclaw/1', 'UDP', 5353, false),
        ],
      },
      {
        name: "Should support a 'deny-egress' policy for UDP protocol at the specified port",
        probes: [
          probe('hufflepuff/0', 'slytherin/0', 'UDP', 5353, false),
          probe('hufflepuff/1', 'slytherin/0', 'UDP', 53, true),
        ],
      },
    ],
  },
  {
    test: 'CNPBaselineTierGress (baseline-admin-network-policy-standard-gress-rules.go)',
    manifests: BASELINE_GRESS_RULES_COMBINED,
    steps: [
      {
        name: "Should support an 'allow-gress' policy across different protocols",
        probes: [
          probe('gryffindor/0', 'ravenclaw/0', 'TCP', 80, true),
          probe('gryffindor/1', 'ravenclaw/0', 'UDP', 53, true),
          probe('gryffindor/0', 'ravenclaw/0', 'SCTP', 9003, true),
          probe('ravenclaw/0', 'gryffindor/0', 'TCP', 80, true),
          probe('ravenclaw/1', 'gryffindor/0', 'UDP', 53, true),
          probe('ravenclaw/1', 'gryffindor/0', 'SCTP', 9003, true),
        ],
      },
      {
        name: "Should support an 'allow-gress' policy across different protocols at the specified ports",
        probes: [
          probe('gryffindor/0', 'hufflepuff/1', 'TCP', 8080, true),
          probe('gryffindor/1', 'hufflepuff/1', 'TCP', 80, false),
          probe('gryffindor/0', 'hufflepuff/1', 'UDP', 5353, true),
          probe('gryffindor/1', 'hufflepuff/1', 'UDP', 53, false),
          probe('gryffindor/0', 'hufflepuff/1', 'SCTP', 9003, true),
          probe('gryffindor/1', 'hufflepuff/1', 'SCTP', 9005, false),
          probe('hufflepuff/0', 'gryffindor/1', 'TCP', 80, true),
          probe('hufflepuff/1', 'gryffindor/1', 'TCP', 8080, false),
          probe('hufflepuff/0', 'gryffindor/1', 'UDP', 5353, true),
          probe('hufflepuff/1', 'gryffindor/1', 'UDP', 53, false),
          probe('hufflepuff/0', 'gryffindor/1', 'SCTP', 9003, true),
          probe('hufflepuff/1', 'gryffindor/1', 'SCTP', 9005, false),
        ],
      },
      {
        name: "Should support an 'deny-gress' policy across different protocols",
        changes: [swap('default', 'egress', 0, 1), swap('default', 'ingress', 0, 1)],
        probes: [
          probe('gryffindor/0', 'ravenclaw/1', 'TCP', 80, false),
          probe('gryffindor/1', 'ravenclaw/1', 'UDP', 53, false),
          probe('gryffindor/0', 'ravenclaw/1', 'SCTP', 9003, false),
          probe('ravenclaw/0', 'gryffindor/1', 'TCP', 80, false),
          probe('ravenclaw/1', 'gryffindor/1', 'UDP', 53, false),
          probe('ravenclaw/1', 'gryffindor/1', 'SCTP', 9003, false),
        ],
      },
      {
        name: "Should support a 'deny-gress' policy across different protocols at the specified ports",
        probes: [
          probe('gryffindor/0', 'slytherin/0', 'TCP', 80, false),
          probe('gryffindor/1', 'slytherin/0', 'TCP', 8080, true),
          probe('gryffindor/0', 'slytherin/0', 'UDP', 53, false),
          probe('gryffindor/1', 'slytherin/0', 'UDP', 5353, true),
          probe('gryffindor/0', 'slytherin/0', 'SCTP', 9003, false),
          probe('gryffindor/1', 'slytherin/0', 'SCTP', 9005, true),
          probe('slytherin/0', 'gryffindor/0', 'TCP', 80, false),
          probe('slytherin/1', 'gryffindor/0', 'TCP', 8080, true),
          probe('slytherin/0', 'gryffindor/0', 'UDP', 53, false),
          probe('slytherin/1', 'gryffindor/0', 'UDP', 5353, true),
          probe('slytherin/0', 'gryffindor/0', 'SCTP', 9003, false),
          probe('slytherin/1', 'gryffindor/0', 'SCTP', 9005, true),
        ],
      },
    ],
  },
  {
    test: 'CNPBaselineTierIngressSCTP (baseline-admin-network-policy-standard-ingress-sctp-rules.go)',
    manifests: BASELINE_INGRESS_SCTP_RULES,
    steps: [
      {
        name: "Should support an 'allow-ingress' policy for SCTP protocol; ensure rule ordering is respected",
        probes: [
          probe('gryffindor/0', 'ravenclaw/0', 'SCTP', 9003, true),
          probe('gryffindor/1', 'ravenclaw/0', 'SCTP', 9005, true),
        ],
      },
      {
        name: "Should support an 'allow-ingress' policy for SCTP protocol at the specified port",
        probes: [
          probe('hufflepuff/0', 'ravenclaw/1', 'SCTP', 9003, true),
          probe('hufflepuff/1', 'ravenclaw/1', 'SCTP', 9005, false),
        ],
      },
      {
        name: "Should support an 'deny-ingress' policy for SCTP protocol; ensure rule ordering is respected",
        changes: [swap('default', 'ingress', 0, 1)],
        probes: [
          probe('gryffindor/0', 'ravenclaw/1', 'SCTP', 9003, false),
          probe('gryffindor/1', 'ravenclaw/1', 'SCTP', 9005, false),
        ],
      },
      {
        name: "Should support a 'deny-ingress' policy for SCTP protocol at the specified port",
        probes: [
          probe('slytherin/0', 'ravenclaw/0', 'SCTP', 9003, false),
          probe('slytherin/1', 'ravenclaw/0', 'SCTP', 9005, true),
        ],
      },
    ],
  },
  {
    test: 'CNPBaselineTierIngressTCP (baseline-admin-network-policy-standard-ingress-tcp-rules.go)',
    manifests: BASELINE_INGRESS_TCP_RULES,
    steps: [
      {
        name: "Should support an 'allow-ingress' policy for TCP protocol; ensure rule ordering is respected",
        probes: [
          probe('ravenclaw/0', 'gryffindor/0', 'TCP', 80, true),
          probe('ravenclaw/1', 'gryffindor/0', 'TCP', 8080, true),
        ],
      },
      {
        name: "Should support an 'allow-ingress' policy for TCP protocol at the specified port",
        probes: [
          probe('hufflepuff/0', 'gryffindor/1', 'TCP', 80, true),
          probe('hufflepuff/1', 'gryffindor/1', 'TCP', 8080, false),
        ],
      },
      {
        name: "Should support an 'deny-ingress' policy for TCP protocol; ensure rule ordering is respected",
        changes: [swap('default', 'ingress', 0, 1)],
        probes: [
          probe('ravenclaw/0', 'gryffindor/1', 'TCP', 80, false),
          probe('ravenclaw/1', 'gryffindor/1', 'TCP', 8080, false),
        ],
      },
      {
        name: "Should support a 'deny-ingress' policy for TCP protocol at the specified port",
        probes: [
          probe('slytherin/0', 'gryffindor/0', 'TCP', 80, false),
          probe('slytherin/1', 'gryffindor/0', 'TCP', 8080, true),
        ],
      },
    ],
  },
  {
    test: 'CNPBaselineTierIngressUDP (baseline-admin-network-policy-standard-ingress-udp-rules.go)',
    manifests: BASELINE_INGRESS_UDP_RULES,
    steps: [
      {
        name: "Should support an 'allow-ingress' policy for UDP protocol; ensure rule ordering is respected",
        probes: [
          probe('ravenclaw/0', 'hufflepuff/0', 'UDP', 53, true),
          probe('ravenclaw/1', 'hufflepuff/0', 'UDP', 5353, true),
        ],
      },
      {
        name: "Should support an 'allow-ingress' policy for UDP protocol at the specified port",
        probes: [
          probe('gryffindor/0', 'hufflepuff/1', 'UDP', 53, true),
          probe('gryffindor/1', 'hufflepuff/1', 'UDP', 5353, false),
        ],
      },
      {
        name: "Should support an 'deny-ingress' policy for UDP protocol; ensure rule ordering is respected",
        changes: [swap('default', 'ingress', 0, 1)],
        probes: [
          probe('ravenclaw/0', 'hufflepuff/1', 'UDP', 53, false),
          probe('ravenclaw/1', 'hufflepuff/1', 'UDP', 5353, false),
        ],
      },
      {
        name: "Should support a 'deny-ingress' policy for UDP protocol at the specified port",
        probes: [
          probe('slytherin/0', 'hufflepuff/0', 'UDP', 5353, false),
          probe('slytherin/1', 'hufflepuff/0', 'UDP', 53, true),
        ],
      },
    ],
  },
  {
    test: 'CNPAdminTierEgressNamedPort (admin-network-policy-experimental-egress-rules.go)',
    manifests: ADMIN_EGRESS_TCP_RULES,
    steps: [
      {
        name: "Should support an 'allow-egress' policy for named port",
        changes: [namedPort('egress-tcp', 'egress', 5, 'web')],
        probes: [
          probe('gryffindor/0', 'hufflepuff/1', 'TCP', 80, true),
          probe('gryffindor/1', 'hufflepuff/1', 'TCP', 8080, false),
        ],
      },
    ],
  },
  {
    test: 'CNPAdminTierEgressNodePeers (admin-network-policy-experimental-egress-rules.go)',
    manifests: ADMIN_EGRESS_SELECTOR_RULES,
    steps: [
      {
        name: "Should support an 'allow-egress' rule policy for egress-node-peer",
        probes: [probe('gryffindor/1', 'forbidden-forrest/1', 'TCP', HOST_PORTS[0], true)],
      },
      {
        name: "Should support a 'pass-egress' rule policy for egress-node-peer",
        probes: [probe('gryffindor/1', 'forbidden-forrest/1', 'UDP', HOST_PORTS[2], true)],
      },
      {
        name: "Should support a 'deny-egress' rule policy for egress-node-peer",
        probes: [
          probe('gryffindor/1', 'forbidden-forrest/1', 'TCP', HOST_PORTS[1], false),
          probe('gryffindor/1', 'forbidden-forrest/1', 'UDP', HOST_PORTS[4], false),
          probe('gryffindor/1', 'forbidden-forrest/1', 'SCTP', HOST_PORTS[6], false),
        ],
      },
    ],
  },
  {
    test: 'CNPAdminTierIngressNamedPort (admin-network-policy-experimental-ingress-rules.go)',
    manifests: ADMIN_INGRESS_UDP_RULES,
    steps: [
      {
        name: "Should support an 'allow-ingress' policy for named port",
        changes: [namedPort('ingress-udp', 'ingress', 5, 'dns')],
        probes: [
          probe('gryffindor/0', 'hufflepuff/1', 'UDP', 53, true),
          probe('gryffindor/1', 'hufflepuff/1', 'UDP', 5353, false),
        ],
      },
    ],
  },
  {
    test: 'CNPBaselineTierEgressNamedPort (baseline-admin-network-policy-experimental-egress-rules.go)',
    manifests: BASELINE_EGRESS_UDP_RULES,
    steps: [
      {
        name: "Should support an 'allow-egress' policy for named port",
        changes: [namedPort('default', 'egress', 3, 'dns')],
        probes: [
          probe('hufflepuff/0', 'gryffindor/1', 'UDP', 53, true),
          probe('hufflepuff/1', 'gryffindor/1', 'UDP', 5353, false),
        ],
      },
    ],
  },
  {
    test: 'CNPBaselineTierEgressNodePeers (baseline-admin-network-policy-experimental-egress-rules.go)',
    manifests: BASELINE_EGRESS_SELECTOR_RULES,
    steps: [
      {
        name: "Should support an 'allow-egress' rule policy for egress-node-peer",
        probes: [
          probe('gryffindor/0', 'forbidden-forrest/1', 'TCP', HOST_PORTS[0], true),
          probe('gryffindor/1', 'forbidden-forrest/1', 'TCP', HOST_PORTS[1], true),
        ],
      },
      {
        name: "Should support a 'deny-egress' rule policy for egress-node-peer",
        probes: [
          probe('gryffindor/1', 'forbidden-forrest/1', 'UDP', HOST_PORTS[4], false),
          probe('gryffindor/1', 'forbidden-forrest/1', 'SCTP', HOST_PORTS[6], false),
        ],
      },
    ],
  },
  {
    test: 'CNPBaselineTierIngressNamedPort (baseline-admin-network-policy-experimental-ingress-rules.go)',
    manifests: BASELINE_INGRESS_TCP_RULES,
    steps: [
      {
        name: "Should support an 'allow-ingress' policy for named port",
        changes: [namedPort('default', 'ingress', 3, 'web')],
        probes: [
          probe('hufflepuff/0', 'gryffindor/1', 'TCP', 80, true),
          probe('hufflepuff/1', 'gryffindor/1', 'TCP', 8080, false),
        ],
      },
    ],
  },
];
