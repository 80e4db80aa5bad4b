// Names of the ClusterNetworkPolicy tiers' nftables objects: each local pod's chain per tier and
// direction, and the rule comments that counters, `strand explain` and the denied-connection log map
// back to a policy's rule (through the rendered table's `comments`).
import { POLICY_PREFIX, stableId } from '../names.ts';
import type { Direction, RuleRef } from '../types.ts';
import type { ClusterTier } from './parse.ts';

/** `agent-pol-ain-<hash>` (Admin, ingress), `aout`, `bin`, `bout`: apart from NetworkPolicy's `in`/`out`. */
export function clusterChainName(
  tier: ClusterTier,
  pod: { namespace: string; name: string },
  direction: Direction,
): string {
  const word = `${tier === 'admin' ? 'a' : 'b'}${direction === 'ingress' ? 'in' : 'out'}`;
  return `${POLICY_PREFIX}${word}-${stableId(['pod', pod.namespace, pod.name])}`;
}

/**
 * `cnp/<policy> <direction> <index> <rule name>` when it fits an nft comment in bare, quotable words
 * (the name may be any text up to 100 characters); else `cnp-<hash> <direction> <index>`, which the
 * table's `comments` maps back to the full reference.
 */
export function clusterRuleComment(ref: RuleRef): string {
  const name = ref.ruleName ?? '';
  const plain = `cnp/${ref.name} ${ref.direction} ${ref.index}${name === '' ? '' : ` ${name}`}`;
  if (/^[a-z0-9.-]+$/.test(ref.name) && /^[A-Za-z0-9 ._:/-]*$/.test(name) && plain.length <= 120) return plain;
  return `cnp-${stableId(['cnp', ref.name, name])} ${ref.direction} ${ref.index}`;
}
