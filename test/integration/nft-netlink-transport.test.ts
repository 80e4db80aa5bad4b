// The netlink NftTransport judged by nft: the same typed transactions applied over netlink in one
// namespace and with `nft -f` (the process transport) in another must list the same (`nft -j list`,
// handles aside); a refused transaction applies nothing and names its operation as nft's "line N" does;
// list, summary and counters read over netlink agree with the process transport's.
import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import {
  addrField,
  counter,
  lookup,
  match,
  meta,
  payload,
  verdict,
  type Expr,
  type Keyword,
  type Value,
} from '../../src/nft/expr.ts';
import { isNftError } from '../../src/nft/errors.ts';
import type { TableRef } from '../../src/nft/objects.ts';
import { createNftRunner } from '../../src/nft/runner.ts';
import { Transaction } from '../../src/nft/transaction.ts';
import type { NftTransport } from '../../src/nft/transport.ts';
import { TransportPairs, type TransportPair } from '../support/nft-transports.ts';
import type { TestNetns } from '../support/netns.ts';

const T: TableRef = { family: 'inet', name: 'strand' };
const pairs = new TransportPairs(T);
afterEach(() => pairs.destroy());

function pair(): TransportPair {
  return pairs.pair('nftnl', 'nftproc');
}

function listed(ns: TestNetns): unknown {
  const strip = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(strip);
    if (v && typeof v === 'object')
      return Object.fromEntries(
        Object.entries(v)
          .filter(([k]) => k !== 'handle')
          .map(([k, x]) => [k, strip(x)]),
      );
    return v;
  };
  const out = execFileSync('ip', ['netns', 'exec', ns.name, 'nft', '-j', 'list', 'table', 'inet', 'strand'], {
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  });
  return strip(
    (JSON.parse(out) as { nftables: Array<Record<string, unknown>> }).nftables.filter((o) => !('metainfo' in o)),
  );
}

const accept: Expr = verdict('accept');

