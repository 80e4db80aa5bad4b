// Pure address arithmetic of strand-ipam: parsing and printing as Go does, canonicalisation and
// validation as reference host-local (range.go, range_set.go), and its round-robin order.
import { Address4, Address6 } from 'ip-address';
import { describe, expect, it } from 'vitest';
import {
  addressWithPrefix,
  canonicalizeRange,
  canonicalizeRangeSet,
  formatIp,
  isAllocatable,
  nextIp,
  parseCidr,
  parseIp,
  RangeConfigError,
  rangeCapacity,
  rangeContains,
  rangeSetCapacity,
  rangeSetContains,
  rangeSetsOverlap,
  rangeSetString,
  rangeString,
  roundRobin,
  type IpAddr,
  type RangeSet,
} from '../../src/ipam/range.ts';

const ip = (s: string): IpAddr => {
  const a = parseIp(s);
  if (!a) throw new Error(`bad test address ${s}`);
  return a;
};

/** The first `n` candidates of the round-robin order, as text. */
function order(set: RangeSet, n: number, last?: string): string[] {
  const out: string[] = [];
  for (const c of roundRobin(set, last ? ip(last) : undefined)) {
    out.push(formatIp(c.ip));
    if (out.length === n) break;
  }
  return out;
}

function all(set: RangeSet, last?: string): string[] {
  return order(set, Number.MAX_SAFE_INTEGER, last);
}

describe('parsing and printing addresses', () => {
  it('prints IPv4 in dotted decimal', () => {
    expect(formatIp(ip('10.1.2.3'))).toBe('10.1.2.3');
    expect(formatIp(ip('255.255.255.255'))).toBe('255.255.255.255');
    expect(formatIp(ip('0.0.0.0'))).toBe('0.0.0.0');
  });

  it('prints IPv6 as Go does (RFC 5952: lower case, longest zero run compressed, single zero group kept)', () => {
    expect(formatIp(ip('2001:DB8:0:0:0:0:0:1'))).toBe('2001:db8::1');
    expect(formatIp(ip('2001:db8:0:1:0:0:0:1'))).toBe('2001:db8:0:1::1');
    expect(formatIp(ip('2001:db8:0:1:1:1:1:1'))).toBe('2001:db8:0:1:1:1:1:1');
    expect(formatIp(ip('fd00::'))).toBe('fd00::');
    expect(formatIp(ip('::'))).toBe('::');
  });

  it('treats an IPv4-mapped IPv6 address as IPv4, like Go canonicalizeIP', () => {
    expect(ip('::ffff:10.0.0.1')).toEqual({ family: 4, value: 0x0a000001n });
  });

  it('rejects what is not an address', () => {
    for (const s of ['', '10.0.0', '10.0.0.256', '010.0.0.1', 'fd00::/64', '10.0.0.1/24', 'fe80::1%eth0', 'x']) {
      expect(parseIp(s), s).toBeUndefined();
    }
  });

  it('parses CIDRs and refuses bad prefixes', () => {
    expect(parseCidr('10.0.0.0/24')).toEqual({ ip: ip('10.0.0.0'), prefix: 24 });
    expect(parseCidr('fd00::/64')).toEqual({ ip: ip('fd00::'), prefix: 64 });
    for (const s of ['10.0.0.0/33', 'fd00::/129', '10.0.0.0', '10.0.0.0/', '10.0.0.0/a', '10.0.0.0/-1']) {
      expect(parseCidr(s), s).toBeUndefined();
    }
  });

  it('steps to the next address, across octet and group boundaries, with BigInt for IPv6', () => {
    expect(formatIp(nextIp(ip('10.0.0.255')))).toBe('10.0.1.0');
    expect(formatIp(nextIp(ip('2001:db8::ffff')))).toBe('2001:db8::1:0');
    expect(formatIp(nextIp(ip('2001:db8:0:0:ffff:ffff:ffff:ffff')))).toBe('2001:db8:0:1::');
    expect(formatIp(nextIp(ip('255.255.255.255')))).toBe('0.0.0.0');
  });
});

