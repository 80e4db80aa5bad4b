// The pod-start fast path of the compiler (issue 17): one local pod gains its addresses (the plugin's
// notice) and nothing else changed since `prev` was compiled from the same input. Instead of compiling
// the cluster again, the pod is compiled alone (its chains: what its namespace's policies and the
// cluster tiers say about its labels) and its addresses are added to the peer and named-port sets it
// belongs to. The result equals compilePolicy of the whole input with the pod's addresses (the
// randomized test in test/unit/policy-bind.test.ts is the judge); when that cannot be shown cheaply
// (an address another local pod owns, the node's addresses changed, its rules name a peer no other
// pod's rule names and that was not prepared) the answer is undefined and the caller compiles
// everything.
//
// Prepared ahead (prepareBinds): kubelet creates the Pod, labels and node included, before its sandbox,
// so the agent sees a pod scheduled to its node before its ADD. At each full compile, the peers that
// such pods' rules would name and no other pod's rules do are resolved against the cluster then, so
// the notice's bind never walks the cluster's pods.
import { byText, clusterView, podKey, type ClusterView } from './cluster.ts';
import { compilePolicy } from './compile.ts';
import { PeerRegistry } from './peers.ts';
import type {
  CompiledPolicy,
  CompileInput,
  LocalPod,
  NamedPortElement,
  NamedPortSet,
  PeerSet,
  PolicyNamespace,
  PolicyPod,
} from './types.ts';

/** Peer and named-port sets resolved ahead for the pods waiting for their ADD (by id). */
export interface PreparedSets {
  peers: ReadonlyMap<string, PeerSet>;
  namedPorts: ReadonlyMap<string, NamedPortSet>;
}

export const NOTHING_PREPARED: PreparedSets = { peers: new Map(), namedPorts: new Map() };

/** An address that only makes a waiting pod a local pod of the compile alone; never in a result. */
const STANDIN = ['0.0.0.1'];

/**
 * For this node's pods that `compiled` (from `input`) lacks, which have no address yet: the sets their
 * rules would name that `compiled` has not, resolved against the same cluster (`view`: the cluster
 * view `compiled` was built from, else built here).
 */
export function prepareBinds(
  input: CompileInput,
  compiled: CompiledPolicy,
  waiting: readonly PolicyPod[],
  view?: ClusterView,
): PreparedSets {
  return new BindPreparer().prepare(input, compiled, waiting, view);
}

interface WaitingNeeds {
  peers: PeerSet[];
  namedPorts: NamedPortSet[];
}

/** prepareBinds that compiles a waiting pod alone only when the pod, the policies, the namespaces
 * or the ClusterNetworkPolicies changed since it last did (issue 18: a pass follows the change). */
export class BindPreparer {
  private needs = new WeakMap<PolicyPod, WaitingNeeds>();
  private seen: Pick<CompileInput, 'policies' | 'namespaces' | 'clusterNetworkPolicies'> | undefined;

