// The kernel side of reconciliation: read the entries Strand owns, apply a plan, and the pieces both
// backends share (the underlay's segment, forwarding checks, leftover devices). Only Strand's
// entries are ever read as "actual": routes of the main table with STRAND_ROUTE_PROTOCOL, and
// neighbour and FDB entries of Strand's own VXLAN device.
import {
  addFdbEntry,
  addNeighbour,
  addRoute,
  deleteFdbEntry,
  deleteLink,
  deleteNeighbour,
  deleteRoute,
  isKernelError,
  listAddresses,
  listFdbEntries,
  listLinks,
  listNeighbours,
  listRoutes,
  readSysctl,
  replaceRoute,
  type NetlinkSocket,
  type RouteSpec,
} from '../kernel/index.ts';
import { formatCidr, networkOf, parseCidr } from '../net/ip.ts';
import { drainSliced, nextTurn } from '../util/sliced.ts';
import { desiredSteps, type DatapathMode, type DesiredInput } from './desired.ts';
import { planSteps, type ActualState, type Devices, type PlanOp } from './diff.ts';
import {
  STRAND_ROUTE_PROTOCOL,
  type Change,
  type LocalNode,
  type Problem,
  type ReconcileReport,
  type ReconcileWatch,
} from './types.ts';

const RT_TABLE_MAIN = 254;
const RTNH_F_ONLINK = 4;

/** Strand's VXLAN devices are named strand.<VNI>. */
export const VXLAN_DEVICE_PATTERN = /^strand\.(\d+)$/;

export function vxlanDeviceName(vni: number): string {
  return `strand.${vni}`;
}

export function emptyReport(): ReconcileReport {
  return { added: [], changed: [], removed: [], unchanged: 0, problems: [], durationMs: 0 };
}

