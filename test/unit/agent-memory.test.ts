// The agent's memory keeper (src/agent/steps/memory.ts): garbage that churn leaves is released once
// the resident size is well above its size after the last release and has stopped growing; not
// during a burst, not more often than CHURN_RELEASE_EVERY_MS, and not for data that grew for good.
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { Clock, Timer } from '../../src/agent/clock.ts';
import {
  BURST_RELEASE_EVERY_MS,
  CHURN_RELEASE_EVERY_MS,
  IDLE_RELEASE_EVERY_MS,
  incrementalReleaseAvailable,
  MemoryKeeper,
  QUIET_MS,
  RSS_CHECK_MS,
  releaseMemory,
  tuneMalloc,
} from '../../src/agent/steps/memory.ts';

class ManualClock implements Clock {
  t = 1_000_000;
  private timers: { at: number; fn: () => void; live: boolean }[] = [];
  now(): number {
    return this.t;
  }
  after(ms: number, fn: () => void): Timer {
    const timer = { at: this.t + ms, fn, live: true };
    this.timers.push(timer);
    return { cancel: () => (timer.live = false) };
  }
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const next = this.timers.filter((x) => x.live && x.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!next) break;
      this.t = next.at;
      next.live = false;
      next.fn();
    }
    this.t = end;
  }
  get live(): number {
    return this.timers.filter((x) => x.live).length;
  }
}

const MiB = 2 ** 20;
/** Lets the keeper's gentle release (a promise) finish. */
const settle = () => new Promise((r) => setImmediate(r));

function keeper() {
  const clock = new ManualClock();
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  let rss = 140 * MiB;
  let gentle = 0;
  let now = 0;
  const k = new MemoryKeeper(
    clock,
    log,
    () => rss,
    async () => {
      gentle++;
      return 1;
    },
    async () => {
      now++;
      return 1;
    },
  );
  const churnReleases = () => {
    const logged = lines.filter(
      (l) =>
        l.msg === 'released the memory that churn left' ||
        l.msg === 'released the memory that a burst of changes left' ||
        l.msg === 'released the memory that the periodic checks left',
    ).length;
    expect(logged).toBe(gentle);
    return logged;
  };
  return { clock, k, lines, setRss: (mib: number) => (rss = mib * MiB), churnReleases, releasesNow: () => now };
}

