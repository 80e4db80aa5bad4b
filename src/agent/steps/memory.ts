// Housekeeping: memory. The first lists (and large relists, and a policy rebuild) leave garbage several
// times the size of what the agent keeps; it is given back to the system right after them rather than
// whenever the heap next fills up, so the agent's resident memory is that of what it keeps.
import { constants as perfConstants, PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { libcLibrary as libc, loadKoffi } from '../../kernel/libc-koffi.ts';
import type { Logger } from '../../log.ts';
import type { Clock, Timer } from '../clock.ts';

/** A relist of at least this many objects is followed by releaseMemory(). */
export const RELEASE_AFTER_OBJECTS = 1_000;
/** Relists release memory at most this often. */
const RELEASE_EVERY_MS = 60_000;
/** How often the resident size is looked at, once the first policy rebuild is done. */
export const RSS_CHECK_MS = 10_000;
/**
 * Growth over the size right after the last release that counts as garbage left by a burst of
 * passes (churn): both a share and an amount, so that small agents are not collected for a few MiB.
 * Under the 10 % that issue 18 allows a node after churn.
 */
const RSS_GROWTH_SHARE = 0.08;
const RSS_GROWTH_MIB = 8;
/** Releases of what churn left come at most this often (each is a concurrent collection and a trim). */
export const CHURN_RELEASE_EVERY_MS = 30_000;
/**
 * Growth with no change since the last release is released at most this often: the periodic checks'
 * garbage (the whole table read back every 5 minutes, the full compile every 10: at 5,000 pods RSS
 * stayed ~30 MiB up after one until the next change), or V8 growing its young generation back.
 */
export const IDLE_RELEASE_EVERY_MS = 5 * 60_000;
/** A burst of changes is over when none came for this long: what it left is released then. */
export const QUIET_MS = 1_500;
/** Releases at the end of bursts come at most this often. */
export const BURST_RELEASE_EVERY_MS = 5_000;

/**
 * Gives memory that is garbage back to the system. `execution`:
 * - "incremental" (the running agent's way): V8's own memory-reducing collection, started by a
 *   moderate memory-pressure notification (v8::Isolate::MemoryPressureNotification, bound from the
 *   executable's exported V8 API with koffi): incremental and concurrent marking, then one short
 *   finalising pause that compacts and releases the emptied and pooled heap pages, as the last-resort
 *   collection does; then glibc's malloc_trim(3). Measured on a 150 MB heap of which 15 MB live: the
 *   last-resort collection held the event loop 100-340 ms (two or more full compacting collections
 *   in one pause; 179 ms at 5,000 pods, 0.4-1.6 s at 50,000), this one 17-30 ms in its pause, with
 *   the same resident size after (72 MiB against 71). Resolves once that collection is done (or
 *   after INCREMENTAL_WAIT_MS) with the ms of its finalising pause. Where the V8 API cannot be bound
 *   (not this executable), the last-resort collection from a task of its own instead.
 * - "async" / "sync": a full, compacting collection through V8's gc extension (enabled here, not by a
 *   command-line flag), flavor "last-resort" (V8's CollectAllAvailableGarbage, which also releases
 *   the emptied heap pages: with V8's memory reducer off (scripts/build.mjs) a regular full collection
 *   freed the garbage but kept the pages, after a pod churn burst at 5,000 pods 35 MiB used of a
 *   115-195 MiB heap, RSS +60 %), from a task of its own ("async") or within the call ("sync": the
 *   tests, a caller that must have it done); then malloc_trim(3). Resolves with the ms it took.
 */
export async function releaseMemory(execution: 'incremental' | 'sync' | 'async' = 'incremental'): Promise<number> {
  const start = performance.now();
  if (execution === 'incremental') {
    const pause = await reduceIncrementally();
    if (pause !== undefined) {
      await trimCHeap();
      return Math.round(pause);
    }
    execution = 'async';
  }
  try {
    await exposedGc()({ type: 'major', execution, flavor: 'last-resort' });
  } catch {
    // Only an optimisation.
  }
  await trimCHeap();
  return Math.round(performance.now() - start);
}

/** The longest an incremental release is waited for (its marking is paced by V8's tasks). */
export const INCREMENTAL_WAIT_MS = 10_000;
/** v8::MemoryPressureLevel::kModerate: start an incremental, memory-reducing collection. */
const PRESSURE_MODERATE = 1;

type PressureNotify = () => void;
let pressureNotify: PressureNotify | null | undefined;

/** Whether releases can be incremental here (V8's API is bound): the fallback is the last-resort one. */
export function incrementalReleaseAvailable(): boolean {
  return boundPressureNotify() !== null;
}

/** Isolate::MemoryPressureNotification(kModerate) for this thread's isolate, or null where unbound. */
function boundPressureNotify(): PressureNotify | null {
  if (pressureNotify !== undefined) return pressureNotify;
  try {
    // The executable itself (dlopen(NULL)): Node exports V8's API for native addons.
    const self = loadKoffi().load(null as unknown as string);
    const current = self.func('void *_ZN2v87Isolate10GetCurrentEv()') as () => unknown;
    const notify = self.func(
      'void _ZN2v87Isolate26MemoryPressureNotificationENS_19MemoryPressureLevelE(void *isolate, int level)',
    ) as (isolate: unknown, level: number) => void;
    pressureNotify = () => notify(current(), PRESSURE_MODERATE);
  } catch {
    pressureNotify = null;
  }
  return pressureNotify;
}

/**
 * Starts V8's memory-reducing incremental collection and resolves with the pause of the full
 * collection that ends it (a performance "gc" entry of kind major), undefined where it cannot be
 * started. A marking already under way (V8's own, likely while a rebuild allocates) is finished as a
 * regular collection, which keeps the emptied pages: a memory-reducing one also shrinks the young
 * generation to its least, so while that did not shrink, it is asked once more.
 */
async function reduceIncrementally(): Promise<number | undefined> {
  const notify = boundPressureNotify();
  if (!notify) return undefined;
  let pause = 0;
  for (let attempt = 0; attempt < 2; attempt++) {
    const youngBefore = youngGenerationBytes();
    pause += await majorCollectionAfter(notify);
    if (youngBefore <= SMALL_YOUNG_BYTES || youngGenerationBytes() < youngBefore) break;
  }
  return pause;
}

/** A young generation this small is at its least already: whether it shrank tells nothing. */
const SMALL_YOUNG_BYTES = 4 * 2 ** 20;

function youngGenerationBytes(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
}

/** Runs `start` (in a task of its own) and resolves with the pause of the next full collection (0 after INCREMENTAL_WAIT_MS). */
function majorCollectionAfter(start: () => void): Promise<number> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (ms: number) => {
      if (done) return;
      done = true;
      observer.disconnect();
      clearTimeout(timer);
      resolve(ms);
    };
    const observer = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        const kind = (e as { detail?: { kind?: number } }).detail?.kind;
        if (kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) finish(e.duration);
      }
    });
    observer.observe({ entryTypes: ['gc'] });
    const timer = setTimeout(() => finish(0), INCREMENTAL_WAIT_MS);
    timer.unref();
    // Starting the marking scans the roots (tens of ms at 50,000 pods): a task of its own, not the
    // tail of the caller's.
    setImmediate(() => {
      try {
        start();
      } catch {
        finish(0);
      }
    });
  });
}

