// Only for src/policy/ and its tests, which h-policy is moving: they switch to src/k8s/objects.ts at
// the merge and this file goes.
export type { NamespaceInfo, NetworkPolicyInfo, PodInfo, PodPort } from '../k8s/objects.ts';
