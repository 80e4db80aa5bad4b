// ClusterNetworkPolicy: the upstream conformance tests as data (support/cnp-conformance-cases.ts),
// each probe judged by the oracle, the compiled model and the rendered nft objects (SimCluster.verdict
// checks the last two agree) against upstream's expectation; then the explanation of a decision
// through a Pass chain, the rendered comments, bad input (reported, fail closed, never a throw) and
// the status summary.
import { renderRule } from '../../src/nft/expr.ts';
import { describe, expect, it } from 'vitest';
import type { NetworkPolicyInfo, PodInfo } from '../../src/k8s/objects.ts';
import {
  clusterPolicyStatus,
  compilePolicy,
  evaluatePolicy,
  renderPolicy,
  type ClusterNetworkPolicyObject,
  type Packet,
} from '../../src/policy/index.ts';
import type { PolicyNode } from '../../src/policy/types.ts';
import { cnpJudge, type CnpWorld, type OracleNode } from '../support/cnp-oracle.ts';
import { CONFORMANCE_CASES, FOREST, HOUSE_PODS, HOUSES, houseNs } from '../support/cnp-conformance-cases.ts';
import type { Manifest } from '../support/cnp-conformance-manifests.ts';
import { oracleWorld } from '../support/netpol-oracle.ts';
import { namespace, NODE_IPS, NODE_IPS_V6, NODES, pod, policy, SimCluster } from '../support/netpol.ts';

type Json = Record<string, unknown>;

/**
 * The conformance cluster: each house's namespace with two pods spread over the three nodes, and the
 * forbidden forest's two host-network pods (their addresses are their nodes'). centaur-1, the
 * node-peer tests' server, sits on n3 where neither gryffindor pod runs: a pod's own node is always
 * reachable (as for NetworkPolicy), so upstream's denials to it are only meaningful across nodes.
 */
function housePods(): PodInfo[] {
  const forest = [0, 1].map((k) => {
    const node = NODES[k + 1] as string;
    const ips = [NODE_IPS[node] as string];
    const labels = { 'conformance-house': FOREST };
    return pod({ namespace: houseNs(FOREST), name: `centaur-${k}`, labels, node, ips, hostNetwork: true });
  });
  const houses = HOUSES.flatMap((house, i) =>
    [0, 1].map((k) =>
      pod({
        namespace: houseNs(house),
        name: `${HOUSE_PODS[house]}-${k}`,
        labels: { 'conformance-house': house },
        node: NODES[(i + k) % 3] as string,
        ips: [`10.244.${(i + k) % 3}.${20 + 2 * i + k}`],
        ports: [
          { name: 'web', containerPort: 80, protocol: 'TCP' },
          { name: 'dns', containerPort: 53, protocol: 'UDP' },
        ],
      }),
    ),
  );
  return [...houses, ...forest];
}
const houseNamespaces = () => [...HOUSES, FOREST].map((h) => namespace(houseNs(h), { 'conformance-house': h }));
const NODE_ADDRESSES = Object.fromEntries(NODES.map((n) => [n, [NODE_IPS[n] as string, NODE_IPS_V6[n] as string]]));
const LINUX = { 'kubernetes.io/os': 'linux' };
const policyNodes = (): PolicyNode[] =>
  NODES.map((n) => ({
    metadata: { name: n, labels: LINUX },
    status: { addresses: (NODE_ADDRESSES[n] as string[]).map((address) => ({ type: 'InternalIP', address })) },
  }));
const oracleNodes = (): OracleNode[] =>
  NODES.map((n) => ({ name: n, labels: LINUX, addresses: NODE_ADDRESSES[n] as string[] }));

function ipOf(pods: PodInfo[], ref: string): string {
  const [house, k] = ref.split('/') as [keyof typeof HOUSE_PODS, string];
  const p = pods.find((x) => x.metadata.name === `${HOUSE_PODS[house]}-${k}`);
  return (p?.status.podIPs[0] as { ip: string }).ip;
}

