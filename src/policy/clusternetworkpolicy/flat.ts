// A ClusterNetworkPolicy tier's rules for one pod and direction, flattened (issue 19: "a connection's
// first packet must not walk a list of every CNP rule"). First match within a tier is a function of
// (remote address, protocol, destination port), so it is computed ahead:
//   1. the remote address space (v4 and v6 apart) is cut at every boundary of every rule's peers
//      (pod and node peers: single addresses; networks: their intervals; egress named ports: the
//      destination pods' addresses); each elementary interval gets the ordered list of what the rules
//      whose peers hold it contribute (their ports, or the named ports' points at that address);
//      rules without peer restriction ('all') are in every list, the default one included;
//   2. per list, each protocol's port space is cut at every port boundary and each segment takes the
//      first rule (evaluation order) that covers it (flat-ports.ts); lists with the same decisions
//      share one class, and adjacent intervals of one class merge.
// So a packet costs an address lookup (its class) and a (protocol . port) lookup in the class: what
// nft does with an interval verdict map per tier and a concatenated interval map per class (the
// planned layout is in docs/architecture.md). Pure data; `decide` is the reference evaluator, tested
// against the rule walk (test/unit/policy-cnp-flat*.test.ts).
import { addressValue } from '../cidr.ts';
import { stableId } from '../names.ts';
import { ipInterval } from '../../nft/objects.ts';
import type { CompiledRule, NamedPortSet, PeerSet, PortRange, Protocol, RuleAction, RuleRef } from '../types.ts';
import { decidePorts, lowerBound, portDecision, type PortDecisions, type PortSpec } from './flat-ports.ts';

/** A rule that can decide: what counters, logs and the verdict need of it. */
export interface FlatRule {
  source: RuleRef;
  priority: number;
  action: RuleAction;
}

/** Remote addresses `first`..`last` (numbers of one family) whose packets take class `class`. */
export interface AddressRange {
  first: bigint;
  last: bigint;
  class: number;
}

export interface FlatClass extends PortDecisions {
  /** Index in `classes`; 0 is the default class (addresses in no range). */
  id: number;
}

/**
 * One tier's rules for one pod and direction, flat. `rules` index the decisions; `v4`/`v6` are sorted,
 * disjoint, adjacent ranges of one class merged, and list only addresses outside the default class.
 */
export interface FlatTier {
  /** A hash of the compiled rule list: pods whose tier has the same rules share one flat tier. */
  id: string;
  rules: readonly FlatRule[];
  classes: readonly FlatClass[];
  v4: readonly AddressRange[];
  v6: readonly AddressRange[];
}

/** A protocol without ports (ICMP, …) is 'other': only rules without port restriction match it. */
export type FlatProtocol = Protocol | 'other';

/** The id of a rule list (for grouping the pods that share one). Hashing costs about 1 ms per 1,000
 * rules; the compiler gives the pods selected by the same policies one list object, hashed once. */
export function ruleListId(rules: readonly CompiledRule[]): string {
  let id = listIds.get(rules);
  if (id === undefined) {
    id = stableId(
      rules.map((r) => [r.source, r.priority, r.action, r.peers, r.ports, r.namedPorts, r.broken ?? false]),
    );
    listIds.set(rules, id);
  }
  return id;
}
const listIds = new WeakMap<readonly CompiledRule[], string>();

/** A place in one family's address space: a number for IPv4 (exact below 2^53, and sorting numbers is
 * several times faster than sorting bigints), a bigint for IPv6. Only compared, never added. */
export type Pos = number | bigint;

/** A peer's addresses and intervals, each `first` up to `end` (exclusive): IPv4 as (first, end) pairs
 * of numbers in one typed array, IPv6 as bigints. Kept while the peer set object is (the incremental
 * compiler keeps an unchanged set's object), so a group flattened again parses nothing; a typed array
 * holds 16 bytes an address where an object per address held about 50. */
