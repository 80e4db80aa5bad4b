// `strand explain SRC DST [PORT[/PROTO]]`, the agent's half (request {"v":1,"type":"explain",…} on
// its local socket): the two ends resolved against the agent's caches, the path a packet takes
// between them as the backends program it, and, when NetworkPolicy is compiled, the verdict of each
// direction with the policies and rules that decide it. Pure: the caches, this node's facts and the
// policy evaluator come in; the command line (src/cli/explain.ts) adds what this node's kernel holds.
import { cidrContains, familyOf, normalizeCidr, normalizeIp } from '../net/text.ts';
import {
  desiredSteps,
  onTheLoop,
  peersFromNodesSteps,
  vtepMacFor,
  vxlanDeviceName,
  type DatapathMode,
  type DesiredRoute,
} from '../datapath/index.ts';
import type { AgentConfig } from './config.ts';
import { podIPs, type NodeInfo, type PodInfo } from '../k8s/objects.ts';
import type { ExplainQuery } from '../contracts/agent-socket.ts';

export type Protocol = 'TCP' | 'UDP' | 'SCTP';

export interface Endpoint {
  /** As given on the command line. */
  input: string;
  kind: 'pod' | 'node' | 'external' | 'pod-network';
  /** The address the explanation uses (a CIDR's first address; a pod's first address of the family). */
  ip: string;
  cidr?: string;
  pod?: {
    namespace: string;
    name: string;
    node?: string;
    ips: string[];
    hostNetwork: boolean;
    labels: Record<string, string>;
  };
  /** The node the address lives on (a pod's, a node's own, the owner of a pod CIDR). */
  node?: string;
}

export interface RouteEntryView {
  dst: string;
  gateway: string;
  /** 'vxlan': the VXLAN device; 'underlay': the node's underlay interface. */
  dev: 'vxlan' | 'underlay';
  devName: string;
  onlink: boolean;
  /** In `ip route` syntax. */
  detail: string;
}

export interface PathView {
  kind: 'same-node' | 'cross-node' | 'to-external' | 'from-external' | 'to-node' | 'local' | 'unroutable';
  srcNode?: string;
  dstNode?: string;
  /** The route the source node holds for the destination, as the backend programs it. */
  route?: RouteEntryView;
  /** Pod traffic leaving the cluster CIDRs leaves with the node's address (egress masquerade). */
  masqueraded: boolean;
  /** The way, one step a line. */
  steps: string[];
  problem?: string;
}

export interface RuleRefView {
  namespace: string;
  name: string;
  direction: 'ingress' | 'egress';
  index: number;
  /** A ClusterNetworkPolicy rule's name. */
  ruleName?: string;
}

/** What one tier did (present when a ClusterNetworkPolicy tier spoke): the last step decided. */
export interface TierStepView {
  tier: 'admin' | 'networkpolicy' | 'baseline';
  action: 'accept' | 'drop' | 'pass';
  priority?: number;
  /** The tier's first matching rule; absent: none matched (the tier's fall-through). */
  rule?: RuleRefView;
}

export interface DirectionView {
  /** The node whose agent judges this direction (the pod's own node). */
  node?: string;
  allowed: boolean;
  reason: 'not-a-pod' | 'not-local' | 'not-isolated' | 'node' | 'self' | 'allowed' | 'denied';
  isolatedBy: { namespace: string; name: string }[];
  rules: RuleRefView[];
  steps?: TierStepView[];
}

/**
 * `enforced`: this agent programs what the policies say; when it does not, the verdict is what the
 * policies would decide, and nothing filters the packet.
 */
export type PolicyView =
  | { available: false; reason: string }
  | { available: true; enforced: boolean; allowed: boolean; egress: DirectionView; ingress: DirectionView };

export interface ExplainAnswer {
  v: 1;
  node: string;
  src: Endpoint;
  dst: Endpoint;
  packet: { src: string; dst: string; protocol: Protocol; port?: number };
  path: PathView;
  policy: PolicyView;
  allowed: boolean;
}

