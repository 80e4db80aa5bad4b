// The verdict of the compiled model on the first packet of a connection, with the reason: which rules
// allow it, or which policies isolate the pod that drops it. For tests and `strand explain`. Only
// this node's ends are judged: a pod of another node is 'not-local' here (its node judges it, R1).
import { ipInterval } from '../nft/objects.ts';
import { addressValue, canonicalAddress, type Interval } from './cidr.ts';
import type { CompiledPolicy, CompiledRule, Direction, DirectionVerdict, LocalPod, Packet, PeerSet, Verdict } from './types.ts';

interface Index {
  byIp: Map<string, LocalPod>;
  node: Set<string>;
  peerMembers: Map<string, Set<string>>;
  peerIntervals: Map<string, Interval[]>;
  namedPorts: Map<string, Set<string>>;
}

const indexes = new WeakMap<CompiledPolicy, Index>();

function indexOf(model: CompiledPolicy): Index {
  const hit = indexes.get(model);
  if (hit) return hit;
  const byIp = new Map<string, LocalPod>();
  for (const p of model.pods) for (const ip of p.ips) byIp.set(ip, p);
  const peerMembers = new Map<string, Set<string>>();
  const peerIntervals = new Map<string, Interval[]>();
  for (const [id, peer] of model.peers) {
    peerMembers.set(id, new Set([...peer.v4, ...peer.v6]));
    peerIntervals.set(id, peer.intervals.map(ipInterval).filter((iv): iv is Interval => iv !== undefined));
  }
  const namedPorts = new Map<string, Set<string>>();
  for (const [id, np] of model.namedPorts) namedPorts.set(id, new Set([...np.v4, ...np.v6].map((e) => `${e.address} ${e.protocol} ${e.port}`)));
  const index = { byIp, node: new Set(model.nodeAddresses), peerMembers, peerIntervals, namedPorts };
  indexes.set(model, index);
  return index;
}

function peerHas(index: Index, peer: PeerSet | undefined, id: string, ip: string): boolean {
  if (!peer) return false;
  if (peer.meaning.kind === 'pods') return index.peerMembers.get(id)?.has(ip) ?? false;
  const v = addressValue(ip);
  return v !== undefined && (index.peerIntervals.get(id) ?? []).some((iv) => iv.family === v.family && iv.first <= v.value && v.value <= iv.last);
}

/** R5: peers and ports both match; egress named ports match on the destination pod (R10). */
export function ruleMatches(model: CompiledPolicy, rule: CompiledRule, remote: string, packet: Packet): boolean {
  if (rule.broken) return false;
  const index = indexOf(model);
  const peersOk = rule.peers === 'all' || rule.peers.some((id) => peerHas(index, model.peers.get(id), id, remote));
  const portsOk = rule.ports === 'all' || rule.ports.some((r) => r.protocol === packet.protocol && r.from <= packet.dport && packet.dport <= r.to);
  if (peersOk && portsOk) return true;
  const key = `${remote} ${packet.protocol} ${packet.dport}`;
  return rule.namedPorts.some((id) => index.namedPorts.get(id)?.has(key) ?? false);
}

function judge(model: CompiledPolicy, direction: Direction, local: string, remote: string, packet: Packet): DirectionVerdict {
  const index = indexOf(model);
  const pod = index.byIp.get(local);
  const none = { rules: [], isolatedBy: [] };
  if (!pod) return { allowed: true, reason: 'not-local', ...none };
  const ref = { namespace: pod.namespace, name: pod.name };
  // R11: from this node to its pods (ingress), and from its pods to it (egress, the recommended choice).
  if (index.node.has(remote)) return { allowed: true, reason: 'node', pod: ref, ...none };
  if (pod.ips.includes(remote)) return { allowed: true, reason: 'self', pod: ref, ...none }; // R12
  const d = pod[direction];
  if (!d) return { allowed: true, reason: 'not-isolated', pod: ref, ...none };
  const rules = d.rules.filter((r) => ruleMatches(model, r, remote, packet)).map((r) => r.source);
  return { allowed: rules.length > 0, reason: rules.length > 0 ? 'allowed' : 'denied', pod: ref, rules, isolatedBy: d.isolatedBy };
}

/** Both ends this node judges: the source's egress and the destination's ingress (R1). */
export function evaluatePolicy(model: CompiledPolicy, packet: Packet): Verdict {
  const src = canonicalAddress(packet.src) ?? packet.src;
  const dst = canonicalAddress(packet.dst) ?? packet.dst;
  const p = { ...packet, src, dst };
  const egress = judge(model, 'egress', src, dst, p);
  const ingress = judge(model, 'ingress', dst, src, p);
  return { allowed: egress.allowed && ingress.allowed, egress, ingress };
}
