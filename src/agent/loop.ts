// The agent's one loop shape (kindnet's): a request marks the loop dirty; requests within the debounce
// make one run; runs never overlap; a run asked for while one is in progress follows it; a failed run
// is retried after `retryMs` (one retry armed at a time). The main loop (the steps, agent.ts) and the
// policy loop (policy/enforcer.ts, a shorter debounce) are two instances of it.
//
// stop() is final: it disarms both timers (and forgets them, so settle() ends: issue 16 item 3, where
// a cleared timer left marked set kept the policy enforcer's settle loop turning after SIGTERM).
import type { Clock, Timer } from './clock.ts';

export interface LoopOptions {
  clock: Clock;
  debounceMs: number;
  retryMs: number;
  /** One run; throwing or answering false asks for a retry. */
  run: () => Promise<boolean>;
}

export class Loop {
  private readonly opts: LoopOptions;
  private dirty = false;
  private stopped = false;
  private debounce: Timer | undefined;
  private retryTimer: Timer | undefined;
  private running: Promise<void> | undefined;
  /** requestNow's run is queued (a microtask). */
  private starting = false;

  constructor(opts: LoopOptions) {
    this.opts = opts;
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  /** Asks for a run soon. */
  request(): void {
    this.dirty = true;
    if (this.stopped || this.debounce || this.running || this.starting) return;
    this.debounce = this.opts.clock.after(this.opts.debounceMs, () => {
      this.debounce = undefined;
      this.start();
    });
  }

  /**
   * Asks for a run without the debounce (a pod-start notice: nothing is gained by waiting for more
   * events, and the pod waits). During a run it follows that run, as any request does.
   */
  requestNow(): void {
    this.dirty = true;
    if (this.stopped || this.running) return;
    this.debounce?.cancel();
    this.debounce = undefined;
    // After the caller's synchronous work (notices read from one socket chunk make one run).
    if (this.starting) return;
    this.starting = true;
    queueMicrotask(() => {
      this.starting = false;
      this.start();
    });
  }

  private start(): void {
    if (this.stopped) return;
    this.running ??= this.runWhileDirty().finally(() => {
      this.running = undefined;
      // Asked for while the last run was finishing.
      if (this.dirty) this.request();
    });
  }

  /** A run after `ms` (the loop's retry delay by default), unless one is armed already. */
  retry(ms = this.opts.retryMs): void {
    if (this.stopped || this.retryTimer) return;
    this.retryTimer = this.opts.clock.after(
      ms,
      () => {
        this.retryTimer = undefined;
        this.request();
      },
      { unref: true },
    );
  }

  /** Stops for good: nothing new starts; the run in progress, if any, finishes (settle() waits for it). */
  stop(): void {
    this.stopped = true;
    this.debounce?.cancel();
    this.debounce = undefined;
    this.retryTimer?.cancel();
    this.retryTimer = undefined;
  }

  /** Waits for the run in progress and the one asked for, if any. */
  async settle(): Promise<void> {
    while (this.running || this.debounce || this.starting) {
      if (this.starting) await Promise.resolve();
      else await (this.running ?? new Promise<void>((r) => this.opts.clock.after(this.opts.debounceMs, r)));
    }
  }

  private async runWhileDirty(): Promise<void> {
    while (this.dirty && !this.stopped) {
      this.dirty = false;
      let ok = false;
      try {
        ok = await this.opts.run();
      } catch {
        ok = false;
      }
      if (!ok) this.retry();
    }
  }
}
