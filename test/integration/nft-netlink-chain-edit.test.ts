// A chain's flush and refill with a ChainEdit (diff.ts marks the rules it keeps) sent over netlink as
// the edit: the kernel ends up holding what `nft -f` of the same transaction makes it hold (nft -j
// list, handles aside), the kept rules keep their handles (and so their counters), the batch carries
// only the rules between; a chain that does not hold what the edit says gets the flush and refill.
import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { counter, verdict, type Expr } from '../../src/nft/expr.ts';
import type { Rule, TableRef } from '../../src/nft/objects.ts';
import { Transaction } from '../../src/nft/transaction.ts';
import { TransportPairs, type TransportPair } from '../support/nft-transports.ts';
import type { TestNetns } from '../support/netns.ts';

const T: TableRef = { family: 'inet', name: 'strand' };
const CHAIN = 'agent-pol-in-test';
const pairs = new TransportPairs(T);
afterEach(() => pairs.destroy());

interface Listed {
  handle: number;
  comment?: string;
  expr: unknown;
}

/** The chain's rules as nft lists them: handle, comment and expressions. */
function rulesOf(ns: TestNetns): Listed[] {
  const out = execFileSync(
    'ip',
    ['netns', 'exec', ns.name, 'nft', '-a', '-j', 'list', 'chain', 'inet', 'strand', CHAIN],
    {
      encoding: 'utf8',
    },
  );
  return (JSON.parse(out) as { nftables: Array<{ rule?: Listed }> }).nftables.flatMap((o) => (o.rule ? [o.rule] : []));
}
const bodies = (rules: Listed[]) => rules.map((r) => ({ comment: r.comment, expr: r.expr }));

/** A rule of the test chain: `name` its comment, counted or not, ending in `v`. */
const rule = (name: string, v: 'accept' | 'drop' | 'return' = 'accept', counted = true): Rule => {
  const body: Expr[] = counted ? [counter(), verdict(v)] : [verdict(v)];
  return { kind: 'rule', chain: CHAIN, body, comment: name };
};

function setUp(): TransportPair {
  return pairs.pair('nftedit', 'nfteditp');
}

/** The chain made to hold `rules`, from nothing. */
function first(rules: Rule[]): Transaction {
  const tx = new Transaction({ ownedPrefix: 'agent-pol-' });
  tx.add({ kind: 'table' });
  tx.add({ kind: 'chain', name: CHAIN });
  for (const r of rules) tx.add(r);
  return tx;
}

/** The chain refilled from `was` to `now`, the edit keeping `keep` first and `tail` last rules. */
function refill(was: Rule[], now: Rule[], keep: number, tail: number): Transaction {
  const tx = new Transaction({ ownedPrefix: 'agent-pol-' });
  tx.flush({ kind: 'chain', name: CHAIN }, { was: was.map((r) => r.comment), keep, tail, rules: now.length });
  for (const r of now) tx.add(r);
  return tx;
}

