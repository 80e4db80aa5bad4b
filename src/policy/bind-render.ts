// The pod-start fast path's rendering (issue 17): the table of a model that bind.ts grew from `prev`
// (new local pods, peer and named-port sets with more members, nothing else) without rendering the
// other pods again. The new pods are rendered alone (their chains, their verdict-map elements and the
// sets their rules name) and merged into the table last applied; sets whose members grew get their
// elements again. Everything not touched is the very object of `prevTable`, so diffShared (below)
// compares only what changed. Equal to renderPolicy(next) (test/unit/policy-bind.test.ts).
import type { Element } from '../nft/objects.ts';
import { insertSorted } from './bind.ts';
import { MapPatch } from './incremental/patch.ts';
import { samePlain } from '../util/same-plain.ts';
import { byText } from './cluster.ts';
import { diffIdentity, diffPolicy } from './diff.ts';
import {
  flatGroupsOf,
  namedPortSetName,
  peerSetName,
  recordFlatGroups,
  renderPolicyWith,
  type FlatGroupRequest,
  type RenderOptions,
} from './render.ts';
import { FlatGroups } from './clusternetworkpolicy/flat-groups.ts';
import type { FlatParts } from './clusternetworkpolicy/flat-render.ts';
import type { CompiledPolicy, DesiredPolicyTable, LocalPod, NamedPortElement } from './types.ts';
import type { Transaction } from '../nft/transaction.ts';

const keyText = (e: Element): string => e.key.join(' . ');
const byKey = (a: Element, b: Element): number => byText(keyText(a), keyText(b));
/** Tables rendered by renderBound: the table each was grown from, and the elements added to its sets. */
const grownFrom = new WeakMap<
  DesiredPolicyTable,
  { from: DesiredPolicyTable; added: ReadonlyMap<string, readonly Element[]> }
>();

