// Over 400 lines: the whole render and its patch for a few changed pods (patchedPods) share the fragments, their reference counts and the last table; apart, each would reach into the other's state.
// renderPolicy (render.ts) that reuses: a LocalPod object rendered before gives the very chains,
// verdict-map elements and set definitions it gave then, and a PeerSet or NamedPortSet object the
// very element lists, so the table shares every unchanged part with the previous one and the diff
// (diff.ts, diffIdentity) compares only what changed. A pod is rendered by renderPolicy itself, alone
// and against hollow sets (no members), so the two cannot drift apart; the result equals
// renderPolicy(model) (test/unit/policy-incremental.test.ts).
import type { Element, NftMap, NftSet } from '../../nft/objects.ts';
import { POLICY_PREFIX } from '../names.ts';
import {
  recordFlatGroups,
  renderPolicyWith,
  type FlatGroupRequest,
  type FlatGroupSource,
  type RenderOptions,
} from '../render.ts';
import type { FlatParts } from '../clusternetworkpolicy/flat-render.ts';
import { applyFlatChanges, FlatGroups, type FlatChanges } from '../clusternetworkpolicy/flat-groups.ts';
import { sortedLike } from './order.ts';
import { HollowPeers } from './hollow.ts';
import { MapPatch } from './patch.ts';
import { samePlain } from '../../util/same-plain.ts';
import type { Slicer } from './view.ts';
import type {
  ChainOwner,
  CommentMeaning,
  CompiledPolicy,
  DesiredChain,
  DesiredPolicyTable,
  LocalPod,
  NamedPortSet,
  PeerSet,
} from '../types.ts';

interface Fragment {
  chains: [string, DesiredChain][];
  owners: [string, ChainOwner][];
  comments: [string, CommentMeaning][];
  /** Verdict-map elements (the pod's addresses), by map (the last fragment's when equal: patchedPods). */
  mapElements: [string, readonly Element[]][];
  /** The sets its rules name; those whose members are the pod's own (port ranges) with them. */
  sets: [string, NftSet | NftMap, readonly Element[] | undefined][];
  /** The flat ClusterNetworkPolicy groups its tier chains name (their objects come from FlatGroups). */
  groups: [string, FlatGroupRequest][];
}

const NO_GROUPS: FlatGroupSource = () => new Map();

const SET_NAME = new RegExp(`^${POLICY_PREFIX}(peer|cidr|port)-([0-9a-f]+)(?:-v([46]))?$`);
const keyText = (e: Element) => e.key.join(' . ');
const byKey = (a: { k: string }, b: { k: string }) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0);
const EMPTY = new Map<string, NamedPortSet>();
const noSlice: Slicer = function* () {};
/** More local pods changed than this: the whole render (patchedPods). */
const PATCH_PODS_MAX = 64;
/** Local pods rendered between looks at the clock. */
const SLICE_PODS = 25;

function sortedElements(list: readonly Element[]): Element[] {
  return list
    .map((e) => ({ k: keyText(e), e }))
    .sort(byKey)
    .map((x) => x.e);
}

export class TableRenderer {
  private optionsKey = '';
  private fragments = new WeakMap<LocalPod, Fragment>();
  private skeleton: DesiredPolicyTable | undefined;
  /** Element lists by the set object they list, per set name. */
  private members = new WeakMap<PeerSet | NamedPortSet, Map<string, readonly Element[]>>();
  private hollow = new HollowPeers();
  private last: DesiredPolicyTable | undefined;
  /** The local pods of the last render and their fragments (keptPods, patchedPods). */
  private lastPods: readonly LocalPod[] | undefined;
  private lastFragments: Fragment[] = [];
  /** Whether the last render named flat groups: a patch then also merges theirs (flatPatch). */
  private lastFlat = false;
  /** How many of the last render's fragments name each chain, comment and set (patchedPods). */
  private chainRefs = new Map<string, number>();
  private commentRefs = new Map<string, number>();
  private setRefs = new Map<string, number>();
  private flatGroups = new FlatGroups();

  /** renderPolicy(model, options), at once. */
  render(model: CompiledPolicy, options: RenderOptions = {}): DesiredPolicyTable {
    const steps = this.steps(model, options, noSlice);
    for (;;) {
      const r = steps.next();
      if (r.done) return r.value;
    }
  }

