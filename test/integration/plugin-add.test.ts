// dist/strand ADD run as a process against the real kernel, as a runtime runs it: pods on the bridge
// reach each other and their gateway (IPv4, IPv6, dual-stack), the result says what the kernel
// holds, and 20 ADDs from separate processes at once share one bridge and one gateway address.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CniOutcome } from '../support/cni.ts';
import type { TestNetns } from '../support/netns.ts';
import { getLink, NetlinkSocket } from '../../src/kernel/index.ts';
import { writeNodeState } from '../../src/contracts/node-state.ts';
import {
  nthAddress4,
  nthAddress6,
  ping,
  PluginFixture,
  randomSubnet4,
  randomSubnet6,
  sh,
} from '../support/plugin-fixture.ts';

let f: PluginFixture;
beforeEach(() => {
  f = new PluginFixture();
});
afterEach(() => f.teardown());

function expectOk(r: CniOutcome): void {
  expect(r.code, r.stdout + r.stderr).toBe(0);
}

function expectPing(from: TestNetns, to: string): void {
  const p = ping(from, to);
  expect(p.status, `ping ${to} from ${from.name}: ${p.output}`).toBe(0);
}

/** The result's three interfaces against the links the kernel holds, for an attachment on eth0. */
function expectInterfacesMatchKernel(r: CniOutcome, pod: TestNetns, containerId: string): void {
  const bridge = f.link(f.bridge);
  const hostVeth = f.link(f.hostVeth(containerId));
  const podLink = f.link('eth0', pod.name);
  expect(bridge?.linkinfo?.info_kind).toBe('bridge');
  expect(hostVeth?.linkinfo?.info_kind).toBe('veth');
  expect(podLink?.linkinfo?.info_kind).toBe('veth');
  expect(r.json.interfaces).toEqual([
    { name: f.bridge, mac: bridge?.address },
    { name: f.hostVeth(containerId), mac: hostVeth?.address, mtu: hostVeth?.mtu },
    { name: 'eth0', mac: podLink?.address, mtu: podLink?.mtu, sandbox: pod.path },
  ]);
  // The two ends are each other's peer, the host end is a bridge port with hairpin, both are up.
  expect(podLink?.link_index).toBe(hostVeth?.ifindex);
  expect(hostVeth?.link_index).toBe(podLink?.ifindex);
  expect(hostVeth?.master).toBe(f.bridge);
  expect(hostVeth?.linkinfo?.info_slave_kind).toBe('bridge');
  expect(hostVeth?.linkinfo?.info_slave_data?.hairpin).toBe(true);
  expect(hostVeth?.flags).toContain('UP');
  expect(podLink?.flags).toContain('UP');
  expect(bridge?.flags).toContain('UP');
}

