// NetworkPolicy end to end on a simulated three-node cluster (test/kit/sim/), the upstream e2e model
// (netpol-semantics.md §3): namespaces x, y, z (labelled ns=<name> besides kubernetes.io/metadata.name)
// with pods a, b, c each (labelled pod=<name>), spread over the nodes so that most pairs cross nodes,
// every pod serving TCP and UDP on ports 80 and 81 (container ports named serve-<port>-<proto>).
// For each upstream-style case (§5.1, named by its E/D number) the whole truth table — every pod to
// every other pod, both ports, both protocols, 288 cells — is probed with real packets and compared
// with the table the case expects (written as the upstream Reachability is: all allowed, then the
// cells the policies deny). Tables are probed again until they match or 15 s pass (the agents apply
// a change in milliseconds; the machine is shared). Then what happens around the rules: updates and
// label changes while probing, pods deleted and created, established flows cut or kept, a pod
// created after a deny-all, an agent restart under traffic and a table flushed by hand.
import {
  applyPolicy as applyPolicyIn,
  deleteAllPolicies as deleteAllPoliciesIn,
  usePolicyCluster,
} from '../support/policy-cluster.ts';
import { afterEach, describe, expect, it } from 'vitest';
import { sleep, waitFor, type SimCluster } from '../support/sim.ts';
import {
  cellKey,
  PolicyPod,
  policyContainerPorts,
  POLICY_PORTS,
  POLICY_PROTOCOLS,
  probeMatrix,
  type L4,
} from '../kit/sim/policy-pods.ts';

/** A flow a change denies stops within this long of the change (its programming included). */
const CUT_WITHIN_MS = 3_000;
const CUT_WAIT_MS = CUT_WITHIN_MS + 500;

let cluster: SimCluster;
let probes: PolicyPod[] = [];

interface Cell {
  from: { ns: string; pod: string };
  to: { ns: string; pod: string };
  port: number;
  proto: L4;
}
type Expect = (c: Cell) => boolean;

const id = (p: PolicyPod) => ({ ns: p.pod.namespace, pod: p.pod.name });
const podNamed = (ns: string, pod: string) =>
  probes.find((p) => p.pod.namespace === ns && p.pod.name === pod) as PolicyPod;

usePolicyCluster((pc) => ({ cluster, probes } = pc));

// A failed case leaves no policy behind for the next one.
afterEach(async () => {
  await deleteAllPolicies();
});

const applyPolicy = (namespace: string, name: string, spec: Record<string, unknown>) =>
  applyPolicyIn(cluster, namespace, name, spec);

const deleteAllPolicies = () => deleteAllPoliciesIn(cluster);

function describeMismatch(got: Map<string, boolean>, want: Expect, pods: readonly PolicyPod[]): string[] {
  const out: string[] = [];
  for (const from of pods) {
    for (const to of pods) {
      if (from === to) continue;
      for (const port of POLICY_PORTS) {
        for (const proto of POLICY_PROTOCOLS) {
          const k = cellKey({
            from: `${from.pod.namespace}/${from.pod.name}`,
            to: `${to.pod.namespace}/${to.pod.name}`,
            port,
            proto,
          });
          const w = want({ from: id(from), to: id(to), port, proto });
          if (got.get(k) !== w)
            out.push(`${k}: expected ${w ? 'allowed' : 'denied'}, got ${got.get(k) ? 'allowed' : 'denied'}`);
        }
      }
    }
  }
  return out;
}

/** Probes the whole table until it is `want` (or 15 s pass: then fails listing the wrong cells). */
async function expectTruth(want: Expect, pods: readonly PolicyPod[] = probes): Promise<void> {
  const deadline = Date.now() + 15_000;
  let wrong: string[] = [];
  for (;;) {
    wrong = describeMismatch(await probeMatrix(pods, { timeoutMs: 700 }), want, pods);
    if (wrong.length === 0) return;
    if (Date.now() > deadline) break;
    await sleep(200);
  }
  throw new Error(
    `${wrong.length} cells differ from the expected truth table:\n${wrong.slice(0, 30).join('\n')}\n${cluster.nodes.map((n) => `--- ${n.name}\n${n.logTail(8)}`).join('\n')}`,
  );
}

const allAllowed: Expect = () => true;
const to = (ns: string, pod?: string) => (c: Cell) => c.to.ns === ns && (pod === undefined || c.to.pod === pod);
const from = (ns: string, pod?: string) => (c: Cell) => c.from.ns === ns && (pod === undefined || c.from.pod === pod);

