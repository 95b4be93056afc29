import type { Clock, TimerHandle } from '../../src/clock';

/** A clock whose timers fire only when the test moves it: deadlines, polls and backoff without sleeping. */
export interface ManualClock extends Clock {
  /** Moves the clock forward and fires every timer that came due, in order. */
  advance(ms: number): void;
  /** Moves the clock to the earliest armed timer and fires it (and any due with it). */
  fireNext(): void;
  /** For each armed timer, the ms until it fires, soonest first. */
  pending(): number[];
}

interface Armed {
  due: number;
  every: number | null;
  fn: () => void;
}

/**
 * `now()` is `start` plus the time advanced, unless the test passes its own `now` (then only
 * the timers are manual).
 */
export function createManualClock(
  options: { start?: number; now?: () => number } = {},
): ManualClock {
  const start = options.start ?? Date.UTC(2026, 0, 1);
  let elapsed = 0;
  let nextId = 0;
  const timers = new Map<number, Armed>();
  const arm = (ms: number, every: number | null, fn: () => void): TimerHandle => {
    nextId += 1;
    const id = nextId;
    timers.set(id, { due: elapsed + ms, every, fn });
    return { cancel: () => void timers.delete(id) };
  };
  const soonest = (): [number, Armed] | undefined => {
    let found: [number, Armed] | undefined;
    for (const entry of timers) if (!found || entry[1].due < found[1].due) found = entry;
    return found;
  };
  const runUntil = (target: number): void => {
    for (;;) {
      const next = soonest();
      if (!next || next[1].due > target) break;
      const [id, timer] = next;
      elapsed = Math.max(elapsed, timer.due);
      if (timer.every === null) timers.delete(id);
      else timer.due += timer.every;
      timer.fn();
    }
    elapsed = Math.max(elapsed, target);
  };
  return {
    now: options.now ?? (() => start + elapsed),
    after: (ms, fn) => arm(ms, null, fn),
    every: (ms, fn) => arm(ms, ms, fn),
    sleep(ms, signal) {
      return new Promise((resolve, reject) => {
        if (signal?.aborted) return reject(signal.reason as unknown);
        const onAbort = (): void => {
          timer.cancel();
          reject(signal?.reason as unknown);
        };
        const timer = arm(ms, null, () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        });
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    },
    advance: (ms) => runUntil(elapsed + ms),
    fireNext() {
      const next = soonest();
      if (next) runUntil(next[1].due);
    },
    pending: () => [...timers.values()].map((t) => t.due - elapsed).sort((a, b) => a - b),
  };
}
