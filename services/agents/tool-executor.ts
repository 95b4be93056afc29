import type { Logger } from '../../src/logger';
import type { Telemetry } from '../metrics';
import type { ToolRegistry } from '../tools';
import { ToolError, type ToolDefinition } from '../tools';
import { preview } from './run-object';
import type { Clock } from '../../src/clock';
import type { ToolStatus } from './types';

/** One call the model asked for, with the id it (or we) gave it. */
export interface PendingCall {
  id: string;
  name: string;
  arguments: Record<string, unknown>;
  /** The call's `function.index` as Ollama sent it, sent back with the call. */
  index?: number;
}

export interface CallOutcome {
  status: ToolStatus;
  /** What goes back to the model as the `tool` message (JSON text). */
  content: string;
  error?: string;
  attempts: number;
}

export interface ToolExecutorDeps {
  tools: ToolRegistry;
  clock: Clock;
  telemetry: Telemetry;
  logger: Logger;
}

export interface ExecuteOptions {
  /** Tools this agent may use; any other name is refused like an unknown tool. */
  allowed: readonly string[];
  toolTimeoutMs: number;
  maxOutputChars: number;
  /** The run's signal: when it aborts, running tools are abandoned and the run's reason thrown. */
  signal: AbortSignal;
  agent: string;
}

class ToolTimeout extends Error {}

/** Runs `tool` once with its own deadline; rejects with ToolTimeout or the run's abort reason. */
function attempt(
  tool: ToolDefinition,
  args: Record<string, unknown>,
  timeoutMs: number,
  runSignal: AbortSignal,
  clock: Clock,
): Promise<unknown> {
  const controller = new AbortController();
  const onRunAbort = (): void => controller.abort(runSignal.reason);
  runSignal.addEventListener('abort', onRunAbort, { once: true });
  const timer = clock.after(timeoutMs, () => controller.abort(new ToolTimeout()));
  // A tool that ignores its signal is abandoned, not awaited: the race settles on abort.
  const aborted = new Promise<never>((_, reject) => {
    controller.signal.addEventListener('abort', () => reject(controller.signal.reason as Error), {
      once: true,
    });
  });
  return Promise.race([tool.run(args, { signal: controller.signal }), aborted]).finally(() => {
    timer.cancel();
    runSignal.removeEventListener('abort', onRunAbort);
  });
}

/**
 * Executes tool calls for the loop: checks arguments against the tool's schema (a bad call
 * goes back to the model as a `rejected` result with the precise problem), applies the tool
 * deadline, retries a failed call once only when the tool is idempotent, and cuts long
 * results. Throws only when the run itself was aborted (its reason).
 */
export function createToolExecutor(deps: ToolExecutorDeps) {
  const { tools, clock, telemetry, logger } = deps;

  async function execute(call: PendingCall, opts: ExecuteOptions): Promise<CallOutcome> {
    const finish = (outcome: CallOutcome): CallOutcome => {
      telemetry.toolCall({
        tool: tools.get(call.name) ? call.name : 'unknown',
        outcome: outcome.status,
      });
      return outcome;
    };
    const tool = opts.allowed.includes(call.name) ? tools.get(call.name) : undefined;
    const problem = tool
      ? tools.checkArguments(call.name, call.arguments)
      : `Unknown tool "${call.name}". Available tools: ${opts.allowed.join(', ') || 'none'}.`;
    if (!tool || problem !== null) {
      const error = problem ?? 'Unknown tool.';
      return finish({ status: 'rejected', content: JSON.stringify({ error }), error, attempts: 0 });
    }
    const timeoutMs = Math.min(tool.timeoutMs, opts.toolTimeoutMs);
    const maxAttempts = tool.idempotent ? 2 : 1;
    let last: CallOutcome = { status: 'error', content: '', attempts: 0 };
    for (let n = 1; n <= maxAttempts; n += 1) {
      try {
        const result = await attempt(tool, call.arguments, timeoutMs, opts.signal, clock);
        const text = JSON.stringify(result ?? null);
        return finish({ status: 'ok', content: preview(text, opts.maxOutputChars), attempts: n });
      } catch (err) {
        if (opts.signal.aborted) throw opts.signal.reason;
        let error: string;
        let status: ToolStatus = 'error';
        let retry = true;
        if (err instanceof ToolTimeout) {
          status = 'timeout';
          error = `The tool did not finish within ${timeoutMs} ms.`;
        } else if (err instanceof ToolError) {
          error = err.message;
          retry = err.retryable;
        } else {
          logger.error('tool failed unexpectedly', { tool: call.name, error: err });
          error = 'The tool failed unexpectedly.';
        }
        last = { status, content: JSON.stringify({ error }), error, attempts: n };
        if (!retry) break;
      }
    }
    return finish(last);
  }

  return { execute };
}

export type ToolExecutor = ReturnType<typeof createToolExecutor>;
