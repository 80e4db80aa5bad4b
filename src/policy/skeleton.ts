// The policy's fixed frame in table `inet strand`, declared once as data and owned by the policy
// layer, not by any tier:
//
//   chain agent-pol-forward { type filter hook forward priority filter ; policy accept ;
//     ct state established,related accept                      R13: replies of allowed connections
//     icmpv6 type { nd-… } accept                                R14: neighbour discovery keeps working
//     ip saddr vmap @agent-pol-egress-v4                         egress of local pods with rules
//     ip6 saddr vmap @agent-pol-egress-v6
//     ip daddr vmap @agent-pol-ingress-v4                        ingress of local pods with rules
//     ip6 daddr vmap @agent-pol-ingress-v6
//   }
//   map agent-pol-{ingress,egress}-v{4,6} { type ipv4_addr|ipv6_addr : verdict }
//
// The dispatch has one slot per direction: a pod's address jumps to its chain of the first tier that
// has rules for it in that direction; that chain goes on (`goto`) to the pod's chain of the next
// such tier when its rules pass the packet on or all miss. So a packet costs the conntrack check,
// one verdict-map lookup per direction and its own pod's chains, whatever the number of tiers,
// policies or pods. `goto` (not `jump`) keeps the return address the dispatch's: an egress accept
// (`return`) goes straight on to the destination's ingress check, both must allow (R1).
import { addrField, ICMPV6_TYPES, match, payload, verdict, vmap, type Expr, type Value } from '../nft/expr.ts';
import { PRIORITY, type NftMap, type Rule } from '../nft/objects.ts';
import { POLICY_PREFIX } from './names.ts';
import type { DesiredChain, Direction, RuleAction } from './types.ts';

/** Comments of the rules every tier writes alike (render.ts re-exports them). */
export const DENY_COMMENT = 'deny';
export const SELF_COMMENT = 'self';
export const LOG_COMMENT = 'log';

export const FORWARD_CHAIN = `${POLICY_PREFIX}forward`;

export function verdictMapName(direction: Direction, family: 4 | 6): string {
  return `${POLICY_PREFIX}${direction}-v${family}`;
}

const NDP_TYPES: Value = {
  kind: 'anon-set',
  elements: ICMPV6_TYPES.filter((t) => t.startsWith('nd-')).map((value) => ({ kind: 'keyword', value })),
};

/** The skeleton as data: the base chain, what it accepts before any tier, and the dispatch order. */
export const SKELETON = {
  chain: FORWARD_CHAIN,
  // Only the forward hook: bridged pod traffic reaches it through br_netfilter, routed traffic (other
  // nodes, VXLAN) anyway. The node's own traffic to its pods (output) and its pods' traffic to it
  // (input) are allowed (R11), so neither hook needs a chain.
  base: { type: 'filter', hook: 'forward', priority: PRIORITY.filter, policy: 'accept' },
  accepts: [
    [match({ kind: 'ct', key: 'state' }, { kind: 'flags', values: ['established', 'related'] }), verdict('accept')],
    // R14: neighbour discovery between pods on one bridge is bridged IPv6 (br_netfilter brings it
    // here, with pod addresses as sources): an isolated pod must still find its neighbours.
    [match(payload('icmpv6 type'), NDP_TYPES), verdict('accept')],
  ] satisfies readonly (readonly Expr[])[],
  /** Egress first (judged at the source), then ingress (at the destination); v4 then v6. */
  dispatch: [
    { direction: 'egress', field: 'saddr' },
    { direction: 'ingress', field: 'daddr' },
  ],
  families: [4, 6],
} as const;

const addrType = (family: 4 | 6) => (family === 4 ? 'ipv4_addr' : 'ipv6_addr');

/** The skeleton's chain and its (empty) verdict maps. */
export function renderSkeleton(): { chain: DesiredChain; maps: NftMap[] } {
  const name = SKELETON.chain;
  const rules: Rule[] = SKELETON.accepts.map((body) => ({ kind: 'rule', chain: name, body: [...body] }));
  const maps: NftMap[] = [];
  for (const { direction, field } of SKELETON.dispatch) {
    for (const family of SKELETON.families) {
      const map = verdictMapName(direction, family);
      maps.push({ kind: 'map', name: map, type: addrType(family), value: 'verdict' });
      rules.push({ kind: 'rule', chain: name, body: [vmap(addrField(family, field), map)] });
    }
  }
  return { chain: { chain: { kind: 'chain', name, base: { ...SKELETON.base } }, rules }, maps };
}

/**
 * The verdict of a rule with this action in a pod's tier chain. `next`: the pod's chain of the next
 * tier with rules for it in this direction (absent: the default, allow).
 */
export function actionVerdict(action: RuleAction, direction: Direction, next: string | undefined): Expr {
  if (action === 'drop') return verdict('drop');
  if (action === 'pass' && next !== undefined) return verdict('goto', next);
  // Allowed in this direction: an egress check returns to the dispatch, which goes on to the
  // destination's ingress; an ingress check is the last one.
  return verdict(direction === 'ingress' ? 'accept' : 'return');
}