  prepare(
    input: CompileInput,
    compiled: CompiledPolicy,
    waiting: readonly PolicyPod[],
    view?: ClusterView,
  ): PreparedSets {
    const s = this.seen;
    const same = <T>(a: readonly T[] | undefined, b: readonly T[] | undefined) =>
      a === b || (a !== undefined && b !== undefined && a.length === b.length && a.every((x, i) => x === b[i]));
    if (
      !s ||
      !same(s.policies, input.policies) ||
      !same(s.namespaces, input.namespaces) ||
      !same(s.clusterNetworkPolicies, input.clusterNetworkPolicies ?? [])
    )
      this.needs = new WeakMap();
    // Copies: a caller may change its arrays in place.
    this.seen = {
      policies: [...input.policies],
      namespaces: [...input.namespaces],
      clusterNetworkPolicies: [...(input.clusterNetworkPolicies ?? [])],
    };
    const registry = new PeerRegistry();
    let any = false;
    for (const pod of waiting) {
      let need = this.needs.get(pod);
      if (!need) {
        const key = podKey(pod.metadata.namespace ?? '', pod.metadata.name);
        const own = compilePolicy({
          ...input,
          namespaces: ownNamespace(input, pod),
          pods: [pod],
          nodes: [],
          extraPodIps: new Map([[key, STANDIN]]),
        });
        need = { peers: [...own.peers.values()], namedPorts: [...own.namedPorts.values()] };
        for (const set of need.namedPorts)
          if (set.peer !== undefined && !own.peers.has(set.peer)) need.peers.push(own.peers.get(set.peer) as PeerSet);
        this.needs.set(pod, need);
      }
      // Only what `compiled` lacks is resolved (a named-port set with the peer whose pods it reads).
      for (const set of need.peers) {
        if (compiled.peers.has(set.id)) continue;
        registry.peer(set.meaning);
        any = true;
      }
      for (const set of need.namedPorts) {
        if (compiled.namedPorts.has(set.id)) continue;
        const peer = set.peer === undefined ? undefined : need.peers.find((p) => p.id === set.peer);
        if (peer) registry.peer(peer.meaning);
        registry.namedPorts(set.peer, [...set.ports]);
        any = true;
      }
    }
    if (!any) return NOTHING_PREPARED;
    const all = registry.resolve(view ?? clusterView(input));
    const peers = new Map([...all.peers].filter(([id]) => !compiled.peers.has(id)));
    const namedPorts = new Map([...all.namedPorts].filter(([id]) => !compiled.namedPorts.has(id)));
    return { peers, namedPorts };
  }
}

export interface Bound {
  compiled: CompiledPolicy;
  /** The prepared sets with the pod's addresses in those it joins, for the next bind. */
  prepared: PreparedSets;
}

/** `input` is the whole input `prev` was compiled from, except for the pod's own addresses; only its
 * namespaces, policies and this node's facts are read here, never its pods. `prepared`: from
 * prepareBinds with that same input, or from the last bind since. */
export function bindLocalPod(
  prev: CompiledPolicy,
  input: CompileInput,
  pod: PolicyPod,
  prepared = NOTHING_PREPARED,
): Bound | undefined {
  const namespace = pod.metadata.namespace ?? '';
  const key = podKey(namespace, pod.metadata.name);
  if (pod.spec.nodeName !== input.nodeName) return undefined;
  if (prev.pods.some((p) => p.namespace === namespace && p.name === pod.metadata.name)) return undefined;
  const extra = input.extraPodIps?.get(key);
  const alone: CompileInput = {
    ...input,
    namespaces: ownNamespace(input, pod),
    pods: [pod],
    nodes: [],
    extraPodIps: new Map(extra ? [[key, extra]] : []),
  };
  const own = compilePolicy(alone);
  if (own.nodeAddresses.join() !== prev.nodeAddresses.join()) return undefined;
  const local = own.pods[0];
  if (!local) return undefined; // no address (yet): nothing to bind
  const owned = new Set(prev.pods.flatMap((p) => p.ips));
  if (local.ips.some((ip) => owned.has(ip))) return undefined;
  const base = { peers: new Map(prev.peers), namedPorts: new Map(prev.namedPorts) };
  for (const id of own.peers.keys()) {
    if (base.peers.has(id)) continue;
    const set = prepared.peers.get(id);
    if (!set) return undefined;
    base.peers.set(id, set);
  }
  for (const id of own.namedPorts.keys()) {
    if (base.namedPorts.has(id)) continue;
    const set = prepared.namedPorts.get(id);
    if (!set) return undefined;
    base.namedPorts.set(id, set);
  }

  // The pod's part of every set the other pods' rules name: the same resolution, over this pod only,
  // of the sets that can hold it: pods of its namespace or of namespaces a selector picks (address
  // blocks and nodes never grow by a pod; a pod-selector peer of another namespace cannot hold it),
  // and of every named-port set with its peer. Not the model's thousands of sets on each pod start.
  const registry = new PeerRegistry();
  const peerOf = (id: string) => base.peers.get(id) ?? prepared.peers.get(id);
  for (const set of [...base.peers.values(), ...prepared.peers.values()]) {
    const m = set.meaning;
    if (m.kind === 'pods' && (m.namespace === undefined || m.namespace === namespace)) registry.peer(m);
  }
  for (const set of [...base.namedPorts.values(), ...prepared.namedPorts.values()]) {
    const peer = set.peer === undefined ? undefined : peerOf(set.peer);
    if (peer) registry.peer(peer.meaning);
    registry.namedPorts(set.peer, [...set.ports]);
  }
  const part = registry.resolve(clusterView(alone));
  const grow = <S extends PeerSet | NamedPortSet>(
    sets: ReadonlyMap<string, S>,
    parts: ReadonlyMap<string, S>,
    join: (s: S, add: S) => S,
  ) => {
    const out = new Map<string, S>();
    for (const [id, set] of sets) {
      const add = parts.get(id);
      out.set(id, add !== undefined && add.v4.length + add.v6.length > 0 ? join(set, add) : set);
    }
    return out;
  };
  const joinPeers = (set: PeerSet, add: PeerSet): PeerSet =>
    set.meaning.kind === 'pods' ? { ...set, v4: union(set.v4, add.v4), v6: union(set.v6, add.v6) } : set;
  const joinPorts = (set: NamedPortSet, add: NamedPortSet): NamedPortSet => ({
    ...set,
    v4: unionPorts(set.v4, add.v4),
    v6: unionPorts(set.v6, add.v6),
  });
  const compiled: CompiledPolicy = {
    ...prev,
    pods: insertPod(prev.pods, local),
    peers: grow(base.peers, part.peers, joinPeers),
    namedPorts: grow(base.namedPorts, part.namedPorts, joinPorts),
  };
  const noLonger = <S>(m: ReadonlyMap<string, S>, inModel: ReadonlyMap<string, unknown>) =>
    new Map([...m].filter(([id]) => !inModel.has(id)));
  const next: PreparedSets = {
    peers: noLonger(grow(prepared.peers, part.peers, joinPeers), compiled.peers),
    namedPorts: noLonger(grow(prepared.namedPorts, part.namedPorts, joinPorts), compiled.namedPorts),
  };
  return { compiled, prepared: next };
}

