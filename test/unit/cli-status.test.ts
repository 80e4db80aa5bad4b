// strand status's pure judgement: peers' entries against the agent's desired state (the backends'
// planChanges) or, without the agent, against each other; the findings and the verdict; the text;
// and every report matching the JSON schema scripts read.
import { describe, expect, it } from 'vitest';
import type { InspectSnapshot } from '../../src/agent/inspect.ts';
import {
  desiredState,
  type ActualState,
  type DatapathMode,
  type Devices,
  type Peer,
} from '../../src/datapath/index.ts';
import { inspectSchema } from '../../src/cli/agent-query.ts';
import {
  checkPeersWithAgent,
  formatStatus,
  judgeStatus,
  peersFromKernel,
  statusExitCode,
  statusReportSchema,
  type StatusInputs,
} from '../../src/cli/status-report.ts';

const MODE: DatapathMode = { kind: 'vxlan', directRouting: false, vtepMac: '0e:00:00:00:00:01', vtepFamily: 4 };
const DEVICES: Devices = { underlay: { index: 2, name: 'eth0' }, vxlan: { index: 5, name: 'strand.1' } };

function peer(n: number): Peer {
  return {
    name: `n${n}`,
    underlayIps: [`198.18.0.${n}`],
    podCidrs: [`10.244.${n}.0/24`],
    vtepMac: `0e:00:00:00:00:0${n}`,
  };
}

function snapshot(peers: Peer[], extra: Partial<InspectSnapshot> = {}): InspectSnapshot {
  const desired = desiredState(
    { mode: MODE, local: { name: 'n1', podCidrs: ['10.244.1.0/24'] }, underlayPrefixes: ['198.18.0.0/24'] },
    peers,
  );
  return {
    v: 1,
    version: '0.1.0',
    pid: 42,
    startedAt: '2026-01-01T00:00:00.000Z',
    uptimeSeconds: 90,
    ready: true,
    reasons: [],
    lastPassAt: '2026-01-01T00:01:00.000Z',
    api: {
      server: 'https://198.18.1.1:6443',
      informers: [{ resource: 'nodes', synced: true, objects: 3, state: 'connected', failures: 0 }],
    },
    node: {
      name: 'n1',
      backend: 'vxlan',
      podCIDRs: ['10.244.1.0/24'],
      clusterCIDRs: ['10.244.0.0/16'],
      bridge: 'cni0',
      vxlanDevice: 'strand.1',
      underlay: { iface: 'eth0', addresses: ['198.18.0.1'], mtu: 1500, offload: {} },
      podMtu: 1450,
      paths: { stateDir: '/run/strand', cniConfDir: '/etc/cni/net.d', ipamDataDir: '/var/lib/cni/networks' },
    },
    datapath: { mode: MODE, underlayPrefixes: ['198.18.0.0/24'], peers, unusable: [], desired },
    pods: [],
    ...extra,
  };
}

/** What the kernel holds when every desired entry is in place. */
function inPlace(peers: Peer[]): ActualState {
  const d = snapshot(peers).datapath.desired;
  return {
    routes: d.routes.map((r) => ({ dst: r.dst, gateway: r.gateway, oif: 5, onlink: true, metric: undefined })),
    neighbours: d.neighbours.map((n) => ({ ip: n.ip, mac: n.mac, permanent: true })),
    fdb: d.fdb.map((f) => ({ mac: f.mac, dst: f.dst })),
  };
}

function inputs(extra: Partial<StatusInputs> = {}): StatusInputs {
  const peers = [peer(2), peer(3)];
  return {
    socket: '/run/strand/agent.sock',
    bridgeName: 'cni0',
    agent: { kind: 'answer', value: snapshot(peers) },
    nodeState: {
      path: '/run/strand/node.json',
      state: {
        version: 1,
        nodeName: 'n1',
        podCIDRs: ['10.244.1.0/24'],
        clusterCIDRs: ['10.244.0.0/16'],
        mtu: 1450,
        backend: 'vxlan',
        updatedAt: '2026-01-01T00:00:00Z',
      },
    },
    conflist: { path: '/etc/cni/net.d/10-strand.conflist', ok: true },
    kernel: {
      underlay: { iface: 'eth0', addresses: ['198.18.0.1'], mtu: 1500, offload: {} },
      vxlanDevice: { name: 'strand.1', mtu: 1450, up: true },
      bridge: { name: 'cni0', mtu: 1450, up: true },
      actual: inPlace(peers),
      devices: DEVICES,
      forwarding: [],
    },
    ipam: [
      {
        network: 'strand',
        dir: '/var/lib/cni/networks/strand',
        ranges: [{ index: 0, family: 4, ranges: '10.244.1.2-10.244.1.254', capacity: 253, used: 2, free: 251 }],
      },
    ],
    unseen: [],
    ...extra,
  };
}

