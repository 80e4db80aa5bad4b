// dist/strand ADD failures injected on the real kernel: each returns the right CNI error code and
// leaves the kernel's link list (the namespace the plugin runs in, `ip -j link`), the pod's links
// and the IPAM data dir exactly as they were.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CNI_BIN, type CniOutcome } from '../support/cni.ts';
import { testName } from '../support/names.ts';
import type { TestNetns } from '../support/netns.ts';
import {
  linkFingerprint,
  nthAddress4,
  ping,
  PluginFixture,
  randomSubnet4,
  sh,
  type IpLink,
} from '../support/plugin-fixture.ts';

let f: PluginFixture;
beforeEach(() => {
  f = new PluginFixture();
});
afterEach(() => f.teardown());

interface Snapshot {
  links: IpLink[];
  podLinks: string[];
  ipam: Record<string, string>;
}

function snapshot(pod: TestNetns): Snapshot {
  return { links: f.links(), podLinks: f.links(pod.name).map(linkFingerprint), ipam: f.ipamSnapshot() };
}

/**
 * The links this test could have touched: the bridge, its ports, the attachment's host veth. Other
 * test runs on the machine may add or remove their own links in the root namespace meanwhile, so
 * the full lists are compared with theirs set aside; alone, the lists are equal.
 */
function expectUnchanged(before: Snapshot, pod: TestNetns, hostVeth: string): void {
  const after = snapshot(pod);
  const ours = (l: IpLink) => l.ifname === f.bridge || l.master === f.bridge || l.ifname === hostVeth;
  const beforeSet = new Set(before.links.map(linkFingerprint));
  const afterSet = new Set(after.links.map(linkFingerprint));
  const changed = [
    ...before.links.filter((l) => !afterSet.has(linkFingerprint(l))),
    ...after.links.filter((l) => !beforeSet.has(linkFingerprint(l))),
  ];
  expect(changed.filter(ours).map(linkFingerprint), 'links of this test that changed').toEqual([]);
  expect(after.links.filter(ours).map(linkFingerprint)).toEqual(before.links.filter(ours).map(linkFingerprint));
  expect(after.podLinks).toEqual(before.podLinks);
  expect(after.ipam).toEqual(before.ipam);
}

function expectError(r: CniOutcome, code: number, message: RegExp | string): void {
  expect(r.code, r.stdout + r.stderr).not.toBe(0);
  expect(r.json).toMatchObject({ cniVersion: '1.1.0', code });
  expect(r.json.msg).toMatch(message);
}

/** A first pod on the network, so that the bridge and the IPAM store exist before the failure. */
function firstPod(conf: Record<string, unknown>): { pod: TestNetns; containerId: string } {
  const pod = f.pod();
  const containerId = f.containerId();
  const r = f.add(conf, pod, containerId);
  expect(r.code, r.stdout + r.stderr).toBe(0);
  return { pod, containerId };
}

