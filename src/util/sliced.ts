// Long computations written as generators that yield at points where they may pause: driven to the
// end at once (runToEnd), or in slices with the event loop given back between them (drainSliced),
// so that one pass over a large cluster never holds the agent's /healthz for its whole length.

/**
 * Resolves in a later turn of the event loop, one waiter a turn, in the order they asked. What gives
 * the loop back between slices awaits this rather than setImmediate: Node runs in one go every
 * immediate queued when its check phase begins, so three sliced jobs at once (a list's pages, the
 * routes to other nodes, the policy compile) made one turn of three slices, and a /healthz request
 * waited for all of them (a turn of 80 ms at 50,000 pods, 2026-12-07). One slice a turn: between two
 * slices the loop polls, and a request waits for one slice at most.
 */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => {
    waiting.push(resolve);
    if (!turnArmed) {
      turnArmed = true;
      setImmediate(takeTurn);
    }
  });
}

const waiting: (() => void)[] = [];
let turnArmed = false;

function takeTurn(): void {
  const next = waiting.shift();
  if (waiting.length > 0) setImmediate(takeTurn);
  else turnArmed = false;
  next?.();
}

/** Whether a generator over a list pauses after item i: every n items. */
export function pauseEvery(n: number): (i: number) => boolean {
  return (i) => i % n === n - 1;
}

/** Runs `steps` to its end in the caller's task and returns its value. */
export function runToEnd<T>(steps: Generator<unknown, T>): T {
  let step = steps.next();
  while (!step.done) step = steps.next();
  return step.value;
}

/** Runs `steps` to its end, awaiting `breathe` each time a slice of `sliceMs` has passed (counted
 * in timing.slices). The clock is read only at the generator's yields. */
export async function drainSliced<T>(
  steps: Generator<unknown, T>,
  breathe: () => Promise<void>,
  sliceMs: number,
  timing: { slices: number } = { slices: 0 },
): Promise<T> {
  let slice = performance.now();
  let step = steps.next();
  while (!step.done) {
    if (performance.now() - slice >= sliceMs) {
      await breathe();
      timing.slices++;
      slice = performance.now();
    }
    step = steps.next();
  }
  return step.value;
}
