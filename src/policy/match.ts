// Does a compiled rule match a packet, over the model: the peers' members and intervals and the
// named ports indexed once per model. Shared by every tier's evaluation (evaluate.ts).
import { ipInterval } from '../nft/objects.ts';
import { addressValue, type Interval } from './cidr.ts';
import type { CompiledPolicy, CompiledRule, LocalPod, Packet, PeerSet } from './types.ts';

interface Index {
  byIp: Map<string, LocalPod>;
  node: Set<string>;
  peerMembers: Map<string, Set<string>>;
  peerIntervals: Map<string, Interval[]>;
  namedPorts: Map<string, Set<string>>;
}

const indexes = new WeakMap<CompiledPolicy, Index>();

export function indexOf(model: CompiledPolicy): Index {
  const hit = indexes.get(model);
  if (hit) return hit;
  const byIp = new Map<string, LocalPod>();
  for (const p of model.pods) for (const ip of p.ips) byIp.set(ip, p);
  const peerMembers = new Map<string, Set<string>>();
  const peerIntervals = new Map<string, Interval[]>();
  for (const [id, peer] of model.peers) {
    peerMembers.set(id, new Set([...peer.v4, ...peer.v6]));
    peerIntervals.set(
      id,
      peer.intervals.map(ipInterval).filter((iv): iv is Interval => iv !== undefined),
    );
  }
  const namedPorts = new Map<string, Set<string>>();
  for (const [id, np] of model.namedPorts)
    namedPorts.set(id, new Set([...np.v4, ...np.v6].map((e) => `${e.address} ${e.protocol} ${e.port}`)));
  const index = { byIp, node: new Set(model.nodeAddresses), peerMembers, peerIntervals, namedPorts };
  indexes.set(model, index);
  return index;
}

function peerHas(index: Index, peer: PeerSet | undefined, id: string, ip: string): boolean {
  if (!peer) return false;
  if (peer.meaning.kind !== 'ipBlock') return index.peerMembers.get(id)?.has(ip) ?? false;
  const v = addressValue(ip);
  return (
    v !== undefined &&
    (index.peerIntervals.get(id) ?? []).some(
      (iv) => iv.family === v.family && iv.first <= v.value && v.value <= iv.last,
    )
  );
}

/** R5: peers and ports both match; egress named ports match on the destination pod (R10). */
export function ruleMatches(model: CompiledPolicy, rule: CompiledRule, remote: string, packet: Packet): boolean {
  if (rule.broken) return false;
  const index = indexOf(model);
  const peersOk = rule.peers === 'all' || rule.peers.some((id) => peerHas(index, model.peers.get(id), id, remote));
  const portsOk =
    rule.ports === 'all' ||
    rule.ports.some((r) => r.protocol === packet.protocol && r.from <= packet.dport && packet.dport <= r.to);
  if (peersOk && portsOk) return true;
  const key = `${remote} ${packet.protocol} ${packet.dport}`;
  return rule.namedPorts.some((id) => index.namedPorts.get(id)?.has(key) ?? false);
}
