// The single-step cases of netpol-semantics.md §5.1 (upstream e2e, E01–E48) and §5.2 (derived): one
// set of policies applied to the upstream model (§3: namespaces x, y, z labelled ns=<name>; pods a, b,
// c labelled pod=<name>; servers on 80 and 81), then one truth table. One definition per case, used
// by the unit test (fake nft, each case's own expectation below) and by the e2e on the simulated
// cluster (real packets, the table the spec oracle computes over the cluster's real objects).
// Multi-step cases (updates, label changes, deletions) stay inline in test/unit/policy-cases.test.ts.
import type { Protocol } from '../../src/policy/index.ts';
import { nameOf, nsOf } from './netpol.ts';

/** A NetworkPolicy as the API serves it. */
export interface RawPolicy {
  metadata: { name: string; namespace: string };
  spec: Record<string, unknown>;
}

export const rawPolicy = (namespace: string, name: string, spec: Record<string, unknown>): RawPolicy => ({
  metadata: { name, namespace },
  spec,
});

export const nsName = (...names: string[]) =>
  names.length === 1
    ? { matchLabels: { 'kubernetes.io/metadata.name': names[0] } }
    : { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: names }] };
export const nsNotIn = (...names: string[]) => ({
  matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: names }],
});
export const podIs = (name: string) => ({ matchLabels: { pod: name } });
export const podIn = (...names: string[]) => ({ matchExpressions: [{ key: 'pod', operator: 'In', values: names }] });
export const INGRESS = ['Ingress'];
export const EGRESS = ['Egress'];
export const BOTH = ['Ingress', 'Egress'];

/** "ns/name" → "ns/name" → allowed, for one probe. */
export type Allowed = (from: string, to: string) => boolean;
export const all: Allowed = () => true;
/** Everything is allowed except connections into `to` not from `except`. */
export const onlyInto =
  (to: (t: string) => boolean, except: (f: string) => boolean = () => false): Allowed =>
  (f, t) =>
    !to(t) || except(f);
export const onlyFrom =
  (from: (f: string) => boolean, except: (t: string) => boolean = () => false): Allowed =>
  (f, t) =>
    !from(f) || except(t);
export const is = (ref: string) => (r: string) => r === ref;
export const inNs = (ns: string) => (r: string) => nsOf(r) === ns;

export interface CaseProbe {
  protocol?: Protocol;
  port: number;
}

export const TCP80: CaseProbe = { port: 80 };
export const TCP81: CaseProbe = { port: 81 };

/** What a case's policies may depend on: the pods' addresses, for ipBlock cases. */
export interface CaseContext {
  ipOf(ref: string): string;
}

export interface UpstreamCase {
  id: string;
  title: string;
  policies(ctx: CaseContext): RawPolicy[];
  /** The unit test's expectation: the table each probe must give. */
  checks: { probe: CaseProbe; allowed: Allowed }[];
}

const single = (
  id: string,
  title: string,
  policies: RawPolicy[] | ((ctx: CaseContext) => RawPolicy[]),
  ...checks: [CaseProbe, Allowed][]
): UpstreamCase => ({
  id,
  title,
  policies: typeof policies === 'function' ? policies : () => policies,
  checks: checks.map(([probe, allowed]) => ({ probe, allowed })),
});

const p = rawPolicy;

