// DigestWatch (src/nft/drift.ts) over a probe in memory: which checks dump the whole table, which read
// only the chains the applier's own transactions changed, and which are answered by the generation.
// The kernel side is tested in test/integration/nft-drift.test.ts.
import { describe, expect, it } from 'vitest';
import { CHAINS_PER_READ, DigestWatch, MAX_CHAINS_READ_APART, type ExpectedLayout } from '../../src/nft/drift.ts';
import type { Operation } from '../../src/nft/transaction.ts';
import type { ChainDigest, DriftProbe, TableSnapshot } from '../../src/nft/transport.ts';

/** A table in memory: chain → rules (as digest text); every commit bumps the generation by one. */
class MemoryTable implements DriftProbe {
  gen = 1;
  readonly chains = new Map<string, string[]>();
  readonly reads: string[][] = [];

  commit(edit: () => void): void {
    edit();
    this.gen++;
  }

  async generation(): Promise<number> {
    return this.gen;
  }

  private digest(name: string): ChainDigest | undefined {
    const rules = this.chains.get(name);
    return rules && rules.length > 0 ? { count: rules.length, digest: rules.join('|') } : undefined;
  }

  async snapshot(): Promise<TableSnapshot> {
    const digests = new Map<string, ChainDigest>();
    for (const name of this.chains.keys()) {
      const d = this.digest(name);
      if (d) digests.set(name, d);
    }
    return { generation: this.gen, exists: true, chains: new Set(this.chains.keys()), sets: new Set(), digests };
  }

  async chainDigests(names: readonly string[]): Promise<Map<string, ChainDigest>> {
    this.reads.push([...names]);
    const out = new Map<string, ChainDigest>();
    for (const n of names) {
      const d = this.digest(n);
      if (d) out.set(n, d);
    }
    return out;
  }

  expected(): ExpectedLayout {
    return { chains: [...this.chains].map(([name, rules]) => ({ name, rules: rules.length })), sets: [] };
  }
}

const ruleOps = (...chains: string[]): Operation[] =>
  chains.map((chain) => ({ verb: 'add', object: { kind: 'rule', chain, body: [] } }));

function table(chains = 4): MemoryTable {
  const t = new MemoryTable();
  for (let i = 0; i < chains; i++) t.chains.set(`c${i}`, ['a', 'b']);
  return t;
}

