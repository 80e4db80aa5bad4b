// A transaction encoded ahead with its addresses left open (src/nft/netlink/template.ts): the windows
// are found by encoding the same operations with two stand-ins, the filled body is byte for byte the
// encoding with the real addresses, and anything that depends on an address other than its own bytes
// (an interval's end, a comment naming it) gives no template.
import { describe, expect, it } from 'vitest';
import {
  BatchEncoder,
  prepareBatch,
  type BatchSocket,
  type EncodedBatch,
  type NftOp,
} from '../../src/nft/netlink/batch.ts';
import type { SetSpec } from '../../src/nft/netlink/messages.ts';
import { AddressTemplate } from '../../src/nft/netlink/template.ts';

const table = { family: 'inet', table: 'strand' } as const;
const peers4: SetSpec = { ...table, name: 'agent-pol-peer-1-v4', key: ['ipv4_addr'] };
const peers6: SetSpec = { ...table, name: 'agent-pol-peer-1-v6', key: ['ipv6_addr'] };
const ingress4: SetSpec = { ...table, name: 'agent-pol-ingress-v4', key: ['ipv4_addr'], verdictMap: true };
const ports: SetSpec = { ...table, name: 'agent-pol-port-1', key: ['ipv4_addr', 'inet_service'] };
const blocks: SetSpec = { ...table, name: 'agent-pol-cidr-1', key: ['ipv4_addr'], flags: ['interval'] };

const V4 = { a: '240.0.0.1', b: '240.0.0.2' };
const V6 = { a: 'fdff:ffff:ffff:ffff::1', b: 'fdff:ffff:ffff:ffff::2' };

/** A pod's bind as the agent sends it: other members, the pod's address in a peer set, its verdict-map
 * element and a named port, and a rule-less marker flush. */
function bind(v4: string, v6?: string): NftOp[] {
  return [
    { op: 'add-elements', set: peers4, elements: [{ key: ['10.9.0.7'] }, { key: ['10.9.0.8'] }] },
    { op: 'add-elements', set: peers4, elements: [{ key: [v4] }] },
    {
      op: 'add-elements',
      set: ingress4,
      elements: [{ key: [v4], verdict: { code: 'jump', chain: 'agent-pol-in-1' } }],
    },
    { op: 'add-elements', set: ports, elements: [{ key: [v4, '8080'] }] },
    ...(v6 ? [{ op: 'add-elements', set: peers6, elements: [{ key: [v6] }] } as NftOp] : []),
    { op: 'flush-chain', ...table, chain: 'agent-policy-generation' },
  ];
}

function body(ops: readonly NftOp[]): EncodedBatch {
  const encoder = new BatchEncoder();
  ops.forEach((o, i) => encoder.add(o, i));
  return encoder.finish();
}

/** The datagram a batch is sent as, numbered from sequence 100. */
function sent(batch: EncodedBatch): Buffer {
  let seq = 100;
  const steps = prepareBatch({ nextSeq: () => ++seq } as unknown as BatchSocket, batch);
  let step = steps.next();
  while (!step.done) step = steps.next();
  return Buffer.from(step.value.datagram);
}

describe('AddressTemplate', () => {
  it('finds each stand-in address and fills in the real ones: the bytes of encoding the real addresses', () => {
    const t = AddressTemplate.of(body(bind(V4.a)), body(bind(V4.b)), [V4]);
    expect(t?.addresses).toBe(3);
    const filled = t?.fill(new Map([[V4.a, '10.9.0.33']])) as EncodedBatch;
    const real = body(bind('10.9.0.33'));
    expect(filled.sink.bytes()).toEqual(real.sink.bytes());
    expect({ ...filled, sink: undefined }).toEqual({ ...real, sink: undefined });
    // Numbered for its send as any batch: the same datagram.
    expect(sent(filled)).toEqual(sent(real));
  });

  it('dual-stack: one pair per family', () => {
    const t = AddressTemplate.of(body(bind(V4.a, V6.a)), body(bind(V4.b, V6.b)), [V4, V6]);
    expect(t?.addresses).toBe(4);
    const filled = t?.fill(
      new Map([
        [V4.a, '10.9.0.33'],
        [V6.a, 'fd00:9::21'],
      ]),
    );
    expect(filled?.sink.bytes()).toEqual(body(bind('10.9.0.33', 'fd00:9::21')).sink.bytes());
  });

  it('no template when an address shows other than as its own bytes', () => {
    // An interval's end is the address plus one.
    const interval = (ip: string): NftOp[] => [{ op: 'add-elements', set: blocks, elements: [{ key: [ip] }] }];
    expect(AddressTemplate.of(body(interval(V4.a)), body(interval(V4.b)), [V4])).toBeUndefined();
    // A comment naming it.
    const named = (ip: string): NftOp[] => [
      { op: 'add-elements', set: peers4, elements: [{ key: [ip], comment: ip }] },
    ];
    expect(AddressTemplate.of(body(named(V4.a)), body(named(V4.b)), [V4])).toBeUndefined();
    // Elements in another order.
    const ordered = (ip: string, first: boolean): NftOp[] => {
      const [x, y] = [{ key: [ip] }, { key: ['10.9.0.9'] }];
      return [{ op: 'add-elements', set: peers4, elements: first ? [x, y] : [y, x] }];
    };
    expect(AddressTemplate.of(body(ordered(V4.a, true)), body(ordered(V4.b, false)), [V4])).toBeUndefined();
  });

  it('leaves the template as it was: each fill is a copy', () => {
    const t = AddressTemplate.of(body(bind(V4.a)), body(bind(V4.b)), [V4]) as AddressTemplate;
    const first = t.fill(new Map([[V4.a, '10.9.0.33']])) as EncodedBatch;
    sent(first);
    const second = t.fill(new Map([[V4.a, '10.9.0.34']])) as EncodedBatch;
    expect(second.sink.bytes()).toEqual(body(bind('10.9.0.34')).sink.bytes());
  });

  it('fills nothing for a missing address or one of another family', () => {
    const t = AddressTemplate.of(body(bind(V4.a)), body(bind(V4.b)), [V4]) as AddressTemplate;
    expect(t.fill(new Map())).toBeUndefined();
    expect(t.fill(new Map([[V4.a, 'fd00:9::21']]))).toBeUndefined();
    expect(t.fill(new Map([[V4.a, 'not-an-address']]))).toBeUndefined();
  });
});
