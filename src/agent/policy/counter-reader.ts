// The policy step's counters: the rules' packet counters read into the per-pod and per-policy metrics
// when Prometheus scrapes, at most every COUNTER_READ_MS (one read dumps the whole table, or the
// counted chains one by one when they are large: policy-counters.ts countedChains).
import type { Nft } from '../../nft/transport.ts';
import type { DesiredPolicyTable } from '../../policy/index.ts';
import type { Logger } from '../../log.ts';
import type { Clock } from '../clock.ts';
import { describeError } from '../../k8s/client.ts';
import { countedChains, readPolicyCounters } from '../policy-counters.ts';
import type { PolicyMetrics } from '../policy-metrics.ts';
import { nextTurn } from '../../util/sliced.ts';

/** Scrapes within this long of a read get that read's figures (a read dumps every rule of the table). */
export const COUNTER_READ_MS = 30_000;

/**
 * A read that took longer than this (a table far past 10,000 rules, a loaded node) is no longer made
 * while a scrape waits: the next scrape past COUNTER_READ_MS answers with the figures it has and the
 * read runs after the answer is sent. Prometheus then sees counters up to one scrape interval older
 * than the scrape (still monotonic: each read replaces the figures with the kernel's, which only
 * grow while the rules stay), in exchange for /metrics answering within its 100 ms at any size.
 */
export const SLOW_COUNTER_READ_MS = 50;

export class CounterReader {
  private last: { at: number; promise: Promise<void> } | undefined;
  /** The series of the last read (labels and packets). */
  private lastFigures: object[][] | undefined;
  /** How long the last completed read took; undefined before the first. */
  private lastReadMs: number | undefined;

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

  /**
   * Reads the counters into `m` unless a read was started less than COUNTER_READ_MS ago; when the
   * last read was slow, starts the read after this scrape is answered instead of during it.
   */
  collect(m: PolicyMetrics): Promise<void> {
    const now = this.clock.now();
    if (this.last && now - this.last.at < COUNTER_READ_MS) return this.last.promise;
    const slow = this.lastReadMs !== undefined && this.lastReadMs > SLOW_COUNTER_READ_MS;
    // The netlink read blocks the event loop while it runs: deferred, it runs once this scrape's
    // answer (built in microtasks from the figures at hand) has been written, in a loop turn of its
    // own (nextTurn: not in the same turn as another job's slice).
    const start = slow ? nextTurn().then(() => this.timedRead(m)) : this.timedRead(m);
    const promise = start.catch((err: unknown) =>
      this.log.debug({ err: describeError(err) }, 'could not read the policy counters'),
    );
    // Scrapes until the next read wait for this one only when it is made while they wait.
    this.last = { at: now, promise: slow ? Promise.resolve() : promise };
    return this.last.promise;
  }

  private async timedRead(m: PolicyMetrics): Promise<void> {
    const t0 = performance.now();
    try {
      await this.read(m);
    } finally {
      this.lastReadMs = performance.now() - t0;
    }
  }

  private async read(m: PolicyMetrics): Promise<void> {
    const table = this.applied();
    if (!table) return;
    const { pods, policies, clusterRules } = readPolicyCounters(await this.nft.counters(countedChains(table)), table);
    // An idle node's counters do not move: the series stay as they are (no reset and re-adding of
    // thousands of them, no new text for /metrics to format).
    const figures: object[][] = [pods, policies, clusterRules];
    const same = this.lastFigures !== undefined && sameFigures(this.lastFigures, figures);
    this.lastFigures = figures;
    if (same) return;
    m.countersVersion++;
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

/** Whether two reads gave the same series in the same order (their fields are strings and numbers). */
const sameFigures = (a: object[][], b: object[][]): boolean =>
  a.length === b.length && a.every((x, i) => x.length === b[i]?.length && x.every((o, j) => sameFields(o, b[i]?.[j])));

function sameFields(a: object, b: object | undefined): boolean {
  if (b === undefined) return false;
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  const keys = Object.keys(x);
  return keys.length === Object.keys(y).length && keys.every((k) => x[k] === y[k]);
}
