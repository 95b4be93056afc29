import { createHash } from 'node:crypto';
import type { ValidateFunction } from 'ajv';
import type { Clock, TimerHandle } from '../../src/clock';
import { AppError } from '../../src/errors';
import type { Logger } from '../../src/logger';
import type { SchemaRegistry } from '../../src/validation';
import { canAccess, type AdmissionTicket, type Principal } from '../../src/principal';
import { SsrfError, type SsrfGuard } from '../net';
import type { Telemetry } from '../metrics';
import type { Message, ModelManager } from '../ollama';
import type { ToolRegistry } from '../tools';
import { isTerminalEvent, type RunEventType } from './events';
import { bodyHash, canonicalJson, type IdempotencyRepository } from './idempotency';
import { agentProblems, numCtxProblem, type AgentChecks, type AgentRegistry } from './registry';
import { planRun, type RunPlan } from './plan';
import {
  createRemoteRunHandle,
  createRunHandle,
  interruptedStop,
  type RunHandle,
} from './run-handle';
import { createIsoClock, createRunIds, newRun, runErrorOf, snapshot } from './run-object';
import type { RunRepository, StoredRun } from './run-repository';
import type { AgentRunner } from './runner';
import type {
  AgentDefinition,
  AgentLimits,
  AgentOptions,
  AgentRun,
  ResponseFormat,
  ThinkSetting,
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
  stream?: boolean;
  background?: boolean;
  webhook?: { url: string; events?: string[] };
  metadata?: Record<string, string>;
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

export interface AgentsService {
  listAgents(): readonly AgentDefinition[];
  /** @throws AppError AGENT_NOT_FOUND */
  getAgent(name: string): AgentDefinition;
  /**
   * Creates a run and starts it (or returns the earlier run for a repeated Idempotency-Key).
   * @throws AppError VALIDATION_FAILED (inline agent, schema, webhook URL), AGENT_NOT_FOUND,
   *   IDEMPOTENCY_CONFLICT, TOO_MANY_RUNS
   */
  start(body: RunRequest, ctx: StartContext): Promise<StartResult>;
  /** A run the principal may see. @throws AppError RUN_NOT_FOUND (also for someone else's run). */
  find(id: string, principal: Principal | undefined): Promise<RunHandle>;
  /** Cancels a run (idempotent) and resolves with it once it stopped. @throws RUN_NOT_FOUND */
  cancel(id: string, principal: Principal | undefined): Promise<AgentRun>;
  /** Ends every running run as cancelled by the shutdown (SHUTTING_DOWN, retryable). */
  cancelAll(): void;
  /**
   * Starts the background work: the repository's (leases, control messages) and, with
   * `takeoverEveryMs`, the periodic takeover of runs whose replica died.
   */
  startWork(): void;
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
  /** Timers of the takeover loop and of cross-replica cancels. */
  clock: Pick<Clock, 'after' | 'every'>;
  telemetry: Pick<Telemetry, 'runCoordination' | 'agentRun'>;
  /** How often to claim runs whose replica died (unset: never; one replica has no orphans). */
  takeoverEveryMs?: number;
  /** How long a cancel of a run executing elsewhere waits for its terminal event. */
  cancelWaitMs?: number;
}

/** Bound of each cache below (compiled response_format schemas, configuration hashes). */
const CACHE_MAX = 100;

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
      if (err instanceof SsrfError) throw invalid('/webhook/url', `is refused: ${err.message}`);
      throw err;
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

  /** The handle of a run that finished: it only replays and answers. */
  const finishedHandle = (stored: StoredRun): RunHandle =>
    createRunHandle({
      run: stored.run,
      owner: stored.owner,
      runs,
      controller: new AbortController(),
      done: Promise.resolve(stored.run),
      settled: Promise.resolve(),
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
    const stored = await runs.get(id);
    if (!stored) return undefined;
    return stored.finishedAt !== null ? finishedHandle(stored) : remoteHandle(stored);
  };

  const find = async (id: string, principal: Principal | undefined): Promise<RunHandle> => {
    const handle = await handleOf(id);
    // Someone else's run is reported as missing, so ids cannot be probed.
    if (!handle || !canAccess(principal, handle.owner)) throw new AppError('RUN_NOT_FOUND');
    return handle;
  };

  /**
   * Stores a planned run and starts it here; resolves with its handle. A `durable` run must be
   * in the shared store before it starts (see RunRepository.create).
   */
  const create = async (
    plan: RunPlan,
    owner: string,
    ticket: AdmissionTicket | undefined,
    durable: boolean,
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
    await runs.create(run, owner, { durable });
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
    const handle = createRunHandle({
      run,
      owner,
      runs,
      controller,
      done,
      settled: done.then(() => delivered),
    });
    local.set(id, handle);
    void handle.settled().then(async () => {
      local.delete(id);
      // A run another replica took over is that replica's to record; this one only lets go.
      const wasLost = lost.delete(id);
      // The webhook's delivery record, then nobody needs to hold the run any longer (a run
      // whose release did not reach Redis is claimed after its lease and released then).
      if (run.webhook && !wasLost) {
        await runs.save(run).catch((err: unknown) => {
          logger.warn('webhook delivery record not stored', { run_id: id, error: err });
        });
      }
      await runs.release(id).catch((err: unknown) => {
        logger.warn('finished run not released', { run_id: id, error: err });
      });
    });
    emit('run.created', { status: run.status, agent: run.agent.name, model: plan.model });
    if (run.webhook) {
      await handle.follow(1, (event) => {
        if (!isTerminalEvent(event.type) || lost.has(id)) return;
        delivered = deliver(run, event.type, event.data.run as AgentRun).catch((err: unknown) => {
          logger.error('webhook delivery failed unexpectedly', { run_id: id, error: err });
        });
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
      agentLabel: plan.agentLabel,
      owner,
      model: plan.model,
      messages: plan.messages,
      toolNames: plan.toolNames,
      options: plan.options,
      limits: plan.limits,
      streamTokens: plan.streamTokens,
      ...(plan.think !== undefined ? { think: plan.think } : {}),
      ...(plan.format ? { format: plan.format } : {}),
      ...(ticket ? { ticket } : {}),
    });
    return handle;
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
      await deliver(run, 'run.failed', snapshot(run));
    } else if (run.webhook?.last_delivery_status === 'pending') {
      deps.telemetry.runCoordination({ kind: 'takeover' });
      await deliver(run, type, snapshot(run));
    }
    if (run.webhook) await runs.save(run);
    await runs.release(id);
  };

  const takeOverOrphans = async (): Promise<void> => {
    if (takingOver) return;
    takingOver = true;
    try {
      for (const id of await runs.claimOrphans()) {
        await takeOver(id).catch((err: unknown) => {
          logger.error('orphaned run not taken over', { run_id: id, error: err });
        });
      }
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
        const handle = earlier !== undefined ? await handleOf(earlier) : undefined;
        if (handle) return { handle, replayed: true };
      }
      let handle: RunHandle;
      try {
        const plan = planRun(body, resolveAgent(body.agent), {
          defaultModel: deps.models.active(),
          compileFormat,
          configHash,
        });
        const numCtx = numCtxProblem(plan.options, plan.model, deps.numCtx);
        if (numCtx) throw invalid('/options/num_ctx', numCtx);
        if (plan.webhook) await checkWebhook(plan.webhook.url);
        // Background and webhook runs are polled, followed and delivered through any replica.
        handle = await create(
          plan,
          ctx.owner,
          ctx.ticket,
          body.background === true || !!plan.webhook,
        );
      } catch (err) {
        if (key !== undefined) await idempotency.release(ctx.owner, key).catch(() => undefined);
        throw err;
      }
      if (key !== undefined) await idempotency.remember(ctx.owner, key, hash, handle.id);
      return { handle, replayed: false };
    },

    find,

    async cancel(id, principal) {
      return snapshot(await (await find(id, principal)).cancel());
    },

    cancelAll() {
      for (const handle of local.values()) void handle.cancel('shutdown');
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
      await runs.stop();
    },
  };
}
