import { backoff, type Clock } from '../../src/clock';

export interface RetryOptions {
  /** Retries after the first attempt. */
  retries: number;
  /** First backoff ceiling; doubles per attempt ("full jitter": a random wait below it). */
  baseMs: number;
  shouldRetry: (err: unknown) => boolean;
  /** Aborting it stops the waiting and rejects with its reason. */
  signal: AbortSignal;
  /** Waits between attempts. */
  clock: Pick<Clock, 'sleep'>;
  random?: () => number;
}

/**
 * Runs `attempt` until it succeeds, the error is not retryable, or the retries are spent,
 * waiting {@link backoff} with full jitter between attempts, so replicas that failed together
 * do not retry together.
 */
export async function withRetries<T>(
  attempt: (n: number) => Promise<T>,
  options: RetryOptions,
): Promise<T> {
  const wait = { baseMs: options.baseMs, jitter: 'full', random: options.random } as const;
  for (let n = 0; ; n += 1) {
    try {
      return await attempt(n);
    } catch (err) {
      if (n >= options.retries || !options.shouldRetry(err) || options.signal.aborted) throw err;
      await options.clock.sleep(backoff(n + 1, wait), options.signal);
    }
  }
}
