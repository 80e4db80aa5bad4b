// The cluster view (cluster.ts) kept from one compile to the next: informers replace an object on
// every change, so an object seen before is unchanged and what was built from it is reused. A
// namespace's pod list stays the very array of the last compile while its members are the same
// objects, so a label change in namespace A leaves B's list (and every peer that read only B) alone.
// The walk over the cluster's pods that remains is a few map look-ups per pod, split in slices
// (`Slicer`) so the event loop is never held long.
import {
  byText,
  canonicalIps,
  clusterNodeOf,
  clusterPodOf,
  namespaceLabelsOf,
  NAMESPACE_NAME_LABEL,
  ownedLocalPods,
  podKey,
  type ClusterNode,
  type ClusterPod,
  type ClusterView,
  type Labels,
  type OwnedPod,
} from '../cluster.ts';
import type { CompileInput, PolicyPod } from '../types.ts';

/** Called every so many items of a long walk; a generator step that may yield the event loop. */
export type Slicer = () => Generator<void, void, void>;

/** What changed since the last view (namespaces by name). */
export interface ViewChanges {
  /** Namespaces whose pod list is not the last view's array (added and removed ones included). */
  podLists: ReadonlySet<string>;
  /** Namespaces whose labels changed (added and removed ones included), or the namespace names. */
  labels: ReadonlySet<string>;
  nodes: boolean;
  /** Nothing at all about the cluster's pods changed. */
  noPods: boolean;
}

export const sameList = <T>(a: readonly T[] | undefined, b: readonly T[] | undefined): boolean => {
  if (a === b) return true;
  if (a === undefined || b === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
};

interface PodMemo {
  node: string;
  extra: readonly string[] | undefined;
  result: { pod: ClusterPod; fromNotice: boolean } | undefined;
}

const byName = (a: ClusterPod, b: ClusterPod) => byText(a.name, b.name);
const SLICE = 2000;

export class ViewBuilder {
  private readonly podMemo = new WeakMap<PolicyPod, PodMemo>();
  /** Per namespace: the pods in input order, and the sorted list built from them. */
  private raw = new Map<string, ClusterPod[]>();
  private sorted = new Map<string, readonly ClusterPod[]>();
  private nsLabels = new Map<string, Labels>();
  private defaultLabels = new Map<string, Labels>();
  private names: readonly string[] = [];
  private nodes: readonly ClusterNode[] = [];
  private nodeAddresses: string[] = [];
  private owned = new WeakMap<ClusterPod, OwnedPod>();
  private lastView: ClusterView | undefined;

  /** The view of `input`, and what changed since the last one. */
  *build(input: CompileInput, slice: Slicer): Generator<void, { view: ClusterView; changes: ViewChanges }, void> {
    const raw = new Map<string, ClusterPod[]>();
    const fromNotice = new Set<string>();
    const local: ClusterPod[] = [];
    let n = 0;
    for (const pod of input.pods) {
      if (++n % SLICE === 0) yield* slice();
      const c = this.podOf(pod, input);
      if (!c) continue;
      const { namespace, name } = c.pod;
      if (c.fromNotice) fromNotice.add(podKey(namespace, name));
      if (c.pod.local) local.push(c.pod);
      let list = raw.get(namespace);
      if (!list) {
        list = [];
        raw.set(namespace, list);
      }
      list.push(c.pod);
    }
    const podLists = new Set<string>();
    const sorted = new Map<string, readonly ClusterPod[]>();
    for (const [ns, list] of raw) {
      const prevRaw = this.raw.get(ns);
      const prevSorted = this.sorted.get(ns);
      if (prevSorted && sameList(prevRaw, list)) {
        sorted.set(ns, prevSorted);
        continue;
      }
      const s = [...list].sort(byName);
      if (prevSorted && sameList(prevSorted, s)) sorted.set(ns, prevSorted);
      else {
        sorted.set(ns, s);
        podLists.add(ns);
      }
    }
    for (const ns of this.sorted.keys()) if (!sorted.has(ns)) podLists.add(ns);
    yield* slice();

    const labels = new Set<string>();
    const nsLabels = new Map<string, Labels>();
    for (const ns of input.namespaces) nsLabels.set(ns.metadata.name, namespaceLabelsOf(ns));
    for (const [name, l] of nsLabels) if (this.nsLabels.get(name) !== l) labels.add(name);
    for (const name of this.nsLabels.keys()) if (!nsLabels.has(name)) labels.add(name);
    const nameList = [...new Set([...nsLabels.keys(), ...sorted.keys()])].sort(byText);
    const names = sameList(this.names, nameList) ? this.names : nameList;
    if (names !== this.names) for (const x of new Set([...names, ...this.names])) labels.add(x);

    const nodeList = (input.nodes ?? []).map(clusterNodeOf).sort((a, b) => byText(a.name, b.name));
    const nodes = sameList(this.nodes, nodeList) ? this.nodes : nodeList;
    const addresses = canonicalIps(input.nodeAddresses);
    const nodeAddresses = sameList(this.nodeAddresses, addresses) ? this.nodeAddresses : addresses;

    // Local pods sorted by namespace, then name, as clusterView lists them.
    local.sort((a, b) => byText(a.namespace, b.namespace) || byName(a, b));
    const warnings: string[] = [];
    const localPods = ownedLocalPods(local, fromNotice, warnings).map((o) => {
      const was = this.owned.get(o.pod);
      if (was && sameList(was.ips, o.ips)) return was;
      this.owned.set(o.pod, o);
      return o;
    });

    const changes: ViewChanges = {
      podLists,
      labels,
      nodes: nodes !== this.nodes,
      noPods: podLists.size === 0 && this.lastView !== undefined,
    };
    this.raw = raw;
    this.sorted = sorted;
    this.nsLabels = nsLabels;
    this.names = names;
    this.nodes = nodes;
    this.nodeAddresses = nodeAddresses;
    const defaults = this.defaultLabels;
    const view: ClusterView = {
      nodeAddresses,
      podsByNs: sorted,
      namespaceNames: names,
      labelsOfNs: (ns) => {
        const l = nsLabels.get(ns);
        if (l) return l;
        let d = defaults.get(ns);
        if (!d) {
          d = { [NAMESPACE_NAME_LABEL]: ns };
          defaults.set(ns, d);
        }
        return d;
      },
      localPods,
      nodes,
      warnings,
    };
    this.lastView = view;
    return { view, changes };
  }

  private podOf(pod: PolicyPod, input: CompileInput): PodMemo['result'] {
    const key =
      pod.spec.nodeName === input.nodeName ? podKey(pod.metadata.namespace ?? '', pod.metadata.name) : undefined;
    const extra = key === undefined ? undefined : input.extraPodIps?.get(key);
    const m = this.podMemo.get(pod);
    if (m && m.node === input.nodeName && sameList(m.extra, extra)) return m.result;
    const result = clusterPodOf(pod, input.nodeName, input.extraPodIps);
    const was = m?.result;
    // The same pod with the same addresses: the ClusterPod object kept (only the notice came or went).
    const keep = was && result && was.fromNotice === result.fromNotice && sameList(was.pod.ips, result.pod.ips);
    this.podMemo.set(pod, { node: input.nodeName, extra, result: keep ? was : result });
    return keep ? was : result;
  }
}
