// nftables objects rendered as nft script text, and the checks that keep a name, comment or rule body
// from breaking out of its command (nft has no escapes: see src/nft/objects.ts).
import { describe, expect, it } from 'vitest';
import {
  canonicalElementPart,
  checkObject,
  ipInterval,
  NftObjectError,
  PRIORITY,
  renderOperation,
  STRAND_TABLE,
  type NftObject,
} from '../../src/nft/objects.ts';
import { counter, match, meta, verdict } from '../../src/nft/expr.ts';

const r = (verb: Parameters<typeof renderOperation>[0], obj: Parameters<typeof renderOperation>[1]) =>
  renderOperation(verb, obj, STRAND_TABLE);

describe('rendering', () => {
  it('renders the table, regular and base chains', () => {
    expect(r('add', { kind: 'table' })).toBe('add table inet strand');
    expect(r('add', { kind: 'chain', name: 'agent-fw' })).toBe('add chain inet strand agent-fw');
    expect(r('add', { kind: 'chain', name: 'agent-fw', comment: 'x; {y} # z' })).toBe(
      'add chain inet strand agent-fw { comment "x; {y} # z" ; }',
    );
    expect(
      r('create', {
        kind: 'chain',
        name: 'agent-post',
        base: { type: 'nat', hook: 'postrouting', priority: PRIORITY.srcnat, policy: 'accept' },
      }),
    ).toBe('create chain inet strand agent-post { type nat hook postrouting priority 100 ; policy accept ; }');
    expect(
      r('add', {
        kind: 'chain',
        name: 'agent-in',
        base: { type: 'filter', hook: 'input', priority: PRIORITY.filter - 10 },
      }),
    ).toBe('add chain inet strand agent-in { type filter hook input priority -10 ; }');
    expect(r('flush', { kind: 'chain', name: 'agent-fw' })).toBe('flush chain inet strand agent-fw');
    expect(r('delete', { kind: 'chain', name: 'agent-fw' })).toBe('delete chain inet strand agent-fw');
  });

  it('renders rules with comments and handles', () => {
    expect(
      r('add', {
        kind: 'rule',
        chain: 'agent-fw',
        body: [match(meta('iifname'), { kind: 'name', value: 'eth0' }), counter(), verdict('accept')],
        comment: 'from eth0',
      }),
    ).toBe('add rule inet strand agent-fw iifname "eth0" counter accept comment "from eth0"');
    expect(r('insert', { kind: 'rule', chain: 'agent-fw', body: [verdict('drop')] })).toBe(
      'insert rule inet strand agent-fw drop',
    );
    expect(r('add', { kind: 'rule', chain: 'agent-fw', body: [verdict('drop')], handle: 7 })).toBe(
      'add rule inet strand agent-fw handle 7 drop',
    );
    expect(r('replace', { kind: 'rule', chain: 'agent-fw', body: [verdict('accept')], handle: 7 })).toBe(
      'replace rule inet strand agent-fw handle 7 accept',
    );
    expect(r('delete', { kind: 'rule', chain: 'agent-fw', handle: 7 })).toBe(
      'delete rule inet strand agent-fw handle 7',
    );
  });

  it('renders sets, maps and verdict maps', () => {
    expect(r('add', { kind: 'set', name: 'agent-cidrs', type: 'ipv4_addr', flags: ['interval'], comment: 'c' })).toBe(
      'add set inet strand agent-cidrs { type ipv4_addr ; flags interval ; comment "c" ; }',
    );
    expect(
      r('add', {
        kind: 'set',
        name: 'agent-t',
        type: 'ipv4_addr . inet_service',
        flags: ['timeout', 'dynamic'],
        timeout: 30,
        size: 1024,
      }),
    ).toBe(
      'add set inet strand agent-t { type ipv4_addr . inet_service ; flags timeout,dynamic ; timeout 30s ; size 1024 ; }',
    );
    expect(r('add', { kind: 'map', name: 'policy-pods', type: 'ipv4_addr', value: 'verdict' })).toBe(
      'add map inet strand policy-pods { type ipv4_addr : verdict ; }',
    );
    expect(r('flush', { kind: 'map', name: 'policy-pods' })).toBe('flush map inet strand policy-pods');
    expect(r('delete', { kind: 'set', name: 'agent-t' })).toBe('delete set inet strand agent-t');
  });

  it('renders elements: concatenated keys, values, comments; delete names the key only', () => {
    expect(r('add', { kind: 'element', set: 'agent-cidrs', key: ['10.1.0.0/16'] })).toBe(
      'add element inet strand agent-cidrs { 10.1.0.0/16 }',
    );
    expect(r('add', { kind: 'element', set: 'agent-t', key: ['10.1.0.1', '80'], comment: 'web' })).toBe(
      'add element inet strand agent-t { 10.1.0.1 . 80 comment "web" }',
    );
    const e = {
      kind: 'element',
      set: 'policy-pods',
      key: ['10.1.0.1'],
      value: ['jump policy-pod-a'],
      comment: 'pod a',
    } as const;
    expect(r('add', e)).toBe('add element inet strand policy-pods { 10.1.0.1 comment "pod a" : jump policy-pod-a }');
    expect(r('delete', e)).toBe('delete element inet strand policy-pods { 10.1.0.1 }');
  });
});

