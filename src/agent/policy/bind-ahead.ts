// A pod-start bind prepared before its notice (issue 17: "at the notice, only bind the address").
// Kubelet creates the Pod before its sandbox, so the agent knows a pod scheduled here (its labels,
// its namespace's policies) before the plugin's notice brings its addresses. Once the rules are
// applied and the loop is quiet, the bind each such pod will need is computed ahead, by the very
// functions the notice's bind runs (bindLocalPod, renderBound, diffShared), with a stand-in address
// per family; the notice then only puts its addresses in place of the stand-ins and sends that
// transaction. The bookkeeping (the model and table with the real addresses) follows the answer, and
// must yield the same transaction (else the applier's record is dropped and the next pass rebuilds).
//
// Why the result is the transaction the notice's own bind would send: the bind is computed twice, with
// two different stand-ins, and kept only when the two transactions are the same once each stand-in is
// replaced by a third (so nothing but those very strings depends on the address: no name, order of
// rules or set membership); at the notice, the basis it was computed from (model, table, prepared
// sets, input, this node's addresses and the pod object) must be the enforcer's current one.
import type { Logger } from '../../log.ts';
import { diffShared, renderBound } from '../../policy/bind-render.ts';
import { bindLocalPod, type Bound, type PreparedSets } from '../../policy/bind.ts';
import type { CompiledPolicy, CompileInput, DesiredPolicyTable, PolicyPod, RenderOptions } from '../../policy/index.ts';
import { knownFamily } from '../../net/text.ts';
import type { AheadTemplateOf } from '../../nft/layout-applier.ts';
import { Transaction, type Operation } from '../../nft/transaction.ts';
import type { StandinPair } from '../../nft/transport.ts';
import type { Clock, Timer } from '../clock.ts';
import { podKey } from '../pod-notices.ts';

/** Binds ahead are computed once the enforcer has applied nothing for this long: under a burst of
 * changes each apply would make them stale again. */
export const AHEAD_QUIET_MS = 20;
/** At most this many pods waiting for their ADD get their bind computed ahead. */
const AHEAD_MAX_PODS = 4;

/** Stand-ins from the reserved 240.0.0.0/4 and the unique-local fd00::/8 that no IPAM range here
 * hands out; a pod that has one anyway makes bindLocalPod refuse (an owned address), so no bind
 * ahead. Two per family, and a third that replaces both in the comparison that proves the address
 * is only substituted (an address too: the transaction checks what it holds). */
const STANDINS: Readonly<Record<4 | 6, readonly [string, string, string]>> = {
  4: ['240.0.0.1', '240.0.0.2', '240.0.0.3'],
  6: ['fdff:ffff:ffff:ffff::1', 'fdff:ffff:ffff:ffff::2', 'fdff:ffff:ffff:ffff::3'],
};

/** The enforcer's state a bind ahead is computed from, and valid for while it is these very objects:
 * the model and table applied, the sets prepared for the waiting pods, the input of the model. */
export interface AheadState {
  compiled: CompiledPolicy;
  table: DesiredPolicyTable;
  prepared: PreparedSets;
  lastInput: CompileInput;
}

export interface AheadBasis extends AheadState {
  /** This node's addresses then (they change without an event). */
  nodeAddresses: readonly string[];
}

type FoundPod = { input: CompileInput; pod: PolicyPod };

export interface BindsAheadOptions {
  /** The enforcer's state now; undefined when nothing is applied or the last apply failed. */
  state: () => AheadState | undefined;
  /** Work is due (a pass, binds): nothing is computed ahead meanwhile. */
  busy: () => boolean;
  /** The bind's input for a pod (input.ts forPod). */
  forPod: (key: string, last: CompileInput) => FoundPod | undefined;
  renderOptions: () => RenderOptions;
  /** The bind's diff encoded ahead (LayoutApplier.templateAhead); undefined where it cannot be. */
  template: (a: Transaction, b: Transaction, standins: readonly StandinPair[]) => AheadTemplateOf | undefined;
  clock: Clock;
  log: Logger;
}

/** A bind ahead taken for a notice: what to send, and what its bookkeeping reads. */
export interface TakenBind {
  ahead: AheadBind;
  /** The pod's bind input with the notice's addresses. */
  found: FoundPod;
  ips: readonly string[];
  /** The notice's address of each stand-in. */
  real: ReadonlyMap<string, string>;
  /** The diff with the notice's addresses (made when first asked for: the template needs none). */
  diff(): Transaction;
}

/**
 * The binds ahead of this node's pods waiting for their ADD: computed once the enforcer is quiet
 * (schedule, after each apply), a step per turn of the event loop (each step is a bind, a render and
 * a diff: about a millisecond), so that a notice arriving meanwhile waits for one step at most; taken
 * by the notice when it fits the state then.
 */