describe('canonicalizeRange (reference defaults)', () => {
  it('IPv4 /24: gateway .1, start .1, end .254 (broadcast excluded)', () => {
    const r = canonicalizeRange({ subnet: '10.0.0.0/24' });
    expect(formatIp(r.gateway)).toBe('10.0.0.1');
    expect(rangeString(r)).toBe('10.0.0.1-10.0.0.254');
    expect(rangeCapacity(r)).toBe(253n);
  });

  it('IPv6 /64: gateway ::1, start ::1, end is the last address', () => {
    const r = canonicalizeRange({ subnet: '2001:db8:1::/64' });
    expect(formatIp(r.gateway)).toBe('2001:db8:1::1');
    expect(rangeString(r)).toBe('2001:db8:1::1-2001:db8:1:0:ffff:ffff:ffff:ffff');
    expect(rangeCapacity(r)).toBe(2n ** 64n - 2n);
  });

  it('keeps rangeStart, rangeEnd and gateway as given', () => {
    const r = canonicalizeRange({
      subnet: '10.0.0.0/24',
      rangeStart: '10.0.0.100',
      rangeEnd: '10.0.0.110',
      gateway: '10.0.0.254',
    });
    expect(rangeString(r)).toBe('10.0.0.100-10.0.0.110');
    expect(formatIp(r.gateway)).toBe('10.0.0.254');
    expect(rangeCapacity(r)).toBe(11n);
  });

  it('/30 leaves exactly one address besides the gateway', () => {
    const r = canonicalizeRange({ subnet: '10.0.0.0/30' });
    expect(rangeString(r)).toBe('10.0.0.1-10.0.0.2');
    expect(rangeCapacity(r)).toBe(1n);
  });

  const bad: [string, Parameters<typeof canonicalizeRange>[0], RegExp][] = [
    ['IPv4 /31', { subnet: '10.0.0.0/31' }, /^Network 10\.0\.0\.0\/31 too small to allocate from$/],
    ['IPv4 /32', { subnet: '10.0.0.1/32' }, /too small to allocate from/],
    ['IPv6 /127', { subnet: 'fd00::/127' }, /^Network fd00::\/127 too small to allocate from$/],
    ['IPv6 /128', { subnet: 'fd00::/128' }, /too small/],
    [
      'host bits',
      { subnet: '10.0.0.5/24' },
      /^Network has host bits set. For a subnet mask of length 24 the network address is 10\.0\.0\.0$/,
    ],
    ['IPv6 host bits', { subnet: 'fd00::1/64' }, /host bits set.*fd00::$/],
    [
      'rangeStart outside',
      { subnet: '10.0.0.0/24', rangeStart: '10.0.1.5' },
      /^RangeStart 10\.0\.1\.5 not in network 10\.0\.0\.0\/24$/,
    ],
    ['rangeEnd outside', { subnet: '10.0.0.0/24', rangeEnd: '10.0.1.5' }, /^RangeEnd 10\.0\.1\.5 not in network/],
    ['rangeStart other family', { subnet: '10.0.0.0/24', rangeStart: 'fd00::5' }, /RangeStart fd00::5 not in network/],
    [
      'start after end',
      { subnet: '10.0.0.0/24', rangeStart: '10.0.0.9', rangeEnd: '10.0.0.8' },
      /RangeStart 10\.0\.0\.9 is after RangeEnd 10\.0\.0\.8/,
    ],
    [
      'gateway other family',
      { subnet: '10.0.0.0/24', gateway: 'fd00::1' },
      /gateway fd00::1 is not the same address family/,
    ],
    ['not a CIDR', { subnet: '10.0.0.0' }, /invalid CIDR address: 10\.0\.0\.0/],
    ['bad rangeStart', { subnet: '10.0.0.0/24', rangeStart: 'ten' }, /rangeStart "ten" is not an IP address/],
  ];
  for (const [name, input, message] of bad) {
    it(`refuses ${name}`, () => {
      expect(() => canonicalizeRange(input)).toThrow(RangeConfigError);
      expect(() => canonicalizeRange(input)).toThrow(message);
    });
  }

  it('accepts a gateway outside the subnet, as the current reference does', () => {
    expect(formatIp(canonicalizeRange({ subnet: '10.0.0.0/24', gateway: '10.9.9.9' }).gateway)).toBe('10.9.9.9');
  });
});

