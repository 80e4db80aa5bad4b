// Every case of netpol-semantics.md §5.1 (upstream e2e, E01–E48) and §5.2 (derived, D01–D32) on the
// upstream model (namespaces x, y, z; pods a, b, c spread over three nodes; servers on 80 and 81 for
// TCP, UDP and SCTP). Each node compiles its own policy and applies the difference to a fake nft;
// every cell of the truth table is judged from the compiled model and from the nft objects, which
// must agree (support/netpol.ts), and the table must be the expected one. Multi-step cases apply
// their updates as diffs, so the diffs are checked too.
import { describe, expect, it } from 'vitest';
import { FORWARD_CHAIN } from '../../src/policy/model.ts';
import {
  differences,
  expected,
  nameOf,
  NODE_IPS,
  nsOf,
  pod,
  policy,
  servePorts,
  SimCluster,
  upstreamPods,
  type Probe,
} from '../support/netpol.ts';

const nsName = (...names: string[]) => (names.length === 1 ? { matchLabels: { 'kubernetes.io/metadata.name': names[0] } } : { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: names }] });
const nsNotIn = (...names: string[]) => ({ matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: names }] });
const podIs = (name: string) => ({ matchLabels: { pod: name } });
const podIn = (...names: string[]) => ({ matchExpressions: [{ key: 'pod', operator: 'In', values: names }] });
const INGRESS = ['Ingress'];
const EGRESS = ['Egress'];
const BOTH = ['Ingress', 'Egress'];

type Allowed = (from: string, to: string) => boolean;
const all: Allowed = () => true;
/** Everything is allowed except connections into `to` not from `except`. */
const onlyInto = (to: (t: string) => boolean, except: (f: string) => boolean = () => false): Allowed => (f, t) => !to(t) || except(f);
const onlyFrom = (from: (f: string) => boolean, except: (t: string) => boolean = () => false): Allowed => (f, t) => !from(f) || except(t);
const is = (ref: string) => (r: string) => r === ref;
const inNs = (ns: string) => (r: string) => nsOf(r) === ns;

async function cluster(policies: ReturnType<typeof policy>[], pods = upstreamPods()): Promise<SimCluster> {
  const c = new SimCluster({ pods, policies });
  await c.sync();
  return c;
}

function expectTable(c: SimCluster, probe: Probe, allowed: Allowed): void {
  expect(differences(c.reachability(probe), expected(c, allowed))).toEqual([]);
}

const TCP80 = { port: 80 };
const TCP81 = { port: 81 };

