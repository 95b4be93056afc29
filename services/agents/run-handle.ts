import { untilAborted } from '../../src/abort';
import type { Clock } from '../../src/clock';
import type { CallTimings } from '../ollama';
import { isTerminalEvent, type RunEvent } from './events';
import type { RunRepository, StoredRun } from './run-repository';
import { modelCallTimings, RunStop, shutdownStop } from './run-object';
import type { AgentRun } from './types';

/**
 * Why a run is stopped from outside: a cancel, the shutdown, or `lost` (another replica took
 * the run over and ended it; this replica stops its copy).
 */
export type CancelReason = 'cancelled' | 'shutdown' | 'lost';

/**
 * What callers hold of a run: they watch it, wait for it and stop it through this object only.
 * The agents service owns the run (its controller, its loop, its event log); routers never
 * reach into them.
 */
export interface RunHandle {
  readonly id: string;
  /** The principal id that created the run. */
  readonly owner: string;
  /** The run as it is now. Serialise it at once; it keeps changing while the run goes on. */
  readonly run: AgentRun;
  /**
   * Resolves with the run once it finished or paused (`requires_action`: it waits for its
   * caller). Rejects with the signal's reason when `signal` aborts first (the caller stopped
   * waiting; the run goes on).
   */
  wait(options?: { signal?: AbortSignal }): Promise<AgentRun>;
  /**
   * Calls `onEvent` with each stored event after `afterSeq`, then with each new event the moment
   * it is appended, up to and including the terminal event. Resolves, once the stored events
   * were replayed, with the function that stops following.
   */
  follow(afterSeq: number, onEvent: (event: RunEvent) => void): Promise<() => void>;
  /** Stops the run unless it has finished; resolves with the finished run. */
  cancel(reason?: CancelReason): Promise<AgentRun>;
  /** Resolves once the finished run's follow-up work (its webhook delivery) is done. */
  settled(): Promise<void>;
  /** The queue wait and Ollama times of each finished model call, in order (Server-Timing). */
  modelTimings(): CallTimings[];
}

export interface RunHandleParts {
  run: AgentRun;
  owner: string;
  /** Where the run's events are. */
  runs: Pick<RunRepository, 'follow'>;
  controller: AbortController;
  /** Settles with the run when it reached a terminal state. */
  done: Promise<AgentRun>;
  /** Settles after the terminal state's follow-up work. */
  settled: Promise<void>;
}

const stopFor = (reason: CancelReason): RunStop => {
  if (reason === 'shutdown') return shutdownStop();
  if (reason === 'lost') return interruptedStop();
  return new RunStop('cancelled', 'The run was cancelled.');
};

/** The stop of a run whose replica stopped holding it (it died, or lost Redis past its lease). */
export function interruptedStop(): RunStop {
  return new RunStop(
    'interrupted',
    'The replica executing the run stopped before the run finished.',
    undefined,
    true,
  );
}

/**
 * Follows a handle's run to its terminal event, or (`untilPause`) to its pause as well;
 * resolves with the run that event carries. A pause counts only while it is the run's latest
 * event: one in the replayed history that later events follow was resumed.
 */
function followToEnd(
  follow: RunHandle['follow'],
  signal: AbortSignal | undefined,
  untilPause = false,
): Promise<AgentRun> {
  return new Promise<AgentRun>((resolve, reject) => {
    let stop = (): void => undefined;
    let over = false;
    let replaying = true;
    let paused: AgentRun | undefined;
    const onAbort = (): void => {
      over = true;
      stop();
      reject(signal?.reason as unknown);
    };
    const end = (run: AgentRun): void => {
      over = true;
      signal?.removeEventListener('abort', onAbort);
      stop();
      resolve(run);
    };
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    follow(0, (event) => {
      if (over) return;
      if (isTerminalEvent(event.type)) return end(event.data.run as AgentRun);
      if (!untilPause) return;
      if (event.type !== 'run.requires_action') paused = undefined;
      else if (replaying) paused = event.data.run as AgentRun;
      else end(event.data.run as AgentRun);
    }).then(
      (unfollow) => {
        stop = unfollow;
        replaying = false;
        if (over) unfollow();
        else if (paused) end(paused);
      },
      (err: unknown) => {
        signal?.removeEventListener('abort', onAbort);
        reject(err as Error);
      },
    );
  });
}

/** Follows a run's events up to and including the terminal one (see RunHandle.follow). */
async function followUntilEnd(
  runs: Pick<RunRepository, 'follow'>,
  id: string,
  afterSeq: number,
  onEvent: (event: RunEvent) => void,
): Promise<() => void> {
  let following = true;
  let unsubscribe = (): void => undefined;
  const stop = (): void => {
    following = false;
    unsubscribe();
  };
  unsubscribe = await runs.follow(id, afterSeq, (event) => {
    if (!following) return;
    onEvent(event);
    if (isTerminalEvent(event.type)) stop();
  });
  // The replay reached the terminal event: nothing more will come.
  if (!following) unsubscribe();
  return stop;
}

/**
 * The handle of a run that executes on another replica: it follows the run's events through
 * the repository, waits for its terminal event, and cancels by asking the executing replica
 * (then waits for the terminal event at most `cancelWaitMs`, and answers with the run as the
 * repository has it by then).
 */
export function createRemoteRunHandle(parts: {
  stored: StoredRun;
  runs: Pick<RunRepository, 'follow' | 'get' | 'requestCancel'>;
  clock: Pick<Clock, 'after'>;
  cancelWaitMs: number;
  /** Called once a cancel was sent (metrics). */
  onCancelSent?: () => void;
}): RunHandle {
  const { stored, runs, clock } = parts;
  const { run } = stored;
  const follow: RunHandle['follow'] = (afterSeq, onEvent) =>
    followUntilEnd(runs, run.id, afterSeq, onEvent);
  return {
    id: run.id,
    owner: stored.owner,
    run,
    wait: (options = {}) => followToEnd(follow, options.signal, true),
    follow,
    async cancel(reason = 'cancelled') {
      // This replica shutting down (or losing a run) stops only its following, not a run that
      // executes elsewhere.
      if (reason !== 'cancelled') return (await runs.get(run.id))?.run ?? run;
      await runs.requestCancel(run.id);
      parts.onCancelSent?.();
      const giveUp = new AbortController();
      const timer = clock.after(parts.cancelWaitMs, () => giveUp.abort(new Error('timeout')));
      try {
        return await followToEnd(follow, giveUp.signal);
      } catch {
        return (await runs.get(run.id))?.run ?? run;
      } finally {
        timer.cancel();
      }
    },
    settled: () => Promise.resolve(),
    modelTimings: () => modelCallTimings(run),
  };
}

export function createRunHandle(parts: RunHandleParts): RunHandle {
  const { run, runs, controller, done } = parts;
  return {
    id: run.id,
    owner: parts.owner,
    run,
    wait(options = {}) {
      return untilAborted(done, options.signal);
    },
    follow: (afterSeq, onEvent) => followUntilEnd(runs, run.id, afterSeq, onEvent),
    cancel(reason = 'cancelled') {
      if (!controller.signal.aborted) controller.abort(stopFor(reason));
      return done;
    },
    settled: () => parts.settled,
    modelTimings: () => modelCallTimings(run),
  };
}
