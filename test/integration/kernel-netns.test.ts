// Namespace switching, sysctls and a real packet across a veth pair configured only through
// src/kernel, on the real kernel. Also prints what in-process netlink costs here.
import { closeSync, openSync, statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  addAddress,
  addLink,
  addRoute,
  assertNetns,
  CURRENT_NETNS,
  deleteLink,
  isCurrentNetns,
  isKernelError,
  isNetns,
  isNetnsFd,
  KernelError,
  listLinks,
  onNsfs,
  readSysctl,
  sameNetns,
  setLinkUp,
  withNetns,
  writeSysctl,
  writeSysctls,
} from '../../src/kernel/index.ts';
import { testName } from '../support/names.ts';
import { kernelFixture } from '../support/kernel-fixture.ts';
import { TestNetns } from '../support/netns.ts';
import { ipJson } from '../support/sh.ts';

const { netns, socketIn } = kernelFixture();

/** The calling thread's namespace, as (dev, inode) of its nsfs file. */
function currentNs(): string {
  const st = statSync(CURRENT_NETNS);
  return `${st.dev}:${st.ino}`;
}

describe('withNetns', () => {
  it('runs the callback inside the namespace and switches back', () => {
    const ns = netns();
    const before = currentNs();
    const inside = withNetns(ns.path, () => ({ current: isCurrentNetns(ns.path), ino: currentNs() }));
    expect(inside.current).toBe(true);
    expect(inside.ino).not.toBe(before);
    expect(currentNs()).toBe(before);
    expect(isCurrentNetns(ns.path)).toBe(false);
  });

  it('switches back when the callback throws, and rethrows its error', () => {
    const ns = netns();
    const before = currentNs();
    expect(() =>
      withNetns(ns.path, () => {
        throw new Error('boom inside');
      }),
    ).toThrow('boom inside');
    expect(currentNs()).toBe(before);
  });

  it('nests: each level returns to the namespace it started from', () => {
    const a = netns();
    const b = netns();
    const before = currentNs();
    withNetns(a.path, () => {
      expect(isCurrentNetns(a.path)).toBe(true);
      withNetns(b.path, () => expect(isCurrentNetns(b.path)).toBe(true));
      expect(isCurrentNetns(a.path)).toBe(true);
    });
    expect(currentNs()).toBe(before);
  });

  it('refuses an async callback, after switching back', () => {
    const ns = netns();
    const before = currentNs();
    // @ts-expect-error: the type already rules a promise out
    expect(() => withNetns(ns.path, async () => 1)).toThrow(/synchronous callbacks only/);
    expect(currentNs()).toBe(before);
  });

  it('names a namespace path that does not exist', () => {
    const missing = `/run/netns/${testName('none')}`;
    const before = currentNs();
    let err: unknown;
    try {
      withNetns(missing, () => 1);
    } catch (e) {
      err = e;
    }
    expect(isKernelError(err, 'ENOENT')).toBe(true);
    expect((err as KernelError).message).toBe(`failed to open network namespace ${missing}: No such file or directory`);
    expect(currentNs()).toBe(before);
  });

  it('reports a namespace file of another kind with the errno setns gives', () => {
    const before = currentNs();
    expect(() => withNetns('/proc/self/ns/mnt', () => 1)).toThrow(
      'failed to enter network namespace /proc/self/ns/mnt: Invalid argument',
    );
    expect(currentNs()).toBe(before);
  });

  it('binds a socket opened inside to that namespace for good', () => {
    const ns = netns();
    const nl = socketIn(ns);
    const x = testName('vx');
    const y = testName('vy');
    addLink(nl, { kind: 'veth', name: x, peer: { name: y } });
    // Used from the original namespace, the socket still sees (only) the test namespace's links.
    expect(
      listLinks(nl)
        .map((l) => l.name)
        .sort(),
    ).toEqual(['lo', x, y].sort());
    expect(
      ipJson<Array<{ ifname: string }>>(['link', 'show'], ns.name)
        .map((l) => l.ifname)
        .sort(),
    ).toEqual(['lo', x, y].sort());
  });
});

describe('namespace checks', () => {
  it('tells network namespaces from other files', () => {
    const ns = netns();
    expect(isNetns(ns.path)).toBe(true);
    expect(isNetns('/proc/self/ns/net')).toBe(true);
    expect(isNetns('/proc/self/ns/mnt')).toBe(false); // a namespace, but not a network one
    expect(isNetns('/etc/hostname')).toBe(false);
    expect(isNetns(`/run/netns/${testName('none')}`)).toBe(false);
    expect(() => assertNetns(ns.path)).not.toThrow();
    expect(() => assertNetns('/proc/self/ns/mnt')).toThrow(/not one/);
    expect(() => assertNetns('/nonexistent/netns')).toThrow(/No such file or directory/);
  });

  it('checks a namespace file already open (what DEL holds), and nsfs by path', () => {
    const ns = netns();
    const judge = (path: string) => {
      const fd = openSync(path, 'r');
      try {
        return isNetnsFd(fd);
      } finally {
        closeSync(fd);
      }
    };
    expect(judge(ns.path)).toBe(true);
    expect(judge('/proc/self/ns/mnt')).toBe(false);
    expect(judge('/etc/hostname')).toBe(false);
    expect(onNsfs(ns.path)).toBe(true);
    expect(onNsfs('/proc/self/ns/mnt')).toBe(true);
    expect(onNsfs('/etc/hostname')).toBe(false);
    expect(onNsfs(`/run/netns/${testName('none')}`)).toBe(false);
  });

  it("recognises the caller's own namespace, which CNI_NETNS must not be", () => {
    const ns = netns();
    expect(isCurrentNetns('/proc/self/ns/net')).toBe(true);
    expect(isCurrentNetns(ns.path)).toBe(false);
    expect(sameNetns(ns.path, ns.path)).toBe(true);
    expect(sameNetns(ns.path, '/proc/self/ns/net')).toBe(false);
  });
});