  /** renderPolicy(model, options), giving the event loop back (`breathe`) whenever a slice took
   * `sliceMs` (a whole render at 50,000 pods: every local pod's chains and the peer sets' elements). */
  async renderAsync(
    model: CompiledPolicy,
    options: RenderOptions,
    breathe: () => Promise<void>,
    sliceMs = 20,
  ): Promise<DesiredPolicyTable> {
    let since = performance.now();
    const slice: Slicer = function* () {
      if (performance.now() - since >= sliceMs) yield;
    };
    const steps = this.steps(model, options, slice);
    for (;;) {
      const r = steps.next();
      if (r.done) return r.value;
      await breathe();
      since = performance.now();
    }
  }

  private *steps(
    model: CompiledPolicy,
    options: RenderOptions,
    slice: Slicer,
  ): Generator<void, DesiredPolicyTable, void> {
    const key = JSON.stringify(options);
    if (key !== this.optionsKey || !this.skeleton) {
      this.optionsKey = key;
      this.lastPods = undefined;
      this.fragments = new WeakMap();
      this.flatGroups = new FlatGroups();
      this.skeleton = renderPolicyWith({ ...model, pods: [], peers: new Map(), namedPorts: EMPTY }, options, NO_GROUPS);
    }
    const skeleton = this.skeleton;
    const kept = this.keptPods(model) ?? this.patchedPods(model, options);
    if (kept) return kept;
    const chains = new Map<string, DesiredChain>(skeleton.chains);
    const sets = new Map<string, NftSet | NftMap>(skeleton.sets);
    const elements = new Map<string, readonly Element[]>();
    const chainOwners = new Map<string, ChainOwner>();
    const comments = new Map<string, CommentMeaning>(skeleton.comments);
    const mapElements = new Map<string, Element[]>();
    for (const name of skeleton.elements.keys()) mapElements.set(name, []);
    const hollow = this.hollowPeers(model);
    const groups = new Map<string, FlatGroupRequest>();
    const fragments: Fragment[] = [];
    const chainRefs = new Map<string, number>();
    const commentRefs = new Map<string, number>();
    const setRefs = new Map<string, number>();
    let n = 0;
    for (const pod of model.pods) {
      if (++n % SLICE_PODS === 0) yield* slice();
      const f = this.fragment(pod, model, hollow, options);
      fragments.push(f);
      for (const [g, req] of f.groups) if (!groups.has(g)) groups.set(g, req);
      for (const [n, c] of f.chains) {
        chains.set(n, c);
        chainRefs.set(n, (chainRefs.get(n) ?? 0) + 1);
      }
      for (const [n, o] of f.owners) chainOwners.set(n, o);
      for (const [n, m] of f.comments) {
        comments.set(n, m);
        commentRefs.set(n, (commentRefs.get(n) ?? 0) + 1);
      }
      for (const [n, list] of f.mapElements) mapElements.get(n)?.push(...list);
      for (const [n, s, own] of f.sets) {
        setRefs.set(n, (setRefs.get(n) ?? 0) + 1);
        if (sets.has(n)) continue;
        sets.set(n, this.last?.sets.get(n) ?? s);
        elements.set(n, own ?? this.membersOf(n, model));
        // A peer set's first members are an element per address: up to 50,000 of them, ~10 ms; a few
        // such sets among SLICE_PODS pods made a slice of 60 ms at 50,000 pods.
        if (!own) yield* slice();
      }
    }
    yield* slice();
    // The flat groups: unchanged ones (same rules, same peer objects) are the very objects of before.
    const rendered = this.flatGroups.render(groups, model, options);
    const flat = this.flatGroups.merged(rendered);
    const record = new Map<string, { request: FlatGroupRequest; parts: FlatParts }>();
    for (const [g, parts] of rendered) record.set(g, { request: groups.get(g) as FlatGroupRequest, parts });
    // forEach: no entry array per name (~1,000 of them at every render).
    flat.chains.forEach((c, n) => chains.set(n, c));
    flat.comments.forEach((m, n) => comments.set(n, m));
    flat.sets.forEach((x, n) => {
      sets.set(n, this.last?.sets.get(n) ?? x);
      elements.set(n, flat.elements.get(n) ?? []);
    });
    yield* slice();
    for (const n of mapElements.keys()) {
      const list = mapElements.get(n) as Element[];
      const was = this.last?.elements.get(n);
      const sorted = sortedElements(list);
      elements.set(n, was && sameObjects(was, sorted) ? was : sorted);
    }
    const last = this.last;
    const table: DesiredPolicyTable = {
      chains: sortedLike(chains, last?.chains),
      sets: sortedLike(sets, last?.sets),
      elements: sortedLike(elements, last?.elements),
      chainOwners: sortedLike(chainOwners, last?.chainOwners),
      comments: sortedLike(comments, last?.comments),
    };
    this.last = table;
    this.lastPods = model.pods;
    this.lastFragments = fragments;
    this.lastFlat = groups.size > 0;
    this.chainRefs = chainRefs;
    this.commentRefs = commentRefs;
    this.setRefs = setRefs;
    recordFlatGroups(table, record);
    return table;
  }

