// Over 400 lines: the applier's diff, rebuild and drift paths share one state (what was applied, its
// generation) and are read together.
// The generic applier of an owned layout: the thin shell between a desired state (NetworkPolicy's
// compiled table today; DESIGN.md "nftables", STYLE.md "compiler, diff, applier") and the kernel. A
// Layout declares what it owns in Strand's table `inet strand` (its prefix, and exact names), and the
// applier touches nothing else: every transaction it sends is limited to those names.
//
//  - Every change is one `nft -f` transaction, all of it or none of it (nf_tables commits a batch as
//    a whole: packets see the old ruleset or the new one, never a mixture).
//  - It keeps the state it applied last and sends only the difference (the layout's diff).
//  - A failed transaction, drift (someone flushed or deleted the table, deleted an owned chain, or
//    flushed an owned chain's rules) and the agent's start all lead to the same rebuild: one
//    transaction that flushes every owned chain and map it finds, deletes the stale ones and adds the
//    whole desired state. Because it is one transaction there is no moment in which an isolated pod
//    is open: an agent restart or upgrade never deletes the table and adds it back.
//  - Drift is looked for cheaply (the agent: every 10 s, not on the path of a change): a generation
//    marker (a chain that nothing jumps to, holding one rule whose comment every transaction bumps;
//    `nft flush table` empties chains but not sets, so the marker is a rule, not a set element) and
//    the names of the chains (`nft -j list chains`, no rules), a small fraction of listing the whole
//    table with its rules. The whole table is compared (rule counts per chain) only every FULL_CHECK_MS.
//    Over a transport that reads nf_tables itself (NftTransport.probe, the netlink transport), drift is
//    the generation and the owned chains' digests instead (drift.ts): one request when nothing changed,
//    one rule dump when anything did, so a flushed chain or one deleted rule is found at the next check.
//  - An nft failure is logged with the offending line, counted, and followed by the rebuild; while
//    no transaction has succeeded since, `problem` says why (the agent's /readyz reason).
import type { Logger } from '../log.ts';
import { DigestWatch, type DriftStats } from './drift.ts';
import { isNftError } from './errors.ts';
import { counter } from './expr.ts';
import { emptyTableState, type Chain, type NftMap, type NftSet, type TableState } from './objects.ts';
import { owns, Transaction, type Ownership } from './transaction.ts';
import type { NftTransport, StandinPair, TransactionTemplate } from './transport.ts';
import { nextTurn } from '../util/sliced.ts';

/** A diff encoded ahead by templateAhead: the generation it follows and the diff (with its stand-ins). */
export interface AheadTemplateOf {
  generation: number;
  diff: Transaction;
  encoded: TransactionTemplate;
}

/** A template with the real addresses (by stand-in) applyAhead sends it with. */
export interface AheadTemplate extends AheadTemplateOf {
  real: ReadonlyMap<string, string>;
}

/** The longest the applier holds the event loop while it prepares a large transaction (issue 18).
 * 15, not 20: a scavenge or the last operation's overrun on top of a slice made 28-31 ms tasks in a
 * rebuild at 50,000 pods, against a budget of 30. */
export const SLICE_MS = 15;

/** How the applier reads a desired state `D` (e.g. the policy compiler's output for this node). */
export interface Layout<D> {
  /** Every chain, set and map of the layout is named with this prefix, e.g. "agent-pol-": the applier
   * flushes and deletes what starts with it, and nothing else but `names` and its marker chain. */
  readonly prefix: string;
  /** Exact names the layout owns besides those of its prefix. */
  readonly names?: readonly string[];
  /** One transaction that turns the applied `from` into `to`; empty when they are the same. */
  diff(from: D, to: D): Transaction;
  /**
   * The whole of `to` (table, chains, sets, maps, rules, elements). The applier has flushed what
   * exists and deleted what is stale or incompatible first: `remaining` is what is left of the layout's
   * objects then (all of them empty), so this only adds.
   */
  fullBuild(to: D, remaining: TableState): Transaction;
  /** fullBuild for a large state, awaiting `breathe` between slices of its work (rebuilds use it when
   * given, so that building 64,000 operations does not hold the event loop). */
  fullBuildAsync?(to: D, remaining: TableState, breathe: () => Promise<void>): Promise<Transaction>;
  /** The chains, sets and maps of `to`, with the number of rules each chain holds. */
  inventory(to: D): LayoutInventory;
  /** How a listed table differs from the applied `to` (empty: not at all), for the periodic full
   * check; without it, rule counts per chain are compared. */
  compare?(to: D, actual: TableState): string[];
}

