/**
 * The pod's lifecycle state that several parts read: whether the service is draining (readiness
 * turns 503 at once) and which long responses (SSE agent runs, NDJSON pulls and switches) are
 * still open, so a shutdown can let them finish and end the rest with an in-band error instead
 * of cutting their sockets.
 */
import type { ServerResponse } from 'node:http';
import type { Clock, TimerHandle } from '../../src/clock';
import { AppError } from '../../src/errors';
import type { Logger } from '../../src/logger';
import { onResponseClose } from '../../src/response-close';

/**
 * Called once when the shutdown deadline passed while the response was still open. A stream
 * writes its own final event in its framing (an agent run's `run.cancelled`, a `/v1` SSE
 * `data: {"error":…}` event, an NDJSON `{"error":…}` line); an
 * answered agent run stops its run and answers (a promise: the lifecycle waits for it). The
 * lifecycle ends the response afterwards if the writer did not.
 */
export type EndStreamWithError = (error: AppError) => void | Promise<void>;

export interface DrainResult {
  /** Streams that finished on their own during the drain. */
  completed: number;
  /** Streams still open at the deadline, ended with an error event. */
  ended: number;
}

export interface Lifecycle {
  /** True from the first shutdown signal on. */
  isDraining(): boolean;
  /** Marks the service draining; idempotent. */
  beginDrain(): void;
  /**
   * Registers an open stream until its response closes (or the returned function is called).
   * Stream writers call it right after sending their headers.
   */
  trackStream(res: ServerResponse, endWithError: EndStreamWithError): () => void;
  /** Streams open right now. */
  openStreams(): number;
  /**
   * Waits until every tracked stream has closed, at most `timeoutMs`; then ends each one left
   * with a SHUTTING_DOWN error event. Resolves once they are all closed.
   */
  drainStreams(timeoutMs: number): Promise<DrainResult>;
}

export interface LifecycleOptions {
  logger: Logger;
  /** The drain deadline's timer. */
  clock: Pick<Clock, 'after'>;
}

interface Tracked {
  res: ServerResponse;
  endWithError: EndStreamWithError;
}

/** Builds the lifecycle state. Starts nothing; `drainStreams` arms the only timer. */
export function createLifecycle(options: LifecycleOptions): Lifecycle {
  const { logger } = options;
  const streams = new Set<Tracked>();
  const idleWaiters = new Set<() => void>();
  let draining = false;
  let closed = 0;

  const untrack = (entry: Tracked): void => {
    if (!streams.delete(entry)) return;
    closed += 1;
    if (streams.size === 0) for (const wake of [...idleWaiters]) wake();
  };

  const whenIdle = (): Promise<void> =>
    streams.size === 0
      ? Promise.resolve()
      : new Promise((resolve) => {
          const wake = (): void => {
            idleWaiters.delete(wake);
            resolve();
          };
          idleWaiters.add(wake);
        });

  const endWithShutdown = async (entry: Tracked): Promise<void> => {
    const error = new AppError(
      'SHUTTING_DOWN',
      'The service is shutting down; this stream was ended before it finished.',
    );
    try {
      await entry.endWithError(error);
    } catch (err) {
      logger.error('stream writer failed to end its stream', { error: err });
    }
    if (!entry.res.writableEnded) entry.res.end();
    // A client that stopped reading cannot take the last bytes; the socket close that follows
    // still unregisters the stream, and `destroy` makes sure that close happens.
    if (!entry.res.writableFinished) entry.res.once('finish', () => untrack(entry));
    else untrack(entry);
  };

  return {
    isDraining: () => draining,
    beginDrain() {
      if (draining) return;
      draining = true;
      logger.info('draining: readiness now fails', { open_streams: streams.size });
    },
    trackStream(res, endWithError) {
      const entry: Tracked = { res, endWithError };
      streams.add(entry);
      onResponseClose(res, () => untrack(entry));
      return () => untrack(entry);
    },
    openStreams: () => streams.size,
    async drainStreams(timeoutMs) {
      const closedBefore = closed;
      let timer: TimerHandle | undefined;
      const deadline = new Promise<'deadline'>((resolve) => {
        timer = options.clock.after(timeoutMs, () => resolve('deadline'));
      });
      const outcome = await Promise.race([whenIdle().then(() => 'idle' as const), deadline]);
      timer?.cancel();
      if (outcome === 'idle') return { completed: closed - closedBefore, ended: 0 };
      const left = [...streams];
      logger.warn('shutdown deadline reached: ending open streams', { open_streams: left.length });
      for (const entry of left) void endWithShutdown(entry);
      await whenIdle();
      return { completed: closed - closedBefore - left.length, ended: left.length };
    },
  };
}