/** Files a device or address change (its detail starts with the verb) under added, changed or removed. */
export function reportDeviceChange(report: ReconcileReport, change: Change): void {
  if (/^(create|add) /.test(change.detail)) report.added.push(change);
  else if (/^delete /.test(change.detail)) report.removed.push(change);
  else report.changed.push(change);
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Global addresses of the underlay interface as the prefixes they are on ("198.18.0.0/24"): the
 * layer-2 segment whose members can be next hops. Link-local IPv6 says nothing about reachability. */
export function underlayPrefixes(nl: NetlinkSocket, underlayIface: string): string[] {
  const out: string[] = [];
  for (const a of listAddresses(nl, { link: underlayIface })) {
    if (a.family === 6 && a.address.startsWith('fe80:')) continue;
    const c = parseCidr(a.cidr);
    const prefix = formatCidr(networkOf(c.bytes, c.prefixLength), c.prefixLength);
    if (!out.includes(prefix)) out.push(prefix);
  }
  return out;
}

/** The Strand entries the kernel holds now. */
export function readActual(nl: NetlinkSocket, devices: Devices): ActualState {
  const routes = listRoutes(nl, { table: RT_TABLE_MAIN })
    .filter((r) => r.protocol === STRAND_ROUTE_PROTOCOL)
    .map((r) => ({
      dst: r.dst,
      gateway: r.gateway,
      oif: r.oif,
      onlink: (r.flags & RTNH_F_ONLINK) !== 0,
      metric: r.metric,
    }));
  if (!devices.vxlan) return { routes, neighbours: [], fdb: [] };
  const neighbours = listNeighbours(nl, { link: devices.vxlan.index }).map((n) => ({
    ip: n.ip,
    mac: n.mac,
    permanent: n.permanent,
  }));
  const fdb = listFdbEntries(nl, { link: devices.vxlan.index })
    .filter((e) => e.self && e.permanent && e.master === undefined)
    .map((e) => ({ mac: e.mac, dst: e.dst }));
  return { routes, neighbours, fdb };
}

function routeSpec(op: Extract<PlanOp, { object: 'route' }>): RouteSpec {
  const spec: RouteSpec = { dst: op.dst, table: RT_TABLE_MAIN, protocol: STRAND_ROUTE_PROTOCOL };
  if (op.gateway !== undefined) spec.gateway = op.gateway;
  if (op.oif !== undefined) spec.oif = op.oif;
  if (op.onlink) spec.onlink = true;
  if (op.action === 'delete' && op.metric !== undefined) spec.metric = op.metric;
  return spec;
}

function applyOne(nl: NetlinkSocket, op: PlanOp, vxlanIndex: number | undefined): void {
  switch (op.object) {
    case 'route':
      if (op.action === 'add') addRoute(nl, routeSpec(op));
      else if (op.action === 'replace') replaceRoute(nl, routeSpec(op));
      // rtm_protocol in a delete matches only routes of that protocol (fib_table_delete,
      // ip6_route_del), so even a racing foreign route to the same prefix is safe.
      else deleteRoute(nl, routeSpec(op));
      return;
    case 'neighbour':
      if (vxlanIndex === undefined) throw new Error('no VXLAN device');
      if (op.action === 'delete') deleteNeighbour(nl, { link: vxlanIndex, ip: op.ip });
      else addNeighbour(nl, { link: vxlanIndex, ip: op.ip, mac: op.mac ?? '', state: 'permanent' }, { replace: true });
      return;
    case 'fdb':
      if (vxlanIndex === undefined) throw new Error('no VXLAN device');
      if (op.action === 'delete') {
        const spec =
          op.dst !== undefined ? { link: vxlanIndex, mac: op.mac, dst: op.dst } : { link: vxlanIndex, mac: op.mac };
        deleteFdbEntry(nl, spec);
      } else {
        addFdbEntry(nl, { link: vxlanIndex, mac: op.mac, dst: op.dst ?? '' }, { replace: true });
      }
      return;
  }
}

/** How long the operations may hold the event loop before they give it back (the agent's /healthz
 * answers within 100 ms: a first pass over 100 peers is ~300 requests, 100+ ms in one task). */
export const APPLY_SLICE_MS = 8;

/**
 * Applies the operations in order; one that fails becomes a problem and the rest still run. Every
 * APPLY_SLICE_MS it gives the event loop back (each operation is its own kernel request, so a slice
 * boundary splits nothing the kernel sees as one).
 */
export async function applyPlan(
  nl: NetlinkSocket,
  ops: readonly PlanOp[],
  vxlanIndex: number | undefined,
  report: ReconcileReport,
  slicing: { sliceMs?: number; breathe?: () => Promise<void> } = {},
): Promise<void> {
  const sliceMs = slicing.sliceMs ?? APPLY_SLICE_MS;
  const breathe = slicing.breathe ?? nextTurn;
  let sliceStart = performance.now();
  for (const [i, op] of ops.entries()) {
    if (i > 0 && performance.now() - sliceStart >= sliceMs) {
      await breathe();
      sliceStart = performance.now();
    }
    const change: Change = { object: op.object, detail: op.detail };
    if (op.peer !== undefined) change.peer = op.peer;
    try {
      applyOne(nl, op, vxlanIndex);
    } catch (err) {
      // Gone already (deleted by hand, or with its device): what a delete wanted.
      if (op.action === 'delete' && isKernelError(err, 'ESRCH', 'ENOENT')) {
        report.removed.push(change);
        continue;
      }
      const problem: Problem = { message: `${op.action} ${op.object} ${op.detail}: ${message(err)}` };
      if (op.object === 'route' && op.action === 'add' && isKernelError(err, 'EEXIST')) {
        problem.message = `route to ${op.dst} exists but was not installed by Strand (its protocol is not ${STRAND_ROUTE_PROTOCOL}); left alone, so ${op.peer !== undefined ? `node ${op.peer}'s` : 'these'} pods may be unreachable`;
      }
      if (op.peer !== undefined) problem.peer = op.peer;
      report.problems.push(problem);
      continue;
    }
    if (op.action === 'add') report.added.push(change);
    else if (op.action === 'replace') report.changed.push(change);
    else report.removed.push(change);
  }
}

/** Runs a generator of the agent's passes (peers, desired state, plan) to its end, giving the event
 * loop back every APPLY_SLICE_MS. */
export function onTheLoop<T>(steps: Generator<unknown, T>): Promise<T> {
  return drainSliced(steps, nextTurn, APPLY_SLICE_MS);
}

/**
 * Desired state, actual state, plan, apply: one level-based pass over the peer entries. The loop is
 * given back every APPLY_SLICE_MS in each phase and between them: at 5,000 peers the desired state
 * alone was one task of ~150 ms (the peers' addresses parsed and checked), the kernel's 15,000
 * entries read back and the plan against them tens of ms each.
 */
export async function reconcileEntries(
  nl: NetlinkSocket,
  mode: DatapathMode,
  local: LocalNode,
  devices: Devices,
  peers: Parameters<typeof desiredSteps>[1],
  report: ReconcileReport,
  watch?: ReconcileWatch,
): Promise<void> {
  const self: DesiredInput['local'] = {
    name: local.name,
    podCidrs: local.podCidrs,
    serviceCidrs: local.serviceCidrs ?? [],
  };
  const input = { mode, local: self, underlayPrefixes: underlayPrefixes(nl, local.underlayIface) };
  const desired = await onTheLoop(desiredSteps(input, peers));
  report.problems.push(...desired.problems);
  await nextTurn();
  watch?.owns({
    links: new Set(devices.vxlan ? [devices.underlay.index, devices.vxlan.index] : [devices.underlay.index]),
    entriesOn: devices.vxlan?.index,
    routes: new Set(desired.routes.map((r) => r.dst)),
  });
  const actual = readActual(nl, devices);
  await nextTurn();
  const plan = await onTheLoop(planSteps(desired, actual, devices));
  report.unchanged += plan.unchanged;
  // The drift watch reads its queue between the slices of the writes: at 5,000 peers they announce
  // 15,000 changes, more than its queue holds.
  const breathe = watch
    ? () => {
        watch.keepUp();
        return nextTurn();
      }
    : nextTurn;
  await applyPlan(nl, plan.ops, devices.vxlan?.index, report, { breathe });
  watch?.keepUp();
}

/** Deletes every Strand route (teardown). */
export function deleteStrandRoutes(nl: NetlinkSocket): Change[] {
  const out: Change[] = [];
  for (const r of listRoutes(nl, { table: RT_TABLE_MAIN })) {
    if (r.protocol !== STRAND_ROUTE_PROTOCOL) continue;
    const spec: RouteSpec = { dst: r.dst, table: RT_TABLE_MAIN, protocol: STRAND_ROUTE_PROTOCOL };
    if (r.oif !== undefined) spec.oif = r.oif;
    if (r.metric !== undefined) spec.metric = r.metric;
    try {
      deleteRoute(nl, spec);
      out.push({ object: 'route', detail: `${r.dst}${r.gateway !== undefined ? ` via ${r.gateway}` : ''}` });
    } catch (err) {
      if (!isKernelError(err, 'ESRCH')) throw err;
    }
  }
  return out;
}

/**
 * Deletes Strand VXLAN devices other than `keep`: what a previous configuration left (another VNI,
 * or VXLAN before a switch to host-gw). Their routes go with them.
 */
export function deleteLeftoverDevices(nl: NetlinkSocket, keep: string | undefined): Change[] {
  const out: Change[] = [];
  for (const link of listLinks(nl, { kind: 'vxlan' })) {
    if (link.name === keep || !VXLAN_DEVICE_PATTERN.test(link.name)) continue;
    try {
      deleteLink(nl, link.index);
      out.push({ object: 'device', detail: `${link.name} (left by an earlier configuration)` });
    } catch (err) {
      if (!isKernelError(err, 'ENODEV')) throw err;
    }
  }
  return out;
}

/** Forwarding must be on for a node to pass traffic between its pods and other nodes. The agent's
 * node set-up switches it on; the backend only says when it finds it off. */
export function forwardingWarnings(netns: string | undefined, podCidrs: readonly string[]): string[] {
  const opts = netns !== undefined ? { netns } : {};
  const out: string[] = [];
  const check = (key: string, family: number) => {
    try {
      if (readSysctl(key, opts).trim() !== '1')
        out.push(`${key} is not 1: pods on other nodes cannot reach this node's IPv${family} pods`);
    } catch (err) {
      out.push(`could not read ${key}: ${message(err)}`);
    }
  };
  if (podCidrs.some((c) => !c.includes(':'))) check('net.ipv4.ip_forward', 4);
  if (podCidrs.some((c) => c.includes(':'))) check('net.ipv6.conf.all.forwarding', 6);
  return out;
}
