// Drift of an owned layout found by the kernel's own bookkeeping, for transports that read nf_tables
// directly (NftTransport.probe): the namespace's generation is bumped by every committed transaction,
// by anyone, so an unchanged generation means nothing changed (one small request). When it moved, one
// dump of the table's rules gives each chain's rule count and a digest of its rules (handles,
// expressions, comments; not counter values): the owned chains are compared with the counts the
// layout declares and with the digests recorded at the last check, and the owned chains, sets and
// maps must all exist. A flushed chain, a deleted, added or edited rule, a deleted chain or set is
// found within one check, whatever the table's size.
//
// The applier's own transactions move the generation too. The generation is read right after each
// of them: when every commit since the last clean check was the applier's own (each moved it by
// exactly one), the kernel holds what the applier wrote, and the check reads only the chains those
// transactions changed (one filtered dump each) to record their digests, instead of the whole table:
// the cost of a check after a change follows the change (issue 18). Any other commit in between (a
// hand edit, another table's transaction) makes the check dump the whole table as before.
//
// A rebuild replaces every owned object in one transaction, so right after it the kernel holds what
// the applier wrote as much as after a change: the generation is read at once, and when it is
// unchanged at the next check, every owned chain's digest is read chain by chain, in slices that give
// the event loop back (at 50,000 pods, 64,000 rules: one dump of them held the loop for 150–380 ms);
// a generation that moved meanwhile makes the check dump the whole table as before.
//
// Chains the applier changed since the last check have no recorded digest until the next one: their
// counts are checked then, and their digests recorded. Element changes (`nft flush set`) leave rule
// digests alone and are not looked for here.
import type { Operation } from './transaction.ts';
import type { ChainDigest, DriftProbe } from './transport.ts';
import { nextTurn } from '../util/sliced.ts';

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
  /** Checks after the applier's own transactions that read only the chains they changed. */
  chainReads: number;
}

/** Past this many changed chains a check reads the whole table (one dump) rather than each chain. */
export const MAX_CHAINS_READ_APART = 64;

/** After a rebuild, chains are read this many at a time, and the loop given back every SLICE_MS. */
export const CHAINS_PER_READ = 16;
const SLICE_MS = 8;

export class DigestWatch {
  readonly stats: DriftStats = { shortcuts: 0, dumps: 0, chainReads: 0 };
  /** The generation at which the layout was last seen as expected; undefined: look again. */
  private cleanAt: number | undefined;
  /**
   * The generation right after the applier's last transaction, when every commit since cleanAt was
   * the applier's own; resolves to undefined when one was not (or the read failed).
   */
  private ownAt: Promise<number | undefined> | undefined;
  /** The chains the applier's transactions changed since cleanAt. */
  private readonly changed = new Set<string>();
  /** A rebuild since cleanAt: every chain changed. */
  private rebuilt = false;
  private readonly digests = new Map<string, ChainDigest>();

  private readonly probe: DriftProbe;
  private readonly breathe: () => Promise<void>;

  constructor(probe: DriftProbe, breathe: () => Promise<void> = nextTurn) {
    this.probe = probe;
    this.breathe = breathe;
  }

  /** After one of the applier's transactions: the generation moved, and so did these chains' digests. */
  applied(ops: readonly Operation[] | 'all'): void {
    if (ops === 'all') {
      this.forget();
      return;
    }
    for (const o of ops) {
      const obj = o.object;
      const chain = obj.kind === 'rule' ? obj.chain : obj.kind === 'chain' ? obj.name : undefined;
      if (chain === undefined) continue;
      this.digests.delete(chain);
      this.changed.add(chain);
    }
    const before = this.ownAt ?? Promise.resolve(this.cleanAt);
    this.cleanAt = undefined;
    // Read now, before anything else can commit: the netlink probe answers synchronously.
    const after = this.probe.generation().catch(() => undefined);
    this.ownAt = Promise.all([before, after]).then(([b, a]) => (b !== undefined && a === b + 1 ? a : undefined));
  }

