// The upstream NetworkPolicy e2e model on a simulated three-node cluster (netpol-semantics.md §3),
// shared by the policy e2e files: namespaces x, y, z (labelled ns=<name>) with pods a, b, c each
// (labelled pod=<name>), pod i of 9 on node (i mod 3) + 1 so that most pairs cross nodes, every pod
// serving TCP and UDP on 80 and 81 (test/kit/sim/policy-pods.ts).
import { afterAll, beforeAll } from 'vitest';
import { PolicyPod, policyContainerPorts } from '../kit/sim/policy-pods.ts';
import { createTestCluster, type KubeObject, type SimCluster, type SimPod } from './sim.ts';

export const POLICY_NAMESPACES = ['x', 'y', 'z'] as const;
export const POLICY_POD_NAMES = ['a', 'b', 'c'] as const;

export interface PolicyCluster {
  cluster: SimCluster;
  /** The nine pods' probes, x/a first, in namespace then pod order. */
  probes: PolicyPod[];
  destroy(): Promise<void>;
}

/** `agentArgs`: extra flags for every agent (e.g. --policy-log-denied). */
export async function startPolicyCluster(opts: { agentArgs?: string[] } = {}): Promise<PolicyCluster> {
  const cluster = await createTestCluster({ nodes: 3, backend: 'vxlan', ...opts });
  const probes: PolicyPod[] = [];
  const destroy = async () => {
    for (const p of probes) p.stop();
    await cluster.destroy();
  };
  try {
    await cluster.waitReady();
    for (const ns of POLICY_NAMESPACES) await cluster.ensureNamespace(ns, { ns });
    let i = 0;
    const pods: SimPod[] = [];
    for (const namespace of POLICY_NAMESPACES) {
      for (const name of POLICY_POD_NAMES) {
        const node = cluster.node((i++ % 3) + 1);
        pods.push(
          await cluster.addPod(node, { namespace, name, labels: { pod: name }, ports: policyContainerPorts() }),
        );
      }
    }
    probes.push(...(await Promise.all(pods.map((p) => PolicyPod.start(p)))));
    await cluster.waitRoutes();
  } catch (err) {
    await destroy();
    throw err;
  }
  return { cluster, probes, destroy };
}

/** One policy cluster for the test file: started before its tests (`ready` gets it), destroyed after. */
export function usePolicyCluster(ready: (pc: PolicyCluster) => void, opts: { agentArgs?: string[] } = {}): void {
  let pc: PolicyCluster | undefined;
  beforeAll(async () => {
    pc = await startPolicyCluster(opts);
    ready(pc);
  }, 180_000);
  afterAll(async () => {
    await pc?.destroy();
  });
}

export async function applyPolicy(
  cluster: SimCluster,
  namespace: string,
  name: string,
  spec: Record<string, unknown>,
): Promise<void> {
  await cluster.api.upsert('networkpolicies', {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name, namespace },
    spec,
  });
}

export async function deleteAllPolicies(cluster: SimCluster): Promise<void> {
  for (const p of await cluster.api.list<KubeObject>('networkpolicies'))
    await cluster.api.delete('networkpolicies', p.metadata.name, p.metadata.namespace);
}
