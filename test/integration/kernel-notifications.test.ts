// rtnetlink notifications read when asked (src/kernel/notifications.ts) on the real kernel: a look
// reads what changed since the last one and nothing twice; a socket told to ignore a port never
// queues what that port's requests caused (its BPF filter), while everyone else's changes come; an
// overflowed queue and a closed socket make a look incomplete.
import { describe, expect, it } from 'vitest';
import { addRoute } from '../../src/kernel/index.ts';
import { RTM } from '../../src/kernel/netlink-const.ts';
import { NotificationSocket, RTNLGRP } from '../../src/kernel/notifications.ts';
import { kernelFixture } from '../support/kernel-fixture.ts';
import { testName } from '../support/names.ts';
import type { TestNetns } from '../support/netns.ts';
import { sh } from '../support/sh.ts';

const { netns, socketIn } = kernelFixture();

function setUp(receiveBytes?: number): { ns: TestNetns; link: string; watch: NotificationSocket } {
  const ns = netns();
  const link = testName('nl');
  sh('ip', ['-n', ns.name, 'link', 'add', link, 'type', 'veth', 'peer', 'name', testName('np')]);
  sh('ip', ['-n', ns.name, 'link', 'set', link, 'up']);
  const watch = NotificationSocket.open([RTNLGRP.IPV4_ROUTE], {
    netns: ns.path,
    ...(receiveBytes ? { receiveBytes } : {}),
  });
  return { ns, link, watch };
}

function routesSeen(watch: NotificationSocket): { added: number; complete: boolean } {
  let added = 0;
  const complete = watch.drain((m) => {
    if (m.type === RTM.NEWROUTE) added++;
  });
  return { added, complete };
}

describe('NotificationSocket', () => {
  it('reads each change once, and ignores the changes of a port it was told to', () => {
    const { ns, link, watch } = setUp();
    try {
      expect(routesSeen(watch)).toEqual({ added: 0, complete: true });
      sh('ip', ['-n', ns.name, 'route', 'add', '10.91.0.0/24', 'dev', link]);
      expect(routesSeen(watch)).toEqual({ added: 1, complete: true });
      expect(routesSeen(watch)).toEqual({ added: 0, complete: true });

      const own = socketIn(ns);
      expect(watch.ignorePort(own.port)).toBe(true);
      for (let i = 0; i < 50; i++) addRoute(own, { dst: `10.92.${i}.0/24`, oif: link });
      sh('ip', ['-n', ns.name, 'route', 'add', '10.93.0.0/24', 'dev', link]);
      expect(routesSeen(watch)).toEqual({ added: 1, complete: true });
    } finally {
      watch.close();
    }
  });

  it('says a look is incomplete when the queue overflowed, and when the socket is closed', () => {
    const { ns, link, watch } = setUp(4096);
    try {
      const batch = Array.from({ length: 300 }, (_, i) => `route add 10.94.${i >> 8}.${i & 255}/32 dev ${link}`).join(
        '\n',
      );
      sh('ip', ['-n', ns.name, '-batch', '-'], { input: `${batch}\n` });
      const first = routesSeen(watch);
      expect(first.complete).toBe(false);
      expect(first.added).toBeLessThan(300);
      expect(routesSeen(watch)).toEqual({ added: 0, complete: true });
    } finally {
      watch.close();
    }
    expect(watch.drain(() => {})).toBe(false);
  });
});
