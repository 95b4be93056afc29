import type { Logger } from '../../src/logger';
import type { Message, OllamaService, Tool } from '../ollama';
import type { Telemetry } from '../metrics';
import type { ToolRegistry } from '../tools';
import type { RunEventType } from './events';
import { createModelStep, emitStepCompleted, pendingCalls, stopFor } from './model-step';
import type { TokenRecorder } from './model-step';
import type { RunSpec, StepContext } from './run-context';
import { createIsoClock, RunStop, runErrorOf, snapshot } from './run-object';
import { checkAnswer, repairPrompt } from './structured-output';
import type { Clock } from '../../src/clock';
import { runGroup } from './groupthink';
import { createToolRound, type RoundPause, type ToolRound } from './tool-round';
import { statusFor, type RunStep, type ToolChoice } from './types';

export type { RunSpec } from './run-context';

export interface RunnerDeps {
  /** The only way to Ollama (services/ollama/types.ts). */
  ollama: OllamaService;
  tools: ToolRegistry;
  telemetry: Telemetry;
  logger: Logger;
  clock: Clock;
  /** Counts each model step's tokens for the run's owner. */
  usage?: TokenRecorder;
}

/** Why the run was stopped from outside: the caller's RunStop (shutdown), else a cancel. */
function cancelStop(signal: AbortSignal): RunStop {
  return signal.reason instanceof RunStop
    ? signal.reason
    : new RunStop('cancelled', 'The run was cancelled.');
}

/**
 * The tool-calling loop. Calls Ollama (streamed, so tokens become `message.delta` events as
 * they arrive), runs the tool calls it asks for, feeds results back as `tool` messages, and
 * repeats until an answer without tool calls or a limit trips. Updates `spec.run` in place,
 * emits the run's events and always ends with exactly one terminal event; never throws.
 *
 * A stop from outside (cancel, the run deadline, shutdown) ends the run synchronously: the
 * steps in flight are closed with the reason, the terminal event goes out at once and the
 * run's signal aborts the Ollama request and the tools. That is what lets a shutdown write a
 * stream's terminal event before its response is ended. The loop unwinds afterwards without
 * recording or emitting anything more.
 */