describe('sysctls', () => {
  it('writes inside a namespace without touching the host value', () => {
    const ns = netns();
    const hostBefore = readSysctl('net.ipv4.ip_forward');
    const wanted = hostBefore === '1' ? '0' : '1';
    writeSysctl('net.ipv4.ip_forward', wanted, { netns: ns.path });
    expect(readSysctl('net.ipv4.ip_forward', { netns: ns.path })).toBe(wanted);
    expect(ns.exec('cat', ['/proc/sys/net/ipv4/ip_forward']).trim()).toBe(wanted);
    expect(readSysctl('net.ipv4.ip_forward')).toBe(hostBefore);
  });

  it('sets per-interface sysctls of a pod interface, several in one switch', () => {
    const ns = netns();
    const nl = socketIn(ns);
    const dev = testName('eth');
    addLink(nl, { kind: 'veth', name: dev, peer: { name: testName('vy') } });
    writeSysctls({ [`net/ipv4/conf/${dev}/arp_notify`]: 1, [`net/ipv6/conf/${dev}/accept_ra`]: 0 }, { netns: ns.path });
    expect(readSysctl(`net/ipv4/conf/${dev}/arp_notify`, { netns: ns.path })).toBe('1');
    expect(readSysctl(`net/ipv6/conf/${dev}/accept_ra`, { netns: ns.path })).toBe('0');
    // The interface exists only in the namespace, so the host has no such file.
    expect(() => readSysctl(`net/ipv4/conf/${dev}/arp_notify`)).toThrow(
      new RegExp(`failed to read sysctl net.ipv4.conf.${dev}.arp_notify: No such file`),
    );
  });

  it('names the key and namespace when a write fails', () => {
    const ns = netns();
    expect(() => writeSysctl('net.ipv4.no_such_setting', 1, { netns: ns.path })).toThrow(
      `failed to write sysctl net.ipv4.no_such_setting=1 in ${ns.path}: No such file or directory`,
    );
  });
});

describe('a packet across a veth pair configured in process', () => {
  it('pings from one namespace to the other over IPv4 and IPv6', () => {
    const a = netns();
    const b = netns();
    const nlA = socketIn(a);
    const nlB = socketIn(b);
    const ifA = testName('eth');
    const ifB = testName('eth');
    addLink(nlA, { kind: 'veth', name: ifA, mtu: 1450, up: true, peer: { name: ifB, netns: b.path, mtu: 1450 } });
    setLinkUp(nlB, ifB);
    addAddress(nlA, ifA, '10.244.1.1/24');
    addAddress(nlB, ifB, '10.244.1.2/24');
    addAddress(nlA, ifA, 'fd00:1::1/64', { noDad: true });
    addAddress(nlB, ifB, 'fd00:1::2/64', { noDad: true });
    // A route off-link via the peer, the way a pod's default route points at its gateway.
    addAddress(nlB, 'lo', '10.250.0.2/32');
    addRoute(nlA, { dst: '10.250.0.0/24', gateway: '10.244.1.2', oif: ifA });

    const ping = (ns: TestNetns, args: string[]) => ns.tryExec('ping', ['-c', '1', '-W', '2', ...args]);
    expect(ping(a, ['10.244.1.2']).status).toBe(0);
    expect(ping(b, ['10.244.1.1']).status).toBe(0);
    expect(ping(a, ['-6', 'fd00:1::2']).status).toBe(0);
    expect(ping(a, ['10.250.0.2']).status).toBe(0);
    // And nothing reaches an address nobody has.
    expect(ping(a, ['-W', '1', '10.244.1.3']).status).not.toBe(0);
  });
});

describe('cost', () => {
  it('creates and deletes veth pairs across namespaces in well under a millisecond each', () => {
    const host = netns();
    const pod = netns();
    const t0 = performance.now();
    const nl = socketIn(host);
    const openMs = performance.now() - t0;
    const n = 50;
    const names = Array.from({ length: n }, () => [testName('veth'), testName('eth')] as const);
    const t1 = performance.now();
    for (const [hostVeth, podIf] of names)
      addLink(nl, { kind: 'veth', name: hostVeth, up: true, peer: { name: podIf, netns: pod.path } });
    const addMs = (performance.now() - t1) / n;
    const t2 = performance.now();
    for (const [hostVeth] of names) deleteLink(nl, hostVeth);
    const delMs = (performance.now() - t2) / n;
    const t3 = performance.now();
    for (let i = 0; i < n; i++) withNetns(pod.path, () => undefined);
    const switchMs = (performance.now() - t3) / n;
    // Deleting is slow in the kernel itself (unregister_netdevice waits for RCU grace periods):
    // `ip link del` takes as long less its process start.
    console.log(
      `kernel cost: socket open in a netns ${openMs.toFixed(3)} ms; veth pair (peer in another netns, up) add ${addMs.toFixed(3)} ms, delete ${delMs.toFixed(3)} ms; withNetns round trip ${switchMs.toFixed(3)} ms`,
    );
    // The figures are printed, not asserted: speed is measured in bench/, never in timed tests.
    expect(ipJson<unknown[]>(['link', 'show'], pod.name)).toHaveLength(1);
  });
});