export interface LayoutInventory {
  chains: { chain: Chain; rules: number }[];
  sets: (NftSet | NftMap)[];
}

export type ApplyKind = 'diff' | 'rebuild' | 'none';
export type RebuildReason = 'start' | 'drift' | 'failure' | 'retry';

export interface ApplyReport {
  kind: ApplyKind;
  /** Why a rebuild was made. */
  reason?: RebuildReason;
  /** Lines (commands) of the transaction and the bytes sent (netlink messages over netlink, the
   * `nft -f` script through the process); 0 for none. */
  lines: number;
  bytes: number;
  ms: number;
}

/** What the applier counts (the policy enforcer's metrics fill them in for /metrics). */
export interface ApplierHooks {
  transaction?(kind: 'diff' | 'rebuild', lines: number, bytes: number): void;
  rebuild?(reason: RebuildReason): void;
  failure?(kind: 'diff' | 'rebuild'): void;
}

/** The whole table is compared with the applied state this often (rule counts per chain). */
export const FULL_CHECK_MS = 5 * 60_000;

/** Even the rebuild failed: the kernel keeps what it had (transactions are all or nothing). */
export class LayoutApplyError extends Error {
  override name = 'LayoutApplyError';
}

export interface LayoutApplierOptions<D> {
  nft: NftTransport;
  layout: Layout<D>;
  log: Logger;
  hooks?: ApplierHooks;
  fullCheckMs?: number;
  /** The marker's name, by default `<prefix>generation`; it must not be one of the layout's names (a
   * layout that replaces every object of its prefix would remove it). */
  markerChain?: string;
  /** What the layout's state is called in log lines and problems, e.g. "policy rules". */
  what?: string;
  /** Awaited between slices of a large transaction's preparation (default: setImmediate). */
  breathe?: () => Promise<void>;
}

/** What one transaction sent, and (rebuilds) where its time went. */
interface Sent {
  bytes: number;
  encodeMs?: number;
  commitMs?: number;
  slices?: number;
}

export class LayoutApplier<D> {
  readonly markerChain: string;
  /** What the applier's transactions may touch: the layout's prefix and names, and the marker. */
  readonly ownership: Ownership;
  private readonly nft: NftTransport;
  private readonly layout: Layout<D>;
  private readonly log: Logger;
  private readonly hooks: ApplierHooks;
  private readonly fullCheckMs: number;
  private applied: D | undefined;
  private appliedChains: string[] = [];
  private generation = 0;
  private lastFullCheck = 0;
  private failing: string | undefined;
  private rebuildReason: RebuildReason | undefined;
  private readonly what: string;
  private readonly watch: DigestWatch | undefined;
  private readonly breathe: () => Promise<void>;

  constructor(opts: LayoutApplierOptions<D>) {
    this.nft = opts.nft;
    this.layout = opts.layout;
    this.log = opts.log;
    this.hooks = opts.hooks ?? {};
    this.fullCheckMs = opts.fullCheckMs ?? FULL_CHECK_MS;
    this.what = opts.what ?? 'policy rules';
    this.failing = `${this.what} not applied yet`;
    this.markerChain = opts.markerChain ?? `${opts.layout.prefix}generation`;
    this.ownership = { prefixes: [opts.layout.prefix], names: [...(opts.layout.names ?? []), this.markerChain] };
    this.watch = opts.nft.probe ? new DigestWatch(opts.nft.probe) : undefined;
    this.breathe = opts.breathe ?? nextTurn;
  }

