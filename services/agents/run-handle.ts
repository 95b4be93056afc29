import { untilAborted } from '../../src/abort';
import type { CallTimings } from '../ollama';
import { isTerminalEvent, type RunEvent } from './events';
import type { RunRepository } from './run-repository';
import { modelCallTimings, RunStop, shutdownStop } from './run-object';
import type { AgentRun } from './types';

/** Why a run is stopped from outside. */
export type CancelReason = 'cancelled' | 'shutdown';

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
   * Resolves with the finished run. Rejects with the signal's reason when `signal` aborts first
   * (the caller stopped waiting; the run goes on).
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

const stopFor = (reason: CancelReason): RunStop =>
  reason === 'shutdown' ? shutdownStop() : new RunStop('cancelled', 'The run was cancelled.');

export function createRunHandle(parts: RunHandleParts): RunHandle {
  const { run, runs, controller, done } = parts;
  return {
    id: run.id,
    owner: parts.owner,
    run,
    wait(options = {}) {
      return untilAborted(done, options.signal);
    },
    async follow(afterSeq, onEvent) {
      let following = true;
      let unsubscribe = (): void => undefined;
      const stop = (): void => {
        following = false;
        unsubscribe();
      };
      unsubscribe = await runs.follow(run.id, afterSeq, (event) => {
        if (!following) return;
        onEvent(event);
        if (isTerminalEvent(event.type)) stop();
      });
      // The replay reached the terminal event: nothing more will come.
      if (!following) unsubscribe();
      return stop;
    },
    cancel(reason = 'cancelled') {
      if (!controller.signal.aborted) controller.abort(stopFor(reason));
      return done;
    },
    settled: () => parts.settled,
    modelTimings: () => modelCallTimings(run),
  };
}