export class BindsAhead {
  private readonly opts: BindsAheadOptions;
  private waiting: readonly string[] = [];
  private readonly aheads = new Map<string, AheadBind>();
  /** Pods whose bind cannot be computed ahead on the state of `basis`: not tried again on it. */
  private readonly missed = new Set<string>();
  private basis: AheadState | undefined;
  private work: { key: string; steps: Generator<void, AheadBind | undefined, void> } | undefined;
  private timer: Timer | undefined;
  /** The families of the last notice's addresses (this node's IPAM ranges); v4 before the first. */
  private families: readonly (4 | 6)[] = [4];
  private stopped = false;

  constructor(opts: BindsAheadOptions) {
    this.opts = opts;
  }

  /** This node's pods waiting for their ADD (a pass's), by key. */
  setWaiting(keys: readonly string[]): void {
    this.waiting = keys;
  }

  /** A bind's addresses: the families the next binds ahead are computed for. */
  noteBound(ips: readonly string[]): void {
    if (ips.length > 0) this.families = familiesOf(ips);
  }

  /** The waiting pods whose bind is computed ahead on the state now, by key. */
  get pods(): string[] {
    const now = this.opts.state();
    return [...this.aheads].filter(([, a]) => now && sameState(a.basis, now)).map(([key]) => key);
  }

  /** After each apply: the binds ahead follow once nothing was applied for AHEAD_QUIET_MS. */
  schedule(): void {
    this.timer?.cancel();
    this.timer = undefined;
    if (this.waiting.length === 0 || this.stopped) {
      // Nothing to compute: no older model or table is kept alive by a bind ahead.
      this.aheads.clear();
      this.work = undefined;
      this.basis = undefined;
      return;
    }
    this.timer = this.opts.clock.after(
      AHEAD_QUIET_MS,
      () => {
        this.timer = undefined;
        this.step();
      },
      { unref: true },
    );
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }

  /** The bind ahead of pod `key` for the notice's addresses, when one fits the state now (taken:
   * each is used once). */
  take(key: string, ips: readonly string[] | undefined): TakenBind | undefined {
    const ahead = this.aheads.get(key);
    this.aheads.delete(key);
    const now = this.opts.state();
    if (!ahead || !now || !ips || !sameState(ahead.basis, now)) return undefined;
    const found = this.opts.forPod(key, now.lastInput);
    if (!found || found.pod !== ahead.pod) return undefined;
    if (found.input.nodeAddresses.join() !== ahead.basis.nodeAddresses.join()) return undefined;
    const real = realFor(ahead, ips);
    if (!real) return undefined;
    let diff: Transaction | undefined;
    return { ahead, found, ips, real, diff: () => (diff ??= substituted(ahead.diff, real)) };
  }

  private step(): void {
    const now = this.opts.state();
    if (!now || this.stopped || this.opts.busy()) return;
    if (!this.basis || !sameState(this.basis, now)) {
      this.aheads.clear();
      this.missed.clear();
      this.work = undefined;
      this.basis = now;
    }
    if (!this.work) {
      // The first AHEAD_MAX_PODS of the pods still waiting (those bound since the pass are in the model).
      const bound = new Set(now.compiled.pods.map((p) => podKey(p.namespace, p.name)));
      const key = this.waiting
        .filter((k) => !bound.has(k))
        .slice(0, AHEAD_MAX_PODS)
        .find((k) => !this.aheads.has(k) && !this.missed.has(k));
      if (key === undefined) return;
      this.missed.add(key);
      const found = this.opts.forPod(key, now.lastInput);
      if (found) {
        const basis = { ...now, nodeAddresses: found.input.nodeAddresses };
        const steps = prepareAhead(key, found, basis, this.families, this.opts.renderOptions(), this.opts.template);
        this.work = { key, steps };
      }
    }
    if (this.work) {
      const { key, steps } = this.work;
      try {
        const r = steps.next();
        if (r.done) {
          this.work = undefined;
          if (r.value) {
            this.aheads.set(key, r.value);
            this.missed.delete(key);
          }
        }
      } catch (err) {
        this.work = undefined;
        this.opts.log.debug({ pod: key, err: String(err) }, 'could not compute a pod-start bind ahead');
      }
    }
    setImmediate(() => this.step());
  }
}

function sameState(a: AheadState, b: AheadState): boolean {
  return a.table === b.table && a.compiled === b.compiled && a.prepared === b.prepared && a.lastInput === b.lastInput;
}

/**
 * The bookkeeping of a bind ahead once sent: the model and table of the same pod object and input with
 * the notice's addresses; undefined when they do not give the transaction sent (a bug: the caller
 * rebuilds the rules).
 */
export function settleAhead(
  taken: TakenBind,
  options: RenderOptions,
): { bound: Bound; table: DesiredPolicyTable } | undefined {
  const { basis, pod } = taken.ahead;
  const bound = bindLocalPod(basis.compiled, taken.found.input, pod, basis.prepared);
  const table = bound && renderBound(basis.compiled, basis.table, bound.compiled, options);
  if (!bound || !table || !sameTransaction(diffShared(basis.table, table), taken.diff())) return undefined;
  return { bound, table };
}

