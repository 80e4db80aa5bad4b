// A spec oracle for ClusterNetworkPolicy (network-policy-api v0.2.0, clusternetworkpolicy_types.go
// read literally) on top of the NetworkPolicy oracle, over the raw objects, sharing no code with
// src/policy. Per direction (ingress at the destination, egress at the source; both must allow):
// a pod's own address and its own node are exempt (as for NetworkPolicy); then the Admin tier's
// policies whose subject selects the pod, by priority then name, their rules in written order: the
// first rule that matches decides (Accept allows, Deny denies, Pass goes to NetworkPolicy); then
// NetworkPolicy when a policy selects the pod in that direction; then the Baseline tier the same way
// (Pass there falls to the default); then allowed. Fail closed (the types' peer comments): a rule with
// a peer this oracle does not know matches nothing when it accepts and everything when it denies or passes,
// and then denies.
import { Address4, Address6 } from 'ip-address';
import type { Packet } from '../../src/policy/index.ts';
import { judge as judgeNetpol, type OraclePod, type OracleWorld } from './netpol-oracle.ts';

type Json = Record<string, unknown>;

export interface OracleClusterPolicy {
  metadata: { name: string };
  spec: Json;
}

export interface OracleNode {
  name: string;
  labels: Record<string, string>;
  addresses: string[];
}

export interface CnpWorld extends OracleWorld {
  clusterPolicies: OracleClusterPolicy[];
  nodes: OracleNode[];
}

function selMatches(sel: Json | undefined, lbls: Record<string, string>): boolean {
  if (sel === undefined) return false;
  for (const [k, v] of Object.entries((sel.matchLabels as Record<string, string>) ?? {}))
    if (lbls[k] !== v) return false;
  for (const e of (sel.matchExpressions as { key: string; operator: string; values?: string[] }[]) ?? []) {
    const has = e.key in lbls;
    const val = lbls[e.key] as string;
    if (e.operator === 'In' && !(has && (e.values ?? []).includes(val))) return false;
    if (e.operator === 'NotIn' && has && (e.values ?? []).includes(val)) return false;
    if (e.operator === 'Exists' && !has) return false;
    if (e.operator === 'DoesNotExist' && has) return false;
  }
  return true;
}

function inCidr(ip: string, cidr: string): boolean {
  const v6 = ip.includes(':');
  if (v6 !== cidr.includes(':')) return false;
  return v6 ? new Address6(ip).isInSubnet(new Address6(cidr)) : new Address4(ip).isInSubnet(new Address4(cidr));
}

type Outcome = 'Accept' | 'Deny' | 'Pass' | undefined;

export interface CnpDirectionView {
  allowed: boolean;
  /** "Admin cnp/<name> ingress[i] Deny", "NetworkPolicy", "Baseline …", "default", "self", "node", "no pod". */
  by: string;
}

export interface CnpView {
  allowed: boolean;
  egress: CnpDirectionView;
  ingress: CnpDirectionView;
}