describe('range sets', () => {
  it('refuses an empty set, mixed families and overlapping ranges', () => {
    expect(() => canonicalizeRangeSet([])).toThrow('empty range set');
    expect(() => canonicalizeRangeSet([{ subnet: '10.0.0.0/24' }, { subnet: 'fd00::/64' }])).toThrow(
      'mixed address families',
    );
    expect(() => canonicalizeRangeSet([{ subnet: '10.0.0.0/24' }, { subnet: '10.0.0.0/25' }])).toThrow(
      'subnets 10.0.0.1-10.0.0.254 and 10.0.0.1-10.0.0.126 overlap',
    );
    // Two ranges of one subnet that do not overlap are fine.
    const set = canonicalizeRangeSet([
      { subnet: '10.0.0.0/24', rangeStart: '10.0.0.10', rangeEnd: '10.0.0.19' },
      { subnet: '10.0.0.0/24', rangeStart: '10.0.0.20', rangeEnd: '10.0.0.29' },
    ]);
    expect(rangeSetString(set)).toBe('10.0.0.10-10.0.0.19,10.0.0.20-10.0.0.29');
  });

  it('containment is inclusive at both ends and knows the family', () => {
    const set = canonicalizeRangeSet([{ subnet: '10.0.0.0/24', rangeStart: '10.0.0.10', rangeEnd: '10.0.0.20' }]);
    expect(rangeSetContains(set, ip('10.0.0.10'))).toBe(true);
    expect(rangeSetContains(set, ip('10.0.0.20'))).toBe(true);
    expect(rangeSetContains(set, ip('10.0.0.9'))).toBe(false);
    expect(rangeSetContains(set, ip('10.0.0.21'))).toBe(false);
    expect(rangeSetContains(set, ip('::a00:a'))).toBe(false);
    expect(rangeContains(set[0]!, ip('10.0.0.15'))).toBe(true);
  });

  it('the network and broadcast addresses are never allocatable, the gateway neither', () => {
    const set = canonicalizeRangeSet([{ subnet: '10.0.0.0/24' }]);
    expect(isAllocatable(set, ip('10.0.0.0'))).toBe(false);
    expect(isAllocatable(set, ip('10.0.0.255'))).toBe(false);
    expect(isAllocatable(set, ip('10.0.0.1'))).toBe(false);
    expect(isAllocatable(set, ip('10.0.0.2'))).toBe(true);
    expect(isAllocatable(set, ip('10.0.0.254'))).toBe(true);
  });

  it('detects overlapping sets of the same family only', () => {
    const a = canonicalizeRangeSet([{ subnet: '10.0.0.0/24' }]);
    const b = canonicalizeRangeSet([{ subnet: '10.0.0.128/25' }]);
    const c = canonicalizeRangeSet([{ subnet: '10.0.1.0/24' }]);
    const v6 = canonicalizeRangeSet([{ subnet: 'fd00::/64' }]);
    expect(rangeSetsOverlap(a, b)).toBe(true);
    expect(rangeSetsOverlap(a, c)).toBe(false);
    expect(rangeSetsOverlap(a, v6)).toBe(false);
  });

  it('capacity adds up ranges and leaves out gateways inside them', () => {
    const set = canonicalizeRangeSet([
      { subnet: '10.0.0.0/29' }, // .1-.6, gateway .1: 5
      { subnet: '10.0.1.0/29', rangeStart: '10.0.1.2' }, // .2-.6, gateway .1 outside: 5
    ]);
    expect(rangeSetCapacity(set)).toBe(10n);
  });

  it('writes the address with its subnet prefix for the result', () => {
    const r = canonicalizeRange({ subnet: 'fd00:1::/80' });
    expect(addressWithPrefix(ip('fd00:1::5'), r)).toBe('fd00:1::5/80');
  });
});

