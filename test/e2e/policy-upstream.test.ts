// Every single-step case of netpol-semantics.md §5.1 (upstream e2e) and §5.2 (derived) with real
// packets on one simulated three-node cluster (the §3 model: namespaces x, y, z labelled ns=<name>,
// pods a, b, c labelled pod=<name>, spread over the nodes, TCP and UDP servers on 80 and 81 with
// container ports serve-<port>-<proto>). Each case (support/netpol-upstream-cases.ts, the same data
// the unit test judges on the fake nft) is applied through the API server, then the whole 288-cell
// truth table (72 ordered pairs × 2 ports × 2 protocols) is probed and compared with the table the
// spec oracle (support/netpol-oracle.ts) computes over the cluster's real objects as the API server
// serves them: namespaces with their labels, pods with their addresses, labels and ports, and the
// policies. The table is probed again until it matches or 10 s pass (agents apply in milliseconds;
// the machine is shared). The oracle's table is also checked against the case's own expectation, so
// the oracle cannot drift from the cases unnoticed.
//
// SCTP: the sim pods serve TCP and UDP only. E38, E39 and E46–E48 differ from the TCP/UDP cases only
// in their SCTP cells; they still run here (an SCTP rule must neither open TCP/UDP nor fail to
// isolate), and the unit test judges their SCTP cells.
//
// Left to the unit test (test/unit/policy-cases.test.ts), besides the multi-step cases (E15, E20–E22,
// E24, E31–E33, E36, E37, D24, D25: several in test/e2e/policy.test.ts with real packets):
// - D27/D28 (node to pod, R11) and D30 (host-network pod, R17): verdicts from node addresses, not a
//   pod-to-pod table; the sim's nodes reach pods over the underlay, which this table does not probe.
// - D29 (a pod to itself, R12): no cell of a pod-to-pod table.
// - D32: IPv6 single-stack; the sim's pods are IPv4 only.
// Every named port the single-step cases use (serve-80-tcp, serve-81-tcp, serve-81-udp, and the
// unserved serve-7981-udp of D15) is one the sim pods have, or none has, as in the unit model.
import { afterEach, describe, expect, it } from 'vitest';
import {
  cellKey,
  DROP_WAIT_MS,
  PolicyPod,
  POLICY_PORTS,
  POLICY_PROTOCOLS,
  probeMatrix,
  type L4,
} from '../kit/sim/policy-pods.ts';
import type { Packet, Protocol } from '../../src/policy/index.ts';
import { describeView, judge, oracleWorld, type OraclePolicy, type OracleWorld } from '../support/netpol-oracle.ts';
import { DERIVED_CASES, UPSTREAM_CASES, type UpstreamCase } from '../support/netpol-upstream-cases.ts';
import { applyPolicy, deleteAllPolicies, usePolicyCluster } from '../support/policy-cluster.ts';
import { sleep, type KubeObject, type SimCluster } from '../support/sim.ts';

let cluster: SimCluster;
let probes: PolicyPod[] = [];

usePolicyCluster((pc) => ({ cluster, probes } = pc));

const name = (p: PolicyPod) => `${p.pod.namespace}/${p.pod.name}`;
const protocolOf = (proto: L4): Protocol => (proto === 'tcp' ? 'TCP' : 'UDP');

/** The cluster as the API server serves it, for the oracle. */
async function readWorld(): Promise<OracleWorld> {
  const [namespaces, pods, policies, nodes] = await Promise.all(
    ['namespaces', 'pods', 'networkpolicies', 'nodes'].map((r) => cluster.api.list<KubeObject>(r)),
  );
  const nodeAddresses = Object.fromEntries(
    (nodes ?? []).map((n) => [
      n.metadata.name,
      ((n.status?.addresses as { address: string }[] | undefined) ?? []).map((a) => a.address),
    ]),
  );
  return oracleWorld({
    namespaces: namespaces ?? [],
    pods: pods ?? [],
    policies: (policies ?? []) as unknown as OraclePolicy[],
    nodeAddresses,
  });
}

interface Cell {
  key: string;
  from: PolicyPod;
  to: PolicyPod;
  packet: Packet;
}

