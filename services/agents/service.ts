import type { Clock, TimerHandle } from '../../src/clock';
import { AppError } from '../../src/errors';
import type { Logger } from '../../src/logger';
import type { SchemaRegistry } from '../../src/validation';
import { canAccess, type AdmissionTicket, type Principal } from '../../src/principal';
import type { SsrfGuard } from '../net';
import type { Telemetry } from '../metrics';
import type { Message, ModelManager } from '../ollama';
import type { ToolRegistry } from '../tools';
import { createCallerSchemas } from './caller-schemas';
import { isTerminalEvent, type RunEventType } from './events';
import { createFollowUps } from './follow-ups';
import { bodyHash, type IdempotencyRepository } from './idempotency';
import {
  decideActions,
  resumePlanOf,
  type ActionAnswers,
  type ResumePlan,
  type ResumePoint,
} from './pause';
import { createPauses } from './pauses';
import { invalidBody, planRun, type RunPlan } from './plan';
import { numCtxProblem, type AgentChecks, type AgentRegistry } from './registry';
import { createRunChecks, type AgentRef } from './run-checks';
import { createRemoteRunHandle, createRunHandle, type RunHandle } from './run-handle';
import { createIsoClock, createRunIds, newRun, RunStop, snapshot } from './run-object';
import type { CreateOptions, RunRepository, StoredRun } from './run-repository';
import type { AgentRunner, RunSpec } from './runner';
import { createTakeover } from './takeover';
import type {
  AgentDefinition,
  AgentLimits,
  AgentOptions,
  AgentRun,
  ResponseFormat,
  ThinkSetting,
  Strategy,
  ToolChoice,
  ToolSpec,
} from './types';
import type { WebhookSender } from './webhooks';

/** The body of POST /agents/run after validation against `agent-run.request`. */
export interface RunRequest {
  agent?: AgentRef;
  input?: string;
  messages?: Message[];
  model?: string;
  options?: AgentOptions;
  limits?: Partial<AgentLimits>;
  response_format?: ResponseFormat;
  think?: ThinkSetting;
  /** Tools beside the agent's: server tool names or objects, client tools. */
  tools?: ToolSpec[];
  tool_choice?: ToolChoice;
  /** Groupthink: several samples and a vote or a judge. */
  strategy?: Strategy;
  stream?: boolean;
  background?: boolean;
  /** Answered runs: after this long, answer 202 with the run's Location; the run goes on. */
  wait_timeout_ms?: number;
  /** How long a pause for the caller may last (capped by RUN_ACTION_TTL_MAX_MS). */
  action_ttl_ms?: number;
  webhook?: { url: string; events?: string[] };
  metadata?: Record<string, string>;
}

/** The body of POST /agents/runs/{id}/resume after validation against `agent-run-resume.request`. */
export interface ResumeRequest extends ActionAnswers {
  stream?: boolean;
  background?: boolean;
  wait_timeout_ms?: number;
}

export interface ResumeResult {
  handle: RunHandle;
  /** The sequence number the resumed part of the run's events comes after. */
  after: number;
}

export interface StartResult {
  handle: RunHandle;
  /** The Idempotency-Key matched an earlier run with the same body: this is that run. */
  replayed: boolean;
}

/** Who starts a run. */
export interface StartContext {
  owner: string;
  idempotencyKey?: string;
  /** The caller's admission ticket: every generation of the run (background too) uses it. */
  ticket?: AdmissionTicket;
}

/** Who resumes a run: the principal must be its creator's; its ticket queues the rest of the run. */
export interface ResumeContext {
  principal: Principal | undefined;
  ticket?: AdmissionTicket;
}

