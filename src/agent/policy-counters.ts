// The policy rules' packet counters, read back from the kernel: per local pod and direction, allowed
// and denied; per policy and direction, allowed; per ClusterNetworkPolicy rule (its policy, rule name,
// tier and action), what it matched on this node's pods. The rendered table says who each per-pod chain
// belongs to (chainOwners) and what each rule comment stands for (comments); the transport's
// counters() gives each counted rule's chain, comment and packets.
import type { RuleCounter } from '../nft/transport.ts';
import type { CompiledRule, DesiredPolicyTable, Direction, RuleAction, RuleRef, TierName } from '../policy/index.ts';
import { flatGroupsOf } from '../policy/render.ts';

export interface PodCounter {
  namespace: string;
  name: string;
  direction: Direction;
  verdict: 'allow' | 'deny';
  packets: number;
}

export interface PolicyCounter {
  namespace: string;
  name: string;
  direction: Direction;
  packets: number;
}

export interface ClusterRuleCounter {
  policy: string;
  /** The rule's name, or `ingress[0]` when it has none. */
  rule: string;
  tier: TierName;
  action: RuleAction;
  direction: Direction;
  packets: number;
}

const clusterRuleKey = (ref: RuleRef) => `${ref.name}\u0000${ref.direction}\u0000${ref.index}`;
const clusterRuleCounter = (ref: RuleRef, tier: TierName, action: RuleAction): ClusterRuleCounter => ({
  policy: ref.name,
  rule: ref.ruleName ?? `${ref.direction}[${ref.index}]`,
  tier,
  action,
  direction: ref.direction,
  packets: 0,
});

export function readPolicyCounters(
  counters: readonly RuleCounter[],
  table: DesiredPolicyTable,
): { pods: PodCounter[]; policies: PolicyCounter[]; clusterRules: ClusterRuleCounter[] } {
  const pods = new Map<string, PodCounter>();
  const policies = new Map<string, PolicyCounter>();
  const clusterRules = new Map<string, ClusterRuleCounter>();
  for (const r of counters) {
    const packets = r.packets;
    const meaning = r.comment === undefined ? undefined : table.comments.get(r.comment);
    if (meaning?.verdict === 'cnp') {
      // A CNP rule's counter is in its own chain, shared by every pod it selects (the flat layout,
      // clusternetworkpolicy/flat-render.ts): no pod owns it. Summed in case a table has several.
      const key = clusterRuleKey(meaning.rule);
      const c = clusterRules.get(key) ?? clusterRuleCounter(meaning.rule, meaning.tier, meaning.action);
      c.packets += packets;
      clusterRules.set(key, c);
      continue;
    }
    const owner = table.chainOwners.get(r.chain);
    if (!owner) continue;
    if (!meaning || (meaning.verdict !== 'allow' && meaning.verdict !== 'deny')) continue;
    const pk = `${owner.pod.namespace}/${owner.pod.name}/${owner.direction}/${meaning.verdict}`;
    const pod = pods.get(pk) ?? {
      namespace: owner.pod.namespace,
      name: owner.pod.name,
      direction: owner.direction,
      verdict: meaning.verdict,
      packets: 0,
    };
    pod.packets += packets;
    pods.set(pk, pod);
    if (meaning.verdict === 'allow') {
      const key = `${meaning.rule.namespace}/${meaning.rule.name}/${meaning.rule.direction}`;
      const p = policies.get(key) ?? {
        namespace: meaning.rule.namespace,
        name: meaning.rule.name,
        direction: meaning.rule.direction,
        packets: 0,
      };
      p.packets += packets;
      policies.set(key, p);
    }
  }
  // A CNP rule an earlier one always decides has no chain, so no kernel counter: every rule of the
  // table's flat groups (the rule lists the pods share, each walked once) that has none is at 0.
  const walked = new Set<readonly CompiledRule[]>();
  for (const { request } of flatGroupsOf(table)?.values() ?? []) {
    if (walked.has(request.rules)) continue;
    walked.add(request.rules);
    for (const r of request.rules) {
      const key = clusterRuleKey(r.source);
      if (!clusterRules.has(key)) clusterRules.set(key, clusterRuleCounter(r.source, r.tier, r.action));
    }
  }
  return { pods: [...pods.values()], policies: [...policies.values()], clusterRules: [...clusterRules.values()] };
}

/**
 * Past this many rules a chain on average, the chains that hold counted rules are read one filtered
 * dump each rather than the whole table in one: every continuation of a rule dump walks the dumped
 * chains' rules from their start again in the kernel (nf_tables_dump_rules skips what it already
 * sent), so one dump of a large table costs the kernel its size squared over a datagram's worth,
 * while a chain's own dump walks only that chain. Below it, a request per chain costs more than the
 * skipping (bench/nft-read.mjs shapes: 10,000 rules in 100 chains, the kernel's time halved; in
 * 2,000 chains, a third more).
 */
export const RULES_PER_CHAIN_APART = 32;

const chainsRead = new WeakMap<DesiredPolicyTable, readonly string[] | undefined>();

/**
 * The chains whose counters readPolicyCounters uses (the pods' chains and those holding a
 * ClusterNetworkPolicy rule), to be read apart; undefined: read the whole table in one dump.
 */
export function countedChains(table: DesiredPolicyTable): readonly string[] | undefined {
  if (chainsRead.has(table)) return chainsRead.get(table);
  const chains: string[] = [];
  let rules = 0;
  for (const [name, c] of table.chains) {
    const counted =
      table.chainOwners.has(name) ||
      c.rules.some((r) => r.comment !== undefined && table.comments.get(r.comment)?.verdict === 'cnp');
    if (!counted) continue;
    chains.push(name);
    rules += c.rules.length;
  }
  const apart = chains.length > 0 && rules / chains.length >= RULES_PER_CHAIN_APART ? chains : undefined;
  chainsRead.set(table, apart);
  return apart;
}
