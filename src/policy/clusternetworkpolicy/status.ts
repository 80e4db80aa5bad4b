// What `strand status` says about ClusterNetworkPolicies, computed purely from the caches: how many
// per tier, which are reported (bad input, unsupported fields), and which pairs are ambiguous: same
// tier and priority, with subjects that select a common pod today (the API lets an implementation
// apply either first; Strand orders them by name, but an administrator should not rely on that).
import { byText, clusterView, podKey } from '../cluster.ts';
import type { CompileInput, PolicyError } from '../types.ts';
import { byEvaluationOrder, subjectSelects } from './compile.ts';
import { parseClusterPolicy, type ClusterTier } from './parse.ts';

export interface AmbiguousPriority {
  tier: ClusterTier;
  priority: number;
  /** The two policies, in the order Strand evaluates them (by name). */
  policies: readonly [string, string];
  /** How many pods both select, and the first few ("namespace/name", sorted). */
  sharedPods: number;
  examples: readonly string[];
}

export interface ClusterPolicyStatus {
  counts: Record<ClusterTier, number>;
  ambiguous: readonly AmbiguousPriority[];
  /** Policy name → the out-of-scope fields it uses (`domainNames`), whose rules fail closed. */
  unsupported: ReadonlyMap<string, readonly string[]>;
  errors: readonly PolicyError[];
}

const EXAMPLES = 3;

export function clusterPolicyStatus(
  input: Pick<CompileInput, 'namespaces' | 'pods' | 'clusterNetworkPolicies'>,
): ClusterPolicyStatus {
  const parsed = (input.clusterNetworkPolicies ?? []).map(parseClusterPolicy).sort(byEvaluationOrder);
  const view = clusterView({ nodeName: '', nodeAddresses: [], policies: [], ...input });
  const pods = [...view.podsByNs.values()].flat();
  const counts: Record<ClusterTier, number> = { admin: 0, baseline: 0 };
  const unsupported = new Map<string, readonly string[]>();
  for (const p of parsed) {
    counts[p.tier]++;
    if (p.unsupported.length > 0) unsupported.set(p.ref.name, p.unsupported);
  }
  const subjects = new Map(
    parsed.map((p) => [
      p,
      new Set(pods.filter((pod) => subjectSelects(p.subject, pod, view)).map((pod) => podKey(pod.namespace, pod.name))),
    ]),
  );
  const ambiguous: AmbiguousPriority[] = [];
  parsed.forEach((a, i) => {
    for (const b of parsed.slice(i + 1)) {
      if (a.tier !== b.tier || a.priority !== b.priority) continue;
      const other = subjects.get(b) ?? new Set<string>();
      const shared = [...(subjects.get(a) ?? [])].filter((k) => other.has(k)).sort(byText);
      if (shared.length === 0) continue;
      const policies: [string, string] = [a.ref.name, b.ref.name];
      ambiguous.push({
        tier: a.tier,
        priority: a.priority,
        policies,
        sharedPods: shared.length,
        examples: shared.slice(0, EXAMPLES),
      });
    }
  });
  return { counts, ambiguous, unsupported, errors: parsed.flatMap((p) => p.errors) };
}