describe('strand ADD, IPv4', () => {
  it('two pods ping each other and the gateway, and the results say what the kernel holds', () => {
    const subnet = randomSubnet4();
    const gw = nthAddress4(subnet, 1);
    const conf = f.v4Config(subnet);
    const pods = [f.pod(), f.pod()];
    const ids = [f.containerId(), f.containerId()];
    const results = pods.map((pod, i) => f.add(conf, pod, ids[i] as string));

    results.forEach((r, i) => {
      const pod = pods[i] as TestNetns;
      expectOk(r);
      expect(r.json.cniVersion).toBe('1.1.0');
      expectInterfacesMatchKernel(r, pod, ids[i] as string);

      // Round robin from the start of the range: .2 then .3; the gateway is .1.
      const address = nthAddress4(subnet, 2 + i);
      expect(r.json.ips).toEqual([{ address: `${address}/24`, gateway: gw, interface: 2 }]);
      expect(f.addresses('eth0', pod.name).filter((a) => a.family === 'inet')).toMatchObject([
        { local: address, prefixlen: 24, scope: 'global' },
      ]);

      expect(r.json.routes).toEqual([{ dst: '0.0.0.0/0', gw }]);
      const routes = f.routes(pod.name);
      expect(routes).toContainEqual(expect.objectContaining({ dst: 'default', gateway: gw, dev: 'eth0' }));
      expect(routes).toContainEqual(expect.objectContaining({ dst: subnet, dev: 'eth0' }));
      expect(routes).toHaveLength(2);
    });

    // One bridge with one gateway address, both pods' host ends on it; its MAC did not follow a port.
    expect(f.addresses(f.bridge).filter((a) => a.family === 'inet')).toMatchObject([{ local: gw, prefixlen: 24 }]);
    expect(
      f
        .bridgePorts()
        .map((l) => l.ifname)
        .sort(),
    ).toEqual(ids.map((id) => f.hostVeth(id)).sort());
    expect(results[0]?.json.interfaces[0].mac).toBe(f.link(f.bridge)?.address);

    const [a, b] = pods as [TestNetns, TestNetns];
    expectPing(a, nthAddress4(subnet, 3));
    expectPing(b, nthAddress4(subnet, 2));
    expectPing(a, gw);
    expectPing(b, gw);
  });

  it('20 ADDs from separate processes at once: all succeed with distinct addresses on one bridge with one gateway address', async () => {
    const subnet = randomSubnet4();
    const conf = f.v4Config(subnet);
    const pods = Array.from({ length: 20 }, () => f.pod());
    const ids = pods.map(() => f.containerId());
    const results = await Promise.all(
      pods.map((pod, i) =>
        f.runAsync({ command: 'ADD', config: conf, netns: pod.path, containerId: ids[i], ifname: 'eth0' }),
      ),
    );
    for (const r of results) expectOk(r);

    const addresses = results.map((r) => r.json.ips[0].address as string);
    expect(new Set(addresses).size).toBe(20);
    expect(f.reservedAddresses()).toEqual(addresses.map((a) => a.split('/')[0]).sort());

    const bridges = f.links().filter((l) => l.ifname === f.bridge);
    expect(bridges).toHaveLength(1);
    expect(bridges[0]?.linkinfo?.info_kind).toBe('bridge');
    expect(f.addresses(f.bridge).filter((a) => a.family === 'inet')).toMatchObject([
      { local: nthAddress4(subnet, 1), prefixlen: 24 },
    ]);
    // Every result names the same bridge MAC, the one the kernel has.
    expect(new Set(results.map((r) => r.json.interfaces[0].mac))).toEqual(new Set([f.link(f.bridge)?.address]));
    expect(
      f
        .bridgePorts()
        .map((l) => l.ifname)
        .sort(),
    ).toEqual(ids.map((id) => f.hostVeth(id)).sort());

    // Each pod holds the address its result names.
    pods.forEach((pod, i) => {
      const [address] = addresses[i]?.split('/') ?? [];
      expect(
        f
          .addresses('eth0', pod.name)
          .filter((a) => a.family === 'inet')
          .map((a) => a.local),
      ).toEqual([address]);
    });
    // A pod from the last and from the first ADD to finish reach each other.
    const first = pods[0] as TestNetns;
    expectPing(first, (addresses[19] as string).split('/')[0] as string);
  });
});

describe('strand ADD with options', () => {
  it('mtu goes on the bridge and both veth ends; IPAM routes without a gw go via the gateway', () => {
    const subnet = randomSubnet4();
    const gw = nthAddress4(subnet, 1);
    const conf = f.config(
      { subnet, routes: [{ dst: '10.0.0.0/8' }, { dst: '198.18.0.0/15', gw: nthAddress4(subnet, 9) }] },
      { isDefaultGateway: false, mtu: 1400 },
    );
    const pod = f.pod();
    const id = f.containerId();
    const r = f.add(conf, pod, id);
    expectOk(r);
    expectInterfacesMatchKernel(r, pod, id);
    expect(r.json.interfaces.slice(1).map((i: { mtu: number }) => i.mtu)).toEqual([1400, 1400]);
    expect(f.link(f.bridge)?.mtu).toBe(1400);
    expect(r.json.routes).toEqual([{ dst: '10.0.0.0/8' }, { dst: '198.18.0.0/15', gw: nthAddress4(subnet, 9) }]);
    const routes = f.routes(pod.name);
    expect(routes).toContainEqual(expect.objectContaining({ dst: '10.0.0.0/8', gateway: gw }));
    expect(routes).toContainEqual(expect.objectContaining({ dst: '198.18.0.0/15', gateway: nthAddress4(subnet, 9) }));
    expect(routes.find((x) => x.dst === 'default')).toBeUndefined();
    const checked = f.check(conf, r.json, pod, id);
    expect(checked.code, checked.stdout).toBe(0);
    expectPing(pod, gw);
  });
});