  /**
   * The last render's table with the fragments of the few local pods that are new objects (a policy
   * added or taken away: the pods it selects) swapped for their new ones, the rest of the table
   * copied, not gathered again from ~500 fragments at 50,000 pods; peer and named-port sets get their
   * elements again where their objects changed, as in keptPods. With flat ClusterNetworkPolicy groups
   * (flatPatch), their merge's changed names alone are put in, also when no pod changed (a peer's
   * members did). Undefined (the whole render) when the local pods came or went, too many changed,
   * or the groups were merged again whole.
   */
  private patchedPods(model: CompiledPolicy, options: RenderOptions): DesiredPolicyTable | undefined {
    const last = this.last;
    const lastPods = this.lastPods;
    if (!last || !lastPods || lastPods.length !== model.pods.length) return undefined;
    const changed: number[] = [];
    for (let i = 0; i < lastPods.length; i++) {
      if (lastPods[i] === model.pods[i]) continue;
      changed.push(i);
      if (changed.length > PATCH_PODS_MAX) return undefined;
    }
    if (changed.length === 0 && !this.lastFlat) return undefined;
    const hollow = this.hollowPeers(model);
    const fresh = changed.map((i) => this.fragment(model.pods[i] as LocalPod, model, hollow, options));
    const flat =
      this.lastFlat || fresh.some((f) => f.groups.length > 0) ? this.flatPatch(model, options, changed, fresh) : null;
    if (flat === undefined) return undefined;
    if (changed.length === 0 && flat && unchanged(flat.names)) return this.keptTable(last, model, flat.record);

    // Patches of the last table's maps: a kind no name of which changed is the last one itself.
    const chains = new MapPatch(last.chains);
    const chainOwners = new MapPatch(last.chainOwners);
    const comments = new MapPatch(last.comments);
    const sets = new MapPatch(last.sets);
    const elements = new MapPatch(last.elements);
    // Owners by every changed pod's new chains: a pod that moved to another place among the local
    // pods (one came, another went) is another place's `now` and keeps its owners.
    const nowOwners = new Set<string>();
    for (const f of fresh) for (const [n] of f.owners) nowOwners.add(n);
    const outOf = new Map<string, Set<Element>>();
    const into = new Map<string, Element[]>();
    changed.forEach((i, k) => {
      const was = this.lastFragments[i] as Fragment;
      const now = fresh[k] as Fragment;
      // The pod's addresses jump to the same chains (a policy changed its rules, not its chains): its
      // verdict-map elements are the last ones, so the maps are neither sorted again nor diffed.
      if (now.mapElements !== was.mapElements && sameMapElements(was.mapElements, now.mapElements))
        now.mapElements = was.mapElements;
      this.lastFragments[i] = now;
      // Counted: a chain other fragments name too (the flat ingress check) stays while one does.
      const nowChains = new Set(now.chains.map(([n]) => n));
      const wasChains = new Set(was.chains.map(([n]) => n));
      for (const n of wasChains) if (!nowChains.has(n) && unref(this.chainRefs, n)) chains.delete(n);
      for (const [n] of was.owners) if (!nowOwners.has(n)) chainOwners.delete(n);
      for (const [n] of was.comments) if (unref(this.commentRefs, n)) comments.delete(n);
      for (const [n] of was.sets)
        if (unref(this.setRefs, n)) {
          sets.delete(n);
          elements.delete(n);
        }
      if (now.mapElements !== was.mapElements) {
        for (const [n, list] of was.mapElements) {
          let out = outOf.get(n);
          if (!out) outOf.set(n, (out = new Set()));
          for (const e of list) out.add(e);
        }
        for (const [n, list] of now.mapElements) {
          let to = into.get(n);
          if (!to) into.set(n, (to = []));
          to.push(...list);
        }
      }
      for (const [n, c] of now.chains) {
        chains.set(n, c);
        if (!wasChains.has(n)) this.chainRefs.set(n, (this.chainRefs.get(n) ?? 0) + 1);
      }
      for (const [n, o] of now.owners) {
        chainOwners.set(n, o);
      }
      for (const [n, m] of now.comments) {
        comments.set(n, m);
        this.commentRefs.set(n, (this.commentRefs.get(n) ?? 0) + 1);
      }
      for (const [n, s, own] of now.sets) {
        this.setRefs.set(n, (this.setRefs.get(n) ?? 0) + 1);
        if (sets.has(n)) continue;
        sets.set(n, last.sets.get(n) ?? s);
        elements.set(n, own ?? this.membersOf(n, model));
      }
    });
    for (const n of new Set([...outOf.keys(), ...into.keys()])) {
      const out = outOf.get(n) ?? new Set<Element>();
      const was = last.elements.get(n);
      // The last list is sorted: the changed pods' elements are put in their places, not all sorted again.
      const sorted = insertSorted(
        (was ?? []).filter((e) => !out.has(e)),
        into.get(n) ?? [],
      );
      elements.set(n, was && sameObjects(was, sorted) ? was : sorted);
    }
    if (flat) applyFlatChanges({ chains, sets, elements, comments }, flat.merged, flat.names, last.sets);
    // The sets named before: those whose objects changed get their elements again (new names were
    // listed from their objects above).
    for (const name of elements.baseKeys()) {
      if (!SET_NAME.test(name)) continue;
      const list = elements.get(name);
      if (list === undefined) continue;
      const now = this.membersOf(name, model);
      if (now !== list) elements.set(name, now);
    }
    const table: DesiredPolicyTable = {
      chains: chains.result(),
      sets: sets.result(),
      elements: elements.result(),
      chainOwners: chainOwners.result(),
      comments: comments.result(),
    };
    this.last = table;
    this.lastPods = model.pods;
    this.lastFlat = flat?.any ?? false;
    recordFlatGroups(table, flat?.record ?? new Map());
    return table;
  }

