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
import { FlatGroups } from '../clusternetworkpolicy/flat-groups.ts';
import { sortedLike } from './order.ts';
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
  /** Verdict-map elements (the pod's addresses), by map. */
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
  private hollow = new Map<string, PeerSet>();
  private last: DesiredPolicyTable | undefined;
  /** The local pods of the last render, when it had no flat groups (keptPods). */
  private lastPods: readonly LocalPod[] | undefined;
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
    const kept = this.keptPods(model);
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
    let n = 0;
    for (const pod of model.pods) {
      if (++n % SLICE_PODS === 0) yield* slice();
      const f = this.fragment(pod, model, hollow, options);
      for (const [g, req] of f.groups) if (!groups.has(g)) groups.set(g, req);
      for (const [n, c] of f.chains) chains.set(n, c);
      for (const [n, o] of f.owners) chainOwners.set(n, o);
      for (const [n, m] of f.comments) comments.set(n, m);
      for (const [n, list] of f.mapElements) mapElements.get(n)?.push(...list);
      for (const [n, s, own] of f.sets) {
        if (sets.has(n)) continue;
        sets.set(n, this.last?.sets.get(n) ?? s);
        elements.set(n, own ?? this.membersOf(n, model));
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
    this.lastPods = groups.size === 0 ? model.pods : undefined;
    recordFlatGroups(table, record);
    return table;
  }

  /**
   * The same local pods (objects) as the last render, with no flat groups: every chain, comment,
   * owner, set definition and verdict-map element is the last table's; only the peer and named-port
   * sets whose objects changed get their elements again (a remote pod's label change: one set).
   * Undefined: the whole render.
   */
  private keptPods(model: CompiledPolicy): DesiredPolicyTable | undefined {
    const last = this.last;
    if (!last || !this.lastPods || !sameObjects(this.lastPods, model.pods)) return undefined;
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
    recordFlatGroups(table, new Map());
    return table;
  }

  /** The model's peers without members: what a pod's chains read of them (their meaning). */
  private hollowPeers(model: CompiledPolicy): Map<string, PeerSet> {
    const out = new Map<string, PeerSet>();
    for (const [id, set] of model.peers) {
      let h = this.hollow.get(id);
      if (!h) h = { id, meaning: set.meaning, v4: [], v6: [], intervals: [] };
      out.set(id, h);
    }
    this.hollow = out;
    return out;
  }

  private fragment(
    pod: LocalPod,
    model: CompiledPolicy,
    hollow: Map<string, PeerSet>,
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

function sameObjects<T>(a: readonly T[], b: readonly T[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
