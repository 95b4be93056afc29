/**
 * The work a run leaves on this replica after its answer: its webhook deliveries, in the order
 * its events happened, their records on the run, and the release of the run in the repository.
 * A shutdown waits for all of it, up to a bound.
 */
import type { Clock, TimerHandle } from '../../src/clock';
import type { Logger } from '../../src/logger';
import type { RunRepository } from './run-repository';
import type { AgentRun } from './types';
import type { WebhookSender } from './webhooks';

export interface FollowUps {
  /** Work a shutdown waits for (`settle`). */
  track(work: Promise<void>): void;
  /**
   * Delivers `type` with `sent` to the run's webhook, once the delivery of its last pause still
   * under way here is done, so a run's webhooks leave this replica in order (a receiver gets
   * run.requires_action before whatever followed the pause); records the outcome on `run`.
   * Never rejects.
   */
  deliverInOrder(run: AgentRun, type: string, sent: AgentRun): Promise<void>;
  /** Delivers a pause's run.requires_action; whatever the run delivers next goes after it. */
  deliverPause(run: AgentRun, sent: AgentRun): Promise<void>;
  /**
   * This replica is done with a run: the webhook's delivery record (`record`), then nobody
   * needs to hold it any longer (a run whose release did not reach Redis is claimed after its
   * lease and released then). Never rejects.
   */
  letGo(run: AgentRun, record: boolean): Promise<void>;
  /**
   * Delivers the webhook of a run whose terminal state is stored and that no runner works on, in
   * the background, then lets the run go: until then this replica holds it (a replica that dies
   * meanwhile leaves it to a takeover, which delivers again).
   */
  deliverLater(run: AgentRun, type: string, sent: AgentRun): void;
  /** The background delivery of a run under way (`deliverLater`), if any. */
  pending(id: string): Promise<void> | undefined;
  /** Resolves when everything tracked is done, or after `maxMs`. */
  settle(maxMs: number): Promise<void>;
}

export interface FollowUpsDeps {
  /** Null when WEBHOOK_SECRET is empty (runs with a webhook are refused then). */
  webhooks: WebhookSender | null;
  runs: Pick<RunRepository, 'save' | 'release'>;
  logger: Pick<Logger, 'warn' | 'error'>;
  clock: Pick<Clock, 'after'>;
}

export function createFollowUps(deps: FollowUpsDeps): FollowUps {
  const { runs, logger } = deps;
  const tracked = new Set<Promise<void>>();
  // Background deliveries (deliverLater) by run id, until they are recorded and the run let go.
  const deliveries = new Map<string, Promise<void>>();
  // The last delivery of run.requires_action under way, by run id.
  const pauseDeliveries = new Map<string, Promise<void>>();

  const track = (work: Promise<void>): void => {
    tracked.add(work);
    const done = (): void => void tracked.delete(work);
    work.then(done, done);
  };

  const deliver = async (run: AgentRun, type: string, sent: AgentRun): Promise<void> => {
    const hook = run.webhook;
    if (!hook || !deps.webhooks) return;
    if (!hook.events.includes(type)) {
      hook.last_delivery_status = 'skipped';
      return;
    }
    const result = await deps.webhooks.deliver(hook.url, type, sent);
    hook.last_delivery_status = result.status;
    hook.attempts = result.attempts;
    hook.last_status_code = result.statusCode;
  };

  const deliverInOrder = (run: AgentRun, type: string, sent: AgentRun): Promise<void> =>
    (pauseDeliveries.get(run.id) ?? Promise.resolve())
      .then(() => deliver(run, type, sent))
      .catch((err: unknown) => {
        logger.error('webhook delivery failed unexpectedly', { run_id: run.id, error: err });
      });

  const letGo = async (run: AgentRun, record: boolean): Promise<void> => {
    if (record) {
      await runs.save(run).catch((err: unknown) => {
        logger.warn('webhook delivery record not stored', { run_id: run.id, error: err });
      });
    }
    await runs.release(run.id).catch((err: unknown) => {
      logger.warn('finished run not released', { run_id: run.id, error: err });
    });
  };

  return {
    track,
    deliverInOrder,
    letGo,

    deliverPause(run, sent) {
      const delivery: Promise<void> = deliverInOrder(run, 'run.requires_action', sent).finally(
        () => {
          if (pauseDeliveries.get(run.id) === delivery) pauseDeliveries.delete(run.id);
        },
      );
      pauseDeliveries.set(run.id, delivery);
      return delivery;
    },

    deliverLater(run, type, sent) {
      const work = deliverInOrder(run, type, sent)
        .then(() => letGo(run, !!run.webhook))
        .finally(() => {
          if (deliveries.get(run.id) === work) deliveries.delete(run.id);
        });
      deliveries.set(run.id, work);
      track(work);
    },

    pending: (id) => deliveries.get(id),

    async settle(maxMs) {
      let timer: TimerHandle | undefined;
      await Promise.race([
        Promise.allSettled(tracked),
        new Promise<void>((resolve) => {
          timer = deps.clock.after(maxMs, resolve);
        }),
      ]);
      timer?.cancel();
    },
  };
}
