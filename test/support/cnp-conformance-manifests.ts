// The manifests of the upstream ClusterNetworkPolicy conformance suite (network-policy-api v0.2.0,
// conformance/base) as data: every ClusterNetworkPolicy and NetworkPolicy as its manifest writes it,
// one constant per manifest file (several tests load the same one). The host-network ports the suite
// templates in are its defaults (34345 onward).

export type Json = Record<string, unknown>;

export interface CnpManifest {
  kind: 'ClusterNetworkPolicy';
  metadata: { name: string };
  spec: Json;
}

export interface NpManifest {
  kind: 'NetworkPolicy';
  metadata: { namespace: string; name: string };
  spec: Json;
}

export type Manifest = CnpManifest | NpManifest;

/** The ports the host-network pods serve: TCP, TCP, UDP, (UDP's http), UDP, (UDP's http), SCTP, SCTP. */
export const HOST_PORTS = [34345, 34346, 34347, 34348, 34349, 34350, 34351, 34352] as const;

export const houseNs = (house: string): string => `network-policy-conformance-${house}`;

const cnp = (name: string, spec: Json): CnpManifest => ({ kind: 'ClusterNetworkPolicy', metadata: { name }, spec });
const np = (house: string, name: string, spec: Json): NpManifest => ({
  kind: 'NetworkPolicy',
  metadata: { namespace: houseNs(house), name },
  spec,
});
/** Selects a house's namespace by its name label. */
const nsIs = (house: string): Json => ({ matchLabels: { 'kubernetes.io/metadata.name': houseNs(house) } });
/** Selects by the house label (namespaces and pods both carry it). */
const houseIs = (house: string): Json => ({ matchLabels: { 'conformance-house': house } });
const podsOf = (house: string): Json => ({ pods: { namespaceSelector: houseIs(house), podSelector: houseIs(house) } });
const linuxNodes: Json = { nodes: { matchLabels: { 'kubernetes.io/os': 'linux' } } };
const port = (protocol: 'TCP' | 'UDP' | 'SCTP', number: number): Json => ({
  [protocol.toLowerCase()]: { destinationPort: { number } },
});
const portRange = (protocol: 'TCP' | 'UDP' | 'SCTP', start: number, end: number): Json => ({
  [protocol.toLowerCase()]: { destinationPort: { range: { start, end } } },
});

export const ADMIN_EGRESS_SELECTOR_RULES: readonly Manifest[] = [
  cnp('node-and-cidr-as-peers-example', {
    tier: 'Admin',
    priority: 75,
    subject: podsOf('gryffindor'),
    egress: [
      {
        name: `allow-egress-to-${HOST_PORTS[0]}-on-nodes`,
        action: 'Accept',
        to: [linuxNodes],
        protocols: [port('TCP', HOST_PORTS[0])],
      },
      {
        name: `pass-egress-to-${HOST_PORTS[2]}-on-nodes`,
        action: 'Pass',
        to: [linuxNodes],
        protocols: [port('UDP', HOST_PORTS[2])],
      },
      {
        name: 'deny-egress-to-slytherin-and-nodes-and-internet',
        action: 'Deny',
        to: [podsOf('slytherin'), linuxNodes, { networks: ['0.0.0.0/0', '::/0'] }],
      },
    ],
  }),
];

export const ADMIN_EGRESS_INLINE_CIDR_RULES: readonly Manifest[] = [
  cnp('inline-cidr-as-peers-example', {
    tier: 'Admin',
    priority: 85,
    subject: podsOf('gryffindor'),
    egress: [
      { name: 'allow-egress-to-slytherin', action: 'Accept', to: [podsOf('slytherin')] },
      {
        name: 'deny-egress-to-internet',
        action: 'Deny',
        to: [{ networks: ['0.0.0.0/0', '::/0'] }],
      },
    ],
  }),
];

