/** A timer that can be stopped before it fires. */
export interface TimerHandle {
  cancel(): void;
}

/**
 * Time, the one way every part of the service reads it and waits on it. Injected everywhere,
 * so a test drives every deadline, poll and backoff with a manual clock instead of sleeping.
 */
export interface Clock {
  /** Wall-clock time, ms since the epoch. */
  now(): number;
  /** Calls `fn` once after `ms`. Unref'd: a pending timer never keeps the process up. */
  after(ms: number, fn: () => void): TimerHandle;
  /** Calls `fn` every `ms` until cancelled (unref'd too). */
  every(ms: number, fn: () => void): TimerHandle;
  /**
   * Resolves after `ms`; rejects with the signal's reason as soon as `signal` aborts (at once
   * when it already has). Someone awaits it, so it keeps the process up like any pending work.
   */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** The real clock: Date.now and Node's timers. */
export function createSystemClock(): Clock {
  return {
    now: Date.now,
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
    sleep(ms, signal) {
      return new Promise((resolve, reject) => {
        if (signal?.aborted) {
          reject(signal.reason as unknown);
          return;
        }
        const onAbort = (): void => {
          clearTimeout(timer);
          reject(signal?.reason as unknown);
        };
        const timer = setTimeout(() => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        }, ms);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    },
  };
}

export interface BackoffOptions {
  /** The ceiling of the first retry's wait, ms; it doubles with each attempt. */
  baseMs: number;
  /** The largest ceiling, ms (default: none). */
  maxMs?: number;
  /**
   * How much of the ceiling is random: `full` waits anywhere below it, `equal` waits at least
   * half of it (AWS Architecture Blog, "Exponential Backoff And Jitter"). Jitter keeps replicas
   * that failed together from retrying together.
   */
  jitter: 'full' | 'equal';
  /** Source of randomness in [0, 1) (default Math.random). */
  random?: () => number;
}

/**
 * The wait before retry number `attempt` (1 for the first retry): exponential backoff with
 * jitter, capped at `maxMs`. Every retry loop of the service takes its waits from here.
 */
export function backoff(attempt: number, options: BackoffOptions): number {
  const random = options.random ?? Math.random;
  const ceiling = Math.min(
    options.maxMs ?? Infinity,
    options.baseMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30),
  );
  const floor = options.jitter === 'equal' ? ceiling / 2 : 0;
  return Math.round(floor + random() * (ceiling - floor));
}