describe('checkPeersWithAgent', () => {
  it('every wanted entry in place: each peer ok with its route, neighbour and FDB entry', () => {
    const peers = [peer(2), peer(3)];
    const r = checkPeersWithAgent(snapshot(peers).datapath, inPlace(peers), DEVICES);
    expect(r.stale).toEqual([]);
    expect(r.peers.map((p) => [p.name, p.ok, p.entries.map((e) => `${e.object}:${e.state}`).sort()])).toEqual([
      ['n2', true, ['fdb:ok', 'neighbour:ok', 'route:ok']],
      ['n3', true, ['fdb:ok', 'neighbour:ok', 'route:ok']],
    ]);
  });

  it('a missing route, a neighbour with the wrong MAC and an entry for no peer are each named', () => {
    const peers = [peer(2), peer(3)];
    const actual = inPlace(peers);
    actual.routes = actual.routes.filter((r) => r.dst !== '10.244.2.0/24');
    actual.neighbours = actual.neighbours.map((n) => (n.ip === '10.244.3.0' ? { ...n, mac: '0e:00:00:00:00:99' } : n));
    actual.routes.push({ dst: '10.244.9.0/24', gateway: '10.244.9.0', oif: 5, onlink: true, metric: undefined });
    const r = checkPeersWithAgent(snapshot(peers).datapath, actual, DEVICES);
    const n2 = r.peers.find((p) => p.name === 'n2');
    expect(n2?.ok).toBe(false);
    expect(n2?.entries.find((e) => e.object === 'route')).toEqual({
      object: 'route',
      detail: '10.244.2.0/24 via 10.244.2.0 dev strand.1 onlink',
      state: 'missing',
    });
    expect(r.peers.find((p) => p.name === 'n3')?.entries.find((e) => e.object === 'neighbour')).toMatchObject({
      state: 'differs',
      detail: '10.244.3.0 lladdr 0e:00:00:00:00:03 dev strand.1',
    });
    expect(r.stale).toEqual([
      { object: 'route', detail: '10.244.9.0/24 via 10.244.9.0 dev strand.1 onlink', state: 'extra' },
    ]);
  });
});

describe('peersFromKernel (agent stopped)', () => {
  it('one peer per Strand route, its neighbour and FDB entry followed from the route', () => {
    const peers = peersFromKernel(inPlace([peer(2)]), DEVICES);
    expect(peers).toEqual([
      {
        podCIDRs: ['10.244.2.0/24'],
        underlayIps: ['198.18.0.2'],
        source: 'kernel',
        ok: true,
        entries: [
          { object: 'route', detail: '10.244.2.0/24 via 10.244.2.0 dev strand.1 onlink', state: 'ok' },
          { object: 'neighbour', detail: '10.244.2.0 lladdr 0e:00:00:00:00:02 dev strand.1', state: 'ok' },
          { object: 'fdb', detail: '0e:00:00:00:00:02 dev strand.1 dst 198.18.0.2 self permanent', state: 'ok' },
        ],
      },
    ]);
  });

  it('a route whose neighbour or FDB entry is gone is not ok; host-gw routes need neither', () => {
    const a = inPlace([peer(2)]);
    expect(peersFromKernel({ ...a, fdb: [] }, DEVICES)[0]?.entries[2]).toMatchObject({
      object: 'fdb',
      state: 'missing',
    });
    expect(peersFromKernel({ ...a, neighbours: [] }, DEVICES)[0]).toMatchObject({
      ok: false,
      entries: [{ state: 'ok' }, { object: 'neighbour', state: 'missing' }],
    });
    const hostGw = peersFromKernel(
      {
        routes: [{ dst: '10.244.2.0/24', gateway: '198.18.0.2', oif: 2, onlink: false, metric: undefined }],
        neighbours: [],
        fdb: [],
      },
      { underlay: DEVICES.underlay },
    );
    expect(hostGw).toEqual([
      {
        podCIDRs: ['10.244.2.0/24'],
        underlayIps: ['198.18.0.2'],
        source: 'kernel',
        ok: true,
        entries: [{ object: 'route', detail: '10.244.2.0/24 via 198.18.0.2 dev eth0', state: 'ok' }],
      },
    ]);
  });
});

