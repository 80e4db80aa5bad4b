// Step 7, NetworkPolicy: the enforcer (policy/enforcer.ts) runs its own loop on NetworkPolicy, Pod and
// Namespace events and pod-start notices; of the node's events only this node's addresses matter to
// it (R11), so this step asks it for a pass when they change (node heartbeats would otherwise compile
// every policy every few seconds). Its readiness is the enforcer's: the rules are in the kernel.
import type { PolicyEnforcer } from '../policy/enforcer.ts';
import type { PassContext, Step } from './step.ts';

export class PolicyStep implements Step {
  readonly name = 'policy';
  readonly inputs = ['this-node', 'node-set-up', 'resync'] as const;
  private readonly enforcer: PolicyEnforcer;
  private readonly nodeAddresses: () => string[];
  private lastAddresses = '';

  constructor(enforcer: PolicyEnforcer, nodeAddresses: () => string[]) {
    this.enforcer = enforcer;
    this.nodeAddresses = nodeAddresses;
  }

  ready(): string | undefined {
    return this.enforcer.problem;
  }

  pass(ctx: PassContext): void {
    const addresses = this.nodeAddresses().sort().join();
    if (addresses === this.lastAddresses) return;
    this.lastAddresses = addresses;
    this.enforcer.request(ctx.now);
  }
}
