// Transactions: operations kept in order and rendered one command per line, checked when added, never
// able to flush or delete the shared table, optionally limited to one name prefix; and what the real
// runner makes of nft's stderr and JSON (pure parts; the process itself is tested against the kernel).
import { describe, expect, it } from 'vitest';
import { NftObjectError, type TableRef } from '../../src/nft/objects.ts';
import { parseListJson, parseNftStderr, reasonOf } from '../../src/nft/runner.ts';
import { isNftError, NftError } from '../../src/nft/errors.ts';
import { describeTransaction, Transaction } from '../../src/nft/transaction.ts';
import { counter, verdict } from '../../src/nft/expr.ts';

describe('Transaction', () => {
  it('renders its operations in order, one line each, for the given table', () => {
    const tx = new Transaction()
      .add({ kind: 'table' })
      .add({ kind: 'chain', name: 'agent-fw' })
      .flush({ kind: 'chain', name: 'agent-fw' })
      .add({ kind: 'rule', chain: 'agent-fw', body: [counter()] })
      .add({ kind: 'set', name: 'agent-s', type: 'ipv4_addr' })
      .add({ kind: 'element', set: 'agent-s', key: ['10.0.0.1'] })
      .delete({ kind: 'element', set: 'agent-s', key: ['10.0.0.2'] })
      .delete({ kind: 'rule', chain: 'agent-fw', handle: 3 })
      .delete({ kind: 'set', name: 'agent-old' });
    expect(tx.render()).toBe(
      [
        'add table inet strand',
        'add chain inet strand agent-fw',
        'flush chain inet strand agent-fw',
        'add rule inet strand agent-fw counter',
        'add set inet strand agent-s { type ipv4_addr ; }',
        'add element inet strand agent-s { 10.0.0.1 }',
        'delete element inet strand agent-s { 10.0.0.2 }',
        'delete rule inet strand agent-fw handle 3',
        'delete set inet strand agent-old',
        '',
      ].join('\n'),
    );
    const other: TableRef = { family: 'ip', name: 'test-t' };
    expect(tx.render(other).split('\n')[0]).toBe('add table ip test-t');
    expect(tx.operations).toHaveLength(9);
    expect(tx.empty).toBe(false);
    expect(new Transaction().empty).toBe(true);
    expect(new Transaction().render()).toBe('');
  });

  it('checks each object when it is added, leaving the transaction as it was', () => {
    const tx = new Transaction().add({ kind: 'chain', name: 'agent-a' });
    expect(() => tx.add({ kind: 'chain', name: 'filter' })).toThrow(NftObjectError);
    expect(() => tx.add({ kind: 'rule', chain: 'agent-a', body: [verdict('accept')], comment: '"' })).toThrow(
      NftObjectError,
    );
    expect(() => tx.flush({ kind: 'set', name: 'ip' })).toThrow(/invalid set name/);
    expect(tx.operations).toHaveLength(1);
  });

  it('can neither flush nor delete the table, nor create rules or delete one without a handle', () => {
    const tx = new Transaction();
    expect(() => tx.flush({ kind: 'table' } as never)).toThrow(/only chains, sets and maps/);
    expect(() => tx.delete({ kind: 'table' } as never)).toThrow(/other owners/);
    expect(() => tx.delete({ kind: 'rule', chain: 'agent-a' } as never)).toThrow(/handle/);
    expect(() => tx.create({ kind: 'rule', chain: 'agent-a', body: [verdict('accept')] } as never)).toThrow(
      /add or insert/,
    );
    expect(() => tx.replace({ kind: 'rule', chain: 'agent-a', body: [verdict('accept')] } as never)).toThrow(/handle/);
    expect(tx.empty).toBe(true);
  });

  it('appends another transaction after its own operations, in order, checked as if added here', () => {
    const diff = new Transaction()
      .flush({ kind: 'chain', name: 'agent-pol-x' })
      .add({ kind: 'rule', chain: 'agent-pol-x', body: [verdict('drop')] });
    const tx = new Transaction({ ownedPrefix: 'agent-' }).add({ kind: 'chain', name: 'agent-pol-x' }).append(diff);
    expect(tx.render()).toBe(
      'add chain inet strand agent-pol-x\nflush chain inet strand agent-pol-x\nadd rule inet strand agent-pol-x drop\n',
    );
    expect(diff.operations).toHaveLength(2);
    expect(() => tx.append(new Transaction().add({ kind: 'chain', name: 'cni-masquerade' }))).toThrow(NftObjectError);
  });

  it('copies what a caller could still change, and shares what cannot change', () => {
    const diff = new Transaction().add({ kind: 'chain', name: 'agent-pol-x' });
    const tx = new Transaction({ ownedPrefix: 'agent-' }).append(diff);
    // Appended: the other transaction's own copy, shared.
    expect(tx.operations[0]).toBe(diff.operations[0]);
    // An element frozen whole is shared; a mutable one is copied, so changing it later changes nothing.
    const frozen = Object.freeze({ kind: 'element' as const, set: 'agent-pol-s', key: Object.freeze(['10.0.0.1']) });
    const open = { kind: 'element' as const, set: 'agent-pol-s', key: ['10.0.0.2'] };
    const els = new Transaction().add(frozen).add(open);
    expect(els.operations[0]?.object).toBe(frozen);
    expect(els.operations[1]?.object).not.toBe(open);
    open.key[0] = '10.0.0.3';
    expect(els.render()).toBe(
      'add element inet strand agent-pol-s { 10.0.0.1 }\nadd element inet strand agent-pol-s { 10.0.0.2 }\n',
    );
    // A bad element is refused whether frozen or not.
    expect(() =>
      new Transaction().add(Object.freeze({ kind: 'element', set: 'bad name!', key: Object.freeze(['x']) })),
    ).toThrow(NftObjectError);
  });

  it('with ownedPrefix, refuses every chain, set, map and element outside it', () => {
    const tx = new Transaction({ ownedPrefix: 'agent-' });
    tx.add({ kind: 'table' })
      .add({ kind: 'chain', name: 'agent-x' })
      .add({ kind: 'rule', chain: 'agent-x', body: [verdict('jump', 'cni-masquerade')] });
    expect(() => tx.flush({ kind: 'chain', name: 'cni-masquerade' })).toThrow(/only touches objects named agent-\*/);
    expect(() => tx.delete({ kind: 'set', name: 'cni-1a2b3c4d-5e6f7a8b' })).toThrow(/agent-\*/);
    expect(() => tx.add({ kind: 'rule', chain: 'cni-masquerade', body: [verdict('accept')] })).toThrow(/agent-\*/);
    expect(() => tx.delete({ kind: 'element', set: 'cni-x-y', key: ['10.0.0.1'] })).toThrow(/agent-\*/);
    expect(tx.operations).toHaveLength(3);
  });

  it('keeps a copy of each object, so later changes by the caller do not leak in', () => {
    const rule = { kind: 'rule' as const, chain: 'agent-a', body: [verdict('accept')] };
    const tx = new Transaction().add(rule);
    rule.body = [verdict('drop')];
    expect(tx.render()).toBe('add rule inet strand agent-a accept\n');
  });

  it('describes itself for errors and logs', () => {
    const tx = new Transaction().add({ kind: 'table' });
    expect(describeTransaction(tx, { family: 'inet', name: 'strand' })).toBe(
      'apply nftables transaction (1 command) to table inet strand',
    );
  });
});

