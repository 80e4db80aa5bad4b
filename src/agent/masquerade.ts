// Egress masquerade: pod traffic leaving the cluster CIDR(s) leaves with the node's address; traffic
// between pods (destination inside a cluster CIDR) keeps the pod's own source address, on this node
// and across nodes. In Strand's table `inet strand`, next to the CNI plugin's `cni-*` objects:
//
//   set agent-cluster-v4 { type ipv4_addr ; flags interval ; elements = { <cluster CIDRs> } }
//   set agent-cluster-v6 { type ipv6_addr ; flags interval ; elements = { <cluster CIDRs> } }
//   chain agent-postrouting { type nat hook postrouting priority srcnat ; policy accept ;
//     ip saddr @agent-cluster-v4 ip daddr != @agent-cluster-v4 ip daddr != 224.0.0.0/4 masquerade fully-random
//     ip6 saddr @agent-cluster-v6 ip6 daddr != @agent-cluster-v6 ip6 daddr != ff00::/8 masquerade fully-random
//   }
//
// Choices:
//  - Static chain, dynamic sets: both rules are always there and only the sets' elements follow the
//    configured CIDRs, so a CIDR change is a few element changes; an empty v6 set simply never matches.
//  - Multicast is never masqueraded (as the reference bridge plugin's ipMasq): group traffic has no
//    reply to un-NAT, and changing its source would break source-specific groups.
//  - `fully-random`: source ports for masqueraded connections are chosen at random, which avoids the
//    conntrack insertion race between connections of different pods getting the same port (flannel
//    and kube-proxy pass --random-fully for this reason).
//  - No `fib daddr type local return`: packets to the node's own addresses are delivered locally
//    (input), so they never reach postrouting.
//  - Only pods' sources (saddr in a cluster CIDR) are touched: the node's own traffic to pods on other
//    nodes keeps the node's address, which the peer reaches back over the underlay.
//  - Level-based: the listed state is compared with the desired one and the difference goes in one
//    transaction; nothing is sent when they agree. Rules are recognised by their comment, which ends
//    in a hash of the rule body (nft's JSON does not give rule text back), so a changed body in a new
//    Strand version rewrites the chain. Only its three objects (MASQUERADE_OWNERSHIP) are touched;
//    the CNI plugin's `cni-*` objects and the table itself are never flushed or deleted.
//
// With the agent's masquerade on, the plugin's own `ipMasq` should be off: it masquerades everything
// leaving the pod's node subnet, which includes pods on other nodes, and NAT in one postrouting chain
// cannot be undone by another.
import { createHash } from 'node:crypto';
import { formatIp, networkOf, parseCidr, type ParsedCidr } from '../net/ip.ts';
import { addrField, addrValue, lookup, match, renderRule, type Expr } from '../nft/expr.ts';
import { canonicalElementPart, PRIORITY, type Chain, type NftSet, type Rule, type TableState } from '../nft/objects.ts';
import { Transaction, type Ownership } from '../nft/transaction.ts';
import type { NftTransport } from '../nft/transport.ts';

export const MASQUERADE_CHAIN = 'agent-postrouting';
export const CLUSTER_SET_V4 = 'agent-cluster-v4';
export const CLUSTER_SET_V6 = 'agent-cluster-v6';
/** What the masquerade owns, by name: the policy layout's `agent-pol-*` share the agent's prefix. */
export const MASQUERADE_OWNERSHIP: Ownership = Object.freeze({
  prefixes: [],
  names: [MASQUERADE_CHAIN, CLUSTER_SET_V4, CLUSTER_SET_V6],
});

export interface MasqueradeConfig {
  /** The cluster's pod CIDRs (IPv4 and/or IPv6), e.g. ["10.244.0.0/16", "fd00:10:244::/56"]. */
  clusterCidrs: readonly string[];
}

export interface DesiredMasquerade {
  chain: Chain;
  sets: NftSet[];
  rules: Rule[];
  /** Canonical CIDR texts per set, as nft lists them. */
  elements: Map<string, string[]>;
}

export interface MasqueradeResult {
  /** Whether a transaction was applied. */
  changed: boolean;
  /** The applied nft script, "" when nothing changed. */
  script: string;
}

