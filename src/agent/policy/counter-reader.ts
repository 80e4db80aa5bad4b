// The policy step's counters: the rules' packet counters read into the per-pod and per-policy metrics
// when Prometheus scrapes, at most every COUNTER_READ_MS (one read lists the whole table).
import type { Nft } from '../../nft/transport.ts';
import type { DesiredPolicyTable } from '../../policy/index.ts';
import type { Logger } from '../../log.ts';
import type { Clock } from '../clock.ts';
import { describeError } from '../../k8s/client.ts';
import { readPolicyCounters } from '../policy-counters.ts';
import type { PolicyMetrics } from '../policy-metrics.ts';

/** Scrapes within this long of a read get that read's figures (a read dumps every rule of the table). */
export const COUNTER_READ_MS = 30_000;

export class CounterReader {
  private last: { at: number; promise: Promise<void> } | undefined;

  private readonly nft: Nft;
  private readonly clock: Clock;
  private readonly log: Logger;
  /** The table last applied (undefined before the first apply: nothing to read). */
  private readonly applied: () => DesiredPolicyTable | undefined;

  constructor(nft: Nft, clock: Clock, log: Logger, applied: () => DesiredPolicyTable | undefined) {
    this.nft = nft;
    this.clock = clock;
    this.log = log;
    this.applied = applied;
  }

  /** Reads the counters into `m` unless a read was started less than COUNTER_READ_MS ago. */
  collect(m: PolicyMetrics): Promise<void> {
    const now = this.clock.now();
    if (this.last && now - this.last.at < COUNTER_READ_MS) return this.last.promise;
    const promise = this.read(m).catch((err: unknown) =>
      this.log.debug({ err: describeError(err) }, 'could not read the policy counters'),
    );
    this.last = { at: now, promise };
    return promise;
  }

  private async read(m: PolicyMetrics): Promise<void> {
    const table = this.applied();
    if (!table) return;
    const { pods, policies, clusterRules } = readPolicyCounters(await this.nft.counters(), table);
    m.podPackets.reset();
    m.policyPackets.reset();
    m.clusterRulePackets.reset();
    for (const r of clusterRules)
      m.clusterRulePackets.inc(
        { policy: r.policy, rule: r.rule, tier: r.tier, action: r.action, direction: r.direction },
        r.packets,
      );
    for (const p of pods)
      m.podPackets.inc({ namespace: p.namespace, pod: p.name, direction: p.direction, verdict: p.verdict }, p.packets);
    for (const p of policies)
      m.policyPackets.inc({ namespace: p.namespace, policy: p.name, direction: p.direction }, p.packets);
  }
}
