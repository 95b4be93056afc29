import { Router, type Request, type RequestHandler, type Response } from 'express';
import { createMethodNotAllowed } from '../middleware/error-handler';
import { recordTimings } from '../middleware/server-timing';
import type { Validate } from '../middleware/validate';
import {
  refusalOf,
  type AgentRun,
  type AgentsService,
  type ResumeRequest,
  type RunHandle,
  type RunRequest,
} from '../services/agents';
import type { Clock } from '../src/clock';
import type { Lifecycle } from '../services/health';
import { AppError } from '../src/errors';
import { admissionTicket } from '../src/principal';
import { onResponseClose } from '../src/response-close';
import { streamRun } from './agents-sse';

export interface AgentsRouterOptions {
  service: AgentsService;
  validate: Validate;
  /** STREAM_HEARTBEAT_MS. */
  heartbeatMs: number;
  clock: Clock;
  /** Open SSE streams and answered runs are registered with it, so a shutdown ends them in-band. */
  lifecycle?: Pick<Lifecycle, 'trackStream'>;
  /** The caller's token budgets, checked before a run starts (middleware/token-budget). */
  tokenBudget?: RequestHandler;
}

/** Printable ASCII without spaces, as the Idempotency-Key draft allows, at most 255 characters. */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

function idempotencyKey(req: Request): string | undefined {
  const key = req.get('idempotency-key');
  if (key === undefined) return undefined;
  if (!IDEMPOTENCY_KEY.test(key)) {
    throw new AppError('VALIDATION_FAILED', undefined, {
      details: [
        {
          in: 'headers',
          path: '/idempotency-key',
          message: 'must be 1 to 255 printable ASCII characters',
        },
      ],
    });
  }
  return key;
}

/** The sequence number to replay after: Last-Event-ID wins over `?after=`. */
function replayAfter(req: Request): number {
  const header = req.get('last-event-id');
  if (header !== undefined) {
    if (!/^\d{1,15}$/.test(header.trim())) {
      throw new AppError('VALIDATION_FAILED', undefined, {
        details: [
          { in: 'headers', path: '/last-event-id', message: 'must be an event id (an integer)' },
        ],
      });
    }
    return Number(header.trim());
  }
  return (req.query as { after?: number }).after ?? 0;
}

/** The run once it finished or paused, or undefined when `ms` passed first (the run goes on). */
function waitUpTo(
  handle: RunHandle,
  clock: Clock,
  ms: number | undefined,
): Promise<AgentRun | undefined> {
  if (ms === undefined) return handle.wait();
  let timer = { cancel: (): void => undefined };
  const elapsed = new Promise<undefined>((resolve) => {
    timer = clock.after(ms, () => resolve(undefined));
  });
  return Promise.race([handle.wait(), elapsed]).finally(() => timer.cancel());
}

/**
 * `/agents`: list and show agents, run one (answered, streamed or in the background), read,
 * follow and cancel runs. Runs belong to the principal that created them.
 */
