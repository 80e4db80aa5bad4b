// Addresses and routes through src/kernel on the real kernel, checked with `ip -j`, inside test
// namespaces removed in afterEach.
import { describe, expect, it } from 'vitest';
import {
  addAddress,
  addLink,
  addRoute,
  deleteAddress,
  deleteRoute,
  getLink,
  isKernelError,
  listAddresses,
  listRoutes,
  NetlinkSocket,
  replaceRoute,
  setLinkUp,
  waitForDad,
} from '../../src/kernel/index.ts';
import { testName } from '../support/names.ts';
import { kernelFixture } from '../support/kernel-fixture.ts';
import { TestNetns } from '../support/netns.ts';
import { ipJson } from '../support/sh.ts';

interface IpAddrInfo {
  family: string;
  local: string;
  prefixlen: number;
  broadcast?: string;
  scope: string;
}

interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  metric?: number;
  protocol?: string;
  scope?: string;
  metrics?: Array<Record<string, number>>;
}

const { netns, socketIn } = kernelFixture();

/** A namespace with a socket in it and one veth end that is up (the other end stays in it too). */
function setup(): { ns: TestNetns; nl: NetlinkSocket; dev: string } {
  const ns = netns();
  const nl = socketIn(ns);
  const dev = testName('eth');
  const peer = testName('vy');
  addLink(nl, { kind: 'veth', name: dev, up: true, peer: { name: peer } });
  setLinkUp(nl, peer);
  return { ns, nl, dev };
}

function ipAddrs(ns: TestNetns, dev: string): IpAddrInfo[] {
  const [link] = ipJson<Array<{ addr_info: IpAddrInfo[] }>>(['addr', 'show', 'dev', dev], ns.name);
  return link?.addr_info ?? [];
}

function errorOf(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected an error');
}

describe('addresses', () => {
  it('adds, lists and deletes IPv4 and IPv6 addresses', () => {
    const { ns, nl, dev } = setup();
    addAddress(nl, dev, '10.244.1.5/24');
    addAddress(nl, dev, 'fd00:1::5/64', { noDad: true });

    const v4 = ipAddrs(ns, dev).find((a) => a.family === 'inet');
    expect(v4).toMatchObject({ local: '10.244.1.5', prefixlen: 24, broadcast: '10.244.1.255', scope: 'global' });
    const v6 = ipAddrs(ns, dev).find((a) => a.family === 'inet6' && a.scope === 'global');
    expect(v6).toMatchObject({ local: 'fd00:1::5', prefixlen: 64 });

    const index = getLink(nl, dev).index;
    const ours = listAddresses(nl, { link: dev }).filter((a) => a.scope === 0);
    expect(ours.map((a) => [a.cidr, a.index, a.tentative])).toEqual([
      ['10.244.1.5/24', index, false],
      ['fd00:1::5/64', index, false],
    ]);
    expect(listAddresses(nl, { family: 4 }).map((a) => a.cidr)).toEqual(['127.0.0.1/8', '10.244.1.5/24']);

    deleteAddress(nl, dev, '10.244.1.5/24');
    deleteAddress(nl, dev, 'fd00:1::5/64');
    expect(ipAddrs(ns, dev).filter((a) => a.scope === 'global')).toEqual([]);
    expect(listAddresses(nl, { link: dev }).filter((a) => a.scope === 0)).toEqual([]);
  });

  it('names the address, link and namespace when the kernel refuses', () => {
    const { ns, nl, dev } = setup();
    addAddress(nl, dev, '10.244.1.5/24');
    const exists = errorOf(() => addAddress(nl, dev, '10.244.1.5/24'));
    expect(exists.code).toBe('EEXIST');
    // Newer kernels add their own reason, "(ipv4: Address already assigned)", after the errno text.
    expect(exists.message).toMatch(
      new RegExp(`^failed to add address 10.244.1.5/24 to ${dev} in ${ns.path}: File exists`),
    );
    // Replace is idempotent: what a crash-safe "ensure address" needs.
    addAddress(nl, dev, '10.244.1.5/24', { replace: true });
    const missing = errorOf(() => deleteAddress(nl, dev, '10.244.9.9/24'));
    expect(missing.code).toBe('EADDRNOTAVAIL');
    expect(missing.message).toMatch(
      new RegExp(`^failed to delete address 10.244.9.9/24 from ${dev} in ${ns.path}: Cannot assign requested address`),
    );
  });

  it('waits for IPv6 duplicate address detection to finish', () => {
    const { nl, dev } = setup();
    addAddress(nl, dev, 'fd00:3::5/64');
    expect(listAddresses(nl, { link: dev, family: 6 }).find((a) => a.cidr === 'fd00:3::5/64')?.tentative).toBe(true);
    waitForDad(nl, dev);
    expect(listAddresses(nl, { link: dev, family: 6 }).find((a) => a.cidr === 'fd00:3::5/64')?.tentative).toBe(false);
  });

  it('adds an address without its prefix route', () => {
    const { ns, nl, dev } = setup();
    addAddress(nl, dev, '10.244.7.5/24', { noPrefixRoute: true });
    expect(ipJson<IpRoute[]>(['route', 'show', 'dev', dev], ns.name)).toEqual([]);
  });
});

