// Reads of nf_tables over netlink, in process: what the drift check, the counters and adoption need
// without running `nft` or listing a table as text. The socket is a NETLINK_NETFILTER NetlinkSocket
// (openNftReader), whose dumps are retried when the ruleset changes while the kernel writes them out
// (NLM_F_DUMP_INTR), so each answer is one consistent generation.
//
// The cheap question first: readGeneration (NFT_MSG_GETGEN) is one request and one small answer,
// and the number changes with every committed nf_tables transaction of the namespace, by anyone.
// Only when it has changed is readTableRules (one GETRULE dump of one table) worth its cost.
import { isKernelError, NetlinkSocket } from '../../kernel/index.ts';
import type { MessageBuilder, NlMessage } from '../../kernel/netlink-codec.ts';
import { NETLINK_NETFILTER } from '../../kernel/netlink-const.ts';
import { NFNL_SUBSYS_NFTABLES, NFPROTO_INET, NFT_MSG, nftMessage } from '../netlink-msgs.ts';
import {
  ChainDigester,
  countElements,
  decodeChain,
  decodeElements,
  decodeGeneration,
  decodeRule,
  decodeSet,
  NFT_MSG_GETGEN,
  NFT_MSG_NEWGEN,
  type ChainDigest,
  type ChainInfo,
  type ElementInfo,
  type RuleInfo,
  type SetInfo,
} from './decode.ts';
import { NFT_SET_F } from './const.ts';
import { scanRuleCounters, type ScannedCounter } from './counter-scan.ts';

export type { ScannedCounter } from './counter-scan.ts';
export type { ChainDigest, ChainInfo, ElementInfo, RuleCounter, RuleInfo, SetInfo } from './decode.ts';

/** nftables' table families as nf_tables numbers them (NFPROTO_*). */
export type NftFamily = 'inet' | 'ip' | 'ip6' | 'arp' | 'bridge' | 'netdev';
const FAMILY: Record<NftFamily, number> = { inet: NFPROTO_INET, ip: 2, ip6: 10, arp: 3, bridge: 7, netdev: 5 };

/** A table by family and name, e.g. { family: 'inet', name: 'strand' }. */
export interface TableRef {
  family: NftFamily;
  name: string;
}

/** One table's rules: per-chain digests (chains without rules are absent) and every rule. */
export interface TableRules {
  chains: Map<string, ChainDigest>;
  rules: RuleInfo[];
}

const NFTA_RULE_TABLE = 1;
const NFTA_RULE_CHAIN = 2;
const NFTA_CHAIN_TABLE = 1;
const NFTA_SET_TABLE = 1;
const NFTA_SET_ELEM_LIST_TABLE = 1;
const NFTA_SET_ELEM_LIST_SET = 2;

/** A socket for the reads below, in the caller's namespace or `netns`; the caller closes it. */
export function openNftReader(opts: { netns?: string } = {}): NetlinkSocket {
  return NetlinkSocket.open({ ...opts, protocol: NETLINK_NETFILTER });
}

/** The namespace's nf_tables generation: equal between two reads means nothing was committed. */
export function readGeneration(nl: NetlinkSocket): number {
  const answer = nl.request(nftMessage(NFT_MSG_GETGEN, 0, 0), 'read the nftables generation');
  for (const m of answer) {
    const gen = m.type === ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWGEN) ? decodeGeneration(m) : undefined;
    if (gen !== undefined) return gen;
  }
  throw new Error('the kernel answered NFT_MSG_GETGEN without a generation');
}

/** A dump of one table's objects; [] when the table does not exist. */
function dumpTable(nl: NetlinkSocket, request: MessageBuilder, what: string): NlMessage[] {
  try {
    return nl.dump(request, what);
  } catch (err) {
    if (isKernelError(err, 'ENOENT')) return [];
    throw err;
  }
}

/**
 * Every rule of one table (one GETRULE dump filtered by family and table), decoded into per-chain
 * { count, digest } and per-rule { chain, handle, comment, counter }. The digest covers each rule's
 * handle, expressions (counter values and other per-packet state left out) and user data, in order:
 * a flushed chain, a deleted, added, edited or reordered rule changes it; traffic does not.
 */
export function readTableRules(nl: NetlinkSocket, table: TableRef, chain?: string): TableRules {
  const request = nftMessage(NFT_MSG.GETRULE, 0, FAMILY[table.family]).str(NFTA_RULE_TABLE, table.name);
  // The kernel filters a rule dump by chain too: one chain's rules without the rest of the table.
  if (chain !== undefined) request.str(NFTA_RULE_CHAIN, chain);
  const digester = new ChainDigester();
  const rules: RuleInfo[] = [];
  for (const m of dumpTable(nl, request, `list the rules of table ${table.family} ${table.name}`)) {
    const r = decodeRule(m);
    if (!r || r.table !== table.name) continue;
    digester.add(r);
    const info: RuleInfo = { chain: r.chain, handle: r.handle };
    if (r.comment !== undefined) info.comment = r.comment;
    if (r.counter) info.counter = r.counter;
    rules.push(info);
  }
  return { chains: digester.finish(), rules };
}

