// The compiler: the agent's caches (namespaces, pods, policies) and this node's name and addresses to
// this node's desired policy for its local pods (model.ts, CompiledPolicy). Pure and deterministic.
//
// Which pods count (R17 option b, R16):
//   - host-network pods are neither targets nor selector peers: their traffic is their node's, which
//     policies reach with an ipBlock of the node's address;
//   - finished pods (phase Succeeded or Failed) are neither: their address may already be another
//     pod's;
//   - a pod without addresses matches nothing, except a local pod whose addresses the plugin already
//     told the agent (extraPodIps): it is isolated before the kubelet reports them.
// Only the policies that select a local pod are compiled beyond parsing, and only the peers their
// rules name are resolved, so the work per node follows its own pods, not the cluster's size.
import { stableId } from './names.ts';
import type { PodInfo, PodPort } from '../agent/kube.ts';
import { addressValue, canonicalAddress, familyOf, intervalToPrefixes, subtract, cidrInterval, type Interval } from './cidr.ts';
import type {
  CompiledPolicy,
  CompiledRule,
  CompileInput,
  Direction,
  LocalPod,
  NamedPort,
  NamedPortElement,
  NamedPortSet,
  PeerMeaning,
  PeerSet,
  PodDirection,
  PolicyError,
  PolicyRef,
  PortRange,
  Protocol,
} from './model.ts';
import { parsePolicy, type ParsedPolicy, type ParsedRule } from './parse.ts';
import { selectorMatches } from './selector.ts';

/** The label the control plane puts on every namespace (R8); added here where a cache lacks it. */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

/** A pod-network pod of the cluster, as the compiler uses it. */
interface ClusterPod {
  namespace: string;
  name: string;
  labels: Readonly<Record<string, string>>;
  ips: string[];
  ports: readonly PodPort[];
  local: boolean;
}

const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const podKey = (ns: string, name: string) => `${ns}/${name}`;

const CANONICAL_V4 = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

function canonicalIps(ips: readonly string[]): string[] {
  const out = new Set<string>();
  for (const ip of ips) {
    // Most addresses are dotted quads already written the one way: no parse needed.
    const c = CANONICAL_V4.test(ip) ? ip : canonicalAddress(ip);
    if (c !== undefined) out.add(c);
  }
  return [...out].sort(byText);
}

/** Peer ids, memoised on the parsed (and itself memoised) meaning. */
const peerIds = new WeakMap<PeerMeaning, string>();

/** A pod's status addresses and container ports, memoised on the informer's object (replaced on change). */
const podFacts = new WeakMap<PodInfo, { ips: string[]; ports: PodPort[] }>();
function factsOf(pod: PodInfo): { ips: string[]; ports: PodPort[] } {
  let f = podFacts.get(pod);
  if (!f) {
    f = { ips: canonicalIps(pod.status.podIPs.map((p) => p.ip)), ports: pod.spec.containers.flatMap((c) => c.ports) };
    podFacts.set(pod, f);
  }
  return f;
}

