// The rendered layout with real packets: a "node" namespace with a bridge (br_netfilter on, as the
// agent sets it) and three "pods" on it, TCP servers in them; the policy's full build applied in the
// node namespace by the real runner; TCP connections between the pods (bridged: the forward hook
// through br_netfilter) and from the node (output) must pass or fail as the model says. Then a
// diff (a peer's label change) and a rebuild, probed again. The simulated-cluster e2e tests cover
// the agent around it; this checks that the kernel reads the rules as the renderer means them.
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PodInfo } from '../../src/k8s/objects.ts';
import { createNftRunner } from '../../src/nft/runner.ts';
import {
  compilePolicy,
  diffPolicy,
  evaluatePolicy,
  fullBuildPolicy,
  renderPolicy,
  type CompiledPolicy,
  type DesiredPolicyTable,
} from '../../src/policy/index.ts';
import { testName } from '../support/names.ts';
import { TestNetns } from '../support/netns.ts';
import { namespace, pod, policy } from '../support/netpol.ts';
import { sh, trySh } from '../support/sh.ts';

const node = TestNetns.create('pnod');
const pods = { a: TestNetns.create('pa'), b: TestNetns.create('pb'), c: TestNetns.create('pc') };
const IPS = { a: '10.99.0.11', b: '10.99.0.12', c: '10.99.0.13' };
const NODE_IP = '10.99.0.1';
const servers: ChildProcess[] = [];
const nft = createNftRunner({ netns: node.name });

beforeAll(() => {
  const br = testName('br');
  node.exec('ip', ['link', 'add', br, 'type', 'bridge']);
  node.exec('ip', ['addr', 'add', `${NODE_IP}/24`, 'dev', br]);
  node.exec('ip', ['link', 'set', br, 'up']);
  node.exec('sysctl', ['-q', '-w', 'net.bridge.bridge-nf-call-iptables=1']);
  for (const [name, ns] of Object.entries(pods)) {
    const host = testName('veth');
    sh('ip', ['-n', node.name, 'link', 'add', host, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.name]);
    node.exec('ip', ['link', 'set', host, 'master', br, 'up']);
    ns.exec('ip', ['addr', 'add', `${IPS[name as keyof typeof IPS]}/24`, 'dev', 'eth0']);
    ns.exec('ip', ['link', 'set', 'eth0', 'up']);
    for (const port of ['80', '81']) {
      const p = spawn('ip', ['netns', 'exec', ns.name, 'nc', '-lk', port], { stdio: 'ignore' });
      servers.push(p);
    }
  }
  // The servers are listening once the node reaches each of them.
  const deadline = Date.now() + 10_000;
  for (const ip of Object.values(IPS))
    for (const port of [80, 81]) while (!connects(node, ip, port) && Date.now() < deadline);
});

afterAll(() => {
  for (const p of servers) if (p.pid !== undefined) p.kill();
  for (const ns of [...Object.values(pods), node]) ns.destroy();
});

/** A TCP connection within 1.5 s (a dropped SYN times out; no listener would refuse at once). */
function connects(from: TestNetns, to: string, port: number): boolean {
  return (
    trySh('ip', [
      'netns',
      'exec',
      from.name,
      'timeout',
      '1.5',
      'bash',
      '-c',
      'exec 3<>"/dev/tcp/$0/$1"',
      to,
      String(port),
    ]).status === 0
  );
}

function podInfos(cLabels: Record<string, string>): PodInfo[] {
  return [
    pod({ namespace: 'x', name: 'a', labels: { pod: 'a' }, node: 'n1', ips: [IPS.a] }),
    pod({ namespace: 'x', name: 'b', labels: { pod: 'b' }, node: 'n1', ips: [IPS.b] }),
    pod({ namespace: 'y', name: 'c', labels: cLabels, node: 'n1', ips: [IPS.c] }),
  ];
}

const POLICIES = [
  policy('x', 'deny', { podSelector: {}, policyTypes: ['Ingress'] }),
  // a: ingress from pod=b in any namespace on 80; egress only to y (so b's connection to a lives
  // on conntrack's established/related for its replies).
  policy('x', 'a', {
    podSelector: { matchLabels: { pod: 'a' } },
    policyTypes: ['Ingress', 'Egress'],
    ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b' } }, namespaceSelector: {} }], ports: [{ port: 80 }] }],
    egress: [{ to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'y' } } }] }],
  }),
];

function compile(cLabels: Record<string, string>): { model: CompiledPolicy; table: DesiredPolicyTable } {
  const model = compilePolicy({
    nodeName: 'n1',
    nodeAddresses: [NODE_IP],
    namespaces: [namespace('x'), namespace('y')],
    pods: podInfos(cLabels),
    policies: POLICIES,
  });
  return { model, table: renderPolicy(model) };
}

const PROBES: [keyof typeof pods | 'node', keyof typeof IPS, number][] = [
  ['b', 'a', 80],
  ['b', 'a', 81],
  ['c', 'a', 80],
  ['c', 'b', 80],
  ['a', 'c', 80],
  ['a', 'b', 80],
  ['node', 'a', 81],
];

function probeAll(model: CompiledPolicy): { probe: string; kernel: boolean; model: boolean }[] {
  return PROBES.map(([from, to, port]) => {
    const src = from === 'node' ? NODE_IP : IPS[from];
    const want = evaluatePolicy(model, { src, dst: IPS[to], protocol: 'TCP', dport: port }).allowed;
    const got = connects(from === 'node' ? node : pods[from], IPS[to], port);
    return { probe: `${from}→${to}:${port}`, kernel: got, model: want };
  });
}

describe('the rendered policy with real packets', () => {
  it('bridged pod traffic and node traffic pass or drop as the model says, through a diff and a rebuild', async () => {
    // Before any policy: everything connects (the servers are up).
    expect(connects(pods.c, IPS.a, 80)).toBe(true);

    const first = compile({ pod: 'c' });
    await nft.run(fullBuildPolicy(first.table, await nft.list()));
    const r1 = probeAll(first.model);
    expect(r1.filter((r) => r.kernel !== r.model)).toEqual([]);
    expect(r1.map((r) => r.kernel)).toEqual([true, false, false, false, true, false, true]);

    // c becomes pod=b: a peer's label change, elements only.
    const second = compile({ pod: 'b' });
    const diff = diffPolicy(first.table, second.table);
    expect(diff.operations.every((o) => o.object.kind === 'element')).toBe(true);
    await nft.run(diff);
    const r2 = probeAll(second.model);
    expect(r2.filter((r) => r.kernel !== r.model)).toEqual([]);
    expect(r2.find((r) => r.probe === 'c→a:80')?.kernel).toBe(true);

    // A rebuild over what the kernel holds keeps the same verdicts.
    await nft.run(fullBuildPolicy(second.table, await nft.list()));
    expect(probeAll(second.model).filter((r) => r.kernel !== r.model)).toEqual([]);
  });
});
