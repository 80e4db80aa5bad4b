// One NetworkPolicy rule, parsed, to a CompiledRule: its peers as shared peer ids, its ports as
// numeric ranges (ingress named ports resolved on the selected pod) and egress named ports as ids of
// sets resolved later on the destination pods (R10). Every NetworkPolicy rule accepts (R4).
import { byText, portProtocol, type ClusterPod } from '../cluster.ts';
import type { PeerRegistry } from '../peers.ts';
import type { TierMemo } from '../tier.ts';
import { samePlain } from '../../util/same-plain.ts';
import type { CompiledRule, Direction, NamedPort, PortRange, RuleRef } from '../types.ts';
import type { ParsedPolicy, ParsedPort, ParsedRule } from './parse.ts';

/** Compiles rules for one compile; a rule compiles the same for every pod it applies to, unless
 * ingress named ports resolve on the pod. With a memo (the incremental compiler's, kept from one
 * compile to the next), a rule that compiles equal to its last compile is that very object: the
 * render's per-rule memos (render.ts, RULE_MATCHES and the rendered rules) and the diff then pass
 * over it by identity (a policy added to a pod's namespace re-renders the pods it selects, ~18 rules
 * each at 10,000 policies, all but one of them unchanged). */
export class RuleCompiler {
  private readonly registry: PeerRegistry;
  private readonly memo: TierMemo | undefined;
  private readonly podIndependent = new Map<ParsedRule, CompiledRule>();

  constructor(registry: PeerRegistry, memo?: TierMemo) {
    this.registry = registry;
    this.memo = memo;
  }

  compile(policy: ParsedPolicy, rule: ParsedRule, direction: Direction, pod: ClusterPod): CompiledRule {
    const shared = this.podIndependent.get(rule);
    if (shared) return shared;
    const perPod = direction === 'ingress' && rule.ports !== 'all' && rule.ports.some((p) => p.kind === 'named');
    const compiled = this.kept(rule, perPod, this.compileFor(policy, rule, direction, pod));
    if (!perPod) this.podIndependent.set(rule, compiled);
    return compiled;
  }

  /** The memo's object for `compiled` when it is equal to it, else `compiled` (remembered). Keyed by
   * the parsed rule, which lives as long as its policy object (parse.ts memoises it), and for a rule
   * whose named ports resolve on each pod by the ports they resolved to (the same for most pods). */
  private kept(rule: ParsedRule, perPod: boolean, compiled: CompiledRule): CompiledRule {
    if (!this.memo) return compiled;
    let byPorts = this.memo.get(rule) as Map<string, CompiledRule> | undefined;
    if (!byPorts) {
      byPorts = new Map();
      this.memo.set(rule, byPorts);
    }
    const key = perPod && compiled.ports !== 'all' ? portsKey(compiled.ports) : '';
    const was = byPorts.get(key);
    if (was !== undefined && samePlain(was, compiled)) return was;
    if (byPorts.size >= MAX_PORT_VARIANTS) byPorts.clear();
    byPorts.set(key, compiled);
    return compiled;
  }

  private compileFor(policy: ParsedPolicy, rule: ParsedRule, direction: Direction, pod: ClusterPod): CompiledRule {
    const source: RuleRef = { ...policy.ref, direction, index: rule.index };
    const base = { source, tier: 'networkpolicy', priority: 0, action: 'accept' } as const;
    if (rule.broken) return { ...base, peers: [], ports: [], namedPorts: [], broken: true };
    const peerIds = rule.peers === 'all' ? undefined : new Set(rule.peers.map((m) => this.registry.peer(m)));
    const peers = peerIds === undefined ? 'all' : [...peerIds].sort(byText);
    if (rule.ports === 'all') return { ...base, peers, ports: 'all', namedPorts: [] };
    const { ranges, named } = portsOf(rule.ports, direction, pod);
    const namedPorts: string[] = [];
    if (named.length > 0) {
      // R10: egress names resolve on each destination pod the peer matches (or any pod).
      for (const peer of peers === 'all' ? [undefined] : peers) namedPorts.push(this.registry.namedPorts(peer, named));
    }
    return { ...base, peers, ports: ranges, namedPorts: [...new Set(namedPorts)].sort(byText) };
  }
}

/** Different port lists one rule with ingress named ports is remembered for (cleared when full). */
const MAX_PORT_VARIANTS = 64;

function portsKey(ranges: readonly PortRange[]): string {
  let key = '';
  for (const r of ranges) key += `${r.protocol} ${r.from} ${r.to},`;
  return key;
}

/** A rule's ports as sorted unique ranges, and its egress named ports (sorted); ingress named ports
 * resolve here, on the destination: the selected pod itself (R10). */
function portsOf(
  ports: readonly ParsedPort[],
  direction: Direction,
  pod: ClusterPod,
): { ranges: PortRange[]; named: NamedPort[] } {
  const ranges = new Map<string, PortRange>();
  const named = new Map<string, NamedPort>();
  const addRange = (r: PortRange) => ranges.set(`${r.protocol} ${r.from} ${r.to}`, r);
  for (const p of ports) {
    if (p.kind === 'all') addRange({ protocol: p.protocol, from: 0, to: 65535 });
    else if (p.kind === 'range') addRange({ protocol: p.protocol, from: p.from, to: p.to });
    else if (direction === 'ingress') {
      // A name the pod lacks (or serves on another protocol) matches nothing.
      for (const cp of pod.ports) {
        if (cp.name !== p.name || portProtocol(cp.protocol) !== p.protocol) continue;
        addRange({ protocol: p.protocol, from: cp.containerPort, to: cp.containerPort });
      }
    } else named.set(`${p.protocol} ${p.name}`, { protocol: p.protocol, name: p.name });
  }
  const byRange = (a: PortRange, b: PortRange) => byText(a.protocol, b.protocol) || a.from - b.from || a.to - b.to;
  const sortedRanges = [...ranges.values()].sort(byRange);
  const sortedNamed = [...named.values()].sort((a, b) => byText(a.protocol, b.protocol) || byText(a.name, b.name));
  return { ranges: sortedRanges, named: sortedNamed };
}