export interface AheadBind {
  key: string;
  /** The informer's pod object it was computed for. */
  pod: PolicyPod;
  basis: AheadBasis;
  /** The stand-in of each family the bind was computed for (4 first). */
  standins: ReadonlyMap<4 | 6, string>;
  /** The diff with the stand-ins. */
  diff: Transaction;
  /** The addresses the model's local pods have (a notice's address among them cannot bind). */
  owned: ReadonlySet<string>;
  /** The diff encoded, for the notice to write its addresses in (none: the diff is encoded then). */
  template: AheadTemplateOf | undefined;
}

/** The bind of pod `key` computed ahead for addresses of `families`, in steps; undefined when it
 * cannot be (the bind would compile everything, or the address shows somewhere other than substituted). */
function* prepareAhead(
  key: string,
  found: FoundPod,
  basis: AheadBasis,
  families: readonly (4 | 6)[],
  options: RenderOptions,
  template: BindsAheadOptions['template'],
): Generator<void, AheadBind | undefined, void> {
  const diffWith = (pick: 0 | 1): { diff: Transaction; standins: Map<4 | 6, string> } | undefined => {
    const standins = new Map(families.map((f) => [f, STANDINS[f][pick]] as const));
    const extraPodIps = new Map(found.input.extraPodIps ?? []);
    extraPodIps.set(key, [...standins.values()]);
    const bound = bindLocalPod(basis.compiled, { ...found.input, extraPodIps }, found.pod, basis.prepared);
    if (!bound) return undefined;
    const table = renderBound(basis.compiled, basis.table, bound.compiled, options);
    return { diff: diffShared(basis.table, table), standins };
  };
  // A step each (a bind, a render and a diff), the caller's event loop served between them.
  const a = diffWith(0);
  if (!a) return undefined;
  yield;
  const b = diffWith(1);
  if (!b) return undefined;
  yield;
  const token = (s: ReadonlyMap<4 | 6, string>) => new Map([...s].map(([f, ip]) => [ip, STANDINS[f][2]]));
  if (!sameTransaction(substituted(a.diff, token(a.standins)), substituted(b.diff, token(b.standins))))
    return undefined;
  yield;
  const pairs = families.map((f) => ({ a: a.standins.get(f) as string, b: b.standins.get(f) as string }));
  return {
    key,
    pod: found.pod,
    basis,
    standins: a.standins,
    diff: a.diff,
    owned: new Set(basis.compiled.pods.flatMap((p) => p.ips)),
    template: template(a.diff, b.diff, pairs),
  };
}

/**
 * The notice's address of each stand-in; undefined when they do not fit (another number of addresses
 * or families than computed for, or an address another local pod has).
 */
function realFor(ahead: AheadBind, ips: readonly string[]): Map<string, string> | undefined {
  if (ips.length !== ahead.standins.size) return undefined;
  const real = new Map<string, string>();
  for (const ip of ips) {
    const standin = ahead.standins.get(knownFamily(ip));
    if (standin === undefined || real.has(standin) || ahead.owned.has(ip)) return undefined;
    real.set(standin, ip);
  }
  return real;
}

/** The families of `ips`, 4 first. */
function familiesOf(ips: readonly string[]): (4 | 6)[] {
  return [...new Set(ips.map(knownFamily))].sort();
}

/** The same operations: those on chains, sets and rules in the same order, the elements in any
 * (the kernel applies a batch whole; a set's members come in the order of their text). */
export function sameTransaction(a: Transaction, b: Transaction): boolean {
  const split = (t: Transaction) => {
    const lines = t.render().split('\n');
    const elements = lines.filter((l) => / element /.test(l.slice(0, 16))).sort();
    return [lines.filter((l) => !/ element /.test(l.slice(0, 16))).join('\n'), elements.join('\n')];
  };
  const [ra, ea] = split(a);
  const [rb, eb] = split(b);
  return ra === rb && ea === eb;
}

/** `tx` with every string equal to a key of `by` replaced by its value (objects copied where they
 * change, shared where they do not: the transaction's objects are never changed in place). */
export function substituted(tx: Transaction, by: ReadonlyMap<string, string>): Transaction {
  const out = new Transaction({ shareObjects: true });
  for (const op of tx.operations) push(out, replaced(op, by) as Operation);
  return out;
}

function push(tx: Transaction, op: Operation): void {
  switch (op.verb) {
    case 'add':
      tx.add(op.object);
      break;
    case 'create':
      tx.create(op.object);
      break;
    case 'insert':
      tx.insert(op.object);
      break;
    case 'replace':
      tx.replace(op.object as Parameters<Transaction['replace']>[0]);
      break;
    case 'flush':
      tx.flush(op.object, op.edit);
      break;
    case 'delete':
      tx.delete(op.object);
      break;
  }
}

function replaced(v: unknown, by: ReadonlyMap<string, string>): unknown {
  if (typeof v === 'string') return by.get(v) ?? v;
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < v.length; i++) {
      const x = replaced(v[i], by);
      if (x !== v[i]) (out ??= [...v])[i] = x;
    }
    return out ?? v;
  }
  let out: Record<string, unknown> | undefined;
  for (const [k, x] of Object.entries(v)) {
    const y = replaced(x, by);
    if (y !== x) (out ??= { ...v })[k] = y;
  }
  return out ?? v;
}
