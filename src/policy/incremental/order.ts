// Sorted names kept from one pass to the next: a change adds or removes a few of ~1,000 names (chains,
// sets, peers), and sorting all of them again every time was a measurable part of a change's work
// (issue 18: work proportional to the change). Code-unit order, as `<` and Array.prototype.sort give.

/** More new names than this since the last order: sorted whole instead of merged into it. */
const MERGE_NEW_MAX = 64;

const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The keys of `now` in sorted order, taken from `last` (sorted, possibly with keys `now` lacks): only
 * the keys `last` lacks are sorted and merged in.
 */
export function sortedKeys(now: ReadonlyMap<string, unknown>, last: readonly string[] | undefined): string[] {
  if (!last) return [...now.keys()].sort(byText);
  const had = new Set(last);
  const fresh: string[] = [];
  for (const k of now.keys()) {
    if (had.has(k)) continue;
    fresh.push(k);
    if (fresh.length > MERGE_NEW_MAX) return [...now.keys()].sort(byText);
  }
  return mergeSorted(now, last, fresh.sort(byText));
}

/** `m` as a new map sorted by key, taking the order from `last` (a map sorted by key) as sortedKeys. */
export function sortedLike<V>(
  m: ReadonlyMap<string, V>,
  last: ReadonlyMap<string, unknown> | undefined,
): Map<string, V> {
  const fresh: string[] = [];
  if (last)
    for (const k of m.keys()) {
      if (last.has(k)) continue;
      fresh.push(k);
      if (fresh.length > MERGE_NEW_MAX) break;
    }
  const keys =
    !last || fresh.length > MERGE_NEW_MAX
      ? [...m.keys()].sort(byText)
      : mergeSorted(m, last.keys(), fresh.sort(byText));
  const out = new Map<string, V>();
  for (const k of keys) out.set(k, m.get(k) as V);
  return out;
}

/** The keys of `last` that `now` has, with `fresh` (sorted, none in `last`) merged in. */
function mergeSorted(now: ReadonlyMap<string, unknown>, last: Iterable<string>, fresh: readonly string[]): string[] {
  const out: string[] = [];
  let j = 0;
  for (const k of last) {
    if (!now.has(k)) continue;
    for (; j < fresh.length && (fresh[j] as string) < k; j++) out.push(fresh[j] as string);
    out.push(k);
  }
  for (; j < fresh.length; j++) out.push(fresh[j] as string);
  return out;
}