describe('judgeStatus', () => {
  it('healthy: no problems, exit 0, and the report matches the schema', () => {
    const r = judgeStatus(inputs());
    expect(r.problems).toEqual([]);
    expect(r.verdict).toBe('healthy');
    expect(statusExitCode(r)).toBe(0);
    expect(statusReportSchema().parse(JSON.parse(JSON.stringify(r)))).toEqual(r);
    expect(formatStatus(r, Date.parse('2026-01-01T00:01:30Z'))).toContain('node n1: healthy');
  });

  it('the agent stopped: a problem naming it, the node from the files, the peers from the kernel, what was not seen', () => {
    const r = judgeStatus(
      inputs({ agent: { kind: 'not-running', message: 'no agent socket at /run/strand/agent.sock' } }),
    );
    expect(r.verdict).toBe('unhealthy');
    expect(statusExitCode(r)).toBe(1);
    expect(r.problems[0]?.message).toMatch(/^the strand agent is not running on this node/);
    expect(r.node).toMatchObject({ name: 'n1', source: 'files', podMtu: 1450 });
    expect(r.peers.every((p) => p.source === 'kernel' && p.ok)).toBe(true);
    expect(r.unseen.join()).toContain('the agent is not running');
    statusReportSchema().parse(r);
  });

  it('not ready, a failing informer, an unusable node: each a finding with where to look', () => {
    const snap = snapshot([peer(2), peer(3)], {
      ready: false,
      reasons: ['not synced with the API server yet: pods'],
      api: {
        server: 'x',
        informers: [
          { resource: 'pods', synced: false, objects: 0, state: 'failing', failures: 3, lastError: 'ECONNREFUSED' },
        ],
      },
    });
    snap.datapath.unusable = [{ name: 'n4', reason: 'no strand.dev/underlay-ip annotation yet' }];
    const r = judgeStatus(inputs({ agent: { kind: 'answer', value: snap } }));
    const m = r.problems.map((p) => `${p.severity} ${p.message}`);
    expect(m).toContain('problem the agent is not ready: not synced with the API server yet: pods');
    expect(m).toContain('problem the API connection fails for pods (3 attempts in a row: ECONNREFUSED)');
    expect(m).toContain('warning node n4 is not a peer yet: no strand.dev/underlay-ip annotation yet');
    expect(r.problems.every((p) => p.see.length > 0)).toBe(true);
  });

  it('MTU trouble: a pod MTU above what VXLAN over the underlay carries', () => {
    const i = inputs();
    i.nodeState.state!.mtu = 1500;
    const r = judgeStatus(i);
    const p = r.problems.find((x) => x.message.startsWith('the pod MTU 1500'));
    expect(p?.message).toContain('eth0 MTU 1500 less 50 bytes of VXLAN headers = 1450');
    expect(p?.see).toContain('ip link show eth0');
    expect(r.verdict).toBe('unhealthy');
  });

  it('MTU trouble: pods made before the underlay MTU went down keep a bigger MTU', () => {
    const i = inputs();
    i.kernel!.underlay = { iface: 'eth0', addresses: ['198.18.0.1'], mtu: 1400, offload: {} };
    i.nodeState.state!.mtu = 1350;
    i.kernel!.vxlanDevice = { name: 'strand.1', mtu: 1350, up: true };
    i.kernel!.bridge = { name: 'cni0', mtu: 1350, up: true };
    i.kernel!.bridgePorts = [
      { name: 'vethaaaaaaaaaaa', mtu: 1450 },
      { name: 'vethbbbbbbbbbbb', mtu: 1350 },
    ];
    const r = judgeStatus(i);
    expect(r.problems.map((p) => p.message)).toEqual([
      '1 pod interface has an MTU above 1350, what the underlay carries now (vethaaaaaaaaaaa 1450): pods created before the MTU changed; restart them',
    ]);
  });

  it('an exhausted range is a problem, 90 % used a warning', () => {
    const full = judgeStatus(
      inputs({
        ipam: [
          {
            network: 'strand',
            dir: '/d/strand',
            ranges: [{ index: 0, family: 4, ranges: 'r', capacity: 10, used: 10, free: 0 }],
          },
        ],
      }),
    );
    expect(full.problems.find((p) => p.message.includes('is exhausted'))).toMatchObject({
      severity: 'problem',
      see: 'strand ipam; /d/strand',
    });
    const nearly = judgeStatus(
      inputs({
        ipam: [
          {
            network: 'strand',
            dir: '/d/strand',
            ranges: [{ index: 0, family: 4, ranges: 'r', capacity: 10, used: 9, free: 1 }],
          },
        ],
      }),
    );
    expect(nearly.problems).toMatchObject([{ severity: 'warning' }]);
    expect(nearly.verdict).toBe('healthy');
  });

  it('the kernel unreadable and nothing else wrong: cannot tell (exit 2)', () => {
    const i = inputs();
    delete i.kernel;
    const r = judgeStatus({ ...i, kernelError: 'netlink: EPERM' });
    expect(r.verdict).toBe('unknown');
    expect(statusExitCode(r)).toBe(2);
    expect(r.unseen).toContain("the kernel's datapath: netlink: EPERM");
  });

  it('a missing bridge is named', () => {
    const i = inputs();
    delete i.kernel!.bridge;
    expect(judgeStatus(i).problems.map((p) => p.message)).toEqual(['the pod bridge cni0 does not exist']);
  });

  it('missing node state and conflist are named with their paths', () => {
    const r = judgeStatus(
      inputs({
        nodeState: { path: '/s/node.json', error: 'not found' },
        conflist: { path: '/c/10-strand.conflist', ok: false, error: 'missing' },
      }),
    );
    expect(r.problems.map((p) => p.see)).toEqual(expect.arrayContaining(['/s/node.json', '/c/10-strand.conflist']));
  });
});

