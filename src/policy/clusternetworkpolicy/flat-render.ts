// The nft layout of the flat ClusterNetworkPolicy tiers (flat.ts), what renderPolicy writes for the
// Admin and Baseline tiers (flatPodChain per pod, renderFlatGroup per group, flatShared once). Per
// local pod, direction and ClusterNetworkPolicy tier (P: the pod's chain):
//
//   chain P                         ip saddr <own> accept|return        (self, as today)
//                                   ip saddr vmap @agent-pol-cm-<g>-v4  (ingress saddr, egress daddr)
//                                   ip6 saddr vmap @agent-pol-cm-<g>-v6
//                                   goto <the pod's next tier chain>    (absent: the default, allowed)
//   map agent-pol-cm-<g>-v4|v6      interval: address range → jump agent-pol-cc-<class>
//   chain agent-pol-cc-<class>      meta l4proto . th dport vmap @agent-pol-cp-<class>
//                                   meta l4proto != @agent-pol-cnp-l4 jump agent-pol-cr-<rule>   (ICMP, …)
//   map agent-pol-cp-<class>        interval: inet_proto . inet_service → jump agent-pol-cr-<rule>
//   chain agent-pol-cr-<rule>       [limit … log] counter drop | accept | goto agent-pol-cnp-ingress | return
//   chain agent-pol-cnp-ingress     ip daddr vmap @agent-pol-ingress-v4, ip6 … -v6, accept
//
// <g> is the group: the pods whose tier has the same rule list (ruleListId) share its address maps;
// <class> hashes what a class decides (the rule chain per port segment), so groups share the class
// chains and port maps that decide alike; a rule's chain (its counter, log and verdict) is shared by
// every pod. Why jumps: a Pass
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
import { actionVerdict, LOG_COMMENT, SELF_COMMENT, verdictMapName } from '../skeleton.ts';
import type { PolicyTier } from '../tier.ts';
import type {
  CommentMeaning,
  CompiledPolicy,
  CompiledRule,
  DesiredChain,
  Direction,
  LocalPod,
  NamedPortSet,
  PeerSet,
  RuleRef,
} from '../types.ts';
import { flattenTier, ruleListId, type AddressRange, type FlatRule, type FlatTier } from './flat.ts';

const SKELETON_INGRESS = [4, 6] as const;
export const FLAT_INGRESS_CHECK = `${POLICY_PREFIX}cnp-ingress`;
export const FLAT_PORT_PROTOCOLS = `${POLICY_PREFIX}cnp-l4`;
const classMapName = (group: string, family: 4 | 6) => `${POLICY_PREFIX}cm-${group}-v${family}`;
// A class's chain and port map are named by what they decide (the rule chains per port segment), not
// by their group: groups that decide alike somewhere share them, so a group that a change replaces
// (its rule list, and so its name, changed) creates only the classes that are new, not all of its own.
const classChainName = (cls: string) => `${POLICY_PREFIX}cc-${cls}`;
const portMapName = (cls: string) => `${POLICY_PREFIX}cp-${cls}`;
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

export interface FlatParts {
  chains: Map<string, DesiredChain>;
  sets: Map<string, NftSet | NftMap>;
  elements: Map<string, Element[]>;
  comments: Map<string, CommentMeaning>;
}

export interface FlatOptions {
  logDenied?: { perSecond: number; group?: number };
}

function byKeyText(list: readonly Element[]): Element[] {
  const keyed = list.map((e) => ({ k: e.key.join(' . '), e }));
  keyed.sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0));
  return keyed.map((x) => x.e);
}

const emptyParts = (): FlatParts => ({ chains: new Map(), sets: new Map(), elements: new Map(), comments: new Map() });
const rule = (chain: string, body: Expr[], comment?: string): Rule =>
  comment === undefined ? { kind: 'rule', chain, body } : { kind: 'rule', chain, body, comment };