  /**
   * The flat groups the local pods name once `fresh` replaces the fragments at `changed`, rendered
   * (FlatGroups keeps the unchanged ones) and merged into the last merge: the names that changed and
   * the table's record of them. Undefined when the merge was done again whole (the whole render).
   */
  private flatPatch(model: CompiledPolicy, options: RenderOptions, changed: readonly number[], fresh: Fragment[]) {
    const groups = new Map<string, FlatGroupRequest>();
    let k = 0;
    this.lastFragments.forEach((was, i) => {
      const f = changed[k] === i ? (fresh[k++] as Fragment) : was;
      for (const [g, req] of f.groups) if (!groups.has(g)) groups.set(g, req);
    });
    const rendered = this.flatGroups.render(groups, model, options);
    const { merged, changed: names } = this.flatGroups.mergedChanges(rendered);
    if (!names) return undefined;
    const record = new Map<string, { request: FlatGroupRequest; parts: FlatParts }>();
    for (const [g, parts] of rendered) record.set(g, { request: groups.get(g) as FlatGroupRequest, parts });
    return { merged, names, record, any: groups.size > 0 };
  }

  /**
   * The same local pods (objects) as the last render, with no flat groups: every chain, comment,
   * owner, set definition and verdict-map element is the last table's; only the peer and named-port
   * sets whose objects changed get their elements again (a remote pod's label change: one set).
   * Undefined: the whole render.
   */
  private keptPods(model: CompiledPolicy): DesiredPolicyTable | undefined {
    const last = this.last;
    if (!last || this.lastFlat || !this.lastPods || !sameObjects(this.lastPods, model.pods)) return undefined;
    return this.keptTable(last, model, new Map());
  }

  /** `last` with the peer and named-port sets whose objects changed listed again. */
  private keptTable(
    last: DesiredPolicyTable,
    model: CompiledPolicy,
    record: ReadonlyMap<string, { request: FlatGroupRequest; parts: FlatParts }>,
  ): DesiredPolicyTable {
    let elements: Map<string, readonly Element[]> | undefined;
    for (const [name, list] of last.elements) {
      if (!SET_NAME.test(name)) continue;
      const now = this.membersOf(name, model);
      if (now === list) continue;
      elements ??= new Map(last.elements);
      elements.set(name, now);
    }
    if (!elements) return last;
    const table: DesiredPolicyTable = { ...last, elements };
    this.last = table;
    recordFlatGroups(table, record);
    return table;
  }

  /** The model's peers without members: what a pod's chains read of them (their meaning). */
  private hollowPeers(model: CompiledPolicy): ReadonlyMap<string, PeerSet> {
    return this.hollow.over(model.peers);
  }

