// A map of the last table that a change alters in a few names (a policy change's pods, a flat CNP
// group or two): kept by reference when none changed, otherwise made in one pass over the last map
// in its (sorted) order with the new names merged in, rather than copied whole to be changed and
// then copied again to be sorted (two ~1,000-entry maps per kind and change at bench section 7's
// 100 ClusterNetworkPolicies: most of a patched render's garbage).

const GONE: unique symbol = Symbol('gone');

export class MapPatch<V> {
  private readonly changes = new Map<string, V | typeof GONE>();
  private readonly base: ReadonlyMap<string, V>;

  /** `base`: sorted by key in code-unit order (as sortedLike gives); values are never undefined. */
  constructor(base: ReadonlyMap<string, V>) {
    this.base = base;
  }

  get(name: string): V | undefined {
    const c = this.changes.get(name);
    if (c === GONE) return undefined;
    return c !== undefined ? c : this.base.get(name);
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  set(name: string, value: V): this {
    if (this.base.get(name) === value) this.changes.delete(name);
    else this.changes.set(name, value);
    return this;
  }

  delete(name: string): boolean {
    const had = this.has(name);
    if (this.base.has(name)) this.changes.set(name, GONE);
    else this.changes.delete(name);
    return had;
  }

  /** The names of the base (those the patch took out included), in its order. */
  baseKeys(): IterableIterator<string> {
    return this.base.keys();
  }

  /** The patched map, sorted by key: the base itself when nothing changed. */
  result(): ReadonlyMap<string, V> {
    if (this.changes.size === 0) return this.base;
    const fresh: string[] = [];
    this.changes.forEach((v, name) => {
      if (v !== GONE && !this.base.has(name)) fresh.push(name);
    });
    fresh.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const out = new Map<string, V>();
    let j = 0;
    const put = (name: string) => out.set(name, this.changes.get(name) as V);
    this.base.forEach((v, name) => {
      for (; j < fresh.length && (fresh[j] as string) < name; j++) put(fresh[j] as string);
      const c = this.changes.get(name);
      if (c !== GONE) out.set(name, c === undefined ? v : c);
    });
    for (; j < fresh.length; j++) put(fresh[j] as string);
    return out;
  }
}
