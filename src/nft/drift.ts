// Drift of an owned layout found by the kernel's own bookkeeping, for transports that read nf_tables
// directly (NftTransport.probe): the namespace's generation is bumped by every committed transaction,
// by anyone, so an unchanged generation means nothing changed (one small request). When it moved, one
// dump of the table's rules gives each chain's rule count and a digest of its rules (handles,
// expressions, comments; not counter values): the owned chains are compared with the counts the
// layout declares and with the digests recorded at the last check, and the owned chains, sets and
// maps must all exist. A flushed chain, a deleted, added or edited rule, a deleted chain or set is
// found within one check, whatever the table's size.
//
// Chains the applier changed since the last dump have no recorded digest until the next one: their
// counts are checked then, and their digests recorded. Element changes (`nft flush set`) leave rule
// digests alone and are not looked for here.
import type { Operation } from './transaction.ts';
import type { ChainDigest, DriftProbe } from './transport.ts';

/** What the layout holds now: its chains with their rule counts, and its sets and maps. */
export interface ExpectedLayout {
  chains: ReadonlyArray<{ name: string; rules: number }>;
  sets: readonly string[];
}

export interface DriftStats {
  /** Checks answered by the generation alone. */
  shortcuts: number;
  /** Checks that dumped the table's rules. */
  dumps: number;
}

export class DigestWatch {
  readonly stats: DriftStats = { shortcuts: 0, dumps: 0 };
  /** The generation at which the layout was last seen as expected; undefined: look again. */
  private cleanAt: number | undefined;
  private readonly digests = new Map<string, ChainDigest>();

  private readonly probe: DriftProbe;

  constructor(probe: DriftProbe) {
    this.probe = probe;
  }

  /** After one of the applier's transactions: the generation moved, and so did these chains' digests. */
  applied(ops: readonly Operation[] | 'all'): void {
    this.cleanAt = undefined;
    if (ops === 'all') {
      this.digests.clear();
      return;
    }
    for (const o of ops) {
      const obj = o.object;
      if (obj.kind === 'rule') this.digests.delete(obj.chain);
      else if (obj.kind === 'chain') this.digests.delete(obj.name);
    }
  }

  /** How the kernel differs from `expected` (undefined: it does not). */
  async check(expected: ExpectedLayout): Promise<string | undefined> {
    if (this.cleanAt !== undefined && (await this.probe.generation()) === this.cleanAt) {
      this.stats.shortcuts++;
      return undefined;
    }
    this.stats.dumps++;
    const snap = await this.probe.snapshot();
    if (!snap.exists) return 'the table is gone';
    const missingChains = expected.chains.filter((c) => !snap.chains.has(c.name)).map((c) => c.name);
    if (missingChains.length > 0) return `chain${missingChains.length > 1 ? 's' : ''} ${list(missingChains)} gone`;
    const missingSets = expected.sets.filter((s) => !snap.sets.has(s));
    if (missingSets.length > 0)
      return `set${missingSets.length > 1 ? 's' : ''} or map${missingSets.length > 1 ? 's' : ''} ${list(missingSets)} gone`;
    for (const c of expected.chains) {
      const got = snap.digests.get(c.name);
      const count = got?.count ?? 0;
      if (count !== c.rules) return `chain ${c.name} holds ${count} rule${count === 1 ? '' : 's'}, not ${c.rules}`;
      const known = this.digests.get(c.name);
      if (known && got && known.digest !== got.digest) return `the rules of chain ${c.name} were changed`;
    }
    this.digests.clear();
    for (const c of expected.chains) {
      const got = snap.digests.get(c.name);
      if (got) this.digests.set(c.name, got);
    }
    this.cleanAt = snap.generation;
    return undefined;
  }

  /** Forget everything: the next check dumps and records afresh (after a rebuild). */
  reset(): void {
    this.applied('all');
  }
}

function list(names: readonly string[]): string {
  return `${names.slice(0, 5).join(', ')}${names.length > 5 ? ', …' : ''}`;
}
