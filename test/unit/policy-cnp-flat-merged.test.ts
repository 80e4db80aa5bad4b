// FlatGroups.merged keeps its last merge and takes out and puts in only the parts that went and came
// (a CNP change adds or drops a group or two of ~10): after any sequence it holds what merging the
// current parts whole gives, a name shared by parts staying while any part has it.
import { describe, expect, it } from 'vitest';
import type { DesiredChain } from '../../src/policy/types.ts';
import { applyFlatChanges, FlatGroups } from '../../src/policy/clusternetworkpolicy/flat-groups.ts';
import { MapPatch } from '../../src/policy/incremental/patch.ts';
import { mergeParts, type FlatParts } from '../../src/policy/clusternetworkpolicy/flat-render.ts';

const chain = (name: string, tag: string): DesiredChain => ({
  chain: { kind: 'chain', name },
  rules: [{ kind: 'rule', chain: name, body: [], comment: tag }],
});

/** A part with its own names and some shared ones (a rule chain, a class, a comment, a base map). */
function part(i: number, shared: readonly string[]): FlatParts {
  const p: FlatParts = { chains: new Map(), sets: new Map(), elements: new Map(), comments: new Map() };
  for (const n of [`own-${i}`, ...shared]) {
    p.chains.set(n, chain(n, n));
    p.sets.set(n, { kind: 'set', name: n, type: 'ipv4_addr' });
    p.elements.set(n, [{ kind: 'element', set: n, key: [n] }]);
    p.comments.set(n, { verdict: 'self' });
  }
  return p;
}

function whole(list: readonly FlatParts[]): FlatParts {
  const out: FlatParts = { chains: new Map(), sets: new Map(), elements: new Map(), comments: new Map() };
  for (const p of list) mergeParts(out, p);
  return out;
}

/** A seeded random source and a pool of 12 parts, each with some of five names. */
function seeded(start: number): { rand: (n: number) => number; pool: FlatParts[] } {
  let seed = start;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const names = ['r-a', 'r-b', 'c-x', 'c-y', 'base'];
  const pool = Array.from({ length: 12 }, (_, i) =>
    part(
      i,
      names.filter(() => rand(2) === 0),
    ),
  );
  return { rand, pool };
}

describe('FlatGroups.merged', () => {
  it('equals the whole merge of the current parts through 300 seeded changes', () => {
    const { rand, pool } = seeded(7);
    const groups = new FlatGroups();
    let current: FlatParts[] = [];
    let incremental = 0;
    for (let step = 0; step < 300; step++) {
      // Mostly one or two parts in or out; now and then many (merged whole again).
      const changes = rand(10) === 0 ? 6 + rand(6) : 1 + rand(2);
      for (let k = 0; k < changes; k++) {
        const p = pool[rand(pool.length)] as FlatParts;
        if (current.includes(p)) current = current.filter((x) => x !== p);
        else current.splice(rand(current.length + 1), 0, p);
      }
      const rendered = new Map(current.map((p, i) => [`g${i}`, p]));
      const merged = groups.merged(rendered);
      const want = whole(current);
      for (const kind of ['chains', 'sets', 'elements', 'comments'] as const) {
        expect(new Set(merged[kind].keys())).toEqual(new Set(want[kind].keys()));
        for (const [n, x] of merged[kind]) expect(x).toEqual(want[kind].get(n));
      }
      if (changes <= 2) incremental++;
    }
    expect(incremental).toBeGreaterThan(200);
  });

  it('is the very object while the parts are', () => {
    const groups = new FlatGroups();
    const a = part(1, ['r-a']);
    const first = groups.merged(new Map([['g', a]]));
    expect(groups.merged(new Map([['g', a]]))).toBe(first);
  });

  it('names every name that changed, so that a copy of the last table patched with them is the new merge', () => {
    const { rand, pool } = seeded(11);
    const groups = new FlatGroups();
    const sorted = <V>(m: ReadonlyMap<string, V>) => new Map([...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    type Maps = { [K in keyof FlatParts]: ReadonlyMap<string, FlatParts[K] extends Map<string, infer V> ? V : never> };
    let table: Maps | undefined;
    let current: FlatParts[] = [];
    let patched = 0;
    for (let step = 0; step < 300; step++) {
      const changes = rand(10) === 0 ? 6 + rand(6) : rand(3);
      for (let k = 0; k < changes; k++) {
        const p = pool[rand(pool.length)] as FlatParts;
        if (current.includes(p)) current = current.filter((x) => x !== p);
        else current.splice(rand(current.length + 1), 0, p);
      }
      const { merged, changed } = groups.mergedChanges(new Map(current.map((p, i) => [`g${i}`, p])));
      if (!table || !changed)
        table = {
          chains: sorted(merged.chains),
          sets: sorted(merged.sets),
          elements: sorted(merged.elements),
          comments: sorted(merged.comments),
        };
      else {
        // As the patched render does it (incremental/render.ts): patches of the last table's maps.
        const next = {
          chains: new MapPatch(table.chains),
          sets: new MapPatch(table.sets),
          elements: new MapPatch(table.elements),
          comments: new MapPatch(table.comments),
        };
        applyFlatChanges(next, merged, changed, table.sets);
        table = {
          chains: next.chains.result(),
          sets: next.sets.result(),
          elements: next.elements.result(),
          comments: next.comments.result(),
        };
        patched++;
      }
      const want = whole(current);
      for (const kind of ['chains', 'sets', 'elements', 'comments'] as const) {
        const wanted: ReadonlyMap<string, unknown> = want[kind];
        expect([...table[kind].keys()]).toEqual([...sorted(wanted).keys()]);
        for (const [n, x] of table[kind]) expect(x).toEqual(wanted.get(n));
      }
    }
    expect(patched).toBeGreaterThan(200);
  });
});
