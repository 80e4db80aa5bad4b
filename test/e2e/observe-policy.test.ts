// `strand explain` against probed NetworkPolicy truth tables on a simulated three-node cluster: the
// upstream e2e model (namespaces x, y, z with pods a, b, c, spread over the nodes, TCP and UDP on 80
// and 81; test/kit/sim/policy-pods.ts probes), a few of the policy e2e's cases (test/e2e/policy.test.ts
// names them), and for every cell of each table (72 ordered pairs × 2 ports × 2 protocols) the
// agent's explain answer (over its socket, as `strand explain` asks it) must give the probed verdict,
// with a reason that matches it. A handful of cells also go through the command line with --kernel.
import {
  applyPolicy as applyPolicyIn,
  deleteAllPolicies as deleteAllPoliciesIn,
  usePolicyCluster,
} from '../support/policy-cluster.ts';
import { describe, expect, it } from 'vitest';
import { HANDSHAKE_VERSION } from '../../src/contracts/agent-socket.ts';
import type { ExplainAnswer } from '../../src/agent/explain.ts';
import { askAgent, unwrap } from '../../src/cli/agent-query.ts';
import { explainAnswerSchema, explainReportSchema } from '../../src/cli/explain.ts';
import { cellKey, PolicyPod, POLICY_PORTS, POLICY_PROTOCOLS, probeMatrix, type L4 } from '../kit/sim/policy-pods.ts';
import { mapLimit, run, sleep, type SimCluster, type SimNode } from '../support/sim.ts';

let cluster: SimCluster;
let probes: PolicyPod[] = [];

usePolicyCluster((pc) => ({ cluster, probes } = pc));

const name = (p: PolicyPod) => `${p.pod.namespace}/${p.pod.name}`;

const applyPolicy = (namespace: string, name: string, spec: Record<string, unknown>) =>
  applyPolicyIn(cluster, namespace, name, spec);

const deleteAllPolicies = () => deleteAllPoliciesIn(cluster);

/** The agent of `node` answers explain over its socket (what `strand explain` sends). */
async function ask(node: SimNode, src: string, dst: string, port: number, proto: L4): Promise<ExplainAnswer> {
  const a = unwrap(
    await askAgent(
      `${node.stateDir}/agent.sock`,
      { v: HANDSHAKE_VERSION, type: 'explain', src, dst, port, protocol: proto === 'tcp' ? 'TCP' : 'UDP' },
      10_000,
    ),
    'explain',
    explainAnswerSchema(),
  );
  if (a.kind !== 'answer') throw new Error(`explain ${src} → ${dst} on ${node.name}: ${a.message}`);
  return a.value;
}

type Expect = (from: PolicyPod, to: PolicyPod, port: number) => boolean;

/**
 * Waits until the probed table is `want` (the agents have applied the policies), then asks explain
 * for every cell, each on the source's node, and compares.
 */
async function explainAgrees(want: Expect, policyNames: string[]): Promise<void> {
  const deadline = Date.now() + 15_000;
  let probed: Map<string, boolean>;
  for (;;) {
    probed = await probeMatrix(probes, { timeoutMs: 700 });
    const wrong = [...cells()].filter((c) => probed.get(c.key) !== want(c.from, c.to, c.port));
    if (wrong.length === 0) break;
    if (Date.now() > deadline)
      throw new Error(
        `the probed table is not the expected one yet: ${wrong
          .slice(0, 10)
          .map((c) => c.key)
          .join(', ')}`,
      );
    await sleep(200);
  }
  const disagreements: string[] = [];
  await mapLimit([...cells()], 8, async (c) => {
    const a = await ask(c.from.pod.node, name(c.from), name(c.to), c.port, c.proto);
    const got = probed.get(c.key) === true;
    if (a.allowed !== got)
      disagreements.push(
        `${c.key}: probed ${got ? 'allowed' : 'denied'}, explain says ${a.allowed ? 'allowed' : 'denied'} (${JSON.stringify(a.policy)})`,
      );
    if (!a.policy.available) {
      disagreements.push(`${c.key}: no policy verdict`);
      return;
    }
    // The reason fits the verdict: a denial names the isolating policy and no allowing rule; an
    // allowed isolated direction names at least one rule of a policy of the case.
    for (const d of [a.policy.egress, a.policy.ingress]) {
      if (d.reason === 'denied' && (d.isolatedBy.length === 0 || d.rules.length > 0))
        disagreements.push(`${c.key}: a denial without its policies: ${JSON.stringify(d)}`);
      if (d.reason === 'allowed' && !d.rules.every((r) => policyNames.includes(r.name)))
        disagreements.push(`${c.key}: allowed by an unknown rule: ${JSON.stringify(d)}`);
    }
    if (a.path.kind !== (c.from.pod.node === c.to.pod.node ? 'same-node' : 'cross-node'))
      disagreements.push(`${c.key}: path ${a.path.kind}`);
  });
  expect(disagreements).toEqual([]);
}