describe('§5.1 upstream e2e cases', () => {
  it("E01 should support a 'default-deny-ingress' policy", async () => {
    const c = await cluster([policy('x', 'deny', { podSelector: {}, policyTypes: INGRESS })]);
    expectTable(c, TCP80, onlyInto(inNs('x')));
  });

  it("E02 should support a 'default-deny-all' policy", async () => {
    const c = await cluster([policy('x', 'deny', { podSelector: {}, policyTypes: BOTH })]);
    expectTable(c, TCP80, (f, t) => nsOf(f) !== 'x' && nsOf(t) !== 'x');
  });

  it('E03 should enforce policy to allow traffic from pods within server namespace based on PodSelector', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), policyTypes: INGRESS, ingress: [{ from: [{ podSelector: podIs('b') }] }] })]);
    expectTable(c, TCP80, onlyInto(is('x/a'), is('x/b')));
  });

  it('E04 should enforce policy to allow ingress traffic for a target', async () => {
    const c = await cluster([
      policy('x', 'deny', { podSelector: {}, policyTypes: INGRESS }),
      policy('x', 'allow-a', { podSelector: podIs('a'), policyTypes: INGRESS, ingress: [{ from: [{ podSelector: {}, namespaceSelector: {} }] }] }),
    ]);
    expectTable(c, TCP80, onlyInto((t) => t === 'x/b' || t === 'x/c'));
  });

  it('E05 should enforce policy to allow ingress traffic from pods in all namespaces', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), policyTypes: INGRESS, ingress: [{ from: [{ namespaceSelector: {} }] }] })]);
    expectTable(c, TCP80, all);
  });

  it('E06 should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), policyTypes: INGRESS, ingress: [{ from: [{ namespaceSelector: nsName('y') }] }] })]);
    expectTable(c, TCP80, onlyInto(is('x/a'), inNs('y')));
  });

  it('E07 should enforce policy based on PodSelector with MatchExpressions', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), policyTypes: INGRESS, ingress: [{ from: [{ podSelector: podIn('b') }] }] })]);
    expectTable(c, TCP80, onlyInto(is('x/a'), is('x/b')));
  });

  it('E08 should enforce policy based on NamespaceSelector with MatchExpressions', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), policyTypes: INGRESS, ingress: [{ from: [{ namespaceSelector: nsName('y', 'y') }] }] })]);
    expectTable(c, TCP80, onlyInto(is('x/a'), inNs('y')));
  });

  it('E09 should enforce policy based on PodSelector or NamespaceSelector', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), policyTypes: INGRESS, ingress: [{ from: [{ namespaceSelector: nsNotIn('x') }, { podSelector: podIs('b') }] }] })]);
    expectTable(c, TCP80, onlyInto(is('x/a'), (f) => f !== 'x/c'));
  });

  it('E10 should enforce policy based on PodSelector and NamespaceSelector', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), policyTypes: INGRESS, ingress: [{ from: [{ namespaceSelector: nsNotIn('x'), podSelector: podIs('b') }] }] })]);
    expectTable(c, TCP80, onlyInto(is('x/a'), (f) => f === 'y/b' || f === 'z/b'));
  });

  it('E11 should enforce policy based on Multiple PodSelectors and NamespaceSelectors', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), policyTypes: INGRESS, ingress: [{ from: [{ namespaceSelector: nsNotIn('x'), podSelector: podIn('b', 'c') }] }] })]);
    expectTable(c, TCP80, onlyInto(is('x/a'), (f) => nsOf(f) !== 'x' && nameOf(f) !== 'a'));
  });

  it('E12 should enforce policy based on any PodSelectors', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), policyTypes: INGRESS, ingress: [{ from: [{ podSelector: podIs('b') }, { podSelector: podIs('c') }] }] })]);
    expectTable(c, TCP80, onlyInto(is('x/a'), (f) => f === 'x/b' || f === 'x/c'));
  });

  it('E13 should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), policyTypes: INGRESS, ingress: [{ from: [{ namespaceSelector: nsName('y'), podSelector: podIs('a') }] }] })]);
    expectTable(c, TCP80, onlyInto(is('x/a'), is('y/a')));
  });

  it('E14 should enforce policy based on Ports', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), policyTypes: INGRESS, ingress: [{ from: [{ namespaceSelector: nsName('y') }], ports: [{ port: 81, protocol: 'TCP' }] }] })]);
    expectTable(c, TCP81, onlyInto(is('x/a'), inNs('y')));
  });

  it('E15 should enforce multiple, stacked policies with overlapping podSelectors', async () => {
    const first = policy('x', 'p81', { podSelector: podIs('a'), policyTypes: INGRESS, ingress: [{ from: [{ namespaceSelector: nsName('y') }], ports: [{ port: 81, protocol: 'TCP' }] }] });
    const c = await cluster([first]);
    expectTable(c, TCP81, onlyInto(is('x/a'), inNs('y')));
    expectTable(c, TCP80, onlyInto(is('x/a')));
    c.policies.push(policy('x', 'p80', { podSelector: podIs('a'), policyTypes: INGRESS, ingress: [{ from: [{ namespaceSelector: nsName('y') }], ports: [{ port: 80, protocol: 'TCP' }] }] }));
    await c.sync();
    expectTable(c, TCP80, onlyInto(is('x/a'), inNs('y')));
    expectTable(c, TCP81, onlyInto(is('x/a'), inNs('y')));
  });

  it('E16 should support allow-all policy', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: {}, policyTypes: INGRESS, ingress: [{}] })]);
    expectTable(c, TCP80, all);
    expectTable(c, TCP81, all);
  });

  it('E17 should allow ingress access on one named port', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: {}, policyTypes: INGRESS, ingress: [{ ports: [{ port: 'serve-81-tcp' }] }] })]);
    expectTable(c, TCP81, all);
    expectTable(c, TCP80, onlyInto(inNs('x')));
  });

  it('E18 should allow ingress access from namespace on one named port', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), policyTypes: INGRESS, ingress: [{ from: [{ namespaceSelector: nsName('y') }], ports: [{ protocol: 'TCP', port: 'serve-80-tcp' }] }] })]);
    expectTable(c, TCP80, onlyInto(is('x/a'), inNs('y')));
    expectTable(c, TCP81, onlyInto(is('x/a')));
  });

  it('E19 should allow egress access on one named port', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: {}, policyTypes: EGRESS, egress: [{ ports: [{ port: 'serve-80-tcp' }] }] })]);
    expectTable(c, TCP80, all);
    expectTable(c, TCP81, onlyFrom(inNs('x')));
  });

  it('E20 should enforce updated policy', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: {}, policyTypes: INGRESS, ingress: [{}] })]);
    expectTable(c, TCP81, all);
    c.policies = [policy('x', 'p', { podSelector: {}, policyTypes: INGRESS, ingress: [] })];
    await c.sync();
    expectTable(c, TCP81, onlyInto(inNs('x')));
  });

  it('E21 should allow ingress access from updated namespace', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), policyTypes: INGRESS, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns2: 'updated' } } }] }] })]);
    expectTable(c, TCP80, onlyInto(is('x/a')));
    c.namespaces = c.namespaces.map((n) => (n.metadata.name === 'y' ? { metadata: { ...n.metadata, labels: { ...n.metadata.labels, ns2: 'updated' } } } : n));
    await c.sync();
    expectTable(c, TCP80, onlyInto(is('x/a'), inNs('y')));
  });

  it('E22 should allow ingress access from updated pod', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), policyTypes: INGRESS, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b', pod2: 'updated' } } }] }] })]);
    expectTable(c, TCP80, onlyInto(is('x/a')));
    c.pods = c.pods.map((p) => (p.metadata.namespace === 'x' && p.metadata.name === 'b' ? { ...p, metadata: { ...p.metadata, labels: { pod: 'b', pod2: 'updated' } } } : p));
    await c.sync();
    expectTable(c, TCP80, onlyInto(is('x/a'), is('x/b')));
  });

  it('E23 should deny ingress from pods on other namespaces', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: {}, policyTypes: INGRESS, ingress: [{ from: [{ podSelector: {} }] }] })]);
    expectTable(c, TCP80, onlyInto(inNs('x'), inNs('x')));
  });

  it('E24 should deny ingress access to updated pod', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: { matchLabels: { target: 'isolated' } }, policyTypes: INGRESS })]);
    expectTable(c, TCP80, all);
    c.pods = c.pods.map((p) => (p.metadata.namespace === 'x' && p.metadata.name === 'a' ? { ...p, metadata: { ...p.metadata, labels: { pod: 'a', target: 'isolated' } } } : p));
    await c.sync();
    expectTable(c, TCP80, onlyInto(is('x/a')));
  });

  it('E25 should deny egress from pods based on PodSelector', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), policyTypes: EGRESS })]);
    expectTable(c, TCP80, onlyFrom(is('x/a')));
  });

  it('E26 should deny egress from all pods in a namespace', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: {}, policyTypes: EGRESS })]);
    expectTable(c, TCP80, onlyFrom(inNs('x')));
  });

  it('E27 should work with Ingress, Egress specified together', async () => {
    const c = await cluster([
      policy('x', 'p', { podSelector: podIs('a'), policyTypes: ['Egress', 'Ingress'], ingress: [{ from: [{ podSelector: podIs('b') }] }], egress: [{ ports: [{ port: 80, protocol: 'TCP' }] }] }),
    ]);
    expectTable(c, TCP80, onlyInto(is('x/a'), is('x/b')));
    expectTable(c, TCP81, (f, t) => onlyInto(is('x/a'), is('x/b'))(f, t) && f !== 'x/a');
  });

  it('E28 should enforce egress policy allowing traffic to a server in a different namespace based on PodSelector and NamespaceSelector (client-side denial even if the server allows)', async () => {
    const c = await cluster([
      policy('x', 'egress', { podSelector: podIs('a'), policyTypes: EGRESS, egress: [{ to: [{ namespaceSelector: nsName('y'), podSelector: podIs('a') }] }] }),
      policy('y', 'allow-a', { podSelector: podIs('a'), policyTypes: INGRESS, ingress: [{ from: [{ namespaceSelector: nsName('x'), podSelector: podIs('a') }] }] }),
      policy('y', 'allow-b', { podSelector: podIs('b'), policyTypes: INGRESS, ingress: [{ from: [{ namespaceSelector: nsName('x'), podSelector: podIs('a') }] }] }),
    ]);
    expectTable(c, TCP80, (f, t) => {
      if (f === 'x/a') return t === 'y/a';
      if (t === 'y/a' || t === 'y/b') return false;
      return true;
    });
  });

  it('E29 should enforce egress policy allowing traffic to a server in a different namespace based on PodSelector and NamespaceSelector', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), policyTypes: EGRESS, egress: [{ to: [{ namespaceSelector: nsName('y'), podSelector: podIs('a') }] }] })]);
    expectTable(c, TCP80, onlyFrom(is('x/a'), is('y/a')));
  });

  it('E30 should enforce ingress policy allowing any port traffic to a server on a specific protocol', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), policyTypes: INGRESS, ingress: [{ ports: [{ protocol: 'TCP' }] }] })]);
    expectTable(c, TCP80, all);
    expectTable(c, { protocol: 'UDP', port: 80 }, onlyInto(is('x/a')));
  });

  it('E31 should enforce multiple ingress policies with ingress allow-all policy taking precedence', async () => {
    const c = await cluster([policy('x', 'p80', { podSelector: {}, policyTypes: INGRESS, ingress: [{ ports: [{ port: 80, protocol: 'TCP' }] }] })]);
    expectTable(c, TCP81, onlyInto(inNs('x')));
    c.policies.push(policy('x', 'all', { podSelector: {}, policyTypes: INGRESS, ingress: [{}] }));
    await c.sync();
    expectTable(c, TCP81, all);
  });

  it('E32 should enforce multiple egress policies with egress allow-all policy taking precedence', async () => {
    const c = await cluster([policy('x', 'p80', { podSelector: {}, policyTypes: EGRESS, egress: [{ ports: [{ port: 80, protocol: 'TCP' }] }] })]);
    expectTable(c, TCP81, onlyFrom(inNs('x')));
    c.policies.push(policy('x', 'all', { podSelector: {}, policyTypes: EGRESS, egress: [{}] }));
    await c.sync();
    expectTable(c, TCP81, all);
  });

  it('E33 should stop enforcing policies after they are deleted', async () => {
    const c = await cluster([policy('x', 'deny', { podSelector: {}, policyTypes: BOTH })]);
    expectTable(c, TCP80, (f, t) => nsOf(f) !== 'x' && nsOf(t) !== 'x');
    c.policies = [];
    await c.sync();
    expectTable(c, TCP80, all);
  });

  it('E34 should allow egress access to server in CIDR block', async () => {
    const pods = upstreamPods();
    const c = await cluster([], pods);
    c.policies = [policy('x', 'p', { podSelector: podIs('a'), policyTypes: EGRESS, egress: [{ to: [{ ipBlock: { cidr: `${c.ipOf('y/b')}/32` } }] }] })];
    await c.sync();
    expectTable(c, TCP80, onlyFrom(is('x/a'), is('y/b')));
  });

  it('E35 should enforce except clause while egress access to server in CIDR block', async () => {
    const c = await cluster([]);
    c.policies = [policy('x', 'p', { podSelector: podIs('a'), policyTypes: EGRESS, egress: [{ to: [{ ipBlock: { cidr: `${c.ipOf('x/a')}/4`, except: [`${c.ipOf('x/b')}/32`] } }] }] })];
    await c.sync();
    expectTable(c, TCP80, (f, t) => !(f === 'x/a' && t === 'x/b'));
  });

  it('E36 should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed', async () => {
    const c = await cluster([]);
    c.policies = [policy('x', 'p', { podSelector: podIs('a'), policyTypes: EGRESS, egress: [{ to: [{ ipBlock: { cidr: `${c.ipOf('x/a')}/4`, except: [`${c.ipOf('x/b')}/32`] } }] }] })];
    await c.sync();
    expectTable(c, TCP80, (f, t) => !(f === 'x/a' && t === 'x/b'));
    c.policies = [policy('x', 'p', { podSelector: podIs('a'), policyTypes: EGRESS, egress: [{ to: [{ ipBlock: { cidr: `${c.ipOf('x/b')}/32` } }] }] })];
    await c.sync();
    expectTable(c, TCP80, onlyFrom(is('x/a'), is('x/b')));
  });

  it('E37 should enforce ingress and egress policies that can be controlled independently based on PodSelector', async () => {
    const c = await cluster([policy('x', 'egress', { podSelector: podIs('a'), policyTypes: EGRESS, egress: [{}] })]);
    expectTable(c, TCP80, all);
    c.policies.push(policy('x', 'deny-ingress', { podSelector: podIs('a'), policyTypes: INGRESS }));
    await c.sync();
    expectTable(c, TCP80, onlyInto(is('x/a')));
  });

  it("E38 should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP', even if the port is the same", async () => {
    const c = await cluster([
      policy('x', 'deny', { podSelector: {}, policyTypes: INGRESS }),
      policy('x', 'sctp', { podSelector: podIs('a'), policyTypes: INGRESS, ingress: [{ ports: [{ protocol: 'SCTP', port: 81 }] }] }),
    ]);
    expectTable(c, TCP81, onlyInto(inNs('x')));
    // The SCTP rule itself works.
    expectTable(c, { protocol: 'SCTP', port: 81 }, onlyInto((t) => t === 'x/b' || t === 'x/c'));
  });

  it('E39 should properly isolate pods that are selected by a policy allowing SCTP, even if the plugin does not support SCTP', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), policyTypes: INGRESS, ingress: [{ ports: [{ protocol: 'SCTP', port: 80 }] }] })]);
    expectTable(c, TCP81, onlyInto(is('x/a')));
  });

  it('E40 should not allow access by TCP when a policy specifies only UDP', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), policyTypes: INGRESS, ingress: [{ ports: [{ protocol: 'UDP', port: 81 }] }] })]);
    expectTable(c, TCP81, onlyInto(is('x/a')));
    expectTable(c, { protocol: 'UDP', port: 81 }, all);
  });

  it('E41 should support policy based on NamespaceSelector with MatchLabels using default ns label', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), policyTypes: INGRESS, ingress: [{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'y' } } }] }] })]);
    expectTable(c, TCP80, onlyInto(is('x/a'), inNs('y')));
  });

  it('E42 should support policy based on NamespaceSelector with MatchExpressions using default ns label', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), policyTypes: EGRESS, egress: [{ to: [{ namespaceSelector: nsNotIn('y') }] }] })]);
    expectTable(c, TCP80, (f, t) => !(f === 'x/a' && nsOf(t) === 'y'));
  });

  for (const [ids, protocol] of [
    ['E43/E44/E45', 'UDP'],
    ['E46/E47/E48', 'SCTP'],
  ] as const) {
    const [deny, ports, pair] = ids.split('/');
    it(`${deny} [${protocol}] should support a 'default-deny-ingress' policy`, async () => {
      const c = await cluster([policy('x', 'deny', { podSelector: {}, policyTypes: INGRESS })]);
      expectTable(c, { protocol, port: 80 }, onlyInto(inNs('x')));
    });
    it(`${ports} [${protocol}] should enforce policy based on Ports`, async () => {
      const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), policyTypes: INGRESS, ingress: [{ from: [{ namespaceSelector: nsName('y') }], ports: [{ port: 81, protocol }] }] })]);
      expectTable(c, { protocol, port: 81 }, onlyInto(is('x/a'), inNs('y')));
    });
    it(`${pair} [${protocol}] should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector`, async () => {
      const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), policyTypes: INGRESS, ingress: [{ from: [{ namespaceSelector: nsName('y'), podSelector: podIs('a') }] }] })]);
      expectTable(c, { protocol, port: 80 }, onlyInto(is('x/a'), is('y/a')));
    });
  }
});

