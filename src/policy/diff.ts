// Over 400 lines: the diff, the full build, the drift check and the identity diff all read the same set, chain and rule comparisons (sameSet, sameChain, sameRule); split, each part would import them back.
// From one DesiredPolicyTable to the next as one nft transaction (all or nothing: the kernel commits
// a batch atomically, so packets see the old ruleset or the new one, never a half-applied one):
//
//   diffPolicy(prev, next)        the fewest operations, for a table that holds `prev` exactly;
//   fullBuildPolicy(next, actual) replaces every agent-pol-* object whatever the table holds (after a
//                                 failed transaction, drift, or at agent start).
//
// Order inside a transaction only has to keep each command valid against the state before it (nft
// checks references as it goes; the fake does too):
//   1. new chains, then sets and maps (rules and verdict-map elements will name them; nft 1.0.6
//      refuses an interval verdict map's element jumping to a chain added after the map);
//   2. element deletions, then additions: deletions first, so a changed verdict (a pod's address now
//      jumping to another chain) or an interval that replaces an overlapping one can be added. Both
//      are in the same batch, which the kernel commits at once: no packet sees the address between
//      its delete and its add, so an isolated pod is never open;
//   3. changed chains flushed and refilled; removed chains flushed;
//   4. removed maps, then removed chains (nothing jumps to them any more), then removed sets (no rule
//      names them any more).
import { emptyTableState, type Element, type NftMap, type NftSet, type TableState } from '../nft/objects.ts';
import { Transaction } from '../nft/transaction.ts';
import type { DesiredChain, DesiredPolicyTable } from './types.ts';
import { POLICY_PREFIX } from './names.ts';
import { samePlain } from '../util/same-plain.ts';

const keyText = (e: { key: readonly string[]; value?: readonly string[] | undefined }) => e.key.join(' . ');
const valueText = (e: { value?: readonly string[] | undefined }) => (e.value ?? []).join(' . ');

function sameSet(a: NftSet | NftMap, b: NftSet | NftMap): boolean {
  return (
    a.kind === b.kind &&
    a.type === b.type &&
    (a.kind === 'map' ? a.value : '') === (b.kind === 'map' ? b.value : '') &&
    [...(a.flags ?? [])].sort().join() === [...(b.flags ?? [])].sort().join()
  );
}

function sameChain(a: DesiredChain, b: DesiredChain): boolean {
  const base = (c: DesiredChain) =>
    c.chain.base
      ? `${c.chain.base.type} ${c.chain.base.hook} ${c.chain.base.priority} ${c.chain.base.policy ?? 'accept'}`
      : '';
  if (base(a) !== base(b) || a.rules.length !== b.rules.length) return false;
  return a.rules.every((r, i) => {
    const o = b.rules[i];
    return o !== undefined && sameRule(r, o);
  });
}

type Rule = DesiredChain['rules'][number];

/** The same rule: the same comment and body. Bodies are compared as data (a pod's chain rendered
 * again is new objects with the same values; rendering ~450 rules as text to compare them was a
 * third of a diff at 10,000 policies); bodies that differ as data yet read the same as text count as
 * different, which costs a rule edited, never a rule kept wrongly. */
function sameRule(a: Rule, b: Rule): boolean {
  return a === b || (a.comment === b.comment && samePlain(a.body, b.body));
}

/**
 * A changed chain: flushed and refilled, the flush saying how many of the first and last rules stay
 * the same (ChainEdit), so that a transport that edits chains by handle (netlink) sends only the
 * rules between: a policy added to or taken from a pod is one rule or a few, not the pod's whole
 * chain (at 10,000 policies, 25 chains of ~18 rules for one policy).
 */
function refill(tx: Transaction, name: string, old: DesiredChain | undefined, c: DesiredChain): void {
  if (old) {
    const was = old.rules;
    const now = c.rules;
    const most = Math.min(was.length, now.length);
    let keep = 0;
    while (keep < most && sameRule(was[keep] as Rule, now[keep] as Rule)) keep++;
    let tail = 0;
    while (tail < most - keep && sameRule(was[was.length - 1 - tail] as Rule, now[now.length - 1 - tail] as Rule))
      tail++;
    if (keep + tail > 0)
      tx.flush({ kind: 'chain', name }, { was: was.map((r) => r.comment), keep, tail, rules: now.length });
    else tx.flush({ kind: 'chain', name });
  }
  for (const r of c.rules) tx.add(r);
}

