// Step 6, metrics: the IPAM usage gauges of the strand network, from the conflist the node-setup step
// wrote (the request-driven metrics are counted where they happen; health.ts serves them). The
// resync reads the IPAM store again only when its directory changed (every reservation is a file in
// it, written by rename) or the conflist did: an idle node's gauges cost one stat.
import { statSync } from 'node:fs';
import { storeDir } from '../../ipam/store.ts';
import type { Logger } from '../../log.ts';
import { buildConflist, NETWORK_NAME } from '../cni-conflist.ts';
import type { AgentConfig } from '../config.ts';
import { updateIpamGauges, type AgentMetrics } from '../metrics.ts';
import type { NodeSetupStep } from './node-setup.ts';
import type { PassContext, Step } from './step.ts';

export class IpamMetricsStep implements Step {
  readonly name = 'ipam-metrics';
  readonly inputs = ['local-pods', 'node-set-up', 'resync'] as const;
  private readonly config: AgentConfig;
  private readonly metrics: AgentMetrics;
  private readonly nodeSetup: NodeSetupStep;
  private readonly log: Logger;
  /** What the gauges were last computed from (the network's config and the store's mtime). */
  private lastRead: string | undefined;

  constructor(config: AgentConfig, metrics: AgentMetrics, nodeSetup: NodeSetupStep, log: Logger) {
    this.config = config;
    this.metrics = metrics;
    this.nodeSetup = nodeSetup;
    this.log = log;
  }

  ready(): string | undefined {
    return undefined;
  }

  pass(ctx: PassContext): void {
    if (!this.nodeSetup.written) return;
    const conflist = buildConflist(this.config, this.nodeSetup.conflistPlan);
    const strand = (conflist.plugins as Record<string, unknown>[])[0] as Record<string, unknown>;
    const network = { ...strand, name: conflist.name, cniVersion: conflist.cniVersion };
    const mtime = statSync(storeDir(this.config.ipamDataDir, NETWORK_NAME), { throwIfNoEntry: false })?.mtimeMs;
    // A change within the last second is not trusted to show in the mtime (two writes in one tick).
    const settled = mtime !== undefined && Date.now() - mtime > 1_000;
    const read = settled ? JSON.stringify([network, mtime]) : undefined;
    // Node set-up's result (the pod CIDR in the node state, which usePodCidr ranges read) reads again.
    if (read !== undefined && read === this.lastRead && !ctx.due.has('node-set-up')) return;
    const problems = updateIpamGauges(this.metrics, [network]);
    this.lastRead = problems.length === 0 ? read : undefined;
    for (const p of problems) this.log.debug({ network: p.network, problem: p.message }, 'IPAM usage not available');
  }
}
