// The observing commands on a simulated three-node VXLAN cluster: `strand status`, `strand ipam`
// (and gc) and `strand explain`, each run as an operator runs it on a node (inside the node's
// namespace, with that node's directories), every JSON answer checked against its schema. The tests
// run in order on one cluster and break it step by step: a peer's route removed by hand, a range
// exhausted, a reservation leaked, the agent stopped; each time the command must name the problem.
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ipamReportSchema, type IpamReport } from '../../src/cli/ipam.ts';
import { statusReportSchema, type StatusReport } from '../../src/cli/status-report.ts';
import { explainReportSchema, type ExplainReport } from '../../src/cli/explain.ts';
import {
  describeNode,
  mapLimit,
  OUTSIDE_IP,
  POD_PORT,
  run,
  startMeshCluster,
  tcpWhoami,
  waitFor,
  type SimCluster,
  type SimNode,
  type SimPod,
} from '../support/sim.ts';

let cluster: SimCluster;
let pods: SimPod[] = [];
let convergence: Error | undefined;

beforeAll(async () => {
  ({ cluster, pods, convergence } = await startMeshCluster({ nodes: 3, backend: 'vxlan' }));
}, 150_000);

afterAll(async () => {
  await cluster?.destroy();
});

/** `strand <args> -o json` inside the node's namespace with its directories. */
async function strand(node: SimNode, args: string[]): Promise<{ code: number; json: unknown; stderr: string }> {
  const r = await run(
    'ip',
    [
      'netns',
      'exec',
      node.netns,
      cluster.strand,
      ...args,
      '--state-dir',
      node.stateDir,
      '--cni-conf-dir',
      node.confDir,
      '--ipam-data-dir',
      node.ipamDir,
      '-o',
      'json',
    ],
    { timeoutMs: 30_000 },
  );
  let json: unknown;
  try {
    json = JSON.parse(r.stdout);
  } catch {
    throw new Error(
      `strand ${args.join(' ')} on ${node.name} printed no JSON (exit ${r.code}): ${r.stdout} ${r.stderr}`,
    );
  }
  return { code: r.code, json, stderr: r.stderr };
}

async function status(node: SimNode): Promise<{ code: number; report: StatusReport }> {
  const r = await strand(node, ['status']);
  const parsed = statusReportSchema().safeParse(r.json);
  if (!parsed.success)
    throw new Error(
      `status of ${node.name} does not match its schema: ${parsed.error.message}\n${JSON.stringify(r.json)}`,
    );
  return { code: r.code, report: parsed.data };
}

async function ipam(node: SimNode, args: string[] = []): Promise<{ code: number; report: IpamReport }> {
  const r = await strand(node, ['ipam', ...args]);
  const parsed = ipamReportSchema().safeParse(r.json);
  if (!parsed.success)
    throw new Error(
      `ipam of ${node.name} does not match its schema: ${parsed.error.message}\n${JSON.stringify(r.json)}`,
    );
  return { code: r.code, report: parsed.data };
}

async function explain(node: SimNode, args: string[]): Promise<{ code: number; report: ExplainReport }> {
  const r = await strand(node, ['explain', ...args]);
  const parsed = explainReportSchema().safeParse(r.json);
  if (!parsed.success)
    throw new Error(
      `explain on ${node.name} does not match its schema: ${parsed.error.message}\n${JSON.stringify(r.json)}`,
    );
  return { code: r.code, report: parsed.data };
}

function messages(r: StatusReport): string {
  return r.problems.map((p) => `${p.severity}: ${p.message} (see ${p.see})`).join('\n');
}