function sameBase(a: DesiredChain, b: DesiredChain): boolean {
  const ab = a.chain.base;
  const bb = b.chain.base;
  if (!ab || !bb) return ab === bb;
  return ab.type === bb.type && ab.hook === bb.hook && ab.priority === bb.priority;
}

/** The listed state a table holding exactly `desired` would show (for the fallback to a rebuild). */
export function tableStateOf(desired: DesiredPolicyTable | undefined): TableState {
  const state = emptyTableState();
  if (!desired) return state;
  state.exists = true;
  let handle = 1;
  for (const [name, c] of desired.chains)
    state.chains.set(name, { name, handle: handle++, ...(c.chain.base ? { base: c.chain.base } : {}), rules: [] });
  for (const [name, s] of desired.sets) {
    const elements = (desired.elements.get(name) ?? []).map((e) => ({
      key: [...e.key],
      ...(e.value ? { value: [...e.value] } : {}),
    }));
    const listed = { name, handle: handle++, type: s.type, flags: [...(s.flags ?? [])], elements };
    if (s.kind === 'map') state.maps.set(name, { ...listed, value: s.value });
    else state.sets.set(name, listed);
  }
  return state;
}

/**
 * The operations that turn a table holding `prev` (undefined: no agent-pol-* objects yet) into
 * `next`. A set whose definition changed, or a base chain whose hook or priority changed (neither
 * can change in place), only happens across Strand versions: then it is the full rebuild.
 */
export function diffPolicy(prev: DesiredPolicyTable | undefined, next: DesiredPolicyTable): Transaction {
  const before: DesiredPolicyTable = prev ?? {
    chains: new Map(),
    sets: new Map(),
    elements: new Map(),
    chainOwners: new Map(),
    comments: new Map(),
  };
  for (const [name, s] of next.sets) {
    const old = before.sets.get(name);
    if (old && !sameSet(old, s)) return fullBuildPolicy(next, tableStateOf(prev));
  }
  for (const [name, c] of next.chains) {
    const old = before.chains.get(name);
    if (old && !sameBase(old, c)) return fullBuildPolicy(next, tableStateOf(prev));
  }
  const tx = new Transaction({ ownedPrefix: POLICY_PREFIX });
  if (prev === undefined) tx.add({ kind: 'table' });

  // 1. new definitions
  for (const [name, c] of next.chains) if (!before.chains.has(name)) tx.add(c.chain);
  for (const [name, s] of next.sets) if (!before.sets.has(name)) tx.add(s);
  // A kept base chain whose policy changed: `add` sets it in place.
  for (const [name, c] of next.chains) {
    const old = before.chains.get(name);
    if (old?.chain.base && c.chain.base && (old.chain.base.policy ?? 'accept') !== (c.chain.base.policy ?? 'accept'))
      tx.add(c.chain);
  }

  // 2. elements: deletions, then additions. Elements of removed sets and maps go with them (step 4).
  const additions: Element[] = [];
  for (const [name] of next.sets) {
    const wantByKey = new Map((next.elements.get(name) ?? []).map((e) => [keyText(e), e]));
    const hadByKey = new Map((before.elements.get(name) ?? []).map((e) => [keyText(e), e]));
    for (const [k, e] of hadByKey) {
      const w = wantByKey.get(k);
      if (!w || valueText(w) !== valueText(e)) tx.delete({ kind: 'element', set: name, key: e.key });
    }
    for (const [k, e] of wantByKey) {
      const h = hadByKey.get(k);
      if (!h || valueText(h) !== valueText(e)) additions.push(e);
    }
  }
  for (const e of additions) tx.add(e);

  // 3. rules: a changed chain is flushed and refilled (no rule handles to keep track of); a removed
  // one is emptied so it and the sets its rules name can go.
  for (const [name, c] of next.chains) {
    const old = before.chains.get(name);
    if (old && sameChain(old, c)) continue;
    refill(tx, name, old, c);
  }
  const removedChains = [...before.chains.keys()].filter((n) => !next.chains.has(n));
  for (const name of removedChains) tx.flush({ kind: 'chain', name });

  // 4. removals: maps (their jumps), chains, sets (their rules are gone).
  for (const [name, s] of before.sets) if (!next.sets.has(name) && s.kind === 'map') tx.delete({ kind: 'map', name });
  for (const name of removedChains) tx.delete({ kind: 'chain', name });
  for (const [name, s] of before.sets) if (!next.sets.has(name) && s.kind === 'set') tx.delete({ kind: 'set', name });
  return tx;
}

