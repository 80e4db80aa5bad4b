// The nf_tables writer without a kernel: nft constructs compile to the expression lists
// `nft --debug=netlink` prints for them, elements encode as nft sends them, set ids link a batch's
// rules to its new sets, and a kernel error on one message of a batch names that operation.
import { describe, expect, it } from 'vitest';
import { Attrs, splitMessages } from '../../src/kernel/netlink-codec.ts';
import type { Collector } from '../../src/kernel/netlink-socket.ts';
import { NLMSG } from '../../src/kernel/netlink-const.ts';
import {
  applyBatch,
  BatchEncoder,
  encodeOps,
  NftBatchError,
  prepareBatch,
  type BatchSocket,
  type NftOp,
} from '../../src/nft/netlink/batch.ts';
import { compileRule } from '../../src/nft/netlink/compile.ts';
import { NFTA_RULE, NFTA_SET } from '../../src/nft/netlink/const.ts';
import { wireElements, type SetSpec } from '../../src/nft/netlink/messages.ts';
import { keyLayout } from '../../src/nft/netlink/values.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const inet = { family: 'inet' } as const;

describe('compileRule', () => {
  it('ip saddr . th dport @s: the nfproto dependency, then the fields in consecutive 32-bit registers', () => {
    const e = compileRule([{ kind: 'lookup', fields: ['ip saddr', 'th dport'], set: 's' }], inet);
    expect(e).toEqual([
      { kind: 'meta', dreg: 1, key: 'nfproto' },
      { kind: 'cmp', sreg: 1, op: '==', data: Buffer.of(2) },
      { kind: 'payload', dreg: 1, base: 'network', offset: 12, len: 4 },
      { kind: 'payload', dreg: 9, base: 'transport', offset: 2, len: 2 },
      { kind: 'lookup', sreg: 1, set: 's' },
    ]);
  });

  it('an IPv6 address takes four registers before the next field', () => {
    const e = compileRule([{ kind: 'vmap', fields: ['ip6 daddr', 'th dport'], map: 'm' }], {
      family: 'inet',
      setIds: new Map([['m', 3]]),
    });
    expect(e.slice(2)).toEqual([
      { kind: 'payload', dreg: 1, base: 'network', offset: 24, len: 16 },
      { kind: 'payload', dreg: 12, base: 'transport', offset: 2, len: 2 },
      { kind: 'lookup', sreg: 1, set: 'm', setId: 3, dreg: 0 },
    ]);
  });

  it('ct state established,related: mask and compare with zero', () => {
    const [load, bitwise, cmp] = compileRule(
      [{ kind: 'match', field: 'ct state', value: ['established', 'related'] }],
      inet,
    );
    expect(load).toEqual({ kind: 'ct', dreg: 1, key: 'state' });
    expect(bitwise?.kind === 'bitwise' && hex(bitwise.mask)).toBe('06000000');
    expect(cmp).toMatchObject({ kind: 'cmp', op: '!=' });
  });

  it('prefixes: byte-aligned ones load fewer bytes, others go through a mask', () => {
    expect(compileRule([{ kind: 'match', field: 'ip daddr', value: '10.0.0.0/8' }], { family: 'ip' })).toEqual([
      { kind: 'payload', dreg: 1, base: 'network', offset: 16, len: 1 },
      { kind: 'cmp', sreg: 1, op: '==', data: Uint8Array.of(10) },
    ]);
    const masked = compileRule([{ kind: 'match', field: 'ip daddr', value: '10.1.2.0/23' }], { family: 'ip' });
    expect(masked.map((x) => x.kind)).toEqual(['payload', 'bitwise', 'cmp']);
  });

  it('tcp dport adds meta l4proto tcp once; a port range is a range expression', () => {
    const e = compileRule(
      [
        { kind: 'match', field: 'tcp dport', value: '1000-2000' },
        { kind: 'match', field: 'tcp sport', value: 5 },
      ],
      inet,
    );
    expect(e.map((x) => x.kind)).toEqual(['meta', 'cmp', 'payload', 'range', 'payload', 'cmp']);
  });

  it('an iifname wildcard compares the prefix only; log, limit, masquerade and verdicts in order', () => {
    const e = compileRule(
      [
        { kind: 'match', field: 'iifname', value: 'veth*' },
        { kind: 'limit', rate: 10, per: 'second' },
        { kind: 'log', prefix: 'x', level: 'info' },
        { kind: 'masquerade', fullyRandom: true },
        { kind: 'verdict', verdict: { code: 'goto', chain: 'c' } },
      ],
      inet,
    );
    expect(e[1]).toMatchObject({ kind: 'cmp', data: Buffer.from('veth') });
    expect(e.slice(2)).toEqual([
      { kind: 'limit', rate: 10n, unitSeconds: 1n, burst: 5, type: 'packets' },
      { kind: 'log', prefix: 'x', level: 6 },
      { kind: 'masq', flags: 0x10 },
      { kind: 'immediate-verdict', verdict: { code: 'goto', chain: 'c' } },
    ]);
  });

  it('refuses an IPv6 field after an IPv4 one, and either in the other family', () => {
    expect(() =>
      compileRule(
        [
          { kind: 'match', field: 'ip saddr', value: '1.2.3.4' },
          { kind: 'match', field: 'ip6 daddr', value: '::1' },
        ],
        inet,
      ),
    ).toThrow(/ip6 daddr/);
    expect(() => compileRule([{ kind: 'match', field: 'ip6 daddr', value: '::1' }], { family: 'ip' })).toThrow(
      /family ip/,
    );
  });
});

