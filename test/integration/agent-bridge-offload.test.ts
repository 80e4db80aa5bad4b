// The agent's BIG TCP pass on the real kernel: the bridge and the host ends of its ports are brought
// to the pods' GSO/GRO sizes, and back to the kernel's 64 KiB when BIG TCP goes off.
import { describe, expect, it } from 'vitest';
import { ensureBridgeOffload, LEGACY_OFFLOAD_SIZE } from '../../src/agent/node-setup.ts';
import { addLink, getLink, listLinks } from '../../src/kernel/index.ts';
import { kernelFixture } from '../support/kernel-fixture.ts';
import { testName } from '../support/names.ts';

const { netns, socketIn } = kernelFixture();
const BIG = { gsoMaxSize: 196608, groMaxSize: 196608, gsoIpv4MaxSize: 196608, groIpv4MaxSize: 196608 };
const LEGACY = {
  gsoMaxSize: LEGACY_OFFLOAD_SIZE,
  groMaxSize: LEGACY_OFFLOAD_SIZE,
  gsoIpv4MaxSize: LEGACY_OFFLOAD_SIZE,
  groIpv4MaxSize: LEGACY_OFFLOAD_SIZE,
};

describe("agent: the bridge's and its ports' GSO/GRO sizes", () => {
  it('raises the ports made before BIG TCP and the bridge, leaves pod ends and other links alone, and lowers them again', () => {
    const host = netns();
    const pod = netns();
    const nl = socketIn(host);
    const br = testName('br');
    const ports = [testName('veth'), testName('veth')];
    const other = testName('vo');
    addLink(nl, { kind: 'bridge', name: br });
    // An empty bridge is left as it is (the kernel would refuse more than 64 KiB).
    ensureBridgeOffload(nl, getLink(nl, br), BIG);
    expect(getLink(nl, br).offload).toEqual(LEGACY);

    for (const [i, port] of ports.entries())
      addLink(nl, { kind: 'veth', name: port, master: br, peer: { name: `eth${i}`, netns: pod.path } });
    addLink(nl, { kind: 'veth', name: other, peer: { name: testName('vp') } });
    ensureBridgeOffload(nl, getLink(nl, br), BIG);
    for (const name of [br, ...ports]) expect(getLink(nl, name).offload, name).toEqual(BIG);
    expect(getLink(nl, other).offload).toEqual(LEGACY);
    for (const l of listLinks(socketIn(pod))) if (l.kind === 'veth') expect(l.offload, l.name).toEqual(LEGACY);

    // Nothing to do: no request is refused, nothing changes.
    expect(ensureBridgeOffload(nl, getLink(nl, br), BIG)).toEqual([]);
    // Sizes over a link's ceiling: each refusal comes back with the kernel's reason, nothing throws.
    const refused = ensureBridgeOffload(nl, getLink(nl, br), { ...BIG, gsoIpv4MaxSize: 1 << 20 });
    expect(refused).toHaveLength(3);
    expect(refused[0]).toMatch(
      new RegExp(`^${ports[0]}: failed to set .*gso_ipv4_max_size 1048576 .*Invalid argument`),
    );
    for (const name of [br, ...ports]) expect(getLink(nl, name).offload, name).toEqual(BIG);
    // Only IPv6 BIG TCP now: the IPv4 sizes go back to 64 KiB.
    const v6only = { gsoMaxSize: 196608, groMaxSize: 196608 };
    ensureBridgeOffload(nl, getLink(nl, br), v6only);
    for (const name of [br, ...ports]) expect(getLink(nl, name).offload, name).toEqual({ ...LEGACY, ...v6only });
    ensureBridgeOffload(nl, getLink(nl, br), undefined);
    for (const name of [br, ...ports]) expect(getLink(nl, name).offload, name).toEqual(LEGACY);
  });
});
