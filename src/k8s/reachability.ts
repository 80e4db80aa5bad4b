// One "the API is back" signal for every user of a KubeClient. Each informer restarts on its own
// with a backoff of up to 30 s; after an outage that pushed them all to the cap, they came back
// 26-32 s after the API did (issue 16, item 4). Here a failure without an answer from the API
// (refused, reset, timed out) marks it unreachable; the next success of any request, list or watch
// marks it reachable again and wakes every listener at once. While it is unreachable a cheap probe
// (GET /version, readable by anyone) runs every few seconds, so the return is seen even when every
// informer is waiting out its backoff. An HTTP error (500, 429, 403) is an answer: the API is up, and
// that resource's informer keeps its own backoff.

/** ms between probes while the API is unreachable (±20 %): the informers are back within about this. */
export const PROBE_INTERVAL_MS = 3_000;

/** True for a failure that had no HTTP answer (connection refused or reset, DNS, timeout). */
export function isUnanswered(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return true;
  const e = err as { statusCode?: unknown; code?: unknown };
  if (typeof e.statusCode === 'number') return e.statusCode === 0;
  return typeof e.code !== 'number';
}

export class ApiReachability {
  private unreachable = false;
  private readonly listeners = new Set<() => void>();
  private probeTimer: NodeJS.Timeout | undefined;
  private readonly probe: () => Promise<unknown>;
  private readonly probeMs: number;

  constructor(probe: () => Promise<unknown>, probeMs = PROBE_INTERVAL_MS) {
    this.probe = probe;
    this.probeMs = probeMs;
  }

  /** False from a failure without an answer until the next success. */
  get reachable(): boolean {
    return !this.unreachable;
  }

  /** A request, list or watch succeeded: if the API was unreachable, every listener is woken. */
  succeeded(): void {
    if (!this.unreachable) return;
    this.unreachable = false;
    clearTimeout(this.probeTimer);
    this.probeTimer = undefined;
    for (const wake of [...this.listeners]) wake();
  }

  /** A request, list or watch failed; only one without an answer marks the API unreachable. */
  failed(err: unknown): void {
    if (!isUnanswered(err) || this.unreachable) return;
    this.unreachable = true;
    this.scheduleProbe();
  }

  /** Calls `wake` each time the API is back; returns the unsubscribe. */
  onBack(wake: () => void): () => void {
    this.listeners.add(wake);
    if (this.unreachable) this.scheduleProbe();
    return () => {
      this.listeners.delete(wake);
      if (this.listeners.size === 0) {
        clearTimeout(this.probeTimer);
        this.probeTimer = undefined;
      }
    };
  }

  private scheduleProbe(): void {
    // Nobody waits for the API (every informer stopped): no probing.
    if (this.probeTimer !== undefined || this.listeners.size === 0) return;
    const delay = Math.round(this.probeMs * (0.8 + 0.4 * Math.random()));
    this.probeTimer = setTimeout(() => {
      this.probeTimer = undefined;
      // The request reports its own success or failure (KubeClient.request).
      this.probe().then(
        () => this.succeeded(),
        () => {
          if (this.unreachable) this.scheduleProbe();
        },
      );
    }, delay);
    this.probeTimer.unref();
  }
}