function protocolCases(): UpstreamCase[] {
  const out: UpstreamCase[] = [];
  for (const [ids, protocol] of [
    [['E43', 'E44', 'E45'], 'UDP'],
    [['E46', 'E47', 'E48'], 'SCTP'],
  ] as const) {
    const [deny, ports, pair] = ids;
    out.push(
      single(
        deny,
        `[${protocol}] should support a 'default-deny-ingress' policy`,
        [p('x', 'deny', { podSelector: {}, policyTypes: INGRESS })],
        [{ protocol, port: 80 }, onlyInto(inNs('x'))],
      ),
      single(
        ports,
        `[${protocol}] should enforce policy based on Ports`,
        [
          p('x', 'p', {
            podSelector: podIs('a'),
            policyTypes: INGRESS,
            ingress: [{ from: [{ namespaceSelector: nsName('y') }], ports: [{ port: 81, protocol }] }],
          }),
        ],
        [{ protocol, port: 81 }, onlyInto(is('x/a'), inNs('y'))],
      ),
      single(
        pair,
        `[${protocol}] should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector`,
        [
          p('x', 'p', {
            podSelector: podIs('a'),
            policyTypes: INGRESS,
            ingress: [{ from: [{ namespaceSelector: nsName('y'), podSelector: podIs('a') }] }],
          }),
        ],
        [{ protocol, port: 80 }, onlyInto(is('x/a'), is('y/a'))],
      ),
    );
  }
  return out;
}