/**
 * One transaction that makes the table's agent-pol-* objects exactly `next`, whatever `actual` (the
 * listed table) holds of them: every existing policy chain and map is emptied first (so nothing
 * names what is deleted next), objects that are not wanted or have another definition are deleted,
 * and everything wanted is added and filled. Other owners' objects (cni-*, other agent-*) are never
 * named. Applied as one batch, an isolated pod is isolated before, during and after.
 */
export function fullBuildPolicy(next: DesiredPolicyTable, actual: TableState): Transaction {
  const tx = new Transaction({ ownedPrefix: POLICY_PREFIX });
  for (const _ of fullBuildSteps(next, actual, tx));
  return tx;
}

/**
 * fullBuildPolicy without holding the event loop: `breathe` is awaited whenever `sliceMs` went by (a
 * rebuild at 50,000 pods adds 64,000 operations, each checked and copied: ~0.5 s in one block).
 */
export async function fullBuildPolicyAsync(
  next: DesiredPolicyTable,
  actual: TableState,
  breathe: () => Promise<void>,
  sliceMs = 15,
): Promise<Transaction> {
  // The applier keeps `next` as the state it applied and never changes it: its objects are shared.
  const tx = new Transaction({ ownedPrefix: POLICY_PREFIX, shareObjects: true });
  let slice = performance.now();
  for (const _ of fullBuildSteps(next, actual, tx)) {
    if (performance.now() - slice < sliceMs) continue;
    await breathe();
    slice = performance.now();
  }
  return tx;
}

/** fullBuildPolicy's operations added to `tx`, pausing (yielding) every 32 of the many (fullBuildPolicyAsync looks at the clock only at a pause). */
function* fullBuildSteps(next: DesiredPolicyTable, actual: TableState, tx: Transaction): Generator<void> {
  tx.add({ kind: 'table' });
  const ours = (name: string) => name.startsWith(POLICY_PREFIX);
  const existingChains = [...actual.chains.values()].filter((c) => ours(c.name));
  const existingSets = [...actual.sets.values()]
    .filter((s) => ours(s.name))
    .map((s) => ({ ...s, kind: 'set' as const }));
  const existingMaps = [...actual.maps.values()]
    .filter((s) => ours(s.name))
    .map((s) => ({ ...s, kind: 'map' as const }));

  for (const c of existingChains) tx.flush({ kind: 'chain', name: c.name });
  for (const m of existingMaps) tx.flush({ kind: 'map', name: m.name });
  for (const s of existingSets) tx.flush({ kind: 'set', name: s.name });

  const kept = new Set<string>();
  for (const s of [...existingMaps, ...existingSets]) {
    const want = next.sets.get(s.name);
    const same =
      want !== undefined &&
      want.kind === s.kind &&
      want.type === s.type &&
      (want.kind === 'map' ? want.value === (s as { value?: string }).value : true) &&
      [...(want.flags ?? [])].sort().join() === [...s.flags].sort().join();
    if (same) kept.add(s.name);
    else tx.delete({ kind: s.kind, name: s.name });
  }
  for (const c of existingChains) {
    const want = next.chains.get(c.name);
    const wb = want?.chain.base;
    const same =
      want !== undefined &&
      (wb && c.base
        ? wb.type === c.base.type && wb.hook === c.base.hook && wb.priority === c.base.priority
        : !wb && !c.base);
    if (same) kept.add(c.name);
    else tx.delete({ kind: 'chain', name: c.name });
  }

  // Chains before sets and maps: nft refuses an interval verdict map's element jumping to a chain
  // created later in the batch than the map (the flat ClusterNetworkPolicy layout has such maps).
  // `add` of a kept base chain also sets its policy.
  let n = 0;
  for (const [, c] of next.chains) {
    tx.add(c.chain);
    if ((++n & 31) === 0) yield;
  }
  for (const [, s] of next.sets) {
    tx.add(s);
    if ((++n & 31) === 0) yield;
  }
  for (const [, list] of next.elements)
    for (const e of list) {
      tx.add(e);
      if ((++n & 31) === 0) yield;
    }
  for (const [, c] of next.chains)
    for (const r of c.rules) {
      tx.add(r);
      if ((++n & 31) === 0) yield;
    }
}

