// ctnetlink in process (src/kernel/conntrack.ts) against the kernel: entries made by real packets in
// a test namespace are listed with their tuples and deleted one by one, the others left alone.
import { describe, expect, it } from 'vitest';
import { Conntrack, IPPROTO } from '../../src/kernel/conntrack.ts';
import { kernelFixture } from '../support/kernel-fixture.ts';

const { netns } = kernelFixture();

describe('conntrack over ctnetlink', () => {
  it('lists the entries real packets made and deletes exactly the one asked for', () => {
    const ns = netns();
    // Conntrack tracks a namespace's packets once a hook there uses it.
    ns.exec('nft', [
      'add table inet stt-ct ; add chain inet stt-ct out { type filter hook output priority 0 ; ct state new counter ; }',
    ]);
    for (const port of [9101, 9102]) ns.exec('bash', ['-c', `echo hi > /dev/udp/127.0.0.1/${port}`]);
    ns.exec('bash', ['-c', 'exec 3<>/dev/udp/::1/9103 && echo hi >&3']);
    const ct = Conntrack.open({ netns: ns.path });
    try {
      const v4 = ct.list(4).filter((e) => e.orig.proto === IPPROTO.UDP);
      expect(v4.map((e) => e.orig.dport).sort()).toEqual([9101, 9102]);
      const first = v4.find((e) => e.orig.dport === 9101)!;
      expect(first.orig).toMatchObject({ src: '127.0.0.1', dst: '127.0.0.1', proto: IPPROTO.UDP, dport: 9101 });
      expect(first.reply).toMatchObject({ src: '127.0.0.1', sport: 9101 });
      const v6 = ct.list(6).filter((e) => e.orig.proto === IPPROTO.UDP);
      expect(v6.map((e) => [e.orig.dst, e.orig.dport])).toEqual([['::1', 9103]]);

      expect(ct.delete(first)).toBe(true);
      expect(
        ct
          .list(4)
          .filter((e) => e.orig.proto === IPPROTO.UDP)
          .map((e) => e.orig.dport),
      ).toEqual([9102]);
      // Gone already: not an error.
      expect(ct.delete(first)).toBe(false);
      expect(ct.delete(v6[0]!)).toBe(true);
      expect(ct.list(6).filter((e) => e.orig.proto === IPPROTO.UDP)).toEqual([]);
    } finally {
      ct.close();
    }
  });
});
