// Peer and named-port sets kept from one compile to the next. A pods peer remembers, per namespace
// it read, the pod list it read and the addresses it took from it: when every list it reads is the
// same array (and, for a namespaceSelector peer, no namespace's labels changed) the PeerSet is the
// same object; when a list changed, only that namespace is matched again, and when the addresses it
// takes are the same the PeerSet is still the same object. Named-port sets and the other peers are
// resolved as compile does (peers.ts) when what they read changed, and kept when it did not.
import { knownFamily as familyOf } from '../../net/text.ts';
import { byText, type ClusterPod, type ClusterView } from '../cluster.ts';
import { PeerRegistry, type NamedPortDef } from '../peers.ts';
import { selectorMatches, selectsEverything } from '../selector.ts';
import type { NamedPortSet, PeerMeaning, PeerSet } from '../types.ts';
import { sortedKeys, sortedUniqueSliced } from './order.ts';
import { sameList, type Slicer, type ViewChanges } from './view.ts';

type PodsMeaning = Extract<PeerMeaning, { kind: 'pods' }>;

interface PodsPeerState {
  set: PeerSet;
  /** Per namespace read, in order: the list read and the addresses its matching pods have. */
  read: Map<string, { list: readonly ClusterPod[] | undefined; ips: readonly string[] }>;
}

/** Walks this many pods between looks at the clock. */
const SLICE = 2000;

export class PeerResolver {
  private pods = new Map<string, PodsPeerState>();
  private others = new Map<string, PeerSet>();
  private ports = new Map<string, { def: NamedPortDef; set: NamedPortSet }>();
  /** The peer and named-port ids of the last resolve, sorted (the next one's order, merged). */
  private ids: string[] | undefined;
  private portIds: string[] | undefined;
  /** The last resolve's maps: the next one's when nothing they read changed and no id came or went. */
  private last:
    | { peers: Map<string, PeerSet>; namedPorts: Map<string, NamedPortSet>; ids: string[]; portIds: string[] }
    | undefined;