/**
 * How the listed table differs from `desired` in the agent-pol-* objects, as far as a listing shows
 * (rules by their comments and number, since nft does not list rule text back); empty when it holds
 * exactly `desired`. For the applier's drift check: anything listed here calls for the full build.
 */
export function policyDrift(desired: DesiredPolicyTable, actual: TableState): string[] {
  const out: string[] = [];
  const ours = (name: string) => name.startsWith(POLICY_PREFIX);
  if (!actual.exists) return ['table inet strand is missing'];
  for (const [name, want] of desired.chains) {
    const got = actual.chains.get(name);
    if (!got) {
      out.push(`chain ${name} is missing`);
      continue;
    }
    const wb = want.chain.base;
    const gb = got.base;
    if (wb || gb) {
      if (
        !wb ||
        !gb ||
        wb.type !== gb.type ||
        wb.hook !== gb.hook ||
        wb.priority !== gb.priority ||
        (wb.policy ?? 'accept') !== (gb.policy ?? 'accept')
      )
        out.push(`chain ${name} has another hook, priority or policy`);
    }
    const wantComments = want.rules.map((r) => r.comment ?? '').join('\n');
    const gotComments = got.rules.map((r) => r.comment ?? '').join('\n');
    if (want.rules.length !== got.rules.length || wantComments !== gotComments)
      out.push(`chain ${name} has ${got.rules.length} rules, not the ${want.rules.length} wanted`);
  }
  for (const name of actual.chains.keys())
    if (ours(name) && !desired.chains.has(name)) out.push(`chain ${name} is not wanted`);
  const listedSets = new Map<
    string,
    {
      kind: 'set' | 'map';
      type: string;
      value?: string;
      flags: readonly string[];
      elements: { key: readonly string[]; value?: readonly string[] | undefined }[];
    }
  >();
  for (const [name, s] of actual.sets) listedSets.set(name, { kind: 'set', ...s });
  for (const [name, m] of actual.maps) listedSets.set(name, { kind: 'map', ...m });
  for (const [name, want] of desired.sets) {
    const got = listedSets.get(name);
    if (!got) {
      out.push(`${want.kind} ${name} is missing`);
      continue;
    }
    if (
      got.kind !== want.kind ||
      got.type !== want.type ||
      (want.kind === 'map' && got.value !== want.value) ||
      [...got.flags].sort().join() !== [...(want.flags ?? [])].sort().join()
    ) {
      out.push(`${want.kind} ${name} has another type or flags`);
      continue;
    }
    const wantKeys = new Set((desired.elements.get(name) ?? []).map((e) => `${keyText(e)} : ${valueText(e)}`));
    const gotKeys = new Set(got.elements.map((e) => `${keyText(e)} : ${valueText(e)}`));
    let missing = 0;
    let extra = 0;
    for (const k of wantKeys) if (!gotKeys.has(k)) missing++;
    for (const k of gotKeys) if (!wantKeys.has(k)) extra++;
    if (missing > 0 || extra > 0) out.push(`${want.kind} ${name}: ${missing} element(s) missing, ${extra} not wanted`);
  }
  for (const name of listedSets.keys())
    if (ours(name) && !desired.sets.has(name)) out.push(`set or map ${name} is not wanted`);
  return out;
}