export function createAgentRunner(deps: RunnerDeps) {
  const { tools, telemetry, logger, clock } = deps;
  const { now } = clock;
  const modelStep = createModelStep(deps);
  const iso = createIsoClock(now);
  // The normal end of every run: one immutable instance, not a new Error (and stack) per run.
  const endTurn = new RunStop('end_turn', '');

  /** Closes the steps still open when the run ended; returns the first one's index. */
  function closeOpenSteps(ctx: StepContext, stop: RunStop): number | undefined {
    let first: number | undefined;
    const open = ctx.spec.run.steps.filter((s: RunStep) => s.ended_at === null);
    for (const step of open) {
      first ??= step.index;
      step.ended_at = iso();
      step.duration_ms = now() - Date.parse(step.started_at);
      if (step.kind === 'model') {
        step.status = stop.reason === 'cancelled' ? 'cancelled' : 'error';
        step.error = stop.message;
        emitStepCompleted(ctx, step);
      } else {
        step.status = 'error';
        Object.assign(step.tool, { status: 'error', error: stop.message });
        ctx.emit('tool_call.completed', {
          step_index: step.index,
          id: step.tool.id,
          name: step.tool.name,
          status: 'error',
          output_preview: '',
          duration_ms: step.duration_ms,
          error: stop.message,
        });
      }
    }
    return first;
  }

  /** Whether a reply obeys a forced tool choice. */
  const obeys = (reply: Message, choice: ToolChoice): boolean => {
    const calls = reply.tool_calls ?? [];
    if (typeof choice === 'object') return calls.some((c) => c.function.name === choice.name);
    return choice !== 'required' || calls.length > 0;
  };

  /**
   * The tool-calling loop of one run segment (the whole run, or what follows a resume).
   * Resolves with the round it paused at, or undefined when the model gave its final answer.
   */
  async function loop(ctx: StepContext, round: ToolRound): Promise<RoundPause | undefined> {
    const { spec } = ctx;
    const { run, limits } = spec;
    let loopSteps = run.steps.filter((s) => s.kind === 'model' && s.purpose === 'loop').length;
    const tooManySteps = (): RunStop =>
      new RunStop(
        'max_steps',
        `The run used all ${limits.max_steps} model steps and the model still wanted tools.`,
      );
    if (spec.resume) {
      const { pause, decisions } = spec.resume;
      const paused = await round.round(pause.calls, { results: pause.results, decisions });
      if (paused) return paused;
      if (loopSteps >= limits.max_steps) throw tooManySteps();
    }
    // A forced choice (required, or one tool by name) holds for the first model step only, as
    // in the OpenAI Agents SDK: after that the model may answer, or the loop would never end.
    // Ollama has no tool_choice: `{name}` offers only that tool, and a reply that disobeys gets
    // one corrective turn before the run ends as tool_choice_unmet.
    let choice: ToolChoice = loopSteps === 0 ? spec.toolChoice : 'auto';
    for (;;) {
      const tools =
        typeof choice === 'object'
          ? ctx.ollamaTools.filter((t) => t.function.name === (choice as { name: string }).name)
          : ctx.ollamaTools;
      loopSteps += 1;
      let reply = await modelStep(ctx, 'loop', undefined, tools);
      if (choice !== 'auto' && choice !== 'none' && !obeys(reply, choice)) {
        const wanted = typeof choice === 'object' ? `the tool ${choice.name}` : 'one of the tools';
        run.output.messages.push({
          role: 'user',
          content: `You must call ${wanted} now, before answering.`,
        });
        loopSteps += 1;
        reply = await modelStep(ctx, 'loop', undefined, tools);
        if (!obeys(reply, choice)) {
          throw new RunStop(
            'tool_choice_unmet',
            `The model did not call ${wanted} as tool_choice requires.`,
          );
        }
      }
      if (choice !== 'none') choice = 'auto';
      run.output.text = reply.content;
      const calls = pendingCalls(reply);
      if (calls.length === 0) break;
      const paused = await round.round(calls);
      if (paused) return paused;
      if (loopSteps >= limits.max_steps) throw tooManySteps();
    }
    if (!spec.format) return undefined;
    let check = checkAnswer(run.output.text, spec.format.validate);
    if (!check.ok) {
      run.output.messages.push({ role: 'user', content: repairPrompt(check.problems) });
      const repaired = await modelStep(ctx, 'repair', spec.format.schema);
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
    return undefined;
  }

  /** The tools offered to the model: the server tools, then the client tools. */
  const offered = (spec: RunSpec): Tool[] =>
    spec.toolChoice === 'none'
      ? []
      : [
          ...tools.forOllama(spec.toolNames),
          ...spec.clientTools.map((t): Tool => ({
            type: 'function',
            function: {
              name: t.name,
              description: t.description,
              parameters: t.parameters as NonNullable<Tool['function']['parameters']>,
            },
          })),
        ];

  /**
   * Starts the run, or goes on with it after a pause (`spec.resume`); it ends with
   * `spec.onEnd`, or pauses again with `spec.onPause`.
   */
  function execute(spec: RunSpec): void {
    const { run, limits, controller } = spec;
    const started = now();
    // The run's deadline counts the time it worked, not the time it waited for its caller.
    const workedBefore = spec.resume?.pause.activeMs ?? 0;
    let ended = false;
    const ctx: StepContext = {
      spec,
      signal: controller.signal,
      ollamaTools: offered(spec),
      emit: (type, data) => {
        if (!ended) spec.emit(type, data);
      },
      ended: () => ended,
      iso,
    };
    const end = (stop: RunStop): void => {
      if (ended) return;
      deadline.cancel();
      controller.signal.removeEventListener('abort', onCancel);
      // Work of ours still holding the signal (Ollama, a slow tool) is told to stop.
      if (!controller.signal.aborted) controller.abort(stop);
      const failedStep = closeOpenSteps(ctx, stop);
      ended = true;
      run.status = statusFor(stop.reason);
      run.stop_reason = stop.reason;
      run.error = stop.reason === 'end_turn' ? null : runErrorOf(stop, failedStep);
      run.completed_at = iso();
      run.usage.total_tokens = run.usage.input_tokens + run.usage.output_tokens;
      run.usage.wall_ms = wallMs();
      // Nothing changes a run after its terminal event but its webhook delivery record, so
      // only a run with a webhook needs a copy to keep the event as it was sent.
      spec.emit(`run.${run.status}` as RunEventType, { run: run.webhook ? snapshot(run) : run });
      telemetry.agentRun({
        agent: spec.agentLabel,
        status: run.status,
        stopReason: stop.reason,
        durationS: run.usage.wall_ms / 1000,
      });
      spec.onEnd(run);
    };
    const wallMs = (): number =>
      run.started_at !== null ? now() - Date.parse(run.started_at) : now() - started;
    const round = createToolRound(deps, ctx, spec.resume?.pause.repeats);
    /** The segment stops to wait for the caller: nothing of it is left running. */
    const pause = (paused: RoundPause): void => {
      if (ended) return;
      ended = true;
      deadline.cancel();
      controller.signal.removeEventListener('abort', onCancel);
      run.usage.total_tokens = run.usage.input_tokens + run.usage.output_tokens;
      run.usage.wall_ms = wallMs();
      spec.onPause(run, {
        ...paused,
        repeats: round.repeatCounts(),
        activeMs: workedBefore + (now() - started),
      });
    };
    const onCancel = (): void => end(cancelStop(controller.signal));
    const deadline = clock.after(Math.max(0, limits.timeout_ms - workedBefore), () =>
      end(new RunStop('timeout', `The run did not finish within ${limits.timeout_ms} ms.`)),
    );

    run.status = 'in_progress';
    run.required_action = null;
    if (!spec.resume) {
      run.started_at = iso();
      spec.emit('run.in_progress', { status: run.status });
      run.output.messages.push(...spec.messages);
    }
    if (controller.signal.aborted) onCancel();
    else controller.signal.addEventListener('abort', onCancel, { once: true });
    if (!ended) {
      const work = spec.strategy
        ? runGroup(ctx, spec.strategy, {
            loop: async (candidate) => {
              // Plans refuse client tools and approvals with a strategy: a candidate never pauses.
              if (await loop(candidate, createToolRound(deps, candidate))) {
                throw new RunStop('internal_error', 'A groupthink candidate cannot pause.');
              }
            },
            judgeStep: (judge, format) => modelStep(judge, 'judge', format, []),
            stopOf: (err) => stopFor(err, controller.signal, logger),
          }).then(() => undefined)
        : loop(ctx, round);
      work
        .then(
          (paused) => (paused ? pause(paused) : end(endTurn)),
          (err: unknown) => end(stopFor(err, controller.signal, logger)),
        )
        .catch((err: unknown) => logger.error('agent run could not end', { error: err }));
    }
  }

  return { execute };
}

export type AgentRunner = ReturnType<typeof createAgentRunner>;