describe('strand status', () => {
  it('says a healthy node is healthy: agent ready and synced, every peer with its route, neighbour and FDB entry in the kernel', async () => {
    if (convergence) throw convergence;
    for (const n of cluster.nodes) {
      const { code, report } = await status(n);
      expect(
        report.problems.filter((p) => p.severity === 'problem'),
        `${n.name}:\n${messages(report)}\n${describeNode(cluster, n.name)}`,
      ).toEqual([]);
      expect(code).toBe(0);
      expect(report.verdict).toBe('healthy');
      expect(report.agent).toMatchObject({ running: true, ready: true });
      expect(report.agent.api?.informers.every((i) => i.synced && i.state === 'connected')).toBe(true);
      expect(report.node).toMatchObject({
        name: n.name,
        backend: 'vxlan',
        podCIDRs: [n.podCidr],
        podMtu: 1450,
        source: 'agent',
      });
      expect(report.node.underlay).toMatchObject({ iface: 'eth0', addresses: [n.underlayIp], mtu: 1500 });
      expect(report.node.vxlanDevice).toMatchObject({ name: cluster.vxlanDevice, up: true });
      const others = cluster.nodes.filter((m) => m !== n);
      expect(report.peers.map((p) => p.name).sort()).toEqual(others.map((m) => m.name).sort());
      for (const p of report.peers) {
        expect(p.ok, JSON.stringify(p)).toBe(true);
        expect(p.entries.map((e) => e.object).sort()).toEqual(['fdb', 'neighbour', 'route']);
      }
      expect(report.ipam[0]?.ranges[0]).toMatchObject({ family: 4, used: 2, capacity: 253, free: 251 });
    }
  });

  it("names a peer's route removed by hand, and the command that shows it", async () => {
    const [n1, n2] = cluster.nodes as [SimNode, SimNode];
    // The agent's periodic pass may put it back between the change and the look: remove it again then.
    let seen: { code: number; report: StatusReport } | undefined;
    for (let i = 0; i < 3 && seen?.code !== 1; i++) {
      n1.exec('ip', ['route', 'del', n2.podCidr, 'proto', '83']);
      seen = await status(n1);
    }
    const { code, report } = seen!;
    expect(code).toBe(1);
    expect(report.verdict).toBe('unhealthy');
    const peer = report.peers.find((p) => p.name === n2.name);
    expect(peer?.ok).toBe(false);
    expect(peer?.entries.find((e) => e.object === 'route')).toMatchObject({
      state: 'missing',
      detail: `${n2.podCidr} via ${n2.vtepIp} dev ${cluster.vxlanDevice} onlink`,
    });
    const p = report.problems.find((x) => x.message.includes(`node ${n2.name}: route`));
    expect(p, messages(report)).toBeDefined();
    expect(p?.see).toBe('ip route show proto 83');
    // The text form says it too.
    const text = await run('ip', [
      'netns',
      'exec',
      n1.netns,
      cluster.strand,
      'status',
      '--state-dir',
      n1.stateDir,
      '--cni-conf-dir',
      n1.confDir,
      '--ipam-data-dir',
      n1.ipamDir,
    ]);
    expect(text.code).toBe(1);
    expect(text.stdout).toContain('NOT HEALTHY');
    expect(text.stdout).toContain(`MISSING route ${n2.podCidr}`);
    // The agent puts it back on its next pass: a Node event makes one now.
    await cluster.api.patch(
      'nodes',
      n2.name,
      { metadata: { labels: { 'strand.dev/test-touch': '1' } } },
      { type: 'merge' },
    );
    await cluster.waitRoutes();
    expect((await status(n1)).code).toBe(0);
  });

  it('names an exhausted IPAM range', async () => {
    const n3 = cluster.nodes[2] as SimNode;
    const dir = join(n3.ipamDir, 'strand');
    const held = new Set(readdirSync(dir));
    const made: string[] = [];
    // Every address of 10.244.3.0/24 but the gateway (.1), the network and broadcast addresses.
    for (let i = 2; i <= 254; i++) {
      const name = `10.244.3.${i}`;
      if (held.has(name)) continue;
      writeFileSync(join(dir, name), `stt-filler-${i}\r\neth0`, { mode: 0o600 });
      made.push(name);
    }
    try {
      const { code, report } = await status(n3);
      expect(code).toBe(1);
      expect(report.ipam[0]?.ranges[0]).toMatchObject({ used: 253, free: 0 });
      const p = report.problems.find((x) => x.message.includes('is exhausted'));
      expect(p, messages(report)).toBeDefined();
      expect(p?.see).toContain(dir);
    } finally {
      for (const name of made) rmSync(join(dir, name), { force: true });
    }
    expect((await status(n3)).code).toBe(0);
  });
});

