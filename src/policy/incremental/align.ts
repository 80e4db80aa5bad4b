// What changed between two lists of informer objects, found by identity: an informer replaces an
// object on every change, keeps a replaced one in its place, drops a deleted one and adds new ones at
// the end, so the objects both lists hold are in the same order. One pointer comparison per place
// walks both lists; only the places where they differ are looked up (`had`: the members of `prev`).
// A pod deleted from the middle of 50,000 is one object out, not 50,000 moved ones.

/** The objects `next` has and `prev` had not (`ins`, in `next`'s order), and the reverse (`outs`). */
export interface Aligned<T> {
  ins: T[];
  outs: T[];
}

/**
 * `prev` → `next` as objects out and in; undefined when more than `max` changed or the kept objects
 * are not in the same order (an object met again behind the place reached, or twice): the caller
 * then walks `next` whole.
 */
export function alignLists<T>(
  prev: readonly T[],
  next: readonly T[],
  had: { has(x: T): boolean },
  max: number,
): Aligned<T> | undefined {
  const ins: T[] = [];
  const outs: T[] = [];
  let i = 0;
  let j = 0;
  while (i < next.length || j < prev.length) {
    if (i < next.length && j < prev.length && next[i] === prev[j]) {
      i++;
      j++;
      continue;
    }
    if (i < next.length && !had.has(next[i] as T)) ins.push(next[i++] as T);
    // `next[i]` is one of prev's (or next is at its end): prev[j], not at its place, is gone. Were it
    // further on in `next` after all, the walk would run past prev's end before meeting it there.
    else if (j < prev.length) outs.push(prev[j++] as T);
    else return undefined;
    if (ins.length + outs.length > max) return undefined;
  }
  return { ins, outs };
}

/**
 * `src`'s members copied into `into` (made `src`'s length) and returned, or a new copy when `into` is
 * undefined or `src` itself: the last list kept to align the next one against is refilled in place,
 * not allocated again (a copy of 10,000 or 50,000 references at every change went to the large-object
 * space, and its garbage into the old generation's collections).
 */
export function copyInto<T>(into: T[] | undefined, src: readonly T[]): T[] {
  if (into === undefined || (into as readonly T[]) === src) return src.slice();
  into.length = src.length;
  for (let i = 0; i < src.length; i++) into[i] = src[i] as T;
  return into;
}

/** The keys whose notice addresses differ between `a` and `b`. */
export function changedNotices(
  a: ReadonlyMap<string, readonly string[]> | undefined,
  b: ReadonlyMap<string, readonly string[]> | undefined,
): string[] {
  const out: string[] = [];
  for (const [k, v] of a ?? []) if (!sameItems(v, b?.get(k))) out.push(k);
  for (const k of (b ?? new Map<string, readonly string[]>()).keys()) if (!a?.has(k)) out.push(k);
  return out;
}

function sameItems<T>(a: readonly T[], b: readonly T[] | undefined): boolean {
  return b !== undefined && a.length === b.length && a.every((v, i) => v === b[i]);
}