/** What explain reads: the agent's caches and facts. */
export interface ExplainContext {
  config: Pick<AgentConfig, 'nodeName' | 'backend' | 'vni' | 'directRouting' | 'bridge' | 'clusterCIDRs'> &
    Partial<Pick<AgentConfig, 'serviceCIDRs'>>;
  nodes: readonly NodeInfo[];
  pods: readonly PodInfo[];
  /** This node's underlay prefixes (the peers on the segment get direct routes). */
  underlayPrefixes: readonly string[];
  /** This node's underlay interface name. */
  underlayIface: string | undefined;
  /** NetworkPolicy: undefined while this agent compiles none. */
  policy?: (
    packet: { src: string; dst: string; protocol: Protocol; port: number },
    srcNode: string | undefined,
    dstNode: string | undefined,
  ) => PolicyView | Promise<PolicyView>;
}

export class ExplainError extends Error {}

function isRunning(p: PodInfo): boolean {
  return p.status.phase !== 'Succeeded' && p.status.phase !== 'Failed';
}

/** The ends: "namespace/name", an address, or a CIDR. */
export function resolveEndpoint(input: string, ctx: ExplainContext, family?: 4 | 6): Endpoint {
  if (/^[a-z0-9]([-a-z0-9]*[a-z0-9])?\/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/.test(input)) {
    const [namespace, name] = input.split('/') as [string, string];
    const pod = ctx.pods.find((p) => p.metadata.namespace === namespace && p.metadata.name === name);
    if (!pod) throw new ExplainError(`no pod ${input} in the agent's cache (kubectl get pod -n ${namespace} ${name})`);
    const ips = podIPs(pod).map((ip) => normalizeIp(ip) ?? ip);
    const ip = ips.find((x) => family === undefined || familyOf(x) === family) ?? ips[0];
    if (ip === undefined) throw new ExplainError(`pod ${input} has no address yet (status.podIPs is empty)`);
    return {
      input,
      kind: 'pod',
      ip,
      pod: podView(pod, ips),
      ...(pod.spec.nodeName ? { node: pod.spec.nodeName } : {}),
    };
  }
  let ip = normalizeIp(input);
  let cidr: string | undefined;
  if (ip === undefined) {
    cidr = normalizeCidr(input);
    if (cidr === undefined) throw new ExplainError(`"${input}" is neither namespace/pod, an address nor a CIDR`);
    ip = cidr.split('/')[0] as string;
  }
  const base: Endpoint = { input, kind: 'external', ip, ...(cidr ? { cidr } : {}) };
  const pod = ctx.pods.find((p) => isRunning(p) && !p.spec.hostNetwork && podIPs(p).some((x) => normalizeIp(x) === ip));
  if (pod && !cidr) {
    const ips = podIPs(pod).map((x) => normalizeIp(x) ?? x);
    return { ...base, kind: 'pod', pod: podView(pod, ips), ...(pod.spec.nodeName ? { node: pod.spec.nodeName } : {}) };
  }
  const node = ctx.nodes.find((n) =>
    n.status.addresses.some(
      (a) => (a.type === 'InternalIP' || a.type === 'ExternalIP') && normalizeIp(a.address) === ip,
    ),
  );
  if (node && !cidr) return { ...base, kind: 'node', node: node.metadata.name };
  const owner = ctx.nodes.find((n) => n.spec.podCIDRs.some((c) => familyOf(c) === familyOf(ip) && cidrContains(c, ip)));
  if (owner) return { ...base, kind: 'pod-network', node: owner.metadata.name };
  if (ctx.config.clusterCIDRs.some((c) => familyOf(c) === familyOf(ip) && cidrContains(c, ip)))
    return { ...base, kind: 'pod-network' };
  return base;
}

function podView(pod: PodInfo, ips: string[]): NonNullable<Endpoint['pod']> {
  const v: NonNullable<Endpoint['pod']> = {
    namespace: pod.metadata.namespace ?? '',
    name: pod.metadata.name,
    ips,
    hostNetwork: pod.spec.hostNetwork === true,
    labels: pod.metadata.labels ?? {},
  };
  if (pod.spec.nodeName) v.node = pod.spec.nodeName;
  return v;
}

