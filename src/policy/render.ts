// Over 400 lines: renderPolicyWith's closures (the sets its rules name, gathered as they are rendered) and the port and match memos they read share one render's maps; split, each part would take them all as arguments.
// The compiled model as nftables objects in table `inet strand` (all named agent-pol-*): the
// skeleton (skeleton.ts: the forward base chain and its per-direction dispatch), then for each local
// pod and direction its chain of every tier that has rules for it, in the pipeline's order, and the
// sets those rules name:
//
//   chain agent-pol-in-<pod>    self, then one rule per (policy rule, peer, family) … accept, counter drop
//   chain agent-pol-out-<pod>   self, then … return (on to the ingress check), counter drop
//   set agent-pol-peer-<peer>-v4|v6            pods a selector peer matches (addresses)
//   set agent-pol-cidr-<peer>                  an ipBlock, except subtracted (interval)
//   set agent-pol-port-<set>-v4|v6             egress named ports: address . inet_proto . inet_service
//   set agent-pol-svc-<ports>                  a rule's ports when more than one: inet_proto . inet_service (interval)
//
// Why this shape:
//   - a pod's chain holds the rules of the policies that select it: nothing a packet walks grows with
//     the number of policies or pods of the cluster;
//   - peer sets are named by a hash of what the peer means, so two rules with the same peer share a
//     set and a label change changes its elements only, never a chain;
//   - a rule's verdict is its action's (skeleton.ts, actionVerdict): an egress allow `return`s to the
//     dispatch, which goes on to the destination's ingress check (both must allow, R1); an ingress
//     allow accepts; a pass goes on to the pod's next tier chain;
//   - every allow rule has an anonymous counter and a comment naming its policy rule; the drop at
//     each chain's end has one too: per-policy and per-pod allow/deny counters come from listing
//     the chains (chainOwners and comments map names and comments back).
import { getOrSet } from '../util/get-or-set.ts';
import { addrField, counter, lookup, match, meta, payload, type Expr, type Value } from '../nft/expr.ts';
import { verdict as verdictOf } from '../nft/expr.ts';
import type { Element, NftMap, NftSet, Rule } from '../nft/objects.ts';
import { POLICY_PREFIX, stableId } from './names.ts';
import { knownFamily as familyOf } from '../net/text.ts';
import { TIERS } from './pipeline.ts';
import { actionVerdict, DENY_COMMENT, LOG_COMMENT, renderSkeleton, SELF_COMMENT, verdictMapName } from './skeleton.ts';
import {
  flatGroupName,
  flatPodChain,
  flatShared,
  mergeParts,
  type FlatParts,
} from './clusternetworkpolicy/flat-render.ts';
import { FlatGroups, type FlatGroupRequest } from './clusternetworkpolicy/flat-groups.ts';

export type { FlatGroupRequest };
import type { PolicyTier } from './tier.ts';
import type {
  ChainOwner,
  CommentMeaning,
  CompiledPolicy,
  CompiledRule,
  DesiredChain,
  DesiredPolicyTable,
  Direction,
  LocalPod,
  PortRange,
} from './types.ts';

export { DENY_COMMENT, LOG_COMMENT, SELF_COMMENT };

export const peerSetName = (id: string, family: 4 | 6): string => `${POLICY_PREFIX}peer-${id}-v${family}`;
export const cidrSetName = (id: string): string => `${POLICY_PREFIX}cidr-${id}`;
export const namedPortSetName = (id: string, family: 4 | 6): string => `${POLICY_PREFIX}port-${id}-v${family}`;
export const serviceSetName = (id: string): string => `${POLICY_PREFIX}svc-${id}`;

const addrType = (family: 4 | 6) => (family === 4 ? 'ipv4_addr' : 'ipv6_addr');
const PROTO_WORD = { TCP: 'tcp', UDP: 'udp', SCTP: 'sctp' } as const;

/** Port ranges merged per protocol (an interval set refuses overlapping elements), sorted. */
function mergeRanges(ranges: readonly PortRange[]): PortRange[] {
  const out: PortRange[] = [];
  const sorted = [...ranges].sort((a, b) =>
    a.protocol < b.protocol ? -1 : a.protocol > b.protocol ? 1 : a.from - b.from || a.to - b.to,
  );
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && last.protocol === r.protocol && r.from <= last.to + 1) last.to = Math.max(last.to, r.to);
    else out.push({ ...r });
  }
  return out;
}

