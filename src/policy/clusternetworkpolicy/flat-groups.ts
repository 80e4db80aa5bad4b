// The flat groups' objects (flat-render.ts) of a model, kept from one render to the next. Per tier and
// direction the group with the most local pods (ties: the lower name) is the base: its classes fill
// the tier's base map; every other group is an overlay of it (flat-overlay.ts), so a change that moves
// a few pods to a new rule list adds a map of the addresses that decide differently for them, not a
// copy of every range. The choice is a function of the model alone: renderPolicy, the incremental
// renderer and the pod-start path give the same table (the tests compare them).
// Kept: a group's flat tier while the peer and named-port set objects its rules name are the same
// (the incremental compiler keeps an unchanged set's object), and its objects while those and the
// base's flat tier are: an unchanged group gives the very chains, maps and element lists it gave
// before and the identity diff skips them.
import { ruleListIds } from '../peers.ts';
import { TIERS } from '../pipeline.ts';
import type { PolicyTier } from '../tier.ts';
import type { Element, NftMap, NftSet } from '../../nft/objects.ts';
import type { CommentMeaning, CompiledPolicy, CompiledRule, DesiredChain, Direction, LocalPod } from '../types.ts';
import { flattenTier, type FlatTier } from './flat.ts';
import { compareTiers, insertedOverlay } from './flat-overlay.ts';
import {
  flatGroupName,
  flatPodChain,
  flatShared,
  mergeParts,
  renderFlatBase,
  renderFlatOverlay,
  type FlatOptions,
  type FlatParts,
  type FlatRendered,
} from './flat-render.ts';

/** A flat group a pod's ClusterNetworkPolicy tier chain names: its tier, direction and rules. */
export interface FlatGroupRequest {
  tier: PolicyTier;
  direction: Direction;
  rules: readonly CompiledRule[];
}

/** The set objects a group's flattening reads: `had` itself when they are its (a change that left
 * a group's peers alone makes no list of them: ~100 per group at 100 CNPs, at every render). */
export function depsOf(req: FlatGroupRequest, model: CompiledPolicy, had?: readonly unknown[]): readonly unknown[] {
  const { peers, namedPorts } = ruleListIds(req.rules);
  if (had && had.length === peers.length + namedPorts.length) {
    let i = 0;
    for (; i < peers.length; i++) if (model.peers.get(peers[i] as string) !== had[i]) break;
    if (i === peers.length)
      for (; i < had.length; i++) if (model.namedPorts.get(namedPorts[i - peers.length] as string) !== had[i]) break;
    if (i === had.length) return had;
  }
  const out: unknown[] = peers.map((id) => model.peers.get(id));
  for (const id of namedPorts) out.push(model.namedPorts.get(id));
  return out;
}

export const same = (a: readonly unknown[], b: readonly unknown[]) =>
  a === b || (a.length === b.length && a.every((x, i) => x === b[i]));

/** Local pods per flat group. */
function podsPerGroup(model: CompiledPolicy): Map<string, number> {
  const out = new Map<string, number>();
  for (const pod of model.pods) for (const g of groupsOf(pod)) out.set(g, (out.get(g) ?? 0) + 1);
  return out;
}

/** The flat groups a local pod's chains name (kept on the pod object: its rules are fixed). */
const podGroups = new WeakMap<LocalPod, string[]>();
function groupsOf(pod: LocalPod): string[] {
  let out = podGroups.get(pod);
  if (out) return out;
  out = [];
  for (const direction of ['egress', 'ingress'] as const)
    for (const tier of TIERS) {
      if (!tier.ordered) continue;
      const rules = tier.rulesOf(pod, direction)?.rules;
      if (rules !== undefined) out.push(flatGroupName(tier, direction, rules));
    }
  podGroups.set(pod, out);
  return out;
}

interface KeptFlat {
  deps: readonly unknown[];
  flat: FlatTier;
}
interface KeptParts {
  /** The base's flat tier (the object) and the group's deps when rendered. */
  base: FlatTier;
  deps: readonly unknown[];
  parts: FlatParts;
}
/** What produced a group's parts: so that a table's record seeds the next render (bind-render.ts). */
const origins = new WeakMap<FlatParts, { kept: KeptParts; flat?: KeptFlat }>();

/** More parts in or out than this: merged again whole. */
const MERGE_MAX = 8;
const KINDS = ['chains', 'sets', 'elements', 'comments'] as const;
type Counts = Record<(typeof KINDS)[number], Map<string, number>>;
interface Merged {
  parts: FlatParts[];
  merged: FlatParts;
  /** Per name, how many of the parts have it. */
  counts: Counts;
}
/** Names per kind of a flat merge. */
export type FlatChanges = Record<(typeof KINDS)[number], Set<string>>;
const emptyChanges = (): FlatChanges => ({
  chains: new Set(),
  sets: new Set(),
  elements: new Set(),
  comments: new Set(),
});
const emptyCounts = (): Counts => ({ chains: new Map(), sets: new Map(), elements: new Map(), comments: new Map() });