function withHash(label: string, body: string): string {
  return `${label} [${createHash('sha256').update(body).digest('hex').slice(0, 8)}]`;
}

/** The comment hashes the rendered body, so the hash (and so the kernel's rules) stays the same as
 * long as the text does, whatever the body's typed form. */
function rule(label: string, body: readonly Expr[]): Rule {
  return { kind: 'rule', chain: MASQUERADE_CHAIN, body, comment: withHash(label, renderRule(body)) };
}

/** Pod egress of one family: from a cluster CIDR to neither a cluster CIDR nor multicast. */
function egressBody(family: 4 | 6, set: string): Expr[] {
  return [
    lookup(addrField(family, 'saddr'), set),
    lookup(addrField(family, 'daddr'), set, 'ne'),
    match(addrField(family, 'daddr'), addrValue(family === 4 ? '224.0.0.0/4' : 'ff00::/8'), 'ne'),
    { kind: 'masquerade', fullyRandom: true },
  ];
}

/**
 * The cluster CIDRs per family with host bits cleared, duplicates and CIDRs inside another one
 * dropped (an interval set refuses overlapping intervals), in nft's listing form. Throws on a CIDR
 * that does not parse.
 */
export function clusterCidrsByFamily(cidrs: readonly string[]): { v4: string[]; v6: string[] } {
  const parsed = cidrs.map((text) => {
    let c: ParsedCidr;
    try {
      c = parseCidr(text.trim());
    } catch (err) {
      throw new TypeError(`invalid cluster CIDR ${JSON.stringify(text)}: ${(err as Error).message}`);
    }
    return { ...c, bytes: networkOf(c.bytes, c.prefixLength) };
  });
  const covers = (a: (typeof parsed)[number], b: (typeof parsed)[number]) =>
    a.family === b.family &&
    a.prefixLength <= b.prefixLength &&
    formatIp(networkOf(b.bytes, a.prefixLength)) === formatIp(a.bytes);
  const kept: typeof parsed = [];
  for (const c of [...parsed].sort((a, b) => a.prefixLength - b.prefixLength)) {
    if (!kept.some((k) => covers(k, c))) kept.push(c);
  }
  const text = (c: (typeof parsed)[number]) => canonicalElementPart(`${formatIp(c.bytes)}/${c.prefixLength}`);
  const sorted = (f: 4 | 6) =>
    kept
      .filter((c) => c.family === f)
      .map(text)
      .sort();
  return { v4: sorted(4), v6: sorted(6) };
}

export function desiredMasquerade(config: MasqueradeConfig): DesiredMasquerade {
  const { v4, v6 } = clusterCidrsByFamily(config.clusterCidrs);
  return {
    chain: {
      kind: 'chain',
      name: MASQUERADE_CHAIN,
      base: { type: 'nat', hook: 'postrouting', priority: PRIORITY.srcnat, policy: 'accept' },
    },
    sets: [
      {
        kind: 'set',
        name: CLUSTER_SET_V4,
        type: 'ipv4_addr',
        flags: ['interval'],
        comment: 'cluster CIDRs (IPv4): not masqueraded among themselves',
      },
      {
        kind: 'set',
        name: CLUSTER_SET_V6,
        type: 'ipv6_addr',
        flags: ['interval'],
        comment: 'cluster CIDRs (IPv6): not masqueraded among themselves',
      },
    ],
    rules: [rule('pod egress v4', egressBody(4, CLUSTER_SET_V4)), rule('pod egress v6', egressBody(6, CLUSTER_SET_V6))],
    elements: new Map([
      [CLUSTER_SET_V4, v4],
      [CLUSTER_SET_V6, v6],
    ]),
  };
}

/**
 * The transaction that turns `actual` into `desired`; empty when they agree. Pure, so the diff is
 * unit-tested on listed states.
 */
