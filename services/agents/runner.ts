import { randomBytes } from 'node:crypto';
import type { ValidateFunction } from 'ajv';
import { isAppError } from '../../src/errors';
import type { Logger } from '../../src/logger';
import type { ChatResponse, Message, OllamaService, Tool } from '../ollama-types';
import type { Telemetry } from '../telemetry';
import type { ToolRegistry } from '../tools/registry';
import type { RunEvents } from './events';
import { createRepeatDetector } from './limits';
import { preview, RunStop, runErrorOf, snapshot } from './run-object';
import { checkAnswer, repairPrompt } from './structured-output';
import type { Timers } from './timers';
import { createToolExecutor, type PendingCall } from './tool-executor';
import {
  statusFor,
  type AgentLimits,
  type AgentOptions,
  type AgentRun,
  type ModelStep,
} from './types';

export interface RunnerDeps {
  /** The only way to Ollama (services/ollama-types.ts). */
  ollama: OllamaService;
  tools: ToolRegistry;
  telemetry: Telemetry;
  logger: Logger;
  timers: Timers;
  now: () => number;
}

/** Everything one run needs, resolved by the service before the loop starts. */
export interface RunSpec {
  run: AgentRun;
  events: RunEvents;
  /** Aborted by cancel (or a streaming client that went away). */
  cancel: AbortSignal;
  /** For telemetry: a registered agent name or `inline`. */
  agentLabel: string;
  model: string;
  /** The conversation so far: system prompt, then the caller's input or messages. */
  messages: Message[];
  toolNames: readonly string[];
  options: AgentOptions;
  limits: AgentLimits;
  /** Set when a structured answer was asked for (`response_format: json_schema`). */
  format?: { schema: Record<string, unknown>; validate: ValidateFunction };
}

const PREVIEW_CHARS = 500;
const NS_PER_MS = 1e6;

function callId(): string {
  return `call_${randomBytes(6).toString('hex')}`;
}

/** Ollama's tool call as we keep it: object arguments and an id (Ollama ≥0.12.10 sends one). */
function pendingCalls(message: Message): PendingCall[] {
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
    return {
      id: typeof id === 'string' && id !== '' ? id : callId(),
      name: call.function.name,
      arguments: args !== null && typeof args === 'object' ? (args as Record<string, unknown>) : {},
    };
  });
}

/** Maps a failure of an Ollama call to the run's stop reason (the run's own abort wins). */
function stopFor(err: unknown, signal: AbortSignal, logger: Logger): RunStop {
  if (signal.aborted && signal.reason instanceof RunStop) return signal.reason;
  if (err instanceof RunStop) return err;
  if (isAppError(err)) {
    switch (err.code) {
      case 'OLLAMA_UNAVAILABLE':
      case 'OLLAMA_BUSY':
      case 'OLLAMA_TIMEOUT':
      case 'QUEUE_FULL':
      case 'QUEUE_TIMEOUT':
        return new RunStop('ollama_unavailable', err.message);
      case 'MODEL_NOT_FOUND':
      case 'OLLAMA_UPSTREAM_ERROR':
        return new RunStop('model_error', err.message);
      default:
        break;
    }
  }
  logger.error('agent run failed', { error: err });
  return new RunStop('internal_error', 'Internal error.');
}

/** Runs at most `limit` tasks at once, keeping results in input order. */
async function mapBounded<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next;
      next += 1;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/**
 * The tool-calling loop. Calls Ollama (streamed, so tokens become `message.delta` events as
 * they arrive), runs the tool calls it asks for, feeds results back as `tool` messages, and
 * repeats until an answer without tool calls or a limit trips. Updates `spec.run` in place,
 * emits the run's events and always ends with exactly one terminal event; never throws.
 */
