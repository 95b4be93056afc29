import { randomBytes } from 'node:crypto';
import type { AgentRun, RunError, StopReason } from './types';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** `run_` + 22 random base62 characters (about 131 bits): unguessable, so ids leak nothing. */
export function newRunId(): string {
  let id = 'run_';
  for (const byte of randomBytes(22)) id += ALPHABET[byte % ALPHABET.length];
  return id;
}

/** Ends a run early from anywhere in the loop; the runner turns it into the run's stop_reason. */
export class RunStop extends Error {
  constructor(
    readonly reason: StopReason,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'RunStop';
  }
}

/** Stop reasons a client may simply retry later. */
const RETRYABLE: ReadonlySet<StopReason> = new Set(['ollama_unavailable', 'timeout']);

export function runErrorOf(stop: RunStop, stepIndex: number | undefined): RunError {
  const error: RunError = {
    code: stop.reason,
    message: stop.message,
    retryable: RETRYABLE.has(stop.reason),
  };
  if (stepIndex !== undefined) error.step_index = stepIndex;
  if (stop.details !== undefined) error.details = stop.details;
  return error;
}

/** A new run object in `queued`. */
export function newRun(fields: {
  id: string;
  agent: AgentRun['agent'];
  model: string;
  createdAt: string;
  metadata: Record<string, string>;
  webhook: AgentRun['webhook'];
}): AgentRun {
  return {
    id: fields.id,
    object: 'agent.run',
    status: 'queued',
    stop_reason: null,
    agent: fields.agent,
    model: fields.model,
    created_at: fields.createdAt,
    started_at: null,
    completed_at: null,
    output: { text: '', messages: [] },
    steps: [],
    usage: {
      input_tokens: 0,
      output_tokens: 0,
      total_tokens: 0,
      model_calls: 0,
      tool_calls: 0,
      wall_ms: 0,
    },
    error: null,
    metadata: fields.metadata,
    webhook: fields.webhook,
  };
}

/** A copy for a response, an event or a webhook: later progress does not change what was sent. */
export function snapshot(run: AgentRun): AgentRun {
  return structuredClone(run);
}

/** At most `max` characters, marked when cut. */
export function preview(text: string, max: number): string {
  return text.length <= max
    ? text
    : `${text.slice(0, max)}… [${text.length - max} more characters]`;
}