export function planMasquerade(actual: TableState, desired: DesiredMasquerade): Transaction {
  const tx = new Transaction({ owner: MASQUERADE_OWNERSHIP });
  const chain = actual.chains.get(desired.chain.name);
  const base = desired.chain.base;
  const chainOk =
    chain !== undefined &&
    chain.base !== undefined &&
    base !== undefined &&
    chain.base.type === base.type &&
    chain.base.hook === base.hook &&
    chain.base.priority === base.priority &&
    (chain.base.policy ?? 'accept') === (base.policy ?? 'accept');
  const rulesOk =
    chainOk &&
    chain.rules.map((r) => r.comment ?? '').join('\n') === desired.rules.map((r) => r.comment ?? '').join('\n');
  const badSets = desired.sets.filter((s) => {
    const got = actual.sets.get(s.name);
    return (
      got !== undefined && (got.type !== s.type || [...got.flags].sort().join() !== [...(s.flags ?? [])].sort().join())
    );
  });

  if (!actual.exists) tx.add({ kind: 'table' });
  // The chain's rules name the sets, so they go first whenever the chain or a set is remade.
  if (chain && (!chainOk || !rulesOk || badSets.length > 0)) tx.flush({ kind: 'chain', name: chain.name });
  // A base chain's type, hook or priority cannot be changed in place (EOPNOTSUPP): remake it.
  if (chain && !chainOk) tx.delete({ kind: 'chain', name: chain.name });
  for (const s of badSets) tx.delete({ kind: 'set', name: s.name });

  for (const s of desired.sets) {
    const want = desired.elements.get(s.name) ?? [];
    const got = badSets.includes(s) ? undefined : actual.sets.get(s.name);
    if (!got) {
      tx.add(s);
      for (const cidr of want) tx.add({ kind: 'element', set: s.name, key: [cidr] });
      continue;
    }
    const have = new Set(got.elements.map((e) => e.key.join(' . ')));
    // Deletions first: a wider CIDR replacing a narrower one would otherwise overlap it.
    for (const e of got.elements)
      if (!want.includes(e.key.join(' . '))) tx.delete({ kind: 'element', set: s.name, key: e.key });
    for (const cidr of want) if (!have.has(cidr)) tx.add({ kind: 'element', set: s.name, key: [cidr] });
  }

  if (!chainOk) tx.add(desired.chain);
  if (!rulesOk || badSets.length > 0) for (const r of desired.rules) tx.add(r);
  return tx;
}

/** What the masquerade reads of the table on every pass: its own objects, not the whole table (which
 * holds the NetworkPolicy rules too). */
const MASQUERADE_OBJECTS = { chains: [MASQUERADE_CHAIN], sets: [CLUSTER_SET_V4, CLUSTER_SET_V6] };
// Why not the generic LayoutApplier (nft/layout-applier.ts): the masquerade is three small objects, so
// it reads them back on every pass and repairs any drift (a lost element too) without a marker
// chain; the applier's record-and-marker design pays off for the policy layout's thousands of rules.

/** Brings the masquerade in line with `config`; applies nothing when it already is. */
export async function reconcileMasquerade(nft: NftTransport, config: MasqueradeConfig): Promise<MasqueradeResult> {
  const desired = desiredMasquerade(config);
  const tx = planMasquerade(await nft.list(MASQUERADE_OBJECTS), desired);
  if (tx.empty) return { changed: false, script: '' };
  await nft.run(tx);
  return { changed: true, script: tx.render(nft.table) };
}

/** The transaction that removes the masquerade chain and sets (and nothing else); empty when absent. */
export function planRemoveMasquerade(actual: TableState): Transaction {
  const tx = new Transaction({ owner: MASQUERADE_OWNERSHIP });
  if (actual.chains.has(MASQUERADE_CHAIN)) {
    tx.flush({ kind: 'chain', name: MASQUERADE_CHAIN });
    tx.delete({ kind: 'chain', name: MASQUERADE_CHAIN });
  }
  for (const name of [CLUSTER_SET_V4, CLUSTER_SET_V6]) if (actual.sets.has(name)) tx.delete({ kind: 'set', name });
  return tx;
}

/**
 * Uninstall: removes the agent's masquerade chain and sets. The table stays, even when empty: the CNI
 * plugin may be adding its `cni-*` objects to it at this very moment.
 */
export async function removeMasquerade(nft: NftTransport): Promise<MasqueradeResult> {
  const tx = planRemoveMasquerade(await nft.list(MASQUERADE_OBJECTS));
  if (tx.empty) return { changed: false, script: '' };
  await nft.run(tx);
  return { changed: true, script: tx.render(nft.table) };
}