describe('checks', () => {
  const bad = (obj: NftObject, match: RegExp) => expect(() => checkObject(obj)).toThrow(match);
  const ok = (obj: NftObject) => expect(() => checkObject(obj)).not.toThrow();

  it('accepts hyphenated lower-case names, including the plugin-style ones', () => {
    ok({ kind: 'chain', name: 'agent-postrouting' });
    ok({ kind: 'chain', name: 'cni-1a2b3c4d-5e6f7a8b' });
    ok({ kind: 'set', name: 'policy-ns_x-2', type: 'ipv4_addr' });
  });

  it('refuses names nft would read as keywords, quoted strings or more than one word', () => {
    for (const name of [
      'filter',
      'ip',
      'counter',
      'auto-merge',
      'gc-interval',
      'Agent-x',
      '-x',
      'x-',
      'a b-c',
      'a"-b',
      'a;-b',
      'a-b\n',
      '',
      'x'.repeat(63) + '-y',
    ]) {
      bad({ kind: 'chain', name }, /invalid chain name/);
    }
    bad({ kind: 'rule', chain: 'counter', body: [verdict('accept')] }, /invalid chain name/);
    bad({ kind: 'element', set: 'ip', key: ['1.2.3.4'] }, /invalid set or map name/);
  });

  it("refuses comments nft cannot quote: '\"', control characters, more than 128 bytes", () => {
    bad({ kind: 'chain', name: 'agent-x', comment: 'say "hi"' }, /cannot hold/);
    bad({ kind: 'rule', chain: 'agent-x', body: [verdict('accept')], comment: 'a\nadd table ip evil' }, /cannot hold/);
    bad({ kind: 'set', name: 'agent-s', type: 'ipv4_addr', comment: 'é'.repeat(65) }, /longer than 128 bytes/);
    ok({ kind: 'set', name: 'agent-s', type: 'ipv4_addr', comment: "a; b { c } # d \\ e $f 'g'" });
  });

  it('refuses rule bodies that could end the command or comment out the rest', () => {
    // Rule text is gone (typed bodies only): what could carry `;`, `#`, a newline, a quote or `$` into
    // the script is a quoted name or log prefix, or a selector forced through a cast.
    const iif = (value: string) => match(meta('iifname'), { kind: 'name', value });
    bad({ kind: 'rule', chain: 'agent-x', body: [iif('a;b'), verdict('accept')] }, /not an interface name/);
    bad({ kind: 'rule', chain: 'agent-x', body: [iif('eth0"'), verdict('accept')] }, /not an interface name/);
    bad({ kind: 'rule', chain: 'agent-x', body: [{ kind: 'log', prefix: 'a\nflush ruleset' }] }, /log prefix/);
    bad({ kind: 'rule', chain: 'agent-x', body: [{ kind: 'log', prefix: 'a$b' }] }, /log prefix/);
    const field = 'ip saddr 1.2.3.4 ; flush ruleset ;' as 'ip saddr';
    const forced = match({ kind: 'payload', field }, { kind: 'addr', addr: '1.2.3.4' });
    bad({ kind: 'rule', chain: 'agent-x', body: [forced] }, /selector/);
    bad({ kind: 'rule', chain: 'agent-x', body: [] }, /empty/);
    ok({ kind: 'rule', chain: 'agent-x', body: [{ kind: 'log', prefix: 'a;b#c comment ' }, verdict('accept')] });
    ok({ kind: 'rule', chain: 'agent-x', body: [iif('comment'), verdict('accept')] });
    bad({ kind: 'rule', chain: 'agent-x', body: [verdict('accept')], handle: 0 }, /handle/);
  });

  it('refuses element keys that would split into more elements or parts', () => {
    bad({ kind: 'element', set: 'agent-s', key: ['10.0.0.1, 10.0.0.2'] }, /outside quotes/);
    bad({ kind: 'element', set: 'agent-s', key: ['10.0.0.1 }'] }, /outside quotes/);
    bad({ kind: 'element', set: 'agent-s', key: [] }, /no parts/);
    bad({ kind: 'element', set: 'agent-m', key: ['10.0.0.1'], value: ['jump ip'] }, /invalid chain name/);
    bad({ kind: 'element', set: 'agent-m', key: ['10.0.0.1'], value: [] }, /no parts/);
    ok({ kind: 'element', set: 'agent-m', key: ['fd00::/64'], value: ['goto agent-y'] });
    ok({ kind: 'element', set: 'agent-m', key: ['"eth0"', '80'], value: ['accept'] });
  });

  it('refuses bad types, flags and base chain specs', () => {
    bad({ kind: 'set', name: 'agent-s', type: 'ipv4_addr; flush ruleset' }, /key type/);
    bad({ kind: 'set', name: 'agent-s', type: 'ipv4_addr', flags: ['bogus' as never] }, /invalid flag/);
    bad({ kind: 'map', name: 'agent-m', type: 'ipv4_addr', value: 'verdict }' }, /value type/);
    bad({ kind: 'chain', name: 'agent-c', base: { type: 'nat', hook: 'postrouting', priority: 1.5 } }, /priority/);
    bad({ kind: 'chain', name: 'agent-c', base: { type: 'nat', hook: 'ingress' as never, priority: 0 } }, /hook/);
    expect(() => checkObject({ kind: 'chain', name: 'ip' })).toThrow(NftObjectError);
  });
});

describe('canonical element text', () => {
  it('writes addresses the way nft lists them', () => {
    expect(canonicalElementPart('10.1.2.3/16')).toBe('10.1.0.0/16');
    expect(canonicalElementPart('10.1.2.3/32')).toBe('10.1.2.3');
    expect(canonicalElementPart('FD00:0:0::1/64')).toBe('fd00::/64');
    expect(canonicalElementPart('fd00::1/128')).toBe('fd00::1');
    expect(canonicalElementPart('10.0.0.1-10.0.0.9')).toBe('10.0.0.1-10.0.0.9');
    expect(canonicalElementPart('80')).toBe('80');
    expect(canonicalElementPart('jump agent-x')).toBe('jump agent-x');
  });

  it('gives the interval an address part covers', () => {
    expect(ipInterval('10.0.0.0/30')).toEqual({ family: 4, first: 0x0a000000n, last: 0x0a000003n });
    expect(ipInterval('10.0.0.5')).toEqual({ family: 4, first: 0x0a000005n, last: 0x0a000005n });
    expect(ipInterval('10.0.0.1-10.0.0.9')?.last).toBe(0x0a000009n);
    expect(ipInterval('80')).toBeUndefined();
  });
});