function count(counts: Counts, p: FlatParts, by: number): void {
  for (const kind of KINDS) {
    const c = counts[kind];
    p[kind].forEach((_, n) => c.set(n, (c.get(n) ?? 0) + by));
  }
}

/** Takes a gone part's names out of the merged parts: a name no part has any more goes, one whose
 * object was the gone part's takes a remaining part's. */
function uncount(m: Merged, gone: FlatParts, remaining: readonly FlatParts[]): void {
  for (const kind of KINDS) {
    const c = m.counts[kind];
    const into = m.merged[kind] as Map<string, unknown>;
    gone[kind].forEach((x, n) => {
      const left = (c.get(n) ?? 0) - 1;
      if (left <= 0) {
        c.delete(n);
        into.delete(n);
        return;
      }
      c.set(n, left);
      if (into.get(n) !== x) return;
      for (const p of remaining) {
        const y = (p[kind] as Map<string, unknown>).get(n);
        if (y !== undefined) {
          into.set(n, y);
          return;
        }
      }
    });
  }
}

export class FlatGroups {
  private flats = new Map<string, KeptFlat>();
  private kept = new Map<string, KeptParts>();

  private lastMerged: Merged | undefined;

  /** The parts `render` gave, merged into one (mergeParts, in order): the same object while the parts
   * are (a render the change left the groups alone merges the ~1,000 chains and maps of 100 CNPs
   * again otherwise), and when a few parts came or went, the last one with only theirs taken out
   * and put in (names are counted: one that another part still has stays). Valid until the next
   * call: not to be kept or changed by the caller. */
  merged(rendered: ReadonlyMap<string, FlatParts>): FlatParts {
    return this.mergedChanges(rendered).merged;
  }

  /** merged(), with the names whose entry may differ from the last merge's (came, went or took
   * another part's object), per kind; `changed` is undefined when it was merged again whole. What a
   * patched render (incremental/render.ts) applies to the last table instead of copying every name. */
  mergedChanges(rendered: ReadonlyMap<string, FlatParts>): { merged: FlatParts; changed: FlatChanges | undefined } {
    const list = [...rendered.values()];
    const last = this.lastMerged;
    if (last && same(last.parts, list)) return { merged: last.merged, changed: emptyChanges() };
    const before = new Set(last?.parts ?? []);
    const after = new Set(list);
    const came = list.filter((p) => !before.has(p));
    const gone = (last?.parts ?? []).filter((p) => !after.has(p));
    if (!last || after.size !== list.length || came.length + gone.length > MERGE_MAX) {
      const merged: FlatParts = { chains: new Map(), sets: new Map(), elements: new Map(), comments: new Map() };
      const counts = emptyCounts();
      for (const p of list) {
        mergeParts(merged, p);
        count(counts, p, 1);
      }
      this.lastMerged = { parts: list, merged, counts };
      return { merged, changed: undefined };
    }
    const changed = emptyChanges();
    for (const p of [...gone, ...came]) for (const kind of KINDS) p[kind].forEach((_, n) => changed[kind].add(n));
    // Out first: a name that only a gone part had leaves (the base map of a tier whose base changed
    // goes with its old base and comes back with its new one).
    for (const p of gone) uncount(last, p, list);
    for (const p of came) {
      count(last.counts, p, 1);
      mergeParts(last.merged, p);
    }
    last.parts = list;
    return { merged: last.merged, changed };
  }

  /** A FlatGroups that keeps what rendered a table's record (its groups' parts), where it can. */
  static seeded(record: ReadonlyMap<string, { parts: FlatParts }> | undefined): FlatGroups {
    const out = new FlatGroups();
    for (const [name, { parts }] of record ?? []) {
      const o = origins.get(parts);
      if (!o) continue;
      out.kept.set(name, o.kept);
      if (o.flat) out.flats.set(name, o.flat);
    }
    return out;
  }