/** The group of pods whose tier, direction and rule list are the same: they share its maps and chains. */
export function flatGroupName(tier: PolicyTier, direction: Direction, rules: readonly CompiledRule[]): string {
  return stableId([tier.name, direction, ruleListId(rules)]);
}

/** A pod's chain of a flat tier: self, the group's address maps, then the pod's next tier chain. */
export function flatPodChain(
  tier: PolicyTier,
  pod: LocalPod,
  direction: Direction,
  group: string,
  next: string | undefined,
): DesiredChain {
  const name = tier.chainName(pod, direction);
  const field = direction === 'ingress' ? 'saddr' : 'daddr';
  const self = actionVerdict('accept', direction, undefined);
  const rules: Rule[] = pod.ips.map((ip) =>
    rule(name, [match(addrField(familyOf(ip), field), { kind: 'addr', addr: ip }), self], SELF_COMMENT),
  );
  for (const family of [4, 6] as const)
    rules.push(rule(name, [vmap(addrField(family, field), classMapName(group, family))]));
  if (next !== undefined) rules.push(rule(name, [verdict('goto', next)]));
  return { chain: { kind: 'chain', name }, rules };
}

/** What every flat group names: the ingress check an egress Accept goes on to, the ported protocols. */
export function flatShared(): FlatParts {
  const out = emptyParts();
  const checks = SKELETON_INGRESS.map((family) =>
    rule(FLAT_INGRESS_CHECK, [vmap(addrField(family, 'daddr'), verdictMapName('ingress', family))]),
  );
  out.chains.set(FLAT_INGRESS_CHECK, {
    chain: { kind: 'chain', name: FLAT_INGRESS_CHECK },
    rules: [...checks, rule(FLAT_INGRESS_CHECK, [verdict('accept')])],
  });
  out.sets.set(FLAT_PORT_PROTOCOLS, { kind: 'set', name: FLAT_PORT_PROTOCOLS, type: 'inet_proto' });
  out.elements.set(
    FLAT_PORT_PROTOCOLS,
    ['sctp', 'tcp', 'udp'].map((p): Element => ({ kind: 'element', set: FLAT_PORT_PROTOCOLS, key: [p] })),
  );
  return out;
}

/** The chain of one deciding rule (shared by every group and pod): its counter, log and verdict. */
function flatRuleChain(tier: PolicyTier, r: FlatRule, direction: Direction, options: FlatOptions, out: FlatParts) {
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
    const group = log.group;
    const prefix = `strand-deny ${comment}: `.slice(0, 127);
    const logExpr: Expr =
      group !== undefined && Number.isSafeInteger(group) && group >= 0 && group <= 65535
        ? { kind: 'log', prefix, group }
        : { kind: 'log', prefix, level: 'info' };
    rules.push(rule(name, [limit, logExpr], LOG_COMMENT));
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
  out.chains.set(name, { chain: { kind: 'chain', name }, rules });
  return name;
}

