// Housekeeping: memory. The first lists (and large relists, and a policy rebuild) leave garbage several
// times the size of what the agent keeps; it is given back to the system right after them rather than
// whenever the heap next fills up, so the agent's resident memory is that of what it keeps.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { loadKoffi } from '../../kernel/libc.ts';
import type { Logger } from '../../log.ts';
import type { Clock, Timer } from '../clock.ts';

/** A relist of at least this many objects is followed by releaseMemory(). */
export const RELEASE_AFTER_OBJECTS = 1_000;
/** Relists release memory at most this often. */
const RELEASE_EVERY_MS = 60_000;

/**
 * Gives memory that is garbage back to the system: a full, compacting collection through V8's gc
 * extension (enabled here, not by a command-line flag; flavor "last-resort" is V8's
 * CollectAllAvailableGarbage, which also releases the emptied heap pages), then glibc's
 * malloc_trim(3) for what V8's compilers and the HTTP client freed on the C heap. Returns the ms it
 * took.
 */
export function releaseMemory(): number {
  const start = performance.now();
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as (opts?: { type: string; execution: string; flavor: string }) => void;
    gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  } catch {
    // Only an optimisation.
  }
  try {
    mallocTrim ??= loadKoffi().load('libc.so.6').func('int malloc_trim(size_t pad)') as (pad: number) => number;
    mallocTrim(0);
  } catch {
    // Not glibc: nothing to trim.
  }
  return Math.round(performance.now() - start);
}

let mallocTrim: ((pad: number) => number) | undefined;

/** The process's memory in MiB, for the log lines that follow a release. */
export function memoryMiB(): Record<'rss' | 'heapUsed' | 'heapTotal' | 'external', number> {
  const m = process.memoryUsage();
  const mib = (n: number) => Math.round((n / 2 ** 20) * 10) / 10;
  return { rss: mib(m.rss), heapUsed: mib(m.heapUsed), heapTotal: mib(m.heapTotal), external: mib(m.external) };
}

export class MemoryKeeper {
  private readonly clock: Clock;
  private readonly log: Logger;
  private timer: Timer | undefined;
  private lastRelease = 0;

  constructor(clock: Clock, log: Logger) {
    this.clock = clock;
    this.log = log;
  }

  /** After a large relist, its garbage goes as the first list's did (at most once a minute). */
  relisted(objects: number): void {
    if (objects < RELEASE_AFTER_OBJECTS || this.timer || this.clock.now() - this.lastRelease < RELEASE_EVERY_MS) return;
    this.timer = this.clock.after(1_000, () => {
      this.timer = undefined;
      this.lastRelease = this.clock.now();
      this.log.debug({ gcMs: releaseMemory() }, 'released the memory of a relist');
    });
  }

  /** A policy rebuild compiled and rendered every policy: its garbage goes now. */
  rebuilt(): void {
    const gcMs = releaseMemory();
    this.log.info({ gcMs, memoryMiB: memoryMiB() }, 'policy rules rebuilt; released the memory of compiling them');
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }
}