describe('routes', () => {
  it('adds a default route via a gateway with metric, MTU and ADVMSS', () => {
    const { ns, nl, dev } = setup();
    addAddress(nl, dev, '10.244.1.5/24');
    addRoute(nl, { dst: 'default', gateway: '10.244.1.1', oif: dev, metric: 100, mtu: 1400, advmss: 1360 });
    const def = ipJson<IpRoute[]>(['route', 'show', 'default'], ns.name);
    expect(def).toEqual([
      expect.objectContaining({
        dst: 'default',
        gateway: '10.244.1.1',
        dev,
        metric: 100,
        metrics: [{ mtu: 1400, advmss: 1360 }],
      }),
    ]);

    const ours = listRoutes(nl, { family: 4 }).find((r) => r.dst === '0.0.0.0/0');
    expect(ours).toMatchObject({
      gateway: '10.244.1.1',
      oif: getLink(nl, dev).index,
      metric: 100,
      mtu: 1400,
      advmss: 1360,
      table: 254,
    });

    const dup = errorOf(() => addRoute(nl, { dst: 'default', gateway: '10.244.1.1', metric: 100 }));
    expect(dup.code).toBe('EEXIST');
    expect(dup.message).toBe(`failed to add route default via 10.244.1.1 metric 100 in ${ns.path}: File exists`);

    deleteRoute(nl, { dst: 'default', gateway: '10.244.1.1' });
    expect(ipJson<IpRoute[]>(['route', 'show', 'default'], ns.name)).toEqual([]);
    const gone = errorOf(() => deleteRoute(nl, { dst: 'default' }));
    expect(gone.code).toBe('ESRCH');
  });

  it('adds IPv6 routes, a default one included', () => {
    const { ns, nl, dev } = setup();
    addAddress(nl, dev, 'fd00:1::5/64', { noDad: true });
    addRoute(nl, { dst: 'default', gateway: 'fd00:1::1', oif: dev, metric: 50 });
    addRoute(nl, { dst: 'fd00:2::/64', gateway: 'fd00:1::2', mtu: 1400 });
    const routes = ipJson<IpRoute[]>(['-6', 'route', 'show'], ns.name);
    expect(routes).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ dst: 'default', gateway: 'fd00:1::1', dev, metric: 50 }),
        expect.objectContaining({ dst: 'fd00:2::/64', gateway: 'fd00:1::2', dev, metrics: [{ mtu: 1400 }] }),
      ]),
    );
    const ours = listRoutes(nl, { family: 6 });
    expect(ours.find((r) => r.dst === '::/0')).toMatchObject({ gateway: 'fd00:1::1', metric: 50 });
    expect(ours.find((r) => r.dst === 'fd00:2::/64')).toMatchObject({ gateway: 'fd00:1::2', mtu: 1400 });
    deleteRoute(nl, { dst: 'fd00:2::/64' });
    expect(listRoutes(nl, { family: 6 }).some((r) => r.dst === 'fd00:2::/64')).toBe(false);
  });

  it('adds a directly connected route with link scope, in another table, and replaces it', () => {
    const { ns, nl, dev } = setup();
    addAddress(nl, dev, '10.244.1.5/24');
    addRoute(nl, { dst: '10.96.0.0/16', oif: dev, table: 100 });
    expect(ipJson<IpRoute[]>(['route', 'show', 'table', '100'], ns.name)).toEqual([
      expect.objectContaining({ dst: '10.96.0.0/16', dev, scope: 'link' }),
    ]);
    expect(listRoutes(nl).some((r) => r.dst === '10.96.0.0/16')).toBe(false);
    expect(listRoutes(nl, { table: 100 }).map((r) => r.dst)).toEqual(['10.96.0.0/16']);

    replaceRoute(nl, { dst: '10.96.0.0/16', gateway: '10.244.1.1', table: 100 });
    expect(ipJson<IpRoute[]>(['route', 'show', 'table', '100'], ns.name)).toEqual([
      expect.objectContaining({ dst: '10.96.0.0/16', gateway: '10.244.1.1' }),
    ]);
    deleteRoute(nl, { dst: '10.96.0.0/16', table: 100 });
    expect(ipJson<IpRoute[]>(['route', 'show', 'table', '100'], ns.name)).toEqual([]);
  });

  it("carries the kernel's extended ack reason into the error", () => {
    const { ns, nl, dev } = setup();
    addAddress(nl, dev, '10.244.1.5/24');
    const e = errorOf(() => addRoute(nl, { dst: '10.50.0.0/16', gateway: '192.0.2.1', oif: dev }));
    expect(isKernelError(e, 'ENETUNREACH')).toBe(true);
    expect(e.message).toBe(
      `failed to add route 10.50.0.0/16 via 192.0.2.1 dev ${dev} in ${ns.path}: Network is unreachable (Nexthop has invalid gateway)`,
    );
    // onlink: the gateway is taken as reachable on the device, as cross-subnet pod gateways need.
    addRoute(nl, { dst: '10.50.0.0/16', gateway: '192.0.2.1', oif: dev, onlink: true });
    expect(ipJson<IpRoute[]>(['route', 'show', '10.50.0.0/16'], ns.name)).toEqual([
      expect.objectContaining({ gateway: '192.0.2.1', dev }),
    ]);
  });
});
