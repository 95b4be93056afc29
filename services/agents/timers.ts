/**
 * The timers the agents runtime uses (run and tool deadlines, SSE heartbeats). Injected so a
 * test can fire them by hand instead of sleeping.
 */
export interface TimerHandle {
  cancel(): void;
}

export interface Timers {
  /** Calls `fn` once after `ms`. The handle is unref'd: a pending timer never keeps the process up. */
  after(ms: number, fn: () => void): TimerHandle;
  /** Calls `fn` every `ms` until cancelled (unref'd too). */
  every(ms: number, fn: () => void): TimerHandle;
}

export function createRealTimers(): Timers {
  return {
    after(ms, fn) {
      const t = setTimeout(fn, ms);
      t.unref();
      return { cancel: () => clearTimeout(t) };
    },
    every(ms, fn) {
      const t = setInterval(fn, ms);
      t.unref();
      return { cancel: () => clearInterval(t) };
    },
  };
}