describe('round robin (reference allocator.go RangeIter)', () => {
  it('IPv4: starts at rangeStart, skips the gateway, ends before broadcast, tries each address once', () => {
    const set = canonicalizeRangeSet([{ subnet: '10.0.0.0/29' }]);
    expect(all(set)).toEqual(['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6']);
  });

  it('continues after the last reserved address and wraps around, trying it last', () => {
    const set = canonicalizeRangeSet([{ subnet: '10.0.0.0/29' }]);
    expect(all(set, '10.0.0.4')).toEqual(['10.0.0.5', '10.0.0.6', '10.0.0.2', '10.0.0.3', '10.0.0.4']);
    expect(all(set, '10.0.0.6')).toEqual(['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6']);
  });

  it('ignores a last reserved address outside the set (range indexes changed)', () => {
    const set = canonicalizeRangeSet([{ subnet: '10.0.0.0/29' }]);
    expect(order(set, 2, '192.168.0.9')).toEqual(['10.0.0.2', '10.0.0.3']);
    expect(order(set, 2, 'fd00::5')).toEqual(['10.0.0.2', '10.0.0.3']);
  });

  it('respects rangeStart/rangeEnd and a gateway inside the range', () => {
    const set = canonicalizeRangeSet([
      { subnet: '10.0.0.0/24', rangeStart: '10.0.0.10', rangeEnd: '10.0.0.14', gateway: '10.0.0.12' },
    ]);
    expect(all(set)).toEqual(['10.0.0.10', '10.0.0.11', '10.0.0.13', '10.0.0.14']);
    expect(all(set, '10.0.0.11')).toEqual(['10.0.0.13', '10.0.0.14', '10.0.0.10', '10.0.0.11']);
  });

  it('walks several ranges of a set in order and wraps from the last to the first', () => {
    const set = canonicalizeRangeSet([
      { subnet: '10.0.0.0/30' }, // .2
      { subnet: '10.0.1.0/29', rangeStart: '10.0.1.4' }, // .4 .5 .6
      { subnet: '10.0.2.0/30' }, // .2
    ]);
    expect(all(set)).toEqual(['10.0.0.2', '10.0.1.4', '10.0.1.5', '10.0.1.6', '10.0.2.2']);
    expect(all(set, '10.0.1.5')).toEqual(['10.0.1.6', '10.0.2.2', '10.0.0.2', '10.0.1.4', '10.0.1.5']);
    // Wrapping from the last range lands on the first range's start, its gateway, which is skipped.
    expect(all(set, '10.0.2.2')).toEqual(['10.0.0.2', '10.0.1.4', '10.0.1.5', '10.0.1.6', '10.0.2.2']);
  });

  it('ends when the only address of a range is its gateway (no endless loop)', () => {
    const set = canonicalizeRangeSet([{ subnet: '10.0.0.0/24', rangeStart: '10.0.0.1', rangeEnd: '10.0.0.1' }]);
    expect(all(set)).toEqual([]);
    expect(all(set, '10.0.0.1')).toEqual([]);
  });

  it('IPv6: crosses group boundaries with BigInt and starts at ::1 skipping the gateway', () => {
    const set = canonicalizeRangeSet([{ subnet: '2001:db8::/64' }]);
    expect(order(set, 3)).toEqual(['2001:db8::2', '2001:db8::3', '2001:db8::4']);
    expect(order(set, 3, '2001:db8::ffff')).toEqual(['2001:db8::1:0', '2001:db8::1:1', '2001:db8::1:2']);
    // The last address of the /64 is allocatable (no broadcast in IPv6), then the walk wraps.
    expect(order(set, 3, '2001:db8::ffff:ffff:ffff:fffe')).toEqual([
      '2001:db8::ffff:ffff:ffff:ffff',
      '2001:db8::2',
      '2001:db8::3',
    ]);
  });

  it('IPv6 with rangeStart/rangeEnd, exhausting the whole cycle', () => {
    const set = canonicalizeRangeSet([{ subnet: 'fd00:10::/120', rangeStart: 'fd00:10::fe', rangeEnd: 'fd00:10::ff' }]);
    expect(all(set)).toEqual(['fd00:10::fe', 'fd00:10::ff']);
    expect(all(set, 'fd00:10::fe')).toEqual(['fd00:10::ff', 'fd00:10::fe']);
  });

  it('yields the range each address belongs to', () => {
    const set = canonicalizeRangeSet([{ subnet: '10.0.0.0/30' }, { subnet: '10.0.1.0/30' }]);
    const got = [...roundRobin(set)].map(
      (c) => `${formatIp(c.ip)}/${c.range.subnet.prefix} gw ${formatIp(c.range.gateway)}`,
    );
    expect(got).toEqual(['10.0.0.2/30 gw 10.0.0.1', '10.0.1.2/30 gw 10.0.1.1']);
  });
});