/** §5.1, the single-step ones (E15, E20–E22, E24, E31–E33, E36, E37 are multi-step). */
export const UPSTREAM_CASES: UpstreamCase[] = [
  single(
    'E01',
    "should support a 'default-deny-ingress' policy",
    [p('x', 'deny', { podSelector: {}, policyTypes: INGRESS })],
    [TCP80, onlyInto(inNs('x'))],
  ),
  single(
    'E02',
    "should support a 'default-deny-all' policy",
    [p('x', 'deny', { podSelector: {}, policyTypes: BOTH })],
    [TCP80, (f, t) => nsOf(f) !== 'x' && nsOf(t) !== 'x'],
  ),
  single(
    'E03',
    'should enforce policy to allow traffic from pods within server namespace based on PodSelector',
    [
      p('x', 'p', {
        podSelector: podIs('a'),
        policyTypes: INGRESS,
        ingress: [{ from: [{ podSelector: podIs('b') }] }],
      }),
    ],
    [TCP80, onlyInto(is('x/a'), is('x/b'))],
  ),
  single(
    'E04',
    'should enforce policy to allow ingress traffic for a target',
    [
      p('x', 'deny', { podSelector: {}, policyTypes: INGRESS }),
      p('x', 'allow-a', {
        podSelector: podIs('a'),
        policyTypes: INGRESS,
        ingress: [{ from: [{ podSelector: {}, namespaceSelector: {} }] }],
      }),
    ],
    [TCP80, onlyInto((t) => t === 'x/b' || t === 'x/c')],
  ),
  single(
    'E05',
    'should enforce policy to allow ingress traffic from pods in all namespaces',
    [p('x', 'p', { podSelector: podIs('a'), policyTypes: INGRESS, ingress: [{ from: [{ namespaceSelector: {} }] }] })],
    [TCP80, all],
  ),
  single(
    'E06',
    'should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector',
    [
      p('x', 'p', {
        podSelector: podIs('a'),
        policyTypes: INGRESS,
        ingress: [{ from: [{ namespaceSelector: nsName('y') }] }],
      }),
    ],
    [TCP80, onlyInto(is('x/a'), inNs('y'))],
  ),
  single(
    'E07',
    'should enforce policy based on PodSelector with MatchExpressions',
    [
      p('x', 'p', {
        podSelector: podIs('a'),
        policyTypes: INGRESS,
        ingress: [{ from: [{ podSelector: podIn('b') }] }],
      }),
    ],
    [TCP80, onlyInto(is('x/a'), is('x/b'))],
  ),
  single(
    'E08',
    'should enforce policy based on NamespaceSelector with MatchExpressions',
    [
      p('x', 'p', {
        podSelector: podIs('a'),
        policyTypes: INGRESS,
        ingress: [{ from: [{ namespaceSelector: nsName('y', 'y') }] }],
      }),
    ],
    [TCP80, onlyInto(is('x/a'), inNs('y'))],
  ),
  single(
    'E09',
    'should enforce policy based on PodSelector or NamespaceSelector',
    [
      p('x', 'p', {
        podSelector: podIs('a'),
        policyTypes: INGRESS,
        ingress: [{ from: [{ namespaceSelector: nsNotIn('x') }, { podSelector: podIs('b') }] }],
      }),
    ],
    [TCP80, onlyInto(is('x/a'), (f) => f !== 'x/c')],
  ),
  single(
    'E10',
    'should enforce policy based on PodSelector and NamespaceSelector',
    [
      p('x', 'p', {
        podSelector: podIs('a'),
        policyTypes: INGRESS,
        ingress: [{ from: [{ namespaceSelector: nsNotIn('x'), podSelector: podIs('b') }] }],
      }),
    ],
    [TCP80, onlyInto(is('x/a'), (f) => f === 'y/b' || f === 'z/b')],
  ),
  single(
    'E11',
    'should enforce policy based on Multiple PodSelectors and NamespaceSelectors',
    [
      p('x', 'p', {
        podSelector: podIs('a'),
        policyTypes: INGRESS,
        ingress: [{ from: [{ namespaceSelector: nsNotIn('x'), podSelector: podIn('b', 'c') }] }],
      }),
    ],
    [TCP80, onlyInto(is('x/a'), (f) => nsOf(f) !== 'x' && nameOf(f) !== 'a')],
  ),
  single(
    'E12',
    'should enforce policy based on any PodSelectors',
    [
      p('x', 'p', {
        podSelector: podIs('a'),
        policyTypes: INGRESS,
        ingress: [{ from: [{ podSelector: podIs('b') }, { podSelector: podIs('c') }] }],
      }),
    ],
    [TCP80, onlyInto(is('x/a'), (f) => f === 'x/b' || f === 'x/c')],
  ),
  single(
    'E13',
    'should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector',
    [
      p('x', 'p', {
        podSelector: podIs('a'),
        policyTypes: INGRESS,
        ingress: [{ from: [{ namespaceSelector: nsName('y'), podSelector: podIs('a') }] }],
      }),
    ],
    [TCP80, onlyInto(is('x/a'), is('y/a'))],
  ),
  single(
    'E14',
    'should enforce policy based on Ports',
    [
      p('x', 'p', {
        podSelector: podIs('a'),
        policyTypes: INGRESS,
        ingress: [{ from: [{ namespaceSelector: nsName('y') }], ports: [{ port: 81, protocol: 'TCP' }] }],
      }),
    ],
    [TCP81, onlyInto(is('x/a'), inNs('y'))],
  ),
  single(
    'E16',
    'should support allow-all policy',
    [p('x', 'p', { podSelector: {}, policyTypes: INGRESS, ingress: [{}] })],
    [TCP80, all],
    [TCP81, all],
  ),
  single(
    'E17',
    'should allow ingress access on one named port',
    [p('x', 'p', { podSelector: {}, policyTypes: INGRESS, ingress: [{ ports: [{ port: 'serve-81-tcp' }] }] })],
    [TCP81, all],
    [TCP80, onlyInto(inNs('x'))],
  ),
  single(
    'E18',
    'should allow ingress access from namespace on one named port',
    [
      p('x', 'p', {
        podSelector: podIs('a'),
        policyTypes: INGRESS,
        ingress: [{ from: [{ namespaceSelector: nsName('y') }], ports: [{ protocol: 'TCP', port: 'serve-80-tcp' }] }],
      }),
    ],
    [TCP80, onlyInto(is('x/a'), inNs('y'))],
    [TCP81, onlyInto(is('x/a'))],
  ),
  single(
    'E19',
    'should allow egress access on one named port',
    [p('x', 'p', { podSelector: {}, policyTypes: EGRESS, egress: [{ ports: [{ port: 'serve-80-tcp' }] }] })],
    [TCP80, all],
    [TCP81, onlyFrom(inNs('x'))],
  ),
  single(
    'E23',
    'should deny ingress from pods on other namespaces',
    [p('x', 'p', { podSelector: {}, policyTypes: INGRESS, ingress: [{ from: [{ podSelector: {} }] }] })],
    [TCP80, onlyInto(inNs('x'), inNs('x'))],
  ),
  single(
    'E25',
    'should deny egress from pods based on PodSelector',
    [p('x', 'p', { podSelector: podIs('a'), policyTypes: EGRESS })],
    [TCP80, onlyFrom(is('x/a'))],
  ),
  single(
    'E26',
    'should deny egress from all pods in a namespace',
    [p('x', 'p', { podSelector: {}, policyTypes: EGRESS })],
    [TCP80, onlyFrom(inNs('x'))],
  ),
  single(
    'E27',
    'should work with Ingress, Egress specified together',
    [
      p('x', 'p', {
        podSelector: podIs('a'),
        policyTypes: ['Egress', 'Ingress'],
        ingress: [{ from: [{ podSelector: podIs('b') }] }],
        egress: [{ ports: [{ port: 80, protocol: 'TCP' }] }],
      }),
    ],
    [TCP80, onlyInto(is('x/a'), is('x/b'))],
    [TCP81, (f, t) => onlyInto(is('x/a'), is('x/b'))(f, t) && f !== 'x/a'],
  ),
  single(
    'E28',
    'should enforce egress policy allowing traffic to a server in a different namespace based on PodSelector and NamespaceSelector (client-side denial even if the server allows)',
    [
      p('x', 'egress', {
        podSelector: podIs('a'),
        policyTypes: EGRESS,
        egress: [{ to: [{ namespaceSelector: nsName('y'), podSelector: podIs('a') }] }],
      }),
      p('y', 'allow-a', {
        podSelector: podIs('a'),
        policyTypes: INGRESS,
        ingress: [{ from: [{ namespaceSelector: nsName('x'), podSelector: podIs('a') }] }],
      }),
      p('y', 'allow-b', {
        podSelector: podIs('b'),
        policyTypes: INGRESS,
        ingress: [{ from: [{ namespaceSelector: nsName('x'), podSelector: podIs('a') }] }],
      }),
    ],
    [
      TCP80,
      (f, t) => {
        if (f === 'x/a') return t === 'y/a';
        if (t === 'y/a' || t === 'y/b') return false;
        return true;
      },
    ],
  ),
  single(
    'E29',
    'should enforce egress policy allowing traffic to a server in a different namespace based on PodSelector and NamespaceSelector',
    [
      p('x', 'p', {
        podSelector: podIs('a'),
        policyTypes: EGRESS,
        egress: [{ to: [{ namespaceSelector: nsName('y'), podSelector: podIs('a') }] }],
      }),
    ],
    [TCP80, onlyFrom(is('x/a'), is('y/a'))],
  ),
  single(
    'E30',
    'should enforce ingress policy allowing any port traffic to a server on a specific protocol',
    [p('x', 'p', { podSelector: podIs('a'), policyTypes: INGRESS, ingress: [{ ports: [{ protocol: 'TCP' }] }] })],
    [TCP80, all],
    [{ protocol: 'UDP', port: 80 }, onlyInto(is('x/a'))],
  ),
  single(
    'E34',
    'should allow egress access to server in CIDR block',
    (c) => [
      p('x', 'p', {
        podSelector: podIs('a'),
        policyTypes: EGRESS,
        egress: [{ to: [{ ipBlock: { cidr: `${c.ipOf('y/b')}/32` } }] }],
      }),
    ],
    [TCP80, onlyFrom(is('x/a'), is('y/b'))],
  ),
  single(
    'E35',
    'should enforce except clause while egress access to server in CIDR block',
    (c) => [
      p('x', 'p', {
        podSelector: podIs('a'),
        policyTypes: EGRESS,
        egress: [{ to: [{ ipBlock: { cidr: `${c.ipOf('x/a')}/4`, except: [`${c.ipOf('x/b')}/32`] } }] }],
      }),
    ],
    [TCP80, (f, t) => !(f === 'x/a' && t === 'x/b')],
  ),
  // E38/E39 differ from TCP only in SCTP: the TCP cells carry the point (SCTP is not TCP; an SCTP-only
  // policy still isolates), the unit test checks the SCTP rule itself too.
  single(
    'E38',
    "should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP', even if the port is the same",
    [
      p('x', 'deny', { podSelector: {}, policyTypes: INGRESS }),
      p('x', 'sctp', {
        podSelector: podIs('a'),
        policyTypes: INGRESS,
        ingress: [{ ports: [{ protocol: 'SCTP', port: 81 }] }],
      }),
    ],
    [TCP81, onlyInto(inNs('x'))],
    [{ protocol: 'SCTP', port: 81 }, onlyInto((t) => t === 'x/b' || t === 'x/c')],
  ),
  single(
    'E39',
    'should properly isolate pods that are selected by a policy allowing SCTP, even if the plugin does not support SCTP',
    [
      p('x', 'p', {
        podSelector: podIs('a'),
        policyTypes: INGRESS,
        ingress: [{ ports: [{ protocol: 'SCTP', port: 80 }] }],
      }),
    ],
    [TCP81, onlyInto(is('x/a'))],
  ),
  single(
    'E40',
    'should not allow access by TCP when a policy specifies only UDP',
    [
      p('x', 'p', {
        podSelector: podIs('a'),
        policyTypes: INGRESS,
        ingress: [{ ports: [{ protocol: 'UDP', port: 81 }] }],
      }),
    ],
    [TCP81, onlyInto(is('x/a'))],
    [{ protocol: 'UDP', port: 81 }, all],
  ),
  single(
    'E41',
    'should support policy based on NamespaceSelector with MatchLabels using default ns label',
    [
      p('x', 'p', {
        podSelector: podIs('a'),
        policyTypes: INGRESS,
        ingress: [{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'y' } } }] }],
      }),
    ],
    [TCP80, onlyInto(is('x/a'), inNs('y'))],
  ),
  single(
    'E42',
    'should support policy based on NamespaceSelector with MatchExpressions using default ns label',
    [
      p('x', 'p', {
        podSelector: podIs('a'),
        policyTypes: EGRESS,
        egress: [{ to: [{ namespaceSelector: nsNotIn('y') }] }],
      }),
    ],
    [TCP80, (f, t) => !(f === 'x/a' && nsOf(t) === 'y')],
  ),
  // E43–E45 (UDP) and E46–E48 (SCTP: on the sim the TCP/UDP cells, which these leave all open except
  // the default deny of E46 — the unit test judges the SCTP cells).
  ...protocolCases(),
];