type Gc = (opts: { type: string; execution: string; flavor: string }) => Promise<void> | undefined;

/** V8's gc extension, enabled here rather than by a command-line flag. */
function exposedGc(): Gc {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as Gc;
}

/**
 * glibc's malloc_trim(0) on one of koffi's worker threads (it locks each arena itself): it walks the
 * whole C heap, 27 ms at 5,000 pods and up to 180 ms at 50,000 (load 6) when it ran on the event loop.
 */
function trimCHeap(): Promise<void> {
  return new Promise((resolve) => {
    try {
      mallocTrim ??= libc().func('int malloc_trim(size_t pad)') as unknown as MallocTrim;
      mallocTrim.async(0, () => resolve());
    } catch {
      // Not glibc: nothing to trim.
      resolve();
    }
  });
}

type MallocTrim = { async: (pad: number, done: (err: unknown, freed: unknown) => void) => void };
let mallocTrim: MallocTrim | undefined;

/** mallopt(3) parameters (glibc <malloc.h>). */
const M_TRIM_THRESHOLD = -1;
const M_MMAP_THRESHOLD = -3;
const M_ARENA_MAX = -8;

/**
 * Keeps glibc's C heap from holding what it freed, before the agent allocates much: at most two
 * arenas (glibc makes one per thread that mallocs, up to 8 per core, and V8's compiler and GC threads
 * each fill one with pages that stay resident after free), and fixed mmap and trim thresholds
 * (glibc otherwise raises both each time a large block is freed, so that later large blocks come
 * from the heap and stay). Not glibc: nothing to do. STRAND_MALLOC_TUNING=0 leaves glibc's defaults.
 */
