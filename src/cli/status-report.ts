// Over 400 lines: one pure judgement of a node's whole status, finding by finding.
// `strand status`, the thinking (pure): from what was gathered (the agent's snapshot or why there is
// none, the files, the kernel's datapath), each peer's entries compared with what they should be,
// the findings, each naming the command or file that shows it, the verdict and its exit code and the
// text a person reads. The JSON's schema, and the report types inferred from it, are in
// status-report-schema.ts.
//
// Peers' entries: with the agent, its desired routes/neighbours/FDB (the backends' desiredState) are
// compared with the kernel's by the backends' own planChanges, so "in order" here means "the
// agent's next pass would change nothing". Without the agent there is no list of nodes: the peers
// are the kernel's Strand routes, and each is checked for the neighbour and FDB entry it needs.
import type { InspectSnapshot } from '../agent/inspect.ts';
import { planChanges, type ActualState, type Devices } from '../datapath/index.ts';
import { describeRouteEntry } from '../datapath/diff.ts';
import { backendOverhead } from '../datapath/mtu.ts';
import type { RangeSetUsage } from '../ipam/allocator.ts';
import type { NodeState } from '../contracts/node-state.ts';
import type {
  EntryCheck,
  EntryState,
  Finding,
  IpamNetworkStatus,
  LinkView,
  PeerStatus,
  StatusReport,
} from './status-report-schema.ts';
import { EXIT } from './output.ts';

export {
  statusReportSchema,
  type EntryCheck,
  type EntryState,
  type Finding,
  type IpamNetworkStatus,
  type LinkView,
  type PeerStatus,
  type StatusReport,
} from './status-report-schema.ts';

// ---- peers ------------------------------------------------------------------------------------------

const ROUTE_CMD = 'ip route show proto 83';

/** The agent's peers with their entries judged against the kernel's (planChanges on desired vs actual). */
export function checkPeersWithAgent(
  datapath: InspectSnapshot['datapath'],
  actual: ActualState,
  devices: Devices,
): { peers: PeerStatus[]; stale: EntryCheck[] } {
  const plan = planChanges(datapath.desired, actual, devices);
  const byPeer = new Map<string, EntryCheck[]>();
  const stale: EntryCheck[] = [];
  const wrong = new Map<string, EntryState>();
  for (const op of plan.ops) {
    if (op.peer === undefined) {
      stale.push({ object: op.object, detail: op.detail, state: 'extra' });
      continue;
    }
    const state: EntryState = op.action === 'add' ? 'missing' : op.action === 'replace' ? 'differs' : 'extra';
    if (op.action === 'delete') {
      const list = byPeer.get(op.peer) ?? [];
      list.push({ object: op.object, detail: op.detail, state });
      byPeer.set(op.peer, list);
    } else {
      wrong.set(`${op.object}\n${op.detail}`, state);
    }
  }
  const vx = devices.vxlan?.name ?? '?';
  const underlay = devices.underlay.name;
  const peers: PeerStatus[] = datapath.peers.map((p) => {
    const entries: EntryCheck[] = [];
    const add = (object: EntryCheck['object'], detail: string) =>
      entries.push({ object, detail, state: wrong.get(`${object}\n${detail}`) ?? 'ok' });
    for (const f of datapath.desired.fdb.filter((e) => e.peer === p.name))
      add('fdb', `${f.mac} dev ${vx} dst ${f.dst} self permanent`);
    for (const n of datapath.desired.neighbours.filter((e) => e.peer === p.name))
      add('neighbour', `${n.ip} lladdr ${n.mac} dev ${vx}`);
    for (const r of datapath.desired.routes.filter((e) => e.peer === p.name))
      add('route', describeRouteEntry(r.dst, r.gateway, r.dev === 'vxlan' ? vx : underlay, r.onlink));
    entries.push(...(byPeer.get(p.name) ?? []));
    return {
      name: p.name,
      podCIDRs: p.podCidrs,
      underlayIps: p.underlayIps,
      source: 'agent',
      entries,
      ok: entries.every((e) => e.state === 'ok') && entries.some((e) => e.object === 'route'),
    };
  });
  return { peers, stale };
}

/**
 * Without the agent: one peer per Strand route, with the neighbour entry its VTEP address needs and
 * the FDB entry that neighbour's MAC needs (VXLAN), as the backends install them.
 */