export function createAgentsRouter(options: AgentsRouterOptions): Router {
  const { service, validate, heartbeatMs, clock, lifecycle } = options;
  const sse = { heartbeatMs, clock, lifecycle };
  const router = Router();
  const runParams = validate({ params: 'agent-run.params' });
  const budget = options.tokenBudget ? [options.tokenBudget] : [];

  router
    .route('/agents')
    .get((_req, res) => {
      res.json({ object: 'list', data: service.listAgents() });
    })
    .all(createMethodNotAllowed(['GET', 'HEAD']));

  /**
   * Answers a run started or resumed by this request, in the mode the body asks for: streamed
   * (until the run ends or pauses), 202 at once (background, webhook), or the run once it ends
   * or pauses (202 with its Location when `wait_timeout_ms` passes first).
   */
  const answer = async (
    res: Response,
    handle: RunHandle,
    mode: {
      stream?: boolean;
      background?: boolean;
      wait_timeout_ms?: number;
      after: number;
      replayed: boolean;
    },
  ): Promise<void> => {
    const { replayed } = mode;
    res.setHeader('X-Run-Id', handle.id);
    if (replayed) res.setHeader('Idempotency-Replayed', 'true');
    if (mode.stream) {
      // Only the client that started the run cancels it by leaving; a replay just watches.
      await streamRun(res, handle, {
        ...sse,
        after: mode.after,
        cancelOnClose: !replayed,
        endOnPause: true,
      });
      return;
    }
    if (mode.background) {
      res.status(202).location(`/agents/runs/${handle.id}`).json(handle.run);
      return;
    }
    const abandon = (): void => {
      if (!res.writableEnded && !replayed) void handle.cancel();
    };
    const keepOnClose = onResponseClose(res, abandon);
    // At the shutdown deadline the run is stopped and this request still gets a whole answer
    // (the lifecycle waits until it has left), never a cut connection.
    const answered = new Promise<void>((resolve) => onResponseClose(res, resolve));
    lifecycle?.trackStream(res, async () => {
      await handle.cancel('shutdown');
      await answered;
    });
    const finished = await waitUpTo(handle, clock, mode.wait_timeout_ms);
    keepOnClose();
    if (!finished) {
      // The caller stopped waiting, not the run: it goes on as a background run would.
      res.status(202).location(`/agents/runs/${handle.id}`).json(handle.run);
      return;
    }
    // Refused before Ollama did any work: the refusal's own status and Retry-After.
    const refusal = refusalOf(finished);
    if (refusal) throw refusal;
    // Server-Timing: the queue wait and Ollama time of every model call of the run.
    for (const timings of handle.modelTimings()) recordTimings(res, timings);
    // res.json serialises at once, so the finished run needs no copy first.
    res.json(finished);
  };

  const run = async (req: Request, res: Response): Promise<void> => {
    const body = req.body as RunRequest;
    const { handle, replayed } = await service.start(body, {
      owner: req.principal?.id ?? 'anonymous',
      idempotencyKey: idempotencyKey(req),
      ticket: admissionTicket(req.principal, req.ip),
    });
    await answer(res, handle, {
      stream: body.stream,
      background: body.background || body.webhook !== undefined,
      wait_timeout_ms: body.wait_timeout_ms,
      after: 0,
      replayed,
    });
  };
  const runBody = validate({ body: 'agent-run.request' });

  // `/agents/run-agent` is the same endpoint under the other name the API design gives it.
  for (const path of ['/agents/run', '/agents/run-agent']) {
    router
      .route(path)
      .post(runBody, ...budget, run)
      .all(createMethodNotAllowed(['POST']));
  }

  router
    .route('/agents/runs/:id/resume')
    .post(
      validate({ params: 'agent-run.params', body: 'agent-run-resume.request' }),
      ...budget,
      async (req, res) => {
        const body = req.body as ResumeRequest;
        const { handle, after } = await service.resume(String(req.params.id), body, {
          principal: req.principal,
          ticket: admissionTicket(req.principal, req.ip),
        });
        await answer(res, handle, { ...body, after, replayed: false });
      },
    )
    .all(createMethodNotAllowed(['POST']));

  router
    .route('/agents/runs/:id')
    .get(runParams, async (req, res) => {
      res.json((await service.find(String(req.params.id), req.principal)).run);
    })
    .all(createMethodNotAllowed(['GET', 'HEAD']));

  router
    .route('/agents/runs/:id/events')
    .get(
      validate({ params: 'agent-run.params', query: 'agent-run-events.query' }),
      async (req, res) => {
        const handle = await service.find(String(req.params.id), req.principal);
        const after = replayAfter(req);
        await streamRun(res, handle, { ...sse, after, cancelOnClose: false });
      },
    )
    .all(createMethodNotAllowed(['GET']));

  router
    .route('/agents/runs/:id/cancel')
    .post(runParams, async (req, res) => {
      res.json(await service.cancel(String(req.params.id), req.principal));
    })
    .all(createMethodNotAllowed(['POST']));

  router
    .route('/agents/:name')
    .get(validate({ params: 'agent.params' }), (req, res) => {
      res.json(service.getAgent(String(req.params.name)));
    })
    .all(createMethodNotAllowed(['GET', 'HEAD']));

  return router;
}