describe('§5.2 derived cases', () => {
  it('D01 egress: [] without policyTypes isolates ingress only (R2)', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), egress: [] })]);
    expectTable(c, TCP80, onlyInto(is('x/a')));
  });

  it('D02 egress: [{}] without policyTypes: ingress isolated, egress allowed (R2)', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), egress: [{}] })]);
    expectTable(c, TCP80, onlyInto(is('x/a')));
  });

  it('D03 policyTypes [Egress] ignores the ingress section (R2/R3)', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), policyTypes: EGRESS, ingress: [{ from: [{ podSelector: podIs('b') }] }], egress: [{}] })]);
    expectTable(c, TCP80, all);
  });

  it('D04 from: [] matches every peer (R5)', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), ingress: [{ from: [], ports: [{ port: 80 }] }] })]);
    expectTable(c, TCP80, all);
    expectTable(c, TCP81, onlyInto(is('x/a')));
  });

  it('D05 ports: [{}] is every TCP port only (R10)', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), ingress: [{ ports: [{}] }] })]);
    expectTable(c, TCP80, all);
    expectTable(c, { protocol: 'UDP', port: 80 }, onlyInto(is('x/a')));
  });

  it('D06 NotIn matches pods without the key (R7; cyclonus differs)', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), ingress: [{ from: [{ podSelector: { matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['db'] }] } }] }] })]);
    expectTable(c, TCP80, onlyInto(is('x/a'), inNs('x')));
  });

  it('D07 DoesNotExist (R7)', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), ingress: [{ from: [{ podSelector: { matchExpressions: [{ key: 'tier', operator: 'DoesNotExist' }] } }] }] })]);
    expectTable(c, TCP80, onlyInto(is('x/a'), inNs('x')));
  });

  it('D08 Exists with an empty namespaceSelector (R6/R7)', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), ingress: [{ from: [{ podSelector: { matchExpressions: [{ key: 'pod', operator: 'Exists' }] }, namespaceSelector: {} }] }] })]);
    expectTable(c, TCP80, all);
  });

  it('D09 podSelector within every namespace (R6)', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), ingress: [{ from: [{ podSelector: podIs('a'), namespaceSelector: {} }] }] })]);
    expectTable(c, TCP80, onlyInto(is('x/a'), (f) => f === 'y/a' || f === 'z/a'));
  });

  it("D10 a namespaceSelector can match the policy's own namespace (R6)", async () => {
    const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), ingress: [{ from: [{ namespaceSelector: nsName('x') }] }] })]);
    expectTable(c, TCP80, onlyInto(is('x/a'), inNs('x')));
  });

  it("D11 an egress podSelector without namespaceSelector means the policy's namespace (R6)", async () => {
    const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), policyTypes: EGRESS, egress: [{ to: [{ podSelector: podIs('b') }] }] })]);
    expectTable(c, TCP80, onlyFrom(is('x/a'), is('x/b')));
  });

  it('D12 endPort range 53-80 (R10)', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), ingress: [{ ports: [{ protocol: 'TCP', port: 53, endPort: 80 }] }] })]);
    expectTable(c, TCP80, all);
    expectTable(c, TCP81, onlyInto(is('x/a')));
  });

  it('D13 endPort range 53-84 (R10)', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), ingress: [{ ports: [{ protocol: 'TCP', port: 53, endPort: 84 }] }] })]);
    expectTable(c, TCP80, all);
    expectTable(c, TCP81, all);
  });

  it('D14 a named port with the wrong protocol matches nothing (R10)', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), ingress: [{ ports: [{ protocol: 'TCP', port: 'serve-81-udp' }] }] })]);
    expectTable(c, TCP81, onlyInto(is('x/a')));
    expectTable(c, { protocol: 'UDP', port: 81 }, onlyInto(is('x/a')));
  });

  it('D15 a named port nobody serves matches nothing (R10)', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), ingress: [{ ports: [{ protocol: 'TCP', port: 'serve-7981-udp' }] }] })]);
    expectTable(c, TCP80, onlyInto(is('x/a')));
  });

  it('D16 a number and a name in one rule (R5/R10)', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), ingress: [{ ports: [{ port: 80 }, { port: 'serve-81-tcp' }] }] })]);
    expectTable(c, TCP80, all);
    expectTable(c, TCP81, all);
  });

  it('D17 each rule pairs its own peers and ports (R4/R5)', async () => {
    const c = await cluster([
      policy('x', 'p', {
        podSelector: podIs('a'),
        ingress: [
          { from: [{ podSelector: podIs('b') }], ports: [{ port: 80 }] },
          { from: [{ namespaceSelector: nsName('y') }], ports: [{ port: 81 }] },
        ],
      }),
    ]);
    expectTable(c, TCP80, onlyInto(is('x/a'), is('x/b')));
    expectTable(c, TCP81, onlyInto(is('x/a'), inNs('y')));
  });

  it('D18 a peer allowed on another port only (R5)', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), ingress: [{ from: [{ podSelector: podIs('b') }], ports: [{ port: 81 }] }] })]);
    expectTable(c, TCP80, onlyInto(is('x/a')));
    expectTable(c, TCP81, onlyInto(is('x/a'), is('x/b')));
  });

  it("D19 the source's egress denial wins over the destination's allow-all (R1)", async () => {
    const c = await cluster([policy('x', 'deny', { podSelector: podIs('a'), policyTypes: EGRESS }), policy('y', 'all', { podSelector: podIs('b'), ingress: [{}] })]);
    expectTable(c, TCP80, onlyFrom(is('x/a')));
  });

  it('D20 deny-all plus allow-all is allow-all (R4)', async () => {
    const c = await cluster([policy('x', 'deny', { podSelector: {}, policyTypes: INGRESS }), policy('x', 'all', { podSelector: {}, ingress: [{}] })]);
    expectTable(c, TCP80, all);
  });

  it('D21 ipBlock 0.0.0.0/0 matches pod addresses (R9)', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), policyTypes: EGRESS, egress: [{ to: [{ ipBlock: { cidr: '0.0.0.0/0' } }] }] })]);
    expectTable(c, TCP80, all);
  });

  it('D22 ipBlock 0.0.0.0/31 matches no pod (R9)', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), policyTypes: EGRESS, egress: [{ to: [{ ipBlock: { cidr: '0.0.0.0/31' } }] }] })]);
    expectTable(c, TCP80, onlyFrom(is('x/a')));
  });

  it('D23 an egress named port resolves on the destination pod an ipBlock matches (R9/R10)', async () => {
    const c = await cluster([]);
    c.policies = [policy('x', 'p', { podSelector: podIs('a'), policyTypes: EGRESS, egress: [{ to: [{ ipBlock: { cidr: `${c.ipOf('y/b')}/32` } }], ports: [{ port: 'serve-80-tcp' }] }] })];
    await c.sync();
    expectTable(c, TCP80, onlyFrom(is('x/a'), is('y/b')));
    expectTable(c, TCP81, onlyFrom(is('x/a')));
  });

  it('D24 a pod created later with a matching label is a peer; itself not selected (R16)', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), ingress: [{ from: [{ podSelector: podIs('b') }] }] })]);
    c.pods = [...c.pods, pod({ namespace: 'x', name: 'd', labels: { pod: 'b' }, node: 'n3', ips: ['10.244.2.99'], ports: servePorts() })];
    await c.sync();
    expectTable(c, TCP80, onlyInto(is('x/a'), (f) => f === 'x/b' || f === 'x/d'));
  });

  it('D25 a namespace label removed stops new connections (R15)', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 't' } } }] }] })]);
    const label = (on: boolean) => {
      c.namespaces = c.namespaces.map((n) => {
        if (n.metadata.name !== 'y') return n;
        const { team: _team, ...rest } = n.metadata.labels ?? {};
        return { metadata: { ...n.metadata, labels: on ? { ...rest, team: 't' } : rest } };
      });
    };
    label(true);
    await c.sync();
    expectTable(c, TCP80, onlyInto(is('x/a'), inNs('y')));
    label(false);
    await c.sync();
    expectTable(c, TCP80, onlyInto(is('x/a')));
  });

  it('D26 replies flow despite an egress deny: established/related is accepted before any policy (R13)', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: podIs('a'), policyTypes: BOTH, ingress: [{}] })]);
    expectTable(c, TCP80, onlyFrom(is('x/a')));
    for (const fake of c.fakes.values()) expect(fake.rules(FORWARD_CHAIN)[0]?.rule).toBe('ct state established,related accept');
  });

  it("D27/D28 the pod's own node reaches it (kubelet probes), another node does not (R11)", async () => {
    const c = await cluster([policy('x', 'deny', { podSelector: {}, policyTypes: INGRESS })]);
    const xa = c.ipOf('x/a');
    const home = c.nodeOf(xa) as string;
    for (const node of ['n1', 'n2', 'n3']) {
      const allowed = c.verdict({ src: NODE_IPS[node] as string, dst: xa, protocol: 'TCP', dport: 80 });
      expect(allowed, `from node ${node}`).toBe(node === home);
    }
  });

  it('D29 a pod reaches itself (R12)', async () => {
    const c = await cluster([policy('x', 'deny', { podSelector: {}, policyTypes: BOTH })]);
    const xa = c.ipOf('x/a');
    expect(c.verdict({ src: xa, dst: xa, protocol: 'TCP', dport: 80 })).toBe(true);
  });

  it('D30 a host-network pod is not a selector peer; its node address is what policies see (R17)', async () => {
    const pods = [...upstreamPods(), pod({ namespace: 'x', name: 'host', labels: { pod: 'b' }, node: 'n2', ips: [NODE_IPS.n2 as string], hostNetwork: true })];
    const c = await cluster([policy('x', 'p', { podSelector: {}, ingress: [{ from: [{ podSelector: podIs('b') }] }] })], pods);
    for (const target of ['x/a', 'x/b', 'x/c']) {
      const dst = c.ipOf(target);
      if (c.nodeOf(dst) === 'n2') continue; // from its own node: R11
      expect(c.verdict({ src: NODE_IPS.n2 as string, dst, protocol: 'TCP', dport: 80 }), target).toBe(false);
    }
    // An ipBlock of the node's address lets it in.
    c.policies.push(policy('x', 'node', { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: `${NODE_IPS.n2}/32` } }] }] }));
    await c.sync();
    for (const target of ['x/a', 'x/b', 'x/c']) expect(c.verdict({ src: NODE_IPS.n2 as string, dst: c.ipOf(target), protocol: 'TCP', dport: 80 }), target).toBe(true);
  });

  it('D31 deny-all after a connection exists: new flows denied (existing flows: see the applier)', async () => {
    const c = await cluster([policy('x', 'deny', { podSelector: {}, policyTypes: BOTH })]);
    expectTable(c, TCP80, (f, t) => nsOf(f) !== 'x' && nsOf(t) !== 'x');
  });

  it('D32 IPv6 single-stack: E34 with /128 (R9)', async () => {
    const c = await cluster([], upstreamPods(6));
    c.policies = [policy('x', 'p', { podSelector: podIs('a'), policyTypes: EGRESS, egress: [{ to: [{ ipBlock: { cidr: `${c.ipOf('y/b')}/128` } }] }] })];
    await c.sync();
    expectTable(c, TCP80, onlyFrom(is('x/a'), is('y/b')));
  });
});