describe('NetworkPolicy truth tables (3 nodes, x/y/z × a/b/c, TCP and UDP on 80 and 81)', () => {
  it('baseline: everything reaches everything', async () => {
    await expectTruth(allAllowed);
  });

  it("E01 default-deny-ingress: nothing reaches x's pods", async () => {
    await applyPolicy('x', 'deny-ingress', { podSelector: {}, policyTypes: ['Ingress'] });
    await expectTruth((c) => !to('x')(c));
    await deleteAllPolicies();
    await expectTruth(allAllowed);
  });

  it("E26 egress deny-all: x's pods reach nothing", async () => {
    await applyPolicy('x', 'deny-egress', { podSelector: {}, policyTypes: ['Egress'] });
    await expectTruth((c) => !from('x')(c));
    await deleteAllPolicies();
  });

  it('E23 allow from the same namespace (podSelector {}): x is reached only from x', async () => {
    await applyPolicy('x', 'same-ns', { podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }] });
    await expectTruth((c) => !to('x')(c) || from('x')(c));
    await deleteAllPolicies();
  });

  it('E06/E41 allow from a namespace by label: x/a only from y', async () => {
    await applyPolicy('x', 'from-y', {
      podSelector: { matchLabels: { pod: 'a' } },
      ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }],
    });
    await expectTruth((c) => !to('x', 'a')(c) || from('y')(c));
    await deleteAllPolicies();
  });

  it('E13 podSelector and namespaceSelector in one peer: x/a only from y/a', async () => {
    await applyPolicy('x', 'one-peer', {
      podSelector: { matchLabels: { pod: 'a' } },
      ingress: [
        {
          from: [
            {
              namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'y' } },
              podSelector: { matchLabels: { pod: 'a' } },
            },
          ],
        },
      ],
    });
    await expectTruth((c) => !to('x', 'a')(c) || from('y', 'a')(c));
    // The same selectors as two peers (OR): every pod of y, and x's own pod a (self, ignored) — with
    // pod=b instead, x/b.
    await applyPolicy('x', 'one-peer', {
      podSelector: { matchLabels: { pod: 'a' } },
      ingress: [
        {
          from: [
            { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'y' } } },
            { podSelector: { matchLabels: { pod: 'b' } } },
          ],
        },
      ],
    });
    await expectTruth((c) => !to('x', 'a')(c) || from('y')(c) || from('x', 'b')(c));
    await deleteAllPolicies();
  });

  it('E18 named port: x/a only from y, only on TCP serve-80-tcp', async () => {
    await applyPolicy('x', 'named', {
      podSelector: { matchLabels: { pod: 'a' } },
      ingress: [
        {
          from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }],
          ports: [{ protocol: 'TCP', port: 'serve-80-tcp' }],
        },
      ],
    });
    await expectTruth((c) => !to('x', 'a')(c) || (from('y')(c) && c.port === 80 && c.proto === 'tcp'));
    await deleteAllPolicies();
  });

  it('E35/E36 ipBlock with except, then updated: x/a reaches all but x/b, then only x/b', async () => {
    const xb = podNamed('x', 'b').pod.ip;
    await applyPolicy('x', 'cidr', {
      podSelector: { matchLabels: { pod: 'a' } },
      policyTypes: ['Egress'],
      egress: [{ to: [{ ipBlock: { cidr: '10.244.0.0/16', except: [`${xb}/32`] } }] }],
    });
    await expectTruth((c) => !(from('x', 'a')(c) && to('x', 'b')(c)));
    await applyPolicy('x', 'cidr', {
      podSelector: { matchLabels: { pod: 'a' } },
      policyTypes: ['Egress'],
      egress: [{ to: [{ ipBlock: { cidr: `${xb}/32` } }] }],
    });
    await expectTruth((c) => !from('x', 'a')(c) || to('x', 'b')(c));
    await deleteAllPolicies();
  });

  it('D12 endPort: TCP 53–80 reaches x/a, TCP 81 and UDP do not', async () => {
    await applyPolicy('x', 'range', {
      podSelector: { matchLabels: { pod: 'a' } },
      ingress: [{ ports: [{ protocol: 'TCP', port: 53, endPort: 80 }] }],
    });
    await expectTruth((c) => !to('x', 'a')(c) || (c.port === 80 && c.proto === 'tcp'));
    await deleteAllPolicies();
  });

  it('E20 policy update: allow-all becomes deny-all', async () => {
    await applyPolicy('x', 'update', { podSelector: {}, policyTypes: ['Ingress'], ingress: [{}] });
    await expectTruth(allAllowed);
    await applyPolicy('x', 'update', { podSelector: {}, policyTypes: ['Ingress'], ingress: [] });
    await expectTruth((c) => !to('x')(c));
    await deleteAllPolicies();
  });

  it('E21/E22 namespace and pod label changes move pods in and out of peers', async () => {
    await applyPolicy('x', 'labels', {
      podSelector: { matchLabels: { pod: 'a' } },
      ingress: [
        {
          from: [
            { namespaceSelector: { matchLabels: { ns2: 'updated' } } },
            { podSelector: { matchLabels: { pod: 'b', pod2: 'updated' } } },
          ],
        },
      ],
    });
    await expectTruth((c) => !to('x', 'a')(c));
    await cluster.api.patch('namespaces', 'y', { metadata: { labels: { ns2: 'updated' } } }, { type: 'merge' });
    await expectTruth((c) => !to('x', 'a')(c) || from('y')(c));
    await cluster.api.patch(
      'pods',
      'b',
      { metadata: { labels: { pod2: 'updated' } } },
      { namespace: 'x', type: 'merge' },
    );
    await expectTruth((c) => !to('x', 'a')(c) || from('y')(c) || from('x', 'b')(c));
    await cluster.api.patch('namespaces', 'y', { metadata: { labels: { ns2: null } } }, { type: 'merge' });
    await cluster.api.patch('pods', 'b', { metadata: { labels: { pod2: null } } }, { namespace: 'x', type: 'merge' });
    await expectTruth((c) => !to('x', 'a')(c));
    await deleteAllPolicies();
  });

  it('D24 pods deleted and created: a new pod matching a peer gets in, a deleted one leaves its peer set', async () => {
    await applyPolicy('x', 'from-b', {
      podSelector: { matchLabels: { pod: 'a' } },
      ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b' } } }] }],
    });
    await expectTruth((c) => !to('x', 'a')(c) || from('x', 'b')(c));
    const d = await cluster.addPod(cluster.node(2), {
      namespace: 'x',
      name: 'd',
      labels: { pod: 'b' },
      ports: policyContainerPorts(),
    });
    const dp = await PolicyPod.start(d);
    const withD = [...probes, dp];
    try {
      await expectTruth((c) => !to('x', 'a')(c) || from('x', 'b')(c) || from('x', 'd')(c), withD);
      const xa = podNamed('x', 'a');
      await cluster.deletePod(d);
      // Its address is not in x/a's peer set any more (the next pod on node 2 may get it).
      await waitFor(
        () => !cluster.node(1).exec('nft', ['list', 'table', 'inet', 'strand']).includes(` ${d.ip}`),
        10_000,
        `${d.ip} to leave node-1's peer sets`,
      );
      expect(xa).toBeDefined();
    } finally {
      dp.stop();
    }
    await deleteAllPolicies();
    await expectTruth(allAllowed);
  });
});

