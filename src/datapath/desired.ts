// What the kernel should hold for a list of peers: a pure function of the backend mode, this node and
// the peers. One route per peer pod CIDR; for a peer reached through VXLAN also one permanent
// neighbour entry per VTEP address and one FDB entry (flannel's pkg/backend/vxlan: route, ARP, FDB).
import type { IpFamily } from '../net/ip.ts';
import { cidrContains, familyOf, normalizeCidr, normalizeIp } from '../net/text.ts';
import { PrefixClaims, vtepAddress } from './cidr.ts';
import { ANNOTATIONS, type Peer, type Problem } from './types.ts';
import { isUsableVtepMac, normalizeMac } from './vtep-mac.ts';

export type DatapathMode =
  | { kind: 'host-gw' }
  | {
      kind: 'vxlan';
      /** Peers on the same layer-2 segment get direct routes instead of going through VXLAN. */
      directRouting: boolean;
      /** This node's VTEP MAC (a peer claiming it is a conflict). */
      vtepMac: string;
      /** Family of this node's VXLAN endpoint: a peer needs an underlay address of it. */
      vtepFamily: IpFamily;
    };

/** Where a route goes out: the VXLAN device, or the underlay interface (host-gw, direct routing). */
export type RouteDevice = 'vxlan' | 'underlay';

export interface DesiredRoute {
  peer: string;
  dst: string;
  gateway: string;
  dev: RouteDevice;
  /** The gateway is on dev although no prefix says so (the VTEP address of a peer). */
  onlink: boolean;
}

export interface DesiredNeighbour {
  peer: string;
  ip: string;
  mac: string;
}

export interface DesiredFdb {
  peer: string;
  mac: string;
  /** The peer's underlay address: where frames for mac are encapsulated to. */
  dst: string;
}

export interface DesiredState {
  routes: DesiredRoute[];
  neighbours: DesiredNeighbour[];
  fdb: DesiredFdb[];
  problems: Problem[];
}

export interface DesiredInput {
  mode: DatapathMode;
  local: { name: string; podCidrs: readonly string[] };
  /** The subnets of the underlay interface's addresses: a peer whose underlay address is inside one
   * is on the same layer-2 segment and can be a next hop. */
  underlayPrefixes: readonly string[];
}

function underlayOf(peer: Peer, family: IpFamily): string | undefined {
  return peer.underlayIps.find((ip) => familyOf(ip) === family);
}

/**
 * The peer with its addresses in the form the kernel reports them (network-address CIDRs, RFC 5952
 * IPv6, lower-case MACs), so that comparing with what the kernel holds is comparing strings. A Peer
 * from peerFromNode is already so; one built by hand may not be, and a malformed value is dropped
 * with a problem.
 */
function canonical(peer: Peer, problem: (message: string) => void): Peer {
  const podCidrs: string[] = [];
  for (const c of peer.podCidrs) {
    const n = normalizeCidr(c);
    if (n === undefined) problem(`malformed pod CIDR ${JSON.stringify(c)}; no route`);
    else podCidrs.push(n);
  }
  const underlayIps: string[] = [];
  for (const ip of peer.underlayIps) {
    const n = normalizeIp(ip);
    if (n === undefined) problem(`malformed underlay address ${JSON.stringify(ip)}; ignored`);
    else underlayIps.push(n);
  }
  const out: Peer = { name: peer.name, podCidrs, underlayIps };
  if (peer.backend !== undefined) out.backend = peer.backend;
  if (peer.vtepMac !== undefined) {
    if (isUsableVtepMac(peer.vtepMac)) out.vtepMac = normalizeMac(peer.vtepMac);
    else problem(`VTEP MAC ${JSON.stringify(peer.vtepMac)} is not a unicast MAC address; ignored`);
  }
  return out;
}

