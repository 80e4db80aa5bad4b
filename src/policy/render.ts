// The compiled model as nftables objects in table `inet strand` (all named agent-pol-*):
//
//   chain agent-pol-forward { type filter hook forward priority filter ; policy accept ;
//     ct state established,related accept                      R13: replies of allowed connections
//     icmpv6 type { nd-… } accept                                R14: neighbour discovery keeps working
//     ip saddr vmap @agent-pol-egress-v4                         egress of isolated local pods
//     ip6 saddr vmap @agent-pol-egress-v6
//     ip daddr vmap @agent-pol-ingress-v4                        ingress of isolated local pods
//     ip6 daddr vmap @agent-pol-ingress-v6
//   }
//   map agent-pol-{ingress,egress}-v{4,6} { type ipv4_addr|ipv6_addr : verdict }   pod address → jump chain
//   chain agent-pol-in-<pod>    self, then one rule per (policy rule, peer, family) … accept, counter drop
//   chain agent-pol-out-<pod>   self, then … return (on to the ingress check), counter drop
//   set agent-pol-peer-<peer>-v4|v6            pods a selector peer matches (addresses)
//   set agent-pol-cidr-<peer>                  an ipBlock, except subtracted (interval)
//   set agent-pol-port-<set>-v4|v6             egress named ports: address . inet_proto . inet_service
//   set agent-pol-svc-<ports>                  a rule's ports when more than one: inet_proto . inet_service (interval)
//
// Why this shape:
//   - a packet costs the conntrack check, four verdict-map lookups and its own pods' chains: nothing
//     grows with the number of policies or pods of the cluster; a pod's chain holds the rules of the
//     policies that select it;
//   - only the forward hook: bridged pod traffic reaches it through br_netfilter, routed traffic
//     (other nodes, VXLAN) anyway. The node's own traffic to its pods is allowed (R11: ingress from
//     the pod's node) and leaves through output, and a pod's traffic to its node is allowed (R11's
//     recommendation for egress to the local node) and arrives through input, so neither hook needs
//     a chain;
//   - peer sets are named by a hash of what the peer means, so two rules with the same peer share a
//     set and a label change changes its elements only, never a chain;
//   - egress allow rules `return` to the forward chain, which goes on to the destination's ingress
//     check (both must allow, R1); ingress allow rules accept;
//   - every allow rule has an anonymous counter and a comment naming its policy rule; the drop at
//     each chain's end has one too: per-policy and per-pod allow/deny counters come from listing
//     the chains (chainOwners and comments map names and comments back).
import { text } from '../nft/expr.ts';
import { PRIORITY, type Element, type NftMap, type NftSet, type Rule } from '../nft/objects.ts';
import { POLICY_PREFIX, stableId } from './names.ts';
import { familyOf } from './cidr.ts';
import {
  type ChainOwner,
  type CommentMeaning,
  type CompiledPolicy,
  type CompiledRule,
  type DesiredChain,
  type DesiredPolicyTable,
  type Direction,
  type LocalPod,
  type PortRange,
  type RuleRef,
} from './model.ts';

export const FORWARD_CHAIN = `${POLICY_PREFIX}forward`;
const NDP_TYPES = ['nd-router-solicit', 'nd-router-advert', 'nd-neighbor-solicit', 'nd-neighbor-advert', 'nd-redirect'];
export const DENY_COMMENT = 'deny';
export const SELF_COMMENT = 'self';
export const LOG_COMMENT = 'log';

export function verdictMapName(direction: Direction, family: 4 | 6): string {
  return `${POLICY_PREFIX}${direction}-v${family}`;
}

export function podChainName(pod: { namespace: string; name: string }, direction: Direction): string {
  return `${POLICY_PREFIX}${direction === 'ingress' ? 'in' : 'out'}-${stableId(['pod', pod.namespace, pod.name])}`;
}

export const peerSetName = (id: string, family: 4 | 6): string => `${POLICY_PREFIX}peer-${id}-v${family}`;
export const cidrSetName = (id: string): string => `${POLICY_PREFIX}cidr-${id}`;
export const namedPortSetName = (id: string, family: 4 | 6): string => `${POLICY_PREFIX}port-${id}-v${family}`;
export const serviceSetName = (id: string): string => `${POLICY_PREFIX}svc-${id}`;

const addrType = (family: 4 | 6) => (family === 4 ? 'ipv4_addr' : 'ipv6_addr');
const addrWord = (family: 4 | 6) => (family === 4 ? 'ip' : 'ip6');
const PROTO_WORD = { TCP: 'tcp', UDP: 'udp', SCTP: 'sctp' } as const;

/** The comment of an allow rule: `<ns>/<name> <direction> <index>`, or a hash of the policy when its
 * names would not fit (or hold what an nft comment cannot). */
