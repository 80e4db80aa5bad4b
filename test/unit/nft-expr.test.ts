// The one renderer of typed rule bodies and the one reader of nft's JSON: each expression kind renders
// to the text nft takes, and the JSON nft lists for that text (recorded from nft 1.0.6, as
// test/integration/nft-expr.test.ts checks against the kernel) parses back to the same body.
import { describe, expect, it } from 'vitest';
import { parseRuleJson } from '../../src/nft/expr-json.ts';
import { addrField, match, renderRule, ruleReferencesOf, verdict } from '../../src/nft/expr.ts';
import { checkObject, NftObjectError } from '../../src/nft/objects.ts';
import { FakeNft } from '../../src/nft/fake.ts';
import { Transaction } from '../../src/nft/transaction.ts';
import { EXPR_CASES, exprCaseObjects } from '../support/nft-expr-cases.ts';

describe('renderRule', () => {
  it.each(EXPR_CASES.map((c) => [c.text, c]))('renders %s', (_text, c) => {
    expect(renderRule(c.body)).toBe(c.text);
    expect(() => checkObject({ kind: 'rule', chain: c.chain, body: c.body })).not.toThrow();
  });

  it('refuses values that do not fit their field before anything reaches the script', () => {
    const bad = (body: Parameters<typeof renderRule>[0], why: RegExp | typeof NftObjectError) =>
      expect(() => checkObject({ kind: 'rule', chain: 'x-y', body })).toThrow(why);
    bad([match(addrField(4, 'saddr'), { kind: 'addr', addr: 'fd00::1' })], /family/);
    bad([match(addrField(6, 'saddr'), { kind: 'prefix', addr: 'fd00::', len: 129 })], /prefix length/);
    bad([match({ kind: 'payload', field: 'th dport' }, { kind: 'number', value: 70000 })], /port/);
    bad([match({ kind: 'meta', key: 'iifname' }, { kind: 'name', value: 'eth0"; flush ruleset' })], /interface name/);
    bad([match({ kind: 'meta', key: 'l4proto' }, { kind: 'keyword', value: 'established' })], /not one of/);
    bad([{ kind: 'log', prefix: 'a"b' }], /log prefix/);
    bad([verdict('jump', 'Bad Name')], NftObjectError);
    bad([], /empty/);
  });

  it('names the sets, maps and chains a body refers to', () => {
    const refs = EXPR_CASES.map((c) => ruleReferencesOf(c.body));
    expect([...new Set(refs.flatMap((r) => r.sets))].sort()).toEqual([
      'x-cidrs',
      'x-ifnames',
      'x-named',
      'x-ports',
      'x-vmap',
    ]);
    expect([...new Set(refs.flatMap((r) => r.chains))]).toEqual(['x-target']);
  });
});

describe('parseRuleJson', () => {
  it('reads nft 1.0.6 JSON back to the typed body, undoing its folded protocol matches', () => {
    const listed = [
      { match: { op: '==', left: { payload: { protocol: 'tcp', field: 'dport' } }, right: 80 } },
      { counter: { packets: 7, bytes: 420 } },
      { accept: null },
    ];
    const parsed = parseRuleJson(listed);
    expect(renderRule(parsed.body ?? [])).toBe('meta l4proto tcp th dport 80 counter accept');
    expect(parsed.counter).toEqual({ packets: 7, bytes: 420 });
  });

  it('reads ct state flags, anonymous sets, vmaps, limits and masquerade flags', () => {
    const text = (expr: unknown) => renderRule(parseRuleJson(expr).body ?? []);
    expect(
      text([
        { match: { op: 'in', left: { ct: { key: 'state' } }, right: ['established', 'related'] } },
        { accept: null },
      ]),
    ).toBe('ct state established,related accept');
    expect(
      text([{ match: { op: 'in', left: { ct: { key: 'state' } }, right: 'established' } }, { accept: null }]),
    ).toBe('ct state established accept');
    expect(text([{ vmap: { key: { payload: { protocol: 'ip', field: 'saddr' } }, data: '@x-vmap' } }])).toBe(
      'ip saddr vmap @x-vmap',
    );
    expect(text([{ limit: { rate: 5, burst: 10, per: 'second' } }, { log: { prefix: 'p ', group: 3 } }])).toBe(
      'limit rate 5/second burst 10 packets log prefix "p " group 3',
    );
    expect(text([{ masquerade: { flags: 'fully-random' } }])).toBe('masquerade fully-random');
    expect(text([{ masquerade: null }])).toBe('masquerade');
    expect(
      text([
        {
          match: {
            op: '!=',
            left: { fib: { result: 'type', flags: ['daddr'] } },
            right: { set: ['local', 'broadcast'] },
          },
        },
        { drop: null },
      ]),
    ).toBe('fib daddr type != { local, broadcast } drop');
  });

  it('leaves the body out for expressions Strand does not write, keeping the counter', () => {
    const parsed = parseRuleJson([
      { match: { op: '==', left: { payload: { protocol: 'tcp', field: 'flags' } }, right: 'syn' } },
      { counter: { packets: 1, bytes: 60 } },
    ]);
    expect(parsed.body).toBeUndefined();
    expect(parsed.counter).toEqual({ packets: 1, bytes: 60 });
  });
});

describe('counters through the transport', () => {
  it('the fake reports each counted rule by chain, handle and comment, with what a test set', async () => {
    const nft = new FakeNft();
    const tx = new Transaction();
    for (const o of exprCaseObjects()) tx.add(o);
    EXPR_CASES.forEach((c, i) => tx.add({ kind: 'rule', chain: c.chain, body: c.body, comment: `case ${i}` }));
    await nft.run(tx);
    const all = await nft.counters();
    expect(all.map((c) => c.comment)).toEqual(
      EXPR_CASES.flatMap((c, i) => (c.body.some((e) => e.kind === 'counter') ? [`case ${i}`] : [])),
    );
    const first = all[0]!;
    nft.setCounter(first.handle, 5, 300);
    expect((await nft.counters(['x-filter']))[0]).toEqual({ ...first, packets: 5, bytes: 300 });
    expect(await nft.counters(['x-nat'])).toEqual([]);
  });
});
