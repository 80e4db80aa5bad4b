// The typed rule bodies against the kernel: every expression kind (test/support/nft-expr-cases.ts) is
// checked by `nft -c`, applied, listed back as JSON, parsed, and compared with what was written.
import { afterAll, describe, expect, it } from 'vitest';
import { renderRule } from '../../src/nft/expr.ts';
import { createNftRunner } from '../../src/nft/runner.ts';
import { Transaction } from '../../src/nft/transaction.ts';
import { EXPR_CASES, exprCaseObjects } from '../support/nft-expr-cases.ts';
import { TestNetns } from '../support/netns.ts';

const ns = TestNetns.create('nftx');
const nft = createNftRunner({ netns: ns.name });

afterAll(() => ns.destroy());

describe('typed rule bodies: render → nft → list → parse', () => {
  it('round-trips every expression kind through the kernel', async () => {
    const tx = new Transaction();
    for (const o of exprCaseObjects()) tx.add(o);
    EXPR_CASES.forEach((c, i) => tx.add({ kind: 'rule', chain: c.chain, body: c.body, comment: `case ${i}` }));
    await nft.check(tx);
    await nft.run(tx);
    const state = await nft.list();
    const read = new Map<string, string>();
    for (const chain of state.chains.values())
      for (const r of chain.rules) read.set(r.comment ?? '', renderRule(r.body ?? []));
    EXPR_CASES.forEach((c, i) => expect(read.get(`case ${i}`), c.text).toBe(c.text));
    const counted = [...state.chains.values()].flatMap((c) => c.rules).filter((r) => r.counter !== undefined);
    expect(counted.length).toBe(EXPR_CASES.filter((c) => c.body.some((e) => e.kind === 'counter')).length);
    const counters = await nft.counters(['x-filter']);
    expect(counters.map((c) => c.comment)).toEqual(counted.map((r) => r.comment));
    expect(counters.every((c) => c.chain === 'x-filter' && c.packets === 0 && c.bytes === 0)).toBe(true);
  });
});
