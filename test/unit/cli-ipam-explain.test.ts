// The pure parts of `strand ipam` (when a reservation counts as leaked) and `strand explain` (the
// ends, the path as the backends program it, the policy verdicts from the compiler's model, the
// kernel route check, port parsing), with their JSON schemas.
import { describe, expect, it } from 'vitest';
import { explain, ExplainError, resolveEndpoint, type ExplainContext } from '../../src/agent/explain.ts';
import { explainPolicy } from '../../src/agent/explain-policy.ts';
import { nodeAddresses as nodeAddressesOf } from '../../src/agent/node-addresses.ts';
import type { NetworkPolicyInfo, NodeInfo, PodInfo } from '../../src/k8s/objects.ts';
import {
  checkRoute,
  explainExitCode,
  explainReportSchema,
  explainVerdict,
  formatExplain,
  lookupRoute,
  parsePortProto,
} from '../../src/cli/explain.ts';
import { ipamReportSchema, judgeReservation, type IpamReport } from '../../src/cli/ipam.ts';
import type { Route } from '../../src/kernel/index.ts';
import { hostVethName } from '../../src/plugin/names.ts';

describe('judgeReservation', () => {
  const r = { ip: '10.244.1.5', containerId: 'abc', ifname: 'eth0', ageSeconds: 600 };
  const base = { network: 'strand', reservation: r, podsByIp: undefined, minAgeSeconds: 300, force: false };

  it('in use while the host veth the plugin names for it exists', () => {
    const v = judgeReservation({ ...base, vethPresent: (n) => n === hostVethName('strand', 'abc', 'eth0') });
    expect(v).toMatchObject({
      hostVeth: hostVethName('strand', 'abc', 'eth0'),
      hostVethPresent: true,
      state: 'in-use',
    });
  });

  it('leaked when the veth is gone and the reservation is old enough; recent or held by a pod the agent sees otherwise', () => {
    expect(judgeReservation({ ...base, vethPresent: () => false }).state).toBe('leaked');
    expect(judgeReservation({ ...base, reservation: { ...r, ageSeconds: 5 }, vethPresent: () => false }).state).toBe(
      'recent',
    );
    expect(
      judgeReservation({ ...base, podsByIp: new Map([['10.244.1.5', 'default/web']]), vethPresent: () => false }),
    ).toMatchObject({ state: 'held-by-pod', pod: 'default/web' });
  });

  it('--force drops the age and the agent guards, never the veth one', () => {
    const force = {
      ...base,
      force: true,
      reservation: { ...r, ageSeconds: 0 },
      podsByIp: new Map([['10.244.1.5', 'default/web']]),
    };
    expect(judgeReservation({ ...force, vethPresent: () => false }).state).toBe('leaked');
    expect(judgeReservation({ ...force, vethPresent: () => true }).state).toBe('in-use');
  });

  it("another network's reservations are not judged; a legacy file without ifname is eth0's", () => {
    expect(judgeReservation({ ...base, network: 'other', vethPresent: () => false }).state).toBe('not-judged');
    const legacy = judgeReservation({
      ...base,
      reservation: { ip: '10.244.1.6', containerId: 'abc', ageSeconds: 900 },
      vethPresent: () => false,
    });
    expect(legacy.hostVeth).toBe(hostVethName('strand', 'abc', 'eth0'));
  });

  it('the report schema takes a report and refuses an unknown state', () => {
    const report: IpamReport = {
      kind: 'StrandIpam',
      v: 1,
      dataDir: '/d',
      agent: 'answered',
      minAgeSeconds: 300,
      networks: [
        {
          network: 'strand',
          dir: '/d/strand',
          judged: true,
          reservations: [judgeReservation({ ...base, vethPresent: () => false })],
        },
      ],
      leaked: 1,
      unseen: [],
    };
    expect(ipamReportSchema().parse(report)).toEqual(report);
    expect(
      ipamReportSchema().safeParse({
        ...report,
        networks: [{ ...report.networks[0], reservations: [{ ...r, state: 'gone' }] }],
      }).success,
    ).toBe(false);
  });
});

