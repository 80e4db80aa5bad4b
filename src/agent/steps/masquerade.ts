// Step 4, the egress masquerade: pod traffic leaving the cluster CIDRs leaves with the node's address
// (masquerade.ts, through the injected nft client). Runs once the node is set up.
import type { ClusterNetwork } from '../cluster-network.ts';
import { describeError } from '../../k8s/client.ts';
import type { PassContext, Step } from './step.ts';

export class MasqueradeStep implements Step {
  readonly name = 'masquerade';
  readonly inputs = ['node-set-up', 'resync'] as const;
  private readonly network: ClusterNetwork;
  private problem: string | undefined;

  constructor(network: ClusterNetwork) {
    this.network = network;
  }

  ready(): string | undefined {
    return this.problem ? `egress masquerade not in place: ${this.problem}` : undefined;
  }

  async pass(ctx: PassContext): Promise<void> {
    if (!ctx.node) return;
    try {
      await this.network.reconcileEgress();
      this.problem = undefined;
    } catch (err) {
      this.problem = describeError(err);
      throw err;
    }
  }
}
