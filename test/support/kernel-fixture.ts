// Test namespaces with a netlink socket opened inside, closed and removed after each test, pass or
// fail (the kernel tests' common set-up).
import { afterEach } from 'vitest';
import { NetlinkSocket } from '../../src/kernel/index.ts';
import { TestNetns } from './netns.ts';

/** Registers the teardown in the calling test file; returns the makers. */
export function kernelFixture(): { netns: () => TestNetns; socketIn: (ns: TestNetns) => NetlinkSocket } {
  const namespaces: TestNetns[] = [];
  const sockets: NetlinkSocket[] = [];
  afterEach(() => {
    for (const s of sockets.splice(0)) s.close();
    for (const ns of namespaces.splice(0)) ns.destroy();
  });
  return {
    netns() {
      const ns = TestNetns.create();
      namespaces.push(ns);
      return ns;
    },
    socketIn(ns) {
      const nl = NetlinkSocket.open({ netns: ns.path });
      sockets.push(nl);
      return nl;
    },
  };
}
