import type { Logger } from '../../src/logger';
import type { Telemetry } from '../metrics';
import type { ToolRegistry } from '../tools';
import { createRepeatDetector } from './limits';
import { stopFor } from './model-step';
import { preview, RunStop } from './run-object';
import type { StepContext } from './run-context';
import type { Clock } from '../../src/clock';
import { createToolExecutor, type PendingCall } from './tool-executor';
import type { ToolStep } from './types';

export interface ToolRoundDeps {
  tools: ToolRegistry;
  telemetry: Telemetry;
  logger: Logger;
  clock: Clock;
}

const PREVIEW_CHARS = 500;

/** Runs at most `limit` tasks at once, keeping results in input order. */
async function mapBounded<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next;
      next += 1;
      results[i] = await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/**
 * The tool calls of one model reply: checks the tool-call limits (total and repeated calls),
 * records a `tool` step per call, runs them (bounded concurrency) and appends the results as
 * `tool` messages in call order. One instance per run (it keeps the repeat detector).
 */
export function createToolRound(deps: ToolRoundDeps, ctx: StepContext) {
  const { telemetry } = deps;
  const { now } = deps.clock;
  const executor = createToolExecutor(deps);
  const { spec } = ctx;
  const { run, limits } = spec;
  const repeats = createRepeatDetector(limits.max_repeat_tool_call);

  const checkLimits = (calls: PendingCall[]): void => {
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
  };

  const openStep = (call: PendingCall): ToolStep => {
    const step: ToolStep = {
      index: run.steps.length,
      kind: 'tool',
      status: 'ok',
      started_at: ctx.iso(),
      ended_at: null,
      duration_ms: null,
      tool: {
        id: call.id,
        name: call.name,
        arguments: call.arguments,
        status: 'ok',
        output_preview: '',
        attempts: 0,
      },
    };
    run.steps.push(step);
    ctx.emit('tool_call.created', {
      step_index: step.index,
      id: call.id,
      name: call.name,
      arguments: call.arguments,
    });
    telemetry.agentStep({ agent: spec.agentLabel, kind: 'tool' });
    return step;
  };

  return async function toolRound(calls: PendingCall[]): Promise<void> {
    checkLimits(calls);
    run.usage.tool_calls += calls.length;
    const steps = calls.map(openStep);
    const outcomes = await mapBounded(calls, limits.max_parallel_tool_calls, async (call, i) => {
      const t0 = now();
      const outcome = await executor.execute(call, {
        allowed: spec.toolNames,
        toolTimeoutMs: limits.tool_timeout_ms,
        maxOutputChars: limits.max_tool_output_chars,
        signal: ctx.signal,
        agent: spec.agentLabel,
      });
      const step = steps[i];
      if (step && !ctx.ended()) {
        Object.assign(step, {
          status: outcome.status,
          ended_at: ctx.iso(),
          duration_ms: now() - t0,
        });
        Object.assign(step.tool, {
          status: outcome.status,
          output_preview: preview(outcome.content, PREVIEW_CHARS),
          attempts: outcome.attempts,
          ...(outcome.error !== undefined ? { error: outcome.error } : {}),
        });
        ctx.emit('tool_call.completed', {
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
    if (ctx.ended()) throw stopFor(ctx.signal.reason, ctx.signal, deps.logger);
    // Results go back in call order, whatever order they finished in.
    calls.forEach((call, i) => {
      run.output.messages.push({
        role: 'tool',
        content: outcomes[i]?.content ?? '',
        tool_name: call.name,
        tool_call_id: call.id,
      });
    });
  };
}
