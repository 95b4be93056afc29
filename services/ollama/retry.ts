export interface RetryOptions {
  /** Retries after the first attempt. */
  retries: number;
  /** First backoff ceiling; doubles per attempt ("full jitter": a random wait below it). */
  baseMs: number;
  shouldRetry: (err: unknown) => boolean;
  /** Aborting it stops the waiting and rejects with its reason. */
  signal: AbortSignal;
  random?: () => number;
}

/**
 * Runs `attempt` until it succeeds, the error is not retryable, or the retries are spent.
 * Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And
 * Jitter"), so replicas that failed together do not retry together.
 */
export async function withRetries<T>(
  attempt: (n: number) => Promise<T>,
  options: RetryOptions,
): Promise<T> {
  const random = options.random ?? Math.random;
  for (let n = 0; ; n += 1) {
    try {
      return await attempt(n);
    } catch (err) {
      if (n >= options.retries || !options.shouldRetry(err) || options.signal.aborted) throw err;
      await backoff(random() * options.baseMs * 2 ** n, options.signal);
    }
  }
}

function backoff(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason as unknown);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
