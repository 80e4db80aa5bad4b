// Step 3, the cluster network: this node's VXLAN device or host-gw set-up, its strand.dev/ annotations
// (published by the node-publication step), and the routes, neighbours and FDB entries to every other
// node (cluster-network.ts and the backends). Ready once the first pass put the routes in place.
import type { Logger } from '../../log.ts';
import type { ClusterNetwork } from '../cluster-network.ts';
import type { AgentConfig } from '../config.ts';
import type { InspectSnapshot } from '../inspect.ts';
import type { AgentMetrics } from '../metrics.ts';
import { describeError } from '../../k8s/client.ts';
import { type ClusterCache } from '../../k8s/cluster-cache.ts';
import { nodePodCidrs } from '../node-addresses.ts';
import type { NodeSetupStep } from './node-setup.ts';
import type { NodePublicationStep } from './node-publication.ts';
import type { PassContext, Step } from './step.ts';

export interface ClusterNetworkStepOptions {
  config: AgentConfig;
  network: ClusterNetwork;
  nodeSetup: NodeSetupStep;
  publication: NodePublicationStep;
  cache: Pick<ClusterCache, 'nodes'>;
  log: Logger;
  metrics?: Pick<AgentMetrics, 'podCidrConflicts'>;
  /** The routes are in place for the first time. */
  onReady: () => void;
  /** A reconcile added, changed or removed this many entries (routes, neighbours, FDB entries). */
  onReconciled?: (entries: number) => void;
}

export class ClusterNetworkStep implements Step {
  readonly name = 'cluster-network';
  readonly inputs = ['this-node', 'other-nodes', 'node-set-up', 'kernel-drift', 'resync'] as const;
  private readonly opts: ClusterNetworkStepOptions;
  /** Routes to the other nodes are in place (the first pass succeeded). */
  routesReady = false;
  lastReconcile: InspectSnapshot['datapath']['lastReconcile'];
  private problem: string | undefined;
  private unusablePeers = '';

  constructor(opts: ClusterNetworkStepOptions) {
    this.opts = opts;
  }

  ready(): string | undefined {
    return this.routesReady
      ? undefined
      : `routes to other nodes not set up yet${this.problem ? `: ${this.problem}` : ''}`;
  }

  async pass(ctx: PassContext): Promise<void> {
    const { node } = ctx;
    const underlay = this.opts.nodeSetup.underlay;
    if (!node || !underlay) return;
    const pod = nodePodCidrs(node);
    if ('problem' in pod) return;
    const { config, log } = this.opts;
    let pass: Awaited<ReturnType<ClusterNetwork['reconcilePeers']>>;
    try {
      // The periodic resync and an announced drift read the kernel unless rtnetlink said nothing of
      // Strand's changed (cluster-network.ts); an event, only when peers did.
      pass = await this.opts.network.reconcilePeers(
        config.nodeName,
        underlay,
        pod.cidrs,
        this.opts.cache.nodes.list(),
        ctx.due.has('resync') || ctx.due.has('kernel-drift'),
      );
    } catch (err) {
      this.problem = describeError(err);
      throw err;
    }
    this.problem = undefined;
    // The last reconcile stands (strand status shows it): nothing was read or changed.
    if (pass.reused) {
      this.opts.publication.annotate(node, pass.annotations);
      return;
    }
    const r = pass.report;
    this.lastReconcile = {
      at: new Date(ctx.now).toISOString(),
      added: r.added.length,
      changed: r.changed.length,
      removed: r.removed.length,
      unchanged: r.unchanged,
      problems: r.problems.map((p) => p.message),
      durationMs: Math.round(r.durationMs * 100) / 100,
    };
    this.opts.onReconciled?.(r.added.length + r.changed.length + r.removed.length);
    this.opts.metrics?.podCidrConflicts.set(new Set(r.problems.filter((p) => p.overlaps).map((p) => p.peer)).size);
    this.opts.publication.annotate(node, pass.annotations);
    const unusable = pass.unusable.map((u) => `${u.name ?? '(unnamed)'}: ${u.reason}`).join('; ');
    if (unusable !== this.unusablePeers) {
      this.unusablePeers = unusable;
      // A node whose agent has not published its annotations yet is normal for a moment.
      if (unusable) log.info({ unusable: pass.unusable }, `nodes not reachable as peers yet: ${unusable}`);
    }
    if (!this.routesReady) {
      this.routesReady = true;
      log.info({ backend: config.backend, peers: r.unchanged + r.added.length }, 'routes to other nodes in place');
      this.opts.onReady();
    }
  }

  /** rtnetlink announced a change to the entries of the last clean pass (a forced pass repairs it). */
  drifted(): boolean {
    return this.routesReady && this.opts.network.kernelDrifted();
  }

  close(): void {
    this.opts.network.close();
  }
}
