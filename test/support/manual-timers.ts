import type { TimerHandle, Timers } from '../../services/agents/timers';

/** Timers that fire only when a test calls `advance(ms)`: deadlines and heartbeats without sleeping. */
export interface ManualTimers extends Timers {
  /** Moves the virtual clock forward and fires every timer that came due, in order. */
  advance(ms: number): void;
  /** Timers armed and not yet fired or cancelled. */
  pending(): number;
}

export function createManualTimers(): ManualTimers {
  let clock = 0;
  let nextId = 0;
  const timers = new Map<number, { due: number; every: number | null; fn: () => void }>();
  const arm = (ms: number, every: number | null, fn: () => void): TimerHandle => {
    nextId += 1;
    const id = nextId;
    timers.set(id, { due: clock + ms, every, fn });
    return { cancel: () => void timers.delete(id) };
  };
  return {
    after: (ms, fn) => arm(ms, null, fn),
    every: (ms, fn) => arm(ms, ms, fn),
    advance(ms) {
      const target = clock + ms;
      for (;;) {
        let nextKey: number | undefined;
        let next: { due: number; every: number | null; fn: () => void } | undefined;
        for (const [key, t] of timers) {
          if (t.due <= target && (!next || t.due < next.due)) {
            next = t;
            nextKey = key;
          }
        }
        if (!next || nextKey === undefined) break;
        clock = next.due;
        if (next.every === null) timers.delete(nextKey);
        else next.due += next.every;
        next.fn();
      }
      clock = target;
    },
    pending: () => timers.size,
  };
}
