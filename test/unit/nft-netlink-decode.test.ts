// The nf_tables read decoders (src/nft/netlink/decode.ts) on messages laid out as the kernel writes
// them: a rule's chain, handle, comment and counter; a digest identity that ignores counter values
// but not the handle, an expression byte or the comment; chains, sets, element counts, generation.
import { describe, expect, it } from 'vitest';
import { MessageBuilder, type NlMessage } from '../../src/kernel/netlink-codec.ts';
import {
  ChainDigester,
  countElements,
  decodeChain,
  decodeGeneration,
  decodeRule,
  decodeSet,
  parseRuleComment,
} from '../../src/nft/netlink/decode.ts';

function u64(v: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(v));
  return b;
}

function be32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return b;
}

/** An nf_tables answer: nlmsghdr, nfgenmsg (family inet, res_id = the generation's low bits). */
function answer(type: number, fill: (m: MessageBuilder) => void, resId = 0): NlMessage {
  const m = new MessageBuilder((10 << 8) | type, 0);
  const gen = Buffer.alloc(4);
  gen.writeUInt8(1, 0);
  gen.writeUInt16BE(resId, 2);
  m.raw(gen);
  fill(m);
  const bytes = Buffer.from(m.finish(1));
  return { type: bytes.readUInt16LE(4), flags: 0, seq: 1, pid: 0, data: bytes.subarray(16) };
}

function udataComment(text: string): Buffer {
  const t = Buffer.from(`${text}\0`);
  return Buffer.concat([Buffer.of(0, t.length), t]);
}

interface RuleSpec {
  chain?: string;
  handle?: number;
  port?: number;
  packets?: number;
  bytes?: number;
  comment?: string;
  resId?: number;
}

/** `tcp dport <port> counter accept comment "<comment>"`, reduced to what matters here. */
function rule(r: RuleSpec = {}): NlMessage {
  return answer(
    6 /* NEWRULE */,
    (m) => {
      m.str(1, 'strand')
        .str(2, r.chain ?? 'pod-a')
        .attr(3, u64(r.handle ?? 7));
      m.nested(4, (list) => {
        list.nested(1, (e) =>
          e.str(1, 'payload').nested(2, (d) => d.attr(1, be32(1)).attr(2, be32(2)).attr(3, be32(2)).attr(4, be32(2))),
        );
        list.nested(1, (e) =>
          e.str(1, 'cmp').nested(2, (d) =>
            d
              .attr(1, be32(1))
              .attr(2, be32(0))
              .nested(3, (v) => v.attr(1, Buffer.of((r.port ?? 80) >> 8, (r.port ?? 80) & 255))),
          ),
        );
        list.nested(1, (e) =>
          e.str(1, 'counter').nested(2, (d) => d.attr(1, u64(r.bytes ?? 0)).attr(2, u64(r.packets ?? 0))),
        );
        list.nested(1, (e) =>
          e
            .str(1, 'immediate')
            .nested(2, (d) => d.attr(1, be32(0)).nested(2, (v) => v.nested(2, (vd) => vd.attr(1, be32(1))))),
        );
      });
      if (r.comment !== undefined) m.attr(7, udataComment(r.comment));
    },
    r.resId ?? 0,
  );
}

describe('decodeRule', () => {
  it('reads the chain, handle, comment and counter values', () => {
    const r = decodeRule(rule({ chain: 'pod-b', handle: 2 ** 40 + 5, packets: 3, bytes: 252, comment: 'web' }));
    expect(r).toMatchObject({
      table: 'strand',
      chain: 'pod-b',
      handle: 2 ** 40 + 5,
      comment: 'web',
      counter: { packets: 3, bytes: 252 },
    });
  });

  it('a rule without a comment or counter has neither', () => {
    const m = answer(6, (b) => b.str(1, 'strand').str(2, 'c').attr(3, u64(1)));
    const r = decodeRule(m);
    expect(r?.comment).toBeUndefined();
    expect(r?.counter).toBeUndefined();
  });

  it('a message without a handle is not a rule', () => {
    expect(decodeRule(answer(6, (b) => b.str(1, 'strand').str(2, 'c')))).toBeUndefined();
  });

  it('identity: the same whatever the counter values and the generation; different for handle, port, comment', () => {
    const base = decodeRule(rule({ comment: 'web' }))?.identity;
    expect(decodeRule(rule({ comment: 'web', packets: 99, bytes: 9999, resId: 77 }))?.identity).toEqual(base);
    expect(decodeRule(rule({ comment: 'web', handle: 8 }))?.identity).not.toEqual(base);
    expect(decodeRule(rule({ comment: 'web', port: 81 }))?.identity).not.toEqual(base);
    expect(decodeRule(rule({ comment: 'www' }))?.identity).not.toEqual(base);
    expect(decodeRule(rule({}))?.identity).not.toEqual(base);
  });
});