describe('upstream conformance tests, as data', () => {
  it('holds every upstream test: 18 standard (83 subtests) and 6 experimental (9 subtests)', () => {
    const experimental = CONFORMANCE_CASES.filter((c) => c.test.includes('experimental'));
    expect(CONFORMANCE_CASES.length - experimental.length).toBe(18);
    expect(CONFORMANCE_CASES.filter((c) => !experimental.includes(c)).flatMap((c) => c.steps)).toHaveLength(83);
    expect(experimental).toHaveLength(6);
    expect(experimental.flatMap((c) => c.steps)).toHaveLength(9);
  });

  for (const c of CONFORMANCE_CASES) {
    it(c.test, async () => {
      const pods = housePods();
      const namespaces = houseNamespaces();
      const cluster = new SimCluster({ namespaces, pods, policies: [] });
      cluster.nodes = policyNodes();
      const applied = structuredClone(c.manifests) as Manifest[];
      for (const step of c.steps) {
        for (const change of step.changes ?? []) change(applied, (ref) => ipOf(pods, ref));
        const cnps: ClusterNetworkPolicyObject[] = [];
        const nps: NetworkPolicyInfo[] = [];
        for (const m of structuredClone(applied)) {
          if (m.kind === 'ClusterNetworkPolicy') cnps.push({ metadata: m.metadata, spec: m.spec });
          else nps.push(policy(m.metadata.namespace, m.metadata.name, m.spec));
        }
        cluster.clusterPolicies = cnps;
        cluster.policies = nps;
        await cluster.sync();
        // Upstream fails a refused connection: a denial must be a silent drop, never a reject.
        for (const table of cluster.applied.values()) {
          const rules = [...table.chains.values()].flatMap((ch) => ch.rules.map((r) => renderRule(r.body)));
          expect(
            rules.filter((r) => /\breject\b/.test(r)),
            step.name,
          ).toEqual([]);
        }
        const world: CnpWorld = {
          ...oracleWorld({ namespaces, pods, policies: nps, nodeAddresses: NODE_ADDRESSES }),
          clusterPolicies: cnps.map((p) => ({ metadata: p.metadata, spec: p.spec as Json })),
          nodes: oracleNodes(),
        };
        for (const probe of step.probes) {
          const [src, dst] = [ipOf(pods, probe.from), ipOf(pods, probe.to)];
          const pkt: Packet = { src, dst, protocol: probe.protocol, dport: probe.port };
          const what = `${step.name}: ${probe.from} → ${probe.to} ${probe.protocol}/${probe.port}`;
          expect(cnpJudge(world, pkt).allowed, `oracle, ${what}`).toBe(probe.connects);
          expect(cluster.verdict(pkt), `strand, ${what}`).toBe(probe.connects);
        }
      }
    });
  }
});

const x = (name: string, ip: string, node: string, labels: Record<string, string> = {}) =>
  pod({ namespace: 'x', name, labels, node, ips: [ip], ports: [{ name: 'web', containerPort: 80, protocol: 'TCP' }] });
const cnp = (name: string, spec: Json): ClusterNetworkPolicyObject => ({ metadata: { name }, spec });
const all = { namespaces: {} };