describe('sets and elements', () => {
  it("a concatenated key type is nft's shifted ids, its length the padded fields", () => {
    expect(keyLayout(['ipv4_addr', 'inet_service'])).toEqual({ typeId: 0x1cd, len: 8, fieldLens: [4, 2] });
    expect(keyLayout(['ipv6_addr'])).toEqual({ typeId: 8, len: 16, fieldLens: [16] });
  });

  it('an interval element is its start and the first address past its end', () => {
    const s: SetSpec = { table: 't', name: 's', key: ['ipv4_addr'], flags: ['interval'] };
    const w = wireElements(s, { key: ['10.0.0.0/8'], comment: 'x' });
    expect(w.map((x) => [hex(x.key), x.end ?? false, x.comment])).toEqual([
      ['0a000000', false, 'x'],
      ['0b000000', true, undefined],
    ]);
    expect(wireElements(s, { key: ['255.0.0.0/8'] })).toHaveLength(1);
  });

  it('a concatenated interval element carries key and key_end', () => {
    const s: SetSpec = { table: 't', name: 's', key: ['ipv4_addr', 'inet_service'], flags: ['interval'] };
    const [w] = wireElements(s, { key: ['10.0.0.0/8', '80-90'] });
    expect([hex(w?.key ?? new Uint8Array()), hex(w?.keyEnd ?? new Uint8Array())]).toEqual([
      '0a00000000500000',
      '0affffff005a0000',
    ]);
  });

  it('a set made in the batch gets an id that its rules and elements carry', () => {
    const set: SetSpec = { table: 't', name: 's', key: ['ipv4_addr'] };
    const [newSet, newElems, newRule] = encodeOps([
      { op: 'add-set', set },
      { op: 'add-elements', set, elements: [{ key: ['10.0.0.1'] }] },
      { op: 'add-rule', table: 't', chain: 'c', rule: [{ kind: 'lookup', fields: ['ip saddr'], set: 's' }] },
    ]).map((m) => splitMessages(m.finish(1))[0]?.data as Buffer);
    expect(new Attrs(newSet as Buffer, 4).get(NFTA_SET.ID)?.readUInt32BE(0)).toBe(1);
    expect(new Attrs(newElems as Buffer, 4).get(4 /* NFTA_SET_ELEM_LIST_SET_ID */)?.readUInt32BE(0)).toBe(1);
    expect(new Attrs(newRule as Buffer, 4).has(NFTA_RULE.EXPRESSIONS)).toBe(true);
  });
});

