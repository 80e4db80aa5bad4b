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
  /** How many of the view's pods have this address (peers.ts: may a member leave a set). */
  podsWithIp(ip: string): number;
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
/** More replaced pods than this in one pass: walk them all instead. */
const REPLACED_MAX = 500;

interface Walked {
  sorted: Map<string, readonly ClusterPod[]>;
  podLists: Set<string>;
  local: ClusterPod[];
  fromNotice: Set<string>;
}

/** The keys whose notice addresses differ between `a` and `b`. */
function changedNotices(
  a: ReadonlyMap<string, readonly string[]> | undefined,
  b: ReadonlyMap<string, readonly string[]> | undefined,
): string[] {
  const out: string[] = [];
  for (const [k, v] of a ?? []) if (!sameList(v, b?.get(k))) out.push(k);
  for (const k of (b ?? new Map<string, readonly string[]>()).keys()) if (!a?.has(k)) out.push(k);
  return out;
}

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
  /** The input last walked, and per pod of it what it gave (aligned with its pods). */
  private walked: { pods: readonly PolicyPod[]; node: string; extra: CompileInput['extraPodIps'] } | undefined;
  private results: PodMemo['result'][] | undefined;
  private local: readonly ClusterPod[] = [];
  /** Where this node's pods are in the list last walked, by "namespace/name" (for notices). */
  private localIndex = new Map<string, number>();
  /** Per address, the number of the view's pods that have it. */
  private ipCount = new Map<string, number>();

  /** The view of `input`, and what changed since the last one. */
  *build(input: CompileInput, slice: Slicer): Generator<void, { view: ClusterView; changes: ViewChanges }, void> {
    const { sorted, podLists, local, fromNotice } = this.replaced(input) ?? (yield* this.walk(input, slice));
    // Copies: a caller may change its array or map in place.
    this.walked = { pods: [...input.pods], node: input.nodeName, extra: new Map(input.extraPodIps ?? []) };
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
      podsWithIp: (ip) => this.ipCount.get(ip) ?? 0,
    };
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

  /** This node's pods of `input` (the one last built), with or without addresses: found by their
   * places in its list, not by walking it (for the pods waiting for their ADD). */
  localInputPods(input: CompileInput): PolicyPod[] {
    const out: PolicyPod[] = [];
    for (const [key, i] of this.localIndex) {
      const p = input.pods[i];
      if (!p || p.spec.nodeName !== input.nodeName) continue;
      if (podKey(p.metadata.namespace ?? '', p.metadata.name) === key) out.push(p);
    }
    return out;
  }

  /** Every pod, grouped by namespace; lists whose members are the last lists' are kept. */
  private *walk(input: CompileInput, slice: Slicer): Generator<void, Walked, void> {
    const raw = new Map<string, ClusterPod[]>();
    const results: PodMemo['result'][] = [];
    const localIndex = new Map<string, number>();
    let n = 0;
    for (const pod of input.pods) {
      if (++n % SLICE === 0) yield* slice();
      if (pod.spec.nodeName === input.nodeName)
        localIndex.set(podKey(pod.metadata.namespace ?? '', pod.metadata.name), results.length);
      const c = this.podOf(pod, input);
      results.push(c);
      if (!c) continue;
      let list = raw.get(c.pod.namespace);
      if (!list) {
        list = [];
        raw.set(c.pod.namespace, list);
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
    const local: ClusterPod[] = [];
    const fromNotice = new Set<string>();
    for (const c of results) {
      if (!c?.pod.local) continue;
      local.push(c.pod);
      if (c.fromNotice) fromNotice.add(podKey(c.pod.namespace, c.pod.name));
    }
    const ipCount = new Map<string, number>();
    for (const list of sorted.values())
      for (const p of list) for (const ip of p.ips) ipCount.set(ip, (ipCount.get(ip) ?? 0) + 1);
    this.ipCount = ipCount;
    this.localIndex = localIndex;
    this.raw = raw;
    this.results = results;
    this.sorted = sorted;
    this.local = local;
    return { sorted, podLists, local, fromNotice };
  }

  /**
   * The informers' list keeps a replaced object in its place and adds new ones at its end, so when
   * the input has at least as many pods as the last one, the same notices and node, and only some
   * objects were replaced or added, the pods that changed are found by one pointer comparison per
   * pod and only their namespaces' lists are updated (a pod out, a pod in by name). Undefined: walk
   * everything.
   */
  private replaced(input: CompileInput): Walked | undefined {
    const w = this.walked;
    if (!w || w.node !== input.nodeName || input.pods.length < w.pods.length || !this.results) return undefined;
    const changed: number[] = [];
    for (let i = 0; i < input.pods.length; i++) {
      if (i < w.pods.length && input.pods[i] === w.pods[i]) continue;
      changed.push(i);
      if (changed.length > REPLACED_MAX) return undefined;
    }
    // A notice that came, went or changed: its local pod is compiled again, found by its key.
    const noticed = new Set(changed);
    for (const key of changedNotices(w.extra, input.extraPodIps)) {
      const i = this.localIndex.get(key);
      if (i === undefined || i >= w.pods.length) continue; // not a pod of the list: nothing to redo
      const pod = input.pods[i] as PolicyPod;
      if (podKey(pod.metadata.namespace ?? '', pod.metadata.name) !== key) return undefined;
      if (!noticed.has(i)) changed.push(i);
      noticed.add(i);
    }
    for (const i of changed) {
      const pod = input.pods[i] as PolicyPod;
      if (pod.spec.nodeName === input.nodeName)
        this.localIndex.set(podKey(pod.metadata.namespace ?? '', pod.metadata.name), i);
    }
    const results = this.results; // updated in place: only the changed places differ
    const sorted = new Map(this.sorted);
    const podLists = new Set<string>();
    let local = this.local;
    // Every pod out first, then every pod in: with a pod deleted and another added, the pods between
    // moved one place, and each is both a pod out and a pod in.
    const ins: ClusterPod[] = [];
    for (const i of changed) {
      const was = results[i]?.pod;
      const now = this.podOf(input.pods[i] as PolicyPod, input);
      results[i] = now;
      if (was === now?.pod) continue;
      if (now) ins.push(now.pod);
      if (!was) continue;
      for (const ip of was.ips) {
        const n = (this.ipCount.get(ip) ?? 0) - 1;
        if (n > 0) this.ipCount.set(ip, n);
        else this.ipCount.delete(ip);
      }
      const list = (sorted.get(was.namespace) ?? []).filter((p) => p !== was);
      if (list.length > 0) sorted.set(was.namespace, list);
      else sorted.delete(was.namespace);
      podLists.add(was.namespace);
      if (was.local) local = local.filter((p) => p !== was);
    }
    for (const pod of ins) {
      for (const ip of pod.ips) this.ipCount.set(ip, (this.ipCount.get(ip) ?? 0) + 1);
      const list = [...(sorted.get(pod.namespace) ?? [])];
      let at = 0;
      while (at < list.length && byName(list[at] as ClusterPod, pod) <= 0) at++;
      list.splice(at, 0, pod);
      sorted.set(pod.namespace, list);
      podLists.add(pod.namespace);
      if (pod.local) local = [...local, pod];
    }
    // A list that came back to the same members is the last view's array.
    for (const ns of podLists) {
      const list = sorted.get(ns);
      const before = this.sorted.get(ns);
      if (list && before && sameList(list, before)) {
        sorted.set(ns, before);
        podLists.delete(ns);
      }
    }
    // As clusterPodOf says it: a local pod whose notice has addresses.
    const fromNotice = new Set<string>();
    for (const p of local) {
      const key = podKey(p.namespace, p.name);
      if ((input.extraPodIps?.get(key)?.length ?? 0) > 0) fromNotice.add(key);
    }
    this.raw = new Map(); // the next walk sorts again rather than trusting lists of another order
    this.results = results;
    this.sorted = sorted;
    this.local = local;
    return { sorted, podLists, local: [...local], fromNotice };
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
