// The real nft runner against the kernel, inside a test network namespace only: what is added lists
// back, a failing transaction changes nothing at all, errors name nft's message and the failing line,
// and the in-memory fake answers the same transactions the way the kernel does.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { FakeNft } from '../../src/nft/fake.ts';
import { PRIORITY, type TableState } from '../../src/nft/objects.ts';
import { createNftRunner } from '../../src/nft/runner.ts';
import { isNftError, NftError } from '../../src/nft/errors.ts';
import { Transaction } from '../../src/nft/transaction.ts';
import type { Nft } from '../../src/nft/transport.ts';
import { TestNetns } from '../support/netns.ts';
import { counter, lookup, match, meta, payload, verdict } from '../../src/nft/expr.ts';

const ns = TestNetns.create('nft');
const dir = mkdtempSync(join(tmpdir(), 'strand-nft-'));
const nft = createNftRunner({ netns: ns.name });

afterAll(() => {
  ns.destroy();
  rmSync(dir, { recursive: true, force: true });
});

/** The table as `nft list` prints it in the test namespace ("" without it). */
function listed(): string {
  const r = ns.tryExec('nft', ['list', 'table', 'inet', 'strand']);
  return r.status === 0 ? r.stdout : '';
}

/** A listed state without what only the kernel has (handles, rule expressions) and in a fixed order
 * (the kernel lists elements in its own order: by address for interval sets), to compare with the fake. */
function comparable(s: TableState) {
  const byName = <T extends { name: string }>(xs: T[]) => xs.sort((a, b) => a.name.localeCompare(b.name));
  const sets = <T extends { handle: number; elements: { key: string[] }[] }>(xs: Iterable<T>) =>
    [...xs].map(({ handle: _h, ...rest }) => ({
      ...rest,
      elements: [...rest.elements].sort((a, b) => a.key.join().localeCompare(b.key.join())),
    }));
  return {
    exists: s.exists,
    chains: byName(
      [...s.chains.values()].map((c) => ({ name: c.name, base: c.base, rules: c.rules.map((r) => r.comment ?? null) })),
    ),
    sets: byName(sets(s.sets.values())),
    maps: byName(sets(s.maps.values())),
  };
}

async function error(p: Promise<unknown>): Promise<NftError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e, 'the transaction should have failed').toBeInstanceOf(NftError);
  return e as NftError;
}

function everything(): Transaction {
  return new Transaction()
    .add({ kind: 'table' })
    .add({
      kind: 'chain',
      name: 'agent-post',
      base: { type: 'nat', hook: 'postrouting', priority: PRIORITY.srcnat, policy: 'accept' },
      comment: 'x; {y} # z',
    })
    .add({
      kind: 'chain',
      name: 'agent-fw',
      base: { type: 'filter', hook: 'forward', priority: PRIORITY.filter - 5, policy: 'accept' },
    })
    .add({ kind: 'chain', name: 'agent-pod-a' })
    .add({ kind: 'set', name: 'agent-cidrs', type: 'ipv4_addr', flags: ['interval'], comment: 'cluster' })
    .add({ kind: 'set', name: 'agent-cidrs6', type: 'ipv6_addr', flags: ['interval'] })
    .add({ kind: 'set', name: 'agent-ports', type: 'ipv4_addr . inet_service' })
    .add({ kind: 'map', name: 'agent-pods', type: 'ipv4_addr', value: 'verdict', comment: 'pod verdicts' })
    .add({ kind: 'map', name: 'agent-dnat', type: 'ipv4_addr', value: 'ipv4_addr' })
    .add({ kind: 'element', set: 'agent-cidrs', key: ['10.77.0.0/16'], comment: 'pods' })
    .add({ kind: 'element', set: 'agent-cidrs', key: ['10.78.0.5'] })
    .add({ kind: 'element', set: 'agent-cidrs6', key: ['fd00:77::/48'] })
    .add({ kind: 'element', set: 'agent-ports', key: ['10.77.1.2', '8080'] })
    .add({ kind: 'element', set: 'agent-pods', key: ['10.77.1.2'], value: ['jump agent-pod-a'], comment: 'pod a' })
    .add({ kind: 'element', set: 'agent-pods', key: ['10.77.1.3'], value: ['drop'] })
    .add({ kind: 'element', set: 'agent-dnat', key: ['10.77.1.9'], value: ['10.77.1.10'] })
    .add({
      kind: 'rule',
      chain: 'agent-pod-a',
      body: [
        match(meta('l4proto'), { kind: 'keyword', value: 'tcp' }),
        match(payload('th dport'), { kind: 'number', value: 8080 }),
        verdict('accept'),
      ],
      comment: 'web',
    })
    .add({ kind: 'rule', chain: 'agent-pod-a', body: [verdict('drop')] })
    .add({
      kind: 'rule',
      chain: 'agent-fw',
      body: [{ kind: 'vmap', keys: [payload('ip daddr')], map: 'agent-pods' }],
      comment: 'to pods',
    })
    .add({
      kind: 'rule',
      chain: 'agent-fw',
      body: [
        match(meta('l4proto'), { kind: 'keyword', value: 'tcp' }),
        lookup([payload('ip daddr'), payload('th dport')], 'agent-ports'),
        counter(),
        verdict('accept'),
      ],
    })
    .add({
      kind: 'rule',
      chain: 'agent-post',
      body: [
        lookup(payload('ip saddr'), 'agent-cidrs'),
        lookup(payload('ip daddr'), 'agent-cidrs', 'ne'),
        { kind: 'masquerade', fullyRandom: true },
      ],
      comment: "a; {b} # c \\ 'd'",
    });
}