describe('DigestWatch', () => {
  it("reads only the chains the applier's own transactions changed, then shortcuts", async () => {
    const t = table();
    const w = new DigestWatch(t);
    expect(await w.check(t.expected())).toBeUndefined();
    expect(w.stats).toEqual({ shortcuts: 0, dumps: 1, chainReads: 0 });
    t.commit(() => t.chains.get('c1')?.push('c'));
    w.applied(ruleOps('c1'));
    t.commit(() => t.chains.get('c2')?.push('c'));
    w.applied(ruleOps('c2'));
    expect(await w.check(t.expected())).toBeUndefined();
    expect(w.stats).toEqual({ shortcuts: 0, dumps: 1, chainReads: 1 });
    expect(t.reads).toEqual([['c1', 'c2']]);
    expect(await w.check(t.expected())).toBeUndefined();
    expect(w.stats).toEqual({ shortcuts: 1, dumps: 1, chainReads: 1 });
    // The digest read for c1 is the reference now: an edit that keeps its count is found.
    t.commit(() => t.chains.set('c1', ['a', 'b', 'x']));
    expect(await w.check(t.expected())).toBe('the rules of chain c1 were changed');
  });

  it('dumps the whole table when another commit came between (before or after its own)', async () => {
    for (const order of ['other first', 'own first'] as const) {
      const t = table();
      const w = new DigestWatch(t);
      expect(await w.check(t.expected())).toBeUndefined();
      if (order === 'other first') t.commit(() => t.chains.set('c3', ['a', 'z']));
      t.commit(() => t.chains.get('c1')?.push('c'));
      w.applied(ruleOps('c1'));
      if (order === 'own first') t.commit(() => t.chains.set('c3', ['a', 'z']));
      expect(await w.check(t.expected())).toBe('the rules of chain c3 were changed');
      expect(w.stats).toEqual({ shortcuts: 0, dumps: 2, chainReads: 0 });
    }
  });

  it('dumps after a rebuild, before the first clean check, and past MAX_CHAINS_READ_APART chains', async () => {
    const t = table(MAX_CHAINS_READ_APART + 2);
    const w = new DigestWatch(t);
    t.commit(() => t.chains.get('c0')?.push('c'));
    w.applied(ruleOps('c0'));
    expect(await w.check(t.expected())).toBeUndefined();
    expect(w.stats.dumps).toBe(1);
    t.commit(() => undefined);
    w.reset();
    expect(await w.check(t.expected())).toBeUndefined();
    expect(w.stats.dumps).toBe(2);
    const many = [...t.chains.keys()].slice(0, MAX_CHAINS_READ_APART + 1);
    t.commit(() => {
      for (const c of many) t.chains.get(c)?.push('c');
    });
    w.applied(ruleOps(...many));
    expect(await w.check(t.expected())).toBeUndefined();
    expect(w.stats).toEqual({ shortcuts: 0, dumps: 3, chainReads: 0 });
  });

  it("finds a changed chain's wrong count in the chain read", async () => {
    const t = table();
    const w = new DigestWatch(t);
    expect(await w.check(t.expected())).toBeUndefined();
    t.commit(() => t.chains.get('c1')?.push('c'));
    w.applied(ruleOps('c1'));
    const expected = t.expected();
    const wrong = { ...expected, chains: expected.chains.map((c) => (c.name === 'c1' ? { ...c, rules: 2 } : c)) };
    expect(await w.check(wrong)).toBe('chain c1 holds 3 rules, not 2');
    expect(w.stats.chainReads).toBe(1);
    // Forgotten: the next check dumps.
    expect(await w.check(t.expected())).toBeUndefined();
    expect(w.stats.dumps).toBe(2);
  });

  it('after its own rebuild reads every chain a slice at a time, giving the loop back, and records their digests', async () => {
    const chains = CHAINS_PER_READ * 3 + 1;
    const t = table(chains);
    let breaths = 0;
    // A clock that makes every slice look long: the watch breathes between every two reads.
    const realNow = performance.now.bind(performance);
    let fake = 0;
    performance.now = () => (fake += 100);
    try {
      const w = new DigestWatch(t, async () => void breaths++);
      t.commit(() => undefined);
      w.rebuiltNow();
      expect(await w.check(t.expected())).toBeUndefined();
      expect(w.stats).toEqual({ shortcuts: 0, dumps: 0, chainReads: 1 });
      expect(t.reads).toHaveLength(4);
      expect(t.reads.flat()).toEqual([...t.chains.keys()]);
      expect(breaths).toBe(3);
      expect(await w.check(t.expected())).toBeUndefined();
      expect(w.stats.shortcuts).toBe(1);
      // The digests read are the reference: an edit that keeps a count is found.
      t.commit(() => t.chains.set('c5', ['a', 'x']));
      expect(await w.check(t.expected())).toBe('the rules of chain c5 were changed');
    } finally {
      performance.now = realNow;
    }
  });

  it('after its own rebuild, a commit by another during the slices makes it a whole dump', async () => {
    const t = table(CHAINS_PER_READ * 2);
    const w = new DigestWatch(t, async () => t.commit(() => t.chains.set('c1', ['a', 'y'])));
    const realNow = performance.now.bind(performance);
    let fake = 0;
    performance.now = () => (fake += 100);
    try {
      t.commit(() => undefined);
      w.rebuiltNow();
      // The dump finds the counts right and records what is there (no reference digest yet for c1).
      expect(await w.check(t.expected())).toBeUndefined();
      expect(w.stats).toEqual({ shortcuts: 0, dumps: 1, chainReads: 0 });
      // A commit between the rebuild and the check: a whole dump too.
      t.commit(() => undefined);
      w.rebuiltNow();
      t.commit(() => undefined);
      expect(await w.check(t.expected())).toBeUndefined();
      expect(w.stats.dumps).toBe(2);
    } finally {
      performance.now = realNow;
    }
  });
});
