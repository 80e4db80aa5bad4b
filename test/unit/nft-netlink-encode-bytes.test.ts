// The encoder's bytes kept exactly as they were when its hot paths were rewritten to make less
// garbage (elements of plain IPv4 sets written straight in, expressions nested without closures,
// rule comments through a scratch buffer, compiled dependencies shared): a transaction of every
// kind of operation the agent sends, encoded grouped (a rebuild's datagram) and alone, hashed
// against the bytes the earlier encoder made for it; and the fast paths against the general ones.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MessageBuilder } from '../../src/kernel/netlink-codec.ts';
import { BatchEncoder, encodeOps, type NftOp } from '../../src/nft/netlink/batch.ts';
import { NFTA_DATA, NFTA_LIST_ELEM, NFTA_SET_ELEM, NFTA_SET_ELEM_LIST } from '../../src/nft/netlink/const.ts';
import { encodeInto, newElements, newRule, type SetSpec } from '../../src/nft/netlink/messages.ts';
import { GrowingSink } from '../../src/nft/netlink/sink.ts';

const T = { family: 'inet' as const, table: 'strand' };
const peers: SetSpec = { ...T, name: 'agent-pol-peer-v4', key: ['ipv4_addr'] };
const peers6: SetSpec = { ...T, name: 'agent-pol-peer-v6', key: ['ipv6_addr'] };
const cidrs: SetSpec = { ...T, name: 'agent-pol-cidr', key: ['ipv4_addr'], flags: ['interval'], comment: 'blocks' };
const svc: SetSpec = { ...T, name: 'agent-pol-svc', key: ['inet_proto', 'inet_service'], flags: ['interval'] };
const vmap: SetSpec = { ...T, name: 'agent-pol-in-v4', key: ['ipv4_addr'], verdictMap: true };