describe('Transaction with shared objects', () => {
  it('shares a rule it checked once, and still refuses an invalid one every time', () => {
    const rule = { kind: 'rule' as const, chain: 'agent-pol-x', body: [counter(), verdict('accept')] };
    const a = new Transaction({ ownedPrefix: 'agent-', shareObjects: true }).add(rule);
    const b = new Transaction({ ownedPrefix: 'agent-', shareObjects: true }).add(rule);
    expect(a.operations[0]?.object).toBe(rule);
    expect(b.operations[0]?.object).toBe(rule);
    const bad = { kind: 'rule' as const, chain: 'agent-pol-x', body: [] };
    for (let i = 0; i < 2; i++)
      expect(() => new Transaction({ ownedPrefix: 'agent-', shareObjects: true }).add(bad)).toThrow(NftObjectError);
    // The owner check is the transaction's own: a checked rule is still refused by another owner.
    expect(() => new Transaction({ ownedPrefix: 'cni-', shareObjects: true }).add(rule)).toThrow(NftObjectError);
  });
});

describe('nft errors', () => {
  it("finds nft's first located error and its line", () => {
    const stderr = [
      '/dev/stdin:2:22-28: Error: Could not process rule: No such file or directory',
      'add rule inet strand nochain counter',
      '                     ^^^^^^^',
      '',
    ].join('\n');
    expect(parseNftStderr(stderr)).toEqual({ line: 2, detail: 'Could not process rule: No such file or directory' });
    expect(parseNftStderr('Error: No such file or directory\nlist table inet x\n')).toEqual({
      detail: 'No such file or directory',
    });
    expect(parseNftStderr('\nsomething odd\n')).toEqual({ detail: 'something odd' });
  });

  it('maps messages to reasons', () => {
    expect(reasonOf('/dev/stdin:1:23-30: Error: syntax error, unexpected quoted string, expecting string')).toBe(
      'syntax',
    );
    expect(reasonOf('Error: Could not process rule: No such file or directory')).toBe('not-found');
    expect(reasonOf('/dev/stdin:1:47-57: Error: element does not exist')).toBe('not-found');
    expect(reasonOf('Error: Could not process rule: File exists')).toBe('exists');
    expect(reasonOf('Error: Could not process rule: Device or resource busy')).toBe('busy');
    expect(reasonOf('Error: Could not process rule: Operation not supported')).toBe('unsupported');
    expect(reasonOf('Error: interval overlaps with an existing one')).toBe('invalid');
    expect(reasonOf('Error: Could not resolve hostname: Temporary failure in name resolution')).toBe('invalid');
    expect(reasonOf('Error: something new')).toBe('failed');
  });

  it('says what failed, where, and at which command', () => {
    const e = new NftError({
      reason: 'not-found',
      operation: 'apply nftables transaction (2 commands) to table inet strand',
      detail: 'No such file or directory',
      netns: 'n1',
      line: 2,
      failingCommand: 'add rule inet strand x-y counter',
    });
    expect(e.message).toBe(
      'failed to apply nftables transaction (2 commands) to table inet strand in netns n1 at line 2 `add rule inet strand x-y counter`: No such file or directory',
    );
    expect(isNftError(e)).toBe(true);
    expect(isNftError(e, 'not-found')).toBe(true);
    expect(isNftError(e, 'exists')).toBe(false);
    expect(isNftError(new Error('x'))).toBe(false);
  });
});