export function tuneMalloc(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.STRAND_MALLOC_TUNING === '0') return false;
  try {
    const mallopt = libc().func('int mallopt(int param, int value)') as (p: number, v: number) => number;
    mallopt(M_ARENA_MAX, 2);
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    mallopt(M_TRIM_THRESHOLD, 1024 * 1024);
    return true;
  } catch {
    return false;
  }
}

/** The process's memory in MiB, for the log lines that follow a release. */
export function memoryMiB(): Record<'rss' | 'heapUsed' | 'heapTotal' | 'external', number> {
  const m = process.memoryUsage();
  const mib = (n: number) => Math.round((n / 2 ** 20) * 10) / 10;
  return { rss: mib(m.rss), heapUsed: mib(m.heapUsed), heapTotal: mib(m.heapTotal), external: mib(m.external) };
}

export class MemoryKeeper {
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly rss: () => number;
  private timer: Timer | undefined;
  private watchTimer: Timer | undefined;
  private lastRelease = 0;
  /** Resident bytes right after the last release; undefined until the first rebuild. */
  private baseline: number | undefined;
  /** The previous check's resident bytes: a release waits for the size to stop growing. */
  private previous = 0;
  private stopped = false;
  private releasing = false;
  /** When the last change (an informer event) came; the quiet timer looks whether a burst ended. */
  private lastActivity = 0;
  private quietTimer: Timer | undefined;
  /** A change (activity) came since the last release started. */
  private changedSinceRelease = false;
  /** When a large pass's garbage was last released (largePass). */
  private lastLargePass = -Infinity;
  private readonly releaseGently: () => Promise<number>;
  /** The release after a rebuild or a relist (the same call: both from a task of their own). */
  private readonly releaseNow: () => Promise<number>;

  constructor(
    clock: Clock,
    log: Logger,
    rss: () => number = () => process.memoryUsage.rss(),
    gently: () => Promise<number> = releaseMemory,
    now: () => Promise<number> = releaseMemory,
  ) {
    this.releaseNow = now;
    this.clock = clock;
    this.log = log;
    this.rss = rss;
    this.releaseGently = gently;
    // V8's API is bound now, at start, rather than in the first release's task (a few ms of koffi).
    if (now === releaseMemory || gently === releaseMemory) incrementalReleaseAvailable();
  }

  /** After a large relist, its garbage goes as the first list's did (at most once a minute). */
  relisted(objects: number): void {
    if (objects < RELEASE_AFTER_OBJECTS || this.timer || this.clock.now() - this.lastRelease < RELEASE_EVERY_MS) return;
    this.timer = this.clock.after(1_000, () => {
      this.timer = undefined;
      this.release('released the memory of a relist', 'debug');
    });
  }

  /**
   * A change came (an informer event): once none has come for QUIET_MS the burst is over, and what it
   * left is released then rather than at the next RSS_CHECK_MS look (issue 18: RSS back within 10 %
   * of what it was before churn, a few seconds after it). One timer at a time, re-armed by it.
   */
  activity(): void {
    this.lastActivity = this.clock.now();
    this.changedSinceRelease = true;
    if (this.quietTimer || this.stopped || this.baseline === undefined) return;
    this.armQuiet(QUIET_MS);
  }

  private armQuiet(ms: number): void {
    this.quietTimer = this.clock.after(
      ms,
      () => {
        this.quietTimer = undefined;
        const quietFor = this.clock.now() - this.lastActivity;
        const sinceRelease = this.clock.now() - this.lastRelease;
        if (quietFor < QUIET_MS) this.armQuiet(QUIET_MS - quietFor);
        // A burst that ended soon after the last release (at start, the peers set up after the first
        // rebuild's release) is released once it may be, not at the next watch's look (30 s).
        else if (sinceRelease < BURST_RELEASE_EVERY_MS) this.armQuiet(BURST_RELEASE_EVERY_MS - sinceRelease);
        else this.releaseIfGrown(BURST_RELEASE_EVERY_MS, 'released the memory that a burst of changes left');
      },
      { unref: true },
    );
  }

