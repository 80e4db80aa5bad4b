// The contract of a tier of the policy pipeline (pipeline.ts lists them in evaluation order). A tier
// compiles its own kind of policy against the shared cluster view into per-pod rules that carry their
// action; the policy layer does the rest the same way for every tier: the skeleton's dispatch reaches
// each local pod's first tier chain, a tier's chain goes on to the pod's next tier's chain when its
// rules pass or all miss, and the evaluators walk the tiers in the same order.
import type { ClusterPod, ClusterView } from './cluster.ts';
import type { PeerRegistry } from './peers.ts';
import type {
  CommentMeaning,
  CompiledRule,
  CompileInput,
  Direction,
  LocalPod,
  PodDirection,
  PolicyError,
  RuleAction,
  RuleRef,
  TierName,
  TierRules,
} from './types.ts';

/** What a tier's prepare may read: the input but the pods (listed last, the longest list). */
export type PreparableInput = Pick<CompileInput, 'policies' | 'namespaces' | 'clusterNetworkPolicies'>;

/** What one tier says about one local pod: its rules per direction (absent: nothing to say). */

/** What a tier keeps between compiles of one compiler (PolicyTier.compile). */
export type TierMemo = WeakMap<object, unknown>;
export type TierDirections = TierRules;

export interface TierResult {
  /** Per local pod (the view's objects), the tier's rules; pods absent have nothing from this tier. */
  pods: ReadonlyMap<ClusterPod, TierDirections>;
  /** Bad input of this tier's policies (logged by the agent; the policy applied the safe way). */
  errors: readonly PolicyError[];
}

export interface PolicyTier {
  readonly name: TierName;
  /** Evaluation order of the tiers: lower first. */
  readonly order: number;
  /**
   * What a pod's traffic that no rule of this tier matched gets, when the tier has rules for the pod
   * in that direction: NetworkPolicy drops it (the pod is isolated, R4); an admin or baseline tier
   * passes it to the next tier.
   */
  readonly fallthrough: RuleAction;
  /**
   * true: the pod's rules are in evaluation order and the first that matches alone decides
   * (ClusterNetworkPolicy); false: they all accept and every one that matches is reported (NetworkPolicy).
   */
  readonly ordered: boolean;
  /**
   * `memo`: state the tier may keep between one compiler's compiles, keyed by the view's objects (the
   * incremental compiler gives each tier its own; a whole compile gives none and starts from nothing).
   */
  compile(input: CompileInput, view: ClusterView, peers: PeerRegistry, memo?: TierMemo): TierResult;
  /**
   * What of the tier's compile does not depend on the pods, done ahead (issue 18: the policies are
   * listed seconds before the pods at 50,000 pods, so the first compile finds it done): a step at a
   * time, `slice` between steps (it may give the event loop back). Only memoised results keyed by the
   * objects (a policy replaced or deleted meanwhile is a new key or none), so compile's answer is the
   * same with or without it.
   */
  prepare?(input: PreparableInput, slice: () => Generator<void, void, void>): Generator<void, void, void>;
  /**
   * Whether this tier's own policies differ between two inputs whose ClusterNetworkPolicy lists
   * differ (absent: they do). The incremental compiler compiles a tier again only when they do (or a
   * pod or its namespace's labels changed): an Admin CNP change leaves Baseline's pods as they were.
   */
  changed?(was: CompileInput['clusterNetworkPolicies'], now: CompileInput['clusterNetworkPolicies']): boolean;
  /** Where the compiled model keeps this tier's rules for a pod (compile.ts puts them there). */
  attach(pod: LocalPod, directions: TierDirections): void;
  rulesOf(pod: LocalPod, direction: Direction): PodDirection | undefined;
  /** The name of the pod's chain of this tier in one direction (under POLICY_PREFIX, nft's bare words). */
  chainName(pod: { namespace: string; name: string }, direction: Direction): string;
  /** The comment that names a rule in the table (for counters and explain). */
  ruleComment(rule: RuleRef): string;
  /** What that comment stands for in the rendered table's `comments`. */
  commentMeaning(rule: CompiledRule): CommentMeaning;
}
