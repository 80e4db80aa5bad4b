// The cluster view (cluster.ts) kept from one compile to the next: informers replace an object on
// every change, so an object seen before is unchanged and what was built from it is reused. A
// namespace's pod list stays the very array of the last compile while its members are the same
// objects, so a label change in namespace A leaves B's list (and every peer that read only B) alone.
// The pods that changed are found by aligning the input's list with the last one (align.ts: a
// pointer comparison per place), so a pod replaced, added or deleted costs its namespace's list, not
// the cluster's; the whole walk (start, or many changes at once) is a few map look-ups per pod, split
// in slices (`Slicer`) so the event loop is never held long.
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
import type { CompileInput, PolicyNamespace, PolicyPod } from '../types.ts';
import { alignLists, changedNotices, copyInto } from './align.ts';

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

/** What clusterPodOf gave for a pod object (undefined: it counts for nothing). */
type PodResult = ClusterPod | undefined;

const byName = (a: ClusterPod, b: ClusterPod) => byText(a.name, b.name);
const SLICE = 2000;
/** Namespaces' pod lists sorted between looks at the clock. */
const SLICE_NAMESPACES = 100;
/** More replaced pods than this in one pass: walk them all instead. */
const REPLACED_MAX = 500;

interface Walked {
  sorted: Map<string, readonly ClusterPod[]>;
  podLists: Set<string>;
  local: readonly ClusterPod[];
  fromNotice: Set<string>;
}

export class ViewBuilder {
  /** Per namespace: the pods in input order, and the sorted list built from them. */
  private raw = new Map<string, ClusterPod[]>();
  private sorted = new Map<string, readonly ClusterPod[]>();
  private namespaces: readonly PolicyNamespace[] | undefined;
  private nsLabels = new Map<string, Labels>();
  private defaultLabels = new Map<string, Labels>();
  private names: readonly string[] = [];
  private nodes: readonly ClusterNode[] = [];
  private nodeAddresses: string[] = [];
  private owned = new WeakMap<ClusterPod, OwnedPod>();
  private lastView: ClusterView | undefined;
  /** The input last walked (its pods a copy), and per pod object of it what it gave. */
  private walked: { pods: PolicyPod[]; node: string; extra: CompileInput['extraPodIps'] } | undefined;
  private results = new Map<PolicyPod, PodResult>();
  /** For this node's pods of `results`: the notice addresses their result was made with. */
  private extras = new Map<PolicyPod, readonly string[] | undefined>();
  /** This node's pods of the view, in the order met (sorted when they change). */
  private local: readonly ClusterPod[] = [];
  /** The keys of `local` whose notice has addresses (the last build's). */
  private fromNotice = new Set<string>();
  /** The last local pods sorted and owned, for the same local pods and notices. */
  private owning: { local: readonly ClusterPod[]; fromNotice: string; localPods: OwnedPod[]; warnings: string[] } = {
    local: [],
    fromNotice: '',
    localPods: [],
    warnings: [],
  };
  /** This node's pods of the input last built, addresses or not, by "namespace/name". */
  private localByKey = new Map<string, PolicyPod>();
  /** Per address, how many of the view's pods have it: counted when first asked for (never by the
   * first compile: 50,000 entries at start), then kept up to date; dropped by a walk of every pod. */
  private ipCount: Map<string, number> | undefined;