describe('strand ADD failures leave nothing behind', () => {
  it('exhausted pool (a /30 with one pod already): code 100', () => {
    const subnet = randomSubnet4(30);
    const conf = f.v4Config(subnet);
    firstPod(conf);
    const pod = f.pod();
    const containerId = f.containerId();
    const before = snapshot(pod);
    const r = f.add(conf, pod, containerId);
    expectError(r, 100, `no IP addresses available in range set: ${nthAddress4(subnet, 1)}-${nthAddress4(subnet, 2)}`);
    expectUnchanged(before, pod, f.hostVeth(containerId));
    expect(f.reservedAddresses()).toEqual([nthAddress4(subnet, 2)]);
  });

  it("bogus netns paths (missing, not a namespace, the plugin's own): code 4", () => {
    const conf = f.v4Config(randomSubnet4());
    const { pod } = firstPod(conf);
    const notNetns = join(f.dir, 'not-a-netns');
    writeFileSync(notNetns, '');
    for (const netns of [`/run/netns/${testName('gone')}`, notNetns, '/proc/self/ns/net']) {
      const containerId = f.containerId();
      const before = snapshot(pod);
      const r = f.add(conf, netns, containerId);
      expectError(r, 4, /CNI_NETNS/);
      expectUnchanged(before, pod, f.hostVeth(containerId));
    }
  });

  it('interface name already taken in the pod: code 4, and the link there is left as it was', () => {
    const conf = f.v4Config(randomSubnet4());
    firstPod(conf);
    const pod = f.pod();
    // ifb: a link that is not a veth (this kernel has no dummy driver).
    sh('ip', ['-n', pod.name, 'link', 'add', 'eth0', 'type', 'ifb']);
    const containerId = f.containerId();
    const before = snapshot(pod);
    const r = f.add(conf, pod, containerId);
    expectError(r, 4, /"eth0" already exists/);
    expectUnchanged(before, pod, f.hostVeth(containerId));
    expect(f.link('eth0', pod.name)?.linkinfo?.info_kind).toBe('ifb');
  });

  it('a second ADD of the same interface name into a pod: code 4, and the first attachment keeps working', () => {
    const subnet = randomSubnet4();
    const conf = f.v4Config(subnet);
    const { pod } = firstPod(conf);
    const containerId = f.containerId();
    const before = snapshot(pod);
    const r = f.add(conf, pod, containerId);
    expectError(r, 4, /"eth0" already exists/);
    expectUnchanged(before, pod, f.hostVeth(containerId));
    const p = ping(pod, nthAddress4(subnet, 1));
    expect(p.status, p.output).toBe(0);
  });

  it('IPAM plugin type missing from CNI_PATH: code 102, naming the plugin and the path', () => {
    const conf = f.config({ type: 'host-local', subnet: randomSubnet4() });
    const pod = f.pod();
    const containerId = f.containerId();
    const before = snapshot(pod);
    // dist holds strand and strand-ipam, not host-local.
    const r = f.add(conf, pod, containerId, 'eth0', { path: CNI_BIN });
    expectError(r, 102, `failed to find plugin "host-local" in path [${CNI_BIN}]`);
    expectUnchanged(before, pod, f.hostVeth(containerId));
    expect(f.link(f.bridge)).toBeUndefined();
    // A type that is nowhere at all.
    const other = f.add(f.config({ type: 'sttnoipam', subnet: randomSubnet4() }), pod, containerId);
    expectError(other, 102, /failed to find plugin "sttnoipam"/);
    expectUnchanged(before, pod, f.hostVeth(containerId));
  });

  it('a failure after IPAM and the veth (the bridge holds another address): code 7, everything undone', () => {
    const subnet = randomSubnet4();
    const conf = f.v4Config(subnet);
    // The bridge exists with an address of another subnet: without forceAddress ADD must refuse it,
    // after it has reserved an address and created the veth pair (cni-spec.md §8 ensureAddr).
    sh('ip', ['link', 'add', f.bridge, 'type', 'bridge']);
    sh('ip', ['addr', 'add', '10.127.255.1/24', 'dev', f.bridge]);
    const pod = f.pod();
    const containerId = f.containerId();
    const before = snapshot(pod);
    const r = f.add(conf, pod, containerId);
    expectError(r, 7, `"${f.bridge}" already has an IP address different from ${nthAddress4(subnet, 1)}/24`);
    // The address went back and the veth pair is gone; IPAM's round-robin marker may have moved.
    expect(f.reservedAddresses()).toEqual([]);
    const after = snapshot(pod);
    expect(after.podLinks).toEqual(before.podLinks);
    expect(after.links.filter((l) => l.master === f.bridge || l.ifname === f.hostVeth(containerId))).toEqual([]);
    expect(
      f
        .addresses(f.bridge)
        .filter((a) => a.family === 'inet')
        .map((a) => a.local),
    ).toEqual(['10.127.255.1']);
  });

  it('the bridge name taken by a link that is not a bridge: code 7, the address given back, the link untouched', () => {
    // An ifb device stands in for a dummy: this kernel has no dummy driver.
    const dummy = testName('dum');
    sh('ip', ['link', 'add', dummy, 'type', 'ifb']);
    f.trackLink(dummy);
    const conf = f.v4Config(randomSubnet4(), { bridge: dummy });
    const pod = f.pod();
    const containerId = f.containerId();
    const dummyBefore = linkFingerprint(f.link(dummy) as IpLink);
    const r = f.add(conf, pod, containerId);
    expectError(r, 7, `"${dummy}" already exists but is not a bridge`);
    expect(linkFingerprint(f.link(dummy) as IpLink)).toBe(dummyBefore);
    expect(f.link(f.hostVeth(containerId))).toBeUndefined();
    expect(f.links(pod.name).map((l) => l.ifname)).toEqual(['lo']);
    expect(f.reservedAddresses()).toEqual([]);
  });
});