describe('nft runner', () => {
  beforeEach(() => {
    // Each test starts from an empty namespace: only nft objects inside it exist.
    ns.tryExec('nft', ['delete', 'table', 'inet', 'strand']);
  });

  it('lists nothing when there is no table', async () => {
    expect(await nft.list()).toEqual({ exists: false, chains: new Map(), sets: new Map(), maps: new Map() });
    await nft.run(new Transaction());
    expect(listed()).toBe('');
  });

  it('applies a transaction of every object kind and lists it back', async () => {
    await nft.run(everything());
    const s = await nft.list();
    expect(s.exists).toBe(true);
    expect(s.chains.get('agent-post')!.base).toEqual({
      type: 'nat',
      hook: 'postrouting',
      priority: 100,
      policy: 'accept',
    });
    expect(s.chains.get('agent-fw')!.base).toEqual({ type: 'filter', hook: 'forward', priority: -5, policy: 'accept' });
    expect(s.chains.get('agent-pod-a')!.base).toBeUndefined();
    expect(s.chains.get('agent-pod-a')!.rules.map((r) => r.comment)).toEqual(['web', undefined]);
    expect(s.chains.get('agent-post')!.rules[0]!.comment).toBe("a; {b} # c \\ 'd'");
    for (const c of s.chains.values()) for (const r of c.rules) expect(r.handle).toBeGreaterThan(0);
    expect(s.sets.get('agent-cidrs')).toMatchObject({
      type: 'ipv4_addr',
      flags: ['interval'],
      comment: 'cluster',
      elements: [{ key: ['10.77.0.0/16'], comment: 'pods' }, { key: ['10.78.0.5'] }],
    });
    expect(s.sets.get('agent-cidrs6')!.elements).toEqual([{ key: ['fd00:77::/48'] }]);
    expect(s.sets.get('agent-ports')).toMatchObject({
      type: 'ipv4_addr . inet_service',
      elements: [{ key: ['10.77.1.2', '8080'] }],
    });
    expect(s.maps.get('agent-pods')).toMatchObject({
      value: 'verdict',
      comment: 'pod verdicts',
      elements: expect.arrayContaining([
        { key: ['10.77.1.2'], value: ['jump agent-pod-a'], comment: 'pod a' },
        { key: ['10.77.1.3'], value: ['drop'] },
      ]),
    });
    expect(s.maps.get('agent-dnat')!.elements).toEqual([{ key: ['10.77.1.9'], value: ['10.77.1.10'] }]);
    expect(listed()).toContain('comment "x; {y} # z"');
  });

  it('is all or nothing: a transaction failing on its last line changes nothing', async () => {
    await nft.run(everything());
    const before = listed();
    const tx = new Transaction()
      .flush({ kind: 'chain', name: 'agent-post' })
      .delete({ kind: 'element', set: 'agent-cidrs', key: ['10.77.0.0/16'] })
      .add({ kind: 'chain', name: 'agent-new' })
      .add({ kind: 'element', set: 'agent-cidrs', key: ['10.99.0.0/16'] })
      .add({ kind: 'rule', chain: 'agent-missing', body: [counter()] });
    const e = await error(nft.run(tx));
    expect(e.reason).toBe('not-found');
    expect(e.line).toBe(5);
    expect(e.failingCommand).toBe('add rule inet strand agent-missing counter');
    expect(e.stderr).toMatch(/Error:/);
    expect(e.script).toBe(tx.render());
    expect(e.netns).toBe(ns.name);
    expect(e.message).toMatch(
      /^failed to apply nftables transaction \(5 commands\) to table inet strand in netns stt\w+ at line 5 `add rule inet strand agent-missing counter`: /,
    );
    expect(listed()).toBe(before);
  });

  // No `syntax` case: typed rule bodies cannot carry a syntax error to nft any more (the text escape
  // is gone); the reading of nft's syntax errors is unit-tested (reasonOf, nft-transaction.test.ts).
  it("names nft's reason: exists, busy, unsupported, invalid, not-found", async () => {
    await nft.run(everything());
    const before = listed();
    const cases: [Transaction, string][] = [
      [new Transaction().create({ kind: 'chain', name: 'agent-pod-a' }), 'exists'],
      [new Transaction().add({ kind: 'element', set: 'agent-pods', key: ['10.77.1.3'], value: ['accept'] }), 'exists'],
      [new Transaction().delete({ kind: 'chain', name: 'agent-pod-a' }), 'busy'],
      [new Transaction().delete({ kind: 'set', name: 'agent-cidrs' }), 'busy'],
      [
        new Transaction().add({
          kind: 'chain',
          name: 'agent-post',
          base: { type: 'nat', hook: 'postrouting', priority: 101 },
        }),
        'unsupported',
      ],
      [new Transaction().add({ kind: 'element', set: 'agent-cidrs', key: ['10.77.5.0/24'] }), 'invalid'],
      [new Transaction().delete({ kind: 'element', set: 'agent-cidrs', key: ['10.1.0.0/16'] }), 'not-found'],
      [
        new Transaction().add({
          kind: 'rule',
          chain: 'agent-pod-a',
          body: [lookup(payload('ip saddr'), 'agent-none'), verdict('drop')],
        }),
        'not-found',
      ],
    ];
    for (const [tx, reason] of cases) {
      const e = await error(nft.run(tx));
      expect([tx.render(), e.reason], e.message).toEqual([tx.render(), reason]);
      expect(e.line).toBe(1);
    }
    expect(listed()).toBe(before);
  });

  it('check() validates against the kernel without applying', async () => {
    await nft.run(everything());
    const before = listed();
    await nft.check(
      new Transaction().flush({ kind: 'chain', name: 'agent-post' }).add({ kind: 'chain', name: 'agent-checked' }),
    );
    expect(listed()).toBe(before);
    const e = await error(
      nft.check(new Transaction().add({ kind: 'rule', chain: 'agent-missing', body: [counter()] })),
    );
    expect(e.reason).toBe('not-found');
    expect(e.operation).toMatch(/^check /);
  });

  it('updates sets, maps and rules in place: element delete/add, map value replace, rule delete by handle, flush', async () => {
    await nft.run(everything());
    const handle = (await nft.list()).chains.get('agent-pod-a')!.rules[0]!.handle;
    await nft.run(
      new Transaction()
        .delete({ kind: 'element', set: 'agent-cidrs', key: ['10.77.0.0/16'] })
        .add({ kind: 'element', set: 'agent-cidrs', key: ['10.76.0.0/15'] })
        .delete({ kind: 'element', set: 'agent-pods', key: ['10.77.1.3'] })
        .add({ kind: 'element', set: 'agent-pods', key: ['10.77.1.3'], value: ['accept'] })
        .delete({ kind: 'rule', chain: 'agent-pod-a', handle })
        .insert({
          kind: 'rule',
          chain: 'agent-pod-a',
          body: [
            match(meta('l4proto'), { kind: 'keyword', value: 'udp' }),
            match(payload('th dport'), { kind: 'number', value: 53 }),
            verdict('accept'),
          ],
          comment: 'dns',
        })
        .flush({ kind: 'map', name: 'agent-dnat' }),
    );
    const s = await nft.list();
    expect(
      s.sets
        .get('agent-cidrs')!
        .elements.map((e) => e.key[0])
        .sort(),
    ).toEqual(['10.76.0.0/15', '10.78.0.5']);
    expect(s.maps.get('agent-pods')!.elements).toContainEqual({ key: ['10.77.1.3'], value: ['accept'] });
    expect(s.chains.get('agent-pod-a')!.rules.map((r) => r.comment)).toEqual(['dns', undefined]);
    expect(s.maps.get('agent-dnat')!.elements).toEqual([]);
  });

  it('the fake answers the same transactions as the kernel and lists the same state', async () => {
    const fake = new FakeNft();
    const steps: Transaction[] = [
      everything(),
      new Transaction().add({ kind: 'element', set: 'agent-cidrs', key: ['10.77.3.0/24'] }),
      new Transaction()
        .delete({ kind: 'element', set: 'agent-cidrs', key: ['10.77.0.0/16'] })
        .add({ kind: 'element', set: 'agent-cidrs', key: ['10.76.0.0/15'] }),
      new Transaction()
        .add({ kind: 'element', set: 'agent-cidrs', key: ['10.79.1.1/32'] })
        .add({ kind: 'element', set: 'agent-cidrs6', key: ['FD00:78:0::/48'] }),
      new Transaction().add({ kind: 'element', set: 'agent-pods', key: ['10.77.1.3'], value: ['accept'] }),
      new Transaction().add({
        kind: 'chain',
        name: 'agent-post',
        base: { type: 'nat', hook: 'postrouting', priority: 90 },
      }),
      new Transaction().add({ kind: 'set', name: 'agent-cidrs', type: 'ipv6_addr', flags: ['interval'] }),
      new Transaction().delete({ kind: 'chain', name: 'agent-pod-a' }),
      new Transaction()
        .flush({ kind: 'chain', name: 'agent-pod-a' })
        .delete({ kind: 'element', set: 'agent-pods', key: ['10.77.1.2'] })
        .delete({ kind: 'chain', name: 'agent-pod-a' }),
      new Transaction().delete({ kind: 'set', name: 'agent-cidrs6' }),
      new Transaction()
        .add({ kind: 'element', set: 'agent-ports', key: ['10.77.1.2', '8080'] })
        .create({ kind: 'element', set: 'agent-ports', key: ['10.77.1.2', '8080'] }),
      new Transaction().add({ kind: 'rule', chain: 'agent-fw', body: [verdict('jump', 'agent-pod-a')] }),
      new Transaction()
        .flush({ kind: 'chain', name: 'agent-post' })
        .delete({ kind: 'chain', name: 'agent-post' })
        .delete({ kind: 'set', name: 'agent-cidrs' }),
    ];
    const outcome = async (n: Nft, tx: Transaction) =>
      n.run(tx).then(
        () => 'ok',
        (e: unknown) => (isNftError(e) ? `${e.reason} at line ${e.line}` : String(e)),
      );
    for (const tx of steps) {
      const [real, faked] = [await outcome(nft, tx), await outcome(fake, tx)];
      expect({ script: tx.render(), result: faked }).toEqual({ script: tx.render(), result: real });
      expect(comparable(await fake.list())).toEqual(comparable(await nft.list()));
    }
  });
});

