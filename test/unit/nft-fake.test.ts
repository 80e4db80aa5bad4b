// The in-memory Nft: the kernel's answers where callers can trip over them, all-or-nothing runs, and a
// listing shaped like the real one (no rule bodies, canonical element keys).
import { beforeEach, describe, expect, it } from 'vitest';
import { FakeNft } from '../../src/nft/fake.ts';
import { PRIORITY } from '../../src/nft/objects.ts';
import { isNftError, NftError, type NftErrorReason } from '../../src/nft/errors.ts';
import { Transaction } from '../../src/nft/transaction.ts';
import { addrValue, counter, lookup, match, meta, payload, verdict, vmap } from '../../src/nft/expr.ts';

const tx = () => new Transaction();

async function failsWith(nft: FakeNft, t: Transaction, reason: NftErrorReason, line?: number): Promise<NftError> {
  const before = nft.dump();
  const err = await nft.run(t).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isNftError(err, reason), String(err)).toBe(true);
  if (line !== undefined) expect((err as NftError).line).toBe(line);
  expect(nft.dump()).toBe(before);
  return err as NftError;
}

describe('FakeNft', () => {
  let nft: FakeNft;
  beforeEach(async () => {
    nft = new FakeNft();
    await nft.run(
      tx()
        .add({ kind: 'table' })
        .add({
          kind: 'chain',
          name: 'agent-post',
          base: { type: 'nat', hook: 'postrouting', priority: PRIORITY.srcnat },
        })
        .add({ kind: 'chain', name: 'agent-reg' })
        .add({ kind: 'set', name: 'agent-cidrs', type: 'ipv4_addr', flags: ['interval'] })
        .add({ kind: 'map', name: 'agent-vm', type: 'ipv4_addr', value: 'verdict' })
        .add({ kind: 'element', set: 'agent-cidrs', key: ['10.1.0.0/16'] })
        .add({
          kind: 'rule',
          chain: 'agent-post',
          body: [lookup(payload('ip saddr'), 'agent-cidrs'), { kind: 'masquerade' }],
          comment: 'm',
        }),
    );
  });

  it('starts without a table and lists nothing', async () => {
    const empty = new FakeNft();
    expect(await empty.list()).toEqual({ exists: false, chains: new Map(), sets: new Map(), maps: new Map() });
    expect(empty.dump()).toBe('');
    await failsWith(empty, tx().add({ kind: 'chain', name: 'agent-x' }), 'not-found', 1);
  });

  it('lists like the kernel: handles and comments, no rule bodies, canonical keys', async () => {
    await nft.run(
      tx()
        .add({ kind: 'element', set: 'agent-cidrs', key: ['10.2.3.4/32'] })
        .add({ kind: 'element', set: 'agent-vm', key: ['10.0.0.1'], value: ['jump agent-reg'], comment: 'a' }),
    );
    const s = await nft.list();
    expect(s.exists).toBe(true);
    const post = s.chains.get('agent-post')!;
    expect(post.base).toEqual({ type: 'nat', hook: 'postrouting', priority: 100 });
    expect(post.rules).toEqual([{ chain: 'agent-post', handle: expect.any(Number), comment: 'm' }]);
    expect(s.sets.get('agent-cidrs')!.elements).toEqual([{ key: ['10.1.0.0/16'] }, { key: ['10.2.3.4'] }]);
    expect(s.maps.get('agent-vm')).toMatchObject({
      value: 'verdict',
      elements: [{ key: ['10.0.0.1'], value: ['jump agent-reg'], comment: 'a' }],
    });
    expect(nft.rules('agent-post').map((r) => r.rule)).toEqual(['ip saddr @agent-cidrs masquerade']);
    // The listing is a copy.
    s.chains.get('agent-post')!.rules.length = 0;
    expect((await nft.list()).chains.get('agent-post')!.rules).toHaveLength(1);
  });

  it('is all or nothing: a failing operation leaves every earlier one of its transaction undone', async () => {
    const err = await failsWith(
      nft,
      tx()
        .add({ kind: 'chain', name: 'agent-new' })
        .add({ kind: 'element', set: 'agent-cidrs', key: ['10.9.0.0/16'] })
        .flush({ kind: 'chain', name: 'agent-post' })
        .delete({ kind: 'element', set: 'agent-cidrs', key: ['10.7.0.0/16'] }),
      'not-found',
      4,
    );
    expect(err.failingCommand).toBe('delete element inet strand agent-cidrs { 10.7.0.0/16 }');
    expect(err.message).toMatch(/at line 4/);
    expect(nft.applied).toHaveLength(1);
  });

  it('treats add of existing objects as no-ops and create as a failure', async () => {
    const before = nft.dump();
    await nft.run(
      tx()
        .add({ kind: 'table' })
        .add({ kind: 'chain', name: 'agent-reg' })
        .add({ kind: 'set', name: 'agent-cidrs', type: 'ipv4_addr', flags: ['interval'] })
        .add({ kind: 'element', set: 'agent-cidrs', key: ['10.1.0.0/16'] }),
    );
    expect(nft.dump()).toBe(before);
    await failsWith(nft, tx().create({ kind: 'table' }), 'exists');
    await failsWith(nft, tx().create({ kind: 'chain', name: 'agent-reg' }), 'exists');
    await failsWith(
      nft,
      tx().create({ kind: 'set', name: 'agent-cidrs', type: 'ipv4_addr', flags: ['interval'] }),
      'exists',
    );
    await failsWith(nft, tx().create({ kind: 'element', set: 'agent-cidrs', key: ['10.1.0.0/16'] }), 'exists');
  });

  it("answers like the kernel when an existing object's definition differs", async () => {
    await failsWith(
      nft,
      tx().add({ kind: 'chain', name: 'agent-post', base: { type: 'nat', hook: 'postrouting', priority: 101 } }),
      'unsupported',
    );
    await failsWith(
      nft,
      tx().add({ kind: 'chain', name: 'agent-reg', base: { type: 'filter', hook: 'input', priority: 0 } }),
      'unsupported',
    );
    await failsWith(
      nft,
      tx().add({ kind: 'set', name: 'agent-cidrs', type: 'ipv6_addr', flags: ['interval'] }),
      'exists',
    );
    await failsWith(nft, tx().add({ kind: 'set', name: 'agent-vm', type: 'ipv4_addr' }), 'exists');
    // Only the policy of a base chain changes in place.
    await nft.run(
      tx().add({
        kind: 'chain',
        name: 'agent-post',
        base: { type: 'nat', hook: 'postrouting', priority: 100, policy: 'drop' },
      }),
    );
    expect((await nft.list()).chains.get('agent-post')!.base!.policy).toBe('drop');
  });

  it('replaces a map value only by delete and add, as the kernel requires', async () => {
    await nft.run(tx().add({ kind: 'element', set: 'agent-vm', key: ['10.0.0.1'], value: ['drop'] }));
    await nft.run(tx().add({ kind: 'element', set: 'agent-vm', key: ['10.0.0.1'], value: ['drop'] }));
    await failsWith(
      nft,
      tx().add({ kind: 'element', set: 'agent-vm', key: ['10.0.0.1'], value: ['accept'] }),
      'exists',
    );
    await nft.run(
      tx()
        .delete({ kind: 'element', set: 'agent-vm', key: ['10.0.0.1'] })
        .add({ kind: 'element', set: 'agent-vm', key: ['10.0.0.1'], value: ['accept'] }),
    );
    expect(nft.elements('agent-vm')).toEqual(['10.0.0.1 : accept']);
    await failsWith(nft, tx().add({ kind: 'element', set: 'agent-vm', key: ['10.0.0.2'] }), 'invalid');
    await failsWith(
      nft,
      tx().add({ kind: 'element', set: 'agent-cidrs', key: ['10.0.0.2'], value: ['drop'] }),
      'invalid',
    );
    await failsWith(
      nft,
      tx().add({ kind: 'element', set: 'agent-vm', key: ['10.0.0.3'], value: ['jump agent-none'] }),
      'not-found',
    );
  });

  it('refuses overlapping intervals, prefixes in plain sets, and keys of the wrong arity', async () => {
    await failsWith(nft, tx().add({ kind: 'element', set: 'agent-cidrs', key: ['10.1.2.0/24'] }), 'invalid');
    await failsWith(nft, tx().add({ kind: 'element', set: 'agent-cidrs', key: ['10.0.0.0/8'] }), 'invalid');
    // Deleting first in the same transaction makes room.
    await nft.run(
      tx()
        .delete({ kind: 'element', set: 'agent-cidrs', key: ['10.1.0.0/16'] })
        .add({ kind: 'element', set: 'agent-cidrs', key: ['10.0.0.0/8'] }),
    );
    expect(nft.elements('agent-cidrs')).toEqual(['10.0.0.0/8']);
    await nft.run(tx().add({ kind: 'set', name: 'agent-plain', type: 'ipv4_addr' }));
    await failsWith(nft, tx().add({ kind: 'element', set: 'agent-plain', key: ['10.0.0.0/8'] }), 'invalid');
    await failsWith(nft, tx().add({ kind: 'element', set: 'agent-plain', key: ['10.0.0.1', '80'] }), 'invalid');
  });

  it('keeps chains and sets in use from being deleted', async () => {
    await failsWith(nft, tx().delete({ kind: 'chain', name: 'agent-post' }), 'busy');
    await failsWith(nft, tx().delete({ kind: 'set', name: 'agent-cidrs' }), 'busy');
    await nft.run(tx().add({ kind: 'element', set: 'agent-vm', key: ['10.0.0.1'], value: ['jump agent-reg'] }));
    await failsWith(nft, tx().delete({ kind: 'chain', name: 'agent-reg' }), 'busy');
    await nft.run(tx().flush({ kind: 'map', name: 'agent-vm' }).delete({ kind: 'chain', name: 'agent-reg' }));
    await nft.run(
      tx()
        .flush({ kind: 'chain', name: 'agent-post' })
        .delete({ kind: 'chain', name: 'agent-post' })
        .delete({ kind: 'set', name: 'agent-cidrs' }),
    );
    const s = await nft.list();
    expect([...s.chains.keys(), ...s.sets.keys(), ...s.maps.keys()]).toEqual(['agent-vm']);
    await failsWith(nft, tx().delete({ kind: 'set', name: 'agent-vm' }), 'not-found');
    await failsWith(nft, tx().flush({ kind: 'chain', name: 'agent-post' }), 'not-found');
  });

  it('checks the names a rule refers to', async () => {
    await failsWith(
      nft,
      tx().add({
        kind: 'rule',
        chain: 'agent-post',
        body: [lookup(payload('ip daddr'), 'agent-none'), verdict('accept')],
      }),
      'not-found',
    );
    await failsWith(
      nft,
      tx().add({ kind: 'rule', chain: 'agent-post', body: [verdict('jump', 'agent-none')] }),
      'not-found',
    );
    await failsWith(nft, tx().add({ kind: 'rule', chain: 'agent-none', body: [verdict('accept')] }), 'not-found');
    // An interface name that reads like a reference is a value, not a reference.
    const body = [match(meta('iifname'), { kind: 'name', value: '@x' }), vmap(payload('ip daddr'), 'agent-vm')];
    await nft.run(tx().add({ kind: 'rule', chain: 'agent-post', body }));
  });

  it('places rules by handle: add after, insert before, replace, delete', async () => {
    const h = (await nft.list()).chains.get('agent-post')!.rules[0]!.handle;
    await nft.run(
      tx()
        .add({ kind: 'rule', chain: 'agent-post', body: [counter()], comment: 'after', handle: h })
        .insert({ kind: 'rule', chain: 'agent-post', body: [counter()], comment: 'first' }),
    );
    await nft.run(tx().insert({ kind: 'rule', chain: 'agent-post', body: [counter()], comment: 'before', handle: h }));
    expect(nft.rules('agent-post').map((r) => r.comment)).toEqual(['first', 'before', 'm', 'after']);
    await nft.run(
      tx().replace({
        kind: 'rule',
        chain: 'agent-post',
        body: [match(payload('ip saddr'), addrValue('10.0.0.1')), { kind: 'masquerade' }],
        comment: 'm2',
        handle: h,
      }),
    );
    const handles = nft.rules('agent-post').map((r) => r.handle);
    await nft.run(tx().delete({ kind: 'rule', chain: 'agent-post', handle: handles[0]! }));
    expect(nft.rules('agent-post').map((r) => r.comment)).toEqual(['before', 'm2', 'after']);
    await failsWith(nft, tx().delete({ kind: 'rule', chain: 'agent-post', handle: 9999 }), 'not-found');
  });

  it('check() applies nothing; failNextRun() injects one failure', async () => {
    const before = nft.dump();
    await nft.check(tx().flush({ kind: 'chain', name: 'agent-post' }));
    expect(nft.dump()).toBe(before);
    await expect(nft.check(tx().flush({ kind: 'chain', name: 'agent-none' }))).rejects.toThrow(
      /not-found|No such file/,
    );
    nft.failNextRun('timeout');
    await failsWith(nft, tx().add({ kind: 'chain', name: 'agent-x' }), 'timeout');
    await nft.run(tx().add({ kind: 'chain', name: 'agent-x' }));
    expect(nft.state!.chains.has('agent-x')).toBe(true);
  });

  it('dumps a script that recreates the same state', async () => {
    const copy = new FakeNft();
    const script = nft.dump();
    expect(script).toContain('add rule inet strand agent-post ip saddr @agent-cidrs masquerade comment "m"');
    // Replay it line by line through a transaction of the same operations.
    const replay = tx()
      .add({ kind: 'table' })
      .add({ kind: 'chain', name: 'agent-post', base: { type: 'nat', hook: 'postrouting', priority: PRIORITY.srcnat } })
      .add({ kind: 'chain', name: 'agent-reg' })
      .add({ kind: 'set', name: 'agent-cidrs', type: 'ipv4_addr', flags: ['interval'] })
      .add({ kind: 'element', set: 'agent-cidrs', key: ['10.1.0.0/16'] })
      .add({ kind: 'map', name: 'agent-vm', type: 'ipv4_addr', value: 'verdict' })
      .add({
        kind: 'rule',
        chain: 'agent-post',
        body: [lookup(payload('ip saddr'), 'agent-cidrs'), { kind: 'masquerade' }],
        comment: 'm',
      });
    await copy.run(replay);
    expect(copy.dump()).toBe(script);
  });
});