describe('nft -j list table', () => {
  // Captured from nft 1.0.6 on this machine (trimmed), with another table's objects mixed in.
  const json = JSON.stringify({
    nftables: [
      { metainfo: { version: '1.0.6', release_name: 'Lester Gooch #5', json_schema_version: 1 } },
      { table: { family: 'inet', name: 'strand', handle: 1 } },
      {
        set: {
          family: 'inet',
          name: 'agent-cluster-v4',
          table: 'strand',
          type: 'ipv4_addr',
          handle: 3,
          comment: 'cidrs',
          flags: ['interval'],
          elem: [
            { elem: { val: { prefix: { addr: '10.1.0.0', len: 16 } }, comment: 'a' } },
            '10.2.0.1',
            { range: ['10.3.0.0', '10.3.0.9'] },
          ],
        },
      },
      { set: { family: 'inet', name: 'cni-a-b', table: 'strand', type: 'ipv6_addr', handle: 4 } },
      { set: { family: 'ip', name: 'other-set', table: 'strand', type: 'ipv4_addr', handle: 4 } },
      {
        map: {
          family: 'inet',
          name: 'policy-vm',
          table: 'strand',
          type: 'ipv4_addr',
          handle: 5,
          map: 'verdict',
          elem: [
            ['10.0.0.1', { jump: { target: 'agent-reg' } }],
            ['10.0.0.2', { drop: null }],
            [{ elem: { val: '10.0.0.3', comment: 'c' } }, { accept: null }],
          ],
        },
      },
      {
        map: {
          family: 'inet',
          name: 'agent-m2',
          table: 'strand',
          type: ['ipv4_addr', 'inet_service'],
          handle: 6,
          map: 'ipv4_addr',
          elem: [[{ concat: ['10.0.0.1', 80] }, '10.9.9.9']],
        },
      },
      {
        chain: {
          family: 'inet',
          table: 'strand',
          name: 'agent-postrouting',
          handle: 1,
          type: 'nat',
          hook: 'postrouting',
          prio: 100,
          policy: 'accept',
        },
      },
      { chain: { family: 'inet', table: 'strand', name: 'agent-reg', handle: 2 } },
      {
        rule: {
          family: 'inet',
          table: 'strand',
          chain: 'agent-postrouting',
          handle: 7,
          comment: 'v4 egress',
          expr: [{ masquerade: null }],
        },
      },
      { rule: { family: 'inet', table: 'strand', chain: 'agent-postrouting', handle: 8, expr: [{ return: null }] } },
      {
        rule: {
          family: 'inet',
          table: 'strand',
          chain: 'agent-reg',
          handle: 10,
          expr: [{ counter: { packets: 0, bytes: 0 } }],
        },
      },
    ],
  });

  it('reads chains with their rules, sets and maps with their elements, of this table only', () => {
    const s = parseListJson(json);
    expect(s.exists).toBe(true);
    expect([...s.chains.keys()]).toEqual(['agent-postrouting', 'agent-reg']);
    const post = s.chains.get('agent-postrouting')!;
    expect(post.base).toEqual({ type: 'nat', hook: 'postrouting', priority: 100, policy: 'accept' });
    expect(post.rules.map((r) => [r.handle, r.comment])).toEqual([
      [7, 'v4 egress'],
      [8, undefined],
    ]);
    expect(post.rules[0]!.expr).toEqual([{ masquerade: null }]);
    expect(s.chains.get('agent-reg')!.base).toBeUndefined();
    expect([...s.sets.keys()]).toEqual(['agent-cluster-v4', 'cni-a-b']);
    const v4 = s.sets.get('agent-cluster-v4')!;
    expect(v4).toMatchObject({ type: 'ipv4_addr', flags: ['interval'], comment: 'cidrs', handle: 3 });
    expect(v4.elements).toEqual([
      { key: ['10.1.0.0/16'], comment: 'a' },
      { key: ['10.2.0.1'] },
      { key: ['10.3.0.0-10.3.0.9'] },
    ]);
    expect(s.sets.get('cni-a-b')!.elements).toEqual([]);
    const vm = s.maps.get('policy-vm')!;
    expect(vm.value).toBe('verdict');
    expect(vm.elements).toEqual([
      { key: ['10.0.0.1'], value: ['jump agent-reg'] },
      { key: ['10.0.0.2'], value: ['drop'] },
      { key: ['10.0.0.3'], value: ['accept'], comment: 'c' },
    ]);
    expect(s.maps.get('agent-m2')).toMatchObject({
      type: 'ipv4_addr . inet_service',
      value: 'ipv4_addr',
      elements: [{ key: ['10.0.0.1', '80'], value: ['10.9.9.9'] }],
    });
  });

  it('refuses what it cannot read', () => {
    expect(() => parseListJson('{}')).toThrow(/nftables/);
    expect(() => parseListJson(JSON.stringify({ nftables: [{ metainfo: { json_schema_version: 2 } }] }))).toThrow(
      /schema version 2/,
    );
  });
});
