/**
 * Runs paused in `requires_action`: storing a pause (any replica can then resume it), its
 * expiry on this replica's clock, and the end of a pause nobody resumes (expired or cancelled).
 */
import { randomUUID } from 'node:crypto';
import type { Clock, TimerHandle } from '../../src/clock';
import type { Logger } from '../../src/logger';
import type { Telemetry } from '../metrics';
import type { RunEventType } from './events';
import type { FollowUps } from './follow-ups';
import type { PauseDraft, PauseState, ResumePlan } from './pause';
import { runErrorOf, RunStop, snapshot } from './run-object';
import type { RunRepository } from './run-repository';
import { statusFor, type AgentRun } from './types';

export interface Pauses {
  /**
   * Stores a paused run, tells its followers and arms its expiry; resolves with the run as the
   * `run.requires_action` event carries it, for the webhook.
   */
  pause(run: AgentRun, plan: ResumePlan, draft: PauseDraft): Promise<AgentRun>;
  /**
   * Ends a run no runner is working on (a pause that expired or was cancelled): its terminal
   * event and its status, then its webhook in the background. The caller holds the run's
   * claimed pause.
   */
  finish(run: AgentRun, plan: ResumePlan, stop: RunStop): Promise<AgentRun>;
  /** Ends a pause that nobody answered in time; a no-op when someone else took the pause. */
  expire(id: string, token: string): Promise<void>;
  /** Stops the expiry timer of a pause taken here (resumed, or ended). */
  disarm(id: string): void;
  /** Stops every expiry timer (the shutdown: another replica, or the next read, expires them). */
  disarmAll(): void;
}

export interface PausesDeps {
  runs: Pick<RunRepository, 'append' | 'updateStatus' | 'pause' | 'claimPause'>;
  followUps: Pick<FollowUps, 'deliverLater'>;
  telemetry: Pick<Telemetry, 'agentRun'>;
  clock: Pick<Clock, 'after'>;
  now: () => number;
  /** The run object's timestamps. */
  iso: () => string;
  logger: Pick<Logger, 'error'>;
}

export function createPauses(deps: PausesDeps): Pauses {
  const { runs, now, iso, logger } = deps;
  // Expiry timers of the runs that paused on this replica, by run id.
  const expiries = new Map<string, TimerHandle>();

  const disarm = (id: string): void => {
    expiries.get(id)?.cancel();
    expiries.delete(id);
  };

  const finish = async (run: AgentRun, plan: ResumePlan, stop: RunStop): Promise<AgentRun> => {
    disarm(run.id);
    run.status = statusFor(stop.reason);
    run.stop_reason = stop.reason;
    run.error = runErrorOf(stop, undefined);
    run.required_action = null;
    run.completed_at = iso();
    const type = `run.${run.status}` as RunEventType;
    const sent = snapshot(run);
    // The event first: a run whose status reads as ended always has its terminal event, which
    // a follower that finds it ended relies on (routers/agents-sse.ts).
    await runs.append(run.id, type, { run: sent });
    await runs.updateStatus(run.id, run.status);
    deps.telemetry.agentRun({
      agent: plan.agentLabel,
      status: run.status,
      stopReason: stop.reason,
      durationS: run.usage.wall_ms / 1000,
    });
    // The claim of the pause made this replica the run's holder until the delivery is done.
    deps.followUps.deliverLater(run, type, sent);
    return run;
  };

  const expire = async (id: string, token: string): Promise<void> => {
    const claimed = await runs.claimPause(id, token);
    if (!claimed) return;
    const expiredAt = claimed.run.required_action?.expires_at;
    await finish(
      claimed.run,
      claimed.pause.plan,
      new RunStop(
        'action_expired',
        "Nobody answered the run's required action (resume) before it expired.",
        expiredAt !== undefined ? { expired_at: expiredAt } : undefined,
      ),
    );
  };

  return {
    finish,
    expire,
    disarm,

    async pause(run, plan, draft) {
      const expiresAt = now() + plan.actionTtlMs;
      run.status = 'requires_action';
      run.required_action = {
        type: draft.awaiting.some((c) => c.type === 'client')
          ? 'submit_tool_outputs'
          : 'approve_tool_calls',
        tool_calls: draft.awaiting,
        expires_at: new Date(expiresAt).toISOString(),
      };
      // After a pause, a forced tool choice has been used: the steps to come are free.
      const state: PauseState = {
        ...draft,
        token: randomUUID(),
        expiresAt,
        plan: { ...plan, toolChoice: plan.toolChoice === 'none' ? 'none' : 'auto' },
      };
      const sent = snapshot(run);
      await runs.append(run.id, 'run.requires_action', {
        status: run.status,
        required_action: sent.required_action,
        run: sent,
      });
      // A shared store writes the event with the pause, in one step: whoever hears of the pause
      // there can resume it. The replica lets go of the run here (nobody takes a pause over).
      await runs.pause(run.id, run, state);
      expiries.set(
        run.id,
        deps.clock.after(plan.actionTtlMs, () => {
          expiries.delete(run.id);
          expire(run.id, state.token).catch((err: unknown) => {
            logger.error('paused run not expired', { run_id: run.id, error: err });
          });
        }),
      );
      return sent;
    },

    disarmAll() {
      for (const timer of expiries.values()) timer.cancel();
      expiries.clear();
    },
  };
}
