// One ClusterNetworkPolicy tier's compiler: for each local pod, the rules of the tier's policies whose
// subject selects it (host-network pods are never subjects: the cluster view leaves them out), per
// direction, in evaluation order: policies by priority, then by name (the API leaves equal
// priorities to the implementation; by name is stable and visible), then rules in written order.
// Peers are the shared registry's (a namespaces or pods peer is a pods peer, networks are ipBlocks
// without excepts, nodes a nodes peer), so rules of any tier with the same peer share one set.
import { byText, portProtocol, type ClusterPod, type ClusterView, type Labels } from '../cluster.ts';
import { PeerRegistry } from '../peers.ts';
import { selectorMatches } from '../selector.ts';
import type { TierDirections, TierMemo, TierResult } from '../tier.ts';
import {
  PROTOCOLS,
  type ClusterNetworkPolicyObject,
  type CompiledRule,
  type Direction,
  type NamedPort,
  type PeerMeaning,
  type PolicyPodPort,
} from '../types.ts';
import type { PolicyError, PortRange, RuleRef } from '../types.ts';
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

/** subjectSelects, kept per pod object and subject while its namespace's labels are the same object:
 * a ClusterNetworkPolicy change asks again for every local pod and every policy of the tier. */
const selections = new WeakMap<ClusterPod, { ns: Labels; by: WeakMap<ClusterSubject, boolean> }>();
function selects(subject: ClusterSubject, pod: ClusterPod, view: ClusterView): boolean {
  const ns = view.labelsOfNs(pod.namespace);
  let memo = selections.get(pod);
  if (!memo || memo.ns !== ns) {
    memo = { ns, by: new WeakMap() };
    selections.set(pod, memo);
  }
  let hit = memo.by.get(subject);
  if (hit === undefined) {
    hit = subjectSelects(subject, pod, view);
    memo.by.set(subject, hit);
  }
  return hit;
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

/** The registry calls a policy's compiled rules made, kept to make them again when the rules are reused
 * (the registry is new at every compile; the ids are functions of what they name). */
interface Registrations {
  meanings: PeerMeaning[];
  namedPorts: { peer: string | undefined; ports: NamedPort[] }[];
}

/** One policy's rules compiled (for one subject pod's container ports when `perPod`), both directions. */
interface PolicyPart {
  policy: ParsedClusterPolicy;
  ingress: readonly CompiledRule[];
  egress: readonly CompiledRule[];
  registrations: Registrations;
}

interface PolicyParts {
  /** Ingress named ports resolve on the subject pod: the part depends on its container ports. */
  perPod: boolean;
  shared?: PolicyPart;
  byPorts: WeakMap<readonly PolicyPodPort[], PolicyPart>;
}

// Kept across compiles on the parsed policy (itself kept on the informer's object, parse.ts): an
// unchanged policy's compiled rules are the same objects at every compile, so the lists of the pods
// it selects can be too (below), and what renders them (flat-groups.ts) sees that nothing changed.
const partsOf = new WeakMap<ParsedClusterPolicy, PolicyParts>();

function compilePart(policy: ParsedClusterPolicy, pod: ClusterPod, registry: PeerRegistry): PolicyPart {
  const registrations: Registrations = { meanings: [], namedPorts: [] };
  const recorder: Registrar = {
    peer(meaning: PeerMeaning): string {
      registrations.meanings.push(meaning);
      return registry.peer(meaning);
    },
    namedPorts(peer: string | undefined, ports: NamedPort[]): string {
      registrations.namedPorts.push({ peer, ports });
      return registry.namedPorts(peer, ports);
    },
  };
  const rulesOf = (direction: Direction) =>
    policy[direction].map((rule) => compileRule(recorder, policy, rule, direction, pod));
  return { policy, ingress: rulesOf('ingress'), egress: rulesOf('egress'), registrations };
}

/** The policy's compiled rules for this subject pod: the kept ones when they do not depend on it. */
function partFor(policy: ParsedClusterPolicy, pod: ClusterPod, registry: PeerRegistry): PolicyPart {
  let parts = partsOf.get(policy);
  if (!parts) {
    const perPod = policy.ingress.some(
      (r) => !r.broken && r.ports !== 'all' && r.ports.some((p) => p.kind === 'named'),
    );
    parts = { perPod, byPorts: new WeakMap() };
    partsOf.set(policy, parts);
  }
  if (!parts.perPod) return (parts.shared ??= compilePart(policy, pod, registry));
  let part = parts.byPorts.get(pod.ports);
  if (!part) {
    part = compilePart(policy, pod, registry);
    parts.byPorts.set(pod.ports, part);
  }
  return part;
}

/** A pod's tier rules by the parts of the policies selecting it, in evaluation order: a pod selected by
 * the same parts as another pod, or as at the last compile, gets the very same object (so its LocalPod,
 * its rendered chains and its flat group's name are kept); kept while every part is alive. The node
 * also keeps what its parts registered, each meaning once: a compile registers a rule list's peers
 * once, not once per policy of it (100 CNPs of 25 rules: ~1,250 calls per tier and list otherwise). */
interface Interned {
  next: WeakMap<PolicyPart, Interned>;
  value?: TierDirections;
  registrations?: Registrations;
}
const interned: Interned = { next: new WeakMap() };
/** The node of a parts list (the very list while a pod's parts are unchanged: partsAfter). */
const nodes = new WeakMap<readonly PolicyPart[], Interned>();

function nodeOf(parts: readonly PolicyPart[]): Interned {
  const hit = nodes.get(parts);
  if (hit) return hit;
  let node = interned;
  for (const part of parts) {
    let next = node.next.get(part);
    if (!next) {
      next = { next: new WeakMap() };
      node.next.set(part, next);
    }
    node = next;
  }
  if (!node.value) {
    const out: TierDirections = {};
    for (const direction of ['ingress', 'egress'] as const) {
      // A policy with no rules in a direction does not affect it.
      const having = parts.filter((p) => p[direction].length > 0);
      if (having.length === 0) continue;
      out[direction] = { isolatedBy: having.map((p) => p.policy.ref), rules: having.flatMap((p) => p[direction]) };
    }
    node.value = out;
    node.registrations = unionOf(parts);
  }
  nodes.set(parts, node);
  return node;
}

/** The registrations of the parts, each peer and named-port set once (by id: the rules of 100 CNPs name
 * ~1,250 peer meanings, a few hundred distinct ones). */
function unionOf(parts: readonly PolicyPart[]): Registrations {
  const ids = new PeerRegistry();
  for (const part of parts) {
    for (const m of part.registrations.meanings) ids.peer(m);
    for (const n of part.registrations.namedPorts) ids.namedPorts(n.peer, n.ports);
  }
  const { meanings, namedPorts } = ids.registered;
  return {
    meanings: [...meanings.values()],
    namedPorts: [...namedPorts.values()].map((d) => ({ peer: d.peer, ports: d.ports })),
  };
}

type Registrar = Pick<PeerRegistry, 'peer' | 'namedPorts'>;

function compileRule(
  registry: Registrar,
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
  const peers = rule.peers === 'all' ? 'all' : [...new Set(rule.peers.map((m) => registry.peer(m)))].sort(byText);
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
    for (const peer of peers === 'all' ? [undefined] : peers) namedPorts.push(registry.namedPorts(peer, named));
  }
  const sorted = [...ranges.values()].sort((a, b) => byText(a.protocol, b.protocol) || a.from - b.from || a.to - b.to);
  return { ...base, peers, ports: sorted, namedPorts: [...new Set(namedPorts)].sort(byText) };
}

