// The generator drivers: run at once, or in slices with a pause (breathe) between them.
import { describe, expect, it } from 'vitest';
import { drainSliced, pauseEvery, runToEnd } from '../../src/util/sliced.ts';

function* counting(n: number, seen: number[]): Generator<void, string> {
  for (let i = 0; i < n; i++) {
    seen.push(i);
    yield;
  }
  return `done after ${n}`;
}

describe('runToEnd', () => {
  it('runs every step in the caller and returns the value', () => {
    const seen: number[] = [];
    expect(runToEnd(counting(5, seen))).toBe('done after 5');
    expect(seen).toEqual([0, 1, 2, 3, 4]);
  });
});

describe('pauseEvery', () => {
  it('pauses after every n-th item', () => {
    const at = pauseEvery(3);
    expect([0, 1, 2, 3, 4, 5, 6, 7, 8].filter(at)).toEqual([2, 5, 8]);
  });
});

describe('drainSliced', () => {
  it('with a zero slice, pauses at every yield and returns the value', async () => {
    const seen: number[] = [];
    const pausedAfter: number[] = [];
    const timing = { slices: 0 };
    const value = await drainSliced(counting(4, seen), async () => void pausedAfter.push(seen.length), 0, timing);
    expect(value).toBe('done after 4');
    expect(pausedAfter).toEqual([1, 2, 3, 4]);
    expect(timing.slices).toBe(4);
  });

  it('with a long slice, never pauses', async () => {
    let pauses = 0;
    const value = await drainSliced(counting(100, []), async () => void pauses++, 60_000);
    expect(value).toBe('done after 100');
    expect(pauses).toBe(0);
  });

  it('an error thrown by a step rejects', async () => {
    function* failing(): Generator<void, number> {
      yield;
      throw new Error('step failed');
    }
    await expect(drainSliced(failing(), async () => {}, 0)).rejects.toThrow('step failed');
  });
});