describe('strand ADD with BIG TCP in the node state', () => {
  it('creates both veth ends with the GSO/GRO sizes the agent wrote and sets the bridge; without them the kernel default stays', () => {
    const subnet = randomSubnet4();
    const big = { gsoMaxSize: 196608, groMaxSize: 196608, gsoIpv4MaxSize: 196608, groIpv4MaxSize: 196608 };
    writeNodeState(f.stateDir, {
      version: 1,
      nodeName: 'n1',
      podCIDRs: [subnet],
      clusterCIDRs: [],
      mtu: 1500,
      podOffload: big,
      backend: 'host-gw',
      updatedAt: new Date().toISOString(),
    });
    const conf = f.v4Config(subnet);
    const [a, b] = [f.pod(), f.pod()];
    const [ida, idb] = [f.containerId(), f.containerId()];
    expectOk(f.add(conf, a, ida));
    const rb = f.add(conf, b, idb);
    expectOk(rb);
    for (const [name, netns] of [
      [f.hostVeth(ida), undefined],
      ['eth0', a.name],
      [f.hostVeth(idb), undefined],
      ['eth0', b.name],
      [f.bridge, undefined],
    ] as const) {
      expect(f.link(name, netns), `${name} ${netns ?? ''}`).toMatchObject({
        gso_max_size: 196608,
        gro_max_size: 196608,
      });
    }
    // The IPv4 sizes (iproute2 6.1 does not print them) through the decoder.
    const nl = NetlinkSocket.open({ netns: a.path });
    try {
      expect(getLink(nl, 'eth0').offload).toEqual(big);
    } finally {
      nl.close();
    }
    // A large transfer between the two pods works through the bridge at these sizes.
    const to = (rb.json.ips[0].address as string).split('/')[0] as string;
    const got = sh('ip', [
      'netns',
      'exec',
      b.name,
      'sh',
      '-c',
      `timeout 20 nc -l -p 5301 | wc -c & sleep 0.3; ip netns exec ${a.name} sh -c "head -c 20000000 /dev/zero | timeout 15 nc -N ${to} 5301"; wait`,
    ]);
    expect(got.trim()).toBe('20000000');

    // The node state without them: a new pod keeps the kernel's 64 KiB.
    writeNodeState(f.stateDir, {
      version: 1,
      nodeName: 'n1',
      podCIDRs: [subnet],
      clusterCIDRs: [],
      mtu: 1500,
      backend: 'host-gw',
      updatedAt: new Date().toISOString(),
    });
    const c = f.pod();
    const idc = f.containerId();
    expectOk(f.add(conf, c, idc));
    expect(f.link('eth0', c.name)).toMatchObject({ gso_max_size: 65536, gro_max_size: 65536 });
  });
});

describe('strand ADD on a bridge made beforehand', () => {
  it("pins the MAC of a bridge it did not create, so the result, CHECK and the pods' gateway MAC stay right as ports come and go", () => {
    // A bridge made by hand (no MAC given) takes its lowest port's MAC as ports come and go. The
    // pods' own MACs come from CNI_ARGS, as a runtime passes them.
    sh('ip', ['link', 'add', f.bridge, 'type', 'bridge']);
    sh('ip', ['link', 'set', f.bridge, 'up']);
    const subnet = randomSubnet4();
    const pods = [f.pod(), f.pod()];
    const ids = [f.containerId(), f.containerId()];
    const macs = ['02:00:00:00:00:01', 'fe:ff:ff:ff:ff:fe'];
    const results = pods.map((pod, i) =>
      f.add(f.v4Config(subnet), pod, ids[i] as string, 'eth0', { args: `IgnoreUnknown=1;MAC=${macs[i]}` }),
    );
    results.forEach((r, i) => {
      expectOk(r);
      expectInterfacesMatchKernel(r, pods[i] as TestNetns, ids[i] as string);
      expect(r.json.interfaces[2].mac).toBe(macs[i]);
    });
    const mac = f.link(f.bridge)?.address;
    expect(results.map((r) => r.json.interfaces[0].mac)).toEqual([mac, mac]);
    // The first pod goes; the bridge keeps its MAC, and the second pod's CHECK still passes.
    expect(f.del(f.v4Config(subnet), pods[0] as TestNetns, ids[0] as string).code).toBe(0);
    expect(f.link(f.bridge)?.address).toBe(mac);
    const checked = f.check(f.v4Config(subnet), results[1]?.json, pods[1] as TestNetns, ids[1] as string);
    expect(checked.code, checked.stdout).toBe(0);
    expectPing(pods[1] as TestNetns, nthAddress4(subnet, 1));
  });
});

