// The upstream ClusterNetworkPolicy conformance suite (network-policy-api v0.2.0, conformance/tests:
// 18 standard tests, 6 experimental named-port and node-peer tests) with real packets on one simulated
// three-node cluster built as the suite builds its own: a namespace per house (labelled
// conformance-house=<house>) with two pods each (same label, spread over the nodes as the unit model
// spreads them), serving TCP 80/8080 and UDP 53/5353 with the named ports `web` (TCP 80) and `dns`
// (UDP 53); and the forbidden forest's two host-network pods, servers in the node namespaces of
// node-2 and node-3 on the suite's host ports. The data is support/cnp-conformance-cases.ts (the
// same the unit test judges on the fake nft). Per test, every subtest's changes are applied through
// the API server in order (they accumulate, as upstream's do), then:
// - the oracle (support/cnp-oracle.ts) over the objects the API server serves must give upstream's
//   expectation on each of the subtest's probes (SCTP ones included: the oracle is not the sim);
// - the whole house table (8 pods × 7 others × TCP 80, TCP 8080, UDP 53, UDP 5353: 224 cells) and the
//   subtest's probes to the host-network pods are probed with real packets and must be the oracle's,
//   retried until they are or 10 s pass (agents apply in milliseconds; the machine is shared);
// - a denial is a drop: a denied cell's probe must time out (TCP: no RST, no ICMP unreachable; the
//   client sees ECONNREFUSED for either). UDP probes use unconnected sockets, which see no ICMP error,
//   so a UDP reject would go unnoticed here: the unit test asserts no rule rejects.
// SCTP: the kernel of the test machine has no SCTP (socket(…, IPPROTO_SCTP) fails with
// EPROTONOSUPPORT), so the sim pods cannot serve it; the SCTP probes (the four *SCTP tests, and the
// SCTP cells of the CIDR, combined-rules, node-peer and integration tests) are judged by the oracle
// here and by the compiled model and nft objects in test/unit/policy-cnp-cases.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Packet } from '../../src/policy/index.ts';
import { DROP_WAIT_MS, PolicyPod, type L4, type ProbeOutcome } from '../kit/sim/policy-pods.ts';
import {
  CONFORMANCE_CASES,
  FOREST,
  HOST_PORTS,
  HOUSE_PODS,
  HOUSES,
  houseNs,
  type ConformanceProbe,
} from '../support/cnp-conformance-cases.ts';
import type { Manifest } from '../support/cnp-conformance-manifests.ts';
import { readCnpWorld } from '../support/cnp-cluster.ts';
import { cnpJudge, type CnpWorld } from '../support/cnp-oracle.ts';
import { createTestCluster, sleep, type KubeObject, type SimCluster } from '../support/sim.ts';

/** What the house pods serve (TCP and UDP on each; the cells probed are the suite's four). */
const HOUSE_PORTS = [80, 8080, 53, 5353] as const;
const HOUSE_CELLS: readonly { port: number; proto: L4 }[] = [
  { port: 80, proto: 'tcp' },
  { port: 8080, proto: 'tcp' },
  { port: 53, proto: 'udp' },
  { port: 5353, proto: 'udp' },
];
/** The host ports without the two SCTP ones (HOST_PORTS[6], [7]). */
const HOST_TCP_UDP_PORTS = HOST_PORTS.slice(0, 6);

interface Endpoint {
  /** "house/index", as the cases name pods. */
  ref: string;
  ip: string;
  /** The probe program: in the pod (houses) or in the node's namespace (the forest's host-network pods). */
  program: PolicyPod;
}

let cluster: SimCluster;
const houses: Endpoint[] = [];
const forest: Endpoint[] = [];
const programs: PolicyPod[] = [];
/** What the run probed once each step matched (the last test checks it and names it). */
const tally = { steps: 0, cells: 0, denied: 0, deniedTcp: 0 };