export function cnpJudge(w: CnpWorld, pkt: Packet): CnpView {
  const live = w.pods.filter((p) => !p.hostNetwork && p.phase !== 'Succeeded' && p.phase !== 'Failed');
  const podAt = (ip: string): OraclePod | undefined => live.find((p) => p.ips.includes(ip));
  const nsLabels = (ns: string) =>
    w.namespaces.find((n) => n.name === ns)?.labels ?? { 'kubernetes.io/metadata.name': ns };
  const np = judgeNetpol(w, pkt);

  const selectsPod = (sel: { namespaceSelector?: Json; podSelector?: Json }, pod: OraclePod | undefined): boolean =>
    pod !== undefined &&
    selMatches(sel.namespaceSelector ?? {}, nsLabels(pod.namespace)) &&
    selMatches(sel.podSelector, pod.labels);

  /** true/false, or undefined when the peer is unknown (fail closed). */
  const peerMatches = (peer: Json, ip: string): boolean | undefined => {
    const keys = Object.keys(peer).filter((k) => peer[k] !== undefined);
    if (keys.length !== 1) return undefined;
    const pod = podAt(ip);
    if (peer.namespaces) return pod !== undefined && selMatches(peer.namespaces as Json, nsLabels(pod.namespace));
    if (peer.pods) return selectsPod(peer.pods as Json, pod);
    if (peer.networks) return (peer.networks as string[]).some((c) => inCidr(ip, c));
    if (peer.nodes) return w.nodes.some((n) => selMatches(peer.nodes as Json, n.labels) && n.addresses.includes(ip));
    return undefined;
  };
  const protocolMatches = (proto: Json, destination: OraclePod | undefined): boolean => {
    if (typeof proto.destinationNamedPort === 'string') {
      const name = proto.destinationNamedPort;
      return (destination?.ports ?? []).some(
        (cp) => cp.name === name && cp.containerPort === pkt.dport && cp.protocol === pkt.protocol,
      );
    }
    const entry = proto[pkt.protocol.toLowerCase()] as
      | { destinationPort: { number?: number; range?: { start: number; end: number } } }
      | undefined;
    if (!entry) return false;
    const dp = entry.destinationPort;
    if (dp.number !== undefined) return dp.number === pkt.dport;
    return dp.range !== undefined && dp.range.start <= pkt.dport && pkt.dport <= dp.range.end;
  };

  const tier = (
    name: 'Admin' | 'Baseline',
    pod: OraclePod,
    other: string,
    dir: 'ingress' | 'egress',
    dst?: OraclePod,
  ): { outcome: Outcome; by: string } => {
    const policies = w.clusterPolicies
      .filter((p) => p.spec.tier === name)
      .filter((p) => {
        const s = p.spec.subject as Json;
        if (s.namespaces) return selMatches(s.namespaces as Json, nsLabels(pod.namespace));
        return selectsPod(s.pods as Json, pod);
      })
      .sort(
        (a, b) =>
          (a.spec.priority as number) - (b.spec.priority as number) || (a.metadata.name < b.metadata.name ? -1 : 1),
      );
    for (const p of policies) {
      const rules = (p.spec[dir] as Json[] | undefined) ?? [];
      for (const [i, rule] of rules.entries()) {
        const peers = (rule[dir === 'ingress' ? 'from' : 'to'] as Json[]).map((peer) => peerMatches(peer, other));
        const action = rule.action as 'Accept' | 'Deny' | 'Pass';
        const by = `${name} cnp/${p.metadata.name} ${dir}[${i}] ${action}`;
        if (peers.includes(undefined)) {
          if (action === 'Accept') continue;
          return { outcome: 'Deny', by: `${by} (failed closed)` };
        }
        const protocols = rule.protocols as Json[] | undefined;
        const portOk = protocols === undefined || protocols.some((pr) => protocolMatches(pr, dst));
        if (peers.includes(true) && portOk) return { outcome: action, by };
      }
    }
    return { outcome: undefined, by: '' };
  };

  const direction = (subjectIp: string, otherIp: string, dir: 'ingress' | 'egress'): CnpDirectionView => {
    const pod = podAt(subjectIp);
    if (!pod) return { allowed: true, by: 'no pod' };
    if (pod.ips.includes(otherIp)) return { allowed: true, by: 'self' };
    if (pod.node && (w.nodeAddresses[pod.node] ?? []).includes(otherIp)) return { allowed: true, by: 'node' };
    const dst = dir === 'ingress' ? pod : podAt(otherIp);
    const admin = tier('Admin', pod, otherIp, dir, dst);
    if (admin.outcome === 'Accept' || admin.outcome === 'Deny')
      return { allowed: admin.outcome === 'Accept', by: admin.by };
    const type = dir === 'ingress' ? 'Ingress' : 'Egress';
    const isolated = w.policies.some((p) => {
      if (p.metadata.namespace !== pod.namespace || !selMatches(p.spec.podSelector as Json, pod.labels)) return false;
      const types = (p.spec.policyTypes as string[] | undefined) ?? [];
      if (types.length > 0) return types.includes(type);
      return type === 'Ingress' || ((p.spec.egress as unknown[] | undefined) ?? []).length > 0;
    });
    if (isolated) {
      const v = dir === 'ingress' ? np.ingress : np.egress;
      return { allowed: v.allowed, by: `NetworkPolicy (${v.why})` };
    }
    const baseline = tier('Baseline', pod, otherIp, dir, dst);
    if (baseline.outcome === 'Accept' || baseline.outcome === 'Deny')
      return { allowed: baseline.outcome === 'Accept', by: baseline.by };
    return { allowed: true, by: baseline.outcome === 'Pass' ? `${baseline.by}, default` : 'default' };
  };

  const egress = direction(pkt.src, pkt.dst, 'egress');
  const ingress = direction(pkt.dst, pkt.src, 'ingress');
  return { allowed: egress.allowed && ingress.allowed, egress, ingress };
}
