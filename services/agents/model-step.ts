import { randomBytes } from 'node:crypto';
import { isAppError } from '../../src/errors';
import type { Clock } from '../../src/clock';
import type { Logger } from '../../src/logger';
import type {
  CallTimings,
  ChatResponse,
  GatewayChatRequest,
  Message,
  RouteHint,
  OllamaService,
  Tool,
} from '../ollama';
import type { Telemetry } from '../metrics';
import { isRefusal } from './refusal';
import { RunStop } from './run-object';
import type { StepContext } from './run-context';
import type { PendingCall } from './tool-executor';
import type { ModelStep } from './types';

export interface ModelStepDeps {
  /** The only way to Ollama (services/ollama/types.ts). */
  ollama: OllamaService;
  telemetry: Telemetry;
  logger: Logger;
  clock: Pick<Clock, 'now'>;
  /** Counts each step's tokens for the run's owner (token usage and budgets). */
  usage?: TokenRecorder;
}

/** Where a model step's tokens are counted: per key id (the run's owner) and model. */
export interface TokenRecorder {
  record(
    keyId: string,
    model: string,
    tokens: { promptTokens?: number; completionTokens?: number },
  ): void;
}

const NS_PER_MS = 1e6;

function callId(): string {
  return `call_${randomBytes(6).toString('hex')}`;
}

/** Ollama's tool call as we keep it: object arguments and an id (Ollama ≥0.12.10 sends one). */
export function pendingCalls(message: Message): PendingCall[] {
  return (message.tool_calls ?? []).map((call) => {
    const raw = call.function.arguments as unknown;
    let args: unknown = raw;
    if (typeof raw === 'string') {
      try {
        args = JSON.parse(raw);
      } catch {
        args = { _unparsed: raw };
      }
    }
    const id = (call as { id?: unknown }).id;
    const index = (call.function as { index?: unknown }).index;
    return {
      id: typeof id === 'string' && id !== '' ? id : callId(),
      name: call.function.name,
      arguments: args !== null && typeof args === 'object' ? (args as Record<string, unknown>) : {},
      ...(typeof index === 'number' ? { index } : {}),
    };
  });
}

/** Maps a failure to the run's stop reason (the run's own abort reason wins). */
export function stopFor(err: unknown, signal: AbortSignal, logger: Logger): RunStop {
  if (signal.aborted && signal.reason instanceof RunStop) return signal.reason;
  if (err instanceof RunStop) return err;
  if (isAppError(err)) {
    // The gateway's own code, and when to retry, travel with the run's error.
    const details: Record<string, unknown> = { error_code: err.code };
    if (isRefusal(err)) details.refused = true;
    if (err.retryAfterS !== undefined) details.retry_after_ms = err.retryAfterS * 1000;
    const upstream = (err.details as { upstream_message?: unknown } | undefined)?.upstream_message;
    if (typeof upstream === 'string') details.upstream_message = upstream;
    switch (err.code) {
      case 'OLLAMA_UNAVAILABLE':
      case 'OLLAMA_BUSY':
      case 'OLLAMA_TIMEOUT':
      case 'QUEUE_FULL':
      case 'QUEUE_TIMEOUT':
      case 'OLLAMA_CLOUD_RATE_LIMITED':
        return new RunStop('ollama_unavailable', err.message, details);
      case 'OLLAMA_CONTEXT_EXCEEDED':
        return new RunStop('context_exceeded', err.message, details);
      case 'MODEL_NOT_FOUND':
      case 'MODEL_FAILING':
      case 'OLLAMA_UPSTREAM_ERROR':
      case 'OLLAMA_BAD_REQUEST':
      case 'OLLAMA_CLOUD_UNAUTHORIZED':
      case 'OLLAMA_CLOUD_FORBIDDEN':
        return new RunStop('model_error', err.message, details);
      default:
        break;
    }
  }
  logger.error('agent run failed', { error: err });
  return new RunStop('internal_error', 'Internal error.');
}

/** The `step.completed` event of a model step that was just closed (done, failed or cut). */
export function emitStepCompleted(ctx: StepContext, step: ModelStep): void {
  ctx.emit('step.completed', {
    step_index: step.index,
    kind: 'model',
    status: step.status,
    usage: step.usage,
    duration_ms: step.duration_ms,
  });
}

/** What one model call brought back, however it was made. */
interface ModelCall {
  final: ChatResponse | undefined;
  timings: CallTimings;
}

/**
 * One model step: an Ollama `/api/chat` call recorded as a `model` step with Ollama's durations
 * and the gateway's queue and byte timings. Resolves with the assistant message (already
 * appended to the transcript). A failure throws the run's RunStop and leaves the step open: the
 * run's end closes it with the reason.
 *
 * How the call is made depends on who may watch the tokens (`spec.streamTokens`):
 * - streamed, background and webhook runs stream from Ollama, and every chunk becomes a
 *   `message.delta` (and `thinking.delta` when the agent asked for thinking) the moment it
 *   arrives, for the run's own stream and anyone attached through `/events`;
 * - an answered run's caller only gets the finished run: the call streams from Ollama all the
 *   same (the first-byte and idle deadlines bound it), its chunks are joined into one answer,
 *   and its text leaves as one `message.delta` (one `thinking.delta`) when the step ends.
 */