export const ADMIN_EGRESS_SCTP_RULES: readonly Manifest[] = [
  cnp('egress-sctp', {
    tier: 'Admin',
    priority: 8,
    subject: { namespaces: nsIs('ravenclaw') },
    egress: [
      {
        name: 'allow-to-gryffindor-everything',
        action: 'Accept',
        to: [{ namespaces: nsIs('gryffindor') }],
      },
      {
        name: 'deny-to-gryffindor-everything',
        action: 'Deny',
        to: [{ namespaces: nsIs('gryffindor') }],
      },
      {
        name: 'pass-to-gryffindor-everything',
        action: 'Pass',
        to: [{ namespaces: nsIs('gryffindor') }],
      },
      {
        name: 'deny-to-slytherin-at-port-9003',
        action: 'Deny',
        to: [{ namespaces: nsIs('slytherin') }],
        protocols: [port('SCTP', 9003)],
      },
      {
        name: 'pass-to-slytherin-at-port-9003',
        action: 'Pass',
        to: [{ namespaces: nsIs('slytherin') }],
        protocols: [port('SCTP', 9003)],
      },
      {
        name: 'allow-to-hufflepuff-at-port-9003',
        action: 'Accept',
        to: [{ namespaces: nsIs('hufflepuff') }],
        protocols: [port('SCTP', 9003)],
      },
      {
        name: 'deny-to-hufflepuff-everything-else',
        action: 'Deny',
        to: [{ namespaces: nsIs('hufflepuff') }],
      },
    ],
  }),
];

export const ADMIN_EGRESS_TCP_RULES: readonly Manifest[] = [
  cnp('egress-tcp', {
    tier: 'Admin',
    priority: 6,
    subject: { namespaces: nsIs('gryffindor') },
    egress: [
      {
        name: 'allow-to-ravenclaw-everything',
        action: 'Accept',
        to: [{ namespaces: nsIs('ravenclaw') }],
      },
      {
        name: 'deny-to-ravenclaw-everything',
        action: 'Deny',
        to: [{ namespaces: nsIs('ravenclaw') }],
      },
      {
        name: 'pass-to-ravenclaw-everything',
        action: 'Pass',
        to: [{ namespaces: nsIs('ravenclaw') }],
      },
      {
        name: 'deny-to-slytherin-at-port-80',
        action: 'Deny',
        to: [{ namespaces: nsIs('slytherin') }],
        protocols: [port('TCP', 80)],
      },
      {
        name: 'pass-to-slytherin-at-port-80',
        action: 'Pass',
        to: [{ namespaces: nsIs('slytherin') }],
        protocols: [port('TCP', 80)],
      },
      {
        name: 'allow-to-hufflepuff-at-port-8080',
        action: 'Accept',
        to: [{ namespaces: nsIs('hufflepuff') }],
        protocols: [port('TCP', 8080)],
      },
      {
        name: 'deny-to-hufflepuff-everything-else',
        action: 'Deny',
        to: [{ namespaces: nsIs('hufflepuff') }],
      },
    ],
  }),
];

export const ADMIN_EGRESS_UDP_RULES: readonly Manifest[] = [
  cnp('egress-udp', {
    tier: 'Admin',
    priority: 7,
    subject: { namespaces: nsIs('hufflepuff') },
    egress: [
      {
        name: 'allow-to-ravenclaw-everything',
        action: 'Accept',
        to: [{ namespaces: nsIs('ravenclaw') }],
      },
      {
        name: 'deny-to-ravenclaw-everything',
        action: 'Deny',
        to: [{ namespaces: nsIs('ravenclaw') }],
      },
      {
        name: 'pass-to-ravenclaw-everything',
        action: 'Pass',
        to: [{ namespaces: nsIs('ravenclaw') }],
      },
      {
        name: 'deny-to-slytherin-at-port-5353',
        action: 'Deny',
        to: [{ namespaces: nsIs('slytherin') }],
        protocols: [port('UDP', 5353)],
      },
      {
        name: 'pass-to-slytherin-at-port-5353',
        action: 'Pass',
        to: [{ namespaces: nsIs('slytherin') }],
        protocols: [port('UDP', 5353)],
      },
      {
        name: 'allow-to-gryffindor-at-port-53',
        action: 'Accept',
        to: [{ namespaces: nsIs('gryffindor') }],
        protocols: [port('UDP', 53)],
      },
      {
        name: 'deny-to-gryffindor-everything-else',
        action: 'Deny',
        to: [{ namespaces: nsIs('gryffindor') }],
      },
    ],
  }),
];