/**
 * Per subject pod (the view's object), the parts the last compile of its tier gave it, and from which
 * policies and namespace labels, in the tier's memo (the incremental compiler's; a whole compile has
 * none and asks every policy): a ClusterNetworkPolicy change asks only the policies that came or
 * went whether they select the pod (100 policies x every local pod otherwise).
 */
interface LastParts {
  ns: Labels;
  parsed: readonly ParsedClusterPolicy[];
  parts: readonly PolicyPart[];
}

/** The policies (parsed objects, kept while the informer's object is) that went and came, in order. */
interface Delta {
  gone: ReadonlySet<ParsedClusterPolicy>;
  came: readonly ParsedClusterPolicy[];
}
/** More policies in or out than this: every policy asked again. */
const DELTA_MAX = 16;

function deltaOf(was: readonly ParsedClusterPolicy[], now: readonly ParsedClusterPolicy[]): Delta | undefined {
  const before = new Set(was);
  const after = new Set(now);
  const gone = new Set<ParsedClusterPolicy>();
  for (const p of was) if (!after.has(p)) gone.add(p);
  const came = now.filter((p) => !before.has(p));
  return gone.size + came.length > DELTA_MAX ? undefined : { gone, came };
}

/** The pod's parts after the delta: the last ones without the policies gone, those that came and
 * select it merged in evaluation order. */