/** One group's objects: its address maps, class chains, port maps and the chains of its deciding rules. */
export function renderFlatGroup(
  tier: PolicyTier,
  direction: Direction,
  compiled: readonly CompiledRule[],
  peers: ReadonlyMap<string, PeerSet>,
  namedPorts: ReadonlyMap<string, NamedPortSet>,
  options: FlatOptions = {},
): FlatParts & { group: string; flat: FlatTier } {
  const out = emptyParts();
  const group = flatGroupName(tier, direction, compiled);
  const flat = flattenTier(compiled, peers, namedPorts);
  const fill =
    flat.classes[0] !== undefined && (flat.classes[0].ports.length > 0 || flat.classes[0].other !== undefined);
  // Per class: the rule chain deciding each port segment and the portless protocols, and its name.
  const decided = flat.classes.map((c) => {
    if (c.id === 0 && !fill) return undefined; // nothing jumps to a default class that decides nothing
    const chainOf = (rule: number) => flatRuleChain(tier, flat.rules[rule] as FlatRule, direction, options, out);
    const ports = c.ports.map((seg) => ({ seg, target: chainOf(seg.rule) }));
    const other = c.other === undefined ? undefined : chainOf(c.other);
    const key = stableId([ports.map((p) => [p.seg.protocol, p.seg.from, p.seg.to, p.target]), other ?? null]);
    return { ports, other, key };
  });
  for (const family of [4, 6] as const) {
    const name = classMapName(group, family);
    const type = family === 4 ? 'ipv4_addr' : 'ipv6_addr';
    out.sets.set(name, { kind: 'map', name, type, value: 'verdict', flags: ['interval'] });
    out.elements.set(
      name,
      covering(family === 4 ? flat.v4 : flat.v6, family, fill).map((r) => {
        const key = rangeText(family, r.first, r.last);
        const cls = decided[r.class]?.key as string;
        return { kind: 'element', set: name, key: [key], value: [`jump ${classChainName(cls)}`] };
      }),
    );
  }
  for (const d of decided) {
    if (d === undefined) continue;
    const chain = classChainName(d.key);
    if (out.chains.has(chain)) continue;
    const body: Rule[] = [];
    if (d.ports.length > 0) {
      const map = portMapName(d.key);
      out.sets.set(map, {
        kind: 'map',
        name: map,
        type: 'inet_proto . inet_service',
        value: 'verdict',
        flags: ['interval'],
      });
      out.elements.set(
        map,
        d.ports.map(({ seg, target }) => ({
          kind: 'element',
          set: map,
          key: [PROTO_WORD[seg.protocol], seg.from === seg.to ? String(seg.from) : `${seg.from}-${seg.to}`],
          value: [`jump ${target}`],
        })),
      );
      body.push(rule(chain, [vmap([meta('l4proto'), payload('th dport')], map)]));
    }
    if (d.other !== undefined)
      body.push(rule(chain, [lookup(meta('l4proto'), FLAT_PORT_PROTOCOLS, 'ne'), verdict('jump', d.other)]));
    out.chains.set(chain, { chain: { kind: 'chain', name: chain }, rules: body });
  }
  // Sorted by key text, as renderPolicy sorts every list (the identity diff merges sorted lists).
  for (const [name, list] of out.elements) out.elements.set(name, byKeyText(list));
  return { ...out, group, flat };
}

/** Merges `from` into `into` (names that are there already keep their object). */
export function mergeParts(into: FlatParts, from: FlatParts): void {
  for (const [n, c] of from.chains) if (!into.chains.has(n)) into.chains.set(n, c);
  for (const [n, s] of from.sets) if (!into.sets.has(n)) into.sets.set(n, s);
  for (const [n, e] of from.elements) if (!into.elements.has(n)) into.elements.set(n, e);
  for (const [n, m] of from.comments) if (!into.comments.has(n)) into.comments.set(n, m);
}

/** The pods' flat tier chains and every group's objects of a model (renderPolicy's part for them). */
export function renderFlatClusterTiers(model: CompiledPolicy, options: FlatOptions = {}): FlatRendered {
  const out: FlatRendered = { ...emptyParts(), groups: new Map() };
  for (const pod of model.pods) {
    for (const direction of ['egress', 'ingress'] as const) {
      const tiers = TIERS.filter((t) => t.rulesOf(pod, direction) !== undefined);
      tiers.forEach((tier, i) => {
        if (!tier.ordered) return; // NetworkPolicy: renderPolicy's chain, unchanged
        const rules = tier.rulesOf(pod, direction)?.rules ?? [];
        const group = flatGroupName(tier, direction, rules);
        const chain = flatPodChain(tier, pod, direction, group, tiers[i + 1]?.chainName(pod, direction));
        out.chains.set(chain.chain.name, chain);
        if (out.groups.has(group)) return;
        const parts = renderFlatGroup(tier, direction, rules, model.peers, model.namedPorts, options);
        out.groups.set(group, parts.flat);
        mergeParts(out, parts);
      });
    }
  }
  if (out.groups.size > 0) mergeParts(out, flatShared());
  return out;
}