export const ADMIN_GRESS_RULES_COMBINED: readonly Manifest[] = [
  cnp('gress-rules', {
    tier: 'Admin',
    priority: 15,
    subject: { namespaces: nsIs('gryffindor') },
    egress: [
      {
        name: 'allow-to-ravenclaw-everything',
        action: 'Accept',
        to: [{ namespaces: nsIs('ravenclaw') }],
      },
      {
        name: 'deny-to-ravenclaw-everything',
        action: 'Deny',
        to: [{ namespaces: nsIs('ravenclaw') }],
      },
      {
        name: 'pass-to-ravenclaw-everything',
        action: 'Pass',
        to: [{ namespaces: nsIs('ravenclaw') }],
      },
      {
        name: 'deny-to-slytherin-at-ports-80-53-9003',
        action: 'Deny',
        to: [{ namespaces: nsIs('slytherin') }],
        protocols: [port('TCP', 80), port('UDP', 53), port('SCTP', 9003)],
      },
      {
        name: 'pass-to-slytherin-at-port-80-53-9003',
        action: 'Pass',
        to: [{ namespaces: nsIs('slytherin') }],
        protocols: [port('TCP', 80), port('UDP', 53), port('SCTP', 9003)],
      },
      {
        name: 'allow-to-hufflepuff-at-ports-8080-5353-9003',
        action: 'Accept',
        to: [{ namespaces: nsIs('hufflepuff') }],
        protocols: [port('TCP', 8080), port('UDP', 5353), port('SCTP', 9003)],
      },
      {
        name: 'deny-to-hufflepuff-everything-else',
        action: 'Deny',
        to: [{ namespaces: nsIs('hufflepuff') }],
      },
    ],
    ingress: [
      {
        name: 'allow-from-ravenclaw-everything',
        action: 'Accept',
        from: [{ namespaces: nsIs('ravenclaw') }],
      },
      {
        name: 'deny-from-ravenclaw-everything',
        action: 'Deny',
        from: [{ namespaces: nsIs('ravenclaw') }],
      },
      {
        name: 'pass-from-ravenclaw-everything',
        action: 'Pass',
        from: [{ namespaces: nsIs('ravenclaw') }],
      },
      {
        name: 'deny-from-slytherin-at-port-80-53-9003',
        action: 'Deny',
        from: [{ namespaces: nsIs('slytherin') }],
        protocols: [port('TCP', 80), port('UDP', 53), port('SCTP', 9003)],
      },
      {
        name: 'pass-from-slytherin-at-port-80-53-9003',
        action: 'Pass',
        from: [{ namespaces: nsIs('slytherin') }],
        protocols: [port('TCP', 80), port('UDP', 53), port('SCTP', 9003)],
      },
      {
        name: 'allow-from-hufflepuff-at-port-80-5353-9003',
        action: 'Accept',
        from: [{ namespaces: nsIs('hufflepuff') }],
        protocols: [port('TCP', 80), port('UDP', 5353), port('SCTP', 9003)],
      },
      {
        name: 'deny-from-hufflepuff-everything-else',
        action: 'Deny',
        from: [{ namespaces: nsIs('hufflepuff') }],
      },
    ],
  }),
];

export const ADMIN_INGRESS_SCTP_RULES: readonly Manifest[] = [
  cnp('ingress-sctp', {
    tier: 'Admin',
    priority: 5,
    subject: { namespaces: nsIs('ravenclaw') },
    ingress: [
      {
        name: 'allow-from-gryffindor-everything',
        action: 'Accept',
        from: [{ namespaces: nsIs('gryffindor') }],
      },
      {
        name: 'deny-from-gryffindor-everything',
        action: 'Deny',
        from: [{ namespaces: nsIs('gryffindor') }],
      },
      {
        name: 'pass-from-gryffindor-everything',
        action: 'Pass',
        from: [{ namespaces: nsIs('gryffindor') }],
      },
      {
        name: 'deny-from-slytherin-at-port-9003',
        action: 'Deny',
        from: [{ namespaces: nsIs('slytherin') }],
        protocols: [port('SCTP', 9003)],
      },
      {
        name: 'pass-from-slytherin-at-port-9003',
        action: 'Pass',
        from: [{ namespaces: nsIs('slytherin') }],
        protocols: [port('SCTP', 9003)],
      },
      {
        name: 'allow-from-hufflepuff-at-port-9003',
        action: 'Accept',
        from: [{ namespaces: nsIs('hufflepuff') }],
        protocols: [port('SCTP', 9003)],
      },
      {
        name: 'deny-from-hufflepuff-everything-else',
        action: 'Deny',
        from: [{ namespaces: nsIs('hufflepuff') }],
      },
    ],
  }),
];

