// sortedKeys and sortedLike (src/policy/incremental/order.ts) against a whole sort, on seeded random
// sequences of names added and removed (few at a time, and more than the merge takes).
import { describe, expect, it } from 'vitest';
import { sortedKeys, sortedLike } from '../../src/policy/incremental/order.ts';
import { rng } from '../support/rng.ts';

describe('incremental order', () => {
  it('gives the sorted order whatever came and went', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const r = rng(seed);
      let names = new Map<string, number>();
      let lastKeys: string[] | undefined;
      let lastMap: Map<string, number> | undefined;
      for (let step = 0; step < 60; step++) {
        const next = new Map<string, number>();
        // Kept in insertion order unlike the sorted one, so the order must come from the merge.
        for (const [k, v] of names) if (r() > 0.05) next.set(k, v);
        const adds = step % 10 === 9 ? 200 : Math.floor(r() * 5);
        for (let i = 0; i < adds; i++) next.set(`pol-${Math.floor(r() * 5000).toString(36)}-x`, step);
        names = next;
        const want = [...names.keys()].sort();
        lastKeys = sortedKeys(names, lastKeys);
        expect(lastKeys, `seed ${seed} step ${step}`).toEqual(want);
        lastMap = sortedLike(names, lastMap);
        expect([...lastMap.keys()], `seed ${seed} step ${step}`).toEqual(want);
        for (const [k, v] of lastMap) expect(v).toBe(names.get(k));
      }
    }
  });
});