/** A socket that answers a batch as the kernel does when message `failAt` (0-based) is refused. */
function stubSocket(failAt: number | undefined, errno = 2): BatchSocket & { sent: Buffer[] } {
  let seq = 100;
  const sent: Buffer[] = [];
  return {
    netns: undefined,
    sent,
    nextSeq: () => ++seq,
    reserveBuffers: () => {},
    exchange<C extends Collector>(bytes: Buffer, collector: C): C {
      sent.push(bytes);
      const msgs = splitMessages(bytes).slice(1, -1);
      const answer = (m: (typeof msgs)[number], err: number) => {
        const b = Buffer.alloc(36);
        b.writeUInt32LE(36, 0);
        b.writeUInt16LE(NLMSG.ERROR, 4);
        b.writeUInt32LE(m.seq, 8);
        b.writeInt32LE(-err, 16);
        b.writeUInt32LE(m.seq, 28);
        return b;
      };
      const parts = [];
      if (failAt !== undefined) parts.push(answer(msgs[failAt] as (typeof msgs)[number], errno));
      parts.push(answer(msgs[msgs.length - 1] as (typeof msgs)[number], 0));
      collector.feed(Buffer.concat(parts));
      return collector;
    },
  };
}

describe('applyBatch', () => {
  const ops: NftOp[] = [
    { op: 'add-table', table: 't' },
    { op: 'add-chain', table: 't', name: 'c' },
    { op: 'delete-set', table: 't', name: 'gone' },
  ];

  it('sends one datagram, begin … end, with an ack asked of the last message only', () => {
    const nl = stubSocket(undefined);
    expect(applyBatch(nl, ops).messages).toBe(3);
    const msgs = splitMessages(nl.sent[0] as Buffer);
    expect(msgs.map((m) => m.type)).toEqual([0x10, (10 << 8) | 0, (10 << 8) | 3, (10 << 8) | 11, 0x11]);
    expect(msgs.map((m) => (m.flags & 0x04) !== 0)).toEqual([false, false, false, true, false]);
  });

  it('encodes every message in place in the one datagram: the bytes of the messages built alone, numbered', () => {
    const set: SetSpec = { table: 't', name: 's', key: ['ipv4_addr'], flags: ['interval'] };
    const many: NftOp[] = [
      ...ops,
      { op: 'add-set', set },
      ...Array.from(
        { length: 300 },
        (_, i): NftOp => ({
          op: 'add-elements',
          set,
          elements: [{ key: [`10.${i >> 8}.${i & 255}.0/24`], comment: `e${i}` }],
        }),
      ),
      {
        op: 'add-rule',
        table: 't',
        chain: 'c',
        rule: [{ kind: 'match-set', field: 'tcp dport', values: ['80', '443'] }],
        comment: 'web',
      },
      { op: 'delete-rule', table: 't', chain: 'c', handle: 7 },
    ];
    const encoder = new BatchEncoder({ group: true });
    many.forEach((o, i) => encoder.add(o, i));
    const batch = encoder.finish();
    // 3 + the set + 300 elements in 64s (5 messages) + the anonymous set, its elements and the rule + 1
    expect(batch.length).toBe(3 + 1 + 5 + 3 + 1);
    expect(batch.indexes).toEqual([0, 1, 2, 3, 4, 68, 132, 196, 260, 304, 304, 304, 305]);
    const nl = stubSocket(undefined);
    const steps = prepareBatch(nl, batch);
    let step = steps.next();
    while (!step.done) step = steps.next();
    const got = splitMessages(step.value.datagram);
    expect(got).toHaveLength(batch.length + 2);
    expect(got.map((m) => m.seq)).toEqual(Array.from({ length: batch.length + 2 }, (_, i) => 101 + i));
    // The same operations encoded a message at a time, grouped alike: the same bytes after the header.
    const grouped = [
      ...many.slice(0, 4),
      ...[0, 64, 128, 192, 256].map(
        (from): NftOp => ({
          op: 'add-elements',
          set,
          elements: many
            .slice(4 + from, 4 + Math.min(from + 64, 300))
            .flatMap((o) => (o.op === 'add-elements' ? o.elements : [])),
        }),
      ),
      ...many.slice(304),
    ];
    const alone = encodeOps(grouped).map((m) => splitMessages(m.finish(1))[0]);
    expect(got.slice(1, -1).map((m) => hex(m.data))).toEqual(alone.map((m) => hex(m?.data as Buffer)));
    expect(got.slice(1, -1).map((m) => m.type)).toEqual(alone.map((m) => m?.type));
    expect(got.map((m) => (m.flags & 0x04) !== 0)).toEqual(got.map((_, i) => i === got.length - 2));
    expect(step.value.indexBySeq.get(101 + 5)).toBe(4);
    expect(() => encoder.add(ops[0] as NftOp, 0)).toThrow(/after finish/);
  });

  it('names the operation whose message the kernel refused', () => {
    let err: unknown;
    try {
      applyBatch(stubSocket(2), ops);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NftBatchError);
    expect((err as NftBatchError).index).toBe(2);
    expect((err as NftBatchError).op).toBe(ops[2]);
    expect((err as NftBatchError).message).toMatch(/^failed to delete set inet t gone \(operation 3 of 3/);
  });
});

describe('anonymous sets and icmpv6 type', () => {
  it('icmpv6 type { … }: the dependencies nft adds, a one-byte transport load, a lookup of the anonymous set by id', () => {
    const exprs = compileRule([{ kind: 'match-set', field: 'icmpv6 type', values: ['nd-router-solicit'] }], {
      family: 'inet',
      anonSetIds: [7],
    });
    expect(exprs).toEqual([
      { kind: 'meta', dreg: 1, key: 'nfproto' },
      { kind: 'cmp', sreg: 1, op: '==', data: Buffer.of(10) },
      { kind: 'meta', dreg: 1, key: 'l4proto' },
      { kind: 'cmp', sreg: 1, op: '==', data: Buffer.of(58) },
      { kind: 'payload', dreg: 1, base: 'transport', offset: 0, len: 1 },
      { kind: 'lookup', sreg: 1, set: '__set%d', setId: 7 },
    ]);
  });

  it('a rule with an anonymous set is three messages of one operation, as nft sends them', () => {
    const rule: NftOp = {
      op: 'add-rule',
      table: 't',
      chain: 'c',
      rule: [
        { kind: 'match-set', field: 'icmpv6 type', values: ['nd-router-solicit', 'nd-redirect'] },
        { kind: 'verdict', verdict: { code: 'accept' } },
      ],
    };
    const msgs = encodeOps([rule]).map((m) => splitMessages(m.finish(1))[0]);
    expect(msgs.map((m) => (m?.type ?? 0) & 0xff)).toEqual([9, 12, 6]); // NEWSET, NEWSETELEM, NEWRULE
    const set = new Attrs(msgs[0]?.data as Buffer, 4);
    const flags = set.get(NFTA_SET.FLAGS)?.readUInt32BE(0);
    expect([set.get(NFTA_SET.NAME)?.toString(), flags, set.get(NFTA_SET.KEY_TYPE)?.readUInt32BE(0)]).toEqual([
      '__set%d\0',
      3,
      29,
    ]);
  });

  it('refuses a range in an anonymous set rather than sending what nft would merge', () => {
    const rule: NftOp = {
      op: 'add-rule',
      table: 't',
      chain: 'c',
      rule: [{ kind: 'match-set', field: 'th dport', values: ['80-90'] }],
    };
    expect(() => encodeOps([rule])).toThrow(/range or prefix/);
  });
});