export const ADMIN_INGRESS_TCP_RULES: readonly Manifest[] = [
  cnp('ingress-tcp', {
    tier: 'Admin',
    priority: 3,
    subject: { namespaces: nsIs('gryffindor') },
    ingress: [
      {
        name: 'allow-from-ravenclaw-everything',
        action: 'Accept',
        from: [{ namespaces: nsIs('ravenclaw') }],
      },
      {
        name: 'deny-from-ravenclaw-everything',
        action: 'Deny',
        from: [{ namespaces: nsIs('ravenclaw') }],
      },
      {
        name: 'pass-from-ravenclaw-everything',
        action: 'Pass',
        from: [{ namespaces: nsIs('ravenclaw') }],
      },
      {
        name: 'deny-from-slytherin-at-port-80',
        action: 'Deny',
        from: [{ namespaces: nsIs('slytherin') }],
        protocols: [port('TCP', 80)],
      },
      {
        name: 'pass-from-slytherin-at-port-80',
        action: 'Pass',
        from: [{ namespaces: nsIs('slytherin') }],
        protocols: [port('TCP', 80)],
      },
      {
        name: 'allow-from-hufflepuff-at-port-80',
        action: 'Accept',
        from: [{ namespaces: nsIs('hufflepuff') }],
        protocols: [port('TCP', 80)],
      },
      {
        name: 'deny-from-hufflepuff-everything-else',
        action: 'Deny',
        from: [{ namespaces: nsIs('hufflepuff') }],
      },
    ],
  }),
];

export const ADMIN_INGRESS_UDP_RULES: readonly Manifest[] = [
  cnp('ingress-udp', {
    tier: 'Admin',
    priority: 4,
    subject: { namespaces: nsIs('hufflepuff') },
    ingress: [
      {
        name: 'allow-from-ravenclaw-everything',
        action: 'Accept',
        from: [{ namespaces: nsIs('ravenclaw') }],
      },
      {
        name: 'deny-from-ravenclaw-everything',
        action: 'Deny',
        from: [{ namespaces: nsIs('ravenclaw') }],
      },
      {
        name: 'pass-from-ravenclaw-everything',
        action: 'Pass',
        from: [{ namespaces: nsIs('ravenclaw') }],
      },
      {
        name: 'deny-from-slytherin-at-port-5353',
        action: 'Deny',
        from: [{ namespaces: nsIs('slytherin') }],
        protocols: [port('UDP', 5353)],
      },
      {
        name: 'pass-from-slytherin-at-port-5353',
        action: 'Pass',
        from: [{ namespaces: nsIs('slytherin') }],
        protocols: [port('UDP', 5353)],
      },
      {
        name: 'allow-from-gryffindor-at-port-53',
        action: 'Accept',
        from: [{ namespaces: nsIs('gryffindor') }],
        protocols: [port('UDP', 53)],
      },
      {
        name: 'deny-from-gryffindor-everything-else',
        action: 'Deny',
        from: [{ namespaces: nsIs('gryffindor') }],
      },
    ],
  }),
];

