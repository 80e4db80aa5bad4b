// Names of the NetworkPolicy tier's nftables objects: the per-pod chains and the rule comments that
// the counters and `strand explain` map back to policies.
import { POLICY_PREFIX, stableId } from '../names.ts';
import type { Direction, RuleRef } from '../types.ts';

export function podChainName(pod: { namespace: string; name: string }, direction: Direction): string {
  return `${POLICY_PREFIX}${direction === 'ingress' ? 'in' : 'out'}-${stableId(['pod', pod.namespace, pod.name])}`;
}

/** The comment of an allow rule: `<ns>/<name> <direction> <index>`, or a hash of the policy when its
 * names would not fit (or hold what an nft comment cannot). */
export function ruleComment(ref: RuleRef): string {
  const plain = `${ref.namespace}/${ref.name} ${ref.direction} ${ref.index}`;
  if (/^[a-z0-9.-]+\/[a-z0-9.-]+ /.test(plain) && plain.length <= 120) return plain;
  return `policy-${stableId(['policy', ref.namespace, ref.name])} ${ref.direction} ${ref.index}`;
}
