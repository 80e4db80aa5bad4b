// What the kernel should hold for a list of peers: a pure function of the backend mode, this node and
// the peers. One route per peer pod CIDR; for a peer reached through VXLAN also one permanent
// neighbour entry per VTEP address and one FDB entry (flannel's pkg/backend/vxlan: route, ARP, FDB).
import type { IpFamily } from '../net/ip.ts';
import { cidrContains, familyOf, knownFamily, normalizeCidr, normalizeIp } from '../net/text.ts';
import { pauseEvery, runToEnd } from '../util/sliced.ts';
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
  /** serviceCidrs: the cluster's service range(s), when known: a peer's pod CIDR inside one is refused. */
  local: { name: string; podCidrs: readonly string[]; serviceCidrs?: readonly string[] };
  /** The subnets of the underlay interface's addresses: a peer whose underlay address is inside one
   * is on the same layer-2 segment and can be a next hop. */
  underlayPrefixes: readonly string[];
}

/** The peer's underlay address of a family (the peer is canonical: its addresses are checked). */
function underlayOf(peer: Peer, family: IpFamily): string | undefined {
  return peer.underlayIps.find((ip) => knownFamily(ip) === family);
}

/** Peers between two points where desiredSteps may pause (a peer is a few µs of address parsing). */
export const PEERS_PER_STEP = 64;
const pauseAt = pauseEvery(PEERS_PER_STEP);

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
  if (peer.createdAt !== undefined) out.createdAt = peer.createdAt;
  if (peer.backend !== undefined) out.backend = peer.backend;
  if (peer.vtepMac !== undefined) {
    if (isUsableVtepMac(peer.vtepMac)) out.vtepMac = normalizeMac(peer.vtepMac);
    else problem(`VTEP MAC ${JSON.stringify(peer.vtepMac)} is not a unicast MAC address; ignored`);
  }
  return out;
}

/** Claim owners that are not peers: this node, the service range. (No node name has a space.) */
const LOCAL_OWNER = '';
const SERVICE_OWNER = ' service';

function ownerText(owner: string): string {
  if (owner === LOCAL_OWNER) return "this node's";
  if (owner === SERVICE_OWNER) return 'the service range';
  return `node ${owner}'s`;
}

/** Milliseconds since the epoch of an RFC 3339 creationTimestamp; Infinity when absent or unreadable. */
function createdAt(peer: Peer): number {
  const t = peer.createdAt === undefined ? NaN : Date.parse(peer.createdAt);
  return Number.isNaN(t) ? Infinity : t;
}

const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** A pod CIDR refused to a peer: the problem to report where its route would have been. */
type Refusals = Map<string, Problem>;

/**
 * Which peers' pod CIDRs are refused. Peers claim their CIDRs oldest first (creationTimestamp, then
 * name), after this node's own and the service range: a CIDR that overlaps one claimed before is
 * refused for the newer Node, whatever the names. Claims do not depend on whether this node can route
 * to a peer, so every node computes the same owner for a CIDR from the same Node objects (a stale or
 * hand-made Node never takes over part of a healthy node's range, on any node).
 */
function* claimPodCidrs(
  local: DesiredInput['local'],
  peers: readonly Peer[],
  problems: Problem[],
): Generator<void, Map<Peer, Refusals>> {
  const claimed = new PrefixClaims();
  for (const cidr of local.podCidrs) claimed.claim(cidr, LOCAL_OWNER);
  for (const cidr of local.serviceCidrs ?? []) {
    const clash = claimed.claim(cidr, SERVICE_OWNER);
    if (clash) {
      problems.push({
        message: `this node's pod CIDR ${clash.cidr} overlaps the service range ${cidr}; that range is not checked`,
      });
    }
  }
  const refused = new Map<Peer, Refusals>();
  const age = new Map(peers.map((p) => [p, createdAt(p)]));
  const byAge = [...peers].sort((a, b) => age.get(a)! - age.get(b)! || byName(a, b));
  for (const [i, peer] of byAge.entries()) {
    if (pauseAt(i)) yield;
    for (const dst of peer.podCidrs) {
      const clash = claimed.claim(dst, peer.name);
      if (!clash) continue;
      let m = refused.get(peer);
      if (!m) refused.set(peer, (m = new Map()));
      const node = clash.owner === LOCAL_OWNER ? local.name : clash.owner === SERVICE_OWNER ? undefined : clash.owner;
      m.set(dst, {
        peer: peer.name,
        message: `node ${peer.name}: pod CIDR ${dst} overlaps ${ownerText(clash.owner)} ${clash.cidr}; no route`,
        overlaps: { cidr: clash.cidr, ...(node !== undefined ? { node } : {}) },
      });
    }
  }
  return refused;
}