export function renderBound(
  prev: CompiledPolicy,
  prevTable: DesiredPolicyTable,
  next: CompiledPolicy,
  options: RenderOptions = {},
): DesiredPolicyTable {
  const had = new Set(prev.pods);
  const newPods: LocalPod[] = next.pods.filter((p) => !had.has(p));
  // The sets the new pods' rules name (the render of the pods alone reads no other): not a copy of
  // each of the model's thousands of sets on every pod start.
  const named = { peers: new Set<string>(), namedPorts: new Set<string>() };
  for (const p of newPods)
    for (const d of [p.ingress, p.egress, p.admin?.ingress, p.admin?.egress, p.baseline?.ingress, p.baseline?.egress])
      for (const r of d?.rules ?? []) {
        if (r.peers !== 'all') for (const id of r.peers) named.peers.add(id);
        for (const id of r.namedPorts) named.namedPorts.add(id);
      }
  // The sets the applied table has already are grown below: rendered empty here, not member by member.
  const applied = <S extends { v4: readonly unknown[]; v6: readonly unknown[] }>(
    m: ReadonlyMap<string, S>,
    name: (id: string, f: 4 | 6) => string,
    ids: ReadonlySet<string>,
  ) => {
    const out = new Map<string, S>();
    for (const id of ids) {
      const set = m.get(id);
      if (set === undefined) continue;
      const has4 = prevTable.sets.has(name(id, 4));
      const has6 = prevTable.sets.has(name(id, 6));
      out.set(id, has4 || has6 ? { ...set, v4: has4 ? [] : set.v4, v6: has6 ? [] : set.v6 } : set);
    }
    return out;
  };
  const newGroups = new Map<string, FlatGroupRequest>();
  const alone = renderPolicyWith(
    {
      ...next,
      pods: newPods,
      peers: applied(next.peers, peerSetName, named.peers),
      namedPorts: applied(next.namedPorts, namedPortSetName, named.namedPorts),
    },
    options,
    (g) => {
      for (const [name, req] of g) newGroups.set(name, req);
      return new Map();
    },
  );

  // The applied table's maps patched with the new pods' names (incremental/patch.ts): a map no name
  // of which changed is the applied one itself, the others one pass in its order.
  const chains = new MapPatch(prevTable.chains);
  for (const [name, c] of alone.chains) if (!chains.has(name)) chains.set(name, c);
  const sets = new MapPatch(prevTable.sets);
  for (const [name, x] of alone.sets) if (!sets.has(name)) sets.set(name, x);

  // Sets that existed: the new members inserted into the list applied (its other elements are the
  // same objects), and remembered as the change, so the diff need not compare the whole set.
  const elements = new MapPatch(prevTable.elements);
  const added = new Map<string, Element[]>();
  const grow = (name: string, add: Element[]) => {
    if (add.length === 0) return;
    elements.set(name, insertSorted(prevTable.elements.get(name) ?? [], add, byKey));
    added.set(name, add);
  };
  for (const [name, list] of alone.elements) {
    if (!prevTable.elements.has(name)) elements.set(name, list);
    else if (sets.get(name)?.kind === 'map') grow(name, [...list]);
  }
  for (const [id, set] of next.peers) {
    const was = prev.peers.get(id);
    if (was === undefined || was === set) continue;
    for (const family of [4, 6] as const) {
      const name = peerSetName(id, family);
      if (!prevTable.sets.has(name)) continue;
      const ips = newMembers(family === 4 ? was.v4 : was.v6, family === 4 ? set.v4 : set.v6, byText);
      grow(
        name,
        ips.map((ip): Element => ({ kind: 'element', set: name, key: [ip] })),
      );
    }
  }
  for (const [id, set] of next.namedPorts) {
    const was = prev.namedPorts.get(id);
    if (was === undefined || was === set) continue;
    for (const family of [4, 6] as const) {
      const name = namedPortSetName(id, family);
      if (!prevTable.sets.has(name)) continue;
      const list = newMembers(family === 4 ? was.v4 : was.v6, family === 4 ? set.v4 : set.v6, portOrder);
      grow(
        name,
        list.map(
          (e): Element => ({ kind: 'element', set: name, key: [e.address, e.protocol.toLowerCase(), String(e.port)] }),
        ),
      );
    }
  }
  // The flat ClusterNetworkPolicy groups: the new pods' join them; a group whose peers grew is
  // flattened again (its address ranges change), the others keep their objects.
  const comments = new MapPatch(prevTable.comments);
  for (const [n, m] of alone.comments) {
    const had = comments.get(n);
    if (had === undefined || !samePlain(had, m)) comments.set(n, m);
  }
  const record = flatGroups(prev, prevTable, next, newGroups, options);
  const hadGroups = flatGroupsOf(prevTable);
  if (hadGroups)
    for (const { parts } of hadGroups.values()) {
      for (const n of parts.chains.keys()) chains.delete(n);
      for (const n of parts.sets.keys()) {
        sets.delete(n);
        elements.delete(n);
      }
      for (const n of parts.comments.keys()) comments.delete(n);
    }
  for (const { parts } of record.values()) {
    for (const [n, c] of parts.chains) chains.set(n, c);
    for (const [n, x] of parts.sets) {
      sets.set(n, prevTable.sets.get(n) ?? x);
      elements.set(n, parts.elements.get(n) ?? []);
    }
    for (const [n, m] of parts.comments) comments.set(n, m);
  }
  const owners = new MapPatch(prevTable.chainOwners);
  for (const [n, o] of alone.chainOwners) owners.set(n, o);
  const out: DesiredPolicyTable = {
    chains: chains.result(),
    sets: sets.result(),
    elements: elements.result(),
    chainOwners: owners.result(),
    comments: comments.result(),
  };
  grownFrom.set(out, { from: prevTable, added });
  recordFlatGroups(out, record);
  return out;
}

/** Every flat group of `next`: the applied table's (kept when the sets they read are the same
 * objects) and the new pods'. Without a record of the applied table, from its pods. */
