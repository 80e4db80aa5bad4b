// What the agent tells `strand status` and `strand explain` about itself over its local socket
// (request {"v":1,"type":"inspect"}, pod-handshake.ts): a snapshot of what it knows and wants, so that
// the command line can compare it with what the kernel holds. Never served over the network: the
// socket is the state dir's agent.sock, mode 0600 (root only).
//
// The snapshot is built from the agent's caches on each request; the peers' desired routes,
// neighbours and FDB entries are computed by the same pure function the backends apply
// (datapath/desired.ts), from the same inputs the next pass would use, so "what the agent wants" is
// exactly what it would program. The command line validates the answer (src/cli/agent-query.ts).
import { NetlinkSocket } from '../kernel/index.ts';
import type { Logger } from '../log.ts';
import { strandVersion } from '../version.ts';
import { familyOf } from '../net/text.ts';
import { onTheLoop, underlayPrefixes } from '../datapath/datapath.ts';
import {
  desiredSteps,
  peersFromNodesSteps,
  vtepMacFor,
  vxlanDeviceName,
  type DatapathMode,
  type DesiredState,
  type Peer,
} from '../datapath/index.ts';
import { underlayIps } from './cluster-network.ts';
import type { AgentConfig } from './config.ts';
import { describeError } from '../k8s/client.ts';
import type { ResourceName } from '../k8s/informer.ts';
import type { Underlay } from './node-setup.ts';

export const INSPECT_VERSION = 1;

export type ApiConnectionState = 'connecting' | 'connected' | 'failing';

export interface InformerView {
  resource: ResourceName;
  /** The first list is in the cache. */
  synced: boolean;
  objects: number;
  state: ApiConnectionState;
  /** ISO times. */
  lastListAt?: string;
  lastEventAt?: string;
  lastErrorAt?: string;
  lastError?: string;
  /** Failed lists/watches since the last success. */
  failures: number;
}

export interface PolicySummary {
  policies: number;
  /** Pods on this node with compiled rules. */
  pods: number;
  lastProgrammingMs?: number;
  lastProgrammedAt?: string;
  lastNftFailure?: { at: string; message: string };
  clusterNetworkPolicies?: ClusterPolicySummary;
}

/** ClusterNetworkPolicies as the agent sees them (clusterPolicyStatus, cluster-policy-report.ts). */
export interface ClusterPolicySummary {
  /** The API serves them (the CRD is installed). */
  served: boolean;
  admin: number;
  baseline: number;
  /** Same tier and priority, subjects sharing pods: the order between them is Strand's (by name). */
  ambiguous: { tier: string; priority: number; policies: string[]; sharedPods: number; examples: string[] }[];
  /** Invalid or unsupported fields, each handled fail closed. */
  problems: { kind: 'invalid' | 'unsupported'; policy: string; field: string; reason: string }[];
}

export interface InspectSnapshot {
  v: 1;
  version: string;
  pid: number;
  startedAt: string;
  uptimeSeconds: number;
  ready: boolean;
  reasons: string[];
  lastPassAt?: string;
  api: { server: string; informers: InformerView[] };
  node: {
    name: string;
    backend: 'vxlan' | 'host-gw';
    podCIDRs: string[];
    clusterCIDRs: string[];
    bridge: string;
    vxlanDevice?: string;
    underlay?: { iface: string; addresses: string[]; mtu: number; offload: Record<string, number> };
    podMtu?: number;
    podOffload?: Record<string, number>;
    paths: { stateDir: string; cniConfDir: string; ipamDataDir: string };
  };
  datapath: {
    /** The inputs of desiredState: absent until the node is set up. */
    mode?: DatapathMode;
    underlayPrefixes: string[];
    peers: Peer[];
    unusable: { name?: string | undefined; reason: string }[];
    desired: DesiredState;
    lastReconcile?: {
      at: string;
      added: number;
      changed: number;
      removed: number;
      unchanged: number;
      problems: string[];
      durationMs: number;
    };
  };
  pods: { namespace: string; name: string; ips: string[]; hostVeth?: string; containerId?: string; source: string }[];
  policy?: PolicySummary;
}

/** Per informer: when it last listed, had an event, failed; kept from the informer hooks. */
export class ApiConnectionTracker {
  private readonly seen = new Map<
    ResourceName,
    {
      lastListAt?: number;
      lastEventAt?: number;
      lastErrorAt?: number;
      lastError?: string;
      failures: number;
      connected: boolean;
    }
  >();

  private entry(resource: ResourceName) {
    let e = this.seen.get(resource);
    if (!e) {
      e = { failures: 0, connected: false };
      this.seen.set(resource, e);
    }
    return e;
  }

  listed(resource: ResourceName): void {
    const e = this.entry(resource);
    e.lastListAt = Date.now();
    e.failures = 0;
    e.connected = true;
  }

  event(resource: ResourceName): void {
    const e = this.entry(resource);
    e.lastEventAt = Date.now();
    e.failures = 0;
    e.connected = true;
  }

  /** A watch (re)connected after a failure. */
  reconnected(resource: ResourceName): void {
    const e = this.entry(resource);
    e.failures = 0;
    e.connected = true;
  }

  failed(resource: ResourceName, err: unknown): void {
    const e = this.entry(resource);
    e.lastErrorAt = Date.now();
    e.lastError = describeError(err);
    e.failures++;
    e.connected = false;
  }