function partsAfter(
  last: readonly PolicyPart[],
  delta: Delta,
  pod: ClusterPod,
  view: ClusterView,
  registry: PeerRegistry,
): readonly PolicyPart[] {
  if (delta.gone.size === 0 && delta.came.length === 0) return last;
  // The very list when none of its policies went (one policy deleted: the pods it did not select).
  const kept =
    delta.gone.size === 0 || !last.some((p) => delta.gone.has(p.policy))
      ? last
      : last.filter((p) => !delta.gone.has(p.policy));
  const added: PolicyPart[] = [];
  for (const policy of delta.came) {
    if (!selects(policy.subject, pod, view)) continue;
    if (policy.ingress.length === 0 && policy.egress.length === 0) continue;
    added.push(partFor(policy, pod, registry));
  }
  // The very list when nothing of it changed: its interned node is found by one look-up (nodeOf).
  if (added.length === 0) return kept;
  const out: PolicyPart[] = [];
  let j = 0;
  for (const p of kept) {
    for (; j < added.length && byEvaluationOrder((added[j] as PolicyPart).policy, p.policy) < 0; j++)
      out.push(added[j] as PolicyPart);
    out.push(p);
  }
  for (; j < added.length; j++) out.push(added[j] as PolicyPart);
  return out;
}

/** Whether the tier's policies (parsed objects, kept while the informer's object is) differ between
 * two lists, in order: a change of the other tier's policies does not change this tier's. */
export function tierChanged(
  tier: ClusterTier,
  was: readonly ClusterNetworkPolicyObject[],
  now: readonly ClusterNetworkPolicyObject[],
): boolean {
  const ofTier = (list: readonly ClusterNetworkPolicyObject[]) =>
    list.map(parseClusterPolicy).filter((p) => p.tier === tier);
  const a = ofTier(was);
  const b = ofTier(now);
  return a.length !== b.length || a.some((p, i) => p !== b[i]);
}

/** The tier's policies of the last compile (by the members of its input list), in the tier's memo. */
const POLICIES = {};
interface LastPolicies {
  input: readonly ClusterNetworkPolicyObject[];
  result: { parsed: ParsedClusterPolicy[]; errors: PolicyError[] };
}

/** tierPolicies, the last result while the input list has the same members in the same order (a
 * change elsewhere, or a change of the other tier's policies, parses and sorts nothing again). */
function keptTierPolicies(
  tier: ClusterTier,
  policies: readonly ClusterNetworkPolicyObject[],
  memo: TierMemo | undefined,
): { parsed: ParsedClusterPolicy[]; errors: PolicyError[] } {
  const last = memo?.get(POLICIES) as LastPolicies | undefined;
  if (last && last.input.length === policies.length && last.input.every((p, i) => p === policies[i]))
    return last.result;
  const result = tierPolicies(tier, policies);
  // A copy: the caller may change its list in place.
  memo?.set(POLICIES, { input: [...policies], result } satisfies LastPolicies);
  return result;
}

export function compileClusterPolicies(
  tier: ClusterTier,
  policies: readonly ClusterNetworkPolicyObject[],
  view: ClusterView,
  registry: PeerRegistry,
  memo?: TierMemo,
): TierResult {
  const { parsed, errors } = keptTierPolicies(tier, policies, memo);
  const pods = new Map<ClusterPod, TierDirections>();
  if (parsed.length === 0) return { pods, errors };
  const registered = new Set<Interned>();
  const deltas = new Map<readonly ParsedClusterPolicy[], Delta | undefined>();
  for (const { pod } of view.localPods) {
    const ns = view.labelsOfNs(pod.namespace);
    const last = memo?.get(pod) as LastParts | undefined;
    let delta: Delta | undefined;
    if (last && last.ns === ns) {
      if (!deltas.has(last.parsed)) deltas.set(last.parsed, deltaOf(last.parsed, parsed));
      delta = deltas.get(last.parsed);
    }
    let parts: readonly PolicyPart[];
    if (delta && last) parts = partsAfter(last.parts, delta, pod, view, registry);
    else {
      const fresh: PolicyPart[] = [];
      for (const policy of parsed) {
        if (!selects(policy.subject, pod, view)) continue;
        if (policy.ingress.length === 0 && policy.egress.length === 0) continue;
        fresh.push(partFor(policy, pod, registry));
      }
      parts = fresh;
    }
    if (!(last && last.parts === parts && last.parsed === parsed && last.ns === ns))
      memo?.set(pod, { ns, parsed, parts } satisfies LastParts);
    if (parts.length === 0) continue;
    const node = nodeOf(parts);
    if (!registered.has(node)) {
      // This compile's registry resolves what the rules name, kept rules or new.
      registered.add(node);
      const r = node.registrations as Registrations;
      for (const m of r.meanings) registry.peer(m);
      for (const n of r.namedPorts) registry.namedPorts(n.peer, n.ports);
    }
    pods.set(pod, node.value as TierDirections);
  }
  return { pods, errors };
}