/** §5.2, the single-step ones on pod-to-pod tables (D24, D25 are multi-step; D27–D30 are node and
 * host-network verdicts; D32 is IPv6). */
export const DERIVED_CASES: UpstreamCase[] = [
  single(
    'D01',
    'egress: [] without policyTypes isolates ingress only (R2)',
    [p('x', 'p', { podSelector: podIs('a'), egress: [] })],
    [TCP80, onlyInto(is('x/a'))],
  ),
  single(
    'D02',
    'egress: [{}] without policyTypes: ingress isolated, egress allowed (R2)',
    [p('x', 'p', { podSelector: podIs('a'), egress: [{}] })],
    [TCP80, onlyInto(is('x/a'))],
  ),
  single(
    'D03',
    'policyTypes [Egress] ignores the ingress section (R2/R3)',
    [
      p('x', 'p', {
        podSelector: podIs('a'),
        policyTypes: EGRESS,
        ingress: [{ from: [{ podSelector: podIs('b') }] }],
        egress: [{}],
      }),
    ],
    [TCP80, all],
  ),
  single(
    'D04',
    'from: [] matches every peer (R5)',
    [p('x', 'p', { podSelector: podIs('a'), ingress: [{ from: [], ports: [{ port: 80 }] }] })],
    [TCP80, all],
    [TCP81, onlyInto(is('x/a'))],
  ),
  single(
    'D05',
    'ports: [{}] is every TCP port only (R10)',
    [p('x', 'p', { podSelector: podIs('a'), ingress: [{ ports: [{}] }] })],
    [TCP80, all],
    [{ protocol: 'UDP', port: 80 }, onlyInto(is('x/a'))],
  ),
  single(
    'D06',
    'NotIn matches pods without the key (R7; cyclonus differs)',
    [
      p('x', 'p', {
        podSelector: podIs('a'),
        ingress: [
          { from: [{ podSelector: { matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['db'] }] } }] },
        ],
      }),
    ],
    [TCP80, onlyInto(is('x/a'), inNs('x'))],
  ),
  single(
    'D07',
    'DoesNotExist (R7)',
    [
      p('x', 'p', {
        podSelector: podIs('a'),
        ingress: [{ from: [{ podSelector: { matchExpressions: [{ key: 'tier', operator: 'DoesNotExist' }] } }] }],
      }),
    ],
    [TCP80, onlyInto(is('x/a'), inNs('x'))],
  ),
  single(
    'D08',
    'Exists with an empty namespaceSelector (R6/R7)',
    [
      p('x', 'p', {
        podSelector: podIs('a'),
        ingress: [
          {
            from: [{ podSelector: { matchExpressions: [{ key: 'pod', operator: 'Exists' }] }, namespaceSelector: {} }],
          },
        ],
      }),
    ],
    [TCP80, all],
  ),
  single(
    'D09',
    'podSelector within every namespace (R6)',
    [
      p('x', 'p', {
        podSelector: podIs('a'),
        ingress: [{ from: [{ podSelector: podIs('a'), namespaceSelector: {} }] }],
      }),
    ],
    [TCP80, onlyInto(is('x/a'), (f) => f === 'y/a' || f === 'z/a')],
  ),
  single(
    'D10',
    "a namespaceSelector can match the policy's own namespace (R6)",
    [p('x', 'p', { podSelector: podIs('a'), ingress: [{ from: [{ namespaceSelector: nsName('x') }] }] })],
    [TCP80, onlyInto(is('x/a'), inNs('x'))],
  ),
  single(
    'D11',
    "an egress podSelector without namespaceSelector means the policy's namespace (R6)",
    [p('x', 'p', { podSelector: podIs('a'), policyTypes: EGRESS, egress: [{ to: [{ podSelector: podIs('b') }] }] })],
    [TCP80, onlyFrom(is('x/a'), is('x/b'))],
  ),
  single(
    'D12',
    'endPort range 53-80 (R10)',
    [p('x', 'p', { podSelector: podIs('a'), ingress: [{ ports: [{ protocol: 'TCP', port: 53, endPort: 80 }] }] })],
    [TCP80, all],
    [TCP81, onlyInto(is('x/a'))],
  ),
  single(
    'D13',
    'endPort range 53-84 (R10)',
    [p('x', 'p', { podSelector: podIs('a'), ingress: [{ ports: [{ protocol: 'TCP', port: 53, endPort: 84 }] }] })],
    [TCP80, all],
    [TCP81, all],
  ),
  single(
    'D14',
    'a named port with the wrong protocol matches nothing (R10)',
    [p('x', 'p', { podSelector: podIs('a'), ingress: [{ ports: [{ protocol: 'TCP', port: 'serve-81-udp' }] }] })],
    [TCP81, onlyInto(is('x/a'))],
    [{ protocol: 'UDP', port: 81 }, onlyInto(is('x/a'))],
  ),
  single(
    'D15',
    'a named port nobody serves matches nothing (R10)',
    [p('x', 'p', { podSelector: podIs('a'), ingress: [{ ports: [{ protocol: 'TCP', port: 'serve-7981-udp' }] }] })],
    [TCP80, onlyInto(is('x/a'))],
  ),
  single(
    'D16',
    'a number and a name in one rule (R5/R10)',
    [p('x', 'p', { podSelector: podIs('a'), ingress: [{ ports: [{ port: 80 }, { port: 'serve-81-tcp' }] }] })],
    [TCP80, all],
    [TCP81, all],
  ),
  single(
    'D17',
    'each rule pairs its own peers and ports (R4/R5)',
    [
      p('x', 'p', {
        podSelector: podIs('a'),
        ingress: [
          { from: [{ podSelector: podIs('b') }], ports: [{ port: 80 }] },
          { from: [{ namespaceSelector: nsName('y') }], ports: [{ port: 81 }] },
        ],
      }),
    ],
    [TCP80, onlyInto(is('x/a'), is('x/b'))],
    [TCP81, onlyInto(is('x/a'), inNs('y'))],
  ),
  single(
    'D18',
    'a peer allowed on another port only (R5)',
    [
      p('x', 'p', {
        podSelector: podIs('a'),
        ingress: [{ from: [{ podSelector: podIs('b') }], ports: [{ port: 81 }] }],
      }),
    ],
    [TCP80, onlyInto(is('x/a'))],
    [TCP81, onlyInto(is('x/a'), is('x/b'))],
  ),
  single(
    'D19',
    "the source's egress denial wins over the destination's allow-all (R1)",
    [
      p('x', 'deny', { podSelector: podIs('a'), policyTypes: EGRESS }),
      p('y', 'all', { podSelector: podIs('b'), ingress: [{}] }),
    ],
    [TCP80, onlyFrom(is('x/a'))],
  ),
  single(
    'D20',
    'deny-all plus allow-all is allow-all (R4)',
    [p('x', 'deny', { podSelector: {}, policyTypes: INGRESS }), p('x', 'all', { podSelector: {}, ingress: [{}] })],
    [TCP80, all],
  ),
  single(
    'D21',
    'ipBlock 0.0.0.0/0 matches pod addresses (R9)',
    [
      p('x', 'p', {
        podSelector: podIs('a'),
        policyTypes: EGRESS,
        egress: [{ to: [{ ipBlock: { cidr: '0.0.0.0/0' } }] }],
      }),
    ],
    [TCP80, all],
  ),
  single(
    'D22',
    'ipBlock 0.0.0.0/31 matches no pod (R9)',
    [
      p('x', 'p', {
        podSelector: podIs('a'),
        policyTypes: EGRESS,
        egress: [{ to: [{ ipBlock: { cidr: '0.0.0.0/31' } }] }],
      }),
    ],
    [TCP80, onlyFrom(is('x/a'))],
  ),
  single(
    'D23',
    'an egress named port resolves on the destination pod an ipBlock matches (R9/R10)',
    (c) => [
      p('x', 'p', {
        podSelector: podIs('a'),
        policyTypes: EGRESS,
        egress: [{ to: [{ ipBlock: { cidr: `${c.ipOf('y/b')}/32` } }], ports: [{ port: 'serve-80-tcp' }] }],
      }),
    ],
    [TCP80, onlyFrom(is('x/a'), is('y/b'))],
    [TCP81, onlyFrom(is('x/a'))],
  ),
  // D26's unit test also checks that established/related is the first forward rule (R13); on real
  // packets, x/a's replies flow though its egress is denied.
  single(
    'D26',
    'replies flow despite an egress deny: established/related is accepted before any policy (R13)',
    [p('x', 'p', { podSelector: podIs('a'), policyTypes: BOTH, ingress: [{}] })],
    [TCP80, onlyFrom(is('x/a'))],
  ),
  single(
    'D31',
    'deny-all after a connection exists: new flows denied (existing flows: see the applier)',
    [p('x', 'deny', { podSelector: {}, policyTypes: BOTH })],
    [TCP80, (f, t) => nsOf(f) !== 'x' && nsOf(t) !== 'x'],
  ),
];