/** The desired entries, in peer name order; peers that cannot be served (in part) are problems. */
export function desiredState(input: DesiredInput, peers: readonly Peer[]): DesiredState {
  const { mode, local } = input;
  const out: DesiredState = { routes: [], neighbours: [], fdb: [], problems: [] };
  const claimed = new PrefixClaims();
  for (const cidr of local.podCidrs) claimed.claim(cidr, '');
  const macOwners = new Map<string, string>();
  if (mode.kind === 'vxlan') macOwners.set(mode.vtepMac, '');
  const seen = new Set<string>();
  const sameSegment = (ip: string) => input.underlayPrefixes.some((p) => familyOf(p) === familyOf(ip) && cidrContains(p, ip));
  const segments = () => (input.underlayPrefixes.length > 0 ? input.underlayPrefixes.join(', ') : 'no address');

  const sorted = [...peers].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const listed of sorted) {
    if (listed.name === local.name) continue;
    const problem = (message: string) => out.problems.push({ peer: listed.name, message: `node ${listed.name}: ${message}` });
    if (seen.has(listed.name)) {
      problem('listed more than once; the first one is used');
      continue;
    }
    seen.add(listed.name);
    const peer = canonical(listed, problem);

    const routes: DesiredRoute[] = [];
    const vtepAddresses: string[] = [];
    for (const dst of peer.podCidrs) {
      const family = familyOf(dst)!;
      if (!local.podCidrs.some((c) => familyOf(c) === family)) {
        problem(`pod CIDR ${dst} is IPv${family} but this node has no IPv${family} pod CIDR; no route`);
        continue;
      }
      const underlay = underlayOf(peer, family);
      const direct = mode.kind === 'host-gw' || (mode.directRouting && underlay !== undefined && sameSegment(underlay));
      if (direct && underlay === undefined) {
        problem(`no IPv${family} underlay address to route pod CIDR ${dst} via; no route`);
        continue;
      }
      if (direct && !sameSegment(underlay!)) {
        problem(`underlay address ${underlay} is not on this node's layer-2 segment (${segments()}): host-gw cannot use it as a next hop; no route to ${dst}`);
        continue;
      }
      const clash = claimed.claim(dst, peer.name);
      if (clash) {
        problem(`pod CIDR ${dst} overlaps ${clash.owner === '' ? "this node's" : `node ${clash.owner}'s`} ${clash.cidr}; no route`);
        continue;
      }
      if (direct) {
        routes.push({ peer: peer.name, dst, gateway: underlay!, dev: 'underlay', onlink: false });
      } else {
        const vtep = vtepAddress(dst);
        routes.push({ peer: peer.name, dst, gateway: vtep, dev: 'vxlan', onlink: true });
        vtepAddresses.push(vtep);
      }
    }

    let fdb: DesiredFdb | undefined;
    const neighbours: DesiredNeighbour[] = [];
    if (vtepAddresses.length > 0 && mode.kind === 'vxlan') {
      const endpoint = underlayOf(peer, mode.vtepFamily);
      const mac = peer.vtepMac;
      const owner = mac === undefined ? undefined : macOwners.get(mac);
      if (mac === undefined) {
        const runs = peer.backend !== undefined ? ` (it runs ${peer.backend})` : '';
        problem(`no VTEP MAC (annotation ${ANNOTATIONS.vtepMac})${runs}; no VXLAN entries`);
      } else if (owner !== undefined) {
        problem(`VTEP MAC ${mac} is also ${owner === '' ? "this node's" : `node ${owner}'s`}; no VXLAN entries`);
      }
      if (endpoint === undefined) problem(`no IPv${mode.vtepFamily} underlay address for the VXLAN endpoint; no VXLAN entries`);
      if (mac === undefined || owner !== undefined || endpoint === undefined) {
        // Keep the direct routes this peer may have; drop everything that needs the tunnel, and free
        // the CIDRs it claimed so the problem is reported once, not as an overlap later.
        for (const r of routes) if (r.dev === 'vxlan') claimed.release(r.dst, peer.name);
        out.routes.push(...routes.filter((r) => r.dev !== 'vxlan'));
        continue;
      }
      macOwners.set(mac, peer.name);
      fdb = { peer: peer.name, mac, dst: endpoint };
      for (const ip of vtepAddresses) neighbours.push({ peer: peer.name, ip, mac });
    }
    out.routes.push(...routes);
    out.neighbours.push(...neighbours);
    if (fdb) out.fdb.push(fdb);
  }
  return out;
}
