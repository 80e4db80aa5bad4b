// ClusterNetworkPolicy with real packets on the simulated three-node cluster of the NetworkPolicy e2e
// model (support/policy-cluster.ts: x/y/z × a/b/c, TCP and UDP on 80 and 81): each scenario's CNPs and
// NetworkPolicies go through the API server (the sim installs the CRD, as the kind recipe does), then
// the 288-cell table is probed and compared with the table the CNP oracle (support/cnp-oracle.ts)
// computes over the objects the API server serves, until it matches or 10 s pass. The scenarios are
// the tier interactions the issue names: an Admin Deny a NetworkPolicy cannot reopen, an Admin Pass
// handing over to NetworkPolicy, an Admin Accept across a NetworkPolicy deny, a Baseline default deny
// a NetworkPolicy reopens, and an egress Deny on one port.
// The upstream conformance cases run with real packets in cnp-conformance.test.ts (the suite's own
// cluster), the guarantees around the rules (conntrack cut, before the answer, the deny log) in
// cnp-guarantees.test.ts.
import { afterEach, describe, it } from 'vitest';
import type { Packet, Protocol } from '../../src/policy/index.ts';
import { cellKey, PolicyPod, POLICY_PORTS, POLICY_PROTOCOLS, probeMatrix, type L4 } from '../kit/sim/policy-pods.ts';
import { applyCnp as applyCnpIn, deleteAllCnps, readCnpWorld } from '../support/cnp-cluster.ts';
import { cnpJudge } from '../support/cnp-oracle.ts';
import { applyPolicy, deleteAllPolicies, usePolicyCluster } from '../support/policy-cluster.ts';
import { sleep, type SimCluster } from '../support/sim.ts';

let cluster: SimCluster;
let probes: PolicyPod[] = [];

usePolicyCluster((pc) => ({ cluster, probes } = pc));

const name = (p: PolicyPod) => `${p.pod.namespace}/${p.pod.name}`;
const protocolOf = (proto: L4): Protocol => (proto === 'tcp' ? 'TCP' : 'UDP');
const ns = (n: string) => ({ matchLabels: { 'kubernetes.io/metadata.name': n } });

const readWorld = () => readCnpWorld(cluster);

async function expectOracleTable(id: string): Promise<void> {
  const world = await readWorld();
  const deadline = Date.now() + 10_000;
  let wrong: string[] = [];
  for (;;) {
    const probed = await probeMatrix(probes, { timeoutMs: 700 });
    wrong = [];
    for (const from of probes) {
      for (const to of probes) {
        if (from === to) continue;
        for (const port of POLICY_PORTS) {
          for (const proto of POLICY_PROTOCOLS) {
            const packet: Packet = { src: from.pod.ip, dst: to.pod.ip, protocol: protocolOf(proto), dport: port };
            const view = cnpJudge(world, packet);
            const key = cellKey({ from: name(from), to: name(to), port, proto });
            const got = probed.get(key);
            if (got !== view.allowed)
              wrong.push(
                `${id} ${key}: probed ${got ? 'allowed' : 'denied'}, expected ${view.allowed ? 'allowed' : 'denied'} (egress ${view.egress.by}, ingress ${view.ingress.by})`,
              );
          }
        }
      }
    }
    if (wrong.length === 0) return;
    if (Date.now() > deadline) break;
    await sleep(200);
  }
  throw new Error(`${id}: ${wrong.length} cells differ from the oracle's table:\n${wrong.slice(0, 30).join('\n')}`);
}

const applyCnp = (name: string, spec: Record<string, unknown>) => applyCnpIn(cluster, name, spec);

afterEach(async () => {
  await deleteAllCnps(cluster);
  await deleteAllPolicies(cluster);
  await expectOracleTable('baseline');
}, 30_000);

describe('ClusterNetworkPolicy tiers with real packets (3 nodes, x/y/z × a/b/c)', () => {
  it('an Admin Deny that a NetworkPolicy allowing everything cannot reopen', async () => {
    await applyCnp('deny-y-to-x', {
      tier: 'Admin',
      priority: 10,
      subject: { namespaces: ns('x') },
      ingress: [{ name: 'deny-y', action: 'Deny', from: [{ namespaces: ns('y') }] }],
    });
    await applyPolicy(cluster, 'x', 'allow-all', { podSelector: {}, ingress: [{}] });
    await expectOracleTable('admin-deny');
  }, 30_000);

  it('an Admin Pass hands over to NetworkPolicy, and an Admin Accept holds across a NetworkPolicy deny', async () => {
    await applyCnp('pass-y', {
      tier: 'Admin',
      priority: 5,
      subject: { namespaces: ns('x') },
      ingress: [{ name: 'to-np', action: 'Pass', from: [{ namespaces: ns('y') }] }],
    });
    await applyCnp('accept-z', {
      tier: 'Admin',
      priority: 6,
      subject: { namespaces: ns('x') },
      ingress: [{ name: 'monitoring', action: 'Accept', from: [{ namespaces: ns('z') }] }],
    });
    await applyPolicy(cluster, 'x', 'deny-all', { podSelector: {}, policyTypes: ['Ingress'] });
    await expectOracleTable('admin-pass-accept');
  }, 30_000);

  it('a Baseline default deny that a NetworkPolicy reopens, and an egress Deny on one port', async () => {
    await applyCnp('baseline-deny', {
      tier: 'Baseline',
      priority: 100,
      subject: { namespaces: {} },
      ingress: [{ name: 'deny-all', action: 'Deny', from: [{ namespaces: {} }] }],
    });
    await applyPolicy(cluster, 'x', 'from-y', {
      podSelector: {},
      ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }],
    });
    await applyCnp('no-81-to-z', {
      tier: 'Admin',
      priority: 1,
      subject: { namespaces: ns('y') },
      egress: [
        {
          name: 'no-81',
          action: 'Deny',
          to: [{ namespaces: ns('z') }],
          protocols: [{ tcp: { destinationPort: { number: 81 } } }],
        },
      ],
    });
    await expectOracleTable('baseline-and-egress');
  }, 30_000);
});
