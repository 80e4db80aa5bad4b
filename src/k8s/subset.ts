// A subset of an informer's cache kept as its events come (client-go's indexers, for one index value):
// the pods scheduled to this node, say. Listing the informer copies every object of the cluster (its
// list() builds a new array of 5,000 or 50,000 pods), which the periodic resync did for the 50 that
// matter; a subset answers with what matches and changes only when an event changes it.
import type { KubernetesObject } from '@kubernetes/client-node';

export class CacheSubset<T extends KubernetesObject> {
  private readonly matches: (object: T) => boolean;
  private readonly objects = new Map<string, T>();
  private listed: readonly T[] | undefined;
  /** Bumped on every change of the subset: a reader compares it to skip its work. */
  version = 0;

  constructor(matches: (object: T) => boolean) {
    this.matches = matches;
  }

  /** The objects that match, in no particular order; the same array while nothing changed. */
  list(): readonly T[] {
    this.listed ??= [...this.objects.values()];
    return this.listed;
  }

  get size(): number {
    return this.objects.size;
  }

  /** An added or updated object (it may have stopped matching: a label, a phase). */
  put(object: T): void {
    const key = keyOf(object);
    if (this.matches(object)) {
      if (this.objects.get(key) === object) return;
      this.objects.set(key, object);
      this.changed();
    } else if (this.objects.delete(key)) {
      this.changed();
    }
  }

  /** A deleted object: only its metadata is read (a watch's DELETED may carry no more). */
  delete(object: T): void {
    if (this.objects.delete(keyOf(object))) this.changed();
  }

  /** Forgets everything (the informer's cache was replaced by an empty one). */
  clear(): void {
    if (this.objects.size === 0) return;
    this.objects.clear();
    this.changed();
  }

  private changed(): void {
    this.listed = undefined;
    this.version++;
  }
}

const keyOf = (o: KubernetesObject): string => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
