// The nft layout of the flat ClusterNetworkPolicy tiers (flat.ts), what renderPolicy writes for the
// Admin and Baseline tiers (flatPodChain per pod; the groups' objects through flat-groups.ts, which
// picks each tier's base group and renders renderFlatBase and renderFlatOverlay; flatShared once).
// Per local pod, direction and ClusterNetworkPolicy tier (P: the pod's chain):
//
//   chain P                         ip saddr <own> accept|return        (self, as today)
//                                   jump agent-pol-cg-<g>
//                                   goto <the pod's next tier chain>    (absent: the default, allowed)
//   chain agent-pol-cg-<g>          ip saddr vmap @agent-pol-cm-<g>-v4  (not in the base group's chain)
//                                   ip saddr vmap @agent-pol-cb-<tier>-<in|out>-v4   (ingress saddr, egress daddr)
//                                   the same for ip6
//   map agent-pol-cm-<g>-v4|v6      the overlay, interval: range → goto agent-pol-cc-<class> | return
//   map agent-pol-cb-…-v4|v6        the base, interval: address range → jump agent-pol-cc-<class>
//   chain agent-pol-cc-<class>      meta l4proto . th dport vmap @agent-pol-cp-<class>
//                                   meta l4proto != @agent-pol-cnp-l4 jump agent-pol-cr-<rule>   (ICMP, …)
//   map agent-pol-cp-<class>        interval: inet_proto . inet_service → jump agent-pol-cr-<rule>
//   chain agent-pol-cr-<rule>       [limit … log] counter drop | accept | goto agent-pol-cnp-ingress | return
//   chain agent-pol-cnp-ingress     ip daddr vmap @agent-pol-ingress-v4, ip6 … -v6, accept
//
// <g> is the group: the pods whose tier has the same rule list (ruleListId). Per tier and direction
// one group is the base (the most pods): its classes fill the base map; every other group's overlay
// holds only the ranges where it decides differently from the base (flat-overlay.ts), so a CNP that
// changes the rules of a few pods adds a map of the addresses its peers hold, not a copy of every
// range. <class> hashes what a class decides (the rule chain per port segment), so groups share the
// class chains and port maps that decide alike; a rule's chain (its counter, log and verdict) is
// shared by every pod: its counter goes on while some class decides by the rule (another CNP's change
// leaves it; a change that shadows the rule wholly removes the chain, and /metrics counts it 0,
// agent/policy-counters.ts). Why jumps:
// a Pass (`return`) or a class that decides nothing (runs out) must come back to P, which goes on to
// the pod's own next tier; so every step is a jump and P keeps the continuation. An overlay element
// `goto`s its class instead: the class's end then returns to P past the base map (which must not be
// asked for an address the overlay holds), and an overlay range that decides nothing `return`s to P
// at once. An egress Accept must instead skip the pod's later tiers: it `goto`s the ingress check
// (the skeleton's ingress dispatch, then accept: ingress is the last check, R1), ending the walk.
// Gaps of the base map fall through unless the default class decides something; then the map covers
// every address.
import { addrField, counter, lookup, match, meta, payload, verdict, vmap, type Expr } from '../../nft/expr.ts';
import type { Element, NftMap, NftSet, Rule } from '../../nft/objects.ts';
import { formatIp } from '../../net/ip.ts';
import { knownFamily as familyOf } from '../../net/text.ts';
import { POLICY_PREFIX, stableId } from '../names.ts';
import { actionVerdict, LOG_COMMENT, SELF_COMMENT, verdictMapName } from '../skeleton.ts';
import type { PolicyTier } from '../tier.ts';
import type { CommentMeaning, CompiledRule, DesiredChain, Direction, LocalPod, RuleRef } from '../types.ts';
import { ruleListId, type AddressRange, type FlatRule, type FlatTier } from './flat.ts';
import { decisionsOf, type Decisions, type Overlay, type OverlayRange } from './flat-overlay.ts';