describe('nft runner process handling', () => {
  it('kills nft when it takes longer than the timeout', async () => {
    const slow = join(dir, 'slow-nft');
    writeFileSync(slow, '#!/bin/sh\nexec sleep 30\n');
    chmodSync(slow, 0o755);
    const runner = createNftRunner({ nftPath: slow, timeoutMs: 300 });
    const started = Date.now();
    const e = await error(runner.run(new Transaction().add({ kind: 'table' })));
    expect(e.reason).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(5000);
    expect((await error(runner.list())).reason).toBe('timeout');
  });

  it('reports an nft that cannot be started', async () => {
    const runner = createNftRunner({ nftPath: join(dir, 'no-such-nft') });
    const e = await error(runner.run(new Transaction().add({ kind: 'table' })));
    expect(e.reason).toBe('unavailable');
    expect(e.message).toMatch(/cannot run/);
  });

  it('does not mistake a missing namespace for a missing table', async () => {
    const gone = createNftRunner({ netns: `${ns.name}x` });
    expect((await error(gone.list())).reason).toBe('unavailable');
    const e = await error(gone.run(new Transaction().add({ kind: 'table' })));
    expect(e.reason).toBe('unavailable');
    expect(e.message).toMatch(/Cannot open network namespace/);
  });

  it('refuses a namespace name that is not a plain name', () => {
    expect(() => createNftRunner({ netns: '../x' })).toThrow(/invalid network namespace name/);
  });
});
