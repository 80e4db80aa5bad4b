// The tiers of the policy pipeline, in evaluation order. A new kind of policy (an admin tier before
// NetworkPolicy, a baseline tier after it) is a folder with its PolicyTier and one entry here; the
// compiler, renderer and evaluators walk this list and need no change.
import { adminTier, baselineTier } from './clusternetworkpolicy/tier.ts';
import { networkPolicyTier } from './networkpolicy/tier.ts';
import type { PolicyTier } from './tier.ts';

export const TIERS: readonly PolicyTier[] = [adminTier, networkPolicyTier, baselineTier].sort(
  (a, b) => a.order - b.order,
);
