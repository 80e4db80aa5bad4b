// Every case of netpol-semantics.md §5.1 (upstream e2e, E01–E48) and §5.2 (derived, D01–D32) on the
// upstream model (namespaces x, y, z; pods a, b, c spread over three nodes; servers on 80 and 81 for
// TCP, UDP and SCTP). Each node compiles its own policy and applies the difference to a fake nft;
// every cell of the truth table is judged from the compiled model and from the nft objects, which
// must agree (support/netpol.ts), and the table must be the expected one. Multi-step cases apply
// their updates as diffs, so the diffs are checked too. The single-step cases are data
// (support/netpol-upstream-cases.ts), shared with the real-packet e2e (e2e/policy-upstream.test.ts).
import { describe, expect, it } from 'vitest';
import { FORWARD_CHAIN } from '../../src/policy/index.ts';
import {
  differences,
  expected,
  NODE_IPS,
  nsOf,
  pod,
  policy,
  servePorts,
  SimCluster,
  upstreamPods,
  type Probe,
} from '../support/netpol.ts';
import {
  all,
  BOTH,
  DERIVED_CASES,
  EGRESS,
  INGRESS,
  inNs,
  is,
  nsName,
  onlyFrom,
  onlyInto,
  podIs,
  TCP80,
  TCP81,
  UPSTREAM_CASES,
  type Allowed,
  type UpstreamCase,
} from '../support/netpol-upstream-cases.ts';

async function cluster(policies: ReturnType<typeof policy>[], pods = upstreamPods()): Promise<SimCluster> {
  const c = new SimCluster({ pods, policies });
  await c.sync();
  return c;
}

function expectTable(c: SimCluster, probe: Probe, allowed: Allowed): void {
  expect(differences(c.reachability(probe), expected(c, allowed))).toEqual([]);
}

/** A single-step case (support/netpol-upstream-cases.ts, shared with the e2e): its policies, then its tables. */
function singleStep(k: UpstreamCase): void {
  it(`${k.id} ${k.title}`, async () => {
    // The first sync builds the tables with the case's policies (the ipBlock cases need the pods' addresses).
    const c = new SimCluster({ pods: upstreamPods() });
    c.policies = k.policies({ ipOf: (ref) => c.ipOf(ref) });
    await c.sync();
    for (const { probe, allowed } of k.checks) expectTable(c, probe, allowed);
  });
}

