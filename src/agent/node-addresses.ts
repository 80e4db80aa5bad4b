// This node's pod CIDRs and its own addresses: one definition each, read by node set-up, the policy
// input builder (R11: a node's own addresses always reach its pods) and `strand explain` (which
// compiles any node's model, so it takes the node as an argument).
import { firstHost, formatIp, parseCidr, type ParsedCidr } from '../net/ip.ts';
import { normalizeIp } from '../net/text.ts';
import type { NodeInfo } from '../k8s/objects.ts';

/** IPv4 and IPv6 text in one canonical form, so the API's and IPAM's addresses compare. */
export function canonicalIp(ip: string): string {
  return normalizeIp(ip.split('/')[0] ?? ip) ?? ip;
}

/** Node.spec.podCIDRs checked and normalised: one per family at most, IPv4 first; or why not. */
export function nodePodCidrs(node: NodeInfo): { cidrs: string[] } | { problem: string } {
  const cidrs: string[] = [];
  for (const raw of node.spec.podCIDRs) {
    let c: ParsedCidr;
    try {
      if (!raw.includes('/')) throw new Error('no prefix length');
      c = parseCidr(raw);
    } catch {
      return { problem: `node ${node.metadata.name} has a malformed pod CIDR ${JSON.stringify(raw)}` };
    }
    const text = `${formatIp(c.bytes)}/${c.prefixLength}`;
    if (cidrs.some((x) => x.includes(':') === text.includes(':'))) {
      const all = node.spec.podCIDRs.join(', ');
      return { problem: `node ${node.metadata.name} has more than one IPv${c.family} pod CIDR: ${all}` };
    }
    cidrs.push(text);
  }
  cidrs.sort((a, b) => Number(a.includes(':')) - Number(b.includes(':')));
  return { cidrs };
}

/**
 * A node's own addresses, from which its pods are always reachable (kubelet probes, R11): the Node's
 * InternalIP and ExternalIP, its underlay's (known for this node only: another node's underlay
 * address is its InternalIP in a cluster Strand set up), and the bridge's gateway in each pod CIDR.
 */
export function nodeAddresses(node: NodeInfo | undefined, underlay: readonly string[] = []): string[] {
  const out = new Set<string>();
  for (const a of node?.status.addresses ?? []) {
    if (a.type === 'InternalIP' || a.type === 'ExternalIP') out.add(canonicalIp(a.address));
  }
  for (const a of underlay) out.add(canonicalIp(a));
  for (const c of node?.spec.podCIDRs ?? []) {
    try {
      out.add(canonicalIp(firstHost(c)));
    } catch {
      // A malformed pod CIDR gets no gateway (node set-up reports it).
    }
  }
  return [...out];
}
