// The resource types the test API server serves, with what the real API server knows about each:
// scope, kind names, which fields a field selector may use (the registry's GetAttrs / field label
// conversion funcs) and the strategic-merge list keys from the Go types' patchMergeKey tags.
import type { MergeKeys } from './patch.ts';

export type ResourceName = 'nodes' | 'pods' | 'namespaces' | 'networkpolicies' | 'clusternetworkpolicies';

export interface ResourceType {
  resource: ResourceName;
  kind: string;
  listKind: string;
  /** `v1` or `group/version`. */
  apiVersion: string;
  namespaced: boolean;
  /** Has a status subresource: the main endpoint ignores status changes, /status ignores the rest. */
  hasStatus: boolean;
  fieldLabels: readonly string[];
  /** Values of the field labels of an object; a field absent from the object selects as "". */
  fields: (obj: unknown) => Record<string, string>;
  mergeKeys: MergeKeys;
  shortNames: readonly string[];
  singular: string;
  /** Served by a CRD (this name): only once a test installs it (TestApiServer.installCrd); 404 before. */
  crd?: string;
}

function at(obj: unknown, ...path: string[]): unknown {
  let node = obj;
  for (const key of path) {
    if (typeof node !== 'object' || node === null || Array.isArray(node)) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

function str(v: unknown): string {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : '';
}

function metaFields(obj: unknown): Record<string, string> {
  return {
    'metadata.name': str(at(obj, 'metadata', 'name')),
    'metadata.namespace': str(at(obj, 'metadata', 'namespace')),
  };
}

const META_MERGE_KEYS: MergeKeys = {
  'metadata.finalizers': 'set',
  'metadata.ownerReferences': { key: 'uid' },
};

const CONTAINER_KEYS = (prefix: string): MergeKeys => ({
  [prefix]: { key: 'name' },
  [`${prefix}.ports`]: { key: 'containerPort' },
  [`${prefix}.env`]: { key: 'name' },
  [`${prefix}.volumeMounts`]: { key: 'mountPath' },
});

export const RESOURCES: Readonly<Record<ResourceName, ResourceType>> = {
  nodes: {
    resource: 'nodes',
    kind: 'Node',
    listKind: 'NodeList',
    apiVersion: 'v1',
    namespaced: false,
    hasStatus: true,
    fieldLabels: ['metadata.name', 'metadata.namespace', 'spec.unschedulable'],
    fields: (obj) => ({ ...metaFields(obj), 'spec.unschedulable': str(at(obj, 'spec', 'unschedulable')) || 'false' }),
    mergeKeys: {
      ...META_MERGE_KEYS,
      'spec.podCIDRs': 'set',
      'spec.taints': { key: 'key' },
      'status.conditions': { key: 'type' },
      'status.addresses': { key: 'type' },
      'status.volumesAttached': { key: 'name' },
    },
    shortNames: ['no'],
    singular: 'node',
  },
  pods: {
    resource: 'pods',
    kind: 'Pod',
    listKind: 'PodList',
    apiVersion: 'v1',
    namespaced: true,
    hasStatus: true,
    fieldLabels: [
      'metadata.name',
      'metadata.namespace',
      'spec.nodeName',
      'spec.restartPolicy',
      'spec.schedulerName',
      'spec.serviceAccountName',
      'spec.hostNetwork',
      'status.phase',
      'status.podIP',
      'status.nominatedNodeName',
    ],
    fields: (obj) => ({
      ...metaFields(obj),
      'spec.nodeName': str(at(obj, 'spec', 'nodeName')),
      'spec.restartPolicy': str(at(obj, 'spec', 'restartPolicy')),
      'spec.schedulerName': str(at(obj, 'spec', 'schedulerName')),
      'spec.serviceAccountName': str(at(obj, 'spec', 'serviceAccountName')),
      'spec.hostNetwork': str(at(obj, 'spec', 'hostNetwork')) || 'false',
      'status.phase': str(at(obj, 'status', 'phase')),
      'status.podIP': str(at(obj, 'status', 'podIP')),
      'status.nominatedNodeName': str(at(obj, 'status', 'nominatedNodeName')),
    }),
    mergeKeys: {
      ...META_MERGE_KEYS,
      ...CONTAINER_KEYS('spec.containers'),
      ...CONTAINER_KEYS('spec.initContainers'),
      'spec.volumes': { key: 'name' },
      'spec.imagePullSecrets': { key: 'name' },
      'status.conditions': { key: 'type' },
      'status.podIPs': { key: 'ip' },
    },
    shortNames: ['po'],
    singular: 'pod',
  },
  namespaces: {
    resource: 'namespaces',
    kind: 'Namespace',
    listKind: 'NamespaceList',
    apiVersion: 'v1',
    namespaced: false,
    hasStatus: true,
    fieldLabels: ['metadata.name', 'metadata.namespace', 'status.phase'],
    fields: (obj) => ({ ...metaFields(obj), 'status.phase': str(at(obj, 'status', 'phase')) }),
    mergeKeys: { ...META_MERGE_KEYS, 'status.conditions': { key: 'type' } },
    shortNames: ['ns'],
    singular: 'namespace',
  },
  networkpolicies: {
    resource: 'networkpolicies',
    kind: 'NetworkPolicy',
    listKind: 'NetworkPolicyList',
    apiVersion: 'networking.k8s.io/v1',
    namespaced: true,
    hasStatus: false,
    fieldLabels: ['metadata.name', 'metadata.namespace'],
    fields: metaFields,
    mergeKeys: META_MERGE_KEYS,
    shortNames: ['netpol'],
    singular: 'networkpolicy',
  },
  clusternetworkpolicies: {
    resource: 'clusternetworkpolicies',
    kind: 'ClusterNetworkPolicy',
    listKind: 'ClusterNetworkPolicyList',
    apiVersion: 'policy.networking.k8s.io/v1alpha2',
    namespaced: false,
    // The CRD (network-policy-api v0.2.0) has a status subresource.
    hasStatus: true,
    fieldLabels: ['metadata.name', 'metadata.namespace'],
    fields: metaFields,
    mergeKeys: META_MERGE_KEYS,
    shortNames: ['cnp'],
    singular: 'clusternetworkpolicy',
    crd: 'clusternetworkpolicies.policy.networking.k8s.io',
  },
};

export function labelsOf(obj: unknown): Record<string, string> {
  const labels = at(obj, 'metadata', 'labels');
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) return {};
  const result: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) if (typeof v === 'string') result[k] = v;
  return result;
}

/** An APIResourceList for discovery (`/api/v1`, `/apis/networking.k8s.io/v1`), of the types served. */
export function apiResourceList(groupVersion: string, served: (type: ResourceType) => boolean = () => true): unknown {
  const resources = Object.values(RESOURCES)
    .filter((r) => r.apiVersion === groupVersion && served(r))
    .flatMap((r) => {
      const verbs = ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'];
      const main = {
        name: r.resource,
        singularName: r.singular,
        namespaced: r.namespaced,
        kind: r.kind,
        verbs,
        shortNames: r.shortNames,
      };
      const status = {
        name: `${r.resource}/status`,
        singularName: '',
        namespaced: r.namespaced,
        kind: r.kind,
        verbs: ['get', 'patch', 'update'],
      };
      return r.hasStatus ? [main, status] : [main];
    });
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion, resources };
}
