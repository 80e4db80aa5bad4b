// Policies the API would never serve: each is reported with its name, where and why; its pods are
// still isolated by it (for its policyTypes); the broken rule allows nothing while the policy's valid
// rules still allow; nothing throws, whatever the spec holds.
import { describe, expect, it } from 'vitest';
import type { NetworkPolicyInfo } from '../../src/k8s/objects.ts';
import {
  compilePolicy,
  diffPolicy,
  evaluateNft,
  evaluatePolicy,
  nftView,
  renderPolicy,
} from '../../src/policy/index.ts';
import { namespace, pod, policy } from '../support/netpol.ts';

const NODE = 'n1';
const target = pod({
  namespace: 'x',
  name: 'target',
  labels: { app: 'web' },
  node: NODE,
  ips: ['10.1.0.1'],
  ports: [{ name: 'http', containerPort: 80, protocol: 'TCP' }],
});
const peerB = pod({ namespace: 'x', name: 'b', labels: { app: 'b' }, node: 'n2', ips: ['10.2.0.2'] });
const peerC = pod({ namespace: 'x', name: 'c', labels: { app: 'c' }, node: 'n2', ips: ['10.2.0.3'] });

function compile(policies: NetworkPolicyInfo[]) {
  const model = compilePolicy({
    nodeName: NODE,
    nodeAddresses: ['192.168.7.1'],
    namespaces: [namespace('x')],
    pods: [target, peerB, peerC],
    policies,
  });
  const table = renderPolicy(model);
  const allowed = (src: string, dport = 80, protocol: 'TCP' | 'UDP' = 'TCP') => {
    const pkt = { src, dst: '10.1.0.1', protocol, dport };
    const a = evaluatePolicy(model, pkt).allowed;
    expect(evaluateNft(nftView(table), pkt, model.nodeAddresses).allowed).toBe(a);
    return a;
  };
  // The rendered objects always make a valid transaction.
  diffPolicy(undefined, table);
  return { model, allowed };
}

/** A policy on the target: rule 0 is the bad one (allows from b), rule 1 is valid (allows from c). */
function withBadRule(badRule: Record<string, unknown>): NetworkPolicyInfo {
  return policy('x', 'bad', {
    podSelector: { matchLabels: { app: 'web' } },
    ingress: [badRule, { from: [{ podSelector: { matchLabels: { app: 'c' } } }] }],
  });
}

const fromB = (extra: Record<string, unknown> = {}) => ({
  from: [{ podSelector: { matchLabels: { app: 'b' } }, ...extra }],
});

const CASES: [string, Record<string, unknown>, RegExp][] = [
  [
    'malformed selector (matchLabels not a map)',
    { from: [{ podSelector: { matchLabels: ['app=b'] } }] },
    /matchLabels must be a map/,
  ],
  [
    'malformed selector (a label value that is no label value)',
    { from: [{ podSelector: { matchLabels: { app: 'b c' } } }] },
    /invalid label value/,
  ],
  [
    'unknown operator',
    { from: [{ podSelector: { matchExpressions: [{ key: 'app', operator: 'Gt', values: ['1'] }] } }] },
    /unknown operator "Gt"/,
  ],
  [
    'In with empty values',
    { from: [{ podSelector: { matchExpressions: [{ key: 'app', operator: 'In', values: [] }] } }] },
    /In needs at least one value/,
  ],
  [
    'Exists with values',
    { from: [{ podSelector: { matchExpressions: [{ key: 'app', operator: 'Exists', values: ['b'] }] } }] },
    /Exists takes no values/,
  ],
  ['port out of range', { ...fromB(), ports: [{ port: 70000 }] }, /not in 1-65535/],
  ['port zero', { ...fromB(), ports: [{ port: 0 }] }, /not in 1-65535/],
  ['endPort < port', { ...fromB(), ports: [{ port: 90, endPort: 80 }] }, /endPort 80 is less than port 90/],
  [
    'endPort with a named port',
    { ...fromB(), ports: [{ port: 'http', endPort: 90 }] },
    /endPort cannot be used with a named port/,
  ],
  ['endPort without a port', { ...fromB(), ports: [{ endPort: 90 }] }, /endPort needs a numeric port/],
  [
    'an invalid port name',
    { ...fromB(), ports: [{ port: 'HTTP_PORT' }] },
    /neither a port number nor a valid port name/,
  ],
  ['unknown protocol', { ...fromB(), ports: [{ protocol: 'ICMP', port: 80 }] }, /unknown protocol "ICMP"/],
  ['a CIDR that does not parse', { from: [{ ipBlock: { cidr: '10.2.0.300/24' } }] }, /is not a CIDR/],
  ['a CIDR without prefix', { from: [{ ipBlock: { cidr: '10.2.0.2' } }] }, /is not a CIDR/],
  [
    'an except not inside its cidr',
    { from: [{ ipBlock: { cidr: '10.2.0.0/16', except: ['10.3.0.0/24'] } }] },
    /not strictly inside/,
  ],
  [
    'an except equal to its cidr',
    { from: [{ ipBlock: { cidr: '10.2.0.0/16', except: ['10.2.0.0/16'] } }] },
    /not strictly inside/,
  ],
  [
    'an except of the other family',
    { from: [{ ipBlock: { cidr: '10.2.0.0/16', except: ['fd00::/64'] } }] },
    /not strictly inside/,
  ],
  ['a peer with no field', { from: [{}] }, /must set podSelector, namespaceSelector or ipBlock/],
  ['ipBlock with a selector', { from: [{ ipBlock: { cidr: '10.2.0.0/16' }, podSelector: {} }] }, /cannot be combined/],
  ['from that is not a list', { from: { podSelector: {} } }, /from must be a list/],
  ['a rule that is not an object', 'everything' as unknown as Record<string, unknown>, /a rule must be an object/],
];