export function createAgentRunner(deps: RunnerDeps) {
  const { ollama, tools, telemetry, logger, timers, now } = deps;
  const executor = createToolExecutor({ tools, timers, telemetry, logger });
  const iso = (): string => new Date(now()).toISOString();
  // The normal end of every run: one immutable instance, not a new Error (and stack) per run.
  const endTurn = new RunStop('end_turn', '');

  async function execute(spec: RunSpec): Promise<AgentRun> {
    const { run, events, limits } = spec;
    const started = now();
    // One signal for everything the run starts: cancel and the run deadline both abort it.
    const controller = new AbortController();
    const signal = controller.signal;
    const onCancel = (): void =>
      controller.abort(new RunStop('cancelled', 'The run was cancelled.'));
    if (spec.cancel.aborted) onCancel();
    spec.cancel.addEventListener('abort', onCancel, { once: true });
    const deadline = timers.after(limits.timeout_ms, () =>
      controller.abort(
        new RunStop('timeout', `The run did not finish within ${limits.timeout_ms} ms.`),
      ),
    );

    const messages = run.output.messages;
    messages.push(...spec.messages);
    const ollamaTools: Tool[] = tools.forOllama(spec.toolNames);
    const repeats = createRepeatDetector(limits.max_repeat_tool_call);
    let failedStep: number | undefined;

    const modelStep = async (
      purpose: ModelStep['purpose'],
      format?: Record<string, unknown>,
    ): Promise<Message> => {
      const step: ModelStep = {
        index: run.steps.length,
        kind: 'model',
        purpose,
        model: spec.model,
        status: 'ok',
        started_at: iso(),
        ended_at: null,
        duration_ms: null,
        usage: { input_tokens: 0, output_tokens: 0 },
        ollama: null,
        tool_calls: 0,
      };
      run.steps.push(step);
      run.usage.model_calls += 1;
      const t0 = now();
      events.emit('step.started', {
        step_index: step.index,
        kind: 'model',
        purpose,
        model: spec.model,
      });
      telemetry.agentStep({ agent: spec.agentLabel, kind: 'model' });
      const reply: Message = { role: 'assistant', content: '' };
      let final: ChatResponse | undefined;
      try {
        if (signal.aborted) throw signal.reason;
        const stream = await ollama.chatStream(
          {
            model: spec.model,
            messages,
            ...(purpose === 'loop' && ollamaTools.length > 0 ? { tools: ollamaTools } : {}),
            ...(format ? { format } : {}),
            ...(Object.keys(spec.options).length > 0 ? { options: spec.options } : {}),
          },
          { signal },
        );
        for await (const chunk of stream) {
          const m = chunk.message as Message | undefined;
          if (m?.content) {
            reply.content += m.content;
            events.emit('message.delta', { step_index: step.index, text: m.content });
          }
          if (m?.thinking) reply.thinking = (reply.thinking ?? '') + m.thinking;
          if (m?.tool_calls?.length)
            reply.tool_calls = [...(reply.tool_calls ?? []), ...m.tool_calls];
          if (chunk.done) final = chunk;
        }
        const t = stream.timings;
        step.ollama = {
          load_ms: (final?.load_duration ?? 0) / NS_PER_MS,
          prompt_eval_ms: (final?.prompt_eval_duration ?? 0) / NS_PER_MS,
          eval_ms: (final?.eval_duration ?? 0) / NS_PER_MS,
          total_ms: (final?.total_duration ?? 0) / NS_PER_MS,
          queue_ms: t.queueMs,
          first_byte_ms: t.firstByteMs ?? null,
          done_reason: final?.done_reason ?? null,
        };
      } catch (err) {
        const stop = stopFor(err, signal, logger);
        step.status = stop.reason === 'cancelled' ? 'cancelled' : 'error';
        step.error = stop.message;
        failedStep = step.index;
        throw stop;
      } finally {
        step.usage = {
          input_tokens: final?.prompt_eval_count ?? 0,
          output_tokens: final?.eval_count ?? 0,
        };
        run.usage.input_tokens += step.usage.input_tokens;
        run.usage.output_tokens += step.usage.output_tokens;
        step.ended_at = iso();
        step.duration_ms = now() - t0;
        step.tool_calls = reply.tool_calls?.length ?? 0;
        events.emit('step.completed', {
          step_index: step.index,
          kind: 'model',
          status: step.status,
          usage: step.usage,
          duration_ms: step.duration_ms,
        });
      }
      // Keep the ids we use, so the transcript ties each result to its call.
      const calls = pendingCalls(reply);
      if (calls.length > 0) {
        reply.tool_calls = calls.map((c) => ({
          id: c.id,
          function: { name: c.name, arguments: c.arguments },
        }));
      }
      messages.push(reply);
      return reply;
    };

    const toolRound = async (calls: PendingCall[]): Promise<void> => {
      if (run.usage.tool_calls + calls.length > limits.max_tool_calls) {
        throw new RunStop(
          'max_tool_calls',
          `The model asked for more than max_tool_calls (${limits.max_tool_calls}) tool calls.`,
        );
      }
      for (const call of calls) {
        if (repeats.record(call.name, call.arguments)) {
          throw new RunStop(
            'tool_loop',
            `The model called ${call.name} with the same arguments more than ${limits.max_repeat_tool_call} times.`,
            { tool: call.name, arguments: call.arguments },
          );
        }
      }
      run.usage.tool_calls += calls.length;
      const steps = calls.map((call) => {
        const step = {
          index: run.steps.length,
          kind: 'tool' as const,
          status: 'ok' as const,
          started_at: iso(),
          ended_at: null,
          duration_ms: null,
          tool: {
            id: call.id,
            name: call.name,
            arguments: call.arguments,
            status: 'ok' as const,
            output_preview: '',
            attempts: 0,
          },
        };
        run.steps.push(step);
        events.emit('tool_call.created', {
          step_index: step.index,
          id: call.id,
          name: call.name,
          arguments: call.arguments,
        });
        telemetry.agentStep({ agent: spec.agentLabel, kind: 'tool' });
        return step;
      });
      const outcomes = await mapBounded(calls, limits.max_parallel_tool_calls, async (call) => {
        const i = calls.indexOf(call);
        const t0 = now();
        const outcome = await executor.execute(call, {
          allowed: spec.toolNames,
          toolTimeoutMs: limits.tool_timeout_ms,
          maxOutputChars: limits.max_tool_output_chars,
          signal,
          agent: spec.agentLabel,
        });
        const step = steps[i];
        if (step) {
          Object.assign(step, { status: outcome.status, ended_at: iso(), duration_ms: now() - t0 });
          Object.assign(step.tool, {
            status: outcome.status,
            output_preview: preview(outcome.content, PREVIEW_CHARS),
            attempts: outcome.attempts,
            ...(outcome.error !== undefined ? { error: outcome.error } : {}),
          });
          events.emit('tool_call.completed', {
            step_index: step.index,
            id: call.id,
            name: call.name,
            status: outcome.status,
            output_preview: step.tool.output_preview,
            duration_ms: step.duration_ms,
            ...(outcome.error !== undefined ? { error: outcome.error } : {}),
          });
        }
        return outcome;
      });
      // Results go back in call order, whatever order they finished in.
      calls.forEach((call, i) => {
        messages.push({ role: 'tool', content: outcomes[i]?.content ?? '', tool_name: call.name });
      });
    };

    const structured = async (answer: Message): Promise<void> => {
      if (!spec.format) return;
      let check = checkAnswer(answer.content, spec.format.validate);
      if (!check.ok) {
        messages.push({ role: 'user', content: repairPrompt(check.problems) });
        const repaired = await modelStep('repair', spec.format.schema);
        run.output.text = repaired.content;
        check = checkAnswer(repaired.content, spec.format.validate);
      }
      if (!check.ok) {
        throw new RunStop(
          'output_invalid',
          'The answer does not match the requested JSON schema.',
          check.problems,
        );
      }
      run.output.json = check.value;
    };

    run.status = 'in_progress';
    run.started_at = iso();
    events.emit('run.in_progress', { status: run.status });
    let stop: RunStop;
    try {
      for (let loopSteps = 1; ; loopSteps += 1) {
        const reply = await modelStep('loop');
        run.output.text = reply.content;
        const calls = pendingCalls(reply);
        if (calls.length === 0) {
          await structured(reply);
          break;
        }
        await toolRound(calls);
        if (loopSteps >= limits.max_steps) {
          throw new RunStop(
            'max_steps',
            `The run used all ${limits.max_steps} model steps and the model still wanted tools.`,
          );
        }
      }
      stop = endTurn;
    } catch (err) {
      stop = stopFor(err, signal, logger);
    } finally {
      deadline.cancel();
      spec.cancel.removeEventListener('abort', onCancel);
    }
    // Work of ours still holding the signal (a slow tool that ignores it) is told to stop.
    if (!signal.aborted) controller.abort(stop);

    run.status = statusFor(stop.reason);
    run.stop_reason = stop.reason;
    run.error = stop.reason === 'end_turn' ? null : runErrorOf(stop, failedStep);
    run.completed_at = iso();
    run.usage.total_tokens = run.usage.input_tokens + run.usage.output_tokens;
    run.usage.wall_ms = now() - started;
    events.emit(`run.${run.status}` as 'run.completed', { run: snapshot(run) });
    telemetry.agentRun({
      agent: spec.agentLabel,
      status: run.status,
      stopReason: stop.reason,
      durationS: run.usage.wall_ms / 1000,
    });
    return run;
  }

  return { execute };
}

export type AgentRunner = ReturnType<typeof createAgentRunner>;