export const ADMIN_PRIORITY_FIELD: readonly Manifest[] = [
  cnp('priority-50-example', {
    tier: 'Admin',
    priority: 50,
    subject: podsOf('gryffindor'),
    ingress: [{ name: 'deny-all-ingress-from-slytherin', action: 'Deny', from: [podsOf('slytherin')] }],
    egress: [{ name: 'deny-all-egress-to-slytherin', action: 'Deny', to: [podsOf('slytherin')] }],
  }),
  cnp('old-priority-60-new-priority-40-example', {
    tier: 'Admin',
    priority: 60,
    subject: podsOf('gryffindor'),
    ingress: [{ name: 'pass-all-ingress-from-slytherin', action: 'Pass', from: [podsOf('slytherin')] }],
    egress: [{ name: 'pass-all-egress-to-slytherin', action: 'Pass', to: [podsOf('slytherin')] }],
  }),
  cnp('default', {
    tier: 'Baseline',
    priority: 10,
    subject: podsOf('gryffindor'),
    ingress: [{ name: 'allow-all-ingress-from-slytherin', action: 'Accept', from: [podsOf('slytherin')] }],
    egress: [{ name: 'allow-all-egress-to-slytherin', action: 'Accept', to: [podsOf('slytherin')] }],
  }),
];

export const INTEGRATION_ANP_NP_BANP: readonly Manifest[] = [
  cnp('pass-example', {
    tier: 'Admin',
    priority: 10,
    subject: { namespaces: houseIs('gryffindor') },
    ingress: [
      {
        name: 'deny-all-ingress-from-slytherin',
        action: 'Deny',
        from: [{ namespaces: houseIs('slytherin') }],
      },
    ],
    egress: [
      {
        name: 'deny-all-egress-to-slytherin',
        action: 'Deny',
        to: [{ namespaces: houseIs('slytherin') }],
      },
    ],
  }),
  np('gryffindor', 'allow-gress-from-to-slytherin-to-gryffindor', {
    podSelector: {},
    policyTypes: ['Ingress', 'Egress'],
    ingress: [{ from: [{ namespaceSelector: houseIs('slytherin') }] }],
    egress: [{ to: [{ namespaceSelector: houseIs('slytherin') }] }],
  }),
  cnp('default', {
    tier: 'Baseline',
    priority: 10,
    subject: { namespaces: houseIs('gryffindor') },
    ingress: [
      {
        name: 'deny-all-ingress-from-slytherin',
        action: 'Deny',
        from: [{ namespaces: houseIs('slytherin') }],
      },
    ],
    egress: [
      {
        name: 'deny-all-egress-to-slytherin',
        action: 'Deny',
        to: [{ namespaces: houseIs('slytherin') }],
      },
    ],
  }),
];

export const BASELINE_EGRESS_SELECTOR_RULES: readonly Manifest[] = [
  cnp('default', {
    tier: 'Baseline',
    priority: 10,
    subject: { namespaces: nsIs('gryffindor') },
    egress: [
      {
        name: `allow-egress-to-${HOST_PORTS[0]}-on-nodes`,
        action: 'Accept',
        to: [linuxNodes],
        protocols: [portRange('TCP', HOST_PORTS[0], HOST_PORTS[1])],
      },
      {
        name: 'deny-egress-to-nodes-and-internet',
        action: 'Deny',
        to: [linuxNodes, { networks: ['0.0.0.0/0', '::/0'] }],
      },
    ],
  }),
];

export const BASELINE_EGRESS_INLINE_CIDR_RULES: readonly Manifest[] = [
  cnp('default', {
    tier: 'Baseline',
    priority: 10,
    subject: { namespaces: nsIs('gryffindor') },
    egress: [
      { name: 'allow-egress-to-slytherin', action: 'Accept', to: [podsOf('slytherin')] },
      {
        name: 'deny-egress-to-internet',
        action: 'Deny',
        to: [{ networks: ['0.0.0.0/0', '::/0'] }],
      },
    ],
  }),
];

export const BASELINE_EGRESS_SCTP_RULES: readonly Manifest[] = [
  cnp('default', {
    tier: 'Baseline',
    priority: 10,
    subject: { namespaces: nsIs('ravenclaw') },
    egress: [
      {
        name: 'allow-to-gryffindor-everything',
        action: 'Accept',
        to: [{ namespaces: nsIs('gryffindor') }],
      },
      {
        name: 'deny-to-gryffindor-everything',
        action: 'Deny',
        to: [{ namespaces: nsIs('gryffindor') }],
      },
      {
        name: 'deny-to-slytherin-at-port-9003',
        action: 'Deny',
        to: [{ namespaces: nsIs('slytherin') }],
        protocols: [port('SCTP', 9003)],
      },
      {
        name: 'allow-to-hufflepuff-at-port-9003',
        action: 'Accept',
        to: [{ namespaces: nsIs('hufflepuff') }],
        protocols: [port('SCTP', 9003)],
      },
      {
        name: 'deny-to-hufflepuff-everything-else',
        action: 'Deny',
        to: [{ namespaces: nsIs('hufflepuff') }],
      },
    ],
  }),
];

