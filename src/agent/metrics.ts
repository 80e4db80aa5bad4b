// The agent's Prometheus metrics (prom-client), on a registry of its own so that nothing else in the
// process (a library registering on prom-client's global registry) shows up on /metrics. Strand's
// own metrics are prefixed `strand_`; the default process and Node.js metrics keep their standard
// names (process_*, nodejs_*), so the usual dashboards work on them unchanged.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { rangeSetUsage, type RangeSetUsage } from '../ipam/allocator.ts';
import { loadIpamConfig, resolveRangeSets, type IpamConfig } from '../ipam/config.ts';
import { readReservations, storeDir, type Reservation } from '../ipam/store.ts';
import type { RangeSet } from '../ipam/range.ts';

export interface AgentMetrics {
  registry: Registry;
  /** One per reconcile pass; result "ok" or "error". */
  reconcileTotal: Counter<'result'>;
  /** Seconds per reconcile pass. */
  reconcileDuration: Histogram;
  /** Informer watches restarted (relist after 410 Gone, reconnect), per resource ("nodes", "pods", …). */
  watchRestarts: Counter<'resource'>;
  /** Failed Kubernetes API requests, per resource. */
  apiErrors: Counter<'resource'>;
  /** IPAM addresses per network and family ("4", "6"); state "used" or "free". */
  ipamAddresses: Gauge<'network' | 'family' | 'state'>;
  /** Pod-start notices from the plugin, by the answer given ("ok", "refused", "error"). */
  podStartNotices: Counter<'result'>;
  /** Seconds from a pod-start notice's arrival to its answer, by the answer ("ok", "refused"). */
  podStartAnswer: Histogram<'result'>;
  /** Seconds spent in each step of the main loop (the wall time of its runs), by step. */
  stepSeconds: Counter<'step'>;
  /** Runs of each step of the main loop, by step: a step runs when an input it reads changed. */
  stepRuns: Counter<'step'>;
  /** Nodes with a pod CIDR refused for overlapping an older Node's, this node's or the service range. */
  podCidrConflicts: Gauge;
}

/** How often the event-loop lag metrics sample the loop. */
export const EVENT_LOOP_SAMPLE_MS = 1_000;

/**
 * A registry that keeps the text of the families it is told change only at known moments (the
 * rules' packet counters, thousands of series at 1,000 policies, change only when the kernel's
 * counters are read and differ): a scrape formats them again only when their version moved
 * (prom-client formats every series of every family on each scrape).
 */
export class CachingRegistry extends Registry {
  private readonly cached = new Map<string, { version: () => number; seen?: number; text?: string }>();

  /** Keeps `name`'s text while `version()` returns the same number (the family's collect still runs). */
  cacheText(name: string, version: () => number): void {
    this.cached.set(name, { version });
  }

  override async metrics(): Promise<string> {
    const parts = await Promise.all(this.getMetricsAsArray().map((m) => this.text(m.name)));
    return `${parts.join('\n\n')}\n`;
  }

  private async text(name: string): Promise<string> {
    const c = this.cached.get(name);
    if (!c) return this.getSingleMetricAsString(name);
    // The family's collect (a counter read when one is due) runs as it would; only formatting is saved.
    await this.getSingleMetric(name)?.get();
    const version = c.version();
    if (c.text !== undefined && c.seen === version) return c.text;
    const text = await this.getSingleMetricAsString(name);
    // Recorded with the version seen before formatting: a change meanwhile is formatted next time.
    c.seen = version;
    c.text = text;
    return text;
  }
}

