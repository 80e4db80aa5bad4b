// The runner's cheap listings against the kernel, in a test namespace: list(only) reads just the
// objects named (chains with their rules, sets and maps with their elements) as the whole listing
// shows them, and summary() the chain names and the rules' comments of the chains asked for; both
// say when there is no table. The fake answers the same.
import { afterAll, describe, expect, it } from 'vitest';
import { FakeNft } from '../../src/nft/fake.ts';
import { createNftRunner } from '../../src/nft/runner.ts';
import { Transaction } from '../../src/nft/transaction.ts';
import type { Nft } from '../../src/nft/transport.ts';
import { TestNetns } from '../support/netns.ts';
import { lookup, payload, verdict } from '../../src/nft/expr.ts';

const ns = TestNetns.create('nftp');
afterAll(() => ns.destroy());

function objects(): Transaction {
  return new Transaction()
    .add({ kind: 'table' })
    .add({ kind: 'chain', name: 'agent-a' })
    .add({ kind: 'chain', name: 'agent-b' })
    .add({ kind: 'set', name: 'agent-s', type: 'ipv4_addr' })
    .add({ kind: 'map', name: 'agent-m', type: 'ipv4_addr', value: 'verdict' })
    .add({ kind: 'element', set: 'agent-s', key: ['10.1.1.1'] })
    .add({ kind: 'element', set: 'agent-m', key: ['10.1.1.2'], value: ['jump agent-b'] })
    .add({
      kind: 'rule',
      chain: 'agent-a',
      body: [lookup(payload('ip saddr'), 'agent-s'), verdict('accept')],
      comment: 'one',
    })
    .add({ kind: 'rule', chain: 'agent-a', body: [verdict('return')], comment: 'two' })
    .add({ kind: 'rule', chain: 'agent-b', body: [verdict('drop')], comment: 'three' });
}

describe.each([
  ['kernel', () => createNftRunner({ netns: ns.name })],
  ['fake', () => new FakeNft()],
] as [string, () => Nft][])('cheap listings (%s)', (_kind, make) => {
  it('say there is no table, then read only what they are asked for', async () => {
    const nft = make();
    expect((await nft.list({ chains: ['agent-a'], sets: ['agent-s'] })).exists).toBe(false);
    expect((await nft.summary(['agent-a'])).exists).toBe(false);
    await nft.run(objects());
    const all = await nft.list();
    const some = await nft.list({ chains: ['agent-a', 'agent-gone'], sets: ['agent-m', 'agent-gone'] });
    expect(some.exists).toBe(true);
    expect([...some.chains.keys()]).toEqual(['agent-a']);
    expect(some.chains.get('agent-a')?.rules.map((r) => r.comment)).toEqual(['one', 'two']);
    expect([...some.sets.keys()]).toEqual([]);
    expect(some.maps.get('agent-m')).toEqual(all.maps.get('agent-m'));
    const s = await nft.summary(['agent-a']);
    expect([...s.chains.keys()].sort()).toEqual(['agent-a', 'agent-b']);
    expect(s.rules).toEqual(new Map([['agent-a', ['one', 'two']]]));
    if (_kind === 'kernel') {
      ns.exec('nft', ['delete', 'table', 'inet', 'strand']);
      expect((await nft.list({ chains: ['agent-a'] })).exists).toBe(false);
    }
  });
});
