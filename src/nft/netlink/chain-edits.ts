// A chain's flush and refill (Transaction's ChainEdit) sent as the edit it is: the rules between the
// kept first and last ones deleted by handle, the new ones between inserted before the first kept
// last rule (or appended). A policy added to a pod's chain of ~18 rules is then one NEWRULE, not a
// flush and 18; the kept rules keep their handles and counters. The handles are read from the kernel
// (one GETRULE dump filtered by chain) right before the batch is encoded, and the chain must hold the
// rules the edit names (their number and comments, in order): otherwise, or past MAX_EDITED_CHAINS,
// the flush and the additions are sent as they are. A rule changed between the read and the commit
// by someone else makes the commit fail whole (the handle is gone), which the applier answers with a
// rebuild, as any refused batch.
import type { NetlinkSocket } from '../../kernel/index.ts';
import type { Operation } from '../transaction.ts';
import type { NftOp } from './batch.ts';
import { readChainRules, type TableRef } from './read.ts';

/** Past this many edited chains in one batch, the reads cost more than the rules they save. */
export const MAX_EDITED_CHAINS = 128;

/** The handles of an edited chain's rules, by the index of its flush in the transaction. */
export type ChainEditPlan = Map<number, readonly number[]>;

/** Reads the handles of the chains the transaction edits, where the kernel holds what the edit says. */
export function planChainEdits(nl: NetlinkSocket, table: TableRef, ops: readonly Operation[]): ChainEditPlan {
  const plan: ChainEditPlan = new Map();
  let edits = 0;
  for (const o of ops) if (o.verb === 'flush' && o.edit !== undefined) edits++;
  if (edits === 0 || edits > MAX_EDITED_CHAINS) return plan;
  for (let i = 0; i < ops.length; i++) {
    const o = ops[i] as Operation;
    if (o.verb !== 'flush' || o.edit === undefined || o.object.kind !== 'chain') continue;
    const chain = o.object.name;
    const { was, rules } = o.edit;
    if (!refills(ops, i, chain, rules)) continue;
    const held = readChainRules(nl, table, chain);
    if (held.length !== was.length) continue;
    let same = true;
    for (let k = 0; k < held.length && same; k++) same = (held[k]?.comment ?? '') === (was[k] ?? '');
    if (same)
      plan.set(
        i,
        held.map((r) => r.handle),
      );
  }
  return plan;
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
