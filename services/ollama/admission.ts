import type { Clock } from '../../src/clock';
import { AppError } from '../../src/errors';

/**
 * Admission control in front of Ollama. Ollama's own wait for a loaded model's slot is
 * unbounded (it never answers 503 for a loaded model), so the gateway bounds it: at most
 * `maxConcurrency` generations in flight, a FIFO queue of at most `maxQueue` waiters, each
 * waiting at most `timeoutMs`.
 */
export interface Admission {
  /**
   * Waits for a slot. Rejects with QUEUE_FULL (429) when the queue is full, QUEUE_TIMEOUT (503)
   * after `timeoutMs`, or the signal's reason when the caller goes away while waiting.
   */
  acquire(signal?: AbortSignal): Promise<Slot>;
  stats(): AdmissionStats;
}

export interface Slot {
  /** Time spent waiting for this slot, ms. */
  readonly waitedMs: number;
  /** Gives the slot back (idempotent). */
  release(): void;
}

export interface AdmissionStats {
  inFlight: number;
  queued: number;
  maxConcurrency: number;
  maxQueue: number;
  /** How long the oldest waiter has been waiting, ms (0 when nobody waits). */
  oldestWaitMs: number;
}

export interface AdmissionOptions {
  maxConcurrency: number;
  maxQueue: number;
  timeoutMs: number;
  /** Time and the queue timeout's timer. */
  clock: Pick<Clock, 'now' | 'after'>;
}

interface Waiter {
  enqueuedAt: number;
  grant: () => void;
}

/** Weight of the newest sample in the moving average of slot hold times. */
const HOLD_EWMA_WEIGHT = 0.2;

export function createAdmission(options: AdmissionOptions): Admission {
  const { maxConcurrency, maxQueue, timeoutMs, clock } = options;
  const { now } = clock;
  const waiters: Waiter[] = [];
  let inFlight = 0;
  let avgHoldMs = 1000;

  /** A Retry-After guess: the time for the queue ahead to drain, 1–60 s. */
  const retryAfterS = (): number =>
    Math.min(
      60,
      Math.max(1, Math.ceil((avgHoldMs * (waiters.length + 1)) / maxConcurrency / 1000)),
    );

  const slot = (waitedMs: number): Slot => {
    const heldFrom = now();
    let released = false;
    return {
      waitedMs,
      release() {
        if (released) return;
        released = true;
        avgHoldMs += HOLD_EWMA_WEIGHT * (now() - heldFrom - avgHoldMs);
        const next = waiters.shift();
        if (next) next.grant();
        else inFlight -= 1;
      },
    };
  };

  return {
    acquire(signal) {
      if (signal?.aborted) return Promise.reject(signal.reason as unknown);
      if (inFlight < maxConcurrency) {
        inFlight += 1;
        return Promise.resolve(slot(0));
      }
      if (waiters.length >= maxQueue) {
        return Promise.reject(
          new AppError('QUEUE_FULL', undefined, {
            retryAfterS: retryAfterS(),
            details: { queued: waiters.length, max_queue: maxQueue },
          }),
        );
      }
      return new Promise<Slot>((resolve, reject) => {
        const enqueuedAt = now();
        const leave = (): void => {
          timer.cancel();
          signal?.removeEventListener('abort', onAbort);
          const index = waiters.indexOf(waiter);
          if (index !== -1) waiters.splice(index, 1);
        };
        const onAbort = (): void => {
          leave();
          reject(signal?.reason as unknown);
        };
        const waiter: Waiter = {
          enqueuedAt,
          // The releasing caller hands its slot over, so inFlight stays the same.
          grant: () => {
            leave();
            resolve(slot(now() - enqueuedAt));
          },
        };
        const timer = clock.after(timeoutMs, () => {
          leave();
          reject(
            new AppError('QUEUE_TIMEOUT', undefined, {
              retryAfterS: retryAfterS(),
              details: { waited_ms: now() - enqueuedAt },
            }),
          );
        });
        signal?.addEventListener('abort', onAbort, { once: true });
        waiters.push(waiter);
      });
    },
    stats() {
      const oldest = waiters[0];
      return {
        inFlight,
        queued: waiters.length,
        maxConcurrency,
        maxQueue,
        oldestWaitMs: oldest ? now() - oldest.enqueuedAt : 0,
      };
    },
  };
}
