// The difference between what the kernel holds and what it should hold, as an ordered list of
// operations: add what is missing, replace what changed (a peer's underlay address or MAC), delete
// what is stale (a node deleted while the agent was down). Pure; datapath.ts reads and applies.
import { familyOf } from '../net/text.ts';
import { pauseEvery, runToEnd } from '../util/sliced.ts';
import type { DesiredFdb, DesiredNeighbour, DesiredRoute, DesiredState, RouteDevice } from './desired.ts';

/** Desired entries between two points where planSteps may pause. */
const ENTRIES_PER_STEP = 256;
const pauseAt = pauseEvery(ENTRIES_PER_STEP);

/** A Strand route the kernel holds (rtm_protocol STRAND_ROUTE_PROTOCOL, main table). */
export interface ActualRoute {
  dst: string;
  gateway: string | undefined;
  oif: number | undefined;
  onlink: boolean;
  metric: number | undefined;
}

/** A neighbour entry on the VXLAN device. */
export interface ActualNeighbour {
  ip: string;
  mac: string | undefined;
  permanent: boolean;
}

/** A permanent FDB entry of the VXLAN device's own table. */
export interface ActualFdb {
  mac: string;
  dst: string | undefined;
}

export interface ActualState {
  routes: ActualRoute[];
  neighbours: ActualNeighbour[];
  fdb: ActualFdb[];
}

export interface Devices {
  underlay: { index: number; name: string };
  vxlan?: { index: number; name: string };
}

export type Action = 'add' | 'replace' | 'delete';

export interface RouteOp {
  object: 'route';
  action: Action;
  peer: string | undefined;
  dst: string;
  gateway: string | undefined;
  oif: number | undefined;
  onlink: boolean;
  /** Only for deletes: the metric of the route to delete, so that only that one goes. */
  metric: number | undefined;
  detail: string;
}

export interface NeighbourOp {
  object: 'neighbour';
  action: Action;
  peer: string | undefined;
  ip: string;
  mac: string | undefined;
  detail: string;
}

export interface FdbOp {
  object: 'fdb';
  action: Action;
  peer: string | undefined;
  mac: string;
  dst: string | undefined;
  detail: string;
}

export type PlanOp = RouteOp | NeighbourOp | FdbOp;

export interface Plan {
  /** In the order to apply them: stale routes go first, then the tunnel entries (FDB, neighbour)
   * a new route depends on, then routes, then stale neighbour and FDB entries no route uses. */
  ops: PlanOp[];
  unchanged: number;
}

/** The metric the kernel gives a route added without one: 0 for IPv4, 1024 for IPv6. */
function isDefaultMetric(dst: string, metric: number | undefined): boolean {
  return metric === undefined || metric === (familyOf(dst) === 6 ? 1024 : 0);
}

function deviceOf(devices: Devices, dev: RouteDevice): { index: number; name: string } | undefined {
  return dev === 'vxlan' ? devices.vxlan : devices.underlay;
}

function nameOf(devices: Devices, index: number | undefined): string {
  if (index === undefined) return '?';
  if (devices.vxlan?.index === index) return devices.vxlan.name;
  if (devices.underlay.index === index) return devices.underlay.name;
  return `#${index}`;
}

export function describeRouteEntry(dst: string, gateway: string | undefined, dev: string, onlink: boolean): string {
  return `${dst}${gateway !== undefined ? ` via ${gateway}` : ''} dev ${dev}${onlink ? ' onlink' : ''}`;
}

function* routeOps(
  desired: readonly DesiredRoute[],
  actual: readonly ActualRoute[],
  devices: Devices,
  unchanged: { n: number },
): Generator<void, { changes: RouteOp[]; stale: RouteOp[] }> {
  const changes: RouteOp[] = [];
  const stale: RouteOp[] = [];
  const byDst = new Map<string, ActualRoute[]>();
  for (const r of actual) {
    const list = byDst.get(r.dst) ?? [];
    list.push(r);
    byDst.set(r.dst, list);
  }
  const remove = (r: ActualRoute, peer?: string) =>
    stale.push({
      object: 'route',
      action: 'delete',
      peer,
      dst: r.dst,
      gateway: r.gateway,
      oif: r.oif,
      onlink: r.onlink,
      metric: r.metric,
      detail:
        describeRouteEntry(r.dst, r.gateway, nameOf(devices, r.oif), r.onlink) +
        (isDefaultMetric(r.dst, r.metric) ? '' : ` metric ${r.metric}`),
    });

  for (const [i, want] of desired.entries()) {
    if (pauseAt(i)) yield;
    const dev = deviceOf(devices, want.dev);
    if (!dev) continue; // no such device in this mode: desiredState never asks for one
    const have = byDst.get(want.dst) ?? [];
    byDst.delete(want.dst);
    // Only a route with the default metric is the one a replace would change (the kernel's key is
    // dst, tos, metric); any other of ours to this dst is a leftover.
    const current = have.find((r) => isDefaultMetric(r.dst, r.metric));
    for (const r of have) if (r !== current) remove(r, want.peer);
    const op: RouteOp = {
      object: 'route',
      action: current ? 'replace' : 'add',
      peer: want.peer,
      dst: want.dst,
      gateway: want.gateway,
      oif: dev.index,
      onlink: want.onlink,
      metric: undefined,
      detail: describeRouteEntry(want.dst, want.gateway, dev.name, want.onlink),
    };
    if (current && current.gateway === want.gateway && current.oif === dev.index && current.onlink === want.onlink)
      unchanged.n++;
    else changes.push(op);
  }
  for (const rest of byDst.values()) for (const r of rest) remove(r);
  return { changes, stale };
}