  view(resource: ResourceName, synced: boolean, objects: number): InformerView {
    const e = this.entry(resource);
    const out: InformerView = {
      resource,
      synced,
      objects,
      state: e.failures > 0 ? 'failing' : e.connected || synced ? 'connected' : 'connecting',
      failures: e.failures,
    };
    if (e.lastListAt !== undefined) out.lastListAt = new Date(e.lastListAt).toISOString();
    if (e.lastEventAt !== undefined) out.lastEventAt = new Date(e.lastEventAt).toISOString();
    if (e.lastErrorAt !== undefined) out.lastErrorAt = new Date(e.lastErrorAt).toISOString();
    if (e.lastError !== undefined) out.lastError = e.lastError;
    return out;
  }
}

/**
 * The policy part of the snapshot. `problem`: the enforcer's current reason its rules are not in the
 * kernel, if any; a failure at lastFailureAt without one was repaired by a later transaction.
 */
export function policySummary(
  policies: number,
  pods: number,
  programming: { lastProgrammed?: { ms: number; at: number }; lastFailureAt?: number },
  problem: string | undefined,
  cluster?: ClusterPolicySummary,
): PolicySummary {
  const s: PolicySummary = { policies, pods };
  if (cluster) s.clusterNetworkPolicies = cluster;
  const last = programming.lastProgrammed;
  if (last) {
    s.lastProgrammingMs = last.ms;
    s.lastProgrammedAt = new Date(last.at).toISOString();
  }
  if (programming.lastFailureAt !== undefined || problem) {
    s.lastNftFailure = {
      at: new Date(programming.lastFailureAt ?? Date.now()).toISOString(),
      message: problem ?? 'nft refused a policy transaction; a later one succeeded',
    };
  }
  return s;
}

/** What the snapshot is made of: the agent's state, read through this narrow view. */
export interface InspectSource {
  config: AgentConfig;
  startedAt: number;
  apiServer: string;
  readiness: { ready: boolean; reasons: string[] };
  lastPassAt: number | undefined;
  informers: InformerView[];
  podCidrs: string[] | undefined;
  underlay: Underlay | undefined;
  podMtu: number | undefined;
  podOffload: Record<string, number> | undefined;
  nodes: readonly unknown[];
  lastReconcile: InspectSnapshot['datapath']['lastReconcile'];
  pods: InspectSnapshot['pods'];
  policy: PolicySummary | undefined;
}

/** The datapath mode the backend runs with (as VxlanBackend.reconcile builds it). */
export function datapathMode(config: AgentConfig, underlay: Underlay): DatapathMode {
  if (config.backend === 'host-gw') return { kind: 'host-gw' };
  const endpoint = underlayIps(underlay)[0];
  return {
    kind: 'vxlan',
    directRouting: config.directRouting,
    vtepMac: vtepMacFor(config.nodeName),
    vtepFamily: endpoint !== undefined ? (familyOf(endpoint) ?? 4) : 4,
  };
}

export async function buildInspectSnapshot(src: InspectSource, log?: Logger): Promise<InspectSnapshot> {
  const c = src.config;
  const now = Date.now();
  // In slices, as the cluster network's pass reads them: at 5,000 nodes the peers and their desired
  // entries are 100-200 ms of work, which a `strand status` must not take from /healthz in one task.
  const { peers, unusable } = await onTheLoop(peersFromNodesSteps(src.nodes, c.nodeName));
  let prefixes: string[] = [];
  let mode: DatapathMode | undefined;
  if (src.underlay && src.podCidrs) {
    mode = datapathMode(c, src.underlay);
    const nl = NetlinkSocket.open();
    try {
      prefixes = underlayPrefixes(nl, src.underlay.name);
    } catch (err) {
      log?.debug({ err: describeError(err) }, 'inspect: could not read the underlay prefixes');
    } finally {
      nl.close();
    }
  }
  const desired: DesiredState =
    mode && src.podCidrs
      ? await onTheLoop(
          desiredSteps(
            {
              mode,
              local: { name: c.nodeName, podCidrs: src.podCidrs, serviceCidrs: c.serviceCIDRs },
              underlayPrefixes: prefixes,
            },
            peers,
          ),
        )
      : { routes: [], neighbours: [], fdb: [], problems: [] };
  const snap: InspectSnapshot = {
    v: INSPECT_VERSION,
    version: strandVersion,
    pid: process.pid,
    startedAt: new Date(src.startedAt).toISOString(),
    uptimeSeconds: Math.round((now - src.startedAt) / 1000),
    ready: src.readiness.ready,
    reasons: src.readiness.reasons,
    api: { server: src.apiServer, informers: src.informers },
    node: {
      name: c.nodeName,
      backend: c.backend,
      podCIDRs: src.podCidrs ?? [],
      clusterCIDRs: c.clusterCIDRs,
      bridge: c.bridge,
      paths: { stateDir: c.stateDir, cniConfDir: c.cniConfDir, ipamDataDir: c.ipamDataDir },
    },
    datapath: { underlayPrefixes: prefixes, peers, unusable, desired },
    pods: src.pods,
  };
  if (src.lastPassAt !== undefined) snap.lastPassAt = new Date(src.lastPassAt).toISOString();
  if (c.backend === 'vxlan') snap.node.vxlanDevice = vxlanDeviceName(c.vni);
  if (src.underlay) {
    snap.node.underlay = {
      iface: src.underlay.name,
      addresses: src.underlay.addresses,
      mtu: src.underlay.mtu,
      offload: { ...src.underlay.offload } as Record<string, number>,
    };
  }
  if (src.podMtu !== undefined) snap.node.podMtu = src.podMtu;
  if (src.podOffload) snap.node.podOffload = src.podOffload;
  if (mode) snap.datapath.mode = mode;
  if (src.lastReconcile) snap.datapath.lastReconcile = src.lastReconcile;
  if (src.policy) snap.policy = src.policy;
  return snap;
}
