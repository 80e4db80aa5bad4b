// What a flat group decides differently from its tier's base group (issue 19: a CNP change enforced
// in a transaction the size of what it changes). The pods of one tier and direction share one base
// map (flat-render.ts, the group with the most pods); every other group is an overlay: the address
// ranges where its first match differs from the base's, each with what it decides there (or nothing,
// then the base map is skipped and the tier falls through). A CNP created for a few pods of a group
// so adds a map of the addresses its peers hold instead of a copy of the group's whole map.
//   - a group whose rules are the base's with rules inserted (a new CNP, a new rule) that name peers
//     is computed from the base's flat tier and the inserted rules alone (insertedOverlay): only the
//     addresses the inserted rules' peers hold can decide differently;
//   - any other group is flattened whole and compared with the base (compareTiers).
import type { CompiledRule, PeerSet, Protocol } from '../types.ts';
import {
  extentsOf,
  inEvaluationOrder,
  type AddressRange,
  type FlatClass,
  type FlatRule,
  type FlatTier,
} from './flat.ts';
import { decidePorts, type PortSpec } from './flat-ports.ts';

/** What a class decides, by rule: comparable between groups (a rule's index is its group's own). */
export interface Decisions {
  ports: { protocol: Protocol; from: number; to: number; rule: FlatRule }[];
  other: FlatRule | undefined;
}

/** Addresses `first`..`last` of one family that decide `decisions`; key '' decides nothing. */
export interface OverlayRange {
  first: bigint;
  last: bigint;
  decisions: Decisions;
  key: string;
}

export interface Overlay {
  v4: OverlayRange[];
  v6: OverlayRange[];
}

const ruleKeys = new WeakMap<FlatRule, string>();
function ruleKey(r: FlatRule): string {
  let k = ruleKeys.get(r);
  if (k === undefined) {
    k = JSON.stringify([r.source.name, r.source.direction, r.source.index, r.action, r.priority]);
    ruleKeys.set(r, k);
  }
  return k;
}

/** A text that is equal for classes that decide alike ('' for one that decides nothing). */
export function decisionsKey(d: Decisions): string {
  if (d.ports.length === 0 && d.other === undefined) return '';
  const parts = d.ports.map((p) => `${p.protocol} ${p.from} ${p.to} ${ruleKey(p.rule)}`);
  return `${parts.join(';')}|${d.other === undefined ? '' : ruleKey(d.other)}`;
}

const classDecisions = new WeakMap<FlatTier, { decisions: Decisions; key: string }[]>();
/** A flat tier's classes as decisions by rule, with their keys (kept while the flat tier is). */
export function decisionsOf(flat: FlatTier): readonly { decisions: Decisions; key: string }[] {
  let out = classDecisions.get(flat);
  if (!out) {
    out = flat.classes.map((c: FlatClass) => {
      const decisions: Decisions = {
        ports: c.ports.map((s) => ({
          protocol: s.protocol,
          from: s.from,
          to: s.to,
          rule: flat.rules[s.rule] as FlatRule,
        })),
        other: c.other === undefined ? undefined : flat.rules[c.other],
      };
      return { decisions, key: decisionsKey(decisions) };
    });
    classDecisions.set(flat, out);
  }
  return out;
}

const MAX = { 4: (1n << 32n) - 1n, 6: (1n << 128n) - 1n } as const;

/** Appends a range, merged with the last one when adjacent and deciding alike. */
function push(out: OverlayRange[], first: bigint, last: bigint, decisions: Decisions, key: string): void {
  const prev = out[out.length - 1];
  if (prev && prev.key === key && prev.last + 1n === first) prev.last = last;
  else out.push({ first, last, decisions, key });
}

/** The class of `flat` at each piece of [from, to] (bigint, inclusive): calls `each` in order. */
function walkClasses(
  ranges: readonly AddressRange[],
  from: bigint,
  to: bigint,
  each: (first: bigint, last: bigint, cls: number) => void,
): void {
  let lo = 0;
  let hi = ranges.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((ranges[mid] as AddressRange).last < from) lo = mid + 1;
    else hi = mid;
  }
  let pos = from;
  for (let i = lo; pos <= to; ) {
    const r = ranges[i];
    if (r !== undefined && r.first <= pos) {
      const last = r.last < to ? r.last : to;
      each(pos, last, r.class);
      pos = last + 1n;
      i++;
    } else {
      const last = r !== undefined && r.first - 1n < to ? r.first - 1n : to;
      each(pos, last, 0);
      pos = last + 1n;
    }
  }
}

/** Where `group` decides differently from `base`, both flattened whole. */
export function compareTiers(base: FlatTier, group: FlatTier): Overlay {
  const b = decisionsOf(base);
  const g = decisionsOf(group);
  const out: Overlay = { v4: [], v6: [] };
  for (const family of [4, 6] as const) {
    const gRanges = family === 4 ? group.v4 : group.v6;
    const bRanges = family === 4 ? base.v4 : base.v6;
    const list = out[family === 4 ? 'v4' : 'v6'];
    walkClasses(gRanges, 0n, MAX[family], (first, last, gc) => {
      const mine = g[gc] as { decisions: Decisions; key: string };
      walkClasses(bRanges, first, last, (f, l, bc) => {
        if ((b[bc] as { key: string }).key !== mine.key) push(list, f, l, mine.decisions, mine.key);
      });
    });
  }
  return out;
}

const compiledKeys = new WeakMap<CompiledRule, string>();
function compiledKey(r: CompiledRule): string {
  let k = compiledKeys.get(r);
  if (k === undefined) {
    k = JSON.stringify([r.source, r.priority, r.action, r.peers, r.ports, r.namedPorts, r.broken ?? false]);
    compiledKeys.set(r, k);
  }
  return k;
}
const sameRule = (a: CompiledRule, b: CompiledRule) => a === b || compiledKey(a) === compiledKey(b);