describe('strand ipam', () => {
  it('lists every reservation with its container and host veth, and none leaked on a healthy node', async () => {
    const n1 = cluster.nodes[0] as SimNode;
    const { code, report } = await ipam(n1);
    expect(code).toBe(0);
    const strandNet = report.networks.find((x) => x.network === 'strand');
    const mine = pods.filter((p) => p.node === n1);
    expect(strandNet?.reservations.map((r) => r.ip).sort()).toEqual(mine.map((p) => p.ip).sort());
    for (const r of strandNet?.reservations ?? []) {
      const pod = mine.find((p) => p.ip === r.ip);
      expect(r).toMatchObject({
        containerId: pod?.containerId,
        ifname: 'eth0',
        hostVethPresent: true,
        state: 'in-use',
        pod: `${pod?.namespace}/${pod?.name}`,
      });
    }
    expect(report.leaked).toBe(0);
  });

  it('finds the reservation of an ADD that was killed before it made the veth, and gc releases it under the lock', async () => {
    const n2 = cluster.nodes[1] as SimNode;
    // What a killed ADD leaves: strand-ipam ran (the address is reserved), the plugin never made the veth.
    const netconf = cluster.netconfOf(n2);
    const containerId = `sttleak${Date.now().toString(16)}`;
    const add = await run('ip', ['netns', 'exec', n2.netns, join(n2.binDir, 'strand-ipam')], {
      env: {
        PATH: process.env.PATH,
        CNI_COMMAND: 'ADD',
        CNI_CONTAINERID: containerId,
        CNI_NETNS: '/proc/self/ns/net',
        CNI_IFNAME: 'eth0',
        CNI_PATH: n2.binDir,
      },
      input: JSON.stringify({
        cniVersion: netconf.cniVersion,
        name: netconf.name,
        type: 'strand-ipam',
        ipam: netconf.ipam,
      }),
    });
    expect(add.code, add.stdout + add.stderr).toBe(0);
    const ip = (JSON.parse(add.stdout) as { ips: { address: string }[] }).ips[0]!.address.split('/')[0]!;

    // Young: left alone unless asked.
    const young = await ipam(n2);
    expect(
      young.report.networks.find((x) => x.network === 'strand')?.reservations.find((r) => r.ip === ip),
    ).toMatchObject({ containerId, hostVethPresent: false, state: 'recent' });
    expect(young.code).toBe(0);

    const found = await ipam(n2, ['--min-age', '0']);
    expect(found.code).toBe(1);
    expect(found.report.leaked).toBe(1);
    expect(
      found.report.networks.find((x) => x.network === 'strand')?.reservations.find((r) => r.ip === ip),
    ).toMatchObject({ state: 'leaked' });

    const dry = await ipam(n2, ['gc', '--min-age', '0', '--dry-run']);
    expect(dry.report.gc).toMatchObject({ dryRun: true, released: [{ network: 'strand', ip, containerId }] });
    expect(readdirSync(join(n2.ipamDir, 'strand'))).toContain(ip);

    const gc = await ipam(n2, ['gc', '--min-age', '0']);
    expect(gc.code).toBe(0);
    expect(gc.report.gc?.released).toEqual([{ network: 'strand', ip, containerId }]);
    expect(readdirSync(join(n2.ipamDir, 'strand'))).not.toContain(ip);
    // The pods' own reservations stay.
    for (const p of pods.filter((x) => x.node === n2)) expect(readdirSync(join(n2.ipamDir, 'strand'))).toContain(p.ip);
  });
});