function build(): Transaction {
  const tx = new Transaction();
  tx.add({ kind: 'table' });
  tx.add({
    kind: 'chain',
    name: 'agent-forward',
    base: { type: 'filter', hook: 'forward', priority: 0, policy: 'accept' },
  });
  tx.add({ kind: 'chain', name: 'agent-postrouting', base: { type: 'nat', hook: 'postrouting', priority: 100 } });
  tx.add({ kind: 'chain', name: 'agent-pod-a' });
  tx.add({ kind: 'chain', name: 'agent-pod-b' });
  tx.add({ kind: 'set', name: 'agent-cluster-v4', type: 'ipv4_addr', flags: ['interval'] });
  tx.add({ kind: 'set', name: 'agent-peers', type: 'ipv4_addr . inet_proto . inet_service' });
  tx.add({ kind: 'set', name: 'agent-ports', type: 'inet_proto . inet_service', flags: ['interval'] });
  tx.add({ kind: 'map', name: 'agent-in-v4', type: 'ipv4_addr', value: 'verdict' });
  tx.add({ kind: 'map', name: 'agent-in-v6', type: 'ipv6_addr', value: 'verdict' });
  tx.add({ kind: 'element', set: 'agent-cluster-v4', key: ['10.0.0.0/8'] });
  tx.add({ kind: 'element', set: 'agent-cluster-v4', key: ['192.168.1.0/24'] });
  tx.add({ kind: 'element', set: 'agent-peers', key: ['10.1.0.5', 'tcp', '80'] });
  tx.add({ kind: 'element', set: 'agent-ports', key: ['udp', '1000-2000'] });
  tx.add({ kind: 'element', set: 'agent-in-v4', key: ['10.1.0.7'], value: ['jump agent-pod-a'] });
  tx.add({ kind: 'element', set: 'agent-in-v4', key: ['10.1.0.8'], value: ['goto agent-pod-b'] });
  tx.add({ kind: 'element', set: 'agent-in-v6', key: ['fd00::7'], value: ['jump agent-pod-a'] });
  tx.add({
    kind: 'rule',
    chain: 'agent-forward',
    body: [match({ kind: 'ct', key: 'state' }, { kind: 'flags', values: ['established', 'related'] }), accept],
  });
  tx.add({
    kind: 'rule',
    chain: 'agent-forward',
    body: [{ kind: 'vmap', keys: [addrField(4, 'daddr')], map: 'agent-in-v4' }],
  });
  tx.add({
    kind: 'rule',
    chain: 'agent-forward',
    body: [{ kind: 'vmap', keys: [addrField(6, 'daddr')], map: 'agent-in-v6' }],
  });
  tx.add({
    kind: 'rule',
    chain: 'agent-pod-a',
    body: [lookup([addrField(4, 'saddr'), meta('l4proto'), payload('th dport')], 'agent-peers'), counter(), accept],
    comment: 'allow peers',
  });
  tx.add({
    kind: 'rule',
    chain: 'agent-pod-a',
    body: [lookup([meta('l4proto'), payload('th dport')], 'agent-ports'), counter(), accept],
    comment: 'ports',
  });
  tx.add({
    kind: 'rule',
    chain: 'agent-pod-a',
    body: [
      match(payload('th dport'), { kind: 'range', from: 8000, to: 8080 }),
      match(meta('l4proto'), { kind: 'keyword', value: 'tcp' }),
      accept,
    ],
  });
  tx.add({
    kind: 'rule',
    chain: 'agent-pod-a',
    body: [
      { kind: 'limit', rate: 10, per: 'second', burst: 20 },
      { kind: 'log', prefix: 'strand-deny ', level: 'info' },
    ],
  });
  tx.add({ kind: 'rule', chain: 'agent-pod-a', body: [counter(), verdict('drop')], comment: 'deny' });
  tx.add({
    kind: 'rule',
    chain: 'agent-pod-b',
    body: [
      match(addrField(4, 'saddr'), { kind: 'prefix', addr: '10.2.0.0', len: 16 }, 'ne'),
      match({ kind: 'meta', key: 'iifname' }, { kind: 'name', value: 'cni0' }),
      verdict('return'),
    ],
  });
  tx.add({
    kind: 'rule',
    chain: 'agent-pod-b',
    body: [
      match({ kind: 'fib', key: 'daddr type' }, { kind: 'keyword', value: 'local' }),
      verdict('jump', 'agent-pod-a'),
    ],
  });
  tx.add({
    kind: 'rule',
    chain: 'agent-postrouting',
    body: [
      lookup(addrField(4, 'saddr'), 'agent-cluster-v4'),
      lookup(addrField(4, 'daddr'), 'agent-cluster-v4', 'ne'),
      { kind: 'masquerade', fullyRandom: true },
    ],
  });
  return tx;
}