  /** How the kernel differs from `expected` (undefined: it does not). */
  async check(expected: ExpectedLayout): Promise<string | undefined> {
    if (this.cleanAt !== undefined && (await this.probe.generation()) === this.cleanAt) {
      this.stats.shortcuts++;
      return undefined;
    }
    const own = await this.ownAt;
    if (own !== undefined && this.probe.chainDigests) {
      if (this.rebuilt) {
        const generation = await this.probe.generation();
        if (generation === own) return this.checkRebuilt(expected, generation);
      } else if (this.changed.size <= MAX_CHAINS_READ_APART) {
        const generation = await this.probe.generation();
        if (generation === own) return this.checkChanged(expected, generation);
      }
    }
    return this.checkAll(expected);
  }

  /**
   * Only the applier committed since its rebuild: every owned chain's digest is read, a few chains
   * at a time with the loop given back between slices; a commit meanwhile makes it a whole dump.
   */
  private async checkRebuilt(expected: ExpectedLayout, generation: number): Promise<string | undefined> {
    const read = this.probe.chainDigests;
    if (!read) return this.checkAll(expected);
    const got = new Map<string, ChainDigest>();
    let sliceStart = performance.now();
    for (let i = 0; i < expected.chains.length; i += CHAINS_PER_READ) {
      if (i > 0 && performance.now() - sliceStart >= SLICE_MS) {
        await this.breathe();
        sliceStart = performance.now();
      }
      const names = expected.chains.slice(i, i + CHAINS_PER_READ).map((c) => c.name);
      for (const [name, d] of await read.call(this.probe, names)) got.set(name, d);
    }
    if ((await this.probe.generation()) !== generation || !this.rebuilt) return this.checkAll(expected);
    this.stats.chainReads++;
    for (const c of expected.chains) {
      const count = got.get(c.name)?.count ?? 0;
      if (count !== c.rules) {
        this.forget();
        return `chain ${c.name} holds ${count} rule${count === 1 ? '' : 's'}, not ${c.rules}`;
      }
    }
    this.digests.clear();
    for (const [name, d] of got) this.digests.set(name, d);
    this.clean(generation);
    return undefined;
  }

  /** Only the applier committed since the last clean check: its changed chains' digests are read. */
  private async checkChanged(expected: ExpectedLayout, generation: number): Promise<string | undefined> {
    this.stats.chainReads++;
    const chains = expected.chains.filter((c) => this.changed.has(c.name));
    const got = (await this.probe.chainDigests?.(chains.map((c) => c.name))) ?? new Map<string, ChainDigest>();
    for (const c of chains) {
      const count = got.get(c.name)?.count ?? 0;
      if (count !== c.rules) {
        this.forget();
        return `chain ${c.name} holds ${count} rule${count === 1 ? '' : 's'}, not ${c.rules}`;
      }
    }
    for (const c of chains) {
      const d = got.get(c.name);
      if (d) this.digests.set(c.name, d);
    }
    this.clean(generation);
    return undefined;
  }

  private async checkAll(expected: ExpectedLayout): Promise<string | undefined> {
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
    this.clean(snap.generation);
    return undefined;
  }

  private clean(generation: number): void {
    this.cleanAt = generation;
    this.ownAt = undefined;
    this.rebuilt = false;
    this.changed.clear();
  }

  private forget(): void {
    this.cleanAt = undefined;
    this.ownAt = undefined;
    this.rebuilt = false;
    this.changed.clear();
    this.digests.clear();
  }

  /**
   * Forget everything: the next check dumps and records afresh (the table's state is unknown).
   */
  reset(): void {
    this.applied('all');
  }

  /**
   * Right after the applier's rebuild committed: the generation now is its own, so the next check,
   * if nothing else committed since, reads every owned chain in slices rather than one dump.
   */
  rebuiltNow(): void {
    this.forget();
    this.rebuilt = true;
    this.ownAt = this.probe.generation().catch(() => undefined);
  }
}

function list(names: readonly string[]): string {
  return `${names.slice(0, 5).join(', ')}${names.length > 5 ? ', …' : ''}`;
}