function cells(): Cell[] {
  const out: Cell[] = [];
  for (const from of probes) {
    for (const to of probes) {
      if (from === to) continue; // R12: a pod to itself is no cell
      for (const port of POLICY_PORTS) {
        for (const proto of POLICY_PROTOCOLS) {
          out.push({
            key: cellKey({ from: name(from), to: name(to), port, proto }),
            from,
            to,
            packet: { src: from.pod.ip, dst: to.pod.ip, protocol: protocolOf(proto), dport: port },
          });
        }
      }
    }
  }
  return out;
}

/** Probes the whole table until it is the oracle's (or 10 s pass: then fails naming every wrong cell). */
async function expectOracleTable(caseId: string, world: OracleWorld): Promise<void> {
  const table = cells();
  const deadline = Date.now() + 10_000;
  let wrong: string[] = [];
  for (;;) {
    const probed = await probeMatrix(probes, { timeoutMs: DROP_WAIT_MS });
    wrong = [];
    for (const c of table) {
      const view = judge(world, c.packet);
      const got = probed.get(c.key);
      if (got !== view.allowed)
        wrong.push(
          `${caseId} ${c.key}: probed ${got ? 'allowed' : 'denied'}, expected ${view.allowed ? 'allowed' : 'denied'}; ${describeView(view)}`,
        );
    }
    if (wrong.length === 0) return;
    if (Date.now() > deadline) break;
    await sleep(200);
  }
  throw new Error(
    `${caseId}: ${wrong.length} of ${table.length} cells differ from the oracle's table:\n${wrong.slice(0, 30).join('\n')}\n${cluster.nodes.map((n) => `--- ${n.name}\n${n.logTail(8)}`).join('\n')}`,
  );
}

/** The oracle over the real cluster gives the case's own table on the probes it names (TCP/UDP). */
function expectCaseAgrees(k: UpstreamCase, world: OracleWorld): void {
  const differ: string[] = [];
  for (const { probe, allowed } of k.checks) {
    const protocol = probe.protocol ?? 'TCP';
    if (protocol === 'SCTP') continue; // the sim pods serve no SCTP; the unit test judges it
    for (const from of probes) {
      for (const to of probes) {
        if (from === to) continue;
        const oracle = judge(world, { src: from.pod.ip, dst: to.pod.ip, protocol, dport: probe.port });
        if (oracle.allowed !== allowed(name(from), name(to)))
          differ.push(
            `${name(from)}>${name(to)}:${probe.port}/${protocol}: case ${allowed(name(from), name(to))}, ${describeView(oracle)}`,
          );
      }
    }
  }
  expect(differ, `${k.id}: the oracle and the case's expectation`).toEqual([]);
}

// A failed case leaves no policy behind, and the next case starts from the open baseline.
afterEach(async () => {
  await deleteAllPolicies(cluster);
  await expectOracleTable('baseline', await readWorld());
}, 30_000);

const ipOf = (ref: string): string => {
  const p = probes.find((x) => name(x) === ref);
  if (!p) throw new Error(`no pod ${ref}`);
  return p.pod.ip;
};

describe('upstream NetworkPolicy cases with real packets (3 nodes, x/y/z × a/b/c, TCP and UDP on 80 and 81)', () => {
  it('baseline: the oracle over the cluster without policies allows every cell, and so do the packets', async () => {
    const world = await readWorld();
    expect(cells().every((c) => judge(world, c.packet).allowed)).toBe(true);
    expect(cells()).toHaveLength(288);
    await expectOracleTable('baseline', world);
  });

  for (const k of [...UPSTREAM_CASES, ...DERIVED_CASES]) {
    it(`${k.id} ${k.title}`, async () => {
      for (const p of k.policies({ ipOf })) await applyPolicy(cluster, p.metadata.namespace, p.metadata.name, p.spec);
      const world = await readWorld();
      expect(world.policies.length, 'the policies the API server serves').toBe(k.policies({ ipOf }).length);
      expectCaseAgrees(k, world);
      await expectOracleTable(k.id, world);
    }, 30_000);
  }
});
