// Pods across nodes, as one step of the agent's pass: the backend (VXLAN or host-gw) gets the whole
// list of peers on every pass and makes the kernel match it (src/agent/backends), and the egress
// masquerade is reconciled in Strand's nftables table (src/agent/masquerade.ts). Both are level
// based: what the kernel holds is compared with what the caches say, so a node deleted while the
// agent was down still loses its routes, neighbours and FDB entries on the next pass.
import { NetlinkSocket } from '../kernel/index.ts';
import type { Logger } from '../log.ts';
import { createNetlinkTransport } from '../nft/netlink/transport.ts';
import type { Nft } from '../nft/transport.ts';
import { emptyReport, onTheLoop } from '../datapath/datapath.ts';
import {
  createBackend,
  peersFromNodesSteps,
  type Backend,
  type LocalNode,
  type ReconcileReport,
} from '../datapath/index.ts';
import type { AgentConfig } from './config.ts';
import { DriftWatch } from '../datapath/drift-watch.ts';
import { reconcileMasquerade } from './masquerade.ts';
import type { Underlay } from './node-setup.ts';

/** How many of a reconcile's added, changed and removed entries its log line lists. */
const LOGGED_CHANGES = 20;
/**
 * The resync reads the kernel back at least this often even when rtnetlink announced no change
 * (drift-watch.ts): the check that the watch itself missed nothing, on the long timer of the policy's
 * periodic full compile. Its cost is the pass's (`strand status`, the step's metrics).
 */
export const FULL_READ_MS = 10 * 60_000;

export interface ClusterNetworkPass {
  /** The Node annotations this node must publish (strand.dev/…). */
  annotations: Record<string, string>;
  report: ReconcileReport;
  /** Nodes that could not be peers, with why. */
  unusable: { name?: string | undefined; reason: string }[];
  /** Nothing was read or changed: the peers are the last clean pass's (`report` is that pass's counts). */
  reused?: true;
}

/**
 * Whether `nodes` are the Node objects of `before`, in the same order, this node's own aside (the
 * informer replaces an object on every change it keeps, and drops heartbeats): the peers are then
 * the same.
 */
export function sameOtherNodes(before: readonly unknown[], nodes: readonly unknown[], nodeName: string): boolean {
  if (before.length !== nodes.length) return false;
  for (let i = 0; i < nodes.length; i++) {
    if (before[i] === nodes[i]) continue;
    if (nameOf(before[i]) !== nodeName || nameOf(nodes[i]) !== nodeName) return false;
  }
  return true;
}

function nameOf(node: unknown): unknown {
  return (node as { metadata?: { name?: unknown } } | undefined)?.metadata?.name;
}

/** The underlay addresses the backend uses: at most one per family, the underlay's first first. */
export function underlayIps(u: Underlay): string[] {
  const out: string[] = [];
  for (const a of u.addresses) if (!out.some((x) => x.includes(':') === a.includes(':'))) out.push(a);
  return out;
}

export class ClusterNetwork {
  private readonly config: AgentConfig;
  private readonly log: Logger;
  private socket: NetlinkSocket | undefined;
  private backend: Backend | undefined;
  private localKey = '';
  private annotations: Record<string, string> = {};
  private readonly nft: Nft;
  private readonly openNetlink: () => NetlinkSocket;
  private warnedNoClusterCidr = false;
  /** The problems of the last pass: each is logged when it appears and when it goes, not every pass. */
  private problems = new Set<string>();
  /** The last pass that met no problem: its inputs (the Node objects themselves), entries and unusable nodes. */
  private lastClean:
    | {
        localKey: string;
        nodes: readonly unknown[];
        entries: number;
        unusable: ClusterNetworkPass['unusable'];
        /** When it read the kernel. */
        readAt: number;
      }
    | undefined;
  /** rtnetlink's word on Strand's entries since the last clean pass; undefined where it cannot be had. */
  private watch: DriftWatch | undefined;
  private watchTried = false;
  private readonly openWatch: (netns: string | undefined) => DriftWatch;
  private readonly now: () => number;

  constructor(
    config: AgentConfig,
    log: Logger,
    nft: Nft = createNetlinkTransport(),
    openNetlink: () => NetlinkSocket = () => NetlinkSocket.open(),
    opts: { openWatch?: (netns: string | undefined) => DriftWatch; now?: () => number } = {},
  ) {
    this.config = config;
    this.log = log;
    this.nft = nft;
    this.openNetlink = openNetlink;
    this.openWatch = opts.openWatch ?? ((netns) => DriftWatch.open(netns));
    this.now = opts.now ?? Date.now;
  }

  /**
   * Whether the kernel may have lost or changed entries of the last clean pass (rtnetlink announced a
   * change to them): a forced pass repairs it. False before any clean pass (one is due anyway) and
   * where no watch could be had (the resync reads the kernel then).
   */
  kernelDrifted(): boolean {
    return this.lastClean !== undefined && this.watch?.drifted() === true;
  }

  private driftWatch(netns: string | undefined): DriftWatch | undefined {
    if (!this.watchTried) {
      this.watchTried = true;
      try {
        this.watch = this.openWatch(netns);
      } catch (err) {
        // Only an optimisation: without it every resync reads the kernel back.
        this.log.info({ err: String(err) }, 'no rtnetlink notifications: every resync reads the routes back');
      }
    }
    return this.watch;
  }