// ---- explain ----------------------------------------------------------------------------------------

function node(i: number): NodeInfo {
  return {
    metadata: {
      name: `node-${i}`,
      annotations: {
        'strand.dev/backend': 'vxlan',
        'strand.dev/underlay-ip': `198.18.0.${10 + i}`,
        'strand.dev/vtep-mac': `0e:00:00:00:00:0${i}`,
      },
    },
    spec: { podCIDRs: [`10.244.${i}.0/24`] },
    status: { addresses: [{ type: 'InternalIP', address: `198.18.0.${10 + i}` }], conditions: [] },
  };
}

function pod(name: string, nodeIndex: number, ip: string, labels: Record<string, string> = { app: name }): PodInfo {
  return {
    metadata: { name, namespace: 'default', labels },
    spec: { nodeName: `node-${nodeIndex}`, containers: [] },
    status: { phase: 'Running', podIPs: [{ ip }] },
  };
}

const nodes = [node(1), node(2)];
const pods = [pod('a', 1, '10.244.1.2'), pod('b', 1, '10.244.1.3'), pod('c', 2, '10.244.2.2')];
const config = {
  nodeName: 'node-1',
  backend: 'vxlan' as const,
  vni: 1,
  directRouting: false,
  bridge: 'cni0',
  clusterCIDRs: ['10.244.0.0/16'],
};
const ctx: ExplainContext = { config, nodes, pods, underlayPrefixes: ['198.18.0.0/24'], underlayIface: 'eth0' };

describe('explain: the ends and the path', () => {
  it('resolves namespace/pod, pod and node addresses, pod-network addresses without a pod and CIDRs outside', () => {
    expect(resolveEndpoint('default/c', ctx)).toMatchObject({
      kind: 'pod',
      ip: '10.244.2.2',
      node: 'node-2',
      pod: { name: 'c', node: 'node-2' },
    });
    expect(resolveEndpoint('10.244.1.3', ctx)).toMatchObject({ kind: 'pod', pod: { name: 'b' } });
    expect(resolveEndpoint('198.18.0.12', ctx)).toMatchObject({ kind: 'node', node: 'node-2' });
    expect(resolveEndpoint('10.244.2.77', ctx)).toMatchObject({ kind: 'pod-network', node: 'node-2' });
    expect(resolveEndpoint('203.0.113.0/24', ctx)).toMatchObject({
      kind: 'external',
      ip: '203.0.113.0',
      cidr: '203.0.113.0/24',
    });
    expect(() => resolveEndpoint('default/nope', ctx)).toThrow(ExplainError);
    expect(() => resolveEndpoint('not an address', ctx)).toThrow(/neither namespace\/pod, an address nor a CIDR/);
  });

  it('same node: bridged; across nodes: the VXLAN route the source node holds; outside: masqueraded', async () => {
    expect((await explain(ctx, { src: 'default/a', dst: 'default/b' })).path).toMatchObject({
      kind: 'same-node',
      srcNode: 'node-1',
      dstNode: 'node-1',
    });
    const cross = await explain(ctx, { src: 'default/a', dst: 'default/c', port: 80 });
    expect(cross.path).toMatchObject({
      kind: 'cross-node',
      route: {
        dst: '10.244.2.0/24',
        gateway: '10.244.2.0',
        devName: 'strand.1',
        onlink: true,
        detail: '10.244.2.0/24 via 10.244.2.0 dev strand.1 onlink',
      },
    });
    expect(cross.packet).toEqual({ src: '10.244.1.2', dst: '10.244.2.2', protocol: 'TCP', port: 80 });
    expect(
      (await explain({ ...ctx, config: { ...config, backend: 'host-gw' } }, { src: 'default/a', dst: 'default/c' }))
        .path.route,
    ).toMatchObject({ gateway: '198.18.0.12', dev: 'underlay', devName: 'eth0', onlink: false });
    const out = await explain(ctx, { src: 'default/a', dst: '198.19.0.1' });
    expect(out.path).toMatchObject({ kind: 'to-external', masqueraded: true });
    expect(await explain(ctx, { src: 'default/a', dst: '10.244.2.77' })).toMatchObject({
      allowed: false,
      path: { kind: 'unroutable' },
    });
  });
});

