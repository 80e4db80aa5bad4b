// `strand agent`'s stop deadline (src/cli/commands/agent.ts): a stop() that does not settle in time,
// a pass still running at 50,000 pods, no longer keeps the process past the pod's grace period.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { STOP_DEADLINE_MS, stopWithin } from '../../src/cli/commands/agent.ts';

describe('stopWithin', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('is true when stop settles before the deadline, and false when it is still pending at it', async () => {
    vi.useFakeTimers();
    expect(await stopWithin(Promise.resolve(), 1_000)).toBe(true);
    const never = new Promise<void>(() => {});
    const result = stopWithin(never, 1_000);
    await vi.advanceTimersByTimeAsync(999);
    let settled: boolean | undefined;
    void result.then((v) => {
      settled = v;
    });
    await Promise.resolve();
    expect(settled).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(await result).toBe(false);
  });

  it('counts a stop that fails as settled, and leaves no timer behind', async () => {
    vi.useFakeTimers();
    expect(await stopWithin(Promise.reject(new Error('closing failed')), 1_000)).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('exits well inside the default 30 s termination grace period', () => {
    expect(STOP_DEADLINE_MS).toBeLessThanOrEqual(15_000);
  });
});