  /**
   * Runs a transaction, all of it or none of it. A transport that can (netlink) prepares it in slices
   * and counts the bytes it sent; otherwise the `nft -f` script's bytes are counted (the process
   * transport renders it anyway). The commit itself is one step either way.
   */
  private async send(tx: Transaction): Promise<Sent> {
    if (this.nft.runSliced) {
      const r = await this.nft.runSliced(tx, this.breathe, SLICE_MS);
      return { bytes: r.bytes, encodeMs: r.encodeMs, commitMs: r.commitMs, slices: r.slices };
    }
    await this.nft.run(tx);
    return { bytes: Buffer.byteLength(tx.render(this.nft.table)) };
  }

  /** How the drift checks were answered (undefined without a probing transport). */
  get driftStats(): DriftStats | undefined {
    return this.watch?.stats;
  }

  /** Why the desired rules are not in the kernel now; undefined when the last apply succeeded. */
  get problem(): string | undefined {
    return this.failing;
  }

  /** The state last applied (undefined before the first success, or after a failed rebuild). */
  get current(): D | undefined {
    return this.applied;
  }

  /**
   * Brings the kernel to `desired`: the difference from what was applied, or a rebuild at the first
   * call, after drift, or when the difference fails. Throws LayoutApplyError when even the rebuild
   * fails (the kernel then holds what it held before: transactions are all or nothing).
   * `checkDrift: false` skips the look for drift (the caller looks periodically): listing the marker
   * chain makes nft load the table's rules, 50–80 ms with 10,000 of them, on the path of every change.
   */
  async apply(desired: D, opts: { checkDrift?: boolean } = {}): Promise<ApplyReport> {
    const started = performance.now();
    if (this.applied === undefined)
      return this.rebuild(desired, this.rebuildReason ?? (this.generation === 0 ? 'start' : 'retry'), started);
    const drift = opts.checkDrift === false ? undefined : await this.drift();
    if (drift) {
      this.log.warn({ drift }, `${this.what} changed behind the agent's back (${drift}): rebuilding them`);
      return this.rebuild(desired, 'drift', started);
    }
    const diff = this.layout.diff(this.applied, desired);
    if (diff.empty) return { kind: 'none', lines: 0, bytes: 0, ms: performance.now() - started };
    let report: ApplyReport;
    try {
      report = await this.sendDiff(diff, started);
    } catch (err) {
      this.logFailure(err, `the ${this.what} update failed; rebuilding every object of the layout in one transaction`);
      return this.rebuild(desired, 'failure', started);
    }
    this.remember(desired);
    return report;
  }

  /** A diff with the next marker, as one transaction; the failure counted and thrown (the kernel as it was). */
  private async sendDiff(diff: Transaction, started: number): Promise<ApplyReport> {
    const tx = this.withMarker(diff, this.generation + 1);
    return this.sentDiff(tx, started, await this.counted(() => this.send(tx)));
  }

  /** `send`'s result; its failure counted and thrown. */
  private async counted<T>(send: () => T | Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (err) {
      this.hooks.failure?.('diff');
      throw err;
    }
  }

  /** The bookkeeping of a diff `tx` sent (its marker the next generation's). */
  private sentDiff(tx: Transaction, started: number, sent: Sent): ApplyReport {
    this.generation++;
    this.watch?.applied(tx.operations);
    const lines = tx.operations.length;
    this.hooks.transaction?.('diff', lines, sent.bytes);
    return { kind: 'diff', lines, bytes: sent.bytes, ms: performance.now() - started };
  }