  *resolve(
    view: ClusterView,
    changes: ViewChanges,
    meanings: ReadonlyMap<string, PeerMeaning>,
    defs: ReadonlyMap<string, NamedPortDef>,
    slice: Slicer,
  ): Generator<void, { peers: Map<string, PeerSet>; namedPorts: Map<string, NamedPortSet> }, void> {
    const peers = new Map<string, PeerSet>();
    const pods = new Map<string, PodsPeerState>();
    const others = new Map<string, PeerSet>();
    const fresh = new PeerRegistry();
    const freshIds: string[] = [];
    // Per address, how many pods of the namespaces whose lists changed have it (built when asked).
    let counts: Map<string, number> | undefined;
    const inChanged = (ip: string): number => {
      if (!counts) {
        counts = new Map();
        for (const ns of changes.podLists)
          for (const p of view.podsByNs.get(ns) ?? []) for (const a of p.ips) counts.set(a, (counts.get(a) ?? 0) + 1);
      }
      return counts.get(ip) ?? 0;
    };
    // Nothing a pods peer reads changed: every one known is its last state (a policy change).
    const quiet = changes.noPods && changes.labels.size === 0;
    // And the same ids as the last resolve (a policy change that names no new peer): every set is
    // kept as below would keep it, so the last maps are the answer, not ~1,500 entries put in new ones.
    const last = this.last;
    if (quiet && !changes.nodes && last && sameIds(meanings, last.ids) && sameIds(defs, last.portIds))
      return { peers: last.peers, namedPorts: last.namedPorts };
    const ids = sortedKeys(meanings, this.ids);
    this.ids = ids;
    for (const id of ids) {
      const meaning = meanings.get(id) as PeerMeaning;
      const known = quiet ? this.pods.get(id) : undefined;
      if (known) {
        pods.set(id, known);
        peers.set(id, known.set);
        continue;
      }
      if (meaning.kind === 'pods') {
        // It gives the event loop back within itself: one peer of every namespace walks every pod.
        const state = yield* this.podsPeer(id, meaning, view, changes, inChanged, slice);
        pods.set(id, state);
        peers.set(id, state.set);
        continue;
      }
      const was = this.others.get(id);
      if (was && (meaning.kind === 'ipBlock' || !changes.nodes)) {
        others.set(id, was);
        peers.set(id, was);
      } else {
        fresh.peer(meaning);
        freshIds.push(id);
        peers.set(id, undefined as unknown as PeerSet); // placed now, so the map keeps the sorted order
      }
    }
    // Named-port sets read the pods of their peer (or of the cluster): resolved again when one of
    // those lists changed.
    const namedPorts = new Map<string, NamedPortSet>();
    const ports = new Map<string, { def: NamedPortDef; set: NamedPortSet }>();
    const portIds: string[] = [];
    const portOrder = sortedKeys(defs, this.portIds);
    this.portIds = portOrder;
    for (const id of portOrder) {
      const def = defs.get(id) as NamedPortDef;
      const was = this.ports.get(id);
      const peerMeaning = def.peer === undefined ? undefined : meanings.get(def.peer);
      // A pods peer's state is the very object of the last compile only when no list it reads changed.
      const unchanged =
        was !== undefined &&
        (peerMeaning?.kind === 'nodes' ||
          (peerMeaning?.kind === 'pods'
            ? pods.get(def.peer as string) === this.pods.get(def.peer as string)
            : changes.noPods));
      if (unchanged) {
        ports.set(id, was);
        namedPorts.set(id, was.set);
        continue;
      }
      if (def.peer !== undefined && peerMeaning) fresh.peer(peerMeaning);
      fresh.namedPorts(def.peer, def.ports);
      portIds.push(id);
      namedPorts.set(id, undefined as unknown as NamedPortSet);
    }
    if (freshIds.length > 0 || portIds.length > 0) {
      yield* slice();
      const r = fresh.resolve(view);
      for (const id of freshIds) {
        const set = r.peers.get(id) as PeerSet;
        const was = this.others.get(id);
        const kept = was && sameList(was.v4, set.v4) && sameList(was.v6, set.v6) ? was : set;
        others.set(id, kept);
        peers.set(id, kept);
      }
      for (const id of portIds) {
        const set = r.namedPorts.get(id) as NamedPortSet;
        const was = this.ports.get(id)?.set;
        const kept = was && JSON.stringify([was.v4, was.v6]) === JSON.stringify([set.v4, set.v6]) ? was : set;
        ports.set(id, { def: defs.get(id) as NamedPortDef, set: kept });
        namedPorts.set(id, kept);
      }
    }
    this.pods = pods;
    this.others = others;
    this.ports = ports;
    this.last = { peers, namedPorts, ids, portIds: portOrder };
    return { peers, namedPorts };
  }

  /** A pods peer, from what it read last time where that is unchanged; `slice` every SLICE pods walked. */
  private *podsPeer(
    id: string,
    m: PodsMeaning,
    view: ClusterView,
    changes: ViewChanges,
    inChanged: (ip: string) => number,
    slice: Slicer,
  ): Generator<void, PodsPeerState, void> {
    const was = this.pods.get(id);
    const selected = (ns: string) =>
      m.namespaceSelector !== undefined && selectorMatches(m.namespaceSelector, view.labelsOfNs(ns));
    // Which namespaces it reads: its own, or those its selector picks (again only if labels changed).
    const namespaces =
      m.namespace !== undefined
        ? [m.namespace]
        : was && changes.labels.size === 0
          ? [...was.read.keys()]
          : view.namespaceNames.filter(selected);
    if (was && sameList([...was.read.keys()], namespaces)) {
      let same = true;
      for (const ns of namespaces) if (was.read.get(ns)?.list !== view.podsByNs.get(ns)) same = false;
      if (same) return was;
    }
    let walked = 0;
    let sameIps = was !== undefined && sameList([...was.read.keys()], namespaces);
    const read = new Map<string, { list: readonly ClusterPod[] | undefined; ips: readonly string[] }>();
    for (const ns of namespaces) {
      const list = view.podsByNs.get(ns);
      const before = was?.read.get(ns);
      if (before && before.list === list) {
        read.set(ns, before);
        continue;
      }
      const ips = matchingIps(m, list);
      walked += list?.length ?? 0;
      if (walked >= SLICE) {
        walked = 0;
        yield* slice();
      }
      if (!before || !sameList(before.ips, ips)) sameIps = false;
      read.set(ns, { list, ips });
    }
    if (was && sameIps) return { set: was.set, read };
    if (was && sameList([...was.read.keys()], namespaces)) {
      const set = updated(was, read, changes, inChanged);
      if (set) return { set, read };
    }
    const all: string[] = [];
    for (const r of read.values()) for (const ip of r.ips) all.push(ip);
    const ips = yield* sortedUniqueSliced(all, slice);
    // Most clusters have one family: its list is the sorted one itself, not a filtered copy.
    let v6Count = 0;
    for (const ip of ips) if (familyOf(ip) === 6) v6Count++;
    const v4 = v6Count === 0 ? ips : ips.filter((ip) => familyOf(ip) === 4);
    const v6 = v6Count === 0 ? NO_IPS : v6Count === ips.length ? ips : ips.filter((ip) => familyOf(ip) === 6);
    const set: PeerSet =
      was && sameList(was.set.v4, v4) && sameList(was.set.v6, v6) ? was.set : { id, meaning: m, v4, v6, intervals: [] };
    return { set, read };
  }
}

