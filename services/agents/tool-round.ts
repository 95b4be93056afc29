import type { Logger } from '../../src/logger';
import type { Telemetry } from '../metrics';
import type { ToolRegistry } from '../tools';
import { createRepeatDetector } from './limits';
import { stopFor } from './model-step';
import { preview, RunStop } from './run-object';
import type { StepContext } from './run-context';
import type { Clock } from '../../src/clock';
import type { ActionDecision, PauseDraft, ResumePoint } from './pause';
import { createToolExecutor, type CallOutcome, type PendingCall } from './tool-executor';
import type { ActionCall, ToolStep } from './types';

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

/** A round that stopped for the caller: the reply's calls, what is known, what is awaited. */
export type RoundPause = Pick<PauseDraft, 'calls' | 'results' | 'awaiting'>;

/** A round taken up again after a pause: the results known then and the caller's answers. */
export interface ResumedRound {
  results: Readonly<Record<string, string>>;
  decisions: ResumePoint['decisions'];
}

/**
 * The tool calls of one model reply: checks the tool-call limits (total and repeated calls),
 * records a `tool` step per call, runs the server tools (bounded concurrency) and appends the
 * results as `tool` messages in call order. Calls of client tools, and of server tools that
 * need an approval, are checked against their schema and then awaited: the round returns a
 * {@link RoundPause} instead of appending anything, and is run again with the caller's
 * answers when the run resumes. One instance per run segment (it keeps the repeat detector).
 */
export function createToolRound(
  deps: ToolRoundDeps,
  ctx: StepContext,
  repeatSeed: ReadonlyArray<[string, number]> = [],
) {
  const { telemetry } = deps;
  const { now } = deps.clock;
  const executor = createToolExecutor(deps);
  const { spec } = ctx;
  const { run, limits } = spec;
  const repeats = createRepeatDetector(limits.max_repeat_tool_call, repeatSeed);

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

  const closeStep = (step: ToolStep, outcome: CallOutcome, durationMs: number): void => {
    Object.assign(step, {
      status: outcome.status,
      ended_at: ctx.iso(),
      duration_ms: durationMs,
    });
    Object.assign(step.tool, {
      status: outcome.status,
      output_preview: preview(outcome.content, PREVIEW_CHARS),
      attempts: outcome.attempts,
      ...(outcome.error !== undefined ? { error: outcome.error } : {}),
    });
    ctx.emit('tool_call.completed', {
      step_index: step.index,
      id: step.tool.id,
      name: step.tool.name,
      status: outcome.status,
      output_preview: step.tool.output_preview,
      duration_ms: step.duration_ms,
      ...(outcome.error !== undefined ? { error: outcome.error } : {}),
    });
  };

  /** A call decided without running anything here: recorded as a step that ends at once. */
  const settle = (call: PendingCall, outcome: CallOutcome): string => {
    closeStep(openStep(call), outcome, 0);
    return outcome.content;
  };

  const rejected = (error: string): CallOutcome => ({
    status: 'rejected',
    content: JSON.stringify({ error }),
    error,
    attempts: 0,
  });

  /** The outcome of an awaited call from the caller's answer. */
  const answered = (decision: ActionDecision): CallOutcome | undefined => {
    switch (decision.kind) {
      case 'output':
        return {
          status: 'ok',
          content: preview(decision.output, limits.max_tool_output_chars),
          attempts: 1,
        };
      case 'denied':
        return rejected(`The call was not approved: ${decision.reason}`);
      default:
        return undefined;
    }
  };

  async function round(
    calls: PendingCall[],
    resumed?: ResumedRound,
  ): Promise<RoundPause | undefined> {
    if (!resumed) {
      checkLimits(calls);
      run.usage.tool_calls += calls.length;
    }
    const contents = new Map<string, string>(Object.entries(resumed?.results ?? {}));
    const awaiting: ActionCall[] = [];
    const toRun: PendingCall[] = [];
    for (const call of calls) {
      if (contents.has(call.id)) continue;
      const decision = resumed?.decisions.get(call.id);
      if (decision) {
        const outcome = answered(decision);
        if (outcome) contents.set(call.id, settle(call, outcome));
        else toRun.push(call);
        continue;
      }
      const client = spec.clientTools.some((t) => t.name === call.name);
      if (client || spec.approvalTools.includes(call.name)) {
        const problem = client
          ? spec.checkClientArgs(call.name, call.arguments)
          : deps.tools.checkArguments(call.name, call.arguments);
        if (problem !== null) contents.set(call.id, settle(call, rejected(problem)));
        else {
          awaiting.push({
            id: call.id,
            name: call.name,
            arguments: call.arguments,
            type: client ? 'client' : 'approval',
          });
        }
        continue;
      }
      toRun.push(call);
    }
    const steps = toRun.map(openStep);
    await mapBounded(toRun, limits.max_parallel_tool_calls, async (call, i) => {
      const t0 = now();
      const outcome = await executor.execute(call, {
        allowed: spec.toolNames,
        toolTimeoutMs: limits.tool_timeout_ms,
        maxOutputChars: limits.max_tool_output_chars,
        signal: ctx.signal,
        agent: spec.agentLabel,
      });
      const step = steps[i];
      if (step && !ctx.ended()) closeStep(step, outcome, now() - t0);
      contents.set(call.id, outcome.content);
    });
    if (ctx.ended()) throw stopFor(ctx.signal.reason, ctx.signal, deps.logger);
    if (awaiting.length > 0) return { calls, results: Object.fromEntries(contents), awaiting };
    // Results go back in call order, whatever order they finished in.
    for (const call of calls) {
      run.output.messages.push({
        role: 'tool',
        content: contents.get(call.id) ?? '',
        tool_name: call.name,
        tool_call_id: call.id,
      });
    }
    return undefined;
  }

  return { round, repeatCounts: () => repeats.entries() };
}

export type ToolRound = ReturnType<typeof createToolRound>;