export function createMetrics(): AgentMetrics {
  const registry = new CachingRegistry();
  // The event-loop lag histogram samples with a libuv timer: prom-client's default 10 ms woke the
  // agent 200 times a second on every node, idle (strace: 200 wakeups/s, 13 after). Once a second
  // still shows a stalled loop; the idle agent then sleeps between its own timers.
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  const registers = [registry];
  return {
    registry,
    reconcileTotal: new Counter({
      name: 'strand_reconcile_total',
      help: 'Reconcile passes of the node agent, by result (ok or error).',
      labelNames: ['result'] as const,
      registers,
    }),
    reconcileDuration: new Histogram({
      name: 'strand_reconcile_duration_seconds',
      help: 'Duration of a reconcile pass of the node agent, in seconds.',
      // A pass reads the caches and the kernel and applies a difference: milliseconds normally,
      // seconds when nftables has a large policy set to load.
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    stepSeconds: new Counter({
      name: 'strand_step_seconds_total',
      help: 'Seconds the main loop spent in each step (wall time of its runs), by step.',
      labelNames: ['step'] as const,
      registers,
    }),
    stepRuns: new Counter({
      name: 'strand_step_runs_total',
      help: 'Runs of each step of the main loop, by step (a step runs when something it reads changed, and on the resync).',
      labelNames: ['step'] as const,
      registers,
    }),
    watchRestarts: new Counter({
      name: 'strand_watch_restarts_total',
      help: 'Kubernetes watches restarted (relist after 410 Gone, reconnect after an error), by resource.',
      labelNames: ['resource'] as const,
      registers,
    }),
    apiErrors: new Counter({
      name: 'strand_api_errors_total',
      help: 'Failed Kubernetes API requests, by resource.',
      labelNames: ['resource'] as const,
      registers,
    }),
    ipamAddresses: new Gauge({
      name: 'strand_ipam_addresses',
      help: 'IPAM addresses of the node per network and address family (4 or 6), by state (used or free).',
      labelNames: ['network', 'family', 'state'] as const,
      registers,
    }),
    podStartNotices: new Counter({
      name: 'strand_pod_start_notices_total',
      help: 'Pod-start notices received from the CNI plugin, by the answer given (ok, refused, error).',
      labelNames: ['result'] as const,
      registers,
    }),
    podStartAnswer: new Histogram({
      name: 'strand_pod_start_answer_seconds',
      help: "Seconds from a pod-start notice's arrival to the agent's answer (the pod's rules in the kernel), by the answer (ok, refused).",
      labelNames: ['result'] as const,
      buckets: [0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    // A plain count (no label per node: the names are in the log and in `strand status`).
    podCidrConflicts: new Gauge({
      name: 'strand_pod_cidr_conflicts',
      help: "Nodes whose pod CIDR overlaps an older Node's, this node's or the service range, and get no route to it.",
      registers,
    }),
  };
}

export interface IpamGaugeProblem {
  network: string;
  message: string;
}

/**
 * A network's IPAM configuration and its range sets (resolved: usePodCidr reads the node state), or
 * why they cannot be had now.
 */
export type IpamNetwork = { name: string } & (
  | { conf: IpamConfig; sets: readonly RangeSet[]; problem?: undefined }
  | { problem: string }
);

/** Resolves a network configuration (`name` plus `ipam`, as a plugin receives it). */
export function ipamNetwork(net: Record<string, unknown>): IpamNetwork {
  const name = typeof net.name === 'string' ? net.name : '';
  try {
    if (name === '') throw new Error('missing network name');
    const conf = loadIpamConfig(net, name);
    return { name, conf, sets: resolveRangeSets(conf) };
  } catch (err) {
    return { name, problem: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * Sets strand_ipam_addresses from the IPAM stores of `networks` (network configurations as a plugin
 * receives them: `name` plus `ipam`). Range sets of one family are summed. Series of networks no
 * longer given, or whose usage cannot be read now (usePodCidr before the node state exists), are
 * dropped rather than left stale; those networks are returned so that the caller can log them.
 */
export function updateIpamGauges(m: AgentMetrics, networks: Record<string, unknown>[]): IpamGaugeProblem[] {
  return setIpamGauges(m, networks.map(ipamNetwork));
}

/**
 * updateIpamGauges for networks resolved already; `reservationsIn` gives a store's reservations
 * when the caller has read them (undefined: the store is read here).
 */
export function setIpamGauges(
  m: AgentMetrics,
  networks: readonly IpamNetwork[],
  reservationsIn: (dir: string) => readonly Reservation[] | undefined = () => undefined,
): IpamGaugeProblem[] {
  const values: { network: string; family: '4' | '6'; used: number; free: number }[] = [];
  const problems: IpamGaugeProblem[] = [];
  for (const net of networks) {
    const network = net.name;
    try {
      if (net.problem !== undefined) throw new Error(net.problem);
      const dir = storeDir(net.conf.dataDir, net.conf.network);
      const usage: RangeSetUsage[] = rangeSetUsage(net.sets, reservationsIn(dir) ?? readReservations(dir));
      const perFamily = new Map<'4' | '6', { used: number; free: number }>();
      for (const u of usage) {
        const family = u.family === 4 ? '4' : '6';
        const v = perFamily.get(family) ?? { used: 0, free: 0 };
        v.used += u.used;
        // An IPv6 range can hold more than 2^53 addresses: a gauge is a float64 anyway.
        v.free += Number(u.free);
        perFamily.set(family, v);
      }
      for (const [family, v] of perFamily) values.push({ network, family, ...v });
    } catch (err) {
      problems.push({ network, message: err instanceof Error ? err.message : String(err) });
    }
  }
  // reset() and the sets run in one synchronous stretch: a scrape never sees the gauge half filled.
  m.ipamAddresses.reset();
  for (const v of values) {
    m.ipamAddresses.set({ network: v.network, family: v.family, state: 'used' }, v.used);
    m.ipamAddresses.set({ network: v.network, family: v.family, state: 'free' }, v.free);
  }
  return problems;
}