function modeFor(ctx: ExplainContext, nodeName: string): DatapathMode {
  const c = ctx.config;
  if (c.backend === 'host-gw') return { kind: 'host-gw' };
  const node = ctx.nodes.find((n) => n.metadata.name === nodeName);
  const first = node?.status.addresses.find((a) => a.type === 'InternalIP')?.address;
  return {
    kind: 'vxlan',
    directRouting: c.directRouting,
    vtepMac: vtepMacFor(nodeName),
    vtepFamily: first?.includes(':') ? 6 : 4,
  };
}

/**
 * The route `from` holds to `ip`, computed with the backends' own desiredState as that node's agent
 * computes it (the same segment as this node's is assumed for another node's direct routes).
 */
export async function desiredRouteOn(ctx: ExplainContext, from: string, ip: string): Promise<DesiredRoute | undefined> {
  const node = ctx.nodes.find((n) => n.metadata.name === from);
  if (!node) return undefined;
  // Every peer's entries, as the node's own pass computes them (a peer's route depends on the others:
  // claims on a CIDR, duplicates), in slices: at 5,000 nodes ~100 ms, which held the agent's loop.
  const { peers } = await onTheLoop(peersFromNodesSteps(ctx.nodes, from));
  const desired = await onTheLoop(
    desiredSteps(
      {
        mode: modeFor(ctx, from),
        local: { name: from, podCidrs: node.spec.podCIDRs, serviceCidrs: ctx.config.serviceCIDRs ?? [] },
        underlayPrefixes: ctx.underlayPrefixes,
      },
      peers,
    ),
  );
  return desired.routes.find((r) => familyOf(r.dst) === familyOf(ip) && cidrContains(r.dst, ip));
}

function routeView(ctx: ExplainContext, r: DesiredRoute, on: string): RouteEntryView {
  const devName =
    r.dev === 'vxlan'
      ? vxlanDeviceName(ctx.config.vni)
      : on === ctx.config.nodeName && ctx.underlayIface
        ? ctx.underlayIface
        : "the node's underlay interface";
  return {
    dst: r.dst,
    gateway: r.gateway,
    dev: r.dev,
    devName,
    onlink: r.onlink,
    detail: `${r.dst} via ${r.gateway} dev ${devName}${r.onlink ? ' onlink' : ''}`,
  };
}

function inCluster(ctx: ExplainContext, ip: string): boolean {
  return (
    ctx.config.clusterCIDRs.some((c) => familyOf(c) === familyOf(ip) && cidrContains(c, ip)) ||
    ctx.nodes.some((n) => n.spec.podCIDRs.some((c) => familyOf(c) === familyOf(ip) && cidrContains(c, ip)))
  );
}