describe('strand explain', () => {
  it('agrees with the probed connectivity on every pair of pods, by name and by address, with the route each takes', async () => {
    const pairs = pods.flatMap((from) => pods.filter((to) => to !== from).map((to) => ({ from, to })));
    const results = await mapLimit(pairs, 4, async ({ from, to }) => {
      const byName = await explain(from.node, [
        `${from.namespace}/${from.name}`,
        `${to.namespace}/${to.name}`,
        `${POD_PORT}/TCP`,
      ]);
      const byIp = await explain(from.node, [from.ip, to.ip, String(POD_PORT)]);
      const probed = (await tcpWhoami(from.netns, to.ip)) !== undefined;
      return { from, to, byName, byIp, probed };
    });
    for (const { from, to, byName, byIp, probed } of results) {
      const what = `${from.name} (${from.node.name}) → ${to.name} (${to.node.name})`;
      expect(probed, `${what}: probe`).toBe(true);
      expect(byName.report.verdict, `${what}: ${JSON.stringify(byName.report)}`).toBe('allowed');
      expect(byName.code).toBe(0);
      expect(byIp.report.verdict).toBe('allowed');
      expect(byIp.report.answer.src).toMatchObject({ kind: 'pod', pod: { name: from.name, node: from.node.name } });
      const path = byName.report.answer.path;
      if (from.node === to.node) {
        expect(path.kind).toBe('same-node');
        expect(path.route).toBeUndefined();
      } else {
        expect(path).toMatchObject({
          kind: 'cross-node',
          srcNode: from.node.name,
          dstNode: to.node.name,
          route: { dst: to.node.podCidr, gateway: to.node.vtepIp, devName: cluster.vxlanDevice, onlink: true },
        });
        // Asked on the source's node, the kernel's route is the model's.
        expect(byName.report.kernel?.route).toMatchObject({ strand: true, matches: true });
      }
      expect(byName.report.mismatches).toEqual([]);
      expect(byName.report.answer.policy).toMatchObject({
        available: true,
        allowed: true,
        egress: { reason: 'not-isolated' },
        ingress: { reason: 'not-isolated' },
      });
    }
  });

  it('names the policy that isolates a pod and the rule that lets a connection in, or that none does, and agrees with the probe', async () => {
    const target = pods.find((p) => p.node === cluster.nodes[0]) as SimPod;
    const friend = pods.find((p) => p.node === cluster.nodes[1]) as SimPod;
    const stranger = pods.find((p) => p.node === cluster.nodes[2]) as SimPod;
    const policy = {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'stt-only-friend', namespace: 'default' },
      spec: {
        podSelector: { matchLabels: { app: target.name } },
        policyTypes: ['Ingress'],
        ingress: [
          {
            from: [{ podSelector: { matchLabels: { app: friend.name } } }],
            ports: [{ protocol: 'TCP', port: POD_PORT }],
          },
        ],
      },
    };
    await cluster.api.create('networkpolicies', policy);
    try {
      const ask = (from: SimPod, port: string) =>
        explain(from.node, [`${from.namespace}/${from.name}`, `${target.namespace}/${target.name}`, port]);
      // The agent of the source's node sees the policy once its informer has it.
      let ok: ExplainReport | undefined;
      for (let i = 0; i < 50 && ok?.answer.policy.available !== true; i++) {
        const r = (await ask(friend, `${POD_PORT}/TCP`)).report;
        if (r.answer.policy.available && r.answer.policy.ingress.reason !== 'not-isolated') ok = r;
        else await new Promise((res) => setTimeout(res, 100));
      }
      expect(ok?.answer.policy).toMatchObject({
        available: true,
        allowed: true,
        ingress: {
          reason: 'allowed',
          node: target.node.name,
          isolatedBy: [{ namespace: 'default', name: 'stt-only-friend' }],
          rules: [{ namespace: 'default', name: 'stt-only-friend', direction: 'ingress', index: 0 }],
        },
        egress: { reason: 'not-isolated', node: friend.node.name },
      });
      const denied = (await ask(stranger, `${POD_PORT}/TCP`)).report;
      expect(denied.answer.policy).toMatchObject({
        available: true,
        allowed: false,
        ingress: { reason: 'denied', isolatedBy: [{ name: 'stt-only-friend' }], rules: [] },
      });
      const otherPort = (await ask(friend, '9999/TCP')).report;
      expect(otherPort.answer.policy).toMatchObject({ allowed: false, ingress: { reason: 'denied' } });
      // The verdict is the kernel's when the agent enforces policy, and then the probe must agree.
      for (const [from, r] of [
        [friend, ok!],
        [stranger, denied],
      ] as const) {
        const probed = (await tcpWhoami(from.netns, target.ip, POD_PORT, 2)) !== undefined;
        const enforced = r.answer.policy.available && r.answer.policy.enforced;
        expect(r.verdict, `${from.name} → ${target.name}: probe ${probed}`).toBe(probed ? 'allowed' : 'denied');
        if (!enforced) expect(probed).toBe(true);
      }

      // --kernel on the target's node (which enforces its ingress): the rule that implements each
      // decision, and its counter rising with a probe.
      const kernel = async (from: SimPod) => {
        const r = await explain(target.node, [
          `${from.namespace}/${from.name}`,
          `${target.namespace}/${target.name}`,
          `${POD_PORT}/TCP`,
          '--kernel',
        ]);
        const nft = r.report.kernel?.nft;
        if (!nft || 'error' in nft) throw new Error(`no nft findings: ${JSON.stringify(r.report.kernel)}`);
        expect(r.report.mismatches).toEqual([]);
        const d = nft.directions.find((x) => x.direction === 'ingress');
        expect(
          nft.elsewhere.some((e) => e.startsWith(`egress of default/${from.name} is enforced on ${from.node.name}`)),
        ).toBe(true);
        return d!;
      };
      const allowRule = await kernel(friend);
      expect(allowRule).toMatchObject({
        matches: true,
        pod: { name: target.name },
        rules: [{ comment: 'default/stt-only-friend ingress 0' }],
      });
      expect(allowRule.element).toMatch(/^10\.244\.1\.\d+ : jump agent-pol-in-/);
      const denyRule = await kernel(stranger);
      expect(denyRule).toMatchObject({ matches: true, rules: [{ comment: 'deny' }] });
      const before = { allow: allowRule.packets ?? 0, deny: denyRule.packets ?? 0 };
      expect(await tcpWhoami(friend.netns, target.ip, POD_PORT, 2)).toBe(friend.ip);
      expect(await tcpWhoami(stranger.netns, target.ip, POD_PORT, 1)).toBeUndefined();
      expect((await kernel(friend)).packets).toBeGreaterThan(before.allow);
      expect((await kernel(stranger)).packets).toBeGreaterThan(before.deny);

      // status reports the policy programming.
      const st = await status(target.node);
      expect(st.report.policy).toMatchObject({ policies: 1, pods: 1 });
      expect(st.report.policy?.lastProgrammingMs).toBeGreaterThanOrEqual(0);

      // A mismatch: the pod's element removed from the kernel's verdict map by hand.
      const map = allowRule.map!;
      target.node.exec('nft', ['delete', 'element', 'inet', 'strand', map, `{ ${target.ip} }`]);
      const broken = await explain(target.node, [
        `${friend.namespace}/${friend.name}`,
        `${target.namespace}/${target.name}`,
        `${POD_PORT}/TCP`,
        '--kernel',
      ]);
      expect(broken.code).toBe(2);
      expect(broken.report.verdict).toBe('unknown');
      expect(broken.report.mismatches.join()).toContain(`but ${map} has no element for ${target.ip}`);
    } finally {
      await cluster.api.delete('networkpolicies', 'stt-only-friend', 'default');
    }
  });

  it('explains a pod reaching outside the cluster as masqueraded, as the probe sees it', async () => {
    const p = pods[0] as SimPod;
    const { code, report } = await explain(p.node, [`${p.namespace}/${p.name}`, OUTSIDE_IP, `${POD_PORT}`]);
    expect(code).toBe(0);
    expect(report.answer.dst.kind).toBe('external');
    expect(report.answer.path).toMatchObject({ kind: 'to-external', masqueraded: true });
    expect(await tcpWhoami(p.netns, OUTSIDE_IP)).toBe(p.node.underlayIp);
  });

  it('reports a route in the kernel that differs from the model as a mismatch, not as an answer', async () => {
    const [n1, n2] = cluster.nodes as [SimNode, SimNode];
    const from = pods.find((p) => p.node === n1) as SimPod;
    const to = pods.find((p) => p.node === n2) as SimPod;
    const good = n1.routes().find((r) => r.dst === n2.podCidr);
    n1.exec('ip', [
      'route',
      'replace',
      n2.podCidr,
      'via',
      '10.244.2.99',
      'dev',
      cluster.vxlanDevice,
      'onlink',
      'proto',
      '83',
    ]);
    try {
      const { code, report } = await explain(n1, [from.ip, to.ip]);
      expect(code).toBe(2);
      expect(report.verdict).toBe('unknown');
      expect(report.mismatches[0]).toContain(
        `the model's route is ${n2.podCidr} via ${n2.vtepIp} dev ${cluster.vxlanDevice} onlink but the kernel uses ${n2.podCidr} via 10.244.2.99`,
      );
    } finally {
      n1.exec('ip', [
        'route',
        'replace',
        n2.podCidr,
        'via',
        good?.gateway ?? n2.vtepIp,
        'dev',
        cluster.vxlanDevice,
        'onlink',
        'proto',
        '83',
      ]);
    }
    expect((await explain(n1, [from.ip, to.ip])).code).toBe(0);
  });

  it('says it cannot tell, and why, for an end it does not know', async () => {
    const n1 = cluster.nodes[0] as SimNode;
    const r = await run('ip', [
      'netns',
      'exec',
      n1.netns,
      cluster.strand,
      'explain',
      'default/no-such-pod',
      '10.244.2.2',
      '--state-dir',
      n1.stateDir,
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no pod default/no-such-pod');
  });
});

describe('strand status during an API server outage', () => {
  it('names the failing API connection per resource, and is healthy again once the API is back', async () => {
    const n3 = cluster.nodes[2] as SimNode;
    await cluster.api.stop();
    let failing: StatusReport | undefined;
    try {
      await waitFor(
        async () => {
          const r = await status(n3);
          if (r.code === 1 && r.report.agent.api?.informers.some((i) => i.state === 'failing')) failing = r.report;
          return failing !== undefined;
        },
        20_000,
        'status to see the API connection fail',
        250,
      );
    } finally {
      await cluster.api.start();
    }
    const p = failing!.problems.find((x) =>
      /^the API connection fails for (nodes|pods|namespaces|networkpolicies) \(\d+ attempts? in a row/.test(x.message),
    );
    expect(p, messages(failing!)).toBeDefined();
    const inf = failing!.agent.api!.informers.find((i) => i.state === 'failing')!;
    expect(inf.lastError).toBeTruthy();
    expect(inf.lastErrorAt).toBeTruthy();
    await waitFor(async () => (await status(n3)).code === 0, 40_000, 'status healthy once the API is back', 500);
  });
});

describe('strand status with the agent stopped', () => {
  it('says the agent is not running, still checks the peers from the kernel and the files, and says what it could not see', async () => {
    const n2 = cluster.nodes[1] as SimNode;
    await n2.stopAgent();
    const { code, report } = await status(n2);
    expect(code).toBe(1);
    expect(report.agent.running).toBe(false);
    expect(report.problems.find((p) => p.message.startsWith('the strand agent is not running'))).toBeDefined();
    expect(report.node).toMatchObject({
      name: n2.name,
      backend: 'vxlan',
      podCIDRs: [n2.podCidr],
      podMtu: 1450,
      source: 'files',
    });
    expect(report.peers).toHaveLength(2);
    for (const p of report.peers) {
      expect(p).toMatchObject({ source: 'kernel', ok: true });
      expect(p.entries.map((e) => e.object).sort()).toEqual(['fdb', 'neighbour', 'route']);
    }
    expect(report.peers.map((p) => p.underlayIps[0]).sort()).toEqual(
      cluster.nodes
        .filter((m) => m !== n2)
        .map((m) => m.underlayIp)
        .sort(),
    );
    expect(report.unseen.some((u) => u.includes('agent is not running'))).toBe(true);
    expect(report.ipam[0]?.ranges[0]?.used).toBe(2);

    // A neighbour entry removed by hand is seen without the agent too.
    const n3 = cluster.nodes[2] as SimNode;
    n2.exec('ip', ['neigh', 'del', n3.vtepIp, 'dev', cluster.vxlanDevice]);
    const after = await status(n2);
    const bad = after.report.peers.find((p) => p.podCIDRs[0] === n3.podCidr);
    expect(bad?.entries.find((e) => e.object === 'neighbour')?.state).toBe('missing');
    expect(
      after.report.problems.some(
        (p) =>
          p.message.includes(`pod CIDR ${n3.podCidr}: neighbour`) &&
          p.see === `ip neigh show dev ${cluster.vxlanDevice}`,
      ),
    ).toBe(true);
  });
});