describe('netlink NftTransport', () => {
  it('applies every operation the way nft -f does (nft -j list of both equal)', async () => {
    const { nl, proc, a, b } = pair();
    for (const t of [nl, proc]) await t.run(build());
    expect(listed(a)).toEqual(listed(b));
    // Then rule placement, replace, element and set flushes and deletes, on both.
    const handles = async (t: NftTransport) =>
      (await t.list()).chains.get('agent-pod-a')?.rules.map((r) => r.handle) ?? [];
    for (const t of [nl, proc]) {
      const [h1, h2] = await handles(t);
      const tx = new Transaction();
      tx.insert({ kind: 'rule', chain: 'agent-pod-a', body: [verdict('continue')], comment: 'first' });
      tx.add({
        kind: 'rule',
        chain: 'agent-pod-a',
        body: [verdict('continue')],
        comment: 'after 1',
        handle: h1 as number,
      });
      tx.insert({
        kind: 'rule',
        chain: 'agent-pod-a',
        body: [verdict('continue')],
        comment: 'before 2',
        handle: h2 as number,
      });
      tx.replace({
        kind: 'rule',
        chain: 'agent-pod-a',
        body: [counter(), accept],
        comment: 'replaced',
        handle: h2 as number,
      });
      tx.delete({ kind: 'element', set: 'agent-in-v4', key: ['10.1.0.8'] });
      tx.delete({ kind: 'element', set: 'agent-cluster-v4', key: ['192.168.1.0/24'] });
      tx.flush({ kind: 'set', name: 'agent-peers' });
      tx.flush({ kind: 'map', name: 'agent-in-v6' });
      tx.flush({ kind: 'chain', name: 'agent-pod-b' });
      tx.delete({ kind: 'chain', name: 'agent-pod-b' });
      tx.create({ kind: 'set', name: 'agent-new', type: 'ipv6_addr', flags: ['interval'] });
      tx.add({ kind: 'element', set: 'agent-new', key: ['fd00::/64'] });
      await t.run(tx);
    }
    expect(listed(a)).toEqual(listed(b));
    // A separate transaction adds to sets it does not declare (their key types are read back).
    for (const t of [nl, proc]) {
      await t.run(
        new Transaction()
          .add({ kind: 'element', set: 'agent-peers', key: ['10.9.9.9', 'udp', '53'] })
          .add({ kind: 'element', set: 'agent-in-v6', key: ['fd00::9'], value: ['accept'] }),
      );
    }
    expect(listed(a)).toEqual(listed(b));
  });

  it('applies nothing of a refused transaction and names its operation as nft does', async () => {
    const { nl, proc, a } = pair();
    await nl.run(build());
    const before = listed(a);
    const bad = () =>
      new Transaction()
        .add({ kind: 'element', set: 'agent-cluster-v4', key: ['172.16.0.0/12'] })
        .add({ kind: 'rule', chain: 'agent-pod-a', body: [verdict('jump', 'agent-missing')] })
        .add({ kind: 'chain', name: 'agent-later' });
    const err = await nl.run(bad()).catch((e: unknown) => e);
    expect(isNftError(err, 'not-found')).toBe(true);
    if (!isNftError(err)) throw err;
    expect(err.line).toBe(2);
    expect(err.failingCommand).toBe('add rule inet strand agent-pod-a jump agent-missing');
    expect(listed(a)).toEqual(before);
    // The process transport says the same of the same transaction (reason and line).
    await proc.run(build());
    const perr = await proc.run(bad()).catch((e: unknown) => e);
    expect(isNftError(perr) && [perr.reason, perr.line]).toEqual(['not-found', 2]);
    // create of an existing set: exists.
    const exists = await nl
      .run(
        new Transaction().create({ kind: 'set', name: 'agent-peers', type: 'ipv4_addr . inet_proto . inet_service' }),
      )
      .catch((e: unknown) => e);
    expect(isNftError(exists, 'exists')).toBe(true);
  });

  it('runs a large transaction in slices, yielding between them, and commits it whole as nft -f does', async () => {
    const { nl, proc, a, b } = pair();
    // A rebuild's shape: chains, sets and maps, thousands of elements (one set's after another,
    // grouped into few messages) and rules.
    const big = () => {
      const tx = build();
      tx.add({ kind: 'set', name: 'agent-many', type: 'ipv4_addr' });
      tx.add({ kind: 'map', name: 'agent-many-v', type: 'ipv4_addr', value: 'verdict' });
      const ip = (i: number) => `10.7.${i >> 8}.${i & 255}`;
      for (let i = 0; i < 3000; i++) tx.add({ kind: 'element', set: 'agent-many', key: [ip(i)] });
      for (let i = 0; i < 3000; i += 3)
        tx.add({ kind: 'element', set: 'agent-many-v', key: [ip(i)], value: ['jump agent-pod-a'] });
      for (let i = 0; i < 500; i++)
        tx.add({ kind: 'rule', chain: 'agent-pod-b', body: [verdict('continue')], comment: `r${i}` });
      return tx;
    };
    let breaths = 0;
    const sent = await nl.runSliced(
      big(),
      async () => {
        breaths++;
        await new Promise((resolve) => setImmediate(resolve));
      },
      0,
    );
    await proc.run(big());
    expect(listed(a)).toEqual(listed(b));
    // Slices every 128 operations with a 0 ms budget; elements went 64 to a message.
    expect(breaths).toBeGreaterThan(20);
    expect(sent.slices).toBe(breaths + 1);
    expect(sent.messages).toBeLessThan(700);
    expect(sent.bytes).toBeGreaterThan(0);

    // A refused one applies nothing, and names its operation as run() does.
    const before = listed(a);
    const bad = big();
    bad.add({ kind: 'rule', chain: 'agent-pod-a', body: [verdict('jump', 'agent-missing')] });
    const err = await nl.runSliced(bad, async () => undefined, 0).catch((e: unknown) => e);
    expect(isNftError(err, 'not-found')).toBe(true);
    if (!isNftError(err)) throw err;
    expect(err.line).toBe(bad.operations.length);
    expect(err.failingCommand).toBe('add rule inet strand agent-pod-a jump agent-missing');
    expect(listed(a)).toEqual(before);
  });

  it('commits a small transaction at once on its kept socket, all or nothing, as nft -f does', async () => {
    const { nl, proc, a, b } = pair();
    // A pod-start bind's shape: a few chains, a set, elements and rules; no slice, no second socket.
    const small = () =>
      build()
        .add({ kind: 'set', name: 'agent-few', type: 'ipv4_addr' })
        .add({ kind: 'element', set: 'agent-few', key: ['10.9.0.1'] })
        .add({ kind: 'element', set: 'agent-few', key: ['10.9.0.2'] })
        .add({ kind: 'rule', chain: 'agent-pod-a', body: [verdict('return')], comment: 'few' });
    let breaths = 0;
    const sent = await nl.runSliced(small(), async () => {
      breaths++;
    });
    await proc.run(small());
    expect(listed(a)).toEqual(listed(b));
    expect([breaths, sent.slices]).toEqual([0, 1]);
    expect(sent.messages).toBeGreaterThan(4);
    const before = listed(a);
    const bad = small().add({ kind: 'rule', chain: 'agent-pod-a', body: [verdict('jump', 'agent-missing')] });
    const err = await nl.runSliced(bad, async () => undefined).catch((e: unknown) => e);
    expect(isNftError(err, 'not-found')).toBe(true);
    if (!isNftError(err)) throw err;
    expect(err.line).toBe(bad.operations.length);
    expect(listed(a)).toEqual(before);
  });

  it('writes anonymous sets, icmpv6 type and comments on sets, maps and chains as nft -f does', async () => {
    const { nl, proc, a, b } = pair();
    const nd = [
      'nd-router-solicit',
      'nd-router-advert',
      'nd-neighbor-solicit',
      'nd-neighbor-advert',
      'nd-redirect',
    ] as const;
    const anon = (values: readonly Keyword[]): Value => ({
      kind: 'anon-set',
      elements: values.map((value) => ({ kind: 'keyword', value })),
    });
    const tx = () =>
      build()
        .add({ kind: 'chain', name: 'agent-noted', comment: 'a chain comment' })
        .add({
          kind: 'set',
          name: 'agent-noted-v4',
          type: 'ipv4_addr',
          flags: ['interval'],
          comment: 'cluster CIDRs (IPv4)',
        })
        .add({ kind: 'map', name: 'agent-noted-map', type: 'ipv6_addr', value: 'verdict', comment: 'a map comment' })
        // The policy skeleton's neighbour discovery rule, a negated set, one keyword, a protocol set.
        .add({ kind: 'rule', chain: 'agent-forward', body: [match(payload('icmpv6 type'), anon(nd)), accept] })
        .add({
          kind: 'rule',
          chain: 'agent-pod-a',
          body: [match(payload('icmpv6 type'), anon(['echo-request', 'echo-reply']), 'ne'), counter(), accept],
          comment: 'not echo',
        })
        .add({
          kind: 'rule',
          chain: 'agent-pod-a',
          body: [match(payload('icmpv6 type'), { kind: 'keyword', value: 'echo-request' }), accept],
        })
        .add({
          kind: 'rule',
          chain: 'agent-pod-b',
          body: [
            match(meta('l4proto'), anon(['tcp', 'udp'])),
            match(payload('th dport'), {
              kind: 'anon-set',
              elements: [
                { kind: 'number', value: 53 },
                { kind: 'number', value: 80 },
              ],
            }),
            accept,
          ],
        });
    await nl.run(tx());
    await proc.run(tx());
    expect(nl.stats.batches).toBe(1);
    expect(listed(a)).toEqual(listed(b));
    // nft 1.0.6 leaves chain comments out of its JSON: the text listing shows them.
    const text = (ns: TestNetns) =>
      execFileSync('ip', ['netns', 'exec', ns.name, 'nft', 'list', 'chain', 'inet', 'strand', 'agent-noted'], {
        encoding: 'utf8',
      });
    expect(text(a)).toContain('comment "a chain comment"');
    expect(text(a)).toEqual(text(b));
    // The rules' anonymous sets are theirs: not listed as the table's, gone with their rules.
    const state = await nl.list();
    expect([...state.sets.keys(), ...state.maps.keys()].filter((n) => n.startsWith('__'))).toEqual([]);
    await nl.run(
      new Transaction().flush({ kind: 'chain', name: 'agent-pod-a' }).flush({ kind: 'chain', name: 'agent-pod-b' }),
    );
    await proc.run(
      new Transaction().flush({ kind: 'chain', name: 'agent-pod-a' }).flush({ kind: 'chain', name: 'agent-pod-b' }),
    );
    expect(listed(a)).toEqual(listed(b));
    // What has no netlink form is still refused by name, before anything is sent.
    const err = await nl
      .run(new Transaction().add({ kind: 'set', name: 'agent-dyn', type: 'ipv4_addr', flags: ['dynamic'] }))
      .catch((e: unknown) => e);
    expect(isNftError(err, 'invalid') && err.line).toBe(1);
    expect(String((err as Error).message)).toMatch(/dynamic/);
  });

  it('reads list, summary and counters as the process transport does', async () => {
    const { nl, a } = pair();
    await nl.run(build());
    const proc = createNftRunner({ table: T, netns: a.name });
    const [n, p] = [await nl.list(), await proc.list()];
    expect(n.exists).toBe(true);
    expect([...n.chains.keys()].sort()).toEqual([...p.chains.keys()].sort());
    for (const [name, c] of p.chains) {
      const got = n.chains.get(name);
      expect(got?.base).toEqual(c.base);
      expect(got?.rules.map((r) => [r.handle, r.comment, r.counter])).toEqual(
        c.rules.map((r) => [r.handle, r.comment, r.counter]),
      );
    }
    for (const [name, s] of p.sets)
      expect([n.sets.get(name)?.type, n.sets.get(name)?.flags.sort()]).toEqual([s.type, [...s.flags].sort()]);
    for (const [name, m] of p.maps)
      expect([n.maps.get(name)?.type, n.maps.get(name)?.value]).toEqual([m.type, m.value]);
    // Adoption reads the verdict maps' elements by name.
    const only = await nl.list({ sets: ['agent-in-v4', 'agent-in-v6', 'agent-cluster-v4'] });
    const ponly = await proc.list({ sets: ['agent-in-v4', 'agent-in-v6', 'agent-cluster-v4'] });
    const els = (s: typeof only) =>
      [...s.maps.values(), ...s.sets.values()]
        .map((m) => [m.name, m.elements.map((e) => [e.key, e.value]).sort()])
        .sort();
    expect(els(only)).toEqual(els(ponly));
    expect(await nl.summary(['agent-pod-a'])).toEqual(await proc.summary(['agent-pod-a']));
    expect(await nl.counters()).toEqual(await proc.counters());
    expect(await nl.counters(['agent-pod-a'])).toEqual(await proc.counters(['agent-pod-a']));
  });

  it('says a table is absent, and reads an empty one', async () => {
    const { nl } = pair();
    expect((await nl.list()).exists).toBe(false);
    expect((await nl.summary([])).exists).toBe(false);
    await nl.run(new Transaction().add({ kind: 'table' }));
    expect((await nl.list()).exists).toBe(true);
  });
});