/** The pod's own namespace object: compiling one pod reads no other namespace's labels (its peers'
 * other namespaces hold none of its pods), and resolving against all of them cost a selector match
 * per namespace and peer on every bind. */
function ownNamespace(input: CompileInput, pod: PolicyPod): readonly PolicyNamespace[] {
  const ns = pod.metadata.namespace ?? '';
  return input.namespaces.filter((n) => n.metadata.name === ns);
}

function insertPod(pods: readonly LocalPod[], pod: LocalPod): LocalPod[] {
  const before = (p: LocalPod) =>
    byText(p.namespace, pod.namespace) < 0 || (p.namespace === pod.namespace && byText(p.name, pod.name) < 0);
  let i = 0;
  while (i < pods.length && before(pods[i] as LocalPod)) i++;
  return [...pods.slice(0, i), pod, ...pods.slice(i)];
}

/** `a` (sorted, no duplicates) with `b`'s members added, in order: a few members into a large set. */
function union(a: readonly string[], b: readonly string[]): readonly string[] {
  return insertSorted(a, b, byText);
}

const portOrder = (x: NamedPortElement, y: NamedPortElement): number =>
  byText(x.address, y.address) || byText(x.protocol, y.protocol) || x.port - y.port;

function unionPorts(a: readonly NamedPortElement[], b: readonly NamedPortElement[]): readonly NamedPortElement[] {
  return insertSorted(a, b, portOrder);
}

/** Sorted `a` with the members of `b` it lacks inserted where they belong (binary search each, one
 * native copy per member added: a pod's address into a set of 50,000 is one copy, not a copy and a
 * splice); `a` itself when it has them all. */
export function insertSorted<T>(a: readonly T[], b: readonly T[], order: (x: T, y: T) => number): readonly T[] {
  let out = a;
  for (const x of b) {
    let lo = 0;
    let hi = out.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (order(out[mid] as T, x) < 0) lo = mid + 1;
      else hi = mid;
    }
    if (lo < out.length && order(out[lo] as T, x) === 0) continue;
    out = out.toSpliced(lo, 0, x);
  }
  return out;
}
