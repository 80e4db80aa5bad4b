// The node's datapath as the kernel holds it, read over netlink in the namespace the command runs in
// (on a node, the host's; in the simulator, the node's: `ip netns exec <node> strand status`). Only
// reads: the underlay interface, the VXLAN device, the pod bridge, and Strand's own entries exactly
// as the backends read them (readActual: routes with Strand's protocol, the VXLAN device's permanent
// neighbour and FDB entries).
import { readActual, underlayPrefixes, VXLAN_DEVICE_PATTERN } from '../datapath/datapath.ts';
import { forwardingWarnings } from '../datapath/datapath.ts';
import type { ActualState, Devices } from '../datapath/index.ts';
import { detectUnderlay } from '../agent/node-setup.ts';
import { findLink, listLinks, type Link, type NetlinkSocket } from '../kernel/index.ts';
import type { LinkView, StatusInputs } from './status-report.ts';

export interface KernelView {
  underlay?: { iface: string; addresses: string[]; mtu: number; offload: Record<string, number> };
  underlayPrefixes: string[];
  vxlanDevice?: LinkView;
  bridge?: LinkView;
  /** The bridge's ports: the host ends of the pods' veths. */
  bridgePorts: { name: string; mtu: number }[];
  actual: ActualState;
  devices?: Devices;
  forwarding: string[];
}

function view(l: Link, lower?: string): LinkView {
  const v: LinkView = { name: l.name, mtu: l.mtu, up: l.up, offload: { ...l.offload } as Record<string, number> };
  if (lower !== undefined) v.lower = lower;
  return v;
}

export interface KernelHints {
  /** The agent's underlay interface, when it said. */
  underlayIface?: string | undefined;
  /** strand.<VNI>, when known (the agent's); else any strand.<N> VXLAN device. */
  vxlanDevice?: string | undefined;
  bridge: string;
  podCidrs: readonly string[];
}

export function readKernelView(nl: NetlinkSocket, hints: KernelHints): KernelView {
  const vxlan =
    hints.vxlanDevice !== undefined
      ? findLink(nl, hints.vxlanDevice)
      : listLinks(nl, { kind: 'vxlan' }).find((l) => VXLAN_DEVICE_PATTERN.test(l.name));
  let underlayLink: Link | undefined;
  if (hints.underlayIface !== undefined) underlayLink = findLink(nl, hints.underlayIface);
  else if (vxlan?.vxlan?.link !== undefined) underlayLink = findLink(nl, vxlan.vxlan.link);
  let underlay: KernelView['underlay'];
  let name = underlayLink?.name;
  try {
    // The agent's own rule when it was not told: the default route's interface.
    const u = detectUnderlay(nl, name);
    underlay = {
      iface: u.name,
      addresses: u.addresses,
      mtu: u.mtu,
      offload: { ...u.offload } as Record<string, number>,
    };
    name = u.name;
    underlayLink ??= findLink(nl, u.name);
  } catch {
    // No underlay to be found: said by the caller (no devices).
  }
  const bridge = findLink(nl, hints.bridge);
  const out: KernelView = {
    underlayPrefixes: name !== undefined ? underlayPrefixes(nl, name) : [],
    actual: { routes: [], neighbours: [], fdb: [] },
    forwarding: forwardingWarnings(undefined, hints.podCidrs),
    bridgePorts: bridge ? listLinks(nl, { master: bridge.index }).map((l) => ({ name: l.name, mtu: l.mtu })) : [],
  };
  if (underlay) out.underlay = underlay;
  if (vxlan) out.vxlanDevice = view(vxlan, underlayLink?.name);
  if (bridge) out.bridge = view(bridge);
  if (underlayLink) {
    const devices: Devices = { underlay: { index: underlayLink.index, name: underlayLink.name } };
    if (vxlan) devices.vxlan = { index: vxlan.index, name: vxlan.name };
    out.devices = devices;
    out.actual = readActual(nl, devices);
  }
  return out;
}

export type { StatusInputs };