describe('explain on a large cluster', () => {
  it("gives the agent's event loop back while it computes the routes and compiles the nodes' models", async () => {
    // 250 nodes, 5,000 pods, 500 policies: each node's model and the routes are many slices of work.
    const many = Array.from({ length: 250 }, (_, i) => {
      const n = node((i % 200) + 1);
      return {
        ...n,
        metadata: { ...n.metadata, name: `node-${i + 1}` },
        spec: { podCIDRs: [`10.${100 + (i >> 8)}.${i & 255}.0/24`] },
      };
    });
    const manyPods = Array.from({ length: 5_000 }, (_, i) =>
      pod(`p${i}`, (i % 250) + 1, `10.${100 + ((i % 250) >> 8)}.${i % 250}.${2 + Math.floor(i / 250)}`, {
        app: `a${i % 50}`,
      }),
    );
    const policies: NetworkPolicyInfo[] = Array.from({ length: 500 }, (_, i) => ({
      metadata: { name: `np${i}`, namespace: 'default' },
      spec: {
        podSelector: { matchLabels: { app: `a${i % 50}` } },
        ingress: [
          { from: [{ podSelector: { matchLabels: { app: `a${(i + 1) % 50}` } } }], ports: [{ port: 80 + (i % 7) }] },
        ],
      },
    }));
    const caches = { nodes: many, pods: manyPods, namespaces: [{ metadata: { name: 'default' } }], policies };
    const big: ExplainContext = {
      ...ctx,
      config: { ...config, clusterCIDRs: ['10.96.0.0/11'] },
      nodes: many,
      pods: manyPods,
      policy: (p, s, d) => explainPolicy(caches, p, s, d, true),
    };
    // The loop's turns while explain works, and the longest stretch without one.
    let turning = true;
    let last = performance.now();
    let longest = 0;
    const turn = () => {
      const now = performance.now();
      longest = Math.max(longest, now - last);
      last = now;
      if (turning) setImmediate(turn);
    };
    setImmediate(turn);
    const started = performance.now();
    const answer = await explain(big, { src: 'default/p0', dst: 'default/p1', port: 81 });
    const took = performance.now() - started;
    turning = false;
    longest = Math.max(longest, performance.now() - last);
    expect(answer.path).toMatchObject({ kind: 'cross-node' });
    expect(answer.policy.available).toBe(true);
    // The loop turned while explain worked: it was not one task. How many turns depends on how fast
    // the slices run (a fast run took 2-4); the longest stretch without one is a slice, well under
    // the whole.
    expect(longest).toBeLessThan(took / 2);
  });
});

