// The pod MTU and VXLAN's overhead, owned by the datapath: the backends size their devices by it,
// node set-up writes it into the node state (the plugin gives it to each pod), and `strand status`
// judges a node's MTU by it. Pure.
import type { IpFamily } from '../net/ip.ts';

/** VXLAN headers: outer IPv4 (20) or IPv6 (40) + UDP (8) + VXLAN (8) + inner Ethernet (14). */
export const VXLAN_OVERHEAD = { 4: 50, 6: 70 } as const;

/** The encapsulation overhead of VXLAN over this underlay family. */
export function vxlanOverhead(underlayFamily: IpFamily): number {
  return VXLAN_OVERHEAD[underlayFamily];
}

/** The bytes a backend's encapsulation takes from the underlay MTU (none for host-gw). */
export function backendOverhead(backend: 'vxlan' | 'host-gw', underlayFamily: IpFamily = 4): number {
  return backend === 'vxlan' ? vxlanOverhead(underlayFamily) : 0;
}

/**
 * The pod MTU for a backend over an underlay: VXLAN's headers come out of the underlay MTU, more of
 * them when the tunnel runs over IPv6 (the underlay's first address is the tunnel endpoint).
 */
export function podMtu(backend: 'vxlan' | 'host-gw', underlayMtu: number, underlayFamily: IpFamily = 4): number {
  return underlayMtu - backendOverhead(backend, underlayFamily);
}
