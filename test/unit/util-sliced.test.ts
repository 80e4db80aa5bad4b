// The generator drivers: run at once, or in slices with a pause (breathe) between them.
import { describe, expect, it } from 'vitest';
import { createServer, request } from 'node:http';
import { drainSliced, nextTurn, pauseEvery, runToEnd } from '../../src/util/sliced.ts';

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

describe('nextTurn', () => {
  it('lets one waiter go a turn, in the order they asked', async () => {
    let turn = 0;
    let counting = true;
    const count = () => {
      turn++;
      if (counting) setImmediate(count);
    };
    setImmediate(count);
    const seen: [string, number][] = [];
    await Promise.all(['a', 'b', 'c', 'd'].map((w) => nextTurn().then(() => seen.push([w, turn]))));
    counting = false;
    expect(seen.map(([w]) => w)).toEqual(['a', 'b', 'c', 'd']);
    const turns = seen.map(([, t]) => t);
    expect(new Set(turns).size).toBe(4);
  });

  it('answers a request between the slices of three jobs, not after all of them', async () => {
    const server = createServer((_, res) => res.end('ok'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const busy = (ms: number) => {
      const end = performance.now() + ms;
      while (performance.now() < end);
    };
    let slicesBeforeAnswer = -1;
    let slices = 0;
    const job = async () => {
      for (let i = 0; i < 20; i++) {
        busy(5);
        slices++;
        await nextTurn();
      }
    };
    const asked = new Promise<void>((resolve) => {
      request({ port, host: '127.0.0.1', path: '/' }, (res) => {
        res.resume();
        res.on('end', () => {
          slicesBeforeAnswer = slices;
          resolve();
        });
      }).end();
    });
    await Promise.all([job(), job(), job(), asked]);
    server.close();
    // The request's connection, its data and its answer each wait for a turn of one slice (5 slices
    // here); with setImmediate each turn ran a slice of every job (9).
    expect(slicesBeforeAnswer).toBeGreaterThan(0);
    expect(slicesBeforeAnswer).toBeLessThan(8);
  });
});
