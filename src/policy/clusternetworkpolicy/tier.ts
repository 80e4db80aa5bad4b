// ClusterNetworkPolicy's two tiers of the pipeline: Admin before NetworkPolicy (order 100) and
// Baseline after it (order 300). In each, a pod's rules are those of the tier's policies whose subject
// selects it, in evaluation order (priority, then name, then rule order); the first that matches
// decides: Accept allows (no later tier is asked), Deny drops, Pass goes on to the next tier; none
// matching goes on too (fallthrough pass). After Baseline comes the default: allowed.
import type { PolicyTier } from '../tier.ts';
import type { CompiledRule, Direction, LocalPod, TierRules } from '../types.ts';
import { compileClusterPolicies, tierChanged } from './compile.ts';
import { clusterChainName, clusterRuleComment } from './names.ts';
import type { ClusterTier } from './parse.ts';

function clusterTier(tier: ClusterTier, order: number): PolicyTier {
  return {
    name: tier,
    order,
    fallthrough: 'pass',
    ordered: true,
    compile: (input, view, peers, memo) =>
      compileClusterPolicies(tier, input.clusterNetworkPolicies ?? [], view, peers, memo),
    changed: (was, now) => tierChanged(tier, was ?? [], now ?? []),
    attach: (pod: LocalPod, directions: TierRules) => {
      pod[tier] = { ...directions };
    },
    rulesOf: (pod: LocalPod, direction: Direction) => pod[tier]?.[direction],
    chainName: (pod, direction) => clusterChainName(tier, pod, direction),
    ruleComment: clusterRuleComment,
    commentMeaning: (rule: CompiledRule) => ({
      verdict: 'cnp',
      tier: rule.tier,
      priority: rule.priority,
      action: rule.action,
      rule: rule.source,
    }),
  };
}

export const adminTier: PolicyTier = clusterTier('admin', 100);
export const baselineTier: PolicyTier = clusterTier('baseline', 300);