function flatGroups(
  prev: CompiledPolicy,
  prevTable: DesiredPolicyTable,
  next: CompiledPolicy,
  newGroups: ReadonlyMap<string, FlatGroupRequest>,
  options: RenderOptions,
): Map<string, { request: FlatGroupRequest; parts: FlatParts }> {
  const had = flatGroupsOf(prevTable);
  const requests = new Map<string, FlatGroupRequest>();
  if (had) for (const [g, { request }] of had) requests.set(g, request);
  else
    renderPolicyWith({ ...prev, peers: new Map(), namedPorts: new Map() }, options, (g) => {
      for (const [name, req] of g) requests.set(name, req);
      return new Map();
    });
  for (const [g, req] of newGroups) if (!requests.has(g)) requests.set(g, req);
  // Rendered as a whole (the base group and the overlays depend on each other), reusing what
  // rendered the applied table's groups (flat-groups.ts).
  const parts = FlatGroups.seeded(had).render(requests, next, options);
  const out = new Map<string, { request: FlatGroupRequest; parts: FlatParts }>();
  for (const [g, request] of requests) out.set(g, { request, parts: parts.get(g) as FlatParts });
  return out;
}

const portOrder = (x: NamedPortElement, y: NamedPortElement): number =>
  byText(x.address, y.address) || byText(x.protocol, y.protocol) || x.port - y.port;

/**
 * The members of sorted `next` that sorted `was` (a subset of it) lacks. A bind adds a pod's address
 * or two to sets of thousands: each added member is found by a binary search for where the two lists
 * first differ after the last one found (they agree member by member up to it and nowhere after), not
 * by a walk over both lists on every pod start.
 */
export function newMembers<T>(was: readonly T[], next: readonly T[], order: (a: T, b: T) => number): T[] {
  const out: T[] = [];
  if (was === next) return out;
  let i = 0;
  let j = 0;
  while (j < next.length && out.length < next.length - was.length) {
    let lo = 0;
    let hi = Math.min(was.length - i, next.length - j);
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (order(was[i + mid] as T, next[j + mid] as T) === 0) lo = mid + 1;
      else hi = mid;
    }
    out.push(next[j + lo] as T);
    i += lo;
    j += lo + 1;
  }
  return out;
}

/**
 * diffPolicy of `from` and `to`, comparing only the chains and sets whose objects differ when `to`
 * was grown from `from` by renderBound (the rest is the same object: nothing to compare; the grown
 * sets' new members are known); diffIdentity otherwise, which compares by object too, or the whole
 * diff when a set's definition changed (diffPolicy then rebuilds, which needs it all).
 */
export function diffShared(from: DesiredPolicyTable, to: DesiredPolicyTable): Transaction {
  const grown = grownFrom.get(to);
  if (grown?.from !== from) return diffIdentity(from, to);
  const chainNames = [...to.chains.keys()].filter((n) => from.chains.get(n) !== to.chains.get(n));
  // Flat groups flattened again can drop class chains and port maps: those go too.
  for (const n of from.chains.keys()) if (!to.chains.has(n)) chainNames.push(n);
  const setNames: string[] = [];
  for (const n of from.sets.keys()) if (!to.sets.has(n)) setNames.push(n);
  for (const [n, s] of to.sets) {
    const old = from.sets.get(n);
    if (old !== undefined && old !== s) return diffPolicy(from, to);
    if (grown.added.has(n)) continue;
    if (old === undefined || from.elements.get(n) !== to.elements.get(n)) setNames.push(n);
  }
  const part = (t: DesiredPolicyTable): DesiredPolicyTable => ({
    chains: pick(t.chains, chainNames),
    sets: pick(t.sets, setNames),
    elements: pick(t.elements, setNames),
    chainOwners: new Map(),
    comments: new Map(),
  });
  // New chains and sets first (the verdict maps' new elements jump to the chains), then the members.
  const tx = diffPolicy(part(from), part(to));
  for (const list of grown.added.values()) for (const e of list) tx.add(e);
  return tx;
}

function pick<V>(m: ReadonlyMap<string, V>, names: readonly string[]): Map<string, V> {
  const out = new Map<string, V>();
  for (const n of names) {
    const v = m.get(n);
    if (v !== undefined) out.set(n, v);
  }
  return out;
}