export const BASELINE_EGRESS_TCP_RULES: readonly Manifest[] = [
  cnp('default', {
    tier: 'Baseline',
    priority: 10,
    subject: { namespaces: nsIs('gryffindor') },
    egress: [
      {
        name: 'allow-to-ravenclaw-everything',
        action: 'Accept',
        to: [{ namespaces: nsIs('ravenclaw') }],
      },
      {
        name: 'deny-to-ravenclaw-everything',
        action: 'Deny',
        to: [{ namespaces: nsIs('ravenclaw') }],
      },
      {
        name: 'deny-to-slytherin-at-port-80',
        action: 'Deny',
        to: [{ namespaces: nsIs('slytherin') }],
        protocols: [port('TCP', 80)],
      },
      {
        name: 'allow-to-hufflepuff-at-port-8080',
        action: 'Accept',
        to: [{ namespaces: nsIs('hufflepuff') }],
        protocols: [port('TCP', 8080)],
      },
      {
        name: 'deny-to-hufflepuff-everything-else',
        action: 'Deny',
        to: [{ namespaces: nsIs('hufflepuff') }],
      },
    ],
  }),
];

export const BASELINE_EGRESS_UDP_RULES: readonly Manifest[] = [
  cnp('default', {
    tier: 'Baseline',
    priority: 10,
    subject: { namespaces: nsIs('hufflepuff') },
    egress: [
      {
        name: 'allow-to-ravenclaw-everything',
        action: 'Accept',
        to: [{ namespaces: nsIs('ravenclaw') }],
      },
      {
        name: 'deny-to-ravenclaw-everything',
        action: 'Deny',
        to: [{ namespaces: nsIs('ravenclaw') }],
      },
      {
        name: 'deny-to-slytherin-at-port-5353',
        action: 'Deny',
        to: [{ namespaces: nsIs('slytherin') }],
        protocols: [port('UDP', 5353)],
      },
      {
        name: 'allow-to-gryffindor-at-port-53',
        action: 'Accept',
        to: [{ namespaces: nsIs('gryffindor') }],
        protocols: [port('UDP', 53)],
      },
      {
        name: 'deny-to-gryffindor-everything-else',
        action: 'Deny',
        to: [{ namespaces: nsIs('gryffindor') }],
      },
    ],
  }),
];

export const BASELINE_GRESS_RULES_COMBINED: readonly Manifest[] = [
  cnp('default', {
    tier: 'Baseline',
    priority: 10,
    subject: { namespaces: nsIs('gryffindor') },
    egress: [
      {
        name: 'allow-to-ravenclaw-everything',
        action: 'Accept',
        to: [{ namespaces: nsIs('ravenclaw') }],
      },
      {
        name: 'deny-to-ravenclaw-everything',
        action: 'Deny',
        to: [{ namespaces: nsIs('ravenclaw') }],
      },
      {
        name: 'deny-to-slytherin-at-ports-80-53-9003',
        action: 'Deny',
        to: [{ namespaces: nsIs('slytherin') }],
        protocols: [port('TCP', 80), port('UDP', 53), port('SCTP', 9003)],
      },
      {
        name: 'allow-to-hufflepuff-at-ports-8080-5353',
        action: 'Accept',
        to: [{ namespaces: nsIs('hufflepuff') }],
        protocols: [port('TCP', 8080), port('UDP', 5353), port('SCTP', 9003)],
      },
      {
        name: 'deny-to-hufflepuff-everything-else',
        action: 'Deny',
        to: [{ namespaces: nsIs('hufflepuff') }],
      },
    ],
    ingress: [
      {
        name: 'allow-from-ravenclaw-everything',
        action: 'Accept',
        from: [{ namespaces: nsIs('ravenclaw') }],
      },
      {
        name: 'deny-from-ravenclaw-everything',
        action: 'Deny',
        from: [{ namespaces: nsIs('ravenclaw') }],
      },
      {
        name: 'deny-from-slytherin-at-port-80-53-9003',
        action: 'Deny',
        from: [{ namespaces: nsIs('slytherin') }],
        protocols: [port('TCP', 80), port('UDP', 53), port('SCTP', 9003)],
      },
      {
        name: 'allow-from-hufflepuff-at-port-80-5353-9003',
        action: 'Accept',
        from: [{ namespaces: nsIs('hufflepuff') }],
        protocols: [port('TCP', 80), port('UDP', 5353), port('SCTP', 9003)],
      },
      {
        name: 'deny-from-hufflepuff-everything-else',
        action: 'Deny',
        from: [{ namespaces: nsIs('hufflepuff') }],
      },
    ],
  }),
];

