/**
 * The simulator's time source. Every delay it models (load time, chunk latency, hangs, fault
 * windows, a tool call's silence, keep-alive expiry) is armed on this clock, so a test that
 * passes a manual clock drives a 60 s load with `clock.advance(60_000)` instead of sleeping.
 */
export interface SimClock {
  now(): number;
  /** Run `fn` once `ms` have passed on this clock; returns a cancel function. */
  after(ms: number, fn: () => void): () => void;
}

/** A clock whose time moves only when the test says so. */
export interface ManualSimClock extends SimClock {
  /** Move time forward by `ms`, firing every timer that comes due, in due order. */
  advance(ms: number): void;
  /** Timers armed and not yet fired or cancelled. */
  pending(): number;
}

/** Wall-clock time and unref'd Node timers: the default, as the simulator always behaved. */
export function realClock(now: () => number = Date.now): SimClock {
  return {
    now,
    after(ms, fn) {
      const timer = setTimeout(fn, Math.min(ms, 2 ** 31 - 1));
      timer.unref();
      return () => clearTimeout(timer);
    },
  };
}

export function createManualClock(start = Date.UTC(2026, 0, 5, 10, 0, 0)): ManualSimClock {
  let time = start;
  let nextId = 0;
  const timers = new Map<number, { due: number; fn: () => void }>();
  return {
    now: () => time,
    after(ms, fn) {
      nextId += 1;
      const id = nextId;
      timers.set(id, { due: time + Math.max(0, ms), fn });
      return () => void timers.delete(id);
    },
    advance(ms) {
      const target = time + ms;
      for (;;) {
        let next: [number, { due: number; fn: () => void }] | undefined;
        for (const entry of timers) {
          if (entry[1].due <= target && (!next || entry[1].due < next[1].due)) next = entry;
        }
        if (!next) break;
        timers.delete(next[0]);
        time = next[1].due;
        next[1].fn();
      }
      time = target;
    },
    pending: () => timers.size,
  };
}

/**
 * Resolves true once `ms` have passed on `clock`, or false at once when `signal` aborts.
 * A zero or negative delay resolves true without arming a timer.
 */
export function sleepOn(clock: SimClock, ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  if (ms <= 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    const onAbort = () => {
      cancel();
      resolve(false);
    };
    const cancel = clock.after(ms, () => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    });
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