describe('MemoryKeeper', () => {
  it('releases what churn left once the size stops growing, at most every CHURN_RELEASE_EVERY_MS', async () => {
    const { clock, k, setRss, churnReleases } = keeper();
    k.rebuilt(); // baseline 140 MiB, watching from now
    clock.advance(60_000);
    k.activity(); // changes came (a burst short of its quiet end is the watch's to find)
    setRss(150); // +10 MiB: not enough
    clock.advance(RSS_CHECK_MS);
    await settle();
    expect(churnReleases()).toBe(0);
    setRss(200); // a burst: still growing since the last check
    clock.advance(RSS_CHECK_MS);
    await settle();
    expect(churnReleases()).toBe(0);
    setRss(230);
    clock.advance(RSS_CHECK_MS);
    await settle();
    expect(churnReleases()).toBe(0);
    clock.advance(RSS_CHECK_MS); // 230 again: the burst is over
    await settle();
    expect(churnReleases()).toBe(1);
    // The new baseline is what the release left (230 here: the fake's size does not drop); growing
    // again while the churn goes on (a change every second: no quiet end) waits CHURN_RELEASE_EVERY_MS.
    setRss(300);
    const churnFor = (ms: number) => {
      for (let t = 0; t < ms; t += 1000) {
        k.activity();
        clock.advance(1000);
      }
    };
    churnFor(2 * RSS_CHECK_MS);
    await settle();
    expect(churnReleases()).toBe(1);
    churnFor(CHURN_RELEASE_EVERY_MS);
    await settle();
    expect(churnReleases()).toBe(2);
  });

  it('releases what a burst of changes left once none came for QUIET_MS, at most every BURST_RELEASE_EVERY_MS', async () => {
    const { clock, k, setRss, churnReleases } = keeper();
    k.rebuilt(); // baseline 140 MiB
    clock.advance(CHURN_RELEASE_EVERY_MS);
    // A burst: a change every 100 ms for 3 s while the size grows.
    for (let i = 0; i < 30; i++) {
      setRss(140 + i);
      k.activity();
      clock.advance(100);
    }
    await settle();
    expect(churnReleases()).toBe(0);
    clock.advance(QUIET_MS);
    await settle();
    expect(churnReleases()).toBe(1);
    // Another burst right after: it is released once BURST_RELEASE_EVERY_MS went by since the last
    // release, without another change (at start: the peers set up after the first rebuild's release).
    setRss(200);
    k.activity();
    clock.advance(QUIET_MS);
    await settle();
    expect(churnReleases()).toBe(1);
    clock.advance(BURST_RELEASE_EVERY_MS - QUIET_MS);
    await settle();
    expect(churnReleases()).toBe(2);
    // A burst that left little (under RSS_GROWTH_MIB) is not collected; no timer stays armed.
    clock.advance(BURST_RELEASE_EVERY_MS);
    k.activity();
    clock.advance(QUIET_MS);
    await settle();
    expect(churnReleases()).toBe(2);
    k.stop();
    expect(clock.live).toBe(0);
  });

  it('follows data that grew for good instead of collecting every minute', async () => {
    const { clock, k, setRss, churnReleases } = keeper();
    k.rebuilt();
    clock.advance(1);
    k.activity();
    setRss(250); // e.g. many more pods: a release does not bring it down
    clock.advance(90_000);
    await settle();
    expect(churnReleases()).toBe(1);
    clock.advance(10 * 60_000);
    await settle();
    expect(churnReleases()).toBe(1);
  });

  it('releases what an idle agent grew by (the periodic checks) only every IDLE_RELEASE_EVERY_MS', async () => {
    const { clock, k, setRss, churnReleases } = keeper();
    k.rebuilt();
    setRss(250); // grown, stopped growing, but no change came: the periodic checks' garbage
    clock.advance(IDLE_RELEASE_EVERY_MS - RSS_CHECK_MS);
    await settle();
    expect(churnReleases()).toBe(0);
    clock.advance(RSS_CHECK_MS);
    await settle();
    expect(churnReleases()).toBe(1);
    // The fake's size does not drop: the baseline is 250 now. Grown again, still without a change:
    // not before IDLE_RELEASE_EVERY_MS more, even though CHURN_RELEASE_EVERY_MS went by.
    setRss(300);
    clock.advance(CHURN_RELEASE_EVERY_MS + 2 * RSS_CHECK_MS);
    await settle();
    expect(churnReleases()).toBe(1);
    k.activity(); // a change: now the growth is churn's, released on the churn's terms
    clock.advance(QUIET_MS + RSS_CHECK_MS * 2);
    await settle();
    expect(churnReleases()).toBe(2);
  });

  it('releases a large pass at once, at most once a minute; more often it is a burst', async () => {
    const { clock, k, lines, setRss, churnReleases, releasesNow } = keeper();
    k.largePass(); // before the first rebuild: nothing to measure against yet, no release
    await settle();
    expect(releasesNow()).toBe(0);
    k.rebuilt();
    await settle();
    expect(releasesNow()).toBe(1);
    // The peers set up right after the first rebuild's release: released now, not BURST_RELEASE_EVERY_MS later.
    clock.advance(800);
    setRss(200);
    k.largePass();
    await settle();
    expect(releasesNow()).toBe(2);
    expect(
      lines.filter((l) => l.msg === 'released the memory of a large pass over the routes to other nodes'),
    ).toHaveLength(1);
    expect(churnReleases()).toBe(0);
    // Another within the minute: a burst, released on a burst's terms.
    clock.advance(10_000);
    setRss(260);
    k.largePass();
    await settle();
    expect(releasesNow()).toBe(2);
    clock.advance(QUIET_MS);
    await settle();
    expect(churnReleases()).toBe(1);
    // A minute after the last one: at once again.
    clock.advance(60_000);
    k.largePass();
    await settle();
    expect(releasesNow()).toBe(3);
    k.stop();
  });

  it('does not watch before the first rebuild, and stops watching on stop()', async () => {
    const { clock, k, setRss, churnReleases } = keeper();
    setRss(400);
    clock.advance(5 * 60_000);
    await settle();
    expect(churnReleases()).toBe(0);
    expect(clock.live).toBe(0);
    k.rebuilt();
    expect(clock.live).toBe(1);
    k.stop();
    expect(clock.live).toBe(0);
    k.rebuilt();
    expect(clock.live).toBe(0);
  });
});

describe('the releases themselves', () => {
  it('collects concurrently and trims the C heap, resolving with the ms it took', async () => {
    const ms = await releaseMemory();
    expect(Number.isInteger(ms) && ms >= 0).toBe(true);
    const sync = await releaseMemory('sync');
    expect(Number.isInteger(sync) && sync >= 0).toBe(true);
    expect(Number.isInteger(ms) && ms >= 0).toBe(true);
  });

  it("frees garbage through V8's incremental, memory-reducing collection (bound from the running executable)", async () => {
    expect(incrementalReleaseAvailable()).toBe(true);
    let junk: { i: number; s: string }[] | undefined = Array.from({ length: 400_000 }, (_, i) => ({ i, s: `x${i}` }));
    const before = process.memoryUsage().heapUsed;
    expect(junk.length).toBe(400_000);
    junk = undefined;
    const ms = await releaseMemory('incremental');
    expect(Number.isInteger(ms) && ms >= 0).toBe(true);
    expect(junk).toBeUndefined();
    expect(process.memoryUsage().heapUsed).toBeLessThan(before - 10 * MiB);
  });

  it("tunes glibc's malloc unless STRAND_MALLOC_TUNING=0", () => {
    expect(tuneMalloc({ STRAND_MALLOC_TUNING: '0' })).toBe(false);
    expect(tuneMalloc({})).toBe(true);
  });
});
