/**
 * Groupthink: a run that makes several independent answers and picks one. Each candidate is
 * the whole tool loop on its own transcript with its own seed; the candidates run at once and
 * Ollama's admission queue bounds how many reach Ollama together. `vote` picks the answer most
 * candidates gave (normalised text, or the JSON value with a response format); `judge` asks a
 * model to pick one, and falls back to the vote when its answer is unusable.
 */
import { randomInt } from 'node:crypto';
import type { Message } from '../ollama';
import { canonicalJson } from './idempotency';
import type { StepContext } from './run-context';
import { newRun, RunStop } from './run-object';
import { statusFor, type AgentRun, type Candidate, type Groupthink, type Strategy } from './types';

export type GroupStrategy = Exclude<Strategy, { type: 'single' }>;

/** What groupthink needs of the runner. */
export interface GroupParts {
  /** Runs the tool loop on `ctx` (a candidate's own context) to its final answer. */
  loop(ctx: StepContext): Promise<void>;
  /** One model call on `ctx` with a JSON `format` and no tools; resolves with the reply. */
  judgeStep(ctx: StepContext, format: Record<string, unknown>): Promise<Message>;
  /** Turns a failure of a candidate into its stop (the run's own stop wins). */
  stopOf(err: unknown): RunStop;
}

/** The answer a vote counts: the JSON value, else the text trimmed, lower-cased, spaces collapsed. */
export function voteKey(output: { text: string; json?: unknown }): string {
  if (output.json !== undefined) return canonicalJson(output.json);
  return output.text
    .trim()
    .toLowerCase()
    .replace(/\s+/g, ' ')
    .replace(/[.!。]+$/u, '');
}

/** The votes, most first (ties: the answer given first by candidate index). */
export function tally(candidates: readonly Candidate[]): NonNullable<Groupthink['votes']> {
  const byAnswer = new Map<string, number[]>();
  for (const c of candidates) {
    if (c.status !== 'completed') continue;
    const key = voteKey(c.output);
    byAnswer.set(key, [...(byAnswer.get(key) ?? []), c.index]);
  }
  return [...byAnswer]
    .map(([answer, who]) => ({ answer, count: who.length, candidates: who }))
    .sort((x, y) => y.count - x.count || (x.candidates[0] ?? 0) - (y.candidates[0] ?? 0));
}

const JUDGE_SYSTEM =
  'You are a careful judge. Several assistants answered the same conversation independently. Pick the best answer: correct, complete and faithful to the conversation. Reply only with JSON.';

/** The judge's conversation: the original one (without system prompts), then the candidates. */
function judgeMessages(
  conversation: readonly Message[],
  finished: readonly Candidate[],
): Message[] {
  const transcript = conversation
    .filter((m) => m.role === 'user' || m.role === 'assistant')
    .map((m) => `${m.role}: ${m.content}`)
    .join('\n');
  const answers = finished.map((c) => `[${c.index}]\n${c.output.text}`).join('\n\n');
  return [
    { role: 'system', content: JUDGE_SYSTEM },
    {
      role: 'user',
      content: `Conversation:\n${transcript}\n\nCandidate answers:\n${answers}\n\nReply with {"winner": <the number of the best answer>, "rationale": "<one sentence>"}.`,
    },
  ];
}

/**
 * Runs the candidates of `ctx`'s run and decides: fills `run.groupthink`, the winner's output,
 * the summed usage and every candidate's steps (re-indexed, marked with `candidate`).
 * @throws RunStop when no candidate finished (the first candidate's stop), or the run's own stop.
 */
