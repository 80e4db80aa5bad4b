// Step 6, metrics: the IPAM usage gauges of the strand network, from the conflist the node-setup step
// wrote (the request-driven metrics are counted where they happen; health.ts serves them).
import type { Logger } from '../../log.ts';
import { buildConflist } from '../cni-conflist.ts';
import type { AgentConfig } from '../config.ts';
import { updateIpamGauges, type AgentMetrics } from '../metrics.ts';
import type { NodeSetupStep } from './node-setup.ts';
import type { Step } from './step.ts';

export class IpamMetricsStep implements Step {
  readonly name = 'ipam-metrics';
  readonly inputs = ['local-pods', 'node-set-up', 'resync'] as const;
  private readonly config: AgentConfig;
  private readonly metrics: AgentMetrics;
  private readonly nodeSetup: NodeSetupStep;
  private readonly log: Logger;

  constructor(config: AgentConfig, metrics: AgentMetrics, nodeSetup: NodeSetupStep, log: Logger) {
    this.config = config;
    this.metrics = metrics;
    this.nodeSetup = nodeSetup;
    this.log = log;
  }

  ready(): string | undefined {
    return undefined;
  }

  pass(): void {
    if (!this.nodeSetup.written) return;
    const conflist = buildConflist(this.config, this.nodeSetup.conflistPlan);
    const strand = (conflist.plugins as Record<string, unknown>[])[0] as Record<string, unknown>;
    const problems = updateIpamGauges(this.metrics, [
      { ...strand, name: conflist.name, cniVersion: conflist.cniVersion },
    ]);
    for (const p of problems) this.log.debug({ network: p.network, problem: p.message }, 'IPAM usage not available');
  }
}