/**
 * Where `rules` (the group's) decide differently from `base` (flattened from `baseRules`), when
 * `rules` are `baseRules` with rules inserted that name peers (not every address, no named ports);
 * undefined otherwise (compareTiers then). Only the inserted rules' addresses can change.
 */
export function insertedOverlay(
  base: FlatTier,
  baseRules: readonly CompiledRule[],
  rules: readonly CompiledRule[],
  peers: ReadonlyMap<string, PeerSet>,
): Overlay | undefined {
  const bOrdered = inEvaluationOrder(baseRules);
  const gOrdered = inEvaluationOrder(rules);
  if (gOrdered.length <= bOrdered.length) return undefined;
  const at = new Int32Array(bOrdered.length); // base rule index → the group's
  const fromBase = new Int32Array(gOrdered.length).fill(-1); // and back
  const specs: PortSpec[] = [];
  const spans: Record<4 | 6, { first: bigint; end: bigint; spec: number }[]> = { 4: [], 6: [] };
  let j = 0;
  for (let i = 0; i < gOrdered.length; i++) {
    const r = gOrdered[i] as CompiledRule;
    const b = bOrdered[j];
    if (b !== undefined && sameRule(b, r)) {
      fromBase[i] = j;
      at[j++] = i;
      continue;
    }
    if (r.broken || (r.ports !== 'all' && r.ports.length === 0 && r.namedPorts.length === 0)) continue;
    if (r.peers === 'all' || r.namedPorts.length > 0) return undefined;
    const spec = specs.push({ rule: i, ports: r.ports }) - 1;
    for (const id of new Set(r.peers)) {
      const peer = peers.get(id);
      if (!peer) continue;
      const { v4, v6 } = extentsOf(peer);
      for (let k = 0; k < v4.length; k += 2)
        spans[4].push({ first: BigInt(v4[k] as number), end: BigInt(v4[k + 1] as number), spec });
      for (const e of v6) spans[6].push({ first: e.first, end: e.end, spec });
    }
  }
  if (j !== bOrdered.length) return undefined;
  // The group's deciding rules, made when a decision names them: a base rule is the base's object.
  const gRules: FlatRule[] = [];
  const gRule = (i: number): FlatRule => {
    let r = gRules[i];
    if (r === undefined) {
      const bi = fromBase[i] as number;
      const c = gOrdered[i] as CompiledRule;
      r = bi >= 0 ? (base.rules[bi] as FlatRule) : { source: c.source, priority: c.priority, action: c.action };
      gRules[i] = r;
    }
    return r;
  };
  const b = decisionsOf(base);
  // A base class as specs of the group's rules: its segments, and its portless rule (which covers
  // every port: the segments it does not decide were decided before it). Only the classes the
  // inserted rules' addresses meet are asked.
  const baseSpecs = new Map<number, PortSpec[]>();
  const specsOf = (cls: number): PortSpec[] => {
    let out = baseSpecs.get(cls);
    if (out) return out;
    const c = base.classes[cls] as FlatClass;
    out = c.ports.map((s) => ({
      rule: at[s.rule] as number,
      ports: [{ protocol: s.protocol, from: s.from, to: s.to }],
    }));
    if (c.other !== undefined) out.push({ rule: at[c.other] as number, ports: 'all' });
    baseSpecs.set(cls, out);
    return out;
  };
  const merged = new Map<string, { decisions: Decisions; key: string }>();
  const mergedOf = (cls: number, active: readonly number[]) => {
    const k = `${cls}:${active.join(',')}`;
    let m = merged.get(k);
    if (!m) {
      const all = [...specsOf(cls), ...active.map((s) => specs[s] as PortSpec)];
      all.sort((x, y) => x.rule - y.rule);
      const d = decidePorts(all);
      const decisions: Decisions = {
        ports: d.ports.map((s) => ({ ...s, rule: gRule(s.rule) })),
        other: d.other === undefined ? undefined : gRule(d.other),
      };
      m = { decisions, key: decisionsKey(decisions) };
      merged.set(k, m);
    }
    return m;
  };
  const out: Overlay = { v4: [], v6: [] };
  for (const family of [4, 6] as const) {
    const events: { at: bigint; spec: number; delta: 1 | -1 }[] = [];
    for (const s of spans[family]) {
      events.push({ at: s.first, spec: s.spec, delta: 1 });
      events.push({ at: s.end, spec: s.spec, delta: -1 });
    }
    events.sort((x, y) => (x.at < y.at ? -1 : x.at > y.at ? 1 : 0));
    const count = new Map<number, number>();
    const ranges = family === 4 ? base.v4 : base.v6;
    const list = out[family === 4 ? 'v4' : 'v6'];
    for (let i = 0; i < events.length; ) {
      const pos = (events[i] as (typeof events)[number]).at;
      for (; i < events.length && (events[i] as (typeof events)[number]).at === pos; i++) {
        const e = events[i] as (typeof events)[number];
        const n = (count.get(e.spec) ?? 0) + e.delta;
        if (n === 0) count.delete(e.spec);
        else count.set(e.spec, n);
      }
      if (i === events.length || count.size === 0) continue;
      const end = (events[i] as (typeof events)[number]).at;
      const active = [...count.keys()].sort((x, y) => x - y);
      walkClasses(ranges, pos, end - 1n, (f, l, cls) => {
        const m = mergedOf(cls, active);
        if (m.key !== (b[cls] as { key: string }).key) push(list, f, l, m.decisions, m.key);
      });
    }
  }
  return out;
}
