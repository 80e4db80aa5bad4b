// NetworkPolicy (networking.k8s.io/v1) as a tier of the pipeline: a pod selected by a policy of its
// namespace is isolated in that policy's directions and decided here (its allow rules accept, the
// rest drops, R4); a pod no policy selects has nothing from this tier and goes on to the next.
import type { PolicyTier } from '../tier.ts';
import { compileNetworkPolicies, prepareNetworkPolicies } from './compile.ts';
import { podChainName, ruleComment } from './names.ts';

export const networkPolicyTier: PolicyTier = {
  name: 'networkpolicy',
  order: 200,
  fallthrough: 'drop',
  ordered: false,
  compile: (input, view, peers, memo) => compileNetworkPolicies(input.policies, view, peers, memo),
  prepare: (input, slice) => prepareNetworkPolicies(input.policies, slice),
  // The model's own per-pod fields (LocalPod.ingress/egress) are NetworkPolicy's: the agent, the
  // counters and `strand explain` read them.
  attach: (pod, directions) => {
    if (directions.ingress) pod.ingress = directions.ingress;
    if (directions.egress) pod.egress = directions.egress;
  },
  rulesOf: (pod, direction) => pod[direction],
  chainName: podChainName,
  ruleComment,
  commentMeaning: (rule) => ({ verdict: 'allow', rule: rule.source }),
};