export interface AgentsService {
  listAgents(): readonly AgentDefinition[];
  /** @throws AppError AGENT_NOT_FOUND */
  getAgent(name: string): AgentDefinition;
  /**
   * Creates a run and starts it (or returns the earlier run for a repeated Idempotency-Key).
   * @throws AppError VALIDATION_FAILED (inline agent, schema, webhook URL), AGENT_NOT_FOUND,
   *   IDEMPOTENCY_CONFLICT, IDEMPOTENCY_RUN_EXPIRED, TOO_MANY_RUNS
   */
  start(body: RunRequest, ctx: StartContext): Promise<StartResult>;
  /** A run the principal may see. @throws AppError RUN_NOT_FOUND (also for someone else's run). */
  find(id: string, principal: Principal | undefined): Promise<RunHandle>;
  /**
   * Goes on with a run paused in `requires_action`, here, with the caller's answers.
   * @throws AppError RUN_NOT_FOUND, RUN_NOT_PAUSED (not paused, expired, or another resume took
   *   the pause), TOOL_CALL_CONFLICT (answers for calls the run does not wait on),
   *   VALIDATION_FAILED (an awaited call left unanswered)
   */
  resume(id: string, body: ResumeRequest, ctx: ResumeContext): Promise<ResumeResult>;
  /** Cancels a run (idempotent) and resolves with it once it stopped. @throws RUN_NOT_FOUND */
  cancel(id: string, principal: Principal | undefined): Promise<AgentRun>;
  /** Ends every running run as cancelled by the shutdown (SHUTTING_DOWN, retryable). */
  cancelAll(): void;
  /**
   * Starts the background work: the repository's (leases, control messages) and, with
   * `takeoverEveryMs`, the periodic takeover of runs whose replica died and the expiry of
   * pauses whose replica died.
   */
  startWork(): void;
  /**
   * Stops it, and waits for the follow-up work under way here (webhook deliveries, of runs the
   * shutdown cancelled too, their records and releases) before the repository stops.
   */
  stopWork(): Promise<void>;
}

export interface AgentsServiceDeps {
  agents: AgentRegistry;
  tools: ToolRegistry;
  schemas: SchemaRegistry;
  runner: AgentRunner;
  runs: RunRepository;
  idempotency: IdempotencyRepository;
  /** Null when WEBHOOK_SECRET is empty: runs with a webhook are then refused. */
  webhooks: WebhookSender | null;
  /** Checks webhook URLs when a run is created (any host; WEBHOOK_ALLOWLIST trusted). */
  webhookGuard: SsrfGuard;
  models: Pick<ModelManager, 'active'>;
  /** Checks an agent's or a run's num_ctx against what the gateway sends (registry.ts). */
  numCtx: AgentChecks['numCtx'];
  logger: Logger;
  now: () => number;
  /** Timers of the takeover loop, of cross-replica cancels and of paused runs' expiry. */
  clock: Pick<Clock, 'after' | 'every'>;
  telemetry: Pick<Telemetry, 'runCoordination' | 'agentRun'>;
  /** How often to claim runs whose replica died (unset: never; one replica has no orphans). */
  takeoverEveryMs?: number;
  /** How long a cancel of a run executing elsewhere waits for its terminal event. */
  cancelWaitMs?: number;
  /** RUN_ACTION_TTL_MAX_MS: the longest pause a request may ask for. */
  maxActionTtlMs: number;
  /** GROUPTHINK_MAX_SAMPLES. */
  maxSamples: number;
  /** The MCP servers AGENTS_FILE defines, by name. */
  mcpServers: readonly string[];
}

/**
 * How long stopping waits for the follow-ups under way (webhook deliveries, their records):
 * half of the exit's bound on the whole stop (src/shutdown.ts STOP_SERVICES_MS).
 */
const STOP_FOLLOW_UPS_MS = 500;

