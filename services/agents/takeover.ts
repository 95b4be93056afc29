/**
 * With a shared store, the runs of a replica that died: each round claims the runs whose lease
 * lapsed and ends them here, and ends the pauses past their expiry whose replica (and its
 * timer) is gone.
 */
import type { Logger } from '../../src/logger';
import type { Telemetry } from '../metrics';
import type { RunEventType } from './events';
import type { FollowUps } from './follow-ups';
import type { Pauses } from './pauses';
import { interruptedStop } from './run-handle';
import { runErrorOf, snapshot } from './run-object';
import type { RunRepository } from './run-repository';

export interface TakeoverDeps {
  runs: Pick<
    RunRepository,
    | 'get'
    | 'save'
    | 'append'
    | 'updateStatus'
    | 'release'
    | 'claimOrphans'
    | 'unclaim'
    | 'duePauses'
  >;
  followUps: Pick<FollowUps, 'deliverLater'>;
  pauses: Pick<Pauses, 'expire'>;
  telemetry: Pick<Telemetry, 'runCoordination' | 'agentRun'>;
  now: () => number;
  /** The run object's timestamps. */
  iso: () => string;
  logger: Pick<Logger, 'warn' | 'error'>;
}

/**
 * One takeover round; a round asked for while the one before it is still under way does
 * nothing. Never rejects: a run or a pause that cannot be ended now is left to a later round.
 */
export function createTakeover(deps: TakeoverDeps): () => Promise<void> {
  const { runs, now, iso, logger } = deps;
  let takingOver = false;

  /**
   * Ends a run whose replica died (its lease lapsed and this replica claimed it): `failed`
   * with error `interrupted` (retryable), its open steps closed, the terminal event appended
   * for its followers, and its webhook delivered, here, once. A run that had ended but whose
   * webhook had not gone out gets only the delivery.
   */
  const takeOver = async (id: string): Promise<void> => {
    const stored = await runs.get(id);
    if (!stored) return runs.release(id);
    const { run } = stored;
    const type = `run.${run.status}` as RunEventType;
    if (stored.finishedAt === null) {
      const stop = interruptedStop();
      let failedStep: number | undefined;
      for (const step of run.steps) {
        if (step.ended_at !== null) continue;
        failedStep ??= step.index;
        step.ended_at = iso();
        step.duration_ms = now() - Date.parse(step.started_at);
        step.status = 'error';
        if (step.kind === 'model') step.error = stop.message;
        else Object.assign(step.tool, { status: 'error', error: stop.message });
      }
      run.status = 'failed';
      run.stop_reason = stop.reason;
      run.error = runErrorOf(stop, failedStep);
      run.completed_at = iso();
      await runs.save(run);
      // The event first, as at the end of a pause (pauses.ts).
      await runs.append(id, 'run.failed', { run: snapshot(run) });
      await runs.updateStatus(id, 'failed');
      deps.telemetry.runCoordination({ kind: 'takeover' });
      deps.telemetry.agentRun({
        agent: run.agent.inline ? 'inline' : run.agent.name,
        status: run.status,
        stopReason: stop.reason,
        durationS: run.usage.wall_ms / 1000,
      });
      logger.warn('run of a replica that stopped ended as interrupted', { run_id: id });
      // Held until the delivery is done, as after a pause.
      deps.followUps.deliverLater(run, 'run.failed', snapshot(run));
    } else if (run.webhook?.last_delivery_status === 'pending') {
      deps.telemetry.runCoordination({ kind: 'takeover' });
      deps.followUps.deliverLater(run, type, snapshot(run));
    } else {
      await runs.release(id);
    }
  };

  return async () => {
    if (takingOver) return;
    takingOver = true;
    try {
      // Each claimed run is ended on its own; webhooks go out in the background, so a slow
      // receiver holds neither this round nor the next. One that cannot be ended (Redis failed
      // on the way) is let go: its lease lapses and a later round claims it again, here or on
      // another replica.
      const orphans = (await runs.claimOrphans()).map((id) =>
        takeOver(id).catch(async (err: unknown) => {
          logger.error('orphaned run not taken over; it will be claimed again', {
            run_id: id,
            error: err,
          });
          await runs.unclaim(id);
        }),
      );
      // Pauses past their expiry whose replica (and its timer) is gone end here; a claim is
      // atomic, so a replica whose timer fires too does nothing twice.
      const pauses = runs.duePauses(now()).then(
        (due) =>
          Promise.all(
            due.map(({ id, token }) =>
              deps.pauses.expire(id, token).catch((err: unknown) => {
                logger.error('paused run not expired', { run_id: id, error: err });
              }),
            ),
          ),
        () => undefined, // Redis is unreachable: the next round tries again.
      );
      await Promise.all([...orphans, pauses]);
    } catch {
      // Redis is unreachable: the next round tries again.
    } finally {
      takingOver = false;
    }
  };
}