const NO_IPS: readonly string[] = Object.freeze([]);

/** The addresses of the pods of `list` that the peer's pod selector matches (a list of the pods'
 * own address lists' members; the empty selector takes every pod without looking at labels). */
function matchingIps(m: PodsMeaning, list: readonly ClusterPod[] | undefined): string[] {
  const ips: string[] = [];
  if (!list) return ips;
  const everyPod = selectsEverything(m.podSelector);
  for (const p of list) if (everyPod || selectorMatches(m.podSelector, p.labels)) for (const ip of p.ips) ips.push(ip);
  return ips;
}

/**
 * The peer's members from its last ones and what the namespaces that changed took out and put in: one
 * merge of the sorted lists instead of sorting the whole set again. Undefined when an address taken
 * out is still some pod's (two pods with one address: only the whole set tells whether it stays).
 */
function updated(
  was: PodsPeerState,
  read: PodsPeerState['read'],
  changes: ViewChanges,
  inChanged: (ip: string) => number,
): PeerSet | undefined {
  const out = new Set<string>();
  const into = new Set<string>();
  const stays = new Set<string>();
  for (const [ns, r] of read) {
    const before = was.read.get(ns);
    if (!before || before === r) continue;
    for (const ip of r.ips) stays.add(ip);
    const then = new Set(before.ips);
    for (const ip of r.ips) if (!then.has(ip)) into.add(ip);
    for (const ip of before.ips) out.add(ip);
  }
  for (const ip of out) {
    if (stays.has(ip)) out.delete(ip);
    // Still some pod's outside the namespaces matched again (two pods with one address): the whole
    // set decides.
    else if (changes.podsWithIp(ip) > inChanged(ip)) return undefined;
  }
  const added = [...into].sort(byText);
  const merge = (members: readonly string[], family: 4 | 6): readonly string[] => {
    const add = added.filter((ip) => familyOf(ip) === family);
    if (add.length === 0 && !members.some((ip) => out.has(ip))) return members;
    const next: string[] = [];
    let j = 0;
    for (const ip of members) {
      while (j < add.length && byText(add[j] as string, ip) < 0) next.push(add[j++] as string);
      if (j < add.length && add[j] === ip) j++;
      if (!out.has(ip)) next.push(ip);
    }
    while (j < add.length) next.push(add[j++] as string);
    return next;
  };
  const v4 = merge(was.set.v4, 4);
  const v6 = merge(was.set.v6, 6);
  if (v4 === was.set.v4 && v6 === was.set.v6) return was.set;
  return { ...was.set, v4, v6 };
}

/** Whether `now` has exactly the keys `last` lists (no allocation: ~1,500 ids at every compile). */
function sameIds(now: ReadonlyMap<string, unknown>, last: readonly string[] | undefined): boolean {
  if (!last || last.length !== now.size) return false;
  for (const id of last) if (!now.has(id)) return false;
  return true;
}