describe('ClusterNetworkPolicies in strand status', () => {
  const policy = { policies: 2, pods: 3 };
  it('counts per tier, warns of ambiguous equal priorities and of reported fields, each with where to look', () => {
    const snap = snapshot([peer(2), peer(3)], {
      policy: {
        ...policy,
        clusterNetworkPolicies: {
          served: true,
          admin: 2,
          baseline: 1,
          ambiguous: [
            { tier: 'admin', priority: 10, policies: ['a', 'b'], sharedPods: 4, examples: ['x/p1', 'x/p2', 'x/p3'] },
          ],
          problems: [
            {
              kind: 'unsupported',
              policy: 'dns',
              field: 'spec.egress[0].to[0].domainNames',
              reason: 'domainNames peers are not supported',
            },
          ],
        },
      },
    });
    const r = judgeStatus(inputs({ agent: { kind: 'answer', value: snap } }));
    statusReportSchema().parse(JSON.parse(JSON.stringify(r)));
    const m = r.problems.map((p) => `${p.severity} ${p.message}`);
    expect(m).toContain(
      'warning ClusterNetworkPolicies a and b have the same admin priority 10 and both select 4 pods (x/p1, x/p2, x/p3, …): Strand applies a first (by name); the API leaves this order open',
    );
    expect(m).toContain(
      'warning ClusterNetworkPolicy dns: unsupported spec.egress[0].to[0].domainNames: domainNames peers are not supported',
    );
    // Warnings: the policies are enforced (fail closed where they are bad); the node is healthy.
    expect(r.verdict).toBe('healthy');
    const text = formatStatus(r, Date.parse('2026-01-01T00:01:30Z'));
    expect(text).toContain('ClusterNetworkPolicies: 2 Admin, 1 Baseline, 1 ambiguous priorities, 1 fields reported');
  });

  it('says when the CRD is not installed, without a finding', () => {
    const snap = snapshot([peer(2), peer(3)], {
      policy: {
        ...policy,
        clusterNetworkPolicies: { served: false, admin: 0, baseline: 0, ambiguous: [], problems: [] },
      },
    });
    const r = judgeStatus(inputs({ agent: { kind: 'answer', value: snap } }));
    expect(r.problems).toEqual([]);
    expect(formatStatus(r, Date.parse('2026-01-01T00:01:30Z'))).toContain(
      'ClusterNetworkPolicies: CRD not installed (none enforced)',
    );
  });
});

describe('the agent snapshot schema', () => {
  it('takes what the agent sends and refuses another shape, naming the field', () => {
    const snap = snapshot([peer(2)]);
    expect(inspectSchema().parse(JSON.parse(JSON.stringify(snap)))).toEqual(snap);
    const bad = inspectSchema().safeParse({ ...snap, node: { ...snap.node, backend: 'flannel' } });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]?.path).toEqual(['node', 'backend']);
  });
});