export function ruleComment(ref: RuleRef): string {
  const plain = `${ref.namespace}/${ref.name} ${ref.direction} ${ref.index}`;
  if (/^[a-z0-9.-]+\/[a-z0-9.-]+ /.test(plain) && plain.length <= 120) return plain;
  return `policy-${stableId(['policy', ref.namespace, ref.name])} ${ref.direction} ${ref.index}`;
}

/** Port ranges merged per protocol (an interval set refuses overlapping elements), sorted. */
function mergeRanges(ranges: readonly PortRange[]): PortRange[] {
  const out: PortRange[] = [];
  const sorted = [...ranges].sort((a, b) => (a.protocol < b.protocol ? -1 : a.protocol > b.protocol ? 1 : a.from - b.from || a.to - b.to));
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

export function renderPolicy(model: CompiledPolicy, options: RenderOptions = {}): DesiredPolicyTable {
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

  for (const direction of ['egress', 'ingress'] as const) {
    for (const family of [4, 6] as const) {
      const name = verdictMapName(direction, family);
      sets.set(name, { kind: 'map', name, type: addrType(family), value: 'verdict' });
      elements.set(name, []);
    }
  }
  chains.set(FORWARD_CHAIN, {
    chain: { kind: 'chain', name: FORWARD_CHAIN, base: { type: 'filter', hook: 'forward', priority: PRIORITY.filter, policy: 'accept' } },
    rules: [
      { kind: 'rule', chain: FORWARD_CHAIN, body: [text('ct state established,related accept')] },
      // R14: neighbour discovery between pods on one bridge is bridged IPv6 (br_netfilter brings it
      // here, with pod addresses as sources): an isolated pod must still find its neighbours.
      { kind: 'rule', chain: FORWARD_CHAIN, body: [text(`icmpv6 type { ${NDP_TYPES.join(', ')} } accept`)] },
      { kind: 'rule', chain: FORWARD_CHAIN, body: [text(`ip saddr vmap @${verdictMapName('egress', 4)}`)] },
      { kind: 'rule', chain: FORWARD_CHAIN, body: [text(`ip6 saddr vmap @${verdictMapName('egress', 6)}`)] },
      { kind: 'rule', chain: FORWARD_CHAIN, body: [text(`ip daddr vmap @${verdictMapName('ingress', 4)}`)] },
      { kind: 'rule', chain: FORWARD_CHAIN, body: [text(`ip6 daddr vmap @${verdictMapName('ingress', 6)}`)] },
    ],
  });

  // Sets are created as rules name them, filled afterwards.
  const usedPeerSets = new Map<string, { id: string; family: 4 | 6 }>();
  const usedCidrSets = new Set<string>();
  const usedPortSets = new Map<string, { id: string; family: 4 | 6 }>();
  const serviceSets = new Map<string, PortRange[]>();

  // A rule's ports: one range inline; more through a named interval set shared by every rule with
  // the same ports. Never an anonymous set: the kernel names each one by scanning all of the table's
  // sets, which made a full build quadratic in the rules (measured: 67k commands, minutes).
  const portsExpr = (ranges: readonly PortRange[]): string => {
    const merged = mergeRanges(ranges);
    if (merged.length === 1) {
      const r = merged[0] as PortRange;
      const proto = `meta l4proto ${PROTO_WORD[r.protocol]}`;
      return r.from === 0 && r.to === 65535 ? proto : `${proto} th dport ${portText(r)}`;
    }
    const name = serviceSetName(stableId(['ports', merged.map((r) => `${r.protocol} ${portText(r)}`)]));
    serviceSets.set(name, merged);
    return `meta l4proto . th dport @${name}`;
  };

  const podRules = (pod: LocalPod, direction: Direction, chain: string, rules: readonly CompiledRule[]): Rule[] => {
    const out: Rule[] = [];
    const field = direction === 'ingress' ? 'saddr' : 'daddr';
    const verdict = direction === 'ingress' ? 'accept' : 'return';
    const families = [...new Set(pod.ips.map(familyOf))].sort();
    // R12: a pod's traffic to itself (hairpin through its own Service) is allowed.
    for (const ip of pod.ips) out.push({ kind: 'rule', chain, body: [text(`${addrWord(familyOf(ip))} ${field} ${ip} ${verdict}`)], comment: SELF_COMMENT });
    for (const r of rules) {
      if (r.broken) continue;
      const comment = ruleComment(r.source);
      comments.set(comment, { verdict: 'allow', rule: r.source });
      const texts: string[] = [];
      const numeric = r.ports === 'all' || r.ports.length > 0;
      const ports = r.ports === 'all' ? '' : r.ports.length > 0 ? `${portsExpr(r.ports)} ` : '';
      for (const family of families) {
        if (numeric) {
          if (r.peers === 'all') texts.push(`${ports}counter ${verdict}`);
          else {
            for (const id of r.peers) {
              const peer = model.peers.get(id);
              if (!peer) continue;
              if (peer.meaning.kind === 'pods') {
                const set = peerSetName(id, family);
                usedPeerSets.set(set, { id, family });
                texts.push(`${addrWord(family)} ${field} @${set} ${ports}counter ${verdict}`);
              } else if (peer.meaning.family === family) {
                // R9: a v4 block never matches v6 traffic, and the reverse.
                const set = cidrSetName(id);
                usedCidrSets.add(id);
                texts.push(`${addrWord(family)} ${field} @${set} ${ports}counter ${verdict}`);
              }
            }
          }
        }
        for (const id of r.namedPorts) {
          const set = namedPortSetName(id, family);
          usedPortSets.set(set, { id, family });
          texts.push(`${addrWord(family)} daddr . meta l4proto . th dport @${set} counter ${verdict}`);
        }
      }
      for (const rule of texts) out.push({ kind: 'rule', chain, body: [text(rule)], comment });
    }
    const log = options.logDenied;
    if (log && Number.isSafeInteger(log.perSecond) && log.perSecond > 0) {
      // The prefix names the pod (nft allows 127 bytes; names that do not fit use the chain name).
      const who = `${pod.namespace}/${pod.name}`;
      const prefix = `strand-deny ${/^[a-z0-9./-]+$/.test(who) && who.length <= 100 ? who : chain} ${direction}: `;
      const target = log.group !== undefined && Number.isSafeInteger(log.group) && log.group >= 0 && log.group <= 65535 ? `group ${log.group}` : 'level info';
      out.push({ kind: 'rule', chain, body: [text(`limit rate ${log.perSecond}/second burst ${2 * log.perSecond} packets log prefix "${prefix}" ${target}`)], comment: LOG_COMMENT });
    }
    out.push({ kind: 'rule', chain, body: [text('counter drop')], comment: DENY_COMMENT });
    return out;
  };

  for (const pod of model.pods) {
    for (const direction of ['egress', 'ingress'] as const) {
      const d = pod[direction];
      if (!d) continue;
      const name = podChainName(pod, direction);
      chains.set(name, { chain: { kind: 'chain', name }, rules: podRules(pod, direction, name, d.rules) });
      chainOwners.set(name, { pod: { namespace: pod.namespace, name: pod.name }, direction });
      for (const ip of pod.ips) addElement({ kind: 'element', set: verdictMapName(direction, familyOf(ip)), key: [ip], value: [`jump ${name}`] });
    }
  }

  for (const [name, { id, family }] of usedPeerSets) {
    sets.set(name, { kind: 'set', name, type: addrType(family) });
    const peer = model.peers.get(id);
    elements.set(name, (family === 4 ? peer?.v4 : peer?.v6)?.map((ip): Element => ({ kind: 'element', set: name, key: [ip] })) ?? []);
  }
  for (const id of usedCidrSets) {
    const name = cidrSetName(id);
    const peer = model.peers.get(id);
    const family = peer?.meaning.kind === 'ipBlock' ? peer.meaning.family : 4;
    sets.set(name, { kind: 'set', name, type: addrType(family), flags: ['interval'] });
    elements.set(name, (peer?.intervals ?? []).map((p): Element => ({ kind: 'element', set: name, key: [p] })));
  }
  for (const [name, ranges] of serviceSets) {
    sets.set(name, { kind: 'set', name, type: 'inet_proto . inet_service', flags: ['interval'] });
    elements.set(name, ranges.map((r): Element => ({ kind: 'element', set: name, key: [PROTO_WORD[r.protocol], portText(r)] })));
  }
  for (const [name, { id, family }] of usedPortSets) {
    sets.set(name, { kind: 'set', name, type: `${addrType(family)} . inet_proto . inet_service` });
    const np = model.namedPorts.get(id);
    elements.set(name, (family === 4 ? np?.v4 : np?.v6)?.map((e): Element => ({ kind: 'element', set: name, key: [e.address, PROTO_WORD[e.protocol], String(e.port)] })) ?? []);
  }

  // Deterministic order: by name, elements by key text.
  const sortedMap = <V>(m: Map<string, V>) => new Map([...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  for (const [name, list] of elements) {
    const keyed = list.map((e) => ({ k: e.key.join(' . '), e }));
    keyed.sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0));
    elements.set(name, keyed.map((x) => x.e));
  }
  return {
    chains: sortedMap(chains),
    sets: sortedMap(sets),
    elements: sortedMap(elements),
    chainOwners: sortedMap(chainOwners),
    comments: sortedMap(comments),
  };
}
