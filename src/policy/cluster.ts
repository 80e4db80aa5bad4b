// The cluster as every tier's compiler sees it: namespaces with their labels, the pod-network pods by
// namespace, and this node's pods with the addresses each one owns. Built once per compile and shared
// by the tiers, so a second tier adds no second walk over the cluster's pods.
//
// Which pods count (R17 option b, R16):
//   - host-network pods are neither targets nor selector peers: their traffic is their node's, which
//     policies reach with an ipBlock of the node's address;
//   - finished pods (phase Succeeded or Failed) are neither: their address may already be another
//     pod's;
//   - a pod without addresses matches nothing, except a local pod whose addresses the plugin already
//     told the agent (extraPodIps): it is isolated before the kubelet reports them.
import { normalizeIp } from '../net/text.ts';
import type { CompileInput, PolicyNamespace, PolicyNode, PolicyPod, PolicyPodPort, Protocol } from './types.ts';

/** The label the control plane puts on every namespace (R8); added here where a cache lacks it. */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

export type Labels = Readonly<Record<string, string>>;

/** A pod-network pod of the cluster, as the compilers use it. */
export interface ClusterPod {
  namespace: string;
  name: string;
  labels: Labels;
  ips: string[];
  ports: readonly PolicyPodPort[];
  local: boolean;
}

/** One of this node's pods and the addresses it owns (an address is one pod's only). */
export interface OwnedPod {
  pod: ClusterPod;
  ips: string[];
}

/** A node of the cluster, for ClusterNetworkPolicy `nodes` peers. */
export interface ClusterNode {
  name: string;
  labels: Labels;
  /** Its status addresses that are IPs (hostnames are not), canonical, sorted. */
  ips: string[];
}

export interface ClusterView {
  /** Canonical, sorted. */
  nodeAddresses: string[];
  /** Pod-network pods by namespace, each list sorted by name. */
  podsByNs: ReadonlyMap<string, readonly ClusterPod[]>;
  /** Every namespace known from the namespaces or the pods, sorted. */
  namespaceNames: readonly string[];
  labelsOfNs(namespace: string): Labels;
  /** This node's pods with at least one owned address, sorted by namespace and name. */
  localPods: readonly OwnedPod[];
  /** The cluster's nodes (CompileInput.nodes), sorted by name. */
  nodes: readonly ClusterNode[];
  warnings: string[];
}

export const byText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
export const podKey = (ns: string, name: string): string => `${ns}/${name}`;

const CANONICAL_V4 = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** Most addresses are dotted quads already written the one way: no parse needed. */
const canonicalIp = (ip: string): string | undefined => (CANONICAL_V4.test(ip) ? ip : normalizeIp(ip.trim()));

export function canonicalIps(ips: readonly string[]): string[] {
  if (ips.length === 1) return oneIp(ips[0] as string);
  const out = new Set<string>();
  for (const ip of ips) {
    const c = canonicalIp(ip);
    if (c !== undefined) out.add(c);
  }
  return [...out].sort(byText);
}

/** canonicalIps of one address (most pods): no set, sort or copies for it (50,000 pods at start). */
function oneIp(ip: string): string[] {
  const c = canonicalIp(ip);
  return c === undefined ? [] : [c];
}

/** A container port's protocol (the API defaults it to TCP). */
export function portProtocol(p: string | undefined): Protocol | undefined {
  const v = (p ?? 'TCP').toUpperCase();
  return v === 'TCP' || v === 'UDP' || v === 'SCTP' ? v : undefined;
}

/**
 * A pod's status addresses and container ports. Not memoised: the incremental compiler keeps what it
 * built per pod object (incremental/view.ts), and a memo here held a second record per pod for good
 * (50,000 pods: 4 MiB) to speed up the pure compile, which runs every 10 minutes.
 */
function factsOf(pod: PolicyPod): { ips: string[]; ports: readonly PolicyPodPort[] } {
  // One container's ports are its own list (never changed: the informer replaces the object); a
  // list built by pushing would keep room for 17 (50,000 pods: 7 MiB).
  const { containers } = pod.spec;
  const ports = containers.length === 1 ? (containers[0]?.ports ?? []) : containers.flatMap((c) => c.ports);
  const { podIPs } = pod.status;
  const ips = podIPs.length === 1 ? oneIp((podIPs[0] as { ip: string }).ip) : canonicalIps(podIPs.map((p) => p.ip));
  return { ips, ports };
}

/** A namespace's labels with the name label R8 promises, memoised on the informer's object. */
const nsLabelsOf = new WeakMap<PolicyNamespace, Labels>();
export function namespaceLabelsOf(ns: PolicyNamespace): Labels {
  let labels = nsLabelsOf.get(ns);
  if (!labels) {
    const name = ns.metadata.labels?.[NAMESPACE_NAME_LABEL] ?? ns.metadata.name;
    labels = { ...ns.metadata.labels, [NAMESPACE_NAME_LABEL]: name };
    nsLabelsOf.set(ns, labels);
  }
  return labels;
}