  /** The view of `input`, and what changed since the last one. */
  *build(input: CompileInput, slice: Slicer): Generator<void, { view: ClusterView; changes: ViewChanges }, void> {
    const same = this.samePods(input);
    const { sorted, podLists, local, fromNotice } = same ?? this.replaced(input) ?? (yield* this.walk(input, slice));
    // Copies: a caller may change its array or map in place.
    if (!same) {
      // The last list refilled in place: a new copy of 50,000 pods at every change was ~2 ms and garbage
      // for the old generation's collections.
      const pods = copyInto(this.walked?.pods, input.pods);
      this.walked = { pods, node: input.nodeName, extra: new Map(input.extraPodIps ?? []) };
    }
    this.fromNotice = fromNotice;
    yield* slice();

    const labels = new Set<string>();
    let nsLabels = this.nsLabels;
    const nsChanged = !sameList(this.namespaces, input.namespaces);
    if (nsChanged) {
      nsLabels = new Map<string, Labels>();
      for (const ns of input.namespaces) nsLabels.set(ns.metadata.name, namespaceLabelsOf(ns));
      for (const [name, l] of nsLabels) if (this.nsLabels.get(name) !== l) labels.add(name);
      for (const name of this.nsLabels.keys()) if (!nsLabels.has(name)) labels.add(name);
      this.namespaces = [...input.namespaces];
    }
    // The names change only with the namespaces or with a pod list of a namespace without an object
    // that came or went (such a namespace's list is among those that changed).
    let names = this.names;
    if (nsChanged || [...podLists].some((ns) => !nsLabels.has(ns))) {
      const nameList = [...new Set([...nsLabels.keys(), ...sorted.keys()])].sort(byText);
      if (!sameList(this.names, nameList)) names = nameList;
    }
    if (names !== this.names) for (const x of new Set([...names, ...this.names])) labels.add(x);

    const nodeList = (input.nodes ?? []).map(clusterNodeOf).sort((a, b) => byText(a.name, b.name));
    const nodes = sameList(this.nodes, nodeList) ? this.nodes : nodeList;
    const addresses = canonicalIps(input.nodeAddresses);
    const nodeAddresses = sameList(this.nodeAddresses, addresses) ? this.nodeAddresses : addresses;

    const { localPods, warnings } = this.owningOf(local, fromNotice);

    const changes: ViewChanges = {
      podLists,
      labels,
      nodes: nodes !== this.nodes,
      noPods: podLists.size === 0 && this.lastView !== undefined,
      podsWithIp: (ip) => this.counts().get(ip) ?? 0,
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

  /** This node's pods of `input` (the one last built), with or without addresses: kept by key as
   * the list changes, not found by walking it (for the pods waiting for their ADD). */
  localInputPods(input: CompileInput): PolicyPod[] {
    const out: PolicyPod[] = [];
    for (const p of this.localByKey.values()) if (p.spec.nodeName === input.nodeName) out.push(p);
    return out;
  }

  /** The local pods sorted by namespace, then name, as clusterView lists them, with the addresses
   * each owns: the last ones while the local pods and the notices among them are the same. */
  private owningOf(
    local: readonly ClusterPod[],
    fromNotice: ReadonlySet<string>,
  ): { localPods: OwnedPod[]; warnings: string[] } {
    const noticed = [...fromNotice].sort(byText).join('\n');
    const was = this.owning;
    if (sameList(was.local, local) && was.fromNotice === noticed) return was;
    const sortedLocal = [...local].sort((a, b) => byText(a.namespace, b.namespace) || byName(a, b));
    const warnings: string[] = [];
    const localPods = ownedLocalPods(sortedLocal, fromNotice, warnings).map((o) => {
      const had = this.owned.get(o.pod);
      if (had && sameList(had.ips, o.ips)) return had;
      this.owned.set(o.pod, o);
      return o;
    });
    this.owning = { local, fromNotice: noticed, localPods, warnings };
    return this.owning;
  }

  /** Every pod, grouped by namespace; lists whose members are the last lists' are kept. */
  private *walk(input: CompileInput, slice: Slicer): Generator<void, Walked, void> {
    const raw = new Map<string, ClusterPod[]>();
    const results = new Map<PolicyPod, PodResult>();
    const localByKey = new Map<string, PolicyPod>();
    // The last results hold for the same node only.
    const prev = this.walked?.node === input.nodeName ? this.results : undefined;
    const extras = this.extras;
    this.extras = new Map();
    for (const [pod, e] of extras) if (prev?.has(pod)) this.extras.set(pod, e);
    // The local pods and their notices in the same walk: 50,000 pods walked once,
    // not three times (the walk after the list was one task of ~55 ms at start).
    const local: ClusterPod[] = [];
    const fromNotice = new Set<string>();
    let n = 0;
    for (const pod of input.pods) {
      if (++n % SLICE === 0) yield* slice();
      if (pod.spec.nodeName === input.nodeName)
        localByKey.set(podKey(pod.metadata.namespace ?? '', pod.metadata.name), pod);
      const c = this.podOf(pod, input, prev);
      results.set(pod, c);
      if (!c) continue;
      let list = raw.get(c.namespace);
      if (!list) {
        list = [];
        raw.set(c.namespace, list);
      }
      list.push(c);
      if (!c.local) continue;
      local.push(c);
      if (noticed(this.extras.get(pod))) fromNotice.add(podKey(c.namespace, c.name));
    }
    for (const pod of this.extras.keys()) if (!results.has(pod)) this.extras.delete(pod);
    yield* slice();
    const podLists = new Set<string>();
    const sorted = new Map<string, readonly ClusterPod[]>();
    n = 0;
    for (const [ns, list] of raw) {
      if (++n % SLICE_NAMESPACES === 0) yield* slice();
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
    this.ipCount = undefined;
    this.localByKey = localByKey;
    this.raw = raw;
    this.results = results;
    this.sorted = sorted;
    this.local = local;
    return { sorted, podLists, local, fromNotice };
  }

  /** The last walk's result when the input's pods are the same objects in the same order, for the same
   * node and notices (a policy change): one comparison per pod, no list copied or aligned. */
  private samePods(input: CompileInput): Walked | undefined {
    const w = this.walked;
    if (!w || w.node !== input.nodeName || !sameList(w.pods, input.pods)) return undefined;
    if (changedNotices(w.extra, input.extraPodIps).length > 0) return undefined;
    return { sorted: this.sorted, podLists: new Set(), local: this.local, fromNotice: this.fromNotice };
  }

  /**
   * The pods that changed since the last input, when few did (align.ts: replaced, added and deleted
   * objects), with the same node: only their namespaces' lists are updated (a pod out, a pod in by
   * name). A notice that came, went or changed redoes its local pod. Undefined: walk everything.
   */
  private replaced(input: CompileInput): Walked | undefined {
    const w = this.walked;
    if (!w || w.node !== input.nodeName) return undefined;
    const aligned = alignLists(w.pods, input.pods, this.results, REPLACED_MAX);
    if (!aligned) return undefined;
    const outs = new Set(aligned.outs);
    const ins = aligned.ins;
    // A notice that came, went or changed: its pod (kept in the list) is looked at again.
    const again: PolicyPod[] = [];
    for (const key of changedNotices(w.extra, input.extraPodIps)) {
      const pod = this.localByKey.get(key);
      if (pod && !outs.has(pod)) again.push(pod);
    }
    const results = this.results; // updated in place: only the changed pods differ
    const sorted = new Map(this.sorted);
    const podLists = new Set<string>();
    let local = this.local;
    // Every pod out first, then every pod in: a pod replaced is both.
    const gone: ClusterPod[] = [];
    const come: ClusterPod[] = [];
    for (const pod of outs) {
      const was = results.get(pod);
      results.delete(pod);
      this.extras.delete(pod);
      const key = podKey(pod.metadata.namespace ?? '', pod.metadata.name);
      if (this.localByKey.get(key) === pod) this.localByKey.delete(key);
      if (was) gone.push(was);
    }
    for (const pod of ins) {
      if (pod.spec.nodeName === input.nodeName)
        this.localByKey.set(podKey(pod.metadata.namespace ?? '', pod.metadata.name), pod);
      const now = this.podOf(pod, input, results);
      results.set(pod, now);
      if (now) come.push(now);
    }
    for (const pod of again) {
      const was = results.get(pod);
      const now = this.podOf(pod, input, results);
      results.set(pod, now);
      if (was === now) continue;
      if (was) gone.push(was);
      if (now) come.push(now);
    }
    // Counted from the last view's lists (this.sorted until the end), if they are not yet.
    this.counts();
    for (const was of gone) {
      for (const ip of was.ips) this.bump(ip, -1);
      const list = (sorted.get(was.namespace) ?? []).filter((p) => p !== was);
      if (list.length > 0) sorted.set(was.namespace, list);
      else sorted.delete(was.namespace);
      podLists.add(was.namespace);
      if (was.local) local = local.filter((p) => p !== was);
    }
    for (const pod of come) {
      for (const ip of pod.ips) this.bump(ip, 1);
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
    this.sorted = sorted;
    this.local = local;
    return { sorted, podLists, local, fromNotice };
  }

  /** The address counts of the view's pods (this.sorted), counted now if they are not yet. */
  private counts(): Map<string, number> {
    if (this.ipCount) return this.ipCount;
    this.ipCount = new Map<string, number>();
    for (const list of this.sorted.values()) for (const p of list) for (const ip of p.ips) this.bump(ip, 1);
    return this.ipCount;
  }

  private bump(ip: string, by: 1 | -1): void {
    const counts = this.ipCount as Map<string, number>;
    const n = (counts.get(ip) ?? 0) + by;
    if (n > 0) counts.set(ip, n);
    else counts.delete(ip);
  }

  /** clusterPodOf(pod), from what `prev` (the last input's results) has for the same object. */
  private podOf(pod: PolicyPod, input: CompileInput, prev: ReadonlyMap<PolicyPod, PodResult> | undefined): PodResult {
    const key =
      pod.spec.nodeName === input.nodeName ? podKey(pod.metadata.namespace ?? '', pod.metadata.name) : undefined;
    const extra = key === undefined ? undefined : input.extraPodIps?.get(key);
    const had = prev?.has(pod) === true;
    const was = prev?.get(pod);
    const wasExtra = this.extras.get(pod);
    if (had && (key === undefined || sameList(wasExtra, extra))) return was;
    const result = clusterPodOf(pod, input.nodeName, input.extraPodIps)?.pod;
    if (key !== undefined) this.extras.set(pod, extra);
    // The same pod with the same addresses: the ClusterPod object kept (only the notice came or went).
    const keep = was && result && noticed(wasExtra) === noticed(extra) && sameList(was.ips, result.ips);
    return keep ? was : result;
  }
}

/** Whether notice addresses make a local pod's addresses (clusterPodOf's fromNotice). */
const noticed = (extra: readonly string[] | undefined): boolean => (extra?.length ?? 0) > 0;
