// One ClusterNetworkPolicy tier's compiler: for each local pod, the rules of the tier's policies whose
// subject selects it (host-network pods are never subjects: the cluster view leaves them out), per
// direction, in evaluation order: policies by priority, then by name (the API leaves equal
// priorities to the implementation; by name is stable and visible), then rules in written order.
// Peers are the shared registry's (a namespaces or pods peer is a pods peer, networks are ipBlocks
// without excepts, nodes a nodes peer), so rules of any tier with the same peer share one set.
import { byText, portProtocol, type ClusterPod, type ClusterView } from '../cluster.ts';
import type { PeerRegistry } from '../peers.ts';
import { selectorMatches } from '../selector.ts';
import type { TierDirections, TierResult } from '../tier.ts';
import {
  PROTOCOLS,
  type ClusterNetworkPolicyObject,
  type CompiledRule,
  type Direction,
  type NamedPort,
} from '../types.ts';
import type { PolicyError, PolicyRef, PortRange, RuleRef } from '../types.ts';
import {
  parseClusterPolicy,
  type ClusterSubject,
  type ClusterTier,
  type ParsedClusterPolicy,
  type ParsedClusterRule,
} from './parse.ts';

/** Does the policy's subject select this pod (a pod-network pod of the view)? */
export function subjectSelects(subject: ClusterSubject, pod: ClusterPod, view: ClusterView): boolean {
  if (subject.kind === 'every-pod') return true;
  if (!selectorMatches(subject.namespaces, view.labelsOfNs(pod.namespace))) return false;
  return subject.kind === 'namespaces' || selectorMatches(subject.pods, pod.labels);
}

/** Evaluation order within a tier: priority, then name. */
export const byEvaluationOrder = (a: ParsedClusterPolicy, b: ParsedClusterPolicy): number =>
  a.priority - b.priority || byText(a.ref.name, b.ref.name);

/** The tier's policies in evaluation order, and every policy's errors (reported by the tier it sits in). */
export function tierPolicies(
  tier: ClusterTier,
  policies: readonly ClusterNetworkPolicyObject[],
): { parsed: ParsedClusterPolicy[]; errors: PolicyError[] } {
  const parsed = policies.map(parseClusterPolicy).filter((p) => p.tier === tier);
  parsed.sort(byEvaluationOrder);
  return { parsed, errors: parsed.flatMap((p) => p.errors) };
}

class ClusterRuleCompiler {
  private readonly registry: PeerRegistry;
  private readonly podIndependent = new Map<ParsedClusterRule, CompiledRule>();

  constructor(registry: PeerRegistry) {
    this.registry = registry;
  }

  compile(policy: ParsedClusterPolicy, rule: ParsedClusterRule, direction: Direction, pod: ClusterPod): CompiledRule {
    const shared = this.podIndependent.get(rule);
    if (shared) return shared;
    const compiled = this.compileFor(policy, rule, direction, pod);
    // Ingress named ports resolve on the subject pod itself: that rule is the pod's own.
    const perPod = direction === 'ingress' && rule.ports !== 'all' && rule.ports.some((p) => p.kind === 'named');
    if (!perPod) this.podIndependent.set(rule, compiled);
    return compiled;
  }

  private compileFor(
    policy: ParsedClusterPolicy,
    rule: ParsedClusterRule,
    direction: Direction,
    pod: ClusterPod,
  ): CompiledRule {
    const source: RuleRef = {
      ...policy.ref,
      direction,
      index: rule.index,
      ...(rule.name !== '' ? { ruleName: rule.name } : {}),
    };
    const base = { source, tier: policy.tier, priority: policy.priority, action: rule.action };
    if (rule.broken) return { ...base, peers: [], ports: [], namedPorts: [], broken: true };
    const peers =
      rule.peers === 'all' ? 'all' : [...new Set(rule.peers.map((m) => this.registry.peer(m)))].sort(byText);
    if (rule.ports === 'all') return { ...base, peers, ports: 'all', namedPorts: [] };
    const ranges = new Map<string, PortRange>();
    const addRange = (r: PortRange) => ranges.set(`${r.protocol} ${r.from} ${r.to}`, r);
    const names = new Set<string>();
    for (const p of rule.ports) {
      if (p.kind === 'range') addRange({ protocol: p.protocol, from: p.from, to: p.to });
      else if (direction === 'ingress') {
        // destinationNamedPort names a container port on the destination, here the subject pod,
        // whatever its protocol; a name the pod lacks matches nothing.
        for (const cp of pod.ports) {
          const protocol = portProtocol(cp.protocol);
          if (cp.name === p.name && protocol) addRange({ protocol, from: cp.containerPort, to: cp.containerPort });
        }
      } else names.add(p.name);
    }
    const namedPorts: string[] = [];
    if (names.size > 0) {
      // Egress: resolved on each destination pod the peer matches, in the container port's protocol.
      const named: NamedPort[] = PROTOCOLS.flatMap((protocol) =>
        [...names].sort(byText).map((name) => ({ protocol, name })),
      );
      for (const peer of peers === 'all' ? [undefined] : peers) namedPorts.push(this.registry.namedPorts(peer, named));
    }
    const sorted = [...ranges.values()].sort(
      (a, b) => byText(a.protocol, b.protocol) || a.from - b.from || a.to - b.to,
    );
    return { ...base, peers, ports: sorted, namedPorts: [...new Set(namedPorts)].sort(byText) };
  }
}

export function compileClusterPolicies(
  tier: ClusterTier,
  policies: readonly ClusterNetworkPolicyObject[],
  view: ClusterView,
  registry: PeerRegistry,
): TierResult {
  const { parsed, errors } = tierPolicies(tier, policies);
  const compiler = new ClusterRuleCompiler(registry);
  const pods = new Map<ClusterPod, TierDirections>();
  if (parsed.length === 0) return { pods, errors };
  for (const { pod } of view.localPods) {
    const out: TierDirections = {};
    for (const policy of parsed) {
      if (!subjectSelects(policy.subject, pod, view)) continue;
      for (const direction of ['ingress', 'egress'] as const) {
        // A policy with no rules in a direction does not affect it.
        const rules = policy[direction];
        if (rules.length === 0) continue;
        const d = (out[direction] ??= { isolatedBy: [], rules: [] });
        (d.isolatedBy as PolicyRef[]).push(policy.ref);
        for (const rule of rules) (d.rules as CompiledRule[]).push(compiler.compile(policy, rule, direction, pod));
      }
    }
    if (out.ingress || out.egress) pods.set(pod, out);
  }
  return { pods, errors };
}