function transaction(): NftOp[] {
  const ops: NftOp[] = [
    { op: 'add-table', ...T },
    { op: 'add-chain', ...T, name: 'agent-pol-forward', base: { type: 'filter', hook: 'forward', priority: 'filter' } },
    { op: 'add-chain', ...T, name: 'agent-pol-in-a', comment: 'ns/pod ingress' },
    { op: 'flush-set', ...T, name: 'agent-pol-old' },
    { op: 'add-set', set: peers },
    { op: 'add-set', set: peers6 },
    { op: 'add-set', set: cidrs },
    { op: 'add-set', set: svc },
    { op: 'add-set', set: vmap },
  ];
  // Enough plain addresses to fill several grouped messages, a /32 and a commented one among them.
  for (let i = 0; i < 150; i++)
    ops.push({ op: 'add-elements', set: peers, elements: [{ key: [`10.244.${i >> 4}.${(i * 7) % 256}`] }] });
  ops.push({ op: 'add-elements', set: peers, elements: [{ key: ['10.9.9.9/32'] }] });
  ops.push({ op: 'add-elements', set: peers, elements: [{ key: ['10.9.9.10'], comment: 'pod a' }] });
  ops.push({ op: 'add-elements', set: peers6, elements: [{ key: ['fd00::1'] }, { key: ['fd00::2'] }] });
  ops.push({ op: 'add-elements', set: cidrs, elements: [{ key: ['198.18.0.0/21'] }, { key: ['255.0.0.0/8'] }] });
  ops.push({ op: 'add-elements', set: svc, elements: [{ key: ['tcp', '8080'] }, { key: ['udp', '53-54'] }] });
  ops.push({
    op: 'add-elements',
    set: vmap,
    elements: [{ key: ['10.244.0.2'], verdict: { code: 'jump', chain: 'agent-pol-in-a' } }],
  });
  ops.push({ op: 'add-elements', set: vmap, elements: [{ key: ['10.244.0.3'], verdict: { code: 'drop' } }] });
  for (let i = 0; i < 20; i++)
    ops.push({
      op: 'add-rule',
      ...T,
      chain: 'agent-pol-in-a',
      rule: [
        { kind: 'lookup', fields: ['ip saddr'], set: i % 2 ? peers.name : cidrs.name },
        { kind: 'lookup', fields: ['meta l4proto', 'th dport'], set: svc.name },
        { kind: 'counter' },
        { kind: 'verdict', verdict: { code: 'accept' } },
      ],
      comment: `ns-${i}/policy-${i} ingress 0`,
    });
  ops.push(
    {
      op: 'add-rule',
      ...T,
      chain: 'agent-pol-forward',
      rule: [
        { kind: 'match', field: 'ct state', value: ['established', 'related'] },
        { kind: 'verdict', verdict: { code: 'accept' } },
      ],
    },
    {
      op: 'add-rule',
      ...T,
      chain: 'agent-pol-forward',
      rule: [{ kind: 'vmap', fields: ['ip daddr'], map: vmap.name }],
    },
    {
      op: 'add-rule',
      ...T,
      chain: 'agent-pol-in-a',
      rule: [
        { kind: 'lookup', fields: ['ip6 saddr', 'tcp dport'], set: 'agent-pol-other', not: true },
        { kind: 'match', field: 'ip6 daddr', value: 'fd00::/64' },
        { kind: 'match-set', field: 'tcp dport', values: [53, 5353] },
        { kind: 'log', prefix: 'strand drop ', level: 'warn' },
        { kind: 'verdict', verdict: { code: 'drop' } },
      ],
      comment: 'drop',
      placement: { at: 'insert', handle: 7 },
    },
    { op: 'delete-rule', ...T, chain: 'agent-pol-in-a', handle: 9 },
    { op: 'delete-elements', set: peers, elements: [{ key: ['10.244.0.9'] }] },
    { op: 'delete-set', ...T, name: 'agent-pol-old' },
  );
  return ops;
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('the encoder makes the same bytes as before', () => {
  it('a grouped batch (a rebuild) and the same operations each alone', () => {
    const encoder = new BatchEncoder({ group: true });
    transaction().forEach((o, i) => encoder.add(o, i));
    const batch = encoder.finish();
    expect([batch.length, batch.sink.used]).toEqual([GROUPED_MESSAGES, GROUPED_BYTES]);
    expect(sha(batch.sink.bytes())).toBe(GROUPED_SHA);
    for (const sizeHint of [0, 1, 64 << 20]) {
      const sized = new BatchEncoder({ group: true, sizeHint });
      transaction().forEach((o, i) => sized.add(o, i));
      expect(sha(sized.finish().sink.bytes())).toBe(GROUPED_SHA);
    }
    const alone = Buffer.concat(encodeOps(transaction().slice(0, 200)).map((m) => m.finish(0)));
    expect(sha(alone)).toBe(ALONE_SHA);
  });
});

/** An element as the general path writes it, built here with nested() as the encoder once did. */
function referenceElements(s: SetSpec, keys: readonly Uint8Array[]): Buffer {
  const m = new MessageBuilder((10 << 8) | 12, 0x400);
  m.raw(Uint8Array.of(1, 0, 0, 0))
    .str(NFTA_SET_ELEM_LIST.TABLE, s.table)
    .str(NFTA_SET_ELEM_LIST.SET, s.name);
  m.nested(NFTA_SET_ELEM_LIST.ELEMENTS, (b) => {
    for (const k of keys)
      b.nested(NFTA_LIST_ELEM, (el) => el.nested(NFTA_SET_ELEM.KEY, (x) => x.attr(NFTA_DATA.VALUE, k)));
  });
  return m.finish(0);
}

describe('fast paths', () => {
  it('a message built into a sink of dirty memory is the message built alone (its header zeroed)', () => {
    const sink = new GrowingSink(4096);
    sink.buf.fill(0xff);
    sink.used = 5;
    const inSink = encodeInto(sink, () => newRule(T, 'c', [{ kind: 'counter' }], 'x'));
    const alone = newRule(T, 'c', [{ kind: 'counter' }], 'x').finish(0);
    expect(sink.bytes().subarray(inSink.offset).toString('hex')).toBe(alone.toString('hex'));
  });

  it("plain IPv4 elements written straight in are the general path's bytes, mixed with general ones", () => {
    const keys = ['10.244.0.2', '10.0.0.1/32', '192.168.255.254'];
    const m = newElements(
      peers,
      keys.map((k) => ({ key: [k] })),
    );
    const bytes = keys.map((k) => Uint8Array.from(k.split('/')[0]!.split('.').map(Number)));
    expect(m.finish(0).toString('hex')).toBe(referenceElements(peers, bytes).toString('hex'));
  });

  it('a rule comment is one userdata TLV, refused past 128 bytes with the earlier message', () => {
    const sink = new GrowingSink();
    const r = encodeInto(sink, () => newRule(T, 'c', [{ kind: 'counter' }], 'hello'));
    const hex = sink.bytes().subarray(r.offset).toString('hex');
    expect(
      hex.endsWith(Buffer.concat([Buffer.from([12, 0, 7, 0, 0, 6]), Buffer.from('hello\0')]).toString('hex')),
    ).toBe(true);
    expect(() => newRule(T, 'c', [{ kind: 'counter' }], 'x'.repeat(128))).toThrow(/comment longer than 128 bytes/);
  });
});

// Made by the encoder at main e3db9dd, before the rewrite.
const GROUPED_MESSAGES = 44;
const GROUPED_BYTES = 15896;
const GROUPED_SHA = '48e21017fc4e647c8896895c815ee895f9afc6b333010d94705b49f4530d4f33';
const ALONE_SHA = '086be0e5eeb4841d295f4bf4da8bca774f3c9949b73481c2742ad6f6a349c99d';
