import type { Response } from 'express';
import { recordTimings } from '../middleware/server-timing';
import {
  formatSse,
  isTerminalEvent,
  TERMINAL_STATUSES,
  type RunEvent,
  type RunHandle,
} from '../services/agents';
import type { Lifecycle } from '../services/health';
import type { Clock } from '../src/clock';
import { onResponseClose } from '../src/response-close';

export interface StreamRunOptions {
  /** Replay stored events with a sequence number above this one first. */
  after: number;
  /** The client that started the run is streaming it: when it goes away, the run is cancelled. */
  cancelOnClose: boolean;
  /**
   * The stream of the request that started or resumed the run: it ends with the run's next
   * `run.requires_action` too (the caller answers it with a resume, which streams the rest).
   */
  endOnPause?: boolean;
  heartbeatMs: number;
  clock: Clock;
  /** Registers the open stream so a shutdown can end it in-band (absent in some tests). */
  lifecycle?: Pick<Lifecycle, 'trackStream'>;
}

/**
 * Streams a run's events as server-sent events: the headers and the stored events after
 * `after` in one write, then each new event written the moment it is emitted, a `: ping`
 * comment every `heartbeatMs`, and the end of the response after the terminal event. Resolves
 * when the response is over; rejects, with nothing sent, when the run cannot be followed.
 *
 * The events of one burst (Ollama chunks that reached us in one read) are emitted in one tick.
 * The first event of a tick is written and flushed at once, so the first token of a burst is
 * not held back by the rest of it; the rest are joined and written as one chunk when the tick
 * ends (one more write per burst, and one chunk frame instead of one per event). Chunks that
 * reach us apart (a model producing tokens) are each the first of their tick: every one is
 * written as it comes.
 *
 * The open stream is registered with the lifecycle: when a shutdown outlasts
 * SHUTDOWN_TIMEOUT_MS, the run is stopped with a SHUTTING_DOWN cancel. The runner ends a stopped
 * run synchronously, so its one terminal event (`run.cancelled`) is written here — to every
 * stream following the run — and the response ended before the lifecycle would end it; the
 * run's signal aborts its Ollama request.
 */
export function streamRun(
  res: Response,
  handle: RunHandle,
  options: StreamRunOptions,
): Promise<void> {
  res.status(200);
  res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
  res.setHeader('Cache-Control', 'no-cache, no-transform');
  res.setHeader('Connection', 'keep-alive');
  // Tells nginx-style proxies not to buffer the stream.
  res.setHeader('X-Accel-Buffering', 'no');
  res.setHeader('X-Run-Id', handle.id);
  res.setHeader('Content-Location', `/agents/runs/${handle.id}`);
  // Only what is known before the headers leave: the first model step's times, on a re-attach.
  const first = handle.modelTimings()[0];
  if (first) recordTimings(res, first);
  res.socket?.setNoDelay(true);

  return new Promise<void>((resolve, reject) => {
    let finished = false;
    let unfollow = (): void => undefined;
    const heartbeat = options.clock.every(options.heartbeatMs, () => {
      if (!res.writableEnded) res.write(': ping\n\n');
    });
    // The events of this tick after its first, written together when the tick ends.
    let pending: string[] = [];
    const takePending = (): string => {
      const text = pending.join('');
      pending = [];
      return text;
    };
    const finish = (last?: string): void => {
      if (finished) return;
      finished = true;
      unfollow();
      heartbeat.cancel();
      // What waits for the end of the tick, the terminal event and the end of the body leave
      // in one write (one syscall, not two).
      const tail = takePending() + (last ?? '');
      if (!res.writableEnded) res.end(tail === '' ? undefined : tail);
      resolve();
    };
    // Stored events are already past: they are gathered while `follow` replays them (and any
    // appended before it resolved) and leave together with the headers in one write.
    let replayed: string[] | null = [];
    let flushedThisTick = false;
    const last = (event: RunEvent): boolean =>
      isTerminalEvent(event.type) ||
      (options.endOnPause === true && event.type === 'run.requires_action');
    const write = (event: RunEvent): void => {
      if (finished) return;
      if (replayed) {
        replayed.push(formatSse(event));
        if (last(event)) finish(replayed.join(''));
        return;
      }
      if (last(event)) {
        finish(formatSse(event));
        return;
      }
      if (flushedThisTick) {
        pending.push(formatSse(event));
        return;
      }
      flushedThisTick = true;
      res.write(formatSse(event));
      // The socket's own uncork: `res.uncork()` pairs with `res.cork()`, and unpaired it
      // leaves the response counting itself corked, buffering every later write.
      res.socket?.uncork();
      process.nextTick(() => {
        flushedThisTick = false;
        if (pending.length > 0 && !finished) res.write(takePending());
      });
    };
    onResponseClose(res, () => {
      if (!finished && options.cancelOnClose) void handle.cancel();
      finish();
    });
    const following = (stop: () => void): void => {
      unfollow = stop;
      if (finished) return stop();
      const past = (replayed ?? []).join('');
      replayed = null;
      // The run had ended before this follow, and its terminal event is at or before `after`
      // (an EventSource reconnecting with the last event's id): nothing more will come. 204
      // tells an EventSource to stop reconnecting.
      if (TERMINAL_STATUSES.has(handle.run.status)) {
        if (!res.headersSent) {
          res.status(204);
          res.removeHeader('Content-Type');
        }
        return finish(past);
      }
      if (past) res.write(past);
      else res.flushHeaders();
      options.lifecycle?.trackStream(res, () => {
        // A run that is still going gets its terminal event from this cancel; `finish` makes
        // sure the response ends even if another stream's shutdown already stopped the run.
        void handle.cancel('shutdown');
        finish();
      });
    };
    // A follow that fails before anything was sent (Redis unreachable, the run expired
    // meanwhile) is the request's error: 503 or 404 from the error handler, not an empty 200.
    handle.follow(options.after, write).then(following, (err: unknown) => {
      if (finished || res.headersSent) return finish();
      finished = true;
      heartbeat.cancel();
      reject(err as Error);
    });
  });
}