export function peersFromKernel(actual: ActualState, devices: Devices): PeerStatus[] {
  const vx = devices.vxlan;
  const out: PeerStatus[] = [];
  for (const r of actual.routes) {
    const entries: EntryCheck[] = [];
    const viaVxlan = vx !== undefined && r.oif === vx.index;
    const dev = viaVxlan ? vx.name : r.oif === devices.underlay.index ? devices.underlay.name : `#${r.oif ?? '?'}`;
    entries.push({ object: 'route', detail: describeRouteEntry(r.dst, r.gateway, dev, r.onlink), state: 'ok' });
    const underlayIps: string[] = [];
    if (viaVxlan && r.gateway !== undefined) {
      const n = actual.neighbours.find((x) => x.ip === r.gateway);
      if (!n || !n.permanent || n.mac === undefined) {
        entries.push({
          object: 'neighbour',
          detail: `${r.gateway} lladdr ? dev ${vx.name}`,
          state: n ? 'differs' : 'missing',
        });
      } else {
        entries.push({ object: 'neighbour', detail: `${n.ip} lladdr ${n.mac} dev ${vx.name}`, state: 'ok' });
        const f = actual.fdb.find((x) => x.mac === n.mac);
        if (!f || f.dst === undefined)
          entries.push({ object: 'fdb', detail: `${n.mac} dev ${vx.name} dst ? self permanent`, state: 'missing' });
        else {
          entries.push({ object: 'fdb', detail: `${f.mac} dev ${vx.name} dst ${f.dst} self permanent`, state: 'ok' });
          underlayIps.push(f.dst);
        }
      }
    } else if (r.gateway !== undefined) {
      underlayIps.push(r.gateway);
    }
    if (dev.startsWith('#')) entries[0]!.state = 'differs';
    out.push({ podCIDRs: [r.dst], underlayIps, source: 'kernel', entries, ok: entries.every((e) => e.state === 'ok') });
  }
  return out;
}

// ---- findings ---------------------------------------------------------------------------------------

export interface StatusInputs {
  socket: string;
  /** The pod bridge's name (the agent's, else the conflist's). */
  bridgeName: string;
  agent: { kind: 'answer'; value: InspectSnapshot } | { kind: 'not-running' | 'error'; message: string };
  nodeState: { path: string; state?: NodeState; error?: string };
  conflist: { path: string; ok: boolean; error?: string };
  kernel?: {
    underlay?: { iface: string; addresses: string[]; mtu: number; offload: Record<string, number> };
    vxlanDevice?: LinkView;
    bridge?: LinkView;
    /** The host ends of the pods' veths (the bridge's ports). */
    bridgePorts?: { name: string; mtu: number }[];
    actual: ActualState;
    devices?: Devices;
    /** Forwarding sysctls that are off (the backends' forwardingWarnings). */
    forwarding: string[];
  };
  kernelError?: string;
  ipam: IpamNetworkStatus[];
  unseen: string[];
}

/** deploy/strand.yaml: DaemonSet strand in kube-strand, container agent. */
const RESTART_HINT =
  "the agent's log: kubectl -n kube-strand logs <the node's strand pod> -c agent (or its --log-file)";

/** The backend's encapsulation overhead (datapath/mtu.ts) over the underlay's first address's family. */
function overheadFor(backend: string | undefined, underlayFirst: string | undefined): number {
  if (backend !== 'vxlan') return 0;
  return backendOverhead('vxlan', underlayFirst?.includes(':') ? 6 : 4);
}

export function usageOf(u: RangeSetUsage): IpamNetworkStatus['ranges'][number] {
  return {
    index: u.index,
    family: u.family,
    ranges: u.ranges,
    capacity: Number(u.capacity),
    used: u.used,
    free: Number(u.free),
  };
}