/** The desired entries, in peer name order; peers that cannot be served (in part) are problems. */
export function desiredState(input: DesiredInput, peers: readonly Peer[]): DesiredState {
  return runToEnd(desiredSteps(input, peers));
}

/** desiredState, pausing every PEERS_PER_STEP peers (drainSliced gives the loop back there). */
export function* desiredSteps(input: DesiredInput, peers: readonly Peer[]): Generator<void, DesiredState> {
  const { mode, local } = input;
  const out: DesiredState = { routes: [], neighbours: [], fdb: [], problems: [] };
  const macOwners = new Map<string, string>();
  if (mode.kind === 'vxlan') macOwners.set(mode.vtepMac, '');
  const sameSegment = (ip: string) =>
    input.underlayPrefixes.some((p) => familyOf(p) === familyOf(ip) && cidrContains(p, ip));
  const localFamilies = new Set(local.podCidrs.map((c) => familyOf(c)));
  const segments = () => (input.underlayPrefixes.length > 0 ? input.underlayPrefixes.join(', ') : 'no address');

  // Read every peer first (name order; problems kept per peer so that they come out in name order),
  // then decide the CIDR claims by age, then compute the entries in name order.
  const seen = new Set<string>();
  const read: { peer: Peer; duplicate: boolean; problems: Problem[] }[] = [];
  for (const [i, listed] of [...peers].sort(byName).entries()) {
    if (pauseAt(i)) yield;
    if (listed.name === local.name) continue;
    const problems: Problem[] = [];
    const problem = (message: string) =>
      problems.push({ peer: listed.name, message: `node ${listed.name}: ${message}` });
    const duplicate = seen.has(listed.name);
    if (duplicate) problem('listed more than once; the first one is used');
    seen.add(listed.name);
    read.push({ peer: duplicate ? listed : canonical(listed, problem), duplicate, problems });
  }
  const refused = yield* claimPodCidrs(
    local,
    read.filter((r) => !r.duplicate).map((r) => r.peer),
    out.problems,
  );

  const serve = (peer: Peer, problems: Problem[]): void => {
    const problem = (message: string) => problems.push({ peer: peer.name, message: `node ${peer.name}: ${message}` });
    const routes: DesiredRoute[] = [];
    const vtepAddresses: string[] = [];
    for (const dst of peer.podCidrs) {
      const refusal = refused.get(peer)?.get(dst);
      if (refusal) {
        problems.push(refusal);
        continue;
      }
      const family = knownFamily(dst);
      if (!localFamilies.has(family)) {
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
        problem(
          `underlay address ${underlay} is not on this node's layer-2 segment (${segments()}): host-gw cannot use it as a next hop; no route to ${dst}`,
        );
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
      if (endpoint === undefined)
        problem(`no IPv${mode.vtepFamily} underlay address for the VXLAN endpoint; no VXLAN entries`);
      if (mac === undefined || owner !== undefined || endpoint === undefined) {
        // Keep the direct routes this peer may have; drop everything that needs the tunnel. (Its
        // CIDRs stay claimed: a newer Node does not take them over because this one lacks a MAC.)
        out.routes.push(...routes.filter((r) => r.dev !== 'vxlan'));
        return;
      }
      macOwners.set(mac, peer.name);
      fdb = { peer: peer.name, mac, dst: endpoint };
      for (const ip of vtepAddresses) neighbours.push({ peer: peer.name, ip, mac });
    }
    out.routes.push(...routes);
    out.neighbours.push(...neighbours);
    if (fdb) out.fdb.push(fdb);
  };

  for (const [i, { peer, duplicate, problems }] of read.entries()) {
    if (pauseAt(i)) yield;
    if (!duplicate) serve(peer, problems);
    out.problems.push(...problems);
  }
  return out;
}
