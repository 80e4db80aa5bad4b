import { describe, expect, it } from 'vitest';
import { fnv1a64, hostVethName, randomMac } from '../../src/plugin/names.ts';

describe('host veth names', () => {
  it('uses FNV-1a 64 (published test vectors)', () => {
    expect(fnv1a64('')).toBe(0xcbf29ce484222325n);
    expect(fnv1a64('a')).toBe(0xaf63dc4c8601ec8cn);
    expect(fnv1a64('foobar')).toBe(0x85944171f73967e8n);
  });

  it('keeps the names it always gave (DEL and GC of pods made by an older version find them)', () => {
    expect(hostVethName('strand', 'c0ffee', 'eth0')).toBe('veth8873da9ff36');
    expect(hostVethName('cbr0', '0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef', 'eth0')).toBe(
      'veth6d216cde3cd',
    );
    expect(hostVethName('net-ü', 'x', 'net1')).toBe('veth45f7f6feb35');
  });

  it('agrees with FNV-1a computed in 64-bit BigInt arithmetic', () => {
    const reference = (text: string): bigint => {
      let h = 0xcbf29ce484222325n;
      for (const b of Buffer.from(text, 'utf8')) h = ((h ^ BigInt(b)) * 0x100000001b3n) & 0xffffffffffffffffn;
      return h;
    };
    for (let i = 0; i < 2000; i++) {
      const text = `net-${i}\0${(i * 7919).toString(36)}\0eth${i % 7}${'ü'.repeat(i % 3)}`;
      expect(fnv1a64(text)).toBe(reference(text));
    }
  });

  it('is "veth" + 11 hex digits, the same for the same attachment, different for others', () => {
    const name = hostVethName('strand', 'c0ffee', 'eth0');
    expect(name).toMatch(/^veth[0-9a-f]{11}$/);
    expect(hostVethName('strand', 'c0ffee', 'eth0')).toBe(name);
    const others = new Set<string>();
    for (let i = 0; i < 5000; i++) others.add(hostVethName('strand', `container-${i}`, 'eth0'));
    others.add(hostVethName('other', 'c0ffee', 'eth0'));
    others.add(hostVethName('strand', 'c0ffee', 'net1'));
    expect(others.size).toBe(5002);
    expect(others.has(name)).toBe(false);
  });
});

describe('randomMac', () => {
  it('is a locally administered unicast address', () => {
    for (let i = 0; i < 200; i++) {
      const mac = randomMac();
      expect(mac).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
      const first = parseInt(mac.slice(0, 2), 16);
      expect(first & 0x01).toBe(0);
      expect(first & 0x02).toBe(2);
    }
  });
});