describe('ChainDigester', () => {
  const digest = (rules: RuleSpec[]) => {
    const d = new ChainDigester();
    for (const r of rules) d.add(decodeRule(rule(r)) as NonNullable<ReturnType<typeof decodeRule>>);
    return d.finish();
  };

  it('counts rules per chain and changes with a removed, added or reordered rule only in that chain', () => {
    const a = [
      { chain: 'a', handle: 1 },
      { chain: 'a', handle: 2 },
      { chain: 'b', handle: 3 },
    ];
    const before = digest(a);
    expect(before.get('a')?.count).toBe(2);
    expect(before.get('b')?.count).toBe(1);
    expect(digest(a.map((r) => ({ ...r, packets: 5 })))).toEqual(before);

    const removed = digest([a[0] as RuleSpec, a[2] as RuleSpec]);
    expect(removed.get('a')?.digest).not.toBe(before.get('a')?.digest);
    expect(removed.get('b')).toEqual(before.get('b'));

    const reordered = digest([a[1] as RuleSpec, a[0] as RuleSpec, a[2] as RuleSpec]);
    expect(reordered.get('a')?.digest).not.toBe(before.get('a')?.digest);
  });
});

describe('other answers', () => {
  it('decodeGeneration reads NFTA_GEN_ID', () => {
    expect(decodeGeneration(answer(15 /* NEWGEN */, (m) => m.attr(1, be32(123456))))).toBe(123456);
  });

  it('parseRuleComment finds the comment among other user data TLVs', () => {
    expect(parseRuleComment(Buffer.concat([Buffer.of(5, 2, 9, 9), udataComment('x y')]))).toBe('x y');
    expect(parseRuleComment(Buffer.of(5, 1, 0))).toBeUndefined();
  });

  it('decodeChain: a base chain has its hook, priority, type and policy; a regular chain none', () => {
    const base = answer(3, (m) =>
      m
        .str(1, 'strand')
        .attr(2, u64(4))
        .str(3, 'forward')
        .nested(4, (h) => h.attr(1, be32(2)).attr(2, Buffer.from([0xff, 0xff, 0xff, 0x9c])))
        .attr(5, be32(1))
        .attr(6, be32(0))
        .str(7, 'filter'),
    );
    expect(decodeChain(base)).toEqual({
      table: 'strand',
      name: 'forward',
      handle: 4,
      use: 0,
      base: { hook: 2, priority: -100, type: 'filter', policy: 1 },
    });
    expect(decodeChain(answer(3, (m) => m.str(1, 'strand').attr(2, u64(9)).str(3, 'pod-a').attr(6, be32(2))))).toEqual({
      table: 'strand',
      name: 'pod-a',
      handle: 9,
      use: 2,
    });
  });

  it('decodeSet tells a map from a set', () => {
    const map = answer(9, (m) =>
      m.str(1, 'strand').str(2, 'pods').attr(3, be32(0x8)).attr(5, be32(4)).attr(7, be32(16)).attr(16, u64(3)),
    );
    expect(decodeSet(map)).toEqual({
      table: 'strand',
      name: 'pods',
      handle: 3,
      flags: 8,
      keyLen: 4,
      map: true,
      dataLen: 16,
    });
    expect(decodeSet(answer(9, (m) => m.str(1, 'strand').str(2, 'peers').attr(3, be32(0x4))))?.map).toBe(false);
  });

  it('countElements counts a range once (its interval-end element is not counted)', () => {
    const elems = answer(12, (m) =>
      m
        .str(1, 'strand')
        .str(2, 'peers')
        .nested(3, (l) => {
          l.nested(1, (e) => e.nested(1, (k) => k.attr(1, Buffer.of(10, 0, 0, 0))));
          l.nested(1, (e) => e.nested(1, (k) => k.attr(1, Buffer.of(11, 0, 0, 0))).attr(3, be32(1)));
          l.nested(1, (e) => e.nested(1, (k) => k.attr(1, Buffer.of(192, 168, 1, 1))));
        }),
    );
    expect(countElements(elems)).toBe(2);
  });
});