  /**
   * Sends `diff`, the layout's diff from the state applied to one the caller has not built yet (a
   * pod-start bind computed before its notice: the answer waits for the kernel, not for the
   * bookkeeping). The caller then says what the kernel holds, record(desired), or invalidate(),
   * before anything else is applied. Throws on failure; the kernel is then as it was (all or nothing).
   * With `template` (templateAhead) still fitting, its bytes are sent with the real addresses written
   * in, and `diff` is not made at all. `committed` is called once the kernel holds it, and the event
   * loop turns before the applier's own bookkeeping (the caller's answer goes out first).
   */
  async applyAhead(
    diff: () => Transaction,
    template: AheadTemplate | undefined,
    committed: () => void,
  ): Promise<ApplyReport> {
    const started = performance.now();
    if (this.applied === undefined) throw new Error(`${this.what} not applied yet`);
    const next = this.generation + 1;
    // The answer, then what the applier records of the transaction (made only now).
    const answered = async (sent: Sent, tx: () => Transaction): Promise<ApplyReport> => {
      committed();
      await nextTurn();
      return this.sentDiff(tx(), started, sent);
    };
    if (template?.generation === this.generation) {
      const sent = await this.counted(() => template.encoded.run(template.real));
      // What the drift watch and the metrics read of it (chains, counts) is the same with the stand-ins.
      if (sent) return answered(sent, () => this.withMarker(template.diff, next));
    }
    const tx = this.withMarker(diff(), next);
    return answered(await this.counted(() => this.send(tx)), () => tx);
  }

  /**
   * A diff for applyAhead encoded now, its stand-in addresses to be replaced then (NftTransport.template:
   * `a` and `b` the same diff with each pair's `a`, then its `b`). Valid while nothing else is applied;
   * undefined where the transport cannot.
   */
  templateAhead(a: Transaction, b: Transaction, standins: readonly StandinPair[]): AheadTemplateOf | undefined {
    if (!this.nft.template || this.applied === undefined) return undefined;
    const next = this.generation + 1;
    const encoded = this.nft.template(this.withMarker(a, next), this.withMarker(b, next), standins);
    return encoded && { generation: this.generation, diff: a, encoded };
  }

  /** What the kernel holds after applyAhead: the state its diff led to. */
  record(desired: D): void {
    this.remember(desired);
  }

  /**
   * What differs between the kernel and the applied state, cheaply; undefined when nothing does.
   * Every FULL_CHECK_MS the whole table is read as well.
   */
  async drift(): Promise<string | undefined> {
    if (this.applied === undefined) return 'nothing applied yet';
    if (this.watch) {
      const inv = this.layout.inventory(this.applied);
      const chains = [
        ...inv.chains.map((c) => ({ name: c.chain.name, rules: c.rules })),
        { name: this.markerChain, rules: 1 },
      ];
      return this.watch.check({ chains, sets: inv.sets.map((s) => s.name) });
    }
    const s = await this.nft.summary([this.markerChain]);
    if (!s.exists) return `table ${this.nft.table.family} ${this.nft.table.name} is gone`;
    const marker = s.rules.get(this.markerChain);
    if (marker === undefined) return `the marker chain ${this.markerChain} is gone`;
    if (marker.length !== 1 || marker[0] !== markerComment(this.generation)) {
      return `the marker chain ${this.markerChain} holds [${marker.join(', ')}], not [${markerComment(this.generation)}] (flushed?)`;
    }
    const missing = this.appliedChains.filter((c) => !s.chains.has(c));
    if (missing.length > 0)
      return `chain${missing.length > 1 ? 's' : ''} ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''} gone`;
    if (Date.now() - this.lastFullCheck >= this.fullCheckMs) {
      this.lastFullCheck = Date.now();
      return this.compareFully(await this.nft.list(), this.applied);
    }
    return undefined;
  }

  /** Forgets what was applied: the next apply rebuilds (drift found by the caller, or state unknown). */
  invalidate(reason: RebuildReason = 'retry'): void {
    this.applied = undefined;
    this.rebuildReason = reason;
  }

  private compareFully(actual: TableState, applied: D): string | undefined {
    if (this.layout.compare) {
      const differences = this.layout.compare(applied, actual);
      return differences.length > 0 ? differences.slice(0, 3).join('; ') : undefined;
    }
    const inv = this.layout.inventory(applied);
    for (const { chain, rules } of inv.chains) {
      const got = actual.chains.get(chain.name);
      if (!got) return `chain ${chain.name} gone`;
      if (got.rules.length !== rules) return `chain ${chain.name} holds ${got.rules.length} rules, not ${rules}`;
    }
    for (const s of inv.sets)
      if (!(s.kind === 'map' ? actual.maps : actual.sets).has(s.name)) return `${s.kind} ${s.name} gone`;
    return undefined;
  }

