// A spec oracle for NetworkPolicy: netpol-semantics.md §1 read literally, over the raw objects as the
// API serves them, sharing no code with src/policy. The randomized unit test judges the nft objects
// against it, and the upstream-case e2e judges real packets on the simulated cluster against it; a
// disagreement is a bug in one of them, so the oracle stays short enough to read against the spec.
import { Address4, Address6 } from 'ip-address';
import type { Packet, Protocol } from '../../src/policy/index.ts';

type Json = Record<string, unknown>;

export interface OracleNamespace {
  name: string;
  labels: Record<string, string>;
}

export interface OraclePort {
  name?: string;
  containerPort: number;
  protocol: string;
}

export interface OraclePod {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  ips: string[];
  ports: OraclePort[];
  node?: string;
  hostNetwork: boolean;
  phase?: string;
}

/** A NetworkPolicy as the API serves it (only metadata.namespace/name and spec are read). */
export interface OraclePolicy {
  metadata: { name: string; namespace?: string };
  spec: Json;
}

export interface OracleWorld {
  namespaces: OracleNamespace[];
  pods: OraclePod[];
  policies: OraclePolicy[];
  /** Node name → its addresses (R11: a pod's own node always reaches it and is reached by it). */
  nodeAddresses: Record<string, string[]>;
}

/** A namespace or pod as the API serves it (or the agent's slim copy, which has the same shape). */
export interface KubeLike {
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: unknown;
  status?: unknown;
}

export const oracleNamespace = (ns: KubeLike): OracleNamespace => ({
  name: ns.metadata.name,
  labels: ns.metadata.labels ?? {},
});

export function oraclePod(p: KubeLike): OraclePod {
  const spec = (p.spec ?? {}) as {
    nodeName?: string;
    hostNetwork?: boolean;
    containers?: { ports?: { name?: string; containerPort: number; protocol?: string }[] }[];
  };
  const status = (p.status ?? {}) as { phase?: string; podIP?: string; podIPs?: { ip: string }[] };
  const ips =
    status.podIPs && status.podIPs.length > 0 ? status.podIPs.map((x) => x.ip) : status.podIP ? [status.podIP] : [];
  return {
    namespace: p.metadata.namespace ?? 'default',
    name: p.metadata.name,
    labels: p.metadata.labels ?? {},
    ips,
    // A container port's protocol defaults to TCP (core/v1 ContainerPort).
    ports: (spec.containers ?? []).flatMap((c) =>
      (c.ports ?? []).map((cp) => ({
        ...(cp.name ? { name: cp.name } : {}),
        containerPort: cp.containerPort,
        protocol: cp.protocol ?? 'TCP',
      })),
    ),
    ...(spec.nodeName ? { node: spec.nodeName } : {}),
    hostNetwork: spec.hostNetwork === true,
    ...(status.phase ? { phase: status.phase } : {}),
  };
}

export function oracleWorld(objs: {
  namespaces: readonly KubeLike[];
  pods: readonly KubeLike[];
  policies: readonly OraclePolicy[];
  nodeAddresses: Record<string, string[]>;
}): OracleWorld {
  return {
    namespaces: objs.namespaces.map(oracleNamespace),
    pods: objs.pods.map(oraclePod),
    policies: [...objs.policies],
    nodeAddresses: objs.nodeAddresses,
  };
}

function selMatches(sel: Json | undefined, lbls: Record<string, string>): boolean {
  if (sel === undefined) return false;
  for (const [k, v] of Object.entries((sel.matchLabels as Record<string, string>) ?? {}))
    if (lbls[k] !== v) return false;
  for (const e of (sel.matchExpressions as { key: string; operator: string; values?: string[] }[]) ?? []) {
    const has = e.key in lbls;
    const val = lbls[e.key];
    if (e.operator === 'In' && !(has && (e.values ?? []).includes(val as string))) return false;
    if (e.operator === 'NotIn' && has && (e.values ?? []).includes(val as string)) return false;
    if (e.operator === 'Exists' && !has) return false;
    if (e.operator === 'DoesNotExist' && has) return false;
  }
  return true;
}

function inCidr(ip: string, cidr: string): boolean {
  const v6 = ip.includes(':');
  if (v6 !== cidr.includes(':')) return false; // R9: families never mix
  return v6 ? new Address6(ip).isInSubnet(new Address6(cidr)) : new Address4(ip).isInSubnet(new Address4(cidr));
}

interface Endpoint {
  pod?: OraclePod;
  ip: string;
}

/** One direction's verdict and why (for a readable failure). */
export interface DirectionView {
  allowed: boolean;
  why: string;
}

export interface OracleView {
  allowed: boolean;
  egress: DirectionView;
  ingress: DirectionView;
}