export function compilePolicy(input: CompileInput): CompiledPolicy {
  const warnings: string[] = [];
  const nodeAddresses = canonicalIps(input.nodeAddresses);

  // Namespaces' labels, with the name label R8 promises.
  const nsLabels = new Map<string, Readonly<Record<string, string>>>();
  for (const ns of input.namespaces) {
    nsLabels.set(ns.metadata.name, { ...ns.metadata.labels, [NAMESPACE_NAME_LABEL]: ns.metadata.labels?.[NAMESPACE_NAME_LABEL] ?? ns.metadata.name });
  }

  // Pod-network pods by namespace, sorted by name.
  const podsByNs = new Map<string, ClusterPod[]>();
  const fromNotice = new Set<string>();
  for (const pod of input.pods) {
    if (pod.spec.hostNetwork) continue; // R17 (b)
    if (pod.status.phase === 'Succeeded' || pod.status.phase === 'Failed') continue;
    const namespace = pod.metadata.namespace ?? '';
    const name = pod.metadata.name;
    const local = pod.spec.nodeName === input.nodeName;
    const extra = local ? input.extraPodIps?.get(podKey(namespace, name)) : undefined;
    const facts = factsOf(pod);
    const ips = extra && extra.length > 0 ? canonicalIps([...facts.ips, ...extra]) : facts.ips;
    if (ips.length === 0) continue;
    if (extra && extra.length > 0) fromNotice.add(podKey(namespace, name));
    const ports = facts.ports;
    const list = podsByNs.get(namespace) ?? [];
    list.push({ namespace, name, labels: pod.metadata.labels ?? {}, ips, ports, local });
    podsByNs.set(namespace, list);
  }
  for (const list of podsByNs.values()) list.sort((a, b) => byText(a.name, b.name));
  const namespaceNames = [...new Set([...nsLabels.keys(), ...podsByNs.keys()])].sort(byText);
  const labelsOfNs = (ns: string) => nsLabels.get(ns) ?? { [NAMESPACE_NAME_LABEL]: ns };

  // Policies by namespace, sorted by name; every policy's errors are reported.
  const errors: PolicyError[] = [];
  const policiesByNs = new Map<string, ParsedPolicy[]>();
  for (const raw of input.policies) {
    const p = parsePolicy(raw);
    errors.push(...p.errors);
    const list = policiesByNs.get(p.ref.namespace) ?? [];
    list.push(p);
    policiesByNs.set(p.ref.namespace, list);
  }
  for (const list of policiesByNs.values()) list.sort((a, b) => byText(a.ref.name, b.ref.name));

  // Local pods; an address can be one pod's only (a verdict map key has one value). Two local pods
  // with one address is a race of a finished pod with its successor: the one the plugin told the
  // agent about wins, else the first by name.
  const localPods: ClusterPod[] = [];
  for (const ns of [...podsByNs.keys()].sort(byText)) for (const p of podsByNs.get(ns) ?? []) if (p.local) localPods.push(p);
  const owner = new Map<string, ClusterPod>();
  for (const p of [...localPods].sort((a, b) => Number(fromNotice.has(podKey(b.namespace, b.name))) - Number(fromNotice.has(podKey(a.namespace, a.name))))) {
    for (const ip of p.ips) {
      const other = owner.get(ip);
      if (other === undefined) owner.set(ip, p);
      else warnings.push(`local pods ${podKey(other.namespace, other.name)} and ${podKey(p.namespace, p.name)} both have address ${ip}: it is ${podKey(other.namespace, other.name)}'s`);
    }
  }

  const peerMeanings = new Map<string, PeerMeaning>();
  const namedPortDefs = new Map<string, { peer?: string; ports: NamedPort[] }>();
  const peerId = (m: PeerMeaning): string => {
    let id = peerIds.get(m);
    if (id === undefined) {
      id = stableId(m);
      peerIds.set(m, id);
    }
    peerMeanings.set(id, m);
    return id;
  };
  // A rule compiles the same for every pod it applies to, unless ingress named ports resolve on it.
  const podIndependent = new Map<ParsedRule, CompiledRule>();

  const compileRule = (policy: ParsedPolicy, rule: ParsedRule, direction: Direction, pod: ClusterPod): CompiledRule => {
    const shared = podIndependent.get(rule);
    if (shared) return shared;
    const compiled = compileRuleFor(policy, rule, direction, pod);
    if (direction === 'egress' || rule.ports === 'all' || !rule.ports.some((p) => p.kind === 'named')) podIndependent.set(rule, compiled);
    return compiled;
  };
  const compileRuleFor = (policy: ParsedPolicy, rule: ParsedRule, direction: Direction, pod: ClusterPod): CompiledRule => {
    const source = { ...policy.ref, direction, index: rule.index };
    if (rule.broken) return { source, peers: [], ports: [], namedPorts: [], broken: true };
    const peers = rule.peers === 'all' ? 'all' : [...new Set(rule.peers.map(peerId))].sort(byText);
    if (rule.ports === 'all') return { source, peers, ports: 'all', namedPorts: [] };
    const ranges = new Map<string, PortRange>();
    const named = new Map<string, NamedPort>();
    const addRange = (r: PortRange) => ranges.set(`${r.protocol} ${r.from} ${r.to}`, r);
    for (const p of rule.ports) {
      if (p.kind === 'all') addRange({ protocol: p.protocol, from: 0, to: 65535 });
      else if (p.kind === 'range') addRange({ protocol: p.protocol, from: p.from, to: p.to });
      else if (direction === 'ingress') {
        // R10: resolved on the destination, the selected pod itself; a name it lacks (or serves on
        // another protocol) matches nothing.
        for (const cp of pod.ports) if (cp.name === p.name && protocolOf(cp.protocol) === p.protocol) addRange({ protocol: p.protocol, from: cp.containerPort, to: cp.containerPort });
      } else named.set(`${p.protocol} ${p.name}`, { protocol: p.protocol, name: p.name });
    }
    const portList = [...ranges.values()].sort((a, b) => byText(a.protocol, b.protocol) || a.from - b.from || a.to - b.to);
    const namedPorts: string[] = [];
    if (named.size > 0) {
      // R10: egress names resolve on each destination pod the peer matches (or any pod).
      const ports = [...named.values()].sort((a, b) => byText(a.protocol, b.protocol) || byText(a.name, b.name));
      for (const peer of peers === 'all' ? [undefined] : peers) {
        const def = peer === undefined ? { ports } : { peer, ports };
        const id = stableId(def);
        namedPortDefs.set(id, def);
        namedPorts.push(id);
      }
    }
    return { source, peers, ports: portList, namedPorts: [...new Set(namedPorts)].sort(byText) };
  };

  const pods: LocalPod[] = [];
  for (const pod of localPods) {
    const ips = pod.ips.filter((ip) => owner.get(ip) === pod);
    if (ips.length === 0) continue;
    const directions: Record<Direction, { isolatedBy: PolicyRef[]; rules: CompiledRule[] } | undefined> = { ingress: undefined, egress: undefined };
    for (const policy of policiesByNs.get(pod.namespace) ?? []) {
      if (!selectorMatches(policy.podSelector, pod.labels)) continue; // R3
      for (const direction of ['ingress', 'egress'] as const) {
        if (!policy[direction]) continue;
        const d = (directions[direction] ??= { isolatedBy: [], rules: [] });
        d.isolatedBy.push(policy.ref);
        for (const rule of direction === 'ingress' ? policy.ingressRules : policy.egressRules) d.rules.push(compileRule(policy, rule, direction, pod));
      }
    }
    const local: LocalPod = { namespace: pod.namespace, name: pod.name, ips };
    if (directions.ingress) local.ingress = directions.ingress satisfies PodDirection;
    if (directions.egress) local.egress = directions.egress satisfies PodDirection;
    pods.push(local);
  }

  // Resolve the peers the rules name.
  const podsOf = (m: Extract<PeerMeaning, { kind: 'pods' }>): ClusterPod[] => {
    const namespaces = m.namespace !== undefined ? [m.namespace] : namespaceNames.filter((ns) => m.namespaceSelector !== undefined && selectorMatches(m.namespaceSelector, labelsOfNs(ns)));
    const out: ClusterPod[] = [];
    for (const ns of namespaces) for (const p of podsByNs.get(ns) ?? []) if (selectorMatches(m.podSelector, p.labels)) out.push(p);
    return out;
  };
  const blockIntervals = (m: Extract<PeerMeaning, { kind: 'ipBlock' }>): Interval[] => {
    const cidr = cidrInterval(m.cidr) as Interval;
    return subtract(cidr, m.except.map((e) => cidrInterval(e) as Interval));
  };
  const peers = new Map<string, PeerSet>();
  const peerPods = new Map<string, ClusterPod[]>();
  for (const id of [...peerMeanings.keys()].sort(byText)) {
    const meaning = peerMeanings.get(id) as PeerMeaning;
    if (meaning.kind === 'pods') {
      const matched = podsOf(meaning);
      peerPods.set(id, matched);
      const ips = [...new Set(matched.flatMap((p) => p.ips))].sort(byText);
      peers.set(id, { id, meaning, v4: ips.filter((ip) => familyOf(ip) === 4), v6: ips.filter((ip) => familyOf(ip) === 6), intervals: [] });
    } else {
      peers.set(id, { id, meaning, v4: [], v6: [], intervals: blockIntervals(meaning).flatMap(intervalToPrefixes) });
    }
  }

  const allPods = () => [...podsByNs.values()].flat();
  const namedPorts = new Map<string, NamedPortSet>();
  for (const id of [...namedPortDefs.keys()].sort(byText)) {
    const def = namedPortDefs.get(id) as { peer?: string; ports: NamedPort[] };
    const meaning = def.peer === undefined ? undefined : peerMeanings.get(def.peer);
    let candidates: ClusterPod[];
    let inBlock: (ip: string) => boolean = () => true;
    if (meaning === undefined) candidates = allPods();
    else if (meaning.kind === 'pods') candidates = peerPods.get(def.peer as string) ?? [];
    else {
      // An ipBlock destination that is a pod resolves the name on that pod (D23); other addresses
      // have no named ports.
      const ivs = blockIntervals(meaning);
      inBlock = (ip) => {
        const v = addressValue(ip);
        return v !== undefined && ivs.some((iv) => iv.family === v.family && iv.first <= v.value && v.value <= iv.last);
      };
      candidates = allPods();
    }
    const elements = new Map<string, NamedPortElement>();
    for (const p of candidates) {
      for (const cp of p.ports) {
        const protocol = protocolOf(cp.protocol);
        if (protocol === undefined || !def.ports.some((n) => n.name === cp.name && n.protocol === protocol)) continue;
        for (const address of p.ips) if (inBlock(address)) elements.set(`${address} ${protocol} ${cp.containerPort}`, { address, protocol, port: cp.containerPort });
      }
    }
    const sorted = [...elements.values()].sort((a, b) => byText(a.address, b.address) || byText(a.protocol, b.protocol) || a.port - b.port);
    namedPorts.set(id, {
      id,
      ...(def.peer !== undefined ? { peer: def.peer } : {}),
      ports: def.ports,
      v4: sorted.filter((e) => familyOf(e.address) === 4),
      v6: sorted.filter((e) => familyOf(e.address) === 6),
    });
  }

  return { nodeName: input.nodeName, nodeAddresses, pods, peers, namedPorts, errors, warnings };
}

/** A container port's protocol (the API defaults it to TCP). */
function protocolOf(p: string | undefined): Protocol | undefined {
  const v = (p ?? 'TCP').toUpperCase();
  return v === 'TCP' || v === 'UDP' || v === 'SCTP' ? v : undefined;
}