describe('a broken rule allows nothing, the valid rules of its policy still allow, its pods stay isolated', () => {
  for (const [what, rule, message] of CASES) {
    it(what, () => {
      const { model, allowed } = compile([withBadRule(rule)]);
      expect(model.errors).toHaveLength(1);
      expect(model.errors[0]).toMatchObject({
        namespace: 'x',
        name: 'bad',
        path: expect.stringMatching(/^spec\.ingress\[0\]/),
      });
      expect(model.errors[0]?.message).toMatch(message);
      expect(model.errors[0]?.message).toMatch(/rule ingress\[0\] allows nothing/);
      expect(model.pods.find((p) => p.name === 'target')?.ingress?.isolatedBy).toEqual([
        { namespace: 'x', name: 'bad' },
      ]);
      expect(allowed('10.2.0.2')).toBe(false); // the broken rule's peer
      expect(allowed('10.2.0.3')).toBe(true); // the valid rule
      expect(allowed('203.0.113.1')).toBe(false);
    });
  }
});

describe('policy-level problems', () => {
  it('an invalid podSelector isolates every pod of its namespace and allows nothing', () => {
    const { model, allowed } = compile([
      policy('x', 'bad', { podSelector: { matchExpressions: [{ key: 'app', operator: 'Matches' }] }, ingress: [{}] }),
    ]);
    expect(model.errors[0]).toMatchObject({ name: 'bad', path: 'spec.podSelector.matchExpressions[0].operator' });
    expect(allowed('10.2.0.3')).toBe(false);
  });

  it('invalid policyTypes isolate both directions; the valid ingress rules still apply', () => {
    const { model, allowed } = compile([
      policy('x', 'bad', { podSelector: {}, policyTypes: ['Ingress', 'Sideways'], ingress: [{}] }),
    ]);
    expect(model.errors[0]).toMatchObject({ name: 'bad', path: 'spec.policyTypes' });
    expect(model.pods.every((p) => p.egress !== undefined && p.ingress !== undefined)).toBe(true);
    expect(allowed('10.2.0.3')).toBe(true);
    expect(evaluatePolicy(model, { src: '10.1.0.1', dst: '10.2.0.3', protocol: 'TCP', dport: 80 }).allowed).toBe(false);
  });

  it('an egress that is not a list isolates egress with no rules', () => {
    const { model } = compile([policy('x', 'bad', { podSelector: {}, egress: 'all' })]);
    expect(model.errors[0]).toMatchObject({ name: 'bad', path: 'spec.egress' });
    expect(evaluatePolicy(model, { src: '10.1.0.1', dst: '10.2.0.3', protocol: 'TCP', dport: 80 }).allowed).toBe(false);
  });

  it('a broken policy does not block the others', () => {
    const { model, allowed } = compile([
      policy('x', 'bad', { podSelector: { matchLabels: { app: 'web' } }, ingress: [{ from: [{}] }] }),
      policy('x', 'good', {
        podSelector: { matchLabels: { app: 'web' } },
        ingress: [{ from: [{ podSelector: { matchLabels: { app: 'b' } } }] }],
      }),
    ]);
    expect(model.errors.map((e) => e.name)).toEqual(['bad']);
    expect(allowed('10.2.0.2')).toBe(true);
    expect(allowed('10.2.0.3')).toBe(false);
  });

  it('never throws, whatever the spec holds', () => {
    const junk: unknown[] = [
      null,
      1,
      'x',
      [],
      {},
      [null],
      [{}],
      { a: 1 },
      [{ from: null, ports: null }],
      [{ from: [null] }],
      [{ ports: [{ port: -1 }] }],
      [{ ports: [{ port: 1.5 }] }],
      [{ to: [{ ipBlock: null }] }],
      [{ from: [{ ipBlock: { cidr: 5 } }] }],
      [{ from: [{ ipBlock: { cidr: '::/0', except: 'x' } }] }],
      [{ from: [{ namespaceSelector: { matchExpressions: [{ key: 7 }] } }] }],
      [{ from: [{ podSelector: { matchExpressions: 'x' } }] }],
    ];
    const specs: unknown[] = [null, 'spec', [], {}];
    for (const j of junk)
      specs.push({ podSelector: j }, { policyTypes: j }, { ingress: j }, { egress: j, policyTypes: ['Egress'] });
    for (const spec of specs) {
      expect(() =>
        compile([{ metadata: { name: 'junk', namespace: 'x' }, spec: spec as Record<string, unknown> }]),
      ).not.toThrow();
    }
  });
});