export interface PeerExtents {
  v4: Float64Array;
  v6: readonly { first: bigint; end: bigint }[];
}
const peerExtents = new WeakMap<PeerSet, PeerExtents>();
export function extentsOf(peer: PeerSet): PeerExtents {
  let out = peerExtents.get(peer);
  if (out) return out;
  const v4: number[] = [];
  const v6: { first: bigint; end: bigint }[] = [];
  const add = (family: 4 | 6, first: bigint, last: bigint) => {
    if (family === 4) v4.push(Number(first), Number(last) + 1);
    else v6.push({ first, end: last + 1n });
  };
  for (const ip of [...peer.v4, ...peer.v6]) {
    const v = addressValue(ip);
    if (v) add(v.family, v.value, v.value);
  }
  if (peer.meaning.kind === 'ipBlock')
    for (const text of peer.intervals) {
      const iv = ipInterval(text);
      if (iv) add(iv.family, iv.first, iv.last);
    }
  out = { v4: Float64Array.from(v4), v6 };
  peerExtents.set(peer, out);
  return out;
}

/** The rules in evaluation order: the list itself when it is (the compiler's always are). */
export function inEvaluationOrder(rules: readonly CompiledRule[]): readonly CompiledRule[] {
  for (let i = 1; i < rules.length; i++)
    if ((rules[i - 1] as CompiledRule).priority > (rules[i] as CompiledRule).priority)
      return [...rules].sort((a, b) => a.priority - b.priority);
  return rules;
}

/** Addresses `first`..`last` held by an atom: a peer (shared by every rule naming it), or one named
 * port address of one rule. Sweeping atoms, not (rule, address) pairs, keeps the sweep the size of
 * the distinct peers' addresses however many rules share them. */
interface Span {
  first: Pos;
  end: Pos;
  atom: number;
}

/** Rules in evaluation order (tier.ts: priority, stable), their peers and named ports resolved. */
export function flattenTier(
  compiled: readonly CompiledRule[],
  peers: ReadonlyMap<string, PeerSet>,
  namedPorts: ReadonlyMap<string, NamedPortSet>,
): FlatTier {
  const ordered = inEvaluationOrder(compiled);
  const rules: FlatRule[] = ordered.map((r) => ({ source: r.source, priority: r.priority, action: r.action }));
  const specs: PortSpec[] = [];
  const everywhere: number[] = []; // specs of rules without peer restriction
  const atomSpecs: number[][] = []; // per atom, the specs it carries (ascending)
  const peerAtoms = new Map<string, number>();
  // IPv4 spans as (first, end, atom) triples of numbers, IPv6 ones as objects: at 5,000 pods a group
  // sweeps tens of thousands of spans, and an object each was most of a CNP pass's garbage.
  const spans4: number[] = [];
  const spans6: Span[] = [];
  const peerAtom = (peer: PeerSet): number => {
    const known = peerAtoms.get(peer.id);
    if (known !== undefined) return known;
    const atom = atomSpecs.push([]) - 1;
    peerAtoms.set(peer.id, atom);
    const { v4, v6 } = extentsOf(peer);
    for (let k = 0; k < v4.length; k += 2) spans4.push(v4[k] as number, v4[k + 1] as number, atom);
    for (const e of v6) spans6.push({ first: e.first, end: e.end, atom });
    return atom;
  };
  for (const [rule, r] of ordered.entries()) {
    if (r.broken) continue; // matches nothing (a fail-closed Accept)
    if (r.ports === 'all' || r.ports.length > 0) {
      const spec = specs.push({ rule, ports: r.ports }) - 1;
      if (r.peers === 'all') everywhere.push(spec);
      else
        for (const id of new Set(r.peers)) {
          const peer = peers.get(id);
          if (peer) atomSpecs[peerAtom(peer)]?.push(spec); // unknown: matches no address (as match.ts)
        }
    }
    // Egress named ports: (address, protocol, port) points, each address its own atom.
    const points = new Map<string, PortRange[]>();
    for (const id of r.namedPorts) {
      const set = namedPorts.get(id);
      for (const e of set ? [...set.v4, ...set.v6] : []) {
        const list = points.get(e.address) ?? [];
        list.push({ protocol: e.protocol, from: e.port, to: e.port });
        points.set(e.address, list);
      }
    }
    for (const [address, ports] of points) {
      const v = addressValue(address);
      if (!v) continue;
      const atom = atomSpecs.push([specs.push({ rule, ports }) - 1]) - 1;
      if (v.family === 4) spans4.push(Number(v.value), Number(v.value) + 1, atom);
      else spans6.push({ first: v.value, end: v.value + 1n, atom });
    }
  }
  const classes = new ClassTable(specs, atomSpecs, everywhere);
  classes.classOf([]); // the default class (only rules without peer restriction) is 0
  return {
    id: ruleListId(ordered),
    rules,
    v4: sweep4(spans4, atomSpecs.length, classes),
    v6: sweep(spans6, classes),
    classes: classes.list,
  };
}

