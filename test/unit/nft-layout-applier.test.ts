// The generic layout applier against the nft fake: the first apply builds everything (adoption of
// what a previous agent left), later ones send the difference, a failed difference and drift lead to
// one rebuild transaction, and nothing outside the layout's declared ownership is ever touched.
import { describe, expect, it } from 'vitest';
import { verdict } from '../../src/nft/expr.ts';
import { FakeNft } from '../../src/nft/fake.ts';
import { LayoutApplier, LayoutApplyError } from '../../src/nft/layout-applier.ts';
import { Transaction } from '../../src/nft/transaction.ts';
import pino from 'pino';
import { podChain, toyLayout, type ToyState } from '../support/toy-policy-layout.ts';

const log = pino({ level: 'silent' });
const isolated: ToyState = new Map([['10.99.2.2', []]]);
const allowA: ToyState = new Map([['10.99.2.2', ['10.99.1.1']]]);

async function seeded(): Promise<FakeNft> {
  const nft = new FakeNft();
  // Another owner's objects: a layout never touches them.
  await nft.run(
    new Transaction()
      .add({ kind: 'table' })
      .add({ kind: 'chain', name: 'cni-x' })
      .add({ kind: 'rule', chain: 'cni-x', body: [verdict('accept')] }),
  );
  return nft;
}

describe('LayoutApplier on the fake', () => {
  it('declares its ownership: the prefix, the names and the marker, nothing derived', () => {
    const applier = new LayoutApplier({
      nft: new FakeNft(),
      layout: { ...toyLayout, names: ['other-x'] },
      log,
      markerChain: 'toy-marker',
    });
    expect(applier.ownership).toEqual({ prefixes: ['toy-'], names: ['other-x', 'toy-marker'] });
  });

  it('builds at the first apply, then sends only the difference, then nothing', async () => {
    const nft = await seeded();
    const applier = new LayoutApplier({ nft, layout: toyLayout, log });
    expect(await applier.apply(isolated)).toMatchObject({ kind: 'rebuild', reason: 'start' });
    const diff = await applier.apply(allowA);
    expect(diff.kind).toBe('diff');
    expect(nft.rules(podChain('10.99.2.2')).map((r) => r.rule)).toEqual([
      'ip saddr 10.99.1.1 counter accept',
      'counter drop',
    ]);
    expect(await applier.apply(allowA)).toMatchObject({ kind: 'none' });
    expect(nft.rules('cni-x')).toHaveLength(1);
    for (const script of nft.applied.slice(1)) expect(script).not.toMatch(/ cni-/);
  });

  it('adopts what a previous applier left: one transaction that flushes and rebuilds, never the table', async () => {
    const nft = await seeded();
    await new LayoutApplier({ nft, layout: toyLayout, log }).apply(new Map([['10.99.3.3', []], ...allowA]));
    const next = new LayoutApplier({ nft, layout: toyLayout, log });
    expect(await next.apply(isolated)).toMatchObject({ kind: 'rebuild', reason: 'start' });
    const script = nft.applied.at(-1) ?? '';
    expect(script).not.toMatch(/delete table|flush table/);
    expect(script).toMatch(new RegExp(`delete chain inet strand ${podChain('10.99.3.3')}`));
    expect(nft.state?.chains.has(podChain('10.99.3.3'))).toBe(false);
  });

  it('rebuilds after a failed difference, and reports a failed rebuild as a problem', async () => {
    const nft = await seeded();
    const hooks = { failures: [] as string[], rebuilds: [] as string[] };
    const applier = new LayoutApplier({
      nft,
      layout: toyLayout,
      log,
      hooks: { failure: (k) => hooks.failures.push(k), rebuild: (r) => hooks.rebuilds.push(r) },
    });
    await applier.apply(isolated);
    nft.failNextRun('not-found');
    expect(await applier.apply(allowA)).toMatchObject({ kind: 'rebuild', reason: 'failure' });
    expect(hooks).toEqual({ failures: ['diff'], rebuilds: ['start', 'failure'] });
    nft.failNextRun('not-found');
    nft.failNextRun('not-found');
    await expect(applier.apply(isolated)).rejects.toBeInstanceOf(LayoutApplyError);
    expect(applier.problem).toMatch(/not applied/);
    expect(await applier.apply(isolated)).toMatchObject({ kind: 'rebuild', reason: 'retry' });
    expect(applier.problem).toBeUndefined();
  });

  it('finds drift (a deleted chain, a flushed marker) and rebuilds', async () => {
    const nft = await seeded();
    const applier = new LayoutApplier({ nft, layout: toyLayout, log });
    await applier.apply(isolated);
    expect(await applier.drift()).toBeUndefined();
    await nft.run(new Transaction().flush({ kind: 'chain', name: applier.markerChain }));
    expect(await applier.drift()).toMatch(/marker/);
    expect(await applier.apply(isolated)).toMatchObject({ kind: 'rebuild', reason: 'drift' });
    await nft.run(
      new Transaction()
        .delete({ kind: 'element', set: 'toy-ingress', key: ['10.99.2.2'] })
        .flush({ kind: 'chain', name: podChain('10.99.2.2') })
        .delete({ kind: 'chain', name: podChain('10.99.2.2') }),
    );
    expect(await applier.drift()).toMatch(/gone/);
    expect(await applier.apply(isolated)).toMatchObject({ kind: 'rebuild', reason: 'drift' });
    expect(nft.rules(podChain('10.99.2.2')).map((r) => r.rule)).toEqual(['counter drop']);
  });
});

