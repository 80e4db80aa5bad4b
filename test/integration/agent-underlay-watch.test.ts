// The node-set-up step's underlay watch (src/agent/steps/underlay-watch.ts) on the real kernel: the
// rtnetlink notifications that can move the underlay (its link, its addresses, a default route) make
// moved() true; a look with nothing new, and another link's changes (a pod's veth), do not.
import { afterEach, describe, expect, it } from 'vitest';
import { findLink } from '../../src/kernel/index.ts';
import { UnderlayWatch } from '../../src/agent/steps/underlay-watch.ts';
import { kernelFixture } from '../support/kernel-fixture.ts';
import { testName } from '../support/names.ts';
import type { TestNetns } from '../support/netns.ts';
import { sh } from '../support/sh.ts';

const { netns, socketIn } = kernelFixture();
const watches: UnderlayWatch[] = [];
afterEach(() => {
  for (const w of watches.splice(0)) w.close();
});

const ip = (ns: TestNetns, ...args: string[]) => sh('ip', ['-n', ns.name, ...args]);

/** A namespace with an "underlay" veth (address, default route) and another veth pair beside it. */
function node(): { ns: TestNetns; underlay: string; other: string; index: number; watch: UnderlayWatch } {
  const ns = netns();
  const underlay = testName('ul');
  const other = testName('pv');
  ip(ns, 'link', 'add', underlay, 'type', 'veth', 'peer', 'name', testName('up'));
  ip(ns, 'link', 'add', other, 'type', 'veth', 'peer', 'name', testName('pp'));
  ip(ns, 'addr', 'add', '198.18.0.2/24', 'dev', underlay);
  ip(ns, 'link', 'set', underlay, 'up');
  ip(ns, 'route', 'add', 'default', 'via', '198.18.0.1', 'dev', underlay);
  const index = findLink(socketIn(ns), underlay)?.index;
  if (index === undefined) throw new Error(`no ${underlay} in ${ns.name}`);
  const watch = UnderlayWatch.open(ns.path);
  watches.push(watch);
  return { ns, underlay, other, index, watch };
}

describe('UnderlayWatch', () => {
  it('answers false while nothing changed, also after another link changed', () => {
    const n = node();
    expect(n.watch.moved(n.index)).toBe(false);
    ip(n.ns, 'link', 'set', n.other, 'mtu', '1300');
    ip(n.ns, 'link', 'set', n.other, 'up');
    ip(n.ns, 'addr', 'add', '10.244.0.1/24', 'dev', n.other);
    // A route that is not a default route (a peer's, under host-gw).
    ip(n.ns, 'route', 'add', '10.244.9.0/24', 'via', '198.18.0.9', 'dev', n.underlay);
    expect(n.watch.moved(n.index)).toBe(false);
    expect(n.watch.moved(n.index)).toBe(false);
  });

  it("answers true once after the underlay's address, MTU or default route changed", () => {
    const n = node();
    for (const change of [
      () => ip(n.ns, 'addr', 'add', '198.18.0.3/24', 'dev', n.underlay),
      () => ip(n.ns, 'addr', 'del', '198.18.0.3/24', 'dev', n.underlay),
      () => ip(n.ns, 'link', 'set', n.underlay, 'mtu', '1400'),
      () => ip(n.ns, 'route', 'replace', 'default', 'via', '198.18.0.5', 'dev', n.underlay, 'metric', '10'),
      () => ip(n.ns, 'link', 'del', n.underlay),
    ]) {
      expect(n.watch.moved(n.index)).toBe(false);
      change();
      expect(n.watch.moved(n.index), String(change)).toBe(true);
    }
    expect(n.watch.moved(n.index)).toBe(false);
  });

  it('answers true after it is closed (the caller then reads the underlay itself)', () => {
    const n = node();
    n.watch.close();
    expect(n.watch.moved(n.index)).toBe(true);
  });
});