const SKELETON_INGRESS = [4, 6] as const;
export const FLAT_INGRESS_CHECK = `${POLICY_PREFIX}cnp-ingress`;
export const FLAT_PORT_PROTOCOLS = `${POLICY_PREFIX}cnp-l4`;
const overlayMapName = (group: string, family: 4 | 6) => `${POLICY_PREFIX}cm-${group}-v${family}`;
const groupChainName = (group: string) => `${POLICY_PREFIX}cg-${group}`;
/** The tier's base map: one per tier, direction and family, whichever group is the base. */
export const baseMapName = (tier: PolicyTier, direction: Direction, family: 4 | 6) =>
  `${POLICY_PREFIX}cb-${tier.name}-${direction === 'ingress' ? 'in' : 'out'}-v${family}`;
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
  let byTier = groupNames.get(rules);
  if (!byTier) {
    byTier = new Map();
    groupNames.set(rules, byTier);
  }
  const k = `${tier.name} ${direction}`;
  let name = byTier.get(k);
  if (name === undefined) {
    name = stableId([tier.name, direction, ruleListId(rules)]);
    byTier.set(k, name);
  }
  return name;
}
/** Group names by rule list object (a pod's list is the very object while its policies are kept). */
const groupNames = new WeakMap<readonly CompiledRule[], Map<string, string>>();

/** A pod's chain of a flat tier: self, its group's chain (which decides, or returns), then the pod's
 * next tier chain. */
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
  rules.push(rule(name, [verdict('jump', groupChainName(group))]));
  if (next !== undefined) rules.push(rule(name, [verdict('goto', next)]));
  return { chain: { kind: 'chain', name }, rules };
}

/** What every flat group names: the ingress check an egress Accept goes on to, the ported protocols.
 * One object for every render (read only): each pod's fragment named new ones, and the identity diff
 * then compared their rules. */
let shared: FlatParts | undefined;
export function flatShared(): FlatParts {
  shared ??= makeFlatShared();
  return shared;
}

