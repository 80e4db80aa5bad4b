// dist/strand DEL and GC against the real kernel: DEL is idempotent and succeeds when the pod's
// namespace is gone, when CNI_NETNS is unset and before any ADD, releasing the address and the
// host veth each time; GC with a partial valid list removes exactly the stale attachments.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CniOutcome } from '../support/cni.ts';
import type { TestNetns } from '../support/netns.ts';
import { eventually, nthAddress4, ping, PluginFixture, randomSubnet4, sh } from '../support/plugin-fixture.ts';

let f: PluginFixture;
let subnet: string;
let conf: Record<string, unknown>;
beforeEach(() => {
  f = new PluginFixture();
  subnet = randomSubnet4();
  conf = f.v4Config(subnet);
});
afterEach(() => f.teardown());

function expectOk(r: CniOutcome, emptyStdout = true): void {
  expect(r.code, r.stdout + r.stderr).toBe(0);
  if (emptyStdout) expect(r.stdout).toBe('');
}

function addPod(): { pod: TestNetns; containerId: string; result: CniOutcome; address: string } {
  const pod = f.pod();
  const containerId = f.containerId();
  const result = f.add(conf, pod, containerId);
  expectOk(result, false);
  return { pod, containerId, result, address: (result.json.ips[0].address as string).split('/')[0] as string };
}

const linkExists = (name: string, netns?: string): boolean => f.link(name, netns) !== undefined;

describe('strand DEL', () => {
  it('DEL twice after ADD: both succeed; the interface, host veth and address are gone; the bridge and gateway stay', () => {
    const { pod, containerId, result, address } = addPod();
    expect(f.reservedAddresses()).toEqual([address]);
    expectOk(f.del({ ...conf, prevResult: result.json }, pod, containerId));
    expectOk(f.del(conf, pod, containerId));

    expect(linkExists('eth0', pod.name)).toBe(false);
    expect(linkExists(f.hostVeth(containerId))).toBe(false);
    expect(f.reservedAddresses()).toEqual([]);
    // cni-spec.md §8: the bridge and its gateway address are never deleted.
    expect(f.link(f.bridge)?.linkinfo?.info_kind).toBe('bridge');
    expect(f.addresses(f.bridge).filter((a) => a.family === 'inet')).toMatchObject([{ local: nthAddress4(subnet, 1) }]);
  });

  it('DEL after the pod namespace was deleted: succeeds, releases the address, and the host veth is gone', async () => {
    const { pod, containerId, result } = addPod();
    sh('ip', ['netns', 'del', pod.name]);
    expectOk(f.del({ ...conf, prevResult: result.json }, pod, containerId));
    expect(f.reservedAddresses()).toEqual([]);
    // The kernel tears a namespace down asynchronously; the host end must not outlive it or DEL.
    await eventually(() => !linkExists(f.hostVeth(containerId)), 5_000, 'host veth removed');
    expectOk(f.del(conf, pod, containerId));
  });

  it('DEL before ADD succeeds and creates nothing', () => {
    const pod = f.pod();
    const containerId = f.containerId();
    expectOk(f.del(conf, pod, containerId));
    expect(linkExists(f.bridge)).toBe(false);
    expect(linkExists(f.hostVeth(containerId))).toBe(false);
    expect(f.reservedAddresses()).toEqual([]);
  });

  it('DEL with CNI_NETNS unset: succeeds, releases the address and removes the veth pair from the host side', () => {
    const { pod, containerId } = addPod();
    expectOk(f.del(conf, undefined, containerId));
    expect(f.reservedAddresses()).toEqual([]);
    expect(linkExists(f.hostVeth(containerId))).toBe(false);
    // Deleting the host end took its peer in the pod with it.
    expect(linkExists('eth0', pod.name)).toBe(false);
  });

  it('DEL of one attachment leaves the other pods alone', () => {
    const a = addPod();
    const b = addPod();
    expectOk(f.del(conf, a.pod, a.containerId));
    expect(f.reservedAddresses()).toEqual([b.address]);
    expect(linkExists(f.hostVeth(b.containerId))).toBe(true);
    const p = ping(b.pod, nthAddress4(subnet, 1));
    expect(p.status, p.output).toBe(0);
  });
});

describe('strand GC', () => {
  it('with a partial valid list: stale attachments lose their address and host veth, valid ones stay intact', () => {
    const pods = [addPod(), addPod(), addPod(), addPod()];
    const [a, b, c, d] = pods as [
      ReturnType<typeof addPod>,
      ReturnType<typeof addPod>,
      ReturnType<typeof addPod>,
      ReturnType<typeof addPod>,
    ];
    // b and d "crashed" without a DEL; the runtime still knows a and c.
    const r = f.gc(
      conf,
      [a, c].map((p) => ({ containerId: p.containerId, ifname: 'eth0' })),
    );
    expectOk(r);

    expect(f.reservedAddresses()).toEqual([a.address, c.address].sort());
    for (const stale of [b, d]) {
      expect(linkExists(f.hostVeth(stale.containerId))).toBe(false);
      expect(linkExists('eth0', stale.pod.name)).toBe(false);
    }
    for (const valid of [a, c]) {
      expect(f.link(f.hostVeth(valid.containerId))?.master).toBe(f.bridge);
      expect(
        f
          .addresses('eth0', valid.pod.name)
          .filter((x) => x.family === 'inet')
          .map((x) => x.local),
      ).toEqual([valid.address]);
      const p = ping(valid.pod, nthAddress4(subnet, 1));
      expect(p.status, p.output).toBe(0);
    }
    const p = ping(a.pod, c.address);
    expect(p.status, p.output).toBe(0);

    // GC again changes nothing; the valid attachments' DEL still works afterwards.
    expectOk(
      f.gc(
        conf,
        [a, c].map((x) => ({ containerId: x.containerId, ifname: 'eth0' })),
      ),
    );
    expect(f.reservedAddresses()).toEqual([a.address, c.address].sort());
    for (const valid of [a, c]) expectOk(f.del(conf, valid.pod, valid.containerId));
    expect(f.reservedAddresses()).toEqual([]);
  });

  it('with an empty valid list removes every attachment of the network', () => {
    const pods = [addPod(), addPod()];
    expectOk(f.gc(conf, []));
    expect(f.reservedAddresses()).toEqual([]);
    for (const p of pods) {
      expect(linkExists(f.hostVeth(p.containerId))).toBe(false);
      expect(linkExists('eth0', p.pod.name)).toBe(false);
    }
    expect(f.link(f.bridge)?.linkinfo?.info_kind).toBe('bridge');
  });

  it('an attachment of the same container on another interface is not kept by its sibling being valid', () => {
    const pod = f.pod();
    const containerId = f.containerId();
    expectOk(f.add(conf, pod, containerId, 'eth0'), false);
    expectOk(f.add(conf, pod, containerId, 'net1'), false);
    expect(f.reservedAddresses()).toHaveLength(2);
    expectOk(f.gc(conf, [{ containerId, ifname: 'eth0' }]));
    expect(f.reservedAddresses()).toHaveLength(1);
    expect(linkExists(f.hostVeth(containerId, 'eth0'))).toBe(true);
    expect(linkExists(f.hostVeth(containerId, 'net1'))).toBe(false);
    expect(linkExists('net1', pod.name)).toBe(false);
    expect(linkExists('eth0', pod.name)).toBe(true);
  });
});