// range.ts parsed and printed with the ip-address package until it cost 3 ms of every pod start;
// its own parser must read and print every address exactly as ip-address did.
describe('parsing and printing agree with the ip-address package', () => {
  function viaIpAddress(text: string): { family: 4 | 6; value: bigint } | undefined {
    if (text.includes('/') || text.includes('%')) return undefined;
    if (Address4.isValid(text)) return { family: 4, value: new Address4(text).bigInt() };
    if (!Address6.isValid(text)) return undefined;
    const value = new Address6(text).bigInt();
    if (value >> 32n === 0xffffn) return { family: 4, value: value & 0xffffffffn };
    return { family: 6, value };
  }

  it('parses the same addresses and refuses the same non-addresses', () => {
    const cases = [
      '1.2.3.4',
      '01.2.3.4',
      '0.0.0.0',
      '255.255.255.255',
      '256.0.0.1',
      '1.2.3',
      '1.2.3.4.5',
      '::',
      '::1',
      '1::',
      'fe80::1',
      'FE80::A',
      '1:2:3:4:5:6:7:8',
      '1:2:3:4:5:6:7::',
      '::2:3:4:5:6:7:8',
      '1::2::3',
      '::ffff:1.2.3.4',
      '::ffff:a01:203',
      '1:2:3:4:5:6:1.2.3.4',
      '::1.2.3.4',
      'abcd::12345',
      '',
      'x',
      'lock',
      'last_reserved_ip.0',
      '10.213.0.8',
      'fd00::1:0',
      '0:0:0:0:0:0:0:1',
      '1.2.3.04',
      '::ffff:01.2.3.4',
      ' 1.2.3.4',
      '1.2.3.4 ',
      '1:2:3:4:5:6:7:8:9',
      ':1:2:3:4:5:6:7',
      '1:2:3:4:5:6:7:',
      '0x1.2.3.4',
      '+1.2.3.4',
      '2001:db8::',
      '2001:0db8:0000:0000:0000:ff00:0042:8329',
      'fe80::1%eth0',
      '10.0.0.0/8',
    ];
    for (const c of cases) expect(parseIp(c), c).toEqual(viaIpAddress(c));
  });

  it('prints random addresses as ip-address does, and reads them back', () => {
    let seed = 12345;
    const byte = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      // Half the bytes zero, so runs of zero groups (the "::" cases) are common.
      return seed % 2 === 0 ? 0 : seed % 256;
    };
    for (let i = 0; i < 5000; i++) {
      const family: 4 | 6 = i % 2 ? 6 : 4;
      let value = 0n;
      for (let j = 0; j < (family === 4 ? 4 : 16); j++) value = (value << 8n) | BigInt(byte());
      const mapped = family === 6 && value >> 32n === 0xffffn;
      const want =
        family === 4 || mapped
          ? Address4.fromBigInt(value & 0xffffffffn).correctForm()
          : Address6.fromBigInt(value).correctForm();
      const text = formatIp({ family, value });
      expect(text).toBe(want);
      expect(parseIp(text)?.value).toBe(mapped ? value & 0xffffffffn : value);
    }
  });
});
