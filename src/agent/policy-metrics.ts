// The NetworkPolicy enforcement's metrics, on the agent's registry (metrics.ts): programming latency,
// nft transactions (number, lines, bytes), rebuilds, failures, the pod-start bound, conntrack
// deletions, and the rules' packet counters per pod and per policy, read from the kernel when
// /metrics is scraped (policy-counters.ts).
import { Counter, Histogram, type Registry } from 'prom-client';
import { CachingRegistry } from './metrics.ts';

export interface PolicyMetrics {
  /** Seconds from an API event (or a pod-start notice) seen to the rules applied. */
  programming: Histogram;
  transactions: Counter<'kind'>;
  transactionLines: Histogram<'kind'>;
  transactionBytes: Histogram<'kind'>;
  rebuilds: Counter<'reason'>;
  nftFailures: Counter<'kind'>;
  /** Pod-start notices answered "not ready" because the pod's rules were not in place within the bound. */
  podStartTimeouts: Counter;
  /** Pod-start binds by how they were made: ahead (computed before the notice, bind-ahead.ts), at the
   * notice (bind.ts), or a full compile; "mismatch": a bind ahead whose bookkeeping disagreed. */
  podStartBinds: Counter<'path'>;
  conntrackDeleted: Counter;
  conntrackErrors: Counter;
  /** Filled in at scrape time from the rules' counters. */
  podPackets: Counter<'namespace' | 'pod' | 'direction' | 'verdict'>;
  policyPackets: Counter<'namespace' | 'policy' | 'direction'>;
  clusterRulePackets: Counter<'policy' | 'rule' | 'tier' | 'action' | 'direction'>;
  /** Bumped whenever a read changes the three packet families (a CachingRegistry formats them again then). */
  countersVersion: number;
}

export function createPolicyMetrics(registry: Registry, collectCounters: () => Promise<void>): PolicyMetrics {
  const registers = [registry];
  const policyPackets = new Counter({
    name: 'strand_policy_allowed_packets_total',
    help: 'Packets of new connections a NetworkPolicy rule allowed on this node, by policy and direction (from the nftables rule counters; a rebuild of the rules starts them again from 0).',
    labelNames: ['namespace', 'policy', 'direction'] as const,
    registers,
    // One read of the kernel serves both counter families (collectCounters shares it).
    collect: collectCounters,
  });
  const m: PolicyMetrics = {
    countersVersion: 0,
    programming: new Histogram({
      name: 'strand_policy_programming_seconds',
      help: 'Seconds from a NetworkPolicy, Pod or Namespace event seen by the agent (or a pod-start notice) to the nftables rules that follow from it applied.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    transactions: new Counter({
      name: 'strand_policy_nft_transactions_total',
      help: 'nft transactions of the policy rules, by kind (diff or rebuild).',
      labelNames: ['kind'] as const,
      registers,
    }),
    transactionLines: new Histogram({
      name: 'strand_policy_nft_transaction_commands',
      help: 'Commands (script lines) per nft transaction of the policy rules, by kind.',
      labelNames: ['kind'] as const,
      buckets: [1, 5, 10, 50, 100, 500, 1000, 5000, 10_000, 50_000],
      registers,
    }),
    transactionBytes: new Histogram({
      name: 'strand_policy_nft_transaction_bytes',
      help: 'Bytes of the nft script per transaction of the policy rules, by kind.',
      labelNames: ['kind'] as const,
      buckets: [256, 1024, 4096, 16_384, 65_536, 262_144, 1_048_576, 4_194_304, 16_777_216],
      registers,
    }),
    rebuilds: new Counter({
      name: 'strand_policy_rebuilds_total',
      help: 'Rebuilds of every policy object in one transaction, by reason (start, drift, failure, retry).',
      labelNames: ['reason'] as const,
      registers,
    }),
    nftFailures: new Counter({
      name: 'strand_policy_nft_failures_total',
      help: 'nft transactions of the policy rules the kernel refused, by kind (diff or rebuild).',
      labelNames: ['kind'] as const,
      registers,
    }),
    podStartTimeouts: new Counter({
      name: 'strand_policy_pod_start_timeouts_total',
      help: "Pod-start notices whose pod's policy rules were not in place within the bound (the ADD then fails with try-again-later).",
      registers,
    }),
    podStartBinds: new Counter({
      name: 'strand_policy_pod_start_binds_total',
      help: 'Pod-start notices bound, by path: ahead (the bind computed before the notice), notice (computed at it), compile (everything compiled); mismatch: a bind ahead whose bookkeeping disagreed (the rules are rebuilt).',
      labelNames: ['path'] as const,
      registers,
    }),
    conntrackDeleted: new Counter({
      name: 'strand_policy_conntrack_deleted_total',
      help: 'Conntrack entries deleted because a policy change denies their flow.',
      registers,
    }),
    conntrackErrors: new Counter({
      name: 'strand_policy_conntrack_errors_total',
      help: 'Failures listing or deleting conntrack entries after a policy change.',
      registers,
    }),
    podPackets: new Counter({
      name: 'strand_policy_pod_packets_total',
      help: "Packets of new connections to (ingress) or from (egress) this node's isolated pods, allowed or denied by their policies (from the nftables rule counters).",
      labelNames: ['namespace', 'pod', 'direction', 'verdict'] as const,
      registers,
      collect: collectCounters,
    }),
    policyPackets,
    clusterRulePackets: new Counter({
      name: 'strand_cluster_network_policy_rule_packets_total',
      help:
        "Packets of new connections a ClusterNetworkPolicy rule matched on this node's pods, by policy, rule (its name, " +
        'else direction[index]), tier, action and direction (from the nftables rule counters; a rebuild starts them from 0).',
      labelNames: ['policy', 'rule', 'tier', 'action', 'direction'] as const,
      registers,
      collect: collectCounters,
    }),
  };
  if (registry instanceof CachingRegistry)
    for (const c of [m.podPackets, m.policyPackets, m.clusterRulePackets])
      registry.cacheText(counterName(c), () => m.countersVersion);
  return m;
}

/** A family's name (prom-client keeps it on the object; its types leave it out). */
const counterName = (c: Counter<string>): string => (c as unknown as { name: string }).name;