/**
 * diffPolicy(from, to) for tables that share their unchanged parts (incremental/render.ts, the
 * pod-start bind): a chain, set or element list that is the same object in both is unchanged and not
 * looked at; a set whose element list changed gets only its added and removed elements, found by one
 * merge of the two sorted lists (renderPolicy sorts them by key text). The kernel ends up holding
 * exactly what diffPolicy would bring it to (test/unit/policy-incremental.test.ts).
 */
export function diffIdentity(from: DesiredPolicyTable, to: DesiredPolicyTable): Transaction {
  // forEach, not for-of over entries: each entry would be an array allocated for ~2,500 names a
  // change, whatever changed (the young generation's collections were most of a change's slow tail).
  let whole = false;
  to.sets.forEach((s, name) => {
    const old = from.sets.get(name);
    if (old && old !== s && !sameSet(old, s)) whole = true;
  });
  if (!whole)
    to.chains.forEach((c, name) => {
      const old = from.chains.get(name);
      if (old && old !== c && !sameBase(old, c)) whole = true;
    });
  if (whole) return diffPolicy(from, to);
  // The tables' objects are shared, not copied: a rendered table is never changed, and the applier
  // keeps `to` as the state it applied (a copy of each refilled chain's rules was most of a diff).
  const tx = new Transaction({ ownedPrefix: POLICY_PREFIX, shareObjects: true });
  // 1. new definitions, and kept base chains whose policy changed
  to.chains.forEach((c, name) => {
    if (!from.chains.has(name)) tx.add(c.chain);
  });
  to.sets.forEach((s, name) => {
    if (!from.sets.has(name)) tx.add(s);
  });
  to.chains.forEach((c, name) => {
    const old = from.chains.get(name);
    if (
      old &&
      old !== c &&
      old.chain.base &&
      c.chain.base &&
      (old.chain.base.policy ?? 'accept') !== (c.chain.base.policy ?? 'accept')
    )
      tx.add(c.chain);
  });
  // 2. elements: deletions, then additions
  const additions: Element[] = [];
  to.sets.forEach((_, name) => {
    const had = from.sets.has(name) ? (from.elements.get(name) ?? []) : [];
    const want = to.elements.get(name) ?? [];
    if (had === want) return;
    mergeElements(
      had,
      want,
      (e) => tx.delete({ kind: 'element', set: name, key: e.key }),
      (e) => additions.push(e),
    );
  });
  for (const e of additions) tx.add(e);
  // 3. changed chains flushed and refilled, removed ones flushed
  to.chains.forEach((c, name) => {
    const old = from.chains.get(name);
    if (old === c || (old && sameChain(old, c))) return;
    refill(tx, name, old, c);
  });
  const removedChains: string[] = [];
  for (const n of from.chains.keys()) if (!to.chains.has(n)) removedChains.push(n);
  for (const name of removedChains) tx.flush({ kind: 'chain', name });
  // 4. removals
  from.sets.forEach((s, name) => {
    if (!to.sets.has(name) && s.kind === 'map') tx.delete({ kind: 'map', name });
  });
  for (const name of removedChains) tx.delete({ kind: 'chain', name });
  from.sets.forEach((s, name) => {
    if (!to.sets.has(name) && s.kind === 'set') tx.delete({ kind: 'set', name });
  });
  return tx;
}

/** One walk over two lists sorted by key text: what `had` has that `want` lacks (or with another
 * value), and the reverse. */
function mergeElements(
  had: readonly Element[],
  want: readonly Element[],
  removed: (e: Element) => void,
  added: (e: Element) => void,
): void {
  let i = 0;
  let j = 0;
  while (i < had.length || j < want.length) {
    const h = had[i];
    const w = want[j];
    if (h === w) {
      i++;
      j++;
      continue;
    }
    const hk = h === undefined ? undefined : keyText(h);
    const wk = w === undefined ? undefined : keyText(w);
    if (h !== undefined && (wk === undefined || (hk as string) < wk)) {
      removed(h);
      i++;
    } else if (w !== undefined && (hk === undefined || (wk as string) < hk)) {
      added(w);
      j++;
    } else {
      if (valueText(h as Element) !== valueText(w as Element)) {
        removed(h as Element);
        added(w as Element);
      }
      i++;
      j++;
    }
  }
}