/** Classes by their decisions: address intervals whose rule lists decide alike share one. */
class ClassTable {
  readonly list: FlatClass[] = [];
  private readonly byAtoms = new Map<string, number>();
  private readonly byDecisions = new Map<string, number>();
  private readonly specs: readonly PortSpec[];
  private readonly atomSpecs: readonly (readonly number[])[];
  private readonly everywhere: readonly number[];

  constructor(specs: readonly PortSpec[], atomSpecs: readonly (readonly number[])[], everywhere: readonly number[]) {
    this.specs = specs;
    this.atomSpecs = atomSpecs;
    this.everywhere = everywhere;
  }

  /** The class of an interval held by these atoms (ascending). */
  classOf(atoms: readonly number[]): number {
    const atomKey = atoms.join(',');
    const hit = this.byAtoms.get(atomKey);
    if (hit !== undefined) return hit;
    // Specs are numbered in evaluation order: ascending is the order the rules are tried in.
    const active = new Set(this.everywhere);
    for (const a of atoms) for (const s of this.atomSpecs[a] ?? []) active.add(s);
    const ordered = [...active].sort((a, b) => a - b);
    const decisions = decidePorts(ordered.map((i) => this.specs[i] as PortSpec));
    const key = JSON.stringify(decisions);
    let id = this.byDecisions.get(key);
    if (id === undefined) {
      id = this.list.push({ id: this.list.length, ...decisions }) - 1;
      this.byDecisions.set(key, id);
    }
    this.byAtoms.set(atomKey, id);
    return id;
  }
}

/** Atoms and the start/end bit below an IPv4 position in one float (positions <= 2^32: exact). */
const ATOM_BITS = 2 ** 20;

/** sweep for IPv4 (`spans`: first, end, atom triples): the events as numbers (position, atom, start
 * or end) in one typed array sorted natively, no object per event. */
function sweep4(spans: readonly number[], atoms: number, classes: ClassTable): AddressRange[] {
  if (atoms >= ATOM_BITS / 2) {
    const objects: Span[] = [];
    for (let k = 0; k < spans.length; k += 3)
      objects.push({ first: spans[k] as number, end: spans[k + 1] as number, atom: spans[k + 2] as number });
    return sweep(objects, classes);
  }
  const keys = new Float64Array((spans.length / 3) * 2);
  for (let k = 0, j = 0; k < spans.length; k += 3) {
    const atom = (spans[k + 2] as number) * 2;
    keys[j++] = (spans[k] as number) * ATOM_BITS + atom + 1;
    keys[j++] = (spans[k + 1] as number) * ATOM_BITS + atom;
  }
  keys.sort();
  const events = {
    length: keys.length,
    at: (i: number) => Math.floor((keys[i] as number) / ATOM_BITS),
    atom: (i: number) => Math.floor(((keys[i] as number) % ATOM_BITS) / 2),
    delta: (i: number): 1 | -1 => ((keys[i] as number) % 2 === 1 ? 1 : -1),
  };
  return sweepEvents(events, classes);
}