function makeFlatShared(): FlatParts {
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

/** A class's chain (named by what it decides: groups that decide alike share it), its port map and
 * the chains of its deciding rules, into `out`; its name. */
function renderClass(
  tier: PolicyTier,
  direction: Direction,
  d: Decisions,
  options: FlatOptions,
  out: FlatParts,
): string {
  const chainOf = (r: FlatRule) => flatRuleChain(tier, r, direction, options, out);
  const ports = d.ports.map((seg) => ({ seg, target: chainOf(seg.rule) }));
  const other = d.other === undefined ? undefined : chainOf(d.other);
  const key = stableId([ports.map((p) => [p.seg.protocol, p.seg.from, p.seg.to, p.target]), other ?? null]);
  const chain = classChainName(key);
  if (out.chains.has(chain)) return chain;
  const body: Rule[] = [];
  if (ports.length > 0) {
    const map = portMapName(key);
    out.sets.set(map, {
      kind: 'map',
      name: map,
      type: 'inet_proto . inet_service',
      value: 'verdict',
      flags: ['interval'],
    });
    out.elements.set(
      map,
      ports.map(({ seg, target }) => ({
        kind: 'element',
        set: map,
        key: [PROTO_WORD[seg.protocol], seg.from === seg.to ? String(seg.from) : `${seg.from}-${seg.to}`],
        value: [`jump ${target}`],
      })),
    );
    body.push(rule(chain, [vmap([meta('l4proto'), payload('th dport')], map)]));
  }
  if (other !== undefined)
    body.push(rule(chain, [lookup(meta('l4proto'), FLAT_PORT_PROTOCOLS, 'ne'), verdict('jump', other)]));
  out.chains.set(chain, { chain: { kind: 'chain', name: chain }, rules: body });
  return chain;
}

const addrType = (family: 4 | 6) => (family === 4 ? 'ipv4_addr' : 'ipv6_addr');

/** The tier's base map (every address's class in the base group) and the base group's own empty
 * overlay: what the base group's pods look up. */
export function renderFlatBase(
  tier: PolicyTier,
  direction: Direction,
  group: string,
  flat: FlatTier,
  options: FlatOptions = {},
): FlatParts {
  const out = emptyParts();
  const decided = decisionsOf(flat);
  const fill = (decided[0] as { key: string }).key !== '';
  const chains = decided.map((d, i) =>
    d.key === '' || (i === 0 && !fill) ? undefined : renderClass(tier, direction, d.decisions, options, out),
  );
  for (const family of [4, 6] as const) {
    const name = baseMapName(tier, direction, family);
    out.sets.set(name, { kind: 'map', name, type: addrType(family), value: 'verdict', flags: ['interval'] });
    const list: Element[] = [];
    for (const r of covering(family === 4 ? flat.v4 : flat.v6, family, fill)) {
      const chain = chains[r.class];
      if (chain !== undefined)
        list.push({ kind: 'element', set: name, key: [rangeText(family, r.first, r.last)], value: [`jump ${chain}`] });
    }
    out.elements.set(name, list);
  }
  groupChain(tier, direction, group, false, out);
  for (const [name, list] of out.elements) out.elements.set(name, byKeyText(list));
  return out;
}

/** A group's chain: its overlay map when it has one, then the tier's base map, per family. */
function groupChain(tier: PolicyTier, direction: Direction, group: string, overlay: boolean, out: FlatParts) {
  const name = groupChainName(group);
  const field = direction === 'ingress' ? 'saddr' : 'daddr';
  const rules: Rule[] = [];
  for (const family of [4, 6] as const) {
    const remote = addrField(family, field);
    if (overlay) rules.push(rule(name, [vmap(remote, overlayMapName(group, family))]));
    rules.push(rule(name, [vmap(remote, baseMapName(tier, direction, family))]));
  }
  out.chains.set(name, { chain: { kind: 'chain', name }, rules });
}

/** A group's overlay over its tier's base map: the ranges it decides differently. An overlay element
 * `goto`s its class chain, so that the class's end (nothing decided, or a Pass) returns to the pod's
 * chain, which goes on to the next tier, and the base map is not asked; a range that decides nothing
 * `return`s at once. */
export function renderFlatOverlay(
  tier: PolicyTier,
  direction: Direction,
  group: string,
  overlay: Overlay,
  options: FlatOptions = {},
): FlatParts {
  const out = emptyParts();
  // Ranges that decide alike share a class: rendered (names hashed) once.
  const classes = new Map<string, string>();
  const classOf = (r: OverlayRange) => {
    let chain = classes.get(r.key);
    if (chain === undefined) {
      chain = renderClass(tier, direction, r.decisions, options, out);
      classes.set(r.key, chain);
    }
    return chain;
  };
  for (const family of [4, 6] as const) {
    const map = overlayMapName(group, family);
    out.sets.set(map, { kind: 'map', name: map, type: addrType(family), value: 'verdict', flags: ['interval'] });
    out.elements.set(
      map,
      (family === 4 ? overlay.v4 : overlay.v6).map((r) => ({
        kind: 'element',
        set: map,
        key: [rangeText(family, r.first, r.last)],
        value: [r.key === '' ? 'return' : `goto ${classOf(r)}`],
      })),
    );
  }
  groupChain(tier, direction, group, true, out);
  // Sorted by key text, as renderPolicy sorts every list (the identity diff merges sorted lists).
  for (const [name, list] of out.elements) out.elements.set(name, byKeyText(list));
  return out;
}

/** Merges `from` into `into` (names that are there already keep their object). */
export function mergeParts(into: FlatParts, from: FlatParts): void {
  for (const [n, c] of from.chains) if (!into.chains.has(n)) into.chains.set(n, c);
  for (const [n, s] of from.sets) if (!into.sets.has(n)) into.sets.set(n, s);
  for (const [n, e] of from.elements) if (!into.elements.has(n)) into.elements.set(n, e);
  for (const [n, m] of from.comments) if (!into.comments.has(n)) into.comments.set(n, m);
}
