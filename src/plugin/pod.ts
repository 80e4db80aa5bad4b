// The pod's side of an attachment: settings, addresses and routes of the container interface,
// all inside the pod's network namespace (reference ipam.ConfigureIface and bridge cmdAdd step 7).
import type { IpConfig, Route } from '../cni/result.ts';
import { ipVersionOf } from '../cni/result.ts';
import {
  addAddress,
  addRoute,
  interfaceSysctl,
  isKernelError,
  setLinkUp,
  writeSysctls,
  type NetlinkSocket,
  type RouteSpec,
} from '../kernel/index.ts';

export interface PodInterfaceOptions {
  netns: string;
  ifname: string;
  index: number;
  ips: readonly IpConfig[];
  routes: readonly Route[];
  /** IPv6 duplicate address detection on the pod's addresses (reference `enabledad`). */
  enableDad: boolean;
  /** Leave the interface down (reference `disableContainerInterface`). */
  leaveDown: boolean;
}

function podSysctls(o: PodInterfaceOptions, hasV6: boolean): Record<string, number> {
  const s: Record<string, number> = { [interfaceSysctl('ipv4', o.ifname, 'arp_notify')]: 1 };
  if (hasV6) {
    s[interfaceSysctl('ipv6', o.ifname, 'disable_ipv6')] = 0;
    s[interfaceSysctl('ipv6', o.ifname, 'keep_addr_on_down')] = 1;
    s[interfaceSysctl('ipv6', o.ifname, 'accept_dad')] = o.enableDad ? 1 : 0;
    if (o.enableDad) s[interfaceSysctl('ipv6', o.ifname, 'enhanced_dad')] = 1;
  }
  return s;
}

/** The gateway of each family from the IPs, which routes without their own gw go through. */
export function familyGateways(ips: readonly IpConfig[]): Map<'4' | '6', string> {
  const gws = new Map<'4' | '6', string>();
  for (const ip of ips) {
    const f = ipVersionOf(ip.address);
    if (ip.gateway && !gws.has(f)) gws.set(f, ip.gateway);
  }
  return gws;
}

export function routeSpec(r: Route, oif: number, gateways: Map<'4' | '6', string>): RouteSpec {
  const gw = r.gw ?? gateways.get(ipVersionOf(r.dst));
  const spec: RouteSpec = { dst: r.dst, oif };
  if (gw) spec.gateway = gw;
  if (r.priority !== undefined) spec.metric = r.priority;
  if (r.mtu !== undefined) spec.mtu = r.mtu;
  if (r.advmss !== undefined) spec.advmss = r.advmss;
  if (r.table !== undefined) spec.table = r.table;
  if (r.scope !== undefined) spec.scope = r.scope;
  return spec;
}

/** Configures the container interface through a socket opened in the pod's namespace. */
export function configurePodInterface(podNl: NetlinkSocket, o: PodInterfaceOptions): void {
  const hasV6 = o.ips.some((ip) => ipVersionOf(ip.address) === '6');
  writeSysctls(podSysctls(o, hasV6), { netns: o.netns });
  for (const ip of o.ips) {
    addAddress(podNl, o.index, ip.address, ipVersionOf(ip.address) === '6' && !o.enableDad ? { noDad: true } : {});
  }
  if (o.leaveDown) return;
  setLinkUp(podNl, o.index);
  const gateways = familyGateways(o.ips);
  for (const r of o.routes) {
    try {
      addRoute(podNl, routeSpec(r, o.index, gateways));
    } catch (err) {
      // CNI 1.1 §5: a default route may already exist from another network attached to this pod.
      if (!isKernelError(err, 'EEXIST')) throw err;
    }
  }
}
