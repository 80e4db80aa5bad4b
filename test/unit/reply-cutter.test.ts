// The flow cutter's second look: after a denied flow's entry is deleted, a reply in flight re-makes
// the flow in the other direction; only that exact reverse tuple is deleted, never another flow.
import { describe, expect, it } from 'vitest';
import { sameTuple, type ConntrackEntry, type ConntrackTuple } from '../../src/kernel/conntrack.ts';
import { cutRecreatedReplies } from '../../src/agent/policy/reply-cutter.ts';
import { silentLogger } from '../../src/log.ts';

const TCP = 6;
const entry = (src: string, sport: number, dst: string, dport: number, replySrc = dst): ConntrackEntry => ({
  family: 4,
  orig: { src, dst, proto: TCP, sport, dport },
  reply: { src: replySrc, dst: src, proto: TCP, sport: dport, dport: sport },
});

function fakeTable(entries: ConntrackEntry[]) {
  const table = [...entries];
  let closed = 0;
  let looked = 0;
  return {
    table,
    closed: () => closed,
    looked: () => looked,
    open: () => ({
      // As the kernel's hash lookup: an entry is found by either of its tuples.
      get: (family: 4 | 6, t: ConntrackTuple) => {
        looked++;
        return table.find((e) => e.family === family && (sameTuple(e.orig, t) || sameTuple(e.reply, t)));
      },
      delete: (e: ConntrackEntry) => {
        const i = table.indexOf(e);
        if (i >= 0) table.splice(i, 1);
        return i >= 0;
      },
      close: () => void closed++,
    }),
  };
}

describe('cutRecreatedReplies', () => {
  it('deletes the entry a reply in flight re-made (the cut flow reversed) and nothing else', () => {
    // y/a (10.0.1.5:40000) → x/a (10.0.2.7:81) was cut; x/a's reply after the cut made x/a → y/a.
    const cut = entry('10.0.1.5', 40000, '10.0.2.7', 81);
    const remade = entry('10.0.2.7', 81, '10.0.1.5', 40000);
    const otherPortOfPeer = entry('10.0.2.7', 81, '10.0.1.5', 40001);
    const podsOwnFlow = entry('10.0.2.7', 50000, '10.0.1.5', 81);
    const fake = fakeTable([remade, otherPortOfPeer, podsOwnFlow]);
    let counted = 0;
    const n = cutRecreatedReplies({ log: silentLogger, open: fake.open, onDeleted: (k) => (counted += k) }, [cut]);
    expect(n).toBe(1);
    expect(counted).toBe(1);
    expect(fake.table).toEqual([otherPortOfPeer, podsOwnFlow]);
    expect(fake.closed()).toBe(1);
  });

  it('looks up each reverse tuple once and leaves an entry found the other way round (an allowed flow made again)', () => {
    const cut = entry('10.0.1.5', 40000, '10.0.2.7', 81);
    // The cut flow's own tuple again (a later change allowed it): its reply tuple is the one looked up.
    const again = entry('10.0.1.5', 40000, '10.0.2.7', 81);
    const fake = fakeTable([again]);
    expect(cutRecreatedReplies({ log: silentLogger, open: fake.open }, [cut, cut])).toBe(0);
    expect(fake.table).toEqual([again]);
    expect(fake.looked()).toBe(1);
  });

  it('follows a Service: the reverse of a DNATed flow starts at the real destination', () => {
    // y/a → 10.96.0.10:80 (a Service) landed on x/a 10.0.2.7:8080; the reply re-made starts there.
    const cut = entry('10.0.1.5', 40000, '10.96.0.10', 80, '10.0.2.7');
    cut.reply.sport = 8080;
    const remade = entry('10.0.2.7', 8080, '10.0.1.5', 40000);
    const fake = fakeTable([remade]);
    expect(cutRecreatedReplies({ log: silentLogger, open: fake.open }, [cut])).toBe(1);
    expect(fake.table).toEqual([]);
  });

  it('opens nothing when nothing was cut, and survives a conntrack socket that fails', () => {
    let opened = 0;
    expect(
      cutRecreatedReplies(
        {
          log: silentLogger,
          open: () => {
            opened++;
            throw new Error('no ctnetlink');
          },
        },
        [],
      ),
    ).toBe(0);
    expect(opened).toBe(0);
    let errors = 0;
    const n = cutRecreatedReplies(
      {
        log: silentLogger,
        onError: () => errors++,
        open: () => {
          throw new Error('no ctnetlink');
        },
      },
      [entry('10.0.1.5', 40000, '10.0.2.7', 81)],
    );
    expect(n).toBe(0);
    expect(errors).toBe(1);
  });
});