beforeAll(async () => {
  cluster = await createTestCluster({ nodes: 3, backend: 'vxlan' });
  await cluster.waitReady();
  for (const [i, house] of HOUSES.entries()) {
    await cluster.ensureNamespace(houseNs(house), { 'conformance-house': house });
    for (const k of [0, 1]) {
      const pod = await cluster.addPod(cluster.node(((i + k) % 3) + 1), {
        namespace: houseNs(house),
        name: `${HOUSE_PODS[house]}-${k}`,
        labels: { 'conformance-house': house },
        ports: [
          { name: 'web', containerPort: 80, protocol: 'TCP' },
          { name: 'dns', containerPort: 53, protocol: 'UDP' },
        ],
      });
      const program = await PolicyPod.start(pod, HOUSE_PORTS);
      programs.push(program);
      houses.push({ ref: `${house}/${k}`, ip: pod.ip, program });
    }
  }
  // The forest's host-network pods: Pod objects with hostNetwork and their node's address (as kubelet
  // reports them), their servers in the node's namespace. centaur-1, the node-peer tests' server, is
  // on node-3, where neither gryffindor pod runs (a pod's own node is always reachable).
  await cluster.ensureNamespace(houseNs(FOREST), { 'conformance-house': FOREST });
  for (const k of [0, 1]) {
    const node = cluster.node(k + 2);
    const name = `${HOUSE_PODS[FOREST]}-${k}`;
    await cluster.api.create('pods', {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: houseNs(FOREST), labels: { 'conformance-house': FOREST } },
      spec: { nodeName: node.name, hostNetwork: true, containers: [{ name: 'main', image: 'strand-sim/pause' }] },
    });
    await cluster.api.patch(
      'pods',
      name,
      {
        status: {
          phase: 'Running',
          hostIP: node.underlayIp,
          podIP: node.underlayIp,
          podIPs: [{ ip: node.underlayIp }],
        },
      },
      { namespace: houseNs(FOREST), type: 'merge', subresource: 'status' },
    );
    const program = await PolicyPod.start(node.netns, HOST_TCP_UDP_PORTS);
    programs.push(program);
    forest.push({ ref: `${FOREST}/${k}`, ip: node.underlayIp, program });
  }
  await cluster.waitRoutes();
}, 180_000);

afterAll(async () => {
  for (const p of programs) p.stop();
  await cluster?.destroy();
}, 180_000);

const endpoint = (ref: string): Endpoint => {
  const e = [...houses, ...forest].find((x) => x.ref === ref);
  if (!e) throw new Error(`no pod ${ref}`);
  return e;
};
const protoOf = (p: L4) => (p === 'tcp' ? 'TCP' : 'UDP');

/** Makes the API server hold exactly `applied` (creates and updates, then deletes what is gone). */
async function sync(applied: readonly Manifest[]): Promise<void> {
  for (const m of applied) {
    if (m.kind === 'ClusterNetworkPolicy')
      await cluster.api.upsert('clusternetworkpolicies', {
        apiVersion: 'policy.networking.k8s.io/v1alpha2',
        kind: 'ClusterNetworkPolicy',
        metadata: { name: m.metadata.name },
        spec: m.spec,
      });
    else
      await cluster.api.upsert('networkpolicies', {
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: m.metadata,
        spec: m.spec,
      });
  }
  const want = new Set(
    applied.map((m) => `${m.kind}/${'namespace' in m.metadata ? m.metadata.namespace : ''}/${m.metadata.name}`),
  );
  for (const p of await cluster.api.list<KubeObject>('clusternetworkpolicies'))
    if (!want.has(`ClusterNetworkPolicy//${p.metadata.name}`))
      await cluster.api.delete('clusternetworkpolicies', p.metadata.name);
  for (const p of await cluster.api.list<KubeObject>('networkpolicies'))
    if (!want.has(`NetworkPolicy/${p.metadata.namespace}/${p.metadata.name}`))
      await cluster.api.delete('networkpolicies', p.metadata.name, p.metadata.namespace);
}

interface Cell {
  label: string;
  from: Endpoint;
  to: Endpoint;
  port: number;
  proto: L4;
  /** The oracle's verdict and why, for the message. */
  allowed: boolean;
  why: string;
}

/** The house table and the step's probes to the forest (TCP/UDP), each with the oracle's verdict. */
function cellsOf(world: CnpWorld, probes: readonly ConformanceProbe[]): Cell[] {
  const out: Cell[] = [];
  const add = (from: Endpoint, to: Endpoint, port: number, proto: L4) => {
    const pkt: Packet = { src: from.ip, dst: to.ip, protocol: protoOf(proto), dport: port };
    const v = cnpJudge(world, pkt);
    out.push({
      label: `${from.ref} > ${to.ref} ${proto}/${port}`,
      from,
      to,
      port,
      proto,
      allowed: v.allowed,
      why: `egress ${v.egress.by}; ingress ${v.ingress.by}`,
    });
  };
  for (const from of houses)
    for (const to of houses) if (from !== to) for (const c of HOUSE_CELLS) add(from, to, c.port, c.proto);
  for (const p of probes)
    if (p.to.startsWith(`${FOREST}/`) && p.protocol !== 'SCTP')
      add(endpoint(p.from), endpoint(p.to), p.port, p.protocol === 'TCP' ? 'tcp' : 'udp');
  return out;
}

/** Probes every cell at once (each source pod asks for its cells in one request). */
async function probeCells(cells: readonly Cell[]): Promise<ProbeOutcome[]> {
  const out: ProbeOutcome[] = new Array(cells.length);
  const bySource = new Map<PolicyPod, number[]>();
  cells.forEach((c, i) => bySource.set(c.from.program, [...(bySource.get(c.from.program) ?? []), i]));
  await Promise.all(
    [...bySource].map(async ([program, idx]) => {
      const r = await program.probeOutcomes(
        idx.map((i) => ({ ip: cells[i]!.to.ip, port: cells[i]!.port, proto: cells[i]!.proto })),
        DROP_WAIT_MS,
      );
      idx.forEach((i, j) => (out[i] = r[j] ?? 'missing'));
    }),
  );
  return out;
}