describe('strand ADD, IPv6 and dual-stack', () => {
  it('IPv6: two pods ping6 each other and the gateway, with a default route ::/0 via the gateway', () => {
    const subnet = randomSubnet6();
    const gw = nthAddress6(subnet, 1);
    const conf = f.config({ ranges: [[{ subnet }]] });
    const pods = [f.pod(), f.pod()];
    const ids = [f.containerId(), f.containerId()];
    const results = pods.map((pod, i) => f.add(conf, pod, ids[i] as string));
    results.forEach((r, i) => {
      const pod = pods[i] as TestNetns;
      expectOk(r);
      expectInterfacesMatchKernel(r, pod, ids[i] as string);
      const address = nthAddress6(subnet, 2 + i);
      expect(r.json.ips).toEqual([{ address: `${address}/64`, gateway: gw, interface: 2 }]);
      expect(r.json.routes).toEqual([{ dst: '::/0', gw }]);
      const global = f.addresses('eth0', pod.name).filter((a) => a.family === 'inet6' && a.scope === 'global');
      expect(global).toMatchObject([{ local: address, prefixlen: 64 }]);
      expect(global[0]).not.toHaveProperty('tentative');
      expect(f.routes(pod.name, 6)).toContainEqual(
        expect.objectContaining({ dst: 'default', gateway: gw, dev: 'eth0' }),
      );
    });
    expect(f.addresses(f.bridge).filter((a) => a.family === 'inet6' && a.scope === 'global')).toMatchObject([
      { local: gw, prefixlen: 64 },
    ]);

    const [a, b] = pods as [TestNetns, TestNetns];
    expectPing(a, nthAddress6(subnet, 3));
    expectPing(b, nthAddress6(subnet, 2));
    expectPing(a, gw);
  });

  it('dual-stack: one address per family, both default routes, both families reach the other pod', () => {
    const v4 = randomSubnet4();
    const v6 = randomSubnet6();
    const conf = f.config({ ranges: [[{ subnet: v4 }], [{ subnet: v6 }]] });
    const pods = [f.pod(), f.pod()];
    const ids = [f.containerId(), f.containerId()];
    const results = pods.map((pod, i) => f.add(conf, pod, ids[i] as string));
    results.forEach((r, i) => {
      const pod = pods[i] as TestNetns;
      expectOk(r);
      expectInterfacesMatchKernel(r, pod, ids[i] as string);
      expect(r.json.ips).toEqual([
        { address: `${nthAddress4(v4, 2 + i)}/24`, gateway: nthAddress4(v4, 1), interface: 2 },
        { address: `${nthAddress6(v6, 2 + i)}/64`, gateway: nthAddress6(v6, 1), interface: 2 },
      ]);
      expect(r.json.routes).toEqual([
        { dst: '0.0.0.0/0', gw: nthAddress4(v4, 1) },
        { dst: '::/0', gw: nthAddress6(v6, 1) },
      ]);
      expect(f.routes(pod.name, 4)).toContainEqual(
        expect.objectContaining({ dst: 'default', gateway: nthAddress4(v4, 1) }),
      );
      expect(f.routes(pod.name, 6)).toContainEqual(
        expect.objectContaining({ dst: 'default', gateway: nthAddress6(v6, 1) }),
      );
    });
    // CHECK finds both families' addresses and default routes where the results say.
    results.forEach((r, i) => {
      const checked = f.check(conf, r.json, pods[i] as TestNetns, ids[i] as string);
      expect(checked.code, checked.stdout).toBe(0);
    });
    const bridgeAddrs = f.addresses(f.bridge).filter((a) => a.scope === 'global');
    expect(bridgeAddrs.map((a) => `${a.local}/${a.prefixlen}`).sort()).toEqual(
      [`${nthAddress4(v4, 1)}/24`, `${nthAddress6(v6, 1)}/64`].sort(),
    );

    const [a, b] = pods as [TestNetns, TestNetns];
    expectPing(a, nthAddress4(v4, 3));
    expectPing(b, nthAddress6(v6, 2));
    expectPing(a, nthAddress6(v6, 1));
  });
});