const policyTypes = (spec: Json): string[] => {
  const t = spec.policyTypes as string[] | undefined;
  if (t && t.length > 0) return t;
  return ['Ingress', ...(((spec.egress as unknown[]) ?? []).length > 0 ? ['Egress'] : [])];
};

/** The verdict on one packet (R1: the source's egress and the destination's ingress), with reasons. */
export function judge(w: OracleWorld, pkt: Packet): OracleView {
  const live = w.pods.filter((p) => !p.hostNetwork && p.phase !== 'Succeeded' && p.phase !== 'Failed');
  const find = (ip: string): Endpoint => {
    const pod = live.find((p) => p.ips.includes(ip));
    return pod ? { ip, pod } : { ip };
  };
  const src = find(pkt.src);
  const dst = find(pkt.dst);
  const nsLabels = (ns: string) => w.namespaces.find((n) => n.name === ns)?.labels ?? {};

  const peerMatches = (peer: Json, policyNs: string, other: Endpoint): boolean => {
    if (peer.ipBlock) {
      const b = peer.ipBlock as { cidr: string; except?: string[] };
      return inCidr(other.ip, b.cidr) && !(b.except ?? []).some((e) => inCidr(other.ip, e));
    }
    if (!other.pod) return false; // R6: selectors never match outside addresses
    const ns = other.pod.namespace;
    if (peer.namespaceSelector === undefined) {
      if (ns !== policyNs) return false;
    } else if (!selMatches(peer.namespaceSelector as Json, nsLabels(ns))) return false;
    return peer.podSelector === undefined || selMatches(peer.podSelector as Json, other.pod.labels);
  };
  const portMatches = (port: Json, destination: Endpoint): boolean => {
    const proto = (port.protocol as Protocol | undefined) ?? 'TCP';
    if (proto !== pkt.protocol) return false;
    if (port.port === undefined) return true;
    if (typeof port.port === 'number')
      return pkt.dport >= port.port && pkt.dport <= ((port.endPort as number | undefined) ?? port.port);
    // R10: a name resolves on the destination pod.
    return (destination.pod?.ports ?? []).some(
      (cp) => cp.name === port.port && cp.protocol === proto && cp.containerPort === pkt.dport,
    );
  };
  const direction = (subject: Endpoint, other: Endpoint, type: 'Ingress' | 'Egress'): DirectionView => {
    const sp = subject.pod;
    if (!sp) return { allowed: true, why: `${subject.ip} is no pod` };
    const who = `${sp.namespace}/${sp.name}`;
    if (subject.ip === other.ip) return { allowed: true, why: `${who} to itself (R12)` };
    if (sp.node && (w.nodeAddresses[sp.node] ?? []).includes(other.ip))
      return { allowed: true, why: `${who}'s own node (R11)` }; // both directions, as decided
    const selecting = w.policies.filter(
      (p) =>
        p.metadata.namespace === sp.namespace &&
        selMatches(p.spec.podSelector as Json, sp.labels) &&
        policyTypes(p.spec).includes(type),
    );
    if (selecting.length === 0) return { allowed: true, why: `${who} not isolated for ${type} (R4)` };
    const destination = type === 'Ingress' ? subject : other;
    const allowing = selecting.filter((p) =>
      ((p.spec[type === 'Ingress' ? 'ingress' : 'egress'] as Json[] | undefined) ?? []).some((rule) => {
        const peers = rule[type === 'Ingress' ? 'from' : 'to'] as Json[] | undefined;
        const ports = rule.ports as Json[] | undefined;
        const peerOk =
          !peers ||
          peers.length === 0 ||
          peers.some((peer) => peerMatches(peer, p.metadata.namespace as string, other));
        const portOk = !ports || ports.length === 0 || ports.some((port) => portMatches(port, destination));
        return peerOk && portOk;
      }),
    );
    const names = (ps: OraclePolicy[]) => ps.map((p) => p.metadata.name).join(', ');
    return allowing.length > 0
      ? { allowed: true, why: `${who} ${type} isolated by [${names(selecting)}], allowed by [${names(allowing)}]` }
      : { allowed: false, why: `${who} ${type} isolated by [${names(selecting)}], no rule allows it` };
  };
  const egress = direction(src, dst, 'Egress');
  const ingress = direction(dst, src, 'Ingress');
  return { allowed: egress.allowed && ingress.allowed, egress, ingress };
}

export const allows = (w: OracleWorld, pkt: Packet): boolean => judge(w, pkt).allowed;

export const describeView = (v: OracleView): string =>
  `oracle: ${v.allowed ? 'allowed' : 'denied'} (egress: ${v.egress.why}; ingress: ${v.ingress.why})`;