  private async rebuild(desired: D, reason: RebuildReason, started: number): Promise<ApplyReport> {
    let tx: Transaction;
    let sent: Sent;
    const times: Record<string, number> = {};
    try {
      let at = performance.now();
      const lap = (what: string) => {
        const now = performance.now();
        times[what] = Math.round(now - at);
        at = now;
      };
      const actual = await this.nft.list();
      lap('listMs');
      const next = this.generation + 1;
      tx = await this.rebuildTransactionAsync(actual, desired, next);
      lap('buildMs');
      sent = await this.send(tx);
      if (sent.encodeMs !== undefined) times.encodeMs = Math.round(sent.encodeMs);
      if (sent.commitMs !== undefined) times.commitMs = Math.round(sent.commitMs);
      if (sent.slices !== undefined) times.slices = sent.slices;
      this.generation = next;
      this.watch?.rebuiltNow();
    } catch (err) {
      this.hooks.failure?.('rebuild');
      this.applied = undefined;
      const why = this.logFailure(
        err,
        `rebuilding the ${this.what} failed; the kernel keeps the rules it had, retrying`,
      );
      this.failing = `${this.what} not applied: ${why}`;
      throw new LayoutApplyError(`rebuilding the ${this.what} failed: ${why}`, { cause: err });
    }
    this.remember(desired);
    this.rebuildReason = undefined;
    this.lastFullCheck = Date.now();
    const lines = tx.operations.length;
    const bytes = sent.bytes;
    this.hooks.transaction?.('rebuild', lines, bytes);
    this.hooks.rebuild?.(reason);
    this.log.info(
      { reason, commands: lines, bytes, generation: this.generation, ...times },
      `${this.what} rebuilt in one transaction`,
    );
    return { kind: 'rebuild', reason, lines, bytes, ms: performance.now() - started };
  }

  /**
   * One transaction from whatever the table holds to `desired`: every owned chain and map that
   * exists is flushed first (so no rule or verdict refers to what goes next), stale and incompatible
   * ones are deleted, then the layout's full build adds everything and the marker records `generation`.
   */
  rebuildTransaction(actual: TableState, desired: D, generation: number): Transaction {
    const { tx, remaining } = this.rebuildStart(actual, desired);
    tx.append(this.layout.fullBuild(desired, remaining));
    this.rebuildEnd(tx, actual, generation);
    return tx;
  }

  /** rebuildTransaction, with the layout's full build in slices when the layout can. */
  private async rebuildTransactionAsync(actual: TableState, desired: D, generation: number): Promise<Transaction> {
    if (!this.layout.fullBuildAsync) return this.rebuildTransaction(actual, desired, generation);
    const { tx, remaining } = this.rebuildStart(actual, desired);
    const full = await this.layout.fullBuildAsync(desired, remaining, this.breathe);
    // Appending checks each operation's name against the ownership: 64,000 of them, also in slices.
    const n = full.operations.length;
    for (let i = 0; i < n; i += 4096) {
      tx.append(full, i, i + 4096);
      if (i + 4096 < n) await this.breathe();
    }
    this.rebuildEnd(tx, actual, generation);
    return tx;
  }

