import { createHash, randomUUID } from 'node:crypto';
import type { ValidateFunction } from 'ajv';
import type { Clock, TimerHandle } from '../../src/clock';
import { AppError } from '../../src/errors';
import type { Logger } from '../../src/logger';
import { toFieldErrors, type SchemaRegistry } from '../../src/validation';
import { canAccess, type AdmissionTicket, type Principal } from '../../src/principal';
import { SsrfError, type SsrfGuard } from '../net';
import type { Telemetry } from '../metrics';
import type { Message, ModelManager } from '../ollama';
import type { ToolRegistry } from '../tools';
import { isTerminalEvent, type RunEventType } from './events';
import { bodyHash, canonicalJson, type IdempotencyRepository } from './idempotency';
import { agentProblems, numCtxProblem, type AgentChecks, type AgentRegistry } from './registry';
import type { ActionDecision, PauseDraft, PauseState, ResumePlan, ResumePoint } from './pause';
import { planRun, type RunPlan } from './plan';
import {
  createRemoteRunHandle,
  createRunHandle,
  interruptedStop,
  type RunHandle,
} from './run-handle';
import { createIsoClock, createRunIds, newRun, RunStop, runErrorOf, snapshot } from './run-object';
import type { CreateOptions, RunRepository, StoredRun } from './run-repository';
import type { AgentRunner, RunSpec } from './runner';
import {
  statusFor,
  type AgentDefinition,
  type AgentLimits,
  type AgentOptions,
  type AgentRun,
  type ClientToolSpec,
  type ResponseFormat,
  type ThinkSetting,
  type Strategy,
  type ToolChoice,
  type ToolSpec,
} from './types';
import type { WebhookSender } from './webhooks';