describe('§5.1 upstream e2e cases', () => {
  for (const k of UPSTREAM_CASES) singleStep(k);

  it('E15 should enforce multiple, stacked policies with overlapping podSelectors', async () => {
    const first = policy('x', 'p81', {
      podSelector: podIs('a'),
      policyTypes: INGRESS,
      ingress: [{ from: [{ namespaceSelector: nsName('y') }], ports: [{ port: 81, protocol: 'TCP' }] }],
    });
    const c = await cluster([first]);
    expectTable(c, TCP81, onlyInto(is('x/a'), inNs('y')));
    expectTable(c, TCP80, onlyInto(is('x/a')));
    c.policies.push(
      policy('x', 'p80', {
        podSelector: podIs('a'),
        policyTypes: INGRESS,
        ingress: [{ from: [{ namespaceSelector: nsName('y') }], ports: [{ port: 80, protocol: 'TCP' }] }],
      }),
    );
    await c.sync();
    expectTable(c, TCP80, onlyInto(is('x/a'), inNs('y')));
    expectTable(c, TCP81, onlyInto(is('x/a'), inNs('y')));
  });

  it('E20 should enforce updated policy', async () => {
    const c = await cluster([policy('x', 'p', { podSelector: {}, policyTypes: INGRESS, ingress: [{}] })]);
    expectTable(c, TCP81, all);
    c.policies = [policy('x', 'p', { podSelector: {}, policyTypes: INGRESS, ingress: [] })];
    await c.sync();
    expectTable(c, TCP81, onlyInto(inNs('x')));
  });

  it('E21 should allow ingress access from updated namespace', async () => {
    const c = await cluster([
      policy('x', 'p', {
        podSelector: podIs('a'),
        policyTypes: INGRESS,
        ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns2: 'updated' } } }] }],
      }),
    ]);
    expectTable(c, TCP80, onlyInto(is('x/a')));
    c.namespaces = c.namespaces.map((n) =>
      n.metadata.name === 'y' ? { metadata: { ...n.metadata, labels: { ...n.metadata.labels, ns2: 'updated' } } } : n,
    );
    await c.sync();
    expectTable(c, TCP80, onlyInto(is('x/a'), inNs('y')));
  });

  it('E22 should allow ingress access from updated pod', async () => {
    const c = await cluster([
      policy('x', 'p', {
        podSelector: podIs('a'),
        policyTypes: INGRESS,
        ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b', pod2: 'updated' } } }] }],
      }),
    ]);
    expectTable(c, TCP80, onlyInto(is('x/a')));
    c.pods = c.pods.map((p) =>
      p.metadata.namespace === 'x' && p.metadata.name === 'b'
        ? { ...p, metadata: { ...p.metadata, labels: { pod: 'b', pod2: 'updated' } } }
        : p,
    );
    await c.sync();
    expectTable(c, TCP80, onlyInto(is('x/a'), is('x/b')));
  });

  it('E24 should deny ingress access to updated pod', async () => {
    const c = await cluster([
      policy('x', 'p', { podSelector: { matchLabels: { target: 'isolated' } }, policyTypes: INGRESS }),
    ]);
    expectTable(c, TCP80, all);
    c.pods = c.pods.map((p) =>
      p.metadata.namespace === 'x' && p.metadata.name === 'a'
        ? { ...p, metadata: { ...p.metadata, labels: { pod: 'a', target: 'isolated' } } }
        : p,
    );
    await c.sync();
    expectTable(c, TCP80, onlyInto(is('x/a')));
  });

  it('E31 should enforce multiple ingress policies with ingress allow-all policy taking precedence', async () => {
    const c = await cluster([
      policy('x', 'p80', {
        podSelector: {},
        policyTypes: INGRESS,
        ingress: [{ ports: [{ port: 80, protocol: 'TCP' }] }],
      }),
    ]);
    expectTable(c, TCP81, onlyInto(inNs('x')));
    c.policies.push(policy('x', 'all', { podSelector: {}, policyTypes: INGRESS, ingress: [{}] }));
    await c.sync();
    expectTable(c, TCP81, all);
  });

  it('E32 should enforce multiple egress policies with egress allow-all policy taking precedence', async () => {
    const c = await cluster([
      policy('x', 'p80', {
        podSelector: {},
        policyTypes: EGRESS,
        egress: [{ ports: [{ port: 80, protocol: 'TCP' }] }],
      }),
    ]);
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

  it('E36 should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed', async () => {
    const c = await cluster([]);
    c.policies = [
      policy('x', 'p', {
        podSelector: podIs('a'),
        policyTypes: EGRESS,
        egress: [{ to: [{ ipBlock: { cidr: `${c.ipOf('x/a')}/4`, except: [`${c.ipOf('x/b')}/32`] } }] }],
      }),
    ];
    await c.sync();
    expectTable(c, TCP80, (f, t) => !(f === 'x/a' && t === 'x/b'));
    c.policies = [
      policy('x', 'p', {
        podSelector: podIs('a'),
        policyTypes: EGRESS,
        egress: [{ to: [{ ipBlock: { cidr: `${c.ipOf('x/b')}/32` } }] }],
      }),
    ];
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
});

describe('§5.2 derived cases', () => {
  for (const k of DERIVED_CASES) singleStep(k);

  it('D26 established/related is accepted before any policy on every node (R13)', async () => {
    const d26 = DERIVED_CASES.find((k) => k.id === 'D26') as UpstreamCase;
    const c = await cluster(d26.policies({ ipOf: () => '' }));
    for (const fake of c.fakes.values())
      expect(fake.rules(FORWARD_CHAIN)[0]?.rule).toBe('ct state established,related accept');
  });

  it('D24 a pod created later with a matching label is a peer; itself not selected (R16)', async () => {
    const c = await cluster([
      policy('x', 'p', { podSelector: podIs('a'), ingress: [{ from: [{ podSelector: podIs('b') }] }] }),
    ]);
    c.pods = [
      ...c.pods,
      pod({ namespace: 'x', name: 'd', labels: { pod: 'b' }, node: 'n3', ips: ['10.244.2.99'], ports: servePorts() }),
    ];
    await c.sync();
    expectTable(
      c,
      TCP80,
      onlyInto(is('x/a'), (f) => f === 'x/b' || f === 'x/d'),
    );
  });

  it('D25 a namespace label removed stops new connections (R15)', async () => {
    const c = await cluster([
      policy('x', 'p', {
        podSelector: podIs('a'),
        ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 't' } } }] }],
      }),
    ]);
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
    const pods = [
      ...upstreamPods(),
      pod({
        namespace: 'x',
        name: 'host',
        labels: { pod: 'b' },
        node: 'n2',
        ips: [NODE_IPS.n2 as string],
        hostNetwork: true,
      }),
    ];
    const c = await cluster(
      [policy('x', 'p', { podSelector: {}, ingress: [{ from: [{ podSelector: podIs('b') }] }] })],
      pods,
    );
    for (const target of ['x/a', 'x/b', 'x/c']) {
      const dst = c.ipOf(target);
      if (c.nodeOf(dst) === 'n2') continue; // from its own node: R11
      expect(c.verdict({ src: NODE_IPS.n2 as string, dst, protocol: 'TCP', dport: 80 }), target).toBe(false);
    }
    // An ipBlock of the node's address lets it in.
    c.policies.push(
      policy('x', 'node', { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: `${NODE_IPS.n2}/32` } }] }] }),
    );
    await c.sync();
    for (const target of ['x/a', 'x/b', 'x/c'])
      expect(c.verdict({ src: NODE_IPS.n2 as string, dst: c.ipOf(target), protocol: 'TCP', dport: 80 }), target).toBe(
        true,
      );
  });

  it('D32 IPv6 single-stack: E34 with /128 (R9)', async () => {
    const c = await cluster([], upstreamPods(6));
    c.policies = [
      policy('x', 'p', {
        podSelector: podIs('a'),
        policyTypes: EGRESS,
        egress: [{ to: [{ ipBlock: { cidr: `${c.ipOf('y/b')}/128` } }] }],
      }),
    ];
    await c.sync();
    expectTable(c, TCP80, onlyFrom(is('x/a'), is('y/b')));
  });
});