describe('explain: the policy verdict', () => {
  const policy: NetworkPolicyInfo = {
    metadata: { name: 'only-a', namespace: 'default' },
    spec: {
      podSelector: { matchLabels: { app: 'c' } },
      policyTypes: ['Ingress'],
      ingress: [{ from: [{ podSelector: { matchLabels: { app: 'a' } } }], ports: [{ protocol: 'TCP', port: 80 }] }],
    },
  };
  const caches = { nodes, pods, namespaces: [{ metadata: { name: 'default' } }], policies: [policy] };
  const withPolicy = (enforced: boolean): ExplainContext => ({
    ...ctx,
    policy: (p, s, d) => explainPolicy(caches, p, s, d, enforced),
  });

  it("judges the destination's ingress on its own node: the allowing rule, or the isolating policy and no rule", async () => {
    const ok = await explain(withPolicy(true), { src: 'default/a', dst: 'default/c', port: 80 });
    expect(ok.policy).toMatchObject({
      available: true,
      allowed: true,
      egress: { reason: 'not-isolated', node: 'node-1' },
      ingress: { reason: 'allowed', node: 'node-2', rules: [{ name: 'only-a', direction: 'ingress', index: 0 }] },
    });
    expect(ok.allowed).toBe(true);
    const no = await explain(withPolicy(true), { src: 'default/b', dst: 'default/c', port: 80 });
    expect(no.policy).toMatchObject({
      allowed: false,
      ingress: { reason: 'denied', isolatedBy: [{ namespace: 'default', name: 'only-a' }], rules: [] },
    });
    expect(no.allowed).toBe(false);
    expect((await explain(withPolicy(true), { src: 'default/a', dst: 'default/c', port: 81 })).allowed).toBe(false);
  });

  it('not enforced: the policies are explained, the connection is still allowed', async () => {
    const r = await explain(withPolicy(false), { src: 'default/b', dst: 'default/c', port: 80 });
    expect(r.policy).toMatchObject({ available: true, enforced: false, allowed: false });
    expect(r.allowed).toBe(true);
  });

  it("a node's addresses for the compiler: its Node addresses and its pods' gateways", () => {
    expect(nodeAddressesOf(node(2))).toEqual(['198.18.0.12', '10.244.2.1']);
  });
});

describe('explain: the kernel route and the report', () => {
  const route = (dst: string, extra: Partial<Route> = {}): Route => ({
    family: 4,
    dst,
    gateway: undefined,
    oif: 5,
    src: undefined,
    scope: 0,
    table: 254,
    metric: undefined,
    mtu: undefined,
    advmss: undefined,
    protocol: 0x53,
    type: 1,
    flags: 4,
    ...extra,
  });

  it('the longest prefix wins', () => {
    const routes = [
      route('0.0.0.0/0', { gateway: '198.18.0.1', oif: 2, protocol: 3, flags: 0 }),
      route('10.244.2.0/24', { gateway: '10.244.2.0' }),
    ];
    expect(lookupRoute(routes, '10.244.2.2')?.dst).toBe('10.244.2.0/24');
    expect(lookupRoute(routes, '198.19.0.1')?.dst).toBe('0.0.0.0/0');
  });

  it("the kernel's route against the model's: equal is a match, anything else a mismatch that makes the verdict unknown", async () => {
    const answer = await explain(ctx, { src: 'default/a', dst: 'default/c' });
    const dev = (i: number | undefined) => (i === 5 ? 'strand.1' : 'eth0');
    expect(checkRoute(answer, route('10.244.2.0/24', { gateway: '10.244.2.0' }), dev)).toMatchObject({
      matches: true,
      strand: true,
    });
    const wrong = checkRoute(answer, route('10.244.2.0/24', { gateway: '10.244.2.99' }), dev);
    expect(wrong.matches).toBe(false);
    expect(wrong.problem).toContain('but the kernel uses 10.244.2.0/24 via 10.244.2.99 dev strand.1 onlink');
    const report = {
      kind: 'StrandExplain' as const,
      v: 1 as const,
      answer,
      kernel: { route: wrong },
      mismatches: [wrong.problem!],
    };
    const full = { ...report, verdict: explainVerdict(report) };
    expect(full.verdict).toBe('unknown');
    expect(explainExitCode(full)).toBe(2);
    expect(explainReportSchema().parse(JSON.parse(JSON.stringify(full)))).toEqual(full);
    expect(formatExplain(full)).toContain('MODEL AND KERNEL DISAGREE');
  });

  it('PORT[/PROTO]', () => {
    expect(parsePortProto('80')).toEqual({ port: 80, protocol: 'TCP' });
    expect(parsePortProto('53/udp')).toEqual({ port: 53, protocol: 'UDP' });
    expect(() => parsePortProto('70000')).toThrow(/not in 1..65535/);
    expect(() => parsePortProto('80/icmp')).toThrow(/PORT or PORT\/PROTO/);
  });
});
