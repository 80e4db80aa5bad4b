import { describe, expect, it } from 'vitest';
import {
  broadcastOf,
  formatCidr,
  formatIp,
  formatMac,
  ipv4Word,
  networkOf,
  parseCidr,
  parseIp,
  parseMac,
  tryParseIp,
} from '../../src/net/ip.ts';

describe('IP addresses', () => {
  it('parses and formats IPv4', () => {
    const ip = parseIp('10.244.1.5');
    expect(ip.family).toBe(4);
    expect([...ip.bytes]).toEqual([10, 244, 1, 5]);
    expect(formatIp(ip.bytes)).toBe('10.244.1.5');
  });

  it('refuses malformed IPv4', () => {
    for (const bad of ['10.1.1', '10.1.1.256', '010.1.1.1', '1.2.3.4.5', '', 'a.b.c.d', '1..2.3']) {
      expect(tryParseIp(bad), bad).toBeUndefined();
    }
  });

  it('reads a dotted quad as one 32-bit word exactly where a split-and-check reading accepts it', () => {
    // The reading parseIp had before ipv4Word, kept here as the judge: four decimal parts of 0-255
    // without leading zeros.
    const reference = (t: string): number => {
      const parts = t.split('.');
      if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255)) return -1;
      return parts.reduce((w, p) => w * 256 + Number(p), 0);
    };
    const texts = [
      '10.244.0.2',
      '0.0.0.0',
      '255.255.255.255',
      '1.2.3.4',
      '01.2.3.4',
      '1.2.3.256',
      '1.2.3',
      '1.2.3.4.5',
      '1.2.3.4/32',
      '1.2.3.4-1.2.3.5',
      ' 1.2.3.4',
      '1.2.3.4 ',
      '1..3.4',
      'a.b.c.d',
      '1.2.3.',
      '.1.2.3',
      '1000.2.3.4',
      '::1',
      '',
      '1.2.3.04',
      '255.255.255.2555',
      '1.2.3.+4',
    ];
    for (const t of texts) expect([t, ipv4Word(t)]).toEqual([t, reference(t)]);
    expect(ipv4Word('10.244.1.5')).toBe(0x0af40105);
    expect([...parseIp('192.0.2.255').bytes]).toEqual([192, 0, 2, 255]);
  });

  it.each([
    ['2001:db8::1', '2001:db8::1'],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['::', '::'],
    ['::1', '::1'],
    ['fe80::', 'fe80::'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // first of two equal runs
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group is not compressed
    ['fd00:0:0:1::', 'fd00:0:0:1::'],
    ['::ffff:10.1.2.3', '::ffff:10.1.2.3'],
    ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
  ])('formats %s as %s (RFC 5952)', (text, canonical) => {
    const ip = parseIp(text);
    expect(ip.family).toBe(6);
    expect(formatIp(ip.bytes)).toBe(canonical);
  });

  it('refuses malformed IPv6', () => {
    for (const bad of ['1::2::3', '12345::', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', 'g::1', ':::', '1:2:3:4:5:6:7::8']) {
      expect(tryParseIp(bad), bad).toBeUndefined();
    }
  });

  it('parses CIDRs and bare addresses', () => {
    expect(parseCidr('10.244.0.0/16')).toMatchObject({ family: 4, prefixLength: 16 });
    expect(parseCidr('fd00::/64')).toMatchObject({ family: 6, prefixLength: 64 });
    expect(parseCidr('10.1.1.1').prefixLength).toBe(32);
    expect(parseCidr('::1').prefixLength).toBe(128);
    expect(() => parseCidr('10.0.0.0/33')).toThrow(/prefix length/);
    expect(() => parseCidr('fd00::/129')).toThrow(/prefix length/);
    expect(() => parseCidr('10.0.0.0/')).toThrow(/prefix length/);
    expect(formatCidr(parseCidr('10.244.1.5/24').bytes, 24)).toBe('10.244.1.5/24');
  });

  it('computes network and broadcast addresses', () => {
    const c = parseCidr('10.244.1.5/22');
    expect(formatIp(networkOf(c.bytes, 22))).toBe('10.244.0.0');
    expect(formatIp(broadcastOf(c.bytes, 22))).toBe('10.244.3.255');
    expect(formatIp(networkOf(parseIp('fd00:1:2:3::9').bytes, 48))).toBe('fd00:1:2::');
  });

  it('parses and formats MAC addresses', () => {
    expect(formatMac(parseMac('0A:1b:2C:3d:4E:5f'))).toBe('0a:1b:2c:3d:4e:5f');
    expect(formatMac(parseMac('0a-1b-2c-3d-4e-5f'))).toBe('0a:1b:2c:3d:4e:5f');
    expect(() => parseMac('0a:1b:2c:3d:4e')).toThrow(/invalid MAC/);
    expect(() => parseMac('0a:1b:2c:3d:4e:5g')).toThrow(/invalid MAC/);
    expect(formatMac(parseMac('FF-fe:0A-00:9f-Af'))).toBe('ff:fe:0a:00:9f:af');
    for (const bad of [
      '',
      '0a:1b:2c:3d:4e:5f:',
      ' 0a:1b:2c:3d:4e:5f',
      '0a:1b:2c:3d:4e5f0',
      '0a;1b:2c:3d:4e:5f',
      '0a:1b:2c:3d:4e:5',
      'g0:1b:2c:3d:4e:5f',
      '0a:1b:2c:3d:4e:/f',
      '0a:1b:2c:3d:4e:@f',
    ])
      expect(() => parseMac(bad), bad).toThrow(/invalid MAC/);
  });
});

describe('prefix helpers', () => {
  it('cidrsOverlap compares at the shorter prefix and never across families', async () => {
    const { cidrsOverlap } = await import('../../src/net/ip.ts');
    expect(cidrsOverlap('10.244.0.0/16', '10.244.3.0/24')).toBe(true);
    expect(cidrsOverlap('10.244.3.7/24', '10.244.3.0/24')).toBe(true);
    expect(cidrsOverlap('10.244.3.0/24', '10.244.4.0/24')).toBe(false);
    expect(cidrsOverlap('fd00:1::5/64', 'fd00:1::/64')).toBe(true);
    expect(cidrsOverlap('fd00:1::/64', 'fd00:2::/64')).toBe(false);
    expect(cidrsOverlap('10.0.0.0/8', '::/0')).toBe(false);
  });

  it('firstHost is the network address plus one', async () => {
    const { firstHost } = await import('../../src/net/ip.ts');
    expect(firstHost('10.244.1.5/24')).toBe('10.244.1.1');
    expect(firstHost('10.88.0.0/16')).toBe('10.88.0.1');
    expect(firstHost('fd00:1::42/64')).toBe('fd00:1::1');
  });
});
