// The planned nft layout of the flat ClusterNetworkPolicy tiers (flat.ts), NOT yet wired into
// renderPolicy: it renders the Admin and Baseline pod chains over flat tiers, to replace those
// renderPolicy writes (the next step merges it there; the tests do it by hand). Per local pod,
// direction and ClusterNetworkPolicy tier (P: the pod's chain, named as today):
//
//   chain P                         ip saddr <own> accept|return        (self, as today)
//                                   ip saddr vmap @agent-pol-cm-<g>-v4  (ingress saddr, egress daddr)
//                                   ip6 saddr vmap @agent-pol-cm-<g>-v6
//                                   goto <the pod's next tier chain>    (absent: the default, allowed)
//   map agent-pol-cm-<g>-v4|v6      interval: address range → jump agent-pol-cc-<g>-<class>
//   chain agent-pol-cc-<g>-<class>  meta l4proto . th dport vmap @agent-pol-cp-<g>-<class>
//                                   meta l4proto != @agent-pol-cnp-l4 jump agent-pol-cr-<rule>   (ICMP, …)
//   map agent-pol-cp-<g>-<class>    interval: inet_proto . inet_service → jump agent-pol-cr-<rule>
//   chain agent-pol-cr-<rule>       [limit … log] counter drop | accept | goto agent-pol-cnp-ingress | return
//   chain agent-pol-cnp-ingress     ip daddr vmap @agent-pol-ingress-v4, ip6 … -v6, accept
//
// <g> is the group: the pods whose tier has the same rule list (ruleListId) share the maps and class
// chains; a rule's chain (its counter, log and verdict) is shared by every pod. Why jumps: a Pass
// (`return`) or a class that decides nothing (runs out) must come back to P, which goes on to the
// pod's own next tier; so every step is a jump and P keeps the continuation. An egress Accept must
// instead skip the pod's later tiers: it `goto`s the ingress check (the skeleton's ingress dispatch,
// then accept: ingress is the last check, R1), ending the walk. Gaps of the address map fall through
// unless the default class decides something; then the map covers every address.
import { addrField, counter, lookup, match, meta, payload, verdict, vmap, type Expr } from '../../nft/expr.ts';
import type { Element, NftMap, NftSet, Rule } from '../../nft/objects.ts';
import { formatIp } from '../../net/ip.ts';
import { knownFamily as familyOf } from '../../net/text.ts';
import { POLICY_PREFIX, stableId } from '../names.ts';
import { TIERS } from '../pipeline.ts';
import { LOG_COMMENT, SELF_COMMENT } from '../render.ts';
import { actionVerdict, verdictMapName } from '../skeleton.ts';
import type { PolicyTier } from '../tier.ts';
import type { CommentMeaning, CompiledPolicy, DesiredChain, Direction, LocalPod, RuleRef } from '../types.ts';
import { flattenTier, ruleListId, type AddressRange, type FlatRule, type FlatTier } from './flat.ts';

export const FLAT_INGRESS_CHECK = `${POLICY_PREFIX}cnp-ingress`;
export const FLAT_PORT_PROTOCOLS = `${POLICY_PREFIX}cnp-l4`;
const classMapName = (group: string, family: 4 | 6) => `${POLICY_PREFIX}cm-${group}-v${family}`;
const classChainName = (group: string, cls: number) => `${POLICY_PREFIX}cc-${group}-${cls}`;
const portMapName = (group: string, cls: number) => `${POLICY_PREFIX}cp-${group}-${cls}`;
export const flatRuleChainName = (rule: RuleRef) =>
  `${POLICY_PREFIX}cr-${stableId([rule.name, rule.direction, rule.index])}`;

const PROTO_WORD = { TCP: 'tcp', UDP: 'udp', SCTP: 'sctp' } as const;