function namespaceLabels(input: CompileInput): Map<string, Labels> {
  const nsLabels = new Map<string, Labels>();
  for (const ns of input.namespaces) nsLabels.set(ns.metadata.name, namespaceLabelsOf(ns));
  return nsLabels;
}

/** A node as `nodes` peers read it, memoised on the informer's object. */
const nodesSeen = new WeakMap<PolicyNode, ClusterNode>();
export function clusterNodeOf(n: PolicyNode): ClusterNode {
  let node = nodesSeen.get(n);
  if (!node) {
    node = {
      name: n.metadata.name,
      labels: n.metadata.labels ?? {},
      ips: canonicalIps((n.status?.addresses ?? []).map((a) => a.address)),
    };
    nodesSeen.set(n, node);
  }
  return node;
}

/** A pod as the compilers see it (undefined: it counts for nothing, R17), and whether its addresses
 * include a notice's. Shared by clusterView and the incremental compiler (incremental/view.ts). */
export function clusterPodOf(
  pod: PolicyPod,
  nodeName: string,
  extraPodIps: ReadonlyMap<string, readonly string[]> | undefined,
): { pod: ClusterPod; fromNotice: boolean } | undefined {
  if (pod.spec.hostNetwork) return undefined; // R17 (b)
  if (pod.status.phase === 'Succeeded' || pod.status.phase === 'Failed') return undefined;
  const namespace = pod.metadata.namespace ?? '';
  const name = pod.metadata.name;
  const local = pod.spec.nodeName === nodeName;
  const extra = local ? extraPodIps?.get(podKey(namespace, name)) : undefined;
  const facts = factsOf(pod);
  const ips = extra && extra.length > 0 ? canonicalIps([...facts.ips, ...extra]) : facts.ips;
  if (ips.length === 0) return undefined;
  const labels = pod.metadata.labels ?? {};
  return { pod: { namespace, name, labels, ips, ports: facts.ports, local }, fromNotice: !!extra && extra.length > 0 };
}

function podsByNamespace(input: CompileInput): { podsByNs: Map<string, ClusterPod[]>; fromNotice: Set<string> } {
  const podsByNs = new Map<string, ClusterPod[]>();
  const fromNotice = new Set<string>();
  for (const raw of input.pods) {
    const c = clusterPodOf(raw, input.nodeName, input.extraPodIps);
    if (!c) continue;
    const { namespace, name } = c.pod;
    if (c.fromNotice) fromNotice.add(podKey(namespace, name));
    const list = podsByNs.get(namespace) ?? [];
    list.push(c.pod);
    podsByNs.set(namespace, list);
  }
  for (const list of podsByNs.values()) list.sort((a, b) => byText(a.name, b.name));
  return { podsByNs, fromNotice };
}

/**
 * Local pods with the addresses they own. A verdict map key has one value, so an address is one pod's
 * only. Two local pods with one address is a race of a finished pod with its successor: the one the
 * plugin told the agent about wins, else the first by name.
 */
function localPodsOf(podsByNs: Map<string, ClusterPod[]>): ClusterPod[] {
  const localPods: ClusterPod[] = [];
  for (const ns of [...podsByNs.keys()].sort(byText)) {
    for (const p of podsByNs.get(ns) ?? []) if (p.local) localPods.push(p);
  }
  return localPods;
}

/** `localPods`: sorted by namespace, then name. */
export function ownedLocalPods(
  localPods: readonly ClusterPod[],
  fromNotice: ReadonlySet<string>,
  warnings: string[],
): OwnedPod[] {
  const noticed = (p: ClusterPod) => Number(fromNotice.has(podKey(p.namespace, p.name)));
  const owner = new Map<string, ClusterPod>();
  for (const p of [...localPods].sort((a, b) => noticed(b) - noticed(a))) {
    for (const ip of p.ips) {
      const other = owner.get(ip);
      if (other === undefined) owner.set(ip, p);
      else {
        const them = podKey(other.namespace, other.name);
        warnings.push(`local pods ${them} and ${podKey(p.namespace, p.name)} both have address ${ip}: it is ${them}'s`);
      }
    }
  }
  const out: OwnedPod[] = [];
  for (const pod of localPods) {
    const ips = pod.ips.filter((ip) => owner.get(ip) === pod);
    if (ips.length > 0) out.push({ pod, ips });
  }
  return out;
}

export function clusterView(input: CompileInput): ClusterView {
  const warnings: string[] = [];
  const nsLabels = namespaceLabels(input);
  const { podsByNs, fromNotice } = podsByNamespace(input);
  return {
    nodeAddresses: canonicalIps(input.nodeAddresses),
    podsByNs,
    namespaceNames: [...new Set([...nsLabels.keys(), ...podsByNs.keys()])].sort(byText),
    labelsOfNs: (ns) => nsLabels.get(ns) ?? { [NAMESPACE_NAME_LABEL]: ns },
    localPods: ownedLocalPods(localPodsOf(podsByNs), fromNotice, warnings),
    nodes: (input.nodes ?? []).map(clusterNodeOf).sort((a, b) => byText(a.name, b.name)),
    warnings,
  };
}