describe('explanation, comments and bad input', () => {
  const pods = [x('a', '10.244.0.10', 'n1', { app: 'a' }), x('b', '10.244.1.10', 'n2', { app: 'b' })];
  const namespaces = [namespace('x')];
  const input = (cnps: ClusterNetworkPolicyObject[], nps = [] as ReturnType<typeof policy>[]) => ({
    nodeName: 'n1',
    nodeAddresses: ['192.168.50.1'],
    namespaces,
    pods,
    policies: nps,
    clusterNetworkPolicies: cnps,
  });
  const toA: Packet = { src: '10.244.1.10', dst: '10.244.0.10', protocol: 'TCP', dport: 80 };

  it('names the deciding tier, policy, priority and rule, through a Pass chain to NetworkPolicy', () => {
    const pass = cnp('pass-x', {
      tier: 'Admin',
      priority: 5,
      subject: all,
      ingress: [{ name: 'to-np', action: 'Pass', from: [all] }],
    });
    const deny = cnp('base-deny', {
      tier: 'Baseline',
      priority: 1,
      subject: all,
      ingress: [{ name: 'deny', action: 'Deny', from: [all] }],
    });
    const np = policy('x', 'np', {
      podSelector: {},
      ingress: [{}, { from: [{ podSelector: { matchLabels: { app: 'b' } } }] }],
    });
    const v = evaluatePolicy(compilePolicy(input([pass, deny], [np])), toA);
    expect(v.ingress.allowed).toBe(true);
    expect(v.ingress.steps).toEqual([
      {
        tier: 'admin',
        action: 'pass',
        priority: 5,
        rule: { namespace: '', name: 'pass-x', direction: 'ingress', index: 0, ruleName: 'to-np' },
      },
      {
        tier: 'networkpolicy',
        action: 'accept',
        priority: 0,
        rule: { namespace: 'x', name: 'np', direction: 'ingress', index: 0 },
      },
    ]);
    expect(v.ingress.rules).toContainEqual({ namespace: 'x', name: 'np', direction: 'ingress', index: 1 });
    // Without the NetworkPolicy, the Baseline Deny decides.
    const w = evaluatePolicy(compilePolicy(input([pass, deny])), toA);
    expect(w.ingress).toMatchObject({
      allowed: false,
      reason: 'denied',
      rules: [{ name: 'base-deny', ruleName: 'deny' }],
    });
  });

  it('comments each CNP rule with policy, direction, index and name, and maps it back with its action', () => {
    const deny = cnp('deny-b', {
      tier: 'Admin',
      priority: 1,
      subject: all,
      ingress: [{ name: 'deny-imds', action: 'Deny', from: [all] }],
    });
    const table = renderPolicy(compilePolicy(input([deny])), { logDenied: { perSecond: 5 } });
    const meaning = table.comments.get('cnp/deny-b ingress 0 deny-imds');
    expect(meaning).toMatchObject({ verdict: 'cnp', tier: 'admin', priority: 1, action: 'drop' });
    const rules = [...table.chains.values()].flatMap((c) => c.rules.map((r) => renderRule(r.body)));
    // Logged in the rule's chain, shared by its pods: the prefix names the rule, the packet the pod.
    expect(rules.some((r) => r.includes('log prefix "strand-deny cnp/deny-b ingress 0 deny-imds: "'))).toBe(true);
  });

  it('never throws on bad input, reports field and reason, and fails closed', () => {
    const bad = [
      cnp('no-tier', { priority: 1, subject: all, ingress: [{ action: 'Accept', from: [all] }] }),
      cnp('bad-peer-accept', { tier: 'Admin', priority: 1, subject: all, ingress: [{ action: 'Accept', from: [{}] }] }),
      cnp('domain', {
        tier: 'Baseline',
        priority: 1,
        subject: all,
        egress: [{ action: 'Accept', to: [{ domainNames: ['example.com'] }] }],
      }),
      cnp('bad-range', {
        tier: 'Admin',
        priority: 2,
        subject: all,
        ingress: [
          { action: 'Deny', from: [all], protocols: [{ tcp: { destinationPort: { range: { start: 90, end: 80 } } } }] },
        ],
      }),
      cnp('weird', { tier: 'Admin', priority: 2000, subject: { namespaces: {}, pods: {} }, ingress: 'x' }),
      cnp('null-spec', null as unknown as Json),
    ];
    const model = compilePolicy(input(bad));
    const fields = model.errors.map((e) => `${e.name} ${e.path}`);
    expect(fields).toEqual(
      expect.arrayContaining([
        'no-tier spec.tier',
        'bad-peer-accept spec.ingress[0].from[0]',
        'domain spec.egress[0].to[0].domainNames',
        'bad-range spec.ingress[0].protocols[0].tcp.destinationPort.range',
        'weird spec.priority',
        'weird spec.subject',
        'weird spec.ingress',
        'null-spec spec',
      ]),
    );
    for (const e of model.errors) expect(e.message.length).toBeGreaterThan(0);
    // The bad Deny rule denies everything it would have covered: x/b cannot reach x/a.
    expect(evaluatePolicy(model, toA).ingress).toMatchObject({ allowed: false, reason: 'denied' });
    const status = clusterPolicyStatus(input(bad));
    expect(status.unsupported.get('domain')).toEqual(['spec.egress[0].to[0].domainNames']);
  });

  it('status: counts per tier and ambiguous equal priorities whose subjects share a pod', () => {
    const s = clusterPolicyStatus(
      input([
        cnp('one', { tier: 'Admin', priority: 3, subject: all, ingress: [{ action: 'Deny', from: [all] }] }),
        cnp('two', {
          tier: 'Admin',
          priority: 3,
          subject: { pods: { podSelector: { matchLabels: { app: 'a' } } } },
          ingress: [],
        }),
        cnp('three', { tier: 'Baseline', priority: 3, subject: all, ingress: [] }),
      ]),
    );
    expect(s.counts).toEqual({ admin: 2, baseline: 1 });
    expect(s.ambiguous).toEqual([
      { tier: 'admin', priority: 3, policies: ['one', 'two'], sharedPods: 1, examples: ['x/a'] },
    ]);
  });
});