export interface FlatRendered {
  /** The pods' ClusterNetworkPolicy tier chains (replacing renderPolicy's), the groups' and rules' chains. */
  chains: Map<string, DesiredChain>;
  sets: Map<string, NftSet | NftMap>;
  elements: Map<string, Element[]>;
  comments: Map<string, CommentMeaning>;
  /** The flat tiers by group name. */
  groups: Map<string, FlatTier>;
}

function addressText(family: 4 | 6, v: bigint): string {
  const bytes = new Uint8Array(family === 4 ? 4 : 16);
  for (let i = bytes.length - 1; i >= 0; i--) {
    bytes[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return formatIp(bytes);
}

/** An address range as nft lists it back (so adoption compares like with like): a bare address, a
 * prefix when the range is exactly one, else `first-last`. */
export function rangeText(family: 4 | 6, first: bigint, last: bigint): string {
  const size = last - first + 1n;
  if (size === 1n) return addressText(family, first);
  if ((size & (size - 1n)) === 0n && first % size === 0n) {
    let len = family === 4 ? 32 : 128;
    for (let s = size; s > 1n; s >>= 1n) len--;
    return `${addressText(family, first)}/${len}`;
  }
  return `${addressText(family, first)}-${addressText(family, last)}`;
}

/** The map's ranges; with a default class that decides something, the gaps too (as class 0). */
function covering(ranges: readonly AddressRange[], family: 4 | 6, fill: boolean): AddressRange[] {
  if (!fill) return [...ranges];
  const max = family === 4 ? (1n << 32n) - 1n : (1n << 128n) - 1n;
  const out: AddressRange[] = [];
  let next = 0n;
  for (const r of ranges) {
    if (r.first > next) out.push({ first: next, last: r.first - 1n, class: 0 });
    out.push(r);
    next = r.last + 1n;
  }
  if (next <= max) out.push({ first: next, last: max, class: 0 });
  return out;
}

export function renderFlatClusterTiers(
  model: CompiledPolicy,
  options: { logDenied?: { perSecond: number } } = {},
): FlatRendered {
  const out: FlatRendered = {
    chains: new Map(),
    sets: new Map(),
    elements: new Map(),
    comments: new Map(),
    groups: new Map(),
  };
  const rule = (chain: string, body: Expr[], comment?: string): Rule =>
    comment === undefined ? { kind: 'rule', chain, body } : { kind: 'rule', chain, body, comment };
  const addChain = (name: string, rules: Rule[]) => out.chains.set(name, { chain: { kind: 'chain', name }, rules });

  const checks = SKELETON_INGRESS.map((family) =>
    rule(FLAT_INGRESS_CHECK, [vmap(addrField(family, 'daddr'), verdictMapName('ingress', family))]),
  );
  addChain(FLAT_INGRESS_CHECK, [...checks, rule(FLAT_INGRESS_CHECK, [verdict('accept')])]);
  out.sets.set(FLAT_PORT_PROTOCOLS, { kind: 'set', name: FLAT_PORT_PROTOCOLS, type: 'inet_proto' });
  out.elements.set(
    FLAT_PORT_PROTOCOLS,
    ['sctp', 'tcp', 'udp'].map((p): Element => ({ kind: 'element', set: FLAT_PORT_PROTOCOLS, key: [p] })),
  );

  const ruleChain = (tier: PolicyTier, r: FlatRule, direction: Direction): string => {
    const name = flatRuleChainName(r.source);
    if (out.chains.has(name)) return name;
    const comment = tier.ruleComment(r.source);
    out.comments.set(comment, {
      verdict: 'cnp',
      tier: tier.name,
      priority: r.priority,
      action: r.action,
      rule: r.source,
    });
    const rules: Rule[] = [];
    const log = options.logDenied;
    if (r.action === 'drop' && log && Number.isSafeInteger(log.perSecond) && log.perSecond > 0) {
      // Shared by every pod: the prefix names the rule; the logged packet's addresses name the pod.
      const limit: Expr = { kind: 'limit', rate: log.perSecond, per: 'second', burst: 2 * log.perSecond };
      rules.push(rule(name, [limit, { kind: 'log', prefix: `strand-deny ${comment}: `, level: 'info' }], LOG_COMMENT));
    }
    const end =
      r.action === 'pass'
        ? verdict('return')
        : r.action === 'drop'
          ? verdict('drop')
          : direction === 'ingress'
            ? verdict('accept')
            : verdict('goto', FLAT_INGRESS_CHECK);
    rules.push(rule(name, [counter(), end], comment));
    addChain(name, rules);
    return name;
  };

  const renderGroup = (tier: PolicyTier, direction: Direction, pod: LocalPod): string => {
    const rules = tier.rulesOf(pod, direction)?.rules ?? [];
    const group = stableId([tier.name, direction, ruleListId(rules)]);
    if (out.groups.has(group)) return group;
    const flat = flattenTier(rules, model.peers, model.namedPorts);
    out.groups.set(group, flat);
    const fill =
      flat.classes[0] !== undefined && (flat.classes[0].ports.length > 0 || flat.classes[0].other !== undefined);
    for (const family of [4, 6] as const) {
      const name = classMapName(group, family);
      const type = family === 4 ? 'ipv4_addr' : 'ipv6_addr';
      out.sets.set(name, { kind: 'map', name, type, value: 'verdict', flags: ['interval'] });
      out.elements.set(
        name,
        covering(family === 4 ? flat.v4 : flat.v6, family, fill).map((r) => {
          const key = rangeText(family, r.first, r.last);
          return { kind: 'element', set: name, key: [key], value: [`jump ${classChainName(group, r.class)}`] };
        }),
      );
    }
    for (const c of flat.classes) {
      if (c.id === 0 && !fill) continue; // nothing jumps to a default class that decides nothing
      const chain = classChainName(group, c.id);
      const body: Rule[] = [];
      if (c.ports.length > 0) {
        const map = portMapName(group, c.id);
        out.sets.set(map, {
          kind: 'map',
          name: map,
          type: 'inet_proto . inet_service',
          value: 'verdict',
          flags: ['interval'],
        });
        out.elements.set(
          map,
          c.ports.map((s) => ({
            kind: 'element',
            set: map,
            key: [PROTO_WORD[s.protocol], s.from === s.to ? String(s.from) : `${s.from}-${s.to}`],
            value: [`jump ${ruleChain(tier, flat.rules[s.rule] as FlatRule, direction)}`],
          })),
        );
        body.push(rule(chain, [vmap([meta('l4proto'), payload('th dport')], map)]));
      }
      if (c.other !== undefined) {
        const target = ruleChain(tier, flat.rules[c.other] as FlatRule, direction);
        body.push(rule(chain, [lookup(meta('l4proto'), FLAT_PORT_PROTOCOLS, 'ne'), verdict('jump', target)]));
      }
      addChain(chain, body);
    }
    return group;
  };

  for (const pod of model.pods) {
    for (const direction of ['egress', 'ingress'] as const) {
      const tiers = TIERS.filter((t) => t.rulesOf(pod, direction) !== undefined);
      tiers.forEach((tier, i) => {
        if (!tier.ordered) return; // NetworkPolicy: renderPolicy's chain, unchanged
        const name = tier.chainName(pod, direction);
        const next = tiers[i + 1]?.chainName(pod, direction);
        const field = direction === 'ingress' ? 'saddr' : 'daddr';
        const self = actionVerdict('accept', direction, undefined);
        const rules: Rule[] = pod.ips.map((ip) =>
          rule(name, [match(addrField(familyOf(ip), field), { kind: 'addr', addr: ip }), self], SELF_COMMENT),
        );
        const group = renderGroup(tier, direction, pod);
        for (const family of [4, 6] as const)
          rules.push(rule(name, [vmap(addrField(family, field), classMapName(group, family))]));
        if (next !== undefined) rules.push(rule(name, [verdict('goto', next)]));
        addChain(name, rules);
      });
    }
  }
  return out;
}

const SKELETON_INGRESS = [4, 6] as const;