const portText = (r: PortRange) => (r.from === r.to ? String(r.from) : `${r.from}-${r.to}`);
export interface RenderOptions {
  /**
   * Log denied connections (their first packet) through nft `log` (the kernel log, or NFLOG with
   * `group`), at most this many per second per pod and direction; off when absent.
   */
  logDenied?: { perSecond: number; group?: number };
}

/** Renders each group's objects (fresh here; incremental/render.ts and bind-render.ts reuse theirs). */
export type FlatGroupSource = (groups: ReadonlyMap<string, FlatGroupRequest>) => ReadonlyMap<string, FlatParts>;

/** A rendered table's flat groups: what each pod chain names, and each group's objects. */
export type FlatGroupRecord = ReadonlyMap<string, { request: FlatGroupRequest; parts: FlatParts }>;
const flatRecords = new WeakMap<DesiredPolicyTable, FlatGroupRecord>();
export const flatGroupsOf = (table: DesiredPolicyTable): FlatGroupRecord | undefined => flatRecords.get(table);
export const recordFlatGroups = (table: DesiredPolicyTable, record: FlatGroupRecord): void => {
  flatRecords.set(table, record);
};

const freshGroups =
  (model: CompiledPolicy, options: RenderOptions): FlatGroupSource =>
  (groups) =>
    new FlatGroups().render(groups, model, options);

/** A rule's ports as matches, and the named set they need when they are more than one range. */
interface PortMatches {
  exprs: readonly Expr[];
  set?: { name: string; merged: PortRange[] };
}

/** By the compiled rule's port list, which a compile keeps from one change to the next: a pod
 * rendered again does not merge and hash (stableId) the same ports again for each of its rules. */
const PORT_MATCHES = new WeakMap<readonly PortRange[], PortMatches>();
/** The same by the ranges' text, bounded (cleared when full: made again when asked for). */
const PORT_MATCHES_BY_TEXT = new Map<string, PortMatches>();
const MAX_PORT_TEXTS = 10_000;

/** A rule's match lists and the sets they name, by rule object (and direction, families, known peers). */
interface RuleMatches {
  matches: Expr[][];
  sets: ['peer' | 'cidr' | 'port', string, string, 4 | 6][];
  service?: { name: string; merged: PortRange[] };
}
const RULE_MATCHES = new WeakMap<CompiledRule, Map<string, RuleMatches>>();
/**
 * A pod chain's rules for one rule's match lists (RuleMatches.matches, so one compiled rule, direction
 * and families), by chain and next chain: a pod rendered again (a policy added to or taken from it)
 * gives its unchanged rules as the very objects of its last render, which the diff keeps by identity
 * and a sharing transaction does not check again. Bounded: the chains of pods long gone stay while
 * their rule does, so past MAX_RULE_OUT entries made (~12,000 at 50,000 pods) all are dropped and
 * made again as renders ask (a few MB at most; pod churn would otherwise grow it).
 */
let RULE_OUT = new WeakMap<readonly Expr[][], Map<string, readonly Rule[]>>();
let ruleOutEntries = 0;
const MAX_RULE_OUT = 20_000;

/**
 * A rule's ports: one range inline; more through a named interval set shared by every rule with the
 * same ports. Never an anonymous set: the kernel names each one by scanning all of the table's sets,
 * which made a full build quadratic in the rules (measured: 67k commands, minutes).
 */
function portMatchesOf(ranges: readonly PortRange[]): PortMatches {
  let m = PORT_MATCHES.get(ranges);
  if (!m) {
    // A pod compiled again has new port lists with the same values: by their text then.
    let text = '';
    for (const r of ranges) text += `${r.protocol} ${r.from} ${r.to},`;
    m = PORT_MATCHES_BY_TEXT.get(text);
    if (!m) {
      m = portMatches(ranges);
      if (PORT_MATCHES_BY_TEXT.size >= MAX_PORT_TEXTS) PORT_MATCHES_BY_TEXT.clear();
      PORT_MATCHES_BY_TEXT.set(text, m);
    }
    PORT_MATCHES.set(ranges, m);
  }
  return m;
}

function portMatches(ranges: readonly PortRange[]): PortMatches {
  const merged = mergeRanges(ranges);
  if (merged.length === 1) {
    const r = merged[0] as PortRange;
    const proto = match(meta('l4proto'), { kind: 'keyword', value: PROTO_WORD[r.protocol] });
    if (r.from === 0 && r.to === 65535) return { exprs: [proto] };
    const { from, to } = r;
    const port: Value = from === to ? { kind: 'number', value: from } : { kind: 'range', from, to };
    return { exprs: [proto, match(payload('th dport'), port)] };
  }
  const name = serviceSetName(stableId(['ports', merged.map((r) => `${r.protocol} ${portText(r)}`)]));
  return { exprs: [lookup([meta('l4proto'), payload('th dport')], name)], set: { name, merged } };
}