function* neighbourOps(
  desired: readonly DesiredNeighbour[],
  actual: readonly ActualNeighbour[],
  device: string,
  unchanged: { n: number },
): Generator<void, { changes: NeighbourOp[]; stale: NeighbourOp[] }> {
  const changes: NeighbourOp[] = [];
  const stale: NeighbourOp[] = [];
  const byIp = new Map(actual.map((n) => [n.ip, n]));
  for (const [i, want] of desired.entries()) {
    if (pauseAt(i)) yield;
    const have = byIp.get(want.ip);
    byIp.delete(want.ip);
    if (have && have.permanent && have.mac === want.mac) {
      unchanged.n++;
      continue;
    }
    // A non-permanent entry (the kernel tried ARP before we were here) is replaced as well.
    changes.push({
      object: 'neighbour',
      action: have ? 'replace' : 'add',
      peer: want.peer,
      ip: want.ip,
      mac: want.mac,
      detail: `${want.ip} lladdr ${want.mac} dev ${device}`,
    });
  }
  // Entries the kernel made itself (incomplete, failed, multicast) age out on their own; only
  // permanent ones are ours to remove.
  for (const n of byIp.values()) {
    if (n.permanent)
      stale.push({
        object: 'neighbour',
        action: 'delete',
        peer: undefined,
        ip: n.ip,
        mac: n.mac,
        detail: `${n.ip} lladdr ${n.mac ?? '?'} dev ${device}`,
      });
  }
  return { changes, stale };
}

function* fdbOps(
  desired: readonly DesiredFdb[],
  actual: readonly ActualFdb[],
  device: string,
  unchanged: { n: number },
): Generator<void, { changes: FdbOp[]; stale: FdbOp[] }> {
  const changes: FdbOp[] = [];
  const stale: FdbOp[] = [];
  const byMac = new Map<string, ActualFdb[]>();
  for (const e of actual) {
    const list = byMac.get(e.mac) ?? [];
    list.push(e);
    byMac.set(e.mac, list);
  }
  const detail = (mac: string, dst: string | undefined) =>
    `${mac} dev ${device}${dst !== undefined ? ` dst ${dst}` : ''} self permanent`;
  const remove = (e: ActualFdb, peer?: string) =>
    stale.push({ object: 'fdb', action: 'delete', peer, mac: e.mac, dst: e.dst, detail: detail(e.mac, e.dst) });
  for (const [i, want] of desired.entries()) {
    if (pauseAt(i)) yield;
    const have = byMac.get(want.mac) ?? [];
    byMac.delete(want.mac);
    // A VXLAN FDB entry can hold several destinations (`bridge fdb append`); exactly one is wanted.
    const exact = have.find((e) => e.dst === want.dst);
    const keep = exact ?? have[0];
    for (const e of have) if (e !== keep) remove(e, want.peer);
    if (exact) {
      unchanged.n++;
      continue;
    }
    changes.push({
      object: 'fdb',
      action: keep ? 'replace' : 'add',
      peer: want.peer,
      mac: want.mac,
      dst: want.dst,
      detail: detail(want.mac, want.dst),
    });
  }
  for (const rest of byMac.values()) for (const e of rest) remove(e);
  return { changes, stale };
}

/** The operations that turn actual into desired (desired.problems are the caller's). */
export function planChanges(desired: DesiredState, actual: ActualState, devices: Devices): Plan {
  return runToEnd(planSteps(desired, actual, devices));
}

/** planChanges, pausing every ENTRIES_PER_STEP desired entries (drainSliced gives the loop back there). */
export function* planSteps(desired: DesiredState, actual: ActualState, devices: Devices): Generator<void, Plan> {
  const unchanged = { n: 0 };
  const routes = yield* routeOps(desired.routes, actual.routes, devices, unchanged);
  const vx = devices.vxlan?.name ?? '?';
  const neighbours = yield* neighbourOps(desired.neighbours, actual.neighbours, vx, unchanged);
  const fdb = yield* fdbOps(desired.fdb, actual.fdb, vx, unchanged);
  // Duplicate FDB destinations go before the replace of the one kept, or the replace could pick one
  // that is about to be deleted.
  const fdbDuplicates = fdb.stale.filter((op) => op.peer !== undefined);
  const fdbStale = fdb.stale.filter((op) => op.peer === undefined);
  return {
    ops: [
      ...routes.stale,
      ...fdbDuplicates,
      ...fdb.changes,
      ...neighbours.changes,
      ...routes.changes,
      ...neighbours.stale,
      ...fdbStale,
    ],
    unchanged: unchanged.n,
  };
}
