// The pod-start fast path of the compiler (issue 17): one local pod gains its addresses (the plugin's
// notice) and nothing else changed since `prev` was compiled from the same input. Instead of compiling
// the cluster again, the pod is compiled alone (its chains: what its namespace's policies and the
// cluster tiers say about its labels) and its addresses are added to the peer and named-port sets it
// belongs to. The result equals compilePolicy of the whole input with the pod's addresses (the
// randomized test in test/unit/policy-bind.test.ts is the judge); when that cannot be shown cheaply
// (its rules name a peer no other pod's rule names, an address another local pod owns, the node's
// addresses changed) the answer is undefined and the caller compiles everything.
import { byText, clusterView, podKey } from './cluster.ts';
import { compilePolicy } from './compile.ts';
import { PeerRegistry } from './peers.ts';
import type { CompiledPolicy, CompileInput, LocalPod, NamedPortElement, NamedPortSet, PeerSet, PolicyPod } from './types.ts';

/** `input` is the whole input `prev` was compiled from, except for the pod's own addresses; only its
 * namespaces, policies and this node's facts are read here, never its pods. */
export function bindLocalPod(prev: CompiledPolicy, input: CompileInput, pod: PolicyPod): CompiledPolicy | undefined {
  const namespace = pod.metadata.namespace ?? '';
  const key = podKey(namespace, pod.metadata.name);
  if (pod.spec.nodeName !== input.nodeName) return undefined;
  if (prev.pods.some((p) => p.namespace === namespace && p.name === pod.metadata.name)) return undefined;
  const extra = input.extraPodIps?.get(key);
  const alone: CompileInput = {
    ...input,
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
  for (const id of own.peers.keys()) if (!prev.peers.has(id)) return undefined;
  for (const id of own.namedPorts.keys()) if (!prev.namedPorts.has(id)) return undefined;

  // The pod's part of every set the other pods' rules name: the same resolution, over this pod only.
  const registry = new PeerRegistry();
  for (const set of prev.peers.values()) registry.peer(set.meaning);
  for (const set of prev.namedPorts.values()) registry.namedPorts(set.peer, [...set.ports]);
  const part = registry.resolve(clusterView(alone));

  const peers = new Map<string, PeerSet>();
  for (const [id, set] of prev.peers) {
    const add = part.peers.get(id);
    const grows = set.meaning.kind === 'pods' && add !== undefined && add.v4.length + add.v6.length > 0;
    peers.set(id, grows ? { ...set, v4: union(set.v4, add.v4), v6: union(set.v6, add.v6) } : set);
  }
  const namedPorts = new Map<string, NamedPortSet>();
  for (const [id, set] of prev.namedPorts) {
    const add = part.namedPorts.get(id);
    const grows = add !== undefined && add.v4.length + add.v6.length > 0;
    namedPorts.set(id, grows ? { ...set, v4: unionPorts(set.v4, add.v4), v6: unionPorts(set.v6, add.v6) } : set);
  }
  return { ...prev, pods: insertPod(prev.pods, local), peers, namedPorts };
}

function insertPod(pods: readonly LocalPod[], pod: LocalPod): LocalPod[] {
  const before = (p: LocalPod) => byText(p.namespace, pod.namespace) < 0 || (p.namespace === pod.namespace && byText(p.name, pod.name) < 0);
  let i = 0;
  while (i < pods.length && before(pods[i] as LocalPod)) i++;
  return [...pods.slice(0, i), pod, ...pods.slice(i)];
}

function union(a: readonly string[], b: readonly string[]): string[] {
  return [...new Set([...a, ...b])].sort(byText);
}

function unionPorts(a: readonly NamedPortElement[], b: readonly NamedPortElement[]): NamedPortElement[] {
  const all = new Map<string, NamedPortElement>();
  for (const e of [...a, ...b]) all.set(`${e.address} ${e.protocol} ${e.port}`, e);
  return [...all.values()].sort((x, y) => byText(x.address, y.address) || byText(x.protocol, y.protocol) || x.port - y.port);
}