export async function runGroup(
  ctx: StepContext,
  strategy: GroupStrategy,
  parts: GroupParts,
): Promise<void> {
  const { spec } = ctx;
  const { run } = spec;
  const base = spec.options.seed ?? randomInt(0, 2 ** 30);
  const group: Groupthink = { strategy, candidates: [], winner: null };
  run.groupthink = group;
  const stops: RunStop[] = [];

  const candidate = async (index: number): Promise<void> => {
    const seed = base + index;
    const own: AgentRun = newRun({
      id: `${run.id}#${index}`,
      agent: run.agent,
      model: run.model,
      createdAt: run.created_at,
      metadata: {},
      webhook: null,
    });
    own.output.messages.push(...spec.messages.map((m) => ({ ...m })));
    const sub: StepContext = {
      ...ctx,
      spec: { ...spec, run: own, options: { ...spec.options, seed } },
      // A candidate's own events stay with it: the run reports each candidate when it is done.
      emit: () => undefined,
    };
    let stop: RunStop | null = null;
    try {
      await parts.loop(sub);
    } catch (err) {
      if (ctx.ended()) throw err;
      stop = parts.stopOf(err);
      stops[index] = stop;
    }
    own.usage.total_tokens = own.usage.input_tokens + own.usage.output_tokens;
    const done: Candidate = {
      index,
      status: stop ? statusFor(stop.reason) : 'completed',
      stop_reason: stop ? stop.reason : 'end_turn',
      seed,
      output: {
        text: own.output.text,
        ...(own.output.json !== undefined ? { json: own.output.json } : {}),
      },
      usage: own.usage,
    };
    group.candidates[index] = done;
    for (const step of own.steps) {
      run.steps.push({ ...step, index: run.steps.length, candidate: index });
    }
    for (const key of ['input_tokens', 'output_tokens', 'model_calls', 'tool_calls'] as const) {
      run.usage[key] += own.usage[key];
    }
    candidateOutputs[index] = own;
    ctx.emit('candidate.completed', {
      index,
      status: done.status,
      stop_reason: done.stop_reason,
      output: done.output,
      usage: done.usage,
    });
  };
  const candidateOutputs: AgentRun[] = [];
  await Promise.all(Array.from({ length: strategy.samples }, (_, i) => candidate(i)));

  const votes = tally(group.candidates);
  if (strategy.type === 'vote') group.votes = votes;
  const majority = votes[0]?.candidates[0];
  if (majority === undefined) {
    throw (
      stops.find((s) => s !== undefined) ?? new RunStop('internal_error', 'No candidate finished.')
    );
  }
  let winner = majority;
  if (strategy.type === 'judge') {
    winner = await judge(ctx, strategy, parts, group, majority);
  }
  group.winner = winner;
  const chosen = candidateOutputs[winner];
  run.output.text = chosen?.output.text ?? '';
  if (chosen?.output.json !== undefined) run.output.json = chosen.output.json;
  run.output.messages = chosen?.output.messages ?? run.output.messages;
}

/** The judge's pick among the finished candidates; the vote's when the judge's reply is unusable. */
async function judge(
  ctx: StepContext,
  strategy: Extract<GroupStrategy, { type: 'judge' }>,
  parts: GroupParts,
  group: Groupthink,
  majority: number,
): Promise<number> {
  const { spec } = ctx;
  const finished = group.candidates.filter((c) => c.status === 'completed');
  const model = strategy.judge_model ?? spec.model;
  const record = newRun({
    id: `${spec.run.id}#judge`,
    agent: spec.run.agent,
    model,
    createdAt: spec.run.created_at,
    metadata: {},
    webhook: null,
  });
  record.output.messages.push(...judgeMessages(spec.messages, finished));
  const sub: StepContext = {
    ...ctx,
    spec: { ...spec, run: record, model },
    emit: () => undefined,
  };
  const ids = finished.map((c) => c.index);
  const format = {
    type: 'object',
    required: ['winner'],
    properties: { winner: { type: 'integer', enum: ids }, rationale: { type: 'string' } },
  };
  let winner = majority;
  let rationale: string | null = null;
  let fallback = true;
  try {
    const reply = await parts.judgeStep(sub, format);
    const parsed = JSON.parse(reply.content) as { winner?: unknown; rationale?: unknown };
    if (typeof parsed.winner === 'number' && ids.includes(parsed.winner)) {
      winner = parsed.winner;
      fallback = false;
      rationale = typeof parsed.rationale === 'string' ? parsed.rationale : null;
    }
  } catch (err) {
    if (ctx.ended()) throw err;
    // The judge failed or did not answer in JSON: the vote decides (`fallback: true`).
  }
  for (const step of record.steps) spec.run.steps.push({ ...step, index: spec.run.steps.length });
  for (const key of ['input_tokens', 'output_tokens', 'model_calls'] as const) {
    spec.run.usage[key] += record.usage[key];
  }
  group.judge = { model, rationale, fallback };
  ctx.emit('judge.completed', { winner, model, rationale, fallback });
  return winner;
}
