// The policy layer's public entry: what the agent, the CLI, the tests and the benchmarks use. It only
// re-exports; no module inside src/policy imports it (so it can never close an import cycle).
//   compilePolicy(input)            → CompiledPolicy          the pipeline of tiers, compiled (pure)
//   renderPolicy(compiled, opts?)   → DesiredPolicyTable      the skeleton plus every tier's chains and sets
//   diffPolicy(prev, next)          → Transaction             minimal changes
//   fullBuildPolicy(next, actual)   → Transaction             replace all agent-pol-* objects
//   policyDrift(desired, actual)    → string[]                what a listed table lacks or has extra
//   evaluatePolicy(compiled, pkt)   → Verdict                 the tiers in order, over the model
//   evaluateNft(view, pkt, nodeIps) → NftVerdict              the same, over rendered objects
//   clusterPolicyStatus(caches)     → ClusterPolicyStatus     CNP counts per tier, ambiguous priorities
export type * from './types.ts';
export { PROTOCOLS } from './types.ts';
export { POLICY_PREFIX, stableId } from './names.ts';
export { compilePolicy } from './compile.ts';
export type { RenderOptions } from './render.ts';
export { renderPolicy, DENY_COMMENT, SELF_COMMENT, LOG_COMMENT } from './render.ts';
export { FORWARD_CHAIN, SKELETON, verdictMapName } from './skeleton.ts';
export { podChainName, ruleComment } from './networkpolicy/names.ts';
export { TIERS } from './pipeline.ts';
export type { PolicyTier } from './tier.ts';
export { diffPolicy, fullBuildPolicy, fullBuildPolicyAsync, policyDrift, tableStateOf } from './diff.ts';
export { evaluatePolicy } from './evaluate.ts';
export { evaluateNft, nftView } from './evaluate-nft.ts';
export { clusterChainName, clusterRuleComment } from './clusternetworkpolicy/names.ts';
export { clusterPolicyStatus } from './clusternetworkpolicy/status.ts';
export type { AmbiguousPriority, ClusterPolicyStatus } from './clusternetworkpolicy/status.ts';
export { parseClusterPolicy } from './clusternetworkpolicy/parse.ts';
export type { ClusterTier, ParsedClusterPolicy } from './clusternetworkpolicy/parse.ts';