/** The agents runtime behind the router: resolves agents, creates runs, finds and cancels them. */
export function createAgentsService(deps: AgentsServiceDeps): AgentsService {
  const { agents, tools, runner, runs, idempotency, logger, now } = deps;
  // The runs executing on this replica, until their follow-up work is done: only they have a
  // controller and a loop. Every other run is read from the repository.
  const local = new Map<string, RunHandle>();
  // Runs executing here that another replica took over: it delivers their webhook, not this one.
  const lost = new Set<string>();
  const newRunId = createRunIds();
  const iso = createIsoClock(now);
  const { clock, telemetry, webhooks } = deps;
  const callerSchemas = createCallerSchemas(deps.schemas);
  const checks = createRunChecks({
    agents,
    tools,
    schemas: deps.schemas,
    numCtx: deps.numCtx,
    mcpServers: deps.mcpServers,
    webhooks,
    webhookGuard: deps.webhookGuard,
    logger,
  });
  const followUps = createFollowUps({ webhooks, runs, logger, clock });
  const pauses = createPauses({ runs, followUps, telemetry, clock, now, iso, logger });
  const takeOverOrphans = createTakeover({ runs, followUps, pauses, telemetry, now, iso, logger });

  /** The handle of a run that finished or waits for its caller: it only replays and answers. */
  const storedHandle = (stored: StoredRun): RunHandle =>
    createRunHandle({
      run: stored.run,
      owner: stored.owner,
      runs,
      controller: new AbortController(),
      done: Promise.resolve(stored.run),
      settled: followUps.pending(stored.run.id) ?? Promise.resolve(),
    });

  /** The handle of a run that executes on another replica. */
  const remoteHandle = (stored: StoredRun): RunHandle =>
    createRemoteRunHandle({
      stored,
      runs,
      clock: deps.clock,
      cancelWaitMs: deps.cancelWaitMs ?? 5000,
      onCancelSent: () => deps.telemetry.runCoordination({ kind: 'cancel_sent' }),
    });

  const handleOf = async (id: string): Promise<RunHandle | undefined> => {
    const running = local.get(id);
    if (running) return running;
    let stored = await runs.get(id);
    if (stored?.run.status === 'requires_action') {
      // A pause whose replica is gone ends here, when someone next looks at it.
      const pause = await runs.getPause(id);
      if (pause && pause.expiresAt <= now()) {
        await pauses.expire(id, pause.token);
        stored = await runs.get(id);
      }
    }
    if (!stored) return undefined;
    if (stored.finishedAt !== null || stored.run.status === 'requires_action') {
      return storedHandle(stored);
    }
    return remoteHandle(stored);
  };

  const find = async (id: string, principal: Principal | undefined): Promise<RunHandle> => {
    const handle = await handleOf(id);
    // Someone else's run is reported as missing, so ids cannot be probed.
    if (!handle || !canAccess(principal, handle.owner)) throw new AppError('RUN_NOT_FOUND');
    return handle;
  };

  /**
   * Runs a run here: its first segment (`resume` absent) or the segment after a pause. The
   * handle's `wait()` settles when the segment ends: with the finished run, or with the run
   * paused in `requires_action`. Events of the segment start after `afterSeq`.
   */
  const launch = async (
    run: AgentRun,
    owner: string,
    plan: ResumePlan,
    segment: {
      messages: Message[];
      format?: RunSpec['format'];
      streamTokens: boolean;
      resume?: ResumePoint;
      afterSeq: number;
      ticket: AdmissionTicket | undefined;
    },
  ): Promise<RunHandle> => {
    const { id } = run;
    const emit = (type: RunEventType, data?: Record<string, unknown>): void => {
      runs.append(id, type, data).catch((err: unknown) => {
        logger.error('run event not stored', { run_id: id, type, error: err });
      });
    };
    const controller = new AbortController();
    let onEnd!: (finished: AgentRun) => void;
    const done = new Promise<AgentRun>((resolve) => (onEnd = resolve));
    // The webhook follows the run's terminal event, whose run it sends.
    let delivered: Promise<void> = Promise.resolve();
    // The segment ended in a pause that was stored: the repository let go of the run then.
    let paused = false;
    // The run was ended by pauses.finish, whose background delivery records it and lets go.
    let handedOff = false;
    const handle = createRunHandle({
      run,
      owner,
      runs,
      controller,
      done,
      settled: done.then(() => delivered),
    });
    local.set(id, handle);
    followUps.track(
      handle.settled().then(async () => {
        // A resume may already run the next segment here: it has its own handle and hold.
        if (local.get(id) === handle) local.delete(id);
        // A run another replica took over is that replica's to record; this one only lets go.
        const wasLost = lost.delete(id);
        if (paused || handedOff) return;
        await followUps.letGo(run, !!run.webhook && !wasLost);
      }),
    );
    let unfollow = (): void => undefined;
    if (run.webhook) {
      unfollow = await handle.follow(segment.afterSeq, (event) => {
        if (!isTerminalEvent(event.type) || lost.has(id)) return;
        delivered = followUps.deliverInOrder(run, event.type, event.data.run as AgentRun);
      });
    }
    runner.execute({
      run,
      emit,
      controller,
      onEnd: (finished) => {
        runs.updateStatus(id, finished.status).then(
          () => onEnd(finished),
          (err: unknown) => {
            logger.error('run status not stored', { run_id: id, error: err });
            onEnd(finished);
          },
        );
      },
      onPause: (pausedRun, draft) => {
        unfollow();
        // Taken over by another replica meanwhile: that replica ended the run; no pause.
        if (lost.has(id)) {
          onEnd(pausedRun);
          return;
        }
        // The caller hears of the pause once it is stored; the webhook follows (settled()).
        delivered = pauses.pause(pausedRun, plan, draft).then(
          (sent) => {
            paused = true;
            onEnd(pausedRun);
            return followUps.deliverPause(pausedRun, sent);
          },
          (err: unknown) => {
            // A pause that cannot be stored cannot be resumed: the run ends here.
            logger.error('paused run not stored', { run_id: id, error: err });
            handedOff = true;
            return pauses
              .finish(
                pausedRun,
                plan,
                new RunStop('internal_error', 'The paused run could not be stored.'),
              )
              .then(
                (ended) => {
                  onEnd(ended);
                  return followUps.pending(id);
                },
                () => {
                  handedOff = false;
                  onEnd(pausedRun);
                },
              );
          },
        );
      },
      agentLabel: plan.agentLabel,
      owner,
      model: plan.model,
      messages: segment.messages,
      toolNames: plan.toolNames,
      approvalTools: plan.approvalTools,
      clientTools: plan.clientTools,
      checkClientArgs: callerSchemas.clientChecker(plan.clientTools),
      toolChoice: plan.toolChoice,
      options: plan.options,
      limits: plan.limits,
      streamTokens: segment.streamTokens,
      ...(plan.think !== undefined ? { think: plan.think } : {}),
      ...(segment.format ? { format: segment.format } : {}),
      ...(segment.resume ? { resume: segment.resume } : {}),
      ...(plan.strategy ? { strategy: plan.strategy } : {}),
      ...(segment.ticket ? { ticket: segment.ticket } : {}),
    });
    return handle;
  };

  /**
   * Stores a planned run and starts it here; resolves with its handle. A `durable` run must be
   * in the shared store before it starts; an `unannounced` one may reach it with its first
   * events (see RunRepository.create).
   */
  const create = async (
    plan: RunPlan,
    owner: string,
    ticket: AdmissionTicket | undefined,
    store: CreateOptions,
  ): Promise<RunHandle> => {
    const id = newRunId();
    const run = newRun({
      id,
      agent: plan.agent,
      model: plan.model,
      createdAt: iso(),
      metadata: plan.metadata,
      webhook: plan.webhook && {
        ...plan.webhook,
        last_delivery_status: 'pending',
        last_status_code: null,
        attempts: 0,
      },
    });
    await runs.create(run, owner, store);
    const created = await runs.append(id, 'run.created', {
      status: run.status,
      agent: run.agent.name,
      model: plan.model,
    });
    return launch(run, owner, resumePlanOf(plan), {
      messages: plan.messages,
      ...(plan.format ? { format: plan.format } : {}),
      streamTokens: plan.streamTokens,
      afterSeq: created.seq - 1,
      ticket,
    });
  };

  let stopControl: (() => void) | undefined;
  let takeoverTimer: TimerHandle | undefined;

  return {
    listAgents: () => agents.list(),
    getAgent(name) {
      const agent = agents.get(name);
      if (!agent) throw new AppError('AGENT_NOT_FOUND', `No agent named "${name}".`);
      return agent;
    },

    async start(body, ctx) {
      const key = ctx.idempotencyKey;
      const hash = key !== undefined ? bodyHash(body) : '';
      if (key !== undefined) {
        const earlier = await idempotency.claim(ctx.owner, key, hash);
        if (earlier !== undefined) {
          // The key outlives its run (IDEMPOTENCY_TTL_MS against RUNS_TTL_MS, RUNS_MAX): once
          // the run is gone the key still says the agent ran, so it does not run again.
          const handle = await handleOf(earlier);
          if (!handle) {
            throw new AppError('IDEMPOTENCY_RUN_EXPIRED', undefined, {
              details: { run_id: earlier },
            });
          }
          return { handle, replayed: true };
        }
      }
      let handle: RunHandle;
      try {
        const plan = planRun(body, checks.resolveAgent(body.agent), {
          defaultModel: deps.models.active(),
          compileFormat: callerSchemas.compileFormat,
          configHash: callerSchemas.configHash,
          toolNames: tools.names(),
          mcpTools: (server) => tools.mcpTools(server) ?? [],
          maxActionTtlMs: deps.maxActionTtlMs,
          maxSamples: deps.maxSamples,
        });
        const numCtx = numCtxProblem(plan.options, plan.model, deps.numCtx);
        if (numCtx) throw invalidBody('/options/num_ctx', numCtx);
        if (plan.webhook) await checks.checkWebhook(plan.webhook.url);
        // Client tools' schemas compile now: a bad one is the request's 400, not the run's end.
        for (const tool of plan.clientTools) callerSchemas.compileToolSchema(tool);
        // Background and webhook runs are polled, followed and delivered through any replica.
        const durable = body.background === true || !!plan.webhook;
        // An answered run's id reaches its caller with the answer, and nobody else's: unless
        // a key or a wait_timeout_ms can make it known earlier, no replica can look it up.
        const unannounced =
          !durable && !body.stream && key === undefined && body.wait_timeout_ms === undefined;
        handle = await create(plan, ctx.owner, ctx.ticket, { durable, unannounced });
      } catch (err) {
        if (key !== undefined) await idempotency.release(ctx.owner, key).catch(() => undefined);
        throw err;
      }
      if (key !== undefined) {
        try {
          await idempotency.remember(ctx.owner, key, hash, handle.id);
        } catch (err) {
          // A run its key does not name would run again on the client's retry: stop it, give
          // the key back (when the store answers), and fail the request.
          void handle.cancel().catch(() => undefined);
          await idempotency.release(ctx.owner, key).catch(() => undefined);
          throw err;
        }
      }
      return { handle, replayed: false };
    },

    find,

    async resume(id, body, { principal, ticket }) {
      const stored = await runs.get(id);
      if (!stored || !canAccess(principal, stored.owner)) throw new AppError('RUN_NOT_FOUND');
      const pause = await runs.getPause(id);
      if (!pause) {
        throw new AppError('RUN_NOT_PAUSED', undefined, { details: { status: stored.run.status } });
      }
      if (pause.expiresAt <= now()) {
        await pauses.expire(id, pause.token);
        throw new AppError('RUN_NOT_PAUSED', "The run's required action expired.", {
          details: { status: 'incomplete', stop_reason: 'action_expired' },
        });
      }
      const decisions = decideActions(pause, body);
      const claimed = await runs.claimPause(id, pause.token);
      if (!claimed) {
        throw new AppError('RUN_NOT_PAUSED', 'Another request resumed or ended this pause first.');
      }
      pauses.disarm(id);
      const { run } = claimed;
      const { plan } = claimed.pause;
      run.status = 'in_progress';
      run.required_action = null;
      await runs.updateStatus(id, 'in_progress');
      const resumed = await runs.append(id, 'run.in_progress', {
        status: run.status,
        resumed: true,
      });
      const format = plan.formatSchema
        ? { schema: plan.formatSchema, validate: callerSchemas.compileFormat(plan.formatSchema) }
        : undefined;
      const handle = await launch(run, stored.owner, plan, {
        messages: [],
        ...(format ? { format } : {}),
        streamTokens: Boolean(body.stream || body.background || run.webhook),
        resume: { pause: claimed.pause, decisions },
        afterSeq: resumed.seq - 1,
        // The resumed segment's generations queue as the caller that resumed it.
        ticket,
      });
      return { handle, after: resumed.seq - 1 };
    },

    async cancel(id, principal) {
      const handle = await find(id, principal);
      if (handle.run.status === 'requires_action') {
        const pause = await runs.getPause(id);
        const claimed = pause && (await runs.claimPause(id, pause.token));
        if (claimed) {
          return snapshot(
            await pauses.finish(
              claimed.run,
              claimed.pause.plan,
              new RunStop('cancelled', 'The run was cancelled.'),
            ),
          );
        }
        return snapshot((await find(id, principal)).run);
      }
      return snapshot(await handle.cancel());
    },

    cancelAll() {
      for (const handle of local.values()) void handle.cancel('shutdown');
      // Paused runs stay paused in the repository, resumable through another replica; the
      // expiry of a pause whose replica is gone happens when someone next reads the run.
      pauses.disarmAll();
    },

    startWork() {
      if (stopControl) return;
      runs.start();
      stopControl = runs.onControl((id, control) => {
        const handle = local.get(id);
        if (!handle) return;
        if (control === 'cancel') deps.telemetry.runCoordination({ kind: 'cancel_received' });
        else lost.add(id);
        void handle.cancel(control === 'cancel' ? 'cancelled' : 'lost');
      });
      if (deps.takeoverEveryMs !== undefined) {
        takeoverTimer = deps.clock.every(deps.takeoverEveryMs, () => void takeOverOrphans());
      }
    },

    async stopWork() {
      takeoverTimer?.cancel();
      stopControl?.();
      stopControl = undefined;
      // The repository takes the delivery records and releases first, for as long as the
      // deliveries under way take, up to STOP_FOLLOW_UPS_MS: the rest of the stop (the usage
      // flush, the Ollama pool) must still fit in the exit's own bound. A delivery cut off
      // here leaves its run held; with Redis another replica takes it over and delivers again.
      await followUps.settle(STOP_FOLLOW_UPS_MS);
      await runs.stop();
    },
  };
}
