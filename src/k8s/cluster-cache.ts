// The four informers the agent runs, started and stopped together, with their sync state.
import type { KubernetesObject } from '@kubernetes/client-node';
import type { KubeClient } from './client.ts';
import { DEFAULT_BACKOFF, RESOURCE_SPECS, ResourceInformer, type BackoffOptions, type InformerHooks, type ResourceName } from './informer.ts';
import type { NamespaceInfo, NetworkPolicyInfo, NodeInfo, PodInfo } from './objects.ts';

/** The four informers the agent runs. */
export class ClusterCache {
  readonly nodes: ResourceInformer<NodeInfo>;
  readonly pods: ResourceInformer<PodInfo>;
  readonly namespaces: ResourceInformer<NamespaceInfo>;
  readonly networkPolicies: ResourceInformer<NetworkPolicyInfo>;

  constructor(kube: KubeClient, hooks: InformerHooks, backoff: BackoffOptions = DEFAULT_BACKOFF) {
    this.nodes = new ResourceInformer(kube, RESOURCE_SPECS.nodes, hooks, backoff);
    this.pods = new ResourceInformer(kube, RESOURCE_SPECS.pods, hooks, backoff);
    this.namespaces = new ResourceInformer(kube, RESOURCE_SPECS.namespaces, hooks, backoff);
    this.networkPolicies = new ResourceInformer(kube, RESOURCE_SPECS.networkpolicies, hooks, backoff);
  }

  get all(): ResourceInformer<KubernetesObject>[] {
    return [this.nodes, this.pods, this.namespaces, this.networkPolicies] as ResourceInformer<KubernetesObject>[];
  }

  start(): void {
    for (const i of this.all) i.start();
  }

  async stop(): Promise<void> {
    await Promise.all(this.all.map((i) => i.stop()));
  }

  /** Every informer has listed once. */
  get synced(): boolean {
    return this.all.every((i) => i.synced);
  }

  /** The resources not listed yet. */
  get unsynced(): ResourceName[] {
    return this.all.filter((i) => !i.synced).map((i) => i.resource);
  }
}
