// BIG TCP on the simulated NICs: their GSO/GRO sizes, for IPv4 and IPv6. A NIC that takes packets
// over 64 KiB is what a node operator turns BIG TCP on for (`ip link set eth0 gso_ipv4_max_size …`);
// Debian 12's iproute2 (6.1) does not know the IPv4 attributes yet, so this goes through Strand's
// netlink code. The simulator and the benchmark's hand-built baselines use the same function.
import { NetlinkSocket, setLink } from '../../../src/kernel/index.ts';

/** What the simulated NICs take by default: 192 KiB, the size BIG TCP is usually turned on with. */
export const SIM_OFFLOAD_SIZE = 196_608;

/** Sets all four GSO/GRO sizes of each device in a namespace (a bridge only after it has ports). */
export function setOffloadSizes(netns: string, devices: readonly string[], size: number): void {
  const nl = NetlinkSocket.open({ netns: `/run/netns/${netns}` });
  try {
    for (const dev of devices) {
      setLink(nl, dev, { offload: { gsoMaxSize: size, groMaxSize: size, gsoIpv4MaxSize: size, groIpv4MaxSize: size } });
    }
  } finally {
    nl.close();
  }
}
