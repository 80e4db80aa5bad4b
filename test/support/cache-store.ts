// One informer's cache as the policy enforcer reads it (get by name and namespace, list in insertion
// order), for the enforcer's unit and integration tests' ClusterCache stand-ins.
import type { NamespaceInfo, NetworkPolicyInfo, PodInfo } from '../../src/k8s/objects.ts';
export class Store<T extends { metadata: { name: string; namespace?: string } }> {
  readonly m = new Map<string, T>();
  put(o: T): void {
    this.m.set(`${o.metadata.namespace ?? ''}/${o.metadata.name}`, o);
  }
  get(name: string, namespace?: string): T | undefined {
    return this.m.get(`${namespace ?? ''}/${name}`);
  }
  list(): T[] {
    return [...this.m.values()];
  }
}

/** The policy enforcer's caches, empty: synced, or with the resources still listing. */
export function policyCaches(unsynced: string[] = []) {
  return {
    pods: new Store<PodInfo>(),
    namespaces: new Store<NamespaceInfo>(),
    networkPolicies: new Store<NetworkPolicyInfo>(),
    nodes: new Store(),
    clusterNetworkPolicies: new Store(),
    synced: unsynced.length === 0,
    unsynced,
  };
}