  private fragment(
    pod: LocalPod,
    model: CompiledPolicy,
    hollow: ReadonlyMap<string, PeerSet>,
    options: RenderOptions,
  ): Fragment {
    const had = this.fragments.get(pod);
    if (had) return had;
    const groups: [string, FlatGroupRequest][] = [];
    const t = renderPolicyWith({ ...model, pods: [pod], peers: hollow, namedPorts: EMPTY }, options, (g) => {
      groups.push(...g);
      return NO_GROUPS(g);
    });
    const skeleton = this.skeleton as DesiredPolicyTable;
    const f: Fragment = {
      chains: [...t.chains].filter(([n]) => !skeleton.chains.has(n)),
      owners: [...t.chainOwners],
      comments: [...t.comments].filter(([n]) => !skeleton.comments.has(n)),
      mapElements: [...t.elements].filter(([n]) => skeleton.elements.has(n)),
      sets: [...t.sets]
        .filter(([n]) => !skeleton.sets.has(n))
        .map(([n, s]) => [n, s, SET_NAME.test(n) ? undefined : t.elements.get(n)]),
      groups,
    };
    this.fragments.set(pod, f);
    return f;
  }

  /** A peer, cidr or named-port set's elements, from its set object (kept while the object is). */
  private membersOf(name: string, model: CompiledPolicy): readonly Element[] {
    const [, kind, id, family] = SET_NAME.exec(name) as RegExpExecArray;
    const set = kind === 'port' ? model.namedPorts.get(id as string) : model.peers.get(id as string);
    if (!set) return [];
    let byName = this.members.get(set);
    if (!byName) {
      byName = new Map();
      this.members.set(set, byName);
    }
    const had = byName.get(name);
    if (had) return had;
    let list: Element[];
    if (kind === 'cidr')
      list = sortedElements((set as PeerSet).intervals.map((p) => ({ kind: 'element', set: name, key: [p] })));
    else if (kind === 'peer') {
      // Members are sorted as text already, which is the key order; the elements of the set's last
      // list are reused, so the diff passes over them by identity (a pod in or out of 50,000 is one
      // element to look at, not 50,000 keys to compare).
      const ips = family === '4' ? (set as PeerSet).v4 : (set as PeerSet).v6;
      list = reuseElements(name, ips, this.last?.elements.get(name));
    } else {
      const np = set as NamedPortSet;
      list = sortedElements(
        (family === '4' ? np.v4 : np.v6).map((e) => ({
          kind: 'element',
          set: name,
          key: [e.address, e.protocol.toLowerCase(), String(e.port)],
        })),
      );
    }
    byName.set(name, list);
    return list;
  }
}

/** A peer set's elements for `ips` (sorted as text), with the elements of `had` (the set's last list,
 * in the same order) where they have the same address. */
function reuseElements(name: string, ips: readonly string[], had: readonly Element[] | undefined): Element[] {
  const out: Element[] = [];
  const prev = had ?? [];
  let j = 0;
  for (const ip of ips) {
    while (j < prev.length && (prev[j]?.key[0] as string) < ip) j++;
    const e = prev[j];
    // Frozen: a transaction shares it rather than copying it (nft/transaction.ts).
    out.push(
      e !== undefined && e.key[0] === ip ? e : Object.freeze({ kind: 'element', set: name, key: Object.freeze([ip]) }),
    );
  }
  return out;
}

/** `list` (sorted by key text) with `add` put in their places. */
function insertSorted(list: Element[], add: readonly Element[]): Element[] {
  for (const e of add) {
    const k = keyText(e);
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (keyText(list[mid] as Element) < k) lo = mid + 1;
      else hi = mid;
    }
    list.splice(lo, 0, e);
  }
  return list;
}

/** The same verdict-map elements (maps, keys and values, in order) in two fragments. */
function sameMapElements(a: Fragment['mapElements'], b: Fragment['mapElements']): boolean {
  if (a.length !== b.length) return false;
  for (let m = 0; m < a.length; m++) {
    const [na, la] = a[m] as [string, readonly Element[]];
    const [nb, lb] = b[m] as [string, readonly Element[]];
    if (na !== nb || la.length !== lb.length) return false;
    for (let e = 0; e < la.length; e++)
      if (
        !samePlain((la[e] as Element).key, (lb[e] as Element).key) ||
        !samePlain((la[e] as Element).value, (lb[e] as Element).value)
      )
        return false;
  }
  return true;
}

/** One reference to `name` fewer; true when it was the last. */
function unref(refs: Map<string, number>, name: string): boolean {
  const n = (refs.get(name) ?? 0) - 1;
  if (n > 0) {
    refs.set(name, n);
    return false;
  }
  refs.delete(name);
  return true;
}

function unchanged(names: FlatChanges): boolean {
  return names.chains.size + names.sets.size + names.elements.size + names.comments.size === 0;
}

function sameObjects<T>(a: readonly T[], b: readonly T[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