/** The body of POST /agents/run after validation against `agent-run.request`. */
export interface RunRequest {
  agent?: string | (Omit<AgentDefinition, 'name'> & { name?: string });
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
export interface ResumeRequest {
  tool_outputs?: Array<{ tool_call_id: string; output: string }>;
  approvals?: Array<{ tool_call_id: string; approve: boolean; reason?: string }>;
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

/** Bound of each cache below (compiled response_format schemas, configuration hashes). */
const CACHE_MAX = 100;

/**
 * How long stopping waits for the follow-ups under way (webhook deliveries, their records):
 * half of the exit's bound on the whole stop (src/shutdown.ts STOP_SERVICES_MS).
 */
const STOP_FOLLOW_UPS_MS = 500;

function invalid(path: string, message: string, details?: unknown): AppError {
  return new AppError('VALIDATION_FAILED', undefined, {
    details: details ?? [{ in: 'body', path, message }],
  });
}

/** The agents runtime behind the router: resolves agents, creates runs, finds and cancels them. */
export function createAgentsService(deps: AgentsServiceDeps): AgentsService {
  const { agents, tools, schemas, runner, runs, idempotency, logger, now } = deps;
  // The runs executing on this replica, until their follow-up work is done: only they have a
  // controller and a loop. Every other run is read from the repository.
  const local = new Map<string, RunHandle>();
  // Runs executing here that another replica took over: it delivers their webhook, not this one.
  const lost = new Set<string>();
  // Webhook deliveries of runs that ended without a runner (a pause that expired or was
  // cancelled, a run taken over), by run id, until they are recorded and the run let go: the
  // request or takeover round that ended the run does not wait for them.
  const deliveries = new Map<string, Promise<void>>();
  // The last delivery of run.requires_action under way, by run id, each one after the one
  // before: whatever the run delivers next here (the end of a resumed segment, a later pause,
  // the end of a cancelled or expired pause) goes after it.
  const pauseDeliveries = new Map<string, Promise<void>>();
  // Everything a shutdown waits for: those deliveries, and each launched run's end with its own.
  const followUps = new Set<Promise<void>>();
  const track = (work: Promise<void>): void => {
    followUps.add(work);
    const done = (): void => void followUps.delete(work);
    work.then(done, done);
  };
  // Compiled response_format schemas by their canonical text, bounded (oldest dropped first).
  const formats = new Map<string, ValidateFunction>();
  const newRunId = createRunIds();
  const iso = createIsoClock(now);

  const compileFormat = (schema: Record<string, unknown>): ValidateFunction => {
    const key = canonicalJson(schema);
    const cached = formats.get(key);
    if (cached) return cached;
    let fn: ValidateFunction;
    try {
      fn = schemas.compile(schema);
    } catch (err) {
      throw invalid('/response_format/schema', `does not compile: ${(err as Error).message}`);
    }
    formats.set(key, fn);
    if (formats.size > CACHE_MAX) formats.delete(formats.keys().next().value as string);
    return fn;
  };

  // Compiled client tool parameter schemas by their canonical text, bounded like `formats`.
  const toolSchemas = new Map<string, ValidateFunction>();
  const compileToolSchema = (tool: ClientToolSpec): ValidateFunction => {
    const key = canonicalJson(tool.parameters);
    const cached = toolSchemas.get(key);
    if (cached) return cached;
    let fn: ValidateFunction;
    try {
      fn = schemas.compile(tool.parameters);
    } catch (err) {
      throw invalid(
        '/tools',
        `client tool "${tool.name}" parameters do not compile: ${(err as Error).message}`,
      );
    }
    toolSchemas.set(key, fn);
    if (toolSchemas.size > CACHE_MAX) toolSchemas.delete(toolSchemas.keys().next().value as string);
    return fn;
  };
  /** Checks client tool calls against their schemas, in words the model can act on. */
  const clientChecker = (
    tools: readonly ClientToolSpec[],
  ): ((name: string, args: unknown) => string | null) => {
    const validators = new Map(tools.map((t) => [t.name, compileToolSchema(t)]));
    return (name, args) => {
      const validate = validators.get(name);
      if (!validate) return `Unknown tool "${name}".`;
      if (validate(args)) return null;
      return toFieldErrors(validate.errors ?? [], 'arguments')
        .map((e) => `arguments${e.path.replace(/\//g, '.')} ${e.message}`)
        .join('; ');
    };
  };

  // Hashes of agents' stored configurations per resolved model, bounded (oldest dropped first).
  const storedHashes = new Map<string, string>();
  const configHash = (effective: Record<string, unknown>, key: string | undefined): string => {
    const cached = key !== undefined ? storedHashes.get(key) : undefined;
    if (cached !== undefined) return cached;
    const hash = createHash('sha256').update(canonicalJson(effective)).digest('hex').slice(0, 16);
    if (key !== undefined) {
      storedHashes.set(key, hash);
      if (storedHashes.size > CACHE_MAX) {
        storedHashes.delete(storedHashes.keys().next().value as string);
      }
    }
    return hash;
  };

  const resolveAgent = (ref: RunRequest['agent']): { agent: AgentDefinition; inline: boolean } => {
    if (ref === undefined || typeof ref === 'string') {
      const name = ref ?? 'default';
      const agent = agents.get(name);
      if (!agent) throw new AppError('AGENT_NOT_FOUND', `No agent named "${name}".`);
      return { agent, inline: false };
    }
    const agent: AgentDefinition = { ...ref, name: ref.name ?? 'inline' };
    const problems = agentProblems(agent, {
      toolNames: tools.names(),
      schemas,
      numCtx: deps.numCtx,
      mcpServers: deps.mcpServers,
    });
    if (problems.length > 0) {
      throw invalid(
        '/agent',
        'is not valid',
        problems.map((message) => ({ in: 'body', path: '/agent', message })),
      );
    }
    return { agent, inline: true };
  };

  const checkWebhook = async (url: string): Promise<void> => {
    if (!deps.webhooks)
      throw invalid('/webhook', 'is not available: the service has no WEBHOOK_SECRET');
    try {
      await deps.webhookGuard.check(url);
    } catch (err) {
      if (!(err instanceof SsrfError)) throw err;
      // Whether a host resolves, and to what kind of address, stays in the log: told to the
      // caller, it would map internal names.
      if (err.reason === 'dns' || err.reason === 'address_refused') {
        logger.debug('webhook URL refused', { reason: err.reason, error: err.message });
        throw invalid('/webhook/url', 'is refused: it is not an https URL of a public host.');
      }
      throw invalid('/webhook/url', `is refused: ${err.message}`);
    }
  };

  /** Sends the terminal event's run to the run's webhook, and records the outcome on the run. */
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

  /**
   * Delivers `type` for `run` once the delivery of its last pause still under way here is done,
   * so a run's webhooks leave this replica in order (a receiver gets run.requires_action before
   * whatever followed the pause). Never rejects.
   */
  const deliverInOrder = (run: AgentRun, type: string, sent: AgentRun): Promise<void> =>
    (pauseDeliveries.get(run.id) ?? Promise.resolve())
      .then(() => deliver(run, type, sent))
      .catch((err: unknown) => {
        logger.error('webhook delivery failed unexpectedly', { run_id: run.id, error: err });
      });

  /**
   * This replica is done with a run: the webhook's delivery record (`record`), then nobody needs
   * to hold it any longer (a run whose release did not reach Redis is claimed after its lease
   * and released then). Never rejects.
   */
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

  /**
   * Delivers the webhook of a run whose terminal state is stored, in the background, then lets
   * the run go: until then this replica holds it (a replica that dies meanwhile leaves it to a
   * takeover, which delivers again), and `settled()` of its handle waits for the delivery.
   */
  const deliverLater = (run: AgentRun, type: string, sent: AgentRun): void => {
    const work = deliverInOrder(run, type, sent)
      .then(() => letGo(run, !!run.webhook))
      .finally(() => {
        if (deliveries.get(run.id) === work) deliveries.delete(run.id);
      });
    deliveries.set(run.id, work);
    track(work);
  };

  /** The handle of a run that finished or waits for its caller: it only replays and answers. */
  const storedHandle = (stored: StoredRun): RunHandle =>
    createRunHandle({
      run: stored.run,
      owner: stored.owner,
      runs,
      controller: new AbortController(),
      done: Promise.resolve(stored.run),
      settled: deliveries.get(stored.run.id) ?? Promise.resolve(),
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

  // Expiry timers of the runs that paused on this replica, by run id.
  const expiries = new Map<string, TimerHandle>();

  /**
   * Ends a run no runner is working on (a pause that expired or was cancelled): its terminal
   * event and its status, then its webhook in the background. The caller holds the run's
   * claimed pause.
   */
  const finishPaused = async (
    run: AgentRun,
    plan: ResumePlan,
    stop: RunStop,
  ): Promise<AgentRun> => {
    expiries.get(run.id)?.cancel();
    expiries.delete(run.id);
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
    deliverLater(run, type, sent);
    return run;
  };

  /** Ends a pause that nobody answered in time; a no-op when someone else took the pause. */
  const expire = async (id: string, token: string): Promise<void> => {
    const claimed = await runs.claimPause(id, token);
    if (!claimed) return;
    const expiredAt = claimed.run.required_action?.expires_at;
    await finishPaused(
      claimed.run,
      claimed.pause.plan,
      new RunStop(
        'action_expired',
        "Nobody answered the run's required action (resume) before it expired.",
        expiredAt !== undefined ? { expired_at: expiredAt } : undefined,
      ),
    );
  };

  const handleOf = async (id: string): Promise<RunHandle | undefined> => {
    const running = local.get(id);
    if (running) return running;
    let stored = await runs.get(id);
    if (stored?.run.status === 'requires_action') {
      // A pause whose replica is gone ends here, when someone next looks at it.
      const pause = await runs.getPause(id);
      if (pause && pause.expiresAt <= now()) {
        await expire(id, pause.token);
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

  /** What a resume needs of a plan (plain JSON, stored with each pause). */
  const resumePlanOf = (plan: RunPlan): ResumePlan => ({
    agentLabel: plan.agentLabel,
    model: plan.model,
    toolNames: [...plan.toolNames],
    approvalTools: [...plan.approvalTools],
    clientTools: [...plan.clientTools],
    options: plan.options,
    limits: plan.limits,
    streamTokens: plan.streamTokens,
    ...(plan.think !== undefined ? { think: plan.think } : {}),
    ...(plan.format ? { formatSchema: plan.format.schema } : {}),
    toolChoice: plan.toolChoice,
    actionTtlMs: plan.actionTtlMs,
    ...(plan.strategy ? { strategy: plan.strategy } : {}),
  });

  /**
   * Stores a paused run, tells its followers and arms its expiry; resolves with the run as the
   * `run.requires_action` event carries it, for the webhook.
   */
  const pause = async (run: AgentRun, plan: ResumePlan, draft: PauseDraft): Promise<AgentRun> => {
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
    // The run was ended by finishPaused, whose background delivery records it and lets go.
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
    track(
      handle.settled().then(async () => {
        // A resume may already run the next segment here: it has its own handle and hold.
        if (local.get(id) === handle) local.delete(id);
        // A run another replica took over is that replica's to record; this one only lets go.
        const wasLost = lost.delete(id);
        if (paused || handedOff) return;
        await letGo(run, !!run.webhook && !wasLost);
      }),
    );
    let unfollow = (): void => undefined;
    if (run.webhook) {
      unfollow = await handle.follow(segment.afterSeq, (event) => {
        if (!isTerminalEvent(event.type) || lost.has(id)) return;
        delivered = deliverInOrder(run, event.type, event.data.run as AgentRun);
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
        delivered = pause(pausedRun, plan, draft).then(
          (sent) => {
            paused = true;
            onEnd(pausedRun);
            const delivery: Promise<void> = deliverInOrder(
              pausedRun,
              'run.requires_action',
              sent,
            ).finally(() => {
              if (pauseDeliveries.get(id) === delivery) pauseDeliveries.delete(id);
            });
            pauseDeliveries.set(id, delivery);
            return delivery;
          },
          (err: unknown) => {
            // A pause that cannot be stored cannot be resumed: the run ends here.
            logger.error('paused run not stored', { run_id: id, error: err });
            handedOff = true;
            return finishPaused(
              pausedRun,
              plan,
              new RunStop('internal_error', 'The paused run could not be stored.'),
            ).then(
              (ended) => {
                onEnd(ended);
                return deliveries.get(id);
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
      checkClientArgs: clientChecker(plan.clientTools),
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

  /** The caller's answers by call id, checked against what the pause waits on. */
  const decide = (pause: PauseState, body: ResumeRequest): Map<string, ActionDecision> => {
    const awaited = new Map(pause.awaiting.map((c) => [c.id, c]));
    const decisions = new Map<string, ActionDecision>();
    const conflicts: string[] = [];
    const take = (id: string, type: 'client' | 'approval', decision: ActionDecision): void => {
      if (awaited.get(id)?.type !== type || decisions.has(id)) conflicts.push(id);
      else decisions.set(id, decision);
    };
    for (const o of body.tool_outputs ?? []) {
      take(o.tool_call_id, 'client', { kind: 'output', output: o.output });
    }
    for (const a of body.approvals ?? []) {
      take(
        a.tool_call_id,
        'approval',
        a.approve
          ? { kind: 'approved' }
          : { kind: 'denied', reason: a.reason ?? 'The user did not approve it.' },
      );
    }
    if (conflicts.length > 0) {
      throw new AppError('TOOL_CALL_CONFLICT', undefined, {
        details: {
          tool_call_ids: conflicts,
          awaiting: pause.awaiting.map((c) => ({ id: c.id, name: c.name, type: c.type })),
        },
      });
    }
    const missing = pause.awaiting.filter((c) => !decisions.has(c.id));
    if (missing.length > 0) {
      throw new AppError('VALIDATION_FAILED', undefined, {
        details: missing.map((c) => ({
          in: 'body',
          path: c.type === 'client' ? '/tool_outputs' : '/approvals',
          message: `misses ${c.type === 'client' ? 'the output' : 'the approval'} of tool call ${c.id} (${c.name})`,
        })),
      });
    }
    return decisions;
  };

  let stopControl: (() => void) | undefined;
  let takeoverTimer: TimerHandle | undefined;
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
      // The event first, as at the end of a pause (finishPaused).
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
      // Held until the delivery is done, as after a pause (deliverLater).
      deliverLater(run, 'run.failed', snapshot(run));
    } else if (run.webhook?.last_delivery_status === 'pending') {
      deps.telemetry.runCoordination({ kind: 'takeover' });
      deliverLater(run, type, snapshot(run));
    } else {
      await runs.release(id);
    }
  };

  const takeOverOrphans = async (): Promise<void> => {
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
              expire(id, token).catch((err: unknown) => {
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
        const plan = planRun(body, resolveAgent(body.agent), {
          defaultModel: deps.models.active(),
          compileFormat,
          configHash,
          toolNames: tools.names(),
          mcpTools: (server) => tools.mcpTools(server) ?? [],
          maxActionTtlMs: deps.maxActionTtlMs,
          maxSamples: deps.maxSamples,
        });
        const numCtx = numCtxProblem(plan.options, plan.model, deps.numCtx);
        if (numCtx) throw invalid('/options/num_ctx', numCtx);
        if (plan.webhook) await checkWebhook(plan.webhook.url);
        // Client tools' schemas compile now: a bad one is the request's 400, not the run's end.
        for (const tool of plan.clientTools) compileToolSchema(tool);
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
        await expire(id, pause.token);
        throw new AppError('RUN_NOT_PAUSED', "The run's required action expired.", {
          details: { status: 'incomplete', stop_reason: 'action_expired' },
        });
      }
      const decisions = decide(pause, body);
      const claimed = await runs.claimPause(id, pause.token);
      if (!claimed) {
        throw new AppError('RUN_NOT_PAUSED', 'Another request resumed or ended this pause first.');
      }
      expiries.get(id)?.cancel();
      expiries.delete(id);
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
        ? { schema: plan.formatSchema, validate: compileFormat(plan.formatSchema) }
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
            await finishPaused(
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
      for (const timer of expiries.values()) timer.cancel();
      expiries.clear();
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
      let timer: TimerHandle | undefined;
      await Promise.race([
        Promise.allSettled(followUps),
        new Promise<void>((resolve) => {
          timer = deps.clock.after(STOP_FOLLOW_UPS_MS, resolve);
        }),
      ]);
      timer?.cancel();
      await runs.stop();
    },
  };
}
