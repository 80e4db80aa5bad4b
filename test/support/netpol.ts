// The upstream NetworkPolicy e2e model (netpol-semantics.md §3) as compiler input, and a simulated
// cluster that judges connections the way the real one does: every node compiles its own policy,
// applies the difference to a FakeNft (kernel semantics), and a connection is allowed when the
// source's node (egress) and the destination's node (ingress) both allow it (R1). Each verdict is
// taken twice, from the compiled model and from the nft objects the fake holds, and the two must
// agree: the tests check the layout and the diffs, not only the model.
import type { NamespaceInfo, NetworkPolicyInfo, PodInfo, PodPort } from '../../src/k8s/objects.ts';
import { FakeNft } from '../../src/nft/fake.ts';
import {
  compilePolicy,
  diffPolicy,
  evaluateNft,
  evaluatePolicy,
  fullBuildPolicy,
  renderPolicy,
  type ClusterNetworkPolicyObject,
  type CompiledPolicy,
  type DesiredPolicyTable,
  type NftView,
  type Packet,
  type PolicyNode,
  type Protocol,
} from '../../src/policy/index.ts';

export const NAMESPACES = ['x', 'y', 'z'] as const;
export const POD_NAMES = ['a', 'b', 'c'] as const;
export const NODES = ['n1', 'n2', 'n3'] as const;
export const NODE_IPS: Record<string, string> = { n1: '192.168.50.1', n2: '192.168.50.2', n3: '192.168.50.3' };
export const NODE_IPS_V6: Record<string, string> = { n1: 'fd50::1', n2: 'fd50::2', n3: 'fd50::3' };

/** The e2e servers' container ports: serve-<port>-<proto> on 80 and 81, TCP, UDP and SCTP. */
export function servePorts(ports: readonly number[] = [80, 81]): PodPort[] {
  const out: PodPort[] = [];
  for (const port of ports)
    for (const protocol of ['TCP', 'UDP', 'SCTP'])
      out.push({ name: `serve-${port}-${protocol.toLowerCase()}`, containerPort: port, protocol });
  return out;
}

export interface PodSpecLite {
  namespace: string;
  name: string;
  labels?: Record<string, string>;
  node: string;
  ips: string[];
  ports?: PodPort[];
  hostNetwork?: boolean;
  phase?: string;
}

export function pod(p: PodSpecLite): PodInfo {
  return {
    metadata: { name: p.name, namespace: p.namespace, ...(p.labels ? { labels: p.labels } : {}) },
    spec: {
      nodeName: p.node,
      ...(p.hostNetwork ? { hostNetwork: true } : {}),
      containers: p.ports ? [{ name: 'c', ports: p.ports }] : [],
    },
    status: { phase: p.phase ?? 'Running', podIPs: p.ips.map((ip) => ({ ip })) },
  };
}

export function namespace(name: string, labels: Record<string, string> = {}): NamespaceInfo {
  return { metadata: { name, labels: { 'kubernetes.io/metadata.name': name, ...labels } } };
}

export function policy(ns: string, name: string, spec: Record<string, unknown>): NetworkPolicyInfo {
  return { metadata: { name, namespace: ns }, spec };
}

/** Pod `ns/name` of the upstream model: on node (ns index + pod index) mod 3, so every namespace and
 * every pod name is spread over the three nodes. */
export function upstreamPods(family: 4 | 6 = 4): PodInfo[] {
  const out: PodInfo[] = [];
  NAMESPACES.forEach((ns, i) =>
    POD_NAMES.forEach((name, j) => {
      const node = NODES[(i + j) % 3] as string;
      const ip =
        family === 4
          ? `10.244.${(i + j) % 3}.${10 * (i + 1) + j + 1}`
          : `fd00:244:${(i + j) % 3}::${(10 * (i + 1) + j + 1).toString(16)}`;
      out.push(pod({ namespace: ns, name, labels: { pod: name }, node, ips: [ip], ports: servePorts() }));
    }),
  );
  return out;
}

export const upstreamNamespaces = (): NamespaceInfo[] => NAMESPACES.map((ns) => namespace(ns, { ns }));

export type Reachability = Map<string, boolean>;

export interface Probe {
  protocol?: Protocol;
  port: number;
}

export class SimCluster {
  namespaces: NamespaceInfo[];
  pods: PodInfo[];
  policies: NetworkPolicyInfo[];
  /** ClusterNetworkPolicies (both tiers) and the nodes their `nodes` peers select. */
  clusterPolicies: ClusterNetworkPolicyObject[] = [];
  nodes: PolicyNode[] = [];
  readonly fakes = new Map<string, FakeNft>();
  readonly applied = new Map<string, DesiredPolicyTable>();
  readonly models = new Map<string, CompiledPolicy>();
  /** Scripts of the last step's transactions, per node. */
  readonly lastScripts = new Map<string, string>();