export function createModelStep(deps: ModelStepDeps) {
  const { ollama, telemetry, logger } = deps;
  const { now } = deps.clock;
  /**
   * Each run's placement among the Ollama backends: its agent and conversation pick the backend
   * on a tie, and the service records the backend here so the run's later steps stay on it.
   */
  const placements = new WeakMap<object, RouteHint>();
  function routeOf(ctx: StepContext): RouteHint {
    const { run } = ctx.spec;
    let hint = placements.get(run);
    if (!hint) {
      const opening = run.output.messages.find((m) => m.role !== 'system')?.content ?? '';
      hint = { affinity: `${ctx.spec.agentLabel}\u0000${opening.slice(0, 512)}` };
      placements.set(run, hint);
    }
    return hint;
  }

  /** Adds a piece of the answer (a chunk, or the whole answer) to `reply` and emits its deltas. */
  function absorb(ctx: StepContext, step: ModelStep, reply: Message, m: Message | undefined): void {
    if (m?.thinking) {
      reply.thinking = (reply.thinking ?? '') + m.thinking;
      if (ctx.spec.think !== undefined && ctx.spec.think !== false) {
        ctx.emit('thinking.delta', { step_index: step.index, text: m.thinking });
      }
    }
    if (m?.content) {
      reply.content += m.content;
      ctx.emit('message.delta', { step_index: step.index, text: m.content });
    }
    if (m?.tool_calls?.length) reply.tool_calls = [...(reply.tool_calls ?? []), ...m.tool_calls];
  }

  /** The step's Ollama call: streamed chunk by chunk, or (answered runs) one whole answer. */
  async function call(
    ctx: StepContext,
    step: ModelStep,
    req: GatewayChatRequest,
    reply: Message,
  ): Promise<ModelCall> {
    const { signal } = ctx;
    const route = routeOf(ctx);
    const opts = { signal, route, ...(ctx.spec.ticket ? { ticket: ctx.spec.ticket } : {}) };
    if (!ctx.spec.streamTokens) {
      const { response, timings } = await ollama.chat(req, opts);
      absorb(ctx, step, reply, response.message as Message | undefined);
      return { final: response, timings };
    }
    const stream = await ollama.chatStream(req, opts);
    let final: ChatResponse | undefined;
    for await (const chunk of stream) {
      absorb(ctx, step, reply, chunk.message as Message | undefined);
      if (chunk.done) final = chunk;
    }
    return { final, timings: stream.timings };
  }

  return async function modelStep(
    ctx: StepContext,
    purpose: ModelStep['purpose'],
    format?: Record<string, unknown>,
    /** The tools offered in this step (default: all of the run's). */
    tools: Tool[] = ctx.ollamaTools,
  ): Promise<Message> {
    const { spec, signal } = ctx;
    const { run } = spec;
    if (signal.aborted) throw stopFor(signal.reason, signal, logger);
    const step: ModelStep = {
      index: run.steps.length,
      kind: 'model',
      purpose,
      model: spec.model,
      status: 'ok',
      started_at: ctx.iso(),
      ended_at: null,
      duration_ms: null,
      usage: { input_tokens: 0, output_tokens: 0 },
      ollama: null,
      tool_calls: 0,
    };
    run.steps.push(step);
    run.usage.model_calls += 1;
    const t0 = now();
    ctx.emit('step.started', { step_index: step.index, kind: 'model', purpose, model: spec.model });
    telemetry.agentStep({ agent: spec.agentLabel, kind: 'model' });
    const reply: Message = { role: 'assistant', content: '' };
    const req: GatewayChatRequest = {
      model: spec.model,
      messages: run.output.messages,
      ...(purpose === 'loop' && tools.length > 0 ? { tools } : {}),
      ...(format ? { format } : {}),
      ...(spec.think !== undefined ? { think: spec.think } : {}),
      // Never drop early messages (tool results among them) to fit the context in silence:
      // a transcript that no longer fits ends the run as context_exceeded (ollama-api.md §4.6).
      truncate: false,
      ...(Object.keys(spec.options).length > 0 ? { options: spec.options } : {}),
    };
    let answer: ModelCall;
    try {
      answer = await call(ctx, step, req, reply);
    } catch (err) {
      throw stopFor(err, signal, logger);
    }
    // The run ended while the last bytes came in: what it reported stays as reported, and
    // nothing is recorded on the run after its terminal event.
    if (ctx.ended()) throw stopFor(signal.reason, signal, logger);

    const { final, timings: t } = answer;
    step.ollama = {
      load_ms: (final?.load_duration ?? 0) / NS_PER_MS,
      prompt_eval_ms: (final?.prompt_eval_duration ?? 0) / NS_PER_MS,
      eval_ms: (final?.eval_duration ?? 0) / NS_PER_MS,
      total_ms: (final?.total_duration ?? 0) / NS_PER_MS,
      queue_ms: t.queueMs,
      first_byte_ms: t.firstByteMs ?? null,
      last_byte_ms: t.ollamaMs ?? null,
      done_reason: final?.done_reason ?? null,
    };
    step.usage = {
      input_tokens: final?.prompt_eval_count ?? 0,
      output_tokens: final?.eval_count ?? 0,
    };
    run.usage.input_tokens += step.usage.input_tokens;
    run.usage.output_tokens += step.usage.output_tokens;
    if (spec.owner !== undefined) {
      deps.usage?.record(spec.owner, spec.model, {
        promptTokens: step.usage.input_tokens,
        completionTokens: step.usage.output_tokens,
      });
    }
    step.ended_at = ctx.iso();
    step.duration_ms = now() - t0;
    step.tool_calls = reply.tool_calls?.length ?? 0;
    emitStepCompleted(ctx, step);
    // Keep the ids we use, so the transcript ties each result to its call.
    const calls = pendingCalls(reply);
    if (calls.length > 0) {
      reply.tool_calls = calls.map((c) => ({
        id: c.id,
        function: {
          ...(c.index !== undefined ? { index: c.index } : {}),
          name: c.name,
          arguments: c.arguments,
        },
      }));
    }
    run.output.messages.push(reply);
    return reply;
  };
}

export type ModelStepRunner = ReturnType<typeof createModelStep>;