function* cells(): Generator<{ from: PolicyPod; to: PolicyPod; port: number; proto: L4; key: string }> {
  for (const from of probes) {
    for (const to of probes) {
      if (from === to) continue;
      for (const port of POLICY_PORTS)
        for (const proto of POLICY_PROTOCOLS)
          yield { from, to, port, proto, key: cellKey({ from: name(from), to: name(to), port, proto }) };
    }
  }
}

const inNs = (p: PolicyPod, ns: string, pod?: string) =>
  p.pod.namespace === ns && (pod === undefined || p.pod.name === pod);

describe('strand explain agrees with the probed NetworkPolicy truth tables (288 cells each)', () => {
  it('baseline: everything allowed, nobody isolated', async () => {
    await explainAgrees(() => true, []);
  });

  it('E01 default-deny-ingress in x, plus E06 x/a from namespace y on port 80', async () => {
    await applyPolicy('x', 'deny-ingress', { podSelector: {}, policyTypes: ['Ingress'] });
    await applyPolicy('x', 'a-from-y-80', {
      podSelector: { matchLabels: { pod: 'a' } },
      ingress: [
        {
          from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }],
          ports: [
            { port: 80, protocol: 'TCP' },
            { port: 80, protocol: 'UDP' },
          ],
        },
      ],
    });
    await explainAgrees(
      (from, to, port) => !inNs(to, 'x') || (inNs(to, 'x', 'a') && inNs(from, 'y') && port === 80),
      ['deny-ingress', 'a-from-y-80'],
    );
    await deleteAllPolicies();
  });

  it('E26-like egress: y/b reaches only x, on 81', async () => {
    await applyPolicy('y', 'b-to-x-81', {
      podSelector: { matchLabels: { pod: 'b' } },
      policyTypes: ['Egress'],
      egress: [
        {
          to: [{ namespaceSelector: { matchLabels: { ns: 'x' } } }],
          ports: [
            { port: 81, protocol: 'TCP' },
            { port: 81, protocol: 'UDP' },
          ],
        },
      ],
    });
    await explainAgrees((from, to, port) => !inNs(from, 'y', 'b') || (inNs(to, 'x') && port === 81), ['b-to-x-81']);
  });

  it('the command line with --kernel on the enforcing node: the implementing rule, and its counter after a probe', async () => {
    const from = probes.find((p) => inNs(p, 'y', 'b')) as PolicyPod;
    const to = probes.find((p) => inNs(p, 'x', 'c')) as PolicyPod;
    const cli = async (port: number) => {
      const n = from.pod.node;
      const r = await run('ip', [
        'netns',
        'exec',
        n.netns,
        cluster.strand,
        'explain',
        name(from),
        name(to),
        `${port}/TCP`,
        '--kernel',
        '--state-dir',
        n.stateDir,
        '-o',
        'json',
      ]);
      return { code: r.code, report: explainReportSchema().parse(JSON.parse(r.stdout)) };
    };
    const allowed = await cli(81);
    expect(allowed.code).toBe(0);
    const nft = allowed.report.kernel?.nft;
    if (!nft || 'error' in nft) throw new Error(JSON.stringify(allowed.report.kernel));
    const egress = nft.directions.find((d) => d.direction === 'egress');
    expect(egress).toMatchObject({ matches: true, rules: [{ comment: 'y/b-to-x-81 egress 0' }] });
    const denied = await cli(80);
    expect(denied.code).toBe(1);
    const nft80 = denied.report.kernel?.nft;
    if (!nft80 || 'error' in nft80) throw new Error(JSON.stringify(denied.report.kernel));
    const drop = nft80.directions.find((d) => d.direction === 'egress');
    expect(drop).toMatchObject({ matches: true, rules: [{ comment: 'deny' }] });
    const before = drop?.packets ?? 0;
    expect(await from.probe([{ ip: to.pod.ip, port: 80, proto: 'tcp' }], 500)).toEqual([false]);
    const after = (await cli(80)).report.kernel?.nft;
    if (!after || 'error' in after) throw new Error('no nft');
    expect(after.directions.find((d) => d.direction === 'egress')?.packets).toBeGreaterThan(before);
    await deleteAllPolicies();
  });
});
