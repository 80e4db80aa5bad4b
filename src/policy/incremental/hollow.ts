// The model's peers as a pod's render reads them: their meaning without members (render.ts names a
// peer's sets by its id and matches on its meaning; the members are the sets' elements, listed apart).
// A view over the model's peers, each hollow set made once and kept while its id is named: a change
// that adds or drops a peer (a new ClusterNetworkPolicy's) makes no map of every peer (~1,500 at
// bench section 7's shape) for the few pods it renders again.
import type { PeerSet } from '../types.ts';

export class HollowPeers implements ReadonlyMap<string, PeerSet> {
  private peers: ReadonlyMap<string, PeerSet> = new Map();
  private readonly kept = new Map<string, PeerSet>();

  /** This view over `peers` (the model's), its kept hollow sets pruned when most are of gone ids. */
  over(peers: ReadonlyMap<string, PeerSet>): this {
    this.peers = peers;
    if (this.kept.size > 2 * peers.size + 64)
      for (const id of [...this.kept.keys()]) if (!peers.has(id)) this.kept.delete(id);
    return this;
  }

  get size(): number {
    return this.peers.size;
  }

  has(id: string): boolean {
    return this.peers.has(id);
  }

  get(id: string): PeerSet | undefined {
    const set = this.peers.get(id);
    if (!set) return undefined;
    let h = this.kept.get(id);
    if (!h) {
      h = { id, meaning: set.meaning, v4: [], v6: [], intervals: [] };
      this.kept.set(id, h);
    }
    return h;
  }

  forEach(fn: (value: PeerSet, key: string, map: ReadonlyMap<string, PeerSet>) => void): void {
    this.peers.forEach((_, id) => fn(this.get(id) as PeerSet, id, this));
  }

  *entries(): MapIterator<[string, PeerSet]> {
    for (const id of this.peers.keys()) yield [id, this.get(id) as PeerSet];
  }

  keys(): MapIterator<string> {
    return this.peers.keys();
  }

  *values(): MapIterator<PeerSet> {
    for (const id of this.peers.keys()) yield this.get(id) as PeerSet;
  }

  [Symbol.iterator](): MapIterator<[string, PeerSet]> {
    return this.entries();
  }
}