  /**
   * A pass that set up or removed thousands of kernel entries (a node joining a large cluster: at
   * 5,000 peers 15,000 routes, neighbours and FDB entries) left tens of MiB of garbage: it goes now,
   * from a task of its own, rather than as a burst's (BURST_RELEASE_EVERY_MS after the start's first
   * release: RSS stood ~40 MiB up for those seconds, and the release fell in the idle agent's time).
   * At most once every RELEASE_EVERY_MS; more often, it counts as activity.
   */
  largePass(): void {
    if (this.stopped) return;
    if (this.baseline === undefined || this.clock.now() - this.lastLargePass < RELEASE_EVERY_MS) {
      this.activity();
      return;
    }
    this.lastLargePass = this.clock.now();
    this.release('released the memory of a large pass over the routes to other nodes', 'info');
  }

  /** A policy rebuild compiled and rendered every policy: its garbage goes now. */
  rebuilt(): void {
    if (this.stopped) return;
    this.release('policy rules rebuilt; released the memory of compiling them', 'info');
    this.watch();
  }

  /**
   * Garbage that churn leaves: passes allocate faster than they keep, V8 grows its heap and the C
   * heap keeps its pages, and an agent that then goes quiet never collects them (V8 collects when it
   * allocates, and a quiet agent hardly does). Measured at 5,000 pods: RSS 137 → 175 MiB after 20 s
   * of 50 label changes a second, back to ~140 after a forced collection and malloc_trim. So the
   * resident size is checked every RSS_CHECK_MS (one read of /proc/self/statm); once it is well above
   * the size after the last release and has stopped growing (the burst is over), the garbage goes,
   * at most every CHURN_RELEASE_EVERY_MS. Data that really grew raises the baseline with it, so it is not chased.
   */
  private watch(): void {
    if (this.watchTimer || this.stopped) return;
    this.watchTimer = this.clock.after(
      RSS_CHECK_MS,
      () => {
        this.watchTimer = undefined;
        this.check();
        this.watch();
      },
      { unref: true },
    );
  }

  private check(): void {
    const rss = this.rss();
    const previous = this.previous;
    this.previous = rss;
    // Still growing: the burst goes on (the quiet timer sees its end when changes stop altogether).
    if (rss > previous) return;
    // No change came since the last release: what the size grew by is the periodic checks' garbage
    // or V8's young generation growing back after the release, left to V8 for IDLE_RELEASE_EVERY_MS.
    // Released every 30 s, it was a last-resort collection of the whole heap every 30 s on an idle
    // agent: at 50,000 pods 0.4-0.8 s of CPU each, most of its idle cost (issue 18).
    if (!this.changedSinceRelease)
      this.releaseIfGrown(IDLE_RELEASE_EVERY_MS, 'released the memory that the periodic checks left');
    else this.releaseIfGrown(CHURN_RELEASE_EVERY_MS, 'released the memory that churn left');
  }

  /** Releases gently when the resident size grew well past the last release's, at most every `everyMs`. */
  private releaseIfGrown(everyMs: number, message: string): void {
    if (this.baseline === undefined || this.releasing || this.stopped || this.clock.now() - this.lastRelease < everyMs)
      return;
    const rss = this.rss();
    const grown = rss - this.baseline;
    if (grown < RSS_GROWTH_MIB * 2 ** 20 || grown < this.baseline * RSS_GROWTH_SHARE) return;
    const before = memoryMiB();
    this.releasing = true;
    this.lastRelease = this.clock.now();
    this.changedSinceRelease = false;
    void this.releaseGently().then((gcMs) => {
      this.releasing = false;
      const changed = this.changedSinceRelease;
      this.setBaseline();
      this.changedSinceRelease = changed;
      this.log.info({ beforeMiB: before, gcMs, memoryMiB: memoryMiB() }, message);
    });
  }

  /** Releases from a task of its own (not inside the caller's pass); the baseline is taken now and
   * again once the release is done. */
  private release(message: string, level: 'info' | 'debug'): void {
    this.setBaseline();
    void this.releaseNow().then((gcMs) => {
      // What the release left, unless the size grew meanwhile (the baseline stays the lower one).
      const rss = this.rss();
      if (this.baseline === undefined || rss < this.baseline) {
        this.baseline = rss;
        this.previous = rss;
      }
      this.log[level]({ gcMs, incremental: incrementalReleaseAvailable(), memoryMiB: memoryMiB() }, message);
    });
  }

  private setBaseline(): void {
    this.changedSinceRelease = false;
    this.lastRelease = this.clock.now();
    this.baseline = this.rss();
    this.previous = this.baseline;
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = undefined;
    this.watchTimer?.cancel();
    this.watchTimer = undefined;
    this.quietTimer?.cancel();
    this.quietTimer = undefined;
  }
}
