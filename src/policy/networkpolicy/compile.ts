// The NetworkPolicy tier's compiler: which local pods each policy selects (and so isolates, R3) in
// which direction, and their rules in policy order, then rule order (order is irrelevant to the
// verdict, R4). Only the policies that select a local pod are compiled beyond parsing, and only the
// peers their rules name are resolved, so the work per node follows its own pods, not the cluster's.
import { byText, type ClusterPod, type ClusterView } from '../cluster.ts';
import type { PeerRegistry } from '../peers.ts';
import { selectorMatches } from '../selector.ts';
import type { TierDirections, TierMemo, TierResult } from '../tier.ts';
import type { CompiledRule, NetworkPolicyObject, PolicyError, PolicyRef } from '../types.ts';
import { alignLists, copyInto } from '../incremental/align.ts';
import { parsePolicy, type ParsedPolicy } from './parse.ts';
import { RuleCompiler } from './rules.ts';

interface ByNamespace {
  byNs: Map<string, ParsedPolicy[]>;
  errors: PolicyError[];
}

/** The last grouping, kept while the policies are the same objects: the agent's passes, pod-start
 * binds and prepared binds each compile against the same policies many times between changes.
 * After a change it is updated where the policies that came and went are (issue 18: one policy
 * changed among 10,000 regroups one namespace). `members`: the set of `policies`. */
let lastGrouping:
  | { policies: NetworkPolicyObject[]; members: Set<NetworkPolicyObject>; result: ByNamespace }
  | undefined;
/** More policies in or out than this at once: grouped again whole. */
const REGROUP_MAX = 1000;

function samePolicies(a: readonly NetworkPolicyObject[], b: readonly NetworkPolicyObject[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Policies by namespace, each list sorted by name; every policy's errors are reported. */
function policiesByNamespace(policies: readonly NetworkPolicyObject[]): ByNamespace {
  const last = lastGrouping;
  if (last && samePolicies(last.policies, policies)) return last.result;
  const aligned = last && alignLists(last.policies, policies, last.members, REGROUP_MAX);
  let result: ByNamespace;
  let members: Set<NetworkPolicyObject>;
  if (last && aligned) {
    const changed = [...aligned.outs, ...aligned.ins].map(parsePolicy);
    const outs = new Set(aligned.outs.map(parsePolicy));
    const byNs = new Map(last.result.byNs);
    for (const ns of new Set(changed.map((p) => p.ref.namespace))) {
      const list = (byNs.get(ns) ?? []).filter((p) => !outs.has(p));
      for (const policy of aligned.ins) {
        const p = parsePolicy(policy);
        if (p.ref.namespace === ns) list.push(p);
      }
      if (list.length > 0)
        byNs.set(
          ns,
          list.sort((a, b) => byText(a.ref.name, b.ref.name)),
        );
      else byNs.delete(ns);
    }
    // The errors are every policy's in list order: the same while no policy with errors came or went.
    const errors = changed.some((p) => p.errors.length > 0) ? groupPolicies(policies).errors : last.result.errors;
    result = { byNs, errors };
    members = last.members; // the last grouping is replaced: its set is brought up to date
    for (const p of aligned.outs) members.delete(p);
    for (const p of aligned.ins) members.add(p);
  } else {
    result = groupPolicies(policies);
    members = new Set(policies);
  }
  lastGrouping = { policies: copyInto(last?.policies, policies), members, result }; // a copy: a caller may change its array in place
  return result;
}

function groupPolicies(policies: readonly NetworkPolicyObject[]): ByNamespace {
  const errors: PolicyError[] = [];
  const byNs = new Map<string, ParsedPolicy[]>();
  for (const raw of policies) {
    const p = parsePolicy(raw);
    errors.push(...p.errors);
    const list = byNs.get(p.ref.namespace) ?? [];
    list.push(p);
    byNs.set(p.ref.namespace, list);
  }
  for (const list of byNs.values()) list.sort((a, b) => byText(a.ref.name, b.ref.name));
  return { byNs, errors };
}

/** Policies parsed between two looks at the slice's time. */
const PREPARE_CHUNK = 25;

/**
 * What the tier's compile does with the policies alone, before the pods are listed (tier.ts prepare):
 * each policy parsed (parsePolicy's memo, on the object) and the grouping by namespace that the next
 * compile aligns with its own list. A policy replaced or deleted meanwhile leaves only entries keyed
 * by an object nothing holds any more. Not the peers' ids: a node's pods name ~a quarter of the
 * policies, and making every policy's ids was 0.18 s of CPU during the pods' list at 50,000 pods
 * for ~45 ms saved after it.
 */
export function* prepareNetworkPolicies(
  policies: readonly NetworkPolicyObject[],
  slice: () => Generator<void, void, void>,
): Generator<void, void, void> {
  for (let i = 0; i < policies.length; i++) {
    parsePolicy(policies[i] as NetworkPolicyObject);
    if (i % PREPARE_CHUNK === PREPARE_CHUNK - 1) yield* slice();
  }
  policiesByNamespace(policies);
}

/** The policies of the pod's namespace that select it (R3), per direction their policy types name. */
function isolationOf(pod: ClusterPod, policies: readonly ParsedPolicy[], rules: RuleCompiler): TierDirections {
  const directions: Record<'ingress' | 'egress', { isolatedBy: PolicyRef[]; rules: CompiledRule[] } | undefined> = {
    ingress: undefined,
    egress: undefined,
  };
  for (const policy of policies) {
    if (!selectorMatches(policy.podSelector, pod.labels)) continue;
    for (const direction of ['ingress', 'egress'] as const) {
      if (!policy[direction]) continue;
      const d = (directions[direction] ??= { isolatedBy: [], rules: [] });
      d.isolatedBy.push(policy.ref);
      const parsed = direction === 'ingress' ? policy.ingressRules : policy.egressRules;
      for (const rule of parsed) d.rules.push(rules.compile(policy, rule, direction, pod));
    }
  }
  const out: TierDirections = {};
  if (directions.ingress) out.ingress = directions.ingress;
  if (directions.egress) out.egress = directions.egress;
  return out;
}

export function compileNetworkPolicies(
  policies: readonly NetworkPolicyObject[],
  view: ClusterView,
  peers: PeerRegistry,
  memo?: TierMemo,
): TierResult {
  const { byNs, errors } = policiesByNamespace(policies);
  const rules = new RuleCompiler(peers, memo);
  const pods = new Map<ClusterPod, TierDirections>();
  for (const { pod } of view.localPods) {
    const directions = isolationOf(pod, byNs.get(pod.namespace) ?? [], rules);
    if (directions.ingress || directions.egress) pods.set(pod, directions);
  }
  return { pods, errors };
}
