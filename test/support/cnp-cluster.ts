// ClusterNetworkPolicy on the simulated cluster, shared by the CNP e2e files: the world the CNP oracle
// (support/cnp-oracle.ts) judges, read from the objects the API server serves (namespaces, pods,
// NetworkPolicies, Nodes with their labels and addresses, ClusterNetworkPolicies), and the apply and
// delete helpers.
import type { CnpWorld, OracleClusterPolicy } from './cnp-oracle.ts';
import { oracleWorld, type OraclePolicy } from './netpol-oracle.ts';
import type { KubeObject, SimCluster } from './sim.ts';

export async function readCnpWorld(cluster: SimCluster): Promise<CnpWorld> {
  const [namespaces, pods, policies, nodes, cnps] = await Promise.all(
    ['namespaces', 'pods', 'networkpolicies', 'nodes', 'clusternetworkpolicies'].map((r) =>
      cluster.api.list<KubeObject>(r),
    ),
  );
  const addresses = (n: KubeObject) =>
    ((n.status?.addresses as { address: string }[] | undefined) ?? []).map((a) => a.address);
  const nodeAddresses = Object.fromEntries((nodes ?? []).map((n) => [n.metadata.name, addresses(n)]));
  const base = oracleWorld({
    namespaces: namespaces ?? [],
    pods: pods ?? [],
    policies: (policies ?? []) as unknown as OraclePolicy[],
    nodeAddresses,
  });
  return {
    ...base,
    clusterPolicies: (cnps ?? []) as unknown as OracleClusterPolicy[],
    nodes: (nodes ?? []).map((n) => ({
      name: n.metadata.name ?? '',
      labels: n.metadata.labels ?? {},
      addresses: addresses(n),
    })),
  };
}

export async function applyCnp(cluster: SimCluster, name: string, spec: Record<string, unknown>): Promise<void> {
  await cluster.api.upsert('clusternetworkpolicies', {
    apiVersion: 'policy.networking.k8s.io/v1alpha2',
    kind: 'ClusterNetworkPolicy',
    metadata: { name },
    spec,
  });
}

export async function deleteAllCnps(cluster: SimCluster): Promise<void> {
  for (const p of await cluster.api.list<KubeObject>('clusternetworkpolicies'))
    await cluster.api.delete('clusternetworkpolicies', p.metadata.name ?? '');
}
