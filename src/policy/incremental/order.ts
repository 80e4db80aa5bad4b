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

/** Strings sorted in runs of this many between two looks at the slice's time. */
const SORT_RUN = 4096;

/**
 * `items` sorted (code-unit order) without duplicates, in steps that call `slice` between them: a
 * pods peer of every namespace holds 50,000 addresses, whose one sort was ~25 ms of a single task.
 * Runs sorted apart, then merged two by two. `items` is sorted in place (the caller's scratch list).
 */
export function* sortedUniqueSliced(
  items: string[],
  slice: () => Generator<void, void, void>,
): Generator<void, string[], void> {
  if (items.length <= SORT_RUN) return unique(items.sort());
  let runs: string[][] = [];
  for (let at = 0; at < items.length; at += SORT_RUN) {
    runs.push(unique(items.slice(at, at + SORT_RUN).sort()));
    yield* slice();
  }
  while (runs.length > 1) {
    const next: string[][] = [];
    for (let i = 0; i < runs.length; i += 2) {
      const a = runs[i] as string[];
      const b = runs[i + 1];
      next.push(b === undefined ? a : mergeUnique(a, b));
      yield* slice();
    }
    runs = next;
  }
  return runs[0] as string[];
}

/** A sorted list without its repeats, in place. */
function unique(sorted: string[]): string[] {
  let n = 0;
  for (let i = 0; i < sorted.length; i++) if (i === 0 || sorted[i] !== sorted[n - 1]) sorted[n++] = sorted[i] as string;
  sorted.length = n;
  return sorted;
}

/** Two sorted lists without repeats merged into one without repeats. */
function mergeUnique(a: readonly string[], b: readonly string[]): string[] {
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const x = a[i] as string;
    const y = b[j] as string;
    if (x < y) {
      out.push(x);
      i++;
    } else if (y < x) {
      out.push(y);
      j++;
    } else {
      out.push(x);
      i++;
      j++;
    }
  }
  while (i < a.length) out.push(a[i++] as string);
  while (j < b.length) out.push(b[j++] as string);
  return out;
}