/** Sorted events of one family: at(i) ascending. */
interface Events {
  length: number;
  at(i: number): Pos;
  atom(i: number): number;
  delta(i: number): 1 | -1;
}

/** Elementary intervals of one family, classified, default-class ones left out, neighbours merged. */
function sweep(spans: readonly Span[], classes: ClassTable): AddressRange[] {
  const list: { at: Pos; atom: number; delta: 1 | -1 }[] = [];
  for (const c of spans) {
    list.push({ at: c.first, atom: c.atom, delta: 1 });
    list.push({ at: c.end, atom: c.atom, delta: -1 });
  }
  list.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  const events: Events = {
    length: list.length,
    at: (i) => (list[i] as (typeof list)[number]).at,
    atom: (i) => (list[i] as (typeof list)[number]).atom,
    delta: (i) => (list[i] as (typeof list)[number]).delta,
  };
  return sweepEvents(events, classes);
}

function sweepEvents(events: Events, classes: ClassTable): AddressRange[] {
  const count = new Map<number, number>(); // an atom can hold an address twice (overlapping prefixes)
  const active: number[] = []; // the atoms holding the current interval, ascending (kept in place)
  const out: AddressRange[] = [];
  let lastEnd: Pos | undefined; // where the last range of `out` ends (exclusive)
  for (let i = 0; i < events.length; ) {
    const at = events.at(i);
    for (; i < events.length && events.at(i) === at; i++) {
      const atom = events.atom(i);
      const was = count.get(atom) ?? 0;
      const n = was + events.delta(i);
      if (n === 0) count.delete(atom);
      else count.set(atom, n);
      // By hand: splice returns a new array each call (a sweep makes tens of thousands).
      if (was === 0 && n > 0) {
        let k = active.length;
        active.push(atom);
        for (; k > 0 && (active[k - 1] as number) > atom; k--) active[k] = active[k - 1] as number;
        active[k] = atom;
      } else if (was > 0 && n === 0) {
        for (let k = lowerBound(active, atom); k < active.length - 1; k++) active[k] = active[k + 1] as number;
        active.pop();
      }
    }
    if (i === events.length || active.length === 0) continue;
    const next = events.at(i);
    const cls = classes.classOf(active);
    if (cls === 0) continue;
    const last = out[out.length - 1];
    if (last && last.class === cls && lastEnd === at) last.last = BigInt(next) - 1n;
    else out.push({ first: BigInt(at), last: BigInt(next) - 1n, class: cls });
    lastEnd = next;
  }
  return out;
}

/** The class of a remote address (0 when it is in no range, or not an address). */
export function classOf(flat: FlatTier, remote: string): number {
  const v = addressValue(remote);
  if (!v) return 0;
  const ranges = v.family === 4 ? flat.v4 : flat.v6;
  let lo = 0;
  let hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const r = ranges[mid] as AddressRange;
    if (r.last < v.value) lo = mid + 1;
    else if (r.first > v.value) hi = mid - 1;
    else return r.class;
  }
  return 0;
}

/** The rule that decides a packet in this tier (first match), or undefined: the tier's fall-through. */
export function decide(flat: FlatTier, remote: string, protocol: FlatProtocol, port: number): FlatRule | undefined {
  const cls = flat.classes[classOf(flat, remote)] as FlatClass;
  const rule = portDecision(cls, protocol, port);
  return rule === undefined ? undefined : flat.rules[rule];
}

/** How big the flat tier is in nft elements: address ranges, classes and port segments. */
export function flatSize(flat: FlatTier): { ranges: number; classes: number; segments: number } {
  return {
    ranges: flat.v4.length + flat.v6.length,
    classes: flat.classes.length,
    segments: flat.classes.reduce((n, c) => n + c.ports.length + (c.other === undefined ? 0 : 1), 0),
  };
}