/** The way from src to dst. */
export async function explainPath(ctx: ExplainContext, src: Endpoint, dst: Endpoint): Promise<PathView> {
  const bridge = ctx.config.bridge;
  const srcNode = src.kind === 'pod' || src.kind === 'node' ? src.node : undefined;
  const dstNode = dst.kind === 'pod' || dst.kind === 'node' || dst.kind === 'pod-network' ? dst.node : undefined;
  const base = { ...(srcNode ? { srcNode } : {}), ...(dstNode ? { dstNode } : {}), masqueraded: false };
  const hostNet = (e: Endpoint) => e.kind === 'pod' && e.pod?.hostNetwork === true;
  if (src.kind === 'pod' && !srcNode)
    return { ...base, kind: 'unroutable', steps: [], problem: `pod ${src.input} is not scheduled on a node yet` };
  if (dst.kind === 'pod' && !dstNode)
    return { ...base, kind: 'unroutable', steps: [], problem: `pod ${dst.input} is not scheduled on a node yet` };
  if (dst.kind === 'pod-network' && !dst.pod) {
    return {
      ...base,
      kind: 'unroutable',
      steps: [],
      problem: `${dst.ip} is in the pod network${dstNode ? ` (node ${dstNode}'s pod CIDR)` : ''} but no pod has it`,
    };
  }
  const leave = (on: string) =>
    hostNet(src) || src.kind === 'node'
      ? `leaves ${on}'s network stack`
      : `leaves ${src.input} through its eth0 onto bridge ${bridge} on ${on}`;
  const arrive = (on: string) =>
    dst.kind === 'node' || hostNet(dst)
      ? `is delivered to ${on}'s network stack`
      : `is bridged by ${bridge} on ${on} to ${dst.input}'s veth`;

  if (srcNode && dstNode && srcNode === dstNode) {
    return {
      ...base,
      kind: dst.kind === 'node' ? 'to-node' : src.kind === 'node' || hostNet(src) ? 'local' : 'same-node',
      steps: [leave(srcNode), arrive(dstNode)],
    };
  }
  if (srcNode && dstNode) {
    const r = await desiredRouteOn(ctx, srcNode, dst.ip);
    if (dst.kind === 'node') {
      return {
        ...base,
        kind: 'to-node',
        steps: [
          leave(srcNode),
          `is routed by ${srcNode} to node ${dstNode} over the underlay (its default route, not a Strand route)`,
          arrive(dstNode),
        ],
      };
    }
    if (!r)
      return {
        ...base,
        kind: 'unroutable',
        steps: [leave(srcNode)],
        problem: `node ${srcNode} has no Strand route to ${dst.ip} (node ${dstNode}'s pod CIDR): see strand status on ${srcNode}`,
      };
    const route = routeView(ctx, r, srcNode);
    const how =
      r.dev === 'vxlan'
        ? `is encapsulated by ${route.devName} on ${srcNode} to node ${dstNode} (VTEP ${r.gateway})`
        : `is routed by ${srcNode} via ${r.gateway} (node ${dstNode}) out of ${route.devName}`;
    return {
      ...base,
      kind: 'cross-node',
      route,
      steps: [leave(srcNode), `matches route ${route.detail} on ${srcNode}`, how, arrive(dstNode)],
    };
  }
  if (srcNode) {
    const masq = src.kind === 'pod' && !hostNet(src) && ctx.config.clusterCIDRs.length > 0 && !inCluster(ctx, dst.ip);
    return {
      ...base,
      kind: 'to-external',
      masqueraded: masq,
      steps: [
        leave(srcNode),
        `is routed by ${srcNode}'s own routes (its default route) to ${dst.cidr ?? dst.ip}`,
        ...(masq ? [`is masqueraded to ${srcNode}'s address (egress masquerade, chain agent-postrouting)`] : []),
      ],
    };
  }
  if (dstNode) {
    return {
      ...base,
      kind: 'from-external',
      steps: [
        `arrives at node ${dstNode} from ${src.cidr ?? src.ip} (outside the cluster: only when something routes ${dst.ip} to ${dstNode})`,
        arrive(dstNode),
      ],
    };
  }
  return { ...base, kind: 'unroutable', steps: [], problem: 'neither end is in the cluster' };
}

/** The whole answer. */
export async function explain(ctx: ExplainContext, q: ExplainQuery): Promise<ExplainAnswer> {
  let src = resolveEndpoint(q.src, ctx);
  const dst = resolveEndpoint(q.dst, ctx, familyOf(src.ip));
  if (familyOf(src.ip) !== familyOf(dst.ip) && src.kind === 'pod') src = resolveEndpoint(q.src, ctx, familyOf(dst.ip));
  if (familyOf(src.ip) !== familyOf(dst.ip))
    throw new ExplainError(`${q.src} (${src.ip}) and ${q.dst} (${dst.ip}) have no address family in common`);
  const protocol = q.protocol ?? 'TCP';
  const packet: ExplainAnswer['packet'] = { src: src.ip, dst: dst.ip, protocol };
  if (q.port !== undefined) packet.port = q.port;
  const path = await explainPath(ctx, src, dst);
  const srcNode = src.kind === 'pod' ? src.node : undefined;
  const dstNode = dst.kind === 'pod' ? dst.node : undefined;
  const policy: PolicyView = ctx.policy
    ? await ctx.policy({ src: src.ip, dst: dst.ip, protocol, port: q.port ?? 0 }, srcNode, dstNode)
    : { available: false, reason: 'this agent compiles no NetworkPolicy: nothing filters pod traffic' };
  const policyAllows = policy.available && policy.enforced ? policy.allowed : true;
  return {
    v: 1,
    node: ctx.config.nodeName,
    src,
    dst,
    packet,
    path,
    policy,
    allowed: path.kind !== 'unroutable' && policyAllows,
  };
}