/** Everything judged: the report with its findings and verdict. */
export function judgeStatus(i: StatusInputs): StatusReport {
  const problems: Finding[] = [];
  const unseen = [...i.unseen];
  const problem = (message: string, see: string) => problems.push({ severity: 'problem', message, see });
  const warning = (message: string, see: string) => problems.push({ severity: 'warning', message, see });

  // The agent.
  const snap = i.agent.kind === 'answer' ? i.agent.value : undefined;
  const agent: StatusReport['agent'] = { running: i.agent.kind !== 'not-running', socket: i.socket };
  if (i.agent.kind === 'not-running') {
    problem(
      `the strand agent is not running on this node (${i.agent.message}): routes, node state and policy are not kept up to date`,
      RESTART_HINT,
    );
    unseen.push(
      "the nodes and pods the API holds (the agent is not running): peers are taken from the kernel's Strand routes",
    );
  } else if (i.agent.kind === 'error') {
    agent.error = i.agent.message;
    problem(`the strand agent does not answer as expected: ${i.agent.message}`, `${i.socket}; ${RESTART_HINT}`);
    unseen.push("the agent's view (its answer could not be read)");
  } else if (snap) {
    Object.assign(agent, {
      version: snap.version,
      pid: snap.pid,
      startedAt: snap.startedAt,
      uptimeSeconds: snap.uptimeSeconds,
      ready: snap.ready,
      reasons: snap.reasons,
      api: snap.api,
    });
    if (snap.lastPassAt) agent.lastPassAt = snap.lastPassAt;
    if (!snap.ready)
      for (const r of snap.reasons)
        problem(`the agent is not ready: ${r}`, `${RESTART_HINT}; GET /readyz on its health address`);
    for (const inf of snap.api.informers) {
      if (inf.state === 'failing')
        problem(
          `the API connection fails for ${inf.resource} (${inf.failures} attempts in a row${inf.lastError ? `: ${inf.lastError}` : ''})`,
          RESTART_HINT,
        );
    }
    for (const u of snap.datapath.unusable)
      warning(
        `node ${u.name ?? '(unnamed)'} is not a peer yet: ${u.reason}`,
        `kubectl get node ${u.name ?? ''} -o yaml`,
      );
    for (const p of snap.datapath.desired.problems)
      problem(p.message, p.peer ? `kubectl get node ${p.peer} -o yaml` : RESTART_HINT);
    for (const p of snap.datapath.lastReconcile?.problems ?? [])
      if (!snap.datapath.desired.problems.some((d) => d.message === p))
        problem(`the last pass reported: ${p}`, RESTART_HINT);
    if (snap.policy?.lastNftFailure)
      problem(
        `programming NetworkPolicy failed at ${snap.policy.lastNftFailure.at}: ${snap.policy.lastNftFailure.message}`,
        `nft list table inet strand; ${RESTART_HINT}`,
      );
    for (const f of clusterPolicyFindings(snap.policy?.clusterNetworkPolicies)) warning(f.message, f.see);
  }

  // The files.
  const ns = i.nodeState.state;
  if (!ns)
    problem(
      `node state ${i.nodeState.path}: ${i.nodeState.error ?? 'missing'}; the plugin cannot give pods addresses`,
      i.nodeState.path,
    );
  if (!i.conflist.ok)
    problem(
      `CNI configuration ${i.conflist.path}: ${i.conflist.error ?? 'missing'}; the runtime cannot start pods on this network`,
      i.conflist.path,
    );
  if (snap && ns && snap.node.podCIDRs.length > 0 && snap.node.podCIDRs.join() !== ns.podCIDRs.join()) {
    problem(
      `node state pod CIDRs ${ns.podCIDRs.join(', ')} differ from the Node's ${snap.node.podCIDRs.join(', ')}`,
      i.nodeState.path,
    );
  }

  // The node.
  const k = i.kernel;
  const node: StatusReport['node'] = {
    podCIDRs: snap?.node.podCIDRs ?? ns?.podCIDRs ?? [],
    clusterCIDRs: snap?.node.clusterCIDRs ?? ns?.clusterCIDRs ?? [],
    source: snap ? 'agent' : 'files',
  };
  const name = snap?.node.name ?? ns?.nodeName;
  if (name !== undefined) node.name = name;
  const backend = snap?.node.backend ?? ns?.backend;
  if (backend !== undefined) node.backend = backend;
  const podMtu = ns?.mtu ?? snap?.node.podMtu;
  if (podMtu !== undefined) node.podMtu = podMtu;
  const podOffload = (ns?.podOffload as Record<string, number> | undefined) ?? snap?.node.podOffload;
  if (podOffload) node.podOffload = podOffload;
  const underlay = k?.underlay ?? snap?.node.underlay;
  if (underlay) node.underlay = underlay;
  if (k?.vxlanDevice) node.vxlanDevice = k.vxlanDevice;
  if (k?.bridge) node.bridge = k.bridge;

  if (i.kernelError) {
    unseen.push(`the kernel's datapath: ${i.kernelError}`);
  } else if (k) {
    for (const f of k.forwarding) problem(f, 'sysctl net.ipv4.ip_forward net.ipv6.conf.all.forwarding');
    if (!k.bridge) {
      if (ns) problem(`the pod bridge ${i.bridgeName} does not exist`, 'ip -d link show type bridge');
    } else if (!k.bridge.up) problem(`the pod bridge ${k.bridge.name} is down`, `ip link show ${k.bridge.name}`);
    if (backend === 'vxlan') {
      if (!k.vxlanDevice)
        problem(
          `no VXLAN device${snap?.node.vxlanDevice ? ` ${snap.node.vxlanDevice}` : ''}: pods on other nodes are unreachable`,
          'ip -d link show type vxlan',
        );
      else if (!k.vxlanDevice.up)
        problem(`the VXLAN device ${k.vxlanDevice.name} is down`, `ip -d link show ${k.vxlanDevice.name}`);
    }
    // MTU: a pod MTU above what the underlay carries after encapsulation loses large packets
    // (PMTU discovery does not help inside the tunnel: the inner packet is already on its way).
    if (underlay && podMtu !== undefined) {
      const max = underlay.mtu - overheadFor(backend, underlay.addresses[0]);
      if (podMtu > max) {
        problem(
          `the pod MTU ${podMtu} is above what the underlay carries: ${underlay.iface} MTU ${underlay.mtu}${backend === 'vxlan' ? ` less ${underlay.mtu - max} bytes of VXLAN headers` : ''} = ${max}; large packets between nodes are dropped`,
          `ip link show ${underlay.iface}; ${i.nodeState.path} (mtu)`,
        );
      }
      if (k.vxlanDevice && k.vxlanDevice.mtu > max)
        problem(
          `the VXLAN device ${k.vxlanDevice.name} has MTU ${k.vxlanDevice.mtu}, above ${max} (${underlay.iface} ${underlay.mtu} less the headers)`,
          `ip link show ${k.vxlanDevice.name}`,
        );
      if (k.bridge && k.bridge.mtu > podMtu && k.bridge.mtu > max)
        problem(
          `the pod bridge ${k.bridge.name} has MTU ${k.bridge.mtu}, above the pod MTU ${podMtu}`,
          `ip link show ${k.bridge.name}`,
        );
      // Pods keep the MTU they were created with: after the underlay's MTU went down, the ones made
      // before send packets the path cannot carry until they are restarted.
      const big = (k.bridgePorts ?? []).filter((p) => p.mtu > max);
      if (big.length > 0) {
        const names = big
          .slice(0, 5)
          .map((p) => `${p.name} ${p.mtu}`)
          .join(', ');
        problem(
          `${big.length} pod interface${big.length > 1 ? 's have' : ' has'} an MTU above ${max}, what the underlay carries now (${names}${big.length > 5 ? ', …' : ''}): pods created before the MTU changed; restart them`,
          `ip link show master ${k.bridge?.name ?? 'cni0'}; strand ipam (which pod owns each veth)`,
        );
      }
    }
  }

  // The peers.
  let peers: PeerStatus[] = [];
  if (k?.devices) {
    if (snap) {
      const checked = checkPeersWithAgent(snap.datapath, k.actual, k.devices);
      peers = checked.peers;
      for (const s of checked.stale)
        problem(`the kernel holds a Strand ${s.object} no peer wants: ${s.detail}`, commandFor(s.object, k.devices));
    } else {
      peers = peersFromKernel(k.actual, k.devices);
    }
  } else if (snap && !i.kernelError) {
    unseen.push("the peers' entries in the kernel: the underlay interface was not found");
  }
  for (const p of peers) {
    for (const e of p.entries) {
      if (e.state === 'ok') continue;
      const who = p.name ? `node ${p.name}` : `pod CIDR ${p.podCIDRs.join(', ')}`;
      const what =
        e.state === 'missing'
          ? 'is missing from the kernel'
          : e.state === 'differs'
            ? 'differs in the kernel'
            : 'is in the kernel but not wanted';
      problem(
        `${who}: ${e.object} ${e.detail} ${what}${e.state === 'missing' && snap ? ' (the agent puts it back on its next pass, within 30 s)' : ''}`,
        k?.devices ? commandFor(e.object, k.devices) : ROUTE_CMD,
      );
    }
    if (
      p.source === 'agent' &&
      !p.entries.some((e) => e.object === 'route') &&
      !snap?.datapath.desired.problems.some((d) => d.peer === p.name)
    ) {
      problem(
        `node ${p.name}: no route wanted to its pod CIDRs ${p.podCIDRs.join(', ')}`,
        `kubectl get node ${p.name} -o yaml`,
      );
    }
  }

  // IPAM.
  for (const net of i.ipam) {
    if (net.error) {
      unseen.push(`IPAM usage of network ${net.network}: ${net.error}`);
      continue;
    }
    for (const r of net.ranges) {
      if (r.free === 0)
        problem(
          `IPAM range ${r.ranges} of network ${net.network} is exhausted: all ${r.capacity} addresses are reserved; new pods fail (look for leaked reservations: strand ipam)`,
          `strand ipam; ${net.dir}`,
        );
      else if (r.used / r.capacity >= 0.9)
        warning(
          `IPAM range ${r.ranges} of network ${net.network} is ${Math.round((100 * r.used) / r.capacity)} % used (${r.free} free)`,
          `strand ipam; ${net.dir}`,
        );
    }
  }

  if (snap && !snap.policy)
    unseen.push('NetworkPolicy programming: the agent reports none until it has synced with the API server');

  const report: StatusReport = {
    kind: 'StrandStatus',
    v: 1,
    verdict: 'healthy',
    node,
    agent,
    peers,
    ipam: i.ipam,
    problems,
    unseen,
  };
  if (snap?.policy) report.policy = snap.policy;
  // Not healthy when something is wrong; otherwise, cannot tell when the kernel could not be read.
  if (problems.some((p) => p.severity === 'problem')) report.verdict = 'unhealthy';
  else if (i.kernelError) report.verdict = 'unknown';
  return report;
}