/** The policy's fixed frame (skeleton.ts), the same for every table: made once, and shared by the
 * tables rendered (they are never changed in place), so a diff passes over it as one object. */
let rendered: ReturnType<typeof renderSkeleton> | undefined;

export function renderPolicy(model: CompiledPolicy, options: RenderOptions = {}): DesiredPolicyTable {
  return renderPolicyWith(model, options, freshGroups(model, options));
}

/** renderPolicy with the flat groups' objects from `groupSource`. */
export function renderPolicyWith(
  model: CompiledPolicy,
  options: RenderOptions,
  groupSource: FlatGroupSource,
): DesiredPolicyTable {
  const chains = new Map<string, DesiredChain>();
  const sets = new Map<string, NftSet | NftMap>();
  const elements = new Map<string, Element[]>();
  const chainOwners = new Map<string, ChainOwner>();
  const comments = new Map<string, CommentMeaning>([
    [DENY_COMMENT, { verdict: 'deny' }],
    [LOG_COMMENT, { verdict: 'log' }],
    [SELF_COMMENT, { verdict: 'self' }],
  ]);
  const addElement = (e: Element) => {
    const list = elements.get(e.set) ?? [];
    list.push(e);
    elements.set(e.set, list);
  };

  const skeleton = (rendered ??= renderSkeleton());
  chains.set(skeleton.chain.chain.name, skeleton.chain);
  for (const map of skeleton.maps) {
    sets.set(map.name, map);
    elements.set(map.name, []);
  }

  // Sets are created as rules name them, filled afterwards.
  const usedPeerSets = new Map<string, { id: string; family: 4 | 6 }>();
  const usedCidrSets = new Set<string>();
  const usedPortSets = new Map<string, { id: string; family: 4 | 6 }>();
  const serviceSets = new Map<string, PortRange[]>();

  // The match part of a rule (peers, ports, named ports) for each of the pod's families, and the
  // sets it names; the same for every pod with the same rule object, families and known peers
  // (RULE_MATCHES: a policy's rule compiles to one object for the pods it selects).
  const computeMatches = (r: CompiledRule, direction: Direction, families: readonly (4 | 6)[]): RuleMatches => {
    const field = direction === 'ingress' ? 'saddr' : 'daddr';
    const out: RuleMatches = { matches: [], sets: [] };
    const numeric = r.ports === 'all' || r.ports.length > 0;
    let ports: readonly Expr[] = [];
    if (r.ports !== 'all' && r.ports.length > 0) {
      const m = portMatchesOf(r.ports);
      ports = m.exprs;
      if (m.set) out.service = m.set;
    }
    for (const family of families) {
      if (numeric) {
        if (r.peers === 'all') out.matches.push([...ports]);
        else {
          for (const id of r.peers) {
            const peer = model.peers.get(id);
            if (!peer) continue;
            if (peer.meaning.kind !== 'ipBlock') {
              // Pods and nodes peers: their addresses.
              const set = peerSetName(id, family);
              out.sets.push(['peer', set, id, family]);
              out.matches.push([lookup(addrField(family, field), set), ...ports]);
            } else if (peer.meaning.family === family) {
              // R9: a v4 block never matches v6 traffic, and the reverse.
              const set = cidrSetName(id);
              out.sets.push(['cidr', set, id, family]);
              out.matches.push([lookup(addrField(family, field), set), ...ports]);
            }
          }
        }
      }
      for (const id of r.namedPorts) {
        const set = namedPortSetName(id, family);
        out.sets.push(['port', set, id, family]);
        out.matches.push([lookup([addrField(family, 'daddr'), meta('l4proto'), payload('th dport')], set)]);
      }
    }
    return out;
  };
  const ruleMatches = (r: CompiledRule, direction: Direction, families: readonly (4 | 6)[]): readonly Expr[][] => {
    // Which of its peers the model knows is part of the key (a peer the model lacks is left out).
    let key = `${direction} ${families.join()}`;
    if (r.peers !== 'all') for (const id of r.peers) key += model.peers.has(id) ? '+' : '-';
    const byKey = getOrSet(RULE_MATCHES, r, () => new Map());
    const m = getOrSet(byKey, key, () => computeMatches(r, direction, families));
    if (m.service) serviceSets.set(m.service.name, m.service.merged);
    for (const [kind, set, id, family] of m.sets) {
      if (kind === 'peer') usedPeerSets.set(set, { id, family });
      else if (kind === 'cidr') usedCidrSets.add(id);
      else usedPortSets.set(set, { id, family });
    }
    return m.matches;
  };

  /**
   * The denied-connection log's `limit … log` part (undefined: off). The prefix names the pod (nft
   * allows 127 bytes; names that do not fit use the chain name) and, for a dropping rule, its comment.
   */
  const logRule = (pod: LocalPod, chain: string, direction: Direction, ruleTag: string): Expr[] | undefined => {
    const log = options.logDenied;
    if (!log || !Number.isSafeInteger(log.perSecond) || log.perSecond <= 0) return undefined;
    const who = `${pod.namespace}/${pod.name}`;
    const base = `strand-deny ${/^[a-z0-9./-]+$/.test(who) && who.length <= 100 ? who : chain} ${direction}`;
    const tagged = `${base} ${ruleTag}: `;
    const prefix = ruleTag !== '' && Buffer.byteLength(tagged) <= 127 ? tagged : `${base}: `;
    const group = log.group;
    const groupOk = group !== undefined && Number.isSafeInteger(group) && group >= 0 && group <= 65535;
    return [
      { kind: 'limit', rate: log.perSecond, per: 'second', burst: 2 * log.perSecond },
      groupOk ? { kind: 'log', prefix, group } : { kind: 'log', prefix, level: 'info' },
    ];
  };

  /** A pod's chain of one tier in one direction; `next`: its chain of the next tier with rules for it. */
  const tierChain = (tier: PolicyTier, pod: LocalPod, direction: Direction, chain: string, next?: string): Rule[] => {
    const rules = tier.rulesOf(pod, direction)?.rules ?? [];
    const out: Rule[] = [];
    const field = direction === 'ingress' ? 'saddr' : 'daddr';
    const families = [...new Set(pod.ips.map(familyOf))].sort();
    // R12: a pod's traffic to itself (hairpin through its own Service) is allowed, by every tier.
    const self = actionVerdict('accept', direction, undefined);
    for (const ip of pod.ips) {
      const body = [match(addrField(familyOf(ip), field), { kind: 'addr', addr: ip }), self];
      out.push({ kind: 'rule', chain, body, comment: SELF_COMMENT });
    }
    for (const r of rules) {
      if (r.broken) continue;
      const comment = tier.ruleComment(r.source);
      comments.set(comment, tier.commentMeaning(r));
      const verdict = actionVerdict(r.action, direction, next);
      // A dropping rule (ClusterNetworkPolicy's Deny) logs under its own comment, so the log names it.
      const log = r.action === 'drop' ? logRule(pod, chain, direction, comment) : undefined;
      const matchLists = ruleMatches(r, direction, families);
      if (log === undefined) {
        const key = `${chain} ${next ?? ''}`;
        let made = RULE_OUT.get(matchLists)?.get(key);
        if (!made) {
          made = matchLists.map(
            (matches): Rule => ({ kind: 'rule', chain, body: [...matches, counter(), verdict], comment }),
          );
          if (++ruleOutEntries > MAX_RULE_OUT) {
            RULE_OUT = new WeakMap();
            ruleOutEntries = 1;
          }
          let byChain = RULE_OUT.get(matchLists);
          if (!byChain) RULE_OUT.set(matchLists, (byChain = new Map()));
          byChain.set(key, made);
        }
        out.push(...made);
        continue;
      }
      for (const matches of matchLists) {
        out.push({ kind: 'rule', chain, body: [...matches, ...log], comment: LOG_COMMENT });
        out.push({ kind: 'rule', chain, body: [...matches, counter(), verdict], comment });
      }
    }
    if (tier.fallthrough === 'pass') {
      if (next !== undefined) out.push({ kind: 'rule', chain, body: [verdictOf('goto', next)] });
      return out;
    }
    const log = logRule(pod, chain, direction, '');
    if (log !== undefined) out.push({ kind: 'rule', chain, body: log, comment: LOG_COMMENT });
    const drop = actionVerdict(tier.fallthrough, direction, next);
    out.push({ kind: 'rule', chain, body: [counter(), drop], comment: DENY_COMMENT });
    return out;
  };

  // Each local pod, per direction: its chains of the tiers with rules for it, in the pipeline's
  // order, linked; the dispatch jumps to the first. ClusterNetworkPolicy tiers (ordered) are flat
  // (clusternetworkpolicy/flat-render.ts): the pod's chain looks its group's maps up, so what a packet
  // walks does not grow with the CNP rules (issue 19).
  const groups = new Map<string, FlatGroupRequest>();
  for (const pod of model.pods) {
    for (const direction of ['egress', 'ingress'] as const) {
      const tiers = TIERS.filter((t) => t.rulesOf(pod, direction) !== undefined);
      const names = tiers.map((t) => t.chainName(pod, direction));
      tiers.forEach((tier, i) => {
        const name = names[i] as string;
        if (tier.ordered) {
          const rules = tier.rulesOf(pod, direction)?.rules ?? [];
          const group = flatGroupName(tier, direction, rules);
          if (!groups.has(group)) groups.set(group, { tier, direction, rules });
          chains.set(name, flatPodChain(tier, pod, direction, group, names[i + 1]));
        } else {
          const rules = tierChain(tier, pod, direction, name, names[i + 1]);
          chains.set(name, { chain: { kind: 'chain', name }, rules });
        }
        chainOwners.set(name, { pod: { namespace: pod.namespace, name: pod.name }, direction });
      });
      const first = names[0];
      if (first === undefined) continue;
      for (const ip of pod.ips) {
        addElement({
          kind: 'element',
          set: verdictMapName(direction, familyOf(ip)),
          key: [ip],
          value: [`jump ${first}`],
        });
      }
    }
  }

  const record = new Map<string, { request: FlatGroupRequest; parts: FlatParts }>();
  if (groups.size > 0) {
    const parts: FlatParts = { chains: new Map(), sets: new Map(), elements: new Map(), comments: new Map() };
    for (const [name, p] of groupSource(groups)) {
      record.set(name, { request: groups.get(name) as FlatGroupRequest, parts: p });
      mergeParts(parts, p);
    }
    mergeParts(parts, flatShared());
    for (const [n, c] of parts.chains) chains.set(n, c);
    for (const [n, x] of parts.sets) sets.set(n, x);
    for (const [n, e] of parts.elements) elements.set(n, [...e]);
    for (const [n, m] of parts.comments) comments.set(n, m);
  }

  for (const [name, { id, family }] of usedPeerSets) {
    sets.set(name, { kind: 'set', name, type: addrType(family) });
    const peer = model.peers.get(id);
    elements.set(
      name,
      (family === 4 ? peer?.v4 : peer?.v6)?.map((ip): Element => ({ kind: 'element', set: name, key: [ip] })) ?? [],
    );
  }
  for (const id of usedCidrSets) {
    const name = cidrSetName(id);
    const peer = model.peers.get(id);
    const family = peer?.meaning.kind === 'ipBlock' ? peer.meaning.family : 4;
    sets.set(name, { kind: 'set', name, type: addrType(family), flags: ['interval'] });
    elements.set(
      name,
      (peer?.intervals ?? []).map((p): Element => ({ kind: 'element', set: name, key: [p] })),
    );
  }
  for (const [name, ranges] of serviceSets) {
    sets.set(name, { kind: 'set', name, type: 'inet_proto . inet_service', flags: ['interval'] });
    elements.set(
      name,
      ranges.map((r): Element => ({ kind: 'element', set: name, key: [PROTO_WORD[r.protocol], portText(r)] })),
    );
  }
  for (const [name, { id, family }] of usedPortSets) {
    sets.set(name, { kind: 'set', name, type: `${addrType(family)} . inet_proto . inet_service` });
    const np = model.namedPorts.get(id);
    elements.set(
      name,
      (family === 4 ? np?.v4 : np?.v6)?.map(
        (e): Element => ({ kind: 'element', set: name, key: [e.address, PROTO_WORD[e.protocol], String(e.port)] }),
      ) ?? [],
    );
  }

  // Deterministic order: by name, elements by key text.
  const sortedMap = <V>(m: Map<string, V>) =>
    new Map([...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  for (const [name, list] of elements) {
    const keyed = list.map((e) => ({ k: e.key.join(' . '), e }));
    keyed.sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0));
    elements.set(
      name,
      keyed.map((x) => x.e),
    );
  }
  const table: DesiredPolicyTable = {
    chains: sortedMap(chains),
    sets: sortedMap(sets),
    elements: sortedMap(elements),
    chainOwners: sortedMap(chainOwners),
    comments: sortedMap(comments),
  };
  recordFlatGroups(table, record);
  return table;
}