export const BASELINE_INGRESS_SCTP_RULES: readonly Manifest[] = [
  cnp('default', {
    tier: 'Baseline',
    priority: 10,
    subject: { namespaces: nsIs('ravenclaw') },
    ingress: [
      {
        name: 'allow-from-gryffindor-everything',
        action: 'Accept',
        from: [{ namespaces: nsIs('gryffindor') }],
      },
      {
        name: 'deny-from-gryffindor-everything',
        action: 'Deny',
        from: [{ namespaces: nsIs('gryffindor') }],
      },
      {
        name: 'deny-from-slytherin-at-port-9003',
        action: 'Deny',
        from: [{ namespaces: nsIs('slytherin') }],
        protocols: [port('SCTP', 9003)],
      },
      {
        name: 'allow-from-hufflepuff-at-port-9003',
        action: 'Accept',
        from: [{ namespaces: nsIs('hufflepuff') }],
        protocols: [port('SCTP', 9003)],
      },
      {
        name: 'deny-from-hufflepuff-everything-else',
        action: 'Deny',
        from: [{ namespaces: nsIs('hufflepuff') }],
      },
    ],
  }),
];

export const BASELINE_INGRESS_TCP_RULES: readonly Manifest[] = [
  cnp('default', {
    tier: 'Baseline',
    priority: 10,
    subject: { namespaces: nsIs('gryffindor') },
    ingress: [
      {
        name: 'allow-from-ravenclaw-everything',
        action: 'Accept',
        from: [{ namespaces: nsIs('ravenclaw') }],
      },
      {
        name: 'deny-from-ravenclaw-everything',
        action: 'Deny',
        from: [{ namespaces: nsIs('ravenclaw') }],
      },
      {
        name: 'deny-from-slytherin-at-port-80',
        action: 'Deny',
        from: [{ namespaces: nsIs('slytherin') }],
        protocols: [port('TCP', 80)],
      },
      {
        name: 'allow-from-hufflepuff-at-port-80',
        action: 'Accept',
        from: [{ namespaces: nsIs('hufflepuff') }],
        protocols: [port('TCP', 80)],
      },
      {
        name: 'deny-from-hufflepuff-everything-else',
        action: 'Deny',
        from: [{ namespaces: nsIs('hufflepuff') }],
      },
    ],
  }),
];

export const BASELINE_INGRESS_UDP_RULES: readonly Manifest[] = [
  cnp('default', {
    tier: 'Baseline',
    priority: 10,
    subject: { namespaces: nsIs('hufflepuff') },
    ingress: [
      {
        name: 'allow-from-ravenclaw-everything',
        action: 'Accept',
        from: [{ namespaces: nsIs('ravenclaw') }],
      },
      {
        name: 'deny-from-ravenclaw-everything',
        action: 'Deny',
        from: [{ namespaces: nsIs('ravenclaw') }],
      },
      {
        name: 'deny-from-slytherin-at-port-5353',
        action: 'Deny',
        from: [{ namespaces: nsIs('slytherin') }],
        protocols: [port('UDP', 5353)],
      },
      {
        name: 'allow-from-gryffindor-at-port-53',
        action: 'Accept',
        from: [{ namespaces: nsIs('gryffindor') }],
        protocols: [port('UDP', 53)],
      },
      {
        name: 'deny-from-gryffindor-everything-else',
        action: 'Deny',
        from: [{ namespaces: nsIs('gryffindor') }],
      },
    ],
  }),
];
