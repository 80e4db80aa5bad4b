// Step 6, metrics: the IPAM usage gauges of the strand network, from the conflist the node-setup step
// wrote (the request-driven metrics are counted where they happen; health.ts serves them). The
// reservations are the ones the local-pods step read in the same pass (its reader reads a file again
// only when it changed), so the gauges are counted again only when the store's list, the network's
// configuration or node set-up's result moved: an idle node's gauges cost one stat.
import type { Logger } from '../../log.ts';
import { buildConflist } from '../cni-conflist.ts';
import type { AgentConfig } from '../config.ts';
import { ipamNetwork, setIpamGauges, type AgentMetrics, type IpamNetwork } from '../metrics.ts';
import type { LocalPodsStep } from './local-pods.ts';
import type { NodeSetupStep } from './node-setup.ts';
import type { PassContext, Step } from './step.ts';

export class IpamMetricsStep implements Step {
  readonly name = 'ipam-metrics';
  readonly inputs = ['local-pods', 'node-set-up', 'resync'] as const;
  private readonly config: AgentConfig;
  private readonly metrics: AgentMetrics;
  private readonly nodeSetup: NodeSetupStep;
  private readonly localPods: LocalPodsStep;
  private readonly log: Logger;
  /** The network resolved from its configuration (its text the key): usePodCidr reads the node state. */
  private network: { text: string; value: IpamNetwork } | undefined;
  /** What the gauges were last computed from (the network and the store's list version). */
  private lastRead: { network: IpamNetwork; version: number } | undefined;

  constructor(
    config: AgentConfig,
    metrics: AgentMetrics,
    nodeSetup: NodeSetupStep,
    localPods: LocalPodsStep,
    log: Logger,
  ) {
    this.config = config;
    this.metrics = metrics;
    this.nodeSetup = nodeSetup;
    this.localPods = localPods;
    this.log = log;
  }

  ready(): string | undefined {
    return undefined;
  }

  pass(ctx: PassContext): void {
    if (!this.nodeSetup.written) return;
    const conflist = buildConflist(this.config, this.nodeSetup.conflistPlan);
    const strand = (conflist.plugins as Record<string, unknown>[])[0] as Record<string, unknown>;
    const config = { ...strand, name: conflist.name, cniVersion: conflist.cniVersion };
    const text = JSON.stringify(config);
    // Node set-up's result (the pod CIDR in the node state, which usePodCidr ranges read) resolves
    // the ranges again, as does a network that could not be resolved before.
    if (this.network?.text !== text || ctx.due.has('node-set-up') || this.network.value.problem !== undefined) {
      this.network = { text, value: ipamNetwork(config) };
    }
    const network = this.network.value;
    const { reservations, version } = this.localPods.reservations(ctx);
    if (this.lastRead?.network === network && this.lastRead.version === version) return;
    const problems = setIpamGauges(this.metrics, [network], (dir) =>
      dir === this.localPods.storeDir ? reservations : undefined,
    );
    this.lastRead = problems.length === 0 ? { network, version } : undefined;
    for (const p of problems) this.log.debug({ network: p.network, problem: p.message }, 'IPAM usage not available');
  }
}