describe('a chain edit over netlink', () => {
  const a = rule('self', 'accept', false);
  const b = rule('ns/p1 ingress 0');
  const c = rule('ns/p2 ingress 0');
  const x = rule('ns/p3 ingress 0');
  const deny = rule('deny', 'drop');

  for (const [label, was, now, keep, tail, messages] of [
    ['a rule inserted before the last (a policy added)', [a, b, c, deny], [a, b, c, x, deny], 3, 1, 1],
    ['a rule deleted between (a policy taken away)', [a, b, c, deny], [a, c, deny], 1, 2, 1],
    ['a rule replaced in the middle', [a, b, c, deny], [a, x, c, deny], 1, 2, 2],
    ['rules appended (nothing kept at the end)', [a, b], [a, b, c, deny], 2, 0, 2],
    ['rules taken from the front', [a, b, c, deny], [deny], 0, 1, 3],
  ] as const) {
    it(`${label}: as nft -f makes it, the kept rules' handles unchanged, only the change sent`, async () => {
      const { nl, proc, a: na, b: nb } = setUp();
      await nl.run(first([...was]));
      await proc.run(first([...was]));
      const before = rulesOf(na);
      const tx = refill([...was], [...now], keep, tail);
      await nl.runSliced(tx, async () => {});
      await proc.run(tx);
      expect(nl.stats.lastMessages).toBe(messages);
      const after = rulesOf(na);
      expect(bodies(after)).toEqual(bodies(rulesOf(nb)));
      expect(after.map((r) => r.comment)).toEqual(now.map((r) => r.comment));
      // The kept rules are the very rules of before (same handles).
      expect(after.slice(0, keep).map((r) => r.handle)).toEqual(before.slice(0, keep).map((r) => r.handle));
      expect(after.slice(after.length - tail).map((r) => r.handle)).toEqual(
        before.slice(before.length - tail).map((r) => r.handle),
      );
    });
  }

  it('a chain that does not hold what the edit says is flushed and refilled (run, not sliced, too)', async () => {
    const { nl, a: na } = setUp();
    await nl.run(first([a, b, c, deny]));
    // Someone's rule in between: the edit's `was` is no longer the chain.
    execFileSync('ip', ['netns', 'exec', na.name, 'nft', 'add', 'rule', 'inet', 'strand', CHAIN, 'accept']);
    const tx = refill([a, b, c, deny], [a, b, c, x, deny], 3, 1);
    await nl.run(tx);
    expect(nl.stats.lastMessages).toBe(6);
    expect(rulesOf(na).map((r) => r.comment)).toEqual([
      'self',
      'ns/p1 ingress 0',
      'ns/p2 ingress 0',
      'ns/p3 ingress 0',
      'deny',
    ]);
  });

  it("the edited chain's handles are read after the commit: the next edit reads none, unless someone else committed", async () => {
    const { nl, a: na } = setUp();
    await nl.run(first([a, b, deny]));
    await nl.runSliced(refill([a, b, deny], [a, b, x, deny], 2, 1), async () => {});
    const reads = nl.stats.chainReads;
    expect(reads).toBe(1);
    await new Promise((r) => setImmediate(r));
    await nl.runSliced(refill([a, b, x, deny], [a, b, deny], 2, 1), async () => {});
    expect(nl.stats.chainReads).toBe(reads);
    expect(nl.stats.lastMessages).toBe(1);
    await new Promise((r) => setImmediate(r));
    // A hand edit: the generation moved, the handles kept are not trusted; the chain no longer holds
    // what the edit names, so it is flushed and refilled.
    execFileSync('ip', ['netns', 'exec', na.name, 'nft', 'insert', 'rule', 'inet', 'strand', CHAIN, 'accept']);
    await nl.runSliced(refill([a, b, deny], [a, b, x, deny], 2, 1), async () => {});
    expect(nl.stats.chainReads).toBe(reads + 1);
    expect(nl.stats.lastMessages).toBe(5);
    expect(rulesOf(na).map((r) => r.comment)).toEqual(['self', 'ns/p1 ingress 0', 'ns/p3 ingress 0', 'deny']);
    // No change between: the next edit is sent as one.
    await new Promise((r) => setImmediate(r));
    await nl.runSliced(refill([a, b, x, deny], [a, x, deny], 1, 2), async () => {});
    expect(nl.stats.chainReads).toBe(reads + 1);
    expect(nl.stats.lastMessages).toBe(1);
    expect(rulesOf(na).map((r) => r.comment)).toEqual(['self', 'ns/p3 ingress 0', 'deny']);
  });

  it('an edit in a batch with other chains and a refused operation applies nothing', async () => {
    const { nl, a: na } = setUp();
    await nl.run(first([a, b, deny]));
    const before = rulesOf(na);
    const tx = refill([a, b, deny], [a, b, x, deny], 2, 1);
    tx.flush({ kind: 'chain', name: 'agent-pol-missing' });
    await expect(nl.run(tx)).rejects.toThrow(/agent-pol-missing|No such file/);
    expect(rulesOf(na)).toEqual(before);
  });
});
