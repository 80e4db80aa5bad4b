// A chain's flush and refill (Transaction's ChainEdit) sent as the edit it is: the rules between the
// kept first and last ones deleted by handle, the new ones between inserted before the first kept
// last rule (or appended). A policy added to a pod's chain of ~18 rules is then one NEWRULE, not a
// flush and 18; the kept rules keep their handles and counters. The handles are read from the kernel
// (one GETRULE dump filtered by chain) right before the batch is encoded, and the chain must hold the
// rules the edit names (their number and comments, in order): otherwise, or past MAX_EDITED_CHAINS,
// the flush and the additions are sent as they are. A rule changed between the read and the commit
// by someone else makes the commit fail whole (the handle is gone), which the applier answers with a
// rebuild, as any refused batch.
//
// The handles are read again after the commit, off the change's path (ChainHandles.refresh, on the
// next turn of the event loop), and kept while the namespace's generation says nothing else was
// committed: the next change to the same chains (a policy taken away again) then reads one
// generation instead of a dump per chain.
import type { NetlinkSocket } from '../../kernel/index.ts';
import type { Operation } from '../transaction.ts';
import type { NftOp } from './batch.ts';
import { readChainRules, readGeneration, type TableRef } from './read.ts';

interface HeldRules {
  handles: readonly number[];
  comments: readonly (string | undefined)[];
}

/**
 * Chains' rule handles and comments as the kernel held them at generation `gen`. Valid while the
 * generation is the same; the transport's own commit moves it by one and drops the chains it touched.
 */
export class ChainHandles {
  private gen: number | undefined;
  private readonly held = new Map<string, HeldRules>();
  /** Chains read on a change's path (not known when it came). */
  reads = 0;

  /** What `chain` holds now (the namespace at generation `gen`): kept, or read (one dump). */
  rulesOf(nl: NetlinkSocket, table: TableRef, chain: string, gen: number): HeldRules {
    if (this.gen !== gen) {
      this.held.clear();
      this.gen = gen;
    }
    let h = this.held.get(chain);
    if (!h) {
      this.reads++;
      h = read(nl, table, chain);
      this.held.set(chain, h);
    }
    return h;
  }

  /** After a commit of `ops` that left the namespace at `gen`: what it touched is dropped, the rest
   * kept when this commit was the only one since (the generation moved by one). */
  committed(ops: readonly Operation[], gen: number): void {
    if (this.gen === undefined || gen !== this.gen + 1) this.held.clear();
    else
      for (const o of ops) {
        const x = o.object;
        if (x.kind === 'rule') this.held.delete(x.chain);
        else if (x.kind === 'chain') this.held.delete(x.name);
      }
    this.gen = gen;
  }

  /** Reads the handles of `chains` (those the last commit edited), when nothing else was committed. */
  refresh(nl: NetlinkSocket, table: TableRef, chains: readonly string[]): void {
    const gen = readGeneration(nl);
    if (gen !== this.gen) return;
    const got = new Map<string, HeldRules>();
    for (const chain of chains) got.set(chain, read(nl, table, chain));
    if (readGeneration(nl) !== gen) return;
    for (const [chain, h] of got) this.held.set(chain, h);
  }
}

function read(nl: NetlinkSocket, table: TableRef, chain: string): HeldRules {
  const rules = readChainRules(nl, table, chain);
  return { handles: rules.map((r) => r.handle), comments: rules.map((r) => r.comment) };
}

/** Past this many edited chains in one batch, the reads cost more than the rules they save. */
export const MAX_EDITED_CHAINS = 128;

/** The handles of an edited chain's rules, by the index of its flush in the transaction. */
export type ChainEditPlan = Map<number, readonly number[]>;

/** The handles of the chains the transaction edits, where the kernel holds what the edit says. */
export function planChainEdits(
  nl: NetlinkSocket,
  table: TableRef,
  ops: readonly Operation[],
  known: ChainHandles,
): ChainEditPlan {
  const plan: ChainEditPlan = new Map();
  let edits = 0;
  for (const o of ops) if (o.verb === 'flush' && o.edit !== undefined) edits++;
  if (edits === 0 || edits > MAX_EDITED_CHAINS) return plan;
  const gen = readGeneration(nl);
  for (let i = 0; i < ops.length; i++) {
    const o = ops[i] as Operation;
    if (o.verb !== 'flush' || o.edit === undefined || o.object.kind !== 'chain') continue;
    const chain = o.object.name;
    const { was, rules } = o.edit;
    if (!refills(ops, i, chain, rules)) continue;
    const held = known.rulesOf(nl, table, chain, gen);
    if (held.handles.length !== was.length) continue;
    let same = true;
    for (let k = 0; k < was.length && same; k++) same = (held.comments[k] ?? '') === (was[k] ?? '');
    if (same) plan.set(i, held.handles);
  }
  return plan;
}

/** The chains the transaction refilled with an edit marked (sent as one or not): the ones a later
 * change is likely to edit again. */
export function editedChains(ops: readonly Operation[]): string[] {
  const out: string[] = [];
  for (const o of ops) if (o.verb === 'flush' && o.edit !== undefined) out.push(o.object.name);
  return out.length > MAX_EDITED_CHAINS ? [] : out;
}

/** Whether the `rules` operations after the flush at `at` append rules to `chain` (no position). */
function refills(ops: readonly Operation[], at: number, chain: string, rules: number): boolean {
  if (at + rules >= ops.length) return false;
  for (let k = 1; k <= rules; k++) {
    const r = ops[at + k];
    if (r?.verb !== 'add' || r.object.kind !== 'rule' || r.object.chain !== chain || r.object.handle !== undefined)
      return false;
  }
  return true;
}

/**
 * The netlink operations of the edit whose flush is at `at` (with the chain's `handles`), each with the
 * index of the transaction's operation it stands for; `map` maps a rule addition. The caller skips the
 * flush and its `rules` additions and sends these instead.
 */
export function* editOps(
  ops: readonly Operation[],
  at: number,
  handles: readonly number[],
  map: (o: Operation, index: number) => NftOp,
): Generator<[NftOp, number]> {
  const o = ops[at] as Extract<Operation, { verb: 'flush' }>;
  const edit = o.edit as NonNullable<typeof o.edit>;
  const chain = o.object.name;
  const { keep, tail, rules } = edit;
  const { op: _, chain: __, ...where } = map(o, at) as Extract<NftOp, { op: 'flush-chain' }>;
  for (let k = keep; k < handles.length - tail; k++)
    yield [{ op: 'delete-rule', ...where, chain, handle: handles[k] as number }, at];
  const before = tail > 0 ? handles[handles.length - tail] : undefined;
  for (let k = keep; k < rules - tail; k++) {
    const index = at + 1 + k;
    const add = map(ops[index] as Operation, index) as Extract<NftOp, { op: 'add-rule' }>;
    yield [before === undefined ? add : { ...add, placement: { at: 'insert', handle: before } }, index];
  }
}