  constructor(opts: { namespaces?: NamespaceInfo[]; pods?: PodInfo[]; policies?: NetworkPolicyInfo[] } = {}) {
    this.namespaces = opts.namespaces ?? upstreamNamespaces();
    this.pods = opts.pods ?? upstreamPods();
    this.policies = opts.policies ?? [];
    for (const n of NODES) this.fakes.set(n, new FakeNft());
  }

  nodeAddresses(node: string): string[] {
    return [NODE_IPS[node] as string, NODE_IPS_V6[node] as string];
  }

  /** Every node compiles, renders and applies the difference to its fake. */
  async sync(): Promise<void> {
    for (const node of NODES) {
      const model = compilePolicy({
        nodeName: node,
        nodeAddresses: this.nodeAddresses(node),
        namespaces: this.namespaces,
        pods: this.pods,
        policies: this.policies,
        clusterNetworkPolicies: this.clusterPolicies,
        nodes: this.nodes,
      });
      const desired = renderPolicy(model);
      const tx = diffPolicy(this.applied.get(node), desired);
      const fake = this.fakes.get(node) as FakeNft;
      this.lastScripts.set(node, tx.render());
      await fake.run(tx);
      this.applied.set(node, desired);
      this.models.set(node, model);
    }
  }

  /** A rebuild of every node's table from what its fake lists (the applier's adoption path). */
  async rebuild(): Promise<void> {
    for (const node of NODES) {
      const fake = this.fakes.get(node) as FakeNft;
      await fake.run(fullBuildPolicy(this.applied.get(node) as DesiredPolicyTable, await fake.list()));
    }
  }

  nodeOf(ip: string): string | undefined {
    for (const p of this.pods)
      if (p.status.podIPs.some((x) => x.ip === ip) && !p.spec.hostNetwork) return p.spec.nodeName;
    for (const n of NODES) if (this.nodeAddresses(n).includes(ip)) return n;
    return undefined;
  }

  /** Both judges on one connection; throws when the model and the nft objects disagree. */
  verdict(packet: Packet): boolean {
    const nodes = [
      ...new Set([this.nodeOf(packet.src), this.nodeOf(packet.dst)].filter((n): n is string => n !== undefined)),
    ];
    let allowed = true;
    for (const node of nodes) {
      const model = this.models.get(node) as CompiledPolicy;
      const byModel = evaluatePolicy(model, packet).allowed;
      const view = (this.fakes.get(node) as FakeNft).state as unknown as NftView;
      const byNft = evaluateNft(view, packet, model.nodeAddresses).allowed;
      if (byModel !== byNft)
        throw new Error(`node ${node}: model says ${byModel}, nft says ${byNft} for ${JSON.stringify(packet)}`);
      allowed &&= byModel;
    }
    return allowed;
  }

  ipOf(ref: string): string {
    const [ns, name] = ref.split('/');
    const p = this.pods.find((x) => x.metadata.namespace === ns && x.metadata.name === name);
    if (!p) throw new Error(`no pod ${ref}`);
    return (p.status.podIPs[0] as { ip: string }).ip;
  }

  /** "from→to" → allowed for every pair of pod-network pods (self cells left out, R12). */
  reachability(probe: Probe): Reachability {
    const refs = this.pods.filter((p) => !p.spec.hostNetwork).map((p) => `${p.metadata.namespace}/${p.metadata.name}`);
    const out: Reachability = new Map();
    for (const from of refs) {
      for (const to of refs) {
        if (from === to) continue;
        out.set(
          `${from}→${to}`,
          this.verdict({
            src: this.ipOf(from),
            dst: this.ipOf(to),
            protocol: probe.protocol ?? 'TCP',
            dport: probe.port,
          }),
        );
      }
    }
    return out;
  }
}

/** The expected table from a predicate over "ns/name" pairs (self cells left out). */
export function expected(cluster: SimCluster, allowed: (from: string, to: string) => boolean): Reachability {
  const refs = cluster.pods.filter((p) => !p.spec.hostNetwork).map((p) => `${p.metadata.namespace}/${p.metadata.name}`);
  const out: Reachability = new Map();
  for (const from of refs) for (const to of refs) if (from !== to) out.set(`${from}→${to}`, allowed(from, to));
  return out;
}

/** The cells where two tables differ, for a readable failure. */
export function differences(actual: Reachability, want: Reachability): string[] {
  const out: string[] = [];
  for (const [cell, w] of want)
    if (actual.get(cell) !== w) out.push(`${cell}: want ${w ? '✓' : '✗'}, got ${actual.get(cell) ? '✓' : '✗'}`);
  return out;
}

export const nsOf = (ref: string): string => ref.split('/')[0] as string;
export const nameOf = (ref: string): string => ref.split('/')[1] as string;