/** Probes until every cell is the oracle's (allowed: "ok"; denied: "timeout", a drop) or 10 s pass. */
async function expectOracleCells(what: string, cells: readonly Cell[]): Promise<void> {
  const deadline = Date.now() + 10_000;
  let wrong: string[] = [];
  for (;;) {
    const outcomes = await probeCells(cells);
    wrong = [];
    cells.forEach((c, i) => {
      const want = c.allowed ? 'ok' : 'timeout';
      if (outcomes[i] !== want) wrong.push(`${c.label}: probed ${outcomes[i]}, oracle ${want} (${c.why})`);
    });
    if (wrong.length === 0) {
      tally.steps++;
      tally.cells += cells.length;
      tally.denied += cells.filter((c) => !c.allowed).length;
      tally.deniedTcp += cells.filter((c) => !c.allowed && c.proto === 'tcp').length;
      return;
    }
    if (Date.now() > deadline) break;
    await sleep(200);
  }
  throw new Error(
    `${what}: ${wrong.length} of ${cells.length} cells differ from the oracle:\n${wrong.slice(0, 30).join('\n')}\n${cluster.nodes.map((n) => `--- ${n.name}\n${n.logTail(6)}`).join('\n')}`,
  );
}

describe('upstream ClusterNetworkPolicy conformance tests with real packets (houses on 3 nodes, TCP and UDP)', () => {
  it('baseline: without policies every house cell and every host port of the forest connects', async () => {
    await sync([]);
    const world = await readCnpWorld(cluster);
    const toForest = forest.flatMap((f) =>
      HOST_TCP_UDP_PORTS.map((port, i) => ({
        from: 'gryffindor/1',
        to: f.ref,
        protocol: [0, 1].includes(i) ? ('TCP' as const) : ('UDP' as const),
        port,
        connects: true,
      })),
    );
    const cells = cellsOf(world, toForest);
    expect(cells.every((c) => c.allowed)).toBe(true);
    expect(cells).toHaveLength(224 + 12);
    await expectOracleCells('baseline', cells);
    // The prober tells a refusal from a drop: a port nobody serves answers with a RST.
    const [refused] = await endpoint('gryffindor/0').program.probeOutcomes(
      [{ ip: endpoint('slytherin/0').ip, port: 9999, proto: 'tcp' }],
      DROP_WAIT_MS,
    );
    expect(refused).toBe('ECONNREFUSED');
  }, 60_000);

  for (const c of CONFORMANCE_CASES) {
    it(c.test, async () => {
      const applied = structuredClone(c.manifests) as Manifest[];
      try {
        for (const step of c.steps) {
          for (const change of step.changes ?? []) change(applied, (ref) => endpoint(ref).ip);
          await sync(applied);
          const world = await readCnpWorld(cluster);
          // The oracle over the real cluster agrees with upstream on each probe (SCTP included).
          const differ = step.probes
            .map((p) => ({
              p,
              v: cnpJudge(world, {
                src: endpoint(p.from).ip,
                dst: endpoint(p.to).ip,
                protocol: p.protocol,
                dport: p.port,
              }),
            }))
            .filter(({ p, v }) => v.allowed !== p.connects)
            .map(
              ({ p, v }) =>
                `${p.from} > ${p.to} ${p.protocol}/${p.port}: upstream ${p.connects}, oracle ${v.egress.by} / ${v.ingress.by}`,
            );
          expect(differ, `${step.name}: the oracle against upstream's expectation`).toEqual([]);
          const cells = cellsOf(world, step.probes);
          // Each of upstream's TCP/UDP probes between houses is a cell of the table, with upstream's verdict.
          for (const p of step.probes.filter((x) => x.protocol !== 'SCTP')) {
            const label = `${p.from} > ${p.to} ${p.protocol.toLowerCase()}/${p.port}`;
            expect(cells.find((x) => x.label === label)?.allowed, `${step.name}: ${label}`).toBe(p.connects);
          }
          await expectOracleCells(`${c.test}: ${step.name}`, cells);
        }
      } finally {
        await sync([]);
      }
    }, 120_000);
  }

  it('probed every subtest of the 24 tests, denied cells included, every denial a drop', () => {
    expect(tally.steps).toBe(1 + CONFORMANCE_CASES.flatMap((c) => c.steps).length);
    expect(tally.denied).toBeGreaterThan(0);
    expect(tally.deniedTcp).toBeGreaterThan(0);
    console.log(
      `cnp-conformance: ${tally.steps} tables (baseline + subtests), ${tally.cells} cells probed with real packets, ${tally.denied} denied (${tally.deniedTcp} TCP, each a timeout)`,
    );
  });
});
