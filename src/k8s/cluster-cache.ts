// The informers the agent runs, started and stopped together, with their sync state. The
// ClusterNetworkPolicies' counts as synced while its CRD is not installed (informer.ts: optional).
import type { KubernetesObject } from '@kubernetes/client-node';
import type { KubeClient } from './client.ts';
import {
  DEFAULT_BACKOFF,
  RESOURCE_SPECS,
  ResourceInformer,
  type BackoffOptions,
  type InformerHooks,
  type ResourceName,
} from './informer.ts';
import type { ClusterNetworkPolicyInfo, NamespaceInfo, NetworkPolicyInfo, NodeInfo, PodInfo } from './objects.ts';

/** The informers the agent runs. */
export class ClusterCache {
  readonly nodes: ResourceInformer<NodeInfo>;
  readonly pods: ResourceInformer<PodInfo>;
  readonly namespaces: ResourceInformer<NamespaceInfo>;
  readonly networkPolicies: ResourceInformer<NetworkPolicyInfo>;
  readonly clusterNetworkPolicies: ResourceInformer<ClusterNetworkPolicyInfo>;

  private readonly kube: KubeClient;

  constructor(kube: KubeClient, hooks: InformerHooks, backoff: BackoffOptions = DEFAULT_BACKOFF) {
    this.kube = kube;
    this.nodes = new ResourceInformer(kube, RESOURCE_SPECS.nodes, hooks, backoff);
    this.pods = new ResourceInformer(kube, RESOURCE_SPECS.pods, hooks, backoff);
    this.namespaces = new ResourceInformer(kube, RESOURCE_SPECS.namespaces, hooks, backoff);
    this.networkPolicies = new ResourceInformer(kube, RESOURCE_SPECS.networkpolicies, hooks, backoff);
    this.clusterNetworkPolicies = new ResourceInformer(kube, RESOURCE_SPECS.clusternetworkpolicies, hooks, backoff);
  }

  get all(): ResourceInformer<KubernetesObject>[] {
    const all = [this.nodes, this.pods, this.namespaces, this.networkPolicies, this.clusterNetworkPolicies];
    return all as ResourceInformer<KubernetesObject>[];
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

  /**
   * The resources not in step with the API server: not listed yet, or (once the API answers again
   * after an outage) still failing to list or watch. While the API itself is unreachable the caches
   * are as good as anyone's, and an outage alone does not make the node unready.
   */
  get unsynced(): ResourceName[] {
    const reachable = this.kube.reachability.reachable;
    return this.all.filter((i) => !i.synced || (reachable && i.down)).map((i) => i.resource);
  }
}