/**
 * The counters of one table's rules (or one chain's), for the metrics scrape: counter-scan.ts decodes
 * only the chain, handle, comment and counter of each rule where it lies in the receive buffer.
 */
export function readTableCounters(nl: NetlinkSocket, table: TableRef, chain?: string): ScannedCounter[] {
  const request = nftMessage(NFT_MSG.GETRULE, 0, FAMILY[table.family]).str(NFTA_RULE_TABLE, table.name);
  if (chain !== undefined) request.str(NFTA_RULE_CHAIN, chain);
  try {
    return scanRuleCounters(nl, request, table.name, `read the rule counters of table ${table.family} ${table.name}`);
  } catch (err) {
    if (isKernelError(err, 'ENOENT')) return [];
    throw err;
  }
}

/** One chain's rules, in order: handle and comment (counts as found, zero where a rule has none). */
export function readChainRules(nl: NetlinkSocket, table: TableRef, chain: string): ScannedCounter[] {
  const request = nftMessage(NFT_MSG.GETRULE, 0, FAMILY[table.family])
    .str(NFTA_RULE_TABLE, table.name)
    .str(NFTA_RULE_CHAIN, chain);
  try {
    return scanRuleCounters(nl, request, table.name, `list the rules of chain ${chain}`, true);
  } catch (err) {
    if (isKernelError(err, 'ENOENT')) return [];
    throw err;
  }
}

/** The chains of one table: names, handles, references and, for base chains, hook and type. */
export function listChains(nl: NetlinkSocket, table: TableRef): ChainInfo[] {
  // The kernel does not filter a chain dump by table (it does for rules and sets): filtered here.
  const request = nftMessage(NFT_MSG.GETCHAIN, 0, FAMILY[table.family]).str(NFTA_CHAIN_TABLE, table.name);
  return dumpTable(nl, request, `list the chains of table ${table.family} ${table.name}`).flatMap((m) => {
    const c = decodeChain(m);
    if (!c || c.table !== table.name) return [];
    const { table: _, ...chain } = c;
    return [chain];
  });
}

/** The sets and maps of one table (without their elements). */
export function listSets(nl: NetlinkSocket, table: TableRef): SetInfo[] {
  const request = nftMessage(NFT_MSG.GETSET, 0, FAMILY[table.family]).str(NFTA_SET_TABLE, table.name);
  return dumpTable(nl, request, `list the sets of table ${table.family} ${table.name}`).flatMap((m) => {
    const s = decodeSet(m);
    // A rule's anonymous set (`{ a, b }`) lives and dies with its rule: not an object of the table's
    // owner, and nft does not list it either.
    if (!s || s.table !== table.name || (s.flags & NFT_SET_F.ANONYMOUS) !== 0) return [];
    const { table: _, ...set } = s;
    return [set];
  });
}

/** How many elements a set or map holds (a range once); one dump of its elements, not decoded. */
export function countSetElements(nl: NetlinkSocket, table: TableRef, set: string): number {
  const request = nftMessage(NFT_MSG.GETSETELEM, 0, FAMILY[table.family])
    .str(NFTA_SET_ELEM_LIST_TABLE, table.name)
    .str(NFTA_SET_ELEM_LIST_SET, set);
  const what = `list the elements of set ${set} of table ${table.family} ${table.name}`;
  let n = 0;
  for (const m of dumpTable(nl, request, what)) n += countElements(m);
  return n;
}

/** The elements of a set or map, undecoded keys (the caller knows the key's types); [] when absent. */
export function readSetElements(nl: NetlinkSocket, table: TableRef, set: string): ElementInfo[] {
  const request = nftMessage(NFT_MSG.GETSETELEM, 0, FAMILY[table.family])
    .str(NFTA_SET_ELEM_LIST_TABLE, table.name)
    .str(NFTA_SET_ELEM_LIST_SET, set);
  return dumpTable(nl, request, `list the elements of set ${set} of table ${table.family} ${table.name}`).flatMap(
    decodeElements,
  );
}

/** Whether the table exists (one GETTABLE request). */
export function tableExists(nl: NetlinkSocket, table: TableRef): boolean {
  try {
    nl.request(
      nftMessage(NFT_MSG.GETTABLE, 0, FAMILY[table.family]).str(1, table.name),
      `get table ${table.family} ${table.name}`,
    );
    return true;
  } catch (err) {
    if (isKernelError(err, 'ENOENT')) return false;
    throw err;
  }
}