  render(
    groups: ReadonlyMap<string, FlatGroupRequest>,
    model: CompiledPolicy,
    options: FlatOptions,
  ): Map<string, FlatParts> {
    const pods = podsPerGroup(model);
    const byTier = new Map<string, string[]>();
    for (const [name, req] of groups) {
      const k = `${req.tier.name} ${req.direction}`;
      const list = byTier.get(k) ?? [];
      list.push(name);
      byTier.set(k, list);
    }
    const flats = new Map<string, KeptFlat>();
    const kept = new Map<string, KeptParts>();
    const flatOf = (name: string, req: FlatGroupRequest, deps: readonly unknown[]): KeptFlat => {
      let f = this.flats.get(name);
      if (!f || !same(f.deps, deps)) f = { deps, flat: flattenTier(req.rules, model.peers, model.namedPorts) };
      flats.set(name, f);
      return f;
    };
    const out = new Map<string, FlatParts>();
    for (const names of byTier.values()) {
      const count = (n: string) => pods.get(n) ?? 0;
      const baseName = names.reduce((a, b) => (count(b) > count(a) || (count(b) === count(a) && b < a) ? b : a));
      const baseReq = groups.get(baseName) as FlatGroupRequest;
      const base = flatOf(baseName, baseReq, depsOf(baseReq, model, this.flats.get(baseName)?.deps));
      for (const name of names) {
        const req = groups.get(name) as FlatGroupRequest;
        let k = this.kept.get(name);
        const deps = name === baseName ? base.deps : depsOf(req, model, k?.deps);
        if (!k || k.base !== base.flat || !same(k.deps, deps)) {
          let parts: FlatParts;
          let own: KeptFlat | undefined;
          if (name === baseName) parts = renderFlatBase(req.tier, req.direction, name, base.flat, options);
          else {
            let overlay = insertedOverlay(base.flat, baseReq.rules, req.rules, model.peers);
            if (!overlay) {
              own = flatOf(name, req, deps);
              overlay = compareTiers(base.flat, own.flat);
            }
            parts = renderFlatOverlay(req.tier, req.direction, name, overlay, options);
          }
          k = { base: base.flat, deps, parts };
          origins.set(parts, { kept: k, ...(name === baseName ? { flat: base } : own ? { flat: own } : {}) });
        } else {
          const f = this.flats.get(name);
          if (f && name !== baseName) flats.set(name, f);
        }
        kept.set(name, k);
        out.set(name, k.parts);
      }
    }
    this.flats = flats;
    this.kept = kept;
    return out;
  }
}

/** A map of a table as a patched render changes it (a Map, or incremental/patch.ts's MapPatch). */
export interface Writable<V> {
  has(name: string): boolean;
  set(name: string, value: V): unknown;
  delete(name: string): unknown;
}
/** A table's maps as a patched render changes them. */
export interface TableMaps {
  chains: Writable<DesiredChain>;
  sets: Writable<NftSet | NftMap>;
  elements: Writable<readonly Element[]>;
  comments: Writable<CommentMeaning>;
}

/**
 * Puts the names a flat merge changed (mergedChanges) into a table's maps as the whole render would
 * have them: a name the merge no longer has leaves, the others take the merge's object (a set or
 * map keeps the last table's definition object, as the whole render does). True when a name is new
 * to the maps (their order must take it in).
 */
export function applyFlatChanges(
  into: TableMaps,
  merged: FlatParts,
  changed: FlatChanges,
  lastSets: ReadonlyMap<string, NftSet | NftMap>,
): boolean {
  let added = false;
  const put =
    <V>(to: Writable<V>, from: ReadonlyMap<string, V>) =>
    (n: string) => {
      const x = from.get(n);
      if (x === undefined) to.delete(n);
      else {
        if (!to.has(n)) added = true;
        to.set(n, x);
      }
    };
  changed.chains.forEach(put(into.chains, merged.chains));
  changed.comments.forEach(put(into.comments, merged.comments));
  const set = (n: string) => {
    const x = merged.sets.get(n);
    if (x === undefined) {
      into.sets.delete(n);
      into.elements.delete(n);
      return;
    }
    if (!into.sets.has(n)) added = true;
    into.sets.set(n, lastSets.get(n) ?? x);
    into.elements.set(n, merged.elements.get(n) ?? []);
  };
  changed.sets.forEach(set);
  changed.elements.forEach((n) => {
    if (!changed.sets.has(n)) set(n);
  });
  return added;
}

/** The pods' flat tier chains and every group's objects of a model (renderPolicy's part for them),
 * with each group's flat tier (flattened whole, for the tests' sizes). */
export function renderFlatClusterTiers(model: CompiledPolicy, options: FlatOptions = {}): FlatRendered {
  const out: FlatRendered = {
    chains: new Map(),
    sets: new Map(),
    elements: new Map(),
    comments: new Map(),
    groups: new Map(),
  };
  const requests = new Map<string, FlatGroupRequest>();
  for (const pod of model.pods) {
    for (const direction of ['egress', 'ingress'] as const) {
      const tiers = TIERS.filter((t) => t.rulesOf(pod, direction) !== undefined);
      tiers.forEach((tier, i) => {
        if (!tier.ordered) return; // NetworkPolicy: renderPolicy's chain, unchanged
        const rules = tier.rulesOf(pod, direction)?.rules ?? [];
        const group = flatGroupName(tier, direction, rules);
        const chain = flatPodChain(tier, pod, direction, group, tiers[i + 1]?.chainName(pod, direction));
        out.chains.set(chain.chain.name, chain);
        if (requests.has(group)) return;
        requests.set(group, { tier, direction, rules });
        out.groups.set(group, flattenTier(rules, model.peers, model.namedPorts));
      });
    }
  }
  for (const parts of new FlatGroups().render(requests, model, options).values()) mergeParts(out, parts);
  if (out.groups.size > 0) mergeParts(out, flatShared());
  return out;
}