  /**
   * Sets the backend up when this node's underlay or pod CIDRs changed (it recreates what differs),
   * then reconciles the routes, neighbours and FDB entries of every other usable node. A pass whose
   * local node and other Node objects are those of the last clean pass stops there: at 5,000 nodes a
   * reconcile reads 15,000 entries back and plans against them (~300 ms of the agent's CPU and
   * ~60 MiB of garbage), and this node's own Node changing (its annotations published, its
   * conditions) asked for one each time. With `force` (the periodic resync, a drift announced) it
   * stops there only when rtnetlink announced no change to those entries since and the last read is
   * younger than FULL_READ_MS.
   */
  async reconcilePeers(
    nodeName: string,
    underlay: Underlay,
    podCidrs: string[],
    nodes: readonly unknown[],
    force = true,
  ): Promise<ClusterNetworkPass> {
    const c = this.config;
    this.socket ??= this.openNetlink();
    this.backend ??= createBackend(
      this.socket,
      c.backend === 'vxlan'
        ? { kind: 'vxlan', vni: c.vni, port: c.vxlanPort, directRouting: c.directRouting }
        : { kind: 'host-gw' },
    );
    const local: LocalNode = {
      name: nodeName,
      underlayIface: underlay.name,
      underlayIps: underlayIps(underlay),
      podCidrs,
      underlayMtu: underlay.mtu,
      serviceCidrs: c.serviceCIDRs,
    };
    const key = JSON.stringify(local);
    if (key !== this.localKey) {
      const setUp = this.backend.setUp(local);
      for (const w of setUp.warnings) this.log.warn({ backend: this.backend.kind }, w);
      if (setUp.changes.length > 0)
        this.log.info({ backend: this.backend.kind, changes: setUp.changes }, `${this.backend.kind} backend set up`);
      this.annotations = setUp.annotations;
      this.localKey = key;
    }
    const last = this.lastClean;
    if (
      last &&
      last.localKey === key &&
      sameOtherNodes(last.nodes, nodes, nodeName) &&
      (!force || (this.now() - last.readAt < FULL_READ_MS && this.watch !== undefined && !this.watch.drifted()))
    ) {
      return {
        annotations: this.annotations,
        report: { ...emptyReport(), unchanged: last.entries },
        unusable: last.unusable,
        reused: true,
      };
    }
    if (force && last && this.watch?.reason)
      this.log.info(
        { backend: this.backend.kind },
        `routes to other nodes: the kernel changed under them (${this.watch.reason}); reading them back`,
      );
    this.lastClean = undefined;
    // Read in slices: 5,000 Nodes were one task of 50-90 ms (with a collection) before the backend's own.
    const { peers, unusable } = await onTheLoop(peersFromNodesSteps(nodes, nodeName));
    const watch = this.driftWatch(this.socket.netns);
    watch?.reading(this.socket.port);
    const readAt = this.now();
    const report = await this.backend.reconcile(peers, watch);
    watch?.finished(report.problems.length === 0);
    if (report.problems.length === 0)
      this.lastClean = {
        localKey: key,
        nodes: [...nodes],
        entries: report.unchanged + report.added.length + report.changed.length,
        unusable,
        readAt,
      };
    const changed = report.added.length + report.changed.length + report.removed.length;
    if (changed > 0) {
      // The first LOGGED_CHANGES of each: a node joining 5,000 others adds 15,000 entries, which
      // made one log line of 1.5 MB (and a pause of the event loop to write it).
      const some = (xs: readonly unknown[]) => (xs.length > LOGGED_CHANGES ? xs.slice(0, LOGGED_CHANGES) : xs);
      this.log.info(
        {
          backend: this.backend.kind,
          peers: peers.length,
          added: some(report.added),
          changed: some(report.changed),
          removed: some(report.removed),
          ...([report.added, report.changed, report.removed].some((xs) => xs.length > LOGGED_CHANGES)
            ? { listed: `the first ${LOGGED_CHANGES} of each` }
            : {}),
          ms: report.durationMs,
        },
        `routes to other nodes: ${report.added.length} added, ${report.changed.length} changed, ${report.removed.length} removed`,
      );
    }
    const now = new Set<string>();
    for (const p of report.problems) {
      now.add(p.message);
      if (this.problems.has(p.message)) continue;
      this.log.warn({ peer: p.peer, ...(p.overlaps ? { overlaps: p.overlaps } : {}) }, p.message);
    }
    for (const m of this.problems) if (!now.has(m)) this.log.info(`resolved: ${m}`);
    this.problems = now;
    return { annotations: this.annotations, report, unusable };
  }

  /** Pod traffic leaving the cluster CIDRs leaves with the node's address; pod to pod keeps its own. */
  async reconcileEgress(): Promise<void> {
    const cidrs = this.config.clusterCIDRs;
    if (cidrs.length === 0) {
      if (!this.warnedNoClusterCidr) {
        this.warnedNoClusterCidr = true;
        this.log.warn('no --cluster-cidr: pod traffic leaving the cluster is not masqueraded');
      }
      return;
    }
    const r = await reconcileMasquerade(this.nft, { clusterCidrs: cidrs });
    if (r.changed) this.log.info({ clusterCIDRs: cidrs }, 'egress masquerade updated');
  }

  close(): void {
    this.socket?.close();
    this.socket = undefined;
    this.watch?.close();
    this.watch = undefined;
    this.watchTried = false;
  }
}