  /** The rebuild's first part: flushes and deletions of what exists; what is left of the layout. */
  private rebuildStart(actual: TableState, desired: D): { tx: Transaction; remaining: TableState } {
    const prefix = this.layout.prefix;
    const names = new Set(this.layout.names ?? []);
    const inv = this.layout.inventory(desired);
    const wantChains = new Map(inv.chains.map((c) => [c.chain.name, c.chain]));
    const wantSets = new Map(inv.sets.map((s) => [s.name, s]));
    const tx = this.ownedTransaction();
    if (!actual.exists) tx.add({ kind: 'table' });
    const mine = <T extends { name: string }>(xs: Iterable<T>) => [...xs].filter((x) => owns(this.ownership, x.name));
    const layouts = (name: string) => name.startsWith(prefix) || names.has(name);
    const chains = mine(actual.chains.values());
    const maps = mine(actual.maps.values());
    const sets = mine(actual.sets.values());
    for (const c of chains) tx.flush({ kind: 'chain', name: c.name });
    for (const m of maps) tx.flush({ kind: 'map', name: m.name });
    wantChains.set(this.markerChain, { kind: 'chain', name: this.markerChain });
    const setGoes = (s: (typeof sets)[number], kind: 'set' | 'map') => {
      const want = wantSets.get(s.name);
      if (!want || want.kind !== kind) return true;
      const flags = (f: readonly string[] | undefined) => [...(f ?? [])].sort().join();
      return (
        want.type !== s.type ||
        flags(want.flags) !== flags(s.flags) ||
        (want.kind === 'map' && 'value' in s && want.value !== s.value)
      );
    };
    const remaining = emptyTableState();
    remaining.exists = true;
    for (const m of maps) {
      if (setGoes(m, 'map')) tx.delete({ kind: 'map', name: m.name });
      else if (layouts(m.name)) remaining.maps.set(m.name, { ...m, elements: [] });
    }
    for (const c of chains) {
      const want = wantChains.get(c.name);
      const base = (b: Chain['base']) => (b ? `${b.type}/${b.hook}/${b.priority}/${b.policy ?? 'accept'}` : '');
      // A base chain's type, hook or priority cannot change in place (EOPNOTSUPP): remake it.
      if (!want || base(want.base) !== base(c.base)) tx.delete({ kind: 'chain', name: c.name });
      else if (layouts(c.name)) remaining.chains.set(c.name, { ...c, rules: [] });
    }
    for (const s of sets) {
      if (setGoes(s, 'set')) tx.delete({ kind: 'set', name: s.name });
      else {
        tx.flush({ kind: 'set', name: s.name });
        remaining.sets.set(s.name, { ...s, elements: [] });
      }
    }
    return { tx, remaining };
  }

  /** The rebuild's last part: the marker chain and its rule for `generation`. */
  private rebuildEnd(tx: Transaction, actual: TableState, generation: number): void {
    tx.add({
      kind: 'chain',
      name: this.markerChain,
      comment: `generation of the ${this.what} (strand agent); never jumped to`,
    });
    this.addMarker(tx, generation, actual.chains.has(this.markerChain));
  }

  /** The marker chain's one rule, for `generation`; the chain is flushed first unless it is new. */
  private addMarker(tx: Transaction, generation: number, flush = true): void {
    if (flush) tx.flush({ kind: 'chain', name: this.markerChain });
    // A counter, not a verdict: a rule with a verdict (or a lookup) makes the kernel validate the
    // table's whole jump graph at the commit, 1.5 ms at 50,000 pods, which a change that only deletes
    // rules or changes elements then paid for the marker alone. Nothing jumps to the chain.
    tx.add({ kind: 'rule', chain: this.markerChain, body: [counter()], comment: markerComment(generation) });
  }

  private remember(desired: D): void {
    this.applied = desired;
    this.appliedChains = this.layout.inventory(desired).chains.map((c) => c.chain.name);
    this.failing = undefined;
  }

  /** `diff` in an owned transaction, followed by the marker of `generation`. */
  private withMarker(diff: Transaction, generation: number): Transaction {
    const tx = this.ownedTransaction();
    tx.append(diff);
    this.addMarker(tx, generation);
    return tx;
  }

  private ownedTransaction(): Transaction {
    return new Transaction({ owner: this.ownership });
  }

  /** Logs an nft failure with the line nft complained about; returns a one-line reason. */
  private logFailure(err: unknown, message: string): string {
    if (isNftError(err)) {
      this.log.error(
        {
          reason: err.reason,
          line: err.line,
          failingCommand: err.failingCommand,
          detail: err.detail,
          netns: err.netns,
        },
        `${message}: ${err.message}`,
      );
      return err.message;
    }
    const text = err instanceof Error ? err.message : String(err);
    this.log.error({ err }, `${message}: ${text}`);
    return text;
  }
}

function markerComment(generation: number): string {
  return `generation ${generation}`;
}