function commandFor(object: EntryCheck['object'], devices: Devices): string {
  const vx = devices.vxlan?.name ?? 'strand.1';
  if (object === 'route') return ROUTE_CMD;
  if (object === 'neighbour') return `ip neigh show dev ${vx}`;
  return `bridge fdb show dev ${vx}`;
}

export function statusExitCode(r: StatusReport): number {
  return r.verdict === 'healthy' ? EXIT.ok : r.verdict === 'unhealthy' ? EXIT.not : EXIT.unknown;
}

// ---- text -------------------------------------------------------------------------------------------

function ago(iso: string | undefined, now: number): string {
  if (!iso) return 'never';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  return s < 120 ? `${s} s ago` : s < 7200 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
}

function duration(seconds: number): string {
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172_800) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86_400)} d`;
}

function sizes(o: Record<string, number> | undefined): string {
  if (!o) return '64 KiB (kernel default)';
  const e = Object.entries(o);
  return e.length === 0 ? '64 KiB (kernel default)' : e.map(([k, v]) => `${k} ${v}`).join(', ');
}

export function formatStatus(r: StatusReport, now = Date.now()): string {
  const out: string[] = [];
  const verdict = r.verdict === 'healthy' ? 'healthy' : r.verdict === 'unhealthy' ? 'NOT HEALTHY' : 'CANNOT TELL';
  out.push(`node ${r.node.name ?? '(unknown)'}: ${verdict}`);
  out.push('');
  const a = r.agent;
  if (!a.running) out.push(`agent      not running (${a.socket})`);
  else if (a.error) out.push(`agent      not answering: ${a.error}`);
  else {
    out.push(
      `agent      ${a.ready ? 'ready' : 'NOT READY'}, version ${a.version}, pid ${a.pid}, up ${duration(a.uptimeSeconds ?? 0)}, last pass ${ago(a.lastPassAt, now)}`,
    );
    for (const reason of a.reasons ?? []) out.push(`           not ready: ${reason}`);
    if (a.api) {
      out.push(`API        ${a.api.server}`);
      for (const inf of a.api.informers) {
        out.push(
          `           ${inf.resource.padEnd(16)}${inf.state.padEnd(11)}${String(inf.objects).padStart(6)} objects, listed ${ago(inf.lastListAt, now)}, last event ${ago(inf.lastEventAt, now)}${inf.lastError && inf.state === 'failing' ? `, error: ${inf.lastError}` : ''}`,
        );
      }
    }
  }
  const n = r.node;
  out.push(
    `node       backend ${n.backend ?? '?'}, pod CIDRs ${n.podCIDRs.join(', ') || '(none)'}, cluster CIDRs ${n.clusterCIDRs.join(', ') || '(none)'} (from ${n.source === 'agent' ? 'the agent' : 'the node state file'})`,
  );
  if (n.underlay)
    out.push(
      `underlay   ${n.underlay.iface} ${n.underlay.addresses.join(', ')}, MTU ${n.underlay.mtu}, GSO/GRO ${sizes(n.underlay.offload)}`,
    );
  out.push(
    `pods       MTU ${n.podMtu ?? '?'}, GSO/GRO ${sizes(n.podOffload)}${n.bridge ? `; bridge ${n.bridge.name} MTU ${n.bridge.mtu} ${n.bridge.up ? 'up' : 'DOWN'}` : ''}${n.vxlanDevice ? `; ${n.vxlanDevice.name} MTU ${n.vxlanDevice.mtu} ${n.vxlanDevice.up ? 'up' : 'DOWN'}` : ''}`,
  );
  out.push('');
  out.push(`peers (${r.peers.length}${r.peers[0]?.source === 'kernel' ? ", from the kernel's Strand routes" : ''})`);
  for (const p of r.peers) {
    const held = p.entries.filter((e) => e.state === 'ok').map((e) => e.object);
    out.push(
      `  ${p.ok ? 'ok  ' : 'BAD '} ${(p.name ?? '?').padEnd(14)} ${p.podCIDRs.join(', ').padEnd(18)} underlay ${(p.underlayIps.join(', ') || '?').padEnd(16)} in the kernel: ${held.join(', ') || 'nothing'}`,
    );
    for (const e of p.entries)
      if (e.state !== 'ok') out.push(`         ${e.state.toUpperCase()} ${e.object} ${e.detail}`);
  }
  out.push('');
  out.push('IPAM');
  for (const net of r.ipam) {
    if (net.error) out.push(`  ${net.network}: cannot read (${net.error})`);
    for (const rs of net.ranges)
      out.push(`  ${net.network} ${rs.ranges}: ${rs.used} used, ${rs.free} free of ${rs.capacity}`);
  }
  if (r.policy) {
    const p = r.policy;
    out.push('');
    out.push(
      `policy     ${p.policies} policies, ${p.pods} pods compiled${p.lastProgrammingMs !== undefined ? `, last programmed in ${p.lastProgrammingMs} ms ${ago(p.lastProgrammedAt, now)}` : ''}${p.lastNftFailure ? `, last nft failure ${ago(p.lastNftFailure.at, now)}: ${p.lastNftFailure.message}` : ''}`,
    );
    const c = p.clusterNetworkPolicies;
    if (c) {
      const detail = c.served ? `${c.admin} Admin, ${c.baseline} Baseline` : 'CRD not installed (none enforced)';
      const extra = [
        c.ambiguous.length > 0 ? `${c.ambiguous.length} ambiguous priorities` : '',
        c.problems.length > 0 ? `${c.problems.length} fields reported` : '',
      ];
      out.push(`           ClusterNetworkPolicies: ${[detail, ...extra.filter((e) => e !== '')].join(', ')}`);
    }
  }
  if (r.problems.length > 0) {
    out.push('');
    out.push('problems');
    for (const p of r.problems) out.push(`  ${p.severity === 'problem' ? '✗' : '!'} ${p.message}\n      see: ${p.see}`);
  }
  if (r.unseen.length > 0) {
    out.push('');
    out.push('could not see');
    for (const u of r.unseen) out.push(`  - ${u}`);
  }
  return `${out.join('\n')}\n`;
}

/** What `strand status` warns of about ClusterNetworkPolicies: overlapping equal priorities, and
 * fields the agent reports (each handled fail closed). */
function clusterPolicyFindings(
  c: NonNullable<StatusReport['policy']>['clusterNetworkPolicies'],
): { message: string; see: string }[] {
  if (!c) return [];
  const out: { message: string; see: string }[] = [];
  for (const a of c.ambiguous) {
    const [first, second] = a.policies;
    const pods = `${a.sharedPods} pods (${a.examples.join(', ')}${a.sharedPods > a.examples.length ? ', …' : ''})`;
    out.push({
      message: `ClusterNetworkPolicies ${first} and ${second} have the same ${a.tier} priority ${a.priority} and both select ${pods}: Strand applies ${first} first (by name); the API leaves this order open`,
      see: `kubectl get clusternetworkpolicy ${first} ${second} -o yaml (give them different priorities)`,
    });
  }
  for (const p of c.problems) {
    out.push({
      message: `ClusterNetworkPolicy ${p.policy}: ${p.kind} ${p.field}: ${p.reason}`,
      see: `kubectl get clusternetworkpolicy ${p.policy} -o yaml`,
    });
  }
  return out;
}
