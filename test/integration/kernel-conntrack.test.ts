// ctnetlink in process (src/kernel/conntrack.ts) against the kernel: entries made by real packets in
// a test namespace are listed with their tuples and deleted one by one, the others left alone.
import { describe, expect, it } from 'vitest';
import { Conntrack, IPPROTO, sameTuple } from '../../src/kernel/conntrack.ts';
import { kernelFixture } from '../support/kernel-fixture.ts';
import { cutRecreatedReplies } from '../../src/agent/policy/reply-cutter.ts';
import { silentLogger } from '../../src/log.ts';

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
      // Looked up by a tuple (no dump): by its original one, and by its reply one (the kernel's
      // lookup does not say which matched), and nothing for a tuple no entry has.
      const second = v4.find((e) => e.orig.dport === 9102)!;
      expect(ct.get(4, second.orig)).toMatchObject({ orig: second.orig, reply: second.reply });
      const byReply = ct.get(4, second.reply)!;
      expect(sameTuple(byReply.orig, second.orig)).toBe(true);
      expect(sameTuple(byReply.orig, second.reply)).toBe(false);
      expect(ct.get(4, { ...second.orig, dport: 9199 })).toBeUndefined();
      expect(ct.get(4, first.orig)).toBeUndefined();
      // Gone already: not an error.
      expect(ct.delete(first)).toBe(false);
      expect(ct.delete(v6[0]!)).toBe(true);
      expect(ct.list(6).filter((e) => e.orig.proto === IPPROTO.UDP)).toEqual([]);
    } finally {
      ct.close();
    }
  });

  it("the reply cutter deletes, by tuple, only the entry a cut flow's reply re-made", () => {
    const ns = netns();
    ns.exec('nft', [
      'add table inet stt-ct ; add chain inet stt-ct out { type filter hook output priority 0 ; ct state new counter ; }',
    ]);
    // UDP from a fixed port, as a flow and a reply re-made the other way round would be.
    const ct = Conntrack.open({ netns: ns.path });
    try {
      const udp = () => ct.list(4).filter((e) => e.orig.proto === IPPROTO.UDP);
      // nc may leave before its datagram is out on a loaded machine: sent again until the kernel has
      // an entry with that source port.
      const send = (sport: number, dport: number) => {
        for (let i = 0; i < 5; i++) {
          ns.exec('bash', ['-c', `echo hi | nc -u -w0 -p ${sport} 127.0.0.1 ${dport}`]);
          if (udp().some((e) => [e.orig.sport, e.reply.sport].includes(sport))) return;
        }
      };
      send(5101, 5102);
      const cut = udp().find((e) => e.orig.sport === 5101)!;
      expect(ct.delete(cut)).toBe(true);
      send(5102, 5101); // the re-made entry: the cut flow reversed
      send(5102, 5103); // another flow from the same port: left alone
      expect(udp()).toHaveLength(2);
      const open = () => Conntrack.open({ netns: ns.path });
      expect(cutRecreatedReplies({ log: silentLogger, open }, [cut])).toBe(1);
      expect(udp().map((e) => [e.orig.sport, e.orig.dport])).toEqual([[5102, 5103]]);
      // The cut flow made again in its own direction (a later change allowed it): the lookup of its
      // reply tuple finds it the other way round, and it stays.
      send(5101, 5102);
      expect(cutRecreatedReplies({ log: silentLogger, open }, [cut])).toBe(0);
      expect(
        udp()
          .map((e) => [e.orig.sport, e.orig.dport])
          .sort(),
      ).toEqual([
        [5101, 5102],
        [5102, 5103],
      ]);
    } finally {
      ct.close();
    }
  });
});