describe('NetworkPolicy around the rules', () => {
  /** Waits until the flow got a reply within the last 200 ms (it is flowing). */
  async function flowing(p: PolicyPod, flow: string): Promise<void> {
    await waitFor(
      async () => {
        const s = await p.flow(flow);
        return s.lastReplyAgoMs !== null && s.lastReplyAgoMs < 200;
      },
      10_000,
      `flow ${flow} to get replies`,
    );
  }

  it('cuts an established TCP and UDP flow at once (within 3 s of the API change) when a change denies it, and keeps the flows it still allows', async () => {
    const [ya, yb, xa] = [podNamed('y', 'a'), podNamed('y', 'b'), podNamed('x', 'a')];
    await ya.hold('tcp-cut', xa.pod.ip, 80, 'tcp');
    await ya.hold('udp-cut', xa.pod.ip, 81, 'udp');
    await yb.hold('tcp-kept', xa.pod.ip, 80, 'tcp');
    await yb.hold('udp-kept', xa.pod.ip, 81, 'udp');
    for (const [p, f] of [
      [ya, 'tcp-cut'],
      [ya, 'udp-cut'],
      [yb, 'tcp-kept'],
      [yb, 'udp-kept'],
    ] as const)
      await flowing(p, f);
    // x/a now only from pods labelled pod=b (y/b stays allowed, y/a is denied).
    const changedAt = Date.now();
    await applyPolicy('x', 'only-b', {
      podSelector: { matchLabels: { pod: 'a' } },
      ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { pod: 'b' } } }] }],
    });
    // The bound covers the agent's programming on a loaded 2-core CI machine (three agents, the API
    // server and the probers share it); a flow that is not cut answers every 100 ms, so any bound of
    // seconds tells a cut flow from one that goes on.
    await sleep(CUT_WAIT_MS);
    const sinceChange = Date.now() - changedAt;
    for (const f of ['tcp-cut', 'udp-cut']) {
      const s = await ya.flow(f);
      // The last reply came at most CUT_WITHIN_MS after the policy was created (programming included).
      expect(
        s.lastReplyAgoMs ?? Infinity,
        `${f}: last reply ${s.lastReplyAgoMs} ms ago, ${sinceChange} ms after the change`,
      ).toBeGreaterThan(sinceChange - CUT_WITHIN_MS);
    }
    for (const f of ['tcp-kept', 'udp-kept']) {
      const s = await yb.flow(f);
      expect(s.lastReplyAgoMs, `${f} stopped: ${JSON.stringify(s)}`).toBeLessThan(300);
      expect(s.error).toBeNull();
    }
    for (const [p, f] of [
      [ya, 'tcp-cut'],
      [ya, 'udp-cut'],
      [yb, 'tcp-kept'],
      [yb, 'udp-kept'],
    ] as const)
      await p.closeFlow(f);
    await deleteAllPolicies();
  });

  it('a pod created after a deny-all is never reachable, from before its ADD on', async () => {
    await applyPolicy('x', 'deny-ingress', { podSelector: {}, policyTypes: ['Ingress'] });
    await expectTruth((c) => !to('x')(c));
    const node = cluster.node(3);
    const prober = podNamed('y', 'a');
    // Every address the new pod may get on node 3 (its pod CIDR's first hosts), TCP and UDP on 80.
    const base = node.podCidr.split('/')[0]!.replace(/\.0$/, '.');
    const candidates = Array.from({ length: 30 }, (_, i) => `${base}${i + 2}`);
    const reached = new Set<string>();
    let probing = true;
    const loop = (async () => {
      while (probing) {
        const targets = candidates.flatMap((ip) => (['tcp', 'udp'] as const).map((proto) => ({ ip, port: 80, proto })));
        const r = await prober.probe(targets, 150);
        r.forEach((ok, i) => ok && reached.add(targets[i]!.ip));
      }
    })();
    let server: PolicyPod | undefined;
    // The pod's server listens before its ADD: any open moment would show.
    const pod = await cluster.addPod(node, {
      namespace: 'x',
      name: 'late',
      labels: { pod: 'late' },
      ports: policyContainerPorts(),
      beforeAdd: async (netns) => void (server = await PolicyPod.start(netns)),
    });
    try {
      server!.pod = pod;
      await sleep(2_000);
      probing = false;
      await loop;
      expect(
        [...reached].filter((ip) => ip === pod.ip),
        `${pod.ip} answered while a deny-all policy selected it`,
      ).toEqual([]);
      // Its bind was made (computed ahead, from the Pod created before the ADD, or at the notice), and
      // no bind ahead on the node disagreed with its bookkeeping.
      const metrics = (await node.health('/metrics')).body;
      const binds = (path: string) =>
        Number(new RegExp(`strand_policy_pod_start_binds_total\\{path="${path}"\\} (\\d+)`).exec(metrics)?.[1] ?? 0);
      expect(binds('ahead') + binds('notice') + binds('compile')).toBeGreaterThan(0);
      expect(binds('mismatch')).toBe(0);
      // And the probe would have seen it: once the policy goes, it answers.
      await deleteAllPolicies();
      await waitFor(
        async () => (await prober.probe([{ ip: pod.ip, port: 80, proto: 'tcp' }], 300))[0] === true,
        10_000,
        `${pod.ip} to answer without the policy`,
      );
    } finally {
      probing = false;
      await loop;
      server?.stop();
      await cluster.deletePod(pod);
    }
  });

  it('an agent that restarts while the API server is down refuses new pods (try again later) until it can apply their rules', async () => {
    await applyPolicy('x', 'deny-ingress', { podSelector: {}, policyTypes: ['Ingress'] });
    await expectTruth((c) => !to('x')(c));
    const node = cluster.node(3);
    await cluster.api.stop();
    try {
      await node.stopAgent();
      node.startAgent();
      await waitFor(
        async () => (await node.health('/healthz').catch(() => ({ status: 0 }))).status === 200,
        10_000,
        'the agent to serve',
      );
      await expect(cluster.addPod(node, { namespace: 'x', name: 'early', labels: { pod: 'early' } })).rejects.toThrow(
        /"code": ?11/,
      );
    } finally {
      await cluster.api.start();
    }
    await cluster.waitReady();
    const pod = await cluster.addPod(node, { namespace: 'x', name: 'early', labels: { pod: 'early' } });
    const server = await PolicyPod.start(pod);
    try {
      expect(
        (await podNamed('y', 'a').probe([{ ip: pod.ip, port: 80, proto: 'tcp' }], 500))[0],
        'the new pod is isolated',
      ).toBe(false);
    } finally {
      server.stop();
      await cluster.deletePod(pod);
    }
  });

  it('an agent restart under traffic: the allowed flow keeps flowing, denied connections stay denied, also to a pod the API shows without its address', async () => {
    const [xa, yb, za] = [podNamed('x', 'a'), podNamed('y', 'b'), podNamed('z', 'a')];
    await applyPolicy('x', 'from-y', {
      podSelector: { matchLabels: { pod: 'a' } },
      ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }],
    });
    await expectTruth((c) => !to('x', 'a')(c) || from('y')(c));
    await yb.hold('restart', xa.pod.ip, 80, 'tcp', 20);
    await flowing(yb, 'restart');
    let denied = 0;
    let leaks = 0;
    let maxGap = 0;
    let probing = true;
    const loop = (async () => {
      while (probing) {
        const [tcp, udp] = await za.probe(
          [
            { ip: xa.pod.ip, port: 80, proto: 'tcp' },
            { ip: xa.pod.ip, port: 81, proto: 'udp' },
          ],
          200,
        );
        if (tcp || udp) leaks++;
        else denied++;
        const s = await yb.flow('restart');
        maxGap = Math.max(maxGap, s.lastReplyAgoMs ?? Infinity);
      }
    })();
    const node = xa.pod.node;
    await node.stopAgent();
    // As just after an ADD: the API shows x/a without addresses yet (kubelet reports them a moment
    // later), and the new agent never saw the plugin's notice. Its rules must stay all the same.
    await cluster.api.patch(
      'pods',
      'a',
      { status: { podIP: null, podIPs: null } },
      { namespace: 'x', type: 'merge', subresource: 'status' },
    );
    await sleep(500);
    node.startAgent();
    await cluster.waitReady();
    await sleep(1_000);
    probing = false;
    await loop;
    await yb.closeFlow('restart');
    await cluster.api.patch(
      'pods',
      'a',
      { status: { podIP: xa.pod.ip, podIPs: [{ ip: xa.pod.ip }] } },
      { namespace: 'x', type: 'merge', subresource: 'status' },
    );
    expect(leaks, 'denied connections that got through during the restart').toBe(0);
    expect(denied).toBeGreaterThan(5);
    expect(maxGap, 'longest pause of the allowed flow (ms)').toBeLessThan(1_000);
  });

  it('an agent started on a node whose table was flushed by hand restores isolation, and so does a running one', async () => {
    const [xa, za] = [podNamed('x', 'a'), podNamed('z', 'a')];
    await applyPolicy('x', 'from-y', {
      podSelector: { matchLabels: { pod: 'a' } },
      ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }],
    });
    await expectTruth((c) => !to('x', 'a')(c) || from('y')(c));
    const node = xa.pod.node;
    await node.stopAgent();
    node.exec('nft', ['flush', 'table', 'inet', 'strand']);
    const probe = async () => (await za.probe([{ ip: xa.pod.ip, port: 80, proto: 'tcp' }], 300))[0];
    expect(await probe(), 'open once the table is flushed').toBe(true);
    node.startAgent();
    await waitFor(async () => (await probe()) === false, 15_000, 'isolation to come back');
    await cluster.waitReady();
    let metrics = await node.health('/metrics');
    expect(metrics.body).toMatch(/strand_policy_rebuilds_total\{reason="start"\} 1/);
    // The same while the agent runs: its look for drift (every 10 s) finds the marker emptied.
    node.exec('nft', ['flush', 'table', 'inet', 'strand']);
    await waitFor(async () => (await probe()) === true, 5_000, 'the flush to open x/a');
    await waitFor(async () => (await probe()) === false, 20_000, 'the running agent to restore isolation');
    metrics = await node.health('/metrics');
    expect(metrics.body).toMatch(/strand_policy_rebuilds_total\{reason="drift"\} 1/);
    expect(metrics.body).toMatch(/strand_policy_nft_transactions_total\{kind="rebuild"\} 2/);
    expect(metrics.body).toMatch(/strand_policy_programming_seconds_count [1-9]/);
    expect(metrics.body).toMatch(/strand_policy_nft_transaction_bytes_count\{kind="rebuild"\} 2/);
    expect(metrics.body).toMatch(
      /strand_policy_pod_packets_total\{namespace="x",pod="a",direction="ingress",verdict="deny"\} [1-9]/,
    );
    await deleteAllPolicies();
  });
});