describe('LayoutApplier on a large state', () => {
  it('builds and sends a rebuild in slices when the layout and the transport can, the same transaction as in one block', async () => {
    // The fake, given runSliced as the netlink transport has it: prepared in slices, committed whole.
    const sliced = Object.assign(await seeded(), {
      sent: [] as number[],
      async runSliced(this: FakeNft & { sent: number[] }, tx: Transaction, breathe: () => Promise<void>) {
        for (let i = 0; i < 3; i++) await breathe();
        await this.run(tx);
        this.sent.push(tx.operations.length);
        return { messages: tx.operations.length, bytes: 1234, encodeMs: 0, commitMs: 0, slices: 4 };
      },
    });
    const breaths: string[] = [];
    const layout = {
      ...toyLayout,
      async fullBuildAsync(
        to: ToyState,
        remaining: Parameters<typeof toyLayout.fullBuild>[1],
        breathe: () => Promise<void>,
      ) {
        breaths.push('build');
        await breathe();
        return toyLayout.fullBuild(to, remaining);
      },
    };
    const applier = new LayoutApplier({
      nft: sliced,
      layout,
      log,
      breathe: async () => {
        breaths.push('breathe');
      },
    });
    const big: ToyState = new Map(
      Array.from({ length: 2000 }, (_, i) => [`10.98.${i >> 8}.${i & 255}`, ['10.99.1.1']]),
    );
    const r = await applier.apply(big);
    expect(r).toMatchObject({ kind: 'rebuild', reason: 'start', bytes: 1234 });
    // Built in slices (the layout's own, then appending 4,096 operations at a time), sent in slices.
    expect(breaths[0]).toBe('build');
    expect(breaths.filter((b) => b === 'breathe').length).toBeGreaterThan(4);
    // The same transaction as the one-block build, operation for operation.
    const oneBlock = new LayoutApplier({ nft: new FakeNft(), layout: toyLayout, log }).rebuildTransaction(
      await (await seeded()).list(),
      big,
      1,
    );
    expect(sliced.sent).toEqual([oneBlock.operations.length]);
    expect(sliced.rules(podChain('10.98.0.1')).map((x) => x.rule)).toEqual([
      'ip saddr 10.99.1.1 counter accept',
      'counter drop',
    ]);
  });
});
